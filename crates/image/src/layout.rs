//! Format detection and the parsed headers of one file.
//!
//! [`Layout::parse`] is the whole parser for untrusted bytes: it reads the
//! magic, every header the format defines and the ZIP central directory, and
//! nothing else (no code, no payloads), so it costs the same for a 1 MiB
//! program and a 4 GiB llamafile.

use serde::Serialize;

use crate::ape::magic::ApeMagic;
use crate::ape::{dd, printf};
use crate::arch::Arch;
use crate::elf::{self, ElfHeader};
use crate::error::{ImageError, Result};
use crate::macho::{self, MachOHeader};
use crate::pe::PeHeader;
use crate::zip::ZipArchive;

/// What kind of file this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Format {
    /// An Actually Portable Executable, still starting with its shell-script magic.
    #[serde(rename = "ape")]
    Ape,
    /// An APE whose first 64 bytes were overwritten with a decoded ELF header
    /// (`--assimilate`); its script, printf lines and ZIP remain.
    #[serde(rename = "ape-assimilated")]
    ApeAssimilated,
    #[serde(rename = "elf")]
    Elf,
    #[serde(rename = "pe")]
    Pe,
    #[serde(rename = "macho")]
    MachO,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Ape => "ape",
            Format::ApeAssimilated => "ape-assimilated",
            Format::Elf => "elf",
            Format::Pe => "pe",
            Format::MachO => "macho",
        }
    }

    pub fn is_ape(self) -> bool {
        matches!(self, Format::Ape | Format::ApeAssimilated)
    }
}

/// Every header of a file.
#[derive(Debug, Clone)]
pub struct Layout {
    pub format: Format,
    pub ape_magic: Option<ApeMagic>,
    /// ELF headers, one per architecture: the header at offset 0 first (plain
    /// or assimilated), then each APE `printf` header for a machine not yet seen.
    pub elf: Vec<ElfHeader>,
    pub macho: Option<MachOHeader>,
    pub pe: Option<PeHeader>,
    /// The ZIP archive, absent, or the error that stopped it from being read.
    pub zip: Result<Option<ZipArchive>>,
    /// Structures that were present but unreadable, when the rest of the file
    /// is still usable (a damaged PE header inside an APE, say).
    pub warnings: Vec<String>,
}

const MH_MAGIC_64_LE: [u8; 4] = [0xcf, 0xfa, 0xed, 0xfe];
const MH_MAGIC_32_LE: [u8; 4] = [0xce, 0xfa, 0xed, 0xfe];
const FAT_MAGIC_BE: [u8; 4] = [0xca, 0xfe, 0xba, 0xbe];

impl Layout {
    /// Parses the headers of `data`.
    pub fn parse(data: &[u8]) -> Result<Layout> {
        let mut layout = Layout {
            format: Format::Elf,
            ape_magic: None,
            elf: Vec::new(),
            macho: None,
            pe: None,
            zip: Ok(None),
            warnings: Vec::new(),
        };
        if data.is_empty() {
            return Err(ImageError::invalid("file", 0, "the file is empty"));
        }
        let head = data.get(..4).unwrap_or(data);
        if let Some(magic) = ApeMagic::detect(data) {
            layout.format = Format::Ape;
            layout.ape_magic = Some(magic);
            layout.read_ape_parts(data);
            if magic == ApeMagic::Canonical {
                match PeHeader::parse(data) {
                    Ok(pe) => layout.pe = Some(pe),
                    Err(e) => layout.warnings.push(format!("PE header: {e}")),
                }
            }
        } else if head == object::elf::ELFMAG {
            let header = elf::parse_header(data.get(..64).unwrap_or(data), data, 0)?;
            layout.elf.push(header);
            if printf::statements(data)
                .iter()
                .any(|s| elf::check_ape_header(&s.bytes).is_ok())
            {
                layout.format = Format::ApeAssimilated;
                layout.read_ape_parts(data);
            }
        } else if head.starts_with(b"MZ") {
            layout.format = Format::Pe;
            layout.pe = Some(PeHeader::parse(data)?);
        } else if head == MH_MAGIC_64_LE {
            layout.format = Format::MachO;
            layout.macho = Some(MachOHeader::parse(data, 0, None)?);
        } else if head == MH_MAGIC_32_LE || head == FAT_MAGIC_BE {
            return Err(ImageError::invalid(
                "Mach-O header",
                0,
                "32-bit and fat (universal) Mach-O files are not supported; extract one 64-bit slice with `lipo -thin`",
            ));
        } else {
            return Err(ImageError::UnknownFormat {
                magic: data.iter().take(8).copied().collect(),
            });
        }
        layout.zip = ZipArchive::parse(data);
        if let Err(e) = &layout.zip {
            if layout.format.is_ape() {
                layout.warnings.push(format!("ZIP: {e}"));
            }
        }
        Ok(layout)
    }

    /// The APE parts shared by raw and assimilated files: printf ELF headers
    /// (one per machine, never chosen by order) and the `dd`-located Mach-O.
    fn read_ape_parts(&mut self, data: &[u8]) {
        for statement in printf::statements(data) {
            if elf::check_ape_header(&statement.bytes).is_err() {
                continue;
            }
            let e_machine = u16::from_le_bytes([statement.bytes[18], statement.bytes[19]]);
            if self.elf.iter().any(|h| h.e_machine == e_machine) {
                continue;
            }
            match elf::parse_header(&statement.bytes, data, statement.offset) {
                Ok(header) => self.elf.push(header),
                Err(e) => self
                    .warnings
                    .push(format!("printf ELF header at {:#x}: {e}", statement.offset)),
            }
        }
        if self.elf.is_empty() {
            self.warnings
                .push("no valid ELF header in the printf statements of the first 8192 bytes".into());
        }
        for candidate in dd::candidates(data) {
            if !macho::is_ape_macho(data, candidate.offset) {
                continue;
            }
            match MachOHeader::parse(data, candidate.offset, Some(candidate.size)) {
                Ok(m) => {
                    self.macho = Some(m);
                    break;
                }
                Err(e) => self
                    .warnings
                    .push(format!("Mach-O header at {:#x}: {e}", candidate.offset)),
            }
        }
    }

    /// The ZIP archive, or why there is none.
    pub fn zip(&self) -> Result<&ZipArchive> {
        match &self.zip {
            Ok(Some(zip)) => Ok(zip),
            Ok(None) => Err(ImageError::NoZip),
            Err(e) => Err(e.clone()),
        }
    }

    /// The ELF header for `arch`, if the file has one.
    pub fn elf_for(&self, arch: Arch) -> Option<&ElfHeader> {
        self.elf.iter().find(|h| h.machine == arch)
    }

    /// The PE header, if it describes `arch`.
    pub fn pe_for(&self, arch: Arch) -> Option<&PeHeader> {
        self.pe.as_ref().filter(|pe| pe_arch(pe.machine) == Some(arch))
    }

    /// The Mach-O header, if it describes `arch`.
    pub fn macho_for(&self, arch: Arch) -> Option<&MachOHeader> {
        self.macho.as_ref().filter(|m| macho_arch(m.cputype) == Some(arch))
    }

    /// Every architecture some header describes, ELF first, in file order.
    pub fn arches(&self) -> Vec<Arch> {
        let mut out: Vec<Arch> = self.elf.iter().map(|h| h.machine).collect();
        let others = [
            self.pe.as_ref().and_then(|p| pe_arch(p.machine)),
            self.macho.as_ref().and_then(|m| macho_arch(m.cputype)),
        ];
        for arch in others.into_iter().flatten() {
            if !out.contains(&arch) {
                out.push(arch);
            }
        }
        out
    }

    /// The architecture to use when the user names none: the host's if the
    /// file has it, else the first the file describes.
    pub fn default_arch(&self) -> Option<Arch> {
        let arches = self.arches();
        if arches.contains(&Arch::host()) {
            Some(Arch::host())
        } else {
            arches.first().copied()
        }
    }

    /// Resolves an optional user choice of architecture against the file.
    pub fn pick_arch(&self, wanted: Option<Arch>) -> Result<Arch> {
        let arches = self.arches();
        let available = || {
            if arches.is_empty() {
                "no architecture-specific headers".to_string()
            } else {
                arches.iter().map(|a| a.name()).collect::<Vec<_>>().join(", ")
            }
        };
        match wanted {
            Some(arch) if arches.contains(&arch) => Ok(arch),
            Some(arch) => Err(ImageError::ArchNotPresent {
                wanted: arch.name(),
                available: available(),
            }),
            None => self.default_arch().ok_or_else(|| ImageError::ArchNotPresent {
                wanted: "any".into(),
                available: available(),
            }),
        }
    }
}

/// COFF machine → architecture.
pub fn pe_arch(machine: u16) -> Option<Arch> {
    match object::pe::Machine(machine) {
        object::pe::IMAGE_FILE_MACHINE_AMD64 => Some(Arch::X86_64),
        object::pe::IMAGE_FILE_MACHINE_ARM64 => Some(Arch::Aarch64),
        object::pe::IMAGE_FILE_MACHINE_I386 => Some(Arch::I386),
        _ => None,
    }
}

/// Mach-O cputype → architecture.
pub fn macho_arch(cputype: u32) -> Option<Arch> {
    match object::macho::CpuType(cputype) {
        object::macho::CPU_TYPE_X86_64 => Some(Arch::X86_64),
        object::macho::CPU_TYPE_ARM64 => Some(Arch::Aarch64),
        _ => None,
    }
}
