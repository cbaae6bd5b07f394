//! Handing a patch's unwind table to the process's unwinder, and taking
//! it back before its pool is unmapped.
//!
//! The unwinder (libgcc's, in `libgcc_s.so.1` or linked into a static
//! program) finds the frames of a program and its libraries through
//! `dl_iterate_phdr`; code in an anonymous pool is in no module, so
//! without this an exception thrown in new code ends the program and
//! `backtrace()` stops at it. `__register_frame_info(table, object)` adds
//! a table, keeping `object` (memory of the caller's: here the pool's
//! writable part) as its bookkeeping; `__deregister_frame_info(table)`
//! removes it. JIT compilers call the same pair.
//!
//! Both run in the target on its main thread (a remote call, the other
//! threads running on) and take the unwinder's lock. Registering
//! allocates nothing, so it is safe wherever the thread was stopped (if
//! the thread itself held the lock, the call times out waiting and is
//! abandoned without having taken anything). Taking back may free the
//! unwinder's sorted index (`free`), which is only safe where the thread
//! holds no allocator lock: relive calls it only while the main thread
//! waits in a blocking system call (`read`, `poll`, `nanosleep`, ...),
//! and otherwise keeps the pool, saying why.

use std::time::Duration;

use relive_process::{CallOutcome, Process};

use crate::journal::FrameRecord;
use crate::target::Target;

/// How long a call into the unwinder may take: it only takes a lock and
/// links a list, so a call that has not returned by then waits for a lock
/// its own thread holds (or one threads throwing without pause keep
/// taking: the traced call stops at each of its system calls).
const CALL_TIMEOUT: Duration = Duration::from_millis(2000);

/// How often, and how far apart, relive looks for the main thread waiting
/// in a system call before it gives up taking a table back.
const QUIET_TRIES: u32 = 25;
/// How often it looks before it gives up loading a library that is only
/// useful (for debuggers, an unwinder for a C program): a main thread
/// that never waits costs each patch this many tries, not
/// [`QUIET_TRIES`]; the next patch tries again.
pub const OPTIONAL_TRIES: u32 = 4;
const QUIET_PAUSE: Duration = Duration::from_millis(2);

/// System calls a thread waits in outside the allocator and the unwinder
/// (x86-64 numbers): read, poll, select, nanosleep, pause, accept,
/// recvfrom, recvmsg, wait4, rt_sigtimedwait, rt_sigsuspend,
/// epoll_wait, clock_nanosleep, waitid, pselect6, ppoll, epoll_pwait,
/// accept4, epoll_pwait2.
const QUIET_SYSCALLS: [u64; 19] = [
    0, 7, 23, 35, 34, 43, 45, 47, 61, 128, 130, 232, 230, 247, 270, 271, 281, 288, 441,
];

/// `restart_syscall`: a sleep, poll or timed wait interrupted (by relive
/// itself, stopping the thread before) that resumes where it was. Only
/// system calls with a timeout restart this way, and none of glibc's
/// allocator or loader locks waits with one.
const RESTART_SYSCALL: u64 = 219;
/// `futex`, and the operations that wait (`FUTEX_WAIT`,
/// `FUTEX_WAIT_BITSET`, the private flag aside).
const FUTEX: u64 = 202;
const FUTEX_WAITS: [u64; 2] = [0, 9];
/// The value glibc's low-level lock waits with (`__lll_lock_wait`: the
/// lock taken, with waiters): how its allocator's and loader's locks wait.
const LOCK_WAIT_VALUE: u64 = 2;

/// Whether a thread stopped with `regs` waits in a system call where it
/// holds none of the allocator's or loader's locks: a blocking call of
/// [`QUIET_SYSCALLS`], one restarted, or a futex wait that is not a
/// low-level lock's (`pthread_join`, a condition variable, a semaphore).
fn quiet(regs: &relive_process::Registers) -> bool {
    match regs.orig_rax {
        RESTART_SYSCALL => true,
        FUTEX => FUTEX_WAITS.contains(&(regs.rsi & 0x7f)) && regs.rdx != LOCK_WAIT_VALUE,
        call => QUIET_SYSCALLS.contains(&call),
    }
}

/// The process's unwinder: its two entry points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unwinder {
    pub register: u64,
    pub deregister: u64,
}

/// The unwinder the program's own code uses (its static copy first, else
/// the loaded `libgcc_s`); `None` when the process has none loaded (a C
/// program that has not called `backtrace()` yet).
pub fn unwinder(target: &Target) -> Option<Unwinder> {
    if let Some((register, deregister)) = target.loaded_unwinder {
        return Some(Unwinder { register, deregister });
    }
    Some(Unwinder {
        register: target.resolver.unwinder_entry("__register_frame_info")?,
        deregister: target.resolver.unwinder_entry("__deregister_frame_info")?,
    })
}

/// Whether the module at `path` is libgcc's shared unwinder (any version
/// suffix: `libgcc_s.so.1`).
pub fn is_libgcc(path: &str) -> bool {
    path.rsplit('/')
        .next()
        .is_some_and(|file| file.starts_with("libgcc_s.so"))
}

/// The library of libgcc's unwinder, as glibc itself names it when it
/// loads it (on a program's first `backtrace()`, `pthread_cancel`, ...).
pub const LIBGCC: &str = "libgcc_s.so.1";

/// Loads libgcc's unwinder into a process that has none yet (a C program
/// that has not unwound: glibc loads the same library the first time
/// anything does, and its unwinder would then not know the new code), and
/// gives its entry points, remembered in `target`. `scratch`: unused
/// memory of relive's for the library's name during the call.
pub fn load_unwinder(target: &mut Target, scratch: u64) -> Result<Unwinder, String> {
    let process = target.process;
    crate::remote_dlopen::load(target, LIBGCC, scratch)?;
    // Its symbols as every module's are read (the file as the process
    // sees it, its load bias), this one library's table alone.
    let modules = relive_process::modules::discover(process).map_err(|e| e.to_string())?;
    let library = modules
        .libraries
        .iter()
        .map(|m| m.module.path.as_str())
        .find(|path| path.rsplit('/').next() == Some(LIBGCC))
        .ok_or_else(|| format!("dlopen({LIBGCC}) returned without loading it"))?;
    let symbols = relive_process::symbols::LiveSymbols::load(&modules);
    let export = |name: &str| {
        symbols
            .lookup_in(name, Some(library))
            .first()
            .map(|s| s.addr)
            .ok_or_else(|| format!("{library} does not export {name}"))
    };
    let unwinder = Unwinder {
        register: export("__register_frame_info")?,
        deregister: export("__deregister_frame_info")?,
    };
    target.loaded_unwinder = Some((unwinder.register, unwinder.deregister));
    Ok(unwinder)
}

/// Where in the bookkeeping relive marks a table it is taking back: the
/// last word of [`crate::link::UNWINDER_OBJECT`], after libgcc's seven.
const TAKING_BACK_AT: u64 = crate::link::UNWINDER_OBJECT as u64 - 8;
/// The mark ("relive-d").
const TAKING_BACK: u64 = u64::from_le_bytes(*b"relive-d");

/// Whether a relive started taking the table back and did not finish: the
/// call may or may not have run.
fn taking_back(process: &dyn Process, frame: &FrameRecord) -> bool {
    let mut word = [0u8; 8];
    process.read(frame.object + TAKING_BACK_AT, &mut word).is_ok() && u64::from_le_bytes(word) == TAKING_BACK
}

/// Whether the unwinder holds the table whose bookkeeping is at `object`:
/// it sets the first word (the lowest address covered, `-1` until it
/// first searches the table) when it takes the table; relive clears the
/// bookkeeping when it takes it back.
pub fn held(process: &dyn Process, frame: &FrameRecord) -> bool {
    let mut word = [0u8; 8];
    process.read(frame.object, &mut word).is_ok() && word != [0; 8]
}

/// Hands each table to the unwinder. Returns the records to keep (each
/// marked uncertain when its call did not return) and, if something went
/// wrong, why.
pub fn register(
    process: &dyn Process,
    unwinder: &Unwinder,
    tables: &[FrameRecord],
) -> (Vec<FrameRecord>, Option<String>) {
    if tables.is_empty() {
        return (Vec::new(), None);
    }
    let mut stopped = match process.stop_one() {
        Ok(s) => s,
        Err(e) => return (Vec::new(), Some(format!("the process could not be stopped: {e}"))),
    };
    let mut records = Vec::with_capacity(tables.len());
    let mut problem = None;
    for table in tables {
        match stopped.call(unwinder.register, &[table.eh_frame, table.object], CALL_TIMEOUT) {
            Ok(CallOutcome::Returned) if held(process, table) => records.push(*table),
            Ok(CallOutcome::Returned) => {
                problem = Some(format!(
                    "the unwinder's __register_frame_info at {:#x} returned without taking the table at {:#x}",
                    unwinder.register, table.eh_frame
                ));
            }
            Ok(outcome) => {
                records.push(FrameRecord {
                    uncertain: true,
                    ..*table
                });
                problem = Some(format!(
                    "__register_frame_info {} (the main thread was probably stopped inside the unwinder); its pool stays mapped for good",
                    describe(&outcome)
                ));
                break;
            }
            Err(e) => {
                problem = Some(format!("__register_frame_info could not be called: {e}"));
                break;
            }
        }
    }
    if let Err(e) = stopped.resume() {
        problem.get_or_insert(format!("the main thread could not be resumed: {e}"));
    }
    (records, problem)
}

/// Takes back every table of `frames` the unwinder holds, so their pool
/// can be unmapped. `Err` (the reason) when one could not be taken back:
/// the pool must stay.
pub fn deregister(process: &dyn Process, unwinder: Option<&Unwinder>, frames: &[FrameRecord]) -> Result<(), String> {
    if let Some(f) = frames.iter().find(|f| f.uncertain) {
        return Err(format!(
            "the unwinder may hold the unwind table at {:#x} (a call registering it did not return)",
            f.eh_frame
        ));
    }
    if let Some(f) = frames.iter().find(|f| taking_back(process, f)) {
        return Err(format!(
            "a relive taking its unwind table at {:#x} back from the unwinder was interrupted: whether the unwinder still holds it is not known (taking back a table it does not hold ends the program)",
            f.eh_frame
        ));
    }
    let held: Vec<&FrameRecord> = frames.iter().filter(|f| held(process, f)).collect();
    if held.is_empty() {
        return Ok(());
    }
    let Some(unwinder) = unwinder else {
        return Err("the unwinder holds its unwind tables, and its __deregister_frame_info is not found".into());
    };
    let mut stopped = stop_at_quiet_point(process)?;
    let result = held.iter().try_for_each(|frame| {
        // Marked first: a relive killed between the call and the clearing
        // below leaves a table the unwinder no longer holds looking held,
        // and a second `__deregister_frame_info` of it aborts the program
        // (libgcc asserts it finds the table). Marked, it is never taken
        // back again.
        process
            .write(frame.object + TAKING_BACK_AT, &TAKING_BACK.to_le_bytes())
            .map_err(|e| format!("its bookkeeping at {:#x} could not be marked: {e}", frame.object))?;
        returned(
            stopped.call(unwinder.deregister, &[frame.eh_frame], CALL_TIMEOUT),
            "__deregister_frame_info",
        )?;
        crate::apply::failpoint("unwind-after-deregister");
        // Cleared, the mark too: the table is no longer the unwinder's.
        process
            .write(frame.object, &[0; crate::link::UNWINDER_OBJECT])
            .map_err(|e| format!("its bookkeeping at {:#x} could not be cleared: {e}", frame.object))
    });
    resumed(stopped, result)
}

/// The main thread stopped while it waits in a blocking system call
/// (`read`, `poll`, `nanosleep`, `pthread_join`, ...; see [`quiet`]), the
/// other threads running on: a
/// point where it holds no allocator lock, so a function called there may
/// allocate and free. Tried [`QUIET_TRIES`] times, [`QUIET_PAUSE`] apart.
pub fn stop_at_quiet_point(process: &dyn Process) -> Result<Box<dyn relive_process::Stopped + '_>, String> {
    stop_at_quiet_point_within(process, QUIET_TRIES)
}

/// [`stop_at_quiet_point`], tried `tries` times.
pub fn stop_at_quiet_point_within(
    process: &dyn Process,
    tries: u32,
) -> Result<Box<dyn relive_process::Stopped + '_>, String> {
    for _ in 0..tries {
        let stopped = process
            .stop_one()
            .map_err(|e| format!("the process could not be stopped: {e}"))?;
        let registers = stopped
            .thread_ids()
            .first()
            .and_then(|&tid| stopped.registers(tid).ok());
        if registers.as_ref().is_some_and(quiet) {
            return Ok(stopped);
        }
        stopped
            .resume()
            .map_err(|e| format!("the main thread could not be resumed: {e}"))?;
        // Held at its entry (`relive run` patching in edits made before
        // it started): nothing of it has run, its C library is not set up,
        // and no wait makes it so.
        if registers.is_some_and(|r| relive_process::at_entry(process.pid(), r.rip)) {
            return Err("the program has not started yet: relive holds it at its entry until the edits made before relive started are patched in".into());
        }
        std::thread::sleep(QUIET_PAUSE);
    }
    Err(format!(
        "the main thread was never found waiting in a system call within {} ms (code that may allocate memory is only run there)",
        (QUIET_PAUSE * tries).as_millis()
    ))
}

/// Runs the patch's static initializers (at `addrs`, in order) in the
/// process at a quiet point ([`stop_at_quiet_point`]): they construct its
/// new globals before any new code uses them. `Err` with why when one did
/// not run to its end (what it did stays done).
pub fn construct(process: &dyn Process, addrs: &[u64]) -> Result<(), String> {
    let mut stopped = stop_at_quiet_point(process)?;
    let result = addrs.iter().try_for_each(|&addr| {
        returned(
            stopped.call(addr, &[], crate::hooks::timeout()),
            &format!("the static initializer at {addr:#x}"),
        )
    });
    resumed(stopped, result)
}

/// What a remote call of `what` did, as a result: `Ok` when it returned.
fn returned(outcome: relive_process::Result<CallOutcome>, what: &str) -> Result<(), String> {
    match outcome {
        Ok(CallOutcome::Returned) => Ok(()),
        Ok(outcome) => Err(format!("{what} {}", describe(&outcome))),
        Err(e) => Err(format!("{what} could not be called: {e}")),
    }
}

/// Resumes the thread the calls ran on, then gives their `result` (a
/// failure to resume comes first: the thread stays stopped).
fn resumed(stopped: Box<dyn relive_process::Stopped + '_>, result: Result<(), String>) -> Result<(), String> {
    stopped
        .resume()
        .map_err(|e| format!("the main thread could not be resumed: {e}"))?;
    result
}

fn describe(outcome: &CallOutcome) -> String {
    match outcome {
        CallOutcome::Returned => "returned".into(),
        CallOutcome::Crashed { signal, rip } => {
            format!("crashed ({} at {rip:#x})", relive_process::signal_name(*signal))
        }
        CallOutcome::TimedOut { rip } => format!("did not return within {} ms (at {rip:#x})", CALL_TIMEOUT.as_millis()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stopped_in(call: u64, rsi: u64, rdx: u64) -> relive_process::Registers {
        relive_process::Registers {
            orig_rax: call,
            rsi,
            rdx,
            ..Default::default()
        }
    }

    #[test]
    fn waits_that_hold_no_allocator_lock_are_quiet() {
        // clock_nanosleep, and the same once relive interrupted it before.
        assert!(quiet(&stopped_in(230, 0, 0)));
        assert!(quiet(&stopped_in(RESTART_SYSCALL, 0, 0)));
        // pthread_join: FUTEX_WAIT on the thread's id.
        assert!(quiet(&stopped_in(FUTEX, 0, 4242)));
        // A condition variable: FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG.
        assert!(quiet(&stopped_in(FUTEX, 9 | 128, 7)));
        // glibc's low-level lock (malloc's, the loader's): waits with 2.
        assert!(!quiet(&stopped_in(FUTEX, 128, LOCK_WAIT_VALUE)));
        // FUTEX_WAKE, write, and no system call at all.
        assert!(!quiet(&stopped_in(FUTEX, 1, 1)));
        assert!(!quiet(&stopped_in(1, 0, 0)));
        assert!(!quiet(&stopped_in(u64::MAX, 0, 0)));
    }
}
