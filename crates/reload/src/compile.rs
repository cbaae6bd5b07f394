//! Running the compiler: one source into an object in relive's private
//! directory, with the user headers it includes, from the file itself or
//! from a copy of its text taken earlier (the snapshot of the sources
//! when relive started, see [`crate::snapshot`]).

use std::path::{Path, PathBuf};
use std::process::Command;

use relive_patch::debug_macros::Definitions;
use relive_patch::objfile::SourceTexts;
use relive_patch::ObjectFile;

use crate::sources::CompileCommand;

/// `args` without the build's dependency-file options (`-MD`, `-MF
/// FILE`, ...): relive's compile writes its own, and must not overwrite
/// the build's.
fn without_dependency_options(args: &[String]) -> Vec<&String> {
    let mut out = Vec::new();
    let mut skip = false;
    for a in args {
        if std::mem::take(&mut skip) {
            continue;
        }
        match a.as_str() {
            "-MD" | "-MMD" | "-MP" | "-M" | "-MM" => {}
            "-MF" | "-MT" | "-MQ" => skip = true,
            a if a.starts_with("-MF") || a.starts_with("-MT") || a.starts_with("-MQ") => {}
            _ => out.push(a),
        }
    }
    out
}

/// The options that give relive's compile of `args` (by compiler `cc`)
/// the types of the debug information when the build's ask for less
/// (none, `-g0`, or `-g1`): `-g`, and for GCC no tracking of variables'
/// locations, which the types do not need and which made `-g` cost a
/// sixth of an `-O2` compile (Lua's `lvm.c`: 1.16x plain, 1.05x without
/// it; the same code either way). The code is the same (debug options do
/// not change what the compilers generate), and the types are what
/// compares the layouts of structs between two compiles: without them an
/// edit that moved a field of a live struct was patched unchecked, and
/// the program crashed (a user's trial on Lua built with its Makefile's
/// flags). Only a compiler named as GCC gets GCC's options (`cc` may be
/// clang, which warns of them).
fn debug_info_for_layouts(cc: &str, args: &[&String]) -> &'static [&'static str] {
    if !wants_types(args) {
        return &[];
    }
    let name = Path::new(cc).file_name().and_then(|n| n.to_str()).unwrap_or(cc);
    // (`clang++` ends in `g++`, and rejects GCC's options.)
    match (name.contains("gcc") || name.contains("g++")) && !name.contains("clang") {
        true => &["-g", "-fno-var-tracking", "-fno-var-tracking-assignments"],
        false => &["-g"],
    }
}

/// The option that gives each variable of relive's compiles a section of
/// its own. Without it the statics of a file share `.data`/`.bss`, and the
/// assembler writes "one past the end of `a`" and "the start of `b`" (the
/// next variable) as the same `section + offset`: when one of the two is
/// new and the other the program's, no place for the new one serves both
/// readings, and a loop to `a`'s end ran into the patch's memory (a
/// user's trial on bzip2). With a section per variable the end of `a` is
/// `a`'s section + its size, unambiguous. The code is the same (x86-64
/// addresses every variable relative to the instruction either way), so
/// the first compile is still what runs; the variables the program has
/// are found by name whatever their sections. Given after the build's own
/// options, so a `-fno-data-sections` there does not undo it.
const A_SECTION_PER_VARIABLE: &str = "-fdata-sections";

/// The option that has clang describe every class a C++ unit uses with
/// its fields (`-fstandalone-debug`), for compiler `cc`. By default clang describes a class that has virtual
/// functions (or a constructor) only in the file that emits its vtable
/// (or constructor), and names it alone elsewhere: an edit that added a
/// virtual function to a class whose objects the program has (made by
/// `calloc`) gave two compiles with nothing to compare, the patch went
/// in, and the new code read every field 8 bytes off (a HarfBuzz
/// trial's class, with g++ caught since by the virtual functions it
/// declares). The code is the same (only the debug information grows).
/// Only for clang by name: for C too (a `-x c++` unit, by its options,
/// is C++ whatever its name; clang's C output is the same with it).
fn whole_classes(cc: &str) -> Option<&'static str> {
    let name = Path::new(cc).file_name().and_then(|n| n.to_str()).unwrap_or(cc);
    name.contains("clang").then_some("-fstandalone-debug")
}

/// The option that has relive's compiles by compiler `cc` describe the
/// macros they define ([`relive_patch::debug_macros`]): two compiles
/// then tell which `#define` an edit gave another value, which the code
/// alone does not. GCC's `-g3`; clang's `-fdebug-macro` (its `-g3` gives
/// none). A compiler named neither (`cc`) gets `-g3`, which both accept.
/// The code is the same either way.
fn macro_information(cc: &str) -> &'static str {
    let name = Path::new(cc).file_name().and_then(|n| n.to_str()).unwrap_or(cc);
    match name.contains("clang") {
        true => "-fdebug-macro",
        false => "-g3",
    }
}

/// The option that has the compiler's stages (GCC: the compiler proper,
/// then the assembler) pass the code through a pipe rather than a
/// temporary file, so the assembler works on a second core while the
/// compiler writes: relive's compile of a 300-line file took 0.95 of the
/// build's plain `cc -c` with it, 1.11 without (both with `-g3`). The
/// object is the same. Only for compilers known to take it (GCC and
/// clang, by name: `cc` and `c++` are one of the two); another (`tcc`,
/// a wrapper such as `ccache`) gets nothing it might reject.
/// A build that keeps its temporary files (`-save-temps`) gets nothing
/// either: GCC would warn that it ignores `-pipe`, and relive shows a
/// compile's warnings.
fn stages_through_pipes(cc: &str, args: &[&String]) -> Option<&'static str> {
    let name = Path::new(cc).file_name().and_then(|n| n.to_str()).unwrap_or(cc);
    let known = name.contains("gcc") || name.contains("g++") || name.contains("clang") || matches!(name, "cc" | "c++");
    let keeps_temporaries = args.iter().any(|a| a.starts_with("-save-temps"));
    (known && !keeps_temporaries).then_some("-pipe")
}

/// Where a compile's macros are read from (see
/// [`relive_patch::debug_macros`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Macros {
    /// Its own macro debug information ([`macro_information`]): what a
    /// compile that shares the cores with others asks for.
    InDebugInfo,
    /// The preprocessor's listing (`-E -dD`), run beside the compile on a
    /// core it leaves idle: `-g3` made the compile of a 300-line file
    /// that includes `stdio.h` 11% slower (44.6 against 40.2 ms), and a
    /// save waits for the compile; the listing takes a third as long.
    Listed,
}

/// Starts the preprocessor of `compiler` (a copy of the compile's command)
/// listing the unit's macros, on a thread that also reads them from its
/// output as it writes it: started there, so that the compile does not
/// wait for it to start (0.2 to 3 ms here). The thread's result is `None`
/// when the preprocessor could not run or failed (the compile says why).
fn list_macros(mut compiler: Command, compile: usize) -> std::thread::JoinHandle<Option<Definitions>> {
    use std::io::BufRead;
    use std::process::Stdio;
    std::thread::spawn(move || {
        // Part of the compile: stopped with it (see `crate::stoppable`).
        let mut child = crate::stoppable::Member::spawn(
            compiler
                .arg("-E")
                .arg("-dD")
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::null()),
            compile,
        )
        .ok()?;
        // Only the definitions are kept: a C++ unit's listing is its whole
        // preprocessed text, megabytes.
        let mut definitions = Vec::new();
        let mut reader = std::io::BufReader::new(child.child.stdout.take()?);
        let mut line = Vec::new();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) if line.starts_with(b"#define ") => definitions.extend_from_slice(&line),
                Ok(_) => {}
            }
        }
        let succeeded = child.wait().is_ok_and(|status| status.success());
        succeeded.then(|| relive_patch::debug_macros::defined_in_listing(&definitions))
    })
}

/// Whether `args` ask for less debug information than types.
fn wants_types(args: &[&String]) -> bool {
    let mut level = 0;
    for a in args.iter().map(|a| a.as_str()) {
        let Some(rest) = a.strip_prefix("-g") else { continue };
        level = match rest {
            "0" | "gdb0" => 0,
            "1" | "gdb1" => 1,
            "" | "2" | "3" | "gdb" | "gdb2" | "gdb3" => 2,
            _ if rest.starts_with("dwarf") => level.max(2),
            _ => level,
        };
    }
    level < 2
}

/// The prerequisites a make-style depfile lists (`out.o: a.c b.h \\ c.h`).
fn parse_depfile(text: &str) -> Vec<PathBuf> {
    let joined = text.replace("\\\n", " ");
    joined
        .lines()
        .filter_map(|l| l.split_once(": ").or_else(|| l.split_once(':')))
        .flat_map(|(_, deps)| deps.split_whitespace().map(PathBuf::from).collect::<Vec<_>>())
        .collect()
}

/// The object of a compile or the compiler's message, the user headers
/// the unit includes when the compiler listed them, and what the compiler
/// printed for a compile that succeeded (its warnings).
pub(crate) struct Compiled {
    pub result: Result<ObjectFile, String>,
    pub headers: Option<Vec<PathBuf>>,
    pub warnings: Option<String>,
}

impl Compiled {
    fn failed(message: String) -> Compiled {
        Compiled {
            result: Err(message),
            headers: None,
            warnings: None,
        }
    }
}

/// A source, its fresh compile (or the compiler's message) and how long
/// the compile took, in microseconds.
pub(crate) type Fresh = (PathBuf, Result<ObjectFile, String>, u64);

/// Compiles `source` with `command` into `cache` (object number `n`).
/// The functions `like` (the object that runs) has alike are not decoded
/// again ([`ObjectFile::open_like`]).
/// `stoppable`: a save's compile, stopped as soon as the file is saved
/// again with another text (see [`crate::stoppable`]), which fails it as
/// [`SAVED_AGAIN`]; a start-up compile is what runs, whatever comes after.
pub(crate) fn compile(
    command: &CompileCommand,
    source: &Path,
    cache: &Path,
    n: usize,
    (like, macros): (Option<&ObjectFile>, Macros),
    stoppable: bool,
) -> Compiled {
    compile_from(command, source, cache, n, None, like, macros, stoppable)
}

/// The message of a compile stopped because its file was saved again.
pub(crate) const SAVED_AGAIN: &str = "stopped: the file was saved again while it compiled";

/// Compiles `text`, an earlier content of `source`, as `command` compiles
/// the file itself: the same object (`__FILE__`, the debug info's names
/// and quoted includes are the file's), found in the same headers. The
/// headers are not reported: the text is not what the file says now.
pub(crate) fn compile_text(command: &CompileCommand, source: &Path, text: &[u8], cache: &Path, n: usize) -> Compiled {
    Compiled {
        headers: None,
        ..compile_from(command, source, cache, n, Some(text), None, Macros::InDebugInfo, false)
    }
}

/// `SOURCE_DATE_EPOCH` for relive's compiles (unless relive's own
/// environment sets it, as a reproducible build does): the time GCC and
/// clang give `__DATE__` and `__TIME__`. Without it every compile of a
/// function that prints its build time (mimalloc's options.c) differed
/// from the last, so each save of its file was refused as changing that
/// function. The program file's modification time: the same for every
/// compile, and close to the build's (set once, by the reloader).
static BUILD_EPOCH: std::sync::OnceLock<u64> = std::sync::OnceLock::new();

/// Sets [`BUILD_EPOCH`] (the first call wins).
pub(crate) fn set_build_epoch(seconds: u64) {
    let _ = BUILD_EPOCH.set(seconds);
}

#[allow(clippy::too_many_arguments)]
fn compile_from(
    command: &CompileCommand,
    source: &Path,
    cache: &Path,
    n: usize,
    text: Option<&[u8]>,
    like: Option<&ObjectFile>,
    macros: Macros,
    stoppable: bool,
) -> Compiled {
    let stem = source.file_stem().and_then(|s| s.to_str()).unwrap_or("unit");
    let out = cache.join(format!("{stem}.{n}.o"));
    let (cc, flags) = command.args.split_first().expect("a compiler");
    // The text compiled, read before the compile: what tells the lines
    // the next save edits (`crate::edited`).
    let modified = || std::fs::metadata(source).and_then(|m| m.modified()).ok();
    // The last modification time read (the text is read again only when
    // it changes: a save of the same text, or a touch, would have it read
    // at every look).
    let modified_last = std::cell::Cell::new(modified());
    let compile_number = crate::stoppable::new_compile();
    let source_text = match text {
        Some(text) => Some(text.to_vec()),
        None => std::fs::read(source).ok(),
    };
    let (file, in_place) = match text {
        None => (command.file.clone(), Vec::new()),
        Some(text) => match copy_in_place_of(command, text, &cache.join(format!("text.{n}"))) {
            Ok(copy) => copy,
            Err(e) => return Compiled::failed(format!("copying {} for its compile: {e}", source.display())),
        },
    };
    // -MMD writes the user headers the unit includes (without changing
    // the code), so a header edit reloads every unit that uses it.
    let depfile = out.with_extension("d");
    let flags = without_dependency_options(flags);
    let listing = match macros {
        Macros::Listed => {
            let mut preprocessor = Command::new(cc);
            preprocessor
                .args(&in_place)
                .args(&flags)
                .arg(&file)
                .current_dir(&command.dir);
            Some(list_macros(preprocessor, compile_number))
        }
        Macros::InDebugInfo => None,
    };
    let mut compiler = Command::new(cc);
    if let (Some(epoch), None) = (BUILD_EPOCH.get(), std::env::var_os("SOURCE_DATE_EPOCH")) {
        compiler.env("SOURCE_DATE_EPOCH", epoch.to_string());
    }
    if macros == Macros::InDebugInfo {
        compiler.arg(macro_information(cc));
    }
    compiler
        .args(stages_through_pipes(cc, &flags))
        .args(in_place)
        .args(&flags)
        .args(debug_info_for_layouts(cc, &flags))
        .args(whole_classes(cc))
        .arg(A_SECTION_PER_VARIABLE)
        .arg("-c")
        .arg(&file)
        .arg("-o")
        .arg(&out)
        .arg("-MMD")
        .arg("-MF")
        .arg(&depfile)
        .current_dir(&command.dir);
    // Saved again with another text: this compile's object would only be
    // dropped for the next one's.
    let saved_again = || {
        let now = modified();
        text.is_none()
            && now != modified_last.replace(now)
            && std::fs::read(source).ok().as_deref() != source_text.as_deref()
    };
    let result = match stoppable {
        true => crate::stoppable::output_unless(&mut compiler, compile_number, &saved_again),
        false => compiler.output().map(Some),
    };
    // A compiler that cannot be started is this file's problem (a
    // recorded compiler since uninstalled), not every file's.
    let result = match result {
        Ok(Some(r)) => r,
        Ok(None) => return Compiled::failed(SAVED_AGAIN.to_string()),
        Err(e) => {
            return Compiled::failed(format!(
                "cannot run the compiler {cc} (in {}): {e}",
                command.dir.display()
            ))
        }
    };
    if !result.status.success() {
        return Compiled::failed(String::from_utf8_lossy(&result.stderr).trim_end().to_string());
    }
    // Every file the unit includes, `.c` files too (mimalloc's page.c
    // includes page-queue.c: its edits were ignored): all but the file
    // compiled (the source, or its copy).
    let compiled = crate::compdb::absolute(&command.dir.join(&file));
    let headers = std::fs::read_to_string(&depfile).ok().map(|text| {
        parse_depfile(&text)
            .into_iter()
            .map(|d| crate::compdb::absolute(&command.dir.join(d)))
            .filter(|d| d.as_path() != source && *d != compiled)
            .collect()
    });
    let warnings = String::from_utf8_lossy(&result.stderr).trim_end().to_string();
    let defined = listing.and_then(|listing| listing.join().ok().flatten());
    let texts = source_texts(source, source_text, headers.as_deref().unwrap_or_default());
    let result = ObjectFile::open_like(&out, like).map(|mut object| {
        if let Some(defined) = defined {
            object.set_defined_macros(defined);
        }
        object.set_source_texts(texts);
        object
    });
    Compiled {
        result: result.map_err(|e| e.to_string()),
        headers,
        warnings: (!warnings.is_empty()).then_some(warnings),
    }
}

/// The texts a compile read: the source's (`source_text`, read before it
/// ran) and its headers' (read now; a header is rarely saved while the
/// file that includes it compiles, and a text read late only makes the
/// lines said as edited less precise). A header's text is shared by every
/// compile that read it unchanged ([`shared_text`]).
fn source_texts(source: &Path, source_text: Option<Vec<u8>>, headers: &[PathBuf]) -> SourceTexts {
    let source = source_text.map(|t| (source.to_path_buf(), String::from_utf8_lossy(&t).into()));
    let headers = headers.iter().filter_map(|h| Some((h.clone(), shared_text(h)?)));
    SourceTexts(source.into_iter().chain(headers).collect())
}

/// The text of `path`, one copy for every caller while the file keeps its
/// size and modification time: a project's thousand files each include
/// the same headers, and a copy each would be a gigabyte.
fn shared_text(path: &Path) -> Option<std::sync::Arc<str>> {
    type Known = std::collections::HashMap<PathBuf, (u64, std::time::SystemTime, std::sync::Arc<str>)>;
    static KNOWN: std::sync::Mutex<Option<Known>> = std::sync::Mutex::new(None);
    let meta = std::fs::metadata(path).ok()?;
    let stamp = (meta.len(), meta.modified().ok()?);
    let mut known = KNOWN.lock().unwrap_or_else(|e| e.into_inner());
    let known = known.get_or_insert_with(Default::default);
    if let Some((len, modified, text)) = known.get(path) {
        if (*len, *modified) == stamp {
            return Some(text.clone());
        }
    }
    let text: std::sync::Arc<str> = String::from_utf8_lossy(&std::fs::read(path).ok()?).into();
    known.insert(path.to_path_buf(), (stamp.0, stamp.1, text.clone()));
    Some(text)
}

/// Writes `text` under `root` where the compiler can take it for
/// `command.file`: the copy's path is the file's own (absolute, or as
/// given relative to `command.dir`) under `root`, and the options returned
/// map that path back for `__FILE__` and the debug info
/// (`-ffile-prefix-map`, GCC 8 and clang 10 on) and look for quoted
/// includes in the file's own directory first (`-iquote`, searched right
/// after the copy's directory, which holds nothing else).
fn copy_in_place_of(command: &CompileCommand, text: &[u8], root: &Path) -> std::io::Result<(PathBuf, Vec<String>)> {
    let under_root = |p: &Path| root.join(p.strip_prefix("/").unwrap_or(p));
    let dir = std::path::absolute(&command.dir)?;
    let (copy, mapped, to) = if command.file.is_absolute() {
        (under_root(&command.file), root.to_path_buf(), "/")
    } else {
        (under_root(&dir).join(&command.file), under_root(&dir), "")
    };
    std::fs::create_dir_all(under_root(&dir))?;
    if let Some(parent) = copy.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&copy, text)?;
    let own_dir = dir.join(&command.file);
    let own_dir = own_dir.parent().unwrap_or(&dir);
    let options = vec![
        "-iquote".to_string(),
        own_dir.display().to_string(),
        format!("-ffile-prefix-map={}/={to}", mapped.display()),
    ];
    Ok((copy, options))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether compiler `cc` runs here; said when it does not.
    fn installed(cc: &str) -> bool {
        let runs = Command::new(cc).arg("--version").output().is_ok();
        if !runs {
            eprintln!("SKIPPED for {cc}: not installed (.ci/run installs it)");
        }
        runs
    }

    #[test]
    fn depfiles() {
        let deps = parse_depfile("/c/app.3.o: app.c shared.h \\\n ../inc/util.h\n");
        assert_eq!(
            deps,
            [PathBuf::from("app.c"), "shared.h".into(), "../inc/util.h".into()]
        );
        assert!(parse_depfile("").is_empty());
    }

    #[test]
    fn relives_compiles_carry_types_the_builds_may_not() {
        let wants = |args: &[&str]| {
            let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
            wants_types(&args.iter().collect::<Vec<_>>())
        };
        assert!(wants(&["-O2", "-DX"]));
        assert!(wants(&["-O2", "-g1"]), "line tables only: no types");
        assert!(wants(&["-g", "-g0"]), "the last one counts");
        assert!(!wants(&["-O2", "-g"]));
        assert!(!wants(&["-ggdb3"]));
        assert!(!wants(&["-gdwarf-4"]));
        assert!(wants(&["-O2", "-gsplit-dwarf"]), "not a level of its own");
        let o2 = "-O2".to_string();
        assert_eq!(
            debug_info_for_layouts("/usr/bin/gcc-12", &[&o2]),
            ["-g", "-fno-var-tracking", "-fno-var-tracking-assignments"]
        );
        assert_eq!(debug_info_for_layouts("clang", &[&o2]), ["-g"]);
        assert_eq!(
            debug_info_for_layouts("clang++-14", &[&o2]),
            ["-g"],
            "clang++ ends in g++"
        );
        assert_eq!(debug_info_for_layouts("x86_64-linux-gnu-g++-12", &[&o2]).len(), 3);
        assert_eq!(debug_info_for_layouts("cc", &[&o2]), ["-g"], "cc may be clang");
        let g = "-g".to_string();
        assert!(debug_info_for_layouts("gcc", &[&o2, &g]).is_empty());
    }

    #[test]
    fn options_are_asked_for_as_each_compiler_takes_them() {
        assert_eq!(whole_classes("clang++-14"), Some("-fstandalone-debug"));
        assert_eq!(whole_classes("/usr/bin/clang"), Some("-fstandalone-debug"));
        assert_eq!(whole_classes("g++"), None, "GCC describes them (and rejects it)");
        assert_eq!(whole_classes("cc"), None, "only clang by name");
        assert_eq!(macro_information("/usr/bin/gcc-12"), "-g3");
        assert_eq!(macro_information("x86_64-linux-gnu-g++"), "-g3");
        assert_eq!(macro_information("clang++-14"), "-fdebug-macro", "clang's -g3 has none");
        assert_eq!(macro_information("cc"), "-g3", "either compiler takes it");
        let (o2, temps) = ("-O2".to_string(), "-save-temps=obj".to_string());
        assert_eq!(stages_through_pipes("/usr/bin/gcc-12", &[&o2]), Some("-pipe"));
        assert_eq!(stages_through_pipes("clang++-14", &[]), Some("-pipe"));
        assert_eq!(stages_through_pipes("cc", &[]), Some("-pipe"));
        assert_eq!(
            stages_through_pipes("tcc", &[]),
            None,
            "a compiler not known to take it"
        );
        assert_eq!(stages_through_pipes("/usr/bin/ccache", &[]), None, "a wrapper");
        assert_eq!(stages_through_pipes("gcc", &[&o2, &temps]), None, "GCC would warn");
    }

    #[test]
    fn dependency_options_are_relives() {
        let args: Vec<String> = ["-O2", "-MD", "-MF", "dep/a.d", "-MT", "a.o", "-MFx.d", "-MP", "-DX"]
            .map(String::from)
            .to_vec();
        assert_eq!(without_dependency_options(&args), ["-O2", "-DX"]);
    }

    /// The bytes of every section with contents, by name.
    fn sections(path: &Path) -> Vec<(String, Vec<u8>)> {
        use object::{Object, ObjectSection};
        let data = std::fs::read(path).unwrap();
        let file = object::File::parse(&*data).unwrap();
        file.sections()
            .filter(|s| [".text", ".rodata.str1.1", ".rodata"].contains(&s.name().unwrap_or("")))
            .map(|s| (s.name().unwrap().to_string(), s.data().unwrap().to_vec()))
            .collect()
    }

    /// A copy compiled in place of the file makes the file's object: its
    /// `__FILE__` string, and the header found next to the file (a quoted
    /// include), for a file given relative to the compile's directory and
    /// for one given by its absolute path, with gcc and clang.
    #[test]
    fn a_copy_compiles_as_the_file_itself() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        std::fs::create_dir_all(p.join("src")).unwrap();
        std::fs::write(p.join("src/near.h"), "#define NEAR 7\n").unwrap();
        let text =
            "#include \"near.h\"\nconst char *where(void) { return __FILE__; }\nint near(void) { return NEAR; }\n";
        std::fs::write(p.join("src/unit.c"), text).unwrap();
        let cache = p.join("cache");
        std::fs::create_dir_all(&cache).unwrap();
        for cc in ["gcc", "clang"] {
            if !installed(cc) {
                continue;
            }
            for file in [PathBuf::from("src/unit.c"), p.join("src/unit.c")] {
                let command = CompileCommand {
                    args: vec![cc.into(), "-O2".into(), "-g".into()],
                    dir: p.to_path_buf(),
                    file: file.clone(),
                    origin: "test",
                    complete: true,
                    unlike_build: None,
                };
                let source = p.join("src/unit.c");
                let own = compile(&command, &source, &cache, 1, (None, Macros::InDebugInfo), false);
                own.result.unwrap();
                assert_eq!(own.headers.unwrap(), [p.join("src/near.h")]);
                compile_text(&command, &source, text.as_bytes(), &cache, 2)
                    .result
                    .unwrap();
                let own = sections(&cache.join("unit.1.o"));
                assert!(own.iter().any(|(_, b)| b
                    .windows(file.as_os_str().len())
                    .any(|w| w == file.as_os_str().as_encoded_bytes())));
                assert_eq!(own, sections(&cache.join("unit.2.o")), "{cc} {}", file.display());
            }
        }
    }

    /// A compile whose macros the preprocessor listed has no macro debug
    /// information (the `-g3` it replaces), and compared with another
    /// such compile, or with one that has that information (a reload's
    /// first edit is compared with the start-up compile), names exactly
    /// the macro the edit changed: the thousand that `stdio.h` defines
    /// are spelled alike both ways. With gcc and clang.
    #[test]
    fn listed_macros_compare_with_listed_and_with_debug_info() {
        use relive_patch::debug_macros::{changed, definitions, MacroChange};
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        let text = |limit: u32| {
            format!(
                "#include <stdio.h>\n#define LIMIT {limit}\n#define  TWICE( x )  ( (x) *  2 )\nint limit(void) {{ return TWICE(LIMIT) + BUFSIZ; }}\n"
            )
        };
        let cache = p.join("cache");
        std::fs::create_dir_all(&cache).unwrap();
        for cc in ["gcc", "clang"] {
            if !installed(cc) {
                continue;
            }
            let source = p.join(format!("{cc}.c"));
            let command = CompileCommand::plain(vec![cc.into(), "-O2".into(), "-g".into()], &source, "test");
            let mut n = 0;
            let mut compiled = |limit: u32, macros: Macros| {
                std::fs::write(&source, text(limit)).unwrap();
                n += 1;
                compile(&command, &source, &cache, n, (None, macros), false)
                    .result
                    .unwrap()
            };
            let in_debug_info = compiled(3, Macros::InDebugInfo);
            let listed = compiled(3, Macros::Listed);
            let listed_again = compiled(4, Macros::Listed);
            assert!(definitions(&in_debug_info).is_some_and(|d| d.len() > 500), "{cc}");
            assert_eq!(definitions(&listed), None, "{cc}: no -g3 beside the listing");
            let only_limit = vec![MacroChange {
                name: "LIMIT".into(),
                before: vec!["3".into()],
                after: vec!["4".into()],
                defined_in: None,
            }];
            assert_eq!(changed(&listed, &listed_again), only_limit, "{cc}");
            assert_eq!(changed(&in_debug_info, &listed_again), only_limit, "{cc}");
            assert_eq!(changed(&in_debug_info, &listed), [], "{cc}: the same text");
            assert_eq!(changed(&listed_again, &in_debug_info).len(), 1, "{cc}: and back");
        }
    }
}
