//! Resolving a patch's symbols in the running program: [`Resolver`] over
//! the process's live symbol tables.

use std::collections::HashMap;

use relive_image::symbols::{Binding, SymbolKind};
use relive_process::symbols::LiveSymbols;

use crate::link::Resolver;
use crate::names;

/// A static of some module: (name, address, module path).
type Static = (String, u64, String);

/// Symbols of a running process, as the linker asks for them.
pub struct LiveResolver {
    symbols: LiveSymbols,
    /// Statics of every module by (source file's base name, GCC-stable
    /// name): (name, address, module).
    statics: HashMap<(String, String), Vec<Static>>,
    /// The module the patched code belongs to (the program, or a shared
    /// library): its path and range. The patch region is placed within
    /// rel32 reach of it.
    home: (String, u64, u64),
}

/// The program's path and address range: the home of a patch by default.
fn program(symbols: &LiveSymbols) -> (String, u64, u64) {
    let (lo, hi) = symbols.main_range().unwrap_or((0, 0));
    (symbols.main_module().unwrap_or("").to_string(), lo, hi)
}

fn base_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

impl LiveResolver {
    pub fn new(symbols: LiveSymbols) -> LiveResolver {
        let mut statics: HashMap<(String, String), Vec<Static>> = HashMap::new();
        for s in symbols.all_symbols() {
            if let (Binding::Local, Some(file)) = (s.binding, &s.file) {
                let key = (base_name(file).to_string(), names::parse(&s.name).stable());
                statics
                    .entry(key)
                    .or_default()
                    .push((s.name.clone(), s.addr, s.module.clone()));
            }
        }
        let home = program(&symbols);
        LiveResolver { symbols, statics, home }
    }

    /// Makes the module mapped at `addr` (where a function being replaced
    /// lives) the home of the next patch; the program when `None` or
    /// unmapped.
    pub fn set_home(&mut self, addr: Option<u64>) {
        self.home = match addr.and_then(|a| self.symbols.module_at(a)) {
            Some((path, lo, hi)) => (path.to_string(), lo, hi),
            None => program(&self.symbols),
        };
    }

    /// The home module's path and address range.
    pub fn home(&self) -> (&str, u64, u64) {
        (&self.home.0, self.home.1, self.home.2)
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
        // through relive's own copy of the same library (glibc's `time` and
        // `gettimeofday` choose the kernel's vDSO: the target's own).
        use relive_process::ifunc::{self, Implementation};
        let (base, inode) = self.symbols.module_base(&chosen.module)?;
        match ifunc::implementation(&chosen.module, inode, name)? {
            Implementation::InModule(offset) => Some(base + offset),
            Implementation::Vdso(function) => self
                .symbols
                .lookup(&function)
                .into_iter()
                .find(|s| s.module == relive_process::vdso::PATH)
                .map(|s| s.addr),
        }
    }

    fn local(&self, file: &str, name: &str) -> Option<u64> {
        let stable = names::parse(name).stable();
        let all = self.statics.get(&(base_name(file).to_string(), stable))?;
        // The home module's, if it has any (the same file name may be
        // compiled into the program and a library).
        let home: Vec<_> = all.iter().filter(|(_, _, m)| *m == self.home.0).collect();
        let candidates: Vec<_> = if home.is_empty() { all.iter().collect() } else { home };
        // The same name exactly, else the only one with that stable name:
        // GCC's numbering may differ between the two compiles.
        candidates
            .iter()
            .find(|(n, _, _)| n == name)
            .or(match candidates.as_slice() {
                [only] => Some(only),
                _ => None,
            })
            .map(|&&(_, addr, _)| addr)
    }

    fn in_image(&self, addr: u64) -> bool {
        self.home.1 <= addr && addr < self.home.2
    }
}
