//! The one-shot `relive patch PID NEW.o --base OLD.o --json` as a user runs
//! it, cold: a new relive process each time, reading both objects, the
//! process and its journal, one function changed (`-O2 -g`). Measured from
//! spawning the command to its exit ("whole"), next to the `timing_us.total`
//! it reports and, in the same run, two baselines: `gcc -O2 -g -c` of the
//! same file (what an edit costs anyway) and `relive --version` (starting
//! and ending a relive process, the floor of any command).
//!
//! Series: 100, 1,000 and 10,000 functions in the object (the cost per
//! function should stay flat), then the SQLite amalgamation (about 250,000
//! lines; its sources come from the `libsqlite3-sys` crate, fetched with
//! cargo into a scratch crate; skipped, saying so, when that fails). Goals
//! (issue 22): 1 of 1,000 total ≤ 1 ms and whole ≤ 5 ms; 1 of 10,000 total
//! ≤ 5 ms; SQLite diff + link + apply ≤ 10 ms.
//!
//! Run: `cargo bench -p relive --bench oneshot` (builds SQLite twice at
//! -O2 -g: a few minutes). `-- --quick` skips SQLite.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use relive_testkit::Target;
use serde_json::Value;

const ROUNDS: usize = 9;

fn median(mut v: Vec<u64>) -> u64 {
    v.sort_unstable();
    v[v.len() / 2]
}

/// Runs `cmd` to its end; its wall time in µs.
fn timed(cmd: &mut Command) -> (u64, std::process::Output) {
    let t = Instant::now();
    let out = cmd.output().expect("running a command");
    let us = t.elapsed().as_micros() as u64;
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (us, out)
}

fn relive() -> Command {
    Command::new(env!("CARGO_BIN_EXE_relive"))
}

/// A C file of `n` functions; the middle one returns `x * k + variant`.
/// `main` calls it with a `volatile` argument, so the call stays in its
/// loop (the functions are pure: GCC hoists a call with a constant
/// argument out of the loop, and the patched function is then one no
/// call reaches, which relive says, after a longer search for callers).
fn generated(n: usize, variant: usize) -> String {
    let mut s = String::from("#include <stdio.h>\n#include <unistd.h>\nstatic volatile int one = 1;\n");
    for i in 0..n {
        let add = if i == n / 2 { variant } else { 0 };
        writeln!(
            s,
            "__attribute__((noinline)) int f{i}(int x) {{ return x * {} + {add}; }}",
            i + 1
        )
        .unwrap();
    }
    writeln!(
        s,
        "int main(void) {{ setvbuf(stdout, NULL, _IOLBF, 0); for (;;) {{ printf(\"v %d\\n\", f{}(one)); usleep(20000); }} }}",
        n / 2
    )
    .unwrap();
    s
}

/// `gcc FLAGS -c FILE -o OUT` in `dir`; its wall time in µs.
fn compile(dir: &Path, file: &str, flags: &[&str], out: &str) -> u64 {
    timed(
        Command::new("gcc")
            .args(flags)
            .args(["-c", file, "-o", out])
            .current_dir(dir),
    )
    .0
}

/// What one series measured.
struct Figures {
    whole: u64,
    total: u64,
    diff_link_apply: u64,
    cc: u64,
    floor: u64,
}

/// Patches a running `app` (built from `dir/file`, printing a line that
/// starts with `expect` once running) with `new.o` and
/// `old.o` in turn, each against the other, `ROUNDS` times after a first
/// patch that maps the pool.
fn patch_rounds(dir: &Path, app: &Path, expect: &str) -> (Vec<u64>, Vec<u64>, Vec<u64>) {
    let target = Target::spawn(Command::new(app), app.to_path_buf(), tempfile::tempdir().unwrap());
    // A line starting with `expect` (SQLite's names its version).
    target.wait_for_prefix(expect);
    let state = tempfile::tempdir().unwrap();
    let pid = target.pid_arg();
    let patch = |new: &str, old: &str| {
        let (us, out) = timed(
            relive()
                .args(["patch", &pid, new, "--base", old, "--json"])
                .env("RELIVE_STATE_DIR", state.path())
                .current_dir(dir),
        );
        let report: Value = serde_json::from_slice(&out.stdout).expect("patch --json");
        let t = &report["timing_us"];
        let stage = |s: &str| t[s].as_u64().unwrap_or(0);
        let applied = ["diff", "link", "alloc", "stop", "write"]
            .iter()
            .map(|s| stage(s))
            .sum();
        (us, stage("total"), applied)
    };
    patch("new.o", "old.o");
    let (mut whole, mut total, mut applied) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        let (new, old) = if round % 2 == 0 {
            ("old.o", "new.o")
        } else {
            ("new.o", "old.o")
        };
        let (w, t, a) = patch(new, old);
        whole.push(w);
        total.push(t);
        applied.push(a);
    }
    (whole, total, applied)
}

fn floor() -> u64 {
    median((0..ROUNDS).map(|_| timed(relive().arg("--version")).0).collect())
}

fn series(n: usize) -> Figures {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let flags = ["-O2", "-g"];
    std::fs::write(d.join("app.c"), generated(n, 0)).unwrap();
    timed(
        Command::new("gcc")
            .args(flags)
            .args(["app.c", "-o", "app"])
            .current_dir(d),
    );
    compile(d, "app.c", &flags, "old.o");
    std::fs::write(d.join("app.c"), generated(n, 1)).unwrap();
    let cc = median((0..5).map(|_| compile(d, "app.c", &flags, "new.o")).collect());
    let (whole, total, applied) = patch_rounds(d, &d.join("app"), &format!("v {}", n / 2 + 1));
    Figures {
        whole: median(whole),
        total: median(total),
        diff_link_apply: median(applied),
        cc,
        floor: floor(),
    }
}

/// The SQLite amalgamation of the `libsqlite3-sys` crate, fetched by cargo
/// into a scratch crate (nothing is built there).
fn sqlite_source() -> Result<PathBuf, String> {
    let scratch = std::env::temp_dir().join("relive-bench-sqlite-fetch");
    std::fs::create_dir_all(scratch.join("src")).map_err(|e| e.to_string())?;
    std::fs::write(
        scratch.join("Cargo.toml"),
        "[package]\nname = \"fetch\"\nversion = \"0.0.0\"\nedition = \"2021\"\n[dependencies]\nlibsqlite3-sys = { version = \"=0.30.1\", features = [\"bundled\"] }\n",
    )
    .map_err(|e| e.to_string())?;
    std::fs::write(scratch.join("src/lib.rs"), "").map_err(|e| e.to_string())?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1"])
        .current_dir(&scratch)
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let meta: Value = serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
    let manifest = meta["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == "libsqlite3-sys")
        .and_then(|p| p["manifest_path"].as_str())
        .ok_or("no libsqlite3-sys in cargo metadata")?;
    Ok(Path::new(manifest).parent().unwrap().join("sqlite3"))
}

const SQLITE_DRIVER: &str = r#"
#include <stdio.h>
#include <unistd.h>
#include "sqlite3.h"
int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (;;) { printf("version %d\n", sqlite3_libversion_number()); usleep(20000); }
}
"#;

fn sqlite() -> Result<Figures, String> {
    let src = sqlite_source()?;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let text = std::fs::read_to_string(src.join("sqlite3.c")).map_err(|e| e.to_string())?;
    std::fs::copy(src.join("sqlite3.h"), d.join("sqlite3.h")).map_err(|e| e.to_string())?;
    std::fs::write(d.join("sqlite3.c"), &text).unwrap();
    std::fs::write(d.join("main.c"), SQLITE_DRIVER).unwrap();
    // The flags libsqlite3-sys builds it with, in essence.
    let flags = [
        "-O2",
        "-g",
        "-DSQLITE_THREADSAFE=1",
        "-DSQLITE_ENABLE_FTS5",
        "-DSQLITE_ENABLE_RTREE",
    ];
    eprintln!("sqlite: compiling sqlite3.c twice (-O2 -g)...");
    compile(d, "sqlite3.c", &flags, "old.o");
    timed(
        Command::new("gcc")
            .args(flags)
            .args(["-c", "main.c", "-o", "main.o"])
            .current_dir(d),
    );
    timed(
        Command::new("gcc")
            .args(["main.o", "old.o", "-o", "app", "-lm", "-lpthread"])
            .current_dir(d),
    );
    let old = "int sqlite3_libversion_number(void){ return SQLITE_VERSION_NUMBER; }";
    if !text.contains(old) {
        return Err(format!("sqlite3.c has no `{old}` to edit"));
    }
    let edited = text.replace(
        old,
        "int sqlite3_libversion_number(void){ return SQLITE_VERSION_NUMBER + 1; }",
    );
    std::fs::write(d.join("sqlite3.c"), edited).unwrap();
    let cc = compile(d, "sqlite3.c", &flags, "new.o");
    let (whole, total, applied) = patch_rounds(d, &d.join("app"), "version ");
    Ok(Figures {
        whole: median(whole),
        total: median(total),
        diff_link_apply: median(applied),
        cc,
        floor: floor(),
    })
}

fn report(label: &str, f: &Figures, functions: Option<usize>) {
    let per_function = functions.map_or(String::new(), |n| {
        format!(", {:.2} µs per function", f.total as f64 / n as f64)
    });
    println!(
        "{label}: whole command {} µs (relive --version {} µs), timing_us.total {} µs{per_function}, diff+link+apply {} µs; gcc -c {} µs; whole / gcc -c = {:.3}",
        f.whole,
        f.floor,
        f.total,
        f.diff_link_apply,
        f.cc,
        f.whole as f64 / f.cc.max(1) as f64
    );
}

fn main() {
    if std::env::args().any(|a| a == "--test" || a == "--list") {
        return;
    }
    println!("one-shot relive patch, one function changed, -O2 -g, medians of {ROUNDS} runs");
    let mut figures = Vec::new();
    for n in [100, 1000, 10_000] {
        let f = series(n);
        report(&format!("{n:>6} functions"), &f, Some(n));
        figures.push((n, f));
    }
    let at = |n: usize| &figures.iter().find(|(k, _)| *k == n).unwrap().1;
    println!(
        "goals: 1 of 1,000 total <= 1 ms: {} ({} µs); whole <= 5 ms: {} ({} µs); 1 of 10,000 total <= 5 ms: {} ({} µs)",
        at(1000).total <= 1000,
        at(1000).total,
        at(1000).whole <= 5000,
        at(1000).whole,
        at(10_000).total <= 5000,
        at(10_000).total
    );
    if std::env::args().any(|a| a == "--quick") {
        println!("sqlite: skipped (--quick)");
        return;
    }
    match sqlite() {
        Ok(f) => {
            report("sqlite3.c", &f, None);
            println!(
                "goal: SQLite diff+link+apply <= 10 ms: {} ({} µs)",
                f.diff_link_apply <= 10_000,
                f.diff_link_apply
            );
        }
        Err(e) => println!("sqlite: skipped: {e}"),
    }
}
