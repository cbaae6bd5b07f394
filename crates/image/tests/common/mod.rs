//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

#[allow(unused_imports)]
pub use relive_testkit::{fixture, fixtures};

/// Runs the independent Python reader on `path`.
pub fn reference(path: &Path) -> serde_json::Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/ape_reference.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(path)
        .output()
        .expect("python3 is needed for the reference reader (.ci/run installs it)");
    assert!(
        out.status.success(),
        "reference reader failed on {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Runs a command and returns its stdout, failing the test on error.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// APE files to check against the reference: the fixtures plus every file in
/// `$RELIVE_EXTRA_APE_DIR`, so new real-world APEs can be checked without
/// changing the tests.
pub fn ape_files() -> Vec<PathBuf> {
    let mut files = vec![fixture("pledge.com"), fixture("ent.com"), fixture("ent.elf")];
    if let Ok(dir) = std::env::var("RELIVE_EXTRA_APE_DIR") {
        for entry in std::fs::read_dir(dir).expect("RELIVE_EXTRA_APE_DIR is not readable") {
            let path = entry.unwrap().path();
            if path.is_file() {
                files.push(path);
            }
        }
    }
    files
}
