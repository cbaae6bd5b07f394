//! The vDSO: the kernel's small shared object (`[vdso]` in
//! `/proc/PID/maps`) with the fast `clock_gettime`, `gettimeofday`,
//! `time` and `getcpu`. glibc's `time` and `gettimeofday` are IFUNCs that
//! resolve straight to it, so patched code calling them must be linked to
//! the vDSO's functions in the target. It has no file: its ELF image is
//! read out of the process's memory.

use std::sync::Arc;

use relive_image::Image;

use crate::maps::Mapping;
use crate::modules::{self, ImageSource, LoadedModule, Module};
use crate::Process;

/// The vDSO's module path, as `/proc/PID/maps` names its mapping.
pub const PATH: &str = "[vdso]";

/// A vDSO is a page or two; a mapping far larger is not one.
const MAX_BYTES: u64 = 1 << 20;

/// The vDSO of `process` (mapped as in `maps`), its image parsed from its
/// memory; `None` when it has none (`vdso=0`) or it cannot be read.
pub fn load(process: &dyn Process, maps: &[Mapping]) -> Option<LoadedModule> {
    let mapping = maps.iter().find(|m| m.path == PATH && m.readable())?;
    let len = mapping
        .end
        .checked_sub(mapping.start)
        .filter(|&l| l > 0 && l <= MAX_BYTES)?;
    let mut bytes = vec![0u8; len as usize];
    let (image, image_error) = match process.read(mapping.start, &mut bytes) {
        Ok(()) => match Image::from_bytes(PATH, bytes) {
            Ok(image) => (Some(Arc::new(image)), None),
            Err(e) => (None, Some(e.to_string())),
        },
        Err(e) => (None, Some(e.to_string())),
    };
    let module = Module {
        path: PATH.to_string(),
        deleted: false,
        dev: mapping.dev.clone(),
        inode: 0,
        base: mapping.start,
        end: mapping.end,
        // The vDSO is linked at 0 on x86-64; the image's program headers
        // say so (finish computes the bias from them).
        load_bias: mapping.start,
        format: None,
        source: ImageSource::Memory,
    };
    Some(modules::finish(module, image, image_error, vec![mapping.clone()]))
}

/// The name of the vDSO function at `addr` in relive's own process (where
/// relive's libc resolved an IFUNC to), to find the same function in a
/// target's vDSO.
#[cfg(target_os = "linux")]
pub fn own_function_at(addr: u64) -> Option<String> {
    let me = crate::linux::LinuxProcess::open(std::process::id()).ok()?;
    let maps = me.maps().ok()?;
    let vdso = load(&me, &maps)?;
    if !vdso.module.contains(addr) {
        return None;
    }
    let table = vdso.image.as_ref()?.symbols(None).ok()?;
    let (symbol, 0) = table.by_addr(addr.wrapping_sub(vdso.module.load_bias))? else {
        return None;
    };
    Some(symbol.name.clone())
}
