//! While relive holds a process's threads stopped, it must not die of a
//! signal: a thread may be running a system call with borrowed registers
//! (mapping a pool, in a program without the instructions of a way
//! back), and a tracer that vanishes then leaves the target to crash. SIGKILL cannot be stopped;
//! the termination signals a user sends (Ctrl-C's SIGINT, SIGTERM, SIGHUP,
//! SIGQUIT) can: [`Critical`] holds them back on the thread doing the work
//! and makes a handler on another thread ([`wait_until_safe`]) wait for
//! the threads to be resumed first.

use std::sync::{Mutex, MutexGuard};

/// Held while some thread of relive has a process stopped.
static STOPPED: Mutex<()> = Mutex::new(());

/// Termination signals are blocked on this thread, and the process-wide
/// lock is held, until it is dropped; a signal that arrived meanwhile is
/// delivered then.
pub struct Critical {
    _guard: Option<MutexGuard<'static, ()>>,
    #[cfg(target_os = "linux")]
    old: Option<nix::sys::signal::SigSet>,
}

#[cfg(target_os = "linux")]
fn termination() -> nix::sys::signal::SigSet {
    use nix::sys::signal::{SigSet, Signal};
    let mut set = SigSet::empty();
    for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP, Signal::SIGQUIT] {
        set.add(s);
    }
    set
}

impl Critical {
    pub fn enter() -> Critical {
        // A poisoned lock still serialises: the data is `()`.
        let guard = STOPPED.lock().unwrap_or_else(|e| e.into_inner());
        #[cfg(target_os = "linux")]
        {
            use nix::sys::signal::{pthread_sigmask, SigSet, SigmaskHow};
            let mut old = SigSet::empty();
            let blocked = pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&termination()), Some(&mut old)).is_ok();
            Critical {
                _guard: Some(guard),
                old: blocked.then_some(old),
            }
        }
        #[cfg(not(target_os = "linux"))]
        Critical { _guard: Some(guard) }
    }
}

impl Drop for Critical {
    fn drop(&mut self) {
        // The lock first: a handler waiting in `wait_until_safe` on
        // another thread may end relive as soon as it is free, and then
        // the threads are resumed already (the caller drops this last).
        self._guard.take();
        #[cfg(target_os = "linux")]
        if let Some(old) = self.old.take() {
            let _ = nix::sys::signal::pthread_sigmask(nix::sys::signal::SigmaskHow::SIG_SETMASK, Some(&old), None);
        }
    }
}

/// Waits until no process is held stopped by this relive, and keeps it so
/// (the returned guard): what a termination handler calls before it ends
/// relive.
pub fn wait_until_safe() -> MutexGuard<'static, ()> {
    STOPPED.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_termination_signal_waits_for_the_end_of_the_critical_section() {
        use nix::sys::signal::{pthread_sigmask, SigSet, SigmaskHow, Signal};
        let inside = Critical::enter();
        let mut now = SigSet::empty();
        pthread_sigmask(SigmaskHow::SIG_BLOCK, None, Some(&mut now)).unwrap();
        assert!(now.contains(Signal::SIGINT) && now.contains(Signal::SIGTERM));
        // Another thread's handler would wait.
        assert!(STOPPED.try_lock().is_err());
        drop(inside);
        pthread_sigmask(SigmaskHow::SIG_BLOCK, None, Some(&mut now)).unwrap();
        assert!(!now.contains(Signal::SIGINT));
        assert!(STOPPED.try_lock().is_ok());
    }
}
