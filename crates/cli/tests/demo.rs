//! `relive demo` runs end to end and checks its own outcome: every scripted
//! edit reached the running program, whose counter never went back.

mod common;
use common::relive;

#[test]
fn the_demo_runs_and_shows_every_edit() {
    let out = relive(&["demo"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for shown in [
        "hello from live-patched code",
        "sunny",
        "beat ",
        "edit 4/4",
        "without a restart",
    ] {
        assert!(stdout.contains(shown), "{shown:?} missing from:\n{stdout}");
    }
    // Each reload patched only what its edit changed.
    let patched: Vec<&str> = stdout.lines().filter(|l| l.contains("relive | patched")).collect();
    assert_eq!(patched.len(), 4, "{stdout}");
    assert!(
        patched[0].contains("patched mood (") && patched[1].contains("patched step ("),
        "{stdout}"
    );
    // The temporary directory is gone.
    let dir = stdout.split_whitespace().nth(2).unwrap();
    assert!(!std::path::Path::new(dir).exists(), "{dir} left behind");
}
