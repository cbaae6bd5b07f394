//! Helpers shared by the CLI tests: run the built `relive` binary.
#![allow(dead_code)]

use std::process::{Command, Output};

use serde_json::Value;

pub fn relive(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_relive")).args(args).output().unwrap()
}

/// `relive ARGS` with its journals in `state` (RELIVE_STATE_DIR).
pub fn relive_in(state: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_relive"))
        .args(args)
        .env("RELIVE_STATE_DIR", state)
        .output()
        .unwrap()
}

/// Runs `relive ARGS`, requires success, and returns stdout.
pub fn text(args: &[&str]) -> String {
    String::from_utf8(success(args)).unwrap()
}

/// Runs `relive ARGS`, requires success, and parses stdout as JSON.
pub fn json(args: &[&str]) -> Value {
    serde_json::from_slice(&success(args)).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e})"))
}

fn success(args: &[&str]) -> Vec<u8> {
    let out = relive(args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// The bytes of symbol `name` in the executable `exe`, found through the
/// image layer.
pub fn file_bytes(exe: &std::path::Path, name: &str, len: usize) -> Vec<u8> {
    let image = relive_image::Image::open(exe).unwrap();
    let symbol = image.symbols(None).unwrap().by_name(name)[0].clone();
    let offset = image.view(None).unwrap().va_to_offset(symbol.addr).unwrap() as usize;
    image.data()[offset..offset + len].to_vec()
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `text` saved as `source` in `dir` (as an edit saves it) and compiled by
/// `compiler` with `flags` into `object` there; the object's path.
pub fn compile(
    dir: &std::path::Path,
    compiler: &str,
    source: &str,
    object: &str,
    text: &str,
    flags: &[&str],
) -> String {
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

/// `object` linked by `compiler` into `dir/name`, started with its output
/// read by the test.
pub fn start(dir: &std::path::Path, compiler: &str, object: &str, name: &str) -> relive_testkit::Target {
    let exe = dir.join(name);
    let linked = Command::new(compiler).arg(object).arg("-o").arg(&exe).output().unwrap();
    assert!(linked.status.success(), "{}", String::from_utf8_lossy(&linked.stderr));
    relive_testkit::Target::spawn(Command::new(&exe), exe.clone(), tempfile::tempdir().unwrap())
}

/// `relive patch PID NEW --base BASE --json` with the journals in
/// `state`, required to succeed: its report.
pub fn patch_json(state: &std::path::Path, pid: u32, new: &str, base: &str) -> Value {
    let out = relive_in(state, &["patch", &pid.to_string(), new, "--base", base, "--json"]);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A `static` function whose signature changes, called by `main`'s loop
/// (`calc(x)` becomes `calc(x, y)`). Every caller is in the file, so the
/// change is patched with them; but `main`'s running call keeps its old
/// code, which calls `calc` with one argument. Found by a session's
/// check: "patched calc" while the program printed `x * 7 + garbage`
/// (a fresh build prints `x * 7 + 300`). Refused now, like the same
/// change of a global function.
pub const STATIC_CALLEE: &str = r#"#include <stdio.h>
#include <unistd.h>
static volatile int seed = 3;
__attribute__((noinline)) static int calc(int x) { return x * 7 + 1; }
int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (int i = 0;; i++) { printf("r %d\n", calc(seed + i % 2)); usleep(3000); }
}
"#;

/// [`STATIC_CALLEE`] with `calc`'s second parameter.
pub fn static_callee_with_two_parameters(source: &str) -> String {
    calc_with_two_parameters(source, "calc(seed + i % 2)")
}

/// `source` with its `static int calc(int x)` given a second parameter,
/// which it adds, and its call `call` passing `seed * 100` for it.
pub fn calc_with_two_parameters(source: &str, call: &str) -> String {
    let passed = format!("{}, seed * 100)", call.strip_suffix(')').unwrap_or(call));
    source
        .replace(
            "static int calc(int x) { return x * 7 + 1; }",
            "static int calc(int x, int y) { return x * 7 + y; }",
        )
        .replace(call, &passed)
}

/// A `main` that starts `worker` on a thread of its own and waits for
/// ever (the worker's loop is the program's work).
pub const WORKER_MAIN: &str = "int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    pthread_t t;
    pthread_create(&t, NULL, worker, NULL);
    for (;;) pause();
}
";

/// A program whose `run` never returns, calling `len(seed)` (21) in its
/// loop: a caller whose running call keeps its old code, for signature
/// changes of `len`.
pub const RUNNING_CALLER: &str = r#"#include <stdio.h>
#include <unistd.h>
volatile int seed = 3;
__attribute__((noinline)) int len(int x) { return x * 7; }
__attribute__((noinline)) void run(void) {
    for (;;) { printf("r %d\n", len(seed)); usleep(3000); }
}
int main(void) { setvbuf(stdout, NULL, _IOLBF, 0); run(); }
"#;

/// A program whose objects of a class (`Plan`) are made by `calloc`: no
/// constructor of the file needs its vtable, so compilers describe the
/// class only by name once it has virtual functions. Prints `v 21`.
pub const PLAN: &str = r#"#include <cstdio>
#include <cstdlib>
#include <unistd.h>
struct Plan { unsigned masks[4]; bool flag; };
static void *make() { Plan *p = (Plan *) calloc(1, sizeof(Plan)); for (int i = 0; i < 4; i++) p->masks[i] = 10 * (i + 1); p->flag = true; return p; }
__attribute__((noinline)) unsigned use(const void *data) { const Plan *p = (const Plan *) data; return p->masks[1] + (p->flag ? 1 : 0); }
static void *volatile g;
int main() {
  setvbuf(stdout, nullptr, _IOLBF, 0);
  g = make();
  for (;;) { std::printf("v %u\n", use(g)); usleep(3000); }
}
"#;

/// [`PLAN`] with a virtual function added to `Plan`, which `use` calls:
/// every field of the program's plans moves past a new vtable pointer.
pub fn plan_with_a_virtual_function() -> String {
    PLAN.replace(
        "bool flag; };",
        "bool flag; virtual unsigned extra() const { return 0; } };",
    )
    .replace("(p->flag ? 1 : 0);", "(p->flag ? 1 : 0) + p->Plan::extra();")
}
