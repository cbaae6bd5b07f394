//! Linux backend of [`crate::exec_trace`]: the command starts with
//! `PTRACE_TRACEME`, and every process it creates is traced automatically
//! (`PTRACE_O_TRACEFORK`, `TRACEVFORK`, `TRACECLONE`). Tracees stop only at
//! those events, at `exec` (`PTRACE_O_TRACEEXEC`) and when a signal is
//! delivered to them: no system call is traced.
//!
//! Waiting uses raw `waitpid` rather than nix's, which fails on a stop by a
//! real-time signal after the kernel has already consumed it (the tracee
//! would stay stopped for good); the signal is passed on by number.

use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};
use std::ffi::c_void;
use std::io;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, ExitStatus};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Mutex;

use nix::libc;
use nix::sys::ptrace::{self, Options};
use nix::unistd::Pid;

use crate::error::{ProcessError, Result};
use crate::exec_events::{Exec, Interrupt};

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
    /// The command's exit (or death) has been collected: its pid may
    /// belong to another process now.
    root_reaped: bool,
    /// `waitpid` said there is no tracee left (ECHILD).
    none_left: bool,
}

impl Tracer {
    fn start(program: &str, args: &[String]) -> Result<Tracer> {
        let mut command = Command::new(program);
        command.args(args);
        // The child asks to be traced; it then stops with SIGTRAP at its
        // exec (it does not stop itself here: spawn waits for the exec,
        // which would deadlock). It also asks for SIGKILL when the thread
        // that started it (this tracer) ends: the command is always reaped
        // before the tracer returns, so this fires only when relive dies
        // before the command's first stop has been handled, when the
        // tracing options (and their `PTRACE_O_EXITKILL`) are not set yet
        // and the command would otherwise run on, untraced. `getppid` tells
        // whether relive died before the request was made.
        //
        let parent = std::process::id() as libc::pid_t;
        // SAFETY: the closure runs in the forked child between fork and
        // exec, where only async-signal-safe work is allowed: it makes
        // three system calls (ptrace(PTRACE_TRACEME), prctl, getppid) and,
        // on failure, builds an io::Error from an errno, which does not
        // allocate.
        unsafe {
            command.pre_exec(move || {
                ptrace::traceme().map_err(io::Error::from)?;
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) != 0 {
                    return Err(io::Error::last_os_error());
                }
                if libc::getppid() != parent {
                    return Err(io::Error::from_raw_os_error(libc::ESRCH));
                }
                Ok(())
            });
        }
        let child = match command.spawn() {
            Ok(child) => child,
            Err(e) if matches!(e.raw_os_error(), Some(libc::EPERM | libc::ENOSYS)) => {
                return Err(refused(program, &format!("PTRACE_TRACEME failed: {e}")));
            }
            Err(source) => {
                return Err(ProcessError::Spawn {
                    program: program.to_string(),
                    cause: source,
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
            root_reaped: false,
            none_left: false,
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
                Err(e) if e.raw_os_error() == Some(libc::ECHILD) => {
                    self.none_left = true;
                    break;
                }
                Err(source) => {
                    return Err(ProcessError::Io {
                        pid: self.root as u32,
                        what: "waiting for the traced command".into(),
                        cause: source,
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
        self.root_reaped = true;
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
                match ptrace::setoptions(Pid::from_raw(pid), options) {
                    Ok(()) => {}
                    // Killed meanwhile: the next wait reports its death.
                    Err(nix::errno::Errno::ESRCH) => return Ok(()),
                    Err(e) => return Err(refused(&self.program, &format!("PTRACE_SETOPTIONS failed: {e}"))),
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

    /// Ends the traced command after an error (or a panic in `on_exec`):
    /// kills the command and every tracee known, and reaps them, so that
    /// nothing of the build runs on once the tracer is gone. (The command
    /// may still stand stopped at its first exec, its tracing options and
    /// their `PTRACE_O_EXITKILL` not set yet: left alone, it would be
    /// detached when this thread ends and run on, unobserved.) Every pid
    /// killed is an unreaped tracee of this thread, so cannot have been
    /// reused.
    fn abort(&mut self) {
        if self.none_left {
            return;
        }
        let kill = |pid: i32| {
            // SAFETY: kill takes two integers and touches no memory of ours.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        };
        if !self.root_reaped {
            kill(self.root);
        }
        self.live.iter().copied().for_each(kill);
        self.pending
            .iter()
            .filter(|&(_, &n)| n > 0)
            .for_each(|(&pid, _)| kill(pid));
        // Until none is left: a tracee that appears meanwhile (a fork
        // under way) is killed at its first stop.
        loop {
            match wait_any() {
                Ok((pid, status)) => {
                    if libc::WIFSTOPPED(status) {
                        kill(pid);
                    }
                }
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
                Err(_) => break,
            }
        }
        self.live.clear();
        self.pending.clear();
        self.root_reaped = true;
        self.none_left = true;
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

impl Drop for Tracer {
    /// A tracer dropped before the command and its tracees are all
    /// accounted for returns an error or unwinds a panic: see
    /// [`Tracer::abort`].
    fn drop(&mut self) {
        if !self.done() {
            self.abort();
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
    let status = crate::procfs::read_lossy(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.trim().parse().ok())
}

/// Whether process `pid` is in this process's process group, where a
/// signal the terminal sends to relive reaches it too.
pub(crate) fn in_my_process_group(pid: u32) -> bool {
    let Ok(stat) = crate::procfs::read_lossy(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // After "pid (comm) ": state ppid pgrp …
    let pgrp = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().nth(2))
        .and_then(|p| p.parse::<libc::pid_t>().ok());
    // SAFETY: getpgrp takes nothing and cannot fail.
    pgrp == Some(unsafe { libc::getpgrp() })
}

/// The write end of the pipe the signal handler reports on (-1: none yet).
static INTERRUPT_PIPE: AtomicI32 = AtomicI32::new(-1);
/// The process that installed the handler: a child between fork and exec
/// inherits the handler, and must not report to relive's pipe.
static HANDLER_OWNER: AtomicI32 = AtomicI32::new(0);
/// What is called for each interrupt (replaced by a later call).
type InterruptHandler = Box<dyn FnMut(Interrupt) + Send>;
static INTERRUPT_HANDLER: Mutex<Option<InterruptHandler>> = Mutex::new(None);

const INTERRUPT_SIGNALS: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

/// See [`crate::exec_trace::handle_interrupts`].
pub(crate) fn handle_interrupts(handler: Box<dyn FnMut(Interrupt) + Send>) -> Result<()> {
    *INTERRUPT_HANDLER.lock().unwrap_or_else(|e| e.into_inner()) = Some(handler);
    if INTERRUPT_PIPE.load(Ordering::SeqCst) >= 0 {
        return Ok(());
    }
    let me = std::process::id();
    let io_error = |what: &str| ProcessError::Io {
        pid: me,
        what: what.into(),
        cause: io::Error::last_os_error(),
    };
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` is a valid, writable array of two ints.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io_error("creating the pipe for interrupts"));
    }
    let [read_end, write_end] = fds;
    // The handler must never block: a full pipe loses the report, not the process.
    // SAFETY: fcntl on a descriptor this function just created.
    unsafe { libc::fcntl(write_end, libc::F_SETFL, libc::O_NONBLOCK) };
    std::thread::Builder::new()
        .name("relive-interrupts".into())
        .spawn(move || report_interrupts(read_end))
        .map_err(|source| ProcessError::Io {
            pid: me,
            what: "starting the thread that handles interrupts".into(),
            cause: source,
        })?;
    HANDLER_OWNER.store(me as i32, Ordering::SeqCst);
    INTERRUPT_PIPE.store(write_end, Ordering::SeqCst);
    for signal in INTERRUPT_SIGNALS {
        // SAFETY: a zeroed sigaction is a valid value (no flags, empty
        // mask) that is then filled in; `on_interrupt_signal` has the
        // signature SA_SIGINFO requires and is async-signal-safe.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_interrupt_signal as *const () as libc::sighandler_t;
            action.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            if libc::sigaction(signal, &action, std::ptr::null_mut()) != 0 {
                return Err(io_error("installing the handler of SIGINT, SIGTERM and SIGHUP"));
            }
        }
    }
    Ok(())
}

/// The signal handler: two bytes down the pipe, the signal and whether the
/// kernel sent it for the terminal (`SI_KERNEL`: Ctrl-C, a hangup; a
/// process's `kill` is `SI_USER`). Async-signal-safe: getpid, write,
/// sigaction and raise only, errno preserved.
extern "C" fn on_interrupt_signal(signal: libc::c_int, info: *mut libc::siginfo_t, _context: *mut c_void) {
    // SAFETY: only async-signal-safe calls; `info` is the kernel's
    // siginfo for this delivery (checked for null), errno is this
    // thread's.
    unsafe {
        let errno = *libc::__errno_location();
        if libc::getpid() != HANDLER_OWNER.load(Ordering::SeqCst) {
            // A child of relive between fork and exec: do what it would
            // have done without relive's handler (the signal is blocked
            // until this returns, then ends it).
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = libc::SIG_DFL;
            libc::sigaction(signal, &action, std::ptr::null_mut());
            libc::raise(signal);
        } else {
            let code = if info.is_null() { 0 } else { (*info).si_code };
            let record = [signal as u8, u8::from(code == libc::SI_KERNEL)];
            libc::write(
                INTERRUPT_PIPE.load(Ordering::SeqCst),
                record.as_ptr().cast(),
                record.len(),
            );
        }
        *libc::__errno_location() = errno;
    }
}

/// The thread that calls the interrupt handler for each report.
fn report_interrupts(read_end: libc::c_int) {
    let mut record = [0u8; 2];
    loop {
        // SAFETY: `record` is a valid, writable buffer of its length.
        let n = unsafe { libc::read(read_end, record.as_mut_ptr().cast(), record.len()) };
        if n < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
            continue;
        }
        if n != record.len() as isize {
            return;
        }
        let interrupt = Interrupt {
            signal: i32::from(record[0]),
            from_terminal: record[1] != 0,
        };
        if let Some(handler) = INTERRUPT_HANDLER.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            handler(interrupt);
        }
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

    /// Whether process `pid` is gone, or a zombie about to be (a tracee
    /// that is not our child is reaped by its parent, or by init).
    fn gone(pid: u32) -> bool {
        let deadline = Instant::now() + relive_testkit::PATIENCE;
        loop {
            match std::fs::read_to_string(format!("/proc/{pid}/status")) {
                Err(_) => return true,
                Ok(status) if status.contains("State:\tZ") => return true,
                Ok(_) if Instant::now() > deadline => return false,
                Ok(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
    }

    #[test]
    fn an_error_kills_and_reaps_the_command_stopped_at_its_exec() {
        // The command stands stopped at its exec, its options (and
        // PTRACE_O_EXITKILL) not set: the state a PTRACE_SETOPTIONS
        // failure leaves. Dropping the tracer, as its error return does,
        // must not let it run on.
        let tracer = Tracer::start("sh", &["-c".into(), "sleep 30".into()]).unwrap();
        let root = tracer.root;
        let (pid, status) = wait_any().unwrap();
        assert_eq!(pid, root);
        assert!(libc::WIFSTOPPED(status) && libc::WSTOPSIG(status) == libc::SIGTRAP);
        drop(tracer);
        // Reaped: not even a zombie is left.
        assert!(
            std::fs::metadata(format!("/proc/{root}")).is_err(),
            "the command runs on: {:?}",
            std::fs::read_to_string(format!("/proc/{root}/status"))
        );
        assert_eq!(
            wait_any().unwrap_err().raw_os_error(),
            Some(libc::ECHILD),
            "a tracee is left"
        );
    }

    #[test]
    fn a_panic_in_on_exec_kills_the_command_and_its_tracees() {
        for panic_at in ["sh", "sleep"] {
            let mut pids = Vec::new();
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                run_traced(
                    "sh",
                    &["-c".into(), "sleep 31 & sleep 30; wait".into()],
                    &mut |e: &Exec| {
                        pids.push(e.pid);
                        if e.argv[0] == panic_at {
                            panic!("on_exec fails at {panic_at}");
                        }
                    },
                )
            }));
            assert!(result.is_err(), "{panic_at}: the panic is passed on");
            assert!(!pids.is_empty());
            for pid in pids {
                assert!(gone(pid), "{panic_at}: process {pid} runs on");
            }
        }
    }

    #[test]
    fn interrupts_are_reported_with_their_origin() {
        let (send, receive) = std::sync::mpsc::channel();
        handle_interrupts(Box::new(move |i| {
            let _ = send.send(i);
        }))
        .unwrap();
        nix::sys::signal::kill(
            Pid::from_raw(std::process::id() as i32),
            nix::sys::signal::Signal::SIGHUP,
        )
        .unwrap();
        let got = receive.recv_timeout(relive_testkit::PATIENCE).unwrap();
        assert_eq!(
            got,
            Interrupt {
                signal: libc::SIGHUP,
                from_terminal: false
            }
        );
    }

    #[test]
    fn an_interrupt_is_passed_on_unless_the_command_got_it_from_the_terminal() {
        let from = |from_terminal| Interrupt {
            signal: libc::SIGINT,
            from_terminal,
        };
        // In relive's process group: a Ctrl-C reached it too.
        let mut same = Command::new("sleep").arg("30").spawn().unwrap();
        assert!(!crate::exec_trace::pass_on_interrupt(same.id(), from(true)));
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(same.try_wait().unwrap(), None);
        assert!(crate::exec_trace::pass_on_interrupt(same.id(), from(false)));
        assert_eq!(same.wait().unwrap().signal(), Some(libc::SIGTERM));
        // In a process group of its own: the terminal's signal missed it.
        let mut own = Command::new("sleep").arg("30").process_group(0).spawn().unwrap();
        assert!(crate::exec_trace::pass_on_interrupt(own.id(), from(true)));
        assert_eq!(own.wait().unwrap().signal(), Some(libc::SIGTERM));
    }

    #[test]
    fn a_missing_program_is_a_spawn_error() {
        let err = run_traced("/nonexistent/relive-no-such-program", &[], &mut |_: &Exec| {}).unwrap_err();
        assert!(matches!(err, ProcessError::Spawn { .. }), "{err}");
    }
}
