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

/// A pid that names no process is said before what the objects' diff
/// refuses: a signature change's "restart the program" misled about a
/// pid that was only wrong (a tree-sitter trial).
#[test]
fn a_wrong_pid_is_said_before_the_objects_refusal() {
    let dir = tempfile::tempdir().unwrap();
    let base = relive_testkit::compile_object(dir.path(), "base", APP, &["-O1", "-g"]);
    let edited = APP.replace("int value(void) { return 1; }", "long value(long x) { return x; }");
    let edited = edited.replace("value()", "value(2)");
    let new = relive_testkit::compile_object(dir.path(), "new", &edited, &["-O1", "-g"]);
    let gone = "999999999";
    let args = ["patch", gone, new.to_str().unwrap(), "--base", base.to_str().unwrap()];
    let out = relive(&args, &dir.path().join("state"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains(&format!("no process with pid {gone}")), "{stderr}");
    assert!(!stderr.contains("restart the program"), "{stderr}");
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

/// `--color`, `-q` and `-v` are global: the same before or after the
/// command. Colour goes only where asked (or to a terminal, unless
/// `NO_COLOR`); `-q` and `-v` cannot be given together.
#[test]
fn color_quiet_and_verbose_are_global_flags() {
    let state = tempfile::tempdir().unwrap();
    let with_env = |args: &[&str], no_color: bool| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_relive"));
        cmd.args(args).env("RELIVE_STATE_DIR", state.path());
        if no_color {
            cmd.env("NO_COLOR", "1");
        }
        cmd.output().unwrap()
    };
    let red = "\x1b[1;31merror:\x1b[0m";
    for args in [
        &["--color", "always", "status", "999999999"][..],
        &["status", "999999999", "--color=always"],
    ] {
        let out = with_env(args, true);
        assert_eq!(out.status.code(), Some(3));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.starts_with(&format!("relive: {red} ")), "{args:?}: {stderr:?}");
    }
    for (args, no_color) in [
        (&["--color", "never", "status", "999999999"][..], false),
        (&["status", "999999999"], false),
        (&["--color", "auto", "status", "999999999"], true),
    ] {
        let out = with_env(args, no_color);
        assert_eq!(out.status.code(), Some(3));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.starts_with("relive: error: ") && !stderr.contains('\x1b'),
            "{args:?}: {stderr:?}"
        );
    }
    let both = with_env(&["-q", "-v", "status", "1"], false);
    assert_eq!(both.status.code(), Some(2), "{}", String::from_utf8_lossy(&both.stderr));
    let bad = with_env(&["--color", "sometimes", "status", "1"], false);
    assert_eq!(bad.status.code(), Some(2));
}

/// `-q` leaves out progress (`relive: watching …`) and keeps results (the
/// patched line); `-v` adds every compile command, wherever the flag
/// stands.
#[test]
fn quiet_and_verbose_change_what_watch_says() {
    use std::io::BufRead;
    let target = Target::start_c(APP, &["-O1", "-g"]);
    target.wait_for("v 1");
    let pid = target.pid_arg();
    let source = target.dir.path().join("target.c");
    let mut value = 1;
    for (flags, progress, compiles) in [
        (&["-q"][..], false, false),
        (&[][..], true, false),
        (&["-v"][..], true, true),
    ] {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_relive"));
        cmd.args(flags)
            .args(["watch", &pid])
            .arg(&source)
            .args(["--cc", "cc -O1 -g"])
            .env("RELIVE_STATE_DIR", target.dir.path().join("state"))
            .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let lines = std::sync::mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        let sender = lines.0;
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = sender.send(line);
            }
        });
        // An edit saved while relive starts is patched either way: as a
        // catch-up at start or as a save.
        std::thread::sleep(std::time::Duration::from_millis(300));
        value += 1;
        std::fs::write(&source, APP.replace("return 1;", &format!("return {value};"))).unwrap();
        let mut seen: Vec<String> = Vec::new();
        while !seen.last().is_some_and(|l| l.contains(": patched ")) {
            let line = lines
                .1
                .recv_timeout(std::time::Duration::from_secs(60))
                .unwrap_or_else(|_| panic!("{flags:?}: no patched line; saw {seen:?}"));
            seen.push(line);
        }
        let patched = seen.last().unwrap().clone();
        target.wait_for(&format!("v {value}"));
        let _ = child.kill();
        let _ = child.wait();
        assert!(patched.contains("value"), "{patched}");
        let watching = seen.iter().any(|l| l.starts_with("relive: watching "));
        let compile = seen.iter().any(|l| l.starts_with("relive: compile ("));
        assert_eq!((watching, compile), (progress, compiles), "{flags:?}: {seen:?}");
    }
}

/// `RELIVE_STATE_DIR=` (set but empty) is as if unset: the default state
/// directory, not an error naming an empty path.
#[test]
fn an_empty_state_dir_variable_means_the_default() {
    let target = Target::start_c(APP, &["-O1", "-g"]);
    target.wait_for("v 1");
    let runtime = tempfile::tempdir().unwrap();
    std::fs::set_permissions(runtime.path(), std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_relive"))
        .args(["status", &target.pid_arg()])
        .env("RELIVE_STATE_DIR", "")
        .env("XDG_RUNTIME_DIR", runtime.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() || out.status.code() == Some(3), "{text}");
    assert!(
        text.contains(&runtime.path().join("relive").display().to_string()),
        "{text}"
    );
}

/// `relive revert PID` with nothing to say what to revert: the usage error
/// shows the three ways (names, --all, --last), not only the names.
#[test]
fn a_revert_without_names_shows_all_and_last() {
    let state = tempfile::tempdir().unwrap();
    let out = relive(&["revert", "1"], state.path());
    let message = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{message}");
    assert!(
        message.contains("<PID> --all") && message.contains("<PID> --last"),
        "{message}"
    );
}

/// `relive run` starts a program: given a pid, as the commands that act
/// on a running process take one, it says to use `relive watch PID`
/// (exit 2), where clap's own message pointed at `-- --pid`.
#[test]
fn run_with_a_pid_points_to_watch() {
    let state = tempfile::tempdir().unwrap();
    let out = relive(&["run", "--pid", "4242"], state.path());
    assert_eq!(out.status.code(), Some(2));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("use `relive watch 4242`"), "{said}");
    let out = relive(&["run", "--pid", "4242", "--json"], state.path());
    assert_eq!(out.status.code(), Some(2));
    let error: serde_json::Value = serde_json::from_slice(&out.stderr).unwrap();
    assert!(
        error["error"].as_str().unwrap().contains("relive watch 4242"),
        "{error}"
    );
}

/// `relive run --pid` with no pid: the same pointer to `watch`, not
/// clap's "a value is required".
#[test]
fn run_with_pid_but_no_value_points_to_watch() {
    let state = tempfile::tempdir().unwrap();
    let out = relive(&["run", "--pid"], state.path());
    assert_eq!(out.status.code(), Some(2));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("use `relive watch PID`"), "{said}");
}

/// `relive run ./app` (no `--` before the program) says where the
/// program goes, where clap said only "unexpected argument './app'".
#[test]
fn run_without_dashes_says_where_the_program_goes() {
    let state = tempfile::tempdir().unwrap();
    for args in [&["run", "./app", "-x"][..], &["-v", "run", "--cc", "gcc", "./app"]] {
        let out = relive(args, state.path());
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(said.contains("go after `--` (`relive run -- ./app ...`)"), "{said}");
        assert!(said.contains("Usage: relive run"), "{said}");
    }
    // An unknown option is clap's own error, as for every command.
    let out = relive(&["run", "--nope", "--", "./app"], state.path());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unexpected argument '--nope'"));
}

/// `watch` of a program whose debug information names no sources says to
/// name the files as `watch` takes them (it said to pass `--watch`, which
/// only `run` takes: a zlib trial).
#[test]
fn watch_of_a_program_without_sources_says_how_to_name_them() {
    let mut sleeper = Command::new("sleep").arg("30").spawn().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = relive(&["watch", &sleeper.id().to_string()], &dir.path().join("state"));
    let _ = sleeper.kill();
    let _ = sleeper.wait();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("name them: relive watch PID FILE...") && !stderr.contains("--watch"),
        "{stderr}"
    );
}
