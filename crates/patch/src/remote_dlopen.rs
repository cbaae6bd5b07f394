//! Loading a shared library into the process with its own glibc `dlopen`,
//! called on its main thread: how relive gives a process the GDB JIT
//! interface ([`crate::debugger`]) and, for a C program that has not
//! unwound yet, the unwinder glibc itself would load on its first
//! `backtrace()` ([`crate::unwind::load_unwinder`]).
//!
//! The loader allocates and takes its lock, so the call is made only while
//! the main thread waits in a blocking system call
//! ([`crate::unwind::stop_at_quiet_point`]); the other threads run on. Only
//! glibc's `dlopen` is called (a static program's copy included): it maps
//! the file and runs its initializers; another C library's may do more
//! (Cosmopolitan's compiles a helper).

use relive_process::{CallOutcome, Process, Stopped};

use crate::link::Resolver;
use crate::target::Target;

/// `dlopen` flags: `RTLD_NOW`.
const RTLD_NOW: u64 = 2;

/// The process's glibc `dlopen`, or why it has none relive calls.
pub fn glibc_dlopen(target: &Target) -> Result<u64, String> {
    let glibc = ["gnu_get_libc_version", "__libc_dlopen_mode"]
        .iter()
        .any(|marker| target.resolver.global(marker).is_some());
    if !glibc {
        return Err("the process does not run on glibc, whose dlopen relive loads libraries with".into());
    }
    target
        .resolver
        .global("dlopen")
        .ok_or_else(|| "the process has no dlopen (a static program that never loads libraries)".to_string())
}

/// Calls `dlopen(name, RTLD_NOW)` (the name written at `scratch` first) on
/// the stopped main thread. Whether it loaded is for the caller to read in
/// the process's mappings.
pub fn call(
    process: &dyn Process,
    stopped: &mut dyn Stopped,
    dlopen: u64,
    scratch: u64,
    name: &str,
) -> Result<(), String> {
    let mut text = name.as_bytes().to_vec();
    text.push(0);
    process
        .write(scratch, &text)
        .map_err(|e| format!("the library's name could not be written at {scratch:#x}: {e}"))?;
    match stopped.call(dlopen, &[scratch, RTLD_NOW], crate::hooks::timeout()) {
        Ok(CallOutcome::Returned) => Ok(()),
        Ok(CallOutcome::Crashed { signal, rip }) => Err(format!(
            "dlopen({name}) crashed ({} at {rip:#x})",
            relive_process::signal_name(signal)
        )),
        Ok(CallOutcome::TimedOut { rip }) => Err(format!("dlopen({name}) did not return (at {rip:#x})")),
        Err(e) => Err(format!("dlopen could not be called: {e}")),
    }
}

/// Loads the library `name` (a path, or a name the loader searches for),
/// its name written at `scratch` (unused memory of relive's, at least
/// `name.len() + 1` bytes) for the call and the bytes there put back.
pub fn load(target: &Target, name: &str, scratch: u64) -> Result<(), String> {
    let process = target.process;
    let dlopen = glibc_dlopen(target)?;
    let mut saved = vec![0u8; name.len() + 1];
    process
        .read(scratch, &mut saved)
        .map_err(|e| format!("the memory at {scratch:#x} could not be read: {e}"))?;
    let mut stopped = crate::unwind::stop_at_quiet_point_within(process, crate::unwind::OPTIONAL_TRIES)?;
    let called = call(process, stopped.as_mut(), dlopen, scratch, name);
    let restored = process
        .write(scratch, &saved)
        .map_err(|e| format!("the memory at {scratch:#x} could not be put back: {e}"));
    stopped
        .resume()
        .map_err(|e| format!("the main thread could not be resumed: {e}"))?;
    called.and(restored)
}

/// The load address and path of the mapped library whose file is named
/// `file_name` (or whose path is `file_name`), if mapped.
pub fn mapped(process: &dyn Process, file_name: &str) -> Result<Option<(u64, String)>, String> {
    let maps = process.maps().map_err(|e| e.to_string())?;
    Ok(maps
        .iter()
        .filter(|m| m.path == file_name || m.path.rsplit('/').next() == Some(file_name))
        .map(|m| (m.start - m.offset, m.path.clone()))
        .min())
}
