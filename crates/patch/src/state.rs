//! Where relive keeps what it did to processes, and who may act on one.
//!
//! The journal of a process is the shared truth every relive command acts
//! on; this module makes it trustworthy:
//! - **A directory no one else can write.** The journal records the bytes
//!   `revert` writes back into a process: whoever can change it can run code
//!   in the process. The directory is created with mode 0700 and checked
//!   before every use (a directory, not a symlink, owned by this user, not
//!   writable by group or others); journals are 0600 and checked alike.
//! - **One transaction at a time.** Every command that changes a process
//!   holds `PID-START.lock` (an advisory `flock`) while it re-reads the
//!   journal, writes memory and saves the journal. Two `relive patch` on one
//!   pid take turns instead of taking the same pool bytes. The kernel drops
//!   the lock of a killed relive, so it never blocks later commands.
//! - **One owner per process.** `relive run`/`watch` hold `PID-START.owner`
//!   for their whole session, with their pid in it: a second watcher is
//!   refused naming the first. One-shot commands (`patch`, `revert`,
//!   `status`) work beside an owner under the transaction lock; the owner
//!   re-reads the journal at its next reload and sees what they did.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::error::{PatchError, Result};

/// `O_NOFOLLOW` (Linux): a symbolic link planted in its place is not
/// followed.
const O_NOFOLLOW: i32 = 0o400000;

/// Group- and other-write bits.
const OTHERS_WRITE: u32 = 0o022;

/// The user relive runs as (the owner of its own `/proc/self`).
fn our_uid() -> u32 {
    std::fs::metadata("/proc/self").map_or(0, |m| m.uid())
}

/// The per-user state directory: `$RELIVE_STATE_DIR`, else
/// `$XDG_RUNTIME_DIR/relive`, else `/tmp/relive-UID`. Not checked: see
/// [`StateDir::open`].
pub fn default_path() -> PathBuf {
    // Set but empty counts as unset, as shells treat `VAR=`.
    let set = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(dir) = set("RELIVE_STATE_DIR") {
        return PathBuf::from(dir);
    }
    if let Some(dir) = set("XDG_RUNTIME_DIR") {
        return PathBuf::from(dir).join("relive");
    }
    PathBuf::from(format!("/tmp/relive-{}", our_uid()))
}

/// One version of a file: its identity, size and change times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

/// A state directory checked to be this user's alone.
#[derive(Debug, Clone)]
pub struct StateDir {
    path: PathBuf,
}

fn unsafe_state(path: &Path, why: String) -> PatchError {
    PatchError::UnsafeState {
        path: path.display().to_string(),
        why,
    }
}

/// Refuses a path another user could have put there or can change.
fn check_owned(path: &Path, meta: &std::fs::Metadata, what: &str) -> Result<()> {
    if meta.file_type().is_symlink() {
        return Err(unsafe_state(path, format!("it is a symbolic link, not a {what}")));
    }
    let uid = our_uid();
    if meta.uid() != uid {
        return Err(unsafe_state(
            path,
            format!("it belongs to uid {} and relive runs as uid {uid}", meta.uid()),
        ));
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & OTHERS_WRITE != 0 {
        return Err(unsafe_state(
            path,
            format!("its mode {mode:04o} lets other users write it"),
        ));
    }
    Ok(())
}

impl StateDir {
    /// The default directory ([`default_path`]), created if missing.
    pub fn open() -> Result<StateDir> {
        StateDir::at(default_path())
    }

    /// `path`, created with mode 0700 if missing, then checked: a
    /// directory (not a symlink) owned by this user that nobody else can
    /// write. Refused otherwise, naming the path and the reason.
    pub fn at(path: impl Into<PathBuf>) -> Result<StateDir> {
        let path = path.into();
        if std::fs::symlink_metadata(&path).is_err() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&path)
                .map_err(|source| PatchError::Io {
                    path: path.display().to_string(),
                    cause: source,
                })?;
        }
        let meta = std::fs::symlink_metadata(&path).map_err(|source| PatchError::Io {
            path: path.display().to_string(),
            cause: source,
        })?;
        check_owned(&path, &meta, "directory")?;
        if !meta.is_dir() {
            return Err(unsafe_state(&path, "it is not a directory".into()));
        }
        Ok(StateDir { path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads a file of this directory that relive wrote: refused when it
    /// is a symlink, another user's or writable by others (someone else
    /// put it there or changed it). `None` when it does not exist.
    /// Opens `name` for reading, with the checks of [`StateDir::read_private`]:
    /// for files read in part (a symbol file's section headers).
    pub fn open_private(&self, name: &str) -> Result<Option<std::fs::File>> {
        let path = self.path.join(name);
        let io = |cause| PatchError::Io {
            path: path.display().to_string(),
            cause,
        };
        let meta = match std::fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(e)),
        };
        check_owned(&path, &meta, "file")?;
        match std::fs::File::open(&path) {
            Ok(file) => Ok(Some(file)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(e)),
        }
    }

    pub fn read_private(&self, name: &str) -> Result<Option<Vec<u8>>> {
        let path = self.path.join(name);
        let meta = match std::fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(PatchError::Io {
                    path: path.display().to_string(),
                    cause: source,
                })
            }
        };
        check_owned(&path, &meta, "file")?;
        match std::fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            // Removed since it was looked at: another relive finished the
            // change it recorded (an intent) or left nothing to keep.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(PatchError::Io {
                path: path.display().to_string(),
                cause: source,
            }),
        }
    }

    /// The last `len` bytes of `name` (all of it when it is no longer),
    /// and whether that is the whole file; `None` when there is none. The
    /// same checks as [`StateDir::read_private`].
    pub fn read_private_tail(&self, name: &str, len: u64) -> Result<Option<(Vec<u8>, bool)>> {
        use std::io::{Read, Seek, SeekFrom};
        let path = self.path.join(name);
        let io = |source| PatchError::Io {
            path: path.display().to_string(),
            cause: source,
        };
        let meta = match std::fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(io(source)),
        };
        check_owned(&path, &meta, "file")?;
        let mut file = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(io(source)),
        };
        let size = file.metadata().map_err(io)?.len();
        let from = size.saturating_sub(len);
        file.seek(SeekFrom::Start(from)).map_err(io)?;
        let mut bytes = Vec::with_capacity((size - from) as usize);
        file.read_to_end(&mut bytes).map_err(io)?;
        Ok(Some((bytes, from == 0)))
    }

    /// Writes `name` atomically with mode 0600: a private temporary file
    /// renamed over the old one.
    pub fn write_private(&self, name: &str, bytes: &[u8]) -> Result<()> {
        let path = self.path.join(name);
        let io = |source| PatchError::Io {
            path: path.display().to_string(),
            cause: source,
        };
        let tmp = self.path.join(format!(".{name}.{}.tmp", std::process::id()));
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io)?;
        // No fsync: the journal describes a process that does not outlive
        // the machine; the rename alone keeps it whole if relive dies.
        file.write_all(bytes).map_err(io)?;
        std::fs::rename(&tmp, &path).map_err(io)
    }

    /// Appends `bytes` to `name` (created with mode 0600; an existing file
    /// must be the user's own and private, like every file read here).
    /// Returns the file's size afterwards.
    pub fn append_private(&self, name: &str, bytes: &[u8]) -> Result<u64> {
        let path = self.path.join(name);
        let io = |source| PatchError::Io {
            path: path.display().to_string(),
            cause: source,
        };
        let mut file = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .custom_flags(O_NOFOLLOW)
            .open(&path)
            .map_err(io)?;
        check_owned(&path, &file.metadata().map_err(io)?, "file")?;
        file.write_all(bytes).map_err(io)?;
        Ok(file.metadata().map_err(io)?.len())
    }

    /// What identifies the present version of `name` (`None`: there is
    /// none): an append or a rename over it changes it. Lets a relive
    /// that saved or read a file tell, with one `stat`, that nobody wrote
    /// it since.
    pub fn stamp(&self, name: &str) -> Option<Stamp> {
        let meta = std::fs::symlink_metadata(self.path.join(name)).ok()?;
        Some(Stamp {
            dev: meta.dev(),
            ino: meta.ino(),
            len: meta.len(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        })
    }

    /// Removes `name` if it exists.
    pub fn remove(&self, name: &str) -> Result<()> {
        let path = self.path.join(name);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(PatchError::Io {
                path: path.display().to_string(),
                cause: e,
            }),
            _ => Ok(()),
        }
    }

    /// Removes the journals and lock files of processes that are gone
    /// (`alive(pid, start_time)` says which are not: the pid is free, or
    /// reused by a process that started at another time). Returns how many
    /// files went. Nothing else in the directory is touched.
    pub fn clean_stale(&self, alive: &dyn Fn(u32, u64) -> bool) -> usize {
        let Ok(entries) = std::fs::read_dir(&self.path) else {
            return 0;
        };
        let mut removed = 0;
        // One answer per process: a long session leaves one symbol file
        // per patch, and asking the kernel about the same process for each
        // of a thousand files was a fifth of a patch's work.
        let mut known: foldhash::HashMap<(u32, u64), bool> = Default::default();
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            // A killed relive's temporary file: `.PID-START.json.N.tmp`.
            let name = match name.strip_prefix('.').and_then(|n| n.strip_suffix(".tmp")) {
                Some(inner) => inner.rsplit_once('.').map_or(inner, |(file, _)| file),
                None => name,
            };
            let Some((stem, kind)) = name.rsplit_once('.') else {
                continue;
            };
            if !matches!(kind, "json" | "lock" | "owner" | "intent" | "history" | "sym" | "gdb") {
                continue;
            }
            // A patch's symbol file: `PID-START.CHANGE-UNIT.sym`.
            let stem = stem.split('.').next().unwrap_or(stem);
            let Some((pid, start)) = stem.split_once('-') else {
                continue;
            };
            let (Ok(pid), Ok(start)) = (pid.parse::<u32>(), start.parse::<u64>()) else {
                continue;
            };
            let alive = *known.entry((pid, start)).or_insert_with(|| alive(pid, start));
            if !alive && std::fs::remove_file(entry.path()).is_ok() {
                removed += 1;
            }
        }
        removed
    }

    fn lock_file(&self, name: &str) -> Result<(PathBuf, File)> {
        let path = self.path.join(name);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(|source| PatchError::Io {
                path: path.display().to_string(),
                cause: source,
            })?;
        let meta = file.metadata().map_err(|source| PatchError::Io {
            path: path.display().to_string(),
            cause: source,
        })?;
        check_owned(&path, &meta, "file")?;
        Ok((path, file))
    }

    /// Takes the transaction lock of process `pid` started at
    /// `start_time`, waiting for another relive's transaction to end.
    pub fn transaction(&self, pid: u32, start_time: u64) -> Result<TransactionLock> {
        let (path, file) = self.lock_file(&format!("{pid}-{start_time}.lock"))?;
        file.lock().map_err(|source| PatchError::Io {
            path: path.display().to_string(),
            cause: source,
        })?;
        Ok(TransactionLock { _file: file })
    }

    /// Makes this relive the owner of process `pid` (a `run`/`watch`
    /// session) until the returned value is dropped. Refused, naming the
    /// owner, when another relive owns it.
    pub fn own(&self, pid: u32, start_time: u64, command: &str) -> Result<Ownership> {
        let (path, mut file) = self.lock_file(&format!("{pid}-{start_time}.owner"))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                let owner = text.trim();
                return Err(PatchError::Owned {
                    pid,
                    owner: if owner.is_empty() {
                        "another relive".into()
                    } else {
                        owner.to_string()
                    },
                });
            }
            Err(std::fs::TryLockError::Error(source)) => {
                return Err(PatchError::Io {
                    path: path.display().to_string(),
                    cause: source,
                })
            }
        }
        let text = format!("relive pid {} (`relive {command}`)", std::process::id());
        let written = file.set_len(0).and_then(|()| file.write_all(text.as_bytes()));
        written.map_err(|source| PatchError::Io {
            path: path.display().to_string(),
            cause: source,
        })?;
        Ok(Ownership { _file: file })
    }
}

/// Held while one command changes a process; released on drop (or by the
/// kernel when relive dies).
#[derive(Debug)]
pub struct TransactionLock {
    _file: File,
}

/// Held by a `run`/`watch` session for its whole life.
#[derive(Debug)]
pub struct Ownership {
    _file: File,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_others_can_write_is_refused() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("state");
        let state = StateDir::at(&dir).unwrap();
        assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);
        state.write_private("x.json", b"{}").unwrap();
        assert_eq!(
            std::fs::metadata(dir.join("x.json")).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(state.read_private("x.json").unwrap().unwrap(), b"{}");

        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = StateDir::at(&dir).unwrap_err().to_string();
        assert!(
            err.contains(&dir.display().to_string()) && err.contains("0777"),
            "{err}"
        );
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();

        let file = dir.join("x.json");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o666)).unwrap();
        let err = state.read_private("x.json").unwrap_err().to_string();
        assert!(err.contains("x.json") && err.contains("0666"), "{err}");

        let link = root.path().join("link");
        std::os::unix::fs::symlink(&dir, &link).unwrap();
        let err = StateDir::at(&link).unwrap_err().to_string();
        assert!(err.contains("symbolic link"), "{err}");
    }

    #[test]
    fn one_owner_and_transactions_in_turn() {
        let root = tempfile::tempdir().unwrap();
        let state = StateDir::at(root.path().join("s")).unwrap();
        let owner = state.own(42, 7, "watch").unwrap();
        let err = state.own(42, 7, "run").unwrap_err().to_string();
        assert!(err.contains(&format!("relive pid {}", std::process::id())), "{err}");
        assert!(err.contains("relive watch"), "{err}");
        drop(owner);
        // Released once no descriptor of the lock file is left: another
        // test's thread forking a compiler at that moment holds a copy in
        // its child until the child's exec closes it (seen once in CI).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        let _again = loop {
            match state.own(42, 7, "run") {
                Ok(again) => break again,
                Err(e) if std::time::Instant::now() > deadline => panic!("still owned after the owner dropped: {e}"),
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(5)),
            }
        };

        let first = state.transaction(42, 7).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let s2 = state.clone();
        let waiter = std::thread::spawn(move || {
            let _second = s2.transaction(42, 7).unwrap();
            tx.send(()).unwrap();
        });
        assert!(rx.recv_timeout(std::time::Duration::from_millis(200)).is_err());
        drop(first);
        rx.recv_timeout(std::time::Duration::from_secs(10)).unwrap();
        waiter.join().unwrap();
    }

    #[test]
    fn journals_of_gone_processes_are_removed() {
        let root = tempfile::tempdir().unwrap();
        let dir = StateDir::at(root.path().join("state")).unwrap();
        for name in [
            "10-5.json",
            "10-5.lock",
            "10-5.owner",
            ".10-5.json.999.tmp",
            "11-7.json",
            "11-8.json",
            "notes.txt",
            "12-x.json",
        ] {
            dir.write_private(name, b"{}").unwrap();
        }
        // Process 11 started at time 7 is alive; everything else is gone.
        let removed = dir.clean_stale(&|pid, start| pid == 11 && start == 7);
        assert_eq!(removed, 5);
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, ["11-7.json", "12-x.json", "notes.txt"]);
    }

    #[test]
    fn each_process_is_asked_about_once() {
        let root = tempfile::tempdir().unwrap();
        let dir = StateDir::at(root.path().join("state")).unwrap();
        dir.write_private("20-3.json", b"{}").unwrap();
        for k in 0..50 {
            dir.write_private(&format!("20-3.{k}-0.sym"), b"").unwrap();
        }
        let asked = std::cell::Cell::new(0);
        let removed = dir.clean_stale(&|_, _| {
            asked.set(asked.get() + 1);
            true
        });
        assert_eq!((removed, asked.get()), (0, 1));
    }
}
