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

use std::ffi::CString;

use crate::maps;

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
    let ours = std::fs::read_to_string("/proc/self/maps").ok()?;
    let mappings: Vec<maps::Mapping> = ours.lines().filter_map(maps::parse_line).collect();
    // The loaded library's code mapping (relive may also have the file
    // mapped as data, to read its symbols): its start less its file offset
    // is the library's base, as in the target, where code is mapped at
    // the address its offset says.
    let code = mappings
        .iter()
        .find(|m| m.inode == inode && m.path == module && m.executable())?;
    let base = code.start.checked_sub(code.offset)?;
    let end = code.end;
    let symbol = CString::new(name).ok()?;
    // SAFETY: dlsym only reads the NUL-terminated name and the loader's
    // tables; RTLD_DEFAULT searches the libraries relive already has. The
    // returned pointer is used as a number, never dereferenced.
    let addr = unsafe { nix::libc::dlsym(nix::libc::RTLD_DEFAULT, symbol.as_ptr()) } as u64;
    if (code.start..end).contains(&addr) {
        return Some(Implementation::InModule(addr - base));
    }
    crate::vdso::own_function_at(addr).map(Implementation::Vdso)
}
