//! `relive patch`, `relive revert` and `relive status`: put new code into a
//! running process, take it out again, and show what is in.

use crate::not_found::{NoSuchFunction, OtherBuild};
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use relive_patch::apply::{self, PatchReport, Target, Timing};
use relive_patch::fleet;
use relive_patch::link::DataAction;
use relive_patch::names::readable;
use relive_patch::objfile::Kind;
use relive_patch::origin::{self, Verdict};
use relive_patch::select::Selected;
use relive_patch::state::StateDir;
use relive_patch::{ObjectFile, PatchError};
use serde::Serialize;

use crate::cmd::processes::Which;
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
/// Compile NEW.o with the program's flags plus -c. Without --base every
/// function of NEW.o is moved, and without -ffunction-sections a function
/// whose short jump leaves it (a tail call GCC shortened) cannot be: give
/// --base to patch only what changed, or add -ffunction-sections to both
/// compiles. When the program has debug information (-g), NEW.o must come
/// from one of its source files (its DWARF compile units), else the patch
/// is refused unless --force; without debug information, an object none
/// of whose functions the program (or a library it loaded) has is refused
/// unless --force (a wrong pid); with --base, a copy compiled under another
/// file name is taken as the base's file (its statics are the program's).
/// A file of the same name in another directory (a moved or copied tree)
/// is patched with a warning naming both paths.
///
/// With --tree or --exe, every process chosen is patched, one after the
/// other, as one transaction: if one fails, the others are rolled back. A
/// process forked from a patched one runs its parent's patches, and
/// relive knows it (`relive status` shows them).
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  gcc -O2 -g -c app.c -o app.new.o && relive patch 4242 app.new.o --base app.old.o\n  relive patch 4242 app.new.o --only compute --json\n  relive patch 4242 --tree app.new.o --base app.old.o   # a server and its workers\n  relive patch --exe ./app app.new.o --base app.old.o  # every process running ./app"
)]
pub struct PatchArgs {
    #[command(flatten)]
    which: Which,
    /// The new object (`gcc -c`).
    new: PathBuf,
    /// The previous object of the same source: patch only what differs.
    #[arg(long)]
    base: Option<PathBuf>,
    /// Patch only these functions.
    #[arg(long, num_args = 1..)]
    only: Vec<String>,
    /// Patch even when NEW.o's source file is not one the program was
    /// built from (by the program's debug information), or, without it,
    /// when none of NEW.o's functions is in the program.
    #[arg(long)]
    force: bool,
    /// Print JSON: {"applied":[{"name","symbol","orig_addr","current_addr","generation","method","preserves","entry_addr","reach"}],"added","data","timing_us":{"read","diff","open","link","alloc","stop","write","check","hooks","debuggers","reclaim","total"},"pause_us","alloc_pause_us","threads_moved","region","warnings","hooks","unwind","constructed","reclaimed":{"freed","kept","us"}} (times in whole µs; "total" is the whole command's; with one pid, "open" runs while "read" and "diff" do, so the stages add up to more; "method": jump, near, pad, hop or slot; "unwind": registered, none, no-unwinder or failed; "constructed": new C++ globals constructed before the redirect; "pause_us": how long every thread stood still for the redirect, 0 when none was stopped (functions patched before have their jump slots updated while they run); "reclaimed", only after a patch that mapped a new pool: the pools freed because only superseded generations were left in them ("freed", pool records as in status --json), those kept because something still points into them ("kept", each with "why"), and how long the threads were stopped for it ("us": not in "pause_us", which is the redirect's)); "already": the functions a process already ran the new version of (nothing written; with --base; its "timing_us" counts read, diff, open and total, the other stages 0). With --tree/--exe: {"processes":[{"pid","inherited","already",...each one's report}],"skipped":[{"pid","why"}]}.
    #[arg(long)]
    pub json: bool,
}

/// Undo patches: restore functions' original entries exactly, or (with
/// --last) undo the last patch only.
///
/// Regions of patch code that nothing uses any more (no patch, no thread's
/// registers or stack) are freed, with the functions and variables patches
/// added there; others are kept and reported, and what the undone changes
/// added stays with them ("stays"). `--last` puts each function the last
/// patch changed back to its generation before (`relive status` lists
/// them), or to its original code if that patch was its first.
///
/// One change is not split between a caller and its callee: reverting by
/// name a function that one change patched together with a function it
/// calls, or that calls it, which stays patched, is refused (that change
/// may have altered a signature), naming the functions to revert
/// together; unless the callee's signature is known never to have changed
/// (every generation's compile and the program's own debug information
/// give the same one). A `relive run`/`watch` session patches what its files
/// say again at the next save of each file whose functions a revert
/// changed.
///
/// With --tree or --exe, each process chosen is reverted in turn; one
/// that fails is reported and the others are reverted still.
#[derive(clap::Args)]
#[command(
    override_usage = "relive revert [OPTIONS] <PID> <NAMES>...\n       relive revert [OPTIONS] <PID> --all\n       relive revert [OPTIONS] <PID> --last",
    after_help = "Examples:\n  relive revert 4242 compute\n  relive revert 4242 --all\n  relive revert 4242 --last\n  relive revert --exe ./app --last  # every process running ./app"
)]
pub struct RevertArgs {
    #[command(flatten)]
    which: Which,
    /// Functions to revert.
    #[arg(required_unless_present_any = ["all", "last"], conflicts_with_all = ["all", "last"])]
    names: Vec<String>,
    /// Revert every patch.
    #[arg(long, conflicts_with = "last")]
    all: bool,
    /// Undo the last patch still in force (one reload's; one that a later save or revert took back already
    /// is not it): its functions run the generation before.
    #[arg(long)]
    last: bool,
    /// Print JSON: {"reverted":[{"name","symbol","addr","generation"}],"running":[{"name","threads"}],"freed":[{"addr","len",...}],"kept":[{"addr","len",...,"why"}],"added_stay":[{"name","addr","size","kind","file","local","key","change"}],"added_gone":[...],"warnings","pause_us","timing_us":{"total"}} ("pause_us": how long every thread stood still, in µs, 0 when none was stopped; "timing_us": the command's time in whole µs (of several processes, each one's own); "generation": what runs now after --last, null when the original code is back; "added_by", for a function a patch added: the change that added it, whose code its original is; "running", only when any: reverted functions with a call of their patched code under way on these threads, which finishes in it; each of "freed" and "kept" is a pool's record as `status --json` gives it (with "why" for "kept"); "added_stay": functions and variables the undone changes added that stay, since a revert takes back redirects, not added code or data; "added_gone", only when any: those that went with the pools the revert freed (a variable's value with it); "key": a function-local static's identity, "change": the change that added it).
    #[arg(long)]
    pub json: bool,
}

/// Show which functions of a process are patched.
///
/// A function's generation counts its own patches since it last ran its
/// original code (1 for its first; a revert that gives it back its
/// original code ends the count, and its history with it); a
/// change counts every patch of the process (each `relive patch` or reload,
/// whichever functions it touched; `revert --last` undoes the highest). So
/// `generation 30 (change 32)` is the function's 30th version, made by the
/// process's 32nd change.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  relive status 4242\n  relive status 4242 --json\n\nTo tell which threads still run a patched function's old code, status stops the process's threads for a moment to read their stacks, as verify does."
)]
pub struct StatusArgs {
    /// The process, by pid (`--pid PID` works too).
    #[arg(value_parser = crate::output::parse_pid)]
    pid: u32,
    /// Print JSON: {"patches":[{"name","symbol","orig_addr","current_addr","generation","method","history":[{"generation","change","at","source","code","slot_value","calls","signature_calls","signature","signature_key","block"}],"unreached","old_code_kept","old_code_running"}],"added":[{"name","file","local","key","addr","size","kind","change","hook"}],"pools":[{"addr","len","code_len","ro_len","rw_len","code_used","ro_used","rw_used","frames":[{"eh_frame","len","object","uncertain","pending"}],"pinned","debug_images":[{"addr","len","used","descriptor","entries":[{"entry","code","len"}]}]}],"unrecorded","notes"} ("method": how the entry is redirected: jump, near, pad or hop; "calls": the functions a generation's code calls directly, which `revert NAME` checks so as not to split a change between a caller and its callee; "signature_calls", only when any: those whose signature the change changed, so that a revert waits for a running call of this code; "signature": the function's signature as its compile gave it, which a later patch of it is checked against; "signature_key": the same as a call sees it (its types, then its parameters' names), what that check compares; "block": where the code of the change that made it lies ([start, end)), what runs again when `revert --last` comes back to it; "unreached", only when so: why no call could run the newest code when it was written (main's running loop, callers that have it inlined); "old_code_kept", only when so: why calls running then keep the old code for good (threads whose outermost function it is); "old_code_running", only when so: the threads whose stacks show a call of the old code under way now (a loop that has not returned since the patch); "added": functions and variables patches brought that the program did not have ("file", "key" (a function-local static's identity, `static:FUNCTION::name`), "change" (which change added it) and "hook" only when known); "frames": unwind tables handed to the unwinder ("uncertain": whether it holds one is not known, so it stays; "pending": none was loaded yet), "pinned": why the pool stays for good, "debug_images": symbol files written for debuggers (each entry's code and its length; a file is on the process's list, which `relive gdb PID --json` counts as "listed", until a patch finds none of its functions in force and no thread in its code), each only when there is one; "unrecorded": forked from a patched process that was patched again since, so it may run code relive has no record of; "notes": only when there are any).
    #[arg(long)]
    pub json: bool,
}

/// The functions of `new` to patch, narrowed to `only` when given, and
/// what the patch leaves as it was ([`Selected::notes`]).
pub fn select(new: &ObjectFile, base: Option<&ObjectFile>, only: &[String]) -> anyhow::Result<Selected> {
    // No caller follows a one-shot patch's signature change of a global
    // function: refused. A `static` one's callers come with it.
    let Selected {
        mut functions,
        mut notes,
        initial_values,
        new_signatures,
        names_moved,
        if_patched,
        table_readers,
    } = relive_patch::select::select(base, new, &|_| false)?;
    // A one-shot patch says its notes only once it went in.
    notes.extend(if_patched);
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
        // A changed table none of whose readers is patched changes
        // nothing the program reads.
        let patched = |reader: &str| functions.iter().any(|&i| new.symbols[i].name == reader);
        relive_patch::select::drop_unread_table_notes(&mut notes, &table_readers, patched);
    }
    Ok(Selected {
        functions,
        notes,
        initial_values,
        new_signatures,
        names_moved,
        if_patched: Vec::new(),
        table_readers,
    })
}

/// What patching one process did.
struct Patched {
    pid: u32,
    /// `None` when no function changed.
    report: Option<PatchReport>,
    /// The journal's change number after the patch (what a rollback
    /// undoes).
    change: u64,
    /// What to tell the user about the process when nothing was patched.
    warnings: Vec<String>,
    /// The process was forked after another one was patched here, and
    /// already ran this patch.
    inherited: bool,
    /// The process already ran the new object's version of these
    /// functions (applied before): nothing was written.
    already: Option<Vec<String>>,
    /// What the command took when there is no report (nothing written):
    /// scripts read `timing_us` from every result.
    timing: Timing,
}

/// Patches one process with `functions` of `new`.
fn patch_one(how: &How, pid: u32, objects: &Objects, earlier: Timing) -> anyhow::Result<Patched> {
    let own_start = Instant::now();
    let process = relive_process::open(pid)?;
    let target = Target::open(process.as_ref())?;
    let earlier = Timing {
        open: own_start.elapsed().as_micros() as u64,
        ..earlier
    };
    patch_opened(how, pid, target, objects, earlier, own_start)
}

/// Patches one process whose target is open (`earlier.open` took that).
fn patch_opened(
    how: &How,
    pid: u32,
    mut target: Target,
    objects: &Objects,
    earlier: Timing,
    own_start: Instant,
) -> anyhow::Result<Patched> {
    let shared = earlier.read + earlier.diff;
    target.check_base = true;
    if let Some(want) = how.build_id {
        if target.build_id.as_deref() != Some(want) {
            return Err(OtherBuild {
                pid,
                program: target.modules.main.module.path.clone(),
                has: target.build_id.clone(),
                want: want.to_string(),
            }
            .into());
        }
    }
    // A copy of one of the program's files compiled under another name
    // is that file's when its --base is (the base vouches for the unit;
    // `Objects::new` took the base's name for its statics), also a base
    // compiled from that file's name in another directory, said as such
    // (a Lua re-check: each was accepted alone, together refused).
    let base_verdict = objects.base.as_ref().map(|b| (b, origin::check(b, &target.modules)));
    let mut base_concern = None;
    let verdict = match origin::check(&objects.new, &target.modules) {
        foreign @ Verdict::Foreign { .. } => match &base_verdict {
            Some((_, Verdict::Matches | Verdict::OtherLevel { .. })) => Verdict::Matches,
            Some((base, same_name @ Verdict::SameName { .. })) => {
                base_concern = same_name.message(&base.path, pid);
                Verdict::Matches
            }
            _ => foreign,
        },
        verdict => verdict,
    };
    let concern = match (verdict.message(&objects.new.path, pid), &verdict) {
        (Some(why), Verdict::Foreign { .. }) if how.force => Some(format!("patched anyway (--force): {why}")),
        (concern, _) => concern.or(base_concern),
    };
    if let (Verdict::Foreign { .. }, Some(why), false) = (&verdict, &concern, how.force) {
        return Err(PatchError::Refused { what: why.clone() }.into());
    }
    refuse_stripped(&target, objects)?;
    if matches!(verdict, Verdict::Unchecked(_)) && !how.force {
        refuse_unrelated(&target, objects)?;
    }
    let mut concern = concern
        .into_iter()
        .chain(objects.notes.iter().cloned())
        .chain(nothing_changed_but_patched(&target, objects))
        .collect::<Vec<_>>();
    let patched: Vec<&str> = objects
        .functions
        .iter()
        .map(|&i| objects.new.symbols[i].name.as_str())
        .collect();
    // Signatures against the ones the program runs (as built, or as a
    // patch in force gave them): a change `--base` already had (an
    // earlier patch made the callers pass a parameter the callee ignored,
    // then this one uses it) shows in no diff (a Lua trial). The
    // program's DWARF read once for the global functions.
    let source = objects.new.source.as_deref().map(std::path::Path::new);
    let (globals_changed, since_build): (Vec<(String, String)>, Vec<String>) = match source {
        Some(source) => {
            let globals = relive_reload::since_build::global_changes(&target, source, &objects.new, &objects.functions);
            let names = globals
                .iter()
                .map(|(name, _)| name.clone())
                .chain(relive_reload::since_build::changed_static_names(
                    &target,
                    source,
                    &objects.new,
                    &objects.functions,
                ))
                .collect();
            (globals, names)
        }
        None => (Vec::new(), Vec::new()),
    };
    // Calls into other files by the prototypes the program runs: a
    // header changed under this file alone passes what they do not take.
    if let Some(source) = source {
        if let Some(what) =
            relive_reload::since_build::callee_mismatch(&target, source, &objects.new, &objects.functions)
        {
            return Err(PatchError::Refused { what }.into());
        }
    }
    let changed: Vec<String> = objects
        .new_signatures
        .iter()
        .chain(since_build.iter().filter(|n| !objects.new_signatures.contains(n)))
        .cloned()
        .collect();
    let new = std::iter::once(&objects.new);
    if let Some(why) =
        relive_patch::running_callers::running_caller(&target, new, &changed, &objects.names_moved, &patched)
    {
        return Err(PatchError::Refused { what: why }.into());
    }
    // Then calls from elsewhere into this file's functions, by the
    // signatures the program runs (a libuv re-check's two saves, as two
    // one-shot patches: a parameter added unused, then used).
    if let Some(what) = relive_reload::since_build::one_shot_refusal(&globals_changed) {
        return Err(PatchError::Refused { what }.into());
    }
    let report = if objects.functions.is_empty() {
        // A signature the object changed with no code: said, as the next
        // object that uses it is refused.
        if let Some(source) = source {
            concern.extend(relive_reload::since_build::one_shot_unpatched_signatures(
                &target,
                source,
                &objects.new,
            ));
        }
        None
    } else {
        let unit = apply::Unit {
            obj: &objects.new,
            base: objects.base.as_ref(),
            built: None,
            functions: &objects.functions,
            changed_signatures: &since_build,
        };
        let patched = apply::patch_together(&mut target, &[unit], earlier.clone()).map(|mut r| r.remove(0));
        match patched {
            Err(PatchError::AlreadyApplied { functions, .. }) => {
                return Ok(Patched {
                    pid,
                    report: None,
                    change: target.journal.changes,
                    warnings: target.warnings.iter().cloned().chain(concern).collect(),
                    inherited: false,
                    already: Some(functions),
                    timing: Timing {
                        total: whole_or_own(how, shared, own_start),
                        ..earlier
                    },
                })
            }
            patched => Some(patched.with_context(|| format!("patching process {pid}"))?),
        }
    };
    // The whole command, from its first step to this report; of several
    // processes, each one's own part (and the objects' read and diff,
    // which all share).
    let total = whole_or_own(how, shared, own_start);
    let report = report.map(|mut r| {
        r.warnings.extend(concern.clone());
        r.timing_us.total = total;
        r
    });
    let patched = Patched {
        pid,
        report,
        change: target.journal.changes,
        warnings: target.warnings.iter().cloned().chain(concern).collect(),
        inherited: false,
        already: None,
        timing: Timing { total, ..earlier },
    };
    // Of one process, the command ends with its report: the target's
    // tables (every module's symbols, the objects' indexes) go back with
    // the process, not piece by piece (a tenth of a millisecond to a few
    // on SQLite). Of several, each one's is freed before the next.
    if !how.which.many() {
        std::mem::forget(target);
    }
    Ok(patched)
}

/// A note for a new object with the same code as its base (nothing to
/// patch) while the process runs patched versions of its functions: the
/// comparison was with the base, not with what runs, and someone passing
/// an earlier version's object to go back to it would otherwise be told
/// only that nothing changed.
fn nothing_changed_but_patched(target: &Target, objects: &Objects) -> Option<String> {
    let base = objects.base.as_ref()?;
    if !objects.functions.is_empty() {
        return None;
    }
    let new = &objects.new;
    let records: Vec<&relive_patch::journal::PatchRecord> = target
        .journal
        .patches
        .iter()
        .filter(|p| new.symbols.iter().any(|s| s.kind == Kind::Function && s.name == p.name))
        .collect();
    if records.is_empty() {
        return None;
    }
    // Where the patched functions run this object's code already, there
    // is nothing to tell.
    let running = relive_patch::verify::functions_against_process(target, new, |n| records.iter().any(|p| p.name == n));
    if running.differs.is_empty() {
        return None;
    }
    let patched: Vec<String> = records
        .iter()
        .map(|p| format!("{} (generation {})", readable(&p.name), p.generation))
        .collect();
    let pid = target.process.pid();
    Some(format!(
        "{} has the same code as its base {}, so nothing was written; a patch compares the new object with its base, not with what process {pid} runs, and it runs patched versions of {}. To make it run the code of {}, pass the object it runs now as --base; `relive revert {pid} NAME` gives a function its original code back",
        new.path,
        base.path,
        patched.join(", "),
        new.path,
    ))
}

/// With a base, a stripped program where none of the functions to patch
/// can be found is refused: a patch would only add them, unreachable,
/// beside the code that runs.
fn refuse_stripped(target: &Target, objects: &Objects) -> anyhow::Result<()> {
    if objects.base.is_none() || objects.functions.is_empty() || !stripped(target) {
        return Ok(());
    }
    let names: Vec<&str> = objects
        .functions
        .iter()
        .map(|&i| objects.new.symbols[i].name.as_str())
        .collect();
    let check = relive_patch::verify::functions_against_process(target, &objects.new, |n| names.contains(&n));
    if check.absent.len() < names.len() {
        return Ok(());
    }
    Err(PatchError::Refused {
        what: format!(
            "the program {} is stripped (it has no .symtab), so relive cannot find {} in it: relive finds the functions and statics a patch replaces by the program's full symbol table; patch processes started from an unstripped binary of the same build",
            target.modules.main.module.path,
            names.iter().map(|n| readable(n)).collect::<Vec<_>>().join(", ")
        ),
    }
    .into())
}

/// Refuses an object none of whose functions the process has (by name,
/// in its program or a library it loaded), where the program's debug
/// information cannot tell whether the object is of its sources: patched
/// into an unrelated program (a wrong pid), it added every function as new
/// code nothing calls and said "added" (an LMDB trial), or failed on the
/// first call into its own program ("... is not defined in the patch, the
/// program or its libraries"). `--force` adds them anyway.
fn refuse_unrelated(target: &Target, objects: &Objects) -> anyhow::Result<()> {
    let (defined, present) = relive_patch::verify::functions_present(target, &objects.new);
    if defined.is_empty() || present > 0 {
        return Ok(());
    }
    const SHOWN: usize = 4;
    let mut names: Vec<String> = defined.iter().take(SHOWN).map(|n| readable(n).to_string()).collect();
    if defined.len() > SHOWN {
        names.push(format!("and {} more", defined.len() - SHOWN));
    }
    let program = &target.modules.main.module.path;
    let pid = target.process.pid();
    let why = if stripped(target) {
        format!(
            "the program is stripped (it has no .symtab), so its own functions cannot be found by name: if the object is of its sources, patch processes started from an unstripped binary of the same build; if not, check the pid ({pid} runs {program}); --force adds them as new code that nothing calls"
        )
    } else {
        format!(
            "an object of another program (check the pid: {pid} runs {program}), of a library it has not loaded yet, or a new file of its sources; --force adds them as new code that nothing calls yet"
        )
    };
    Err(PatchError::Refused {
        what: format!(
            "none of the {} functions of {} ({}) is in {program} or a library it has loaded: {why}",
            defined.len(),
            objects.new.path,
            names.join(", ")
        ),
    }
    .into())
}

/// Whether the program's file has section headers but no symbol table.
fn stripped(target: &Target) -> bool {
    const SHT_SYMTAB: u32 = 2;
    target
        .modules
        .main
        .image
        .as_deref()
        .and_then(relive_process::modules::host_elf)
        .is_some_and(|elf| !elf.sections.is_empty() && !elf.sections.iter().any(|s| s.sh_type == SHT_SYMTAB))
}

/// The objects of a patch, read once for every process.
pub struct Objects {
    pub new: ObjectFile,
    pub base: Option<ObjectFile>,
    pub functions: Vec<usize>,
    /// What reading them found worth telling (the new object's source
    /// taken as its base's: [`ObjectFile::adopt_base_source`]).
    pub notes: Vec<String>,
    /// Functions whose signature the patch changes, with every caller
    /// (`static` ones): refused while a caller's call runs.
    pub new_signatures: Vec<String>,
    /// Those of `new_signatures` whose parameters' names alone moved: only
    /// a running caller whose call changed too counts.
    pub names_moved: Vec<String>,
}

impl Objects {
    /// The objects of one patch: `new`, with `base` when given, and the
    /// functions to patch.
    pub fn new(mut new: ObjectFile, base: Option<ObjectFile>, functions: Vec<usize>) -> Objects {
        let notes = base
            .as_ref()
            .and_then(|b| new.adopt_base_source(b))
            .into_iter()
            .collect();
        Objects {
            new,
            base,
            functions,
            notes,
            new_signatures: Vec::new(),
            names_moved: Vec::new(),
        }
    }
}

pub fn patch(args: PatchArgs) -> anyhow::Result<()> {
    let how = How {
        which: &args.which,
        force: args.force,
        json: args.json,
        build_id: None,
    };
    if let (false, Some(pid)) = (how.which.many(), how.which.pid()) {
        return patch_pid(&args, &how, pid);
    }
    let (objects, earlier) = read_objects(&args)?;
    let outcome = patch_processes(&how, &objects, earlier);
    // The objects are of no further use and the process ends soon: their
    // memory goes back with it, not piece by piece (10,000 functions are
    // hundreds of thousands of allocations).
    std::mem::forget(objects);
    outcome
}

/// Reads the patch's objects and chooses the functions to patch, timing
/// both.
fn read_objects(args: &PatchArgs) -> anyhow::Result<(Objects, Timing)> {
    let micros = |since: Instant| since.elapsed().as_micros() as u64;
    let read_start = Instant::now();
    let (new, base) = ObjectFile::open_pair(&args.new, args.base.as_deref())?;
    let read = micros(read_start);
    let diff_start = Instant::now();
    let selected = select(&new, base.as_ref(), &args.only)?;
    let earlier = Timing {
        read,
        diff: micros(diff_start),
        ..Timing::default()
    };
    let mut objects = Objects::new(new, base, selected.functions);
    objects.notes.extend(selected.notes);
    objects.new_signatures = selected.new_signatures;
    objects.names_moved = selected.names_moved;
    Ok((objects, earlier))
}

/// `relive patch PID ...`: the process's target (its modules, symbols and
/// journal) is opened while the objects are read and compared on another
/// thread, as neither needs the other; the `open` stage then overlaps
/// `read` and `diff`, and `total` is the command's time. A process that
/// cannot be opened is said first: an object's refusal that ends in
/// "restart the program" misled about a pid that was wrong (a
/// tree-sitter trial).
fn patch_pid(args: &PatchArgs, how: &How, pid: u32) -> anyhow::Result<()> {
    let process = relive_process::open(pid)?;
    let bytes = ObjectFile::pair_bytes(&args.new, args.base.as_deref());
    let (objects, opened) = relive_patch::side_by_side::both_if(
        relive_patch::side_by_side::worth_a_thread(bytes),
        || read_objects(args),
        || {
            let open_start = Instant::now();
            (Target::open(process.as_ref()), open_start.elapsed())
        },
    );
    let (objects, earlier) = objects?;
    let (target, open_took) = (opened.0?, opened.1);
    let earlier = Timing {
        open: open_took.as_micros() as u64,
        ..earlier
    };
    let outcome = patch_opened(how, pid, target, &objects, earlier, Instant::now()).and_then(|one| show_one(how, one));
    // As in `patch`: the memory goes back with the process.
    std::mem::forget(objects);
    outcome
}

/// Patches the processes `how` chooses with `objects` and prints the
/// report: what `patch` and `apply` share.
pub fn patch_processes(how: &How, objects: &Objects, earlier: Timing) -> anyhow::Result<()> {
    if how.which.many() {
        patch_many(how, objects, earlier)
    } else {
        let pid = how.which.pid().expect("one process by pid");
        patch_one(how, pid, objects, earlier).and_then(|one| show_one(how, one))
    }
}

/// How processes are patched: what `patch` and `apply` share.
pub struct How<'a> {
    pub which: &'a Which,
    pub force: bool,
    pub json: bool,
    /// The build-id the program must have (a bundle's): another build is
    /// refused.
    pub build_id: Option<&'a str>,
}

/// The whole command's time so far, from its first step; of several
/// processes, each one's own part (from `own_start`) and the objects' read
/// and diff (`shared`), which all share.
fn whole_or_own(how: &How, shared: u64, own_start: Instant) -> u64 {
    match how.which.many() {
        false => crate::since_start_us(),
        true => shared + own_start.elapsed().as_micros() as u64,
    }
}

/// Prints what patching one process did.
fn show_one(how: &How, one: Patched) -> anyhow::Result<()> {
    if how.json {
        return match one.report {
            Some(r) => print_json(&r),
            None => print_json(&serde_json::json!({
                "applied": [], "added": [], "data": [], "pause_us": 0, "warnings": one.warnings,
                "already": one.already.unwrap_or_default(), "timing_us": one.timing,
            })),
        };
    }
    let mut out = std::io::stdout().lock();
    print_patched(&mut out, &one)
}

/// The text report of one process's patch.
fn print_patched(out: &mut dyn Write, one: &Patched) -> anyhow::Result<()> {
    let Some(r) = &one.report else {
        match &one.already {
            Some(names) => writeln!(
                out,
                "already applied: process {} runs the new version of {} (nothing written)",
                one.pid,
                names.iter().map(|n| readable(n)).collect::<Vec<_>>().join(", ")
            )?,
            None => writeln!(out, "nothing to patch: no function changed")?,
        }
        for w in &one.warnings {
            writeln!(out, "{} {w}", paint_out("warning:", Tone::Warn))?;
        }
        return Ok(());
    };
    // The function whose note the next ones repeat, and that note with
    // its name masked: seven functions hoisted out of main's loop printed
    // the same long note seven times.
    let mut said: Option<(String, String)> = None;
    for a in &r.applied {
        // A thunk keeps registers the old callers rely on (GCC -fipa-ra).
        let thunk = match a.preserves.is_empty() {
            true => String::new(),
            false => format!(", entered through a thunk keeping {}", a.preserves.join(" ")),
        };
        // "patched" only for code a later call can run.
        let verb = if a.reach.reachable { "patched" } else { "unreachable" };
        // `status` names how the entry is redirected (`jump`, ...); a
        // later patch leaves that as it is and moves only the slot.
        let method = match a.method {
            apply::Method::Slot => "slot updated, the entry's redirect unchanged".to_string(),
            m => m.to_string(),
        };
        writeln!(
            out,
            "{verb} {} {:#x} -> {:#x} (generation {}, {method}{thunk})",
            readable(&a.name),
            a.orig_addr,
            a.current_addr,
            a.generation,
        )?;
        // Notes are detail, as everywhere: left out under -q (the verb
        // says whether later calls run the new code).
        if let Some(note) = a.reach.note.as_ref().filter(|_| !crate::output::quiet()) {
            let name = readable(&a.name);
            let masked = note.replace(&name, "\u{0}");
            match &said {
                Some((first, earlier)) if *earlier == masked => writeln!(out, "  note: as for {first}")?,
                _ => {
                    writeln!(out, "  note: {note}")?;
                    said = Some((name, masked));
                }
            }
        }
    }
    for a in &r.added {
        writeln!(out, "added   {} at {:#x}", readable(&a.name), a.addr)?;
    }
    // Named data one line each; the anonymous pieces (string literals and
    // constants the changed code uses, named after their section) in one
    // line when there are many: a function returning error strings copies
    // dozens. `--json` lists every one.
    // Detail, left out under -q as notes are.
    let data: &[apply::DataUse] = if crate::output::quiet() { &[] } else { &r.data };
    let (pieces, named): (Vec<_>, Vec<_>) = data.iter().partition(|d| d.name.starts_with('.'));
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
    let reclaim = match r.reclaimed.is_empty() {
        true => String::new(),
        false => format!(", reclaim {}", t.reclaim),
    };
    // The stop to free pools is a pause of its own (after the redirect).
    let freeing = match r.reclaimed.is_empty() {
        true => String::new(),
        false => format!(" for the redirect, {} µs to free pools", r.reclaimed.us),
    };
    // Timings are detail: left out under -q.
    if !crate::output::quiet() {
        writeln!(
            out,
            "took {} µs (read {}, diff {}, open {}, link {}, alloc {}, stop {}, write {}, check {}, debuggers {}{hooks}{reclaim}); threads paused {} µs{freeing}{pool}{moved}",
            t.total, t.read, t.diff, t.open, t.link, t.alloc, t.stop, t.write, t.check, t.debuggers, r.pause_us
        )?;
    }
    // Freed memory is what the user watches grow: always said, with
    // what it cost; why a pool stays is a note.
    for f in &r.reclaimed.freed {
        let files = match f.debug_image_bytes() >> 10 {
            0 => String::new(),
            kib => format!(", and {kib} KiB of symbol files"),
        };
        writeln!(
            out,
            "freed   the pool at {:#x} ({} KiB{files}): only superseded generations were left in it",
            f.addr,
            f.len >> 10
        )?;
    }
    for k in r.reclaimed.kept.iter().filter(|_| !crate::output::quiet()) {
        writeln!(
            out,
            "  note: the pool at {:#x} holds only superseded generations but stays mapped: {}",
            k.region.addr, k.why
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

/// Patches every process `how.which` chooses, as one transaction: when
/// one fails, those patched before it are rolled back. Processes forked
/// meanwhile are patched too (or found to run the patch already).
fn patch_many(how: &How, objects: &Objects, earlier: Timing) -> anyhow::Result<()> {
    let chosen = how.which.choose()?;
    // Each process's journal settled first (a worker forked after its
    // parent was patched adopts the parent's journal): once the parent is
    // patched again below, the worker no longer runs what that journal
    // says, and could not be told from a stranger.
    let mut notes = fleet::settle_new(&StateDir::open()?, &chosen.pids);
    let mut done: Vec<Patched> = Vec::new();
    let mut queue = chosen.pids.clone();
    let mut skipped = chosen.skipped.clone();
    // A process forked while others were patched: at most a few rounds
    // (a program forking without end is patched as far as it got).
    for _round in 0..4 {
        for &pid in &queue {
            let first = done.is_empty();
            match patch_or_inherit(how, pid, objects, earlier.clone(), &done) {
                Ok(mut one) => {
                    let found = notes.remove(&pid).unwrap_or_default();
                    match &mut one.report {
                        Some(r) => notes_first(&mut r.warnings, found),
                        None => notes_first(&mut one.warnings, found),
                    }
                    done.push(one)
                }
                // A worker that exited meanwhile needs no patch.
                Err(e) if !first && gone(&e) => skipped.push((pid, "exited before it was patched".into())),
                Err(e) => {
                    let rolled = roll_back(&done);
                    let n = chosen.pids.len().max(done.len() + 1);
                    return Err(e.context(format!(
                        "patching {n} process{}, process {pid} failed{rolled}",
                        if n == 1 { "" } else { "es" }
                    )));
                }
            }
        }
        let known: Vec<u32> = done.iter().map(|d| d.pid).collect();
        queue = how.which.newcomers(&known, &skipped);
        if queue.is_empty() {
            break;
        }
    }
    if how.json {
        #[derive(Serialize)]
        struct Each<'a> {
            pid: u32,
            inherited: bool,
            #[serde(flatten)]
            report: Option<&'a PatchReport>,
            #[serde(skip_serializing_if = "<[String]>::is_empty")]
            notes: &'a [String],
            /// Functions it already ran the new version of.
            #[serde(skip_serializing_if = "Option::is_none")]
            already: Option<&'a [String]>,
        }
        let processes: Vec<Each> = done
            .iter()
            .map(|d| Each {
                pid: d.pid,
                inherited: d.inherited,
                report: d.report.as_ref(),
                notes: if d.report.is_some() { &[] } else { &d.warnings },
                already: d.already.as_deref(),
            })
            .collect();
        let skipped: Vec<serde_json::Value> = skipped
            .iter()
            .map(|(pid, why)| serde_json::json!({"pid": pid, "why": why}))
            .collect();
        return print_json(&serde_json::json!({ "processes": processes, "skipped": skipped }));
    }
    let mut out = std::io::stdout().lock();
    let n = done.len();
    for (k, one) in done.iter().enumerate() {
        writeln!(out, "process {} ({} of {n}):", one.pid, k + 1)?;
        if one.inherited {
            writeln!(out, "already runs this patch (forked after its parent was patched)")?;
            continue;
        }
        print_patched(&mut out, one)?;
    }
    for (pid, why) in &skipped {
        writeln!(out, "skipped process {pid}: {why}")?;
    }
    if !crate::output::quiet() {
        writeln!(out, "{n} processes in {} µs", crate::since_start_us())?;
    }
    Ok(())
}

/// Patches `pid`, unless it was forked after one of `done` was patched
/// and already runs exactly that patch (its inherited journal shows each
/// of the functions at the same new code).
fn patch_or_inherit(
    how: &How,
    pid: u32,
    objects: &Objects,
    earlier: Timing,
    done: &[Patched],
) -> anyhow::Result<Patched> {
    if !done.is_empty() {
        let own_start = Instant::now();
        let process = relive_process::open(pid)?;
        let mut target = Target::open(process.as_ref())?;
        // Settles the journal (adopts a parent's).
        drop(target.transaction()?);
        if done
            .iter()
            .filter_map(|d| d.report.as_ref())
            .any(|r| fleet::runs_already(&target, r))
        {
            return Ok(Patched {
                pid,
                report: None,
                change: target.journal.changes,
                warnings: target.warnings.clone(),
                inherited: true,
                already: None,
                timing: Timing {
                    total: whole_or_own(how, earlier.read + earlier.diff, own_start),
                    ..earlier
                },
            });
        }
    }
    patch_one(how, pid, objects, earlier)
}

/// Whether `e` says the process is gone.
fn gone(e: &anyhow::Error) -> bool {
    use relive_process::ProcessError as P;
    matches!(
        e.chain().find_map(crate::exit::process_error),
        Some(P::NoSuchProcess { .. } | P::Gone { .. })
    )
}

/// `found` (what settling a process's journal said) before `warnings`,
/// once: a note the process's own report repeats is said once.
fn notes_first(warnings: &mut Vec<String>, found: Vec<String>) {
    warnings.retain(|w| !found.contains(w));
    warnings.splice(0..0, found);
}

/// Undoes the patch in each of `done` (newest first); says what became of
/// them, for the error.
fn roll_back(done: &[Patched]) -> String {
    let changed: Vec<(u32, u64)> = done
        .iter()
        .filter(|one| !one.inherited && one.report.as_ref().is_some_and(|r| !r.applied.is_empty()))
        .map(|one| (one.pid, one.change))
        .collect();
    let (back, failed) = fleet::roll_back(&changed);
    let back: Vec<String> = back.iter().map(u32::to_string).collect();
    let mut text = String::new();
    if !back.is_empty() {
        text += &format!(
            "; rolled back process{} {}, which run{} what {} ran before",
            if back.len() == 1 { "" } else { "es" },
            back.join(", "),
            if back.len() == 1 { "s" } else { "" },
            if back.len() == 1 { "it" } else { "they" }
        );
    }
    for f in failed {
        text += &format!("; {f}");
    }
    text
}

fn revert_one(args: &RevertArgs, pid: u32) -> anyhow::Result<apply::RevertReport> {
    let process = relive_process::open(pid)?;
    let mut target = Target::open(process.as_ref())?;
    let mut report = if args.last {
        apply::revert_last(&mut target)?
    } else {
        let names = (!args.all).then_some(args.names.as_slice());
        apply::revert(&mut target, names)?
    };
    report.warnings.splice(0..0, target.warnings);
    Ok(report)
}

/// A revert's report as JSON with `"timing_us": {"total"}`, the time it
/// took in µs (the whole command's, or of several processes each one's
/// own), as every command that changes a process reports it.
fn with_total(report: &apply::RevertReport, total: u64) -> serde_json::Value {
    let mut v = serde_json::to_value(report).unwrap_or_default();
    v["timing_us"] = serde_json::json!({ "total": total });
    v
}

pub fn revert(args: RevertArgs) -> anyhow::Result<()> {
    let Some(pid) = args.which.pid().filter(|_| !args.which.many()) else {
        return revert_many(&args);
    };
    let report = revert_one(&args, pid)?;
    if args.json {
        return print_json(&with_total(&report, crate::since_start_us()));
    }
    print_reverted(&mut std::io::stdout().lock(), pid, &report)
}

/// Reverts every process `args.which` chooses; one that fails does not
/// stop the others (a revert puts back what the program was built with).
fn revert_many(args: &RevertArgs) -> anyhow::Result<()> {
    let chosen = args.which.choose()?;
    // Every journal settled before any process is reverted: a worker
    // forked after a patch adopts its parent's journal only while the
    // parent still runs what it records.
    let mut notes = fleet::settle_new(&StateDir::open()?, &chosen.pids);
    let mut results = Vec::new();
    for &pid in &chosen.pids {
        // A process with nothing to revert is as asked (a play run on a
        // host where some processes never got the patch).
        let started = Instant::now();
        let result = match revert_one(args, pid) {
            Err(e) if matches!(e.downcast_ref::<PatchError>(), Some(PatchError::NoPatches { .. })) => {
                Ok(apply::RevertReport::default())
            }
            other => other,
        };
        let took = started.elapsed().as_micros() as u64;
        let result = result.map(|mut report| {
            notes_first(&mut report.warnings, notes.remove(&pid).unwrap_or_default());
            report
        });
        results.push((pid, result, took));
    }
    let failed: Vec<String> = results
        .iter()
        .filter_map(|(pid, r, _)| r.as_ref().err().map(|e| format!("process {pid}: {e:#}")))
        .collect();
    if args.json {
        let processes: Vec<serde_json::Value> = results
            .iter()
            .map(|(pid, r, took)| match r {
                Ok(report) => {
                    let mut v = with_total(report, *took);
                    v["pid"] = (*pid).into();
                    v
                }
                Err(e) => serde_json::json!({ "pid": pid, "error": format!("{e:#}") }),
            })
            .collect();
        print_json(&serde_json::json!({ "processes": processes }))?;
    } else {
        let mut out = std::io::stdout().lock();
        let n = results.len();
        for (k, (pid, r, _)) in results.iter().enumerate() {
            writeln!(out, "process {pid} ({} of {n}):", k + 1)?;
            match r {
                Ok(report) => print_reverted(&mut out, *pid, report)?,
                Err(_) => writeln!(out, "{} not reverted (below)", paint_out("failed:", Tone::Warn))?,
            }
        }
    }
    let total = results.len();
    let mut errors = results.into_iter().filter_map(|(pid, r, _)| r.err().map(|e| (pid, e)));
    if let Some((pid, first)) = errors.next() {
        // The first failure is the error (its exit status too); the
        // others are named with it.
        let others: Vec<String> = failed.into_iter().skip(1).collect();
        let also = match others.is_empty() {
            true => String::new(),
            false => format!(" (also {})", others.join("; ")),
        };
        return Err(first.context(format!(
            "{} of {total} processes were not reverted{also}; process {pid}",
            others.len() + 1
        )));
    }
    Ok(())
}

/// When process `pid` is a relive (a `relive run` or `watch`), the
/// programs it runs: the pid a revert meant (a QuickJS re-check gave
/// `relive run`'s own pid and read "no patches").
fn relive_itself(pid: u32) -> String {
    let exe = |p: u32| relive_process::open(p).ok().and_then(|p| p.exe().ok());
    let ours = std::env::current_exe().ok();
    if ours.is_none() || exe(pid) != ours {
        return String::new();
    }
    let children: Vec<String> = relive_process::descendants(pid)
        .into_iter()
        .filter(|&c| c != pid && exe(c) != ours)
        .map(|c| c.to_string())
        .collect();
    match children.as_slice() {
        [] => "; it is a relive process itself".to_string(),
        [one] => format!("; it is a relive process itself: the program it runs is pid {one}"),
        many => format!(
            "; it is a relive process itself: the programs it runs are pids {}",
            many.join(", ")
        ),
    }
}

/// The text report of one process's revert.
fn print_reverted(out: &mut dyn Write, pid: u32, report: &apply::RevertReport) -> anyhow::Result<()> {
    if report.reverted.is_empty() {
        if report.freed.is_empty() && report.kept.is_empty() {
            // Said where relive looked: a revert from another shell with
            // another RELIVE_STATE_DIR finds none of the session's patches.
            let journals = relive_patch::state::StateDir::open()
                .map(|d| d.path().display().to_string())
                .unwrap_or_else(|_| "relive's state directory".into());
            writeln!(
                out,
                "process {pid} has no patches: nothing to revert (journals in {journals}; another RELIVE_STATE_DIR keeps its own){}",
                relive_itself(pid)
            )?;
        } else {
            writeln!(
                out,
                "process {pid} has no patches; relive memory an earlier revert kept, checked again:"
            )?;
        }
    }
    // `-q`: one line for many (a SQLite trial's `revert -q --all` printed
    // 106); `--json` lists them all.
    const QUIET_NAMES: usize = 5;
    if crate::output::quiet() && report.reverted.len() > QUIET_NAMES {
        let names: Vec<String> = report.reverted[..QUIET_NAMES]
            .iter()
            .map(|r| readable(&r.name))
            .collect();
        writeln!(
            out,
            "reverted {} functions: {}, and {} more (--json lists them all)",
            report.reverted.len(),
            names.join(", "),
            report.reverted.len() - QUIET_NAMES
        )?;
    } else {
        for r in &report.reverted {
            match (r.generation, r.added_by) {
                (Some(g), _) => writeln!(out, "reverted {} at {:#x} to generation {g}", readable(&r.name), r.addr)?,
                // Its "original" is what the patch that added it brought.
                (None, Some(change)) => writeln!(
                    out,
                    "reverted {} at {:#x} to the code the patch that added it brought (change {change}); the program had no such function",
                    readable(&r.name),
                    r.addr
                )?,
                (None, None) => writeln!(out, "reverted {} at {:#x}", readable(&r.name), r.addr)?,
            }
        }
    }
    // A call of the code taken back that is under way finishes in it: a
    // revert redirects the calls that start from now on.
    for call in &report.running {
        let threads: Vec<String> = call.threads.iter().map(u32::to_string).collect();
        let now = match report
            .reverted
            .iter()
            .find(|r| r.name == call.name)
            .and_then(|r| r.generation)
        {
            Some(g) => format!("generation {g}"),
            None => "the original code".to_string(),
        };
        writeln!(
            out,
            "running  {}: a call under way on thread{} {} finishes in the patched code; its next call runs {now}",
            call.name,
            if threads.len() == 1 { "" } else { "s" },
            threads.join(", ")
        )?;
    }
    for r in &report.freed {
        writeln!(out, "freed    {:#x} ({:#x} bytes)", r.addr, r.len)?;
    }
    for a in &report.added_gone {
        let what = match a.kind.as_str() {
            "function" => "a function a patch added, freed with its pool",
            _ => "a variable a patch added, freed with its pool: its value is gone (a later patch that uses it adds it anew, with its initial value)",
        };
        writeln!(out, "gone     {} at {:#x}: {what}", a.label(), a.addr)?;
    }
    for k in &report.kept {
        writeln!(
            out,
            "kept     {:#x} ({:#x} bytes): still referenced: {}",
            k.region.addr, k.region.len, k.why
        )?;
    }
    for a in &report.added_stay {
        match a.kind.as_str() {
            "function" => writeln!(
                out,
                "stays    {} at {:#x}: a patch added it (the program had no such function); a revert takes back redirects, not added code, so a pointer to it the program keeps still calls it (it goes with its pool)",
                a.label(),
                a.addr
            )?,
            _ => writeln!(
                out,
                "stays    {} at {:#x}: a variable a patch added (the program had none such); a revert takes back redirects, not added data, so it keeps its value for a patch that brings its code back (it goes with its pool)",
                a.label(),
                a.addr
            )?,
        }
    }
    for w in &report.warnings {
        writeln!(out, "{} {w}", paint_out("warning:", Tone::Warn))?;
    }
    Ok(())
}

/// `, from FILE` after what a source file brought, when it is known.
fn from_file(file: Option<&str>) -> String {
    file.map(|f| format!(", from {f}")).unwrap_or_default()
}

#[derive(Serialize)]
struct Status {
    patches: Vec<StatusEntry>,
    /// What patches added that the program did not have (new functions
    /// and variables): they live in the pools, and no revert takes them
    /// back while their pool stays.
    added: Vec<relive_patch::journal::AddedRecord>,
    /// The patch memory relive has mapped in the process (also what a
    /// revert kept because something still pointed into it).
    pools: Vec<relive_patch::journal::RegionRecord>,
    /// The process may run code relive has no record of (forked from a
    /// patched process that was patched again since): `notes` says more.
    unrecorded: bool,
    /// What the user should know (also printed on stderr).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    notes: Vec<String>,
}

#[derive(Serialize)]
struct StatusEntry {
    /// As people write it (`Sq::area() const`), and as the object names it
    /// (`_ZNK2Sq4areaEv`), as every JSON report gives them.
    name: String,
    symbol: String,
    orig_addr: u64,
    current_addr: u64,
    generation: u32,
    method: String,
    /// Every generation still in the pool, oldest first.
    history: Vec<relive_patch::journal::Generation>,
    /// The cell its redirect jumps through (for the words only).
    #[serde(skip)]
    slot: u64,
    /// Why no call could run its newest code when that was written.
    #[serde(skip_serializing_if = "Option::is_none")]
    unreached: Option<String>,
    /// Why calls running then keep the old code for good.
    #[serde(skip_serializing_if = "Option::is_none")]
    old_code_kept: Option<String>,
    /// Threads running a call of its old code now (the original or an
    /// earlier generation): found by looking at their stacks, not from the
    /// records, since a call that never returns under a caller that may
    /// call again (an interpreter's loop with the edit inlined into it) is
    /// noted by no patch. Unsaid, `status` showed nothing while the
    /// program ran the old code (a Lua trial).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    old_code_running: Vec<u32>,
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
    let patched: Vec<&str> = target.journal.patches.iter().map(|p| p.name.as_str()).collect();
    let running = relive_patch::running_callers::running_old_code(&target, &patched);
    let status = Status {
        patches: target
            .journal
            .patches
            .iter()
            .map(|p| StatusEntry {
                name: relive_patch::names::readable(&p.name),
                symbol: p.name.clone(),
                orig_addr: p.orig_addr,
                current_addr: p.current_addr,
                generation: p.generation,
                method: p.method.clone(),
                history: p.history.clone(),
                slot: p.slot,
                unreached: p.unreached.clone(),
                old_code_kept: p.old_code_kept.clone(),
                old_code_running: running
                    .iter()
                    .find(|(name, _)| *name == p.name)
                    .map_or_else(Vec::new, |(_, threads)| threads.clone()),
            })
            .collect(),
        // Cold parts come with their functions' new code (see `patch`).
        added: target
            .journal
            .added
            .iter()
            .filter(|a| !relive_patch::names::is_cold_part(&a.name))
            .cloned()
            .collect(),
        // "pinned": why a pool stays for good, whatever the reason.
        pools: target
            .journal
            .regions
            .iter()
            .map(|r| relive_patch::journal::RegionRecord {
                pinned: r.stays_for_good(),
                ..r.clone()
            })
            .collect(),
        unrecorded: target.unrecorded,
        notes: target.warnings.clone(),
    };
    if args.json {
        return print_json(&status);
    }
    let mut out = std::io::stdout().lock();
    if status.patches.is_empty() && target.unrecorded {
        writeln!(
            out,
            "process {} has no patches in relive's journal (journals in {}), but see the note above: it may run code relive did not record",
            args.pid,
            target.journal_dir.path().display()
        )?;
    } else if status.patches.is_empty() {
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
        if let Some(why) = &p.unreached {
            writeln!(out, "    not reached: {why}")?;
        }
        if let Some(why) = &p.old_code_kept {
            writeln!(out, "    old code kept: {why}")?;
        }
        if !p.old_code_running.is_empty() {
            let threads: Vec<String> = p.old_code_running.iter().map(u32::to_string).collect();
            // Of a function no call reaches (`main`), no next call runs
            // the new code either (a jq trial: `main`'s entry said both).
            let then = match p.unreached.is_some() {
                true => "and no later call runs the new code (not reached, above)",
                false => "it runs the new code only from its next call",
            };
            writeln!(
                out,
                "    old code running now: a call on thread {} runs the code from before this generation ({then})",
                threads.join(", ")
            )?;
        }
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
                from_file(g.source.as_deref()),
                g.change
            )?;
        }
    }
    for a in &status.added {
        writeln!(
            out,
            "added {:<18} {:#x}  ({}{})",
            a.label(),
            a.addr,
            a.kind,
            from_file(a.file.as_deref())
        )?;
    }
    for r in &status.pools {
        writeln!(
            out,
            "pool {:#x}-{:#x}  code {:#x} of {:#x} bytes used, data {:#x} of {:#x}",
            r.addr,
            r.addr + r.len,
            r.code_used,
            r.code_len,
            r.ro_used + r.rw_used,
            r.ro_len + r.rw_len
        )?;
        // Why a pool stays although it may hold only old code: the
        // redirected entries jump through slots in it (a later patch frees
        // only pools holding neither those nor code that can still run).
        if let Some(why) = r.pinned.as_ref().filter(|_| !crate::output::quiet()) {
            writeln!(out, "  stays for good: {why}")?;
        }
        let slots = status.patches.iter().filter(|p| r.contains(p.slot)).count();
        if slots > 0 && !crate::output::quiet() {
            writeln!(
                out,
                "  holds the jump slots of {slots} patched function{}: it stays until they are reverted",
                if slots == 1 { "" } else { "s" }
            )?;
        }
    }
    Ok(())
}
