//! Errors of the patch engine; each names the file and symbol involved.

pub type Result<T, E = PatchError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum PatchError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },

    #[error("{path}: not an ELF relocatable object: {reason}")]
    NotObject { path: String, reason: String },

    #[error("{path}: {what}")]
    Malformed { path: String, what: String },

    #[error("journal {path} {what}")]
    Journal { path: String, what: String },

    #[error(transparent)]
    Link(#[from] crate::link::LinkError),

    #[error(transparent)]
    Process(#[from] relive_process::ProcessError),

    #[error("cannot redirect {name} at {addr:#x}: {reason}")]
    Entry { name: String, addr: u64, reason: String },

    #[error(
        "process {pid}: wrote {wrote} at {addr:#x} but read back {found}; every write of the transaction was undone"
    )]
    Verify {
        pid: u32,
        addr: u64,
        wrote: String,
        found: String,
    },

    #[error("thread {tid} of process {pid} stays inside the entry of {name} ({pc:#x}); try again")]
    Busy { pid: u32, tid: u32, name: String, pc: u64 },

    #[error("{what}")]
    Refused { what: String },

    #[error("{name} is not patched in process {pid} (see `relive status --pid {pid}`)")]
    NotPatched { pid: u32, name: String },
}
