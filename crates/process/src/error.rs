//! Errors of the process layer. Each names the pid, and where relevant the
//! address, and says what to do about it.

/// Result alias used throughout the crate.
pub type Result<T, E = ProcessError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("no process with pid {pid}")]
    NoSuchProcess { pid: u32 },

    #[error("permission denied for pid {pid}: {why}")]
    PermissionDenied { pid: u32, why: String },

    #[error("process {pid} is traced by pid {tracer} ({name}): a process has one tracer at a time; detach it (quit the debugger, stop strace) and run relive again")]
    Traced { pid: u32, tracer: u32, name: String },

    #[error("process {pid} exited while relive was {doing}")]
    Gone { pid: u32, doing: &'static str },

    #[error("address range {addr:#x}..{end:#x} is not mapped in process {pid} (run `relive ps {pid}` or read /proc/{pid}/maps)", end = addr.saturating_add(*len as u64))]
    NotMapped { pid: u32, addr: u64, len: usize },

    #[error("process {pid}: {what}: {cause}")]
    Io {
        pid: u32,
        what: String,
        cause: std::io::Error,
    },

    #[error("process {pid}: malformed /proc/{pid}/maps line {line:?}")]
    BadMaps { pid: u32, line: String },

    #[error("process {pid} has no stopped thread {tid} (see `relive threads {pid}`)")]
    NoSuchThread { pid: u32, tid: u32 },

    #[error("process {pid}: {call} failed inside the process: {cause}")]
    RemoteSyscall {
        pid: u32,
        call: String,
        cause: std::io::Error,
    },

    #[error("process {pid}: no free {len:#x}-byte range {wanted}; the nearest holes are taken (is the address space crowded, or is the program's image too large to reach?)")]
    NoRoom { pid: u32, len: u64, wanted: String },

    #[error("process {pid}: {path} on disk is not the file the process is running: {why}. Symbols read from it would be wrong; restart the program, or point relive at the file it was started from")]
    Mismatch { pid: u32, path: String, why: String },

    #[error("process {pid}: cannot find the program's image in /proc/{pid}/maps (executable {exe})")]
    NoImage { pid: u32, exe: String },

    #[error("process {pid}: {path}: {cause}")]
    Image {
        pid: u32,
        path: String,
        cause: relive_image::ImageError,
    },

    #[error("cannot trace {program}: {why}. Without ptrace relive cannot see the commands a build runs: record them with `bear -- make` instead, or write compile_commands.json another way (CMake: -DCMAKE_EXPORT_COMPILE_COMMANDS=ON)")]
    TraceRefused { program: String, why: String },

    #[error("cannot start {program}: {cause}")]
    Spawn { program: String, cause: std::io::Error },

    #[error("{what} is not supported on this platform yet (only the Linux backend exists)")]
    Unsupported { what: &'static str },
}
