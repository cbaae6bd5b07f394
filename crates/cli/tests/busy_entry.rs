//! First patches of a function 8 threads are spinning in (issue 19): a
//! thread found inside the bytes a redirect replaces carries on in a
//! relocated copy of them, so the patch succeeds instead of giving up after
//! 200 ms, and a relive killed right then leaves no thread harmed (a
//! single-stepped thread died of SIGTRAP when its tracer vanished).

use std::process::Command;

use relive_testkit::Target;

const APP: &str = r#"
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>
/* The division at its entry is most of its time, and a thread stopped
 * there is just after it (`mov; cltd; idiv` are 5 bytes): nearly always
 * inside the bytes a redirect replaces. */
__attribute__((noinline, noipa)) int spin(int x, int y) { return x / y + 1; }
static void *worker(void *arg) {
    volatile int s = (int)(long)arg;
    for (;;) s = spin(s + 1000003, 7);
    return 0;
}
int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    pthread_t t[8];
    for (long i = 0; i < 8; i++) pthread_create(&t[i], 0, worker, (void *)i);
    for (;;) { printf("v %d\n", spin(21, 7)); usleep(2000); }
}
"#;

/// The program running, printing its first result, and an object of it
/// whose `spin` adds 2 instead of 1.
fn started() -> (Target, std::path::PathBuf) {
    let target = Target::start_c(APP, &["-O2", "-g", "-pthread"]);
    target.wait_for("v 4");
    let new = relive_testkit::compile_object(
        target.dir.path(),
        "target",
        &APP.replace("x / y + 1", "x / y + 2"),
        &["-O2", "-g", "-pthread"],
    );
    (target, new)
}

/// `relive ARGS` on `target`'s state, aborting at `failpoint` if given.
fn relive(target: &Target, args: &[&str], failpoint: Option<&str>) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_relive"));
    cmd.args(args).env("RELIVE_STATE_DIR", target.dir.path().join("state"));
    if let Some(f) = failpoint {
        cmd.env("RELIVE_FAILPOINT", f);
    }
    cmd.output().unwrap()
}

#[test]
fn first_patches_of_a_function_eight_threads_spin_in_succeed() {
    let (target, new) = started();
    let pid = target.pid_arg();
    let relive = |args: &[&str]| relive(&target, args, None);
    let mut moved = 0;
    for round in 0..30 {
        let out = relive(&["patch", &pid, new.to_str().unwrap(), "--only", "spin", "--json"]);
        assert!(
            out.status.success(),
            "round {round}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        moved += report["threads_moved"]
            .as_u64()
            .unwrap_or_else(|| panic!("no threads_moved (0 is said too): {report}"));
        target.wait_for("v 5");
        let out = relive(&["revert", &pid, "--all"]);
        assert!(
            out.status.success(),
            "round {round}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        target.wait_for("v 4");
    }
    assert!(
        moved > 0,
        "no thread was ever found inside the entry: the test proves nothing"
    );
}

/// relive killed right after it moved threads into copies of the entry's
/// bytes (before the redirect is written): the program runs on, its
/// threads' results unharmed, and a later patch and revert work.
#[test]
fn relive_killed_after_moving_threads_harms_none() {
    let (target, new) = started();
    let pid = target.pid_arg();
    let relive = |args: &[&str], failpoint| relive(&target, args, failpoint);
    let mut killed = 0;
    for round in 0..20 {
        let out = relive(
            &["patch", &pid, new.to_str().unwrap(), "--only", "spin"],
            Some("patch-after-move"),
        );
        if out.status.code().is_none() {
            killed += 1;
            // Nothing was redirected: the old code still runs, in every
            // thread (a worker killed by SIGTRAP would end the process).
            target.wait_for("v 4");
            for _ in 0..20 {
                assert_eq!(target.wait_for_prefix("v "), "4", "round {round}");
            }
        } else {
            assert!(
                out.status.success(),
                "round {round}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            target.wait_for("v 5");
        }
        let out = relive(&["revert", &pid, "--all"], None);
        assert!(
            out.status.success(),
            "round {round}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        target.wait_for("v 4");
    }
    assert!(killed > 0, "no round moved a thread: the test proves nothing");
    // Afterwards a patch still works.
    let out = relive(&["patch", &pid, new.to_str().unwrap(), "--only", "spin"], None);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    target.wait_for("v 5");
}
