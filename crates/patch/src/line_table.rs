//! The line table of a patch's symbol file (see [`crate::debug_file`]).
//!
//! Relocating the object's `.debug_line` is not enough: GCC writes one
//! sequence per code section, its first address relocated and every later
//! row an advance from it, so the rows of a function that is not first in
//! `.text` would land where the section's start lands, not where the
//! function was placed (a breakpoint at FILE:LINE then went into the old
//! code). Here the object's line program is read with every code place
//! given a distinct address ([`code_place`]), and its program written
//! anew after the object's own header (whose file table the rest of the
//! DWARF refers to by index): one sequence per placed function, its rows
//! moved with it, and no rows for code the patch did not place.

use gimli::{LittleEndian, ReaderOffset};

use crate::eh_frame::uleb;

/// Bits of a [`code_place`] address that hold the offset in its section.
const OFFSET_BITS: u32 = 40;

/// The address a code place (section index, offset) is given in the line
/// program read here: distinct for every section, so sections that all
/// start at 0 in the object do not overlap.
pub fn code_place(section: usize, offset: i64) -> u64 {
    ((section as u64 + 1) << OFFSET_BITS) | (offset as u64 & ((1 << OFFSET_BITS) - 1))
}

fn split(address: u64) -> Option<(usize, u64)> {
    let section = (address >> OFFSET_BITS).checked_sub(1)?;
    Some((section as usize, address & ((1 << OFFSET_BITS) - 1)))
}

/// The object's `.debug_line`, relocated with every code place given its
/// [`code_place`] address (and other places in debug sections their
/// offsets).
pub fn with_code_places(obj: &crate::objfile::ObjectFile) -> Vec<u8> {
    let code_places = |section: usize, offset: i64| match obj.section(section) {
        Some(s) if s.executable => Some(code_place(section, offset)),
        Some(s) if !s.loaded => Some(offset as u64),
        _ => None,
    };
    crate::objfile::placed_debug_section(obj.raw(), ".debug_line", &code_places)
}

/// Where a placed function's code is: its new start and length, and the
/// new address of a place in it.
pub struct Moved {
    pub start: u64,
    pub len: u64,
    pub address: u64,
}

/// A `.debug_line` holding the object's line program (`debug_line`, read
/// with code places from [`code_place`]) for the placed code only:
/// `moved(section, offset)` says where a code place went, `None` for code
/// not placed. `None` when the section is not one program (several compile
/// units: their `DW_AT_stmt_list` offsets would no longer hold) or cannot
/// be read.
///
/// `ends` holds, for each section with placed code, where its last placed
/// code ends: the program is read only until a row at or past each of them
/// is seen. Assemblers write one sequence per code section with addresses
/// that only grow, so no row of placed code comes after that; SQLite's
/// line program is a megabyte for one function's few rows, and reading it
/// whole was most of a patch's symbol file.
pub fn placed(
    debug_line: &[u8],
    moved: &dyn Fn(usize, u64) -> Option<Moved>,
    ends: &[(usize, u64)],
) -> Option<Vec<u8>> {
    let section = gimli::DebugLine::new(debug_line, LittleEndian);
    let program = section.program(gimli::DebugLineOffset(0), 8, None, None).ok()?;
    let header = program.header().clone();
    let length = program_len(&header);
    // One program, and addresses that advance byte by byte (the opcodes
    // written below assume both; x86-64 compilers give them).
    let le = header.line_encoding();
    if length != debug_line.len() as u64
        || le.minimum_instruction_length != 1
        || le.maximum_operations_per_instruction != 1
    {
        return None;
    }
    // The rows of each placed function, by its new start.
    let mut sequences: std::collections::BTreeMap<u64, (u64, Vec<(u64, gimli::LineRow)>)> = Default::default();
    let mut rows = program.rows();
    // Per section with placed code: where it ends, and whether a row past
    // that was seen.
    let mut passed: Vec<(usize, u64, bool)> = ends.iter().map(|&(s, end)| (s, end, false)).collect();
    let mut left = passed.len();
    while let Ok(Some((_, row))) = rows.next_row() {
        let place = split(row.address());
        if let Some((s, o)) = place {
            for (section, end, seen) in passed.iter_mut() {
                if !*seen && *section == s && o >= *end {
                    *seen = true;
                    left -= 1;
                }
            }
        }
        let m = match row.end_sequence() {
            true => None,
            false => place.and_then(|(s, o)| moved(s, o)),
        };
        let Some(m) = m else {
            if left == 0 && !passed.is_empty() {
                break;
            }
            continue;
        };
        sequences
            .entry(m.start)
            .or_insert_with(|| (m.len, Vec::new()))
            .1
            .push((m.address, *row));
    }
    // The object's header as it is (its file and directory tables keep
    // the indices the DWARF refers to), then a program of its own.
    let program_len = header.raw_program_buf().len();
    let header_start = if header.format() == gimli::Format::Dwarf64 {
        12
    } else {
        4
    };
    let header_bytes = debug_line.get(header_start..debug_line.len().checked_sub(program_len)?)?;
    let mut ops = Vec::new();
    for (start, (len, mut rows)) in sequences {
        rows.sort_by_key(|(address, _)| *address);
        // DW_LNE_set_address
        ops.extend([0, 9, 2]);
        ops.extend_from_slice(&start.to_le_bytes());
        let mut state = Registers {
            address: start,
            file: 1,
            line: 1,
            column: 0,
            is_stmt: header.line_encoding().default_is_stmt,
        };
        for (address, row) in rows {
            let column = match row.column() {
                gimli::ColumnType::LeftEdge => 0,
                gimli::ColumnType::Column(c) => c.get(),
            };
            state.emit(
                &mut ops,
                address,
                row.file_index(),
                row.line().map_or(0, |l| l.get()),
                column,
                row.is_stmt(),
            );
            if row.discriminator() != 0 {
                // DW_LNE_set_discriminator
                let mut d = Vec::new();
                uleb(&mut d, row.discriminator());
                ops.push(0);
                uleb(&mut ops, 1 + d.len() as u64);
                ops.push(4);
                ops.extend(d);
            }
            if row.prologue_end() {
                ops.push(0x0a); // DW_LNS_set_prologue_end
            }
            ops.push(0x01); // DW_LNS_copy
        }
        // To the end of the function, and DW_LNE_end_sequence.
        ops.push(0x02);
        uleb(&mut ops, (start + len).saturating_sub(state.address));
        ops.extend([0, 1, 1]);
    }
    let mut out = Vec::with_capacity(header_start + header_bytes.len() + ops.len());
    let unit_length = (header_bytes.len() + ops.len()) as u64;
    if header_start == 12 {
        out.extend_from_slice(&u32::MAX.to_le_bytes());
        out.extend_from_slice(&unit_length.to_le_bytes());
    } else {
        out.extend_from_slice(&u32::try_from(unit_length).ok()?.to_le_bytes());
    }
    out.extend_from_slice(header_bytes);
    out.extend(ops);
    Some(out)
}

/// The line-number state machine's registers a row sets.
struct Registers {
    address: u64,
    file: u64,
    line: u64,
    column: u64,
    is_stmt: bool,
}

impl Registers {
    /// The standard opcodes that move the registers to a row's values
    /// (the caller then appends the row with `DW_LNS_copy`).
    fn emit(&mut self, ops: &mut Vec<u8>, address: u64, file: u64, line: u64, column: u64, is_stmt: bool) {
        if address != self.address {
            ops.push(0x02); // DW_LNS_advance_pc
            uleb(ops, address - self.address);
            self.address = address;
        }
        if file != self.file {
            ops.push(0x04); // DW_LNS_set_file
            uleb(ops, file);
            self.file = file;
        }
        if line != self.line {
            ops.push(0x03); // DW_LNS_advance_line
            sleb(ops, line as i64 - self.line as i64);
            self.line = line;
        }
        if column != self.column {
            ops.push(0x05); // DW_LNS_set_column
            uleb(ops, column);
            self.column = column;
        }
        if is_stmt != self.is_stmt {
            ops.push(0x06); // DW_LNS_negate_stmt
            self.is_stmt = is_stmt;
        }
    }
}

fn sleb(out: &mut Vec<u8>, mut v: i64) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        let done = (v == 0 && byte & 0x40 == 0) || (v == -1 && byte & 0x40 != 0);
        out.push(if done { byte } else { byte | 0x80 });
        if done {
            return;
        }
    }
}

/// Bytes of the line program whose header is `header`, its length field
/// included.
fn program_len<R: gimli::Reader>(header: &gimli::LineProgramHeader<R>) -> u64 {
    header.unit_length().into_u64()
        + if header.format() == gimli::Format::Dwarf64 {
            12
        } else {
            4
        }
}

/// Calls `each` with every row of the object's line table but the ends of
/// sequences, its address a [`code_place`] (nothing when it has no
/// readable line table).
fn each_row(obj: &crate::objfile::ObjectFile, mut each: impl FnMut(&gimli::LineRow)) {
    let debug_line = with_code_places(obj);
    let section = gimli::DebugLine::new(debug_line.as_slice(), LittleEndian);
    let mut offset = 0usize;
    // Each program of the section in turn.
    while offset < debug_line.len() {
        let Ok(program) = section.program(gimli::DebugLineOffset(offset), 8, None, None) else {
            break;
        };
        let length = program_len(program.header()) as usize;
        let mut rows = program.rows();
        while let Ok(Some((_, row))) = rows.next_row() {
            if !row.end_sequence() {
                each(row);
            }
        }
        offset += length.max(1);
    }
}

/// The places (section, offset) of the object's code where its line table
/// starts a statement: where a debugger puts a `break FILE:LINE`. Sorted;
/// empty when the object has no readable line table.
pub fn statements(obj: &crate::objfile::ObjectFile) -> Vec<(usize, u64)> {
    let mut found = Vec::new();
    each_row(obj, |row| {
        if row.is_stmt() {
            found.extend(split(row.address()));
        }
    });
    found.sort_unstable();
    found.dedup();
    found
}

/// A function's code: `(section, start, end)`.
pub(crate) type Span = (usize, u64, u64);

/// Whether place `at` of section `section` lies in one of `spans`
/// (functions' code, sorted). Functions do not overlap (aliases share one
/// span): the span with the nearest start at or before the place is the
/// only one that may hold it, found by a search (a large unit's every
/// line row or DWARF relocation asks, of a hundred functions).
pub(crate) fn in_spans(spans: &[Span], section: usize, at: u64) -> bool {
    let upto = spans.partition_point(|&(s, start, _)| (s, start) <= (section, at));
    let Some(&(s, start, _)) = upto.checked_sub(1).map(|k| &spans[k]) else {
        return false;
    };
    spans[..upto]
        .iter()
        .rev()
        .take_while(|&&(sec, from, _)| (sec, from) == (s, start))
        .any(|&(sec, _, end)| sec == section && at < end)
}

/// The line rows of the objects asked about, each read once and only if
/// asked (a large unit's line table is megabytes; SQLite's functions that
/// log `__LINE__` are hundreds): what a patch's and `relive diff`'s
/// line-number checks share.
#[derive(Default)]
pub struct RowsOnce {
    read: Vec<(*const crate::objfile::ObjectFile, std::rc::Rc<LineRows>)>,
    /// With [`RowsOnce::only`]: per object, the spans `(section, start,
    /// end)` of the functions that will be asked about, sorted; the rows
    /// of other code are not kept.
    only: Option<Vec<(*const crate::objfile::ObjectFile, Vec<Span>)>>,
}

impl RowsOnce {
    /// Rows that will be asked about only for the functions `wanted`
    /// (`(object, symbol)`): keeping every row of a large unit (SQLite's
    /// hundreds of thousands, sorted) was most of a 98-function patch's
    /// line-number check.
    pub fn only(wanted: &[(&crate::objfile::ObjectFile, usize)]) -> RowsOnce {
        let mut only: Vec<(*const crate::objfile::ObjectFile, Vec<Span>)> = Vec::new();
        for &(obj, symbol) in wanted {
            let Some(s) = obj.symbols.get(symbol) else {
                continue;
            };
            let span = (s.section, s.offset, s.offset.saturating_add(s.size));
            match only.iter_mut().find(|(k, _)| std::ptr::eq(*k, obj)) {
                Some((_, spans)) => spans.push(span),
                None => only.push((obj, vec![span])),
            }
        }
        for (_, spans) in &mut only {
            spans.sort_unstable();
        }
        RowsOnce {
            read: Vec::new(),
            only: Some(only),
        }
    }

    /// `obj`'s rows, read the first time it is asked about.
    pub fn of(&mut self, obj: &crate::objfile::ObjectFile) -> std::rc::Rc<LineRows> {
        if let Some((_, rows)) = self.read.iter().find(|(k, _)| std::ptr::eq(*k, obj)) {
            return rows.clone();
        }
        let rows = std::rc::Rc::new(match &self.only {
            None => LineRows::read(obj, None),
            Some(only) => {
                let spans = only
                    .iter()
                    .find(|(k, _)| std::ptr::eq(*k, obj))
                    .map(|(_, s)| s.as_slice());
                LineRows::read(obj, Some(spans.unwrap_or_default()))
            }
        });
        self.read.push((obj, rows.clone()));
        rows
    }
}

/// Every row of an object's line table in its code, read once, for the
/// rows of any of its functions ([`LineRows::of`]).
pub struct LineRows {
    /// `(section, offset, file index, line)`, by place (rows of one place
    /// in the line program's order).
    rows: Vec<(usize, u64, u64, u64)>,
}

impl LineRows {
    /// The rows of `obj`'s line table (none when it has no readable one);
    /// with `within` (sorted `(section, start, end)` spans), only those in
    /// one of them.
    pub fn read(obj: &crate::objfile::ObjectFile, within: Option<&[Span]>) -> LineRows {
        let mut rows = Vec::new();
        let kept = |section: usize, at: u64| within.is_none_or(|spans| in_spans(spans, section, at));
        each_row(obj, |row| {
            if let Some((section, at)) = split(row.address()).filter(|&(s, at)| kept(s, at)) {
                rows.push((section, at, row.file_index(), row.line().map_or(0, |l| l.get())));
            }
        });
        rows.sort_by_key(|&(section, at, _, _)| (section, at));
        LineRows { rows }
    }

    /// The rows in the code of function `symbol` of the object read:
    /// `(offset from its start, file index, line)`.
    pub fn of(&self, obj: &crate::objfile::ObjectFile, symbol: usize) -> Vec<(u64, u64, u64)> {
        let Some(s) = obj.symbols.get(symbol) else {
            return Vec::new();
        };
        let first = self
            .rows
            .partition_point(|&(section, at, _, _)| (section, at) < (s.section, s.offset));
        self.rows[first..]
            .iter()
            .take_while(|&&(section, at, _, _)| section == s.section && at < s.offset + s.size)
            .map(|&(_, at, file, line)| (at - s.offset, file, line))
            .collect()
    }
}

/// The offsets from its start, other than 0, at which the function
/// `symbol` of `obj` starts a statement (from [`statements`]).
pub fn statement_offsets(obj: &crate::objfile::ObjectFile, statements: &[(usize, u64)], symbol: usize) -> Vec<u64> {
    let Some(s) = obj.symbols.get(symbol) else {
        return Vec::new();
    };
    let first = statements.partition_point(|&p| p <= (s.section, s.offset));
    statements[first..]
        .iter()
        .take_while(|&&(section, offset)| section == s.section && offset < s.offset + s.size)
        .map(|&(_, offset)| offset - s.offset)
        .collect()
}
