//! relive's own process as a host: what the dynamic loader has loaded into
//! it. Two layers ask this: the SMF loader (the host's functions that a
//! module imports) and the process layer (which implementation an IFUNC
//! of a library picks on this machine: relive has loaded the same libc).
//! One `dlsym` for both, in a crate of its own because each of them keeps
//! its `unsafe` code apart and neither depends on the other.

use std::ffi::CString;

/// The address `dlsym(RTLD_DEFAULT, name)` gives in this process, `None`
/// when nothing loaded defines `name` (or it contains a NUL byte). An
/// IFUNC's address is its chosen implementation's, as the loader resolves
/// it. The address is a number to compare or to hand on; this crate never
/// reads through it.
pub fn symbol(name: &str) -> Option<u64> {
    let name = CString::new(name).ok()?;
    // SAFETY: dlsym only reads the NUL-terminated name and the loader's
    // tables; RTLD_DEFAULT searches the libraries already loaded. The
    // returned pointer is turned into a number, never dereferenced.
    let addr = unsafe { nix::libc::dlsym(nix::libc::RTLD_DEFAULT, name.as_ptr()) } as u64;
    (addr != 0).then_some(addr)
}

#[cfg(test)]
mod tests {
    #[test]
    fn finds_libc_functions_and_nothing_for_unknown_names() {
        let strlen = super::symbol("strlen").expect("libc's strlen is loaded");
        assert_ne!(strlen, 0);
        assert_eq!(super::symbol("relive_no_such_symbol_anywhere"), None);
        assert_eq!(super::symbol("nul\0inside"), None);
    }
}
