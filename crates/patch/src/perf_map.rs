//! `/tmp/perf-PID.map`: where `perf report` (and other profilers that read
//! the JIT map convention) find names for code outside any mapped file.
//! Patched code lives in anonymous pool memory, so without these lines its
//! samples show as `[unknown]`; each patch appends one line per function
//! it placed: `START SIZE NAME` (hex, no `0x`).

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

/// The map file of process `pid`.
pub fn path(pid: u32) -> PathBuf {
    PathBuf::from(format!("/tmp/perf-{pid}.map"))
}

/// The line for code of `size` bytes at `start` named `name`.
pub fn line(start: u64, size: u64, name: &str) -> String {
    format!("{start:x} {size:x} {name}\n")
}

/// Appends `lines` to process `pid`'s map. Best effort: a profiler's
/// convenience never fails a patch (the error is returned for a warning).
/// A symbolic link in the map's place is not followed (`/tmp` is shared).
pub fn append(pid: u32, lines: &str) -> std::io::Result<()> {
    if lines.is_empty() {
        return Ok(());
    }
    const O_NOFOLLOW: i32 = 0o400000;
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o644)
        .custom_flags(O_NOFOLLOW)
        .open(path(pid))?;
    file.write_all(lines.as_bytes())
}

#[cfg(test)]
mod tests {
    #[test]
    fn lines_are_hex_start_size_name() {
        assert_eq!(
            super::line(0x7f00_1234, 0x40, "compute [relive 2]"),
            "7f001234 40 compute [relive 2]\n"
        );
    }
}
