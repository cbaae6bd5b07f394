//! Is a patch built from the running program's source? An object compiled
//! from another program's file links just as well (its calls resolve to
//! whatever the program happens to define) and replaces same-named
//! functions with foreign code, silently. The object's source file (its
//! DWARF compile unit: `DW_AT_comp_dir`/`DW_AT_name`, else its `STT_FILE`)
//! is looked for among the compile units of the program's DWARF (and its
//! libraries').

use std::path::{Component, Path, PathBuf};

use gimli::{EndianSlice, LittleEndian, SectionId};
use object::{Object, ObjectSection};
use relive_process::modules::ProcessModules;

use crate::objfile::ObjectFile;
use crate::signature;

/// One compile unit's root: its source (`DW_AT_name`), directory
/// (`DW_AT_comp_dir`) and `DW_AT_producer`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileUnit {
    pub name: String,
    pub dir: Option<String>,
    pub producer: Option<String>,
}

impl CompileUnit {
    /// The source file: `name` under `dir`, `.` and `..` resolved.
    pub fn source(&self) -> PathBuf {
        let joined = match &self.dir {
            Some(dir) => Path::new(dir).join(&self.name),
            None => PathBuf::from(&self.name),
        };
        normalize(&joined)
    }
}

/// `path` with `.` and `..` resolved lexically (the file may not exist).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    out
}

/// The compile units of a linked image's DWARF; `None` when it has no
/// `.debug_info` (or is not a file `object` reads).
pub fn image_units(data: &[u8]) -> Option<Vec<CompileUnit>> {
    let file = object::File::parse(data).ok()?;
    let info = file.section_by_name(".debug_info")?;
    if info.size() == 0 {
        return None;
    }
    let section = |id: SectionId| -> Result<EndianSlice<'_, LittleEndian>, gimli::Error> {
        let bytes = file
            .section_by_name(id.name())
            .and_then(|s| s.data().ok())
            .unwrap_or(&[]);
        Ok(EndianSlice::new(bytes, LittleEndian))
    };
    let dwarf = gimli::Dwarf::load(section).ok()?;
    Some(units_of(&dwarf))
}

/// Every unit's root attributes; units that cannot be read are skipped.
fn units_of<R: gimli::Reader<Offset = usize>>(dwarf: &gimli::Dwarf<R>) -> Vec<CompileUnit> {
    let mut out = Vec::new();
    let mut headers = dwarf.units();
    while let Ok(Some(header)) = headers.next() {
        let Ok(unit) = dwarf.unit(header) else { continue };
        let mut entries = unit.entries();
        let Ok(Some((_, root))) = entries.next_dfs() else {
            continue;
        };
        let text = |at| -> Option<String> {
            let value = root.attr_value(at).ok()??;
            Some(
                dwarf
                    .attr_string(&unit, value)
                    .ok()?
                    .to_string_lossy()
                    .ok()?
                    .into_owned(),
            )
        };
        let Some(name) = text(gimli::DW_AT_name) else { continue };
        out.push(CompileUnit {
            name,
            dir: text(gimli::DW_AT_comp_dir),
            producer: text(gimli::DW_AT_producer),
        });
    }
    out
}

/// The object's source file: its first compile unit, else its `STT_FILE`
/// name (a bare file name, directory unknown).
pub fn object_source(obj: &ObjectFile) -> Option<CompileUnit> {
    let from_dwarf = signature::with_dwarf(obj, |dwarf| Ok(units_of(dwarf).into_iter().next())).ok()?;
    from_dwarf.or_else(|| {
        obj.source.clone().map(|name| CompileUnit {
            name,
            dir: None,
            producer: None,
        })
    })
}

/// What [`check`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A compile unit of the program (or a library) is the object's source.
    Matches,
    /// A unit has the object's file name, but was compiled elsewhere (the
    /// tree was moved or copied): probably right, worth a word.
    SameName {
        object: PathBuf,
        unit: PathBuf,
        module: String,
    },
    /// The program has debug information and none of its units (nor a
    /// library's) is the object's source.
    Foreign {
        object: PathBuf,
        program: String,
        units: usize,
        examples: Vec<PathBuf>,
    },
    /// A compile unit is the object's source, but the object was compiled
    /// at another optimisation level than the unit records (`-O0` for an
    /// `-O2` build): the patch's code is not what a build of the edit
    /// would run, and whatever it brings along differs from the program's.
    OtherLevel {
        object: PathBuf,
        ours: String,
        built: String,
    },
    /// Nothing to compare with: why.
    Unchecked(String),
}

/// The optimisation level compiler options `words` ask for: the last `-O`
/// option, as GCC and clang read them (`-O` is `-O1`); `None` when there
/// is none. Of a GCC producer string's words (`GNU C17 12.2.0
/// -mtune=generic -g -O2`), the level it records (clang's records none,
/// without `-grecord-command-line`).
pub fn optimisation<'w>(words: impl DoubleEndedIterator<Item = &'w str>) -> Option<&'w str> {
    match words.rev().find(|w| w.starts_with("-O"))? {
        "-O" => Some("-O1"),
        level => Some(level),
    }
}

impl Verdict {
    /// What to tell the user, for `obj` (the patch's path): `None` when
    /// it matches.
    /// For [`Verdict::Foreign`], the fact alone: which source the object
    /// was compiled from, and that no compile unit of the program is it
    /// (what `verify` says above the differences it explains).
    pub fn not_a_source(&self, obj: &str, pid: u32) -> Option<String> {
        let Verdict::Foreign {
            object,
            program,
            units,
            examples,
        } = self
        else {
            return None;
        };
        Some(format!(
            "{obj} was compiled from {}, which is not a source of process {pid}'s program {program}: none of its {units} compile units is (they include {})",
            object.display(),
            examples.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
        ))
    }

    pub fn message(&self, obj: &str, pid: u32) -> Option<String> {
        Some(match self {
            Verdict::Matches => return None,
            Verdict::SameName { object, unit, module } => format!(
                "{obj} was compiled from {}, but {module} was built from {} (same file name, another directory)",
                object.display(),
                unit.display()
            ),
            Verdict::Foreign { .. } => format!(
                "{}. It is probably another program's code; build the patch from the program's own source (a copy of one of its files compiled under another name counts as that file with that file's last object as --base), or pass --force if this is intended",
                self.not_a_source(obj, pid)?
            ),
            Verdict::OtherLevel { object, ours, built } => format!(
                "{obj} was compiled with {ours}, but the program's debug info says {} was built with {built}: the patched code is not what a build of the edit runs; compile it with the build's flags",
                object.display()
            ),
            Verdict::Unchecked(why) => format!("cannot check that {obj} is compiled from the program's source: {why}"),
        })
    }
}

/// How many unit sources a refusal lists.
const EXAMPLES: usize = 4;

/// Whether `obj` was compiled from a source file of the process's program
/// or libraries.
pub fn check(obj: &ObjectFile, modules: &ProcessModules) -> Verdict {
    let program = modules.main.module.path.clone();
    let Some(source) = object_source(obj) else {
        return Verdict::Unchecked("it records no source file (no DWARF, no STT_FILE)".into());
    };
    let file_name = |p: &Path| p.file_name().map(|n| n.to_owned());
    let wanted = source.source();
    let mut program_units = None;
    let mut same_name = None;
    for (i, m) in modules.all().enumerate() {
        let Some(units) = m.image.as_ref().and_then(|image| image_units(image.data())) else {
            continue;
        };
        for unit in &units {
            let have = unit.source();
            // Without a directory (STT_FILE only) the file name is all
            // there is to compare.
            if have == wanted || (source.dir.is_none() && file_name(&have) == file_name(&wanted)) {
                let levels = source
                    .producer
                    .as_deref()
                    .and_then(|p| optimisation(p.split_whitespace()))
                    .zip(
                        unit.producer
                            .as_deref()
                            .and_then(|p| optimisation(p.split_whitespace())),
                    );
                return match levels {
                    Some((ours, built)) if ours != built => Verdict::OtherLevel {
                        object: wanted,
                        ours: ours.to_string(),
                        built: built.to_string(),
                    },
                    _ => Verdict::Matches,
                };
            }
            if same_name.is_none() && file_name(&have) == file_name(&wanted) {
                same_name = Some((have, m.module.path.clone()));
            }
        }
        if i == 0 {
            program_units = Some(units);
        }
    }
    if let Some((unit, module)) = same_name {
        return Verdict::SameName {
            object: wanted,
            unit,
            module,
        };
    }
    match program_units {
        Some(units) if !units.is_empty() => Verdict::Foreign {
            object: wanted,
            program,
            units: units.len(),
            examples: units.iter().take(EXAMPLES).map(CompileUnit::source).collect(),
        },
        _ => Verdict::Unchecked(format!(
            "the program {program} has no debug information (build it with -g to have relive check)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_joined_and_normalized() {
        let unit = |name: &str, dir: Option<&str>| CompileUnit {
            name: name.into(),
            dir: dir.map(str::to_string),
            producer: None,
        };
        assert_eq!(unit("app.c", Some("/src")).source(), PathBuf::from("/src/app.c"));
        assert_eq!(
            unit("../lib/./x.c", Some("/src/build")).source(),
            PathBuf::from("/src/lib/x.c")
        );
        assert_eq!(unit("/abs/y.c", Some("/src")).source(), PathBuf::from("/abs/y.c"));
        assert_eq!(unit("z.c", None).source(), PathBuf::from("z.c"));
    }
}
