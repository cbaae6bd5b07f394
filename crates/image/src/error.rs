//! The one error type of the image layer.
//!
//! Every variant names *what* was wrong and *where* (a structure and a file
//! offset, an address, an entry name), because the person reading the message
//! is usually holding a hex dump and needs to know where to look.

use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Result alias used throughout the crate.
pub type Result<T, E = ImageError> = std::result::Result<T, E>;

/// Which address space a number belongs to, for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressKind {
    /// A virtual address, as the program sees it when loaded at its preferred base.
    Va,
    /// An address relative to the image base.
    Rva,
    /// A byte offset from the start of the file.
    FileOffset,
}

impl std::fmt::Display for AddressKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AddressKind::Va => "virtual address",
            AddressKind::Rva => "RVA",
            AddressKind::FileOffset => "file offset",
        })
    }
}

/// Everything that can go wrong while reading a binary image.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ImageError {
    #[error("{}: {cause}", path.display())]
    Io { path: PathBuf, cause: Arc<std::io::Error> },

    #[error("truncated {what}: needs {need} bytes at offset {offset:#x}, but the data is {len} bytes long")]
    Truncated {
        what: &'static str,
        offset: u64,
        need: u64,
        len: u64,
    },

    #[error("invalid {what} at offset {offset:#x}: {reason}")]
    Invalid {
        what: &'static str,
        offset: u64,
        reason: String,
    },

    #[error("unrecognised file format: the first bytes {magic:02x?} are not an APE magic, ELF, PE (MZ) or Mach-O")]
    UnknownFormat { magic: Vec<u8> },

    #[error("{kind} {value:#x} is outside every {region} of the {arch} image")]
    NotMapped {
        kind: AddressKind,
        value: u64,
        region: &'static str,
        arch: String,
    },

    #[error("virtual address {va:#x} is in the zero-filled (bss) part of a segment: it has no bytes in the file")]
    NoFileBytes { va: u64 },

    #[error("no {view} view for this translation: {reason}")]
    NoView { view: &'static str, reason: String },

    #[error("architecture {wanted} is not in this file (it has: {available})")]
    ArchNotPresent { wanted: String, available: String },

    #[error("no symbol table for {arch}: looked for {looked_for}")]
    NoSymbols { arch: String, looked_for: String },

    #[error("the file has no ZIP archive (no end-of-central-directory record in its last 68 KiB)")]
    NoZip,

    #[error("ZIP entry {name:?} not found")]
    EntryNotFound { name: String },

    #[error(
        "ZIP entry {name:?} uses compression method {method}, which is not supported (only 0 STORE and 8 DEFLATE are)"
    )]
    UnsupportedMethod { name: String, method: u16 },

    #[error("ZIP entry {name:?} is corrupt: {reason}")]
    CorruptEntry { name: String, reason: String },
}

impl ImageError {
    /// Wraps an I/O error with the path it happened on.
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        ImageError::Io {
            path: path.to_path_buf(),
            cause: Arc::new(source),
        }
    }

    /// Shorthand for [`ImageError::Invalid`].
    pub(crate) fn invalid(what: &'static str, offset: u64, reason: impl Into<String>) -> Self {
        ImageError::Invalid {
            what,
            offset,
            reason: reason.into(),
        }
    }

    /// Wraps an `object` crate error, whose message names the field but not
    /// the offset, with the structure and offset we were parsing.
    pub(crate) fn object(what: &'static str, offset: u64, err: object::Error) -> Self {
        ImageError::invalid(what, offset, err.to_string())
    }
}
