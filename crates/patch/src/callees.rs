//! The functions a function's code calls or jumps to directly, by name, as
//! its object has them: what a revert by name and a reload after another
//! command's revert check, so that code is never left calling code of
//! another version of an edit (a changed signature reaches callers only
//! through a patch that has both).

use crate::objfile::{Kind, ObjectFile, Target};

/// The functions symbol `i` of `obj` refers to by a relocation or a short
/// jump (a tail call GCC encodes in 2 bytes has none), sorted, each once;
/// itself left out.
pub fn direct_callees(obj: &ObjectFile, i: usize) -> Vec<String> {
    let Some(sym) = obj.symbols.get(i) else {
        return Vec::new();
    };
    let function = |k: usize| Some(&obj.symbols[k]).filter(|s| s.kind == Kind::Function);
    let short = sym
        .short_exits
        .iter()
        .filter_map(|e| function(obj.symbol_at(sym.section, e.target)?.0));
    let mut names: Vec<String> = sym
        .relocs
        .iter()
        .filter_map(|r| match &r.target {
            // A function of another file (or data: callers compare with
            // function names only).
            Target::Undefined(name) => Some(name.as_str()),
            // The symbol, or the one covering the place a section-relative
            // reference denotes (GCC's calls within one section, which the
            // assembler resolves and relive completes).
            _ => function(obj.referenced_symbol(r)?).map(|s| s.name.as_str()),
        })
        .chain(short.map(|s| s.name.as_str()))
        .filter(|name| *name != sym.name)
        .map(str::to_string)
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The functions of other files (undefined in `obj`) that `functions` of
/// `obj` refer to, sorted, each once: whose prototypes their new code
/// calls by.
pub fn undefined_callees<'o>(obj: &'o ObjectFile, functions: &[usize]) -> Vec<&'o str> {
    let mut called: Vec<&str> = functions
        .iter()
        .filter_map(|&i| obj.symbols.get(i))
        .flat_map(|s| &s.relocs)
        .filter_map(|r| match &r.target {
            crate::objfile::Target::Undefined(name) => Some(name.as_str()),
            _ => None,
        })
        .collect();
    called.sort_unstable();
    called.dedup();
    called
}
