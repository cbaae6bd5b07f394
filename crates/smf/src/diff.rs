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
/// rebuild: a symbol by name, a string literal by its text, or a section
/// (other constants, `static` data the assembler reached through the
/// section) by its name.
#[derive(Debug, PartialEq, Eq)]
enum Target<'a> {
    Symbol(&'a str),
    /// A string in a section of strings (`.rodata.str1.1`), with the
    /// addend taken relative to the string's start: a literal that moved
    /// is the same, one whose text changed is not.
    Literal(&'a str, &'a [u8]),
    /// Read-only data at a symbol: its name (none for an assembler's
    /// label, `.LC0`, which another literal added renumbers) and its
    /// bytes, to the next symbol of its section (a constant table, or a
    /// string that `smf pack` merged into `.rodata`).
    Constant(&'a str, &'a [u8]),
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
/// reports them as added or removed). A string literal counts by its
/// text: one that only moved within its section (another was added
/// before it) changes nothing, one whose text changed changes every
/// function that uses it. Other constants count by their place.
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
    let starts = symbol_starts(module);
    let mut seen: HashMap<&str, u32> = HashMap::new();
    module.symbols.iter().filter(|s| has_function_key(s)).map(move |s| {
        let nth = seen.entry(&s.name).or_insert(0);
        let key = spell(&s.name, *nth);
        *nth += 1;
        (key, fingerprint(module, s, &order, &starts))
    })
}

/// Per section, where its symbols start, sorted: where a constant's bytes
/// end.
fn symbol_starts(module: &Module) -> HashMap<u32, Vec<u64>> {
    let mut starts: HashMap<u32, Vec<u64>> = HashMap::new();
    for s in &module.symbols {
        if let (Some(section), false) = (s.section, s.kind == SymbolType::Section) {
            starts.entry(section).or_default().push(s.value);
        }
    }
    for v in starts.values_mut() {
        v.sort_unstable();
        v.dedup();
    }
    starts
}

fn fingerprint<'m>(
    module: &'m Module,
    function: &Symbol,
    order: &[usize],
    starts: &HashMap<u32, Vec<u64>>,
) -> Fingerprint<'m> {
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
        .map(|r| {
            let (target, addend) = target(module, r.symbol, r.kind, r.addend, starts);
            (r.kind, r.offset - start, target, addend)
        })
        .collect();
    Fingerprint { bytes, relocations }
}

/// A relocation's target and addend as compared (see [`Target`]).
fn target<'m>(
    module: &'m Module,
    symbol: u32,
    kind: RelocType,
    addend: i64,
    starts: &HashMap<u32, Vec<u64>>,
) -> (Target<'m>, i64) {
    let Some(s) = module.symbols.get(symbol as usize) else {
        return (Target::Missing, addend);
    };
    let read_only = |section: u32| {
        module
            .sections
            .get(section as usize)
            .filter(|sec| sec.kind == crate::format::SectionKind::RoData)
    };
    let section = match (s.kind, s.section) {
        (SymbolType::Section, Some(section)) => section,
        (_, Some(section)) => {
            let Some(sec) = read_only(section) else {
                return (Target::Symbol(&s.name), addend);
            };
            let next = starts
                .get(&section)
                .and_then(|v| v.get(v.partition_point(|&o| o <= s.value)).copied())
                .unwrap_or(sec.bytes.len() as u64);
            let bytes: &[u8] = &sec.bytes;
            let piece = usize::try_from(s.value)
                .ok()
                .zip(usize::try_from(next).ok())
                .and_then(|(from, to)| bytes.get(from..to.min(bytes.len())))
                .unwrap_or_default();
            let name = if s.name.starts_with(".L") { "" } else { s.name.as_ref() };
            return (Target::Constant(name, piece), addend);
        }
        _ => return (Target::Symbol(&s.name), addend),
    };
    let Some(sec) = module.sections.get(section as usize) else {
        return (Target::Missing, addend);
    };
    if !is_strings(sec) {
        return (Target::Section(&sec.name), addend);
    }
    let bytes: &[u8] = &sec.bytes;
    match place(kind, addend)
        .and_then(|at| usize::try_from(at).ok())
        .filter(|&at| at < bytes.len())
    {
        Some(at) => {
            let start = bytes[..at].iter().rposition(|&b| b == 0).map_or(0, |p| p + 1);
            let end = bytes[at..].iter().position(|&b| b == 0).map_or(bytes.len(), |p| at + p);
            (Target::Literal(&sec.name, &bytes[start..end]), addend - start as i64)
        }
        None => (Target::Section(&sec.name), addend),
    }
}

/// The place in its target's section a relocation of `kind` with
/// `addend` refers to: a PC-relative field's addend counts from the
/// field's end (4 bytes on), where the instruction usually ends.
fn place(kind: RelocType, addend: i64) -> Option<u64> {
    let bias = if kind.pc_relative() { 4 } else { 0 };
    u64::try_from(addend.checked_add(bias)?).ok()
}

/// A section of NUL-terminated string literals, as GCC and clang name
/// them (`.rodata.str1.1`, `.rodata.str1.8`).
fn is_strings(section: &crate::format::Section) -> bool {
    section.kind == crate::format::SectionKind::RoData && section.name.starts_with(".rodata.str")
}

/// The names the code of function `name` (its first of that name) refers
/// to: functions and data by symbol, and a function of its own module
/// reached through its section (a call the assembler resolved).
pub fn references_of(module: &Module, name: &str) -> Vec<String> {
    let Some(f) = module.symbols.iter().find(|s| has_function_key(s) && s.name == name) else {
        return Vec::new();
    };
    let section = f.section.unwrap_or(u32::MAX);
    let (start, end) = (f.value, f.value.saturating_add(f.size));
    let mut out: Vec<String> = module
        .relocations
        .iter()
        .filter(|r| r.section == section && (start..end).contains(&r.offset))
        .filter_map(|r| referred(module, r))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// What relocation `r` refers to by name: its symbol, or through a
/// section symbol the function at that place (`call .text+N`; a table's
/// `.text.f+0` with `-ffunction-sections`).
fn referred(module: &Module, r: &crate::format::Relocation) -> Option<String> {
    let s = module.symbols.get(r.symbol as usize)?;
    if s.kind != SymbolType::Section {
        return Some(s.name.to_string());
    }
    let place = place(r.kind, r.addend)?;
    module
        .symbols
        .iter()
        .find(|g| has_function_key(g) && g.section == s.section && (g.value..g.value + g.size.max(1)).contains(&place))
        .map(|g| g.name.to_string())
}

/// The functions of `module` that code can reach from `roots` (names):
/// through the references of each function reached, and from data (a
/// function pointer stored in a table is reachable however it is used).
pub fn reachable(module: &Module, roots: &[String]) -> std::collections::BTreeSet<String> {
    let functions: std::collections::BTreeSet<&str> = module
        .symbols
        .iter()
        .filter(|s| has_function_key(s))
        .map(|s| s.name.as_ref())
        .collect();
    let code: std::collections::BTreeSet<u32> = module
        .symbols
        .iter()
        .filter(|s| has_function_key(s))
        .filter_map(|s| s.section)
        .collect();
    // Referred to from outside any code section: data holds its address.
    let from_data = module
        .relocations
        .iter()
        .filter(|r| !code.contains(&r.section))
        .filter_map(|r| referred(module, r))
        .filter(|name| functions.contains(name.as_str()));
    let mut queue: Vec<String> = roots.iter().cloned().chain(from_data).collect();
    let mut seen = std::collections::BTreeSet::new();
    while let Some(name) = queue.pop() {
        if !functions.contains(name.as_str()) || !seen.insert(name.clone()) {
            continue;
        }
        queue.extend(references_of(module, &name));
    }
    seen
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

    /// `greet` prints a literal: the literal's text changed in place, or
    /// grown, changes `greet`; the literal only moved (another added
    /// before it) changes nothing.
    #[test]
    fn a_literal_counts_by_its_text_not_its_place() {
        let with = |strings: &[u8]| {
            let mut m = module(&[("greet", &[0x48, 0x8d, 0x3d, 0, 0, 0, 0]), ("other", &[0xc3])], &[]);
            m.sections.push(Section {
                name: ".rodata.str1.1".into(),
                kind: SectionKind::RoData,
                memory_size: strings.len() as u64,
                bytes: strings.to_vec().into(),
                alignment: 1,
            });
            m.symbols.push(Symbol {
                name: ".rodata.str1.1".into(),
                kind: SymbolType::Section,
                binding: Binding::Local,
                section: Some(1),
                value: 0,
                size: 0,
            });
            let section_symbol = m.symbols.len() as u32 - 1;
            // `lea rdi, [rip + "hello"]`: the string's offset - 4.
            let at = strings.windows(5).position(|w| w == b"hello" || w == b"HELLO").unwrap() as i64;
            m.relocations.push(Relocation {
                section: 0,
                kind: RelocType::Pc32,
                offset: 3,
                symbol: section_symbol,
                addend: at - 4,
            });
            m
        };
        let old = with(b"abc\0hello\0");
        assert!(changed_functions(&old, &with(b"abc\0hello\0")).is_empty());
        assert_eq!(changed_functions(&old, &with(b"abc\0HELLO\0")), ["greet"]);
        assert!(
            changed_functions(&old, &with(b"abc\0added\0hello\0")).is_empty(),
            "the literal only moved"
        );
        assert_eq!(
            changed_functions(&old, &with(b"abc\0hello, world\0")),
            ["greet"],
            "the literal grew"
        );
    }

    /// `main` calls `compute`, which calls `square`: what each refers to,
    /// and what running code reaches from `main`'s calls; a version
    /// without `square` (its only caller changed) leaves nothing calling
    /// it, so a removal is not said to be still called.
    #[test]
    fn references_and_what_running_code_reaches() {
        let code: &[u8] = &[0xe8, 0, 0, 0, 0, 0xc3];
        let first = module(
            &[("main", code), ("compute", code), ("square", code)],
            &[(0, 1, 1, -4), (1, 1, 2, -4)],
        );
        assert_eq!(references_of(&first, "main"), ["compute"]);
        assert_eq!(references_of(&first, "compute"), ["square"]);
        assert!(references_of(&first, "square").is_empty());
        let calls = references_of(&first, "main");
        assert_eq!(
            reachable(&first, &calls).into_iter().collect::<Vec<_>>(),
            ["compute", "square"]
        );
        // Version 2: compute no longer calls square, which is gone; a new
        // `helper` only the new main calls is reached by nothing running.
        let second = module(
            &[("main", code), ("compute", &[0xc3]), ("helper", code)],
            &[(0, 1, 2, -4)],
        );
        assert!(
            !calls.contains(&"square".to_string()),
            "the running main never called square"
        );
        assert_eq!(reachable(&second, &calls).into_iter().collect::<Vec<_>>(), ["compute"]);
        // A table in data holding `helper`'s address through its code
        // section (`.text+N`, as for a static function): reachable.
        let mut third = second.clone();
        third.sections.push(Section {
            name: ".data.rel.local".into(),
            kind: SectionKind::Data,
            memory_size: 8,
            bytes: vec![0; 8].into(),
            alignment: 8,
        });
        third.symbols.push(Symbol {
            name: ".text".into(),
            kind: SymbolType::Section,
            binding: Binding::Local,
            section: Some(0),
            value: 0,
            size: 0,
        });
        let text = third.symbols.len() as u32 - 1;
        let helper_at = third.symbols.iter().find(|s| s.name == "helper").unwrap().value as i64;
        third.relocations.push(Relocation {
            section: 1,
            kind: RelocType::Abs64,
            offset: 0,
            symbol: text,
            addend: helper_at,
        });
        assert!(reachable(&third, &calls).contains("helper"));
    }

    /// As `smf pack` makes them: literals merged into `.rodata`, each at an
    /// assembler's label (`.LC0`, ...) the code refers to. The label's
    /// number and place do not count, the text up to the next label does.
    #[test]
    fn a_literal_at_a_label_counts_by_its_text() {
        // `greet` refers to label number `which` of `labels` (name, text).
        let with = |labels: &[(&str, &[u8])], which: usize| {
            let mut m = module(&[("greet", &[0x48, 0x8d, 0x3d, 0, 0, 0, 0]), ("other", &[0xc3])], &[]);
            let mut bytes = Vec::new();
            for (name, text) in labels {
                m.symbols.push(Symbol {
                    name: name.to_string().into(),
                    kind: SymbolType::None,
                    binding: Binding::Local,
                    section: Some(1),
                    value: bytes.len() as u64,
                    size: 0,
                });
                bytes.extend_from_slice(text);
                bytes.push(0);
            }
            m.sections.push(Section {
                name: ".rodata".into(),
                kind: SectionKind::RoData,
                memory_size: bytes.len() as u64,
                bytes: bytes.into(),
                alignment: 8,
            });
            let label = (m.symbols.len() - labels.len() + which) as u32;
            m.relocations.push(Relocation {
                section: 0,
                kind: RelocType::Pc32,
                offset: 3,
                symbol: label,
                addend: -4,
            });
            m
        };
        let old = with(&[(".LC0", b"hello")], 0);
        assert!(changed_functions(&old, &with(&[(".LC0", b"hello")], 0)).is_empty());
        assert_eq!(changed_functions(&old, &with(&[(".LC0", b"HELLO")], 0)), ["greet"]);
        assert!(
            changed_functions(&old, &with(&[(".LC0", b"added"), (".LC1", b"hello")], 1)).is_empty(),
            "renumbered and moved, the same text"
        );
    }
}
