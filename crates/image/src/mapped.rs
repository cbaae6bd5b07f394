//! Read-only file bytes: a memory mapping, so opening a multi-GiB file reads
//! only the pages its headers live on.

use std::fs::File;
use std::path::Path;

use crate::error::{ImageError, Result};

/// The bytes of a file, mapped or (for empty files and tests) owned.
pub enum FileBytes {
    Mapped(memmap2::Mmap),
    Owned(Vec<u8>),
}

impl FileBytes {
    pub fn open(path: &Path) -> Result<FileBytes> {
        let file = File::open(path).map_err(|e| ImageError::io(path, e))?;
        let len = file.metadata().map_err(|e| ImageError::io(path, e))?.len();
        if len == 0 {
            // mmap of an empty file fails with EINVAL; there is nothing to map.
            return Ok(FileBytes::Owned(Vec::new()));
        }
        // SAFETY: the mapping is read-only and private. If another process
        // truncates the file while it is mapped, touching the lost pages
        // raises SIGBUS; every tool that maps binaries (ripgrep, object's
        // users, debuggers) accepts this. Modified-but-not-truncated contents
        // are fine: every byte is parsed as untrusted input anyway.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| ImageError::io(path, e))?;
        Ok(FileBytes::Mapped(map))
    }

    pub fn as_slice(&self) -> &[u8] {
        match self {
            FileBytes::Mapped(m) => m,
            FileBytes::Owned(v) => v,
        }
    }
}
