//! `relive diff` on two real gcc compiles.

use relive_testkit::compile_object;
mod common;
use common::{json, relive, text};

#[test]
fn diff_reports_changed_added_removed_and_layout() {
    let dir = tempfile::tempdir().unwrap();
    let old = "int g[2];\nint f(void) { return 1; }\nint gone(void) { return 2; }\n";
    let new = "int g[3];\nint f(void) { return 5; }\nint fresh(void) { return 3; }\n";
    let a = compile_object(dir.path(), "a", old, &["-O2"]);
    let b = compile_object(dir.path(), "b", new, &["-O2"]);
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    let d = json(&["diff", a, b, "--json"]);
    let names = |k: &str| -> Vec<String> {
        d[k].as_array()
            .unwrap()
            .iter()
            .map(|e| e["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(names("changed"), ["f", "g"]);
    assert_eq!(d["changed"][0]["layout"], false);
    assert_eq!(d["changed"][1]["layout"], true);
    assert_eq!(d["changed"][1]["kind"], "object");
    assert_eq!(names("added"), ["fresh"]);
    assert_eq!(names("removed"), ["gone"]);
    assert_eq!(d["unchanged"], 0);
    let human = text(&["diff", a, a]);
    assert_eq!(human.trim(), "unchanged 3");
    let out = relive(&["diff", a, "/nonexistent.o"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent.o"));
}

/// A function whose code changed only in `__LINE__` numbers, in its cold
/// part too, is said to have moved, as a reload says it; a real edit
/// keeps its reason (`relive diff` said "bytes differ" of every one while
/// `relive run` said "line numbers only": a SQLite re-check).
#[test]
fn diff_tells_functions_that_only_moved() {
    let dir = tempfile::tempdir().unwrap();
    let old = r#"__attribute__((noinline, cold)) int corrupt(int line) { return line; }
__attribute__((noinline)) int find(int *rc, int pc, int max) {
  int i = 0;
  while (pc) {
    if (pc > max) { *rc = corrupt(__LINE__); return 0; }
    i += pc;
    pc = pc / 2;
  }
  return i;
}
int edited(int x) { return x + 1; }
"#;
    let new = format!("/* one */\n/* two */\n{}", old.replace("x + 1", "x * 7 + 3"));
    let a = compile_object(dir.path(), "a", old, &["-O2", "-g"]);
    let b = compile_object(dir.path(), "b", &new, &["-O2", "-g"]);
    let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
    let d = json(&["diff", a, b, "--json"]);
    let changed = d["changed"].as_array().unwrap();
    let of = |name: &str| {
        changed
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("{name}: {d}"))
    };
    // GCC put the path that passes `__LINE__` in `find.cold`: the part
    // that changed.
    assert_eq!(of("find.cold")["lines_moved"], 2, "{d}");
    assert!(of("edited").get("lines_moved").is_none(), "{d}");
    let human = text(&["diff", a, b]);
    assert!(
        human.contains(
            "changed   find.cold (function): line numbers only (lines added or removed above moved it 2 lines down)"
        ),
        "{human}"
    );
    assert!(!human.contains("edited (function): line numbers only"), "{human}");
}

/// A function-local static is named as its source names it, with the
/// function that has it, not by GCC's number (`calls.0`), as `sym` and
/// `status` name it (a QuickJS trial).
#[test]
fn diff_names_a_function_local_static_by_its_function() {
    let dir = tempfile::tempdir().unwrap();
    let old = "int f(void) { return 1; }\n";
    let new = "int f(void) { static int calls; return ++calls; }\n";
    let a = compile_object(dir.path(), "a", old, &["-O2"]);
    let b = compile_object(dir.path(), "b", new, &["-O2"]);
    let human = text(&["diff", a.to_str().unwrap(), b.to_str().unwrap()]);
    assert!(human.contains("added     calls (used by f) (object)"), "{human}");
    assert!(!human.contains("calls.0"), "{human}");
}
