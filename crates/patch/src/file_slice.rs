//! Bytes of an object file shared with the file as read, not copied: a
//! section's bytes, and each symbol's within them, are ranges of the
//! file's one buffer (mapped, for a one-shot patch). Copying them made a
//! 10,000-function object's reading allocate its code twice over, ten
//! thousand small buffers and two large ones, most of which only a diff
//! that finds them alike ever reads.

use std::ops::{Deref, Range};
use std::sync::Arc;

use relive_image::FileBytes;

/// A range of an object file's bytes, or bytes of its own (made by a test
/// or a caller that builds an object in memory).
#[derive(Clone)]
pub struct FileSlice {
    file: Arc<FileBytes>,
    range: Range<usize>,
}

impl FileSlice {
    /// `range` of `file`; `None` when the range lies outside it.
    pub fn of(file: &Arc<FileBytes>, range: Range<usize>) -> Option<FileSlice> {
        file.get(range.clone())?;
        Some(FileSlice {
            file: Arc::clone(file),
            range,
        })
    }

    /// The range of `file` that `part` (a subslice of it) is, `None` when
    /// `part` is not inside `file`'s bytes.
    pub fn within(file: &Arc<FileBytes>, part: &[u8]) -> Option<FileSlice> {
        let whole = file.as_slice().as_ptr_range();
        let start = (part.as_ptr() as usize).checked_sub(whole.start as usize)?;
        let end = start.checked_add(part.len())?;
        (end <= whole.end as usize - whole.start as usize).then(|| FileSlice {
            file: Arc::clone(file),
            range: start..end,
        })
    }

    /// The part `range` of these bytes (relative to their start), `None`
    /// when it lies outside them.
    pub fn part(&self, range: Range<usize>) -> Option<FileSlice> {
        self.get(range.clone())?;
        Some(FileSlice {
            file: Arc::clone(&self.file),
            range: self.range.start + range.start..self.range.start + range.end,
        })
    }
}

impl Deref for FileSlice {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        // In range by construction (`of`, `within` and `part` check).
        &self.file[self.range.clone()]
    }
}

impl From<Vec<u8>> for FileSlice {
    fn from(bytes: Vec<u8>) -> FileSlice {
        let range = 0..bytes.len();
        FileSlice {
            file: Arc::new(FileBytes::Owned(bytes)),
            range,
        }
    }
}

impl From<&[u8]> for FileSlice {
    fn from(bytes: &[u8]) -> FileSlice {
        FileSlice::from(bytes.to_vec())
    }
}

impl PartialEq for FileSlice {
    fn eq(&self, other: &FileSlice) -> bool {
        **self == **other
    }
}

impl Eq for FileSlice {}

impl PartialEq<[u8]> for FileSlice {
    fn eq(&self, other: &[u8]) -> bool {
        **self == *other
    }
}

impl PartialEq<Vec<u8>> for FileSlice {
    fn eq(&self, other: &Vec<u8>) -> bool {
        **self == **other
    }
}

impl std::fmt::Debug for FileSlice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&**self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slice_is_the_files_bytes_in_its_range_and_refuses_a_range_outside() {
        let file = Arc::new(FileBytes::Owned(b"abcdef".to_vec()));
        let s = FileSlice::of(&file, 1..4).unwrap();
        assert_eq!(&*s, b"bcd");
        assert_eq!(&*s.part(1..3).unwrap(), b"cd");
        assert!(s.part(2..4).is_none(), "past the slice's end, though inside the file");
        assert!(FileSlice::of(&file, 4..7).is_none());
        let within = FileSlice::within(&file, &file[2..5]).unwrap();
        assert_eq!(&*within, b"cde");
        let elsewhere = b"cde".to_vec();
        assert!(FileSlice::within(&file, &elsewhere).is_none());
        assert_eq!(FileSlice::from(b"xy".to_vec()), FileSlice::from(&b"xy"[..]));
    }
}
