//! The line table of a patch's symbol file (see [`crate::debug_file`]).
//!
//! Relocating the object's `.debug_line` is not enough: GCC writes one
//! sequence per code section, its first address relocated and every later
//! row an advance from it, so the rows of a function that is not first in
//! `.text` would land where the section's start lands, not where the
//! function was placed (a breakpoint at FILE:LINE then went into the old
//! code). Here the object's line program is read with every code place
//! given a distinct address ([`code_place`]), and written anew: one
//! sequence per placed function, its rows moved with it, and no rows for
//! code the patch did not place.

use gimli::write::{Address, EndianVec, LineProgram, LineString};
use gimli::{LittleEndian, ReaderOffset};

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

/// Where a placed function's code is: its new start and length, and the
/// new address of a place in it.
pub struct Moved {
    pub start: u64,
    pub len: u64,
    pub address: u64,
}

/// The debug string sections a line program's names may be in.
pub struct Strings<'a> {
    pub line_str: &'a [u8],
    pub str: &'a [u8],
}

/// A `.debug_line` holding the object's line program (`debug_line`, read
/// with code places from [`code_place`]) for the placed code only:
/// `moved(section, offset)` says where a code place went, `None` for code
/// not placed. `None` when the section is not one program (several compile
/// units: their `DW_AT_stmt_list` offsets would no longer hold) or cannot
/// be read.
pub fn placed(debug_line: &[u8], strings: &Strings, moved: &dyn Fn(usize, u64) -> Option<Moved>) -> Option<Vec<u8>> {
    let section = gimli::DebugLine::new(debug_line, LittleEndian);
    let program = section.program(gimli::DebugLineOffset(0), 8, None, None).ok()?;
    let header = program.header().clone();
    let length = header.unit_length().into_u64()
        + if header.format() == gimli::Format::Dwarf64 {
            12
        } else {
            4
        };
    if length != debug_line.len() as u64 {
        return None;
    }
    let bytes = |value: gimli::AttributeValue<gimli::EndianSlice<LittleEndian>>| -> Option<Vec<u8>> {
        let from = |data: &[u8], at: usize| {
            let rest = data.get(at..)?;
            Some(rest[..rest.iter().position(|&b| b == 0)?].to_vec())
        };
        match value {
            gimli::AttributeValue::String(s) => Some(s.slice().to_vec()),
            gimli::AttributeValue::DebugLineStrRef(o) => from(strings.line_str, o.0),
            gimli::AttributeValue::DebugStrRef(o) => from(strings.str, o.0),
            _ => None,
        }
    };
    let encoding = header.encoding();
    // What the writer accepts (x86-64 compilers always give such): every
    // byte is hostile, and the writer asserts on the rest.
    let le = header.line_encoding();
    let sane = (2..=5).contains(&encoding.version)
        && encoding.address_size == 8
        && le.minimum_instruction_length == 1
        && le.maximum_operations_per_instruction == 1
        && le.line_base <= 0
        && (1..=127).contains(&le.line_range)
        && i16::from(le.line_base) + i16::from(le.line_range) > 0;
    if !sane {
        return None;
    }
    let comp_dir = header.directory(0).and_then(&bytes).unwrap_or_default();
    let comp_file = header
        .file(if encoding.version >= 5 { 0 } else { 1 })
        .and_then(|f| bytes(f.path_name()))
        .unwrap_or_default();
    let mut out = LineProgram::new(
        encoding,
        header.line_encoding(),
        LineString::String(comp_dir),
        None,
        LineString::String(comp_file),
        None,
    );
    // The files rows name, by their index in the object's program.
    let mut files = std::collections::HashMap::new();
    let first = if encoding.version >= 5 { 0 } else { 1 };
    for index in first..first + header.file_names().len() as u64 {
        let Some(file) = header.file(index) else { continue };
        let dir_name = header
            .directory(file.directory_index())
            .and_then(&bytes)
            .unwrap_or_default();
        let dir = out.add_directory(LineString::String(dir_name));
        let name = bytes(file.path_name()).unwrap_or_default();
        files.insert(index, out.add_file(LineString::String(name), dir, None));
    }
    // The rows of each placed function, by its new start.
    let mut sequences: std::collections::BTreeMap<u64, (u64, Vec<(u64, gimli::LineRow)>)> = Default::default();
    let mut rows = program.rows();
    while let Ok(Some((_, row))) = rows.next_row() {
        if row.end_sequence() {
            continue;
        }
        let Some(m) = split(row.address()).and_then(|(s, o)| moved(s, o)) else {
            continue;
        };
        sequences
            .entry(m.start)
            .or_insert_with(|| (m.len, Vec::new()))
            .1
            .push((m.address, *row));
    }
    for (start, (len, mut rows)) in sequences {
        rows.sort_by_key(|(address, _)| *address);
        out.begin_sequence(Some(Address::Constant(start)));
        for (address, row) in rows {
            let Some(&file) = files.get(&row.file_index()) else {
                continue;
            };
            let r = out.row();
            r.address_offset = address.saturating_sub(start);
            r.file = file;
            r.line = row.line().map_or(0, |l| l.get());
            r.column = match row.column() {
                gimli::ColumnType::LeftEdge => 0,
                gimli::ColumnType::Column(c) => c.get(),
            };
            r.is_statement = row.is_stmt();
            r.prologue_end = row.prologue_end();
            r.epilogue_begin = row.epilogue_begin();
            r.discriminator = row.discriminator();
            out.generate_row();
        }
        out.end_sequence(len);
    }
    let mut debug_line_out = gimli::write::DebugLine(EndianVec::new(LittleEndian));
    let line_strings = gimli::write::LineStringTable::default();
    let strings_table = gimli::write::StringTable::default();
    let line_str_offsets = line_strings
        .write(&mut gimli::write::DebugLineStr(EndianVec::new(LittleEndian)))
        .ok()?;
    let str_offsets = strings_table
        .write(&mut gimli::write::DebugStr(EndianVec::new(LittleEndian)))
        .ok()?;
    out.write(&mut debug_line_out, encoding, &line_str_offsets, &str_offsets)
        .ok()?;
    Some(debug_line_out.0.into_vec())
}
