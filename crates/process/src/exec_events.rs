//! What tracing a build reports ([`crate::exec_trace`]): the programs it
//! executes, and the interrupts relive receives meanwhile. Plain data,
//! shared by the OS-neutral interface and its backends.

use std::path::PathBuf;

/// One successful `execve` inside the traced command, seen while the
/// process stands stopped right after it (before the new program runs a
/// single instruction: files it names still exist).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exec {
    /// The process (thread group id) that executed the program.
    pub pid: u32,
    /// The traced processes it descends from, its parent first (empty for
    /// the command itself). A wrapper such as `ccache` that runs the real
    /// compiler is among the compiler's ancestors (or is the same pid when
    /// it replaces itself with it).
    pub ancestors: Vec<u32>,
    /// Its working directory.
    pub cwd: PathBuf,
    /// Its arguments, `argv[0]` first, as the program received them
    /// (invalid UTF-8 replaced by U+FFFD).
    pub argv: Vec<String>,
    /// The executable the kernel loaded (symlinks resolved: `cc` may be
    /// `/usr/bin/x86_64-linux-gnu-gcc-12`).
    pub exe: PathBuf,
}

/// A request to stop that relive received: SIGINT, SIGTERM or SIGHUP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interrupt {
    /// The signal's number.
    pub signal: i32,
    /// The kernel sent it for the terminal (Ctrl-C, a hangup) to the
    /// terminal's foreground process group, which the traced command is
    /// in too unless it left relive's process group. Otherwise a process
    /// sent it (`kill PID`): to relive alone, as far as relive can tell.
    pub from_terminal: bool,
}
