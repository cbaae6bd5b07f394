//! Errors that name something the user asked for and that does not exist
//! (exit 3), or a build other than the one asked for (exit 5): commands
//! return them, `exit` maps them to the code. Their own module, so neither
//! imports the other.

/// No module of the process defines a name.
#[derive(Debug, Clone, thiserror::Error)]
#[error("process {pid}: no symbol named {names} in the program, its {n} shared libraries or what relive patches added{w}{s}", n = searched.saturating_sub(1), w = if warnings.is_empty() { String::new() } else { format!(" (unreadable: {warnings})") }, s = if in_scope.is_empty() { String::new() } else { format!("; C++ names keep their namespace or class: there are {}", in_scope.join(", ")) })]
pub struct SymbolNotFound {
    pub pid: u32,
    pub names: String,
    pub searched: usize,
    pub warnings: String,
    /// C++ symbols of those names in a namespace or class, as people
    /// write them (what the user may have meant; a few).
    pub in_scope: Vec<String>,
}

/// The module exports no function of that name (exit 3).
#[derive(Debug, thiserror::Error)]
#[error("{file} exports no function {name} (see `relive smf info {file}`)")]
pub struct NoFunction {
    pub name: String,
    pub file: String,
}

/// `--only NAME` names no function of the object (exit 3).
#[derive(Debug, thiserror::Error)]
#[error("{object} defines no function {name} (`relive diff OLD.o {object}` lists its functions)")]
pub struct NoSuchFunction {
    pub object: String,
    pub name: String,
}

/// `--exe PATH` when no process runs that file.
#[derive(Debug, thiserror::Error)]
#[error("no process runs {0} (as its executable, /proc/PID/exe; or there is no such file); start the program, or give a pid")]
pub struct NoProcessRuns(pub String);

/// A bundle made for one build, applied to a process running another
/// (exit 5, as for a program rebuilt since it started).
#[derive(Debug, thiserror::Error)]
#[error("process {pid} runs {program} with build-id {}, but the bundle was made for build-id {want} (another build): nothing was changed; make a bundle from this build's objects with `relive bundle ... --for {program}`", has.as_deref().unwrap_or("(none)"))]
pub struct OtherBuild {
    pub pid: u32,
    pub program: String,
    pub has: Option<String>,
    pub want: String,
}
