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
    let dwarf = gimli::Dwarf::load(|id: SectionId| -> Result<Reader, gimli::Error> {
        let (bytes, fixups) = obj.debug_section(id.name());
        Ok(gimli::RelocateReader::new(
            EndianSlice::new(bytes, LittleEndian),
            fixups,
        ))
    })
    .ok()?;
    let instances = obj
        .concrete_instances_cache()
        .get_or_init(|| concrete_instances(obj, &dwarf).unwrap_or_default());
    let first = instances.partition_point(|i| i.low < sym.offset);
    let mut units = foldhash::HashMap::default();
    for instance in instances[first..].iter().take_while(|i| i.low == sym.offset) {
        if instance.size != sym.size {
            continue;
        }
        crate::signature::unit_at(&dwarf, &mut units, instance.unit).ok()?;
        let unit = &units[&instance.unit];
        if name_of(&dwarf, unit, instance.origin).as_deref() != Some(function.as_str()) {
            continue;
        }
        return parameters(&dwarf, unit, instance.offset, instance.low);
    }
    None
}

/// A top-level subprogram entry that is a concrete instance of another
/// (`DW_AT_abstract_origin`: how GCC describes a clone), with its code's
/// place.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Instance {
    low: u64,
    size: u64,
    unit: gimli::DebugInfoOffset,
    offset: UnitOffset,
    origin: UnitOffset,
}

/// Every concrete instance among the top-level subprograms of `obj`'s
/// DWARF, by where its code starts: read once per object, since a patch
/// asks for each clone it looks at (reading them again for each was a
/// fifth of a SQLite patch).
fn concrete_instances(obj: &ObjectFile, dwarf: &gimli::Dwarf<Reader>) -> Option<Vec<Instance>> {
    let index = crate::signature::index(obj);
    let mut units = foldhash::HashMap::default();
    let mut out = Vec::new();
    for top in index.functions() {
        crate::signature::unit_at(dwarf, &mut units, top.unit).ok()?;
        let unit = &units[&top.unit];
        let entry = unit.entry(top.offset).ok()?;
        let (mut low, mut high, mut origin) = (None, None, None);
        let mut attrs = entry.attrs();
        while let Some(attr) = attrs.next().ok()? {
            match (attr.name(), attr.value()) {
                (gimli::DW_AT_low_pc, AttributeValue::Addr(a)) => low = Some(a),
                (gimli::DW_AT_high_pc, AttributeValue::Udata(len)) => high = Some(Err(len)),
                (gimli::DW_AT_high_pc, AttributeValue::Addr(end)) => high = Some(Ok(end)),
                (gimli::DW_AT_abstract_origin, AttributeValue::UnitRef(o)) => origin = Some(o),
                _ => {}
            }
        }
        let (Some(low), Some(high), Some(origin)) = (low, high, origin) else {
            continue;
        };
        let size = match high {
            Err(len) => len,
            Ok(end) => end.wrapping_sub(low),
        };
        out.push(Instance {
            low,
            size,
            unit: top.unit,
            offset: top.offset,
            origin,
        });
    }
    out.sort_by_key(|i| i.low);
    Some(out)
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
