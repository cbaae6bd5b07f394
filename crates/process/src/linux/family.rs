//! Which processes belong together: a process and its descendants (a
//! prefork server's parent and workers), or every process running one
//! file. Read from `/proc`, one pass over its process directories.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::threads;

/// Every process directory in `/proc`, with its parent: `(pid, ppid)`.
fn processes() -> Vec<(u32, u32)> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|entry| {
        let pid: u32 = entry.ok()?.file_name().to_str()?.parse().ok()?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let ppid = threads::stat_fields(&stat)?.1.get(1)?.parse().ok()?;
        Some((pid, ppid))
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
