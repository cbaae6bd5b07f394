//! The loader's memory layer: the only `unsafe` code of the crate.
//!
//! A [`Region`] is an anonymous private mapping that starts read-write and
//! is then given its final protections page range by page range; no page is
//! ever writable and executable at once. Host symbols come from `dlsym`, and
//! [`call_in`] enters loaded code.
//!
//! ## The region pool
//! Mapping fresh memory costs two system calls and a page fault for every
//! page touched (about 2.5 µs each on the machines measured), and each
//! protection change about 3 µs: together more than everything else a
//! load does. So a dropped region of up to [`MAX_POOLED_REGION`] bytes is
//! not unmapped but kept, up to [`set_pool_limit`] bytes in all, for the
//! next region of the same size:
//! - a code region ([`Region::new_code`], [`Region::install`]) keeps its
//!   `r-x`/`r--` pages and goes to the next code region of the same size
//!   and layout, which is written through `/proc/self/mem` (the kernel
//!   writes the pages as a debugger's poke does; they are never mapped
//!   writable) in one system call instead of three protection changes. If
//!   that write is refused (a kernel that forbids it), the region is made
//!   read-write, written and protected again;
//! - any other region is made read-write (never executable) and handed
//!   out zero-filled.
//!
//! A region is dropped only when nothing can run its code any more (the
//! registry's rule), so reuse is as safe as the kernel reusing the address;
//! until then a pooled code region still holds the old code.

use std::ffi::CString;
use std::num::NonZeroUsize;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

use nix::sys::mman::{mmap_anonymous, mprotect, munmap, MapFlags, ProtFlags};

pub const PAGE: u64 = 4096;

/// Protection of a page range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    ReadExecute,
    Read,
    ReadWrite,
}

impl Access {
    fn flags(self) -> ProtFlags {
        match self {
            Access::ReadExecute => ProtFlags::PROT_READ | ProtFlags::PROT_EXEC,
            Access::Read => ProtFlags::PROT_READ,
            Access::ReadWrite => ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
        }
    }
}

/// The largest region the pool keeps (zero-filling it on reuse must stay
/// cheaper than mapping it afresh).
pub const MAX_POOLED_REGION: usize = 64 << 10;
const DEFAULT_POOL_LIMIT: usize = 8 << 20;

/// A dropped region ready for reuse.
#[derive(Clone, Copy)]
struct Pooled {
    start: usize,
    len: usize,
    /// `Some(ro)`: a code region in its final layout (see
    /// [`Region::new_code`]); `None`: read-write.
    code: Option<usize>,
    /// Mapped in the low 2 GiB ([`Placement::Low`]).
    low: bool,
}

static POOL: Mutex<Vec<Pooled>> = Mutex::new(Vec::new());
static POOL_LIMIT: AtomicUsize = AtomicUsize::new(DEFAULT_POOL_LIMIT);
/// Whether [`Region::install`] may write through `/proc/self/mem`.
static PROC_MEM_WRITES: AtomicBool = AtomicBool::new(true);

/// Turns writing reused code regions through `/proc/self/mem` on or off
/// (on by default; off, they are made writable, written and protected
/// again). Returns the previous setting. For tests of both paths.
pub fn set_proc_mem_writes(on: bool) -> bool {
    PROC_MEM_WRITES.swap(on, Ordering::Relaxed)
}

static PROC_MEM_INSTALLS: AtomicU64 = AtomicU64::new(0);

/// How many [`Region::install`]s so far wrote through `/proc/self/mem`
/// (the rest protected pages instead): lets tests and tools see which
/// path ran.
pub fn proc_mem_installs() -> u64 {
    PROC_MEM_INSTALLS.load(Ordering::Relaxed)
}

/// This process's memory as a file. Reopened when the process id changes:
/// a child of `fork` inherits the parent's open file, which still names
/// the parent's memory.
fn proc_self_mem() -> Option<std::sync::Arc<std::fs::File>> {
    static FILE: Mutex<Option<(u32, Option<std::sync::Arc<std::fs::File>>)>> = Mutex::new(None);
    let pid = std::process::id();
    let mut file = FILE.lock().unwrap_or_else(|e| e.into_inner());
    match &*file {
        Some((opened_by, f)) if *opened_by == pid => f.clone(),
        _ => {
            let opened = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open("/proc/self/mem")
                .ok()
                .map(std::sync::Arc::new);
            *file = Some((pid, opened.clone()));
            opened
        }
    }
}

/// How many bytes of dropped regions may be kept for reuse (0: none; see
/// [`set_pool_limit`]).
pub fn pool_limit() -> usize {
    POOL_LIMIT.load(Ordering::Relaxed)
}

/// Sets how many bytes of dropped regions are kept for reuse (default 8 MiB;
/// 0 turns the pool off and unmaps what it holds) and returns the previous
/// limit. Benchmarks use 0 to measure loads into fresh mappings.
pub fn set_pool_limit(bytes: usize) -> usize {
    let previous = POOL_LIMIT.swap(bytes, Ordering::Relaxed);
    let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
    let mut kept = 0;
    pool.retain(|p| {
        kept += p.len;
        if kept <= bytes {
            return true;
        }
        // SAFETY: pooled mappings are owned by the pool alone (no Region
        // refers to them any more); each was mapped with this length.
        let _ = unsafe { munmap(NonNull::new(p.start as *mut _).expect("mapped"), p.len) };
        false
    });
    previous
}

/// An anonymous mapping owned by a loaded module; unmapped (or pooled)
/// when dropped.
#[derive(Debug)]
pub struct Region {
    start: NonNull<std::ffi::c_void>,
    len: usize,
    /// Some page is not read-write (giving it back to the pool restores it).
    protected: bool,
    /// `Some(ro)` once [`Region::install`] gave it its code layout.
    code: Option<usize>,
    /// Mapped in the low 2 GiB.
    low: bool,
    /// Every byte is zero (a new mapping, or a pooled read-write one
    /// cleared): [`Region::install_parts`] writes only what is not.
    zero: bool,
}

// SAFETY: the region is plain memory owned by this value; moving the
// owner between threads moves nothing the kernel ties to a thread.
unsafe impl Send for Region {}
// SAFETY: shared references only read the address and length.
unsafe impl Sync for Region {}

/// Where a region may be mapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Anywhere the kernel chooses.
    Anywhere,
    /// In the low 2 GiB (`MAP_32BIT`): code built without `-fPIC` holds
    /// addresses in 32-bit fields (`R_X86_64_32`, `32S`).
    Low,
}

impl Region {
    /// Maps `len` bytes (rounded up to pages), read-write, zero-filled: a
    /// pooled region of that size if there is one (see the module docs).
    /// (Populating small regions at once with MAP_POPULATE was measured
    /// slower than the page faults it saves.)
    pub fn new(len: u64) -> std::io::Result<Region> {
        Region::new_at(len, Placement::Anywhere)
    }

    /// [`Region::new`] where `placement` says.
    pub fn new_at(len: u64, placement: Placement) -> std::io::Result<Region> {
        let len = usize::try_from(len.max(1).next_multiple_of(PAGE)).map_err(|_| std::io::ErrorKind::OutOfMemory)?;
        let low = placement == Placement::Low;
        if let Some(region) = Region::reuse(len, None, low) {
            return Ok(region);
        }
        Region::map(len, Access::ReadWrite, low)
    }

    /// A fresh anonymous mapping of `len` bytes (a page multiple), zero,
    /// with `access`, in the low 2 GiB if `low`.
    fn map(len: usize, access: Access, low: bool) -> std::io::Result<Region> {
        let size = NonZeroUsize::new(len).expect("at least one page");
        let flags = match low {
            true => MapFlags::MAP_PRIVATE | MapFlags::MAP_32BIT,
            false => MapFlags::MAP_PRIVATE,
        };
        // SAFETY: an anonymous private mapping at an address of the
        // kernel's choosing aliases no Rust object.
        let start = unsafe { mmap_anonymous(None, size, access.flags(), flags) }?;
        Ok(Region {
            start,
            len,
            protected: access != Access::ReadWrite,
            code: None,
            low,
            zero: true,
        })
    }

    /// A region of `len` bytes (rounded up to pages) for code: pages
    /// `[0, ro)` will be `r-x` and `[ro, len)` (none if `ro` is `len`) `r--` once
    /// [`Region::install`] has written them. Until then it may hold stale
    /// bytes (a pooled code region of that layout) or zeros; write it only
    /// with `install`.
    pub fn new_code(len: u64, ro: u64) -> std::io::Result<Region> {
        Region::new_code_at(len, ro, Placement::Anywhere)
    }

    /// [`Region::new_code`] where `placement` says.
    pub fn new_code_at(len: u64, ro: u64, placement: Placement) -> std::io::Result<Region> {
        let low = placement == Placement::Low;
        let rounded = len.max(1).next_multiple_of(PAGE);
        let (Ok(size), Ok(ro)) = (usize::try_from(rounded), usize::try_from(ro)) else {
            return Err(std::io::ErrorKind::OutOfMemory.into());
        };
        if !ro.is_multiple_of(PAGE as usize) || ro > size {
            return Err(std::io::ErrorKind::InvalidInput.into());
        }
        if let Some(region) = Region::reuse(size, Some(ro), low) {
            return Ok(region);
        }
        if !PROC_MEM_WRITES.load(Ordering::Relaxed) || proc_self_mem().is_none() {
            return Region::new_at(rounded, placement);
        }
        // A fresh mapping laid out for code from the start: `install`
        // writes it through /proc/self/mem, which also faults the pages in
        // within the kernel (cheaper than a trap per page), and no page
        // ever needs a protection change to write.
        let mut region = if ro == size {
            Region::map(size, Access::ReadExecute, low)?
        } else {
            let mut region = Region::map(size, Access::Read, low)?;
            region.protect(0, ro as u64, Access::ReadExecute)?;
            region
        };
        region.code = Some(ro);
        Ok(region)
    }

    /// Writes `image` (the whole region's bytes, `len` of them) and gives
    /// the pages the code layout `new_code` was asked for: through
    /// `/proc/self/mem` if the region already has that layout (reused),
    /// else by writing while read-write and then protecting.
    pub fn install(&mut self, image: &[u8], ro: u64) -> std::io::Result<()> {
        self.install_parts(image, ro, std::slice::from_ref(&(0..image.len())))
    }

    /// [`Region::install`], where `image` is zero outside `parts` (sorted,
    /// disjoint ranges): a region that is all zero gets only those written.
    /// Writing the rest would fault in, and so allocate, every page of a
    /// section's zero tail, which a module file may claim at 1 GiB each.
    pub fn install_parts(&mut self, image: &[u8], ro: u64, parts: &[std::ops::Range<usize>]) -> std::io::Result<()> {
        assert_eq!(image.len(), self.len, "install writes the whole region");
        let whole = 0..image.len();
        let parts = if self.zero { parts } else { std::slice::from_ref(&whole) };
        let ro = ro as usize;
        if self.code == Some(ro) && PROC_MEM_WRITES.load(Ordering::Relaxed) {
            if let Some(file) = proc_self_mem() {
                use std::os::unix::fs::FileExt;
                // The kernel writes this region's pages (owned by `&mut
                // self`: no reference into them, no thread runs them) while
                // they stay mapped without write permission.
                if parts.iter().all(|part| {
                    file.write_all_at(&image[part.clone()], self.addr() + part.start as u64)
                        .is_ok()
                }) {
                    PROC_MEM_INSTALLS.fetch_add(1, Ordering::Relaxed);
                    self.zero = false;
                    return Ok(());
                }
            }
        }
        if self.protected {
            self.protect(0, self.len as u64, Access::ReadWrite)?;
        }
        self.code = None;
        for part in parts {
            self.write(part.start as u64, &image[part.clone()]);
        }
        self.protect(0, ro as u64, Access::ReadExecute)?;
        self.protect(ro as u64, (self.len - ro) as u64, Access::Read)?;
        self.code = Some(ro);
        Ok(())
    }

    /// A pooled region of exactly `len` bytes: a code region of layout
    /// `code`, else a read-write one (zero-filled).
    fn reuse(len: usize, code: Option<usize>, low: bool) -> Option<Region> {
        let taken = {
            let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
            let at = pool
                .iter()
                .rposition(|p| p.len == len && p.code == code && p.low == low)
                .or_else(|| {
                    pool.iter()
                        .rposition(|p| p.len == len && p.code.is_none() && p.low == low)
                })?;
            pool.swap_remove(at)
        };
        if taken.code.is_none() {
            // SAFETY: the pool owned this read-write mapping of `len`
            // bytes alone; it now belongs to the new region, so nothing
            // else reads or runs it while it is cleared.
            unsafe { std::ptr::write_bytes(taken.start as *mut u8, 0, len) };
        }
        Some(Region {
            start: NonNull::new(taken.start as *mut _).expect("mapped"),
            len,
            protected: taken.code.is_some(),
            code: taken.code,
            low,
            zero: taken.code.is_none(),
        })
    }

    /// Hands the mapping to the pool (a code region as it is, any other
    /// read-write again); false if the pool does not take it.
    fn give_back(&mut self) -> bool {
        let limit = POOL_LIMIT.load(Ordering::Relaxed);
        if self.len > MAX_POOLED_REGION || self.len > limit {
            return false;
        }
        if self.code.is_none() && self.protected && self.protect(0, self.len as u64, Access::ReadWrite).is_err() {
            return false;
        }
        let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
        if pool.iter().map(|p| p.len).sum::<usize>() + self.len > limit {
            return false;
        }
        pool.push(Pooled {
            start: self.start.as_ptr() as usize,
            len: self.len,
            code: self.code,
            low: self.low,
        });
        true
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
        self.zero = false;
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
        let flags = access.flags();
        // SAFETY: the pages belong to this mapping; no Rust reference
        // points into them (writes go through `write`).
        unsafe {
            let at = NonNull::new_unchecked((self.start.as_ptr() as *mut u8).add(offset as usize) as *mut _);
            mprotect(at, len.next_multiple_of(PAGE) as usize, flags)?;
        }
        self.protected |= access != Access::ReadWrite;
        self.code = None; // a layout set by `install` alone
        Ok(())
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        if self.give_back() {
            return;
        }
        // SAFETY: the mapping was created by `new` with this length and is
        // owned by this value alone; the registry drops a region only when
        // no thread can be running its code (see the loader's rule).
        let _ = unsafe { munmap(self.start, self.len) };
    }
}

/// The host process's address for `name` (`dlsym(RTLD_DEFAULT, …)`).
pub fn host_symbol(name: &str) -> Option<u64> {
    relive_host::symbol(name)
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
/// # Safety
/// Module code is trusted as a `dlopen`ed library's is, and this runs it:
/// `addr` must be the entry of a function of the System V ABI that takes
/// at most six integer or pointer arguments and returns an integer (or
/// nothing), and running it with `args` must be sound (pointers among
/// them valid for what the function does with them).
pub unsafe fn call_in(region: &Region, addr: u64, args: [u64; 6]) -> Option<u64> {
    if !(region.addr()..region.addr() + region.len()).contains(&addr) {
        return None;
    }
    type Entry = extern "C" fn(u64, u64, u64, u64, u64, u64) -> u64;
    // SAFETY: `addr` is inside a mapping of loaded, relocated code that the
    // borrowed `region` keeps mapped for the duration of the call, and the
    // caller promises it is such a function's entry.
    let f: Entry = unsafe { std::mem::transmute::<usize, Entry>(addr as usize) };
    Some(f(args[0], args[1], args[2], args[3], args[4], args[5]))
}

impl Region {
    /// The 8-byte word at `offset` (aligned, inside the region, on a
    /// read-write page), as an atomic: the entry table's cells and pointer
    /// fields in module data. Panics if it is not aligned or not inside.
    fn cell(&self, offset: u64) -> &AtomicU64 {
        assert!(
            offset.is_multiple_of(8) && offset.checked_add(8).is_some_and(|e| e <= self.len as u64),
            "cell outside the region"
        );
        // SAFETY: the word is inside this live mapping (checked above),
        // 8-byte aligned, and on a page the owner keeps read-write (the
        // entry table's cell pages; module data). Every other access to it
        // is a single aligned 8-byte access (the trampolines' `jmp *cell`;
        // module code using a pointer), so treating it as an AtomicU64 is
        // sound, and the reference lives no longer than `&self`, which
        // keeps the mapping.
        unsafe { &*((self.start.as_ptr() as *const u8).add(offset as usize) as *const AtomicU64) }
    }

    /// Stores `value` in the cell at `offset` with one atomic release
    /// store, so a thread that jumps through the cell at the same moment
    /// reads either the old or the new address, never a torn one, and
    /// finds the code it names fully written.
    pub fn store_cell(&self, offset: u64, value: u64) {
        self.cell(offset).store(value, Ordering::Release);
    }

    /// Replaces the 8-byte word at `offset` (see [`Region::store_cell`]) by
    /// `new` if it still holds `current`, with one atomic
    /// compare-and-exchange: a thread storing to it at the same moment
    /// either wins (its value stays) or sees `new`. Returns whether it was
    /// replaced.
    pub fn replace_cell(&self, offset: u64, current: u64, new: u64) -> bool {
        self.cell(offset)
            .compare_exchange(current, new, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    }

    /// Reads the cell at `offset` (see [`Region::store_cell`]).
    pub fn load_cell(&self, offset: u64) -> u64 {
        self.cell(offset).load(Ordering::Acquire)
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

/// Replaces `bytes` by what `file` holds from its position to its end,
/// read straight into `bytes`' spare room (grown when full), which is not
/// zeroed first: a registry reads each module file this way, and
/// clearing the buffer before the read was a tenth of a first load.
pub(crate) fn read_whole(file: &std::fs::File, bytes: &mut Vec<u8>) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    bytes.clear();
    loop {
        if bytes.len() == bytes.capacity() {
            bytes.reserve(bytes.capacity().max(4096));
        }
        let spare = bytes.spare_capacity_mut();
        // SAFETY: `read` writes at most `spare.len()` bytes into `spare`,
        // which is `bytes`' own allocation past its length.
        let n = unsafe { nix::libc::read(file.as_raw_fd(), spare.as_mut_ptr().cast(), spare.len()) };
        match n {
            0 => return Ok(()),
            n if n > 0 => {
                // SAFETY: the kernel initialised the first `n` bytes of the
                // spare room (`n` <= its length).
                unsafe { bytes.set_len(bytes.len() + n as usize) };
            }
            _ => {
                let e = std::io::Error::last_os_error();
                if e.kind() != std::io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Held by every unit test that maps memory, so none holds the pool's
    /// lock at the moment another one forks (the child would wait on it
    /// forever).
    pub(crate) static MAPPING: Mutex<()> = Mutex::new(());

    /// A child of `fork` inherits the pool and, if it were kept, the
    /// parent's `/proc/self/mem` file: installing code in the child must
    /// write the child's pages, never the parent's.
    #[test]
    fn a_forked_child_installs_into_its_own_memory() {
        let _serial = MAPPING.lock().unwrap_or_else(|e| e.into_inner());
        // A size no other test uses, so the pooled region stays ours.
        let (len, ro) = (7 * PAGE, 3 * PAGE);
        let image = |fill: u8| vec![fill; len as usize];
        let mut code = Region::new_code(len, ro).unwrap();
        code.install(&image(0x44), ro).unwrap();
        let at = code.addr();
        drop(code);
        assert!(proc_self_mem().is_some(), "the parent opened /proc/self/mem");
        // SAFETY: the child only maps, writes and reads its own memory and
        // then leaves with `_exit`, running no destructors or atexit
        // handlers of the parent's threads.
        match unsafe { nix::unistd::fork() }.unwrap() {
            nix::unistd::ForkResult::Child => {
                let ok = Region::new_code(len, ro).is_ok_and(|mut r| {
                    r.addr() == at && r.install(&image(0x55), ro).is_ok() && r.read(at, len) == Some(image(0x55))
                });
                // SAFETY: ends the child at once (see above).
                unsafe { nix::libc::_exit(if ok { 0 } else { 1 }) };
            }
            nix::unistd::ForkResult::Parent { child } => {
                let status = nix::sys::wait::waitpid(child, None).unwrap();
                assert_eq!(
                    status,
                    nix::sys::wait::WaitStatus::Exited(child, 0),
                    "the child saw its own write"
                );
                let reused = Region::new_code(len, ro).unwrap();
                assert_eq!(reused.addr(), at);
                assert_eq!(
                    reused.read(at, len),
                    Some(image(0x44)),
                    "the parent's pages are untouched"
                );
            }
        }
    }
}
