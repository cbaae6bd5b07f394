//! Linux backend of [`crate::exec_trace`]: the command starts with
//! `PTRACE_TRACEME`, and every process it creates is traced automatically
//! (`PTRACE_O_TRACEFORK`, `TRACEVFORK`, `TRACECLONE`). Tracees stop only at
//! those events, at `exec` (`PTRACE_O_TRACEEXEC`) and when a signal is
//! delivered to them: no system call is traced.
//!
//! Waiting uses raw `waitpid` rather than nix's, which fails on a stop by a
//! real-time signal after the kernel has already consumed it (the tracee
//! would stay stopped for good); the signal is passed on by number.

use std::collections::{HashMap, HashSet};
use std::ffi::c_void;
use std::io;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, ExitStatus};

use nix::libc;
use nix::sys::ptrace::{self, Options};
use nix::unistd::Pid;

use crate::error::{ProcessError, Result};
use crate::exec_trace::Exec;

/// See [`crate::exec_trace::run_traced`].
pub fn run_traced(program: &str, args: &[String], on_exec: &mut (dyn FnMut(&Exec) + Send)) -> Result<ExitStatus> {
    // A tracee's tracer is one thread: the one that started the command.
    // A fresh thread has no other children, and waiting with __WNOTHREAD
    // sees only its own children and tracees: the caller's other children
    // are neither reaped nor mistaken for the build's.
    std::thread::scope(|scope| {
        let tracer = scope.spawn(|| Tracer::start(program, args)?.run(on_exec));
        match tracer.join() {
            Ok(result) => result,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

/// The bookkeeping of one traced command.
struct Tracer {
    program: String,
    root: i32,
    /// Whether the command's own `exec` stop has been seen (and the
    /// tracing options set).
    root_started: bool,
    root_status: Option<ExitStatus>,
    /// Tracees whose first stop has been seen and that have not exited.
    live: HashSet<i32>,
    /// Per new tracee: +1 when its parent's fork/clone event announced it,
    /// -1 when its first stop (or its death) was seen; removed at 0. A
    /// positive count is a tracee still to come. (The kernel may report
    /// the child's first stop before the parent's event.)
    pending: HashMap<i32, i32>,
    /// The command has exited: the tracees left are being let go.
    draining: bool,
}

impl Tracer {
    fn start(program: &str, args: &[String]) -> Result<Tracer> {
        let mut command = Command::new(program);
        command.args(args);
        // SAFETY: the closure runs in the forked child between fork and
        // exec, where only async-signal-safe work is allowed: it makes one
        // system call (ptrace(PTRACE_TRACEME)) and, on failure, builds an
        // io::Error from the errno, which does not allocate. The child then
        // stops with SIGTRAP at its exec; it does not stop itself here
        // (spawn waits for the exec, which would deadlock).
        unsafe {
            command.pre_exec(|| ptrace::traceme().map_err(io::Error::from));
        }
        let child = match command.spawn() {
            Ok(child) => child,
            Err(e) if matches!(e.raw_os_error(), Some(libc::EPERM | libc::ENOSYS)) => {
                return Err(refused(program, &format!("PTRACE_TRACEME failed: {e}")));
            }
            Err(source) => {
                return Err(ProcessError::Spawn {
                    program: program.to_string(),
                    source,
                })
            }
        };
        // The `Child` is dropped unwaited: its status is collected by the
        // tracer's own waitpid loop.
        Ok(Tracer {
            program: program.to_string(),
            root: child.id() as i32,
            root_started: false,
            root_status: None,
            live: HashSet::new(),
            pending: HashMap::new(),
            draining: false,
        })
    }

    fn done(&self) -> bool {
        self.root_status.is_some() && self.live.is_empty() && !self.pending.values().any(|&n| n > 0)
    }

    fn run(mut self, on_exec: &mut (dyn FnMut(&Exec) + Send)) -> Result<ExitStatus> {
        while !self.done() {
            let (pid, status) = match wait_any() {
                Ok(stop) => stop,
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
                Err(e) if e.raw_os_error() == Some(libc::ECHILD) => break,
                Err(source) => {
                    return Err(ProcessError::Io {
                        pid: self.root as u32,
                        what: "waiting for the traced command".into(),
                        source,
                    })
                }
            };
            if libc::WIFEXITED(status) || libc::WIFSIGNALED(status) {
                self.exited(pid, status)?;
            } else if libc::WIFSTOPPED(status) {
                self.stopped(pid, libc::WSTOPSIG(status), status >> 16, on_exec)?;
            }
        }
        self.root_status.ok_or(ProcessError::Gone {
            pid: self.root as u32,
            doing: "tracing it (its exit status was never reported)",
        })
    }

    fn exited(&mut self, pid: i32, status: i32) -> Result<()> {
        if !self.live.remove(&pid) {
            // Died before its first stop was seen: it has arrived all the same.
            self.count(pid, -1);
        }
        if pid != self.root {
            return Ok(());
        }
        if !self.root_started && libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGSYS {
            return Err(refused(
                &self.program,
                "it was killed by SIGSYS before it could start: a seccomp filter forbids ptrace",
            ));
        }
        self.root_status = Some(ExitStatus::from_raw(status));
        self.let_go();
        Ok(())
    }

    fn stopped(&mut self, pid: i32, signal: i32, event: i32, on_exec: &mut (dyn FnMut(&Exec) + Send)) -> Result<()> {
        let first = self.live.insert(pid);
        if pid == self.root && !self.root_started {
            if signal == libc::SIGTRAP && event == 0 {
                // The command's exec: from here on, follow its children.
                self.root_started = true;
                let options = Options::PTRACE_O_TRACEFORK
                    | Options::PTRACE_O_TRACEVFORK
                    | Options::PTRACE_O_TRACECLONE
                    | Options::PTRACE_O_TRACEEXEC
                    | Options::PTRACE_O_EXITKILL;
                if let Err(e) = ptrace::setoptions(Pid::from_raw(pid), options) {
                    return Err(refused(&self.program, &format!("PTRACE_SETOPTIONS failed: {e}")));
                }
                report(pid, on_exec);
                resume(pid, 0);
            } else {
                // A signal that arrived before the exec.
                resume(pid, signal);
            }
            return Ok(());
        }
        if event != 0 {
            match event {
                libc::PTRACE_EVENT_EXEC => {
                    // A thread other than the leader that executes takes
                    // the leader's id; its own id is never reported again.
                    if let Ok(former) = ptrace::getevent(Pid::from_raw(pid)) {
                        if former as i32 != pid {
                            self.live.remove(&(former as i32));
                        }
                    }
                    report(pid, on_exec);
                }
                libc::PTRACE_EVENT_FORK | libc::PTRACE_EVENT_VFORK | libc::PTRACE_EVENT_CLONE => {
                    if let Ok(child) = ptrace::getevent(Pid::from_raw(pid)) {
                        self.count(child as i32, 1);
                    }
                }
                _ => {}
            }
            resume(pid, 0);
            return Ok(());
        }
        if first {
            // A new tracee's first stop: the SIGSTOP the kernel queues for
            // it on automatic attach. Swallow it.
            self.count(pid, -1);
            if self.draining {
                self.live.remove(&pid);
                detach(pid);
            } else {
                resume(pid, if signal == libc::SIGSTOP { 0 } else { signal });
            }
            return Ok(());
        }
        match signal {
            libc::SIGSTOP if self.draining => {
                // The stop `let_go` sent: leave this tracee running, untraced.
                self.live.remove(&pid);
                detach(pid);
            }
            // A stop signal passed on would put the tracee in a group-stop
            // that only another ptrace request ends; a build has no use for
            // job control under relive.
            libc::SIGSTOP | libc::SIGTSTP | libc::SIGTTIN | libc::SIGTTOU => resume(pid, 0),
            _ => resume(pid, signal),
        }
        Ok(())
    }

    fn count(&mut self, pid: i32, delta: i32) {
        let n = self.pending.entry(pid).or_insert(0);
        *n += delta;
        if *n == 0 {
            self.pending.remove(&pid);
        }
    }

    /// The command has exited: stop every tracee left (a background job, a
    /// compiler cache's server) so it can be detached, and detach tracees
    /// yet to appear at their first stop. Left traced, they would be killed
    /// when the tracer ends (`PTRACE_O_EXITKILL`).
    fn let_go(&mut self) {
        self.draining = true;
        let left: Vec<i32> = self.live.iter().copied().collect();
        for tid in left {
            let sent = thread_group(tid).is_some_and(|tgid| {
                // SAFETY: tgkill takes three integers and touches no memory
                // of ours; a stale id fails with ESRCH.
                unsafe { libc::syscall(libc::SYS_tgkill, tgid, tid, libc::SIGSTOP) == 0 }
            });
            if !sent {
                self.live.remove(&tid);
            }
        }
    }
}

/// `waitpid(-1)` for this thread's children and tracees, stopped or ended.
fn wait_any() -> io::Result<(i32, i32)> {
    let mut status: libc::c_int = 0;
    // SAFETY: `status` is a valid, writable int for the kernel to fill.
    let pid = unsafe { libc::waitpid(-1, &mut status, libc::__WALL | libc::__WNOTHREAD) };
    if pid < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok((pid, status))
    }
}

/// Continues a stopped tracee, delivering `signal` (0: none). A tracee
/// killed meanwhile (ESRCH) reports its death to the next wait.
fn resume(pid: i32, signal: i32) {
    // SAFETY: PTRACE_CONT ignores `addr` and reads `data` as a signal
    // number; no memory is passed.
    unsafe {
        libc::ptrace(
            libc::PTRACE_CONT,
            pid,
            std::ptr::null_mut::<c_void>(),
            signal as usize as *mut c_void,
        );
    }
}

/// Detaches a stopped tracee without delivering a signal.
fn detach(pid: i32) {
    // SAFETY: PTRACE_DETACH ignores `addr` and reads `data` as a signal
    // number (none here); no memory is passed.
    unsafe {
        libc::ptrace(
            libc::PTRACE_DETACH,
            pid,
            std::ptr::null_mut::<c_void>(),
            std::ptr::null_mut::<c_void>(),
        );
    }
}

/// Reads what a process executed while it stands stopped at its exec, and
/// hands it to `on_exec`. A process killed meanwhile is skipped.
fn report(pid: i32, on_exec: &mut (dyn FnMut(&Exec) + Send)) {
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return;
    };
    let cmdline = cmdline.strip_suffix(&[0]).unwrap_or(&cmdline);
    let argv = if cmdline.is_empty() {
        Vec::new()
    } else {
        cmdline
            .split(|&b| b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect()
    };
    let (Ok(cwd), Ok(exe)) = (
        std::fs::read_link(format!("/proc/{pid}/cwd")),
        std::fs::read_link(format!("/proc/{pid}/exe")),
    ) else {
        return;
    };
    on_exec(&Exec {
        pid: pid as u32,
        ancestors: ancestors(pid),
        cwd,
        argv,
        exe,
    });
}

/// The parent chain of `pid` up to (not including) relive itself.
fn ancestors(pid: i32) -> Vec<u32> {
    let me = std::process::id();
    let mut chain = Vec::new();
    let mut p = pid as u32;
    while chain.len() < 64 {
        match status_field(p, "PPid:") {
            Some(parent) if parent > 1 && parent != me => {
                chain.push(parent);
                p = parent;
            }
            _ => break,
        }
    }
    chain
}

fn thread_group(tid: i32) -> Option<u32> {
    status_field(tid as u32, "Tgid:")
}

/// A numeric field of `/proc/PID/status`.
fn status_field(pid: u32, name: &str) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.trim().parse().ok())
}

/// Whether this process is in the foreground process group of its
/// controlling terminal (`/proc/self/stat`: pgrp equals tpgid), where a
/// Ctrl-C reaches it and the build alike.
pub(crate) fn in_terminal_foreground() -> bool {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return false;
    };
    // After "pid (comm) ": state ppid pgrp session tty_nr tpgid …
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(vec![], |(_, rest)| rest.split_whitespace().collect());
    match (fields.get(2), fields.get(5)) {
        (Some(pgrp), Some(tpgid)) => pgrp == tpgid,
        _ => false,
    }
}

/// Why the kernel would not let relive trace, and what to do.
fn refused(program: &str, what: &str) -> ProcessError {
    let mut why = vec![what.to_string()];
    if let Some(tracer) = status_field(std::process::id(), "TracerPid:").filter(|&t| t != 0) {
        let name = std::fs::read_to_string(format!("/proc/{tracer}/comm")).unwrap_or_default();
        why.push(format!(
            "relive itself is traced by pid {tracer} ({}), which traces the processes it starts too: run relive outside it",
            name.trim()
        ));
    }
    let scope = std::fs::read_to_string("/proc/sys/kernel/yama/ptrace_scope")
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok());
    match scope {
        Some(2) => why.push(
            "Yama ptrace_scope is 2 (only CAP_SYS_PTRACE may trace): run relive as root, or `sysctl kernel.yama.ptrace_scope=1`"
                .into(),
        ),
        Some(3) => why.push("Yama ptrace_scope is 3 (ptrace is disabled until reboot)".into()),
        _ => {}
    }
    if status_field(std::process::id(), "Seccomp:") == Some(2) {
        why.push(
            "relive runs under a seccomp filter (a container?) that may forbid ptrace: e.g. `docker run --cap-add SYS_PTRACE` or `--security-opt seccomp=unconfined`"
                .into(),
        );
    }
    ProcessError::TraceRefused {
        program: program.to_string(),
        why: why.join("; "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn traced(script: &str) -> (ExitStatus, Vec<Exec>) {
        let mut execs = Vec::new();
        let status = run_traced("sh", &["-c".into(), script.into()], &mut |e: &Exec| {
            execs.push(e.clone())
        })
        .unwrap();
        (status, execs)
    }

    #[test]
    fn sees_every_exec_with_its_directory_and_arguments() {
        let dir = tempfile::tempdir().unwrap();
        let script = format!(
            "/bin/true first; (cd {} && /bin/echo 'two words' second >/dev/null); sh -c 'exec /bin/true third'",
            dir.path().display()
        );
        let (status, execs) = traced(&script);
        assert!(status.success());
        assert_eq!(execs[0].argv[..2], ["sh".to_string(), "-c".to_string()]);
        assert!(execs[0].ancestors.is_empty(), "{:?}", execs[0]);
        let find = |word: &str| {
            execs
                .iter()
                .find(|e| e.argv.last().map(String::as_str) == Some(word))
                .unwrap_or_else(|| panic!("no exec of {word} in {execs:#?}"))
        };
        assert_eq!(find("first").argv, ["/bin/true", "first"]);
        let second = find("second");
        assert_eq!(second.argv, ["/bin/echo", "two words", "second"]);
        assert_eq!(second.cwd, dir.path().canonicalize().unwrap());
        assert!(second.ancestors.contains(&execs[0].pid), "{second:?}");
        // `exec` in a child shell: the same pid executes twice.
        let third = find("third");
        assert!(execs
            .iter()
            .any(|e| e.pid == third.pid && e.argv[0] == "sh" && e.argv.len() == 3));
        assert!(third.exe.ends_with("true"));
    }

    #[test]
    fn returns_the_exit_status_and_a_death_by_signal() {
        let (status, _) = traced("exit 7");
        assert_eq!(status.code(), Some(7));
        let (status, _) = traced("kill -9 $$");
        assert_eq!(status.signal(), Some(libc::SIGKILL));
    }

    #[test]
    fn passes_signals_on_and_ignores_stop_signals() {
        // The shell's trap runs: SIGUSR1 reached it. SIGTSTP does not stop it.
        let (status, _) = traced("trap 'exit 3' USR1; kill -TSTP $$; kill -USR1 $$; sleep 5; exit 0");
        assert_eq!(status.code(), Some(3));
    }

    #[test]
    fn lets_go_of_background_processes_when_the_command_exits() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("pid");
        let start = Instant::now();
        let (status, _) = traced(&format!("sleep 60 & echo $! > {}", pidfile.display()));
        assert!(status.success());
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "waited for the background job"
        );
        let pid: i32 = std::fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
        // Still running, no longer traced, and not stopped.
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        assert!(status.contains("TracerPid:\t0"), "{status}");
        assert!(!status.contains("State:\tT"), "{status}");
        let _ = nix::sys::signal::kill(Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
    }

    #[test]
    fn does_not_reap_the_callers_other_children() {
        let mut other = Command::new("sleep").arg("0.2").spawn().unwrap();
        let (status, _) = traced("sleep 0.5");
        assert!(status.success());
        assert!(other.wait().unwrap().success());
    }

    #[test]
    fn a_missing_program_is_a_spawn_error() {
        let err = run_traced("/nonexistent/relive-no-such-program", &[], &mut |_: &Exec| {}).unwrap_err();
        assert!(matches!(err, ProcessError::Spawn { .. }), "{err}");
    }
}
