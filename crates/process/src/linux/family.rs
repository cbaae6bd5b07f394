//! Which processes belong together: a process and its descendants (a
//! prefork server's parent and workers), or every process running one
//! file. Read from `/proc`, one pass over its process directories.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Every process directory in `/proc`, with its parent: `(pid, ppid)`.
/// Each `stat` is read into one buffer, in three system calls (`relive
/// run` lists its program's processes at every save; see
/// [`crate::procfs`]).
fn processes() -> Vec<(u32, u32)> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut buf = Vec::new();
    let mut path = std::path::PathBuf::new();
    dir.filter_map(|entry| {
        let entry = entry.ok()?;
        let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
        path.clear();
        path.push(entry.path());
        path.push("stat");
        crate::procfs::read_into(&path, &mut buf).ok()?;
        Some((pid, crate::threads::parent_in_stat(&buf)?))
    })
    .collect()
}

/// The descendants of `pid` (children, their children, ...), parents
/// before their children.
pub fn descendants(pid: u32) -> Vec<u32> {
    let all = processes();
    let mut found = vec![pid];
    let mut k = 0;
    while k < found.len() {
        let parent = found[k];
        let mut children: Vec<u32> = all.iter().filter(|&&(_, pp)| pp == parent).map(|&(p, _)| p).collect();
        children.sort_unstable();
        found.extend(children);
        k += 1;
    }
    found.remove(0);
    found
}

/// The processes whose executable is the file at `path` (same device and
/// inode), in pid order; relive itself is not one of them.
pub fn running(path: &Path) -> std::io::Result<Vec<u32>> {
    let meta = std::fs::metadata(path)?;
    let me = std::process::id();
    let mut pids: Vec<u32> = processes()
        .into_iter()
        .map(|(p, _)| p)
        .filter(|&p| p != me && same_file(p, meta.dev(), meta.ino()))
        .collect();
    pids.sort_unstable();
    Ok(pids)
}

/// Whether processes `a` and `b` run the same executable file.
pub fn same_program(a: u32, b: u32) -> bool {
    std::fs::metadata(format!("/proc/{a}/exe")).is_ok_and(|m| same_file(b, m.dev(), m.ino()))
}

/// Whether process `pid`'s executable is the file `(dev, ino)`.
pub fn same_file(pid: u32, dev: u64, ino: u64) -> bool {
    std::fs::metadata(format!("/proc/{pid}/exe")).is_ok_and(|m| m.dev() == dev && m.ino() == ino)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A worker whose name is not UTF-8 (its command name comes from the
    /// file it was started as) is a descendant like any other: reading its
    /// `stat` as text failed, and it was left out (not patched with its
    /// parent).
    #[test]
    fn a_child_named_in_bytes_that_are_not_utf8_is_a_descendant() {
        use std::os::unix::ffi::OsStrExt;
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join(std::ffi::OsStr::from_bytes(b"\xffsleep"));
        let sleep = ["/bin/sleep", "/usr/bin/sleep"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .unwrap();
        std::os::unix::fs::symlink(sleep, &link).unwrap();
        let mut child = std::process::Command::new(&link).arg("5").spawn().unwrap();
        let pid = child.id();
        let stat = std::fs::read(format!("/proc/{pid}/stat")).unwrap();
        assert!(std::str::from_utf8(&stat).is_err(), "the name is not UTF-8");
        assert!(descendants(std::process::id()).contains(&pid));
        child.kill().unwrap();
        child.wait().unwrap();
    }

    #[test]
    fn a_child_is_a_descendant_and_runs_its_file() {
        let mut child = std::process::Command::new("sleep").arg("5").spawn().unwrap();
        let pid = child.id();
        assert!(descendants(std::process::id()).contains(&pid));
        let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
        assert!(running(&exe).unwrap().contains(&pid));
        assert!(!running(&exe).unwrap().contains(&std::process::id()));
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(!descendants(std::process::id()).contains(&pid));
    }
}
