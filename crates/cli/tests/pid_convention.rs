//! One way to name a process (issue 21): every command that acts on a
//! process takes its pid first, or as `--pid PID` anywhere, with the same
//! result; a process or a function that is not there exits 3.

use std::process::{Command, Output};

use relive_testkit::Target;

fn relive(args: &[&str], state: &std::path::Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_relive"))
        .args(args)
        .env("RELIVE_STATE_DIR", state)
        .output()
        .unwrap()
}

const APP: &str = "#include <stdio.h>\n#include <unistd.h>\n__attribute__((noinline, noipa)) int value(void) { return 1; }\nint main(void) { setvbuf(stdout, 0, _IOLBF, 0); for (;;) { printf(\"v %d\\n\", value()); usleep(2000); } }\n";

#[test]
fn every_process_command_takes_the_pid_first_or_as_an_option() {
    let target = Target::start_c(APP, &["-O1", "-g"]);
    target.wait_for("v 1");
    let pid = target.pid_arg();
    let state = target.dir.path().join("state");
    let obj = relive_testkit::compile_object(
        target.dir.path(),
        "target",
        &APP.replace("return 1;", "return 2;"),
        &["-O1", "-g"],
    );
    let obj = obj.to_str().unwrap();
    // Read-only commands: the same output either way.
    let forms: [(&[&str], &[&str]); 6] = [
        (&["status", &pid, "--json"], &["status", "--pid", &pid, "--json"]),
        (
            &["sym", &pid, "value", "--json"],
            &["sym", "--json", "--pid", &pid, "value"],
        ),
        (&["ps", &pid, "--json"], &["ps", &format!("--pid={pid}"), "--json"]),
        (&["status", &pid], &["status", &format!("{:#x}", target.pid())]),
        (
            &["verify", &pid, obj, "--json"],
            &["verify", "--pid", &pid, obj, "--json"],
        ),
        (&["diff", obj, obj], &["diff", obj, obj]),
    ];
    for (first, option) in forms {
        let (a, b) = (relive(first, &state), relive(option, &state));
        assert_eq!(a.status.code(), b.status.code(), "{first:?} vs {option:?}");
        if first[0] != "verify" {
            assert!(a.status.success(), "{first:?}: {}", String::from_utf8_lossy(&a.stderr));
        }
        assert_eq!(a.stdout, b.stdout, "{first:?} vs {option:?}");
    }
    // Changes: patch with the pid first, revert with --pid.
    let out = relive(&["patch", &pid, obj, "--only", "value"], &state);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    target.wait_for("v 2");
    let out = relive(&["revert", "--pid", &pid, "--all"], &state);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    target.wait_for("v 1");
}

#[test]
fn what_is_not_there_exits_3() {
    let target = Target::start_c(APP, &["-O1", "-g"]);
    target.wait_for("v 1");
    let pid = target.pid_arg();
    let state = target.dir.path().join("state");
    let obj = relive_testkit::compile_object(target.dir.path(), "target", APP, &["-O1", "-g"]);
    let obj = obj.to_str().unwrap();
    let gone = "999999999";
    let cases: [&[&str]; 7] = [
        &["watch", gone],
        &["status", gone],
        &["verify", gone, obj],
        &["revert", &pid, "nosuch"],
        &["patch", &pid, obj, "--only", "nosuch"],
        &["peek", &pid, "0x10", "4"],
        &["sym", &pid, "no_such_symbol_here"],
    ];
    for args in cases {
        let out = relive(args, &state);
        assert_eq!(
            out.status.code(),
            Some(3),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!out.stderr.is_empty(), "{args:?} says nothing");
    }
}

/// `--json` means the same before the command as after it, and a usage
/// error under `--json` is a JSON error with exit 2 (clap printed text).
#[test]
fn json_is_one_flag_wherever_it_stands() {
    let target = Target::start_c(APP, &["-O1", "-g"]);
    target.wait_for("v 1");
    let pid = target.pid_arg();
    let state = target.dir.path().join("state");
    let before = relive(&["--json", "ps", &pid], &state);
    let after = relive(&["ps", &pid, "--json"], &state);
    assert!(before.status.success(), "{}", String::from_utf8_lossy(&before.stderr));
    let parse = |o: &Output| serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap();
    assert_eq!(parse(&before)["pid"], parse(&after)["pid"]);
    assert_eq!(parse(&before)["threads"], parse(&after)["threads"]);
    let missing = relive(&["--json", "status", "999999999"], &state);
    assert_eq!(missing.status.code(), Some(3));
    let usage = relive(&["status", &pid, "--json", "--no-such-option"], &state);
    assert_eq!(usage.status.code(), Some(2));
    let error: serde_json::Value = serde_json::from_slice(&usage.stderr)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&usage.stderr)));
    assert_eq!(error["exit_code"], 2, "{error}");
    assert!(error["error"].as_str().unwrap().contains("--no-such-option"), "{error}");
    // Without --json, clap's own text.
    let text = relive(&["status", &pid, "--no-such-option"], &state);
    assert_eq!(text.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&text.stderr).starts_with("error: "));
}
