//! `relive smf pack` and `relive smf info` on real gcc objects.

use std::process::Command;

use serde_json::Value;

fn relive(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_relive")).args(args).output().unwrap()
}

#[test]
fn pack_then_info() {
    let dir = tempfile::tempdir().unwrap();
    let a = relive_testkit::compile_object(
        dir.path(),
        "a",
        "#include <string.h>\nlong twice(long);\nlong f(const char *s) { return twice((long)strlen(s)); }\n",
        &["-O2", "-fPIC"],
    );
    let b = relive_testkit::compile_object(
        dir.path(),
        "b",
        "long twice(long x) { return 2 * x; }\n",
        &["-O2", "-fPIC"],
    );
    let out = dir.path().join("m.smf");
    let packed = relive(&[
        "smf",
        "pack",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(packed.status.success(), "{}", String::from_utf8_lossy(&packed.stderr));
    assert!(!dir.path().join("m.smf.partial").exists());

    let info = relive(&["smf", "info", out.to_str().unwrap(), "--json"]);
    assert!(info.status.success());
    let v: Value = serde_json::from_slice(&info.stdout).unwrap();
    assert_eq!(v["version"], "1.0");
    assert_eq!(v["arch"], 62);
    assert_eq!(v["imports"], serde_json::json!(["strlen"]));
    assert_eq!(v["entry"], Value::Null);
    let names: Vec<&str> = v["symbols"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert!(names.contains(&"f") && names.contains(&"twice"), "{names:?}");
    assert!(v["relocations"]["Plt32"].as_u64().unwrap() >= 1, "{v}");

    let human = relive(&["smf", "info", out.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&human.stdout);
    assert!(text.contains("import") && text.contains("strlen"), "{text}");

    // Not an SMF file: exit 1, the message says what it is not.
    let wrong = relive(&["smf", "info", a.to_str().unwrap()]);
    assert_eq!(wrong.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("not an SMF module"));
    // An input SMF cannot hold: exit 1 naming it, no output file.
    let tls = relive_testkit::compile_object(
        dir.path(),
        "t",
        "__thread int t; int g(void) { return t; }\n",
        &["-fPIC"],
    );
    let refused = dir.path().join("t.smf");
    let r = relive(&["smf", "pack", tls.to_str().unwrap(), "-o", refused.to_str().unwrap()]);
    assert_eq!(r.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&r.stderr).contains("thread-local"));
    assert!(!refused.exists());
}

#[test]
fn call_a_function_of_a_module() {
    let dir = tempfile::tempdir().unwrap();
    let a = relive_testkit::compile_object(
        dir.path(),
        "a",
        "#include <string.h>\nstatic const char *w = \"four\";\nlong mix(long a, long b, long c, long d, long e, long f) { return a - b + 10*c + 100*d + 1000*e + 10000*f + (long)strlen(w); }\n",
        &["-O2", "-fPIC"],
    );
    let out = dir.path().join("m.smf");
    assert!(
        relive(&["smf", "pack", a.to_str().unwrap(), "-o", out.to_str().unwrap()])
            .status
            .success()
    );
    let m = out.to_str().unwrap();
    let r = relive(&["smf", "call", m, "mix", "1", "-2", "3", "0x4", "5", "6"]);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    assert_eq!(
        String::from_utf8_lossy(&r.stdout).trim(),
        (1 + 2 + 30 + 400 + 5000 + 60000 + 4).to_string()
    );
    let r = relive(&["smf", "call", m, "mix", "--json"]);
    let v: Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(v["result"], 4);
    // A missing function: exit 3, naming it.
    let r = relive(&["smf", "call", m, "absent"]);
    assert_eq!(r.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&r.stderr).contains("no function absent"));
    // A bad argument: exit 1 naming it.
    let r = relive(&["smf", "call", m, "mix", "twelve"]);
    assert_eq!(r.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&r.stderr).contains("\"twelve\" is not an integer"));
}
