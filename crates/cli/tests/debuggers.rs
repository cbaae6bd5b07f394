//! Debuggers see patched code: `relive gdb PID` starts gdb with a symbol
//! file for each patch in force (names, source lines and unwind
//! information at the addresses the new code landed), so a breakpoint at
//! FILE:LINE stops in the new code, `bt` shows it with its line and its
//! old callers, and `info symbol` names it. Profilers find it in
//! `/tmp/perf-PID.map`. Before, gdb showed `??` for new code and could
//! not unwind past it.

mod common;

use std::process::Command;

use serde_json::Value;

const SRC: &str = r#"#include <stdio.h>
#include <unistd.h>
volatile int bias;
__attribute__((noinline)) int first(int x) { return x + bias; }
__attribute__((noinline)) int compute(int x) {
    int y = x * 2 + bias;
    return y;
}
int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (int i = 0;; i++) { printf("value %d\n", compute(first(i % 10))); usleep(3000); }
}
"#;

/// Whether gdb is here (.ci/run installs it); says so when not.
fn have_gdb() -> bool {
    let ok = Command::new("gdb")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("SKIPPED: gdb is not installed (.ci/run installs it)");
    }
    ok
}

/// `relive ARGS` (journals in `state`), killed after 60 s.
fn bounded(state: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new("timeout")
        .arg("60")
        .arg(env!("CARGO_BIN_EXE_relive"))
        .args(args)
        .env("RELIVE_STATE_DIR", state)
        .output()
        .unwrap()
}

#[test]
fn gdb_stops_in_new_code_and_unwinds_to_its_old_callers() {
    if !have_gdb() {
        return;
    }
    for flags in [&["-O0", "-g"][..], &["-O2", "-g"][..]] {
        let dir = tempfile::tempdir().unwrap();
        let compile = |text: &str, object: &str| common::compile(dir.path(), "gcc", "app.c", object, text, flags);
        let base = compile(SRC, "app.o");
        // Line 7 is `return y;` in both; `compute` is not first in `.text`
        // (its line rows are an advance from the section's start).
        let new = compile(&SRC.replace("x * 2 + bias", "x * 3 + bias"), "new.o");
        let target = common::start(dir.path(), "gcc", &base, "app");
        target.wait_for("value 18");
        let state = dir.path().join("state");
        let relive = |args: &[&str]| common::relive_in(&state, args);
        let report = common::patch_json(&state, target.pid(), &new, &base);
        let new_code = report["applied"][0]["current_addr"].as_u64().unwrap();
        target.wait_for("value 27");

        // Bounded: a breakpoint in code that never runs (the old copy)
        // would leave `continue` waiting for good.
        let gdb = bounded(
            &state,
            &[
                "gdb",
                &target.pid_arg(),
                "--",
                "-batch",
                "-ex",
                "break app.c:7",
                "-ex",
                "continue",
                "-ex",
                "bt",
                "-ex",
                "info symbol $pc",
                "-ex",
                "print/x $pc",
            ],
        );
        let text = String::from_utf8_lossy(&gdb.stdout);
        let what = format!("{flags:?}:\n{text}{}", String::from_utf8_lossy(&gdb.stderr));
        assert!(gdb.status.success(), "{what}");
        let frames: Vec<&str> = text.lines().filter(|l| l.starts_with('#')).collect();
        assert!(
            frames
                .first()
                .is_some_and(|f| f.contains("compute (") && f.contains("app.c:7")),
            "{what}"
        );
        // Then the old caller, maybe through the thunk that keeps the
        // registers main's code keeps values in (named, not `??`).
        let main = frames
            .iter()
            .position(|f| f.contains(" in main () at ") && f.contains("app.c:"));
        assert!(main.is_some_and(|m| m <= 2), "{what}");
        assert!(!frames.iter().any(|f| f.contains("??")), "{what}");
        assert!(text.contains("compute + ") && text.contains(".sym"), "{what}");
        // The stop was in the new code, not the old.
        let pc = text
            .lines()
            .find_map(|l| {
                l.split_once("= 0x")
                    .map(|(_, hex)| u64::from_str_radix(hex.trim(), 16).unwrap())
            })
            .expect("print/x $pc");
        assert!((new_code..new_code + 0x100).contains(&pc), "{what}");
        // gdb detached; the program runs the new code on.
        target.wait_for("value 27");

        // Profilers name it.
        let map = std::fs::read_to_string(format!("/tmp/perf-{}.map", target.pid())).unwrap();
        assert!(
            map.lines()
                .any(|l| l.starts_with(&format!("{new_code:x} ")) && l.contains("compute [relive generation 1]")),
            "{map}"
        );

        // Reverted and freed, its symbol file goes too.
        let out = relive(&["revert", &target.pid_arg(), "--all", "--json"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let listed = relive(&["gdb", &target.pid_arg(), "--json"]);
        let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
        let reverted: Value = serde_json::from_slice(&out.stdout).unwrap();
        if reverted["freed"].as_array().is_some_and(|f| !f.is_empty()) {
            assert_eq!(listed["symbol_files"], serde_json::json!([]), "{listed}");
        }
        target.wait_for("value 18");
    }
}
