//! The patch engine's acceptance scenarios (../shared/docs/scenarios.md):
//! real C programs, compiled by gcc, running, patched with `relive patch`
//! and checked by what they print. Each core scenario runs at -O0 and -O2,
//! PIE and non-PIE.

use std::path::PathBuf;
use std::process::Command;

use relive_testkit::Target;
use serde_json::Value;
mod common;

/// Code generation flags of the program and its patches.
const BUILDS: [&[&str]; 4] = [
    &["-O0", "-fpie", "-pie"],
    &["-O2", "-fpie", "-pie"],
    &["-O0", "-fno-pie", "-no-pie"],
    &["-O2", "-fno-pie", "-no-pie"],
];

/// A running program built from `app.c`, and its patches.
struct Run {
    target: Target,
    /// The C compiler of the program and its patches.
    cc: String,
    flags: Vec<String>,
    source: String,
    patches: usize,
    state: tempfile::TempDir,
}

impl Run {
    fn start(source: &str, flags: &[&str]) -> Run {
        Run::start_files(&[("app.c", source)], flags)
    }

    /// Builds a program from several files (the first is `app.c`).
    fn start_files(files: &[(&str, &str)], flags: &[&str]) -> Run {
        Run::start_with("gcc", files, flags)
    }

    /// Builds a program from several files with C compiler `cc`.
    fn start_with(cc: &str, files: &[(&str, &str)], flags: &[&str]) -> Run {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        let exe = dir.path().join("app");
        let out = Command::new(cc)
            .args(flags)
            .args(["-pthread", "-o"])
            .arg(&exe)
            .args(files.iter().map(|(n, _)| *n))
            // Libraries after the files that use them (`-lm`).
            .args(flags.iter().filter(|f| f.starts_with("-l")))
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let target = Target::spawn(Command::new(&exe), exe, dir);
        Run {
            target,
            cc: cc.to_string(),
            flags: flags.iter().map(|s| s.to_string()).collect(),
            source: files[0].1.to_string(),
            patches: 0,
            state: tempfile::tempdir().unwrap(),
        }
    }

    fn dir(&self) -> PathBuf {
        self.target.dir.path().to_path_buf()
    }

    /// Compiles `file` with `source` as a patch object (same flags + -c).
    fn object(&mut self, file: &str, source: &str) -> PathBuf {
        std::fs::write(self.dir().join(file), source).unwrap();
        self.patches += 1;
        let obj = self.dir().join(format!("{file}.{}.o", self.patches));
        let out = Command::new(&self.cc)
            .args(&self.flags)
            .arg("-c")
            .arg(file)
            .arg("-o")
            .arg(&obj)
            .current_dir(self.dir())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        obj
    }

    fn relive(&self, args: &[&str]) -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_relive"))
            .args(args)
            .env("RELIVE_STATE_DIR", self.state.path())
            .output()
            .unwrap()
    }

    /// `relive patch --pid PID OBJ ARGS --json`, which must succeed.
    fn patch_object(&self, obj: &std::path::Path, extra: &[&str]) -> Value {
        let pid = self.target.pid_arg();
        let mut args = vec!["patch", "--pid", &pid, obj.to_str().unwrap(), "--json"];
        args.extend_from_slice(extra);
        let out = self.relive(&args);
        assert!(
            out.status.success(),
            "{args:?} ({:?}): {}",
            self.flags,
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// `relive patch PID NEW --base BASE --json`, which must succeed: its
    /// report.
    fn patch_json(&self, new: &std::path::Path, base: &std::path::Path) -> Value {
        common::patch_json(
            self.state.path(),
            self.target.pid(),
            new.to_str().unwrap(),
            base.to_str().unwrap(),
        )
    }

    /// `relive patch --pid PID NEW --base BASE`, reporting in words.
    fn patch_in_words(&self, new: &std::path::Path, base: &std::path::Path) -> std::process::Output {
        self.patch_command(new, base).output().unwrap()
    }

    /// The command [`Run::patch_in_words`] runs.
    fn patch_command(&self, new: &std::path::Path, base: &std::path::Path) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_relive"));
        cmd.args(["patch", "--pid", &self.target.pid_arg()])
            .arg(new)
            .arg("--base")
            .arg(base)
            .env("RELIVE_STATE_DIR", self.state.path());
        cmd
    }

    /// `relive patch --pid PID NEW --base BASE`, which must be refused
    /// (exit 1); returns its message.
    fn refused(&self, new: &std::path::Path, base: &std::path::Path) -> String {
        let out = self.patch_in_words(new, base);
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        stderr
    }

    /// Edits `app.c` to `source`, compiles it and patches every function.
    fn edit(&mut self, source: &str) -> Value {
        self.source = source.to_string();
        let obj = self.object("app.c", source);
        self.patch_object(&obj, &[])
    }

    /// Edits with a string replacement of the current source.
    fn replace(&mut self, from: &str, to: &str) -> Value {
        assert!(self.source.contains(from), "{from:?} not in the source");
        let new = self.source.replace(from, to);
        self.edit(&new)
    }

    fn expect(&self, line: &str) {
        eprintln!("{:?}: waiting for {line:?}", self.flags);
        self.target.wait_for(line);
    }

    fn peek(&self, addr: u64, len: usize) -> String {
        let out = self.relive(&[
            "peek",
            &self.target.pid_arg(),
            &addr.to_string(),
            &len.to_string(),
            "--json",
        ]);
        assert!(out.status.success());
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        v["bytes"].as_str().unwrap().to_string()
    }
}

fn applied<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["applied"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == name)
        .unwrap_or_else(|| panic!("{name} not applied: {report}"))
}

const TICKER: &str = r#"
#include <stdio.h>
#include <unistd.h>
int counter = 0;
__attribute__((noinline, noipa)) int value(void) { return 1; }
__attribute__((noinline, noipa)) int neighbour(void) { return 100; }
int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (;;) {
        counter++;
        printf("value %d neighbour %d\n", value(), neighbour());
        usleep(3000);
    }
}
"#;

/// libm's `tan` is a GNU indirect function that libm never calls itself,
/// so it has no IRELATIVE slot saying what its resolver chose, and relive
/// has no libm of its own to ask: the program's own GOT slot for it, bound
/// by the dynamic linker, says; not bound yet (lazy binding, never called),
/// the program's PLT entry that jumps through it is called. Before, a
/// patch calling `tan` was refused as calling what the program does not
/// have (`sin` worked: libm calls it; a user's trial on Lua's math.tan).
const TRIG: &str = r#"
#include <math.h>
#include <stdio.h>
#include <unistd.h>
volatile int mode = 0;
__attribute__((noinline, noipa)) double angle(void) { return 0.5; }
__attribute__((noinline, noipa)) long scaled(double x) { return mode ? (long)(tan(x) * 1000000) : (long)(x * 1000000); }
int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (;;) { printf("tan %ld\n", scaled(angle())); usleep(3000); }
}
"#;

#[test]
fn a_library_ifunc_the_library_never_calls_is_linked_to_its_choice() {
    let lm = ["-Wl,--no-as-needed", "-lm"];
    for binding in ["-Wl,-z,lazy", "-Wl,-z,now"] {
        let flags = ["-O2", binding, lm[0], lm[1]];
        let mut run = Run::start(TRIG, &flags);
        run.expect("tan 500000");
        let r = run.replace("mode ? (long)(tan(x) * 1000000) :", "1 ? (long)(tan(x) * 2000000) :");
        assert_eq!(applied(&r, "scaled")["generation"], 1, "{binding}: {r}");
        run.expect(&format!("tan {}", (0.5f64.tan() * 2e6) as i64));
    }
}

/// A one-shot patch with `--base` of an edit that also changed an
/// initial value says the program keeps the value it has (it said only
/// "patched value").
#[test]
fn a_one_shot_patch_says_an_initial_value_stays() {
    let mut run = Run::start(TICKER, &["-O2"]);
    run.expect("value 1 neighbour 100");
    let base = run.object("app.c", TICKER);
    let edited = TICKER
        .replace("int counter = 0;", "int counter = 5000;")
        .replace("return 1;", "return 2;");
    let new = run.object("app.c", &edited);
    let out = run.patch_in_words(&new, &base);
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("patched value"), "{text}");
    assert!(
        text.contains("the initial value of counter changed: the program keeps the value it has"),
        "{text}"
    );
    run.expect("value 2 neighbour 100");
}

/// An inline function of a header that a shared library also has (its
/// own copy, exported) and the program inlined everywhere: an object of
/// the program's file built without inlining defines it (weak). It is the
/// library's function, not the program's: not redirected, and the patch
/// goes near the program. Before, relive redirected the library's copy,
/// which put it out of the entry jump's reach ("its jump slot ... is
/// beyond the entry jump's ±2 GiB reach"; a user's trial on snappy).
#[test]
fn an_inline_function_a_library_also_has_is_not_redirected() {
    if Command::new("g++").arg("--version").output().is_err() {
        eprintln!("SKIPPED: g++ is not installed (.ci/run installs it)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    std::fs::write(
        p.join("twice.h"),
        "inline int twice(int x) { return 2 * x + 1; }\nint lib_use(int x);\n",
    )
    .unwrap();
    std::fs::write(
        p.join("lib.cc"),
        "#include \"twice.h\"\nint lib_use(int x) { return twice(x) + 100; }\n",
    )
    .unwrap();
    let app = |k: i32| {
        format!(
            "#include <cstdio>\n#include \"twice.h\"\n__attribute__((noinline)) int work(int i) {{ return twice(i) * {k}; }}\nint main() {{ char line[16]; while (fgets(line, sizeof line, stdin)) {{ printf(\"%d %d\\n\", work(2), lib_use(2)); fflush(stdout); }} }}\n"
        )
    };
    std::fs::write(p.join("app.cc"), app(3)).unwrap();
    let gxx = |args: &[&str]| {
        let out = Command::new("g++").args(args).current_dir(p).output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    gxx(&["-O0", "-g", "-fPIC", "-shared", "-o", "libtw.so", "lib.cc"]);
    let rpath = format!("-Wl,-rpath,{}", p.display());
    gxx(&["-O2", "-g", "-o", "app", "app.cc", "-L.", "-ltw", &rpath]);
    std::fs::write(p.join("app.cc"), app(4)).unwrap();
    gxx(&["-O0", "-g", "-c", "app.cc", "-o", "new.o"]);
    let exe = p.join("app");
    let mut target = Target::spawn(Command::new(&exe), exe, dir);
    let step = |target: &mut Target| {
        writeln!(target.stdin(), "step").unwrap();
        target.next_line()
    };
    assert_eq!(step(&mut target), "15 105");
    let state = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_relive"))
        .args([
            "patch",
            &target.pid_arg(),
            target.dir.path().join("new.o").to_str().unwrap(),
            "--json",
        ])
        .env("RELIVE_STATE_DIR", state.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = report["applied"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["name"].as_str())
        .collect();
    assert!(names.iter().any(|n| n.contains("work")), "{report}");
    assert!(
        !names.iter().any(|n| n.contains("twice")),
        "the library's copy is not redirected: {report}"
    );
    // The program's work runs its new code, the library its own twice.
    assert_eq!(step(&mut target), "20 105");
}

/// A function GCC cloned (`use.isra.0`: IPA-SRA passes the one field it
/// reads) is reverted by its source name; `relive revert PID use` said it
/// was not patched (a user's trial on bzip2).
const CLONED: &str = r#"
#include <stdio.h>
#include <unistd.h>
struct big { int a; int pad[32]; };
static struct big data[2] = {{7}, {9}};
volatile int which = 0;
static __attribute__((noinline)) int use(struct big *b) { return b->a * 3; }
__attribute__((noinline)) int step(void) { return use(&data[which]); }
int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (;;) { printf("use %d\n", step()); usleep(3000); }
}
"#;

#[test]
fn a_cloned_function_is_reverted_by_its_source_name() {
    let mut run = Run::start(CLONED, &["-O2"]);
    run.expect("use 21");
    let r = run.replace("b->a * 3", "b->a * 4");
    let name = r["applied"][0]["name"].as_str().unwrap_or_default().to_string();
    assert!(name.starts_with("use.isra"), "the clone is what runs: {r}");
    run.expect("use 28");
    // Its callers were patched with it (a clone's arguments are GCC's to
    // choose, so callers follow it): reverted alone, the clone would be
    // split from its caller's code of the same change, which is refused,
    // naming the functions to revert with it.
    let alone = run.relive(&["revert", &run.target.pid_arg(), "use"]);
    let said = String::from_utf8_lossy(&alone.stderr);
    // Every function that must go with it is named at once (the first
    // suggestion of a pair alone was refused again for the next).
    assert!(
        !alone.status.success() && said.contains("revert them together") && said.contains(" step main`"),
        "{said}"
    );
    run.expect("use 28");
    let out = run.relive(&["revert", &run.target.pid_arg(), "use", "step", "main"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&name),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    run.expect("use 21");
}

/// S1: a same-size body change: the next call returns the new value.
#[test]
fn s01_same_size_body_change() {
    for flags in BUILDS {
        let mut run = Run::start(TICKER, flags);
        run.expect("value 1 neighbour 100");
        let r = run.replace("return 1;", "return 2;");
        assert_eq!(applied(&r, "value")["generation"], 1);
        assert_eq!(applied(&r, "value")["method"], "jump");
        run.expect("value 2 neighbour 100");
    }
}

/// The report's times account for the whole command (issue 22): every
/// stage is a whole number of µs, the stages add up to no more than the
/// total, and the total is no more than the command took as the caller
/// saw it (the difference is starting and ending the process). A first
/// patch stops one thread for the new pool and all of them only for the
/// redirect.
#[test]
fn reported_times_cover_the_whole_command() {
    let mut run = Run::start(TICKER, BUILDS[1]);
    run.expect("value 1 neighbour 100");
    let obj = run.object("app.c", &TICKER.replace("return 1;", "return 2;"));
    let started = std::time::Instant::now();
    let r = run.patch_object(&obj, &[]);
    let seen_us = started.elapsed().as_micros() as u64;
    run.expect("value 2 neighbour 100");
    let t = &r["timing_us"];
    let stage = |name: &str| {
        t[name]
            .as_u64()
            .unwrap_or_else(|| panic!("{name} is not whole µs: {t}"))
    };
    // With one pid, the process is opened while the objects are read and
    // compared: those stages overlap, the others follow one another.
    let after: u64 = ["link", "alloc", "stop", "write", "check", "debuggers"]
        .iter()
        .map(|s| stage(s))
        .sum();
    let stages = (stage("read") + stage("diff")).max(stage("open")) + after;
    let total = stage("total");
    assert!(stages <= total, "stages {stages} µs > total {total} µs: {t}");
    assert!(
        total <= seen_us,
        "total {total} µs > the {seen_us} µs the command took: {t}"
    );
    assert!(stage("read") > 0 && stage("open") > 0, "{t}");
    let (pause, alloc_pause) = (r["pause_us"].as_u64().unwrap(), r["alloc_pause_us"].as_u64().unwrap());
    assert!(pause > 0 && alloc_pause > 0 && alloc_pause <= stage("alloc"), "{r}");
}

/// Profilers can name patched code: each patch appends `START SIZE NAME`
/// for every function it placed to `/tmp/perf-PID.map`, the JIT map perf
/// reads (samples in the anonymous pool showed as `[unknown]`).
#[test]
fn patched_code_is_named_for_profilers() {
    let mut run = Run::start(TICKER, BUILDS[1]);
    run.expect("value 1 neighbour 100");
    let map = std::path::PathBuf::from(format!("/tmp/perf-{}.map", run.target.pid()));
    let _ = std::fs::remove_file(&map);
    let r = run.replace("return 1;", "return 2;");
    run.expect("value 2 neighbour 100");
    let new_addr = applied(&r, "value")["current_addr"].as_u64().unwrap();
    let text = std::fs::read_to_string(&map).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with(&format!("{new_addr:x} ")))
        .unwrap_or_else(|| panic!("no line for {new_addr:#x} in {text}"));
    assert!(line.ends_with(" value [relive generation 1]"), "{line}");
    // A revert that frees the pool takes its lines out: later code at the
    // same addresses is not named after it.
    let out = run.relive(&["revert", &run.target.pid_arg(), "--all", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    if report["freed"].as_array().is_some_and(|f| !f.is_empty()) {
        let text = std::fs::read_to_string(&map).unwrap_or_default();
        assert!(!text.contains(&format!("{new_addr:x} ")), "{text}");
    }
    let _ = std::fs::remove_file(&map);
}

/// A C++ program with a member function, printing its result.
const SQ: &str = r#"
#include <cstdio>
#include <unistd.h>
struct Sq {
    int s;
    int area() const;
};
__attribute__((noinline)) int Sq::area() const { return s * s; }
int main() {
    setvbuf(stdout, nullptr, _IOLBF, 0);
    Sq q{3};
    for (;;) { std::printf("area %d\n", q.area()); usleep(3000); }
}
"#;

/// A C++ member function is patched, and relive's lines name it as
/// people write it (`Sq::area() const`, not `_ZNK2Sq4areaEv`).
#[test]
fn cxx_names_are_shown_demangled() {
    let mut run = Run::start_with("g++", &[("app.cpp", SQ)], &["-O2", "-g"]);
    run.expect("area 9");
    let obj = run.object("app.cpp", &SQ.replace("return s * s;", "return s * s + 1;"));
    let out = run.relive(&[
        "patch",
        &run.target.pid_arg(),
        obj.to_str().unwrap(),
        "--only",
        "_ZNK2Sq4areaEv",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("patched Sq::area() const "), "{stdout}");
    run.expect("area 10");
}

/// `revert --all` frees a pool that only dead stack words point into: a
/// patched function called a helper that kept the address of the patch's
/// literal in a local array, then both returned; the words stay below the
/// thread's stack pointer (dead) and kept the pool mapped for good.
/// The words are written 62 KiB below `tick`'s frame: live frames of
/// `printf` and `usleep` reuse the stack just below it, and a slot they
/// leave unwritten would hold the address for real (a live word, which
/// rightly keeps the pool).
#[test]
fn dead_stack_words_do_not_keep_a_pool() {
    const SRC: &str = r#"
#include <stdio.h>
#include <unistd.h>
__attribute__((noinline, noipa)) int deep(const char *s) {
    volatile const char *keep[8192];
    for (int i = 0; i < 256; i++) keep[i] = s;
    return keep[255][0];
}
__attribute__((noinline, noipa)) int tick(void) { return deep("old"); }
int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (;;) { printf("tick %c\n", tick()); usleep(3000); }
}
"#;
    let mut run = Run::start(SRC, BUILDS[1]);
    run.expect("tick o");
    let r = run.replace("deep(\"old\")", "deep(\"new\")");
    assert_eq!(applied(&r, "tick")["generation"], 1, "{r}");
    run.expect("tick n");
    // Rarely the thread is stopped where a word above its stack pointer
    // still holds a return address into the new code (printf's frame had
    // not yet overwritten it): the scan is conservative and keeps the pool
    // then, and a later `revert --all` checks it again. A pool kept by
    // dead words alone would be kept every time.
    let mut tries = Vec::new();
    for _ in 0..5 {
        let out = run.relive(&["revert", &run.target.pid_arg(), "--all", "--json"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        let freed = report["freed"].as_array().map(Vec::len) == Some(1);
        tries.push(report);
        if freed {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let last = tries.last().unwrap();
    assert_eq!(last["kept"], serde_json::json!([]), "{tries:?}");
    assert_eq!(last["freed"].as_array().map(Vec::len), Some(1), "{tries:?}");
    run.expect("tick o");
}

/// A function that is only a tail call through a function pointer
/// (`jmp *fp(%rip)`) writes no register itself, but what it jumps to
/// returns in rax: its callers assume nothing kept, so the new code is
/// entered directly (it was entered through a thunk keeping rax, and the
/// return value was lost: `call_fp(19) = 0`).
#[test]
fn a_tail_call_through_a_pointer_keeps_its_return_value() {
    const SRC: &str = r#"
#include <stdio.h>
#include <unistd.h>
__attribute__((noinline)) int twice(int x) { return 2 * x; }
int (*volatile fp)(int) = twice;
__attribute__((noinline)) int call_fp(int x) { return fp(x); }
int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (int n = 0;; n++) { printf("call_fp(19) = %d\n", call_fp(19)); usleep(3000); }
}
"#;
    for flags in BUILDS.iter().filter(|f| f.contains(&"-O2")) {
        let mut run = Run::start(SRC, flags);
        run.expect("call_fp(19) = 38");
        let obj = run.object("app.c", &SRC.replace("return fp(x); }", "return fp(x) + 1000; }"));
        let r = run.patch_object(&obj, &["--only", "call_fp"]);
        let preserves = applied(&r, "call_fp")["preserves"].to_string();
        assert!(!preserves.contains("rax"), "{r}");
        run.expect("call_fp(19) = 1038");
    }
}

/// The contents of a global constant table that another file reads are
/// refused, naming it: the patch copied the new table for this file's
/// functions only, and the other file's code kept reading the old one (a
/// trial on Lua: `luaT_typenames_` changed in ltm.c, lapi.c still printed
/// the old name, nothing said so).
#[test]
fn a_changed_global_constant_other_files_read_is_refused() {
    const A: &str = r#"
#include <stdio.h>
#include <unistd.h>
const char *const names[3] = {"zero", "one", "two"};
const char *other(int i);
__attribute__((noinline)) const char *mine(int i) { return names[i % 3]; }
int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (;;) { printf("%s %s\n", mine(1), other(2)); usleep(3000); }
}
"#;
    const B: &str = "extern const char *const names[3];\n__attribute__((noinline)) const char *other(int i) { return names[i % 3]; }\n";
    let mut run = Run::start_files(&[("app.c", A), ("b.c", B)], &["-O2", "-g"]);
    run.expect("one two");
    let base = run.object("app.c", A);
    let new = run.object("app.c", &A.replace("\"two\"", "\"TWO\""));
    let stderr = run.refused(&new, &base);
    assert!(stderr.contains("global constant names"), "{stderr}");
    run.expect("one two");
}

/// A caller compiled against a header that changed the prototype of a
/// function another file defines, patched alone, is refused naming both
/// signatures: the definition the program runs takes no such argument (a
/// bzip2 trial's `BZ2_compressBlock` passed a sixth argument to the
/// running `BZ2_hbAssignCodes`, and every stream came out corrupt). A
/// change that keeps the prototype still patches.
#[test]
fn a_caller_compiled_against_a_changed_prototype_of_another_file_is_refused() {
    const A: &str = r#"
#include <stdio.h>
#include <unistd.h>
int scale(int x, int by);
__attribute__((noinline)) int total(int x) { return scale(x, 3); }
int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (;;) { printf("total %d\n", total(2)); usleep(3000); }
}
"#;
    // Defined with a top-level const the declaration lacks: the same
    // prototype, in C.
    const B: &str = "__attribute__((noinline)) int scale(int x, const int by) { return x * by; }\n";
    let mut run = Run::start_files(&[("app.c", A), ("b.c", B)], &["-O2", "-g"]);
    run.expect("total 6");
    let base = run.object("app.c", A);
    // The prototype (a header's, as the caller's compile sees it) now
    // puts an offset first; b.c is not rebuilt.
    let changed = A
        .replace("int scale(int x, int by);", "int scale(int offset, int x, int by);")
        .replace("scale(x, 3)", "scale(100, x, 3)");
    let new = run.object("app.c", &changed);
    let said = "calls scale as int(int, int, int), but the program runs scale with the signature it was built with, int(int, int)";
    let stderr = run.refused(&new, &base);
    assert!(stderr.contains(said), "{stderr}");
    run.expect("total 6");
    // Patched with a body edit first, `scale` still takes two: judged
    // the same (the check was skipped for a patched callee: a bzip2
    // re-check's caller passing a fifth argument went in).
    let b_base = run.object("b.c", B);
    let b_new = run.object("b.c", &B.replace("x * by", "x * by + 1"));
    run.patch_json(&b_new, &b_base);
    run.expect("total 7");
    let stderr = run.refused(&new, &base);
    assert!(stderr.contains(said), "{stderr}");
    run.expect("total 7");
    // The prototype as it was: the same call, another constant, patches.
    let same = run.object("app.c", &A.replace("scale(x, 3)", "scale(x, 5)"));
    let report = run.patch_json(&same, &base);
    assert_eq!(report["applied"][0]["name"], "total", "{report}");
    run.expect("total 11");
}

/// A parameter spelled another way with the same type (`const` added at
/// its top, a typedef's name for what it names) is no signature change:
/// an edit of the body made with it was refused, its callers said to
/// pass the old arguments (a bzip2 trial: `Int32 alphaSize` made
/// `const Int32 alphaSize`, or `int alphaSize`); so is a parameter
/// renamed in its place. A real change of type is still refused.
#[test]
fn a_parameter_spelled_another_way_is_not_a_signature_change() {
    const A: &str = r#"
#include <stdio.h>
#include <unistd.h>
typedef int Int32;
__attribute__((noinline, noipa)) int grow(Int32 size, int step) { return size * 2 + step; }
__attribute__((noinline, noipa)) int after(int x) { return x + 100; }
int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (;;) { printf("grow %d %d\n", grow(10, 1), after(1)); usleep(3000); }
}
"#;
    let mut run = Run::start(A, &["-O2", "-g"]);
    run.expect("grow 21 101");
    let base = run.object("app.c", A);
    // And `step` renamed: in its place, a rename changes no call (a
    // bzip2 re-check's `maxLen` made `maxLength` was refused).
    let spelled = A
        .replace(
            "int grow(Int32 size, int step)",
            "int grow(const Int32 size, Int32 increment)",
        )
        .replace("size * 2 + step", "size * 3 + increment");
    let new = run.object("app.c", &spelled);
    let report = run.patch_json(&new, &base);
    assert_eq!(report["applied"][0]["name"], "grow", "{report}");
    run.expect("grow 31 101");
    // `double` is another type: its callers pass an `int`, in another
    // register.
    let other_type = spelled
        .replace("const Int32 size", "double size")
        .replace("size * 3 + increment", "(int)(size * 3) + increment");
    let changed = run.object("app.c", &other_type);
    let stderr = run.refused(&changed, &new);
    assert!(
        stderr.contains("the signature of a global function changed"),
        "{stderr}"
    );
    run.expect("grow 31 101");
}

/// An object compiled with `-fno-pic` (absolute 32-bit relocations) for
/// a PIE program loaded high is refused for what it is, naming the flag:
/// it said no free range was found and asked whether the address space
/// was crowded (a bzip2 trial). Nothing is written.
#[test]
fn a_no_pic_object_for_a_pie_program_is_refused_naming_the_flags() {
    const A: &str = r#"
#include <stdio.h>
#include <unistd.h>
long counter;
__attribute__((noinline)) long *where(void) { return &counter; }
int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (;;) { counter++; printf("same %d\n", where() == &counter); usleep(3000); }
}
"#;
    let mut run = Run::start(A, &["-O2", "-g", "-fPIE", "-pie"]);
    run.expect("same 1");
    let base = run.object("app.c", A);
    let new = run.dir().join("no-pic.o");
    let source = A.replace("return &counter;", "return &counter + 0;");
    std::fs::write(run.dir().join("app.c"), &source).unwrap();
    let built = Command::new("gcc")
        .args(["-O2", "-g", "-fno-pic", "-c", "app.c", "-o"])
        .arg(&new)
        .current_dir(run.dir())
        .status()
        .unwrap();
    assert!(built.success());
    let stderr = run.refused(&new, &base);
    assert!(
        stderr.contains("absolute 32-bit relocations") && stderr.contains("-fPIE or -fPIC"),
        "{stderr}"
    );
    assert!(!stderr.contains("crowded"), "{stderr}");
    run.expect("same 1");
}

/// Reverting by name a function a patch added says so, and how to stop
/// it running: "helper is not patched" alone read as a mistake (a bzip2
/// trial's `fallbackSort.part.0`).
#[test]
fn reverting_an_added_function_says_a_patch_added_it() {
    let mut run = Run::start(TICKER, &["-O2", "-g"]);
    run.expect("value 1 neighbour 100");
    let base = run.object("app.c", TICKER);
    let with_helper = TICKER.replace(
        "__attribute__((noinline, noipa)) int value(void) { return 1; }",
        "__attribute__((noinline, noipa)) int helper(void) { return 7; }\n__attribute__((noinline, noipa)) int value(void) { return helper(); }",
    );
    let new = run.object("app.c", &with_helper);
    let report = run.patch_json(&new, &base);
    assert_eq!(report["added"][0]["name"], "helper", "{report}");
    run.expect("value 7 neighbour 100");
    let out = run.relive(&["revert", &run.target.pid_arg(), "helper"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("helper is not patched")
            && stderr.contains("change 1 added it")
            && stderr.contains("reverting the patched functions that call it leaves it unused"),
        "{stderr}"
    );
    assert!(!stderr.contains("has no function of that name"), "{stderr}");
    run.expect("value 7 neighbour 100");
}

/// A `--base` compiled from another source file (no function in common)
/// is refused, naming both files: every function of the new object counted as added, and relive
/// redirected them all (`main` too) and said "patched" (a trial's
/// `crc32.o --base adler32.o` paused 1,000 threads for 1.4 s). Nothing is
/// written; the right base still patches.
#[test]
fn a_base_from_another_source_file_is_refused() {
    let mut run = Run::start(TICKER, &["-O2", "-g"]);
    run.expect("value 1 neighbour 100");
    let other = run.object("other.c", "int other_sum(int x) { return x + 1; }\n");
    let base = run.object("app.c", TICKER);
    let new = run.object("app.c", &TICKER.replace("return 1;", "return 2;"));
    let stderr = run.refused(&new, &other);
    assert!(
        stderr.contains("(from other.c)") && stderr.contains("(from app.c) define no function in common"),
        "{stderr}"
    );
    let status = run.relive(&["status", "--pid", &run.target.pid_arg(), "--json"]);
    let status: Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status["patches"], serde_json::json!([]), "{status}");
    run.expect("value 1 neighbour 100");
    let out = run.patch_in_words(&new, &base);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    run.expect("value 2 neighbour 100");
    // The same patch again: nothing written, and the JSON still has the
    // times every other result has (a script reading them broke).
    let again = run.patch_object(&new, &["--base", base.to_str().unwrap()]);
    assert_eq!(again["already"], serde_json::json!(["value"]), "{again}");
    let t = &again["timing_us"];
    assert!(t["total"].as_u64().is_some_and(|total| total > 0), "{again}");
    assert!(["read", "diff", "open"].iter().all(|k| t[k].is_u64()), "{again}");
}

/// Going back to an earlier version by patching its object against
/// itself compares nothing with what runs: relive writes nothing, and
/// says that the process runs a patched version and what to pass instead
/// (it said only "no function changed").
#[test]
fn an_object_patched_against_itself_says_what_the_process_runs() {
    let mut run = Run::start(TICKER, &["-O2", "-g"]);
    run.expect("value 1 neighbour 100");
    let old = run.object("app.c", TICKER);
    let new = run.object("app.c", &TICKER.replace("return 1;", "return 2;"));
    assert!(run.patch_in_words(&new, &old).status.success());
    run.expect("value 2 neighbour 100");
    let pid = run.target.pid_arg();
    let out = run.patch_in_words(&old, &old);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("nothing to patch: no function changed"), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "not with what process {pid} runs, and it runs patched versions of value (generation 1)"
        )) && stdout.contains("pass the object it runs now as --base"),
        "{stdout}"
    );
    // The object that runs, against itself: nothing to tell (it said to
    // pass the object that runs as the base: this one).
    let out = run.patch_in_words(&new, &new);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("nothing to patch") && !stdout.contains("runs patched versions"),
        "{stdout}"
    );
    // The JSON result carries it too, and nothing was written.
    let json = run.patch_object(&old, &["--base", old.to_str().unwrap()]);
    assert_eq!(json["applied"], serde_json::json!([]), "{json}");
    assert!(
        json["warnings"].to_string().contains("runs patched versions of value"),
        "{json}"
    );
    run.expect("value 2 neighbour 100");
    // Passing what runs as the base goes back.
    assert!(run.patch_in_words(&old, &new).status.success());
    run.expect("value 1 neighbour 100");
    // Once nothing is patched, there is no such note.
    assert!(run.relive(&["revert", &pid, "--all"]).status.success());
    let out = run.patch_in_words(&old, &old);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("nothing to patch") && !stdout.contains("runs patched versions"),
        "{stdout}"
    );
}

/// Every key `status --json` gives is one its help documents (it
/// documented a "notes" key it left out and missed three it gave), and
/// what a patch added is listed, in JSON and in words.
#[test]
fn status_lists_what_patches_added_and_documents_every_key() {
    let mut run = Run::start(TICKER, &["-O2", "-g"]);
    run.expect("value 1 neighbour 100");
    run.replace(
        "__attribute__((noinline, noipa)) int value(void) { return 1; }",
        "__attribute__((noinline, noipa)) int helper(int x) { return x * 7; }\n__attribute__((noinline, noipa)) int value(void) { return helper(1); }",
    );
    run.expect("value 7 neighbour 100");
    let pid = run.target.pid_arg();
    let out = run.relive(&["status", &pid, "--json"]);
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    let added = status["added"].as_array().expect("added");
    assert!(
        added
            .iter()
            .any(|a| a["name"] == "helper" && a["kind"] == "function" && a["addr"].is_u64()),
        "{status}"
    );
    let help = String::from_utf8_lossy(&run.relive(&["status", "--help"]).stdout).to_string();
    fn keys(v: &Value, into: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    into.push(k.clone());
                    keys(v, into);
                }
            }
            Value::Array(a) => a.iter().for_each(|v| keys(v, into)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    keys(&status, &mut all);
    let undocumented: Vec<&String> = all.iter().filter(|k| !help.contains(&format!("\"{k}\""))).collect();
    assert!(
        undocumented.is_empty(),
        "undocumented keys {undocumented:?} in {status}"
    );
    assert!(
        all.iter().any(|k| k == "debug_images"),
        "a -g patch lists a symbol file: {status}"
    );
    let text = run.relive(&["status", &pid]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.lines().any(|l| l.starts_with("added helper")), "{text}");
    // A revert that leaves the pool says what the changes it undoes
    // added stays: here of a patch of neighbour alone (against the
    // object that runs), which added nothing; helper, added by the first
    // patch, is not said to stay (a zlib trial: every revert named an
    // unrelated added function).
    let v1 = run.object("app.c", &run.source.clone());
    let v2_source = run.source.replace("return 100;", "return 200;");
    let v2 = run.object("app.c", &v2_source);
    assert!(run.patch_in_words(&v2, &v1).status.success());
    run.expect("value 7 neighbour 200");
    let out = run.relive(&["revert", &pid, "--last"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        text.contains("reverted neighbour") && !text.contains("reverted helper") && !text.contains("stays"),
        "{text}"
    );
    run.expect("value 7 neighbour 100");
    // An added function patched again and reverted is reverted, to the
    // copy that was added: not also said to stay (it said both).
    let v3 = run.object("app.c", &run.source.replace("return x * 7;", "return x * 8;"));
    assert!(run.patch_in_words(&v3, &v1).status.success());
    run.expect("value 8 neighbour 100");
    let out = run.relive(&["revert", &pid, "--last"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("reverted helper") && !text.contains("stays    helper"),
        "{text}"
    );
    run.expect("value 7 neighbour 100");
    // One that frees the pool frees it with it, and says nothing of it.
    // (A thread caught inside the pool's code, or a stale return address
    // on its stack, keeps the pool, said with the reference: then the
    // added function stays, and is said to.)
    let out = run.relive(&["revert", &pid, "--all"]);
    let text = String::from_utf8_lossy(&out.stdout);
    let freed = text.contains("freed") && !text.contains("stays");
    let kept = text.contains("still referenced") && text.contains("stays    helper");
    assert!(freed || kept, "{text}");
    run.expect("value 1 neighbour 100");
}

/// GCC at -O2 (`-fipa-ra`) lets `main` keep `printf`'s format in `rdi`
/// across the call to `value`, whose code it knows leaves `rdi` alone. A
/// new `value` that calls functions writes `rdi`: it is entered through a
/// thunk that keeps it (and only what the callers may rely on). At -O0
/// nothing is assumed and calls go straight to the new code.
#[test]
fn registers_callers_keep_across_a_call_survive_a_patch() {
    const SRC: &str = relive_testkit::VALUE_PROGRAM;
    for build in BUILDS {
        // With -g the object records how it was compiled (without, relive
        // assumes the worst and keeps registers at -O0 too).
        let flags: Vec<&str> = build.iter().copied().chain(["-g"]).collect();
        let mut run = Run::start(SRC, &flags);
        run.expect("value 1 counter 3");
        let r = run.replace(
            "int value(void) { return one; }",
            "int value(void) { return (int)strlen(word) * 10 + one; }",
        );
        let value = applied(&r, "value");
        let preserves: Vec<&str> = value["preserves"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        if flags[0] == "-O2" {
            assert!(preserves.contains(&"rdi"), "{flags:?}: {value}");
            assert!(!preserves.contains(&"rax"), "the return value is not kept: {value}");
            assert_ne!(value["entry_addr"], value["current_addr"]);
        } else {
            assert!(preserves.is_empty(), "{flags:?}: {value}");
            assert_eq!(value["entry_addr"], value["current_addr"]);
        }
        run.target.wait_for_prefix("value 41 counter ");
        // A second version through the same slot keeps them too.
        let r = run.replace("* 10 + one", "* 100 + one");
        assert_eq!(applied(&r, "value")["method"], "slot");
        run.target.wait_for_prefix("value 401 counter ");
        if flags[0] == "-O2" {
            // The human report says so too.
            let source = run.source.replace("* 100 + one", "* 1000 + one");
            let obj = run.object("app.c", &source);
            run.source = source;
            let pid = run.target.pid_arg();
            let out = run.relive(&["patch", "--pid", &pid, obj.to_str().unwrap()]);
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(
                text.contains("through a thunk keeping") && text.contains("rdi"),
                "{text}"
            );
            // A later patch moves only the slot; `status` shows how the
            // entry is redirected, and the report does not contradict it.
            assert!(text.contains("slot updated, the entry's redirect unchanged"), "{text}");
            let status = run.relive(&["status", &pid]);
            assert!(
                String::from_utf8_lossy(&status.stdout).contains("generation 3 (jump)"),
                "{status:?}"
            );
            run.target.wait_for_prefix("value 4001 counter ");
        }
    }
}

/// Two functions entered through thunks in one patch: each thunk calls its
/// own new function.
#[test]
fn two_register_keeping_thunks_in_one_patch() {
    const TWO: &str = r#"
#include <stdio.h>
#include <string.h>
#include <unistd.h>
volatile int one = 1;
const char *volatile word = "abcd";
__attribute__((noinline)) int first(void) { return one; }
__attribute__((noinline)) int second(void) { return one + 1; }
int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (;;) { printf("first %d second %d\n", first(), second()); usleep(3000); }
}
"#;
    let mut run = Run::start(TWO, &["-O2", "-fpie", "-pie", "-g"]);
    run.expect("first 1 second 2");
    let r = run.edit(
        &TWO.replace("{ return one; }", "{ return (int)strlen(word) * 10 + one; }")
            .replace("{ return one + 1; }", "{ return (int)strlen(word) * 100 + one; }"),
    );
    for name in ["first", "second"] {
        let a = applied(&r, name);
        assert!(!a["preserves"].as_array().unwrap().is_empty(), "{a}");
        assert_ne!(a["entry_addr"], a["current_addr"], "{a}");
    }
    run.expect("first 41 second 401");
}

/// S2: the body grows past its old size and past the next function's
/// start: the new body runs, the neighbour is untouched.
#[test]
fn s02_body_grows_past_the_neighbour() {
    for flags in BUILDS {
        let mut run = Run::start(TICKER, flags);
        run.expect("value 1 neighbour 100");
        run.replace(
            "int value(void) { return 1; }",
            "int value(void) { volatile int a[64]; for (int i = 0; i < 64; i++) a[i] = i; int s = 0; for (int i = 0; i < 64; i++) s += a[i]; return s; }",
        );
        run.expect("value 2016 neighbour 100");
    }
}

/// S4: a function pointer taken before the patch reaches the new code.
#[test]
fn s04_function_pointer_taken_before() {
    const SRC: &str = r#"
#include <stdio.h>
#include <unistd.h>
__attribute__((noinline, noipa)) int value(void) { return 1; }
int (*volatile saved)(void);
int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    saved = value;
    for (;;) { printf("via pointer %d\n", saved()); usleep(3000); }
}
"#;
    for flags in BUILDS {
        let mut run = Run::start(SRC, flags);
        run.expect("via pointer 1");
        run.replace("return 1;", "return 7;");
        run.expect("via pointer 7");
    }
}

/// S5: a global keeps its value and address across 10 successive patches.
#[test]
fn s05_global_survives_ten_patches() {
    const SRC: &str = r#"
#include <stdio.h>
#include <unistd.h>
long total = 0;
__attribute__((noinline, noipa)) void step(void) { total += 1; }
int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("addr %p\n", (void *)&total);
    for (;;) { step(); printf("total %ld\n", total); usleep(2000); }
}
"#;
    for flags in BUILDS {
        let mut run = Run::start(SRC, flags);
        let addr = relive_testkit::hex_addr(&run.target.wait_for_prefix("addr "));
        let mut last = 0i64;
        for generation in 1..=10 {
            let step = generation * 1000;
            let r = run.replace(
                &format!("total += {};", if generation == 1 { 1 } else { step - 1000 }),
                &format!("total += {step};"),
            );
            assert_eq!(applied(&r, "step")["generation"], generation);
            assert_eq!(
                applied(&r, "step")["method"],
                if generation == 1 { "jump" } else { "slot" }
            );
            let data: Vec<&Value> = r["data"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|d| d["name"] == "total")
                .collect();
            assert_eq!(data.len(), 1, "{r}");
            assert_eq!(
                (data[0]["addr"].as_u64(), data[0]["action"].as_str()),
                (Some(addr), Some("kept"))
            );
            // The next totals grow by `step` from where they were: state kept.
            let first: i64 = run.target.wait_for_prefix("total ").parse().unwrap();
            let mut prev = first;
            loop {
                let t: i64 = run.target.wait_for_prefix("total ").parse().unwrap();
                if t - prev == step {
                    assert!(t > last, "total went back: {t} after {last}");
                    last = t;
                    break;
                }
                prev = t;
            }
        }
    }
}

/// S8 and S9: a changed function calls a new function and uses a new
/// initialised global, which starts at its initial value and keeps its
/// state afterwards.
#[test]
fn s08_s09_new_function_and_new_global() {
    for flags in BUILDS {
        let mut run = Run::start(TICKER, flags);
        run.expect("value 1 neighbour 100");
        let r = run.replace(
            "__attribute__((noinline, noipa)) int value(void) { return 1; }",
            "int fresh = 40;\n__attribute__((noinline, noipa)) int helper(int x) { return x + 1; }\n__attribute__((noinline, noipa)) int value(void) { fresh += 2; return helper(fresh); }",
        );
        let added: Vec<&str> = r["added"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["name"].as_str().unwrap())
            .collect();
        assert!(added.contains(&"helper"), "{r}");
        assert!(r["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["name"] == "fresh" && d["action"] == "new"));
        // fresh: 42, 44, 46 ... (helper adds 1): values are odd and rising.
        let value = || -> i64 {
            run.target
                .wait_for_prefix("value ")
                .split(' ')
                .next()
                .unwrap()
                .parse()
                .unwrap()
        };
        // Lines printed before the patch may still be in the pipe.
        let first = std::iter::repeat_with(value).find(|&v| v != 1).unwrap();
        assert!(first >= 43 && first % 2 == 1, "{first}");
        assert_eq!(value(), first + 2);
    }
}

/// S10: a changed string literal is printed.
#[test]
fn s10_changed_string_literal() {
    const SRC: &str = r#"
#include <stdio.h>
#include <unistd.h>
__attribute__((noinline, noipa)) const char *greeting(void) { return "hello"; }
int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (;;) { printf("%s\n", greeting()); usleep(3000); }
}
"#;
    for flags in BUILDS {
        let mut run = Run::start(SRC, flags);
        run.expect("hello");
        run.replace("\"hello\"", "\"bonjour, relive\"");
        run.expect("bonjour, relive");
    }
}

/// A patch brings only the literals its functions use: a function whose
/// literal changed, in a file with 300 literals used elsewhere, adds
/// its one string to the pool (every patch copied the file's whole string
/// section, and pools filled up: SQLite's is hundreds of kilobytes).
/// Optimised builds, whose literals are in string sections (`-O0` puts them
/// in plain `.rodata` with other constants, still copied whole).
#[test]
fn only_the_literals_a_patch_uses_are_copied() {
    let mut src = String::from("#include <stdio.h>\n#include <unistd.h>\n__attribute__((noinline, noipa)) const char *label(int i) {\n    switch (i % 300) {\n");
    // Short ones: GCC keeps them in `.rodata.str1.1` with "hello" (long
    // literals go to `.rodata.str1.8`).
    for k in 0..300 {
        src.push_str(&format!("    case {k}: return \"label {k}\";\n"));
    }
    src.push_str("    }\n    return \"\";\n}\n__attribute__((noinline, noipa)) const char *greeting(void) { return \"hello\"; }\nint main(void) {\n    setvbuf(stdout, NULL, _IOLBF, 0);\n    for (int n = 0;; n++) { printf(\"%s %.8s\\n\", greeting(), label(n)); usleep(3000); }\n}\n");
    for flags in BUILDS.iter().filter(|f| f.contains(&"-O2")) {
        let mut run = Run::start(&src, flags);
        run.expect("hello label 12");
        let base = run.object("app.c", &src);
        let new = run.object("app.c", &src.replace("\"hello\"", "\"bonjour, relive\""));
        let r = run.patch_object(&new, &["--base", base.to_str().unwrap()]);
        let copied: Vec<&Value> = r["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["action"] == "new")
            .collect();
        assert_eq!(copied.len(), 1, "one literal: {r}");
        let ro_used = r["region"]["ro_used"].as_u64().unwrap();
        assert!(ro_used < 256, "the pool's read-only part holds {ro_used} bytes: {r}");
        run.expect("bonjour, relive label 12");
        // A changed function that uses 299 unchanged literals and one new
        // one: the program's own copies serve, only the new one is brought.
        let one_changed = src
            .replace("\"hello\"", "\"bonjour, relive\"")
            .replace("case 7: return \"label 7\";", "case 7: return \"seventh!\";");
        let changed = run.object("app.c", &one_changed);
        let r = run.patch_object(&changed, &["--base", new.to_str().unwrap()]);
        let literals = |action: &str| {
            r["data"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|d| d["action"] == action && d["name"].as_str().unwrap().starts_with(".rodata.str"))
                .count()
        };
        assert_eq!(literals("new"), 1, "only the new literal is copied: {r}");
        assert!(literals("kept") >= 299, "the program's literals serve: {r}");
        run.expect("bonjour, relive label 12");
        run.expect("bonjour, relive seventh!");
        run.expect("bonjour, relive label 99");
        // A function that uses 300 new literals, in words: one line for
        // the literal pieces, not one per piece.
        let relabelled = src
            .replace("\"hello\"", "\"bonjour, relive\"")
            .replace("return \"label ", "return \"LABEL ");
        let newer = run.object("app.c", &relabelled);
        let out = run.patch_in_words(&newer, &changed);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
        // (Named data, such as a switch's table, keeps its own line.)
        let pieces: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("data ") && l.contains(".rodata"))
            .collect();
        assert_eq!(pieces.len(), 1, "{text}");
        assert!(
            pieces[0].contains(" literal pieces of ")
                && pieces[0].contains(".rodata.str1.1")
                && pieces[0].contains(" new at 0x")
                && pieces[0].contains("the program's own (--json lists each)"),
            "{text}"
        );
        run.expect("bonjour, relive LABEL 12");
    }
}

/// A constant table a changed function uses is the program's own when it
/// did not change (zlib's `crc_table`, 8 KiB: every patch of `crc32_z`
/// copied it); a table that changed is brought, and its new contents are
/// what the program uses.
#[test]
fn unchanged_constant_tables_are_the_programs_own() {
    const SRC: &str = r#"
#include <stdio.h>
#include <unistd.h>
static const unsigned table[256] = { TABLE };
__attribute__((noinline, noipa)) unsigned mix(unsigned x) { return table[x & 255] * 3 + table[(x >> 8) & 255]; }
int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (;;) { printf("%u\n", mix(0x1234)); usleep(3000); }
}
"#;
    let entries = |k: u32| {
        (0..256u32)
            .map(|i| (i * 7 + k).to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let value = |k: u32| (0x34 * 7 + k) * 3 + (0x12 * 7 + k);
    // What the patch did with `table`.
    let table_action = |r: &Value| {
        let data = r["data"].as_array().unwrap();
        data.iter().find(|d| d["name"] == "table").map(|t| t["action"].clone())
    };
    let src = SRC.replace("TABLE", &entries(1));
    for flags in BUILDS {
        let mut run = Run::start(&src, flags);
        run.expect(&value(1).to_string());
        let base = run.object("app.c", &src);
        // The function changes, the table does not: the program's table.
        let new = run.object("app.c", &src.replace("* 3 +", "* 5 +"));
        let r = run.patch_object(&new, &["--base", base.to_str().unwrap()]);
        assert_eq!(table_action(&r), Some("kept".into()), "{flags:?}: {r}");
        let five = |k: u32| (0x34 * 7 + k) * 5 + (0x12 * 7 + k);
        run.expect(&five(1).to_string());
        // The table changes too: its new contents are brought.
        let newer = run.object("app.c", &SRC.replace("TABLE", &entries(2)).replace("* 3 +", "* 5 +"));
        let r = run.patch_object(&newer, &["--base", new.to_str().unwrap()]);
        assert_eq!(table_action(&r), Some("new".into()), "{flags:?}: {r}");
        run.expect(&five(2).to_string());
    }
}

/// S11: patched code calls libc (`printf`, and `strlen` on a string only
/// known at run time, so it is a real call to glibc's IFUNC) and reads libc
/// data (`stderr`).
#[test]
fn s11_patched_code_calls_libc() {
    for flags in BUILDS {
        let mut run = Run::start(TICKER, flags);
        run.expect("value 1 neighbour 100");
        run.replace(
            "__attribute__((noinline, noipa)) int value(void) { return 1; }",
            "#include <string.h>\nconst char *volatile word = \"relive\";\n__attribute__((noinline, noipa)) int value(void) { fputs(\"\", stderr); printf(\"from libc %zu\\n\", strlen(word)); return (int)strlen(word + 2); }",
        );
        run.expect("from libc 6");
        run.expect("value 4 neighbour 100");
    }
}

/// S11 in a statically linked program: its own `memcpy` and `strlen` are
/// IFUNCs relive has no copy of, so patched code calls what the program's
/// start-up chose (read from the IRELATIVE slots). It was refused: "memcpy
/// is not defined in the patch, the program or its libraries".
#[test]
fn s11_patched_code_calls_the_ifuncs_of_a_static_program() {
    for flags in [&["-O2", "-static"][..], &["-O0", "-static-pie"][..]] {
        let mut run = Run::start(TICKER, flags);
        run.expect("value 1 neighbour 100");
        run.replace(
            "__attribute__((noinline, noipa)) int value(void) { return 1; }",
            "#include <string.h>\nconst char *volatile word = \"relive\";\nvolatile int keep = 5;\n__attribute__((noinline, noipa)) int value(void) { char b[16] = {0}; memcpy(b, word, keep); printf(\"copied %s\\n\", b); return (int)strlen(b + 1); }",
        );
        run.expect("copied reliv");
        run.expect("value 4 neighbour 100");
    }
}

/// S19: patch, revert (the original bytes exactly), patch again.
#[test]
fn s19_patch_revert_repatch() {
    for flags in BUILDS {
        let mut run = Run::start(TICKER, flags);
        run.expect("value 1 neighbour 100");
        let r = run.replace("return 1;", "return 2;");
        let orig = applied(&r, "value")["orig_addr"].as_u64().unwrap();
        run.expect("value 2 neighbour 100");
        let pid = run.target.pid_arg();
        let before = {
            // The program file's bytes at the entry are the originals.
            let image = relive_image::Image::open(&run.target.exe).unwrap();
            let sym = image.symbols(None).unwrap().by_name("value")[0].clone();
            let off = image.view(None).unwrap().va_to_offset(sym.addr).unwrap() as usize;
            common::hex(&image.data()[off..off + 16])
        };
        let out = run.relive(&["revert", "--pid", &pid, "--all", "--json"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(
            v["reverted"].as_array().unwrap().iter().any(|r| r["name"] == "value"),
            "{v}"
        );
        // The documented field is there: null, the original code is back.
        assert!(v["reverted"][0]["generation"].is_null(), "{v}");
        assert!(v["reverted"][0].as_object().unwrap().contains_key("generation"), "{v}");
        assert_eq!(v["freed"].as_array().unwrap().len(), 1, "{v}");
        assert_eq!(run.peek(orig, 16), before, "original bytes restored exactly");
        run.expect("value 1 neighbour 100");
        let status = run.relive(&["status", "--pid", &pid, "--json"]);
        let s: Value = serde_json::from_slice(&status.stdout).unwrap();
        assert_eq!(s["patches"].as_array().unwrap().len(), 0);
        let r = run.replace("return 2;", "return 3;");
        assert_eq!(applied(&r, "value")["generation"], 1);
        run.expect("value 3 neighbour 100");
        let status = run.relive(&["status", "--pid", &pid, "--json"]);
        let s: Value = serde_json::from_slice(&status.stdout).unwrap();
        assert_eq!(s["patches"][0]["name"], "value");
        assert_eq!(s["patches"][0]["orig_addr"].as_u64(), Some(orig));
    }
}

/// S23: a global whose size changes is refused with its name; nothing is
/// patched and the program carries on.
#[test]
fn s23_layout_change_is_refused() {
    const SRC: &str = r#"
#include <stdio.h>
#include <unistd.h>
int table[4] = {1, 2, 3, 4};
__attribute__((noinline, noipa)) int sum(void) { int s = 0; for (int i = 0; i < 4; i++) s += table[i]; return s; }
int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (;;) { printf("sum %d\n", sum()); usleep(3000); }
}
"#;
    for flags in BUILDS {
        let mut run = Run::start(SRC, flags);
        run.expect("sum 10");
        let base = run.object("app.c", SRC);
        let grown = SRC
            .replace(
                "int table[4] = {1, 2, 3, 4};",
                "int table[8] = {1, 2, 3, 4, 5, 6, 7, 8};",
            )
            .replace("i < 4", "i < 8");
        let new = run.object("app.c", &grown);
        let pid = run.target.pid_arg();
        let stderr = run.refused(&new, &base);
        assert!(stderr.contains("table") && stderr.contains("restart"), "{stderr}");
        run.expect("sum 10");
        let status = run.relive(&["status", "--pid", &pid, "--json"]);
        let s: Value = serde_json::from_slice(&status.stdout).unwrap();
        assert!(s["patches"].as_array().unwrap().is_empty());
    }
}

/// S23, signatures: a global function whose parameters change is refused
/// with its old and new signature (read from -g DWARF); nothing patched.
#[test]
fn s23_signature_change_is_refused() {
    const SRC: &str = r#"
#include <stdio.h>
#include <unistd.h>
__attribute__((noinline, noipa)) int scaled(int x) { return x * 2 + (x ^ 0x55) - (x >> 2); }
int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (;;) { printf("scaled %d\n", scaled(5)); usleep(3000); }
}
"#;
    for build in BUILDS {
        let flags: Vec<&str> = build.iter().copied().chain(["-g"]).collect();
        let mut run = Run::start(SRC, &flags);
        run.expect("scaled 89");
        let base = run.object("app.c", SRC);
        let changed = SRC
            .replace(
                "int scaled(int x) { return x * 2 + (x ^ 0x55) - (x >> 2); }",
                "int scaled(int x, long k) { return x * (int)k; }",
            )
            .replace("scaled(5)", "scaled(5, 3)");
        let new = run.object("app.c", &changed);
        let stderr = run.refused(&new, &base);
        assert!(
            stderr.contains("scaled: int(int x) -> int(int x, long int k)"),
            "{stderr}"
        );
        run.expect("scaled 89");
        // A body-only change of the same function is still fine.
        let body = run.object("app.c", &SRC.replace("x * 2 +", "x * 4 +"));
        run.patch_object(&body, &["--base", base.to_str().unwrap()]);
        run.expect("scaled 99");
    }
}

/// S3: a function shorter than the jump. Packed tightly (-Os, no
/// alignment) it is refused with the reason and the flag that fixes it;
/// with -fpatchable-function-entry it is patched through its pad.
#[test]
fn s03_function_shorter_than_a_jump() {
    const SRC: &str = r#"
#include <stdio.h>
#include <unistd.h>
__attribute__((noinline, noipa)) int ident(int x) { return x; }
__attribute__((noinline, noipa)) int after(int x) { return x * 3 + 1; }
int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (;;) { printf("ident %d after %d\n", ident(5), after(1)); usleep(3000); }
}
"#;
    let mut run = Run::start(SRC, &["-Os", "-fno-align-functions", "-fno-pie", "-no-pie"]);
    run.expect("ident 5 after 4");
    let obj = run.object("app.c", &SRC.replace("return x;", "return x + 1;"));
    let out = run.relive(&[
        "patch",
        "--pid",
        &run.target.pid_arg(),
        obj.to_str().unwrap(),
        "--only",
        "ident",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("ident") && stderr.contains("shorter than") && stderr.contains("-fpatchable-function-entry"),
        "{stderr}"
    );
    run.expect("ident 5 after 4");

    let packed: &[&str] = &["-Os", "-fno-align-functions", "-fno-pie", "-no-pie"];
    for build in BUILDS.iter().chain([&packed]) {
        let flags: Vec<&str> = build
            .iter()
            .copied()
            .chain(["-fpatchable-function-entry=8,6"])
            .collect();
        let mut run = Run::start(SRC, &flags);
        run.expect("ident 5 after 4");
        let r = run.replace("return x;", "return x + 1;");
        assert_eq!(applied(&r, "ident")["method"], "pad", "{flags:?}");
        run.expect("ident 6 after 4");
        // A second patch only moves the slot.
        let r = run.replace("return x + 1;", "return x + 2;");
        assert_eq!(applied(&r, "ident")["method"], "slot");
        run.expect("ident 7 after 4");
    }
}

/// Small functions at -O2 (issue 18): a 5-byte `neg` with the next
/// function right after it, and a 4-byte `inc` with one byte of alignment
/// NOP, both packed with -falign-functions=1 (clang: -Os), are redirected
/// by a 5-byte `jmp rel32` to a stub in the pool (`near`), after an
/// `endbr64` where there is one; a second patch only moves the slot; revert
/// restores the exact bytes. The 3-byte `zero` directly followed by `after`
/// is refused, naming the flags that fix it.
#[test]
fn s29_small_functions_at_o2() {
    const SRC: &str = r#"
#include <stdio.h>
#include <unistd.h>
__attribute__((noinline, noipa, aligned(16))) int neg(int x) { return -x; }
__attribute__((noinline, noipa)) int inc(int x) { return x + 1; }
__attribute__((noinline, noipa, aligned(2))) int zero(void) { return 0; }
__attribute__((noinline, noipa)) int after(int x) { return x * 7 + 2; }
/* Read each time: clang (no noipa) would call the functions only once. */
volatile int five = 5;
int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (;;) { printf("neg %d inc %d zero %d after %d\n", neg(five), inc(five), zero(), after(1)); usleep(3000); }
}
"#;
    let builds: [(&str, &[&str]); 6] = [
        ("gcc", &["-O2", "-falign-functions=1", "-fpie", "-pie"]),
        ("gcc", &["-O2", "-falign-functions=1", "-fno-pie", "-no-pie"]),
        (
            "gcc",
            &["-O2", "-falign-functions=1", "-fcf-protection", "-fpie", "-pie"],
        ),
        ("clang", &["-Os", "-Wno-unknown-attributes", "-fpie", "-pie"]),
        ("clang", &["-Os", "-Wno-unknown-attributes", "-fno-pie", "-no-pie"]),
        (
            "clang",
            &["-Os", "-Wno-unknown-attributes", "-fcf-protection", "-fpie", "-pie"],
        ),
    ];
    for (cc, flags) in builds {
        let mut run = Run::start_with(cc, &[("app.c", SRC)], flags);
        let cet = flags.contains(&"-fcf-protection");
        let endbr = if cet { 4 } else { 0 };
        // The layout this test is about, read from the program file.
        let image = relive_image::Image::open(&run.target.exe).unwrap();
        let table = image.symbols(None).unwrap();
        let sym = |name: &str| table.by_name(name)[0].clone();
        let (neg, inc, zero, after) = (sym("neg"), sym("inc"), sym("zero"), sym("after"));
        let layout = (
            neg.size,
            inc.addr - neg.addr,
            inc.size,
            zero.addr - inc.addr,
            zero.size,
            after.addr - zero.addr,
        );
        let want = (5 + endbr, 5 + endbr, 4 + endbr, 5 + endbr, 3 + endbr, 3 + endbr);
        assert_eq!(
            layout, want,
            "{cc} {flags:?}: (size, distance to the next) of neg, inc, zero"
        );
        assert_eq!(
            common::file_bytes(&run.target.exe, "inc", 5 + endbr as usize)[4 + endbr as usize],
            0x90,
            "{cc} {flags:?}: one NOP after inc"
        );
        let original = common::file_bytes(&run.target.exe, "neg", 32);
        run.expect("neg -5 inc 6 zero 0 after 9");

        let base = run.object("app.c", SRC);
        let v1 = SRC.replace("return -x;", "return -x - 1;").replace("x + 1;", "x + 2;");
        let new = run.object("app.c", &v1);
        let r = run.patch_object(&new, &["--base", base.to_str().unwrap()]);
        for name in ["neg", "inc"] {
            assert_eq!(applied(&r, name)["method"], "near", "{cc} {flags:?}: {r}");
            assert_eq!(applied(&r, name)["generation"], 1);
        }
        run.expect("neg -6 inc 7 zero 0 after 9");
        // Each entry: its endbr64 kept, then e9 rel32; the bytes after the
        // jumps (zero, after) untouched.
        let at = applied(&r, "neg")["orig_addr"].as_u64().unwrap();
        assert_eq!(applied(&r, "inc")["orig_addr"].as_u64(), Some(at + 5 + endbr));
        let patched = run.peek(at, 32);
        let byte = |hex: &str, k: u64| hex[2 * k as usize..2 * k as usize + 2].to_string();
        let original_hex = common::hex(&original);
        let (nj, ij) = (endbr, 5 + 2 * endbr);
        assert_eq!(patched[..2 * nj as usize], original_hex[..2 * nj as usize]);
        assert_eq!(
            (byte(&patched, nj), byte(&patched, ij)),
            ("e9".into(), "e9".into()),
            "{patched}"
        );
        assert_eq!(patched[2 * (ij + 5) as usize..], original_hex[2 * (ij + 5) as usize..]);

        // Generation 2: only the slot changes, the entries stay as they are.
        let v2 = v1
            .replace("return -x - 1;", "return -x - 2;")
            .replace("x + 2;", "x + 3;");
        let v2_obj = run.object("app.c", &v2);
        let r = run.patch_object(&v2_obj, &["--base", new.to_str().unwrap()]);
        for name in ["neg", "inc"] {
            assert_eq!(applied(&r, name)["method"], "slot", "{r}");
            assert_eq!(applied(&r, name)["generation"], 2);
        }
        run.expect("neg -7 inc 8 zero 0 after 9");
        assert_eq!(run.peek(at, 32), patched);

        // 3 bytes (7 with endbr64) and no padding: refused, naming the fix.
        let tiny = run.object("app.c", &v2.replace("return 0;", "return 4;"));
        let stderr = run.refused(&tiny, &v2_obj);
        assert!(
            stderr.contains(&format!("zero is {} bytes", 3 + endbr))
                && stderr.contains("-fpatchable-function-entry=8,6"),
            "{cc} {flags:?}: {stderr}"
        );
        run.expect("neg -7 inc 8 zero 0 after 9");

        let pid = run.target.pid_arg();
        let out = run.relive(&["revert", "--pid", &pid, "--all", "--json"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(
            run.peek(at, 32),
            original_hex,
            "{cc} {flags:?}: original bytes restored exactly"
        );
        run.expect("neg -5 inc 6 zero 0 after 9");
    }
}

/// Zeros between functions (here two, from a top-level `.skip`) are
/// padding too: the 3-byte `zero` borrows them for the 5-byte jump.
#[test]
fn s29_zero_padding_is_borrowed() {
    const SRC: &str = r#"
#include <stdio.h>
#include <unistd.h>
__attribute__((noinline, noipa, aligned(16))) int zero(void) { return 0; }
__asm__(".skip 2, 0");
__attribute__((noinline, noipa)) int after(int x) { return x * 7 + 2; }
volatile int five = 5;
int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (;;) { printf("zero %d after %d\n", zero(), after(five)); usleep(3000); }
}
"#;
    for flags in [
        &["-O2", "-falign-functions=1", "-fno-toplevel-reorder", "-fpie", "-pie"],
        &[
            "-O2",
            "-falign-functions=1",
            "-fno-toplevel-reorder",
            "-fno-pie",
            "-no-pie",
        ],
    ] {
        let mut run = Run::start(SRC, flags);
        let image = relive_image::Image::open(&run.target.exe).unwrap();
        let table = image.symbols(None).unwrap();
        let (zero, after) = (table.by_name("zero")[0].clone(), table.by_name("after")[0].clone());
        assert_eq!((zero.size, after.addr - zero.addr), (3, 5), "{flags:?}");
        let original = common::file_bytes(&run.target.exe, "zero", 16);
        assert_eq!(original[3..5], [0, 0], "{flags:?}");
        run.expect("zero 0 after 37");
        let base = run.object("app.c", SRC);
        let v1 = SRC.replace("return 0;", "return 4;");
        let new = run.object("app.c", &v1);
        let r = run.patch_object(&new, &["--base", base.to_str().unwrap()]);
        assert_eq!(applied(&r, "zero")["method"], "near", "{flags:?}: {r}");
        run.expect("zero 4 after 37");
        let at = applied(&r, "zero")["orig_addr"].as_u64().unwrap();
        let patched = run.peek(at, 16);
        assert_eq!(&patched[..2], "e9");
        assert_eq!(patched[10..], common::hex(&original)[10..], "after untouched");
        let v2 = run.object("app.c", &v1.replace("return 4;", "return 5;"));
        let r = run.patch_object(&v2, &["--base", new.to_str().unwrap()]);
        assert_eq!(applied(&r, "zero")["method"], "slot");
        run.expect("zero 5 after 37");
        let out = run.relive(&["revert", "--pid", &run.target.pid_arg(), "--all"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(run.peek(at, 16), common::hex(&original), "{flags:?}");
        run.expect("zero 0 after 37");
    }
}

/// NOPs after a short function that are the next function's own code (its
/// `patchable_function_entry(4, 0)` NOPs, at its symbol) are not padding:
/// the 4-byte `inc` right before it is refused, and both keep running.
#[test]
fn s29_nops_a_symbol_starts_at_are_not_borrowed() {
    const SRC: &str = r#"
#include <stdio.h>
#include <unistd.h>
__attribute__((noinline, noipa, aligned(16))) int inc(int x) { return x + 1; }
__attribute__((noinline, noipa, patchable_function_entry(4, 0))) int zero(void) { return 0; }
volatile int five = 5;
int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (;;) { printf("inc %d zero %d\n", inc(five), zero()); usleep(3000); }
}
"#;
    for flags in [
        &["-O2", "-falign-functions=1", "-fpie", "-pie"],
        &["-O2", "-falign-functions=1", "-fno-pie", "-no-pie"],
    ] {
        let mut run = Run::start(SRC, flags);
        let image = relive_image::Image::open(&run.target.exe).unwrap();
        let table = image.symbols(None).unwrap();
        let (inc, zero) = (table.by_name("inc")[0].clone(), table.by_name("zero")[0].clone());
        assert_eq!((inc.size, zero.addr - inc.addr), (4, 4), "{flags:?}");
        assert_eq!(common::file_bytes(&run.target.exe, "zero", 4), [0x90; 4], "{flags:?}");
        run.expect("inc 6 zero 0");
        let base = run.object("app.c", SRC);
        let new = run.object("app.c", &SRC.replace("x + 1;", "x + 2;"));
        let stderr = run.refused(&new, &base);
        assert!(
            stderr.contains("inc is 4 bytes") && stderr.contains("no padding follows it"),
            "{flags:?}: {stderr}"
        );
        run.expect("inc 6 zero 0");
    }
}

/// S6: a file-scope static with the same name in two translation units:
/// each patched function uses its own unit's variable, with its state.
#[test]
fn s06_same_static_name_in_two_units() {
    const APP: &str = r#"
#include <stdio.h>
#include <unistd.h>
static int hidden = 1000;
int other_step(void);
__attribute__((noinline, noipa)) int app_step(void) { return hidden += 1; }
int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (;;) { int a = app_step(); int o = other_step(); printf("app %d other %d\n", a, o); usleep(3000); }
}
"#;
    const OTHER: &str = r#"
static int hidden = 0;
__attribute__((noinline, noipa)) int other_step(void) { return hidden += 1; }
"#;
    for flags in BUILDS {
        let mut run = Run::start_files(&[("app.c", APP), ("other.c", OTHER)], flags);
        run.target.wait_for_prefix("app ");
        let obj = run.object("other.c", &OTHER.replace("hidden += 1", "hidden += 100"));
        let r = run.patch_object(&obj, &[]);
        assert_eq!(applied(&r, "other_step")["generation"], 1);
        let kept = r["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["name"] == "hidden")
            .unwrap()
            .clone();
        assert_eq!(kept["action"], "kept", "{r}");
        let obj = run.object("app.c", &APP.replace("hidden += 1", "hidden += 2"));
        run.patch_object(&obj, &[]);
        // Both keep counting from where they were, in steps of 2 and 100.
        let read = |run: &Run| -> (i64, i64) {
            let rest = run.target.wait_for_prefix("app ");
            let (a, o) = rest.split_once(" other ").unwrap();
            (a.parse().unwrap(), o.parse().unwrap())
        };
        let mut prev = read(&run);
        loop {
            let now = read(&run);
            if now.0 - prev.0 == 2 && now.1 - prev.1 == 100 {
                assert!(now.0 > 1000 && now.1 > 100, "{now:?}: state kept");
                break;
            }
            prev = now;
        }
    }
}

/// S7: a function-local static (GCC's `n.0`) keeps its value, also when a
/// new static earlier in the file renumbers it (`n.1`) and `--base` names
/// the previous compile.
#[test]
fn s07_function_local_static() {
    const SRC: &str = r#"
#include <stdio.h>
#include <unistd.h>
__attribute__((noinline, noipa)) int counter(void) { static int n = 0; return ++n; }
__attribute__((noinline, noipa)) int other(void) { static int n = 500; return n; }
int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (;;) { int c = counter(); printf("n %d other %d\n", c, other()); usleep(3000); }
}
"#;
    for flags in BUILDS {
        let mut run = Run::start(SRC, flags);
        run.target.wait_for_prefix("n ");
        let base = run.object("app.c", SRC);
        let edited = SRC
            .replace(
                "__attribute__((noinline, noipa)) int counter",
                "__attribute__((noinline, noipa)) int early(void) { static int n = 7; return n; }\n__attribute__((noinline, noipa)) int counter",
            )
            .replace("return ++n;", "n += 1000; return n;");
        let new = run.object("app.c", &edited);
        let r = run.patch_object(&new, &["--base", base.to_str().unwrap()]);
        assert_eq!(applied(&r, "counter")["generation"], 1);
        let n = |run: &Run| -> (i64, String) {
            let rest = run.target.wait_for_prefix("n ");
            let (n, other) = rest.split_once(' ').unwrap();
            (n.parse().unwrap(), other.to_string())
        };
        let mut prev = n(&run).0;
        loop {
            let (now, other) = n(&run);
            if now - prev == 1000 {
                assert!(now > 1000 && now % 1000 != 0, "{now}: kept counting from the old value");
                assert_eq!(other, "other 500", "the other static untouched");
                break;
            }
            prev = now;
        }
    }
}

/// S14: a recursive function patched while activations are on the stack:
/// they finish in the old code, new calls run the new code; nothing else.
#[test]
fn s14_recursion_in_flight() {
    const SRC: &str = r#"
#include <stdio.h>
#include <unistd.h>
__attribute__((noinline, noipa)) int rec(int n) {
    if (n == 0) { usleep(20000); return 0; }
    return 1 + rec(n - 1);
}
int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (;;) printf("rec %d\n", rec(3));
}
"#;
    for flags in BUILDS {
        let mut run = Run::start(SRC, flags);
        run.expect("rec 3");
        run.replace("return 1 + rec(n - 1);", "return 10 + rec(n - 1);");
        let mut lines = Vec::new();
        loop {
            let l = run.target.next_line();
            assert!(l == "rec 3" || l == "rec 30", "{flags:?}: {l}");
            lines.push(l.clone());
            if l == "rec 30" {
                break;
            }
        }
        run.expect("rec 30");
    }
}

/// S15: the patched function runs in a tight loop on another thread during
/// the patch: it lands, nothing crashes, the thread sees the new code.
#[test]
fn s15_function_running_on_another_thread() {
    const SRC: &str = r#"
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <unistd.h>
atomic_long seen_new, calls;
__attribute__((noinline, noipa)) int work(int x) { return x + 1; }
static void *spin(void *arg) {
    (void)arg;
    for (;;) { if (work(1) == 3) atomic_fetch_add(&seen_new, 1); atomic_fetch_add(&calls, 1); }
    return NULL;
}
int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    pthread_t t;
    pthread_create(&t, NULL, spin, NULL);
    for (;;) { printf("new %s\n", atomic_load(&seen_new) ? "yes" : "no"); usleep(3000); }
}
"#;
    for flags in BUILDS {
        let mut run = Run::start(SRC, flags);
        run.expect("new no");
        let obj = run.object("app.c", &SRC.replace("return x + 1;", "return x + 2;"));
        run.patch_object(&obj, &["--only", "work"]);
        run.expect("new yes");
    }
}

/// S18: `-fcf-protection` (`endbr64` at every entry) and red-zone leaf code:
/// the patch keeps the `endbr64` and the new code runs.
#[test]
fn s18_cet_entries_and_red_zone() {
    const SRC: &str = r#"
#include <stdio.h>
#include <unistd.h>
__attribute__((noinline, noipa)) long leaf(long x) { volatile long a[8]; for (int i = 0; i < 8; i++) a[i] = x + i; return a[7]; }
int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (;;) { printf("leaf %ld\n", leaf(1)); usleep(3000); }
}
"#;
    for build in BUILDS {
        let flags: Vec<&str> = build.iter().copied().chain(["-fcf-protection=full"]).collect();
        let mut run = Run::start(SRC, &flags);
        run.expect("leaf 8");
        let r = run.replace("a[i] = x + i;", "a[i] = x * 10 + i;");
        let entry = applied(&r, "leaf")["orig_addr"].as_u64().unwrap();
        assert!(run.peek(entry, 4).starts_with("f30f1efa"), "endbr64 kept");
        run.expect("leaf 17");
    }
}

/// S24: -O2 clones (`.constprop`, `.isra`) and inlined callers: with
/// `--base`, every function the edit affects is patched.
#[test]
fn s24_clones_and_inlined_callers() {
    const SRC: &str = r#"
#include <stdio.h>
#include <unistd.h>
struct big { int a[16]; };
static __attribute__((noinline)) int scale(struct big *p, int k) { return p->a[3] * k; }
static inline int helper(int x) { return x * 7; }
__attribute__((noinline, noipa)) int use(int x) { struct big b = {0}; b.a[3] = x; return scale(&b, 3) + helper(x); }
int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (;;) { printf("use %d\n", use(2)); usleep(3000); }
}
"#;
    for flags in [BUILDS[1], BUILDS[3]] {
        s24_at(SRC, flags);
    }
}

fn s24_at(src: &str, flags: &[&str]) {
    let mut run = Run::start(src, flags);
    run.expect("use 20");
    let base = run.object("app.c", src);
    let old = relive_patch::ObjectFile::open(&base).unwrap();
    assert!(
        old.symbols.iter().any(|s| s.name.starts_with("scale.")),
        "gcc cloned scale"
    );
    let new = run.object("app.c", &src.replace("p->a[3] * k", "p->a[3] * k * 100"));
    let r = run.patch_object(&new, &["--base", base.to_str().unwrap()]);
    let names: Vec<&str> = r["applied"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert!(names.iter().any(|n| n.starts_with("scale.")), "{r}");
    run.expect("use 614");
    let base = new;
    let new = run.object(
        "app.c",
        &src.replace("p->a[3] * k", "p->a[3] * k * 100")
            .replace("x * 7", "x * 9"),
    );
    let r = run.patch_object(&new, &["--base", base.to_str().unwrap()]);
    assert_eq!(applied(&r, "use")["generation"], 1, "the inlined helper's caller");
    run.expect("use 618");
}

/// S26: a running APE (`ent.com` through its loader, stdin on a FIFO) and
/// its assimilated twin: `rt_end`, found through `.symtab.amd64`, is
/// replaced by gcc-compiled C that also calls the program's own `printf`;
/// the program's output changes.
#[test]
fn s26_patch_a_running_ape() {
    const PATCH: &str = r#"
int printf(const char *, ...);
void rt_end(double *r_ent, double *r_chisq, double *r_mean, double *r_montepicalc, double *r_scc) {
    printf("rt_end patched by relive\n");
    *r_ent = 1.5; *r_chisq = 2.0; *r_mean = 64.0; *r_montepicalc = 3.0; *r_scc = 0.25;
}
"#;
    for name in ["ent.com", "ent.elf"] {
        let mut target = Target::start_ape(name);
        let dir = target.dir.path().to_path_buf();
        let obj = relive_testkit::compile_object(&dir, "patch", PATCH, &["-O2", "-fno-pie", "-fcf-protection=none"]);
        let state = tempfile::tempdir().unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_relive"))
            .args(["patch", "--pid", &target.pid_arg(), obj.to_str().unwrap(), "--json"])
            .env("RELIVE_STATE_DIR", state.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr));
        let r: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(applied(&r, "rt_end")["method"], "pad", "{r}");
        target.stdin().write_all(b"some input for ent\n").unwrap();
        target.close_stdin();
        let lines = target.rest();
        assert!(
            lines.iter().any(|l| l == "rt_end patched by relive"),
            "{name}: {lines:?}"
        );
        assert!(
            lines.iter().any(|l| l.starts_with("Entropy = 1.500000 bits")),
            "{name}: {lines:?}"
        );
    }
}

/// S27: the target exits while relive patches it, over and over: every
/// attempt either lands or fails with a clear error (never a crash), and
/// relive keeps working.
#[test]
fn s27_target_exits_mid_patch() {
    const SRC: &str = r#"
#include <stdio.h>
#include <unistd.h>
__attribute__((noinline, noipa)) int value(void) { return 1; }
int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (int i = 0; i < 6; i++) { printf("value %d\n", value()); usleep(5000); }
    return 0;
}
"#;
    let mut outcomes = std::collections::BTreeMap::new();
    for flags in BUILDS.iter().chain(BUILDS.iter()) {
        let mut run = Run::start(SRC, flags);
        run.expect("value 1");
        let obj = run.object("app.c", &SRC.replace("return 1;", "return 2;"));
        let pid = run.target.pid_arg();
        loop {
            let out = run.relive(&["patch", "--pid", &pid, obj.to_str().unwrap(), "--only", "value"]);
            let stderr = String::from_utf8_lossy(&out.stderr).to_string();
            match out.status.code() {
                Some(0) => *outcomes.entry("patched").or_insert(0) += 1,
                Some(1) | Some(3) => {
                    assert!(
                        stderr.contains("exited") || stderr.contains("no process") || stderr.contains("not mapped"),
                        "unclear error: {stderr}"
                    );
                    *outcomes.entry("gone").or_insert(0) += 1;
                    break;
                }
                other => panic!("relive ended with {other:?}: {stderr}"),
            }
        }
    }
    assert!(outcomes.contains_key("gone"), "{outcomes:?}");
    // The tool stays usable.
    let run = Run::start(TICKER, &["-O0"]);
    run.expect("value 1 neighbour 100");
    assert!(run.relive(&["status", "--pid", &run.target.pid_arg()]).status.success());
}

/// S28: a target owned by another user, patched without privileges:
/// "permission denied" (exit 4), and not one byte written.
#[test]
fn s28_unprivileged_patch_is_refused() {
    if !relive_testkit::is_root() {
        eprintln!("skipped: needs root to switch to an unprivileged user (CI runs as root)");
        return;
    }
    for flags in BUILDS {
        s28_at(flags);
    }
}

fn s28_at(flags: &[&str]) {
    use std::os::unix::fs::PermissionsExt;
    let mut run = Run::start(TICKER, flags);
    run.expect("value 1 neighbour 100");
    let obj = run.object("app.c", &TICKER.replace("return 1;", "return 2;"));
    let entry = {
        let out = run.relive(&["sym", &run.target.pid_arg(), "value", "--json"]);
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        v[0]["addr"].as_u64().unwrap()
    };
    let before = run.peek(entry, 16);
    let (dir, relive_copy) = relive_testkit::public_copy(std::path::Path::new(env!("CARGO_BIN_EXE_relive")));
    let shared_obj = dir.path().join("app.o");
    std::fs::copy(&obj, &shared_obj).unwrap();
    std::fs::set_permissions(&shared_obj, std::fs::Permissions::from_mode(0o644)).unwrap();
    let state = dir.path().join("state");
    let out = relive_testkit::run_as_nobody(
        &relive_copy,
        &["patch", "--pid", &run.target.pid_arg(), shared_obj.to_str().unwrap()],
        &[("RELIVE_STATE_DIR", &state)],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(stderr.contains("permission denied"), "{stderr}");
    assert_eq!(run.peek(entry, 16), before, "nothing written");
    run.expect("value 1 neighbour 100");
}

/// JSON names a C++ function both ways: `name` as people write it and
/// `symbol` as the object has it (the patch's report, status, revert);
/// `revert` and `--only` take either.
#[test]
fn cxx_json_gives_name_and_symbol_and_either_one_reverts() {
    let mut run = Run::start_with("g++", &[("app.cpp", SQ)], &["-O2", "-g"]);
    run.expect("area 9");
    let obj = run.object("app.cpp", &SQ.replace("return s * s;", "return s * s + 1;"));
    for (only, revert) in [
        ("Sq::area() const", "_ZNK2Sq4areaEv"),
        ("_ZNK2Sq4areaEv", "Sq::area() const"),
    ] {
        let pid = run.target.pid_arg();
        let out = run.relive(&["patch", &pid, obj.to_str().unwrap(), "--only", only, "--json"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["applied"][0]["name"], "Sq::area() const", "{report}");
        assert_eq!(report["applied"][0]["symbol"], "_ZNK2Sq4areaEv", "{report}");
        run.expect("area 10");
        // And status (its name was the symbol, and it had no `symbol`: a
        // LevelDB trial).
        let status: Value = serde_json::from_slice(&run.relive(&["status", &pid, "--json"]).stdout).unwrap();
        assert_eq!(status["patches"][0]["name"], "Sq::area() const", "{status}");
        assert_eq!(status["patches"][0]["symbol"], "_ZNK2Sq4areaEv", "{status}");
        let out = run.relive(&["revert", &pid, revert, "--json"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["reverted"][0]["name"], "Sq::area() const", "{report}");
        assert_eq!(report["reverted"][0]["symbol"], "_ZNK2Sq4areaEv", "{report}");
        run.expect("area 9");
    }
}

/// One-shot patches of a signature change in two steps: the first gives
/// the callee a parameter its body ignores (its code unchanged, so not
/// patched) and the running caller passes it; the second, over the first
/// as its base, makes the body use it. The diff shows no signature change
/// (the base had the parameter); the program's DWARF does, and the
/// caller's running old code would call it with one argument fewer (a Lua
/// trial: `luaV_objlen` under the interpreter's running `luaV_execute`).
#[test]
fn a_one_shot_signature_change_in_two_steps_is_refused_under_a_running_caller() {
    const APP: &str = common::RUNNING_CALLER;
    let mut run = Run::start(APP, &["-O2", "-g"]);
    run.expect("r 21");
    let base = run.object("app.c", APP);
    let step_one = APP
        .replace(
            "int len(int x) { return x * 7; }",
            "int len(int x, int bonus) { (void)bonus; return x * 7; }",
        )
        .replace("len(seed)", "len(seed, 100)");
    let first = run.object("app.c", &step_one);
    let pid = run.target.pid_arg();
    let report = run.patch_json(&first, &base);
    assert!(!report["applied"].to_string().contains("\"len\""), "{report}");
    let second = run.object(
        "app.c",
        &step_one.replace("(void)bonus; return x * 7;", "return x * 7 + bonus;"),
    );
    let out = run.relive(&[
        "patch",
        &pid,
        second.to_str().unwrap(),
        "--base",
        first.to_str().unwrap(),
    ]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains("the signature of len changes, and its caller run is running on thread"),
        "{said}"
    );
    run.expect("r 21");
}

/// A table of pointers (RELRO data: `.data.rel.ro.local`, a section per
/// variable with -fdata-sections) whose loop's end pointer the code takes
/// by its own address, one past the table (`names+40`, which no symbol
/// covers): one copy serves both. The end was resolved into a second copy
/// of the section, so the loop ran from one copy into the other (an
/// Oniguruma trial: `bad_pats`, and the program crashed in `strlen`).
#[test]
fn a_relro_tables_end_pointer_ends_the_same_copy() {
    const APP: &str = r#"#include <stdio.h>
#include <string.h>
#include <unistd.h>
volatile int k = 1;
__attribute__((noinline)) int total(void) {
    static const char *const names[] = { "alpha", "beta", "gamma", "delta", "epsilon" };
    const char *const *p, *const *end;
    /* The start and the end each by its own address, as GCC writes a loop
       whose bound it does not keep in a register. */
    __asm__("lea %c1(%%rip), %0" : "=r"(p) : "i"(names));
    __asm__("lea %c1+40(%%rip), %0" : "=r"(end) : "i"(names));
    int t = 0;
    for (; p != end; p++) t += (int)strlen(*p) * k;
    return t;
}
int main(void) { setvbuf(stdout, NULL, _IOLBF, 0); for (;;) { printf("t %d\n", total()); usleep(3000); } }
"#;
    let flags = ["-O2", "-g", "-fdata-sections"];
    let mut run = Run::start(APP, &flags);
    run.expect("t 26");
    let base = run.object("app.c", APP);
    let new = run.object("app.c", &APP.replace("* k;", "* k * 2;"));
    let report = run.patch_json(&new, &base);
    // The program's own table (it holds the same addresses), which the
    // end pointer ends too: no copy of its section.
    let data = report["data"].as_array().unwrap();
    let table = data.iter().find(|d| d["name"] == "names.0").expect("names.0");
    assert_eq!(table["action"], "kept", "{report}");
    assert!(
        !data.iter().any(|d| d["name"] == ".data.rel.ro.local.names.0"),
        "{report}"
    );
    run.expect("t 52");
    // A table the new code changes is copied, one copy for both pointers.
    let changed = APP.replace("\"epsilon\"", "\"omega\"");
    let newer = run.object("app.c", &changed.replace("* k;", "* k * 2;"));
    let report = run.patch_json(&newer, &new);
    let data = report["data"].as_array().unwrap();
    let at = |name: &str| data.iter().find(|d| d["name"] == name).map(|d| d["addr"].clone());
    assert!(at("names.0").is_some(), "{report}");
    if let Some(section) = at(".data.rel.ro.local.names.0") {
        assert_eq!(at("names.0"), Some(section), "{report}");
    }
    run.expect("t 48");
}

/// A cursor the program keeps into a constant table of addresses
/// (`static const char *const t[]`, RELRO data) is compared by the new
/// code with the same table: the program's own, which holds the same
/// addresses. The patched function used its own copy, so `cur == t + 5`
/// never held and the cursor ran off the program's table (a re-check: the
/// program crashed a second after "patched next_name").
#[test]
fn a_cursor_into_the_programs_constant_table_stays_in_it() {
    const APP: &str = r#"#include <stdio.h>
#include <unistd.h>
static const char *const *cur;
__attribute__((noinline)) const char *next_name(void) {
    static const char *const t[] = { "ant", "bee", "cat", "dog", "eel" };
    if (!cur || cur == t + sizeof t / sizeof t[0]) cur = t;
    return *cur++;
}
int main(void) { setvbuf(stdout, NULL, _IOLBF, 0); for (;;) { printf("n %s\n", next_name()); usleep(2000); } }
"#;
    // At -O0 gcc keeps the names in plain `.rodata`, which a patch copies
    // whole: the table's addresses are found among the program's literals
    // by their bytes (a re-check: the table was copied, and the cursor ran
    // off the copy's end).
    for flags in [
        &["-O2", "-g", "-fdata-sections"][..],
        &["-O2", "-g"][..],
        &["-O0", "-g"][..],
    ] {
        let mut run = Run::start(APP, flags);
        run.expect("n eel");
        let base = run.object("app.c", APP);
        let new = run.object(
            "app.c",
            &APP.replace(
                "return *cur++;",
                "const char *s = *cur++; if (s[0] == 0) puts(\"empty\"); return s;",
            ),
        );
        let pid = run.target.pid_arg();
        let out = run.relive(&[
            "patch",
            &pid,
            new.to_str().unwrap(),
            "--base",
            base.to_str().unwrap(),
            "--json",
        ]);
        assert!(
            out.status.success(),
            "{flags:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        let table = report["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["name"] == "t.0")
            .cloned();
        assert_eq!(
            table.map(|t| t["action"].clone()),
            Some(Value::from("kept")),
            "{flags:?}: {report}"
        );
        // Round the table twice, in the new code.
        for _ in 0..2 {
            for name in ["ant", "bee", "cat", "dog", "eel"] {
                run.expect(&format!("n {name}"));
            }
        }
    }
}

/// A static array nothing writes, which GCC put among the program's
/// constants, written by the new code: refused, naming it (it was
/// patched, and the program crashed at the first write: a re-check).
#[test]
fn a_write_to_a_variable_the_program_has_read_only_is_refused() {
    const APP: &str = r#"#include <stdio.h>
#include <unistd.h>
static int lut[4] = { 1, 2, 3, 4 };
__attribute__((noinline)) int step(int i) { return lut[i & 3]; }
int main(void) { setvbuf(stdout, NULL, _IOLBF, 0); for (int i = 0;; i++) { printf("s %d\n", step(i)); usleep(3000); } }
"#;
    let mut run = Run::start(APP, &["-O2", "-g"]);
    run.expect("s 4");
    let base = run.object("app.c", APP);
    let new = run.object(
        "app.c",
        &APP.replace("{ return lut[i & 3]; }", "{ lut[i & 3] += 1; return lut[i & 3]; }"),
    );
    let pid = run.target.pid_arg();
    let out = run.relive(&["patch", &pid, new.to_str().unwrap(), "--base", base.to_str().unwrap()]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{said}");
    assert!(said.contains("may write lut") && said.contains("read-only"), "{said}");
    run.expect("s 4");
}

/// A C++ constructor's two copies (for complete and base objects: `C1`
/// and `C2`, one code) read alike: the patch does not say that "Sq::Sq(int)
/// and Sq::Sq(int) are one function" (a LevelDB trial's Status
/// constructor).
#[test]
fn a_constructors_two_copies_are_not_said_to_be_two_functions() {
    const CTOR: &str = r#"
#include <cstdio>
#include <unistd.h>
struct Sq {
    int s;
    __attribute__((noinline)) Sq(int side);
};
Sq::Sq(int side) : s(side * 2) { asm volatile(""); }
int main() {
    setvbuf(stdout, nullptr, _IOLBF, 0);
    for (int i = 0;; i++) { Sq q(i % 3); std::printf("s %d\n", q.s); usleep(3000); }
}
"#;
    let mut run = Run::start_with("g++", &[("app.cpp", CTOR)], &["-O2", "-g"]);
    run.expect("s 4");
    let obj = run.object("app.cpp", &CTOR.replace("s(side * 2)", "s(side * 3)"));
    let out = run.relive(&["patch", &run.target.pid_arg(), obj.to_str().unwrap(), "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["applied"][0]["name"], "Sq::Sq(int)", "{report}");
    assert!(!report["warnings"].to_string().contains("one function"), "{report}");
    run.expect("s 6");
}

/// Found by a new-user trial on mimalloc: a worker thread's loop function
/// patched while every worker ran it keeps the old code for good on those
/// threads (the patch says so); `status` said nothing about it. Now it
/// keeps the reason with the patch, as it does for code no call reaches.
#[test]
fn a_workers_loop_patched_while_it_runs_says_so_in_status() {
    const WORKER: &str = r#"#include <pthread.h>
#include <stdio.h>
#include <unistd.h>
__attribute__((noinline)) int step(void) { return 1; }
void *worker(void *arg) {
    (void)arg;
    for (;;) { printf("w %d\n", step() + 10); usleep(3000); }
}
"#;
    let app = format!("{WORKER}{}", common::WORKER_MAIN);
    let mut run = Run::start(&app, &["-O2", "-g"]);
    run.expect("w 11");
    let report = run.replace("step() + 10", "step() + 20");
    let applied = report["applied"].to_string();
    assert!(
        applied.contains("is the outermost function running on thread"),
        "{report}"
    );
    // The running call keeps the old code.
    run.expect("w 11");
    let pid = run.target.pid_arg();
    let out = run.relive(&["status", &pid, "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    let worker = status["patches"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "worker")
        .unwrap_or_else(|| panic!("{status}"));
    assert!(
        worker["old_code_kept"]
            .as_str()
            .is_some_and(|why| why.contains("keep the old code for good")),
        "{status}"
    );
    let text = run.relive(&["status", &pid]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("    old code kept: worker is the outermost function"),
        "{text}"
    );
}

/// Found by a new-user trial on Oniguruma: `match_at` keeps the address
/// of one of its labels in a variable (computed goto), and the program
/// stores such addresses; patched, the new code jumped through the kept
/// one into the old body and the program died of SIGSEGV right after
/// "patched". Such a function is refused, and the program runs on.
#[test]
fn a_function_whose_labels_the_program_keeps_is_refused() {
    const APP: &str = r#"#include <stdio.h>
#include <unistd.h>
struct op { const void *at; int arg; };
static struct op program[3];
__attribute__((noinline)) int run(int compile) {
    static struct op finish[] = { { &&done, 0 } };
    if (compile) {
        program[0] = (struct op){ &&add, 2 };
        program[1] = (struct op){ &&add, 3 };
        program[2] = finish[0];
        return 0;
    }
    const struct op *pc = program;
    int acc = 0;
    goto *pc->at;
add:
    acc += pc->arg;
    pc++;
    goto *pc->at;
done:
    return acc;
}
int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    run(1);
    for (;;) { printf("acc %d\n", run(0)); usleep(3000); }
}
"#;
    let mut run = Run::start(APP, &["-O2", "-g"]);
    run.expect("acc 5");
    let base = run.object("app.c", APP);
    let new = run.object("app.c", &APP.replace("acc += pc->arg;", "acc += pc->arg * 2;"));
    let stderr = run.refused(&new, &base);
    assert!(stderr.contains("run takes the addresses of its own labels"), "{stderr}");
    run.expect("acc 5");
}

#[test]
fn a_static_signature_change_whose_caller_is_running_is_refused() {
    let mut run = Run::start(common::STATIC_CALLEE, &["-O2", "-g"]);
    run.expect("r 22");
    let base = run.object("app.c", common::STATIC_CALLEE);
    let new = run.object(
        "app.c",
        &common::static_callee_with_two_parameters(common::STATIC_CALLEE),
    );
    let stderr = run.refused(&new, &base);
    assert!(
        stderr.contains("the signature of calc changes, and its caller main is running on thread"),
        "{stderr}"
    );
    run.target.prints_only(&["r 22", "r 29"], 20);
}

/// The same change with the caller's call not running (`main` calls a
/// `step` that calls `calc`): patched, and the program computes what a
/// fresh build does.
#[test]
fn a_static_signature_change_whose_caller_is_not_running_is_patched() {
    let app = common::STATIC_CALLEE
        .replace(
            "int main(void) {",
            "__attribute__((noinline)) static int step(int i) { return calc(seed + i % 2); }\nint main(void) {",
        )
        .replace(
            "printf(\"r %d\\n\", calc(seed + i % 2));",
            "printf(\"r %d\\n\", step(i));",
        );
    let mut run = Run::start(&app, &["-O2", "-g"]);
    run.expect("r 22");
    let base = run.object("app.c", &app);
    let new = run.object("app.c", &common::static_callee_with_two_parameters(&app));
    let report = run.patch_object(&new, &["--base", base.to_str().unwrap()]);
    assert!(report["applied"].to_string().contains("calc"), "{report}");
    run.expect("r 321");
    run.expect("r 328");
}

/// A `main` that never sleeps, its loop's inlined body patched twice: its
/// running call keeps the old code for good both times. The second patch
/// (a slot update, no thread stopped) read the threads' positions without
/// stopping them, a thread on a CPU has none, and `main` was taken for
/// code a later call reaches: "patched main" where the first said NOT
/// REACHABLE (a new-user trial on zstd's driver, whose main thread
/// compresses most of the time).
#[test]
fn a_busy_main_patched_again_is_still_unreachable() {
    const APP: &str = r#"#include <stdio.h>
static volatile long sink;
static long total;
static void round_of(long i) { total += i * 1; if (i % 50000000 == 0) printf("total %ld\n", total); }
int main(void) { setvbuf(stdout, NULL, _IOLBF, 0); for (long i = 0;; i++) { round_of(i); sink = i; } }
"#;
    let mut run = Run::start(APP, &["-O2", "-g"]);
    run.target.wait_for_prefix("total ");
    for factor in ["2", "3"] {
        let report = run.edit(&APP.replace("total += i * 1;", &format!("total += i * {factor};")));
        let main = applied(&report, "main");
        assert_eq!(main["reach"]["reachable"], false, "patch {factor}: {report}");
        assert!(
            main["reach"]["note"].as_str().is_some_and(|n| n.contains("outermost")),
            "{report}"
        );
    }
}

/// The running-caller check is made again with every thread stopped for
/// the redirect: a thread that enters the caller between the first check
/// and the redirect (here, while relive waits at a failpoint) would run
/// the caller's old code into the changed function. `burst` is not
/// running when the patch starts; the program is told to run it while
/// relive waits before the stop.
#[test]
fn a_caller_entered_just_before_the_redirect_is_seen() {
    const APP: &str = r#"#include <stdio.h>
#include <unistd.h>
static volatile int seed = 3;
__attribute__((noinline)) static int calc(int x) { return x * 7 + 1; }
__attribute__((noinline)) static void burst(void) {
    for (int k = 0; k < 150; k++) { printf("c %d\n", calc(seed)); usleep(20000); }
}
int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    char c;
    printf("ready\n");
    while (read(0, &c, 1) == 1) burst();
}
"#;
    let mut run = Run::start(APP, &["-O2", "-g"]);
    run.expect("ready");
    let base = run.object("app.c", APP);
    let new = run.object("app.c", &common::calc_with_two_parameters(APP, "calc(seed)"));
    let relive = run
        .patch_command(&new, &base)
        .env("RELIVE_FAILPOINT", "patch-before-stop:1500")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Past relive's first check, before its stop: burst starts (3 s).
    std::thread::sleep(std::time::Duration::from_millis(500));
    run.target.stdin().write_all(b"x").unwrap();
    run.target.stdin().flush().unwrap();
    let out = relive.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("the signature of calc changes, and its caller burst is running on thread"),
        "{stderr}"
    );
    run.target.prints_only(&["c 22"], 20);
}

/// `f`'s parameters swapped with its caller `call`, which runs most of
/// the time (it sleeps 180 ms after its call of `f`; `main` waits 20 ms
/// between calls): the one-shot patch waits for the call to return and
/// goes in, and so does its revert, each at the first try. Both were
/// refused whenever the command came while the call ran, though it
/// returns a moment later.
#[test]
fn a_patch_and_its_revert_wait_for_a_callers_call_to_return() {
    const APP: &str = r#"#include <stdio.h>
#include <unistd.h>
static __attribute__((noinline, noipa)) int f(int a, long b) { return a * 100 - (int)b; }
__attribute__((noinline)) long call(void) { long s = f(10, 3); usleep(180000); return s; }
int main(void) { setvbuf(stdout, NULL, _IOLBF, 0); for (;;) { printf("r %ld\n", call()); usleep(20000); } }
"#;
    let edited = APP
        .replace(
            "int f(int a, long b) { return a * 100 - (int)b; }",
            "int f(long b, int a) { return a * 100 - (int)b + 1; }",
        )
        .replace("f(10, 3)", "f(3, 10)");
    let mut run = Run::start(APP, &["-O2", "-g"]);
    run.expect("r 997");
    let base = run.object("app.c", APP);
    let new = run.object("app.c", &edited);
    let pid = run.target.pid_arg();
    let out = run.relive(&[
        "patch",
        "--pid",
        &pid,
        new.to_str().unwrap(),
        "--base",
        base.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    run.expect("r 998");
    // A line is printed as a call returns: 50 ms on, the next call runs.
    std::thread::sleep(std::time::Duration::from_millis(50));
    let out = run.relive(&["revert", "--pid", &pid, "--all"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    run.expect("r 997");
}

/// `f`'s parameters swapped, saved with its caller `call`: patched while
/// `call` is not running. Then a thread enters the new `call` and stays
/// (while a file `hold` exists): a revert now would let that call go on
/// into `f`'s old code with the new argument order (a PCRE2 trial:
/// `revert --all`, and the program printed 290, which neither version of
/// the source computes). It is refused, nothing changes, and once the
/// call has returned the revert goes through.
#[test]
fn a_revert_under_a_running_caller_of_a_changed_signature_is_refused() {
    const APP: &str = r#"#include <stdio.h>
#include <unistd.h>
static __attribute__((noinline, noipa)) int f(int a, long b) { return a * 100 - (int)b; }
__attribute__((noinline)) long call(void) {
    long s = f(10, 3);
    while (access("hold", F_OK) == 0) { s = f(10, 3); usleep(1000); }
    return s;
}
int main(void) { setvbuf(stdout, NULL, _IOLBF, 0); for (;;) { printf("r %ld\n", call()); usleep(20000); } }
"#;
    // The program's working directory is the test's: the file is named
    // whole, one per test process.
    let hold = std::env::temp_dir().join(format!("relive-hold-{}", std::process::id()));
    let app = APP.replace("\"hold\"", &format!("{:?}", hold.display().to_string()));
    let edited = app
        .replace(
            "int f(int a, long b) { return a * 100 - (int)b; }",
            "int f(long b, int a) { return a * 100 - (int)b + 1; }",
        )
        .replace("f(10, 3)", "f(3, 10)");
    let mut run = Run::start(&app, &["-O2", "-g"]);
    run.expect("r 997");
    let base = run.object("app.c", &app);
    let new = run.object("app.c", &edited);
    // Refused while the thread happens to be inside `call` (its `access`
    // takes a moment): again until it is not.
    let pid = run.target.pid_arg();
    let (new_arg, base_arg) = (new.to_str().unwrap(), base.to_str().unwrap());
    let patch = ["patch", "--pid", &pid, new_arg, "--base", base_arg, "--json"];
    let out = (0..20)
        .map(|_| run.relive(&patch))
        .find(|out| out.status.success())
        .expect("the patch never went in");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(report["applied"].to_string().contains("\"call\""), "{report}");
    run.expect("r 998");
    // A body edit of `call` after it: its code still calls `f` the new
    // way, and its generation says so (the first one's pool may go).
    let body_edit = run.object("app.c", &edited.replace("usleep(1000)", "usleep(999)"));
    run.patch_object(&body_edit, &["--base", new.to_str().unwrap()]);
    let status: Value = serde_json::from_slice(&run.relive(&["status", "--pid", &pid, "--json"]).stdout).unwrap();
    let call = status["patches"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "call")
        .unwrap_or_else(|| panic!("{status}"));
    assert_eq!(call["generation"], 2, "{status}");
    assert_eq!(
        call["history"].as_array().unwrap().last().unwrap()["signature_calls"],
        serde_json::json!(["f"]),
        "{status}"
    );
    std::fs::write(&hold, "").unwrap();
    // The thread is in the new `call` once no line comes for a while.
    std::thread::sleep(std::time::Duration::from_millis(200));
    let out = run.relive(&["revert", "--pid", &pid, "--all"]);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("call is running on thread")
            && stderr.contains("calls f the way a patched signature change made it"),
        "{stderr}"
    );
    // Nothing was reverted: the new code's value once the call returns,
    // never a mix.
    while run.target.line_within(std::time::Duration::ZERO).is_ok() {}
    std::fs::remove_file(&hold).unwrap();
    for _ in 0..5 {
        assert_eq!(run.target.next_line(), "r 998");
    }
    let mut reverted = false;
    for _ in 0..50 {
        if run.relive(&["revert", "--pid", &pid, "--all"]).status.success() {
            reverted = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(7));
    }
    assert!(reverted, "the revert never went through");
    run.target.prints_only(&["r 998", "r 997"], 5);
    run.expect("r 997");
}

/// A loop `main` calls once, running, edited: its new code never runs,
/// and the note says why: its own running call (it said the function was
/// called "only from the part of main that its thread has passed", as if
/// the call were over: a libuv trial's `uv_run`).
#[test]
fn a_running_loop_main_calls_once_is_said_to_keep_its_old_code() {
    const APP: &str = r#"#include <stdio.h>
#include <unistd.h>
volatile int stop;
__attribute__((noinline)) void run_loop(void) { while (!stop) { printf("loop A\n"); usleep(2000); } }
int main(void) { setvbuf(stdout, NULL, _IOLBF, 0); run_loop(); puts("done"); return 0; }
"#;
    let mut run = Run::start(APP, &["-O2", "-g"]);
    run.expect("loop A");
    let base = run.object("app.c", APP);
    let new = run.object("app.c", &APP.replace("loop A", "loop B"));
    let report = run.patch_object(&new, &["--base", base.to_str().unwrap()]);
    let run_loop = applied(&report, "run_loop");
    assert_eq!(run_loop["reach"]["reachable"], false, "{report}");
    let note = run_loop["reach"]["note"].as_str().unwrap();
    assert!(
        note.contains("run_loop is running on thread")
            && note.contains("called from main, which will not call it again"),
        "{note}"
    );
    run.target.prints_only(&["loop A"], 5);
}

/// A global function inlined into its only caller, edited: its own copy
/// is never called, but the edit runs in the caller's new code, patched
/// with it. The note said only "its new code never runs", and the user
/// took the edit for lost (a libuv trial's uv__xform_input, inlined into
/// uv__read).
#[test]
fn an_inlined_functions_note_says_the_edit_runs_in_its_callers() {
    const APP: &str = r#"#include <stdio.h>
#include <unistd.h>
int helper(int x) { return x * 2; }
__attribute__((noinline)) int step(int x) { return helper(x) + 1; }
volatile int seed = 5;
int main(void) { setvbuf(stdout, NULL, _IOLBF, 0); for (;;) { printf("s %d\n", step(seed)); usleep(2000); } }
"#;
    let mut run = Run::start(APP, &["-O2", "-g"]);
    run.expect("s 11");
    let base = run.object("app.c", APP);
    let new = run.object("app.c", &APP.replace("x * 2", "x * 3"));
    let report = run.patch_object(&new, &["--base", base.to_str().unwrap()]);
    let helper = applied(&report, "helper");
    assert_eq!(helper["reach"]["reachable"], false, "{report}");
    let note = helper["reach"]["note"].as_str().unwrap();
    assert!(note.contains("the edit runs in their new code"), "{note}");
    assert_eq!(applied(&report, "step")["reach"]["reachable"], true, "{report}");
    run.expect("s 16");
}

/// A revert of one function of a change that also patched another, which
/// calls a function the change added: the added function is that other
/// patch's, which stays, and is not said to stay (a QuickJS trial: `revert
/// js_math_clz32` named the helper its change added for
/// `js_string_repeat`).
#[test]
fn a_revert_by_name_does_not_name_what_a_remaining_patch_added() {
    const TWO: &str = r#"
#include <stdio.h>
#include <unistd.h>
__attribute__((noinline, noipa)) int first(void) { return 1; }
__attribute__((noinline, noipa)) int second(void) { return 100; }
__attribute__((noinline, noipa)) void tick(void) { printf("first %d second %d\n", first(), second()); }
int main(void) { setvbuf(stdout, NULL, _IOLBF, 0); for (;;) { tick(); usleep(3000); } }
"#;
    let mut run = Run::start(TWO, &["-O2", "-g"]);
    run.expect("first 1 second 100");
    let base = run.object("app.c", TWO);
    let edited = TWO.replace(
        "int first(void) { return 1; }\n__attribute__((noinline, noipa)) int second(void) { return 100; }",
        "int first(void) { return 2; }\n__attribute__((noinline, noipa)) int helper(int x) { return x * 7; }\n__attribute__((noinline, noipa)) int second(void) { return helper(100); }",
    );
    let new = run.object("app.c", &edited);
    assert!(run.patch_in_words(&new, &base).status.success());
    run.expect("first 2 second 700");
    let pid = run.target.pid_arg();
    let out = run.relive(&["revert", &pid, "first"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("reverted first") && !text.contains("stays"), "{text}");
    run.expect("first 1 second 700");
    // The rest of the change undone: what it added stays, and is said to
    // (or goes with its pool).
    let out = run.relive(&["revert", &pid, "second"]);
    let text = String::from_utf8_lossy(&out.stdout);
    let freed = text.contains("freed") && !text.contains("stays");
    assert!(freed || text.contains("stays    helper"), "{text}");
    run.expect("first 1 second 100");
}

/// A function that tail-calls the one before it early in a long body:
/// the assembler resolved the call as a 2-byte `jmp` (rel8), which in a
/// copy reaches nothing. Its island cannot be after the body (more than
/// 127 bytes on), so it goes just before it (SQLite's
/// `sqlite3DbMallocRawNN` was refused: "too far from its end ... compile
/// with -ffunction-sections", which `relive run` gives no way to do).
/// The patched program computes what the edited program freshly built
/// does, on both paths (the tail call and the body), and a revert brings
/// back the old values.
#[test]
fn a_short_tail_call_early_in_a_long_function_goes_through_an_island_before_it() {
    const SRC: &str = r#"
#include <stdio.h>
#include <unistd.h>
static volatile int one = 1;
int table[64];
static __attribute__((noinline)) int finish(int *p, int n) { return p[n & 63] * 3 + 1; }
__attribute__((noinline)) int big(int *p, int n) {
    if (__builtin_expect(n < 1000, 1)) return finish(p, n);
    int s = 0;
    for (int i = 0; i < n; i++) { s += p[i & 63] * (i ^ 7); if (s > 100000) s -= p[(i * 5) & 63]; }
    for (int i = 0; i < n / 3; i++) { s ^= p[(i * 11) & 63] + i; }
    for (int i = 0; i < n / 5; i++) { s += p[(i * 13) & 63] ^ (s >> 3); }
    for (int i = 0; i < n / 7; i++) { s -= p[(i * 17) & 63] | (s << 2); }
    return s + 5;
}
int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (int i = 0; i < 64; i++) table[i] = i;
    for (;;) {
        printf("v %d %d\n", big(table, 5 * one), big(table, 2000 * one));
        if (argc > 1) return 0;
        usleep(3000);
    }
}
"#;
    const EDIT: (&str, &str) = ("return s + 5;", "return s * 2 + 6;");
    let flags = ["-O2", "-g", "-fpie", "-pie"];
    // What a program freshly built from `source` prints.
    let fresh = |dir: &std::path::Path, source: &str| {
        std::fs::write(dir.join("fresh.c"), source).unwrap();
        let built = Command::new("gcc")
            .args(flags)
            .args(["fresh.c", "-o", "fresh"])
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(built.status.success(), "{}", String::from_utf8_lossy(&built.stderr));
        let out = Command::new(dir.join("fresh")).arg("once").output().unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    let mut run = Run::start(SRC, &flags);
    let old_values = fresh(&run.dir(), SRC);
    let edited = SRC.replace(EDIT.0, EDIT.1);
    let new_values = fresh(&run.dir(), &edited);
    assert_ne!(old_values, new_values);
    run.expect(&old_values);
    let base = run.object("app.c", SRC);
    let new = run.object("app.c", &edited);
    // The compile has the shape this is about: a short exit of `big` that
    // an island after its body would not reach.
    let obj = relive_patch::objfile::ObjectFile::open(&new).unwrap();
    let big = obj.symbols.iter().find(|s| s.name == "big").unwrap();
    assert!(
        big.short_exits.iter().any(|e| big.size - e.field > 128),
        "gcc gave big no short exit far from its end: {:?} (size {})",
        big.short_exits,
        big.size
    );
    let report = run.patch_json(&new, &base);
    assert!(applied(&report, "big").is_object(), "{report}");
    run.expect(&new_values);
    let out = run.relive(&["revert", &run.target.pid_arg(), "--all"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    run.expect(&old_values);
}

/// A patch that calls a library function with several versions (libm's
/// `log`: `log@GLIBC_2.2.5`, and the default `log@@GLIBC_2.29`) calls the
/// default one, as a fresh link of the edited file does. It called the
/// old version, found first by the plain name (a gawk trial: `log(-4)`
/// printed `nan`, a fresh build `-nan`).
#[test]
fn a_patch_calls_the_default_version_of_a_versioned_library_function() {
    const LOG: &str = r#"#include <math.h>
#include <stdio.h>
#include <unistd.h>
__attribute__((noinline)) double f(double x) { return log(x); }
int main(int argc, char **argv) {
    (void)argv;
    volatile double x = -4.0;
    setvbuf(stdout, 0, _IOLBF, 0);
    for (;;) { printf("log=%f\n", f(x)); if (argc > 1) return 0; usleep(2000); }
}
"#;
    // The sign of the NaN each version of `log` gives, made a number.
    let edited = LOG.replace("return log(x);", "return copysign(7.0, log(x));");
    // The oracle: the edited file built afresh, run once.
    let fresh = tempfile::tempdir().unwrap();
    std::fs::write(fresh.path().join("app.c"), &edited).unwrap();
    let built = Command::new("gcc")
        .args(["-O2", "-g", "-o", "oracle", "app.c", "-lm"])
        .current_dir(fresh.path())
        .status()
        .unwrap();
    assert!(built.success());
    let out = Command::new(fresh.path().join("oracle")).arg("once").output().unwrap();
    let expected = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(expected.ends_with("7.000000"), "{expected}");
    let mut run = Run::start(LOG, &["-O2", "-g", "-lm"]);
    let report = run.edit(&edited);
    assert_eq!(applied(&report, "f")["name"], "f", "{report}");
    run.expect(&expected);
}

/// Two function-local statics of one name in one function (`static int
/// warned` in two blocks: GCC's `warned.0` and `warned.1`), whose order in
/// the new object's symbol table is not the program's (the edit makes
/// GCC lay the function out in another order): each keeps its own state.
/// They were paired in symbol-table order, so the new code's blocks used
/// each other's (a gawk trial: `r_interpret`'s two `warned`, one warning
/// said twice and the other never); here the second block, run for the
/// first time, said "again", with the first block's state.
#[test]
fn two_statics_of_one_name_in_one_function_keep_their_own_state() {
    const SRC: &str = r#"#include <stdio.h>
#include <unistd.h>
__attribute__((noinline)) void work(int op)
{
    if (op == 1) { static int warned; if (!warned) { warned = 1; puts("A: first time"); } else puts("A: again"); }
    if (op == 2) { static int warned; if (!warned) { warned = 1; puts("B: first time"); } else puts("B: again"); }
}
int main(void) { setvbuf(stdout, NULL, _IOLBF, 0); for (;;) { work(1); usleep(2000); } }
"#;
    let edited = SRC.replace("if (op == 2)", "if (op == 1 || op == 2)");
    let mut run = Run::start(SRC, &["-O2", "-g"]);
    run.expect("A: again");
    let base = run.object("app.c", SRC);
    let new = run.object("app.c", &edited);
    // The shape: the new object lists the two the other way round.
    let order = |obj: &std::path::Path| -> Vec<String> {
        let out = Command::new("readelf").arg("-sW").arg(obj).output().unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| {
                l.split_whitespace()
                    .last()
                    .filter(|n| n.starts_with("warned."))
                    .map(str::to_string)
            })
            .collect()
    };
    let (was, now) = (order(&base), order(&new));
    assert_eq!(was.len(), 2, "{was:?}");
    assert_ne!(was, now, "the compiler no longer reorders them: {was:?} {now:?}");
    let report = run.patch_json(&new, &base);
    assert_eq!(applied(&report, "work")["name"], "work", "{report}");
    run.expect("B: first time");
    run.expect("A: again");
}
