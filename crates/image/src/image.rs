//! A binary file on disk: its bytes, its parsed [`Layout`], and the symbol
//! tables it and its debug companion carry.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::arch::Arch;
use crate::elf::ElfHeader;
use crate::error::{ImageError, Result};
use crate::layout::{Format, Layout};
use crate::macho::MachOHeader;
use crate::mapped::FileBytes;
use crate::pe::PeHeader;
use crate::symbols::{self, SymbolTable};
use crate::translate::ArchView;
use crate::zip::ZipArchive;

/// Where a symbol table can be read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SymbolSource {
    /// A Cosmopolitan `.symtab.<arch>` (or `.symtab`) ZIP entry.
    Zip { entry: String },
    /// The file's own ELF `.symtab` or `.dynsym`.
    Elf { which: symbols::elf::Which },
    /// A companion debug ELF (`PROGRAM.dbg`, `PROGRAM.com.dbg`).
    Debug { path: PathBuf },
    /// A plain PE or Mach-O file's own table, read through `object`.
    Object {
        format: Format,
        which: symbols::generic::Which,
    },
}

impl SymbolSource {
    /// The name printed in reports and accepted by `--source`.
    pub fn label(&self) -> String {
        match self {
            SymbolSource::Zip { entry } => format!("zip:{entry}"),
            SymbolSource::Elf { which } => format!("elf:{}", which.section_name()),
            SymbolSource::Debug { path } => format!("debug:{}", path.display()),
            SymbolSource::Object { format, which } => format!("{}:{}", format.name(), which.label()),
        }
    }
}

/// A symbol source with its architecture and how many symbols it lists.
#[derive(Debug, Clone, Serialize)]
pub struct SymbolSourceInfo {
    #[serde(serialize_with = "serialize_label")]
    pub source: SymbolSource,
    pub arch: Arch,
    pub count: u64,
}

fn serialize_label<S: serde::Serializer>(source: &SymbolSource, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&source.label())
}

/// What `relive info` prints.
#[derive(Debug, Serialize)]
pub struct Info<'a> {
    pub path: String,
    pub size: u64,
    pub format: Format,
    pub ape_magic: Option<&'static str>,
    pub elf: &'a [ElfHeader],
    pub macho: Option<&'a MachOHeader>,
    pub pe: Option<&'a PeHeader>,
    pub zip: Option<&'a ZipArchive>,
    pub symbols: Vec<SymbolSourceInfo>,
    pub warnings: Vec<String>,
}

/// An opened binary.
pub struct Image {
    path: PathBuf,
    bytes: FileBytes,
    layout: Layout,
}

impl Image {
    /// Maps and parses the file at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Image> {
        let path = path.as_ref().to_path_buf();
        let bytes = FileBytes::open(&path)?;
        let layout = Layout::parse(bytes.as_slice())?;
        Ok(Image { path, bytes, layout })
    }

    /// Parses bytes already in memory; `path` is used for messages and to
    /// look for debug companions.
    pub fn from_bytes(path: impl Into<PathBuf>, data: Vec<u8>) -> Result<Image> {
        let layout = Layout::parse(&data)?;
        Ok(Image {
            path: path.into(),
            bytes: FileBytes::Owned(data),
            layout,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn data(&self) -> &[u8] {
        self.bytes.as_slice()
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    pub fn format(&self) -> Format {
        self.layout.format
    }

    /// The address-translation view of `arch` (or the default architecture).
    pub fn view(&self, arch: Option<Arch>) -> Result<ArchView> {
        let arch = self.layout.pick_arch(arch)?;
        Ok(ArchView::new(&self.layout, arch))
    }

    /// The uncompressed bytes of a ZIP entry (zero-copy for STORE).
    pub fn zip_entry(&self, name: &str) -> Result<Cow<'_, [u8]>> {
        let zip = self.layout.zip()?;
        let entry = zip
            .entry(name)
            .ok_or_else(|| ImageError::EntryNotFound { name: name.into() })?;
        entry.data(self.data())
    }

    /// Debug companions that exist next to the file: `PROGRAM.dbg` and
    /// `PROGRAM.com.dbg`, the names Cosmopolitan's runtime tries.
    pub fn debug_companions(&self) -> Vec<PathBuf> {
        let mut names = vec![with_suffix(&self.path, ".dbg")];
        if self.path.extension().is_none_or(|e| e != "com") {
            names.push(with_suffix(&self.path, ".com.dbg"));
        }
        names.into_iter().filter(|p| p.is_file()).collect()
    }

    /// Every symbol source, in the order [`Image::symbols`] prefers them:
    /// `.symtab.<arch>` ZIP entries, a bare `.symtab` entry, the file's own
    /// `.symtab`, debug companions, then `.dynsym`. Counts come from headers
    /// (a ZIP table's count is in its first 72 bytes, so only those are
    /// inflated). A source that cannot be read is left out and noted in
    /// `warnings`.
    pub fn symbol_sources(&self, warnings: &mut Vec<String>) -> Vec<SymbolSourceInfo> {
        let mut out = Vec::new();
        let data = self.data();
        if let Ok(Some(zip)) = &self.layout.zip {
            let primary = self.layout.default_arch().unwrap_or(Arch::host());
            let mut tables: Vec<(Arch, &crate::zip::ZipEntry)> = zip
                .entries
                .iter()
                .filter_map(|e| {
                    let suffix = e.name.strip_prefix(".symtab")?;
                    let arch = match suffix {
                        "" => primary,
                        s => Arch::from_cosmo_suffix(s.strip_prefix('.')?)?,
                    };
                    Some((arch, e))
                })
                .collect();
            // Architecture-specific entries before the bare `.symtab`.
            tables.sort_by_key(|(_, e)| e.name == ".symtab");
            for (arch, entry) in tables {
                let counted = entry
                    .prefix(data, symbols::cosmo::HEADER_LEN)
                    .and_then(|head| symbols::cosmo::header(&head));
                match counted {
                    Ok(h) => out.push(SymbolSourceInfo {
                        source: SymbolSource::Zip {
                            entry: entry.name.clone(),
                        },
                        arch,
                        count: h.count,
                    }),
                    Err(e) => warnings.push(format!("ZIP entry {}: {e}", entry.name)),
                }
            }
        }
        let elf_arch = self
            .layout
            .elf
            .first()
            .filter(|h| h.header_offset == 0)
            .map(|h| h.machine);
        if let Some(arch) = elf_arch {
            self.push_elf_source(data, symbols::elf::Which::Symtab, arch, &mut out, warnings);
        }
        for path in self.debug_companions() {
            match debug_count(&path) {
                Ok(Some((arch, count))) => out.push(SymbolSourceInfo {
                    source: SymbolSource::Debug { path },
                    arch,
                    count,
                }),
                Ok(None) => {}
                Err(e) => warnings.push(format!("debug companion {}: {e}", path.display())),
            }
        }
        if let Some(arch) = elf_arch {
            self.push_elf_source(data, symbols::elf::Which::Dynsym, arch, &mut out, warnings);
        }
        if matches!(self.layout.format, Format::Pe | Format::MachO) {
            if let Some(arch) = self.layout.default_arch() {
                for which in [symbols::generic::Which::Symbols, symbols::generic::Which::Exports] {
                    match symbols::generic::read(data, which) {
                        Ok(Some(list)) => out.push(SymbolSourceInfo {
                            source: SymbolSource::Object {
                                format: self.layout.format,
                                which,
                            },
                            arch,
                            count: list.len() as u64,
                        }),
                        Ok(None) => {}
                        Err(e) => warnings.push(format!("{} {}: {e}", self.layout.format.name(), which.label())),
                    }
                }
            }
        }
        out
    }

    fn push_elf_source(
        &self,
        data: &[u8],
        which: symbols::elf::Which,
        arch: Arch,
        out: &mut Vec<SymbolSourceInfo>,
        warnings: &mut Vec<String>,
    ) {
        match symbols::elf::count(data, which) {
            Ok(Some(count)) => out.push(SymbolSourceInfo {
                source: SymbolSource::Elf { which },
                arch,
                count,
            }),
            Ok(None) => {}
            Err(e) => warnings.push(format!("{}: {e}", which.section_name())),
        }
    }

    /// Reads the preferred symbol table for `arch` (or the default one).
    pub fn symbols(&self, arch: Option<Arch>) -> Result<SymbolTable> {
        let arch = self.layout.pick_arch(arch)?;
        let mut warnings = Vec::new();
        let sources = self.symbol_sources(&mut warnings);
        match sources.iter().find(|s| s.arch == arch) {
            Some(s) => self.read_symbols(&s.source, arch),
            None => Err(ImageError::NoSymbols {
                arch: arch.name(),
                looked_for: format!(
                    "ZIP entry .symtab.{}, .symtab, ELF .symtab/.dynsym, {}.dbg{}",
                    arch.cosmo_suffix().unwrap_or("?"),
                    self.path.display(),
                    if warnings.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", warnings.join("; "))
                    }
                ),
            }),
        }
    }

    /// Reads one source by its label (`zip:.symtab.arm64`, `elf:.dynsym`, …).
    pub fn symbols_from(&self, label: &str) -> Result<SymbolTable> {
        let sources = self.symbol_sources(&mut Vec::new());
        let found = sources
            .iter()
            .find(|s| s.source.label() == label)
            .ok_or_else(|| ImageError::NoSymbols {
                arch: "any".into(),
                looked_for: format!(
                    "source {label:?}; this file has: {}",
                    sources.iter().map(|s| s.source.label()).collect::<Vec<_>>().join(", ")
                ),
            })?;
        self.read_symbols(&found.source, found.arch)
    }

    fn read_symbols(&self, source: &SymbolSource, arch: Arch) -> Result<SymbolTable> {
        let symbols = match source {
            SymbolSource::Zip { entry } => symbols::cosmo::parse(&self.zip_entry(entry)?)?,
            SymbolSource::Elf { which } => symbols::elf::read(self.data(), *which)?
                .map(|(_, s)| s)
                .unwrap_or_default(),
            SymbolSource::Debug { path } => {
                let bytes = FileBytes::open(path)?;
                symbols::elf::read(bytes.as_slice(), symbols::elf::Which::Symtab)?
                    .map(|(_, s)| s)
                    .unwrap_or_default()
            }
            SymbolSource::Object { which, .. } => symbols::generic::read(self.data(), *which)?.unwrap_or_default(),
        };
        Ok(SymbolTable::new(source.label(), arch, symbols))
    }

    /// The report `relive info` prints.
    pub fn info(&self) -> Info<'_> {
        let mut warnings = self.layout.warnings.clone();
        let symbols = self.symbol_sources(&mut warnings);
        Info {
            path: self.path.display().to_string(),
            size: self.data().len() as u64,
            format: self.layout.format,
            ape_magic: self.layout.ape_magic.map(|m| m.as_str()),
            elf: &self.layout.elf,
            macho: self.layout.macho.as_ref(),
            pe: self.layout.pe.as_ref(),
            zip: self.layout.zip.as_ref().ok().and_then(Option::as_ref),
            symbols,
            warnings,
        }
    }
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

fn debug_count(path: &Path) -> Result<Option<(Arch, u64)>> {
    let bytes = FileBytes::open(path)?;
    let data = bytes.as_slice();
    let header = crate::elf::parse_header(data.get(..64).unwrap_or(data), data, 0)?;
    Ok(symbols::elf::count(data, symbols::elf::Which::Symtab)?.map(|n| (header.machine, n)))
}
