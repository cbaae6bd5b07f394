//! The patch engine's acceptance scenarios (../shared/docs/scenarios.md):
//! real C programs, compiled by gcc, running, patched with `relive patch`
//! and checked by what they print. Each core scenario runs at -O0 and -O2,
//! PIE and non-PIE.

use std::path::PathBuf;
use std::process::Command;

use relive_testkit::{compile, Target};
use serde_json::Value;
mod common;
use common::relive;

/// Code generation flags of the program and its patches.
const BUILDS: [&[&str]; 4] = [
    &["-O0", "-fpie", "-pie"],
    &["-O2", "-fpie", "-pie"],
    &["-O0", "-fno-pie", "-no-pie"],
    &["-O2", "-fno-pie", "-no-pie"],
];

/// A running program built from `app.c`, and its patches.
struct Run {
    target: Target,
    flags: Vec<String>,
    source: String,
    patches: usize,
    state: tempfile::TempDir,
}

impl Run {
    fn start(source: &str, flags: &[&str]) -> Run {
        Run::start_files(&[("app.c", source)], flags)
    }

    /// Builds a program from several files (the first is `app.c`).
    fn start_files(files: &[(&str, &str)], flags: &[&str]) -> Run {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        let exe = dir.path().join("app");
        let out = Command::new("gcc")
            .args(flags)
            .args(["-pthread", "-o"])
            .arg(&exe)
            .args(files.iter().map(|(n, _)| *n))
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let target = Target::spawn(Command::new(&exe), exe, dir);
        Run {
            target,
            flags: flags.iter().map(|s| s.to_string()).collect(),
            source: files[0].1.to_string(),
            patches: 0,
            state: tempfile::tempdir().unwrap(),
        }
    }

    fn dir(&self) -> PathBuf {
        self.target.dir.path().to_path_buf()
    }

    /// Compiles `file` with `source` as a patch object (same flags + -c).
    fn object(&mut self, file: &str, source: &str) -> PathBuf {
        std::fs::write(self.dir().join(file), source).unwrap();
        self.patches += 1;
        let obj = self.dir().join(format!("{file}.{}.o", self.patches));
        let out = Command::new("gcc")
            .args(&self.flags)
            .arg("-c")
            .arg(file)
            .arg("-o")
            .arg(&obj)
            .current_dir(self.dir())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        obj
    }

    fn relive(&self, args: &[&str]) -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_relive"))
            .args(args)
            .env("RELIVE_STATE_DIR", self.state.path())
            .output()
            .unwrap()
    }

    /// `relive patch --pid PID OBJ ARGS --json`, which must succeed.
    fn patch_object(&self, obj: &std::path::Path, extra: &[&str]) -> Value {
        let pid = self.target.pid_arg();
        let mut args = vec!["patch", "--pid", &pid, obj.to_str().unwrap(), "--json"];
        args.extend_from_slice(extra);
        let out = self.relive(&args);
        assert!(
            out.status.success(),
            "{args:?} ({:?}): {}",
            self.flags,
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Edits `app.c` to `source`, compiles it and patches every function.
    fn edit(&mut self, source: &str) -> Value {
        self.source = source.to_string();
        let obj = self.object("app.c", source);
        self.patch_object(&obj, &[])
    }

    /// Edits with a string replacement of the current source.
    fn replace(&mut self, from: &str, to: &str) -> Value {
        assert!(self.source.contains(from), "{from:?} not in the source");
        let new = self.source.replace(from, to);
        self.edit(&new)
    }

    fn expect(&self, line: &str) {
        eprintln!("{:?}: waiting for {line:?}", self.flags);
        self.target.wait_for(line);
    }

    fn peek(&self, addr: u64, len: usize) -> String {
        let out = self.relive(&[
            "peek",
            &self.target.pid_arg(),
            &addr.to_string(),
            &len.to_string(),
            "--json",
        ]);
        assert!(out.status.success());
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        v["bytes"].as_str().unwrap().to_string()
    }
}

fn applied<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["applied"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == name)
        .unwrap_or_else(|| panic!("{name} not applied: {report}"))
}

const TICKER: &str = r#"
#include <stdio.h>
#include <unistd.h>
int counter = 0;
__attribute__((noinline, noipa)) int value(void) { return 1; }
__attribute__((noinline, noipa)) int neighbour(void) { return 100; }
int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (;;) {
        counter++;
        printf("value %d neighbour %d\n", value(), neighbour());
        usleep(3000);
    }
}
"#;

/// S1: a same-size body change: the next call returns the new value.
#[test]
fn s01_same_size_body_change() {
    for flags in BUILDS {
        let mut run = Run::start(TICKER, flags);
        run.expect("value 1 neighbour 100");
        let r = run.replace("return 1;", "return 2;");
        assert_eq!(applied(&r, "value")["generation"], 1);
        assert_eq!(applied(&r, "value")["method"], "jump");
        run.expect("value 2 neighbour 100");
    }
}

/// S2: the body grows past its old size and past the next function's
/// start: the new body runs, the neighbour is untouched.
#[test]
fn s02_body_grows_past_the_neighbour() {
    for flags in BUILDS {
        let mut run = Run::start(TICKER, flags);
        run.expect("value 1 neighbour 100");
        run.replace(
            "int value(void) { return 1; }",
            "int value(void) { volatile int a[64]; for (int i = 0; i < 64; i++) a[i] = i; int s = 0; for (int i = 0; i < 64; i++) s += a[i]; return s; }",
        );
        run.expect("value 2016 neighbour 100");
    }
}

/// S4: a function pointer taken before the patch reaches the new code.
#[test]
fn s04_function_pointer_taken_before() {
    const SRC: &str = r#"
#include <stdio.h>
#include <unistd.h>
__attribute__((noinline, noipa)) int value(void) { return 1; }
int (*volatile saved)(void);
int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    saved = value;
    for (;;) { printf("via pointer %d\n", saved()); usleep(3000); }
}
"#;
    for flags in BUILDS {
        let mut run = Run::start(SRC, flags);
        run.expect("via pointer 1");
        run.replace("return 1;", "return 7;");
        run.expect("via pointer 7");
    }
}

/// S5: a global keeps its value and address across 10 successive patches.
#[test]
fn s05_global_survives_ten_patches() {
    const SRC: &str = r#"
#include <stdio.h>
#include <unistd.h>
long total = 0;
__attribute__((noinline, noipa)) void step(void) { total += 1; }
int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("addr %p\n", (void *)&total);
    for (;;) { step(); printf("total %ld\n", total); usleep(2000); }
}
"#;
    for flags in BUILDS {
        let mut run = Run::start(SRC, flags);
        let addr = relive_testkit::hex_addr(&run.target.wait_for_prefix("addr "));
        let mut last = 0i64;
        for generation in 1..=10 {
            let step = generation * 1000;
            let r = run.replace(
                &format!("total += {};", if generation == 1 { 1 } else { step - 1000 }),
                &format!("total += {step};"),
            );
            assert_eq!(applied(&r, "step")["generation"], generation);
            assert_eq!(
                applied(&r, "step")["method"],
                if generation == 1 { "jump" } else { "slot" }
            );
            let data: Vec<&Value> = r["data"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|d| d["name"] == "total")
                .collect();
            assert_eq!(data.len(), 1, "{r}");
            assert_eq!(
                (data[0]["addr"].as_u64(), data[0]["action"].as_str()),
                (Some(addr), Some("kept"))
            );
            // The next totals grow by `step` from where they were: state kept.
            let first: i64 = run.target.wait_for_prefix("total ").parse().unwrap();
            let mut prev = first;
            loop {
                let t: i64 = run.target.wait_for_prefix("total ").parse().unwrap();
                if t - prev == step {
                    assert!(t > last, "total went back: {t} after {last}");
                    last = t;
                    break;
                }
                prev = t;
            }
        }
    }
}

/// S8 and S9: a changed function calls a new function and uses a new
/// initialised global, which starts at its initial value and keeps its
/// state afterwards.
#[test]
fn s08_s09_new_function_and_new_global() {
    for flags in BUILDS {
        let mut run = Run::start(TICKER, flags);
        run.expect("value 1 neighbour 100");
        let r = run.replace(
            "__attribute__((noinline, noipa)) int value(void) { return 1; }",
            "int fresh = 40;\n__attribute__((noinline, noipa)) int helper(int x) { return x + 1; }\n__attribute__((noinline, noipa)) int value(void) { fresh += 2; return helper(fresh); }",
        );
        let added: Vec<&str> = r["added"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["name"].as_str().unwrap())
            .collect();
        assert!(added.contains(&"helper"), "{r}");
        assert!(r["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["name"] == "fresh" && d["action"] == "new"));
        // fresh: 42, 44, 46 ... (helper adds 1): values are odd and rising.
        let value = || -> i64 {
            run.target
                .wait_for_prefix("value ")
                .split(' ')
                .next()
                .unwrap()
                .parse()
                .unwrap()
        };
        // Lines printed before the patch may still be in the pipe.
        let first = std::iter::repeat_with(value).find(|&v| v != 1).unwrap();
        assert!(first >= 43 && first % 2 == 1, "{first}");
        assert_eq!(value(), first + 2);
    }
}

/// S10: a changed string literal is printed.
#[test]
fn s10_changed_string_literal() {
    const SRC: &str = r#"
#include <stdio.h>
#include <unistd.h>
__attribute__((noinline, noipa)) const char *greeting(void) { return "hello"; }
int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (;;) { printf("%s\n", greeting()); usleep(3000); }
}
"#;
    for flags in BUILDS {
        let mut run = Run::start(SRC, flags);
        run.expect("hello");
        run.replace("\"hello\"", "\"bonjour, relive\"");
        run.expect("bonjour, relive");
    }
}

/// S11: patched code calls libc (`printf`, `strlen`) and reads libc data
/// (`stderr`).
#[test]
fn s11_patched_code_calls_libc() {
    for flags in BUILDS {
        let mut run = Run::start(TICKER, flags);
        run.expect("value 1 neighbour 100");
        run.replace(
            "__attribute__((noinline, noipa)) int value(void) { return 1; }",
            "#include <string.h>\n__attribute__((noinline, noipa)) int value(void) { fputs(\"\", stderr); printf(\"from libc %zu\\n\", strlen(\"relive\")); return (int)strlen(\"four\"); }",
        );
        run.expect("from libc 6");
        run.expect("value 4 neighbour 100");
    }
}

/// S19: patch, revert (the original bytes exactly), patch again.
#[test]
fn s19_patch_revert_repatch() {
    for flags in BUILDS {
        let mut run = Run::start(TICKER, flags);
        run.expect("value 1 neighbour 100");
        let r = run.replace("return 1;", "return 2;");
        let orig = applied(&r, "value")["old_addr"].as_u64().unwrap();
        run.expect("value 2 neighbour 100");
        let pid = run.target.pid_arg();
        let before = {
            // The program file's bytes at the entry are the originals.
            let image = relive_image::Image::open(&run.target.exe).unwrap();
            let sym = image.symbols(None).unwrap().by_name("value")[0].clone();
            let off = image.view(None).unwrap().va_to_offset(sym.addr).unwrap() as usize;
            common::hex(&image.data()[off..off + 16])
        };
        let out = run.relive(&["revert", "--pid", &pid, "--all", "--json"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(
            v["reverted"].as_array().unwrap().iter().any(|r| r["name"] == "value"),
            "{v}"
        );
        assert_eq!(v["freed"].as_array().unwrap().len(), 1, "{v}");
        assert_eq!(run.peek(orig, 16), before, "original bytes restored exactly");
        run.expect("value 1 neighbour 100");
        let status = run.relive(&["status", "--pid", &pid, "--json"]);
        let s: Value = serde_json::from_slice(&status.stdout).unwrap();
        assert_eq!(s["patches"].as_array().unwrap().len(), 0);
        let r = run.replace("return 2;", "return 3;");
        assert_eq!(applied(&r, "value")["generation"], 1);
        run.expect("value 3 neighbour 100");
        let status = run.relive(&["status", "--pid", &pid, "--json"]);
        let s: Value = serde_json::from_slice(&status.stdout).unwrap();
        assert_eq!(s["patches"][0]["name"], "value");
        assert_eq!(s["patches"][0]["orig_addr"].as_u64(), Some(orig));
    }
}

/// S23: a global whose size changes is refused with its name; nothing is
/// patched and the program carries on.
#[test]
fn s23_layout_change_is_refused() {
    const SRC: &str = r#"
#include <stdio.h>
#include <unistd.h>
int table[4] = {1, 2, 3, 4};
__attribute__((noinline, noipa)) int sum(void) { int s = 0; for (int i = 0; i < 4; i++) s += table[i]; return s; }
int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (;;) { printf("sum %d\n", sum()); usleep(3000); }
}
"#;
    for flags in BUILDS {
        let mut run = Run::start(SRC, flags);
        run.expect("sum 10");
        let base = run.object("app.c", SRC);
        let grown = SRC
            .replace(
                "int table[4] = {1, 2, 3, 4};",
                "int table[8] = {1, 2, 3, 4, 5, 6, 7, 8};",
            )
            .replace("i < 4", "i < 8");
        let new = run.object("app.c", &grown);
        let pid = run.target.pid_arg();
        let out = run.relive(&[
            "patch",
            "--pid",
            &pid,
            new.to_str().unwrap(),
            "--base",
            base.to_str().unwrap(),
        ]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains("table") && stderr.contains("restart"), "{stderr}");
        run.expect("sum 10");
        let status = run.relive(&["status", "--pid", &pid, "--json"]);
        let s: Value = serde_json::from_slice(&status.stdout).unwrap();
        assert!(s["patches"].as_array().unwrap().is_empty());
    }
}

#[allow(dead_code)]
fn unused() {
    let _ = relive(&[]);
    let _ = compile;
}
