//! Layout pre-flight: the structs, unions and classes a changed function
//! uses, compared between the running build's object and the new one.
//!
//! Why: a program's live data (on its heap, in its globals, on its stacks)
//! was laid out by the old definitions. New code that reads a `struct
//! node` whose field moved reads the wrong bytes of every node that
//! already exists, the top cause of crashes after a live patch. Globals
//! whose size changed are refused by the diff; this also catches a type
//! reached through a pointer (`struct node *`), which a diff of the code
//! alone cannot see.

use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};

use gimli::{AttributeValue, Reader as _, UnitOffset};

use crate::debug_index::DebugIndex;
use crate::objfile::{Kind, ObjectFile};
use crate::signature::with_dwarf;

use crate::signature::Reader;

/// How deep a chain of types is followed (pointers to structs holding
/// pointers to structs...): far enough for real data structures, bounded
/// for hostile input.
const MAX_DEPTH: u32 = 24;

/// The types whose layout differs between `old` and `new` among those the
/// functions `names` of `new` use, each as "struct node: field next moved
/// from offset 8 to 16". Empty without debug information.
pub fn changed(old: &ObjectFile, new: &ObjectFile, names: &[&str]) -> Vec<String> {
    let Some(((used, used_clashes), only_file_wide)) = used_by(new, names) else {
        return Vec::new();
    };
    let variables = variables_in(&used);
    let functions = base_names(names);
    let (before, clashes) = match only_file_wide {
        true => {
            let index = crate::signature::index(old);
            with_dwarf(old, |dwarf| file_wide_layouts(dwarf, index))
        }
        false => with_dwarf(old, |dwarf| all_layouts(dwarf, &|_| true, &variables, &functions)),
    }
    .unwrap_or_default();
    differences(&used, &used_clashes, &before, &clashes)
}

/// The variables among `used` (their pseudo-layouts' names): the only ones
/// the other side's walk needs to spell out (a unit has thousands).
fn variables_in(used: &HashMap<String, Layout>) -> HashSet<String> {
    used.keys()
        .filter_map(|k| k.strip_prefix(VARIABLE))
        .map(str::to_string)
        .collect()
}

/// [`changed`] against the program as it was built: the layouts of the
/// compile unit named `source_name` (its file name) in the DWARF of a
/// module's image `data`. Two compiles both made after a header changed
/// agree with each other and not with the program's data (an LMDB
/// trial's `MDB_stat`, grown before relive started, or while another
/// function of the file was patched): the build's DWARF is what the
/// program's data was laid out by. `None` when the image has no DWARF
/// for that unit.
pub fn changed_since_build(data: &[u8], source_name: &str, new: &ObjectFile, names: &[&str]) -> Option<Vec<String>> {
    let named = |unit: &gimli::Unit<Reader>| crate::signature::unit_named(unit, source_name);
    let found = std::cell::Cell::new(false);
    let wanted = |unit: &gimli::Unit<Reader>| {
        let is = named(unit);
        found.set(found.get() || is);
        is
    };
    let used = used_by(new, names).map(|(layouts, _)| layouts);
    let variables = used.as_ref().map(|(used, _)| variables_in(used)).unwrap_or_default();
    let functions = base_names(names);
    let (before, clashes) =
        crate::signature::with_image_dwarf(data, |dwarf| all_layouts(dwarf, &wanted, &variables, &functions))?;
    if !found.get() {
        return None;
    }
    let Some((used, used_clashes)) = used else {
        return Some(Vec::new());
    };
    Some(differences(&used, &used_clashes, &before, &clashes))
}

/// The source names of the functions `names` (symbols): GCC's clones
/// (`f.isra.0`) are described under `f`.
fn base_names(names: &[&str]) -> HashSet<String> {
    names.iter().map(|n| crate::names::parse(n).base).collect()
}

/// Whether the layouts used are only the file's enumerations and declared
/// variables: the other side's can then be read through its index rather
/// than by walking every type of its units (half a millisecond for an
/// object of a thousand functions, for every patch: `<stdio.h>` declares
/// `stdout`).
type OnlyFileWide = bool;

/// The layouts the functions `names` of `new` use (see [`changed`]), and
/// the names of two layouts; `None` when there are none.
fn used_by(new: &ObjectFile, names: &[&str]) -> Option<(Layouts, OnlyFileWide)> {
    if names.is_empty() {
        return None;
    }
    let wanted: HashSet<&str> = names.iter().copied().collect();
    // The variables they refer to by name (globals and statics, whose
    // types their own debug entries do not mention).
    let mut variables: HashSet<String> = HashSet::new();
    for f in new
        .symbols
        .iter()
        .filter(|s| s.kind == Kind::Function && wanted.contains(s.name.as_str()))
    {
        for r in &f.relocs {
            match (&r.target, new.referenced_symbol(r)) {
                (_, Some(i)) if new.symbols[i].kind == Kind::Object => {
                    variables.insert(crate::names::parse(&new.symbols[i].name).base);
                }
                (crate::objfile::Target::Undefined(name), _) => {
                    variables.insert(name.clone());
                }
                _ => {}
            }
        }
    }
    // GCC's clones (`f.constprop.0`, `f.isra.0`) are described under the
    // source function's name: a file whose `f` exists only as a clone
    // had no function of its own to start from, and a struct it reads
    // through a pointer was never compared (a PCRE2 trial: a field added
    // to `match_block`, used by `match.constprop.0`, went in).
    let bases = base_names(names);
    let mut functions = wanted.clone();
    functions.extend(bases.iter().map(String::as_str));
    let roots = Roots {
        functions: &functions,
        variables: &variables,
    };
    let index = crate::signature::index(new);
    // With the file's enumerations and declared variables, whoever uses
    // them (see below), read from the same load of its DWARF.
    let ((mut used, mut used_clashes), unfound, (file_wide, file_wide_clashes)) = with_dwarf(new, |dwarf| {
        let (layouts, unfound) = used_layouts(dwarf, index, &roots)?;
        Ok((layouts, unfound, file_wide_layouts(dwarf, index)?))
    })
    .unwrap_or_default();
    // A changed function or a variable it uses that its debug information
    // does not name as the symbol does (a C++ member of a class in an
    // anonymous namespace has no linkage name, a file's static variable is
    // `_ZL1g` for `g`): every type of the object counts as used, so a layout
    // change is never missed for want of a name (a LevelDB trial: a field
    // added to an anonymous-namespace class was patched, and the object
    // made at start-up was then read with the new layout).
    if unfound {
        let (all, clashes) =
            with_dwarf(new, |dwarf| all_layouts(dwarf, &|_| true, &HashSet::new(), &bases)).unwrap_or_default();
        for (name, layout) in all {
            used.entry(name).or_insert(layout);
        }
        used_clashes.extend(clashes);
    }
    // The file's enumerations and the variables it declares, whoever uses
    // them: a constant compared as an `int` (`c == GREEN`) or a `sizeof
    // buf` leaves no trace of the type in a function's debug entries or
    // relocations (a re-check: both went in, held at first, then saved
    // alone, and one crashed the program).
    let only_file_wide = used.is_empty();
    for (name, layout) in file_wide {
        used.entry(name).or_insert(layout);
    }
    used_clashes.extend(file_wide_clashes);
    (!used.is_empty()).then_some(((used, used_clashes), only_file_wide))
}

/// The enumerations and the declared variables (`extern`) at the top level
/// of each unit of `dwarf`, found through its `index` (walking the units'
/// top levels cost half a millisecond an object of a thousand functions).
fn file_wide_layouts(dwarf: &gimli::Dwarf<Reader>, index: &DebugIndex) -> Result<Layouts, gimli::Error> {
    let mut out = HashMap::new();
    let mut clashes = HashSet::new();
    let mut units = HashMap::new();
    let entries = index
        .enumerations_and_typedefs()
        .iter()
        .chain(index.declared_variables());
    for e in entries {
        crate::signature::unit_at(dwarf, &mut units, e.unit)?;
        let unit = &units[&e.unit];
        let mut walker = Walker::new(dwarf, unit, &mut out, &mut clashes);
        let Ok(entry) = unit.entry(e.offset) else { continue };
        match entry.tag() {
            gimli::DW_TAG_enumeration_type => walker.visit_type(e.offset, 0, None),
            // `typedef enum { ... } mode;`: known by the typedef's name.
            gimli::DW_TAG_typedef => {
                let target = match entry.attr_value(gimli::DW_AT_type) {
                    Ok(Some(AttributeValue::UnitRef(t))) => Some(t),
                    _ => None,
                };
                if target.is_some_and(|t| unit.entry(t).is_ok_and(|t| t.tag() == gimli::DW_TAG_enumeration_type)) {
                    walker.visit_type(e.offset, 0, None);
                }
            }
            _ => walker.visit_variable(&entry),
        }
    }
    Ok((out, clashes))
}

/// Each type of `used` whose layout differs from `before`'s, in words.
fn differences(
    used: &HashMap<String, Layout>,
    used_clashes: &HashSet<String>,
    before: &HashMap<String, Layout>,
    clashes: &HashSet<String>,
) -> Vec<String> {
    let mut out: Vec<String> = used
        .iter()
        // Types of one name in two namespaces cannot be told apart here:
        // not compared rather than compared with the wrong one.
        .filter(|(name, _)| !clashes.contains(*name) && !used_clashes.contains(*name))
        .filter_map(|(name, now)| {
            let was = before.get(name)?;
            if !differs(was, now) {
                return None;
            }
            if was.dynamic_declaration || now.dynamic_declaration {
                return virtual_functions_difference(name, was, now);
            }
            Some(
                match (name.strip_prefix(VARIABLE), &was.members[..], &now.members[..]) {
                    (Some(variable), [was], [now]) => format!(
                        "variable {variable}: its type is {} here and {} in the program",
                        now.type_name, was.type_name
                    ),
                    _ => format!("{name}: {}", difference(was, now)),
                },
            )
        })
        .collect();
    // An anonymous enumeration's enumerators are compared one by one
    // (`enumerator X`) and, through a typedef, as its type too: each
    // change said once, with the type (a zstd trial said every one twice),
    // also one the type's words leave out ("and 1 more", then that one on
    // its own: a tree-sitter trial).
    let renumbered_in_types: HashSet<&str> = used
        .iter()
        .filter(|(name, now)| now.enumeration && !name.starts_with("enumerator "))
        .filter(|(name, _)| !clashes.contains(*name) && !used_clashes.contains(*name))
        .filter_map(|(name, now)| Some((before.get(name)?, now)))
        .flat_map(|(was, now)| {
            now.members
                .iter()
                .filter(|m| {
                    was.members
                        .iter()
                        .any(|o| o.name == m.name && o.type_name != m.type_name)
                })
                .map(|m| m.name.as_str())
        })
        .collect();
    out.retain(
        |e| match e.strip_prefix("enumerator ").and_then(|e| e.split_once(": ")) {
            Some((name, _)) => !renumbered_in_types.contains(name),
            None => true,
        },
    );
    out.sort();
    out
}

/// Whether every one of `types` (as [`changed`] words them) is a change
/// of an enumeration's values, not of a type's layout.
pub fn only_values(types: &[String]) -> bool {
    !types.is_empty() && types.iter().all(|t| t.contains(" changed value from "))
}

/// The key of a variable's type among the layouts (`variable buf`): no
/// type's name starts so (theirs start `struct `, `union `, `class ` or
/// are a typedef's, which has no space).
const VARIABLE: &str = "variable ";

/// One type's layout: its size and each member's name, place and type.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Layout {
    size: Option<u64>,
    members: Vec<Member>,
    /// An enumeration: its members are its enumerators, each with its
    /// value as its type.
    enumeration: bool,
    /// A class with virtual functions this compile only declares (no
    /// fields, no size): GCC defines such a class only where it emits its
    /// vtable, and a file that does not is compared by this alone (see
    /// `differences`).
    dynamic_declaration: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Member {
    name: String,
    offset: Option<u64>,
    bits: Option<(u64, u64)>,
    type_name: String,
}

/// The differences between two layouts of one type, in words.
/// Where member `m` is, in words: its byte offset, or for a bit-field
/// (which has no byte offset: it printed "moved from offset ? to ?", a
/// HarfBuzz trial) its bits.
fn place(m: &Member) -> String {
    match (m.offset, m.bits) {
        (Some(offset), None) => format!("offset {offset}"),
        (Some(offset), Some((bit, size))) => format!("offset {offset}, bits {bit}..{}", bit + size),
        (None, Some((bit, size))) => format!("bits {bit}..{}", bit + size),
        (None, None) => "an unknown place".to_string(),
    }
}

fn difference(was: &Layout, now: &Layout) -> String {
    if now.enumeration && was.enumeration {
        return enumeration_difference(was, now);
    }
    let mut changes = Vec::new();
    for m in &now.members {
        match was.members.iter().find(|o| o.name == m.name) {
            None => changes.push(format!("field {} was added", m.name)),
            Some(o) if o.offset != m.offset || o.bits != m.bits => {
                let retyped = match !same_type_name(&o.type_name, &m.type_name) {
                    true => format!(" and changed type from {} to {}", o.type_name, m.type_name),
                    false => String::new(),
                };
                changes.push(format!(
                    "field {} moved from {} to {}{retyped}",
                    m.name,
                    place(o),
                    match (o.bits, m.bits) {
                        // "offset 4 to 8"
                        (None, None) => m.offset.map_or("?".into(), |v| v.to_string()),
                        _ => place(m),
                    }
                ));
            }
            Some(o) if !same_type_name(&o.type_name, &m.type_name) => changes.push(format!(
                "field {} changed type from {} to {}",
                m.name, o.type_name, m.type_name
            )),
            Some(_) => {}
        }
    }
    changes.extend(
        was.members
            .iter()
            .filter(|o| !now.members.iter().any(|m| m.name == o.name))
            .map(|o| format!("field {} was removed", o.name)),
    );
    // Fields added where the old layout had padding move nothing, but the
    // program's data holds no value for them: said, as it looked like a
    // refusal with no reason (a PCRE2 trial, told elsewhere that such a
    // field is no change).
    let added = now
        .members
        .iter()
        .filter(|m| !was.members.iter().any(|o| o.name == m.name))
        .count();
    if added > 0 && added == changes.len() && was.size == now.size {
        let (one, it) = match added {
            1 => ("it fills", "it"),
            _ => ("they fill", "them"),
        };
        return format!(
            "{} ({one} padding: no field moved, but the data the program already has holds no value for {it} there)",
            changes.join(", ")
        );
    }
    // Every change, up to a few: a renamed field is one added and one
    // removed, and naming only the first hid the other.
    const SHOWN: usize = 4;
    match changes.len() {
        0 => format!(
            "its size changed from {} to {} bytes",
            was.size.map_or("?".into(), |v| v.to_string()),
            now.size.map_or("?".into(), |v| v.to_string())
        ),
        n if n <= SHOWN => changes.join(", "),
        n => format!("{}, and {} more", changes[..SHOWN].join(", "), n - SHOWN),
    }
}

/// A class declared with virtual functions by one compile (see
/// [`Layout::dynamic_declaration`]) and defined by the other: where the
/// definition has no vtable pointer, virtual functions were added or
/// removed, and every field of its objects moved by a pointer (a HarfBuzz
/// trial: a virtual function added to `arabic_shape_plan_t` went in, and
/// the new code read the program's plans 8 bytes off); otherwise both
/// have one and their fields cannot be compared here.
fn virtual_functions_difference(name: &str, was: &Layout, now: &Layout) -> Option<String> {
    let has_vptr = |l: &Layout| l.members.iter().any(|m| m.name.starts_with("_vptr"));
    match (was.dynamic_declaration, now.dynamic_declaration) {
        (false, true) if !has_vptr(was) => Some(format!(
            "{name}: virtual functions were added (its objects gain a vtable pointer before their fields, so every field moves)"
        )),
        (true, false) if !has_vptr(now) => Some(format!(
            "{name}: its virtual functions were removed (its objects lose their vtable pointer, so every field moves)"
        )),
        _ => None,
    }
}

/// How a member's type declared but not defined in its compile is
/// named: its size is not known there.
const DECLARED_ONLY: &str = " (declared only)";

/// Whether the member type names `a` and `b` name one type: the same
/// words, or one of them declared only and the other of the same name
/// (with its size).
fn same_type_name(a: &str, b: &str) -> bool {
    let named = |t: &str| t.rsplit_once(" (").map_or(t.to_string(), |(name, _)| name.to_string());
    a == b
        || match (a.strip_suffix(DECLARED_ONLY), b.strip_suffix(DECLARED_ONLY)) {
            (Some(name), _) => name == named(b),
            (_, Some(name)) => name == named(a),
            _ => false,
        }
}

/// Whether data laid out by `was` is misread by code compiled with
/// `now`: for an enumeration, only an enumerator whose value changed (or
/// its size) counts; a new one is a value no data holds yet. A member's
/// type declared only on one side is its type on the other (the places
/// and the size tell whether it grew).
fn differs(was: &Layout, now: &Layout) -> bool {
    if !(was.enumeration && now.enumeration) {
        return was.size != now.size
            || was.enumeration != now.enumeration
            || was.dynamic_declaration != now.dynamic_declaration
            || was.members.len() != now.members.len()
            || was.members.iter().zip(&now.members).any(|(o, m)| {
                o.name != m.name
                    || o.offset != m.offset
                    || o.bits != m.bits
                    || !same_type_name(&o.type_name, &m.type_name)
            });
    }
    was.size != now.size
        || now.members.iter().any(|m| {
            was.members
                .iter()
                .any(|o| o.name == m.name && o.type_name != m.type_name)
        })
}

/// The enumerators whose value changed, in words (one added or removed
/// changes no value data holds: it counts where it renumbers the others).
fn enumeration_difference(was: &Layout, now: &Layout) -> String {
    let renumbered: Vec<String> = now
        .members
        .iter()
        .filter_map(|m| {
            let o = was.members.iter().find(|o| o.name == m.name)?;
            (o.type_name != m.type_name)
                .then(|| format!("{} changed value from {} to {}", m.name, o.type_name, m.type_name))
        })
        .collect();
    const SHOWN: usize = 4;
    match renumbered.len() {
        0 => format!(
            "its size changed from {} to {} bytes",
            was.size.map_or("?".into(), |v| v.to_string()),
            now.size.map_or("?".into(), |v| v.to_string())
        ),
        n if n <= SHOWN => renumbered.join(", "),
        n => format!("{}, and {} more", renumbered[..SHOWN].join(", "), n - SHOWN),
    }
}

/// Where [`used_layouts`] starts: definitions of these functions, and unit
/// level variables of these names.
struct Roots<'a, 'n> {
    functions: &'a HashSet<&'n str>,
    variables: &'a HashSet<String>,
}

/// The layouts reachable from `roots`: the definitions of those
/// functions and the unit-level variables of those names (their return,
/// parameter and variable types, through pointers, typedefs, arrays and
/// members), found through `index`; and whether a function's definition
/// or a C++ variable was not found by its name.
fn used_layouts(
    dwarf: &gimli::Dwarf<Reader>,
    index: &DebugIndex,
    roots: &Roots,
) -> Result<(Layouts, Unfound), gimli::Error> {
    let mut units = HashMap::new();
    let mut starts = Vec::new();
    let mut unfound = false;
    for name in roots.functions.iter().copied() {
        let found = crate::signature::entries_named(dwarf, &mut units, index, name)?;
        let before = starts.len();
        starts.extend(
            found
                .iter()
                .filter(|e| e.tag == gimli::DW_TAG_subprogram && !e.declaration)
                .map(|e| (e.unit, e.offset)),
        );
        // GCC's clones (`f.isra.0`, `f.cold`) are described under the
        // source function's name, which the roots have too.
        unfound |= starts.len() == before && !name.contains('.');
    }
    for name in roots.variables {
        let found = crate::signature::entries_named(dwarf, &mut units, index, name)?;
        let before = starts.len();
        starts.extend(
            found
                .iter()
                .filter(|e| e.tag == gimli::DW_TAG_variable)
                .map(|e| (e.unit, e.offset)),
        );
        // C++ names a file's `static Impl *g` `_ZL1g`, its debug entry
        // `g` (a trial: the struct a free function reads through it was
        // never compared).
        unfound |= starts.len() == before && name.starts_with("_Z");
    }
    // In file order, as a walk of the unit meets them.
    starts.sort_unstable_by_key(|&(unit, offset)| (unit.0, offset.0));
    starts.dedup();
    let mut out = HashMap::new();
    let mut clashes = HashSet::new();
    let mut at = 0;
    while let Some(&(unit_offset, _)) = starts.get(at) {
        crate::signature::unit_at(dwarf, &mut units, unit_offset)?;
        let unit = &units[&unit_offset];
        let mut walker = Walker::new(dwarf, unit, &mut out, &mut clashes);
        while let Some(&(_, offset)) = starts.get(at).filter(|(u, _)| *u == unit_offset) {
            // A function's own types first, known by its name: a type
            // its entries refer to is not walked twice.
            let entry = unit.entry(offset)?;
            if let (gimli::DW_TAG_subprogram, Some(function)) = (entry.tag(), walker.name(&entry)) {
                let mut tree = unit.entries_tree(Some(offset))?;
                walker.visit_local_types(tree.root()?, &function, 0)?;
            }
            let mut tree = unit.entries_tree(Some(offset))?;
            walker.visit_subtree(tree.root()?, 0)?;
            at += 1;
        }
    }
    Ok(((out, clashes), unfound))
}

/// Whether a function's definition or a C++ variable was not found by
/// its name.
type Unfound = bool;

/// Layouts by type name, and the names given to two different layouts
/// (same-named types of different namespaces).
type Layouts = (HashMap<String, Layout>, HashSet<String>);

/// Every struct, union, class, enumeration and typedef defined at a
/// unit's top level or in its namespaces (C++), those defined in the
/// functions named in `functions`, and the variables there named in
/// `variables`.
fn all_layouts(
    dwarf: &gimli::Dwarf<Reader>,
    wanted: &dyn Fn(&gimli::Unit<Reader>) -> bool,
    variables: &HashSet<String>,
    functions: &HashSet<String>,
) -> Result<Layouts, gimli::Error> {
    let mut out = HashMap::new();
    let mut clashes = HashSet::new();
    let mut units = dwarf.units();
    while let Some(header) = units.next()? {
        let unit = dwarf.unit(header)?;
        if !wanted(&unit) {
            continue;
        }
        let mut walker = Walker::new(dwarf, &unit, &mut out, &mut clashes);
        let mut tree = unit.entries_tree(None)?;
        walker.visit_scope(tree.root()?, 0, &Scope { variables, functions })?;
    }
    Ok((out, clashes))
}

/// A tag whose entry defines a type a layout is kept of.
fn is_type_definition(tag: gimli::DwTag) -> bool {
    is_aggregate(tag) || tag == gimli::DW_TAG_typedef || tag == gimli::DW_TAG_enumeration_type
}

fn is_aggregate(tag: gimli::DwTag) -> bool {
    matches!(
        tag,
        gimli::DW_TAG_structure_type | gimli::DW_TAG_union_type | gimli::DW_TAG_class_type
    )
}

/// What [`Walker::visit_scope`] spells out besides the types of a scope:
/// the variables of these names, and the types defined inside the
/// functions of these names.
struct Scope<'a> {
    variables: &'a HashSet<String>,
    functions: &'a HashSet<String>,
}

struct Walker<'a, 'd> {
    dwarf: &'a gimli::Dwarf<Reader<'d>>,
    unit: &'a gimli::Unit<Reader<'d>>,
    seen: HashSet<UnitOffset>,
    out: &'a mut HashMap<String, Layout>,
    clashes: &'a mut HashSet<String>,
    /// A type defined inside a function, being walked: its entry and the
    /// function's name, which its key carries (`enum state (in step)`):
    /// another function may define one of the same name.
    local: Option<(UnitOffset, String)>,
    /// [`Walker::member_type_name`]'s answers by type.
    member_type_names: std::cell::RefCell<HashMap<UnitOffset, String>>,
}

impl<'a, 'd> Walker<'a, 'd> {
    /// A walk of `unit` of `dwarf` that puts what it finds in `out`, and
    /// the names given to two layouts in `clashes`.
    fn new(
        dwarf: &'a gimli::Dwarf<Reader<'d>>,
        unit: &'a gimli::Unit<Reader<'d>>,
        out: &'a mut HashMap<String, Layout>,
        clashes: &'a mut HashSet<String>,
    ) -> Self {
        Walker {
            dwarf,
            unit,
            seen: HashSet::new(),
            out,
            clashes,
            local: None,
            member_type_names: std::cell::RefCell::new(HashMap::new()),
        }
    }
}

impl Walker<'_, '_> {
    /// The types defined in a unit or namespace `node`, and in its
    /// namespaces.
    fn visit_scope(
        &mut self,
        node: gimli::EntriesTreeNode<Reader>,
        depth: u32,
        scope: &Scope,
    ) -> Result<(), gimli::Error> {
        let mut children = node.children();
        while let Some(child) = children.next()? {
            let tag = child.entry().tag();
            if is_type_definition(tag) {
                self.visit_type(child.entry().offset(), 0, None);
            } else if tag == gimli::DW_TAG_variable {
                if !scope.variables.is_empty() && self.name(child.entry()).is_some_and(|n| scope.variables.contains(&n))
                {
                    self.visit_variable(child.entry());
                }
            } else if tag == gimli::DW_TAG_subprogram && !scope.functions.is_empty() {
                if let Some(name) = self.name(child.entry()).filter(|n| scope.functions.contains(n)) {
                    self.visit_local_types(child, &name, 0)?;
                }
            } else if tag == gimli::DW_TAG_namespace && depth < MAX_DEPTH {
                self.visit_scope(child, depth + 1, scope)?;
            }
        }
        Ok(())
    }

    /// The types defined inside function `function` (`node`: its entry,
    /// or a block of it), each known by its name and the function's. A
    /// function's own `enum { IDLE, RUN }` numbers what its statics hold
    /// as much as one at the top level does (a re-check: a value inserted
    /// first renumbered the state a running loop kept, and the patch went
    /// in unchecked).
    fn visit_local_types(
        &mut self,
        node: gimli::EntriesTreeNode<Reader>,
        function: &str,
        depth: u32,
    ) -> Result<(), gimli::Error> {
        if depth > MAX_DEPTH {
            return Ok(());
        }
        let mut children = node.children();
        while let Some(child) = children.next()? {
            let tag = child.entry().tag();
            if is_type_definition(tag) {
                let offset = child.entry().offset();
                self.local = Some((offset, function.to_string()));
                self.visit_type(offset, 0, None);
                self.local = None;
            } else if tag == gimli::DW_TAG_lexical_block {
                self.visit_local_types(child, function, depth + 1)?;
            }
        }
        Ok(())
    }

    /// `key`, the key of the type at `offset`, qualified by the function
    /// that defines it when it is the function-local type being walked.
    fn qualified(&self, offset: UnitOffset, key: String) -> String {
        match &self.local {
            Some((root, function)) if *root == offset => format!("{key} (in {function})"),
            _ => key,
        }
    }

    /// Every type a subprogram's entries refer to.
    fn visit_subtree(&mut self, node: gimli::EntriesTreeNode<Reader>, depth: u32) -> Result<(), gimli::Error> {
        if depth > MAX_DEPTH {
            return Ok(());
        }
        if let Some(AttributeValue::UnitRef(t)) = node.entry().attr_value(gimli::DW_AT_type)? {
            self.visit_type(t, 0, None);
        }
        let mut children = node.children();
        while let Some(child) = children.next()? {
            self.visit_subtree(child, depth + 1)?;
        }
        Ok(())
    }

    /// The type at `offset` and what it leads to; `alias` names an
    /// anonymous aggregate after the typedef it was reached through.
    fn visit_type(&mut self, offset: UnitOffset, depth: u32, alias: Option<String>) {
        if depth > MAX_DEPTH || !self.seen.insert(offset) {
            return;
        }
        let Ok(entry) = self.unit.entry(offset) else {
            return;
        };
        let tag = entry.tag();
        let next = |e: &gimli::DebuggingInformationEntry<Reader>| match e.attr_value(gimli::DW_AT_type) {
            Ok(Some(AttributeValue::UnitRef(t))) => Some(t),
            _ => None,
        };
        if tag == gimli::DW_TAG_typedef {
            if let Some(t) = next(&entry) {
                // A function's own typedef stands for the type it names.
                if let Some((root, _)) = self.local.as_mut().filter(|(root, _)| *root == offset) {
                    *root = t;
                }
                // An anonymous struct is known by its typedef's name; the
                // typedef is seen again for it.
                self.seen.remove(&t);
                self.visit_type(t, depth + 1, self.name(&entry));
            }
            return;
        }
        if tag == gimli::DW_TAG_enumeration_type {
            self.visit_enumeration(&entry, offset, alias);
            return;
        }
        if !is_aggregate(tag) {
            if let Some(t) = next(&entry) {
                self.visit_type(t, depth + 1, None);
            }
            return;
        }
        let declaration = entry.attr_value(gimli::DW_AT_declaration).ok().flatten().is_some();
        if declaration && !self.has_virtual_functions(offset) {
            return;
        }
        let kind = match tag {
            gimli::DW_TAG_union_type => "union",
            gimli::DW_TAG_class_type => "class",
            _ => "struct",
        };
        let key = match (self.name(&entry), alias) {
            (Some(name), _) => format!("{kind} {name}"),
            (None, Some(alias)) => alias,
            (None, None) => return,
        };
        let key = self.qualified(offset, key);
        if declaration {
            // Only where nothing of this unit defines it.
            self.out.entry(key).or_insert(Layout {
                size: None,
                members: Vec::new(),
                enumeration: false,
                dynamic_declaration: true,
            });
            return;
        }
        let mut layout = Layout {
            size: udata(entry.attr_value(gimli::DW_AT_byte_size).ok().flatten()),
            members: Vec::new(),
            enumeration: false,
            dynamic_declaration: false,
        };
        let mut member_types = Vec::new();
        if let Ok(mut tree) = self.unit.entries_tree(Some(offset)) {
            if let Ok(root) = tree.root() {
                let mut children = root.children();
                while let Ok(Some(child)) = children.next() {
                    let m = child.entry();
                    if m.tag() != gimli::DW_TAG_member {
                        continue;
                    }
                    // Each attribute read in one pass over the entry's
                    // (an `attr_value` each parsed them from the start:
                    // SQLite's structs made this most of a patch).
                    let [name, t, bit_size, bit_offset, location] = attributes(
                        m,
                        [
                            gimli::DW_AT_name,
                            gimli::DW_AT_type,
                            gimli::DW_AT_bit_size,
                            gimli::DW_AT_data_bit_offset,
                            gimli::DW_AT_data_member_location,
                        ],
                    );
                    let t = match t {
                        Some(AttributeValue::UnitRef(t)) => Some(t),
                        _ => None,
                    };
                    member_types.extend(t);
                    let bits = udata(bit_size).map(|size| (udata(bit_offset).unwrap_or(0), size));
                    layout.members.push(Member {
                        name: name
                            .and_then(|n| self.string(n))
                            .unwrap_or_else(|| "<anonymous>".into()),
                        offset: udata(location),
                        bits,
                        type_name: t.map_or_else(|| "?".into(), |t| self.member_type_name(t)),
                    });
                }
            }
        }
        self.record(key, layout);
        for t in member_types {
            self.visit_type(t, depth + 1, None);
        }
    }

    /// An enumeration (`enum NAME`, or the typedef's name `alias`): its
    /// enumerators' values. Data the program has holds the old values: an
    /// enumerator renumbered makes the new code misread every one (a zlib
    /// re-check: `HEAD = 16180` became 16190, and the program's open
    /// inflate stream failed its check at once).
    fn visit_enumeration(
        &mut self,
        entry: &gimli::DebuggingInformationEntry<Reader>,
        offset: UnitOffset,
        alias: Option<String>,
    ) {
        if entry.attr_value(gimli::DW_AT_declaration).ok().flatten().is_some() {
            return;
        }
        // An enumeration with no name at all (`enum { SLOT_X, SLOT_Y };`)
        // is known by each of its enumerators (a re-check: renumbered by
        // one inserted first, it went in, and the program's `SLOT_Y` read
        // as another).
        let key = match (self.name(entry), alias) {
            (Some(name), _) => Some(format!("enum {name}")),
            (None, Some(alias)) => Some(alias),
            (None, None) => None,
        };
        let mut layout = Layout {
            size: udata(entry.attr_value(gimli::DW_AT_byte_size).ok().flatten()),
            members: Vec::new(),
            enumeration: true,
            dynamic_declaration: false,
        };
        if let Ok(mut tree) = self.unit.entries_tree(Some(offset)) {
            if let Ok(root) = tree.root() {
                let mut children = root.children();
                while let Ok(Some(child)) = children.next() {
                    let e = child.entry();
                    if e.tag() != gimli::DW_TAG_enumerator {
                        continue;
                    }
                    let value = match e.attr_value(gimli::DW_AT_const_value).ok().flatten() {
                        Some(AttributeValue::Sdata(v)) => v.to_string(),
                        other => udata(other).map_or_else(|| "?".into(), |v| v.to_string()),
                    };
                    layout.members.push(Member {
                        name: self.name(e).unwrap_or_default(),
                        offset: None,
                        bits: None,
                        type_name: value,
                    });
                }
            }
        }
        let entries: Vec<(String, Layout)> = match key {
            Some(key) => vec![(self.qualified(offset, key), layout)],
            None => layout
                .members
                .iter()
                .filter(|m| !m.name.is_empty())
                .map(|m| {
                    let one = Layout {
                        size: layout.size,
                        members: vec![m.clone()],
                        enumeration: true,
                        dynamic_declaration: false,
                    };
                    (self.qualified(offset, format!("enumerator {}", m.name)), one)
                })
                .collect(),
        };
        for (key, layout) in entries {
            self.record(key, layout);
        }
    }

    /// A unit-level variable's type, as the pseudo-layout `variable NAME`
    /// (by its own name; the variables a file declares are all compared,
    /// see [`file_wide_layouts`]): an array declared `extern char
    /// buf[128]` in one file and defined `char buf[64]` in the program is
    /// another size of the same data (a zlib re-check: the declaring file,
    /// saved alone, went in and its `memset` wrote past the program's
    /// array into the next).
    fn visit_variable(&mut self, entry: &gimli::DebuggingInformationEntry<Reader>) {
        let Some(name) = self.name(entry) else {
            return;
        };
        let Ok(Some(AttributeValue::UnitRef(t))) = entry.attr_value(gimli::DW_AT_type) else {
            return;
        };
        let layout = Layout {
            size: None,
            enumeration: false,
            dynamic_declaration: false,
            members: vec![Member {
                name: String::new(),
                offset: None,
                bits: None,
                type_name: self.type_name(t, 0, true),
            }],
        };
        let key = format!("{VARIABLE}{name}");
        self.record(key, layout);
    }

    /// Whether the class at `offset` has virtual functions among its
    /// children (`DW_AT_virtuality`).
    fn has_virtual_functions(&self, offset: UnitOffset) -> bool {
        let Ok(mut tree) = self.unit.entries_tree(Some(offset)) else {
            return false;
        };
        let Ok(root) = tree.root() else {
            return false;
        };
        let mut children = root.children();
        while let Ok(Some(child)) = children.next() {
            let e = child.entry();
            if e.tag() == gimli::DW_TAG_subprogram && e.attr_value(gimli::DW_AT_virtuality).ok().flatten().is_some() {
                return true;
            }
        }
        false
    }

    /// Keeps `layout` under `key`; a second, different layout of that
    /// name (types of one name in two namespaces) makes the name a clash,
    /// compared with nothing. A definition replaces a declaration.
    fn record(&mut self, key: String, layout: Layout) {
        if self.out.get(&key).is_some_and(|had| had.dynamic_declaration) {
            self.out.insert(key, layout);
            return;
        }
        if self.out.get(&key).is_some_and(|had| *had != layout) {
            self.clashes.insert(key.clone());
        }
        self.out.insert(key, layout);
    }

    fn name(&self, entry: &gimli::DebuggingInformationEntry<Reader>) -> Option<String> {
        self.string(entry.attr_value(gimli::DW_AT_name).ok()??)
    }

    /// The string a `DW_AT_name`'s `value` gives.
    fn string(&self, value: AttributeValue<Reader>) -> Option<String> {
        Some(
            self.dwarf
                .attr_string(self.unit, value)
                .ok()?
                .to_string_lossy()
                .ok()?
                .into_owned(),
        )
    }

    /// [`Walker::type_name`] of a member's type, sized, computed once per
    /// type of the unit: the members of a unit's structs name the same
    /// few types over and over (SQLite's thousands of `int`, `u8`,
    /// `sqlite3 *`).
    fn member_type_name(&self, offset: UnitOffset) -> String {
        if let Some(name) = self.member_type_names.borrow().get(&offset) {
            return name.clone();
        }
        let name = self.type_name(offset, 0, true);
        self.member_type_names.borrow_mut().insert(offset, name.clone());
        name
    }

    /// A member's type, spelled with its size where it has one: a field
    /// that keeps its name and place but changes from `int` to `long`
    /// changes the layout. What a pointer points to is named, not sized:
    /// the pointer is 8 bytes whatever its target's size (the target's own
    /// layout is compared on its own).
    fn type_name(&self, offset: UnitOffset, depth: u32, sized: bool) -> String {
        if depth > MAX_DEPTH {
            return "?".into();
        }
        let Ok(entry) = self.unit.entry(offset) else {
            return "?".into();
        };
        let inner = |sized: bool| match entry.attr_value(gimli::DW_AT_type) {
            Ok(Some(AttributeValue::UnitRef(t))) => self.type_name(t, depth + 1, sized),
            _ => "void".into(),
        };
        // An unnamed aggregate as C writes one (`union {…}`: "<anonymous>"
        // said nothing of what it was).
        let name = self.name(&entry).unwrap_or_else(|| {
            match entry.tag() {
                gimli::DW_TAG_union_type => "union {…}",
                gimli::DW_TAG_structure_type => "struct {…}",
                gimli::DW_TAG_enumeration_type => "enum {…}",
                gimli::DW_TAG_class_type => "class {…}",
                _ => "<anonymous>",
            }
            .into()
        });
        match entry.tag() {
            gimli::DW_TAG_pointer_type => format!("{}*", inner(false)),
            gimli::DW_TAG_const_type => format!("const {}", inner(sized)),
            gimli::DW_TAG_volatile_type => format!("volatile {}", inner(sized)),
            gimli::DW_TAG_typedef => inner(sized),
            // As C writes it (`char[60]`, not `char (1 bytes)[60]`: a Lua
            // trial): the count says the size.
            gimli::DW_TAG_array_type => {
                let count = self.array_count(offset);
                format!("{}[{}]", inner(false), count.map_or(String::new(), |n| n.to_string()))
            }
            // Declared only (clang's limited debug info defines a class in
            // the one file that holds its constructor): its size is not
            // known here, which is no size of 0 (a LevelDB trial under
            // clang++: "Options (0 bytes) to Options (96 bytes)" refused
            // an edit that changed no type).
            _ if sized && entry.attr_value(gimli::DW_AT_declaration).ok().flatten().is_some() => {
                format!("{name}{DECLARED_ONLY}")
            }
            _ if sized => match udata(entry.attr_value(gimli::DW_AT_byte_size).ok().flatten()).unwrap_or(0) {
                1 => format!("{name} (1 byte)"),
                size => format!("{name} ({size} bytes)"),
            },
            _ => name,
        }
    }

    /// The element count of an array type's first dimension.
    fn array_count(&self, offset: UnitOffset) -> Option<u64> {
        let mut tree = self.unit.entries_tree(Some(offset)).ok()?;
        let root = tree.root().ok()?;
        let mut children = root.children();
        let child = children.next().ok()??;
        let e = child.entry();
        if let Some(n) = udata(e.attr_value(gimli::DW_AT_count).ok().flatten()) {
            return Some(n);
        }
        udata(e.attr_value(gimli::DW_AT_upper_bound).ok().flatten()).map(|u| u + 1)
    }
}

/// The values of the attributes `names` of `entry`, in that order, read
/// in one pass over its attributes (the first of each name).
fn attributes<'d, const N: usize>(
    entry: &gimli::DebuggingInformationEntry<Reader<'d>>,
    names: [gimli::DwAt; N],
) -> [Option<AttributeValue<Reader<'d>>>; N] {
    let mut out = [const { None }; N];
    let mut attrs = entry.attrs();
    while let Ok(Some(attr)) = attrs.next() {
        if let Some(k) = names.iter().position(|n| *n == attr.name()) {
            out[k].get_or_insert(attr.value());
        }
    }
    out
}

fn udata(value: Option<AttributeValue<Reader>>) -> Option<u64> {
    match value? {
        AttributeValue::Udata(v) => Some(v),
        AttributeValue::Data1(v) => Some(v.into()),
        AttributeValue::Data2(v) => Some(v.into()),
        AttributeValue::Data4(v) => Some(v.into()),
        AttributeValue::Data8(v) => Some(v),
        AttributeValue::Sdata(v) => u64::try_from(v).ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An anonymous enumeration compared by its typedef and enumerator by
    /// enumerator is said once, with its type (a zstd trial said each
    /// value twice).
    #[test]
    fn each_changed_value_is_said_once() {
        let enumeration = |values: &[(&str, &str)]| Layout {
            size: Some(4),
            members: values
                .iter()
                .map(|(name, value)| Member {
                    name: name.to_string(),
                    offset: None,
                    bits: None,
                    type_name: value.to_string(),
                })
                .collect(),
            enumeration: true,
            dynamic_declaration: false,
        };
        let layouts = |off: &str, on: &str| -> HashMap<String, Layout> {
            [
                ("mode_e".to_string(), enumeration(&[("OFF", off), ("ON", on)])),
                ("enumerator OFF".to_string(), enumeration(&[("OFF", off)])),
                ("enumerator ON".to_string(), enumeration(&[("ON", on)])),
            ]
            .into_iter()
            .collect()
        };
        let said = differences(&layouts("1", "0"), &HashSet::new(), &layouts("0", "1"), &HashSet::new());
        assert_eq!(
            said,
            ["mode_e: OFF changed value from 0 to 1, ON changed value from 1 to 0"]
        );
        assert!(only_values(&said));
        // More than the type's words show: the one left out ("and 1
        // more") is not said again on its own (a tree-sitter trial).
        let names = ["A", "B", "C", "D", "E"];
        let many = |base: u64| -> HashMap<String, Layout> {
            let values: Vec<(String, String)> = names
                .iter()
                .enumerate()
                .map(|(k, n)| (n.to_string(), (base + k as u64).to_string()))
                .collect();
            let pairs: Vec<(&str, &str)> = values.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
            std::iter::once(("kind_e".to_string(), enumeration(&pairs)))
                .chain(
                    pairs
                        .iter()
                        .map(|&p| (format!("enumerator {}", p.0), enumeration(&[p]))),
                )
                .collect()
        };
        let said = differences(&many(10), &HashSet::new(), &many(0), &HashSet::new());
        assert_eq!(said.len(), 1, "{said:?}");
        assert!(
            said[0].starts_with("kind_e: A changed value from 0 to 10") && said[0].ends_with("and 1 more"),
            "{said:?}"
        );
    }

    /// A bit-field has no byte offset: its bits are said (it printed
    /// "moved from offset ? to ?", a HarfBuzz trial).
    #[test]
    fn a_moved_bit_field_is_said_by_its_bits() {
        let bit_field = |bit: u64| Member {
            name: "flag".into(),
            offset: None,
            bits: Some((bit, 1)),
            type_name: "unsigned int".into(),
        };
        let with = |bit: u64| Layout {
            size: Some(4),
            members: vec![bit_field(bit)],
            enumeration: false,
            dynamic_declaration: false,
        };
        assert_eq!(
            difference(&with(3), &with(4)),
            "field flag moved from bits 3..4 to bits 4..5"
        );
    }

    fn member(name: &str, offset: u64, type_name: &str) -> Member {
        Member {
            name: name.into(),
            offset: Some(offset),
            bits: None,
            type_name: type_name.into(),
        }
    }

    fn layout(size: u64, members: Vec<Member>) -> Layout {
        Layout {
            size: Some(size),
            members,
            enumeration: false,
            dynamic_declaration: false,
        }
    }

    /// A member whose type one compile only declares (clang's limited
    /// debug info) is no change where the places and the size agree; one
    /// that moved still is, said with the type's name on both sides.
    #[test]
    fn a_member_type_declared_only_on_one_side_is_the_same_type() {
        let declared = layout(
            104,
            vec![
                member("options", 0, "Options (declared only)"),
                member("n", 96, "int (4 bytes)"),
            ],
        );
        let defined = layout(
            104,
            vec![
                member("options", 0, "Options (96 bytes)"),
                member("n", 96, "int (4 bytes)"),
            ],
        );
        assert!(!differs(&declared, &defined));
        assert!(!differs(&defined, &declared));
        let other = layout(
            104,
            vec![
                member("options", 0, "Other (96 bytes)"),
                member("n", 96, "int (4 bytes)"),
            ],
        );
        assert!(differs(&declared, &other));
        let grown = layout(
            112,
            vec![
                member("options", 0, "Options (104 bytes)"),
                member("n", 104, "int (4 bytes)"),
            ],
        );
        assert!(differs(&declared, &grown));
        assert_eq!(difference(&declared, &grown), "field n moved from offset 96 to 104");
    }

    #[test]
    fn each_difference_is_named_with_what_changed() {
        let was = layout(
            8,
            vec![member("a", 0, "int (4 bytes)"), member("b", 4, "int (4 bytes)")],
        );
        let widened = layout(
            16,
            vec![member("a", 0, "int (4 bytes)"), member("b", 8, "long (8 bytes)")],
        );
        assert_eq!(
            difference(&was, &widened),
            "field b moved from offset 4 to 8 and changed type from int (4 bytes) to long (8 bytes)"
        );
        let retyped = layout(
            8,
            vec![member("a", 0, "int (4 bytes)"), member("b", 4, "float (4 bytes)")],
        );
        assert_eq!(
            difference(&was, &retyped),
            "field b changed type from int (4 bytes) to float (4 bytes)"
        );
        let fewer = layout(8, vec![member("a", 0, "int (4 bytes)")]);
        assert_eq!(difference(&was, &fewer), "field b was removed");
        let padded = layout(16, was.members.clone());
        assert_eq!(difference(&was, &padded), "its size changed from 8 to 16 bytes");
        // A renamed field: both sides of it.
        let renamed = layout(
            8,
            vec![member("a", 0, "int (4 bytes)"), member("c", 4, "int (4 bytes)")],
        );
        assert_eq!(difference(&was, &renamed), "field c was added, field b was removed");
        let many = layout(
            24,
            (0..6)
                .map(|i| member(&format!("f{i}"), i * 4, "int (4 bytes)"))
                .collect(),
        );
        assert_eq!(
            difference(&was, &many),
            "field f0 was added, field f1 was added, field f2 was added, field f3 was added, and 4 more"
        );
    }
}
