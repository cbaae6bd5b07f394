//! SMF files from real gcc objects: packed, written, read back; inputs
//! SMF v1 cannot hold are refused by name; damaged files are errors, never
//! panics.

use relive_smf::format::{Module, RelocType, SectionKind, SymbolType};
use relive_smf::pack;

const MAIN: &str = r#"
#include <string.h>
extern long twice(long);
long counter = 5;
static char scratch[64];
const char *volatile greeting = "hello";
long (*table[2])(long) = { twice, 0 };
long add(long a, long b) { return a + b + counter; }
long name_length(void) { memcpy(scratch, "abc", 4); return (long)strlen(greeting) + (long)strlen(scratch); }
long call_twice(long x) { return table[0](x); }
int main(void) { return (int)add(1, 2); }
"#;
const HELPER: &str = "long twice(long x) { return 2 * x; }\n";

fn objects(flags: &[&str], sources: &[(&str, &str)]) -> (tempfile::TempDir, Vec<(String, Vec<u8>)>) {
    let dir = tempfile::tempdir().unwrap();
    let objects = sources
        .iter()
        .map(|(name, text)| {
            let path = relive_testkit::compile_object(dir.path(), name, text, flags);
            (format!("{name}.o"), std::fs::read(path).unwrap())
        })
        .collect();
    (dir, objects)
}

fn packed(flags: &[&str]) -> Module<'static> {
    let (_dir, inputs) = objects(flags, &[("main", MAIN), ("helper", HELPER)]);
    pack(&inputs, None).unwrap()
}

#[test]
fn gcc_objects_pack_and_read_back() {
    for flags in [&["-O0", "-fPIC"][..], &["-O2", "-fPIC"][..], &["-O2", "-fPIE"][..]] {
        let module = packed(flags);
        let bytes = module.to_bytes();
        let read = Module::parse(&bytes).unwrap();
        assert_eq!(read.sections, module.sections, "{flags:?}");
        assert_eq!(read.symbols, module.symbols);
        assert_eq!(read.relocations, module.relocations);
        assert_eq!(read.entry, module.entry);
        // Written again, byte for byte the same.
        assert_eq!(read.to_bytes(), bytes);

        let names: Vec<&str> = read.symbols.iter().map(|s| &*s.name).collect();
        for want in ["add", "counter", "name_length", "call_twice", "twice", "main", "table"] {
            let i = read
                .export(want)
                .unwrap_or_else(|| panic!("{want} exported: {names:?}"));
            assert!(read.symbols[i].section.is_some());
        }
        // twice came from the other object: defined, not an import.
        let imports: Vec<&str> = read
            .symbols
            .iter()
            .filter(|s| s.section.is_none())
            .map(|s| &*s.name)
            .collect();
        assert!(imports.contains(&"strlen"), "{imports:?}");
        assert!(!imports.contains(&"twice"), "{imports:?}");
        assert_eq!(read.entry.map(|e| &*read.symbols[e as usize].name), Some("main"));
        // The pointer table needs an absolute relocation; calls a PLT32 or
        // PC32; the zero-filled static is in Bss.
        let kinds: Vec<RelocType> = read.relocations.iter().map(|r| r.kind).collect();
        assert!(kinds.contains(&RelocType::Abs64), "{flags:?}: {kinds:?}");
        assert!(kinds.contains(&RelocType::Plt32), "{flags:?}: {kinds:?}");
        let bss = &read.sections[read.symbols[read.symbols.iter().position(|s| s.name.starts_with("scratch")).unwrap()]
            .section
            .unwrap() as usize];
        assert_eq!(bss.kind, SectionKind::Bss);
        assert!(read
            .symbols
            .iter()
            .any(|s| s.kind == SymbolType::Function && s.name == "add" && s.size > 0));
    }
}

#[test]
fn what_smf_cannot_hold_is_refused_by_name() {
    let refused = |flags: &[&str], source: &str| -> String {
        let (_dir, inputs) = objects(flags, &[("x", source)]);
        pack(&inputs, None).unwrap_err().to_string()
    };
    let tls = refused(&["-O2", "-fPIC"], "__thread int t; int f(void) { return t; }");
    assert!(tls.contains("thread-local"), "{tls}");
    // The large code model's GOT-relative 64-bit forms (32-bit absolute
    // addresses, built without -fPIC, load low: `load.rs`).
    let large = refused(
        &["-O2", "-fPIC", "-mcmodel=large"],
        "int g; int *f(void) { return &g; }",
    );
    assert!(
        large.contains("relocation R_X86_64_GOTPC64 (type 29)") && large.contains("not supported"),
        "{large}"
    );
    let common = refused(&["-O2", "-fPIC", "-fcommon"], "int c; int f(void) { return c; }");
    assert!(common.contains("COMMON") && common.contains("-fno-common"), "{common}");
    let constructor = refused(
        &["-O2", "-fPIC"],
        "int x; __attribute__((constructor)) static void init(void) { x = 1; }",
    );
    assert!(constructor.contains("constructors"), "{constructor}");
    let (_dir, twice) = objects(&["-O2", "-fPIC"], &[("a", HELPER), ("b", HELPER)]);
    let duplicate = pack(&twice, None).unwrap_err().to_string();
    assert!(duplicate.contains("twice is also defined in a.o"), "{duplicate}");
    let (_dir, one) = objects(&["-O2", "-fPIC"], &[("a", HELPER)]);
    let entry = pack(&one, Some("start")).unwrap_err().to_string();
    assert!(entry.contains("entry point start"), "{entry}");
    assert!(pack(&[("x.txt".into(), b"not an object".to_vec())], None)
        .unwrap_err()
        .to_string()
        .contains("x.txt"));
}

#[test]
fn damaged_files_are_errors_not_panics() {
    let bytes = packed(&["-O2", "-fPIC"]).to_bytes();
    // Every truncation is an error.
    for len in 0..bytes.len() {
        assert!(Module::parse(&bytes[..len]).is_err(), "truncated to {len} bytes parsed");
    }
    // Bit flips and overwritten fields anywhere: an error or a module,
    // never a panic. Header flips outside hashed bytes are still checked.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..20_000 {
        let mut damaged = bytes.clone();
        let at = (next() % damaged.len() as u64) as usize;
        match next() % 3 {
            0 => damaged[at] ^= 1 << (next() % 8),
            1 => damaged[at] = 0xff,
            _ => {
                let end = (at + 8).min(damaged.len());
                damaged[at..end].copy_from_slice(&next().to_le_bytes()[..end - at]);
            }
        }
        let _ = Module::parse(&damaged);
    }
    // The header's hash catches damage to the body.
    let mut body = bytes.clone();
    let last = body.len() - 2;
    body[last] ^= 0x40;
    let err = Module::parse(&body).unwrap_err().to_string();
    assert!(err.contains("hash"), "{err}");
    // Wrong magic and version name themselves.
    let mut v2 = bytes.clone();
    v2[4] = 2;
    assert!(Module::parse(&v2).unwrap_err().to_string().contains("version 2.0"));
    assert!(Module::parse(b"\x7fELF").unwrap_err().to_string().contains("magic"));
}

/// The module hash as docs/smf.md defines it, word by word: pins the
/// format (a faster implementation must give the same numbers).
#[test]
fn module_hash_follows_the_documented_definition() {
    fn documented(bytes: &[u8]) -> u64 {
        let step = |h: u64, w: u64| (h ^ w).wrapping_mul(0x100_0000_01b3);
        let basis: u64 = 0xcbf2_9ce4_8422_2325;
        let mut lanes = [basis, basis ^ 1, basis ^ 2, basis ^ 3];
        for (k, chunk) in bytes.chunks(8).enumerate() {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            lanes[k % 4] = step(lanes[k % 4], u64::from_le_bytes(word));
        }
        let h = lanes.iter().fold(basis, |h, &lane| step(h, lane));
        step(h, bytes.len() as u64)
    }
    let bytes: Vec<u8> = (0..300u32).map(|i| (i * 7 + 3) as u8).collect();
    for len in [0, 1, 7, 8, 9, 31, 32, 33, 40, 63, 64, 65, 299, 300] {
        assert_eq!(
            relive_smf::format::module_hash(&bytes[..len]),
            documented(&bytes[..len]),
            "{len} bytes"
        );
    }
    // One changed word changes the hash, whichever lane it falls in.
    let base = relive_smf::format::module_hash(&bytes);
    for at in [0, 8, 16, 24, 32, 296] {
        let mut changed = bytes.clone();
        changed[at] ^= 1;
        assert_ne!(relive_smf::format::module_hash(&changed), base, "byte {at}");
    }
    // Two words swapped between lanes change it too.
    let mut swapped = bytes.clone();
    let (a, b) = swapped.split_at_mut(8);
    a[..8].swap_with_slice(&mut b[..8]);
    assert_ne!(relive_smf::format::module_hash(&swapped), base);
}

#[test]
fn the_source_hash_is_fnv1a_64() {
    // Known FNV-1a 64 values (from the reference definition).
    assert_eq!(relive_smf::format::fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
    assert_eq!(relive_smf::format::fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
    assert_eq!(relive_smf::format::fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
}
