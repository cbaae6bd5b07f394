//! Resolving a patch's symbols in the running program: [`Resolver`] over
//! the process's live symbol tables.

use std::collections::HashMap;

use relive_image::symbols::{Binding, SymbolKind};
use relive_process::symbols::LiveSymbols;

use crate::link::Resolver;
use crate::names;

/// Symbols of a running process, as the linker asks for them.
pub struct LiveResolver {
    symbols: LiveSymbols,
    /// Program statics by (source file's base name, GCC-stable name).
    statics: HashMap<(String, String), Vec<(String, u64)>>,
    image: (u64, u64),
}

fn base_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

impl LiveResolver {
    pub fn new(symbols: LiveSymbols) -> LiveResolver {
        let mut statics: HashMap<(String, String), Vec<(String, u64)>> = HashMap::new();
        for s in symbols.program_symbols() {
            if let (Binding::Local, Some(file)) = (s.binding, &s.file) {
                let key = (base_name(file).to_string(), names::parse(&s.name).stable());
                statics.entry(key).or_default().push((s.name.clone(), s.addr));
            }
        }
        let image = symbols.main_range().unwrap_or((0, 0));
        LiveResolver {
            symbols,
            statics,
            image,
        }
    }

    pub fn symbols(&self) -> &LiveSymbols {
        &self.symbols
    }

    /// The size of the function or object at `addr` (0 if unknown).
    pub fn size_at(&self, addr: u64) -> u64 {
        match self.symbols.at(addr) {
            Some((s, 0)) => s.size,
            _ => 0,
        }
    }
}

impl Resolver for LiveResolver {
    fn global(&self, name: &str) -> Option<u64> {
        let found = self.symbols.lookup(name);
        // Program first (lookup's order), global over weak; a symbol table
        // without bindings (Cosmopolitan's) counts as global.
        let rank = |b: Binding| match b {
            Binding::Global | Binding::Unknown => 0,
            Binding::Weak => 1,
            Binding::Local => 2,
        };
        let chosen = found
            .iter()
            .filter(|s| s.binding != Binding::Local)
            .min_by_key(|s| (s.module != self.symbols.main_module().unwrap_or(""), rank(s.binding)))?;
        if chosen.kind != SymbolKind::Ifunc {
            return Some(chosen.addr);
        }
        // An IFUNC's address is its resolver: find the implementation
        // through relive's own copy of the same library.
        let (base, inode) = self.symbols.module_base(&chosen.module)?;
        let offset = relive_process::ifunc::implementation_offset(&chosen.module, inode, name)?;
        Some(base + offset)
    }

    fn local(&self, file: &str, name: &str) -> Option<u64> {
        let stable = names::parse(name).stable();
        let candidates = self.statics.get(&(base_name(file).to_string(), stable))?;
        // The same name exactly, else the only one with that stable name:
        // GCC's numbering may differ between the two compiles.
        candidates
            .iter()
            .find(|(n, _)| n == name)
            .or(match candidates.as_slice() {
                [only] => Some(only),
                _ => None,
            })
            .map(|&(_, addr)| addr)
    }

    fn in_image(&self, addr: u64) -> bool {
        self.image.0 <= addr && addr < self.image.1
    }
}
