//! A thread's frames, walked by the call frame information (`.eh_frame`)
//! of the modules its code is in, as the running process has it in memory.
//!
//! Why: telling which functions a thread is running by scanning its
//! stack for words that look like return addresses also finds stale ones
//! (a local variable's uninitialized bytes that held a return address of
//! a call that ended long ago). A bc trial's `execute` was said to be
//! running, its call to "finish in the old code", by `patch`, `verify` and
//! `status`, while the thread sat in `read` under the parser. Walked by
//! the unwind tables, only the frames that are there count.
//!
//! The tables are read from the process's memory (the module's program
//! headers, its `.eh_frame_hdr` and `.eh_frame`), not from the files, which
//! a rebuild may have replaced. A walk that meets anything it cannot
//! follow (code in relive's pools or in anonymous memory, a rule it does
//! not evaluate, a register it does not know) gives no answer, and the
//! caller falls back to the scan. Every byte read is treated as hostile:
//! sizes are capped and every address is checked.

use std::cell::RefCell;
use std::rc::Rc;

use foldhash::{HashMap, HashMapExt};
use gimli::{
    BaseAddresses, CfaRule, EhFrame, EhFrameHdr, LittleEndian, Pointer, RegisterRule, UnwindContext, UnwindSection,
    X86_64,
};

use relive_process::{Mapping, Process};

/// Frames followed at most (a corrupt stack may loop).
const MAX_FRAMES: usize = 512;
/// The most bytes of a module's `.eh_frame_hdr` and `.eh_frame` read.
const MAX_HDR: u64 = 4 << 20;
const MAX_EH_FRAME: u64 = 32 << 20;
/// `PT_LOAD` and `PT_GNU_EH_FRAME`.
const PT_LOAD: u32 = 1;
const PT_GNU_EH_FRAME: u32 = 0x6474_e550;

/// One module's unwind tables, as the process has them.
struct ModuleTables {
    bases: BaseAddresses,
    hdr: Vec<u8>,
    eh_frame: Vec<u8>,
}

/// The unwind table of one patch in relive's pools (no search index: a
/// few entries, searched in turn).
struct PoolTable {
    bases: BaseAddresses,
    eh_frame: Vec<u8>,
}

/// What a frame's row of the tables says: how to find its CFA, its
/// return address and the caller's `rbp`.
type Rules = (CfaRule<usize>, RegisterRule<usize>, RegisterRule<usize>);

/// Walks the threads of one process, reading each module's tables once.
pub(crate) struct StackWalker<'p> {
    process: &'p dyn Process,
    maps: &'p [Mapping],
    /// By the start of the module's first mapping; `None`: it has none
    /// that can be read.
    modules: RefCell<HashMap<u64, Option<Rc<ModuleTables>>>>,
    /// Where the unwind tables of relive's patches are in the process
    /// (`.eh_frame` address and length, from the journal), and their bytes
    /// once read: a thread in a patch's code (a function patched earlier,
    /// running its new code) is walked through them (a bc trial: the walk
    /// stopped there, and a stale word above made `execute` "running").
    pool_frames: &'p [(u64, u64)],
    pool_tables: RefCell<Option<Rc<Vec<PoolTable>>>>,
}

impl<'p> StackWalker<'p> {
    pub(crate) fn new(process: &'p dyn Process, maps: &'p [Mapping], pool_frames: &'p [(u64, u64)]) -> Self {
        StackWalker {
            process,
            maps,
            modules: RefCell::new(HashMap::new()),
            pool_frames,
            pool_tables: RefCell::new(None),
        }
    }

    /// Where the return address of each of the frames of a thread at `pc`
    /// with stack pointer `sp` is kept on its stack, innermost first, when
    /// the walk reaches the thread's outermost frame (`_start`, a thread's
    /// start, whose return address the tables say is undefined); `None`
    /// when any frame cannot be followed.
    /// `stack`: the thread's stack bytes already read, from the address
    /// given on (words in it are not read again, one system call each).
    /// `frame_pointer`: its `rbp`, where its registers were read.
    fn return_slots(&self, pc: u64, sp: u64, frame_pointer: Option<u64>, stack: (u64, &[u8])) -> Option<Vec<u64>> {
        let word = |addr: u64| {
            let at = addr.checked_sub(stack.0).and_then(|d| usize::try_from(d).ok());
            match at.and_then(|at| stack.1.get(at..at.checked_add(8)?)) {
                Some(bytes) => Some(u64::from_le_bytes(bytes.try_into().expect("8 bytes"))),
                None => self.word(addr),
            }
        };
        let mut context = Box::new(UnwindContext::new());
        let (mut pc, mut sp, mut rbp) = (pc, sp, frame_pointer);
        let mut slots = Vec::new();
        for depth in 0..MAX_FRAMES {
            // A caller's return address is just past its call: the call
            // itself is the byte before (the next function may start at
            // the return address, after a call that never returns).
            let at = if depth == 0 { pc } else { pc.checked_sub(1)? };
            let (cfa_rule, return_rule, rbp_rule) = self.rules_at(pc, at, &mut context)?;
            let cfa = match cfa_rule {
                CfaRule::RegisterAndOffset { register, offset } => {
                    let base = match register {
                        X86_64::RSP => sp,
                        X86_64::RBP => rbp?,
                        _ => return None,
                    };
                    base.checked_add_signed(offset)?
                }
                CfaRule::Expression(_) => return None,
            };
            let return_address = match return_rule {
                RegisterRule::Offset(n) => {
                    let slot = cfa.checked_add_signed(n)?;
                    slots.push(slot);
                    word(slot)?
                }
                // The outermost frame: nothing returns from it.
                RegisterRule::Undefined => return Some(slots),
                _ => return None,
            };
            rbp = match rbp_rule {
                RegisterRule::Offset(n) => Some(word(cfa.checked_add_signed(n)?)?),
                RegisterRule::Undefined | RegisterRule::SameValue => rbp,
                _ => None,
            };
            if return_address == 0 {
                return Some(slots);
            }
            (pc, sp) = (return_address, cfa);
        }
        None
    }

    /// The rules of the row for address `at` of the code `pc` is in: in
    /// a module's tables, else in a patch's.
    fn rules_at(&self, pc: u64, at: u64, context: &mut UnwindContext<usize>) -> Option<Rules> {
        let rules = |row: &gimli::UnwindTableRow<usize>| {
            (row.cfa().clone(), row.register(X86_64::RA), row.register(X86_64::RBP))
        };
        if let Some(module) = self.module_of(pc) {
            let hdr = EhFrameHdr::new(&module.hdr, LittleEndian)
                .parse(&module.bases, 8)
                .ok()?;
            let eh_frame = EhFrame::new(&module.eh_frame, LittleEndian);
            let row = hdr
                .table()?
                .unwind_info_for_address(&eh_frame, &module.bases, context, at, EhFrame::cie_from_offset)
                .ok()?;
            return Some(rules(row));
        }
        for table in self.pool_tables().iter() {
            let eh_frame = EhFrame::new(&table.eh_frame, LittleEndian);
            let Ok(fde) = eh_frame.fde_for_address(&table.bases, at, EhFrame::cie_from_offset) else {
                continue;
            };
            let row = fde.unwind_info_for_address(&eh_frame, &table.bases, context, at).ok()?;
            return Some(rules(row));
        }
        None
    }

    /// The patches' unwind tables, read once.
    fn pool_tables(&self) -> Rc<Vec<PoolTable>> {
        if let Some(read) = self.pool_tables.borrow().as_ref() {
            return read.clone();
        }
        let tables: Vec<PoolTable> = self
            .pool_frames
            .iter()
            .filter_map(|&(addr, len)| {
                let mut eh_frame = vec![0u8; len.min(MAX_EH_FRAME) as usize];
                self.process.read(addr, &mut eh_frame).ok()?;
                Some(PoolTable {
                    bases: BaseAddresses::default().set_eh_frame(addr),
                    eh_frame,
                })
            })
            .collect();
        let tables = Rc::new(tables);
        *self.pool_tables.borrow_mut() = Some(tables.clone());
        tables
    }

    fn word(&self, addr: u64) -> Option<u64> {
        let mut bytes = [0u8; 8];
        self.process.read(addr, &mut bytes).ok()?;
        Some(u64::from_le_bytes(bytes))
    }

    /// The tables of the module whose code `pc` is in.
    fn module_of(&self, pc: u64) -> Option<Rc<ModuleTables>> {
        let code = self.maps.iter().find(|m| m.contains(pc) && m.executable())?;
        // File-backed or the vDSO; not anonymous memory (relive's pools,
        // a JIT's code).
        if code.path.is_empty() || (code.path.starts_with('[') && code.path != "[vdso]") {
            return None;
        }
        let first = self
            .maps
            .iter()
            .filter(|m| m.path == code.path && m.inode == code.inode && m.offset == 0 && m.start <= code.start)
            .max_by_key(|m| m.start)?;
        if let Some(known) = self.modules.borrow().get(&first.start) {
            return known.clone();
        }
        let tables = self.read_tables(first.start).map(Rc::new);
        self.modules.borrow_mut().insert(first.start, tables.clone());
        tables
    }

    /// A module's unwind tables, from its ELF header at `base` (where its
    /// first mapping starts) on.
    fn read_tables(&self, base: u64) -> Option<ModuleTables> {
        let mut header = [0u8; 64];
        self.process.read(base, &mut header).ok()?;
        // A 64-bit little-endian ELF file.
        if header[..4] != *b"\x7fELF" || header[4] != 2 || header[5] != 1 {
            return None;
        }
        let u16_at = |b: &[u8], at: usize| b.get(at..at + 2).map(|s| u16::from_le_bytes([s[0], s[1]]));
        let u32_at = |b: &[u8], at: usize| b.get(at..at + 4).map(|s| u32::from_le_bytes(s.try_into().expect("4")));
        let u64_at = |b: &[u8], at: usize| b.get(at..at + 8).map(|s| u64::from_le_bytes(s.try_into().expect("8")));
        let phoff = u64_at(&header, 0x20)?;
        let (entry_size, count) = (u16_at(&header, 0x36)? as usize, u16_at(&header, 0x38)? as usize);
        if entry_size < 56 || count == 0 || count > 256 {
            return None;
        }
        let mut headers = vec![0u8; entry_size * count];
        self.process.read(base.checked_add(phoff)?, &mut headers).ok()?;
        let (mut lowest, mut eh) = (None::<u64>, None::<(u64, u64)>);
        for h in headers.chunks_exact(entry_size) {
            let (kind, vaddr, memsz) = (u32_at(h, 0)?, u64_at(h, 0x10)?, u64_at(h, 0x28)?);
            match kind {
                PT_LOAD => lowest = Some(lowest.map_or(vaddr, |l| l.min(vaddr))),
                PT_GNU_EH_FRAME => eh = Some((vaddr, memsz)),
                _ => {}
            }
        }
        let bias = base.checked_sub(lowest? & !0xfff)?;
        let (hdr_vaddr, hdr_size) = eh?;
        let hdr_addr = bias.checked_add(hdr_vaddr)?;
        let mut hdr = vec![0u8; hdr_size.min(MAX_HDR) as usize];
        self.process.read(hdr_addr, &mut hdr).ok()?;
        let bases = BaseAddresses::default().set_eh_frame_hdr(hdr_addr);
        let eh_frame_addr = match EhFrameHdr::new(&hdr, LittleEndian)
            .parse(&bases, 8)
            .ok()?
            .eh_frame_ptr()
        {
            Pointer::Direct(addr) => addr,
            Pointer::Indirect(_) => return None,
        };
        // To the end of its mapping: the header does not say its length.
        let holding = self.maps.iter().find(|m| m.contains(eh_frame_addr))?;
        let len = holding.end.saturating_sub(eh_frame_addr).min(MAX_EH_FRAME);
        let mut eh_frame = vec![0u8; len as usize];
        self.process.read(eh_frame_addr, &mut eh_frame).ok()?;
        Some(ModuleTables {
            bases: bases.set_eh_frame(eh_frame_addr),
            hdr,
            eh_frame,
        })
    }
}

impl StackWalker<'_> {
    /// What a scan for return addresses should see of the stack of a
    /// thread at `pc`, `sp` (its bytes `words` from `from` up) where the
    /// unwind tables walk the whole stack: only the words holding its
    /// frames' return addresses, each with where it is, in stack order.
    /// `None` where the walk gives up (the scan then sees every word).
    pub(crate) fn frame_words(
        &self,
        pc: u64,
        sp: u64,
        frame_pointer: Option<u64>,
        from: u64,
        words: &[u8],
    ) -> Option<Vec<(u64, u64)>> {
        let slots = self.return_slots(pc, sp, frame_pointer, (from, words))?;
        Some(only_slots(from, words, &slots))
    }
}

/// The words of `words` (a thread's stack bytes from `from` up) at
/// `slots`, each with its address, in stack order: what a scan for
/// return addresses should see of a stack whose frames are known (a copy
/// of the stack with the other words zeroed cost a fresh page fault per
/// stack page, for a few words).
fn only_slots(from: u64, words: &[u8], slots: &[u64]) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = slots
        .iter()
        .filter(|&&slot| slot >= from && (slot - from).is_multiple_of(8))
        .filter_map(|&slot| {
            let at = usize::try_from(slot - from).ok()?;
            let value = words.get(at..at.checked_add(8)?)?;
            Some((slot, u64::from_le_bytes(value.try_into().expect("8 bytes"))))
        })
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::only_slots;

    #[test]
    fn only_the_slots_of_known_frames_are_kept() {
        let words: Vec<u8> = (1u64..=4).flat_map(|v| v.to_le_bytes()).collect();
        let kept = only_slots(0x1000, &words, &[0x1018, 0x1008, 0x0ff8, 0x1003, 0x2000, 0x1008]);
        assert_eq!(kept, [(0x1008, 2), (0x1018, 4)]);
    }
}
