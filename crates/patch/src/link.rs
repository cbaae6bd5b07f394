//! Patch linking: lay out new code and the data it needs in one region and
//! resolve every relocation against the running program.
//!
//! The region has three page-aligned parts: code (`r-x`: the new
//! functions and call stubs), read-only data (`r--`: copied literals and
//! tables, GOT cells, jump slots) and writable data (`rw-`: globals that
//! are new in this patch). Existing writable globals and statics are not
//! copied: relocations resolve to their live addresses, so the program's
//! state is kept. Linking happens in two steps: [`link`] decides the layout
//! and every fixup without knowing where the region will be, and
//! [`Linked::finish`] computes the bytes once it is allocated, checking
//! that every value fits its field before anything is written.

use std::collections::BTreeSet;

use foldhash::{HashMap, HashMapExt};

use serde::Serialize;

use crate::names;
use crate::objfile::{rtype, Kind, ObjectFile, Reloc, ShortExit, Target};
use relive_x86::jump;

/// Parts are placed at this alignment inside a pool, so data in them may
/// ask for at most this much (wider alignment is rare: AVX-512 constants).
pub const PART_ALIGN: u64 = 64;
/// The largest zero-filled section (`.bss`) a patch copies whole: larger
/// than any pool relive maps.
const MAX_ZEROED_SECTION: u64 = 1 << 28;

/// How far outside a variable a compiler's address arithmetic reaches (a
/// loop's base `buf - k`, an end `arr + N`): a place farther from every
/// variable is not taken for one's.
pub(crate) const BESIDE: i64 = 64;

/// Whether `at` (an offset in `sym`'s section, which `sym` does not
/// cover) is within [`BESIDE`] bytes of `sym`.
fn beside(sym: &crate::objfile::Symbol, at: i64) -> bool {
    let start = sym.offset as i64;
    let end = start.saturating_add(sym.size as i64);
    (start.saturating_sub(BESIDE)..=end.saturating_add(BESIDE)).contains(&at)
}

/// Where the running program has things.
pub trait Resolver {
    /// A global or weak symbol: the program first, then its libraries.
    fn global(&self, name: &str) -> Option<u64>;
    /// A file-scope symbol of source file `file` in the program. `None`
    /// when it has none, or cannot tell source files apart.
    fn local(&self, file: &str, name: &str) -> Option<u64>;
    /// Whether `addr` is in the home module (the program image, or the
    /// library whose code is patched), which the patch region is placed
    /// within rel32 reach of.
    fn in_image(&self, addr: u64) -> bool;
    /// A function or variable an earlier patch added (it lives in a patch
    /// region): by source file (for a static) and name, or for a numbered
    /// function-local static by `key` ([`static_key`]).
    fn added(&self, _file: Option<&str>, _name: &str, _local: bool, _key: Option<&str>) -> Option<u64> {
        None
    }
    /// Where the home module's read-only data already holds `bytes` (a
    /// string literal with its NUL) at an address `phase` modulo `align`:
    /// the patch refers to that copy instead of bringing its own.
    fn existing_literal(&self, _bytes: &[u8], _align: u64, _phase: u64) -> Option<u64> {
        None
    }

    /// Whether the program's read-only data at `addr` holds exactly
    /// `bytes`: a constant table the new code uses that did not change is
    /// the program's own, not a copy.
    fn holds_constant(&self, _addr: u64, _bytes: &[u8]) -> bool {
        false
    }

    /// Whether the program's file holds at `addr` (its run-time address)
    /// the constant `bytes` whose 8-byte `fields` are run-time addresses
    /// (a table of pointers: RELRO data, which the dynamic linker
    /// relocated; the file has each at its link-time address).
    fn holds_addresses(&self, _addr: u64, _bytes: &[u8], _fields: &[usize]) -> bool {
        false
    }

    /// Whether `addr` is in read-only data of the program (a variable the
    /// compiler placed there: nothing wrote it).
    fn read_only_data(&self, _addr: u64) -> bool {
        false
    }

    /// Where the program's thread-local `name` is (a `static` of source
    /// file `file` when given); `name` `None`: the home module's block
    /// (what a local-dynamic sequence asks for). Why not, when that
    /// cannot be told.
    fn thread_local(&self, _name: Option<&str>, _file: Option<&str>) -> Result<crate::tls::TlsPlace, String> {
        Err("the program's thread-local storage is not known here".into())
    }
}

/// Which part of the region.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Part {
    Code,
    ReadOnly,
    Writable,
}

/// An address: already in the process, or in the region to be allocated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Value {
    Absolute(u64),
    Region(Part, u64),
    /// A place in the region of another unit of the same patch (by its
    /// index among the units): a function or variable another file saved
    /// with this one adds, which the program does not have yet.
    Unit(usize, Part, u64),
}

/// A field of the region to fill once its address is known.
#[derive(Debug, Clone)]
pub struct Fixup {
    pub part: Part,
    pub offset: u64,
    pub r_type: u32,
    pub value: Value,
    pub addend: i64,
    /// For messages: the symbol whose code or data holds the field, and
    /// what it refers to.
    pub context: String,
}

/// A function placed in the region.
#[derive(Debug, Clone, Serialize)]
pub struct LinkedFunction {
    pub name: String,
    #[serde(skip)]
    pub symbol: usize,
    /// Offset in the code part.
    pub offset: u64,
    pub size: u64,
    /// Its live address when it replaces a function of the program;
    /// `None` for a function the program does not have (added).
    pub replaces: Option<u64>,
}

/// What became of a data symbol the new code uses.
/// What a patch does with a data symbol its code uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DataAction {
    /// The program's own variable: its state is kept.
    Kept,
    /// A fresh copy from the object (a new global, or read-only data).
    New,
}

impl std::fmt::Display for DataAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DataAction::Kept => "kept",
            DataAction::New => "new",
        })
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct LinkedData {
    pub name: String,
    /// The object's symbol, when the data is one (not a copied section).
    #[serde(skip)]
    pub symbol: Option<usize>,
    pub action: DataAction,
    #[serde(skip)]
    pub value: Value,
}

/// Everything decided about a patch except its address.
#[derive(Debug, Clone, Default)]
pub struct Linked {
    pub code: Vec<u8>,
    pub read_only: Vec<u8>,
    pub writable: Vec<u8>,
    pub functions: Vec<LinkedFunction>,
    pub data: Vec<LinkedData>,
    pub fixups: Vec<Fixup>,
    /// Jump slots to create, by function name: an 8-byte cell in the
    /// read-only part holding the function's new address.
    pub slots: Vec<(String, u64)>,
    /// The region must end at or below this (absolute 32-bit relocations).
    pub below: Option<u64>,
    pub warnings: Vec<String>,
    /// The unwind information of the placed functions, for the process's
    /// unwinder (see [`crate::unwind`]); `None` when the object has none
    /// for them.
    pub unwind: Option<UnwindTable>,
    /// That of the register-keeping thunks in front of some of them
    /// ([`Linked::add_thunk_unwind`]), and the thunks' frames.
    pub thunk_unwind: Option<UnwindTable>,
    /// By the name of the function each thunk is in front of.
    pub thunk_frames: Vec<(String, crate::eh_frame::ThunkFrame)>,
    /// The object's static initializers this patch placed, in `.init_array`
    /// order (code offsets): run, they construct the patch's new globals
    /// (the program's own are replaced by stand-ins in their code).
    pub constructors: Vec<u64>,
    /// New globals (symbol indices) that only those initializers give
    /// their value and that the patch's other code uses: a C++ global with
    /// a constructor (`static const std::string s = "..."`). Unless the
    /// initializers run, the code would use zeros (the string printed
    /// `(null)` while relive said "patched").
    pub constructed: Vec<usize>,
}

/// A patch's own `.eh_frame`: the CIEs and FDEs of the functions it
/// places, relocated for where they land, ending with a terminator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnwindTable {
    /// Offset of the table in the read-only part.
    pub eh_frame: u64,
    /// Its bytes, the terminator included, and the language-specific
    /// data (exception tables) placed after it.
    pub len: u64,
    /// Offset in the writable part of the unwinder's bookkeeping for it
    /// (libgcc's `struct object`, [`UNWINDER_OBJECT`] zero bytes).
    pub object: u64,
}

/// Room for libgcc's `struct object` (seven words in GCC 4 to 14).
pub const UNWINDER_OBJECT: usize = 64;

/// Zeroed room for the unwinder's bookkeeping of a table, at the end of
/// the writable part `writable`: its offset.
fn unwinder_object(writable: &mut Vec<u8>) -> u64 {
    let object = align(writable, 16, 0);
    writable.resize(object as usize + UNWINDER_OBJECT, 0);
    object
}

// Defined with the crate's other errors (error.rs needs it, and no
// module imports back the module that imports it).
pub use crate::error::LinkError;

/// The psABI name of a relocation type relive does not link, for the
/// message (`?` for a type without one).
fn type_name(r_type: u32) -> String {
    rtype::name(r_type).unwrap_or("?").to_string()
}

struct Linker<'a> {
    obj: &'a ObjectFile,
    resolver: &'a dyn Resolver,
    /// What the other units of the same patch add, by name (see
    /// [`link_in_batch`]).
    batch: &'a dyn Fn(&str) -> Option<Value>,
    /// For statics GCC may have numbered differently: their names in the
    /// previous compile, which the running program was built from.
    base_names: &'a BaseNames<'a>,
    /// There is a previous compile: a static that has no name in it is
    /// new in this edit, and starting over is no surprise.
    with_base: bool,
    out: Linked,
    /// Functions placed so far: symbol index -> code offset.
    placed: HashMap<usize, u64>,
    /// Of those, the ones that replace a function of the program: symbol
    /// index -> its original entry.
    replaced: HashMap<usize, u64>,
    queue: Vec<usize>,
    /// Functions the patch brings along because the program has none of
    /// them, by the function whose code called them first: said when one
    /// cannot be moved (the user edited the caller, not it).
    brought_by: HashMap<usize, String>,
    /// Data symbols resolved so far.
    data: HashMap<usize, Value>,
    sections: HashMap<usize, Value>,
    /// String literals copied one by one: (section, offset of the
    /// string) -> where the copy is.
    strings: HashMap<(usize, i64), Value>,
    got: HashMap<(Value, i64), u64>,
    /// Constant cells (thread-pointer offsets, TLS indexes) by contents.
    cells: HashMap<Vec<u64>, u64>,
    stubs: HashMap<u64, u64>,
    /// Islands to relocate: (function, field offset in code, target
    /// offset in the function's section).
    islands: Vec<(usize, u64, i64)>,
    island_error: Option<(usize, u64)>,
    /// The object's static initializers and the functions of it they
    /// call, the zero-filled data they refer to, and the function whose
    /// relocations are being linked.
    initializers: BTreeSet<usize>,
    initialized: BTreeSet<usize>,
    current: Option<usize>,
    /// Stand-ins for the program's own globals in the initializers' code.
    stand_ins: HashMap<usize, Value>,
    /// Constant sections whose objects are resolved into the section's one
    /// copy, not each on its own (see [`Linker::split_constants`]).
    whole: BTreeSet<usize>,
    /// Places of constant sections that no symbol covers, resolved into a
    /// copy of their section: `(section, place)`.
    uncovered: Vec<(usize, i64)>,
}

/// Links `functions` (symbol indices of `obj`) for the process `resolver`
/// describes. Each comes with the live address it replaces (`None`:
/// added). Functions they call that the program lacks are pulled in as
/// added functions. `base_names` maps local symbols of `obj` to their names
/// in the previous compile (see [`BaseNames`]).
pub fn link(
    obj: &ObjectFile,
    functions: &[(usize, Option<u64>)],
    resolver: &dyn Resolver,
    base_names: &BaseNames,
) -> Result<Linked, LinkError> {
    link_in_batch(obj, functions, resolver, base_names, &|_| None)
}

/// [`link`] as one unit of a patch of several objects: a symbol the
/// program lacks is looked up in `batch`, what the other units add
/// ([`Value::Unit`]), so files saved together go in as one step even when
/// one calls what another adds.
pub fn link_in_batch(
    obj: &ObjectFile,
    functions: &[(usize, Option<u64>)],
    resolver: &dyn Resolver,
    base_names: &BaseNames,
    batch: &dyn Fn(&str) -> Option<Value>,
) -> Result<Linked, LinkError> {
    // Linked again, at most once per constant section of the object, while
    // a constant object was placed apart from a copy of its section that
    // places just beside it also reach (a loop's end pointer `tbl + N`):
    // the loop ran from one copy into the other.
    let mut whole = BTreeSet::new();
    loop {
        let (linked, split) = link_once(obj, functions, resolver, base_names, batch, &whole)?;
        if split.is_empty() || !split.iter().any(|s| whole.insert(*s)) {
            return Ok(linked);
        }
    }
}

/// [`link`] with the objects of the constant sections `whole` resolved
/// into their section's copy; also returns the constant sections whose
/// objects it found split from their copy.
fn link_once(
    obj: &ObjectFile,
    functions: &[(usize, Option<u64>)],
    resolver: &dyn Resolver,
    base_names: &BaseNames,
    batch: &dyn Fn(&str) -> Option<Value>,
    whole: &BTreeSet<usize>,
) -> Result<(Linked, BTreeSet<usize>), LinkError> {
    let with_base = base_names.with_base();
    let mut l = Linker {
        obj,
        resolver,
        batch,
        base_names,
        with_base,
        out: Linked::default(),
        placed: HashMap::new(),
        replaced: HashMap::new(),
        queue: Vec::new(),
        brought_by: HashMap::new(),
        data: HashMap::new(),
        sections: HashMap::new(),
        strings: HashMap::new(),
        got: HashMap::new(),
        cells: HashMap::new(),
        stubs: HashMap::new(),
        islands: Vec::new(),
        island_error: None,
        initializers: BTreeSet::new(),
        initialized: BTreeSet::new(),
        current: None,
        stand_ins: HashMap::new(),
        whole: whole.clone(),
        uncovered: Vec::new(),
    };
    (l.initializers, l.initialized) = obj.dynamically_initialized();
    for &(i, replaces) in functions {
        l.place_function(i, replaces);
    }
    l.link_queued()?;
    l.link_unwind_table()?;
    // What the unwind table refers to may bring functions (never in
    // practice: it refers to the personality routine and type
    // information); they come without unwind information.
    l.link_queued()?;
    // A file's initializer that did not change itself but calls one that
    // did (GCC's `_GLOBAL__sub_I_file` calling
    // `__static_initialization_and_destruction_0` at -O0) comes along, so
    // the patch has an entry point that constructs its new globals.
    let initializers = obj.static_initializers();
    if l.initializers.iter().any(|f| l.placed.contains_key(f)) {
        for &i in &initializers {
            l.place_function(i, None);
        }
        l.link_queued()?;
    }
    l.out.constructors = initializers
        .into_iter()
        .filter_map(|i| l.placed.get(&i).copied())
        .collect();
    l.out.constructed = l.constructed();
    for f in &l.out.functions {
        if f.replaces.is_some() {
            let cell = l.out.read_only.len().next_multiple_of(8) as u64;
            l.out.read_only.resize(cell as usize + 8, 0);
            l.out.fixups.push(Fixup {
                part: Part::ReadOnly,
                offset: cell,
                r_type: rtype::R64,
                value: Value::Region(Part::Code, f.offset),
                addend: 0,
                context: format!("jump slot of {}", f.name),
            });
            l.out.slots.push((f.name.clone(), cell));
        }
    }
    let split = l.split_constants();
    Ok((l.out, split))
}

impl Linker<'_> {
    /// The constant sections copied whole (for places no symbol covers)
    /// that have an object resolved apart from that copy (the program's
    /// own, or a copy of its own) within [`BESIDE`] bytes of such a place:
    /// pointer arithmetic around the object (`tbl + N`, `incs - 1`) would
    /// go from one copy into the other.
    fn split_constants(&self) -> BTreeSet<usize> {
        let mut split = BTreeSet::new();
        for &(section, at) in &self.uncovered {
            // Constant data only: writable data is state, resolved by the
            // variable it is beside. RELRO's too (a table of pointers to
            // strings: an Oniguruma trial's loop ran from `bad_pats` into
            // the copy of its section `.data.rel.ro.local.bad_pats+0x50`
            // and crashed), but not a C++ vtable or type information, whose
            // identity code may compare.
            let constant = self.obj.section(section).is_some_and(|s| s.constant());
            if !constant || self.whole.contains(&section) {
                continue;
            }
            let near = self.obj.symbol_near(section, at).filter(|&i| {
                let sym = &self.obj.symbols[i];
                sym.kind == Kind::Object
                    && self.data.contains_key(&i)
                    && beside(sym, at)
                    && !crate::names::is_cxx_type_data(&sym.name)
            });
            if near.is_some() {
                split.insert(section);
            }
        }
        split
    }

    /// Why function `i` is in the patch when nothing asked for it: the
    /// function whose code calls it, and that the program has no such
    /// function of this file ("" for one asked for).
    fn why_brought(&self, i: usize) -> String {
        let Some(caller) = self.brought_by.get(&i) else {
            return String::new();
        };
        let file = self.obj.source.as_deref().unwrap_or("this file");
        format!(
            " (it is not one of the functions patched: {caller} calls it, and the program has no {} of {file}, so it would come along as new code; if the program's file has another name, pass the object of its last compile as --base)",
            self.obj.symbols[i].name
        )
    }

    /// Links the functions placed and not yet linked, and those they
    /// bring.
    fn link_queued(&mut self) -> Result<(), LinkError> {
        let obj = self.obj;
        let l = self;
        while let Some(i) = l.queue.pop() {
            let sym = &obj.symbols[i];
            if let Some(reason) = &sym.problem {
                return Err(LinkError::Unmovable {
                    user: sym.name.clone(),
                    reason: format!("{reason}{}", l.why_brought(i)),
                });
            }
            let base = l.placed[&i];
            l.current = Some(i);
            for r in &sym.relocs {
                l.relocate(Part::Code, base, r, &sym.name)?;
            }
            if let Some((f, field)) = l.island_error.take() {
                return Err(LinkError::Unmovable {
                    user: obj.symbols[f].name.clone(),
                    reason: format!(
                        "the short branch at +{:#x} leaves the function too far from both its ends to be redirected; compile with -ffunction-sections{}",
                        field - 1,
                        l.why_brought(f)
                    ),
                });
            }
            for (f, field, target) in std::mem::take(&mut l.islands) {
                let r = Reloc {
                    offset: field,
                    r_type: rtype::PC32,
                    target: Target::Section {
                        section: obj.symbols[f].section,
                        offset: target - 4,
                    },
                    addend: 0,
                    pc_bias: 4,
                    synthetic: true,
                    label: None,
                };
                l.relocate(Part::Code, 0, &r, &obj.symbols[f].name)?;
            }
        }
        Ok(())
    }

    /// Builds the patch's `.eh_frame` from the object's: the FDE of each
    /// placed function, pointing at its copy, and the CIEs they use, with
    /// their personality routine and language-specific data (C++'s
    /// exception tables, copied with their type references) linked like
    /// any data. Without it the unwinder cannot leave new code: a C++
    /// exception thrown through it ends the program, and `backtrace()`
    /// stops there. Damaged framing gives no table and a warning.
    fn link_unwind_table(&mut self) -> Result<(), LinkError> {
        let obj = self.obj;
        let Some(section) = obj.sections.iter().flatten().find(|s| s.name == ".eh_frame") else {
            return Ok(());
        };
        let Some(bytes) = section.bytes.as_deref() else {
            return Ok(());
        };
        let entries = match crate::eh_frame::entries(bytes) {
            Ok(e) => e,
            Err(why) => {
                self.out.warnings.push(format!(
                    "the unwind information (.eh_frame) of {} is damaged ({why}): the new code has none, so an exception or backtrace() through it stops there",
                    obj.path
                ));
                return Ok(());
            }
        };
        let relocs = &section.relocs;
        let relocs_in = |start: usize, end: usize| {
            let first = relocs.partition_point(|r| (r.offset as usize) < start);
            relocs[first..].iter().take_while(move |r| (r.offset as usize) < end)
        };
        // Where the placed functions are in the object, sorted: an FDE for
        // a place none of them covers is another function's, found
        // without looking up its symbol (a patch of one function of a
        // 10,000-function file looked up all 10,000).
        let mut placed_spans: Vec<(usize, u64, u64)> = self
            .placed
            .keys()
            .map(|&f| {
                let s = &obj.symbols[f];
                (s.section, s.offset, s.offset.saturating_add(s.size.max(1)))
            })
            .collect();
        placed_spans.sort_unstable();
        let in_placed = |section: usize, at: i64| {
            u64::try_from(at).is_ok_and(|at| crate::line_table::in_spans(&placed_spans, section, at))
        };
        // The FDEs of placed functions, with where their code lands.
        let mut kept: Vec<(crate::eh_frame::Entry, u64, usize)> = Vec::new();
        for e in entries.iter().filter(|e| e.cie.is_some()) {
            let Some(r) = relocs_in(e.pc_begin(), e.pc_begin() + 1).next() else {
                continue;
            };
            let place = match &r.target {
                Target::Section { section, offset } => Some((*section, *offset)),
                Target::Defined(i) => {
                    let s = &obj.symbols[*i];
                    Some((s.section, (s.offset as i64).wrapping_add(r.addend)))
                }
                Target::Undefined(_) => None,
            };
            let Some((f, within)) = place
                .filter(|&(sec, at)| in_placed(sec, at))
                .and_then(|(sec, at)| obj.symbol_at(sec, at))
            else {
                continue;
            };
            if let Some(&code) = self.placed.get(&f) {
                kept.push((*e, code + within, f));
            }
        }
        if kept.is_empty() {
            return Ok(());
        }
        let base = align(&mut self.out.read_only, 8, 0);
        let mut table: Vec<u8> = Vec::new();
        let mut cies: HashMap<usize, usize> = HashMap::new();
        // (relocation, its offset in the table, whose entry).
        let mut fields: Vec<(Reloc, u64, String)> = Vec::new();
        let mut starts: Vec<(u64, u64, u32, String)> = Vec::new();
        for (fde, code, f) in &kept {
            let cie_start = fde.cie.expect("an FDE");
            let new_cie = match cies.get(&cie_start) {
                Some(&at) => at,
                None => {
                    let cie = entries.iter().find(|e| e.start == cie_start).expect("framed");
                    let at = table.len();
                    table.extend(crate::eh_frame::moved(bytes, cie, at, None));
                    for r in relocs_in(cie.start, cie.end) {
                        fields.push((r.clone(), (at + r.offset as usize - cie.start) as u64, "a CIE".into()));
                    }
                    cies.insert(cie_start, at);
                    at
                }
            };
            let at = table.len();
            table.extend(crate::eh_frame::moved(bytes, fde, at, Some(new_cie)));
            let name = format!("the unwind information of {}", obj.symbols[*f].name);
            for r in relocs_in(fde.start, fde.end) {
                let offset = (at + r.offset as usize - fde.start) as u64;
                if r.offset as usize == fde.pc_begin() {
                    starts.push((offset, *code, r.r_type, name.clone()));
                } else {
                    fields.push((r.clone(), offset, name.clone()));
                }
            }
        }
        table.extend([0; 4]);
        self.out.read_only.extend_from_slice(&table);
        // The language-specific data the FDEs point at (C++'s exception
        // tables) right after the table, so the unwinder's part of the
        // region is one range: stale pointers into it (in exceptions
        // freed long ago) are not uses of the region.
        let mut lsda: Vec<(usize, Value)> = Vec::new();
        for (r, _, _) in &fields {
            let Target::Section { section, .. } = r.target else {
                continue;
            };
            let Some(sec) = obj.section(section) else {
                continue;
            };
            if !sec.name.starts_with(".gcc_except_table") || self.sections.contains_key(&section) {
                continue;
            }
            lsda.push((section, self.place_section(section)));
        }
        let unwinder_part = self.out.read_only.len() as u64 - base;
        for (section, value) in lsda {
            self.relocate_section(section, value)?;
        }
        for (offset, code, r_type, context) in starts {
            self.out.fixups.push(Fixup {
                part: Part::ReadOnly,
                offset: base + offset,
                r_type,
                value: Value::Region(Part::Code, code),
                addend: 0,
                context,
            });
        }
        for (r, offset, user) in fields {
            let r = Reloc { offset, ..r };
            self.relocate(Part::ReadOnly, base, &r, &user)?;
        }
        self.out.unwind = Some(UnwindTable {
            eh_frame: base,
            len: unwinder_part,
            object: unwinder_object(&mut self.out.writable),
        });
        Ok(())
    }
}

/// The program's address for symbol `i` of `obj`: a global by its name; a
/// static within the object's source file, by its name in the compile the
/// program was built from (`base_names`) when known, else by its own name
/// or, for GCC-numbered names, by their stable part; else what an earlier
/// patch added. For a lambda's symbols what an earlier patch defined goes
/// first: a renumbered lambda's name is another lambda's in the program
/// ([`crate::lambdas`]).
pub fn live_address(obj: &ObjectFile, i: usize, resolver: &dyn Resolver, base_names: &BaseNames) -> Option<u64> {
    let sym = &obj.symbols[i];
    let file = obj.source.as_deref();
    // Its name in the compile the program runs; empty: new in this edit.
    let old = base_names.get(i);
    let name = old.filter(|n| !n.is_empty()).unwrap_or(&sym.name);
    let key = crate::diff::static_key(obj, i);
    let added = || resolver.added(file, name, sym.local, key);
    // A lambda, or a numbered static, an earlier patch added: found by
    // its identity first, since this compile's name for it may be another
    // one's in the program.
    if crate::lambdas::mentions_lambda(&sym.name) || key.is_some() {
        if let Some(earlier) = added() {
            return Some(earlier);
        }
    }
    if old.is_some_and(str::is_empty) {
        return None;
    }
    if !sym.local {
        return resolver.global(name).or_else(added);
    }
    let Some(file) = file else {
        return added();
    };
    if old.is_some() {
        return resolver.local(file, name).or_else(added);
    }
    resolver
        .local(file, &sym.name)
        .or_else(|| {
            let stable = names::parse(&sym.name);
            (stable.numbered || !stable.clones.is_empty())
                .then(|| resolver.local(file, &stable.stable()))
                .flatten()
        })
        .or_else(added)
}

/// For each local symbol of `new`, its name in `old` when the two differ
/// only by GCC's numbering (`n.1` now, `n.0` before): matched by owner and
/// base name as the diff matches them; and any symbol of a renumbered C++
/// lambda ([`crate::lambdas`]), global ones too, by its old twin's name.
///
/// Found for the symbols asked about, not all: a patch links a few of a
/// file's symbols, and naming all 10,000 of a large file cost as much as
/// linking.
#[derive(Default)]
pub struct BaseNames<'a> {
    /// The previous compile, the new one, and the new one's keys paired
    /// with the old one's.
    pair: Option<BasePair<'a>>,
}

struct BasePair<'a> {
    old: &'a ObjectFile,
    new: &'a ObjectFile,
    keys: std::borrow::Cow<'a, [String]>,
}

impl<'a> BaseNames<'a> {
    /// No previous compile: every symbol goes by its own name.
    pub fn none() -> BaseNames<'a> {
        BaseNames { pair: None }
    }

    /// `new`'s symbols named as `old` names them.
    pub fn of(old: &'a ObjectFile, new: &'a ObjectFile) -> BaseNames<'a> {
        let keys = crate::lambdas::paired_keys(old, new);
        BaseNames {
            pair: Some(BasePair { old, new, keys }),
        }
    }

    /// Whether there is a previous compile.
    pub fn with_base(&self) -> bool {
        self.pair.is_some()
    }

    /// Symbol `i`'s name in the previous compile, when it is a local or
    /// its name differs there; `""` for a lambda the edit added though
    /// the program has one of its name (never the program's); `None`
    /// otherwise.
    pub fn get(&self, i: usize) -> Option<&'a str> {
        let pair = self.pair.as_ref()?;
        let old: &'a ObjectFile = pair.old;
        let key = pair.keys.get(i)?;
        let name = match crate::diff::symbol_of_key(old, key) {
            Some(o) => old.symbols[o].name.as_str(),
            None if crate::lambdas::is_fresh(key) => "",
            // A function-local static the previous compile has not (by
            // function and name) is new, though the program may have a
            // static of its numbered name: another function's.
            None if key.starts_with("static:") => "",
            None => return None,
        };
        let sym = pair.new.symbols.get(i)?;
        (sym.local || name != sym.name).then_some(name)
    }
}

/// An island: `jmp rel32`.
const ISLAND_LEN: u64 = 5;

/// Which short exits of a body `len` bytes long get their island before
/// it and which after it. After: in order, from just past the body's
/// trailing int3, as far as each reaches (127 bytes forward). The rest
/// before, in the order of their places, the first one's island farthest
/// back: each with whether its island is within its reach (128 bytes
/// back from the branch's end).
fn island_sides(exits: &[ShortExit], len: u64) -> (Vec<(&ShortExit, bool)>, Vec<&ShortExit>) {
    let mut after = Vec::new();
    let mut before = Vec::new();
    let mut next = len + 1;
    for exit in exits {
        if next - (exit.field + 1) <= 127 {
            after.push(exit);
            next += ISLAND_LEN;
        } else {
            before.push(exit);
        }
    }
    before.sort_by_key(|e| e.field);
    let n = before.len() as u64;
    let before = before
        .into_iter()
        .enumerate()
        .map(|(k, exit)| {
            let back = ISLAND_LEN * (n - k as u64) + exit.field + 1;
            (exit, back <= 128)
        })
        .collect();
    (before, after)
}

fn align(buf: &mut Vec<u8>, to: u64, fill: u8) -> u64 {
    let at = (buf.len() as u64).next_multiple_of(to.max(1));
    buf.resize(at as usize, fill);
    at
}

impl Linker<'_> {
    fn place_function(&mut self, i: usize, replaces: Option<u64>) -> u64 {
        if let Some(&off) = self.placed.get(&i) {
            return off;
        }
        let sym = &self.obj.symbols[i];
        let body = sym.bytes.as_deref().unwrap_or(&[]);
        // Each short branch out of the function reaches the same target
        // through an island (`jmp rel32`) within its reach: after the body
        // where it can, else just before it (SQLite's
        // `sqlite3DbMallocRawNN` tail-calls the function before it early
        // in a long body, `jmp` rel8 at +0x20 of 0xd4 bytes).
        let (before, after) = island_sides(&sym.short_exits, body.len() as u64);
        // int3 between functions: a stray jump traps instead of sliding.
        // The islands before the body end where it starts, still aligned.
        let islands_len = ISLAND_LEN * before.len() as u64;
        let off = (self.out.code.len() as u64 + islands_len).next_multiple_of(16);
        self.out.code.resize((off - islands_len) as usize, 0xcc);
        let mut exits = Vec::new();
        for &(exit, reaches) in &before {
            match reaches {
                true => exits.push((exit, self.island(i, exit))),
                // No island reaches it: the link fails (its place stays
                // int3).
                false => {
                    self.island_error = Some((i, exit.field));
                    self.out.code.extend_from_slice(&[0xcc; ISLAND_LEN as usize]);
                }
            }
        }
        self.out.code.extend_from_slice(body);
        // int3 just past the body: where a branch to the function's end
        // (after a call that does not return) would land.
        self.out.code.push(0xcc);
        for exit in after {
            exits.push((exit, self.island(i, exit)));
        }
        for (exit, island) in exits {
            let from = off + exit.field + 1;
            self.out.code[(off + exit.field) as usize] = island.wrapping_sub(from) as u8;
        }
        self.placed.insert(i, off);
        if let Some(orig) = replaces {
            self.replaced.insert(i, orig);
        }
        self.queue.push(i);
        self.out.functions.push(LinkedFunction {
            name: sym.name.clone(),
            symbol: i,
            offset: off,
            size: sym.size,
            replaces,
        });
        off
    }

    /// Writes an island for short branch `exit` of function `i` at the
    /// end of the code so far; its place.
    fn island(&mut self, i: usize, exit: &ShortExit) -> u64 {
        let island = self.out.code.len() as u64;
        self.out.code.extend_from_slice(&[0xe9, 0, 0, 0, 0]);
        self.islands.push((i, island + 1, exit.target));
        island
    }

    fn buffer(&mut self, part: Part) -> &mut Vec<u8> {
        match part {
            Part::Code => &mut self.out.code,
            Part::ReadOnly => &mut self.out.read_only,
            Part::Writable => &mut self.out.writable,
        }
    }

    /// Records the fixup for relocation `r` of bytes placed at `base` in
    /// `part`.
    fn relocate(&mut self, part: Part, base: u64, r: &Reloc, user: &str) -> Result<(), LinkError> {
        if crate::tls::is_tls(r.r_type) {
            return self.relocate_tls(part, base, r, user);
        }
        let (value, addend) = self.resolve_target(r, user)?;
        self.note_split_boundary(part, base, r, user);
        let offset = base.wrapping_add(r.offset);
        let context = format!("{user}+{:#x} (a reference to {})", r.offset, self.describe(&r.target));
        let (value, addend) = match r.r_type {
            rtype::PC32 if part == Part::Code && self.far_address_taken(base, r, value) => {
                // `lea sym(%rip), %reg` of data beyond rel32 reach (a
                // library's typeinfo or variable the program has no copy
                // of): `mov cell(%rip), %reg` from a cell holding the
                // address, as a link through the GOT would.
                self.out.code[(base + r.offset - 2) as usize] = 0x8b;
                let place = addend.wrapping_add(r.pc_bias);
                (Value::Region(Part::ReadOnly, self.got_cell(value, place)), -r.pc_bias)
            }
            rtype::R64 | rtype::PC32 | rtype::R32 | rtype::R32S | rtype::PC64 => (value, addend),
            rtype::PLT32 => match value {
                // A call beyond rel32 reach goes through a stub.
                Value::Absolute(a) if !self.resolver.in_image(a) => (self.stub(a), addend),
                v => (v, addend),
            },
            rtype::GOTPCREL | rtype::GOTPCRELX | rtype::REX_GOTPCRELX => {
                // The cell holds the symbol's address; the field's addend
                // (usually -4) applies to the cell's address. Through a
                // section symbol, the "symbol" is the section's start.
                let (cell_addend, field_addend) = match r.target {
                    Target::Section { offset, .. } => (addend - offset, offset),
                    _ => (0, r.addend),
                };
                (
                    Value::Region(Part::ReadOnly, self.got_cell(value, cell_addend)),
                    field_addend,
                )
            }
            rtype::TPOFF32
            | rtype::TPOFF64
            | rtype::GOTTPOFF
            | rtype::TLSGD
            | rtype::TLSLD
            | rtype::DTPOFF32
            | rtype::DTPOFF64 => unreachable!("thread-local relocations are linked by relocate_tls"),
            other => {
                return Err(LinkError::Unsupported {
                    user: user.to_string(),
                    r_type: other,
                    name: type_name(other),
                })
            }
        };
        if matches!(r.r_type, rtype::R32) {
            self.out.below = Some(self.out.below.map_or(1 << 32, |b| b.min(1 << 32)));
        }
        if matches!(r.r_type, rtype::R32S) {
            self.out.below = Some(1 << 31);
        }
        self.out.fixups.push(Fixup {
            part,
            offset,
            r_type: r.r_type,
            value,
            addend,
            context,
        });
        Ok(())
    }

    /// Links a reference to a thread-local variable of the program
    /// (see [`crate::tls`]): its distance from the thread pointer
    /// (local-exec, or in a GOT cell for initial-exec), or a TLS index
    /// `{module, offset}` for `__tls_get_addr` (general- and
    /// local-dynamic). Each thread then reaches its own copy. A
    /// thread-local the program does not have (new in the patch) is
    /// refused: no thread has room for it.
    fn relocate_tls(&mut self, part: Part, base: u64, r: &Reloc, user: &str) -> Result<(), LinkError> {
        let refuse = |why: String| LinkError::ThreadLocal {
            symbol: self.describe(&r.target),
            user: user.to_string(),
            why,
        };
        // The variable, and the place inside it the reference denotes.
        let (variable, inner): (Option<usize>, i64) = match &r.target {
            Target::Defined(i) => (Some(*i), r.addend.wrapping_add(r.pc_bias)),
            Target::Undefined(_) => (None, r.addend.wrapping_add(r.pc_bias)),
            Target::Section { section, offset } => {
                let at = offset.wrapping_add(r.pc_bias);
                match self.obj.symbol_at(*section, at) {
                    Some((i, _)) => (Some(i), at.wrapping_sub(self.obj.symbols[i].offset as i64)),
                    // The module's block itself (a local-dynamic base).
                    None if r.r_type == rtype::TLSLD => (None, 0),
                    None => return Err(refuse("it names no variable of the object".into())),
                }
            }
        };
        let place = match (&r.target, variable) {
            (_, _) if r.r_type == rtype::TLSLD => self.resolver.thread_local(None, None),
            (_, Some(i)) => {
                let sym = &self.obj.symbols[i];
                let file = sym.local.then_some(self.obj.source.as_deref()).flatten();
                self.resolver.thread_local(Some(&sym.name), file)
            }
            (Target::Undefined(name), None) => self.resolver.thread_local(Some(name), None),
            _ => Err("it names no variable".into()),
        }
        .map_err(refuse)?;
        let offset = base.wrapping_add(r.offset);
        let context = format!("{user}+{:#x} (a reference to {})", r.offset, self.describe(&r.target));
        let needs = |what: Option<i64>, how: &str| {
            what.ok_or_else(|| {
                refuse(format!(
                    "its module's {how} is not known (it is not in static TLS, or its own code never reaches it through its GOT); compile the patch with -ftls-model=global-dynamic, or restart the program"
                ))
            })
        };
        let (r_type, value, addend) = match r.r_type {
            rtype::TPOFF32 | rtype::TPOFF64 => {
                let tpoff = needs(place.tpoff, "distance from the thread pointer")?;
                let r_type = if r.r_type == rtype::TPOFF32 {
                    rtype::R32S
                } else {
                    rtype::R64
                };
                (r_type, Value::Absolute(0), tpoff.wrapping_add(inner))
            }
            rtype::DTPOFF32 | rtype::DTPOFF64 => {
                let r_type = if r.r_type == rtype::DTPOFF32 {
                    rtype::R32S
                } else {
                    rtype::R64
                };
                (r_type, Value::Absolute(0), (place.offset as i64).wrapping_add(inner))
            }
            rtype::GOTTPOFF => {
                let tpoff = needs(place.tpoff, "distance from the thread pointer")?;
                let cell = self.constant_cells(&[tpoff.wrapping_add(inner) as u64]);
                (
                    rtype::PC32,
                    Value::Region(Part::ReadOnly, cell),
                    r.pc_bias.wrapping_neg(),
                )
            }
            _ => {
                // TLSGD, TLSLD: a `tls_index` for `__tls_get_addr`.
                let modid = needs(place.modid.map(|m| m as i64), "TLS module index")? as u64;
                let offset_in_block = match r.r_type {
                    rtype::TLSLD => 0,
                    _ => place.offset.wrapping_add(inner as u64),
                };
                let cell = self.constant_cells(&[modid, offset_in_block]);
                (
                    rtype::PC32,
                    Value::Region(Part::ReadOnly, cell),
                    r.pc_bias.wrapping_neg(),
                )
            }
        };
        self.out.fixups.push(Fixup {
            part,
            offset,
            r_type,
            value,
            addend,
            context,
        });
        Ok(())
    }

    /// Whether the PC-relative field `r` of code placed at `base` is the
    /// displacement of a 64-bit `lea` (REX.W, `8d`, RIP-relative ModRM)
    /// whose target lies outside the program's image, where the region
    /// may be out of its reach.
    fn far_address_taken(&self, base: u64, r: &Reloc, value: Value) -> bool {
        let Value::Absolute(a) = value else {
            return false;
        };
        r.pc_bias == 4 && !self.resolver.in_image(a) && crate::verify::lea_of_rip(&self.out.code, base + r.offset)
    }

    /// 8-byte constants in the read-only part (a GOT cell, a TLS index),
    /// each set once: their offset.
    fn constant_cells(&mut self, values: &[u64]) -> u64 {
        let key: Vec<u64> = values.to_vec();
        if let Some(&off) = self.cells.get(&key) {
            return off;
        }
        let buf = self.buffer(Part::ReadOnly);
        let off = align(buf, 16, 0);
        for v in values {
            buf.extend_from_slice(&v.to_le_bytes());
        }
        self.cells.insert(key, off);
        off
    }

    fn describe(&self, t: &Target) -> String {
        match t {
            Target::Defined(i) => self.obj.symbols[*i].name.clone(),
            Target::Undefined(n) => n.clone(),
            Target::Section { section, offset } => format!(
                "{}{offset:+}",
                self.obj.section(*section).map_or("?", |s| s.name.as_str())
            ),
        }
    }

    fn stub(&mut self, target: u64) -> Value {
        if let Some(&off) = self.stubs.get(&target) {
            return Value::Region(Part::Code, off);
        }
        let off = align(&mut self.out.code, 16, 0xcc);
        self.out.code.extend_from_slice(&jump::absolute(target));
        self.stubs.insert(target, off);
        Value::Region(Part::Code, off)
    }

    fn got_cell(&mut self, value: Value, addend: i64) -> u64 {
        if let Some(&off) = self.got.get(&(value, addend)) {
            return off;
        }
        let off = align(&mut self.out.read_only, 8, 0);
        self.out.read_only.extend_from_slice(&[0; 8]);
        self.out.fixups.push(Fixup {
            part: Part::ReadOnly,
            offset: off,
            r_type: rtype::R64,
            value,
            addend,
            context: "GOT cell".into(),
        });
        self.got.insert((value, addend), off);
        off
    }

    /// The value and addend a relocation's target stands for.
    fn resolve_target(&mut self, r: &Reloc, user: &str) -> Result<(Value, i64), LinkError> {
        match &r.target {
            Target::Defined(i) => {
                let entry = r.addend.wrapping_add(r.pc_bias) == 0;
                Ok((self.resolve_symbol(*i, user, entry)?, r.addend))
            }
            // Another file's patch may have added it.
            Target::Undefined(name) => match self
                .resolver
                .global(name)
                .or_else(|| self.resolver.added(None, name, false, None))
            {
                Some(a) => Ok((Value::Absolute(a), r.addend)),
                None => match (self.batch)(name) {
                    // A file saved with this one adds it.
                    Some(value) => Ok((value, r.addend)),
                    // Weak, and defined nowhere: 0, as in the program.
                    None if self.obj.weak_undefined.contains(name) => Ok((Value::Absolute(0), r.addend)),
                    None => Err(LinkError::MissingSymbol {
                        symbol: name.clone(),
                        user: user.to_string(),
                    }),
                },
            },
            Target::Section { section, offset } => {
                if let Some((i, _)) = self.obj.symbol_at(*section, offset.wrapping_add(r.pc_bias)) {
                    let start = self.obj.symbols[i].offset as i64;
                    let entry = offset.wrapping_add(r.pc_bias) == start;
                    return Ok((self.resolve_symbol(i, user, entry)?, offset.wrapping_sub(start)));
                }
                if let Some(copied) = self.copy_string(*section, *offset, r.pc_bias, r.label) {
                    return Ok(copied);
                }
                // Just beside a variable (GCC's `buf - 1`): relative to
                // that variable, wherever it is (the program's, or this
                // patch's copy). A copy of the whole section was a second
                // `buf`, which the function's other references to it did
                // not use. Only in writable data, whose places are state:
                // in constant data a place no symbol covers holds bytes of
                // its own (a literal, a jump table), which the copy brings
                // as they are now.
                let state = self.obj.section(*section).is_some_and(|s| s.state());
                let at = offset.wrapping_add(r.pc_bias);
                if let Some(i) = self
                    .obj
                    .symbol_near(*section, at)
                    .filter(|&i| state && self.obj.symbols[i].kind == Kind::Object)
                    .filter(|&i| beside(&self.obj.symbols[i], at))
                {
                    let start = self.obj.symbols[i].offset as i64;
                    return Ok((self.resolve_symbol(i, user, false)?, offset.wrapping_sub(start)));
                }
                // Just past the end of a constant table that is the
                // program's own (see `holds_relocated`): the loop's bound
                // of that table, which a copy of the section would not end.
                // Only where nothing else can start there: in RELRO data
                // (tables of addresses), or at the section's end; in other
                // constant data an unnamed literal may follow (g++ -O0's
                // "pfx-" just after a one-byte constant was read from the
                // program's bytes beside its constant).
                let nothing_follows = self.obj.section(*section).is_some_and(|s| {
                    s.relro()
                        || s.bytes
                            .as_ref()
                            .is_some_and(|b| usize::try_from(at).is_ok_and(|at| at == b.len()))
                });
                if let Some(i) = self.obj.symbol_near(*section, at).filter(|&i| {
                    let sym = &self.obj.symbols[i];
                    !state
                        && nothing_follows
                        && sym.kind == Kind::Object
                        && sym.size > 0
                        && at == sym.offset as i64 + sym.size as i64
                }) {
                    let start = self.obj.symbols[i].offset as i64;
                    if let Value::Absolute(a) = self.resolve_symbol(i, user, false)? {
                        return Ok((Value::Absolute(a), offset.wrapping_sub(start)));
                    }
                }
                self.uncovered.push((*section, at));
                Ok((self.copy_section(*section, user)?, *offset))
            }
        }
    }

    /// The value of symbol `i` for a reference by `user`; `entry`: the
    /// reference denotes the symbol's first byte (a call, a function
    /// pointer), not a place inside it (a jump table's case).
    fn resolve_symbol(&mut self, i: usize, user: &str, entry: bool) -> Result<Value, LinkError> {
        let sym = &self.obj.symbols[i];
        match sym.kind {
            Kind::Function => {
                if let Some(&off) = self.placed.get(&i) {
                    // A function this patch replaces is reached through
                    // its original entry, as the program reaches it (one
                    // jump more): a later patch of it alone updates the
                    // jump slot, which this code would bypass if it called
                    // this patch's copy directly, running that copy for
                    // good. Its own recursive calls stay direct, and so
                    // does a place inside it (a jump table's case), which
                    // only this copy has.
                    // In a static initializer, though, the copy: it runs
                    // before the redirect, and the original would construct
                    // the program's own globals again.
                    if let Some(orig) = self
                        .replaced
                        .get(&i)
                        .filter(|_| entry && sym.name != user && !self.in_initializer())
                    {
                        return Ok(Value::Absolute(*orig));
                    }
                    return Ok(Value::Region(Part::Code, off));
                }
                // An initializer calling another of the file's (Clang's
                // `_GLOBAL__sub_I_file` calls a `__cxx_global_var_init.N`
                // per global): the copy too, whose references to the
                // program's globals are stand-ins. The program's own would
                // construct them again (a `std::function` the program had
                // set came back empty).
                if self.in_initializer() && self.initializers.contains(&i) {
                    return Ok(Value::Region(Part::Code, self.place_function(i, None)));
                }
                if let Some(a) = self.live(i) {
                    return Ok(Value::Absolute(a));
                }
                // The program has no such function (new, or a static the
                // target's symbols cannot identify): it comes along.
                if !self.placed.contains_key(&i) {
                    self.brought_by.insert(i, user.to_string());
                }
                Ok(Value::Region(Part::Code, self.place_function(i, None)))
            }
            Kind::Tls => Err(LinkError::ThreadLocal {
                symbol: sym.name.clone(),
                user: user.to_string(),
                why: "its address is taken other than through a thread-local access".into(),
            }),
            Kind::Object => {
                if let Some(v) = self.stand_in(i) {
                    return Ok(v);
                }
                if let Some(&v) = self.data.get(&i) {
                    return Ok(v);
                }
                let section = self.obj.section(sym.section);
                let writable = section.is_some_and(|s| !s.constant());
                if self.whole.contains(&sym.section) {
                    // Where the section's copy has it, as the file lays it
                    // out: every place around it agrees.
                    let (name, offset) = (sym.name.clone(), sym.offset);
                    let value = match self.copy_section(sym.section, user)? {
                        Value::Region(part, at) => Value::Region(part, at + offset),
                        Value::Unit(unit, part, at) => Value::Unit(unit, part, at + offset),
                        Value::Absolute(a) => Value::Absolute(a.wrapping_add(offset)),
                    };
                    self.data.insert(i, value);
                    self.out.data.push(LinkedData {
                        name,
                        symbol: Some(i),
                        action: DataAction::New,
                        value,
                    });
                    return Ok(value);
                }
                // Constant data is the program's when it holds the same
                // bytes (a table of addresses, relocated, never is).
                let same_constant = |a: &u64| {
                    sym.relocs.is_empty()
                        && sym
                            .bytes
                            .as_ref()
                            .is_some_and(|b| !b.is_empty() && self.resolver.holds_constant(*a, b))
                };
                let live = match (writable, self.live(i)) {
                    (true, live) => live,
                    (false, Some(a)) if same_constant(&a) => Some(a),
                    // A table of addresses (`static const char *const
                    // names[]`) is the program's too when each address is
                    // the program's and the table holds them: code that
                    // keeps a pointer into it (a cursor) compares it with
                    // the table new code sees (a re-check: the patched
                    // function's own copy never matched the program's
                    // cursor, which ran off its end).
                    (false, Some(a))
                        if !self.obj.symbols[i].relocs.is_empty() && self.holds_relocated(i, a, user)? =>
                    {
                        Some(a)
                    }
                    (false, _) => None,
                };
                let (value, action) = match live {
                    // A variable the new code may write that the program
                    // has read-only (GCC makes a static nothing writes a
                    // constant): the write faults (a re-check: `lut[i] +=
                    // 1` crashed the program 0.1 s after "patched"). "May":
                    // the new compile keeps it writable also when it only
                    // passes its address on.
                    Some(a) if writable && self.resolver.read_only_data(a) => {
                        return Err(LinkError::ReadOnlyInProgram {
                            symbol: crate::diff::static_label(self.obj, i),
                            user: user.to_string(),
                        });
                    }
                    Some(a) => (Value::Absolute(a), DataAction::Kept),
                    None => {
                        // A static the previous compile did not have is
                        // new in this edit: of course it starts over.
                        let new_in_edit = self.with_base && matches!(self.base_names.get(i), None | Some(""));
                        if writable && sym.local && !new_in_edit {
                            self.out.warnings.push(format!(
                                "static {} of {} was not found in the program (its symbols {}): a static the edit adds (or renames) starts from its initial value, and so does this one",
                                crate::diff::static_label(self.obj, i),
                                self.obj.source.as_deref().unwrap_or("the object"),
                                if self.obj.source.is_some() { "have no such static for that source file" } else { "name no source files" }
                            ));
                        }
                        (self.copy_symbol(i, writable, user)?, DataAction::New)
                    }
                };
                self.data.insert(i, value);
                self.out.data.push(LinkedData {
                    name: sym.name.clone(),
                    symbol: Some(i),
                    action,
                    value,
                });
                Ok(value)
            }
        }
    }

    /// In a static initializer's code, a stand-in for a global the
    /// program already has: zeros of its size in the writable part, which
    /// the initializer constructs instead. Run in the process to construct
    /// the patch's new globals, the initializer then leaves the program's
    /// own (constructed when it started, and changed since) alone. `None`
    /// elsewhere, and for the patch's new globals and constants.
    fn stand_in(&mut self, i: usize) -> Option<Value> {
        if !self.in_initializer() {
            return None;
        }
        if let Some(&v) = self.stand_ins.get(&i) {
            return Some(v);
        }
        let sym = &self.obj.symbols[i];
        let writable = self.obj.section(sym.section).is_some_and(|s| !s.constant());
        // Zero-filled: what initializers construct (data with an initial
        // value they only read, and the program's value is the one to read).
        if !writable || sym.bytes.is_some() || self.live(i).is_none() {
            return None;
        }
        let section_align = self.obj.section(sym.section).map_or(8, |s| s.align);
        let off = align(&mut self.out.writable, section_align.clamp(1, PART_ALIGN), 0);
        self.out.writable.resize(off as usize + sym.size as usize, 0);
        let value = Value::Region(Part::Writable, off);
        self.stand_ins.insert(i, value);
        self.out.data.push(LinkedData {
            name: format!(
                "{} (a stand-in its initializer constructs, the program's own left alone)",
                names::readable(&sym.name)
            ),
            symbol: None,
            action: DataAction::New,
            value,
        });
        Some(value)
    }

    /// See [`Linked::constructed`].
    fn constructed(&self) -> Vec<usize> {
        if self.initialized.is_empty() {
            return Vec::new();
        }
        let used: BTreeSet<usize> = self
            .out
            .functions
            .iter()
            .filter(|f| !self.initializers.contains(&f.symbol))
            .flat_map(|f| &self.obj.symbols[f.symbol].relocs)
            .filter_map(|r| self.obj.referenced_symbol(r))
            .collect();
        let mut constructed: Vec<usize> = self
            .out
            .data
            .iter()
            .filter(|d| d.action == DataAction::New)
            .filter_map(|d| d.symbol.filter(|i| self.initialized.contains(i) && used.contains(i)))
            .collect();
        constructed.dedup();
        constructed
    }

    /// Whether the function being linked is one of the object's static
    /// initializers (or a function only they call).
    fn in_initializer(&self) -> bool {
        self.current.is_some_and(|f| self.initializers.contains(&f))
    }

    /// Says so when an address computed in writable data (a `lea`, a
    /// pointer in a table, an immediate; not a load or store, which is the
    /// next variable's) is at a place that is both one past the end of one
    /// variable and the start of the next, and one of the two is the
    /// program's and the other new: the assembler names both `section +
    /// offset`, and no place for the new one makes both readings right.
    /// relive takes the next variable's start (`&buf`, the usual reading);
    /// where the code meant the other's end (`ring + 5` as a loop's bound,
    /// which ran into the program's `nrep`), the new code is wrong, and
    /// the patch said nothing of it. Refusing instead refused the usual
    /// reading too (a new struct before the program's `buf`, then
    /// `snprintf(buf, ...)`).
    fn note_split_boundary(&mut self, part: Part, base: u64, r: &Reloc, user: &str) {
        let Target::Section { section, offset } = r.target else {
            return;
        };
        let Some(sec) = self.obj.section(section) else {
            return;
        };
        if !sec.state() {
            return;
        }
        let at = offset.wrapping_add(r.pc_bias);
        let Some((next, 0)) = self.obj.symbol_at(section, at) else {
            return;
        };
        let Some((before, _)) = self.obj.symbol_at(section, at.wrapping_sub(1)) else {
            return;
        };
        let (b, n) = (&self.obj.symbols[before], &self.obj.symbols[next]);
        let ends_there = (b.offset + b.size) as i64 == at;
        if before == next || !ends_there || b.kind != Kind::Object || n.kind != Kind::Object {
            return;
        }
        let access = part == Part::Code
            && r.r_type == rtype::PC32
            && !crate::verify::lea_of_rip(&self.out.code, base.wrapping_add(r.offset));
        let (b_live, n_live) = (self.live(before).is_some(), self.live(next).is_some());
        if access || b_live == n_live {
            return;
        }
        let (program, new) = match b_live {
            true => (&b.name, &n.name),
            false => (&n.name, &b.name),
        };
        let warning = format!(
            "{user} computes the address {}+{at:#x}, which is both one past the end of {} and the start of {}; {program} is the program's and {new} is new, so no place for {new} makes both readings right: relive took it for the start of {}. If the code means the end of {} (a loop's bound), its new code is wrong; compile the object and its base with -fdata-sections (a section per variable, which tells the two apart; the program need not be rebuilt, its variables are found by name), as relive run and relive watch do",
            sec.name, b.name, n.name, n.name, b.name
        );
        if !self.out.warnings.contains(&warning) {
            self.out.warnings.push(warning);
        }
    }

    fn live(&self, i: usize) -> Option<u64> {
        live_address(self.obj, i, self.resolver, self.base_names)
    }

    /// Whether the program's copy at `a` of constant object `i` holds what
    /// a copy of it would: its bytes with each address in it (8-byte
    /// absolute ones only) resolved, every one to the program's own.
    fn holds_relocated(&mut self, i: usize, a: u64, user: &str) -> Result<bool, LinkError> {
        let obj = self.obj;
        let sym = &obj.symbols[i];
        let Some(mut bytes) = sym.bytes.as_deref().map(<[u8]>::to_vec) else {
            return Ok(false);
        };
        for r in &sym.relocs {
            if r.r_type != rtype::R64 {
                return Ok(false);
            }
            let address = match self.program_literal(r) {
                Some(a) => a,
                None => {
                    let (Value::Absolute(target), addend) = self.resolve_target(r, user)? else {
                        return Ok(false);
                    };
                    target.wrapping_add(addend as u64)
                }
            };
            let Some(field) = usize::try_from(r.offset)
                .ok()
                .and_then(|at| bytes.get_mut(at..at.checked_add(8)?))
            else {
                return Ok(false);
            };
            field.copy_from_slice(&address.to_le_bytes());
        }
        let fields: Vec<usize> = sym.relocs.iter().map(|r| r.offset as usize).collect();
        Ok(self.resolver.holds_addresses(a, &bytes, &fields))
    }

    /// Where the program has the string a table's address `r` points to,
    /// when it points into constant data no symbol covers (gcc -O0 keeps
    /// literals in plain `.rodata`, which a patch copies whole, so a table
    /// of them was never the program's own: a re-check's cursor into one
    /// ran off the copy's end): found by its bytes, as literals are.
    fn program_literal(&self, r: &Reloc) -> Option<u64> {
        let Target::Section { section, offset } = &r.target else {
            return None;
        };
        let sec = self.obj.section(*section)?;
        if sec.executable || sec.writable {
            return None;
        }
        let place = offset.wrapping_add(r.pc_bias);
        if self.obj.symbol_at(*section, place).is_some() {
            return None;
        }
        let bytes = sec.bytes.as_deref()?;
        let start = usize::try_from(place).ok()?;
        let end = start + bytes.get(start..)?.iter().position(|&b| b == 0)?;
        self.resolver.existing_literal(&bytes[start..=end], 1, 0)
    }

    fn copy_symbol(&mut self, i: usize, writable: bool, user: &str) -> Result<Value, LinkError> {
        let sym = &self.obj.symbols[i];
        let part = if writable { Part::Writable } else { Part::ReadOnly };
        let section_align = self.obj.section(sym.section).map_or(8, |s| s.align);
        let buf = self.buffer(part);
        let off = align(buf, section_align.clamp(1, PART_ALIGN), 0);
        match &sym.bytes {
            Some(b) => buf.extend_from_slice(b),
            None => buf.resize(buf.len() + sym.size as usize, 0),
        }
        let value = Value::Region(part, off);
        self.data.insert(i, value);
        let relocs = sym.relocs.clone();
        let name = format!("{} (used by {user})", sym.name);
        for r in &relocs {
            self.relocate(part, off, r, &name)?;
        }
        Ok(value)
    }

    /// The string literal a reference to `offset` (+ `pc_bias`, the place
    /// it denotes) in a string section (`.rodata.str1.*`: NUL-terminated
    /// literals, nothing else) falls in, copied alone, and the addend that
    /// keeps the reference where it was inside it. A patch then brings the
    /// literals its functions use, not every literal of the file (SQLite's
    /// run to hundreds of kilobytes: each patch copied them all).
    /// `None` when the section is not such a one or the place is in no
    /// literal.
    fn copy_string(&mut self, section: usize, offset: i64, pc_bias: i64, label: Option<i64>) -> Option<(Value, i64)> {
        let sec = self.obj.section(section)?;
        if !sec.strings || !sec.name.starts_with(".rodata.str1.") || sec.writable {
            return None;
        }
        let bytes = sec.bytes.as_deref()?;
        let place = usize::try_from(offset.wrapping_add(pc_bias)).ok()?;
        // One past the end of the section's last literal (`" " + 2`): no
        // literal starts there, so the place is that one's end. The whole
        // section was copied for it, while the program kept the literal's
        // start elsewhere (a pointer to it in its data): two copies, and
        // `end - start` was anything (a zstd trial: `nextSrc = base + 2`,
        // and the program crashed reading 4 GiB past its buffer).
        // The same anywhere through the string's own label, whose string
        // ends just before the place (the place is also where the next
        // string starts).
        let past_labels_string = crate::objfile::past_labels_string(bytes, label, place as i64).is_some();
        let end = match place.checked_sub(1) {
            Some(last) if (place == bytes.len() || past_labels_string) && bytes.get(last) == Some(&0) => last,
            _ => place + bytes.get(place..)?.iter().position(|&b| b == 0)?,
        };
        let start = bytes[..end].iter().rposition(|&b| b == 0).map_or(0, |nul| nul + 1);
        let key = (section, start as i64);
        let value = match self.strings.get(&key) {
            Some(&v) => v,
            None => {
                // At the same place modulo the section's alignment: GCC puts
                // literals it copies with aligned vector loads in
                // `.rodata.str1.16` at aligned offsets.
                let align_to = sec.align.clamp(1, PART_ALIGN);
                // The program's own copy, when it has the same bytes (most
                // literals of a changed function did not change): nothing
                // to bring, and pools last longer.
                let literal = &bytes[start..=end];
                let (v, action) = match self
                    .resolver
                    .existing_literal(literal, align_to, start as u64 % align_to)
                {
                    Some(addr) => (Value::Absolute(addr), DataAction::Kept),
                    None => {
                        let buf = self.buffer(Part::ReadOnly);
                        let base = align(buf, align_to, 0);
                        let off = base + start as u64 % align_to;
                        buf.resize(off as usize, 0);
                        buf.extend_from_slice(literal);
                        (Value::Region(Part::ReadOnly, off), DataAction::New)
                    }
                };
                self.strings.insert(key, v);
                self.out.data.push(LinkedData {
                    name: format!("{}+{start:#x}", sec.name),
                    symbol: None,
                    action,
                    value: v,
                });
                v
            }
        };
        Some((value, offset.wrapping_sub(start as i64)))
    }

    fn copy_section(&mut self, section: usize, user: &str) -> Result<Value, LinkError> {
        if let Some(&v) = self.sections.get(&section) {
            return Ok(v);
        }
        let Some(sec) = self.obj.section(section) else {
            return Err(LinkError::MissingSymbol {
                symbol: format!("section {section}"),
                user: user.to_string(),
            });
        };
        if sec.executable {
            return Err(LinkError::CodeReference {
                user: user.to_string(),
                section: sec.name.clone(),
            });
        }
        if sec.tls {
            return Err(LinkError::ThreadLocal {
                symbol: sec.name.clone(),
                user: user.to_string(),
                why: "a thread-local section is referred to other than through a thread-local access".into(),
            });
        }
        // A zero-filled section takes its size in the patch's data: one
        // beyond any pool is a hostile or broken object, said, not a
        // allocation that fails.
        if sec.bytes.is_none() && sec.size > MAX_ZEROED_SECTION {
            return Err(LinkError::Unmovable {
                user: user.to_string(),
                reason: format!(
                    "its section {} is {} bytes of zeros, more than a patch can place ({MAX_ZEROED_SECTION})",
                    sec.name, sec.size
                ),
            });
        }
        let value = self.place_section(section);
        self.relocate_section(section, value)?;
        Ok(value)
    }

    /// A copy of section `section` (of the object: it exists) in the part
    /// its flags call for, recorded as copied; its relocations are
    /// [`Linker::relocate_section`]'s.
    fn place_section(&mut self, section: usize) -> Value {
        let obj = self.obj;
        let sec = obj.section(section).expect("a section of the object");
        let part = if sec.writable { Part::Writable } else { Part::ReadOnly };
        let buf = self.buffer(part);
        let off = align(buf, sec.align.clamp(1, PART_ALIGN), 0);
        match &sec.bytes {
            Some(b) => buf.extend_from_slice(b),
            // `.bss`: its size in zeros. It took no room, and the next
            // data placed lay over it.
            None => buf.resize(buf.len() + sec.size as usize, 0),
        }
        let value = Value::Region(part, off);
        self.sections.insert(section, value);
        self.out.data.push(LinkedData {
            name: sec.name.clone(),
            symbol: None,
            action: DataAction::New,
            value,
        });
        value
    }

    /// Links the relocations of section `section`, copied at `value`.
    fn relocate_section(&mut self, section: usize, value: Value) -> Result<(), LinkError> {
        let obj = self.obj;
        let Value::Region(part, off) = value else {
            return Ok(());
        };
        let sec = obj.section(section).expect("a section of the object");
        for r in &sec.relocs {
            self.relocate(part, off, r, &sec.name)?;
        }
        Ok(())
    }
}

/// Where the three parts of a linked patch are placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Layout {
    pub code: u64,
    pub read_only: u64,
    pub writable: u64,
}

impl Linked {
    /// Bytes of each part: code, read-only, writable.
    pub fn sizes(&self) -> (u64, u64, u64) {
        (
            self.code.len() as u64,
            self.read_only.len() as u64,
            self.writable.len() as u64,
        )
    }

    /// Points `name`'s jump slot at `code_offset` in the code part (a
    /// thunk in front of the new function) instead of the function.
    pub fn point_slot(&mut self, name: &str, code_offset: u64) {
        let Some(&(_, cell)) = self.slots.iter().find(|(n, _)| n == name) else {
            return;
        };
        for f in &mut self.fixups {
            if f.part == Part::ReadOnly && f.offset == cell {
                f.value = Value::Region(Part::Code, code_offset);
            }
        }
    }

    /// Adds unwind information for `thunks` (placed in the code part
    /// after linking): a table of its own, so an exception or a backtrace
    /// passes through a thunk between an old caller and new code.
    pub fn add_thunk_unwind(&mut self, named: Vec<(String, crate::eh_frame::ThunkFrame)>) {
        if named.is_empty() {
            return;
        }
        let thunks: Vec<crate::eh_frame::ThunkFrame> = named.iter().map(|(_, t)| *t).collect();
        let (table, fields) = crate::eh_frame::thunk_eh_frame(&thunks);
        let base = align(&mut self.read_only, 8, 0);
        self.read_only.extend_from_slice(&table);
        for (field, t) in fields.iter().zip(&thunks) {
            self.fixups.push(Fixup {
                part: Part::ReadOnly,
                offset: base + *field as u64,
                r_type: rtype::PC32,
                value: Value::Region(Part::Code, t.offset),
                addend: 0,
                context: "the unwind information of a register-keeping thunk".into(),
            });
        }
        self.thunk_unwind = Some(UnwindTable {
            eh_frame: base,
            len: table.len() as u64,
            object: unwinder_object(&mut self.writable),
        });
        self.thunk_frames = named;
    }

    /// Its unwind tables: the functions', the thunks'.
    pub fn unwind_tables(&self) -> impl Iterator<Item = &UnwindTable> {
        self.unwind.iter().chain(&self.thunk_unwind)
    }

    pub fn is_empty(&self) -> bool {
        self.functions.is_empty() && self.data.is_empty()
    }

    /// Where `value` is with this unit's region at `layout` and the
    /// patch's units' at `units` (a [`Value::Unit`] of a unit not among
    /// them is none of this patch's: 0).
    pub fn address_among(&self, layout: &Layout, units: &[Layout], value: Value) -> u64 {
        let at = |layout: &Layout, part: Part, o: u64| match part {
            Part::Code => layout.code + o,
            Part::ReadOnly => layout.read_only + o,
            Part::Writable => layout.writable + o,
        };
        match value {
            Value::Absolute(a) => a,
            Value::Region(part, o) => at(layout, part, o),
            Value::Unit(unit, part, o) => units.get(unit).map_or(0, |other| at(other, part, o)),
        }
    }

    /// Where a value of this unit's own (a function it placed, data it
    /// copied) is with its region at `layout`.
    pub fn address(&self, layout: &Layout, value: Value) -> u64 {
        self.address_among(layout, &[], value)
    }

    /// The final bytes of the three parts for a region at `layout.base`
    /// (the patch's units' regions at `units`, for what another adds), or
    /// the first relocation that does not fit.
    pub fn finish(&self, layout: &Layout, units: &[Layout]) -> Result<[Vec<u8>; 3], LinkError> {
        let mut parts = [self.code.clone(), self.read_only.clone(), self.writable.clone()];
        for f in &self.fixups {
            let (buf, part_base) = match f.part {
                Part::Code => (&mut parts[0], layout.code),
                Part::ReadOnly => (&mut parts[1], layout.read_only),
                Part::Writable => (&mut parts[2], layout.writable),
            };
            let s = self.address_among(layout, units, f.value);
            let p = part_base.wrapping_add(f.offset);
            match rtype::apply(f.r_type, s, f.addend, p) {
                Ok(field) => write(buf, f.offset as usize, field.bytes()),
                Err(rtype::Unfit::Overflow(value)) => {
                    return Err(LinkError::Overflow {
                        context: f.context.clone(),
                        r_type: f.r_type,
                        name: type_name(f.r_type),
                        value,
                        base: layout.code,
                    })
                }
                Err(rtype::Unfit::Unsupported) => {
                    return Err(LinkError::Unsupported {
                        user: f.context.clone(),
                        r_type: f.r_type,
                        name: type_name(f.r_type),
                    })
                }
            }
        }
        Ok(parts)
    }
}

fn write(buf: &mut [u8], at: usize, bytes: &[u8]) {
    if let Some(dst) = at.checked_add(bytes.len()).and_then(|end| buf.get_mut(at..end)) {
        dst.copy_from_slice(bytes);
    }
}
