//! History (issue 19): `status` lists each function's generations, and
//! `revert --last` undoes the last patch only, putting each function it
//! changed back to the generation before (or its original code).

use std::process::{Command, Output};

use relive_testkit::Target;
use serde_json::Value;

const APP: &str = r#"
#include <stdio.h>
#include <unistd.h>
__attribute__((noinline, noipa)) int a(void) { return 1; }
__attribute__((noinline, noipa)) int b(void) { return 10; }
int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (;;) { printf("v %d %d\n", a(), b()); usleep(2000); }
}
"#;

fn relive(target: &Target, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_relive"))
        .args(args)
        .env("RELIVE_STATE_DIR", target.dir.path().join("state"))
        .output()
        .unwrap()
}

fn object(target: &Target, a: i32, b: i32, name: &str) -> String {
    let source = APP
        .replace("return 1;", &format!("return {a};"))
        .replace("return 10;", &format!("return {b};"));
    build_object(target, name, &source, &["-O2", "-g"])
}

/// `text` compiled with `flags` as `target.c` (the running program's
/// source name) in directory `name` of the target's: the object's path.
fn build_object(target: &Target, name: &str, text: &str, flags: &[&str]) -> String {
    let dir = target.dir.path().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    relive_testkit::compile_object(&dir, "target", text, flags)
        .display()
        .to_string()
}

fn ok(out: Output) -> Output {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    out
}

fn generations(target: &Target, name: &str) -> Vec<u64> {
    let out = ok(relive(target, &["status", &target.pid_arg(), "--json"]));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["patches"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["name"] == name)
        .flat_map(|p| {
            p["history"]
                .as_array()
                .unwrap()
                .iter()
                .map(|g| g["generation"].as_u64().unwrap())
        })
        .collect()
}

#[test]
fn revert_last_goes_back_one_patch() {
    let target = Target::start_c(APP, &["-O2", "-g"]);
    target.wait_for("v 1 10");
    let pid = target.pid_arg();
    let base = object(&target, 1, 10, "base");
    let one = object(&target, 2, 10, "one");
    let two = object(&target, 3, 20, "two");
    let o = ok(relive(&target, &["diff", &base, &one]));
    eprintln!("{}", String::from_utf8_lossy(&o.stdout));
    eprintln!(
        "{}",
        std::fs::read_to_string(std::path::Path::new(&one).with_extension("c")).unwrap()
    );
    ok(relive(&target, &["patch", &pid, &one, "--base", &base]));
    target.wait_for("v 2 10");
    ok(relive(&target, &["patch", &pid, &two, "--base", &one]));
    target.wait_for("v 3 20");
    assert_eq!(generations(&target, "a"), [1, 2]);
    assert_eq!(generations(&target, "b"), [1]);
    // The human status lists the generations too.
    let text = String::from_utf8(ok(relive(&target, &["status", &pid])).stdout).unwrap();
    assert!(
        text.contains("generation 2") && text.contains("generation 1  "),
        "{text}"
    );
    // Undo the second patch: a back to generation 1, b to its original.
    let out = ok(relive(&target, &["revert", &pid, "--last", "--json"]));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut reverted: Vec<(String, Option<u64>)> = report["reverted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["name"].as_str().unwrap().to_string(), r["generation"].as_u64()))
        .collect();
    reverted.sort();
    assert_eq!(
        reverted,
        [("a".to_string(), Some(1)), ("b".to_string(), None)],
        "{report}"
    );
    target.wait_for("v 2 10");
    assert_eq!(generations(&target, "a"), [1]);
    // And the first: the original program.
    ok(relive(&target, &["revert", &pid, "--last"]));
    target.wait_for("v 1 10");
    let out = relive(&target, &["revert", &pid, "--last"]);
    assert_eq!(out.status.code(), Some(3), "nothing to revert is not found");
    assert!(String::from_utf8_lossy(&out.stderr).contains("no patches"));
    // A patch after a --last builds on what runs.
    ok(relive(&target, &["patch", &pid, &two, "--base", &base]));
    target.wait_for("v 3 20");
    ok(relive(&target, &["revert", &pid, "--all"]));
    target.wait_for("v 1 10");
}

/// Journals of processes that have exited are removed by the next relive
/// command, whatever process it is for.
#[test]
fn journals_of_exited_processes_are_cleaned() {
    let mut first = Target::start_c(APP, &["-O2", "-g"]);
    first.wait_for("v 1 10");
    let state = first.dir.path().join("state");
    let new = object(&first, 2, 10, "new");
    ok(relive(&first, &["patch", &first.pid_arg(), &new]));
    first.wait_for("v 2 10");
    let journals = || {
        std::fs::read_dir(&state)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
            .count()
    };
    assert_eq!(journals(), 1);
    first.child.kill().unwrap();
    first.child.wait().unwrap();
    let second = Target::start_c(APP, &["-O2", "-g"]);
    second.wait_for("v 1 10");
    let out = Command::new(env!("CARGO_BIN_EXE_relive"))
        .args(["status", &second.pid_arg()])
        .env("RELIVE_STATE_DIR", &state)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(journals(), 0, "the exited process's journal is still there");
}

/// A patch that changes a caller and its callee together, then one that
/// changes only the callee: the caller runs the callee's newest code. The
/// first patch's caller called its own copy of the callee directly, and
/// the second patch (a slot update) never reached it (trial: zlib's
/// adler32 → adler32_z; deflate's configuration_table).
#[test]
fn a_callee_patched_alone_later_is_what_its_patched_caller_calls() {
    const TWO: &str = r#"
#include <stdio.h>
#include <unistd.h>
__attribute__((noinline)) int callee(int x) { return x + 1; }
__attribute__((noinline)) int caller(int x) { return callee(x) * 2; }
typedef int (*op)(int);
static const op table[] = { callee, caller };
__attribute__((noinline, noipa)) int through_table(int k) { return table[k](5); }
int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (;;) { printf("v %d %d\n", caller(1), through_table(0)); usleep(2000); }
}
"#;
    let target = Target::start_c(TWO, &["-O2", "-g"]);
    target.wait_for("v 4 6");
    let pid = target.pid_arg();
    let build = |name: &str, text: &str| build_object(&target, name, text, &["-O2", "-g"]);
    let base = build("base", TWO);
    // Both change (and the table, which the patch copies, points at them).
    let one_text = TWO
        .replace("return x + 1;", "return x + 100;")
        .replace("* 2;", "* 3;")
        .replace("table[k](5)", "table[k](6)");
    let one = build("one", &one_text);
    // Only the callee changes.
    let two = build("two", &one_text.replace("return x + 100;", "return x + 7;"));
    ok(relive(&target, &["patch", &pid, &one, "--base", &base]));
    target.wait_for("v 303 106");
    ok(relive(&target, &["patch", &pid, &two, "--base", &one]));
    target.wait_for("v 24 13");
    // `verify` agrees that this is what runs, the table the first patch
    // copied included (it said the copy was another table).
    let out = relive(&target, &["verify", &pid, &two]);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A `--base` that is not what runs (another patch came since) is
/// refused: the diff against it is not the change the program sees, and
/// the program ran a mix of both patches (trial: two patches with the
/// same base).
#[test]
fn a_stale_base_is_refused() {
    let target = Target::start_c(APP, &["-O2", "-g"]);
    target.wait_for("v 1 10");
    let pid = target.pid_arg();
    let base = object(&target, 1, 10, "base");
    let one = object(&target, 2, 10, "one");
    let other = object(&target, 1, 30, "other");
    ok(relive(&target, &["patch", &pid, &one, "--base", &base]));
    target.wait_for("v 2 10");
    // `other` changes only b against `base`; the program runs `one`'s a.
    let out = relive(&target, &["patch", &pid, &other, "--base", &base]);
    let message = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{message}");
    assert!(
        message.contains("is not what process") && message.contains("--base"),
        "{message}"
    );
    target.wait_for("v 2 10");
    // With the right base, it is a change of b and a back to 1.
    ok(relive(&target, &["patch", &pid, &other, "--base", &one]));
    target.wait_for("v 1 30");
}

/// A function that refers to a weak symbol nothing defines (zstd's
/// optional trace hooks) is patched, the reference 0 as in the program: it
/// was refused as "not defined in the patch, the program or its
/// libraries" (trial).
#[test]
fn a_weak_reference_to_nothing_is_patched_as_zero() {
    const WEAK: &str = r#"
#include <stdio.h>
#include <unistd.h>
extern void hook(int) __attribute__((weak));
__attribute__((noinline)) int f(int x) { if (hook) hook(x); return x + 1; }
int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (;;) { printf("v %d\n", f(1)); usleep(2000); }
}
"#;
    for flags in [&["-O2", "-g"][..], &["-O0", "-g", "-fno-pie", "-no-pie"][..]] {
        let target = Target::start_c(WEAK, flags);
        target.wait_for("v 2");
        let build = |name: &str, text: &str| build_object(&target, name, text, flags);
        let base = build("base", WEAK);
        let new = build("new", &WEAK.replace("x + 1", "x + 2"));
        ok(relive(&target, &["patch", &target.pid_arg(), &new, "--base", &base]));
        target.wait_for("v 3");
    }
}

/// A static the edit adds starts from its initial value without a warning
/// that it "was not found in the program": the base has no statics at
/// all, which made the patch take it for a static that went missing
/// (trial: zutil.c's new counter).
#[test]
fn a_static_new_in_the_edit_is_not_a_missing_one() {
    const APP1: &str = r#"
#include <stdio.h>
#include <unistd.h>
__attribute__((noinline, noipa)) int f(int x) { return x * x + 3 - x / 5; }
int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (;;) { printf("v %d\n", f(1)); usleep(2000); }
}
"#;
    let target = Target::start_c(APP1, &["-O2", "-g"]);
    target.wait_for("v 4");
    let build = |name: &str, text: &str| build_object(&target, name, text, &["-O2", "-g"]);
    let base = build("base", APP1);
    let new = build(
        "new",
        &APP1.replace(
            "return x * x + 3 - x / 5;",
            "static volatile int calls; calls = 10; return x * x + 3 - x / 5 + calls;",
        ),
    );
    let out = ok(relive(&target, &["patch", &target.pid_arg(), &new, "--base", &base]));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("data    calls.0") && stdout.contains("(new)"),
        "{stdout}"
    );
    assert!(!stdout.contains("was not found in the program"), "{stdout}");
    target.wait_for("v 14");
}
