//! Loading an SMF module into this process: its code (`r-x`) and
//! read-only data plus GOT (`r--`) in one mapping, its writable data
//! (`rw-`) in another. The code mapping's bytes are built and relocated
//! (every overflow checked) in memory, then installed at once
//! ([`Region::install`]); no page is ever writable and executable at once.
//!
//! Imports resolve through the caller (other modules, then the host: see
//! [`crate::memory::host_symbol`]). A call (`Plt32`) beyond rel32 reach
//! goes through a 14-byte stub in the module's code pages; `GotPcRel` uses
//! a module-local GOT cell per symbol. Under a registry, every reference to
//! one of the module's functions (a call, a pointer in data, a GOT cell)
//! is bound to the function's stable entry instead of its code, and the
//! writable data can be the storage of the version being replaced.

use std::collections::HashMap;
use std::sync::Arc;

use crate::format::{Binding, Module, RelocType, Relocation, SectionKind, Symbol, SymbolType, ARCH_X86_64};
use crate::hash::name_hash;
use crate::memory::{Placement, Region, PAGE};
use relive_x86::{jump, rtype};

/// A call stub's room: `jmp *0(%rip)` then the 8-byte target
/// ([`jump::absolute`], 14 bytes), 16-byte aligned.
const STUB_LEN: u64 = 16;

/// Why a module cannot be loaded. Nothing stays mapped.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("the module is for architecture {0} (e_machine); this loader runs x86-64 (62) code")]
    Architecture(u16),
    #[error("import {symbol} is not defined by any loaded module or the host program")]
    MissingImport { symbol: String },
    #[error("relocation {} at {section}+{offset:#x} to {symbol}: value {value:#x} does not fit 32 bits{}", kind.name(), if kind.needs_low_placement() { " (code built without -fPIC holds 32-bit addresses: the target must be in the low 2 GiB; a host symbol is not: build with -fPIC)" } else { "" })]
    Overflow {
        kind: RelocType,
        section: String,
        offset: u64,
        symbol: String,
        value: i128,
    },
    #[error("relocation field at {section}+{offset:#x} is outside the section's bytes")]
    Field { section: String, offset: u64 },
    #[error("the kept data storage is {have} bytes; this version's data needs {need}")]
    SharedData { have: u64, need: u64 },
    #[error("mapping the module: {0}")]
    Map(std::io::Error),
}

// Not `#[from]`: that would make the error its source as well, and its
// text would be printed twice (the message states it).
impl From<std::io::Error> for LoadError {
    fn from(e: std::io::Error) -> Self {
        LoadError::Map(e)
    }
}

/// A name to an address.
pub type Resolve<'a> = dyn Fn(&str) -> Option<u64> + 'a;

/// How a load binds what the module refers to.
pub struct Bindings<'a> {
    /// Address of a symbol the module imports.
    pub import: &'a Resolve<'a>,
    /// Per symbol of the module (in order): the stable entry that
    /// references to it bind to (a function under a registry), or `None`
    /// for its code or data itself. `None` for the whole: no entries.
    pub entries: Option<&'a [Option<u64>]>,
    /// Writable storage to use instead of fresh data: the previous
    /// version's, when its [`DataLayout`] equals this module's. Its bytes
    /// are kept as they are (the state survives; the new initial values
    /// and data relocations are not applied to it).
    pub data: Option<Arc<Region>>,
}

/// Where the writable data's named objects are: two modules with equal
/// layouts can share one storage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataLayout {
    /// Per writable section, in order: kind, memory size, alignment.
    sections: Vec<(SectionKind, u64, u64)>,
    /// Named objects in writable sections: name, section, offset, size.
    objects: Vec<(String, u32, u64, u64)>,
}

impl DataLayout {
    pub fn of(module: &Module) -> DataLayout {
        DataLayout {
            sections: module
                .sections
                .iter()
                .filter(|s| writable(s.kind))
                .map(|s| (s.kind, s.memory_size, s.alignment))
                .collect(),
            objects: module
                .symbols
                .iter()
                .filter(|s| s.kind == SymbolType::Object)
                .filter_map(|s| {
                    let sec = s.section?;
                    writable(module.sections.get(sec as usize)?.kind)
                        .then(|| (s.name.to_string(), sec, s.value, s.size))
                })
                .collect(),
        }
    }
}

/// The base name of a function-local static as GCC names it (`n` of
/// `n.2`), if `name` is one.
fn static_base(name: &str) -> Option<&str> {
    let (base, number) = name.rsplit_once('.')?;
    (!base.is_empty() && !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit())).then_some(base)
}

/// Function-local statics whose numbers may name another function's
/// static in the other version: GCC names them `n.2` (the static `n` of
/// some function), numbering the statics of one name across the file, so
/// a function added or removed before them shifts the numbers (values
/// were copied into the wrong function's static). Taken as shifted when
/// the two versions have a different number of statics of that name.
struct Renumbered<'a> {
    new: HashMap<&'a str, usize>,
    old: HashMap<&'a str, usize>,
}

impl<'a> Renumbered<'a> {
    fn between(new: &'a LoadedModule, old: &'a LoadedModule) -> Renumbered<'a> {
        Renumbered {
            new: new.statics_by_base(),
            old: old.statics_by_base(),
        }
    }

    /// Whether `name` is such a static whose number may have shifted.
    fn shifted(&self, name: &str) -> bool {
        static_base(name).is_some_and(|base| self.new.get(base) != self.old.get(base))
    }

    /// Whether the old version had statics of `name`'s base name.
    fn old_had(&self, name: &str) -> bool {
        static_base(name).is_some_and(|base| self.old.contains_key(base))
    }
}

/// Whether `symbol` is a named function the module defines: one with a
/// function key in a registry (`name`, or `name#N` for the Nth further
/// local function of that name) and a stable entry there.
pub fn has_function_key(symbol: &Symbol) -> bool {
    symbol.kind == SymbolType::Function && symbol.section.is_some() && !symbol.name.is_empty()
}

/// A module in memory, relocated and protected. Dropping it unmaps its
/// code; its writable data lives as long as a version shares it.
#[derive(Debug)]
pub struct LoadedModule {
    code: Region,
    data: Arc<Region>,
    /// Each section's address.
    sections: Vec<u64>,
    /// The names of `defined`, one after another.
    names: String,
    /// Defined named symbols; lookups go through `by_hash` (the low 32
    /// bits of [`name_hash`]) and compare strings only on a match.
    defined: Vec<Defined>,
    by_hash: HashIndex,
    /// Every function bound to an entry, in symbol order.
    function_code: Vec<BoundFunction>,
    /// Every pointer field of the writable data (an Abs64 relocation):
    /// (offset in the data mapping, the value this version's link gives
    /// it), sorted by offset. What lets a reload tell a pointer the
    /// program never changed from one it did (see
    /// [`LoadedModule::follow_pointers`]).
    pointer_fields: Vec<(u64, u64)>,
}

/// A function bound to a stable entry when loaded.
#[derive(Debug, Clone, Copy)]
struct BoundFunction {
    /// Its symbol's index in the module.
    symbol: u32,
    /// Its record in `LoadedModule::defined` (`NO_DEFINED` if it has none:
    /// an entry given for a nameless symbol).
    defined: u32,
    code: u64,
}

const NO_DEFINED: u32 = u32::MAX;

#[derive(Debug)]
struct Defined {
    hash: u32,
    /// Where the name is in `LoadedModule::names`.
    name: std::ops::Range<u32>,
    kind: SymbolType,
    exported: bool,
    /// What references bind to: a function's stable entry under a registry.
    bound: u64,
    /// The code or data itself.
    at: u64,
    size: u64,
}

/// An open-addressing table from name hash to symbol index: built in one
/// pass (sorting the hashes instead cost more than the relocating).
#[derive(Debug)]
struct HashIndex {
    /// Symbol index per slot, `EMPTY` if free; at most half full.
    slots: Vec<u32>,
}

impl HashIndex {
    const EMPTY: u32 = u32::MAX;

    fn new(hashes: impl ExactSizeIterator<Item = u32>) -> HashIndex {
        let size = (hashes.len() * 2).next_power_of_two().max(2);
        let mut slots = vec![HashIndex::EMPTY; size];
        for (i, hash) in hashes.enumerate() {
            let mut at = hash as usize & (size - 1);
            while slots[at] != HashIndex::EMPTY {
                at = (at + 1) & (size - 1);
            }
            slots[at] = i as u32;
        }
        HashIndex { slots }
    }

    /// Indices that may have `hash`: the probe run from its home slot.
    fn candidates(&self, hash: u32) -> impl Iterator<Item = u32> + '_ {
        let mask = self.slots.len() - 1;
        let home = hash as usize & mask;
        (0..self.slots.len())
            .map(move |k| self.slots[(home + k) & mask])
            .take_while(|&i| i != HashIndex::EMPTY)
    }
}

struct Layout {
    /// Offset of each section in its mapping (code or data).
    sections: Vec<u64>,
    stubs: u64,
    got: u64,
    /// Page-aligned boundaries in the code mapping: end of the `r-x`
    /// pages (start of the `r--` ones), end of the mapping. Equal when the
    /// read-only data and GOT share the last code page.
    code_map: [u64; 2],
    data_len: u64,
}

/// Places the sections `kinds` accepts one after another from `at`, each
/// at its alignment; returns where the last ends.
fn place(module: &Module, sections: &mut [u64], kinds: fn(SectionKind) -> bool, mut at: u64) -> u64 {
    for (i, s) in module.sections.iter().enumerate() {
        if kinds(s.kind) {
            at = at.next_multiple_of(s.alignment.max(1));
            sections[i] = at;
            at += s.memory_size;
        }
    }
    at
}

/// Lays the module out: code, stubs, then read-only data and the GOT in
/// the code mapping; writable data and bss in the data mapping.
///
/// The read-only part goes into the unused tail of the last code page when
/// it fits there (as in an ELF linked with `-z noseparate-code`): it is
/// then executable, never writable, and the load saves a page and the
/// protection change that splits the mapping (measured: about 4 µs of a
/// load into fresh memory). Otherwise it starts on a page of its own,
/// `r--`.
fn layout(module: &Module, stubs: usize, got_cells: usize) -> Layout {
    let mut sections = vec![0; module.sections.len()];
    let code_end = place(module, &mut sections, |k| k == SectionKind::Code, 0);
    let stub_at = code_end.next_multiple_of(16);
    let stubs_end = stub_at + STUB_LEN * stubs as u64;
    let code_pages = stubs_end.next_multiple_of(PAGE).max(PAGE);
    let mut read_only = |from: u64| {
        let got = place(module, &mut sections, |k| k == SectionKind::RoData, from).next_multiple_of(8);
        (got, got + 8 * got_cells as u64)
    };
    let (mut got, ro_end) = read_only(stubs_end);
    let mut code_map = [code_pages, code_pages];
    if ro_end > code_pages {
        let (own_page_got, ro_end) = read_only(code_pages);
        got = own_page_got;
        code_map[1] = ro_end.next_multiple_of(PAGE);
    }
    let data_end = place(module, &mut sections, writable, 0);
    Layout {
        sections,
        stubs: stub_at,
        got,
        code_map,
        data_len: data_end.next_multiple_of(PAGE).max(PAGE),
    }
}

/// The ranges of the code image that may hold non-zero bytes, from its
/// pieces' (offset, length): sorted, and merged where less than a page
/// apart (a page in between is written anyway). A section's memory beyond
/// its file bytes is not among them: it stays untouched zero pages.
fn content(pieces: impl Iterator<Item = (u64, u64)>) -> Vec<std::ops::Range<usize>> {
    let mut pieces: Vec<(u64, u64)> = pieces.filter(|&(_, len)| len > 0).collect();
    pieces.sort_unstable();
    let mut parts: Vec<std::ops::Range<usize>> = Vec::with_capacity(pieces.len());
    for (offset, len) in pieces {
        let (start, end) = (offset as usize, (offset + len) as usize);
        match parts.last_mut() {
            Some(last) if start <= last.end + PAGE as usize => last.end = last.end.max(end),
            _ => parts.push(start..end),
        }
    }
    parts
}

/// No stub or GOT cell.
const NONE: u64 = u64::MAX;

/// What references to one symbol of a module being loaded bind to.
#[derive(Clone, Copy)]
struct Bound {
    addr: u64,
    /// Offset of its stub in the code mapping, or `NONE`.
    stub: u64,
    /// Offset of its GOT cell in the code mapping, or `NONE`.
    got: u64,
}

/// Where one section of a module being loaded went.
struct Placed {
    addr: u64,
    /// Offset in its mapping (the code image or the data).
    offset: u64,
    /// Bytes from the file: relocations may patch these alone.
    file_size: u64,
    writable: bool,
}

/// The 32-bit field `target + addend - place`, if it fits.
#[inline(always)]
fn pc32(target: u64, addend: i64, place: u64) -> Option<[u8; 8]> {
    let field = rtype::apply(rtype::PC32, target, addend, place).ok()?;
    let mut out = [0u8; 8];
    out[..4].copy_from_slice(field.bytes());
    Some(out)
}

/// The error for relocation `r` whose value (`target + addend - place`)
/// does not fit its field.
#[cold]
fn overflow(module: &Module, r: &Relocation, target: u64, place: u64) -> LoadError {
    LoadError::Overflow {
        kind: r.kind,
        section: module.sections[r.section as usize].name.to_string(),
        offset: r.offset,
        symbol: module.symbols[r.symbol as usize].name.to_string(),
        value: i128::from(target) + i128::from(r.addend) - i128::from(place),
    }
}

/// Copies `bytes` into `image` at `offset` (inside it by the layout).
fn put(image: &mut [u8], offset: u64, bytes: &[u8]) {
    let at = offset as usize;
    image[at..at + bytes.len()].copy_from_slice(bytes);
}

fn writable(kind: SectionKind) -> bool {
    matches!(kind, SectionKind::Data | SectionKind::Bss)
}

impl LoadedModule {
    /// Maps and relocates `module` on its own (no stable entries, fresh
    /// data); `import` gives the address of each symbol it does not define.
    pub fn load(module: &Module, import: &dyn Fn(&str) -> Option<u64>) -> Result<LoadedModule, LoadError> {
        LoadedModule::load_with(
            module,
            Bindings {
                import,
                entries: None,
                data: None,
            },
        )
    }

    /// Maps and relocates `module` as `bindings` say.
    ///
    /// Section bytes are copied straight into the mapping and relocated
    /// there; nothing is allocated per symbol or relocation (names live in
    /// one buffer), because at a few hundred symbols that bookkeeping cost
    /// more than the relocating itself.
    pub fn load_with(module: &Module, bindings: Bindings) -> Result<LoadedModule, LoadError> {
        if module.arch != ARCH_X86_64 {
            return Err(LoadError::Architecture(module.arch));
        }
        // Alone, no symbol is bound to an entry.
        if let Some(entries) = bindings.entries {
            assert_eq!(entries.len(), module.symbols.len(), "entries of another module");
        }
        let entry = |i: usize| bindings.entries.and_then(|e| e[i]);
        // Per symbol: what references bind to, its stub and GOT cell
        // (offsets in the code mapping; `NONE`: none). One record each,
        // one allocation for all.
        let mut bound = vec![
            Bound {
                addr: 0,
                stub: NONE,
                got: NONE
            };
            module.symbols.len()
        ];
        // Numbered here, placed once the layout is known: a GOT cell per
        // symbol reached through GotPcRel, and a stub per symbol a Plt32
        // calls whose address is not the module's own code (an import, or
        // a function bound to its stable entry), for a call that cannot
        // reach it directly. No other symbol needs a stub: under a
        // registry, giving every function one made the code a page longer.
        let mut got_cells = 0u64;
        let mut stub_count = 0u64;
        for r in &module.relocations {
            let i = r.symbol as usize;
            let this = &mut bound[i];
            match r.kind {
                RelocType::GotPcRel if this.got == NONE => {
                    this.got = got_cells;
                    got_cells += 1;
                }
                RelocType::Plt32
                    if this.stub == NONE && (module.symbols[i].section.is_none() || entry(i).is_some()) =>
                {
                    this.stub = stub_count;
                    stub_count += 1;
                }
                _ => {}
            }
        }
        let plan = layout(module, stub_count as usize, got_cells as usize);
        let [ro, end] = plan.code_map;
        // Code with 32-bit absolute addresses (built without -fPIC) and
        // its data go in the low 2 GiB.
        let placement = match module.relocations.iter().any(|r| r.kind.needs_low_placement()) {
            true => Placement::Low,
            false => Placement::Anywhere,
        };
        let mut code = Region::new_code_at(end, ro, placement)?;
        // The code mapping's bytes, built here and installed at once.
        let mut image = vec![0u8; code.len() as usize];
        let shared = bindings.data.is_some();
        let mut data = match bindings.data {
            Some(region) if region.len() < plan.data_len => {
                return Err(LoadError::SharedData {
                    have: region.len(),
                    need: plan.data_len,
                })
            }
            Some(region) => region,
            None => Arc::new(Region::new_at(plan.data_len, placement)?),
        };
        let placed: Vec<Placed> = module
            .sections
            .iter()
            .zip(&plan.sections)
            .map(|(s, &offset)| {
                let writable = writable(s.kind);
                Placed {
                    addr: if writable { data.addr() } else { code.addr() } + offset,
                    offset,
                    file_size: s.bytes.len() as u64,
                    writable,
                }
            })
            .collect();

        // Every symbol's address (stable entries for functions when bound);
        // imports resolved now. The same pass records the defined symbols
        // for lookups.
        let mut defined = Vec::with_capacity(module.symbols.len());
        let mut names = String::with_capacity(module.symbols.iter().map(|s| s.name.len()).sum());
        let mut function_code = Vec::with_capacity(if bindings.entries.is_some() {
            module.symbols.len()
        } else {
            0
        });
        for (i, s) in module.symbols.iter().enumerate() {
            // Where a defined symbol is; what references to it bind to.
            let at = s.section.map(|sec| placed[sec as usize].addr + s.value);
            let addr = match (at, entry(i)) {
                (None, _) => (bindings.import)(&s.name).ok_or_else(|| LoadError::MissingImport {
                    symbol: s.name.to_string(),
                })?,
                (Some(_), Some(entry)) => entry,
                (Some(at), None) => at,
            };
            let this = &mut bound[i];
            this.addr = addr;
            if this.got != NONE {
                this.got = plan.got + 8 * this.got;
            }
            if this.stub != NONE {
                this.stub = plan.stubs + STUB_LEN * this.stub;
            }
            if let Some(at) = at {
                let named = !s.name.is_empty() && matches!(s.kind, SymbolType::Function | SymbolType::Object);
                if entry(i).is_some() {
                    function_code.push(BoundFunction {
                        symbol: i as u32,
                        defined: if named { defined.len() as u32 } else { NO_DEFINED },
                        code: at,
                    });
                }
                if named {
                    let name = names.len() as u32..(names.len() + s.name.len()) as u32;
                    names.push_str(&s.name);
                    defined.push(Defined {
                        hash: name_hash(s.name.as_bytes()) as u32,
                        name,
                        kind: s.kind,
                        exported: s.binding != Binding::Local,
                        bound: addr,
                        at,
                        size: s.size,
                    });
                }
            }
        }

        // Section bytes (kept storage keeps its own), then relocations:
        // code-side sections into the image, writable ones into fresh data.
        let mut fresh_data = (!shared).then(|| Arc::get_mut(&mut data).expect("fresh data has one owner"));
        for (s, at) in module.sections.iter().zip(&placed) {
            if !at.writable {
                put(&mut image, at.offset, &s.bytes);
            } else if let Some(fresh) = fresh_data.as_deref_mut() {
                fresh.write(at.offset, &s.bytes);
            }
        }
        let mut pointer_fields = Vec::new();
        for r in &module.relocations {
            let target = &placed[r.section as usize];
            if target.writable && fresh_data.is_none() && r.kind != RelocType::Abs64 {
                continue; // the kept storage keeps its values
            }
            let symbol = &bound[r.symbol as usize];
            let p = target.addr + r.offset;
            let (field, width): ([u8; 8], u64) = match r.kind {
                RelocType::Abs64 => (symbol.addr.wrapping_add_signed(r.addend).to_le_bytes(), 8),
                RelocType::Pc32 => (
                    pc32(symbol.addr, r.addend, p).ok_or_else(|| overflow(module, r, symbol.addr, p))?,
                    4,
                ),
                RelocType::Plt32 => match (pc32(symbol.addr, r.addend, p), symbol.stub) {
                    (Some(field), _) => (field, 4),
                    (None, NONE) => return Err(overflow(module, r, symbol.addr, p)),
                    (None, stub) => {
                        let stub = code.addr() + stub;
                        (pc32(stub, r.addend, p).ok_or_else(|| overflow(module, r, stub, p))?, 4)
                    }
                },
                RelocType::GotPcRel => {
                    let cell = code.addr() + symbol.got;
                    (pc32(cell, r.addend, p).ok_or_else(|| overflow(module, r, cell, p))?, 4)
                }
                RelocType::Abs32 | RelocType::Abs32S => {
                    let r_type = match r.kind {
                        RelocType::Abs32 => rtype::R32,
                        _ => rtype::R32S,
                    };
                    let field = rtype::apply(r_type, symbol.addr, r.addend, p)
                        .map_err(|_| overflow(module, r, symbol.addr, 0))?;
                    let mut out = [0u8; 8];
                    out[..4].copy_from_slice(field.bytes());
                    (out, 4)
                }
            };
            // Only the section's file bytes are relocatable (a hand-built
            // module may claim otherwise).
            if r.offset.checked_add(width).is_none_or(|end| end > target.file_size) {
                return Err(LoadError::Field {
                    section: module.sections[r.section as usize].name.to_string(),
                    offset: r.offset,
                });
            }
            let at = target.offset + r.offset;
            let field = &field[..width as usize];
            if !target.writable {
                put(&mut image, at, field);
                continue;
            }
            if r.kind == RelocType::Abs64 {
                pointer_fields.push((at, symbol.addr.wrapping_add_signed(r.addend)));
            }
            // Kept storage keeps its values.
            if let Some(fresh) = fresh_data.as_deref_mut() {
                fresh.write(at, field);
            }
        }
        pointer_fields.sort_unstable_by_key(|&(offset, _)| offset);
        for symbol in &bound {
            if symbol.stub != NONE {
                put(&mut image, symbol.stub, &jump::absolute(symbol.addr));
            }
            if symbol.got != NONE {
                put(&mut image, symbol.got, &symbol.addr.to_le_bytes());
            }
        }
        let parts = content(
            placed
                .iter()
                .filter(|p| !p.writable)
                .map(|p| (p.offset, p.file_size))
                .chain([(plan.stubs, STUB_LEN * stub_count), (plan.got, 8 * got_cells)]),
        );
        code.install_parts(&image, ro, &parts)?;

        let by_hash = HashIndex::new(defined.iter().map(|d| d.hash));
        Ok(LoadedModule {
            code,
            data,
            sections: placed.iter().map(|p| p.addr).collect(),
            names,
            defined,
            by_hash,
            function_code,
            pointer_fields,
        })
    }

    fn name_of(&self, d: &Defined) -> &str {
        &self.names[d.name.start as usize..d.name.end as usize]
    }

    /// Every defined symbol named `name` (functions and objects).
    fn named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Defined> + 'a {
        let hash = name_hash(name.as_bytes()) as u32;
        self.by_hash
            .candidates(hash)
            .map(|i| &self.defined[i as usize])
            .filter(move |d| d.hash == hash)
            .filter(move |d| self.name_of(d) == name)
    }

    /// What references to the one function named `name` bind to (its
    /// stable entry under a registry); `None` when no function or more than
    /// one (local functions of one name) has that name. A hash lookup: a
    /// registry's lookup by name read every name before it.
    pub(crate) fn sole_function_binding(&self, name: &str) -> Option<u64> {
        let mut functions = self.named(name).filter(|d| d.kind == SymbolType::Function);
        let only = functions.next()?;
        functions.next().is_none().then_some(only.bound)
    }

    /// The one data object named `name` (a local name defined twice names
    /// nothing unambiguous).
    fn object<'a>(&'a self, name: &'a str) -> Option<&'a Defined> {
        let mut objects = self.named(name).filter(|d| d.kind == SymbolType::Object);
        let first = objects.next()?;
        objects.next().is_none().then_some(first)
    }

    /// The address of exported symbol `name` (a function's stable entry
    /// when loaded under a registry).
    pub fn symbol(&self, name: &str) -> Option<u64> {
        self.named(name).find(|d| d.exported).map(|d| d.bound)
    }

    /// Calls exported function `name`'s code directly with up to six
    /// integer arguments; `None` if the module exports no such function.
    ///
    /// # Safety
    /// As [`crate::memory::call_in`]: `name` must take at most six integer
    /// or pointer arguments and return an integer (or nothing), and running
    /// it with `args` must be sound.
    pub unsafe fn call(&self, name: &str, args: &[u64]) -> Option<u64> {
        let addr = self.function(name)?;
        // SAFETY: `addr` is an exported function of this module's code
        // region; the caller vouches for its signature and arguments.
        unsafe { crate::memory::call_in(&self.code, addr, crate::memory::six_args(args)) }
    }

    /// The code address of exported function `name` (not a stable entry).
    pub fn function(&self, name: &str) -> Option<u64> {
        self.named(name)
            .find(|d| d.exported && d.kind == SymbolType::Function)
            .map(|d| d.at)
    }

    /// Every function bound to a stable entry when loaded, in symbol
    /// order: (index of its symbol in the module, its code address).
    pub fn function_code(&self) -> impl ExactSizeIterator<Item = (u32, u64)> + '_ {
        self.function_code.iter().map(|f| (f.symbol, f.code))
    }

    /// The names of [`LoadedModule::function_code`]'s functions, in the
    /// same order (`""` for one without a name): what a registry compares
    /// a new version's functions with, without a copy of its own.
    pub fn function_names(&self) -> impl Iterator<Item = &str> + '_ {
        self.function_code
            .iter()
            .map(|f| match self.defined.get(f.defined as usize) {
                Some(d) => self.name_of(d),
                None => "",
            })
    }

    /// The current bytes of data object `name`.
    pub fn read_object(&self, name: &str) -> Option<Vec<u8>> {
        let o = self.object(name)?;
        self.data.read(o.at, o.size).or_else(|| self.code.read(o.at, o.size))
    }

    /// Where each section was placed.
    pub fn section_addresses(&self) -> &[u64] {
        &self.sections
    }

    /// The code mapping's address range.
    pub fn range(&self) -> (u64, u64) {
        (self.code.addr(), self.code.addr() + self.code.len())
    }

    /// The mapping holding the code (for [`crate::memory::call_in`]).
    pub fn code_region(&self) -> &Region {
        &self.code
    }

    /// The writable data's storage (shared with other versions when their
    /// layouts are equal).
    pub fn data_region(&self) -> &Arc<Region> {
        &self.data
    }

    /// The objects of `old` that this version also has whose values cannot
    /// be copied, so they start from the file's: those whose size changed,
    /// and function-local statics the compiler may have renumbered (see
    /// [`Renumbered`]).
    pub fn resized_objects(&self, old: &LoadedModule) -> Vec<String> {
        let renumbered = Renumbered::between(self, old);
        let mut resized: Vec<String> = self
            .defined
            .iter()
            .filter(|d| d.kind == SymbolType::Object)
            .filter_map(|new| {
                let name = self.name_of(new);
                if renumbered.shifted(name) {
                    return renumbered.old_had(name).then(|| name.to_string());
                }
                let previous = old.object(name)?;
                (self.object(name)?.size != previous.size).then(|| name.to_string())
            })
            .collect();
        resized.sort();
        resized
    }

    /// How many function-local statics (as GCC names them) this version
    /// defines, by base name.
    fn statics_by_base(&self) -> HashMap<&str, usize> {
        let mut counts = HashMap::new();
        for d in self
            .defined
            .iter()
            .filter(|d| d.kind == SymbolType::Object && !d.exported)
        {
            if let Some(base) = static_base(self.name_of(d)) {
                *counts.entry(base).or_insert(0) += 1;
            }
        }
        counts
    }

    /// Copies the value of every object of `old` that this version also
    /// has, by name and with the same size, into this version's data.
    /// Returns the names copied; only before the data is shared.
    ///
    /// A pointer field among them (see [`LoadedModule::follow_pointers`])
    /// that still holds what `old`'s link gave it gets what this version's
    /// link gives it; one the program pointed into an object that is
    /// copied points into that object's new copy, at the same offset.
    /// Other pointers keep their values.
    pub fn copy_objects_from(&mut self, old: &LoadedModule) -> Vec<String> {
        let (start, end) = (self.data.addr(), self.data.addr() + self.data.len());
        // (offset here, bytes, name, offset in old's data)
        let mut writes = Vec::new();
        // Each copied object: (old address, size, new address).
        let mut moved = Vec::new();
        let renumbered = Renumbered::between(self, old);
        for new in self.defined.iter().filter(|d| d.kind == SymbolType::Object) {
            let name = self.name_of(new);
            if renumbered.shifted(name) {
                continue;
            }
            let Some(previous) = self.object(name).and(old.object(name)) else {
                continue;
            };
            if previous.size != new.size || !(start..end).contains(&new.at) {
                continue;
            }
            if let Some(bytes) = old.data.read(previous.at, previous.size) {
                writes.push((new.at - start, bytes, name.to_string(), previous.at - old.data.addr()));
                moved.push((previous.at, previous.size, new.at));
            }
        }
        moved.sort_unstable();
        let data = Arc::get_mut(&mut self.data).expect("fresh data has one owner");
        let mut copied = Vec::new();
        for (offset, mut bytes, name, old_offset) in writes {
            let first = self.pointer_fields.partition_point(|&(at, _)| at < offset);
            for &(at, linked) in &self.pointer_fields[first..] {
                let k = (at - offset) as usize;
                let Some(field) = bytes.get_mut(k..k + 8) else { break };
                let value = u64::from_le_bytes(field.try_into().expect("8 bytes"));
                let untouched = old.linked_pointer(old_offset + k as u64) == Some(value);
                let follows = if untouched {
                    Some(linked)
                } else {
                    translate(&moved, value)
                };
                if let Some(follows) = follows {
                    field.copy_from_slice(&follows.to_le_bytes());
                }
            }
            data.write(offset, &bytes);
            copied.push(name);
        }
        copied.sort();
        copied
    }

    /// After a reload that kept `old`'s writable storage (this version
    /// shares it): each pointer field the program has not changed since
    /// `old` was linked (it still holds what that link gave it) gets what
    /// this version's link gives it. So a `const char *` initialised to a
    /// literal follows the literal into the new code mapping, and an
    /// imported object's address follows the object, instead of keeping
    /// an address in the retired version that `free_retired` unmaps. A
    /// pointer the program changed keeps its value. Each field is replaced
    /// with one compare-and-exchange, so a thread storing to it at the
    /// same moment keeps its own value.
    pub fn follow_pointers(&self, old: &LoadedModule) {
        debug_assert!(Arc::ptr_eq(&self.data, &old.data), "storage kept from old");
        for &(offset, linked) in &self.pointer_fields {
            if let Some(before) = old.linked_pointer(offset) {
                if before != linked && offset.is_multiple_of(8) {
                    self.data.replace_cell(offset, before, linked);
                }
            }
        }
    }

    /// What this version's link gave the pointer field at `offset` in its
    /// data, if there is one.
    fn linked_pointer(&self, offset: u64) -> Option<u64> {
        let i = self.pointer_fields.binary_search_by_key(&offset, |&(at, _)| at).ok()?;
        Some(self.pointer_fields[i].1)
    }
}

/// `value` moved along with the copied object it points into: `moved`
/// holds (old address, size, new address), sorted.
fn translate(moved: &[(u64, u64, u64)], value: u64) -> Option<u64> {
    let i = moved.partition_point(|&(at, _, _)| at <= value).checked_sub(1)?;
    let (at, size, new) = moved[i];
    (value - at < size).then(|| new + (value - at))
}

#[cfg(test)]
mod tests {
    use super::translate;

    #[test]
    fn a_pointer_moves_with_the_object_it_points_into_and_only_then() {
        // (old address, size, new address), sorted by old address.
        let moved = [(0x1000, 16, 0x9000), (0x1010, 8, 0x8000), (0x2000, 0, 0x7000)];
        assert_eq!(translate(&moved, 0x1000), Some(0x9000));
        assert_eq!(translate(&moved, 0x100f), Some(0x900f));
        assert_eq!(translate(&moved, 0x1010), Some(0x8000), "the next object's start");
        assert_eq!(translate(&moved, 0x1018), None, "one past the end");
        assert_eq!(translate(&moved, 0xfff), None, "before every object");
        assert_eq!(translate(&moved, 0x2000), None, "an empty object holds nothing");
        assert_eq!(translate(&[], 0x1000), None);
    }
}
