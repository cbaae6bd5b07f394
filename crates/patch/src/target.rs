//! The process a patch or revert acts on, as relive reads it: its modules
//! and live symbols, its journal of patches, and the lock that makes each
//! change one transaction.

use relive_process::modules::{self, ProcessModules};
use relive_process::symbols::LiveSymbols;
use relive_process::{identity, Process};

use crate::error::Result;
use crate::inherit::{self, Inherited};
use crate::journal::Journal;
use crate::live::LiveResolver;
use crate::state::{StateDir, TransactionLock};

/// A running process prepared for patching: its modules, symbols and
/// journal, with its program image confirmed to be the file on disk.
pub struct Target<'p> {
    pub process: &'p dyn Process,
    pub modules: ProcessModules,
    pub resolver: LiveResolver,
    pub journal: Journal,
    pub journal_dir: StateDir,
    /// What the user should know about the target (its program was
    /// rebuilt while it ran); every patch report repeats them.
    pub warnings: Vec<String>,
    /// Check, once the process is locked for the patch, that the base
    /// object's version of each function to patch is what runs: a base
    /// that is not (an older compile, or another relive patched since)
    /// makes a diff that leaves the program running a mix of versions.
    /// `relive patch --base` sets it; the reloader's bases are its own
    /// compiles, already checked.
    pub check_base: bool,
    /// The GNU build-id of the program the process runs, if it has one:
    /// what a patch bundle made for one build is checked against.
    pub build_id: Option<String>,
    /// The process was forked from one relive patched, but does not run
    /// what that one's journal records now: it may run code relive has
    /// no record of (see [`crate::inherit`]).
    pub unrecorded: bool,
    /// The unwinder's entry points (register, deregister) when relive
    /// loaded it into the process itself after this target was read
    /// ([`crate::unwind::load_unwinder`]): the resolver predates it.
    pub loaded_unwinder: Option<(u64, u64)>,
}

impl<'p> Target<'p> {
    pub fn open(process: &'p dyn Process) -> Result<Target<'p>> {
        Target::open_in(process, StateDir::open()?)
    }

    /// [`Target::open`] with the journals in `journal_dir` rather than the
    /// user's state directory: how tests keep each trial's journal apart.
    pub fn open_in(process: &'p dyn Process, journal_dir: StateDir) -> Result<Target<'p>> {
        let modules = modules::discover(process)?;
        let verified = identity::verify(process, &modules.main)?;
        let symbols = LiveSymbols::load(&modules);
        // Journals of processes that have exited are of no use to anyone.
        // Only a process known to be gone counts: one relive cannot read
        // now keeps its journal.
        journal_dir.clean_stale(&|pid, start| match relive_process::started_at(pid) {
            Ok(Some(t)) => t == start,
            Ok(None) => false,
            Err(_) => true,
        });
        let journal = Journal::load(
            &journal_dir,
            process.pid(),
            process.start_time()?,
            &modules.main.module.path,
        )?;
        if let Some(hints) = journal.code_hints {
            process.remember_code_hints(hints);
        }
        let ifunc_choices = relive_process::ifunc::chosen_in_modules(process, &modules, &symbols);
        let mut resolver = LiveResolver::new(symbols);
        resolver.set_ifunc_choices(ifunc_choices);
        resolver.set_added(&journal.added);
        Ok(Target {
            process,
            modules,
            resolver,
            journal,
            journal_dir,
            build_id: verified.fingerprint.build_id.clone(),
            warnings: verified.warning.into_iter().collect(),
            check_base: false,
            unrecorded: false,
            loaded_unwinder: None,
        })
    }

    /// The journal as it is on disk, taken as this target's when another
    /// relive command changed it since this target last read or wrote it
    /// (a `revert` or a one-shot `patch` from another terminal while
    /// `relive run` owns the process); returns the state it replaces, so
    /// the caller can tell what changed. `None` when nothing did.
    pub fn reread_journal(&mut self) -> Result<Option<Journal>> {
        if self.journal.reuse_disk_copy(&self.journal_dir) {
            return Ok(None);
        }
        let now = Journal::load(
            &self.journal_dir,
            self.journal.pid,
            self.journal.start_time,
            &self.journal.image,
        )?;
        let before = std::mem::replace(&mut self.journal, now);
        self.resolver.set_added(&self.journal.added);
        Ok(Some(before))
    }

    /// Starts a transaction on the process: waits for any other relive's
    /// to end, then reads the journal again, so what another command did
    /// meanwhile (a `revert` from another terminal while `relive run`
    /// owns the process) is what this one builds on. Held until dropped.
    pub fn transaction(&mut self) -> Result<TransactionLock> {
        let lock = self
            .journal_dir
            .transaction(self.journal.pid, self.journal.start_time)?;
        self.reread_journal()?;
        // A process forked from a patched one runs its patches too.
        let journal = &self.journal;
        if journal.patches.is_empty()
            && journal.regions.is_empty()
            && journal.intent.is_none()
            && journal.mapping_pool.is_none()
        {
            if let Some(found) = inherit::find(self.process, &self.journal_dir, &journal.image)? {
                self.warnings.push(found.note(self.process.pid()));
                match found {
                    Inherited::Adopted { journal, .. } => {
                        self.journal = *journal;
                        self.journal.save(&self.journal_dir)?;
                    }
                    Inherited::Differs { .. } => self.unrecorded = true,
                }
            }
        }
        // A change a dead relive left half done is settled first, by what
        // the process's memory shows.
        if self.journal.intent.is_some() {
            let process = self.process;
            let maps = process.maps().unwrap_or_default();
            let memory = |addr: u64, len: usize| {
                let mut buf = vec![0u8; len];
                process.read(addr, &mut buf).ok().map(|_| buf)
            };
            let mapped = |addr: u64| maps.iter().any(|m| m.start <= addr && addr < m.end);
            if let Some(note) = self.journal.recover(&memory, &mapped) {
                self.journal.save(&self.journal_dir)?;
                self.warnings.push(note);
            }
        }
        // A pool a killed relive mapped before it recorded it.
        if let Some((addr, len)) = self.journal.mapping_pool.take() {
            let recorded = self
                .journal
                .regions
                .iter()
                .any(|r| r.addr == addr || r.debug_images.iter().any(|i| i.addr == addr));
            if !recorded {
                if let Some(note) = free_unrecorded(self.process, addr, len) {
                    self.warnings.push(note);
                }
            }
            self.journal.save(&self.journal_dir)?;
        }
        // The one place the resolver learns what patches added: every
        // patch and revert starts here.
        self.resolver.set_added(&self.journal.added);
        Ok(lock)
    }
}

/// Unmaps `[addr, addr + len)`, memory a relive killed while it created a
/// pool had announced and may have mapped (`Journal::mapping_pool`), when
/// anonymous private memory covers all of it, as that mapping would (its
/// parts' protections changed, maybe merged with neighbours). Nothing when
/// the kill came before the `mmap`. Returns what was done, for the user.
fn free_unrecorded(process: &dyn Process, addr: u64, len: u64) -> Option<String> {
    let maps = process.maps().ok()?;
    let end = addr.checked_add(len)?;
    let mut at = addr;
    // Anonymous memory from exactly `addr` to exactly `end`: anything else
    // is not that mapping (a try that found memory there already) and is
    // left alone.
    while at < end {
        let m = maps.iter().find(|m| m.start <= at && at < m.end)?;
        if m.inode != 0 || !m.path.is_empty() || (at == addr && m.start != addr) || m.end > end {
            return None;
        }
        at = m.end;
    }
    let mut stopped = process.stop_one().ok()?;
    let unmapped = stopped.unmap(addr, len);
    let _ = stopped.resume();
    Some(match unmapped {
        Ok(()) => format!("freed {len:#x} bytes at {addr:#x}: a pool a killed relive had mapped but not yet used (or its symbol files' memory, not yet recorded)"),
        Err(e) => format!(
            "a pool a killed relive had mapped at {addr:#x} ({len:#x} bytes, never used, or its symbol files' memory) could not be freed: {e}"
        ),
    })
}
