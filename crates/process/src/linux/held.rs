//! Starting a program held at its entry point: loaded and dynamically
//! linked (every library mapped, relocations done), but with none of its
//! own code run yet. `relive run` patches in what was edited since the
//! build there, so the program runs the edited code from its first call.
//!
//! The child starts traced (`PTRACE_TRACEME`); at its `exec` an `int3` is
//! put at the entry (`AT_ENTRY`), and when the dynamic loader jumps there
//! the byte is put back, the program counter set to the entry, and the
//! child detached with `SIGSTOP`: it waits, untraced, in a group-stop
//! until [`release`] sends `SIGCONT`. Its parent-death signal is
//! `SIGCONT`: a relive that dies meanwhile leaves it running, not stopped
//! for good; one that dies before the detach takes it along
//! (`PTRACE_O_EXITKILL`), before it ran anything.

use std::io;
use std::os::unix::fs::FileExt;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};

use nix::libc;
use nix::sys::ptrace::{self, Options};
use nix::sys::signal::Signal;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;

use crate::error::{ProcessError, Result};

/// `AT_ENTRY` in the auxiliary vector: the program's entry point.
const AT_ENTRY: u64 = 9;

/// Starts `command` held at its entry point (see the module's text).
pub fn spawn_held(command: &mut Command) -> Result<Child> {
    // SAFETY: the closure runs in the forked child between fork and exec,
    // where only async-signal-safe work is allowed: two system calls
    // (ptrace(PTRACE_TRACEME), prctl) and, on failure, an io::Error from
    // an errno, which does not allocate.
    unsafe {
        command.pre_exec(|| {
            ptrace::traceme().map_err(io::Error::from)?;
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGCONT as libc::c_ulong, 0, 0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = command.spawn().map_err(|e| ProcessError::Io {
        pid: 0,
        what: "starting the program".into(),
        cause: e,
    })?;
    let pid = child.id();
    match hold(pid) {
        Ok(()) => Ok(child),
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            Err(e)
        }
    }
}

/// Lets a program [`spawn_held`] started run.
pub fn release(pid: u32) {
    let _ = nix::sys::signal::kill(Pid::from_raw(pid as i32), Signal::SIGCONT);
}

fn hold(pid: u32) -> Result<()> {
    let p = Pid::from_raw(pid as i32);
    let fail = |what: &str, e: nix::Error| ProcessError::Io {
        pid,
        what: format!("holding the program at its entry ({what})"),
        cause: io::Error::from(e),
    };
    // The exec's stop.
    match waitpid(p, None).map_err(|e| fail("waiting for its exec", e))? {
        WaitStatus::Stopped(_, Signal::SIGTRAP) => {}
        other => return Err(gone(pid, &format!("{other:?}"))),
    }
    ptrace::setoptions(p, Options::PTRACE_O_EXITKILL).map_err(|e| fail("tracing options", e))?;
    let entry = entry_point(pid)?;
    let mem = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(format!("/proc/{pid}/mem"))
        .map_err(|e| ProcessError::Io {
            pid,
            what: "opening its memory".into(),
            cause: e,
        })?;
    let io_fail = |what: &str, e: io::Error| ProcessError::Io {
        pid,
        what: format!("holding the program at its entry ({what})"),
        cause: e,
    };
    let mut original = [0u8; 1];
    mem.read_exact_at(&mut original, entry)
        .map_err(|e| io_fail("reading its entry", e))?;
    mem.write_all_at(&[0xcc], entry)
        .map_err(|e| io_fail("writing a breakpoint", e))?;
    // On to the entry; signals on the way are delivered as they come.
    let mut deliver = None;
    loop {
        ptrace::cont(p, deliver).map_err(|e| fail("continuing", e))?;
        match waitpid(p, None).map_err(|e| fail("waiting for the entry", e))? {
            WaitStatus::Stopped(_, Signal::SIGTRAP) => {
                let regs = ptrace::getregs(p).map_err(|e| fail("reading registers", e))?;
                if regs.rip == entry + 1 {
                    break;
                }
                deliver = None;
            }
            WaitStatus::Stopped(_, signal) => deliver = Some(signal),
            other => return Err(gone(pid, &format!("{other:?}"))),
        }
    }
    mem.write_all_at(&original, entry)
        .map_err(|e| io_fail("restoring its entry", e))?;
    let mut regs = ptrace::getregs(p).map_err(|e| fail("reading registers", e))?;
    regs.rip = entry;
    ptrace::setregs(p, regs).map_err(|e| fail("setting registers", e))?;
    ptrace::detach(p, Some(Signal::SIGSTOP)).map_err(|e| fail("detaching", e))?;
    // Stopped once the SIGSTOP is taken.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while std::time::Instant::now() < deadline {
        let stat = crate::procfs::read_lossy(format!("/proc/{pid}/stat")).unwrap_or_default();
        if crate::threads::stat_fields(&stat).is_some_and(|(_, f)| f.first() == Some(&"T")) {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_micros(200));
    }
    Err(gone(pid, "it did not stop at its entry"))
}

fn gone(pid: u32, how: &str) -> ProcessError {
    ProcessError::Io {
        pid,
        what: "holding the program at its entry".into(),
        cause: io::Error::other(format!("it ended or stopped otherwise before its entry ({how})")),
    }
}

/// The program's entry point, from its auxiliary vector.
pub(crate) fn entry_point(pid: u32) -> Result<u64> {
    let auxv = std::fs::read(format!("/proc/{pid}/auxv")).map_err(|e| ProcessError::Io {
        pid,
        what: "reading its auxiliary vector".into(),
        cause: e,
    })?;
    auxv.chunks_exact(16)
        .map(|pair| {
            let word = |k: usize| u64::from_le_bytes(pair[k..k + 8].try_into().expect("8 bytes"));
            (word(0), word(8))
        })
        .find(|&(key, _)| key == AT_ENTRY)
        .map(|(_, value)| value)
        .ok_or_else(|| ProcessError::Io {
            pid,
            what: "reading its auxiliary vector".into(),
            cause: io::Error::other("no AT_ENTRY"),
        })
}
