//! Where an IFUNC symbol really leads.
//!
//! glibc exports `strlen`, `memcpy` and friends as GNU indirect functions:
//! the symbol is a resolver that returns the implementation chosen for this
//! CPU. Patched code must call the implementation, and the resolver cannot
//! be called in the target from here. But relive itself runs on the same
//! machine with the same libc: when the target's module is the very file
//! (same inode) relive has loaded, `dlsym` in relive returns the resolved
//! implementation, and its offset from relive's copy of the library is its
//! offset in the target's copy.
//!
//! Some resolvers choose the kernel's code: glibc's `time` and
//! `gettimeofday` return the vDSO's `__vdso_time` and
//! `__vdso_gettimeofday`. relive's dlsym then lands in relive's own vDSO,
//! which is mapped elsewhere in the target: the answer is the name of the
//! vDSO function, to be found in the target's vDSO.
//!
//! A module relive does not have loaded (a statically linked program, with
//! its own `memcpy`) keeps the choice in memory: each IFUNC it calls has a
//! GOT slot its IRELATIVE relocation filled at start-up
//! ([`relive_image::irelative`]); [`chosen_in_process`] reads those.

use foldhash::{HashMap, HashMapExt};

use crate::maps;
use crate::modules::{LoadedModule, ProcessModules};
use crate::symbols::LiveSymbols;
use crate::Process;

/// Where an IFUNC's chosen implementation is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Implementation {
    /// At this offset from the base of the IFUNC's own module (where file
    /// offset 0 is mapped).
    InModule(u64),
    /// The vDSO's function of this name ([`crate::vdso`]).
    Vdso(String),
}

/// The implementation `module`'s IFUNC `name` resolves to on this machine,
/// when relive has the same file (`inode`) loaded.
pub fn implementation(module: &str, inode: u64, name: &str) -> Option<Implementation> {
    // Its start less its file offset is the library's base, as in the
    // target, where code is mapped at the address its offset says.
    let ours = own_code_mappings();
    let code = own_code(&ours, module, inode)?;
    let base = code.start.checked_sub(code.offset)?;
    let end = code.end;
    let addr = relive_host::symbol(name)?;
    if (code.start..end).contains(&addr) {
        return Some(Implementation::InModule(addr - base));
    }
    crate::vdso::own_function_at(addr).map(Implementation::Vdso)
}

/// What the IFUNCs of `module` chose in `process`, read from the slots
/// their IRELATIVE relocations filled: resolver address → implementation
/// address, both as the process sees them. A slot that cannot be read, or
/// that does not point into code, is left out: an
/// IFUNC without a usable slot (one the program never calls) is not
/// resolved this way.
pub fn chosen_in_process(process: &dyn Process, module: &LoadedModule) -> HashMap<u64, u64> {
    let Some(image) = &module.image else {
        return HashMap::new();
    };
    let bias = module.module.load_bias;
    let relocations = relive_image::irelative::x86_64_irelative(image.data());
    if relocations.is_empty() {
        return HashMap::new();
    }
    let Some(slots) = read_slots(process, relocations.iter().map(|r| r.slot.wrapping_add(bias))) else {
        return HashMap::new();
    };
    // The module's code, or the vDSO's (`time`).
    let maps = process.maps().unwrap_or_default();
    let code = |addr: u64| maps.iter().any(|m| m.executable() && m.start <= addr && addr < m.end);
    relocations
        .iter()
        .zip(slots)
        .map(|(r, chosen)| (r.resolver.wrapping_add(bias), chosen))
        .filter(|&(_, chosen)| code(chosen))
        .collect()
}

/// The 8-byte words at `addresses` in `process`, read together; `None`
/// when any cannot be read.
fn read_slots(process: &dyn Process, addresses: impl Iterator<Item = u64>) -> Option<Vec<u64>> {
    let addresses: Vec<u64> = addresses.collect();
    let mut words = vec![[0u8; 8]; addresses.len()];
    let mut parts: Vec<(u64, &mut [u8])> = addresses
        .iter()
        .zip(words.iter_mut())
        .map(|(&a, buf)| (a, &mut buf[..]))
        .collect();
    process.read_many(&mut parts).ok()?;
    Some(words.into_iter().map(u64::from_le_bytes).collect())
}

/// [`chosen_in_process`] of each module of `modules` that defines IFUNCs
/// (by `symbols`) and that relive has not loaded itself ([`implementation`]
/// answers for those): a statically linked program, or a library only the
/// target uses.
pub fn chosen_in_modules(process: &dyn Process, modules: &ProcessModules, symbols: &LiveSymbols) -> HashMap<u64, u64> {
    let ours = own_code_mappings();
    let unknown: Vec<&LoadedModule> = modules
        .all()
        .filter(|m| own_code(&ours, &m.module.path, m.module.inode).is_none())
        .filter(|m| symbols.defines_ifuncs(&m.module.path))
        .collect();
    let mut chosen: HashMap<u64, u64> = unknown.iter().flat_map(|m| chosen_in_process(process, m)).collect();
    let unknown: Vec<&str> = unknown.iter().map(|m| m.module.path.as_str()).collect();
    chosen.extend(bound_imports(process, &modules.main, symbols, &unknown));
    chosen
}

/// What the program's own imports of IFUNCs defined by the modules
/// `unknown` (ones relive has not loaded) were bound to: its GOT slots for
/// them, which the dynamic linker filled with the implementation the
/// resolver chose. A library's IFUNC that the library never calls itself
/// has no IRELATIVE slot (libm's `tan`): without this, a patch calling it
/// was refused as calling something the program does not have. A slot
/// not bound yet (lazy binding, never called) points into the program's
/// own PLT and is left out.
fn bound_imports(
    process: &dyn Process,
    program: &LoadedModule,
    symbols: &LiveSymbols,
    unknown: &[&str],
) -> HashMap<u64, u64> {
    let Some(image) = &program.image else {
        return HashMap::new();
    };
    if unknown.is_empty() {
        return HashMap::new();
    }
    let resolver = |name: &str| {
        // Only those modules' tables: not libc's thousands of symbols.
        symbols
            .lookup_where(name, |path| unknown.contains(&path))
            .into_iter()
            .find(|s| s.kind == relive_image::symbols::SymbolKind::Ifunc)
            .map(|s| (s.addr, s.module))
    };
    // Each import looked up once: (slot, resolver, its module).
    let slots: Vec<(u64, u64, String)> = relive_image::irelative::x86_64_import_slots(image.data())
        .into_iter()
        .filter_map(|s| resolver(&s.name).map(|(addr, module)| (s.slot, addr, module)))
        .collect();
    if slots.is_empty() {
        return HashMap::new();
    }
    let bias = program.module.load_bias;
    let Some(values) = read_slots(process, slots.iter().map(|s| s.0.wrapping_add(bias))) else {
        return HashMap::new();
    };
    let maps = process.maps().unwrap_or_default();
    // Code of the module that defines it: not the program's PLT.
    let code_of = |addr: u64, module: &str| {
        maps.iter()
            .any(|m| m.executable() && m.path == module && m.start <= addr && addr < m.end)
    };
    let elf = crate::modules::host_elf(image);
    slots
        .iter()
        .zip(values)
        .filter_map(|(&(slot, resolver, ref module), chosen)| {
            if code_of(chosen, module) {
                return Some((resolver, chosen));
            }
            // Not bound yet (lazy binding; the program has not called it):
            // the program's own PLT entry that jumps through the slot,
            // which the dynamic linker binds at its first call.
            let entry = plt_entry_through(image.data(), elf?, slot)?;
            Some((resolver, entry.wrapping_add(bias)))
        })
        .collect()
}

/// The link-time address of the PLT instruction of `elf` (in `data`) that
/// jumps through GOT slot `slot` (`jmp *slot(%rip)`, after `bnd` or
/// `endbr64` in `.plt.sec`), if any.
fn plt_entry_through(data: &[u8], elf: &relive_image::elf::ElfHeader, slot: u64) -> Option<u64> {
    elf.sections
        .iter()
        .filter(|s| matches!(s.name.as_str(), ".plt" | ".plt.sec" | ".plt.got"))
        .find_map(|s| {
            let bytes = data.get(s.offset as usize..(s.offset + s.size) as usize)?;
            (0..bytes.len().saturating_sub(5)).find_map(|k| {
                let disp = i32::from_le_bytes(bytes.get(k + 2..k + 6)?.try_into().ok()?);
                let next = s.addr + k as u64 + 6;
                (bytes[k] == 0xff && bytes[k + 1] == 0x25 && next.wrapping_add(disp as i64 as u64) == slot)
                    .then_some(s.addr + k as u64)
            })
        })
}

/// relive's own executable mappings.
fn own_code_mappings() -> Vec<maps::Mapping> {
    let ours = crate::procfs::read_lossy("/proc/self/maps").unwrap_or_default();
    ours.lines()
        .filter_map(maps::parse_line)
        .filter(|m| m.executable())
        .collect()
}

/// relive's code mapping of the file `path` (inode `inode`), if relive has
/// it loaded: only code counts, since relive also maps the target's files
/// as data to read their symbols.
fn own_code<'m>(ours: &'m [maps::Mapping], path: &str, inode: u64) -> Option<&'m maps::Mapping> {
    ours.iter().find(|m| m.inode == inode && m.path == path)
}
