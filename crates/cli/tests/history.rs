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
    // Its time, as a patch's report gives it (a trial found none).
    assert!(report["timing_us"]["total"].as_u64().is_some_and(|t| t > 0), "{report}");
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

/// The code `revert --last` brings back runs again for the checks too: a
/// later patch's reachability reads it. The journal dropped that
/// generation's code from what runs when the next one came, and did not
/// take it back: `h`, called only from the generation of `a` brought
/// back, was said NOT REACHABLE, and gdb was not given that code's
/// symbol file again.
#[test]
fn code_a_revert_last_brings_back_is_read_as_running() {
    const CALLS: &str = r#"
#include <stdio.h>
#include <unistd.h>
__attribute__((noinline, noipa)) int h(void) { return 100; }
__attribute__((noinline, noipa)) int a(void) { return 1; }
int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (;;) { printf("v %d\n", a()); usleep(2000); }
}
"#;
    let target = Target::start_c(CALLS, &["-O2", "-g"]);
    target.wait_for("v 1");
    let pid = target.pid_arg();
    let version = |name: &str, a: &str, h: i32| {
        let text = CALLS
            .replace("return 1;", a)
            .replace("return 100;", &format!("return {h};"));
        build_object(&target, name, &text, &["-O2", "-g"])
    };
    let base = version("base", "return 1;", 100);
    let one = version("one", "return 1 + h();", 100);
    let two = version("two", "return 2 + h();", 100);
    let three = version("three", "return 1 + h();", 200);
    ok(relive(&target, &["patch", &pid, &one, "--base", &base]));
    target.wait_for("v 101");
    ok(relive(&target, &["patch", &pid, &two, "--base", &one]));
    target.wait_for("v 102");
    ok(relive(&target, &["revert", &pid, "--last"]));
    target.wait_for("v 101");
    // gdb is given the code that runs again: back on the list (with the
    // undone generation's, which stays listed until a patch finds no
    // thread in it).
    let listed = || {
        let gdb = ok(relive(&target, &["gdb", &pid, "--json"]));
        let gdb: Value = serde_json::from_slice(&gdb.stdout).unwrap();
        assert_eq!(gdb["symbol_files"], serde_json::json!([]), "{gdb}");
        gdb["listed"].as_u64().unwrap()
    };
    assert_eq!(listed(), 2);
    let out = ok(relive(&target, &["patch", &pid, &three, "--base", &one, "--json"]));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let h = report["applied"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "h")
        .unwrap_or_else(|| panic!("{report}"));
    assert_eq!(h["reach"]["reachable"], true, "{report}");
    target.wait_for("v 201");
    // The undone generation's file is off the list now (nothing runs
    // it): the one brought back and this patch's are on it.
    assert_eq!(listed(), 2);
    let debugger_list = relive_testkit::jit_debug_list(target.pid());
    assert_eq!(debugger_list.len(), 2, "{debugger_list:?}");
}

/// A function a patch added, patched again, goes back by `revert --last`
/// to the code the patch that added it brought, which is said so: it was
/// said as "reverted f", read as the program's original code (a QuickJS
/// trial).
#[test]
fn revert_last_of_an_added_function_says_what_it_goes_back_to() {
    let target = Target::start_c(APP, &["-O2", "-g"]);
    target.wait_for("v 1 10");
    let pid = target.pid_arg();
    let base = object(&target, 1, 10, "base");
    let with_helper = |k: i32| {
        APP.replace(
            "__attribute__((noinline, noipa)) int a(void) { return 1; }",
            &format!("__attribute__((noinline, noipa)) int helper(void) {{ return {k}; }}\n__attribute__((noinline, noipa)) int a(void) {{ return helper(); }}"),
        )
    };
    let one = build_object(&target, "one", &with_helper(5), &["-O2", "-g"]);
    let two = build_object(&target, "two", &with_helper(6), &["-O2", "-g"]);
    ok(relive(&target, &["patch", &pid, &one, "--base", &base]));
    target.wait_for("v 5 10");
    ok(relive(&target, &["patch", &pid, &two, "--base", &one]));
    target.wait_for("v 6 10");
    let out = ok(relive(&target, &["revert", &pid, "--last"]));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("reverted helper at ")
            && said
                .contains("to the code the patch that added it brought (change 1); the program had no such function"),
        "{said}"
    );
    target.wait_for("v 5 10");
}

/// Reverting a function that is not patched says so, and whether the
/// program has such a function at all (a zstd trial: a misspelt name read
/// as one of the program's, not patched).
#[test]
fn reverting_a_name_the_program_lacks_says_so() {
    let target = Target::start_c(APP, &["-O2", "-g"]);
    target.wait_for("v 1 10");
    let pid = target.pid_arg();
    let base = object(&target, 1, 10, "base");
    let one = object(&target, 2, 10, "one");
    ok(relive(&target, &["patch", &pid, &one, "--base", &base]));
    target.wait_for("v 2 10");
    let out = relive(&target, &["revert", &pid, "no_such_fn"]);
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no_such_fn is not patched in process")
            && err.contains("its program has no function of that name"),
        "{err}"
    );
    let out = relive(&target, &["revert", &pid, "b"]);
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("b is not patched in process") && !err.contains("no function of that name"),
        "{err}"
    );
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
    assert!(message.contains("the object of the last patch of it"), "{message}");
    target.wait_for("v 2 10");
    // With the right base, it is a change of b and a back to 1.
    ok(relive(&target, &["patch", &pid, &other, "--base", &one]));
    target.wait_for("v 1 30");
    // After `revert --all` the program's own code runs: that is the base
    // to give, not "the last patch's" object (an lcms2 trial).
    ok(relive(&target, &["revert", &pid, "--all"]));
    target.wait_for("v 1 10");
    let out = relive(&target, &["patch", &pid, &one, "--base", &other]);
    let message = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{message}");
    assert!(
        message.contains("the object of the program's build (no relive patch of it is in force)"),
        "{message}"
    );
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

/// A function of 140,000 bytes (a pool's code part is 256 KiB): every
/// new generation fills a pool. GCC moves its call of `report` (a `cold`
/// function) to a cold part, `big.cold`, placed anew with each
/// generation. A second thread can be held inside the generation running
/// when the test says so (`h` on stdin, `r` to let it go).
const BIG: &str = r#"
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>
#ifndef K
#define K 0
#endif
volatile int holding, go;
__attribute__((cold, noinline)) void report(const char *m, unsigned x) { fprintf(stderr, m, x); }
__attribute__((noinline, noipa)) unsigned big(unsigned x, int wait) {
    if (wait) { printf("holding\n"); while (holding) usleep(1000); }
    if (x == 12345) { report("never %u\n", x); x = x * 7 + holding; }
    __asm__ volatile(".skip 140000, 0x90");
    return x * 3 + K;
}
__attribute__((noinline, noipa)) int small(void) { return 1; }
static void *holder(void *arg) {
    for (;;) { if (go) { go = 0; printf("held %u\n", big(7, 1)); } usleep(1000); }
    return arg;
}
static void *reader(void *arg) {
    char line[16];
    while (fgets(line, sizeof line, stdin)) {
        if (line[0] == 'h') { holding = 1; go = 1; } else holding = 0;
    }
    return arg;
}
int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    pthread_t a, b;
    pthread_create(&a, 0, holder, 0);
    pthread_create(&b, 0, reader, 0);
    for (;;) { printf("v %u %d\n", big(7, 0), small()); usleep(2000); }
}
"#;

/// `BIG` built with `-DK=k`, `small` returning `small`.
fn big_object(target: &Target, k: u32, small: i32) -> String {
    let text = BIG.replace("return 1; }", &format!("return {small}; }}"));
    let define = format!("-DK={k}");
    build_object(
        target,
        &format!("k{k}-s{small}"),
        &text,
        &["-O2", "-g", "-pthread", &define],
    )
}

/// Each pool's address and length, as `status --json` gives them.
fn pools(target: &Target) -> Vec<(u64, u64)> {
    let out = ok(relive(target, &["status", &target.pid_arg(), "--json"]));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    v["pools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["addr"].as_u64().unwrap(), p["len"].as_u64().unwrap()))
        .collect()
}

fn mapped(pid: u32, addr: u64) -> bool {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    maps.lines().any(|l| {
        let range = l.split(' ').next().unwrap();
        let (lo, hi) = range.split_once('-').unwrap();
        let (lo, hi) = (
            u64::from_str_radix(lo, 16).unwrap(),
            u64::from_str_radix(hi, 16).unwrap(),
        );
        (lo..hi).contains(&addr)
    })
}

/// Issue 22: a function patched again and again does not grow the process
/// without end. A patch that maps a new pool frees the pools only
/// superseded generations fill, but keeps the generations `revert --last`
/// can go back to, and a pool a thread is still inside. A revert keeps
/// them too, so `revert --last` still goes back after it.
#[test]
fn superseded_generations_are_freed_and_history_stays() {
    let mut target = Target::start_c(BIG, &["-O2", "-g", "-pthread", "-DK=0"]);
    target.wait_for("v 21 1");
    let pid = target.pid_arg();
    let mut base = big_object(&target, 0, 1);
    let with_small = big_object(&target, 0, 2);
    ok(relive(&target, &["patch", &pid, &with_small, "--base", &base]));
    target.wait_for("v 21 2");
    base = with_small;
    let mut freed: Vec<u64> = Vec::new();
    let mut held_code = None;
    let mut kept_for_thread = false;
    for k in 1..=22u32 {
        let new = big_object(&target, k, 2);
        if k == 22 {
            // The words say it too, and the pause it took.
            let out = ok(relive(&target, &["patch", &pid, &new, "--base", &base]));
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(text.contains("freed   the pool at 0x"), "{text}");
            assert!(text.contains("µs to free pools"), "{text}");
            base = new;
            target.wait_for("v 43 2");
            continue;
        }
        let out = ok(relive(&target, &["patch", &pid, &new, "--base", &base, "--json"]));
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        base = new;
        target.wait_for(&format!("v {} 2", 21 + k));
        for f in report["reclaimed"]["freed"].as_array().into_iter().flatten() {
            let addr = f["addr"].as_u64().unwrap();
            assert!(!mapped(target.pid(), addr), "freed pool {addr:#x} is still mapped");
            freed.push(addr);
        }
        for kept in report["reclaimed"]["kept"].as_array().into_iter().flatten() {
            let (addr, len) = (kept["addr"].as_u64().unwrap(), kept["len"].as_u64().unwrap());
            if held_code.is_some_and(|c| (addr..addr + len).contains(&c)) {
                // Named by where the reference is: the holder's stack.
                let why = kept["why"].as_str().unwrap();
                assert!(why.contains("'s stack) holds 0x"), "{why}");
                kept_for_thread = true;
            }
        }
        if k == 6 {
            // The holder thread enters generation 6 and stays there.
            held_code = Some(report["applied"][0]["current_addr"].as_u64().unwrap());
            writeln!(target.stdin(), "h").unwrap();
            target.wait_for("holding");
        }
        if k == 18 {
            assert!(
                kept_for_thread,
                "the pool the holder thread is in was not reported kept"
            );
            assert!(
                !freed
                    .iter()
                    .any(|&f| held_code.is_some_and(|c| (f..f + (256 << 10)).contains(&c))),
                "the pool a thread runs in was freed"
            );
            writeln!(target.stdin(), "r").unwrap();
            // It finishes the generation it entered.
            target.wait_for("held 27");
        }
    }
    let held = held_code.unwrap();
    assert!(
        freed.iter().any(|&f| (f..f + (256 << 10)).contains(&held)),
        "the pool of generation 6 was not freed once its thread left: {freed:x?}"
    );
    // 24 pools without freeing; the slots' pool and the 8 generations
    // `revert --last` reaches (one pool each) stay.
    let now = pools(&target);
    assert!(now.len() <= 1 + journal_history(), "{} pools: {now:x?}", now.len());
    assert!(freed.len() >= 12, "{freed:x?}");
    // The symbol files of freed pools' code are gone from the state
    // directory: one per patch left, and the first pool has two (the
    // patch of `small`, then generation 1).
    let symbol_files = std::fs::read_dir(target.dir.path().join("state"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().ends_with(".sym"))
        .count();
    assert_eq!(symbol_files, now.len() + 1, "{now:x?}");

    // The pool that stays for good says why.
    let text = String::from_utf8(ok(relive(&target, &["status", &pid])).stdout).unwrap();
    assert_eq!(
        text.matches("holds the jump slots of 2 patched functions").count(),
        1,
        "{text}"
    );
    // A revert by name stops the threads and frees the pools no patch
    // uses: not those of generations `revert --last` goes back to.
    ok(relive(&target, &["revert", &pid, "small"]));
    target.wait_for("v 43 1");
    for k in (15..=21u32).rev() {
        ok(relive(&target, &["revert", &pid, "--last"]));
        target.wait_for(&format!("v {} 1", 21 + k));
    }
    // Further back, until the generation before is one whose pool was
    // freed: refused, nothing changed (it never jumps further back, nor to
    // the original code).
    let mut k = 15;
    let refusal = loop {
        let out = relive(&target, &["revert", &pid, "--last"]);
        if !out.status.success() {
            break String::from_utf8_lossy(&out.stderr).to_string();
        }
        k -= 1;
        target.wait_for(&format!("v {} 1", 21 + k));
    };
    assert!(
        refusal.contains(&format!("generation {} is gone: its code was freed", k - 1)),
        "{refusal}"
    );
    target.wait_for(&format!("v {} 1", 21 + k));
    let out = ok(relive(&target, &["revert", &pid, "--all", "--json"]));
    target.wait_for("v 21 1");
    assert!(pools(&target).is_empty(), "{}", String::from_utf8_lossy(&out.stdout));
}

/// A relive killed while it frees superseded pools (after the patch that
/// superseded them) leaves the program running that patch, and the next
/// relive records exactly the pools still mapped.
#[test]
fn a_relive_killed_while_freeing_pools_leaves_the_truth() {
    // Right after a pool is unmapped, and after its symbol files' memory
    // is but not the pool (the record kept listing memory that was gone).
    for failpoint in ["release-after-unmap", "release-after-symbol-files"] {
        killed_while_freeing_pools(failpoint);
    }
}

fn killed_while_freeing_pools(failpoint: &str) {
    let target = Target::start_c(BIG, &["-O2", "-g", "-pthread", "-DK=0"]);
    target.wait_for("v 21 1");
    let pid = target.pid_arg();
    let mut base = big_object(&target, 0, 1);
    let mut killed = None;
    for k in 1..=16u32 {
        let new = big_object(&target, k, 1);
        let out = Command::new(env!("CARGO_BIN_EXE_relive"))
            .args(["patch", &pid, &new, "--base", &base])
            .env("RELIVE_STATE_DIR", target.dir.path().join("state"))
            .env("RELIVE_FAILPOINT", failpoint)
            .output()
            .unwrap();
        base = new;
        if !out.status.success() {
            assert_eq!(out.status.code(), None, "{}", String::from_utf8_lossy(&out.stderr));
            killed = Some(k);
            break;
        }
    }
    let k = killed.expect("no patch freed a pool");
    // The patch stands.
    target.wait_for(&format!("v {} 1", 21 + k));
    let out = ok(relive(&target, &["status", &pid]));
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("interrupted while it freed pools"), "{text}");
    let recorded = pools(&target);
    for (addr, _) in &recorded {
        assert!(mapped(target.pid(), *addr), "pool {addr:#x} is recorded but not mapped");
    }
    let out = ok(relive(&target, &["status", &pid, "--json"]));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    for images in v["pools"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["debug_images"].as_array().cloned().unwrap_or_default())
    {
        let addr = images["addr"].as_u64().unwrap();
        assert!(
            mapped(target.pid(), addr),
            "symbol files at {addr:#x} are recorded but not mapped"
        );
    }
    // Later patches and a revert of everything work.
    let new = big_object(&target, 100, 1);
    ok(relive(&target, &["patch", &pid, &new, "--base", &base]));
    target.wait_for("v 121 1");
    ok(relive(&target, &["revert", &pid, "--all"]));
    target.wait_for("v 21 1");
    assert!(pools(&target).is_empty());
}

/// How many generations of a function `revert --last` can go back to.
fn journal_history() -> usize {
    8
}

/// A program whose object has half a megabyte of DWARF (40 structs of
/// 1,000 members) and one small function: a patch's symbol file is that
/// big, its code a few bytes.
fn wide_dwarf_source() -> String {
    let mut text = String::from("#include <stdio.h>\n#include <unistd.h>\n#ifndef K\n#define K 0\n#endif\n");
    for s in 0..40 {
        let members: String = (0..1000).map(|m| format!("int m{m}; ")).collect();
        text += &format!("struct S{s} {{ {members}}};\nstruct S{s} g{s};\n");
    }
    text += "volatile int bias;\n__attribute__((noinline, noipa)) int f(void) { return K + bias * bias; }\n";
    text += "int main(void) {\n    setvbuf(stdout, NULL, _IOLBF, 0);\n    for (;;) { printf(\"v %d\\n\", f()); usleep(2000); }\n}\n";
    text
}

/// Issue 22: a small function patched again and again never fills a
/// pool's code, but each patch lists a symbol file with the object's
/// whole DWARF. A pool whose symbol files reach their limit counts as
/// full, so the next patch takes a new pool and the superseded ones go,
/// symbol files and all.
#[test]
fn symbol_files_do_not_pile_up_beside_one_pool() {
    let text = wide_dwarf_source();
    let target = Target::start_c(&text, &["-O2", "-g", "-DK=0"]);
    target.wait_for("v 0");
    let pid = target.pid_arg();
    let dir = target.dir.path();
    let objects: Vec<String> = std::thread::scope(|s| {
        let half = |range: std::ops::RangeInclusive<u32>| {
            let text = &text;
            s.spawn(move || {
                range
                    .map(|k| {
                        let at = dir.join(format!("w{k}"));
                        std::fs::create_dir_all(&at).unwrap();
                        let flags = ["-O2", "-g", &format!("-DK={k}")];
                        let object = relive_testkit::compile_object(&at, "target", text, &flags);
                        object.display().to_string()
                    })
                    .collect::<Vec<_>>()
            })
        };
        let (low, high) = (half(0..=32), half(33..=64));
        let mut all = low.join().unwrap();
        all.extend(high.join().unwrap());
        all
    });
    let mut freed = 0;
    for k in 1..=64usize {
        let out = ok(relive(
            &target,
            &["patch", &pid, &objects[k], "--base", &objects[k - 1], "--json"],
        ));
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        freed += report["reclaimed"]["freed"].as_array().map_or(0, |f| f.len());
        target.wait_for(&format!("v {k}"));
    }
    let out = ok(relive(&target, &["status", &pid, "--json"]));
    assert!(freed >= 2, "{freed} pools freed");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let images: u64 = v["pools"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["debug_images"].as_array().cloned().unwrap_or_default())
        .map(|i| i["len"].as_u64().unwrap())
        .sum();
    // 64 patches' files take 64 MiB (a mapping of 1 MiB each); the first
    // pool's (with the slot: 4 patches fill a pool's share) and those of
    // the 8 generations `revert --last` reaches stay.
    assert!(images <= 16 << 20, "{} MiB of symbol files", images >> 20);
    // The debuggers' list was relinked around the files that went, and
    // holds only the file of the code that runs: each superseded one came
    // off it (gdb stopped in every generation still mapped), and none is
    // given to gdb by `relive gdb` either.
    let out = ok(relive(&target, &["gdb", &pid, "--json"]));
    let gdb: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(gdb["symbol_files"], serde_json::json!([]), "{gdb}");
    assert_eq!(gdb["listed"].as_u64(), Some(1), "{gdb}");
    assert_eq!(relive_testkit::jit_debug_list(target.pid()).len(), 1);
    ok(relive(&target, &["revert", &pid, "--all"]));
    target.wait_for("v 0");
}

/// `relive threads` names a thread running a patch's code (no module of
/// the process covers it) after the patched function, from the patch's
/// symbol file: it showed a bare address.
#[test]
fn threads_in_patched_code_are_named() {
    const SPIN: &str = r#"
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>
volatile unsigned long sink;
__attribute__((noinline)) void spin(void) {
    for (unsigned long i = 0; i < 50000000; i++) sink += i * 3;
}
static void *worker(void *arg) { for (;;) spin(); return arg; }
int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    pthread_t t;
    pthread_create(&t, 0, worker, 0);
    for (;;) { printf("up\n"); usleep(20000); }
}
"#;
    let target = Target::start_c(SPIN, &["-O2", "-g", "-pthread"]);
    target.wait_for("up");
    let pid = target.pid_arg();
    let base = build_object(&target, "base", SPIN, &["-O2", "-g", "-pthread"]);
    let new = build_object(
        &target,
        "new",
        &SPIN.replace("i * 3", "i * 5"),
        &["-O2", "-g", "-pthread"],
    );
    ok(relive(&target, &["patch", &pid, &new, "--base", &base]));
    // The worker spends nearly all its time in spin; once it has entered
    // the new one, a look at the threads finds it there.
    let named = (0..100).find_map(|_| {
        std::thread::sleep(std::time::Duration::from_millis(50));
        let text = String::from_utf8(ok(relive(&target, &["threads", &pid])).stdout).unwrap();
        text.lines()
            .find(|l| l.contains("(patch code, change 1)"))
            .map(str::to_string)
    });
    let line = named.expect("no thread was seen in the patch's code");
    assert!(line.contains("spin"), "{line}");
}

/// A variable a patch added in one pool, written by the function's newest
/// code in another pool after a call that blocks: a revert of everything
/// while a thread blocks there keeps that pool (the thread's return
/// address points in), and must keep the variable's pool too (a libuv
/// re-check: it was freed, and the server crashed when the thread woke
/// and wrote the variable).
#[test]
fn a_kept_pool_keeps_the_pool_of_what_its_code_uses() {
    let text = wide_dwarf_source().replace(
        "__attribute__((noinline, noipa)) int f(void) { return K + bias * bias; }",
        "#ifdef EXTRA\nlong extra;\n__attribute__((noinline, noipa)) int f(void) { extra += 1; usleep(150000); extra += 1000; return K + bias * bias; }\n#else\n__attribute__((noinline, noipa)) int f(void) { return K + bias * bias; }\n#endif",
    );
    let target = Target::start_c(&text, &["-O2", "-g", "-DK=0"]);
    target.wait_for("v 0");
    let pid = target.pid_arg();
    let dir = target.dir.path();
    const LAST: u32 = 8;
    let objects: Vec<String> = (0..=LAST)
        .map(|k| {
            let at = dir.join(format!("w{k}"));
            std::fs::create_dir_all(&at).unwrap();
            let k_flag = format!("-DK={k}");
            let mut flags = vec!["-O2", "-g", k_flag.as_str()];
            if k > 0 {
                flags.push("-DEXTRA");
            }
            relive_testkit::compile_object(&at, "target", &text, &flags)
                .display()
                .to_string()
        })
        .collect();
    let pools = |target: &Target| -> usize {
        let out = ok(relive(target, &["status", &target.pid_arg(), "--json"]));
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        v["pools"].as_array().map_or(0, |p| p.len())
    };
    let mut k = 1usize;
    while k <= LAST as usize && (k < 2 || pools(&target) < 2) {
        ok(relive(
            &target,
            &["patch", &pid, &objects[k], "--base", &objects[k - 1]],
        ));
        target.wait_for(&format!("v {k}"));
        k += 1;
    }
    assert!(pools(&target) >= 2, "the patches filled no second pool");
    // The thread is in f's newest code (it sleeps there): that pool
    // stays, and so must the variable's.
    ok(relive(&target, &["revert", &pid, "--all"]));
    target.wait_for("v 0");
    for _ in 0..20 {
        assert_eq!(target.next_line(), "v 0");
    }
}

/// `f` and its cold part as GCC lays them out (`f.cold` in
/// `.text.unlikely`, entered from `f` only): `f` adds `ADD`, its cold part
/// (taken for a negative argument) gives -1.
const COLD_ASM: &str = "\t.file \"f.c\"\n\t.text\n\t.globl f\n\t.type f, @function\nf:\n\ttestl %edi, %edi\n\tjs .Lcold\n\tleal ADD(%rdi), %eax\n\tret\n\t.section .text.unlikely\n\t.type f.cold, @function\nf.cold:\n.Lcold:\n\tmovl $-1, %eax\n\tret\n\t.text\n\t.size f, .-f\n\t.section .text.unlikely\n\t.size f.cold, .-f.cold\n\t.section .note.GNU-stack,\"\",@progbits\n";

/// A function patched twice, each patch bringing a copy of its cold part,
/// then `revert --last`: the running `f` is the first patch's again, and
/// so is the cold part it enters. `verify` with that patch's object says
/// so (it said the code DIFFERS, "refers to 0x…, where the compile refers
/// to f.cold": the second patch had replaced the record of the first
/// one's copy, and the revert took it back; a SQLite trial's
/// `sqlite3VdbeExec.cold`), and reports a copy whose code is another's.
#[test]
fn verify_after_revert_last_knows_the_cold_part_the_earlier_patch_brought() {
    const MAIN: &str = "#include <stdio.h>\n#include <unistd.h>\nint f(int);\nvolatile int arg = 1;\nint main(void) { setvbuf(stdout, NULL, _IOLBF, 0); for (;;) { printf(\"v %d %d\\n\", f(arg), f(-arg)); usleep(2000); } }\n";
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("main.c"), MAIN).unwrap();
    for (name, add) in [("f.s", 1), ("f1.s", 2), ("f2.s", 3)] {
        std::fs::write(d.join(name), COLD_ASM.replace("ADD", &add.to_string())).unwrap();
    }
    let gcc = |args: &[&str]| {
        let out = Command::new("gcc").args(args).current_dir(d).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    };
    // f1's hot part with another cold part.
    std::fs::write(
        d.join("f3.s"),
        COLD_ASM.replace("ADD", "2").replace("movl $-1", "movl $-2"),
    )
    .unwrap();
    for (s, o) in [("f.s", "f0.o"), ("f1.s", "f1.o"), ("f2.s", "f2.o"), ("f3.s", "f3.o")] {
        gcc(&["-c", s, "-o", o]);
    }
    gcc(&["-O2", "main.c", "f.s", "-o", "app"]);
    let exe = d.join("app");
    let target = Target::spawn(Command::new(&exe), exe, dir);
    target.wait_for("v 2 -1");
    let pid = target.pid_arg();
    let path = |o: &str| target.dir.path().join(o).display().to_string();
    ok(relive(
        &target,
        &["patch", &pid, &path("f1.o"), "--base", &path("f0.o")],
    ));
    target.wait_for("v 3 -1");
    let verified = |obj: &str| relive(&target, &["verify", &pid, &path(obj)]);
    assert!(verified("f1.o").status.success());
    ok(relive(
        &target,
        &["patch", &pid, &path("f2.o"), "--base", &path("f1.o")],
    ));
    target.wait_for("v 4 -1");
    ok(relive(&target, &["revert", &pid, "--last"]));
    target.wait_for("v 3 -1");
    let out = verified("f1.o");
    let said = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    assert!(said.contains("the 2 functions are the code"), "{said}");
    // The object of the patch taken back is not what runs, nor one whose
    // cold part is another.
    let out = verified("f2.o");
    assert_eq!(out.status.code(), Some(5), "{}", String::from_utf8_lossy(&out.stdout));
    let out = verified("f3.o");
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(5), "{said}");
    assert!(
        said.contains("a copy of f.cold") && said.contains("code differs"),
        "{said}"
    );
}

/// `revert -q` of many functions says them in one line (a SQLite trial's
/// `revert -q --all` printed 106); without `-q` each has its line, and
/// `--json` lists them all.
#[test]
fn a_quiet_revert_of_many_functions_is_one_line() {
    const MANY: &str = "#include <stdio.h>\n#include <unistd.h>\n#define K 1\n__attribute__((noinline)) int f0(int x) { return x + K; }\n__attribute__((noinline)) int f1(int x) { return x * K + 1; }\n__attribute__((noinline)) int f2(int x) { return x - K; }\n__attribute__((noinline)) int f3(int x) { return x ^ K; }\n__attribute__((noinline)) int f4(int x) { return x | K << 4; }\n__attribute__((noinline)) int f5(int x) { return x + 2 * K; }\n__attribute__((noinline)) int f6(int x) { return x - 3 * K; }\nvolatile int one = 1;\nint main(void) { setvbuf(stdout, 0, _IOLBF, 0); for (;;) { printf(\"s %d\\n\", f0(one) + f1(one) + f2(one) + f3(one) + f4(one) + f5(one) + f6(one)); usleep(2000); } }\n";
    let target = Target::start_c(MANY, &["-O2", "-g"]);
    target.wait_for("s 22");
    let pid = target.pid_arg();
    let base = build_object(&target, "base", MANY, &["-O2", "-g"]);
    let edited = build_object(
        &target,
        "edited",
        &MANY.replace("#define K 1", "#define K 2"),
        &["-O2", "-g"],
    );
    let patch = ok(relive(&target, &["patch", &pid, &edited, "--base", &base, "--json"]));
    let report: Value = serde_json::from_slice(&patch.stdout).unwrap();
    assert_eq!(report["applied"].as_array().unwrap().len(), 7, "{report}");
    target.wait_for("s 41");
    let out = ok(relive(&target, &["-q", "revert", &pid, "--all"]));
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("reverted")).collect();
    assert_eq!(lines.len(), 1, "{text}");
    assert!(
        lines[0].starts_with("reverted 7 functions: ") && lines[0].ends_with(", and 2 more (--json lists them all)"),
        "{text}"
    );
    target.wait_for("s 22");
    // Without -q, one line each.
    ok(relive(&target, &["patch", &pid, &edited, "--base", &base]));
    let out = ok(relive(&target, &["revert", &pid, "--all"]));
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        text.lines().filter(|l| l.starts_with("reverted f")).count(),
        7,
        "{text}"
    );
}

/// Functions whose calls the compiler moved out of `main`'s loop (pure
/// functions of constants, called once before it) are patched
/// "unreachable", each said once, with the note said in full once and
/// "as for" the first after it (seven functions printed the same long
/// note seven times); the program keeps printing what the old code
/// computed, as the note says.
#[test]
fn functions_hoisted_out_of_mains_loop_share_one_note() {
    const HOISTED: &str = "#include <stdio.h>\n#include <unistd.h>\n#define K 1\n__attribute__((noinline)) int f0(int x) { return x + K; }\n__attribute__((noinline)) int f1(int x) { return x * K + 1; }\n__attribute__((noinline)) int f2(int x) { return x - K; }\nint main(void) { setvbuf(stdout, 0, _IOLBF, 0); for (;;) { printf(\"h %d\\n\", f0(1) + f1(1) + f2(1)); usleep(2000); } }\n";
    let target = Target::start_c(HOISTED, &["-O2", "-g"]);
    target.wait_for("h 4");
    let pid = target.pid_arg();
    let base = build_object(&target, "base", HOISTED, &["-O2", "-g"]);
    let edited = build_object(
        &target,
        "edited",
        &HOISTED.replace("#define K 1", "#define K 2"),
        &["-O2", "-g"],
    );
    let out = ok(relive(&target, &["patch", &pid, &edited, "--base", &base]));
    let text = String::from_utf8(out.stdout).unwrap();
    let unreachable: Vec<&str> = text.lines().filter(|l| l.starts_with("unreachable f")).collect();
    assert_eq!(unreachable.len(), 3, "{text}");
    let notes: Vec<&str> = text.lines().filter(|l| l.starts_with("  note: ")).collect();
    assert_eq!(notes.len(), 3, "{text}");
    assert!(notes[0].contains("its new code never runs"), "{text}");
    let first = unreachable[0].split_whitespace().nth(1).unwrap();
    assert!(
        notes[1..].iter().all(|n| *n == format!("  note: as for {first}")),
        "{text}"
    );
    target.wait_for("h 4");
}
