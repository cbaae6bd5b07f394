//! Defects found by patching real programs (issue 18), each checked the
//! differential way: the patched process must print what the same program
//! freshly built from the edited sources prints (the oracle). Programs are
//! driven one step per input line, so both runs compute the same rounds.

use std::path::{Path, PathBuf};
use std::process::Command;

use relive_testkit::Target;
use serde_json::Value;

/// A program built from several C files, running, plus its edits.
struct Program {
    target: Target,
    cc: String,
    flags: Vec<String>,
    files: Vec<(String, String)>,
    state: tempfile::TempDir,
    builds: usize,
}

/// gcc and clang, each where it is installed (`.ci/run` installs both);
/// a missing one is said, not silently passed over.
fn compilers() -> impl Iterator<Item = &'static str> {
    ["gcc", "clang"].into_iter().filter(|cc| installed(cc))
}

/// Whether compiler `cc` is installed; a missing one is said.
fn installed(cc: &str) -> bool {
    relive_testkit::installed(
        cc,
        &format!("{cc} is not installed (.ci/run installs gcc, g++ and clang)"),
    )
}

fn build(cc: &str, flags: &[String], dir: &Path, files: &[(String, String)], exe: &Path) {
    for (name, text) in files {
        std::fs::write(dir.join(name), text).unwrap();
    }
    let out = Command::new(cc)
        .args(flags)
        .arg("-o")
        .arg(exe)
        .args(files.iter().map(|(n, _)| n))
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

impl Program {
    fn start(cc: &str, flags: &[&str], files: &[(&str, &str)]) -> Program {
        let dir = tempfile::tempdir().unwrap();
        let flags: Vec<String> = flags.iter().map(|s| s.to_string()).chain(["-g".into()]).collect();
        let files: Vec<(String, String)> = files.iter().map(|(n, t)| (n.to_string(), t.to_string())).collect();
        let exe = dir.path().join("app");
        build(cc, &flags, dir.path(), &files, &exe);
        let target = Target::spawn(Command::new(&exe), exe, dir);
        Program {
            target,
            cc: cc.into(),
            flags,
            files,
            state: tempfile::tempdir().unwrap(),
            builds: 0,
        }
    }

    fn dir(&self) -> PathBuf {
        self.target.dir.path().to_path_buf()
    }

    /// One round: a line in, the program's line out.
    fn step(&mut self) -> String {
        writeln!(self.target.stdin(), "step").unwrap();
        self.target.next_line()
    }

    /// Compiles `file` as it is now into an object (the program's flags
    /// plus -c), in the program's directory so its source name is the
    /// same.
    fn object(&mut self, file: &str) -> PathBuf {
        self.builds += 1;
        let obj = self.dir().join(format!("{file}.{}.o", self.builds));
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

    fn text(&self, file: &str) -> String {
        self.files.iter().find(|(n, _)| n == file).unwrap().1.clone()
    }

    /// Replaces `from` by `to` in `file` and patches the running program
    /// with the new object against the old one; returns the JSON report.
    fn edit(&mut self, file: &str, from: &str, to: &str) -> Value {
        let old_text = self.text(file);
        assert!(old_text.contains(from), "{from:?} is not in {file}");
        std::fs::write(self.dir().join(file), &old_text).unwrap();
        let base = self.object(file);
        let new_text = old_text.replace(from, to);
        std::fs::write(self.dir().join(file), &new_text).unwrap();
        self.files.iter_mut().find(|(n, _)| n == file).unwrap().1 = new_text;
        let new = self.object(file);
        let report = self.relive(&[
            "patch",
            "--pid",
            &self.target.pid_arg(),
            new.to_str().unwrap(),
            "--base",
            base.to_str().unwrap(),
            "--json",
        ]);
        assert!(
            report.status.success(),
            "{} {:?}: {}",
            self.cc,
            self.flags,
            String::from_utf8_lossy(&report.stderr)
        );
        serde_json::from_slice(&report.stdout).unwrap()
    }

    fn relive(&self, args: &[&str]) -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_relive"))
            .args(args)
            .env("RELIVE_STATE_DIR", self.state.path())
            .output()
            .unwrap()
    }

    /// The first `rounds` lines a fresh build of the current sources
    /// prints: what the patched program must print now.
    fn oracle(&self, rounds: usize) -> Vec<String> {
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("oracle");
        build(&self.cc, &self.flags, dir.path(), &self.files, &exe);
        let out = Command::new(&exe)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                use std::io::Write as _;
                let mut stdin = child.stdin.take().unwrap();
                stdin.write_all("step\n".repeat(rounds).as_bytes())?;
                drop(stdin);
                child.wait_with_output()
            })
            .unwrap();
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(String::from)
            .collect()
    }

    /// The patched program's next round equals a fresh build's first.
    fn matches_oracle(&mut self, what: &str) {
        let got = self.step();
        let want = self.oracle(1).remove(0);
        assert_eq!(
            got, want,
            "{what} ({} {:?}): patched program vs fresh build",
            self.cc, self.flags
        );
    }
}

fn applied<'a>(report: &'a Value, name: &str) -> Option<&'a Value> {
    report["applied"].as_array().unwrap().iter().find(|a| a["name"] == name)
}

/// A switch dispatched through a relative jump table (case bodies that
/// compute, so no lookup table replaces it), with another function after
/// it in the same section.
const SWITCH: &str = r#"
#include <stdio.h>
__attribute__((noinline)) int pick(int x, int y) {
    switch (x) {
    case 0: return y * 3 + 1;
    case 1: return y ^ 0x55;
    case 2: return y - 17;
    case 3: return y * y;
    case 4: return y / 3 + 4;
    case 5: return y << 2;
    case 6: return y % 7 + 60;
    case 7: return ~y;
    case 8: return y * 11 - 5;
    case 9: return y + 1000;
    case 10: return y * 5;
    case 11: return y - 128;
    default: return -1;
    }
}
const char *label(int v) { return v & 1 ? "odd" : "even"; }
/* Read each round: clang finds pick pure and would otherwise compute the
   loop once, before the first round, and never call pick again. */
volatile int bias = 40;
int main(void) {
    char line[64];
    while (fgets(line, sizeof line, stdin)) {
        long s = 0;
        for (int i = 0; i < 13; i++) s = s * 7 + pick(i, i + bias);
        printf("%ld %s\n", s, label((int)s));
        fflush(stdout);
    }
    return 0;
}
"#;

const SWITCH_BUILDS: [&[&str]; 4] = [
    &["-O0"],
    &["-O2", "-falign-functions=1"],
    &["-O2", "-fno-pie", "-no-pie"],
    &["-Os"],
];

/// Defect 1: a jump table entry `.long .Lcase - .Ltable` is relocated
/// against `.text + case + (entry - table)`; taken without the entry's
/// distance, the last entries pointed into the next function (old code ran
/// for the last cases) or into padding (the file was refused).
#[test]
fn jump_table_entries_reach_the_new_cases() {
    for cc in compilers() {
        for flags in SWITCH_BUILDS {
            let mut p = Program::start(cc, flags, &[("app.c", SWITCH)]);
            p.step();
            let r = p.edit("app.c", "return y - 128;", "return y - 129;");
            assert!(applied(&r, "pick").is_some(), "{r}");
            p.matches_oracle("last case edited");
            p.edit("app.c", "return y * 3 + 1;", "return y * 3 + 2;");
            p.matches_oracle("first case edited");
        }
    }
}

/// Defect 4: swapping two case labels changes only the jump table (the
/// code is the same bytes); `relive diff` said unchanged and nothing was
/// patched.
#[test]
fn a_change_only_in_the_jump_table_is_patched() {
    for cc in compilers() {
        let mut p = Program::start(cc, &["-O0"], &[("app.c", SWITCH)]);
        p.step();
        let swapped = SWITCH
            .replace("case 1: return y ^ 0x55;", "case 9: return y ^ 0x55;")
            .replace("case 9: return y + 1000;", "case 1: return y + 1000;");
        // One edit that swaps two labels: the case bodies stay in place.
        let old = p.text("app.c");
        let r = p.edit("app.c", &old, &swapped);
        assert!(applied(&r, "pick").is_some(), "{cc}: pick not patched: {r}");
        p.matches_oracle("case labels swapped");
    }
}

const HIDDEN_LIB: &str = r#"
#define INTERNAL __attribute__((visibility("hidden")))
INTERNAL int scale(int x) { int s = 0; for (int i = 0; i < x; i++) s += i * 3; return s; }
INTERNAL int api(int x) { int s = 1; for (int i = 0; i < x; i++) s = s * 3 + (i ^ 5); return s + 100; }
"#;

const HIDDEN_APP: &str = r#"
#include <stdio.h>
int api(int);
int main(void) {
    char line[64];
    while (fgets(line, sizeof line, stdin)) { printf("%d\n", api(9)); fflush(stdout); }
    return 0;
}
"#;

/// Defect 2: hidden-visibility functions are LOCAL symbols of the linked
/// program (under an empty-named STT_FILE): an edit of one must redirect
/// the program's copy, and new code calling another must find it.
#[test]
fn hidden_visibility_functions_are_the_programs() {
    for cc in compilers() {
        for flags in [&["-O0"][..], &["-O2", "-falign-functions=16"]] {
            let mut p = Program::start(cc, flags, &[("app.c", HIDDEN_APP), ("lib.c", HIDDEN_LIB)]);
            p.step();
            let r = p.edit("lib.c", "return s + 100;", "return s + 200;");
            let api = applied(&r, "api").unwrap_or_else(|| panic!("api not redirected: {r}"));
            assert_eq!(api["reach"]["reachable"], true, "{r}");
            assert!(
                r["added"].as_array().unwrap().is_empty(),
                "api was added, not replaced: {r}"
            );
            p.matches_oracle("hidden function edited");
            p.edit("lib.c", "return s + 200;", "return s + scale(x);");
            p.matches_oracle("calls another hidden function");
        }
    }
}

const ADDS: &str = r#"
#include <stdio.h>
__attribute__((noinline)) int f(int x) { int s = 0; for (int i = 0; i < x; i++) s += i; return s + 1; }
int main(void) {
    char line[64];
    while (fgets(line, sizeof line, stdin)) { printf("%d\n", f(5)); fflush(stdout); }
    return 0;
}
"#;

/// Defect 3: patch 1 adds `static int h()` (and a static counter) called
/// from `f`; patch 2 changes only `h`: calls must reach the second `h`,
/// and the counter keeps counting.
#[test]
fn a_function_added_by_a_patch_can_be_patched_again() {
    for flags in [&["-O0"][..], &["-O2", "-falign-functions=16"]] {
        let mut p = Program::start("gcc", flags, &[("app.c", ADDS)]);
        assert_eq!(p.step(), "11");
        let r = p.edit(
            "app.c",
            "__attribute__((noinline)) int f(int x) { int s = 0; for (int i = 0; i < x; i++) s += i; return s + 1; }",
            "static int calls;\n__attribute__((noinline)) static int h(int x) { calls++; return x * 10 + calls; }\n__attribute__((noinline)) int f(int x) { int s = 0; for (int i = 0; i < x; i++) s += i; return s + h(x); }",
        );
        assert!(r["added"].as_array().unwrap().iter().any(|a| a["name"] == "h"), "{r}");
        assert_eq!(p.step(), "61", "{flags:?}"); // 10 + 5*10 + 1
        assert_eq!(p.step(), "62", "{flags:?}");
        let r = p.edit("app.c", "return x * 10 + calls;", "return x * 100 + calls;");
        assert!(applied(&r, "h").is_some(), "h not redirected: {r}");
        let calls = r["data"].as_array().unwrap().iter().find(|d| d["name"] == "calls");
        assert_eq!(calls.map(|c| &c["action"]), Some(&Value::from("kept")), "{r}");
        assert_eq!(p.step(), "513", "{flags:?}: the second h runs with the counter kept");
    }
}

const LOOP: &str = r#"
#include <stdio.h>
int compute(int x) { return x * 3 + 1; }
__attribute__((noinline)) int step(int x) { int s = 0; for (int i = 0; i < x; i++) s += compute(i) ^ i; return s; }
int main(void) {
    char line[64];
    while (fgets(line, sizeof line, stdin)) { printf("%d %d\n", compute(5), step(5)); fflush(stdout); }
    return 0;
}
"#;

/// Defect 8: `compute` is inlined into `main`'s running loop (and into
/// `step`). The out-of-line `compute` is called by nothing and `main`'s
/// running call never returns: both are reported as unreachable, never as
/// patched; `step` is patched and its new code runs.
#[test]
fn unreachable_new_code_is_reported_not_patched() {
    for flags in [&["-O2"][..], &["-O2", "-fno-pie", "-no-pie"]] {
        let mut p = Program::start("gcc", flags, &[("app.c", LOOP)]);
        assert_eq!(p.step(), "16 29");
        let r = p.edit("app.c", "return x * 3 + 1;", "return x * 4 + 1;");
        let reach = |n: &str| applied(&r, n).unwrap_or_else(|| panic!("{n}: {r}"))["reach"].clone();
        assert_eq!(reach("step")["reachable"], true, "{r}");
        assert_eq!(reach("main")["reachable"], false, "{r}");
        assert!(reach("main")["note"].as_str().unwrap().contains("outermost"), "{r}");
        assert_eq!(reach("compute")["reachable"], false, "{r}");
        // What the report says is what runs: main's loop keeps the old
        // compute inline, step runs the new one.
        assert_eq!(p.step(), "16 51");
        // The words a user reads: status says main's and compute's new
        // code cannot run (it listed them like step).
        let out = p.relive(&["status", "--pid", &p.target.pid_arg()]);
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout);
        let said = |name: &str| {
            let mut lines = text.lines().skip_while(|l| !l.starts_with(name)).skip(1);
            lines
                .find(|l| !l.starts_with("    generation"))
                .unwrap_or("")
                .to_string()
        };
        assert!(said("main").contains("not reached: main is the outermost"), "{text}");
        assert!(
            said("compute").contains("not reached: nothing in the program calls compute"),
            "{text}"
        );
        assert!(!said("step").contains("not reached"), "{text}");
        let out = p.relive(&["status", "--pid", &p.target.pid_arg(), "--json"]);
        let status: Value = serde_json::from_slice(&out.stdout).unwrap();
        let entry = |n: &str| {
            status["patches"]
                .as_array()
                .unwrap()
                .iter()
                .find(|e| e["name"] == n)
                .cloned()
                .unwrap()
        };
        assert!(entry("main")["unreached"].is_string(), "{status}");
        assert!(entry("step").get("unreached").is_none(), "{status}");
    }
}

/// The same edit as a user sees it on the terminal: `unreachable main`
/// with the reason, and no `patched main`.
#[test]
fn unreachable_functions_are_named_in_the_text_report() {
    let mut p = Program::start("gcc", &["-O2"], &[("app.c", LOOP)]);
    p.step();
    let dir = p.dir();
    std::fs::write(dir.join("app.c"), LOOP).unwrap();
    let base = p.object("app.c");
    std::fs::write(dir.join("app.c"), LOOP.replace("x * 3 + 1", "x * 4 + 1")).unwrap();
    let new = p.object("app.c");
    let out = p.relive(&[
        "patch",
        "--pid",
        &p.target.pid_arg(),
        new.to_str().unwrap(),
        "--base",
        base.to_str().unwrap(),
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("unreachable main"), "{text}");
    assert!(!text.contains("patched main"), "{text}");
    assert!(text.contains("patched step"), "{text}");
    assert!(text.contains("note: main is the outermost function"), "{text}");
    assert!(text.contains("\ndata    "), "main's format string: {text}");
    // Under -q the notes and data lines are left out, the results are not.
    let pid = p.target.pid_arg();
    assert!(p.relive(&["revert", &pid, "--all"]).status.success());
    let out = p.relive(&[
        "-q",
        "patch",
        &pid,
        new.to_str().unwrap(),
        "--base",
        base.to_str().unwrap(),
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        text.contains("unreachable main") && text.contains("patched step"),
        "{text}"
    );
    assert!(!text.contains("note:") && !text.contains("data    "), "{text}");
}

/// A C++ `main` that catches exceptions: its landing pad is a separate
/// `main.cold` part, which the new `main` jumps to and which jumps back
/// into it (snappy's driver, found by a user's trial).
const CATCHING_MAIN: &str = r#"
#include <cstdio>
#include <stdexcept>
#include <string>
static unsigned mix(const char *s) { unsigned h = 2166136261u; for (; *s; s++) { h ^= (unsigned char)*s; h *= 16777619u; } return h % 1000; }
__attribute__((noinline)) int check(int n) { if (n < 0) throw std::runtime_error("negative " + std::to_string(n)); return n * 2; }
__attribute__((noinline)) int step(int x) { return check(x) + 1; }
int main() {
    char line[64];
    for (int i = 0; fgets(line, sizeof line, stdin); i++) {
        std::string err = "none";
        try { step(i % 2 - 1); } catch (const std::exception &e) { err = e.what(); }
        printf("%u %s\n", mix("hello"), err.c_str());
        fflush(stdout);
    }
}
"#;

/// An edit of a helper inlined only into a running `main` that has a
/// cold part: the new cold part is "called" only by the new `main`, which
/// never runs, so `main` is unreachable, not patched (it was said patched,
/// with the cold part's call from the new code counted as a caller).
#[test]
fn a_main_with_a_cold_part_is_still_unreachable() {
    if !installed("g++") {
        return;
    }
    let mut p = Program::start("g++", &["-O2"], &[("app.cc", CATCHING_MAIN)]);
    let before = p.step();
    let r = p.edit("app.cc", "return h % 1000;", "return h % 1000 + 1;");
    let main = applied(&r, "main").unwrap_or_else(|| panic!("main is not in the report: {r}"));
    assert_eq!(main["reach"]["reachable"], false, "{r}");
    assert!(main["reach"]["note"].as_str().unwrap().contains("outermost"), "{r}");
    // What the report says is what runs: the old main, its old value.
    for _ in 0..3 {
        assert_eq!(p.step().split(' ').next(), before.split(' ').next());
    }
}

/// An edit that grows `main`'s cold part (its landing pad): the patch
/// brings a copy of the new cold part, which the new `main` enters. The
/// edited sources' object verifies against the process, cold part
/// included, but for `main` itself, whose running loop keeps its old code
/// (NOT REACHABLE: what runs is the old `main`); the original's differs in
/// both (the cold part was compared with the program's own, which only the
/// old `main` enters, and said to differ).
#[test]
fn a_patched_function_s_cold_part_verifies_as_its_copy() {
    if !installed("g++") {
        return;
    }
    let mut p = Program::start("g++", &["-O2"], &[("app.cc", CATCHING_MAIN)]);
    p.step();
    let base = p.object("app.cc");
    let r = p.edit(
        "app.cc",
        "err = e.what();",
        "err = std::string(\"caught: \") + e.what();",
    );
    assert!(applied(&r, "main").is_some(), "{r}");
    let new = p.object("app.cc");
    let pid = p.target.pid_arg();
    let verify = |obj: &Path| p.relive(&["verify", "--pid", &pid, obj.to_str().unwrap()]);
    let out = p.relive(&["verify", "--pid", &pid, new.to_str().unwrap(), "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(5), "{report}");
    assert_eq!(
        report[0]["differs"],
        serde_json::json!([]),
        "the cold part is its copy: {report}"
    );
    assert_eq!(report[0]["unreached"][0]["function"], "main", "{report}");
    assert_eq!(report[0]["unreached"].as_array().unwrap().len(), 1, "{report}");
    let out = verify(&base);
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{text}");
    assert!(text.contains("main.cold") && text.contains("main:"), "{text}");
}

const CONSTANTS: &str = r#"
#include <stdio.h>
static const int table[4] = {1, 2, 3, 4};
__attribute__((noinline)) int sum(int n) { int s = 0; for (int i = 0; i < n; i++) s += table[i & 3] * i; return s; }
volatile int n = 9; /* read each round: clang would fold sum(9) */
int main(void) {
    char line[64];
    while (fgets(line, sizeof line, stdin)) { printf("%d\n", sum(n)); fflush(stdout); }
    return 0;
}
"#;

/// Found by the differential harness (zlib's `configuration_table`): a
/// changed constant table was "nothing to patch". The functions that read
/// it are patched with a new copy of it.
#[test]
fn a_changed_constant_table_patches_its_readers() {
    // What was taken from it before stays: said (a table of functions Lua
    // registers at start-up was patched unsaid).
    table_edit_patches_sum(
        CONSTANTS,
        "the contents of table changed: the new code of sum reads the new copy",
        "constant table changed",
    );
}

/// `app` (whose `table` is `{1, 2, 3, 4}`) edited to `{1, 2, 3, 5}` under
/// each compiler at -O0 and -O2: `sum` is patched, with a note saying
/// `said`, and the program prints what a fresh build prints.
fn table_edit_patches_sum(app: &str, said: &str, what: &str) {
    for cc in compilers() {
        for flags in [&["-O0"][..], &["-O2"]] {
            let mut p = Program::start(cc, flags, &[("app.c", app)]);
            p.step();
            let r = p.edit("app.c", "{1, 2, 3, 4}", "{1, 2, 3, 5}");
            assert!(applied(&r, "sum").is_some(), "{cc} {flags:?}: {r}");
            assert!(r["warnings"].to_string().contains(said), "{cc} {flags:?}: {r}");
            p.matches_oracle(what);
        }
    }
}

/// A changed constant table that a constant table of pointers points to
/// (expat's `latin1_encoding`, which `encodings` lists): the readers of
/// the pointer table are patched with a new copy of it pointing to the
/// new table, and the program computes what a fresh build does. Before,
/// the patch said "patched" and the program went on reading the old
/// table through its own pointer table (a trial on expat: a parser made
/// after the patch never saw the edit).
#[test]
fn a_table_reached_through_a_constant_pointer_table_is_read_new() {
    const APP: &str = r#"
#include <stdio.h>
static const int table[4] = {1, 2, 3, 4};
static const int other[4] = {5, 6, 7, 8};
static const int *const tables[2] = {table, other};
__attribute__((noinline)) int sum(int k, int n) { int s = 0; for (int i = 0; i < n; i++) s += tables[k & 1][i & 3] * i; return s; }
volatile int n = 9, k0 = 0, k1 = 1;
int main(void) {
    char line[64];
    while (fgets(line, sizeof line, stdin)) { printf("%d %d\n", sum(k0, n), sum(k1, n)); fflush(stdout); }
    return 0;
}
"#;
    table_edit_patches_sum(
        APP,
        "the contents of table changed: the new code of sum reads the new copy (through a new copy of tables, which points to it)",
        "a table reached through a constant pointer table",
    );
}

/// A constant table only other data points to (QuickJS registers its
/// `Math` functions through `js_math_obj`, which points to
/// `js_math_funcs`): no function reads it, so the program keeps its copy,
/// and the note says so (it said "changed: now read the new copy", naming
/// no reader).
#[test]
fn a_constant_table_only_data_refers_to_is_said_to_stay() {
    const APP: &str = r#"
#include <stdio.h>
static const int table[4] = {1, 2, 3, 4};
const int *tables[1] = {table};
__attribute__((noinline)) int sum(int n) { int s = 0; for (int i = 0; i < n; i++) s += tables[0][i & 3] * i; return s; }
volatile int n = 9;
int main(void) {
    char line[64];
    while (fgets(line, sizeof line, stdin)) { printf("%d\n", sum(n)); fflush(stdout); }
    return 0;
}
"#;
    let mut p = Program::start("gcc", &["-O0"], &[("app.c", APP)]);
    let before = p.step();
    let r = p.edit("app.c", "{1, 2, 3, 4}", "{1, 2, 3, 5}");
    assert!(
        r["warnings"].to_string().contains(
            "the contents of table changed, but no function reads it directly (only other data of the program refers to it), so the program keeps the copy it uses now (the one the data that refers to it points to, which may be a copy an earlier patch brought in) until a restart"
        ),
        "{r}"
    );
    assert_eq!(p.step(), before, "the program keeps its copy, as said");
}

/// `compute` is `const` to GCC (no memory touched): a call before a loop
/// whose every turn calls it again is hoisted out, and the loop prints
/// the kept result. Called once, never again.
const HOISTED: &str = r#"
#include <stdio.h>
__attribute__((noinline)) int compute(int x) { int s = 0; for (int i = 0; i < x; i++) s += i ^ (x * 2); return s + x * 2; }
int main(void) {
    char line[64];
    do { printf("%d\n", compute(21)); fflush(stdout); } while (fgets(line, sizeof line, stdin));
    return 0;
}
"#;

/// The same function called in the loop, after the read: not hoisted.
const IN_THE_LOOP: &str = r#"
#include <stdio.h>
__attribute__((noinline)) int compute(int x) { int s = 0; for (int i = 0; i < x; i++) s += i ^ (x * 2); return s + x * 2; }
int main(void) {
    char line[64];
    while (fgets(line, sizeof line, stdin)) { printf("%d\n", compute(21)); fflush(stdout); }
    return 0;
}
"#;

/// Found by a bundle test: relive said "patched compute" while `main`
/// kept printing the old result, because the only call of `compute` is
/// one `main` made before its loop. relive's verdict must be what the
/// program does: "patched" exactly when its output changes.
#[test]
fn a_call_main_made_before_its_loop_does_not_count_as_reachable() {
    for cc in compilers() {
        for (program, source) in [("hoisted", HOISTED), ("in the loop", IN_THE_LOOP)] {
            let mut p = Program::start(cc, &["-O2"], &[("app.c", source)]);
            let before = p.step();
            assert_eq!(before, "966", "{cc} {program}");
            let r = p.edit("app.c", "(x * 2)", "(x * 3)");
            let reach = applied(&r, "compute").unwrap_or_else(|| panic!("{cc} {program}: {r}"))["reach"].clone();
            let after = p.step();
            let reachable = reach["reachable"] == true;
            assert_eq!(
                reachable,
                after != before,
                "{cc} {program}: relive says {reach}, the program printed {after}"
            );
            if cc == "gcc" {
                // GCC hoists the call in the first program, not in the second.
                assert_eq!(reachable, program == "in the loop", "{cc} {program}: {r}");
            }
            if !reachable {
                let note = reach["note"].as_str().unwrap_or_default();
                assert!(
                    note.contains("part of main that its thread has passed"),
                    "{cc} {program}: {reach}"
                );
            }
        }
    }
}
