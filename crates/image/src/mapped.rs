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
        FileBytes::map(path).map_err(|e| ImageError::io(path, e))
    }

    /// [`FileBytes::open`] for callers outside images (a patch's objects),
    /// with the I/O error as it is.
    pub fn map(path: &Path) -> std::io::Result<FileBytes> {
        let file = File::open(path)?;
        let metadata = file.metadata()?;
        if metadata.is_dir() {
            // Said as such: mapping it fails with "No such device".
            return Err(std::io::Error::new(
                std::io::ErrorKind::IsADirectory,
                "is a directory, not a file",
            ));
        }
        if metadata.len() == 0 {
            // mmap of an empty file fails with EINVAL; there is nothing to map.
            return Ok(FileBytes::Owned(Vec::new()));
        }
        // SAFETY: the mapping is read-only and private. If another process
        // truncates the file while it is mapped, touching the lost pages
        // raises SIGBUS; every tool that maps binaries (ripgrep, object's
        // users, debuggers) accepts this. Modified-but-not-truncated contents
        // are fine: every byte is parsed as untrusted input anyway.
        let map = unsafe { memmap2::Mmap::map(&file) }?;
        Ok(FileBytes::Mapped(map))
    }

    pub fn as_slice(&self) -> &[u8] {
        match self {
            FileBytes::Mapped(m) => m,
            FileBytes::Owned(v) => v,
        }
    }
}

impl std::ops::Deref for FileBytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl std::fmt::Debug for FileBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let how = match self {
            FileBytes::Mapped(_) => "mapped",
            FileBytes::Owned(_) => "owned",
        };
        write!(f, "FileBytes({} bytes, {how})", self.len())
    }
}
