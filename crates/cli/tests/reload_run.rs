//! `relive run` end to end: a program started under relive, its source
//! edited on disk, the running program's output checked (S1, S2, S5, S8,
//! S20), and relive's exit status equal to the program's.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc::Receiver;

use relive_testkit::{Target, PATIENCE};
use serde_json::Value;

const APP: &str = r#"
#include <stdio.h>
#include <unistd.h>
long counter = 0;
__attribute__((noinline, noipa)) int value(void) { return 1; }
int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (;;) { counter++; printf("value %d counter %ld\n", value(), counter); usleep(3000); }
}
"#;

/// Writes `files` into `dir` and builds them with gcc and `flags` into
/// `dir/app`: its path.
fn build_files(dir: &Path, files: &[(&str, &str)], flags: &[&str]) -> std::path::PathBuf {
    for (name, text) in files {
        std::fs::write(dir.join(name), text).unwrap();
    }
    let exe = dir.join("app");
    let sources = files.iter().map(|(n, _)| *n).filter(|n| n.ends_with(".c"));
    let built = Command::new("gcc")
        .args(flags)
        .arg("-o")
        .arg(&exe)
        .args(sources)
        .current_dir(dir)
        .status()
        .unwrap();
    assert!(built.success(), "gcc {flags:?}");
    exe
}

/// [`build_files`] in a fresh directory, started under `relive run`: the
/// program and relive's events.
fn run_files(files: &[(&str, &str)], flags: &[&str]) -> (Target, Receiver<Value>) {
    let dir = tempfile::tempdir().unwrap();
    let exe = build_files(dir.path(), files, flags);
    let relive = Path::new(env!("CARGO_BIN_EXE_relive"));
    relive_testkit::relive_run(relive, &[], exe, &[], dir)
}

/// Dates the program `exe` a minute back, as if built then: the edits
/// made since are newer, and relive catches them up when it starts.
fn built_a_minute_ago(exe: &Path) {
    let built_at = std::time::SystemTime::now() - std::time::Duration::from_secs(60);
    std::fs::File::options()
        .write(true)
        .open(exe)
        .unwrap()
        .set_modified(built_at)
        .unwrap();
}

/// Events read until each of `files` (names in the program's directory)
/// has one.
fn events_until_each_of(events: &Receiver<Value>, files: &[&str]) -> Vec<Value> {
    let mut seen: Vec<Value> = Vec::new();
    while !files.iter().all(|f| {
        seen.iter()
            .any(|e| e["file"].as_str().is_some_and(|n| n.ends_with(&format!("/{f}"))))
    }) {
        seen.push(
            events
                .recv_timeout(PATIENCE)
                .unwrap_or_else(|_| panic!("no more events: {seen:?}")),
        );
    }
    seen
}

/// `e` is a refusal whose message says `said`.
fn refused_saying(e: &Value, said: &str) {
    assert_eq!(e["event"], "refused", "{e}");
    assert!(e["message"].as_str().is_some_and(|m| m.contains(said)), "{e}");
}

/// `relive run --json -- ./app` in a directory holding `app.c`, built with
/// `flags`; relive's JSON events are read from its stderr.
struct Session {
    target: Target,
    events: Receiver<Value>,
    source: std::path::PathBuf,
    text: String,
}

impl Session {
    fn start(source: &str, flags: &[&str]) -> Session {
        Session::start_with(source, flags, &[], &[])
    }

    /// With extra `relive run` options and program arguments.
    fn start_with(source: &str, flags: &[&str], options: &[&str], program_args: &[&str]) -> Session {
        Session::start_built("gcc", source, flags, options, program_args)
    }

    /// Built by the C compiler `cc`.
    fn start_built(cc: &str, source: &str, flags: &[&str], options: &[&str], program_args: &[&str]) -> Session {
        Session::started(cc, source, flags, |exe, dir| {
            let relive = Path::new(env!("CARGO_BIN_EXE_relive"));
            relive_testkit::relive_run(relive, options, exe, program_args, dir)
        })
    }

    /// [`Session::start`], its events including `changed_elsewhere`
    /// (which the others leave out).
    fn start_seeing_every_event(source: &str, flags: &[&str]) -> Session {
        Session::started("gcc", source, flags, |exe, dir| {
            let relive = Path::new(env!("CARGO_BIN_EXE_relive"));
            relive_testkit::relive_run_every_event(relive, &[], exe, &[], dir)
        })
    }

    /// `source` built by `cc` with `flags` as `app`, and `relive run` of it
    /// started by `run` (edits count from the moment it says it is
    /// watching).
    fn started(
        cc: &str,
        source: &str,
        flags: &[&str],
        run: impl FnOnce(std::path::PathBuf, tempfile::TempDir) -> (Target, Receiver<Value>),
    ) -> Session {
        let dir = tempfile::tempdir().unwrap();
        let exe = relive_testkit::compile_with(cc, dir.path(), "app", source, flags);
        let source_path = dir.path().join("app.c");
        let (target, events) = run(exe, dir);
        Session {
            target,
            events,
            source: source_path,
            text: source.to_string(),
        }
    }

    /// Saves an edited source, the way an editor does.
    fn edit(&mut self, from: &str, to: &str) {
        assert!(self.text.contains(from));
        self.text = self.text.replace(from, to);
        std::fs::write(&self.source, &self.text).unwrap();
    }

    /// Saves `from` edited to `to` and requires relive's next event to
    /// be the patch of it: that event.
    fn patched_by(&mut self, from: &str, to: &str) -> Value {
        self.edit(from, to);
        let e = self.event();
        assert_eq!(e["event"], "patched", "{e}");
        e
    }

    fn event(&self) -> Value {
        self.events.recv_timeout(PATIENCE).expect("relive reported no reload")
    }

    /// Saves the source with every `(from, to)` of `edits` made, in one
    /// save: relive's next event.
    fn save_with(&mut self, edits: &[(&str, &str)]) -> Value {
        for (from, to) in edits {
            assert!(self.text.contains(from), "{from:?} is not in the source");
            self.text = self.text.replace(from, to);
        }
        std::fs::write(&self.source, &self.text).unwrap();
        self.event()
    }
}

#[test]
fn edits_on_disk_reach_the_running_program() {
    for flags in [&["-O0", "-g"][..], &["-O2", "-g", "-fno-pie", "-no-pie"][..]] {
        let mut s = Session::start(APP, flags);
        s.target.wait_for_prefix("value 1 ");
        // S1: same-size change.
        s.edit("return 1;", "return 2;");
        let e = s.event();
        assert_eq!(e["event"], "patched", "{e}");
        assert_eq!(e["functions"], serde_json::json!(["value"]));
        for stage in ["compile", "diff", "link", "apply", "total"] {
            assert!(e["timing_us"][stage].is_u64(), "{e}");
        }
        let before: i64 = s.target.wait_for_prefix("value 2 counter ").parse().unwrap();
        // S20: a compile error changes nothing; the next good edit applies.
        s.edit("return 2;", "return 2 +;");
        let e = s.event();
        assert_eq!(e["event"], "compile_error", "{e}");
        assert!(e["message"].as_str().unwrap().contains("error"), "{e}");
        s.target.wait_for_prefix("value 2 counter ");
        // S2 + S8: the body grows and calls a new function.
        s.edit(
            "__attribute__((noinline, noipa)) int value(void) { return 2 +; }",
            "__attribute__((noinline, noipa)) int extra(int x) { return x * 10; }\n__attribute__((noinline, noipa)) int value(void) { volatile int a[16]; int t = 0; for (int i = 0; i < 16; i++) { a[i] = i; t += a[i]; } return extra(t); }",
        );
        let e = s.event();
        assert_eq!(e["event"], "patched", "{e}");
        // S5: the global kept counting across all of it.
        let after: i64 = s.target.wait_for_prefix("value 1200 counter ").parse().unwrap();
        assert!(after > before, "{flags:?}: counter {after} after {before}");
    }
}

#[test]
fn relive_exits_with_the_programs_status() {
    const SHORT: &str = "#include <unistd.h>\nint main(void) { usleep(300000); return 7; }\n";
    let s = Session::start(SHORT, &["-O0", "-g"]);
    let mut target = s.target;
    let status = target.child.wait().unwrap();
    assert_eq!(status.code(), Some(7));
}

/// In text as in JSON, the program's end is said (text said nothing, and
/// the run looked gone without a trace: a PCRE2 trial).
#[test]
fn the_programs_exit_is_said_in_text() {
    const SHORT: &str = "#include <unistd.h>\nint main(void) { usleep(300000); return 3; }\n";
    let dir = tempfile::tempdir().unwrap();
    let exe = relive_testkit::compile_with("gcc", dir.path(), "app", SHORT, &["-O0", "-g"]);
    let out = Command::new(env!("CARGO_BIN_EXE_relive"))
        .args(["run", "--"])
        .arg(&exe)
        .current_dir(dir.path())
        .env("RELIVE_STATE_DIR", dir.path().join("state"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("the program (pid ") && said.contains(") exited with status 3"),
        "{said}"
    );
}

/// S21: an edit saved while the previous one compiles is not lost: the
/// last edit wins.
#[test]
fn an_edit_during_a_compile_is_not_lost() {
    let dir = tempfile::tempdir().unwrap();
    // A compiler that says when it starts (a file of its own), then takes
    // 0.3 s: the next edit lands while it runs.
    let started = dir.path().join("started");
    let script = dir.path().join("noting-cc");
    std::fs::write(
        &script,
        format!("#!/bin/sh\ntouch '{}'\nsleep 0.3\nexec gcc \"$@\"\n", started.display()),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let cc = format!("{} -O0 -g", script.display());
    let mut s = Session::start_with(APP, &["-O0", "-g"], &["--cc", &cc], &[]);
    s.target.wait_for_prefix("value 1 ");
    let _ = std::fs::remove_file(&started); // the start-up compile's
    s.edit("return 1;", "return 2;");
    let deadline = std::time::Instant::now() + PATIENCE;
    while !started.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    s.edit("return 2;", "return 3;");
    // The program ends up running the last edit.
    s.target.wait_for_prefix("value 3 ");
    let e = s.event();
    assert_eq!(e["event"], "patched");
    // The first compile, dropped, is said: the compile time is the last
    // one's, and the wait was both (a QuickJS trial).
    assert!(
        e["notes"]
            .to_string()
            .contains("compiled 2 times: it (or a header it includes) was saved again while it compiled, so the earlier compile ("),
        "{e}"
    );
}

/// An edited initial value does not reach a running program (it keeps
/// the value it has): said so, where relive said only "no function
/// changed".
#[test]
fn an_edited_initial_value_is_said_to_wait_for_a_restart() {
    let mut s = Session::start(APP, &["-O0", "-g"]);
    s.target.wait_for_prefix("value 1 ");
    s.edit("long counter = 0;", "long counter = 1000000;");
    let e = s.event();
    assert_eq!(e["event"], "no_change", "{e}");
    let notes = e["notes"].to_string();
    assert!(
        notes.contains("the initial value of counter changed") && notes.contains("restart"),
        "{e}"
    );
    let counted: i64 = s.target.wait_for_prefix("value 1 counter ").parse().unwrap();
    assert!(counted < 1000000, "{counted}");
}

/// An initial value edited to 0, which moves the variable into `.bss`
/// (zero-filled, no bytes in the object), is said too: it went unsaid
/// (an Oniguruma trial: `ParseDepthLimit = 0`), while 0 to 1 was said.
#[test]
fn an_initial_value_edited_to_zero_is_said_to_wait_for_a_restart() {
    let app = APP.replace("long counter = 0;", "long counter = 5;");
    assert_ne!(app, APP, "APP starts its counter at 0");
    let mut s = Session::start(&app, &["-O0", "-g"]);
    s.target.wait_for_prefix("value 1 ");
    s.edit("long counter = 5;", "long counter = 0;");
    let e = s.event();
    assert_eq!(e["event"], "no_change", "{e}");
    assert!(
        e["notes"].to_string().contains("the initial value of counter changed"),
        "{e}"
    );
    let counted: i64 = s.target.wait_for_prefix("value 1 counter ").parse().unwrap();
    assert!(counted >= 5, "the program keeps its value: {counted}");
}

/// Under `relive run`, a save that changes the signature of a `static`
/// function (`calc(x)` to `calc(x, y)`, with its call in `main`'s loop):
/// `main`'s running call keeps its old code, which would call the new
/// `calc` with one argument. It was "patched calc" while the program
/// printed `x * 7 + garbage` (a fresh build prints `x * 7 + 300`); now it
/// is refused, naming the caller, and the program runs on unchanged.
#[test]
fn a_static_signature_change_whose_caller_is_running_is_refused() {
    let mut s = Session::start(common::STATIC_CALLEE, &["-O2", "-g"]);
    s.target.wait_for("r 29");
    s.text = common::static_callee_with_two_parameters(&s.text);
    std::fs::write(&s.source, &s.text).unwrap();
    let e = s.event();
    refused_saying(
        &e,
        "the signature of calc changes, and its caller main is running on thread",
    );
    s.target.prints_only(&["r 22", "r 29"], 20);
}

/// A signature change made in two saves: the first gives the callee a
/// parameter its body ignores (its code is the same, so it is not
/// patched) and passes it from the caller, whose running call keeps its
/// old code; the second makes the body use it. The second diff shows no
/// signature change (the first compile had it already), and it was
/// patched: the running caller's old code called the new callee with one
/// argument fewer (a Lua trial: `#s` printed garbage where a fresh build
/// prints the length). Compared with the code that runs, it is refused.
#[test]
fn a_signature_change_made_in_two_saves_is_refused_under_a_running_caller() {
    let mut s = Session::start(common::RUNNING_CALLER, &["-O2", "-g"]);
    s.target.wait_for("r 21");
    // Step one: the parameter, unused, and passed.
    let e = s.save_with(&[
        (
            "int len(int x) { return x * 7; }",
            "int len(int x, int bonus) { (void)bonus; return x * 7; }",
        ),
        ("len(seed)", "len(seed, 100)"),
    ]);
    // `run`'s new code, which `main` calls once: it cannot run.
    assert_eq!(e["event"], "unreachable", "{e}");
    assert_eq!(e["unreachable"], serde_json::json!(["run"]), "{e}");
    assert!(!e["functions"].to_string().contains("\"len\""), "{e}");
    // Step two: used. `run`'s running call is of its old code, which
    // passes no second argument.
    let e = s.save_with(&[("(void)bonus; return x * 7;", "return x * 7 + bonus;")]);
    refused_saying(
        &e,
        "the signature of len changes, and its caller run is running on thread",
    );
    s.target.prints_only(&["r 21"], 20);
}

/// The same in three saves, the callee patched before: its body changes
/// (generation 1), then its signature alone (its code the same: not
/// patched, generation 1 runs on), then its body uses the new parameter.
/// Neither the diff (the second compile had the parameter) nor the
/// program's DWARF (the callee runs a patch's code) shows that change:
/// the signature generation 1 was compiled with, kept in the journal, does.
#[test]
fn a_signature_change_of_a_patched_callee_made_in_steps_is_refused_under_a_running_caller() {
    let mut s = Session::start(common::RUNNING_CALLER, &["-O2", "-g"]);
    s.target.wait_for("r 21");
    let e = s.save_with(&[("return x * 7;", "return x * 8;")]);
    assert_eq!(e["functions"], serde_json::json!(["len"]), "{e}");
    s.target.wait_for("r 24");
    let e = s.save_with(&[
        ("int len(int x) {", "int len(int x, int bonus) { (void)bonus;"),
        ("len(seed)", "len(seed, 100)"),
    ]);
    // `run`'s new code, which `main` calls once: it cannot run.
    assert_eq!(e["event"], "unreachable", "{e}");
    assert_eq!(e["unreachable"], serde_json::json!(["run"]), "{e}");
    assert!(!e["functions"].to_string().contains("\"len\""), "{e}");
    let e = s.save_with(&[("(void)bonus; return x * 8;", "return x * 8 + bonus;")]);
    refused_saying(
        &e,
        "the signature of len changes, and its caller run is running on thread",
    );
    s.target.prints_only(&["r 24"], 20);
}

/// A save that adds a variable says so, as it says what functions it
/// added (an LMDB trial: only `relive status` listed new variables).
/// An edit of a function that has no code of its own (a static function
/// called once, inlined into its caller) is named with the function the
/// patch replaced: a zlib trial's edit of `read_buf` was said as "patched
/// fill_window, deflate_stored", as if relive had patched other code than
/// what was edited. An edit of the caller itself names no other function.
#[test]
fn an_edit_of_a_function_inlined_into_its_caller_names_it() {
    const APP: &str = r#"#include <stdio.h>
#include <unistd.h>
static int scaled(int x)
{
    int y = x * 3;
    return y + 1;
}

__attribute__((noinline)) int value(int x)
{
    return scaled(x) + 100;
}

int main(void) { setvbuf(stdout, NULL, _IOLBF, 0); for (int i = 0;; i++) { printf("v %d\n", value(i & 1)); usleep(3000); } }
"#;
    let mut s = Session::start(APP, &["-O2", "-g"]);
    s.target.wait_for("v 104");
    let e = s.patched_by("int y = x * 3;", "int y = x * 5;");
    assert_eq!(e["functions"], serde_json::json!(["value"]), "{e}");
    assert_eq!(
        e["inlined_edits"],
        serde_json::json!([{"function": "scaled", "into": ["value"]}]),
        "{e}"
    );
    s.target.wait_for("v 106");
    let e = s.patched_by("return scaled(x) + 100;", "return scaled(x) + 200;");
    assert!(e.get("inlined_edits").is_none(), "{e}");
    s.target.wait_for("v 206");
    // A helper the save adds, inlined, is said added, not edited (a Lua
    // trial: "it inlines twice_plus, which was edited").
    let e = s.patched_by(
        "__attribute__((noinline)) int value(int x)\n{\n    return scaled(x) + 200;",
        "static int bump(int x)\n{\n    return x + 300;\n}\n\n__attribute__((noinline)) int value(int x)\n{\n    return scaled(x) + bump(x);",
    );
    assert_eq!(
        e["inlined_edits"],
        serde_json::json!([{"function": "bump", "into": ["value"], "added": true}]),
        "{e}"
    );
    s.target.wait_for("v 301");
}

/// An edit of a function with code of its own that another function has
/// inlined: both are patched, and the event says that the second inlines
/// the first (a curl trial: "patched is_dot, parseurl_and_replace" said
/// nothing of why the second, where an inline function's edit was said
/// so). An edit of the caller alone names no other function.
#[test]
fn an_edit_of_a_patched_function_another_inlines_names_it() {
    const APP: &str = r#"#include <stdio.h>
#include <unistd.h>
volatile int seed = 10;
int twice(int x)
{
    return x * 2;
}

int (*volatile out_of_line)(int) = twice;

__attribute__((noinline)) int value(int x)
{
    return twice(x + seed) + 100;
}

int main(void) { setvbuf(stdout, NULL, _IOLBF, 0); for (;;) { printf("v %d %d\n", value(0), out_of_line(1)); usleep(3000); } }
"#;
    let mut s = Session::start(APP, &["-O2", "-g"]);
    s.target.wait_for("v 120 2");
    let e = s.patched_by("return x * 2;", "return x * 3;");
    let mut functions: Vec<String> = serde_json::from_value(e["functions"].clone()).unwrap();
    functions.sort();
    assert_eq!(functions, ["twice", "value"], "{e}");
    assert_eq!(
        e["inlined_edits"],
        serde_json::json!([{"function": "twice", "into": ["value"]}]),
        "{e}"
    );
    s.target.wait_for("v 130 3");
    let e = s.patched_by("return twice(x + seed) + 100;", "return twice(x + seed) + 200;");
    assert!(e.get("inlined_edits").is_none(), "{e}");
    s.target.wait_for("v 230 3");
}

/// The same for an inline function of a header: the edit is in the
/// header, the patch in the file that includes it.
#[test]
fn an_edit_of_a_header_function_inlined_into_its_caller_names_it() {
    let files: [(&str, &str); 2] = [
        ("util.h", "static inline int twice(int v)\n{\n    return v * 2;\n}\n"),
        (
            "app.c",
            "#include <stdio.h>\n#include <unistd.h>\n#include \"util.h\"\n__attribute__((noinline)) int value(int x) { return twice(x) + 100; }\nint main(void) { setvbuf(stdout, NULL, _IOLBF, 0); for (int i = 0;; i++) { printf(\"v %d\\n\", value(i & 1)); usleep(3000); } }\n",
        ),
    ];
    let (target, events) = run_files(&files, &["-O2", "-g"]);
    target.wait_for("v 102");
    std::fs::write(target.dir.path().join("util.h"), files[0].1.replace("v * 2", "v * 5")).unwrap();
    let e = next_event_for(&events, "/app.c");
    assert_eq!(e["event"], "patched", "{e}");
    assert_eq!(
        e["inlined_edits"],
        serde_json::json!([{"function": "twice", "into": ["value"]}]),
        "{e}"
    );
    target.wait_for("v 105");
}

/// A save that puts a function back as the program was built, whose
/// patch cannot be taken back on its own (its caller, patched in one
/// change with it when its signature changed, stays patched), says it is
/// back to the program's own code, patched again with it: it was said as
/// patched (a SQLite re-check: 87 functions put back were said as moved).
#[test]
fn a_put_back_whose_take_back_is_refused_is_said_as_the_programs_own_code() {
    const APP: &str = r#"#include <stdio.h>
#include <unistd.h>
__attribute__((noinline, noipa)) static int f(int x) { return x * 2; }
__attribute__((noinline)) static int g(int x) { return f(x) + 100; }
int main(void) { setvbuf(stdout, NULL, _IOLBF, 0); for (int i = 0;; i++) { printf("v %d\n", g(i & 1)); usleep(3000); } }
"#;
    let mut s = Session::start(APP, &["-O2", "-g"]);
    s.target.wait_for("v 102");
    let e = s.save_with(&[
        (
            "static int f(int x) { return x * 2; }",
            "static int f(int x, int y) { return x * 2 + y; }",
        ),
        ("return f(x) + 100;", "return f(x, 1) + 100;"),
    ]);
    assert_eq!(e["event"], "patched", "{e}");
    s.target.wait_for("v 103");
    let e = s.save_with(&[
        (
            "static int f(int x, int y) { return x * 2 + y; }",
            "static int f(int x) { return x * 2; }",
        ),
        ("return f(x, 1) + 100;", "return f(x) + 200;"),
    ]);
    assert_eq!(e["event"], "patched", "{e}");
    assert_eq!(e["as_built"], serde_json::json!(["f"]), "{e}");
    s.target.wait_for("v 202");
}

#[test]
fn an_added_variable_is_listed_with_the_reload() {
    const APP: &str = r#"#include <stdio.h>
#include <unistd.h>
__attribute__((noinline, noipa)) int value(void) { return 1; }
int main(void) { setvbuf(stdout, NULL, _IOLBF, 0); for (;;) { printf("v %d\n", value()); usleep(3000); } }
"#;
    let mut s = Session::start(APP, &["-O2", "-g"]);
    s.target.wait_for("v 1");
    let e = s.save_with(&[(
        "__attribute__((noinline, noipa)) int value(void) { return 1; }",
        "long calls = 41;\n__attribute__((noinline, noipa)) int value(void) { return ++calls > 41 ? 2 : 0; }",
    )]);
    assert_eq!(e["event"], "patched", "{e}");
    assert_eq!(e["added_variables"], serde_json::json!(["calls"]), "{e}");
    s.target.wait_for("v 2");
    // A function-local one by its function, not GCC's number (`hits.0`).
    let e = s.save_with(&[(
        "return ++calls > 41 ? 2 : 0;",
        "static int hits; hits++; return ++calls > 41 ? 3 + 0 * hits : 0;",
    )]);
    assert_eq!(e["added_variables"], serde_json::json!(["hits (used by value)"]), "{e}");
    s.target.wait_for("v 3");
}

/// The same with the callee in another file than its running caller:
/// the second save compiles the callee's file alone, whose object has no
/// caller of it, and it was patched (a re-check on Lua: `luaT_getvarargs`
/// in ltm.c, called from the running `luaV_execute` in lvm.c, read its
/// new parameter from a register the old caller never set). The running
/// code's own calls are read now.
#[test]
fn a_signature_change_in_steps_is_refused_under_a_running_caller_in_another_file() {
    let files: [(&str, &str); 2] = [
        ("lib.c", "__attribute__((noinline)) int len(int x) { return x * 7; }\n"),
        (
            "app.c",
            "#include <stdio.h>\n#include <unistd.h>\nvolatile int seed = 3;\nint len(int x);\n__attribute__((noinline)) void run(void) { for (;;) { printf(\"r %d\\n\", len(seed)); usleep(3000); } }\nint main(void) { setvbuf(stdout, NULL, _IOLBF, 0); run(); }\n",
        ),
    ];
    let (target, events) = run_files(&files, &["-O2", "-g"]);
    target.wait_for("r 21");
    let p = target.dir.path().to_path_buf();
    let lib = files[0]
        .1
        .replace("int len(int x) {", "int len(int x, int bonus) { (void)bonus;");
    std::fs::write(p.join("lib.c"), &lib).unwrap();
    std::fs::write(
        p.join("app.c"),
        files[1]
            .1
            .replace("int len(int x);", "int len(int x, int bonus);")
            .replace("len(seed)", "len(seed, 100)"),
    )
    .unwrap();
    let e = next_change_for(&events, "/app.c");
    // `run`'s new code, which `main` calls once: it cannot run.
    assert_eq!(e["event"], "unreachable", "{e}");
    assert_eq!(e["unreachable"], serde_json::json!(["run"]), "{e}");
    std::thread::sleep(std::time::Duration::from_millis(300));
    std::fs::write(
        p.join("lib.c"),
        lib.replace("(void)bonus; return x * 7;", "return x * 7 + bonus;"),
    )
    .unwrap();
    let e = next_change_for(&events, "/lib.c");
    refused_saying(
        &e,
        "the signature of len changes, and its caller run is running on thread",
    );
    target.prints_only(&["r 21"], 20);
}

/// The programs of the signature tests: lib.c's `f(void)`, and app.c's
/// `step`, which calls it (`f 1`).
const LIB_F: &str = "__attribute__((noinline)) int f(void) { return 1; }\n";
const SIGNATURE_FILES: [(&str, &str); 2] = [
    ("lib.c", LIB_F),
    (
        "app.c",
        "#include <stdio.h>\n#include <unistd.h>\nint f(void);\n__attribute__((noinline)) void step(void) { printf(\"f %d\\n\", f()); }\nint main(void) { setvbuf(stdout, NULL, _IOLBF, 0); for (;;) { step(); usleep(3000); } }\n",
    ),
];

/// lib.c with `f` given a parameter it does not use: the same code.
fn lib_f_unused_parameter() -> String {
    LIB_F.replace("f(void) {", "f(int x) { (void)x;")
}

/// lib.c with `f`'s parameter used (`f 5007` for app.c's new call).
fn lib_f_using_parameter() -> String {
    LIB_F.replace("f(void) { return 1; }", "f(int x) { return x + 5000; }")
}

/// app.c calling `f(7)` by the new prototype.
fn caller_of_f_the_new_way() -> String {
    SIGNATURE_FILES[1]
        .1
        .replace("int f(void);", "int f(int x);")
        .replace("f())", "f(7))")
}

/// A parameter added in one save, unused (the code the same: nothing to
/// patch), then used in the next, while the caller in another file is not
/// saved and calls it the old way: refused, every file watched, naming
/// the caller's file. It was patched, and the new code read the garbage
/// the unchanged caller left in the register (a libuv trial:
/// `uv_version_string(int x)`). Saved with its caller, it goes in.
#[test]
fn a_parameter_added_unused_then_used_is_refused_while_a_caller_calls_it_the_old_way() {
    let files = SIGNATURE_FILES;
    // Every file watched, then lib.c alone (`--watch`), where the
    // callers cannot be known.
    for (watched, said) in [
        (None, "app.c still calls it the old way"),
        (Some("lib.c"), "relive watches only the files you named"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let exe = build_files(dir.path(), &files, &["-O2", "-g"]);
        let options: Vec<String> = match watched {
            Some(file) => vec!["--watch".into(), dir.path().join(file).display().to_string()],
            None => Vec::new(),
        };
        let options: Vec<&str> = options.iter().map(String::as_str).collect();
        let relive = Path::new(env!("CARGO_BIN_EXE_relive"));
        let (target, events) = relive_testkit::relive_run(relive, &options, exe, &[], dir);
        target.wait_for("f 1");
        let p = target.dir.path().to_path_buf();
        // Patched once first: then what runs is that patch's compile (a
        // libuv re-check: a patched function's signature went unchecked).
        std::fs::write(p.join("lib.c"), files[0].1.replace("return 1;", "return 2;")).unwrap();
        let e = next_change_for(&events, "/lib.c");
        assert_eq!(e["event"], "patched", "{watched:?}: {e}");
        target.wait_for("f 2");
        std::thread::sleep(std::time::Duration::from_millis(300));
        std::fs::write(
            p.join("lib.c"),
            files[0]
                .1
                .replace("f(void) { return 1;", "f(int x) { (void)x; return 2;"),
        )
        .unwrap();
        let e = next_event_for(&events, "/lib.c");
        assert_eq!(e["event"], "no_change", "{watched:?}: {e}");
        // Said: no code changed, but a signature did, and what becomes of
        // an edit of its code.
        let notes = e["notes"].to_string();
        assert!(
            notes.contains("the signature of a global function changed (f: int() -> int(int x)), though no code did"),
            "{e}"
        );
        let then = match watched {
            Some(_) => "an edit of its code is refused, as relive watches only the files you named",
            None => "an edit of its code waits until the files that call it call it the new way",
        };
        assert!(notes.contains(then), "{e}");
        std::thread::sleep(std::time::Duration::from_millis(300));
        let used = lib_f_using_parameter();
        std::fs::write(p.join("lib.c"), &used).unwrap();
        let e = next_change_for(&events, "/lib.c");
        // Every file watched, held for the caller's save; else refused.
        let kind = if watched.is_some() { "refused" } else { "held" };
        assert_eq!(e["event"], kind, "{e}");
        assert!(e["message"].as_str().is_some_and(|m| m.contains(said)), "{e}");
        target.prints_only(&["f 2"], 20);
        if watched.is_some() {
            continue;
        }
        // Saved with the caller: one step.
        std::thread::sleep(std::time::Duration::from_millis(300));
        std::fs::write(p.join("app.c"), caller_of_f_the_new_way()).unwrap();
        std::fs::write(p.join("lib.c"), &used).unwrap();
        target.wait_for("f 5007");
    }
}

/// A patched function whose parameter is then renamed (no code change),
/// and then edited, is patched: a renamed parameter changes no call (its
/// patch's signature is compared as a call sees it, not as shown).
#[test]
fn a_renamed_parameter_of_a_patched_function_is_no_signature_change() {
    let files: [(&str, &str); 2] = [
        ("lib.c", "__attribute__((noinline)) int f(int a) { return a + 1; }\n"),
        (
            "app.c",
            "#include <stdio.h>\n#include <unistd.h>\nint f(int a);\n__attribute__((noinline)) void step(void) { printf(\"f %d\\n\", f(10)); }\nint main(void) { setvbuf(stdout, NULL, _IOLBF, 0); for (;;) { step(); usleep(3000); } }\n",
        ),
    ];
    // lib.c alone watched: there any signature change is refused.
    let dir = tempfile::tempdir().unwrap();
    let exe = build_files(dir.path(), &files, &["-O2", "-g"]);
    let lib = dir.path().join("lib.c").display().to_string();
    let relive = Path::new(env!("CARGO_BIN_EXE_relive"));
    let (target, events) = relive_testkit::relive_run(relive, &["--watch", &lib], exe, &[], dir);
    target.wait_for("f 11");
    let p = target.dir.path().to_path_buf();
    let steps = [
        ("int f(int a) { return a + 2; }", Some("patched"), "f 12"),
        ("int f(int b) { return b + 2; }", None, "f 12"),
        ("int f(int b) { return b + 3; }", Some("patched"), "f 13"),
    ];
    for (text, kind, line) in steps {
        std::thread::sleep(std::time::Duration::from_millis(300));
        std::fs::write(
            p.join("lib.c"),
            files[0].1.replace("int f(int a) { return a + 1; }", text),
        )
        .unwrap();
        let e = next_event_for(&events, "/lib.c");
        match kind {
            Some(kind) => assert_eq!(e["event"], kind, "{e}"),
            None => assert_eq!(e["event"], "no_change", "{e}"),
        }
        target.wait_for(line);
    }
}

/// A caller built with `-fno-plt` (a call through the GOT) calls the
/// function, and does not take its address: the change is held for its
/// save, not refused for good.
#[test]
fn a_caller_built_with_no_plt_calls_the_function() {
    let (target, events) = run_files(&SIGNATURE_FILES, &["-O2", "-g", "-fno-plt"]);
    target.wait_for("f 1");
    let p = target.dir.path().to_path_buf();
    std::fs::write(p.join("lib.c"), lib_f_unused_parameter()).unwrap();
    let e = next_event_for(&events, "/lib.c");
    assert_eq!(e["event"], "no_change", "{e}");
    std::thread::sleep(std::time::Duration::from_millis(300));
    std::fs::write(p.join("lib.c"), lib_f_using_parameter()).unwrap();
    let e = next_change_for(&events, "/lib.c");
    assert_eq!(e["event"], "held", "{e}");
    let message = e["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("app.c still calls it the old way") && !message.contains("address"),
        "{e}"
    );
    target.prints_only(&["f 1"], 20);
}

/// A signature changed with no code, then put back as the program runs
/// it: the second save says nothing of a signature (it said the change
/// "waits" for callers that had nothing to do: a libxz re-check).
#[test]
fn a_signature_put_back_as_the_program_runs_it_is_no_change() {
    let (target, events) = run_files(&SIGNATURE_FILES, &["-O2", "-g"]);
    target.wait_for("f 1");
    let p = target.dir.path().to_path_buf();
    std::fs::write(p.join("lib.c"), lib_f_unused_parameter()).unwrap();
    let e = next_event_for(&events, "/lib.c");
    assert!(
        e["notes"]
            .to_string()
            .contains("the signature of a global function changed"),
        "{e}"
    );
    std::thread::sleep(std::time::Duration::from_millis(300));
    std::fs::write(p.join("lib.c"), LIB_F).unwrap();
    let e = next_event_for(&events, "/lib.c");
    assert_eq!(e["event"], "no_change", "{e}");
    assert!(!e["notes"].to_string().contains("signature"), "{e}");
}

/// The same with a caller that takes the function's address: calls
/// through the pointer cannot be followed by any save, so it is refused
/// with a restart as the way (not held for a save that cannot help).
#[test]
fn a_parameter_added_to_a_function_whose_address_is_taken_is_refused() {
    let files: [(&str, &str); 2] = [
        ("lib.c", LIB_F),
        (
            "app.c",
            "#include <stdio.h>\n#include <unistd.h>\nint f(void);\nint (*volatile fp)(void) = f;\nint main(void) { setvbuf(stdout, NULL, _IOLBF, 0); for (;;) { printf(\"f %d\\n\", fp()); usleep(3000); } }\n",
        ),
    ];
    let (target, events) = run_files(&files, &["-O2", "-g"]);
    target.wait_for("f 1");
    let p = target.dir.path().to_path_buf();
    std::fs::write(p.join("lib.c"), lib_f_unused_parameter()).unwrap();
    let e = next_event_for(&events, "/lib.c");
    assert_eq!(e["event"], "no_change", "{e}");
    std::thread::sleep(std::time::Duration::from_millis(300));
    std::fs::write(p.join("lib.c"), lib_f_using_parameter()).unwrap();
    let e = next_change_for(&events, "/lib.c");
    refused_saying(&e, "app.c takes its address");
    assert!(
        e["message"].as_str().is_some_and(|m| m.contains("restart the program")),
        "{e}"
    );
    target.prints_only(&["f 1"], 20);
}

/// A signature change patched with its caller in one step, then
/// reverted by another command (`revert --all`): the caller's file saved
/// alone is not patched again to call the reverted function the new way
/// (a libxz trial: `lzma_index_hash_init` went in alone and called the
/// build's `lzma_check_init` with its arguments swapped).
#[test]
fn a_caller_saved_alone_after_its_callees_revert_is_held() {
    let files: [(&str, &str); 3] = [
        ("lib.c", "__attribute__((noinline)) int f(void) { return 1; }\n"),
        ("other.c", "int f(void);\n__attribute__((noinline)) int g(void) { return f() * 10; }\n"),
        (
            "app.c",
            "#include <stdio.h>\n#include <unistd.h>\nint f(void);\nint g(void);\n__attribute__((noinline)) void step(void) { printf(\"f %d g %d\\n\", f(), g()); }\nint main(void) { setvbuf(stdout, NULL, _IOLBF, 0); for (;;) { step(); usleep(3000); } }\n",
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    let exe = build_files(dir.path(), &files, &["-O2", "-g"]);
    let relive = Path::new(env!("CARGO_BIN_EXE_relive"));
    let (target, events) = relive_testkit::relive_run_every_event(relive, &[], exe, &[], dir);
    target.wait_for("f 1 g 10");
    let p = target.dir.path().to_path_buf();
    let callee = lib_f_using_parameter();
    let other = files[1]
        .1
        .replace("int f(void);", "int f(int x);")
        .replace("f() * 10", "f(3) * 10");
    let caller = files[2]
        .1
        .replace("int f(void);", "int f(int x);")
        .replace("f(), g()", "f(7), g()");
    std::fs::write(p.join("app.c"), &caller).unwrap();
    std::fs::write(p.join("other.c"), &other).unwrap();
    std::fs::write(p.join("lib.c"), &callee).unwrap();
    target.wait_for("f 5007 g 50030");
    events_of_each(&events, "patched");
    revert_child(&target, "--all");
    target.wait_for("f 1 g 10");
    // relive says what the revert changed, file by file.
    events_of_each(&events, "changed_elsewhere");
    // The callee's file alone waits for its callers (they run the build's
    // code again) ...
    std::fs::write(p.join("lib.c"), &callee).unwrap();
    let e = next_change_for(&events, "/lib.c");
    assert_eq!(e["event"], "held", "{e}");
    // Said as what it was: a revert (the program runs its own code there).
    let message = e["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("was reverted by another relive command") && !message.contains("reverted or patched"),
        "{e}"
    );
    // ... and so does a caller's file saved alone next, with which the
    // held callee's file is tried again and held again: it went in, its
    // new code calling the build's `f(void)` with an argument.
    std::thread::sleep(std::time::Duration::from_millis(300));
    std::fs::write(p.join("app.c"), &caller).unwrap();
    let e = next_change_for(&events, "/app.c");
    assert_eq!(e["event"], "held", "{e}");
    target.prints_only(&["f 1 g 10"], 20);
    // All three saved together: one step.
    std::thread::sleep(std::time::Duration::from_millis(300));
    for (file, text) in [("other.c", &other), ("app.c", &caller), ("lib.c", &callee)] {
        std::fs::write(p.join(file), text).unwrap();
    }
    target.wait_for("f 5007 g 50030");
}

/// A signature change saved with its caller's file, which does not
/// compile, says so, rather than to save the caller (a libxz trial was
/// told to save the four callers it had saved, one of them broken); fixed,
/// both go in in one step.
#[test]
fn a_signature_change_whose_callers_file_does_not_compile_says_so() {
    let (target, events) = run_files(&SIGNATURE_FILES, &["-O2", "-g"]);
    target.wait_for("f 1");
    let p = target.dir.path().to_path_buf();
    let caller = caller_of_f_the_new_way();
    std::fs::write(p.join("app.c"), caller.replace("usleep(3000);", "usleep(3000)")).unwrap();
    std::fs::write(p.join("lib.c"), lib_f_using_parameter()).unwrap();
    let e = next_change_for(&events, "/lib.c");
    assert_eq!(e["event"], "held", "{e}");
    let message = e["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("app.c (compiled with it, calling f) does not compile"),
        "{message}"
    );
    // The way in first, a restart the other way (it said "so restart the
    // program; ... fix it and save": a libxz re-check).
    assert!(
        !message.contains("so restart the program") && message.contains("patched in one step; or restart the program"),
        "{message}"
    );
    target.prints_only(&["f 1"], 20);
    std::thread::sleep(std::time::Duration::from_millis(300));
    std::fs::write(p.join("app.c"), &caller).unwrap();
    target.wait_for("f 5007");
}

/// An event `kind` for each of lib.c, other.c and app.c, in any order.
fn events_of_each(events: &Receiver<Value>, kind: &str) {
    let mut seen = std::collections::BTreeSet::new();
    while seen.len() < 3 {
        let e = events
            .recv_timeout(PATIENCE)
            .unwrap_or_else(|_| panic!("an event {kind} for each file: {seen:?}"));
        if e["event"] == "no_change" {
            continue;
        }
        assert_eq!(e["event"], kind, "{e}");
        seen.insert(e["file"].as_str().unwrap_or_default().to_string());
    }
}

/// Two parameters of one type swapped, with the call (`calc(int a, int
/// b)` made `calc(int b, int a)`): the same types, so it was no
/// signature change, and `main`'s running call passed `(seed, seed * 30)`
/// to the new code, which took them the other way (627 where a fresh
/// build prints -69, as a re-check found). The parameters' names count
/// now.
#[test]
fn swapped_parameters_of_one_type_are_a_signature_change() {
    const APP: &str = r#"#include <stdio.h>
#include <unistd.h>
static volatile int seed = 3;
__attribute__((noinline)) static int calc(int a, int b) { return a * 7 - b; }
int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (;;) { printf("r %d\n", calc(seed, seed * 30)); usleep(3000); }
}
"#;
    let mut s = Session::start(APP, &["-O2", "-g"]);
    s.target.wait_for("r -69");
    let e = s.save_with(&[
        ("static int calc(int a, int b)", "static int calc(int b, int a)"),
        ("calc(seed, seed * 30)", "calc(seed * 30, seed)"),
    ]);
    refused_saying(&e, "the signature of calc changes, and its caller main is running");
    s.target.prints_only(&["r -69"], 20);
}

/// Parameters' names moved in a definition alone (FreeType's `FT_MulDiv(a_,
/// b_, c_)` defined as `(a_, c_, b_)`), the prototype and the callers as
/// they were: the same call, so the callers compile as they did and a
/// fresh build computes with them what the patched program does. It is
/// patched, with `main`'s call running (it never returns): the global
/// one in its own file, the `static` one beside its caller. The global
/// one was held until every file that calls it was saved again (each
/// then compiled as it was), and the static one refused while `main`
/// ran.
#[test]
fn parameters_names_moved_in_a_definition_alone_are_patched() {
    let lib = "long muldiv(long a, long b, long c) { return a * b / c; }\n";
    let main_c = "#include <stdio.h>\n#include <unistd.h>\nlong muldiv(long a, long b, long c);\nstatic volatile long seed = 3;\n__attribute__((noinline)) static long calc(long a, long b) { return a * 7 - b; }\nint main(void) { setvbuf(stdout, NULL, _IOLBF, 0); for (;;) { printf(\"m %ld c %ld\\n\", muldiv(seed * 10, seed * 4, seed), calc(seed, seed * 30)); usleep(3000); } }\n";
    let (target, events) = run_files(&[("main.c", main_c), ("lib.c", lib)], &["-O2", "-g"]);
    target.wait_for("m 120 c -69");
    std::fs::write(
        target.dir.path().join("lib.c"),
        lib.replace("muldiv(long a, long b, long c)", "muldiv(long a, long c, long b)"),
    )
    .unwrap();
    let e = events.recv_timeout(PATIENCE).expect("lib.c's event");
    assert_eq!(e["event"], "patched", "{e}");
    // 30 * 3 / 12, as a fresh build computes: a * b / c with b = 3, c = 12.
    target.wait_for("m 7 c -69");
    std::fs::write(
        target.dir.path().join("main.c"),
        main_c.replace("calc(long a, long b)", "calc(long b, long a)"),
    )
    .unwrap();
    let e = events.recv_timeout(PATIENCE).expect("main.c's event");
    assert_eq!(e["event"], "patched", "{e}");
    // 9 * 7 - 3, main's call as it was.
    target.wait_for("m 7 c 627");
}

/// A caller patched before (a worker's loop, whose running call stays in
/// its original code for good) still counts as running: a later signature
/// change of what it calls was patched, as only unpatched callers were
/// looked for, and the worker's running call passed two arguments to a
/// function taking three (a re-check).
#[test]
fn a_caller_patched_before_still_counts_as_running() {
    const WORKER: &str = r#"#include <pthread.h>
#include <stdio.h>
#include <unistd.h>
static volatile int seed = 3;
__attribute__((noinline)) static int f_thr(int a, int b) { return a * 7 - b; }
static void *worker(void *arg) {
    for (;;) { printf("t %d\n", f_thr(seed, seed * 30)); usleep(3000); }
    return arg;
}
"#;
    let app = format!("{WORKER}{}", common::WORKER_MAIN);
    let mut s = Session::start(&app, &["-O2", "-g", "-pthread"]);
    s.target.wait_for("t -69");
    let e = s.save_with(&[(
        "for (;;) { printf",
        "for (;;) { if (seed == 12345) puts(\"never\"); printf",
    )]);
    assert_eq!(e["functions"], serde_json::json!(["worker"]), "{e}");
    let e = s.save_with(&[
        (
            "static int f_thr(int a, int b) { return a * 7 - b; }",
            "static int f_thr(int a, int b, int c) { return a * 7 - b + c; }",
        ),
        ("f_thr(seed, seed * 30)", "f_thr(seed, seed * 30, seed * 1000)"),
    ]);
    refused_saying(&e, "the signature of f_thr changes, and its caller worker is running");
    s.target.prints_only(&["t -69"], 20);
}

/// GCC names its clone of `calc(x, y, z)` that drops the constant `z`
/// (here: the unused one) `calc.constprop.0` in every compile, but which
/// parameters it keeps depends on the body: `return x * 100 + y` keeps
/// `(x, y)`, `return x * 100 + z * 2` keeps `(x, z)`. The edit changed the
/// clone and its caller `main`, whose running call kept passing `y`: the
/// program printed 310, neither the old 305 nor a fresh build's 314,
/// while relive said "patched calc.constprop.0". Refused now; a body edit
/// that leaves the callers alone is patched.
#[test]
fn a_clone_changed_with_its_running_caller_is_refused() {
    const APP: &str = r#"#include <stdio.h>
#include <unistd.h>
static volatile int s1 = 3, s2 = 5, s3 = 7;
__attribute__((noinline)) static int calc(int x, int y, int z) { return x * 100 + y; }
int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (;;) { printf("r %d\n", calc(s1, s2, s3)); usleep(3000); }
}
"#;
    let mut s = Session::start(APP, &["-O2", "-g"]);
    s.target.wait_for("r 305");
    s.edit("return x * 100 + y;", "return x * 100 + z * 2;");
    let e = s.event();
    refused_saying(&e, "calc.constprop.0 is GCC's copy of calc with parameters GCC chose for this compile, and it changed with its caller main, which is running on thread");
    s.target.prints_only(&["r 305"], 20);
    // The clone and main changed again, the clone keeping its parameters
    // (its DWARF says so): patched, and main's running call computes what
    // it did with the new clone.
    let e = s.save_with(&[
        ("return x * 100 + z * 2;", "return x * 100 + y + 1;"),
        ("printf(\"r %d\\n\"", "printf(\"r %d \\n\""),
    ]);
    assert!(
        e["event"] != "refused" && e["functions"].to_string().contains("calc.constprop.0"),
        "{e}"
    );
    s.target.wait_for("r 306");
    // The clone's body alone: its callers are as they were, so are its
    // parameters.
    s.edit("return x * 100 + y + 1;", "return x * 100 + y * 3;");
    let e = s.event();
    assert_eq!(e["event"], "patched", "{e}");
    s.target.wait_for("r 315");
}

/// The same with a function edited in the same save: the patch is said
/// and so is the initial value it leaves (it said only "patched value",
/// and the program ran on with the old value unsaid).
#[test]
fn an_initial_value_edited_with_a_function_is_said_too() {
    let mut s = Session::start(APP, &["-O2", "-g"]);
    s.target.wait_for_prefix("value 1 ");
    let e = s.save_with(&[
        ("long counter = 0;", "long counter = 1000000;"),
        ("return 1;", "return 2;"),
    ]);
    assert_eq!(e["event"], "patched", "{e}");
    assert_eq!(e["functions"], serde_json::json!(["value"]), "{e}");
    assert!(
        e["notes"].to_string().contains("the initial value of counter changed"),
        "{e}"
    );
    let counted: i64 = s.target.wait_for_prefix("value 2 counter ").parse().unwrap();
    assert!(counted < 1000000, "{counted}");
}

/// A `static const` table given one more entry: its readers are patched
/// with the new copy, as for new contents of the same size. It was refused
/// as a change of the program's state layout (a user's trial on zstd).
#[test]
fn a_constant_table_that_grows_patches_its_readers() {
    const TABLE: &str = r#"
#include <stdio.h>
#include <unistd.h>
static const int levels[] = {1, 3, 5};
__attribute__((noinline, noipa)) int pick(unsigned k) { return levels[k % (sizeof levels / sizeof levels[0])]; }
int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (unsigned k = 0;; k++) { printf("pick %d\n", pick(k)); usleep(1000); }
}
"#;
    let mut s = Session::start(TABLE, &["-O2", "-g"]);
    s.target.wait_for_prefix("pick 5");
    s.edit("{1, 3, 5}", "{1, 3, 5, 9}");
    let e = s.event();
    assert_eq!(e["event"], "patched", "{e}");
    assert!(e["notes"].to_string().contains("the contents of levels changed"), "{e}");
    s.target.wait_for_prefix("pick 9");
    // Put back: the program's own `pick` reads its own table again, which
    // the note says (it said the new code read a new copy: a zlib trial).
    s.edit("{1, 3, 5, 9}", "{1, 3, 5}");
    let e = s.event();
    assert_eq!(e["event"], "reverted", "{e}");
    let notes = e["notes"].to_string();
    assert!(
        notes.contains("the contents of levels are back as the program was built"),
        "{e}"
    );
    assert!(!notes.contains("reads the new copy"), "{e}");
    // The old table's cycle again (5 then 1; lines printed before the
    // take-back may still be read first), and nothing but its entries.
    let mut last = String::new();
    loop {
        let now = s.target.wait_for_prefix("pick ");
        if last == "5" && now == "1" {
            break;
        }
        last = now;
    }
    for _ in 0..20 {
        let picked = s.target.wait_for_prefix("pick ");
        assert!(["1", "3", "5"].contains(&picked.as_str()), "{picked}");
    }
}

/// A table put back in a save that patches another function: its reader
/// goes back to the program's own code, which reads its own table again,
/// and the note says so. It said the reader's "new code" read a new copy
/// (an expat trial: `getEncodingIndex.part.0` was said to be back, then to
/// read the new `encodingNames`).
#[test]
fn a_table_put_back_beside_another_edit_is_said_to_be_back() {
    const TABLE: &str = r#"#include <stdio.h>
#include <unistd.h>
static const int levels[] = {1, 3, 5};
__attribute__((noinline, noipa)) int pick(unsigned k) { return levels[k % 3]; }
__attribute__((noinline, noipa)) int other(void) { return 10; }
int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (unsigned k = 0;; k++) { printf("pick %d other %d\n", pick(k), other()); usleep(1000); }
}
"#;
    let mut s = Session::start(TABLE, &["-O2", "-g"]);
    s.target.wait_for("pick 5 other 10");
    s.edit("{1, 3, 5}", "{1, 3, 7}");
    let e = s.event();
    assert_eq!(e["event"], "patched", "{e}");
    s.target.wait_for("pick 7 other 10");
    let e = s.save_with(&[("{1, 3, 7}", "{1, 3, 5}"), ("return 10;", "return 11;")]);
    assert_eq!(e["reverted"], serde_json::json!(["pick"]), "{e}");
    assert_eq!(e["functions"], serde_json::json!(["other"]), "{e}");
    let notes = e["notes"].to_string();
    assert!(
        notes.contains("the contents of levels are back as the program was built"),
        "{e}"
    );
    assert!(!notes.contains("reads the new copy"), "{e}");
    s.target.wait_for("pick 5 other 11");
}

/// A function the program has only inlined (`helper`), added by a patch
/// and patched again, whose next save gives it its first patch's code
/// again: patched, not said to be "back to the program's own code" (the
/// program has none of it; an expat trial's `checkCharRefNumber`). The
/// program prints what a fresh build prints at each step.
#[test]
fn an_added_function_given_its_first_code_again_is_not_said_to_be_the_programs_own() {
    const APP: &str = r#"#include <stdio.h>
#include <unistd.h>
static const int table[3] = {1, 2, 3};
static int helper(int k) { return table[k % 3] * 2; }
__attribute__((noipa)) int caller(int k) { return helper(k); }
int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (;;) { printf("c %d\n", caller(2)); usleep(1000); }
}
"#;
    let mut s = Session::start(APP, &["-O2", "-g"]);
    s.target.wait_for("c 6");
    let e = s.save_with(&[(
        "static int helper(int k) { return table[k % 3] * 2; }",
        "static __attribute__((noinline)) int helper(int k) { return table[k % 3] * 2 + 1; }",
    )]);
    assert_eq!(e["event"], "patched", "{e}");
    assert!(e["added"].to_string().contains("helper"), "{e}");
    s.target.wait_for("c 7");
    let e = s.save_with(&[("{1, 2, 3}", "{1, 2, 5}")]);
    assert_eq!(e["event"], "patched", "{e}");
    s.target.wait_for("c 11");
    let e = s.save_with(&[("{1, 2, 5}", "{1, 2, 3}")]);
    assert_eq!(e["event"], "patched", "{e}");
    assert!(e["functions"].to_string().contains("helper"), "{e}");
    assert!(!e["reverted"].to_string().contains("helper"), "{e}");
    assert!(!e["as_built"].to_string().contains("helper"), "{e}");
    s.target.wait_for("c 7");
}

/// A save that puts a table back, whose readers another command's
/// revert had put back already, says nothing of the table: the program
/// read its own copy before the save (a SQLite trial: "the contents of
/// sqlite3UpperToLower are back as the program was built", said of a
/// save that only took back another function's one-shot patch).
#[test]
fn a_table_a_revert_already_put_back_is_not_said_again() {
    const TABLE: &str = r#"
#include <stdio.h>
#include <unistd.h>
static const int levels[] = {1, 3, 5};
__attribute__((noinline, noipa)) int pick(unsigned k) { return levels[k % 3]; }
__attribute__((noinline, noipa)) int other(void) { return 100; }
int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (unsigned k = 0;; k++) { printf("pick %d %d\n", pick(k), other()); usleep(1000); }
}
"#;
    let mut s = Session::start_seeing_every_event(TABLE, &["-O2", "-g"]);
    s.target.wait_for("pick 5 100");
    let e = s.patched_by("{1, 3, 5}", "{1, 3, 7}");
    assert!(e["notes"].to_string().contains("the contents of levels changed"), "{e}");
    s.target.wait_for("pick 7 100");
    s.beside(&["revert", "--all"]);
    s.target.wait_for("pick 5 100");
    let e = s.event();
    assert_eq!(e["event"], "changed_elsewhere", "{e}");
    // The table put back in the file with an edit of `other`: `pick`
    // already runs as the file has it.
    let e = s.save_with(&[("{1, 3, 7}", "{1, 3, 5}"), ("return 100;", "return 200;")]);
    assert_eq!(e["event"], "patched", "{e}");
    assert_eq!(e["functions"], serde_json::json!(["other"]), "{e}");
    assert!(!e["notes"].to_string().contains("the contents of levels"), "{e}");
    s.target.wait_for("pick 5 200");
}

/// A computed goto's table of its function's own labels (Lua's
/// `disptab`) changes with every edit that moves the labels: it goes with
/// the function, and no note says the program keeps values taken from it
/// (every reload of Lua's `luaV_execute` said so).
#[test]
fn a_table_of_a_functions_own_labels_is_no_constant_to_warn_of() {
    const GOTO: &str = r#"
#include <stdio.h>
#include <unistd.h>
__attribute__((noinline)) int run(const unsigned char *code) {
    static const void *const table[] = {&&op_add, &&op_mul, &&op_end};
    int acc = 1;
    goto *table[*code];
op_add: acc += 2; code++; goto *table[*code];
op_mul: acc *= 3; code++; goto *table[*code];
op_end: return acc;
}
int main(void) {
    static const unsigned char prog[] = {0, 1, 0, 2, 0, 9};
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (;;) { printf("acc %d\n", run(prog)); usleep(3000); }
}
"#;
    let mut s = Session::start(GOTO, &["-O2", "-g"]);
    s.target.wait_for("acc 11");
    // Code before the labels moves them.
    s.edit(
        "    int acc = 1;\n",
        "    int acc = 1;\n    if (code[1] == 7 || code[2] == 9 || code[3] == 11 || code[5] == 9) return -1;\n",
    );
    let e = s.event();
    assert_eq!(e["event"], "patched", "{e}");
    assert!(!e["notes"].to_string().contains("the contents of"), "{e}");
    s.target.wait_for("acc -1");
}

/// Where the variable `name` starts in the object gcc makes of `source`
/// with `flags` (by `nm`), to see how the compiler laid out a file's
/// statics.
fn laid_out_at(source: &str, flags: &[&str], name: &str) -> Option<u64> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("t.c"), source).unwrap();
    let built = Command::new("gcc")
        .args(flags)
        .args(["-c", "t.c", "-o", "t.o"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(built.status.success(), "{}", String::from_utf8_lossy(&built.stderr));
    let nm = Command::new("nm").arg(dir.path().join("t.o")).output().unwrap();
    String::from_utf8_lossy(&nm.stdout)
        .lines()
        .find(|l| l.ends_with(&format!(" {name}")))
        .and_then(|l| u64::from_str_radix(l.split(' ').next()?, 16).ok())
}

/// A pointer one past the end of an array, where an edit adds a variable
/// the compiler lays right after that array (or adds the array, right
/// before a variable the program has). Built without `-fdata-sections`
/// both are `.data + N` in the object, and relive took the place for the
/// next variable's start: the loop to the first one's end ran into the
/// patch's memory (a user's trial on bzip2: a crash, or a wrong sum, with
/// "patched" said). relive's compiles give each variable its own section,
/// so the patched program computes what a fresh build of the edit does.
#[test]
fn an_array_end_beside_a_variable_an_edit_adds_is_the_arrays_end() {
    const OLD: &str = r#"
#include <stdio.h>
#include <unistd.h>
static int after[4] = {100, 200, 300, 400};
volatile int hold;
__attribute__((noinline, noipa)) long report(void) { return after[hold & 3] * 0 - 1; }
int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (;;) { printf("r=%ld\n", report()); usleep(3000); }
}
"#;
    const WALK: &str =
        "for (int *volatile const *b = bounds; ; ) { int *p = b[0], *e = b[1]; while (p != e) w += *p++; break; }";
    const REPORT: &str = "__attribute__((noinline, noipa)) long report(void) { return after[hold & 3] * 0 - 1; }";
    // The program's `after` and its end, with a new `extra` laid after it.
    let end_of_theirs = (
        "static int after[4] = {100, 200, 300, 400};",
        "static int extra[3] = {7, 8, 9};\nstatic int after[4] = {100, 200, 300, 400};",
        format!(
            "static int *const bounds[2] = {{ after, after + 4 }};\n\
             __attribute__((noinline, noipa)) long report(void) {{ extra[hold % 3] += 1; long w = 0; {WALK} return w; }}"
        ),
        ("after", 16, "extra"),
        "1000",
    );
    // A new `ring` and its end, laid right before the program's `after`.
    let end_of_ours = (
        "static int after[4] = {100, 200, 300, 400};",
        "static int after[4] = {100, 200, 300, 400};\nstatic int ring[4] = {1, 2, 3, 4};",
        format!(
            "static int *const bounds[2] = {{ ring, ring + 4 }};\n\
             __attribute__((noinline, noipa)) long report(void) {{ after[hold & 3] += 1; long w = 0; {WALK} return w; }}"
        ),
        ("ring", 16, "after"),
        "10",
    );
    for (from, to, report, (first, size, next), sum) in [end_of_theirs, end_of_ours] {
        let edited = OLD.replace(from, to).replace(REPORT, &report);
        // Only where the compiler lays the two side by side in one section
        // (the ambiguity this is about).
        let shared = ["-O2", "-g"];
        if laid_out_at(&edited, &shared, next) != laid_out_at(&edited, &shared, first).map(|a| a + size) {
            eprintln!("SKIPPED: this gcc does not lay {next} right after {first}");
            continue;
        }
        let mut s = Session::start(OLD, &shared);
        s.target.wait_for("r=-1");
        s.text = edited;
        std::fs::write(&s.source, &s.text).unwrap();
        let e = s.event();
        assert_eq!(e["event"], "patched", "{e}");
        assert!(!e.to_string().contains("one past the end"), "{e}");
        s.target.wait_for(&format!("r={sum}"));
        for _ in 0..20 {
            assert_eq!(s.target.wait_for_prefix("r="), sum, "{next} after {first}");
        }
    }
}

/// The values of the program's next `n` lines starting with `prefix`.
fn next_values(s: &Session, prefix: &str, n: usize) -> Vec<i64> {
    (0..n)
        .map(|_| s.target.wait_for_prefix(prefix).parse().unwrap())
        .collect()
}

/// Whether each of `values` is the one before plus `step`.
fn steps_by(values: &[i64], step: i64) -> bool {
    values.windows(2).all(|w| w[1] == w[0] + step)
}

/// Reads `prefix`-lines until one whose value is not `old`'s: the first
/// line the patched code printed, and the next `n` values.
fn values_after(s: &Session, prefix: &str, old: impl Fn(i64) -> bool, n: usize) -> Vec<i64> {
    let mut first;
    loop {
        first = s.target.wait_for_prefix(prefix).parse::<i64>().unwrap();
        if !old(first) {
            break;
        }
    }
    std::iter::once(first)
        .chain((0..n).map(|_| s.target.wait_for_prefix(prefix).parse::<i64>().unwrap()))
        .collect()
}

/// A function-local static an edit adds, named as one another function
/// of the file has (`count`): GCC numbers them (`count.0`, `count.1`) in
/// an order the edit changed, and relive took the new one for the
/// program's `count.0`, the other function's, so both counted in one
/// variable while relive said "patched" (a user's trial: `report` went
/// 1005, 2006, ... where a fresh build prints 1000, 2000, ...).
#[test]
fn a_new_static_named_like_another_functions_is_its_own() {
    const COUNTERS: &str = r#"
#include <stdio.h>
#include <unistd.h>
static int setup(void) { return 1; }
__attribute__((noinline)) int tick(void) { static int count; count++; return count; }
__attribute__((noinline)) int report(void) { return setup(); }
int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (;;) { int t = tick(); printf("report %d\n", report()); printf("tick %d\n", t); usleep(2000); }
}
"#;
    let mut s = Session::start(COUNTERS, &["-O2", "-g"]);
    s.target.wait_for("report 1");
    let e = s.patched_by(
        "static int setup(void) { return 1; }",
        "static int setup(void) { static int count; count += 1000; return count; }",
    );
    // New in this edit, so starting from 0 is no news.
    assert!(!e.to_string().contains("starts over"), "{e}");
    // A fresh build's `report`: 1000, 2000, ...
    let reports = values_after(&s, "report ", |v| v == 1, 5);
    assert_eq!(reports, (1..=6).map(|k| k * 1000).collect::<Vec<_>>());
    // And `tick` counts by one, as before.
    let ticks = next_values(&s, "tick ", 5);
    assert!(steps_by(&ticks, 1), "{ticks:?}");
    // Notes name such a static as the source does, not as GCC numbers it.
    s.edit(
        "static int count; count += 1000;",
        "static int count = 5; count += 1000;",
    );
    let e = s.event();
    let notes = e["notes"].to_string();
    assert!(
        notes.contains("the initial value of count (used by setup) changed"),
        "{e}"
    );
}

/// Statics a patch added, then an edit that adds another of the same
/// name in another function, then one more edit: each keeps its own
/// value. GCC renumbers them between compiles (`n.0`, `n.1`), and relive
/// matched what patches added by those names: the second edit's `n`
/// counted in the first one's (`ver` printed 51005 where a fresh build
/// prints 50005), and the third edit started `ver`'s over from 0 (a
/// user's trial, on zlib too).
#[test]
fn statics_a_patch_added_keep_their_own_values_across_renumbering() {
    const TWO: &str = r#"
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
__attribute__((noinline)) int ver(void) { return 0; }
__attribute__((noinline)) void *alloc(unsigned k) { return malloc(k); }
int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (;;) { free(alloc(16)); printf("ver %d\n", ver()); usleep(2000); }
}
"#;
    let mut s = Session::start(TWO, &["-O2", "-g"]);
    s.target.wait_for("ver 0");
    s.patched_by(
        "int ver(void) { return 0; }",
        "int ver(void) { static int n; n++; return n; }",
    );
    let counted = values_after(&s, "ver ", |v| v == 0, 2);
    assert_eq!(counted[1], counted[0] + 1, "{counted:?}");
    s.edit("return n; }", "return n + 50000; }");
    s.edit(
        "void *alloc(unsigned k) { return malloc(k); }",
        "void *alloc(unsigned k) { static int n; n += 1000; return malloc(k + (n & 1)); }",
    );
    // (The two saves may be one patch or two.)
    while s.event()["event"] != "patched" {}
    let values = values_after(&s, "ver ", |v| v < 50000, 3);
    assert!(steps_by(&values, 1), "ver's own n counts by one: {values:?}");
    let before = *values.last().unwrap() - 50000;
    s.patched_by("return n + 50000; }", "return n + 100000; }");
    let values = values_after(&s, "ver ", |v| v < 100000, 3);
    assert!(
        values[0] - 100000 > before && steps_by(&values, 1),
        "ver's n goes on from {before}: {values:?}"
    );
}

/// A static a patch adds to one function, named as the program's static
/// of another function (`n`), then an edit of the first: found where the
/// patch put it, not taken for the program's (whose number GCC gave the
/// new one in the second compile).
#[test]
fn a_static_a_patch_added_is_not_the_programs_of_its_name() {
    const HAS_N: &str = r#"
#include <stdio.h>
#include <unistd.h>
__attribute__((noinline)) int ver(void) { return 0; }
__attribute__((noinline)) int alloc(void) { static int n; n += 1000; return n; }
int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (;;) { int a = alloc(); printf("ver %d\n", ver()); printf("alloc %d\n", a); usleep(2000); }
}
"#;
    let mut s = Session::start(HAS_N, &["-O2", "-g"]);
    s.target.wait_for("ver 0");
    s.patched_by(
        "int ver(void) { return 0; }",
        "int ver(void) { static int n; n++; return n; }",
    );
    let counted = values_after(&s, "ver ", |v| v == 0, 2);
    assert_eq!(counted[1], counted[0] + 1, "{counted:?}");
    s.patched_by(
        "return n; }\n__attribute__((noinline)) int alloc",
        "return n + 50000; }\n__attribute__((noinline)) int alloc",
    );
    let values = values_after(&s, "ver ", |v| v < 50000, 3);
    assert!(
        values[0] - 50000 > counted[2] && steps_by(&values, 1),
        "ver's own n goes on from {}: {values:?}",
        counted[2]
    );
    let allocs = next_values(&s, "alloc ", 3);
    assert!(steps_by(&allocs, 1000), "{allocs:?}");
}

/// An edit that replaces an inlined function having a static `n` by
/// another with its own `n`: the new one starts from its initial value.
/// Both were known by the function that referred to them, their caller
/// `ver` (the two are inlined into it), so the new `n` took the old one's
/// value while relive said "patched" (a user's trial on zstd: 17, 26, ...
/// where a fresh build prints 9, 18, ...). The debug information says the
/// function each is declared in.
#[test]
fn a_static_of_an_inlined_function_that_replaced_another_is_new() {
    const KICK: &str = r#"
#include <stdio.h>
#include <unistd.h>
static unsigned kick(void) { static unsigned n; n += 2; return n; }
__attribute__((noinline)) int ver(void) { return kick(); }
int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (;;) { printf("ver %d\n", ver()); usleep(2000); }
}
"#;
    let mut s = Session::start(KICK, &["-O2", "-g"]);
    s.target.wait_for("ver 4");
    s.patched_by(
        "static unsigned kick(void) { static unsigned n; n += 2; return n; }\n__attribute__((noinline)) int ver(void) { return kick(); }",
        "static unsigned tock(void) { static unsigned n; n += 9; return n; }\n__attribute__((noinline)) int ver(void) { return 1000 + tock(); }",
    );
    // A fresh build: 1009, 1018, ...
    let values = values_after(&s, "ver ", |v| v < 1000, 3);
    assert_eq!(values, vec![1009, 1018, 1027, 1036]);
}

/// The program's own statics of one name in two functions, renumbered by
/// an edit that adds a third, then an edit of one of the two: it keeps
/// counting in the program's variable.
#[test]
fn the_programs_statics_keep_their_values_after_a_renumbering_edit() {
    const TWO_COUNTS: &str = r#"
#include <stdio.h>
#include <unistd.h>
__attribute__((noinline)) int first(void) { return 7; }
__attribute__((noinline)) int ones(void) { static int count; count++; return count; }
__attribute__((noinline)) int thousands(void) { static int count; count += 1000; return count; }
int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (;;) { int o = ones(), t = thousands(); printf("first %d\n", first()); printf("ones %d\n", o); printf("thousands %d\n", t); usleep(2000); }
}
"#;
    let mut s = Session::start(TWO_COUNTS, &["-O2", "-g"]);
    s.target.wait_for("first 7");
    s.patched_by(
        "int first(void) { return 7; }",
        "int first(void) { static int count; count += 7; return count; }",
    );
    values_after(&s, "first ", |v| v == 7, 1);
    s.patched_by("count += 1000; return count; }", "count += 1000; return count + 1; }");
    // thousands: 1000 k + 1 with k going on from where it was.
    let t: Vec<i64> = values_after(&s, "thousands ", |v| v % 1000 == 0, 3);
    assert!(t[0] > 1001 && steps_by(&t, 1000), "{t:?}");
    let o = next_values(&s, "ones ", 3);
    assert!(o[0] > 1 && steps_by(&o, 1), "{o:?}");
}

/// An initial value edited, then put back as the program started with it:
/// the second save says nothing about it (compared with the last save, it
/// said the initial value changed again; a user's trial on lz4).
#[test]
fn an_initial_value_put_back_is_no_change_to_speak_of() {
    const LEVEL: &str = r#"
#include <stdio.h>
#include <unistd.h>
int level = 2;
__attribute__((noinline, noipa)) int value(void) { return 1; }
int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (;;) { printf("value %d level %d\n", value(), level); usleep(3000); }
}
"#;
    let mut s = Session::start(LEVEL, &["-O2", "-g"]);
    s.target.wait_for_prefix("value 1 ");
    s.edit("int level = 2;", "int level = 1;");
    let e = s.event();
    assert!(
        e["notes"].to_string().contains("the initial value of level changed"),
        "{e}"
    );
    s.text = s
        .text
        .replace("int level = 1;", "int level = 2;")
        .replace("return 1;", "return 3;");
    std::fs::write(&s.source, &s.text).unwrap();
    let e = s.event();
    assert_eq!(e["event"], "patched", "{e}");
    assert!(!e["notes"].to_string().contains("initial value"), "{e}");
    assert_eq!(s.target.wait_for_prefix("value 3 level "), "2");
}

/// The same for a variable a patch added: its initial value put back as
/// the patch added it is no change to speak of (a jq trial: `int bonus =
/// 7` added, edited to 9, then back to 7 was said to change again).
#[test]
fn an_added_variables_initial_value_put_back_is_no_change_to_speak_of() {
    let mut s = Session::start(APP, &["-O2", "-g"]);
    s.target.wait_for_prefix("value 1 ");
    s.edit(
        "__attribute__((noinline, noipa)) int value(void) { return 1; }",
        "int bonus = 7;\n__attribute__((noinline, noipa)) int value(void) { return bonus; }",
    );
    let e = s.event();
    assert_eq!(e["added_variables"], serde_json::json!(["bonus"]), "{e}");
    s.target.wait_for_prefix("value 7 ");
    s.edit("int bonus = 7;", "int bonus = 9;");
    let e = s.event();
    assert!(
        e["notes"].to_string().contains("the initial value of bonus changed"),
        "{e}"
    );
    // No function changed, and the JSON says what the program does not
    // take (a bzip2 trial read "no_change" as the program computing what
    // the file says).
    assert_eq!(e["event"], "no_change", "{e}");
    assert_eq!(e["initial_values_kept"], serde_json::json!(["bonus"]), "{e}");
    s.edit("int bonus = 9;", "int bonus = 7;");
    let e = s.event();
    assert!(!e["notes"].to_string().contains("initial value"), "{e}");
    assert!(e.get("initial_values_kept").is_none(), "{e}");
    s.target.wait_for_prefix("value 7 ");
}

/// A function called once at start-up (its new code can never run), edited
/// for real and then put back, differs from the code that runs only in
/// the line numbers an edit above it moved: the reload says so, measured
/// from the program's own code (3 lines), not from the last patch (with
/// that, the edit put back was NOT REACHABLE with advice to move code: a
/// redis trial).
#[test]
fn a_start_up_function_put_back_differs_only_in_line_numbers() {
    const SRC: &str = r#"
#include <stdio.h>
#include <unistd.h>
__attribute__((noinline)) void init(void) {
    printf("init at %d\n", __LINE__);
}
__attribute__((noinline, noipa)) int value(void) { return 1; }
int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    init();
    for (;;) { printf("value %d\n", value()); usleep(3000); }
}
"#;
    let mut s = Session::start(SRC, &["-O2", "-g"]);
    s.target.wait_for_prefix("value 1");
    // Three lines above init, and a real edit of it.
    s.edit(
        "#include <unistd.h>\n",
        "#include <unistd.h>\n// one\n// two\n// three\n",
    );
    let e = s.event();
    assert!(e["notes"].to_string().contains("moved it 3 lines down"), "{e}");
    s.edit("init at %d", "init (edited) at %d");
    let e = s.event();
    assert!(e["notes"].to_string().contains("move"), "a real edit: {e}");
    s.edit("init (edited) at %d", "init at %d");
    let e = s.event();
    let notes = e["notes"].to_string();
    assert!(
        notes.contains("only the line numbers of init changed (lines added or removed above moved it 3 lines down)"),
        "{e}"
    );
    assert!(!notes.contains("restart"), "{e}");
}

/// A function nothing calls, moved by lines added above it, is said to
/// be called by nothing, not to have new code that "cannot run" (which
/// read as a running loop's: a libuv trial's `uv_shutdown`).
#[test]
fn lines_moved_in_a_function_nothing_calls_say_so() {
    const SRC: &str = r#"#include <stdio.h>
#include <unistd.h>
__attribute__((noinline)) void unused_api(void) {
    printf("api at %d\n", __LINE__);
}
__attribute__((noinline, noipa)) int value(void) { return 1; }
int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (;;) { printf("value %d\n", value()); usleep(3000); }
}
"#;
    let mut s = Session::start(SRC, &["-O2", "-g"]);
    s.target.wait_for_prefix("value 1");
    s.edit("#include <unistd.h>\n", "#include <unistd.h>\n// one\n");
    let e = s.event();
    let notes = e["notes"].to_string();
    assert!(
        notes.contains("only the line numbers of unused_api changed")
            && notes.contains("nothing in the program calls it, so its new code never runs"),
        "{e}"
    );
}

/// A running function that inlines only the head of a function GCC split
/// (`concat`, its body `concat.part.0`) calls the part: patched with it,
/// its running call is not said to run the part's old code (a Lua trial:
/// `luaV_execute` and `luaV_concat.part.0`).
#[test]
fn a_split_off_part_is_not_said_to_be_inlined() {
    const SRC: &str = r#"#include <stdio.h>
#include <unistd.h>
volatile int seed = 3;
volatile int rounds = 5;
int table[64];
int concat(int n);
__attribute__((noinline)) int work(void) { int r = 0; for (int k = 0; k < rounds; k++) { r += concat(seed + k) + concat(1); usleep(1000); } return r; }
int concat(int n) {
  if (__builtin_expect(n < 2, 1)) return n;
  int s = 0;
  for (int i = 0; i < n; i++) { s += table[i % 64] * i; if (s > 100000) s -= 99991; table[(i * 7) % 64] ^= s; }
  for (int i = 0; i < n; i++) { s ^= table[(i * 3) % 64] + i; if (s & 1) s += 17; else s -= 3; }
  for (int i = 0; i < n; i++) { s += table[(i * 5) % 64] - i; table[i % 64] = s; }
  return s;
}
int main(void) { setvbuf(stdout, 0, _IOLBF, 0); for (;;) { printf("v %d\n", work() != 0); } }
"#;
    let mut s = Session::start(SRC, &["-O2", "-g"]);
    s.target.wait_for_prefix("v ");
    let e = s.save_with(&[
        ("s -= 3;", "s -= 4;"),
        (
            "r += concat(seed + k) + concat(1);",
            "r += concat(seed + k) + concat(1) + 1;",
        ),
    ]);
    assert_eq!(e["event"], "patched", "{e}");
    let said = e.to_string();
    assert!(said.contains("concat.part.0"), "GCC split concat: {e}");
    // No note says a running call runs an old version of what it calls
    // (the note's clause for an inlined function: "so that call runs the
    // old ..."), whatever its words for the function.
    let notes = e["notes"].as_array().cloned().unwrap_or_default();
    assert!(
        !notes.iter().any(|n| n
            .as_str()
            .is_some_and(|n| n.contains("inlined, so that call runs the old"))),
        "{e}"
    );
}

/// Lines added above two functions that log `__LINE__` change their code
/// and nothing else: both are patched (the program logs the new numbers,
/// as a fresh build would), and the event says they are patched for
/// their line numbers alone, in one note, apart from the function the
/// edit changed (a SQLite trial: one edit patched 14 functions with no
/// word on why).
#[test]
fn functions_patched_only_for_moved_line_numbers_are_said_apart() {
    const SRC: &str = r#"
#include <stdio.h>
#include <unistd.h>
__attribute__((noinline, noipa)) int value(void) { return 1; }
__attribute__((noinline, noipa)) int first(void) { return __LINE__; }
__attribute__((noinline, noipa)) int second(void) { return __LINE__; }
int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (;;) { printf("value %d at %d %d\n", value(), first(), second()); usleep(3000); }
}
"#;
    let mut s = Session::start(SRC, &["-O2", "-g"]);
    s.target.wait_for_prefix("value 1 at 5 6");
    let e = s.patched_by(
        "__attribute__((noinline, noipa)) int value(void) { return 1; }\n",
        "__attribute__((noinline, noipa)) int value(void) {\n    return 2;\n}\n",
    );
    assert_eq!(e["lines_moved"], serde_json::json!(["first", "second"]), "{e}");
    let notes = e["notes"].to_string();
    assert!(
        notes.contains(
            "only the line numbers of first, second changed (lines added or removed above moved them 2 lines down)"
        ),
        "{e}"
    );
    assert_eq!(
        notes.matches("only the line numbers").count(),
        1,
        "one note for both: {e}"
    );
    s.target.wait_for_prefix("value 2 at 7 8");
}

/// One function that moved, saved with a real edit of another (one that
/// changes its size): the moved one is said as moved. It was listed as
/// patched, since only one function differed only in immediates (a Lua
/// trial: `str_rep` beside an edit of `str_upper`).
#[test]
fn one_moved_function_beside_a_real_edit_is_said_as_moved() {
    const SRC: &str = r#"
#include <stdio.h>
#include <unistd.h>
__attribute__((noinline, noipa)) int value(void) { return 1; }
__attribute__((noinline, noipa)) int first(void) { return __LINE__; }
int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (;;) { printf("value %d at %d\n", value(), first()); usleep(3000); }
}
"#;
    let mut s = Session::start(SRC, &["-O2", "-g"]);
    s.target.wait_for_prefix("value 1 at 5");
    let e = s.patched_by(
        "int value(void) { return 1; }\n",
        "int value(void) {\n    return 2 + getpid() % 1;\n}\n",
    );
    assert_eq!(e["lines_moved"], serde_json::json!(["first"]), "{e}");
    s.target.wait_for_prefix("value 2 at 7");
}

/// GCC puts the unlikely paths that pass `__LINE__` to a cold function
/// (an assertion's, SQLite's `SQLITE_CORRUPT_BKPT`) in the function's cold
/// part (`find.cold`): lines added above move only those. The function is
/// said to have moved, not to have changed (a SQLite trial: 7 of 98 such
/// functions were listed as edited), and the program reports the new
/// line numbers, as a fresh build of the edited file does.
#[test]
fn line_numbers_in_a_cold_part_are_said_as_moved() {
    const SRC: &str = r#"#include <stdio.h>
#include <unistd.h>
__attribute__((noinline, cold)) int corrupt(int line) { return line; }
#define CORRUPT() corrupt(__LINE__)
__attribute__((noinline)) int find(int *rc, int pc, int max) {
  int i = 0;
  while (pc) {
    if (pc > max) {
      *rc = CORRUPT();
      return 0;
    }
    i += pc;
    pc = pc / 2;
  }
  return i;
}
__attribute__((noinline)) int other(int x) { if (x < 0) return CORRUPT(); return x + 1; }
int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  for (int k = 0;; k++) {
    int rc = 0;
    int v = find(&rc, 40, 30);
    printf("at %d %d %d\n", v, rc, other(-1));
    usleep(3000);
  }
}
"#;
    let mut s = Session::start(SRC, &["-O2", "-g"]);
    s.target.wait_for("at 0 9 17");
    s.edit("#include <unistd.h>\n", "#include <unistd.h>\n/* one */\n/* two */\n");
    let e = s.event();
    assert_eq!(e["event"], "patched", "{e}");
    assert_eq!(e["lines_moved"], serde_json::json!(["find", "other"]), "{e}");
    // Lines 9 and 17 of the source are now 11 and 19.
    s.target.wait_for("at 0 11 19");
}

/// The line of `text` (from 1) that holds `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    1 + text
        .lines()
        .position(|l| l.contains(needle))
        .expect("the needle is in the text")
}

/// Two saves that each add lines: the second moves the functions below
/// it by its own lines, measured from the code that runs (the first
/// save's), while code they inline from above it did not move at all.
/// Measured from the build, the inlined code had moved by the first
/// save's lines and the functions by both, and none was said to have
/// only moved (a SQLite trial: 23 functions listed as edited).
#[test]
fn a_second_move_is_measured_from_the_code_that_runs() {
    const SRC: &str = r#"#include <stdio.h>
#include <unistd.h>
__attribute__((noinline, cold)) int corrupt(int line) { return line; }
#define CORRUPT() corrupt(__LINE__)
static inline int helper(int x) { if (x > 1000) return CORRUPT(); return x * 3; }
/* second */
__attribute__((noinline)) int other(int x) { if (x < 0) return CORRUPT(); return helper(x) + 1; }
__attribute__((noinline)) int third(int x) { if (x < 0) return CORRUPT(); return helper(x) + 2; }
int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  for (int k = 0;; k++) {
    int odd = k & 1;
    printf("at %d %d %d %d\n", other(-1 - odd), third(-1 - odd), other(2000 + odd), third(odd));
    usleep(3000);
  }
}
"#;
    let mut s = Session::start(SRC, &["-O2", "-g"]);
    let expect = |text: &str, third: i32| {
        format!(
            "at {} {} {} {third}",
            line_of(text, "int other("),
            line_of(text, "int third("),
            line_of(text, "static inline int helper") + 1
        )
    };
    s.target.wait_for(&expect(SRC, 2));
    s.edit("#include <unistd.h>\n", "#include <unistd.h>\n/* one */\n/* two */\n");
    let e = s.event();
    assert_eq!(e["lines_moved"], serde_json::json!(["other", "third"]), "{e}");
    s.edit("/* second */\n", "/* second */\n/* three */\n");
    let e = s.event();
    assert_eq!(e["event"], "patched", "{e}");
    assert_eq!(e["lines_moved"], serde_json::json!(["other", "third"]), "{e}");
    assert!(e["notes"].to_string().contains("moved them 1 line down"), "{e}");
    let text = s.text.clone();
    s.target.wait_for(&expect(&text, 2));
}

/// `--cc` for gcc -O0 -g taking `seconds` longer than it does.
fn slow_cc(dir: &Path, seconds: &str) -> String {
    let script = dir.join("slow-cc");
    std::fs::write(&script, format!("#!/bin/sh\nsleep {seconds}\nexec gcc \"$@\"\n")).unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    format!("{} -O0 -g", script.display())
}

/// An edit saved while relive compares the sources with the running code
/// (its start-up compiles, slow here) is reloaded once it watches, and it
/// says so at once: a new user, seeing only "watching", took the edit
/// for lost while its compile ran.
#[test]
fn an_edit_saved_while_relive_starts_is_announced_and_patched() {
    let dir = tempfile::tempdir().unwrap();
    let cc = slow_cc(dir.path(), "1");
    let exe = relive_testkit::compile_with("gcc", dir.path(), "app", APP, &["-O0", "-g"]);
    let source = dir.path().join("app.c");
    let relive = Path::new(env!("CARGO_BIN_EXE_relive"));
    let (target, events) = relive_testkit::relive_run_starting(relive, &["--cc", &cc], exe, &[], dir);
    relive_testkit::events_until(&events, "starting");
    target.wait_for_prefix("value 1 ");
    std::fs::write(&source, APP.replace("return 1;", "return 2;")).unwrap();
    let watching = relive_testkit::events_until(&events, "watching").pop().unwrap();
    let saved = watching["saved_while_starting"].as_array().expect("a list");
    assert!(
        saved.iter().any(|f| f.as_str().is_some_and(|f| f.ends_with("app.c"))),
        "{watching}"
    );
    let patched = relive_testkit::events_until(&events, "patched").pop().unwrap();
    assert_eq!(patched["functions"], serde_json::json!(["value"]), "{patched}");
    target.wait_for_prefix("value 2 ");
}

/// S12: patched code that uses the program's thread-local variables
/// reaches each thread's own copy (local-exec offsets from the thread
/// pointer); every thread keeps its value.
#[test]
fn thread_locals_keep_each_threads_value() {
    const TLS: &str = r#"
#include <stdio.h>
#include <pthread.h>
#include <unistd.h>
__thread int per_thread = 5;
static __thread long calls;
__attribute__((noinline, noipa)) int value(int id) { calls++; return id * 1000 + per_thread; }
static void *run(void *arg) {
    int id = (int)(long)arg;
    per_thread = id * 10;
    for (;;) { int v = value(id); printf("value %d %d %ld\n", id, v, calls); usleep(3000); }
}
int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    pthread_t t[3];
    for (long i = 0; i < 3; i++) pthread_create(&t[i], 0, run, (void *)(i + 1));
    pthread_join(t[0], 0);
}
"#;
    let mut s = Session::start(TLS, &["-O2", "-g", "-pthread"]);
    s.target.wait_for_prefix("value 3 3030 ");
    s.edit(
        "return id * 1000 + per_thread;",
        "return id * 100000 + per_thread + calls % 2;",
    );
    let e = s.event();
    assert_eq!(e["event"], "patched", "{e}");
    // Each thread: its own per_thread (id * 10) and its own count of calls.
    for id in 1..=3i64 {
        let (got, calls) = loop {
            let rest = s.target.wait_for_prefix(&format!("value {id} "));
            let words: Vec<i64> = rest.split(' ').map(|w| w.parse().unwrap()).collect();
            if words[0] >= 100000 {
                break (words[0], words[1]);
            }
        };
        assert_eq!(got, id * 100000 + id * 10 + calls % 2, "thread {id}");
        assert!(calls > 1, "thread {id} lost its count of calls");
    }
}

/// S16 + S17: a patch into a program with many threads, some blocked in
/// `read` and some in `nanosleep`: all are stopped and resumed, and every
/// blocked call completes normally afterwards.
#[test]
fn threads_blocked_in_syscalls_survive_a_reload() {
    let mut s = Session::start_with(
        relive_testkit::THREADS_PROGRAM,
        &["-O1", "-g", "-pthread"],
        &[],
        &["500"],
    );
    s.target.wait_for_prefix("ready ");
    s.edit("c == 'x'", "(c == 'x' || c == 'y')");
    let e = s.event();
    assert_eq!(e["event"], "patched", "{e}");
    assert!(
        e["pause_us"].as_u64().unwrap() > 0,
        "a first redirect stops the threads: {e}"
    );
    writeln!(s.target.stdin(), "go").unwrap();
    assert_eq!(
        s.target.wait_for_prefix("readers "),
        "250/250 sleepers 250/250 sleep_errors 0 read_errors 0"
    );
}

/// A program printing `value()`, which returns VALUE.
const VALUE_APP: &str = r#"
#include <stdio.h>
#include <unistd.h>
__attribute__((noinline, noipa)) int value(void) { return VALUE; }
int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (;;) { printf("value %d\n", value()); usleep(3000); }
}
"#;

/// A fresh directory whose compile_commands.json compiles `app.c` with
/// `command`.
fn with_database(command: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let db = serde_json::json!([{ "directory": dir.path(), "file": "app.c", "command": command }]);
    std::fs::write(dir.path().join("compile_commands.json"), db.to_string()).unwrap();
    dir
}

/// The compile command comes from compile_commands.json when there is
/// one: here it defines a macro the program's DWARF does not record.
#[test]
fn compile_commands_json_gives_the_flags() {
    const SRC: &str = VALUE_APP;
    let dir = with_database("gcc -O0 -g -DVALUE=5 -c app.c -o app.o");
    // Built as the database says: without it relive would compile with
    // no VALUE at all (the debug info does not record -D).
    let exe = relive_testkit::compile(dir.path(), "app", SRC, &["-O0", "-g", "-DVALUE=5"]);
    let (target, mut events) = run_json(exe, dir);
    assert!(events.next().unwrap().contains("watching"));
    target.wait_for("value 5");
    let source = target.dir.path().join("app.c");
    std::fs::write(&source, SRC.replace("return VALUE;", "return VALUE + 10;")).unwrap();
    let event: Value = serde_json::from_str(&events.next().unwrap()).unwrap();
    assert_eq!(event["event"], "patched", "{event}");
    target.wait_for("value 15");
}

/// `src` edited in `dir` (1 becomes 2) after `exe` was built: the edit
/// of a session that ended, the binary's time set back, not slept for.
fn edited_after_build(dir: &std::path::Path, exe: &std::path::Path, src: &str) {
    std::fs::write(dir.join("app.c"), src.replace("return 1;", "return 2;")).unwrap();
    let built = std::time::SystemTime::now() - std::time::Duration::from_secs(60);
    let file = std::fs::File::options().write(true).open(exe).unwrap();
    file.set_modified(built).unwrap();
}

/// Edits made while no relive ran: `b.c` changes `base` and adds `newf`,
/// which `a.c` now calls. The catch-up brings `newf` with `b.c` (only the
/// functions that differ from the running code went in, and `a.c` was held
/// for `newf`, said to be defined nowhere: an LMDB trial), so the program
/// runs the edited code from its first line.
#[test]
fn a_catch_up_brings_the_new_functions_another_file_calls() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let a = "#include <stdio.h>\n#include <unistd.h>\nint base(void);\n__attribute__((noinline)) static void step(void) { printf(\"v=%d\\n\", base()); }\nint main(void) { setvbuf(stdout, NULL, _IOLBF, 0); for (;;) { step(); usleep(3000); } }\n";
    let exe = build_files(
        p,
        &[("a.c", a), ("b.c", "int base(void) { return 1; }\n")],
        &["-O2", "-g"],
    );
    std::fs::write(
        p.join("b.c"),
        "int base(void) { return 2; }\nint newf(void) { return 42; }\n",
    )
    .unwrap();
    std::fs::write(
        p.join("a.c"),
        a.replace("int base(void);", "int base(void);\nint newf(void);")
            .replace("base())", "base() + newf())"),
    )
    .unwrap();
    built_a_minute_ago(&exe);
    let (target, _events) = run_json_with(exe, dir, &["--cc", "gcc -O2 -g"]);
    assert_eq!(target.next_line(), "v=44");
}

/// Patches survive a restart (issue 24 item 5): a program started again
/// under `relive run` from a build older than its sources is held at its
/// entry until the edits are compared and patched in, so it runs the
/// edited code from its first call. A program whose sources are not newer
/// starts at once.
#[test]
fn a_restart_runs_the_edited_code_from_its_first_call() {
    let src = VALUE_APP.replace("return VALUE;", "return 1;");
    let dir = with_database("gcc -O2 -g -c app.c -o app.o");
    let exe = relive_testkit::compile(dir.path(), "app", &src, &["-O2", "-g"]);
    edited_after_build(dir.path(), &exe, &src);
    let (target, mut events) = run_json(exe.clone(), dir);
    let before_watching: Vec<String> = events.by_ref().take_while(|e| !e.contains("\"watching\"")).collect();
    assert!(
        before_watching
            .iter()
            .any(|e| e.contains("\"patched\"") && e.contains("value")),
        "{before_watching:?}"
    );
    // Its very first line is the edited code's.
    assert_eq!(target.next_line(), "value 2");
    drop(target);

    // Started again with nothing newer than it: at once, as built.
    let dir = tempfile::tempdir().unwrap();
    let exe = relive_testkit::compile(dir.path(), "app", &src, &["-O2", "-g"]);
    let (target, _events) = run_json(exe.clone(), dir);
    assert_eq!(target.next_line(), "value 1");
    drop(target);

    // With no record of the build's commands (the debug info's), only
    // --trust-baselines patches such an edit in: the difference cannot be
    // told from a missing -D.
    let dir = tempfile::tempdir().unwrap();
    let exe = relive_testkit::compile(dir.path(), "app", &src, &["-O2", "-g"]);
    edited_after_build(dir.path(), &exe, &src);
    let (target, _events) = run_json_with(exe, dir, &["--trust-baselines"]);
    assert_eq!(target.next_line(), "value 2");
}

/// A database with two commands for the file (libtool compiles a file
/// twice): the one that compiles into the running code is used.
#[test]
fn of_two_recorded_commands_the_one_the_program_was_built_with_is_used() {
    const SRC: &str = r#"
#include <stdio.h>
#include <unistd.h>
__attribute__((noinline, noipa)) int value(void) { return VALUE; }
int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (;;) { printf("value %d\n", value()); usleep(3000); }
}
"#;
    let dir = tempfile::tempdir().unwrap();
    let db = serde_json::json!([
        {"directory": dir.path(), "file": "app.c", "command": "gcc -O0 -g -DVALUE=1 -c app.c -o pic/app.o"},
        {"directory": dir.path(), "file": "app.c", "command": "gcc -O0 -g -DVALUE=5 -c app.c -o app.o"}
    ]);
    std::fs::write(dir.path().join("compile_commands.json"), db.to_string()).unwrap();
    let exe = relive_testkit::compile(dir.path(), "app", SRC, &["-O0", "-g", "-DVALUE=5"]);
    let (target, mut events) = run_json(exe, dir);
    assert!(events.next().unwrap().contains("watching"));
    target.wait_for("value 5");
    let source = target.dir.path().join("app.c");
    std::fs::write(&source, SRC.replace("return VALUE;", "return VALUE + 10;")).unwrap();
    let event: Value = serde_json::from_str(&events.next().unwrap()).unwrap();
    assert_eq!(event["event"], "patched", "{event}");
    target.wait_for("value 15");
    // As text: files that compile with the database's other entry are said
    // in one line, not one each (a redis trial's start printed 14).
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("compile_commands.json"),
        db.to_string().replace(
            &serde_json::to_string(target.dir.path()).unwrap(),
            &serde_json::to_string(dir.path()).unwrap(),
        ),
    )
    .unwrap();
    let exe = relive_testkit::compile(dir.path(), "app", SRC, &["-O0", "-g", "-DVALUE=5"]);
    let (_target, lines) = run_relive(exe, dir, &[]);
    let start: Vec<String> = lines.take_while(|l| !l.contains("compile into exactly")).collect();
    assert!(
        start.iter().any(|l| l.contains(
            "app.c compiles into the running code with compile_commands.json's other entry for it (-v shows each)"
        )),
        "{start:?}"
    );
}

/// A database that is not how the running program was built (its -D
/// differs): relive names the function whose compile differs from the
/// running code and refuses to patch an edit of it, naming the fix,
/// instead of patching code the build would not make.
#[test]
fn a_compile_command_unlike_the_build_is_named_and_its_functions_refused() {
    const SRC: &str = r#"
#include <stdio.h>
#include <unistd.h>
__attribute__((noinline, noipa)) int value(void) { return VALUE; }
__attribute__((noinline, noipa)) int other(void) { return 7; }
int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (;;) { printf("value %d other %d\n", value(), other()); usleep(3000); }
}
"#;
    let dir = tempfile::tempdir().unwrap();
    let db = serde_json::json!([{
        "directory": dir.path(), "file": "app.c", "command": "gcc -O0 -g -DVALUE=5 -c app.c -o app.o"
    }]);
    std::fs::write(dir.path().join("compile_commands.json"), db.to_string()).unwrap();
    let exe = relive_testkit::compile(dir.path(), "app", SRC, &["-O0", "-g", "-DVALUE=1"]);
    let (target, mut events) = run_json(exe, dir);
    let baseline: Value = serde_json::from_str(&events.next().unwrap()).unwrap();
    assert_eq!(baseline["event"], "baseline", "{baseline}");
    assert_eq!(baseline["status"], "differs", "{baseline}");
    assert_eq!(baseline["functions"], serde_json::json!(["value"]), "{baseline}");
    assert!(events.next().unwrap().contains("watching"));
    target.wait_for("value 1 other 7");
    let source = target.dir.path().join("app.c");
    // An edit of the function whose compile differs: refused.
    std::fs::write(&source, SRC.replace("return VALUE;", "return VALUE + 10;")).unwrap();
    let event: Value = serde_json::from_str(&events.next().unwrap()).unwrap();
    assert_eq!(event["event"], "refused", "{event}");
    let message = event["message"].as_str().unwrap();
    assert!(
        message.contains("relive build") && message.contains("compile_commands.json"),
        "{message}"
    );
    target.wait_for("value 1 other 7");
    // An edit of a function that compiles into the running code: patched.
    std::fs::write(&source, SRC.replace("return 7;", "return 8;")).unwrap();
    let event: Value = serde_json::from_str(&events.next().unwrap()).unwrap();
    assert_eq!(event["event"], "patched", "{event}");
    assert_eq!(event["functions"], serde_json::json!(["other"]), "{event}");
    target.wait_for("value 1 other 8");
}

/// `relive run --json -- EXE` with the program's output read by the test
/// and relive's event lines returned as an iterator.
fn run_json(exe: std::path::PathBuf, dir: tempfile::TempDir) -> (Target, Box<dyn Iterator<Item = String>>) {
    run_json_with(exe, dir, &[])
}

/// [`run_json`] with `relive run` options.
fn run_json_with(
    exe: std::path::PathBuf,
    dir: tempfile::TempDir,
    options: &[&str],
) -> (Target, Box<dyn Iterator<Item = String>>) {
    let json: Vec<&str> = std::iter::once("--json").chain(options.iter().copied()).collect();
    run_relive(exe, dir, &json)
}

/// `relive run ARGS -- exe` in `dir`: the program, and relive's stderr by
/// lines.
fn run_relive(
    exe: std::path::PathBuf,
    dir: tempfile::TempDir,
    args: &[&str],
) -> (Target, Box<dyn Iterator<Item = String>>) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_relive"));
    cmd.arg("run")
        .args(args)
        .arg("--")
        .arg(&exe)
        .env("RELIVE_STATE_DIR", dir.path().join("state"))
        .stderr(Stdio::piped());
    let mut target = Target::spawn(cmd, exe, dir);
    let events = event_lines(target.child.stderr.take().unwrap());
    (target, events)
}

/// relive's stderr lines, without the `starting` event every `run` and
/// `watch` begins with.
fn event_lines(stderr: impl std::io::Read + 'static) -> Box<dyn Iterator<Item = String>> {
    Box::new(
        BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .filter(|l| !l.starts_with("{\"event\":\"starting\"")),
    )
}

/// `relive watch --json PID` on `target`'s program, run in its directory
/// with its state beside it: the session and its event lines from the
/// first (what it says while it starts: baselines, catch-ups).
fn watch_json_started(target: &Target) -> (std::process::Child, Box<dyn Iterator<Item = String>>) {
    let mut watch = Command::new(env!("CARGO_BIN_EXE_relive"))
        .args(["watch", "--json", "--pid", &target.pid_arg()])
        .current_dir(target.dir.path())
        .env("RELIVE_STATE_DIR", target.dir.path().join("state"))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let events = event_lines(watch.stderr.take().unwrap());
    (watch, events)
}

/// `relive watch --json PID` on `target`'s program, its state beside it:
/// the session and its event lines, read up to its `watching` event.
fn watch_json(target: &Target) -> (std::process::Child, Box<dyn Iterator<Item = String>>) {
    let (watch, events, _) = watch_json_ready(target);
    (watch, events)
}

/// [`watch_json`], with its `watching` event.
fn watch_json_ready(target: &Target) -> (std::process::Child, Box<dyn Iterator<Item = String>>, Value) {
    let (watch, mut events) = watch_json_started(target);
    let ready: Value = serde_json::from_str(&events.next().unwrap()).unwrap();
    assert_eq!(ready["event"], "watching", "{ready}");
    (watch, events, ready)
}

/// Saves `text` as `target`'s source and waits for its `patched` event,
/// then for the program to print a line starting with `prints`; stops the
/// program, and with it the watch (status 0).
fn edit_under_watch(
    target: Target,
    (watch, mut events): (std::process::Child, Box<dyn Iterator<Item = String>>),
    text: &str,
    prints: &str,
) {
    std::fs::write(target.dir.path().join("target.c"), text).unwrap();
    let e: Value = serde_json::from_str(&events.next().unwrap()).unwrap();
    assert_eq!(e["event"], "patched", "{e}");
    target.wait_for_prefix(prints);
    stop_with_watch(target, watch);
}

/// Stops the program, and with it the watch, which ends with status 0.
fn stop_with_watch(mut target: Target, mut watch: std::process::Child) {
    target.child.kill().unwrap();
    target.child.wait().unwrap();
    assert_eq!(watch.wait().unwrap().code(), Some(0));
}

/// [`start_with_library`], once it prints `first`, under `relive watch
/// --json` with no files named, which watches the library's `lib.c` too:
/// the program, its directory, the watch and its events.
fn watched_with_library(
    main_c: &str,
    lib_c: &str,
    first: &str,
) -> (
    Target,
    std::path::PathBuf,
    std::process::Child,
    Box<dyn Iterator<Item = String>>,
) {
    let (target, p) = start_with_library(main_c, lib_c);
    target.wait_for(first);
    let (watch, events, ready) = watch_json_ready(&target);
    assert!(ready["files"].to_string().contains("lib.c"), "{ready}");
    (target, p, watch, events)
}

/// `main.c` built into `app`, linked with `libval.so` built from `lib.c`
/// (both `-O2 -g`), in a new directory, started: the program and its
/// directory.
fn start_with_library(main_c: &str, lib_c: &str) -> (Target, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().to_path_buf();
    std::fs::write(p.join("lib.c"), lib_c).unwrap();
    std::fs::write(p.join("main.c"), main_c).unwrap();
    for args in [
        &["-O2", "-g", "-fPIC", "-shared", "-o", "libval.so", "lib.c"][..],
        &["-O2", "-g", "-o", "app", "main.c", "-L.", "-lval", "-Wl,-rpath,$ORIGIN"],
    ] {
        let built = Command::new("gcc").args(args).current_dir(&p).status().unwrap();
        assert!(built.success(), "gcc {args:?}");
    }
    let mut cmd = Command::new(p.join("app"));
    cmd.current_dir(&p);
    (Target::spawn(cmd, p.join("app"), dir), p)
}

/// `relive watch PID` with no files named watches the sources of the
/// program's own shared library too (its debug info names them, and they
/// are on disk): an edit of the library's file is patched. Only the
/// program's files were watched, and the library's edits were lost
/// without a word (a jq trial: libjq.so).
#[test]
fn watch_with_no_files_named_watches_the_programs_own_library() {
    const MAIN: &str = "#include <stdio.h>\n#include <unistd.h>\nint libval(void);\nint main(void) { setvbuf(stdout, NULL, _IOLBF, 0); for (;;) { printf(\"lib %d\\n\", libval()); usleep(3000); } }\n";
    const LIB: &str = "__attribute__((noinline)) int libval(void) { return 1; }\n";
    let (target, p, watch, mut events) = watched_with_library(MAIN, LIB, "lib 1");
    std::fs::write(p.join("lib.c"), LIB.replace("return 1;", "return 2;")).unwrap();
    let e: Value = serde_json::from_str(&events.next().unwrap()).unwrap();
    assert_eq!(e["event"], "patched", "{e}");
    assert!(e["file"].as_str().unwrap().ends_with("lib.c"), "{e}");
    target.wait_for("lib 2");
    stop_with_watch(target, watch);
}

/// The program's file and its library's saved together change code of two
/// modules, whose code goes near each: they are patched one by one, each
/// saying why, and the program runs both edits. They were refused
/// together, the message saying they are patched one at a time, and
/// neither went in (a jq trial: `main.c` with libjq's files).
#[test]
fn files_of_the_program_and_its_library_saved_together_go_in_one_by_one() {
    // Called with a volatile argument: GCC keeps the calls in the loop.
    const MAIN: &str = "#include <stdio.h>\n#include <unistd.h>\nint libval(int);\nstatic volatile int one = 1;\n__attribute__((noinline)) int own(int x) { return x * 10; }\nint main(void) { setvbuf(stdout, NULL, _IOLBF, 0); for (;;) { printf(\"sum %d\\n\", own(one) + libval(one)); usleep(3000); } }\n";
    const LIB: &str = "__attribute__((noinline)) int libval(int x) { return x * x; }\n";
    let (target, p, watch, mut events) = watched_with_library(MAIN, LIB, "sum 11");
    std::fs::write(p.join("main.c"), MAIN.replace("x * 10", "x * 20")).unwrap();
    std::fs::write(p.join("lib.c"), LIB.replace("x * x;", "x * x * 2;")).unwrap();
    let mut patched = 0;
    while patched < 2 {
        let e: Value = serde_json::from_str(&events.next().unwrap()).unwrap();
        assert_eq!(e["event"], "patched", "{e}");
        patched += 1;
    }
    target.wait_for("sum 22");
    stop_with_watch(target, watch);
}

/// A header an edit starts to include is watched from then on: its own
/// edits were lost, without a word (a libuv trial's new server.h, saved
/// again and again while the program kept its first text).
#[test]
fn a_header_an_edit_starts_to_include_is_watched() {
    const APP: &str = r#"
#include <stdio.h>
#include <unistd.h>
__attribute__((noinline, noipa)) int tag(void) { return 0; }
int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (;;) { printf("tag %d\n", tag()); usleep(3000); }
}
"#;
    let mut s = Session::start(APP, &["-O0", "-g"]);
    s.target.wait_for("tag 0");
    let header = s.target.dir.path().join("new.h");
    std::fs::write(&header, "#define TAG 1\n").unwrap();
    s.save_with(&[
        ("#include <unistd.h>", "#include <unistd.h>\n#include \"new.h\""),
        ("return 0;", "return TAG;"),
    ]);
    s.target.wait_for("tag 1");
    std::fs::write(&header, "#define TAG 2\n").unwrap();
    let e = s.event();
    assert_eq!(e["event"], "patched", "{e}");
    assert!(e["file"].as_str().unwrap().ends_with("app.c"), "{e}");
    s.target.wait_for("tag 2");
}

/// A save closed after its first part (which compiles: it ends between
/// two functions) and then written whole: the whole text's functions that
/// the first part lacked are the running code, no edit. They were patched
/// again, diffed against the first part, and `main` was said to be NOT
/// REACHABLE (a libuv trial's server.c, written in two parts).
#[test]
fn functions_a_half_written_save_lacked_are_not_patched_again() {
    const APP: &str = r#"#include <stdio.h>
#include <unistd.h>
static int helper(int i) { return i * 2; }
__attribute__((noinline)) void show(int i) { printf("value %d\n", helper(i)); }
__attribute__((noinline)) void step(int i) { show(i); }
int main(void) { setvbuf(stdout, NULL, _IOLBF, 0); for (int i = 0;; i++) { step(7); usleep(3000); } }
"#;
    let mut s = Session::start(APP, &["-O0", "-g"]);
    s.target.wait_for("value 14");
    let edited = APP.replace("i * 2", "i * 3");
    let cut = edited.find("__attribute__((noinline)) void step").unwrap();
    std::fs::write(&s.source, &edited[..cut]).unwrap();
    let first = s.event();
    assert_eq!(first["event"], "patched", "{first}");
    s.target.wait_for("value 21");
    std::fs::write(&s.source, &edited).unwrap();
    s.text = edited;
    let whole = s.event();
    assert_ne!(whole["event"], "patched", "{whole}");
    assert!(whole.get("unreachable").is_none(), "{whole}");
    s.target.wait_for("value 21");
}

/// A compile that succeeds with warnings says them with its reload (a
/// PCRE2 trial: a call that no longer matched its prototype compiled with
/// a warning relive kept to itself, and the program then crashed); the
/// next compile without any says none.
#[test]
fn a_compilers_warnings_are_said_with_the_reload() {
    let mut s = Session::start(APP, &["-O0", "-g"]);
    s.target.wait_for_prefix("value ");
    let e = s.save_with(&[(
        "#include <stdio.h>",
        "#include <stdio.h>\n#warning \"a warning for relive\"",
    )]);
    let warned = e["compiler_warnings"]
        .as_str()
        .unwrap_or_else(|| panic!("no warnings: {e}"));
    assert!(warned.contains("a warning for relive"), "{e}");
    assert!(e.get("compiler_warnings_repeated").is_none(), "{e}");
    // The same warnings at the next save: given, and marked as those of
    // the last event (the text says them in one line); other warnings are
    // new again.
    let e = s.save_with(&[("return 1;", "return 2;")]);
    assert_eq!(e["compiler_warnings"].as_str(), Some(warned), "{e}");
    assert_eq!(e["compiler_warnings_repeated"], true, "{e}");
    let e = s.save_with(&[("a warning for relive", "another warning for relive")]);
    assert!(e["compiler_warnings"].to_string().contains("another warning"), "{e}");
    assert!(e.get("compiler_warnings_repeated").is_none(), "{e}");
    let e = s.save_with(&[("#warning \"another warning for relive\"", "")]);
    assert!(e.get("compiler_warnings").is_none(), "{e}");
}

/// A save of four files: a signature change with its caller (f.c,
/// caller.c), a file adding a function and a variable none of its own
/// functions uses (add.c), and one using both (user.c). The variable does
/// not come into the program with add.c's patch, so user.c waits; the
/// others go in together. Before, they were patched one by one, the
/// signature change was held with advice to save its files together,
/// which they were, and every later save was held the same way (a
/// re-check).
#[test]
fn a_file_that_cannot_be_patched_yet_does_not_hold_back_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let files = [
        (
            "main.c",
            "#include <stdio.h>\n#include <unistd.h>\nint call(void);\nint user(void);\nint main(void) { setvbuf(stdout, NULL, _IOLBF, 0); for (;;) { printf(\"call=%d user=%d\\n\", call(), user()); usleep(3000); } }\n",
        ),
        ("f.c", "int f(int a, long b) { return a * 100 - (int)b; }\n"),
        ("caller.c", "int f(int a, long b);\nint call(void) { return f(10, 3); }\n"),
        ("add.c", "int unused_add(void) { return 0; }\n"),
        ("user.c", "int user(void) { return 1; }\n"),
    ];
    let exe = build_files(p, &files, &["-O0", "-g"]);
    let relive = Path::new(env!("CARGO_BIN_EXE_relive"));
    let (target, events) = relive_testkit::relive_run(relive, &[], exe, &[], dir);
    target.wait_for("call=997 user=1");
    let p = target.dir.path();
    let edits = [
        ("f.c", "int f(long b, int a) { return a * 100 - (int)b + 1; }\n"),
        (
            "caller.c",
            "int f(long b, int a);\nint call(void) { return f(3, 10); }\n",
        ),
        (
            "add.c",
            "int unused_add(void) { return 0; }\nint gv = 40;\nint g(void) { return 5; }\n",
        ),
        (
            "user.c",
            "extern int gv;\nint g(void);\nint user(void) { return g() + gv; }\n",
        ),
    ];
    for (name, text) in edits {
        std::fs::write(p.join(name), text).unwrap();
    }
    let seen = events_until_each_of(&events, &["f.c", "caller.c", "user.c"]);
    let of = |f: &str| {
        seen.iter()
            .rev()
            .find(|e| e["file"].as_str().is_some_and(|n| n.ends_with(&format!("/{f}"))))
            .unwrap()
            .clone()
    };
    for f in ["f.c", "caller.c"] {
        let e = of(f);
        assert_eq!(e["event"], "patched", "{seen:?}");
        assert!(e["notes"].to_string().contains("patched in one step with"), "{e}");
    }
    let user = of("user.c");
    assert_eq!(user["event"], "held", "{user}");
    let message = user["message"].as_str().unwrap();
    assert!(message.contains("gv") && message.contains("add.c"), "{message}");
    target.wait_for("call=998 user=1");
}

/// A signature change saved with its caller while the caller's call is
/// running, as it is most of the time here (it sleeps 180 ms after its
/// call of `f`, and `main` waits 20 ms between calls): relive waits for
/// the call to return and patches then. It was refused whenever the
/// save came while the call ran (a test's loop was inside its caller one
/// time in a few hundred, and its save was refused), though the call
/// returns a moment later.
#[test]
fn a_caller_running_for_a_moment_is_waited_for() {
    let (target, events) = run_files(
        &[
            (
                "main.c",
                "#include <stdio.h>\n#include <unistd.h>\nint call(void);\nint main(void) { setvbuf(stdout, NULL, _IOLBF, 0); for (;;) { printf(\"call=%d\\n\", call()); usleep(20000); } }\n",
            ),
            ("f.c", "int f(int a, long b) { return a * 100 - (int)b; }\n"),
            (
                "caller.c",
                "#include <unistd.h>\nint f(int a, long b);\nint call(void) { int r = f(10, 3); usleep(180000); return r; }\n",
            ),
        ],
        &["-O2", "-g"],
    );
    target.wait_for("call=997");
    let p = target.dir.path();
    std::fs::write(p.join("f.c"), "int f(long b, int a) { return a * 100 - (int)b + 1; }\n").unwrap();
    std::fs::write(
        p.join("caller.c"),
        "#include <unistd.h>\nint f(long b, int a);\nint call(void) { int r = f(3, 10); usleep(180000); return r; }\n",
    )
    .unwrap();
    let seen = events_until_each_of(&events, &["f.c", "caller.c"]);
    for e in &seen {
        assert_eq!(e["event"], "patched", "{seen:?}");
    }
    target.wait_for("call=998");
}

/// A caller whose header declares its callee without a prototype (`extern
/// void tick();`, as redis's `server.h` and gawk's `awk.h` do), defined in
/// another file as `void tick() {`: an edit of the caller is patched, and
/// the program then prints what a fresh build of the edit prints. It was
/// held for a signature change nobody made ("calls tick as void(...), but
/// the program runs tick ... as void()"), and the advice to save both
/// files together held it again.
#[test]
fn a_callee_declared_without_a_prototype_holds_no_edit_of_its_callers() {
    let main_c = "#include <stdio.h>\n#include <unistd.h>\nint counter;\nextern int worker();\nvoid tick() { counter++; }\nint main(void) { setvbuf(stdout, NULL, _IOLBF, 0); for (;;) { printf(\"w=%d\\n\", worker() > 0); usleep(3000); } }\n";
    let worker = "extern void tick();\nextern int counter;\nint worker() { tick(); return counter; }\n";
    let (target, events) = run_files(&[("main.c", main_c), ("worker.c", worker)], &["-O2", "-g"]);
    target.wait_for("w=1");
    std::fs::write(
        target.dir.path().join("worker.c"),
        worker.replace("return counter;", "return -counter;"),
    )
    .unwrap();
    let e = events.recv_timeout(PATIENCE).expect("worker.c's event");
    assert_eq!(e["event"], "patched", "{e}");
    target.wait_for("w=0");
}

/// Two new functions that call each other across files (`new_a` in a.c,
/// `new_b` in b.c), saved one after the other: a.c waits for `new_b`, and
/// b.c's save patches both in one step, each linked against the place of
/// the other's new function. Neither went in before ("two new functions
/// that use each other across files come with neither"), and the program
/// ran on its old code. What it prints then is what a fresh build of the
/// edited files prints.
#[test]
fn two_new_functions_that_call_each_other_across_files_go_in_together() {
    let main_c = "#include <stdio.h>\n#include <unistd.h>\nint fa(int); int fb(int);\nint main(int argc, char **argv) { (void)argv; setvbuf(stdout, NULL, _IOLBF, 0); for (;;) { printf(\"fa=%d fb=%d\\n\", fa(5), fb(5)); if (argc > 1) return 0; usleep(3000); } }\n";
    let a_edit = "int new_b(int);\nint new_a(int x) { return x > 0 ? new_b(x - 1) + 1 : 100; }\nint fa(int x) { return new_a(x); }\n";
    let b_edit = "int new_a(int);\nint new_b(int x) { return x > 0 ? new_a(x - 1) + 10 : 200; }\nint fb(int x) { return new_b(x); }\n";
    // The oracle: the edited files built afresh, run once.
    let fresh = tempfile::tempdir().unwrap();
    let oracle = build_files(
        fresh.path(),
        &[("main.c", main_c), ("a.c", a_edit), ("b.c", b_edit)],
        &["-O2", "-g"],
    );
    let out = Command::new(&oracle).arg("once").output().unwrap();
    let expected = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(expected.starts_with("fa=") && expected != "fa=6 fb=10", "{expected}");
    let (target, events) = run_files(
        &[
            ("main.c", main_c),
            ("a.c", "int fa(int x) { return x + 1; }\n"),
            ("b.c", "int fb(int x) { return x * 2; }\n"),
        ],
        &["-O2", "-g"],
    );
    target.wait_for("fa=6 fb=10");
    let p = target.dir.path();
    std::fs::write(p.join("a.c"), a_edit).unwrap();
    let held = events.recv_timeout(PATIENCE).expect("a.c's event");
    assert_eq!(held["event"], "held", "{held}");
    assert!(held["message"].as_str().unwrap().contains("new_b"), "{held}");
    std::fs::write(p.join("b.c"), b_edit).unwrap();
    let mut patched: Vec<Value> = Vec::new();
    while patched.len() < 2 {
        let e = events.recv_timeout(PATIENCE).expect("the patch of both files");
        assert_eq!(e["event"], "patched", "{e}");
        assert!(e["notes"].to_string().contains("patched in one step with"), "{e}");
        patched.push(e);
    }
    let added: Vec<String> = patched
        .iter()
        .flat_map(|e| e["added"].as_array().cloned().unwrap_or_default())
        .map(|a| a.as_str().map_or_else(|| a["name"].to_string(), str::to_string))
        .collect();
    assert!(
        added.iter().any(|a| a.contains("new_a")) && added.iter().any(|a| a.contains("new_b")),
        "{patched:?}"
    );
    target.wait_for(&expected);
}

/// A struct grows in a header; a file that uses it has no function whose
/// code changes with it, and is no change. Its next edit, which writes the
/// new field, must be refused: the program's structs have the old layout.
/// That compile was taken for the file's baseline, the next diff saw the
/// same layout on both sides, and the new code wrote past the program's
/// structs (an LMDB trial's `MDB_stat`: a guard beside the struct read 77).
#[test]
fn a_layout_change_no_function_showed_is_still_refused_at_the_next_edit() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let files = [
        ("s.h", "struct S { long a, b; };\nvoid fill(struct S *s);\n"),
        ("lib.c", "#include \"s.h\"\nvoid fill(struct S *s) { s->a = 1; s->b = 2; }\n"),
        (
            "main.c",
            "#include <stdio.h>\n#include <unistd.h>\n#include \"s.h\"\n__attribute__((noinline)) static void step(void) { struct { struct S s; long guard; } f; f.guard = 12345; fill(&f.s); printf(\"guard=%ld\\n\", f.guard); }\nint main(void) { setvbuf(stdout, NULL, _IOLBF, 0); for (;;) { step(); usleep(3000); } }\n",
        ),
    ];
    let exe = build_files(p, &files, &["-O2", "-g"]);
    let relive = Path::new(env!("CARGO_BIN_EXE_relive"));
    let (target, events) = relive_testkit::relive_run(relive, &[], exe, &[], dir);
    target.wait_for("guard=12345");
    let p = target.dir.path();
    std::fs::write(p.join("s.h"), "struct S { long a, b, c; };\nvoid fill(struct S *s);\n").unwrap();
    let mut lib = None;
    while lib.is_none() {
        let e = events.recv_timeout(PATIENCE).expect("an event for the header edit");
        if e["file"].as_str().is_some_and(|f| f.ends_with("/lib.c")) {
            lib = Some(e);
        }
    }
    let lib = lib.unwrap();
    assert_ne!(lib["event"], "patched", "{lib}");
    assert!(lib["notes"].to_string().contains("struct S"), "{lib}");
    std::fs::write(
        p.join("lib.c"),
        "#include \"s.h\"\nvoid fill(struct S *s) { s->a = 1; s->b = 2; s->c = 77; }\n",
    )
    .unwrap();
    let e = loop {
        let e = events.recv_timeout(PATIENCE).expect("an event for lib.c");
        if e["file"].as_str().is_some_and(|f| f.ends_with("/lib.c")) {
            break e;
        }
    };
    assert_eq!(e["event"], "refused", "{e}");
    assert!(e["message"].to_string().contains("struct S"), "{e}");
    target.prints_only(&["guard=12345"], 10);
}

/// An edit put back, of a function GCC also names `helper.localalias`
/// (-fno-semantic-interposition; C++ member functions under -fPIC): its
/// patch is taken back, not made again with the program's own code under
/// the other name, and said "patched" (a Snappy trial: status listed a
/// patch of a file identical to the build).
#[test]
fn an_edit_put_back_of_a_function_with_a_local_alias_is_taken_back() {
    let dir = tempfile::tempdir().unwrap();
    let source = "#include <stdio.h>\n#include <unistd.h>\n__attribute__((noinline)) int helper(int x) { return (x * 37) ^ 0x1234; }\nint (*volatile fp)(int) = helper;\nint main(void) { setvbuf(stdout, NULL, _IOLBF, 0); for (int i = 0;; i++) { printf(\"v %d %d\\n\", helper(i % 2), fp(i % 2)); usleep(3000); } }\n";
    let files = [("app.c", source)];
    let exe = build_files(
        dir.path(),
        &files,
        &["-O2", "-g", "-fPIC", "-fno-semantic-interposition"],
    );
    let relive = Path::new(env!("CARGO_BIN_EXE_relive"));
    let (target, events) = relive_testkit::relive_run(relive, &[], exe, &[], dir);
    target.wait_for("v 4660 4660");
    let p = target.dir.path().to_path_buf();
    let next = || loop {
        let e = events.recv_timeout(PATIENCE).expect("an event");
        if e["file"].as_str().is_some_and(|f| f.ends_with("/app.c")) {
            break e;
        }
    };
    std::fs::write(p.join("app.c"), source.replace("0x1234;", "0x1235;")).unwrap();
    let e = next();
    assert_eq!(e["event"], "patched", "{e}");
    // Under its own name, not the alias's.
    assert_eq!(e["functions"], serde_json::json!(["helper"]), "{e}");
    target.wait_for("v 4661 4661");
    std::fs::write(p.join("app.c"), source).unwrap();
    let e = next();
    assert_eq!(e["event"], "reverted", "{e}");
    assert_eq!(e["functions"], serde_json::json!([]), "nothing is patched again: {e}");
    assert_eq!(e["reverted"], serde_json::json!(["helper"]), "{e}");
    target.wait_for("v 4660 4660");
    let status = std::process::Command::new(relive)
        .args(["status", "--json", "--pid", &target.pid_arg()])
        .env("RELIVE_STATE_DIR", target.dir.path().join("state"))
        .output()
        .unwrap();
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status["patches"], serde_json::json!([]), "{status}");
}

/// A save refused for a layout change names the other edits it holds
/// back, and they come in with the next save that can be patched (an
/// LMDB trial: the refusal named only the struct, and an edit of another
/// function in the same save seemed lost).
#[test]
fn a_refused_save_names_the_edits_it_holds_back() {
    let dir = tempfile::tempdir().unwrap();
    let source = "#include <stdio.h>\n#include <unistd.h>\nstruct S { int a; char b; };\nstatic struct S g = {5, 2};\n__attribute__((noinline)) int use_s(struct S *s) { return s->a + s->b; }\n__attribute__((noinline, noipa)) int other(int x) { return x + 1; }\nint main(void) { setvbuf(stdout, NULL, _IOLBF, 0); for (int i = 0;; i++) { printf(\"v %d %d\\n\", use_s(&g), other(i % 2)); usleep(3000); } }\n";
    let files = [("app.c", source)];
    let exe = build_files(dir.path(), &files, &["-O2", "-g"]);
    let relive = Path::new(env!("CARGO_BIN_EXE_relive"));
    let (target, events) = relive_testkit::relive_run(relive, &[], exe, &[], dir);
    target.wait_for("v 7 2");
    let p = target.dir.path().to_path_buf();
    let next = || loop {
        let e = events.recv_timeout(PATIENCE).expect("an event");
        if e["file"].as_str().is_some_and(|f| f.ends_with("/app.c")) {
            break e;
        }
    };
    let other_edited = source.replace("return x + 1;", "return x + 100;");
    std::fs::write(
        p.join("app.c"),
        other_edited
            .replace("char b; };", "char b; char c; };")
            .replace("s->a + s->b;", "s->a + s->b + s->c;"),
    )
    .unwrap();
    let e = next();
    assert_eq!(e["event"], "refused", "{e}");
    let message = e["message"].as_str().unwrap();
    assert!(message.contains("struct S"), "{e}");
    assert!(message.contains("Nothing of this save was patched"), "{e}");
    assert!(message.contains("other"), "{e}");
    assert!(e["functions"].as_array().unwrap().iter().any(|f| f == "other"), "{e}");
    target.prints_only(&["v 7 1", "v 7 2"], 10);
    // The layout change undone: the held edit comes in.
    std::fs::write(p.join("app.c"), &other_edited).unwrap();
    let e = next();
    assert_eq!(e["event"], "patched", "{e}");
    target.wait_for("v 7 101");
}

/// A file whose function another command reverted, saved with a file
/// that does not compile: it is held, and says nothing of being "patched
/// again" (notes written for the patch were kept on the held event: an
/// LMDB trial's held event said "patched now").
#[test]
fn a_held_file_says_nothing_of_a_patch_that_did_not_happen() {
    let dir = tempfile::tempdir().unwrap();
    let files = [
        (
            "a.c",
            "#include <stdio.h>\n#include <unistd.h>\nint other(void);\n__attribute__((noinline)) int mine(void) { return 1; }\nint main(void) { setvbuf(stdout, NULL, _IOLBF, 0); for (;;) { printf(\"v %d %d\\n\", mine(), other()); usleep(3000); } }\n",
        ),
        ("b.c", "__attribute__((noinline)) int other(void) { return 10; }\n"),
    ];
    let exe = build_files(dir.path(), &files, &["-O2", "-g"]);
    let relive = Path::new(env!("CARGO_BIN_EXE_relive"));
    let (target, events) = relive_testkit::relive_run(relive, &[], exe, &[], dir);
    target.wait_for("v 1 10");
    let p = target.dir.path().to_path_buf();
    let next_for = |file: &str| loop {
        let e = events.recv_timeout(PATIENCE).expect("an event");
        if e["file"].as_str().is_some_and(|f| f.ends_with(file)) {
            break e;
        }
    };
    std::fs::write(p.join("a.c"), files[0].1.replace("return 1;", "return 2;")).unwrap();
    assert_eq!(next_for("/a.c")["event"], "patched");
    target.wait_for("v 2 10");
    revert_child(&target, "mine");
    target.wait_for("v 1 10");
    std::fs::write(p.join("b.c"), "int other(void) { return 10 }\n").unwrap();
    std::fs::write(p.join("a.c"), files[0].1.replace("return 1;", "return 3;")).unwrap();
    let e = next_for("/a.c");
    assert_eq!(e["event"], "held", "{e}");
    assert!(!e["notes"].to_string().contains("patched again"), "{e}");
    target.prints_only(&["v 1 10"], 5);
}

/// The program of the layout tests: `struct S { long a, b; }` (s.h),
/// `fill` and `other` (lib.c), and a `step` in main.c that puts an S
/// beside a guard on its stack and prints `other()` and the guard.
const LAYOUT_FILES: [(&str, &str); 3] = [
    ("s.h", "struct S { long a, b; };\nvoid fill(struct S *s);\nint other(void);\n"),
    (
        "lib.c",
        "#include \"s.h\"\nvoid fill(struct S *s) { s->a = 1; s->b = 2; }\n__attribute__((noinline)) int other(void) { return 1; }\n",
    ),
    (
        "main.c",
        "#include <stdio.h>\n#include <unistd.h>\n#include \"s.h\"\n__attribute__((noinline)) static void step(void) { struct { struct S s; long guard; } f; f.guard = 12345; fill(&f.s); printf(\"other=%d guard=%ld b=%ld\\n\", other(), f.guard, f.s.b); }\nint main(void) { setvbuf(stdout, NULL, _IOLBF, 0); for (;;) { step(); usleep(3000); } }\n",
    ),
];

/// The next event of `file` other than `no_change` (a save's compile may
/// first see the file as it was).
fn next_change_for(events: &std::sync::mpsc::Receiver<Value>, file: &str) -> Value {
    loop {
        let e = next_event_for(events, file);
        if e["event"] != "no_change" {
            return e;
        }
    }
}

/// `relive revert PID WHAT` on the program `relive run` started, in its
/// state directory, which must succeed.
fn revert_child(target: &Target, what: &str) {
    let out = Command::new(env!("CARGO_BIN_EXE_relive"))
        .args(["revert", &target.child_pid_arg(), what])
        .env("RELIVE_STATE_DIR", target.dir.path().join("state"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// The next event of `events` about the file ending in `file`.
fn next_event_for(events: &std::sync::mpsc::Receiver<Value>, file: &str) -> Value {
    loop {
        let e = events
            .recv_timeout(PATIENCE)
            .unwrap_or_else(|_| panic!("no event for {file}"));
        if e["file"].as_str().is_some_and(|f| f.ends_with(file)) {
            return e;
        }
    }
}

/// The layout is checked against the program as built, not the file's
/// last compile (a re-check bypassed the check twice, and the program's
/// guard read 77): the struct grows, another function of lib.c is
/// patched meanwhile (its compile becomes the baseline), and an edit that
/// writes the new field is still refused; the struct shrinks back to what
/// the program has, and an edit is patched again (it was refused, said to
/// change the layout).
#[test]
fn layouts_are_checked_against_the_program_as_built() {
    let (target, events) = run_files(&LAYOUT_FILES, &["-O2", "-g"]);
    target.wait_for("other=1 guard=12345 b=2");
    let p = target.dir.path().to_path_buf();
    let lib = LAYOUT_FILES[1].1;
    std::fs::write(p.join("s.h"), LAYOUT_FILES[0].1.replace("long a, b;", "long a, b, c;")).unwrap();
    next_event_for(&events, "/lib.c");
    std::fs::write(p.join("lib.c"), lib.replace("return 1;", "return 2;")).unwrap();
    assert_eq!(next_event_for(&events, "/lib.c")["event"], "patched");
    target.wait_for("other=2 guard=12345 b=2");
    std::fs::write(
        p.join("lib.c"),
        lib.replace("return 1;", "return 2;")
            .replace("s->b = 2;", "s->b = 2; s->c = 77;"),
    )
    .unwrap();
    let e = next_event_for(&events, "/lib.c");
    assert_eq!(e["event"], "refused", "{e}");
    assert!(e["message"].to_string().contains("struct S"), "{e}");
    target.prints_only(&["other=2 guard=12345 b=2"], 5);
    // Back to the layout the program has: an edit goes in.
    std::fs::write(p.join("s.h"), LAYOUT_FILES[0].1).unwrap();
    next_event_for(&events, "/lib.c");
    std::fs::write(
        p.join("lib.c"),
        lib.replace("return 1;", "return 2;").replace("s->b = 2;", "s->b = 5;"),
    )
    .unwrap();
    let e = next_event_for(&events, "/lib.c");
    assert_eq!(e["event"], "patched", "{e}");
    target.wait_for("other=2 guard=12345 b=5");
}

/// A struct grown before relive started: the start-up compiles agree with
/// the program's code (no function's code changed), and an edit writing
/// the new field is refused all the same.
#[test]
fn a_layout_changed_before_relive_started_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let exe = build_files(dir.path(), &LAYOUT_FILES, &["-O2", "-g"]);
    std::fs::write(
        dir.path().join("s.h"),
        LAYOUT_FILES[0].1.replace("long a, b;", "long a, b, c;"),
    )
    .unwrap();
    let relive = Path::new(env!("CARGO_BIN_EXE_relive"));
    let (target, events) = relive_testkit::relive_run(relive, &[], exe, &[], dir);
    target.wait_for("other=1 guard=12345 b=2");
    let p = target.dir.path().to_path_buf();
    std::fs::write(
        p.join("lib.c"),
        LAYOUT_FILES[1].1.replace("s->b = 2;", "s->b = 2; s->c = 77;"),
    )
    .unwrap();
    let e = next_event_for(&events, "/lib.c");
    assert_eq!(e["event"], "refused", "{e}");
    assert!(e["message"].to_string().contains("struct S"), "{e}");
    target.prints_only(&["other=1 guard=12345 b=2"], 5);
}

/// An array declared in a header by a macro's size (`extern char
/// gbuf2[GBUF]`), the macro grown: the defining file is refused (its
/// variable's size changed), and a file that only declares it must be too,
/// then and at its next save (a zlib re-check: saved alone, it went in, and
/// its `memset(gbuf2, it, sizeof gbuf2)` wrote 128 bytes over the
/// program's 64 and into the next global). A file that takes only its
/// `sizeof` (no debug entry names the array then) is held with them, and
/// saved alone later it still waits while they are refused (it went in,
/// and the program crashed: a re-check).
#[test]
fn a_declared_arrays_new_size_is_refused_in_the_file_that_uses_it() {
    let files: [(&str, &str); 5] = [
        (
            "d.h",
            "#define GBUF 64\nextern char gbuf2[GBUF];\nvoid touch(int it);\nint tag(void);\nunsigned long bufsize(void);\n",
        ),
        ("def.c", "#include \"d.h\"\nchar gbuf2[GBUF];\n"),
        (
            "use.c",
            "#include <string.h>\n#include \"d.h\"\n__attribute__((noinline)) void touch(int it) { memset(gbuf2, it, sizeof gbuf2); }\n__attribute__((noinline)) int tag(void) { return 1; }\n",
        ),
        // Its size only: no relocation names the array.
        ("sz.c", "#include \"d.h\"\n__attribute__((noinline)) unsigned long bufsize(void) { return sizeof gbuf2; }\n"),
        (
            "main.c",
            "#include <stdio.h>\n#include <unistd.h>\n#include \"d.h\"\nint main(void) { setvbuf(stdout, NULL, _IOLBF, 0); for (int i = 0;; i++) { touch(i & 127); printf(\"tag=%d size=%lu\\n\", tag(), bufsize()); usleep(3000); } }\n",
        ),
    ];
    let (target, events) = run_files(&files, &["-O2", "-g"]);
    target.wait_for("tag=1 size=64");
    let p = target.dir.path().to_path_buf();
    std::fs::write(p.join("d.h"), files[0].1.replace("GBUF 64", "GBUF 128")).unwrap();
    let mut first = std::collections::HashMap::new();
    while first.len() < 2 {
        let e = events.recv_timeout(PATIENCE).expect("an event for use.c and sz.c");
        let file = e["file"].as_str().unwrap_or_default().to_string();
        if file.ends_with("/use.c") || file.ends_with("/sz.c") {
            first.entry(file.rsplit('/').next().unwrap().to_string()).or_insert(e);
        }
    }
    refused_saying(
        &first["use.c"],
        "variable gbuf2: its type is char[128] here and char[64] in the program",
    );
    // Nothing in its debug information names the array: held with the
    // files refused.
    assert_eq!(first["sz.c"]["event"], "held", "{}", first["sz.c"]);
    // Saved alone later: still waiting, and refused (a file held with the
    // header's save went in then, and the program crashed: a re-check).
    std::fs::write(p.join("sz.c"), format!("{}/* edited */\n", files[3].1)).unwrap();
    let e = next_change_for(&events, "/sz.c");
    assert_eq!(e["event"], "held", "{e}");
    assert!(e["message"].to_string().contains("still refused"), "{e}");
    std::fs::write(p.join("use.c"), files[2].1.replace("return 1;", "return 2;")).unwrap();
    let e = next_event_for(&events, "/use.c");
    refused_saying(&e, "variable gbuf2");
    target.prints_only(&["tag=1 size=64"], 5);
}

/// Enumerators renumbered in a header: the program's data holds the old
/// values, and new code reading them with the new ones misreads every one
/// (a zlib re-check: `HEAD = 16180` became 16190, it was patched, and the
/// program's open inflate stream failed its check at once). Refused; an
/// enumerator added at the end renumbers nothing and is patched.
#[test]
fn renumbered_enumerators_are_refused_and_an_added_one_is_not() {
    let files: [(&str, &str); 4] = [
        (
            "m.h",
            "enum mode { HEAD = 10, BODY, DONE };\nstruct st { enum mode m; int n; };\nint step(struct st *s);\nint is_body(int m);\n",
        ),
        // The values as `int`s: no debug entry of the function names the
        // enumeration (a re-check: held, then patched saved alone).
        ("gr.c", "#include \"m.h\"\n__attribute__((noinline)) int is_body(int m) { return m == BODY; }\n"),
        (
            "lib.c",
            "#include \"m.h\"\n__attribute__((noinline)) int step(struct st *s) {\n    switch (s->m) { case HEAD: s->m = BODY; return 1; case BODY: s->m = DONE; return 2; default: s->m = HEAD; return 3; }\n}\n",
        ),
        (
            "main.c",
            "#include <stdio.h>\n#include <unistd.h>\n#include \"m.h\"\nstatic struct st state = { HEAD, 0 };\nint main(void) { setvbuf(stdout, NULL, _IOLBF, 0); for (;;) { printf(\"step=%d body=%d\\n\", step(&state), is_body(state.m)); usleep(3000); } }\n",
        ),
    ];
    let (target, events) = run_files(&files, &["-O2", "-g"]);
    target.wait_for("step=3 body=0");
    let p = target.dir.path().to_path_buf();
    // Added at the end, and used.
    let header = files[0].1.replace("DONE };", "DONE, EXTRA };");
    std::fs::write(p.join("m.h"), &header).unwrap();
    let lib = files[2]
        .1
        .replace("default:", "case EXTRA: return 9; default:")
        .replace("return 3;", "return 4;");
    std::fs::write(p.join("lib.c"), &lib).unwrap();
    let e = next_change_for(&events, "/lib.c");
    assert_eq!(e["event"], "patched", "{e}");
    target.wait_for("step=4 body=0");
    // Renumbered.
    std::fs::write(p.join("m.h"), header.replace("HEAD = 10", "HEAD = 20")).unwrap();
    let mut first = std::collections::HashMap::new();
    while first.len() < 2 {
        let e = events.recv_timeout(PATIENCE).expect("an event for lib.c and gr.c");
        let file = e["file"].as_str().unwrap_or_default().to_string();
        if file.ends_with("/lib.c") || file.ends_with("/gr.c") {
            first.entry(file.rsplit('/').next().unwrap().to_string()).or_insert(e);
        }
    }
    refused_saying(
        &first["lib.c"],
        "enum mode: HEAD changed value from 10 to 20, BODY changed value from 11 to 21",
    );
    refused_saying(&first["gr.c"], "enum mode: HEAD changed value from 10 to 20");
    // (`is_body` reads the state before `step` moves it on.)
    target.prints_only(&["step=1 body=0", "step=2 body=1", "step=4 body=0"], 9);
}

/// An enumeration with no name (`enum { SLOT_X, SLOT_Y, SLOT_Z };`)
/// renumbered by one inserted first: known by its enumerators, it is
/// refused as a named one is (it went in, and the program's `g_slot`,
/// holding the old `SLOT_Y`, read as another: a re-check).
#[test]
fn an_anonymous_enumerations_renumbering_is_refused() {
    const APP: &str = r#"#include <stdio.h>
#include <unistd.h>
enum { SLOT_X, SLOT_Y, SLOT_Z };
int g_slot = SLOT_Y;
__attribute__((noinline)) int slot_y(int s) { return s == SLOT_Y ? 100 : 200 + s; }
int main(void) { setvbuf(stdout, NULL, _IOLBF, 0); for (;;) { printf("sy=%d\n", slot_y(g_slot)); usleep(3000); } }
"#;
    let mut s = Session::start(APP, &["-O2", "-g"]);
    s.target.wait_for("sy=100");
    let e = s.save_with(&[("enum { SLOT_X,", "enum { SLOT_W, SLOT_X,")]);
    refused_saying(&e, "enumerator SLOT_Y: SLOT_Y changed value from 1 to 2");
    s.target.prints_only(&["sy=100"], 10);
}

/// A struct grown, and a function writing the new field, before `relive
/// watch` attached: the catch-up of that edit is refused, as a save of it
/// would be. It was patched (a zlib re-check: the program's open
/// `gz_state` had the old layout, and it crashed in `free`); here the
/// guard after the program's struct would read 77.
#[test]
fn a_catch_up_that_changes_a_layout_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let exe = build_files(dir.path(), &LAYOUT_FILES, &["-O2", "-g"]);
    // The build's commands, recorded: an edit is told from other flags.
    let db: Vec<Value> = ["lib.c", "main.c"]
        .iter()
        .map(|file| serde_json::json!({ "directory": dir.path(), "file": file, "command": format!("gcc -O2 -g -c {file}") }))
        .collect();
    std::fs::write(dir.path().join("compile_commands.json"), Value::from(db).to_string()).unwrap();
    // Built before the edits below (of a session that ended).
    built_a_minute_ago(&exe);
    let target = Target::spawn(Command::new(&exe), exe.clone(), dir);
    target.wait_for("other=1 guard=12345 b=2");
    let p = target.dir.path().to_path_buf();
    std::fs::write(p.join("s.h"), LAYOUT_FILES[0].1.replace("long a, b;", "long a, b, c;")).unwrap();
    std::fs::write(
        p.join("lib.c"),
        LAYOUT_FILES[1].1.replace("s->b = 2;", "s->b = 2; s->c = 77;"),
    )
    .unwrap();
    let (mut watch, lines) = watch_json_started(&target);
    let e = lines
        .map(|line| serde_json::from_str::<Value>(&line).unwrap())
        .find(|e| e["file"].as_str().is_some_and(|f| f.ends_with("/lib.c")) && e["event"] != "baseline")
        .expect("an event for lib.c");
    refused_saying(&e, "struct S");
    target.prints_only(&["other=1 guard=12345 b=2"], 5);
    let _ = watch.kill();
    let _ = watch.wait();
}

/// A catch-up refused (a function storing its own labels' addresses,
/// edited before relive attached) says a restart needs a rebuild, and a
/// save of the file as the build has it undoes it: said so, and the next
/// edit of another function is patched. The save put back was diffed
/// against the refused edit's compile, and refused again, for good, with
/// every later edit of the file (an Oniguruma trial's `match_at`).
#[test]
fn a_refused_catch_up_undone_by_a_save_frees_the_file() {
    const APP: &str = r#"#include <stdio.h>
#include <unistd.h>
void *where;
__attribute__((noinline)) int run(int n) {
    int acc = 0;
    where = &&add;
    goto *where;
add: acc += n;
    where = &&sub;
    goto *where;
sub: acc -= 1;
    return acc;
}
__attribute__((noinline)) int other(int x) { return x + 1; }
int main(void) { setvbuf(stdout, NULL, _IOLBF, 0); for (int i = 0;; i++) { printf("v %d %d\n", run(10), other(i % 2)); usleep(3000); } }
"#;
    let dir = tempfile::tempdir().unwrap();
    let exe = build_files(dir.path(), &[("app.c", APP)], &["-O2", "-g"]);
    let db = serde_json::json!([{ "directory": dir.path(), "file": "app.c", "command": "gcc -O2 -g -c app.c" }]);
    std::fs::write(dir.path().join("compile_commands.json"), db.to_string()).unwrap();
    built_a_minute_ago(&exe);
    let target = Target::spawn(Command::new(&exe), exe.clone(), dir);
    target.wait_for("v 9 2");
    let p = target.dir.path().to_path_buf();
    std::fs::write(p.join("app.c"), APP.replace("acc -= 1;", "acc -= 2;")).unwrap();
    let (mut watch, lines) = watch_json_started(&target);
    let mut events = lines
        .map(|line| serde_json::from_str::<Value>(&line).unwrap())
        .filter(|e| e["file"].as_str().is_some_and(|f| f.ends_with("/app.c")) && e["event"] != "baseline");
    let e = events.next().expect("the catch-up's event");
    refused_saying(&e, "run takes the addresses of its own labels");
    refused_saying(&e, "rebuild the program before a restart");
    target.prints_only(&["v 9 1", "v 9 2"], 5);
    // Saved as the build has it: nothing to patch, the catch-up undone.
    std::fs::write(p.join("app.c"), APP).unwrap();
    let e = events.next().expect("the put-back's event");
    assert_eq!(e["event"], "no_change", "{e}");
    assert!(
        e["notes"].to_string().contains("run is what the program runs again"),
        "{e}"
    );
    std::fs::write(p.join("app.c"), APP.replace("return x + 1;", "return x + 100;")).unwrap();
    let e = events.next().expect("the next edit's event");
    assert_eq!(e["event"], "patched", "{e}");
    target.wait_for("v 9 101");
    let _ = watch.kill();
    let _ = watch.wait();
}

/// S22: a header edit recompiles and patches every unit that includes it.
#[test]
fn a_header_edit_reloads_every_unit_that_uses_it() {
    const HEADER: &str = "#define FACTOR 2\n";
    const APP: &str = r#"
#include <stdio.h>
#include <unistd.h>
#include "shared.h"
int other(int);
__attribute__((noinline, noipa)) int mine(int x) { return x * FACTOR; }
int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (;;) { printf("mine %d other %d\n", mine(10), other(100)); usleep(3000); }
}
"#;
    const OTHER: &str =
        "#include \"shared.h\"\n__attribute__((noinline, noipa)) int other(int x) { return x * FACTOR; }\n";
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("shared.h"), HEADER).unwrap();
    std::fs::write(dir.path().join("other.c"), OTHER).unwrap();
    std::fs::write(dir.path().join("app.c"), APP).unwrap();
    let exe = dir.path().join("app");
    let built = Command::new("gcc")
        .args(["-O0", "-g", "-o"])
        .arg(&exe)
        .args(["app.c", "other.c"])
        .current_dir(dir.path())
        .status()
        .unwrap();
    assert!(built.success());
    let (target, mut events) = run_json(exe, dir);
    let ready: Value = serde_json::from_str(&events.next().unwrap()).unwrap();
    assert_eq!(
        ready["files"].as_array().unwrap().len(),
        2,
        "both units found in the DWARF: {ready}"
    );
    target.wait_for("mine 20 other 200");
    std::fs::write(target.dir.path().join("shared.h"), "#define FACTOR 3\n").unwrap();
    let mut patched = Vec::new();
    while patched.len() < 2 {
        let e: Value = serde_json::from_str(&events.next().unwrap()).unwrap();
        assert_eq!(e["event"], "patched", "{e}");
        patched.push(e["file"].as_str().unwrap().rsplit('/').next().unwrap().to_string());
    }
    patched.sort();
    assert_eq!(patched, ["app.c", "other.c"]);
    target.wait_for("mine 30 other 300");
}

/// S25: the core scenarios (S1 same-size change, S2 a body that grows, S5
/// a global's state kept, S8 a new function, S11 calls into libc) through
/// `relive run` for gcc and clang at -O0, -O2 and -Os, PIE and non-PIE.
/// The program is built by the compiler under test, so the reload uses the
/// compiler and flags its DWARF records.
fn core_scenarios_with(cc: &str) {
    const CORE: &str = relive_testkit::VALUE_PROGRAM;
    for level in ["-O0", "-O2", "-Os"] {
        for pie in [&["-fpie", "-pie"][..], &["-fno-pie", "-no-pie"][..]] {
            let flags: Vec<&str> = [level, "-g"].iter().chain(pie).copied().collect();
            let mut s = Session::start_built(cc, CORE, &flags, &[], &[]);
            let before: i64 = s.target.wait_for_prefix("value 1 counter ").parse().unwrap();
            // S1.
            s.edit("return one;", "return one + 1;");
            let e = s.event();
            assert_eq!(e["event"], "patched", "{cc} {flags:?}: {e}");
            s.target.wait_for_prefix("value 2 counter ");
            // S2 + S8 + S11: value grows and calls a new function that
            // calls strlen and printf.
            s.edit(
                "__attribute__((noinline)) int value(void) { return one + 1; }",
                "__attribute__((noinline)) int helper(int x) { printf(\"helper %d\\n\", x); return x * 100 + (int)strlen(word); }\n\
                 __attribute__((noinline)) int value(void) { volatile int a[16]; int t = 0; for (int i = 0; i < 16; i++) { a[i] = i; t += a[i]; } return helper(t + one); }",
            );
            let e = s.event();
            assert_eq!(e["event"], "patched", "{cc} {flags:?}: {e}");
            s.target.wait_for("helper 121");
            // S5: the counter kept counting.
            let after: i64 = s.target.wait_for_prefix("value 12104 counter ").parse().unwrap();
            assert!(after > before, "{cc} {flags:?}: counter {after} after {before}");
        }
    }
}

#[test]
fn core_scenarios_with_gcc() {
    core_scenarios_with("gcc");
}

#[test]
fn core_scenarios_with_clang() {
    core_scenarios_with("clang");
}

/// A program that writes a file next to its sources non-stop (a log):
/// those events are not edits and do not hold a reload back.
#[test]
fn a_busy_file_beside_the_source_does_not_delay_reloads() {
    const LOGGER: &str = r#"
#include <stdio.h>
#include <unistd.h>
__attribute__((noinline, noipa)) int value(void) { return 1; }
int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    FILE *log = fopen("app.log", "w");
    for (;;) { printf("value %d\n", value()); fprintf(log, "tick\n"); fflush(log); usleep(1000); }
}
"#;
    let mut s = Session::start(LOGGER, &["-O0", "-g"]);
    s.target.wait_for("value 1");
    s.edit("return 1;", "return 2;");
    assert_eq!(s.event()["event"], "patched");
    s.target.wait_for("value 2");
}

/// A program that `dlopen`s `./libplug.so` and prints `plug N` with
/// what its `plug_value()` returns, again and again.
const DLOPENS_PLUG: &str = r#"
#include <dlfcn.h>
#include <stdio.h>
#include <unistd.h>
int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    void *lib = dlopen("./libplug.so", RTLD_NOW);
    if (!lib) { printf("dlopen: %s\n", dlerror()); return 1; }
    int (*plug)(void) = (int (*)(void))dlsym(lib, "plug_value");
    for (;;) { printf("plug %d\n", plug()); usleep(3000); }
}
"#;

/// [`DLOPENS_PLUG`] with `libplug.so` built at `level` from `files`
/// (name, text) in a new directory, under `relive run --json` watching
/// those files: the program and relive's events (the first, `watching`,
/// read).
fn run_with_plug(level: &str, files: &[(&str, &str)]) -> (Target, Box<dyn Iterator<Item = String>>) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().to_path_buf();
    for (name, text) in files {
        std::fs::write(p.join(name), text).unwrap();
    }
    let built = Command::new("gcc")
        .args([level, "-g", "-fPIC", "-shared", "-o", "libplug.so"])
        .args(files.iter().map(|(name, _)| name))
        .current_dir(&p)
        .status()
        .unwrap();
    assert!(built.success());
    let exe = relive_testkit::compile(&p, "app", DLOPENS_PLUG, &[level, "-g"]);
    let cc = format!("gcc {level} -g -fPIC");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_relive"));
    cmd.args(["run", "--json"]);
    for (name, _) in files {
        cmd.args(["--watch", name]);
    }
    cmd.args(["--cc", &cc, "--"])
        .arg(&exe)
        .current_dir(&p)
        .env("RELIVE_STATE_DIR", p.join("state"))
        .stderr(Stdio::piped());
    let mut target = Target::spawn(cmd, exe, dir);
    let mut events = event_lines(target.child.stderr.take().unwrap());
    // The library is not loaded yet: its files are said to have nothing
    // in the program to compare with, then relive watches.
    let first = events.next().unwrap();
    let first = match first.contains("\"status\":\"absent\"") {
        true => {
            assert!(first.contains("loads later"), "{first}");
            events.find(|e| !e.contains("\"status\":\"absent\"")).unwrap()
        }
        false => first,
    };
    assert!(first.contains("watching"), "{first}");
    (target, events)
}

/// S13: a function in a library the program `dlopen`s is patched: the new
/// code goes near the library (its statics are within rel32 reach) and
/// the library's static keeps counting. The function pointer the program
/// got from `dlsym` before the patch reaches the new code.
#[test]
fn a_function_in_a_dlopened_library_is_patched() {
    const PLUG: &str = "static int calls;\nint plug_value(void) { calls++; return 1 * 1000000 + calls; }\n";
    for level in ["-O0", "-O2"] {
        let (target, mut events) = run_with_plug(level, &[("plug.c", PLUG)]);
        let plug = target.dir.path().join("plug.c");
        let before: i64 = target.wait_for_prefix("plug 1").parse().unwrap();
        std::fs::write(&plug, PLUG.replace("1 * 1000000", "2 * 1000000")).unwrap();
        let e: Value = serde_json::from_str(&events.next().unwrap()).unwrap();
        assert_eq!(e["event"], "patched", "{level}: {e}");
        assert_eq!(e["functions"], serde_json::json!(["plug_value"]));
        // The library's static kept its count.
        let after: i64 = target.wait_for_prefix("plug 2").parse().unwrap();
        assert!(after > before, "{level}: calls {after} after {before}");
    }
}

/// Two files of a library saved together, one adding a function the other
/// now calls: the file that only adds code goes near the library, where
/// its file's other functions are, like the other's. It went near the
/// program (the place for code that replaces nothing), and the step was
/// refused as changing two modules at once (a jq trial: `jv.c` and
/// `builtin.c` of libjq.so), at every later save too.
#[test]
fn a_library_file_that_only_adds_a_function_goes_in_with_its_caller() {
    const PLUG: &str = "int wrap_base(int);\nstatic int calls;\nint plug_value(void) { calls++; return wrap_base(1000000 + calls); }\n";
    const WRAP: &str = "int wrap_base(int x) { return x; }\n";
    let (target, mut events) = run_with_plug("-O2", &[("plug.c", PLUG), ("wrap.c", WRAP)]);
    let p = target.dir.path().to_path_buf();
    let before: i64 = target.wait_for_prefix("plug 1").parse().unwrap();
    // The caller first: it waits for the function it calls.
    std::fs::write(
        p.join("plug.c"),
        PLUG.replace("int wrap_base(int);", "int plug_wrap(int);")
            .replace("wrap_base(1000000", "plug_wrap(1000000"),
    )
    .unwrap();
    let held: Value = serde_json::from_str(&events.next().unwrap()).unwrap();
    assert_eq!(held["event"], "held", "{held}");
    std::fs::write(
        p.join("wrap.c"),
        format!("{WRAP}int plug_wrap(int x) {{ return x + 6000000; }}\n"),
    )
    .unwrap();
    let mut patched = Vec::new();
    while patched.len() < 2 {
        let e: Value = serde_json::from_str(&events.next().unwrap()).unwrap();
        assert_eq!(e["event"], "patched", "{e}");
        patched.push(e);
    }
    // The new function runs (7,000,000 and the count), and the library's
    // static kept its count.
    let after: i64 = target.wait_for_prefix("plug 7").parse().unwrap();
    assert!(after > before, "calls {after} after {before}");
    // The added function edited alone: it lives in a pool, near the
    // library, and its new code goes there too (near the program, its
    // slot beside the library was out of the jump's reach).
    std::fs::write(
        p.join("wrap.c"),
        format!("{WRAP}int plug_wrap(int x) {{ return x + 8000000; }}\n"),
    )
    .unwrap();
    let e: Value = serde_json::from_str(&events.next().unwrap()).unwrap();
    assert_eq!(e["event"], "patched", "{e}");
    let later: i64 = target.wait_for_prefix("plug 9").parse().unwrap();
    assert!(later > after, "calls {later} after {after}");
}

/// `relive watch --pid`: the same loop for a program already running;
/// it ends (status 0) when the program does.
#[test]
fn watch_attaches_to_a_running_program() {
    let target = Target::start_c(APP, &["-O2", "-g"]);
    target.wait_for_prefix("value 1 ");
    let session = watch_json(&target);
    edit_under_watch(target, session, &APP.replace("return 1;", "return 5;"), "value 5 ");
}

// A two-file C++ program under plain `relive run`: tests/cxx_run.rs.

/// `--json` is JSON to the end, with whole numbers: a program killed by a
/// signal gives an `exited` event (`ms_since_last_reload` an integer or
/// null), and relive stopped by SIGINT gives a `stopped` event saying
/// whether the program still runs (it printed a text line, and said the
/// patches stay applied when the same Ctrl-C had ended the program).
#[test]
fn json_sessions_end_in_json() {
    const CRASHER: &str = r#"
#include <signal.h>
#include <stdio.h>
#include <unistd.h>
int main(void) { setvbuf(stdout, NULL, _IOLBF, 0); printf("up\n"); usleep(300000); raise(SIGSEGV); return 0; }
"#;
    let s = Session::start(CRASHER, &["-O0", "-g"]);
    let exited = loop {
        let e = s.event();
        if e["event"] == "exited" {
            break e;
        }
    };
    assert_eq!(exited["signal"], 11, "{exited}");
    assert!(exited["ms_since_last_reload"].is_null(), "{exited}");

    let (stopped, code) = relive_run_ended_by(nix::sys::signal::Signal::SIGINT);
    assert_eq!(stopped["program_running"], true, "{stopped}");
    assert_eq!(code, Some(130));
}

/// `relive run` (of a program that goes on) sent `signal`: its `stopped`
/// event (checked to name the signal) and relive's exit code. The program
/// outlives relive and is ended here.
fn relive_run_ended_by(signal: nix::sys::signal::Signal) -> (Value, Option<i32>) {
    let mut s = Session::start(APP, &["-O0", "-g"]);
    s.target.wait_for_prefix("value 1 ");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(s.target.child.id() as i32), signal).unwrap();
    let stopped = s.event();
    assert_eq!(stopped["event"], "stopped", "{stopped}");
    assert_eq!(stopped["signal"], signal as i32, "{stopped}");
    let pid = stopped["pid"].as_u64().unwrap() as i32;
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
    (stopped, s.target.child.wait().unwrap().code())
}

/// relive ended by SIGTERM exits 143, as a program the signal ended (the
/// shell's 128 + 15), after saying it stopped: it exited 130, as for
/// Ctrl-C.
#[test]
fn sigterm_ends_relive_run_with_143() {
    let (stopped, code) = relive_run_ended_by(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(code, Some(143));
    // Nothing was edited, so nothing "stays applied".
    assert_eq!(stopped["patched"], false, "{stopped}");
}

/// The program file rebuilt on disk while `relive run` watches it
/// (`/proc/PID/maps` then names it `PATH (deleted)`): the next edit is
/// still found reachable from the running code and reported "patched" (it
/// said NOT REACHABLE, reading no code of the program).
#[test]
fn a_program_rebuilt_on_disk_is_still_searched_for_callers() {
    let mut s = Session::start(APP, &["-O2", "-g"]);
    s.target.wait_for_prefix("value 1 ");
    s.edit("return 1;", "return 2;");
    let e = s.event();
    assert_eq!(e["event"], "patched", "{e}");
    s.target.wait_for_prefix("value 2 ");
    // A rebuild: a new file renamed over the program's path.
    let dir = s.source.parent().unwrap().to_path_buf();
    let out = Command::new("gcc")
        .args(["-O2", "-g", "-o", "app.rebuilt", "app.c"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    std::fs::rename(dir.join("app.rebuilt"), dir.join("app")).unwrap();
    s.edit("return 2;", "return 3;");
    let e = s.event();
    assert_eq!(e["event"], "patched", "{e}");
    s.target.wait_for_prefix("value 3 ");
}

/// A program built without debug information: an edit that moves a field
/// of a struct the program's data has is refused, as with `-g`, since
/// relive's own compiles carry the types. Before, it was patched unchecked
/// and the new code read the old data at the new offsets (a user's trial
/// on Lua crashed that way).
#[test]
fn a_moved_field_is_refused_in_a_build_without_debug_information() {
    const PAIR: &str = r#"
#include <stdio.h>
#include <unistd.h>
struct pair { long a; long b; };
static struct pair live = {1, 100};
__attribute__((noinline, noipa)) long get(struct pair *p) { return p->a * 1000 + p->b; }
int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (;;) { printf("v %ld\n", get(&live)); usleep(3000); }
}
"#;
    let mut s = Session::start_with(PAIR, &["-O2"], &["--cc", "gcc -O2", "--watch", "app.c"], &[]);
    s.target.wait_for("v 1100");
    s.edit("struct pair { long a; long b; };", "struct pair { long b; long a; };");
    let (e, _) = next_change(&s);
    assert_eq!(e["event"], "refused", "{e}");
    let message = e["message"].as_str().unwrap_or_default();
    assert!(message.contains("struct pair"), "{e}");
    // The program runs on as it was.
    s.target.wait_for("v 1100");
}

/// A compile command at another optimisation level than the one the
/// program's debug info records (a wrong `--cc`), and a source saved after
/// the build but not edited: the difference is the command's, not an edit,
/// and is said so; nothing is patched. Before, every function was taken as
/// edited and relive tried to patch them all (a user's trial on snappy).
#[test]
fn a_compile_command_at_another_level_than_the_build_is_not_taken_for_an_edit() {
    let dir = tempfile::tempdir().unwrap();
    let exe = relive_testkit::compile_with("gcc", dir.path(), "app", APP, &["-O2", "-g"]);
    // Saved again, unchanged, after the build.
    std::thread::sleep(std::time::Duration::from_millis(20));
    let source = dir.path().join("app.c");
    std::fs::write(&source, APP).unwrap();
    let (target, events, start) = started_with_cc("gcc -O1 -g", exe, dir);
    let differs = baseline_of_status(&start, "command_differs");
    let message = differs["message"].as_str().unwrap();
    assert!(message.contains("-O1") && message.contains("-O2"), "{message}");
    assert!(
        start.iter().all(|e| e["status"] != "edited" && e["event"] != "patched"),
        "{start:#?}"
    );
    target.wait_for_prefix("value 1 ");
    // An edit then is refused for what is known, not for missing -D/-I
    // options (which it said after the warning).
    std::fs::write(&source, APP.replace("return 1;", "return 2;")).unwrap();
    let refused = relive_testkit::events_until(&events, "refused").pop().unwrap();
    let message = refused["message"].as_str().unwrap();
    assert!(
        message.contains("with -O1") && message.contains("built with -O2") && !message.contains("-D/-I"),
        "{message}"
    );
    target.wait_for_prefix("value 1 ");
}

/// A program without debug information and no `--watch`: relive says
/// there is nothing to watch before the program starts. It started it
/// first, and the program ran (its children orphaned) until relive gave up
/// (a user's trial on Lua).
#[test]
fn nothing_to_watch_is_said_before_the_program_runs() {
    let dir = tempfile::tempdir().unwrap();
    let source =
        "#include <stdio.h>\nint main(void) { FILE *f = fopen(\"ran\", \"w\"); if (f) fclose(f); return 0; }\n";
    let exe = relive_testkit::compile(dir.path(), "app", source, &["-O2"]);
    let out = Command::new(env!("CARGO_BIN_EXE_relive"))
        .args(["run", "--"])
        .arg(&exe)
        .current_dir(dir.path())
        .env("RELIVE_STATE_DIR", dir.path().join("state"))
        .output()
        .unwrap();
    let message = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{message}");
    assert!(
        message.contains("no C or C++ sources to watch") && message.contains("--watch"),
        "{message}"
    );
    assert!(!dir.path().join("ran").exists(), "the program ran: {message}");
}

/// A function other files may call, removed from its file: the program
/// keeps the old code (a patch takes nothing out), which is said. Then the
/// whole file emptied: not compiled (an editor's save in progress looks
/// so), which is said too. Both printed nothing at all (a user's trial on
/// bzip2).
#[test]
fn a_removed_function_is_said_to_stay() {
    const TWO: &str = r#"
#include <stdio.h>
#include <unistd.h>
__attribute__((noinline, noipa)) int spare(int x) { return x + 7; }
__attribute__((noinline, noipa)) int value(void) { return 1; }
int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (;;) { printf("value %d\n", value()); usleep(3000); }
}
"#;
    let mut s = Session::start(TWO, &["-O2", "-g"]);
    s.target.wait_for_prefix("value 1");
    s.edit(
        "__attribute__((noinline, noipa)) int spare(int x) { return x + 7; }\n",
        "",
    );
    let e = s.event();
    assert_eq!(e["event"], "no_change", "{e}");
    let notes = e["notes"].to_string();
    // Said as a condition: whether another file still calls it is not
    // known (a snappy trial's callers, all patched, read as still calling
    // it).
    assert!(
        notes.contains("spare is no longer in")
            && notes.contains("keeps its old code, which any caller still calling it by that name in another file"),
        "{e}"
    );
    s.edit(&s.text.clone(), "");
    let e = s.event();
    // Not "no function changed": the file did change (a QuickJS trial's
    // editor truncated, then wrote).
    assert_eq!(e["event"], "not_compiled", "{e}");
    assert!(
        e["message"]
            .to_string()
            .contains("the file is empty, taken for a save still being written: not compiled"),
        "{e}"
    );
    s.target.wait_for_prefix("value 1");
}

/// A string of a table of pointers (`static const char *const names[]`)
/// edited before relive started: the table's bytes are all relocated, so
/// it compared as what runs, and the edit never reached the program (a
/// save said "no function changed"). Now the function that reads it
/// differs, and the start-up patches it in.
#[test]
fn an_edited_string_of_a_pointer_table_is_caught_up() {
    const NAMES: &str = r#"
#include <stdio.h>
#include <unistd.h>
static const char *const names[4] = {"zero", "one", "two", "three"};
__attribute__((noinline)) const char *name(int i) { return names[i & 3]; }
int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (int i = 0;; i++) { printf("%d %s\n", i & 3, name(i)); usleep(3000); }
}
"#;
    let dir = tempfile::tempdir().unwrap();
    let exe = relive_testkit::compile_with("gcc", dir.path(), "app", NAMES, &["-O2", "-g"]);
    std::thread::sleep(std::time::Duration::from_millis(20));
    std::fs::write(dir.path().join("app.c"), NAMES.replace("\"zero\"", "\"ZERO\"")).unwrap();
    // The build's command, known: a difference is an edit.
    let (target, _events, start) = started_with_cc("gcc -O2 -g", exe, dir);
    let edited = baseline_of_status(&start, "edited");
    assert_eq!(edited["functions"], serde_json::json!(["name"]), "{edited}");
    target.wait_for("0 ZERO");
}

/// `relive run --json --cc CC` of `exe` (built in `dir`): the program,
/// relive's events, and those of its start-up up to "watching".
fn started_with_cc(cc: &str, exe: std::path::PathBuf, dir: tempfile::TempDir) -> (Target, Receiver<Value>, Vec<Value>) {
    let relive = Path::new(env!("CARGO_BIN_EXE_relive"));
    let (target, events) = relive_testkit::relive_run_starting(relive, &["--cc", cc], exe, &[], dir);
    let start = relive_testkit::events_until(&events, "watching");
    (target, events, start)
}

/// The start-up's baseline event of `status`.
fn baseline_of_status<'a>(start: &'a [Value], status: &str) -> &'a Value {
    start
        .iter()
        .find(|e| e["status"] == status)
        .unwrap_or_else(|| panic!("no {status} baseline: {start:#?}"))
}

/// A header edited before relive started (only the header: no `.c`
/// file is newer than the program): the start-up names the header as
/// the edit, not the file that includes it (a Lua trial: "lobject.c was
/// edited after the program was built" of an edit to luaconf.h), and
/// catches the program up.
#[test]
fn a_header_edited_before_the_start_is_named_as_the_edit() {
    const APP: &str = r#"
#include <stdio.h>
#include <unistd.h>
#include "k.h"
__attribute__((noinline)) int scaled(int x) {
    int y = x * K;
    if (y > 1000) printf("large\n");
    return y;
}
int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (int i = 0;; i++) { printf("%d -> %d\n", i & 3, scaled(i & 3)); usleep(3000); }
}
"#;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("k.h"), "#define K 3\n").unwrap();
    let exe = relive_testkit::compile_with("gcc", dir.path(), "app", APP, &["-O2", "-g"]);
    std::thread::sleep(std::time::Duration::from_millis(20));
    std::fs::write(dir.path().join("k.h"), "#define K 4\n").unwrap();
    let (target, _events, start) = started_with_cc("gcc -O2 -g", exe, dir);
    let edited = baseline_of_status(&start, "edited");
    let files: Vec<&str> = edited["edited_files"]
        .as_array()
        .unwrap_or_else(|| panic!("{edited}"))
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    assert!(matches!(files.as_slice(), [h] if h.ends_with("/k.h")), "{edited}");
    target.wait_for("3 -> 12");
}

/// Two functions whose sum the program prints.
const TWO: &str = r#"
#include <stdio.h>
#include <unistd.h>
__attribute__((noinline, noipa)) int first(void) { return 1; }
__attribute__((noinline, noipa)) int second(void) { return 10; }
int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (;;) { printf("sum %d\n", first() + second()); usleep(3000); }
}
"#;

impl Session {
    /// [`SIGNATURE`]'s `scale` patched to multiply by 4 by a one-shot
    /// command, from that edit compiled as `app.c` in another directory
    /// (the session's file stays as it was): the event the session said.
    fn scale_times_four_elsewhere(&self) -> Value {
        let elsewhere = self.target.dir.path().join("elsewhere");
        std::fs::create_dir_all(&elsewhere).unwrap();
        let four = SIGNATURE.replace("return x * 2;", "return x * 4;");
        let four = common::compile(&elsewhere, "gcc", "app.c", "four.o", &four, &["-O2", "-g"]);
        self.beside(&["patch", &four, "--only", "scale"]);
        self.target.wait_for("value 20");
        let e = self.event();
        assert_eq!(e["event"], "changed_elsewhere", "{e}");
        e
    }

    /// Another relive command on the session's program (relive's child),
    /// as from another terminal; it must succeed.
    fn beside(&self, args: &[&str]) {
        let out = self.beside_output(args);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }

    /// [`Session::beside`], whatever it ends with.
    fn beside_output(&self, args: &[&str]) -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_relive"))
            .arg(args[0])
            .arg(self.target.child_pid_arg())
            .args(&args[1..])
            .env("RELIVE_STATE_DIR", self.target.dir.path().join("state"))
            .output()
            .unwrap()
    }
}

const SIGNATURE: &str = r#"
#include <stdio.h>
#include <unistd.h>
__attribute__((noinline, noipa)) int scale(int x) { return x * 2; }
__attribute__((noinline, noipa)) int value(void) { return scale(5); }
int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (;;) { printf("value %d\n", value()); usleep(3000); }
}
"#;

/// Found by a new-user trial on Lua: a global function's signature
/// changed with its callers (one step), then `relive revert PID caller`
/// put back the caller's original code, which called the patched callee
/// with the old arguments: the program printed what no build of the
/// sources does, and relive said "reverted". Reverting either alone is
/// refused naming the other; both together go back to the original.
#[test]
fn a_revert_that_would_split_a_signature_change_is_refused() {
    let mut s = Session::start(SIGNATURE, &["-O2", "-g"]);
    s.target.wait_for("value 10");
    let e = s.patched_by(
        "int scale(int x) { return x * 2; }\n__attribute__((noinline, noipa)) int value(void) { return scale(5); }",
        "int scale(int x, int y) { return x * y; }\n__attribute__((noinline, noipa)) int value(void) { return scale(5, 3); }",
    );
    assert_eq!(e["functions"], serde_json::json!(["scale", "value"]), "{e}");
    s.target.wait_for("value 15");
    // The caller patched again, alone (a body edit): still one change
    // with the callee's (a re-check on Lua reverted it alone then).
    let e = s.patched_by("scale(5, 3);", "scale(5, 4);");
    assert_eq!(e["functions"], serde_json::json!(["value"]), "{e}");
    s.target.wait_for("value 20");
    for (alone, other) in [("value", "scale"), ("scale", "value")] {
        let out = s.beside_output(&["revert", alone]);
        let message = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{alone} reverted alone: {message}");
        assert!(
            message.contains(other)
                && message.contains("were patched in one change")
                && message.contains("revert them together")
                && message.contains("nothing was reverted"),
            "{message}"
        );
        s.target.wait_for("value 20");
    }
    s.beside(&["revert", "value", "scale"]);
    s.target.wait_for("value 10");
}

/// A caller and its callee edited in one save, neither signature changed
/// (both compiles' DWARF and the program's own say so): either one
/// reverted by name alone runs beside the other's patched code, which
/// calls it, or is called, the way it expects. Two trials (SQLite, Lua)
/// were refused such a revert and told to revert 9 and 80 functions
/// together.
#[test]
fn a_body_edit_of_a_caller_and_its_callee_is_reverted_one_at_a_time() {
    let mut s = Session::start(SIGNATURE, &["-O2", "-g"]);
    s.target.wait_for("value 10");
    let e = s.patched_by(
        "int scale(int x) { return x * 2; }\n__attribute__((noinline, noipa)) int value(void) { return scale(5); }",
        "int scale(int x) { return x * 3; }\n__attribute__((noinline, noipa)) int value(void) { return scale(6); }",
    );
    assert_eq!(e["functions"], serde_json::json!(["scale", "value"]), "{e}");
    s.target.wait_for("value 18");
    // value's new code calls scale's original: 6 * 2.
    s.beside(&["revert", "scale"]);
    s.target.wait_for("value 12");
    s.beside(&["revert", "value"]);
    s.target.wait_for("value 10");
}

/// Another command's `revert --all` while no file is saved: the session
/// says at once that the file's functions run other code than it says
/// (the program ran behind its sources, and nothing said so until a
/// save: a Lua trial), and the next save patches what the file says.
#[test]
fn a_revert_by_another_command_is_said_when_it_happens() {
    let mut s = Session::start_seeing_every_event(SIGNATURE, &["-O2", "-g"]);
    s.target.wait_for("value 10");
    s.patched_by("return x * 2;", "return x * 3;");
    s.target.wait_for("value 15");
    s.beside(&["revert", "--all"]);
    s.target.wait_for("value 10");
    let e = s.event();
    assert_eq!(e["event"], "changed_elsewhere", "{e}");
    assert_eq!(e["functions"], serde_json::json!(["scale"]), "{e}");
    // Nothing this session did was timed: no zeros that read as times.
    assert!(e.get("timing_us").is_none(), "{e}");
    assert!(
        e["message"]
            .as_str()
            .is_some_and(|m| m.contains("another relive command reverted scale in process")),
        "{e}"
    );
    // Another outside change of the same function before any save is said
    // too (a zstd re-check: it went unsaid, scale being marked already).
    let e = s.scale_times_four_elsewhere();
    assert!(
        e["message"]
            .as_str()
            .is_some_and(|m| m.contains("another relive command patched scale in process")),
        "{e}"
    );
    let e = s.patched_by("scale(5);", "scale(6);");
    assert!(e["functions"].to_string().contains("scale"), "{e}");
    s.target.wait_for("value 18");
}

/// Another command's revert of a one-shot patch puts back the code the
/// file has: said so, not "it runs other code than the file says there"
/// (a SQLite trial). A function a save added, gone with its pool at
/// another command's `revert --last`, is said to be removed, not
/// reverted (the revert itself said "gone").
#[test]
fn another_commands_revert_back_to_the_file_is_said_so() {
    let mut s = Session::start_seeing_every_event(SIGNATURE, &["-O2", "-g"]);
    s.target.wait_for("value 10");
    let e = s.scale_times_four_elsewhere();
    assert!(
        e["message"]
            .as_str()
            .is_some_and(|m| m.contains("runs other code than the file says there")),
        "{e}"
    );
    s.beside(&["revert", "scale"]);
    s.target.wait_for("value 10");
    let e = s.event();
    assert_eq!(e["event"], "changed_elsewhere", "{e}");
    assert!(
        e["message"]
            .as_str()
            .is_some_and(|m| m.contains("another relive command reverted scale in process")
                && m.contains("it runs what the file says there again")),
        "{e}"
    );
    // A save that adds a function, then another command's revert --last.
    let e = s.patched_by(
        "__attribute__((noinline, noipa)) int value(void) { return scale(5); }",
        "__attribute__((noinline, noipa)) static int extra(void) { return 7; }\n__attribute__((noinline, noipa)) int value(void) { return scale(5) + extra(); }",
    );
    assert_eq!(e["event"], "patched", "{e}");
    s.target.wait_for("value 17");
    s.beside(&["revert", "--last"]);
    s.target.wait_for("value 10");
    let e = s.event();
    assert_eq!(e["event"], "changed_elsewhere", "{e}");
    assert!(
        e["message"]
            .as_str()
            .is_some_and(|m| m.contains("reverted value and removed extra")
                && m.contains("runs other code than the file says there")),
        "{e}"
    );
}

/// A signature change patched, reverted by another command, and patched
/// again from the file: the diff against the file's earlier compile shows
/// no change then, so the journal kept no record that the caller's new
/// code calls `f` the new way, and a revert while a thread ran it sent the
/// call into the old `f` with the new arguments (a re-check: the program
/// printed 290, which no version computes). The re-patch compares with
/// what runs: the revert is refused until the call returns.
#[test]
fn a_signature_change_patched_again_after_a_revert_still_guards_its_revert() {
    let hold = std::env::temp_dir().join(format!("relive-hold-again-{}", std::process::id()));
    let app = format!(
        r#"#include <stdio.h>
#include <unistd.h>
static __attribute__((noinline, noipa)) int f(int a, long b) {{ return a * 100 - (int)b; }}
__attribute__((noinline)) int call(void) {{
    int s = f(10, 3);
    while (access({hold:?}, F_OK) == 0) {{ s = f(10, 3); usleep(1000); }}
    return s;
}}
int main(void) {{ setvbuf(stdout, NULL, _IOLBF, 0); for (;;) {{ printf("r %d\n", call()); usleep(3000); }} }}
"#,
        hold = hold.display().to_string()
    );
    let mut s = Session::start(&app, &["-O0", "-g"]);
    s.target.wait_for("r 997");
    // A save is refused while the thread happens to be inside `call`
    // (its `access` takes a moment): saved again until it is patched.
    let patched_after = |s: &mut Session, first: Value| {
        let mut e = first;
        for _ in 0..20 {
            if e["event"] != "refused" || !e["message"].to_string().contains("is running on thread") {
                break;
            }
            e = s.save_with(&[]);
        }
        assert_eq!(e["event"], "patched", "{e}");
    };
    let e = s.save_with(&[
        (
            "int f(int a, long b) { return a * 100 - (int)b; }",
            "int f(long b, int a) { return a * 100 - (int)b + 1; }",
        ),
        ("f(10, 3)", "f(3, 10)"),
    ]);
    patched_after(&mut s, e);
    s.target.wait_for("r 998");
    // Refused while the thread happens to be inside the new `call` (its
    // `access` takes a moment): again until it is not.
    let reverted = (0..50).any(|_| {
        let done = s.beside_output(&["revert", "--all"]).status.success();
        if !done {
            std::thread::sleep(std::time::Duration::from_millis(7));
        }
        done
    });
    assert!(reverted, "the first revert never went through");
    s.target.wait_for("r 997");
    // The same text saved again: patched again, from the file.
    let e = s.save_with(&[]);
    patched_after(&mut s, e);
    s.target.wait_for("r 998");
    std::fs::write(&hold, "").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    let out = s.beside_output(&["revert", "--all"]);
    let message = String::from_utf8_lossy(&out.stderr).to_string();
    let _ = std::fs::remove_file(&hold);
    assert!(!out.status.success(), "reverted under the running caller: {message}");
    assert!(message.contains("call is running on thread"), "{message}");
    for _ in 0..5 {
        s.target.wait_for_prefix("r ");
    }
    s.target.prints_only(&["r 998"], 5);
}

/// A function whose cold part (`work.cold`, GCC's split of the path that
/// calls a cold function) a patch changed, reverted by another command:
/// the next save patches it again and says so, and the save after that
/// said again that `work.cold` "was reverted or patched by another relive
/// command" (no command had run), patching `work` for it (`main`, NOT
/// REACHABLE, in a LevelDB trial).
#[test]
fn a_cold_part_is_not_said_to_be_reverted_again_at_the_next_save() {
    const COLD: &str = r#"#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
volatile int bad;
__attribute__((cold, noreturn, noipa)) static void die(const char *what, int v) { fprintf(stderr, "bad %s %d\n", what, v); abort(); }
__attribute__((noinline)) static int work(int r) {
    if (bad) die("work", r);
    int s = 0;
    for (int i = 0; i < 10; i++) s += i * 2;
    return s + r % 5;
}
int main(void) { setvbuf(stdout, NULL, _IOLBF, 0); for (int r = 0;; r++) { printf("w %d\n", work(r)); usleep(3000); } }
"#;
    let mut s = Session::start(COLD, &["-O2", "-g"]);
    s.target.wait_for("w 94");
    let e = s.save_with(&[
        ("return s + r % 5;", "return s + r % 5 + 100;"),
        ("\"work\"", "\"work!\""),
    ]);
    assert_eq!(e["event"], "patched", "{e}");
    s.target.wait_for("w 194");
    assert!(s.beside_output(&["revert", "--all"]).status.success());
    s.target.wait_for("w 94");
    // The file as it is, saved again: patched again, and said so.
    s.text.push_str("// saved again\n");
    std::fs::write(&s.source, &s.text).unwrap();
    let (e, _) = next_change(&s);
    assert_eq!(e["event"], "patched", "{e}");
    assert!(e["notes"].to_string().contains("another relive command"), "{e}");
    s.target.wait_for("w 194");
    // No command since: nothing said of one.
    let e = s.save_with(&[("i < 10;", "i < 11;")]);
    assert_eq!(e["event"], "patched", "{e}");
    assert!(!e["notes"].to_string().contains("another relive command"), "{e}");
    s.target.wait_for("w 214");
}

/// A function this session patched and another relive command reverted
/// runs what its file says again at the next save of the file, which says
/// so. Before, the revert stood: a save of the still-edited file said "no
/// function changed" (or named only the other functions) and the old code
/// ran on, the edit lost (a user's trial on Lua).
#[test]
fn a_save_after_another_commands_revert_says_what_runs() {
    let mut s = Session::start(TWO, &["-O2", "-g"]);
    s.target.wait_for("sum 11");
    s.edit("return 1;", "return 2;");
    s.edit("return 10;", "return 20;");
    // (A save caught half written, empty, is no change.)
    let (e, _) = next_change(&s);
    assert_eq!(e["event"], "patched", "{e}");
    s.target.wait_for("sum 22");
    s.beside(&["revert", "first"]);
    s.target.wait_for("sum 21");
    // Only `second` changes in this save; `first`, reverted, is patched
    // from the file again, and that is said.
    s.edit("return 20;", "return 30;");
    let (e, said) = next_change(&s);
    assert_eq!(e["event"], "patched", "{e}");
    assert_eq!(e["functions"], serde_json::json!(["first", "second"]), "{e}");
    assert!(
        said.iter()
            .any(|n| n.contains("first was reverted by another relive command: patched again from")),
        "{said:?}"
    );
    s.target.wait_for("sum 32");
    // Said once; later saves patch only what changes.
    s.edit("return 30;", "return 40;");
    let (e, said) = next_change(&s);
    assert!(!said.iter().any(|n| n.contains("another relive command")), "{said:?}");
    assert_eq!(e["functions"], serde_json::json!(["second"]), "{e}");
    s.target.wait_for("sum 42");
    s.edit("return 2;", "return 3;");
    let (e, _) = next_change(&s);
    assert_eq!(e["functions"], serde_json::json!(["first"]), "{e}");
    s.target.wait_for("sum 43");
}

/// A file put back as the program first ran it, and its functions then
/// reverted by another command: the program runs what the file says, so
/// the next save patches nothing of it and says nothing of the revert
/// (it said each function "was reverted ... the program runs that code,
/// not ... as the file has it", which was false).
#[test]
fn a_revert_to_what_the_file_says_again_is_not_called_a_difference() {
    let mut s = Session::start(TWO, &["-O2", "-g"]);
    s.target.wait_for("sum 11");
    s.edit("return 1;", "return 2;");
    let e = s.event();
    assert_eq!(e["event"], "patched", "{e}");
    s.target.wait_for("sum 12");
    // Put back: its patch is taken back (see
    // `an_edit_put_back_takes_the_patch_back`), and a revert of
    // everything after it finds nothing of this file to take back.
    s.edit("return 2;", "return 1;");
    let e = s.event();
    assert_eq!(e["reverted"], serde_json::json!(["first"]), "{e}");
    assert_eq!(e["event"], "reverted", "only a take-back, not \"patched\": {e}");
    s.target.wait_for("sum 11");
    s.beside_output(&["revert", "--all"]);
    s.edit("return 10;", "return 20;");
    let (e, said) = next_change(&s);
    assert_eq!(e["functions"], serde_json::json!(["second"]), "{e}");
    assert!(!said.iter().any(|n| n.contains("another relive command")), "{said:?}");
    s.target.wait_for("sum 21");
}

/// The next event that is not `no_change` (a compile of a file a save
/// left as it was: the second write of an earlier save) or `not_compiled`
/// (a save caught empty), and the notes of every event up to it.
fn next_change(s: &Session) -> (Value, Vec<String>) {
    let mut notes = Vec::new();
    loop {
        let e = s.event();
        notes.push(e["notes"].to_string());
        // A save caught between its truncation and its write is not
        // compiled (event `not_compiled`): no change either.
        if e["event"] != "no_change" && e["event"] != "not_compiled" {
            return (e, notes);
        }
    }
}

/// A reader of relive's messages that goes away (`relive run … 2>&1 |
/// head -3`) does not end relive with a panic (exit 101): it runs on and
/// exits with the program's status.
#[test]
fn a_closed_stderr_does_not_end_relive() {
    const SHORT: &str = "#include <unistd.h>\nint main(void) { usleep(1500000); return 7; }\n";
    let dir = tempfile::tempdir().unwrap();
    let exe = relive_testkit::compile(dir.path(), "app", SHORT, &["-O0", "-g"]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_relive"))
        .args(["run", "--"])
        .arg(&exe)
        .current_dir(dir.path())
        .env("RELIVE_STATE_DIR", dir.path().join("state"))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut first = String::new();
    stderr.read_line(&mut first).unwrap();
    assert!(first.starts_with("relive: "), "{first}");
    drop(stderr);
    // relive says the program exited, into the closed pipe.
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(7), "{status:?}");
}

/// A watched program that dies while its parent does not collect it (a
/// zombie, still in /proc) ends the watch: it waited for the program to
/// leave /proc, and where relive was still attached to it (killed while
/// relive had it stopped), its parent's `wait` waited for relive in turn.
#[test]
fn a_watched_program_dead_but_not_collected_ends_the_watch() {
    let target = Target::start_c(APP, &["-O2", "-g"]);
    target.wait_for_prefix("value 1 ");
    let (mut watch, _events) = watch_json(&target);
    let killed = Command::new("kill")
        .args(["-KILL", &target.pid_arg()])
        .status()
        .unwrap();
    assert!(killed.success());
    // Not waited for: a zombie until the test ends.
    let deadline = std::time::Instant::now() + PATIENCE;
    let status = loop {
        if let Some(status) = watch.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = watch.kill();
            panic!("relive watch did not end when its program died");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0));
}

/// A program killed during a reload (here while relive waits before its
/// stop) ends the watch as the program's end (status 0), not as the
/// reload's error: half of a re-check's kills ended in "error: process
/// … exited while relive was reading its memory map" (status 1).
#[test]
fn a_program_killed_during_a_reload_ends_the_watch_quietly() {
    let target = Target::start_c(APP, &["-O2", "-g"]);
    target.wait_for_prefix("value 1 ");
    let mut watch = Command::new(env!("CARGO_BIN_EXE_relive"))
        .args(["watch", "--json", "--pid", &target.pid_arg()])
        .env("RELIVE_STATE_DIR", target.dir.path().join("state"))
        .env("RELIVE_FAILPOINT", "patch-before-stop:1500")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut events = event_lines(watch.stderr.take().unwrap());
    assert!(events.next().unwrap().contains("watching"));
    std::fs::write(
        target.dir.path().join("target.c"),
        APP.replace("return 1;", "return 9;"),
    )
    .unwrap();
    // Compiled, and waiting before the stop.
    std::thread::sleep(std::time::Duration::from_millis(800));
    let killed = Command::new("kill")
        .args(["-KILL", &target.pid_arg()])
        .status()
        .unwrap();
    assert!(killed.success());
    let rest: Vec<String> = events.collect();
    let status = watch.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{rest:?}");
    assert!(rest.iter().any(|l| l.contains("\"exited\"")), "{rest:?}");
}

/// `relive watch PID` on a program whose file was replaced on disk after
/// it started (`make -B`): its sources are read from the running image's
/// debug info (before: "no C or C++ sources to watch … (deleted)").
#[test]
fn watch_finds_the_sources_of_a_program_replaced_on_disk() {
    let target = Target::start_c(APP, &["-O2", "-g"]);
    target.wait_for_prefix("value 1 ");
    let bytes = std::fs::read(&target.exe).unwrap();
    std::fs::remove_file(&target.exe).unwrap();
    std::fs::write(&target.exe, bytes).unwrap();
    let session = watch_json(&target);
    edit_under_watch(target, session, &APP.replace("return 1;", "return 6;"), "value 6 ");
}

/// An edit saved while no relive ran, then the program's file rebuilt on
/// disk, then `relive watch PID`: the edit is newer than the running image
/// (not than the file now on disk), so it is caught up at start (before:
/// the baseline was taken for a wrong compile command and the edit
/// refused).
#[test]
fn an_edit_older_than_a_rebuild_but_newer_than_the_running_image_is_caught_up() {
    let target = Target::start_c(APP, &["-O2", "-g"]);
    target.wait_for_prefix("value 1 ");
    // The build's command, known (as `relive build` records it): a
    // difference from the running code is then the edit.
    let db = serde_json::json!([{
        "directory": target.dir.path(),
        "file": "target.c",
        "command": "gcc -O2 -g -c target.c -o target.o"
    }]);
    std::fs::write(target.dir.path().join("compile_commands.json"), db.to_string()).unwrap();
    // File times have a resolution coarser than this test's steps.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let source = target.dir.path().join("target.c");
    std::fs::write(&source, APP.replace("return 1;", "return 8;")).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let bytes = std::fs::read(&target.exe).unwrap();
    std::fs::remove_file(&target.exe).unwrap();
    std::fs::write(&target.exe, bytes).unwrap();
    let watch = Command::new(env!("CARGO_BIN_EXE_relive"))
        .args(["watch", "--json", &target.pid_arg()])
        .env("RELIVE_STATE_DIR", target.dir.path().join("state"))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    target.wait_for_prefix("value 8 ");
    stop_with_watch(target, watch);
}

/// A `#define` whose value the program already stored in its data: two
/// flag values swapped (a SQLite trial: `TF_*` of its tables). The new
/// code reads the flags the program set with the old values, and no
/// build computes what it then prints: the patch is made (a changed
/// constant is the most common live edit) and says which macros changed,
/// with both values, where it said only "patched". An edit that changes
/// no macro says nothing of macros. For gcc and clang, whose macro
/// tables relive's compiles ask for differently.
#[test]
fn a_changed_macro_value_is_said_with_the_patch() {
    const FLAGS: &str = r#"#include <stdio.h>
#include <unistd.h>
#define FLAG_READONLY 0x1
#define FLAG_HIDDEN 0x2
#define MASK(x) ((x) & 0x3)
struct table { int flags; };
static struct table tables[2];
__attribute__((noinline)) static const char *kind(const struct table *t) {
    return (MASK(t->flags) & FLAG_READONLY) ? "readonly" : "plain";
}
__attribute__((noinline)) static void open_tables(void) {
    tables[0].flags = FLAG_READONLY;
    tables[1].flags = FLAG_HIDDEN;
}
int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    open_tables();
    for (;;) { printf("t0 %s t1 %s\n", kind(&tables[0]), kind(&tables[1])); usleep(3000); }
}
"#;
    for cc in ["gcc", "clang"] {
        let mut s = Session::start_built(cc, FLAGS, &["-O2", "-g"], &[], &[]);
        s.target.wait_for("t0 readonly t1 plain");
        let e = s.save_with(&[
            ("#define FLAG_READONLY 0x1", "#define FLAG_READONLY 0x2"),
            ("#define FLAG_HIDDEN 0x2", "#define FLAG_HIDDEN 0x1"),
        ]);
        assert_eq!(e["event"], "patched", "{cc}: {e}");
        let notes = e["notes"].to_string();
        assert!(
            notes.contains("FLAG_READONLY 0x1 -> 0x2")
                && notes.contains("FLAG_HIDDEN 0x2 -> 0x1")
                && notes.contains("restart"),
            "{cc}: {e}"
        );
        assert!(!notes.contains("MASK"), "{cc}: an unchanged macro is not named: {e}");
        // What the note warns of: the flags stored before read with the
        // new values.
        s.target.wait_for("t0 plain t1 readonly");
        let e = s.patched_by("\"plain\"", "\"normal\"");
        assert!(!e["notes"].to_string().contains("macro"), "{cc}: {e}");
        s.target.wait_for("t0 normal t1 readonly");
    }
}

/// An enumeration a function defines for itself, whose values its own
/// static keeps: renumbered by a value inserted first, the running
/// program's state reads as another phase. Refused, named by the
/// function (it went in unchecked: only the file's top-level types were
/// compared, a re-check); a value added at the end renumbers nothing and
/// is patched. Named and anonymous, at -O0 and -O2.
#[test]
fn a_function_local_enumerations_renumbering_is_refused() {
    const APP: &str = r#"#include <stdio.h>
#include <unistd.h>
__attribute__((noinline)) static int step(void) {
    enum phase { IDLE, RUN, DONE };
    static volatile enum phase p = RUN;
    if (p == RUN) { return 100; }
    return 200 + (int)p;
}
__attribute__((noinline)) static int other(void) {
    typedef enum { OFF = 5, ON } lamp;
    static volatile lamp l = ON;
    return l == ON ? 7 : 8;
}
int main(void) { setvbuf(stdout, NULL, _IOLBF, 0); for (;;) { printf("s=%d o=%d\n", step(), other()); usleep(3000); } }
"#;
    for level in ["-O0", "-O2"] {
        let mut s = Session::start(APP, &[level, "-g"]);
        s.target.wait_for("s=100 o=7");
        let e = s.save_with(&[("enum phase { IDLE,", "enum phase { START, IDLE,")]);
        refused_saying(
            &e,
            "enum phase (in step): IDLE changed value from 0 to 1, RUN changed value from 1 to 2",
        );
        let e = s.save_with(&[
            ("enum phase { START, IDLE,", "enum phase { IDLE,"),
            ("OFF = 5", "OFF = 4"),
        ]);
        refused_saying(
            &e,
            "lamp (in other): OFF changed value from 5 to 4, ON changed value from 6 to 5",
        );
        // Added at the end, with an edit that uses it.
        let e = s.save_with(&[
            ("OFF = 4", "OFF = 5"),
            ("DONE };", "DONE, PAUSED };"),
            ("return 100;", "return 101 + (p == PAUSED);"),
        ]);
        assert_eq!(e["event"], "patched", "{level}: {e}");
        s.target.wait_for("s=101 o=7");
    }
}

/// A pointer one past the end of a string literal (`" " + 2`, GCC's `lea
/// .LC0+2(%rip)`), beside a pointer to the literal's start the program
/// keeps: both must point into one copy. At the section's end the place
/// matched no literal and the whole section was copied for it; with a
/// literal after it, the place is that one's start, which the program
/// keeps elsewhere: either way `end - start` came out anything but 2 (a
/// zstd trial: `ZSTD_window_init`'s `nextSrc = base + 2`, and the program
/// crashed reading 4 GiB past its buffer).
#[test]
fn a_pointer_past_a_literal_stays_with_the_literal() {
    const LIB: &str = "static const char *volatile cell = \" \";\n__attribute__((noinline)) const char *start_of(void) { return cell; }\n__attribute__((noinline)) const char *end_of(int k) { return \" \" + 2 + (k > 100); }\n";
    const MAIN: &str = "#include <stdio.h>\n#include <unistd.h>\nconst char *start_of(void);\nconst char *end_of(int k);\nconst char *other(void);\nint main(void) { setvbuf(stdout, NULL, _IOLBF, 0); for (int k = 0;; k = !k) { printf(\"d=%ld c=%d o=%s\\n\", (long)(end_of(k) - start_of()), start_of()[0], other()); usleep(3000); } }\n";
    // The literal last in its section, and followed by another.
    let at_the_end = format!("{LIB}const char *other(void);\n");
    let followed = format!("{LIB}__attribute__((noinline)) const char *other(void) {{ return \"xyz\"; }}\n");
    let elsewhere = "const char *other(void) { return \"xyz\"; }\n";
    for (lib, rest) in [(at_the_end.as_str(), elsewhere), (followed.as_str(), "")] {
        // "xyz" first in the link: the program's copy is not the one
        // after " ".
        let early = "const char *early(void) { return \"xyz\"; }\n";
        let files: [(&str, &str); 4] = [("early.c", early), ("lib.c", lib), ("main.c", MAIN), ("rest.c", rest)];
        let (target, events) = run_files(&files, &["-O2", "-g"]);
        target.wait_for("d=2 c=32 o=xyz");
        let p = target.dir.path().to_path_buf();
        std::fs::write(p.join("lib.c"), lib.replace("(k > 100)", "(k > 200)")).unwrap();
        let e = next_event_for(&events, "/lib.c");
        assert_eq!(e["event"], "patched", "{e}");
        target.prints_only(&["d=2 c=32 o=xyz"], 20);
    }
}

/// A death after a step that patched several files (a header's
/// dependents) names every file of the step and what each patched, not
/// only the last file's (a zstd trial: the crash was blamed on the other
/// file of the step).
#[test]
fn a_death_after_a_step_of_several_files_names_them_all() {
    let files: [(&str, &str); 4] = [
        ("m.h", "#define K 1\nint fa(void);\nint fb(void);\n"),
        ("a.c", "#include \"m.h\"\n__attribute__((noinline)) int fa(void) { if (K == 2) __builtin_trap(); return K; }\n"),
        ("b.c", "#include \"m.h\"\n__attribute__((noinline)) int fb(void) { return K * 2; }\n"),
        (
            "main.c",
            "#include <stdio.h>\n#include <unistd.h>\n#include \"m.h\"\nint main(void) { setvbuf(stdout, NULL, _IOLBF, 0); for (;;) { printf(\"s=%d\\n\", fa() + fb()); usleep(3000); } }\n",
        ),
    ];
    let (target, events) = run_files(&files, &["-O2", "-g"]);
    target.wait_for("s=3");
    std::fs::write(target.dir.path().join("m.h"), files[0].1.replace("K 1", "K 2")).unwrap();
    let exited = loop {
        let e = events.recv_timeout(PATIENCE).expect("the program's death");
        if e["event"] == "exited" {
            break e;
        }
    };
    assert_eq!(exited["signal_name"], "SIGILL", "{exited}");
    let named = |key: &str, what: &str| {
        exited[key]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f.as_str().unwrap().ends_with(what))
    };
    assert!(
        named("last_reload_files", "/a.c") && named("last_reload_files", "/b.c"),
        "{exited}"
    );
    assert!(
        named("last_reload_functions", "fa") && named("last_reload_functions", "fb"),
        "{exited}"
    );
}

/// A revert given `relive run`'s own pid names the program it runs: it
/// said only "no patches" (a QuickJS re-check).
#[test]
fn a_revert_of_relives_own_pid_names_the_program() {
    let s = Session::start(APP, &["-O0", "-g"]);
    s.target.wait_for_prefix("value 1 ");
    let out = Command::new(env!("CARGO_BIN_EXE_relive"))
        .args(["revert", &s.target.pid_arg(), "--all"])
        .env("RELIVE_STATE_DIR", s.target.dir.path().join("state"))
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    let program = s.target.child_pid_arg();
    assert!(
        said.contains(&format!(
            "it is a relive process itself: the program it runs is pid {program}"
        )),
        "{said}"
    );
}

/// A header's macro three files use, changed (all patched in one step),
/// then all taken back by another command: a save of one of them alone
/// would run the new value beside the others' code built with the old one
/// (a QuickJS trial: `/i` regexps failed, as neither build does). It
/// waits for the other files, named all at once (a zstd trial's save was
/// held for one file, then for the next); saved too, one after the other,
/// all go in with the last.
#[test]
fn a_macro_two_files_use_is_not_split_by_a_save_after_a_revert() {
    let files: [(&str, &str); 5] = [
        ("m.h", "#define LIMIT 3\nint fa(void);\nint fb(void);\nint fc(void);\n"),
        ("a.c", "#include \"m.h\"\n__attribute__((noinline)) int fa(void) { return LIMIT; }\n"),
        ("b.c", "#include \"m.h\"\n__attribute__((noinline)) int fb(void) { return LIMIT * 10; }\n"),
        ("c.c", "#include \"m.h\"\n__attribute__((noinline)) int fc(void) { return LIMIT * 100; }\n"),
        (
            "main.c",
            "#include <stdio.h>\n#include <unistd.h>\n#include \"m.h\"\nint main(void) { setvbuf(stdout, NULL, _IOLBF, 0); for (;;) { printf(\"l=%d\\n\", fa() + fb() + fc()); usleep(3000); } }\n",
        ),
    ];
    let (target, events) = run_files(&files, &["-O2", "-g"]);
    target.wait_for("l=333");
    let p = target.dir.path().to_path_buf();
    std::fs::write(p.join("m.h"), files[0].1.replace("LIMIT 3", "LIMIT 4")).unwrap();
    for file in ["/a.c", "/b.c", "/c.c"] {
        assert_eq!(next_event_for(&events, file)["event"], "patched");
    }
    target.wait_for("l=444");
    revert_child(&target, "--all");
    target.wait_for("l=333");
    // a.c saved alone (its text as it is): LIMIT is 4 in its compile, 3 in
    // b.c's and c.c's running code.
    std::fs::write(p.join("a.c"), files[1].1.replace("return LIMIT;", "return LIMIT + 0;")).unwrap();
    let e = next_change_for(&events, "/a.c");
    assert_ne!(e["event"], "patched", "{e}");
    assert!(
        e["message"].as_str().is_some_and(|m| m.contains("LIMIT 3 -> 4, in m.h")
            && m.contains("/b.c")
            && m.contains("/c.c")
            && m.contains("too (together, or one after another: this file goes in with the last)")
            // One sentence for both (a PCRE2 trial's said it once a file).
            && m.matches("own code, built with the other value").count() == 1),
        "{e}"
    );
    target.prints_only(&["l=333"], 20);
    // b.c saved too: a.c (with it) now waits for c.c alone.
    std::fs::write(p.join("b.c"), files[2].1.replace("LIMIT * 10", "LIMIT * 10 + 0")).unwrap();
    let e = next_change_for(&events, "/a.c");
    assert_ne!(e["event"], "patched", "{e}");
    let message = e["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("/c.c (or any file) is saved") && !message.contains("/b.c"),
        "{e}"
    );
    // c.c saved too: all go in, with the same value.
    std::fs::write(p.join("c.c"), files[3].1.replace("LIMIT * 100", "LIMIT * 100 + 0")).unwrap();
    target.wait_for("l=444");
}

/// Two files that define one macro differently as built (each its own
/// `SCALE`, as lz4frame.c has its own `assert` and xxhash.c <assert.h>'s)
/// do not hold each other's saves after a revert of one: the program was
/// built that way, and the save changes no macro (an lz4 trial: a code
/// edit of xxhash.c was held, "patched alone, the two files would use
/// different values", and never went in).
#[test]
fn files_built_with_their_own_values_of_a_macro_are_not_held_after_a_revert() {
    let files: [(&str, &str); 3] = [
        ("a.c", "#define SCALE 2\n__attribute__((noinline)) int fa(void) { return SCALE; }\n"),
        ("b.c", "#define SCALE 5\n__attribute__((noinline)) int fb(void) { return SCALE * 10; }\n"),
        (
            "main.c",
            "#include <stdio.h>\n#include <unistd.h>\nint fa(void);\nint fb(void);\nint main(void) { setvbuf(stdout, NULL, _IOLBF, 0); for (;;) { printf(\"l=%d\\n\", fa() + fb()); usleep(3000); } }\n",
        ),
    ];
    let (target, events) = run_files(&files, &["-O2", "-g"]);
    target.wait_for("l=52");
    let p = target.dir.path().to_path_buf();
    std::fs::write(p.join("a.c"), files[0].1.replace("return SCALE;", "return SCALE + 1;")).unwrap();
    assert_eq!(next_event_for(&events, "/a.c")["event"], "patched");
    target.wait_for("l=53");
    revert_child(&target, "fa");
    target.wait_for("l=52");
    std::fs::write(p.join("b.c"), files[1].1.replace("SCALE * 10;", "SCALE * 10 + 3;")).unwrap();
    let e = next_change_for(&events, "/b.c");
    assert_eq!(e["event"], "patched", "{e}");
    target.wait_for("l=55");
}

/// A save held (a file saved with it does not compile) says nothing of
/// what the patched functions have: nothing was patched (a zstd trial's
/// held save said the patched functions had a macro's new value).
#[test]
fn a_held_save_says_no_macro_value_of_a_patch_not_made() {
    let files: [(&str, &str); 4] = [
        ("m.h", "#define LIMIT 3\nint fa(void);\nint fb(void);\n"),
        ("a.c", "#include \"m.h\"\n__attribute__((noinline)) int fa(void) { return LIMIT; }\n"),
        ("b.c", "#include \"m.h\"\n__attribute__((noinline)) int fb(void) { return 10; }\n"),
        (
            "main.c",
            "#include <stdio.h>\n#include <unistd.h>\n#include \"m.h\"\nint main(void) { setvbuf(stdout, NULL, _IOLBF, 0); for (;;) { printf(\"l=%d\\n\", fa() + fb()); usleep(3000); } }\n",
        ),
    ];
    let (target, events) = run_files(&files, &["-O2", "-g"]);
    target.wait_for("l=13");
    let p = target.dir.path().to_path_buf();
    std::fs::write(p.join("b.c"), files[2].1.replace("return 10;", "return 10 +;")).unwrap();
    std::fs::write(p.join("m.h"), files[0].1.replace("LIMIT 3", "LIMIT 4")).unwrap();
    let e = next_change_for(&events, "/a.c");
    assert_eq!(e["event"], "held", "{e}");
    assert!(!e["notes"].to_string().contains("macro changed value"), "{e}");
    target.prints_only(&["l=13"], 20);
}

/// An enumeration's values that change in a header two files use,
/// though no function's code changes: said with each file, as values (a
/// Lua re-check: one file's note hid the other's, and it spoke of a
/// layout).
#[test]
fn changed_enumeration_values_without_code_are_said_with_each_file() {
    let files: [(&str, &str); 4] = [
        ("m.h", "enum level { LOW = 1, HIGH = 2 };\nstruct cfg { enum level l; int n; };\nint fa(struct cfg *);\nint fb(struct cfg *);\n"),
        ("a.c", "#include \"m.h\"\n__attribute__((noinline)) int fa(struct cfg *c) { return c->n + 1; }\n"),
        ("b.c", "#include \"m.h\"\n__attribute__((noinline)) int fb(struct cfg *c) { return c->n + 2; }\n"),
        (
            "main.c",
            "#include <stdio.h>\n#include <unistd.h>\n#include \"m.h\"\nint main(void) { struct cfg c = { HIGH, 3 }; setvbuf(stdout, NULL, _IOLBF, 0); for (;;) { printf(\"l=%d\\n\", fa(&c) + fb(&c)); usleep(3000); } }\n",
        ),
    ];
    let (target, events) = run_files(&files, &["-O2", "-g"]);
    target.wait_for("l=9");
    std::fs::write(target.dir.path().join("m.h"), files[0].1.replace("LOW = 1", "LOW = 5")).unwrap();
    for file in ["/a.c", "/b.c"] {
        let e = next_event_for(&events, file);
        assert_eq!(e["event"], "no_change", "{e}");
        assert!(
            e["notes"].to_string().contains(
                "the values of an enumeration this file uses changed (enum level: LOW changed value from 1 to 5)"
            ),
            "{e}"
        );
    }
    target.wait_for("l=9");
}

/// Only the changed macros the file's code uses are named: a header's
/// macro it never uses (a Lua trial: liolib.c's note named
/// `lua_integer2str`, which only lobject.c uses) changed nothing in it; one
/// it uses through another macro is named.
#[test]
fn a_changed_macro_the_file_does_not_use_is_not_said() {
    let files: [(&str, &str); 3] = [
        (
            "m.h",
            "#define BASE 1\n#define LIMIT (BASE + 2)\n#if !defined(OTHER)\n#define OTHER 9\n#endif\nint limit(void);\n",
        ),
        ("lib.c", "#include <stdio.h>\n#include \"m.h\"\n__attribute__((noinline)) int limit(void) { return LIMIT; }\n"),
        (
            "main.c",
            "#include <stdio.h>\n#include <unistd.h>\n#include \"m.h\"\nint main(void) { setvbuf(stdout, NULL, _IOLBF, 0); for (;;) { printf(\"l=%d\\n\", limit()); usleep(3000); } }\n",
        ),
    ];
    let (target, events) = run_files(&files, &["-O2", "-g"]);
    target.wait_for("l=3");
    let edited = files[0].1.replace("BASE 1", "BASE 2").replace("OTHER 9", "OTHER 10");
    std::fs::write(target.dir.path().join("m.h"), edited).unwrap();
    let e = next_event_for(&events, "/lib.c");
    assert_eq!(e["event"], "patched", "{e}");
    let notes = e["notes"].to_string();
    assert!(notes.contains("macro changed value (BASE 1 -> 2, in m.h)"), "{e}");
    assert!(!notes.contains("OTHER"), "{e}");
    target.wait_for("l=4");
}

/// A macro a header defines (GCC keeps a header's macros in a group of
/// their own, which two compiles share when it did not change): its new
/// value is said with the patch of the file that uses it.
#[test]
fn a_changed_macro_of_a_header_is_said_with_the_patch() {
    let files: [(&str, &str); 3] = [
        ("m.h", "#define LIMIT 3\n#define OTHER 9\nint limit(void);\n"),
        ("lib.c", "#include <stdio.h>\n#include \"m.h\"\n__attribute__((noinline)) int limit(void) { return LIMIT; }\n"),
        (
            "main.c",
            "#include <stdio.h>\n#include <unistd.h>\n#include \"m.h\"\nint main(void) { setvbuf(stdout, NULL, _IOLBF, 0); for (;;) { printf(\"l=%d\\n\", limit()); usleep(3000); } }\n",
        ),
    ];
    let (target, events) = run_files(&files, &["-O2", "-g"]);
    target.wait_for("l=3");
    std::fs::write(target.dir.path().join("m.h"), files[0].1.replace("LIMIT 3", "LIMIT 4")).unwrap();
    let e = next_event_for(&events, "/lib.c");
    assert_eq!(e["event"], "patched", "{e}");
    let notes = e["notes"].to_string();
    assert!(notes.contains("macro changed value (LIMIT 3 -> 4, in m.h)"), "{e}");
    target.wait_for("l=4");
    // Put back: the program's own code runs again, which the note says
    // (it said the patched functions had the new value: a Lua trial).
    std::fs::write(target.dir.path().join("m.h"), files[0].1).unwrap();
    let e = next_event_for(&events, "/lib.c");
    assert_eq!(e["event"], "reverted", "{e}");
    let notes = e["notes"].to_string();
    assert!(
        notes.contains("macro back to the value the program was built with (LIMIT 4 -> 3, in m.h)"),
        "{e}"
    );
    assert!(!notes.contains("the patched functions that use it"), "{e}");
    target.wait_for("l=3");
}

/// A function an earlier patch added, reached only through that patch's
/// own copy of a table of handlers: its next edit is patched and runs
/// (it was said NOT REACHABLE, "nothing in the program calls it or takes
/// its address", while the program ran it: a libuv trial's `cmds`).
#[test]
fn a_handler_reached_through_a_patchs_table_is_reachable() {
    const APP: &str = r#"#include <stdio.h>
#include <unistd.h>
typedef int (*handler)(int);
static volatile int bias;
__attribute__((noinline)) int dispatch(int k) { return k + bias * bias; }
int main(void) { setvbuf(stdout, NULL, _IOLBF, 0); for (int k = 0;; k = !k) { printf("r %d\n", dispatch(k)); usleep(3000); } }
"#;
    let mut s = Session::start(APP, &["-O2", "-g"]);
    s.target.wait_for("r 1");
    let e = s.patched_by(
        "__attribute__((noinline)) int dispatch(int k) { return k + bias * bias; }",
        "__attribute__((noinline)) static int one(int x) { return x + 10; }\n__attribute__((noinline)) static int two(int x) { return x + 20; }\nstatic handler const table[] = { one, two };\n__attribute__((noinline)) int dispatch(int k) { return table[k](k); }",
    );
    assert!(e["added"].to_string().contains("two"), "{e}");
    s.target.wait_for("r 21");
    let e = s.patched_by("return x + 20;", "return x + 30;");
    assert!(e["functions"].to_string().contains("two"), "{e}");
    assert!(!e["unreachable"].to_string().contains("two"), "{e}");
    s.target.wait_for("r 31");
}

/// A loop `main` called once and never returns from, edited after `main`
/// itself was patched (its new code cannot run: the running `main` keeps
/// its old code): the loop's new code cannot run either. The patched
/// `main`'s call of it was counted as a caller, and the edit was said
/// patched, "later calls run the new one" (a libuv trial's `uv_run`).
#[test]
fn a_call_in_code_that_cannot_run_does_not_reach() {
    const APP: &str = r#"#include <stdio.h>
#include <unistd.h>
static volatile int tick = 100;
__attribute__((noinline)) void run(void) { for (;;) { printf("r %d\n", tick + 1); usleep(3000); } }
int main(void) { setvbuf(stdout, NULL, _IOLBF, 0); printf("start %d\n", tick); run(); puts("end"); return 0; }
"#;
    let mut s = Session::start(APP, &["-O2", "-g"]);
    s.target.wait_for("r 101");
    let e = s.save_with(&[("printf(\"start %d\\n\", tick);", "printf(\"begin %d\\n\", tick);")]);
    assert!(e["unreachable"].to_string().contains("main"), "{e}");
    let e = s.save_with(&[("tick + 1", "tick + 2")]);
    assert!(e["unreachable"].to_string().contains("\"run\""), "{e}");
    s.target.prints_only(&["r 101"], 20);
}

/// A file saved with another that defines a new variable it uses, which
/// none of that file's functions uses yet: it waits (the variable comes
/// into the program with a patched function that uses it), and the save
/// that makes a function use it patches both. It was refused and never
/// tried again: the program ran its old code while the file said
/// otherwise (a zstd re-check).
#[test]
fn a_file_waiting_for_a_new_variable_goes_in_when_the_variable_does() {
    let files: [(&str, &str); 3] = [
        (
            "a.c",
            "#include <stdio.h>\n#include <unistd.h>\nint f(void);\nint g(void);\nint main(void) { setvbuf(stdout, NULL, _IOLBF, 0); for (;;) { printf(\"%d %d\\n\", f(), g()); usleep(3000); } }\n",
        ),
        ("b.c", "__attribute__((noinline)) int f(void) { return 1; }\n"),
        ("c.c", "__attribute__((noinline)) int g(void) { return 2; }\n"),
    ];
    let (target, events) = run_files(&files, &["-O2", "-g"]);
    target.wait_for("1 2");
    let p = target.dir.path().to_path_buf();
    std::fs::write(p.join("c.c"), format!("int newvar = 5;\n{}", files[2].1)).unwrap();
    std::fs::write(
        p.join("b.c"),
        "extern int newvar;\n__attribute__((noinline)) int f(void) { return newvar; }\n",
    )
    .unwrap();
    let e = next_event_for(&events, "/b.c");
    assert_eq!(e["event"], "held", "{e}");
    std::fs::write(
        p.join("c.c"),
        "int newvar = 5;\n__attribute__((noinline)) int g(void) { return 2 + newvar; }\n",
    )
    .unwrap();
    target.wait_for("5 7");
}

/// An edit put back: the functions whose compile is the program's own
/// code again have their patches taken back, not patched once more (a
/// patched `main` put back was said NOT REACHABLE again, "restart the
/// program", while the running `main` already was what the file said: a
/// QuickJS and a SQLite trial). `status` then lists no patch of it.
#[test]
fn an_edit_put_back_takes_the_patch_back() {
    let mut s = Session::start(APP, &["-O2", "-g"]);
    s.target.wait_for_prefix("value 1 ");
    let e = s.save_with(&[("usleep(3000);", "usleep(3001);")]);
    assert_eq!(e["unreachable"], serde_json::json!(["main"]), "{e}");
    assert!(patches_of(&s.target).contains("\"main\""), "{}", patches_of(&s.target));
    let e = s.save_with(&[("usleep(3001);", "usleep(3000);")]);
    assert_eq!(e["reverted"], serde_json::json!(["main"]), "{e}");
    assert!(e.get("unreachable").is_none(), "{e}");
    assert!(!patches_of(&s.target).contains("\"main\""), "{}", patches_of(&s.target));
    // A function edited and put back the same way, with its new code
    // running meanwhile.
    s.patched_by("return 1;", "return 2;");
    s.target.wait_for_prefix("value 2 ");
    let e = s.save_with(&[("return 2;", "return 1;")]);
    assert_eq!(e["reverted"], serde_json::json!(["value"]), "{e}");
    assert_eq!(e["event"], "reverted", "{e}");
    // The take-back wrote the entry back with the threads stopped, and
    // says what that cost (it said "apply 0.00 ms; no thread paused").
    assert!(e["timing_us"]["apply"].as_u64().unwrap() > 0, "{e}");
    assert!(e["pause_us"].as_u64().unwrap() > 0, "{e}");
    s.target.wait_for_prefix("value 1 ");
    // Its death after that says the last reload put `value` back (it said
    // that reload "patched no function whose new code runs").
    let killed = Command::new("kill")
        .args(["-KILL", &s.target.child_pid_arg()])
        .status()
        .unwrap();
    assert!(killed.success());
    let exited = loop {
        let e = s.event();
        if e["event"] == "exited" {
            break e;
        }
    };
    assert_eq!(exited["last_reload_reverted"], serde_json::json!(["value"]), "{exited}");
    assert_eq!(exited["last_reload_functions"], serde_json::json!([]), "{exited}");
}

/// The patches `relive status --json` lists in the program a `relive run`
/// target started, as JSON text.
fn patches_of(target: &Target) -> String {
    let status = Command::new(env!("CARGO_BIN_EXE_relive"))
        .args(["status", &target.child_pid_arg(), "--json"])
        .env("RELIVE_STATE_DIR", target.dir.path().join("state"))
        .output()
        .unwrap();
    let status: Value = serde_json::from_slice(&status.stdout).unwrap();
    status["patches"].to_string()
}

/// A caller and its callee in two files, edited in one save and put back
/// in one save: both patches are taken back together (each alone is
/// refused, as it would split the change, and both were patched again as
/// copies of the original: a re-check).
#[test]
fn a_change_of_two_files_put_back_takes_both_back() {
    let files: [(&str, &str); 3] = [
        (
            "a.c",
            "#include <stdio.h>\n#include <unistd.h>\nint f(void);\nint main(void) { setvbuf(stdout, NULL, _IOLBF, 0); for (;;) { printf(\"v %d\\n\", f()); usleep(3000); } }\n",
        ),
        ("b.c", "int g(void);\n__attribute__((noinline)) int f(void) { return 10 + g(); }\n"),
        ("c.c", "__attribute__((noinline)) int g(void) { return 20; }\n"),
    ];
    let (target, events) = run_files(&files, &["-O2", "-g"]);
    target.wait_for("v 30");
    let p = target.dir.path().to_path_buf();
    let save_both = |b: &str, c: &str| {
        std::fs::write(p.join("b.c"), b).unwrap();
        std::fs::write(p.join("c.c"), c).unwrap();
    };
    save_both(&files[1].1.replace("10 +", "11 +"), &files[2].1.replace("20", "21"));
    target.wait_for("v 32");
    let mut patched = 0;
    while patched < 2 {
        let e = events.recv_timeout(PATIENCE).expect("the edit's events");
        patched += usize::from(e["event"] == "patched");
    }
    save_both(files[1].1, files[2].1);
    let mut reverted = Vec::new();
    while reverted.len() < 2 {
        let e = events.recv_timeout(PATIENCE).expect("the put-back's events");
        if let Some(names) = e["reverted"].as_array() {
            reverted.extend(names.iter().map(|n| n.as_str().unwrap().to_string()));
            assert!(e.get("as_built").is_none(), "{e}");
            // In one step, as the change was patched: the two files did
            // not switch back apart (a zstd trial: 40 ms apart).
            assert!(e["notes"].to_string().contains("taken back in one step with"), "{e}");
        }
        assert!(e["functions"].as_array().is_none_or(|f| f.is_empty()), "{e}");
    }
    reverted.sort();
    assert_eq!(reverted, ["f", "g"]);
    target.wait_for("v 30");
}

/// The same after a signature change across the two files: neither
/// patch can be taken back alone (the other's code calls it the changed
/// way), so both are taken back in one step, which each file's event
/// says, as their patch in one step did.
#[test]
fn a_signature_change_of_two_files_put_back_is_taken_back_in_one_step() {
    let files: [(&str, &str); 3] = [
        (
            "a.c",
            "#include <stdio.h>\n#include <unistd.h>\nint f(void);\nint main(void) { setvbuf(stdout, NULL, _IOLBF, 0); for (;;) { printf(\"v %d\\n\", f()); usleep(3000); } }\n",
        ),
        ("b.c", "int g(int);\n__attribute__((noinline)) int f(void) { return 10 + g(1); }\n"),
        ("c.c", "__attribute__((noinline)) int g(int x) { return 20 * x; }\n"),
    ];
    let (target, events) = run_files(&files, &["-O2", "-g"]);
    target.wait_for("v 30");
    let p = target.dir.path().to_path_buf();
    let save_both = |b: &str, c: &str| {
        std::fs::write(p.join("b.c"), b).unwrap();
        std::fs::write(p.join("c.c"), c).unwrap();
    };
    save_both(
        &files[1]
            .1
            .replace("int g(int);", "int g(int, int);")
            .replace("g(1)", "g(1, 2)"),
        &files[2]
            .1
            .replace("g(int x) { return 20 * x; }", "g(int x, int y) { return 20 * x + y; }"),
    );
    target.wait_for("v 32");
    let mut patched = 0;
    while patched < 2 {
        let e = events.recv_timeout(PATIENCE).expect("the edit's events");
        patched += usize::from(e["event"] == "patched");
    }
    save_both(files[1].1, files[2].1);
    let mut reverted = Vec::new();
    while reverted.len() < 2 {
        let e = events.recv_timeout(PATIENCE).expect("the put-back's events");
        if let Some(names) = e["reverted"].as_array() {
            reverted.extend(names.iter().map(|n| n.as_str().unwrap().to_string()));
            assert!(e["notes"].to_string().contains("taken back in one step with"), "{e}");
        }
    }
    reverted.sort();
    assert_eq!(reverted, ["f", "g"]);
    target.wait_for("v 30");
}

/// A function redirected through the filler before it (`hop`: a 4-byte
/// function, the last of the program's code) put back as built: its
/// patch is taken back too. Its redirect's span starts before its entry,
/// which the comparison with the original took for no match, and it was
/// patched again with its original bytes (a re-check).
#[test]
fn a_hop_redirected_function_put_back_is_taken_back() {
    let files: [(&str, &str); 2] = [
        (
            "a.c",
            "#include <stdio.h>\n#include <unistd.h>\nint g2(int x);\nvolatile int three = 3;\nint main(void) { setvbuf(stdout, NULL, _IOLBF, 0); for (;;) { printf(\"g %d\\n\", g2(three)); usleep(3000); } }\n",
        ),
        // (`g` before it: the filler after `g` is where the hop goes.)
        ("c.c", "int g(void) { return 20; }\nint g2(int x) { return x * 2; }\n"),
    ];
    let (target, events) = run_files(&files, &["-O2", "-g"]);
    target.wait_for("g 6");
    let p = target.dir.path().to_path_buf();
    std::fs::write(p.join("c.c"), files[1].1.replace("x * 2", "x * 3")).unwrap();
    let e = next_event_for(&events, "/c.c");
    assert_eq!(e["event"], "patched", "{e}");
    target.wait_for("g 9");
    assert!(patches_of(&target).contains("\"hop\""), "{}", patches_of(&target));
    std::fs::write(p.join("c.c"), files[1].1).unwrap();
    let e = next_event_for(&events, "/c.c");
    assert_eq!(e["reverted"], serde_json::json!(["g2"]), "{e}");
    target.wait_for("g 6");
}

/// A save written in two parts seconds apart by a process that keeps the
/// file open between them (a QuickJS trial's writer): relive says it
/// waits for that process, and compiles the file once it is closed. The
/// first part compiles on its own (the file cut after `value`), and was
/// compiled and patched half written; the complete save was then diffed
/// against it.
#[test]
fn a_save_written_in_parts_by_a_pausing_writer_is_compiled_once_it_is_closed() {
    let s = Session::start(APP, &["-O2", "-g"]);
    s.target.wait_for_prefix("value 1 ");
    let new = APP.replace("return 1;", "return 3;");
    let cut = new.find("int main").unwrap();
    let mut writer = Command::new("sh")
        .arg("-c")
        .arg(r#"exec 3>"$0"; printf %s "$1" >&3; sleep 3; printf %s "$2" >&3"#)
        .arg(&s.source)
        .arg(&new[..cut])
        .arg(&new[cut..])
        .spawn()
        .unwrap();
    let e = s.event();
    assert_eq!(e["event"], "waiting", "{e}");
    let message = e["message"].as_str().unwrap_or_default();
    assert!(message.contains(&format!("pid {} (sh)", writer.id())), "{e}");
    let e = s.event();
    assert!(
        writer.try_wait().unwrap().is_some(),
        "compiled before the writer was done: {e}"
    );
    assert_eq!(e["event"], "patched", "{e}");
    assert_eq!(e["functions"], serde_json::json!(["value"]), "{e}");
    writer.wait().unwrap();
    s.target.wait_for_prefix("value 3 ");
}

/// An edit made before relive started, of a function inlined into a loop
/// that is running: the catch-up's note on the loop says that it has the
/// function inlined, whose old code its running call keeps (a Lua
/// re-check: a save's note said so, the catch-up's did not, and
/// `luaV_idiv`'s edit never showed with nothing saying why).
#[test]
fn a_catch_up_says_what_a_running_loop_has_inlined() {
    let src = "#include <stdio.h>\n#include <unistd.h>\nvolatile int seed = 100;\nint divide(int a, int b) { return a / b; }\n__attribute__((noinline)) void run_loop(void) { for (int i = 0;; i++) { printf(\"q %d\\n\", divide(seed + i % 2, 7)); fflush(stdout); usleep(2000); } }\n__attribute__((noinline)) void serve(void) { run_loop(); }\nint main(void) { serve(); return 0; }\n";
    let dir = tempfile::tempdir().unwrap();
    let exe = build_files(dir.path(), &[("app.c", src)], &["-O2", "-g"]);
    built_a_minute_ago(&exe);
    let mut cmd = Command::new(&exe);
    cmd.current_dir(dir.path());
    let target = Target::spawn(cmd, exe.clone(), dir);
    target.wait_for("q 14");
    let p = target.dir.path();
    std::fs::write(p.join("app.c"), src.replace("return a / b;", "return a / b + 1000;")).unwrap();
    let mut relive = Command::new(env!("CARGO_BIN_EXE_relive"))
        .args(["watch", "--json", "--pid", &target.pid_arg(), "--cc", "gcc -O2 -g"])
        .current_dir(p)
        .env("RELIVE_STATE_DIR", p.join("state"))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let events = relive_testkit::json_lines(relive.stderr.take().unwrap());
    let start = relive_testkit::events_until(&events, "watching");
    let notes: String = start
        .iter()
        .filter(|e| e["event"] == "patched")
        .map(|e| e["notes"].to_string())
        .collect();
    assert!(
        notes.contains("it has divide inlined, so that call runs the old divide too"),
        "{start:#?}"
    );
    target.wait_for("q 14");
    let _ = relive.kill();
    let _ = relive.wait();
}
