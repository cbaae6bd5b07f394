//! Drives every parser over one input, for the mutation test and the fuzz
//! targets: whatever the bytes, each call must return (errors are fine) and
//! never panic, loop or allocate without bound.

use crate::image::Image;
use crate::layout::Layout;
use crate::symbols::{cosmo, SymbolTable};
use crate::translate::ArchView;

/// Parses `data` as a whole file and touches every view of it.
pub fn whole_file(data: &[u8]) {
    let _ = crate::irelative::x86_64_irelative(data);
    let Ok(layout) = Layout::parse(data) else {
        return;
    };
    for arch in layout.arches() {
        let view = ArchView::new(&layout, arch);
        let probes = view
            .regions
            .iter()
            .flat_map(|r| [r.vaddr, r.vaddr.wrapping_add(r.file_size), r.vaddr.wrapping_sub(1)])
            .chain([0, u64::MAX]);
        for va in probes {
            let _ = view.from_va(va);
            let _ = view.from_rva(va);
            let _ = view.from_offset(va);
        }
    }
    if let Ok(zip) = layout.zip() {
        for entry in &zip.entries {
            // Bounded by the declared size, which the directory caps at the file's length for STORE.
            if entry.size <= 1 << 24 {
                let _ = entry.data(data);
            }
            let _ = entry.prefix(data, cosmo::HEADER_LEN);
        }
    }
    let image = match Image::from_bytes("exercise.bin", data.to_vec()) {
        Ok(image) => image,
        Err(_) => return,
    };
    let _ = touch_info(&image);
    for arch in image.layout().arches() {
        if let Ok(table) = image.symbols(Some(arch)) {
            lookups(&table);
        }
    }
}

/// Parses `data` as a decompressed Cosmopolitan `.symtab`.
pub fn cosmo_symtab(data: &[u8]) {
    let _ = cosmo::header(data);
    if let Ok(symbols) = cosmo::parse(data) {
        lookups(&SymbolTable::new("exercise", crate::Arch::X86_64, symbols));
    }
}

/// Parses `data` as a ZIP archive and reads every entry.
pub fn zip(data: &[u8]) {
    if let Ok(Some(zip)) = crate::zip::ZipArchive::parse(data) {
        for entry in &zip.entries {
            if entry.size <= 1 << 24 {
                let _ = entry.data(data);
                let _ = entry.verify(data);
            }
        }
    }
}

/// Decodes `data` as APE script text: printf statements and dd lines.
pub fn ape_script(data: &[u8]) {
    for statement in crate::ape::printf::statements(data) {
        let _ = crate::elf::check_ape_header(&statement.bytes);
        let _ = crate::elf::parse_header(&statement.bytes, data, statement.offset);
    }
    for candidate in crate::ape::dd::candidates(data) {
        let _ = crate::macho::MachOHeader::parse(data, candidate.offset, Some(candidate.size));
    }
}

fn lookups(table: &SymbolTable) {
    for s in table.symbols().iter().take(64) {
        let _ = table.by_addr(s.addr);
        let _ = table.by_addr(s.addr.wrapping_add(s.size));
        let _ = table.by_name(&s.name);
    }
}

/// Builds the report `relive info` serialises, so its code paths are exercised too.
fn touch_info(image: &Image) -> usize {
    let info = image.info();
    info.elf.len() + info.symbols.len() + info.warnings.len()
}
