//! Reading `/proc` files in as few system calls as they allow.
//!
//! They report a size of 0, so `std::fs::read_to_string` asks for the size
//! first (`statx`) and then reads in steps growing from 32 bytes: a 4 KiB
//! `maps` took eleven calls, a `stat` line nine. `relive run` reads every
//! process's `stat` at each save (its program's workers), and a patch
//! reads `maps`, `stat` and `status` several times. Here: one read into a
//! buffer sized for most of them, grown only when it fills, then the read
//! that finds the end.

use std::fs::File;
use std::io::{ErrorKind, Read};
use std::path::Path;

/// What the first read asks for: a `maps` of a small program, any `stat`
/// or `status` line.
const FIRST_READ: usize = 8 << 10;

/// The bytes of `path` (a `/proc` file) into `buf`, which keeps its
/// allocation for the next call.
pub fn read_into(path: &Path, buf: &mut Vec<u8>) -> std::io::Result<()> {
    let mut file = File::open(path)?;
    buf.clear();
    buf.resize(FIRST_READ, 0);
    let mut len = 0;
    loop {
        if len == buf.len() {
            buf.resize(2 * len, 0);
        }
        match file.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(len);
    Ok(())
}

/// The text of `path` (a `/proc` file), bytes that are not UTF-8 replaced
/// by U+FFFD: a command or thread name (`stat`, `status`, `comm`) or a
/// mapped file's path (`maps`) may hold any bytes, and the rest of the
/// file is still read. A process whose program's path was not UTF-8 could
/// not be patched at all ("reading /proc/PID/maps: stream did not contain
/// valid UTF-8"); the one reader for all of them, so no `/proc` text is
/// read the strict way.
pub fn read_lossy(path: impl AsRef<Path>) -> std::io::Result<String> {
    let mut buf = Vec::new();
    read_into(path.as_ref(), &mut buf)?;
    Ok(match String::from_utf8(buf) {
        Ok(text) => text,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_the_standard_library_reads() {
        for path in ["/proc/self/maps", "/proc/self/stat", "/proc/self/status", "/proc/stat"] {
            let ours = read_lossy(path).unwrap();
            let std = std::fs::read_to_string(path).unwrap();
            // Both describe this process: the first line (its own mapping,
            // its pid and name, the CPU totals' label) is the same.
            assert_eq!(
                ours.lines().next().map(|l| l.split(' ').next()),
                std.lines().next().map(|l| l.split(' ').next()),
                "{path}"
            );
            assert!(ours.ends_with('\n'), "{path} read to its end");
        }
        assert_eq!(
            read_lossy("/proc/no-such-file").unwrap_err().kind(),
            ErrorKind::NotFound
        );
    }

    #[test]
    fn a_file_longer_than_the_first_read_is_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("long");
        let text: String = (0..5000).map(|i| format!("line {i}\n")).collect();
        assert!(text.len() > 2 * FIRST_READ);
        std::fs::write(&path, &text).unwrap();
        assert_eq!(read_lossy(&path).unwrap(), text);
        std::fs::write(&path, [b'a', 0xff, b'b']).unwrap();
        assert_eq!(read_lossy(&path).unwrap(), "a\u{fffd}b");
    }
}
