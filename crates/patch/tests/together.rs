//! Several objects patched as one transaction (`apply::patch_together`):
//! every unit's functions switch in the same change, and when one unit
//! cannot be patched nothing of the others is either.

use std::process::Command;

use relive_patch::apply::{self, Target, Timing, Unit};
use relive_patch::objfile::Kind;
use relive_patch::ObjectFile;
use relive_process::linux::LinuxProcess;
use relive_testkit::Target as Running;

const A: &str = "__attribute__((noinline)) int a(void) { return 1; }\n";
const B: &str = "__attribute__((noinline)) int b(void) { return -1; }\n";
const MAIN: &str = r#"
#include <stdio.h>
#include <unistd.h>
int a(void);
int b(void);
int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (;;) { printf("sum %d a %d\n", a() + b(), a()); usleep(1000); }
}
"#;

fn build(dir: &std::path::Path) -> std::path::PathBuf {
    for (name, text) in [("a.c", A), ("b.c", B), ("main.c", MAIN)] {
        std::fs::write(dir.join(name), text).unwrap();
    }
    let exe = dir.join("app");
    let out = Command::new("gcc")
        .args(["-O2", "-g", "-o"])
        .arg(&exe)
        .args(["a.c", "b.c", "main.c"])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    exe
}

/// `name.c` with `text`, compiled as the program was.
fn object(dir: &std::path::Path, name: &str, text: &str) -> ObjectFile {
    std::fs::write(dir.join(format!("{name}.c")), text).unwrap();
    let out = Command::new("gcc")
        .args(["-O2", "-g", "-c", &format!("{name}.c"), "-o", &format!("{name}.o")])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    ObjectFile::open(dir.join(format!("{name}.o"))).unwrap()
}

fn functions(obj: &ObjectFile) -> Vec<usize> {
    (0..obj.symbols.len())
        .filter(|&i| obj.symbols[i].kind == Kind::Function)
        .collect()
}

/// Every function of `first` and `second`, as one transaction.
fn together(
    target: &mut Target,
    first: &ObjectFile,
    second: &ObjectFile,
) -> relive_patch::Result<Vec<apply::PatchReport>> {
    let (f1, f2) = (functions(first), functions(second));
    let units = [
        Unit {
            obj: first,
            base: None,
            built: None,
            functions: &f1,
            changed_signatures: &[],
        },
        Unit {
            obj: second,
            base: None,
            built: None,
            functions: &f2,
            changed_signatures: &[],
        },
    ];
    apply::patch_together(target, &units, Timing::default())
}

#[test]
fn units_switch_together_or_not_at_all() {
    let dir = tempfile::tempdir().unwrap();
    let exe = build(dir.path());
    let running = Running::spawn(Command::new(&exe), exe, tempfile::tempdir().unwrap());
    running.wait_for("sum 0 a 1");
    let state = tempfile::tempdir().unwrap();
    std::env::set_var("RELIVE_STATE_DIR", state.path());
    let process = LinuxProcess::open(running.pid()).unwrap();
    let mut target = Target::open(&process).unwrap();

    // b's new code calls a function nothing defines: its unit cannot be
    // linked, so a's (fine on its own) is not patched either.
    let a = object(dir.path(), "a", &A.replace("return 1;", "return 7;"));
    let broken = object(
        dir.path(),
        "b",
        "int missing_everywhere(void);\n__attribute__((noinline)) int b(void) { return -missing_everywhere(); }\n",
    );
    let err = together(&mut target, &a, &broken).unwrap_err();
    assert!(err.to_string().contains("missing_everywhere"), "{err}");
    assert!(target.journal.patches.is_empty(), "{:?}", target.journal.patches);
    running.wait_for("sum 0 a 1");
    running.wait_for("sum 0 a 1");

    // Both fine: one change, and the sum (a + b) is never seen half done.
    let b = object(dir.path(), "b", &B.replace("return -1;", "return -7;"));
    let reports = together(&mut target, &a, &b).unwrap();
    assert_eq!(reports.len(), 2);
    assert_eq!(reports[0].applied[0].name, "a");
    assert_eq!(reports[1].applied[0].name, "b");
    let changes: Vec<u64> = target
        .journal
        .patches
        .iter()
        .map(|p| p.history.last().unwrap().change)
        .collect();
    assert_eq!(changes.len(), 2);
    assert_eq!(changes[0], changes[1], "one change for both");
    running.wait_for("sum 0 a 7");
    for _ in 0..50 {
        let line = running.next_line();
        assert!(line.starts_with("sum 0 "), "{line}");
    }
}
