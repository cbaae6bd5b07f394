//! Applying and reverting patches in a running process, as transactions.
//!
//! A patch is linked and every entry redirect planned before the process
//! is touched. Then its threads are stopped, the region is allocated near
//! the image, filled and protected, and the entries redirected. Any
//! failure on the way restores every byte written and frees the region, so
//! the process is left exactly as it was. Activations already running in
//! an old function finish there: only calls made after the patch reach the
//! new code.

use foldhash::{HashMap, HashMapExt};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use relive_image::symbols::{Binding, SymbolKind};
use relive_process::alloc::{self, Placement};
use relive_process::maps::Mapping;
use relive_process::symbols::LiveSymbols;
use relive_process::{Process, Protection, Registers, Stopped, ThreadPosition};
use serde::Serialize;

use crate::clobber::{self, Regs};
use crate::displaced::{self, Displaced};
use crate::entry::{self, Redirect};
use crate::error::{PatchError, Result};
use crate::journal::{self, unhex, Journal, PatchRecord, RegionRecord};
use crate::link::{self, Layout, Linked, PART_ALIGN};
use crate::live::LiveResolver;
use crate::objfile::ObjectFile;
use crate::reach::{self, Reach};
use crate::running_callers;
pub use crate::target::Target;
use crate::{line_shift, names, signature, thunk};

/// How long to keep retrying while a thread sits inside bytes about to be
/// replaced and cannot be moved out of them (it is in a system call there).
const BUSY_PATIENCE: Duration = Duration::from_millis(200);

/// How a function was switched to its new code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// Its entry overwritten with `jmp *slot`.
    Jump,
    /// Its entry overwritten with `jmp` to a stub in the pool (a function
    /// too short for the other).
    Near,
    /// Through its patchable-entry pad.
    Pad,
    /// `jmp short` to a jump in the filler before its entry (a function
    /// too short for the others).
    Hop,
    /// A later patch: only the jump slot changed.
    Slot,
}

impl Method {
    fn of(redirect: &Redirect) -> Method {
        match redirect {
            Redirect::Jump { .. } => Method::Jump,
            Redirect::Near { .. } => Method::Near,
            Redirect::Pad { .. } => Method::Pad,
            Redirect::Hop { .. } => Method::Hop,
        }
    }
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Method::Jump => "jump",
            Method::Near => "near",
            Method::Pad => "pad",
            Method::Hop => "hop",
            Method::Slot => "slot",
        })
    }
}

/// One function now running new code.
#[derive(Debug, Clone, Serialize)]
pub struct Applied {
    /// As people write it (C++ demangled: `Sq::area() const`).
    pub name: String,
    /// The symbol as the object names it (`_ZNK2Sq4areaEv`; the same as
    /// `name` in C).
    pub symbol: String,
    /// The function's original entry (`status` names it the same).
    pub orig_addr: u64,
    /// Where it runs now: the new code (`status`: `current_addr`).
    pub current_addr: u64,
    pub generation: u32,
    pub method: Method,
    /// Registers the entry keeps for callers that rely on them (GCC
    /// `-fipa-ra`), through a thunk at `entry_addr`; empty: calls go
    /// straight to `current_addr`.
    pub preserves: Vec<String>,
    pub entry_addr: u64,
    /// Whether later calls can run the new code, and what to know.
    pub reach: Reach,
}

/// A function the program did not have.
#[derive(Debug, Clone, Serialize)]
pub struct Added {
    /// As people write it (C++ demangled: `Sq::area() const`).
    pub name: String,
    /// The symbol as the object names it (`_ZNK2Sq4areaEv`; the same as
    /// `name` in C).
    pub symbol: String,
    pub addr: u64,
}

/// A data symbol the new code uses.
#[derive(Debug, Clone, Serialize)]
pub struct DataUse {
    /// As people write it (C++ demangled: `Sq::area() const`).
    pub name: String,
    /// The symbol as the object names it (`_ZNK2Sq4areaEv`; the same as
    /// `name` in C).
    pub symbol: String,
    pub addr: u64,
    /// `kept` (the program's variable, state intact) or `new`.
    pub action: link::DataAction,
}

/// Microseconds per stage.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Timing {
    /// Reading the objects (measured by the caller).
    pub read: u64,
    /// Comparing them, choosing what to patch (measured by the caller).
    pub diff: u64,
    /// Reading the process: its modules, symbols and journal (measured by
    /// the caller).
    pub open: u64,
    /// Taking the process's lock, linking and planning every write.
    pub link: u64,
    /// Finding room, or mapping a new pool.
    pub alloc: u64,
    /// Stopping the threads for a first redirect.
    pub stop: u64,
    /// Writing the code and the entries, each read back.
    pub write: u64,
    /// After the writes: the journal's commit, and whether each new
    /// function can be reached.
    pub check: u64,
    /// Running the program's reload hooks ([`crate::hooks`]), before and
    /// after the redirect.
    pub hooks: u64,
    /// Writing the new code's symbol files and listing them in the
    /// process for debuggers ([`crate::debugger`]; the first loads
    /// relive's library into it).
    pub debuggers: u64,
    /// After a patch that mapped a new pool: freeing the pools only
    /// superseded generations fill ([`crate::reclaim`]; the threads stop
    /// to check nothing points into them).
    pub reclaim: u64,
    /// All of the above; a command sets it to its whole run.
    pub total: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct PatchReport {
    pub applied: Vec<Applied>,
    pub added: Vec<Added>,
    /// Variables the program did not have, which the patch added (with
    /// the initial values the object gives them).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub added_variables: Vec<Added>,
    pub data: Vec<DataUse>,
    pub timing_us: Timing,
    /// How long every thread of the program was stopped: the redirect of
    /// functions patched for the first time (0 when only slots changed).
    pub pause_us: u64,
    /// How long the one thread that ran a new pool's `mmap` was stopped
    /// (the others ran on meanwhile); 0 when a pool was reused.
    pub alloc_pause_us: u64,
    pub region: RegionRecord,
    pub warnings: Vec<String>,
    /// Threads found inside bytes a first redirect replaced, moved into a
    /// relocated copy of them (see `displaced`) to carry on from there.
    pub threads_moved: usize,
    /// The program's reload hooks that ran around this change (in the
    /// first report of a change of several files only: they run once).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hooks: Vec<crate::hooks::HookRun>,
    /// Whether the process's unwinder can walk through the new code.
    pub unwind: UnwindStatus,
    /// Pools freed after this patch (it mapped a new one): nothing runs or
    /// can go back to their code any more (in the first report of a
    /// change of several files only).
    #[serde(skip_serializing_if = "crate::reclaim::Reclaimed::is_empty")]
    pub reclaimed: crate::reclaim::Reclaimed,
    /// New globals constructed in the process by the patch's static
    /// initializer before the redirect (C++: `static const std::string
    /// s = "…";`), as people write them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub constructed: Vec<String>,
}

/// What became of a patch's unwind information ([`crate::unwind`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum UnwindStatus {
    /// Handed to the process's unwinder: exceptions, `backtrace()` and
    /// thread cancellation go through the new code.
    Registered,
    /// The object has none for the new functions.
    None,
    /// The process has no unwinder loaded (a C program before its first
    /// `backtrace()`): nothing walks stacks there yet.
    NoUnwinder,
    /// Registering failed (a warning says why).
    Failed,
}

fn micros(d: Duration) -> u64 {
    d.as_micros() as u64
}

/// What to do at one entry.
struct EntryWork {
    name: String,
    orig: u64,
    new_addr: u64,
    /// Where calls go: the new code, or its register-keeping thunk (an
    /// offset in the code part until the region is placed).
    entry_offset: u64,
    entry_addr: u64,
    /// Registers the thunk keeps (none: no thunk).
    keeps: Regs,
    /// The record's `assumed` after this patch.
    assumed: Regs,
    kind: EntryKind,
}

/// The running program's original code, for [`clobber::in_process`]:
/// program functions read from memory with every redirect undone.
struct OriginalCode<'a> {
    process: &'a dyn Process,
    resolver: &'a LiveResolver,
    journal: &'a Journal,
}

impl clobber::LiveCode for OriginalCode<'_> {
    fn function(&self, addr: u64) -> Option<Vec<u8>> {
        // A function an earlier patch added is code of the program too
        // (the previous patch's callers were compiled against it).
        let size = match self.resolver.added_function_size(addr) {
            Some(size) => size,
            None => {
                let symbols = self.resolver.symbols();
                let (symbol, 0) = symbols.at(addr)? else { return None };
                let program = self.resolver.home().0 == symbol.module;
                let code = matches!(symbol.kind, SymbolKind::Function | SymbolKind::Unknown);
                if !program || !code {
                    return None;
                }
                symbol.size
            }
        };
        if size == 0 || size > MAX_SCANNED {
            return None;
        }
        let mut bytes = vec![0u8; size as usize];
        self.process.read(addr, &mut bytes).ok()?;
        for p in &self.journal.patches {
            let Some(original) = unhex(&p.original) else { continue };
            for (k, b) in original.into_iter().enumerate() {
                let at = p.span_start.wrapping_add(k as u64);
                if let Some(slot) = at.checked_sub(addr).and_then(|o| bytes.get_mut(o as usize)) {
                    *slot = b;
                }
            }
        }
        Some(bytes)
    }
}

/// Functions larger than this are not read for register analysis.
const MAX_SCANNED: u64 = 1 << 20;

enum EntryKind {
    /// A later patch: store the new address in the existing slot.
    Slot { slot: u64 },
    /// The first patch: redirect through the new region's slot at
    /// `slot_offset` in its read-only part (a near redirect: through its
    /// stub at `stub_offset` in the code part).
    Redirect {
        redirect: Redirect,
        slot_offset: u64,
        stub_offset: Option<u64>,
    },
}

/// Bytes written so far, to put back on failure.
#[derive(Default)]
struct Undo {
    /// In the order written.
    writes: Vec<Write>,
}

/// One write of a transaction.
struct Write {
    addr: u64,
    before: Vec<u8>,
}

impl Undo {
    /// Writes each `(addr, bytes)` in order, then reads them all back: a
    /// write that did not take (or was changed under us) fails the
    /// transaction rather than leave a half-written jump the journal does
    /// not describe. The bytes before and the read-back are each one
    /// scattered read ([`Process::read_many`]), not one per write: a
    /// 100-function re-patch made 300 system calls for its slots.
    /// `after_first` runs after the first write (a failpoint).
    fn write_all(&mut self, process: &dyn Process, writes: &[(u64, &[u8])], after_first: &dyn Fn()) -> Result<()> {
        let before = Undo::read_current(process, writes)?;
        self.write_all_over(process, writes, before, after_first)
    }

    /// The bytes now at the places of `writes`, one scattered read: those
    /// they will replace, or, read back after them, what they wrote. A
    /// redirect reads the former before it stops the threads: nothing else writes a
    /// program's code (one relive owns the process), and the stop is
    /// the program's pause, which one system call less shortens.
    fn read_current(process: &dyn Process, writes: &[(u64, &[u8])]) -> Result<Vec<Vec<u8>>> {
        let mut out: Vec<Vec<u8>> = writes.iter().map(|(_, b)| vec![0u8; b.len()]).collect();
        let mut parts: Vec<(u64, &mut [u8])> = writes
            .iter()
            .zip(out.iter_mut())
            .map(|((a, _), b)| (*a, b.as_mut_slice()))
            .collect();
        process.read_many(&mut parts)?;
        Ok(out)
    }

    /// [`Undo::write_all`] with the bytes before read already
    /// ([`Undo::read_current`]).
    fn write_all_over(
        &mut self,
        process: &dyn Process,
        writes: &[(u64, &[u8])],
        before: Vec<Vec<u8>>,
        after_first: &dyn Fn(),
    ) -> Result<()> {
        for (k, ((addr, bytes), old)) in writes.iter().zip(before).enumerate() {
            process.write(*addr, bytes)?;
            self.writes.push(Write {
                addr: *addr,
                before: old,
            });
            if k == 0 {
                after_first();
            }
        }
        let back = Undo::read_current(process, writes)?;
        for ((addr, bytes), back) in writes.iter().zip(&back) {
            if back != bytes {
                return Err(PatchError::Verify {
                    pid: process.pid(),
                    addr: *addr,
                    wrote: hex(bytes),
                    found: hex(back),
                });
            }
        }
        Ok(())
    }

    fn roll_back(self, process: &dyn Process) {
        for w in self.writes.into_iter().rev() {
            let _ = process.write(w.addr, &w.before);
        }
    }
}

/// Links functions `functions` (symbol indices of `obj`) into the process
/// and redirects those it already has. `base` is the previous compile of
/// the same source (what the program runs), which names GCC-renumbered
/// statics reliably. `earlier` holds the stages the caller measured
/// (reading the objects, the diff, opening the process).
pub fn patch(
    target: &mut Target,
    obj: &ObjectFile,
    base: Option<&ObjectFile>,
    functions: &[usize],
    earlier: Timing,
) -> Result<PatchReport> {
    let unit = Unit {
        obj,
        base,
        built: None,
        functions,
        changed_signatures: &[],
    };
    let mut reports = patch_together(target, &[unit], earlier)?;
    Ok(reports.remove(0))
}

/// Patches several objects (files saved together) as one transaction:
/// their code goes into one pool, one intent is written ahead for all, the
/// threads stop once for every first redirect, and either every function
/// of every unit runs its new code afterwards or the process is left as it
/// was. So a change that spans files (a function and its callers) is never
/// seen half done. One report per unit, in order; the stages' times are
/// the transaction's.
pub fn patch_together(target: &mut Target, units: &[Unit], earlier: Timing) -> Result<Vec<PatchReport>> {
    let started = Instant::now();
    let _transaction = target.transaction()?;
    let process = target.process;
    let mut home = None;
    let mut prepared = prepare_in_order(target, units, &mut home)?;
    if let Some(what) = one_variable_made_twice(&prepared) {
        return Err(PatchError::Refused { what });
    }
    let shared = redirect_once(&mut prepared);
    if let Some(what) = needs_room_out_of_reach(target, &prepared) {
        return Err(PatchError::Refused { what });
    }
    let link_done = Instant::now();

    // Room in an existing pool, or a new pool (allocated while one thread
    // is briefly stopped: a remote mmap needs a stopped thread). The units'
    // parts follow each other, each aligned.
    let mut offsets = Vec::with_capacity(prepared.len());
    let (mut code_len, mut ro_len, mut rw_len) = (0u64, 0u64, 0u64);
    for p in &prepared {
        let at = (
            code_len.next_multiple_of(PART_ALIGN),
            ro_len.next_multiple_of(PART_ALIGN),
            rw_len.next_multiple_of(PART_ALIGN),
        );
        let (c, r, w) = p.linked.sizes();
        (code_len, ro_len, rw_len) = (at.0 + c, at.1 + r, at.2 + w);
        offsets.push(at);
    }
    // Room for copies of the bytes first redirects replace, where a thread
    // found inside them continues (see `displaced`).
    let first_redirects = prepared
        .iter()
        .flat_map(|p| &p.work)
        .any(|w| matches!(w.kind, EntryKind::Redirect { .. }));
    let displaced_offset = first_redirects.then(|| {
        let at = code_len.next_multiple_of(PART_ALIGN);
        code_len = at + displaced::COPIES * displaced::COPY_LEN;
        at
    });
    let placement = placement(target, prepared.iter().filter_map(|p| p.linked.below).min());
    // A pool whose patches' symbol files reached their limit counts as
    // full too: a small function patched again and again would otherwise
    // pile a whole object's DWARF per patch beside one pool that never
    // fills, and never goes (see `reclaim`).
    let fits = |r: &RegionRecord| {
        placement.admits(r.addr, r.len)
            && r.fit(code_len, ro_len, rw_len, PART_ALIGN).is_some()
            && r.debug_image_bytes() < POOL_DEBUG_IMAGES
    };
    let mut alloc_pause = Duration::ZERO;
    let alloc_start = Instant::now();
    let (pool_index, new_pool) = match target.journal.regions.iter().position(fits) {
        Some(i) => (i, false),
        None => {
            let pool = new_pool(target, &placement, code_len, ro_len, rw_len)?;
            alloc_pause = pool.1;
            target.journal.regions.push(pool.0);
            (target.journal.regions.len() - 1, true)
        }
    };
    let alloc_done = Instant::now();
    let pool = target.journal.regions[pool_index].clone();
    let (c, r, w) = pool.fit(code_len, ro_len, rw_len, PART_ALIGN).expect("the pool fits");
    let displaced_area = displaced_offset.map(|o| pool.addr + c + o);
    let layouts: Vec<Layout> = offsets
        .iter()
        .map(|&(oc, or, ow)| Layout {
            code: pool.addr + c + oc,
            read_only: pool.read_only_start() + r + or,
            writable: pool.writable_start() + w + ow,
        })
        .collect();
    // Undoes what was done to the process before the redirect (a pool
    // this patch mapped) and brings the journal back to its state before,
    // on disk too once an intent was written.
    // `filled`: the writes into unused pool space (new code, data, thread
    // copies), put back so that a failed patch leaves even the pool's
    // unused bytes as they were.
    let abandon = |target: &mut Target, before: &journal::State, written: bool, filled: Undo| {
        filled.roll_back(process);
        if new_pool {
            let region = target.journal.regions.remove(pool_index);
            if let Ok(mut stopped) = process.stop() {
                let _ = stopped.unmap(region.addr, region.len);
            }
        }
        if written {
            let _ = target.journal.commit(&target.journal_dir, before.clone());
        }
    };
    let mut before = target.journal.state();
    if new_pool {
        // The pool is mapped already: if this relive dies, the recovery
        // keeps it recorded (unused space, not a leak of unknown memory).
        before.regions.truncate(pool_index);
    }

    // Every write the redirect will make, and the journal once done,
    // decided before anything is written: they are saved ahead.
    let mut planned = Vec::with_capacity(prepared.len());
    for (p, layout) in prepared.iter_mut().zip(&layouts) {
        match plan_writes(process, &p.linked, layout, &mut p.work) {
            Ok(writes) => planned.push(writes),
            Err(e) => {
                abandon(target, &before, false, Undo::default());
                return Err(e);
            }
        }
    }
    let mut after = target.journal.state();
    let used = &mut after.regions[pool_index];
    used.code_used = c + code_len;
    used.ro_used = r + ro_len;
    used.rw_used = w + rw_len;
    // Unwind tables for the unwinder, recorded ahead as uncertain: a
    // relive killed during the call leaves them never taken back.
    let mut unwinder = crate::unwind::unwinder(target);
    let all_tables: Vec<journal::FrameRecord> = prepared
        .iter()
        .zip(&layouts)
        .flat_map(|(p, layout)| p.linked.unwind_tables().map(move |u| (u, layout)))
        .map(|(u, layout)| journal::FrameRecord {
            eh_frame: layout.read_only + u.eh_frame,
            len: u.len,
            object: layout.writable + u.object,
            uncertain: false,
            pending: false,
        })
        .collect();
    // A C program that has not unwound yet has no unwinder: relive loads
    // the one glibc loads on a first backtrace() (which would not know the
    // new code) to hand it the tables. It stays loaded even if the patch
    // then fails, as it would after that backtrace().
    // The library's name goes in the pool's unused read-only part.
    let name_room = used.ro_len.saturating_sub(used.ro_used) > crate::unwind::LIBGCC.len() as u64;
    let mut no_unwinder_why = None;
    if unwinder.is_none() && !all_tables.is_empty() {
        let scratch = used.read_only_start() + used.ro_used;
        let loaded = match name_room {
            true => crate::unwind::load_unwinder(target, scratch),
            false => Err("the pool has no room for the library's name".to_string()),
        };
        match loaded {
            Ok(u) => unwinder = Some(u),
            Err(why) => no_unwinder_why = Some(why),
        }
    }
    let tables: Vec<journal::FrameRecord> = match unwinder {
        Some(_) => all_tables,
        None => {
            // Kept for the first patch that finds an unwinder.
            used.frames
                .extend(all_tables.iter().map(|t| journal::FrameRecord { pending: true, ..*t }));
            Vec::new()
        }
    };
    used.frames
        .extend(tables.iter().map(|t| journal::FrameRecord { uncertain: true, ..*t }));
    // The static initializers that construct new globals the new code
    // uses: run before the redirect; the pool then stays for good.
    let constructors: Vec<u64> = prepared
        .iter()
        .zip(&layouts)
        .filter(|(p, _)| !p.constructed.is_empty())
        .flat_map(|(p, layout)| p.linked.constructors.iter().map(|o| layout.code + o))
        .collect();
    let constructed: Vec<String> = prepared.iter().flat_map(|p| p.constructed.iter().cloned()).collect();
    if !constructors.is_empty() {
        let one = |single, plural| number(&constructed, single, plural);
        used.pinned = Some(format!(
            "the new global{} {} {} constructed in it, and {} from it when the program exits",
            one("", "s"),
            constructed.join(", "),
            one("was", "were"),
            one("its destructor runs", "their destructors run"),
        ));
    }
    // Tables of earlier patches made while the process had no unwinder:
    // handed over with this patch's, before its redirect (its code may
    // unwind through theirs at once), recorded ahead as uncertain.
    let earlier_tables: Vec<journal::FrameRecord> = match unwinder {
        Some(_) => after
            .regions
            .iter_mut()
            .flat_map(|r| r.frames.iter_mut())
            .filter(|f| f.pending)
            .map(|f| {
                *f = journal::FrameRecord {
                    pending: false,
                    uncertain: true,
                    ..*f
                };
                journal::FrameRecord { uncertain: false, ..*f }
            })
            .collect(),
        None => Vec::new(),
    };
    // Callers whose running call would call a function whose signature
    // this patch changes the old way: checked with every thread stopped
    // for the redirect (a check before it leaves a moment in which a
    // thread enters one), a slot update stopping them for it too. Kept
    // with the callers' new generations: a revert must not send their
    // running calls into the old code the old way either.
    //
    // Each placed function's signature, kept with its generation; and
    // those that differ from the one its running generation recorded (a
    // change no diff shows: see `journal::Generation::signature`).
    let signatures: Vec<HashMap<String, signature::Signature>> = prepared.iter().map(placed_signatures).collect();
    let also: Vec<Vec<String>> = units
        .iter()
        .map(|u| {
            let mut also = u.changed_signatures.to_vec();
            for (p, signatures) in prepared
                .iter()
                .zip(&signatures)
                .filter(|(p, _)| std::ptr::eq(p.obj, u.obj))
            {
                for w in p.work.iter().filter(|w| matches!(w.kind, EntryKind::Slot { .. })) {
                    let running = target.journal.patch(w.orig).and_then(|r| r.history.last());
                    let differs = running.is_some_and(|g| {
                        signatures
                            .get(&w.name)
                            .is_some_and(|is| journal::recorded_signature_differs(g, is))
                    });
                    if differs && !also.contains(&w.name) {
                        also.push(w.name.clone());
                    }
                }
            }
            also
        })
        .collect();
    let parts: Vec<running_callers::Patched> = units
        .iter()
        .zip(&also)
        .map(|(u, also)| (u.obj, u.base, u.functions, also.as_slice()))
        .collect();
    // `changed`: the functions whose signature the patch changes; their
    // callers in the program's own code are checked in the stop too.
    let (guard, changed) = running_callers::signature_guard(&parts);
    let mut generations: Vec<Vec<u32>> = Vec::with_capacity(prepared.len());
    after.changes += 1;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let change = after.changes;
    // This change's code in the pool: its functions, thunks and islands.
    let block = (layouts[0].code, pool.addr + c + code_len);
    for (((p, writes), layout), signatures) in prepared.iter().zip(&planned).zip(&layouts).zip(&signatures) {
        let version = |w: &EntryWork, generation: u32| journal::Generation {
            block: Some(block),
            signature: signatures.get(&w.name).map(|s| s.shown.clone()),
            signature_key: signatures.get(&w.name).map(signature::Signature::key),
            generation,
            change,
            at: now,
            source: p.obj.source.clone(),
            code: w.new_addr,
            slot_value: w.entry_addr,
            size: p
                .linked
                .functions
                .iter()
                .find(|f| f.replaces == Some(w.orig))
                .map_or(0, |f| f.size),
            calls: p.calls.get(&w.name).cloned().unwrap_or_default(),
            signature_calls: guard
                .iter()
                .filter(|(caller, _)| *caller == w.name)
                .map(|(_, callee)| callee.clone())
                .collect(),
        };
        let mut unit_generations = Vec::with_capacity(p.work.len());
        for (w, write) in p.work.iter().zip(writes) {
            let generation = match &w.kind {
                EntryKind::Slot { .. } => {
                    let record = after
                        .patches
                        .iter_mut()
                        .find(|p| p.orig_addr == w.orig)
                        .expect("journal record of a slot");
                    record.current_addr = w.new_addr;
                    record.generation += 1;
                    // Said again by the check after the redirect.
                    record.unreached = None;
                    record.old_code_kept = None;
                    record.assumed = w.assumed.0;
                    // A body edit of a caller whose code a signature change
                    // made still calls the callee the new way: the revert
                    // check must still see it when that generation's pool
                    // is gone.
                    let mut generation = version(w, record.generation);
                    for callee in record
                        .history
                        .last()
                        .map(|g| g.signature_calls.clone())
                        .unwrap_or_default()
                    {
                        if generation.calls.contains(&callee) && !generation.signature_calls.contains(&callee) {
                            generation.signature_calls.push(callee);
                        }
                    }
                    record.history.push(generation);
                    // `revert --last` goes back this far; older generations stay
                    // in the pool, unrecorded.
                    let keep = record.history.len().saturating_sub(journal::HISTORY);
                    record.history.drain(..keep);
                    record.generation
                }
                EntryKind::Redirect {
                    redirect, slot_offset, ..
                } => {
                    after.patches.push(PatchRecord {
                        name: w.name.clone(),
                        orig_addr: w.orig,
                        current_addr: w.new_addr,
                        generation: 1,
                        method: redirect.name().into(),
                        span_start: write.addr,
                        original: hex(&write.before),
                        patched: hex(&write.bytes),
                        slot: layout.read_only + slot_offset,
                        assumed: w.assumed.0,
                        history: vec![version(w, 1)],
                        unreached: None,
                        old_code_kept: None,
                    });
                    1
                }
            };
            unit_generations.push(generation);
        }
        generations.push(unit_generations);
        let records = added_records(p, layout, change);
        // A cold part is placed anew with its hot part: the newest copy is
        // the one lookups find, and the older one's record would keep its
        // pool, and its hot part's dead generation, mapped for good.
        after
            .added
            .retain(|old| !(names::is_cold_part(&old.name) && records.iter().any(|new| new.same_symbol(old))));
        after.added.extend(records);
        after.added.extend(p.aliases.iter().map(|a| journal::AddedRecord {
            change: Some(change),
            ..a.clone()
        }));
    }
    if let Some(blocks) = &mut after.code_blocks {
        blocks.push(block);
    }
    let all_work: Vec<&EntryWork> = prepared.iter().flat_map(|p| &p.work).collect();
    let all_planned: Vec<&PlannedWrite> = planned.iter().flatten().collect();
    // Written ahead: the records this patch touches (the others stay as
    // they are), the regions and what it adds.
    let touched_entries: foldhash::HashSet<u64> = all_work.iter().map(|w| w.orig).collect();
    let touched = journal::State {
        patches: after
            .patches
            .iter()
            .filter(|p| touched_entries.contains(&p.orig_addr))
            .map(|p| journal::PatchRecord {
                name: p.name.clone(),
                method: p.method.clone(),
                original: p.original.clone(),
                patched: p.patched.clone(),
                history: p.history.last().cloned().into_iter().collect(),
                unreached: None,
                old_code_kept: None,
                ..*p
            })
            .collect(),
        regions: after.regions.clone(),
        added: after.added.clone(),
        changes: after.changes,
        code_blocks: after.code_blocks.clone(),
    };
    let intent = journal::Intent {
        by: "patch".into(),
        after: touched,
        history_appended: true,
        writes: all_work
            .iter()
            .zip(&all_planned)
            .map(|(w, p)| journal::IntentWrite {
                record: w.orig,
                addr: p.addr,
                bytes: hex(&p.bytes),
            })
            .collect(),
    };
    if let Err(e) = target.journal.begin(&target.journal_dir, intent) {
        abandon(target, &before, false, Undo::default());
        return Err(e);
    }
    failpoint("patch-after-intent");

    // The new code and data go into unused pool memory: nothing runs it
    // until the entries are redirected, so the threads keep running.
    let mut filled = Undo::default();
    // Each unit's read-only part as written: the symbol file for
    // debuggers takes the unwind table from it.
    let mut read_only_parts: Vec<Vec<u8>> = Vec::with_capacity(prepared.len());
    let fill = prepared.iter().zip(&layouts).try_for_each(|(p, layout)| {
        let mut parts = p.linked.finish(layout, &layouts)?;
        fill_stubs(&mut parts[0], layout, &p.work)?;
        let writes: Vec<(u64, &[u8])> = [
            (layout.code, &parts[0]),
            (layout.read_only, &parts[1]),
            (layout.writable, &parts[2]),
        ]
        .into_iter()
        .filter(|(_, bytes)| !bytes.is_empty())
        .map(|(addr, bytes)| (addr, bytes.as_slice()))
        .collect();
        let written = filled.write_all(process, &writes, &|| ());
        read_only_parts.push(std::mem::take(&mut parts[1]));
        written
    });
    if let Err(e) = fill {
        abandon(target, &before, true, filled);
        return Err(e);
    }
    failpoint("patch-after-fill");
    // Before the redirect, so the new code is never run without it (the
    // calls count in the `write` stage).
    let handed: Vec<journal::FrameRecord> = tables.iter().chain(&earlier_tables).copied().collect();
    let (taken, mut unwind_problem) = match &unwinder {
        Some(u) => crate::unwind::register(process, u, &handed),
        None => (Vec::new(), None),
    };
    // This patch's tables come first: a problem after them is the earlier
    // ones', told apart.
    let (registered, earlier_registered): (Vec<journal::FrameRecord>, Vec<journal::FrameRecord>) = taken
        .into_iter()
        .partition(|f| tables.iter().any(|t| t.eh_frame == f.eh_frame));
    let mut hand_over_warning = None;
    if registered.len() == tables.len() && !registered.iter().any(|f| f.uncertain) {
        hand_over_warning = unwind_problem.take().map(|why| {
            format!(
                "the unwind information of earlier patches, made while the process had no unwinder, could not all be handed to it ({why}): backtrace() may stop at their code"
            )
        });
    }
    {
        let frames = &mut after.regions[pool_index].frames;
        frames.retain(|f| !tables.iter().any(|t| t.eh_frame == f.eh_frame));
        frames.extend(registered.iter().copied());
    }
    for f in after.regions.iter_mut().flat_map(|r| r.frames.iter_mut()) {
        if earlier_tables.iter().any(|t| t.eh_frame == f.eh_frame) {
            *f = match earlier_registered.iter().find(|r| r.eh_frame == f.eh_frame) {
                Some(r) => *r,
                // Its call returned without taking it, or was not made.
                None => journal::FrameRecord {
                    uncertain: false,
                    pending: true,
                    ..*f
                },
            };
        }
    }
    // A failure from here on takes the tables back first: the bytes they
    // are in are put back, or unmapped, with the rest.
    let pinned = after.regions[pool_index].pinned.clone();
    // Earlier patches' tables handed over here go back too: the journal
    // kept from before says they are pending (held by no unwinder).
    let taken_back: Vec<journal::FrameRecord> = registered.iter().chain(&earlier_registered).copied().collect();
    let abandon = |target: &mut Target, before: &journal::State, written: bool, filled: Undo| {
        match crate::unwind::deregister(process, unwinder.as_ref(), &taken_back) {
            // Nothing constructed in the pool: it goes back as it was.
            Ok(()) if pinned.is_none() => abandon(target, before, written, filled),
            _ => {
                // The unwinder may hold them: their pool stays, in use, and
                // they are never taken back.
                let mut kept = before.clone();
                let mut pool = target.journal.regions[pool_index].clone();
                pool.code_used = pool.code_used.max(c + code_len);
                pool.ro_used = pool.ro_used.max(r + ro_len);
                pool.rw_used = pool.rw_used.max(w + rw_len);
                pool.frames.extend(
                    registered
                        .iter()
                        .map(|f| journal::FrameRecord { uncertain: true, ..*f }),
                );
                pool.pinned.clone_from(&pinned);
                match kept.regions.iter_mut().find(|r| r.addr == pool.addr) {
                    Some(r) => *r = pool,
                    None => kept.regions.push(pool),
                }
                for f in kept.regions.iter_mut().flat_map(|r| r.frames.iter_mut()) {
                    if earlier_registered.iter().any(|e| e.eh_frame == f.eh_frame) {
                        *f = journal::FrameRecord {
                            pending: false,
                            uncertain: true,
                            ..*f
                        };
                    }
                }
                let _ = target.journal.commit(&target.journal_dir, kept);
            }
        }
    };
    // New code an exception may pass through must not run without its
    // unwind information: the first exception would end the program.
    let unregistered = unwind_problem.is_some() || registered.iter().any(|f| f.uncertain);
    if unregistered {
        let exposed: Vec<String> = prepared
            .iter()
            .flat_map(|p| {
                let placed: Vec<usize> = p.linked.functions.iter().map(|f| f.symbol).collect();
                crate::select::exception_exposed(p.obj, &placed)
            })
            .collect();
        if !exposed.is_empty() {
            abandon(target, &before, true, filled);
            return Err(PatchError::Refused {
                what: format!(
                    "the new code's unwind information could not be handed to the process's unwinder ({}), and C++ exceptions may be thrown, caught or passed through {}: the first exception there would end the program (std::terminate); nothing was redirected and the program runs on unchanged: patch again, or restart it to change them",
                    unwind_problem.as_deref().unwrap_or("its call did not return"),
                    exposed.join(", ")
                ),
            });
        }
    }
    if !constructors.is_empty() {
        if let Err(why) = crate::unwind::construct(process, &constructors) {
            abandon(target, &before, true, filled);
            return Err(PatchError::Refused {
                what: format!(
                    "the new global{} {} could not be constructed ({why}); nothing was redirected and the program runs on unchanged (the pool stays mapped: what the initializer did stays done)",
                    number(&constructed, "", "s"),
                    constructed.join(", ")
                ),
            });
        }
    }
    let hooks_start = Instant::now();
    let mut hook_runs = crate::hooks::run(
        process,
        &crate::hooks::all_hooks(target, crate::hooks::Phase::BeforePatch),
        crate::hooks::Phase::BeforePatch,
    );
    let before_hooks_time = hooks_start.elapsed();
    let mut hooks_time = before_hooks_time;

    // The redirect: the only moment the program stands still. A function
    // patched before only needs its slot updated: one aligned 8-byte store
    // that running threads see whole, so nothing is stopped for it.
    let writes: Vec<(u64, &[u8])> = all_planned.iter().map(|w| (w.addr, w.bytes.as_slice())).collect();
    if displaced_area.is_some() {
        copy_pages_ahead(process, &writes);
    }
    let replaced = match Undo::read_current(process, &writes) {
        Ok(bytes) => bytes,
        Err(e) => {
            abandon(target, &before, true, filled);
            return Err(e);
        }
    };
    failpoint("patch-before-stop");
    // A caller's call found running is looked for again, the threads
    // resumed in between, until it returns or the patience is over.
    let patience = Instant::now() + running_callers::CALLER_PATIENCE;
    let (stop_start, mut stopped, moved) = loop {
        let stop_start = Instant::now();
        let (mut stopped, moved) = match displaced_area {
            Some(area) => match stop_when_clear(process, &all_work, area, &mut filled) {
                Ok((s, moved)) => (Some(s), moved),
                Err(e) => {
                    abandon(target, &before, true, filled);
                    return Err(e);
                }
            },
            None if !guard.is_empty() || !changed.is_empty() => match process.stop() {
                Ok(s) => (Some(s), Vec::new()),
                Err(e) => {
                    abandon(target, &before, true, filled);
                    return Err(e.into());
                }
            },
            None => (None, Vec::new()),
        };
        let Some(s) = stopped.as_mut().filter(|_| !guard.is_empty() || !changed.is_empty()) else {
            break (stop_start, stopped, moved);
        };
        let positions = running_callers::positions_of(s.as_ref());
        let names: Vec<&str> = guard.iter().map(|(caller, _)| caller.as_str()).collect();
        let running = running_callers::running_at(target, &names, &positions);
        let refused = match running.first() {
            Some((caller, threads)) => {
                let callee = guard.iter().find(|(c, _)| c == caller).map_or("", |(_, callee)| callee);
                Some(running_callers::refusal(caller, callee, threads))
            }
            None => running_callers::program_callers_running(target, &changed, &positions),
        };
        let Some(what) = refused else {
            break (stop_start, stopped, moved);
        };
        put_back(s.as_mut(), &moved);
        drop(stopped);
        if Instant::now() >= patience {
            abandon(target, &before, true, filled);
            return Err(PatchError::Refused { what });
        }
        std::thread::sleep(running_callers::CALLER_RECHECK);
    };
    if !moved.is_empty() {
        failpoint("patch-after-move");
    }
    let stopped_at = Instant::now();
    let mut undo = Undo::default();
    if let Err(e) = undo.write_all_over(process, &writes, replaced, &|| failpoint("patch-after-first-write")) {
        undo.roll_back(process);
        // Threads moved into copies go back where they were before the
        // pool that holds the copies may be unmapped.
        if let Some(s) = stopped.as_mut() {
            put_back(s.as_mut(), &moved);
        }
        drop(stopped);
        abandon(target, &before, true, filled);
        return Err(e);
    }
    // Where the threads are, for telling whether the new code can run.
    let positions: Vec<ThreadPosition> = match &stopped {
        Some(s) => running_callers::positions_of(s.as_ref()),
        None => running_callers::positions_now(process),
    };
    if let Some(stopped) = stopped {
        stopped.resume()?;
    }
    let resumed = Instant::now();
    let paused = if first_redirects || !guard.is_empty() || !changed.is_empty() {
        resumed - stop_start
    } else {
        Duration::ZERO
    };

    // The change is complete: the journal adopts the state written ahead.
    let check_start = Instant::now();
    // Where this command's remote calls found the code they use: the
    // next command takes it from the journal instead of searching.
    target.journal.code_hints = process.code_hints().or(target.journal.code_hints);
    let unsaved = target.journal.commit_after_change(&target.journal_dir, after);
    let hooks_start = Instant::now();
    hook_runs.extend(crate::hooks::run(
        process,
        &crate::hooks::all_hooks(target, crate::hooks::Phase::AfterPatch),
        crate::hooks::Phase::AfterPatch,
    ));
    hooks_time += hooks_start.elapsed();
    // Profilers name the new code (perf reads /tmp/perf-PID.map).
    let mut map_lines = String::new();
    for ((p, layout), generations) in prepared.iter().zip(&layouts).zip(&generations) {
        for f in &p.linked.functions {
            let generation = p
                .work
                .iter()
                .zip(generations)
                .find(|(w, _)| f.replaces == Some(w.orig))
                .map(|(_, g)| format!(" [relive generation {g}]"))
                .unwrap_or_else(|| " [relive added]".to_string());
            map_lines.push_str(&crate::perf_map::line(
                layout.code + f.offset,
                f.size.max(1),
                &format!("{}{generation}", f.name),
            ));
        }
        // The register-keeping thunks, named as in the symbol files.
        for (name, t) in &p.linked.thunk_frames {
            map_lines.push_str(&crate::perf_map::line(
                layout.code + t.offset,
                t.len.max(1),
                &format!("{name}.relive_thunk"),
            ));
        }
    }
    let map_warning = crate::perf_map::append(process.pid(), target.journal.start_time, &map_lines)
        .err()
        .map(|e| {
            format!(
                "could not name the new code for profilers in {}: {e}",
                crate::perf_map::path(process.pid()).display()
            )
        });
    // Debuggers see the new code through a symbol file per unit (`relive
    // gdb`): best effort, like the profiler's map.
    let debuggers_start = Instant::now();
    // Each unit's file, saved in the state directory (`relive gdb`), and
    // whether it is listed in the process too (it has DWARF).
    let mut symbol_files: Vec<SymbolFile> = Vec::new();
    for (k, ((p, layout), read_only)) in prepared.iter().zip(&layouts).zip(&read_only_parts).enumerate() {
        if !p.obj.has_debug_info() && p.linked.unwind.is_none() {
            continue;
        }
        let data_address = |i: usize| link::live_address(p.obj, i, &target.resolver, &p.base_names);
        let placed = crate::debug_file::Placed {
            obj: p.obj,
            linked: &p.linked,
            layout,
            read_only,
            data_address: &data_address,
        };
        let bytes = crate::debug_file::write(&placed);
        symbol_files.push(SymbolFile {
            unit: k,
            code: layout.code,
            len: p.linked.code.len() as u64,
            bytes,
            listed: p.obj.has_debug_info(),
        });
    }
    let symbol_warning = tell_debuggers(target, pool_index, change, &symbol_files);
    let debuggers_time = debuggers_start.elapsed();
    // The pool as it is now: with the symbol files just listed.
    let record = target.journal.regions[pool_index].clone();
    // Whether each new function can run: part of what the command does,
    // so inside its time.
    // Each thread's stack read and walked once, for every unit's
    // questions (`None`: the process's mappings could not be read).
    let stacks = reach::Stacks::read(target.process, &positions, &target.journal.unwind_tables());
    // The files of code this patch superseded come off the debuggers'
    // lists (unless a thread is in it): best effort, like listing.
    let unlisting_start = Instant::now();
    let in_use = |start: u64, end: u64| stacks.as_ref().is_none_or(|s| s.any_in(start, end));
    let maps = stacks.as_ref().map(|s| s.maps.as_slice());
    let unlisting_warning = crate::debugger::keep_to_live(target.process, &target.journal, (&in_use, maps), false)
        .err()
        .map(|why| format!("the symbol files of code this patch superseded stay listed for debuggers ({why}): gdb may stop in that code too"));
    let debuggers_time = debuggers_time + unlisting_start.elapsed();
    let mut reaches: Vec<HashMap<u64, Reach>> = prepared
        .iter()
        .zip(&layouts)
        .map(|(p, layout)| reachability(target, p, layout, stacks.as_ref()))
        .collect();
    for (p, reaches) in prepared.iter().zip(&mut reaches) {
        if let Some(unit) = units.iter().find(|u| std::ptr::eq(u.obj, p.obj)) {
            // What runs: the code the patch replaces, or for a function no
            // call reaches, the build's (see `note_lines_moved`).
            let (built, bases): (Vec<&ObjectFile>, Vec<&ObjectFile>) = (
                unit.built.iter().copied().collect(),
                unit.base.iter().copied().collect(),
            );
            note_lines_moved(p.obj, (&built, &bases), &p.linked, reaches);
            // What runs now is the code the patch replaces; where no
            // compile of it is known (a start-up catch-up of files edited
            // before relive started: a Lua re-check's note left the
            // inlined edit out), the program's own, as its debug
            // information describes it.
            let running = bases.first().or(built.first()).copied();
            note_inlined_in_running(target, running, &p.linked, reaches);
        }
    }
    // Kept with each redirect, for `status`: a `main` whose new code can
    // never run was listed there like any patch.
    let mut unreached_said = false;
    for (p, reaches) in prepared.iter().zip(&reaches) {
        for w in &p.work {
            let reach = reaches.get(&w.orig);
            let note = reach.filter(|r| !r.reachable).and_then(|r| r.note.clone());
            let kept = reach.filter(|r| r.for_good).and_then(|r| r.note.clone());
            if let Some(record) = target.journal.patches.iter_mut().find(|r| r.orig_addr == w.orig) {
                unreached_said |= note.is_some() || kept.is_some();
                record.unreached = note;
                record.old_code_kept = kept;
            }
        }
    }
    if unreached_said {
        // Best effort, like the symbol files': the patch is made either way.
        let _ = target.journal.save(&target.journal_dir);
    }
    // A full pool is where superseded generations pile up: with the patch
    // made, the pools only they fill go.
    let reclaim_start = Instant::now();
    let mut reclaimed = crate::reclaim::Reclaimed::default();
    let mut reclaim_warnings = Vec::new();
    if new_pool {
        match crate::reclaim::superseded_pools(target, &mut reclaim_warnings) {
            Ok(r) => reclaimed = r,
            Err(e) => reclaim_warnings.push(format!(
                "the pools that hold only superseded code could not be checked for freeing ({e}); they stay mapped"
            )),
        }
    }
    let reclaim_time = reclaim_start.elapsed();
    let done = Instant::now();
    let timing = Timing {
        link: micros(link_done - started),
        alloc: micros(alloc_done - alloc_start),
        stop: micros(stopped_at - stop_start),
        check: micros(done - check_start)
            .saturating_sub(micros(hooks_time - before_hooks_time))
            .saturating_sub(micros(debuggers_time))
            .saturating_sub(micros(reclaim_time)),
        reclaim: micros(reclaim_time),
        hooks: micros(hooks_time),
        debuggers: micros(debuggers_time),
        write: (micros(stop_start - alloc_done) + micros(check_start - stopped_at))
            .saturating_sub(micros(before_hooks_time)),
        total: micros(done - started) + earlier.read + earlier.diff + earlier.open,
        ..earlier
    };
    let mut reports = prepared
        .iter()
        .zip(&layouts)
        .zip(generations)
        .zip(reaches)
        .enumerate()
        .map(|(k, (((p, layout), generations), mut reaches))| {
            let applied = p
                .work
                .iter()
                .zip(generations)
                .map(|(w, generation)| Applied {
                    name: crate::names::readable(&w.name),
                    symbol: w.name.clone(),
                    orig_addr: w.orig,
                    current_addr: w.new_addr,
                    generation,
                    method: match &w.kind {
                        EntryKind::Slot { .. } => Method::Slot,
                        EntryKind::Redirect { redirect, .. } => Method::of(redirect),
                    },
                    preserves: w.keeps.names(),
                    entry_addr: w.entry_addr,
                    reach: reaches.remove(&w.orig).unwrap_or_else(reach::unknown),
                })
                .collect();
            // A cold part comes with its hot part's new code, placed anew
            // every time: not something the edit added.
            let added = p
                .linked
                .functions
                .iter()
                .filter(|f| f.replaces.is_none() && !crate::names::is_cold_part(&f.name))
                .map(|f| Added {
                    name: crate::names::readable(&f.name),
                    symbol: f.name.clone(),
                    addr: layout.code + f.offset,
                })
                .collect();
            let added_variables = p
                .linked
                .data
                .iter()
                .filter(|d| is_new_variable(p.obj, d))
                .map(|d| Added {
                    // A function-local static by its function (`calls
                    // (used by f)`), not GCC's number (`calls.0`).
                    name: d
                        .symbol
                        .map_or_else(|| crate::names::readable(&d.name), |i| crate::diff::static_label(p.obj, i)),
                    symbol: d.name.clone(),
                    addr: p.linked.address(layout, d.value),
                })
                .collect();
            let data = p
                .linked
                .data
                .iter()
                .map(|d| DataUse {
                    name: crate::names::readable(&d.name),
                    symbol: d.name.clone(),
                    addr: p.linked.address(layout, d.value),
                    action: d.action,
                })
                .collect();
            let all_registered = p.linked.unwind_tables().all(|u| {
                registered
                    .iter()
                    .any(|f| f.eh_frame == layout.read_only + u.eh_frame && !f.uncertain)
            });
            let unwind = match p.linked.unwind {
                None => UnwindStatus::None,
                Some(_) if unwinder.is_none() => UnwindStatus::NoUnwinder,
                Some(_) if all_registered => UnwindStatus::Registered,
                Some(_) => UnwindStatus::Failed,
            };
            let unwind_warning = match unwind {
                UnwindStatus::Failed => Some(format!(
                    "the new code's unwind information was not handed to the process's unwinder ({}): an exception thrown through it ends the program, and backtrace() stops there",
                    unwind_problem.as_deref().unwrap_or("an earlier table failed")
                )),
                UnwindStatus::NoUnwinder => no_unwinder_why.as_ref().map(|why| {
                    format!(
                        "{NO_UNWINDER}: {why}. Until a later patch loads one, backtrace() and thread cancellation stop at the new code (gdb unwinds through it)"
                    )
                }),
                _ => None,
            };
            PatchReport {
                unwind,
                constructed: p.constructed.iter().map(|n| crate::names::readable(n)).collect(),
                applied,
                added,
                added_variables,
                data,
                timing_us: timing.clone(),
                pause_us: micros(paused),
                alloc_pause_us: micros(alloc_pause),
                threads_moved: if k == 0 { moved.len() } else { 0 },
                region: record.clone(),
                warnings: target
                    .warnings
                    .iter()
                    .chain(&p.linked.warnings)
                    .chain(&p.folded)
                    .chain(&map_warning)
                    .chain(&unsaved)
                    .chain(&unwind_warning)
                    .chain(&symbol_warning)
                    .chain(unlisting_warning.iter().filter(|_| k == 0))
                    .chain(&hand_over_warning)
                    .chain(reclaim_warnings.iter().filter(|_| k == 0))
                    .cloned()
                    .collect(),
                reclaimed: if k == 0 {
                    std::mem::take(&mut reclaimed)
                } else {
                    Default::default()
                },
                hooks: if k == 0 {
                    std::mem::take(&mut hook_runs)
                } else {
                    Vec::new()
                },
            }
        })
        .collect::<Vec<PatchReport>>();
    // A static function added beside the program's of the same name in
    // another file: this object is not of that file (a copy compiled under
    // another name, without its --base), so nothing replaced the
    // program's, and nothing of the program calls the new one.
    // Not for an object of one of the program's files (its statics are
    // the program's under its name): a clone of a header's `static inline`
    // function (`emalloc_real.constprop.0`) is one more file's own copy,
    // beside the other files' (a gawk trial was told to patch with
    // awkgram.c's object as base).
    for (report, p) in reports.iter_mut().zip(&prepared) {
        let file = p.obj.source.as_deref();
        // Asked only when a static was added beside another file's: the
        // program's statics are gathered for it.
        let of_a_program_file = std::cell::OnceCell::new();
        let of_a_program_file = || {
            *of_a_program_file.get_or_init(|| {
                file.is_some_and(|f| {
                    use link::Resolver;
                    p.obj
                        .symbols
                        .iter()
                        .filter(|s| {
                            s.local && matches!(s.kind, crate::objfile::Kind::Function | crate::objfile::Kind::Object)
                        })
                        .any(|s| target.resolver.local(f, &s.name).is_some())
                })
            })
        };
        for a in &report.added {
            let local = p.obj.symbols.iter().any(|s| s.name == a.symbol && s.local);
            if let Some(other) = local
                .then(|| target.resolver.static_elsewhere(&a.symbol, file))
                .flatten()
                .filter(|_| !of_a_program_file())
            {
                report.warnings.push(format!(
                    "{} was added beside the program's own, not in its place: the program's is static in {other}, this object is of {}, and the program's code still calls its own. To replace the program's, patch with the last object of {other} as --base",
                    a.name,
                    file.unwrap_or("a file it does not name")
                ));
            }
        }
    }
    for (k, entries) in shared.iter().enumerate() {
        for &(orig, owner) in entries {
            let Some(applied) = reports[owner].applied.iter().find(|a| a.orig_addr == orig).cloned() else {
                continue;
            };
            let source = prepared[owner].obj.source.as_deref().unwrap_or("another file");
            reports[k].warnings.push(format!(
                "{} is one function in the program, compiled in several of these files (an inline function or template): redirected once, to the new copy from {source}",
                applied.name
            ));
            reports[k].applied.push(applied);
        }
    }
    Ok(reports)
}

/// Each unit prepared (linked), in `units`' order, a unit that uses what
/// another adds after that one: it links against the other's region
/// ([`link::Value::Unit`]), so the files go in as one step (they went in
/// one by one, and a signature change saved with its callers went in
/// apart from them: a PCRE2 trial). A unit whose missing symbol no other
/// unit adds fails as alone.
fn prepare_in_order<'o>(
    target: &mut Target,
    units: &[Unit<'o>],
    home: &mut Option<Option<u64>>,
) -> Result<Vec<Prepared<'o>>> {
    let mut prepared: Vec<Option<Prepared<'o>>> = units.iter().map(|_| None).collect();
    // What the prepared units add that the program lacks: name -> place.
    let mut added: HashMap<String, link::Value> = HashMap::new();
    let mut left = units.len();
    while left > 0 {
        let mut waiting = None;
        for (k, unit) in units.iter().enumerate() {
            if prepared[k].is_some() {
                continue;
            }
            let batch = |name: &str| added.get(name).copied();
            match prepare(target, unit, home, &batch) {
                Ok(p) => {
                    // What it adds, for the others (a patch of one file
                    // has none to tell).
                    if units.len() > 1 {
                        for (name, value) in exports(target, k, &p) {
                            added.entry(name).or_insert(value);
                        }
                    }
                    prepared[k] = Some(p);
                }
                // Another unit not prepared yet adds it: after that one.
                Err(e @ PatchError::Link(link::LinkError::MissingSymbol { .. }))
                    if units.iter().enumerate().any(|(j, other)| {
                        j != k
                            && prepared[j].is_none()
                            && missing_symbol(&e).is_some_and(|s| defines_global(other.obj, s))
                    }) =>
                {
                    waiting.get_or_insert(e);
                }
                Err(e) => return Err(e),
            }
        }
        let now_left = prepared.iter().filter(|p| p.is_none()).count();
        if now_left == left {
            // Each waits for another (two files that add what the other
            // uses): linked against each other's places, or what the
            // first lacks.
            let remaining: Vec<usize> = (0..units.len()).filter(|&k| prepared[k].is_none()).collect();
            if let (Some(_), true) = (&waiting, remaining.len() > 1) {
                if let Some(linked) = prepare_each_other(target, units, home, &added, &remaining)? {
                    for (k, p) in linked {
                        prepared[k] = Some(p);
                    }
                    break;
                }
            }
            return Err(waiting.unwrap_or_else(|| PatchError::Refused {
                what: "the files could not be linked in any order".into(),
            }));
        }
        left = now_left;
    }
    Ok(prepared.into_iter().flatten().collect())
}

/// The units `remaining` prepared against each other, when each uses
/// what another of them adds (`new_a` in one file calls `new_b` in the
/// other, and `new_b` calls `new_a`): no order links them, so each is
/// linked first with a stand-in place for what the others add (a
/// distinct one per symbol, in the part it goes in), which tells where
/// each puts what it adds, then again against those places. The second
/// link must put everything the others use where the first did, or
/// nothing is returned (and the caller says what the first unit lacks).
/// Two new functions that called each other across files were never
/// patched, although saved together.
fn prepare_each_other<'o>(
    target: &mut Target,
    units: &[Unit<'o>],
    home: &mut Option<Option<u64>>,
    added: &HashMap<String, link::Value>,
    remaining: &[usize],
) -> Result<Option<Vec<(usize, Prepared<'o>)>>> {
    let mut stand_ins = added.clone();
    let mut distinct = 0u64;
    for &j in remaining {
        let obj = units[j].obj;
        for s in obj.symbols.iter().filter(|s| is_global_definition(s)) {
            if !program_lacks(target, &s.name) {
                continue;
            }
            let part = match (s.kind, obj.section(s.section)) {
                (crate::objfile::Kind::Function, _) => link::Part::Code,
                (_, Some(sec)) if sec.writable => link::Part::Writable,
                _ => link::Part::ReadOnly,
            };
            stand_ins.entry(s.name.clone()).or_insert_with(|| {
                distinct += 8;
                link::Value::Unit(j, part, distinct)
            });
        }
    }
    let mut places = added.clone();
    for &k in remaining {
        let first = prepare(target, &units[k], home, &|name: &str| stand_ins.get(name).copied())?;
        for (name, value) in exports(target, k, &first) {
            places.entry(name).or_insert(value);
        }
    }
    let mut linked = Vec::new();
    for &k in remaining {
        let Ok(p) = prepare(target, &units[k], home, &|name: &str| places.get(name).copied()) else {
            return Ok(None);
        };
        if exports(target, k, &p)
            .iter()
            .any(|(name, value)| places.get(name) != Some(value))
        {
            return Ok(None);
        }
        linked.push((k, p));
    }
    Ok(Some(linked))
}

/// Whether the program (with what earlier patches added) has no global
/// `name`.
fn program_lacks(target: &Target, name: &str) -> bool {
    use link::Resolver;
    target.resolver.global(name).is_none() && target.resolver.added(None, name, false, None).is_none()
}

/// The symbol a link error says is missing.
fn missing_symbol(e: &PatchError) -> Option<&str> {
    match e {
        PatchError::Link(link::LinkError::MissingSymbol { symbol, .. }) => Some(symbol),
        _ => None,
    }
}

/// Whether `obj` defines a global `name` (a function or variable with a
/// place in it).
fn defines_global(obj: &ObjectFile, name: &str) -> bool {
    obj.symbols.iter().any(|s| s.name == name && is_global_definition(s))
}

/// Whether `s` is a global with a place in its object (a function or
/// variable it defines).
fn is_global_definition(s: &crate::objfile::Symbol) -> bool {
    !s.local && (s.bytes.is_some() || s.size > 0)
}

/// The globals unit `k` (prepared as `p`) adds that the program lacks,
/// each with its place: what other units of the patch may use.
fn exports(target: &Target, k: usize, p: &Prepared) -> Vec<(String, link::Value)> {
    // New data is in the unit's region; kept data is the program's.
    let in_unit = |value: link::Value| match value {
        link::Value::Region(part, offset) => Some(link::Value::Unit(k, part, offset)),
        _ => None,
    };
    let functions = p
        .linked
        .functions
        .iter()
        .filter(|f| f.replaces.is_none())
        .map(|f| (f.symbol, Some(link::Value::Unit(k, link::Part::Code, f.offset))));
    let data = p.linked.data.iter().filter_map(|d| Some((d.symbol?, in_unit(d.value))));
    functions
        .chain(data)
        .filter_map(|(i, value)| {
            let (sym, value) = (p.obj.symbols.get(i)?, value?);
            (!sym.local && program_lacks(target, &sym.name)).then(|| (sym.name.clone(), value))
        })
        .collect()
}

/// Why the units would make one variable twice, if they would: a new
/// weak variable (a function-local static of an inline function, a
/// template's static member: one variable of the whole program, which
/// the linker merges) that several units bring. Each unit places its new
/// data in its own part of the pool, so each file's new code would count
/// in a copy of its own (a C++ re-check: a header edit gave `inline int
/// next_id() { static int id; ... }` one `id` per file, and the program
/// printed `a=17 b=17` where a fresh build prints `a=1 b=2`).
fn one_variable_made_twice(prepared: &[Prepared]) -> Option<String> {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (k, p) in prepared.iter().enumerate() {
        for d in p.linked.data.iter().filter(|d| d.action == link::DataAction::New) {
            let Some(sym) = d.symbol.and_then(|i| p.obj.symbols.get(i)) else {
                continue;
            };
            if !(sym.weak || sym.unique) || sym.local {
                continue;
            }
            match seen.get(sym.name.as_str()) {
                Some(&first) if first != k => {
                    return Some(format!(
                        "{} is a new variable of the whole program (a static of an inline function or a template's member), and {} and {} each bring it: patched, each file's new code would count in a copy of its own; restart the program to take it in, or make the function that has it a non-inline one",
                        crate::names::readable(&sym.name),
                        prepared[first].obj.source.as_deref().unwrap_or(&prepared[first].obj.path),
                        p.obj.source.as_deref().unwrap_or(&p.obj.path),
                    ));
                }
                Some(_) => {}
                None => {
                    seen.insert(&sym.name, k);
                }
            }
        }
    }
    None
}

/// An inline function or template instantiation (COMDAT) compiled in
/// several of the units is one function in the program, the copy the
/// linker kept: its entry is redirected once, to the first unit's new
/// copy (the same code, by the one-definition rule). Two redirects of one
/// entry would each record the other's jump as the original. Returns, per
/// unit, the entries left to another unit: `(entry, that unit)`.
fn redirect_once(prepared: &mut [Prepared]) -> Vec<Vec<(u64, usize)>> {
    let mut owner: HashMap<u64, usize> = HashMap::new();
    prepared
        .iter_mut()
        .enumerate()
        .map(|(k, p)| {
            let mut left = Vec::new();
            p.work.retain(|w| match owner.get(&w.orig) {
                Some(&first) => {
                    left.push((w.orig, first));
                    false
                }
                None => {
                    owner.insert(w.orig, k);
                    true
                }
            });
            left
        })
        .collect()
}

/// One object's share of a patch: functions `functions` (symbol indices
/// of `obj`), over `base`, the previous compile of the same source (what
/// the program runs), which names GCC-renumbered statics reliably.
pub struct Unit<'o> {
    pub obj: &'o ObjectFile,
    pub base: Option<&'o ObjectFile>,
    /// The compile of the file that the program ran when relive first
    /// looked (its build, verified), once `base` is a later one: what the
    /// new code of a function no call can run is compared with, for a
    /// change of line numbers alone (the code that runs is that one's,
    /// when no patch of it could run either).
    pub built: Option<&'o ObjectFile>,
    pub functions: &'o [usize],
    /// Functions of `obj` whose signature differs from the code that runs
    /// though not from `base`'s: code another command reverted, patched
    /// again; an edit made before relive started, caught up (their
    /// callers' running calls are checked as for a change the base shows).
    pub changed_signatures: &'o [String],
}

/// When the base's version of some function to patch is not what runs
/// (`base_check`): whether the process runs the new object's version of
/// every one of them instead (the same patch applied before: a play run
/// twice), their names. A change only in data the code refers to (a
/// literal, a jump table) compares equal both ways, and is patched: the
/// base must differ in one of the functions themselves.
fn already_applied(
    target: &Target,
    obj: &ObjectFile,
    functions: &[usize],
    base_check: &crate::verify::Verification,
) -> Option<Vec<String>> {
    let names: Vec<&str> = functions.iter().map(|&i| obj.symbols[i].name.as_str()).collect();
    if !base_check.differs.iter().any(|(n, _)| names.contains(&n.as_str())) {
        return None;
    }
    let runs_new = crate::verify::functions_against_process(target, obj, |n| names.contains(&n));
    (runs_new.differs.is_empty() && runs_new.same.len() == names.len())
        .then(|| names.iter().map(|n| n.to_string()).collect())
}

/// A unit linked and its entries planned, before anything is placed.
struct Prepared<'o> {
    obj: &'o ObjectFile,
    /// The functions each function it places calls directly (see
    /// [`journal::Generation::calls`]).
    calls: HashMap<String, Vec<String>>,
    /// New globals its code uses that its static initializers construct
    /// (they are run before the redirect).
    constructed: Vec<String>,
    /// The object's statics by their names in the previous compile.
    base_names: link::BaseNames<'o>,
    /// Where the program has the object's renumbered lambdas.
    aliases: Vec<journal::AddedRecord>,
    linked: Linked,
    /// Read-only data its code brings that the program lacks (symbol
    /// indices).
    new_constants: Vec<usize>,
    work: Vec<EntryWork>,
    folded: Vec<String>,
}

/// The signatures (`ret(param, param)`, from the object's DWARF) of the
/// functions `p` places over an entry, by symbol name: a `static` one's
/// under its source name (`calc` for `calc.isra.0`).
fn placed_signatures(p: &Prepared) -> HashMap<String, signature::Signature> {
    use signature::Subprograms;
    let (statics, globals): (Vec<&link::LinkedFunction>, Vec<&link::LinkedFunction>) = p
        .linked
        .functions
        .iter()
        .filter(|f| f.replaces.is_some())
        .partition(|f| p.obj.symbols.get(f.symbol).is_some_and(|s| s.local));
    let global_names: Vec<&str> = globals.iter().map(|f| f.name.as_str()).collect();
    let mut out: HashMap<String, signature::Signature> =
        signature::compared(p.obj, &global_names, Subprograms::Definitions)
            .into_iter()
            .collect();
    if !statics.is_empty() {
        let bases: Vec<String> = statics.iter().map(|f| names::parse(&f.name).base).collect();
        let base_names: Vec<&str> = bases.iter().map(String::as_str).collect();
        let found = signature::compared(p.obj, &base_names, Subprograms::StaticDefinitions);
        for (f, base) in statics.iter().zip(&bases) {
            if let Some(signature) = found.get(base) {
                out.insert(f.name.clone(), signature.clone());
            }
        }
    }
    out
}

/// Links `unit` and plans its entries (nothing is written). `home` is the
/// first unit's module (set by it): every unit must replace code of the
/// same one, since their code shares a pool near it.
fn prepare<'o>(
    target: &mut Target,
    unit: &Unit<'o>,
    home: &mut Option<Option<u64>>,
    batch: &dyn Fn(&str) -> Option<link::Value>,
) -> Result<Prepared<'o>> {
    let (obj, base, functions) = (unit.obj, unit.base, unit.functions);
    let process = target.process;
    if let (Some(base), true) = (base, target.check_base) {
        // The functions to patch, and those patched before (a base older
        // than the last patch differs there, even when this diff does
        // not touch them).
        let names: Vec<&str> = functions
            .iter()
            .map(|&i| obj.symbols[i].name.as_str())
            .chain(target.journal.patches.iter().map(|p| p.name.as_str()))
            .collect();
        let check = crate::verify::functions_against_process(target, base, |n| names.contains(&n));
        if let Some((name, why)) = check.differs.first() {
            if let Some(functions) = already_applied(target, obj, functions, &check) {
                return Err(PatchError::AlreadyApplied {
                    pid: process.pid(),
                    functions,
                });
            }
            if let Some(why) = crate::verify::entry_changed(target, base, name) {
                return Err(PatchError::Refused { what: why });
            }
            // What runs there: a patch's code, or (none in force: never
            // patched, or reverted since) the program's own. "The last
            // patch's" object was named after a `revert --all` too (an
            // lcms2 trial).
            let runs = match crate::verify::patch_in_force(target, base, name).is_some() {
                true => "the object of the last patch of it",
                false => "the object of the program's build (no relive patch of it is in force)",
            };
            return Err(PatchError::Refused {
                what: format!(
                    "the base {} is not what process {} runs: its {name} differs from the running code ({why}), so the diff against it is not the change the program would see (another patch since, or an older compile); pass what runs now as --base ({runs}), or leave --base out to patch every function of {}",
                    base.path,
                    process.pid(),
                    obj.path
                ),
            });
        }
    }
    if crate::unwind::unwinder(target).is_none() {
        crate::select::refuse_exception_handling(obj, functions)?;
    }
    // Label addresses the running code gave out (the base's, or, without
    // one, the new compile's as the likeliest account of it).
    let names: Vec<&str> = functions.iter().map(|&i| obj.symbols[i].name.as_str()).collect();
    if let Some(what) = crate::labels::refusal(&crate::labels::taken(base.unwrap_or(obj), &names)) {
        return Err(PatchError::Refused { what });
    }
    let base_names = base.map(|old| link::BaseNames::of(old, obj)).unwrap_or_default();
    // A cold part (`f.cold`) is entered only by jumps from its hot part,
    // into its middle as well as at its start: a change there alone would
    // never run through a redirect of its entry, and a redirect would send
    // an old call already running into code laid out for the new hot
    // part. So the hot part is patched with it, and the new cold part
    // comes along unredirected, for the new hot part alone.
    let mut functions: Vec<usize> = functions.to_vec();
    let cold_parent = |i: usize| crate::names::hot_part(&obj.symbols[i].name);
    let function_named = |name: &str| {
        obj.symbols
            .iter()
            .position(|s| s.kind == crate::objfile::Kind::Function && s.name == name)
    };
    // And a hot part always brings its cold part, changed or not: the
    // cold part jumps back into its hot part at offsets of the hot part's
    // layout. The program's would return into the old hot part (g++ -O2:
    // after a patch of `handle`, every exception its catch in `handle.cold`
    // handled ran the rest of `handle` as it was).
    for k in 0..functions.len() {
        let partner = match cold_parent(functions[k]) {
            Some(hot) => function_named(hot),
            None => function_named(&format!("{}.cold", obj.symbols[functions[k]].name)),
        };
        if let Some(p) = partner.filter(|p| !functions.contains(p)) {
            functions.push(p);
        }
    }
    // An inline function or template instantiation the edit made this
    // file use, which the program (or a library: `std::string`'s) already
    // has: the same code by the one-definition rule, so the new code calls
    // the program's and nothing is redirected. (Redirecting libstdc++'s
    // copy failed out of the jump's reach.)
    let base_has: foldhash::HashSet<&str> = match base {
        Some(b) if functions.iter().any(|&i| obj.symbols[i].weak) => {
            b.symbols.iter().map(|s| s.name.as_str()).collect()
        }
        _ => Default::default(),
    };
    let newly_instantiated = |i: usize| {
        let sym = &obj.symbols[i];
        sym.weak && base.is_some() && !base_has.contains(sym.name.as_str())
    };
    let all: Vec<(usize, Option<u64>)> = functions
        .iter()
        .map(|&i| match cold_parent(i) {
            Some(_) => (i, None),
            None => (i, link::live_address(obj, i, &target.resolver, &base_names)),
        })
        .filter(|&(i, live)| !(live.is_some() && newly_instantiated(i)))
        .collect();
    // The code goes near the module it replaces code of: the program, or a
    // (dlopen'ed) library; one module per transaction. That module is the
    // one of the file's own functions, not of an inline function or
    // template instance (weak) that a library also has: libstdc++'s
    // `std::string` constructor, first of a C++ file's functions, made
    // the patch go near libstdc++ and the program's own functions out of
    // the entry jump's reach.
    let replaced = all
        .iter()
        .find(|&&(i, a)| a.is_some() && !obj.symbols[i].weak)
        .or_else(|| all.iter().find(|&&(_, a)| a.is_some()))
        .and_then(|&(_, a)| a);
    let module_of = |a: u64| {
        target
            .resolver
            .symbols()
            .module_at(a)
            .map(|(path, _, _)| path.to_string())
    };
    // A file that replaces no code of a module (it only adds functions,
    // or replaces only what a patch added, which lives in a pool) belongs
    // where the program has its file's other symbols: a library's file
    // that only added a function went near the program, the place for
    // code of no module, and with the file that calls it was refused as
    // changing two modules at once (a jq trial: libjq's `jv.c`).
    let here = match replaced {
        Some(a) if module_of(a).is_some() => Some(a),
        other => where_the_file_lives(obj, target, &base_names, &module_of).or(other),
    };
    let home_module = here.and_then(module_of);
    // Such a function that lives in another module is that module's copy
    // (the same code, by the one-definition rule): the new code calls it,
    // and it is not redirected from here.
    let all: Vec<(usize, Option<u64>)> = all
        .into_iter()
        .filter(|&(i, a)| !(obj.symbols[i].weak && a.is_some_and(|a| module_of(a) != home_module)))
        .collect();
    let (wanted, folded) = one_per_entry(obj, all, target.resolver.symbols())?;
    match *home {
        None => {
            target.resolver.set_home(here);
            *home = Some(here);
        }
        Some(first) => {
            let module = |a: Option<u64>| {
                let symbols = target.resolver.symbols();
                a.and_then(|a| symbols.module_at(a).map(|(path, _, _)| path.to_string()))
                    .or_else(|| symbols.main_module().map(str::to_string))
            };
            if module(first) != module(here) {
                return Err(PatchError::TwoModules {
                    object: obj.path.clone(),
                    module: module(here).unwrap_or_default(),
                    other: module(first).unwrap_or_default(),
                });
            }
        }
    }
    // Thread-locals the new code uses are found through the modules'
    // GOTs, read once and only for such a patch.
    if crate::tls::used_by(obj) && !target.resolver.knows_tls() {
        let symbols = target.resolver.symbols();
        let defined = |name: &str| {
            let found = symbols.thread_locals(name);
            let (module, s) = found
                .iter()
                .find(|(_, s)| s.binding != relive_image::symbols::Binding::Local)?;
            Some((module.to_string(), s.addr))
        };
        let modules = crate::tls::modules(target.process, &target.modules, &defined);
        target.resolver.set_tls(modules);
    }
    let mut linked = link::link_in_batch(obj, &wanted, &target.resolver, &base_names, batch)?;
    let mut constructed: Vec<String> = linked
        .constructed
        .iter()
        .map(|&i| crate::names::readable(&obj.symbols[i].name))
        .collect();
    constructed.dedup();
    if !constructed.is_empty() && linked.constructors.is_empty() {
        return Err(PatchError::Refused {
            what: format!(
                "{} {} new and given {} value by the file's static initializer, which this patch does not bring: the new code would use {} unconstructed; make {} a function-local static (constructed at its first use) or constexpr/constinit, or restart the program",
                constructed.join(", "),
                number(&constructed, "is", "are"),
                number(&constructed, "its", "their"),
                number(&constructed, "it", "them"),
                number(&constructed, "it", "them"),
            ),
        });
    }
    // Whether the program's callers may keep values in call-clobbered
    // registers across calls (judged from how the new object was compiled:
    // the same flags as the program's).
    let ipa_ra = clobber::may_assume_preserved(signature::producer(obj).as_deref());

    // Plan every entry before touching the process.
    let mut work = Vec::new();
    // Thunks go after the linked code, each at a 16-byte boundary, and the
    // stubs of near redirects at 8-byte ones: (offset, code), offsets
    // decided here because each thunk's call is relative (a stub's jump is
    // filled in once the pool is placed).
    let mut thunks: Vec<(u64, Vec<u8>)> = Vec::new();
    let mut thunk_frames = Vec::new();
    // The process's mappings, read once: a redirect must stay inside the
    // executable mapping of its function.
    let mut maps = None;
    let mut files = FileCache::default();
    let mut code_end = linked.code.len() as u64;
    // Where the base's code (what runs) starts statements: read once, for
    // the first redirects only.
    let mut base_statements: Option<Vec<(usize, u64)>> = None;
    // First redirects whose jump covers a statement of the old code:
    // (function, where, offset), said in one note.
    let mut split_statements: Vec<(String, u64, u64)> = Vec::new();
    for f in &linked.functions {
        let Some(orig) = f.replaces else { continue };
        let record = target.journal.patch(orig);
        let assumed = match record {
            Some(record) => Regs(record.assumed),
            None if ipa_ra => {
                let code = OriginalCode {
                    process,
                    resolver: &target.resolver,
                    journal: &target.journal,
                };
                Regs::CALL_CLOBBERED.minus(clobber::in_process(&code, orig))
            }
            None => Regs::NONE,
        };
        let (keeps, assumed_after) = if assumed.is_empty() {
            (Regs::NONE, assumed)
        } else {
            let writes = clobber::in_object(obj, f.symbol);
            let keeps = if writes.intersect(assumed).is_empty() {
                Regs::NONE
            } else {
                writes.union(Regs::gpr(clobber::R11)).intersect(assumed)
            };
            // Callers compiled against this version may rely on what it
            // leaves alone, too.
            (keeps, assumed.union(Regs::CALL_CLOBBERED.minus(writes)))
        };
        let entry_offset = if keeps.is_empty() {
            f.offset
        } else {
            let at = code_end.next_multiple_of(16);
            let code = thunk::preserving(keeps, at, f.offset).map_err(|e| PatchError::Entry {
                name: f.name.clone(),
                addr: orig,
                reason: format!("cannot assemble its register-keeping thunk: {e}"),
            })?;
            code_end = at + code.len() as u64;
            if let Some((frame, sub_len)) = thunk::frame_of(&code) {
                thunk_frames.push((
                    f.name.clone(),
                    crate::eh_frame::ThunkFrame {
                        offset: at,
                        len: code.len() as u64,
                        frame,
                        sub_len,
                    },
                ));
            }
            thunks.push((at, code));
            at
        };
        let kind = match record {
            Some(record) => EntryKind::Slot { slot: record.slot },
            None => {
                let size = target.resolver.size_at(orig);
                let mut before = vec![0u8; entry::BEFORE as usize];
                let mut code = vec![0u8; (size + entry::AFTER) as usize];
                process.read(orig - entry::BEFORE, &mut before).or_else(|_| {
                    before.fill(0);
                    Ok::<(), PatchError>(())
                })?;
                // The bytes after the function may be the end of the mapping.
                if process.read(orig, &mut code).is_err() {
                    code.truncate(size as usize);
                    process.read(orig, &mut code)?;
                }
                // gdb puts a `break FILE:LINE` at each statement of the old
                // code too: one inside the jump would break it.
                let statements = match base {
                    Some(base) => {
                        let all = base_statements.get_or_insert_with(|| crate::line_table::statements(base));
                        base.symbols
                            .iter()
                            .position(|s| {
                                s.name == f.name && s.kind == crate::objfile::Kind::Function && s.size == size
                            })
                            .map(|i| crate::line_table::statement_offsets(base, all, i))
                            .unwrap_or_default()
                    }
                    None => Vec::new(),
                };
                let site = entry::Site {
                    entry: orig,
                    size,
                    before: &before,
                    code: &code,
                    unclaimed: unclaimed(target.resolver.symbols(), orig.saturating_add(size)),
                    unclaimed_before: unclaimed_before(target.resolver.symbols(), orig),
                    statements: &statements,
                };
                let refuse = |reason: String| PatchError::Entry {
                    name: f.name.clone(),
                    addr: orig,
                    reason,
                };
                let redirect = entry::plan(&f.name, &site).map_err(refuse)?;
                // A statement inside the jump (where it splits for a
                // thread, it does for an `int3`): say what a debugger's
                // line breakpoint there would do. Not of a static
                // initializer: it never runs again, so no breakpoint there
                // is ever hit.
                if !crate::names::is_static_initializer(&f.name) {
                    if let Some(t) = statements.iter().find(|&&t| redirect.splits(orig + t)) {
                        split_statements.push((crate::names::readable(&f.name), orig + t, *t));
                    }
                }
                let maps = match &maps {
                    Some(m) => m,
                    None => maps.insert(process.maps()?),
                };
                check_mapped(maps, orig, &redirect).map_err(refuse)?;
                check_unchanged(maps, &site, &redirect, &mut files).map_err(refuse)?;
                let slot_offset = linked
                    .slots
                    .iter()
                    .find(|(n, _)| *n == f.name)
                    .map(|&(_, o)| o)
                    .expect("a slot for every replaced function");
                let stub_offset = redirect.needs_stub().then(|| {
                    let at = code_end.next_multiple_of(8);
                    code_end = at + entry::STUB_LEN;
                    // Filled in with the slot's address once placed.
                    thunks.push((at, vec![0xcc; entry::STUB_LEN as usize]));
                    at
                });
                EntryKind::Redirect {
                    redirect,
                    slot_offset,
                    stub_offset,
                }
            }
        };
        work.push(EntryWork {
            name: f.name.clone(),
            orig,
            new_addr: 0,
            entry_offset,
            entry_addr: 0,
            keeps,
            assumed: assumed_after,
            kind,
        });
    }
    if let Some(note) = split_statements_note(&split_statements) {
        linked.warnings.push(note);
    }
    for (at, code) in thunks {
        linked.code.resize(at as usize, 0xcc);
        linked.code.extend_from_slice(&code);
    }
    for w in work.iter().filter(|w| !w.keeps.is_empty()) {
        linked.point_slot(&w.name, w.entry_offset);
    }
    // Only where the functions themselves have unwind information: a
    // thunk's alone would not take an unwinder further.
    if linked.unwind.is_some() {
        linked.add_thunk_unwind(thunk_frames);
    }
    let aliases = lambda_aliases(obj, &base_names, &target.resolver);
    let calls = work
        .iter()
        .filter_map(|w| {
            let i = obj.function_named(&w.name)?;
            Some((w.name.clone(), crate::callees::direct_callees(obj, i)))
        })
        .collect();
    // Constants the program has no copy of (a new `static const` table):
    // added, for `status` and `sym` (a trial on mimalloc could not find
    // one), as new functions and variables are.
    let new_constants = linked
        .data
        .iter()
        .filter(|d| {
            d.action == link::DataAction::New && matches!(d.value, link::Value::Region(link::Part::ReadOnly, _))
        })
        .filter_map(|d| d.symbol)
        .filter(|&i| obj.symbols[i].kind == crate::objfile::Kind::Object)
        .filter(|&i| link::live_address(obj, i, &target.resolver, &base_names).is_none())
        .collect();
    Ok(Prepared {
        obj,
        calls,
        constructed,
        aliases,
        base_names,
        linked,
        new_constants,
        work,
        folded,
    })
}

/// `single` for one name, `plural` for several: the words around a list
/// of names in a message.
fn number<'w>(names: &[String], single: &'w str, plural: &'w str) -> &'w str {
    if names.len() == 1 {
        single
    } else {
        plural
    }
}

/// Functions to patch, each with the live address it replaces (`None`:
/// added).
type Wanted = Vec<(usize, Option<u64>)>;

/// Functions the program has at one address (GCC's identical-code
/// folding made them one) are one entry: patched once when the new code is
/// still one (aliases in the object), refused when the edit makes them
/// differ, since one entry cannot run two bodies. Returns the functions to
/// patch and a word for each one folded into another.
fn one_per_entry(
    obj: &ObjectFile,
    all: Vec<(usize, Option<u64>)>,
    symbols: &LiveSymbols,
) -> Result<(Wanted, Vec<String>)> {
    // Another name the program has at an entry being patched (code the
    // compiler folded) would run the new code too: fine only for an alias
    // of it in the new object (the same bytes), or one patched with it.
    for &(i, addr) in &all {
        let Some(a) = addr else { continue };
        let x = &obj.symbols[i];
        for other in symbols.starting_at(a) {
            if other.size == 0
                || other.kind != SymbolKind::Function
                || names::stable(&other.name) == names::stable(&x.name)
            {
                continue;
            }
            let stable = names::stable(&other.name);
            let partner = obj
                .symbols
                .iter()
                .enumerate()
                .find(|(_, y)| y.kind == crate::objfile::Kind::Function && names::stable(&y.name) == stable);
            let same = match partner {
                Some((j, y)) => {
                    all.iter().any(|&(k, _)| k == j) || (x.section, x.offset, x.size) == (y.section, y.offset, y.size)
                }
                None => false,
            };
            if !same {
                return Err(PatchError::Refused {
                    what: format!(
                        "{} and {} are one function at {a:#x} in the running program (the compiler folded their identical code), and this edit does not change {} alike: redirecting that entry would change {} too. Build with -fno-ipa-icf (GCC) to keep them apart, or restart the program",
                        x.name, other.name, other.name, other.name
                    ),
                });
            }
        }
    }
    let mut at: HashMap<u64, usize> = HashMap::new();
    let mut wanted = Vec::new();
    let mut folded = Vec::new();
    for (i, addr) in all {
        if let Some(a) = addr {
            if let Some(&j) = at.get(&a) {
                let (x, y) = (&obj.symbols[i], &obj.symbols[j]);
                if (x.section, x.offset, x.size) != (y.section, y.offset, y.size) {
                    return Err(PatchError::Refused {
                        what: format!(
                            "{} and {} are one function at {a:#x} in the running program (the compiler folded their identical code), and this edit makes them differ: one entry cannot run both. Build with -fno-ipa-icf (GCC) to keep them apart, or restart the program",
                            y.name, x.name
                        ),
                    });
                }
                // A C++ constructor's or destructor's two copies (for
                // complete and base objects) read alike: one name to the
                // user, said twice (a LevelDB trial).
                let (y_name, x_name) = (names::readable(&y.name), names::readable(&x.name));
                if y_name != x_name {
                    folded.push(format!(
                        "{y_name} and {x_name} are one function in the program (identical code): patched once"
                    ));
                }
                // Patched under its own name, not GCC's local alias of it
                // (`f.localalias`, which comes first among the symbols):
                // the record names it in `status` and later reports.
                if y.name.strip_suffix(".localalias") == Some(x.name.as_str()) {
                    if let Some(kept) = wanted.iter_mut().find(|(k, _)| *k == j) {
                        kept.0 = i;
                    }
                    at.insert(a, i);
                }
                continue;
            }
            at.insert(a, i);
        }
        wanted.push((i, addr));
    }
    Ok((wanted, folded))
}

/// For each replaced function of `linked` (by original entry): whether
/// its new code can run ([`reach::analyse`]), the threads' stacks read
/// in `stacks` (`None`: unknown, so reachable).
fn reachability(
    target: &Target,
    prepared: &Prepared,
    layout: &Layout,
    stacks: Option<&reach::Stacks>,
) -> HashMap<u64, Reach> {
    let linked = &prepared.linked;
    // Candidates: every linked function; a replaced one by its original
    // entry, an added one by its new address.
    let entry = |f: &link::LinkedFunction| f.replaces.unwrap_or(layout.code + f.offset);
    let size = |f: &link::LinkedFunction| match f.replaces {
        Some(orig) => target.resolver.size_at(orig).max(1),
        None => f.size,
    };
    let mut candidates: Vec<reach::Candidate> = linked
        .functions
        .iter()
        .map(|f| reach::Candidate {
            name: f.name.clone(),
            old: entry(f),
            size: size(f),
            new_code: (layout.code + f.offset, layout.code + f.offset + f.size),
            referenced_by: Vec::new(),
            exported: f.replaces.is_some_and(|orig| exported(target, orig)),
            entry_once: f.name == "main" && f.replaces.is_some(),
        })
        .collect();
    // Which new code refers to which: a fixup in function j's new code
    // whose value is candidate i's entry (through the old entry) or new code.
    for fx in linked.fixups.iter().filter(|fx| fx.part == link::Part::Code) {
        let Some(j) = linked
            .functions
            .iter()
            .position(|f| f.offset <= fx.offset && fx.offset < f.offset + f.size.max(1))
        else {
            continue;
        };
        let i = match fx.value {
            link::Value::Absolute(a) => linked.functions.iter().position(|f| f.replaces == Some(a)),
            link::Value::Region(link::Part::Code, off) => linked.functions.iter().position(|f| f.offset == off),
            _ => None,
        };
        if let Some(i) = i.filter(|&i| i != j) {
            if !candidates[i].referenced_by.contains(&j) {
                candidates[i].referenced_by.push(j);
            }
        }
    }
    // The pool code that runs: each live patch's block (dead generations
    // are never read), or every pool's used code for a journal of an
    // older relive.
    let pools: Vec<(u64, u64)> = match &target.journal.code_blocks {
        Some(blocks) => blocks.clone(),
        None => target
            .journal
            .regions
            .iter()
            .map(|r| (r.addr, r.addr + r.code_used.min(r.code_len)))
            .collect(),
    };
    // Their data: the tables patches copied, and the variables they added.
    let pool_data: Vec<(u64, u64)> = target
        .journal
        .regions
        .iter()
        .flat_map(|r| {
            [
                (r.read_only_start(), r.read_only_start() + r.ro_used.min(r.ro_len)),
                (r.writable_start(), r.writable_start() + r.rw_used.min(r.rw_len)),
            ]
        })
        .collect();
    // The code of patches whose new code cannot run (said so when they
    // were made): what it calls is not called by it.
    let dead: Vec<(u64, u64)> = target
        .journal
        .patches
        .iter()
        .filter(|p| p.unreached.is_some())
        .filter_map(|p| p.history.last())
        .map(|g| (g.code, g.code + g.size.max(1)))
        .collect();
    let (home, main, program_entry) = running_callers::entry_points(target);
    let reaches = match stacks {
        Some(stacks) => reach::analyse(
            target.process,
            home,
            &reach::PoolMemory {
                code: &pools,
                data: &pool_data,
                dead: &dead,
            },
            &candidates,
            stacks,
            main,
            program_entry,
        ),
        None => candidates.iter().map(|_| reach::unknown()).collect(),
    };
    let mut reaches: HashMap<u64, Reach> = linked
        .functions
        .iter()
        .zip(reaches)
        .filter_map(|(f, r)| Some((f.replaces?, start_up_only(prepared.obj, &f.name, r))))
        .collect();
    // A function patched before: a call may run an earlier patch's code,
    // which the analysis above (of the original code) does not see (a
    // re-check: a thread in generation 1 when generation 2 went in, and
    // the reload said nothing of it).
    let again: Vec<(&str, u64)> = linked
        .functions
        .iter()
        .filter_map(|f| Some((f.name.as_str(), f.replaces?)))
        .filter(|(_, orig)| target.journal.patch(*orig).is_some_and(|p| p.history.len() > 1))
        .collect();
    // Only where a thread runs pool code at all: reading the history for
    // every re-patch cost a third of a millisecond.
    let pool_code: Vec<(u64, u64)> = target
        .journal
        .regions
        .iter()
        .map(|r| (r.addr, r.addr + r.code_used.min(r.code_len)))
        .collect();
    let in_pools = |stacks: &reach::Stacks| {
        reach::threads_in(target.process, &pool_code, stacks)
            .iter()
            .any(|threads| !threads.is_empty())
    };
    let stacks = stacks.filter(|stacks| !again.is_empty() && in_pools(stacks));
    if let Some(stacks) = stacks {
        // Every generation (the journal keeps the newest alone): a call
        // may still run one several patches back (a re-check's third and
        // fourth patches said nothing of it).
        let mut journal = target.journal.clone();
        let _ = journal.load_every_generation(&target.journal_dir);
        // Each earlier generation's code, with its function.
        let mut ranges: Vec<(u64, u64)> = Vec::new();
        let mut owners: Vec<usize> = Vec::new();
        for (k, (_, orig)) in again.iter().enumerate() {
            let Some(record) = journal.patch(*orig) else { continue };
            for g in record
                .history
                .iter()
                .filter(|g| g.size > 0 && g.code != record.current_addr)
            {
                ranges.push((g.code, g.code + g.size));
                owners.push(k);
            }
        }
        let mut running: Vec<Vec<u32>> = again.iter().map(|_| Vec::new()).collect();
        for (k, threads) in owners.iter().zip(reach::threads_in(target.process, &ranges, stacks)) {
            running[*k].extend(threads);
        }
        for ((name, orig), mut threads) in again.iter().zip(running) {
            threads.sort_unstable();
            threads.dedup();
            let Some(reach) = reaches.get_mut(orig).filter(|_| !threads.is_empty()) else {
                continue;
            };
            if reach.reachable && reach.note.is_none() {
                let tids: Vec<String> = threads.iter().map(u32::to_string).collect();
                reach.note = Some(format!(
                    "{name} is running on thread {} in the code of an earlier patch: that call finishes in it; later calls run the new code",
                    tids.join(", ")
                ));
                reach.running = threads;
            }
        }
    }
    reaches
}

/// An address in the module where the program has a symbol of `obj`'s
/// file that no patch added (a global it defines first, then a static),
/// if any.
fn where_the_file_lives(
    obj: &ObjectFile,
    target: &Target,
    base_names: &link::BaseNames,
    module_of: &dyn Fn(u64) -> Option<String>,
) -> Option<u64> {
    let own = |i: &usize| {
        let s = &obj.symbols[*i];
        !s.weak && !crate::names::is_cold_part(&s.name)
    };
    let (globals, statics): (Vec<usize>, Vec<usize>) =
        (0..obj.symbols.len()).filter(own).partition(|&i| !obj.symbols[i].local);
    globals
        .into_iter()
        .chain(statics)
        .filter_map(|i| link::live_address(obj, i, &target.resolver, base_names))
        .find(|&a| module_of(a).is_some())
}

/// Of the functions `linked` replaces, those that differ from the old
/// code only in line numbers an edit above them moved
/// ([`crate::line_shift`]), their cold parts included: each one's reach
/// says by how much. The note of one whose new code cannot run says so,
/// not why it cannot run and how to make it (advice for an edit nobody
/// made); one that runs gets that note unless it has one already (why a
/// running call keeps old code).
///
/// The old code is what runs: for a function later calls reach, the
/// first of `bases` (the code the patch replaces: with two edits above
/// it, its code moved by the second alone, and code it inlines from
/// between them did not move at all); for one no call reaches, the first
/// of `built` (its patches never ran). Each from the other list when its
/// own lacks the function.
///
/// The line tables that settle it are read only when the patch replaces
/// two functions or more, or one whose new code cannot run: the usual
/// edit, one function with a constant edited in place, looks like a move
/// to the code, and reading a large unit's line tables for it made
/// SQLite's patch of one constant 10× slower. (Two functions of which
/// only one differed only in immediates were read too little: a Lua
/// trial's `str_rep`, moved beside an edit of `str_upper`, was listed as
/// patched.)
fn note_lines_moved(
    obj: &ObjectFile,
    (built, bases): (&[&ObjectFile], &[&ObjectFile]),
    linked: &Linked,
    reaches: &mut HashMap<u64, Reach>,
) {
    // The usual edit: one function, which runs; nothing to look up.
    let replaced: Vec<&Reach> = linked
        .functions
        .iter()
        .filter_map(|f| reaches.get(&f.replaces?))
        .collect();
    if replaced.len() < 2 && replaced.iter().all(|r| r.reachable) {
        return;
    }
    let keys = crate::diff::stable_keys(obj);
    let cold = line_shift::cold_parts(obj);
    // Each replaced function whose code alone looks moved, with its parts
    // paired with the old code's.
    let candidates: Vec<(
        &link::LinkedFunction,
        u64,
        Vec<line_shift::Part>,
        line_shift::ImmediateShift,
    )> = linked
        .functions
        .iter()
        .filter_map(|f| {
            let orig = f.replaces.filter(|orig| reaches.contains_key(orig))?;
            let olds = match reaches[&orig].reachable {
                true => bases.iter().chain(built),
                false => built.iter().chain(bases),
            };
            let own = |i: usize| keys.get(i);
            let key = own(f.symbol)?;
            let old = *olds
                .clone()
                .find(|old| crate::diff::symbol_of_key(old, key).is_some())?;
            let pair = |i: usize| Some(((old, crate::diff::symbol_of_key(old, own(i)?)?), (obj, i)));
            let mut parts = vec![pair(f.symbol)?];
            for &c in cold.get(obj.symbols[f.symbol].name.as_str()).into_iter().flatten() {
                parts.push(pair(c)?);
            }
            let shift = line_shift::immediates_shifted(&parts)?;
            Some((f, orig, parts, shift))
        })
        .collect();
    // The rows of the candidates' code only, old and new.
    let wanted: Vec<(&ObjectFile, usize)> = candidates
        .iter()
        .flat_map(|(_, _, parts, _)| parts.iter().flat_map(|&(old, new)| [old, new]))
        .collect();
    let mut rows = crate::line_table::RowsOnce::only(&wanted);
    for (f, orig, parts, shift) in &candidates {
        let Some(reach) = reaches.get_mut(orig) else {
            continue;
        };
        if let Some(delta) = line_shift::confirmed_by_lines(shift, parts, &mut rows) {
            reach.lines_moved = Some(delta);
            if !reach.reachable || reach.note.is_none() {
                let uncalled = reach.note.as_ref().is_some_and(|n| n.starts_with(reach::NOTHING_CALLS));
                reach.note = Some(reach::lines_moved_note(&f.name, delta, reach.reachable, uncalled));
            }
        }
    }
}

/// A running call of a replaced function whose code (as it runs, in
/// `running`) has other replaced functions inlined runs their old code
/// too until it returns: its note says which, so the edit of one of them
/// is connected to the call that keeps it from showing (a Lua trial: an
/// edit of `luaV_idiv` said "patched luaV_idiv, luaV_execute" with a note
/// on `luaV_execute`'s running call alone, and the script's loop, inside
/// that call for good, never ran the new division). Read only when a
/// replaced function is running and the patch replaces two or more.
fn note_inlined_in_running(
    target: &Target,
    running: Option<&ObjectFile>,
    linked: &Linked,
    reaches: &mut HashMap<u64, Reach>,
) {
    let replaced: Vec<(&str, u64)> = linked
        .functions
        .iter()
        .filter_map(|f| Some((f.name.as_str(), f.replaces?)))
        .collect();
    let hosts: Vec<String> = replaced
        .iter()
        .filter(|(_, orig)| {
            reaches
                .get(orig)
                .is_some_and(|r| !r.running.is_empty() && r.note.is_some())
        })
        .map(|(name, _)| name.to_string())
        .collect();
    if hosts.is_empty() || replaced.len() < 2 {
        return;
    }
    let patched: Vec<String> = replaced.iter().map(|(name, _)| name.to_string()).collect();
    let found = match running {
        Some(obj) => crate::inline_only::patched_inlined_in(obj, &hosts, &patched),
        None => program_inlines(target, &replaced, &hosts, &patched),
    };
    for (host, inlined) in found {
        let Some(reach) = replaced
            .iter()
            .find(|(name, _)| *name == host)
            .and_then(|(_, orig)| reaches.get_mut(orig))
        else {
            continue;
        };
        let names: Vec<String> = inlined.iter().map(|n| crate::names::readable(n)).collect();
        if let Some(note) = reach.note.as_mut() {
            note.push_str(&inlined_old_said(&names, reach.for_good));
        }
        reach.inlined_old = names;
    }
}

/// [`crate::inline_only::patched_inlined_in`] of the code the program was
/// built with, from its modules' debug information: for `hosts` that no
/// earlier patch replaced (whose running calls run that code), each
/// module's DWARF read once. `replaced`: each function's symbol and
/// original entry.
fn program_inlines(
    target: &Target,
    replaced: &[(&str, u64)],
    hosts: &[String],
    patched: &[String],
) -> Vec<(String, Vec<String>)> {
    let mut by_module: Vec<(&relive_process::modules::LoadedModule, Vec<String>)> = Vec::new();
    for host in hosts {
        let Some(&(_, orig)) = replaced.iter().find(|(name, _)| name == host) else {
            continue;
        };
        // Patched before: a call may run an earlier patch's code.
        if target.journal.patch(orig).is_some_and(|p| p.history.len() > 1) {
            continue;
        }
        let Some(module) = target.modules.containing(orig) else {
            continue;
        };
        match by_module.iter_mut().find(|(m, _)| std::ptr::eq(*m, module)) {
            Some((_, list)) => list.push(host.clone()),
            None => by_module.push((module, vec![host.clone()])),
        }
    }
    by_module
        .into_iter()
        .filter_map(|(module, hosts)| {
            let image = module.image.as_ref()?;
            Some(crate::inline_only::patched_inlined_in_image(
                image.data(),
                &hosts,
                patched,
            ))
        })
        .flatten()
        .collect()
}

/// What a running call's note adds for `names`, replaced functions its
/// code has inlined ([`note_inlined_in_running`]).
fn inlined_old_said(names: &[String], for_good: bool) -> String {
    let list = names.join(", ");
    let (calls, when) = match for_good {
        true => ("those calls run", "for good"),
        false => ("that call runs", "until it returns"),
    };
    format!("; it has {list} inlined, so {calls} the old {list} too, {when} (calls of {list} from elsewhere run the new code)")
}

/// `reach` of the program's static initializer `name` (C++: the code
/// that constructs its globals) of `obj`: a call to it from the
/// initializer list counts as reachable, but that ran when the program
/// started. An edited initial value (`std::string banner = "PIPE";`) said
/// "patched" while the program printed the old one. The note names the
/// globals it gives their values (a HarfBuzz trial: an edited
/// initializer's note named none).
fn start_up_only(obj: &ObjectFile, name: &str, reach: Reach) -> Reach {
    if !crate::names::is_static_initializer(name) {
        return reach;
    }
    let (_, data) = obj.dynamically_initialized();
    let globals: Vec<String> = data
        .iter()
        .map(|&i| crate::names::readable(&obj.symbols[i].name))
        .collect();
    let keep = match globals.as_slice() {
        [] => "the globals the program has keep the values they have".to_string(),
        [one] => format!("{one} keeps the value it has"),
        many if many.len() > NAMED_IN_NOTE => format!(
            "{} and {} more keep the values they have",
            many[..NAMED_IN_NOTE].join(", "),
            many.len() - NAMED_IN_NOTE
        ),
        many => format!("{} keep the values they have", many.join(", ")),
    };
    Reach {
        reachable: false,
        note: Some(format!(
            "the file's static initializer runs only when the program starts: {keep} (an initial value edited here takes effect when the program is restarted)"
        )),
        ..reach
    }
}

/// Whether the function at `addr` is a global of a shared library (the
/// home module is not the program): other modules and `dlsym` reach it.
fn exported(target: &Target, addr: u64) -> bool {
    let symbols = target.resolver.symbols();
    let Some((symbol, 0)) = symbols.at(addr) else {
        return false;
    };
    symbols.main_module() != Some(symbol.module.as_str())
        && matches!(
            symbol.binding,
            relive_image::symbols::Binding::Global | relive_image::symbols::Binding::Weak
        )
}

/// Journal records saying where the program has each of `obj`'s lambda
/// symbols whose name the edit renumbered ([`crate::lambdas`]): the next
/// patch's object names them as this one does, and the program's symbol
/// of that name is another lambda.
fn lambda_aliases(
    obj: &ObjectFile,
    base_names: &link::BaseNames,
    resolver: &LiveResolver,
) -> Vec<journal::AddedRecord> {
    (0..obj.symbols.len())
        .filter(|&i| crate::lambdas::mentions_lambda(&obj.symbols[i].name))
        .filter(|&i| {
            base_names
                .get(i)
                .is_some_and(|old| !old.is_empty() && old != obj.symbols[i].name)
        })
        .filter_map(|i| {
            let sym = &obj.symbols[i];
            Some(journal::AddedRecord {
                name: sym.name.clone(),
                file: obj.source.clone(),
                local: sym.local,
                key: None,
                addr: link::live_address(obj, i, resolver, base_names)?,
                size: sym.size,
                kind: "alias".into(),
                change: None,
                hook: None,
                initial: None,
            })
        })
        .collect()
}

/// Whether `d` (of `obj`) is a variable the patch brought that the
/// program lacked: a fresh copy in the pool's writable part of writable
/// data (read-only data copied with the code is not one, nor a constant
/// table of addresses copied whole into the writable part: a re-check's
/// `t.1` was said "added").
fn is_new_variable(obj: &ObjectFile, d: &link::LinkedData) -> bool {
    let writable_data = d
        .symbol
        .and_then(|i| obj.symbols.get(i))
        .and_then(|s| obj.section(s.section))
        .is_some_and(|s| !s.constant());
    writable_data
        && d.action == link::DataAction::New
        && matches!(d.value, link::Value::Region(link::Part::Writable, _))
}

/// What a linked patch adds to the program: functions it lacked, new
/// variables (writable data copied from the object), for later patches to
/// resolve, and constants it lacked (found by `sym`; a later patch uses
/// one only where it holds the same bytes).
fn added_records(p: &Prepared, layout: &Layout, change: u64) -> Vec<journal::AddedRecord> {
    let (obj, linked) = (p.obj, &p.linked);
    let record = |i: usize, addr: u64, kind: &str| {
        let sym = &obj.symbols[i];
        journal::AddedRecord {
            name: sym.name.clone(),
            file: obj.source.clone(),
            local: sym.local,
            key: crate::diff::static_key(obj, i).map(str::to_string),
            addr,
            size: sym.size,
            kind: kind.into(),
            change: Some(change),
            hook: (kind == "function")
                .then(|| crate::hooks::listed_as_hook(obj, i))
                .flatten(),
            initial: (kind == "object")
                .then(|| crate::verify::initial_value(obj, i))
                .flatten(),
        }
    };
    let functions = linked
        .functions
        .iter()
        .filter(|f| f.replaces.is_none())
        .map(|f| record(f.symbol, layout.code + f.offset, "function"));
    let variables = linked
        .data
        .iter()
        .filter(|d| is_new_variable(obj, d))
        .filter_map(|d| Some(record(d.symbol?, linked.address(layout, d.value), "object")));
    let constants = linked
        .data
        .iter()
        .filter(|d| d.symbol.is_some_and(|i| p.new_constants.contains(&i)))
        .filter_map(|d| Some(record(d.symbol?, linked.address(layout, d.value), "constant")));
    functions.chain(variables).chain(constants).collect()
}

/// A thread moved into a copy of the bytes a redirect replaces: its
/// registers before, and its program counter in the copy.
struct Moved {
    tid: u32,
    registers: Registers,
    to: u64,
}

/// Stops the process with no thread inside bytes that `work` replaces:
/// each one found inside them continues in a relocated copy of them
/// written into `area` (room for [`displaced::COPIES`] copies in the
/// pool), never single-stepped. One in a system call there (which a
/// changed program counter would not restart) or beyond the copies' room
/// is waited for, briefly; fails naming the thread and function.
/// Has the kernel copy, now, each page of the program's code that
/// `writes` will change while the threads are stopped: the first write
/// to a page of a private mapping copies it, and that copy was a third of
/// a one-thread program's pause. Each page gets one byte it holds
/// written back (only relive changes these bytes: the redirect overwrites
/// them a moment later). Best effort: a failure here is the redirect's to
/// report.
fn copy_pages_ahead(process: &dyn Process, writes: &[(u64, &[u8])]) {
    let mut pages: Vec<u64> = writes
        .iter()
        .flat_map(|&(addr, bytes)| [addr, addr + (bytes.len() as u64).saturating_sub(1)])
        .collect();
    pages.sort_unstable_by_key(|&a| a / PAGE);
    pages.dedup_by_key(|a| *a / PAGE);
    for addr in pages {
        let mut byte = [0u8];
        if process.read(addr, &mut byte).is_ok() {
            let _ = process.write(addr, &byte);
        }
    }
}

/// One unit's symbol file, made by a patch.
struct SymbolFile {
    unit: usize,
    /// Where its code is, and its length.
    code: u64,
    len: u64,
    bytes: Vec<u8>,
    /// Listed in the process for debuggers (it has DWARF), not only saved.
    listed: bool,
}

/// Saves each unit's symbol file in the state directory and lists those
/// with DWARF in the process, where a debugger that attaches finds them
/// by itself; the warning to give when either failed. A large unit's file
/// is megabytes (SQLite's, 3.7 MB) written twice, to disk and into the
/// process: the two writes run side by side.
fn tell_debuggers(target: &mut Target, pool_index: usize, change: u64, files: &[SymbolFile]) -> Option<String> {
    const WORTH_A_THREAD: usize = 1 << 20;
    let pid = target.process.pid();
    let names: Vec<String> = files
        .iter()
        .map(|f| crate::debug_file::file_name(pid, target.journal.start_time, change, f.unit))
        .collect();
    let dir = target.journal_dir.clone();
    // Every file, the first failure said.
    let save = || {
        let failed: Vec<_> = files
            .iter()
            .zip(&names)
            .filter_map(|(f, name)| dir.write_private(name, &f.bytes).err())
            .collect();
        failed
            .into_iter()
            .next()
            .map(|e| format!("could not write the new code's symbol file for debuggers: {e}"))
    };
    let listed: Vec<(u64, u64, &[u8])> = files
        .iter()
        .filter(|f| f.listed)
        .map(|f| (f.code, f.len, f.bytes.as_slice()))
        .collect();
    let list = || match listed.is_empty() {
        true => None,
        false => crate::debugger::list(target, pool_index, &listed)
            .err()
            .map(|why| format!("{GDB_UNTOLD} ({why}); `relive gdb {pid}` loads its symbol files")),
    };
    let large = files.iter().map(|f| f.bytes.len()).sum::<usize>() >= WORTH_A_THREAD;
    let (saved, listed) = crate::side_by_side::both_if(large, save, list);
    saved.or(listed)
}

fn stop_when_clear<'p>(
    process: &'p dyn Process,
    work: &[&EntryWork],
    area: u64,
    filled: &mut Undo,
) -> Result<(Box<dyn Stopped + 'p>, Vec<Moved>)> {
    let deadline = Instant::now() + BUSY_PATIENCE;
    // The redirect whose bytes `pc` is inside of, if any.
    let splitting = |pc: u64| {
        work.iter().find_map(|w| match &w.kind {
            EntryKind::Redirect { redirect, .. } if redirect.splits(pc) => Some((w.name.as_str(), redirect.span())),
            _ => None,
        })
    };
    loop {
        let mut stopped = process.stop()?;
        let mut copies: Vec<Displaced> = Vec::new();
        let mut moved = Vec::new();
        let mut busy = None;
        let mut each_thread = || -> Result<()> {
            for tid in stopped.thread_ids() {
                let registers = stopped.registers(tid)?;
                let pc = registers.pc();
                let Some((name, (start, len))) = splitting(pc) else {
                    continue;
                };
                let in_syscall = (registers.orig_rax as i64) >= 0;
                let to = if in_syscall {
                    None
                } else {
                    copy_for(process, &mut copies, start, len, area, filled)?.and_then(|c| c.moved(pc))
                };
                match to {
                    Some(to) => {
                        let mut there = registers;
                        there.rip = to;
                        stopped.set_registers(tid, &there)?;
                        moved.push(Moved { tid, registers, to });
                    }
                    None => busy = Some((tid, name.to_string(), pc)),
                }
            }
            Ok(())
        };
        if let Err(e) = each_thread() {
            // Threads moved so far go back before their copies can go.
            put_back(stopped.as_mut(), &moved);
            return Err(e);
        }
        let Some((tid, name, pc)) = busy else {
            return Ok((stopped, moved));
        };
        put_back(stopped.as_mut(), &moved);
        drop(stopped);
        if Instant::now() > deadline {
            return Err(PatchError::Busy {
                pid: process.pid(),
                tid,
                name,
                pc,
            });
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The copy of the span at `start` (`len` bytes) in `copies`, or a new
/// one relocated into the next room of `area` and written there (read
/// back) before any thread is moved into it; `None` when there is no room
/// left or the span cannot be copied.
fn copy_for<'c>(
    process: &dyn Process,
    copies: &'c mut Vec<Displaced>,
    start: u64,
    len: u64,
    area: u64,
    filled: &mut Undo,
) -> Result<Option<&'c Displaced>> {
    if let Some(k) = copies.iter().position(|c| c.moved(start).is_some()) {
        return Ok(Some(&copies[k]));
    }
    if copies.len() as u64 >= displaced::COPIES {
        return Ok(None);
    }
    let at = area + copies.len() as u64 * displaced::COPY_LEN;
    let mut code = vec![0u8; displaced::READ_LEN];
    process.read(start, &mut code)?;
    let Some(copy) = Displaced::relocate(&code, start, len, at) else {
        return Ok(None);
    };
    filled.write_all(process, &[(copy.at, &copy.bytes)], &|| ())?;
    copies.push(copy);
    Ok(copies.last())
}

/// Gives threads moved into copies their own registers back, each one
/// still at its copy (none has run since).
fn put_back(stopped: &mut dyn Stopped, moved: &[Moved]) {
    for m in moved {
        if stopped.registers(m.tid).is_ok_and(|r| r.pc() == m.to) {
            let _ = stopped.set_registers(m.tid, &m.registers);
        }
    }
}

/// One write the redirect makes: `bytes` at `addr`, where `before` is now.
struct PlannedWrite {
    addr: u64,
    before: Vec<u8>,
    bytes: Vec<u8>,
}

/// Decides each entry's write (a redirect, or the slot's new address) now
/// that the region is placed, and reads what it will replace.
fn plan_writes(
    process: &dyn Process,
    linked: &Linked,
    layout: &Layout,
    work: &mut [EntryWork],
) -> Result<Vec<PlannedWrite>> {
    let mut out = Vec::new();
    for w in work.iter_mut() {
        let f = linked
            .functions
            .iter()
            .find(|f| f.replaces == Some(w.orig))
            .expect("linked function for each entry");
        w.new_addr = layout.code + f.offset;
        w.entry_addr = layout.code + w.entry_offset;
        let (addr, bytes) = match &w.kind {
            EntryKind::Slot { slot } => (*slot, w.entry_addr.to_le_bytes().to_vec()),
            EntryKind::Redirect {
                redirect,
                slot_offset,
                stub_offset,
            } => {
                let (start, _) = redirect.span();
                let slot = layout.read_only + slot_offset;
                let stub = stub_offset.map(|o| layout.code + o);
                let bytes = redirect.bytes(slot, stub).map_err(|reason| PatchError::Entry {
                    name: w.name.clone(),
                    addr: w.orig,
                    reason,
                })?;
                (start, bytes)
            }
        };
        let before = vec![0u8; bytes.len()];
        out.push(PlannedWrite { addr, before, bytes });
    }
    let mut parts: Vec<(u64, &mut [u8])> = out.iter_mut().map(|w| (w.addr, w.before.as_mut_slice())).collect();
    process.read_many(&mut parts)?;
    Ok(out)
}

/// Dies here when `RELIVE_FAILPOINT` names this point: how the tests
/// kill relive at an exact step of a change (a SIGKILL from outside could
/// not aim), to check what a later relive finds. `NAME:MS` waits instead.
pub(crate) fn failpoint(name: &str) {
    let Some(set) = std::env::var_os("RELIVE_FAILPOINT") else {
        return;
    };
    let set = set.to_string_lossy();
    // `NAME:MS` waits there MS milliseconds instead (a test's moment to
    // change what the program does between two steps of a patch).
    match set.split_once(':') {
        Some((at, ms)) if at == name => {
            std::thread::sleep(Duration::from_millis(ms.parse().unwrap_or(0)));
        }
        None if set == name => std::process::abort(),
        _ => {}
    }
}

/// How many bytes from `end` (where a function ends) no symbol of the
/// process covers or starts in, up to [`entry::AFTER`]: padding a short
/// function may borrow must not be anybody's code.
fn unclaimed(symbols: &LiveSymbols, end: u64) -> u64 {
    (0..entry::AFTER)
        .take_while(|&k| end.checked_add(k).is_some_and(|a| symbols.at(a).is_none()))
        .count() as u64
}

/// How many bytes just before `entry` no symbol of the process covers,
/// up to [`entry::BEFORE`]: the previous function's alignment filler,
/// where a function too short for the entry jump may have it.
fn unclaimed_before(symbols: &LiveSymbols, entry: u64) -> u64 {
    (1..=entry::BEFORE)
        .take_while(|&k| entry.checked_sub(k).is_some_and(|a| symbols.at(a).is_none()))
        .count() as u64
}

/// Refuses a redirect whose bytes would leave the executable mapping of
/// the function at `entry` (padding borrowed at the very end of a code
/// segment must still be code).
fn check_mapped(maps: &[Mapping], entry: u64, redirect: &Redirect) -> std::result::Result<(), String> {
    let (start, len) = redirect.span();
    let inside = maps
        .iter()
        .find(|m| m.contains(entry))
        .is_some_and(|m| m.executable() && m.contains(start) && m.contains(start + len - 1));
    if inside {
        Ok(())
    } else {
        Err(format!(
            "its {len}-byte entry jump at {start:#x} would not lie in its executable mapping"
        ))
    }
}

/// Refuses a first redirect whose bytes in memory are not the program
/// file's: they would be recorded as the original and written back by a
/// revert. A process forked after its parent was patched holds the
/// parent's redirects (its own journal is adopted from the parent's, see
/// [`crate::inherit`]); a debugger's breakpoint or another patcher changes
/// them too. Entries outside a file mapping, or whose file was replaced,
/// are not checked.
fn check_unchanged(
    maps: &[Mapping],
    site: &entry::Site,
    redirect: &Redirect,
    files: &mut FileCache,
) -> std::result::Result<(), String> {
    let (start, len) = redirect.span();
    let Some(m) = maps
        .iter()
        .find(|m| m.start <= start && start + len <= m.end && m.is_file() && m.inode != 0)
    else {
        return Ok(());
    };
    // The span in what was read: `site.before` ends at the entry, `site.code` starts there.
    let memory: Vec<u8> = (start..start + len)
        .map_while(|a| match a.checked_sub(site.entry) {
            Some(k) => site.code.get(k as usize).copied(),
            None => site.before.get((entry::BEFORE - (site.entry - a)) as usize).copied(),
        })
        .collect();
    let Some(file) = files.bytes(m, start, len as usize) else {
        return Ok(());
    };
    if memory.len() == file.len() && memory != file {
        return Err(format!(
            "its entry at {start:#x} holds {}, not the program's code ({} has {} there): something changed it after the program started (a parent process patched before it forked this one, whose journal relive cannot find; another patcher; a debugger's breakpoint), and relive will not record changed bytes as the original; restart the process",
            hex(&memory),
            m.path,
            hex(&file)
        ));
    }
    Ok(())
}

/// Writes each near redirect's stub, `jmp *slot(%rip)`, into `code` (the
/// code part) now that `layout` says where the stub and its slot are.
fn fill_stubs(code: &mut [u8], layout: &Layout, work: &[EntryWork]) -> Result<()> {
    for w in work {
        if let EntryKind::Redirect {
            slot_offset,
            stub_offset: Some(stub),
            ..
        } = w.kind
        {
            let (at, slot) = (layout.code + stub, layout.read_only + slot_offset);
            let placed = entry::stub_bytes(at, slot).and_then(|bytes| {
                let dst = code.get_mut(stub as usize..stub as usize + bytes.len())?;
                dst.copy_from_slice(&bytes);
                Some(())
            });
            placed.ok_or_else(|| PatchError::Entry {
                name: w.name.clone(),
                addr: w.orig,
                reason: format!("its stub at {at:#x} cannot reach its jump slot at {slot:#x}"),
            })?;
        }
    }
    Ok(())
}

/// Whether a revert's report names `added` among what patches added (a
/// function or variable, not a cold part, which goes with its function).
fn said_added(added: &journal::AddedRecord) -> bool {
    matches!(added.kind.as_str(), "function" | "object") && !crate::names::is_cold_part(&added.name)
}

/// Why no room can be found for `prepared`: an object with absolute
/// 32-bit relocations needs its region below 2 or 4 GiB, and the program's
/// image lies further above that than a 32-bit displacement reaches (a
/// position-independent program, loaded high). Said before room is looked
/// for, which failed as if the address space were crowded (a bzip2
/// trial's `-fno-pic` object on its PIE program).
fn needs_room_out_of_reach(target: &Target, prepared: &[Prepared]) -> Option<String> {
    let (limit, p) = prepared
        .iter()
        .filter_map(|p| Some((p.linked.below?, p)))
        .min_by_key(|&(limit, _)| limit)?;
    let (path, lo, hi) = target.resolver.home();
    // The lowest place every part of the image reaches with rel32.
    let lowest = hi.saturating_sub(1 << 31);
    (lowest >= limit).then(|| {
        format!(
            "{} has absolute 32-bit relocations (R_X86_64_32 or 32S: it was compiled without -fPIC or -fPIE, as -fno-pic makes it), so its code and data must lie below {limit:#x}, but {path} is loaded at {lo:#x}, too far above that for its calls to reach; compile it with the program's flags (-fPIE or -fPIC)",
            p.obj.path
        )
    })
}

/// Where a patch's region may be: within rel32 reach of its home module,
/// and below `below` if absolute 32-bit relocations need a limit.
fn placement(target: &Target, below: Option<u64>) -> Placement {
    let (_, lo, hi) = target.resolver.home();
    let placement = Placement::near_range(lo, hi);
    match below {
        Some(limit) => placement.below(limit),
        None => placement,
    }
}

/// Smallest pool parts: most patches fit many times over.
const POOL_CODE: u64 = 256 << 10;
/// How much memory the symbol files of a pool's patches may take before
/// the next patch goes to a new pool: a symbol file holds the object's
/// whole DWARF (26 KB for zlib's `deflate.c`, 330 KB for zstd's
/// `zstd_compress.c`), so this, not the code, is what fills a pool of
/// patches of one small function. Superseded pools are freed (see
/// `reclaim`): 2,000 patches of a zlib function kept 3 pools and 9 to
/// 11 MiB of symbol files, where without a limit they grew by 25 MiB
/// every 1,000 patches.
const POOL_DEBUG_IMAGES: u64 = 4 << 20;
const POOL_DATA: u64 = 64 << 10;
const PAGE: u64 = 4096;

/// Allocates a new pool near the program image with room for parts of the
/// given sizes; returns it and how long the threads were stopped.
fn new_pool(
    target: &mut Target,
    placement: &Placement,
    code: u64,
    ro: u64,
    rw: u64,
) -> Result<(RegionRecord, Duration)> {
    let process = target.process;
    let size = |need: u64, min: u64| (need + PART_ALIGN).next_multiple_of(PAGE).max(min);
    let (code_len, ro_len, rw_len) = (size(code, POOL_CODE), size(ro, POOL_DATA), size(rw, POOL_DATA));
    let len = code_len + ro_len + rw_len;
    let maps = process.maps()?;
    let start = Instant::now();
    // One thread runs the system calls; the others never stop for it.
    let mut stopped = process.stop_one()?;
    // Each try is recorded before it is mapped (see `mapping_pool`).
    let (journal, dir) = (&mut target.journal, &target.journal_dir);
    let mut announce = |addr: u64, len: u64| {
        journal.mapping_pool = Some((addr, len));
        journal.save(dir).map_err(|e| std::io::Error::other(e.to_string()))
    };
    let a = match alloc::allocate_announced(
        stopped.as_mut(),
        process.pid(),
        &maps,
        len,
        Protection::READ,
        placement,
        &mut announce,
    ) {
        Ok(a) => a,
        Err(e) => {
            // Nothing was mapped: the last try's mark names memory that was
            // there already, which the next relive must not free.
            target.journal.mapping_pool = None;
            let _ = target.journal.save(&target.journal_dir);
            return Err(e.into());
        }
    };
    let protected = stopped
        .protect(a.addr, code_len, Protection::READ_EXEC)
        .and_then(|_| stopped.protect(a.addr + code_len + ro_len, rw_len, Protection::READ_WRITE));
    if let Err(e) = protected {
        let _ = stopped.unmap(a.addr, a.len);
        return Err(e.into());
    }
    failpoint("pool-after-map");
    stopped.resume()?;
    // Recorded as a region from here on; the file drops the mark with
    // the next save.
    target.journal.mapping_pool = None;
    Ok((
        RegionRecord {
            addr: a.addr,
            len: a.len,
            code_len,
            ro_len,
            rw_len,
            ..RegionRecord::default()
        },
        start.elapsed(),
    ))
}

/// Why reverting `reverted` alone could leave code calling code of another
/// version of an edit, if it could: a reverted function and a function
/// that stays patched that one change patched both, where one calls the
/// other. A signature change reaches callers only through a change that
/// has them both (relive refuses it otherwise), so splitting such a pair
/// can leave the original code calling patched code the old way, or the
/// other way round (a Lua trial: `lua_tolstring` reverted alone called the
/// 3-argument `luaO_tostring` with 2, and printed what no build does).
fn splits_a_change(target: &Target, reverted: &[PatchRecord]) -> Option<String> {
    let (a, b, change, members) = revert_group(target, reverted)?;
    let quoted: Vec<String> = members.iter().map(|m| quoted_for_a_shell(m)).collect();
    let shown = |n: &str| crate::names::readable(n);
    Some(format!(
        "{} and {} were patched in one change (number {change}) and one calls the other: reverted alone, {} would run its original code beside the other's patched code, which may expect other arguments or another return type if that change altered a signature; revert them together (`relive revert {} {}`), or whole changes (--last, --all); nothing was reverted",
        shown(&a),
        shown(&b),
        shown(&a),
        target.process.pid(),
        quoted.join(" ")
    ))
}

/// What `relive revert` of `record` alone must name to be done: the
/// function, or with it every function [`splits_a_change`] would have go
/// with it, each quoted for a shell (`verify` suggested a lone revert
/// that `revert` then refused: a libxz trial).
/// `known`: the groups found before (their members' symbols and their
/// command), asked first: a group is found once however many of its
/// functions a `verify` names.
pub(crate) fn revert_command(target: &Target, record: &PatchRecord, known: &mut Vec<(Vec<String>, String)>) -> String {
    if let Some((_, command)) = known.iter().find(|(members, _)| members.contains(&record.name)) {
        return command.clone();
    }
    let members = match revert_group(target, std::slice::from_ref(record)) {
        Some((_, _, _, members)) => members,
        None => vec![record.name.clone()],
    };
    let quoted: Vec<String> = members.iter().map(|m| quoted_for_a_shell(m)).collect();
    let command = format!("relive revert {} {}", target.process.pid(), quoted.join(" "));
    known.push((members, command.clone()));
    command
}

/// `symbol` as people write it, quoted for a shell where it needs to be
/// (C++ names have spaces and parentheses).
fn quoted_for_a_shell(symbol: &str) -> String {
    let name = crate::names::readable(symbol);
    shlex::try_quote(&name).map_or(name.clone(), |q| q.into_owned())
}

/// The pair of [`splits_a_change`] (a reverted function, one that would
/// stay patched, and the change they share) and every function that must
/// go with `reverted` (their symbols); `None` when they go alone.
fn revert_group(target: &Target, reverted: &[PatchRecord]) -> Option<(String, String, u64, Vec<String>)> {
    let original = OriginalCode {
        process: target.process,
        resolver: &target.resolver,
        journal: &target.journal,
    };
    // The functions each reverted function's original code calls (what it
    // runs again), decoded once each.
    let calls_of_original = |r: &PatchRecord| -> Vec<u64> {
        clobber::LiveCode::function(&original, r.orig_addr)
            .map(|bytes| {
                crate::code::decode(&bytes)
                    .pc_relative
                    .iter()
                    .filter(|f| f.branch)
                    .map(|f| r.orig_addr.wrapping_add_signed(f.target))
                    .collect()
            })
            .unwrap_or_default()
    };
    // Read (the program's DWARF) only once a pair calls for it.
    let kept = std::cell::OnceCell::new();
    let kept_signature = |p: &PatchRecord| kept.get_or_init(|| kept_signatures(target)).contains(&p.orig_addr);
    // The change `r` (reverted) and `p` (staying patched) share, when one
    // calls the other and the callee's signature is not known to be the
    // one it always had (then either side's code calls the other's the
    // way it expects: two trials were refused reverting a body edit, and
    // told to revert 9 and 80 functions together).
    let coupled = |r: &PatchRecord, calls: &[u64], p: &PatchRecord| -> Option<u64> {
        let change = r
            .history
            .iter()
            .map(|g| g.change)
            .find(|c| p.history.iter().any(|g| g.change == *c))?;
        let p_calls_r = p.history.last().is_some_and(|g| g.calls.contains(&r.name)) && !kept_signature(r);
        let r_calls_p = calls.contains(&p.orig_addr) && !kept_signature(p);
        (p_calls_r || r_calls_p).then_some(change)
    };
    // Every function that must go with them: the closure (one split pair
    // named, then another, was the first suggestion a re-check followed).
    let mut group: Vec<(&PatchRecord, Vec<u64>)> = reverted.iter().map(|r| (r, calls_of_original(r))).collect();
    let mut first: Option<(String, String, u64)> = None;
    loop {
        let outside: Vec<&PatchRecord> = target
            .journal
            .patches
            .iter()
            .filter(|p| !group.iter().any(|(g, _)| g.orig_addr == p.orig_addr))
            .collect();
        let joining: Vec<(&PatchRecord, String, u64)> = outside
            .into_iter()
            .filter_map(|p| {
                group
                    .iter()
                    .find_map(|(r, calls)| Some((p, r.name.clone(), coupled(r, calls, p)?)))
            })
            .collect();
        if joining.is_empty() {
            break;
        }
        for (p, r, change) in joining {
            first.get_or_insert((r, p.name.clone(), change));
            group.push((p, calls_of_original(p)));
        }
    }
    let (a, b, change) = first?;
    Some((a, b, change, group.iter().map(|(p, _)| p.name.clone()).collect()))
}

/// How a warning starts that the process has no unwinder for new code.
const NO_UNWINDER: &str = "the process has no unwinder loaded, and relive could not load one";
/// How a warning starts that gdb attached by itself will not see new code.
const GDB_UNTOLD: &str = "gdb attached by itself will not see the new code";

/// Whether a patch's warning tells a lasting condition of the process
/// (no unwinder, gdb untold), which each later patch meets again until it
/// clears, rather than something of this patch.
pub fn is_lasting_condition(warning: &str) -> bool {
    warning.starts_with(NO_UNWINDER) || warning.starts_with(GDB_UNTOLD)
}

/// How many functions (or globals) a note names before "and N more".
const NAMED_IN_NOTE: usize = 5;

/// One note for the first redirects whose jump covers a statement of the
/// old code (`split`: function, where, offset): a gdb line breakpoint
/// there, set by a debugger attached later, breaks the jump. One line per
/// function was a screenful on every SQLite reload that redirected dozens.
fn split_statements_note(split: &[(String, u64, u64)]) -> Option<String> {
    let ((name, at, offset), rest) = split.split_first()?;
    let others = match rest.len() {
        0 => String::new(),
        n => {
            let named: Vec<&str> = rest.iter().take(NAMED_IN_NOTE).map(|(n, _, _)| n.as_str()).collect();
            let more = match n.saturating_sub(NAMED_IN_NOTE) {
                0 => String::new(),
                m => format!(" and {m} more"),
            };
            format!(" (and likewise in {}{more})", named.join(", "))
        }
    };
    Some(format!(
        "for a debugger attached later (nothing is wrong now): a gdb breakpoint on a line of {name} also goes into its old code, and the one at {at:#x} (+{offset:#x}) would be inside the jump relive wrote at its entry{others}: while it is set, calls through the old entry crash. Disable that location (`info breakpoints`, then `disable N.M`); the breakpoint's location in the new code works as it should. Builds with -fpatchable-function-entry=8,6 avoid it (a 2-byte entry jump)"
    ))
}

/// Module, source file name, and whether the names are `static`
/// functions': where to read signatures, and how.
type DwarfQuery = (String, String, bool);

/// The entries of the patched functions whose signature is known never
/// to have changed: every generation since the first has one recorded
/// (from its compile's DWARF), the same, the program's own DWARF gives
/// its original code that one too, and no patched code calls it as one
/// whose signature its change altered. Not GCC's clones (`f.isra.0`): their
/// parameters are the compiler's choice, which the source's signature
/// does not show.
fn kept_signatures(target: &Target) -> foldhash::HashSet<u64> {
    // Called the new way by some patched code: a signature change of
    // one whose code did not change is not patched into it.
    let called_anew: foldhash::HashSet<&str> = target
        .journal
        .patches
        .iter()
        .flat_map(|p| &p.history)
        .flat_map(|g| &g.signature_calls)
        .map(String::as_str)
        .collect();
    // Names asked of each module's DWARF, each unit in one pass.
    let mut asked: BTreeMap<DwarfQuery, Vec<(String, &PatchRecord)>> = BTreeMap::new();
    for p in target
        .journal
        .patches
        .iter()
        .filter(|p| !called_anew.contains(p.name.as_str()))
    {
        let complete = p.history.first().is_some_and(|g| g.generation == 1);
        let Some(signature) = p.history.first().and_then(|g| g.signature.as_ref()) else {
            continue;
        };
        let one = p.history.iter().all(|g| g.signature.as_ref() == Some(signature));
        let name = names::parse(&p.name);
        let source = p.history.last().and_then(|g| g.source.as_deref());
        let module = target
            .resolver
            .symbols()
            .module_at(p.orig_addr)
            .map(|(path, _, _)| path);
        let (Some(source), Some(module), true, true, true) = (source, module, complete, one, name.clones.is_empty())
        else {
            continue;
        };
        let file = source.rsplit('/').next().unwrap_or(source).to_string();
        let local = target
            .resolver
            .symbols()
            .at(p.orig_addr)
            .is_some_and(|(s, _)| s.binding == Binding::Local);
        let asked_as = if local { name.base } else { p.name.clone() };
        asked
            .entry((module.to_string(), file, local))
            .or_default()
            .push((asked_as, p));
    }
    let mut kept = foldhash::HashSet::default();
    for ((module, file, local), wanted) in asked {
        let Some((image, _)) = target.resolver.symbols().module_image(&module) else {
            continue;
        };
        let kind = match local {
            true => signature::Subprograms::StaticDefinitions,
            false => signature::Subprograms::Definitions,
        };
        let names: Vec<&str> = wanted.iter().map(|(n, _)| n.as_str()).collect();
        let built = signature::built_with(image.data(), &file, &names, kind);
        for (name, p) in &wanted {
            let first = p.history.first().and_then(|g| g.signature.as_ref());
            if built.get(name).is_some_and(|b| Some(b) == first) {
                kept.insert(p.orig_addr);
            }
        }
    }
    kept
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The result of a revert.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RevertReport {
    pub reverted: Vec<Reverted>,
    /// Reverted functions a thread was running a call of their patched
    /// code in: that call finishes in it; the calls after it run what the
    /// revert brought back.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub running: Vec<RunningCall>,
    /// Regions unmapped: nothing can be using them any more.
    pub freed: Vec<RegionRecord>,
    /// Regions kept although no patch uses them, because a thread's
    /// registers, a stack or the program's data still point into them.
    pub kept: Vec<crate::reclaim::KeptRegion>,
    /// Functions and variables the changes a revert undid added (the
    /// program did not have them) that stay: a revert undoes redirects,
    /// not added code, so a pointer to one that the program keeps (a
    /// callback) still calls it, and a variable keeps its value. They go
    /// with their pool.
    pub added_stay: Vec<journal::AddedRecord>,
    /// Functions and variables patches added that went with the pools
    /// this revert freed: a variable's value is gone (a later patch that
    /// uses it adds it anew, with its initial value).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub added_gone: Vec<journal::AddedRecord>,
    /// What the user should know (the journal could not be saved).
    pub warnings: Vec<String>,
    /// How long every thread stood still (µs): 0 when none was stopped
    /// (only jump slots moved back).
    pub pause_us: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Reverted {
    /// As people write it (C++ demangled: `Sq::area() const`).
    pub name: String,
    /// The symbol as the object names it (`_ZNK2Sq4areaEv`; the same as
    /// `name` in C).
    pub symbol: String,
    pub addr: u64,
    /// The generation it runs now (`revert --last` of a later patch); null
    /// when its original code is back.
    pub generation: Option<u32>,
    /// For a function a patch added (its original code is what that patch
    /// brought, not the program's): the change that added it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub added_by: Option<u64>,
}

/// A call of a function's code under way on some threads.
#[derive(Debug, Clone, Serialize)]
pub struct RunningCall {
    /// As people write it.
    pub name: String,
    pub threads: Vec<u32>,
}

/// Undoes the last patch (`revert --last`): each function it changed runs
/// the generation before again (its jump slot gets back that one's entry:
/// one 8-byte store, nothing stopped), or its original code when that
/// patch was its first.
pub fn revert_last(target: &mut Target) -> Result<RevertReport> {
    undo(target, None)
}

/// Undoes change number `change` (the journal's `changes` right after
/// it was made), if it is still the last: how a patch of several
/// processes takes back what it did in the others when one fails. A
/// change another relive made since is not undone (an error says so).
pub fn undo_change(target: &mut Target, change: u64) -> Result<RevertReport> {
    undo(target, Some(change))
}

fn undo(target: &mut Target, expected: Option<u64>) -> Result<RevertReport> {
    let _transaction = target.transaction()?;
    target.journal.load_history(&target.journal_dir)?;
    let pid = target.process.pid();
    let last = target
        .journal
        .patches
        .iter()
        .filter_map(|p| p.history.last().map(|g| g.change))
        .max();
    let Some(last) = last else {
        if target.journal.patches.is_empty() {
            return Err(PatchError::NoPatches { pid });
        }
        return Err(PatchError::Refused {
            what: format!("process {pid}'s journal has no history of its patches (made by an older relive): revert functions by name or --all"),
        });
    };
    if expected.is_some_and(|change| change != last) {
        return Err(PatchError::Refused {
            what: format!("process {pid} was changed by another relive since (its last change is number {last}): it is left as it is"),
        });
    }
    let touched: Vec<PatchRecord> = target
        .journal
        .patches
        .iter()
        .filter(|p| p.history.last().is_some_and(|g| g.change == last))
        .cloned()
        .collect();
    // A function whose previous generation is no longer kept (only the
    // last few are, and a freed pool takes older ones with it) cannot go
    // back one step: going back to its original code instead would not be
    // what was asked.
    let kept_previous = |p: &PatchRecord| {
        let n = p.history.len();
        n >= 2 && p.history[n - 2].generation + 1 == p.generation
    };
    if let Some(p) = touched.iter().find(|p| p.generation > 1 && !kept_previous(p)) {
        return Err(PatchError::Refused {
            what: format!(
                "{} runs generation {}, and generation {} is gone: its code was freed with a pool that held only superseded generations (relive keeps at least the last {} of each function): nothing was reverted. `relive revert {pid} {}` brings back its original code",
                crate::names::readable(&p.name),
                p.generation,
                p.generation - 1,
                journal::HISTORY,
                crate::names::readable(&p.name),
            ),
        });
    }
    let (firsts, laters): (Vec<PatchRecord>, Vec<PatchRecord>) = touched.into_iter().partition(|p| p.history.len() < 2);
    revert_change(target, "revert --last", &firsts, &laters)
}

/// Restores the original entries of `names` (all patches when `None`) and
/// frees regions nothing can still be using.
pub fn revert(target: &mut Target, names: Option<&[String]>) -> Result<RevertReport> {
    let _transaction = target.transaction()?;
    let pid = target.process.pid();
    // A function is named by its symbol, as people write it (C++
    // demangled, as relive prints it), or by its source name when GCC
    // patched a clone of it (`handle_compress` for `handle_compress.isra.0`,
    // which `relive revert PID handle_compress` said was not patched).
    let named = |p: &PatchRecord, n: &String| {
        &p.name == n || crate::names::written_as(&p.name, n) || {
            let parsed = crate::names::parse(&p.name);
            !parsed.clones.is_empty() && parsed.base == *n
        }
    };
    if let Some(names) = names {
        for n in names {
            if !target.journal.patches.iter().any(|p| named(p, n)) {
                let mut patched_in_scope: Vec<String> = target
                    .journal
                    .patches
                    .iter()
                    .filter(|p| crate::names::in_scope(&p.name, n))
                    .map(|p| crate::names::readable(&p.name))
                    .collect();
                patched_in_scope.sort();
                patched_in_scope.dedup();
                // A C++ name as people write it (`Sq::area() const`) is not
                // a symbol: not said to be missing.
                let written = n.contains([':', '(', '<', ' ']);
                let added_by = target
                    .journal
                    .added
                    .iter()
                    .rfind(|a| &a.name == n && a.kind == "function")
                    .map(|a| a.change);
                let in_program =
                    written || !patched_in_scope.is_empty() || !target.resolver.symbols().lookup(n).is_empty();
                return Err(PatchError::NotPatched {
                    pid,
                    name: n.clone(),
                    patched_in_scope,
                    in_program,
                    added_by,
                });
            }
        }
    }
    // Which pools the generations `revert --last` can go back to are in:
    // they stay (`undo` has the histories already). Read before the
    // records are taken: the check below needs every kept generation's
    // change (with the newest alone, a caller patched again after a
    // signature change was reverted alone: a re-check on Lua).
    target.journal.load_history(&target.journal_dir)?;
    let selected: Vec<PatchRecord> = target
        .journal
        .patches
        .iter()
        .filter(|p| names.is_none_or(|names| names.iter().any(|n| named(p, n))))
        .cloned()
        .collect();
    if names.is_some() {
        if let Some(what) = splits_a_change(target, &selected) {
            return Err(PatchError::Refused { what });
        }
    }
    // The first change the revert undoes: no earlier code has its edits.
    // (A history that no longer reaches the first generation says
    // nothing of when the first edit was: every change is read then.)
    let since = selected
        .iter()
        .map(|p| match p.history.first() {
            Some(g) if g.generation <= 1 => g.change,
            _ => 0,
        })
        .min()
        .unwrap_or(0);
    let mut report = revert_change(target, "revert", &selected, &[])?;
    // Reverted by name, a function may still run edited where a patch
    // that stays has it inlined.
    if names.is_some() {
        let reverted: Vec<String> = report.reverted.iter().map(|r| r.symbol.clone()).collect();
        // One line per set of reverted functions, naming every patch
        // that has them (a zstd re-check: five lines alike).
        let mut said: Vec<(Vec<String>, Vec<String>)> = Vec::new();
        for (host, inlined) in crate::debug_file::inlined_in_remaining(target, &reverted, since) {
            let host = crate::names::readable(&host);
            let mut inlined: Vec<String> = inlined.iter().map(|n| crate::names::readable(n)).collect();
            inlined.sort();
            match said.iter_mut().find(|(i, _)| *i == inlined) {
                Some((_, hosts)) => hosts.push(host),
                None => said.push((inlined, vec![host])),
            }
        }
        report
            .warnings
            .extend(said.iter().map(|(inlined, hosts)| inlined_stays_said(hosts, inlined)));
    }
    Ok(report)
}

/// What a revert by name says of `hosts`, patches that stay whose code
/// has the reverted `inlined` inlined.
fn inlined_stays_said(hosts: &[String], inlined: &[String]) -> String {
    let (list, hosts_list) = (inlined.join(", "), hosts.join(", "));
    let (are, their) = match hosts.len() {
        1 => ("is", "its"),
        _ => ("are", "their"),
    };
    format!(
        "{hosts_list} {are} still patched, and {their} new code has {list} inlined: the patched version of {list} still runs there; revert {hosts_list} too to take it back everywhere"
    )
}

/// One revert, as one transaction (the caller holds its lock): the
/// functions of `whole` get their original entries back, and those of
/// `one_back` (patched more than once) their previous generation, through
/// their slots. Either all of it is done or none: `revert --last` over a
/// change that patched one function for the first time and re-patched
/// another must not leave one reverted and the other not. The histories
/// are loaded: the pools of generations `revert --last` can go back to
/// stay.
fn revert_change(
    target: &mut Target,
    by: &str,
    whole: &[PatchRecord],
    one_back: &[PatchRecord],
) -> Result<RevertReport> {
    let process = target.process;
    let pid = process.pid();
    let journal_path = Journal::path(&target.journal_dir, pid, target.journal.start_time)
        .display()
        .to_string();
    // The journal once done, decided (and saved ahead) before anything
    // is written: which regions go, given the patches that remain and
    // every generation `revert --last` can go back to.
    let mut after = target.journal.state();
    after
        .patches
        .retain(|p| !whole.iter().any(|s| s.orig_addr == p.orig_addr));
    // A region still runs code of a remaining patch: its slot, its
    // current generation, or one `revert --last` can go back to; or holds
    // what a patch added that such code may use.
    let added_after = after.added.clone();
    let in_use = |r: &RegionRecord, patches: &[PatchRecord]| {
        crate::reclaim::holds_generation(r, patches) || crate::reclaim::holds_added_in_use(r, &added_after, patches)
    };
    // Entries are written with the threads stopped, and the mappings read
    // then hold until the regions are freed; a refusal resumes the threads
    // with nothing written. Slots alone are single aligned stores. A
    // revert that moves no slot back also stops them when a region no
    // patch uses is still mapped (an earlier revert kept it, as something
    // pointed into it then): it is checked again and freed if nothing
    // does now.
    let unused_region = one_back.is_empty() && after.regions.iter().any(|r| !in_use(r, &after.patches));
    // Callers whose code going back was made by a change that changed the
    // signature of a function it calls: a call of that code still running
    // would call the function's old code the new way (a PCRE2 trial:
    // `revert --all` while a thread ran the new caller, and the program
    // computed what neither version of the source does). Checked with the
    // threads stopped, so no call starts between the check and the writes.
    // The generations the revert undoes, with their functions: all of a
    // function's when its original comes back, the newest when it goes
    // back one.
    let undone_generations: Vec<(&PatchRecord, &journal::Generation)> = whole
        .iter()
        .flat_map(|p| p.history.iter().map(move |g| (p, g)))
        .chain(one_back.iter().filter_map(|p| Some((p, p.history.last()?))))
        .collect();
    let signature_callers: Vec<(&str, &str)> = undone_generations
        .iter()
        .flat_map(|(p, g)| {
            g.signature_calls
                .iter()
                .map(move |callee| (p.name.as_str(), callee.as_str()))
        })
        .collect();
    let mut names: Vec<&str> = signature_callers.iter().map(|(caller, _)| *caller).collect();
    names.dedup();
    // A caller's call found running is looked for again, the threads
    // resumed in between, until it returns or the patience is over.
    let patience = Instant::now() + running_callers::CALLER_PATIENCE;
    let (stop_start, stopped) = loop {
        let stop_start = Instant::now();
        let stopped = match !whole.is_empty() || unused_region || !signature_callers.is_empty() {
            true => Some(process.stop()?),
            false => None,
        };
        let Some(s) = stopped.as_ref().filter(|_| !names.is_empty()) else {
            break (stop_start, stopped);
        };
        let running = running_callers::running_at(target, &names, &running_callers::positions_of(s.as_ref()));
        let Some((caller, threads)) = running.first() else {
            break (stop_start, stopped);
        };
        if Instant::now() >= patience {
            let callee = signature_callers
                .iter()
                .find(|(c, _)| c == caller)
                .map_or("", |(_, callee)| *callee);
            return Err(PatchError::Refused {
                what: running_callers::revert_refusal(caller, callee, threads),
            });
        }
        drop(stopped);
        std::thread::sleep(running_callers::CALLER_RECHECK);
    };
    // Calls of the code going back that are under way: each finishes in
    // it (a revert redirects new calls only), which the user is told.
    let undone_code: Vec<(String, u64, u64)> = undone_generations
        .iter()
        .filter(|(_, g)| g.size > 0)
        .map(|(p, g)| (p.name.clone(), g.code, g.size))
        .collect();
    let positions = match &stopped {
        Some(s) => running_callers::positions_of(s.as_ref()),
        None => running_callers::positions_now(process),
    };
    let running = running_callers::running_code(target, &undone_code, &positions)
        .into_iter()
        .map(|(name, threads)| RunningCall {
            name: crate::names::readable(&name),
            threads,
        })
        .collect();
    let maps = process.maps()?;
    let mut originals = Vec::new();
    for p in whole {
        originals.push(
            checked_original(process, &maps, p).map_err(|what| PatchError::Tampered {
                pid,
                path: journal_path.clone(),
                what,
            })?,
        );
    }
    let mut reverted = Vec::new();
    let mut writes: Vec<(u64, Vec<u8>, u64)> = Vec::new();
    // A function a patch added: what its entry goes back to is that
    // patch's code (a QuickJS trial read "reverted f" as the original).
    let added_by = |addr: u64| {
        target
            .journal
            .added
            .iter()
            .find(|a| a.addr == addr && a.kind == "function")
            .map(|a| a.change.unwrap_or(0))
    };
    for (p, original) in whole.iter().zip(&originals) {
        writes.push((p.span_start, original.clone(), p.orig_addr));
        reverted.push(Reverted {
            name: crate::names::readable(&p.name),
            symbol: p.name.clone(),
            addr: p.orig_addr,
            generation: None,
            added_by: added_by(p.orig_addr),
        });
    }
    for p in one_back {
        let record = after
            .patches
            .iter_mut()
            .find(|r| r.orig_addr == p.orig_addr)
            .expect("the record just read");
        record.history.pop();
        let previous = record.history.last().expect("two generations").clone();
        record.generation = previous.generation;
        record.current_addr = previous.code;
        writes.push((p.slot, previous.slot_value.to_le_bytes().to_vec(), p.orig_addr));
        reverted.push(Reverted {
            name: crate::names::readable(&p.name),
            symbol: p.name.clone(),
            addr: p.orig_addr,
            generation: Some(previous.generation),
            added_by: added_by(p.orig_addr),
        });
    }
    let mut freed = Vec::new();
    let mut kept = Vec::new();
    if let Some(stopped) = &stopped {
        let regions = std::mem::take(&mut after.regions);
        let patches = after.patches.clone();
        let sorted = crate::reclaim::sort_out(
            target,
            stopped.as_ref(),
            &maps,
            regions,
            &|r| in_use(r, &patches),
            &mut after.added,
        )?;
        (after.regions, freed, kept) = sorted;
    }
    let intent = journal::Intent {
        by: by.into(),
        after: after.clone(),
        history_appended: false,
        writes: writes
            .iter()
            .map(|(addr, bytes, record)| journal::IntentWrite {
                record: *record,
                addr: *addr,
                bytes: hex(bytes),
            })
            .collect(),
    };
    target.journal.begin(&target.journal_dir, intent)?;
    let mut undo = Undo::default();
    let slices: Vec<(u64, &[u8])> = writes
        .iter()
        .map(|(addr, bytes, _)| (*addr, bytes.as_slice()))
        .collect();
    if let Err(e) = undo.write_all(process, &slices, &|| failpoint("revert-after-first-write")) {
        undo.roll_back(process);
        target.journal.abandon(&target.journal_dir);
        return Err(e);
    }
    // The change is made: from here a failure is reported, not undone.
    let mut warnings = Vec::new();
    let journal_added = target.journal.added.clone();
    let (freed, paused) = crate::reclaim::release(
        target,
        (stopped, stop_start),
        freed,
        &mut after,
        &mut kept,
        &journal_added,
        &mut warnings,
    );
    // What the changes it undoes added.
    let undone: Vec<u64> = undone_generations.iter().map(|(_, g)| g.change).collect();
    // Of those changes, the files the reverted code came from: a change
    // that patched several files saved together added things in each, and
    // `revert lre_exec` listed a variable quickjs.c added as staying (a
    // QuickJS trial).
    let sources: Vec<&str> = undone_generations
        .iter()
        .filter_map(|(_, g)| g.source.as_deref())
        .collect();
    // Nothing patched is left: whatever any change added stays.
    let everything = after.patches.is_empty();
    // Changes whose code of a file still runs (a patch of theirs from
    // that file this revert left): what they added in that file is that
    // code's, not news of the revert (`revert js_math_clz32` listed the
    // helper its change added to quickjs.c for `js_string_repeat`, which
    // stays patched: a QuickJS trial).
    let still_running: std::collections::HashSet<(u64, Option<&str>)> = after
        .patches
        .iter()
        .filter_map(|p| p.history.last())
        .map(|g| (g.change, g.source.as_deref()))
        .collect();
    let added_stay = match reverted.is_empty() {
        true => Vec::new(),
        false => after
            .added
            .iter()
            .filter(|a| said_added(a))
            // An added function a later patch redirected is reported
            // reverted (to the added copy) already.
            .filter(|a| !reverted.iter().any(|r| r.addr == a.addr))
            // Records of older relive versions: not known, so said.
            .filter(|a| {
                a.change
                    .is_none_or(|c| undone.contains(&c) && !still_running.contains(&(c, a.file.as_deref())))
            })
            .filter(|a| match (&a.file, sources.is_empty() || everything) {
                (Some(file), false) => sources.contains(&file.as_str()),
                _ => true,
            })
            .cloned()
            .collect(),
    };
    // What went with the pools freed, said (an lz4 trial: `revert --all`
    // after a revert that said `stays XXH_seedBias` said only `freed`,
    // and the variable's value was gone).
    let added_gone: Vec<journal::AddedRecord> = journal_added
        .iter()
        .filter(|a| said_added(a) && freed.iter().any(|r| r.contains(a.addr)))
        .cloned()
        .collect();
    warnings.extend(target.journal.commit_after_change(&target.journal_dir, after));
    if !freed.is_empty() {
        crate::debug_file::remove_unmapped(target);
    }
    // Code in force again (`revert --last`) is listed for debuggers
    // again; what the revert superseded stays listed (a call may still
    // run it) until a patch finds no thread in it.
    if !one_back.is_empty() {
        if let Err(why) = crate::debugger::keep_to_live(process, &target.journal, (&|_, _| true, None), true) {
            warnings.push(format!(
                "the symbol files of the code that runs again could not all be listed for debuggers ({why}); `relive gdb {pid}` loads them"
            ));
        }
    }
    Ok(RevertReport {
        reverted,
        running,
        freed,
        kept,
        added_stay,
        added_gone,
        warnings,
        pause_us: micros(paused),
    })
}

/// The bytes a revert of `p` writes back, once checked: memory at the
/// entry holds exactly the redirect the journal says was written, and
/// where the entry lies in a mapped file (the program or a library), the
/// original bytes are that file's. A journal that fails either check is
/// stale or was changed by someone: writing it back could put anything
/// into the process.
fn checked_original(process: &dyn Process, maps: &[Mapping], p: &PatchRecord) -> std::result::Result<Vec<u8>, String> {
    let original = unhex(&p.original)
        .filter(|b| !b.is_empty())
        .ok_or_else(|| format!("it has no original bytes for {}", p.name))?;
    if !p.patched.is_empty() {
        let patched = unhex(&p.patched).ok_or_else(|| format!("its patched bytes of {} are not hex", p.name))?;
        let mut now = vec![0u8; patched.len()];
        process
            .read(p.span_start, &mut now)
            .map_err(|e| format!("the entry of {} at {:#x} cannot be read ({e})", p.name, p.span_start))?;
        if now != patched {
            return Err(format!(
                "the entry of {} at {:#x} holds {}, not the redirect {} relive wrote",
                p.name,
                p.span_start,
                hex(&now),
                p.patched
            ));
        }
    }
    let end = p.span_start + original.len() as u64;
    if let Some(m) = maps
        .iter()
        .find(|m| m.start <= p.span_start && end <= m.end && m.is_file() && m.inode != 0)
    {
        if let Some(file_bytes) = file_bytes(m, p.span_start, original.len()) {
            if file_bytes != original {
                return Err(format!(
                    "its original bytes of {} at {:#x} are {}, but {} has {} there",
                    p.name,
                    p.span_start,
                    p.original,
                    m.path,
                    hex(&file_bytes)
                ));
            }
        }
    }
    Ok(original)
}

/// `len` bytes of the file mapped by `m` at `addr`, if the file at its
/// path is still the mapped one (same inode).
pub(crate) fn file_bytes(m: &Mapping, addr: u64, len: usize) -> Option<Vec<u8>> {
    FileCache::default().bytes(m, addr, len)
}

/// The mapped files a change reads back, each opened once (a first patch
/// of every function of a large file checks each entry).
#[derive(Default)]
struct FileCache {
    open: Vec<((String, u64), Option<std::fs::File>)>,
}

impl FileCache {
    /// `len` bytes of the file mapped by `m` at `addr`, if the file at its
    /// path is still the mapped one (same inode).
    fn bytes(&mut self, m: &Mapping, addr: u64, len: usize) -> Option<Vec<u8>> {
        use std::os::unix::fs::{FileExt, MetadataExt};
        let k = match self.open.iter().position(|((p, i), _)| *p == m.path && *i == m.inode) {
            Some(k) => k,
            None => {
                let file = std::fs::File::open(&m.path)
                    .ok()
                    .filter(|f| f.metadata().is_ok_and(|meta| meta.ino() == m.inode));
                self.open.push(((m.path.clone(), m.inode), file));
                self.open.len() - 1
            }
        };
        let file = self.open[k].1.as_ref()?;
        let mut bytes = vec![0u8; len];
        file.read_exact_at(&mut bytes, m.offset + (addr - m.start)).ok()?;
        Some(bytes)
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;
    use crate::test_memory::Memory;

    #[test]
    fn patches_that_keep_a_reverted_edit_inlined_are_said_in_one_line() {
        let one = inlined_stays_said(&["compute".into()], &["divide".into()]);
        assert_eq!(
            one,
            "compute is still patched, and its new code has divide inlined: the patched version of divide still runs there; revert compute too to take it back everywhere"
        );
        let two = inlined_stays_said(&["a".into(), "b".into()], &["f".into()]);
        assert!(
            two.starts_with("a, b are still patched, and their new code has f inlined"),
            "{two}"
        );
    }

    /// First redirects over statements of the old code are said in one
    /// note, naming the first function's place and a few others, not one
    /// note each.
    #[test]
    fn split_statements_are_said_in_one_note() {
        assert_eq!(split_statements_note(&[]), None);
        let one = split_statements_note(&[("f".into(), 0x1004, 4)]).unwrap();
        assert!(
            one.contains("a line of f also goes") && one.contains("0x1004 (+0x4)"),
            "{one}"
        );
        assert!(!one.contains("likewise"), "{one}");
        let split: Vec<(String, u64, u64)> = (0..9).map(|k| (format!("f{k}"), 0x1000 + k, 2)).collect();
        let many = split_statements_note(&split).unwrap();
        assert!(many.contains("a line of f0 also goes"), "{many}");
        assert!(
            many.contains("(and likewise in f1, f2, f3, f4, f5 and 3 more)"),
            "{many}"
        );
        assert!(!many.contains("f6"), "{many}");
    }

    #[test]
    fn writes_are_read_back() {
        let jump = [0xe9, 0xfb, 0x1f, 0, 0];
        let good = Memory::new(None);
        let mut undo = Undo::default();
        undo.write_all(&good, &[(0x1004, &jump)], &|| ()).unwrap();
        assert_eq!(&good.bytes.borrow()[4..9], jump);

        // The fourth byte does not take: the write fails, naming what was
        // meant and what is there, and rolling back restores the original.
        let bad = Memory::new(Some((3, 0x55)));
        let mut undo = Undo::default();
        let err = undo.write_all(&bad, &[(0x1004, &jump)], &|| ()).unwrap_err();
        assert!(
            matches!(&err, PatchError::Verify { addr: 0x1004, wrote, found, .. } if wrote == "e9fb1f0000" && found == "e9fb1f5500"),
            "{err}"
        );
        undo.roll_back(&bad);
        assert_eq!(*bad.bytes.borrow(), (0..32).collect::<Vec<u8>>());
    }

    /// Several writes are read back together after the last: one that did
    /// not take fails the whole, naming its address, and rolling back
    /// restores every byte, the other writes' too.
    #[test]
    fn a_batch_of_writes_is_read_back_and_rolled_back_whole() {
        let memory = Memory::new(Some((1, 0x55)));
        let mut undo = Undo::default();
        let first = Cell::new(0);
        let writes: [(u64, &[u8]); 3] = [(0x1000, &[0xaa; 4]), (0x1008, &[0xbb; 8]), (0x1018, &[0xcc; 2])];
        let err = undo
            .write_all(&memory, &writes, &|| first.set(first.get() + 1))
            .unwrap_err();
        assert!(matches!(&err, PatchError::Verify { addr: 0x1000, .. }), "{err}");
        assert_eq!(first.get(), 1, "after the first write only");
        assert_eq!(&memory.bytes.borrow()[0x18..0x1a], [0xcc, 0xcc], "every write was made");
        undo.roll_back(&memory);
        assert_eq!(*memory.bytes.borrow(), (0..32).collect::<Vec<u8>>());

        // A write outside memory: refused before anything is written.
        let memory = Memory::new(None);
        let mut undo = Undo::default();
        let writes: [(u64, &[u8]); 2] = [(0x1000, &[0xaa; 4]), (0x1010, &[0xbb; 32])];
        assert!(undo.write_all(&memory, &writes, &|| ()).is_err());
        assert!(undo.writes.is_empty());
        assert_eq!(*memory.bytes.borrow(), (0..32).collect::<Vec<u8>>());
    }

    #[test]
    fn a_redirect_stays_in_its_code_mapping() {
        let map = |start: u64, end: u64, perms: &str| Mapping {
            start,
            end,
            perms: perms.into(),
            offset: 0,
            dev: "00:00".into(),
            inode: 1,
            path: "/app".into(),
        };
        let maps = [map(0x1000, 0x2000, "r-xp"), map(0x2000, 0x3000, "r--p")];
        assert!(check_mapped(&maps, 0x1ff0, &Redirect::Near { at: 0x1ff0 }).is_ok());
        assert!(check_mapped(&maps, 0x1ffb, &Redirect::Near { at: 0x1ffb }).is_ok());
        // Borrowing "padding" past the end of the code segment: refused.
        let err = check_mapped(&maps, 0x1ffc, &Redirect::Near { at: 0x1ffc }).unwrap_err();
        assert!(err.contains("executable mapping"), "{err}");
        assert!(check_mapped(&maps, 0x2000, &Redirect::Jump { at: 0x2000 }).is_err());
    }
}
