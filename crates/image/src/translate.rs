//! Address translation for one architecture's view of a file.
//!
//! Three address spaces meet here: file offsets, virtual addresses (where the
//! image lives when loaded at its preferred base) and RVAs (relative to the
//! image base). ELF load segments map offsets to VAs; PE sections map RVAs to
//! offsets; the image base links VAs and RVAs. For an APE's x86-64 image the
//! two views agree by construction (apelink makes file offset == RVA and
//! ImageBase == lowest `p_vaddr - p_offset`), so an address translated
//! through either gives the same answer.
//!
//! An address outside every region is an error, never a sentinel.

use crate::arch::Arch;
use crate::error::{AddressKind, ImageError, Result};
use crate::layout::Layout;

/// One file-backed region: `file_size` bytes at `offset` appear at `vaddr`,
/// followed by `mem_size - file_size` zero-filled bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Region {
    pub name: Option<String>,
    pub offset: u64,
    pub vaddr: u64,
    pub file_size: u64,
    pub mem_size: u64,
}

impl Region {
    fn offset_to_va(&self, offset: u64) -> Option<u64> {
        let delta = offset.checked_sub(self.offset)?;
        (delta < self.file_size)
            .then(|| self.vaddr.checked_add(delta))
            .flatten()
    }

    /// `Some(Some(offset))` for file-backed bytes, `Some(None)` for the
    /// zero-filled tail, `None` outside the region.
    fn va_to_offset(&self, va: u64) -> Option<Option<u64>> {
        let delta = va.checked_sub(self.vaddr)?;
        if delta < self.file_size {
            Some(self.offset.checked_add(delta))
        } else if delta < self.mem_size {
            Some(None)
        } else {
            None
        }
    }
}

/// One architecture's address spaces.
#[derive(Debug, Clone)]
pub struct ArchView {
    pub arch: Arch,
    /// VA ↔ offset: ELF `PT_LOAD` segments, else Mach-O segments, else PE sections.
    pub regions: Vec<Region>,
    /// RVA ↔ offset, when a PE header describes this architecture.
    pub pe_sections: Vec<Region>,
    /// Named ranges used to say which section an address is in.
    pub sections: Vec<Region>,
    /// The VA that RVA 0 corresponds to.
    pub image_base: Option<u64>,
    /// What the regions came from, for error messages.
    region_kind: &'static str,
}

/// Where a single address lands in every space of a view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Translation {
    pub va: Option<u64>,
    pub rva: Option<u64>,
    pub offset: Option<u64>,
    pub section: Option<String>,
}

impl ArchView {
    /// Builds the view of `arch` (which the caller got from [`Layout::pick_arch`]).
    pub fn new(layout: &Layout, arch: Arch) -> ArchView {
        let pe = layout.pe_for(arch);
        let pe_sections: Vec<Region> = pe
            .map(|pe| {
                pe.sections
                    .iter()
                    .map(|s| Region {
                        name: Some(s.name.clone()),
                        offset: s.raw_offset,
                        vaddr: s.virtual_address,
                        // Raw data past VirtualSize is file alignment padding, not image.
                        file_size: if s.virtual_size == 0 {
                            s.raw_size
                        } else {
                            s.raw_size.min(s.virtual_size)
                        },
                        mem_size: s.virtual_size.max(s.raw_size),
                    })
                    .collect()
            })
            .unwrap_or_default();

        let (regions, region_kind, derived_base) = if let Some(elf) = layout.elf_for(arch) {
            let loads: Vec<Region> = elf
                .segments
                .iter()
                .filter(|s| s.kind == crate::elf::SegmentType::LOAD)
                .map(|s| Region {
                    name: None,
                    offset: s.offset,
                    vaddr: s.vaddr,
                    file_size: s.filesz,
                    mem_size: s.memsz.max(s.filesz),
                })
                .collect();
            let base = loads
                .iter()
                .min_by_key(|r| r.vaddr)
                .map(|r| r.vaddr.checked_sub(r.offset).unwrap_or(r.vaddr));
            (loads, "load segment", base)
        } else if let Some(m) = layout.macho_for(arch) {
            let segs: Vec<Region> = m
                .segments
                .iter()
                .filter(|s| s.vmsize > 0)
                .map(|s| Region {
                    name: Some(s.name.clone()),
                    offset: s.fileoff,
                    vaddr: s.vmaddr,
                    file_size: s.filesize.min(s.vmsize),
                    mem_size: s.vmsize,
                })
                .collect();
            let base = segs
                .iter()
                .filter(|r| r.file_size > 0)
                .min_by_key(|r| r.vaddr)
                .map(|r| r.vaddr.checked_sub(r.offset).unwrap_or(r.vaddr));
            (segs, "segment", base)
        } else if let Some(pe) = pe {
            let secs = pe_sections
                .iter()
                .filter_map(|r| {
                    Some(Region {
                        vaddr: pe.image_base.checked_add(r.vaddr)?,
                        ..r.clone()
                    })
                })
                .collect();
            (secs, "section", Some(pe.image_base))
        } else {
            (Vec::new(), "region", None)
        };

        let image_base = pe.map(|pe| pe.image_base).or(derived_base);
        let sections = if !pe_sections.is_empty() {
            let base = image_base.unwrap_or(0);
            pe_sections
                .iter()
                .filter_map(|r| {
                    Some(Region {
                        vaddr: base.checked_add(r.vaddr)?,
                        ..r.clone()
                    })
                })
                .collect()
        } else if let Some(elf) = layout.elf_for(arch) {
            elf.sections
                .iter()
                .filter(|s| s.is_alloc() && s.size > 0)
                .map(|s| Region {
                    name: Some(s.name.clone()),
                    offset: s.offset,
                    vaddr: s.addr,
                    file_size: if s.sh_type == object::elf::SHT_NOBITS.0 {
                        0
                    } else {
                        s.size
                    },
                    mem_size: s.size,
                })
                .collect()
        } else {
            regions.iter().filter(|r| r.name.is_some()).cloned().collect()
        };

        ArchView {
            arch,
            regions,
            pe_sections,
            sections,
            image_base,
            region_kind,
        }
    }

    fn not_mapped(&self, kind: AddressKind, value: u64, region: &'static str) -> ImageError {
        ImageError::NotMapped {
            kind,
            value,
            region,
            arch: self.arch.name(),
        }
    }

    /// File offset → VA.
    pub fn offset_to_va(&self, offset: u64) -> Result<u64> {
        if self.regions.is_empty() {
            return Err(self.no_regions());
        }
        self.regions
            .iter()
            .find_map(|r| r.offset_to_va(offset))
            .ok_or_else(|| self.not_mapped(AddressKind::FileOffset, offset, self.region_kind))
    }

    /// VA → file offset. A VA in a zero-filled tail is [`ImageError::NoFileBytes`].
    pub fn va_to_offset(&self, va: u64) -> Result<u64> {
        match self.locate_va(va)? {
            Some(offset) => Ok(offset),
            None => Err(ImageError::NoFileBytes { va }),
        }
    }

    /// `Ok(Some(offset))`, `Ok(None)` for zero-filled memory, or an error
    /// when no region contains `va`.
    fn locate_va(&self, va: u64) -> Result<Option<u64>> {
        if self.regions.is_empty() {
            return Err(self.no_regions());
        }
        self.regions
            .iter()
            .find_map(|r| r.va_to_offset(va))
            .ok_or_else(|| self.not_mapped(AddressKind::Va, va, self.region_kind))
    }

    /// VA → RVA.
    pub fn va_to_rva(&self, va: u64) -> Result<u64> {
        let base = self.base()?;
        va.checked_sub(base)
            .ok_or_else(|| self.not_mapped(AddressKind::Va, va, "image (it is below the image base)"))
    }

    /// RVA → VA.
    pub fn rva_to_va(&self, rva: u64) -> Result<u64> {
        let base = self.base()?;
        base.checked_add(rva)
            .ok_or_else(|| self.not_mapped(AddressKind::Rva, rva, "image (base + RVA overflows)"))
    }

    /// RVA → file offset, through PE sections when there are any.
    pub fn rva_to_offset(&self, rva: u64) -> Result<u64> {
        if self.pe_sections.is_empty() {
            return self.va_to_offset(self.rva_to_va(rva)?);
        }
        match self.pe_sections.iter().find_map(|r| r.va_to_offset(rva)) {
            Some(Some(offset)) => Ok(offset),
            Some(None) => Err(ImageError::NoFileBytes {
                va: self.rva_to_va(rva)?,
            }),
            None => Err(self.not_mapped(AddressKind::Rva, rva, "PE section")),
        }
    }

    /// File offset → RVA, through PE sections when there are any.
    pub fn offset_to_rva(&self, offset: u64) -> Result<u64> {
        if self.pe_sections.is_empty() {
            return self.va_to_rva(self.offset_to_va(offset)?);
        }
        self.pe_sections
            .iter()
            .find_map(|r| r.offset_to_va(offset))
            .ok_or_else(|| self.not_mapped(AddressKind::FileOffset, offset, "PE section"))
    }

    /// The name of the section (or named segment) containing `va`.
    pub fn section_of(&self, va: u64) -> Option<&str> {
        self.sections
            .iter()
            .find(|r| r.va_to_offset(va).is_some())
            .and_then(|r| r.name.as_deref())
    }

    fn base(&self) -> Result<u64> {
        self.image_base.ok_or_else(|| ImageError::NoView {
            view: "RVA",
            reason: format!(
                "the {} image has no image base (no PE header and no load segments)",
                self.arch
            ),
        })
    }

    fn no_regions(&self) -> ImageError {
        ImageError::NoView {
            view: "virtual address",
            reason: format!(
                "the {} image has no load segments or sections (a relocatable object's symbols are section offsets)",
                self.arch
            ),
        }
    }

    /// Everything about a VA. Errors if no region contains it.
    pub fn from_va(&self, va: u64) -> Result<Translation> {
        let offset = self.locate_va(va)?;
        Ok(Translation {
            va: Some(va),
            rva: self.va_to_rva(va).ok(),
            offset,
            section: self.section_of(va).map(str::to_owned),
        })
    }

    /// Everything about an RVA.
    pub fn from_rva(&self, rva: u64) -> Result<Translation> {
        let va = self.rva_to_va(rva)?;
        let mut t = self.from_va(va)?;
        if !self.pe_sections.is_empty() {
            t.offset = self.rva_to_offset(rva).ok();
        }
        Ok(t)
    }

    /// Everything about a file offset. Errors if no region maps it.
    pub fn from_offset(&self, offset: u64) -> Result<Translation> {
        let va = match self.offset_to_va(offset) {
            Ok(va) => va,
            // An offset only a PE section covers (no ELF segment) still has an RVA.
            Err(e) => match self.offset_to_rva(offset) {
                Ok(rva) if !self.pe_sections.is_empty() => self.rva_to_va(rva)?,
                _ => return Err(e),
            },
        };
        Ok(Translation {
            va: Some(va),
            rva: self.va_to_rva(va).ok(),
            offset: Some(offset),
            section: self.section_of(va).map(str::to_owned),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view() -> ArchView {
        ArchView {
            arch: Arch::X86_64,
            regions: vec![
                Region {
                    name: None,
                    offset: 0x1000,
                    vaddr: 0x401000,
                    file_size: 0x100,
                    mem_size: 0x100,
                },
                Region {
                    name: None,
                    offset: 0x2000,
                    vaddr: 0x403000,
                    file_size: 0x10,
                    mem_size: 0x1000,
                },
            ],
            pe_sections: vec![],
            sections: vec![],
            image_base: Some(0x400000),
            region_kind: "load segment",
        }
    }

    #[test]
    fn translates_inside_and_refuses_outside() {
        let v = view();
        assert_eq!(v.offset_to_va(0x1010).unwrap(), 0x401010);
        assert_eq!(v.va_to_offset(0x401010).unwrap(), 0x1010);
        assert_eq!(v.va_to_rva(0x401010).unwrap(), 0x1010);
        assert_eq!(v.rva_to_offset(0x1010).unwrap(), 0x1010);
        assert!(matches!(v.offset_to_va(0x1100), Err(ImageError::NotMapped { .. })));
        assert!(matches!(
            v.va_to_offset(0x403010),
            Err(ImageError::NoFileBytes { va: 0x403010 })
        ));
        assert!(matches!(v.va_to_offset(0x404000), Err(ImageError::NotMapped { .. })));
        assert!(matches!(v.va_to_rva(0x3fffff), Err(ImageError::NotMapped { .. })));
        assert!(v.rva_to_va(u64::MAX).is_err());
        let t = v.from_va(0x403010).unwrap();
        assert_eq!((t.offset, t.rva), (None, Some(0x3010)));
    }
}
