//! A save's compile that stops as soon as its file is saved again: its
//! object would be dropped for the newer save's (see `Reloader::join`),
//! and a large unit's compile ran to its end first, so a second save made
//! while it ran waited for both (a SQLite trial: 46 s, then 32 s more).
//!
//! The compiler runs in a process group of its own, so that stopping it
//! stops what it started too (`cc1`, `as`). The terminal's Ctrl-C does
//! not reach such a group: [`stop_all`] stops every compile running when
//! relive ends on a signal.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{channel, RecvTimeoutError};
use std::sync::Mutex;
use std::time::Duration;

/// How often a running compile looks whether its file was saved again.
const POLL: Duration = Duration::from_millis(25);

/// The process groups of the compiles running now, each with the compile
/// it belongs to (a compile's macro listing runs beside it, in a group of
/// its own). Each is led by a child not reaped yet: taken off before it is.
static RUNNING: Mutex<Vec<(usize, u32)>> = Mutex::new(Vec::new());

/// Compiles so far in this process: each compile's own number for
/// [`RUNNING`] (a reloader's count of its builds is not unique: two
/// reloaders, or tests, would stop each other's compiles).
static COMPILES: AtomicUsize = AtomicUsize::new(0);

/// Set by [`stop_all`]: relive is ending, and starts no compile.
static STOPPING: AtomicBool = AtomicBool::new(false);

fn running() -> std::sync::MutexGuard<'static, Vec<(usize, u32)>> {
    RUNNING.lock().unwrap_or_else(|e| e.into_inner())
}

/// A number for a new compile (see [`Member::spawn`]).
pub(crate) fn new_compile() -> usize {
    COMPILES.fetch_add(1, Ordering::Relaxed)
}

/// Stops every compile running now, with what it started, and starts no
/// other: for a relive that ends on a signal. A thread whose compile is
/// stopped so waits for the process's end (said by the caller) rather
/// than report the compile as failed.
pub fn stop_all() {
    STOPPING.store(true, Ordering::SeqCst);
    for &(_, group) in running().iter() {
        let _ = relive_process::kill_process_group(group);
    }
}

/// After [`stop_all`]: this thread waits for the process to end (the
/// signal's handler ends it), saying nothing of its compile.
fn ending() {
    if STOPPING.load(Ordering::SeqCst) {
        loop {
            std::thread::park();
        }
    }
}

/// A child of a compile, started in a process group of its own, listed
/// for [`stop_all`] and for its compile's stop. Dropped before it is
/// waited for, it is stopped and reaped.
pub(crate) struct Member {
    pub child: std::process::Child,
    group: u32,
    reaped: bool,
}

impl Member {
    /// Starts `command` in a process group of its own, as part of compile
    /// `compile` ([`new_compile`]).
    pub(crate) fn spawn(command: &mut Command, compile: usize) -> std::io::Result<Member> {
        ending();
        let child = command.process_group(0).spawn()?;
        let group = child.id();
        running().push((compile, group));
        Ok(Member {
            child,
            group,
            reaped: false,
        })
    }

    /// Waits for it to end (taken off the list first: a group no longer
    /// listed is never stopped, so its id cannot be another's by then).
    pub(crate) fn wait(&mut self) -> std::io::Result<std::process::ExitStatus> {
        running().retain(|&(_, g)| g != self.group);
        self.reaped = true;
        self.child.wait()
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        if !self.reaped {
            let listed = {
                let mut running = running();
                let listed = running.iter().any(|&(_, g)| g == self.group);
                running.retain(|&(_, g)| g != self.group);
                listed
            };
            // Not reaped: the group is still this child's.
            if listed {
                let _ = relive_process::kill_process_group(self.group);
            }
            let _ = self.child.wait();
        }
    }
}

/// Stops every process group of compile `compile` still listed.
fn stop(compile: usize) {
    let mut running = running();
    for &(_, group) in running.iter().filter(|(c, _)| *c == compile) {
        let _ = relive_process::kill_process_group(group);
    }
    running.retain(|(c, _)| *c != compile);
}

/// Runs `command` (part of compile `compile`) with its output collected,
/// unless `stale` (asked every [`POLL`] while it runs) says that what it
/// compiles was saved again: then the compile is stopped with everything
/// it started, and `Ok(None)` is the result.
pub(crate) fn output_unless(
    command: &mut Command,
    compile: usize,
    stale: &dyn Fn() -> bool,
) -> std::io::Result<Option<Output>> {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut member = Member::spawn(command, compile)?;
    // Each pipe read to its end on a thread of its own (either filling up
    // would stall the compiler), each saying when it is closed: the
    // compiler has ended then.
    let (closed, ended) = channel();
    let read = |pipe: Option<Box<dyn Read + Send>>| {
        let closed = closed.clone();
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            let _ = closed.send(());
            bytes
        })
    };
    let stdout = read(member.child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let stderr = read(member.child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    drop(closed);
    let mut open = 2;
    while open > 0 {
        match ended.recv_timeout(POLL) {
            Ok(()) => open -= 1,
            Err(RecvTimeoutError::Disconnected) => break,
            Err(RecvTimeoutError::Timeout) if stale() => {
                stop(compile);
                let _ = member.wait();
                let _ = (stdout.join(), stderr.join());
                return Ok(None);
            }
            Err(RecvTimeoutError::Timeout) => {}
        }
    }
    let status = member.wait()?;
    // Stopped by `stop_all`: not a failed compile to report.
    ending();
    Ok(Some(Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_runs_to_its_end_with_its_output() {
        let out = output_unless(
            Command::new("sh").args(["-c", "echo out; echo err >&2"]),
            new_compile(),
            &|| false,
        )
        .unwrap()
        .unwrap();
        assert!(out.status.success());
        assert_eq!(
            (out.stdout.as_slice(), out.stderr.as_slice()),
            (&b"out\n"[..], &b"err\n"[..])
        );
    }

    #[test]
    fn a_stale_command_stops_with_what_it_started() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("grandchild");
        // A shell that starts a long sleep and waits for it: both go.
        let script = format!("sleep 30 & echo $! > {}; wait", pid_file.display());
        let started = std::time::Instant::now();
        let asked = std::sync::atomic::AtomicUsize::new(0);
        let stale = || asked.fetch_add(1, std::sync::atomic::Ordering::SeqCst) >= 2;
        let compile = new_compile();
        let out = output_unless(Command::new("sh").args(["-c", &script]), compile, &stale).unwrap();
        assert!(out.is_none());
        assert!(started.elapsed() < Duration::from_secs(10));
        let grandchild = std::fs::read_to_string(&pid_file).unwrap();
        let gone = (0..100).any(|_| {
            std::thread::sleep(Duration::from_millis(20));
            std::fs::read_to_string(format!("/proc/{}/stat", grandchild.trim()))
                .map_or(true, |stat| stat.contains(") Z "))
        });
        assert!(gone, "the sleep the shell started still runs");
        assert!(!running().iter().any(|&(c, _)| c == compile));
    }
}
