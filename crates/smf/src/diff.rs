//! Which functions differ between two versions of a module: what
//! `relive smf run --watch` names after a reload, so a user sees their
//! edit arrive, or learns that it landed in a function that is still
//! running its old code (an entry point's loop, or code inlined into it).
//!
//! Kept out of [`crate::registry::ModuleRegistry::reload`]: a registry
//! keeps no old module to compare with, and the comparison is a report,
//! not part of switching.

use std::collections::HashMap;

use crate::format::{Module, RelocType, Symbol, SymbolType};
use crate::keys::spell;
use crate::loader::has_function_key;

/// What a relocation in a function refers to, in terms that survive a
/// rebuild: a symbol by name, or a section (literals, `static` data the
/// assembler reached through the section) by its name.
#[derive(Debug, PartialEq, Eq)]
enum Target<'a> {
    Symbol(&'a str),
    Section(&'a str),
    Missing,
}

/// A function's bytes and its relocations (kind, offset in the function,
/// target, addend), in offset order.
#[derive(Debug, PartialEq, Eq)]
struct Fingerprint<'a> {
    bytes: &'a [u8],
    relocations: Vec<(RelocType, u64, Target<'a>, i64)>,
}

/// The keys (`name`, or `name#N` for the Nth further function of that
/// name, as a registry keys them) of the functions `new` defines whose
/// code or references differ from `old`'s function of the same key,
/// sorted. Functions only one version has are not listed (a reload
/// reports them as added or removed). A function counts as changed when
/// a literal it uses moved within its section, even if its source did not
/// change.
pub fn changed_functions(old: &Module, new: &Module) -> Vec<String> {
    let before: HashMap<String, Fingerprint> = fingerprints(old).collect();
    let mut changed: Vec<String> = fingerprints(new)
        .filter(|(key, print)| before.get(key).is_some_and(|old| old != print))
        .map(|(key, _)| key)
        .collect();
    changed.sort();
    changed
}

/// Each function of `module` with its key and fingerprint.
fn fingerprints<'m>(module: &'m Module) -> impl Iterator<Item = (String, Fingerprint<'m>)> + 'm {
    // Relocation indices by (section, offset): one sort, then a binary
    // search per function.
    let mut order: Vec<usize> = (0..module.relocations.len()).collect();
    order.sort_unstable_by_key(|&i| (module.relocations[i].section, module.relocations[i].offset));
    let mut seen: HashMap<&str, u32> = HashMap::new();
    module.symbols.iter().filter(|s| has_function_key(s)).map(move |s| {
        let nth = seen.entry(&s.name).or_insert(0);
        let key = spell(&s.name, *nth);
        *nth += 1;
        (key, fingerprint(module, s, &order))
    })
}

fn fingerprint<'m>(module: &'m Module, function: &Symbol, order: &[usize]) -> Fingerprint<'m> {
    let section = function.section.unwrap_or(u32::MAX);
    let start = function.value;
    let end = start.saturating_add(function.size);
    let bytes = module
        .sections
        .get(section as usize)
        .and_then(|s| s.bytes.get(usize::try_from(start).ok()?..usize::try_from(end).ok()?))
        .unwrap_or_default();
    let first = order.partition_point(|&i| {
        let r = &module.relocations[i];
        (r.section, r.offset) < (section, start)
    });
    let relocations = order[first..]
        .iter()
        .map(|&i| &module.relocations[i])
        .take_while(|r| r.section == section && r.offset < end)
        .map(|r| (r.kind, r.offset - start, target(module, r.symbol), r.addend))
        .collect();
    Fingerprint { bytes, relocations }
}

fn target<'m>(module: &'m Module, symbol: u32) -> Target<'m> {
    let Some(s) = module.symbols.get(symbol as usize) else {
        return Target::Missing;
    };
    match (s.kind, s.section) {
        (SymbolType::Section, Some(section)) => module
            .sections
            .get(section as usize)
            .map_or(Target::Missing, |sec| Target::Section(&sec.name)),
        _ => Target::Symbol(&s.name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{Binding, Relocation, Section, SectionKind};

    /// A module with one code section and the functions (name, bytes),
    /// laid out one after another, plus relocations (function index,
    /// offset in it, target symbol index, addend).
    fn module(functions: &[(&str, &[u8])], relocations: &[(usize, u64, u32, i64)]) -> Module<'static> {
        let mut code = Vec::new();
        let mut symbols = Vec::new();
        for (name, bytes) in functions {
            symbols.push(Symbol {
                name: name.to_string().into(),
                kind: SymbolType::Function,
                binding: Binding::Local,
                section: Some(0),
                value: code.len() as u64,
                size: bytes.len() as u64,
            });
            code.extend_from_slice(bytes);
        }
        symbols.push(Symbol {
            name: "strlen".into(),
            kind: SymbolType::None,
            binding: Binding::Global,
            section: None,
            value: 0,
            size: 0,
        });
        let relocations = relocations
            .iter()
            .map(|&(f, offset, symbol, addend)| Relocation {
                section: 0,
                kind: RelocType::Plt32,
                offset: symbols[f].value + offset,
                symbol,
                addend,
            })
            .collect();
        Module {
            sections: vec![Section {
                name: ".text".into(),
                kind: SectionKind::Code,
                memory_size: code.len() as u64,
                bytes: code.into(),
                alignment: 16,
            }],
            symbols,
            relocations,
            ..Module::default()
        }
    }

    #[test]
    fn only_functions_whose_bytes_or_references_differ_are_changed() {
        let old = module(
            &[("a", &[1, 2, 3]), ("b", &[4, 5]), ("c", &[6, 0, 0, 0, 0]), ("c", &[7])],
            &[(2, 1, 4, -4)],
        );
        assert!(changed_functions(&old, &old).is_empty());
        // `a` grows by one byte (moving the rest), `c`'s call targets
        // another symbol, the second `c` (c#1) changes a byte; `b` moves
        // but is the same.
        let new = module(
            &[
                ("a", &[1, 2, 3, 9]),
                ("b", &[4, 5]),
                ("c", &[6, 0, 0, 0, 0]),
                ("c", &[8]),
            ],
            &[(2, 1, 0, -4)],
        );
        assert_eq!(changed_functions(&old, &new), ["a", "c", "c#1"]);
        // An addend alone is a change; a function only one side has is not.
        let addend = module(
            &[("a", &[1, 2, 3]), ("b", &[4, 5]), ("c", &[6, 0, 0, 0, 0]), ("d", &[7])],
            &[(2, 1, 4, 0)],
        );
        assert_eq!(changed_functions(&old, &addend), ["c"]);
    }
}
