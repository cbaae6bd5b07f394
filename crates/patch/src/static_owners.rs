//! The function each function-local static of an object is declared in,
//! from its DWARF: the top-level `DW_TAG_subprogram` whose entries hold
//! the static's `DW_TAG_variable`, whose location (`DW_OP_addr`) is a
//! relocation against it.
//!
//! GCC names such statics `n.0`, `n.1` in an order an edit changes, so
//! the diff and the linker know one by its function and name instead
//! ([`crate::diff::keys`]). The functions that refer to it say which
//! function that is only until it is inlined: a static of an inlined
//! `kick` is referred to by its caller, and an edit that replaced `kick`
//! with a `tock` of its own `n` gave the new static the old one's value
//! (a user's trial, on zstd). The debug information names the function
//! it is declared in, inlined or not.
//!
//! Found from the other end, for speed: the relocations of `.debug_info`
//! against the statics give the places of their locations, and the index
//! of top-level entries ([`crate::debug_index`]) the function around each
//! place. A walk over every entry of a large unit made its diff a fifth
//! longer.

use gimli::Reader as _;
use object::{Object, ObjectSymbol};
use relive_x86::rtype;

use crate::objfile::ObjectFile;

/// For each symbol of `obj` (by index) that `wanted` accepts and the
/// DWARF places in a function: that function's name. Empty without
/// debug information, or where it cannot be read.
pub(crate) fn declared_in(obj: &ObjectFile, wanted: &[bool]) -> foldhash::HashMap<usize, String> {
    let mut owners = foldhash::HashMap::default();
    if !obj.has_debug_info() || !wanted.contains(&true) {
        return owners;
    }
    let Ok(file) = object::File::parse(obj.raw()) else {
        return owners;
    };
    // Each wanted static by its section (ELF index) and offset.
    let statics: foldhash::HashMap<(usize, i64), usize> = wanted
        .iter()
        .enumerate()
        .filter(|(_, &w)| w)
        .filter_map(|(i, _)| {
            let s = obj.symbols.get(i)?;
            Some(((s.section, s.offset as i64), i))
        })
        .collect();
    // Where each ELF symbol is: its section and offset.
    let count = file.symbols().map(|s| s.index().0 + 1).max().unwrap_or(0);
    let mut places = vec![None; count];
    for sym in file.symbols() {
        if let Some(section) = sym.section_index() {
            places[sym.index().0] = Some((section.0, sym.address() as i64));
        }
    }
    let (_, fixups) = obj.debug_section(".debug_info");
    let fields: Vec<(u64, usize)> = fixups
        .all()
        .filter(|r| r.r_type == rtype::R64)
        .filter_map(|r| {
            let (section, at) = (*places.get(r.symbol)?)?;
            Some((r.offset, *statics.get(&(section, at.wrapping_add(r.addend)))?))
        })
        .collect();
    if fields.is_empty() {
        return owners;
    }
    let index = crate::signature::index(obj);
    let _ = crate::signature::with_dwarf(obj, |dwarf| {
        let mut units = foldhash::HashMap::default();
        for (field, i) in fields {
            let Some(entry) = index.function_around(field) else {
                continue;
            };
            crate::signature::unit_at(dwarf, &mut units, entry.unit)?;
            let Some(unit) = units.get(&entry.unit) else {
                continue;
            };
            let Some(name) = unit.entry(entry.offset)?.attr_value(gimli::DW_AT_name)? else {
                continue;
            };
            let name = dwarf.attr_string(unit, name)?.to_string_lossy()?.into_owned();
            owners.entry(i).or_insert(name);
        }
        Ok(())
    });
    owners
}
