//! Symbols from an ELF `.symtab` or `.dynsym` (executables, shared objects,
//! relocatable objects and debug companions).

use std::sync::Arc;

use object::elf as E;
use object::read::elf::{ElfFile, FileHeader, Sym};
use object::Endianness;

use super::{Binding, Symbol, SymbolKind};
use crate::arch::Arch;
use crate::error::{ImageError, Result};

/// Which of the two ELF symbol tables to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    Symtab,
    Dynsym,
}

impl Which {
    pub fn section_name(self) -> &'static str {
        match self {
            Which::Symtab => ".symtab",
            Which::Dynsym => ".dynsym",
        }
    }
}

/// The symbols of one table, or `None` if the file has no such table.
/// Defined symbols only; section and file symbols are not listed but
/// `STT_FILE` names are attached to the local symbols that follow them.
pub fn read(data: &[u8], which: Which) -> Result<Option<(Arch, Vec<Symbol>)>> {
    match data.get(4).map(|&c| E::FileClass(c)) {
        Some(E::ELFCLASS32) => read_generic::<E::FileHeader32<Endianness>>(data, which),
        Some(E::ELFCLASS64) => read_generic::<E::FileHeader64<Endianness>>(data, which),
        _ => Err(ImageError::invalid("ELF header", 0, "unknown EI_CLASS")),
    }
}

/// How many symbols [`read`] would return, without building them: used by
/// reports that only need the count.
pub fn count(data: &[u8], which: Which) -> Result<Option<u64>> {
    match data.get(4).map(|&c| E::FileClass(c)) {
        Some(E::ELFCLASS32) => count_generic::<E::FileHeader32<Endianness>>(data, which),
        Some(E::ELFCLASS64) => count_generic::<E::FileHeader64<Endianness>>(data, which),
        _ => Err(ImageError::invalid("ELF header", 0, "unknown EI_CLASS")),
    }
}

fn open<H: FileHeader<Endian = Endianness>>(data: &[u8]) -> Result<ElfFile<'_, H>> {
    ElfFile::<H>::parse(data).map_err(|e| ImageError::object("ELF file", 0, e))
}

/// Whether a raw symbol is one that is listed: defined, named, and not a
/// section or file marker.
fn is_listed<S: Sym>(sym: &S, endian: S::Endian, name: &[u8]) -> bool {
    let st_type = sym.st_type();
    st_type != E::STT_FILE && st_type != E::STT_SECTION && sym.st_shndx(endian) != E::SHN_UNDEF && !name.is_empty()
}

/// Whether the `.dynsym` entry at an index is a non-default version of
/// its name (`VERSYM_HIDDEN`: libm's `log@GLIBC_2.2.5` beside
/// `log@@GLIBC_2.29`), which a link binds no new reference to: listed, it
/// was found by the plain name too, and a patch's `log` called the old
/// version (a gawk trial: `log(-4)` printed `nan` where a fresh build
/// prints `-nan`). Never for `.symtab`, whose names spell their versions.
fn hidden_versions<'f, H: FileHeader<Endian = Endianness>>(
    file: &'f ElfFile<'_, H>,
    which: Which,
) -> impl Fn(usize) -> bool + 'f {
    let endian = file.endian();
    let versyms = match which {
        Which::Dynsym => file
            .elf_section_table()
            .gnu_versym(endian, file.data())
            .ok()
            .flatten()
            .map(|(versyms, _)| versyms),
        Which::Symtab => None,
    };
    move |index| {
        versyms
            .and_then(|v| v.get(index))
            .is_some_and(|v| v.0.get(endian).is_hidden())
    }
}

fn count_generic<H: FileHeader<Endian = Endianness>>(data: &[u8], which: Which) -> Result<Option<u64>> {
    let file = open::<H>(data)?;
    let endian = file.endian();
    let table = match which {
        Which::Symtab => file.elf_symbol_table(),
        Which::Dynsym => file.elf_dynamic_symbol_table(),
    };
    if table.is_empty() {
        return Ok(None);
    }
    let hidden = hidden_versions(&file, which);
    let listed = table
        .symbols()
        .iter()
        .enumerate()
        .filter(|(index, sym)| {
            is_listed(*sym, endian, table.symbol_name(endian, *sym).unwrap_or_default()) && !hidden(*index)
        })
        .count();
    Ok(Some(listed as u64))
}

fn read_generic<H: FileHeader<Endian = Endianness>>(data: &[u8], which: Which) -> Result<Option<(Arch, Vec<Symbol>)>> {
    let file = open::<H>(data)?;
    let endian = file.endian();
    let arch = Arch::from_e_machine(file.elf_header().e_machine(endian).0);
    let table = match which {
        Which::Symtab => file.elf_symbol_table(),
        Which::Dynsym => file.elf_dynamic_symbol_table(),
    };
    if table.is_empty() {
        return Ok(None);
    }
    let mut out = Vec::with_capacity(table.len());
    let mut current_file: Option<Arc<str>> = None;
    let hidden = hidden_versions(&file, which);
    for (index, sym) in table.symbols().iter().enumerate() {
        let raw_name = table.symbol_name(endian, sym).unwrap_or_default();
        let st_type = sym.st_type();
        if st_type == E::STT_FILE {
            current_file = Some(Arc::from(String::from_utf8_lossy(raw_name)));
            continue;
        }
        if !is_listed(sym, endian, raw_name) || hidden(index) {
            continue;
        }
        let name = String::from_utf8_lossy(raw_name).into_owned();
        let shndx = sym.st_shndx(endian);
        let binding = match sym.st_bind() {
            E::STB_LOCAL => Binding::Local,
            E::STB_GLOBAL | E::STB_GNU_UNIQUE => Binding::Global,
            E::STB_WEAK => Binding::Weak,
            _ => Binding::Unknown,
        };
        let kind = match st_type {
            E::STT_FUNC => SymbolKind::Function,
            E::STT_OBJECT => SymbolKind::Object,
            E::STT_TLS => SymbolKind::Tls,
            E::STT_GNU_IFUNC => SymbolKind::Ifunc,
            E::STT_COMMON => SymbolKind::Common,
            _ if shndx == E::SHN_COMMON => SymbolKind::Common,
            _ => SymbolKind::Notype,
        };
        out.push(Symbol {
            name,
            addr: sym.st_value(endian).into(),
            size: sym.st_size(endian).into(),
            kind,
            binding,
            file: if binding == Binding::Local {
                current_file.clone()
            } else {
                None
            },
            section: shndx.index().map(u32::from),
        });
    }
    Ok(Some((arch, out)))
}
