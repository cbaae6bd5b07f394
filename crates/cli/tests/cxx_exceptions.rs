//! C++ code that throws: relive does not yet register unwind information
//! for new code, and an exception thrown in a patched function used to end
//! the program (`terminate called after throwing ...`) after relive said
//! "patched". Such a function is now refused, naming it, and so is one an
//! exception only passes through (it calls a function of the file that
//! throws); the program runs on, catching its exceptions as built. Code no
//! exception can be in is patched.

use std::process::Command;

use relive_testkit::Target;

const APP: &str = r#"
#include <cstdio>
#include <stdexcept>
#include <unistd.h>
__attribute__((noinline)) int risky(int i) {
    if (i % 2) throw std::runtime_error("odd one");
    return i;
}
volatile int zero;
__attribute__((noinline)) int twice(int i) { return 2 * i + zero; }
// An exception thrown in risky passes through this frame.
__attribute__((noinline)) int pass(int i) { return risky(i) + zero; }
int main() {
    setvbuf(stdout, nullptr, _IOLBF, 0);
    for (int i = 0;; i++) {
        try { printf("ok %d\n", twice(pass(i))); }
        catch (const std::exception &e) { printf("caught %s\n", e.what()); }
        usleep(2000);
    }
}
"#;

/// `app.cpp` of `dir` with `text`, compiled with `flags` into `object`
/// (the program's source file, as an edit saves it).
fn object(dir: &std::path::Path, object: &str, text: &str, flags: &[&str]) -> String {
    let source = dir.join("app.cpp");
    std::fs::write(&source, text).unwrap();
    let out = dir.join(object);
    let built = Command::new("g++")
        .args(flags)
        .arg("-c")
        .arg(&source)
        .arg("-o")
        .arg(&out)
        .output()
        .expect("g++ is needed (.ci/run installs it)");
    assert!(built.status.success(), "{}", String::from_utf8_lossy(&built.stderr));
    out.display().to_string()
}

#[test]
fn a_function_that_throws_is_refused_and_the_program_lives_on() {
    for flags in [&["-O0", "-g"][..], &["-O2", "-g"][..]] {
        let dir = tempfile::tempdir().unwrap();
        // The program and its objects from one file name, as a build makes them.
        let base = object(dir.path(), "app.o", APP, flags);
        let exe = dir.path().join("app");
        let linked = Command::new("g++").arg(&base).arg("-o").arg(&exe).output().unwrap();
        assert!(linked.status.success(), "{}", String::from_utf8_lossy(&linked.stderr));
        let target = Target::spawn(Command::new(&exe), exe.clone(), tempfile::tempdir().unwrap());
        target.wait_for("caught odd one");
        let state = dir.path().join("state");
        let relive = |new: &str| {
            Command::new(env!("CARGO_BIN_EXE_relive"))
                .args(["patch", &target.pid_arg(), new, "--base", &base])
                .env("RELIVE_STATE_DIR", &state)
                .output()
                .unwrap()
        };
        // Refused naming `function`, the program catching on as built.
        let refused = |object_file: &str, function: &str| {
            let out = relive(object_file);
            let message = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{flags:?}: {message}");
            assert!(
                message.contains(function)
                    && message.contains("C++ exceptions may be thrown, caught or passed through"),
                "{message}"
            );
            for _ in 0..3 {
                target.wait_for("caught odd one");
            }
        };
        let thrower = object(dir.path(), "thrower.o", &APP.replace("odd one", "odd two"), flags);
        refused(&thrower, "risky(int)");
        let passer = object(
            dir.path(),
            "passer.o",
            &APP.replace("risky(i) + zero;", "risky(i) + zero + 2;"),
            flags,
        );
        refused(&passer, "pass(int)");

        let doubler = object(
            dir.path(),
            "doubler.o",
            &APP.replace("return 2 * i + zero;", "return 2 * i + zero + 1;"),
            flags,
        );
        let out = relive(&doubler);
        assert!(
            out.status.success(),
            "{flags:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // Odd results only from the new code.
        while target.wait_for_prefix("ok ").parse::<i64>().unwrap() % 2 == 0 {}
        target.wait_for("caught odd one");
    }
}
