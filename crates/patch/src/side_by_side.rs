//! Two independent pieces of work at once: the one-shot `relive patch`
//! reads two objects, builds two DWARF indexes, and opens the process
//! while it reads; each pair is a large part of its time on a large file.

use std::sync::Mutex;

/// Below this much input (both objects' bytes), work runs on one thread.
/// Measured on a 2-core VM, whole one-shot commands with all of it on
/// one thread against a second thread from 128 KiB on: 0.94× the time
/// for two 200 KiB objects (1,000 functions), 0.98× for two 2 MiB ones
/// (10,000), 1.14× for SQLite's two 11 MiB ones. Starting and joining
/// threads (a patch can start five) costs more than the smaller files'
/// work that runs aside.
const WORTH_A_THREAD: u64 = 8 << 20;

/// Whether work over `bytes` of input is large enough to share out.
pub fn worth_a_thread(bytes: u64) -> bool {
    bytes >= WORTH_A_THREAD
}

/// [`both`] when `worth` (see [`worth_a_thread`]); otherwise `here`, then
/// `aside`, on this thread.
pub fn both_if<A: Send, B>(worth: bool, aside: impl FnOnce() -> A + Send, here: impl FnOnce() -> B) -> (A, B) {
    match worth {
        true => both(aside, here),
        false => {
            let b = here();
            (aside(), b)
        }
    }
}

/// Runs `aside` on a second thread while `here` runs on this one, and
/// gives both results. Where no thread can be started (a process limit),
/// `aside` runs here afterwards: the same results, only later. A panic in
/// `aside` is the same panic here.
pub fn both<A: Send, B>(aside: impl FnOnce() -> A + Send, here: impl FnOnce() -> B) -> (A, B) {
    // The work aside waits here until a thread takes it: a thread that
    // cannot be started leaves it for this one.
    let slot = Mutex::new(Some(aside));
    let take = || slot.lock().ok().and_then(|mut work| work.take());
    std::thread::scope(|s| {
        let started = std::thread::Builder::new().spawn_scoped(s, || take().map(|work| work()));
        let b = here();
        let a = match started {
            Ok(thread) => thread.join().unwrap_or_else(|p| std::panic::resume_unwind(p)),
            Err(_) => None,
        };
        let a = a.or_else(|| take().map(|work| work()));
        (a.expect("the work aside runs once, on its thread or here"), b)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_results_come_back_and_the_work_runs_once() {
        let runs = std::sync::atomic::AtomicUsize::new(0);
        let (a, b) = both(
            || {
                runs.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                std::thread::current().id()
            },
            || std::thread::current().id(),
        );
        assert_eq!(runs.into_inner(), 1);
        assert_ne!(a, b, "the work aside ran on another thread");
    }

    #[test]
    fn small_work_stays_on_this_thread() {
        let (a, b) = both_if(
            worth_a_thread(1000),
            || std::thread::current().id(),
            || std::thread::current().id(),
        );
        assert_eq!(a, b);
        assert!(!worth_a_thread(4 << 20) && worth_a_thread(22 << 20));
    }

    #[test]
    fn a_panic_aside_is_a_panic_here() {
        let caught = std::panic::catch_unwind(|| both(|| panic!("aside"), || 1));
        assert!(caught.is_err());
    }
}
