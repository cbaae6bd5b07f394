//! Patches a process inherited by `fork`.
//!
//! A process forked from a patched one starts with its parent's memory:
//! the parent's redirects, jump slots and pools run in it too, but
//! relive's journal names only the parent. Without this module the child
//! looks unpatched: `status` says so, and a patch would fail on entries
//! that are not the program's code (or, before that check, record the
//! parent's jumps as the original code for a revert to write back).
//!
//! The child's memory is the truth. The journal of its nearest ancestor
//! that relive patched (same program) is adopted only when every redirect
//! and jump slot it records is in the child's memory as recorded, every
//! pool is mapped there at the same address, and (when the ancestor can
//! be read) the code in use in the pools is the same bytes in both. A
//! child forked before a later patch of its parent fails that test and
//! is reported, never guessed at.

use relive_process::maps::Mapping;
use relive_process::Process;

use crate::error::Result;
use crate::journal::{unhex, Journal};
use crate::state::StateDir;

/// How far up the process tree a journal is looked for (a worker's
/// worker is two levels down).
const MAX_DEPTH: usize = 16;

/// Pool code compared between child and ancestor, at most (the code of
/// the patches that run; pools are a few MiB at the most).
const MAX_COMPARED: u64 = 64 << 20;

/// What was found for a process that has no journal of its own.
pub enum Inherited {
    /// The journal of the ancestor `from`, now the process's own.
    Adopted { from: u32, journal: Box<Journal> },
    /// The ancestor `from` is patched but the process does not run what
    /// its journal records now.
    Differs { from: u32, why: String },
}

impl Inherited {
    /// What the user should be told.
    pub fn note(&self, pid: u32) -> String {
        match self {
            Inherited::Adopted { from, journal } => format!(
                "process {pid} was forked from process {from} after relive patched it: it runs the same {} patched function{}, and relive now keeps a journal for it too",
                journal.patches.len(),
                if journal.patches.len() == 1 { "" } else { "s" }
            ),
            Inherited::Differs { from, why } => format!(
                "process {pid} was forked from process {from}, which relive patched, but it does not run process {from}'s patches as they are now ({why}; process {from} was patched or reverted after the fork): relive cannot tell what process {pid} runs, and will refuse to patch the functions it finds changed; restart process {pid} to patch it"
            ),
        }
    }
}

/// Looks up the ancestors of `process`, which has no journal, for the
/// nearest one relive patched that runs `image`, and checks the process
/// against its journal. `None` when no ancestor is patched.
pub fn find(process: &dyn Process, dir: &StateDir, image: &str) -> Result<Option<Inherited>> {
    let pid = process.pid();
    let mut ancestor = pid;
    for _ in 0..MAX_DEPTH {
        ancestor = match relive_process::parent_of(ancestor) {
            Some(p) if p > 1 => p,
            _ => return Ok(None),
        };
        // Another program (the shell that started this one): nothing
        // above it can have been inherited.
        if !runs_image(ancestor, image) {
            return Ok(None);
        }
        let Ok(Some(started)) = relive_process::started_at(ancestor) else {
            return Ok(None);
        };
        let mut journal = Journal::load(dir, ancestor, started, image)?;
        if journal.patches.is_empty() && journal.regions.is_empty() {
            // Unpatched itself, or forked from a patched one in turn.
            continue;
        }
        if !carries(process, &journal) {
            // Forked before the ancestor's patches, or reverted since.
            return Ok(None);
        }
        if journal.intent.is_some() {
            return Ok(Some(Inherited::Differs {
                from: ancestor,
                why: "a relive change of it is under way or was interrupted".into(),
            }));
        }
        journal.load_history(dir)?;
        return Ok(Some(match runs(process, &journal, ancestor) {
            Ok(()) => Inherited::Adopted {
                from: ancestor,
                journal: Box::new(journal.adopted_by(pid, process.start_time()?)),
            },
            Err(why) => Inherited::Differs { from: ancestor, why },
        }));
    }
    Ok(None)
}

/// Whether process `pid` runs the program at `image` (its
/// `/proc/PID/exe`; a rebuilt file shows as ` (deleted)`).
fn runs_image(pid: u32, image: &str) -> bool {
    std::fs::read_link(format!("/proc/{pid}/exe"))
        .is_ok_and(|exe| exe.to_str().is_some_and(|e| e.trim_end_matches(" (deleted)") == image))
}

/// Whether `process` shows any sign of what `journal` records: one of its
/// pools mapped at the same address, or one of its redirects.
fn carries(process: &dyn Process, journal: &Journal) -> bool {
    let maps = process.maps().unwrap_or_default();
    let pooled = journal
        .regions
        .iter()
        .any(|r| maps.iter().any(|m| m.contains(r.addr) && !m.is_file()));
    pooled
        || journal.patches.iter().any(|p| {
            unhex(&p.patched).filter(|b| !b.is_empty()).is_some_and(|patched| {
                let mut now = vec![0u8; patched.len()];
                process.read(p.span_start, &mut now).is_ok() && now == patched
            })
        })
}

/// Whether `process` runs exactly what `journal` (of process `ancestor`)
/// records; why not, if not.
fn runs(process: &dyn Process, journal: &Journal, ancestor: u32) -> std::result::Result<(), String> {
    let maps = process
        .maps()
        .map_err(|e| format!("its mappings cannot be read ({e})"))?;
    let anonymous = |addr: u64| maps.iter().any(|m: &Mapping| m.contains(addr) && !m.is_file());
    for r in &journal.regions {
        if !anonymous(r.addr) || !anonymous(r.addr + r.len - 1) {
            return Err(format!("the pool at {:#x} is not mapped in it", r.addr));
        }
    }
    let read = |addr: u64, len: usize| {
        let mut bytes = vec![0u8; len];
        process.read(addr, &mut bytes).ok().map(|_| bytes)
    };
    for p in &journal.patches {
        if let Some(patched) = unhex(&p.patched).filter(|b| !b.is_empty()) {
            if read(p.span_start, patched.len()).as_ref() != Some(&patched) {
                return Err(format!("the entry of {} is not redirected", p.name));
            }
        }
        let slot_value = p.history.last().map_or(p.current_addr, |g| g.slot_value);
        if read(p.slot, 8).as_deref() != Some(&slot_value.to_le_bytes()[..]) {
            return Err(format!("{} runs another generation", p.name));
        }
    }
    // The code in use: the same bytes in both, when the ancestor can be
    // read (code in the pools is never written twice, so a difference is
    // code the ancestor got after the fork).
    let Ok(parent) = relive_process::open(ancestor) else {
        return Ok(());
    };
    let mut compared = 0;
    for &(start, end) in journal.code_blocks.iter().flatten() {
        let len = end.saturating_sub(start);
        compared += len;
        if compared > MAX_COMPARED {
            break;
        }
        let mut theirs = vec![0u8; len as usize];
        if parent.read(start, &mut theirs).is_err() {
            return Ok(());
        }
        if read(start, len as usize).as_ref() != Some(&theirs) {
            return Err(format!("the patch code at {start:#x} differs"));
        }
    }
    Ok(())
}
