//! Function signatures from an object's DWARF (`-g`): what callers in
//! other translation units rely on. A global function whose parameter or
//! return types changed cannot be patched alone: the callers that were not
//! recompiled still pass the old arguments.
//!
//! In a relocatable object, `.debug_info`'s references to strings are
//! relocations (the field holds 0, the addend the offset), so those are
//! applied to a copy of the section before reading it.

use foldhash::{HashMap, HashMapExt};

use gimli::{AttributeValue, DebugInfoOffset, EndianSlice, LittleEndian, Reader as _, SectionId, UnitOffset};

use crate::debug_index::{DebugIndex, TopEntry};
use crate::debug_relocs::Fixups;
use crate::objfile::ObjectFile;

/// A debug section of a relocatable object, its relocations applied to
/// each field as it is read ([`ObjectFile::debug_section`]).
pub(crate) type Reader<'a> = gimli::RelocateReader<EndianSlice<'a, LittleEndian>, Fixups<'a>>;

/// How deep type chains are followed (a hostile file may loop).
const MAX_DEPTH: u32 = 16;

/// `name -> "ret(param, param)"` for each external function of `names`
/// described in the object's DWARF; empty without debug information.
pub fn signatures(obj: &ObjectFile, names: &[&str]) -> HashMap<String, String> {
    read(obj, names, Subprograms::Definitions)
}

/// `name -> "ret(param, param)"` as the object's code declares the
/// external functions of `names` that it calls but does not define (the
/// prototype it was compiled against).
pub fn declarations(obj: &ObjectFile, names: &[&str]) -> HashMap<String, String> {
    read(obj, names, Subprograms::Declarations)
}

/// Whether a caller compiled against the declaration `declared` calls a
/// function defined as `defined` (both as [`declarations`] and
/// [`definitions_resolved`] give them) the way its definition takes the
/// call: the same signature, or a C declaration without a prototype
/// (`int f();`, `int(...)`) and a definition of the same return type. A
/// caller of such a declaration passes what its call's arguments are,
/// whatever the definition says: there is nothing to compare but the
/// return type (redis and gawk trials: `int isInsideYieldingLongCommand();`
/// in a header, defined `int isInsideYieldingLongCommand() {`, held every
/// edit of its callers' file for a signature change nobody made).
pub fn agree(declared: &str, defined: &str) -> bool {
    let unprototyped = |a: &str, b: &str| {
        a.strip_suffix("(...)")
            .is_some_and(|ret| b.strip_prefix(ret).is_some_and(|rest| rest.starts_with('(')))
    };
    declared == defined || unprototyped(declared, defined) || unprototyped(defined, declared)
}

/// [`signatures`] with typedefs written as what they name, to compare
/// with [`declarations`].
pub fn definitions_resolved(obj: &ObjectFile, names: &[&str]) -> HashMap<String, String> {
    read(obj, names, Subprograms::DefinitionsResolved)
}

/// `name -> "ret(param, param)"` for each `static` function of `names`
/// (as the source names them) that `obj` defines.
pub fn static_signatures(obj: &ObjectFile, names: &[&str]) -> HashMap<String, String> {
    read(obj, names, Subprograms::StaticDefinitions)
}

/// `name -> "ret(param, param)"` for each external function of `names`
/// that a linked file (a program or library built with `-g`, its bytes
/// `data`) defines in the compile units of a source named `source_name`
/// (`lobject.c`): the signatures the program was built with. Needed
/// where the earlier compile of a file is not what runs (an edit made
/// before relive started, code another command reverted), so comparing
/// two compiles would not see a signature the edit changed. Empty
/// without such DWARF (compressed sections included) or when it cannot
/// be read.
///
/// `kind`: [`Subprograms::Definitions`] as [`signatures`] has them,
/// [`Subprograms::DefinitionsResolved`] to compare with [`declarations`],
/// [`Subprograms::StaticDefinitions`] for `static` functions (by the names the
/// source gives them: `calc`, not GCC's clone `calc.isra.0`).
pub fn built_with(data: &[u8], source_name: &str, names: &[&str], kind: Subprograms) -> HashMap<String, String> {
    shown(built_with_compared(data, source_name, names, kind))
}

/// [`built_with`], each signature as shown and as compared.
pub fn built_with_compared(
    data: &[u8],
    source_name: &str,
    names: &[&str],
    kind: Subprograms,
) -> HashMap<String, Signature> {
    if names.is_empty() {
        return HashMap::new();
    }
    with_image_dwarf(data, |dwarf| {
        let index = DebugIndex::build_units(dwarf, |unit| unit_named(unit, source_name))?;
        read_compared(dwarf, &index, names, kind)
    })
    .unwrap_or_default()
}

/// `name -> "ret(param, param)"` (of `kind`: typedefs resolved, to
/// compare with [`declarations`], or as a patch's generation records it)
/// for each external function of `wanted` (`(name, address)`, the
/// address as the linked file `data` has it) defined in
/// the compile unit whose code covers that address: the function a call
/// from another file's new code reaches while it runs the program's own
/// code. A one-shot patch of a caller compiled against a changed
/// prototype went in unchecked, and its calls passed arguments the
/// running definition does not take (a bzip2 trial: every stream came
/// out corrupt). Units are found by `.debug_aranges`, else by each
/// unit's ranges (clang writes no aranges). Empty without such DWARF.
pub fn built_at(data: &[u8], wanted: &[(&str, u64)], kind: Subprograms) -> HashMap<String, String> {
    built_at_each(data, &[(wanted, kind)]).pop().unwrap_or_default()
}

/// [`built_at`] of several questions of one module (each its functions
/// and what to read of them), its DWARF loaded and its units indexed once
/// for all: a one-shot patch whose callee was patched asked twice, and
/// read a large module's DWARF twice. One answer per question, in order.
pub fn built_at_each(data: &[u8], asked: &[(&[(&str, u64)], Subprograms)]) -> Vec<HashMap<String, String>> {
    let nothing = || asked.iter().map(|_| HashMap::new()).collect();
    if asked.iter().all(|(wanted, _)| wanted.is_empty()) {
        return nothing();
    }
    let covers = |begin: u64, end: u64| {
        asked
            .iter()
            .flat_map(|(wanted, _)| wanted.iter())
            .any(|&(_, a)| begin <= a && a < end)
    };
    with_image_dwarf(data, |dwarf| {
        let mut units: Vec<DebugInfoOffset> = Vec::new();
        let mut headers = dwarf.debug_aranges.headers();
        while let Some(header) = headers.next()? {
            let mut entries = header.entries();
            while let Some(entry) = entries.next()? {
                let range = entry.range();
                if covers(range.begin, range.end) {
                    units.push(header.debug_info_offset());
                    break;
                }
            }
        }
        if units.is_empty() {
            let mut headers = dwarf.units();
            while let Some(header) = headers.next()? {
                let Some(offset) = header.offset().as_debug_info_offset() else {
                    continue;
                };
                let unit = dwarf.unit(header)?;
                let mut ranges = dwarf.unit_ranges(&unit)?;
                while let Some(range) = ranges.next()? {
                    if covers(range.begin, range.end) {
                        units.push(offset);
                        break;
                    }
                }
            }
        }
        if units.is_empty() {
            return Ok(nothing());
        }
        let index = DebugIndex::build_units(dwarf, |unit| {
            unit.header
                .offset()
                .as_debug_info_offset()
                .is_some_and(|o| units.contains(&o))
        })?;
        asked
            .iter()
            .map(|(wanted, kind)| match wanted.is_empty() {
                true => Ok(HashMap::new()),
                false => {
                    let names: Vec<&str> = wanted.iter().map(|&(name, _)| name).collect();
                    read_signatures(dwarf, &index, &names, *kind)
                }
            })
            .collect()
    })
    .unwrap_or_else(nothing)
}

/// `f` of the DWARF of a module's image `data` (linked: no relocations
/// to apply); `None` when `data` is no object or `f` fails.
pub(crate) fn with_image_dwarf<T>(
    data: &[u8],
    f: impl FnOnce(&gimli::Dwarf<Reader>) -> Result<T, gimli::Error>,
) -> Option<T> {
    use object::{Object, ObjectSection};
    let file = object::File::parse(data).ok()?;
    let dwarf = gimli::Dwarf::load(|id: SectionId| -> Result<Reader, gimli::Error> {
        let bytes = file
            .section_by_name(id.name())
            .and_then(|s| s.data().ok())
            .unwrap_or(&[]);
        Ok(gimli::RelocateReader::new(
            EndianSlice::new(bytes, LittleEndian),
            Fixups::NONE,
        ))
    })
    .ok()?;
    f(&dwarf).ok()
}

/// Whether `unit` is the compile unit of the file `source_name` (its
/// name as the compiler was given it ends with it: `src/lobject.c`).
pub(crate) fn unit_named(unit: &gimli::Unit<Reader>, source_name: &str) -> bool {
    unit.name.as_ref().is_some_and(|name| {
        name.to_slice()
            .is_ok_and(|bytes| bytes.rsplit(|&b| b == b'/').next() == Some(source_name.as_bytes()))
    })
}

/// Which subprograms a signature is read of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subprograms {
    /// Definitions of global functions.
    Definitions,
    /// Definitions of `static` functions.
    StaticDefinitions,
    /// Definitions, typedefs resolved.
    DefinitionsResolved,
    Declarations,
}

fn read(obj: &ObjectFile, names: &[&str], kind: Subprograms) -> HashMap<String, String> {
    shown(compared(obj, names, kind))
}

/// [`signatures`] (`kind` [`Subprograms::Definitions`]) or
/// [`static_signatures`] (`StaticDefinitions`), each as shown and as
/// compared: what tells whether a definition's signature changed.
pub fn compared(obj: &ObjectFile, names: &[&str], kind: Subprograms) -> HashMap<String, Signature> {
    if names.is_empty() {
        return HashMap::new();
    }
    let index = index(obj);
    with_dwarf(obj, |dwarf| read_compared(dwarf, index, names, kind)).unwrap_or_default()
}

/// Signatures as shown (see [`Signature`]), in a map of the same kind.
pub fn shown<S: std::hash::BuildHasher + Default>(
    signatures: std::collections::HashMap<String, Signature, S>,
) -> std::collections::HashMap<String, String, S> {
    signatures.into_iter().map(|(name, s)| (name, s.shown)).collect()
}

/// A function whose signature differs between two compiles; said as
/// `name: was -> now`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SignatureChange {
    pub name: String,
    pub was: String,
    pub now: String,
    /// Only parameters' names moved ([`Signature::moves_names`]): the
    /// same call, which matters only to callers whose call changed with
    /// it.
    pub names_only: bool,
}

impl std::fmt::Display for SignatureChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {} -> {}", self.name, self.was, self.now)
    }
}

/// Global functions among `names` (those whose code changed: a function
/// whose code is the same runs the same for old and new callers) whose
/// signature in `new` differs from `old`'s (only where both objects carry
/// DWARF), in name order.
pub fn changed(old: &ObjectFile, new: &ObjectFile, names: &[&str]) -> Vec<SignatureChange> {
    // Only global functions have callers elsewhere (DWARF's `external`
    // is the symbol's binding): an edit of `static` functions alone reads
    // no DWARF here.
    let global = |name: &&str| new.symbols.iter().any(|s| s.name == *name && !s.local);
    let names: Vec<&str> = names.iter().copied().filter(global).collect();
    changed_among(old, new, &names, Subprograms::Definitions)
}

/// The `static` functions among `names` (symbols of `new` whose code
/// changed) whose signature differs from `old`'s. Their callers are all
/// in the file, so they are patched with them; but a caller's call that
/// is running keeps its old code, which calls them the old way (a trial:
/// `main`'s loop kept calling `calc(x)` after `calc(x, y)` went in, and
/// the program printed `x * 7 + garbage`). A GCC clone (`calc.isra.0`)
/// counts by its function's signature: DWARF describes that one.
///
/// Each with whether only its parameters' names moved
/// ([`SignatureChange::names_only`]).
pub fn changed_static(old: &ObjectFile, new: &ObjectFile, names: &[&str]) -> Vec<(String, bool)> {
    let local = |name: &&str| new.symbols.iter().any(|s| s.name == *name && s.local);
    let symbols: Vec<&str> = names.iter().copied().filter(local).collect();
    let bases: Vec<String> = symbols.iter().map(|n| crate::names::parse(n).base).collect();
    let mut wanted: Vec<&str> = bases.iter().map(String::as_str).collect();
    wanted.sort_unstable();
    wanted.dedup();
    let changed = changed_among(old, new, &wanted, Subprograms::StaticDefinitions);
    symbols
        .iter()
        .zip(&bases)
        .filter_map(|(symbol, base)| {
            let change = changed.iter().find(|c| c.name == *base)?;
            Some((symbol.to_string(), change.names_only))
        })
        .collect()
}

/// Each of `names` whose definition of `kind` differs between the
/// objects, in name order.
fn changed_among(old: &ObjectFile, new: &ObjectFile, names: &[&str], kind: Subprograms) -> Vec<SignatureChange> {
    if names.is_empty() {
        return Vec::new();
    }
    // Each object's index is one pass over all its DWARF: the two are read
    // side by side.
    let worth = crate::side_by_side::worth_a_thread((old.raw().len() + new.raw().len()) as u64);
    let (before, after) =
        crate::side_by_side::both_if(worth, || compared(old, names, kind), || compared(new, names, kind));
    let mut out: Vec<SignatureChange> = after
        .into_iter()
        .filter_map(|(name, now)| {
            let was = before.get(&name)?;
            let names_only = was.same_call(&now);
            (!names_only || was.moves_names(&now)).then(|| SignatureChange {
                name,
                was: was.shown.clone(),
                now: now.shown,
                names_only,
            })
        })
        .collect();
    out.sort();
    out
}

/// The first compile unit's `DW_AT_producer` (compiler, version and the
/// code-generation options GCC records), if the object has DWARF.
pub fn producer(obj: &ObjectFile) -> Option<String> {
    with_dwarf(obj, |dwarf| {
        let mut units = dwarf.units();
        let Some(header) = units.next()? else { return Ok(None) };
        let unit = dwarf.unit(header)?;
        let mut entries = unit.entries();
        let Some((_, root)) = entries.next_dfs()? else {
            return Ok(None);
        };
        let Some(value) = root.attr_value(gimli::DW_AT_producer)? else {
            return Ok(None);
        };
        Ok(Some(dwarf.attr_string(&unit, value)?.to_string_lossy()?.into_owned()))
    })
    .ok()
    .flatten()
}

/// Runs `f` over the object's DWARF (relocated); `Ok(None)`-like default
/// when there is none.
pub(crate) fn with_dwarf<T: Default>(
    obj: &ObjectFile,
    f: impl FnOnce(&gimli::Dwarf<Reader>) -> Result<T, gimli::Error>,
) -> Result<T, gimli::Error> {
    if !obj.has_debug_info() {
        return Ok(T::default());
    }
    // Only what entries, names, types and the unit's line program header
    // need: location and range lists are most of a large unit's
    // relocations, and nothing here reads them.
    let dwarf = gimli::Dwarf::load(|id: SectionId| -> Result<Reader, gimli::Error> {
        let needed = matches!(
            id,
            SectionId::DebugInfo
                | SectionId::DebugAbbrev
                | SectionId::DebugStr
                | SectionId::DebugLineStr
                | SectionId::DebugLine
                | SectionId::DebugStrOffsets
                | SectionId::DebugAddr
        );
        let (bytes, fixups) = match needed {
            true => obj.debug_section(id.name()),
            false => (&[][..], Fixups::NONE),
        };
        Ok(gimli::RelocateReader::new(
            EndianSlice::new(bytes, LittleEndian),
            fixups,
        ))
    })?;
    f(&dwarf)
}

/// The object's top-level DWARF entries by name, read on first use
/// (empty without debug information or when it cannot be read).
pub(crate) fn index(obj: &ObjectFile) -> &DebugIndex {
    obj.debug_index_cache()
        .get_or_init(|| with_dwarf(obj, DebugIndex::build).unwrap_or_default())
}

/// The compile unit whose header is at `offset`, parsed once per caller
/// (an object usually has one).
pub(crate) fn unit_at<'d>(
    dwarf: &gimli::Dwarf<Reader<'d>>,
    units: &mut HashMap<DebugInfoOffset, gimli::Unit<Reader<'d>>>,
    offset: DebugInfoOffset,
) -> Result<(), gimli::Error> {
    if let std::collections::hash_map::Entry::Vacant(slot) = units.entry(offset) {
        let header = dwarf.debug_info.header_from_offset(offset)?;
        slot.insert(dwarf.unit(header)?);
    }
    Ok(())
}

/// The entries of `index` named `name` (its candidates whose name is
/// `name`), their units parsed into `units`.
pub(crate) fn entries_named<'d>(
    dwarf: &gimli::Dwarf<Reader<'d>>,
    units: &mut HashMap<DebugInfoOffset, gimli::Unit<Reader<'d>>>,
    index: &DebugIndex,
    name: &str,
) -> Result<Vec<TopEntry>, gimli::Error> {
    let mut out = Vec::new();
    for e in index.get(name) {
        unit_at(dwarf, units, e.unit)?;
        let unit = &units[&e.unit];
        if is_named(dwarf, unit, e.offset, name)? {
            out.push(*e);
        }
    }
    Ok(out)
}

/// Whether the entry at `offset` is named `name`: its `DW_AT_name`, its
/// linkage name (C++), or the linkage name of the declaration it defines
/// (`DW_AT_specification`: a member function defined outside its class).
fn is_named(
    dwarf: &gimli::Dwarf<Reader>,
    unit: &gimli::Unit<Reader>,
    offset: gimli::UnitOffset,
    name: &str,
) -> Result<bool, gimli::Error> {
    let entry = unit.entry(offset)?;
    let spelled = |attr: gimli::DwAt, entry: &gimli::DebuggingInformationEntry<Reader>| -> Result<bool, gimli::Error> {
        Ok(match entry.attr_value(attr)? {
            Some(value) => *dwarf.attr_string(unit, value)?.to_slice()? == *name.as_bytes(),
            None => false,
        })
    };
    let linkage = |entry: &gimli::DebuggingInformationEntry<Reader>| -> Result<bool, gimli::Error> {
        Ok(spelled(gimli::DW_AT_linkage_name, entry)? || spelled(gimli::DW_AT_MIPS_linkage_name, entry)?)
    };
    if spelled(gimli::DW_AT_name, &entry)? || linkage(&entry)? {
        return Ok(true);
    }
    match entry.attr_value(gimli::DW_AT_specification)? {
        Some(gimli::AttributeValue::UnitRef(declared)) => linkage(&unit.entry(declared)?),
        _ => Ok(false),
    }
}

/// The `DW_AT_type` (the return type) of the subprogram `entry`, or of
/// the declaration it defines (`DW_AT_specification`): GCC gives a C++
/// function declared in a namespace or a class its return type there
/// only. Read from the definition alone, every such function returned
/// `void` in both compiles, and a change of its return type went in
/// unseen while a running caller read the old register (a LevelDB
/// trial: `crc32c::Extend` made to return `double`, and `main`'s running
/// call read garbage from `eax`).
fn returned_type<'d>(
    unit: &gimli::Unit<Reader<'d>>,
    entry: &gimli::DebuggingInformationEntry<Reader<'d>>,
) -> Result<Option<AttributeValue<Reader<'d>>>, gimli::Error> {
    if let Some(ty) = entry.attr_value(gimli::DW_AT_type)? {
        return Ok(Some(ty));
    }
    match entry.attr_value(gimli::DW_AT_specification)? {
        Some(AttributeValue::UnitRef(declared)) => unit.entry(declared)?.attr_value(gimli::DW_AT_type),
        _ => Ok(None),
    }
}

fn read_signatures(
    dwarf: &gimli::Dwarf<Reader>,
    index: &DebugIndex,
    names: &[&str],
    kind: Subprograms,
) -> Result<HashMap<String, String>, gimli::Error> {
    Ok(shown(read_compared(dwarf, index, names, kind)?))
}

/// A function's signature as shown (`void(Int32 (= int) n)`, typedefs by
/// name) and as compared: typedefs by what they name and top-level
/// qualifiers aside, which change no call (`f(const Int32 n)` defined
/// where `f(int n)` was is the same function to its callers: a bzip2
/// trial's edit was refused, or held under `relive run`, as a signature
/// change).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    pub shown: String,
    /// The types alone.
    compared: String,
    /// The parameters' names, where they are compared (definitions).
    names: Vec<Option<String>>,
}

impl Signature {
    /// Whether a call made for one is one the other takes: the same
    /// types (typedefs by what they name). Names are no part of a call: a
    /// caller whose code did not change passes what a fresh build's
    /// passes (a FreeType trial's `FT_MulDiv(a_, b_, c_)` defined as
    /// `(a_, c_, b_)` was held until twelve files that call it were saved
    /// again, and each compiled as it was); see [`Signature::moves_names`]
    /// for the callers whose code did change.
    pub fn same_call(&self, other: &Signature) -> bool {
        self.compared == other.compared
    }

    /// Whether a parameter name of one is found at another place in the
    /// other (`f(int a, int b)` made `f(int b, int a)`): the function takes
    /// its arguments the other way round, so a caller whose call changed
    /// with it (`f(x, y)` made `f(y, x)`) and is running finishes in old
    /// code that passes them the old way (a re-check's swap went in
    /// unseen). A name changed in place is a rename, which changes nothing
    /// (a bzip2 re-check's `maxLen` made `maxLength` was refused).
    pub fn moves_names(&self, other: &Signature) -> bool {
        self.names.iter().enumerate().any(|(i, name)| {
            name.as_ref().is_some_and(|n| {
                other
                    .names
                    .iter()
                    .position(|o| o.as_ref() == Some(n))
                    .is_some_and(|j| j != i)
            })
        })
    }

    /// What [`Signature::same_call`] compares, as one string a journal
    /// keeps with a generation ([`Signature::from_key`] reads it back):
    /// its shown form has parameter names and typedef spellings, which a
    /// call does not care about.
    pub fn key(&self) -> String {
        let names: Vec<&str> = self.names.iter().map(|n| n.as_deref().unwrap_or("")).collect();
        format!("{}{KEY_SEPARATOR}{}", self.compared, names.join(","))
    }

    /// The signature a [`Signature::key`] is of (`shown` left empty);
    /// `None` for a string that is no key.
    pub fn from_key(key: &str) -> Option<Signature> {
        let (compared, names) = key.rsplit_once(KEY_SEPARATOR)?;
        let names = match names.is_empty() {
            true => Vec::new(),
            false => names
                .split(',')
                .map(|n| (!n.is_empty()).then(|| n.to_string()))
                .collect(),
        };
        Some(Signature {
            shown: String::new(),
            compared: compared.to_string(),
            names,
        })
    }
}

/// Between a [`Signature::key`]'s types and its parameter names (no C
/// type is spelled with it).
const KEY_SEPARATOR: char = '\u{1f}';

/// [`read_signatures`], each signature as shown and as compared.
fn read_compared(
    dwarf: &gimli::Dwarf<Reader>,
    index: &DebugIndex,
    names: &[&str],
    kind: Subprograms,
) -> Result<HashMap<String, Signature>, gimli::Error> {
    let mut out = HashMap::new();
    let mut units = HashMap::new();
    for &name in names {
        let entries = entries_named(dwarf, &mut units, index, name)?;
        let entries = entries.iter().filter(|e| {
            e.tag == gimli::DW_TAG_subprogram
                && e.external == (kind != Subprograms::StaticDefinitions)
                && e.declaration == (kind == Subprograms::Declarations)
        });
        for e in entries {
            let unit = &units[&e.unit];
            let mut tree = unit.entries_tree(Some(e.offset))?;
            let node = tree.root()?;
            // Declarations are compared with definitions spelled in other
            // files: typedefs by what they name.
            let resolve = !matches!(kind, Subprograms::Definitions | Subprograms::StaticDefinitions);
            // Shown with `resolve`, compared as resolved.
            let both = |value: Option<AttributeValue<Reader>>| {
                let shown = type_name(dwarf, unit, unqualified(unit, value.clone(), resolve), 0, resolve);
                let compared = type_name(dwarf, unit, unqualified(unit, value, true), 0, true);
                (shown, compared)
            };
            let ret = both(returned_type(unit, node.entry())?);
            let (mut shown, mut compared, mut names) = (Vec::new(), Vec::new(), Vec::new());
            let mut kids = node.children();
            while let Some(kid) = kids.next()? {
                match kid.entry().tag() {
                    gimli::DW_TAG_formal_parameter => {
                        let (ty_shown, ty_compared) = both(kid.entry().attr_value(gimli::DW_AT_type)?);
                        // Definitions by their parameters' names too: `f(int
                        // a, int b)` made `f(int b, int a)` takes its
                        // arguments in the other order, and a running
                        // caller's old code passed them the old way (a
                        // re-check's swap went in unseen). Declarations
                        // name them as they like, or not at all.
                        let name = match (resolve, kid.entry().attr_value(gimli::DW_AT_name)?) {
                            (false, Some(v)) => Some(dwarf.attr_string(unit, v)?.to_string_lossy()?.into_owned()),
                            _ => None,
                        };
                        shown.push(match &name {
                            Some(name) => format!("{ty_shown} {name}"),
                            None => ty_shown,
                        });
                        compared.push(ty_compared);
                        names.push(name);
                    }
                    gimli::DW_TAG_unspecified_parameters => {
                        shown.push("...".into());
                        compared.push("...".into());
                        names.push(None);
                    }
                    _ => {}
                }
            }
            out.insert(
                name.to_string(),
                Signature {
                    shown: format!("{}({})", ret.0, shown.join(", ")),
                    compared: format!("{}({})", ret.1, compared.join(", ")),
                    names,
                },
            );
        }
    }
    Ok(out)
}

/// A readable name for the type `DW_AT_type` refers to.
fn type_name(
    dwarf: &gimli::Dwarf<Reader>,
    unit: &gimli::Unit<Reader>,
    value: Option<AttributeValue<Reader>>,
    depth: u32,
    resolve: bool,
) -> String {
    let Some(AttributeValue::UnitRef(offset)) = value else {
        return "void".into();
    };
    if depth > MAX_DEPTH {
        return "?".into();
    }
    describe(dwarf, unit, offset, depth, resolve).unwrap_or_else(|_| "?".into())
}

/// A parameter's or return value's type without its top-level
/// qualifiers (`const`, `volatile`, `restrict`) where a declaration is
/// compared with a definition (`resolve`): C ignores them there, so
/// `int scale(int x, const int by) {` defines what `int scale(int, int);`
/// declares, and was taken for another prototype.
fn unqualified<'a>(
    unit: &gimli::Unit<Reader<'a>>,
    value: Option<AttributeValue<Reader<'a>>>,
    resolve: bool,
) -> Option<AttributeValue<Reader<'a>>> {
    let mut value = value;
    // Bounded: a hostile file's qualifiers may name each other.
    for _ in 0..8 {
        if !resolve {
            break;
        }
        let Some(AttributeValue::UnitRef(offset)) = value else {
            break;
        };
        let Ok(entry) = unit.entry(offset) else {
            break;
        };
        if !matches!(
            entry.tag(),
            gimli::DW_TAG_const_type | gimli::DW_TAG_volatile_type | gimli::DW_TAG_restrict_type
        ) {
            break;
        }
        value = entry.attr_value(gimli::DW_AT_type).ok().flatten();
    }
    value
}

fn describe(
    dwarf: &gimli::Dwarf<Reader>,
    unit: &gimli::Unit<Reader>,
    offset: UnitOffset,
    depth: u32,
    resolve: bool,
) -> Result<String, gimli::Error> {
    let entry = unit.entry(offset)?;
    let inner = || -> Result<String, gimli::Error> {
        Ok(type_name(
            dwarf,
            unit,
            entry.attr_value(gimli::DW_AT_type)?,
            depth + 1,
            resolve,
        ))
    };
    let name = || -> Result<String, gimli::Error> {
        Ok(match entry.attr_value(gimli::DW_AT_name)? {
            Some(v) => dwarf.attr_string(unit, v)?.to_string_lossy()?.into_owned(),
            None => "<anonymous>".into(),
        })
    };
    // A qualifier of a pointer itself is written after it: `int* const`
    // (`const int*` is a pointer to a constant, which read as the other:
    // a bzip2 re-check).
    let of_pointer = || -> Result<bool, gimli::Error> {
        Ok(match entry.attr_value(gimli::DW_AT_type)? {
            Some(AttributeValue::UnitRef(to)) => unit.entry(to)?.tag() == gimli::DW_TAG_pointer_type,
            _ => false,
        })
    };
    Ok(match entry.tag() {
        gimli::DW_TAG_pointer_type => format!("{}*", inner()?),
        gimli::DW_TAG_const_type if of_pointer()? => format!("{} const", inner()?),
        gimli::DW_TAG_volatile_type if of_pointer()? => format!("{} volatile", inner()?),
        gimli::DW_TAG_const_type => format!("const {}", inner()?),
        gimli::DW_TAG_volatile_type => format!("volatile {}", inner()?),
        gimli::DW_TAG_structure_type => format!("struct {}", name()?),
        gimli::DW_TAG_union_type => format!("union {}", name()?),
        gimli::DW_TAG_enumeration_type => format!("enum {}", name()?),
        gimli::DW_TAG_array_type => format!("{}[]", inner()?),
        gimli::DW_TAG_subroutine_type => "function".into(),
        // Typedefs are compared by what they name: changing `typedef int
        // T` to `typedef long T` changes the signature.
        gimli::DW_TAG_typedef if resolve => inner()?,
        // By its name and what it finally names: a chain of typedefs
        // (`uint32_t (= __uint32_t (= unsigned int))`) read badly.
        gimli::DW_TAG_typedef => format!(
            "{} (= {})",
            name()?,
            type_name(dwarf, unit, entry.attr_value(gimli::DW_AT_type)?, depth + 1, true)
        ),
        _ => name()?,
    })
}

#[cfg(test)]
mod tests {
    use super::agree;

    #[test]
    fn a_declaration_without_a_prototype_agrees_with_a_definition_of_its_return_type() {
        assert!(agree("void(...)", "void()"));
        assert!(agree("int(...)", "int(int, long)"));
        assert!(agree("int(int, long)", "int(int, long)"));
        // Another return type, or a prototype that differs, does not.
        assert!(!agree("int(...)", "long()"));
        assert!(!agree("int(...)", "int*(int)"));
        assert!(!agree("int(int)", "int(long)"));
        // A variadic prototype is one (`int(char*, ...)`).
        assert!(!agree("int(char*, ...)", "int(char*)"));
    }
}
