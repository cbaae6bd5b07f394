//! Functions GCC folded into one (identical code: one address, two names;
//! found by a new-user trial in SQLite's shell.c): an object of the build
//! verifies; an edit of one of them is refused (one entry cannot run two
//! bodies, and redirecting it would change the other); an edit of both
//! alike is patched once; revert restores everything.

use std::process::{Command, Output};

use relive_testkit::Target;

const APP: &str = r#"
#include <stdio.h>
#include <unistd.h>
int base = 3, one = 1, two = 2;
static __attribute__((noinline)) int f1(int x) { return x * 7 + base; }
static __attribute__((noinline)) int f2(int x) { return x * 7 + base; }
int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (;;) { printf("v %d %d\n", f1(one), f2(two)); usleep(2000); }
}
"#;

fn relive(target: &Target, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_relive"))
        .args(args)
        .env("RELIVE_STATE_DIR", target.dir.path().join("state"))
        .output()
        .unwrap()
}

fn object(target: &Target, source: &str, name: &str) -> String {
    let dir = target.dir.path().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    relive_testkit::compile_object(&dir, "target", source, &["-O2", "-g"])
        .display()
        .to_string()
}

#[test]
fn folded_functions_are_one_entry() {
    let target = Target::start_c(APP, &["-O2", "-g"]);
    target.wait_for("v 10 17");
    let pid = target.pid_arg();
    let base = object(&target, APP, "base");
    // The build's own object: both names, one body, its relocation
    // (`base`) shared.
    let out = relive(&target, &["verify", &pid, &base]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    // Only f2 edited: refused, nothing changes.
    let one = object(
        &target,
        &APP.replace(
            "static __attribute__((noinline)) int f2(int x) { return x * 7 + base; }",
            "static __attribute__((noinline)) int f2(int x) { return x * 7 + base + 1; }",
        ),
        "one",
    );
    let out = relive(&target, &["patch", &pid, &one, "--base", &base]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("folded") && err.contains("f1") && err.contains("f2"),
        "{err}"
    );
    target.wait_for("v 10 17");
    // Both edited alike: still one body, patched once.
    let both = object(&target, &APP.replace("x * 7 + base", "x * 8 + base"), "both");
    let out = relive(&target, &["patch", &pid, &both, "--base", &base]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    target.wait_for("v 11 19");
    let out = relive(&target, &["revert", &pid, "--all"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    target.wait_for("v 10 17");
}
