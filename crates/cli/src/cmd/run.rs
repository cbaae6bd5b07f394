//! `relive run` and `relive watch`: live reload. Start (or attach to) a
//! program, watch its C sources, and patch every saved edit into it.

use std::io::Write;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::cmd::processes::Named;
use crate::not_found::NoProcessRuns;
use anyhow::Context;
use relive_patch::fleet::Followers;
use relive_patch::state::StateDir;
use relive_reload::snapshot::Snapshot;
use relive_reload::sources::{self, CompileCommand};
use relive_reload::watch::{watch, Debounce, Ended, FileEvents};
use relive_reload::{Baseline, EventKind, ReloadEvent, Reloader};

use crate::output::{paint, Tone};

/// Start a program and live-reload it: every saved edit to one of its C
/// files is recompiled and patched into it while it runs.
///
/// Sources come from --watch, or else from the program's debug info (build
/// it with -g). Each file is compiled with --cc, or else with its entry in a
/// compile_commands.json (searched upward from the file; `relive build -- make`
/// records one), or else with what its debug info records (the compiler's
/// options; with -g3 also the -D/-U options; -I from the header directories),
/// or else `cc -O0 -g`. At start every file is compiled once and compared,
/// function by function, with the code the program runs: a file edited
/// since the build has its changed functions patched at once; one whose
/// compile differs otherwise (a missing -D) is named, and edits of the
/// functions that differ are refused rather than patched wrong. One line
/// per reload (stderr) says what changed and how long each stage took. When
/// the program exits, relive exits with its status.
///
/// A program that forks (a prefork server's workers) has every process
/// that runs the same program patched at each reload, as one transaction:
/// if one cannot be patched, all are rolled back. A worker forked after a
/// reload already runs it, and relive knows it.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  relive run -- ./app --port 8080\n  relive build -- make && relive run -- ./app\n  relive run --cc \"gcc -O2 -g -DMODE=2 -Iinc\" --watch src/app.c -- ./app"
)]
pub struct RunArgs {
    /// Source files to watch (default: the program's C and C++ sources
    /// from its DWARF, and those of the shared libraries it has loaded
    /// whose debug info names files that are on disk).
    #[arg(long = "watch", value_name = "PATH")]
    watch: Vec<PathBuf>,
    #[command(flatten)]
    pub options: Options,
    /// Not an option of `run` (which starts the program): says where a
    /// user who gives a pid, as other commands take one, should go.
    #[arg(long, hide = true, value_name = "PID", num_args = 0..=1, default_missing_value = "PID", value_parser = started_not_attached)]
    pid: Option<u32>,
    /// The program and its arguments.
    #[arg(last = true, required = true)]
    program: Vec<String>,
}

/// The error for `relive run --pid PID`: `run` starts the program, and
/// `relive watch PID` live-reloads one already running (clap's own
/// message, "to pass '--pid' as a value, use '-- --pid'", led nowhere).
fn started_not_attached(pid: &str) -> Result<u32, String> {
    Err(format!(
        "`relive run` starts the program given after `--`; to live-reload the running process {pid}, use `relive watch {pid}` (same options)"
    ))
}

/// Live-reload a program that is already running.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  relive watch 4242\n  relive watch 4242 src/app.c src/util.c --json\n  relive watch 4242 --tree  # a server and its workers\n  relive watch --exe ./app  # every process running ./app"
)]
pub struct WatchArgs {
    /// The process, by pid (`--pid PID` works too). `--exe PATH` in its
    /// place: every process running that file (each reload patches them
    /// all, as one transaction).
    #[arg(value_name = "PID", value_parser = crate::cmd::processes::parse_named)]
    named: Named,
    /// Source files to watch (default: the program's C and C++ sources
    /// from its DWARF, and those of the shared libraries it has loaded
    /// whose debug info names files that are on disk).
    paths: Vec<PathBuf>,
    /// Also patch every descendant of PID that runs the same program (a
    /// server's workers, also those it forks later), each reload one
    /// transaction over all of them. `relive run` always does.
    #[arg(long)]
    tree: bool,
    #[command(flatten)]
    pub options: Options,
}

/// What `run` and `watch` share.
#[derive(clap::Args)]
pub struct Options {
    /// Compile command, without -c, -o and the file (e.g. "gcc -O2 -g").
    #[arg(long)]
    cc: Option<String>,
    /// Compile this many files at once at start (default: one per core).
    #[arg(short = 'j', long, value_name = "N")]
    jobs: Option<usize>,
    /// Only report functions edited before relive started (default: patch them).
    #[arg(long)]
    no_catch_up: bool,
    /// Patch edits even of functions whose compile here differs from the running code.
    #[arg(long)]
    trust_baselines: bool,
    /// Milliseconds of quiet that group saves into one reload (patched as one
    /// transaction). A complete save (closed after writing, or renamed into
    /// place) compiles at once, and files saved while it compiles, or within
    /// the quiet after it, join it; a file that may still be written waits
    /// for the quiet first. Default: 2 after complete saves; a file written
    /// but not closed yet waits until it is closed, or for 1000 of quiet
    /// (while another process still has it open for writing, until it is
    /// closed: 30 s at most).
    #[arg(long)]
    debounce_ms: Option<u64>,
    /// One JSON object per line on stderr, its "event" one of: "starting"; "baseline" (a file's start-up compare
    /// with the running code, by "status": "edited", "differs", "command_differs", "compile_error", "initial_values",
    /// "patched_over" (functions that run an earlier relive patch while the file compiles into the program's own
    /// code for them), "absent" (none of the file's functions is in the program); an edited one names the "edited_files"); "watching"; per reload "patched", "unreachable", "reverted" (only
    /// patches taken back: the save put their functions back as the program was built), "no_change",
    /// "compile_error", "superseded", "refused", "held", "not_compiled"; "waiting" (a file saved in part that another
    /// process still has open for writing, its "message" naming the process: compiled once it is closed);
    /// "changed_elsewhere"; "exited" or "stopped".
    /// {"event":"watching","files","pid","saved_while_starting"} once ready,
    /// then per reload {"event","file","functions" (symbols),"names" (demangled),"timing_us","pause_us" (µs every thread stood
    /// still: 0 when none was stopped, as for functions patched before, whose jump slots are updated while they run),
    /// "added" and "added_variables" (functions and variables the program lacked, brought by the reload, only when
    /// any), "lines_moved" (of the functions, those whose code changed only in line numbers an edit above them
    /// moved, only when any), "reverted" (patched functions the save put back as the program was built, whose patches were taken
    /// back, only when any), "as_built" (of the functions, those the save put back as the program was built whose
    /// patches could not be taken back on their own: patched again with the program's own code, only when any),
    /// "inlined_edits" (edited functions inlined into patched ones: with no code of their own, or patched too; each {"function","into","added"}: the
    /// patched functions it is inlined into, "added" only when the save added it, only when any), "initial_values_kept" (variables whose initial value the
    /// save changed, which the program does not take: it keeps the values they have, only when any; an edit of an
    /// initializer alone is a "no_change" event), "compiler_warnings" (what the compiler printed for a compile that succeeded, only when
    /// it did), "compiler_warnings_repeated" (true when they are those this file's last event gave: the text
    /// says them in one line)}; {"event":"changed_elsewhere","file","functions","message"} when another relive command (`revert`,
    /// `patch`) changed functions of a watched file, which then run other code than it says until its next save;
    /// at the end
    /// {"event":"exited",...} when the program ended (by exiting, or killed by a signal: then with "signal" and
    /// "signal_name") or, when relive itself was stopped by a signal, {"event":"stopped","pid","program_running","patched"}.
    #[arg(long)]
    pub json: bool,
}

fn print_event(e: &ReloadEvent, json: bool) {
    let mut err = std::io::stderr().lock();
    if json {
        /// The event with `names`: its `functions` as people write them.
        #[derive(serde::Serialize)]
        struct Named<'e> {
            #[serde(flatten)]
            event: &'e ReloadEvent,
            #[serde(skip_serializing_if = "Vec::is_empty")]
            names: Vec<String>,
        }
        let names = e.functions.iter().map(|f| relive_patch::names::readable(f)).collect();
        let named = Named { event: e, names };
        let _ = writeln!(err, "{}", serde_json::to_string(&named).unwrap_or_default());
        return;
    }
    let _ = match e.event {
        EventKind::Patched | EventKind::Reverted => writeln!(
            err,
            "relive: {}: {}",
            e.file,
            first_word_painted(&e.summary_listing(crate::output::verbose()), Tone::Good)
        ),
        EventKind::Unreachable => writeln!(
            err,
            "relive: {}: {}",
            e.file,
            first_word_painted(&e.summary_listing(crate::output::verbose()), Tone::Warn)
        ),
        EventKind::NoChange => writeln!(err, "relive: {}: {}", e.file, e.no_change_listing()),
        EventKind::NotCompiled => writeln!(
            err,
            "relive: {}: {} — {}",
            e.file,
            paint("not compiled", Tone::Warn),
            e.message.as_deref().unwrap_or("")
        ),
        EventKind::ChangedElsewhere => writeln!(
            err,
            "relive: {}: {}",
            e.file,
            first_word_painted(
                e.message.as_deref().unwrap_or("changed by another relive command"),
                Tone::Warn
            )
        ),
        EventKind::CompileError => {
            // Not "without its edit": a header's edit recompiles files
            // nobody edited (a libuv re-check).
            let message = e.message.as_deref().unwrap_or("");
            // The compiler's first lines, not a cascade of hundreds (a
            // zlib trial: 150 lines of one header's broken macro); -v
            // shows all.
            let lines = message.lines().count();
            let shown: String = match lines > COMPILER_LINES_SHOWN && !crate::output::verbose() {
                true => {
                    let head: Vec<&str> = message.lines().take(COMPILER_LINES_SHOWN).collect();
                    format!(
                        "{}\n… and {} more lines of the compiler's output (-v shows them all)",
                        head.join("\n"),
                        lines - COMPILER_LINES_SHOWN
                    )
                }
                false => message.to_string(),
            };
            let _ = writeln!(
                err,
                "relive: {}: {}; the program runs on with the code it has:\n{shown}",
                e.file,
                paint("does not compile", Tone::Bad),
            );
            // Among many lines of warnings, the first error again, last (a
            // jq trial's syntax error was one line in 570).
            match first_error(message).filter(|_| message.lines().count() > ERRORS_SHOWN_AT_THE_END) {
                Some(error) => writeln!(err, "relive: {}: the first error: {error}", e.file),
                None => Ok(()),
            }
        }
        _ => writeln!(
            err,
            "relive: {}: {} — {}",
            e.file,
            paint(&e.event.to_string(), Tone::Warn),
            relive_patch::names::readable_text(e.message.as_deref().unwrap_or(""))
        ),
    };
    // The compile succeeded, with warnings: said as the compiler said them
    // (a call that no longer matches its prototype warns, then crashes).
    // The same warnings as this file's last event, printed in full before
    // (an event said on the "nothing changed" line shows none): one line,
    // unless -v.
    let shown_before =
        e.compiler_warnings.is_some() && !WARNINGS_SHOWN.with(|shown| shown.borrow_mut().insert(e.file.clone()));
    match &e.compiler_warnings {
        Some(warnings) if e.compiler_warnings_repeated && shown_before && !crate::output::verbose() => {
            let lines = warnings.lines().count();
            let _ = writeln!(
                err,
                "  {} as at its last compile ({lines} line{}; -v repeats them)",
                paint("the compiler warned", Tone::Warn),
                if lines == 1 { "" } else { "s" }
            );
        }
        Some(warnings) => {
            let _ = writeln!(err, "  {}:", paint("the compiler warned", Tone::Warn));
            for line in warnings.lines() {
                let _ = writeln!(err, "    {line}");
            }
        }
        None => {}
    }
}

/// Compiler output longer than this many lines ends with its first error
/// again.
const ERRORS_SHOWN_AT_THE_END: usize = 20;

/// How many lines of a failed compile's output are shown (without -v).
const COMPILER_LINES_SHOWN: usize = 40;

/// The first line of a compiler's output that reports an error.
fn first_error(output: &str) -> Option<&str> {
    output
        .lines()
        .find(|line| line.contains(": error:") || line.contains(": fatal error:"))
}

/// Whether `e` holds its file for the reason `said` last gave for it
/// (then it need not be said again); notes what it says otherwise. Any
/// other event of the file forgets its last reason.
fn held_again(e: &ReloadEvent, said: &mut std::collections::HashMap<String, String>) -> bool {
    let message = e.message.clone().unwrap_or_default();
    if e.event != EventKind::Held {
        said.remove(&e.file);
        return false;
    }
    if said.get(&e.file) == Some(&message) {
        return true;
    }
    said.insert(e.file.clone(), message);
    false
}

thread_local! {
    /// Each held file's reason, as last said ([`held_again`]).
    static HELD_SAID: std::cell::RefCell<std::collections::HashMap<String, String>> = Default::default();
    /// The files whose compiler warnings were printed in full.
    static WARNINGS_SHOWN: std::cell::RefCell<std::collections::HashSet<String>> = Default::default();
}

/// `text` with its first word (the outcome: `patched`) in `tone`'s colour.
fn first_word_painted(text: &str, tone: Tone) -> String {
    let (word, rest) = text.split_once(' ').unwrap_or((text, ""));
    let space = if rest.is_empty() { "" } else { " " };
    format!("{}{space}{rest}", paint(word, tone))
}

/// The reloads of one burst of saves: JSON lines one per file; as text,
/// the files where nothing changed (a header's other includers) on one
/// line.
fn print_events(events: &[ReloadEvent], json: bool, verbose: bool) {
    let quiet = !json && !verbose && events.len() > 1;
    let unchanged_events: Vec<&ReloadEvent> = events
        .iter()
        .filter(|e| quiet && e.event == EventKind::NoChange && e.notes.is_empty())
        .collect();
    let unchanged: Vec<String> = unchanged_events.iter().map(|e| e.file.clone()).collect();
    // Compiled at once: the longest is how long the step took (a header
    // edit that recompiled 10 files said no time at all: a zstd trial).
    let unchanged_us = unchanged_events.iter().map(|e| e.timing_us.total).max().unwrap_or(0);
    let events = notes_said_once(events, json);
    let shown: Vec<&ReloadEvent> = events.iter().filter(|e| !unchanged.contains(&e.file)).collect();
    let (shown, same_refusals) = match quiet {
        true => refusals_said_once(shown),
        false => (shown, Vec::new()),
    };
    // A header's error is every includer's: its compiler output once, the
    // others in a line each (a Lua trial: a missing `;` in lstate.h gave
    // 2,801 lines, the same error 18 times).
    let mut errors_shown: Vec<(&str, &str)> = Vec::new();
    for e in shown {
        // A file held again for the same reason, tried with every save:
        // said once in full (a libxz re-check's output grew by a long
        // line per held file with each save).
        if !json && HELD_SAID.with(|said| held_again(e, &mut said.borrow_mut())) {
            crate::output::say!("relive: {}: {} as said above", e.file, paint("still held", Tone::Warn));
            continue;
        }
        let first = (e.event == EventKind::CompileError && !json)
            .then(|| e.message.as_deref().and_then(first_error))
            .flatten();
        if let Some(first) = first {
            if let Some((_, file)) = errors_shown.iter().find(|(error, _)| *error == first) {
                crate::output::say!(
                    "relive: {}: {} with the same first error as {file} ({first}); the program runs on with the code it has",
                    e.file,
                    paint("does not compile", Tone::Bad),
                );
                continue;
            }
            errors_shown.push((first, &e.file));
        }
        print_event(e, json);
    }
    for files in same_refusals {
        crate::output::note(&format!(
            "relive: {}: {} for the same reason",
            list_briefly(&files, false),
            paint("refused", Tone::Warn)
        ));
    }
    if !unchanged.is_empty() {
        crate::output::note(&format!(
            "relive: no function changed in {} ({:.1} ms)",
            list_briefly(&unchanged, false),
            unchanged_us as f64 / 1000.0
        ));
    }
}

/// `events` without the refusals that repeat an earlier one's message (a
/// header's change that every file including it refuses alike: a Lua
/// trial printed seven identical lines), and the files of each refusal
/// so left out, to be named once after the events.
fn refusals_said_once(events: Vec<&ReloadEvent>) -> (Vec<&ReloadEvent>, Vec<Vec<String>>) {
    let mut said: Vec<(&str, Vec<String>)> = Vec::new();
    let mut shown = Vec::new();
    for e in events {
        let refusal = e.message.as_deref().filter(|_| e.event == EventKind::Refused);
        match refusal.and_then(|m| said.iter_mut().find(|(said, _)| *said == m)) {
            Some((_, files)) => files.push(e.file.clone()),
            None => {
                said.extend(refusal.map(|m| (m, Vec::new())));
                shown.push(e);
            }
        }
    }
    let repeated = said
        .into_iter()
        .map(|(_, files)| files)
        .filter(|f| !f.is_empty())
        .collect();
    (shown, repeated)
}

/// The notes of a session that tell a lasting condition of the process
/// (no unwinder could be loaded into it, gdb cannot be told of new code),
/// not of one reload: said as text at the first reload that has one, and
/// again only after a reload without it (a Lua trial: both repeated on
/// every reload of a busy program, which never waits where relive can
/// load its library). JSON keeps every event whole.
#[derive(Default)]
struct SaidConditions {
    said: std::collections::HashSet<String>,
}

impl SaidConditions {
    fn unsaid(&mut self, events: &[ReloadEvent], json: bool) -> Vec<ReloadEvent> {
        if json {
            return events.to_vec();
        }
        let now: std::collections::HashSet<String> = events
            .iter()
            .flat_map(|e| &e.notes)
            .filter(|n| relive_patch::apply::is_lasting_condition(n))
            .cloned()
            .collect();
        let events: Vec<ReloadEvent> = events
            .iter()
            .map(|e| {
                let mut e = e.clone();
                e.notes
                    .retain(|n| !relive_patch::apply::is_lasting_condition(n) || !self.said.contains(n));
                e
            })
            .collect();
        // A reload that patched without the note had the condition cleared
        // (or not met), and its return is news.
        if events.iter().any(|e| e.event == EventKind::Patched) {
            self.said = now;
        }
        events
    }
}

/// `events` of one change as text: a note several of them carry (the
/// process has no unwinder, a debugger's breakpoint) is said with the
/// first only; it was said once per file. A note of a file's own code (a
/// changed macro's values) is said with each file, whole with the first
/// and shortened with the others, pointing back (a jq trial: a macro's
/// 600-character note, six times over). JSON keeps every event whole.
fn notes_said_once(events: &[ReloadEvent], json: bool) -> Vec<ReloadEvent> {
    let mut said = std::collections::HashSet::new();
    let mut said_with: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    events
        .iter()
        .map(|e| {
            let mut e = e.clone();
            if !json {
                let own = std::mem::take(&mut e.file_notes);
                let file = std::path::Path::new(&e.file)
                    .file_name()
                    .map(|f| f.to_string_lossy().into_owned())
                    .unwrap_or_default();
                e.notes = std::mem::take(&mut e.notes)
                    .into_iter()
                    .filter_map(|n| match own.contains(&n) {
                        true => match said_with.get(&n) {
                            Some(first) => Some(format!("{} (as said for {first})", shortened(&n))),
                            None => {
                                said_with.insert(n.clone(), file.clone());
                                Some(n)
                            }
                        },
                        false => said.insert(n.clone()).then_some(n),
                    })
                    .collect();
            }
            e
        })
        .collect()
}

/// A note's first words: up to its first parenthesis, or 80 characters.
fn shortened(note: &str) -> String {
    match note.find(" (") {
        Some(k) => note[..k].to_string(),
        None => match note.char_indices().nth(80) {
            Some((k, _)) => format!("{}…", &note[..k]),
            None => note.to_string(),
        },
    }
}

/// A file to watch, its compile command, and other commands the build
/// recorded for it.
type Planned = (PathBuf, CompileCommand, Vec<CompileCommand>);

/// The files to watch and their compile commands.
/// `/proc/PID/exe`: the file process `pid` runs, which the kernel keeps
/// open even when its path (`exe`) was deleted or names a newer build.
/// The units of the shared libraries process `pid` has mapped (not its
/// program `exe`) whose source files are on disk; system libraries have
/// no debug information, or their sources are not here.
fn library_units(pid: u32, exe: &std::path::Path) -> Vec<sources::Unit> {
    let Ok(maps) = relive_process::open(pid).and_then(|p| p.maps()) else {
        return Vec::new();
    };
    let program = std::fs::canonicalize(exe).ok();
    let mut paths: Vec<&str> = maps
        .iter()
        .filter(|m| m.executable() && m.path.starts_with('/'))
        .map(|m| m.path.as_str())
        .collect();
    paths.sort_unstable();
    paths.dedup();
    paths
        .into_iter()
        .filter(|p| std::fs::canonicalize(p).ok() != program)
        .flat_map(|p| sources::units(std::path::Path::new(p)).unwrap_or_default())
        .collect()
}

fn running_image(pid: u32) -> PathBuf {
    PathBuf::from(format!("/proc/{pid}/exe"))
}

/// Why `command` (given by the user, or recorded by a build) cannot be the
/// one that built `unit`, whose debug info records its options: another
/// optimisation level. Such a command compiles every function into other
/// code, which a file saved after the build made look edited, and relive
/// patched it (a user's trial gave `--cc` `-O1` for an `-O2` build).
/// Why `command` cannot compile the running code of `unit`, when that is
/// known: it compiles at another `-O` level than the debug info records.
fn conflicts_with_build(command: &CompileCommand, unit: &sources::Unit) -> Option<String> {
    use relive_patch::origin::optimisation;
    let built = optimisation(unit.flags.iter().map(String::as_str))?;
    let ours = optimisation(command.args.iter().map(String::as_str)).unwrap_or("-O0");
    (ours != built).then(|| {
        format!(
            "{} compiles {} with {ours}, but the program's debug info says it was built with {built}",
            command.origin,
            unit.name.display()
        )
    })
}

fn plan(
    pid: u32,
    exe: &std::path::Path,
    explicit: &[PathBuf],
    cc: Option<&str>,
    json: bool,
    command: &str,
) -> anyhow::Result<(Vec<Planned>, Vec<PathBuf>)> {
    // A program rebuilt (or deleted) on disk since it started: its debug
    // info is read from the running image, which the kernel keeps.
    let units = match sources::units(exe) {
        Ok(units) => units,
        Err(_) => sources::units(&running_image(pid)).unwrap_or_default(),
    };
    // One spelling per file (absolute, no `..`), as the watch reports it;
    // each unit's compile command keeps the name the compiler saw.
    // With no files named, the sources of the libraries it has loaded
    // too, where their debug info names files that are on disk (a
    // project's own library: jq's libjq.so, whose files were left out
    // without a word and never patched, a jq trial).
    let libraries = match explicit.is_empty() {
        true => library_units(pid, exe),
        false => Vec::new(),
    };
    let mut units: Vec<(PathBuf, sources::Unit)> = units
        .into_iter()
        .map(|u| (relive_reload::compdb::absolute(&u.source), u))
        .collect();
    for u in libraries {
        let file = relive_reload::compdb::absolute(&u.source);
        if !units.iter().any(|(f, _)| *f == file) {
            units.push((file, u));
        }
    }
    let files: Vec<PathBuf> = if explicit.is_empty() {
        units.iter().map(|(f, _)| f.clone()).collect()
    } else {
        explicit.iter().map(|p| relive_reload::compdb::absolute(p)).collect()
    };
    anyhow::ensure!(!files.is_empty(), "{}", no_sources(exe, command));
    // The project headers the watched files' code came from.
    let mut headers: Vec<PathBuf> = Vec::new();
    for (_, unit) in units.iter().filter(|(f, _)| files.contains(f)) {
        for header in &unit.headers {
            if !headers.contains(header) {
                headers.push(header.clone());
            }
        }
    }
    let cc = match cc {
        Some(cc) => {
            let words = shlex::split(cc).with_context(|| format!("--cc {cc:?}: unbalanced quotes"))?;
            anyhow::ensure!(
                !words.is_empty(),
                "--cc is empty: give the compile command, e.g. --cc \"gcc -O2 -g\""
            );
            Some(words)
        }
        None => None,
    };
    let planned = files
        .into_iter()
        .map(|f| {
            // --cc, then compile_commands.json, then what the program's
            // DWARF records, then a default.
            let mut recorded = match &cc {
                Some(cc) => vec![CompileCommand::plain(cc.clone(), &f, "--cc")],
                None => sources::from_compile_commands(&f),
            };
            let unit = units.iter().find(|(named, _)| *named == f).map(|(_, u)| u);
            let mut command = match (recorded.is_empty(), unit) {
                (true, Some(u)) => u.compile_command(),
                (true, None) => CompileCommand::plain(vec!["cc".into(), "-O0".into(), "-g".into()], &f, "default"),
                (false, _) => recorded.remove(0),
            };
            if let Some(why) = unit.and_then(|u| conflicts_with_build(&command, u)) {
                command.complete = false;
                let message = format!(
                    "{why}: its code cannot be the running code, so a difference is not taken as an edit; fix the compile command"
                );
                report_baseline(
                    json,
                    serde_json::json!({"event": "baseline", "file": f.display().to_string(), "status": "command_differs", "message": message}),
                    format!("relive: WARNING: {message}"),
                );
                command.unlike_build = Some(why);
            }
            // The database's other commands for the file, tried when the
            // first does not compile into the running code.
            (f, command, recorded)
        })
        .collect();
    Ok((planned, headers))
}

/// Compiles every file's baseline (in parallel, with a progress line),
/// compares each with the running code and says what differs: files
/// edited since the build are patched now (unless --no-catch-up).
/// Compiles and checks every file's baseline; returns the reloads that
/// caught up edits made before relive started (they count as reloads in
/// the report of the program's death).
fn baselines(
    pid: u32,
    reloader: &mut Reloader,
    files: &[Planned],
    options: &Options,
) -> anyhow::Result<Vec<ReloadEvent>> {
    let started = std::time::Instant::now();
    let jobs = options
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let paths: Vec<PathBuf> = files.iter().map(|(f, _, _)| f.clone()).collect();
    let tty = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let show_progress = tty && !options.json && files.len() > 1;
    // Into a file or a pipe, no line counting up: one to say what the
    // wait is (a large tree takes tens of seconds, and said nothing).
    if !tty && !options.json && files.len() > 1 && !crate::output::quiet() {
        crate::output::say!(
            "relive: compiling {} files to compare with the running code ({jobs} at a time)...",
            files.len()
        );
    }
    let results = reloader.baselines(&paths, jobs, |done, all| {
        if show_progress {
            eprint!("\rrelive: compiling {all} files to compare with the running code: {done}/{all}");
        }
    })?;
    if show_progress {
        crate::output::say!();
    }
    // A program that ended meanwhile runs nothing to compare with: the
    // differences its exit made are not the build's (the watch loop then
    // reports the exit).
    if !matches!(relive_process::started_at(pid), Ok(Some(_))) || zombie(pid) {
        return Ok(Vec::new());
    }
    let mut verified = 0;
    // Files whose compile is the program's own code where an earlier
    // relive patch runs: not "exactly the code the program runs".
    let mut patched_over = 0;
    let mut found: Option<Vec<String>> = None;
    let mut guessed: Vec<String> = Vec::new();
    let mut other_entries: Vec<String> = Vec::new();
    let mut to_catch_up = Vec::new();
    for (file, mut outcome) in results {
        // Options the debug info did not record (clang): the ones that
        // compile into the running code are the build's.
        if let Baseline::Differs { edited: false, .. } = outcome {
            let others = files
                .iter()
                .find(|(f, _, _)| *f == file)
                .map(|(_, _, o)| o.clone())
                .unwrap_or_default();
            if let Some(hit) = reloader.find_command(&file, &others)? {
                // Each with -v; else all in one line below (a redis
                // trial's start printed 14 of these for jemalloc's files).
                if !options.json && crate::output::verbose() {
                    crate::output::note(&format!(
                        "relive: {} compiles into the running code with compile_commands.json's other entry for it: {}",
                        file.display(),
                        hit.display()
                    ));
                }
                other_entries.push(file.display().to_string());
                outcome = Baseline::Verified(Default::default());
            }
        }
        if let Baseline::Differs { edited: false, .. } = outcome {
            let command = reloader.command(&file);
            let recorded_nothing = !command.args.iter().any(|a| a.starts_with("-O"));
            if matches!(command.origin, "debug info" | "default") && recorded_nothing {
                let candidates = guesses(&command, found.as_deref());
                if let Some(hit) = reloader.find_command(&file, &candidates)? {
                    if crate::output::verbose() {
                        crate::output::note(&format!(
                            "relive: {} compiles into the running code with {} (options guessed)",
                            file.display(),
                            hit.args.join(" ")
                        ));
                    }
                    guessed.push(file.display().to_string());
                    found = Some(hit.args[2..4].to_vec());
                    outcome = Baseline::Verified(Default::default());
                }
            }
        }
        let name = file.display().to_string();
        // An initializer edited before relive started: no patch brings it
        // into the running program (a trial on mimalloc changed a table's
        // initial value, and nothing said it did not take effect).
        if !matches!(outcome, Baseline::CompileError(_)) {
            let variables = reloader.initial_values_changed(&file);
            if !variables.is_empty() {
                let message = match variables.as_slice() {
                    [one] => relive_patch::select::initial_value_note(one),
                    many => format!(
                        "the initial values of {} changed: the program keeps the values it has (a restart takes the new ones)",
                        many.join(", ")
                    ),
                };
                let message = format!("edited before relive started: {message}");
                report_baseline(
                    options.json,
                    serde_json::json!({"event": "baseline", "file": name, "status": "initial_values", "variables": variables, "message": message}),
                    format!("relive: {name}: {message}"),
                );
            }
        }
        // Functions a relive patch replaced, which the file's compile has
        // as built: that patch is what runs, and it stays until a save
        // changes them (said, not blamed on the compile command).
        if let Baseline::Verified(check) | Baseline::Differs { check, .. } = &outcome {
            if !check.patched_over.is_empty() {
                let functions: Vec<&str> = check.patched_over.iter().map(|(f, _)| f.as_str()).collect();
                let details: Vec<String> = check
                    .patched_over
                    .iter()
                    .map(|(f, why)| format!("{f}: {why}"))
                    .collect();
                let message = format!(
                    "{} {} an earlier relive patch, not this file's code (the file compiles into the program's own code there): it stays until a save changes {}",
                    functions.join(", "),
                    if functions.len() == 1 { "runs" } else { "run" },
                    if functions.len() == 1 { "it" } else { "them" },
                );
                report_baseline(
                    options.json,
                    serde_json::json!({"event": "baseline", "file": name, "status": "patched_over", "functions": functions, "details": details, "message": message}),
                    format!("relive: {name}: {message}\n  {}", details.join("\n  ")),
                );
            }
        }
        match outcome {
            // None of its functions is in the program: nothing was
            // compared, so nothing is verified (watching a file of another
            // program said "1 of 1 files compile into exactly the code the
            // program runs": a re-check that gave relive a wrapper's pid).
            Baseline::Verified(check) if !check.compared() && !check.absent.is_empty() => {
                let program = std::fs::read_link(format!("/proc/{pid}/exe"))
                    .map_or_else(|_| format!("pid {pid}'s program"), |p| p.display().to_string());
                let message = format!(
                    "none of its {} functions is in {program} or a library it has loaded, as a function of its own, so nothing was compared: the source of a library the program loads later (dlopen) is compared with it then; else it is not one of the program's sources (or every function of it was inlined), and its saves add their functions as new code that nothing calls",
                    check.absent.len()
                );
                report_baseline(
                    options.json,
                    serde_json::json!({"event": "baseline", "file": name, "status": "absent", "functions": check.absent, "message": message}),
                    format!("relive: WARNING: {name}: {message}"),
                );
            }
            Baseline::Verified(check) if !check.patched_over.is_empty() => patched_over += 1,
            Baseline::Verified(_) => verified += 1,
            Baseline::CompileError(message) => {
                let command = reloader.command(&file);
                let first_error = first_error(&message).or(message.lines().next()).unwrap_or("");
                // A command relive made up is the likely cause, not the
                // file: "edits will be patched once it does" read as "edit
                // it" (a libuv trial), and the debug information does
                // record -I (its header directories), not the -D options.
                let text = match command.origin {
                    "debug info" | "default" => format!(
                        "relive: {name} does not compile with the command relive derived from the {} ({first_error}); its edits are not patched until it does: {}",
                        command.origin,
                        relive_reload::FIX_FLAGS
                    ),
                    _ => format!("relive: {name} does not compile now ({first_error}); edits will be patched once it does"),
                };
                report_baseline(
                    options.json,
                    serde_json::json!({"event": "baseline", "file": name, "status": "compile_error", "message": message, "command": command.display()}),
                    text,
                )
            }
            Baseline::Differs { check, edited, trusted } => {
                let listed: Vec<String> = check.differs.iter().map(|(f, why)| format!("{f} ({why})")).collect();
                // As text, a few of them (a file can differ everywhere).
                const SHOWN: usize = 6;
                let shown = match listed.len() > SHOWN && !crate::output::verbose() {
                    true => format!(
                        "{}; and {} more (-v lists them)",
                        listed[..SHOWN].join("; "),
                        listed.len() - SHOWN
                    ),
                    false => listed.join("; "),
                };
                if edited && (trusted || options.trust_baselines) && !options.no_catch_up {
                    // Code another relive command patched differs for that
                    // reason too (a one-shot patch from another copy).
                    let patched = reloader.patched_already(&check.differing());
                    let by_others = match patched.len() {
                        0 => String::new(),
                        n => format!(
                            " ({} {} patched by an earlier relive command, which the file's compile replaces)",
                            patched.join(", "),
                            if n == 1 { "was" } else { "were" }
                        ),
                    };
                    let edited_files = reloader.edited_after_build(&file);
                    report_baseline(
                        options.json,
                        serde_json::json!({"event": "baseline", "file": name, "status": "edited", "functions": check.differing(), "patched_before": patched,
                                           "edited_files": edited_files}),
                        // What becomes of it is the catch-up's own line
                        // (it may be refused: "patching it now" came
                        // right before a refusal).
                        format!(
                            "relive: {} after the program was built: {} {} from the running code{by_others}, an edit to catch up",
                            what_was_edited(&file, &name, &edited_files),
                            check.differing().join(", "),
                            if check.differs.len() == 1 { "differs" } else { "differ" },
                        ),
                    );
                    to_catch_up.push(file.clone());
                    continue;
                }
                let command = reloader.command(&file);
                let why = if edited && trusted {
                    "was edited after the program was built (not patched: --no-catch-up); edits of these functions are refused until the program runs them".to_string()
                } else {
                    format!(
                        "compiles into code that differs from what the program runs, with {} from {}{}; {}",
                        command.display(),
                        command.origin,
                        if edited {
                            " (it was also modified after the program was built, but with a compile command not known to be the build's, that cannot be told from a missing option)"
                        } else {
                            ""
                        },
                        command.fix()
                    )
                };
                report_baseline(
                    options.json,
                    serde_json::json!({"event": "baseline", "file": name, "status": if edited && trusted { "edited" } else { "differs" },
                                       "functions": check.differing(), "details": listed, "message": why}),
                    format!(
                        "relive: WARNING: {name} {why}.\n  differing: {}\n  {}",
                        shown,
                        if command.complete {
                            "edits of these functions are refused (--trust-baselines patches them anyway); other functions of the file are patched"
                        } else {
                            "edits anywhere in this file are refused, since its compile command may lack an option some other function depends on (--trust-baselines patches them anyway)"
                        }
                    ),
                );
            }
        }
    }
    // Edits made before relive started, patched as one change.
    let caught_up = reloader.catch_up_all(&to_catch_up)?;
    for event in &notes_said_once(&caught_up, options.json) {
        print_event(event, options.json);
    }
    if !other_entries.is_empty() && !options.json && !crate::output::verbose() {
        crate::output::note(&format!(
            "relive: {} compile{} into the running code with compile_commands.json's other entr{} for {} (-v shows each)",
            list_briefly(&other_entries, false),
            if other_entries.len() == 1 { "s" } else { "" },
            if other_entries.len() == 1 { "y" } else { "ies" },
            if other_entries.len() == 1 { "it" } else { "them" },
        ));
    }
    if !guessed.is_empty() && !options.json {
        crate::output::note(&format!(
            "relive: the debug info records no compiler options for {}; {} compile into the running code with {} (-v shows each)",
            list_briefly(&guessed, crate::output::verbose()),
            if guessed.len() == 1 { "it does" } else { "they do" },
            found.as_deref().unwrap_or_default().join(" ")
        ));
    }
    if !options.json {
        let over = match patched_over {
            0 => String::new(),
            n => format!(
                "; {n} more into the program's own code where {} an earlier relive patch, as said above",
                if n == 1 { "it runs" } else { "they run" }
            ),
        };
        crate::output::note(&format!(
            "relive: {verified} of {} files compile into exactly the code the program runs{over} ({:.1} s, {jobs} at a time)",
            files.len(),
            started.elapsed().as_secs_f64()
        ));
    }
    Ok(caught_up)
}

/// Compile commands to try when `command` (from debug info that records
/// no options: clang without -grecord-command-line) does not compile into
/// the running code: the optimisation level and PIE choice that worked
/// for another file first, then each level with and without PIE, keeping
/// this file's `-I`/`-D`.
fn guesses(command: &CompileCommand, last: Option<&[String]>) -> Vec<CompileCommand> {
    let (cc, rest) = command.args.split_first().expect("a compiler");
    let kept: Vec<String> = rest
        .iter()
        .filter(|a| a.starts_with("-I") || a.starts_with("-D") || a.starts_with("-U"))
        .cloned()
        .collect();
    let mut choices: Vec<[String; 2]> = Vec::new();
    if let Some([level, pie]) = last {
        choices.push([level.clone(), pie.clone()]);
    }
    for level in ["-O2", "-O0", "-O1", "-O3", "-Os", "-Og"] {
        for pie in ["-fpie", "-fno-pie"] {
            choices.push([level.to_string(), pie.to_string()]);
        }
    }
    choices
        .into_iter()
        .map(|[level, pie]| {
            let mut args = vec![cc.clone(), "-g".to_string(), level, pie];
            args.extend(kept.iter().cloned());
            CompileCommand {
                args,
                origin: "guessed",
                ..command.clone()
            }
        })
        .collect()
}

/// `a, b, c and 30 more` (every name with `all`).
fn list_briefly(names: &[String], all: bool) -> String {
    const SHOWN: usize = 4;
    if all || names.len() <= SHOWN + 1 {
        return names.join(", ");
    }
    format!(
        "{} and {} more (-v lists them)",
        names[..SHOWN].join(", "),
        names.len() - SHOWN
    )
}

fn report_baseline(json: bool, value: serde_json::Value, text: String) {
    if json {
        crate::output::say!("{value}");
    } else {
        crate::output::say!("{}", relive_patch::names::readable_text(&text));
    }
}

/// What a session remembers of its last patch, for the report when the
/// program dies: every file of that step (files saved together, a
/// catch-up of several), not only the last one's (a zstd trial: the
/// crash was blamed on the header's partner, not on the file whose code
/// crashed).
#[derive(Default)]
struct LastReload {
    at: Option<std::time::Instant>,
    /// Each file of the step, with the functions it patched or added
    /// whose new code runs.
    files: Vec<(String, Vec<String>)>,
    /// Functions the step redirected whose new code cannot run (the old
    /// code runs on): not listed as patched.
    unreachable: Vec<String>,
    /// Functions whose patches the step took back (the save put them back
    /// as the program was built): a step of only those "patched no
    /// function" before.
    reverted: Vec<String>,
    /// Another relive command changed or reverted patches after the
    /// step: what it patched may no longer run (a snappy trial's exit
    /// line named patches `revert --all` had taken back).
    changed_since: bool,
}

impl LastReload {
    /// Remembers the last of `events` (one step) that changed the program,
    /// also one whose new code cannot run (its entries were redirected all
    /// the same).
    fn note(&mut self, events: &[ReloadEvent]) {
        let applied: Vec<&ReloadEvent> = events.iter().filter(|e| e.event.applied()).collect();
        if applied.is_empty() {
            self.changed_since |= self.at.is_some() && events.iter().any(|e| e.event == EventKind::ChangedElsewhere);
            return;
        }
        *self = LastReload {
            at: Some(std::time::Instant::now()),
            files: applied
                .iter()
                .map(|e| (e.file.clone(), e.functions.iter().chain(&e.added).cloned().collect()))
                .collect(),
            unreachable: applied.iter().flat_map(|e| e.unreachable.iter().cloned()).collect(),
            reverted: applied.iter().flat_map(|e| e.reverted.iter().cloned()).collect(),
            changed_since: false,
        };
    }

    /// Every function of the step, patched or added, whose new code runs.
    fn functions(&self) -> Vec<String> {
        self.files.iter().flat_map(|(_, f)| f.iter().cloned()).collect()
    }

    /// What the step did, in words after "which": `patched f, g in a.c;
    /// h in b.c`, or what it put back.
    fn described(&self) -> String {
        let readable = |functions: &[String]| {
            functions
                .iter()
                // The compiler's static initializers ran at start-up only.
                .filter(|f| !relive_patch::names::is_static_initializer(f))
                .map(|f| relive_patch::names::readable(f))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let patched: Vec<String> = self
            .files
            .iter()
            .filter_map(|(file, functions)| match readable(functions) {
                names if names.is_empty() => None,
                names => Some(format!("{names} in {file}")),
            })
            .collect();
        let mut said = Vec::new();
        if !patched.is_empty() {
            said.push(format!("patched {}", patched.join("; ")));
        }
        if !self.reverted.is_empty() {
            said.push(format!(
                "put {} back as the program was built ({} taken back)",
                readable(&self.reverted),
                if self.reverted.len() == 1 {
                    "its patch"
                } else {
                    "their patches"
                }
            ));
        }
        if said.is_empty() {
            let files: Vec<&str> = self.files.iter().map(|(f, _)| f.as_str()).collect();
            said.push(format!(
                "patched no function whose new code runs in {}",
                files.join(", ")
            ));
        }
        let mut text = said.join(" and ");
        if !self.unreachable.is_empty() {
            text.push_str(&format!(
                " (and redirected {}, whose new code cannot run)",
                readable(&self.unreachable)
            ));
        }
        if self.changed_since {
            text.push_str(" (another relive command has changed or reverted patches since)");
        }
        text
    }
}

/// The private directory of the session's objects, removed when relive
/// ends, also by SIGINT, SIGTERM, SIGHUP or SIGQUIT (which end relive with
/// a word on what stays applied, and exit status 128 + the signal), with
/// the program's pid, and whether to speak JSON.
static SESSION: std::sync::Mutex<Option<(PathBuf, u32, bool)>> = std::sync::Mutex::new(None);

fn end_session_on_signals() {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM};
    let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP, SIGQUIT]) else {
        return;
    };
    std::thread::spawn(move || {
        let Some(signal) = signals.forever().next() else {
            return;
        };
        // A save's compile runs in a process group of its own, which the
        // terminal's Ctrl-C does not reach: it ends with relive.
        relive_reload::stop_compiles();
        // Not while a reload holds the program's threads stopped: that
        // reload finishes (and resumes them) first.
        let _still = relive_process::critical::wait_until_safe();
        if let Some((cache, pid, json)) = SESSION.lock().ok().and_then(|mut s| s.take()) {
            let _ = std::fs::remove_dir_all(&cache);
            // The same Ctrl-C may have ended the program too (a zombie
            // until reaped): then nothing stays applied.
            let running = !zombie(pid);
            let name = relive_process::signal_name(signal);
            // Patched at all? (Stopped during the start-up compare, say,
            // nothing was: the program runs as it was built.)
            let patched = StateDir::open().is_ok_and(|dir| relive_patch::fleet::has_patches(&dir, pid));
            if json {
                crate::output::say!(
                    "{}",
                    serde_json::json!({"event": "stopped", "pid": pid, "signal": signal, "program_running": running, "patched": patched})
                );
            } else if running {
                crate::output::note(&match patched {
                    true => format!(
                        "relive: stopped watching ({name}); the patches stay applied in pid {pid} while it runs (`relive status {pid}` lists them, `relive revert {pid} --all` undoes them)"
                    ),
                    false => format!("relive: stopped watching ({name}); pid {pid} runs no patched code (nothing was patched, or everything was reverted)"),
                });
            }
        }
        // The shell's convention for a death by this signal.
        std::process::exit(128 + signal);
    });
}

/// Whether process `pid` has ended and waits to be reaped.
fn zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| stat.rsplit_once(") ").map(|(_, rest)| rest.starts_with(['Z', 'X'])))
        .unwrap_or(true)
}

/// A program `relive run` started held at its entry: let go when dropped
/// (at the latest when relive ends its start-up, whatever happens).
struct Held(u32);

impl Drop for Held {
    fn drop(&mut self) {
        relive_process::release(self.0);
    }
}

/// The sources of `files`, then the `headers`, modified after the program
/// file `exe` was. (A header edited alone let the program start at once,
/// running the old code until the catch-up, and the list did not name it.)
fn newer_than(exe: &std::path::Path, files: &[Planned], headers: &[PathBuf]) -> Vec<PathBuf> {
    let modified = |p: &std::path::Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let Some(built) = modified(exe) else {
        return Vec::new();
    };
    files
        .iter()
        .map(|(f, _, _)| f)
        .chain(headers)
        .filter(|f| modified(f).is_some_and(|m| m > built))
        .cloned()
        .collect()
}

/// What a start-up line says was saved of `file` (shown as `name`):
/// the file, or the headers of it that were (`edited`: those of the file
/// and its headers modified after the program's build). A header's edit
/// was said to be an edit of the file that includes it (a Lua trial:
/// "lobject.c was edited" of an edit to luaconf.h). Saved, not edited:
/// a file's time says it was written, not that its text changed (a zstd
/// trial: headers put back as they were were said to be edited).
fn what_was_edited(file: &std::path::Path, name: &str, edited: &[PathBuf]) -> String {
    let headers: Vec<String> = edited
        .iter()
        .filter(|p| p.as_path() != file)
        .map(|p| p.display().to_string())
        .collect();
    match (edited.iter().any(|p| p == file), headers.as_slice()) {
        (_, []) => format!("{name} was saved"),
        (true, [one]) => format!("{name} and its header {one} were saved"),
        (true, many) => format!("{name} and its headers {} were saved", many.join(", ")),
        (false, [one]) => format!("{one} (which {name} includes) was saved"),
        (false, many) => format!("{} (which {name} includes) were saved", many.join(", ")),
    }
}

#[allow(clippy::too_many_arguments)]
fn reload_loop(
    pid: u32,
    exe: &std::path::Path,
    explicit: &[PathBuf],
    options: &Options,
    command: &str,
    followers: Followers,
    mut held: Option<Held>,
    exited: impl FnMut() -> Option<i32>,
) -> anyhow::Result<(i32, LastReload)> {
    let (cc, debounce, json) = (options.cc.as_deref(), options.debounce_ms, options.json);
    let (files, headers) = plan(pid, exe, explicit, cc, json, command)?;
    // A program started held waits for the start-up compare only when a
    // source is newer than it (edited since the build: patched in before
    // its first call); otherwise it starts at once.
    let newer = newer_than(exe, &files, &headers);
    if held.is_some() && newer.is_empty() {
        held = None;
    } else if held.is_some() && !json && !options.no_catch_up {
        let names: Vec<String> = newer.iter().map(|f| f.display().to_string()).collect();
        crate::output::note(&format!(
            "relive: {} newer than {}: the program waits at its entry until the sources are compared with the running code and the edits patched in (where the compile command is the build's)",
            list_briefly(&names, crate::output::verbose()),
            exe.display()
        ));
    } else if options.no_catch_up {
        held = None;
    }
    let process = relive_process::open(pid)?;
    // One `run`/`watch` per process: a second one is refused naming this.
    let _owner = StateDir::open()?.own(pid, process.start_time()?, command)?;
    let cache = tempfile::Builder::new()
        .prefix(&format!("relive-cache-{pid}-"))
        .tempdir()
        .context("creating relive's private directory for compiled objects")?;
    *SESSION.lock().unwrap_or_else(|e| e.into_inner()) = Some((cache.path().to_path_buf(), pid, json));
    end_session_on_signals();
    // The watch is armed first: an edit saved while the baselines compile
    // waits in it and is reloaded right after.
    let mut events = FileEvents::new(files.iter().map(|(f, _, _)| f.clone()))?;
    // What the sources say now is what runs (unless edited before relive
    // started): a save from here on is an edit, also one saved while its
    // baseline compiles.
    let paths: Vec<PathBuf> = files.iter().map(|(f, _, _)| f.clone()).collect();
    let snapshot = Snapshot::take(&paths);
    if json {
        crate::output::say!(
            "{}",
            serde_json::json!({"event": "starting", "pid": pid, "files": snapshot.len()})
        );
    }
    let default = files[0].1.args.clone();
    let mut reloader = Reloader::new(process.as_ref(), default, cache.path().to_path_buf())?;
    reloader.snapshot = snapshot;
    reloader.trust_baselines = options.trust_baselines;
    reloader.every_unit_watched = explicit.is_empty();
    reloader.followers = followers;
    if crate::output::verbose() {
        reloader.on_compile = Some(Box::new(|c: &CompileCommand| {
            crate::output::say!("relive: compile ({}): {}", c.origin, c.display())
        }));
    }
    for (file, command, _) in &files {
        reloader.set_command(file, command.clone());
    }
    let since = std::time::SystemTime::now();
    let caught_up = baselines(pid, &mut reloader, &files, options)?;
    // Edits made before it started are in: the program may run.
    drop(held);
    let names: Vec<String> = files.iter().map(|(f, _, _)| f.display().to_string()).collect();
    let verbose = crate::output::verbose();
    let ready = |saved: &[PathBuf]| {
        let saved: Vec<String> = saved.iter().map(|f| f.display().to_string()).collect();
        if json {
            crate::output::say!(
                "{}",
                serde_json::json!({"event": "watching", "files": names, "pid": pid, "saved_while_starting": saved})
            );
        } else {
            crate::output::note(&format!(
                "relive: watching {} (pid {pid})",
                list_briefly(&names, verbose)
            ));
            if !saved.is_empty() {
                crate::output::note(&format!(
                    "relive: {} saved while relive started: compiling {} now",
                    list_briefly(&saved, verbose),
                    if saved.len() == 1 { "it" } else { "them" }
                ));
            }
        }
    };
    let mut last = LastReload::default();
    last.note(&caught_up);
    let mut conditions = SaidConditions::default();
    let ended = watch(
        &mut reloader,
        &mut events,
        &paths,
        since,
        debounce.map_or(Debounce::ADAPTIVE, |ms| Debounce::fixed(Duration::from_millis(ms))),
        ready,
        exited,
        |events| {
            last.note(events);
            print_events(&conditions.unsaid(events, json), json, verbose)
        },
    );
    SESSION.lock().unwrap_or_else(|e| e.into_inner()).take();
    drop(cache);
    match ended? {
        Ended::Exited(code) => Ok((code, last)),
    }
}

/// Says how the program ended when a signal killed it, with what the last
/// reload patched (the likely suspect), as text or a JSON `exited` event.
fn report_death(pid: u32, status: &std::process::ExitStatus, last: &LastReload, json: bool) {
    use std::os::unix::process::ExitStatusExt;
    let Some(signal) = status.signal() else {
        if json {
            crate::output::say!(
                "{}",
                serde_json::json!({"event": "exited", "pid": pid, "status": status.code()})
            );
        } else {
            // Said in text too: a run that ended printed nothing at all,
            // and looked gone without a trace (a PCRE2 trial).
            let code = status.code().map_or_else(|| "?".to_string(), |c| c.to_string());
            crate::output::say!("relive: the program (pid {pid}) exited with status {code}");
        }
        return;
    };
    let name = relive_process::signal_name(signal);
    let since = last.at.map(|t| t.elapsed());
    if json {
        crate::output::say!(
            "{}",
            serde_json::json!({
                "event": "exited", "pid": pid, "signal": signal, "signal_name": name,
                "ms_since_last_reload": since.map(|d| d.as_millis() as u64),
                "last_reload_file": last.files.last().map(|(f, _)| f),
                "last_reload_files": last.files.iter().map(|(f, _)| f).collect::<Vec<_>>(),
                "last_reload_functions": last.functions(),
                "last_reload_unreachable": last.unreachable,
                "last_reload_reverted": last.reverted,
            })
        );
        return;
    }
    let mut text = format!("relive: the program (pid {pid}) was killed by {name} (signal {signal})");
    match since {
        Some(s) => text.push_str(&format!(
            ", {:.1} s after the last reload, which {}",
            s.as_secs_f64(),
            last.described()
        )),
        None => text.push_str("; no reload had patched it"),
    }
    crate::output::say!("{text}");
}

pub fn run(args: RunArgs) -> anyhow::Result<()> {
    let (program, rest) = args.program.split_first().expect("clap requires the program");
    // Nothing to watch is said before the program starts: it ran on (its
    // children orphaned) when relive gave up after starting it.
    if let Some(path) = which(program).filter(|_| args.watch.is_empty()) {
        anyhow::ensure!(!lacks_debug_info(&path), "{}", no_sources(&path, "run"));
    }
    let mut command = Command::new(program);
    command.args(rest);
    // A plain ELF program starts held at its entry (see `Held`); an APE
    // runs through a shell or loader first, which is not held.
    let elf = which(program).is_some_and(|p| {
        let mut magic = [0u8; 4];
        std::fs::File::open(p)
            .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic))
            .is_ok()
            && magic == *b"\x7fELF"
    });
    let (mut child, held) = match elf.then(|| relive_process::spawn_held(&mut command)) {
        Some(Ok(child)) => {
            let pid = child.id();
            (child, Some(Held(pid)))
        }
        other => {
            if let Some(Err(e)) = other {
                crate::output::note(&format!(
                    "relive: {program} could not be started held at its entry ({e}); sources edited since its build are patched in once it runs"
                ));
            }
            let child = Command::new(program)
                .args(rest)
                .spawn()
                .with_context(|| format!("starting {program}"))?;
            (child, None)
        }
    };
    let pid = child.id();
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_else(|_| PathBuf::from(program));
    wait_until_mapped(pid, &exe);
    let mut status = None;
    let result = reload_loop(
        pid,
        &exe,
        &args.watch,
        &args.options,
        "run",
        Followers::Tree,
        held,
        || {
            let s = child.try_wait().ok()??;
            status = Some(s);
            Some(crate::exit::of_status(&s))
        },
    );
    let (code, last) = match result {
        Ok(done) => done,
        Err(e) => {
            // The program ended before relive could attach, or is ending
            // while relive reads it: given a moment to finish, its status
            // is what `relive run` promises.
            let ended = status.or_else(|| {
                let deadline = std::time::Instant::now() + Duration::from_millis(200);
                loop {
                    match child.try_wait() {
                        Ok(Some(s)) => return Some(s),
                        Ok(None) if std::time::Instant::now() < deadline => {
                            std::thread::sleep(Duration::from_millis(5))
                        }
                        _ => return None,
                    }
                }
            });
            if let Some(s) = ended {
                report_death(pid, &s, &LastReload::default(), args.options.json);
                std::process::exit(crate::exit::of_status(&s));
            }
            // relive's error is not the program's end: it runs on, with
            // what was patched (it was killed here, its state lost with
            // it: a zstd trial's save while gdb was attached).
            let patched = StateDir::open().is_ok_and(|dir| relive_patch::fleet::has_patches(&dir, pid));
            crate::output::note(&match patched {
                true => format!(
                    "relive: pid {pid} runs on without relive; its patches stay applied (`relive status {pid}` lists them, `relive watch {pid}` watches its sources again)"
                ),
                false => format!("relive: pid {pid} runs on without relive, as it was built (`relive watch {pid}` watches its sources)"),
            });
            return Err(e);
        }
    };
    if let Some(s) = &status {
        report_death(pid, s, &last, args.options.json);
    }
    std::process::exit(code);
}

/// Whether `exe` is an ELF file without DWARF (`.debug_info`): nothing in
/// it names its sources. Only its headers are read.
fn lacks_debug_info(exe: &std::path::Path) -> bool {
    use object::Object;
    let Ok(file) = std::fs::File::open(exe) else {
        return false;
    };
    let cache = object::ReadCache::new(file);
    object::File::parse(&cache)
        .is_ok_and(|f| f.format() == object::BinaryFormat::Elf && f.section_by_name(".debug_info").is_none())
}

/// The error for a program whose sources relive cannot name, under
/// `command` (`run` or `watch`, which name files differently: `watch`
/// was told to pass a `--watch` it does not take, a zlib trial).
fn no_sources(exe: &std::path::Path, command: &str) -> String {
    let name_them = match command {
        "watch" => "name them: relive watch PID FILE...",
        _ => "pass --watch FILE",
    };
    format!(
        "no C or C++ sources to watch: {} has no debug info naming them (or they are not on disk); build it with -g or {name_them}",
        exe.display()
    )
}

/// Where `program` is found, as `Command` finds it: a path with a slash
/// as given, else the first match on `PATH`.
fn which(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        return Some(PathBuf::from(program));
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(program))
            .find(|p| p.is_file())
    })
}

/// Right after `exec`, `/proc/PID/exe` already names the new program but
/// the kernel may still be mapping it: wait (briefly) until it shows in the
/// maps with its code.
fn wait_until_mapped(pid: u32, exe: &std::path::Path) {
    let want = exe.to_string_lossy();
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    while std::time::Instant::now() < deadline {
        let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap_or_default();
        if maps
            .lines()
            .any(|l| l.ends_with(&*want) && l.split_whitespace().nth(1).is_some_and(|p| p.contains('x')))
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

pub fn watch_pid(args: WatchArgs) -> anyhow::Result<()> {
    // With --exe: the first process running the file is the one the
    // session owns and follows; the others are patched with it.
    let (pid, followers) = match &args.named {
        Named::Pid(pid) => (*pid, if args.tree { Followers::Tree } else { Followers::None }),
        Named::Exe(path) => {
            if args.tree {
                anyhow::bail!(
                    "--tree takes a pid (the root of the tree); --exe already names every process running {}",
                    path.display()
                );
            }
            let pids = relive_process::running(path).unwrap_or_default();
            let first = *pids.first().ok_or_else(|| NoProcessRuns(path.display().to_string()))?;
            (first, Followers::Exe(path.clone()))
        }
    };
    // A process that is not there (or not ours) is named as such, exit 3 or 4.
    let exe = relive_process::open(pid)?.exe()?;
    // Ended: gone from /proc, or a zombie (a watch that waited for it to
    // leave /proc waited for ever where its parent waited for the watch).
    let (code, _) = reload_loop(pid, &exe, &args.paths, &args.options, "watch", followers, None, || {
        relive_process::has_ended(pid).then_some(0)
    })?;
    // The only way the loop ends: the process is gone (relive is not its
    // parent, so how it ended is not known). It ended in silence before.
    if args.options.json {
        crate::output::say!("{}", serde_json::json!({"event": "exited", "pid": pid}));
    } else {
        crate::output::note(&format!("relive: process {pid} has ended; stopped watching"));
    }
    std::process::exit(code);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file held again for the same reason is said once in full.
    #[test]
    fn a_file_held_again_for_the_same_reason_is_said_once() {
        let mut said = std::collections::HashMap::new();
        let mut held = ReloadEvent::new(std::path::Path::new("/p/check.c"));
        held.event = EventKind::Held;
        held.message = Some("waits for a.c".into());
        assert!(!held_again(&held, &mut said));
        assert!(held_again(&held, &mut said));
        // Another reason is said.
        held.message = Some("waits for b.c".into());
        assert!(!held_again(&held, &mut said));
        // Patched meanwhile: a later hold is news.
        let mut patched = held.clone();
        patched.event = EventKind::Patched;
        assert!(!held_again(&patched, &mut said));
        assert!(!held_again(&held, &mut said));
    }

    /// The last reload's words say when another relive command changed
    /// patches after it (a snappy trial's exit line named patches
    /// `revert --all` had taken back).
    #[test]
    fn the_last_reload_says_when_patches_changed_since() {
        let mut patched = ReloadEvent::new(std::path::Path::new("/p/app.c"));
        patched.event = EventKind::Patched;
        patched.functions = vec!["value".into()];
        let mut last = LastReload::default();
        last.note(std::slice::from_ref(&patched));
        assert_eq!(last.described(), "patched value in /p/app.c");
        let mut reverted = ReloadEvent::new(std::path::Path::new("/p/app.c"));
        reverted.event = EventKind::ChangedElsewhere;
        last.note(&[reverted]);
        assert_eq!(
            last.described(),
            "patched value in /p/app.c (another relive command has changed or reverted patches since)"
        );
        // A new step is the last one again.
        last.note(&[patched]);
        assert_eq!(last.described(), "patched value in /p/app.c");
    }

    /// What a start-up line says was edited: the file, its header, or
    /// both (a header's edit was said to be the including file's).
    #[test]
    fn an_edited_header_is_named_as_the_edit() {
        let file = std::path::Path::new("/p/lobject.c");
        let header = PathBuf::from("/p/luaconf.h");
        let other = PathBuf::from("/p/lua.h");
        let said = |edited: &[PathBuf]| what_was_edited(file, "lobject.c", edited);
        assert_eq!(said(&[file.to_path_buf()]), "lobject.c was saved");
        assert_eq!(
            said(std::slice::from_ref(&header)),
            "/p/luaconf.h (which lobject.c includes) was saved"
        );
        assert_eq!(
            said(&[header.clone(), other.clone()]),
            "/p/luaconf.h, /p/lua.h (which lobject.c includes) were saved"
        );
        assert_eq!(
            said(&[file.to_path_buf(), header]),
            "lobject.c and its header /p/luaconf.h were saved"
        );
    }

    #[test]
    fn a_note_of_several_files_is_said_once_as_text() {
        let event = |file: &str, notes: &[&str]| {
            let mut e = ReloadEvent::new(std::path::Path::new(file));
            e.notes = notes.iter().map(|n| n.to_string()).collect();
            e
        };
        let events = [
            event("a.c", &["no unwinder", "only a"]),
            event("b.c", &["no unwinder"]),
            event("c.c", &["no unwinder", "only c"]),
        ];
        let said: Vec<Vec<String>> = notes_said_once(&events, false).into_iter().map(|e| e.notes).collect();
        assert_eq!(said, [vec!["no unwinder", "only a"], vec![], vec!["only c"]]);
        let whole: Vec<usize> = notes_said_once(&events, true).iter().map(|e| e.notes.len()).collect();
        assert_eq!(whole, [2, 1, 2], "JSON events stay whole");
        // A note about a file's own patched code (a changed macro's
        // values) is said with each file that has it.
        let mut own = events.clone();
        for e in &mut own {
            e.notes.push("macro changed value".into());
            e.file_notes.push("macro changed value".into());
        }
        let said: Vec<usize> = notes_said_once(&own, false)
            .iter()
            .map(|e| e.notes.iter().filter(|n| n.starts_with("macro changed value")).count())
            .collect();
        assert_eq!(said, [1, 1, 1]);
        // Whole with the first file, pointing back with the others (a jq
        // trial: a long macro note six times over).
        for e in &mut own {
            let long = "macro changed value (LIMIT 3 -> 4, in m.h): the new code uses the new value".to_string();
            e.notes.push(long.clone());
            e.file_notes.push(long);
        }
        let said: Vec<Vec<String>> = notes_said_once(&own, false).into_iter().map(|e| e.notes).collect();
        assert!(
            said[0].iter().any(|n| n.ends_with("the new code uses the new value")),
            "{said:?}"
        );
        for later in &said[1..] {
            assert!(
                later.iter().any(|n| n == "macro changed value (as said for a.c)"),
                "{said:?}"
            );
        }
    }

    /// One refusal that several files of a burst share is printed once,
    /// the other files named after it; other refusals stay.
    #[test]
    fn a_refusal_several_files_share_is_said_once() {
        let refused = |file: &str, why: &str| {
            let mut e = ReloadEvent::new(std::path::Path::new(file));
            e.event = EventKind::Refused;
            e.message = Some(why.to_string());
            e
        };
        let events = [
            refused("a.c", "layout"),
            ReloadEvent::new(std::path::Path::new("b.c")),
            refused("c.c", "layout"),
            refused("d.c", "signature"),
            refused("e.c", "layout"),
        ];
        let (shown, same) = refusals_said_once(events.iter().collect());
        let files: Vec<&str> = shown.iter().map(|e| e.file.as_str()).collect();
        assert_eq!(files, ["a.c", "b.c", "d.c"]);
        assert_eq!(same, [vec!["c.c".to_string(), "e.c".to_string()]]);
    }

    /// A lasting condition of the process (no unwinder could be loaded) is
    /// said at the first reload that meets it, not at each one after; a
    /// reload that patched without it clears it, so its return is said.
    /// Other notes are said every time; JSON keeps everything.
    #[test]
    fn a_lasting_condition_is_said_once_a_session() {
        let unwinder =
            "the process has no unwinder loaded, and relive could not load one (busy): backtrace() stops there";
        let patched = |notes: &[&str]| {
            let mut e = ReloadEvent::new(std::path::Path::new("a.c"));
            e.event = EventKind::Patched;
            e.notes = notes.iter().map(|n| n.to_string()).collect();
            vec![e]
        };
        let mut said = SaidConditions::default();
        let notes = |said: &mut SaidConditions, events: Vec<ReloadEvent>, json: bool| -> Vec<String> {
            said.unsaid(&events, json).remove(0).notes
        };
        assert_eq!(
            notes(&mut said, patched(&[unwinder, "f runs"]), false),
            [unwinder, "f runs"]
        );
        assert_eq!(notes(&mut said, patched(&[unwinder, "f runs"]), false), ["f runs"]);
        assert_eq!(
            notes(&mut said, patched(&[unwinder]), true),
            [unwinder],
            "JSON stays whole"
        );
        // Cleared by a reload without it, then met again: said again.
        assert!(notes(&mut said, patched(&[]), false).is_empty());
        assert_eq!(notes(&mut said, patched(&[unwinder]), false), [unwinder]);
    }

    /// A compile's first error is found among its warnings and notes.
    #[test]
    fn the_first_error_is_found_among_warnings() {
        let output = "a.c:3:1: warning: unused\n  3 | int x;\na.c:9:5: error: expected ';' before '}' token\na.c:12:1: error: another";
        assert_eq!(
            first_error(output),
            Some("a.c:9:5: error: expected ';' before '}' token")
        );
        assert_eq!(first_error("a.c:3:1: warning: unused"), None);
        assert_eq!(
            first_error("a.c:1:10: fatal error: nope.h: No such file"),
            Some("a.c:1:10: fatal error: nope.h: No such file")
        );
    }
}
