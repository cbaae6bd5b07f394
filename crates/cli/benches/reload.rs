//! Edit-to-output time of `relive run`, against plain `cc -c` and against
//! restarting, measured in the same run (`cargo bench -p relive --bench
//! reload`; prints its figures).
//!
//! A 300-line C program prints `gen K` every 200 µs, where `K` comes from
//! its function `generation()`. Each of 20 scripted edits changes
//! `generation()` to return the edit's number and changes one of 25
//! other functions, then saves the file. Measured per edit:
//! - relive: from the moment the file is saved (renamed over) to the moment the
//!   program's first `gen K` line is read (so it includes inotify, the
//!   compile, diff, link, apply and up to one 200 µs loop of the program);
//! - `cc -c`: the same file compiled with the same flags (`gcc -O0 -g`,
//!   what the program's DWARF records), nothing else;
//! - restart: kill the program, rebuild it (`gcc -O0 -g -o`), start it and
//!   read its first line (5 times).
//!
//! relive runs with `--debounce-ms 0`: the default 10 ms debounce (which
//! coalesces an editor's bursts of writes) adds up to 10 ms on top.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

const EDITS: usize = 20;
const FUNCTIONS: usize = 25;
const FLAGS: [&str; 2] = ["-O0", "-g"];

/// The program, with `generation()` returning `generation` and function
/// `f{edited}` using `constant`.
fn program(generation: usize, edited: usize, constant: usize) -> String {
    let mut s = String::from(
        "#include <stdio.h>\n#include <unistd.h>\n\nlong total = 0;\nstatic int calls = 0;\n\n\
         __attribute__((noinline)) int generation(void) {\n    return 0;\n}\n\n",
    );
    s = s.replace("return 0;", &format!("return {generation};"));
    for f in 0..FUNCTIONS {
        let k = if f == edited { constant } else { f + 1 };
        s.push_str(&format!(
            "__attribute__((noinline)) long f{f}(long x) {{\n    long y = x * {k} + {f};\n    \
             for (int i = 0; i < 3; i++) {{\n        y ^= (y << 3) + i;\n        y += x % {k1};\n    }}\n    \
             calls++;\n    return y;\n}}\n\n",
            k1 = k + 2
        ));
    }
    s.push_str("long step(long x) {\n");
    for f in 0..FUNCTIONS {
        s.push_str(&format!("    x = f{f}(x) & 0xffff;\n"));
    }
    s.push_str(
        "    return x;\n}\n\nint main(void) {\n    setvbuf(stdout, NULL, _IOLBF, 0);\n    for (;;) {\n        \
         total += step(total);\n        printf(\"gen %d total %ld\\n\", generation(), total);\n        \
         usleep(200);\n    }\n}\n",
    );
    s
}

/// Lines of a child's stdout with the moment each arrived.
fn lines(child: &mut Child) -> Receiver<(Instant, String)> {
    let out = child.stdout.take().expect("piped stdout");
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send((Instant::now(), line)).is_err() {
                break;
            }
        }
    });
    rx
}

/// Reads lines until one starts with `prefix`; when it arrived.
fn until(rx: &Receiver<(Instant, String)>, prefix: &str) -> Instant {
    loop {
        let (at, line) = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("no line starting with {prefix:?}"));
        if line.starts_with(prefix) {
            return at;
        }
    }
}

fn gcc(dir: &Path, args: &[&str]) {
    let status = Command::new("gcc")
        .args(FLAGS)
        .args(args)
        .current_dir(dir)
        .status()
        .expect("gcc");
    assert!(status.success());
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    // `cargo bench` passes --bench; a filter that is not ours skips the run.
    if std::env::args()
        .skip(1)
        .any(|a| !a.starts_with("--") && !"reload".contains(&a))
    {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let source = dir.path().join("app.c");
    std::fs::write(&source, program(0, FUNCTIONS, 0)).expect("write app.c");
    let length = program(0, 0, 0).lines().count();
    assert!((290..=340).contains(&length), "{length} lines");
    gcc(dir.path(), &["-o", "app", "app.c"]);

    let mut relive = Command::new(env!("CARGO_BIN_EXE_relive"))
        .args(["run", "--json", "--debounce-ms", "0", "--", "./app"])
        .current_dir(dir.path())
        .env("RELIVE_STATE_DIR", dir.path().join("state"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("relive run");
    let output = lines(&mut relive);
    let events = {
        let err = relive.stderr.take().expect("piped stderr");
        let (tx, rx) = channel::<String>();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        rx
    };
    let next_event = || events.recv_timeout(Duration::from_secs(30)).expect("a relive event");
    // Start-up events (`starting`, `baseline`) come first.
    while !next_event().contains("\"watching\"") {}
    until(&output, "gen 0 ");

    let (mut reload, mut compile_only, mut relive_compile, mut relive_rest) = (vec![], vec![], vec![], vec![]);
    for edit in 1..=EDITS {
        let text = program(edit, edit % FUNCTIONS, 100 + edit);
        // Saved the way editors do: a new file renamed over the old one.
        let saved = dir.path().join(".app.c.new");
        std::fs::write(&saved, &text).expect("write the new app.c");
        let start = Instant::now();
        std::fs::rename(&saved, &source).expect("save app.c");
        let seen = until(&output, &format!("gen {edit} "));
        reload.push(ms(seen - start));
        let event = loop {
            let event: serde_json::Value = serde_json::from_str(&next_event()).expect("JSON event");
            if event["event"] != "no_change" {
                break event;
            }
        };
        assert_eq!(event["event"], "patched", "{event}");
        let t = &event["timing_us"];
        let stage = |k: &str| t[k].as_u64().unwrap_or(0) as f64 / 1000.0;
        relive_compile.push(stage("compile"));
        relive_rest.push(stage("diff") + stage("link") + stage("apply"));
        std::thread::sleep(Duration::from_millis(30));
        // The baseline: the same compile, by hand.
        let start = Instant::now();
        gcc(dir.path(), &["-c", "app.c", "-o", "baseline.o"]);
        compile_only.push(ms(start.elapsed()));
    }
    let _ = relive.kill();
    let _ = relive.wait();
    let _ = Command::new("pkill").arg("-f").arg(dir.path().join("app")).status();

    // Restart instead: kill, rebuild, relaunch, first line.
    let mut restart = vec![];
    let mut app = Command::new("./app")
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .spawn()
        .expect("app");
    for _ in 0..5 {
        let start = Instant::now();
        let _ = app.kill();
        let _ = app.wait();
        gcc(dir.path(), &["-o", "app", "app.c"]);
        app = Command::new("./app")
            .current_dir(dir.path())
            .stdout(Stdio::piped())
            .spawn()
            .expect("app");
        let rx = lines(&mut app);
        until(&rx, "gen ");
        restart.push(ms(start.elapsed()));
    }
    let _ = app.kill();
    let _ = app.wait();

    let (reload, compile_only) = (median(&mut reload), median(&mut compile_only));
    let (relive_compile, relive_rest, restart) = (
        median(&mut relive_compile),
        median(&mut relive_rest),
        median(&mut restart),
    );
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "edit-to-output, 300-line C file, gcc -O0 -g, {EDITS} edits (medians, ms):\n  \
         relive run (write -> first new output): {reload:8.2}\n  \
         plain cc -c of the same file:           {compile_only:8.2}\n  \
         overhead: {:.2} ms, ratio {:.3}\n  \
         relive's own stages: compile {relive_compile:.2}, diff+link+apply {relive_rest:.2}\n  \
         restart instead (kill, gcc -o, start, first output): {restart:.2} (ratio {:.2} vs cc -c)",
        reload - compile_only,
        reload / compile_only,
        restart / compile_only
    );
}
