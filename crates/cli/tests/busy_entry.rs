//! First patches of a function 8 threads are spinning in (issue 19): a
//! thread found inside the bytes a redirect replaces is single-stepped out
//! of them, so the patch succeeds instead of giving up after 200 ms.

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

#[test]
fn first_patches_of_a_function_eight_threads_spin_in_succeed() {
    let target = Target::start_c(APP, &["-O2", "-g", "-pthread"]);
    target.wait_for("v 4");
    let pid = target.pid_arg();
    let state = target.dir.path().join("state");
    let new = relive_testkit::compile_object(
        target.dir.path(),
        "target",
        &APP.replace("x / y + 1", "x / y + 2"),
        &["-O2", "-g", "-pthread"],
    );
    let relive = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_relive"))
            .args(args)
            .env("RELIVE_STATE_DIR", &state)
            .output()
            .unwrap()
    };
    for round in 0..30 {
        let out = relive(&["patch", &pid, new.to_str().unwrap(), "--only", "spin"]);
        assert!(
            out.status.success(),
            "round {round}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        target.wait_for("v 5");
        let out = relive(&["revert", &pid, "--all"]);
        assert!(
            out.status.success(),
            "round {round}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        target.wait_for("v 4");
    }
}
