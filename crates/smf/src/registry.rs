//! Several modules in one process, each replaceable while it runs.
//!
//! Every function a module defines is reached through a stable entry
//! ([`crate::entries`]): the address the host gets from
//! [`ModuleRegistry::get_function`], the address other modules' imports
//! bind to, and the address the module's own calls, function pointers and
//! GOT cells hold. [`ModuleRegistry::reload`] loads the new version next to
//! the old one and then points each entry at the new code with one atomic
//! store, so a pointer taken before the reload calls the new code after it.
//!
//! ## State across a reload
//! With [`ReloadOptions::keep_data`] (the default), when the new version's
//! writable data has the same layout as the old one's (the same writable
//! sections, sizes and alignments, and every named object at the same
//! place with the same size), the new code is linked against the old
//! storage itself: every global and static keeps its value, and code of
//! the old version that is still running (a loop that has not returned)
//! shares it with the new code. When the layout changed, the new version
//! gets fresh data initialised from the file, and every named object that
//! still exists with the same size gets the old value copied in before the
//! switch; old code still running after that uses the old copy. With
//! `keep_data: false` every object starts from the file's values.
//!
//! In kept or copied data, a pointer that still holds what the linker gave
//! it follows its target (a literal, an object) into the new version
//! ([`LoadedModule::follow_pointers`]). Other modules importing an object
//! or read-only data that moved are linked again against its new address
//! (see the `relink` module).
//!
//! ## When old code is freed
//! Never by a reload or unload: a thread may be inside the old code or
//! hold a return address into it, and data may hold pointers the program
//! set into the old read-only data (a `const char *` global it pointed at
//! another literal). Replaced and unloaded versions are kept mapped until
//! the host calls [`ModuleRegistry::free_retired`] at a point where it
//! knows no thread runs or will return into them and no such pointer
//! points into them (for a host calling modules from one loop: between
//! two iterations), or until the
//! registry is dropped. Dropping the registry points every entry at a trap
//! (`ud2`), so a stale pointer stops at once instead of running freed memory.
//!
//! Entries are switched one function at a time: a call that starts during
//! a reload runs either the old or the new code of the function it enters,
//! but a chain of calls in flight can see old and new functions mixed.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use crate::entries::{EntryId, EntryTable, StableFn};
use crate::format::{FormatError, Module};
use crate::hash::NameMap;
use crate::keys::FunctionKeys;
use crate::loader::{has_function_key, Bindings, DataLayout, LoadError, LoadedModule};
use crate::memory::host_symbol;

mod relink;

/// Why a registry operation did nothing. The registry and every entry are
/// as they were before the call.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("module {module}: {cause}")]
    Load { module: String, cause: LoadError },
    #[error("{path}: {cause}")]
    Read { path: String, cause: ReadError },
    #[error("a module named {0} is already loaded (use reload to replace it)")]
    AlreadyLoaded(String),
    #[error("no module named {0} is loaded")]
    NotLoaded(String),
    #[error("module {by} imports {symbol} from {module}; unload or reload {by} first")]
    StillImported { module: String, symbol: String, by: String },
    #[error(
        "module {module} imports {symbol} from {from}, which would have to be linked again after {module} \
         (modules that import each other's objects or read-only data cannot both follow a reload); \
         import functions instead, or keep such data in one module"
    )]
    RelinkCycle {
        module: String,
        symbol: String,
        from: String,
    },
}

/// Why a module file cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Format(#[from] FormatError),
}

/// Resolves what modules import from the host and loads single modules.
/// Symbols given with [`ModuleLoader::define`] come first (a host can hand
/// its own functions to modules), then the process's dynamic symbols
/// (`dlsym`), unless [`ModuleLoader::without_dlsym`] was used.
#[derive(Debug, Clone)]
pub struct ModuleLoader {
    defined: HashMap<String, u64>,
    dlsym: bool,
}

impl Default for ModuleLoader {
    fn default() -> Self {
        ModuleLoader {
            defined: HashMap::new(),
            dlsym: true,
        }
    }
}

impl ModuleLoader {
    pub fn new() -> ModuleLoader {
        ModuleLoader::default()
    }

    /// Only what [`ModuleLoader::define`] gives is importable from the host.
    pub fn without_dlsym(mut self) -> ModuleLoader {
        self.dlsym = false;
        self
    }

    /// Makes `name` resolve to `addr` for every module loaded afterwards.
    pub fn define(&mut self, name: &str, addr: u64) -> &mut ModuleLoader {
        self.defined.insert(name.to_string(), addr);
        self
    }

    /// The host's address for `name`.
    pub fn host(&self, name: &str) -> Option<u64> {
        self.defined
            .get(name)
            .copied()
            .or_else(|| if self.dlsym { host_symbol(name) } else { None })
    }

    /// Reads and checks an SMF file.
    pub fn read(&self, path: &Path) -> Result<Module<'static>, ReadError> {
        let bytes = std::fs::read(path)?;
        Ok(Module::parse(&bytes)?.into_owned())
    }

    /// Loads one module on its own (no registry, no stable entries).
    pub fn load(&self, module: &Module) -> Result<LoadedModule, LoadError> {
        LoadedModule::load(module, &|name| self.host(name))
    }
}

/// What a reload keeps.
#[derive(Debug, Clone, Copy)]
pub struct ReloadOptions {
    /// Keep the values of globals and statics (see the module docs).
    pub keep_data: bool,
}

impl Default for ReloadOptions {
    fn default() -> Self {
        ReloadOptions { keep_data: true }
    }
}

/// What happened to the module's writable data in a reload.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum DataOutcome {
    /// Same layout: the new code uses the old storage.
    Shared,
    /// Layout changed: these objects' values were copied; others start
    /// from the file's values.
    Copied {
        kept: Vec<String>,
        /// Objects that start from the file's values although the old
        /// version had them: their size changed, or they are function-local
        /// statics the compiler may have renumbered (`n.0`, `n.1`: a value
        /// copied by that name could land in another function's static).
        reset: Vec<String>,
    },
    /// `keep_data: false`: everything starts from the file's values.
    Fresh,
}

/// The outcome of a reload.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ReloadReport {
    pub version: u64,
    pub data: DataOutcome,
    /// Functions the new version defines.
    pub functions: usize,
    /// Functions the old version did not have.
    pub added: Vec<String>,
    /// Functions the new version lacks. Their entries still reach their old
    /// code while it stays mapped (old code still running may call them),
    /// and trap once [`ModuleRegistry::free_retired`] unmaps it.
    pub removed: Vec<String>,
    /// Other modules linked again because something they import from
    /// this one (an object, read-only data) moved; their data and
    /// versions stay as they were.
    pub relinked: Vec<String>,
}

#[derive(Debug)]
struct Slot {
    name: String,
    current: LoadedModule,
    version: u64,
    /// The entries that point into `current`, sorted.
    functions: Vec<EntryId>,
    /// (module, symbol) this module's imports were bound to.
    imports: BTreeSet<(String, String)>,
    /// The module `current` was linked from, kept while it imports from
    /// other modules: it is linked again when something it imports moves
    /// (see the `relink` module).
    source: Option<Module<'static>>,
    /// Where `current`'s named writable objects are.
    layout: DataLayout,
    /// `current`'s symbols' entries.
    symbol_ids: SymbolIds,
}

/// Each symbol's entry in a loaded version. A new version with the same
/// functions in the same symbol order, the usual edit of a function's
/// body, gets the same entries by comparing names in order (with the
/// loaded version's own, see [`SymbolIds::fit`]) instead of looking each
/// up (that was a quarter of a reload).
#[derive(Debug)]
struct SymbolIds {
    ids: Vec<Option<EntryId>>,
    /// The address of each symbol's entry.
    addresses: Vec<Option<u64>>,
}

impl SymbolIds {
    fn of(ids: Vec<Option<EntryId>>, entries: &EntryTable) -> SymbolIds {
        let addresses = ids.iter().map(|id| id.map(|id| entries.address(id))).collect();
        SymbolIds { ids, addresses }
    }

    /// Whether `module`'s functions are the ones these ids were given for,
    /// at the same symbol indices: `names` are the names of the functions
    /// these ids were given to, in symbol order (the loaded version's
    /// [`LoadedModule::function_names`]; a copy of them made here was a
    /// fifth of a registry's first load).
    fn fit<'a>(&self, module: &Module, mut names: impl Iterator<Item = &'a str>) -> bool {
        if module.symbols.len() != self.ids.len() {
            return false;
        }
        for (s, id) in module.symbols.iter().zip(&self.ids) {
            if has_function_key(s) != id.is_some() {
                return false;
            }
            if id.is_some() && names.next() != Some(&*s.name) {
                return false;
            }
        }
        names.next().is_none()
    }
}

/// Loaded modules, their stable entries, and the versions they replaced.
#[derive(Debug)]
pub struct ModuleRegistry {
    loader: ModuleLoader,
    entries: EntryTable,
    /// Module name -> its function keys and their entries, for the
    /// registry's lifetime.
    entry_ids: NameMap<String, FunctionKeys>,
    /// In load order: imports prefer earlier modules.
    modules: Vec<Slot>,
    retired: Vec<LoadedModule>,
    /// Entries of functions a reload removed (and no later one brought
    /// back), by module: they still reach the removed code, which stays
    /// mapped with its retired version (old code still running calls them:
    /// a module's entry point looping in its old version), and trap once
    /// [`ModuleRegistry::free_retired`] unmaps it. Trapping at the reload
    /// stopped such a program with an illegal instruction.
    lingering: Vec<(String, EntryId)>,
    /// The buffer `load_file`/`reload_file` read files into, kept so the
    /// next read needs no allocation.
    read_buffer: Vec<u8>,
}

impl ModuleRegistry {
    pub fn new() -> ModuleRegistry {
        ModuleRegistry::with_loader(ModuleLoader::default())
    }

    /// A registry whose host imports come from `loader`.
    pub fn with_loader(loader: ModuleLoader) -> ModuleRegistry {
        ModuleRegistry {
            loader,
            entries: EntryTable::default(),
            entry_ids: NameMap::default(),
            modules: Vec::new(),
            retired: Vec::new(),
            lingering: Vec::new(),
            read_buffer: Vec::new(),
        }
    }

    /// Loads `module` under `name`.
    pub fn load(&mut self, name: &str, module: &Module) -> Result<(), RegistryError> {
        if self.slot(name).is_some() {
            return Err(RegistryError::AlreadyLoaded(name.to_string()));
        }
        let Linked { loaded, imports, ids } = self.link(name, module, None, &[])?;
        let ids = ids.expect("a first load has no previous entries to keep");
        let functions = self.switch(&loaded, &ids.ids);
        self.modules.push(Slot {
            name: name.to_string(),
            current: loaded,
            version: 1,
            functions,
            source: kept_source(module, &imports),
            imports,
            layout: DataLayout::of(module),
            symbol_ids: ids,
        });
        Ok(())
    }

    /// Reads `path` and loads it under `name`.
    pub fn load_file(&mut self, name: &str, path: &Path) -> Result<(), RegistryError> {
        let (bytes, len) = self.read(path)?;
        let loaded = parse(path, &bytes[..len]).and_then(|module| self.load(name, &module));
        self.keep_read_buffer(bytes);
        loaded
    }

    /// Replaces module `name` by `module`: entries switch to the new code,
    /// the data is kept as `options` says, the version goes up by one, and
    /// the old version is retired (still mapped; see the module docs).
    pub fn reload(
        &mut self,
        name: &str,
        module: &Module,
        options: ReloadOptions,
    ) -> Result<ReloadReport, RegistryError> {
        let index = self
            .slot(name)
            .ok_or_else(|| RegistryError::NotLoaded(name.to_string()))?;
        // A symbol other modules import must still be there.
        self.refuse_lost_imports(name, |symbol| {
            module
                .symbols
                .iter()
                .any(|s| s.section.is_some() && s.binding != crate::format::Binding::Local && s.name == symbol)
        })?;
        let old = &self.modules[index].current;
        let layout = DataLayout::of(module);
        let share = options.keep_data && self.modules[index].layout == layout;
        let data = share.then(|| old.data_region().clone());
        let Linked {
            mut loaded,
            imports,
            ids,
        } = self.link(name, module, data, &[])?;
        let outcome = if share {
            DataOutcome::Shared
        } else if options.keep_data {
            DataOutcome::Copied {
                reset: loaded.resized_objects(&self.modules[index].current),
                kept: loaded.copy_objects_from(&self.modules[index].current),
            }
        } else {
            DataOutcome::Fresh
        };
        // Modules importing what this version moves follow it; if one
        // cannot, nothing has changed yet.
        let relinked = self.relink_importers(index, &loaded, &imports)?;
        if share {
            loaded.follow_pointers(&self.modules[index].current);
        }
        let before = std::mem::take(&mut self.modules[index].functions);
        let (after, added, removed) = match &ids {
            // The usual edit: the same functions, so the same entries.
            None => {
                self.point_same_entries(index, &loaded);
                (before, Vec::new(), Vec::new())
            }
            Some(ids) => {
                let after = self.switch(&loaded, &ids.ids);
                let added = self.keys_of(name, &sorted_difference(&after, &before));
                let gone = sorted_difference(&before, &after);
                let removed = self.keys_of(name, &gone);
                // Brought back: no longer lingering.
                self.lingering.retain(|(_, id)| after.binary_search(id).is_err());
                self.lingering.extend(gone.into_iter().map(|id| (name.to_string(), id)));
                (after, added, removed)
            }
        };
        let slot = &mut self.modules[index];
        let old = std::mem::replace(&mut slot.current, loaded);
        self.retired.push(old);
        slot.version += 1;
        slot.source = kept_source(module, &imports);
        slot.imports = imports;
        slot.layout = layout;
        if let Some(ids) = ids {
            slot.symbol_ids = ids;
        }
        let functions = after.len();
        slot.functions = after;
        let version = slot.version;
        let relinked = self.commit_relinked(relinked);
        Ok(ReloadReport {
            version,
            data: outcome,
            functions,
            added,
            removed,
            relinked,
        })
    }

    /// Reads `path` and reloads module `name` from it.
    pub fn reload_file(
        &mut self,
        name: &str,
        path: &Path,
        options: ReloadOptions,
    ) -> Result<ReloadReport, RegistryError> {
        let (bytes, len) = self.read(path)?;
        let reloaded = parse(path, &bytes[..len]).and_then(|module| self.reload(name, &module, options));
        self.keep_read_buffer(bytes);
        reloaded
    }

    /// A module file's bytes: the first `len` of the buffer returned, which
    /// is the one the last read used (taken from the registry until given
    /// back). A buffer that is big enough needs one `read` that fills it
    /// and one that ends, and is not cleared first (zeroing it before each
    /// read was a tenth of a registry's first load).
    fn read(&mut self, path: &Path) -> Result<(Vec<u8>, usize), RegistryError> {
        let mut bytes = std::mem::take(&mut self.read_buffer);
        let mut read = || {
            let file = std::fs::File::open(path)?;
            if bytes.capacity() == 0 {
                // The first read: one byte more than the file, so that the
                // read after the file's bytes finds its end.
                bytes.reserve_exact(file.metadata()?.len() as usize + 1);
            }
            // Not `read_to_end`: a `File`'s asks for its size and position
            // first (two more system calls than the reads).
            crate::memory::read_whole(&file, &mut bytes)
        };
        match read() {
            Ok(()) => {
                let len = bytes.len();
                Ok((bytes, len))
            }
            Err(e) => {
                self.keep_read_buffer(bytes);
                Err(read_error(path, e.into()))
            }
        }
    }

    /// Keeps `bytes` for the next read, unless it grew past 4 MiB (one
    /// big module is no reason to hold that much for good).
    fn keep_read_buffer(&mut self, bytes: Vec<u8>) {
        if bytes.capacity() <= 4 << 20 {
            self.read_buffer = bytes;
        }
    }

    /// Unloads module `name`: its entries trap from now on and its code is
    /// retired (unmapped by [`ModuleRegistry::free_retired`]). Refused while
    /// another module imports from it.
    pub fn unload(&mut self, name: &str) -> Result<(), RegistryError> {
        let index = self
            .slot(name)
            .ok_or_else(|| RegistryError::NotLoaded(name.to_string()))?;
        self.refuse_lost_imports(name, |_| false)?;
        let slot = self.modules.remove(index);
        // Its keys outlive it (a later load of `name` gets their entries):
        // they keep its names.
        if let Some(keys) = self.entry_ids.get_mut(name) {
            keys.settle(|| slot.current.function_names());
        }
        for &id in &slot.functions {
            self.entries.unpoint(id);
        }
        self.lingering.retain(|(module, id)| {
            let of_this = *module == slot.name;
            if of_this {
                self.entries.unpoint(*id);
            }
            !of_this
        });
        self.retired.push(slot.current);
        Ok(())
    }

    /// Unmaps every replaced or unloaded version; returns how many. Call
    /// only where no thread runs, or will return into, their code (see the
    /// module docs): the registry cannot know that by itself.
    pub fn free_retired(&mut self) -> usize {
        // Removed functions trap from now on (one a later version brought
        // back left the list then).
        for (_, id) in std::mem::take(&mut self.lingering) {
            self.entries.unpoint(id);
        }
        let n = self.retired.len();
        self.retired.clear();
        n
    }

    /// Versions kept mapped until [`ModuleRegistry::free_retired`].
    pub fn retired(&self) -> usize {
        self.retired.len()
    }

    /// The stable entry of function `function` of module `module`: valid
    /// across reloads of the module for as long as the handle lives.
    pub fn get_function(&self, module: &str, function: &str) -> Option<StableFn> {
        // Only a function of the current version: one it lacks (removed,
        // or of a module unloaded since) has an entry that traps, or that
        // reaches removed code until that is freed (`lingering`, usually
        // empty).
        // A name only one function of the current version has: its entry
        // is what references to it bind to (one hash lookup; the keys'
        // list before their table is built is read name by name).
        let sole = match function.contains('#') {
            true => None,
            false => self
                .modules
                .iter()
                .find(|m| m.name == module)
                .and_then(|slot| slot.current.sole_function_binding(function))
                .and_then(|addr| self.entries.id_at(addr)),
        };
        let id = match sole {
            Some(id) => id,
            None => self
                .entry_ids
                .get(module)?
                .get(function, || first_names(&self.modules, module))?,
        };
        if self.lingering.iter().any(|&(_, l)| l == id) {
            return None;
        }
        let handle = self.entries.handle(id);
        (!handle.traps()).then_some(handle)
    }

    /// The address of exported symbol `name` in the first loaded module
    /// that exports it (functions: their stable entries).
    pub fn resolve(&self, name: &str) -> Option<u64> {
        self.modules.iter().find_map(|m| m.current.symbol(name))
    }

    /// Module `name`'s version: 1 when loaded, one more per reload.
    pub fn version(&self, name: &str) -> Option<u64> {
        Some(self.modules[self.slot(name)?].version)
    }

    /// Module `name`'s current version in memory.
    pub fn module(&self, name: &str) -> Option<&LoadedModule> {
        Some(&self.modules[self.slot(name)?].current)
    }

    /// Loaded modules' names, in load order.
    pub fn names(&self) -> Vec<&str> {
        self.modules.iter().map(|m| m.name.as_str()).collect()
    }

    fn slot(&self, name: &str) -> Option<usize> {
        self.modules.iter().position(|m| m.name == name)
    }

    /// Refuses (naming the importer) when another module imports from
    /// module `name` a symbol that `still_there` says would be gone.
    fn refuse_lost_imports(&self, name: &str, still_there: impl Fn(&str) -> bool) -> Result<(), RegistryError> {
        for m in self.modules.iter().filter(|m| m.name != name) {
            if let Some((_, symbol)) = m.imports.iter().find(|(from, s)| from == name && !still_there(s)) {
                return Err(RegistryError::StillImported {
                    module: name.to_string(),
                    symbol: symbol.clone(),
                    by: m.name.clone(),
                });
            }
        }
        Ok(())
    }

    /// Loads `module` for `name` with its functions bound to their entries
    /// (allocated as needed) and imports bound to other modules, then the
    /// host; returns what the imports were bound to and each symbol's
    /// entry.
    /// `replaced`: (slot, version) pairs to bind imports to instead of
    /// those slots' current versions (a reload's new versions, not yet
    /// switched to).
    fn link(
        &mut self,
        name: &str,
        module: &Module,
        data: Option<std::sync::Arc<crate::memory::Region>>,
        replaced: &[(usize, &LoadedModule)],
    ) -> Result<Linked, RegistryError> {
        let failed = |source: LoadError| RegistryError::Load {
            module: name.to_string(),
            cause: source,
        };
        let slot = self.slot(name);
        let same_functions = slot.is_some_and(|index| {
            let slot = &self.modules[index];
            slot.symbol_ids.fit(module, slot.current.function_names())
        });
        let new_ids = if same_functions {
            None
        } else {
            let ids = self.function_ids(name, module).map_err(|e| failed(LoadError::Map(e)))?;
            Some(SymbolIds::of(ids, &self.entries))
        };
        let entry_addresses = match (&new_ids, slot) {
            (Some(ids), _) => &ids.addresses,
            (None, Some(index)) => &self.modules[index].symbol_ids.addresses,
            (None, None) => unreachable!("same functions as a loaded version"),
        };
        let used = RefCell::new(BTreeSet::new());
        let import = |symbol: &str| {
            let from_module = self
                .modules
                .iter()
                .enumerate()
                .filter(|(_, m)| m.name != name)
                .find_map(|(j, m)| Some((m.name.clone(), version_of(replaced, j, m).symbol(symbol)?)));
            match from_module {
                Some((from, addr)) => {
                    used.borrow_mut().insert((from, symbol.to_string()));
                    Some(addr)
                }
                None => self.loader.host(symbol),
            }
        };
        let loaded = LoadedModule::load_with(
            module,
            Bindings {
                import: &import,
                entries: Some(entry_addresses),
                data,
            },
        );
        let loaded = match loaded {
            Ok(loaded) => loaded,
            Err(e) => {
                if slot.is_none() {
                    // Keys this version was given keep their names: it
                    // will be in no slot to give them.
                    if let Some(keys) = self.entry_ids.get_mut(name) {
                        keys.settle(|| crate::keys::function_names(module));
                    }
                }
                return Err(failed(e));
            }
        };
        Ok(Linked {
            loaded,
            imports: used.into_inner(),
            ids: new_ids,
        })
    }

    /// Each symbol's entry (functions of `module`, loaded as `name`): the
    /// one its key had before, or a new one.
    fn function_ids(&mut self, name: &str, module: &Module) -> std::io::Result<Vec<Option<EntryId>>> {
        if !self.entry_ids.contains_key(name) {
            // Sized for the first version's functions: growing it was a
            // tenth of a first load.
            let functions = module.symbols.iter().filter(|s| has_function_key(s)).count();
            self.entry_ids
                .insert(name.to_string(), FunctionKeys::with_capacity(functions));
        }
        let keys = self.entry_ids.get_mut(name).expect("inserted above");
        let entries = &mut self.entries;
        let modules = &self.modules;
        keys.assign(module, || entries.allocate(), || first_names(modules, name))
    }

    /// Points slot `index`'s entries at `loaded`'s code: a version with
    /// the same functions in the same symbol order as the slot's current
    /// one (the usual edit, or a relink), so the same entries.
    fn point_same_entries(&self, index: usize, loaded: &LoadedModule) {
        for (id, code) in entry_code(loaded, &self.modules[index].symbol_ids.ids) {
            self.entries.point(id, code);
        }
    }

    /// Points the entries of `loaded`'s functions (`ids`: each symbol's
    /// entry) at its code; returns its entries, sorted. Entries of the
    /// previous version that `loaded` lacks are left as they are: see
    /// `lingering`.
    fn switch(&self, loaded: &LoadedModule, ids: &[Option<EntryId>]) -> Vec<EntryId> {
        let mut now = Vec::with_capacity(loaded.function_code().len());
        for (id, code) in entry_code(loaded, ids) {
            self.entries.point(id, code);
            now.push(id);
        }
        // A first load gives its entries in order: no sort needed.
        if !now.is_sorted() {
            now.sort_unstable();
        }
        now
    }

    /// The function keys of module `name` whose entries are `ids`
    /// (sorted), sorted by key.
    fn keys_of(&self, name: &str, ids: &[EntryId]) -> Vec<String> {
        if ids.is_empty() {
            return Vec::new(); // the usual reload: the same functions
        }
        self.entry_ids
            .get(name)
            .map_or_else(Vec::new, |keys| keys.keys_of(ids, || first_names(&self.modules, name)))
    }
}

/// The function names of module `name`'s current version, in symbol
/// order (none when it is not loaded): where a module's first keys are
/// named until they are copied (see [`FunctionKeys`]). Looked up only
/// when a key lookup needs them.
fn first_names<'a>(modules: &'a [Slot], name: &str) -> impl Iterator<Item = &'a str> + 'a {
    modules
        .iter()
        .find(|m| m.name == name)
        .into_iter()
        .flat_map(|slot| slot.current.function_names())
}

/// Each entry of `loaded`'s functions (`ids`: each symbol's entry) and
/// the code it is to jump to.
fn entry_code<'a>(loaded: &'a LoadedModule, ids: &'a [Option<EntryId>]) -> impl Iterator<Item = (EntryId, u64)> + 'a {
    loaded
        .function_code()
        .filter_map(|(symbol, code)| Some((ids.get(symbol as usize).copied().flatten()?, code)))
}

/// The ids in `a` that are not in `b`, both sorted: one merge pass (a
/// binary search per id was a sixth of a reload).
fn sorted_difference(a: &[EntryId], b: &[EntryId]) -> Vec<EntryId> {
    if a == b {
        return Vec::new(); // the usual reload: the same functions
    }
    let mut rest = b.iter().peekable();
    let mut out = Vec::new();
    for &id in a {
        while rest.next_if(|&&other| other < id).is_some() {}
        if rest.peek() != Some(&&id) {
            out.push(id);
        }
    }
    out
}

/// Slot `j`'s version to bind to: its entry in `replaced`, else its
/// current one.
fn version_of<'a>(replaced: &[(usize, &'a LoadedModule)], j: usize, slot: &'a Slot) -> &'a LoadedModule {
    replaced
        .iter()
        .find(|(index, _)| *index == j)
        .map_or(&slot.current, |(_, version)| version)
}

/// `module`, owned, if it imports from other modules (`imports`): what a
/// slot keeps to link it again (see the `relink` module).
fn kept_source(module: &Module, imports: &BTreeSet<(String, String)>) -> Option<Module<'static>> {
    (!imports.is_empty()).then(|| module.clone().into_owned())
}

/// What [`ModuleRegistry::link`] made.
struct Linked {
    loaded: LoadedModule,
    /// What the imports were bound to: (module, symbol).
    imports: BTreeSet<(String, String)>,
    /// Each symbol's entry; `None` when they are the previous version's
    /// (the same functions in the same symbol order).
    ids: Option<SymbolIds>,
}

fn parse<'a>(path: &Path, bytes: &'a [u8]) -> Result<Module<'a>, RegistryError> {
    Module::parse(bytes).map_err(|e| read_error(path, e.into()))
}

fn read_error(path: &Path, source: ReadError) -> RegistryError {
    RegistryError::Read {
        path: path.display().to_string(),
        cause: source,
    }
}

impl Default for ModuleRegistry {
    fn default() -> Self {
        ModuleRegistry::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A module of these symbols: (name, is a defined function).
    fn module_of(symbols: &[(&str, bool)]) -> Module<'static> {
        use crate::format::{Binding, Symbol, SymbolType};
        Module {
            symbols: symbols
                .iter()
                .map(|&(name, function)| Symbol {
                    name: name.to_string().into(),
                    kind: if function {
                        SymbolType::Function
                    } else {
                        SymbolType::Object
                    },
                    binding: Binding::Global,
                    section: Some(0),
                    value: 0,
                    size: 0,
                })
                .collect(),
            ..Module::default()
        }
    }

    #[test]
    fn entries_are_reused_only_for_the_same_functions_in_the_same_order() {
        let _serial = crate::memory::tests::MAPPING.lock().unwrap_or_else(|e| e.into_inner());
        let mut table = EntryTable::default();
        let (f, g) = (table.allocate().unwrap(), table.allocate().unwrap());
        let first = module_of(&[("f", true), ("data", false), ("g", true)]);
        let ids = SymbolIds::of(vec![Some(f), None, Some(g)], &table);
        let given = || ["f", "g"].into_iter();
        assert_eq!(ids.addresses, [Some(table.address(f)), None, Some(table.address(g))]);
        assert!(ids.fit(&first, given()));
        assert!(
            ids.fit(&module_of(&[("f", true), ("other", false), ("g", true)]), given()),
            "objects have no entry"
        );
        assert!(!ids.fit(&first, ["f", "h"].into_iter()), "the loaded version's names");
        assert!(!ids.fit(&first, ["f", "g", "h"].into_iter()));
        for changed in [
            &[("g", true), ("data", false), ("f", true)][..],
            &[("f", true), ("data", false), ("h", true)],
            &[("f", true), ("data", true), ("g", true)],
            &[("f", true), ("data", false), ("g", false)],
            &[("f", true), ("data", false), ("g", true), ("h", true)],
            &[("f", true), ("data", false)],
            &[("fg", true), ("data", false), ("", true)],
        ] {
            assert!(!ids.fit(&module_of(changed), given()), "{changed:?}");
        }
    }

    #[test]
    fn sorted_difference_keeps_what_only_the_first_has() {
        let mut table = EntryTable::default();
        let ids: Vec<EntryId> = (0..6).map(|_| table.allocate().unwrap()).collect();
        let pick = |which: &[usize]| which.iter().map(|&i| ids[i]).collect::<Vec<_>>();
        assert_eq!(
            sorted_difference(&pick(&[0, 1, 2, 3]), &pick(&[1, 3, 4])),
            pick(&[0, 2])
        );
        assert_eq!(sorted_difference(&pick(&[1, 3, 4]), &pick(&[0, 1, 2, 3])), pick(&[4]));
        assert_eq!(sorted_difference(&pick(&[0, 5]), &[]), pick(&[0, 5]));
        assert!(sorted_difference(&[], &pick(&[0])).is_empty());
        assert!(sorted_difference(&pick(&[2, 4]), &pick(&[0, 2, 4, 5])).is_empty());
    }
}
