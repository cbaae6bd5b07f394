//! `relive peek` and `poke` against real running programs built by gcc.

use relive_testkit::{is_root, Target};
mod common;
use common::{file_bytes, hex, json, relive};

const PROGRAM: &str = r#"
#include <stdio.h>
#include <unistd.h>
// noipa: at -O2, gcc would otherwise fold the constant return into main.
__attribute__((noinline, noipa)) int value(void) { return 1; }
int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("addr %p\n", (void *)value);
    for (;;) { printf("%d\n", value()); usleep(2000); }
}
"#;

fn peek_and_poke(flags: &[&str]) {
    let target = Target::start_c(PROGRAM, flags);
    let addr_line = target.next_line();
    let addr = addr_line.strip_prefix("addr ").unwrap().to_string();
    target.wait_for("1");
    let pid = target.pid_arg();

    let peeked = json(&["peek", &pid, &addr, "16", "--json"]);
    assert_eq!(
        peeked["addr"],
        u64::from_str_radix(addr.trim_start_matches("0x"), 16).unwrap()
    );
    let original = file_bytes(&target.exe, "value", 16);
    assert_eq!(
        peeked["bytes"],
        hex(&original),
        "peek matches the file's bytes of value()"
    );

    // mov eax, 2; ret
    let poked = json(&["poke", &pid, &addr, "b802000000c3", "--json"]);
    assert_eq!(poked["old"], hex(&original[..6]));
    target.wait_for("2");

    let restored = json(&["poke", &pid, &addr, poked["old"].as_str().unwrap(), "--json"]);
    assert_eq!(restored["old"], "b802000000c3");
    target.wait_for("1");
    assert_eq!(json(&["peek", &pid, &addr, "16", "--json"])["bytes"], hex(&original));

    // An unmapped address: refused, exit 3, nothing written.
    let out = relive(&["poke", &pid, "0x10", "90"]);
    assert_eq!(out.status.code(), Some(3), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not mapped"));
}

#[test]
fn peek_and_poke_a_pie_program() {
    peek_and_poke(&["-O0", "-pie", "-fPIE"]);
}

#[test]
fn peek_and_poke_a_non_pie_program() {
    peek_and_poke(&["-O2", "-no-pie", "-fno-pie"]);
}

#[test]
fn a_process_that_is_gone_is_reported() {
    let mut target = Target::start_c(PROGRAM, &["-O0"]);
    let pid = target.pid_arg();
    target.child.kill().unwrap();
    target.child.wait().unwrap();
    let out = relive(&["peek", &pid, "0x1000", "4"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains(&format!("no process with pid {pid}")));
}

/// An unprivileged user cannot read or write a process it does not own:
/// clear "permission denied", exit 4, and the target is unchanged.
#[test]
fn unprivileged_user_is_refused() {
    if !is_root() {
        eprintln!("skipped: needs root to start a target as another user (CI runs as root)");
        return;
    }
    let target = Target::start_c(PROGRAM, &["-O0"]);
    let addr = target.next_line().strip_prefix("addr ").unwrap().to_string();
    let pid = target.pid_arg();
    let before = json(&["peek", &pid, &addr, "8", "--json"]);
    // A copy of relive that user `nobody` may execute.
    let (_dir, relive_copy) = relive_testkit::public_copy(std::path::Path::new(env!("CARGO_BIN_EXE_relive")));
    for args in [
        vec!["peek", &pid, &addr, "8"],
        vec!["poke", &pid, &addr, "c3"],
        vec!["threads", &pid],
        vec!["sym", &pid, "value"],
    ] {
        let out = relive_testkit::run_as_nobody(&relive_copy, &args, &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(4), "{args:?}: {stderr}");
        assert!(
            stderr.contains("permission denied") && stderr.contains("uid 0"),
            "{stderr}"
        );
    }
    assert_eq!(
        json(&["peek", &pid, &addr, "8", "--json"]),
        before,
        "nothing was written"
    );
    target.wait_for("1");
}
