//! The smallest shared library that gives a process the GDB JIT
//! interface: `__jit_debug_register_code` (a function that only returns:
//! a debugger sets its breakpoint there) and `__jit_debug_descriptor`
//! (version 1, no entries yet), both exported.
//!
//! gdb looks for this pair in every module of the process it attaches to
//! and loads, from the process's memory, the symbol file each entry of the
//! descriptor's list points at. A program that is not a JIT has neither;
//! relive loads this library into it (a remote `dlopen`) the first time a
//! patch brings debug information, so a plain `gdb -p PID` sees new code
//! with its names, lines and unwind rules, no relive command needed.
//!
//! Written with `object`'s ELF writer: three segments on their own pages
//! (headers and dynamic symbols read-only, the function executable, the
//! `.dynamic` table and the descriptor writable), a SysV hash for the
//! loader, and `PT_GNU_STACK` without execute (a library without it would
//! make the loader turn the stacks executable, or refuse it).

use object::elf;
use object::write::elf::{FileHeader, ProgramHeader, SectionHeader, Sym, Writer};
use object::Endianness;

/// The library's name, as the process's module list and gdb's `info
/// sharedlibrary` show it.
pub const FILE_NAME: &str = "librelive-jit-debug.so";

/// Where the function and the descriptor lie, from the library's base.
pub const REGISTER_CODE: u64 = 0x1000;
pub const DESCRIPTOR: u64 = 0x2100;

/// Bytes of `struct jit_descriptor`: version (u32), action_flag (u32),
/// relevant_entry, first_entry.
pub const DESCRIPTOR_LEN: u64 = 24;
/// Where the descriptor's fields are, from its start.
pub const ACTION_FLAG: u64 = 4;
pub const RELEVANT_ENTRY: u64 = 8;
pub const FIRST_ENTRY: u64 = 16;

const PAGE: u64 = 0x1000;
const DATA_PAGE: u64 = 0x2000;

/// The library's bytes.
pub fn library() -> Vec<u8> {
    build().expect("a fixed layout that fits its pages")
}

fn build() -> object::write::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut w = Writer::new(Endianness::Little, true, &mut out);
    let register_name = b"__jit_debug_register_code";
    let descriptor_name = b"__jit_debug_descriptor";

    // Reserve: every offset equals its address (one image, loaded whole).
    w.reserve_file_header();
    w.reserve_program_headers(5);
    let soname = w.add_dynamic_string(FILE_NAME.as_bytes());
    let register_str = w.add_dynamic_string(register_name);
    let descriptor_str = w.add_dynamic_string(descriptor_name);
    w.reserve_null_dynamic_symbol_index();
    w.reserve_dynamic_symbol_index();
    w.reserve_dynamic_symbol_index();
    w.reserve_null_section_index();
    w.reserve_hash_section_index();
    w.reserve_dynsym_section_index();
    w.reserve_dynstr_section_index();
    let text_name = w.add_section_name(b".text");
    let text_index = w.reserve_section_index();
    w.reserve_dynamic_section_index();
    let data_name = w.add_section_name(b".data");
    let data_index = w.reserve_section_index();
    w.reserve_shstrtab_section_index();

    let hash = w.reserve_hash(1, 3);
    let dynsym = w.reserve_dynsym();
    let dynstr = w.reserve_dynstr()?;
    let read_only_end = w.reserved_len();
    w.reserve_until(REGISTER_CODE);
    w.reserve(1, 1);
    w.reserve_until(DATA_PAGE);
    const DYNAMIC_COUNT: usize = 7;
    let dynamic = w.reserve_dynamic(DYNAMIC_COUNT);
    w.reserve_until(DESCRIPTOR);
    w.reserve(DESCRIPTOR_LEN, 8);
    let data_end = w.reserved_len();
    w.reserve_shstrtab()?;
    w.reserve_section_headers();

    // Write, in the same order.
    w.write_file_header(&FileHeader {
        os_abi: elf::ELFOSABI_SYSV,
        abi_version: 0,
        e_type: elf::ET_DYN,
        e_machine: elf::EM_X86_64,
        e_entry: 0,
        e_flags: elf::FileFlags(0),
    })?;
    w.write_align_program_headers();
    let load = |flags: elf::ProgramFlags, start: u64, end: u64| ProgramHeader {
        p_type: elf::PT_LOAD,
        p_flags: flags,
        p_offset: start,
        p_vaddr: start,
        p_paddr: start,
        p_filesz: end - start,
        p_memsz: end - start,
        p_align: PAGE,
    };
    w.write_program_header(&load(elf::PF_R, 0, read_only_end));
    w.write_program_header(&load(
        elf::ProgramFlags(elf::PF_R.0 | elf::PF_X.0),
        REGISTER_CODE,
        REGISTER_CODE + 1,
    ));
    w.write_program_header(&load(elf::ProgramFlags(elf::PF_R.0 | elf::PF_W.0), DATA_PAGE, data_end));
    let dynamic_len = DYNAMIC_COUNT as u64 * 16;
    w.write_program_header(&ProgramHeader {
        p_type: elf::PT_DYNAMIC,
        p_flags: elf::ProgramFlags(elf::PF_R.0 | elf::PF_W.0),
        p_offset: dynamic,
        p_vaddr: dynamic,
        p_paddr: dynamic,
        p_filesz: dynamic_len,
        p_memsz: dynamic_len,
        p_align: 8,
    });
    w.write_program_header(&ProgramHeader {
        p_type: elf::PT_GNU_STACK,
        p_flags: elf::ProgramFlags(elf::PF_R.0 | elf::PF_W.0),
        p_offset: 0,
        p_vaddr: 0,
        p_paddr: 0,
        p_filesz: 0,
        p_memsz: 0,
        p_align: 16,
    });

    let names = [register_name.as_slice(), descriptor_name.as_slice()];
    w.write_hash(1, 3, |i| (i as usize).checked_sub(1).map(|k| elf::hash(names[k])));
    w.write_null_dynamic_symbol();
    let global = |st_name: u32, kind: elf::SymbolType, section: u32, value: u64, size: u64| Sym {
        section: Some(section),
        st_name,
        st_info: elf::SymbolInfo::new(elf::STB_GLOBAL, kind),
        st_other: elf::STV_DEFAULT.into(),
        st_shndx: elf::SymbolSection(0),
        st_value: value,
        st_size: size,
    };
    w.write_dynamic_symbol(&global(
        w.dynamic_string_offset(Some(register_str)),
        elf::STT_FUNC,
        text_index.0,
        REGISTER_CODE,
        1,
    ));
    w.write_dynamic_symbol(&global(
        w.dynamic_string_offset(Some(descriptor_str)),
        elf::STT_OBJECT,
        data_index.0,
        DESCRIPTOR,
        DESCRIPTOR_LEN,
    ));
    w.write_dynstr();
    w.pad_until(REGISTER_CODE);
    // `ret`
    w.write(&[0xc3]);
    w.pad_until(DATA_PAGE);
    w.write_align_dynamic();
    w.write_dynamic(elf::DT_HASH, hash)?;
    w.write_dynamic(elf::DT_STRTAB, dynstr)?;
    w.write_dynamic(elf::DT_SYMTAB, dynsym)?;
    w.write_dynamic(elf::DT_STRSZ, u64::from(w.dynstr_len()))?;
    w.write_dynamic(elf::DT_SYMENT, 24)?;
    w.write_dynamic_string(elf::DT_SONAME, soname)?;
    w.write_dynamic(elf::DT_NULL, 0)?;
    w.pad_until(DESCRIPTOR);
    // Version 1, nothing to do, no entries.
    let mut descriptor = [0u8; DESCRIPTOR_LEN as usize];
    descriptor[0] = 1;
    w.write(&descriptor);
    w.write_shstrtab();

    w.write_null_section_header();
    w.write_hash_section_header(hash);
    w.write_dynsym_section_header(dynsym, 1);
    w.write_dynstr_section_header(dynstr);
    let section = |name, kind, flags, addr: u64, size: u64, align| SectionHeader {
        sh_name: name,
        sh_type: kind,
        sh_flags: flags,
        sh_addr: addr,
        sh_offset: addr,
        sh_size: size,
        sh_link: 0,
        sh_info: 0,
        sh_addralign: align,
        sh_entsize: 0,
    };
    let text = section(
        w.section_name_offset(Some(text_name)),
        elf::SHT_PROGBITS,
        elf::SectionFlags(elf::SHF_ALLOC.0 | elf::SHF_EXECINSTR.0),
        REGISTER_CODE,
        1,
        16,
    );
    w.write_section_header(&text);
    w.write_dynamic_section_header(dynamic);
    let data = section(
        w.section_name_offset(Some(data_name)),
        elf::SHT_PROGBITS,
        elf::SectionFlags(elf::SHF_ALLOC.0 | elf::SHF_WRITE.0),
        DESCRIPTOR,
        DESCRIPTOR_LEN,
        8,
    );
    w.write_section_header(&data);
    w.write_shstrtab_section_header();
    debug_assert_eq!(w.reserved_len(), w.len());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use object::read::elf::{ElfFile64, ProgramHeader as _};
    use object::{Object, ObjectSection, ObjectSymbol};

    #[test]
    fn exports_the_pair_where_the_constants_say() {
        let bytes = library();
        let file = ElfFile64::<Endianness>::parse(bytes.as_slice()).unwrap();
        let exported: Vec<(String, u64)> = file
            .dynamic_symbols()
            .map(|s| (s.name().unwrap().to_string(), s.address()))
            .collect();
        assert_eq!(
            exported,
            [
                ("__jit_debug_register_code".to_string(), REGISTER_CODE),
                ("__jit_debug_descriptor".to_string(), DESCRIPTOR)
            ]
        );
        let text = file.section_by_name(".text").unwrap();
        assert_eq!(text.data().unwrap(), [0xc3]);
        let data = file.section_by_name(".data").unwrap();
        let descriptor = data.data().unwrap();
        assert_eq!(descriptor.len() as u64, DESCRIPTOR_LEN);
        assert_eq!(descriptor[..4], [1, 0, 0, 0]);
        assert!(descriptor[4..].iter().all(|&b| b == 0));
    }

    #[test]
    fn segments_are_page_aligned_and_the_stack_stays_non_executable() {
        let bytes = library();
        let file = ElfFile64::<Endianness>::parse(bytes.as_slice()).unwrap();
        let endian = Endianness::Little;
        let headers = file.elf_program_headers();
        let loads: Vec<_> = headers.iter().filter(|p| p.p_type(endian) == elf::PT_LOAD).collect();
        assert_eq!(loads.len(), 3);
        for p in &loads {
            assert_eq!(p.p_offset(endian) % PAGE, p.p_vaddr(endian) % PAGE);
            assert!(p.p_offset(endian) + p.p_filesz(endian) <= bytes.len() as u64);
        }
        assert!(loads
            .iter()
            .any(|p| p.p_flags(endian).0 & elf::PF_X.0 != 0 && p.p_vaddr(endian) == REGISTER_CODE));
        let stack = headers.iter().find(|p| p.p_type(endian) == elf::PT_GNU_STACK).unwrap();
        assert_eq!(stack.p_flags(endian).0 & elf::PF_X.0, 0);
    }
}
