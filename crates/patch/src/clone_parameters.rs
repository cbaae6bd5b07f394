//! The parameters GCC kept for a clone (`f.isra.0`, `f.constprop.0`,
//! `f.part.0`), from the object's DWARF: GCC chooses them anew in every
//! compile, so two compiles may give clones of one name different
//! parameters, and a running caller's old code would pass the new clone
//! the old ones. Read here so that only a real change counts.
//!
//! GCC describes a clone as a concrete instance of its function
//! (`DW_AT_abstract_origin`) whose parameters are all listed: a kept one
//! arrives in a register (`DW_OP_regN` at the clone's entry, directly or
//! as its location list's first range), a dropped one is the caller's
//! value (`DW_OP_GNU_parameter_ref`) or a constant (`DW_AT_const_value`).

use gimli::{AttributeValue, EndianSlice, LittleEndian, Operation, Reader as _, SectionId, UnitOffset};

use crate::objfile::ObjectFile;
use crate::signature::Reader;

/// Each kept parameter of clone `symbol` of `obj` as `(name, register)`,
/// in DWARF register order; `None` where the DWARF does not tell (no DWARF, the
/// clone's entry not found, a location of another form).
pub fn kept(obj: &ObjectFile, symbol: usize) -> Option<Vec<(String, u16)>> {
    let sym = obj.symbols.get(symbol)?;
    let function = crate::names::parse(&sym.name).base;
    let index = crate::signature::index(obj);
    let dwarf = gimli::Dwarf::load(|id: SectionId| -> Result<Reader, gimli::Error> {
        let (bytes, fixups) = obj.debug_section(id.name());
        Ok(gimli::RelocateReader::new(
            EndianSlice::new(bytes, LittleEndian),
            fixups,
        ))
    })
    .ok()?;
    let mut units = foldhash::HashMap::default();
    for top in index.functions() {
        crate::signature::unit_at(&dwarf, &mut units, top.unit).ok()?;
        let unit = &units[&top.unit];
        let entry = unit.entry(top.offset).ok()?;
        let Ok(Some(AttributeValue::Addr(low))) = entry.attr_value(gimli::DW_AT_low_pc) else {
            continue;
        };
        let high = match entry.attr_value(gimli::DW_AT_high_pc).ok()? {
            Some(AttributeValue::Udata(len)) => low.wrapping_add(len),
            Some(AttributeValue::Addr(end)) => end,
            _ => continue,
        };
        if low != sym.offset || high.wrapping_sub(low) != sym.size {
            continue;
        }
        let Ok(Some(AttributeValue::UnitRef(origin))) = entry.attr_value(gimli::DW_AT_abstract_origin) else {
            continue;
        };
        if name_of(&dwarf, unit, origin).as_deref() != Some(function.as_str()) {
            continue;
        }
        return parameters(&dwarf, unit, top.offset, low);
    }
    None
}

/// The `DW_AT_name` of the entry at `offset`.
fn name_of(dwarf: &gimli::Dwarf<Reader>, unit: &gimli::Unit<Reader>, offset: UnitOffset) -> Option<String> {
    let entry = unit.entry(offset).ok()?;
    let value = entry.attr_value(gimli::DW_AT_name).ok()??;
    Some(
        dwarf
            .attr_string(unit, value)
            .ok()?
            .to_string_lossy()
            .ok()?
            .into_owned(),
    )
}

/// The kept parameters of the clone's entry at `offset`, whose code
/// starts at `low`.
fn parameters(
    dwarf: &gimli::Dwarf<Reader>,
    unit: &gimli::Unit<Reader>,
    offset: UnitOffset,
    low: u64,
) -> Option<Vec<(String, u16)>> {
    let mut tree = unit.entries_tree(Some(offset)).ok()?;
    let root = tree.root().ok()?;
    let mut children = root.children();
    let mut kept = Vec::new();
    while let Some(child) = children.next().ok()? {
        let entry = child.entry();
        if entry.tag() != gimli::DW_TAG_formal_parameter {
            continue;
        }
        let name = match entry.attr_value(gimli::DW_AT_abstract_origin).ok()? {
            Some(AttributeValue::UnitRef(origin)) => name_of(dwarf, unit, origin)?,
            _ => name_of(dwarf, unit, entry.offset())?,
        };
        if entry.attr_value(gimli::DW_AT_const_value).ok()?.is_some() {
            continue;
        }
        let expression = match entry.attr_value(gimli::DW_AT_location).ok()? {
            Some(AttributeValue::Exprloc(e)) => e,
            Some(AttributeValue::LocationListsRef(list)) => {
                let mut ranges = dwarf.locations(unit, list).ok()?;
                let mut at_entry = None;
                while let Some(range) = ranges.next().ok()? {
                    if range.range.begin == low {
                        at_entry = Some(range.data);
                        break;
                    }
                }
                match at_entry {
                    Some(e) => e,
                    // Not live at the entry: not passed.
                    None => continue,
                }
            }
            // No location: optimized out, not passed.
            None => continue,
            Some(_) => return None,
        };
        let mut ops = expression.operations(unit.encoding());
        match ops.next().ok()? {
            Some(Operation::Register { register }) => kept.push((name, register.0)),
            Some(Operation::ParameterRef { .. }) => {}
            _ => return None,
        }
    }
    kept.sort_by_key(|(_, register)| *register);
    Some(kept)
}
