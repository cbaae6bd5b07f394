//! Two independent pieces of work at once: the one-shot `relive patch`
//! reads two objects, builds two DWARF indexes, and opens the process
//! while it reads; each pair is a large part of its time on a large file.

use std::sync::Mutex;

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
    fn a_panic_aside_is_a_panic_here() {
        let caught = std::panic::catch_unwind(|| both(|| panic!("aside"), || 1));
        assert!(caught.is_err());
    }
}
