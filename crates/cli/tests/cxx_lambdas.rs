//! C++ lambdas renumbered by an edit. A lambda written above another
//! makes the old one `#2`; by name, the edit changed `#1`. A
//! `std::function` kept from before the patch then ran the new lambda's
//! body (`kept 200` where a fresh build of the edited source prints
//! `kept 101`). Each closure is now matched with the old one whose code
//! is the same, across later patches too. Checked against the oracle: the
//! edited source built fresh prints what the patched process prints.
//!
//! Clang numbers a lambda without linkage in the whole file by when its
//! type is first needed (`work(int)::$_0`): the new lambda, stored in a
//! `std::function` first, takes `$_0` from the old one.

mod common;

use std::process::Command;

use common::{compile, patch_json, start};

const APP: &str = r#"#include <cstdio>
#include <functional>
#include <unistd.h>
std::function<int(int)> kept;
__attribute__((noinline)) int work(int i) {
    auto f = [](int x) { return x + 1; };
    if (!kept) kept = f;
    return f(i);
}
int main() {
    setvbuf(stdout, nullptr, _IOLBF, 0);
    for (;;) { int w = work(10); std::printf("work %d kept %d\n", w, kept(100)); usleep(3000); }
}
"#;

/// The edits, in order: a lambda added above `f` (renumbering it), that
/// lambda edited (a second patch, over the first), and removed again.
fn edits() -> [String; 3] {
    let added = APP
        .replace(
            "    auto f = [](int x) { return x + 1; };",
            "    auto g = [](int x) { return x * 2; };\n    static std::function<int(int)> other;\n    other = g;\n    auto f = [](int x) { return x + 1; };",
        )
        .replace("return f(i);", "return g(f(i));");
    let edited = added.replace("x * 2", "x * 3");
    [added, edited, APP.to_string()]
}

/// What the source prints first when built fresh with `compiler` and
/// `flags` and run: the oracle (its `kept` is its own first lambda's).
fn oracle(dir: &std::path::Path, compiler: &str, text: &str, flags: &[&str]) -> String {
    let scratch = dir.join("oracle");
    std::fs::create_dir_all(&scratch).unwrap();
    let object = compile(&scratch, compiler, "app.cpp", "app.o", text, flags);
    let target = start(&scratch, compiler, &object, "fresh");
    target.next_line()
}

#[test]
fn a_kept_lambda_runs_its_own_code_after_another_is_added_above_it() {
    for compiler in ["g++", "clang++"] {
        for opt in ["-O0", "-O2"] {
            let flags = [opt, "-g"];
            let case = format!("{compiler} {opt}");
            let dir = tempfile::tempdir().unwrap();
            let state = dir.path().join("state");
            let mut base = compile(dir.path(), compiler, "app.cpp", "app.o", APP, &flags);
            let target = start(dir.path(), compiler, &base, "app");
            target.wait_for("work 11 kept 101");
            for (k, text) in edits().iter().enumerate() {
                let want = oracle(dir.path(), compiler, text, &flags);
                let new = compile(dir.path(), compiler, "app.cpp", &format!("v{k}.o"), text, &flags);
                patch_json(&state, target.pid(), &new, &base);
                target.wait_for(&want);
                // Not for a moment only.
                target.wait_for(&want);
                base = new;
            }
            let _ = Command::new("kill").arg(target.pid().to_string()).status();
            eprintln!("{case}: ok");
        }
    }
}

/// Two lambdas written in the other order keep their names and trade
/// bodies: by name, each kept `std::function` would run the other's code.
#[test]
fn kept_lambdas_swapped_in_the_source_run_their_own_code() {
    const TWO: &str = r#"#include <cstdio>
#include <functional>
#include <unistd.h>
std::function<int(int)> first, second;
__attribute__((noinline)) int work(int i) {
    auto f = [](int x) { return x + 1; };
    auto g = [](int x) { return x * 3; };
    if (!first) { first = f; second = g; }
    return f(i) + g(i);
}
int main() {
    setvbuf(stdout, nullptr, _IOLBF, 0);
    for (;;) { int w = work(10); std::printf("work %d first %d second %d\n", w, first(100), second(100)); usleep(3000); }
}
"#;
    let swapped = TWO
        .replace(
            "    auto f = [](int x) { return x + 1; };\n    auto g = [](int x) { return x * 3; };",
            "    auto g = [](int x) { return x * 3; };\n    auto f = [](int x) { return x + 1; };",
        )
        .replace("return f(i) + g(i);", "return f(i) + g(i) + 1000;");
    for compiler in ["g++", "clang++"] {
        for opt in ["-O0", "-O2"] {
            let flags = [opt, "-g"];
            let dir = tempfile::tempdir().unwrap();
            let state = dir.path().join("state");
            let base = compile(dir.path(), compiler, "app.cpp", "app.o", TWO, &flags);
            let target = start(dir.path(), compiler, &base, "app");
            target.wait_for("work 41 first 101 second 300");
            let want = oracle(dir.path(), compiler, &swapped, &flags);
            assert_eq!(want, "work 1041 first 101 second 300");
            let new = compile(dir.path(), compiler, "app.cpp", "new.o", &swapped, &flags);
            patch_json(&state, target.pid(), &new, &base);
            target.wait_for(&want);
            target.wait_for(&want);
        }
    }
}
