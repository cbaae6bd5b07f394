//! The reload loop: file events from `notify`, debounced and coalesced,
//! each changed file reloaded in turn. Events that arrive during a compile
//! wait in the channel and trigger another round, so the last edit always
//! wins and none is lost.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};

use crate::{ReloadError, ReloadEvent, Reloader};

/// How often the loop checks whether the program is still there.
const POLL: Duration = Duration::from_millis(50);

/// The longest a burst of edits is coalesced before compiling.
const MAX_COALESCE: Duration = Duration::from_millis(500);

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
/// `ready` is called once the watches are in place; `exited` is asked
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
    debounce: Duration,
    ready: impl FnOnce(),
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
    ready();
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
    rx: Receiver<PathBuf>,
    watcher: RecommendedWatcher,
    /// The files whose events pass (shared with the watcher's thread).
    wanted: Arc<Mutex<BTreeSet<PathBuf>>>,
    /// The directories watched.
    dirs: BTreeSet<PathBuf>,
}

impl FileEvents {
    pub fn new(files: impl IntoIterator<Item = PathBuf>) -> notify::Result<FileEvents> {
        let (tx, rx) = channel::<PathBuf>();
        // Only the watched files pass: other files in the same directories
        // (a log the program writes next to its sources) are no reason to
        // wait.
        let wanted: Arc<Mutex<BTreeSet<PathBuf>>> = Arc::default();
        let pass = wanted.clone();
        let watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            let Ok(event) = event else { return };
            if matches!(event.kind, EventKind::Modify(_) | EventKind::Create(_)) {
                let pass = pass.lock().unwrap_or_else(|e| e.into_inner());
                for path in event.paths.iter().map(|p| absolute(p)) {
                    if pass.contains(&path) {
                        let _ = tx.send(path);
                    }
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
    pub fn add(&mut self, files: impl IntoIterator<Item = PathBuf>) -> notify::Result<()> {
        let files: Vec<PathBuf> = files.into_iter().map(|f| absolute(&f)).collect();
        for dir in files.iter().filter_map(|f| f.parent()) {
            if self.dirs.insert(dir.to_path_buf()) {
                self.watcher.watch(dir, RecursiveMode::NonRecursive)?;
            }
        }
        self.wanted.lock().unwrap_or_else(|e| e.into_inner()).extend(files);
        Ok(())
    }

    /// The files changed in the next burst of edits: waits up to `poll`
    /// for a first change (`None` if there is none), then keeps collecting
    /// until the files have been quiet for `debounce`, but at most 500 ms
    /// (a file rewritten non-stop still gets handled).
    pub fn next(&self, poll: Duration, debounce: Duration) -> notify::Result<Option<BTreeSet<PathBuf>>> {
        let first = match self.rx.recv_timeout(poll) {
            Ok(path) => path,
            Err(RecvTimeoutError::Timeout) => return Ok(None),
            Err(RecvTimeoutError::Disconnected) => return Err(notify::Error::generic("the watcher stopped")),
        };
        let mut changed = BTreeSet::from([first]);
        let started = Instant::now();
        let mut quiet_from = started + debounce;
        loop {
            let now = Instant::now();
            if now >= quiet_from || now >= started + MAX_COALESCE {
                return Ok(Some(changed));
            }
            match self.rx.recv_timeout(quiet_from - now) {
                Ok(path) => {
                    changed.insert(path);
                    quiet_from = Instant::now() + debounce;
                }
                Err(_) => return Ok(Some(changed)),
            }
        }
    }
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}
