//! A relocatable object's DWARF relocations, applied as a reader reads
//! each field instead of to a copy of the section.
//!
//! In an object file, `.debug_info`'s references to strings and to other
//! sections are relocations: the field holds 0 and the relocation's addend
//! the offset. SQLite's `.debug_info` has 150,000 of them, and the
//! signature check reads a few hundred names: copying the section and
//! writing every field cost as much as the whole diff. Here a field's
//! value is found when gimli reads it ([`gimli::RelocateReader`] calls
//! [`Fixups`] for every offset and address it reads), by binary search in
//! the relocation section as the file has it.

use std::ops::Range;

use object::read::{Object, ObjectSection, ObjectSymbol};
use object::SymbolKind;

use relive_x86::rtype;

/// Bytes of one `Elf64_Rela` entry.
const ENTRY: usize = 24;

/// Where one debug section's relocations are in the file, and their order
/// by offset when the file does not list them in order.
#[derive(Debug, Clone, Default)]
pub(crate) struct SectionRelocs {
    /// The file's bytes of `.rela<section>`, a whole number of entries.
    entries: Range<usize>,
    /// Entry indices sorted by offset; `None` when the file's order is.
    order: Option<Vec<u32>>,
}

impl SectionRelocs {
    /// The relocations of section `name` of the object in `data`; none
    /// when it has no such section or it cannot be read.
    pub(crate) fn read(data: &[u8], name: &str) -> SectionRelocs {
        let Ok(file) = object::File::parse(data) else {
            return SectionRelocs::default();
        };
        let rela = file.section_by_name(&format!(".rela{name}"));
        SectionRelocs::of_rela(data, rela.and_then(|r| r.file_range()))
    }

    /// The entries of a relocation section whose bytes are at `range`
    /// (offset, size) of `data`.
    pub(crate) fn of_rela(data: &[u8], range: Option<(u64, u64)>) -> SectionRelocs {
        let Some((start, size)) = range else {
            return SectionRelocs::default();
        };
        let (Ok(start), Ok(size)) = (usize::try_from(start), usize::try_from(size)) else {
            return SectionRelocs::default();
        };
        let size = size - size % ENTRY;
        let Some(bytes) = start.checked_add(size).and_then(|end| data.get(start..end)) else {
            return SectionRelocs::default();
        };
        let (entries, _) = bytes.as_chunks::<ENTRY>();
        // Assemblers write them in order of offset; a file that does not
        // (or a hostile one) gets an order of its own.
        let order = (!entries.is_sorted_by_key(offset_of)).then(|| {
            let mut order: Vec<u32> = (0..entries.len() as u32).collect();
            order.sort_by_key(|&k| offset_of(&entries[k as usize]));
            order
        });
        SectionRelocs {
            entries: start..start + size,
            order,
        }
    }
}

fn offset_of(entry: &[u8; ENTRY]) -> u64 {
    u64::from_le_bytes(entry[..8].try_into().expect("8 bytes"))
}

/// One `Elf64_Rela` entry, decoded.
pub(crate) struct Rela {
    pub(crate) offset: u64,
    /// Its symbol's index (0: none).
    pub(crate) symbol: usize,
    pub(crate) r_type: u32,
    pub(crate) addend: i64,
}

pub(crate) fn rela(entry: &[u8; ENTRY]) -> Rela {
    let (words, _) = entry.as_chunks::<8>();
    let [offset, info, addend] = [0, 1, 2].map(|i| u64::from_le_bytes(words[i]));
    Rela {
        offset,
        symbol: (info >> 32) as usize,
        r_type: (info & 0xffff_ffff) as u32,
        addend: addend as i64,
    }
}

/// The entries of section `.rela<name>` of `file`, read straight from it
/// (x86-64 objects carry RELA only): through object's generic relocation
/// iterator, they cost most of a large unit's diff.
pub(crate) fn entries<'d>(file: &object::File<'d>, name: &str) -> &'d [[u8; ENTRY]] {
    file.section_by_name(&format!(".rela{name}"))
        .and_then(|r| r.data().ok())
        .map_or(&[], |bytes| bytes.as_chunks::<ENTRY>().0)
}

/// For each ELF symbol (by index), the place a relocation against it
/// denotes in its section, when it stands for one: a section symbol, or a
/// local label (how assemblers refer to `.debug_str` and `.debug_abbrev`).
/// Fields relocated against other symbols are left as they are.
pub(crate) fn symbol_bases(data: &[u8]) -> Vec<Option<i64>> {
    let Ok(file) = object::File::parse(data) else {
        return Vec::new();
    };
    let count = file.symbols().map(|s| s.index().0 + 1).max().unwrap_or(0);
    let mut bases = vec![None; count];
    for sym in file.symbols() {
        let place = matches!(
            sym.kind(),
            SymbolKind::Section | SymbolKind::Label | SymbolKind::Unknown
        ) || (sym.is_local() && sym.name().is_ok_and(|n| n.starts_with(".L")));
        if place {
            bases[sym.index().0] = Some(sym.address() as i64);
        }
    }
    bases
}

/// One section's relocations as a reader applies them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fixups<'a> {
    entries: &'a [[u8; ENTRY]],
    order: Option<&'a [u32]>,
    bases: &'a [Option<i64>],
}

impl<'a> Fixups<'a> {
    /// None: a section without relocations.
    pub(crate) const NONE: Fixups<'static> = Fixups {
        entries: &[],
        order: None,
        bases: &[],
    };

    /// `relocs` of the object whose bytes are `data`, with its
    /// [`symbol_bases`].
    pub(crate) fn new(data: &'a [u8], relocs: &'a SectionRelocs, bases: &'a [Option<i64>]) -> Fixups<'a> {
        let bytes = data.get(relocs.entries.clone()).unwrap_or(&[]);
        Fixups {
            entries: bytes.as_chunks::<ENTRY>().0,
            order: relocs.order.as_deref(),
            bases,
        }
    }

    /// The `k`th entry in order of offset.
    fn nth(&self, k: usize) -> Option<&'a [u8; ENTRY]> {
        match self.order {
            Some(order) => self.entries.get(*order.get(k)? as usize),
            None => self.entries.get(k),
        }
    }

    /// Every relocation of the section, in the file's order.
    pub(crate) fn all(&self) -> impl Iterator<Item = Rela> + 'a {
        self.entries.iter().map(rela)
    }

    /// The relocation of the field at `offset`, as the file has it.
    pub(crate) fn rela_at(&self, offset: u64) -> Option<Rela> {
        // The first entry at `offset`, by binary search over the order.
        let (mut lo, mut hi) = (0, self.entries.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if offset_of(self.nth(mid)?) < offset {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        Some(rela(self.nth(lo).filter(|e| offset_of(e) == offset)?))
    }

    /// The relocated value of the field at `offset`, at the field's width,
    /// if a relocation this reader applies sets it.
    pub(crate) fn at(&self, offset: u64) -> Option<u64> {
        let r = self.rela_at(offset)?;
        let base = (*self.bases.get(r.symbol)?)?;
        let value = base.wrapping_add(r.addend) as u64;
        match r.r_type {
            rtype::R32 => Some(u64::from(value as u32)),
            rtype::R64 => Some(value),
            _ => None,
        }
    }
}

impl gimli::read::Relocate for Fixups<'_> {
    fn relocate_address(&self, offset: usize, value: u64) -> gimli::Result<u64> {
        Ok(self.at(offset as u64).unwrap_or(value))
    }

    fn relocate_offset(&self, offset: usize, value: usize) -> gimli::Result<usize> {
        // A hostile value too large for an offset here is left as read.
        Ok(self
            .at(offset as u64)
            .and_then(|v| usize::try_from(v).ok())
            .unwrap_or(value))
    }
}
