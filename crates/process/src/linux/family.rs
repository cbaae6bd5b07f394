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

/// The processes (other than relive) that have the file at `path` open
/// for writing, each with its command name: a save still being written
/// by a writer that pauses (`relive run` waits for it to close the file,
/// or it compiles a half-written text). Processes whose descriptors
/// relive may not read are not seen.
pub fn writers(path: &Path) -> Vec<(u32, String)> {
    let Ok(meta) = std::fs::metadata(path) else {
        return Vec::new();
    };
    let me = std::process::id();
    let mut found: Vec<(u32, String)> = processes()
        .into_iter()
        .map(|(p, _)| p)
        .filter(|&p| p != me && writes(p, meta.dev(), meta.ino()))
        .map(|p| {
            let name = crate::procfs::read_lossy(format!("/proc/{p}/comm")).unwrap_or_default();
            (p, name.trim_end().to_string())
        })
        .collect();
    found.sort_unstable();
    found
}

/// Whether process `pid` has a descriptor open for writing on the file
/// `(dev, ino)`: its `fd` entries, and the flags of those that name it.
fn writes(pid: u32, dev: u64, ino: u64) -> bool {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.filter_map(Result::ok).any(|fd| {
        // `metadata` follows the link to the open file itself.
        let same = std::fs::metadata(fd.path()).is_ok_and(|m| m.dev() == dev && m.ino() == ino);
        same && {
            let info = crate::procfs::read_lossy(format!("/proc/{pid}/fdinfo/{}", fd.file_name().to_string_lossy()));
            info.ok().is_some_and(|text| opened_for_writing(&text))
        }
    })
}

/// Whether an `fdinfo` text's `flags:` (octal) say `O_WRONLY` or `O_RDWR`.
fn opened_for_writing(fdinfo: &str) -> bool {
    fdinfo
        .lines()
        .find_map(|l| l.strip_prefix("flags:"))
        .and_then(|f| u32::from_str_radix(f.trim(), 8).ok())
        .is_some_and(|flags| flags & 0o3 != 0)
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

    /// A process holding a file open for writing is its writer until it
    /// closes it; one reading it is not.
    #[test]
    fn a_process_with_the_file_open_for_writing_is_a_writer() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.c");
        std::fs::write(&file, "int a;\n").unwrap();
        let hold = |redirect: &str| {
            std::process::Command::new("sh")
                .arg("-c")
                .arg(format!("exec sleep 30 {redirect} \"$0\"",))
                .arg(&file)
                .spawn()
                .unwrap()
        };
        let mut reader = hold("<");
        let mut writer = hold(">>");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let mut seen = writers(&file);
        while !seen.iter().any(|&(p, _)| p == writer.id()) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
            seen = writers(&file);
        }
        assert!(seen.contains(&(writer.id(), "sleep".to_string())), "{seen:?}");
        assert!(!seen.iter().any(|&(p, _)| p == reader.id()), "{seen:?}");
        writer.kill().unwrap();
        writer.wait().unwrap();
        assert!(!writers(&file).iter().any(|&(p, _)| p == writer.id()));
        reader.kill().unwrap();
        reader.wait().unwrap();
        assert!(opened_for_writing("pos:\t0\nflags:\t0100001\n"));
        assert!(!opened_for_writing("pos:\t0\nflags:\t0100000\n"));
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
