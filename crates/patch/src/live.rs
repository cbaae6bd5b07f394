//! Resolving a patch's symbols in the running program: [`Resolver`] over
//! the process's live symbol tables.

use foldhash::{HashMap, HashMapExt};
use std::sync::OnceLock;

use relive_image::symbols::{Binding, SymbolKind};
use relive_process::symbols::{LiveSymbol, LiveSymbols};

use crate::journal::AddedRecord;
use crate::link::Resolver;
use crate::names;
use crate::tls::{TlsModule, TlsPlace};

/// A static of some module: (name, address, module path).
type Static = (String, u64, String);
/// Statics by (source file's base name, GCC-stable name).
type Statics = HashMap<(String, String), Vec<Static>>;

/// Symbols of a running process, as the linker asks for them.
pub struct LiveResolver {
    symbols: LiveSymbols,
    /// Statics of the home module, then of every module, gathered when
    /// first asked for (reading the tables they come from).
    home_statics: OnceLock<Statics>,
    all_statics: OnceLock<Statics>,
    /// The home module's read-only data, read when a patch first looks
    /// for a literal in it.
    home_constants: OnceLock<Option<Constants>>,
    /// The module the patched code belongs to (the program, or a shared
    /// library): its path and range. The patch region is placed within
    /// rel32 reach of it.
    home: (String, u64, u64),
    /// What earlier patches added (from the journal).
    added: Vec<AddedRecord>,
    /// IFUNC resolver address → the implementation it chose in the
    /// process, for modules relive has no copy of (a static program).
    ifunc_chosen: HashMap<u64, u64>,
    /// The modules' thread-local storage, once a patch that uses it has
    /// had it read ([`LiveResolver::set_tls`]).
    tls: Option<Vec<TlsModule>>,
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
    /// The home module's read-only data, read the first time a patch
    /// looks for a literal or constant in it.
    fn constants(&self) -> Option<&Constants> {
        self.home_constants
            .get_or_init(|| {
                let (image, bias) = self.symbols.module_image(&self.home.0)?;
                Constants::read(image, bias)
            })
            .as_ref()
    }

    pub fn new(symbols: LiveSymbols) -> LiveResolver {
        let home = program(&symbols);
        LiveResolver {
            symbols,
            home_statics: OnceLock::new(),
            all_statics: OnceLock::new(),
            home_constants: OnceLock::new(),
            home,
            added: Vec::new(),
            ifunc_chosen: HashMap::new(),
            tls: None,
        }
    }

    /// What the IFUNCs of modules relive has not loaded chose in the
    /// process ([`relive_process::ifunc::chosen_in_modules`]).
    pub fn set_ifunc_choices(&mut self, chosen: HashMap<u64, u64>) {
        self.ifunc_chosen = chosen;
    }

    /// Makes the module mapped at `addr` (where a function being replaced
    /// lives) the home of the next patch; the program when `None` or
    /// unmapped.
    pub fn set_home(&mut self, addr: Option<u64>) {
        let home = match addr.and_then(|a| self.symbols.module_at(a)) {
            Some((path, lo, hi)) => (path.to_string(), lo, hi),
            None => program(&self.symbols),
        };
        if home.0 != self.home.0 {
            self.home_statics = OnceLock::new();
            self.home_constants = OnceLock::new();
        }
        self.home = home;
    }

    /// The statics of the module `module` (every module when `None`).
    fn gather_statics(&self, module: Option<&str>) -> Statics {
        let mut statics = Statics::new();
        for (s, addr, module) in self.symbols.file_locals(module) {
            let file = s.file.as_deref().unwrap_or_default();
            let key = (base_name(file).to_string(), names::stable(&s.name));
            statics
                .entry(key)
                .or_default()
                .push((s.name.clone(), addr, module.to_string()));
        }
        statics
    }

    /// The source file of a `static` function of the home module named
    /// like `name` (GCC's suffixes aside) in a file other than `file`: the
    /// program's function an object of another file cannot replace.
    pub fn static_elsewhere(&self, name: &str, file: Option<&str>) -> Option<String> {
        let wanted = names::stable(name);
        let ours = file.map(base_name);
        self.symbols
            .file_locals(Some(&self.home.0))
            .filter(|(s, _, _)| s.kind == SymbolKind::Function)
            .filter_map(|(s, _, _)| Some((s, s.file.as_deref()?)))
            .find(|(s, f)| Some(base_name(f)) != ours && names::stable(&s.name) == wanted)
            .map(|(_, f)| f.to_string())
    }

    /// The `static` functions of the home module that its symbols put
    /// under the file name `file` (`STT_FILE`, as the compile named it), by
    /// symbol name, GCC's clones counted as their function once, sorted.
    pub fn statics_of_file(&self, file: &str) -> Vec<String> {
        let mut out: Vec<String> = self
            .symbols
            .file_locals(Some(&self.home.0))
            .filter(|(s, _, _)| s.kind == SymbolKind::Function)
            .filter(|(s, _, _)| s.file.as_deref() == Some(file))
            .map(|(s, _, _)| names::parse(&s.name).base)
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// The home module's path and address range.
    pub fn home(&self) -> (&str, u64, u64) {
        (&self.home.0, self.home.1, self.home.2)
    }

    pub fn symbols(&self) -> &LiveSymbols {
        &self.symbols
    }

    /// The size of the function or object at `addr` (0 if unknown),
    /// including what earlier patches added.
    pub fn size_at(&self, addr: u64) -> u64 {
        if let Some(a) = self.added.iter().find(|a| a.addr == addr) {
            return a.size;
        }
        match self.symbols.at(addr) {
            Some((s, 0)) => s.size,
            _ => 0,
        }
    }

    /// The name of what holds `addr` (`name` or `name+0x8`): what an
    /// earlier patch added there, or a symbol of the process's modules;
    /// `None` where nothing named does (the heap, a stack).
    pub fn name_at(&self, addr: u64) -> Option<String> {
        let named = |name: &str, offset: u64| match offset {
            0 => crate::names::readable(name),
            _ => format!("{}+{offset:#x}", crate::names::readable(name)),
        };
        if let Some(a) = self
            .added
            .iter()
            .find(|a| a.addr <= addr && addr < a.addr.saturating_add(a.size.max(1)))
        {
            return Some(named(&a.name, addr - a.addr));
        }
        self.symbols.at(addr).map(|(s, offset)| named(&s.name, offset))
    }

    /// The size of a function an earlier patch added at `addr`.
    pub fn added_function_size(&self, addr: u64) -> Option<u64> {
        self.added
            .iter()
            .find(|a| a.addr == addr && a.kind == "function")
            .map(|a| a.size)
    }

    /// What earlier patches added, as the journal now says (another
    /// relive may have reverted and freed some since).
    pub fn set_added(&mut self, records: &[AddedRecord]) {
        self.added = records.to_vec();
    }

    /// Whether the modules' thread-local storage was read.
    pub fn knows_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// The modules' thread-local storage (see [`crate::tls::modules`]).
    pub fn set_tls(&mut self, modules: Vec<TlsModule>) {
        self.tls = Some(modules);
    }

    /// The live thread-local symbol `name` (of source file `file` for a
    /// static): its module and its offset in that module's block. The
    /// home module's first.
    fn tls_symbol(&self, name: &str, file: Option<&str>) -> Option<(String, u64)> {
        let home = &self.home.0;
        self.symbols
            .thread_locals(name)
            .into_iter()
            .filter(|(_, s)| match file {
                Some(file) => s.binding == Binding::Local && s.file.as_deref().map(base_name) == Some(base_name(file)),
                None => s.binding != Binding::Local,
            })
            .min_by_key(|(module, _)| *module != home)
            .map(|(module, s)| (module.to_string(), s.addr))
    }
}

/// A module's read-only data as the file has it (which is what the
/// process maps: nothing writes it): the image, and each allocated
/// read-only section's address in the process and bytes in the file; and
/// its RELRO sections (tables of addresses, which the file holds at their
/// link-time values, `bias` less than the process's).
struct Constants {
    image: std::sync::Arc<relive_image::Image>,
    bias: u64,
    sections: Vec<(u64, std::ops::Range<usize>)>,
    relro: Vec<(u64, std::ops::Range<usize>)>,
}

impl Constants {
    /// The read-only, non-executable sections of `image` (an ELF file:
    /// other formats give none), and its RELRO ones, at `bias`.
    fn read(image: std::sync::Arc<relive_image::Image>, bias: u64) -> Option<Constants> {
        use object::{Object, ObjectSection, SectionKind};
        let file = object::File::parse(image.data()).ok()?;
        let placed = |s: &object::Section| {
            let (offset, size) = s.file_range()?;
            let start = usize::try_from(offset).ok()?;
            let end = start.checked_add(usize::try_from(size).ok()?)?;
            (end <= image.data().len() && s.address() != 0).then(|| (s.address().wrapping_add(bias), start..end))
        };
        let sections = file
            .sections()
            .filter(|s| matches!(s.kind(), SectionKind::ReadOnlyData | SectionKind::ReadOnlyString))
            .filter_map(|s| placed(&s))
            .collect();
        let relro = file
            .sections()
            .filter(|s| {
                s.name()
                    .is_ok_and(|n| n == ".data.rel.ro" || n.starts_with(".data.rel.ro."))
            })
            .filter_map(|s| placed(&s))
            .collect();
        Some(Constants {
            image,
            bias,
            sections,
            relro,
        })
    }

    /// Whether `addr` is in one of the read-only sections.
    fn contains(&self, addr: u64) -> bool {
        self.sections
            .iter()
            .any(|(start, range)| addr.checked_sub(*start).is_some_and(|k| k < range.len() as u64))
    }

    /// Whether a read-only section holds `bytes` at `addr`.
    fn holds(&self, addr: u64, bytes: &[u8]) -> bool {
        self.held_in(&self.sections, addr, bytes)
    }

    /// Whether read-only or RELRO data holds at `addr` the `bytes` whose
    /// 8-byte `fields` are addresses in the process (see
    /// [`Resolver::holds_addresses`]).
    fn holds_addresses(&self, addr: u64, bytes: &[u8], fields: &[usize]) -> bool {
        let mut expected = bytes.to_vec();
        for &at in fields {
            let Some(field) = at.checked_add(8).and_then(|end| expected.get_mut(at..end)) else {
                return false;
            };
            let value = u64::from_le_bytes((&*field).try_into().expect("8 bytes"));
            field.copy_from_slice(&value.wrapping_sub(self.bias).to_le_bytes());
        }
        self.held_in(&self.relro, addr, &expected) || self.held_in(&self.sections, addr, &expected)
    }

    /// Whether one of `sections` holds `bytes` at `addr`.
    fn held_in(&self, sections: &[(u64, std::ops::Range<usize>)], addr: u64, bytes: &[u8]) -> bool {
        sections.iter().any(|(start, range)| {
            let Some(at) = addr.checked_sub(*start).and_then(|k| usize::try_from(k).ok()) else {
                return false;
            };
            self.image.data()[range.clone()].get(at..at.saturating_add(bytes.len())) == Some(bytes)
        })
    }

    /// The first place holding `bytes` at an address `phase` modulo `align`.
    fn find(&self, bytes: &[u8], align: u64, phase: u64) -> Option<u64> {
        let finder = memchr::memmem::Finder::new(bytes);
        self.sections.iter().find_map(|(addr, range)| {
            finder
                .find_iter(&self.image.data()[range.clone()])
                .map(|at| addr.wrapping_add(at as u64))
                .find(|a| a % align.max(1) == phase)
        })
    }
}

/// A global of hidden or internal visibility (a library's internal API,
/// `__attribute__((visibility("hidden")))`) after the static link: the
/// linker made it `LOCAL` and put it after an empty-named `STT_FILE`, so
/// it belongs to no source file. One such symbol of the home module, or of
/// exactly one module, is the program's definition; a same-named `static`
/// of some source file is not.
fn hidden<'s>(found: &'s [LiveSymbol], home: &str) -> Option<&'s LiveSymbol> {
    let candidates: Vec<&LiveSymbol> = found
        .iter()
        .filter(|s| s.binding == Binding::Local && s.file.as_deref().is_none_or(str::is_empty))
        .collect();
    let in_home: Vec<&LiveSymbol> = candidates.iter().copied().filter(|s| s.module == home).collect();
    let pick = if in_home.is_empty() { candidates } else { in_home };
    match pick.as_slice() {
        [only] => Some(only),
        [first, rest @ ..] if rest.iter().all(|s| s.addr == first.addr) => Some(first),
        _ => None,
    }
}

impl LiveResolver {
    /// [`Resolver::global`] of one of the unwinder's entry points, looked
    /// for first where the unwinder usually is: the program's (or home
    /// module's) static copy, or the shared `libgcc_s` glibc loads. Asking
    /// every module at once read every library's whole symbol table, a
    /// sixth of a small patch's work; the others are read only when none
    /// of those has it (another unwinder library, or none loaded yet).
    pub fn unwinder_entry(&self, name: &str) -> Option<u64> {
        let main = self.symbols.main_module().unwrap_or("");
        let found = self.symbols.lookup_where(name, |path| {
            path == main || path == self.home.0 || crate::unwind::is_libgcc(path)
        });
        self.choose(name, &found).or_else(|| self.global(name))
    }

    /// Which of the definitions `found` of `name` the process's dynamic
    /// linker would bind a reference from the home module to.
    fn choose(&self, name: &str, found: &[LiveSymbol]) -> Option<u64> {
        let main = self.symbols.main_module().unwrap_or("");
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
            .min_by_key(|s| (s.module != self.symbols.main_module().unwrap_or(""), rank(s.binding)));
        // The home module's own hidden definition goes before another
        // module's export of the same name: the object was compiled as
        // part of the home module.
        let chosen = match chosen {
            Some(c) if c.module == main || c.module == self.home.0 => Some(c),
            other => hidden(found, &self.home.0)
                .filter(|h| h.module == self.home.0)
                .or(other),
        }
        .or_else(|| hidden(found, &self.home.0))?;
        if chosen.kind != SymbolKind::Ifunc {
            return Some(chosen.addr);
        }
        // What the program's own start-up stored for it.
        if let Some(&implementation) = self.ifunc_chosen.get(&chosen.addr) {
            return Some(implementation);
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
}

impl Resolver for LiveResolver {
    fn global(&self, name: &str) -> Option<u64> {
        // The program's own definition goes before every library's (below),
        // so the libraries' tables are read only when it has none.
        let main = self.symbols.main_module().unwrap_or("");
        let in_main = self.symbols.lookup_in(name, Some(main));
        let found = if in_main.iter().any(|s| s.binding != Binding::Local) {
            in_main
        } else {
            self.symbols.lookup(name)
        };
        self.choose(name, &found)
    }

    fn local(&self, file: &str, name: &str) -> Option<u64> {
        let key = (base_name(file).to_string(), names::parse(name).stable());
        // The home module's, if it has any (the same file name may be
        // compiled into the program and a library): the other modules'
        // tables are read only when it has none.
        let home = self
            .home_statics
            .get_or_init(|| self.gather_statics(Some(&self.home.0)));
        let candidates: Vec<&Static> = match home.get(&key) {
            Some(found) => found.iter().collect(),
            None => self
                .all_statics
                .get_or_init(|| self.gather_statics(None))
                .get(&key)?
                .iter()
                .collect(),
        };
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

    fn added(&self, file: Option<&str>, name: &str, local: bool, key: Option<&str>) -> Option<u64> {
        // A numbered static by its identity; a record of an older relive
        // (no key) by name.
        let same = |a: &AddedRecord| match (key, a.key.as_deref()) {
            (Some(key), Some(theirs)) => key == theirs,
            (None, Some(_)) => false,
            (_, None) => a.name == name,
        };
        // The latest addition wins (an added variable is never added twice:
        // the second patch finds this one).
        self.added
            .iter()
            .rev()
            .find(|a| {
                same(a) && a.local == local && (!local || a.file.as_deref().map(base_name) == file.map(base_name))
            })
            .map(|a| a.addr)
    }

    fn in_image(&self, addr: u64) -> bool {
        self.home.1 <= addr && addr < self.home.2
    }

    fn existing_literal(&self, bytes: &[u8], align: u64, phase: u64) -> Option<u64> {
        let found = self.constants()?.find(bytes, align, phase)?;
        // Within the home module, which the patch region is placed near.
        self.in_image(found).then_some(found)
    }

    fn thread_local(&self, name: Option<&str>, file: Option<&str>) -> Result<TlsPlace, String> {
        let modules = self
            .tls
            .as_ref()
            .ok_or("the program's thread-local storage was not read")?;
        let (module, offset) = match name {
            Some(name) => self.tls_symbol(name, file).ok_or_else(|| {
                "neither the program nor its libraries have such a thread-local: it is new in this patch, and running threads have no room for it; restart the program".to_string()
            })?,
            None => (self.home.0.clone(), 0),
        };
        let tls = modules
            .iter()
            .find(|m| m.path == module)
            .ok_or_else(|| format!("{module} has no thread-local storage relive can find"))?;
        Ok(tls.place(offset))
    }

    fn holds_constant(&self, addr: u64, bytes: &[u8]) -> bool {
        self.constants().is_some_and(|c| c.holds(addr, bytes))
    }

    fn read_only_data(&self, addr: u64) -> bool {
        self.constants().is_some_and(|c| c.contains(addr))
    }

    fn holds_addresses(&self, addr: u64, bytes: &[u8], fields: &[usize]) -> bool {
        self.constants().is_some_and(|c| c.holds_addresses(addr, bytes, fields))
    }
}
