//! Several processes running one program, changed together: a prefork
//! server's parent and its workers (`relive run`, `relive patch --tree`),
//! or every process running a file (`--exe`). Each process keeps its own
//! journal; what this module adds is choosing them, settling each one's
//! journal before any is changed, telling a worker that already runs a
//! patch (forked after it) from one that needs it, and taking a patch
//! back out of the ones done when a later one fails.

use foldhash::HashMap;

use crate::apply::{self, PatchReport, Target};
use crate::error::Result;
use crate::journal::Journal;
use crate::state::StateDir;

/// The descendants of process `root` that run its program (parents
/// before children), and those that run another program, with why.
pub fn tree(root: u32) -> (Vec<u32>, Vec<(u32, String)>) {
    let mut same = Vec::new();
    let mut other = Vec::new();
    for pid in relive_process::descendants(root) {
        if relive_process::same_program(root, pid) {
            same.push(pid);
        } else {
            let exe = std::fs::read_link(format!("/proc/{pid}/exe"))
                .map(|p| p.display().to_string())
                .unwrap_or_else(|_| "another program".into());
            other.push((pid, format!("runs {exe}, not process {root}'s program")));
        }
    }
    (same, other)
}

/// Which other processes a live-reload session patches with the one it
/// owns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Followers {
    /// None.
    #[default]
    None,
    /// Its descendants that run the same program (`relive run`,
    /// `relive watch --tree`).
    Tree,
    /// Every other process running this file (`relive watch --exe`).
    Exe(std::path::PathBuf),
}

impl Followers {
    /// What the processes it names are, for messages.
    pub fn described(&self) -> &'static str {
        match self {
            Followers::Exe(_) => "running the same executable",
            _ => "forked workers",
        }
    }
}

/// The processes that `followers` of `root` names now.
pub fn followers(root: u32, followers: &Followers) -> Vec<u32> {
    match followers {
        Followers::None => Vec::new(),
        Followers::Tree => tree(root).0,
        Followers::Exe(path) => relive_process::running(path)
            .unwrap_or_default()
            .into_iter()
            .filter(|&p| p != root)
            .collect(),
    }
}

/// Settles process `pid`'s journal (a change a dead relive left, a
/// journal inherited from the parent it was forked from: see
/// [`Target::transaction`]) and returns what the user should know.
/// Done for every process before any is patched: once its parent is
/// patched again, a worker no longer runs what the parent's journal says
/// and could not adopt it.
pub fn settle(pid: u32) -> Result<Vec<String>> {
    let process = relive_process::open(pid)?;
    let mut target = Target::open(process.as_ref())?;
    drop(target.transaction()?);
    Ok(target.warnings)
}

/// Settles the journal of each of `pids` that has none of its own yet
/// (see [`settle`]; one that has has nothing to adopt), before any of
/// them is changed: what the user should know about each.
pub fn settle_new(dir: &StateDir, pids: &[u32]) -> HashMap<u32, Vec<String>> {
    pids.iter()
        .filter(|&&pid| !has_journal(dir, pid))
        .filter_map(|&pid| Some((pid, settle(pid).ok()?)))
        .collect()
}

/// Undoes each `(pid, change)` of `done`, newest first (see
/// [`undo_in`]): the processes rolled back, and why each of the others
/// could not be.
pub fn roll_back(done: &[(u32, u64)]) -> (Vec<u32>, Vec<String>) {
    let mut back = Vec::new();
    let mut failed = Vec::new();
    for &(pid, change) in done.iter().rev() {
        match undo_in(pid, change) {
            Ok(()) => back.push(pid),
            Err(e) => failed.push(format!("process {pid} could not be rolled back ({e})")),
        }
    }
    (back, failed)
}

/// Whether process `pid` has a journal of its own already (then
/// [`settle`] has nothing to adopt).
pub fn has_journal(dir: &StateDir, pid: u32) -> bool {
    matches!(relive_process::started_at(pid), Ok(Some(start)) if Journal::path(dir, pid, start).exists())
}

/// Whether process `pid` runs patched code by its journal: one a revert
/// of everything emptied has none.
pub fn has_patches(dir: &StateDir, pid: u32) -> bool {
    match relive_process::started_at(pid) {
        Ok(Some(start)) => Journal::load(dir, pid, start, "").is_ok_and(|j| !j.patches.is_empty()),
        _ => false,
    }
}

/// Whether `target` runs every function `report` patched at the same new
/// code: it was forked after the process of `report` was patched, and
/// adopted its journal. Forked processes share their parent's addresses,
/// so an equal address is the same code.
pub fn runs_already(target: &Target, report: &PatchReport) -> bool {
    !report.applied.is_empty()
        && report.applied.iter().all(|a| {
            target
                .journal
                .patch(a.orig_addr)
                .is_some_and(|p| p.current_addr == a.current_addr)
        })
}

/// Undoes change number `change` of process `pid` (see
/// [`apply::undo_change`]).
pub fn undo_in(pid: u32, change: u64) -> Result<()> {
    let process = relive_process::open(pid)?;
    let mut target = Target::open(process.as_ref())?;
    apply::undo_change(&mut target, change)?;
    Ok(())
}
