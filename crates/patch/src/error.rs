//! Errors of the patch engine; each names the file and symbol involved.

pub type Result<T, E = PatchError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum PatchError {
    #[error("{path}: {cause}")]
    Io { path: String, cause: std::io::Error },

    #[error("{path}: not an ELF relocatable object: {reason}")]
    NotObject { path: String, reason: String },

    #[error("{path}: {what}")]
    Malformed { path: String, what: String },

    #[error("journal {path} {what}")]
    Journal { path: String, what: String },

    #[error(transparent)]
    Link(#[from] LinkError),

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

    /// Files of one change replace code of two modules (the program and a
    /// library): each module's code goes in a pool near it, one module per
    /// transaction. Nothing was written; each file alone can go in.
    #[error("{object} replaces code of {module} and another file of the same change code of {other}: such files are patched one at a time")]
    TwoModules {
        object: String,
        module: String,
        other: String,
    },

    /// With a base that is not what runs: the process already runs the
    /// new object's version of every function to patch (the same patch
    /// applied before). Nothing was written.
    #[error("process {pid} already runs the new version of {}", functions.join(", "))]
    AlreadyApplied { pid: u32, functions: Vec<String> },

    #[error("process {pid} has no patches to revert")]
    NoPatches { pid: u32 },

    #[error("{name} is not patched in process {pid}{}{}{} (see `relive status {pid}`)", if *in_program || added_by.is_some() { "" } else { ", and its program has no function of that name" }, match added_by { Some(Some(change)) => format!(": change {change} added it (the program had no function of that name), and a revert takes back redirects, not added code, so it stays; only patched code calls it, so reverting the patched functions that call it leaves it unused"), Some(None) => ": a patch added it (the program had no function of that name), and a revert takes back redirects, not added code, so it stays; only patched code calls it, so reverting the patched functions that call it leaves it unused".to_string(), None => String::new() }, if patched_in_scope.is_empty() { String::new() } else { format!("; C++ names keep their namespace or class: patched are {}", patched_in_scope.join(", ")) })]
    NotPatched {
        pid: u32,
        name: String,
        /// Patched functions named `name` in a namespace or class, as
        /// `status` writes them (what the user may have meant).
        patched_in_scope: Vec<String>,
        /// Whether the program has a function of that name (a misspelt
        /// name read as one not patched: a zstd trial).
        in_program: bool,
        /// A function a patch added (`Some`, with the change that added
        /// it when known): "not patched" alone read as a mistake (a
        /// bzip2 trial's `fallbackSort.part.0`).
        added_by: Option<Option<u64>>,
    },

    #[error("state directory {path} is not safe to use: {why}. The journal in it decides what `relive revert` writes into processes, so relive uses only a directory no other user can change: remove it (relive creates it again with mode 0700), or set RELIVE_STATE_DIR to a directory only you can write")]
    UnsafeState { path: String, why: String },

    #[error("process {pid} is live-reloaded by {owner}: one `relive run`/`watch` per process. Stop that one first; `relive patch`, `revert` and `status` work beside it")]
    Owned { pid: u32, owner: String },

    #[error("journal {path} does not match process {pid}: {what}. It was changed or is stale; nothing was written into the process (check `relive status {pid}`; delete the journal if the process is not patched)")]
    Tampered { pid: u32, path: String, what: String },
}

/// Why a patch cannot be linked. Nothing has been written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error("{symbol} (used by {user}) is not defined in the patch, the program or its libraries")]
    MissingSymbol { symbol: String, user: String },
    #[error("{user} uses thread-local {symbol}, which cannot be linked: {why}")]
    ThreadLocal { symbol: String, user: String, why: String },
    #[error("{user}: relocation type {r_type} ({name}) is not supported")]
    Unsupported { user: String, r_type: u32, name: String },
    #[error("{user}: refers into code section {section} where no function is; cannot move that code")]
    CodeReference { user: String, section: String },
    #[error("{user} cannot be moved: {reason}")]
    Unmovable { user: String, reason: String },
    #[error(
        "{user} may write {symbol}: this compile keeps it writable (its code writes it, or passes its address to code the compiler cannot see into), and the program has it among its constants (nothing wrote it there, so the compiler made it read-only): a write would fault; restart the program to have it writable"
    )]
    ReadOnlyInProgram { symbol: String, user: String },
    #[error(
        "{context}: {value:#x} does not fit its {name} field: what it refers to is beyond that field's reach from the patch region at {base:#x}. Code compiled without -fPIC reaches data within ±2 GiB only, and a shared library's variable the program never uses itself (so it has no copy of it) lies farther; recompile this file with -fPIC (it then reaches such data through the GOT), or refer to it through a function"
    )]
    Overflow {
        context: String,
        r_type: u32,
        /// The relocation type's psABI name.
        name: String,
        value: i128,
        base: u64,
    },
}
