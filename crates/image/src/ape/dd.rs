//! Locating the Mach-O header through the script's `dd` statement.
//!
//! On macOS the script copies the Mach-O header over the start of the file
//! with `dd if="$o" of="$o" bs=1 skip=3224 count=528 conv=notrunc`. The
//! specification finds it with the regular expression
//! `bs=([ [:digit:]]+) skip=["$((]?([ [:digit:]]+)["))]? count=...`: the
//! three operands in that order, each a run of digits and spaces, optionally
//! wrapped in double quotes (old apelink) or `$((...))`. The loader-extraction
//! `dd` lines put `bs=` last and so never match. A match is only a candidate:
//! the caller confirms it by the Mach-O magic and cputype at `skip × bs`.

use super::SCRIPT_WINDOW;
use crate::read::find_all;

/// A `dd` statement's operands, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DdCandidate {
    /// File offset of the `b` of `bs=`.
    pub statement_offset: u64,
    /// `skip × bs`: where the Mach-O header should be.
    pub offset: u64,
    /// `count × bs`: how many bytes the script copies.
    pub size: u64,
}

/// Every `bs=N skip=N count=N` statement in the first [`SCRIPT_WINDOW`]
/// bytes, in file order. Overflowing products are dropped (never wrapped).
pub fn candidates(data: &[u8]) -> Vec<DdCandidate> {
    let window = &data[..data.len().min(SCRIPT_WINDOW)];
    find_all(window, b"bs=")
        .filter_map(|pos| {
            let (bs, rest) = operand(&data[pos + 3..])?;
            let rest = keyword(rest, b"skip=")?;
            let (skip, rest) = operand(rest)?;
            let rest = keyword(rest, b"count=")?;
            let (count, _) = operand(rest)?;
            Some(DdCandidate {
                statement_offset: pos as u64,
                offset: skip.checked_mul(bs)?,
                size: count.checked_mul(bs)?,
            })
        })
        .collect()
}

/// Accepts one or more spaces, then `word`. `operand` leaves the spaces
/// that follow an unwrapped number in place, so both `skip=3224 count=` and
/// `skip="3224" count=` come here with the separating space still present.
fn keyword<'a>(text: &'a [u8], word: &[u8]) -> Option<&'a [u8]> {
    let trimmed = trim_spaces(text);
    if trimmed.len() == text.len() {
        return None;
    }
    trimmed.strip_prefix(word)
}

fn trim_spaces(text: &[u8]) -> &[u8] {
    let n = text.iter().take_while(|&&c| c == b' ').count();
    &text[n..]
}

/// Parses `[ 0-9]+`, `"[ 0-9]+"` or `$(([ 0-9]+))`, with at least one digit
/// and no space between digits (the spec's `atoi` stops at the first space
/// after digits, so `"1 2"` would be 1; we refuse it as not a real operand).
fn operand(text: &[u8]) -> Option<(u64, &[u8])> {
    let (body, closer): (&[u8], &[u8]) = if let Some(r) = text.strip_prefix(b"$((") {
        (r, b"))")
    } else if let Some(r) = text.strip_prefix(b"\"") {
        (r, b"\"")
    } else {
        (text, b"")
    };
    let leading = body.iter().take_while(|&&c| c == b' ').count();
    let digits = body[leading..].iter().take_while(|c| c.is_ascii_digit()).count();
    if digits == 0 {
        return None;
    }
    let mut value: u64 = 0;
    for &d in &body[leading..leading + digits] {
        value = value.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    let after = &body[leading + digits..];
    if closer.is_empty() {
        return Some((value, after));
    }
    trim_spaces(after).strip_prefix(closer).map(|rest| (value, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn only(text: &[u8]) -> Option<(u64, u64)> {
        match candidates(text).as_slice() {
            [c] => Some((c.offset, c.size)),
            [] => None,
            many => panic!("expected one candidate, got {many:?}"),
        }
    }

    #[test]
    fn modern_padded_form() {
        let line = br#"dd if="$o" of="$o" bs=1 skip=3224       count=528        conv=notrunc"#;
        assert_eq!(only(line), Some((3224, 528)));
    }

    #[test]
    fn old_quoted_and_arithmetic_forms() {
        assert_eq!(
            only(br#"dd bs=8 skip="  9293" count="  66" x"#),
            Some((9293 * 8, 66 * 8))
        );
        assert_eq!(only(br#"dd bs=1 skip=$((  9293)) count=$((528)) x"#), Some((9293, 528)));
        assert_eq!(only(br#"dd bs=  64 skip=2 count=3"#), Some((128, 192)));
    }

    #[test]
    fn loader_extraction_lines_do_not_match() {
        assert_eq!(
            only(br#"dd if="$o" skip=571600     count=4180       bs=1 2>/dev/null"#),
            None
        );
        assert_eq!(
            only(br#"dd if="$t.$$" of="$t.$$" skip=5 count=8 bs=64 conv=notrunc"#),
            None
        );
    }

    #[test]
    fn malformed_operands_are_rejected() {
        assert_eq!(only(b"bs=1 skip= count=5"), None);
        assert_eq!(only(b"bs=1skip=1 count=5"), None);
        assert_eq!(only(br#"bs=1 skip="12 count=5"#), None);
        assert_eq!(only(b"bs=99999999999999999999 skip=1 count=1"), None);
        assert_eq!(only(b"bs=4294967296 skip=4294967296 count=1"), None);
    }
}
