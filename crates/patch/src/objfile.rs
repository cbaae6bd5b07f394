//! An ELF relocatable object (`.o`) read into the pieces the patch engine
//! works with: each defined function and data symbol, its bytes, and the
//! relocations that fall inside it.

use std::path::Path;

use object::elf;
use object::read::{Object, ObjectSection, ObjectSymbol, RelocationFlags, RelocationTarget, SymbolSection};
use object::{SectionIndex, SectionKind, SymbolKind as ObjKind};
use serde::Serialize;

use crate::code::Decoded;
use crate::decode_once::{decode_distinct, Distinct};
use crate::error::{PatchError, Result};
use crate::file_slice::FileSlice;

/// Zero-filled sections larger than this are refused: a patch does not
/// bring gigabytes of new state, and the size is taken from the file.
const MAX_ZERO_FILLED: u64 = 256 << 20;

pub use relive_x86::rtype;

/// What a symbol is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Function,
    Object,
    Tls,
}

impl Kind {
    /// Its name in relive's output (text and JSON alike).
    pub fn name(self) -> &'static str {
        match self {
            Kind::Function => "function",
            Kind::Object => "object",
            Kind::Tls => "tls",
        }
    }
}

/// Where a relocation points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A defined symbol of this object (by index into [`ObjectFile::symbols`]).
    Defined(usize),
    /// A symbol this object does not define (`printf`, another unit's global).
    Undefined(String),
    /// A place in a section, through the section's own symbol (GCC's way
    /// of addressing statics and string literals: `.bss - 4`).
    Section { section: usize, offset: i64 },
}

/// One relocation inside a symbol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reloc {
    /// Offset of the relocated field from the symbol's start.
    pub offset: u64,
    /// `R_X86_64_*`.
    pub r_type: u32,
    pub target: Target,
    pub addend: i64,
    /// For a PC-relative field: the distance from the field to the end of
    /// its instruction (4 unless an immediate follows), so the place it
    /// denotes is `target + addend + pc_bias`.
    pub pc_bias: i64,
    /// Not in the object: the assembler resolved a branch or RIP-relative
    /// reference to another function of the same section itself, and relive
    /// added the relocation (found by decoding) so the code can move.
    pub synthetic: bool,
    /// For a reference through an assembler-private label into a section
    /// of strings (`.LC4+2`): the label's place. The assembler keeps the
    /// label there (not the section) so that a place just past the end
    /// of the label's string (`" " + 2`, a loop's end) stays that
    /// string's, which the place alone cannot tell from the start of the
    /// string after it.
    pub label: Option<i64>,
}

impl Reloc {
    /// Bytes of the field this relocation writes.
    pub fn width(&self) -> u64 {
        rtype::width(self.r_type)
    }

    /// Whether the field holds `target - place` (so the addend is offset by
    /// the distance from the field to the end of the instruction).
    pub fn pc_relative(&self) -> bool {
        rtype::pc_relative(self.r_type)
    }
}

/// When `at` is just past the end of the string its reference's `label`
/// starts (the place of `" " + 2`), that string's start and the distance
/// from it to `at`.
pub(crate) fn past_labels_string(bytes: &[u8], label: Option<i64>, at: i64) -> Option<(i64, u64)> {
    let start = usize::try_from(label?).ok()?;
    let place = usize::try_from(at).ok()?;
    let string = bytes.get(start..place)?;
    let first_nul = string.iter().position(|&b| b == 0)?;
    (first_nul + 1 == string.len()).then_some((start as i64, string.len() as u64))
}

/// A defined function or data symbol.
#[derive(Debug, Clone)]
pub struct Symbol {
    pub name: String,
    pub kind: Kind,
    pub local: bool,
    /// `STB_WEAK`: an inline function or template instantiation (C++),
    /// which any unit or library that uses it may define.
    pub weak: bool,
    /// `STB_GNU_UNIQUE`: one of the whole program however many files
    /// define it (GCC's binding for a function-local static of an inline
    /// function, and a template's static member).
    pub unique: bool,
    pub section: usize,
    /// Offset in its section.
    pub offset: u64,
    pub size: u64,
    /// Its bytes (a range of its section's); `None` for zero-filled
    /// (`.bss`) data.
    pub bytes: Option<FileSlice>,
    pub relocs: Vec<Reloc>,
    /// For a function: its decoded instructions (shared with the other
    /// object of a pair when its bytes are the same).
    pub decoded: Option<std::sync::Arc<Decoded>>,
    /// Why this function's code cannot be moved, if it cannot.
    pub problem: Option<String>,
    /// Short branches (`jmp`/`jcc` rel8) that leave the function: the
    /// assembler relaxed a same-section tail call. The linker gives each an
    /// island (`jmp rel32`) next to the copied body, after it or before.
    pub short_exits: Vec<ShortExit>,
}

impl Symbol {
    /// `bytes` (its bytes, or a value of it) with the fields its
    /// relocations set made zeros: an address differs from place to place
    /// and build to build, so two compiles' bytes are compared without
    /// them (the diff, and verify's initial values).
    pub fn unrelocated(&self, mut bytes: Vec<u8>) -> Vec<u8> {
        for r in &self.relocs {
            let start = (r.offset as usize).min(bytes.len());
            let end = (r.offset as usize).saturating_add(r.width() as usize).min(bytes.len());
            bytes[start..end].fill(0);
        }
        bytes
    }
}

/// A rel8 branch out of a function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShortExit {
    /// Offset of the 1-byte displacement from the function's start.
    pub field: u64,
    /// Where it goes, as an offset in the function's section.
    pub target: i64,
}

/// A section, as far as relocation targets need it.
#[derive(Debug, Clone)]
pub struct Section {
    pub name: String,
    /// Its bytes (`None` for `.bss`-like sections): a range of the
    /// file's, not a copy.
    pub bytes: Option<FileSlice>,
    /// A mergeable string section (`.rodata.str1.1`): its contents are
    /// NUL-terminated literals, identified by their text.
    pub strings: bool,
    /// `SHF_WRITE`: the running program may have changed its contents.
    pub writable: bool,
    /// `SHF_EXECINSTR`.
    pub executable: bool,
    /// `SHF_TLS`: per-thread data.
    pub tls: bool,
    /// `SHF_ALLOC`: part of a program's memory. Other sections (DWARF,
    /// notes, `.comment`) keep neither bytes nor relocations here.
    pub loaded: bool,
    /// `sh_addralign`.
    pub align: u64,
    /// `sh_size` (what a zero-filled section occupies).
    pub size: u64,
    /// Every relocation in the section (offsets from the section start):
    /// what a copy of the whole section needs.
    pub relocs: Vec<Reloc>,
}

impl Section {
    /// Data the running program never changes: read-only sections, and
    /// `.data.rel.ro` (writable only while the dynamic loader relocates it;
    /// RELRO then protects it). A patch copies such data with the code that
    /// uses it instead of sharing the program's.
    pub fn constant(&self) -> bool {
        !self.writable || self.relro()
    }

    /// `.data.rel.ro` (RELRO: vtables, typeinfo, tables of addresses).
    pub fn relro(&self) -> bool {
        self.name == ".data.rel.ro" || self.name.starts_with(".data.rel.ro.")
    }

    /// Writable data the program keeps state in (not code, thread-local
    /// data or constants): where a place is a variable's identity, not
    /// bytes to copy.
    pub fn state(&self) -> bool {
        !self.executable && !self.tls && !self.constant()
    }
}

/// One `.debug_*` section of an object (see [`ObjectFile::debug_section`]).
#[derive(Debug, Clone, Default)]
struct DebugSection {
    /// Its bytes' place in the file.
    bytes: std::ops::Range<usize>,
    relocs: std::sync::OnceLock<crate::debug_relocs::SectionRelocs>,
}

/// One relocatable object.
#[derive(Debug, Clone)]
pub struct ObjectFile {
    pub path: String,
    pub symbols: Vec<Symbol>,
    /// Indexed by ELF section index.
    pub sections: Vec<Option<Section>>,
    /// `STT_FILE`: the source file name, when the compiler recorded one.
    pub source: Option<String>,
    /// Undefined symbols the object refers to weakly (`__attribute__((weak))`
    /// declarations, zstd's optional trace hooks): a link where nothing
    /// defines one gives it address 0, as the program's link did.
    pub weak_undefined: std::collections::BTreeSet<String>,
    /// Per section (by ELF index): its symbols by place, for finding the
    /// symbol that covers a place. A vector, not a map: every relocation
    /// of the file looks its owner up here.
    by_section: Vec<Covering>,
    /// Stable identities of the symbols ([`crate::diff::stable_keys`]),
    /// computed once.
    keys: std::sync::OnceLock<Vec<String>>,
    /// The symbol of each stable key ([`crate::diff::symbol_of_key`]),
    /// built once: the diff pairs symbols by it and the linker names the
    /// base's locals by it.
    key_index: std::sync::OnceLock<hashbrown::HashTable<usize>>,
    /// Per section: every offset some relocation points at, sorted.
    referenced: std::sync::OnceLock<Vec<Vec<i64>>>,
    /// The DWARF's top-level entries by name, read once when first asked
    /// for ([`crate::signature::index`]).
    debug_index: std::sync::OnceLock<crate::debug_index::DebugIndex>,
    /// The DWARF's concrete instances of functions (GCC's clones) by where
    /// their code starts, read once when first asked for
    /// ([`crate::clone_parameters::kept`]).
    concrete_instances: std::sync::OnceLock<Vec<crate::clone_parameters::Instance>>,
    /// The file's bytes: sections that are not loaded (DWARF, notes) are
    /// read from here only when asked for, so reading an object costs what
    /// its code and data cost, not its debug information's (`-g` brings
    /// many times more bytes and relocations than the code has).
    raw: std::sync::Arc<relive_image::FileBytes>,
    /// The `.debug_*` sections by name: where their bytes are in `raw`,
    /// and their relocations, read on first use (signatures need
    /// `.debug_info`, `.debug_abbrev` and the strings, not the line table
    /// or the location lists).
    debug: foldhash::HashMap<String, DebugSection>,
    /// What the symbols that debug relocations name stand for
    /// ([`crate::debug_relocs::symbol_bases`]), read on first use.
    debug_bases: std::sync::OnceLock<Vec<Option<i64>>>,
    /// The macros the compile defined, as its preprocessor listed them
    /// (`-E -dD`): given by a compile that asked for them in place of
    /// macro debug information ([`ObjectFile::set_defined_macros`]).
    defined_macros: Option<crate::debug_macros::Definitions>,
    /// The texts it was compiled from, when its compile kept them
    /// ([`ObjectFile::set_source_texts`]).
    source_texts: SourceTexts,
}

/// The texts of the files a compile read (its source and the headers it
/// includes), each as it was compiled: what tells which lines a later
/// compile's text changed ([`crate::inline_only`]). Shown by path and
/// size: a unit's text is megabytes.
#[derive(Clone, Default)]
pub struct SourceTexts(pub Vec<(std::path::PathBuf, std::sync::Arc<str>)>);

impl std::fmt::Debug for SourceTexts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(
                self.0
                    .iter()
                    .map(|(path, text)| format!("{} ({} bytes)", path.display(), text.len())),
            )
            .finish()
    }
}

impl SourceTexts {
    /// The text of `path`, if the compile kept it.
    pub fn of(&self, path: &Path) -> Option<&str> {
        self.0.iter().find(|(p, _)| p == path).map(|(_, t)| &**t)
    }
}

impl ObjectFile {
    /// The piece of section `section` that a reference to `at` denotes when
    /// no symbol covers it: from `at` to the next place any relocation of
    /// the object points at (a literal pool entry, a string, a table) or
    /// the next symbol, whichever comes first. It may end in alignment
    /// padding.
    pub fn chunk(&self, section: usize, at: i64) -> Option<&[u8]> {
        let referenced = self.referenced();
        let bytes = self.section(section)?.bytes.as_deref()?;
        let start = usize::try_from(at).ok().filter(|&a| a <= bytes.len())?;
        let next_reference = referenced.get(section).and_then(|v| {
            let k = v.partition_point(|&o| o <= at);
            v.get(k).and_then(|&o| usize::try_from(o).ok())
        });
        // A named object after it (a static table) is not part of it either.
        let next_symbol = self
            .by_section
            .get(section)
            .and_then(|c| c.next_start(start as u64))
            .and_then(|o| usize::try_from(o).ok());
        let next = [next_reference, next_symbol]
            .into_iter()
            .flatten()
            .fold(bytes.len(), usize::min);
        Some(&bytes[start..next])
    }

    /// Per section: every offset some relocation of the object points at,
    /// sorted (what [`ObjectFile::chunk`] ends a piece at), computed once.
    pub(crate) fn referenced(&self) -> &[Vec<i64>] {
        self.referenced.get_or_init(|| {
            // Indexed by section (a relocation's section index is one of
            // the file's, checked when it was read).
            let mut map: Vec<Vec<i64>> = vec![Vec::new(); self.sections.len()];
            // A symbol's relocations are its section's (biases shared:
            // `share_code_biases`), but for those decoding added: the
            // sections' and those (SQLite's are 300,000 twice).
            let all = self
                .sections
                .iter()
                .flatten()
                .flat_map(|s| &s.relocs)
                .chain(self.symbols.iter().flat_map(|s| &s.relocs).filter(|r| r.synthetic));
            for r in all {
                if let Target::Section { section, offset } = r.target {
                    if let Some(v) = map.get_mut(section) {
                        v.push(offset.wrapping_add(r.pc_bias));
                    }
                }
            }
            for v in &mut map {
                v.sort_unstable();
                v.dedup();
            }
            map
        })
    }

    /// Where the symbols' stable identities are kept once computed
    /// ([`crate::diff::stable_keys`] computes and reads them).
    pub(crate) fn keys_cache(&self) -> &std::sync::OnceLock<Vec<String>> {
        &self.keys
    }

    /// Where the symbol of each stable key is kept once found
    /// ([`crate::diff::symbol_of_key`] builds and reads it).
    pub(crate) fn key_index_cache(&self) -> &std::sync::OnceLock<hashbrown::HashTable<usize>> {
        &self.key_index
    }

    /// Where the DWARF index is kept once read ([`crate::signature::index`]).
    pub(crate) fn debug_index_cache(&self) -> &std::sync::OnceLock<crate::debug_index::DebugIndex> {
        &self.debug_index
    }

    /// Where the DWARF's concrete function instances are kept once read
    /// ([`crate::clone_parameters::kept`]).
    pub(crate) fn concrete_instances_cache(&self) -> &std::sync::OnceLock<Vec<crate::clone_parameters::Instance>> {
        &self.concrete_instances
    }

    pub fn open(path: impl AsRef<Path>) -> Result<ObjectFile> {
        ObjectFile::open_like(path, None)
    }

    /// Reads a patch's new object and, where there is one, its base, the
    /// base on a second thread: the two are independent, and reading one
    /// is most of a one-shot patch's time on a large file. An error in
    /// the new object is told first, as reading them in turn would.
    pub fn open_pair(new: impl AsRef<Path>, base: Option<&Path>) -> Result<(ObjectFile, Option<ObjectFile>)> {
        let worth = crate::side_by_side::worth_a_thread(ObjectFile::pair_bytes(new.as_ref(), base));
        // Mapped, not read: a large object's DWARF is most of its bytes,
        // and a patch reads only some of it (reading all of SQLite's two
        // objects was a third of the command's page faults). They are
        // needed only while this command runs.
        let read = |path: &Path| {
            let bytes = relive_image::FileBytes::map(path).map_err(|source| PatchError::Io {
                path: path.display().to_string(),
                cause: source,
            })?;
            Undecoded::parse(&path.display().to_string(), bytes)
        };
        let (base, new) = crate::side_by_side::both_if(worth, || base.map(read), || read(new.as_ref()));
        let (new, base) = (new?, base.transpose()?);
        let objects: Vec<&Undecoded> = std::iter::once(&new).chain(&base).collect();
        let decoded = decode_distinct(&objects, None);
        let (base, new) = crate::side_by_side::both_if(
            worth,
            || base.map(|b| b.finish(&decoded, 1)),
            || new.finish(&decoded, 0),
        );
        Ok((new, base))
    }

    /// The bytes of a patch's objects on disk (0 for one that cannot be
    /// read; reading it then tells why): what decides whether their work
    /// is worth a second thread ([`crate::side_by_side::worth_a_thread`]).
    pub fn pair_bytes(new: &Path, base: Option<&Path>) -> u64 {
        let size = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
        size(new) + base.map_or(0, size)
    }

    /// Reads an object from its bytes. Objects without machine code are
    /// refused: LLVM bitcode (`clang -flto`) and GCC's slim LTO objects
    /// (`gcc -flto`); a fat LTO object (`-ffat-lto-objects`) has real code
    /// as well and is read like any other.
    pub fn parse(path: &str, data: &[u8]) -> Result<ObjectFile> {
        ObjectFile::parse_owned(path, data.to_vec())
    }

    /// [`ObjectFile::parse`] of bytes it keeps (for the sections it reads
    /// later: see [`ObjectFile::debug_section`]).
    pub fn parse_owned(path: &str, data: Vec<u8>) -> Result<ObjectFile> {
        let read = Undecoded::parse(path, relive_image::FileBytes::Owned(data))?;
        let decoded = decode_distinct(&[&read], None);
        Ok(read.finish(&decoded, 0))
    }

    /// Reads the object at `path`, taking the decoding of each function
    /// whose bytes `like` has too from `like` instead of decoding it again
    /// (`relive run` reads each save of a file against the object that
    /// runs: an edit changes a few functions of thousands).
    pub fn open_like(path: impl AsRef<Path>, like: Option<&ObjectFile>) -> Result<ObjectFile> {
        let bytes = relive_image::FileBytes::Owned(read_file(path.as_ref())?);
        let read = Undecoded::parse(&path.as_ref().display().to_string(), bytes)?;
        let decoded = decode_distinct(&[&read], like);
        Ok(read.finish(&decoded, 0))
    }
}

/// An object read up to the decoding of its functions' code, the most
/// costly step: reading a patch's two objects first this far lets the
/// functions they have alike (most of them) be decoded once, on two
/// threads.
pub(crate) struct Undecoded {
    path: String,
    pub(crate) symbols: Vec<Symbol>,
    sections: Vec<Option<Section>>,
    source: Option<String>,
    weak_undefined: std::collections::BTreeSet<String>,
    by_section: Vec<Covering>,
    /// The `.debug_*` sections: names and their bytes' place in the file.
    debug_sections: Vec<(String, std::ops::Range<usize>)>,
    raw: std::sync::Arc<relive_image::FileBytes>,
}

impl Undecoded {
    /// The functions with code: their symbol indices and bytes.
    pub(crate) fn code(&self) -> impl Iterator<Item = (usize, &[u8])> {
        self.symbols
            .iter()
            .enumerate()
            .filter(|(_, s)| s.kind == Kind::Function)
            .filter_map(|(i, s)| Some((i, s.bytes.as_deref()?)))
    }

    fn parse(path: &str, data: relive_image::FileBytes) -> Result<Undecoded> {
        let raw = std::sync::Arc::new(data);
        let data: &[u8] = &raw;
        let not_object = |reason: String| PatchError::NotObject {
            path: path.to_string(),
            reason,
        };
        if data.is_empty() {
            return Err(not_object(
                "the file is empty (0 bytes): a compile that failed or was interrupted; compile it again".into(),
            ));
        }
        if is_llvm_bitcode(data) {
            return Err(not_object(
                "it is LLVM bitcode (clang -flto), not machine code; recompile this file without -flto (add -fno-lto)"
                    .into(),
            ));
        }
        let file = object::File::parse(data).map_err(|e| {
            not_object(match data.starts_with(b"\x7fELF") {
                true => format!("a damaged or truncated ELF file ({e}); compile it again"),
                false => {
                    "not an object file: it does not start as an ELF file does; give the .o file a compile wrote".into()
                }
            })
        })?;
        if file.kind() != object::ObjectKind::Relocatable || file.format() != object::BinaryFormat::Elf {
            let format = match file.format() {
                object::BinaryFormat::Elf => "ELF",
                object::BinaryFormat::Pe => "PE",
                object::BinaryFormat::MachO => "Mach-O",
                object::BinaryFormat::Coff => "COFF",
                _ => "non-ELF",
            };
            let kind = match file.kind() {
                object::ObjectKind::Executable => "an executable",
                object::ObjectKind::Dynamic => "a shared library or PIE executable",
                object::ObjectKind::Core => "a core dump",
                object::ObjectKind::Relocatable => "an object",
                _ => "a file",
            };
            return Err(not_object(format!(
                "it is {kind} ({format}), not an object file; compile with -c"
            )));
        }
        if file.architecture() != object::Architecture::X86_64 {
            return Err(not_object(format!(
                "it is for {:?}; relive patches x86-64 code",
                file.architecture()
            )));
        }

        if is_slim_lto(&file) {
            return Err(not_object(
                "it is a GCC LTO object (-flto): it holds GCC's intermediate code (.gnu.lto_* sections), no machine code; recompile this file without -flto (add -fno-lto), or with -ffat-lto-objects to have both"
                    .into(),
            ));
        }

        let mut sections: Vec<Option<Section>> = Vec::new();
        for s in file.sections() {
            let i = s.index().0;
            if sections.len() <= i {
                sections.resize(i + 1, None);
            }
            let sh_flags = match s.flags() {
                object::SectionFlags::Elf { sh_flags, .. } => sh_flags.0,
                _ => 0,
            };
            let flag = |f: elf::SectionFlags| sh_flags & f.0 != 0;
            let bytes = match s.kind() {
                // Not loaded: nothing of it is copied into a process (DWARF
                // is read through `debug_section`).
                _ if !flag(elf::SHF_ALLOC) => None,
                SectionKind::UninitializedData | SectionKind::UninitializedTls => {
                    if s.size() > MAX_ZERO_FILLED {
                        return Err(malformed(
                            path,
                            &format!(
                                "section {} claims {} zero-filled bytes",
                                s.name().unwrap_or("?"),
                                s.size()
                            ),
                        ));
                    }
                    None
                }
                _ => {
                    let bytes = s
                        .data()
                        .map_err(|e| malformed(path, &format!("section {}: {e}", s.name().unwrap_or("?"))))?;
                    // The file's own bytes (ELF sections are not decoded
                    // into new ones), so a range of them.
                    Some(FileSlice::within(&raw, bytes).unwrap_or_else(|| FileSlice::from(bytes)))
                }
            };
            sections[i] = Some(Section {
                name: s.name().unwrap_or("").to_string(),
                bytes,
                strings: flag(elf::SHF_STRINGS),
                writable: flag(elf::SHF_WRITE),
                executable: flag(elf::SHF_EXECINSTR),
                tls: flag(elf::SHF_TLS),
                loaded: flag(elf::SHF_ALLOC),
                align: s.align().max(1),
                size: s.size(),
                relocs: Vec::new(),
            });
        }

        // Defined functions and data, remembering each one's ELF index.
        // Sized at once: a symbol is a few hundred bytes, and growing the
        // vector of a 10,000-function file moved megabytes into fresh pages.
        let mut symbols = Vec::with_capacity(file.symbols().count());
        let mut weak_undefined = std::collections::BTreeSet::new();
        // By ELF symbol index (dense: a vector, not a map; a relocation
        // looks its symbol up here).
        let elf_symbols = file.symbols().map(|s| s.index().0 + 1).max().unwrap_or(0);
        let mut by_elf_index: Vec<Option<usize>> = vec![None; elf_symbols];
        let mut section_symbols: Vec<Option<(usize, u64)>> = vec![None; elf_symbols];
        // Of those, the labels of strings (see `Reloc::label`).
        let mut string_labels: foldhash::HashSet<usize> = Default::default();
        let mut source = None;
        for sym in file.symbols() {
            let name = sym.name().unwrap_or("").to_string();
            if sym.kind() == ObjKind::File {
                source.get_or_insert(name);
                continue;
            }
            // Section symbols and local labels (`.LC0`, NOTYPE) stand for a
            // place in a section; relocations through them are resolved to
            // that place.
            // Clang keeps its literals' assembler-private names (`.L.str.1`,
            // typed as objects) for relocations into mergeable sections:
            // they are renumbered by every added literal, so they are places
            // too (a string compared by its text), not named data.
            let private = sym.is_local() && name.starts_with(".L");
            if private || matches!(sym.kind(), ObjKind::Section | ObjKind::Label | ObjKind::Unknown) {
                if let SymbolSection::Section(SectionIndex(i)) = sym.section() {
                    section_symbols[sym.index().0] = Some((i, sym.address()));
                    let strings = sections.get(i).and_then(|s| s.as_ref()).is_some_and(|s| s.strings);
                    if strings && sym.kind() != ObjKind::Section {
                        string_labels.insert(sym.index().0);
                    }
                }
                continue;
            }
            let SymbolSection::Section(SectionIndex(section)) = sym.section() else {
                continue;
            };
            let kind = match sym.kind() {
                ObjKind::Text => Kind::Function,
                ObjKind::Data => Kind::Object,
                ObjKind::Tls => Kind::Tls,
                _ => continue,
            };
            let sec = sections.get(section).and_then(|s| s.as_ref());
            let bytes = match sec.and_then(|s| s.bytes.as_ref()) {
                Some(b) => {
                    let start = usize::try_from(sym.address()).ok();
                    let end = start.and_then(|s| s.checked_add(usize::try_from(sym.size()).ok()?));
                    let slice = start.zip(end).and_then(|(s, e)| b.part(s..e));
                    Some(slice.ok_or_else(|| malformed(path, &format!("symbol {name} lies outside its section")))?)
                }
                None => {
                    // Zero-filled: it must still lie inside its section.
                    let size = sec.map_or(0, |s| s.size);
                    if sym.address().checked_add(sym.size()).is_none_or(|end| end > size) {
                        return Err(malformed(path, &format!("symbol {name} lies outside its section")));
                    }
                    None
                }
            };
            by_elf_index[sym.index().0] = Some(symbols.len());
            symbols.push(Symbol {
                name,
                kind,
                local: sym.is_local(),
                weak: sym.is_weak(),
                unique: matches!(sym.flags(), object::SymbolFlags::Elf { st_info, .. } if st_info.st_bind() == elf::STB_GNU_UNIQUE),
                section,
                offset: sym.address(),
                size: sym.size(),
                bytes,
                relocs: Vec::new(),
                decoded: None,
                problem: None,
                short_exits: Vec::new(),
            });
        }

        // Per section, the symbols sorted by place: each relocation finds
        // the symbol whose bytes it patches by binary search, so reading
        // an object stays linear in its size (DWARF brings many times more
        // relocations than code has symbols).
        let by_section = Covering::index(&symbols, sections.len());

        // Relocations, attached to the symbol whose bytes they patch.
        for s in file.sections() {
            let section = s.index().0;
            let section_size = s.size();
            if !sections.get(section).and_then(Option::as_ref).is_some_and(|s| s.loaded) {
                continue;
            }
            let covering = by_section.get(section);
            // Sized at once (a large file's `.text` has tens of thousands).
            if let Some(Some(sec)) = sections.get_mut(section) {
                sec.relocs.reserve_exact(s.relocations().count());
            }
            for (offset, rel) in s.relocations() {
                let RelocationFlags::Elf { r_type } = rel.flags() else {
                    continue;
                };
                let r_type = r_type.0;
                // Every byte is hostile: a field outside its section would
                // be written outside the copy made of it.
                let width = rtype::width(r_type);
                if offset.checked_add(width).is_none_or(|end| end > section_size) {
                    return Err(malformed(
                        path,
                        &format!(
                            "relocation {} at {offset:#x} lies outside section {} ({section_size:#x} bytes)",
                            rtype::name(r_type).map_or_else(|| format!("type {r_type}"), str::to_string),
                            s.name().unwrap_or("?"),
                        ),
                    ));
                }
                let mut label = None;
                let target = match rel.target() {
                    RelocationTarget::Symbol(idx) => {
                        if let Some(&Some((sec, at))) = section_symbols.get(idx.0) {
                            label = string_labels.contains(&idx.0).then_some(at as i64);
                            Target::Section {
                                section: sec,
                                offset: (at as i64).wrapping_add(rel.addend()),
                            }
                        } else if let Some(&Some(i)) = by_elf_index.get(idx.0) {
                            Target::Defined(i)
                        } else {
                            let sym = file
                                .symbol_by_index(idx)
                                .map_err(|e| malformed(path, &format!("relocation at {offset:#x}: {e}")))?;
                            let name = sym.name().unwrap_or("").to_string();
                            if sym.is_weak() && sym.is_undefined() {
                                weak_undefined.insert(name.clone());
                            }
                            Target::Undefined(name)
                        }
                    }
                    RelocationTarget::Section(SectionIndex(sec)) => Target::Section {
                        section: sec,
                        offset: rel.addend(),
                    },
                    _ => continue,
                };
                let addend = match target {
                    Target::Section { .. } => 0,
                    _ => rel.addend(),
                };
                let reloc = Reloc {
                    offset,
                    r_type,
                    target,
                    addend,
                    pc_bias: 0,
                    synthetic: false,
                    label,
                };
                if let Some((owner, within)) = covering.and_then(|c| c.at(offset)) {
                    symbols[owner].relocs.push(Reloc {
                        offset: within,
                        ..reloc.clone()
                    });
                }
                if let Some(Some(sec)) = sections.get_mut(section) {
                    sec.relocs.push(reloc);
                }
            }
        }
        for sec in sections.iter_mut().flatten() {
            sec.relocs.sort_by_key(|r| r.offset);
        }
        share_alias_relocations(&mut symbols, &by_section);
        for sym in &mut symbols {
            sym.relocs.sort_by_key(|r| r.offset);
        }
        let debug_sections = file
            .sections()
            .filter_map(|s| {
                let name = s.name().ok().filter(|n| n.starts_with(".debug_"))?;
                // Where `data` has them; a range beyond it (a hostile
                // header) gives no bytes.
                let (start, size) = s.file_range().unwrap_or((0, 0));
                let start = usize::try_from(start).ok()?;
                let end = start.checked_add(usize::try_from(size).ok()?)?;
                let bytes = if end <= data.len() { start..end } else { 0..0 };
                Some((name.to_string(), bytes))
            })
            .collect();
        Ok(Undecoded {
            path: path.to_string(),
            symbols,
            sections,
            source,
            weak_undefined,
            by_section,
            debug_sections,
            raw,
        })
    }

    /// The object, its functions' relocations completed from their
    /// decoding: `decoded` is [`decode_distinct`]'s, of which this object
    /// was the `which`th.
    fn finish(self, decoded: &Distinct, which: usize) -> ObjectFile {
        let Undecoded {
            path,
            mut symbols,
            mut sections,
            source,
            weak_undefined,
            by_section,
            debug_sections,
            raw,
        } = self;
        // Where each section's symbols start: a branch to a function's
        // end is to the next one when a symbol starts there.
        let starts: foldhash::HashSet<(usize, u64)> = symbols
            .iter()
            .filter(|s| s.kind == Kind::Function)
            .map(|s| (s.section, s.offset))
            .collect();
        for (i, sym) in symbols.iter_mut().enumerate() {
            let Some(code) = decoded.of(which, i) else {
                continue;
            };
            let next_starts = starts.contains(&(sym.section, sym.offset + sym.size));
            complete_code_relocations(sym, next_starts, code.clone());
            share_code_biases(sym, &mut sections);
            sym.relocs.sort_by_key(|r| r.offset);
        }
        bias_table_entries(&mut symbols, &mut sections);
        ObjectFile {
            path,
            symbols,
            sections,
            source,
            weak_undefined,
            by_section,
            keys: std::sync::OnceLock::new(),
            key_index: std::sync::OnceLock::new(),
            referenced: std::sync::OnceLock::new(),
            debug_index: std::sync::OnceLock::new(),
            concrete_instances: std::sync::OnceLock::new(),
            debug_bases: std::sync::OnceLock::new(),
            defined_macros: None,
            source_texts: SourceTexts::default(),
            debug: debug_sections
                .into_iter()
                .map(|(name, bytes)| {
                    let relocs = std::sync::OnceLock::new();
                    (name, DebugSection { bytes, relocs })
                })
                .collect(),
            raw,
        }
    }
}

/// An object file's bytes, or an error naming it.
fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| PatchError::Io {
        path: path.display().to_string(),
        cause: source,
    })
}

impl ObjectFile {
    /// A debug section's bytes (`.debug_info`, `.debug_str`, ...) as the
    /// file has them, and its relocations that hold section offsets (32-
    /// and 64-bit absolute ones against a section or a local label: string
    /// and unit offsets), applied as a reader reads each field
    /// ([`crate::signature::with_dwarf`]). Empty when the object has no
    /// such section. Not applied to a copy: SQLite's `.debug_info` has
    /// 150,000 of them, and the signature check reads a few hundred.
    pub(crate) fn debug_section(&self, name: &str) -> (&[u8], crate::debug_relocs::Fixups<'_>) {
        use crate::debug_relocs::{Fixups, SectionRelocs};
        let Some(section) = self.debug.get(name) else {
            return (&[], Fixups::NONE);
        };
        let relocs = section.relocs.get_or_init(|| SectionRelocs::read(&self.raw, name));
        let bases = self.debug_bases();
        let bytes = self.raw.get(section.bytes.clone()).unwrap_or_default();
        (bytes, Fixups::new(&self.raw, relocs, bases))
    }

    /// Records the macros the compile of this object defined, read from
    /// its preprocessor's listing: what [`crate::debug_macros::changed`]
    /// compares when the object has no macro debug information.
    pub fn set_defined_macros(&mut self, macros: crate::debug_macros::Definitions) {
        self.defined_macros = Some(macros);
    }

    /// Keeps the texts the object was compiled from.
    pub fn set_source_texts(&mut self, texts: SourceTexts) {
        self.source_texts = texts;
    }

    /// The texts [`ObjectFile::set_source_texts`] kept.
    pub fn source_texts(&self) -> &SourceTexts {
        &self.source_texts
    }

    /// The macros [`ObjectFile::set_defined_macros`] recorded.
    pub(crate) fn defined_macros(&self) -> Option<&crate::debug_macros::Definitions> {
        self.defined_macros.as_ref()
    }

    /// What the symbols that debug relocations name stand for (see
    /// [`crate::debug_relocs::symbol_bases`]), read once.
    pub(crate) fn debug_bases(&self) -> &[Option<i64>] {
        self.debug_bases
            .get_or_init(|| crate::debug_relocs::symbol_bases(&self.raw))
    }

    /// Takes `base`'s source file name when this object, a new compile of
    /// `base`'s unit, records another (a copy of `sqlite3.c` compiled as
    /// `v1.c`): its `static` functions and data are the program's of that
    /// unit, found by that name, not copied as new (which lost their
    /// state). The note to tell the user, when it did.
    pub fn adopt_base_source(&mut self, base: &ObjectFile) -> Option<String> {
        let theirs = base.source.as_ref()?;
        if self.source.as_ref() == Some(theirs) {
            return None;
        }
        let ours = self.source.replace(theirs.clone());
        let file_name = |p: &str| Path::new(p).file_name().map(|n| n.to_owned());
        if ours.as_deref().map(file_name) == Some(file_name(theirs)) {
            return None; // the same file, named from another directory
        }
        Some(format!(
            "{} was compiled from {}, its base {} from {theirs}: its static functions and data are taken as {theirs}'s, which the program runs",
            self.path,
            ours.as_deref().unwrap_or("a file it does not name"),
            base.path
        ))
    }

    /// The functions `.init_array` (or `.ctors`) lists, in order: what
    /// runs before `main` to give the file's globals their values.
    pub fn static_initializers(&self) -> Vec<usize> {
        self.sections
            .iter()
            .flatten()
            .filter(|s| s.name == ".init_array" || s.name.starts_with(".init_array.") || s.name == ".ctors")
            .flat_map(|s| &s.relocs)
            .filter_map(|r| self.referenced_symbol(r))
            .filter(|&i| self.symbols[i].kind == Kind::Function)
            .collect()
    }

    /// The object's static initializers (the functions `.init_array`
    /// lists, and the functions of the object they call), and the
    /// zero-filled data they refer to: C++ globals with a constructor or a
    /// non-constant initial value, which only those initializers give
    /// their value.
    pub fn dynamically_initialized(&self) -> (std::collections::BTreeSet<usize>, std::collections::BTreeSet<usize>) {
        let entries = self.static_initializers();
        if entries.is_empty() {
            // Most C files: nothing below to find, and its pass over every
            // relocation of the object cost each patch of one function of
            // a 10,000-function file as much as linking it.
            return Default::default();
        }
        let mut queue = entries.clone();
        let mut seen: std::collections::BTreeSet<usize> = queue.iter().copied().collect();
        while let Some(f) = queue.pop() {
            for r in &self.symbols[f].relocs {
                let Some(t) = self.referenced_symbol(r) else { continue };
                if self.symbols[t].kind == Kind::Function && seen.insert(t) {
                    queue.push(t);
                }
            }
        }
        // Only what nothing else of the object refers to: a helper the
        // file's other code calls too is no initializer's alone. Who
        // refers to each is found in one pass over the relocations.
        let mut referrers: std::collections::BTreeMap<usize, Vec<usize>> =
            seen.iter().map(|&f| (f, Vec::new())).collect();
        for (g, s) in self.symbols.iter().enumerate() {
            for r in &s.relocs {
                if let Some(by) = self.referenced_symbol(r).and_then(|f| referrers.get_mut(&f)) {
                    by.push(g);
                }
            }
        }
        loop {
            let shared: Vec<usize> = seen
                .iter()
                .copied()
                .filter(|f| !entries.contains(f))
                .filter(|f| referrers[f].iter().any(|g| !seen.contains(g)))
                .collect();
            if shared.is_empty() {
                break;
            }
            for f in shared {
                seen.remove(&f);
            }
        }
        let data = seen
            .iter()
            .flat_map(|&f| &self.symbols[f].relocs)
            .filter_map(|r| self.referenced_symbol(r))
            .filter(|&t| self.symbols[t].kind == Kind::Object && self.symbols[t].bytes.is_none())
            .collect();
        (seen, data)
    }

    /// The file's bytes, as read.
    pub fn raw(&self) -> &[u8] {
        &self.raw
    }

    /// The size of debug section `name` (0 when there is none).
    pub fn debug_section_len(&self, name: &str) -> usize {
        self.debug.get(name).map_or(0, |s| s.bytes.len())
    }

    /// The names of its `.debug_*` sections.
    pub fn debug_section_names(&self) -> impl Iterator<Item = &str> {
        self.debug.keys().map(String::as_str)
    }

    /// Whether the object carries DWARF (`-g`).
    pub fn has_debug_info(&self) -> bool {
        self.sections.iter().flatten().any(|s| s.name == ".debug_info")
    }

    pub fn section(&self, index: usize) -> Option<&Section> {
        self.sections.get(index).and_then(|s| s.as_ref())
    }

    /// The function named `name` (its symbol index).
    pub fn function_named(&self, name: &str) -> Option<usize> {
        self.symbols
            .iter()
            .position(|s| s.name == name && s.kind == Kind::Function)
    }

    /// The defined symbol relocation `r` refers to: its target symbol, or
    /// the symbol covering the place it denotes through a section
    /// (`.rodata + 8`); `None` for an undefined symbol or a place no
    /// symbol covers.
    pub fn referenced_symbol(&self, r: &Reloc) -> Option<usize> {
        match r.target {
            Target::Defined(i) => Some(i),
            Target::Section { section, offset } => {
                self.symbol_at(section, offset.wrapping_add(r.pc_bias)).map(|(i, _)| i)
            }
            Target::Undefined(_) => None,
        }
    }

    /// The symbol of section `section` covering `offset` (the innermost,
    /// i.e. latest-starting, when several do) and the offset into it.
    pub fn symbol_at(&self, section: usize, offset: i64) -> Option<(usize, u64)> {
        let offset = u64::try_from(offset).ok()?;
        self.by_section.get(section)?.at(offset)
    }

    /// The symbol of section `section` that ends at or before `offset`
    /// nearest to it (of those starting before it), and where it starts:
    /// what a place just past its end may stand for (`arr + N`, one past
    /// its end, which may be where the next symbol starts).
    pub fn symbol_ending_before(&self, section: usize, offset: i64) -> Option<(usize, u64, u64)> {
        self.by_section.get(section)?.ending_before(u64::try_from(offset).ok()?)
    }

    /// The first symbol of section `section` starting after `offset`, and
    /// where: what a place just before it may stand for (GCC's `lea
    /// table-2(%rip)` for a table of 2-byte entries indexed from 1), in
    /// whatever symbol's last bytes the place falls.
    pub fn symbol_after(&self, section: usize, offset: i64) -> Option<(usize, u64)> {
        let offset = u64::try_from(offset).ok()?;
        self.by_section.get(section)?.next(offset).map(|(start, i)| (i, start))
    }

    /// The symbol of section `section` nearest to `offset`, a place no
    /// symbol covers: what a compiler's address arithmetic beside an
    /// object means (GCC's `lea buf-1(%rip)` for a loop indexing `buf`
    /// from 1, `arr + N` past an array's end). In the program the object's
    /// section is one block, so the place is that symbol's, moved by the
    /// distance.
    pub fn symbol_near(&self, section: usize, offset: i64) -> Option<usize> {
        self.by_section.get(section)?.nearest(offset)
    }
}

/// One section's symbols sorted by place, for finding the symbol that
/// covers an offset in logarithmic time.
#[derive(Debug, Clone, Default)]
struct Covering {
    /// `(start, end, symbol index)`, sorted.
    spans: Vec<(u64, u64, usize)>,
    /// `reach[k]`: the largest `end` among `spans[..=k]`, so a search for a
    /// place no symbol covers stops as soon as nothing earlier can reach it.
    reach: Vec<u64>,
}

impl Covering {
    /// Every section's index. A symbol of size 0 covers its first byte.
    fn index(symbols: &[Symbol], sections: usize) -> Vec<Covering> {
        let mut by_section: Vec<Covering> = vec![Covering::default(); sections];
        for (i, sym) in symbols.iter().enumerate() {
            // A (hostile) symbol in a section the file lacks covers no
            // place any relocation can name.
            let Some(covering) = by_section.get_mut(sym.section) else {
                continue;
            };
            covering
                .spans
                .push((sym.offset, sym.offset.saturating_add(sym.size.max(1)), i));
        }
        by_section.into_iter().map(|c| Covering::of_spans(c.spans)).collect()
    }

    /// The index of `spans` (`(start, end, symbol)`, in any order).
    fn of_spans(mut spans: Vec<(u64, u64, usize)>) -> Covering {
        spans.sort_unstable();
        let mut max = 0;
        let reach = spans
            .iter()
            .map(|&(_, end, _)| {
                max = max.max(end);
                max
            })
            .collect();
        Covering { spans, reach }
    }

    /// Where the first symbol starting after `offset` starts.
    fn next_start(&self, offset: u64) -> Option<u64> {
        self.next(offset).map(|(start, _)| start)
    }

    /// Of the symbols starting before `offset`, the one that ends at or
    /// before it nearest to it: which, and its span.
    fn ending_before(&self, offset: u64) -> Option<(usize, u64, u64)> {
        let upto = self.spans.partition_point(|&(start, _, _)| start < offset);
        self.spans[..upto]
            .iter()
            .filter(|&&(_, end, _)| end <= offset)
            .max_by_key(|&&(start, end, _)| (end, start))
            .map(|&(start, end, i)| (i, start, end))
    }

    /// The first symbol starting after `offset`: where, and which.
    fn next(&self, offset: u64) -> Option<(u64, usize)> {
        let k = self.spans.partition_point(|&(start, _, _)| start <= offset);
        self.spans.get(k).map(|&(start, _, i)| (start, i))
    }

    /// The symbol nearest to `offset`, which none covers: the first one
    /// starting after it, or the one ending closest before it, whichever is
    /// closer (the earlier one on a tie: `arr + N`, one past its end).
    fn nearest(&self, offset: i64) -> Option<usize> {
        let upto = self.spans.partition_point(|&(start, _, _)| (start as i64) <= offset);
        let after = self
            .spans
            .get(upto)
            .map(|&(start, _, i)| ((start as i64).wrapping_sub(offset), i));
        // Among those starting at or before it, the one reaching furthest.
        let before = upto.checked_sub(1).and_then(|last| {
            let reach = self.reach[last];
            (0..upto)
                .rev()
                .map(|k| self.spans[k])
                .find(|&(_, end, _)| end == reach)
                .map(|(_, end, i)| (offset.wrapping_sub(end as i64).wrapping_add(1), i))
        });
        match (before, after) {
            (Some((b, i)), Some((a, _))) if b <= a => Some(i),
            (_, Some((_, i))) => Some(i),
            (Some((_, i)), None) => Some(i),
            (None, None) => None,
        }
    }

    /// The latest-starting symbol covering `offset`, and the offset into it.
    fn at(&self, offset: u64) -> Option<(usize, u64)> {
        let upto = self.spans.partition_point(|&(start, _, _)| start <= offset);
        (0..upto)
            .rev()
            .take_while(|&k| self.reach[k] > offset)
            .map(|k| self.spans[k])
            .find(|&(_, end, _)| offset < end)
            .map(|(start, _, i)| (i, offset - start))
    }
}

/// Symbols that name the same bytes (aliases: GCC's identical-code
/// folding makes `f` an alias of `g`; `__attribute__((alias))`) get the
/// same relocations: each was given to one of them only.
fn share_alias_relocations(symbols: &mut [Symbol], by_section: &[Covering]) {
    // Aliases are neighbours in each section's index, which is sorted by
    // place already (sorting all symbols again was a tenth of reading a
    // 10,000-function object).
    for covering in by_section {
        for group in covering.spans.chunk_by(|x, y| (x.0, x.1) == (y.0, y.1)) {
            if group.len() < 2 {
                continue;
            }
            // Sized symbols only: one of size 0 covers its first byte, as
            // one of size 1 there does.
            let sized: Vec<usize> = group.iter().map(|g| g.2).filter(|&i| symbols[i].size > 0).collect();
            if sized.len() < 2 {
                continue;
            }
            let Some(owner) = sized.iter().copied().max_by_key(|&i| symbols[i].relocs.len()) else {
                continue;
            };
            let relocs = symbols[owner].relocs.clone();
            for &i in &sized {
                if symbols[i].relocs.is_empty() {
                    symbols[i].relocs = relocs.clone();
                }
            }
        }
    }
}

/// Copies a function's PC-relative biases (found by decoding) onto the
/// same relocations in its section's list. Both lists describe one field;
/// without this the section's copy says the field denotes `target +
/// addend`, four bytes before the literal the code really uses, and a
/// literal that follows another one directly looked shorter than it is
/// (gcc -O0 keeps literals in plain `.rodata`: a change after the fourth
/// byte from the end was not seen).
fn share_code_biases(sym: &Symbol, sections: &mut [Option<Section>]) {
    let Some(Some(sec)) = sections.get_mut(sym.section) else {
        return;
    };
    // Both lists are sorted by place: one search for the function's
    // start, then a walk (a search per relocation missed the cache on
    // every step of SQLite's 7,000 `.text` relocations).
    let mut at = sec.relocs.partition_point(|x| x.offset < sym.offset);
    for r in sym.relocs.iter().filter(|r| !r.synthetic && r.pc_bias != 0) {
        let place = sym.offset.saturating_add(r.offset);
        while sec.relocs.get(at).is_some_and(|x| x.offset < place) {
            at += 1;
        }
        for x in sec.relocs[at..].iter_mut().take_while(|x| x.offset == place) {
            x.pc_bias = r.pc_bias;
        }
    }
}

/// Gives each entry of a relative jump table its `pc_bias`.
///
/// A switch table in read-only data holds `.long .Lcase - .Ltable`: the
/// assembler writes it as a PC-relative relocation against the code
/// section whose addend is the case label's offset plus the entry's
/// distance from the table's start (the field is `S + A - P`, and `P` is
/// the entry, not the table). The place such an entry denotes is therefore
/// `target + addend - (entry - table)`: without the bias the entries of a
/// large table seem to point past their function, into the next one or
/// into padding. The table's start is the nearest place at or before the
/// entry that code refers to (the `lea .Ltable(%rip)` of the dispatch).
fn bias_table_entries(symbols: &mut [Symbol], sections: &mut [Option<Section>]) {
    let executable: Vec<bool> = sections
        .iter()
        .map(|s| s.as_ref().is_some_and(|s| s.executable))
        .collect();
    let is_code = |i: usize| executable.get(i).copied().unwrap_or(false);
    // Per data section: every place code refers to, sorted.
    let mut code_refs: foldhash::HashMap<usize, Vec<i64>> = Default::default();
    for f in symbols.iter().filter(|s| s.kind == Kind::Function) {
        for r in &f.relocs {
            if let Target::Section { section, offset } = r.target {
                if !is_code(section) {
                    code_refs
                        .entry(section)
                        .or_default()
                        .push(offset.wrapping_add(r.pc_bias));
                }
            }
        }
    }
    if code_refs.is_empty() {
        return;
    }
    for list in code_refs.values_mut() {
        list.sort_unstable();
        list.dedup();
    }
    let bias = |section: usize, place: u64, r: &Reloc| -> Option<i64> {
        if !matches!(r.r_type, rtype::PC32 | rtype::PC64) {
            return None;
        }
        if !matches!(r.target, Target::Section { .. }) || is_code(section) {
            return None;
        }
        let place = i64::try_from(place).ok()?;
        let refs = code_refs.get(&section)?;
        let base = refs[..refs.partition_point(|&o| o <= place)].last()?;
        Some(base - place)
    };
    for (i, sec) in sections.iter_mut().enumerate() {
        for r in sec.iter_mut().flat_map(|s| &mut s.relocs) {
            if let Some(b) = bias(i, r.offset, r) {
                r.pc_bias = b;
            }
        }
    }
    for sym in symbols.iter_mut().filter(|s| s.kind != Kind::Function) {
        let (section, start) = (sym.section, sym.offset);
        for r in &mut sym.relocs {
            if let Some(b) = bias(section, start.wrapping_add(r.offset), r) {
                r.pc_bias = b;
            }
        }
    }
}

/// Decodes a function, records each PC-relative relocation's `pc_bias`,
/// and adds the relocations the assembler left out (references to other
/// code of the same section, resolved at assembly time).
fn complete_code_relocations(sym: &mut Symbol, next_starts: bool, decoded: std::sync::Arc<Decoded>) {
    // The relocations and the instructions are both in order of offset:
    // each relocation's instruction by a walk, not a search.
    let instructions = &decoded.instructions;
    let mut next = 0;
    for r in &mut sym.relocs {
        if r.pc_relative() {
            while instructions.get(next).is_some_and(|&(start, _)| start <= r.offset) {
                next += 1;
            }
            let containing = next
                .checked_sub(1)
                .map(|k| instructions[k])
                .filter(|&(start, len)| r.offset < start + u64::from(len));
            r.pc_bias = containing.map_or(4, |(start, len)| (start + u64::from(len) - r.offset) as i64);
        }
    }
    // The relocations are sorted by offset (the caller's order).
    let mut added = Vec::new();
    for f in &decoded.pc_relative {
        let covered = sym.relocs.binary_search_by_key(&f.field, |r| r.offset).is_ok();
        // A branch to the function's very end, where no other function
        // starts, is to a label after code that does not return (Clang:
        // `call __cxa_throw; jmp .Lend`): never taken, it stays inside
        // the copy, whose end the linker marks with int3. Where a
        // function starts there, it is a call (or tail call) of that one.
        let end_label = f.target == sym.size as i64 && !next_starts;
        if covered || (0..sym.size as i64).contains(&f.target) || end_label {
            continue;
        }
        if f.size != 4 {
            sym.short_exits.push(ShortExit {
                field: f.field,
                target: (sym.offset as i64).wrapping_add(f.target),
            });
            continue;
        }
        let pc_bias = (f.next - f.field) as i64;
        added.push(Reloc {
            offset: f.field,
            r_type: rtype::PC32,
            target: Target::Section {
                section: sym.section,
                offset: (sym.offset as i64).wrapping_add(f.target).wrapping_sub(pc_bias),
            },
            addend: 0,
            pc_bias,
            synthetic: true,
            label: None,
        });
    }
    sym.relocs.extend(added);
    if let Some(at) = decoded.invalid_at {
        sym.problem
            .get_or_insert(format!("bytes at +{at:#x} do not decode as x86-64"));
    }
    sym.decoded = Some(decoded);
}

/// Debug section `name` of the object in `data`, each relocated field set
/// to `place(section, offset)`: the address the place `offset` of section
/// `section` (by ELF index) has now, `None` to leave the field as it is.
/// For a debugger's view of code that moved (see [`crate::debug_file`]).
pub fn placed_debug_section(data: &[u8], name: &str, place: &dyn Fn(usize, i64) -> Option<u64>) -> Vec<u8> {
    let mut out = Vec::new();
    place_debug_section_into(data, name, place, &mut out);
    out
}

/// [`placed_debug_section`] appended to `out`: a symbol file is mostly
/// these sections (SQLite's, 3.5 MB), and building each apart copied it
/// once more into the file, into fresh pages.
pub fn place_debug_section_into(data: &[u8], name: &str, place: &dyn Fn(usize, i64) -> Option<u64>, out: &mut Vec<u8>) {
    let Ok(file) = object::File::parse(data) else {
        return;
    };
    // Each symbol's section and value, read once (SQLite's DWARF has a
    // few hundred thousand relocations against a handful of symbols).
    let mut symbols: Vec<Option<Option<(usize, i64)>>> = Vec::new();
    let mut value_of = |idx: object::SymbolIndex, addend: i64| -> Option<u64> {
        if symbols.len() <= idx.0 {
            symbols.resize(idx.0 + 1, None);
        }
        let (section, value) = (*symbols[idx.0].get_or_insert_with(|| {
            let sym = file.symbol_by_index(idx).ok()?;
            Some((sym.section_index()?.0, sym.address() as i64))
        }))?;
        place(section, value.wrapping_add(addend))
    };
    let Some(section) = file.section_by_name(name).and_then(|s| s.data().ok()) else {
        return;
    };
    let start = out.len();
    out.extend_from_slice(section);
    let bytes = &mut out[start..];
    // The absolute relocations (`R_X86_64_32` and `_64`, all DWARF has),
    // each field written at its fixed width.
    for entry in crate::debug_relocs::entries(&file, name) {
        let r = crate::debug_relocs::rela(entry);
        // Symbol 0 is none; a hostile index beyond the table is none too.
        if r.symbol == 0 || r.symbol >= (1 << 24) || !matches!(r.r_type, rtype::R32 | rtype::R64) {
            continue;
        }
        let Some(value) = value_of(object::SymbolIndex(r.symbol), r.addend) else {
            continue;
        };
        let Ok(at) = usize::try_from(r.offset) else { continue };
        let le = value.to_le_bytes();
        if r.r_type == rtype::R32 {
            if let Some(dst) = at.checked_add(4).and_then(|end| bytes.get_mut(at..end)) {
                dst.copy_from_slice(&le[..4]);
            }
        } else if let Some(dst) = at.checked_add(8).and_then(|end| bytes.get_mut(at..end)) {
            dst.copy_from_slice(&le);
        }
    }
}

fn malformed(path: &str, what: &str) -> PatchError {
    PatchError::Malformed {
        path: path.to_string(),
        what: what.to_string(),
    }
}

/// LLVM bitcode, raw (`BC\xC0\xDE`) or in its wrapper (`0x0B17C0DE`).
fn is_llvm_bitcode(data: &[u8]) -> bool {
    data.starts_with(b"BC\xC0\xDE") || data.starts_with(&0x0B17_C0DEu32.to_le_bytes())
}

/// A GCC LTO object without machine code: it has `.gnu.lto_*` sections
/// and either GCC's `__gnu_lto_slim` marker or no allocated section with
/// contents (a fat object's `.text` and data are real).
fn is_slim_lto(file: &object::File) -> bool {
    let lto = file
        .sections()
        .any(|s| s.name().is_ok_and(|n| n.starts_with(".gnu.lto_")));
    if !lto {
        return false;
    }
    let marked = file.symbols().any(|s| s.name() == Ok("__gnu_lto_slim"));
    let allocated = |s: &object::Section| match s.flags() {
        object::SectionFlags::Elf { sh_flags, .. } => sh_flags.0 & elf::SHF_ALLOC.0 != 0,
        _ => false,
    };
    marked || !file.sections().any(|s| allocated(&s) && s.size() > 0)
}

#[cfg(test)]
mod tests {
    use super::Covering;

    #[test]
    fn a_place_beside_objects_belongs_to_the_nearest() {
        // buf at 0..64, calls at 64..68, table at 96..128 (a gap before it).
        let c = Covering::of_spans(vec![(96, 128, 2), (0, 64, 0), (64, 68, 1)]);
        assert_eq!(c.nearest(-1), Some(0), "buf - 1, GCC's base for buf[k] from k = 1");
        assert_eq!(c.nearest(-40), Some(0));
        assert_eq!(c.nearest(68), Some(1), "one past calls: its end");
        assert_eq!(
            c.nearest(80),
            Some(1),
            "nearer the end of calls than the start of table"
        );
        assert_eq!(c.nearest(90), Some(2), "nearer the start of table");
        assert_eq!(c.nearest(128), Some(2), "one past the last object");
        assert_eq!(c.nearest(5000), Some(2));
        assert_eq!(Covering::of_spans(Vec::new()).nearest(3), None);
        // Covered places are at's, which nearest is not asked about.
        assert_eq!(c.at(64), Some((1, 0)));
    }

    /// The neighbours of a place by a boundary (see verify's
    /// `neighbour_readings`): the symbol ending at or before it, and the
    /// one starting after it.
    #[test]
    fn a_place_by_a_boundary_has_its_neighbours() {
        // buf at 0..64, calls at 64..68, table at 96..128.
        let c = Covering::of_spans(vec![(96, 128, 2), (0, 64, 0), (64, 68, 1)]);
        assert_eq!(
            c.ending_before(64),
            Some((0, 0, 64)),
            "one past buf, where calls starts"
        );
        assert_eq!(c.ending_before(70), Some((1, 64, 68)));
        assert_eq!(c.ending_before(30), None, "inside buf, nothing ends before");
        assert_eq!(c.next(94), Some((96, 2)), "two before table");
        assert_eq!(c.next(96), None, "table starts there: nothing after");
    }
}
