//! Reload hooks: functions a program asks relive to call in it around
//! every patch (to drop a cache, re-register a callback, re-read what the
//! new code computes differently).
//!
//! A program marks a hook by putting its address in an ELF section named
//! `relive_before_patch` or `relive_after_patch` (`include/relive.h` has
//! the macros). relive reads those sections of the running program's
//! image, reads the pointers from the process's memory (so a PIE's
//! relocated values), and calls each hook on one stopped thread (the main
//! thread) while the other threads run on: before-hooks after the new code
//! is in place and before any entry is redirected, after-hooks once the
//! redirect is complete (a hook the patch changed runs its new code).
//!
//! A hook runs like a signal handler would, interrupting the main thread
//! wherever it was: it may set flags, reset state only that thread uses,
//! call functions that are safe there; it must not wait for a lock another
//! thread (or the interrupted code) may hold. A hook that faults or does
//! not return within [`timeout`] is abandoned where it is and reported; the
//! thread carries on where it was interrupted, and the patch stands.

use std::time::{Duration, Instant};

use relive_process::{CallOutcome, Process};
use serde::Serialize;

use crate::names;
use crate::objfile::ObjectFile;
use crate::target::Target;

/// The sections hooks are listed in, by when they run.
pub const BEFORE_SECTION: &str = "relive_before_patch";
pub const AFTER_SECTION: &str = "relive_after_patch";

/// How long a hook may run before it is abandoned, unless
/// `RELIVE_HOOK_TIMEOUT_MS` says otherwise.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// [`TIMEOUT`], or `RELIVE_HOOK_TIMEOUT_MS` milliseconds.
pub fn timeout() -> Duration {
    std::env::var("RELIVE_HOOK_TIMEOUT_MS")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .map_or(TIMEOUT, Duration::from_millis)
}

pub use crate::journal::Phase;

/// The ELF section that lists the hooks of `phase`.
fn section_of(phase: Phase) -> &'static str {
    match phase {
        Phase::BeforePatch => BEFORE_SECTION,
        Phase::AfterPatch => AFTER_SECTION,
    }
}

/// One hook of the program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hook {
    /// Its function's name, or its address in hex when no symbol names it.
    pub name: String,
    pub addr: u64,
}

/// What happened when a hook ran.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HookResult {
    Returned,
    /// It faulted (the signal's name) at `rip`; abandoned there.
    Crashed {
        signal: String,
        rip: u64,
    },
    /// It had not returned in time ([`timeout`]; at `rip` then); abandoned.
    TimedOut {
        rip: u64,
    },
    /// It could not be called (the reason).
    NotRun {
        why: String,
    },
}

/// One hook's run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HookRun {
    pub name: String,
    pub addr: u64,
    pub phase: Phase,
    pub result: HookResult,
    pub micros: u64,
}

impl HookRun {
    /// A line for people: what ran, and what went wrong if anything.
    pub fn describe(&self) -> String {
        let name = names::readable(&self.name);
        match &self.result {
            HookResult::Returned => format!("hook {name} ran {} ({} µs)", self.phase.label(), self.micros),
            HookResult::Crashed { signal, rip } => format!(
                "hook {name} crashed {} ({signal} at instruction {rip:#x}): it was abandoned there, the signal not delivered; the program runs on, but what the hook left half done stays so",
                self.phase.label()
            ),
            HookResult::TimedOut { rip } => format!(
                "hook {name} did not return within {} ms {} (still running at instruction {rip:#x}: a loop, or waiting for a lock): it was abandoned there; a hook must not wait for other threads",
                timeout().as_millis(),
                self.phase.label()
            ),
            HookResult::NotRun { why } => format!("hook {name} was not run {}: {why}", self.phase.label()),
        }
    }

    /// Whether the hook did not run to its end.
    pub fn failed(&self) -> bool {
        self.result != HookResult::Returned
    }
}

/// The program's hooks for `phase`: the pointers in its image's section,
/// as the process holds them now. None when the image has no such section
/// or cannot be read.
pub fn program_hooks(target: &Target, phase: Phase) -> Vec<Hook> {
    let main = &target.modules.main;
    let Some(image) = &main.image else {
        return Vec::new();
    };
    let Some(elf) = relive_process::modules::host_elf(image) else {
        return Vec::new();
    };
    let Some(section) = elf
        .sections
        .iter()
        .find(|s| s.name == section_of(phase) && s.is_alloc())
    else {
        return Vec::new();
    };
    // At most a few thousand hooks: a larger section is not a list of them.
    let count = (section.size / 8).min(4096) as usize;
    let mut words = vec![0u8; count * 8];
    let at = section.addr.wrapping_add(main.module.load_bias);
    if count == 0 || target.process.read(at, &mut words).is_err() {
        return Vec::new();
    }
    let symbols = target.resolver.symbols();
    let mut hooks: Vec<Hook> = Vec::new();
    for word in words.chunks_exact(8) {
        let addr = u64::from_le_bytes(word.try_into().expect("8 bytes"));
        if addr == 0 || hooks.iter().any(|h| h.addr == addr) {
            continue;
        }
        let name = match symbols.at(addr) {
            Some((symbol, 0)) => symbol.name.clone(),
            _ => format!("{addr:#x}"),
        };
        hooks.push(Hook { name, addr });
    }
    hooks
}

/// Every hook for `phase`: the program's, then those earlier patches
/// added (functions of theirs their objects listed as hooks).
pub fn all_hooks(target: &Target, phase: Phase) -> Vec<Hook> {
    let mut hooks = program_hooks(target, phase);
    for a in target.journal.added.iter().filter(|a| a.hook == Some(phase)) {
        if !hooks.iter().any(|h| h.addr == a.addr) {
            hooks.push(Hook {
                name: a.name.clone(),
                addr: a.addr,
            });
        }
    }
    hooks
}

/// The phase for which `obj` lists its function `symbol` (by index) as a
/// hook: a pointer to it in one of the hook sections.
pub fn listed_as_hook(obj: &ObjectFile, symbol: usize) -> Option<Phase> {
    [Phase::BeforePatch, Phase::AfterPatch].into_iter().find(|phase| {
        obj.sections.iter().enumerate().any(|(k, section)| {
            let Some(section) = section.as_ref().filter(|s| s.name == section_of(*phase)) else {
                return false;
            };
            let in_symbols = obj.symbols.iter().filter(|s| s.section == k).flat_map(|s| &s.relocs);
            in_symbols
                .chain(&section.relocs)
                .any(|r| obj.referenced_symbol(r) == Some(symbol))
        })
    })
}

/// Calls `hooks` in `process`, in order, on one stopped thread.
pub fn run(process: &dyn Process, hooks: &[Hook], phase: Phase) -> Vec<HookRun> {
    if hooks.is_empty() {
        return Vec::new();
    }
    let not_run = |why: String| {
        hooks
            .iter()
            .map(|h| HookRun {
                name: h.name.clone(),
                addr: h.addr,
                phase,
                result: HookResult::NotRun { why: why.clone() },
                micros: 0,
            })
            .collect()
    };
    let mut stopped = match process.stop_one() {
        Ok(s) => s,
        Err(e) => return not_run(format!("the process could not be stopped: {e}")),
    };
    let mut runs = Vec::with_capacity(hooks.len());
    for hook in hooks {
        let start = Instant::now();
        let result = match stopped.call(hook.addr, &[], timeout()) {
            Ok(CallOutcome::Returned) => HookResult::Returned,
            Ok(CallOutcome::Crashed { signal, rip }) => HookResult::Crashed {
                signal: relive_process::signal_name(signal),
                rip,
            },
            Ok(CallOutcome::TimedOut { rip }) => HookResult::TimedOut { rip },
            Err(e) => HookResult::NotRun { why: e.to_string() },
        };
        runs.push(HookRun {
            name: hook.name.clone(),
            addr: hook.addr,
            phase,
            result,
            micros: start.elapsed().as_micros() as u64,
        });
    }
    if let Err(e) = stopped.resume() {
        if let Some(last) = runs.last_mut() {
            last.result = HookResult::NotRun {
                why: format!("the thread could not be resumed after the hooks: {e}"),
            };
        }
    }
    runs
}
