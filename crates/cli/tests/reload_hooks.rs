//! Reload hooks (issue 24): functions a program lists with
//! `RELIVE_BEFORE_PATCH` / `RELIVE_AFTER_PATCH` (`include/relive.h`) run
//! in it once around every patch: the before-hook still sees the old code,
//! the after-hook the new. A hook that crashes or hangs is reported and
//! abandoned; the program runs on with the patch.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use relive_testkit::{Target, PATIENCE};

const APP: &str = r#"
#include <stdio.h>
#include <unistd.h>
#include "relive.h"
static volatile int before_runs, before_seen, after_runs, after_seen;
__attribute__((noinline, noipa)) int value(void) { return 1; }
static void before(void) { before_runs++; before_seen = value(); }
static void after(void) { after_runs++; after_seen = value(); }
RELIVE_BEFORE_PATCH(before);
RELIVE_AFTER_PATCH(after);
int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (;;) {
        printf("value %d before %d/%d after %d/%d\n", value(), before_runs, before_seen, after_runs, after_seen);
        usleep(3000);
    }
}
"#;

/// A directory with `relive.h` (the repository's) beside the sources.
fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let header = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../include/relive.h");
    std::fs::copy(header, dir.path().join("relive.h")).unwrap();
    dir
}

/// Lines from now on until one starting with `prefix`; then `more` lines
/// after it, all of which must be that same line (the hooks ran once).
fn settles_on(target: &Target, line: &str, more: usize) {
    target.wait_for(line);
    for _ in 0..more {
        assert_eq!(target.next_line(), line, "hooks ran again");
    }
}

#[test]
fn one_reload_runs_each_hook_once_around_the_redirect() {
    let dir = project();
    let exe = relive_testkit::compile(dir.path(), "app", APP, &["-O2", "-g"]);
    let source = dir.path().join("app.c");
    let relive = std::path::Path::new(env!("CARGO_BIN_EXE_relive"));
    let (target, events) = relive_testkit::relive_run(relive, &[], exe, &[], dir);
    target.wait_for("value 1 before 0/0 after 0/0");

    let mut text = APP.to_string();
    for (n, (from, to)) in [("return 1;", "return 2;"), ("return 2;", "return 3;")]
        .into_iter()
        .enumerate()
    {
        text = text.replace(from, to);
        std::fs::write(&source, &text).unwrap();
        let e = events.recv_timeout(PATIENCE).unwrap();
        assert_eq!(e["event"], "patched", "{e}");
        let hooks = e["hooks"].as_array().unwrap_or_else(|| panic!("no hooks in {e}"));
        let ran: Vec<(&str, &str)> = hooks
            .iter()
            .map(|h| (h["name"].as_str().unwrap(), h["phase"].as_str().unwrap()))
            .collect();
        assert_eq!(ran, [("before", "before_patch"), ("after", "after_patch")], "{e}");
        assert!(hooks.iter().all(|h| h["result"] == "returned"), "{e}");
        // The before-hook saw the old value, the after-hook the new one.
        let (old, new, runs) = (n + 1, n + 2, n + 1);
        settles_on(
            &target,
            &format!("value {new} before {runs}/{old} after {runs}/{new}"),
            20,
        );
    }
}

fn relive(state: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_relive"))
        .args(args)
        .env("RELIVE_STATE_DIR", state)
        .env("RELIVE_HOOK_TIMEOUT_MS", "300")
        .output()
        .unwrap()
}

/// A program whose after-hook is `hook_body`, running, with the object
/// it was built from and one whose `value` returns 2 (from one source
/// path, as a build makes them).
fn started_with_hook(hook_body: &str) -> (Target, PathBuf, PathBuf) {
    let app = APP.replace("after_runs++; after_seen = value();", hook_body);
    let dir = project();
    let base = dir.path().join("base.o");
    let compiled = relive_testkit::compile_object(dir.path(), "target", &app, &["-O2", "-g"]);
    std::fs::rename(compiled, &base).unwrap();
    let exe = relive_testkit::compile(dir.path(), "target", &app, &["-O2", "-g"]);
    let target = Target::spawn(Command::new(&exe), exe, dir);
    target.wait_for("value 1 before 0/0 after 0/0");
    let new = relive_testkit::compile_object(
        target.dir.path(),
        "target",
        &app.replace("return 1;", "return 2;"),
        &["-O2", "-g"],
    );
    (target, base, new)
}

/// `relive patch` of `value` (1 → 2) in a program whose after-hook is
/// `hook_body`: returns relive's output and the running target.
fn patch_with_hook(hook_body: &str) -> (Output, Target) {
    let (target, base, new) = started_with_hook(hook_body);
    let state = target.dir.path().join("state");
    let out = relive(
        &state,
        &[
            "patch",
            &target.pid_arg(),
            new.to_str().unwrap(),
            "--base",
            base.to_str().unwrap(),
        ],
    );
    (out, target)
}

#[test]
fn a_crashing_hook_is_reported_and_the_program_runs_on_patched() {
    let (out, target) = patch_with_hook("after_runs++; *(volatile int *)0 = 1;");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        stdout.contains("warning: hook after crashed after the patch (SIGSEGV at"),
        "{stdout}"
    );
    settles_on(&target, "value 2 before 1/1 after 1/0", 20);
}

#[test]
fn a_hanging_hook_is_abandoned_after_its_time() {
    let (out, target) = patch_with_hook("after_runs++; for (;;) {}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        stdout.contains("warning: hook after did not return within 300 ms after the patch"),
        "{stdout}"
    );
    settles_on(&target, "value 2 before 1/1 after 1/0", 20);
}

/// A relive killed while a hook runs leaves the hook to finish on its own:
/// the thread returns through the way back relive wrote below its stack
/// and carries on where it was interrupted.
#[test]
fn a_hook_outlives_a_killed_relive() {
    let (target, base, new) =
        started_with_hook("after_runs++; write(1, \"hook running\\n\", 13); usleep(300000); after_seen = value();");
    let mut relive = Command::new(env!("CARGO_BIN_EXE_relive"))
        .args([
            "patch",
            &target.pid_arg(),
            new.to_str().unwrap(),
            "--base",
            base.to_str().unwrap(),
        ])
        .env("RELIVE_STATE_DIR", target.dir.path().join("state"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The after-hook says it runs, then sleeps: relive is waiting for it.
    target.wait_for("hook running");
    assert!(relive.try_wait().unwrap().is_none(), "relive ended before the hook did");
    relive.kill().unwrap();
    relive.wait().unwrap();
    settles_on(&target, "value 2 before 1/1 after 1/2", 20);
}

/// A hook a patch adds (a new function its object lists) runs after that
/// patch, and around every later one.
#[test]
fn a_hook_a_patch_adds_runs_after_it_and_later_patches() {
    const PLAIN: &str = r#"
#include <stdio.h>
#include <unistd.h>
#include "relive.h"
static volatile int added_runs;
__attribute__((noinline, noipa)) int value(void) { return 1; }
int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (;;) { printf("value %d added %d\n", value(), added_runs); usleep(3000); }
}
"#;
    let dir = project();
    let exe = relive_testkit::compile(dir.path(), "app", PLAIN, &["-O2", "-g"]);
    let source = dir.path().join("app.c");
    let relive = std::path::Path::new(env!("CARGO_BIN_EXE_relive"));
    let (target, events) = relive_testkit::relive_run(relive, &[], exe, &[], dir);
    target.wait_for("value 1 added 0");
    let with_hook = PLAIN.replace(
        "int main(void) {",
        "static void on_reload(void) { added_runs++; }\nRELIVE_AFTER_PATCH(on_reload);\nint main(void) {",
    );
    for (n, text) in [
        with_hook.replace("return 1;", "return 2;"),
        with_hook.replace("return 1;", "return 3;"),
    ]
    .into_iter()
    .enumerate()
    {
        std::fs::write(&source, &text).unwrap();
        let e = events.recv_timeout(PATIENCE).unwrap();
        assert_eq!(e["event"], "patched", "{e}");
        let ran: Vec<&str> = e["hooks"]
            .as_array()
            .unwrap_or_else(|| panic!("no hooks in {e}"))
            .iter()
            .map(|h| h["name"].as_str().unwrap())
            .collect();
        assert_eq!(ran, ["on_reload"], "{e}");
        settles_on(&target, &format!("value {} added {}", n + 2, n + 1), 20);
    }
}
