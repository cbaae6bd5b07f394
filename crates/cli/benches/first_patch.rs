//! The pause of a process's first patch, by thread count: a program with
//! 1, 100 and 1,000 threads (all but the main one blocked in `read`, an
//! idle server's workers) gets its first `relive patch --pid P NEW.o
//! --base OLD.o --json`, cold, which maps the pool, loads the debugger and
//! unwinder libraries and redirects one function. Reported, from relive's
//! own JSON: `pause_us` (every thread stopped together, for the redirect),
//! `alloc_pause_us` (one thread stopped to map the pool; the others run on)
//! and `timing_us.total`, plus the whole command's wall time.
//!
//! Baseline, measured in the same run on the same process just before its
//! first patch: one bare stop-all (every thread seized, interrupted, waited
//! for and detached through `relive-process`, with nothing done while they
//! are stopped). Goal (issue 22): `pause_us` ≤ 1.5 × that at every count.
//!
//! Each count: 9 fresh processes (a first patch happens once per process);
//! medians. Run: `cargo bench -p relive --bench first_patch`.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use relive_process::linux::LinuxProcess;
use relive_process::Stopped;
use relive_testkit::Target;
use serde_json::Value;

const PROCESSES: usize = 9;
const BARE_ROUNDS: usize = 9;

const PROGRAM: &str = r#"
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
static int fds[2];
static volatile int one = 1; /* not a constant: the call stays in the loop */
static void *idle(void *arg) { char c; (void)arg; for (;;) if (read(fds[0], &c, 1) <= 0) return 0; }
__attribute__((noinline)) int f(int x) { return x * 3 + VARIANT; }
int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 0;
    if (pipe(fds) != 0) return 1;
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (int i = 0; i < n; i++) {
        pthread_t t;
        pthread_attr_t a;
        pthread_attr_init(&a);
        pthread_attr_setstacksize(&a, 65536);
        if (pthread_create(&t, &a, idle, 0) != 0) return 2;
    }
    printf("ready %d\n", n);
    for (;;) { printf("v %d\n", f(one)); usleep(20000); }
}
"#;

fn median(mut v: Vec<u64>) -> u64 {
    v.sort_unstable();
    v[v.len() / 2]
}

fn gcc(dir: &Path, args: &[&str]) {
    let out = Command::new("gcc").args(args).current_dir(dir).output().expect("gcc");
    assert!(
        out.status.success(),
        "gcc {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// One stop-all and resume of `pid`, in µs.
fn bare_stop_all(pid: u32) -> u64 {
    let process = LinuxProcess::open(pid).expect("open");
    let t = Instant::now();
    let stopped = process.stop_all().expect("stop");
    Box::new(stopped).resume().expect("resume");
    t.elapsed().as_micros() as u64
}

struct Row {
    bare: u64,
    pause: u64,
    alloc_pause: u64,
    total: u64,
    whole: u64,
}

fn count(dir: &Path, threads: usize) -> Row {
    let (mut bare, mut pause, mut alloc_pause, mut total, mut whole) = (vec![], vec![], vec![], vec![], vec![]);
    for _ in 0..PROCESSES {
        let mut cmd = Command::new(dir.join("app"));
        cmd.arg((threads - 1).to_string());
        let target = Target::spawn(cmd, dir.join("app"), tempfile::tempdir().unwrap());
        target.wait_for_prefix("ready ");
        bare.push(median((0..BARE_ROUNDS).map(|_| bare_stop_all(target.pid())).collect()));
        let state = tempfile::tempdir().unwrap();
        let t = Instant::now();
        let out = Command::new(env!("CARGO_BIN_EXE_relive"))
            .args([
                "patch",
                "--pid",
                &target.pid().to_string(),
                "new.o",
                "--base",
                "old.o",
                "--json",
            ])
            .env("RELIVE_STATE_DIR", state.path())
            .current_dir(dir)
            .output()
            .expect("relive patch");
        whole.push(t.elapsed().as_micros() as u64);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let report: Value = serde_json::from_slice(&out.stdout).expect("patch --json");
        assert!(
            report["alloc_pause_us"].as_u64().unwrap_or(0) > 0,
            "not a first patch: {report}"
        );
        pause.push(report["pause_us"].as_u64().expect("pause_us"));
        alloc_pause.push(report["alloc_pause_us"].as_u64().unwrap_or(0));
        total.push(report["timing_us"]["total"].as_u64().expect("total"));
        target.wait_for_prefix("v 4");
    }
    Row {
        bare: median(bare),
        pause: median(pause),
        alloc_pause: median(alloc_pause),
        total: median(total),
        whole: median(whole),
    }
}

fn main() {
    if std::env::args().any(|a| a == "--test" || a == "--list") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let flags = ["-O2", "-g"];
    std::fs::write(d.join("app.c"), PROGRAM.replace("VARIANT", "0")).unwrap();
    gcc(d, &[&flags[..], &["app.c", "-o", "app", "-pthread"]].concat());
    gcc(d, &[&flags[..], &["-c", "app.c", "-o", "old.o"]].concat());
    std::fs::write(d.join("app.c"), PROGRAM.replace("VARIANT", "1")).unwrap();
    gcc(d, &[&flags[..], &["-c", "app.c", "-o", "new.o"]].concat());
    println!("first patch of a process, one function, -O2 -g; medians over {PROCESSES} processes per count");
    let mut met = true;
    for threads in [1, 100, 1000] {
        let r = count(d, threads);
        let ratio = r.pause as f64 / r.bare.max(1) as f64;
        met &= ratio <= 1.5;
        println!(
            "{threads:>5} threads: pause_us {} (bare stop-all {} µs, ratio {ratio:.2}); alloc_pause_us {} (one thread); timing_us.total {}; whole command {} µs",
            r.pause, r.bare, r.alloc_pause, r.total, r.whole
        );
    }
    println!("goal: pause <= 1.5 x bare stop-all at every count: {met}");
}
