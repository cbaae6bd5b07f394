//! Run a command and see every program it (and everything it starts)
//! executes: `strace -f -e execve`, without tracing system calls.
//!
//! This is how `relive build` learns the compile commands of a build
//! whatever the build system: a Makefile that hard-codes `/usr/bin/gcc`,
//! `make -j`, `ccache gcc`, a shell script. The tracer stops the build's
//! processes only when one forks, clones, executes a program or receives a
//! signal (which the tracer passes on), so a build runs at nearly its own
//! speed.
//!
//! The build's processes are ptrace tracees of relive: a debugger, `strace`
//! or LeakSanitizer (an `-fsanitize=address` program run by the build)
//! started *inside* the build cannot attach to them (a process has one
//! tracer), and a setuid program it runs gets no privileges. Stop signals
//! (`SIGTSTP`: Ctrl-Z) are not passed on: a traced process in a group-stop
//! would wait for a ptrace request, not for `SIGCONT`. When relive dies
//! (even by `SIGKILL`), the kernel kills every process of the build it
//! still traces (`PTRACE_O_EXITKILL`, and the command's parent-death
//! signal for the moment before its tracing options are set), and when
//! tracing fails the build is killed before the error is returned: an
//! untraced build must not carry on half-observed. When the command itself
//! exits, processes it left running in the background (a compiler cache's
//! server, `sleep 30 &`) are let go, untraced, and keep running.
//!
//! [`handle_interrupts`] and [`pass_on_interrupt`] let relive, asked to
//! stop (SIGINT, SIGTERM, SIGHUP), have the build stop its own way.

use std::process::ExitStatus;

#[cfg(not(target_os = "linux"))]
use crate::error::ProcessError;
use crate::error::Result;

pub use crate::exec_events::{Exec, Interrupt};

/// Runs `program` with `args` (found through `PATH` like
/// [`std::process::Command`]; standard streams inherited) and calls
/// `on_exec` for every program executed in it, the command's own `exec`
/// first, in the order the kernel reports them. Returns the command's exit
/// status (a death by a signal is an [`ExitStatus`] too) once the command
/// has exited.
///
/// `on_exec` runs while the process that executed stands stopped; keep it
/// short (it delays that process only).
///
/// Errors: [`crate::ProcessError::TraceRefused`] when the kernel does not let
/// relive trace (Yama `ptrace_scope` 2 or 3, a container's seccomp
/// profile), naming the fix; [`crate::ProcessError::Spawn`] when the
/// command cannot be started. Whenever an error is returned (or `on_exec`
/// panics) after the command started, the command and every process of it
/// still traced have been killed (`SIGKILL`) and reaped: none runs on.
#[cfg(target_os = "linux")]
pub fn run_traced(program: &str, args: &[String], on_exec: &mut (dyn FnMut(&Exec) + Send)) -> Result<ExitStatus> {
    crate::linux::exec_trace::run_traced(program, args, on_exec)
}

/// Runs `program` traced: only the Linux backend exists.
#[cfg(not(target_os = "linux"))]
pub fn run_traced(_program: &str, _args: &[String], _on_exec: &mut (dyn FnMut(&Exec) + Send)) -> Result<ExitStatus> {
    Err(ProcessError::Unsupported {
        what: "tracing the programs a command executes",
    })
}

/// From now on SIGINT, SIGTERM and SIGHUP no longer end relive: `handler`
/// is called for each, in the order they arrive, on a thread of its own
/// (where it may print, lock, or end the process). A later call replaces
/// the handler; `handler` must not call this function itself.
#[cfg(target_os = "linux")]
pub fn handle_interrupts(handler: impl FnMut(Interrupt) + Send + 'static) -> Result<()> {
    crate::linux::exec_trace::handle_interrupts(Box::new(handler))
}

/// Handles interrupts: only the Linux backend exists.
#[cfg(not(target_os = "linux"))]
pub fn handle_interrupts(_handler: impl FnMut(Interrupt) + Send + 'static) -> Result<()> {
    Err(ProcessError::Unsupported {
        what: "handling interrupts",
    })
}

/// Passes an interrupt relive received on to the traced command `pid`
/// (the [`Exec::pid`] of the first exec reported, whose `ancestors` are
/// empty), so the build ends its own way (make stops its jobs and removes
/// half-written targets) and [`run_traced`] returns as usual.
///
/// The command gets `SIGTERM`, unless the interrupt came from the terminal
/// and the command is in relive's process group: then it got the very
/// same signal, and a second one could cut its own clean-up short. Returns
/// whether `SIGTERM` was sent.
#[cfg(target_os = "linux")]
pub fn pass_on_interrupt(pid: u32, interrupt: Interrupt) -> bool {
    if interrupt.from_terminal && crate::linux::exec_trace::in_my_process_group(pid) {
        return false;
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .is_ok()
}

/// Passes an interrupt on to the traced command: only the Linux backend exists.
#[cfg(not(target_os = "linux"))]
pub fn pass_on_interrupt(_pid: u32, _interrupt: Interrupt) -> bool {
    false
}
