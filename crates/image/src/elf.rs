//! ELF headers and program headers, wherever the header comes from.
//!
//! A plain ELF file has its header at offset 0. An APE carries one header per
//! architecture as `printf` text and its program headers at `e_phoff` in the
//! file itself; an assimilated APE has one decoded header at offset 0 and the
//! others still as text. In every case the header is a 64-byte (or 52-byte)
//! buffer and the program headers are read from the *file*, so one function
//! serves all three ("virtual assimilation").

use object::elf;
use object::read::elf::{FileHeader, ProgramHeader, SectionHeader};
use object::Endianness;
use serde::Serialize;

use crate::arch::Arch;
use crate::error::{ImageError, Result};

/// `e_ident` indices (object names the fields, not the indices).
const EI_CLASS: usize = 4;
const EI_DATA: usize = 5;

/// One ELF header and its program headers.
#[derive(Debug, Clone, Serialize)]
pub struct ElfHeader {
    /// File offset of the `printf` statement's `p`, or 0 for a header at the
    /// start of the file.
    pub header_offset: u64,
    pub machine: Arch,
    pub e_machine: u16,
    /// `e_type`: 1 REL, 2 EXEC, 3 DYN, 4 CORE.
    pub e_type: u16,
    /// 64 for ELFCLASS64, 32 for ELFCLASS32.
    pub class: u8,
    pub entry: u64,
    pub phoff: u64,
    pub phnum: u64,
    pub e_flags: u32,
    pub segments: Vec<Segment>,
    /// Section headers, when the header is at offset 0 and the file has them
    /// (APE printf headers never do).
    pub sections: Vec<ElfSection>,
    /// The GNU build-id note (hex), when a `PT_NOTE` segment carries one.
    pub build_id: Option<String>,
}

/// One program header.
#[derive(Debug, Clone, Serialize)]
pub struct Segment {
    #[serde(rename = "type")]
    pub kind: SegmentType,
    pub flags: SegmentFlags,
    pub offset: u64,
    pub vaddr: u64,
    pub filesz: u64,
    pub memsz: u64,
    pub align: u64,
}

/// One section header of a plain ELF file.
#[derive(Debug, Clone, Serialize)]
pub struct ElfSection {
    pub index: u32,
    pub name: String,
    /// `sh_type` (1 PROGBITS, 2 SYMTAB, 8 NOBITS, 11 DYNSYM, …).
    pub sh_type: u32,
    pub addr: u64,
    pub offset: u64,
    pub size: u64,
    pub flags: u64,
    pub entsize: u64,
}

impl ElfSection {
    /// Whether the section occupies memory at run time (`SHF_ALLOC`).
    pub fn is_alloc(&self) -> bool {
        self.flags & elf::SHF_ALLOC.0 != 0
    }
}

/// `p_type`, printed by name where it has a well-known one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentType(pub u32);

impl SegmentType {
    pub const LOAD: SegmentType = SegmentType(elf::PT_LOAD.0);

    pub fn name(self) -> Option<&'static str> {
        Some(match elf::ProgramType(self.0) {
            elf::PT_NULL => "NULL",
            elf::PT_LOAD => "LOAD",
            elf::PT_DYNAMIC => "DYNAMIC",
            elf::PT_INTERP => "INTERP",
            elf::PT_NOTE => "NOTE",
            elf::PT_SHLIB => "SHLIB",
            elf::PT_PHDR => "PHDR",
            elf::PT_TLS => "TLS",
            elf::PT_GNU_EH_FRAME => "GNU_EH_FRAME",
            elf::PT_GNU_STACK => "GNU_STACK",
            elf::PT_GNU_RELRO => "GNU_RELRO",
            elf::PT_GNU_PROPERTY => "GNU_PROPERTY",
            _ => return None,
        })
    }
}

impl Serialize for SegmentType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self.name() {
            Some(name) => s.serialize_str(name),
            None => s.serialize_u32(self.0),
        }
    }
}

impl std::fmt::Display for SegmentType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "{:#x}", self.0),
        }
    }
}

/// `p_flags`, printed `r-x` style.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentFlags(pub u32);

impl SegmentFlags {
    pub fn readable(self) -> bool {
        self.0 & elf::PF_R.0 != 0
    }
    pub fn writable(self) -> bool {
        self.0 & elf::PF_W.0 != 0
    }
    pub fn executable(self) -> bool {
        self.0 & elf::PF_X.0 != 0
    }
}

impl std::fmt::Display for SegmentFlags {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let bit = |on: bool, c: char| if on { c } else { '-' };
        write!(
            f,
            "{}{}{}",
            bit(self.readable(), 'r'),
            bit(self.writable(), 'w'),
            bit(self.executable(), 'x')
        )
    }
}

impl Serialize for SegmentFlags {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// What an APE `printf` header must be for the loader to accept it.
pub(crate) fn check_ape_header(bytes: &[u8]) -> std::result::Result<(), &'static str> {
    if bytes.len() < 64 {
        return Err("decodes to fewer than 64 bytes");
    }
    if bytes[..4] != elf::ELFMAG {
        return Err("does not start with \\x7fELF");
    }
    if bytes[EI_CLASS] != elf::ELFCLASS64.0 {
        return Err("is not ELFCLASS64");
    }
    if bytes[EI_DATA] != elf::ELFDATA2LSB.0 {
        return Err("is not little-endian");
    }
    let e_type = u16::from_le_bytes([bytes[16], bytes[17]]);
    if e_type != elf::ET_EXEC.0 && e_type != elf::ET_DYN.0 {
        return Err("is neither ET_EXEC nor ET_DYN");
    }
    let e_phentsize = u16::from_le_bytes([bytes[54], bytes[55]]);
    if e_phentsize != 56 {
        return Err("has e_phentsize != 56");
    }
    Ok(())
}

/// Parses the ELF header in `header_bytes` (decoded printf text or the
/// start of the file) and its program headers from `file`.
pub(crate) fn parse_header(header_bytes: &[u8], file: &[u8], header_offset: u64) -> Result<ElfHeader> {
    match header_bytes.get(EI_CLASS).map(|&c| elf::FileClass(c)) {
        Some(elf::ELFCLASS32) => parse_generic::<elf::FileHeader32<Endianness>>(header_bytes, file, header_offset),
        Some(elf::ELFCLASS64) => parse_generic::<elf::FileHeader64<Endianness>>(header_bytes, file, header_offset),
        Some(other) => Err(ImageError::invalid(
            "ELF header",
            header_offset,
            format!("unknown EI_CLASS {}", other.0),
        )),
        None => Err(ImageError::Truncated {
            what: "ELF header",
            offset: header_offset,
            need: 64,
            len: header_bytes.len() as u64,
        }),
    }
}

fn parse_generic<H: FileHeader<Endian = Endianness>>(
    header_bytes: &[u8],
    file: &[u8],
    header_offset: u64,
) -> Result<ElfHeader> {
    let header = H::parse(header_bytes).map_err(|e| ImageError::object("ELF header", header_offset, e))?;
    let endian = header
        .endian()
        .map_err(|e| ImageError::object("ELF header", header_offset, e))?;
    let phoff: u64 = header.e_phoff(endian).into();
    let phdrs = header
        .program_headers(endian, file)
        .map_err(|e| ImageError::object("ELF program headers", phoff, e))?;
    let segments: Vec<Segment> = phdrs
        .iter()
        .map(|ph| Segment {
            kind: SegmentType(ph.p_type(endian).0),
            flags: SegmentFlags(ph.p_flags(endian).0),
            offset: ph.p_offset(endian).into(),
            vaddr: ph.p_vaddr(endian).into(),
            filesz: ph.p_filesz(endian).into(),
            memsz: ph.p_memsz(endian).into(),
            align: ph.p_align(endian).into(),
        })
        .collect();
    let build_id = phdrs.iter().find_map(|ph| gnu_build_id(ph, endian, file));
    let sections = if header_offset == 0 {
        sections(header, endian, file).unwrap_or_default()
    } else {
        Vec::new()
    };
    Ok(ElfHeader {
        header_offset,
        machine: Arch::from_e_machine(header.e_machine(endian).0),
        e_machine: header.e_machine(endian).0,
        e_type: header.e_type(endian).0,
        class: if header.is_type_64() { 64 } else { 32 },
        entry: header.e_entry(endian).into(),
        phoff,
        phnum: segments.len() as u64,
        e_flags: header.e_flags(endian).0,
        segments,
        sections,
        build_id,
    })
}

/// Reads the section headers of a plain ELF file. Damaged section headers do
/// not make the file unreadable (the kernel ignores them too), so the caller
/// treats an error here as "no sections".
fn sections<H: FileHeader<Endian = Endianness>>(
    header: &H,
    endian: Endianness,
    file: &[u8],
) -> Result<Vec<ElfSection>> {
    let table = header
        .sections(endian, file)
        .map_err(|e| ImageError::object("ELF section headers", header.e_shoff(endian).into(), e))?;
    Ok(table
        .enumerate()
        .map(|(index, sh)| ElfSection {
            index: index.0 as u32,
            name: table
                .section_name(endian, sh)
                .map(|n| String::from_utf8_lossy(n).into_owned())
                .unwrap_or_default(),
            sh_type: sh.sh_type(endian).0,
            addr: sh.sh_addr(endian).into(),
            offset: sh.sh_offset(endian).into(),
            size: sh.sh_size(endian).into(),
            flags: sh.sh_flags(endian).0,
            entsize: sh.sh_entsize(endian).into(),
        })
        .collect())
}

fn gnu_build_id<P: ProgramHeader<Endian = Endianness>>(ph: &P, endian: Endianness, file: &[u8]) -> Option<String> {
    let mut notes = ph.notes(endian, file).ok()??;
    while let Ok(Some(note)) = notes.next() {
        if note.name() == elf::ELF_NOTE_GNU && note.n_type(endian) == elf::NT_GNU_BUILD_ID {
            return Some(note.desc().iter().map(|b| format!("{b:02x}")).collect());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_and_types_print_like_readelf() {
        assert_eq!(SegmentFlags(elf::PF_R.0 | elf::PF_X.0).to_string(), "r-x");
        assert_eq!(SegmentFlags(elf::PF_R.0 | elf::PF_W.0).to_string(), "rw-");
        assert_eq!(SegmentType(elf::PT_GNU_STACK.0).to_string(), "GNU_STACK");
        assert_eq!(serde_json_value(&SegmentType(0x6474e999)), "1685383577");
        assert_eq!(serde_json_value(&SegmentType(elf::PT_TLS.0)), "\"TLS\"");
    }

    fn serde_json_value<T: Serialize>(v: &T) -> String {
        serde_json::to_string(v).unwrap()
    }

    #[test]
    fn ape_header_checks() {
        let mut h = vec![0u8; 64];
        h[..4].copy_from_slice(&elf::ELFMAG);
        h[EI_CLASS] = elf::ELFCLASS64.0;
        h[EI_DATA] = elf::ELFDATA2LSB.0;
        h[16] = elf::ET_EXEC.0 as u8;
        h[54] = 56;
        assert_eq!(check_ape_header(&h), Ok(()));
        h[54] = 32;
        assert!(check_ape_header(&h).is_err());
        h[54] = 56;
        h[16] = elf::ET_REL.0 as u8;
        assert!(check_ape_header(&h).is_err());
        assert!(check_ape_header(&h[..63]).is_err());
    }
}
