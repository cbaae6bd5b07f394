//! Bounds-checked little-endian field reads over untrusted bytes.
//!
//! Every format in this crate is read through these helpers (or through the
//! `object` crate's equally checked `ReadRef`), so an offset or length taken
//! from the file can never index out of bounds or overflow.

use crate::error::{ImageError, Result};

/// Returns `data[offset..offset + len]`, or a [`ImageError::Truncated`] naming `what`.
pub(crate) fn bytes_at<'a>(data: &'a [u8], offset: u64, len: u64, what: &'static str) -> Result<&'a [u8]> {
    let truncated = || ImageError::Truncated {
        what,
        offset,
        need: len,
        len: data.len() as u64,
    };
    let start = usize::try_from(offset).map_err(|_| truncated())?;
    let size = usize::try_from(len).map_err(|_| truncated())?;
    let end = start.checked_add(size).ok_or_else(truncated)?;
    data.get(start..end).ok_or_else(truncated)
}

/// Reads a fixed-size array at `offset`.
pub(crate) fn array_at<const N: usize>(data: &[u8], offset: u64, what: &'static str) -> Result<[u8; N]> {
    let bytes = bytes_at(data, offset, N as u64, what)?;
    let mut out = [0u8; N];
    out.copy_from_slice(bytes);
    Ok(out)
}

pub(crate) fn u16_at(data: &[u8], offset: u64, what: &'static str) -> Result<u16> {
    array_at(data, offset, what).map(u16::from_le_bytes)
}

pub(crate) fn u32_at(data: &[u8], offset: u64, what: &'static str) -> Result<u32> {
    array_at(data, offset, what).map(u32::from_le_bytes)
}

pub(crate) fn u64_at(data: &[u8], offset: u64, what: &'static str) -> Result<u64> {
    array_at(data, offset, what).map(u64::from_le_bytes)
}

/// Adds two file-derived numbers, reporting overflow as invalid data.
pub(crate) fn add(a: u64, b: u64, what: &'static str, offset: u64) -> Result<u64> {
    a.checked_add(b)
        .ok_or_else(|| ImageError::invalid(what, offset, format!("{a:#x} + {b:#x} overflows")))
}

/// Finds every occurrence of `needle` in `haystack`, in order (overlapping
/// ones too), with a SIMD substring search: every module of a process is
/// looked at for APE script text, and a byte-by-byte comparison of each
/// window cost more than the rest of reading its headers.
pub(crate) fn find_all<'a>(haystack: &'a [u8], needle: &'a [u8]) -> impl Iterator<Item = usize> + 'a {
    let finder = memchr::memmem::Finder::new(needle);
    let mut from = 0;
    std::iter::from_fn(move || {
        if needle.is_empty() {
            return None;
        }
        let at = from + finder.find(haystack.get(from..)?)?;
        from = at + 1;
        Some(at)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_bounds_checked() {
        let data = [1u8, 2, 3, 4];
        assert_eq!(u16_at(&data, 2, "x").unwrap(), 0x0403);
        assert!(matches!(
            u32_at(&data, 1, "x"),
            Err(ImageError::Truncated {
                offset: 1,
                need: 4,
                len: 4,
                ..
            })
        ));
        assert!(bytes_at(&data, u64::MAX, 2, "x").is_err());
        assert!(bytes_at(&data, 2, u64::MAX, "x").is_err());
        assert_eq!(bytes_at(&data, 4, 0, "x").unwrap(), &[] as &[u8]);
    }

    #[test]
    fn find_all_finds_overlapping_positions() {
        assert_eq!(find_all(b"aaa", b"aa").collect::<Vec<_>>(), vec![0, 1]);
        assert_eq!(find_all(b"a", b"aa").count(), 0);
        assert_eq!(find_all(b"xbs=ybs=", b"bs=").collect::<Vec<_>>(), vec![1, 5]);
        assert_eq!(find_all(b"abc", b"").count(), 0);
    }
}
