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
//!
//! A function, as `parts` (its own code first, then its cold parts),
//! differs from the old only in line numbers that edits above it moved
//! when [`immediates_shifted`] and then [`confirmed_by_lines`] say so.
//!
//! Everything must agree: the code is the same but for immediates
//! (relocated fields included, with the same targets); the line-table
//! rows are at the same places, in the same files; and each immediate
//! that differs was a line of the old rows (or lies between two of them)
//! and changed by as much as those rows' lines moved. Lines may move by
//! different amounts: code inlined from above an edit did not move, and
//! two edits move the code between them less than the code after both.
//! An edit of a constant that happened to equal one of the function's
//! lines and grew by the same amount as its lines moved is the one change
//! this takes for a move.

use foldhash::{HashMap, HashMapExt};
use iced_x86::{Decoder, DecoderOptions};

use crate::line_table::RowsOnce;
use crate::objfile::{Kind, ObjectFile};

/// One part of a function in the old object and in the new: the function
/// itself, or its cold part (`f.cold`), where GCC puts the unlikely paths
/// that log `__LINE__` (an assertion's failure).
pub type Part<'a> = ((&'a ObjectFile, usize), (&'a ObjectFile, usize));

/// How far apart, in lines, two rows of a function may be for a line
/// between them to count as the function's own: a `__LINE__` whose
/// statement has no row of its own (GCC gives the code that loads it the
/// row of the `if` above it: SQLite's `SQLITE_CORRUPT_PAGE`) lies between
/// rows of its function, not beyond them.
const ROW_GAP: i64 = 64;

/// What the code alone says of a move ([`immediates_shifted`]): each
/// immediate that differs, as `(old value, new value)`, which the line
/// table must show to be lines of the function that moved as much.
pub struct ImmediateShift {
    changed: Vec<(i64, i64)>,
}

/// The first half, without the line tables (which for
/// a large unit cost more than the rest of a patch): whether the parts'
/// code is the same but for immediates, in one part or more. A constant
/// edited in place passes this too; the line table tells it from a move.
pub fn immediates_shifted(parts: &[Part]) -> Option<ImmediateShift> {
    let mut changed = Vec::new();
    for &((old, o), (new, n)) in parts {
        let (a, b) = (old.symbols.get(o)?, new.symbols.get(n)?);
        if a.kind != Kind::Function || b.kind != Kind::Function || a.size != b.size {
            return None;
        }
        let (x, y) = crate::diff::same_references_masked(old, o, new, n)?;
        if x == y {
            continue;
        }
        let instructions = &b.decoded.as_ref()?.instructions;
        if a.decoded.as_ref()?.instructions != *instructions {
            return None;
        }
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
            changed.extend(
                was.iter()
                    .zip(&is)
                    .filter(|(p, q)| p.value != q.value)
                    .map(|(p, q)| (p.value, q.value)),
            );
        }
    }
    (!changed.is_empty()).then_some(ImmediateShift { changed })
}

/// The cold parts of `obj`'s functions (`f.cold`, `f.cold.1`), by the
/// function they belong to.
pub fn cold_parts(obj: &ObjectFile) -> HashMap<&str, Vec<usize>> {
    let mut cold: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, s) in obj.symbols.iter().enumerate().filter(|(_, s)| s.name.contains(".cold")) {
        if let Some(hot) = crate::names::hot_part(&s.name) {
            cold.entry(hot).or_default().push(i);
        }
    }
    cold
}

/// How far the function `old_name` of `old`, `new_name` of `new`, moved
/// when it changed only in line numbers, its cold parts (`cold`: the new
/// object's [`cold_parts`]; the old one's matched by name) included: what
/// `relive diff` says of a changed function, as a reload does.
pub fn function_moved(
    (old, old_name): (&ObjectFile, &str),
    (new, new_name): (&ObjectFile, &str),
    cold: &HashMap<&str, Vec<usize>>,
    rows: &mut RowsOnce,
) -> Option<i64> {
    let function = |obj: &ObjectFile, name: &str| {
        obj.symbols
            .iter()
            .position(|s| s.name == name && s.kind == Kind::Function)
    };
    let mut parts = vec![((old, function(old, old_name)?), (new, function(new, new_name)?))];
    for &i in cold.get(new_name).into_iter().flatten() {
        let part = new.symbols[i].name.strip_prefix(new_name)?;
        parts.push(((old, function(old, &format!("{old_name}{part}"))?), (new, i)));
    }
    let shift = immediates_shifted(&parts)?;
    confirmed_by_lines(&shift, &parts, rows)
}

/// The second half: whether the line tables show the immediates of
/// `shift` to be the function's lines, moved as much as they changed, and
/// if so how far the function's first line moved (positive: down).
///
/// `rows`: each object's line rows, read once for all the functions asked
/// about (a large unit's line table is megabytes; SQLite's functions that
/// log `__LINE__` are hundreds).
pub fn confirmed_by_lines(shift: &ImmediateShift, parts: &[Part], rows: &mut RowsOnce) -> Option<i64> {
    // Each old row's line with how far it moved.
    let mut moved: Vec<(i64, i64)> = Vec::new();
    for &((old, o), (new, n)) in parts {
        let (before, after) = (rows.of(old).of(old, o), rows.of(new).of(new, n));
        if before.len() != after.len() {
            return None;
        }
        for (&(at, file, line), &(at2, file2, line2)) in before.iter().zip(&after) {
            if at != at2 || file != file2 {
                return None;
            }
            let (line, line2) = (i64::try_from(line).ok()?, i64::try_from(line2).ok()?);
            moved.push((line, line2 - line));
        }
    }
    let first = moved.first().map(|&(_, by)| by);
    moved.sort_unstable();
    moved.dedup();
    let all = shift
        .changed
        .iter()
        .all(|&(was, is)| is.checked_sub(was).is_some_and(|by| among_rows(was, by, &moved)));
    // How far the function moved: its first row, or what its lines did.
    let by = first
        .filter(|&d| d != 0)
        .or_else(|| shift.changed.first().map(|&(was, is)| is - was))?;
    all.then_some(by)
}

/// Whether line `v` is among `moved` (`(line, how far it moved)`, sorted)
/// as a line that moved by `by`: a row has it, or it lies between two rows
/// at most [`ROW_GAP`] apart that both moved by `by`.
fn among_rows(v: i64, by: i64, moved: &[(i64, i64)]) -> bool {
    if by == 0 {
        return false;
    }
    let lines_by = |line: i64| moved.iter().filter(move |m| m.0 == line).any(|m| m.1 == by);
    if moved.contains(&(v, by)) {
        return true;
    }
    let after = moved.partition_point(|&(l, _)| l < v);
    let before = after.checked_sub(1).map(|k| moved[k].0);
    match (before, moved.get(after).map(|m| m.0)) {
        (Some(a), Some(b)) => b - a <= ROW_GAP && lines_by(a) && lines_by(b),
        _ => false,
    }
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

    /// A line counts as one that moved by `by` when a row has it and moved
    /// so, or when it lies between two close rows that both did: not past
    /// the last row, nor in a gap as wide as another function, nor beside
    /// rows that moved otherwise.
    #[test]
    fn lines_between_close_rows_moved_with_them() {
        let moved = [(100, 2), (102, 2), (110, 2), (130, 0), (500, 3), (505, 3)];
        assert!(among_rows(102, 2, &moved) && among_rows(105, 2, &moved) && among_rows(503, 3, &moved));
        assert!(!among_rows(105, 3, &moved), "rows around it moved by 2");
        assert!(!among_rows(120, 2, &moved), "between rows that moved otherwise");
        assert!(!among_rows(99, 2, &moved) && !among_rows(300, 2, &moved) && !among_rows(506, 3, &moved));
        assert!(!among_rows(130, 0, &moved), "nothing moved");
        assert!(!among_rows(1, 1, &[]));
    }
}
