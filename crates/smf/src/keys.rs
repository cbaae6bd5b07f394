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

/// One key: its name in the buffer, its N, its entry, and the assignment
/// pass that last gave it to a symbol (how a second local function of
/// the same name in one version gets the next N).
#[derive(Debug, Clone)]
struct Key {
    // u32s (a module's string table is addressed by u32 offsets): a
    // registry's first load writes one key a function.
    start: u32,
    len: u32,
    nth: u32,
    id: EntryId,
    last_pass: u64,
}

/// Function keys and their entries (see the module docs).
#[derive(Debug, Default)]
pub struct FunctionKeys {
    names: String,
    /// The first version's keys in symbol order, their N not counted yet
    /// (the Kth of a name is N = K - 1); read only while `keys` is not
    /// built, and emptied once the table changes.
    first: Vec<Key>,
    /// Hashed by (name, N), once needed.
    keys: OnceLock<HashTable<Key>>,
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

/// Where the next key's name starts in `names`: keys address their names
/// with u32s (a name itself comes from a module's string table, which u32
/// offsets address).
fn name_offset(names: &str) -> std::io::Result<u32> {
    u32::try_from(names.len()).map_err(|_| std::io::Error::other("a module's function names passed 4 GiB"))
}

/// A name's length as keys keep it (see [`name_offset`]).
fn name_len(name: &str) -> std::io::Result<u32> {
    u32::try_from(name.len()).map_err(|_| std::io::Error::other("a function name passed 4 GiB"))
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

/// The table of `first` (keys in symbol order): each key's N is the
/// number of keys of its name before it.
fn table_of(names: &str, first: &[Key]) -> HashTable<Key> {
    let mut table: HashTable<Key> = HashTable::with_capacity(first.len());
    let rehash = |key: &Key| key_hash(name_bytes(names, key), key.nth);
    for key in first {
        let name = name_bytes(names, key);
        let mut nth = 0;
        loop {
            match table.entry(
                key_hash(name, nth),
                |k| k.nth == nth && name_bytes(names, k) == name,
                rehash,
            ) {
                Entry::Occupied(_) => nth += 1,
                Entry::Vacant(place) => {
                    place.insert(Key { nth, ..key.clone() });
                    break;
                }
            }
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

    /// The table, built now if it was not.
    fn table(&self) -> &HashTable<Key> {
        self.keys.get_or_init(|| table_of(&self.names, &self.first))
    }

    /// The table, built now if it was not, to change.
    fn table_mut(&mut self) -> &mut HashTable<Key> {
        self.table();
        self.first = Vec::new();
        self.keys.get_mut().expect("built above")
    }

    /// Key (name, N), from the list or from the table.
    fn find(&self, name: &str, nth: u32, from_list: bool) -> Option<&Key> {
        if from_list {
            // Length and last byte first: most names of a module differ
            // there (`f17`, `f18`), which spares a memcmp call each.
            let wanted = name.as_bytes();
            let last = wanted.last();
            return self
                .first
                .iter()
                .filter(|k| k.len as usize == wanted.len() && name_bytes(&self.names, k).last() == last)
                .filter(|k| name_bytes(&self.names, k) == wanted)
                .nth(nth as usize);
        }
        self.table()
            .find(key_hash(name.as_bytes(), nth), is_key(&self.names, name, nth))
    }

    /// Each symbol's entry (`None` for a symbol that is not a function the
    /// module defines): the one its key had before, or a new one from
    /// `allocate`. Keys given before a failing `allocate` keep theirs.
    pub fn assign(
        &mut self,
        module: &Module,
        allocate: impl FnMut() -> std::io::Result<EntryId>,
    ) -> std::io::Result<Vec<Option<EntryId>>> {
        self.passes += 1;
        if self.first.is_empty() && self.keys.get().is_none_or(HashTable::is_empty) {
            self.assign_first(module, allocate)
        } else {
            self.assign_again(module, allocate)
        }
    }

    /// [`FunctionKeys::assign`] with no keys yet: each function a new
    /// entry, in symbol order.
    fn assign_first(
        &mut self,
        module: &Module,
        mut allocate: impl FnMut() -> std::io::Result<EntryId>,
    ) -> std::io::Result<Vec<Option<EntryId>>> {
        let pass = self.passes;
        self.keys = OnceLock::new();
        let bytes = module
            .symbols
            .iter()
            .filter(|s| has_function_key(s))
            .map(|s| s.name.len())
            .sum();
        self.names.reserve_exact(bytes);
        let mut ids = Vec::with_capacity(module.symbols.len());
        for s in &module.symbols {
            if !has_function_key(s) {
                ids.push(None);
                continue;
            }
            let id = allocate()?;
            self.first.push(Key {
                start: name_offset(&self.names)?,
                len: name_len(&s.name)?,
                nth: 0,
                id,
                last_pass: pass,
            });
            self.names.push_str(&s.name);
            ids.push(Some(id));
        }
        Ok(ids)
    }

    /// [`FunctionKeys::assign`] of a later version, through the table.
    fn assign_again(
        &mut self,
        module: &Module,
        mut allocate: impl FnMut() -> std::io::Result<EntryId>,
    ) -> std::io::Result<Vec<Option<EntryId>>> {
        let pass = self.passes;
        self.table_mut();
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
                let names = &self.names;
                let rehash = |key: &Key| key_hash(name_bytes(names, key), key.nth);
                let table = self.keys.get_mut().expect("built above");
                match table.entry(hash, is_key(names, &s.name, nth), rehash) {
                    Entry::Occupied(key) if key.get().last_pass == pass => nth += 1,
                    Entry::Occupied(mut key) => {
                        key.get_mut().last_pass = pass;
                        break key.get().id;
                    }
                    Entry::Vacant(place) => {
                        let id = allocate()?;
                        place.insert(Key {
                            start: name_offset(&self.names)?,
                            len: name_len(&s.name)?,
                            nth,
                            id,
                            last_pass: pass,
                        });
                        self.names.push_str(&s.name);
                        break id;
                    }
                }
            };
            ids.push(Some(id));
        }
        Ok(ids)
    }

    /// The entry of `key` (`name`, or `name#N` with N ≥ 1).
    pub fn get(&self, key: &str) -> Option<EntryId> {
        let from_list = self.keys.get().is_none() && self.list_lookups.fetch_add(1, Ordering::Relaxed) < LIST_LOOKUPS;
        let found = self.find(key, 0, from_list).or_else(|| {
            let (name, nth) = key.rsplit_once('#')?;
            // Only the spelling `key_string` gives (no sign, no leading 0).
            if nth.starts_with('0') || !nth.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            self.find(name, nth.parse().ok().filter(|&n| n >= 1)?, from_list)
        })?;
        Some(found.id)
    }

    /// The key spelled out.
    fn key_string(&self, key: &Key) -> String {
        spell(&String::from_utf8_lossy(name_bytes(&self.names, key)), key.nth)
    }

    /// The keys whose entries are in `ids` (sorted), sorted.
    pub fn keys_of(&self, ids: &[EntryId]) -> Vec<String> {
        let mut keys: Vec<String> = self
            .table()
            .iter()
            .filter(|k| ids.binary_search(&k.id).is_ok())
            .map(|k| self.key_string(k))
            .collect();
        keys.sort();
        keys
    }
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
        let ids = keys.assign(&first, &mut allocate).unwrap();
        assert_eq!(ids, [1, 2, 3].map(|n| Some(EntryId::for_test(n))));
        assert_eq!(keys.get("helper"), Some(EntryId::for_test(1)));
        assert_eq!(keys.get("helper#1"), Some(EntryId::for_test(3)));
        for missing in ["helper#2", "helper#01", "helper#0", "helper#+1", "helper#", "main"] {
            assert_eq!(keys.get(missing), None, "{missing}");
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
        let ids = keys.assign(&second, &mut allocate).unwrap();
        let id = |n| Some(EntryId::for_test(n));
        assert_eq!(ids, [id(2), None, id(1), id(3), None, id(4)]);
        assert_eq!(
            keys.keys_of(&[EntryId::for_test(2), EntryId::for_test(4)]),
            ["helper#2", "main_loop"]
        );
        assert_eq!(keys.table().len(), 4);
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
        keys.assign(&m, counter()).unwrap();
        let asked = ["a", "a#1", "a#2", "b", "a#3", "c", "b#1"];
        let from_list: Vec<Option<EntryId>> = asked.iter().map(|k| keys.get(k)).collect();
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
            keys.get("b");
        }
        assert!(keys.keys.get().is_some());
        let from_table: Vec<Option<EntryId>> = asked.iter().map(|k| keys.get(k)).collect();
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
        assert!(keys.assign(&m, failing).is_err());
        assert_eq!(keys.get("a"), Some(EntryId::for_test(1)));
        assert_eq!(keys.get("b"), None);
        assert_eq!(keys.assign(&m, counter()).unwrap()[0], Some(EntryId::for_test(1)));
    }
}
