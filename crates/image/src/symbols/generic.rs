//! Symbols of plain PE and Mach-O files through `object`'s format-neutral
//! API: Mach-O `LC_SYMTAB` (nlist) symbols, PE COFF symbols and exports.
//!
//! Neither format records symbol sizes, so a size is inferred as the
//! distance to the next symbol in the same section (or the section's end),
//! which is what address lookups need.

use object::{Object, ObjectSection, ObjectSymbol, SectionIndex, SymbolKind as K};

use super::{Binding, Symbol, SymbolKind};
use crate::error::{ImageError, Result};

/// Which generic table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    /// Mach-O nlist symbols or PE COFF symbols.
    Symbols,
    /// PE export directory.
    Exports,
}

impl Which {
    pub fn label(self) -> &'static str {
        match self {
            Which::Symbols => "symtab",
            Which::Exports => "exports",
        }
    }
}

/// Reads `which`; `None` when the file has no such table.
pub fn read(data: &[u8], which: Which) -> Result<Option<Vec<Symbol>>> {
    let file = object::File::parse(data).map_err(|e| ImageError::object("object file", 0, e))?;
    let mut out: Vec<Symbol> = match which {
        Which::Symbols => file
            .symbols()
            .filter(|s| s.is_definition() && !s.name().unwrap_or("").is_empty())
            .map(|s| Symbol {
                name: s.name().unwrap_or_default().to_owned(),
                addr: s.address(),
                size: s.size(),
                kind: match s.kind() {
                    K::Text => SymbolKind::Function,
                    K::Data => SymbolKind::Object,
                    K::Tls => SymbolKind::Tls,
                    _ => SymbolKind::Notype,
                },
                binding: if s.is_weak() {
                    Binding::Weak
                } else if s.is_global() {
                    Binding::Global
                } else {
                    Binding::Local
                },
                file: None,
                section: s.section_index().map(|i| i.0 as u32),
            })
            .collect(),
        Which::Exports => {
            let mut list = Vec::new();
            for export in file.exports().map_err(|e| ImageError::object("export table", 0, e))? {
                let export = export.map_err(|e| ImageError::object("export table", 0, e))?;
                // Ordinal-only and forwarded exports have no name or no address here.
                let (object::NameOrOrdinal::Name(name), object::ExportTarget::Address { address }) =
                    (export.name(), export.target())
                else {
                    continue;
                };
                list.push(Symbol {
                    name: String::from_utf8_lossy(name).into_owned(),
                    addr: address,
                    size: 0,
                    kind: SymbolKind::Unknown,
                    binding: Binding::Global,
                    file: None,
                    section: None,
                });
            }
            list
        }
    };
    if out.is_empty() {
        return Ok(None);
    }
    infer_sizes(&file, &mut out);
    Ok(Some(out))
}

fn infer_sizes(file: &object::File<'_>, symbols: &mut [Symbol]) {
    symbols.sort_by_key(|s| s.addr);
    let ends: Vec<Option<u64>> = symbols
        .iter()
        .map(|s| {
            let section = file.section_by_index(SectionIndex(s.section? as usize)).ok()?;
            section.address().checked_add(section.size())
        })
        .collect();
    for i in 0..symbols.len() {
        if symbols[i].size != 0 {
            continue;
        }
        let next = symbols[i + 1..]
            .iter()
            .find(|n| n.addr > symbols[i].addr && n.section == symbols[i].section)
            .map(|n| n.addr);
        let limit = match (next, ends[i]) {
            (Some(n), Some(e)) => Some(n.min(e)),
            (n, e) => n.or(e),
        };
        if let Some(limit) = limit {
            symbols[i].size = limit.saturating_sub(symbols[i].addr);
        }
    }
}
