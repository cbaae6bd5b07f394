//! A program's IRELATIVE relocations: where the loader (or a static
//! program's start-up code) stores the implementation each GNU indirect
//! function chose.
//!
//! A statically linked program has its own `memcpy`, `strlen`, ... as
//! IFUNCs; its calls go through a GOT slot that an `R_X86_64_IRELATIVE`
//! relocation fills at start-up with what the resolver (the relocation's
//! addend) returned. Reading that slot in the running process tells the
//! implementation without running the resolver.

use object::elf;
use object::read::elf::{FileHeader, Rela, SectionHeader};
use object::Endianness;

/// One IRELATIVE relocation, at link-time addresses (add the module's load
/// bias): the `slot` filled with what `resolver` returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Irelative {
    pub slot: u64,
    pub resolver: u64,
}

/// Every x86-64 IRELATIVE relocation of the ELF64 file `data`, from each
/// `SHT_RELA` section (`.rela.plt` of a static program, `.rela.dyn` or
/// `.rela.plt` of a dynamic one). Anything unreadable yields nothing.
pub fn x86_64_irelative(data: &[u8]) -> Vec<Irelative> {
    let Ok(header) = elf::FileHeader64::<Endianness>::parse(data) else {
        return Vec::new();
    };
    let Ok(endian) = header.endian() else {
        return Vec::new();
    };
    if header.e_machine(endian) != elf::EM_X86_64 {
        return Vec::new();
    }
    let Ok(sections) = header.sections(endian, data) else {
        return Vec::new();
    };
    sections
        .iter()
        .filter(|s| s.sh_type(endian) == elf::SHT_RELA)
        .filter_map(|s| s.data_as_array::<elf::Rela64<Endianness>, _>(endian, data).ok())
        .flatten()
        .filter(|r| r.r_type(endian, false) == elf::R_X86_64_IRELATIVE)
        .map(|r| Irelative {
            slot: r.r_offset(endian),
            resolver: r.r_addend(endian) as u64,
        })
        .collect()
}

/// One GOT slot of a dynamically linked module that the dynamic linker
/// fills with the address of the named symbol (`R_X86_64_JUMP_SLOT` of a
/// PLT call, `R_X86_64_GLOB_DAT` of an address taken), at link-time
/// addresses (add the module's load bias). For a GNU indirect function
/// the loader stores what its resolver chose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportSlot {
    pub slot: u64,
    pub name: String,
}

/// The import slots of the x86-64 ELF file `data`. Anything unreadable
/// yields nothing.
pub fn x86_64_import_slots(data: &[u8]) -> Vec<ImportSlot> {
    use object::read::elf::ElfFile64;
    use object::{Object, ObjectSymbol, ObjectSymbolTable, RelocationFlags, RelocationTarget};
    let Ok(file) = ElfFile64::<Endianness>::parse(data) else {
        return Vec::new();
    };
    if file.elf_header().e_machine(file.endian()) != elf::EM_X86_64 {
        return Vec::new();
    }
    let (Some(relocations), Some(symbols)) = (file.dynamic_relocations(), file.dynamic_symbol_table()) else {
        return Vec::new();
    };
    relocations
        .filter(|(_, r)| {
            matches!(
                r.flags(),
                RelocationFlags::Elf {
                    r_type: elf::R_X86_64_JUMP_SLOT | elf::R_X86_64_GLOB_DAT
                }
            )
        })
        .filter_map(|(slot, r)| {
            let RelocationTarget::Symbol(index) = r.target() else {
                return None;
            };
            let name = symbols.symbol_by_index(index).ok()?.name().ok()?;
            Some(ImportSlot {
                slot,
                name: name.to_string(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_bytes_yield_nothing() {
        assert!(x86_64_irelative(b"").is_empty());
        assert!(x86_64_irelative(&[0x7f, b'E', b'L', b'F', 2, 1, 1]).is_empty());
        let mut junk = vec![0u8; 4096];
        junk[..4].copy_from_slice(b"\x7fELF");
        junk[4] = 2;
        junk[5] = 1;
        junk[0x28..0x30].copy_from_slice(&u64::MAX.to_le_bytes()); // e_shoff
        junk[0x3c] = 0xff; // e_shnum
        assert!(x86_64_irelative(&junk).is_empty());
        assert!(x86_64_import_slots(b"").is_empty());
        assert!(x86_64_import_slots(&junk).is_empty());
    }

    /// A dynamically linked program: the slots of what it imports, by
    /// name (`strlen`'s, a PLT call or an address taken).
    #[test]
    fn a_dynamic_program_lists_its_import_slots() {
        let dir = tempfile::tempdir().unwrap();
        let src = "#include <string.h>\nint main(int c, char **v) { return (int)strlen(v[c - 1]); }\n";
        let exe = relive_testkit::compile(dir.path(), "app", src, &["-O2"]);
        let data = std::fs::read(&exe).unwrap();
        let slots: Vec<ImportSlot> = x86_64_import_slots(&data)
            .into_iter()
            .filter(|s| s.name == "strlen")
            .collect();
        assert_eq!(slots.len(), 1, "{slots:?}");
        assert_ne!(slots[0].slot, 0);
    }

    /// A statically linked program: each IFUNC it calls (`memcpy`,
    /// `strlen`) has an IRELATIVE slot whose resolver is that symbol.
    #[test]
    fn a_static_program_lists_its_ifunc_slots() {
        let dir = tempfile::tempdir().unwrap();
        let src = "#include <string.h>\nint main(int c, char **v) { char b[64]; memcpy(b, v[0], c); return (int)strlen(v[0]) + b[0]; }\n";
        let exe = relive_testkit::compile(dir.path(), "app", src, &["-O2", "-static"]);
        let data = std::fs::read(&exe).unwrap();
        let found = x86_64_irelative(&data);
        let table = crate::Image::open(&exe).unwrap().symbols(None).unwrap();
        let resolver = |name: &str| table.by_name(name).first().map(|s| s.addr).unwrap();
        for name in ["memcpy", "strlen"] {
            assert!(
                found.iter().any(|r| r.resolver == resolver(name)),
                "{name} has no IRELATIVE slot: {found:x?}"
            );
        }
    }
}
