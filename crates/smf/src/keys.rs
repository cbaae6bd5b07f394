//! The function keys of one module name in a registry, and the entry each
//! key was given, for the registry's lifetime.
//!
//! A key is a function's name, or `name#N` for the Nth further local
//! function of that name in one version (two inputs may each have a
//! `static` one). Keys live as (name, N) in a hash table, their names in
//! one buffer, not as a `String` per key in a map: allocating, hashing
//! and freeing those strings was most of creating a registry and loading
//! a module into it.
//!
//! The table is built when it is first needed, not at the first load: a
//! host looks up a few entry points by name and then calls through their
//! stable handles, and a reload of the same functions reuses its
//! entries without looking keys up (see the registry's `SymbolIds`).
//! Until then the first version's keys are a list in symbol order, and
//! the first few lookups read it (hashing every key was a fifth of
//! loading a module into a new registry).

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

use hashbrown::hash_table::Entry;
use hashbrown::HashTable;

use crate::entries::EntryId;
use crate::format::Module;
use crate::hash::name_hash;
use crate::loader::has_function_key;

/// Lookups by name answered from the list before the table is built.
const LIST_LOOKUPS: u32 = 8;

/// One key: its name in the table's buffer, its N, its entry, and the
/// assignment pass that last gave it to a symbol (how a second local
/// function of the same name in one version gets the next N).
#[derive(Debug, Clone)]
struct Key {
    // u32s (a module's string table is addressed by u32 offsets).
    start: u32,
    len: u32,
    nth: u32,
    id: EntryId,
    last_pass: u64,
}

/// The keys hashed by (name, N), with their names in one buffer.
#[derive(Debug, Default)]
struct Table {
    names: String,
    keys: HashTable<Key>,
}

/// Function keys and their entries (see the module docs).
///
/// Until the table is built, the first version's keys are its function
/// names, which the registry holds in that version ([`LoadedModule`]'s
/// `function_names`): the methods that may need them take `first_names`,
/// which gives them in symbol order, and they are copied only when the
/// table is built. Copying each name at the first load was most of the
/// keys' share of it. A version that ends up in no slot (a failed first
/// load, an unload) has its names copied first: [`FunctionKeys::settle`].
///
/// [`LoadedModule`]: crate::LoadedModule
#[derive(Debug, Default)]
pub struct FunctionKeys {
    /// The first version's entries, in the symbol order of its functions
    /// (the Kth of a name has N = K - 1); read only while the table is
    /// not built, and emptied once it is.
    first: Vec<EntryId>,
    /// Hashed by (name, N), once needed.
    keys: OnceLock<Table>,
    /// Lookups answered from `first`.
    list_lookups: AtomicU32,
    /// Assignment passes so far.
    passes: u64,
}

/// Key (name, N) as the host names it: `name`, or `name#N` for N ≥ 1.
pub(crate) fn spell(name: &str, nth: u32) -> String {
    match nth {
        0 => name.to_string(),
        n => format!("{name}#{n}"),
    }
}

/// The hash of key (name, N).
fn key_hash(name: &[u8], nth: u32) -> u64 {
    name_hash(name) ^ u64::from(nth).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// Whether `key` is (name, N), its name in `names`.
fn is_key<'a>(names: &'a str, name: &'a str, nth: u32) -> impl Fn(&Key) -> bool + 'a {
    move |key| key.nth == nth && name_bytes(names, key) == name.as_bytes()
}

/// `key`'s name in `names`.
fn name_bytes<'a>(names: &'a str, key: &Key) -> &'a [u8] {
    // Bytes, not a `str` slice: that checks char boundaries.
    let start = key.start as usize;
    names
        .as_bytes()
        .get(start..start + key.len as usize)
        .unwrap_or_default()
}

/// Where `name` goes in a table's `names` (its start and length): keys
/// address their names with u32s (a name comes from a module's string
/// table, which u32 offsets address).
fn name_place(names: &str, name: &str) -> std::io::Result<(u32, u32)> {
    let too_long = || std::io::Error::other("a module's function names passed 4 GiB");
    let start = u32::try_from(names.len()).map_err(|_| too_long())?;
    Ok((start, u32::try_from(name.len()).map_err(|_| too_long())?))
}

impl Table {
    /// Adds key (`name`, `nth`) for entry `id`, its name copied into the
    /// buffer.
    fn insert(&mut self, name: &str, nth: u32, id: EntryId, last_pass: u64) -> std::io::Result<()> {
        let (start, len) = name_place(&self.names, name)?;
        let names = &self.names;
        let rehash = |key: &Key| key_hash(name_bytes(names, key), key.nth);
        self.keys.insert_unique(
            key_hash(name.as_bytes(), nth),
            Key {
                start,
                len,
                nth,
                id,
                last_pass,
            },
            rehash,
        );
        self.names.push_str(name);
        Ok(())
    }

    /// Key (name, N).
    fn find(&self, name: &str, nth: u32) -> Option<&Key> {
        self.keys
            .find(key_hash(name.as_bytes(), nth), is_key(&self.names, name, nth))
    }
}

/// The table of the first version's keys: `first` their entries, `names`
/// their names, both in symbol order; each key's N is the number of keys
/// of its name before it. Names past the 4 GiB a table addresses end it
/// (no module's string table holds that much).
fn table_of<'a>(names: impl Iterator<Item = &'a str>, first: &[EntryId]) -> Table {
    let mut table = Table {
        names: String::new(),
        keys: HashTable::with_capacity(first.len()),
    };
    for (name, &id) in names.zip(first) {
        let mut nth = 0;
        while table.find(name, nth).is_some() {
            nth += 1;
        }
        if table.insert(name, nth, id, 0).is_err() {
            break;
        }
    }
    table
}

impl FunctionKeys {
    /// Room for `functions` keys before growing.
    pub fn with_capacity(functions: usize) -> FunctionKeys {
        FunctionKeys {
            first: Vec::with_capacity(functions),
            ..FunctionKeys::default()
        }
    }

    /// The table, built now (from `first_names`) if it was not.
    fn table<'a, I: Iterator<Item = &'a str>>(&self, first_names: impl FnOnce() -> I) -> &Table {
        self.keys.get_or_init(|| table_of(first_names(), &self.first))
    }

    /// The table, built now if it was not, to change.
    fn table_mut<'a, I: Iterator<Item = &'a str>>(&mut self, first_names: impl FnOnce() -> I) -> &mut Table {
        self.table(first_names);
        self.first = Vec::new();
        self.keys.get_mut().expect("built above")
    }

    /// Copies the first version's names (`first_names`) into the table, if
    /// they are not there yet: for a version the registry will not hold
    /// (see the type's docs).
    pub fn settle<'a, I: Iterator<Item = &'a str>>(&mut self, first_names: impl FnOnce() -> I) {
        if !self.first.is_empty() {
            self.table_mut(first_names);
        }
    }

    /// Key (name, N), from the list or from the table.
    fn find<'a, I: Iterator<Item = &'a str>>(
        &self,
        name: &str,
        nth: u32,
        from_list: bool,
        first_names: impl FnOnce() -> I,
    ) -> Option<EntryId> {
        if from_list {
            // Length and last byte first: most names of a module differ
            // there (`f17`, `f18`), which spares a memcmp call each.
            let wanted = name.as_bytes();
            let last = wanted.last();
            return first_names()
                .zip(&self.first)
                .filter(|(n, _)| n.len() == wanted.len() && n.as_bytes().last() == last)
                .filter(|(n, _)| n.as_bytes() == wanted)
                .nth(nth as usize)
                .map(|(_, &id)| id);
        }
        self.table(first_names).find(name, nth).map(|k| k.id)
    }

    /// Each symbol's entry (`None` for a symbol that is not a function the
    /// module defines): the one its key had before, or a new one from
    /// `allocate`. Keys given before a failing `allocate` keep theirs.
    /// `first_names`: see the type's docs.
    pub fn assign<'a, I: Iterator<Item = &'a str>>(
        &mut self,
        module: &Module,
        allocate: impl FnMut() -> std::io::Result<EntryId>,
        first_names: impl FnOnce() -> I,
    ) -> std::io::Result<Vec<Option<EntryId>>> {
        self.passes += 1;
        if self.first.is_empty() && self.keys.get().is_none_or(|t| t.keys.is_empty()) {
            let assigned = self.assign_first(module, allocate);
            if assigned.is_err() {
                // Kept with the names they were given for: this version
                // will not be loaded.
                self.settle(|| function_names(module));
            }
            assigned
        } else {
            self.assign_again(module, allocate, first_names)
        }
    }

    /// [`FunctionKeys::assign`] with no keys yet: each function a new
    /// entry, in symbol order (their names stay in the module).
    fn assign_first(
        &mut self,
        module: &Module,
        mut allocate: impl FnMut() -> std::io::Result<EntryId>,
    ) -> std::io::Result<Vec<Option<EntryId>>> {
        self.keys = OnceLock::new();
        let mut ids = Vec::with_capacity(module.symbols.len());
        for s in &module.symbols {
            if !has_function_key(s) {
                ids.push(None);
                continue;
            }
            let id = allocate()?;
            self.first.push(id);
            ids.push(Some(id));
        }
        Ok(ids)
    }

    /// [`FunctionKeys::assign`] of a later version, through the table.
    fn assign_again<'a, I: Iterator<Item = &'a str>>(
        &mut self,
        module: &Module,
        mut allocate: impl FnMut() -> std::io::Result<EntryId>,
        first_names: impl FnOnce() -> I,
    ) -> std::io::Result<Vec<Option<EntryId>>> {
        let pass = self.passes;
        let table = self.table_mut(first_names);
        let mut ids = Vec::with_capacity(module.symbols.len());
        for s in &module.symbols {
            if !has_function_key(s) {
                ids.push(None);
                continue;
            }
            let mut nth = 0;
            let id = loop {
                let hash = key_hash(s.name.as_bytes(), nth);
                // One probe finds the key or the place for it.
                let names = &table.names;
                let rehash = |key: &Key| key_hash(name_bytes(names, key), key.nth);
                match table.keys.entry(hash, is_key(names, &s.name, nth), rehash) {
                    Entry::Occupied(key) if key.get().last_pass == pass => nth += 1,
                    Entry::Occupied(mut key) => {
                        key.get_mut().last_pass = pass;
                        break key.get().id;
                    }
                    Entry::Vacant(place) => {
                        let id = allocate()?;
                        let (start, len) = name_place(&table.names, &s.name)?;
                        place.insert(Key {
                            start,
                            len,
                            nth,
                            id,
                            last_pass: pass,
                        });
                        table.names.push_str(&s.name);
                        break id;
                    }
                }
            };
            ids.push(Some(id));
        }
        Ok(ids)
    }

    /// The entry of `key` (`name`, or `name#N` with N ≥ 1).
    /// `first_names`: see the type's docs.
    pub fn get<'a, I: Iterator<Item = &'a str>>(&self, key: &str, first_names: impl Fn() -> I) -> Option<EntryId> {
        let from_list = self.keys.get().is_none() && self.list_lookups.fetch_add(1, Ordering::Relaxed) < LIST_LOOKUPS;
        self.find(key, 0, from_list, &first_names).or_else(|| {
            let (name, nth) = key.rsplit_once('#')?;
            // Only the spelling `spell` gives (no sign, no leading 0).
            if nth.starts_with('0') || !nth.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            self.find(name, nth.parse().ok().filter(|&n| n >= 1)?, from_list, &first_names)
        })
    }

    /// The keys whose entries are in `ids` (sorted), sorted.
    /// `first_names`: see the type's docs.
    pub fn keys_of<'a, I: Iterator<Item = &'a str>>(
        &self,
        ids: &[EntryId],
        first_names: impl FnOnce() -> I,
    ) -> Vec<String> {
        let table = self.table(first_names);
        let mut keys: Vec<String> = table
            .keys
            .iter()
            .filter(|k| ids.binary_search(&k.id).is_ok())
            .map(|k| spell(&String::from_utf8_lossy(name_bytes(&table.names, k)), k.nth))
            .collect();
        keys.sort();
        keys
    }
}

/// The names of `module`'s functions that have keys, in symbol order.
pub(crate) fn function_names<'a>(module: &'a Module) -> impl Iterator<Item = &'a str> + 'a {
    module.symbols.iter().filter(|s| has_function_key(s)).map(|s| &*s.name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{Binding, Symbol, SymbolType};

    fn function(name: &str, binding: Binding) -> Symbol<'static> {
        Symbol {
            name: name.to_string().into(),
            kind: SymbolType::Function,
            binding,
            section: Some(0),
            value: 0,
            size: 1,
        }
    }

    fn module(symbols: Vec<Symbol<'static>>) -> Module<'static> {
        Module {
            symbols,
            ..Module::default()
        }
    }

    /// Entries from a counter, so each new key's id is predictable.
    fn counter() -> impl FnMut() -> std::io::Result<EntryId> {
        let mut next = 0;
        move || {
            next += 1;
            Ok(EntryId::for_test(next))
        }
    }

    #[test]
    fn same_named_locals_get_numbered_keys_that_last_across_versions() {
        let mut keys = FunctionKeys::default();
        let mut allocate = counter();
        let first = module(vec![
            function("helper", Binding::Local),
            function("main_loop", Binding::Global),
            function("helper", Binding::Local),
        ]);
        let names = || function_names(&first);
        let ids = keys.assign(&first, &mut allocate, names).unwrap();
        assert_eq!(ids, [1, 2, 3].map(|n| Some(EntryId::for_test(n))));
        assert_eq!(keys.get("helper", names), Some(EntryId::for_test(1)));
        assert_eq!(keys.get("helper#1", names), Some(EntryId::for_test(3)));
        for missing in ["helper#2", "helper#01", "helper#0", "helper#+1", "helper#", "main"] {
            assert_eq!(keys.get(missing, names), None, "{missing}");
        }

        // A new version: a third `helper`, an import and an object take no
        // key; known keys keep their entries, whatever the symbol order.
        let mut object = function("state", Binding::Global);
        object.kind = SymbolType::Object;
        let mut import = function("strlen", Binding::Global);
        import.section = None;
        let second = module(vec![
            function("main_loop", Binding::Global),
            import,
            function("helper", Binding::Local),
            function("helper", Binding::Local),
            object,
            function("helper", Binding::Local),
        ]);
        let ids = keys.assign(&second, &mut allocate, names).unwrap();
        let id = |n| Some(EntryId::for_test(n));
        assert_eq!(ids, [id(2), None, id(1), id(3), None, id(4)]);
        assert_eq!(
            keys.keys_of(&[EntryId::for_test(2), EntryId::for_test(4)], names),
            ["helper#2", "main_loop"]
        );
        assert_eq!(keys.keys.get().map(|t| t.keys.len()), Some(4));
    }

    /// The first lookups read the first version's list, later ones the
    /// table: both give every key the same entry, numbered locals and
    /// missing keys included.
    #[test]
    fn lookups_from_the_list_and_from_the_table_agree() {
        let mut keys = FunctionKeys::default();
        let m = module(vec![
            function("a", Binding::Local),
            function("b", Binding::Global),
            function("a", Binding::Local),
            function("a", Binding::Local),
        ]);
        let names = || function_names(&m);
        keys.assign(&m, counter(), names).unwrap();
        let asked = ["a", "a#1", "a#2", "b", "a#3", "c", "b#1"];
        let from_list: Vec<Option<EntryId>> = asked.iter().map(|k| keys.get(k, names)).collect();
        assert!(
            keys.keys.get().is_none(),
            "the table was built for {} lookups",
            asked.len()
        );
        assert!(asked.len() < LIST_LOOKUPS as usize);
        let id = |n| Some(EntryId::for_test(n));
        assert_eq!(from_list, [id(1), id(3), id(4), id(2), None, None, None]);
        // Past the list's share of lookups, the table answers.
        for _ in 0..LIST_LOOKUPS {
            keys.get("b", names);
        }
        assert!(keys.keys.get().is_some());
        // The table holds the names now: the version's are not read again.
        let from_table: Vec<Option<EntryId>> = asked.iter().map(|k| keys.get(k, std::iter::empty)).collect();
        assert_eq!(from_table, from_list);
    }

    #[test]
    fn a_failed_allocation_keeps_the_keys_given_before_it() {
        let mut keys = FunctionKeys::default();
        let mut given = 0;
        let failing = || {
            given += 1;
            if given == 2 {
                Err(std::io::Error::other("no memory"))
            } else {
                Ok(EntryId::for_test(given))
            }
        };
        let m = module(vec![function("a", Binding::Global), function("b", Binding::Global)]);
        assert!(keys.assign(&m, failing, std::iter::empty).is_err());
        // The failed version is loaded nowhere: the keys given keep their
        // names without it.
        assert_eq!(keys.get("a", std::iter::empty), Some(EntryId::for_test(1)));
        assert_eq!(keys.get("b", std::iter::empty), None);
        assert_eq!(
            keys.assign(&m, counter(), std::iter::empty).unwrap()[0],
            Some(EntryId::for_test(1))
        );
    }
}
