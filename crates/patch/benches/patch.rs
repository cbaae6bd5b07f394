//! `relive patch` on a running program built from a 1,000-function C
//! file: one changed function, and 100 changed at once. Prints the median
//! of each stage (diff, link, alloc, stop, write, total) and of the pause,
//! next to the bare stop-and-resume of the same process measured in the
//! same run (the floor any patch pays).
//!
//! Goal: under 1 ms total and under 100 µs pause for one function.
//!
//! Run: `cargo bench -p relive-patch --bench patch`.

use std::fmt::Write as _;
use std::process::Command;
use std::time::Instant;

use relive_patch::apply::{self, PatchReport, Target as PatchTarget, Timing};
use relive_patch::objfile::Kind;
use relive_patch::{diff, ObjectFile};
use relive_process::linux::LinuxProcess;
use relive_process::Process;
use relive_testkit::Target;

const FUNCTIONS: usize = 1000;
const ROUNDS: usize = 101;

/// The C file, with functions `changed` returning `x + variant`.
fn source(changed: &[usize], variant: usize) -> String {
    let mut s = String::from("#include <stdio.h>\n#include <unistd.h>\n");
    for i in 0..FUNCTIONS {
        let k = if changed.contains(&i) { variant } else { 0 };
        writeln!(
            s,
            "__attribute__((noinline, noipa)) int f{i}(int x) {{ return x * {} + {k}; }}",
            i + 1
        )
        .unwrap();
    }
    s.push_str(
        "int main(void) {\n  setvbuf(stdout, NULL, _IOLBF, 0);\n  for (;;) { printf(\"%d\\n\", f500(1)); usleep(1000); }\n}\n",
    );
    s
}

fn compile(dir: &std::path::Path, name: &str, text: &str, object: bool) -> std::path::PathBuf {
    std::fs::write(dir.join("app.c"), text).unwrap();
    let out = dir.join(name);
    let mut cmd = Command::new("gcc");
    cmd.args(["-O2", "-o"]).arg(&out).arg("app.c").current_dir(dir);
    if object {
        cmd.arg("-c");
    }
    assert!(cmd.status().unwrap().success());
    out
}

fn median(mut v: Vec<u64>) -> u64 {
    v.sort_unstable();
    v[v.len() / 2]
}

fn run(label: &str, changed: &[usize]) {
    let dir = tempfile::tempdir().unwrap();
    let exe = compile(dir.path(), "app", &source(changed, 0), false);
    let target = Target::spawn(Command::new(&exe), exe, tempfile::tempdir().unwrap());
    target.next_line();
    let objects: Vec<ObjectFile> = (0..3)
        .map(|v| {
            let o = compile(dir.path(), &format!("v{v}.o"), &source(changed, v), true);
            ObjectFile::open(o).unwrap()
        })
        .collect();
    let state = tempfile::tempdir().unwrap();
    std::env::set_var("RELIVE_STATE_DIR", state.path());
    let process = LinuxProcess::open(target.pid()).unwrap();
    let mut patch_target = PatchTarget::open(&process).unwrap();
    let mut reports: Vec<PatchReport> = Vec::new();
    for round in 0..ROUNDS {
        // v0 is running; alternate v1 and v2, each diffed against the last.
        let (old, new) = match round {
            0 => (&objects[0], &objects[1]),
            r if r % 2 == 1 => (&objects[1], &objects[2]),
            _ => (&objects[2], &objects[1]),
        };
        let t = Instant::now();
        let d = diff(old, new);
        let functions: Vec<usize> = new
            .symbols
            .iter()
            .enumerate()
            .filter(|(_, s)| s.kind == Kind::Function && d.changed.iter().any(|c| c.name == s.name))
            .map(|(i, _)| i)
            .collect();
        assert_eq!(functions.len(), changed.len(), "{d:?}");
        let diff_us = t.elapsed().as_micros() as u64;
        let earlier = Timing {
            diff: diff_us,
            ..Timing::default()
        };
        reports.push(apply::patch(&mut patch_target, new, Some(old), &functions, earlier).unwrap());
    }
    // The first patch allocates the pool; the rest update slots.
    let first = &reports[0];
    let steady = &reports[1..];
    // First redirects of other functions into the existing pool: each
    // stops the threads to write an entry jump.
    let redirects: Vec<PatchReport> = if changed.len() == 1 {
        (0..ROUNDS)
            .filter(|&i| i != changed[0])
            .take(ROUNDS - 1)
            .map(|i| {
                let name = format!("f{i}");
                let idx = objects[1].symbols.iter().position(|s| s.name == name).unwrap();
                apply::patch(
                    &mut patch_target,
                    &objects[1],
                    Some(&objects[0]),
                    &[idx],
                    Timing::default(),
                )
                .unwrap()
            })
            .collect()
    } else {
        Vec::new()
    };
    let floor = median(
        (0..ROUNDS)
            .map(|_| {
                let t = Instant::now();
                process.stop().unwrap().resume().unwrap();
                t.elapsed().as_micros() as u64
            })
            .collect(),
    );
    let stat = |set: &[PatchReport], f: fn(&PatchReport) -> u64| median(set.iter().map(f).collect());
    let stages = |set: &[PatchReport]| {
        format!(
            "total {} = diff {} + link {} + alloc {} + stop {} + write {} + check {} + debuggers {}",
            stat(set, |r| r.timing_us.total),
            stat(set, |r| r.timing_us.diff),
            stat(set, |r| r.timing_us.link),
            stat(set, |r| r.timing_us.alloc),
            stat(set, |r| r.timing_us.stop),
            stat(set, |r| r.timing_us.write),
            stat(set, |r| r.timing_us.check),
            stat(set, |r| r.timing_us.debuggers)
        )
    };
    println!(
        "{label}: {FUNCTIONS} functions in the object, {} changed",
        changed.len()
    );
    println!(
        "  first patch ever (allocates the pool, redirects): total {} µs, pause {} µs",
        first.timing_us.total, first.pause_us
    );
    println!(
        "  re-patch ({} rounds, slot update only): median µs {}; pause {} µs",
        steady.len(),
        stages(steady),
        stat(steady, |r| r.pause_us)
    );
    if !redirects.is_empty() {
        let pause = stat(&redirects, |r| r.pause_us);
        println!(
            "  first redirect of a function, pool in place ({} functions): median µs {}; pause {pause} µs",
            redirects.len(),
            stages(&redirects)
        );
        println!(
            "  bare stop+resume of the same process: {floor} µs (redirect pause / bare = {:.2})",
            pause as f64 / floor.max(1) as f64
        );
        println!(
            "  goals: total under 1 ms: {} (re-patch), {} (first redirect); pause under 100 µs: {}",
            stat(steady, |r| r.timing_us.total) < 1000,
            stat(&redirects, |r| r.timing_us.total) < 1000,
            pause < 100
        );
    }
}

fn main() {
    if std::env::args().any(|a| a == "--test" || a == "--list") {
        return;
    }
    run("one changed function", &[500]);
    let hundred: Vec<usize> = (0..100).map(|i| i * 10).collect();
    run("100 changed functions", &hundred);
}
