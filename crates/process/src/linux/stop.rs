//! Stopping every thread of a process with ptrace, without signals, and
//! running system calls inside it.
//!
//! `PTRACE_SEIZE` attaches without stopping; `PTRACE_INTERRUPT` then stops
//! the thread with a ptrace event rather than a `SIGSTOP` the program could
//! see. Threads are seized and interrupted in one pass and waited for in a
//! second, so the pause is one round of syscalls per thread rather than one
//! scheduling delay per thread. The task list is re-read until no new
//! thread appears (a thread that was in `clone` while we attached), or
//! until the kernel's thread count says we hold every thread.
//!
//! ptrace ties each tracee to the OS thread that attached it, so a
//! [`LinuxStopped`] is neither `Send` nor `Sync`.

use foldhash::{HashMap, HashSet, HashSetExt};
use std::cell::RefCell;
use std::marker::PhantomData;

use nix::errno::Errno;
use nix::sys::ptrace;
use nix::sys::signal::Signal;
use nix::unistd::Pid;

use super::code_search::{self, Found};
use super::return_frame;
use super::wait::{self, Waited};
use super::LinuxProcess;
use crate::error::{ProcessError, Result};
use crate::{CallOutcome, Process, Protection, Registers, Stopped};

/// x86-64 Linux system call numbers used remotely.
const SYS_MMAP: u64 = 9;
const SYS_MPROTECT: u64 = 10;
const SYS_MUNMAP: u64 = 11;
const MAP_PRIVATE: u64 = 0x02;
const MAP_ANONYMOUS: u64 = 0x20;
const MAP_FIXED_NOREPLACE: u64 = 0x10_0000;
/// Room the way-back frame leaves between itself and the lowest page of
/// the main stack's mapping (the kernel grows the stack below it).
const MAIN_STACK_MARGIN: u64 = 4096;
/// Signals a function raises by faulting: a called function that raises
/// one is abandoned (the signal is not delivered).
const SYNCHRONOUS_FAULTS: [i32; 5] = [
    nix::libc::SIGSEGV,
    nix::libc::SIGBUS,
    nix::libc::SIGILL,
    nix::libc::SIGFPE,
    nix::libc::SIGTRAP,
];
/// How far into executable file mappings to look for a `syscall`
/// instruction when the vDSO has none.
const SYSCALL_SEARCH_LIMIT: usize = 16 << 20;

/// Where remote system calls find their `syscall` instruction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyscallSite {
    /// An existing `0f 05` in the vDSO or the executable file mappings,
    /// falling back to [`SyscallSite::AtPc`] when there is none.
    Search,
    /// Written over the worker thread's current instruction for the call
    /// and restored right after.
    AtPc,
}

/// What [`LinuxStopped::run_until`] waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Until {
    /// One instruction run (`PTRACE_SINGLESTEP`).
    Stepped,
    /// A system call's entry or exit (`PTRACE_SYSCALL`).
    SyscallStop,
}

struct Tracee {
    tid: u32,
    /// Signals taken out of the thread's queue while relive held it, in
    /// order, queued to it again as it is resumed so the program loses
    /// none. (Rare: signals race only the stop itself, and remote system
    /// calls run with signals blocked. Keeping only the last of them lost
    /// real-time signals, which queue.)
    pending: Vec<wait::Held>,
}

/// Every thread of one process, stopped. Dropping it resumes them all.
pub struct LinuxStopped<'p> {
    process: &'p LinuxProcess,
    tracees: Vec<Tracee>,
    /// The `syscall` instruction and the instructions a borrowed
    /// thread's way back runs through ([`return_frame`]), once searched
    /// for (without gadgets, system calls run the unprotected way).
    code: Option<Found>,
    /// Each held thread's registers as last read or set: they cannot
    /// change until relive runs the thread again (which forgets them), so
    /// a redirect that checks every thread and then records where each
    /// is reads them once, not twice (1,000 `PTRACE_GETREGS` saved in a
    /// 1,000-thread pause).
    known_registers: RefCell<HashMap<u32, Registers>>,
    site: SyscallSite,
    detached: bool,
    /// Termination signals held back until the threads are resumed.
    _still: crate::critical::Critical,
    _bound_to_this_thread: PhantomData<*const ()>,
}

fn pid(tid: u32) -> Pid {
    Pid::from_raw(tid as i32)
}

impl<'p> LinuxStopped<'p> {
    /// No thread held yet (termination signals already held back).
    fn holding_none(process: &'p LinuxProcess) -> LinuxStopped<'p> {
        LinuxStopped {
            process,
            tracees: Vec::new(),
            code: None,
            known_registers: RefCell::default(),
            site: SyscallSite::Search,
            detached: false,
            _still: crate::critical::Critical::enter(),
            _bound_to_this_thread: PhantomData,
        }
    }

    pub(super) fn attach_all(process: &'p LinuxProcess) -> Result<LinuxStopped<'p>> {
        let mut stopped = LinuxStopped::holding_none(process);
        let mut seen = HashSet::new();
        // Re-list until a pass finds no thread we have not seen: every
        // thread we know of is stopped, so none can be creating new ones.
        loop {
            let new: Vec<u32> = process.task_ids()?.into_iter().filter(|t| seen.insert(*t)).collect();
            if new.is_empty() {
                break;
            }
            stopped.attach(&new)?;
            // Shortcut for the usual case: stopped threads cannot exit, so
            // if the kernel's live-thread count equals what we hold, we
            // hold them all (reading `status` is much cheaper than listing
            // a thousand tasks again).
            if process.thread_count() == Some(stopped.tracees.len()) {
                break;
            }
        }
        if stopped.tracees.is_empty() {
            return Err(process.gone("stopping its threads"));
        }
        Ok(stopped)
    }

    /// Stops one thread: the main thread, or (a zombie leader runs
    /// nothing) the first other thread that can be stopped.
    pub(super) fn attach_one(process: &'p LinuxProcess) -> Result<LinuxStopped<'p>> {
        let mut stopped = LinuxStopped::holding_none(process);
        let mut tids = process.task_ids()?;
        // The leader first.
        tids.sort_by_key(|&t| t != process.pid);
        for tid in tids {
            stopped.attach(&[tid])?;
            if !stopped.tracees.is_empty() {
                return Ok(stopped);
            }
        }
        Err(process.gone("stopping one of its threads"))
    }

    /// Seizes and interrupts `tids`, then waits for each to stop. Threads
    /// that exit meanwhile are left out.
    fn attach(&mut self, tids: &[u32]) -> Result<()> {
        let mut seized = Vec::with_capacity(tids.len());
        for &tid in tids {
            match ptrace::seize(pid(tid), ptrace::Options::empty()) {
                Ok(()) => seized.push(tid),
                Err(Errno::ESRCH) => {}
                // A zombie thread leader cannot be attached; it runs nothing.
                Err(Errno::EPERM) if self.is_zombie(tid) => {}
                Err(Errno::EPERM) => return Err(self.process.permission_denied()),
                Err(e) => return Err(self.errno("attaching to a thread", tid, e)),
            }
        }
        for &tid in &seized {
            match ptrace::interrupt(pid(tid)) {
                Ok(()) | Err(Errno::ESRCH) => {}
                Err(e) => {
                    self.tracees.push(Tracee {
                        tid,
                        pending: Vec::new(),
                    });
                    return Err(self.errno("interrupting a thread", tid, e));
                }
            }
        }
        for tid in seized {
            // `None`: the thread exited meanwhile.
            if let Some(pending) = self.wait_for_stop(tid)? {
                self.tracees.push(Tracee {
                    tid,
                    pending: Vec::new(),
                });
                if let Some(sig) = pending {
                    self.keep_pending(tid, sig);
                }
            }
        }
        Ok(())
    }

    /// Waits until `tid` is in a ptrace stop. `Some(pending)` when it is
    /// (with the signal it stopped for, if any), `None` if it exited.
    fn wait_for_stop(&self, tid: u32) -> Result<Option<Option<i32>>> {
        loop {
            match self.wait(tid) {
                Ok(Waited::Event) | Ok(Waited::Syscall) => return Ok(Some(None)),
                // A signal raced our interrupt: the thread stopped to have
                // it delivered. Deliver it now, in its place in the queue
                // (kept for later, it would be queued again behind the
                // signals that came after it), and ask for the stop again.
                Ok(Waited::Signal(sig)) => {
                    self.forget_registers(tid);
                    let delivered = wait::cont(tid, sig).and_then(|()| ptrace::interrupt(pid(tid)));
                    match delivered {
                        Ok(()) => continue,
                        Err(Errno::ESRCH) => return Ok(None),
                        // Kept for the resume instead.
                        Err(_) => return Ok(Some(Some(sig))),
                    }
                }
                Ok(Waited::Gone) | Err(Errno::ECHILD) => return Ok(None),
                Ok(Waited::Continued) | Ok(Waited::StillAlive) | Err(Errno::EINTR) => continue,
                Err(e) => return Err(self.errno("waiting for a thread to stop", tid, e)),
            }
        }
    }

    /// `waitpid` on one tracee that cannot hang when the process dies.
    ///
    /// A blocking wait would: when the process is killed while its threads
    /// are stopped, the kernel reports the thread-group leader's death only
    /// after every other thread has been reaped, and those are traced by
    /// relive, waiting on the leader. So this polls; while the thread has
    /// not changed state it checks whether it is dying, and then reaps the
    /// other tracees and reports the thread as gone (`ESRCH`).
    fn wait(&self, tid: u32) -> nix::Result<Waited> {
        self.wait_until(tid, None)
    }

    /// [`Self::wait`], giving up at `deadline` (`Ok(Waited::StillAlive)`).
    fn wait_until(&self, tid: u32, deadline: Option<std::time::Instant>) -> nix::Result<Waited> {
        let mut polls = 0u32;
        loop {
            match wait::poll(tid) {
                Ok(Waited::StillAlive) => {}
                other => return other,
            }
            if deadline.is_some_and(|d| std::time::Instant::now() >= d) {
                return Ok(Waited::StillAlive);
            }
            polls += 1;
            // Threads stop within microseconds: yield first, then look at
            // /proc between short sleeps.
            if polls < 64 {
                std::thread::yield_now();
                continue;
            }
            if self.is_zombie(tid) {
                for t in self.tracees.iter().filter(|t| t.tid != tid) {
                    while let Ok(Waited::Event | Waited::Signal(_) | Waited::Syscall) = wait::poll(t.tid) {}
                }
                return match wait::poll(tid) {
                    Ok(Waited::StillAlive) => Err(Errno::ESRCH),
                    other => other,
                };
            }
            std::thread::sleep(std::time::Duration::from_micros(50));
        }
    }

    fn is_zombie(&self, tid: u32) -> bool {
        self.process.state(Some(tid)).is_none_or(crate::ThreadState::has_exited)
    }

    fn errno(&self, doing: &'static str, tid: u32, e: Errno) -> ProcessError {
        if e == Errno::ESRCH || !std::path::Path::new(&format!("/proc/{}", self.process.pid)).exists() {
            return self.process.gone(doing);
        }
        ProcessError::Io {
            pid: self.process.pid,
            what: format!("{doing} (thread {tid})"),
            cause: std::io::Error::from_raw_os_error(e as i32),
        }
    }

    /// `tid` runs (or may have run): its registers must be read again.
    fn forget_registers(&self, tid: u32) {
        self.known_registers.borrow_mut().remove(&tid);
    }

    fn check_tid(&self, tid: u32) -> Result<()> {
        if self.tracees.iter().any(|t| t.tid == tid) {
            Ok(())
        } else {
            Err(ProcessError::NoSuchThread {
                pid: self.process.pid,
                tid,
            })
        }
    }

    /// The thread that runs remote system calls: the main thread if it is
    /// stopped, else any.
    fn worker(&self) -> u32 {
        let leader = self.process.pid;
        match self.tracees.iter().find(|t| t.tid == leader) {
            Some(t) => t.tid,
            None => self.tracees[0].tid,
        }
    }

    /// Chooses where remote system calls find their instruction (the
    /// default, [`SyscallSite::Search`], writes nothing to the target).
    pub fn use_syscall_site(&mut self, site: SyscallSite) {
        self.site = site;
    }

    /// Runs system call `nr` with `args` in the target and returns the raw
    /// result (a negative errno on failure).
    ///
    /// The worker thread's registers are saved, pointed at a `syscall`
    /// instruction (found in the vDSO or the program's code, or written
    /// over the thread's current instruction and restored afterwards),
    /// single-stepped, and restored. `orig_rax` is set to -1 meanwhile so
    /// that the kernel does not "restart" a system call the thread was
    /// blocked in; restoring the saved registers restores that restart, so a
    /// thread stopped inside `read` or `nanosleep` carries on with it.
    ///
    /// Every signal the thread can block is blocked meanwhile
    /// (`PTRACE_SETSIGMASK`), so signals sent to it stay queued in the
    /// kernel, in their order, and are delivered once the mask is back: a
    /// signal delivered during the call would stop the thread, be taken
    /// out of the queue and have to be queued again behind later ones.
    /// (The way back's frame holds the thread's own mask, so a relive
    /// killed meanwhile leaves it as it was.)
    pub fn syscall(&mut self, nr: u64, args: [u64; 6]) -> Result<i64> {
        let tid = self.worker();
        let mask = sigmask(tid);
        let masked = mask.is_some() && set_sigmask(tid, !0u64);
        let ran = self.syscall_masked(tid, nr, args);
        if masked {
            if let Some(mask) = mask {
                if !set_sigmask(tid, mask) && ran.is_ok() {
                    return Err(self.errno("giving a thread back its signal mask", tid, Errno::last()));
                }
            }
        }
        ran
    }

    fn syscall_masked(&mut self, tid: u32, nr: u64, args: [u64; 6]) -> Result<i64> {
        let saved = self.registers(tid)?;
        if self.site == SyscallSite::Search {
            if let Some(frame) = self.way_back(tid, &saved)? {
                return self.syscall_with_way_back(tid, &saved, frame, nr, args);
            }
        }
        let found = match self.site {
            SyscallSite::Search => self.search_code()?.syscall,
            SyscallSite::AtPc => None,
        };
        let (insn, overwritten) = match found {
            Some(addr) => (addr, None),
            None => {
                let mut old = [0u8; 2];
                self.process.read(saved.rip, &mut old)?;
                self.process.write(saved.rip, &code_search::SYSCALL)?;
                (saved.rip, Some(old))
            }
        };
        // From here until the registers are restored, a relive that dies
        // leaves this thread running someone else's registers: only for
        // a program without the instructions a way back needs.
        let result = self.step_syscall(tid, &saved, insn, nr, args);
        let restored = self.set_registers(tid, &saved);
        let restored = restored.and_then(|()| self.clear_step(tid));
        let unpatched = match overwritten {
            Some(old) => self.process.write(saved.rip, &old),
            None => Ok(()),
        };
        let value = result?;
        restored?;
        unpatched?;
        Ok(value)
    }

    /// Writes the way back ([`return_frame`]) for thread `tid` below its
    /// stack; `None` (nothing written) when the program lacks the
    /// instructions it needs or the thread's state cannot be read.
    fn way_back(&mut self, tid: u32, saved: &Registers) -> Result<Option<return_frame::Frame>> {
        Ok(self.way_back_and_state(tid, saved)?.map(|w| w.frame))
    }

    /// [`Self::way_back`], with the extended state and signal mask it
    /// holds (what the thread gets back after a call: see [`Self::call`]).
    fn way_back_and_state(&mut self, tid: u32, saved: &Registers) -> Result<Option<WayBack>> {
        let Some(gadgets) = self.search_code()?.gadgets() else {
            return Ok(None);
        };
        let (Some(xstate), Some(sigmask)) = (xstate(tid), sigmask(tid)) else {
            return Ok(None);
        };
        let Some(frame) = return_frame::build(saved, sigmask, &xstate, gadgets) else {
            return Ok(None);
        };
        // Only below the stack pointer of the main stack, with the frame
        // inside it: a thread running a signal handler on an alternate
        // stack (a buffer in .bss or on the heap) has the program's data
        // below that stack, and relive cannot read where it ends. Else the
        // unprotected way.
        let inside = |maps: &[crate::Mapping]| {
            maps.iter()
                .any(|m| m.path == "[stack]" && m.start + MAIN_STACK_MARGIN <= frame.addr && saved.rsp <= m.end)
        };
        // The mappings last read answer when they say yes (a stack only
        // grows); else they are read again.
        let known = self.process.maps_cache.borrow().as_deref().is_some_and(inside);
        if !known && !inside(&self.process.maps()?) {
            return Ok(None);
        }
        if self.process.write(frame.addr, &frame.bytes).is_err() {
            return Ok(None);
        }
        let mut back = vec![0u8; frame.bytes.len()];
        if self.process.read(frame.addr, &mut back).is_err() || back != frame.bytes {
            return Ok(None);
        }
        Ok(Some(WayBack {
            frame,
            state: ExtraState { xstate, sigmask },
        }))
    }

    /// Runs the system call with the thread's stack pointing at its way
    /// back, stopping it at the call's entry and exit (`PTRACE_SYSCALL`:
    /// no trap flag is ever set, so nothing is left behind if relive
    /// dies), then gives the thread its registers back.
    fn syscall_with_way_back(
        &mut self,
        tid: u32,
        saved: &Registers,
        frame: return_frame::Frame,
        nr: u64,
        args: [u64; 6],
    ) -> Result<i64> {
        let gadgets = self
            .code
            .and_then(|c| c.gadgets())
            .expect("found before the frame was built");
        let mut regs = *saved;
        regs.rip = gadgets.syscall_ret;
        regs.rsp = frame.sp;
        regs.rax = nr;
        regs.orig_rax = u64::MAX;
        [regs.rdi, regs.rsi, regs.rdx, regs.r10, regs.r8, regs.r9] = args;
        self.set_registers(tid, &regs)?;
        failpoint_in_remote_syscall("in-remote-syscall");
        let run = self
            .syscall_stop(tid)
            .and_then(|()| {
                failpoint_in_remote_syscall("at-remote-syscall-entry");
                self.syscall_stop(tid)
            })
            .and_then(|()| self.registers(tid));
        // The restart of an interrupted call is applied to the registers
        // themselves: from this stop the kernel would not restart it.
        let restored = self.set_registers(tid, &return_frame::resumable(saved, true));
        let restored = restored.and_then(|()| self.clear_step(tid));
        let after = run?;
        restored?;
        if after.rip != gadgets.syscall_ret + 2 {
            return Err(ProcessError::Io {
                pid: self.process.pid,
                what: format!(
                    "running a system call at {:#x} left thread {tid} at {:#x}",
                    gadgets.syscall_ret, after.rip
                ),
                cause: std::io::Error::other("the system call did not run"),
            });
        }
        Ok(after.rax as i64)
    }

    /// Runs the function at `addr` on thread `tid`, whose registers are
    /// `saved`, over the way back `frame`: the function returns into the
    /// way back's chain (through a plain `ret` first, so it starts with
    /// the stack aligned as after a call), which ends in `rt_sigreturn`.
    /// relive watches for that system call (`PTRACE_SYSCALL`, no trap
    /// flag), so if relive dies meanwhile the thread still finishes the
    /// call and carries on where it was.
    fn call_with_way_back(
        &mut self,
        tid: u32,
        saved: &Registers,
        way: &WayBack,
        addr: u64,
        args: &[u64],
        timeout: std::time::Duration,
    ) -> Result<CallOutcome> {
        let doing = "calling a function in it";
        let gadgets = self
            .code
            .and_then(|c| c.gadgets())
            .expect("found before the frame was built");
        let (frame, state) = (&way.frame, &way.state);
        // `pop rax; ret` + 1 is a `ret`.
        let entry_sp = frame.sp - 8;
        self.process.write(entry_sp, &(gadgets.pop_rax_ret + 1).to_le_bytes())?;
        let mut regs = *saved;
        regs.rip = addr;
        regs.rsp = entry_sp;
        regs.rax = 0;
        regs.orig_rax = u64::MAX;
        regs.eflags &= !return_frame::EFLAGS_TF;
        let argument_registers = [
            &mut regs.rdi,
            &mut regs.rsi,
            &mut regs.rdx,
            &mut regs.rcx,
            &mut regs.r8,
            &mut regs.r9,
        ];
        for (register, &value) in argument_registers.into_iter().zip(args) {
            *register = value;
        }
        self.set_registers(tid, &regs)?;
        if let Err(e) = ptrace::setoptions(pid(tid), ptrace::Options::PTRACE_O_TRACESYSGOOD) {
            return Err(self.errno(doing, tid, e));
        }
        let back = gadgets.syscall_ret + 2;
        let deadline = std::time::Instant::now() + timeout;
        failpoint_in_remote_syscall("in-remote-call");
        loop {
            self.forget_registers(tid);
            ptrace::syscall(pid(tid), None).map_err(|e| self.errno(doing, tid, e))?;
            match self.wait_until(tid, Some(deadline)) {
                Ok(Waited::Syscall) => {
                    let now = self.registers(tid)?;
                    if now.rip == back && now.orig_rax == return_frame::SYS_RT_SIGRETURN {
                        // Not run: the thread gets what the frame holds
                        // from relive, here, and the call is skipped
                        // (`orig_rax` -1, which the registers given back
                        // have). Run, rt_sigreturn would also end the
                        // kernel's restart of a sleep the stop
                        // interrupted: `restart_syscall` then failed with
                        // EINTR, and the program woke early. The
                        // registers go last: a relive that dies before
                        // leaves the rt_sigreturn to run, one that dies
                        // after leaves the thread as it was.
                        if !set_xstate(tid, &state.xstate) || !set_sigmask(tid, state.sigmask) {
                            return Err(self.errno(doing, tid, Errno::last()));
                        }
                        failpoint_in_remote_syscall("at-call-return");
                        self.set_registers(tid, &return_frame::resumable(saved, true))?;
                        failpoint_in_remote_syscall("after-call-return");
                        self.syscall_stop(tid)?;
                        return Ok(CallOutcome::Returned);
                    }
                }
                Ok(Waited::Signal(sig)) if SYNCHRONOUS_FAULTS.contains(&sig) => {
                    let rip = self.registers(tid)?.rip;
                    return Ok(CallOutcome::Crashed { signal: sig, rip });
                }
                Ok(Waited::Signal(sig)) => self.keep_pending(tid, sig),
                Ok(Waited::StillAlive) => {
                    // Out of time: stop it where it is.
                    match ptrace::interrupt(pid(tid)) {
                        Ok(()) | Err(Errno::ESRCH) => {}
                        Err(e) => return Err(self.errno(doing, tid, e)),
                    }
                    self.settle_stop(tid, doing)?;
                    let rip = self.registers(tid)?.rip;
                    return Ok(CallOutcome::TimedOut { rip });
                }
                Ok(Waited::Gone) | Err(Errno::ECHILD) => {
                    self.tracees.retain(|t| t.tid != tid);
                    return Err(self.process.gone(doing));
                }
                Ok(_) | Err(Errno::EINTR) => {}
                Err(e) => return Err(self.errno(doing, tid, e)),
            }
        }
    }

    /// Resumes `tid` until its next system-call stop (entry or exit). A
    /// signal that arrives instead is kept for the resume.
    fn syscall_stop(&mut self, tid: u32) -> Result<()> {
        let doing = "running a system call in it";
        if let Err(e) = ptrace::setoptions(pid(tid), ptrace::Options::PTRACE_O_TRACESYSGOOD) {
            return Err(self.errno(doing, tid, e));
        }
        self.run_until(tid, Until::SyscallStop, doing)
    }

    /// Clears the single-step state of stopped thread `tid` without
    /// letting it run: the interrupt, asked for while it is stopped, is a
    /// trap pending for its next resume, and PTRACE_CONT (which ends
    /// single-stepping) resumes it straight into that trap. Left set, the
    /// trap flag would kill the process with SIGTRAP if relive died before
    /// resuming the thread.
    fn clear_step(&mut self, tid: u32) -> Result<()> {
        let doing = "ending the single-stepping of a thread";
        match ptrace::interrupt(pid(tid)) {
            Ok(()) => {}
            Err(Errno::ESRCH) => return Err(self.process.gone(doing)),
            Err(e) => return Err(self.errno(doing, tid, e)),
        }
        self.forget_registers(tid);
        ptrace::cont(pid(tid), None).map_err(|e| self.errno(doing, tid, e))?;
        self.settle_stop(tid, doing)
    }

    /// Waits for `tid`, interrupted, to stop, keeping a signal that raced
    /// the interrupt for its resume; a thread that exited instead is
    /// forgotten and reported gone.
    fn settle_stop(&mut self, tid: u32, doing: &'static str) -> Result<()> {
        match self.wait_for_stop(tid)? {
            Some(pending) => {
                if let Some(sig) = pending {
                    self.keep_pending(tid, sig);
                }
                Ok(())
            }
            None => {
                self.tracees.retain(|t| t.tid != tid);
                Err(self.process.gone(doing))
            }
        }
    }

    /// Keeps signal `sig`, which arrived for `tid` while relive held it,
    /// to be delivered when it is resumed.
    fn keep_pending(&mut self, tid: u32, sig: i32) {
        // What the kernel says of it (sender, value), read while the
        // thread is in its signal-delivery stop.
        let info = ptrace::getsiginfo(pid(tid)).ok();
        if let Some(t) = self.tracees.iter_mut().find(|t| t.tid == tid) {
            t.pending.push(wait::Held { sig, info });
        }
    }

    /// Runs one instruction of `tid`. A signal that arrives instead is
    /// kept for the resume, and the step tried again.
    fn single_step(&mut self, tid: u32, doing: &'static str) -> Result<()> {
        self.run_until(tid, Until::Stepped, doing)
    }

    /// Resumes `tid` until `until` happens; a signal that arrives first
    /// is kept for the resume, and the thread resumed again.
    fn run_until(&mut self, tid: u32, until: Until, doing: &'static str) -> Result<()> {
        self.forget_registers(tid);
        loop {
            let resumed = match until {
                Until::Stepped => ptrace::step(pid(tid), None),
                Until::SyscallStop => ptrace::syscall(pid(tid), None),
            };
            resumed.map_err(|e| self.errno(doing, tid, e))?;
            match self.wait(tid) {
                Ok(Waited::Signal(nix::libc::SIGTRAP)) if until == Until::Stepped => return Ok(()),
                Ok(Waited::Syscall) if until == Until::SyscallStop => return Ok(()),
                Ok(Waited::Signal(sig)) => self.keep_pending(tid, sig),
                Ok(Waited::Gone) | Err(Errno::ECHILD) => {
                    self.tracees.retain(|t| t.tid != tid);
                    return Err(self.process.gone(doing));
                }
                Ok(_) | Err(Errno::EINTR) => {}
                Err(e) => return Err(self.errno(doing, tid, e)),
            }
        }
    }

    fn step_syscall(&mut self, tid: u32, saved: &Registers, insn: u64, nr: u64, args: [u64; 6]) -> Result<i64> {
        let mut regs = *saved;
        regs.rip = insn;
        regs.rax = nr;
        regs.orig_rax = u64::MAX;
        [regs.rdi, regs.rsi, regs.rdx, regs.r10, regs.r8, regs.r9] = args;
        self.set_registers(tid, &regs)?;
        failpoint_in_remote_syscall("in-remote-syscall");
        self.single_step(tid, "running a system call in it")?;
        let after = self.registers(tid)?;
        if after.rip != insn + 2 {
            return Err(ProcessError::Io {
                pid: self.process.pid,
                what: format!(
                    "single-stepping the syscall instruction at {insn:#x} left thread {tid} at {:#x}",
                    after.rip
                ),
                cause: std::io::Error::other("the system call did not run"),
            });
        }
        Ok(after.rax as i64)
    }

    /// A `syscall` instruction and the way back's gadgets in the target's
    /// code, searched for once: the vDSO first (it has `syscall` on
    /// x86-64), then executable file mappings in pieces (what is wanted is
    /// usually within the first few pages of libc), at most
    /// [`SYSCALL_SEARCH_LIMIT`] bytes in all.
    fn search_code(&mut self) -> Result<Found> {
        if let Some(found) = self.code {
            return Ok(found);
        }
        if let Some(found) = self
            .process
            .found_code
            .get()
            .filter(|f| f.complete() && self.still_there(f))
        {
            self.code = Some(found);
            return Ok(found);
        }
        let maps = self.process.maps()?;
        let vdso = maps.iter().filter(|m| m.path == "[vdso]");
        let files = maps.iter().filter(|m| m.is_file());
        let mut budget = SYSCALL_SEARCH_LIMIT as u64;
        let mut found = Found::default();
        const PIECE: u64 = 64 << 10;
        let mut bytes = Vec::new();
        'mappings: for m in vdso.chain(files).filter(|m| m.executable() && m.readable()) {
            let mut at = m.start;
            while at < m.end && budget > 0 && !found.complete() {
                let len = (m.end - at).min(PIECE).min(budget);
                bytes.resize(len as usize, 0);
                if self.process.read(at, &mut bytes).is_err() {
                    continue 'mappings;
                }
                found.search(at, &bytes, m.is_file());
                budget -= len;
                if at + len >= m.end {
                    break;
                }
                at += len.saturating_sub(code_search::OVERLAP).max(1);
            }
        }
        self.code = Some(found);
        self.process.found_code.set(Some(found));
        Ok(found)
    }

    /// Whether each instruction `found` names (an earlier stop's search,
    /// or hints from a journal on disk) is still there, in code the process
    /// can run: a library it came from may have been unloaded since.
    fn still_there(&self, found: &Found) -> bool {
        let executable = |maps: &[crate::Mapping], addr: u64, len: u64| {
            maps.iter()
                .any(|m| m.executable() && m.start <= addr && addr.saturating_add(len) <= m.end)
        };
        let known = self.process.maps_cache.borrow().clone();
        let maps = match known {
            Some(maps) => maps,
            None => match self.process.maps() {
                Ok(maps) => maps,
                Err(_) => return false,
            },
        };
        found.expected().all(|(addr, pattern)| {
            let mut bytes = [0u8; 3];
            let bytes = &mut bytes[..pattern.len()];
            executable(&maps, addr, pattern.len() as u64) && self.process.read(addr, bytes).is_ok() && bytes == pattern
        })
    }

    fn syscall_ok(&mut self, name: &str, nr: u64, args: [u64; 6]) -> Result<i64> {
        let ret = self.syscall(nr, args)?;
        if (-4095..0).contains(&ret) {
            return Err(ProcessError::RemoteSyscall {
                pid: self.process.pid,
                call: name.to_string(),
                cause: std::io::Error::from_raw_os_error(-ret as i32),
            });
        }
        Ok(ret)
    }

    fn detach_all(&mut self) -> Result<()> {
        if self.detached {
            return Ok(());
        }
        self.detached = true;
        let mut first_error = None;
        for t in &self.tracees {
            // Queued again, not injected by the detach: the kernel injects a
            // detach's signal only from a signal-delivery stop, and ignores
            // it in the other stops a held thread ends in.
            for held in &t.pending {
                if let Err(e) = wait::requeue(self.process.pid, t.tid, held) {
                    first_error.get_or_insert(self.errno("handing a thread back its signals", t.tid, e));
                }
            }
            match wait::detach(t.tid, 0) {
                Ok(()) => {}
                // Not in a stop: killed meanwhile (a program killed while
                // relive had it stopped). Its death waits for its tracer
                // to collect it, and its parent's `wait` until then: the
                // parent of a program killed during a `relive watch`
                // waited for ever, and the watch with it (the program
                // still in /proc, a zombie).
                Err(Errno::ESRCH) => {
                    let _ = wait::poll(t.tid);
                }
                Err(e) => {
                    first_error.get_or_insert(self.errno("resuming its threads", t.tid, e));
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// For the tests: relive dies (SIGKILL) at this point of a remote system
/// call or function call, with a thread running borrowed registers.
fn failpoint_in_remote_syscall(point: &str) {
    if std::env::var("RELIVE_FAILPOINT").is_ok_and(|v| v.strip_prefix("kill-").is_some_and(|p| p == point)) {
        let _ = nix::sys::signal::raise(Signal::SIGKILL);
    }
    if point == "in-remote-syscall"
        && std::env::var_os("RELIVE_FAILPOINT").is_some_and(|v| v == "sigint-in-remote-syscall")
    {
        // Ctrl-C at the worst moment: it must wait until the threads are
        // resumed.
        let _ = nix::sys::signal::raise(Signal::SIGINT);
    }
}

/// The XSAVE state (x87, SSE, AVX, ...) of stopped thread `tid`, in the
/// layout a signal frame holds.
fn xstate(tid: u32) -> Option<Vec<u8>> {
    const NT_X86_XSTATE: usize = 0x202;
    // Large enough for every state component x86-64 has (AMX included).
    let mut buf = vec![0u8; 16 << 10];
    let mut iov = nix::libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: PTRACE_GETREGSET writes at most `iov.iov_len` bytes to
    // `iov.iov_base`, which points at `buf` (alive and that long), and
    // stores the length it wrote back into `iov`.
    let ret = unsafe {
        nix::libc::ptrace(
            nix::libc::PTRACE_GETREGSET,
            tid as nix::libc::pid_t,
            NT_X86_XSTATE as *mut nix::libc::c_void,
            (&mut iov as *mut nix::libc::iovec).cast::<nix::libc::c_void>(),
        )
    };
    if ret != 0 {
        return None;
    }
    buf.truncate(iov.iov_len);
    Some(buf)
}

/// The way back written for a thread, and what it gives back besides the
/// general registers.
struct WayBack {
    frame: return_frame::Frame,
    state: ExtraState,
}

/// What a thread's state holds besides its general registers, as a
/// signal frame carries it: the XSAVE state ([`xstate`]) and the blocked
/// signals.
struct ExtraState {
    xstate: Vec<u8>,
    sigmask: u64,
}

/// Sets the XSAVE state of stopped thread `tid` to `state` (as [`xstate`]
/// read it); whether it did.
fn set_xstate(tid: u32, state: &[u8]) -> bool {
    const NT_X86_XSTATE: usize = 0x202;
    let mut iov = nix::libc::iovec {
        iov_base: state.as_ptr().cast_mut().cast(),
        iov_len: state.len(),
    };
    // SAFETY: PTRACE_SETREGSET only reads `iov.iov_len` bytes from
    // `iov.iov_base`, which points at `state` (alive and that long); `iov`
    // lives on this stack frame for the call.
    let ret = unsafe {
        nix::libc::ptrace(
            nix::libc::PTRACE_SETREGSET,
            tid as nix::libc::pid_t,
            NT_X86_XSTATE as *mut nix::libc::c_void,
            (&mut iov as *mut nix::libc::iovec).cast::<nix::libc::c_void>(),
        )
    };
    ret == 0
}

/// The blocked-signal mask of stopped thread `tid`.
fn sigmask(tid: u32) -> Option<u64> {
    let mut mask = 0u64;
    // SAFETY: PTRACE_GETSIGMASK writes `addr` (8) bytes to `data`, which
    // points at `mask`, an 8-byte integer on this stack frame.
    let ret = unsafe {
        nix::libc::ptrace(
            nix::libc::PTRACE_GETSIGMASK,
            tid as nix::libc::pid_t,
            std::mem::size_of::<u64>() as *mut nix::libc::c_void,
            (&mut mask as *mut u64).cast::<nix::libc::c_void>(),
        )
    };
    (ret == 0).then_some(mask)
}

/// Sets the blocked-signal mask of stopped thread `tid` (the kernel never
/// blocks SIGKILL and SIGSTOP whatever the mask says); whether it did.
fn set_sigmask(tid: u32, mask: u64) -> bool {
    // SAFETY: PTRACE_SETSIGMASK reads `addr` (8) bytes from `data`, which
    // points at `mask`, an 8-byte integer on this stack frame.
    let ret = unsafe {
        nix::libc::ptrace(
            nix::libc::PTRACE_SETSIGMASK,
            tid as nix::libc::pid_t,
            std::mem::size_of::<u64>() as *mut nix::libc::c_void,
            (&mask as *const u64).cast_mut().cast::<nix::libc::c_void>(),
        )
    };
    ret == 0
}

/// Converts between the kernel's register layout and [`Registers`], field
/// by field (the two have the same fields, named the same).
macro_rules! register_conversions {
    ($($field:ident),* $(,)?) => {
        fn from_user_regs(r: &nix::libc::user_regs_struct) -> Registers {
            Registers { $($field: r.$field),* }
        }
        fn to_user_regs(r: &Registers) -> nix::libc::user_regs_struct {
            nix::libc::user_regs_struct { $($field: r.$field),* }
        }
    };
}

register_conversions!(
    rip, rsp, rbp, rax, rbx, rcx, rdx, rsi, rdi, r8, r9, r10, r11, r12, r13, r14, r15, eflags, orig_rax, fs_base,
    gs_base, cs, ss, ds, es, fs, gs,
);

fn prot_bits(prot: Protection) -> u64 {
    (prot.read as u64) | (prot.write as u64) << 1 | (prot.exec as u64) << 2
}

impl Stopped for LinuxStopped<'_> {
    fn thread_ids(&self) -> Vec<u32> {
        self.tracees.iter().map(|t| t.tid).collect()
    }

    fn registers(&self, tid: u32) -> Result<Registers> {
        self.check_tid(tid)?;
        if let Some(known) = self.known_registers.borrow().get(&tid) {
            return Ok(*known);
        }
        let regs = ptrace::getregs(pid(tid)).map_err(|e| self.errno("reading registers", tid, e))?;
        let regs = from_user_regs(&regs);
        self.known_registers.borrow_mut().insert(tid, regs);
        Ok(regs)
    }

    fn set_registers(&mut self, tid: u32, regs: &Registers) -> Result<()> {
        self.check_tid(tid)?;
        // Unknown until the kernel has them (a failed write may have
        // changed nothing or something).
        self.forget_registers(tid);
        ptrace::setregs(pid(tid), to_user_regs(regs)).map_err(|e| self.errno("writing registers", tid, e))?;
        self.known_registers.borrow_mut().insert(tid, *regs);
        Ok(())
    }

    fn map_fixed(&mut self, addr: u64, len: u64, prot: Protection) -> Result<Option<u64>> {
        let flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE;
        let ret = self.syscall(SYS_MMAP, [addr, len, prot_bits(prot), flags, u64::MAX, 0])?;
        if ret == -(Errno::EEXIST as i64) {
            return Ok(None);
        }
        if (-4095..0).contains(&ret) {
            return Err(ProcessError::RemoteSyscall {
                pid: self.process.pid,
                call: format!("mmap({addr:#x}, {len:#x})"),
                cause: std::io::Error::from_raw_os_error(-ret as i32),
            });
        }
        if ret as u64 != addr {
            // A kernel older than 4.17 ignores MAP_FIXED_NOREPLACE and
            // treats the address as a hint: give the memory back.
            self.unmap(ret as u64, len)?;
            return Ok(None);
        }
        Ok(Some(addr))
    }

    fn protect(&mut self, addr: u64, len: u64, prot: Protection) -> Result<()> {
        let call = format!("mprotect({addr:#x}, {len:#x})");
        self.syscall_ok(&call, SYS_MPROTECT, [addr, len, prot_bits(prot), 0, 0, 0])
            .map(drop)
    }

    fn unmap(&mut self, addr: u64, len: u64) -> Result<()> {
        let call = format!("munmap({addr:#x}, {len:#x})");
        self.syscall_ok(&call, SYS_MUNMAP, [addr, len, 0, 0, 0, 0]).map(drop)
    }

    fn call(&mut self, addr: u64, args: &[u64], timeout: std::time::Duration) -> Result<CallOutcome> {
        if args.len() > 6 {
            return Err(ProcessError::Unsupported {
                what: "calling a function with more than six arguments",
            });
        }
        let tid = self.worker();
        let saved = self.registers(tid)?;
        let Some(way) = self.way_back_and_state(tid, &saved)? else {
            return Err(ProcessError::Unsupported {
                what: "calling a function in a process without the instructions of a way back (`syscall; ret`, `pop rax; ret`) or whose main thread is not on its main stack",
            });
        };
        let outcome = self.call_with_way_back(tid, &saved, &way, addr, args, timeout);
        let state = &way.state;
        // Whatever happened, the thread gets its own registers back (the
        // restart of an interrupted system call is in them, and the kernel
        // still has what it needs for it: no rt_sigreturn ran), and the
        // floating-point state and signal mask the frame would give it.
        let restored = match (set_xstate(tid, &state.xstate), set_sigmask(tid, state.sigmask)) {
            (true, true) => Ok(()),
            _ => Err(ProcessError::Io {
                pid: self.process.pid,
                what: format!("giving thread {tid} its floating-point state and signal mask back after a call"),
                cause: std::io::Error::last_os_error(),
            }),
        };
        let restored = restored.and_then(|()| self.set_registers(tid, &return_frame::resumable(&saved, true)));
        let restored = restored.and_then(|()| self.clear_step(tid));
        let outcome = outcome?;
        restored?;
        Ok(outcome)
    }

    fn resume(mut self: Box<Self>) -> Result<()> {
        self.detach_all()
    }
}

impl Drop for LinuxStopped<'_> {
    fn drop(&mut self) {
        let _ = self.detach_all();
    }
}
