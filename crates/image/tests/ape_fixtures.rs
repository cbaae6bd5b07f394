//! The image layer on real APE files built by others, checked field by field
//! against the documented values and an independent reader.

mod common;

use std::path::Path;

use relive_image::{ape::magic::ApeMagic, Arch, Format, Image, ImageError};
use serde_json::{json, Value};

fn open(name: &str) -> Image {
    Image::open(common::fixture(name)).unwrap()
}

/// `Info` as JSON, to compare with the reference's JSON.
fn info_json(image: &Image) -> Value {
    serde_json::to_value(image.info()).unwrap()
}

#[test]
fn pledge_matches_the_documented_layout() {
    let image = open("pledge.com");
    let l = image.layout();
    assert_eq!(l.format, Format::Ape);
    assert_eq!(l.ape_magic, Some(ApeMagic::Canonical));
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);

    let amd64 = &l.elf[0];
    assert_eq!(
        (amd64.header_offset, amd64.machine, amd64.e_machine),
        (909, Arch::X86_64, 62)
    );
    assert_eq!((amd64.phoff, amd64.phnum, amd64.entry), (0xb48, 6, 0x404577));
    let arm64 = &l.elf[1];
    assert_eq!(
        (arm64.header_offset, arm64.machine, arm64.e_machine),
        (1192, Arch::Aarch64, 183)
    );
    assert_eq!((arm64.phoff, arm64.phnum, arm64.entry), (0xea8, 5, 0x800000120));
    assert_eq!(amd64.e_flags & 0x1ffffff, 0, "pledge.com predates EF_APE_MODERN");

    let macho = l.macho.as_ref().unwrap();
    assert_eq!(
        (macho.offset, macho.size, macho.cputype, macho.entry),
        (0xc98, 528, 0x01000007, Some(0x404570))
    );
    let names: Vec<&str> = macho.segments.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["__PAGEZERO", "__APE1", "__APE2", "__APE3"]);
    assert_eq!(macho.segments[1].vmaddr, 0x3f0000);

    let pe = l.pe.as_ref().unwrap();
    assert_eq!(
        (pe.offset, pe.machine, pe.image_base, pe.size_of_optional_header),
        (0x10c78, 0x8664, 0x3f0000, 0x80)
    );
    // File offset == RVA for every section, so VA = offset + 0x3f0000.
    for s in &pe.sections {
        assert_eq!(s.raw_offset, s.virtual_address, "{}", s.name);
    }

    let zip = l.zip().unwrap();
    let names: Vec<&str> = zip.entries.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(
        names,
        [
            ".symtab.amd64",
            ".symtab.arm64",
            "sandbox-x86_64.so",
            ".cosmo",
            "sandbox-aarch64.so"
        ]
    );
}

#[test]
fn pledge_symbols() {
    let image = open("pledge.com");
    let amd64 = image.symbols(None).unwrap();
    assert_eq!(
        (amd64.source.as_str(), amd64.arch, amd64.len()),
        ("zip:.symtab.amd64", Arch::X86_64, 1858)
    );
    let main = amd64.by_name("main");
    assert_eq!(main.len(), 1);
    assert_eq!((main[0].addr, main[0].size), (0x4049e0, 2171));
    let start = amd64.by_name("_start");
    assert_eq!(start[0].addr, 0x404577);
    assert_eq!(start[0].addr, image.layout().elf[0].entry);
    assert_eq!(amd64.by_name("g_prog").len(), 2, "names are not unique");
    assert_eq!(amd64.by_name("once.0").len(), 2);
    let (sym, off) = amd64.by_addr(0x4049f9).unwrap();
    assert_eq!((sym.name.as_str(), off), ("main", 25));
    // Sorted and non-overlapping, as the format promises.
    for w in amd64.symbols().windows(2) {
        assert!(
            w[0].addr + w[0].size <= w[1].addr,
            "{} overlaps {}",
            w[0].name,
            w[1].name
        );
    }

    let arm64 = image.symbols(Some(Arch::Aarch64)).unwrap();
    assert_eq!(
        (arm64.source.as_str(), arm64.arch),
        ("zip:.symtab.arm64", Arch::Aarch64)
    );
    assert_eq!(arm64.by_name("_start")[0].addr, 0x800000120);
    assert_eq!(image.symbols_from("zip:.symtab.arm64").unwrap().len(), arm64.len());
}

/// Every field `relive info` prints, against the independent reader, for
/// every APE available (the fixtures and `$RELIVE_EXTRA_APE_DIR`).
#[test]
fn every_field_matches_the_reference_reader() {
    for path in common::ape_files() {
        let reference = common::reference(&path);
        let image = Image::open(&path).unwrap();
        let info = info_json(&image);
        let ctx = path.display().to_string();
        assert_eq!(info["size"], reference["size"], "{ctx}");

        let ours = info["elf"].as_array().unwrap();
        let theirs = reference["elf"].as_array().unwrap();
        assert_eq!(ours.len(), theirs.len(), "{ctx}: ELF header count");
        for (o, t) in ours.iter().zip(theirs) {
            for key in [
                "header_offset",
                "machine",
                "e_machine",
                "entry",
                "phoff",
                "phnum",
                "segments",
            ] {
                assert_eq!(strip_extra(&o[key]), t[key], "{ctx}: elf[{}].{key}", o["header_offset"]);
            }
        }

        match (&info["macho"], &reference["macho"]) {
            (Value::Null, Value::Null) => {}
            (o, t) => {
                for key in ["offset", "size", "cputype", "entry"] {
                    assert_eq!(o[key], t[key], "{ctx}: macho.{key}");
                }
                assert_eq!(strip_extra(&o["segments"]), t["segments"], "{ctx}: macho.segments");
            }
        }

        match (&info["pe"], &reference["pe"]) {
            (Value::Null, Value::Null) => {}
            (o, t) => {
                for key in ["offset", "machine", "image_base", "entry_rva", "sections"] {
                    assert_eq!(o[key], t[key], "{ctx}: pe.{key}");
                }
            }
        }

        assert_eq!(
            info["zip"]["entries"], reference["zip"]["entries"],
            "{ctx}: zip entries"
        );

        // Symbol tables: counts in `info`, full contents through `symbols`.
        for (entry, expected) in reference["symtabs"].as_object().unwrap() {
            let label = format!("zip:{entry}");
            let listed = info["symbols"]
                .as_array()
                .unwrap()
                .iter()
                .find(|s| s["source"] == label.as_str());
            let expected = expected.as_array().unwrap();
            assert_eq!(listed.unwrap()["count"], json!(expected.len()), "{ctx}: {label} count");
            let table = image.symbols_from(&label).unwrap();
            let mut ours: Vec<Value> = table
                .symbols()
                .iter()
                .map(|s| json!([s.name, s.addr, s.size]))
                .collect();
            let mut theirs = expected.clone();
            ours.sort_by_key(|v| (v[1].as_u64(), v[0].as_str().map(str::to_owned)));
            theirs.sort_by_key(|v| (v[1].as_u64(), v[0].as_str().map(str::to_owned)));
            assert_eq!(ours, theirs, "{ctx}: {label} symbols");
        }
    }
}

/// Our segment objects carry `align` too; the reference does not.
fn strip_extra(v: &Value) -> Value {
    match v {
        Value::Array(items) => Value::Array(items.iter().map(strip_extra).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| !["align", "initprot"].contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        other => other.clone(),
    }
}

#[test]
fn assimilated_ent_elf_keeps_its_ape_parts() {
    let image = open("ent.elf");
    let l = image.layout();
    assert_eq!(l.format, Format::ApeAssimilated);
    assert_eq!(l.ape_magic, None);
    assert_eq!(l.elf[0].header_offset, 0);
    assert_eq!(l.elf[0].machine, Arch::X86_64);
    assert_eq!(l.elf[1].machine, Arch::Aarch64);
    assert!(l.elf[1].header_offset > 0);
    assert!(l.pe.is_none(), "the MZ header was overwritten");
    assert!(l.macho.is_some());
    assert!(l.zip().unwrap().entry(".symtab.amd64").is_some());
    // Same program as ent.com: same symbols, same x86-64 segments.
    let com = open("ent.com");
    assert_eq!(com.layout().elf[0].entry, l.elf[0].entry);
    let a = serde_json::to_value(&com.layout().elf[0].segments).unwrap();
    let b = serde_json::to_value(&l.elf[0].segments).unwrap();
    assert_eq!(a, b);
    let main_com = com.symbols(None).unwrap().by_name("main")[0].addr;
    let main_elf = image.symbols(None).unwrap().by_name("main")[0].addr;
    assert_eq!(main_com, main_elf);
}

/// readelf only understands the assimilated file, which is exactly what an
/// independent check of the x86-64 view of ent.com needs.
#[test]
fn ent_segments_agree_with_readelf() {
    let readelf = common::run(
        std::process::Command::new("readelf")
            .args(["-lW"])
            .arg(common::fixture("ent.elf")),
    );
    let image = open("ent.com");
    let loads: Vec<_> = image.layout().elf[0]
        .segments
        .iter()
        .filter(|s| s.kind.name() == Some("LOAD"))
        .collect();
    let readelf_loads: Vec<Vec<u64>> = readelf
        .lines()
        .filter(|l| l.trim_start().starts_with("LOAD"))
        .map(|l| {
            l.split_whitespace()
                .skip(1)
                .take(5)
                .map(|f| u64::from_str_radix(f.trim_start_matches("0x"), 16).unwrap())
                .collect()
        })
        .collect();
    assert_eq!(loads.len(), readelf_loads.len());
    for (ours, theirs) in loads.iter().zip(&readelf_loads) {
        // Offset, VirtAddr, PhysAddr, FileSiz, MemSiz.
        assert_eq!(
            [ours.offset, ours.vaddr, ours.filesz, ours.memsz],
            [theirs[0], theirs[1], theirs[3], theirs[4]]
        );
    }
}

#[test]
fn x86_64_views_agree_and_refuse_outside_addresses() {
    let image = open("pledge.com");
    let view = image.view(Some(Arch::X86_64)).unwrap();
    assert_eq!(view.image_base, Some(0x3f0000));
    let main = 0x4049e0;
    let offset = view.va_to_offset(main).unwrap();
    assert_eq!(offset, main - 0x3f0000);
    assert_eq!(view.offset_to_va(offset).unwrap(), main);
    // The PE path (RVA -> offset through sections) agrees with the ELF path.
    let rva = view.va_to_rva(main).unwrap();
    assert_eq!(view.rva_to_offset(rva).unwrap(), offset);
    assert_eq!(view.offset_to_rva(offset).unwrap(), rva);
    assert_eq!(view.section_of(main), Some(".text"));
    // The bytes at that offset are main's first instructions in the file.
    assert_eq!(view.from_offset(offset).unwrap().va, Some(main));

    // Zero-filled .bss: a VA with no file bytes.
    let data = image.layout().elf[0]
        .segments
        .iter()
        .find(|s| s.flags.writable() && s.kind.name() == Some("LOAD"))
        .unwrap();
    let bss = data.vaddr + data.filesz + 8;
    assert!(matches!(view.va_to_offset(bss), Err(ImageError::NoFileBytes { .. })));
    assert_eq!(view.from_va(bss).unwrap().offset, None);
    // Outside everything.
    assert!(matches!(view.va_to_offset(0x10), Err(ImageError::NotMapped { .. })));
    assert!(matches!(
        view.offset_to_va(image.data().len() as u64 - 1),
        Err(ImageError::NotMapped { .. })
    ));
    assert!(view.va_to_rva(0x1000).is_err());

    // arm64: no PE, so RVAs are relative to the ELF base.
    let arm = image.view(Some(Arch::Aarch64)).unwrap();
    assert_eq!(arm.image_base, Some(0x800000000 - 0x60000));
    assert_eq!(arm.va_to_offset(0x800000120).unwrap(), 0x60120);
    assert!(matches!(
        image.view(Some(Arch::Riscv64)),
        Err(ImageError::ArchNotPresent { .. })
    ));
}

/// A copy of pledge.com with `edit` applied, parsed from memory.
fn variant(edit: impl FnOnce(&mut Vec<u8>)) -> Image {
    let mut data = std::fs::read(common::fixture("pledge.com")).unwrap();
    edit(&mut data);
    Image::from_bytes("variant.com", data).unwrap()
}

fn replace_same_length(data: &mut [u8], from: &[u8], to: &[u8]) {
    assert_eq!(from.len(), to.len());
    let at = data
        .windows(from.len())
        .position(|w| w == from)
        .expect("pattern not in file");
    data[at..at + to.len()].copy_from_slice(to);
}

#[test]
fn every_magic_is_recognised() {
    for magic in [ApeMagic::UnixOnly, ApeMagic::UnixOnlyNewline, ApeMagic::Debug] {
        let image = variant(|d| d[..8].copy_from_slice(magic.bytes()));
        let l = image.layout();
        assert_eq!((l.format, l.ape_magic), (Format::Ape, Some(magic)));
        assert_eq!(l.elf.len(), 2);
        assert!(l.pe.is_none(), "only MZqFpD=' is a PE");
        assert_eq!(l.macho.as_ref().map(|m| m.offset), Some(0xc98));
        assert_eq!(image.symbols(None).unwrap().len(), 1858);
    }
}

#[test]
fn old_dd_encodings_locate_the_same_macho() {
    let modern = b"skip=3224       count=528        ";
    for old in [
        &b"skip=\"3224\"     count=\"528\"      "[..],
        &b"skip=\"  3224\"   count=\"  528\"    "[..],
        &b"skip=$((3224))  count=$((528))   "[..],
    ] {
        let image = variant(|d| replace_same_length(d, modern, old));
        let m = image
            .layout()
            .macho
            .as_ref()
            .unwrap_or_else(|| panic!("{}", String::from_utf8_lossy(old)));
        assert_eq!((m.offset, m.size, m.entry), (0xc98, 528, Some(0x404570)));
    }
    // A dd line pointing at something that is not a Mach-O header is ignored.
    let image = variant(|d| replace_same_length(d, modern, b"skip=3228       count=528        "));
    assert!(image.layout().macho.is_none());
}

#[test]
fn printf_headers_are_chosen_by_machine_not_order() {
    // Swap the two printf statements' machines: each header keeps its offset
    // but the machine names follow e_machine.
    let image = variant(|d| {
        // `>` (62) becomes `\267` (183); three escaped NULs become raw NUL
        // bytes, which the decoder passes through literally, to keep the length.
        replace_same_length(d, b"\\2\\0>\\0\\1\\0\\0\\0wE@", b"\\2\\0\\267\\0\\1\0\0\0wE@");
    });
    let machines: Vec<Arch> = image.layout().elf.iter().map(|h| h.machine).collect();
    // Both now claim aarch64: only the first is used for that machine, and
    // there is no x86-64 ELF header any more.
    assert_eq!(machines, [Arch::Aarch64]);
    assert_eq!(image.layout().elf[0].header_offset, 909);
}

/// A llamafile-style file: pledge.com followed by a 4 GiB STORE entry and a
/// new ZIP64 central directory (sparse, so it costs no disk).
#[test]
fn zip64_llamafile_layout_opens_without_reading_the_payload() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.com");
    relive_image::zip::testing::write_llamafile_like(
        &std::fs::read(common::fixture("pledge.com")).unwrap(),
        4 << 30,
        &path,
    )
    .unwrap();
    let image = Image::open(&path).unwrap();
    let zip = image.layout().zip().unwrap();
    assert!(zip.zip64);
    let big = zip.entry("weights.bin").unwrap();
    assert_eq!((big.size, big.compressed_size, big.method), (4 << 30, 4 << 30, 0));
    assert_eq!(zip.entries.len(), 6, "the original five entries are kept");
    // STORE data is a zero-copy slice of the mapping.
    let data = image.zip_entry("weights.bin").unwrap();
    assert!(matches!(data, std::borrow::Cow::Borrowed(_)));
    assert_eq!(data.len() as u64, 4 << 30);
    assert_eq!(image.symbols(None).unwrap().len(), 1858);
    assert!(Path::new(&path).metadata().unwrap().len() > 4 << 30);
}
