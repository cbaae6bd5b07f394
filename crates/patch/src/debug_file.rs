//! A symbol file for debuggers, one per patch: where its functions are,
//! their names, source lines and variables (the object's DWARF with its
//! addresses moved to where the code landed), and its unwind table. gdb
//! loads it with `add-symbol-file` (`relive gdb PID` does that for every
//! patch in force), then stops at FILE:LINE in new code, shows it in `bt`
//! with its line, and unwinds through it to the old callers. Without it,
//! gdb shows `??` for new code and cannot unwind past it.
//!
//! The file is an `ET_EXEC` ELF with section headers only: `.text` (no
//! bytes: gdb reads code from the process) at the patch's code, `.eh_frame`
//! at its table, the `.debug_*` sections, a `.debug_aranges` built for the
//! placed functions (the object's ranges describe its own layout, which
//! the patch does not keep), and a symbol table.

use object::elf;
use object::endian::{LittleEndian as LE, U16, U32, U64};
use object::pod::bytes_of;

use crate::link::{Layout, Linked, Part, Value};
use crate::objfile::ObjectFile;
use crate::target::Target;

/// The state-directory file name of the symbol file of unit `unit` of
/// change `change` of process `pid` started at `start_time`.
pub fn file_name(pid: u32, start_time: u64, change: u64, unit: usize) -> String {
    format!("{pid}-{start_time}.{change}-{unit}.sym")
}

/// The symbol files a debugger must be given to see the new code: those
/// in force ([`in_force`]) that are not on the GDB JIT interface's list (which gdb reads
/// by itself when it attaches; a second copy would double every symbol)
/// and whose code was not superseded, and how many in force are on it.
pub fn not_listed(target: &Target) -> (Vec<std::path::PathBuf>, usize) {
    // Each descriptor's list read once (a process patched hundreds of
    // times has hundreds of entries on it).
    let mut on_lists: foldhash::HashMap<u64, foldhash::HashSet<u64>> = foldhash::HashMap::default();
    let listed: foldhash::HashSet<u64> = target
        .journal
        .regions
        .iter()
        .flat_map(|r| &r.debug_images)
        .flat_map(|images| {
            let on_list = on_lists
                .entry(images.descriptor)
                .or_insert_with(|| crate::debugger::listed_entries(target.process, images.descriptor));
            images
                .entries
                .iter()
                .filter(|e| on_list.contains(&e.entry))
                .map(|e| e.code)
                .collect::<Vec<u64>>()
        })
        .collect();
    let (on_list, given): (Vec<_>, Vec<_>) = in_force(target)
        .into_iter()
        .partition(|(code, _)| listed.contains(code));
    // Not those `debugger::keep_to_live` took off the list (superseded
    // code no thread was in): gdb would stop in it too. Those never
    // listed (no list in the process) are all given: a thread may still
    // run superseded code, and nothing looked.
    let recorded: foldhash::HashSet<u64> = target
        .journal
        .regions
        .iter()
        .flat_map(|r| &r.debug_images)
        .flat_map(|images| images.entries.iter().map(|e| e.code))
        .collect();
    let superseded = |code: u64| target.journal.in_live_block(code) == Some(false);
    let given = given
        .into_iter()
        .filter(|(code, _)| !(recorded.contains(code) && superseded(*code)));
    (given.map(|(_, path)| path).collect(), on_list.len())
}

/// The symbol files of the patches whose code is still mapped in the
/// process (those whose code lies in one of its pools), each with the
/// address of its code. The others (their pool freed by a revert) are
/// removed, but not one of a change the journal as read does not know
/// yet: a command that reads it (`relive gdb`, `threads`) while another
/// patches may have read it just before that patch's pool was recorded,
/// and removed the symbol file written just after.
fn in_force(target: &Target) -> Vec<(u64, std::path::PathBuf)> {
    let dir = &target.journal_dir;
    let mut files: Vec<(u64, std::path::PathBuf)> = Vec::new();
    for file in symbol_files(dir, target.process.pid(), target.journal.start_time) {
        let code = file.text.map(|(start, _)| start);
        match code.filter(|&a| target.journal.regions.iter().any(|r| r.contains(a))) {
            Some(a) => files.push((a, file.path)),
            None if file.change.is_some_and(|c| c <= target.journal.changes) => {
                let _ = dir.remove(&file.name);
            }
            None => {}
        }
    }
    files.sort();
    files
}

/// Of the patches `target` still has, those whose code (as their newest
/// change's symbol files show it) has any of `reverted` (symbols)
/// inlined, each with those: the edit of a function reverted alone still
/// runs there (a curl trial: `revert is_dot` said "reverted is_dot",
/// while the patched `parseurl_and_replace` ran the edited `is_dot`
/// inlined, and the output did not change). Nothing without symbol files
/// (objects without `-g`).
///
/// Only patches whose code is from change `since` or later can have the
/// reverted edits inlined (they were made no earlier): a long session's
/// earlier changes' files are not read.
pub fn inlined_in_remaining(target: &Target, reverted: &[String], since: u64) -> Vec<(String, Vec<String>)> {
    if reverted.is_empty() || target.journal.patches.is_empty() {
        return Vec::new();
    }
    // The remaining patches by the change their code is from.
    let mut by_change: std::collections::BTreeMap<u64, Vec<String>> = Default::default();
    for p in &target.journal.patches {
        if let Some(g) = p
            .history
            .last()
            .filter(|g| !reverted.contains(&p.name) && g.change >= since)
        {
            by_change.entry(g.change).or_default().push(p.name.clone());
        }
    }
    let files = symbol_files(&target.journal_dir, target.process.pid(), target.journal.start_time);
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for (change, hosts) in by_change {
        for file in files.iter().filter(|f| f.change == Some(change)) {
            let Ok(bytes) = std::fs::read(&file.path) else { continue };
            for (host, inlined) in crate::inline_only::patched_inlined_in_image(&bytes, &hosts, reverted) {
                crate::inline_only::add_inlined(&mut out, host, inlined);
            }
        }
    }
    out
}

/// One patch's symbol file in the state directory.
struct SymbolFile {
    name: String,
    path: std::path::PathBuf,
    /// The change that made it (from its name: `PID-START.CHANGE-UNIT.sym`).
    change: Option<u64>,
    /// Its `.text` range, the patch's code (`None`: its headers do not
    /// read as one).
    text: Option<(u64, u64)>,
}

/// The symbol files in `dir` of process `pid` started at `start_time`
/// that can be opened, their `.text` read from the headers alone: a
/// process patched a thousand times has a thousand files, of up to
/// hundreds of KB each.
fn symbol_files(dir: &crate::state::StateDir, pid: u32, start_time: u64) -> Vec<SymbolFile> {
    use object::{Object, ObjectSection};
    let prefix = format!("{pid}-{start_time}.");
    let Ok(entries) = std::fs::read_dir(dir.path()) else {
        return Vec::new();
    };
    let mut files = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(rest) = name.strip_prefix(&prefix).and_then(|rest| rest.strip_suffix(".sym")) else {
            continue;
        };
        let Ok(Some(file)) = dir.open_private(name) else {
            continue;
        };
        let cache = object::ReadCache::new(&file);
        let text = object::File::parse(&cache).ok().and_then(|f| {
            f.section_by_name(".text")
                .map(|t| (t.address(), t.address() + t.size()))
        });
        files.push(SymbolFile {
            name: name.to_string(),
            path: entry.path(),
            change: rest.split('-').next().and_then(|c| c.parse().ok()),
            text,
        });
    }
    files
}

/// The code of the patches of one process, named from their symbol files
/// (which list each placed function with its size): what `relive threads`
/// says of a thread in patched code, which no module of the process
/// covers.
pub struct PatchedCode {
    /// Each file's `.text` range, its path and the change that made it.
    files: Vec<(u64, u64, std::path::PathBuf, u64)>,
}

impl PatchedCode {
    /// The symbol files in `dir` of process `pid` started at `start_time`
    /// (headers only; their symbols are read when asked).
    pub fn load(dir: &crate::state::StateDir, pid: u32, start_time: u64) -> PatchedCode {
        let files = symbol_files(dir, pid, start_time)
            .into_iter()
            .filter_map(|f| {
                let (start, end) = f.text?;
                Some((start, end, f.path, f.change?))
            })
            .collect();
        PatchedCode { files }
    }

    /// The patched function `addr` is in, as `name+0xOFFSET (patch code,
    /// change N)`; `None` where no symbol file covers it.
    pub fn describe(&self, addr: u64) -> Option<String> {
        use object::{Object, ObjectSymbol};
        // The newest change first: a pool's memory is never reused while
        // recorded, so at most one file covers a live address.
        let (_, _, path, change) = self
            .files
            .iter()
            .filter(|(start, end, ..)| (*start..*end).contains(&addr))
            .max_by_key(|f| f.3)?;
        let bytes = std::fs::read(path).ok()?;
        let file = object::File::parse(&*bytes).ok()?;
        let symbol = file
            .symbols()
            .find(|s| (s.address()..s.address() + s.size().max(1)).contains(&addr))?;
        let name = crate::names::readable(symbol.name().ok()?);
        Some(match addr - symbol.address() {
            0 => format!("{name} (patch code, change {change})"),
            offset => format!("{name}+{offset:#x} (patch code, change {change})"),
        })
    }
}

/// Removes the symbol files of patches whose pool is gone (a revert or a
/// reclaim freed it), as [`in_force`] does.
pub fn remove_unmapped(target: &Target) {
    in_force(target);
}

/// What the symbol file of one patch is made from.
pub struct Placed<'a> {
    pub obj: &'a ObjectFile,
    pub linked: &'a Linked,
    pub layout: &'a Layout,
    /// The read-only part as written into the process (the unwind table is
    /// in it, relocated).
    pub read_only: &'a [u8],
    /// The live address of a data symbol of the object the patch did not
    /// copy (the program's variable), if known.
    pub data_address: &'a dyn Fn(usize) -> Option<u64>,
}

impl Placed<'_> {
    /// Where place `offset` of the object's section `section` is in the
    /// process: code by the function that covers it (0 for code the patch
    /// did not place), data by the copy or the program's variable, and a
    /// debug section's place as itself (DWARF refers across its sections
    /// by offset).
    fn address(
        &self,
        section: usize,
        offset: i64,
        data: &std::cell::RefCell<foldhash::HashMap<usize, Option<u64>>>,
    ) -> Option<u64> {
        let sec = self.obj.section(section)?;
        if !sec.loaded {
            return Some(offset as u64);
        }
        let Some((i, within)) = self.obj.symbol_at(section, offset) else {
            return Some(0);
        };
        if let Some(f) = self.linked.functions.iter().find(|f| f.symbol == i) {
            return Some(self.layout.code + f.offset + within);
        }
        if sec.executable {
            return Some(0);
        }
        let base = *data.borrow_mut().entry(i).or_insert_with(|| {
            match self.linked.data.iter().find(|d| d.symbol == Some(i)) {
                Some(d) => Some(self.linked.address(self.layout, d.value)),
                None => (self.data_address)(i),
            }
        });
        Some(base.map_or(0, |b| b + within))
    }
}

/// The symbol file's bytes.
pub fn write(p: &Placed) -> Vec<u8> {
    let mut sections: Vec<Section> = Vec::new();
    let code_len = p.linked.code.len() as u64;
    sections.push(Section {
        name: ".text".into(),
        kind: elf::SHT_NOBITS,
        flags: elf::SectionFlags(elf::SHF_ALLOC.0 | elf::SHF_EXECINSTR.0),
        addr: p.layout.code,
        bytes: Vec::new(),
        placed: false,
        size: code_len,
        link: 0,
        info: 0,
        entsize: 0,
        align: 16,
    });
    if let Some(u) = p.linked.unwind {
        let start = u.eh_frame as usize;
        let table = p.read_only.get(start..).unwrap_or_default();
        // The table proper (up to its terminator), without the exception
        // tables after it.
        let len = crate::eh_frame::entries(table)
            .ok()
            .and_then(|e| e.last().map(|last| last.end + 4))
            .unwrap_or(0)
            .min(table.len());
        sections.push(Section {
            name: ".eh_frame".into(),
            kind: elf::SHT_PROGBITS,
            flags: elf::SHF_ALLOC,
            addr: p.linked.address(p.layout, Value::Region(Part::ReadOnly, u.eh_frame)),
            bytes: table[..len].to_vec(),
            placed: false,
            size: len as u64,
            link: 0,
            info: 0,
            entsize: 0,
            align: 8,
        });
    }
    let frames: Vec<crate::eh_frame::ThunkFrame> = p.linked.thunk_frames.iter().map(|(_, t)| *t).collect();
    let thunks = crate::eh_frame::thunk_debug_frame(&frames, p.layout.code);
    if !thunks.is_empty() {
        sections.push(Section::debug(".debug_frame", thunks));
    }
    // Not the macro tables relive's compiles carry (see
    // `crate::debug_macros`): a debugger needs none of them, and GCC
    // writes one section per header under one name, which the object
    // keeps one of.
    let mut names: Vec<&str> = p
        .obj
        .debug_section_names()
        .filter(|n| !matches!(*n, ".debug_aranges" | ".debug_macro" | ".debug_macinfo"))
        .collect();
    names.sort_unstable();
    // Data addresses by symbol, each looked up once.
    let data = std::cell::RefCell::new(foldhash::HashMap::default());
    // Most of a large unit's code is not in the patch, and its DWARF names
    // every block and inlined call of it: a place in code that no placed
    // function covers is 0 without looking for its symbol.
    // Sorted, and searched: a patch of a hundred functions was asked
    // about by each of a large unit's hundreds of thousands of DWARF
    // relocations, and a walk over all of them for each was a tenth of
    // its time (SQLite, one line added at the top: 98 functions).
    let mut placed_code: Vec<crate::line_table::Span> = p
        .linked
        .functions
        .iter()
        .filter_map(|f| p.obj.symbols.get(f.symbol))
        .map(|s| (s.section, s.offset, s.offset.saturating_add(s.size.max(1))))
        .collect();
    placed_code.sort_unstable();
    let place = |section: usize, offset: i64| {
        let code = p.obj.section(section).is_some_and(|s| s.executable);
        let placed = || u64::try_from(offset).is_ok_and(|at| crate::line_table::in_spans(&placed_code, section, at));
        match code && !placed() {
            true => Some(0),
            false => p.address(section, offset, &data),
        }
    };
    for name in names {
        match name {
            ".debug_line" => match line_table(p) {
                Some(bytes) => sections.push(Section::debug(name, bytes)),
                None => sections.push(Section::placed(name, p.obj)),
            },
            _ => sections.push(Section::placed(name, p.obj)),
        }
    }
    if p.obj.has_debug_info() {
        sections.push(Section::debug(".debug_aranges", aranges(p)));
    }
    let (symtab, strtab) = symbols(p);
    let symbol_count = symtab.len() / std::mem::size_of::<elf::Sym64<LE>>();
    sections.push(Section {
        name: ".symtab".into(),
        kind: elf::SHT_SYMTAB,
        flags: elf::SectionFlags(0),
        addr: 0,
        size: symtab.len() as u64,
        bytes: symtab,
        placed: false,
        // The string table follows it.
        link: (sections.len() + 2) as u32,
        // One local symbol: the null one.
        info: 1,
        entsize: std::mem::size_of::<elf::Sym64<LE>>() as u64,
        align: 8,
    });
    debug_assert!(symbol_count >= 1);
    sections.push(Section {
        name: ".strtab".into(),
        kind: elf::SHT_STRTAB,
        flags: elf::SectionFlags(0),
        addr: 0,
        size: strtab.len() as u64,
        bytes: strtab,
        placed: false,
        link: 0,
        info: 0,
        entsize: 0,
        align: 1,
    });
    let place_into = |name: &str, out: &mut Vec<u8>| {
        crate::objfile::place_debug_section_into(p.obj.raw(), name, &place, out);
    };
    layout_file(sections, &place_into)
}

struct Section {
    name: String,
    kind: elf::SectionType,
    flags: elf::SectionFlags,
    addr: u64,
    bytes: Vec<u8>,
    /// The object's debug section of this name, placed (see
    /// [`crate::objfile::place_debug_section_into`]), is written straight
    /// into the file in place of `bytes`.
    placed: bool,
    size: u64,
    link: u32,
    info: u32,
    entsize: u64,
    align: u64,
}

impl Section {
    fn debug(name: &str, bytes: Vec<u8>) -> Section {
        Section {
            name: name.to_string(),
            kind: elf::SHT_PROGBITS,
            flags: elf::SectionFlags(0),
            addr: 0,
            size: bytes.len() as u64,
            bytes,
            placed: false,
            link: 0,
            info: 0,
            entsize: 0,
            align: 1,
        }
    }

    /// Debug section `name` of `obj`, placed when the file is laid out.
    fn placed(name: &str, obj: &ObjectFile) -> Section {
        Section {
            size: obj.debug_section_len(name) as u64,
            placed: true,
            ..Section::debug(name, Vec::new())
        }
    }
}

/// The line table of the placed code (see [`crate::line_table`]).
fn line_table(p: &Placed) -> Option<Vec<u8>> {
    let obj = p.obj;
    let debug_line = crate::line_table::with_code_places(obj);
    // Where each placed function was in the object, sorted: asked for
    // every row of the object's line program (thousands of functions'
    // rows for the few placed), so the placed functions are searched, not
    // every symbol.
    let mut spans: Vec<(usize, u64, u64, u64, u64)> = p
        .linked
        .functions
        .iter()
        .filter_map(|f| {
            let sym = obj.symbols.get(f.symbol)?;
            let start = p.layout.code + f.offset;
            let end = sym.offset.saturating_add(sym.size.max(1));
            Some((sym.section, sym.offset, end, start, f.size.max(1)))
        })
        .collect();
    spans.sort_unstable();
    let mut ends: Vec<(usize, u64)> = Vec::new();
    for &(section, _, end, ..) in &spans {
        match ends.iter_mut().find(|(s, _)| *s == section) {
            Some((_, e)) => *e = (*e).max(end),
            None => ends.push((section, end)),
        }
    }
    let moved = |section: usize, offset: u64| {
        let k = spans.partition_point(|&(s, from, ..)| (s, from) <= (section, offset));
        let &(s, from, to, start, len) = spans.get(k.checked_sub(1)?)?;
        (s == section && offset < to).then(|| crate::line_table::Moved {
            start,
            len,
            address: start + (offset - from),
        })
    };
    crate::line_table::placed(&debug_line, &moved, &ends)
}

/// A `.debug_aranges` for the first compile unit: the placed functions'
/// address ranges, so the debugger finds their unit by address.
fn aranges(p: &Placed) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&0u32.to_le_bytes()); // unit_length, set below
    out.extend_from_slice(&2u16.to_le_bytes()); // version
    out.extend_from_slice(&0u32.to_le_bytes()); // debug_info_offset
    out.push(8); // address_size
    out.push(0); // segment_selector_size
    out.resize(16, 0); // tuples start at a multiple of twice the address size
    for f in &p.linked.functions {
        out.extend_from_slice(&(p.layout.code + f.offset).to_le_bytes());
        out.extend_from_slice(&f.size.max(1).to_le_bytes());
    }
    out.extend_from_slice(&[0; 16]);
    let unit_length = (out.len() - 4) as u32;
    out[..4].copy_from_slice(&unit_length.to_le_bytes());
    out
}

/// The symbol table (the null symbol, then one per placed function and
/// one per thunk, `NAME.relive_thunk`, as compilers name a function's
/// parts) and its string table.
fn symbols(p: &Placed) -> (Vec<u8>, Vec<u8>) {
    let mut symtab = bytes_of(&empty_symbol()).to_vec();
    let mut strtab = vec![0u8];
    let functions = p.linked.functions.iter().map(|f| (f.name.clone(), f.offset, f.size));
    let thunks = p
        .linked
        .thunk_frames
        .iter()
        .map(|(name, t)| (format!("{name}.relive_thunk"), t.offset, t.len));
    for (symbol, offset, size) in functions.chain(thunks) {
        let name = strtab.len() as u32;
        strtab.extend_from_slice(symbol.as_bytes());
        strtab.push(0);
        let sym = elf::Sym64::<LE> {
            st_name: U32::new(LE, name),
            st_info: elf::SymbolInfo::new(elf::STB_GLOBAL, elf::STT_FUNC),
            st_other: elf::STV_DEFAULT.into(),
            // `.text`, the first section after the null one.
            st_shndx: U16::new(LE, elf::SymbolSection(1)),
            st_value: U64::new(LE, p.layout.code + offset),
            st_size: U64::new(LE, size),
        };
        symtab.extend_from_slice(bytes_of(&sym));
    }
    (symtab, strtab)
}

fn empty_symbol() -> elf::Sym64<LE> {
    elf::Sym64::<LE> {
        st_name: U32::new(LE, 0),
        st_info: elf::SymbolInfo(0),
        st_other: elf::SymbolOther(0),
        st_shndx: U16::new(LE, elf::SHN_UNDEF),
        st_value: U64::new(LE, 0),
        st_size: U64::new(LE, 0),
    }
}

/// The file: its header, the sections' bytes, the section name table,
/// and the section headers.
fn layout_file(mut sections: Vec<Section>, place_into: &dyn Fn(&str, &mut Vec<u8>)) -> Vec<u8> {
    let mut shstrtab = vec![0u8];
    let mut name_offsets = Vec::with_capacity(sections.len() + 1);
    for s in &sections {
        name_offsets.push(shstrtab.len() as u32);
        shstrtab.extend_from_slice(s.name.as_bytes());
        shstrtab.push(0);
    }
    name_offsets.push(shstrtab.len() as u32);
    shstrtab.extend_from_slice(b".shstrtab\0");
    sections.push(Section {
        name: ".shstrtab".into(),
        kind: elf::SHT_STRTAB,
        flags: elf::SectionFlags(0),
        addr: 0,
        size: shstrtab.len() as u64,
        bytes: shstrtab,
        placed: false,
        link: 0,
        info: 0,
        entsize: 0,
        align: 1,
    });
    let header_size = std::mem::size_of::<elf::FileHeader64<LE>>();
    // Sized once: a large unit's file is megabytes, and growing it copied
    // them over and over.
    let headers_len = (sections.len() + 1) * std::mem::size_of::<elf::SectionHeader64<LE>>();
    let capacity = header_size
        + sections
            .iter()
            .map(|s| s.bytes.len().max(s.size as usize) + s.align as usize)
            .sum::<usize>()
        + 8
        + headers_len;
    let mut out = Vec::with_capacity(capacity);
    out.resize(header_size, 0);
    let mut offsets = Vec::with_capacity(sections.len());
    for s in &mut sections {
        let at = out.len().next_multiple_of(s.align.max(1) as usize);
        out.resize(at, 0);
        offsets.push(at as u64);
        if s.placed {
            place_into(&s.name, &mut out);
            // As written (none, should the object not read).
            s.size = (out.len() - at) as u64;
        } else {
            out.extend_from_slice(&s.bytes);
        }
    }
    let headers_at = out.len().next_multiple_of(8);
    out.resize(headers_at, 0);
    let null_header = section_header(0, elf::SHT_NULL, elf::SectionFlags(0), 0, 0, 0, 0, 0, 0, 0);
    out.extend_from_slice(bytes_of(&null_header));
    for ((s, &offset), &name) in sections.iter().zip(&offsets).zip(&name_offsets) {
        let header = section_header(
            name, s.kind, s.flags, s.addr, offset, s.size, s.link, s.info, s.align, s.entsize,
        );
        out.extend_from_slice(bytes_of(&header));
    }
    let header = elf::FileHeader64::<LE> {
        e_ident: elf::Ident {
            magic: elf::ELFMAG,
            class: elf::ELFCLASS64,
            data: elf::ELFDATA2LSB,
            version: elf::EV_CURRENT,
            os_abi: elf::ELFOSABI_NONE,
            abi_version: 0,
            padding: [0; 7],
        },
        e_type: U16::new(LE, elf::ET_EXEC),
        e_machine: U16::new(LE, elf::EM_X86_64),
        e_version: U32::new(LE, u32::from(elf::EV_CURRENT.0)),
        e_entry: U64::new(LE, 0),
        e_phoff: U64::new(LE, 0),
        e_shoff: U64::new(LE, headers_at as u64),
        e_flags: U32::new(LE, elf::FileFlags(0)),
        e_ehsize: U16::new(LE, header_size as u16),
        e_phentsize: U16::new(LE, 0),
        e_phnum: U16::new(LE, 0),
        e_shentsize: U16::new(LE, std::mem::size_of::<elf::SectionHeader64<LE>>() as u16),
        e_shnum: U16::new(LE, sections.len() as u16 + 1),
        // `.shstrtab` is the last section.
        e_shstrndx: U16::new(LE, elf::SymbolSection(sections.len() as u16)),
    };
    out[..header_size].copy_from_slice(bytes_of(&header));
    out
}

#[allow(clippy::too_many_arguments)]
fn section_header(
    name: u32,
    kind: elf::SectionType,
    flags: elf::SectionFlags,
    addr: u64,
    offset: u64,
    size: u64,
    link: u32,
    info: u32,
    align: u64,
    entsize: u64,
) -> elf::SectionHeader64<LE> {
    elf::SectionHeader64::<LE> {
        sh_name: U32::new(LE, name),
        sh_type: U32::new(LE, kind),
        sh_flags: U64::new(LE, flags),
        sh_addr: U64::new(LE, addr),
        sh_offset: U64::new(LE, offset),
        sh_size: U64::new(LE, size),
        sh_link: U32::new(LE, link),
        sh_info: U32::new(LE, info),
        sh_addralign: U64::new(LE, align),
        sh_entsize: U64::new(LE, entsize),
    }
}
