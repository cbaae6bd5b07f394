//! `relive ps`, `relive sym` and `relive threads`: what a running process
//! is made of, where its symbols are, and what its threads are doing.

use crate::not_found::SymbolNotFound;
use std::collections::HashMap;
use std::io::Write;

use anyhow::Context;
use relive_patch::journal::Journal;
use relive_process::identity::{self, Verified};
use relive_process::modules::{self, LoadedModule, Module, ProcessModules};
use relive_process::symbols::{LiveSymbol, LiveSymbols};
use relive_process::{Process, ThreadState};
use serde::Serialize;

use crate::output::print_json;
use crate::output::{paint_out, Tone};

/// Show a running process's program image, shared libraries and threads.
///
/// Finds the program even when it is an APE run through its loader (then
/// /proc/PID/exe is the loader and the program is the APE file it mapped),
/// computes each image's load bias (PIE/ASLR), and checks that the file on
/// disk is the one running (build-id, else inode and modification time).
#[derive(clap::Args)]
#[command(after_help = "Examples:\n  relive ps 4242\n  relive ps $(pgrep -n app) --json")]
pub struct PsArgs {
    /// The process, by pid (`--pid PID` works too).
    #[arg(value_parser = crate::output::parse_pid)]
    pid: u32,
    /// Print JSON: {"pid","exe","image":{…,"identity"},"threads","modules":[…],"symbols":{"source","count"}}.
    #[arg(long)]
    pub json: bool,
}

/// Find symbols in a running process: where NAME is in its memory now.
///
/// Searches the program (ELF .symtab/.dynsym, Cosmopolitan .symtab.amd64,
/// a P.dbg companion) and every shared library, with each one's load bias
/// applied. Every match is printed: a file-scope `static` may exist once per
/// source file, told apart by "file". A function-local static is found by
/// its source name too (`count` finds GCC's `count.0`, `count.3`), and a
/// C++ function by its name as `status` prints it, with or without its
/// parameters (`shop::price(long, int)`, `shop::price`). A
/// function a relive patch replaced shows where its code runs now; what a
/// patch added (a new function or variable) is found in the patch journal,
/// with where its code runs when a later patch replaced it. A program
/// rebuilt since it started is read as it runs (`/proc/PID/exe`). Names
/// not found: exit 3, after the lines of those that were (`--json`: the
/// error alone).
#[derive(clap::Args)]
#[command(after_help = "Examples:\n  relive sym 4242 main counter\n  relive sym 4242 printf --json")]
pub struct SymArgs {
    /// The process, by pid (`--pid PID` works too).
    #[arg(value_parser = crate::output::parse_pid)]
    pid: u32,
    /// Symbol names (exact).
    #[arg(required = true)]
    names: Vec<String>,
    /// Print JSON: [{"name","addr","size","module","file","runs_at"}], or
    /// for what a patch added [{"added":{"name","addr","size","kind",…}}].
    #[arg(long)]
    pub json: bool,
}

/// List a running process's threads with where each one is.
///
/// Stops every thread for a moment (ptrace, no signals) to read its program
/// counter, then resumes them all; blocked system calls carry on.
#[derive(clap::Args)]
#[command(after_help = "Examples:\n  relive threads 4242")]
pub struct ThreadsArgs {
    /// The process, by pid (`--pid PID` works too).
    #[arg(value_parser = crate::output::parse_pid)]
    pid: u32,
    /// Print JSON: [{"tid","name","state","pc","symbol"}] ("symbol": the
    /// function at "pc"; in a patch's code, as `NAME+0xOFF (patch code,
    /// change N)`, named from the patch's symbol file).
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct PsReport {
    pid: u32,
    exe: String,
    image: ImageReport,
    threads: usize,
    modules: Vec<Module>,
    symbols: Option<SymbolsReport>,
    warnings: Vec<String>,
}

#[derive(Serialize)]
struct ImageReport {
    #[serde(flatten)]
    module: Module,
    identity: IdentityReport,
}

#[derive(Serialize)]
struct IdentityReport {
    verified: bool,
    method: Option<&'static str>,
    build_id: Option<String>,
    /// Why the file on disk is not (or cannot be shown to be) the one running.
    problem: Option<String>,
    /// The file on disk is not the one running, but the running image
    /// could be read (`running-image`).
    warning: Option<String>,
}

#[derive(Serialize)]
struct SymbolsReport {
    source: String,
    count: usize,
}

pub fn ps(args: PsArgs) -> anyhow::Result<()> {
    let process = relive_process::open(args.pid)?;
    let found = modules::discover(process.as_ref())?;
    let threads = process.threads()?.len();
    let symbols = LiveSymbols::load(&found);
    let identity = match identity::verify(process.as_ref(), &found.main) {
        Ok(v) => IdentityReport {
            verified: true,
            method: Some(v.method),
            build_id: v.fingerprint.build_id,
            problem: None,
            warning: v.warning,
        },
        Err(e) => IdentityReport {
            verified: false,
            method: None,
            build_id: None,
            problem: Some(e.to_string()),
            warning: None,
        },
    };
    let report = PsReport {
        pid: args.pid,
        exe: found.exe.clone(),
        image: ImageReport {
            module: found.main.module.clone(),
            identity,
        },
        threads,
        modules: found.libraries.iter().map(|m| m.module.clone()).collect(),
        symbols: symbols.main_source().map(|(source, count)| SymbolsReport {
            source: source.to_string(),
            count,
        }),
        warnings: symbols.warnings(),
    };
    if args.json {
        return print_json(&report);
    }
    print_ps(&report)
}

fn print_ps(r: &PsReport) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    let m = &r.image.module;
    writeln!(out, "pid       {}", r.pid)?;
    writeln!(out, "program   {} ({})", m.path, m.format.unwrap_or("unreadable"))?;
    if r.exe != m.path {
        writeln!(out, "exe       {} (the loader that runs it)", r.exe)?;
    }
    writeln!(
        out,
        "image     {:#x}-{:#x}  load bias {:#x}",
        m.base, m.end, m.load_bias
    )?;
    match (&r.image.identity.method, &r.image.identity.problem) {
        (Some(_), _) if r.image.identity.warning.is_some() => writeln!(
            out,
            "identity  NOT the file on disk: {}",
            r.image.identity.warning.as_deref().unwrap_or_default()
        )?,
        (Some(method), _) => writeln!(out, "identity  same file as on disk (checked by {method})")?,
        (None, Some(problem)) => writeln!(out, "identity  NOT VERIFIED: {problem}")?,
        _ => {}
    }
    match &r.symbols {
        Some(s) => writeln!(out, "symbols   {} from {}", s.count, s.source)?,
        None => writeln!(out, "symbols   none found")?,
    }
    writeln!(out, "threads   {}", r.threads)?;
    writeln!(out, "modules   {}", r.modules.len())?;
    for lib in &r.modules {
        writeln!(
            out,
            "  {:#014x}-{:#014x}  bias {:#x}  {}",
            lib.base, lib.end, lib.load_bias, lib.path
        )?;
    }
    for w in &r.warnings {
        writeln!(out, "{} {w}", paint_out("warning:", Tone::Warn))?;
    }
    Ok(())
}

pub fn sym(args: SymArgs) -> anyhow::Result<()> {
    let process = relive_process::open(args.pid)?;
    let found = modules::discover(process.as_ref())?;
    let symbols = LiveSymbols::load(&found);
    let journal = patch_journal(process.as_ref(), &found);
    let mut matches: Vec<Found> = Vec::new();
    let mut missing = Vec::new();
    for name in &args.names {
        let before = matches.len();
        let mut found = symbols.lookup(name);
        found.extend(numbered_statics(&symbols, name));
        if found.is_empty() {
            found = by_written_name(&symbols, name);
        }
        matches.extend(
            found
                .into_iter()
                .map(|symbol| Found::in_image(symbol, journal.as_ref())),
        );
        if let Some(journal) = &journal {
            matches.extend(
                journal
                    .added
                    .iter()
                    .filter(|a| a.name == *name || static_named(a, name))
                    .map(|a| Found::added(a, journal)),
            );
        }
        if matches.len() == before {
            missing.push(name.as_str());
        }
    }
    let not_found = (!missing.is_empty()).then(|| SymbolNotFound {
        pid: args.pid,
        names: missing.join(", "),
        searched: found.all().count(),
        warnings: symbols.warnings().join("; "),
        in_scope: in_scope(&symbols, &missing),
    });
    // JSON is all or nothing (one document); as text, what was found is
    // printed before the error about the rest.
    if let (Some(error), true) = (&not_found, args.json || matches.is_empty()) {
        anyhow::bail!(error.clone());
    }
    let in_images: Vec<LiveSymbol> = matches.iter().filter_map(|m| m.symbol.clone()).collect();
    verify_modules_of(process.as_ref(), &found, &in_images)?;
    if args.json {
        return print_json(&matches);
    }
    print_found(&matches)?;
    match not_found {
        Some(error) => Err(error.into()),
        None => Ok(()),
    }
}

/// `relive sym`'s lines.
fn print_found(matches: &[Found]) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    for m in matches {
        match (&m.symbol, &m.added) {
            (Some(s), _) => writeln!(
                out,
                "{:#014x} {:>#8x} {}{}  {}{}",
                s.addr,
                s.size,
                s.name,
                s.file.as_deref().map(|f| format!(" [{f}]")).unwrap_or_default(),
                s.module,
                m.runs_at
                    .map(|at| format!("  (patched: its code runs at {at:#x})"))
                    .unwrap_or_default()
            )?,
            (None, Some(a)) => writeln!(
                out,
                "{:#014x} {:>#8x} {}{}  (added by a relive patch{})",
                a.addr,
                a.size,
                a.label(),
                a.file.as_deref().map(|f| format!(" [{f}]")).unwrap_or_default(),
                m.runs_at
                    .map(|at| format!("; patched since: its code runs at {at:#x}"))
                    .unwrap_or_default(),
            )?,
            (None, None) => {}
        }
    }
    Ok(())
}

/// One answer of `relive sym`: a symbol of the program or a library
/// (with where its code runs now, when a patch replaced it), or one a
/// relive patch added, which no file on disk has.
#[derive(Serialize)]
struct Found {
    #[serde(flatten)]
    symbol: Option<LiveSymbol>,
    /// The patched function's current code (its entry jumps there).
    #[serde(skip_serializing_if = "Option::is_none")]
    runs_at: Option<u64>,
    /// A function or variable a patch added (the journal's record).
    #[serde(skip_serializing_if = "Option::is_none")]
    added: Option<relive_patch::journal::AddedRecord>,
}

impl Found {
    fn in_image(mut symbol: LiveSymbol, journal: Option<&Journal>) -> Found {
        let runs_at = journal
            .and_then(|j| j.patches.iter().find(|p| p.orig_addr == symbol.addr))
            .map(|p| p.current_addr);
        // The linker names no file for the symbols it made local (hidden
        // ones): an empty name is no file.
        symbol.file = symbol.file.filter(|f| !f.is_empty());
        Found {
            symbol: Some(symbol),
            runs_at,
            added: None,
        }
    }

    /// What a patch added, with where its code runs now when a later
    /// patch replaced it (its first entry then jumps there).
    fn added(record: &relive_patch::journal::AddedRecord, journal: &Journal) -> Found {
        Found {
            symbol: None,
            runs_at: journal
                .patches
                .iter()
                .find(|p| p.orig_addr == record.addr)
                .map(|p| p.current_addr),
            added: Some(record.clone()),
        }
    }
}

/// GCC's names for function-local statics named `name` (`count.0`,
/// `count.3`: numbered per file), which people call by their source name.
fn numbered_statics(symbols: &LiveSymbols, name: &str) -> Vec<LiveSymbol> {
    if name.contains('.') {
        return Vec::new();
    }
    symbols.scan(|s, local| {
        local
            && s.strip_prefix(name)
                .and_then(|rest| rest.strip_prefix('.'))
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    })
}

/// C++ symbols named as people write them (see
/// [`relive_patch::names::written_as`]: `status`'s spelling, without the
/// parameters, a function-local static by its own name). Only for a name
/// not found as a symbol: every table's C++ names are demangled.
fn by_written_name(symbols: &LiveSymbols, name: &str) -> Vec<LiveSymbol> {
    symbols.scan(|s, _| relive_patch::names::written_as(s, name))
}

/// C++ symbols named one of `names` in a namespace or class (see
/// [`relive_patch::names::in_scope`]), as people write them: at most a
/// few, for the error about names not found.
fn in_scope(symbols: &LiveSymbols, names: &[&str]) -> Vec<String> {
    const SHOWN: usize = 5;
    let mut out: Vec<String> = symbols
        .scan(|s, _| names.iter().any(|n| relive_patch::names::in_scope(s, n)))
        .into_iter()
        .map(|s| relive_patch::names::readable(&s.name))
        .collect();
    out.sort();
    out.dedup();
    out.truncate(SHOWN);
    out
}

/// Whether a patch's added record is a function-local static named `name`
/// in the source (its identity `static:OWNER::name`).
fn static_named(record: &relive_patch::journal::AddedRecord, name: &str) -> bool {
    record.static_of().is_some_and(|(_, n)| n == name)
}

/// The process's patch journal, read without waiting for a relive that
/// is changing it (what it says now). None when there is none, or it
/// cannot be read: `sym` then answers from the files alone.
fn patch_journal(process: &dyn Process, found: &ProcessModules) -> Option<Journal> {
    let dir = relive_patch::state::StateDir::open().ok()?;
    let journal = Journal::load(&dir, process.pid(), process.start_time().ok()?, &found.main.module.path).ok()?;
    (!journal.patches.is_empty() || !journal.added.is_empty()).then_some(journal)
}

/// A symbol is only as right as the file it was read from: check each
/// module that supplied one.
fn verify_modules_of(process: &dyn Process, found: &ProcessModules, matches: &[LiveSymbol]) -> anyhow::Result<()> {
    let mut checked: HashMap<&str, Verified> = HashMap::new();
    for s in matches {
        if checked.contains_key(s.module.as_str()) {
            continue;
        }
        let module: &LoadedModule = found
            .all()
            .find(|m| m.module.path == s.module)
            .context("symbol from an unknown module")?;
        checked.insert(&s.module, identity::verify(process, module)?);
    }
    Ok(())
}

#[derive(Serialize)]
struct ThreadReport {
    tid: u32,
    name: String,
    state: ThreadState,
    pc: u64,
    symbol: String,
}

pub fn threads(args: ThreadsArgs) -> anyhow::Result<()> {
    let process = relive_process::open(args.pid)?;
    let found = modules::discover(process.as_ref())?;
    let symbols = LiveSymbols::load(&found);
    // States as they were before relive stopped the threads.
    let before: HashMap<u32, (ThreadState, String)> = process
        .threads()?
        .into_iter()
        .map(|t| (t.tid, (t.state, t.name)))
        .collect();
    let stopped = process.stop()?;
    let mut pcs = Vec::new();
    for tid in stopped.thread_ids() {
        pcs.push((tid, stopped.registers(tid)?.pc()));
    }
    stopped.resume()?;
    pcs.sort_unstable();
    // Code no module covers may be a patch's: its symbol files name it.
    let patched = relive_patch::state::StateDir::open()
        .ok()
        .zip(process.start_time().ok())
        .map(|(dir, start)| relive_patch::debug_file::PatchedCode::load(&dir, process.pid(), start));
    let report: Vec<ThreadReport> = pcs
        .into_iter()
        .map(|(tid, pc)| {
            let (state, name) = before
                .get(&tid)
                .cloned()
                .unwrap_or((ThreadState::Unknown, String::new()));
            ThreadReport {
                tid,
                name,
                state,
                pc,
                symbol: match symbols.at(pc) {
                    Some(_) => symbols.describe(pc),
                    None => patched
                        .as_ref()
                        .and_then(|p| p.describe(pc))
                        .unwrap_or_else(|| symbols.describe(pc)),
                },
            }
        })
        .collect();
    if args.json {
        return print_json(&report);
    }
    let mut out = std::io::stdout().lock();
    for t in &report {
        writeln!(
            out,
            "{:>8}  {:<16} {:<10} {:#014x}  {}",
            t.tid,
            t.name,
            t.state.name(),
            t.pc,
            t.symbol
        )?;
    }
    Ok(())
}
