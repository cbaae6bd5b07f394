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
