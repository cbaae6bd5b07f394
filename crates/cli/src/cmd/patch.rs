//! `relive patch`, `relive revert` and `relive status`: put new code into a
//! running process, take it out again, and show what is in.

use crate::not_found::NoSuchFunction;
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use relive_patch::apply::{self, Target, Timing};
use relive_patch::link::DataAction;
use relive_patch::names::readable;
use relive_patch::objfile::Kind;
use relive_patch::origin::{self, Verdict};
use relive_patch::select::functions_to_patch;
use relive_patch::{ObjectFile, PatchError};
use serde::Serialize;

use crate::output::print_json;
use crate::output::{paint_out, Tone};

/// Patch a running process with a freshly compiled object file.
///
/// Each function of NEW.o that the program has is redirected to its new
/// code (the first time by a jump at its entry, later by updating that
/// jump's slot); functions the program lacks are added. Globals and statics
/// the new code uses resolve to the program's own variables, so their
/// values are kept. With --base OLD.o (the previous compile of the same
/// file), only what changed is patched, and a global whose size changed is
/// refused. The whole patch is one transaction: on any error the process is
/// left exactly as it was.
///
/// Compile NEW.o with the program's flags plus -c (add -ffunction-sections
/// to keep functions separately movable). When the program has debug
/// information (-g), NEW.o must come from one of its source files (its
/// DWARF compile units), else the patch is refused unless --force. A file
/// of the same name in another directory (a moved or copied tree) is
/// patched with a warning naming both paths.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  gcc -O2 -g -c app.c -o app.new.o && relive patch 4242 app.new.o --base app.old.o\n  relive patch 4242 app.new.o --only compute --json"
)]
pub struct PatchArgs {
    /// The process, by pid (`--pid PID` works too).
    #[arg(value_parser = crate::output::parse_pid)]
    pid: u32,
    /// The new object (`gcc -c`).
    new: PathBuf,
    /// The previous object of the same source: patch only what differs.
    #[arg(long)]
    base: Option<PathBuf>,
    /// Patch only these functions.
    #[arg(long, num_args = 1..)]
    only: Vec<String>,
    /// Patch even when NEW.o's source file is not one the program was
    /// built from (by the program's debug information).
    #[arg(long)]
    force: bool,
    /// Print JSON: {"applied":[{"name","symbol","orig_addr","current_addr","generation","method","preserves","entry_addr","reach"}],"added","data","timing_us":{"read","diff","open","link","alloc","stop","write","check","hooks","total"},"pause_us","alloc_pause_us","threads_moved","region","warnings","hooks"} (times in whole µs).
    #[arg(long)]
    pub json: bool,
}

/// Undo patches: restore functions' original entries exactly, or (with
/// --last) undo the last patch only.
///
/// Regions of patch code that nothing uses any more (no patch, no thread's
/// registers or stack) are freed; others are kept and reported. `--last`
/// puts each function the last patch changed back to its generation before
/// (`relive status` lists them), or to its original code if that patch was
/// its first.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  relive revert 4242 compute\n  relive revert 4242 --all\n  relive revert 4242 --last"
)]
pub struct RevertArgs {
    /// The process, by pid (`--pid PID` works too).
    #[arg(value_parser = crate::output::parse_pid)]
    pid: u32,
    /// Functions to revert.
    #[arg(required_unless_present_any = ["all", "last"], conflicts_with_all = ["all", "last"])]
    names: Vec<String>,
    /// Revert every patch.
    #[arg(long, conflicts_with = "last")]
    all: bool,
    /// Undo the last patch (one reload): its functions run the generation before.
    #[arg(long)]
    last: bool,
    /// Print JSON: {"reverted":[{"name","symbol","addr","generation"}],"freed":[{"addr","len"}],"kept":[{"addr","len","why"}],"warnings"} ("generation": what runs now after --last, null when the original code is back).
    #[arg(long)]
    pub json: bool,
}

/// Show which functions of a process are patched.
#[derive(clap::Args)]
#[command(after_help = "Examples:\n  relive status 4242\n  relive status 4242 --json")]
pub struct StatusArgs {
    /// The process, by pid (`--pid PID` works too).
    #[arg(value_parser = crate::output::parse_pid)]
    pid: u32,
    /// Print JSON: {"patches":[{"name","orig_addr","current_addr","generation","method","history":[{"generation","change","at","source","code","slot_value"}]}],"pools":[{"addr","len","code_len","ro_len","rw_len","code_used","ro_used","rw_used"}]}.
    #[arg(long)]
    pub json: bool,
}

/// The functions of `new` to patch, narrowed to `only` when given.
fn select(new: &ObjectFile, base: Option<&ObjectFile>, only: &[String]) -> anyhow::Result<Vec<usize>> {
    let mut functions = functions_to_patch(base, new)?;
    // By symbol or as people write it (C++ demangled).
    let named = |symbol: &str, n: &String| symbol == n || readable(symbol) == *n;
    for n in only {
        if !new
            .symbols
            .iter()
            .any(|s| named(&s.name, n) && s.kind == Kind::Function)
        {
            return Err(NoSuchFunction {
                object: new.path.clone(),
                name: n.clone(),
            }
            .into());
        }
    }
    if !only.is_empty() {
        functions.retain(|&i| only.iter().any(|n| named(&new.symbols[i].name, n)));
    }
    Ok(functions)
}

pub fn patch(args: PatchArgs) -> anyhow::Result<()> {
    let micros = |since: Instant| since.elapsed().as_micros() as u64;
    let read_start = Instant::now();
    let new = ObjectFile::open(&args.new)?;
    let base = args.base.as_ref().map(ObjectFile::open).transpose()?;
    let read = micros(read_start);
    let diff_start = Instant::now();
    let functions = select(&new, base.as_ref(), &args.only)?;
    let diff = micros(diff_start);
    let open_start = Instant::now();
    let process = relive_process::open(args.pid)?;
    let mut target = Target::open(process.as_ref())?;
    target.check_base = true;
    let verdict = origin::check(&new, &target.modules);
    let earlier = Timing {
        read,
        diff,
        open: micros(open_start),
        ..Timing::default()
    };
    let concern = match (verdict.message(&new.path, args.pid), &verdict) {
        (Some(why), Verdict::Foreign { .. }) if args.force => Some(format!("patched anyway (--force): {why}")),
        (concern, _) => concern,
    };
    if let (Verdict::Foreign { .. }, Some(why), false) = (&verdict, &concern, args.force) {
        return Err(PatchError::Refused { what: why.clone() }.into());
    }
    let report = if functions.is_empty() {
        None
    } else {
        Some(
            apply::patch(&mut target, &new, base.as_ref(), &functions, earlier)
                .with_context(|| format!("patching process {}", args.pid))?,
        )
    };
    // The objects are of no further use and the process ends soon: their
    // memory goes back with it, not piece by piece (10,000 functions are
    // hundreds of thousands of allocations).
    std::mem::forget(new);
    std::mem::forget(base);
    let report = report.map(|mut r| {
        r.warnings.extend(concern.clone());
        // The whole command, from its first step to this report.
        r.timing_us.total = crate::since_start_us();
        r
    });
    if args.json {
        return match report {
            Some(r) => print_json(&r),
            None => print_json(&serde_json::json!({
                "applied": [], "added": [], "data": [], "pause_us": 0,
                "warnings": target.warnings.iter().chain(&concern).collect::<Vec<_>>(),
            })),
        };
    }
    let mut out = std::io::stdout().lock();
    let Some(r) = report else {
        writeln!(out, "nothing to patch: no function changed")?;
        for w in target.warnings.iter().chain(&concern) {
            writeln!(out, "{} {w}", paint_out("warning:", Tone::Warn))?;
        }
        return Ok(());
    };
    for a in &r.applied {
        // A thunk keeps registers the old callers rely on (GCC -fipa-ra).
        let thunk = match a.preserves.is_empty() {
            true => String::new(),
            false => format!(", entered through a thunk keeping {}", a.preserves.join(" ")),
        };
        // "patched" only for code a later call can run.
        let verb = if a.reach.reachable { "patched" } else { "unreachable" };
        writeln!(
            out,
            "{verb} {} {:#x} -> {:#x} (generation {}, {}{thunk})",
            readable(&a.name),
            a.orig_addr,
            a.current_addr,
            a.generation,
            a.method
        )?;
        if let Some(note) = &a.reach.note {
            writeln!(out, "  note: {note}")?;
        }
    }
    for a in &r.added {
        writeln!(out, "added   {} at {:#x}", readable(&a.name), a.addr)?;
    }
    // Named data one line each; the anonymous pieces (string literals and
    // constants the changed code uses, named after their section) in one
    // line when there are many: a function returning error strings copies
    // dozens. `--json` lists every one.
    let (pieces, named): (Vec<_>, Vec<_>) = r.data.iter().partition(|d| d.name.starts_with('.'));
    for d in named.iter().chain(if pieces.len() > 3 { &[][..] } else { &pieces[..] }) {
        writeln!(out, "data    {} at {:#x} ({})", readable(&d.name), d.addr, d.action)?;
    }
    if pieces.len() > 3 {
        let mut sections: Vec<&str> = pieces.iter().map(|d| d.name.split('+').next().unwrap_or("")).collect();
        sections.sort_unstable();
        sections.dedup();
        // The program's own copies and the copies in the pool, apart: one
        // address range over both would say little.
        let (new, own): (Vec<&apply::DataUse>, Vec<&apply::DataUse>) =
            pieces.iter().copied().partition(|d| d.action == DataAction::New);
        let placed = match (new.iter().map(|d| d.addr).min(), new.iter().map(|d| d.addr).max()) {
            (Some(low), Some(high)) => format!(" at {low:#x}..={high:#x}"),
            _ => String::new(),
        };
        writeln!(
            out,
            "data    {} literal pieces of {}: {} new{placed}, {} the program's own (--json lists each)",
            pieces.len(),
            sections.join(", "),
            new.len(),
            own.len()
        )?;
    }
    let t = &r.timing_us;
    let pool = match r.alloc_pause_us {
        0 => String::new(),
        us => format!(" (and one thread {us} µs to map a new pool)"),
    };
    let moved = match r.threads_moved {
        0 => String::new(),
        1 => "; 1 thread inside a replaced entry carries on in a copy of its instructions".to_string(),
        n => format!("; {n} threads inside replaced entries carry on in copies of their instructions"),
    };
    let hooks = match r.hooks.is_empty() {
        true => String::new(),
        false => format!(", hooks {}", t.hooks),
    };
    // Timings are detail: left out under -q.
    if !crate::output::quiet() {
        writeln!(
            out,
            "took {} µs (read {}, diff {}, open {}, link {}, alloc {}, stop {}, write {}, check {}{hooks}); threads paused {} µs{pool}{moved}",
            t.total, t.read, t.diff, t.open, t.link, t.alloc, t.stop, t.write, t.check, r.pause_us
        )?;
    }
    for h in &r.hooks {
        match h.failed() {
            false => writeln!(out, "{}", h.describe())?,
            true => writeln!(out, "{} {}", paint_out("warning:", Tone::Warn), h.describe())?,
        }
    }
    for w in &r.warnings {
        writeln!(out, "{} {w}", paint_out("warning:", Tone::Warn))?;
    }
    Ok(())
}

pub fn revert(args: RevertArgs) -> anyhow::Result<()> {
    let process = relive_process::open(args.pid)?;
    let mut target = Target::open(process.as_ref())?;
    let report = if args.last {
        apply::revert_last(&mut target)?
    } else {
        let names = (!args.all).then_some(args.names.as_slice());
        apply::revert(&mut target, names)?
    };
    if args.json {
        return print_json(&report);
    }
    let mut out = std::io::stdout().lock();
    if report.reverted.is_empty() {
        writeln!(out, "process {} has no patches: nothing to revert", args.pid)?;
    }
    for r in &report.reverted {
        match r.generation {
            Some(g) => writeln!(out, "reverted {} at {:#x} to generation {g}", readable(&r.name), r.addr)?,
            None => writeln!(out, "reverted {} at {:#x}", readable(&r.name), r.addr)?,
        }
    }
    for r in &report.freed {
        writeln!(out, "freed    {:#x} ({} bytes)", r.addr, r.len)?;
    }
    for k in &report.kept {
        writeln!(
            out,
            "kept     {:#x} ({} bytes): still referenced: {}",
            k.region.addr, k.region.len, k.why
        )?;
    }
    for w in &report.warnings {
        writeln!(out, "{} {w}", paint_out("warning:", Tone::Warn))?;
    }
    Ok(())
}

#[derive(Serialize)]
struct Status {
    patches: Vec<StatusEntry>,
    /// The patch memory relive has mapped in the process (also what a
    /// revert kept because something still pointed into it).
    pools: Vec<relive_patch::journal::RegionRecord>,
}

#[derive(Serialize)]
struct StatusEntry {
    name: String,
    orig_addr: u64,
    current_addr: u64,
    generation: u32,
    method: String,
    /// Every generation still in the pool, oldest first.
    history: Vec<relive_patch::journal::Generation>,
}

pub fn status(args: StatusArgs) -> anyhow::Result<()> {
    let process = relive_process::open(args.pid)?;
    let mut target = Target::open(process.as_ref())?;
    // Under the lock: a change in progress finishes first, and one a dead
    // relive left is settled by what the process's memory shows.
    let _lock = target.transaction()?;
    target.journal.load_history(&target.journal_dir)?;
    for note in &target.warnings {
        eprintln!("relive: note: {note}");
    }
    let status = Status {
        patches: target
            .journal
            .patches
            .iter()
            .map(|p| StatusEntry {
                name: p.name.clone(),
                orig_addr: p.orig_addr,
                current_addr: p.current_addr,
                generation: p.generation,
                method: p.method.clone(),
                history: p.history.clone(),
            })
            .collect(),
        pools: target.journal.regions.clone(),
    };
    if args.json {
        return print_json(&status);
    }
    let mut out = std::io::stdout().lock();
    if status.patches.is_empty() {
        writeln!(
            out,
            "process {} has no patches (journals in {}; another RELIVE_STATE_DIR keeps its own)",
            args.pid,
            target.journal_dir.path().display()
        )?;
        if !status.pools.is_empty() {
            writeln!(
                out,
                "relive memory is still mapped in it (a revert kept it: something pointed into it); `relive revert {} --all` frees it once nothing does:",
                args.pid
            )?;
        }
    }
    for p in &status.patches {
        writeln!(
            out,
            "{:<24} {:#x} -> {:#x}  generation {} ({})",
            readable(&p.name),
            p.orig_addr,
            p.current_addr,
            p.generation,
            p.method
        )?;
        for g in p.history.iter().rev() {
            let ago = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs())
                .saturating_sub(g.at);
            writeln!(
                out,
                "    generation {:<3} {:#x}  {ago} s ago{}  (change {})",
                g.generation,
                g.code,
                g.source.as_deref().map(|s| format!(", from {s}")).unwrap_or_default(),
                g.change
            )?;
        }
    }
    for r in &status.pools {
        writeln!(
            out,
            "pool {:#x}-{:#x}  code {} of {} bytes used, data {} of {}",
            r.addr,
            r.addr + r.len,
            r.code_used,
            r.code_len,
            r.ro_used + r.rw_used,
            r.ro_len + r.rw_len
        )?;
    }
    Ok(())
}
