//! A process held in memory: a copy of a real one's mappings, bytes and
//! thread registers, behind the same [`Process`]/[`Stopped`] traits, that
//! fails on request.
//!
//! Why: every step of a patch can fail in a real process (a write refused,
//! a remote `mmap` or `mprotect` failing, a thread that will not stop), and
//! each failure must leave the process exactly as it was. Real processes
//! cannot be made to fail at a chosen step, and their memory cannot be
//! compared byte for byte before and after while they run. A copy can:
//! tests arm one [`Fault`] (the n-th call of one [`Op`]), run the patch
//! engine against the copy, and compare its [`Memory`] with the state
//! before. Built only with the `simulated` feature (tests enable it).
//!
//! It models what the patch engine relies on, as Linux does it: writes go
//! through read-only pages (as `/proc/PID/mem` does), `map_fixed` never
//! replaces a mapping, `mprotect` and `munmap` split mappings, and a read
//! or write touching an unmapped or unreadable byte fails and writes
//! nothing. Remote calls ([`Stopped::call`]) are not modelled.

use std::path::PathBuf;
use std::sync::Mutex;

use crate::{CallOutcome, Mapping, Process, ProcessError, Protection, Registers, Result, Stopped, ThreadInfo};

/// An operation of the process that a test can make fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    Write,
    Stop,
    SetRegisters,
    MapFixed,
    Protect,
    Unmap,
}

impl Op {
    pub const ALL: [Op; 6] = [
        Op::Write,
        Op::Stop,
        Op::SetRegisters,
        Op::MapFixed,
        Op::Protect,
        Op::Unmap,
    ];

    fn index(self) -> usize {
        self as usize
    }
}

/// Fail the `nth` call (counting from 0) of `op`, once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fault {
    pub op: Op,
    pub nth: usize,
}

/// One mapping and its bytes (`None`: not readable, as a guard page).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Region {
    pub mapping: Mapping,
    pub bytes: Option<Vec<u8>>,
}

/// Everything a patch may change: the mappings with their bytes, and each
/// thread's registers. Two equal values are two identical processes as far
/// as relive can tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Memory {
    pub regions: Vec<Region>,
    pub threads: Vec<(u32, Registers)>,
}

impl Memory {
    /// What differs from `other`, in words, for a test's failure message:
    /// the first differing byte of each region, mappings present in one
    /// only, registers changed.
    pub fn differences(&self, other: &Memory) -> Vec<String> {
        let mut out = Vec::new();
        for r in &self.regions {
            match other.regions.iter().find(|o| o.mapping.start == r.mapping.start) {
                None => out.push(format!(
                    "{:#x}..{:#x} is mapped only in the first",
                    r.mapping.start, r.mapping.end
                )),
                Some(o) if o.mapping != r.mapping => {
                    out.push(format!("mapping {:?} is now {:?}", r.mapping, o.mapping))
                }
                Some(o) if o.bytes != r.bytes => {
                    let (a, b) = (r.bytes.as_deref().unwrap_or(&[]), o.bytes.as_deref().unwrap_or(&[]));
                    let at = a
                        .iter()
                        .zip(b)
                        .position(|(x, y)| x != y)
                        .unwrap_or(a.len().min(b.len()));
                    out.push(format!(
                        "bytes differ at {:#x} ({})",
                        r.mapping.start + at as u64,
                        r.mapping.path
                    ));
                }
                Some(_) => {}
            }
        }
        for o in &other.regions {
            if !self.regions.iter().any(|r| r.mapping.start == o.mapping.start) {
                out.push(format!(
                    "{:#x}..{:#x} is mapped only in the second",
                    o.mapping.start, o.mapping.end
                ));
            }
        }
        if self.threads != other.threads {
            out.push("thread registers differ".into());
        }
        out
    }
}

struct State {
    memory: Memory,
    calls: [usize; Op::ALL.len()],
    fault: Option<Fault>,
    fired: bool,
}

/// A process held in memory (see the module documentation).
pub struct SimulatedProcess {
    pid: u32,
    start_time: u64,
    exe: PathBuf,
    state: Mutex<State>,
}

impl SimulatedProcess {
    /// Copies `process`: its mappings, the bytes of every readable one,
    /// and (stopping it for the moment) its threads' registers. The copy
    /// keeps the real pid and start time, so journals written for it are
    /// those of a live process and are not cleaned away as stale.
    pub fn copy_of(process: &dyn Process) -> Result<SimulatedProcess> {
        let stopped = process.stop()?;
        let mut threads = Vec::new();
        for tid in stopped.thread_ids() {
            threads.push((tid, stopped.registers(tid)?));
        }
        let mut regions = Vec::new();
        for mapping in process.maps()? {
            let mut buf = vec![0u8; (mapping.end - mapping.start) as usize];
            // What cannot be read (`[vvar]`, `[vsyscall]`) stays unreadable.
            let bytes = (mapping.readable() && process.read(mapping.start, &mut buf).is_ok()).then_some(buf);
            regions.push(Region { mapping, bytes });
        }
        stopped.resume()?;
        Ok(SimulatedProcess {
            pid: process.pid(),
            start_time: process.start_time()?,
            exe: process.exe()?,
            state: Mutex::new(State {
                memory: Memory { regions, threads },
                calls: [0; Op::ALL.len()],
                fault: None,
                fired: false,
            }),
        })
    }

    /// Another process with this one's memory, calls not counted, no
    /// fault armed: a fresh start for the next trial.
    pub fn duplicate(&self) -> SimulatedProcess {
        SimulatedProcess {
            pid: self.pid,
            start_time: self.start_time,
            exe: self.exe.clone(),
            state: Mutex::new(State {
                memory: self.memory(),
                calls: [0; Op::ALL.len()],
                fault: None,
                fired: false,
            }),
        }
    }

    /// Adds a thread with `registers` (a thread a test places where it
    /// wants one, such as inside the bytes a redirect overwrites); its id.
    pub fn add_thread(&self, registers: Registers) -> u32 {
        let mut state = self.lock();
        let tid = state.memory.threads.iter().map(|(t, _)| *t).max().unwrap_or(0) + 1;
        state.memory.threads.push((tid, registers));
        tid
    }

    /// Arms `fault`; it fires once.
    pub fn fail(&self, fault: Fault) {
        let mut state = self.lock();
        state.fault = Some(fault);
        state.fired = false;
    }

    /// Whether the armed fault has fired.
    pub fn fired(&self) -> bool {
        self.lock().fired
    }

    /// How many times `op` was called.
    pub fn calls(&self, op: Op) -> usize {
        self.lock().calls[op.index()]
    }

    /// The process's state now.
    pub fn memory(&self) -> Memory {
        self.lock().memory.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A test that panicked while holding the lock has failed already.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts a call of `op`; the error to return if the armed fault is
    /// this call.
    fn enter(&self, op: Op) -> Result<()> {
        let mut state = self.lock();
        let n = state.calls[op.index()];
        state.calls[op.index()] += 1;
        if state.fault == Some(Fault { op, nth: n }) && !state.fired {
            state.fired = true;
            return Err(ProcessError::Io {
                pid: self.pid,
                what: format!("simulated failure of {op:?} call {n}"),
                cause: std::io::Error::other("injected"),
            });
        }
        Ok(())
    }

    fn not_mapped(&self, addr: u64, len: usize) -> ProcessError {
        ProcessError::NotMapped {
            pid: self.pid,
            addr,
            len,
        }
    }
}

/// The readable regions' slices covering `[addr, addr + len)`, as
/// `(region index, offset in it, length)`; `None` if any byte is unmapped
/// or unreadable.
fn pieces(regions: &[Region], addr: u64, len: usize) -> Option<Vec<(usize, usize, usize)>> {
    let end = addr.checked_add(len as u64)?;
    let mut out = Vec::new();
    let mut at = addr;
    while at < end {
        let i = regions.iter().position(|r| r.mapping.contains(at))?;
        regions[i].bytes.as_ref()?;
        let upto = end.min(regions[i].mapping.end);
        out.push((i, (at - regions[i].mapping.start) as usize, (upto - at) as usize));
        at = upto;
    }
    Some(out)
}

fn perms(prot: Protection) -> String {
    let flag = |on: bool, c: char| if on { c } else { '-' };
    format!(
        "{}{}{}p",
        flag(prot.read, 'r'),
        flag(prot.write, 'w'),
        flag(prot.exec, 'x')
    )
}

/// Splits the regions so that `at` starts one (if it falls inside one).
fn split_at(regions: &mut Vec<Region>, at: u64) {
    let Some(i) = regions.iter().position(|r| r.mapping.start < at && at < r.mapping.end) else {
        return;
    };
    let cut = (at - regions[i].mapping.start) as usize;
    let mut upper = regions[i].clone();
    upper.mapping.start = at;
    if upper.mapping.inode != 0 {
        upper.mapping.offset += cut as u64;
    }
    upper.bytes = regions[i].bytes.as_mut().map(|b| b.split_off(cut));
    regions[i].mapping.end = at;
    regions.insert(i + 1, upper);
}

impl Process for SimulatedProcess {
    fn pid(&self) -> u32 {
        self.pid
    }

    fn maps(&self) -> Result<Vec<Mapping>> {
        Ok(self.lock().memory.regions.iter().map(|r| r.mapping.clone()).collect())
    }

    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<()> {
        let state = self.lock();
        let regions = &state.memory.regions;
        let parts = pieces(regions, addr, buf.len()).ok_or_else(|| self.not_mapped(addr, buf.len()))?;
        let mut done = 0;
        for (i, offset, len) in parts {
            let bytes = regions[i].bytes.as_deref().unwrap_or_default();
            buf[done..done + len].copy_from_slice(&bytes[offset..offset + len]);
            done += len;
        }
        Ok(())
    }

    fn write(&self, addr: u64, data: &[u8]) -> Result<()> {
        self.enter(Op::Write)?;
        let mut state = self.lock();
        let regions = &mut state.memory.regions;
        let parts = pieces(regions, addr, data.len()).ok_or_else(|| self.not_mapped(addr, data.len()))?;
        let mut done = 0;
        for (i, offset, len) in parts {
            if let Some(bytes) = regions[i].bytes.as_mut() {
                bytes[offset..offset + len].copy_from_slice(&data[done..done + len]);
            }
            done += len;
        }
        Ok(())
    }

    fn exe(&self) -> Result<PathBuf> {
        Ok(self.exe.clone())
    }

    fn start_time(&self) -> Result<u64> {
        Ok(self.start_time)
    }

    fn threads(&self) -> Result<Vec<ThreadInfo>> {
        Ok(self
            .lock()
            .memory
            .threads
            .iter()
            .map(|(tid, _)| ThreadInfo {
                tid: *tid,
                state: crate::ThreadState::Sleeping,
                name: "simulated".into(),
            })
            .collect())
    }

    fn stop(&self) -> Result<Box<dyn Stopped + '_>> {
        self.enter(Op::Stop)?;
        Ok(Box::new(SimulatedStop { process: self }))
    }
}

/// The simulated process with its threads "stopped": nothing runs in a
/// simulation, so this only gives access to registers and mappings.
struct SimulatedStop<'p> {
    process: &'p SimulatedProcess,
}

impl Stopped for SimulatedStop<'_> {
    fn thread_ids(&self) -> Vec<u32> {
        self.process.lock().memory.threads.iter().map(|(tid, _)| *tid).collect()
    }

    fn registers(&self, tid: u32) -> Result<Registers> {
        let state = self.process.lock();
        state
            .memory
            .threads
            .iter()
            .find(|(t, _)| *t == tid)
            .map(|(_, regs)| *regs)
            .ok_or(ProcessError::NoSuchThread {
                pid: self.process.pid,
                tid,
            })
    }

    fn set_registers(&mut self, tid: u32, regs: &Registers) -> Result<()> {
        self.process.enter(Op::SetRegisters)?;
        let pid = self.process.pid;
        let mut state = self.process.lock();
        let slot = state
            .memory
            .threads
            .iter_mut()
            .find(|(t, _)| *t == tid)
            .ok_or(ProcessError::NoSuchThread { pid, tid })?;
        slot.1 = *regs;
        Ok(())
    }

    fn map_fixed(&mut self, addr: u64, len: u64, prot: Protection) -> Result<Option<u64>> {
        self.process.enter(Op::MapFixed)?;
        let end = addr
            .checked_add(len)
            .ok_or_else(|| self.process.not_mapped(addr, len as usize))?;
        let mut state = self.process.lock();
        let regions = &mut state.memory.regions;
        if len == 0
            || !addr.is_multiple_of(4096)
            || regions.iter().any(|r| r.mapping.start < end && addr < r.mapping.end)
        {
            return Ok(None);
        }
        let at = regions.partition_point(|r| r.mapping.start < addr);
        regions.insert(
            at,
            Region {
                mapping: Mapping {
                    start: addr,
                    end,
                    perms: perms(prot),
                    offset: 0,
                    dev: "00:00".into(),
                    inode: 0,
                    path: String::new(),
                },
                bytes: Some(vec![0; len as usize]),
            },
        );
        Ok(Some(addr))
    }

    fn protect(&mut self, addr: u64, len: u64, prot: Protection) -> Result<()> {
        self.process.enter(Op::Protect)?;
        let end = addr.saturating_add(len);
        let mut state = self.process.lock();
        let regions = &mut state.memory.regions;
        // mprotect fails (ENOMEM) when part of the range is unmapped, and
        // then changes nothing.
        if !crate::maps::covers(
            &regions.iter().map(|r| r.mapping.clone()).collect::<Vec<_>>(),
            addr,
            len as usize,
        ) {
            return Err(self.process.not_mapped(addr, len as usize));
        }
        split_at(regions, addr);
        split_at(regions, end);
        for r in regions
            .iter_mut()
            .filter(|r| addr <= r.mapping.start && r.mapping.end <= end)
        {
            r.mapping.perms = perms(prot);
            if r.bytes.is_none() && prot.read {
                r.bytes = Some(vec![0; (r.mapping.end - r.mapping.start) as usize]);
            }
        }
        Ok(())
    }

    fn unmap(&mut self, addr: u64, len: u64) -> Result<()> {
        self.process.enter(Op::Unmap)?;
        let end = addr.saturating_add(len);
        let mut state = self.process.lock();
        let regions = &mut state.memory.regions;
        split_at(regions, addr);
        split_at(regions, end);
        regions.retain(|r| !(addr <= r.mapping.start && r.mapping.end <= end));
        Ok(())
    }

    fn call(&mut self, addr: u64, args: &[u64], _timeout: std::time::Duration) -> Result<CallOutcome> {
        let _ = (addr, args);
        Err(ProcessError::Unsupported {
            what: "calling a function in a simulated process",
        })
    }

    fn resume(self: Box<Self>) -> Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn region(start: u64, end: u64, perms: &str, fill: u8) -> Region {
        Region {
            mapping: Mapping {
                start,
                end,
                perms: perms.into(),
                offset: 0,
                dev: "00:00".into(),
                inode: 0,
                path: String::new(),
            },
            bytes: Some(vec![fill; (end - start) as usize]),
        }
    }

    fn simulated(regions: Vec<Region>) -> SimulatedProcess {
        SimulatedProcess {
            pid: 1,
            start_time: 0,
            exe: PathBuf::from("/bin/true"),
            state: Mutex::new(State {
                memory: Memory {
                    regions,
                    threads: vec![(1, Registers::default())],
                },
                calls: [0; Op::ALL.len()],
                fault: None,
                fired: false,
            }),
        }
    }

    #[test]
    fn writes_cross_adjacent_mappings_and_fail_whole_on_a_gap() {
        let p = simulated(vec![
            region(0x1000, 0x2000, "r-xp", 1),
            region(0x2000, 0x3000, "rw-p", 2),
        ]);
        p.write(0x1ffe, &[9, 9, 9, 9]).unwrap();
        let mut buf = [0u8; 6];
        p.read(0x1ffd, &mut buf).unwrap();
        assert_eq!(buf, [1, 9, 9, 9, 9, 2]);
        let before = p.memory();
        assert!(matches!(p.write(0x2ffe, &[7; 4]), Err(ProcessError::NotMapped { .. })));
        assert_eq!(p.memory(), before, "a failed write wrote nothing");
    }

    #[test]
    fn map_fixed_never_replaces_and_protect_and_unmap_split() {
        let p = simulated(vec![region(0x1000, 0x2000, "r-xp", 1)]);
        let mut s = p.stop().unwrap();
        assert_eq!(s.map_fixed(0x1000, 0x1000, Protection::READ).unwrap(), None);
        assert_eq!(
            s.map_fixed(0x4000, 0x3000, Protection::READ_WRITE).unwrap(),
            Some(0x4000)
        );
        s.protect(0x5000, 0x1000, Protection::READ_EXEC).unwrap();
        let maps = p.maps().unwrap();
        let spans: Vec<_> = maps.iter().map(|m| (m.start, m.end, m.perms.as_str())).collect();
        assert_eq!(
            spans,
            [
                (0x1000, 0x2000, "r-xp"),
                (0x4000, 0x5000, "rw-p"),
                (0x5000, 0x6000, "r-xp"),
                (0x6000, 0x7000, "rw-p")
            ]
        );
        assert!(
            s.protect(0x3000, 0x2000, Protection::READ).is_err(),
            "a hole fails mprotect"
        );
        s.unmap(0x4800, 0x1000).unwrap();
        let starts: Vec<_> = p.maps().unwrap().iter().map(|m| (m.start, m.end)).collect();
        assert_eq!(
            starts,
            [(0x1000, 0x2000), (0x4000, 0x4800), (0x5800, 0x6000), (0x6000, 0x7000)]
        );
    }

    #[test]
    fn an_armed_fault_fails_that_call_once() {
        let p = simulated(vec![region(0x1000, 0x2000, "rw-p", 0)]);
        p.fail(Fault { op: Op::Write, nth: 1 });
        p.write(0x1000, &[1]).unwrap();
        assert!(p.write(0x1001, &[2]).is_err());
        assert!(p.fired());
        p.write(0x1002, &[3]).unwrap();
        assert_eq!(p.calls(Op::Write), 3);
        let mut buf = [0u8; 3];
        p.read(0x1000, &mut buf).unwrap();
        assert_eq!(buf, [1, 0, 3]);
    }
}
