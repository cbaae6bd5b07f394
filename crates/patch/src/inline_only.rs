//! Functions that exist only inlined into others, and which patched
//! functions they are inlined into, from an object's DWARF.
//!
//! A static function called once, or an inline one, often has no code of
//! its own: its edit changes the functions it is inlined into, and a
//! patch replaces those. Said by their names alone, the patch reads as if
//! relive had patched something other than what was edited (a zlib trial:
//! an edit of `read_buf` was said as "patched fill_window,
//! deflate_stored"). The DWARF describes such a function once, as an
//! abstract instance (`DW_AT_inline`, no code), and each place it was
//! inlined as a `DW_TAG_inlined_subroutine` pointing at it; where it was
//! declared (`DW_AT_decl_file`, `DW_AT_decl_line`) lets the caller tell
//! whether the save edited it (see `relive_reload`'s edited lines).

use std::path::{Path, PathBuf};

use gimli::{AttributeValue, Reader as _, UnitOffset};

use crate::objfile::ObjectFile;
use crate::signature::{with_dwarf, Reader};

/// A function of the object with no code of its own, inlined into some
/// of the patched functions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InlineOnly {
    /// Its name in the source.
    pub name: String,
    /// The source file that defines it, as the compile named it (joined
    /// to the compile's directory when relative).
    pub file: PathBuf,
    /// The line its name is declared on.
    pub line: u64,
    /// The patched functions (symbols, as given) it is inlined into.
    pub into: Vec<String>,
}

/// One top-level subprogram of a unit.
struct Subprogram {
    offset: UnitOffset,
    name: Option<String>,
    file: Option<u64>,
    line: Option<u64>,
    /// Has code of its own (`DW_AT_low_pc` or `DW_AT_ranges`).
    code: bool,
    /// An abstract instance (`DW_AT_inline`).
    abstract_instance: bool,
    /// `DW_AT_abstract_origin` or `DW_AT_specification`: where its name
    /// and place are when it has none itself.
    origin: Option<UnitOffset>,
}

/// The functions of `obj` that have no code of their own and are inlined
/// into at least one function of `patched` (symbol names; GCC's clones,
/// `f.isra.0`, count as their function). Empty without debug
/// information, or when it cannot be read.
pub fn inlined_into(obj: &ObjectFile, patched: &[String]) -> Vec<InlineOnly> {
    inlined(obj, patched, false)
}

/// [`inlined_into`], and also the functions of `patched` that have code
/// of their own and are inlined into other functions of `patched` (a
/// curl trial: "patched is_dot, parseurl_and_replace" did not say that
/// the second was patched for the first, inlined in it, where an inline
/// function's edit was said so).
pub fn inlined_into_with_patched(obj: &ObjectFile, patched: &[String]) -> Vec<InlineOnly> {
    inlined(obj, patched, true)
}

fn inlined(obj: &ObjectFile, patched: &[String], also_patched: bool) -> Vec<InlineOnly> {
    if patched.is_empty() {
        return Vec::new();
    }
    let wanted: foldhash::HashSet<String> = patched.iter().map(|p| crate::names::parse(p).base).collect();
    with_dwarf(obj, |dwarf| {
        let mut out = Vec::new();
        let mut units = dwarf.units();
        while let Some(header) = units.next()? {
            let unit = dwarf.unit(header)?;
            out.extend(in_unit(dwarf, &unit, patched, &wanted, also_patched)?);
        }
        Ok(out)
    })
    .unwrap_or_default()
}

/// For each function of `hosts` (symbol names), the functions of
/// `patched` whose code its own inlines (any depth; itself aside), by
/// symbol as given. A running call of a host runs their old code inlined
/// until it returns, however their own entries are redirected (a Lua
/// trial: an edit of `luaV_idiv`, also inlined into the `luaV_execute`
/// call the script's loop runs in for good, was said patched with a note
/// on `luaV_execute` that did not say the edit was why). Hosts with none
/// are left out; empty without debug information.
pub fn patched_inlined_in(obj: &ObjectFile, hosts: &[String], patched: &[String]) -> Vec<(String, Vec<String>)> {
    if hosts.is_empty() || patched.is_empty() {
        return Vec::new();
    }
    with_dwarf(obj, |dwarf| inlined_in_dwarf(dwarf, hosts, patched)).unwrap_or_default()
}

/// [`patched_inlined_in`] of a linked image's DWARF (`data`: a patch's
/// symbol file, whose code is the patch's).
pub fn patched_inlined_in_image(data: &[u8], hosts: &[String], patched: &[String]) -> Vec<(String, Vec<String>)> {
    if hosts.is_empty() || patched.is_empty() {
        return Vec::new();
    }
    crate::signature::with_image_dwarf(data, |dwarf| inlined_in_dwarf(dwarf, hosts, patched)).unwrap_or_default()
}

/// Adds to `found` (each host with the functions it inlines) that `host`
/// inlines `inlined`, each function named once.
pub(crate) fn add_inlined(found: &mut Vec<(String, Vec<String>)>, host: String, inlined: Vec<String>) {
    match found.iter_mut().find(|(h, _)| *h == host) {
        Some((_, list)) => {
            let more: Vec<String> = inlined.into_iter().filter(|n| !list.contains(n)).collect();
            list.extend(more);
        }
        None => found.push((host, inlined)),
    }
}

fn inlined_in_dwarf(
    dwarf: &gimli::Dwarf<Reader>,
    hosts: &[String],
    patched: &[String],
) -> Result<Vec<(String, Vec<String>)>, gimli::Error> {
    let base = |p: &String| crate::names::parse(p).base;
    let host_bases: foldhash::HashSet<String> = hosts.iter().map(base).collect();
    // Not GCC's split-off body of a function (`f.part.0`): a host with `f`
    // inlined has its head, which calls that part (a Lua trial:
    // `luaV_execute` was said to run the old `luaV_concat.part.0`, which
    // it calls).
    let split_off = |p: &String| crate::names::parse(p).clones.iter().any(|c| c == "part");
    let patched_by_base: Vec<(String, &String)> =
        patched.iter().filter(|p| !split_off(p)).map(|p| (base(p), p)).collect();
    let mut found: Vec<(String, Vec<String>)> = Vec::new();
    let mut units = dwarf.units();
    while let Some(header) = units.next()? {
        let unit = dwarf.unit(header)?;
        let subprograms = top_level_subprograms(dwarf, &unit)?;
        let names = Names::of(&subprograms);
        for s in subprograms.iter().filter(|s| s.code) {
            let Some(name) = names.of_subprogram(s).filter(|n| host_bases.contains(n)) else {
                continue;
            };
            let inlined: Vec<&str> = inlined_origins(&unit, s.offset)?
                .iter()
                .filter_map(|o| names.at(o))
                .filter(|n| *n != name)
                .collect();
            let hit: Vec<String> = patched_by_base
                .iter()
                .filter(|(b, _)| inlined.contains(&b.as_str()))
                .map(|(_, p)| (*p).clone())
                .collect();
            if hit.is_empty() {
                continue;
            }
            for host in hosts.iter().filter(|h| base(h) == name) {
                add_inlined(&mut found, host.clone(), hit.clone());
            }
        }
    }
    Ok(found)
}

fn in_unit(
    dwarf: &gimli::Dwarf<Reader>,
    unit: &gimli::Unit<Reader>,
    patched: &[String],
    wanted: &foldhash::HashSet<String>,
    also_patched: bool,
) -> Result<Vec<InlineOnly>, gimli::Error> {
    let subprograms = top_level_subprograms(dwarf, unit)?;
    let names = Names::of(&subprograms);
    let name_of = |s: &Subprogram| names.of_subprogram(s);
    let with_code: foldhash::HashSet<String> = subprograms.iter().filter(|s| s.code).filter_map(name_of).collect();
    // Abstract instances of functions with no code anywhere in the unit
    // (and, `also_patched`, of patched ones).
    let inline_only: foldhash::HashMap<UnitOffset, &Subprogram> = subprograms
        .iter()
        .filter(|s| s.abstract_instance && (!s.code || also_patched))
        .filter(|s| {
            s.name
                .as_ref()
                .is_some_and(|n| !with_code.contains(n) || (also_patched && wanted.contains(n)))
        })
        .map(|s| (s.offset, s))
        .collect();
    if inline_only.is_empty() {
        return Ok(Vec::new());
    }
    // Which of them each patched function's code inlines, at any depth.
    let mut into: foldhash::HashMap<UnitOffset, Vec<String>> = foldhash::HashMap::default();
    for s in subprograms.iter().filter(|s| s.code) {
        let Some(name) = name_of(s).filter(|n| wanted.contains(n)) else {
            continue;
        };
        let symbols = patched.iter().filter(|p| crate::names::parse(p).base == name);
        let origins = inlined_origins(unit, s.offset)?;
        for symbol in symbols {
            // Not itself (a recursive function inlines itself).
            let other = |o: &&UnitOffset| {
                inline_only
                    .get(*o)
                    .is_some_and(|c| c.name.as_deref() != Some(name.as_str()))
            };
            for origin in origins.iter().filter(other) {
                let list = into.entry(*origin).or_default();
                if !list.contains(symbol) {
                    list.push(symbol.clone());
                }
            }
        }
    }
    let mut out = Vec::new();
    for (offset, into) in into {
        let s = inline_only[&offset];
        let (Some(name), Some(file), Some(line)) = (s.name.clone(), s.file, s.line) else {
            continue;
        };
        let Some(file) = file_path(dwarf, unit, file)? else {
            continue;
        };
        out.push(InlineOnly { name, file, line, into });
    }
    out.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
    Ok(out)
}

/// A unit's top-level subprograms' names, by their entries' offsets.
struct Names<'s>(foldhash::HashMap<UnitOffset, &'s str>);

impl<'s> Names<'s> {
    fn of(subprograms: &'s [Subprogram]) -> Names<'s> {
        Names(
            subprograms
                .iter()
                .filter_map(|s| Some((s.offset, s.name.as_deref()?)))
                .collect(),
        )
    }

    /// The name of the subprogram at `offset`, if it has one.
    fn at(&self, offset: &UnitOffset) -> Option<&'s str> {
        self.0.get(offset).copied()
    }

    /// `s`'s own name, else its origin's (a concrete instance: an
    /// out-of-line copy or a clone of an inline function).
    fn of_subprogram(&self, s: &Subprogram) -> Option<String> {
        s.name
            .clone()
            .or_else(|| s.origin.and_then(|o| self.at(&o)).map(str::to_string))
    }
}

/// The unit's top-level subprograms (their children stepped over).
fn top_level_subprograms(
    dwarf: &gimli::Dwarf<Reader>,
    unit: &gimli::Unit<Reader>,
) -> Result<Vec<Subprogram>, gimli::Error> {
    let mut out = Vec::new();
    let mut tree = unit.entries_tree(None)?;
    let root = tree.root()?;
    let mut children = root.children();
    while let Some(child) = children.next()? {
        let entry = child.entry();
        if entry.tag() != gimli::DW_TAG_subprogram {
            continue;
        }
        let mut s = Subprogram {
            offset: entry.offset(),
            name: None,
            file: None,
            line: None,
            code: false,
            abstract_instance: false,
            origin: None,
        };
        let mut attrs = entry.attrs();
        while let Some(attr) = attrs.next()? {
            match attr.name() {
                gimli::DW_AT_name => {
                    s.name = Some(dwarf.attr_string(unit, attr.value())?.to_string_lossy()?.into_owned());
                }
                gimli::DW_AT_decl_file => {
                    s.file = match attr.value() {
                        AttributeValue::FileIndex(i) => Some(i),
                        other => other.udata_value(),
                    }
                }
                gimli::DW_AT_decl_line => s.line = attr.udata_value(),
                gimli::DW_AT_low_pc | gimli::DW_AT_ranges => s.code = true,
                gimli::DW_AT_inline => s.abstract_instance = true,
                gimli::DW_AT_abstract_origin | gimli::DW_AT_specification => {
                    if let AttributeValue::UnitRef(o) = attr.value() {
                        s.origin = Some(o);
                    }
                }
                _ => {}
            }
        }
        out.push(s);
    }
    Ok(out)
}

/// The abstract origins of every `DW_TAG_inlined_subroutine` in the
/// entries of the subprogram at `offset`, at any depth.
fn inlined_origins(unit: &gimli::Unit<Reader>, offset: UnitOffset) -> Result<Vec<UnitOffset>, gimli::Error> {
    let mut out = Vec::new();
    let mut cursor = unit.entries_at_offset(offset)?;
    // The subprogram itself, then its entries until the depth comes back.
    let Some((_, _)) = cursor.next_dfs()? else {
        return Ok(out);
    };
    let mut depth = 0isize;
    while let Some((delta, entry)) = cursor.next_dfs()? {
        depth += delta;
        if depth <= 0 {
            break;
        }
        if entry.tag() == gimli::DW_TAG_inlined_subroutine {
            if let Some(AttributeValue::UnitRef(o)) = entry.attr_value(gimli::DW_AT_abstract_origin)? {
                if !out.contains(&o) {
                    out.push(o);
                }
            }
        }
    }
    Ok(out)
}

/// The path of file `index` of the unit's line table: its name, joined
/// to its directory and the compile's directory when relative.
fn file_path(
    dwarf: &gimli::Dwarf<Reader>,
    unit: &gimli::Unit<Reader>,
    index: u64,
) -> Result<Option<PathBuf>, gimli::Error> {
    let Some(program) = unit.line_program.as_ref() else {
        return Ok(None);
    };
    let header = program.header();
    let Some(file) = header.file(index) else {
        return Ok(None);
    };
    let text = |value: AttributeValue<Reader>| -> Result<String, gimli::Error> {
        Ok(dwarf.attr_string(unit, value)?.to_string_lossy()?.into_owned())
    };
    let mut path = PathBuf::new();
    if let Some(dir) = unit.comp_dir.as_ref() {
        path.push(dir.to_string_lossy()?.as_ref());
    }
    if let Some(dir) = file.directory(header) {
        path.push(text(dir)?);
    }
    path.push(text(file.path_name())?);
    Ok(Some(path))
}

/// `path` resolved (links and `..` followed), or as written when it
/// cannot be: what two names of one file are compared by.
pub fn resolved(path: &Path) -> PathBuf {
    path.canonicalize().unwrap_or_else(|_| path.to_path_buf())
}
