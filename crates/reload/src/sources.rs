//! Which source files a program was built from, and with what flags: the
//! compile units in its DWARF (`DW_AT_name` under `DW_AT_comp_dir`, GCC's
//! `DW_AT_producer`, which records the code-generation options, and with
//! `-g3` the command line's macros), or a `compile_commands.json`.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};

use crate::compdb::{self, normalize};
use crate::dwarf::{self, MacroChange};

/// How to compile one translation unit the way the build did: in `dir`,
/// `args` then `file` (as the build spelled it, so `__FILE__` and the
/// debug info name it alike).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileCommand {
    /// The compiler and its options, without `-c`, `-o FILE` and the source.
    pub args: Vec<String>,
    pub dir: PathBuf,
    /// The source as given to the compiler (relative to `dir`, or absolute).
    pub file: PathBuf,
    /// Where the command came from, for messages: `--cc`,
    /// `compile_commands.json`, `debug info`, `guessed`, `default`.
    pub origin: &'static str,
    /// Whether these are known to be all of the build's options (given,
    /// recorded from the build, or read from debug info that records
    /// macros too), so a difference from the running code is an edit, not
    /// a missing option.
    pub complete: bool,
    /// Why this command is known not to compile the running code (another
    /// `-O` level than the one the debug info records), when it is: what
    /// refusals say instead of guessing at missing options.
    pub unlike_build: Option<String>,
}

impl CompileCommand {
    /// `args` compiling `source` in its own directory.
    pub fn plain(args: Vec<String>, source: &Path, origin: &'static str) -> CompileCommand {
        CompileCommand {
            args,
            dir: source
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(Path::new("."))
                .to_path_buf(),
            file: source
                .file_name()
                .map(PathBuf::from)
                .unwrap_or_else(|| source.to_path_buf()),
            origin,
            complete: origin == "--cc",
            unlike_build: None,
        }
    }

    /// What to do when this command's compile differs from the running
    /// code: the known reason when there is one, else the usual ones.
    pub fn fix(&self) -> String {
        match &self.unlike_build {
            Some(why) => format!(
                "{why}, so it cannot compile the running code: fix the compile command (give --cc the build's options, or record the build's commands with `relive build -- make`)"
            ),
            None => crate::FIX_FLAGS.to_string(),
        }
    }

    /// The whole command line, for `--verbose` and messages.
    pub fn display(&self) -> String {
        let mut words: Vec<String> = self.args.clone();
        words.extend(["-c".to_string(), self.file.display().to_string()]);
        format!(
            "(cd {} && {})",
            self.dir.display(),
            shlex::try_join(words.iter().map(String::as_str)).unwrap_or_else(|_| words.join(" "))
        )
    }
}

/// One translation unit of the program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    /// The source file, absolute.
    pub source: PathBuf,
    /// The directory it was compiled in.
    pub dir: PathBuf,
    /// The source as the compiler was given it (`DW_AT_name`).
    pub name: PathBuf,
    /// `gcc`, `clang` or `cc`, from the producer string.
    pub compiler: String,
    /// Options the producer string records (`-O2`, `-g`, `-fno-pie`, …).
    pub flags: Vec<String>,
    /// `-D`/`-U` options recovered from the macro information (`-g3`):
    /// line-0 macros the compiler does not predefine.
    pub defines: Vec<String>,
    /// Whether the unit has macro information, so `defines` is complete.
    pub has_macros: bool,
    /// `-I` options recovered from the line table's directories.
    pub includes: Vec<String>,
    /// The producer recorded the whole command line (clang's
    /// `-grecord-command-line`), `-D` and `-I` included.
    pub recorded_command: bool,
    /// The project's headers its code came from (the line table's files
    /// other than the source, outside the compiler's own directories and
    /// `/usr`, that exist): a header edited since the build is an edit of
    /// this unit. (A header that gives the unit no code leaves no trace.)
    pub headers: Vec<PathBuf>,
}

impl Unit {
    /// The compile command (without `-c`, `-o` and the source).
    pub fn command(&self) -> Vec<String> {
        let mut cmd = vec![self.compiler.clone()];
        cmd.extend(self.flags.iter().cloned());
        cmd.extend(self.includes.iter().cloned());
        cmd.extend(self.defines.iter().cloned());
        cmd
    }

    /// [`Unit::command`] run where the build ran it.
    pub fn compile_command(&self) -> CompileCommand {
        CompileCommand {
            args: self.command(),
            dir: self.dir.clone(),
            file: self.name.clone(),
            origin: "debug info",
            // GCC's producer has the options and -g3 the macros; clang's
            // has either everything or nothing.
            complete: self.recorded_command || (self.has_macros && self.compiler == "gcc"),
            unlike_build: None,
        }
    }

    /// What the debug info did not say, for the user: `None` when the
    /// macros are known (`-g3`).
    pub fn missing(&self) -> Option<&'static str> {
        (!self.has_macros).then_some(
            "built without -g3, its -D options are not recorded (relive build -- make records them in compile_commands.json)",
        )
    }
}

/// What a producer string says about the compile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Producer {
    /// `gcc`, `clang`, the recorded compiler's path, or `cc`.
    pub compiler: String,
    pub flags: Vec<String>,
    /// The whole command line was recorded (clang's
    /// `-grecord-command-line`), `-D` and `-I` included.
    pub whole_command: bool,
}

/// Parses a producer string: `GNU C17 12.2.0 -mtune=generic -O2 -g` gives
/// `gcc` with [`-mtune=generic`, `-O2`, `-g`] (GCC records code-generation
/// options only). clang records options only with
/// `-grecord-command-line`, then as its whole command line (`Debian clang
/// version 14.0.6 /usr/bin/clang -O2 -D MODE=2 -c a.c -o a.o`, perhaps with
/// a parenthesised repository after the version): the compiler is that
/// path, the options are its words without `-c`, `-o FILE` and the source.
pub fn parse_producer(producer: &str) -> Producer {
    let simple = |compiler: &str, flags: Vec<String>| Producer {
        compiler: compiler.to_string(),
        flags,
        whole_command: false,
    };
    if producer.starts_with("GNU") {
        let compiler = if producer.starts_with("GNU C++") { "g++" } else { "gcc" };
        let flags = producer
            .split_whitespace()
            .filter(|w| w.starts_with('-'))
            .map(str::to_string)
            .collect();
        return simple(compiler, flags);
    }
    if !producer.contains("clang") {
        return simple("cc", Vec::new());
    }
    let words: Vec<&str> = producer.split_whitespace().collect();
    // After "version X" and any "(...)" group: the binary's path, when the
    // command was recorded.
    let Some(mut k) = words.iter().position(|w| *w == "version").map(|k| k + 2) else {
        return simple("clang", Vec::new());
    };
    if words.get(k).is_some_and(|w| w.starts_with('(')) {
        while words.get(k).is_some_and(|w| !w.ends_with(')')) {
            k += 1;
        }
        k += 1;
    }
    let Some(binary) = words.get(k).filter(|w| !w.starts_with('-')) else {
        return simple("clang", Vec::new());
    };
    let mut flags = Vec::new();
    let mut rest = words[k + 1..].iter();
    while let Some(&w) = rest.next() {
        match w {
            "-c" => {}
            "-o" => {
                rest.next();
            }
            w if crate::compdb::TAKES_VALUE.contains(&w) => {
                flags.push(w.to_string());
                flags.extend(rest.next().map(|v| v.to_string()));
            }
            w if w.starts_with('-') => flags.push(w.to_string()),
            _ => {} // the source
        }
    }
    Producer {
        compiler: binary.to_string(),
        flags,
        whole_command: true,
    }
}

/// Whether `path` is a C++ source file, by its extension (GCC's list).
pub fn is_cxx(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| matches!(e, "cc" | "cp" | "cxx" | "cpp" | "CPP" | "c++" | "C"))
}

/// The program's C and C++ compile units whose sources exist on disk.
pub fn units(exe: &Path) -> Result<Vec<Unit>, String> {
    let data = std::fs::read(exe).map_err(|e| format!("{}: {e}", exe.display()))?;
    object::File::parse(&*data).map_err(|e| format!("{}: {e}", exe.display()))?;
    let mut predefined = Predefined::default();
    let mut spellings = Spellings::default();
    // Directories a unit searched from an ancestor instead (see
    // `search_dirs`): not given to the others either.
    let mut replaced: HashSet<String> = HashSet::new();
    let mut out = Vec::new();
    for unit in dwarf::units(&data) {
        let Some(dir) = unit.dir.clone() else { continue };
        let dir = PathBuf::from(dir);
        let source = normalize(&dir.join(&unit.name));
        let cxx = is_cxx(&source);
        if !(cxx || source.extension().is_some_and(|e| e == "c")) || !source.is_file() {
            continue;
        }
        let Producer {
            mut compiler,
            flags,
            whole_command,
        } = parse_producer(unit.producer.as_deref().unwrap_or_default());
        // clang's producer does not say which driver: C++ needs clang++
        // (its library and its language).
        if cxx && compiler == "clang" {
            compiler = "clang++".to_string();
        }
        let known = predefined.macros(&compiler, &flags, &dir);
        let defines = unit
            .line0_macros
            .iter()
            .filter(|m| match m {
                // Names with two underscores are the compiler's own
                // (`__OPTIMIZE__` comes from -O, which the probe may lack).
                MacroChange::Define(text) => !known.contains(text.as_str()) && !m.name().starts_with("__"),
                MacroChange::Undef(_) => true,
            })
            .map(MacroChange::option)
            .collect();
        let system = predefined.search_dirs(&compiler, &dir).to_vec();
        let mut headers: Vec<PathBuf> = Vec::new();
        for file in &unit.files {
            let path = normalize(&dir.join(file));
            let project = !path.starts_with("/usr") && !system.iter().any(|s| path.starts_with(s));
            if project && path != source && !headers.contains(&path) && path.is_file() {
                headers.push(path);
            }
        }
        // Where a quoted include may be found: the line table's
        // directories and those above them, up to the compile's.
        let mut searched: Vec<PathBuf> = Vec::new();
        for d in &unit.include_dirs {
            let mut d = normalize(&dir.join(d));
            while d.starts_with(&dir) && !searched.contains(&d) {
                searched.push(d.clone());
                if !d.pop() {
                    break;
                }
            }
        }
        let spelled = spellings.of(std::iter::once(&source).chain(&headers), &searched);
        let (includes, passed_over) = include_options(&unit.include_dirs, &dir, &source, &system, &spelled, &mut |p| {
            spellings.exists(p)
        });
        replaced.extend(passed_over.into_iter().map(|d| format!("-I{}", d.display())));
        out.push(Unit {
            name: PathBuf::from(&unit.name),
            source,
            dir,
            compiler,
            flags,
            defines,
            has_macros: unit.has_macros,
            includes,
            recorded_command: whole_command,
            headers,
        });
    }
    // A header that gives a unit no code (macros, prototypes) leaves no
    // trace in its line table; projects mostly give every unit the same
    // -I, so each unit also gets the directories the others show.
    let mut all: Vec<String> = Vec::new();
    for unit in &out {
        for i in &unit.includes {
            if !all.contains(i) {
                all.push(i.clone());
            }
        }
    }
    // A directory some unit searches itself is no unit's to withhold.
    replaced.retain(|d| !out.iter().any(|u| u.includes.contains(d)));
    for unit in &mut out {
        let missing: Vec<String> = all
            .iter()
            .filter(|i| !unit.includes.contains(i) && !replaced.contains(*i))
            .cloned()
            .collect();
        unit.includes.extend(missing);
    }
    Ok(out)
}

/// `-I` options for the line table's directories that are neither the
/// compiler's own search directories (`system`, and anything under
/// `/usr`) nor the unit's own (searched anyway), that exist, in table
/// order. A directory whose headers the unit's files include with a
/// directory in the name (`#include "uv/errno.h"`) is searched from where
/// that name starts (see [`search_dirs`]); those passed over so are
/// returned too.
fn include_options(
    dirs: &[String],
    comp_dir: &Path,
    source: &Path,
    system: &[PathBuf],
    spelled: &Spelled,
    exists: &mut dyn FnMut(&Path) -> bool,
) -> (Vec<String>, Vec<PathBuf>) {
    let own = source.parent().map(normalize);
    let outside = |d: &PathBuf| !d.starts_with("/usr") && !system.iter().any(|s| d.starts_with(s));
    let mut seen = HashSet::new();
    let mut passed_over = Vec::new();
    let mut out = Vec::new();
    let listed = dirs
        .iter()
        .map(|d| normalize(&comp_dir.join(d)))
        .filter(|d| outside(d) && Some(d) != own.as_ref() && d != &normalize(comp_dir) && d.is_dir());
    for d in listed {
        let searched = search_dirs(&d, spelled, system, exists);
        if !searched.contains(&d) {
            passed_over.push(d);
        }
        for d in searched.into_iter().filter(|d| outside(d)) {
            if seen.insert(d.clone()) {
                out.push(format!("-I{}", d.display()));
            }
        }
    }
    (out, passed_over)
}

/// The directories the build searched to find the headers of `dir`:
/// the ancestor where an include's name starts when the unit's files
/// name one of its headers with the directories between (`uv/errno.h`
/// and `dir/errno.h` exists: the build had `-I` of `dir`'s parent);
/// `dir` itself when nothing names it so, or a plain name (`log.h`) from
/// a file elsewhere finds a header only `dir` has (no system directory
/// has one of that name). `-I` of `dir` itself let its `errno.h` hide the
/// system's `<errno.h>` (a libuv trial: 19 of 36 files failed to compile,
/// and the message blamed a missing option of the build's).
/// `exists` answers whether a path names a file (each asked once over
/// all the units: thousands of units each look for the same names).
fn search_dirs(
    dir: &Path,
    spelled: &Spelled,
    system: &[PathBuf],
    exists: &mut dyn FnMut(&Path) -> bool,
) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for (name, _) in spelled {
        let Some((between, file)) = name.rsplit_once('/') else {
            continue;
        };
        let plain = between.split('/').all(|c| !c.is_empty() && c != "." && c != "..");
        if plain && dir.ends_with(between) && exists(&dir.join(file)) {
            let mut from = dir.to_path_buf();
            for _ in between.split('/') {
                from.pop();
            }
            out.push(from);
            break;
        }
    }
    // Each plain name once, whatever includes it.
    let plain_from_elsewhere: BTreeSet<&str> = spelled
        .iter()
        .filter(|(name, from)| !name.contains('/') && from.as_path() != dir)
        .map(|(name, _)| name.as_str())
        .collect();
    let needs_itself = out.is_empty()
        || plain_from_elsewhere
            .into_iter()
            .any(|name| exists(&dir.join(name)) && !system.iter().any(|s| exists(&s.join(name))));
    if needs_itself {
        out.push(dir.to_path_buf());
    }
    out
}

/// The names a unit's files include, each with the directory of the file
/// that includes it.
type Spelled = BTreeSet<(String, PathBuf)>;

/// The names the `#include` lines of files give (`uv/errno.h`), each
/// file read once for all the units that include it, and where each
/// looked-for file is.
#[derive(Default)]
struct Spellings {
    by_file: HashMap<PathBuf, Vec<String>>,
    /// Whether a path names a file, asked once each (every unit looks
    /// for `<stdio.h>` in each searched directory).
    is_file: HashMap<PathBuf, bool>,
}

/// How many files one unit's includes are followed through: far enough
/// for real projects, bounded for a hostile tree.
const FOLLOWED: usize = 4096;

impl Spellings {
    /// Whether `path` names a file, asked of the file system once.
    fn exists(&mut self, path: &Path) -> bool {
        *self.is_file.entry(path.to_path_buf()).or_insert_with(|| path.is_file())
    }

    /// The names `files` include, and the files they include that are
    /// found beside the includer or in one of `searched` (a header that
    /// gives no code is in no line table: `lib.h`, which only includes
    /// `lib/errno.h`).
    fn of<'a>(&mut self, files: impl Iterator<Item = &'a PathBuf>, searched: &[PathBuf]) -> Spelled {
        let mut out = Spelled::new();
        let mut queue: Vec<PathBuf> = files.cloned().collect();
        let mut seen: HashSet<PathBuf> = queue.iter().cloned().collect();
        while let Some(file) = queue.pop() {
            let names = self
                .by_file
                .entry(file.clone())
                .or_insert_with(|| std::fs::read(&file).map(|t| included_names(&t)).unwrap_or_default())
                .clone();
            let from = file.parent().map(Path::to_path_buf).unwrap_or_default();
            for name in names {
                let beside = from.join(&name);
                let found = std::iter::once(beside)
                    .chain(searched.iter().map(|d| d.join(&name)))
                    .map(|p| normalize(&p))
                    .find(|p| *self.is_file.entry(p.clone()).or_insert_with(|| p.is_file()));
                out.insert((name, from.clone()));
                if let Some(found) = found.filter(|_| seen.len() < FOLLOWED) {
                    if seen.insert(found.clone()) {
                        queue.push(found);
                    }
                }
            }
        }
        out
    }
}

/// The names in `text`'s `#include "…"` and `#include <…>` lines.
fn included_names(text: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(text)
        .lines()
        .filter_map(|line| {
            let rest = line
                .trim_start()
                .strip_prefix('#')?
                .trim_start()
                .strip_prefix("include")?;
            let rest = rest.trim_start();
            let close = match rest.chars().next()? {
                '"' => '"',
                '<' => '>',
                _ => return None,
            };
            let name = &rest[1..];
            Some(name[..name.find(close)?].to_string())
        })
        .collect()
}

/// The `-x` language a compiler driver compiles (`c++` for g++ and
/// clang++).
fn language(compiler: &str) -> &'static str {
    if compiler.ends_with("++") {
        "c++"
    } else {
        "c"
    }
}

/// The macros a compiler defines by itself for a set of flags
/// (`cc FLAGS -dM -E -x c /dev/null`), as DWARF writes them (`NAME
/// VALUE`), asked once per distinct command.
#[derive(Default)]
struct Predefined {
    known: HashMap<Vec<String>, HashSet<String>>,
    /// Per compiler: the directories it searches by itself (`cc -E -v`).
    search: HashMap<String, Vec<PathBuf>>,
}

impl Predefined {
    fn search_dirs(&mut self, compiler: &str, dir: &Path) -> &[PathBuf] {
        self.search.entry(compiler.to_string()).or_insert_with(|| {
            let out = std::process::Command::new(compiler)
                .args(["-E", "-v", "-x", language(compiler), "/dev/null"])
                .current_dir(dir)
                .stdout(std::process::Stdio::null())
                .output();
            let text = out
                .map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
                .unwrap_or_default();
            text.lines()
                .skip_while(|l| !l.starts_with("#include <...> search starts here"))
                .skip(1)
                .take_while(|l| l.starts_with(' '))
                .map(|l| normalize(Path::new(l.trim())))
                .collect()
        })
    }

    fn macros(&mut self, compiler: &str, flags: &[String], dir: &Path) -> &HashSet<String> {
        let mut key = vec![dir.display().to_string(), compiler.to_string()];
        key.extend(flags.iter().cloned());
        self.known.entry(key).or_insert_with(|| {
            let out = std::process::Command::new(compiler)
                .args(flags.iter().filter(|f| !f.starts_with("-g")))
                .args(["-dM", "-E", "-x", language(compiler), "/dev/null"])
                .current_dir(dir)
                .stderr(std::process::Stdio::null())
                .output();
            out.map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .filter_map(|l| l.strip_prefix("#define "))
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_whose_headers_are_included_with_its_name_is_searched_from_its_parent() {
        let dir = tempfile::tempdir().unwrap();
        let include = dir.path().join("include");
        let nested = include.join("uv");
        let src = dir.path().join("src");
        std::fs::create_dir_all(&nested).unwrap();
        std::fs::create_dir_all(&src).unwrap();
        let system = dir.path().join("system");
        std::fs::create_dir_all(&system).unwrap();
        std::fs::write(system.join("errno.h"), "").unwrap();
        std::fs::write(nested.join("errno.h"), "").unwrap();
        std::fs::write(nested.join("log.h"), "").unwrap();
        let names = included_names(b"#include <errno.h>\n  #  include \"uv/errno.h\" // its codes\n#define X 1\n");
        assert_eq!(names, ["errno.h", "uv/errno.h"]);
        let spelled: Spelled = names.into_iter().map(|n| (n, src.clone())).collect();
        let system = [system];
        // `<errno.h>` is the system's: include/uv is searched from include.
        assert_eq!(
            search_dirs(&nested, &spelled, &system, &mut |p| p.is_file()),
            std::slice::from_ref(&include)
        );
        // Named without the directory: searched itself.
        assert_eq!(
            search_dirs(&include, &spelled, &system, &mut |p| p.is_file()),
            std::slice::from_ref(&include)
        );
        // A plain name only this directory has, from a file elsewhere: it
        // is searched too.
        let mut both = spelled.clone();
        both.insert(("log.h".into(), src.clone()));
        assert_eq!(
            search_dirs(&nested, &both, &system, &mut |p| p.is_file()),
            [include.clone(), nested.clone()]
        );
        // A name whose file is not there, or that climbs, proves nothing.
        let other: Spelled = [
            ("uv/missing.h".to_string(), src.clone()),
            ("../uv/errno.h".to_string(), src),
        ]
        .into();
        assert_eq!(search_dirs(&nested, &other, &system, &mut |p| p.is_file()), [nested]);
    }

    #[test]
    fn producers() {
        let gcc = parse_producer("GNU C17 12.2.0 -mtune=generic -march=x86-64 -g -O2 -fno-pie");
        assert_eq!(gcc.compiler, "gcc");
        let gxx = parse_producer("GNU C++17 12.2.0 -mtune=generic -march=x86-64 -g -O2");
        assert_eq!((gxx.compiler.as_str(), gxx.flags.len()), ("g++", 4));
        assert!(is_cxx(Path::new("a/b.cpp")) && is_cxx(Path::new("x.cc")) && !is_cxx(Path::new("x.c")));
        assert_eq!(gcc.flags, ["-mtune=generic", "-march=x86-64", "-g", "-O2", "-fno-pie"]);
        assert!(!gcc.whole_command);
        let bare = parse_producer("Debian clang version 14.0.6");
        assert_eq!(
            (bare.compiler.as_str(), bare.flags.len(), bare.whole_command),
            ("clang", 0, false)
        );
        let recorded = parse_producer(
            "Debian clang version 14.0.6 /usr/lib/llvm-14/bin/clang -O2 -g -grecord-command-line -D MODE=2 -I inc -c a.c -o c.o",
        );
        assert_eq!(recorded.compiler, "/usr/lib/llvm-14/bin/clang");
        assert_eq!(
            recorded.flags,
            ["-O2", "-g", "-grecord-command-line", "-D", "MODE=2", "-I", "inc"]
        );
        assert!(recorded.whole_command);
        let upstream = parse_producer(
            "clang version 18.1.8 (https://github.com/llvm/llvm-project.git 3b5b5c1ec4a3095ab096dd780e84d7ab81f3d7ff) /usr/bin/clang -Os -c a.c",
        );
        assert_eq!(upstream.compiler, "/usr/bin/clang");
        assert_eq!(upstream.flags, ["-Os"]);
        let unrecorded = parse_producer("clang version 18.1.8 (https://github.com/llvm/llvm-project.git 3b5b5c1)");
        assert!(unrecorded.flags.is_empty() && !unrecorded.whole_command);
    }
}

/// The compile commands for `source` in the first `compile_commands.json`
/// found in its directory or above that has any: the compiler and flags,
/// without `-c`, `-o FILE` and the source itself, run where the build ran
/// them. Several when the build compiled the file more than once
/// (libtool's PIC and non-PIC objects): the first that compiles into the
/// running code is the one.
pub fn from_compile_commands(source: &Path) -> Vec<CompileCommand> {
    let Ok(source) = std::path::absolute(source) else {
        return Vec::new();
    };
    let source = normalize(&source);
    let mut dir = source.parent();
    while let Some(d) = dir {
        if let Ok(text) = std::fs::read_to_string(d.join("compile_commands.json")) {
            let found: Vec<CompileCommand> = compdb::entries_for(&text, &source)
                .iter()
                .filter_map(|e| command_of(e, &source))
                .collect();
            if !found.is_empty() {
                return found;
            }
        }
        dir = d.parent();
    }
    Vec::new()
}

/// A database entry as a compile command.
fn command_of(entry: &compdb::Entry, source: &Path) -> Option<CompileCommand> {
    let mut out = Vec::new();
    let mut args = entry.arguments.iter();
    while let Some(a) = args.next() {
        match a.as_str() {
            "-o" => {
                args.next();
            }
            "-c" => {}
            a if a == entry.file || Path::new(a) == source => {}
            _ => out.push(a.clone()),
        }
    }
    (!out.is_empty()).then(|| CompileCommand {
        args: out,
        dir: PathBuf::from(&entry.directory),
        file: PathBuf::from(&entry.file),
        origin: "compile_commands.json",
        complete: true,
        unlike_build: None,
    })
}

#[cfg(test)]
mod database_tests {
    use super::*;

    #[test]
    fn commands_and_arguments() {
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
        let cmd = from_compile_commands(&file).remove(0);
        assert_eq!(cmd.args, ["gcc", "-O2", "-DVALUE=5"]);
        assert_eq!(
            (cmd.dir.as_path(), cmd.file.as_path()),
            (dir.path(), Path::new("src/app.c"))
        );
        let db = serde_json::json!([
            {"directory": src, "file": "app.c", "arguments": ["clang", "-g", "-c", "app.c", "-o", "app.o"]}
        ]);
        std::fs::write(src.join("compile_commands.json"), db.to_string()).unwrap();
        assert_eq!(from_compile_commands(&file)[0].args, ["clang", "-g"]);
        assert!(from_compile_commands(&dir.path().join("none.c")).is_empty());
    }
}
