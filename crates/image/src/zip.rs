//! The ZIP archive at the end of an APE ("ZipOS"), or of any file.
//!
//! Cosmopolitan programs read their own ZIP to find assets and the
//! `.symtab.<arch>` symbol table. Offsets in the central directory are
//! absolute from the start of the file (apelink writes them that way), so no
//! prefix adjustment is done. Opening reads only the end record and the
//! central directory, plus each entry's 30-byte local header (whose extra
//! field can differ from the central one, moving the data). Entry payloads
//! are touched only when asked for: a multi-GiB STORE entry of a
//! llamafile-style file costs nothing until it is read, and reading it is a
//! slice of the file mapping.

use std::borrow::Cow;
use std::io::Read;

use serde::Serialize;

use crate::error::{ImageError, Result};
use crate::read::{add, bytes_at, u16_at, u32_at, u64_at};

const EOCD_SIG: u32 = 0x0605_4b50; // PK\5\6
const EOCD_LEN: u64 = 22;
const ZIP64_LOCATOR_SIG: u32 = 0x0706_4b50; // PK\6\7
const ZIP64_LOCATOR_LEN: u64 = 20;
const ZIP64_EOCD_SIG: u32 = 0x0606_4b50; // PK\6\6
const CENTRAL_SIG: u32 = 0x0201_4b50; // PK\1\2
const CENTRAL_LEN: u64 = 46;
const LOCAL_SIG: u32 = 0x0403_4b50; // PK\3\4
const LOCAL_LEN: u64 = 30;
/// How far back from the end the end record may start: the largest comment
/// plus slack, as Cosmopolitan's own reader scans (0x10000 + 0x1000).
const EOCD_SCAN: u64 = 0x10000 + 0x1000;

pub const METHOD_STORE: u16 = 0;
pub const METHOD_DEFLATE: u16 = 8;

/// A parsed ZIP central directory.
#[derive(Debug, Clone, Serialize)]
pub struct ZipArchive {
    pub eocd_offset: u64,
    pub cd_offset: u64,
    pub cd_size: u64,
    pub zip64: bool,
    pub entries: Vec<ZipEntry>,
}

/// One central-directory entry, with its payload located through the local header.
#[derive(Debug, Clone, Serialize)]
pub struct ZipEntry {
    pub name: String,
    pub local_header_offset: u64,
    pub data_offset: u64,
    pub method: u16,
    pub compressed_size: u64,
    pub size: u64,
    pub crc32: u32,
}

impl ZipArchive {
    /// Finds and parses the archive. `Ok(None)` means the file has no end
    /// record at all (not a ZIP); an end record with a broken directory is
    /// an error.
    pub fn parse(data: &[u8]) -> Result<Option<ZipArchive>> {
        let Some(eocd_offset) = find_eocd(data) else {
            return Ok(None);
        };
        let mut cd_offset = u64::from(u32_at(data, eocd_offset + 16, "ZIP end record")?);
        let mut cd_size = u64::from(u32_at(data, eocd_offset + 12, "ZIP end record")?);
        let mut count = u64::from(u16_at(data, eocd_offset + 10, "ZIP end record")?);
        let mut zip64 = false;
        if let Some(locator) = eocd_offset.checked_sub(ZIP64_LOCATOR_LEN) {
            if u32_at(data, locator, "ZIP64 locator").ok() == Some(ZIP64_LOCATOR_SIG) {
                let record = u64_at(data, locator + 8, "ZIP64 locator")?;
                if u32_at(data, record, "ZIP64 end record")? != ZIP64_EOCD_SIG {
                    return Err(ImageError::invalid(
                        "ZIP64 end record",
                        record,
                        "bad signature (expected PK\\6\\6)",
                    ));
                }
                count = u64_at(data, record + 32, "ZIP64 end record")?;
                cd_size = u64_at(data, record + 40, "ZIP64 end record")?;
                cd_offset = u64_at(data, record + 48, "ZIP64 end record")?;
                zip64 = true;
            }
        }
        let directory = bytes_at(data, cd_offset, cd_size, "ZIP central directory")?;
        // Never trust `count` for an allocation: each record is at least 46 bytes.
        let mut entries = Vec::with_capacity(count.min(cd_size / CENTRAL_LEN) as usize);
        let mut at = 0u64;
        for _ in 0..count {
            let (entry, next) = parse_central(data, directory, at, cd_offset)?;
            entries.push(entry);
            at = next;
        }
        Ok(Some(ZipArchive {
            eocd_offset,
            cd_offset,
            cd_size,
            zip64,
            entries,
        }))
    }

    /// The first entry with this exact name.
    pub fn entry(&self, name: &str) -> Option<&ZipEntry> {
        self.entries.iter().find(|e| e.name == name)
    }
}

/// Scans backwards for `PK\5\6`, accepting the last one whose fixed part
/// fits in the file and whose comment does not run past the end.
fn find_eocd(data: &[u8]) -> Option<u64> {
    let len = data.len() as u64;
    len.checked_sub(EOCD_LEN)?;
    let first = len.saturating_sub(EOCD_SCAN + EOCD_LEN);
    let window = &data[first as usize..];
    let signature = EOCD_SIG.to_le_bytes();
    // Its last byte, found by the vectorised one-byte search, then the
    // rest compared: memchr's reverse substring search goes byte by byte,
    // and this window is 68 KiB of every executable opened.
    memchr::memrchr_iter(signature[3], window)
        .filter_map(|end| end.checked_sub(3))
        .filter(|&i| window[i..i + 4] == signature)
        .map(|i| first + i as u64)
        .find(|&at| {
            at + EOCD_LEN <= len
                && u16_at(data, at + 20, "")
                    .map(|comment| at + EOCD_LEN + u64::from(comment) <= len)
                    .unwrap_or(false)
        })
}

/// Parses the central record at `at` within `directory`; returns the entry
/// and the offset of the next record.
fn parse_central(data: &[u8], directory: &[u8], at: u64, cd_offset: u64) -> Result<(ZipEntry, u64)> {
    let file_offset = cd_offset.saturating_add(at);
    let what = "ZIP central directory entry";
    if u32_at(directory, at, what)? != CENTRAL_SIG {
        return Err(ImageError::invalid(
            what,
            file_offset,
            "bad signature (expected PK\\1\\2)",
        ));
    }
    let method = u16_at(directory, at + 10, what)?;
    let crc32 = u32_at(directory, at + 16, what)?;
    let mut compressed_size = u64::from(u32_at(directory, at + 20, what)?);
    let mut size = u64::from(u32_at(directory, at + 24, what)?);
    let name_len = u64::from(u16_at(directory, at + 28, what)?);
    let extra_len = u64::from(u16_at(directory, at + 30, what)?);
    let comment_len = u64::from(u16_at(directory, at + 32, what)?);
    let mut local_header_offset = u64::from(u32_at(directory, at + 42, what)?);
    let name_bytes = bytes_at(directory, at + CENTRAL_LEN, name_len, "ZIP entry name")?;
    let name = String::from_utf8_lossy(name_bytes).into_owned();
    let extra = bytes_at(
        directory,
        at + CENTRAL_LEN + name_len,
        extra_len,
        "ZIP entry extra field",
    )?;

    // ZIP64: each field that is 0xFFFFFFFF in the fixed part is in extra
    // field 0x0001, in this order: size, compressed size, local header offset.
    let wants = [
        size == 0xFFFF_FFFF,
        compressed_size == 0xFFFF_FFFF,
        local_header_offset == 0xFFFF_FFFF,
    ];
    if wants.iter().any(|&w| w) {
        let zip64 = find_extra(extra, 0x0001).ok_or_else(|| {
            ImageError::invalid(
                what,
                file_offset,
                format!("{name:?} has 0xFFFFFFFF sizes but no ZIP64 extra field"),
            )
        })?;
        let mut values = zip64
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap_or([0; 8])));
        let mut take = |wanted: bool, field: &mut u64| -> Result<()> {
            if wanted {
                *field = values.next().ok_or_else(|| {
                    ImageError::invalid(what, file_offset, format!("{name:?}: ZIP64 extra field is too short"))
                })?;
            }
            Ok(())
        };
        take(wants[0], &mut size)?;
        take(wants[1], &mut compressed_size)?;
        take(wants[2], &mut local_header_offset)?;
    }

    let local_what = "ZIP local file header";
    if u32_at(data, local_header_offset, local_what)? != LOCAL_SIG {
        return Err(ImageError::invalid(
            local_what,
            local_header_offset,
            format!("{name:?}: bad signature (expected PK\\3\\4)"),
        ));
    }
    let local_name_len = u64::from(u16_at(data, local_header_offset + 26, local_what)?);
    let local_extra_len = u64::from(u16_at(data, local_header_offset + 28, local_what)?);
    let data_offset = add(
        local_header_offset,
        LOCAL_LEN + local_name_len + local_extra_len,
        local_what,
        local_header_offset,
    )?;
    let end = add(data_offset, compressed_size, local_what, local_header_offset)?;
    if end > data.len() as u64 {
        return Err(ImageError::Truncated {
            what: "ZIP entry data",
            offset: data_offset,
            need: compressed_size,
            len: data.len() as u64,
        });
    }
    let next = at + CENTRAL_LEN + name_len + extra_len + comment_len;
    Ok((
        ZipEntry {
            name,
            local_header_offset,
            data_offset,
            method,
            compressed_size,
            size,
            crc32,
        },
        next,
    ))
}

/// Finds extra-field block `id` in a ZIP extra field (`id u16, len u16, data`).
fn find_extra(mut extra: &[u8], id: u16) -> Option<&[u8]> {
    while extra.len() >= 4 {
        let tag = u16::from_le_bytes([extra[0], extra[1]]);
        let len = usize::from(u16::from_le_bytes([extra[2], extra[3]]));
        let body = extra.get(4..4 + len)?;
        if tag == id {
            return Some(body);
        }
        extra = &extra[4 + len..];
    }
    None
}

impl ZipEntry {
    /// The stored bytes of the entry (compressed, for DEFLATE), as a slice of `file`.
    pub fn raw<'a>(&self, file: &'a [u8]) -> Result<&'a [u8]> {
        bytes_at(file, self.data_offset, self.compressed_size, "ZIP entry data")
    }

    /// The uncompressed contents: a zero-copy slice for STORE, a decompressed
    /// buffer for DEFLATE. The CRC-32 is checked for DEFLATE (the bytes are
    /// being produced anyway); for STORE it is not, so that borrowing a huge
    /// entry stays free. Use [`ZipEntry::verify`] for that.
    pub fn data<'a>(&self, file: &'a [u8]) -> Result<Cow<'a, [u8]>> {
        match self.method {
            METHOD_STORE => {
                if self.compressed_size != self.size {
                    return Err(self.corrupt(format!(
                        "STORE entry has compressed size {} but size {}",
                        self.compressed_size, self.size
                    )));
                }
                self.raw(file).map(Cow::Borrowed)
            }
            METHOD_DEFLATE => {
                let out = self.inflate(file, self.size)?;
                if out.len() as u64 != self.size {
                    return Err(self.corrupt(format!(
                        "inflates to {} bytes, the directory says {}",
                        out.len(),
                        self.size
                    )));
                }
                self.check_crc(&out)?;
                Ok(Cow::Owned(out))
            }
            other => Err(ImageError::UnsupportedMethod {
                name: self.name.clone(),
                method: other,
            }),
        }
    }

    /// The first `n` uncompressed bytes (fewer if the entry is shorter),
    /// decompressing only as much as needed.
    pub fn prefix<'a>(&self, file: &'a [u8], n: u64) -> Result<Cow<'a, [u8]>> {
        let n = n.min(self.size);
        match self.method {
            METHOD_STORE => {
                bytes_at(file, self.data_offset, n.min(self.compressed_size), "ZIP entry data").map(Cow::Borrowed)
            }
            METHOD_DEFLATE => self.inflate(file, n).map(Cow::Owned),
            other => Err(ImageError::UnsupportedMethod {
                name: self.name.clone(),
                method: other,
            }),
        }
    }

    /// Checks the CRC-32 of the uncompressed contents.
    pub fn verify(&self, file: &[u8]) -> Result<()> {
        let data = self.data(file)?;
        self.check_crc(&data)
    }

    /// Raw-deflate decompression (no zlib header), reading at most `limit`
    /// output bytes: a hostile entry cannot make us allocate more than its
    /// declared size (a "zip bomb").
    fn inflate(&self, file: &[u8], limit: u64) -> Result<Vec<u8>> {
        let raw = self.raw(file)?;
        let mut out = Vec::with_capacity(limit.min(1 << 26) as usize);
        flate2::read::DeflateDecoder::new(raw)
            .take(limit)
            .read_to_end(&mut out)
            .map_err(|e| self.corrupt(format!("raw deflate stream: {e}")))?;
        Ok(out)
    }

    fn check_crc(&self, bytes: &[u8]) -> Result<()> {
        let mut crc = flate2::Crc::new();
        crc.update(bytes);
        if crc.sum() != self.crc32 {
            return Err(self.corrupt(format!(
                "CRC-32 is {:08x}, the directory says {:08x}",
                crc.sum(),
                self.crc32
            )));
        }
        Ok(())
    }

    fn corrupt(&self, reason: String) -> ImageError {
        ImageError::CorruptEntry {
            name: self.name.clone(),
            reason,
        }
    }
}

/// A minimal ZIP writer for tests and benchmarks: builds archives (STORE or
/// DEFLATE, optionally ZIP64) appended to arbitrary prefix bytes, with
/// absolute offsets as apelink writes them.
#[doc(hidden)]
pub mod testing {
    use std::io::Write;

    /// One entry to write: name, content, whether to deflate it.
    pub struct NewEntry<'a> {
        pub name: &'a str,
        pub data: &'a [u8],
        pub deflate: bool,
    }

    /// Appends local headers, payloads and a central directory for `entries`
    /// to `out`. With `zip64`, every entry and the end record use ZIP64 fields.
    pub fn append_zip(out: &mut Vec<u8>, entries: &[NewEntry<'_>], zip64: bool) {
        let mut central = Vec::new();
        for e in entries {
            let mut crc = flate2::Crc::new();
            crc.update(e.data);
            let payload = if e.deflate {
                let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
                enc.write_all(e.data).unwrap();
                enc.finish().unwrap()
            } else {
                e.data.to_vec()
            };
            let method: u16 = if e.deflate { 8 } else { 0 };
            let offset = out.len() as u64;
            let extra = zip64_extra(zip64, e.data.len() as u64, payload.len() as u64, Some(offset));
            let (csize32, size32, off32) = if zip64 {
                (u32::MAX, u32::MAX, u32::MAX)
            } else {
                (payload.len() as u32, e.data.len() as u32, offset as u32)
            };
            // Local header (with a different extra field length than the
            // central one, as real writers produce).
            let local_extra = [0xAAu8, 0xAA, 4, 0, 1, 2, 3, 4];
            local_header(
                out,
                e.name,
                method,
                crc.sum(),
                payload.len() as u32,
                e.data.len() as u32,
                &local_extra,
            );
            out.extend_from_slice(&payload);
            central_record(&mut central, e.name, method, crc.sum(), csize32, size32, off32, &extra);
        }
        finish(out, &central, entries.len() as u64, zip64);
    }

    /// Writes one local file header (the payload follows it).
    pub fn local_header(out: &mut Vec<u8>, name: &str, method: u16, crc: u32, csize: u32, size: u32, extra: &[u8]) {
        out.extend_from_slice(&0x0403_4b50u32.to_le_bytes());
        // Version needed (4.5, ZIP64-capable) and flags.
        out.extend_from_slice(&[45, 0, 0, 0]);
        out.extend_from_slice(&method.to_le_bytes());
        // Modification time and date.
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(&csize.to_le_bytes());
        out.extend_from_slice(&size.to_le_bytes());
        out.extend_from_slice(&(name.len() as u16).to_le_bytes());
        out.extend_from_slice(&(extra.len() as u16).to_le_bytes());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(extra);
    }

    /// The ZIP64 extra field (0x0001) with size, compressed size and offset.
    pub fn zip64_extra(zip64: bool, size: u64, csize: u64, offset: Option<u64>) -> Vec<u8> {
        if !zip64 {
            return Vec::new();
        }
        let mut extra = vec![1, 0, if offset.is_some() { 24 } else { 16 }, 0];
        extra.extend_from_slice(&size.to_le_bytes());
        extra.extend_from_slice(&csize.to_le_bytes());
        if let Some(offset) = offset {
            extra.extend_from_slice(&offset.to_le_bytes());
        }
        extra
    }

    /// Writes one central-directory record.
    #[allow(clippy::too_many_arguments)]
    pub fn central_record(
        out: &mut Vec<u8>,
        name: &str,
        method: u16,
        crc: u32,
        csize: u32,
        size: u32,
        offset: u32,
        extra: &[u8],
    ) {
        out.extend_from_slice(&0x0201_4b50u32.to_le_bytes());
        out.extend_from_slice(&[45, 3, 45, 0, 0, 0]);
        out.extend_from_slice(&method.to_le_bytes());
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(&csize.to_le_bytes());
        out.extend_from_slice(&size.to_le_bytes());
        out.extend_from_slice(&(name.len() as u16).to_le_bytes());
        out.extend_from_slice(&(extra.len() as u16).to_le_bytes());
        // Comment length, disk number, internal and external attributes.
        out.extend_from_slice(&[0; 10]);
        out.extend_from_slice(&offset.to_le_bytes());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(extra);
    }

    /// Writes `central` at the end of `out`, then the end records.
    pub fn finish(out: &mut Vec<u8>, central: &[u8], count: u64, zip64: bool) {
        finish_at(out, 0, central, count, zip64)
    }

    /// Like [`finish`], for bytes that will be written at file offset `base`.
    pub fn finish_at(out: &mut Vec<u8>, base: u64, central: &[u8], count: u64, zip64: bool) {
        let cd_offset = base + out.len() as u64;
        out.extend_from_slice(central);
        let cd_size = central.len() as u64;
        if zip64 {
            let record = base + out.len() as u64;
            out.extend_from_slice(&0x0606_4b50u32.to_le_bytes());
            out.extend_from_slice(&44u64.to_le_bytes());
            out.extend_from_slice(&[45, 3, 45, 0]);
            out.extend_from_slice(&[0; 8]);
            out.extend_from_slice(&count.to_le_bytes());
            out.extend_from_slice(&count.to_le_bytes());
            out.extend_from_slice(&cd_size.to_le_bytes());
            out.extend_from_slice(&cd_offset.to_le_bytes());
            out.extend_from_slice(&0x0706_4b50u32.to_le_bytes());
            out.extend_from_slice(&0u32.to_le_bytes());
            out.extend_from_slice(&record.to_le_bytes());
            out.extend_from_slice(&1u32.to_le_bytes());
        }
        let clamp16 = |v: u64| if zip64 { 0xFFFF } else { v as u16 };
        let clamp32 = |v: u64| if zip64 { 0xFFFF_FFFF } else { v as u32 };
        out.extend_from_slice(&0x0605_4b50u32.to_le_bytes());
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&clamp16(count).to_le_bytes());
        out.extend_from_slice(&clamp16(count).to_le_bytes());
        out.extend_from_slice(&clamp32(cd_size).to_le_bytes());
        out.extend_from_slice(&clamp32(cd_offset).to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
    }

    /// Writes a llamafile-style file to `path`: `ape` (an APE with its own
    /// ZIP) unchanged, then a STORE entry `weights.bin` of `payload_len` zero
    /// bytes left as a sparse hole, then a ZIP64 central directory holding
    /// the original entries (their offsets are absolute, so still valid)
    /// plus the new one.
    pub fn write_llamafile_like(ape: &[u8], payload_len: u64, path: &std::path::Path) -> std::io::Result<()> {
        use std::io::{Seek, SeekFrom};
        let original = super::ZipArchive::parse(ape)
            .ok()
            .flatten()
            .ok_or_else(|| std::io::Error::other("the prefix file has no readable ZIP"))?;
        let old_central = &ape[original.cd_offset as usize..(original.cd_offset + original.cd_size) as usize];

        // CRC-32 of the zero payload by doubling, without hashing gigabytes.
        const MIB: u64 = 1 << 20;
        if !payload_len.is_multiple_of(MIB) {
            return Err(std::io::Error::other("payload length must be a multiple of 1 MiB"));
        }
        let mut crc = flate2::Crc::new();
        let mut piece = flate2::Crc::new();
        piece.update(&vec![0u8; MIB as usize]);
        let mut remaining = payload_len / MIB;
        while remaining > 0 {
            if remaining & 1 == 1 {
                crc.combine(&piece);
            }
            let mut doubled = flate2::Crc::new();
            doubled.combine(&piece);
            doubled.combine(&piece);
            piece = doubled;
            remaining >>= 1;
        }

        let name = "weights.bin";
        let local_offset = ape.len() as u64;
        let mut local = Vec::new();
        let local_extra = zip64_extra(true, payload_len, payload_len, None);
        local_header(&mut local, name, 0, crc.sum(), u32::MAX, u32::MAX, &local_extra);
        let data_offset = local_offset + local.len() as u64;

        let mut central = old_central.to_vec();
        let extra = zip64_extra(true, payload_len, payload_len, Some(local_offset));
        central_record(&mut central, name, 0, crc.sum(), u32::MAX, u32::MAX, u32::MAX, &extra);
        let tail_offset = data_offset + payload_len;
        let mut tail = Vec::new();
        finish_at(
            &mut tail,
            tail_offset,
            &central,
            original.entries.len() as u64 + 1,
            true,
        );

        let mut file = std::fs::File::create(path)?;
        file.write_all(ape)?;
        file.write_all(&local)?;
        file.seek(SeekFrom::Start(tail_offset))?;
        file.write_all(&tail)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{append_zip, NewEntry};
    use super::*;

    fn sample(zip64: bool) -> Vec<u8> {
        let mut file = b"some prefix that is not part of the zip".to_vec();
        let text = b"hello hello hello hello hello".repeat(20);
        append_zip(
            &mut file,
            &[
                NewEntry {
                    name: "a.txt",
                    data: &text,
                    deflate: true,
                },
                NewEntry {
                    name: "b.bin",
                    data: b"stored",
                    deflate: false,
                },
                NewEntry {
                    name: "empty",
                    data: b"",
                    deflate: false,
                },
            ],
            zip64,
        );
        file
    }

    #[test]
    fn reads_entries_with_absolute_offsets() {
        for zip64 in [false, true] {
            let file = sample(zip64);
            let zip = ZipArchive::parse(&file).unwrap().unwrap();
            assert_eq!(zip.zip64, zip64);
            assert_eq!(zip.entries.len(), 3);
            let a = zip.entry("a.txt").unwrap();
            assert_eq!(a.method, METHOD_DEFLATE);
            assert_eq!(a.local_header_offset, 39);
            // 30-byte header, 5-byte name, 8-byte local extra.
            assert_eq!(a.data_offset, 39 + 30 + 5 + 8);
            assert_eq!(
                a.data(&file).unwrap().as_ref(),
                b"hello hello hello hello hello".repeat(20).as_slice()
            );
            let b = zip.entry("b.bin").unwrap();
            assert!(matches!(b.data(&file).unwrap(), Cow::Borrowed(b"stored")));
            b.verify(&file).unwrap();
            assert_eq!(a.prefix(&file, 5).unwrap().as_ref(), b"hello");
            assert_eq!(zip.entry("empty").unwrap().data(&file).unwrap().len(), 0);
        }
    }

    #[test]
    fn no_end_record_is_not_a_zip() {
        assert!(ZipArchive::parse(b"just some bytes, nothing to see").unwrap().is_none());
        assert!(ZipArchive::parse(b"").unwrap().is_none());
    }

    #[test]
    fn corruption_is_reported_not_panicked() {
        let file = sample(false);
        let zip = ZipArchive::parse(&file).unwrap().unwrap();
        // Flip a byte of the deflated payload: CRC or stream error.
        let a = zip.entry("a.txt").unwrap().clone();
        let mut bad = file.clone();
        bad[a.data_offset as usize + 3] ^= 0x55;
        assert!(matches!(a.data(&bad), Err(ImageError::CorruptEntry { .. })));
        // Break the central signature.
        let mut bad = file.clone();
        bad[zip.cd_offset as usize] = b'X';
        assert!(matches!(ZipArchive::parse(&bad), Err(ImageError::Invalid { .. })));
        // Unsupported method.
        let mut odd = a.clone();
        odd.method = 12;
        assert!(matches!(
            odd.data(&file),
            Err(ImageError::UnsupportedMethod { method: 12, .. })
        ));
    }

    #[test]
    fn a_declared_size_smaller_than_the_stream_is_caught() {
        let file = sample(false);
        let zip = ZipArchive::parse(&file).unwrap().unwrap();
        let mut a = zip.entry("a.txt").unwrap().clone();
        a.size = 10;
        assert!(matches!(a.data(&file), Err(ImageError::CorruptEntry { .. })));
    }
}
