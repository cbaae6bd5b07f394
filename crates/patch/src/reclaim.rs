//! Freeing patch pools nothing uses any more. Which ones: no patch record
//! runs code there (a slot, or a generation that runs or that `revert
//! --last` can go back to), and no stopped thread's register or word of
//! writable memory points in. How: their unwind tables back from the
//! unwinder, their symbol files off the debuggers' list, then unmapped,
//! the journal's new state written ahead. A revert frees the pools of
//! what it took back; a patch that had to map a new pool frees those that
//! only superseded generations fill, so a function patched again and
//! again does not grow the process without end.

use std::time::{Duration, Instant};

use relive_process::maps::Mapping;
use relive_process::{Process, Stopped};
use serde::Serialize;

use crate::error::Result;
use crate::journal::{self, AddedRecord, PatchRecord, RegionRecord};
use crate::target::Target;

/// A pool relive did not free, and the reference that keeps it.
#[derive(Debug, Clone, Serialize)]
pub struct KeptRegion {
    #[serde(flatten)]
    pub region: RegionRecord,
    /// What points into it: a thread's register, or a word of writable
    /// memory (its address and mapping), in words.
    pub why: String,
}

/// Whether recorded patches may still run code of `r`: it holds a patch's
/// jump slot, or the code or entry of a generation that runs now or that
/// `revert --last` can go back to (the histories must be loaded: see
/// [`journal::Journal::load_history`]).
pub(crate) fn holds_generation(r: &RegionRecord, patches: &[PatchRecord]) -> bool {
    patches.iter().any(|p| {
        r.contains(p.slot)
            || r.contains(p.current_addr)
            || p.history.iter().any(|g| r.contains(g.code) || r.contains(g.slot_value))
    })
}

/// Whether `r` holds what a patch added: later patches' code calls those
/// functions and reads those variables at these addresses.
fn holds_added(r: &RegionRecord, added: &[AddedRecord]) -> bool {
    added.iter().any(|a| r.contains(a.addr))
}

/// Whether `r` holds what a patch added that code of `patches` may use
/// after a revert: a function or variable added by a change no later than
/// one of their generations (code linked since then may call it or read
/// it, from any pool: such references are in code, which the scan for
/// pointers does not read; code made before cannot). A revert freed the
/// pool of a variable whose newest user sat in another pool, and the
/// program crashed (a libuv trial's `uv__live_polls`).
pub(crate) fn holds_added_in_use(r: &RegionRecord, added: &[AddedRecord], patches: &[PatchRecord]) -> bool {
    let newest = patches.iter().flat_map(|p| &p.history).map(|g| g.change).max();
    let Some(newest) = newest else {
        return false;
    };
    added
        .iter()
        .any(|a| r.contains(a.addr) && a.change.is_none_or(|c| c <= newest))
}

/// The pools of `regions` to free if nothing points into them: not
/// `in_use`, not staying for good.
fn candidates(regions: &[RegionRecord], in_use: &dyn Fn(&RegionRecord) -> bool) -> Vec<RegionRecord> {
    regions
        .iter()
        .filter(|r| !in_use(r) && r.stays_for_good().is_none())
        .cloned()
        .collect()
}

/// Splits `regions` (with the threads stopped, as `stopped`, and `maps`
/// read since) into those
/// that stay (`in_use`, pinned, or still pointed into: see [`referenced`])
/// and those to free; the reason for each one kept although not in use.
/// What was added in a pool to free is dropped from `added`.
pub(crate) fn sort_out(
    target: &Target,
    stopped: &dyn Stopped,
    maps: &[Mapping],
    regions: Vec<RegionRecord>,
    in_use: &dyn Fn(&RegionRecord) -> bool,
    added: &mut Vec<AddedRecord>,
) -> Result<(Vec<RegionRecord>, Vec<RegionRecord>, Vec<KeptRegion>)> {
    let mut kept: Vec<KeptRegion> = regions
        .iter()
        .filter(|r| !in_use(r))
        .filter_map(|r| {
            Some(KeptRegion {
                region: r.clone(),
                why: r.stays_for_good()?,
            })
        })
        .collect();
    let candidates = candidates(&regions, in_use);
    let name_at = |a| target.resolver.name_at(a);
    let reasons = referenced(target.process, stopped, maps, &candidates, &name_at)?;
    // Code a pool kept here still runs (a thread's call of it), and may
    // use what a patch added in another pool: that pool stays too (a
    // libuv re-check: `revert --all` freed the pool of `uv__live_polls`
    // while a thread sat in kept code that writes it, and the server
    // crashed). Such references are in code, which the scan for pointers
    // does not read.
    let code_stays = !kept.is_empty() || reasons.iter().any(Option::is_some);
    let mut freed = Vec::new();
    for (r, why) in candidates.into_iter().zip(reasons) {
        let holds = added
            .iter()
            .filter(|a| r.contains(a.addr))
            .map(|a| a.name.clone())
            .next();
        match (why, holds.filter(|_| code_stays)) {
            (Some(why), _) => kept.push(KeptRegion { region: r, why }),
            (None, Some(name)) => kept.push(KeptRegion {
                region: r,
                why: format!(
                    "it holds {name}, which a patch added and code of a pool kept with it (a call still running there) may use"
                ),
            }),
            (None, None) => {
                added.retain(|a| !r.contains(a.addr));
                freed.push(r);
            }
        }
    }
    // The others stay, in their order.
    let remaining = regions
        .into_iter()
        .filter(|r| !freed.iter().any(|f| f.addr == r.addr))
        .collect();
    Ok((remaining, freed, kept))
}

/// Takes the pools `freed` out of the process, the threads stopped as
/// `stopped` (if at all): unwind tables back to the unwinder first (with
/// the threads running), symbol files off the debuggers' list, then the
/// memory. A pool that cannot go stays in `after` (with what was added in
/// it, from `journal_added`) and in `kept`, with the reason. Returns the
/// pools unmapped, and how long every thread stood still in here
/// (`stopped` since `since`); the threads run again.
pub(crate) fn release<'p>(
    target: &Target<'p>,
    (mut stopped, since): (Option<Box<dyn Stopped + 'p>>, Instant),
    mut freed: Vec<RegionRecord>,
    after: &mut journal::State,
    kept: &mut Vec<KeptRegion>,
    journal_added: &[AddedRecord],
    warnings: &mut Vec<String>,
) -> (Vec<RegionRecord>, Duration) {
    let process = target.process;
    let mut paused = Duration::ZERO;
    let mut stopped_at = since;
    let keep = |after: &mut journal::State, kept: &mut Vec<KeptRegion>, r: RegionRecord, why: String| {
        after
            .added
            .extend(journal_added.iter().filter(|a| r.contains(a.addr)).cloned());
        kept.push(KeptRegion { region: r.clone(), why });
        after.regions.push(r);
    };
    if freed.iter().any(|r| r.frames.iter().any(|f| !f.pending)) {
        if let Some(s) = stopped.take() {
            paused += stopped_at.elapsed();
            if let Err(e) = s.resume() {
                warnings.push(format!(
                    "the threads of process {} could not all be resumed: {e}",
                    process.pid()
                ));
            }
        }
        let unwinder = crate::unwind::unwinder(target);
        let mut still_freed = Vec::new();
        for r in freed {
            match crate::unwind::deregister(process, unwinder.as_ref(), &r.frames) {
                Ok(()) => still_freed.push(r),
                Err(why) => keep(
                    after,
                    kept,
                    r,
                    format!("its unwind information could not be taken back from the unwinder: {why}"),
                ),
            }
        }
        freed = still_freed;
        if !freed.is_empty() {
            stopped_at = Instant::now();
            match process.stop() {
                Ok(s) => stopped = Some(s),
                // What could not be unmapped stays recorded, for a later
                // revert or patch to free.
                Err(e) => {
                    for r in freed.drain(..) {
                        keep(
                            after,
                            kept,
                            r,
                            format!("the process could not be stopped to unmap it: {e}"),
                        );
                    }
                }
            }
        }
    }
    if let Some(stopped) = stopped.as_mut() {
        let mut unmapped = Vec::new();
        for r in freed {
            // Off the debuggers' list first: gdb must not load symbol
            // files for code no longer there.
            for images in &r.debug_images {
                match crate::debugger::unlink(process, images) {
                    Ok(()) => {
                        let _ = stopped.unmap(images.addr, images.len);
                        crate::apply::failpoint("release-after-symbol-files");
                    }
                    Err(why) => warnings.push(format!(
                        "the symbol files of the code at {:#x} stay listed for debuggers: {why}",
                        r.addr
                    )),
                }
            }
            match stopped.unmap(r.addr, r.len) {
                Ok(()) => {
                    unmapped.push(r);
                    crate::apply::failpoint("release-after-unmap");
                }
                Err(e) => {
                    warnings.push(format!(
                        "the region at {:#x} ({:#x} bytes) is no longer used but could not be unmapped ({e}); it stays recorded",
                        r.addr, r.len
                    ));
                    after.regions.push(r);
                }
            }
        }
        freed = unmapped;
    }
    if let Some(stopped) = stopped {
        paused += stopped_at.elapsed();
        if let Err(e) = stopped.resume() {
            warnings.push(format!(
                "the threads of process {} could not all be resumed: {e}",
                process.pid()
            ));
        }
    }
    // Profilers must not name later code at these addresses after what
    // was here (best effort, like the lines themselves).
    let gone: Vec<(u64, u64)> = freed.iter().map(|r| (r.addr, r.addr + r.len)).collect();
    let _ = crate::perf_map::forget(process.pid(), &gone);
    (freed, paused)
}

/// What a patch freed of the pools only superseded generations filled.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Reclaimed {
    /// Pools unmapped.
    pub freed: Vec<RegionRecord>,
    /// Pools that hold no code a patch record runs or can go back to, kept
    /// because something still points into them (a thread that has not
    /// left an old generation): checked again when a patch next maps a
    /// pool.
    pub kept: Vec<KeptRegion>,
    /// Microseconds every thread stood still for it: the search for
    /// pointers, and the unmapping (the unwind tables go back in between,
    /// with only the main thread stopped).
    pub us: u64,
}

impl Reclaimed {
    pub fn is_empty(&self) -> bool {
        self.freed.is_empty() && self.kept.is_empty()
    }
}

/// Frees the pools that hold neither a generation any patch record runs
/// or can go back to, nor anything a patch added, once the threads are
/// stopped and nothing points into them. Called after a patch that
/// mapped a new pool (a full pool is where superseded generations pile
/// up), so a slot update never stops the threads for it. Errors leave
/// every pool recorded as it was.
pub fn superseded_pools(target: &mut Target, warnings: &mut Vec<String>) -> Result<Reclaimed> {
    target.journal.load_history(&target.journal_dir)?;
    // A pool that stays for good is not worth stopping the threads for.
    let journal = &target.journal;
    let in_use = |r: &RegionRecord| {
        r.stays_for_good().is_some() || holds_generation(r, &journal.patches) || holds_added(r, &journal.added)
    };
    if journal.regions.iter().all(in_use) {
        return Ok(Reclaimed::default());
    }
    let mut after = journal.state();
    let process = target.process;
    let started = Instant::now();
    let stopped = process.stop()?;
    let maps = process.maps()?;
    let regions = std::mem::take(&mut after.regions);
    let (remaining, freed, mut kept) = sort_out(target, stopped.as_ref(), &maps, regions, &in_use, &mut after.added)?;
    after.regions = remaining;
    if freed.is_empty() {
        stopped.resume()?;
        return Ok(Reclaimed {
            freed,
            kept,
            us: started.elapsed().as_micros() as u64,
        });
    }
    let intent = journal::Intent {
        by: "reclaim".into(),
        after: after.clone(),
        history_appended: false,
        writes: Vec::new(),
    };
    if let Err(e) = target.journal.begin(&target.journal_dir, intent) {
        stopped.resume()?;
        return Err(e);
    }
    let journal_added = target.journal.added.clone();
    let (freed, paused) = release(
        target,
        (Some(stopped), started),
        freed,
        &mut after,
        &mut kept,
        &journal_added,
        warnings,
    );
    let us = paused.as_micros() as u64;
    warnings.extend(target.journal.commit_after_change(&target.journal_dir, after));
    crate::debug_file::remove_unmapped(target);
    Ok(Reclaimed { freed, kept, us })
}

/// The System V red zone below a stack pointer, which leaf code may use.
const RED_ZONE: u64 = 128;

/// How much writable memory relive reads looking for pointers into a
/// pool it would free (beyond that, the region is kept).
const REFERENCE_SCAN: u64 = 1 << 30;

/// How much of a mapping is read at once when searching it.
const SCAN_CHUNK: u64 = 1 << 20;

/// The pools searched for: which one a word points into.
struct Targets<'r> {
    regions: &'r [RegionRecord],
    low: u64,
    high: u64,
}

impl Targets<'_> {
    fn new(regions: &[RegionRecord]) -> Targets<'_> {
        Targets {
            regions,
            low: regions.iter().map(|r| r.addr).min().unwrap_or(0),
            high: regions.iter().map(|r| r.addr + r.len).max().unwrap_or(0),
        }
    }

    /// The pool `value` points into, where patches placed something
    /// ([`RegionRecord::placed_at`]).
    fn owner(&self, value: u64) -> Option<usize> {
        match (self.low..self.high).contains(&value) {
            true => self
                .regions
                .iter()
                .position(|r| r.contains(value))
                .filter(|&i| self.regions[i].placed_at(value)),
            false => None,
        }
    }

    /// Reads `[from, to)` of mapping `m` through `buffer` and calls `found`
    /// with each aligned word that points into a pool (not the mapping's
    /// own, nor the unwinder's bookkeeping of its tables): its address,
    /// its value and the pool.
    fn search(
        &self,
        process: &dyn Process,
        m: &Mapping,
        (from, to): (u64, u64),
        buffer: &mut [u8],
        found: &mut dyn FnMut(u64, u64, usize),
    ) {
        // A region's words that point into itself.
        let own = |i: usize| self.regions[i].addr < m.end && m.start < self.regions[i].addr + self.regions[i].len;
        let mut at = from;
        while at < to {
            let len = (to - at).min(buffer.len() as u64);
            let bytes = &mut buffer[..len as usize];
            if process.read(at, bytes).is_ok() {
                // Almost no word points near the pools: counted first
                // without a branch per word, looked at one by one only in
                // a piece that has some.
                let near = bytes
                    .chunks_exact(8)
                    .filter(|w| (self.low..self.high).contains(&u64::from_le_bytes((*w).try_into().expect("8 bytes"))))
                    .count();
                if near > 0 {
                    for (k, word) in bytes.chunks_exact(8).enumerate() {
                        let value = u64::from_le_bytes(word.try_into().expect("8 bytes"));
                        let Some(i) = self.owner(value) else { continue };
                        // The unwinder's pointers into the region's unwind
                        // tables (its index of their entries, its list of
                        // them) are not uses: they go with the tables,
                        // which are taken back before the region goes. A
                        // thread using a table now has a frame in the
                        // region's code too.
                        if own(i) || self.regions[i].frames.iter().any(|f| f.unwinder_owns(value)) {
                            continue;
                        }
                        found(at + 8 * k as u64, value, i);
                    }
                }
            }
            at += len;
        }
    }
}

/// The mappings a search for pointers reads: writable, readable, not the
/// kernel's (`[vvar]`, `[vsyscall]`); `None` when together they are more
/// than [`REFERENCE_SCAN`].
fn searched_mappings(maps: &[Mapping]) -> Option<Vec<&Mapping>> {
    let searched: Vec<&Mapping> = maps
        .iter()
        .filter(|m| m.readable() && m.writable() && !m.path.starts_with("[v"))
        .collect();
    let total: u64 = searched.iter().map(|m| m.end - m.start).sum();
    (total <= REFERENCE_SCAN).then_some(searched)
}

/// What may still reach code or data in each of `regions`, if anything: a
/// stopped thread's register, or an aligned word anywhere in the
/// process's writable memory (stacks, the program's and libraries' data,
/// the heap, anonymous mappings) pointing into it. A program that stored
/// the address of a function a patch added (a callback in a global or on
/// the heap) calls it later, and a thread that has not left an old
/// generation returns into it: freeing the region would crash it. A
/// region's own words do not count (its jump slots point at its own
/// code). Each answer names the first reference found, for the user to
/// judge: the word's and the value's symbols where `name_at` knows them
/// (a global the program keeps a callback in, the added function it
/// points at). Memory is read once for all the regions.
pub(crate) fn referenced(
    process: &dyn Process,
    stopped: &dyn Stopped,
    maps: &[Mapping],
    regions: &[RegionRecord],
    name_at: &dyn Fn(u64) -> Option<String>,
) -> Result<Vec<Option<String>>> {
    let mut why: Vec<Option<String>> = vec![None; regions.len()];
    if regions.is_empty() {
        return Ok(why);
    }
    let targets = Targets::new(regions);
    let value_named = |value: u64| name_at(value).map(|n| format!(" ({n})")).unwrap_or_default();
    // Below a thread's stack pointer (and its red zone) a stack holds
    // only dead words: an old frame's pointer there reaches nothing.
    let mut stack_pointers: Vec<(u32, u64)> = Vec::new();
    for tid in stopped.thread_ids() {
        let r = stopped.registers(tid)?;
        stack_pointers.push((tid, r.rsp));
        let gprs = [
            ("rip", r.rip),
            ("rsp", r.rsp),
            ("rbp", r.rbp),
            ("rax", r.rax),
            ("rbx", r.rbx),
            ("rcx", r.rcx),
            ("rdx", r.rdx),
            ("rsi", r.rsi),
            ("rdi", r.rdi),
            ("r8", r.r8),
            ("r9", r.r9),
            ("r10", r.r10),
            ("r11", r.r11),
            ("r12", r.r12),
            ("r13", r.r13),
            ("r14", r.r14),
            ("r15", r.r15),
        ];
        for (name, value) in gprs {
            if let Some(i) = targets.owner(value).filter(|&i| why[i].is_none()) {
                why[i] = Some(format!("thread {tid}'s {name} holds {value:#x}{}", value_named(value)));
            }
        }
    }
    let live_from = |start: u64, end: u64| {
        stack_pointers
            .iter()
            .map(|&(_, sp)| sp)
            .filter(|&sp| start <= sp && sp < end)
            .min()
            .map_or(start, |sp| sp.saturating_sub(RED_ZONE).max(start) & !7)
    };
    // A word named by what holds it: a global, a thread's stack (a thread
    // still inside old code returns there), or its mapping.
    let word_at = |at: u64, m: &Mapping, value: u64| {
        let stack_of = stack_pointers
            .iter()
            .find(|&&(_, sp)| m.start <= sp && sp < m.end)
            .map(|&(tid, _)| tid);
        let place = match (name_at(at), stack_of, m.path.as_str()) {
            (Some(name), _, "") => name,
            (Some(name), _, path) => format!("{name} in {path}"),
            (None, Some(tid), _) => format!("thread {tid}'s stack"),
            (None, None, "") => "anonymous memory".to_string(),
            (None, None, path) => path.to_string(),
        };
        format!("the word at {at:#x} ({place}) holds {value:#x}{}", value_named(value))
    };
    let Some(searched) = searched_mappings(maps) else {
        for w in why.iter_mut().filter(|w| w.is_none()) {
            *w = Some(format!(
                "the process has more than {} MiB of writable memory, too much to search for pointers into it",
                REFERENCE_SCAN >> 20
            ));
        }
        return Ok(why);
    };
    let mut buffer = vec![0u8; SCAN_CHUNK as usize];
    for m in searched {
        if why.iter().all(Option::is_some) {
            break;
        }
        let from = live_from(m.start, m.end);
        targets.search(process, m, (from, m.end), &mut buffer, &mut |at, value, i| {
            if why[i].is_none() {
                why[i] = Some(word_at(at, m, value));
            }
        });
    }
    Ok(why)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::Generation;

    fn pool(addr: u64) -> RegionRecord {
        RegionRecord {
            addr,
            len: 0x1000,
            ..RegionRecord::default()
        }
    }

    /// `f`, patched by change `change` to code at `code`.
    fn patched(code: u64, change: u64) -> PatchRecord {
        PatchRecord {
            name: "f".into(),
            orig_addr: 0x100,
            current_addr: code,
            generation: 1,
            method: "jump".into(),
            span_start: 0x100,
            original: "5548".into(),
            patched: "ff25".into(),
            slot: 0x9000,
            assumed: 0,
            history: vec![Generation {
                generation: 1,
                change,
                at: 0,
                source: None,
                code,
                slot_value: code,
                size: 0x10,
                calls: Vec::new(),
                signature_calls: Vec::new(),
                signature: None,
                signature_key: None,
                block: None,
            }],
            unreached: None,
            old_code_kept: None,
        }
    }

    fn added(addr: u64, change: u64) -> AddedRecord {
        AddedRecord {
            initial: None,
            name: "polls".into(),
            file: None,
            local: false,
            key: None,
            addr,
            size: 8,
            kind: "object".into(),
            change: Some(change),
            hook: None,
        }
    }

    /// A variable added by change 2 in pool A, read by code of change 5
    /// in pool B (a libuv trial: a revert freed A, and the program
    /// crashed): A stays while such code does; code of an earlier change
    /// cannot use it, and with no patch left nothing does.
    #[test]
    fn a_pool_holding_what_remaining_code_may_use_stays() {
        let (a, b) = (pool(0x10000), pool(0x20000));
        let variable = [added(0x10800, 2)];
        let newer = [patched(0x20010, 5)];
        assert!(!holds_generation(&a, &newer), "no generation runs there");
        assert!(holds_added_in_use(&a, &variable, &newer));
        assert!(!holds_added_in_use(&b, &variable, &newer), "nothing added there");
        assert!(!holds_added_in_use(&a, &variable, &[patched(0x20010, 1)]));
        assert!(!holds_added_in_use(&a, &variable, &[]));
    }

    /// A value in a pool's unused space points at nothing a patch placed:
    /// no reference (a jq trial's heap words kept a pool for good), while
    /// one in (or just past) what its parts hold is.
    #[test]
    fn only_what_patches_placed_in_a_pool_can_be_referenced() {
        let region = RegionRecord {
            addr: 0x10000,
            len: 0x3000,
            code_len: 0x1000,
            ro_len: 0x1000,
            rw_len: 0x1000,
            code_used: 0x40,
            ro_used: 0x10,
            rw_used: 0x8,
            ..RegionRecord::default()
        };
        let regions = [region.clone()];
        let targets = Targets::new(&regions);
        // (0x11ff8: a loop's base just before the writable part's first
        // variable.)
        for placed in [0x10000, 0x1003f, 0x10040, 0x11008, 0x11ff8, 0x12000, 0x12008] {
            assert_eq!(targets.owner(placed), Some(0), "{placed:#x}");
        }
        for unused in [0x10800, 0x11800, 0x12800, 0x12ff8, 0x13000] {
            assert_eq!(targets.owner(unused), None, "{unused:#x}");
        }
        // A record from a journal that counts no use: the whole pool.
        let old = [RegionRecord {
            code_used: 0,
            ro_used: 0,
            rw_used: 0,
            ..region
        }];
        assert_eq!(Targets::new(&old).owner(0x12800), Some(0));
    }
}
