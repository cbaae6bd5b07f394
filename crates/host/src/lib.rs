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

/// How much more than asked glibc's `malloc` takes from the kernel each
/// time a heap grows (`M_TOP_PAD`; glibc's own default is 128 KiB).
const HEAP_STEP: i32 = 32 << 20;

/// Has glibc's `malloc` grow its heaps in steps of [`HEAP_STEP`]: a
/// command reads two objects on two threads, and a thread's heap grows by
/// an `mprotect` per step, each splitting and merging the mapping; with
/// 128 KiB steps those calls were a sixth of a one-shot patch of the
/// SQLite amalgamation. Measured in pairs of whole one-shot commands:
/// 0.91x the time for SQLite, 0.93x for 1 of 1,000 functions. Pages are
/// still given only as they are touched; a freed heap keeps up to one
/// step. No effect with another libc, or when glibc refuses the value.
/// Whether the allocator took the step.
pub fn grow_heaps_in_large_steps() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets a tuning parameter of the allocator,
    // under the allocator's own lock (other threads may allocate
    // meanwhile); a value glibc does not take is refused with a return of
    // 0, not applied.
    let taken = unsafe { nix::libc::mallopt(nix::libc::M_TOP_PAD, HEAP_STEP) } == 1;
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let taken = false;
    taken
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

    #[test]
    fn glibc_takes_the_heap_step() {
        assert!(super::grow_heaps_in_large_steps());
    }
}
