//! `relive patch` with the inputs of issue 18: new code calling the
//! kernel's vDSO functions, LTO objects, a program rebuilt while it runs,
//! and an object compiled from another program's source. Real C programs
//! built by gcc (and clang), running, patched and checked by what they
//! print.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{SystemTime, UNIX_EPOCH};

use relive_testkit::Target;
use serde_json::Value;

/// Position-independent and fixed-address builds, with debug information
/// (so the object's source is checked against the program's).
const BUILDS: [&[&str]; 2] = [&["-O2", "-g", "-fpie", "-pie"], &["-O2", "-g", "-fno-pie", "-no-pie"]];

/// A program built from `app.c` in its own directory, running.
struct Run {
    target: Target,
    flags: Vec<String>,
    state: tempfile::TempDir,
    objects: usize,
}

fn gcc(dir: &Path, args: &[&str]) {
    let out = Command::new("gcc").args(args).current_dir(dir).output().unwrap();
    assert!(
        out.status.success(),
        "gcc {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Run {
    fn start(source: &str, flags: &[&str]) -> Run {
        Run::start_built(source, flags, false)
    }

    /// [`Run::start`], its program stripped first (`strip`) if `strip`.
    fn start_built(source: &str, flags: &[&str], strip: bool) -> Run {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("app.c"), source).unwrap();
        let mut args = flags.to_vec();
        args.extend(["-o", "app", "app.c"]);
        gcc(dir.path(), &args);
        let exe = dir.path().join("app");
        if strip {
            let stripped = Command::new("strip").arg(&exe).output();
            assert!(
                stripped.is_ok_and(|o| o.status.success()),
                "strip (binutils, which .ci/run installs) is needed"
            );
        }
        Run {
            target: Target::spawn(Command::new(&exe), exe, dir),
            flags: flags.iter().map(|s| s.to_string()).collect(),
            state: tempfile::tempdir().unwrap(),
            objects: 0,
        }
    }

    fn dir(&self) -> PathBuf {
        self.target.dir.path().to_path_buf()
    }

    /// `app.c` rewritten as `source` and compiled with the program's flags
    /// plus `extra` and -c.
    fn object(&mut self, source: &str, extra: &[&str]) -> PathBuf {
        std::fs::write(self.dir().join("app.c"), source).unwrap();
        self.objects += 1;
        let obj = format!("app.{}.o", self.objects);
        let mut args: Vec<&str> = self.flags.iter().map(String::as_str).collect();
        args.extend_from_slice(extra);
        args.extend(["-c", "app.c", "-o", &obj]);
        gcc(&self.dir(), &args);
        self.dir().join(obj)
    }

    fn relive(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_relive"))
            .args(args)
            .env("RELIVE_STATE_DIR", self.state.path())
            .output()
            .unwrap()
    }

    /// `relive patch --pid PID OBJ EXTRA --json`: its exit code, JSON
    /// report (on success) and standard error.
    fn patch(&self, obj: &Path, extra: &[&str]) -> (Option<i32>, Value, String) {
        let pid = self.target.pid_arg();
        let mut args = vec!["patch", "--pid", &pid, obj.to_str().unwrap(), "--json"];
        args.extend_from_slice(extra);
        let out = self.relive(&args);
        let report = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        (
            out.status.code(),
            report,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// A patch that must succeed: its report.
    fn patched(&self, obj: &Path, extra: &[&str]) -> Value {
        let (code, report, stderr) = self.patch(obj, extra);
        assert_eq!(code, Some(0), "{:?}: {stderr}", self.flags);
        report
    }
}

fn applied(report: &Value) -> Vec<String> {
    let mut names: Vec<String> = report["applied"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

fn warnings(report: &Value) -> String {
    report["warnings"]
        .as_array()
        .map(|w| w.iter().filter_map(Value::as_str).collect::<Vec<_>>().join("\n"))
        .unwrap_or_default()
}

const CLOCKS: &str = r#"#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
__attribute__((noinline, noipa)) void report(void) { printf("report none\n"); }
int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    time_t started = time(NULL);
    for (;;) {
        report();
        if (time(NULL) < started) printf("the clock went back (line %d)\n", __LINE__);
        usleep(3000);
    }
}
"#;

/// The new `report`: three lines longer, which moves `main`'s __LINE__.
const CLOCKS_REPORT: &str = r#"__attribute__((noinline, noipa)) void report(void) {
    struct timeval tv = {0, 0};
    struct timespec ts = {0, 0};
    unsigned cpu = 9999;
    gettimeofday(&tv, NULL);
    clock_gettime(CLOCK_REALTIME, &ts);
    getcpu(&cpu, NULL);
    printf("report %ld %ld %ld %u\n", (long)time(NULL), (long)tv.tv_sec, (long)ts.tv_sec, cpu);
}"#;

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

/// New code calls `time`, `gettimeofday` (glibc IFUNCs that resolve into
/// the kernel's vDSO), `clock_gettime` and `getcpu`: they are linked to
/// what the program itself would call, and return the real time. `main`,
/// changed by the shifted `__LINE__` and calling `time` too, links as well.
#[test]
fn new_code_calls_the_vdso_clock_functions() {
    for flags in BUILDS {
        let mut run = Run::start(CLOCKS, flags);
        run.target.wait_for("report none");
        let base = run.object(CLOCKS, &[]);
        let new_source = CLOCKS.replace(
            r#"__attribute__((noinline, noipa)) void report(void) { printf("report none\n"); }"#,
            CLOCKS_REPORT,
        );
        let new = run.object(&new_source, &[]);
        let report = run.patched(&new, &["--base", base.to_str().unwrap()]);
        assert_eq!(applied(&report), ["main", "report"], "{flags:?}: {report}");
        let line = loop {
            let rest = run.target.wait_for_prefix("report ");
            if rest != "none" {
                break rest;
            }
        };
        let values: Vec<i64> = line.split(' ').map(|v| v.parse().unwrap()).collect();
        let [time, gettimeofday, clock_gettime, cpu] = values[..] else {
            panic!("{line:?}")
        };
        let now = now();
        for (name, seconds) in [
            ("time", time),
            ("gettimeofday", gettimeofday),
            ("clock_gettime", clock_gettime),
        ] {
            assert!(
                (seconds - now).abs() <= 5,
                "{flags:?}: {name} gave {seconds}, now is {now}"
            );
        }
        assert!((0..4096).contains(&cpu), "{flags:?}: getcpu gave {cpu}");
    }
}

const TICKER: &str = r#"#include <stdio.h>
#include <unistd.h>
__attribute__((noinline, noipa)) int value(void) { return 1; }
int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (;;) { printf("value %d\n", value()); usleep(3000); }
}
"#;

/// A rebuild with `value` elsewhere (a function before it) and other code.
fn rebuilt_source() -> String {
    TICKER
        .replace(
            "__attribute__((noinline, noipa)) int value",
            "int pad(int x) { return x * x * x + 7 * x - 3; }\n__attribute__((noinline, noipa)) int value",
        )
        .replace("return 1;", "return 50;")
}

/// The program's executable is rebuilt while it runs (a new build renamed
/// over it; or deleted and compiled again): `relive patch` reads the
/// running image through /proc, patches the right addresses, and warns
/// that the file on disk is not what runs.
#[test]
fn a_program_rebuilt_while_it_runs_is_still_patched() {
    for (flags, rename) in [(BUILDS[0], true), (BUILDS[1], false), (BUILDS[0], false)] {
        let mut run = Run::start(TICKER, flags);
        run.target.wait_for("value 1");
        let base = run.object(TICKER, &[]);
        // The rebuild, from another directory's copy of the new source.
        let build = tempfile::tempdir().unwrap();
        std::fs::write(build.path().join("app.c"), rebuilt_source()).unwrap();
        let exe = run.target.exe.clone();
        let mut args = flags.to_vec();
        if rename {
            args.extend(["-o", "app.new", "app.c"]);
            gcc(build.path(), &args);
            std::fs::rename(build.path().join("app.new"), &exe).unwrap();
        } else {
            std::fs::remove_file(&exe).unwrap();
            let out = exe.to_str().unwrap();
            args.extend(["-o", out, "app.c"]);
            gcc(build.path(), &args);
        }
        let new = run.object(&TICKER.replace("return 1;", "return 2;"), &[]);
        let report = run.patched(&new, &["--base", base.to_str().unwrap()]);
        assert_eq!(applied(&report), ["value"], "{flags:?}: {report}");
        run.target.wait_for("value 2");
        let warned = warnings(&report);
        assert!(
            warned.contains(&format!("{} on disk is not the file process", exe.display()))
                && warned.contains(&format!("/proc/{}/exe", run.target.pid())),
            "{flags:?}: {warned}"
        );
        let ps = run.relive(&["ps", &run.target.pid_arg(), "--json"]);
        let ps: Value = serde_json::from_slice(&ps.stdout).unwrap();
        assert_eq!(ps["image"]["identity"]["method"], "running-image", "{ps}");
    }
}

/// An object compiled from another program's source is refused (exit 1,
/// naming the object's source and the program) unless --force; with
/// --force it is patched, with a warning. A program without debug
/// information cannot be checked: the patch goes in with a warning that
/// says so. The program's own source passes without a word.
#[test]
fn an_object_from_another_programs_source_is_refused() {
    const OTHER: &str = "int value(void) { return 77; }\n";
    for flags in BUILDS {
        let mut run = Run::start(TICKER, flags);
        run.target.wait_for("value 1");
        let elsewhere = tempfile::tempdir().unwrap();
        std::fs::write(elsewhere.path().join("counter.c"), OTHER).unwrap();
        let mut args = flags.to_vec();
        args.extend(["-c", "counter.c", "-o", "counter.o"]);
        gcc(elsewhere.path(), &args);
        let foreign = elsewhere.path().join("counter.o");
        let (code, _, stderr) = run.patch(&foreign, &[]);
        assert_eq!(code, Some(1), "{flags:?}: {stderr}");
        let source = elsewhere.path().join("counter.c");
        for part in [
            source.to_str().unwrap(),
            run.target.exe.to_str().unwrap(),
            &run.dir().join("app.c").display().to_string(),
            "--force",
        ] {
            assert!(stderr.contains(part), "{flags:?}: {part:?} not in {stderr}");
        }
        run.target.wait_for("value 1");
        let report = run.patched(&foreign, &["--force"]);
        assert_eq!(applied(&report), ["value"]);
        assert!(warnings(&report).contains("--force"), "{report}");
        run.target.wait_for("value 77");
        // The program's own source: no word about it.
        let own = run.object(&TICKER.replace("return 1;", "return 3;"), &[]);
        let report = run.patched(&own, &[]);
        assert!(!warnings(&report).contains("compiled from"), "{report}");
        run.target.wait_for("value 3");
    }
    // Without -g in the program there is nothing to compare with.
    let mut run = Run::start(TICKER, &["-O2"]);
    run.target.wait_for("value 1");
    let obj = run.object(&TICKER.replace("return 1;", "return 4;"), &[]);
    let report = run.patched(&obj, &[]);
    assert!(warnings(&report).contains("has no debug information"), "{report}");
    run.target.wait_for("value 4");
}

/// An object none of whose functions a program without debug information
/// has (a wrong pid) is refused, naming its functions and the program,
/// and the program runs on untouched; it added them all as new code and
/// said "added" (an LMDB trial, patching `sleep`). `--force` adds them.
/// In a stripped program no function can be found by name: said so.
#[test]
fn an_object_none_of_whose_functions_the_program_has_is_refused() {
    const OTHER: &str = "int tripled(int x) { return 3 * x; }\nint plus_one(int x) { return tripled(x) + 1; }\n";
    for strip in [false, true] {
        let run = Run::start_built(TICKER, &["-O2"], strip);
        run.target.wait_for("value 1");
        let elsewhere = tempfile::tempdir().unwrap();
        std::fs::write(elsewhere.path().join("other.c"), OTHER).unwrap();
        gcc(elsewhere.path(), &["-O2", "-c", "other.c", "-o", "other.o"]);
        let foreign = elsewhere.path().join("other.o");
        let (code, report, stderr) = run.patch(&foreign, &[]);
        assert_eq!(code, Some(1), "strip {strip}: {report} {stderr}");
        for part in [
            "none of the 2 functions of",
            "(tripled, plus_one)",
            run.target.exe.to_str().unwrap(),
            if strip { "stripped" } else { "check the pid" },
            "--force",
        ] {
            assert!(stderr.contains(part), "strip {strip}: {part:?} not in {stderr}");
        }
        let status = run.relive(&["status", "--pid", &run.target.pid_arg(), "--json"]);
        let status: Value = serde_json::from_slice(&status.stdout).unwrap();
        assert_eq!(status["patches"].as_array().map(Vec::len), Some(0), "{status}");
        run.target.wait_for("value 1");
        let report = run.patched(&foreign, &["--force"]);
        assert_eq!(applied(&report), Vec::<String>::new(), "{report}");
        assert_eq!(report["added"].as_array().map(Vec::len), Some(2), "{report}");
        run.target.wait_for("value 1");
    }
}

/// LTO objects have no machine code to patch with: `relive diff` and
/// `relive patch` refuse them (exit 1) naming LTO and the fix, and the
/// program is left alone.
#[test]
fn lto_objects_are_refused() {
    let mut run = Run::start(TICKER, &["-O2"]);
    run.target.wait_for("value 1");
    let base = run.object(TICKER, &[]);
    let edited = TICKER.replace("return 1;", "return 2;");
    let gcc_lto = run.object(&edited, &["-flto"]);
    let clang_lto = run.dir().join("clang.o");
    let out = Command::new("clang")
        .args(["-O2", "-flto", "-c", "app.c", "-o"])
        .arg(&clang_lto)
        .current_dir(run.dir())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for (obj, says) in [
        (&gcc_lto, "GCC LTO object (-flto)"),
        (&clang_lto, "LLVM bitcode (clang -flto)"),
    ] {
        let diff = run.relive(&["diff", base.to_str().unwrap(), obj.to_str().unwrap()]);
        let (code, _, patch) = run.patch(obj, &["--base", base.to_str().unwrap()]);
        let diff_stderr = String::from_utf8_lossy(&diff.stderr).into_owned();
        for (what, code, stderr) in [("diff", diff.status.code(), &diff_stderr), ("patch", code, &patch)] {
            assert_eq!(code, Some(1), "{what} {}: {stderr}", obj.display());
            assert!(stderr.contains(obj.to_str().unwrap()), "{what}: {stderr}");
            assert!(stderr.contains(says) && stderr.contains("-fno-lto"), "{what}: {stderr}");
        }
    }
    run.target.wait_for("value 1");
    // A fat LTO object has real code: it patches.
    let fat = run.object(&edited, &["-flto", "-ffat-lto-objects"]);
    let report = run.patched(&fat, &["--base", base.to_str().unwrap()]);
    assert_eq!(applied(&report), ["value"]);
    run.target.wait_for("value 2");
}

/// An object compiled at another optimisation level than the program's
/// unit records (`-O0` into an `-O2 -g` build): patched, and said, since
/// the code is not what a build of the edit runs (a user's trial on
/// bzip2 got no word of it). The same level says nothing.
#[test]
fn an_object_at_another_optimisation_level_is_said_to_be() {
    let mut run = Run::start(TICKER, &["-O2", "-g"]);
    run.target.wait_for("value 1");
    let edited = TICKER.replace("return 1;", "return 2;");
    let same = run.object(&edited, &[]);
    let report = run.patched(&same, &[]);
    assert!(!warnings(&report).contains("was compiled with"), "{report}");
    let edited = TICKER.replace("return 1;", "return 3;");
    let other = run.object(&edited, &["-O0"]);
    let report = run.patched(&other, &[]);
    let said = warnings(&report);
    assert!(
        said.contains("was compiled with -O0") && said.contains("was built with -O2"),
        "{report}"
    );
    run.target.wait_for("value 3");
}

/// An empty file and a directory given as the object: each said as what
/// it is (they said "Could not read file magic" and "No such device"), and
/// the program runs on.
#[test]
fn an_empty_file_or_a_directory_is_said_to_be_one() {
    let mut run = Run::start(TICKER, &["-O2"]);
    run.target.wait_for("value 1");
    let empty = run.dir().join("empty.o");
    std::fs::write(&empty, b"").unwrap();
    let folder = run.dir().join("objs");
    std::fs::create_dir(&folder).unwrap();
    let text = run.dir().join("notes.o");
    std::fs::write(&text, "not an object\n").unwrap();
    let whole = std::fs::read(run.object(TICKER, &[])).unwrap();
    let truncated = run.dir().join("truncated.o");
    std::fs::write(&truncated, &whole[..whole.len() / 3]).unwrap();
    for (obj, says) in [
        (&empty, "the file is empty"),
        (&folder, "is a directory"),
        (&text, "not an object file: it does not start as an ELF file does"),
        (&truncated, "a damaged or truncated ELF file"),
    ] {
        let (code, _, stderr) = run.patch(obj, &[]);
        assert_eq!(code, Some(1), "{stderr}");
        assert!(
            stderr.contains(obj.to_str().unwrap()) && stderr.contains(says),
            "{stderr}"
        );
    }
    run.target.wait_for("value 1");
}

/// A copy of the program's source compiled under another name (`v1.c`),
/// patched with the original compile as --base (no --force: the base is
/// of a source of the program, and vouches for the copy): the copy's
/// statics are the program's (the counter goes on from its running
/// value), and the report says whose.
#[test]
fn a_renamed_copy_of_the_source_patched_over_its_base_keeps_the_statics() {
    const COUNTING: &str = r#"#include <stdio.h>
#include <unistd.h>
static long count;
static __attribute__((noinline)) long bump(long by) { count += by; return count; }
__attribute__((noinline)) long step(void) { return bump(1); }
int main(void) {
    for (;;) {
        printf("count %ld\n", step());
        fflush(stdout);
        usleep(20000);
    }
}
"#;
    let mut run = Run::start(COUNTING, &["-O2", "-g"]);
    run.target.wait_for("count 3");
    let base = run.object(COUNTING, &[]);
    let edited = COUNTING.replace("return bump(1);", "return bump(1000);");
    std::fs::write(run.dir().join("v1.c"), &edited).unwrap();
    gcc(&run.dir(), &["-O2", "-g", "-c", "v1.c", "-o", "v1.o"]);
    let report = run.patched(&run.dir().join("v1.o"), &["--base", base.to_str().unwrap()]);
    assert!(!warnings(&report).contains("--force"), "{report}");
    // (GCC may fold the constant into a clone of `bump`: whichever.)
    assert!(!applied(&report).is_empty(), "{report}");
    assert!(
        report["data"]
            .as_array()
            .is_some_and(|d| d.iter().any(|d| d["name"] == "count" && d["action"] == "kept")),
        "the program's count is kept: {report}"
    );
    assert!(
        warnings(&report).contains("taken as app.c's"),
        "the report says whose statics: {report}"
    );
    // The running count goes on by 1000 from where it was, in the
    // program's own `count`: a copy would have started again from 0.
    let n = loop {
        let n: i64 = run.target.wait_for_prefix("count ").parse().unwrap();
        if n > 1000 {
            break n;
        }
    };
    assert!(n % 1000 != 0, "counted on from the running value: {n}");
    // A base compiled from a same-named copy in another directory (a
    // checkout elsewhere) vouches for the renamed copy too, said as such
    // (a Lua re-check: each was accepted alone, both together refused).
    let elsewhere = run.dir().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::fs::write(elsewhere.join("app.c"), &edited).unwrap();
    gcc(&elsewhere, &["-O2", "-g", "-c", "app.c", "-o", "base.o"]);
    let again = edited.replace("return bump(1000);", "return bump(1000000);");
    std::fs::write(run.dir().join("v2.c"), &again).unwrap();
    gcc(&run.dir(), &["-O2", "-g", "-c", "v2.c", "-o", "v2.o"]);
    let base = elsewhere.join("base.o");
    let report = run.patched(&run.dir().join("v2.o"), &["--base", base.to_str().unwrap()]);
    assert!(
        warnings(&report).contains("(same file name, another directory)"),
        "{report}"
    );
    loop {
        let n: i64 = run.target.wait_for_prefix("count ").parse().unwrap();
        if n > 1_000_000 {
            break;
        }
    }
}

/// A static function the patched code calls, which the patch must bring
/// along (the program has none of that file: here the object names no
/// source), and which cannot be moved (a short branch in its middle goes
/// 128 bytes back, to the last byte of the function before it: an island
/// before the body would be farther, one after it far out of reach): the
/// refusal says it is not one of the functions patched, who calls it, and
/// what to pass; the program runs on.
#[test]
fn a_function_brought_along_that_cannot_move_is_explained() {
    const ASM: &str = "\t.text\n\t.type other, @function\nother:\n\tmovl $7, %eax\nother_ret:\n\tret\n\t.size other, .-other\n\t.type helper, @function\nhelper:\n\tmovl $7, %eax\n\ttestl %edi, %edi\n\t.rept 118\n\tnop\n\t.endr\n\tjne other_ret\n\t.rept 200\n\tnop\n\t.endr\n\tmovl $1, %eax\n\tret\n\t.size helper, .-helper\n\t.globl entry\n\t.type entry, @function\nentry:\n\tcall helper\n\taddl $ADD, %eax\n\tret\n\t.size entry, .-entry\n\t.section .note.GNU-stack,\"\",@progbits\n";
    const MAIN: &str = "#include <stdio.h>\n#include <unistd.h>\nint entry(int);\nint main(void) { for (;;) { printf(\"value %d\\n\", entry(1)); fflush(stdout); usleep(20000); } }\n";
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("main.c"), MAIN).unwrap();
    std::fs::write(dir.path().join("app.s"), ASM.replace("$ADD", "$1")).unwrap();
    std::fs::write(dir.path().join("v1.s"), ASM.replace("$ADD", "$2")).unwrap();
    gcc(dir.path(), &["-c", "v1.s", "-o", "v1.o"]);
    gcc(dir.path(), &["-O2", "main.c", "app.s", "-o", "app"]);
    let exe = dir.path().join("app");
    let run = Run {
        target: Target::spawn(Command::new(&exe), exe, dir),
        flags: Vec::new(),
        state: tempfile::tempdir().unwrap(),
        objects: 0,
    };
    run.target.wait_for("value 8");
    let (code, _, stderr) = run.patch(&run.dir().join("v1.o"), &["--only", "entry"]);
    assert_eq!(code, Some(1), "{stderr}");
    for part in [
        "helper cannot be moved",
        "not one of the functions patched",
        "entry calls it",
        "--base",
    ] {
        assert!(stderr.contains(part), "{part:?} not in {stderr}");
    }
    run.target.wait_for("value 8");
}

/// The same copy without --base, naming a static function of it: the
/// program's function is static in another file, so the copy's is added
/// beside it and replaces nothing. The report says so (it said only
/// "added"), and what to pass; the program runs on unchanged.
#[test]
fn a_static_of_a_renamed_copy_without_its_base_is_said_to_replace_nothing() {
    const COUNTING: &str = r#"#include <stdio.h>
#include <unistd.h>
long by = 1;
static long count;
static __attribute__((noinline)) long bump(long n) { count += n; return count; }
int main(void) {
    for (;;) {
        printf("count %ld\n", bump(by));
        fflush(stdout);
        usleep(20000);
    }
}
"#;
    let run = Run::start(COUNTING, &["-O2", "-g"]);
    run.target.wait_for("count 3");
    std::fs::write(
        run.dir().join("v1.c"),
        COUNTING.replace("count += n;", "count += 1000 * n;"),
    )
    .unwrap();
    gcc(&run.dir(), &["-O2", "-g", "-c", "v1.c", "-o", "v1.o"]);
    let report = run.patched(&run.dir().join("v1.o"), &["--only", "bump", "--force"]);
    assert!(applied(&report).is_empty(), "{report}");
    let said = warnings(&report);
    for part in ["bump was added beside the program's own", "static in app.c", "--base"] {
        assert!(said.contains(part), "{part:?} not in {said}");
    }
    // Still counting by one: nothing was replaced.
    let a: i64 = run.target.wait_for_prefix("count ").parse().unwrap();
    let b: i64 = run.target.wait_for_prefix("count ").parse().unwrap();
    assert_eq!(b, a + 1);
}

/// A static function of a header (`static int helper` in `h.h`), which
/// another file of the program has its copy of, that an edit of `app.c`
/// starts to use: the patch adds `app.c`'s own copy, as a fresh build has
/// one, and says nothing of a copy "beside the program's own" (a gawk
/// trial: a clone of a header's `emalloc_real` was said to replace
/// nothing, with advice to patch with another file's object as base).
#[test]
fn a_header_static_a_file_starts_to_use_is_its_own_copy() {
    const HEADER: &str = "static __attribute__((noinline)) int helper(int x) { return x * 7 + 1; }\n";
    const APP: &str = "#include <stdio.h>\n#include <unistd.h>\n#include \"h.h\"\nint other(int);\nstatic int calls;\n__attribute__((noinline)) int work(int x) { calls++; return x + 1; }\nint main(void) { setvbuf(stdout, 0, _IOLBF, 0); for (;;) { printf(\"w %d o %d\\n\", work(2), other(2)); usleep(2000); } }\n";
    const OTHER: &str = "#include \"h.h\"\nint other(int x) { return helper(x); }\n";
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().to_path_buf();
    for (name, text) in [("h.h", HEADER), ("app.c", APP), ("b.c", OTHER)] {
        std::fs::write(p.join(name), text).unwrap();
    }
    gcc(&p, &["-O2", "-g", "-o", "app", "app.c", "b.c"]);
    gcc(&p, &["-O2", "-g", "-c", "app.c", "-o", "base.o"]);
    let exe = p.join("app");
    let run = Run {
        target: Target::spawn(Command::new(&exe), exe, dir),
        flags: vec!["-O2".into(), "-g".into()],
        state: tempfile::tempdir().unwrap(),
        objects: 0,
    };
    run.target.wait_for("w 3 o 15");
    std::fs::write(p.join("app.c"), APP.replace("return x + 1;", "return helper(x) + 100;")).unwrap();
    gcc(&p, &["-O2", "-g", "-c", "app.c", "-o", "new.o"]);
    let base = p.join("base.o");
    let report = run.patched(&p.join("new.o"), &["--base", base.to_str().unwrap()]);
    assert_eq!(applied(&report), ["work"], "{report}");
    let said = warnings(&report);
    assert!(!said.contains("added beside"), "{said}");
    run.target.wait_for("w 115 o 15");
}

/// A program whose file name is not UTF-8 (a Latin-1 name): the kernel
/// prints its path's bytes in `/proc/PID/maps`, and reading that as text
/// failed, so relive could not patch it at all ("reading /proc/PID/maps:
/// stream did not contain valid UTF-8"). Now it is patched, read through
/// the process's own view of its file, and relive says why.
#[test]
fn a_program_whose_name_is_not_utf8_is_patched() {
    use std::os::unix::ffi::OsStrExt;
    const SOURCE: &str = "#include <stdio.h>\n#include <unistd.h>\n\
        __attribute__((noipa)) int answer(void) { return 41; }\n\
        int main(void) { setvbuf(stdout, NULL, _IOLBF, 0); for (;;) { printf(\"answer %d\\n\", answer()); usleep(5000); } }\n";
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("app.c"), SOURCE).unwrap();
    let name = std::ffi::OsStr::from_bytes(b"caf\xe9");
    let out = Command::new("gcc")
        .args(["-O2", "-g", "app.c", "-o"])
        .arg(name)
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let exe = dir.path().join(name);
    let mut run = Run {
        target: Target::spawn(Command::new(&exe), exe, dir),
        flags: vec!["-O2".into(), "-g".into()],
        state: tempfile::tempdir().unwrap(),
        objects: 0,
    };
    run.target.wait_for("answer 41");
    let maps = std::fs::read(format!("/proc/{}/maps", run.target.pid())).unwrap();
    assert!(
        std::str::from_utf8(&maps).is_err(),
        "the map holds bytes that are not UTF-8"
    );
    let obj = run.object(&SOURCE.replace("return 41", "return 42"), &[]);
    let report = run.patched(&obj, &[]);
    assert!(applied(&report).contains(&"answer".to_string()), "{report}");
    run.target.wait_for("answer 42");
    assert!(
        warnings(&report).contains("is not UTF-8"),
        "relive says why it reads the running image: {}",
        warnings(&report)
    );
}

/// The flags the `bzip2-sys` crate builds bzip2 with (its build.rs), where
/// the trials found the defects below.
const BZIP2_SYS_FLAGS: [&str; 6] = [
    "-O2",
    "-g",
    "-ffunction-sections",
    "-fdata-sections",
    "-fPIC",
    "-fno-omit-frame-pointer",
];

/// A function given new statics that GCC addresses beside the object
/// (`lea buf-1(%rip)`, a loop indexing `buf` from 1: the relocation is
/// `.bss - 5`, a place no symbol covers). relive copied the whole `.bss`
/// for that reference, a second `buf` the function's other references did
/// not use, and the copy of a zero-filled section took no room, so the
/// next static lay over it: the program printed an empty string where a
/// fresh build prints "1.0-live #N" (found on bzip2's
/// `BZ2_bzlibVersion`, with its crate's flags and without them).
#[test]
fn new_statics_addressed_beside_themselves_are_one_object_each() {
    const OLD: &str = "#include <stdio.h>\n#include <unistd.h>\n\
        __attribute__((noipa)) const char *version(void) { return \"1.0\"; }\n\
        int main(void) { setvbuf(stdout, NULL, _IOLBF, 0); for (;;) { printf(\"[%s]\\n\", version()); usleep(5000); } }\n";
    const NEW_VERSION: &str = r#"__attribute__((noipa)) const char *version(void) {
    static char buf[64];
    static unsigned calls;
    const char *v = "1.0-live";
    unsigned n = ++calls, k = 0, d = 0;
    char digits[12];
    while (*v) buf[k++] = *v++;
    buf[k++] = ' '; buf[k++] = '#';
    do { digits[d++] = (char)('0' + n % 10); n /= 10; } while (n);
    while (d) buf[k++] = digits[--d];
    buf[k] = 0;
    return buf;
}"#;
    let new_source = OLD.replace(
        "__attribute__((noipa)) const char *version(void) { return \"1.0\"; }",
        NEW_VERSION,
    );
    for flags in [&["-O2", "-g", "-fno-omit-frame-pointer"][..], &BZIP2_SYS_FLAGS[..]] {
        let mut run = Run::start(OLD, flags);
        run.target.wait_for("[1.0]");
        let base = run.object(OLD, &[]);
        let new = run.object(&new_source, &[]);
        run.patched(&new, &["--base", base.to_str().unwrap()]);
        // The first call of the new code counts 1, then 2, ...: what a
        // fresh build of the new source prints from its start.
        let first = run.target.wait_for_prefix("[1.0-live #");
        let n: u32 = first
            .trim_end_matches(']')
            .parse()
            .unwrap_or_else(|_| panic!("{flags:?}: printed [1.0-live #{first}"));
        for k in 1..=20 {
            assert_eq!(
                run.target.wait_for_prefix("["),
                format!("1.0-live #{}]", n + k),
                "{flags:?}"
            );
        }
    }
}

/// A new constant table walked from its start to one past its end, both
/// taken from a table of pointers (`{tbl, tbl + 6}`): the start named the
/// table's symbol and the end a place of its section no symbol covers, so
/// relive copied the table twice (on its own, and with its section) and
/// the walk went from one copy into the other (`w=144` where a fresh build
/// prints 72; bzip2's `blocksort.c` with such a table crashed). Every
/// place of a constant section that pointer arithmetic reaches is now in
/// one copy. With bzip2-sys's flags, plain flags, and clang.
#[test]
fn a_new_constant_table_and_its_end_are_one_copy() {
    const OLD: &str = "#include <stdio.h>\n#include <unistd.h>\nvolatile long zero;\n\
        __attribute__((noinline)) long report(void) { return zero; }\n\
        int main(void) { setvbuf(stdout, NULL, _IOLBF, 0); for (;;) { printf(\"w=%ld\\n\", report()); usleep(5000); } }\n";
    const NEW_REPORT: &str = r#"__attribute__((noinline)) long report(void) {
    static const int tbl[6] = { 5, 7, 11, 13, 17, 19 };
    static const int *const tb[2] = { tbl, tbl + 6 };
    long w = zero;
    for (const int *volatile const *b = tb; ; ) { const int *p = b[0], *e = b[1]; while (p != e) w += *p++; break; }
    return w;
}"#;
    let new_source = OLD.replace(
        "__attribute__((noinline)) long report(void) { return zero; }",
        NEW_REPORT,
    );
    let clang = relive_testkit::installed("clang", "clang is not installed (.ci/run installs it)");
    let builds: Vec<(&str, &[&str])> = [
        ("gcc", &BZIP2_SYS_FLAGS[..]),
        ("gcc", &["-O2", "-g"][..]),
        ("clang", &["-O2", "-g"][..]),
    ]
    .into_iter()
    .filter(|(cc, _)| *cc == "gcc" || clang)
    .collect();
    for (cc, flags) in builds {
        let dir = tempfile::tempdir().unwrap();
        let build = |source: &str, args: &[&str]| {
            std::fs::write(dir.path().join("app.c"), source).unwrap();
            let out = Command::new(cc)
                .args(flags)
                .args(args)
                .current_dir(dir.path())
                .output()
                .unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        };
        build(OLD, &["app.c", "-o", "app"]);
        build(OLD, &["-c", "app.c", "-o", "old.o"]);
        build(&new_source, &["-c", "app.c", "-o", "new.o"]);
        let exe = dir.path().join("app");
        let (old, new) = (dir.path().join("old.o"), dir.path().join("new.o"));
        let run = Run {
            target: Target::spawn(Command::new(&exe), exe, dir),
            flags: flags.iter().map(|s| s.to_string()).collect(),
            state: tempfile::tempdir().unwrap(),
            objects: 0,
        };
        run.target.wait_for("w=0");
        run.patched(&new, &["--base", old.to_str().unwrap()]);
        // 5 + 7 + 11 + 13 + 17 + 19, as a fresh build of the new source.
        run.target.wait_for("w=72");
        for _ in 0..20 {
            assert_eq!(run.target.wait_for_prefix("w="), "72", "{cc} {flags:?}");
        }
    }
}

/// A new pointer table holding the end of an array the program has
/// (`after + 4`), where the edit also adds a variable the compiler puts
/// right after that array (`extra`): in the object both are `.data+0x10`,
/// and relive, which cannot place `extra` where the program's `after`
/// ends, took the place for `extra` and said nothing; the loop to that
/// end ran into the patch's memory and the program crashed. Objects
/// given as they are cannot be told apart, and the patch says so and what
/// to do: the same two objects compiled with `-fdata-sections` (the
/// program as it was built) patch right, with nothing to warn of.
#[test]
fn an_end_of_an_array_that_is_a_new_variables_start_is_said_to_be_unclear() {
    const OLD: &str = r#"#include <stdio.h>
#include <unistd.h>
static int after[4] = {100, 200, 300, 400};
__attribute__((noinline)) long report(void) { after[1] += 1; return after[1]; }
int main(void) { setvbuf(stdout, NULL, _IOLBF, 0); for (;;) { printf("r=%ld\n", report()); usleep(5000); } }
"#;
    let new_source = OLD
        .replace(
            "static int after[4]",
            "static int extra[3] = {7, 8, 9};\nstatic int after[4]",
        )
        .replace(
            "__attribute__((noinline)) long report(void) { after[1] += 1; return after[1]; }",
            "static int *const bounds[2] = { after, after + 4 };\n\
             __attribute__((noinline)) long report(void) { extra[1] += 1; long w = 0;\n\
             for (int *volatile const *b = bounds; ; ) { int *p = b[0], *e = b[1]; while (p != e) w += *p++; break; }\n\
             return w; }",
        );
    let mut run = Run::start(OLD, &["-O2", "-g"]);
    run.target.wait_for_prefix("r=");
    let base = run.object(OLD, &[]);
    let new = run.object(&new_source, &[]);
    let (code, report, stderr) = run.patch(&new, &["--base", base.to_str().unwrap()]);
    let layout = Command::new("nm").arg(&new).output().unwrap();
    let nm = String::from_utf8_lossy(&layout.stdout);
    let at = |name: &str| {
        nm.lines()
            .find(|l| l.ends_with(&format!(" {name}")))
            .and_then(|l| u64::from_str_radix(l.split(' ').next()?, 16).ok())
    };
    // Only where the compiler laid `extra` right after `after`.
    if at("extra") != at("after").map(|a| a + 16) {
        eprintln!("SKIPPED: this gcc does not put extra right after after ({nm})");
        return;
    }
    assert_eq!(code, Some(0), "{stderr}");
    let said = warnings(&report);
    assert!(
        said.contains("one past the end of after and the start of extra") && said.contains("-fdata-sections"),
        "{report}"
    );

    // What the warning advises, on a program started afresh.
    let mut run = Run::start(OLD, &["-O2", "-g"]);
    run.target.wait_for_prefix("r=");
    let base = run.object(OLD, &["-fdata-sections"]);
    let new = run.object(&new_source, &["-fdata-sections"]);
    let report = run.patched(&new, &["--base", base.to_str().unwrap()]);
    assert!(!warnings(&report).contains("one past the end"), "{report}");
    // 100 + after[1] + 300 + 400, after[1] as the old code left it (201
    // or more), the same at every call: the walk ends at `after`'s end.
    // (The old code's lines, after[1] itself, come first.)
    let first: i64 = loop {
        let w: i64 = run.target.wait_for_prefix("r=").parse().unwrap();
        if w >= 1001 {
            break w;
        }
    };
    let sums: Vec<i64> = (0..20)
        .map(|_| run.target.wait_for_prefix("r=").parse().unwrap())
        .collect();
    assert!(sums.iter().all(|&w| w == first), "{first} then {sums:?}");
}

/// `relive sym` after a patch: a replaced function shows where its code
/// runs now, and a variable and a function the patch added are found (in
/// the patch journal; no file on disk has them). Before, `sym` answered
/// from the files alone: the added names were "not found" and the
/// replaced function showed only its old entry.
#[test]
fn sym_finds_what_a_patch_added_and_where_replaced_code_runs() {
    const OLD: &str = "#include <stdio.h>\n#include <unistd.h>\n\
        __attribute__((noipa)) int tally(void) { static int count; return ++count; }\n\
        __attribute__((noipa)) int value(void) { return 1; }\n\
        int main(void) { setvbuf(stdout, NULL, _IOLBF, 0); for (;;) { tally(); printf(\"v=%d\\n\", value()); usleep(5000); } }\n";
    let new_source = OLD.replace(
        "__attribute__((noipa)) int value(void) { return 1; }",
        "static int calls;\nstatic const int weights[4] = { 3, 1, 4, 1 };\nint last_weight;\n\
         __attribute__((noipa)) int twice(int x) { static int seen; seen++; return 2 * x; }\n\
         __attribute__((noipa)) int value(void) { calls++; last_weight = weights[calls & 3]; return twice(calls > 0); }",
    );
    let mut run = Run::start(OLD, &["-O2", "-g"]);
    run.target.wait_for("v=1");
    let base = run.object(OLD, &[]);
    let new = run.object(&new_source, &[]);
    let report = run.patched(&new, &["--base", base.to_str().unwrap()]);
    run.target.wait_for("v=2");
    let pid = run.target.pid_arg();
    let out = run.relive(&["sym", &pid, "value", "calls", "twice", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let found: Value = serde_json::from_slice(&out.stdout).unwrap();
    let value = found.as_array().unwrap().iter().find(|f| f["name"] == "value").unwrap();
    let new_code = report["applied"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "value")
        .unwrap()["current_addr"]
        .clone();
    assert_eq!(value["runs_at"], new_code, "{found}");
    // A new constant table too (a trial on mimalloc could not find one).
    let out = run.relive(&["sym", &pid, "value", "calls", "twice", "weights", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let found: Value = serde_json::from_slice(&out.stdout).unwrap();
    for (name, kind) in [("calls", "object"), ("twice", "function"), ("weights", "constant")] {
        let added = found
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["added"]["name"] == name)
            .unwrap_or_else(|| panic!("{name} not found: {found}"));
        assert_eq!(added["added"]["kind"], kind, "{found}");
        // What `sym` says is where the patch put it.
        let reported = report["added"]
            .as_array()
            .unwrap()
            .iter()
            .chain(report["data"].as_array().unwrap())
            .find(|a| a["name"] == name)
            .unwrap_or_else(|| panic!("the patch did not report {name}: {report}"));
        assert_eq!(added["added"]["addr"], reported["addr"], "{found}");
    }
    let text = run.relive(&["sym", &pid, "calls", "value"]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.lines()
            .any(|l| l.contains(" calls ") && l.ends_with("(added by a relive patch)")),
        "{text}"
    );
    assert!(text.contains("(patched: its code runs at"), "{text}");
    // Function-local statics by their source names: the program's
    // (`count.0` in its symbol table) and one the patch added (`seen` of
    // twice), as a trial on Lua looked for them.
    let out = run.relive(&["sym", &pid, "count", "seen", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let found: Value = serde_json::from_slice(&out.stdout).unwrap();
    let found = found.as_array().unwrap();
    assert!(
        found
            .iter()
            .any(|f| f["name"].as_str().is_some_and(|n| n.starts_with("count."))),
        "{found:?}"
    );
    assert!(
        found.iter().any(|f| f["added"]["key"] == "static:twice::seen"),
        "{found:?}"
    );
    // A name not found: the others' lines still, then the error (exit 3).
    let out = run.relive(&["sym", &pid, "value", "no_such_symbol"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stdout).contains(" value "), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no_such_symbol"),
        "{out:?}"
    );
    // An added function patched again: where its code runs now.
    let newer = run.object(&new_source.replace("return 2 * x;", "return 3 * x;"), &[]);
    let report = run.patched(&newer, &["--base", new.to_str().unwrap()]);
    run.target.wait_for("v=3");
    let again = report["applied"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "twice")
        .unwrap_or_else(|| panic!("{report}"))["current_addr"]
        .clone();
    let out = run.relive(&["sym", &pid, "twice", "--json"]);
    let found: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(found[0]["runs_at"], again, "{found}");
}

/// A revert that finds no patches names where it looked: a revert from a
/// shell with another RELIVE_STATE_DIR than the session's found none and
/// said only "nothing to revert" (a user's trial).
#[test]
fn a_revert_with_nothing_to_revert_names_the_journals_it_read() {
    let run = Run::start(
        "#include <unistd.h>\nint main(void) { for (;;) usleep(5000); }\n",
        &["-O2", "-g"],
    );
    let out = run.relive(&["revert", &run.target.pid_arg(), "--all"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        stdout.contains("nothing to revert") && stdout.contains(&run.state.path().display().to_string()),
        "{stdout}"
    );
}

/// Two one-shot patches of a file whose global function gets a parameter
/// unused (no code change: nothing patched), then uses it, while its
/// caller in another file calls it the old way: the second is refused,
/// its signature compared with the one the program runs (it went in, and
/// the new code read a register the caller never set: a libuv re-check).
/// The caller, `step`, runs only briefly (`main` calls it), so the
/// refusal is not the one for a running caller.
#[test]
fn a_parameter_added_unused_then_used_by_one_shot_patches_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let lib = "__attribute__((noinline)) int f(void) { return 1; }\n";
    std::fs::write(p.join("lib.c"), lib).unwrap();
    std::fs::write(
        p.join("app.c"),
        "#include <stdio.h>\n#include <unistd.h>\nint f(void);\n__attribute__((noinline, noipa)) int step(void) { return f(); }\nint main(void) { setvbuf(stdout, NULL, _IOLBF, 0); for (;;) { printf(\"f %d\\n\", step()); usleep(2000); } }\n",
    )
    .unwrap();
    gcc(p, &["-O2", "-g", "-o", "app", "app.c", "lib.c"]);
    gcc(p, &["-O2", "-g", "-c", "lib.c", "-o", "lib0.o"]);
    let unused = lib.replace("f(void) {", "f(int x) { (void)x;");
    let used = lib.replace("f(void) { return 1; }", "f(int x) { return x + 5000; }");
    for (text, object) in [(&unused, "lib1.o"), (&used, "lib2.o")] {
        std::fs::write(p.join("lib.c"), text).unwrap();
        gcc(p, &["-O2", "-g", "-c", "lib.c", "-o", object]);
    }
    let exe = p.join("app");
    let target = Target::spawn(Command::new(&exe), exe, dir);
    target.wait_for("f 1");
    let state = target.dir.path().join("state");
    let patch = |new: &str, base: &str| {
        Command::new(env!("CARGO_BIN_EXE_relive"))
            .args(["patch", &target.pid_arg(), new, "--base", base])
            .current_dir(target.dir.path())
            .env("RELIVE_STATE_DIR", &state)
            .output()
            .unwrap()
    };
    let first = patch("lib1.o", "lib0.o");
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    // Nothing to patch, and said why the next object will be refused (a
    // zlib trial's first object said only "nothing to patch").
    let said_first = String::from_utf8_lossy(&first.stdout).to_string() + &String::from_utf8_lossy(&first.stderr);
    assert!(
        said_first.contains("though no code changed: nothing was patched, and an object whose code uses it is refused"),
        "{said_first}"
    );
    let second = patch("lib2.o", "lib1.o");
    let said = String::from_utf8_lossy(&second.stderr);
    assert!(!second.status.success(), "{said}");
    assert!(
        said.contains("the signature of a global function is not the one the program runs (f: int() -> int(int x))"),
        "{said}"
    );
    target.wait_for("f 1");
}
