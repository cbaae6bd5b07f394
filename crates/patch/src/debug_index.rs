//! The top-level subprograms and variables of an object's DWARF by name,
//! found by one raw pass per object: the signature check and the layout
//! pre-flight each look at a few changed functions of a unit that
//! describes thousands, and used to walk (and parse) all of them each.
//!
//! The pass reads only the four attributes it needs of each top-level
//! entry (the others are skipped by their forms), steps over its children
//! with `DW_AT_sibling` when the compiler gave one (GCC and clang do for
//! entries with children), and keeps a hash of each name, not the name:
//! [`DebugIndex::get`] gives candidates that the caller checks by name
//! ([`crate::signature::entries_named`]).
//!
//! C++ names its functions by their symbols: a subprogram or variable
//! with a `DW_AT_linkage_name` (at any depth: in namespaces and classes)
//! is also indexed by it, and a top-level definition of a member function
//! (`DW_AT_specification` pointing at its declaration in the class) by
//! its declaration's, so `_ZNK6Square4areaEv` finds the definition of
//! `Square::area`. The pass descends into namespaces and classes for
//! that; function bodies are still stepped over.

use std::hash::BuildHasher;

use gimli::{AttributeValue, DebugInfoOffset, Reader as _, UnitOffset};

use crate::signature::Reader;

/// One top-level entry of a compile unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopEntry {
    /// Its unit's header, in `.debug_info`.
    pub unit: DebugInfoOffset,
    /// The entry within the unit.
    pub offset: UnitOffset,
    /// `DW_TAG_subprogram` or `DW_TAG_variable`.
    pub tag: gimli::DwTag,
    /// `DW_AT_external`.
    pub external: bool,
    /// `DW_AT_declaration`: declared here, defined elsewhere.
    pub declaration: bool,
}

/// Top-level subprograms and variables by the hash of their `DW_AT_name`,
/// and C++ ones by their linkage name, each name's in the order the file
/// has them.
#[derive(Debug, Clone, Default)]
pub struct DebugIndex {
    /// Sorted by hash, then place (file order within one hash).
    by_hash: Vec<(u64, TopEntry)>,
    /// Top-level subprograms with a body of entries, by the place in
    /// `.debug_info` of their first byte and of their next sibling: which
    /// function a nested entry (a static's `DW_TAG_variable`) is in.
    functions: Vec<(u64, u64, TopEntry)>,
    /// Top-level enumerations and typedefs (which may name an anonymous
    /// enumeration), in file order: a file's enumerations are compared
    /// whoever uses them (see [`crate::type_layout`]).
    types: Vec<TopEntry>,
}

fn hash(name: &[u8]) -> u64 {
    foldhash::fast::FixedState::with_seed(0).hash_one(name)
}

impl DebugIndex {
    /// The entries whose name hashes like `name`: those named `name`, and
    /// rarely another (the caller compares the names).
    pub fn get(&self, name: &str) -> impl Iterator<Item = &TopEntry> {
        let key = hash(name.as_bytes());
        let start = self.by_hash.partition_point(|(h, _)| *h < key);
        self.by_hash[start..]
            .iter()
            .take_while(move |(h, _)| *h == key)
            .map(|(_, e)| e)
    }

    /// The top-level enumerations and typedefs.
    pub(crate) fn enumerations_and_typedefs(&self) -> &[TopEntry] {
        &self.types
    }

    /// The top-level variables declared (`extern`), not defined, here.
    pub(crate) fn declared_variables(&self) -> impl Iterator<Item = &TopEntry> {
        let mut seen = foldhash::HashSet::default();
        self.by_hash
            .iter()
            .map(|(_, e)| e)
            .filter(move |e| e.tag == gimli::DW_TAG_variable && e.declaration && seen.insert((e.unit, e.offset)))
    }

    /// The top-level subprograms with a body of entries.
    pub(crate) fn functions(&self) -> impl Iterator<Item = &TopEntry> {
        self.functions.iter().map(|(_, _, e)| e)
    }

    /// The top-level subprogram whose entries span the place `at` of
    /// `.debug_info`.
    pub fn function_around(&self, at: u64) -> Option<&TopEntry> {
        let k = self.functions.partition_point(|&(start, _, _)| start <= at);
        let (_, end, entry) = self.functions.get(k.checked_sub(1)?)?;
        (at < *end).then_some(entry)
    }

    /// Reads the index of `dwarf`.
    pub(crate) fn build(dwarf: &gimli::Dwarf<Reader>) -> Result<DebugIndex, gimli::Error> {
        DebugIndex::build_units(dwarf, |_| true)
    }

    /// Reads the index of the compile units of `dwarf` that `keep` takes
    /// (a linked program's DWARF describes every unit; a question about
    /// one source file needs only its own).
    pub(crate) fn build_units(
        dwarf: &gimli::Dwarf<Reader>,
        keep: impl Fn(&gimli::Unit<Reader>) -> bool,
    ) -> Result<DebugIndex, gimli::Error> {
        let mut by_hash = Vec::new();
        let mut functions = Vec::new();
        let mut types = Vec::new();
        let mut units = dwarf.units();
        while let Some(header) = units.next()? {
            let Some(unit_offset) = header.offset().as_debug_info_offset() else {
                continue;
            };
            let unit_end = unit_offset.0 as u64 + header.length_including_self() as u64;
            let unit = dwarf.unit(header)?;
            if !keep(&unit) {
                continue;
            }
            // Linkage names of declarations (in classes), and definitions
            // that point at a declaration, matched once the unit is read.
            // Each declaration with a linkage name: that name's hash, and
            // whether the declaration is `external`.
            let mut linkage_of: foldhash::HashMap<UnitOffset, (u64, bool)> = foldhash::HashMap::default();
            let mut specifying: Vec<(UnitOffset, TopEntry)> = Vec::new();
            let mut raw = unit.entries_raw(None)?;
            // Depth of the cursor's first entry in the unit: 1 once it was
            // restarted at a sibling.
            let mut shift = 0isize;
            // The tag of the entry at each depth on the way to the current
            // one: a declaration's parent tells a namespace's function
            // (indexed) from a class's member (its definition is).
            let mut tags_at: Vec<gimli::DwTag> = Vec::new();
            while !raw.is_empty() {
                let depth = raw.next_depth() + shift;
                let offset = raw.next_offset();
                let Some(abbrev) = raw.read_abbreviation()? else {
                    continue;
                };
                let tag = abbrev.tag();
                let at_depth = usize::try_from(depth).unwrap_or(0);
                tags_at.truncate(at_depth);
                let in_namespace = at_depth >= 2 && tags_at.get(at_depth - 1) == Some(&gimli::DW_TAG_namespace);
                tags_at.resize(at_depth, gimli::DW_TAG_null);
                tags_at.push(tag);
                let wanted = tag == gimli::DW_TAG_subprogram || tag == gimli::DW_TAG_variable;
                // Entries nested in something other than a namespace or
                // class (a function's locals) are of no interest.
                if depth != 1 && !wanted {
                    raw.skip_attributes(abbrev.attributes())?;
                    continue;
                }
                let container = matches!(
                    tag,
                    gimli::DW_TAG_namespace
                        | gimli::DW_TAG_structure_type
                        | gimli::DW_TAG_class_type
                        | gimli::DW_TAG_union_type
                );
                let (mut external, mut declaration, mut name, mut sibling) = (false, false, None, None);
                let (mut linkage, mut specification) = (None, None);
                let specs = abbrev.attributes();
                let needed = |spec: &gimli::AttributeSpecification| {
                    matches!(
                        spec.name(),
                        gimli::DW_AT_external
                            | gimli::DW_AT_declaration
                            | gimli::DW_AT_name
                            | gimli::DW_AT_sibling
                            | gimli::DW_AT_linkage_name
                            | gimli::DW_AT_MIPS_linkage_name
                            | gimli::DW_AT_specification
                    )
                };
                let mut at = 0;
                while at < specs.len() {
                    // The run of attributes not needed, skipped at once
                    // (fixed-size forms add up to one step).
                    let run = specs[at..].iter().take_while(|spec| !needed(spec)).count();
                    if run > 0 {
                        raw.skip_attributes(&specs[at..at + run])?;
                        at += run;
                        continue;
                    }
                    let spec = specs[at];
                    at += 1;
                    let attr = raw.read_attribute(spec)?;
                    match attr.name() {
                        gimli::DW_AT_external => external = matches!(attr.value(), AttributeValue::Flag(true)),
                        gimli::DW_AT_declaration => declaration = true,
                        gimli::DW_AT_name if wanted => name = Some(attr.value()),
                        gimli::DW_AT_linkage_name | gimli::DW_AT_MIPS_linkage_name if wanted => {
                            linkage = Some(attr.value())
                        }
                        gimli::DW_AT_specification if wanted => {
                            if let AttributeValue::UnitRef(to) = attr.value() {
                                specification = Some(to);
                            }
                        }
                        gimli::DW_AT_sibling => {
                            if let AttributeValue::UnitRef(to) = attr.value() {
                                sibling = Some(to);
                            }
                        }
                        _ => {}
                    }
                }
                let entry = TopEntry {
                    unit: unit_offset,
                    offset,
                    tag,
                    external,
                    declaration,
                };
                if depth == 1 && matches!(tag, gimli::DW_TAG_enumeration_type | gimli::DW_TAG_typedef) {
                    types.push(entry);
                }
                if let Some(name) = name.filter(|_| depth == 1) {
                    let name = dwarf.attr_string(&unit, name)?;
                    by_hash.push((hash(&name.to_slice()?), entry));
                }
                let has_linkage = linkage.is_some();
                if let Some(linkage) = linkage {
                    let key = hash(&dwarf.attr_string(&unit, linkage)?.to_slice()?);
                    linkage_of.insert(offset, (key, external));
                    // A namespace's function declared (a caller's view of
                    // `ns::f`) too: its declaration was never found, and a
                    // caller's prototype never compared.
                    if depth == 1 || !declaration || in_namespace {
                        by_hash.push((key, entry));
                    }
                }
                if let Some(spec) = specification.filter(|_| !has_linkage) {
                    specifying.push((spec, entry));
                }
                // A function's span: to its next sibling, or for the
                // unit's last entry (GCC gives that one no sibling) to the
                // unit's end.
                if depth == 1 && tag == gimli::DW_TAG_subprogram && abbrev.has_children() {
                    let base = unit_offset.0 as u64;
                    let end = sibling
                        .filter(|to| to.0 > offset.0)
                        .map_or(unit_end, |to| base + to.0 as u64);
                    functions.push((base + offset.0 as u64, end, entry));
                }
                // Over the children (a function's body), to the next
                // entry at this depth (only forwards: a hostile file must
                // not loop); into those of a namespace or class.
                if let Some(to) = sibling.filter(|to| to.0 > offset.0 && abbrev.has_children() && !container) {
                    raw = unit.entries_raw(Some(to))?;
                    shift = depth;
                }
            }
            // A member function's definition (or a namespace's function's),
            // by its declaration's linkage name, and `external` as its
            // declaration is: GCC puts `DW_AT_external` there only, and a
            // global C++ function defined so was never taken for one (its
            // signature never compared: a LevelDB trial's return type
            // changed unseen).
            by_hash.extend(specifying.into_iter().filter_map(|(spec, entry)| {
                let &(key, external) = linkage_of.get(&spec)?;
                Some((
                    key,
                    TopEntry {
                        external: entry.external || external,
                        ..entry
                    },
                ))
            }));
        }
        by_hash.sort_unstable_by_key(|&(h, e)| (h, e.unit.0, e.offset.0));
        functions.sort_unstable_by_key(|&(start, _, _)| start);
        Ok(DebugIndex {
            by_hash,
            functions,
            types,
        })
    }
}
