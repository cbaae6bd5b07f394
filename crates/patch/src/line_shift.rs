//! Telling a function that changed only because lines above it moved.
//!
//! `__LINE__` (a logging or assertion macro's) is an immediate in the
//! code: an edit that adds a line to one function changes every function
//! below it that uses one, by the same number. Those are patched like any
//! change (their new calls log the new numbers), but one whose new code
//! can never run (`main`, an initialisation called once) was reported
//! NOT REACHABLE with advice for an edit the user never made (a redis
//! trial: every edit above `main` in `server.c`), and `verify` failed for
//! it until a restart.

use iced_x86::{Decoder, DecoderOptions};

use crate::objfile::{Kind, ObjectFile};

/// When function `n` of `new` differs from function `o` of `old` only in
/// line numbers moved by one amount: that amount (positive: down).
///
/// Everything must agree: the code is the same but for immediates
/// (relocated fields included, with the same targets); each of those
/// differs by one amount `delta` and was a line of the old function's
/// own line-table rows; and the rows are the same but for lines moved by
/// `delta` (the function's own) or by nothing (code inlined from above
/// the edit, or from a header). An edit of a constant that happened to
/// equal one of the function's lines and grew by the same amount as its
/// lines moved is the one change this takes for a move.
///
/// `rows`: each object's line rows, read once for all the functions asked
/// about (a large unit's line table is megabytes; SQLite's functions that
/// log `__LINE__` are hundreds).
pub fn lines_moved(
    (old, o): (&ObjectFile, usize),
    (new, n): (&ObjectFile, usize),
    rows: &mut dyn FnMut(&ObjectFile) -> std::rc::Rc<crate::line_table::LineRows>,
) -> Option<i64> {
    let shift = immediates_shifted((old, o), (new, n))?;
    confirmed_by_lines(&shift, (old, o), (new, n), rows)
}

/// What the code alone says of a move ([`immediates_shifted`]): by how
/// much the immediates that differ moved, and their old values, which the
/// line table must show to be the function's lines.
pub struct ImmediateShift {
    pub delta: i64,
    old_values: Vec<i64>,
}

/// The first half of [`lines_moved`], without the line tables (which for
/// a large unit cost more than the rest of a patch): whether the two
/// functions' code is the same but for immediates that all differ by one
/// amount. A constant edited in place passes this too; the line table
/// tells it from a move.
pub fn immediates_shifted((old, o): (&ObjectFile, usize), (new, n): (&ObjectFile, usize)) -> Option<ImmediateShift> {
    let (a, b) = (old.symbols.get(o)?, new.symbols.get(n)?);
    if a.kind != Kind::Function || b.kind != Kind::Function || a.size != b.size {
        return None;
    }
    let (x, y) = crate::diff::same_references_masked(old, o, new, n)?;
    if x == y {
        return None;
    }
    let instructions = &b.decoded.as_ref()?.instructions;
    if a.decoded.as_ref()?.instructions != *instructions {
        return None;
    }
    let mut moved: Option<i64> = None;
    let mut old_values = Vec::new();
    for &(start, len) in instructions {
        let range = start as usize..(start as usize + len as usize).min(x.len());
        if x[range.clone()] == y[range.clone()] {
            continue;
        }
        let (was, is) = (immediates(&x[range.clone()])?, immediates(&y[range.clone()])?);
        if was.len() != is.len() {
            return None;
        }
        // Only immediate bytes may differ.
        let outside = (range.start..range.end)
            .filter(|&k| x[k] != y[k])
            .any(|k| !was.iter().any(|imm| imm.covers(k - range.start)));
        if outside {
            return None;
        }
        for (p, q) in was.iter().zip(&is) {
            if p.value == q.value {
                continue;
            }
            let delta = q.value.checked_sub(p.value)?;
            if *moved.get_or_insert(delta) != delta {
                return None;
            }
            old_values.push(p.value);
        }
    }
    let delta = moved.filter(|&d| d != 0)?;
    Some(ImmediateShift { delta, old_values })
}

/// The second half of [`lines_moved`]: whether the line tables show the
/// immediates of `shift` to be the function's lines, moved with it.
pub fn confirmed_by_lines(
    shift: &ImmediateShift,
    (old, o): (&ObjectFile, usize),
    (new, n): (&ObjectFile, usize),
    rows: &mut dyn FnMut(&ObjectFile) -> std::rc::Rc<crate::line_table::LineRows>,
) -> Option<i64> {
    let ImmediateShift { delta, old_values } = shift;
    let delta = *delta;
    let (before, after) = (rows(old).of(old, o), rows(new).of(new, n));
    if before.is_empty() || before.len() != after.len() {
        return None;
    }
    let mut own_lines = Vec::new();
    for (&(at, file, line), &(at2, file2, line2)) in before.iter().zip(&after) {
        let shift = i64::try_from(line2).ok()? - i64::try_from(line).ok()?;
        if at != at2 || file != file2 || (shift != 0 && shift != delta) {
            return None;
        }
        if shift == delta {
            own_lines.push(line as i64);
        }
    }
    old_values.iter().all(|v| own_lines.contains(v)).then_some(delta)
}

/// An immediate operand of an instruction.
struct Immediate {
    /// Offset in the instruction.
    at: usize,
    size: usize,
    /// Sign-extended.
    value: i64,
}

impl Immediate {
    fn covers(&self, k: usize) -> bool {
        (self.at..self.at + self.size).contains(&k)
    }
}

/// The immediates of the one instruction `bytes` holds (`None` when it
/// does not decode whole).
fn immediates(bytes: &[u8]) -> Option<Vec<Immediate>> {
    let mut decoder = Decoder::new(64, bytes, DecoderOptions::NONE);
    let instr = decoder.decode();
    if instr.is_invalid() || instr.len() != bytes.len() {
        return None;
    }
    let offsets = decoder.get_constant_offsets(&instr);
    let mut found = Vec::new();
    for (has, at, size) in [
        (
            offsets.has_immediate(),
            offsets.immediate_offset(),
            offsets.immediate_size(),
        ),
        (
            offsets.has_immediate2(),
            offsets.immediate_offset2(),
            offsets.immediate_size2(),
        ),
    ] {
        if !has {
            continue;
        }
        let field = bytes.get(at..at + size)?;
        let mut raw = [0u8; 8];
        raw[..size].copy_from_slice(field);
        let shift = 64 - 8 * size as u32;
        let value = (i64::from_le_bytes(raw) << shift) >> shift;
        found.push(Immediate { at, size, value });
    }
    Some(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn immediates_are_found_with_their_place_and_sign() {
        // mov edi, 0x1e
        let imm = immediates(&[0xbf, 0x1e, 0, 0, 0]).unwrap();
        assert_eq!((imm[0].at, imm[0].size, imm[0].value), (1, 4, 30));
        // push -2 (imm8, sign-extended)
        let imm = immediates(&[0x6a, 0xfe]).unwrap();
        assert_eq!((imm[0].at, imm[0].size, imm[0].value), (1, 1, -2));
        // ret: none
        assert!(immediates(&[0xc3]).unwrap().is_empty());
        // Not one whole instruction.
        assert!(immediates(&[0xbf, 0x1e]).is_none());
    }
}
