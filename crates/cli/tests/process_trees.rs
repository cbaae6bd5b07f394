//! Process trees (issue 24 item 2): a prefork server's parent and workers
//! are patched together (`--tree`, `--exe`), as one transaction; a worker
//! forked after a patch runs its parent's patches and relive knows it
//! (it adopts the parent's journal after checking the worker's memory);
//! a worker forked before a later patch of its parent alone is never
//! guessed at.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use relive_testkit::{Target, PATIENCE};

/// A server that forks `argv[1]` workers at start and one more at each
/// SIGUSR1; every process prints `PID VALUE` every few milliseconds.
/// Workers die with their parent.
const SERVER: &str = r#"
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <unistd.h>
static volatile sig_atomic_t want_fork;
static void on_usr1(int s) { (void)s; want_fork = 1; }
__attribute__((noinline)) int compute(int x) {
    int s = 0;
    for (int i = 0; i < x; i++) s += i ^ (x * 2);
    return s + x * 2;
}
static void worker(void) { prctl(PR_SET_PDEATHSIG, SIGKILL); printf("worker %d\n", getpid()); }
int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGUSR1, on_usr1);
    printf("server %d\n", getpid());
    int workers = argc > 1 ? atoi(argv[1]) : 0;
    for (int w = 0; w < workers; w++)
        if (fork() == 0) { worker(); break; }
    for (;;) {
        if (want_fork) { want_fork = 0; if (fork() == 0) worker(); }
        printf("%d %d\n", getpid(), compute(10));
        usleep(4000);
    }
}
"#;

/// `compute(10)` with `x * 2` replaced by `x * K`.
fn value(k: i32) -> i32 {
    (0..10).map(|i| i ^ (10 * k)).sum::<i32>() + 10 * k
}

/// The server's source with factor `k`.
fn source(k: i32) -> String {
    SERVER.replace("x * 2", &format!("x * {k}"))
}

/// Compiles the server's source with factor `k` (at the same path, as an
/// edit would) into `dir/v{k}.o`.
fn object(dir: &Path, k: i32) -> PathBuf {
    std::fs::write(dir.join("server.c"), source(k)).unwrap();
    let named = dir.join(format!("v{k}.o"));
    let status = Command::new("gcc")
        .args(["-O2", "-g", "-c", "server.c", "-o"])
        .arg(&named)
        .current_dir(dir)
        .status()
        .unwrap();
    assert!(status.success());
    named
}

/// Starts the server with `workers` workers; returns it and every pid
/// (the parent first).
fn start(workers: usize) -> (Target, Vec<u32>) {
    let dir = tempfile::tempdir().unwrap();
    let exe = relive_testkit::compile(dir.path(), "server", SERVER, &["-O2", "-g"]);
    let mut cmd = Command::new(&exe);
    cmd.arg(workers.to_string());
    let target = Target::spawn(cmd, exe, dir);
    let pids = started(&target, workers);
    assert_eq!(pids[0], target.pid());
    (target, pids)
}

/// The server's pid and its `workers` workers' as they print them.
fn started(target: &Target, workers: usize) -> Vec<u32> {
    let mut pids = vec![0];
    while pids.len() < workers + 1 || pids[0] == 0 {
        let line = target.next_line();
        if let Some(pid) = line.strip_prefix("worker ") {
            pids.push(pid.parse().unwrap());
        } else if let Some(pid) = line.strip_prefix("server ") {
            pids[0] = pid.parse().unwrap();
        }
    }
    // In the order relive takes them: the parent, then its children by pid.
    pids[1..].sort_unstable();
    pids
}

/// Reads lines until each of `pids` has printed `want` twice in a row
/// (the second print came after the change for sure).
fn all_print(target: &Target, pids: &[u32], want: i32) {
    let mut runs: HashMap<u32, u32> = HashMap::new();
    let deadline = Instant::now() + PATIENCE;
    while pids.iter().any(|p| runs.get(p).copied().unwrap_or(0) < 2) {
        assert!(
            Instant::now() < deadline,
            "not every process of {pids:?} prints {want}: {runs:?}"
        );
        let line = target.next_line();
        let mut words = line.split(' ');
        let (Some(Ok(pid)), Some(Ok(got))) = (words.next().map(str::parse), words.next().map(str::parse::<i32>)) else {
            continue;
        };
        let run = runs.entry(pid).or_default();
        *run = if got == want { *run + 1 } else { 0 };
    }
}

/// Forks one more worker (SIGUSR1 to the parent) and returns its pid.
fn fork_worker(target: &Target) -> u32 {
    fork_worker_of(target, target.pid())
}

/// Forks one more worker of `server`, whose output `target` reads.
fn fork_worker_of(target: &Target, server: u32) -> u32 {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(server as i32),
        nix::sys::signal::Signal::SIGUSR1,
    )
    .unwrap();
    loop {
        if let Some(pid) = target.next_line().strip_prefix("worker ") {
            return pid.parse().unwrap();
        }
    }
}

/// `relive patch PID --tree NEW --base BASE` and `extra` options.
fn patch_tree<'a>(pid: &'a str, new: &'a Path, base: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "patch",
        pid,
        "--tree",
        new.to_str().unwrap(),
        "--base",
        base.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    args
}

/// A revert report of `n` processes, each of which reverted `compute`.
fn each_reverted(report: &serde_json::Value, n: usize) {
    let processes = report["processes"].as_array().unwrap();
    assert_eq!(processes.len(), n, "{report}");
    for p in processes {
        assert_eq!(p["reverted"][0]["name"], "compute", "{p}");
        // Each process's own time.
        assert!(p["timing_us"]["total"].as_u64().is_some_and(|t| t > 0), "{p}");
    }
}

fn exe_arg(target: &Target) -> String {
    target.exe.display().to_string()
}

#[test]
fn one_edit_reaches_the_parent_and_every_worker_before_and_after_forks() {
    let (target, mut pids) = start(3);
    let dir = target.dir.path();
    let (v2, v3, v5) = (object(dir, 2), object(dir, 3), object(dir, 5));
    all_print(&target, &pids, value(2));

    // --tree: the parent and its three workers, one report each.
    let root = target.pid_arg();
    let report = common::json(&patch_tree(&root, &v3, &v2, &["--json"]));
    let processes = report["processes"].as_array().unwrap();
    let patched: Vec<u64> = processes.iter().map(|p| p["pid"].as_u64().unwrap()).collect();
    assert_eq!(patched, pids.iter().map(|&p| p as u64).collect::<Vec<_>>());
    for p in processes {
        assert_eq!(p["applied"][0]["name"], "compute", "{p}");
    }
    all_print(&target, &pids, value(3));

    // A worker forked now runs the patch, and relive knows it.
    let late = fork_worker(&target);
    pids.push(late);
    all_print(&target, &pids, value(3));
    let out = common::relive(&["status", &late.to_string(), "--json"]);
    assert!(out.status.success());
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["patches"][0]["name"], "compute", "{status}");
    assert_eq!(status["patches"][0]["generation"], 1);
    let note = String::from_utf8_lossy(&out.stderr);
    assert!(
        note.contains(&format!("process {late} was forked from process {}", target.pid())),
        "{note}"
    );

    // --exe: every process running the file, the late worker too.
    let report = common::json(&[
        "patch",
        "--exe",
        &exe_arg(&target),
        v5.to_str().unwrap(),
        "--base",
        v3.to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(report["processes"].as_array().unwrap().len(), 5, "{report}");
    all_print(&target, &pids, value(5));

    // And back, everywhere: the original code (each worker's own journal).
    let report = common::json(&["revert", "--exe", &exe_arg(&target), "--all", "--json"]);
    each_reverted(&report, pids.len());
    all_print(&target, &pids, value(2));
}

#[test]
fn a_process_that_cannot_be_patched_rolls_back_the_others() {
    let (target, pids) = start(3);
    let dir = target.dir.path();
    let (v2, v3) = (object(dir, 2), object(dir, 3));
    all_print(&target, &pids, value(2));
    // Another tracer holds the last worker: relive cannot stop it.
    let held = nix::unistd::Pid::from_raw(pids[3] as i32);
    nix::sys::ptrace::seize(held, nix::sys::ptrace::Options::empty()).unwrap();

    let out = common::relive(&patch_tree(&target.pid_arg(), &v3, &v2, &[]));
    let message = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{message}");
    assert!(message.contains(&format!("process {} failed", pids[3])), "{message}");
    let others: Vec<String> = pids[..3].iter().rev().map(u32::to_string).collect();
    assert!(
        message.contains(&format!("rolled back processes {}", others.join(", "))),
        "{message}"
    );
    // Every process runs the old code, and no journal says otherwise.
    all_print(&target, &pids, value(2));
    for pid in &pids[..3] {
        let status = common::json(&["status", &pid.to_string(), "--json"]);
        assert_eq!(status["patches"], serde_json::json!([]), "{status}");
    }

    // Once the other tracer lets go, the same command patches them all.
    nix::sys::ptrace::interrupt(held).unwrap();
    nix::sys::wait::waitpid(held, Some(nix::sys::wait::WaitPidFlag::__WALL)).unwrap();
    nix::sys::ptrace::detach(held, None).unwrap();
    common::text(&patch_tree(&target.pid_arg(), &v3, &v2, &[]));
    all_print(&target, &pids, value(3));

    // A revert of the tree reverts every process it can, and a failure
    // keeps its own exit status (4: another tracer).
    nix::sys::ptrace::seize(held, nix::sys::ptrace::Options::empty()).unwrap();
    let out = common::relive(&["revert", &target.pid_arg(), "--tree", "--all"]);
    let message = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{message}");
    assert!(
        message.contains(&format!("1 of 4 processes were not reverted; process {}", pids[3])),
        "{message}"
    );
    all_print(&target, &pids[..3], value(2));
    all_print(&target, &pids[3..], value(3));
}

#[test]
fn a_worker_forked_after_a_patch_is_reverted_with_its_tree() {
    let (target, mut pids) = start(1);
    let dir = target.dir.path();
    let (v2, v3) = (object(dir, 2), object(dir, 3));
    let root = target.pid_arg();
    common::text(&patch_tree(&root, &v3, &v2, &[]));
    pids.push(fork_worker(&target));
    all_print(&target, &pids, value(3));
    // Nothing has looked at the late worker yet: the revert of the tree
    // must not revert its parent first and lose what it inherited.
    let report = common::json(&["revert", &root, "--tree", "--last", "--json"]);
    each_reverted(&report, 3);
    all_print(&target, &pids, value(2));
}

#[test]
fn a_worker_forked_before_its_parent_was_patched_again_is_not_guessed_at() {
    let (target, _) = start(0);
    let dir = target.dir.path();
    let (v2, v3, v5) = (object(dir, 2), object(dir, 3), object(dir, 5));
    let root = target.pid_arg();
    common::text(&["patch", &root, v3.to_str().unwrap(), "--base", v2.to_str().unwrap()]);
    let early = fork_worker(&target);
    // Only the parent gets the next patch.
    common::text(&["patch", &root, v5.to_str().unwrap(), "--base", v3.to_str().unwrap()]);
    all_print(&target, &[target.pid()], value(5));
    all_print(&target, &[early], value(3));

    let out = common::relive(&["status", &early.to_string(), "--json"]);
    let note = String::from_utf8_lossy(&out.stderr);
    assert!(note.contains("does not run process"), "{note}");
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["unrecorded"], true, "{status}");
    // Diffed against what it does run, it is refused for what it is.
    let out = common::relive(&[
        "patch",
        &early.to_string(),
        v5.to_str().unwrap(),
        "--base",
        v3.to_str().unwrap(),
    ]);
    let message = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{message}");
    assert!(
        message.contains("compute's entry") && message.contains("restart process"),
        "{message}"
    );
    // Its redirected entry is not taken for the program's code: a revert
    // would write the parent's jump back as the "original".
    let out = common::relive(&["patch", &early.to_string(), v5.to_str().unwrap(), "--only", "compute"]);
    let message = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{message}");
    assert!(message.contains("not the program's code"), "{message}");
    all_print(&target, &[early], value(3));
    all_print(&target, &[target.pid()], value(5));
}

#[test]
fn relive_run_patches_every_worker_of_a_forking_program_at_each_reload() {
    let dir = tempfile::tempdir().unwrap();
    let exe = relive_testkit::compile(dir.path(), "server", SERVER, &["-O2", "-g"]);
    let file = dir.path().join("server.c");
    let relive = Path::new(env!("CARGO_BIN_EXE_relive"));
    let (target, events) = relive_testkit::relive_run(relive, &[], exe, &["3"], dir);
    let mut pids = started(&target, 3);
    all_print(&target, &pids, value(2));

    let reload = |k: i32| {
        std::fs::write(&file, source(k)).unwrap();
        let e = events.recv_timeout(PATIENCE).unwrap();
        assert_eq!(e["event"], "patched", "{e}");
        e
    };
    let e = reload(3);
    let workers: Vec<u64> = pids[1..].iter().map(|&p| p as u64).collect();
    assert_eq!(e["processes"], serde_json::json!(workers), "{e}");
    all_print(&target, &pids, value(3));

    // A worker forked after the reload runs it, and gets the next one.
    pids.push(fork_worker_of(&target, pids[0]));
    all_print(&target, &pids, value(3));
    let e = reload(5);
    assert_eq!(e["processes"].as_array().map(Vec::len), Some(4), "{e}");
    all_print(&target, &pids, value(5));
}

/// `relive watch --exe PATH`: every process running the file (here a
/// server and its workers, started without relive) gets each reload.
#[test]
fn relive_watch_exe_reloads_every_process_running_the_file() {
    let (target, pids) = start(3);
    all_print(&target, &pids, value(2));
    let mut watch = Command::new(env!("CARGO_BIN_EXE_relive"))
        .args(["watch", "--exe", &exe_arg(&target), "--json"])
        .env("RELIVE_STATE_DIR", target.dir.path().join("state"))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let events = relive_testkit::json_lines(watch.stderr.take().unwrap());
    relive_testkit::events_until(&events, "watching");
    std::fs::write(target.dir.path().join("server.c"), source(3)).unwrap();
    let patched = relive_testkit::events_until(&events, "patched").pop().unwrap();
    assert_eq!(patched["processes"].as_array().map(Vec::len), Some(3), "{patched}");
    all_print(&target, &pids, value(3));
    // The process the session follows ends: watch says so, and ends (it
    // ended in silence).
    let mut target = target;
    assert_eq!(target.pid(), pids[0]);
    target.child.kill().unwrap();
    target.child.wait().unwrap();
    let ended = relive_testkit::events_until(&events, "exited").pop().unwrap();
    assert_eq!(ended["pid"], pids[0], "{ended}");
    assert!(watch.wait().unwrap().success());
}
