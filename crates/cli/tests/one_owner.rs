//! Issue 19: relive commands acting on one process know about each other,
//! and nothing they do (or another user, or another tracer) harms it.
//! Real processes, the real `relive` binary, a private state directory per
//! test.

use std::path::{Path, PathBuf};
mod common;

use std::process::{Command, Output, Stdio};
use std::sync::mpsc::Receiver;

use relive_testkit::{Target, PATIENCE};
use serde_json::Value;

const APP: &str = r#"
#include <stdio.h>
#include <unistd.h>
long counter = 0;
void (*callback)(void) = 0;
__attribute__((noinline)) int value(void) { return 1; }
__attribute__((noinline)) void tick(void) { if (callback) callback(); }
int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (;;) { counter++; tick(); printf("value %d counter %ld\n", value(), counter); usleep(3000); }
}
"#;

fn relive(state: &Path, args: &[&str]) -> Output {
    common::relive_in(state, args)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The program built with `-O0 -g` in its own directory, running.
fn start() -> (Target, PathBuf) {
    start_with(APP)
}

/// [`start`] of another version of the program.
fn start_with(source: &str) -> (Target, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let exe = relive_testkit::compile(dir.path(), "app", source, &["-O0", "-g"]);
    let state = dir.path().join("state");
    let target = Target::spawn(Command::new(&exe), exe, dir);
    target.wait_for_prefix("value 1 ");
    (target, state)
}

/// Compiles `source` as `app.c` beside the program into `name`.o.
fn object(target: &Target, source: &str, name: &str) -> PathBuf {
    let dir = target.dir.path();
    std::fs::write(dir.join("app.c"), source).unwrap();
    let obj = dir.join(format!("{name}.o"));
    let out = Command::new("gcc")
        .args(["-O0", "-g", "-c", "app.c", "-o"])
        .arg(&obj)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    obj
}

/// `relive patch` of `value` alone from `obj` (another command than a
/// watcher), with `extra` options, which must succeed.
fn patch_value_from(target: &Target, state: &Path, obj: &Path, extra: &[&str]) {
    let pid = target.pid_arg();
    let mut args = vec!["patch", "--pid", &pid, obj.to_str().unwrap(), "--only", "value"];
    args.extend_from_slice(extra);
    let out = relive(state, &args);
    assert!(out.status.success(), "{}", stderr(&out));
}

/// `value` patched to return 3 by a one-shot command, from that edit of
/// [`APP`] compiled as `app.c` in another directory (the program's own
/// `app.c` stays as it was): that edit's text.
fn patched_to_three_elsewhere(target: &Target, state: &Path) -> String {
    let three = APP.replace("return 1;", "return 3;");
    let elsewhere = target.dir.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let other = PathBuf::from(common::compile(
        &elsewhere,
        "gcc",
        "app.c",
        "other.o",
        &three,
        &["-O0", "-g"],
    ));
    patch_value_from(target, state, &other, &[]);
    target.wait_for_prefix("value 3 ");
    three
}

/// A `relive watch`/`run` session's JSON events.
fn events(child: &mut std::process::Child) -> Receiver<Value> {
    relive_testkit::json_lines(child.stderr.take().unwrap())
}

fn watch(target: &Target, state: &Path) -> (std::process::Child, Receiver<Value>) {
    let (child, rx, _) = watch_said(target, state);
    (child, rx)
}

/// [`watch`], with the events it gave before it said it is watching.
fn watch_said(target: &Target, state: &Path) -> (std::process::Child, Receiver<Value>, Vec<Value>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_relive"))
        .args([
            "watch",
            "--pid",
            &target.pid_arg(),
            "app.c",
            "--cc",
            "gcc -O0 -g",
            "--json",
        ])
        .current_dir(target.dir.path())
        .env("RELIVE_STATE_DIR", state)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let rx = events(&mut child);
    let said = relive_testkit::events_until(&rx, "watching");
    (child, rx, said)
}

/// A `relive watch` of the program (its source beside it as built) that
/// has patched `value` to return 2.
fn watched_with_value_2(target: &Target, state: &Path) -> (std::process::Child, Receiver<Value>) {
    std::fs::write(target.dir.path().join("app.c"), APP).unwrap();
    let (session, rx) = watch(target, state);
    save(target, &APP.replace("return 1;", "return 2;"));
    let e = rx.recv_timeout(PATIENCE).unwrap();
    assert_eq!(e["event"], "patched", "{e}");
    target.wait_for_prefix("value 2 ");
    (session, rx)
}

/// Lines the program prints from now on: the lines queued before are
/// read past (about 30 a tenth of a second; of 60 read after that pause,
/// the last 20 are new).
fn lines_from_now(target: &Target) -> Vec<String> {
    std::thread::sleep(std::time::Duration::from_millis(100));
    let mut lines: Vec<String> = (0..60).map(|_| target.wait_for_prefix("value ")).collect();
    lines.split_off(40)
}

fn save(target: &Target, source: &str) {
    std::fs::write(target.dir.path().join("app.c"), source).unwrap();
}

/// Saves `source` with an edit of `tick` alone: the watcher's reload must
/// patch `value` with it (another relive command changed it, and the file
/// says otherwise), and say so, with what the other command did (`what`:
/// "reverted" or "patched", as the program tells).
fn tick_saved_brings_value_back(target: &Target, rx: &Receiver<Value>, source: &str, what: &str) {
    save(
        target,
        &source.replace(
            "if (callback) callback();",
            "if (callback) callback(); counter += 1000;",
        ),
    );
    let e = rx.recv_timeout(PATIENCE).unwrap();
    assert_eq!(e["event"], "patched", "{e}");
    assert_eq!(sorted_functions(&e), ["tick", "value"], "{e}");
    assert!(
        e["notes"].to_string().contains(&format!(
            "value was {what} by another relive command: patched again from"
        )),
        "{e}"
    );
}

/// An event's functions, sorted.
fn sorted_functions(e: &Value) -> Vec<&str> {
    let mut functions: Vec<&str> = e["functions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    functions.sort_unstable();
    functions
}

/// The issue's first report: under a live session, `relive revert --all`
/// from another terminal freed the pool the session still used; its next
/// reload wrote into unmapped memory and killed the program. Now the
/// session re-reads the journal: the next save patches the edit and the
/// reverted function again from the file (which still has its edit: the
/// program runs what the file says, as a user's trial on Lua expected),
/// and the program lives on with its state.
#[test]
fn a_revert_from_another_terminal_during_a_session() {
    let (target, state) = start();
    let (mut session, rx) = watched_with_value_2(&target, &state);

    let out = relive(&state, &["revert", "--pid", &target.pid_arg(), "--all", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let counter: i64 = target.wait_for_prefix("value 1 counter ").parse().unwrap();

    // The next edit changes main's callee `tick` only; `value`, reverted,
    // comes back from the file, said.
    save(
        &target,
        &APP.replace("return 1;", "return 2;").replace(
            "if (callback) callback();",
            "if (callback) callback(); counter += 1000;",
        ),
    );
    let e = rx.recv_timeout(PATIENCE).unwrap();
    assert_eq!(e["event"], "patched", "{e}");
    assert_eq!(sorted_functions(&e), ["tick", "value"], "{e}");
    assert!(e["notes"].to_string().contains("value was reverted"), "{e}");
    let later: i64 = target.wait_for_prefix("value 2 counter ").parse().unwrap();
    let jumped: i64 = loop {
        let line = target.wait_for_prefix("value 2 counter ");
        let n: i64 = line.parse().unwrap();
        if n > later + 1500 {
            break n;
        }
    };
    assert!(jumped > counter, "the counter kept its state: {counter} -> {jumped}");
    let status = relive(&state, &["status", "--pid", &target.pid_arg(), "--json"]);
    let status: Value = serde_json::from_slice(&status.stdout).unwrap();
    let names: Vec<&str> = status["patches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(
        names.len() == 2 && names.contains(&"tick") && names.contains(&"value"),
        "{status}"
    );
    session.kill().unwrap();
    let _ = session.wait();
}

/// A second watcher is refused naming the first (exit 6), and the first
/// keeps working; it did not delete anything the first uses.
#[test]
fn a_second_watcher_is_refused_naming_the_first() {
    let (target, state) = start();
    std::fs::write(target.dir.path().join("app.c"), APP).unwrap();
    let (mut first, rx) = watch(&target, &state);
    let out = Command::new(env!("CARGO_BIN_EXE_relive"))
        .args(["watch", "--pid", &target.pid_arg(), "app.c", "--cc", "gcc -O0 -g"])
        .current_dir(target.dir.path())
        .env("RELIVE_STATE_DIR", &state)
        .output()
        .unwrap();
    let message = stderr(&out);
    assert_eq!(out.status.code(), Some(6), "{message}");
    assert!(
        message.contains(&format!("relive pid {}", first.id())) && message.contains("relive watch"),
        "{message}"
    );
    save(&target, &APP.replace("return 1;", "return 3;"));
    let e = rx.recv_timeout(PATIENCE).unwrap();
    assert_eq!(e["event"], "patched", "{e}");
    target.wait_for_prefix("value 3 ");
    first.kill().unwrap();
    let _ = first.wait();
}

/// `relive run` of a program that exits with 7 at once exits 7 (it said
/// "process exited while relive was checking access" and exited 3).
#[test]
fn relive_run_of_a_program_that_exits_at_once_passes_its_status() {
    let dir = tempfile::tempdir().unwrap();
    let exe = relive_testkit::compile(dir.path(), "quick", "int main(void) { return 7; }", &["-O0", "-g"]);
    for _ in 0..5 {
        let out = Command::new(env!("CARGO_BIN_EXE_relive"))
            .args(["run", "--watch"])
            .arg(dir.path().join("quick.c"))
            .arg("--")
            .arg(&exe)
            .env("RELIVE_STATE_DIR", dir.path().join("state"))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
    }
}

/// A function a patch added, whose address the program stored in a
/// global, is still called after `revert --all`: the revert restores
/// every entry but keeps the pool (it said it freed it, and the program
/// crashed at the freed address).
#[test]
fn revert_keeps_code_the_program_still_points_to() {
    let (target, state) = start();
    let with_hook = APP.replace(
        "__attribute__((noinline)) void tick(void) { if (callback) callback(); }",
        "static void bump(void) { counter += 1000000; }\n__attribute__((noinline)) void tick(void) { callback = bump; if (callback) callback(); }",
    );
    let obj = object(&target, &with_hook, "hook");
    let out = relive(
        &state,
        &["patch", "--pid", &target.pid_arg(), obj.to_str().unwrap(), "--json"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let patched: Value = serde_json::from_slice(&out.stdout).unwrap();
    let bump = patched["added"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "bump")
        .and_then(|a| a["addr"].as_u64())
        .expect("bump added");
    // Lines printed before the patch are still queued: read on until the
    // added function's effect shows.
    while target.wait_for_prefix("value 1 counter ").parse::<i64>().unwrap() < 1_000_000 {}

    let out = relive(&state, &["revert", "--pid", &target.pid_arg(), "--all", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["freed"], serde_json::json!([]), "{report}");
    assert_eq!(report["kept"].as_array().map(Vec::len), Some(1), "{report}");
    // It says what keeps it: the global holding bump's address, both by
    // name (it gave the global by address only).
    let why = report["kept"][0]["why"].as_str().unwrap_or_default();
    assert!(
        why.starts_with("the word at 0x")
            && why.contains("(callback in ")
            && why.ends_with(&format!("holds {bump:#x} (bump)")),
        "{report}"
    );
    // And that the added function stays, as the program still calls it.
    assert_eq!(report["added_stay"][0]["name"], "bump", "{report}");
    // `status` shows the memory kept (it said only "no patches").
    let out = relive(&state, &["status", "--pid", &target.pid_arg(), "--json"]);
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["patches"], serde_json::json!([]), "{status}");
    assert_eq!(status["pools"][0]["addr"], report["kept"][0]["addr"], "{status}");
    let out = relive(&state, &["status", "--pid", &target.pid_arg()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("still mapped") && text.contains("pool 0x"), "{text}");
    // The original tick calls the stored callback: still the added code.
    let counters: Vec<i64> = lines_from_now(&target)
        .iter()
        .map(|l| l.strip_prefix("1 counter ").expect("value 1").parse().unwrap())
        .collect();
    assert!(
        counters.windows(2).all(|w| w[1] - w[0] >= 1_000_000),
        "the program lives and calls bump: {counters:?}"
    );
}

/// Memory a revert kept (the program pointed into it) is freed by a later
/// `revert --all` once the program no longer does: status said so, but
/// with no patch left that revert stopped nothing, checked nothing and
/// printed "nothing to revert" while the pool stayed mapped for good.
#[test]
fn a_kept_pool_is_freed_once_nothing_points_into_it() {
    // SIGUSR1 makes the program drop the pointer it stored.
    let app = APP.replace(
        "int main(void) {\n    setvbuf",
        "#include <signal.h>\nstatic void drop(int s) { (void)s; callback = 0; }\nint main(void) {\n    signal(SIGUSR1, drop);\n    setvbuf",
    );
    assert_ne!(app, APP);
    let (target, state) = start_with(&app);
    let with_hook = app.replace(
        "__attribute__((noinline)) void tick(void) { if (callback) callback(); }",
        "static void bump(void) { counter += 1000000; }\n__attribute__((noinline)) void tick(void) { callback = bump; if (callback) callback(); }",
    );
    let obj = object(&target, &with_hook, "hook");
    let pid = target.pid_arg();
    let out = relive(&state, &["patch", "--pid", &pid, obj.to_str().unwrap(), "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    while target.wait_for_prefix("value 1 counter ").parse::<i64>().unwrap() < 1_000_000 {}
    let out = relive(&state, &["revert", "--pid", &pid, "--all", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["kept"].as_array().map(Vec::len), Some(1), "{report}");
    let pool = report["kept"][0]["addr"].as_u64().unwrap();
    let mapped = |addr: u64| {
        std::fs::read_to_string(format!("/proc/{pid}/maps"))
            .unwrap()
            .lines()
            .any(|l| l.starts_with(&format!("{addr:x}-")))
    };
    assert!(mapped(pool));

    // Still pointed to: a second revert keeps it again, and says why.
    let out = relive(&state, &["revert", "--pid", &pid, "--all"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("kept "), "{text}{}", stderr(&out));
    assert!(mapped(pool));

    // The program drops the pointer: the next revert frees the pool.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(target.pid() as i32),
        nix::sys::signal::Signal::SIGUSR1,
    )
    .unwrap();
    let counters: Vec<i64> = lines_from_now(&target)
        .iter()
        .map(|l| l.strip_prefix("1 counter ").expect("value 1").parse().unwrap())
        .collect();
    assert!(
        counters.windows(2).all(|w| w[1] - w[0] == 1),
        "bump no longer called: {counters:?}"
    );
    let out = relive(&state, &["revert", "--pid", &pid, "--all", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["kept"], serde_json::json!([]), "{report}");
    assert_eq!(report["freed"][0]["addr"].as_u64(), Some(pool), "{report}");
    assert!(!mapped(pool), "the pool is unmapped");
    let out = relive(&state, &["status", "--pid", &pid, "--json"]);
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["pools"], serde_json::json!([]), "{status}");
    // The program runs on, unchanged.
    let counters: Vec<i64> = lines_from_now(&target)
        .iter()
        .map(|l| l.strip_prefix("1 counter ").expect("value 1").parse().unwrap())
        .collect();
    assert!(counters.windows(2).all(|w| w[1] - w[0] == 1), "{counters:?}");
}

/// Two `relive patch` commands on one pid at once take turns: both
/// succeed, never sharing pool bytes (5 of 60 pairs crashed the target);
/// 100 pairs, as the issue asks.
#[test]
fn two_patch_commands_at_once_take_turns() {
    let (target, state) = start();
    let pid = target.pid_arg();
    for round in 0..100 {
        // Each object patches every function (no --base): both carry the
        // round's value, so it is the same whichever goes last.
        let source = APP.replace("return 1;", &format!("return {};", 10 + round));
        let a = object(&target, &source, &format!("a{round}"));
        let b = object(
            &target,
            &source.replace(
                "if (callback) callback();",
                &format!("if (callback) callback(); counter += {round};"),
            ),
            &format!("b{round}"),
        );
        let spawn = |obj: &Path| {
            Command::new(env!("CARGO_BIN_EXE_relive"))
                .args(["patch", "--pid", &pid, obj.to_str().unwrap(), "--json"])
                .env("RELIVE_STATE_DIR", &state)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        };
        let (pa, pb) = (spawn(&a), spawn(&b));
        for p in [pa, pb] {
            let out = p.wait_with_output().unwrap();
            assert!(out.status.success(), "round {round}: {}", stderr(&out));
        }
        // Both patches took: value returns the new number (older lines
        // are read past) and the program lives.
        target.wait_for_prefix(&format!("value {} ", 10 + round));
    }
    let out = relive(&state, &["revert", "--pid", &pid, "--all"]);
    assert!(out.status.success(), "{}", stderr(&out));
    target.wait_for_prefix("value 1 ");
}

/// Another user's state directory (here: one anybody may write) is
/// refused naming its path, exit 4; nothing is written into the process.
#[test]
fn a_state_directory_others_can_write_is_refused() {
    let (target, _) = start();
    let dir = tempfile::tempdir().unwrap();
    let shared = dir.path().join("relive-state");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let obj = object(&target, &APP.replace("return 1;", "return 5;"), "five");
    let out = relive(&shared, &["patch", "--pid", &target.pid_arg(), obj.to_str().unwrap()]);
    let message = stderr(&out);
    assert_eq!(out.status.code(), Some(4), "{message}");
    assert!(
        message.contains(&shared.display().to_string()) && message.contains("0777"),
        "{message}"
    );
    let lines = lines_from_now(&target);
    assert!(lines.iter().all(|l| l.starts_with("1 ")), "unchanged: {lines:?}");
}

/// The journal in `state` (one process's) and its current state: the
/// journal is a log of states, one JSON line each, the last current.
fn journal_state(state: &Path) -> (PathBuf, Value) {
    let journal = std::fs::read_dir(state)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "json"))
        .unwrap();
    let text = std::fs::read_to_string(&journal).unwrap();
    let j: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    (journal, j)
}

/// A journal whose recorded bytes are not what the process holds (changed
/// by someone, or stale) is refused by revert, naming the journal; the
/// process keeps running the patch.
#[test]
fn a_changed_journal_is_refused() {
    let (target, state) = start();
    let obj = object(&target, &APP.replace("return 1;", "return 6;"), "six");
    let out = relive(&state, &["patch", "--pid", &target.pid_arg(), obj.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    target.wait_for_prefix("value 6 ");
    let (journal, mut j) = journal_state(&state);
    // "mov eax, 42; ret" where the original entry was.
    j["patches"][0]["original"] = Value::from("b82a000000c3");
    std::fs::write(&journal, serde_json::to_vec(&j).unwrap()).unwrap();
    let out = relive(&state, &["revert", "--pid", &target.pid_arg(), "--all"]);
    let message = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{message}");
    assert!(
        message.contains(&journal.display().to_string()) && message.contains("does not match"),
        "{message}"
    );
    let lines = lines_from_now(&target);
    assert!(lines.iter().all(|l| l.starts_with("6 ")), "still the patch: {lines:?}");
}

/// Where the process has the instructions relive's remote calls use is
/// kept in the journal, so the next command does not search its code for
/// them again; hints that are wrong (a journal changed by someone) are
/// checked and not used: the next patch searches, goes in, and keeps what
/// it found.
#[test]
fn the_code_remote_calls_use_is_kept_and_checked() {
    let (target, state) = start();
    let journal_line = || journal_state(&state);
    let six = object(&target, &APP.replace("return 1;", "return 6;"), "six");
    let out = relive(&state, &["patch", "--pid", &target.pid_arg(), six.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    target.wait_for_prefix("value 6 ");
    let (journal, mut j) = journal_line();
    let found = j["code_hints"].clone();
    for key in ["syscall", "syscall_ret", "pop_rax_ret"] {
        assert!(found[key].as_u64().is_some_and(|a| a > 0), "{j}");
        // One byte on: not the instruction.
        j["code_hints"][key] = Value::from(found[key].as_u64().unwrap() + 1);
    }
    std::fs::write(&journal, serde_json::to_vec(&j).unwrap()).unwrap();
    let seven = object(&target, &APP.replace("return 1;", "return 7;"), "seven");
    let out = relive(&state, &["patch", "--pid", &target.pid_arg(), seven.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    target.wait_for_prefix("value 7 ");
    // What it found instead (a library loaded since may hold them first).
    let again = journal_line().1["code_hints"].clone();
    for key in ["syscall", "syscall_ret", "pop_rax_ret"] {
        assert!(again[key].as_u64().is_some_and(|a| a > 0), "{again}");
        assert_ne!(again[key], j["code_hints"][key], "{again}");
    }
    let out = relive(&state, &["revert", "--pid", &target.pid_arg(), "--all"]);
    assert!(out.status.success(), "{}", stderr(&out));
    target.wait_for_prefix("value 1 ");
}

/// With another tracer attached, relive names it (pid and name), exit 4;
/// it said "permission denied … run relive as root".
#[test]
fn another_tracer_is_named() {
    let (target, state) = start();
    let dir = tempfile::tempdir().unwrap();
    let tracer_exe = relive_testkit::compile(
        dir.path(),
        "tracer",
        r#"
#include <stdio.h>
#include <stdlib.h>
#include <sys/ptrace.h>
#include <unistd.h>
int main(int argc, char **argv) {
    if (ptrace(PTRACE_SEIZE, atoi(argv[1]), 0, 0) != 0) { perror("seize"); return 1; }
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("attached\n");
    pause();
}
"#,
        &["-O0"],
    );
    let mut cmd = Command::new(&tracer_exe);
    cmd.arg(target.pid_arg());
    let tracer = Target::spawn(cmd, tracer_exe, dir);
    tracer.wait_for("attached");
    let out = relive(&state, &["threads", &target.pid_arg()]);
    let message = stderr(&out);
    assert_eq!(out.status.code(), Some(4), "{message}");
    assert!(
        message.contains(&format!("traced by pid {} (tracer)", tracer.pid())),
        "{message}"
    );
}

/// Found by a new-user trial on zlib: a session started after an earlier
/// one had patched the program knew nothing of those patches as its own.
/// After `relive revert --all` from another terminal, its saves patched
/// only what they changed and said nothing: the program ran the reverted
/// code while the file said otherwise. Whoever patched them, functions
/// another command changes are settled by the next save of their file.
#[test]
fn a_revert_of_an_earlier_sessions_patch_is_undone_by_the_next_save() {
    let (target, state) = start();
    std::fs::write(target.dir.path().join("app.c"), APP).unwrap();
    let (mut earlier, rx) = watch(&target, &state);
    let two = APP.replace("return 1;", "return 2;");
    save(&target, &two);
    let e = rx.recv_timeout(PATIENCE).unwrap();
    assert_eq!(e["event"], "patched", "{e}");
    target.wait_for_prefix("value 2 ");
    earlier.kill().unwrap();
    let _ = earlier.wait();

    let (mut session, rx) = watch(&target, &state);
    let out = relive(&state, &["revert", "--pid", &target.pid_arg(), "--all"]);
    assert!(out.status.success(), "{}", stderr(&out));
    target.wait_for_prefix("value 1 ");
    // A save that changes tick only: value, as the file has it, with it.
    tick_saved_brings_value_back(&target, &rx, &two, "reverted");
    target.wait_for_prefix("value 2 ");
    session.kill().unwrap();
    let _ = session.wait();
}

/// Found by a new-user trial on SQLite: after `revert --all`, a save
/// that put the file back as built "patched again" each reverted function
/// with its original code (a new generation each, a note each: 210 for
/// SQLite). The program runs what the file says: nothing is patched.
#[test]
fn a_file_put_back_after_a_revert_patches_nothing() {
    let (target, state) = start();
    let (mut session, rx) = watched_with_value_2(&target, &state);
    let out = relive(&state, &["revert", "--pid", &target.pid_arg(), "--all"]);
    assert!(out.status.success(), "{}", stderr(&out));
    target.wait_for_prefix("value 1 ");
    save(&target, APP);
    let e = rx.recv_timeout(PATIENCE).unwrap();
    assert_eq!(e["event"], "no_change", "{e}");
    let out = relive(&state, &["status", "--pid", &target.pid_arg(), "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["patches"], serde_json::json!([]), "{status}");
    session.kill().unwrap();
    let _ = session.wait();
}

/// Found by a new-user trial on Lua: a one-shot `relive patch` made while
/// `relive watch` owned the process was overwritten by the watcher's next
/// reload (it reused the pool bytes the one-shot patch had filled, from
/// its stale copy of the journal), and the patched function then ran
/// another function's new code. The watcher now re-reads the journal; its
/// next reload patches the function the one-shot patch changed from the
/// file again (the file is what a watched program runs), and says so.
#[test]
fn a_one_shot_patch_beside_a_watcher_survives_its_next_reload() {
    let (target, state) = start();
    std::fs::write(target.dir.path().join("app.c"), APP).unwrap();
    let (mut session, rx) = watch(&target, &state);
    let first = APP.replace("return 1;", "return 2;");
    save(&target, &first);
    let e = rx.recv_timeout(PATIENCE).unwrap();
    assert_eq!(e["event"], "patched", "{e}");
    target.wait_for_prefix("value 2 ");

    // The one-shot patch, compiled elsewhere from the same file name.
    let other = tempfile::tempdir().unwrap();
    std::fs::write(other.path().join("app.c"), APP.replace("return 1;", "return 7;")).unwrap();
    let out = Command::new("gcc")
        .args(["-O0", "-g", "-c", "app.c", "-o", "seven.o"])
        .current_dir(other.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let obj = other.path().join("seven.o");
    patch_value_from(&target, &state, &obj, &["--force"]);
    target.wait_for_prefix("value 7 ");

    // The watcher's next reload changes tick only.
    tick_saved_brings_value_back(&target, &rx, &first, "patched");
    let start: i64 = target.wait_for_prefix("value 2 counter ").parse().unwrap();
    loop {
        let line = target.wait_for_prefix("value ");
        assert!(line.starts_with("2 counter "), "value runs the file's code: {line}");
        if line["2 counter ".len()..].parse::<i64>().unwrap() > start + 3000 {
            break;
        }
    }
    session.kill().unwrap();
    let _ = session.wait();
}

/// A file edited after the build whose function another relive command
/// had patched (a one-shot patch from another copy): `watch` patches it
/// from the file, and says that the running code differed for that
/// reason too, not only because of the edit (a user's trial on lz4).
#[test]
fn a_catch_up_says_what_another_command_patched() {
    let (target, state) = start();
    let other = object(&target, &APP.replace("return 1;", "return 3;"), "other");
    patch_value_from(&target, &state, &other, &[]);
    target.wait_for_prefix("value 3 ");
    std::fs::write(target.dir.path().join("app.c"), APP.replace("return 1;", "return 2;")).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_relive"))
        .args([
            "watch",
            "--pid",
            &target.pid_arg(),
            "app.c",
            "--cc",
            "gcc -O0 -g",
            "--json",
        ])
        .current_dir(target.dir.path())
        .env("RELIVE_STATE_DIR", &state)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let rx = events(&mut child);
    let start = relive_testkit::events_until(&rx, "watching");
    let edited = start
        .iter()
        .find(|e| e["status"] == "edited")
        .unwrap_or_else(|| panic!("{start:#?}"));
    assert_eq!(edited["patched_before"], serde_json::json!(["value"]), "{edited}");
    target.wait_for_prefix("value 2 ");
    child.kill().unwrap();
    let _ = child.wait();
}

/// A save of what another relive command already put in (a one-shot
/// patch of the same edit) patches nothing, and says that the program
/// already runs it: "no function changed" alone read as the save being
/// lost (a Lua re-check).
#[test]
fn a_save_of_what_another_command_put_in_says_so() {
    let (target, state) = start();
    std::fs::write(target.dir.path().join("app.c"), APP).unwrap();
    let (mut session, rx) = watch(&target, &state);
    // Compiled from a copy elsewhere: app.c stays as it was until saved.
    let three = patched_to_three_elsewhere(&target, &state);
    save(&target, &three);
    let e = rx.recv_timeout(PATIENCE).unwrap();
    assert_eq!(e["event"], "no_change", "{e}");
    assert!(e["notes"].to_string().contains("value already runs what"), "{e}");
    session.kill().unwrap();
    let _ = session.wait();
}

/// `value` patched from a copy elsewhere by a one-shot command, then a
/// watch of the program's own `app.c` (as built): the start-up compare
/// says `value` runs that earlier patch, which the file's compile (the
/// program's own code) does not have. It said the compile command
/// "probably lacks the build's -D/-I options", repeated that at every
/// reload, and refused edits of `value` (a SQLite trial's `relive watch
/// --cc` with the build's exact flags).
#[test]
fn a_watch_over_an_earlier_one_shot_patch_says_what_runs() {
    let (target, state) = start();
    std::fs::write(target.dir.path().join("app.c"), APP).unwrap();
    patched_to_three_elsewhere(&target, &state);
    let (mut session, rx, said) = watch_said(&target, &state);
    let baselines: Vec<&Value> = said.iter().filter(|e| e["event"] == "baseline").collect();
    assert!(
        baselines
            .iter()
            .any(|e| e["status"] == "patched_over" && e["functions"] == serde_json::json!(["value"])),
        "{said:?}"
    );
    assert!(!baselines.iter().any(|e| e["status"] == "differs"), "{said:?}");
    // An edit of `tick` alone leaves the earlier patch, and blames nothing.
    save(
        &target,
        &APP.replace(
            "if (callback) callback();",
            "if (callback) callback(); counter += 1000;",
        ),
    );
    let e = rx.recv_timeout(PATIENCE).unwrap();
    assert_eq!(e["event"], "patched", "{e}");
    assert_eq!(sorted_functions(&e), ["tick"], "{e}");
    assert!(!e.to_string().contains("differs from the running code"), "{e}");
    // And says the earlier patch still runs (an Oniguruma trial: the
    // program differed from a build of the file, and the line said
    // nothing of it).
    assert!(
        e["notes"]
            .to_string()
            .contains("value still runs an earlier relive patch, not this file's code"),
        "{e}"
    );
    target.wait_for_prefix("value 3 ");
    // An edit of `value` itself is patched, not refused.
    save(
        &target,
        &APP.replace(
            "if (callback) callback();",
            "if (callback) callback(); counter += 1000;",
        )
        .replace("return 1;", "return 4;"),
    );
    let e = rx.recv_timeout(PATIENCE).unwrap();
    assert_eq!(e["event"], "patched", "{e}");
    assert_eq!(sorted_functions(&e), ["value"], "{e}");
    assert!(!e["notes"].to_string().contains("earlier relive patch"), "{e}");
    target.wait_for_prefix("value 4 ");
    session.kill().unwrap();
    let _ = session.wait();
}

/// An edit one watch patched, put back in the file while no relive ran
/// (saved after that patch): the next watch takes the patch back, as an
/// edit made before it started. It said the patch "stays until a save
/// changes it", and a save of the same text changed nothing (a
/// tree-sitter trial). A patch newer than the file stays: see
/// `a_watch_over_an_earlier_one_shot_patch_says_what_runs`.
#[test]
fn an_edit_put_back_while_no_relive_ran_is_taken_back() {
    let (target, state) = start();
    let (mut session, _rx) = watched_with_value_2(&target, &state);
    session.kill().unwrap();
    let _ = session.wait();
    let app = target.dir.path().join("app.c");
    std::fs::write(&app, APP).unwrap();
    // Saved after the patch, whose time the journal keeps in seconds.
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(2);
    std::fs::File::options()
        .write(true)
        .open(&app)
        .unwrap()
        .set_modified(later)
        .unwrap();
    let (mut session, _rx, said) = watch_said(&target, &state);
    let caught_up = said
        .iter()
        .find(|e| e["event"] == "reverted")
        .unwrap_or_else(|| panic!("no take-back: {said:?}"));
    assert_eq!(caught_up["reverted"], serde_json::json!(["value"]), "{caught_up}");
    assert!(
        !said
            .iter()
            .any(|e| e["status"] == "patched_over" || e["status"] == "differs"),
        "{said:?}"
    );
    target.wait_for_prefix("value 1 ");
    let status = relive(&state, &["status", "--pid", &target.pid_arg(), "--json"]);
    let status: Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status["patches"], serde_json::json!([]), "{status}");
    session.kill().unwrap();
    let _ = session.wait();
}

/// A save made while the last save's file compiles stops that compile at
/// once (its object would be dropped for the newer one's): it ran to its
/// end first, so a large unit saved twice waited for two compiles (a
/// SQLite trial: 46 s, then 32 s). The compiler here is gcc behind a
/// script that, once the test says so, waits 20 s before it runs gcc (the
/// compile, and the macro listing beside it), and notes each compile that
/// gets that far.
#[test]
fn a_save_made_while_a_compile_runs_stops_it() {
    let (target, state) = start();
    let dir = target.dir.path();
    std::fs::write(dir.join("app.c"), APP).unwrap();
    let slow = dir.join("slow");
    let log = dir.join("compiles.log");
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let gcc = bin.join("gcc");
    std::fs::write(
        &gcc,
        format!(
            "#!/bin/sh\nif [ -e {slow} ]; then sleep 20; case \" $* \" in *\" -c \"*) echo compiled >> {log};; esac; fi\nexec gcc \"$@\"\n",
            slow = slow.display(),
            log = log.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&gcc, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let cc = format!("{} -O0 -g", gcc.display());
    let mut session = Command::new(env!("CARGO_BIN_EXE_relive"))
        .args(["watch", "--pid", &target.pid_arg(), "app.c", "--cc", &cc, "--json"])
        .current_dir(dir)
        .env("RELIVE_STATE_DIR", &state)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let rx = events(&mut session);
    relive_testkit::events_until(&rx, "watching");
    std::fs::write(&slow, "").unwrap();
    save(&target, &APP.replace("return 1;", "return 2;"));
    // The first save's compile is under way (waiting in the script).
    std::thread::sleep(std::time::Duration::from_millis(1500));
    save(&target, &APP.replace("return 1;", "return 3;"));
    let e = rx.recv_timeout(std::time::Duration::from_secs(60)).unwrap();
    assert_eq!(e["event"], "patched", "{e}");
    assert!(e["notes"].to_string().contains("compiled 2 times"), "{e}");
    target.wait_for_prefix("value 3 ");
    // Only the second save's compile got to compile: the first was
    // stopped, the script it ran with it.
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "compiled\n");
    session.kill().unwrap();
    let _ = session.wait();
}

/// The start-up's summary line of a watch (its text, not --json): a file
/// whose function runs an earlier relive patch is not counted among those
/// that "compile into exactly the code the program runs" (a re-check:
/// "1 of 1", right below the line saying it runs another patch), and a
/// file none of whose functions is in the program (another program's
/// source: here `sleep`'s pid) is said so, not counted either.
#[test]
fn a_watch_counts_only_files_that_match_what_runs() {
    let (target, state) = start();
    std::fs::write(target.dir.path().join("app.c"), APP).unwrap();
    patched_to_three_elsewhere(&target, &state);
    let said = start_up_text(&target.pid_arg(), target.dir.path(), &state);
    assert!(said.contains("value runs an earlier relive patch"), "{said}");
    assert!(
        said.contains("0 of 1 files compile into exactly the code the program runs; 1 more into the program's own code where it runs an earlier relive patch"),
        "{said}"
    );
    let mut sleep = Command::new("sleep").arg("30").spawn().unwrap();
    let said = start_up_text(&sleep.id().to_string(), target.dir.path(), &state);
    let _ = sleep.kill();
    let _ = sleep.wait();
    assert!(said.contains("app.c: none of its 3 functions is in"), "{said}");
    assert!(said.contains("0 of 1 files compile into exactly"), "{said}");
}

/// What `relive watch PID app.c` (in `dir`, text output) says before it
/// watches; the session is then ended.
fn start_up_text(pid: &str, dir: &Path, state: &Path) -> String {
    use std::io::BufRead;
    let mut child = Command::new(env!("CARGO_BIN_EXE_relive"))
        .args(["watch", "--pid", pid, "app.c", "--cc", "gcc -O0 -g"])
        .current_dir(dir)
        .env("RELIVE_STATE_DIR", state)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut said = String::new();
    for line in std::io::BufReader::new(child.stderr.take().unwrap()).lines() {
        let line = line.unwrap();
        said.push_str(&line);
        said.push('\n');
        if line.contains("watching") {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    said
}

/// A save while another tracer (a debugger) holds the program is held
/// and patched once it lets go: it ended the session with "process N is
/// traced by pid M", and `relive run` killed the program with it (a zstd
/// trial's save while gdb was attached).
#[test]
fn a_save_while_a_debugger_holds_the_program_waits_for_it() {
    let (target, state) = start();
    std::fs::write(target.dir.path().join("app.c"), APP).unwrap();
    let (mut session, rx) = watch(&target, &state);
    // This test's thread traces the program, as gdb would.
    let traced = nix::unistd::Pid::from_raw(target.pid() as i32);
    nix::sys::ptrace::seize(traced, nix::sys::ptrace::Options::empty()).unwrap();
    save(&target, &APP.replace("return 1;", "return 2;"));
    let e = rx.recv_timeout(PATIENCE).unwrap();
    assert_eq!(e["event"], "held", "{e}");
    assert!(
        e["message"]
            .as_str()
            .is_some_and(|m| m.contains(&format!("traced by pid {}", nix::unistd::gettid()))),
        "{e}"
    );
    target.wait_for_prefix("value 1 ");
    nix::sys::ptrace::interrupt(traced).unwrap();
    nix::sys::wait::waitpid(traced, Some(nix::sys::wait::WaitPidFlag::__WALL)).unwrap();
    nix::sys::ptrace::detach(traced, None).unwrap();
    let e = rx.recv_timeout(PATIENCE).unwrap();
    assert_eq!(e["event"], "patched", "{e}");
    target.wait_for_prefix("value 2 ");
    assert!(session.try_wait().unwrap().is_none(), "the session goes on");
    session.kill().unwrap();
    let _ = session.wait();
}

/// A header edit that changes no function in the files including it is
/// said in one line with the step's time (it said no time: a zstd trial
/// waited 35 s for "no function changed in" ten files).
#[test]
fn a_header_edit_that_changes_nothing_says_its_time() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    std::fs::write(p.join("h.h"), "#define STEP 1\n").unwrap();
    std::fs::write(
        p.join("a.c"),
        "#include \"h.h\"\n__attribute__((noinline)) int next(int x) { return x + STEP; }\n",
    )
    .unwrap();
    std::fs::write(
        p.join("b.c"),
        "#include <stdio.h>\n#include <unistd.h>\n#include \"h.h\"\nint next(int);\nint main(void) { setvbuf(stdout, NULL, _IOLBF, 0); for (int i = 0;; i = next(i)) { printf(\"value %d\\n\", i); usleep(3000); } }\n",
    )
    .unwrap();
    let built = Command::new("gcc")
        .args(["-O0", "-g", "-o", "app", "a.c", "b.c"])
        .current_dir(p)
        .status()
        .unwrap();
    assert!(built.success());
    let exe = p.join("app");
    let target = Target::spawn(Command::new(&exe), exe, dir);
    target.wait_for_prefix("value ");
    let mut session = Command::new(env!("CARGO_BIN_EXE_relive"))
        .args(["watch", "--pid", &target.pid_arg(), "a.c", "b.c", "--cc", "gcc -O0 -g"])
        .current_dir(target.dir.path())
        .env("RELIVE_STATE_DIR", target.dir.path().join("state"))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(session.stderr.take().unwrap()).lines();
    for line in lines.by_ref() {
        if line.unwrap().contains("watching") {
            break;
        }
    }
    std::fs::write(target.dir.path().join("h.h"), "#define STEP 1\n/* a comment */\n").unwrap();
    let said = lines
        .map(|l| l.unwrap())
        .find(|l| l.contains("no function changed"))
        .unwrap();
    assert!(said.contains("no function changed in"), "{said}");
    let time = said.rsplit_once(" (").map(|(_, t)| t.trim_end_matches(')').to_string());
    assert!(
        time.as_deref()
            .is_some_and(|t| t.ends_with(" ms") && t.trim_end_matches(" ms").parse::<f64>().is_ok()),
        "{said}"
    );
    session.kill().unwrap();
    let _ = session.wait();
}
