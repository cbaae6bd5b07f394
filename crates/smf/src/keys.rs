//! The function keys of one module name in a registry, and the entry each
//! key was given, for the registry's lifetime.
//!
//! A key is a function's name, or `name#N` for the Nth further local
//! function of that name in one version (two inputs may each have a
//! `static` one). Keys live as (name, N) in a hash table, their names in
//! one buffer, not as a `String` per key in a map: allocating, hashing
//! and freeing those strings was most of creating a registry and loading
//! a module into it.

use hashbrown::HashTable;

use crate::entries::EntryId;
use crate::format::Module;
use crate::hash::name_hash;
use crate::loader::has_function_key;

/// One key: its name in the buffer, its N, its entry, and the assignment
/// pass that last gave it to a symbol (how a second local function of
/// the same name in one version gets the next N).
#[derive(Debug)]
struct Key {
    start: usize,
    len: usize,
    nth: u32,
    id: EntryId,
    last_pass: u64,
}

/// Function keys and their entries (see the module docs).
#[derive(Debug, Default)]
pub struct FunctionKeys {
    names: String,
    /// Hashed by (name, N).
    keys: HashTable<Key>,
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
    names.as_bytes().get(key.start..key.start + key.len).unwrap_or_default()
}

impl FunctionKeys {
    /// Room for `functions` keys before growing.
    pub fn with_capacity(functions: usize) -> FunctionKeys {
        FunctionKeys {
            names: String::new(),
            keys: HashTable::with_capacity(functions),
            passes: 0,
        }
    }

    /// Key (name, N).
    #[inline]
    fn find(&self, name: &str, nth: u32) -> Option<&Key> {
        self.keys
            .find(key_hash(name.as_bytes(), nth), is_key(&self.names, name, nth))
    }

    /// Each symbol's entry (`None` for a symbol that is not a function the
    /// module defines): the one its key had before, or a new one from
    /// `allocate`. Keys given before a failing `allocate` keep theirs.
    pub fn assign(
        &mut self,
        module: &Module,
        mut allocate: impl FnMut() -> std::io::Result<EntryId>,
    ) -> std::io::Result<Vec<Option<EntryId>>> {
        self.passes += 1;
        let pass = self.passes;
        let mut ids = Vec::with_capacity(module.symbols.len());
        for s in &module.symbols {
            if !has_function_key(s) {
                ids.push(None);
                continue;
            }
            let mut nth = 0;
            let id = loop {
                let hash = key_hash(s.name.as_bytes(), nth);
                match self.keys.find_mut(hash, is_key(&self.names, &s.name, nth)) {
                    Some(key) if key.last_pass == pass => nth += 1,
                    Some(key) => {
                        key.last_pass = pass;
                        break key.id;
                    }
                    None => {
                        let id = allocate()?;
                        self.insert(hash, &s.name, nth, id, pass);
                        break id;
                    }
                }
            };
            ids.push(Some(id));
        }
        Ok(ids)
    }

    /// Adds key (name, N), whose hash is `hash`.
    fn insert(&mut self, hash: u64, name: &str, nth: u32, id: EntryId, pass: u64) {
        let key = Key {
            start: self.names.len(),
            len: name.len(),
            nth,
            id,
            last_pass: pass,
        };
        self.names.push_str(name);
        let names = &self.names;
        self.keys
            .insert_unique(hash, key, |key| key_hash(name_bytes(names, key), key.nth));
    }

    /// The entry of `key` (`name`, or `name#N` with N ≥ 1).
    pub fn get(&self, key: &str) -> Option<EntryId> {
        let found = self.find(key, 0).or_else(|| {
            let (name, nth) = key.rsplit_once('#')?;
            // Only the spelling `key_string` gives (no sign, no leading 0).
            if nth.starts_with('0') || !nth.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            self.find(name, nth.parse().ok().filter(|&n| n >= 1)?)
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
            .keys
            .iter()
            .filter(|k| ids.binary_search(&k.id).is_ok())
            .map(|k| self.key_string(k))
            .collect();
        keys.sort();
        keys
    }

    /// Every entry given so far.
    pub fn ids(&self) -> impl Iterator<Item = EntryId> + '_ {
        self.keys.iter().map(|k| k.id)
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
        assert_eq!(keys.ids().count(), 4);
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
