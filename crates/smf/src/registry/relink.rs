//! Importers follow what a reload moves.
//!
//! A function another module imports is reached through its stable entry,
//! which never moves. An object or read-only data is imported by address,
//! and a reload can place it elsewhere: writable data moves when its
//! layout changes (or `keep_data` is off), read-only data moves with the
//! code on every reload. An importer left bound to the old address would
//! read and write the retired version's copy (two modules no longer
//! sharing one global), and read unmapped or reused memory once
//! [`ModuleRegistry::free_retired`] ran.
//!
//! So a reload links every such importer again, from the module it was
//! loaded from (a slot keeps it while it imports from other modules),
//! against the new addresses. Its writable data is shared with its current
//! version (the module did not change, nor did its layout), so its state
//! is kept, and its functions keep their entries; its version number does
//! not move. Its own read-only data moves with its new code, so the
//! importers of that follow in turn. A module that would have to be
//! linked twice in one reload (a cycle of imports of such symbols) makes
//! the reload fail with [`RegistryError::RelinkCycle`], nothing changed.

use std::collections::BTreeSet;

use super::{Linked, ModuleRegistry, RegistryError, Slot};
use crate::loader::LoadedModule;

impl ModuleRegistry {
    /// Links again, in order, every module that imports something module
    /// `index`'s new version `new` (which imports `new_imports`) places
    /// elsewhere, and the importers of what those relinks move. Nothing is
    /// switched yet; on an error nothing has changed.
    pub(super) fn relink_importers(
        &mut self,
        index: usize,
        new: &LoadedModule,
        new_imports: &BTreeSet<(String, String)>,
    ) -> Result<Vec<(usize, Linked)>, RegistryError> {
        let mut relinked: Vec<(usize, Linked)> = Vec::new();
        if self.modules.iter().all(|m| m.imports.is_empty()) {
            return Ok(relinked); // no module imports from another
        }
        loop {
            let replaced = replacements(index, new, &relinked);
            let stale = (0..self.modules.len())
                .filter(|&j| j != index && relinked.iter().all(|(r, _)| *r != j))
                .find(|&j| self.moved_import(&self.modules[j].imports, &replaced).is_some());
            let Some(j) = stale else { break };
            let Some(source) = self.modules[j].source.take() else {
                unreachable!("a module importing from another keeps its source")
            };
            let name = self.modules[j].name.clone();
            let data = self.modules[j].current.data_region().clone();
            let linked = self.link(&name, &source, Some(data), &replaced);
            self.modules[j].source = Some(source);
            relinked.push((j, linked?));
        }
        // Each version was linked against the ones made before it; one
        // importing what a later relink moved would need linking again.
        let linked_in_order =
            std::iter::once((index, new_imports)).chain(relinked.iter().map(|(j, l)| (*j, &l.imports)));
        for (position, (module, imports)) in linked_in_order.enumerate() {
            let later: Vec<(usize, &LoadedModule)> =
                relinked.iter().skip(position).map(|(j, l)| (*j, &l.loaded)).collect();
            if let Some((from, symbol)) = self.moved_import(imports, &later) {
                return Err(RegistryError::RelinkCycle {
                    module: self.modules[module].name.clone(),
                    symbol: symbol.clone(),
                    from: from.clone(),
                });
            }
        }
        Ok(relinked)
    }

    /// The first of `imports` ((module, symbol) pairs) whose module is
    /// among `replaced` and whose address differs there.
    fn moved_import<'i>(
        &self,
        imports: &'i BTreeSet<(String, String)>,
        replaced: &[(usize, &LoadedModule)],
    ) -> Option<&'i (String, String)> {
        imports.iter().find(|(from, symbol)| {
            replaced.iter().any(|&(j, version)| {
                let slot: &Slot = &self.modules[j];
                slot.name == *from && slot.current.symbol(symbol) != version.symbol(symbol)
            })
        })
    }

    /// Switches each relinked module to its new version (entries to its
    /// code, the old version retired); returns their names.
    pub(super) fn commit_relinked(&mut self, relinked: Vec<(usize, Linked)>) -> Vec<String> {
        let mut names = Vec::with_capacity(relinked.len());
        for (j, linked) in relinked {
            // The same module again: the same functions, the same entries.
            debug_assert!(linked.ids.is_none(), "a relink keeps its entries");
            self.point_same_entries(j, &linked.loaded);
            let slot = &mut self.modules[j];
            linked.loaded.follow_pointers(&slot.current);
            let old = std::mem::replace(&mut slot.current, linked.loaded);
            slot.imports = linked.imports;
            names.push(slot.name.clone());
            self.retired.push(old);
        }
        names
    }
}

/// Module `index`'s new version and the relinked ones, as
/// [`ModuleRegistry::link`] takes them.
fn replacements<'a>(
    index: usize,
    new: &'a LoadedModule,
    relinked: &'a [(usize, Linked)],
) -> Vec<(usize, &'a LoadedModule)> {
    std::iter::once((index, new))
        .chain(relinked.iter().map(|(j, l)| (*j, &l.loaded)))
        .collect()
}
