//! Which source files a program was built from, and with what flags: the
//! compile units in its DWARF (`DW_AT_name` under `DW_AT_comp_dir`, and
//! GCC's `DW_AT_producer`, which records the code-generation options).

use std::path::{Path, PathBuf};

use gimli::{EndianSlice, LittleEndian, SectionId};
use object::{Object, ObjectSection};

/// One translation unit of the program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    /// The source file, absolute.
    pub source: PathBuf,
    /// The directory it was compiled in.
    pub dir: PathBuf,
    /// `gcc`, `clang` or `cc`, from the producer string.
    pub compiler: String,
    /// Options the producer string records (`-O2`, `-g`, `-fno-pie`, …).
    pub flags: Vec<String>,
}

impl Unit {
    /// The compile command (without `-c`, `-o` and the source).
    pub fn command(&self) -> Vec<String> {
        let mut cmd = vec![self.compiler.clone()];
        cmd.extend(self.flags.iter().cloned());
        cmd
    }
}

/// Parses a producer string: `GNU C17 12.2.0 -mtune=generic -O2 -g` gives
/// (`gcc`, [`-mtune=generic`, `-O2`, `-g`]).
pub fn parse_producer(producer: &str) -> (String, Vec<String>) {
    let compiler = if producer.starts_with("GNU") {
        "gcc"
    } else if producer.contains("clang") {
        "clang"
    } else {
        "cc"
    };
    let flags = producer
        .split_whitespace()
        .filter(|w| w.starts_with('-'))
        .map(str::to_string)
        .collect();
    (compiler.to_string(), flags)
}

/// The program's C compile units whose sources exist on disk.
pub fn units(exe: &Path) -> Result<Vec<Unit>, String> {
    let data = std::fs::read(exe).map_err(|e| format!("{}: {e}", exe.display()))?;
    let file = object::File::parse(&*data).map_err(|e| format!("{}: {e}", exe.display()))?;
    let section = |id: SectionId| -> Result<EndianSlice<'_, LittleEndian>, gimli::Error> {
        let bytes = file
            .section_by_name(id.name())
            .and_then(|s| s.data().ok())
            .unwrap_or(&[]);
        Ok(EndianSlice::new(bytes, LittleEndian))
    };
    let dwarf = gimli::Dwarf::load(section).map_err(|e| e.to_string())?;
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
            Some(dwarf.attr_string(&unit, value).ok()?.to_string_lossy().into_owned())
        };
        let (Some(name), Some(dir)) = (text(gimli::DW_AT_name), text(gimli::DW_AT_comp_dir)) else {
            continue;
        };
        let dir = PathBuf::from(dir);
        let source = dir.join(&name);
        if source.extension().is_none_or(|e| e != "c") || !source.is_file() {
            continue;
        }
        let (compiler, flags) = parse_producer(&text(gimli::DW_AT_producer).unwrap_or_default());
        out.push(Unit {
            source,
            dir,
            compiler,
            flags,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn producers() {
        let (cc, flags) = parse_producer("GNU C17 12.2.0 -mtune=generic -march=x86-64 -g -O2 -fno-pie");
        assert_eq!(cc, "gcc");
        assert_eq!(flags, ["-mtune=generic", "-march=x86-64", "-g", "-O2", "-fno-pie"]);
        assert_eq!(parse_producer("Debian clang version 14.0.6").0, "clang");
    }
}
