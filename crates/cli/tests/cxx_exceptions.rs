//! C++ exceptions through patched code. A patch's unwind information
//! (its own `.eh_frame`, relocated for where its code lands) is handed to
//! the process's unwinder, so an exception thrown in new code is caught by
//! old code, one passes through new frames, new code catches what old
//! code throws, and a revert takes the tables back before it frees their
//! pool. Before, an exception in a patched function ended the program
//! (`terminate called after throwing ...`), and such functions were then
//! refused.

mod common;

use common::{compile, patch_json, relive_in, start};
use serde_json::Value;

const APP: &str = r#"
#include <cstdio>
#include <stdexcept>
#include <unistd.h>
__attribute__((noinline)) int risky(int i) {
    if (i % 2) throw std::runtime_error("odd one");
    return i;
}
volatile int zero;
__attribute__((noinline)) int twice(int i) { return 2 * i + zero; }
// An exception thrown in risky passes through this frame.
__attribute__((noinline)) int pass(int i) { return risky(i) + zero; }
__attribute__((noinline)) void step(int i) {
    try { printf("ok %d\n", twice(pass(i))); }
    catch (const std::exception &e) { printf("caught %s\n", e.what()); }
}
int main() {
    setvbuf(stdout, nullptr, _IOLBF, 0);
    for (int i = 0;; i++) {
        try { step(i); } catch (...) { printf("escaped\n"); }
        usleep(2000);
    }
}
"#;

#[test]
fn exceptions_are_thrown_caught_and_passed_through_in_new_code() {
    // Clang at -O0 follows each `call __cxa_throw` with a jump to a label
    // at the function's very end, which no symbol covers: the function
    // was refused as "cannot move that code".
    let builds: [(&str, &[&str]); 4] = [
        ("g++", &["-O0", "-g"]),
        ("g++", &["-O2", "-g"]),
        ("clang++", &["-O0", "-g"]),
        ("clang++", &["-O2", "-g"]),
    ];
    for (compiler, flags) in builds {
        let dir = tempfile::tempdir().unwrap();
        let what = format!("{compiler} {flags:?}");
        let mut base = compile(dir.path(), compiler, "app.cpp", "app.o", APP, flags);
        let target = start(dir.path(), compiler, &base, "app");
        target.wait_for("caught odd one");
        let state = dir.path().join("state");
        let relive = |args: &[&str]| {
            let out = relive_in(&state, args);
            assert!(
                out.status.success(),
                "{what}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            serde_json::from_slice::<Value>(&out.stdout).unwrap()
        };
        // Each edit over the last, patched against the object before it.
        let mut text = APP.to_string();
        let mut edit = |n: usize, from: &str, to: &str| {
            assert!(text.contains(from));
            text = text.replace(from, to);
            let new = compile(dir.path(), compiler, "app.cpp", &format!("edit{n}.o"), &text, flags);
            let report = patch_json(&state, target.pid(), &new, &base);
            assert_eq!(report["unwind"], "registered", "{what}: {report}");
            base = new;
        };

        // Thrown in new code (another type), caught by old code.
        edit(1, "std::runtime_error(\"odd one\")", "std::out_of_range(\"odd two\")");
        target.wait_for("caught odd two");
        target.wait_for("caught odd two");
        // Passing through a new frame: odd results only from the new code.
        edit(2, "risky(i) + zero;", "risky(i) + zero + 1;");
        while target.wait_for_prefix("ok ").parse::<i64>().unwrap() % 4 != 2 {}
        target.wait_for("caught odd two");
        // Caught by new code.
        edit(3, "printf(\"caught %s\\n\"", "printf(\"got %s\\n\"");
        target.wait_for("got odd two");
        target.wait_for("got odd two");

        // Reverted: the old code throws and catches as built. The pool
        // stays (with its tables registered): the exceptions the new code
        // threw left the address of its landing pad in heap memory they
        // freed, which a conservative search cannot tell from a live one.
        // (`backtrace_walks_through_patched_c_code` frees its pool.)
        let reverted = relive(&["revert", &target.pid_arg(), "--all", "--json"]);
        assert_eq!(
            reverted["reverted"].as_array().map(Vec::len),
            Some(3),
            "{what}: {reverted}"
        );
        target.wait_for("caught odd one");
        target.wait_for("caught odd one");
        // And the last edit again, over the revert.
        let first = format!("{}/app.o", dir.path().display());
        let again = relive(&["patch", &target.pid_arg(), &base, "--base", &first, "--json"]);
        assert_eq!(again["unwind"], "registered", "{what}: {again}");
        target.wait_for("got odd two");
    }
}

/// `backtrace()` called in patched C code walks through the new frame to
/// its callers: the depth it reports is the old code's. Before, it
/// stopped at the patched frame.
#[test]
fn backtrace_walks_through_patched_c_code() {
    const SRC: &str = r#"
#include <execinfo.h>
#include <stdio.h>
#include <unistd.h>
__attribute__((noinline)) int depth(void) {
    /* The addresses land 62 KiB below this frame, out of the way of the
       live frames printf and usleep make (see the revert below). */
    void *frames[8192];
    return backtrace(frames, 64);
}
__attribute__((noinline)) int middle(void) { return depth() + 0; }
int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (;;) { printf("depth %d\n", middle()); usleep(3000); }
}
"#;
    for flags in [&["-O0", "-g"][..], &["-O2", "-g"][..]] {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| compile(dir.path(), "gcc", "bt.c", name, text, flags);
        let base = write("bt.o", SRC);
        let new = write(
            "new.o",
            &SRC.replace("return backtrace(frames, 64);", "return 100 + backtrace(frames, 64);"),
        );
        let target = start(dir.path(), "gcc", &base, "bt");
        let state = dir.path().join("state");
        let before: i64 = target.wait_for_prefix("depth ").parse().unwrap();
        assert!(before >= 3, "{flags:?}: depth {before}");
        let report = patch_json(&state, target.pid(), &new, &base);
        // The program called backtrace() already: its unwinder is loaded.
        assert_eq!(report["unwind"], "registered", "{report}");
        // At -O2 `middle` is `jmp depth`, two bytes: a call all the same
        // (it was reported unreachable).
        assert_eq!(report["applied"][0]["reach"]["reachable"], true, "{flags:?}: {report}");
        loop {
            let now: i64 = target.wait_for_prefix("depth ").parse().unwrap();
            if now >= 100 {
                assert_eq!(
                    now,
                    100 + before,
                    "{flags:?}: the new frame's callers were not all found"
                );
                break;
            }
        }
        // Reverted, the table goes back to the unwinder before its pool is
        // unmapped: the unwinder reads every table it holds at each
        // backtrace(), and one in unmapped memory would crash the program.
        let out = relive_in(&state, &["revert", &target.pid_arg(), "--all", "--json"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let reverted: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(reverted["freed"].as_array().map(Vec::len), Some(1), "{reverted}");
        target.wait_for(&format!("depth {before}"));
        for _ in 0..5 {
            assert_eq!(target.wait_for_prefix("depth "), before.to_string());
        }
    }
}

/// A C program that never unwound has no unwinder loaded: glibc loads
/// libgcc's on the first `backtrace()`, and that one would not know the
/// new code (it stopped there: a depth of 1). relive loads the same
/// library itself before the redirect and hands it the new code's table,
/// so the depth is the one a fresh build of the edited source reports
/// (and the frames of register-keeping thunks).
#[test]
fn backtrace_in_new_code_of_a_program_that_never_unwound() {
    const SRC: &str = r#"
#include <execinfo.h>
#include <stdio.h>
#include <unistd.h>
/* noipa: at -O2 main would print a constant 0 otherwise. */
__attribute__((noipa)) int depth(void) {
    return 0;
}
__attribute__((noipa)) int middle(void) { return depth() + 0; }
int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (;;) { printf("depth %d\n", middle()); usleep(3000); }
}
"#;
    let edited = SRC.replace(
        "    return 0;",
        "    void *frames[8192];\n    return backtrace(frames, 64);",
    );
    for flags in [&["-O0", "-g"][..], &["-O2", "-g"][..]] {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| compile(dir.path(), "gcc", "bt.c", name, text, flags);
        // The oracle: the edited program, built fresh.
        let fresh_object = write("fresh.o", &edited);
        let fresh = start(dir.path(), "gcc", &fresh_object, "fresh");
        let expected: i64 = fresh.wait_for_prefix("depth ").parse().unwrap();
        drop(fresh);
        assert!(expected >= 3, "{flags:?}: a fresh build reports depth {expected}");

        let base = write("bt.o", SRC);
        let new = write("new.o", &edited);
        let target = start(dir.path(), "gcc", &base, "bt");
        target.wait_for("depth 0");
        let maps = || std::fs::read_to_string(format!("/proc/{}/maps", target.pid())).unwrap();
        assert!(
            !maps().contains("libgcc_s"),
            "{flags:?}: the program has an unwinder already"
        );
        let state = dir.path().join("state");
        let report = patch_json(&state, target.pid(), &new, &base);
        assert_eq!(report["unwind"], "registered", "{flags:?}: {report}");
        assert!(maps().contains("libgcc_s"), "{flags:?}");
        let found = depth_after_patches(&target, expected, &[&report]);
        for _ in 0..5 {
            assert_eq!(target.wait_for_prefix("depth "), found.to_string(), "{flags:?}");
        }
        // The unwinder relive loaded takes the table back on a revert.
        let out = relive_in(&state, &["revert", &target.pid_arg(), "--all", "--json"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let reverted: Value = serde_json::from_slice(&out.stdout).unwrap();
        // Unless a thread was in the new code at that moment (its stack
        // holds a return address into it): then the pool, and its table,
        // stay, and the report says which word keeps them.
        let kept = reverted["kept"].as_array().unwrap();
        assert!(
            kept.iter()
                .all(|k| k["why"].as_str().is_some_and(|w| w.contains("stack"))),
            "{flags:?}: {reverted}"
        );
        target.wait_for("depth 0");
    }
}

/// A patch made while the process has no unwinder, and none can be
/// loaded (its main thread never waits in a system call), keeps its
/// unwind table pending; the first later patch that finds an unwinder
/// (here loaded by the program's own first `backtrace()`) hands it over
/// too. Before, `backtrace()` in the second patch's code stopped at the
/// first patch's frame.
#[test]
fn tables_of_a_patch_made_without_an_unwinder_are_handed_over_later() {
    const SRC: &str = r#"
#include <execinfo.h>
#include <stdio.h>
#include <unistd.h>
static int loaded;
volatile int zero;
__attribute__((noipa)) int depth(void) {
    return 0;
}
__attribute__((noipa)) int middle(void) { return depth() + 0; }
int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (;;) {
        if (!loaded && access("FLAG", F_OK) == 0) { void *f[4]; backtrace(f, 4); loaded = 1; }
        printf("depth %d\n", middle());
        for (volatile int k = 0; k < 3000000; k++) {}
    }
}
"#;
    let dir = tempfile::tempdir().unwrap();
    let flag = dir.path().join("unwind-now");
    let src = SRC.replace("FLAG", flag.to_str().unwrap());
    let first_edit = src.replace("return depth() + 0;", "return depth() + zero;");
    let second_edit = first_edit.replace(
        "    return 0;",
        "    void *frames[64];\n    return backtrace(frames, 64);",
    );
    let flags = ["-O2", "-g"];
    let write = |name: &str, text: &str| compile(dir.path(), "gcc", "bt.c", name, text, &flags);
    // The oracle: both edits, built fresh.
    let fresh_object = write("fresh.o", &second_edit);
    let fresh = start(dir.path(), "gcc", &fresh_object, "fresh");
    let expected: i64 = fresh.wait_for_prefix("depth ").parse().unwrap();
    drop(fresh);

    let base = write("bt.o", &src);
    let first = write("first.o", &first_edit);
    let second = write("second.o", &second_edit);
    let target = start(dir.path(), "gcc", &base, "bt");
    target.wait_for("depth 0");
    let state = dir.path().join("state");
    let one = patch_json(&state, target.pid(), &first, &base);
    assert_eq!(one["unwind"], "no-unwinder", "{one}");
    assert!(one["warnings"].to_string().contains("no unwinder loaded"), "{one}");
    // The program loads one itself.
    std::fs::write(&flag, "").unwrap();
    let maps = || std::fs::read_to_string(format!("/proc/{}/maps", target.pid())).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !maps().contains("libgcc_s") {
        assert!(
            std::time::Instant::now() < deadline,
            "the program never loaded its unwinder"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let two = patch_json(&state, target.pid(), &second, &first);
    assert_eq!(two["unwind"], "registered", "{two}");
    assert!(!two["warnings"].to_string().contains("earlier patches"), "{two}");
    depth_after_patches(&target, expected, &[&one, &two]);
}

/// The first nonzero `depth N` the program prints, checked against
/// `expected` (a fresh build's): every frame it has, plus at most one for
/// each register-keeping thunk the patches (`reports`) put in front of
/// new code.
fn depth_after_patches(target: &relive_testkit::Target, expected: i64, reports: &[&Value]) -> i64 {
    let thunks = reports
        .iter()
        .flat_map(|r| r["applied"].as_array().unwrap())
        .filter(|a| a["preserves"] != serde_json::json!([]))
        .count() as i64;
    let found = loop {
        let now: i64 = target.wait_for_prefix("depth ").parse().unwrap();
        if now != 0 {
            break now;
        }
    };
    assert!(
        (expected..=expected + thunks).contains(&found),
        "depth {found}, a fresh build's {expected}, {thunks} thunks: {reports:?}"
    );
    found
}

/// An unwinder passes through the register-keeping thunk relive puts in
/// front of new code whose old version was a leaf its callers relied on
/// (GCC's -fipa-ra: `main` keeps values in registers the old `compute`
/// left alone). The thunk has unwind information of its own: without it
/// `backtrace()` in the new code stopped at the thunk.
#[test]
fn backtrace_walks_through_a_register_keeping_thunk() {
    const SRC: &str = r#"#include <execinfo.h>
#include <stdio.h>
#include <unistd.h>
volatile int bias;
__attribute__((noinline)) int compute(int x) {
    int y = x * 2 + bias;
    return y;
}
int main(void) {
    void *start[8];
    backtrace(start, 8); /* loads the unwinder */
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (int i = 0;; i++) { printf("value %d\n", compute(i % 10)); usleep(3000); }
}
"#;
    let dir = tempfile::tempdir().unwrap();
    let flags = ["-O2", "-g"];
    let base = compile(dir.path(), "gcc", "app.c", "app.o", SRC, &flags);
    let new_text = SRC.replace(
        "int y = x * 2 + bias;",
        "void *f[64]; int y = 1000 * backtrace(f, 64) + x * 2 + bias;",
    );
    let new = compile(dir.path(), "gcc", "app.c", "new.o", &new_text, &flags);
    let target = start(dir.path(), "gcc", &base, "app");
    target.wait_for("value 18");
    let report = patch_json(&dir.path().join("state"), target.pid(), &new, &base);
    assert_eq!(report["unwind"], "registered", "{report}");
    // The case at hand: entered through a thunk.
    assert_ne!(report["applied"][0]["preserves"], serde_json::json!([]), "{report}");
    loop {
        let value: i64 = target.wait_for_prefix("value ").parse().unwrap();
        if value >= 1000 {
            // compute, the thunk, main, and the C library's frames below it.
            assert!(value / 1000 >= 5, "backtrace() stopped after {} frames", value / 1000);
            break;
        }
    }
}

/// g++ -O2 splits a function's rarely run paths (here: the throws) into a
/// cold part, `check(int) [clone .cold]`, that its hot part jumps into,
/// in the middle as well as at the start. An edit there alone was
/// "patched" by redirecting the cold part's entry, which nothing enters:
/// the old message went on. The hot part is now patched with it, and the
/// new cold part comes along for it alone.
#[test]
fn an_edit_only_in_a_cold_part_reaches_the_program() {
    const LIB: &str = r#"#include <stdexcept>
#include <string>
int check(int v) {
  if (v < 0) throw std::invalid_argument("negative: " + std::to_string(v));
  if (v > 100) throw std::out_of_range("too big: " + std::to_string(v));
  return v * 2;
}
int main();
"#;
    const MAIN: &str = r#"#include <cstdio>
#include <stdexcept>
#include <unistd.h>
int check(int v);
int main() {
    setvbuf(stdout, nullptr, _IOLBF, 0);
    for (int i = 0;; i++) {
        try { printf("ok %d\n", check(i % 2 ? 7 : 1000)); }
        catch (const std::exception &e) { printf("caught: %s\n", e.what()); }
        usleep(3000);
    }
}
"#;
    let dir = tempfile::tempdir().unwrap();
    let flags = ["-O2", "-g"];
    let base = compile(dir.path(), "g++", "lib.cpp", "lib.o", LIB, &flags);
    let main = compile(dir.path(), "g++", "main.cpp", "main.o", MAIN, &flags);
    let new = compile(
        dir.path(),
        "g++",
        "lib.cpp",
        "new.o",
        &LIB.replace("too big: ", "TOO BIG: "),
        &flags,
    );
    let exe = dir.path().join("app");
    let linked = std::process::Command::new("g++")
        .args([&base, &main, "-o"])
        .arg(&exe)
        .output()
        .unwrap();
    assert!(linked.status.success(), "{}", String::from_utf8_lossy(&linked.stderr));
    let target = relive_testkit::Target::spawn(
        std::process::Command::new(&exe),
        exe.clone(),
        tempfile::tempdir().unwrap(),
    );
    target.wait_for("caught: too big: 1000");
    let state = dir.path().join("state");
    let report = patch_json(&state, target.pid(), &new, &base);
    assert_eq!(report["unwind"], "registered", "{report}");
    target.wait_for("caught: TOO BIG: 1000");
    target.wait_for("ok 14");
    // The new cold part came with its hot part: nothing was added (it was
    // listed as an added function the program did not have), in the
    // report, in status, or after a revert.
    assert_eq!(report["added"], serde_json::json!([]), "{report}");
    let status = relive_in(&state, &["status", &target.pid().to_string(), "--json"]);
    let status: Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status["added"], serde_json::json!([]), "{status}");
    // The report's pool is the pool as status shows it, with the symbol
    // file the patch listed (the report had the pool from before).
    assert_eq!(
        report["region"]["debug_images"], status["pools"][0]["debug_images"],
        "{report} {status}"
    );
    assert!(
        report["region"]["debug_images"]
            .as_array()
            .is_some_and(|d| !d.is_empty()),
        "{report}"
    );
    let out = relive_in(&state, &["revert", &target.pid().to_string(), "--all", "--json"]);
    let reverted: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(reverted["added_stay"], serde_json::json!([]), "{reverted}");
    target.wait_for("caught: too big: 1000");
}

/// Clang at -O0 follows a `call __cxa_throw` with a jump to a label at
/// the function's very end, past its last instruction, which no symbol
/// covers: an edit of the thrown message was refused ("refers into code
/// section .text where no function is; cannot move that code").
#[test]
fn a_throw_clang_ends_with_a_jump_past_the_end_is_patched() {
    const VALIDATE: &str = r#"#include <cstdio>
#include <stdexcept>
#include <string>
#include <unistd.h>
__attribute__((noinline)) std::string validate(int t) {
    if (t % 3 == 0) throw std::runtime_error("tick " + std::to_string(t % 2) + " rejected");
    return "ok" + std::to_string(t % 3);
}
int main() {
    setvbuf(stdout, nullptr, _IOLBF, 0);
    for (int i = 0;; i++) {
        try { std::printf("%s\n", validate(i).c_str()); } catch (const std::exception &e) { std::printf("caught %s\n", e.what()); }
        usleep(3000);
    }
}
"#;
    for opt in ["-O0", "-O2"] {
        let flags = [opt, "-g"];
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let base = compile(dir.path(), "clang++", "app.cpp", "app.o", VALIDATE, &flags);
        let target = start(dir.path(), "clang++", &base, "app");
        target.wait_for("caught tick 1 rejected");
        let edited = VALIDATE.replace("\" rejected\"", "\" refused (v2)\"");
        let new = compile(dir.path(), "clang++", "app.cpp", "new.o", &edited, &flags);
        patch_json(&state, target.pid(), &new, &base);
        target.wait_for("caught tick 0 refused (v2)");
        target.wait_for("caught tick 1 refused (v2)");
        target.wait_for("ok2");
    }
}

/// GCC moves a catch block into the function's cold part, which jumps
/// back into the hot part where the try statement ends. A patch of the
/// hot part whose cold part did not change left the program's cold part
/// in use, returning into the old hot part: "patched", while every
/// exception handled ran the rest of the function as it was. A hot part
/// now always brings its cold part.
#[test]
fn an_exception_handled_in_a_cold_part_returns_into_the_new_code() {
    const HANDLE: &str = r#"#include <cstdio>
#include <stdexcept>
#include <string>
#include <unistd.h>
__attribute__((noinline)) std::string lookup(int t) {
    if (t % 3 == 0) throw std::runtime_error("missing");
    return "val" + std::to_string(t % 2);
}
static std::string status_line(int t) { return "v" + std::to_string(t % 2); }
__attribute__((noinline)) void handle(int t) {
    std::string line;
    try { line = lookup(t); } catch (const std::exception &e) { line = std::string("ERR ") + e.what(); }
    std::printf("%s %s\n", line.c_str(), status_line(t).c_str());
}
int main() { setvbuf(stdout, nullptr, _IOLBF, 0); for (int i = 0;; i++) { handle(i); usleep(3000); } }
"#;
    let flags = ["-O2", "-g"];
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let base = compile(dir.path(), "g++", "app.cpp", "app.o", HANDLE, &flags);
    let target = start(dir.path(), "g++", &base, "app");
    target.wait_for("ERR missing v1");
    let new = compile(
        dir.path(),
        "g++",
        "app.cpp",
        "new.o",
        &HANDLE.replace("return \"v\" +", "return \"ver\" +"),
        &flags,
    );
    patch_json(&state, target.pid(), &new, &base);
    target.wait_for("ERR missing ver0");
    target.wait_for("ERR missing ver1");
}
