//! Symbol tables and lookups.
//!
//! Names are not unique (a `static` in two translation units, Cosmopolitan's
//! `once.0` twice), so name lookup returns every match, and local symbols
//! keep the source file (`STT_FILE`) they belong to where the table says.

pub mod cosmo;
pub mod elf;
pub mod generic;

use std::sync::Arc;

use serde::Serialize;

use crate::arch::Arch;

/// What a symbol names, as far as its table says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SymbolKind {
    Function,
    Object,
    Tls,
    Ifunc,
    Common,
    /// `STT_NOTYPE`: an assembler label or similar.
    Notype,
    /// The table does not say (Cosmopolitan `.symtab.<arch>`).
    Unknown,
}

/// Visibility across translation units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Binding {
    Local,
    Global,
    Weak,
    Unknown,
}

#[derive(Debug, Clone, Serialize)]
pub struct Symbol {
    pub name: String,
    /// The symbol's value: a virtual address in executables and shared
    /// objects, a section offset in relocatable objects.
    pub addr: u64,
    pub size: u64,
    pub kind: SymbolKind,
    pub binding: Binding,
    /// The `STT_FILE` name a local symbol belongs to.
    pub file: Option<Arc<str>>,
    /// ELF section index, where the table has one.
    #[serde(skip)]
    pub section: Option<u32>,
}

impl Symbol {
    /// One past the last byte (a zero-sized symbol covers only its address).
    fn end(&self) -> u64 {
        self.addr.saturating_add(self.size.max(1))
    }

    /// Higher is a better answer to "which symbol is at this address".
    fn rank(&self) -> (bool, bool, u8) {
        let typed = matches!(
            self.kind,
            SymbolKind::Function | SymbolKind::Object | SymbolKind::Tls | SymbolKind::Ifunc
        );
        let binding = match self.binding {
            Binding::Global => 3,
            Binding::Weak => 2,
            Binding::Local => 1,
            Binding::Unknown => 0,
        };
        (self.size > 0, typed, binding)
    }
}

/// One source's symbols, sorted by address, with both lookups.
#[derive(Debug, Clone)]
pub struct SymbolTable {
    /// Where the symbols came from (`zip:.symtab.amd64`, `elf:.symtab`, …).
    pub source: String,
    pub arch: Arch,
    symbols: Vec<Symbol>,
    /// `max_end[i]` = the largest end of `symbols[..=i]`: lets address lookup
    /// stop walking backwards as soon as no earlier symbol can reach `addr`.
    max_end: Vec<u64>,
    /// Name lookup: `(hash, symbol, length)` for every symbol's name and
    /// for the plain part of a versioned one (`stdout` of
    /// `stdout@GLIBC_2.2.5`), sorted by the hash of that part of the name,
    /// then by symbol (address order). Lookups are by exact name only, so
    /// a hash order serves as well as the names' order and sorts without
    /// reading a single name; a sorted index rather than a map of owned
    /// names: building it allocates nothing per symbol, and a program's
    /// table is read on every patch.
    by_name: Vec<(u64, u32, u32)>,
}

/// The hash [`SymbolTable`] orders names by: fixed, so a table's order
/// does not depend on the run.
fn name_hash(name: &str) -> u64 {
    use std::hash::BuildHasher;
    foldhash::fast::FixedState::with_seed(0).hash_one(name.as_bytes())
}

impl SymbolTable {
    pub fn new(source: impl Into<String>, arch: Arch, symbols: Vec<Symbol>) -> SymbolTable {
        // Sorted through an index (symbols are large to move around), by
        // address, then name, then table order.
        let mut order: Vec<(u64, u32)> = symbols.iter().enumerate().map(|(i, s)| (s.addr, i as u32)).collect();
        order.sort_unstable_by(|a, b| {
            a.0.cmp(&b.0)
                .then_with(|| symbols[a.1 as usize].name.cmp(&symbols[b.1 as usize].name))
                .then(a.1.cmp(&b.1))
        });
        let mut slots: Vec<Option<Symbol>> = symbols.into_iter().map(Some).collect();
        let mut symbols: Vec<Symbol> = Vec::with_capacity(slots.len());
        symbols.extend(
            order
                .iter()
                .filter_map(|&(_, i)| slots.get_mut(i as usize).and_then(Option::take)),
        );
        let mut max_end = Vec::with_capacity(symbols.len());
        let mut running = 0u64;
        let mut by_name: Vec<(u64, u32, u32)> = Vec::with_capacity(symbols.len());
        for (i, s) in symbols.iter().enumerate() {
            running = running.max(s.end());
            max_end.push(running);
            by_name.push((name_hash(&s.name), i as u32, s.name.len() as u32));
            // A versioned name (`stdout@GLIBC_2.2.5`, the program's copy of
            // a library variable) is also found by its plain name.
            if let Some((plain, _)) = s.name.split_once('@').filter(|(p, _)| !p.is_empty()) {
                by_name.push((name_hash(plain), i as u32, plain.len() as u32));
            }
        }
        by_name.sort_unstable();
        SymbolTable {
            source: source.into(),
            arch,
            symbols,
            max_end,
            by_name,
        }
    }

    /// All symbols, sorted by address.
    pub fn symbols(&self) -> &[Symbol] {
        &self.symbols
    }

    pub fn len(&self) -> usize {
        self.symbols.len()
    }

    pub fn is_empty(&self) -> bool {
        self.symbols.is_empty()
    }

    /// Every symbol with this exact name, in address order. A versioned
    /// name counts as its plain name (`stdout@GLIBC_2.2.5`, an executable's
    /// copy of a library variable), but where the table defines the name's
    /// default version (`log@@GLIBC_2.29`, a library's table), its other
    /// versions (`log@GLIBC_2.2.5`) are not the name: a link binds a new
    /// reference to the default one.
    pub fn by_name(&self, name: &str) -> Vec<&Symbol> {
        let hash = name_hash(name);
        let from = self.by_name.partition_point(|e| e.0 < hash);
        let mut found: Vec<&Symbol> = self.by_name[from..]
            .iter()
            .take_while(|e| e.0 == hash)
            .map(|&(_, i, len)| (&self.symbols[i as usize], len as usize))
            .filter(|(s, len)| s.name.get(..*len) == Some(name))
            .map(|(s, _)| s)
            .collect();
        let default = |s: &Symbol| s.name.as_bytes().get(name.len()..name.len() + 2) == Some(b"@@");
        if found.iter().any(|s| default(s)) {
            found.retain(|s| s.name.len() == name.len() || default(s));
        }
        found
    }

    /// The symbol containing `addr` and the offset into it. Where several
    /// contain it, the innermost (highest start) wins, then sized over
    /// zero-sized, typed over untyped, global over weak over local.
    /// Every symbol that starts exactly at `addr` (aliases: several names
    /// for one function or object).
    pub fn starting_at(&self, addr: u64) -> Vec<&Symbol> {
        let from = self.symbols.partition_point(|s| s.addr < addr);
        self.symbols[from..].iter().take_while(|s| s.addr == addr).collect()
    }

    pub fn by_addr(&self, addr: u64) -> Option<(&Symbol, u64)> {
        let upto = self.symbols.partition_point(|s| s.addr <= addr);
        let mut best: Option<&Symbol> = None;
        for i in (0..upto).rev() {
            if self.max_end[i] <= addr {
                break;
            }
            let s = &self.symbols[i];
            if let Some(b) = best {
                if s.addr < b.addr {
                    break;
                }
            }
            if addr < s.end() && best.is_none_or(|b| s.rank() > b.rank()) {
                best = Some(s);
            }
        }
        best.map(|s| (s, addr - s.addr))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sym(name: &str, addr: u64, size: u64, binding: Binding) -> Symbol {
        Symbol {
            name: name.into(),
            addr,
            size,
            kind: SymbolKind::Function,
            binding,
            file: None,
            section: None,
        }
    }

    #[test]
    fn lookups() {
        let t = SymbolTable::new(
            "test",
            Arch::X86_64,
            vec![
                sym("big", 0x1000, 0x1000, Binding::Global),
                sym("inner", 0x1100, 0x10, Binding::Local),
                sym("dup", 0x3000, 4, Binding::Local),
                sym("dup", 0x2000, 4, Binding::Local),
                sym("label", 0x2800, 0, Binding::Global),
                sym("alias_local", 0x4000, 8, Binding::Local),
                sym("alias_global", 0x4000, 8, Binding::Global),
            ],
        );
        assert_eq!(t.by_addr(0x1105).map(|(s, o)| (s.name.as_str(), o)), Some(("inner", 5)));
        assert_eq!(
            t.by_addr(0x1500).map(|(s, o)| (s.name.as_str(), o)),
            Some(("big", 0x500))
        );
        assert_eq!(t.by_addr(0x2800).map(|(s, _)| s.name.as_str()), Some("label"));
        assert!(t.by_addr(0x2801).is_none());
        assert!(t.by_addr(0x2004).is_none());
        assert!(t.by_addr(0xfff).is_none());
        assert_eq!(t.by_addr(0x4004).map(|(s, _)| s.name.as_str()), Some("alias_global"));
        let dups: Vec<u64> = t.by_name("dup").iter().map(|s| s.addr).collect();
        assert_eq!(dups, vec![0x2000, 0x3000]);
        assert!(t.by_name("nope").is_empty());
    }
}
