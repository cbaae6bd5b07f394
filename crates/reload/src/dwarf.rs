//! What a program's DWARF says about how each translation unit was
//! compiled: its source and directory, the producer string (GCC's
//! code-generation options), the macros defined on the command line
//! (`.debug_macro`/`.debug_macinfo`, present with `-g3`) and the
//! directories its headers came from (the line table).
//!
//! Neither GCC nor clang records `-D` or `-I` in the producer string, so
//! without `-g3` or a compilation database a recompile misses them; these
//! are the facts that let relive recover them.

use gimli::{EndianSlice, LittleEndian, SectionId};
use object::{Object, ObjectSection};

type Reader<'a> = EndianSlice<'a, LittleEndian>;

/// One compile unit's build facts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnitFacts {
    /// `DW_AT_name`: the source as the compiler was given it.
    pub name: String,
    /// `DW_AT_comp_dir`: where the compiler ran.
    pub dir: Option<String>,
    pub producer: Option<String>,
    /// Macros defined or undefined before the first line of the source
    /// (line 0, outside any file): the compiler's predefined macros and
    /// the command line's `-D`/`-U`, in order. Empty without `-g3`.
    pub line0_macros: Vec<MacroChange>,
    /// Whether the unit has macro information at all (`-g3`).
    pub has_macros: bool,
    /// The line table's include directories (absolute, or relative to
    /// `dir`), in table order.
    pub include_dirs: Vec<String>,
    /// The line table's files (the source and the headers its code came
    /// from), each absolute or relative to `dir`, in table order.
    pub files: Vec<String>,
}

/// A `#define` or `#undef` as DWARF records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MacroChange {
    /// `NAME VALUE` or `NAME(ARGS) BODY`.
    Define(String),
    Undef(String),
}

impl MacroChange {
    /// The compiler option that makes this change: `-DNAME=VALUE`,
    /// `-DF(x)=BODY`, `-UNAME`.
    pub fn option(&self) -> String {
        match self {
            MacroChange::Undef(name) => format!("-U{name}"),
            MacroChange::Define(text) => {
                // The name ends at the first space, or after the closing
                // parenthesis of a function-like macro's parameters.
                let end = match (text.find('('), text.find(' ')) {
                    (Some(p), space) if space.is_none_or(|s| p < s) => {
                        text[p..].find(')').map_or(text.len(), |c| p + c + 1)
                    }
                    (_, Some(s)) => s,
                    (_, None) => text.len(),
                };
                let (name, rest) = text.split_at(end);
                format!("-D{name}={}", rest.strip_prefix(' ').unwrap_or(rest))
            }
        }
    }

    /// The macro's name.
    pub fn name(&self) -> &str {
        match self {
            MacroChange::Undef(name) => name,
            MacroChange::Define(text) => {
                let end = text.find(['(', ' ']).unwrap_or(text.len());
                &text[..end]
            }
        }
    }
}

/// Every compile unit of a linked image's DWARF; empty when it has none.
/// Units that cannot be read are skipped.
pub fn units(data: &[u8]) -> Vec<UnitFacts> {
    let Ok(file) = object::File::parse(data) else {
        return Vec::new();
    };
    let section = |id: SectionId| -> Result<Reader<'_>, gimli::Error> {
        let bytes = file
            .section_by_name(id.name())
            .and_then(|s| s.data().ok())
            .unwrap_or(&[]);
        Ok(EndianSlice::new(bytes, LittleEndian))
    };
    let Ok(dwarf) = gimli::Dwarf::load(section) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut headers = dwarf.units();
    while let Ok(Some(header)) = headers.next() {
        let Ok(unit) = dwarf.unit(header) else { continue };
        if let Some(facts) = unit_facts(&dwarf, &unit) {
            out.push(facts);
        }
    }
    out
}

fn unit_facts(dwarf: &gimli::Dwarf<Reader<'_>>, unit: &gimli::Unit<Reader<'_>>) -> Option<UnitFacts> {
    let mut entries = unit.entries();
    let (_, root) = entries.next_dfs().ok()??;
    let text = |at| -> Option<String> {
        let value = root.attr_value(at).ok()??;
        Some(dwarf.attr_string(unit, value).ok()?.to_string_lossy().into_owned())
    };
    let mut facts = UnitFacts {
        name: text(gimli::DW_AT_name)?,
        dir: text(gimli::DW_AT_comp_dir),
        producer: text(gimli::DW_AT_producer),
        ..UnitFacts::default()
    };
    let unit_ref = gimli::UnitRef::new(dwarf, unit);
    let macros = match root.attr_value(gimli::DW_AT_macros).ok().flatten() {
        Some(gimli::AttributeValue::DebugMacroRef(offset)) => dwarf.macros(offset).ok(),
        _ => match root.attr_value(gimli::DW_AT_GNU_macros).ok().flatten() {
            Some(gimli::AttributeValue::DebugMacroRef(offset)) => dwarf.macros(offset).ok(),
            _ => match root.attr_value(gimli::DW_AT_macro_info).ok().flatten() {
                Some(gimli::AttributeValue::DebugMacinfoRef(offset)) => dwarf.macinfo(offset).ok(),
                _ => None,
            },
        },
    };
    if let Some(list) = macros {
        facts.has_macros = true;
        facts.line0_macros = line0_macros(dwarf, unit_ref, list);
    }
    if let Some(program) = &unit.line_program {
        let header = program.header();
        for dir in header.include_directories() {
            if let Ok(s) = dwarf.attr_string(unit, *dir) {
                facts.include_dirs.push(s.to_string_lossy().into_owned());
            }
        }
        let text = |value| {
            dwarf
                .attr_string(unit, value)
                .ok()
                .map(|s| s.to_string_lossy().into_owned())
        };
        for file in header.file_names() {
            let Some(name) = text(file.path_name()) else { continue };
            let path = match file.directory(header).and_then(text) {
                Some(dir) if !name.starts_with('/') => format!("{dir}/{name}"),
                _ => name,
            };
            facts.files.push(path);
        }
    }
    Some(facts)
}

/// The line-0 entries outside every file (GCC puts them first, in an
/// imported unit; clang after the main file's end), following imports
/// made there one level.
fn line0_macros<'a>(
    dwarf: &gimli::Dwarf<Reader<'a>>,
    unit: gimli::UnitRef<'_, Reader<'a>>,
    mut list: gimli::MacroIter<Reader<'a>>,
) -> Vec<MacroChange> {
    let mut out = Vec::new();
    let mut depth = 0usize;
    // A hostile or damaged list ends the walk, never loops: each entry is
    // read once and imports are followed one level.
    while let Ok(Some(entry)) = list.next() {
        match &entry {
            gimli::MacroEntry::StartFile { .. } => depth += 1,
            gimli::MacroEntry::EndFile => depth = depth.saturating_sub(1),
            gimli::MacroEntry::Import { offset } if depth == 0 => {
                if let Ok(mut imported) = dwarf.macros(*offset) {
                    while let Ok(Some(e)) = imported.next() {
                        if matches!(e, gimli::MacroEntry::StartFile { .. }) {
                            break;
                        }
                        out.extend(line0(unit, &e));
                    }
                }
            }
            e if depth == 0 => out.extend(line0(unit, e)),
            _ => {}
        }
    }
    out
}

/// A `#define`/`#undef` at line 0.
fn line0<'a>(unit: gimli::UnitRef<'_, Reader<'a>>, entry: &gimli::MacroEntry<Reader<'a>>) -> Option<MacroChange> {
    let string = |s: &gimli::MacroString<Reader<'a>>| s.string(unit).ok().map(|r| r.to_string_lossy().into_owned());
    match entry {
        gimli::MacroEntry::Define { line: 0, text } => string(text).map(MacroChange::Define),
        gimli::MacroEntry::Undef { line: 0, name } => string(name).map(MacroChange::Undef),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macro_options() {
        let d = |t: &str| MacroChange::Define(t.to_string());
        assert_eq!(d("MODE 2").option(), "-DMODE=2");
        assert_eq!(d("NAME \"a b\"").option(), "-DNAME=\"a b\"");
        assert_eq!(d("EMPTY ").option(), "-DEMPTY=");
        assert_eq!(d("F(x,y) ((x)+(y))").option(), "-DF(x,y)=((x)+(y))");
        assert_eq!(d("F(x,y) ((x)+(y))").name(), "F");
        assert_eq!(MacroChange::Undef("FOO".into()).option(), "-UFOO");
        assert_eq!(d("FAST 1").name(), "FAST");
    }
}
