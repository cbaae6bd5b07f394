//! Thread-local variables of shared libraries (issue 24 item 4): new code
//! in a library reaches the library's `__thread` variables through
//! `__tls_get_addr` with the library's TLS index (general- and
//! local-dynamic), and new code in the program reaches them through the
//! program's GOT cell holding their distance from the thread pointer
//! (initial-exec). Each thread keeps its own value. A thread-local the
//! program does not have is refused, naming it; the program runs on.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use relive_testkit::{Target, PATIENCE};

const LIB: &str = r#"
__thread int lib_counter;
static __thread int lib_hidden = 7;
__attribute__((noinline)) int lib_tick(int step) {
    lib_counter += step;
    lib_hidden += 1;
    return lib_counter * 100 + lib_hidden % 100;
}
"#;

const MAIN: &str = r#"
#include <stdio.h>
#include <pthread.h>
#include <unistd.h>
extern __thread int lib_counter;
int lib_tick(int step);
__attribute__((noinline, noipa)) int observe(int id) { return id * 1000000 + lib_counter; }
static void *run(void *arg) {
    int id = (int)(long)arg;
    lib_counter = id * 1000;
    for (;;) {
        int t = lib_tick(1);
        int o = observe(id);
        printf("%d %d %d\n", id, t, o);
        fflush(stdout);
        usleep(3000);
    }
}
int main(void) {
    pthread_t t[3];
    for (long i = 0; i < 3; i++) pthread_create(&t[i], 0, run, (void *)(i + 1));
    pthread_join(t[0], 0);
}
"#;

/// `cc ARGS` in `dir`, which must succeed.
fn cc(cc: &str, dir: &Path, args: &[&str]) {
    let out = Command::new(cc).args(args).current_dir(dir).output().unwrap();
    assert!(
        out.status.success(),
        "{cc} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Compiles `file` with `text` (at its own path, as an edit would) into
/// `object`.
fn object(compiler: &str, dir: &Path, file: &str, text: &str, flags: &[&str], object: &str) -> String {
    std::fs::write(dir.join(file), text).unwrap();
    let mut args = vec!["-O2", "-g", "-c", file, "-o", object];
    args.extend_from_slice(flags);
    cc(compiler, dir, &args);
    dir.join(object).display().to_string()
}

fn relive(state: &Path, args: &[&str]) -> Output {
    common::relive_in(state, args)
}

/// Reads lines until each thread printed a line `check` accepts (after
/// the patch: earlier lines may still be queued) and returns them.
fn each_thread(target: &Target, check: impl Fn(i64, i64, i64) -> bool) -> Vec<(i64, i64, i64)> {
    let deadline = std::time::Instant::now() + PATIENCE;
    let mut seen: Vec<Option<(i64, i64, i64)>> = vec![None; 3];
    while seen.iter().any(Option::is_none) {
        assert!(
            std::time::Instant::now() < deadline,
            "threads never showed the patch: {seen:?}"
        );
        let line = target.next_line();
        let v: Vec<i64> = line.split(' ').map(|w| w.parse().unwrap()).collect();
        if check(v[0], v[1], v[2]) {
            seen[(v[0] - 1) as usize] = Some((v[0], v[1], v[2]));
        }
    }
    seen.into_iter().flatten().collect()
}

#[test]
fn new_code_reaches_each_threads_copy_of_a_librarys_thread_locals() {
    for compiler in ["gcc", "clang"] {
        for pie in [&["-fPIE"][..], &["-fno-pie"][..]] {
            let dir = tempfile::tempdir().unwrap();
            let d = dir.path();
            std::fs::write(d.join("lib.c"), LIB).unwrap();
            std::fs::write(d.join("main.c"), MAIN).unwrap();
            cc(
                compiler,
                d,
                &["-O2", "-g", "-fPIC", "-shared", "lib.c", "-o", "libt.so"],
            );
            let link = if pie[0] == "-fPIE" { "-pie" } else { "-no-pie" };
            let rpath = format!("-Wl,-rpath,{}", d.display());
            let mut args = vec![
                "-O2", "-g", "-pthread", "main.c", "-o", "app", "-L.", "-lt", link, &rpath,
            ];
            args.extend_from_slice(pie);
            cc(compiler, d, &args);
            let lib_old = object(compiler, d, "lib.c", LIB, &["-fPIC"], "lib.old.o");
            let main_old = object(compiler, d, "main.c", MAIN, pie, "main.old.o");
            let exe = d.join("app");
            let target = Target::spawn(Command::new(&exe), exe.clone(), tempfile::tempdir().unwrap());
            let state = d.join("state");
            let what = format!("{compiler} {pie:?}");

            // The library's function, reaching lib_counter (general-dynamic)
            // and the static lib_hidden (local-dynamic).
            let edited = LIB.replace("lib_hidden % 100;", "lib_hidden % 100 + 50000000;");
            let lib_new = object(compiler, d, "lib.c", &edited, &["-fPIC"], "lib.new.o");
            let out = relive(&state, &["patch", &target.pid_arg(), &lib_new, "--base", &lib_old]);
            assert!(out.status.success(), "{what}: {}", String::from_utf8_lossy(&out.stderr));
            // Each thread's own counter: id * 1000 plus its ticks.
            for (id, tick, _) in each_thread(&target, |_, t, _| t >= 50_000_000) {
                let counter = (tick - 50_000_000) / 100;
                assert!(
                    counter > id * 1000 && counter < id * 1000 + 1000,
                    "{what}: thread {id} {tick}"
                );
            }

            // The program's function, reaching the library's variable
            // through the program's initial-exec GOT cell.
            let edited = MAIN.replace("id * 1000000 + lib_counter;", "id * 1000000 + lib_counter + 900000;");
            let main_new = object(compiler, d, "main.c", &edited, pie, "main.new.o");
            let out = relive(&state, &["patch", &target.pid_arg(), &main_new, "--base", &main_old]);
            assert!(out.status.success(), "{what}: {}", String::from_utf8_lossy(&out.stderr));
            for (id, tick, observed) in each_thread(&target, |_, _, o| o % 1_000_000 >= 900_000) {
                let counter = (tick - 50_000_000) / 100;
                assert_eq!(observed, id * 1_000_000 + 900_000 + counter, "{what}: thread {id}");
            }

            // A thread-local the program does not have: refused, named.
            let with_new = LIB
                .replace(
                    "__thread int lib_counter;",
                    "__thread int lib_counter;\n__thread int brand_new;",
                )
                .replace("lib_counter += step;", "lib_counter += step; brand_new++;");
            let lib_newer = object(compiler, d, "lib.c", &with_new, &["-fPIC"], "lib.newer.o");
            let out = relive(&state, &["patch", &target.pid_arg(), &lib_newer, "--base", &lib_new]);
            let message = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{what}: {message}");
            assert!(
                message.contains("brand_new") && message.contains("restart the program"),
                "{what}: {message}"
            );
            each_thread(&target, |_, t, _| t >= 50_000_000);
        }
    }
}
