//! Edit-to-output time of `relive run`, against plain `cc -c` and against
//! restarting, measured in the same run (`cargo bench -p relive --bench
//! reload`; prints its figures). Two programs:
//!
//! - a 300-line C file (`gcc -O0 -g`);
//! - a 2,000-line C++ file (`g++ -O0 -g`: classes with virtual methods,
//!   templates, lambdas kept in `std::function`, `std::string`s,
//!   exceptions), for issue 23's goal: relive's own stages (diff, link,
//!   apply) at most 2% of the compile.
//!
//! Each prints `gen K` every 200 µs, where `K` comes from its function
//! `generation()`. Each of 20 scripted edits changes `generation()` to
//! return the edit's number and changes one of the other functions, then
//! saves the file. Measured per edit:
//! - relive: from the moment the file is saved (renamed over) to the moment the
//!   program's first `gen K` line is read (so it includes inotify, the
//!   compile, diff, link, apply and up to one 200 µs loop of the program);
//! - `cc -c`: the same file compiled with the same flags (what the
//!   program's DWARF records), nothing else; and `cc -pipe -c`, as relive
//!   compiles it (its assembler works on the second core), so the ratio
//!   to the user's own compile is not read as relive's stages being free;
//! - restart: kill the program, rebuild it (`-o`), start it and read its
//!   first line (5 times);
//! - dlopen-style reload, what a reloader built on shared libraries does
//!   for the same save at the least: the file compiled and linked as a
//!   shared library (`-pipe -shared -fPIC`), opened with
//!   `dlopen(RTLD_NOW)` and its `generation()` looked up, in this process.
//!   It leaves out what relive's figure includes: noticing the save,
//!   reaching the running program and its state (a library's globals
//!   start anew).
//!
//! relive runs as a user runs it, with its default debounce: a complete
//! save (a rename, as here) compiles at once, and files saved while it
//! compiles join it; after a write that may be followed by more, 10 ms of
//! quiet first.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

use relive_smf::memory::SharedLibrary;

const EDITS: usize = 20;
const FUNCTIONS: usize = 25;
const FLAGS: [&str; 2] = ["-O0", "-g"];
/// Classes (each with a template, a lambda and a string) in the C++ file.
const CLASSES: usize = 90;

/// One of the two programs measured.
struct Language {
    /// For the report.
    what: &'static str,
    compiler: &'static str,
    source: &'static str,
    /// Its text with `generation()` returning `generation` and part
    /// `edited` using `constant`.
    program: fn(usize, usize, usize) -> String,
    lines: std::ops::RangeInclusive<usize>,
    parts: usize,
    /// `generation()`'s symbol, which the dlopen-style reload looks up.
    generation_symbol: &'static str,
}

/// The C program, with `generation()` returning `generation` and function
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

/// The C++ program: class `C{edited}`'s `eval` uses `constant`.
fn cxx_program(generation: usize, edited: usize, constant: usize) -> String {
    let mut s = format!(
        "#include <cstdio>\n#include <functional>\n#include <memory>\n#include <stdexcept>\n\
         #include <string>\n#include <vector>\n#include <unistd.h>\n\n\
         long total = 0;\n\n__attribute__((noinline)) int generation() {{\n    return {generation};\n}}\n\n\
         struct Base {{\n    virtual ~Base() {{}}\n    virtual long eval(long x) const = 0;\n}};\n\n"
    );
    for c in 0..CLASSES {
        let k = if c == edited { constant } else { c + 1 };
        s.push_str(&format!(
            "template <typename T> T mix{c}(T x) {{\n    T y = x;\n    for (int i = 0; i < 2; i++)\n        \
             y = (y << 1) ^ (x + {c});\n    return y;\n}}\n\n\
             struct C{c} : Base {{\n    std::string name = \"c{c}\";\n    std::function<long(long)> scale;\n    \
             C{c}() : scale([](long v) {{ return v * {k} + {c}; }}) {{}}\n    long eval(long x) const override;\n}};\n\n\
             long C{c}::eval(long x) const {{\n    if (x < 0)\n        throw std::runtime_error(name);\n    \
             long y = scale(x) + mix{c}<long>(x % {k1});\n    y += (long)name.size();\n    return y & 0xffff;\n}}\n\n",
            k1 = k + 2
        ));
    }
    s.push_str("std::vector<std::unique_ptr<Base>> all() {\n    std::vector<std::unique_ptr<Base>> v;\n");
    for c in 0..CLASSES {
        s.push_str(&format!("    v.emplace_back(new C{c});\n"));
    }
    s.push_str(
        "    return v;\n}\n\nint main() {\n    setvbuf(stdout, nullptr, _IOLBF, 0);\n    auto objects = all();\n    \
         for (;;) {\n        for (auto &o : objects)\n            total = o->eval(total);\n        \
         std::printf(\"gen %d total %ld\\n\", generation(), total);\n        usleep(200);\n    }\n}\n",
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

fn build(compiler: &str, dir: &Path, args: &[&str]) {
    let status = Command::new(compiler)
        .args(FLAGS)
        .args(args)
        .current_dir(dir)
        .status()
        .expect(compiler);
    assert!(status.success(), "{compiler} {args:?}");
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
    let languages = [
        Language {
            what: "300-line C file, gcc -O0 -g",
            compiler: "gcc",
            source: "app.c",
            program,
            lines: 290..=340,
            parts: FUNCTIONS,
            generation_symbol: "generation",
        },
        Language {
            what: "2,000-line C++ file, g++ -O0 -g",
            compiler: "g++",
            source: "app.cpp",
            program: cxx_program,
            lines: 1900..=2200,
            parts: CLASSES,
            generation_symbol: "_Z10generationv",
        },
    ];
    for language in &languages {
        measure(language);
    }
}

/// Runs the edits of `language`'s program under `relive run`, then the
/// baselines, and prints the figures.
fn measure(language: &Language) {
    let Language {
        what,
        compiler,
        source: name,
        program,
        ref lines,
        parts,
        generation_symbol,
    } = *language;
    let dir = tempfile::tempdir().expect("temp dir");
    let source = dir.path().join(name);
    std::fs::write(&source, program(0, parts, 0)).expect("write the source");
    let length = program(0, 0, 0).lines().count();
    assert!(lines.contains(&length), "{length} lines");
    build(compiler, dir.path(), &["-o", "app", name]);

    let mut relive = Command::new(env!("CARGO_BIN_EXE_relive"))
        .args(["run", "--json", "--", "./app"])
        .current_dir(dir.path())
        .env("RELIVE_STATE_DIR", dir.path().join("state"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("relive run");
    let output = self::lines(&mut relive);
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
    let (mut compile_piped, mut dlopen_reload) = (vec![], vec![]);
    for edit in 1..=EDITS {
        let text = program(edit, edit % parts, 100 + edit);
        // Saved the way editors do: a new file renamed over the old one.
        let saved = dir.path().join(format!(".{name}.new"));
        std::fs::write(&saved, &text).expect("write the new source");
        let start = Instant::now();
        std::fs::rename(&saved, &source).expect("save the source");
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
        // The baseline: the same compile, by hand; and with `-pipe`,
        // which relive's compiles add (the assembler on a second core).
        let start = Instant::now();
        build(compiler, dir.path(), &["-c", name, "-o", "baseline.o"]);
        compile_only.push(ms(start.elapsed()));
        let start = Instant::now();
        build(compiler, dir.path(), &["-pipe", "-c", name, "-o", "baseline.o"]);
        compile_piped.push(ms(start.elapsed()));
        // A library of its own name each time: dlopen gives back the
        // handle it has for a file it knows.
        let library = format!("lib{edit}.so");
        let start = Instant::now();
        build(
            compiler,
            dir.path(),
            &["-pipe", "-shared", "-fPIC", name, "-o", &library],
        );
        let opened = SharedLibrary::open(&dir.path().join(&library)).expect("dlopen the library");
        let found = opened.symbol(generation_symbol);
        dlopen_reload.push(ms(start.elapsed()));
        assert!(found.is_some(), "{library} has no {generation_symbol}");
        drop(opened);
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
        build(compiler, dir.path(), &["-o", "app", name]);
        app = Command::new("./app")
            .current_dir(dir.path())
            .stdout(Stdio::piped())
            .spawn()
            .expect("app");
        let rx = self::lines(&mut app);
        until(&rx, "gen ");
        restart.push(ms(start.elapsed()));
    }
    let _ = app.kill();
    let _ = app.wait();

    let (reload, compile_only, compile_piped, dlopen_reload) = (
        median(&mut reload),
        median(&mut compile_only),
        median(&mut compile_piped),
        median(&mut dlopen_reload),
    );
    let (relive_compile, relive_rest, restart) = (
        median(&mut relive_compile),
        median(&mut relive_rest),
        median(&mut restart),
    );
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "edit-to-output, {what}, {EDITS} edits (medians, ms):\n  \
         relive run (write -> first new output): {reload:8.2}\n  \
         plain cc -c of the same file:           {compile_only:8.2}\n  \
         overhead: {:.2} ms, ratio {:.3}\n  \
         cc -pipe -c (as relive compiles):       {compile_piped:8.2}   ratio to it {:.3}\n  \
         relive's own stages: compile {relive_compile:.2}, diff+link+apply {relive_rest:.2} \
         ({:.2}% of the compile)\n  \
         restart instead (kill, gcc -o, start, first output): {restart:.2} (ratio {:.2} vs cc -c)\n  \
         dlopen-style reload (cc -pipe -shared -fPIC, dlopen, dlsym): {dlopen_reload:.2} \
         (relive run / it: {:.3})",
        reload - compile_only,
        reload / compile_only,
        reload / compile_piped,
        100.0 * relive_rest / relive_compile,
        restart / compile_only,
        reload / dlopen_reload
    );
}
