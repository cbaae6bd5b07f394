//! Writing a compilation database (`compile_commands.json`) from the
//! programs a build executed: which executions are compiler invocations,
//! one entry per C/C++ source they compile, and merging those entries into
//! an existing database.
//!
//! [`Recorder`] takes every [`Exec`] that `relive_process::exec_trace`
//! reports. A compiler is recognised by name (`gcc`, `/usr/bin/clang-14`,
//! `x86_64-linux-gnu-g++-12`, `cc`), also behind a wrapper (`ccache gcc`,
//! `distcc`, `sccache`, `icecc`). A command that compiles and links at once
//! (`cc -O2 -o app a.c b.c -lm`) gives one compile-only entry per source
//! (`cc -O2 -c a.c`), without the link's `-o`, libraries and objects.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

use relive_process::exec_trace::Exec;
use serde::{Deserialize, Serialize};

/// One entry of a compilation database, in the `arguments` form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The directory the compiler ran in.
    pub directory: String,
    /// The source as the compiler was given it (relative to `directory`,
    /// or absolute).
    pub file: String,
    /// The compiler and its arguments, the source among them.
    pub arguments: Vec<String>,
    /// The object file, when the command named it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
}

impl Entry {
    /// The source's path, absolute (lexically: `..` is not resolved
    /// through symlinks).
    pub fn path(&self) -> PathBuf {
        key(&self.directory, &self.file)
    }

    /// A short form for progress lines: `gcc -c src/a.c`.
    pub fn summary(&self) -> String {
        let mode = self
            .arguments
            .iter()
            .find(|a| matches!(a.as_str(), "-c" | "-S" | "-fsyntax-only"))
            .map_or("-c", String::as_str);
        let words = [self.arguments[0].as_str(), mode, self.file.as_str()];
        shlex::try_join(words).unwrap_or_else(|_| words.join(" "))
    }
}

/// Programs that run the compiler named by their first argument.
const WRAPPERS: &[&str] = &["ccache", "sccache", "distcc", "icecc", "icerun"];

/// Compiler drivers, after an optional target prefix and version suffix.
const COMPILERS: &[&str] = &["cc", "c++", "gcc", "g++", "clang", "clang++"];

/// Extensions GCC and Clang compile as C or C++.
const SOURCE_EXTENSIONS: &[&str] = &["c", "cc", "cp", "cpp", "CPP", "cxx", "c++", "C"];

/// Options whose value is the next argument (when not attached).
pub const TAKES_VALUE: &[&str] = &[
    "-o",
    "-I",
    "-D",
    "-U",
    "-A",
    "-B",
    "-include",
    "-imacros",
    "-isystem",
    "-iquote",
    "-idirafter",
    "-iprefix",
    "-iwithprefix",
    "-iwithprefixbefore",
    "-isysroot",
    "-imultilib",
    "-iframework",
    "-include-pch",
    "-ivfsoverlay",
    "-MF",
    "-MT",
    "-MQ",
    "-MJ",
    "-x",
    "-Xlinker",
    "-Xassembler",
    "-Xpreprocessor",
    "-Xclang",
    "-mllvm",
    "-L",
    "-l",
    "-T",
    "-u",
    "-z",
    "-e",
    "-arch",
    "-target",
    "--param",
    "--sysroot",
    "-aux-info",
    "-dumpbase",
    "-dumpbase-ext",
    "-dumpdir",
    "-wrapper",
    "-resource-dir",
    "-gcc-toolchain",
    "-working-directory",
];

/// Options that only matter to the link (with their value if they take one).
const LINK_ONLY: &[&str] = &[
    "-Xlinker",
    "-L",
    "-l",
    "-T",
    "-u",
    "-z",
    "-e",
    "-static",
    "-static-pie",
    "-shared",
    "-rdynamic",
    "-pie",
    "-no-pie",
    "-s",
    "-r",
    "-nostdlib",
    "-nostartfiles",
    "-nodefaultlibs",
    "-static-libgcc",
    "-static-libstdc++",
    "-shared-libgcc",
    "-symbolic",
];

/// Prefixes of link-only options with an attached value.
const LINK_ONLY_PREFIXES: &[&str] = &["-l", "-L", "-Wl,", "-T", "-fuse-ld=", "--ld-path="];

/// Whether `argv0` names a C/C++ compiler driver: its file name is one of
/// `COMPILERS` (`cc`, `gcc`, `clang++`, …), after an optional target prefix
/// (`x86_64-linux-gnu-gcc`) and version suffix (`gcc-12`, `clang++-14`).
pub fn is_compiler(argv0: &str) -> bool {
    let name = file_name(argv0);
    let name = strip_version(name);
    let base = name.rsplit('-').next().unwrap_or(name);
    COMPILERS.contains(&base)
}

fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// `gcc-12` → `gcc`, `clang-14.0.6` → `clang`; `gcc-ar` stays.
fn strip_version(name: &str) -> &str {
    match name.rsplit_once('-') {
        Some((head, version))
            if !version.is_empty()
                && version
                    .split('.')
                    .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())) =>
        {
            head
        }
        _ => name,
    }
}

/// The compiler command inside `argv`: `argv` itself, or what follows its
/// wrappers (`ccache gcc -c a.c` → `gcc -c a.c`). `None` when it is not a
/// compiler, or is Clang's internal `-cc1` stage.
fn compiler_command(argv: &[String]) -> Option<&[String]> {
    let mut args = argv;
    loop {
        let first = args.first()?;
        if WRAPPERS.contains(&file_name(first)) {
            args = &args[1..];
            // `ccache KEY=VALUE gcc …` sets configuration for one run.
            while args
                .first()
                .is_some_and(|a| !a.starts_with('-') && !a.contains('/') && a.contains('='))
            {
                args = &args[1..];
            }
            continue;
        }
        if !is_compiler(first) || matches!(args.get(1).map(String::as_str), Some("-cc1" | "-cc1as")) {
            return None;
        }
        return Some(args);
    }
}

/// What one argument of a compiler command is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// A compile option, or its value: kept.
    Keep,
    /// `-o FILE` (either word).
    Output,
    /// A link-only option or its value.
    Link,
    /// A C/C++ source that exists.
    Source,
    /// Any other input: an object, a library, a source of another
    /// language, a missing file, `-`.
    Input,
}

/// Replaces `@FILE` arguments (GCC and Clang response files) by the words
/// they hold, read relative to `dir`.
fn expand_response_files(dir: &Path, args: &[String], depth: u32) -> Vec<String> {
    let mut out = Vec::with_capacity(args.len());
    for arg in args {
        let words = arg
            .strip_prefix('@')
            .filter(|_| depth < 8)
            .and_then(|file| std::fs::read_to_string(dir.join(file)).ok())
            .and_then(|text| shlex::split(&text));
        match words {
            Some(words) => out.extend(expand_response_files(dir, &words, depth + 1)),
            None => out.push(arg.clone()),
        }
    }
    out
}

/// The entries for one execution of `argv` in `directory`: one per C/C++
/// source it compiles, none when it compiles nothing (not a compiler, a
/// link of objects, `-E`, `-M`, a source that does not exist).
pub fn entries(directory: &Path, argv: &[String]) -> Vec<Entry> {
    entries_with(directory, argv, &|p| p.is_file())
}

/// [`entries`] with the existence check supplied (for tests).
fn entries_with(directory: &Path, argv: &[String], exists: &dyn Fn(&Path) -> bool) -> Vec<Entry> {
    let Some(command) = compiler_command(argv) else {
        return Vec::new();
    };
    let args = expand_response_files(directory, command, 0);
    let has = |flag: &str| args[1..].iter().any(|a| a == flag);
    if has("-E") || has("-###") || ((has("-M") || has("-MM")) && !(has("-MD") || has("-MMD"))) {
        return Vec::new();
    }
    let linking = !(has("-c") || has("-S") || has("-fsyntax-only"));

    let mut roles = vec![Role::Keep; args.len()];
    let mut output: Option<String> = None;
    let mut language: Option<String> = None;
    let mut i = 1;
    while i < args.len() {
        let arg = args[i].as_str();
        if arg.starts_with('-') && arg != "-" {
            let role = if arg == "-o" || (arg.starts_with("-o") && arg.len() > 2) {
                Role::Output
            } else if LINK_ONLY.contains(&arg) || LINK_ONLY_PREFIXES.iter().any(|p| arg.starts_with(p)) {
                Role::Link
            } else {
                Role::Keep
            };
            roles[i] = role;
            if role == Role::Output {
                output = if arg == "-o" {
                    args.get(i + 1).cloned()
                } else {
                    Some(arg[2..].to_string())
                };
            }
            if arg == "-x" {
                language = args.get(i + 1).cloned();
            } else if let Some(lang) = arg.strip_prefix("-x").filter(|l| !l.is_empty()) {
                language = Some(lang.to_string());
            }
            if TAKES_VALUE.contains(&arg) && i + 1 < args.len() {
                roles[i + 1] = role;
                i += 1;
            }
            if language.as_deref() == Some("none") {
                language = None;
            }
        } else {
            let is_source = match language.as_deref() {
                Some(lang) => matches!(lang, "c" | "c++"),
                None => Path::new(arg)
                    .extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| SOURCE_EXTENSIONS.contains(&e)),
            };
            roles[i] = if is_source && arg != "-" && exists(&directory.join(arg)) {
                Role::Source
            } else {
                Role::Input
            };
        }
        i += 1;
    }

    let sources: Vec<usize> = (1..args.len()).filter(|&i| roles[i] == Role::Source).collect();
    let single = sources.len() == 1;
    let directory_text = directory.to_string_lossy().into_owned();
    sources
        .iter()
        .map(|&source| {
            let mut arguments = vec![args[0].clone()];
            for i in 1..args.len() {
                let keep = match roles[i] {
                    Role::Keep => true,
                    Role::Source if i == source => {
                        if linking {
                            arguments.push("-c".into());
                        }
                        true
                    }
                    Role::Source | Role::Input => false,
                    Role::Output => !linking && single,
                    Role::Link => !linking,
                };
                if keep {
                    arguments.push(args[i].clone());
                }
            }
            Entry {
                directory: directory_text.clone(),
                file: args[source].clone(),
                arguments,
                output: output.clone().filter(|_| !linking && single),
            }
        })
        .collect()
}

/// Collects the entries of a traced build, one per compiler invocation
/// and source.
///
/// A wrapper's compile is recorded once: when `ccache gcc -c a.c` runs the
/// real compiler on the same file (in a child, or by replacing itself), that
/// second execution is not recorded again, nor is one with the very same
/// arguments in the same directory.
#[derive(Debug, Default)]
pub struct Recorder {
    entries: Vec<Entry>,
    /// Per source path: the pids that recorded it, with their arguments.
    seen: HashMap<PathBuf, Vec<(u32, usize)>>,
}

impl Recorder {
    pub fn new() -> Recorder {
        Recorder::default()
    }

    /// Looks at one execution; returns the entries it adds.
    pub fn observe(&mut self, exec: &Exec) -> &[Entry] {
        let before = self.entries.len();
        for entry in entries(&exec.cwd, &exec.argv) {
            let path = entry.path();
            let earlier = self.seen.entry(path).or_default();
            let duplicate = earlier.iter().any(|&(pid, index)| {
                pid == exec.pid || exec.ancestors.contains(&pid) || self.entries[index].arguments == entry.arguments
            });
            if !duplicate {
                earlier.push((exec.pid, self.entries.len()));
                self.entries.push(entry);
            }
        }
        &self.entries[before..]
    }

    /// Everything recorded so far.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The entries whose source still exists: a configure script's
    /// `conftest.c`, compiled and deleted, is left out.
    pub fn finish(self) -> Vec<Entry> {
        self.entries.into_iter().filter(|e| e.path().is_file()).collect()
    }
}

/// `directory` joined with `file`, normalized: a database entry's source.
fn key(directory: &str, file: &str) -> PathBuf {
    normalize(&Path::new(directory).join(file))
}

/// `path` with `.` and `..` resolved lexically, without asking the file
/// system (a `..` after a symlink is not resolved through it), and
/// repeated or trailing `/` dropped: `/p/build/../src/./a.c` is
/// `/p/src/a.c`. `..` at the root stays at the root (`/..` is `/`); a
/// relative path keeps the `..` that climb above its start (`../src/a.c`,
/// `a/../..` is `..`; `a/..` is the empty path).
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => match out.components().next_back() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                Some(Component::RootDir | Component::Prefix(_)) => {}
                Some(Component::ParentDir | Component::CurDir) | None => out.push(".."),
            },
            c => out.push(c),
        }
    }
    out
}

/// `path` absolute and without `.` and `..` components: the one spelling
/// of a file that sources, headers, watch events and database entries are
/// compared in.
pub fn absolute(path: &Path) -> PathBuf {
    normalize(&std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()))
}

/// Every entry of the compilation database text `db_text` that compiles
/// `source`, in the database's order: those whose `directory` joined with
/// `file` is `source` once both are made absolute (against the current
/// directory, for a relative one) and [`normalize`]d. A file may be
/// compiled more than once (libtool compiles each source with and without
/// `-fPIC`; a test build adds `-DTEST`), and its entries may name it
/// differently (`../src/a.c` from an out-of-tree build directory).
///
/// An entry in the `command` form is returned with that command split
/// into `arguments` (shell quoting, as the specification says). Entries
/// that have no `file`, or neither a usable `arguments` array nor
/// `command`, are skipped; text that is not a JSON array gives none.
pub fn entries_for(db_text: &str, source: &Path) -> Vec<Entry> {
    let Ok(db) = serde_json::from_str::<Vec<serde_json::Value>>(db_text) else {
        return Vec::new();
    };
    // The real path too: a build run from a symlinked directory records
    // its physical directory, while the compiler's debug info (where the
    // source's name comes from) keeps the logical one.
    // Looked up only when no entry names the source as given (one system
    // call per entry).
    let real = |p: &Path| std::fs::canonicalize(p).ok();
    let wanted = absolute(source);
    let named = |e: &serde_json::Value| {
        Some(absolute(
            &Path::new(e["directory"].as_str().unwrap_or("")).join(e["file"].as_str()?),
        ))
    };
    let by_name = db.iter().any(|e| named(e).as_ref() == Some(&wanted));
    let wanted_real = if by_name { None } else { real(&wanted) };
    db.iter()
        .filter_map(|e| {
            let directory = e["directory"].as_str().unwrap_or("");
            let file = e["file"].as_str()?;
            let same = match &wanted_real {
                None => named(e)? == wanted,
                Some(r) => named(e).and_then(|n| real(&n)).as_ref() == Some(r),
            };
            if !same {
                return None;
            }
            let arguments = match e["arguments"].as_array() {
                Some(a) => a
                    .iter()
                    .map(|v| v.as_str().map(str::to_string))
                    .collect::<Option<Vec<_>>>()?,
                None => shlex::split(e["command"].as_str()?)?,
            };
            (!arguments.is_empty()).then(|| Entry {
                directory: directory.to_string(),
                file: file.to_string(),
                arguments,
                output: e["output"].as_str().map(str::to_string),
            })
        })
        .collect()
}

/// Why an existing database cannot be merged into.
#[derive(Debug, thiserror::Error)]
pub enum CompdbError {
    #[error("{path} is not a compilation database (a JSON array of objects): {reason}. relive leaves it as it is: fix or remove it, or write elsewhere with -o")]
    Invalid { path: String, reason: String },

    #[error("{path}: {what}: {cause}")]
    Io {
        path: String,
        what: &'static str,
        cause: std::io::Error,
    },
}

/// Merges `new` into the database text `existing` (empty text: no
/// database yet) and returns the new text. An existing entry for the same
/// source (directory joined with file) is replaced, in its place, by the
/// new entries for it; other entries, and any fields relive does not
/// write, are kept as they were. `Err` says why `existing` is not a
/// compilation database.
pub fn merge(existing: &str, new: &[Entry]) -> Result<String, String> {
    let old: Vec<serde_json::Value> = if existing.trim().is_empty() {
        Vec::new()
    } else {
        serde_json::from_str(existing).map_err(|e| e.to_string())?
    };
    if let Some(bad) = old.iter().position(|e| !e.is_object()) {
        return Err(format!("entry {bad} is not an object"));
    }
    let mut by_key: HashMap<PathBuf, Vec<&Entry>> = HashMap::new();
    let mut order = Vec::new();
    for entry in new {
        let k = entry.path();
        if !by_key.contains_key(&k) {
            order.push(k.clone());
        }
        by_key.entry(k).or_default().push(entry);
    }
    /// Old entries as they were read, new ones with their fields in
    /// the usual order (directory, file, arguments).
    #[derive(Serialize)]
    #[serde(untagged)]
    enum Item<'a> {
        Old(serde_json::Value),
        New(&'a Entry),
    }
    let mut out = Vec::with_capacity(old.len() + new.len());
    let mut written: HashMap<PathBuf, bool> = HashMap::new();
    for entry in old {
        let k = entry["file"]
            .as_str()
            .map(|file| key(entry["directory"].as_str().unwrap_or(""), file));
        match k.filter(|k| by_key.contains_key(k)) {
            Some(k) => {
                if !written.insert(k.clone(), true).unwrap_or(false) {
                    out.extend(by_key[&k].iter().map(|&e| Item::New(e)));
                }
            }
            None => out.push(Item::Old(entry)),
        }
    }
    for k in order {
        if !written.contains_key(&k) {
            out.extend(by_key[&k].iter().map(|&e| Item::New(e)));
        }
    }
    let mut text = serde_json::to_string_pretty(&out).expect("entries serialise");
    text.push('\n');
    Ok(text)
}

/// Merges `new` into the database at `path` (created if missing) and
/// writes it atomically: a temporary file beside it, renamed over it. A
/// symlink (`compile_commands.json -> build/compile_commands.json`) is
/// followed, so the file it points to is updated. An existing file that
/// is not a compilation database is left untouched.
pub fn update(path: &Path, new: &[Entry]) -> Result<(), CompdbError> {
    let io = |what, source| CompdbError::Io {
        path: path.display().to_string(),
        what,
        cause: source,
    };
    let target = match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf()),
        _ => path.to_path_buf(),
    };
    let (existing, permissions) = match std::fs::read_to_string(&target) {
        Ok(text) => (text, std::fs::metadata(&target).ok().map(|m| m.permissions())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => (String::new(), None),
        Err(e) => return Err(io("reading it", e)),
    };
    let text = merge(&existing, new).map_err(|reason| CompdbError::Invalid {
        path: path.display().to_string(),
        reason,
    })?;
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = target.with_file_name(format!(".{name}.relive-{}.tmp", std::process::id()));
    let written = (|| {
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new().write(true).create_new(true).open(&temp)?;
        file.write_all(text.as_bytes())?;
        if let Some(p) = permissions {
            file.set_permissions(p)?;
        }
        file.sync_all()?;
        std::fs::rename(&temp, &target)
    })();
    written.map_err(|e| {
        let _ = std::fs::remove_file(&temp);
        io("writing it", e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<String> {
        line.split_whitespace().map(str::to_string).collect()
    }

    /// Entries for `line` in `/p`, where every file named like a source exists.
    fn of(line: &str) -> Vec<Entry> {
        entries_with(Path::new("/p"), &words(line), &|_| true)
    }

    fn args(e: &Entry) -> String {
        e.arguments.join(" ")
    }

    #[test]
    fn compiler_names() {
        for yes in [
            "cc",
            "c++",
            "gcc",
            "g++",
            "clang",
            "clang++",
            "/usr/bin/gcc",
            "gcc-12",
            "clang-14",
            "clang++-14",
            "clang-14.0.6",
            "x86_64-linux-gnu-gcc",
            "x86_64-linux-gnu-gcc-12",
            "/opt/cross/bin/aarch64-none-elf-g++",
        ] {
            assert!(is_compiler(yes), "{yes}");
        }
        for no in [
            "gcc-ar",
            "x86_64-linux-gnu-gcc-nm",
            "clang-tidy",
            "clang-cpp",
            "cc1",
            "c++filt",
            "ld",
            "make",
            "sh",
            "ccache",
            "gcc-",
            "",
        ] {
            assert!(!is_compiler(no), "{no}");
        }
    }

    #[test]
    fn a_compile_is_one_entry_as_it_was_run() {
        let e = of("/usr/bin/gcc -DMODE=2 -Iinc -O2 -g -c src/a.c -o build/a.o");
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].directory, "/p");
        assert_eq!(e[0].file, "src/a.c");
        assert_eq!(
            args(&e[0]),
            "/usr/bin/gcc -DMODE=2 -Iinc -O2 -g -c src/a.c -o build/a.o"
        );
        assert_eq!(e[0].output.as_deref(), Some("build/a.o"));
        assert_eq!(e[0].summary(), "/usr/bin/gcc -c src/a.c");
        let e = of("cc -c -obuild/b.o b.c");
        assert_eq!(e[0].output.as_deref(), Some("build/b.o"));
    }

    #[test]
    fn wrappers_are_skipped() {
        for line in [
            "ccache gcc -O2 -c a.c -o a.o",
            "/usr/bin/ccache gcc -O2 -c a.c -o a.o",
            "sccache gcc -O2 -c a.c -o a.o",
            "distcc gcc -O2 -c a.c -o a.o",
            "icecc gcc -O2 -c a.c -o a.o",
            "ccache max_direct_mode=false gcc -O2 -c a.c -o a.o",
        ] {
            let e = of(line);
            assert_eq!(e.len(), 1, "{line}");
            assert_eq!(args(&e[0]), "gcc -O2 -c a.c -o a.o", "{line}");
        }
        assert!(of("ccache -s").is_empty());
        assert!(of("ccache make a.c").is_empty());
    }

    #[test]
    fn compile_and_link_becomes_one_compile_per_source() {
        let e = of("cc -O2 -g -DX=1 -o app a.c b.c lib/util.o libz.a -Lout -lm -l pthread -Wl,--as-needed -pthread");
        assert_eq!(e.len(), 2);
        assert_eq!(args(&e[0]), "cc -O2 -g -DX=1 -c a.c -pthread");
        assert_eq!(args(&e[1]), "cc -O2 -g -DX=1 -c b.c -pthread");
        assert_eq!(e[0].output, None);
        let e = of("gcc main.c");
        assert_eq!(args(&e[0]), "gcc -c main.c");
    }

    #[test]
    fn compile_only_with_several_sources_drops_the_others_and_o() {
        let e = of("gcc -c -O1 a.c b.cpp c.cc -o x.o");
        assert_eq!(
            e.iter().map(|e| e.file.as_str()).collect::<Vec<_>>(),
            ["a.c", "b.cpp", "c.cc"]
        );
        assert_eq!(args(&e[1]), "gcc -c -O1 b.cpp");
        assert!(e.iter().all(|e| e.output.is_none()));
    }

    #[test]
    fn option_values_that_look_like_sources_are_not_sources() {
        let e = of(
            "gcc -c -include pre.c -imacros m.c -MF dep.c -MT t.c -MQ q.c -o out.c -Xpreprocessor x.c -D y.c -I inc.c real.c",
        );
        assert_eq!(e.len(), 1, "{e:#?}");
        assert_eq!(e[0].file, "real.c");
        assert_eq!(e[0].output.as_deref(), Some("out.c"));
    }

    #[test]
    fn not_compiles_are_skipped() {
        assert!(of("gcc -E a.c").is_empty());
        assert!(of("gcc -M a.c").is_empty());
        assert!(of("gcc -MM -MG a.c").is_empty());
        assert_eq!(of("gcc -MD -MF a.d -c a.c").len(), 1);
        assert!(of("gcc -o app a.o b.o -lm").is_empty());
        assert!(of("clang -cc1 -triple x86_64 -emit-obj a.c").is_empty());
        assert!(of("gcc --version").is_empty());
        assert!(of("gcc -### -c a.c").is_empty());
        // ccache's preprocessed temporary, and assembly.
        assert!(of("gcc -c /tmp/ccache/a.stdout.i -o a.o").is_empty());
        assert!(of("gcc -c start.S").is_empty());
        assert!(of("gcc -c - -o a.o").is_empty());
        // A source that does not exist.
        let none = entries_with(Path::new("/p"), &words("gcc -c a.c"), &|_| false);
        assert!(none.is_empty());
    }

    #[test]
    fn language_option_decides_what_is_a_source() {
        let e = of("gcc -x c -c rules.inc");
        assert_eq!(e.len(), 1);
        assert_eq!(args(&e[0]), "gcc -x c -c rules.inc");
        let e = of("gcc -x c gen.def -x none b.o -o app");
        assert_eq!(e.len(), 1);
        assert_eq!(args(&e[0]), "gcc -x c -c gen.def -x none");
        assert!(of("gcc -x assembler -c a.c").is_empty());
        assert!(of("gcc -xc-header -c a.h").is_empty());
    }

    #[test]
    fn response_files_are_expanded() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.c"), "int a;").unwrap();
        std::fs::write(dir.path().join("flags.rsp"), "-DNAME=\"two words\" -Iinc\n-c a.c").unwrap();
        let e = entries(dir.path(), &words("gcc -O2 @flags.rsp -o a.o"));
        assert_eq!(e.len(), 1);
        assert_eq!(
            e[0].arguments,
            ["gcc", "-O2", "-DNAME=two words", "-Iinc", "-c", "a.c", "-o", "a.o"]
        );
    }

    fn exec(pid: u32, ancestors: &[u32], cwd: &Path, line: &str) -> Exec {
        Exec {
            pid,
            ancestors: ancestors.to_vec(),
            cwd: cwd.to_path_buf(),
            argv: words(line),
            exe: PathBuf::from("/usr/bin/x"),
        }
    }

    #[test]
    fn a_wrapped_compile_is_recorded_once() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("a.c"), "int a;").unwrap();
        std::fs::write(d.join("b.c"), "int b;").unwrap();
        let mut r = Recorder::new();
        assert_eq!(r.observe(&exec(10, &[1], d, "ccache gcc -O2 -c a.c -o a.o")).len(), 1);
        // ccache's preprocessor run, then the real compiler in its child
        // with arguments of its own.
        assert!(r.observe(&exec(11, &[10, 1], d, "gcc -O2 -E a.c")).is_empty());
        assert!(r
            .observe(&exec(
                12,
                &[10, 1],
                d,
                "/usr/bin/gcc -O2 -c a.c -o a.o -fdiagnostics-color"
            ))
            .is_empty());
        // ccache replacing itself with the compiler.
        assert!(r
            .observe(&exec(10, &[1], d, "/usr/bin/gcc -O2 -c a.c -o a.o"))
            .is_empty());
        // Make running the very same command again.
        assert!(r.observe(&exec(20, &[1], d, "ccache gcc -O2 -c a.c -o a.o")).is_empty());
        // The same file built another way, by an unrelated process: kept.
        assert_eq!(r.observe(&exec(21, &[1], d, "gcc -DTEST -c a.c -o a_test.o")).len(), 1);
        assert_eq!(r.observe(&exec(22, &[1], d, "gcc -c b.c")).len(), 1);
        assert_eq!(r.entries().len(), 3);
        std::fs::remove_file(d.join("b.c")).unwrap();
        let kept = r.finish();
        assert_eq!(kept.iter().map(|e| e.file.as_str()).collect::<Vec<_>>(), ["a.c", "a.c"]);
    }

    fn entry(directory: &str, file: &str, flag: &str) -> Entry {
        Entry {
            directory: directory.into(),
            file: file.into(),
            arguments: vec!["gcc".into(), flag.into(), "-c".into(), file.into()],
            output: None,
        }
    }

    #[test]
    fn merge_replaces_the_same_source_and_keeps_the_rest() {
        let existing = r#"[
          {"directory": "/p", "file": "old.c", "command": "cc -c old.c", "extra": 1},
          {"directory": "/p", "file": "src/a.c", "arguments": ["cc", "-O0", "-c", "src/a.c"]},
          {"directory": "/q", "file": "src/a.c", "arguments": ["cc", "-c", "src/a.c"]}
        ]"#;
        let new = vec![entry("/p/src", "a.c", "-O2"), entry("/p", "b.c", "-O2")];
        let text = merge(existing, &new).unwrap();
        let v: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
        assert_eq!(v.len(), 4, "{text}");
        assert_eq!(v[0]["command"], "cc -c old.c");
        assert_eq!(v[0]["extra"], 1);
        // /p + src/a.c is /p/src + a.c: replaced in place.
        assert_eq!(v[1]["directory"], "/p/src");
        assert_eq!(v[1]["arguments"][1], "-O2");
        assert_eq!(v[2]["directory"], "/q");
        assert_eq!(v[3]["file"], "b.c");
        assert!(v[3].get("output").is_none());
        // Into nothing.
        let v: Vec<Entry> = serde_json::from_str(&merge("", &new).unwrap()).unwrap();
        assert_eq!(v, new);
    }

    #[test]
    fn normalize_resolves_dots_lexically() {
        for (path, normal) in [
            ("/p/build/../src/./a.c", "/p/src/a.c"),
            ("/p//src/a.c/", "/p/src/a.c"),
            ("/p/./././a.c", "/p/a.c"),
            ("/../a.c", "/a.c"),
            ("/p/../..", "/"),
            ("/", "/"),
            ("../src/a.c", "../src/a.c"),
            ("./../../a.c", "../../a.c"),
            ("a/../../b", "../b"),
            ("a/b/../../..", ".."),
            ("a/..", ""),
            ("a.c", "a.c"),
            ("", ""),
        ] {
            assert_eq!(normalize(Path::new(path)), PathBuf::from(normal), "{path}");
        }
        // An entry's key is its directory and file, normalized.
        assert_eq!(key("/p/build", "../src/a.c"), PathBuf::from("/p/src/a.c"));
        assert_eq!(key("/p", "/q/./a.c"), PathBuf::from("/q/a.c"));
    }

    #[test]
    fn entries_for_finds_every_entry_of_a_source() {
        let db = r#"[
          {"directory": "/p/src", "file": "a.c", "command": "libtool-gcc -DPIC -fPIC -c a.c -o .libs/a.o"},
          {"directory": "/p/src", "file": "b.c", "arguments": ["gcc", "-c", "b.c"]},
          {"directory": "/p/build", "file": "../src/a.c", "arguments": ["gcc", "-O2", "-c", "../src/a.c"], "output": "a.o"},
          {"directory": "/q/src", "file": "a.c", "arguments": ["gcc", "-c", "a.c"]},
          {"directory": "/p/src/", "file": "/p/src/./a.c", "command": "gcc -DNAME='\"two words\"' -c /p/src/a.c"},
          {"directory": "/p/src", "arguments": ["gcc", "-c", "a.c"]},
          {"directory": "/p/src", "file": "a.c"},
          {"directory": "/p/src", "file": "a.c", "arguments": ["gcc", 7]}
        ]"#;
        for source in ["/p/src/a.c", "/p/build/../src/a.c", "/p/src//a.c"] {
            let found = entries_for(db, Path::new(source));
            assert_eq!(
                found.iter().map(|e| e.arguments[1].as_str()).collect::<Vec<_>>(),
                ["-DPIC", "-O2", "-DNAME=\"two words\""],
                "{source}: {found:#?}"
            );
            assert_eq!(found[0].file, "a.c");
            assert_eq!(found[1].directory, "/p/build");
            assert_eq!(found[1].file, "../src/a.c");
            assert_eq!(found[1].output.as_deref(), Some("a.o"));
            assert_eq!(found[0].output, None);
        }
        assert_eq!(entries_for(db, Path::new("/p/src/b.c")).len(), 1);
        assert!(entries_for(db, Path::new("/p/src/c.c")).is_empty());
        assert!(entries_for("not json", Path::new("/p/src/a.c")).is_empty());
        assert!(entries_for("{\"file\": \"a.c\"}", Path::new("/p/src/a.c")).is_empty());
        // A relative source is taken from the current directory.
        let here = std::env::current_dir().unwrap();
        let db = serde_json::json!([{"directory": here, "file": "x/../a.c", "command": "cc -c a.c"}]).to_string();
        assert_eq!(entries_for(&db, Path::new("./a.c")).len(), 1);
    }

    #[test]
    fn merge_refuses_what_is_not_a_database() {
        assert!(merge("{\"not\": \"an array\"}", &[]).is_err());
        assert!(merge("[1, 2]", &[]).unwrap_err().contains("entry 0"));
        assert!(merge("[{\"directory\": \"/p\", ", &[]).is_err());
    }

    #[test]
    fn update_writes_atomically_and_leaves_a_bad_file_alone() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("compile_commands.json");
        update(&db, &[entry("/p", "a.c", "-O1")]).unwrap();
        update(&db, &[entry("/p", "b.c", "-O1")]).unwrap();
        let v: Vec<Entry> = serde_json::from_str(&std::fs::read_to_string(&db).unwrap()).unwrap();
        assert_eq!(v.len(), 2);
        // Nothing but the database in the directory: the temporary is gone.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        // Through a symlink, the file it points to is updated.
        let link = dir.path().join("link.json");
        std::os::unix::fs::symlink(&db, &link).unwrap();
        update(&link, &[entry("/p", "c.c", "-O1")]).unwrap();
        assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
        assert_eq!(
            serde_json::from_str::<Vec<Entry>>(&std::fs::read_to_string(&db).unwrap())
                .unwrap()
                .len(),
            3
        );
        std::fs::write(&db, "garbage").unwrap();
        let err = update(&db, &[entry("/p", "a.c", "-O1")]).unwrap_err();
        assert!(matches!(err, CompdbError::Invalid { .. }), "{err}");
        assert_eq!(std::fs::read_to_string(&db).unwrap(), "garbage");
    }

    /// A build run from a symlinked directory records the physical
    /// directory; the debug info names the source through the link. The
    /// entry is found either way (it was not: relive compiled without the
    /// build's -D).
    #[test]
    fn an_entry_is_found_through_a_symlinked_directory() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        std::fs::create_dir_all(real.join("src")).unwrap();
        std::fs::write(real.join("src/a.c"), "int a;\n").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let db = serde_json::json!([{
            "directory": real,
            "file": "src/a.c",
            "arguments": ["gcc", "-DX=1", "-c", "src/a.c"],
        }])
        .to_string();
        for source in [real.join("src/a.c"), link.join("src/a.c")] {
            let found = entries_for(&db, &source);
            assert_eq!(found.len(), 1, "{}", source.display());
            assert!(found[0].arguments.contains(&"-DX=1".to_string()));
        }
        assert!(entries_for(&db, &link.join("src/b.c")).is_empty());
    }
}
