//! The reload loop: file events from `notify`, debounced and coalesced,
//! each changed file reloaded in turn. Events that arrive during a compile
//! wait in the channel and trigger another round, so the last edit always
//! wins and none is lost.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use notify::event::{AccessKind, AccessMode, ModifyKind};
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};

use crate::compdb::absolute;

use crate::{ReloadError, ReloadEvent, Reloader};

/// How often the loop checks whether the program is still there.
const POLL: Duration = Duration::from_millis(50);

/// The longest a burst of edits is coalesced before compiling.
const MAX_COALESCE: Duration = Duration::from_millis(500);

/// How long the files must be quiet before a burst of edits is compiled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Debounce {
    /// After a write that more of the same save may follow.
    pub partial: Duration,
    /// Once every changed file was closed after writing or renamed into
    /// place (a save is complete): only long enough to catch files saved
    /// together.
    pub complete: Duration,
}

impl Debounce {
    /// relive's default: 10 ms while a file may still be written, 2 ms
    /// after complete saves (the fixed 10 ms was most of what relive added
    /// to a compile between a save and the new code running).
    pub const ADAPTIVE: Debounce = Debounce {
        partial: Duration::from_millis(10),
        complete: Duration::from_millis(2),
    };

    /// The same quiet whatever the events (`--debounce-ms`).
    pub fn fixed(quiet: Duration) -> Debounce {
        Debounce {
            partial: quiet,
            complete: quiet,
        }
    }
}

/// Why watching ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The program exited with this status (or signal, as 128 + n).
    Exited(i32),
}

/// Reloads each of `files` that changes into the process behind
/// `reloader`, calling `report` with the reloads of each burst of saves. `events` was created
/// before the baselines were compiled, so an edit saved meanwhile is
/// waiting in it; the headers the baselines include are added to it here.
/// `ready` is called once the watches are in place, with the files saved
/// while the baselines compiled (reloaded first: their compile may take a
/// while, and the user should know one is coming); `exited` is asked
/// between events whether the program has ended.
///
/// Headers become known only from the baseline compiles: one saved since
/// `since` (when they started) is taken as changed.
#[allow(clippy::too_many_arguments)]
pub fn watch(
    reloader: &mut Reloader,
    events: &mut FileEvents,
    files: &[PathBuf],
    since: std::time::SystemTime,
    debounce: Debounce,
    ready: impl FnOnce(&[PathBuf]),
    mut exited: impl FnMut() -> Option<i32>,
    mut report: impl FnMut(&[ReloadEvent]),
) -> Result<Ended, ReloadError> {
    let sources: BTreeSet<PathBuf> = files.iter().map(|f| absolute(f)).collect();
    let headers = reloader.headers();
    events.add(sources.iter().cloned().chain(headers.iter().cloned()))?;
    let mut pending: BTreeSet<PathBuf> = headers
        .into_iter()
        .filter(|h| {
            std::fs::metadata(h)
                .and_then(|m| m.modified())
                .is_ok_and(|m| m >= since)
        })
        .collect();
    if let Some(saved) = events.next(Duration::ZERO, debounce)? {
        pending.extend(saved);
    }
    ready(&pending.iter().cloned().collect::<Vec<_>>());
    loop {
        if let Some(code) = exited() {
            return Ok(Ended::Exited(code));
        }
        let changed = if pending.is_empty() {
            match events.next(POLL, debounce)? {
                Some(changed) => changed,
                None => continue,
            }
        } else {
            std::mem::take(&mut pending)
        };
        // A changed header reloads every unit that includes it.
        let mut units = BTreeSet::new();
        for path in changed {
            if sources.contains(&path) {
                units.insert(path.clone());
            }
            units.extend(reloader.dependents(&path));
        }
        // Files saved together (or the includers of a header) compile at
        // once, one job per core, each once.
        let units: Vec<PathBuf> = units.into_iter().collect();
        let jobs = std::thread::available_parallelism().map_or(1, |n| n.get());
        report(&reloader.reload_all(&units, jobs)?);
    }
}

/// Changes to a set of files. The files' directories are watched, not
/// the files (editors and `relive smf pack` save by renaming a new file
/// over the old one), and only events for the files themselves pass.
pub struct FileEvents {
    /// Each event's file, and whether it completes a save (the file was
    /// closed after writing, or created or renamed into place).
    rx: Receiver<(PathBuf, bool)>,
    watcher: RecommendedWatcher,
    /// The files whose events pass, by their real path (the watched
    /// directory's, joined with the name), with the name to report them by
    /// (shared with the watcher's thread).
    wanted: Arc<Mutex<BTreeMap<PathBuf, PathBuf>>>,
    /// The directories watched.
    dirs: BTreeSet<PathBuf>,
}

impl FileEvents {
    pub fn new(files: impl IntoIterator<Item = PathBuf>) -> notify::Result<FileEvents> {
        let (tx, rx) = channel::<(PathBuf, bool)>();
        // Only the watched files pass: other files in the same directories
        // (a log the program writes next to its sources) are no reason to
        // wait.
        let wanted: Arc<Mutex<BTreeMap<PathBuf, PathBuf>>> = Arc::default();
        let pass = wanted.clone();
        let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            let Ok(event) = event else { return };
            let Some(complete) = completes_save(&event.kind) else {
                return;
            };
            let pass = pass.lock().unwrap_or_else(|e| e.into_inner());
            for path in &event.paths {
                if let Some(named) = pass.get(path) {
                    let _ = tx.send((named.clone(), complete));
                }
            }
        })?;
        let mut events = FileEvents {
            rx,
            watcher,
            wanted,
            dirs: BTreeSet::new(),
        };
        events.add(files)?;
        Ok(events)
    }

    /// Watches `files` too.
    ///
    /// Each directory is watched once, by its real path: the kernel has
    /// one watch per directory, and a second spelling of it (a header
    /// included as `lib/compress/../common/x.h`, a symlink) would take
    /// that watch over, so events for the files named the first way
    /// stopped matching (every save in zstd's `lib/common` was lost).
    /// Events are reported with each file's own normalized name.
    pub fn add(&mut self, files: impl IntoIterator<Item = PathBuf>) -> notify::Result<()> {
        let mut wanted = self.wanted.lock().unwrap_or_else(|e| e.into_inner());
        for file in files {
            let named = absolute(&file);
            let (Some(dir), Some(name)) = (named.parent(), named.file_name()) else {
                continue;
            };
            let real_dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
            if self.dirs.insert(real_dir.clone()) {
                self.watcher.watch(&real_dir, RecursiveMode::NonRecursive)?;
            }
            wanted.insert(real_dir.join(name), named);
        }
        Ok(())
    }

    /// The files changed in the next burst of edits: waits up to `poll`
    /// for a first change (`None` if there is none), then keeps collecting
    /// until the files have been quiet for `debounce` (its `complete`
    /// quiet once every changed file's last event completed a save), but
    /// at most 500 ms (a file rewritten non-stop still gets handled).
    pub fn next(&self, poll: Duration, debounce: Debounce) -> notify::Result<Option<BTreeSet<PathBuf>>> {
        let first = match self.rx.recv_timeout(poll) {
            Ok(event) => event,
            Err(RecvTimeoutError::Timeout) => return Ok(None),
            Err(RecvTimeoutError::Disconnected) => return Err(notify::Error::generic("the watcher stopped")),
        };
        let started = Instant::now();
        // Each changed file, and whether its last event completed a save.
        let mut changed = std::collections::BTreeMap::from([first]);
        let quiet = |changed: &std::collections::BTreeMap<PathBuf, bool>| {
            if changed.values().all(|&complete| complete) {
                debounce.complete
            } else {
                debounce.partial
            }
        };
        let mut quiet_from = started + quiet(&changed);
        loop {
            let now = Instant::now();
            if now >= quiet_from || now >= started + MAX_COALESCE {
                return Ok(Some(changed.into_keys().collect()));
            }
            match self.rx.recv_timeout(quiet_from - now) {
                Ok((path, complete)) => {
                    changed.insert(path, complete);
                    quiet_from = Instant::now() + quiet(&changed);
                }
                Err(_) => return Ok(Some(changed.into_keys().collect())),
            }
        }
    }
}

/// Whether an event of `kind` ends a save of its file (`Some(true)`:
/// closed after writing, created, renamed into place), may be followed by
/// more of it (`Some(false)`: a write), or is no change (`None`: a read).
fn completes_save(kind: &EventKind) -> Option<bool> {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write))
        | EventKind::Create(_)
        | EventKind::Modify(ModifyKind::Name(_)) => Some(true),
        EventKind::Modify(_) => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use notify::event::{CreateKind, DataChange, RenameMode};

    use super::*;

    #[test]
    fn saves_are_complete_when_closed_or_renamed_into_place() {
        let close = EventKind::Access(AccessKind::Close(AccessMode::Write));
        assert_eq!(completes_save(&close), Some(true));
        assert_eq!(completes_save(&EventKind::Create(CreateKind::File)), Some(true));
        let rename = EventKind::Modify(ModifyKind::Name(RenameMode::To));
        assert_eq!(completes_save(&rename), Some(true));
        let write = EventKind::Modify(ModifyKind::Data(DataChange::Content));
        assert_eq!(completes_save(&write), Some(false));
        let read = EventKind::Access(AccessKind::Close(AccessMode::Read));
        assert_eq!(completes_save(&read), None);
    }

    /// A file written and closed is seen as one complete save: the burst
    /// ends after the short quiet, and the file is in it.
    #[test]
    fn a_written_file_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.c");
        std::fs::write(&file, "int a;\n").unwrap();
        let events = FileEvents::new([file.clone()]).unwrap();
        std::fs::write(&file, "int a = 1;\n").unwrap();
        let burst = events
            .next(Duration::from_secs(5), Debounce::ADAPTIVE)
            .unwrap()
            .expect("a change");
        assert!(burst.contains(&absolute(&file)), "{burst:?}");
    }

    /// A directory named a second way (a header a file includes as
    /// `../common/x.h`, found from `lib/compress`) is still the one watch:
    /// saves of the files named the first way are reported (zstd's
    /// `lib/common` edits were lost), by the name they were given.
    #[test]
    fn a_directory_named_two_ways_still_reports_its_files() {
        let dir = tempfile::tempdir().unwrap();
        let (common, compress) = (dir.path().join("lib/common"), dir.path().join("lib/compress"));
        std::fs::create_dir_all(&common).unwrap();
        std::fs::create_dir_all(&compress).unwrap();
        let (a, b, h) = (common.join("a.c"), compress.join("b.c"), common.join("x.h"));
        for f in [&a, &b, &h] {
            std::fs::write(f, "int a;\n").unwrap();
        }
        let mut events = FileEvents::new([a.clone(), b.clone()]).unwrap();
        // As gcc's depfiles name them: from `lib/common/pool.c` and from
        // `lib/compress/hist.c`.
        events
            .add([common.join("../common/x.h"), compress.join("../common/x.h")])
            .unwrap();
        for (file, said) in [(&a, absolute(&a)), (&h, absolute(&h))] {
            std::fs::write(file, "int a = 1;\n").unwrap();
            let burst = events
                .next(Duration::from_secs(5), Debounce::ADAPTIVE)
                .unwrap()
                .unwrap_or_else(|| panic!("no event for {}", file.display()));
            assert_eq!(burst, BTreeSet::from([said]));
        }
    }
}
