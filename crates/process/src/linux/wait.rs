//! `waitpid` for tracees, with signals as raw numbers: nix's `WaitStatus`
//! has no value for a real-time signal (`SIGRTMIN`..), so a tracee that
//! stopped for one made the wait fail (EINVAL), the patch fail, and the
//! signal get lost.

use nix::errno::Errno;
use nix::libc;

/// What a tracee's state change was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Waited {
    /// No change yet (`WNOHANG`).
    StillAlive,
    /// Exited or killed.
    Gone,
    /// A signal-delivery stop, with the signal (any number, real-time
    /// ones included), to be handed back on resume.
    Signal(i32),
    /// A ptrace event stop (`PTRACE_INTERRUPT`, group stops under seize).
    Event,
    /// A system call's entry or exit (`PTRACE_O_TRACESYSGOOD`).
    Syscall,
    /// Continued by `SIGCONT`.
    Continued,
}

/// The state change `status` (from `waitpid`) describes.
pub fn decode(status: i32) -> Waited {
    if libc::WIFEXITED(status) || libc::WIFSIGNALED(status) {
        Waited::Gone
    } else if libc::WIFSTOPPED(status) {
        let sig = libc::WSTOPSIG(status);
        if status >> 16 != 0 {
            Waited::Event
        } else if sig == libc::SIGTRAP | 0x80 {
            Waited::Syscall
        } else {
            Waited::Signal(sig)
        }
    } else if libc::WIFCONTINUED(status) {
        Waited::Continued
    } else {
        Waited::StillAlive
    }
}

/// `waitpid(tid, __WALL | WNOHANG)`.
pub fn poll(tid: u32) -> Result<Waited, Errno> {
    let mut status = 0;
    // SAFETY: waitpid writes one int to `status`, a local that outlives
    // the call; no other memory is passed.
    let ret = unsafe { libc::waitpid(tid as libc::pid_t, &mut status, libc::__WALL | libc::WNOHANG) };
    match ret {
        -1 => Err(Errno::last()),
        0 => Ok(Waited::StillAlive),
        _ => Ok(decode(status)),
    }
}

/// `PTRACE_DETACH` of stopped `tid`, delivering signal `sig` (0: none).
pub fn detach(tid: u32, sig: i32) -> Result<(), Errno> {
    restart(libc::PTRACE_DETACH, tid, sig)
}

/// Resumes stopped thread `tid`, delivering signal `sig` (any number:
/// nix's `Signal` has no real-time values).
pub fn cont(tid: u32, sig: i32) -> Result<(), Errno> {
    restart(libc::PTRACE_CONT, tid, sig)
}

/// A ptrace request that restarts `tid` with signal `sig`.
fn restart(request: libc::c_uint, tid: u32, sig: i32) -> Result<(), Errno> {
    // SAFETY: PTRACE_DETACH and PTRACE_CONT read `data` as a signal
    // number and ignore `addr`; no memory is passed.
    let ret = unsafe {
        libc::ptrace(
            request,
            tid as libc::pid_t,
            std::ptr::null_mut::<libc::c_void>(),
            sig as usize as *mut libc::c_void,
        )
    };
    if ret == -1 {
        Err(Errno::last())
    } else {
        Ok(())
    }
}

/// A signal relive took from a thread's delivery while it held it.
#[derive(Clone, Copy)]
pub struct Held {
    pub sig: i32,
    /// Its `siginfo`, when `PTRACE_GETSIGINFO` could read it.
    pub info: Option<libc::siginfo_t>,
}

/// Queues `held` to thread `tid` of process `tgid` again: with its own
/// `siginfo` (`rt_tgsigqueueinfo`, which keeps a real-time signal's
/// value) when the kernel accepts it, else as a plain `tgkill` (the
/// kernel refuses another process's `siginfo` for signals it made
/// itself).
pub fn requeue(tgid: u32, tid: u32, held: &Held) -> Result<(), Errno> {
    if let Some(info) = &held.info {
        // SAFETY: rt_tgsigqueueinfo reads one `siginfo_t` through the
        // pointer, which points at a live value for the whole call.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_rt_tgsigqueueinfo,
                tgid as libc::pid_t,
                tid as libc::pid_t,
                held.sig,
                info as *const libc::siginfo_t,
            )
        };
        if ret == 0 {
            return Ok(());
        }
    }
    // SAFETY: tgkill takes three integers and touches no memory of ours.
    let ret = unsafe { libc::syscall(libc::SYS_tgkill, tgid as libc::pid_t, tid as libc::pid_t, held.sig) };
    if ret == -1 {
        Err(Errno::last())
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_time_signals_are_signals() {
        // WIFSTOPPED with WSTOPSIG = SIGRTMIN + 2 (36): status 0x247f.
        assert_eq!(decode((36 << 8) | 0x7f), Waited::Signal(36));
        assert_eq!(decode((libc::SIGTRAP << 8) | 0x7f), Waited::Signal(libc::SIGTRAP));
        assert_eq!(decode(((libc::SIGTRAP | 0x80) << 8) | 0x7f), Waited::Syscall);
        assert_eq!(decode((128 << 16) | (libc::SIGTRAP << 8) | 0x7f), Waited::Event);
        assert_eq!(decode(9), Waited::Gone);
        assert_eq!(decode(0), Waited::Gone);
    }
}
