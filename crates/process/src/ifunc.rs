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

use std::ffi::CString;

use crate::maps;

/// The implementation's offset from the base of `module` (where file
/// offset 0 is mapped), when relive has the same file (`inode`) loaded.
pub fn implementation_offset(module: &str, inode: u64, name: &str) -> Option<u64> {
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
    (code.start..end).contains(&addr).then(|| addr - base)
}
