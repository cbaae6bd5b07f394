//! A process for unit tests: 32 bytes of memory at 0x1000 that a test
//! can make misbehave (a write that does not take) or leave empty (a
//! process that exited, whose memory nothing reads).

use std::cell::{Cell, RefCell};

use relive_process::{Mapping, Process, ProcessError, Stopped, ThreadInfo};

/// Memory at `base` whose writes may silently not take (a write to a
/// page the kernel refuses, or another writer in between).
pub(crate) struct Memory {
    pub(crate) base: u64,
    pub(crate) bytes: RefCell<Vec<u8>>,
    /// A byte changed after the next write: `(offset, value)`.
    tamper: Cell<Option<(usize, u8)>>,
    /// Writes that still take; after them every write fails (a relive
    /// killed there). `None`: all do.
    pub(crate) writes_left: Cell<Option<usize>>,
    /// What `maps` gives.
    pub(crate) mappings: Vec<Mapping>,
}

impl Memory {
    pub(crate) fn new(tamper: Option<(usize, u8)>) -> Memory {
        Memory {
            base: 0x1000,
            bytes: RefCell::new((0..32).collect()),
            tamper: Cell::new(tamper),
            writes_left: Cell::new(None),
            mappings: Vec::new(),
        }
    }

    /// Memory that cannot be read: a process that exited as relive
    /// patched it.
    pub(crate) fn unreadable() -> Memory {
        Memory {
            base: 0x1000,
            bytes: RefCell::new(Vec::new()),
            tamper: Cell::new(None),
            writes_left: Cell::new(None),
            mappings: Vec::new(),
        }
    }

    /// `len` zero bytes at `base`.
    pub(crate) fn zeroed(base: u64, len: usize) -> Memory {
        Memory {
            base,
            bytes: RefCell::new(vec![0; len]),
            tamper: Cell::new(None),
            writes_left: Cell::new(None),
            mappings: Vec::new(),
        }
    }

    fn range(&self, addr: u64, len: usize) -> relive_process::Result<std::ops::Range<usize>> {
        let start = addr.checked_sub(self.base).map(|o| o as usize);
        match start {
            Some(s) if s + len <= self.bytes.borrow().len() => Ok(s..s + len),
            _ => Err(ProcessError::NotMapped { pid: 7, addr, len }),
        }
    }
}

impl Process for Memory {
    fn pid(&self) -> u32 {
        7
    }
    fn maps(&self) -> relive_process::Result<Vec<Mapping>> {
        Ok(self.mappings.clone())
    }
    fn read(&self, addr: u64, buf: &mut [u8]) -> relive_process::Result<()> {
        let r = self.range(addr, buf.len())?;
        buf.copy_from_slice(&self.bytes.borrow()[r]);
        Ok(())
    }
    fn write(&self, addr: u64, data: &[u8]) -> relive_process::Result<()> {
        if let Some(left) = self.writes_left.get() {
            if left == 0 {
                return Err(ProcessError::Gone {
                    pid: 7,
                    doing: "testing",
                });
            }
            self.writes_left.set(Some(left - 1));
        }
        let r = self.range(addr, data.len())?;
        let mut bytes = self.bytes.borrow_mut();
        bytes[r.clone()].copy_from_slice(data);
        if let Some((k, v)) = self.tamper.take() {
            bytes[r.start + k] = v;
        }
        Ok(())
    }
    fn exe(&self) -> relive_process::Result<std::path::PathBuf> {
        Err(ProcessError::Gone {
            pid: 7,
            doing: "testing",
        })
    }
    fn start_time(&self) -> relive_process::Result<u64> {
        Ok(0)
    }
    fn threads(&self) -> relive_process::Result<Vec<ThreadInfo>> {
        Ok(Vec::new())
    }
    fn stop(&self) -> relive_process::Result<Box<dyn Stopped + '_>> {
        Err(ProcessError::Gone {
            pid: 7,
            doing: "testing",
        })
    }
}
