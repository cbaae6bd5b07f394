//! SMF v1 files: reading and writing, field by field (docs/smf.md).
//!
//! Every field is read explicitly at its documented offset with checked
//! arithmetic; every table and name is bounds-checked. A damaged file is an
//! [`FormatError`] naming the structure and offset, never a panic.

use std::borrow::Cow;
use std::fmt::Display;

use serde::Serialize;

pub const MAGIC: [u8; 4] = *b"SMF\0";
pub const VERSION_MAJOR: u16 = 1;
pub const VERSION_MINOR: u16 = 0;
pub const HEADER_SIZE: u64 = 96;
pub const SECTION_ENTRY: u64 = 48;
pub const SYMBOL_ENTRY: u64 = 40;
pub const RELOCATION_ENTRY: u64 = 32;
pub const NO_ENTRY: u32 = u32::MAX;
pub const IMPORT: u32 = u32::MAX;
pub const ARCH_X86_64: u16 = 62;
pub const MAX_ALIGN: u64 = 4096;
/// The largest section in memory (1 GiB): a loader sums section sizes and
/// maps them, so a damaged size must fail here, not as an overflow there.
pub const MAX_SECTION_SIZE: u64 = 1 << 30;

pub const FLAG_EXECUTABLE: u32 = 1;
pub const FLAG_RELOADABLE: u32 = 2;
pub const FLAG_PIC: u32 = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SectionKind {
    Code,
    Data,
    RoData,
    Bss,
}

impl SectionKind {
    /// Its name in relive's output (text and JSON alike).
    pub fn name(self) -> &'static str {
        match self {
            SectionKind::Code => "code",
            SectionKind::Data => "data",
            SectionKind::RoData => "ro_data",
            SectionKind::Bss => "bss",
        }
    }

    fn code(self) -> u32 {
        match self {
            SectionKind::Code => 1,
            SectionKind::Data => 2,
            SectionKind::RoData => 3,
            SectionKind::Bss => 4,
        }
    }

    fn from_code(v: u32) -> Option<SectionKind> {
        Some(match v {
            1 => SectionKind::Code,
            2 => SectionKind::Data,
            3 => SectionKind::RoData,
            4 => SectionKind::Bss,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SymbolType {
    None,
    Function,
    Object,
    Section,
}

impl SymbolType {
    /// Its name in relive's output (text and JSON alike).
    pub fn name(self) -> &'static str {
        match self {
            SymbolType::None => "none",
            SymbolType::Function => "function",
            SymbolType::Object => "object",
            SymbolType::Section => "section",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Binding {
    Local,
    Global,
    Weak,
}

impl Binding {
    /// Its name in relive's output (text and JSON alike).
    pub fn name(self) -> &'static str {
        match self {
            Binding::Local => "local",
            Binding::Global => "global",
            Binding::Weak => "weak",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RelocType {
    Abs64,
    Pc32,
    Plt32,
    GotPcRel,
    /// `S + A` in 4 bytes, zero-extended (`R_X86_64_32`): code built
    /// without `-fPIC`; the module is placed in the low 2 GiB.
    Abs32,
    /// `S + A` in 4 bytes, sign-extended (`R_X86_64_32S`), likewise.
    Abs32S,
}

impl RelocType {
    /// Its name in relive's output (text and JSON alike).
    pub fn name(self) -> &'static str {
        match self {
            RelocType::Abs64 => "abs64",
            RelocType::Pc32 => "pc32",
            RelocType::Plt32 => "plt32",
            RelocType::GotPcRel => "got_pc_rel",
            RelocType::Abs32 => "abs32",
            RelocType::Abs32S => "abs32s",
        }
    }

    fn code(self) -> u32 {
        match self {
            RelocType::Abs64 => 1,
            RelocType::Pc32 => 2,
            RelocType::Plt32 => 3,
            RelocType::GotPcRel => 4,
            RelocType::Abs32 => 5,
            RelocType::Abs32S => 6,
        }
    }

    fn from_code(v: u32) -> Option<RelocType> {
        Some(match v {
            1 => RelocType::Abs64,
            2 => RelocType::Pc32,
            3 => RelocType::Plt32,
            4 => RelocType::GotPcRel,
            5 => RelocType::Abs32,
            6 => RelocType::Abs32S,
            _ => return None,
        })
    }

    /// Whether it holds a 32-bit address, so the module must be placed in
    /// the low 2 GiB.
    pub fn needs_low_placement(self) -> bool {
        matches!(self, RelocType::Abs32 | RelocType::Abs32S)
    }

    /// Whether it is counted from the place of its field (`S + A - P`).
    pub fn pc_relative(self) -> bool {
        matches!(self, RelocType::Pc32 | RelocType::Plt32 | RelocType::GotPcRel)
    }

    /// Bytes of the field it fills.
    pub fn width(self) -> u64 {
        match self {
            RelocType::Abs64 => 8,
            _ => 4,
        }
    }
}

/// A section. Parsed from a file, its name and bytes borrow the file's
/// (no copy); built by `pack`, it owns them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Section<'a> {
    pub name: Cow<'a, str>,
    pub kind: SectionKind,
    /// File bytes (empty for Bss); memory beyond them is zero.
    #[serde(skip)]
    pub bytes: Cow<'a, [u8]>,
    pub memory_size: u64,
    pub alignment: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Symbol<'a> {
    pub name: Cow<'a, str>,
    pub kind: SymbolType,
    pub binding: Binding,
    /// Section index; `None` for an import.
    pub section: Option<u32>,
    pub value: u64,
    pub size: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Relocation {
    pub section: u32,
    pub kind: RelocType,
    pub offset: u64,
    pub symbol: u32,
    pub addend: i64,
}

/// One module, in memory. `'a` is the file it was parsed from (names and
/// section bytes borrow it); [`Module::into_owned`] detaches it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Module<'a> {
    pub version_minor: u16,
    pub platform: u16,
    pub arch: u16,
    pub flags: u32,
    pub sections: Vec<Section<'a>>,
    pub symbols: Vec<Symbol<'a>>,
    pub relocations: Vec<Relocation>,
    pub entry: Option<u32>,
    pub module_hash: u64,
    pub source_hash: u64,
}

/// Why a file is not a usable SMF module.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    #[error("not an SMF module: the magic is {0:02x?}, not \"SMF\\0\"")]
    Magic([u8; 4]),
    #[error("SMF version {major}.{minor} is not supported (this relive reads 1.x)")]
    Version { major: u16, minor: u16 },
    #[error("truncated: {what} at offset {offset:#x} needs {need} bytes, the file has {len}")]
    Truncated {
        what: String,
        offset: u64,
        need: u64,
        len: u64,
    },
    #[error("{what} at offset {offset:#x}: {reason}")]
    Invalid { what: String, offset: u64, reason: String },
}

/// FNV-1a, 32-bit: symbol name hashes.
pub fn fnv1a32(bytes: &[u8]) -> u32 {
    bytes
        .iter()
        .fold(0x811c_9dc5, |h: u32, &b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193))
}

/// FNV-1a 64's offset basis and prime (the module hash's lanes use them too).
const FNV64_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
const FNV64_PRIME: u64 = 0x100_0000_01b3;

/// FNV-1a, 64-bit: the source hash.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .fold(FNV64_BASIS, |h, &b| (h ^ u64::from(b)).wrapping_mul(FNV64_PRIME))
}

/// The module hash (docs/smf.md): the bytes read as little-endian 64-bit
/// words (the last one zero-padded); word `k` goes to lane `k % 4`; lane
/// `j` starts at the FNV-1a 64 offset basis xor `j` and takes each word
/// with an FNV-1a 64 step; then the lanes, in order, and the byte count
/// are folded into the basis with the same step. Four independent lanes
/// keep the multiplier busy (a single chain of dependent multiplies was
/// most of the parse time); every single-word change still alters the
/// result (each step is a bijection of the state).
pub fn module_hash(bytes: &[u8]) -> u64 {
    let step = |h: u64, word: u64| (h ^ word).wrapping_mul(FNV64_PRIME);
    let word = |b: &[u8]| u64::from_le_bytes(b.try_into().expect("8 bytes"));
    let mut lanes = [FNV64_BASIS, FNV64_BASIS ^ 1, FNV64_BASIS ^ 2, FNV64_BASIS ^ 3];
    let mut blocks = bytes.chunks_exact(32);
    for block in &mut blocks {
        for (j, lane) in lanes.iter_mut().enumerate() {
            *lane = step(*lane, word(&block[8 * j..8 * j + 8]));
        }
    }
    let rest = blocks.remainder();
    for (j, chunk) in rest.chunks(8).enumerate() {
        let mut last = [0u8; 8];
        last[..chunk.len()].copy_from_slice(chunk);
        lanes[j] = step(lanes[j], u64::from_le_bytes(last));
    }
    let h = lanes.iter().fold(FNV64_BASIS, |h, &lane| step(h, lane));
    step(h, bytes.len() as u64)
}

/// One table entry's bytes (already bounds-checked as a whole): fields at
/// fixed offsets inside it, read without further checks.
struct Fields<'a>(&'a [u8]);

impl Fields<'_> {
    fn u8(&self, at: usize) -> u8 {
        self.0[at]
    }

    fn u32(&self, at: usize) -> u32 {
        u32::from_le_bytes(self.0[at..at + 4].try_into().expect("4 bytes"))
    }

    fn u64(&self, at: usize) -> u64 {
        u64::from_le_bytes(self.0[at..at + 8].try_into().expect("8 bytes"))
    }
}

/// Bounds-checked little-endian reads.
struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    fn bytes(&self, offset: u64, len: u64, what: impl Display + Copy) -> Result<&'a [u8], FormatError> {
        let truncated = || FormatError::Truncated {
            what: what.to_string(),
            offset,
            need: len,
            len: self.data.len() as u64,
        };
        let end = offset.checked_add(len).ok_or_else(truncated)?;
        let (start, end) = (usize::try_from(offset), usize::try_from(end));
        match (start, end) {
            (Ok(s), Ok(e)) => self.data.get(s..e).ok_or_else(truncated),
            _ => Err(truncated()),
        }
    }

    fn u16(&self, offset: u64, what: impl Display + Copy) -> Result<u16, FormatError> {
        let b = self.bytes(offset, 2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&self, offset: u64, what: impl Display + Copy) -> Result<u32, FormatError> {
        let b = self.bytes(offset, 4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&self, offset: u64, what: impl Display + Copy) -> Result<u64, FormatError> {
        let b = self.bytes(offset, 8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
}

/// Names a table entry in errors; formatted only when there is an error
/// (a `format!` per entry would cost more than the parse itself).
#[derive(Clone, Copy)]
struct Entry {
    table: &'static str,
    index: u64,
}

impl Display for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.table, self.index)
    }
}

#[cold]
fn invalid(what: impl Display, offset: u64, reason: impl Into<String>) -> FormatError {
    FormatError::Invalid {
        what: what.to_string(),
        offset,
        reason: reason.into(),
    }
}

/// A name from the string table: `(offset, entry offset, entry)`.
type NameOf<'s, 'a> = dyn Fn(u32, u64, Entry) -> Result<&'a str, FormatError> + 's;

// Per table entry kind: the checks of every field. They are inlined
// (`inline(always)`): out of line, each entry came back through a `Result`
// on the stack and the copies stalled on store forwarding. For the two
// big tables, symbols and relocations, checking and building are separate
// passes for the same reason (parse: 7.1 µs for the 200-function bench
// module before, 4.2 after).

#[inline(always)]
fn section<'a>(
    r: &Reader<'a>,
    at: u64,
    what: Entry,
    e: Fields<'a>,
    name: &NameOf<'_, 'a>,
) -> Result<Section<'a>, FormatError> {
    let kind_code = e.u32(4);
    let kind =
        SectionKind::from_code(kind_code).ok_or_else(|| invalid(what, at + 4, format!("unknown kind {kind_code}")))?;
    let file_offset = e.u64(8);
    let file_size = e.u64(16);
    let memory_size = e.u64(24);
    let alignment = e.u64(32);
    if !alignment.is_power_of_two() || alignment > MAX_ALIGN {
        return Err(invalid(what, at + 32, format!("alignment {alignment}")));
    }
    if memory_size > MAX_SECTION_SIZE {
        return Err(invalid(
            what,
            at + 24,
            format!("memory size {memory_size} exceeds 1 GiB"),
        ));
    }
    if memory_size < file_size {
        return Err(invalid(what, at + 24, "memory size below file size"));
    }
    if kind == SectionKind::Bss && file_size != 0 {
        return Err(invalid(what, at + 16, "a Bss section has file bytes"));
    }
    let bytes = r.bytes(file_offset, file_size, what)?;
    Ok(Section {
        name: Cow::Borrowed(name(e.u32(0), at, what)?),
        kind,
        bytes: Cow::Borrowed(bytes),
        memory_size,
        alignment,
    })
}

/// Checks one symbol entry; [`decode_symbol`] then builds it. Two passes
/// because building while checking kept the fields on the stack and the
/// copy into the `Vec` stalled (store forwarding); a pass that only builds
/// writes straight into it.
#[inline(always)]
fn check_symbol(at: u64, what: Entry, e: Fields, name: &NameOf, sections: &[Section]) -> Result<(), FormatError> {
    let symbol_name = name(e.u32(0), at, what)?;
    if e.u32(4) != fnv1a32(symbol_name.as_bytes()) {
        return Err(invalid(
            what,
            at + 4,
            format!("name hash does not match {symbol_name:?}"),
        ));
    }
    if symbol_type(e.u8(8)).is_none() {
        return Err(invalid(what, at + 8, format!("unknown type {}", e.u8(8))));
    }
    if binding(e.u8(9)).is_none() {
        return Err(invalid(what, at + 9, format!("unknown binding {}", e.u8(9))));
    }
    let (value, size) = (e.u64(16), e.u64(24));
    match e.u32(12) {
        IMPORT => Ok(()),
        s => {
            let memory = sections
                .get(s as usize)
                .ok_or_else(|| invalid(what, at + 12, format!("section {s} does not exist")))?
                .memory_size;
            if value.checked_add(size).is_none_or(|end| end > memory) {
                return Err(invalid(
                    what,
                    at + 16,
                    format!("{symbol_name} lies outside its section"),
                ));
            }
            Ok(())
        }
    }
}

/// Builds a symbol entry [`check_symbol`] accepted (the fallbacks below
/// cannot be reached).
#[inline(always)]
fn decode_symbol<'a>(e: Fields<'a>, strings: &'a str) -> Symbol<'a> {
    Symbol {
        name: Cow::Borrowed(name_at(strings, e.u32(0)).unwrap_or_default()),
        kind: symbol_type(e.u8(8)).unwrap_or(SymbolType::None),
        binding: binding(e.u8(9)).unwrap_or(Binding::Local),
        section: match e.u32(12) {
            IMPORT => None,
            s => Some(s),
        },
        value: e.u64(16),
        size: e.u64(24),
    }
}

fn symbol_type(code: u8) -> Option<SymbolType> {
    Some(match code {
        0 => SymbolType::None,
        1 => SymbolType::Function,
        2 => SymbolType::Object,
        3 => SymbolType::Section,
        _ => return None,
    })
}

fn binding(code: u8) -> Option<Binding> {
    Some(match code {
        0 => Binding::Local,
        1 => Binding::Global,
        2 => Binding::Weak,
        _ => return None,
    })
}

/// The NUL-terminated name at `offset` in the string table.
fn name_at(strings: &str, offset: u32) -> Option<&str> {
    let rest = strings.get(offset as usize..)?;
    rest.bytes().position(|b| b == 0).map(|end| &rest[..end])
}

/// Checks one relocation entry; [`decode_relocation`] then builds it (two
/// passes, as for symbols).
#[inline(always)]
fn check_relocation(at: u64, what: Entry, e: Fields, sections: &[Section], symbols: usize) -> Result<(), FormatError> {
    let section = e.u32(0);
    let type_code = e.u32(4);
    let kind =
        RelocType::from_code(type_code).ok_or_else(|| invalid(what, at + 4, format!("unknown type {type_code}")))?;
    let offset = e.u64(8);
    let symbol = e.u32(16);
    let target = sections
        .get(section as usize)
        .ok_or_else(|| invalid(what, at, format!("section {section} does not exist")))?;
    if target.kind == SectionKind::Bss
        || offset
            .checked_add(kind.width())
            .is_none_or(|end| end > target.bytes.len() as u64)
    {
        return Err(invalid(
            what,
            at + 8,
            format!("field at {offset:#x} is outside {}'s bytes", target.name),
        ));
    }
    if symbol as usize >= symbols {
        return Err(invalid(what, at + 16, format!("symbol {symbol} does not exist")));
    }
    Ok(())
}

/// Builds a relocation entry [`check_relocation`] accepted.
#[inline(always)]
fn decode_relocation(e: Fields) -> Relocation {
    Relocation {
        section: e.u32(0),
        kind: RelocType::from_code(e.u32(4)).unwrap_or(RelocType::Abs64),
        offset: e.u64(8),
        symbol: e.u32(16),
        addend: e.u64(24) as i64,
    }
}

impl<'a> Module<'a> {
    /// Parses an SMF file. Nothing is copied: names and section bytes
    /// borrow `data`.
    pub fn parse(data: &'a [u8]) -> Result<Module<'a>, FormatError> {
        let r = Reader { data };
        let magic = r.bytes(0, 4, "magic")?;
        if magic != MAGIC {
            let mut m = [0u8; 4];
            m.copy_from_slice(magic);
            return Err(FormatError::Magic(m));
        }
        let major = r.u16(4, "version")?;
        let minor = r.u16(6, "version")?;
        if major != VERSION_MAJOR {
            return Err(FormatError::Version { major, minor });
        }
        let header_size = u64::from(r.u16(8, "header_size")?);
        if header_size < HEADER_SIZE {
            return Err(invalid("header", 8, format!("header_size {header_size} is below 96")));
        }
        r.bytes(0, header_size, "header")?;
        let platform = r.u16(10, "platform")?;
        let arch = r.u16(12, "arch")?;
        let flags = r.u32(16, "flags")?;
        let section_count = u64::from(r.u32(20, "section_count")?);
        let section_table = r.u64(24, "section_table_offset")?;
        let symbol_count = u64::from(r.u32(32, "symbol_count")?);
        let relocation_count = u64::from(r.u32(36, "relocation_count")?);
        let symbol_table = r.u64(40, "symbol_table_offset")?;
        let relocation_table = r.u64(48, "relocation_table_offset")?;
        let strings_offset = r.u64(56, "string_table_offset")?;
        let strings_size = r.u64(64, "string_table_size")?;
        let entry = r.u32(72, "entry_symbol")?;
        let module_hash = r.u64(80, "module_hash")?;
        let source_hash = r.u64(88, "source_hash")?;

        // Whole tables first: a count cannot promise more than the file has.
        let table = |base: u64, count: u64, size: u64, what: &str| -> Result<&'a [u8], FormatError> {
            let len = count
                .checked_mul(size)
                .ok_or_else(|| invalid(what, base, "table size overflows"))?;
            r.bytes(base, len, what)
        };
        let section_bytes = table(section_table, section_count, SECTION_ENTRY, "section table")?;
        let symbol_bytes = table(symbol_table, symbol_count, SYMBOL_ENTRY, "symbol table")?;
        let relocation_bytes = table(relocation_table, relocation_count, RELOCATION_ENTRY, "relocation table")?;
        // The whole table is UTF-8 (checked once: per name it cost a third
        // of the parse); a name ends at a NUL, so it is a whole `str`.
        let strings = std::str::from_utf8(r.bytes(strings_offset, strings_size, "string table")?).map_err(|e| {
            invalid(
                "string table",
                strings_offset,
                format!("not UTF-8 at byte {}", e.valid_up_to()),
            )
        })?;
        let name = |offset: u32, at: u64, what: Entry| -> Result<&'a str, FormatError> {
            name_at(strings, offset).ok_or_else(|| {
                let reason = if strings.get(offset as usize..).is_none() {
                    format!("name offset {offset} is past the string table or inside a character")
                } else {
                    "name is not NUL-terminated".to_string()
                };
                invalid(what, at, reason)
            })
        };

        // Each table was bounds-checked as a whole above; its entries are
        // walked as fixed-size chunks: (file offset, name in errors, fields).
        let entries = |bytes: &'a [u8], base: u64, size: u64, table: &'static str| {
            bytes.chunks_exact(size as usize).enumerate().map(move |(i, e)| {
                let index = i as u64;
                (base + index * size, Entry { table, index }, Fields(e))
            })
        };
        let mut sections = Vec::with_capacity(section_count as usize);
        for (at, what, e) in entries(section_bytes, section_table, SECTION_ENTRY, "section") {
            sections.push(section(&r, at, what, e, &name)?);
        }
        for (at, what, e) in entries(symbol_bytes, symbol_table, SYMBOL_ENTRY, "symbol") {
            check_symbol(at, what, e, &name, &sections)?;
        }
        let symbols: Vec<Symbol> = symbol_bytes
            .chunks_exact(SYMBOL_ENTRY as usize)
            .map(|e| decode_symbol(Fields(e), strings))
            .collect();
        for (at, what, e) in entries(relocation_bytes, relocation_table, RELOCATION_ENTRY, "relocation") {
            check_relocation(at, what, e, &sections, symbols.len())?;
        }
        let relocations: Vec<Relocation> = relocation_bytes
            .chunks_exact(RELOCATION_ENTRY as usize)
            .map(|e| decode_relocation(Fields(e)))
            .collect();
        let entry = match entry {
            NO_ENTRY => None,
            e if (e as usize) < symbols.len() => Some(e),
            e => return Err(invalid("header", 72, format!("entry symbol {e} does not exist"))),
        };
        let rest = r.bytes(HEADER_SIZE, data.len() as u64 - HEADER_SIZE, "body")?;
        if self::module_hash(rest) != module_hash {
            return Err(invalid(
                "header",
                80,
                "module hash does not match the contents (damaged file)",
            ));
        }
        Ok(Module {
            version_minor: minor,
            platform,
            arch,
            flags,
            sections,
            symbols,
            relocations,
            entry,
            module_hash,
            source_hash,
        })
    }

    /// The same module owning its names and bytes.
    pub fn into_owned(self) -> Module<'static> {
        Module {
            version_minor: self.version_minor,
            platform: self.platform,
            arch: self.arch,
            flags: self.flags,
            sections: self
                .sections
                .into_iter()
                .map(|s| Section {
                    name: Cow::Owned(s.name.into_owned()),
                    kind: s.kind,
                    bytes: Cow::Owned(s.bytes.into_owned()),
                    memory_size: s.memory_size,
                    alignment: s.alignment,
                })
                .collect(),
            symbols: self
                .symbols
                .into_iter()
                .map(|s| Symbol {
                    name: Cow::Owned(s.name.into_owned()),
                    ..s
                })
                .collect(),
            relocations: self.relocations,
            entry: self.entry,
            module_hash: self.module_hash,
            source_hash: self.source_hash,
        }
    }

    /// The file bytes of this module (the module hash is computed here).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut strings = vec![0u8];
        let mut intern = |s: &str| -> u32 {
            if s.is_empty() {
                return 0;
            }
            let at = strings.len() as u32;
            strings.extend_from_slice(s.as_bytes());
            strings.push(0);
            at
        };
        let section_names: Vec<u32> = self.sections.iter().map(|s| intern(&s.name)).collect();
        let symbol_names: Vec<u32> = self.symbols.iter().map(|s| intern(&s.name)).collect();

        let mut out = vec![0u8; HEADER_SIZE as usize];
        let align = |out: &mut Vec<u8>, to: u64| {
            let at = (out.len() as u64).next_multiple_of(to);
            out.resize(at as usize, 0);
            at
        };
        // Section bytes.
        let mut file_offsets = Vec::new();
        for s in &self.sections {
            if s.bytes.is_empty() {
                file_offsets.push(0);
                continue;
            }
            file_offsets.push(align(&mut out, s.alignment.clamp(1, MAX_ALIGN)));
            out.extend_from_slice(&s.bytes);
        }
        let section_table = align(&mut out, 8);
        for (i, s) in self.sections.iter().enumerate() {
            put32(&mut out, section_names[i]);
            put32(&mut out, s.kind.code());
            put64(&mut out, file_offsets[i]);
            put64(&mut out, s.bytes.len() as u64);
            put64(&mut out, s.memory_size);
            put64(&mut out, s.alignment);
            put32(&mut out, 0);
            put32(&mut out, 0);
        }
        let symbol_table = out.len() as u64;
        for (i, s) in self.symbols.iter().enumerate() {
            put32(&mut out, symbol_names[i]);
            put32(&mut out, fnv1a32(s.name.as_bytes()));
            out.push(match s.kind {
                SymbolType::None => 0,
                SymbolType::Function => 1,
                SymbolType::Object => 2,
                SymbolType::Section => 3,
            });
            out.push(match s.binding {
                Binding::Local => 0,
                Binding::Global => 1,
                Binding::Weak => 2,
            });
            out.extend_from_slice(&[0, 0]);
            put32(&mut out, s.section.unwrap_or(IMPORT));
            put64(&mut out, s.value);
            put64(&mut out, s.size);
            put64(&mut out, 0);
        }
        let relocation_table = out.len() as u64;
        for r in &self.relocations {
            put32(&mut out, r.section);
            put32(&mut out, r.kind.code());
            put64(&mut out, r.offset);
            put32(&mut out, r.symbol);
            put32(&mut out, 0);
            put64(&mut out, r.addend as u64);
        }
        let strings_offset = out.len() as u64;
        out.extend_from_slice(&strings);

        let mut h = Vec::with_capacity(HEADER_SIZE as usize);
        h.extend_from_slice(&MAGIC);
        h.extend_from_slice(&VERSION_MAJOR.to_le_bytes());
        h.extend_from_slice(&self.version_minor.to_le_bytes());
        h.extend_from_slice(&(HEADER_SIZE as u16).to_le_bytes());
        h.extend_from_slice(&self.platform.to_le_bytes());
        h.extend_from_slice(&self.arch.to_le_bytes());
        h.extend_from_slice(&[0, 0]);
        put32(&mut h, self.flags);
        put32(&mut h, self.sections.len() as u32);
        put64(&mut h, section_table);
        put32(&mut h, self.symbols.len() as u32);
        put32(&mut h, self.relocations.len() as u32);
        put64(&mut h, symbol_table);
        put64(&mut h, relocation_table);
        put64(&mut h, strings_offset);
        put64(&mut h, strings.len() as u64);
        put32(&mut h, self.entry.unwrap_or(NO_ENTRY));
        put32(&mut h, 0);
        put64(&mut h, module_hash(&out[HEADER_SIZE as usize..]));
        put64(&mut h, self.source_hash);
        out[..HEADER_SIZE as usize].copy_from_slice(&h);
        out
    }

    /// The index of the global (or weak) symbol `name` defined here.
    pub fn export(&self, name: &str) -> Option<usize> {
        let hash = fnv1a32(name.as_bytes());
        self.symbols.iter().position(|s| {
            s.section.is_some() && s.binding != Binding::Local && fnv1a32(s.name.as_bytes()) == hash && s.name == name
        })
    }
}

fn put32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}
