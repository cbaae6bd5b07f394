//! Plain ELF files built by the machine's gcc, checked against binutils
//! (`nm`, `readelf`), which share no code with relive.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::run;
use relive_image::{Arch, Format, Image};

const UNIT_A: &str = r#"
#include <stdio.h>
int shared_global = 42;
static int counter = 1;
static int helper(int x) { return x + counter++; }
int unit_b(int);
int main(void) { printf("%d %d\n", helper(shared_global), unit_b(3)); return 0; }
"#;

const UNIT_B: &str = r#"
static int counter = 100;
static int helper(int x) { return x * counter++; }
int unit_b(int x) { return helper(x) + counter; }
"#;

struct Build {
    _dir: tempfile::TempDir,
    dir: PathBuf,
}

impl Build {
    fn new() -> Build {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.c"), UNIT_A).unwrap();
        std::fs::write(dir.path().join("b.c"), UNIT_B).unwrap();
        Build {
            dir: dir.path().to_path_buf(),
            _dir: dir,
        }
    }

    fn gcc(&self, out: &str, flags: &[&str]) -> PathBuf {
        let path = self.dir.join(out);
        run(Command::new("gcc")
            .current_dir(&self.dir)
            .args(flags)
            .arg("-o")
            .arg(&path));
        path
    }
}

/// `nm --defined-only` as (name, addr, size) triples.
fn nm(path: &Path, dynamic: bool) -> BTreeSet<(String, u64)> {
    let mut cmd = Command::new("nm");
    cmd.args(["--defined-only", "-S"]);
    if dynamic {
        cmd.arg("-D");
    }
    run(cmd.arg(path))
        .lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (addr, name) = match f.as_slice() {
                [addr, _, _, name] | [addr, _, name] => (addr, name),
                _ => return None,
            };
            // nm prints versioned dynamic names as name@@VERSION.
            let name = name.split('@').next().unwrap();
            Some((name.to_string(), u64::from_str_radix(addr, 16).ok()?))
        })
        .collect()
}

fn ours(image: &Image, source: &str) -> BTreeSet<(String, u64)> {
    image
        .symbols_from(source)
        .unwrap()
        .symbols()
        .iter()
        .map(|s| (s.name.clone(), s.addr))
        .collect()
}

/// `readelf -lW` program headers as (type, offset, vaddr, filesz, memsz, flags).
fn readelf_segments(path: &Path) -> Vec<(String, u64, u64, u64, u64, String)> {
    let hex = |s: &str| u64::from_str_radix(s.trim_start_matches("0x"), 16).unwrap();
    run(Command::new("readelf").arg("-lW").arg(path))
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("Type"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter(|l| !l.contains("[Requesting"))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let flags_field = f[6..f.len() - 1].concat();
            let flags: String = ['R', 'W', 'E']
                .iter()
                .zip(['r', 'w', 'x'])
                .map(|(k, c)| if flags_field.contains(*k) { c } else { '-' })
                .collect();
            (f[0].to_string(), hex(f[1]), hex(f[2]), hex(f[4]), hex(f[5]), flags)
        })
        .collect()
}

fn readelf_entry(path: &Path) -> u64 {
    let out = run(Command::new("readelf").arg("-hW").arg(path));
    let line = out.lines().find(|l| l.contains("Entry point address")).unwrap();
    u64::from_str_radix(line.rsplit("0x").next().unwrap().trim(), 16).unwrap()
}

fn check_executable(path: &Path) {
    let image = Image::open(path).unwrap();
    assert_eq!(image.format(), Format::Elf);
    let elf = &image.layout().elf[0];
    assert_eq!((elf.header_offset, elf.machine), (0, Arch::X86_64));
    assert_eq!(elf.entry, readelf_entry(path));
    let segments: Vec<_> = elf
        .segments
        .iter()
        .map(|s| {
            (
                s.kind.to_string(),
                s.offset,
                s.vaddr,
                s.filesz,
                s.memsz,
                s.flags.to_string(),
            )
        })
        .collect();
    assert_eq!(segments, readelf_segments(path), "{}", path.display());
    assert_eq!(
        ours(&image, "elf:.symtab"),
        nm(path, false),
        "{}: .symtab",
        path.display()
    );
    assert_eq!(
        ours(&image, "elf:.dynsym"),
        nm(path, true),
        "{}: .dynsym",
        path.display()
    );

    // Build-id agrees with readelf -n.
    let notes = run(Command::new("readelf").arg("-n").arg(path));
    let build_id = notes
        .lines()
        .find_map(|l| l.trim().strip_prefix("Build ID: "))
        .map(str::to_owned);
    assert_eq!(elf.build_id, build_id);

    // Two statics named `counter`, each attributed to its own file.
    let symbols = image.symbols(None).unwrap();
    let mut counters: Vec<(String, u64)> = symbols
        .by_name("counter")
        .iter()
        .map(|s| (s.file.as_deref().unwrap().to_string(), s.addr))
        .collect();
    counters.sort();
    assert_eq!(
        counters.iter().map(|c| c.0.as_str()).collect::<Vec<_>>(),
        ["a.c", "b.c"]
    );
    assert_ne!(counters[0].1, counters[1].1);

    // Translation agrees with the section headers: main's VA maps to the
    // offset .text's header gives for it, and back.
    let main = symbols.by_name("main")[0].addr;
    let text = elf.sections.iter().find(|s| s.name == ".text").unwrap();
    let view = image.view(None).unwrap();
    let offset = view.va_to_offset(main).unwrap();
    assert_eq!(offset, text.offset + (main - text.addr));
    assert_eq!(view.offset_to_va(offset).unwrap(), main);
    assert_eq!(view.section_of(main), Some(".text"));
    let t = view.from_va(main + 3).unwrap();
    assert_eq!(
        symbols.by_addr(t.va.unwrap()).map(|(s, o)| (s.name.as_str(), o)),
        Some(("main", 3))
    );
}

#[test]
fn pie_executable_matches_binutils() {
    let b = Build::new();
    let exe = b.gcc("app_pie", &["-O0", "-g", "-pie", "-fPIE", "a.c", "b.c"]);
    check_executable(&exe);
    assert_eq!(Image::open(&exe).unwrap().view(None).unwrap().image_base, Some(0));
}

#[test]
fn non_pie_executable_matches_binutils() {
    let b = Build::new();
    let exe = b.gcc("app_nopie", &["-O2", "-no-pie", "-fno-pie", "a.c", "b.c"]);
    check_executable(&exe);
    assert_eq!(
        Image::open(&exe).unwrap().view(None).unwrap().image_base,
        Some(0x400000)
    );
}

#[test]
fn relocatable_object_lists_section_relative_symbols() {
    let b = Build::new();
    let obj = b.gcc("a.o", &["-c", "-O0", "a.c"]);
    let image = Image::open(&obj).unwrap();
    assert_eq!(image.layout().elf[0].e_type, 1);
    assert!(image.layout().elf[0].segments.is_empty());
    assert_eq!(ours(&image, "elf:.symtab"), nm(&obj, false));
    // No segments: translation says so instead of guessing.
    assert!(image.view(None).unwrap().va_to_offset(0).is_err());
}

#[test]
fn stripped_program_uses_its_debug_companion() {
    let b = Build::new();
    let exe = b.gcc("prog", &["-O0", "-g", "a.c", "b.c"]);
    let full = Image::open(&exe).unwrap().symbols(None).unwrap();
    let dbg = b.dir.join("prog.dbg");
    run(Command::new("objcopy").arg("--only-keep-debug").arg(&exe).arg(&dbg));
    run(Command::new("strip").arg(&exe));
    let image = Image::open(&exe).unwrap();
    let table = image.symbols(None).unwrap();
    assert_eq!(table.source, format!("debug:{}", dbg.display()));
    let addrs = |t: &relive_image::SymbolTable| {
        t.symbols()
            .iter()
            .map(|s| (s.name.clone(), s.addr, s.size))
            .collect::<BTreeSet<_>>()
    };
    assert_eq!(addrs(&table), addrs(&full));
    // Without the companion, the stripped file falls back to .dynsym.
    std::fs::remove_file(&dbg).unwrap();
    assert_eq!(Image::open(&exe).unwrap().symbols(None).unwrap().source, "elf:.dynsym");
}

/// A plain PE and a plain Mach-O made from pledge.com exactly as its own
/// script does on Windows (the MZ header) and macOS (the `dd` line).
#[test]
fn plain_pe_and_macho_views() {
    let apefile = std::fs::read(common::fixture("pledge.com")).unwrap();
    let mut pe = apefile.clone();
    pe[..8].copy_from_slice(b"MZ\x90\x00\x03\x00\x00\x00");
    let pe = Image::from_bytes("pledge.exe", pe).unwrap();
    assert_eq!(pe.format(), Format::Pe);
    let header = pe.layout().pe.as_ref().unwrap();
    assert_eq!((header.offset, header.image_base), (0x10c78, 0x3f0000));
    let view = pe.view(None).unwrap();
    assert_eq!(view.rva_to_offset(0x149e0).unwrap(), 0x149e0);
    assert_eq!(view.from_va(0x4049e0).unwrap().section.as_deref(), Some(".text"));
    assert!(view.va_to_offset(0x3f0000 + 0x100000).is_err());

    let mut macho = apefile;
    macho.copy_within(3224..3224 + 528, 0);
    let macho = Image::from_bytes("pledge.macho", macho).unwrap();
    assert_eq!(macho.format(), Format::MachO);
    let m = macho.layout().macho.as_ref().unwrap();
    assert_eq!((m.offset, m.entry), (0, Some(0x404570)));
    let view = macho.view(None).unwrap();
    assert_eq!(view.va_to_offset(0x404570).unwrap(), 0x14570);
    assert_eq!(view.section_of(0x404570), Some("__APE1"));
}

/// Mach-O symbols through object's format-neutral reader, with sizes
/// inferred from the next symbol (Mach-O records none).
#[test]
fn macho_object_symbols() {
    use object::write::{Object, StandardSection, Symbol, SymbolSection};
    use object::{Architecture, BinaryFormat, Endianness, SymbolFlags, SymbolKind, SymbolScope};
    let mut obj = Object::new(BinaryFormat::MachO, Architecture::X86_64, Endianness::Little);
    let text = obj.section_id(StandardSection::Text);
    obj.append_section_data(text, &[0x90; 48], 16);
    // The writer adds Mach-O's leading underscore itself.
    for (name, value) in [("first", 0u64), ("second", 16)] {
        obj.add_symbol(Symbol {
            name: name.as_bytes().to_vec(),
            value,
            size: 0,
            kind: SymbolKind::Text,
            scope: SymbolScope::Linkage,
            weak: false,
            section: SymbolSection::Section(text),
            flags: SymbolFlags::None,
        });
    }
    let image = Image::from_bytes("obj.o", obj.write().unwrap()).unwrap();
    assert_eq!(image.format(), Format::MachO);
    let table = image.symbols(None).unwrap();
    assert_eq!(table.source, "macho:symtab");
    let got: Vec<(&str, u64, u64)> = table
        .symbols()
        .iter()
        .map(|s| (s.name.as_str(), s.addr, s.size))
        .collect();
    assert_eq!(got, [("_first", 0, 16), ("_second", 16, 32)]);
}

/// A library defining two versions of one name (`f@V1`, and the default
/// `f@@V2`, as libm has `log@GLIBC_2.2.5` and `log@@GLIBC_2.29`): the
/// name is the default version, in `.dynsym` (whose versions are in
/// `.gnu.version`) and in `.symtab` (whose names spell them), as a link
/// binds a new reference. The old version came first by address, and a
/// patch's `log` called it (a gawk trial).
#[test]
fn a_versioned_name_is_its_default_version() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    std::fs::write(
        p.join("v.c"),
        "int f_old(void) { return 1; }\nint f_new(void) { return 2; }\n__asm__(\".symver f_old,f@V1\");\n__asm__(\".symver f_new,f@@V2\");\n",
    )
    .unwrap();
    std::fs::write(p.join("v.map"), "V1 { global: f; local: *; };\nV2 { global: f; } V1;\n").unwrap();
    run(Command::new("gcc").current_dir(p).args([
        "-shared",
        "-fPIC",
        "-O2",
        "-Wl,--version-script=v.map",
        "-o",
        "libv.so",
        "v.c",
    ]));
    let lib = p.join("libv.so");
    // binutils' account: each version's address.
    let versions: Vec<(String, u64)> = run(Command::new("nm").args(["-D", "--defined-only"]).arg(&lib))
        .lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let [addr, _, name] = f.as_slice() else { return None };
            Some((name.to_string(), u64::from_str_radix(addr, 16).ok()?))
        })
        .collect();
    let at = |name: &str| versions.iter().find(|(n, _)| n == name).map(|(_, a)| *a);
    let (old, default) = (at("f@V1").unwrap(), at("f@@V2").unwrap());
    assert_ne!(old, default, "{versions:?}");
    let image = Image::open(&lib).unwrap();
    for source in ["elf:.dynsym", "elf:.symtab"] {
        let table = image.symbols_from(source).unwrap();
        let found: Vec<u64> = table.by_name("f").iter().map(|s| s.addr).collect();
        assert_eq!(found, vec![default], "{source}: {versions:?}");
    }
}
