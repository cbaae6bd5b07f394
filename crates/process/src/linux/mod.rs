//! The Linux backend: `/proc/PID/maps` for the address space,
//! `process_vm_readv` for reads (falling back to `/proc/PID/mem`), and
//! `pwrite` on `/proc/PID/mem` for writes, which the kernel performs with
//! FOLL_FORCE, so code pages that are mapped read-only can be patched.
//! (`process_vm_writev` honours page protections and cannot write `.text`.)

use std::cell::RefCell;
use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, IoSliceMut};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::PathBuf;

mod code_search;
pub(crate) mod exec_trace;
pub mod family;
pub mod held;
mod return_frame;
mod stop;
mod wait;
pub use stop::{LinuxStopped, SyscallSite};

use nix::sys::uio::{process_vm_readv, RemoteIoVec};
use nix::unistd::Pid;

use crate::error::{ProcessError, Result};
use crate::maps::{self, Mapping};
use crate::threads::{self, ThreadInfo, ThreadState};
use crate::{Process, Stopped, ThreadPosition};

pub struct LinuxProcess {
    pid: u32,
    /// The mappings last read. Bounds checks use them and re-read
    /// `/proc/PID/maps` only when they do not cover a range (the address
    /// space may have grown); a range unmapped since then still fails, in
    /// the kernel, without writing anything.
    maps_cache: RefCell<Option<Vec<Mapping>>>,
    /// `/proc/PID/mem` opened for writing, kept for the next write.
    mem_rw: RefCell<Option<File>>,
    /// The instructions remote system calls borrow, as the last stop
    /// found them: a later stop of the same process checks that their
    /// bytes are still there instead of searching its code again.
    found_code: std::cell::Cell<Option<code_search::Found>>,
}

impl LinuxProcess {
    /// Opens `pid`, checking that it exists and that we may access its
    /// memory (which `/proc/PID/mem` requires: ptrace access rights).
    pub fn open(pid: u32) -> Result<LinuxProcess> {
        let process = LinuxProcess {
            pid,
            maps_cache: RefCell::new(None),
            mem_rw: RefCell::new(None),
            found_code: std::cell::Cell::new(None),
        };
        let proc_dir = process.proc_path("");
        if pid == 0 || !proc_dir.exists() {
            return Err(ProcessError::NoSuchProcess { pid });
        }
        // Opening mem is the access check the kernel applies to every later
        // read and write, so failing here gives the clearest error.
        process.mem(false, "checking access")?;
        Ok(process)
    }

    fn proc_path(&self, name: &str) -> PathBuf {
        PathBuf::from(format!("/proc/{}/{name}", self.pid))
    }

    /// The ids in `/proc/PID/task`: every thread, in no particular order.
    pub fn task_ids(&self) -> Result<Vec<u32>> {
        let dir = std::fs::read_dir(self.proc_path("task")).map_err(|e| match e.kind() {
            ErrorKind::NotFound => self.gone("listing its threads"),
            _ => self.io_error("listing its threads", "reading /proc/PID/task", e),
        })?;
        Ok(dir
            .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
            .collect())
    }

    /// Whether the process has exited and awaits its parent.
    fn is_zombie(&self) -> bool {
        self.state(None).is_some_and(ThreadState::has_exited)
    }

    /// The scheduler state of thread `tid`, or of the process with `None`;
    /// `None` when it cannot be read (the thread or process is gone).
    pub(crate) fn state(&self, tid: Option<u32>) -> Option<ThreadState> {
        let path = match tid {
            Some(tid) => self.proc_path(&format!("task/{tid}/stat")),
            None => self.proc_path("stat"),
        };
        let stat = crate::procfs::read_lossy(path).ok()?;
        threads::parse_stat(tid.unwrap_or(self.pid), &stat).map(|t| t.state)
    }

    /// A numeric field of `/proc/PID/status` (`Threads:`, `TracerPid:`).
    fn status_field<T: std::str::FromStr>(&self, key: &str) -> Option<T> {
        let status = crate::procfs::read_lossy(self.proc_path("status")).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
            .and_then(|v| v.trim().parse().ok())
    }

    /// The number of live threads (`Threads:` in `/proc/PID/status`).
    pub fn thread_count(&self) -> Option<usize> {
        self.status_field("Threads")
    }

    /// Stops every thread; see [`LinuxStopped`].
    pub fn stop_all(&self) -> Result<LinuxStopped<'_>> {
        LinuxStopped::attach_all(self)
    }

    fn read_proc_file(&self, name: &str, doing: &'static str) -> Result<String> {
        crate::procfs::read_lossy(self.proc_path(name)).map_err(|e| match e.kind() {
            ErrorKind::NotFound => self.gone(doing),
            ErrorKind::PermissionDenied => self.permission_denied(),
            _ => self.io_error(doing, &format!("reading /proc/PID/{name}"), e),
        })
    }

    fn mem(&self, write: bool, doing: &'static str) -> Result<File> {
        OpenOptions::new()
            .read(true)
            .write(write)
            .open(self.proc_path("mem"))
            .map_err(|e| match e.kind() {
                ErrorKind::PermissionDenied => self.permission_denied(),
                ErrorKind::NotFound => self.gone(doing),
                _ => self.io_error(doing, "opening /proc/PID/mem", e),
            })
    }

    /// The pid tracing the process (`TracerPid` in its status), if any.
    fn tracer(&self) -> Option<u32> {
        self.status_field::<u32>("TracerPid").filter(|&t| t != 0)
    }

    pub(crate) fn gone(&self, doing: &'static str) -> ProcessError {
        ProcessError::Gone { pid: self.pid, doing }
    }

    /// An I/O failure while `doing` something; if the process has vanished
    /// meanwhile, that is the real cause and is reported instead.
    pub(crate) fn io_error(&self, doing: &'static str, what: &str, source: std::io::Error) -> ProcessError {
        // ESRCH, a missing /proc entry, or a zombie: the process has exited
        // (or is exiting and has no memory left).
        if source.raw_os_error() == Some(nix::errno::Errno::ESRCH as i32)
            || !self.proc_path("").exists()
            || self.is_zombie()
        {
            return self.gone(doing);
        }
        ProcessError::Io {
            pid: self.pid,
            what: what.to_string(),
            cause: source,
        }
    }

    /// Explains why access was refused: the target's owner, Yama's
    /// `ptrace_scope`, and whether we have CAP_SYS_PTRACE.
    pub(crate) fn permission_denied(&self) -> ProcessError {
        // Another debugger (gdb, strace, a second relive) holds the
        // process: ptrace allows one tracer, whoever is asking.
        if let Some(tracer) = self.tracer().filter(|&t| t != std::process::id()) {
            let name = crate::procfs::read_lossy(format!("/proc/{tracer}/comm"))
                .map(|c| c.trim().to_string())
                .unwrap_or_else(|_| "?".into());
            return ProcessError::Traced {
                pid: self.pid,
                tracer,
                name,
            };
        }
        let our_uid = nix::unistd::geteuid().as_raw();
        let their_uid = std::fs::metadata(self.proc_path("")).map(|m| m.uid()).ok();
        let scope = crate::procfs::read_lossy("/proc/sys/kernel/yama/ptrace_scope")
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok());
        let mut why = Vec::new();
        match their_uid {
            Some(uid) if uid != our_uid => why.push(format!(
                "it belongs to uid {uid} and relive runs as uid {our_uid}; run relive as that user or as root (CAP_SYS_PTRACE)"
            )),
            _ => {}
        }
        match scope {
            Some(1) => why.push(
                "Yama ptrace_scope is 1 (only ancestors may attach): start the program under `relive run`, or `sysctl kernel.yama.ptrace_scope=0`".into(),
            ),
            Some(2) => why.push("Yama ptrace_scope is 2 (admin only): run relive with CAP_SYS_PTRACE (e.g. as root)".into()),
            Some(3) => why.push("Yama ptrace_scope is 3 (attaching is disabled until reboot)".into()),
            _ => {}
        }
        if why.is_empty() && our_uid == 0 {
            let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
            why.push(root_refused(has_sys_ptrace(&status)).into());
        } else if why.is_empty() {
            why.push(
                "the kernel refused ptrace access (the target may be non-dumpable, e.g. setuid); run relive as root"
                    .into(),
            );
        }
        ProcessError::PermissionDenied {
            pid: self.pid,
            why: why.join("; "),
        }
    }

    fn check_mapped(&self, addr: u64, len: usize) -> Result<()> {
        if let Some(cached) = self.maps_cache.borrow().as_ref() {
            if maps::covers(cached, addr, len) {
                return Ok(());
            }
        }
        if maps::covers(&self.maps()?, addr, len) {
            Ok(())
        } else {
            Err(ProcessError::NotMapped {
                pid: self.pid,
                addr,
                len,
            })
        }
    }
}

impl Process for LinuxProcess {
    fn pid(&self) -> u32 {
        self.pid
    }

    fn code_hints(&self) -> Option<crate::CodeHints> {
        self.found_code.get().and_then(|f| f.hints())
    }

    fn remember_code_hints(&self, hints: crate::CodeHints) {
        if self.found_code.get().is_none() {
            self.found_code.set(Some(code_search::Found::from_hints(hints)));
        }
    }

    fn maps(&self) -> Result<Vec<Mapping>> {
        let text = self.read_proc_file("maps", "reading its memory map")?;
        // A process that has exited but not been reaped (a zombie) has no
        // address space left: as good as gone.
        if text.is_empty() {
            return Err(self.gone("reading its memory map"));
        }
        let maps: Vec<Mapping> = text
            .lines()
            .map(|line| {
                maps::parse_line(line).ok_or_else(|| ProcessError::BadMaps {
                    pid: self.pid,
                    line: line.to_string(),
                })
            })
            .collect::<Result<_>>()?;
        *self.maps_cache.borrow_mut() = Some(maps.clone());
        Ok(maps)
    }

    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<()> {
        self.check_mapped(addr, buf.len())?;
        if buf.is_empty() {
            return Ok(());
        }
        let remote = [RemoteIoVec {
            base: addr as usize,
            len: buf.len(),
        }];
        let wanted = buf.len();
        match process_vm_readv(Pid::from_raw(self.pid as i32), &mut [IoSliceMut::new(buf)], &remote) {
            Ok(n) if n == wanted => return Ok(()),
            Err(nix::errno::Errno::ESRCH) => return Err(self.gone("reading its memory")),
            // Partial reads, EFAULT on PROT_NONE pages, or ENOSYS in some
            // sandboxes: /proc/PID/mem reads them (with FOLL_FORCE).
            _ => {}
        }
        let mem = self.mem(false, "reading its memory")?;
        mem.read_exact_at(buf, addr)
            .map_err(|e| self.io_error("reading its memory", &format!("reading {wanted} bytes at {addr:#x}"), e))
    }

    fn read_many(&self, parts: &mut [(u64, &mut [u8])]) -> Result<()> {
        // At most IOV_MAX (1024) vectors per call; any shortfall (a part
        // on a PROT_NONE page, a partial read) is read again one by one,
        // through the fallbacks of `read`.
        for chunk in parts.chunks_mut(1024) {
            for (addr, buf) in chunk.iter() {
                self.check_mapped(*addr, buf.len())?;
            }
            let remote: Vec<RemoteIoVec> = chunk
                .iter()
                .map(|(addr, buf)| RemoteIoVec {
                    base: *addr as usize,
                    len: buf.len(),
                })
                .collect();
            let wanted: usize = remote.iter().map(|r| r.len).sum();
            let mut local: Vec<IoSliceMut> = chunk.iter_mut().map(|(_, buf)| IoSliceMut::new(buf)).collect();
            match process_vm_readv(Pid::from_raw(self.pid as i32), &mut local, &remote) {
                Ok(n) if n == wanted => continue,
                Err(nix::errno::Errno::ESRCH) => return Err(self.gone("reading its memory")),
                _ => {}
            }
            drop(local);
            for (addr, buf) in chunk.iter_mut() {
                self.read(*addr, buf)?;
            }
        }
        Ok(())
    }

    fn write(&self, addr: u64, data: &[u8]) -> Result<()> {
        self.check_mapped(addr, data.len())?;
        let mut cached = self.mem_rw.borrow_mut();
        if cached.is_none() {
            *cached = Some(self.mem(true, "writing its memory")?);
        }
        let mem = cached.as_ref().expect("opened above");
        mem.write_all_at(data, addr).map_err(|e| {
            self.io_error(
                "writing its memory",
                &format!("writing {} bytes at {addr:#x}", data.len()),
                e,
            )
        })
    }

    fn exe(&self) -> Result<PathBuf> {
        std::fs::read_link(self.proc_path("exe")).map_err(|e| match e.kind() {
            ErrorKind::NotFound => self.gone("reading its executable link"),
            ErrorKind::PermissionDenied => self.permission_denied(),
            _ => self.io_error("reading its executable link", "reading /proc/PID/exe", e),
        })
    }

    fn mapped_file_paths(&self, mapping: &Mapping) -> Vec<PathBuf> {
        let mut paths = Vec::new();
        let strip = |p: &str| p.strip_suffix(" (deleted)").unwrap_or(p).to_string();
        if let Ok(exe) = std::fs::read_link(self.proc_path("exe")) {
            if strip(&exe.to_string_lossy()) == strip(&mapping.path) {
                paths.push(self.proc_path("exe"));
            }
        }
        paths.push(self.proc_path(&format!("map_files/{:x}-{:x}", mapping.start, mapping.end)));
        paths
    }

    fn start_time(&self) -> Result<u64> {
        let doing = "reading its start time";
        let stat = self.read_proc_file("stat", doing)?;
        match start_time_in(&stat) {
            Some(t) => Ok(t),
            None => Err(ProcessError::Io {
                pid: self.pid,
                what: "parsing /proc/PID/stat and /proc/stat btime".into(),
                cause: std::io::Error::new(ErrorKind::InvalidData, "no start time"),
            }),
        }
    }

    fn thread_positions(&self) -> Result<Vec<ThreadPosition>> {
        let mut tids = self.task_ids()?;
        tids.sort_unstable();
        Ok(tids
            .into_iter()
            .map(|tid| {
                let line =
                    crate::procfs::read_lossy(self.proc_path(&format!("task/{tid}/syscall"))).unwrap_or_default();
                (tid, threads::parse_syscall_position(&line), None)
            })
            .collect())
    }

    fn threads(&self) -> Result<Vec<ThreadInfo>> {
        let mut tids = self.task_ids()?;
        tids.sort_unstable();
        // A thread that exits between listing and reading its stat is
        // simply no longer one of the threads.
        let list: Vec<ThreadInfo> = tids
            .into_iter()
            .filter_map(|tid| {
                let stat = crate::procfs::read_lossy(self.proc_path(&format!("task/{tid}/stat"))).ok()?;
                threads::parse_stat(tid, &stat)
            })
            .collect();
        // Only zombies left: the process has exited and awaits its parent.
        if list.iter().all(|t| t.state.has_exited()) {
            return Err(self.gone("listing its threads"));
        }
        Ok(list)
    }

    fn stop(&self) -> Result<Box<dyn Stopped + '_>> {
        Ok(Box::new(self.stop_all()?))
    }

    fn stop_one(&self) -> Result<Box<dyn Stopped + '_>> {
        Ok(Box::new(LinuxStopped::attach_one(self)?))
    }
}

/// The start time (seconds since the Unix epoch) in a `/proc/PID/stat`
/// text: field 22, `starttime`, in clock ticks since boot (the 20th field
/// after the parenthesised command name), plus the boot time.
fn start_time_in(stat: &str) -> Option<u64> {
    let ticks: u64 = threads::stat_fields(stat).and_then(|(_, f)| f.get(19)?.parse().ok())?;
    // The boot time does not change: read once per relive (/proc/stat is
    // long, and every journal's owner is checked).
    static BOOT: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
    let boot = (*BOOT.get_or_init(|| {
        crate::procfs::read_lossy("/proc/stat")
            .ok()
            .and_then(|s| s.lines().find_map(|l| l.strip_prefix("btime ")?.trim().parse().ok()))
    }))?;
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .filter(|&hz| hz > 0)
        .unwrap_or(100) as u64;
    Some(boot + ticks / hz)
}

/// The parent of process `pid` (`/proc/PID/stat` field 4), `None` when
/// there is no such process or it has none (pid 1, a kernel thread).
pub fn parent_of(pid: u32) -> Option<u32> {
    let mut stat = Vec::new();
    crate::procfs::read_into(std::path::Path::new(&format!("/proc/{pid}/stat")), &mut stat).ok()?;
    threads::parent_in_stat(&stat).filter(|&p| p != 0)
}

/// When process `pid` started, `None` when there is no such process; an
/// error when that cannot be told.
pub fn started_at(pid: u32) -> std::io::Result<Option<u64>> {
    match crate::procfs::read_lossy(format!("/proc/{pid}/stat")) {
        Ok(stat) => start_time_in(&stat)
            .map(Some)
            .ok_or_else(|| std::io::Error::new(ErrorKind::InvalidData, "no start time in /proc/PID/stat")),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Whether a `/proc/PID/status` text's effective capabilities include
/// CAP_SYS_PTRACE (`None` when it names none).
fn has_sys_ptrace(status: &str) -> Option<bool> {
    const CAP_SYS_PTRACE: u32 = 19;
    let hex = status.lines().find_map(|l| l.strip_prefix("CapEff:"))?.trim();
    u64::from_str_radix(hex, 16)
        .ok()
        .map(|caps| caps & (1 << CAP_SYS_PTRACE) != 0)
}

/// Why the kernel refused root's ptrace access: CAP_SYS_PTRACE named as a
/// cause only when relive lacks it (a tree-sitter trial: said of a relive
/// that had it).
fn root_refused(has_sys_ptrace: Option<bool>) -> &'static str {
    match has_sys_ptrace {
        Some(true) => "the kernel refused ptrace access although relive runs as root with CAP_SYS_PTRACE: a security module (AppArmor, SELinux, a seccomp filter) forbids tracing this process, or it cannot be traced at all (a kernel thread, an init its sandbox protects)",
        _ => "the kernel refused ptrace access although relive runs as root: relive lacks CAP_SYS_PTRACE (a container started without it), or a security module (AppArmor, SELinux) forbids tracing this process",
    }
}

#[cfg(test)]
mod refusal_tests {
    use super::*;

    #[test]
    fn cap_sys_ptrace_is_named_only_when_relive_lacks_it() {
        let with = "Name:\trelive\nCapEff:\t000001fffeffffff\n";
        let without = "Name:\trelive\nCapEff:\t00000000a80425fb\n";
        assert_eq!(has_sys_ptrace(with), Some(true));
        assert_eq!(has_sys_ptrace(without), Some(false));
        assert_eq!(has_sys_ptrace("Name:\trelive\n"), None);
        assert!(!root_refused(Some(true)).contains("lacks CAP_SYS_PTRACE"));
        assert!(root_refused(Some(false)).contains("lacks CAP_SYS_PTRACE"));
        assert!(root_refused(None).contains("lacks CAP_SYS_PTRACE"));
    }
}
