//! The Linux backend: `/proc/PID/maps` for the address space,
//! `process_vm_readv` for reads (falling back to `/proc/PID/mem`), and
//! `pwrite` on `/proc/PID/mem` for writes, which the kernel performs with
//! FOLL_FORCE, so code pages that are mapped read-only can be patched.
//! (`process_vm_writev` honours page protections and cannot write `.text`.)

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, IoSliceMut};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::PathBuf;

use nix::sys::uio::{process_vm_readv, RemoteIoVec};
use nix::unistd::Pid;

use crate::error::{ProcessError, Result};
use crate::maps::{self, Mapping};
use crate::Process;

pub struct LinuxProcess {
    pid: u32,
}

impl LinuxProcess {
    /// Opens `pid`, checking that it exists and that we may access its
    /// memory (which `/proc/PID/mem` requires: ptrace access rights).
    pub fn open(pid: u32) -> Result<LinuxProcess> {
        let process = LinuxProcess { pid };
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

    /// The program's executable as the kernel sees it (`/proc/PID/exe`). For
    /// an APE started through its loader, this is the loader.
    pub fn exe(&self) -> Result<PathBuf> {
        std::fs::read_link(self.proc_path("exe"))
            .map_err(|e| self.io_error("reading its executable link", "reading /proc/PID/exe", e))
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

    fn gone(&self, doing: &'static str) -> ProcessError {
        ProcessError::Gone { pid: self.pid, doing }
    }

    /// An I/O failure while `doing` something; if the process has vanished
    /// meanwhile, that is the real cause and is reported instead.
    fn io_error(&self, doing: &'static str, what: &str, source: std::io::Error) -> ProcessError {
        if !self.proc_path("").exists() {
            return self.gone(doing);
        }
        ProcessError::Io {
            pid: self.pid,
            what: what.to_string(),
            source,
        }
    }

    /// Explains why access was refused: the target's owner, Yama's
    /// `ptrace_scope`, and whether we have CAP_SYS_PTRACE.
    fn permission_denied(&self) -> ProcessError {
        let our_uid = nix::unistd::geteuid().as_raw();
        let their_uid = std::fs::metadata(self.proc_path("")).map(|m| m.uid()).ok();
        let scope = std::fs::read_to_string("/proc/sys/kernel/yama/ptrace_scope")
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
        if why.is_empty() {
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

    fn maps(&self) -> Result<Vec<Mapping>> {
        let text = std::fs::read_to_string(self.proc_path("maps")).map_err(|e| match e.kind() {
            ErrorKind::NotFound => self.gone("reading its memory map"),
            ErrorKind::PermissionDenied => self.permission_denied(),
            _ => self.io_error("reading its memory map", "reading /proc/PID/maps", e),
        })?;
        text.lines()
            .map(|line| {
                maps::parse_line(line).ok_or_else(|| ProcessError::BadMaps {
                    pid: self.pid,
                    line: line.to_string(),
                })
            })
            .collect()
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

    fn write(&self, addr: u64, data: &[u8]) -> Result<()> {
        self.check_mapped(addr, data.len())?;
        let mem = self.mem(true, "writing its memory")?;
        mem.write_all_at(data, addr).map_err(|e| {
            self.io_error(
                "writing its memory",
                &format!("writing {} bytes at {addr:#x}", data.len()),
                e,
            )
        })
    }
}
