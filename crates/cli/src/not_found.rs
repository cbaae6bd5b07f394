//! Errors that name something the user asked for and that does not exist
//! (exit 3): commands return them, `exit` maps them to the code. Their own
//! module, so neither imports the other.

/// No module of the process defines a name.
#[derive(Debug, thiserror::Error)]
#[error("process {pid}: no symbol named {names} in the program or its {n} shared libraries{w}", n = searched.saturating_sub(1), w = if warnings.is_empty() { String::new() } else { format!(" (unreadable: {warnings})") })]
pub struct SymbolNotFound {
    pub pid: u32,
    pub names: String,
    pub searched: usize,
    pub warnings: String,
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
