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
}
