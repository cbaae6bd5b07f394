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
