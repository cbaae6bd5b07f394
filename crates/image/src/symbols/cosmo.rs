//! Cosmopolitan's `.symtab.<arch>` format (`libc/runtime/symbols.internal.h`).
//!
//! A 72-byte header (magic `SYMT`, abi 1, count, sizes, `addr_base`,
//! `addr_end`, two pointers that are 0 in the file, and the offsets of the
//! name-offset array and the name pool), then `count` pairs of u32 `{x, y}`:
//! the symbol spans `addr_base + x ..= addr_base + y`.

use super::{Binding, Symbol, SymbolKind};
use crate::error::{ImageError, Result};
use crate::read::{bytes_at, u32_at, u64_at};

pub const MAGIC: u32 = 0x544d_5953; // "SYMT"
pub const HEADER_LEN: u64 = 72;

/// The fields of the header that matter for reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub count: u64,
    pub addr_base: i64,
    pub addr_end: i64,
    pub names_offset: u32,
    pub name_base_offset: u32,
}

/// Parses and checks the header; needs only the first 72 bytes, so a
/// caller can learn the count without inflating the whole table.
pub fn header(bytes: &[u8]) -> Result<Header> {
    let what = "Cosmopolitan symbol table header";
    let magic = u32_at(bytes, 0, what)?;
    if magic != MAGIC {
        return Err(ImageError::invalid(
            what,
            0,
            format!("magic is {magic:#010x}, expected {MAGIC:#010x} (\"SYMT\")"),
        ));
    }
    let abi = u32_at(bytes, 4, what)?;
    if abi != 1 {
        return Err(ImageError::invalid(what, 4, format!("abi is {abi}, only 1 is known")));
    }
    Ok(Header {
        count: u64_at(bytes, 8, what)?,
        addr_base: u64_at(bytes, 32, what)? as i64,
        addr_end: u64_at(bytes, 40, what)? as i64,
        names_offset: u32_at(bytes, 64, what)?,
        name_base_offset: u32_at(bytes, 68, what)?,
    })
}

/// Reads every symbol. Entries whose range is reversed or whose name runs
/// off the table are errors naming the entry: the table is one unit, and a
/// damaged one should not be half-trusted.
pub fn parse(bytes: &[u8]) -> Result<Vec<Symbol>> {
    let h = header(bytes)?;
    let count_bytes = h
        .count
        .checked_mul(8)
        .ok_or_else(|| ImageError::invalid("Cosmopolitan symbol table", 8, "count overflows"))?;
    let entries = bytes_at(bytes, HEADER_LEN, count_bytes, "Cosmopolitan symbol entries")?;
    let names = bytes_at(
        bytes,
        u64::from(h.names_offset),
        h.count * 4,
        "Cosmopolitan symbol name offsets",
    )?;
    let pool = bytes.get(h.name_base_offset as usize..).ok_or(ImageError::Truncated {
        what: "Cosmopolitan symbol name pool",
        offset: u64::from(h.name_base_offset),
        need: 1,
        len: bytes.len() as u64,
    })?;
    let mut out = Vec::with_capacity(h.count as usize);
    for (i, (pair, name_off)) in entries.chunks_exact(8).zip(names.chunks_exact(4)).enumerate() {
        let entry_offset = HEADER_LEN + i as u64 * 8;
        let x = u32::from_le_bytes([pair[0], pair[1], pair[2], pair[3]]);
        let y = u32::from_le_bytes([pair[4], pair[5], pair[6], pair[7]]);
        if y < x {
            return Err(ImageError::invalid(
                "Cosmopolitan symbol entry",
                entry_offset,
                format!("entry {i} ends ({y:#x}) before it starts ({x:#x})"),
            ));
        }
        let addr = (h.addr_base as u64).checked_add(u64::from(x)).ok_or_else(|| {
            ImageError::invalid(
                "Cosmopolitan symbol entry",
                entry_offset,
                format!("entry {i}: address overflows"),
            )
        })?;
        let name_at = u32::from_le_bytes([name_off[0], name_off[1], name_off[2], name_off[3]]) as usize;
        let name = pool
            .get(name_at..)
            .and_then(|s| s.iter().position(|&c| c == 0).map(|end| &s[..end]))
            .ok_or_else(|| {
                ImageError::invalid(
                    "Cosmopolitan symbol name",
                    u64::from(h.name_base_offset).saturating_add(name_at as u64),
                    format!("entry {i}: name is outside the pool or not NUL-terminated"),
                )
            })?;
        out.push(Symbol {
            name: String::from_utf8_lossy(name).into_owned(),
            addr,
            size: u64::from(y - x) + 1,
            kind: SymbolKind::Unknown,
            binding: Binding::Unknown,
            file: None,
            section: None,
        });
    }
    Ok(out)
}

/// Builds a table in the file format, for tests and fuzz seeds.
#[doc(hidden)]
pub fn encode(addr_base: u64, symbols: &[(&str, u32, u32)]) -> Vec<u8> {
    let count = symbols.len() as u64;
    let names_offset = HEADER_LEN + count * 8;
    let name_base_offset = names_offset + count * 4;
    let mut pool = Vec::new();
    let mut offsets = Vec::new();
    for (name, _, _) in symbols {
        offsets.push(pool.len() as u32);
        pool.extend_from_slice(name.as_bytes());
        pool.push(0);
    }
    let mut out = Vec::new();
    out.extend_from_slice(&MAGIC.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    out.extend_from_slice(&count.to_le_bytes());
    let size = name_base_offset + pool.len() as u64;
    out.extend_from_slice(&size.to_le_bytes());
    out.extend_from_slice(&size.to_le_bytes());
    out.extend_from_slice(&addr_base.to_le_bytes());
    let end = symbols.iter().map(|s| s.2).max().unwrap_or(0);
    out.extend_from_slice(&(addr_base + u64::from(end)).to_le_bytes());
    out.extend_from_slice(&[0; 16]);
    out.extend_from_slice(&(names_offset as u32).to_le_bytes());
    out.extend_from_slice(&(name_base_offset as u32).to_le_bytes());
    for (_, x, y) in symbols {
        out.extend_from_slice(&x.to_le_bytes());
        out.extend_from_slice(&y.to_le_bytes());
    }
    for o in offsets {
        out.extend_from_slice(&o.to_le_bytes());
    }
    out.extend_from_slice(&pool);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let bytes = encode(
            0x400000,
            &[("_start", 0x10, 0x1f), ("main", 0x20, 0x20), ("once.0", 0x30, 0x37)],
        );
        assert_eq!(header(&bytes).unwrap().count, 3);
        let syms = parse(&bytes).unwrap();
        assert_eq!(syms.len(), 3);
        assert_eq!(
            (syms[0].name.as_str(), syms[0].addr, syms[0].size),
            ("_start", 0x400010, 16)
        );
        assert_eq!((syms[1].addr, syms[1].size), (0x400020, 1));
    }

    #[test]
    fn damage_is_an_error() {
        let good = encode(0x400000, &[("a", 0, 3)]);
        let mut bad = good.clone();
        bad[0] = b'X';
        assert!(matches!(parse(&bad), Err(ImageError::Invalid { .. })));
        let mut bad = good.clone();
        bad[8] = 0xff; // count 255
        assert!(matches!(parse(&bad), Err(ImageError::Truncated { .. })));
        let mut bad = good.clone();
        bad[72] = 9; // x > y
        assert!(parse(&bad).is_err());
        let mut bad = good.clone();
        bad.pop(); // name loses its NUL
        assert!(parse(&bad).is_err());
        assert!(parse(&good[..40]).is_err());
    }
}
