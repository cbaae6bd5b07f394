//! Damaged relocatable objects: thousands of deterministic mutations of
//! real gcc output through the object reader and the diff. Each must end
//! in an error or a result, never a panic.

use relive_testkit::{compile_object, Rng};

const SOURCE: &str = r#"
#include <stdio.h>
#include <string.h>
int g = 1;
static int s[4];
static const char *names[] = {"a", "b"};
int f(int x) { static int n; n += x; printf("%d %s\n", n, names[x & 1]); return s[x & 3] + g; }
static int h(int y) { switch (y) { case 0: return 5; case 1: return 7; case 2: return 11; case 3: return 13; default: return (int)strlen("x"); } }
int k(int z) { return h(z) + f(z); }
"#;

#[test]
fn damaged_objects_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    let mut inputs = Vec::new();
    for flags in [
        &["-O0"][..],
        &["-O2", "-ffunction-sections", "-fdata-sections"][..],
        &["-O2", "-fpie"][..],
        // DWARF: what a debugger's symbol file is made from.
        &["-O2", "-g"][..],
    ] {
        let obj = compile_object(dir.path(), "m", SOURCE, flags);
        inputs.push(std::fs::read(obj).unwrap());
    }
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut runs = 0;
    for original in &inputs {
        relive_patch::exercise::object(original);
        // Truncation at every 64th length.
        for len in (0..original.len()).step_by(64) {
            relive_patch::exercise::object(&original[..len]);
            runs += 1;
        }
        for _ in 0..1500 {
            let mut data = original.clone();
            for _ in 0..1 + rng.below(8) {
                let at = rng.below(data.len());
                match rng.below(4) {
                    0 => data[at] ^= 1 << rng.below(8),
                    1 => data[at] = [0, 0xff, 0x7f, 0x80][rng.below(4)],
                    2 => {
                        let v = [0u32, u32::MAX, 0x7fff_ffff, 0x8000_0000][rng.below(4)].to_le_bytes();
                        let end = (at + 4).min(data.len());
                        data[at..end].copy_from_slice(&v[..end - at]);
                    }
                    _ => data[at] = rng.next_u64() as u8,
                }
            }
            relive_patch::exercise::object(&data);
            runs += 1;
        }
    }
    assert!(runs > 4500);
}

/// Damaged patch bundles (the file `relive apply` reads on hosts that
/// did not make it): mutations of a real bundle, compressed and not, end
/// in an error or a bundle, never a panic.
#[test]
fn damaged_bundles_never_panic() {
    use relive_patch::bundle::{Bundle, Entry, Manifest, FORMAT};
    let dir = tempfile::tempdir().unwrap();
    let new = std::fs::read(compile_object(dir.path(), "m", SOURCE, &["-O2"])).unwrap();
    let base = std::fs::read(compile_object(dir.path(), "m", SOURCE, &["-O0"])).unwrap();
    let entry = |role: &str, size: usize| Entry {
        role: role.into(),
        name: format!("{role}.o"),
        size: size as u64,
    };
    let bundle = Bundle {
        manifest: Manifest {
            format: FORMAT,
            made_by: "test".into(),
            created: 0,
            build_id: "abcdef".into(),
            program: "m".into(),
            functions: vec!["f".into()],
            only: Vec::new(),
            objects: vec![entry("new", new.len()), entry("base", base.len())],
        },
        new,
        base: Some(base),
    };
    let original = bundle.to_bytes().unwrap();
    relive_patch::exercise::bundle(&original);
    let mut rng = Rng(0x5851_f42d_4c95_7f2d);
    for len in (0..original.len()).step_by(97) {
        relive_patch::exercise::bundle(&original[..len]);
    }
    for _ in 0..2000 {
        let mut data = original.clone();
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(data.len());
            data[at] = rng.next_u64() as u8;
        }
        relive_patch::exercise::bundle(&data);
    }
}

/// A relocation whose field lies outside its section (issue 19: an offset
/// of 0x8000000c0 in a 0x175-byte `.text` was accepted, explained wrongly
/// by `diff` and applied by `patch`) is refused, naming the relocation,
/// its offset and the section.
#[test]
fn a_relocation_outside_its_section_is_refused() {
    use object::{Object, ObjectSection};
    let dir = tempfile::tempdir().unwrap();
    let path = compile_object(dir.path(), "m", SOURCE, &["-O0"]);
    let mut data = std::fs::read(&path).unwrap();
    relive_patch::ObjectFile::parse("m.o", &data).expect("the compiler's object reads");
    // The first Elf64_Rela of .rela.text: r_offset is its first 8 bytes.
    let (at, text_size) = {
        let file = object::File::parse(&*data).unwrap();
        let rela = file.section_by_name(".rela.text").unwrap();
        let text = file.section_by_name(".text").unwrap();
        (rela.file_range().unwrap().0 as usize, text.size())
    };
    for bad in [0x8_0000_00c0u64, text_size, text_size - 2] {
        data[at..at + 8].copy_from_slice(&bad.to_le_bytes());
        let err = relive_patch::ObjectFile::parse("m.o", &data)
            .expect_err("a field outside .text")
            .to_string();
        assert!(
            err.contains(&format!("at {bad:#x}")) && err.contains("outside section .text") && err.contains("R_X86_64_"),
            "{err}"
        );
    }
}
