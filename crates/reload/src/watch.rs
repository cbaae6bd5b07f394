//! The reload loop: file events from `notify`, debounced and coalesced,
//! each changed file reloaded in turn. Events that arrive during a compile
//! wait in the channel and trigger another round, so the last edit always
//! wins and none is lost.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, TryRecvError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use notify::event::{AccessKind, AccessMode, ModifyKind};
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};

use crate::compdb::absolute;

use crate::{ReloadError, ReloadEvent, Reloader};

/// How often the loop checks whether the program is still there.
const POLL: Duration = Duration::from_millis(50);

/// How often a save held by another tracer looks whether it let go.
const TRACER_POLL: Duration = Duration::from_millis(100);

/// The longest a burst of edits is coalesced before compiling.
const MAX_COALESCE: Duration = Duration::from_millis(500);

/// The longest a burst is held for a file still open for writing (written,
/// not closed yet): a file rewritten non-stop still gets compiled.
const MAX_UNCLOSED: Duration = Duration::from_secs(2);

/// The longest a burst is held while another process still has one of
/// its files open for writing: a writer that pauses for seconds mid-save
/// (typing into `cat > file.c`, a slow generator) had its half-written
/// text compiled and patched, and its complete save was then diffed
/// against that (a QuickJS trial).
pub(crate) const MAX_WRITER_HOLD: Duration = Duration::from_secs(30);

/// Told of a file saved in part that other processes (pid, command name)
/// still have open for writing.
pub type WaitingFor<'a> = dyn FnMut(&Path, &[(u32, String)]) + 'a;

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
    /// relive's default: 2 ms after complete saves (the fixed 10 ms was
    /// most of what relive added to a compile between a save and the new
    /// code running; now nothing waits for the 2 ms: files saved while the
    /// first compiles join it, see [`watch`]), and while a file written is
    /// not closed yet, until it is, or for up to a second of quiet: a save
    /// written in two parts half a second apart was compiled half written,
    /// and the next reload, diffed against that, patched every function
    /// after the cut (a libuv trial). Editors close what they write, or
    /// rename it into place, at once.
    pub const ADAPTIVE: Debounce = Debounce {
        partial: Duration::from_secs(1),
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
    // Headers watched so far: one an edit starts to include is watched
    // from its compile on (its edits were lost, without a word: a libuv
    // trial's new server.h).
    let mut watched: BTreeSet<PathBuf> = headers.iter().cloned().collect();
    let mut pending: BTreeSet<PathBuf> = saved_since(&headers, since);
    if let Some(saved) = events.next(Duration::ZERO, debounce)? {
        pending.extend(saved);
    }
    ready(&pending.iter().cloned().collect::<Vec<_>>());
    let jobs = std::thread::available_parallelism().map_or(1, |n| n.get());
    // A changed header reloads every unit that includes it.
    let units_of = |changed: BTreeSet<PathBuf>, reloader: &Reloader| {
        let mut units = BTreeSet::new();
        for path in changed {
            if sources.contains(&path) {
                units.insert(path.clone());
            }
            units.extend(reloader.dependents(&path));
        }
        units.into_iter().collect::<Vec<PathBuf>>()
    };
    loop {
        if let Some(code) = exited() {
            return Ok(Ended::Exited(code));
        }
        let (changed, mut burst) = if pending.is_empty() {
            let mut waiting = |file: &Path, writers: &[(u32, String)]| report(&[ReloadEvent::waiting(file, writers)]);
            match events.burst_telling(POLL, debounce, &mut waiting)? {
                Some(burst) => (burst.files(), Some(burst)),
                None => {
                    let elsewhere = reloader.changes_elsewhere();
                    if !elsewhere.is_empty() {
                        report(&elsewhere);
                    }
                    continue;
                }
            }
        } else {
            (std::mem::take(&mut pending), None)
        };
        // Files saved together (or the includers of a header) compile at
        // once, one job per core, each once. A complete save compiles
        // without waiting for the quiet after it: files saved while it
        // compiles (or in the quiet, if that is longer) join the batch, and
        // all are patched as one transaction.
        // What the changed files said as their compiles began: one saved
        // again meanwhile compiles again only if its text changed (not for
        // a mere change of its metadata after the save).
        let texts: BTreeMap<PathBuf, Option<Vec<u8>>> =
            changed.iter().map(|f| (f.clone(), std::fs::read(f).ok())).collect();
        // A program that ends during a reload (killed while relive reads
        // or stops it) ends the session as its end, not as the reload's
        // error (half of a re-check's kills ended in "error: process …
        // exited while relive was reading its memory map", exit 1).
        let mut ended = |e: ReloadError| match exited() {
            Some(code) => Ok(Ended::Exited(code)),
            None => Err(e),
        };
        let compiles_started = std::time::SystemTime::now();
        let mut batch = match reloader.compile_batch(&units_of(changed, reloader), jobs) {
            Ok(batch) => batch,
            Err(e) => return ended(e),
        };
        if let Some(burst) = &mut burst {
            let saved: BTreeSet<PathBuf> = events
                .late(burst)?
                .into_iter()
                .filter(|f| texts.get(f).is_none_or(|before| std::fs::read(f).ok() != *before))
                .collect();
            let late = units_of(saved, reloader);
            if !late.is_empty() {
                if let Err(e) = reloader.join(&mut batch, &late, jobs) {
                    return ended(e);
                }
            }
        }
        let batch_files = batch.sources().to_vec();
        match reloader.patch_batch(batch) {
            Ok(events) => report(&events),
            // Another tracer (gdb, strace) holds the program: nothing was
            // written. Said, and patched once it lets go (the session
            // ended, and `relive run` took the program with it: a zstd
            // trial's save while gdb was attached).
            Err(ReloadError::Patch(relive_patch::PatchError::Process(relive_process::ProcessError::Traced {
                tracer,
                name,
                ..
            }))) => {
                let held: Vec<ReloadEvent> = batch_files
                    .iter()
                    .map(|f| ReloadEvent::held_by_tracer(f, tracer, &name))
                    .collect();
                report(&held);
                while relive_process::tracer_of(reloader.pid()).is_some() {
                    if let Some(code) = exited() {
                        return Ok(Ended::Exited(code));
                    }
                    std::thread::sleep(TRACER_POLL);
                }
                pending.extend(batch_files);
                continue;
            }
            Err(e) => return ended(e),
        }
        let new_headers: Vec<PathBuf> = reloader
            .headers()
            .into_iter()
            .filter(|h| !watched.contains(h))
            .collect();
        if !new_headers.is_empty() {
            events.add(new_headers.iter().cloned())?;
            // Saved after its first compile began, before it was watched:
            // what that compile read may be older.
            pending.extend(saved_since(&new_headers, compiles_started));
            watched.extend(new_headers);
        }
    }
}

/// Those of `files` modified at or after `since`.
fn saved_since(files: &[PathBuf], since: std::time::SystemTime) -> BTreeSet<PathBuf> {
    files
        .iter()
        .filter(|f| {
            std::fs::metadata(f)
                .and_then(|m| m.modified())
                .is_ok_and(|m| m >= since)
        })
        .cloned()
        .collect()
}

/// Changes to a set of files. The files' directories are watched, not
/// the files (editors and `relive smf pack` save by renaming a new file
/// over the old one), and only events for the files themselves pass.
pub struct FileEvents {
    /// Each event's file, whether it completes a save (the file was
    /// closed after writing, or created or renamed into place), and when
    /// the watcher saw it.
    rx: Receiver<Saved>,
    /// Events taken from `rx` that belong to a later burst.
    queued: VecDeque<Saved>,
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
        let (tx, rx) = channel::<Saved>();
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
                    let _ = tx.send(Saved {
                        file: named.clone(),
                        complete,
                        at: Instant::now(),
                    });
                }
            }
        })?;
        let mut events = FileEvents {
            rx,
            queued: VecDeque::new(),
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
    ///
    /// The files are wanted before their directories are watched, and the
    /// lock is let go first: the watcher's thread takes it for each event,
    /// and a watch request waits for that thread (held across the request,
    /// it deadlocked with an event arriving meanwhile: a C++ trial's
    /// `relive watch` hung at start and patched nothing).
    pub fn add(&mut self, files: impl IntoIterator<Item = PathBuf>) -> notify::Result<()> {
        let mut new_dirs = Vec::new();
        {
            let mut wanted = self.wanted.lock().unwrap_or_else(|e| e.into_inner());
            for file in files {
                let named = absolute(&file);
                let (Some(dir), Some(name)) = (named.parent(), named.file_name()) else {
                    continue;
                };
                let real_dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
                if self.dirs.insert(real_dir.clone()) {
                    new_dirs.push(real_dir.clone());
                }
                wanted.insert(real_dir.join(name), named);
            }
        }
        for dir in new_dirs {
            if let Err(e) = self.watcher.watch(&dir, RecursiveMode::NonRecursive) {
                self.dirs.remove(&dir);
                return Err(e);
            }
        }
        Ok(())
    }

    /// The files changed in the next burst of edits, once it is over:
    /// [`FileEvents::burst`], then [`FileEvents::late`] after its quiet.
    pub fn next(&mut self, poll: Duration, debounce: Debounce) -> notify::Result<Option<BTreeSet<PathBuf>>> {
        let Some(mut burst) = self.burst(poll, debounce)? else {
            return Ok(None);
        };
        self.late(&mut burst)?;
        Ok(Some(burst.files()))
    }

    /// The start of the next burst of edits: waits up to `poll` for a
    /// first change (`None` if there is none), then returns as soon as
    /// every changed file's last event completed a save. While one may
    /// still be written, it keeps collecting until the files have been
    /// quiet for `debounce.partial`, but at most 2 s (a file rewritten
    /// non-stop still gets handled). Files saved after that, while the
    /// burst's files compile, are [`FileEvents::late`]'s.
    pub fn burst(&mut self, poll: Duration, debounce: Debounce) -> notify::Result<Option<Burst>> {
        self.burst_telling(poll, debounce, &mut |_, _| {})
    }

    /// [`FileEvents::burst`], held on while another process still has a
    /// file of it open for writing once its quiet is over (up to 30 s
    /// from its first event): `waiting` is told each such file once, with
    /// its writers.
    pub fn burst_telling(
        &mut self,
        poll: Duration,
        debounce: Debounce,
        waiting: &mut WaitingFor,
    ) -> notify::Result<Option<Burst>> {
        let Some(first) = self.take_by(Instant::now() + poll, None)? else {
            return Ok(None);
        };
        let mut burst = Burst {
            started: first.at,
            open_until: first.at,
            files: BTreeMap::new(),
            debounce,
            held: false,
        };
        burst.take(first);
        let mut told = BTreeSet::new();
        while !burst.saved() {
            let deadline = burst.deadline();
            match self.take_by(deadline, Some(deadline))? {
                Some(event) => burst.take(event),
                None if burst.hold_for_writers(&mut told, waiting) => {}
                None => break,
            }
        }
        Ok(Some(burst))
    }

    /// The files saved since `burst` was returned, added to it: every save
    /// seen while its files compiled (they are not patched yet, so these
    /// go with them, as one transaction), and any within what is left of
    /// its quiet (each event in it prolongs the quiet, as
    /// [`FileEvents::burst`] says). A file of the burst saved again is
    /// among them: what compiled may be an earlier text. Later events stay
    /// for the next burst.
    ///
    /// Only the quiet counted at first: the second file of a "save all"
    /// reaches relive's watcher a few milliseconds after the first, later
    /// still while a compile keeps the cores busy, and was patched alone
    /// (refused, when the two files change a call and its callee together).
    pub fn late(&mut self, burst: &mut Burst) -> notify::Result<BTreeSet<PathBuf>> {
        let compiled = Instant::now();
        let mut joined = BTreeSet::new();
        loop {
            let deadline = burst.deadline().max(compiled);
            match self.take_by(deadline, Some(deadline))? {
                Some(event) => {
                    joined.insert(event.file.clone());
                    burst.take(event);
                }
                None => return Ok(joined),
            }
        }
    }

    /// The next event, waiting until `wait_until` at most; with `seen_by`,
    /// only one the watcher saw by then (a later one is kept for the next
    /// burst).
    fn take_by(&mut self, wait_until: Instant, seen_by: Option<Instant>) -> notify::Result<Option<Saved>> {
        let event = match self.queued.pop_front() {
            Some(event) => event,
            None => {
                let now = Instant::now();
                let received = if now >= wait_until {
                    self.rx.try_recv().map_err(|e| match e {
                        TryRecvError::Empty => RecvTimeoutError::Timeout,
                        TryRecvError::Disconnected => RecvTimeoutError::Disconnected,
                    })
                } else {
                    self.rx.recv_timeout(wait_until - now)
                };
                match received {
                    Ok(event) => event,
                    Err(RecvTimeoutError::Timeout) => return Ok(None),
                    Err(RecvTimeoutError::Disconnected) => return Err(notify::Error::generic("the watcher stopped")),
                }
            }
        };
        if seen_by.is_some_and(|by| event.at > by) {
            self.queued.push_front(event);
            return Ok(None);
        }
        Ok(Some(event))
    }
}

/// One event of a watched file.
#[derive(Debug)]
struct Saved {
    file: PathBuf,
    complete: bool,
    at: Instant,
}

/// A burst of edits: files changed close together (see
/// [`FileEvents::burst`]).
#[derive(Debug)]
pub struct Burst {
    /// Its first event.
    started: Instant,
    /// Until when a further event still belongs to it.
    open_until: Instant,
    /// Each changed file, and whether its last event completed a save.
    files: BTreeMap<PathBuf, bool>,
    debounce: Debounce,
    /// Held for a writer that still has a file open (see
    /// [`Burst::hold_for_writers`]).
    held: bool,
}

impl Burst {
    /// Its files.
    pub fn files(&self) -> BTreeSet<PathBuf> {
        self.files.keys().cloned().collect()
    }

    /// Whether every file's save is complete.
    fn saved(&self) -> bool {
        self.files.values().all(|&complete| complete)
    }

    /// Until when an event still joins it: the quiet after its last
    /// event, but at most 500 ms after its first (2 s while a file is
    /// still open for writing).
    fn deadline(&self) -> Instant {
        let longest = match (self.saved(), self.held) {
            (true, _) => MAX_COALESCE,
            (false, true) => MAX_WRITER_HOLD,
            (false, false) => MAX_UNCLOSED,
        };
        self.open_until.min(self.started + longest)
    }

    /// Once its quiet is over with a file not closed after writing:
    /// whether another process still has one of those open for writing,
    /// and the burst is held for another quiet (up to [`MAX_WRITER_HOLD`]
    /// from its first event). `waiting` is told each such file once
    /// (`told` keeps which).
    fn hold_for_writers(&mut self, told: &mut BTreeSet<PathBuf>, waiting: &mut WaitingFor) -> bool {
        let now = Instant::now();
        if now >= self.started + MAX_WRITER_HOLD {
            return false;
        }
        let mut held = false;
        for (file, _) in self.files.iter().filter(|(_, &complete)| !complete) {
            let writers = relive_process::writers(file);
            if writers.is_empty() {
                continue;
            }
            held = true;
            if told.insert(file.clone()) {
                waiting(file, &writers);
            }
        }
        if held {
            self.held = true;
            // Looked at again after another quiet (not more often than
            // four times a second, whatever `--debounce-ms` says).
            self.open_until = now + self.debounce.partial.max(Duration::from_millis(250));
        }
        held
    }

    fn take(&mut self, event: Saved) {
        self.files.insert(event.file, event.complete);
        let quiet = if self.saved() {
            self.debounce.complete
        } else {
            self.debounce.partial
        };
        // The latest event decides: a file closed after its writes needs
        // only the short quiet.
        self.open_until = event.at + quiet;
    }
}

/// Whether an event of `kind` ends a save of its file (`Some(true)`:
/// closed after writing, created, renamed into place), may be followed by
/// more of it (`Some(false)`: a write), or is no change (`None`: a read).
fn completes_save(kind: &EventKind) -> Option<bool> {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write))
        | EventKind::Create(_)
        | EventKind::Modify(ModifyKind::Name(_))
        // `touch`: no write follows.
        | EventKind::Modify(ModifyKind::Metadata(_)) => Some(true),
        EventKind::Modify(_) => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use notify::event::{CreateKind, DataChange, RenameMode};

    use super::*;

    /// Found by a C++ trial: `relive watch` hung at start, before
    /// "watching", and no save was ever patched. Adding files took the
    /// lock the watcher's thread takes for each event and then asked that
    /// thread to watch a directory, while the thread waited for the lock.
    #[test]
    fn files_are_added_while_events_arrive() {
        let busy = tempfile::tempdir().unwrap();
        let noisy = busy.path().join("noisy.c");
        std::fs::write(&noisy, "x").unwrap();
        let mut events = FileEvents::new([noisy.clone()]).unwrap();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writer = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let _ = std::fs::write(&noisy, "y");
                }
            })
        };
        let (done, finished) = std::sync::mpsc::channel();
        let adder = std::thread::spawn(move || {
            let dirs: Vec<tempfile::TempDir> = (0..300).map(|_| tempfile::tempdir().unwrap()).collect();
            for dir in &dirs {
                events.add([dir.path().join("a.c")]).unwrap();
            }
            let _ = done.send(());
        });
        let added = finished.recv_timeout(Duration::from_secs(30));
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        writer.join().unwrap();
        assert!(added.is_ok(), "adding files deadlocked with the watcher's thread");
        adder.join().unwrap();
    }

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
        let mut events = FileEvents::new([file.clone()]).unwrap();
        std::fs::write(&file, "int a = 1;\n").unwrap();
        let burst = events
            .next(Duration::from_secs(5), Debounce::ADAPTIVE)
            .unwrap()
            .expect("a change");
        assert!(burst.contains(&absolute(&file)), "{burst:?}");
    }

    /// A file written in two parts half a second apart, open between
    /// them: the burst ends at its close, not at the first part's quiet
    /// (compiled half written, the next reload was diffed against that
    /// and patched every function after the cut: a libuv trial). A `touch`
    /// is a complete save.
    #[test]
    fn a_file_still_open_for_writing_is_waited_for() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.c");
        std::fs::write(&file, "int a;\n").unwrap();
        let mut events = FileEvents::new([file.clone()]).unwrap();
        let writer = {
            let file = file.clone();
            std::thread::spawn(move || {
                let mut f = std::fs::File::create(&file).unwrap();
                f.write_all(b"int a = ").unwrap();
                f.flush().unwrap();
                std::thread::sleep(Duration::from_millis(500));
                f.write_all(b"1;\n").unwrap();
                Instant::now()
            })
        };
        let burst = events
            .next(Duration::from_secs(5), Debounce::ADAPTIVE)
            .unwrap()
            .expect("a change");
        let returned = Instant::now();
        let second_part = writer.join().unwrap();
        assert!(
            returned >= second_part,
            "the burst ended before the file was written whole"
        );
        assert!(burst.contains(&absolute(&file)), "{burst:?}");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "int a = 1;\n");
        let touch = EventKind::Modify(ModifyKind::Metadata(notify::event::MetadataKind::WriteTime));
        assert_eq!(completes_save(&touch), Some(true));
    }

    /// Saves a file the way editors do: a new file renamed over it.
    fn save(file: &std::path::Path, text: &str) {
        let tmp = file.with_extension("tmp");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, file).unwrap();
    }

    /// A complete save ends its burst at once (the compile starts without
    /// waiting for the quiet); files saved while it compiles join it late,
    /// however long after the quiet (a "save all" reaches the watcher
    /// file by file), and one saved once it has been given its late files
    /// is the next burst's.
    #[test]
    fn complete_saves_start_at_once_and_files_saved_while_they_compile_join_late() {
        let dir = tempfile::tempdir().unwrap();
        let files: Vec<PathBuf> = ["a.c", "b.c", "c.c", "d.c"]
            .iter()
            .map(|f| dir.path().join(f))
            .collect();
        for f in &files {
            std::fs::write(f, "int a;\n").unwrap();
        }
        let (a, b, c, d) = (&files[0], &files[1], &files[2], &files[3]);
        let mut events = FileEvents::new(files.clone()).unwrap();
        let debounce = Debounce::ADAPTIVE;
        save(a, "int a = 1;\n");
        let mut burst = events
            .burst(Duration::from_secs(5), debounce)
            .unwrap()
            .expect("a change");
        // It returned at a's save: b and c, saved from now on, are not in
        // it yet.
        assert_eq!(burst.files(), BTreeSet::from([absolute(a)]));
        save(b, "int b = 1;\n");
        // The compile: far longer than the 2 ms quiet.
        std::thread::sleep(Duration::from_millis(300));
        save(c, "int c = 1;\n");
        std::thread::sleep(Duration::from_millis(300));
        let late = events.late(&mut burst).unwrap();
        // (a's rename may come as more than one event: a file saved again
        // is among the late ones, and the loop compiles it again only if
        // its text changed.)
        assert!(late.contains(&absolute(b)) && late.contains(&absolute(c)), "{late:?}");
        assert!(!late.contains(&absolute(d)), "{late:?}");
        assert_eq!(burst.files(), BTreeSet::from([absolute(a), absolute(b), absolute(c)]));
        // Saved once the batch has its files: the next burst's.
        save(d, "int d = 1;\n");
        let next = events
            .burst(Duration::from_secs(5), debounce)
            .unwrap()
            .expect("d's save");
        assert_eq!(next.files(), BTreeSet::from([absolute(d)]));
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
