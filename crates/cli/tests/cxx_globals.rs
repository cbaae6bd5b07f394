//! New C++ globals that a constructor gives their value. The program ran
//! its static initializers when it started, and a patch's copy of such a
//! global is zeros: a patch whose code used one said "patched" while the
//! program printed `(null)` for a new `static const std::string`. Now the
//! patch's initializer runs in the process before the redirect, its code
//! constructing stand-ins instead of the program's own globals (whose
//! state is kept), and the pool stays for good (the new global's
//! destructor runs from it at exit).

mod common;

use common::{compile, patch_json, relive_in, start};

const APP: &str = r#"#include <cstdio>
#include <fcntl.h>
#include <string>
#include <unistd.h>
std::string name = "world";
__attribute__((noinline)) void greet(int i) { printf("hi %s %d\n", name.c_str(), i % 2); }
int main() {
    setvbuf(stdout, nullptr, _IOLBF, 0);
    fcntl(0, F_SETFL, O_NONBLOCK);
    for (int i = 0;; i++) {
        greet(i);
        char c;
        if (read(0, &c, 1) == 0) { puts("bye"); return 0; }
        if (i == 3) name += "!";
        usleep(3000);
    }
}
"#;

/// The edit: a new global with a constructor, used by the new code.
fn with_greeting() -> String {
    APP.replace(
        "std::string name = \"world\";",
        "std::string name = \"world\";\nstatic const std::string greeting = \"hello\";",
    )
    .replace("\"hi %s %d\\n\", name", "\"%s %s %d\\n\", greeting.c_str(), name")
}

#[test]
fn a_new_global_with_a_constructor_is_constructed_before_new_code_uses_it() {
    for flags in [&["-O0", "-g"][..], &["-O2", "-g"][..]] {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let base = compile(dir.path(), "g++", "app.cpp", "app.o", APP, flags);
        let mut target = start(dir.path(), "g++", &base, "app");
        target.wait_for("hi world! 1");
        let new = compile(dir.path(), "g++", "app.cpp", "new.o", &with_greeting(), flags);

        // Without its initializer the new global would be used
        // unconstructed: refused.
        let out = relive_in(
            &state,
            &[
                "patch",
                &target.pid_arg(),
                &new,
                "--base",
                &base,
                "--only",
                "greet(int)",
            ],
        );
        let message = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{flags:?}: {message}");
        assert!(
            message.contains("greeting is new") && message.contains("function-local static"),
            "{message}"
        );

        // Constructed, and the program's own `name` keeps its state (the
        // "!" it added after starting).
        patch_json(&state, target.pid(), &new, &base);
        target.wait_for("hello world! 1");
        target.wait_for("hello world! 0");

        // A revert keeps the pool, saying why.
        let out = relive_in(&state, &["revert", &target.pid_arg(), "--all", "--json"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let reverted: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(
            reverted["kept"][0]["why"]
                .as_str()
                .is_some_and(|w| w.contains("greeting was constructed")),
            "{reverted}"
        );
        target.wait_for("hi world! 1");
        // Patched again; then the program ends normally, running the
        // destructors of both constructed copies from their pools.
        patch_json(&state, target.pid(), &new, &base);
        target.wait_for("hello world! 0");
        target.close_stdin();
        assert_eq!(target.rest().last().map(String::as_str), Some("bye"));
        assert!(target.wait().success(), "{flags:?}");
    }
}

/// A function-local static is constructed at its first use: it patches
/// with nothing to run.
#[test]
fn a_new_function_local_static_is_constructed_at_its_first_use() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let flags = ["-O2", "-g"];
    let base = compile(dir.path(), "g++", "app.cpp", "app.o", APP, &flags);
    let target = start(dir.path(), "g++", &base, "app");
    target.wait_for("hi world! 1");
    let local = APP.replace(
        "{ printf(\"hi %s %d\\n\", name.c_str(), i % 2); }",
        "{ static const std::string greeting = \"hello\"; printf(\"%s %s %d\\n\", greeting.c_str(), name.c_str(), i % 2); }",
    );
    assert_ne!(local, APP);
    let new = compile(dir.path(), "g++", "app.cpp", "local.o", &local, &flags);
    let report = patch_json(&state, target.pid(), &new, &base);
    assert_eq!(report["region"]["pinned"], serde_json::Value::Null, "{report}");
    target.wait_for("hello world! 1");
}

/// A global's initial value edited: its initializer ran when the program
/// started and never runs again, so the program keeps the value it has.
/// The changed initializer was reported "patched" while the program
/// printed the old value: it is now unreachable, saying why.
#[test]
fn an_edited_initial_value_is_not_reported_as_patched() {
    for flags in [&["-O0", "-g"][..], &["-O2", "-g"][..]] {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let base = compile(dir.path(), "g++", "app.cpp", "app.o", APP, flags);
        let target = start(dir.path(), "g++", &base, "app");
        target.wait_for("hi world! 1");
        let edited = APP.replace("std::string name = \"world\";", "std::string name = \"earth\";");
        let new = compile(dir.path(), "g++", "app.cpp", "new.o", &edited, flags);
        let report = patch_json(&state, target.pid(), &new, &base);
        let applied = report["applied"].as_array().expect("applied");
        assert!(!applied.is_empty(), "{flags:?}: {report}");
        for a in applied {
            assert_eq!(a["reach"]["reachable"], false, "{flags:?}: {a}");
            let note = a["reach"]["note"].as_str().unwrap_or_default();
            assert!(note.contains("runs only when the program starts"), "{flags:?}: {a}");
            // The global it gives its value is named (a HarfBuzz trial).
            assert!(
                note.contains(": name") && note.contains("keeps the value it has"),
                "{flags:?}: {a}"
            );
        }
        // A breakpoint in code that never runs again is never hit: no
        // note on what one inside the entry's jump would do.
        let warnings = report["warnings"].to_string();
        assert!(
            !warnings.contains("for a debugger attached later"),
            "{flags:?}: {warnings}"
        );
        target.wait_for("hi world! 1");
        target.wait_for("hi world! 0");
        // The patched initializer's copy refers to the stand-in it
        // constructs, not to the program's global: that is the object's
        // code (verify said it differed, so a restarted `relive watch`
        // would patch it again).
        let out = relive_in(&state, &["verify", &target.pid_arg(), &new]);
        let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{flags:?}: {text}");
        let out = relive_in(&state, &["verify", &target.pid_arg(), &base]);
        assert_eq!(
            out.status.code(),
            Some(5),
            "{flags:?}: the original's initializer is not what runs"
        );
    }
}

/// A new global whose initializer runs in the process, in a file with a
/// global the program set after it started (a `std::function`). Clang's
/// initializer calls one `__cxx_global_var_init.N` per global: the call
/// went to the program's own, which constructed the program's global
/// again, and the next call of it threw `bad_function_call` (killing
/// the program). With g++ -O0 the new initializer brought libstdc++'s
/// `std::string` constructor template, which relive tried to redirect
/// (out of reach) instead of using the library's.
#[test]
fn a_new_global_leaves_the_programs_other_globals_alone() {
    const HOOKED: &str = r#"#include <cstdio>
#include <functional>
#include <string>
#include <unistd.h>
std::function<std::string(int)> g_hook;
__attribute__((noinline)) void install_hooks() {
    int base = 5;
    g_hook = [base](int t) { return "hook" + std::to_string(base + t); };
}
__attribute__((noinline)) std::string summary(int i) { return "sum" + std::to_string(i % 2); }
int main() {
    setvbuf(stdout, nullptr, _IOLBF, 0);
    install_hooks();
    for (int i = 0;; i++) { std::printf("%s %s\n", g_hook(i % 2).c_str(), summary(i).c_str()); usleep(3000); }
}
"#;
    let edited = HOOKED.replace(
        "__attribute__((noinline)) std::string summary(int i) { return \"sum\"",
        "std::string g_prefix = std::string(\"pfx-\") + std::to_string(42);\n__attribute__((noinline)) std::string summary(int i) { return g_prefix",
    );
    for compiler in ["g++", "clang++"] {
        for opt in ["-O0", "-O2"] {
            let flags = [opt, "-g"];
            let dir = tempfile::tempdir().unwrap();
            let state = dir.path().join("state");
            let base = compile(dir.path(), compiler, "app.cpp", "app.o", HOOKED, &flags);
            let target = start(dir.path(), compiler, &base, "app");
            target.wait_for("hook5 sum0");
            let new = compile(dir.path(), compiler, "app.cpp", "new.o", &edited, &flags);
            let report = patch_json(&state, target.pid(), &new, &base);
            assert_eq!(
                report["constructed"],
                serde_json::json!(["g_prefix[abi:cxx11]"]),
                "{compiler} {opt}: {report}"
            );
            target.wait_for("hook5 pfx-420");
            target.wait_for("hook6 pfx-421");
        }
    }
}

/// A function-local static with a constructor (its guard variable set
/// when it was first constructed) keeps its value and is not constructed
/// again when the function is patched: the new code uses the program's
/// static and guard.
#[test]
fn a_function_local_static_is_not_constructed_again() {
    const CACHED: &str = r#"#include <cstdio>
#include <string>
#include <unistd.h>
static int constructions = 0;
static std::string make(int i) { constructions++; return "cache-" + std::to_string(i); }
__attribute__((noinline)) void work(int i) {
    static std::string cache = make(i);
    std::printf("%s built %d\n", cache.c_str(), constructions);
}
int main() { setvbuf(stdout, nullptr, _IOLBF, 0); for (int i = 0;; i++) { work(i); usleep(3000); } }
"#;
    for compiler in ["g++", "clang++"] {
        for opt in ["-O0", "-O2"] {
            let flags = [opt, "-g"];
            let dir = tempfile::tempdir().unwrap();
            let state = dir.path().join("state");
            let base = compile(dir.path(), compiler, "app.cpp", "app.o", CACHED, &flags);
            let target = start(dir.path(), compiler, &base, "app");
            target.wait_for("cache-0 built 1");
            let edited = CACHED.replace("\"%s built %d\\n\"", "\"[%s] built %d\\n\"");
            let new = compile(dir.path(), compiler, "app.cpp", "new.o", &edited, &flags);
            patch_json(&state, target.pid(), &new, &base);
            target.wait_for("[cache-0] built 1");
        }
    }
}

/// Found by a C++ trial on LevelDB: `relive sym` took only mangled names,
/// not the spelling `status` prints. A demangled name, with or without
/// its parameters, finds the symbol.
#[test]
fn sym_takes_cxx_names_as_people_write_them() {
    const APP: &str = r#"#include <cstdio>
#include <unistd.h>
namespace shop {
__attribute__((noinline)) long price(long units, int cents) { return units * cents; }
namespace { __attribute__((noinline)) long hidden(long v) { return v + 1; } }
template <typename T> __attribute__((noinline)) T twice(T v) { return v * 2; }
}
__attribute__((noinline)) long tick(int k) { static long count; count += k; return count; }
int main() {
  setvbuf(stdout, nullptr, _IOLBF, 0);
  for (;;) {
    std::printf("p %ld %d %ld\n", shop::price(3, 7), tick(1) > 0, shop::hidden(1) + shop::twice<long>(2));
    usleep(3000);
  }
}
"#;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let base = compile(dir.path(), "g++", "app.cpp", "app.o", APP, &["-O2", "-g"]);
    let target = start(dir.path(), "g++", &base, "app");
    target.wait_for("p 21 1 6");
    for (name, symbol) in [
        ("shop::price(long, int)", "_ZN4shop5priceEli"),
        ("shop::price", "_ZN4shop5priceEli"),
        ("_ZN4shop5priceEli", "_ZN4shop5priceEli"),
        ("tick", "_Z4ticki"),
        ("tick(int)::count", "_ZZ4tickiE5count"),
        ("count", "_ZZ4tickiE5count"),
        // Found by a re-check: an anonymous namespace's parenthesis was
        // taken for the parameter list, and a template needed its
        // arguments.
        // (GCC made a clone of it, found by its function's name.)
        (
            "shop::(anonymous namespace)::hidden",
            "_ZN4shop12_GLOBAL__N_16hiddenEl.constprop.0",
        ),
        ("shop::twice", "_ZN4shop5twiceIlEET_S1_"),
        ("shop::twice<long>", "_ZN4shop5twiceIlEET_S1_"),
    ] {
        let out = relive_in(&state, &["sym", &target.pid_arg(), name, "--json"]);
        assert!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr));
        let found: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(found[0]["name"], symbol, "{name}: {found}");
    }
    // Without the namespace: not found (it may mean several things), and
    // the error names what there is.
    let out = relive_in(&state, &["sym", &target.pid_arg(), "price"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("keep their namespace or class: there are shop::price(long, int)"),
        "{err}"
    );
    // `revert` takes the same spelling (`tick` for `tick(int)`).
    let edited = APP
        .replace("return units * cents;", "return units * cents + 1;")
        .replace("return v * 2;", "return v * 3;");
    let new = compile(dir.path(), "g++", "app.cpp", "v1.o", &edited, &["-O2", "-g"]);
    let out = relive_in(&state, &["patch", &target.pid_arg(), &new, "--base", &base]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    target.wait_for("p 22 1 8");
    let out = relive_in(&state, &["revert", &target.pid_arg(), "shop::price"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    target.wait_for("p 21 1 8");
    // Unscoped: not patched, naming the patched function it may mean.
    let out = relive_in(&state, &["revert", &target.pid_arg(), "twice"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("patched are long shop::twice<long>(long)"), "{err}");
    // A template by its name alone: every instance.
    let out = relive_in(&state, &["revert", &target.pid_arg(), "shop::twice"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    target.wait_for("p 21 1 6");
}

/// An edited initializer of a scalar global (-O1: its store is the first
/// statement, inside the entry's jump): the note names the global, and no
/// note tells of a gdb breakpoint in the initializer's old code, which
/// never runs again (a HarfBuzz trial: "nothing to patch" above a pause,
/// the variable unnamed, a debugger note on `_GLOBAL__sub_I_…`).
#[test]
fn an_edited_scalar_initializer_names_its_global() {
    const SEEDED: &str = "#include <cstdio>\n#include <unistd.h>\nstatic int calls;\nstatic int seed = getpid() * 0 + 7;\n__attribute__((noinline)) int value() { return ++calls + seed * 1000; }\nint main() { setvbuf(stdout, 0, _IOLBF, 0); for (;;) { printf(\"v %d\\n\", value() / 1000); usleep(2000); } }\n";
    let flags = ["-O1", "-g"];
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let base = compile(dir.path(), "g++", "app.cpp", "app.o", SEEDED, &flags);
    let target = start(dir.path(), "g++", &base, "app");
    target.wait_for("v 7");
    let edited = SEEDED.replace("+ 7;", "+ 9;");
    let new = compile(dir.path(), "g++", "app.cpp", "new.o", &edited, &flags);
    let report = patch_json(&state, target.pid(), &new, &base);
    let applied = report["applied"].as_array().expect("applied");
    assert!(!applied.is_empty(), "{report}");
    for a in applied {
        assert_eq!(a["reach"]["reachable"], false, "{a}");
        let note = a["reach"]["note"].as_str().unwrap_or_default();
        assert!(note.contains("seed keeps the value it has"), "{a}");
    }
    let warnings = report["warnings"].to_string();
    assert!(!warnings.contains("for a debugger attached later"), "{warnings}");
    target.wait_for("v 7");
}
