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

/// Appends `lines` to process `pid`, started at `started` (seconds since
/// the epoch): a map last written before it started is an earlier
/// process's of the same pid, and is emptied first. Best effort: a
/// profiler's convenience never fails a patch (the error is returned for
/// a warning). A symbolic link in the map's place is not followed (`/tmp`
/// is shared).
pub fn append(pid: u32, started: u64, lines: &str) -> std::io::Result<()> {
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
    let written = file.metadata()?.modified()?;
    let written = written.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    if written < started {
        file.set_len(0)?;
    }
    file.write_all(lines.as_bytes())
}

/// Drops the lines of code that lay in `ranges` (freed pools) from
/// process `pid`'s map, rewriting it in place (temporary file, rename).
pub fn forget(pid: u32, ranges: &[(u64, u64)]) -> std::io::Result<()> {
    if ranges.is_empty() {
        return Ok(());
    }
    let text = match std::fs::read_to_string(path(pid)) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    let kept = keep_outside(&text, ranges);
    if kept.len() == text.len() {
        return Ok(());
    }
    let tmp = PathBuf::from(format!("/tmp/.perf-{pid}.map.{}.tmp", std::process::id()));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(&tmp)?;
    file.write_all(kept.as_bytes())?;
    std::fs::rename(&tmp, path(pid))
}

/// The lines of `text` whose start lies outside every range.
fn keep_outside(text: &str, ranges: &[(u64, u64)]) -> String {
    text.lines()
        .filter(|line| {
            let start = line
                .split_whitespace()
                .next()
                .and_then(|s| u64::from_str_radix(s, 16).ok());
            !start.is_some_and(|a| ranges.iter().any(|&(lo, hi)| lo <= a && a < hi))
        })
        .map(|line| format!("{line}\n"))
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn lines_in_freed_ranges_are_dropped() {
        let text = "1000 10 a [relive generation 1]\n2000 10 b [relive added]\n3000 10 c\n";
        assert_eq!(
            super::keep_outside(text, &[(0x1800, 0x2800)]),
            "1000 10 a [relive generation 1]\n3000 10 c\n"
        );
    }

    #[test]
    fn lines_are_hex_start_size_name() {
        assert_eq!(
            super::line(0x7f00_1234, 0x40, "compute [relive 2]"),
            "7f001234 40 compute [relive 2]\n"
        );
    }
}
