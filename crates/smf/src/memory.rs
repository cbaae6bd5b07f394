//! The loader's memory layer: the only `unsafe` code of the crate.
//!
//! A [`Region`] is an anonymous private mapping that starts read-write and
//! is then given its final protections page range by page range; no page is
//! ever writable and executable at once. Host symbols come from `dlsym`, and
//! [`call`] enters loaded code.

use std::ffi::CString;
use std::num::NonZeroUsize;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};

use nix::sys::mman::{mmap_anonymous, mprotect, munmap, MapFlags, ProtFlags};

pub const PAGE: u64 = 4096;

/// Protection of a page range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    ReadExecute,
    Read,
    ReadWrite,
}

/// An anonymous mapping owned by a loaded module; unmapped when dropped.
#[derive(Debug)]
pub struct Region {
    start: NonNull<std::ffi::c_void>,
    len: usize,
}

// SAFETY: the region is plain memory owned by this value; moving the
// owner between threads moves nothing the kernel ties to a thread.
unsafe impl Send for Region {}
// SAFETY: shared references only read the address and length.
unsafe impl Sync for Region {}

impl Region {
    /// Maps `len` bytes (rounded up to pages), read-write, zero-filled.
    /// (Populating small regions at once with MAP_POPULATE was measured
    /// slower than the page faults it saves.)
    pub fn new(len: u64) -> std::io::Result<Region> {
        let len = usize::try_from(len.max(1).next_multiple_of(PAGE)).map_err(|_| std::io::ErrorKind::OutOfMemory)?;
        let size = NonZeroUsize::new(len).expect("at least one page");
        // SAFETY: an anonymous private mapping at an address of the
        // kernel's choosing aliases no Rust object.
        let start = unsafe {
            mmap_anonymous(
                None,
                size,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_PRIVATE,
            )
        }?;
        Ok(Region { start, len })
    }

    pub fn addr(&self) -> u64 {
        self.start.as_ptr() as u64
    }

    pub fn len(&self) -> u64 {
        self.len as u64
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Copies `bytes` to `offset`; the range must be inside the region and
    /// still writable (before [`Region::protect`] made it otherwise).
    pub fn write(&mut self, offset: u64, bytes: &[u8]) {
        let end = offset.checked_add(bytes.len() as u64);
        assert!(end.is_some_and(|e| e <= self.len as u64), "write outside the region");
        // SAFETY: the range was checked to lie inside this mapping, which
        // this value owns exclusively (&mut self) and which is still
        // read-write: the loader writes before it protects.
        unsafe {
            std::ptr::copy_nonoverlapping(
                bytes.as_ptr(),
                (self.start.as_ptr() as *mut u8).add(offset as usize),
                bytes.len(),
            )
        }
    }

    /// Gives `[offset, offset + len)` (page-aligned) its final protection.
    pub fn protect(&mut self, offset: u64, len: u64, access: Access) -> std::io::Result<()> {
        if len == 0 {
            return Ok(());
        }
        assert!(
            offset.is_multiple_of(PAGE) && offset + len <= self.len as u64,
            "protect outside the region"
        );
        let flags = match access {
            Access::ReadExecute => ProtFlags::PROT_READ | ProtFlags::PROT_EXEC,
            Access::Read => ProtFlags::PROT_READ,
            Access::ReadWrite => ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
        };
        // SAFETY: the pages belong to this mapping; no Rust reference
        // points into them (writes go through `write`).
        unsafe {
            let at = NonNull::new_unchecked((self.start.as_ptr() as *mut u8).add(offset as usize) as *mut _);
            mprotect(at, len.next_multiple_of(PAGE) as usize, flags)?;
        }
        Ok(())
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: the mapping was created by `new` with this length and is
        // owned by this value alone; the registry drops a region only when
        // no thread can be running its code (see the loader's rule).
        let _ = unsafe { munmap(self.start, self.len) };
    }
}

/// The host process's address for `name` (`dlsym(RTLD_DEFAULT, …)`).
pub fn host_symbol(name: &str) -> Option<u64> {
    let name = CString::new(name).ok()?;
    // SAFETY: dlsym reads the NUL-terminated name and the loader's tables.
    let addr = unsafe { nix::libc::dlsym(nix::libc::RTLD_DEFAULT, name.as_ptr()) } as u64;
    (addr != 0).then_some(addr)
}

/// Up to six integer arguments as the six argument registers (missing ones
/// zero; more than six are not passed).
pub fn six_args(args: &[u64]) -> [u64; 6] {
    let mut all = [0u64; 6];
    let n = args.len().min(6);
    all[..n].copy_from_slice(&args[..n]);
    all
}

/// Calls the `extern "C"` function at `addr`, which must lie in `region`'s
/// code, with six 64-bit integer arguments (a callee taking fewer ignores
/// the rest: the System V ABI passes them in registers) and returns `rax`.
/// `None` when `addr` is outside the region.
///
/// The loaded module is trusted code, exactly as a `dlopen`ed library is:
/// calling it is as safe as the C function it is.
pub fn call_in(region: &Region, addr: u64, args: [u64; 6]) -> Option<u64> {
    if !(region.addr()..region.addr() + region.len()).contains(&addr) {
        return None;
    }
    type Entry = extern "C" fn(u64, u64, u64, u64, u64, u64) -> u64;
    // SAFETY: `addr` is inside a mapping of loaded, relocated code that the
    // borrowed `region` keeps mapped for the duration of the call; the
    // loader passes only exported function entries.
    let f: Entry = unsafe { std::mem::transmute::<usize, Entry>(addr as usize) };
    Some(f(args[0], args[1], args[2], args[3], args[4], args[5]))
}

impl Region {
    /// Stores `value` at `offset` (8-byte aligned, inside the region, on a
    /// read-write page) with one atomic release store, so a thread that
    /// jumps through the cell at the same moment reads either the old or
    /// the new address, never a torn one, and finds the code it names
    /// fully written.
    pub fn store_cell(&self, offset: u64, value: u64) {
        assert!(
            offset.is_multiple_of(8) && offset.checked_add(8).is_some_and(|e| e <= self.len as u64),
            "cell outside the region"
        );
        // SAFETY: the cell is inside this live mapping, 8-byte aligned, and
        // on a page the owner keeps read-write (the entry table's cell
        // pages); every access to it, here and from the trampolines' `jmp
        // *cell`, is a single aligned 8-byte access, so treating it as an
        // AtomicU64 is sound.
        let cell = unsafe { &*((self.start.as_ptr() as *const u8).add(offset as usize) as *const AtomicU64) };
        cell.store(value, Ordering::Release);
    }

    /// Reads the cell at `offset` (see [`Region::store_cell`]).
    pub fn load_cell(&self, offset: u64) -> u64 {
        assert!(
            offset.is_multiple_of(8) && offset.checked_add(8).is_some_and(|e| e <= self.len as u64),
            "cell outside the region"
        );
        // SAFETY: as in `store_cell`: aligned, inside the live mapping,
        // only ever accessed as one 8-byte word.
        let cell = unsafe { &*((self.start.as_ptr() as *const u8).add(offset as usize) as *const AtomicU64) };
        cell.load(Ordering::Acquire)
    }

    /// Copies `len` bytes at address `addr` out of the region (which must
    /// hold them and be readable there: loaded data, not guard space).
    pub fn read(&self, addr: u64, len: u64) -> Option<Vec<u8>> {
        let offset = addr.checked_sub(self.addr())?;
        if offset.checked_add(len)? > self.len() {
            return None;
        }
        let mut out = vec![0u8; len as usize];
        // SAFETY: the range lies inside this live mapping; every page of a
        // loaded module is readable (r-x, r-- or rw-).
        unsafe { std::ptr::copy_nonoverlapping(addr as *const u8, out.as_mut_ptr(), len as usize) };
        Some(out)
    }
}

/// A shared library opened with `dlopen(RTLD_NOW | RTLD_LOCAL)`: what SMF
/// loading is compared with (the benchmark's baseline), and a way for a
/// host to offer a library's symbols to modules. Closed when dropped.
#[derive(Debug)]
pub struct SharedLibrary {
    handle: NonNull<std::ffi::c_void>,
}

impl SharedLibrary {
    pub fn open(path: &std::path::Path) -> Result<SharedLibrary, String> {
        use std::os::unix::ffi::OsStrExt;
        let name = CString::new(path.as_os_str().as_bytes()).map_err(|e| e.to_string())?;
        // SAFETY: dlopen reads the NUL-terminated path; the library's
        // constructors run as they would for any dlopen.
        let handle = unsafe { nix::libc::dlopen(name.as_ptr(), nix::libc::RTLD_NOW | nix::libc::RTLD_LOCAL) };
        NonNull::new(handle)
            .map(|handle| SharedLibrary { handle })
            .ok_or_else(|| format!("{}: {}", path.display(), dl_error()))
    }

    /// `dlsym(handle, name)`.
    pub fn symbol(&self, name: &str) -> Option<u64> {
        let name = CString::new(name).ok()?;
        // SAFETY: the handle is open (owned by self); dlsym reads the name.
        let addr = unsafe { nix::libc::dlsym(self.handle.as_ptr(), name.as_ptr()) } as u64;
        (addr != 0).then_some(addr)
    }
}

impl Drop for SharedLibrary {
    fn drop(&mut self) {
        // SAFETY: the handle came from dlopen and is closed once, here;
        // addresses taken from it are not used after the drop by the
        // library's callers (documented on `symbol`'s users).
        unsafe { nix::libc::dlclose(self.handle.as_ptr()) };
    }
}

fn dl_error() -> String {
    // SAFETY: dlerror returns NULL or a NUL-terminated string owned by the
    // loader, valid until the next dl* call on this thread; copied at once.
    unsafe {
        let message = nix::libc::dlerror();
        if message.is_null() {
            "dlopen failed".into()
        } else {
            std::ffi::CStr::from_ptr(message).to_string_lossy().into_owned()
        }
    }
}
