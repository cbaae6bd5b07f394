//! `relive verify`: is an object the code a process runs?

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use relive_patch::apply::Target;
use relive_patch::verify;
use relive_patch::ObjectFile;
use serde::Serialize;

use crate::exit;
use crate::output::print_json;

/// Compare objects with the code a process runs, function by function.
///
/// Every byte outside relocated fields must be equal, and every relocated
/// field must denote the same thing in the process (the same function or
/// variable, through the PLT or GOT where the linker put one, or a literal
/// with the same bytes). A function relive has patched is compared with
/// its current version. Use it to check that a compile command is the
/// build's before diffing against its objects: `relive run`/`watch` do
/// this for every source at start.
///
/// An inline function (C++, a weak COMDAT symbol) runs the copy of the
/// one file the linker kept: another object's copy that differs is no
/// difference when the kept copy's object is given too, and is marked as
/// an inline function's otherwise.
///
/// A patched function whose new code no call can run (`main`'s running
/// loop: NOT REACHABLE when it was patched) counts as differing: the
/// process runs its old code.
///
/// Exits 0 when every object matches, 5 when a function differs or an
/// object has no function the program has.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  gcc -O2 -g -c src/app.c -o /tmp/app.o && relive verify 4242 /tmp/app.o\n  relive verify 4242 build/*.o --json"
)]
pub struct Args {
    /// The process, by pid (`--pid PID` works too).
    #[arg(value_parser = crate::output::parse_pid)]
    pid: u32,
    /// Objects (`gcc -c`) of the program's sources.
    #[arg(required = true)]
    objects: Vec<PathBuf>,
    /// Print JSON: [{"object","compared","same","differs":[{"function","why"}],"absent","unreached":[{"function","why"}],"old_code_kept":[{"function","why"}],"lines_only":[{"function","why"}],"shared_copies_only","initial_values_differ","foreign"}] ("compared": "functions", or "constants" for an object that defines no function; "function" then names a constant; "unreached": patched functions whose new code no call can run, so the process runs the old code: they differ; "never_called", only when any: patched functions that match and whose own entry nothing in the program calls (their callers have them inlined: those copies are the callers' code); "old_code_kept": functions that match, whose calls running when they were patched keep the old code for good, or whose old code a thread runs now; "lines_only", only when any: functions that match, patched though only their line numbers changed (an edit above them moved them), whose new code no call can run; "shared_copies_only", only when so: of the object's functions the process has only inline ones, whose copy any file using them may have given, and none of its own global ones: not verified, exit 5; "initial_values_differ", only when any: variables whose initial value in the object is not the program's, which runs with the value it has; "added_initial_values_differ", only when any: the same for variables a patch added, against the value that patch gave them; "foreign", only when so: why the object's source is not one of the program's files, whose statics it then cannot find; "unlike_build", only when so: why the differences may be the compile's rather than edits (the object compiled at another optimisation level than the build, or most of its functions differing, as a missing -D does); a difference a revert explains (the function reverted since it was patched, or its last generation undone) says so at the end of its "why")).
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct ObjectReport {
    object: String,
    /// What was compared: `functions`, or `constants` for an object that
    /// defines no function (its tables).
    compared: &'static str,
    same: usize,
    differs: Vec<Differing>,
    /// Functions of the object the program does not have (inlined into
    /// every caller, or dropped by the linker).
    absent: Vec<String>,
    /// Functions whose entry leads to this code (a patch brought it in)
    /// but whose new code no call can run: the process runs the old code.
    /// Counted as differing, not in `same`.
    unreached: Vec<Differing>,
    /// Functions that match, whose calls running when they were patched
    /// keep their old code for good, or whose old code a thread runs now
    /// (later calls run this code).
    old_code_kept: Vec<Differing>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    lines_only: Vec<Differing>,
    /// Functions that match, redirected by a patch, whose own entry
    /// nothing in the program calls (callers that inline them).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    never_called: Vec<Differing>,
    /// Only inline functions (weak copies other files share) are in the
    /// program, and none of the object's own: it proves nothing of this
    /// object, which the link most likely did not take (a LevelDB trial:
    /// db/c.o, an archive member nothing used, "is the code pid runs" by
    /// one inline function, its 90 others absent).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    shared_copies_only: bool,
    /// Variables whose initial value in the object is not the one the
    /// program's file gives them: the code matches, but the object is not
    /// quite what the program was built from, and the program runs with
    /// the value it has (verify said nothing of them: a trial's edited
    /// initializer looked verified).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    initial_values_differ: Vec<String>,
    /// The same for variables an earlier patch added (the program was
    /// built without them): the object's initial value is not the one
    /// that patch gave them (a trial's added variable, its initializer
    /// edited afterwards, verified as matching).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    added_initial_values_differ: Vec<String>,
    /// Why the object is not one of the program's files, when it is not
    /// (compiled from a copy under another name): its static functions
    /// and data are looked for under that name and not found, so each
    /// reference to one reads as a difference.
    #[serde(skip_serializing_if = "Option::is_none")]
    foreign: Option<String>,
    /// Why the differences may be the compile's, not edits: the object
    /// was compiled at another optimisation level than the program's
    /// debug info records, or most of its functions differ (as when a -D
    /// option of the build is missing, which a build without -g3 does
    /// not record). A Lua trial's object compiled without the Makefile's
    /// -D listed its functions as differing, and said no more.
    #[serde(skip_serializing_if = "Option::is_none")]
    unlike_build: Option<String>,
}

#[derive(Serialize)]
struct Differing {
    function: String,
    why: String,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let process = relive_process::open(args.pid)?;
    let mut target = Target::open(process.as_ref()).with_context(|| format!("reading process {}", args.pid))?;
    // Under the lock, as `status`: a change in progress finishes first, and
    // one a killed relive left is settled by what the process's memory
    // shows (compared with a journal that predates it, the answer was
    // wrong until some other command settled it).
    let _lock = target.transaction()?;
    // Every generation a thread may still run (the journal keeps the
    // newest alone): a call running an earlier one runs old code too.
    target.journal.load_every_generation(&target.journal_dir)?;
    for note in &target.warnings {
        crate::output::note(&format!("relive: note: {note}"));
    }
    // What a revert explains: read once, and only if something differs.
    let mut recorded = None;
    let mut checked = Vec::new();
    for path in &args.objects {
        let obj = ObjectFile::open(path)?;
        // An object of tables only has no function to find: its
        // constants are compared instead (such an object of the build
        // was "NOT VERIFIED", exit 5, in a user's trial on bzip2).
        let data_only = verify::data_only(&obj);
        let check = match data_only {
            true => verify::constants_against_process(&target, &obj),
            false => {
                let mut check = verify::against_process(&target, &obj);
                verify::note_old_code_running(&target, &obj, &mut check);
                if !check.differs.is_empty() {
                    let recorded = recorded.get_or_insert_with(|| {
                        target
                            .journal
                            .last_recorded_generations(&target.journal_dir)
                            .unwrap_or_default()
                    });
                    verify::note_reverted(&target, &obj, recorded, &mut check);
                }
                check
            }
        };
        checked.push((path, obj, data_only, check));
    }
    // An inline function's copy that another given object's matches is no
    // difference; one that differs otherwise is said to be an inline
    // function's (a LevelDB trial: version_set.o "DIFFERS" in
    // ~VersionEdit, exit 5).
    {
        let mut checks: Vec<(&ObjectFile, &mut verify::Verification)> =
            checked.iter_mut().map(|(_, obj, _, check)| (&*obj, check)).collect();
        verify::settle_inline_copies(&mut checks);
    }
    let mut reports = Vec::new();
    for (path, obj, data_only, check) in checked {
        let noted = |list: Vec<(String, String)>| -> Vec<Differing> {
            list.into_iter()
                .filter(|(function, _)| check.same.contains(function))
                .map(|(function, why)| Differing { function, why })
                .collect()
        };
        let unreached = noted(check.unreached);
        let old_code_kept = noted(check.old_code_kept);
        let lines_only = noted(check.lines_only);
        let never_called = noted(check.never_called);
        // Its own: not an inline function's weak copy. A global one absent
        // (a static one may be inlined into every caller) means the
        // object is not what the program was linked from.
        let own = |name: &String| !verify::is_inline_function(&obj, name);
        let global = |name: &String| obj.function_named(name).is_some_and(|i| !obj.symbols[i].local);
        let mut initial_values_differ: Vec<String> = verify::initial_values_against_program(&target, &obj)
            .iter()
            .map(|n| relive_patch::names::readable(n))
            .collect();
        initial_values_differ.sort();
        let mut added_initial_values_differ: Vec<String> = verify::initial_values_against_patches(&target, &obj)
            .iter()
            .map(|n| relive_patch::names::readable(n))
            .collect();
        added_initial_values_differ.sort();
        let verdict = relive_patch::origin::check(&obj, &target.modules);
        let foreign = verdict
            .not_a_source(&path.display().to_string(), args.pid)
            .map(|why| format!("{why}: its static functions and data are looked for under its own file name, and the program has none of them; verify the object of the program's own file (a copy compiled under that file's name verifies as it)"));
        let differing = check.differs.len() + unreached.len();
        // Of the differences, those a revert explains (still differences
        // once other objects' inline copies were settled).
        let reverted = check
            .reverted
            .iter()
            .filter(|n| check.differs.iter().any(|(d, _)| d == *n))
            .count();
        // Looked for only where something differs (a search of the
        // program's symbols).
        let lacking = match differing {
            0 => Vec::new(),
            _ => lacking_statics(&target, &obj),
        };
        let things = if data_only { "constants" } else { "functions" };
        let unlike_build = unlike_build(
            &verdict,
            (path, things),
            args.pid,
            (differing, reverted, check.same.len() - unreached.len()),
            (obj.source.as_deref().unwrap_or_default(), &lacking),
        )
        .filter(|_| foreign.is_none());
        let shared_copies_only = !check.same.is_empty()
            && !check.same.iter().any(own)
            && check.absent.iter().any(|name| own(name) && global(name));
        reports.push(ObjectReport {
            object: path.display().to_string(),
            compared: if data_only { "constants" } else { "functions" },
            same: check.same.len() - unreached.len(),
            differs: check
                .differs
                .into_iter()
                .map(|(function, why)| {
                    let why = match verify::is_inline_function(&obj, &function) {
                        true => format!("{why} (an inline function: the program runs the copy of one file that uses it, which may be another file's; give that file's object too)"),
                        false => why,
                    };
                    Differing { function, why }
                })
                .collect(),
            absent: check.absent,
            unreached,
            old_code_kept,
            lines_only,
            never_called,
            shared_copies_only,
            initial_values_differ,
            added_initial_values_differ,
            foreign,
            unlike_build,
        });
    }
    // An object none of whose functions the program has proves nothing;
    // one with no function and no constant has nothing to compare (its
    // variables' contents are the program's state).
    let nothing_to_compare = |r: &ObjectReport| r.compared == "constants" && r.same == 0 && r.absent.is_empty();
    let all_same = reports.iter().all(|r| {
        r.differs.is_empty() && r.unreached.is_empty() && !r.shared_copies_only && (r.same > 0 || nothing_to_compare(r))
    });
    if args.json {
        print_json(&reports)?;
    } else {
        let mut out = std::io::stdout().lock();
        for r in &reports {
            let things = r.compared;
            let differing = r.differs.len() + r.unreached.len();
            if nothing_to_compare(r) && differing == 0 {
                writeln!(
                    out,
                    "{}: defines no function and no constant: nothing to compare (its variables' values are the program's state)",
                    r.object
                )?;
            } else if differing == 0 && r.same == 0 {
                writeln!(
                    out,
                    "{}: NOT VERIFIED: none of its functions is in pid {} (an object of another program, or every function inlined away)",
                    r.object, args.pid
                )?;
            } else if differing == 0 && r.shared_copies_only {
                writeln!(
                    out,
                    "{}: NOT VERIFIED: of its functions pid {} has only inline ones, whose copy any file that uses them may have given ({}), and none of its own: an object the link did not take (an archive member nothing used), or of another program",
                    r.object,
                    args.pid,
                    r.same
                )?;
            } else if differing == 0 {
                let counted = match (r.same, things) {
                    (1, "functions") => "its 1 function is the code".to_string(),
                    (n, "functions") => format!("the {n} functions are the code"),
                    (1, _) => "it defines no function; its 1 constant is the table".to_string(),
                    (n, _) => format!("it defines no function; its {n} constants are the tables"),
                };
                // Calls under way that keep the old code (a thread's loop)
                // said in the headline too: "the code pid N runs" above a
                // note that its running loop ran the old code read as the
                // whole answer (two trials).
                match r.old_code_kept.len() {
                    0 => writeln!(out, "{}: {counted} pid {} runs", r.object, args.pid)?,
                    kept => writeln!(
                        out,
                        "{}: {counted} pid {} runs for new calls, but {kept} of them still {} old code in a call under way:",
                        r.object,
                        args.pid,
                        if kept == 1 { "runs" } else { "run" }
                    )?,
                }
            } else {
                writeln!(
                    out,
                    "{}: {} of {} {things} DIFFER from what pid {} runs:",
                    r.object,
                    differing,
                    r.same + differing,
                    args.pid
                )?;
                // The cause first, above the differences it explains.
                if let Some(why) = r.foreign.as_ref().or(r.unlike_build.as_ref()) {
                    writeln!(out, "  note: {why}")?;
                }
                let unreached =
                    "its entry leads to this code (patched), but NOT REACHABLE: the process runs its old code";
                let lines = (r.differs.iter().map(|d| ("", d, None)))
                    .chain(r.unreached.iter().map(|d| ("", d, Some(unreached))));
                // An object of no file of the program: the note says why
                // its functions differ; a few of them show it (a SQLite
                // trial printed 195 lines of "refers to sqlite3Config").
                match r.foreign {
                    Some(_) => {
                        print_functions(&mut out, lines.take(FOREIGN_SHOWN))?;
                        if differing > FOREIGN_SHOWN {
                            writeln!(out, "  and {} more (--json lists them all)", differing - FOREIGN_SHOWN)?;
                        }
                    }
                    None => print_functions(&mut out, lines)?,
                }
            }
            let kept = "later calls run this code; calls running when it was patched keep the old code";
            print_functions(&mut out, r.old_code_kept.iter().map(|d| ("note: ", d, Some(kept))))?;
            // `-q`: the verdicts and what qualifies them (old code still
            // running, initial values, a foreign object), not the notes
            // on functions that match for good nor the list of absent
            // ones (a trial's `verify -q` printed them all).
            let quiet = crate::output::quiet();
            if !quiet {
                print_functions(&mut out, r.lines_only.iter().map(|d| ("note: ", d, None)))?;
                print_functions(&mut out, r.never_called.iter().map(|d| ("note: ", d, None)))?;
            }
            for (names, given_by) in [
                (&r.initial_values_differ, "the program was built with"),
                (&r.added_initial_values_differ, "the patch that added it gave it"),
            ] {
                if !names.is_empty() {
                    writeln!(
                        out,
                        "  note: the initial value of {} differs from the one {given_by}: the program runs with the value it has (a restart with a build of this object takes the new one)",
                        names.join(", ")
                    )?;
                }
            }
            if let Some(why) = r.foreign.as_ref().filter(|_| differing == 0) {
                writeln!(out, "  note: {why}")?;
            }
            // An object of no file of the program keeps its absent list:
            // it is what the foreign note speaks of.
            if !r.absent.is_empty() && (!quiet || r.foreign.is_some()) {
                // A few names, not a line of a thousand (an object of
                // another file has none of the program's).
                let named: Vec<String> = r
                    .absent
                    .iter()
                    .take(ABSENT_NAMED)
                    .map(|a| relive_patch::names::readable(a))
                    .collect();
                let more = match r.absent.len().saturating_sub(ABSENT_NAMED) {
                    0 => String::new(),
                    n => format!(" and {n} more (--json lists them all)"),
                };
                let label = match r.foreign {
                    Some(_) => "not found in the program under this object's file name",
                    None => "not in the program (inlined or dropped)",
                };
                writeln!(out, "  {label}: {}{more}", named.join(", "))?;
            }
        }
    }
    // Entries redirected (a jump where they start), in a process relive's
    // journal records no patch of: another state directory's patches,
    // most likely (`status` says so; verify listed a hundred functions
    // as differing and said nothing). Not any difference at the first
    // byte: an edit there is one too (a counter added to a function's
    // start was taken for another relive's patch).
    let at_entry = reports
        .iter()
        .flat_map(|r| &r.differs)
        .filter(|d| d.why.contains(relive_patch::verify::REDIRECTED))
        .count();
    if at_entry > 0 && target.journal.patches.is_empty() {
        crate::output::note(&format!(
            "relive: note: {at_entry} function{} {} redirected where {} start{}, and relive's journals in {} record no patch of pid {}: if another relive patched it with another RELIVE_STATE_DIR, verify with that one",
            if at_entry == 1 { "" } else { "s" },
            if at_entry == 1 { "is" } else { "are" },
            if at_entry == 1 { "it" } else { "they" },
            if at_entry == 1 { "s" } else { "" },
            target.journal_dir.path().display(),
            args.pid
        ));
    }
    if !all_same {
        std::process::exit(exit::MISMATCH);
    }
    Ok(())
}

/// Why an object's differences may come from how it was compiled, not
/// from edits ([`ObjectReport::unlike_build`]), given how many of its
/// functions differ and how many match, and the program's static
/// functions of its file that it does not define (`lacking`): `None`
/// when none differs, or when only a few do and it lacks none (an edit).
fn unlike_build(
    verdict: &relive_patch::origin::Verdict,
    (obj, things): (&Path, &str),
    pid: u32,
    (differing, reverted, same): (usize, usize, usize),
    (file, lacking): (&str, &[String]),
) -> Option<String> {
    // Differences a revert explains say nothing of the compile.
    let total = differing + same;
    let differing = differing - reverted.min(differing);
    if differing == 0 {
        return None;
    }
    if let relive_patch::origin::Verdict::OtherLevel { object, ours, built } = verdict {
        return Some(format!(
            "{} was compiled with {ours}, but pid {pid}'s debug info says {} was built with {built}: its code differs for that alone; compile it with the build's own command",
            obj.display(),
            object.display()
        ));
    }
    let fix = "compile it with the build's own command (`relive build -- make` records them in compile_commands.json)";
    if !lacking.is_empty() {
        let named: Vec<&str> = lacking.iter().take(ABSENT_NAMED).map(String::as_str).collect();
        let more = match lacking.len().saturating_sub(ABSENT_NAMED) {
            0 => String::new(),
            n => format!(" and {n} more"),
        };
        return Some(format!(
            "pid {pid} has {} static function{} under this object's file name ({}) that {} does not define ({}{more}): a -D option of the build missing or different leaves functions out like this (so can an edit that removed or inlined them, or another file of that name); {fix}",
            lacking.len(),
            if lacking.len() == 1 { "" } else { "s" },
            file,
            obj.display(),
            named.join(", ")
        ));
    }
    let besides = match reverted {
        0 => String::new(),
        n => format!(" (besides {n} a revert explains)"),
    };
    (differing >= 2 && differing >= same + reverted).then(|| {
        format!(
            "{differing} of its {total} {things} differ{besides}: if they were not edited since the build, {} was not compiled as the build compiled it (a -D or -I option missing or different: the program's debug info records no -D without -g3); {fix}",
            obj.display()
        )
    })
}

/// The program's static functions of `obj`'s file (by its `STT_FILE`
/// name) that `obj` does not define, GCC's clones counted as their
/// function (a Lua re-check: an object compiled without
/// `-DLUA_COMPAT_5_3` lacked `math_pow` and six more, and verify named
/// one differing function and no cause).
fn lacking_statics(target: &Target, obj: &ObjectFile) -> Vec<String> {
    let Some(file) = obj.source.as_deref() else {
        return Vec::new();
    };
    let defined: std::collections::HashSet<String> = obj
        .symbols
        .iter()
        .filter(|s| s.kind == relive_patch::objfile::Kind::Function)
        .map(|s| relive_patch::names::parse(&s.name).base)
        .collect();
    target
        .resolver
        .statics_of_file(file)
        .into_iter()
        .filter(|name| !defined.contains(name))
        .collect()
}

/// How many of an object's functions the program does not have are named.
const ABSENT_NAMED: usize = 20;
/// How many differing functions of an object of no file of the program
/// are shown (the note says why they differ).
const FOREIGN_SHOWN: usize = 10;

/// One line per function: `  PREFIX NAME: WHY`, or `  PREFIX NAME: SAID (WHY)`.
fn print_functions<'d>(
    out: &mut impl Write,
    lines: impl Iterator<Item = (&'static str, &'d Differing, Option<&'static str>)>,
) -> std::io::Result<()> {
    for (prefix, d, said) in lines {
        let name = relive_patch::names::readable(&d.function);
        match said {
            Some(said) => writeln!(out, "  {prefix}{name}: {said} ({})", d.why)?,
            None => writeln!(out, "  {prefix}{name}: {}", d.why)?,
        }
    }
    Ok(())
}
