//! A running process relive can inspect and change.
//!
//! [`Process`] is the one trait the rest of relive uses; each operating
//! system gets one backend module behind it. Only Linux exists today; on
//! other systems [`open`] returns [`ProcessError::Unsupported`] rather than a
//! pretend implementation.
//!
//! On top of the trait, OS-neutral modules answer the questions a patcher
//! asks: which files are mapped and with what load bias ([`modules`]), is
//! the file on disk the one that is running ([`identity`]), where is a
//! symbol in the live process ([`symbols`]), and where can new code go
//! ([`alloc`]).
//!
//! [`exec_trace`] runs a command and reports every program it executes
//! (how `relive build` records a build's compile commands).
// Every unsafe block states why it is sound (`// SAFETY:`).
#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

pub mod alloc;
pub mod critical;
mod device;
pub mod error;
pub mod exec_events;
pub mod exec_trace;
pub mod identity;
#[cfg(target_os = "linux")]
pub mod ifunc;
#[cfg(target_os = "linux")]
pub mod linux;
pub mod maps;
pub mod modules;
pub mod procfs;
pub mod registers;
#[cfg(any(test, feature = "simulated"))]
pub mod simulated;
pub mod symbols;
pub mod threads;
/// The vDSO is a module of every process (see [`modules`]).
pub use modules::vdso;

use std::path::PathBuf;

pub use error::{ProcessError, Result};
pub use maps::Mapping;
pub use registers::Registers;
pub use threads::{ThreadInfo, ThreadState};

/// A thread, its `(pc, sp)` when known (a thread blocked in the kernel, or
/// stopped), and its frame pointer (`rbp`) when its registers were read:
/// a thread seen blocked through `/proc` has none, and a walk of
/// frame-pointer frames (`-O0` code) needs it.
pub type ThreadPosition = (u32, Option<(u64, u64)>, Option<u64>);

/// Where a process has the instructions a call made from outside it
/// needs (a `syscall`, and the gadgets of its way back), found by
/// searching its code: kept by a caller across commands (relive's
/// journal) so that the next one does not search again (a third of a
/// millisecond of every patch). Each is checked to be there still before
/// it is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CodeHints {
    pub syscall: u64,
    pub syscall_ret: u64,
    pub pop_rax_ret: u64,
}

/// What relive needs from a running process.
pub trait Process {
    fn pid(&self) -> u32;

    /// Where this process's remote calls found the code they need, once
    /// they did (see [`CodeHints`]). Default: nothing known.
    fn code_hints(&self) -> Option<CodeHints> {
        None
    }

    /// Takes `hints` (of an earlier command) for where to look first;
    /// each is checked before it is used. Default: ignored.
    fn remember_code_hints(&self, hints: CodeHints) {
        let _ = hints;
    }

    /// The process's memory mappings, freshly read.
    fn maps(&self) -> Result<Vec<Mapping>>;

    /// Reads `buf.len()` bytes at `addr`. Fails with
    /// [`ProcessError::NotMapped`] if any byte is outside the mappings.
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<()>;

    /// Reads each `(addr, buf)` of `parts`, as [`Process::read`] would:
    /// scattered small reads (the slots and entries a patch wrote, read
    /// back) in one system call where the OS allows. Default: one by one.
    fn read_many(&self, parts: &mut [(u64, &mut [u8])]) -> Result<()> {
        parts.iter_mut().try_for_each(|(addr, buf)| self.read(*addr, buf))
    }

    /// Writes `data` at `addr`, through read-only code pages too. Fails
    /// with [`ProcessError::NotMapped`] (writing nothing) if any byte is
    /// outside the mappings.
    fn write(&self, addr: u64, data: &[u8]) -> Result<()>;

    /// The executable the kernel started. For an APE run through its
    /// loader this is the loader; [`modules::discover`] finds the program.
    fn exe(&self) -> Result<PathBuf>;

    /// Paths that open the very file behind `mapping`, even if it has been
    /// deleted or replaced on disk since it was mapped (Linux:
    /// `/proc/PID/exe` for the executable, `/proc/PID/map_files/START-END`
    /// for any mapping). The caller checks each one's device and inode:
    /// some may be refused (`map_files` needs `CAP_CHECKPOINT_RESTORE`).
    fn mapped_file_paths(&self, mapping: &Mapping) -> Vec<PathBuf> {
        let _ = mapping;
        Vec::new()
    }

    /// When the process started, in seconds since the Unix epoch: a file
    /// modified after this is not the one that was loaded.
    fn start_time(&self) -> Result<u64>;

    /// The threads, listed without stopping them.
    fn threads(&self) -> Result<Vec<ThreadInfo>>;

    /// Where each thread is, as far as can be told without stopping it:
    /// `(tid, Some((pc, sp)), None)` for a thread blocked in the kernel (a
    /// system call, a sleep), `(tid, None, None)` for one running on a CPU
    /// now. Default: unknown for every thread.
    fn thread_positions(&self) -> Result<Vec<ThreadPosition>> {
        Ok(self.threads()?.into_iter().map(|t| (t.tid, None, None)).collect())
    }

    /// Stops every thread (without sending signals) until the returned
    /// value is resumed or dropped.
    fn stop(&self) -> Result<Box<dyn Stopped + '_>>;

    /// Stops one thread (the main thread while it lives) and leaves the
    /// others running: enough for remote system calls, which act on the
    /// whole process (a new mapping is every thread's), so allocating
    /// memory does not pause the program. Default: every thread.
    fn stop_one(&self) -> Result<Box<dyn Stopped + '_>> {
        self.stop()
    }
}

/// Page protections for memory allocated inside the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Protection {
    pub read: bool,
    pub write: bool,
    pub exec: bool,
}

impl Protection {
    pub const READ: Protection = Protection {
        read: true,
        write: false,
        exec: false,
    };
    pub const READ_WRITE: Protection = Protection {
        read: true,
        write: true,
        exec: false,
    };
    pub const READ_EXEC: Protection = Protection {
        read: true,
        write: false,
        exec: true,
    };
}

/// A process whose threads are all stopped. Dropping it resumes them.
///
/// Everything that needs the threads to stand still happens through this:
/// reading their registers (to know where each one is) and running system
/// calls inside the target.
pub trait Stopped {
    /// The stopped threads' ids.
    fn thread_ids(&self) -> Vec<u32>;

    fn registers(&self, tid: u32) -> Result<Registers>;

    fn set_registers(&mut self, tid: u32, regs: &Registers) -> Result<()>;

    /// Maps `len` bytes of anonymous private memory at exactly `addr`
    /// without replacing anything already there. `Ok(None)` means the
    /// range is (partly) occupied; nothing was mapped.
    fn map_fixed(&mut self, addr: u64, len: u64, prot: Protection) -> Result<Option<u64>>;

    fn protect(&mut self, addr: u64, len: u64, prot: Protection) -> Result<()>;

    fn unmap(&mut self, addr: u64, len: u64) -> Result<()>;

    /// Calls the function at `addr` with up to six integer arguments
    /// (System V ABI: `rdi`, `rsi`, `rdx`, `rcx`, `r8`, `r9`) on one
    /// stopped thread, the main thread if it is stopped, and gives the
    /// thread back its own registers afterwards, whatever the function
    /// did: how a program's reload hooks run, and how the unwinder learns
    /// of new code. A function that faults or has not returned within
    /// `timeout` is abandoned where it is (see [`CallOutcome`]). Default:
    /// not supported.
    fn call(&mut self, addr: u64, args: &[u64], timeout: std::time::Duration) -> Result<CallOutcome> {
        let _ = (addr, args, timeout);
        Err(ProcessError::Unsupported {
            what: "calling a function in the process",
        })
    }

    /// Resumes every thread; reports a failure that dropping would hide.
    fn resume(self: Box<Self>) -> Result<()>;
}

/// What a function [`Stopped::call`] ran did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallOutcome {
    /// It returned.
    Returned,
    /// It raised `signal` (a fault) at `rip`; the signal was not
    /// delivered, and whatever the function had done until then stays
    /// done (a lock it took stays taken).
    Crashed { signal: i32, rip: u64 },
    /// It had not returned in the time allowed (at `rip` then); abandoned
    /// likewise.
    TimedOut { rip: u64 },
}

/// Opens the process `pid` with this platform's backend.
#[cfg(target_os = "linux")]
pub fn open(pid: u32) -> Result<Box<dyn Process>> {
    Ok(Box::new(linux::LinuxProcess::open(pid)?))
}

/// When process `pid` started (seconds since the Unix epoch, as
/// [`Process::start_time`]), `None` when there is no such process: how a
/// journal of a process that is gone is told from one of a process relive
/// cannot open now (another user's, or traced by someone else).
#[cfg(target_os = "linux")]
pub fn started_at(pid: u32) -> std::io::Result<Option<u64>> {
    linux::started_at(pid)
}

/// Whether process `pid` has ended: gone, or dead with its exit not yet
/// collected (a zombie, which stays in /proc until its parent waits).
pub fn has_ended(pid: u32) -> bool {
    match procfs::read_lossy(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => threads::parse_stat(pid, &stat).is_some_and(|t| t.state.has_exited()),
    }
}

/// The process tracing process `pid` (a debugger, strace), if any.
#[cfg(target_os = "linux")]
pub fn tracer_of(pid: u32) -> Option<u32> {
    let status = procfs::read_lossy(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("TracerPid:"))
        .and_then(|v| v.trim().parse::<u32>().ok())
        .filter(|&t| t != 0)
}

/// The process tracing process `pid`, if any.
#[cfg(not(target_os = "linux"))]
pub fn tracer_of(_pid: u32) -> Option<u32> {
    None
}

/// The parent of process `pid`, `None` when it has none or is gone: how
/// a process forked from a patched one finds the journal it inherited.
#[cfg(target_os = "linux")]
pub fn parent_of(pid: u32) -> Option<u32> {
    linux::parent_of(pid)
}

/// The descendants of process `pid`, parents before children (none on
/// platforms where this is not known yet).
#[cfg(target_os = "linux")]
pub fn descendants(pid: u32) -> Vec<u32> {
    linux::family::descendants(pid)
}

/// The descendants of process `pid` (not known on this platform).
#[cfg(not(target_os = "linux"))]
pub fn descendants(_pid: u32) -> Vec<u32> {
    Vec::new()
}

/// Whether processes `a` and `b` run the same executable file (a forked
/// worker does; one that called `exec` does not).
#[cfg(target_os = "linux")]
pub fn same_program(a: u32, b: u32) -> bool {
    linux::family::same_program(a, b)
}

/// Whether two processes run the same file (not known on this platform).
#[cfg(not(target_os = "linux"))]
pub fn same_program(_a: u32, _b: u32) -> bool {
    false
}

/// The processes running the executable file at `path`, in pid order.
#[cfg(target_os = "linux")]
pub fn running(path: &std::path::Path) -> std::io::Result<Vec<u32>> {
    linux::family::running(path)
}

/// The processes running a file (not known on this platform).
#[cfg(not(target_os = "linux"))]
pub fn running(_path: &std::path::Path) -> std::io::Result<Vec<u32>> {
    Err(std::io::Error::other("not supported on this platform"))
}

/// The processes other than relive with the file at `path` open for
/// writing, with their command names (see `linux::family::writers`).
#[cfg(target_os = "linux")]
pub fn writers(path: &std::path::Path) -> Vec<(u32, String)> {
    linux::family::writers(path)
}

/// The writers of a file (not known on this platform: none).
#[cfg(not(target_os = "linux"))]
pub fn writers(_path: &std::path::Path) -> Vec<(u32, String)> {
    Vec::new()
}

/// Starts `command` held at its entry point: loaded and linked, none of
/// its code run, until [`release`] (see `linux::held`).
#[cfg(target_os = "linux")]
pub fn spawn_held(command: &mut std::process::Command) -> Result<std::process::Child> {
    linux::held::spawn_held(command)
}

/// Starting a program held (not supported on this platform).
#[cfg(not(target_os = "linux"))]
pub fn spawn_held(_command: &mut std::process::Command) -> Result<std::process::Child> {
    Err(ProcessError::Unsupported {
        what: "starting a program held at its entry",
    })
}

/// Whether process `pid`'s program counter `pc` is its program's entry
/// point: a program [`spawn_held`] holds there before any of its code
/// (or its C library's start-up) has run.
#[cfg(target_os = "linux")]
pub fn at_entry(pid: u32, pc: u64) -> bool {
    linux::held::entry_point(pid).is_ok_and(|entry| entry == pc)
}

/// Whether a process is at its entry point (not known on this platform).
#[cfg(not(target_os = "linux"))]
pub fn at_entry(_pid: u32, _pc: u64) -> bool {
    false
}

/// Lets a program [`spawn_held`] started run.
#[cfg(target_os = "linux")]
pub fn release(pid: u32) {
    linux::held::release(pid)
}

/// Lets a held program run (nothing to do on this platform).
#[cfg(not(target_os = "linux"))]
pub fn release(_pid: u32) {}

/// The parent of process `pid` (not known on this platform).
#[cfg(not(target_os = "linux"))]
pub fn parent_of(_pid: u32) -> Option<u32> {
    None
}

/// When process `pid` started (not known on this platform).
#[cfg(not(target_os = "linux"))]
pub fn started_at(_pid: u32) -> std::io::Result<Option<u64>> {
    Err(std::io::Error::other("not supported on this platform"))
}

/// Opens the process `pid` with this platform's backend.
#[cfg(not(target_os = "linux"))]
pub fn open(_pid: u32) -> Result<Box<dyn Process>> {
    Err(ProcessError::Unsupported {
        what: "opening a process",
    })
}

/// Kills every process of process group `group` (SIGKILL). The caller
/// must know the group still exists: its leader is a child not reaped
/// yet, so the id cannot have been given to another group.
#[cfg(target_os = "linux")]
pub fn kill_process_group(group: u32) -> std::io::Result<()> {
    let group = i32::try_from(group).map_err(|_| std::io::Error::other("not a process group id"))?;
    nix::sys::signal::killpg(nix::unistd::Pid::from_raw(group), nix::sys::signal::Signal::SIGKILL)
        .map_err(std::io::Error::from)
}

/// Kills every process of process group `group`.
#[cfg(not(target_os = "linux"))]
pub fn kill_process_group(_group: u32) -> std::io::Result<()> {
    Err(std::io::Error::other("not supported on this platform"))
}

/// The name of signal number `signal` on this platform (`SIGSEGV`), or
/// `signal N` for one it does not name.
#[cfg(target_os = "linux")]
pub fn signal_name(signal: i32) -> String {
    nix::sys::signal::Signal::try_from(signal).map_or_else(|_| format!("signal {signal}"), |s| s.as_str().to_string())
}

/// The name of signal number `signal` on this platform.
#[cfg(not(target_os = "linux"))]
pub fn signal_name(signal: i32) -> String {
    format!("signal {signal}")
}
