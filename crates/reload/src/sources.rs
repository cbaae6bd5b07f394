//! Which source files a program was built from, and with what flags: the
//! compile units in its DWARF (`DW_AT_name` under `DW_AT_comp_dir`, and
//! GCC's `DW_AT_producer`, which records the code-generation options).

use std::path::{Path, PathBuf};

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
    object::File::parse(&*data).map_err(|e| format!("{}: {e}", exe.display()))?;
    let mut out = Vec::new();
    for unit in relive_patch::origin::image_units(&data).unwrap_or_default() {
        let Some(dir) = unit.dir else { continue };
        let dir = PathBuf::from(dir);
        let source = dir.join(&unit.name);
        if source.extension().is_none_or(|e| e != "c") || !source.is_file() {
            continue;
        }
        let (compiler, flags) = parse_producer(unit.producer.as_deref().unwrap_or_default());
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

/// The compile command for `source` from a `compile_commands.json` found
/// in its directory or above: the compiler and flags, without `-c`, `-o
/// FILE` and the source itself.
pub fn from_compile_commands(source: &Path) -> Option<Vec<String>> {
    let source = std::path::absolute(source).ok()?;
    let mut dir = source.parent();
    while let Some(d) = dir {
        let db = d.join("compile_commands.json");
        if let Ok(text) = std::fs::read_to_string(&db) {
            if let Some(cmd) = command_in(&text, &source) {
                return Some(cmd);
            }
        }
        dir = d.parent();
    }
    None
}

/// Finds `source` in a compilation database's text.
fn command_in(text: &str, source: &Path) -> Option<Vec<String>> {
    let entries: Vec<serde_json::Value> = serde_json::from_str(text).ok()?;
    let entry = entries.iter().find(|e| {
        let dir = PathBuf::from(e["directory"].as_str().unwrap_or(""));
        let file = PathBuf::from(e["file"].as_str().unwrap_or(""));
        std::path::absolute(dir.join(file)).ok().as_deref() == Some(source)
    })?;
    let args: Vec<String> = match entry["arguments"].as_array() {
        Some(a) => a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect(),
        None => split_command(entry["command"].as_str()?),
    };
    let file = entry["file"].as_str().unwrap_or("");
    let mut out = Vec::new();
    let mut skip_next = false;
    for a in args {
        if skip_next {
            skip_next = false;
            continue;
        }
        if a == "-o" {
            skip_next = true;
            continue;
        }
        if a == "-c" || a == file || Path::new(&a) == source {
            continue;
        }
        out.push(a);
    }
    (!out.is_empty()).then_some(out)
}

/// Splits a shell command line: whitespace separates words; single and
/// double quotes group; a backslash escapes the next character.
fn split_command(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('"'), '\\') | (None, '\\') => {
                if let Some(n) = chars.next() {
                    word.push(n);
                }
                in_word = true;
            }
            (Some(_), c) => word.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (None, c) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

#[cfg(test)]
mod database_tests {
    use super::*;

    #[test]
    fn commands_and_arguments() {
        assert_eq!(
            split_command(r#"gcc -DMSG="a b" -I'x y' -O2 a\ b.c"#),
            ["gcc", "-DMSG=a b", "-Ix y", "-O2", "a b.c"]
        );
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        std::fs::create_dir(&src).unwrap();
        let file = src.join("app.c");
        std::fs::write(&file, "").unwrap();
        let db = serde_json::json!([
            {"directory": dir.path(), "file": "other.c", "command": "cc -c other.c"},
            {"directory": dir.path(), "file": "src/app.c", "command": "gcc -O2 -DVALUE=5 -c src/app.c -o build/app.o"}
        ]);
        std::fs::write(dir.path().join("compile_commands.json"), db.to_string()).unwrap();
        assert_eq!(from_compile_commands(&file).unwrap(), ["gcc", "-O2", "-DVALUE=5"]);
        let db = serde_json::json!([
            {"directory": src, "file": "app.c", "arguments": ["clang", "-g", "-c", "app.c", "-o", "app.o"]}
        ]);
        std::fs::write(src.join("compile_commands.json"), db.to_string()).unwrap();
        assert_eq!(from_compile_commands(&file).unwrap(), ["clang", "-g"]);
        assert_eq!(from_compile_commands(&dir.path().join("none.c")), None);
    }
}
