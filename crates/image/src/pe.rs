//! The PE view: the canonical APE magic `MZqFpD='` is also a DOS header whose
//! `e_lfanew` points at a real PE header. `object` reads the headers; it finds
//! the section table after `SizeOfOptionalHeader` bytes (0x80 in APE, because
//! `NumberOfRvaAndSizes` is 2), not at a constant offset.

use object::pe;
use object::read::pe::{ImageNtHeaders, ImageOptionalHeader};
use object::LittleEndian as LE;
use serde::Serialize;

use crate::error::{ImageError, Result};

#[derive(Debug, Clone, Serialize)]
pub struct PeHeader {
    /// File offset of the `PE\0\0` signature (`e_lfanew`).
    pub offset: u64,
    /// COFF `Machine` (0x8664 for x86-64).
    pub machine: u16,
    pub image_base: u64,
    pub entry_rva: u64,
    pub size_of_optional_header: u16,
    pub sections: Vec<PeSection>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PeSection {
    pub name: String,
    pub virtual_address: u64,
    pub virtual_size: u64,
    pub raw_offset: u64,
    pub raw_size: u64,
}

impl PeHeader {
    /// Parses the PE headers of `data`, which must start with `MZ`.
    pub fn parse(data: &[u8]) -> Result<PeHeader> {
        let dos = pe::ImageDosHeader::parse(data).map_err(|e| ImageError::object("DOS header", 0, e))?;
        let nt_offset = u64::from(dos.nt_headers_offset());
        let magic =
            object::read::pe::optional_header_magic(data).map_err(|e| ImageError::object("PE header", nt_offset, e))?;
        if magic == pe::IMAGE_NT_OPTIONAL_HDR64_MAGIC {
            Self::parse_generic::<pe::ImageNtHeaders64>(data, nt_offset)
        } else {
            Self::parse_generic::<pe::ImageNtHeaders32>(data, nt_offset)
        }
    }

    fn parse_generic<H: ImageNtHeaders>(data: &[u8], nt_offset: u64) -> Result<PeHeader> {
        let mut offset = nt_offset;
        let (nt, _directories) =
            H::parse(data, &mut offset).map_err(|e| ImageError::object("PE header", nt_offset, e))?;
        let table = nt
            .sections(data, offset)
            .map_err(|e| ImageError::object("PE section table", offset, e))?;
        let sections = table
            .iter()
            .map(|s| PeSection {
                name: String::from_utf8_lossy(s.raw_name()).into_owned(),
                virtual_address: u64::from(s.virtual_address.get(LE)),
                virtual_size: u64::from(s.virtual_size.get(LE)),
                raw_offset: u64::from(s.pointer_to_raw_data.get(LE)),
                raw_size: u64::from(s.size_of_raw_data.get(LE)),
            })
            .collect();
        let optional = nt.optional_header();
        Ok(PeHeader {
            offset: nt_offset,
            machine: nt.file_header().machine.get(LE).0,
            image_base: optional.image_base(),
            entry_rva: u64::from(optional.address_of_entry_point()),
            size_of_optional_header: nt.file_header().size_of_optional_header.get(LE),
            sections,
        })
    }
}
