//! Symbols of a live process: every module's table with its load bias
//! applied, so a name gives the address the process uses, and an address
//! gives the symbol (and module) it falls in.
//!
//! Each module's table is read when first needed: a patch that refers
//! only to the program's own symbols never reads libc's thousands (that
//! read was a fifth of a small patch's time).

use std::sync::{Arc, OnceLock};

use relive_image::Image;

use relive_image::symbols::{Binding, SymbolKind};
use relive_image::{Symbol, SymbolTable};
use serde::Serialize;

use crate::modules::{LoadedModule, ProcessModules};

/// A symbol at its address in the process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LiveSymbol {
    pub name: String,
    pub addr: u64,
    pub size: u64,
    /// The file it comes from (program or shared library).
    pub module: String,
    /// For a local symbol, the source file it belongs to (`STT_FILE`),
    /// which tells same-named statics apart.
    pub file: Option<Arc<str>>,
    pub kind: SymbolKind,
    pub binding: Binding,
}

struct ModuleSymbols {
    path: String,
    inode: u64,
    bias: u64,
    base: u64,
    end: u64,
    image: Result<Arc<Image>, String>,
    /// Read from `image` on first use; why not, when it cannot be.
    table: OnceLock<Result<SymbolTable, String>>,
}

impl ModuleSymbols {
    /// The module's table, read now if it was not yet.
    fn table(&self) -> Option<&SymbolTable> {
        self.read().as_ref().ok()
    }

    fn read(&self) -> &Result<SymbolTable, String> {
        self.table.get_or_init(|| match &self.image {
            Ok(image) => image.symbols(None).map_err(|e| e.to_string()),
            Err(why) => Err(why.clone()),
        })
    }
}

/// The symbol tables of every module of one process.
pub struct LiveSymbols {
    modules: Vec<ModuleSymbols>,
}

impl LiveSymbols {
    /// The symbol tables of each module (program first), each read when
    /// first needed. A module without one resolves nothing; the others
    /// still do ([`LiveSymbols::warnings`] says why).
    pub fn load(modules: &ProcessModules) -> LiveSymbols {
        let modules = modules
            .all()
            .map(|m| ModuleSymbols {
                path: m.module.path.clone(),
                inode: m.module.inode,
                bias: m.module.load_bias,
                base: m.module.base,
                end: m.module.end,
                image: image_of(m),
                table: OnceLock::new(),
            })
            .collect();
        LiveSymbols { modules }
    }

    /// Per module without symbols: why (printed as warnings). Reads every
    /// module's table.
    pub fn warnings(&self) -> Vec<String> {
        self.modules
            .iter()
            .filter_map(|m| m.read().as_ref().err().map(|e| format!("{}: {e}", m.path)))
            .collect()
    }

    /// The program's table: where it came from and how many symbols.
    pub fn main_source(&self) -> Option<(&str, usize)> {
        let table = self.modules.first()?.table()?;
        Some((table.source.as_str(), table.len()))
    }

    /// The path of the program (the first module).
    pub fn main_module(&self) -> Option<&str> {
        self.modules.first().map(|m| m.path.as_str())
    }

    /// The program image's address range.
    pub fn main_range(&self) -> Option<(u64, u64)> {
        self.modules.first().map(|m| (m.base, m.end))
    }

    /// Every symbol of the program (the first module), load bias applied.
    pub fn program_symbols(&self) -> Vec<LiveSymbol> {
        match self.modules.first() {
            Some(m) => m
                .table()
                .map(|t| t.symbols().iter().map(|s| live(m, s)).collect())
                .unwrap_or_default(),
            None => Vec::new(),
        }
    }

    /// Every local symbol that names its source file (`STT_FILE`) of the
    /// modules `module` selects (every module when `None`), program first:
    /// `(symbol, its address in the process, module path)`. Borrowed,
    /// because a library has thousands of symbols and only these are
    /// wanted.
    pub fn file_locals<'s>(&'s self, module: Option<&'s str>) -> impl Iterator<Item = (&'s Symbol, u64, &'s str)> {
        self.modules
            .iter()
            .filter(move |m| module.is_none_or(|path| m.path == path))
            .flat_map(|m| {
                m.table()
                    .into_iter()
                    .flat_map(|t| t.symbols().iter())
                    .filter(|s| s.binding == Binding::Local && s.file.is_some())
                    .map(move |s| (s, s.addr.wrapping_add(m.bias), m.path.as_str()))
            })
    }

    /// The module mapped at `addr`: its path and address range.
    pub fn module_at(&self, addr: u64) -> Option<(&str, u64, u64)> {
        self.modules
            .iter()
            .find(|m| m.base <= addr && addr < m.end)
            .map(|m| (m.path.as_str(), m.base, m.end))
    }

    /// Whether module `path` defines a GNU indirect function.
    pub fn defines_ifuncs(&self, path: &str) -> bool {
        self.modules
            .iter()
            .filter(|m| m.path == path)
            .filter_map(|m| m.table())
            .any(|t| t.symbols().iter().any(|s| s.kind == SymbolKind::Ifunc))
    }

    /// The image of module `path` and its load bias, when relive could
    /// read the file.
    pub fn module_image(&self, path: &str) -> Option<(Arc<Image>, u64)> {
        let m = self.modules.iter().find(|m| m.path == path)?;
        Some((m.image.as_ref().ok()?.clone(), m.bias))
    }

    /// The module `path`: its base (lowest mapped address) and inode, for
    /// relating addresses across processes.
    pub fn module_base(&self, path: &str) -> Option<(u64, u64)> {
        self.modules.iter().find(|m| m.path == path).map(|m| (m.base, m.inode))
    }

    /// Every defined symbol called `name`, program first, then libraries.
    pub fn lookup(&self, name: &str) -> Vec<LiveSymbol> {
        self.lookup_in(name, None)
    }

    /// [`LiveSymbols::lookup`] in the modules `module` selects only (every
    /// module when `None`), reading no other module's table.
    pub fn lookup_in(&self, name: &str, module: Option<&str>) -> Vec<LiveSymbol> {
        self.lookup_where(name, |path| module.is_none_or(|wanted| path == wanted))
    }

    /// [`LiveSymbols::lookup`] in the modules whose path `wanted` accepts,
    /// reading no other module's table.
    pub fn lookup_where(&self, name: &str, wanted: impl Fn(&str) -> bool) -> Vec<LiveSymbol> {
        self.modules
            .iter()
            .filter(|m| wanted(&m.path))
            .flat_map(|m| {
                let found = m.table().map(|t| t.by_name(name)).unwrap_or_default();
                found.into_iter().filter(|s| s.addr != 0).map(move |s| live(m, s))
            })
            .collect()
    }

    /// Every symbol, in every module, that `wanted` accepts by its name
    /// and whether it is local (a scan of each table: for names not known
    /// exactly, such as GCC's numbered statics `count.3` or C++ names as
    /// people write them).
    pub fn scan(&self, wanted: impl Fn(&str, bool) -> bool) -> Vec<LiveSymbol> {
        self.modules
            .iter()
            .flat_map(|m| {
                let table = m.table();
                let found: Vec<&Symbol> = table
                    .map(|t| {
                        t.symbols()
                            .iter()
                            .filter(|s| s.addr != 0 && wanted(&s.name, s.binding == Binding::Local))
                            .collect()
                    })
                    .unwrap_or_default();
                found.into_iter().map(move |s| live(m, s))
            })
            .collect()
    }

    /// Every thread-local symbol named `name`, in every module: the
    /// module's path and the symbol as its table has it (`addr` is the
    /// offset in the module's TLS block, not an address: no bias
    /// applied, and 0 is a valid offset).
    pub fn thread_locals(&self, name: &str) -> Vec<(&str, Symbol)> {
        self.modules
            .iter()
            .flat_map(|m| {
                let found = m.table().map(|t| t.by_name(name)).unwrap_or_default();
                found
                    .into_iter()
                    .filter(|s| s.kind == SymbolKind::Tls)
                    .map(move |s| (m.path.as_str(), s.clone()))
            })
            .collect()
    }

    /// The symbol containing `addr` and the offset into it.
    /// Every symbol starting exactly at `addr`: one function known by
    /// several names (aliases, or code the compiler folded into one).
    pub fn starting_at(&self, addr: u64) -> Vec<LiveSymbol> {
        let Some(m) = self.modules.iter().find(|m| m.base <= addr && addr < m.end) else {
            return Vec::new();
        };
        m.table()
            .map(|t| {
                t.starting_at(addr.wrapping_sub(m.bias))
                    .into_iter()
                    .map(|s| live(m, s))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn at(&self, addr: u64) -> Option<(LiveSymbol, u64)> {
        let m = self.modules.iter().find(|m| m.base <= addr && addr < m.end)?;
        let (symbol, offset) = m.table()?.by_addr(addr.wrapping_sub(m.bias))?;
        Some((live(m, symbol), offset))
    }

    /// `name+0x1f` (or `[module]+0x1234`, or the bare address) for display.
    pub fn describe(&self, addr: u64) -> String {
        if let Some((s, offset)) = self.at(addr) {
            return match offset {
                0 => s.name,
                _ => format!("{}+{offset:#x}", s.name),
            };
        }
        match self.modules.iter().find(|m| m.base <= addr && addr < m.end) {
            Some(m) => format!("{}+{:#x}", short_name(&m.path), addr - m.base),
            None => format!("{addr:#x}"),
        }
    }
}

fn image_of(m: &LoadedModule) -> Result<Arc<Image>, String> {
    m.image
        .clone()
        .ok_or_else(|| m.image_error.clone().unwrap_or_else(|| "cannot be read".into()))
}

fn live(m: &ModuleSymbols, s: &Symbol) -> LiveSymbol {
    LiveSymbol {
        name: s.name.clone(),
        addr: s.addr.wrapping_add(m.bias),
        size: s.size,
        module: m.path.clone(),
        file: s.file.clone(),
        kind: s.kind,
        binding: s.binding,
    }
}

fn short_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}
