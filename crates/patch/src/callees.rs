//! The functions a function's code calls or jumps to directly, by name, as
//! its object has them: what a revert by name and a reload after another
//! command's revert check, so that code is never left calling code of
//! another version of an edit (a changed signature reaches callers only
//! through a patch that has both).

use crate::objfile::{Kind, ObjectFile, Reloc, Target};

/// The functions symbol `i` of `obj` refers to by a relocation or a short
/// jump (a tail call GCC encodes in 2 bytes has none), sorted, each once;
/// itself left out.
pub fn direct_callees(obj: &ObjectFile, i: usize) -> Vec<String> {
    let Some(sym) = obj.symbols.get(i) else {
        return Vec::new();
    };
    let short = sym
        .short_exits
        .iter()
        .filter_map(|e| function_at(obj, sym.section, e.target));
    let mut names: Vec<String> = sym
        .relocs
        .iter()
        .filter_map(|r| referenced_function(obj, r))
        .chain(short)
        .filter(|name| *name != sym.name)
        .map(str::to_string)
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The function relocation `r` refers to: a function symbol of `obj`, an
/// undefined symbol (a function of another file, or data: callers compare
/// with function names only), or the function starting where it points
/// into a section (GCC's calls within one section, which the assembler
/// resolves and relive completes).
fn referenced_function<'o>(obj: &'o ObjectFile, r: &'o Reloc) -> Option<&'o str> {
    match &r.target {
        Target::Defined(j) => obj
            .symbols
            .get(*j)
            .filter(|s| s.kind == Kind::Function)
            .map(|s| s.name.as_str()),
        Target::Undefined(name) => Some(name.as_str()),
        Target::Section { section, offset } => function_at(obj, *section, offset.wrapping_add(r.pc_bias)),
    }
}

/// The function of `obj` that starts at `place` of section `section`.
fn function_at(obj: &ObjectFile, section: usize, place: i64) -> Option<&str> {
    obj.symbols
        .iter()
        .find(|s| s.kind == Kind::Function && s.section == section && s.offset as i64 == place)
        .map(|s| s.name.as_str())
}
