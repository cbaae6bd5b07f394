//! C++ exceptions through patched code. A patch's unwind information
//! (its own `.eh_frame`, relocated for where its code lands) is handed to
//! the process's unwinder, so an exception thrown in new code is caught by
//! old code, one passes through new frames, new code catches what old
//! code throws, and a revert takes the tables back before it frees their
//! pool. Before, an exception in a patched function ended the program
//! (`terminate called after throwing ...`), and such functions were then
//! refused.

use std::process::Command;

use relive_testkit::Target;
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

/// Source file `source` of `dir` with `text`, compiled by `compiler`
/// with `flags` into `object` (the program's source file, as an edit
/// saves it).
fn compile(dir: &std::path::Path, compiler: &str, source: &str, object: &str, text: &str, flags: &[&str]) -> String {
    let source = dir.join(source);
    std::fs::write(&source, text).unwrap();
    let out = dir.join(object);
    let built = Command::new(compiler)
        .args(flags)
        .arg("-c")
        .arg(&source)
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap_or_else(|e| panic!("{compiler} is needed (.ci/run installs it): {e}"));
    assert!(built.status.success(), "{}", String::from_utf8_lossy(&built.stderr));
    out.display().to_string()
}

#[test]
fn exceptions_are_thrown_caught_and_passed_through_in_new_code() {
    let builds: [(&str, &[&str]); 3] = [
        ("g++", &["-O0", "-g"]),
        ("g++", &["-O2", "-g"]),
        ("clang++", &["-O2", "-g"]),
    ];
    for (compiler, flags) in builds {
        let dir = tempfile::tempdir().unwrap();
        let what = format!("{compiler} {flags:?}");
        let mut base = compile(dir.path(), compiler, "app.cpp", "app.o", APP, flags);
        let exe = dir.path().join("app");
        let linked = Command::new(compiler).arg(&base).arg("-o").arg(&exe).output().unwrap();
        assert!(linked.status.success(), "{}", String::from_utf8_lossy(&linked.stderr));
        let target = Target::spawn(Command::new(&exe), exe.clone(), tempfile::tempdir().unwrap());
        target.wait_for("caught odd one");
        let state = dir.path().join("state");
        let relive = |args: &[&str]| {
            let out = Command::new(env!("CARGO_BIN_EXE_relive"))
                .args(args)
                .env("RELIVE_STATE_DIR", &state)
                .output()
                .unwrap();
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
            let report = relive(&["patch", &target.pid_arg(), &new, "--base", &base, "--json"]);
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
        let exe = dir.path().join("bt");
        assert!(Command::new("gcc")
            .arg(&base)
            .arg("-o")
            .arg(&exe)
            .status()
            .unwrap()
            .success());
        let target = Target::spawn(Command::new(&exe), exe.clone(), tempfile::tempdir().unwrap());
        let before: i64 = target.wait_for_prefix("depth ").parse().unwrap();
        assert!(before >= 3, "{flags:?}: depth {before}");
        let out = Command::new(env!("CARGO_BIN_EXE_relive"))
            .args(["patch", &target.pid_arg(), &new, "--base", &base, "--json"])
            .env("RELIVE_STATE_DIR", dir.path().join("state"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        // The program called backtrace() already: its unwinder is loaded.
        assert_eq!(report["unwind"], "registered", "{report}");
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
        let out = Command::new(env!("CARGO_BIN_EXE_relive"))
            .args(["revert", &target.pid_arg(), "--all", "--json"])
            .env("RELIVE_STATE_DIR", dir.path().join("state"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let reverted: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(reverted["freed"].as_array().map(Vec::len), Some(1), "{reverted}");
        target.wait_for(&format!("depth {before}"));
        for _ in 0..5 {
            assert_eq!(target.wait_for_prefix("depth "), before.to_string());
        }
    }
}
