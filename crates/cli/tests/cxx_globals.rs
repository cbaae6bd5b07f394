//! New C++ globals that a constructor gives their value. The program ran
//! its static initializers when it started; relive does not run them
//! again, and a patch's copy of such a global is zeros. Before, a patch
//! whose code used one said "patched" while the program printed
//! `(null)` for a new `static const std::string`. Such a patch is now
//! refused, naming the global and the ways out; a function-local static
//! (constructed at its first use) patches and works.

mod common;

use common::{compile, patch_json, relive_in, start};

const APP: &str = r#"#include <cstdio>
#include <string>
#include <unistd.h>
std::string name = "world";
__attribute__((noinline)) void greet(int i) { printf("hi %s %d\n", name.c_str(), i % 2); }
int main() {
    setvbuf(stdout, nullptr, _IOLBF, 0);
    for (int i = 0;; i++) { greet(i); usleep(3000); }
}
"#;

#[test]
fn a_new_global_with_a_constructor_is_refused_and_a_local_static_works() {
    for flags in [&["-O0", "-g"][..], &["-O2", "-g"][..]] {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let base = compile(dir.path(), "g++", "app.cpp", "app.o", APP, flags);
        let target = start(dir.path(), "g++", &base, "app");
        target.wait_for("hi world 1");

        // Used by the new code: refused, the program runs on as it was.
        let global = APP
            .replace(
                "std::string name = \"world\";",
                "std::string name = \"world\";\nstatic const std::string greeting = \"hello\";",
            )
            .replace("\"hi %s %d\\n\", name", "\"%s %s %d\\n\", greeting.c_str(), name");
        let new = compile(dir.path(), "g++", "app.cpp", "global.o", &global, flags);
        let out = relive_in(&state, &["patch", &target.pid_arg(), &new, "--base", &base]);
        let message = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{flags:?}: {message}");
        assert!(
            message.contains("greeting is new") && message.contains("function-local static"),
            "{flags:?}: {message}"
        );
        target.wait_for("hi world 0");

        // Only the initializer refers to it (the new code does not): the
        // edit of greet patches.
        let unused = APP
            .replace(
                "std::string name = \"world\";",
                "std::string name = \"world\";\nstd::string spare = \"unused\";",
            )
            .replace("\"hi %s %d\\n\"", "\"hey %s %d\\n\"");
        let new = compile(dir.path(), "g++", "app.cpp", "unused.o", &unused, flags);
        patch_json(&state, target.pid(), &new, &base);
        target.wait_for("hey world 1");

        // A function-local static is constructed at its first use.
        let local = unused.replace(
            "__attribute__((noinline)) void greet(int i) { printf(\"hey %s %d\\n\", name.c_str(), i % 2); }",
            "__attribute__((noinline)) void greet(int i) { static const std::string greeting = \"hello\"; printf(\"%s %s %d\\n\", greeting.c_str(), name.c_str(), i % 2); }",
        );
        assert_ne!(local, unused);
        let newer = compile(dir.path(), "g++", "app.cpp", "local.o", &local, flags);
        patch_json(&state, target.pid(), &newer, &new);
        target.wait_for("hello world 1");
        target.wait_for("hello world 0");
    }
}
