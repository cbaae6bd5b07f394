//! Where a program's thread-local variables are, for new code that uses
//! them: each thread's copy lies at a fixed distance from its thread
//! pointer (`%fs`) for modules in static TLS (the program and the
//! libraries loaded at start), and is found through `__tls_get_addr` with
//! the module's TLS index for any module.
//!
//! Nothing here guesses at the C library's private structures:
//! - the program's own block is where the psABI puts it, right below the
//!   thread pointer (its own code, linked with local-exec offsets, relies
//!   on that);
//! - a library's module index and static offset are read from its own
//!   GOT, where the dynamic loader wrote them for the library's code
//!   (`R_X86_64_DTPMOD64` and `R_X86_64_TPOFF64` cells).
//!
//! A library that never uses its thread-locals through its GOT gives
//! neither, and new code using them is refused naming the variable.

use object::read::elf::ProgramHeader;
use object::{Object, ObjectSymbol, ObjectSymbolTable, RelocationFlags, RelocationTarget};
use relive_process::modules::ProcessModules;
use relive_process::Process;

use crate::objfile::ObjectFile;

use object::elf::{PT_TLS, R_X86_64_DTPMOD64, R_X86_64_TPOFF64};

/// One module's thread-local storage, as new code can reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsModule {
    pub path: String,
    /// Its index in every thread's DTV (`__tls_get_addr`'s `ti_module`).
    pub modid: Option<u64>,
    /// Where its block starts relative to the thread pointer, when it is
    /// in static TLS (the same in every thread).
    pub block: Option<i64>,
}

/// Where one thread-local variable is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsPlace {
    /// Its offset in its module's block (`ti_offset`, `@dtpoff`).
    pub offset: u64,
    pub modid: Option<u64>,
    /// Its distance from the thread pointer (`@tpoff`), in static TLS.
    pub tpoff: Option<i64>,
}

impl TlsModule {
    /// The place of the variable at `offset` in this module's block.
    pub fn place(&self, offset: u64) -> TlsPlace {
        TlsPlace {
            offset,
            modid: self.modid,
            tpoff: self.block.map(|b| b.wrapping_add(offset as i64)),
        }
    }
}

/// Whether relocation type `r_type` refers to thread-local storage.
pub fn is_tls(r_type: u32) -> bool {
    use relive_x86::rtype::*;
    matches!(
        r_type,
        TPOFF32 | TPOFF64 | GOTTPOFF | TLSGD | TLSLD | DTPOFF32 | DTPOFF64
    )
}

/// Whether `obj`'s code refers to thread-local storage at all (only then
/// are the modules' GOTs read).
pub fn used_by(obj: &ObjectFile) -> bool {
    obj.symbols.iter().any(|s| s.relocs.iter().any(|r| is_tls(r.r_type)))
}

/// Every module of the process that has thread-local storage. `defined`
/// finds the module defining a thread-local by name and its offset in
/// that module's block (for a GOT cell of one module that refers to
/// another's variable: the program's initial-exec use of a library's).
pub fn modules(
    process: &dyn Process,
    modules: &ProcessModules,
    defined: &dyn Fn(&str) -> Option<(String, u64)>,
) -> Vec<TlsModule> {
    let mut out: Vec<TlsModule> = Vec::new();
    let mut cells: Vec<Cell> = Vec::new();
    for (k, m) in modules.all().enumerate() {
        let Some(image) = m.image.as_deref() else { continue };
        let Ok(file) = object::read::elf::ElfFile64::<object::Endianness>::parse(image.data()) else {
            continue;
        };
        let endian = file.endian();
        if let Some(tls) = file.elf_program_headers().iter().find(|ph| ph.p_type(endian) == PT_TLS) {
            out.push(TlsModule {
                path: m.module.path.clone(),
                modid: None,
                block: None,
            });
            if k == 0 {
                // The program: module 1, its block right below the thread
                // pointer (x86-64 TLS variant II), where the static linker
                // put it for the program's local-exec code.
                let (memsz, align, vaddr) = (tls.p_memsz(endian), tls.p_align(endian).max(1), tls.p_vaddr(endian));
                let firstbyte = vaddr.wrapping_neg() & (align - 1);
                let offset = (memsz.wrapping_sub(firstbyte)).next_multiple_of(align) + firstbyte;
                let program = out.last_mut().expect("just pushed");
                program.modid = Some(1);
                program.block = Some(-(offset as i64));
            }
        }
        cells.extend(got_cells(process, &file, m.module.load_bias, &m.module.path, defined));
    }
    for cell in cells {
        let Some(module) = out.iter_mut().find(|t| t.path == cell.module) else {
            continue;
        };
        match cell.kind {
            CellKind::Module if module.modid.is_none() => module.modid = Some(cell.value).filter(|&id| id != 0),
            // The cell holds the variable's distance from the thread
            // pointer: less its offset in the block, the block's.
            CellKind::ThreadPointer if module.block.is_none() => {
                module.block = Some(cell.value.wrapping_sub(cell.offset) as i64)
            }
            _ => {}
        }
    }
    out
}

/// What a TLS cell of a GOT holds.
enum CellKind {
    /// A module index (`R_X86_64_DTPMOD64`).
    Module,
    /// A distance from the thread pointer (`R_X86_64_TPOFF64`).
    ThreadPointer,
}

/// One TLS cell the dynamic loader filled: for the variable at `offset`
/// in the block of `module`, `value`.
struct Cell {
    kind: CellKind,
    module: String,
    offset: u64,
    value: u64,
}

/// The TLS cells of one module's GOT, as the process holds them.
fn got_cells(
    process: &dyn Process,
    file: &object::read::elf::ElfFile64<object::Endianness>,
    bias: u64,
    path: &str,
    defined: &dyn Fn(&str) -> Option<(String, u64)>,
) -> Vec<Cell> {
    let mut out = Vec::new();
    let Some(relocations) = file.dynamic_relocations() else {
        return out;
    };
    let read = |addr: u64| {
        let mut cell = [0u8; 8];
        process.read(addr, &mut cell).ok().map(|()| u64::from_le_bytes(cell))
    };
    for (offset, r) in relocations {
        let RelocationFlags::Elf { r_type } = r.flags() else {
            continue;
        };
        let kind = match r_type {
            R_X86_64_DTPMOD64 => CellKind::Module,
            R_X86_64_TPOFF64 => CellKind::ThreadPointer,
            _ => continue,
        };
        // The variable: this module's own (a local reference or a defined
        // symbol), or another module's, by name.
        let (module, at) = match r.target() {
            RelocationTarget::Symbol(index) => {
                let Some(symbol) = file.dynamic_symbol_table().and_then(|t| t.symbol_by_index(index).ok()) else {
                    continue;
                };
                if symbol.is_undefined() {
                    let Some(found) = symbol.name().ok().and_then(defined) else {
                        continue;
                    };
                    found
                } else {
                    (path.to_string(), symbol.address())
                }
            }
            _ => (path.to_string(), 0),
        };
        let Some(value) = read(offset.wrapping_add(bias)) else {
            continue;
        };
        out.push(Cell {
            kind,
            module,
            offset: at.wrapping_add(r.addend() as u64),
            value,
        });
    }
    out
}
