//! Patch bundles (issue 24 item 6): `relive bundle` on a build host writes
//! one file; `relive apply` puts it into processes of the same build on a
//! host with no compiler, and refuses a process of another build.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use relive_testkit::Target;

const APP: &str = r#"
#include <stdio.h>
#include <unistd.h>
__attribute__((noinline, noipa)) int compute(int x) {
    int s = FLAVOUR;
    for (int i = 0; i < x; i++) s += i ^ (x * 2);
    return s + x * 2;
}
int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (int i = 1;; i++) { printf("%d\n", compute(21)); usleep(3000); }
}
"#;

/// Compiles `source` with `-DFLAVOUR=flavour` as `dir/name` (an object
/// with `-c`), from `dir/app.c` as a build would.
fn build(dir: &Path, source: &str, flavour: u32, name: &str, object: bool) -> std::path::PathBuf {
    std::fs::write(dir.join("app.c"), source).unwrap();
    let out = dir.join(name);
    let mut cc = Command::new("gcc");
    cc.args(["-O2", "-g", &format!("-DFLAVOUR={flavour}")]);
    if object {
        cc.arg("-c");
    }
    let status = cc.arg("app.c").arg("-o").arg(&out).current_dir(dir).status().unwrap();
    assert!(status.success());
    out
}

/// The program built in `d`, the object it was built from, and one with
/// `x * 2` made `x * 3`; `app.c` left as built.
fn project(d: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let exe = build(d, APP, 0, "app", false);
    let old = build(d, APP, 0, "old.o", true);
    let new = build(d, &APP.replace("x * 2", "x * 3"), 0, "new.o", true);
    std::fs::write(d.join("app.c"), APP).unwrap();
    (exe, old, new)
}

/// `relive ARGS` with no compiler to be found (PATH empty).
fn relive_without_compiler(args: &[&str]) -> Output {
    let empty = tempfile::tempdir().unwrap();
    Command::new(env!("CARGO_BIN_EXE_relive"))
        .args(args)
        .env("PATH", empty.path())
        .output()
        .unwrap()
}

/// `relive bundle NEW --base OLD --for EXE -o OUT` and `extra` options.
fn make_bundle(new: &Path, old: &Path, exe: &Path, out: &Path, extra: &[&str]) -> Output {
    let paths = [new, old, exe, out].map(|p| p.to_str().unwrap().to_string());
    let mut args = vec![
        "bundle", &paths[0], "--base", &paths[1], "--for", &paths[2], "-o", &paths[3],
    ];
    args.extend_from_slice(extra);
    common::relive(&args)
}

/// Waits until `target` prints `want` twice in a row.
fn prints(target: &Target, want: i32) {
    let want = want.to_string();
    target.wait_for(&want);
    assert_eq!(target.next_line(), want);
}

/// What `compute(21)` returns with `x * 2` made `x * k`, built with
/// `-DFLAVOUR=flavour`.
fn value(k: i32, flavour: i32) -> i32 {
    flavour + (0..21).map(|i| i ^ (21 * k)).sum::<i32>() + 21 * k
}

#[test]
fn a_bundle_patches_processes_of_its_build_and_refuses_another() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (exe, old, new) = project(d);
    let bundle = d.join("fix.rpatch");
    let out = make_bundle(&new, &old, &exe, &bundle, &["--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let made: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(made["functions"], serde_json::json!(["compute"]), "{made}");
    assert!(made["build_id"].as_str().is_some_and(|b| b.len() >= 16), "{made}");

    // Two processes of the build, patched one by --pid, one by position.
    let start = || {
        let t = Target::spawn(Command::new(&exe), exe.clone(), tempfile::tempdir().unwrap());
        prints(&t, value(2, 0));
        t
    };
    let (first, second) = (start(), start());
    for args in [
        vec!["apply", bundle.to_str().unwrap(), "--pid", &first.pid_arg()],
        vec!["apply", &second.pid_arg(), bundle.to_str().unwrap()],
    ] {
        let out = relive_without_compiler(&args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("patched compute"));
    }
    prints(&first, value(3, 0));
    prints(&second, value(3, 0));

    // Applied again (a play run twice, a restarted pod), to these two and
    // a third that does not have it yet: the two say so and change
    // nothing, the third is patched.
    let third = start();
    let again = common::json(&[
        "apply",
        bundle.to_str().unwrap(),
        "--exe",
        exe.to_str().unwrap(),
        "--json",
    ]);
    let processes = again["processes"].as_array().unwrap();
    let already: Vec<bool> = processes.iter().map(|p| p.get("already").is_some()).collect();
    assert_eq!(already, [true, true, false], "{again}");
    assert_eq!(processes[2]["applied"][0]["name"], "compute", "{again}");
    prints(&third, value(3, 0));
    // Out of all three, and out again: nothing left to revert is no failure.
    for _ in 0..2 {
        let out = relive_without_compiler(&["revert", "--exe", exe.to_str().unwrap(), "--last"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    for t in [&first, &second, &third] {
        prints(t, value(2, 0));
    }

    // Another build of the program (another build-id): refused, exit 5,
    // and it runs on unchanged.
    let other_exe = build(d, APP, 1, "app-rebuilt", false);
    let other = Target::spawn(
        Command::new(&other_exe),
        other_exe.clone(),
        tempfile::tempdir().unwrap(),
    );
    prints(&other, value(2, 1));
    let out = relive_without_compiler(&["apply", bundle.to_str().unwrap(), "--pid", &other.pid_arg()]);
    let message = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{message}");
    assert!(message.contains("another build"), "{message}");
    prints(&other, value(2, 1));

    // A damaged bundle is refused, naming the damage.
    let mut bytes = std::fs::read(&bundle).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    let damaged = d.join("damaged.rpatch");
    std::fs::write(&damaged, bytes).unwrap();
    let out = relive_without_compiler(&["apply", damaged.to_str().unwrap(), "--pid", &other.pid_arg()]);
    let message = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{message}");
    assert!(message.contains("damaged.rpatch: damaged"), "{message}");
    prints(&other, value(2, 1));
    // So is one with bytes appended.
    let mut bytes = std::fs::read(&bundle).unwrap();
    bytes.extend_from_slice(b"garbage");
    std::fs::write(&damaged, bytes).unwrap();
    let out = relive_without_compiler(&["apply", damaged.to_str().unwrap(), "--pid", &other.pid_arg()]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));

    // A file no process runs, or none at all: exit 3.
    for exe in [d.join("app.c"), d.join("nothing")] {
        let out = relive_without_compiler(&["apply", bundle.to_str().unwrap(), "--exe", exe.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    }
    // A bundle never replaces an input.
    let out = make_bundle(&new, &old, &exe, &new, &[]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("names an input"));
    assert!(
        relive_patch::ObjectFile::open(&new).is_ok(),
        "the object was overwritten"
    );
}

/// A stripped program (its build-id kept): the functions a bundle
/// replaces cannot be found in it; refused as such, not as some
/// function that "cannot be moved".
#[test]
fn a_stripped_program_is_refused_for_what_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (exe, old, new) = project(d);
    let stripped = d.join("app-stripped");
    let status = Command::new("strip")
        .arg("-o")
        .arg(&stripped)
        .arg(&exe)
        .status()
        .unwrap();
    assert!(status.success());
    let bundle = d.join("fix.rpatch");
    assert!(make_bundle(&new, &old, &exe, &bundle, &[]).status.success());
    let t = Target::spawn(Command::new(&stripped), stripped.clone(), tempfile::tempdir().unwrap());
    prints(&t, value(2, 0));
    let out = relive_without_compiler(&["apply", bundle.to_str().unwrap(), "--pid", &t.pid_arg()]);
    let message = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{message}");
    assert!(message.contains("is stripped"), "{message}");
    prints(&t, value(2, 0));
}

#[test]
fn a_binary_without_a_build_id_cannot_have_a_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("app.c"), APP).unwrap();
    let exe = d.join("app");
    let status = Command::new("gcc")
        .args(["-O2", "-g", "-DFLAVOUR=0", "-Wl,--build-id=none", "app.c", "-o"])
        .arg(&exe)
        .current_dir(d)
        .status()
        .unwrap();
    assert!(status.success());
    let new = build(d, &APP.replace("x * 2", "x * 3"), 0, "new.o", true);
    let out = common::relive(&[
        "bundle",
        new.to_str().unwrap(),
        "--for",
        exe.to_str().unwrap(),
        "-o",
        d.join("x.rpatch").to_str().unwrap(),
    ]);
    let message = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(message.contains("-Wl,--build-id"), "{message}");
    assert!(!d.join("x.rpatch").exists());
}
