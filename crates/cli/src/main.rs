//! `relive`: live-patch native code. This binary is a thin front-end: it
//! parses arguments, calls the library crates and prints their results,
//! human-readable (numbers in hex) or as JSON (numbers as integers).
// Only the process and memory layers (relive-process, relive-smf's
// loader, relive-image's file mapping) touch raw memory. The one unsafe
// thing here is running a module's code when the user asks for it (`smf
// call`, `smf run`), allowed by name at those two places.
#![deny(unsafe_code)]

/// mimalloc (v2) rather than glibc's malloc: a one-shot patch reads two
/// objects into hundreds of thousands of small allocations that live until
/// the command ends, and a third of its time was the kernel handing out
/// and zeroing fresh 4 KiB pages one fault at a time; mimalloc's segments
/// ask for transparent huge pages where the system allows them (THP
/// `madvise`), so the same memory comes in a few faults. Measured on 1 of
/// 1,000 and 1 of 10,000 functions: `timing_us.total` 4.2 -> 3.4 ms and
/// 21.1 -> 15.8 ms (the same build with mimalloc's `no_thp` gained
/// nothing).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod cmd;
mod deferred;
mod exit;
mod not_found;
mod output;

use clap::{Parser, Subcommand};
use deferred::Deferred;

#[derive(Parser)]
#[command(
    name = "relive",
    // Usage lines say `relive` whatever the file is called (a copy, a
    // cargo target path): `revert`'s three usage lines are written out,
    // and the others now agree with them.
    bin_name = "relive",
    version,
    about = "Inspect binaries and running programs, and live-patch them",
    long_about = "relive reads executables (Actually Portable Executables from Cosmopolitan libc, \
                  ELF, PE, Mach-O), inspects running programs (images, symbols, threads, memory) and \
                  live-patches them with freshly compiled code: `relive run -- ./app` patches every \
                  saved edit of its sources into it.\n\n\
                  Numbers are printed in hex; with --json they are JSON integers. Numbers you type \
                  may be decimal (4213215) or hex (0x4049e0). --json, -q, -v and --color mean the same \
                  before or after the command's name.",
    after_help = exit::HELP
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Say less: errors, warnings and results only (no progress lines).
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
    /// Say more: every compile command and where it came from, each file
    /// of a burst of saves on its own line.
    #[arg(short, long, global = true)]
    verbose: bool,
    /// Colour words on stderr (errors, warnings, "patched").
    #[arg(long, global = true, value_enum, value_name = "WHEN", default_value = "auto")]
    color: output::ColorChoice,
}

#[derive(Subcommand)]
enum Command {
    Demo(Deferred<cmd::demo::Args>),
    Run(Deferred<cmd::run::RunArgs>),
    Build(Deferred<cmd::build::Args>),
    Watch(Deferred<cmd::run::WatchArgs>),
    Info(Deferred<cmd::info::Args>),
    Syms(Deferred<cmd::syms::Args>),
    Addr(Deferred<cmd::addr::Args>),
    #[command(subcommand)]
    Zip(cmd::zip::Command),
    Peek(Deferred<cmd::memory::PeekArgs>),
    Poke(Deferred<cmd::memory::PokeArgs>),
    Ps(Deferred<cmd::live::PsArgs>),
    Diff(Deferred<cmd::diff::Args>),
    Patch(Deferred<cmd::patch::PatchArgs>),
    Bundle(Deferred<cmd::bundle::BundleArgs>),
    Apply(Deferred<cmd::bundle::ApplyArgs>),
    Revert(Deferred<cmd::patch::RevertArgs>),
    Status(Deferred<cmd::patch::StatusArgs>),
    Verify(Deferred<cmd::verify::Args>),
    Gdb(Deferred<cmd::gdb::Args>),
    Sym(Deferred<cmd::live::SymArgs>),
    Threads(Deferred<cmd::live::ThreadsArgs>),
    #[command(subcommand)]
    Smf(cmd::smf::Command),
}

impl Command {
    /// Whether the user asked for JSON, so errors are reported as JSON too.
    fn json(&self) -> bool {
        match self {
            Command::Info(a) => a.json,
            Command::Syms(a) => a.json,
            Command::Addr(a) => a.json,
            Command::Peek(a) => a.json,
            Command::Poke(a) => a.json,
            Command::Ps(a) => a.json,
            Command::Diff(a) => a.json,
            Command::Demo(_) => false,
            Command::Run(a) => a.options.json,
            Command::Build(a) => a.json,
            Command::Watch(a) => a.options.json,
            Command::Patch(a) => a.json,
            Command::Bundle(a) => a.json,
            Command::Apply(a) => a.json,
            Command::Revert(a) => a.json,
            Command::Status(a) => a.json,
            Command::Verify(a) => a.json,
            Command::Gdb(a) => a.json,
            Command::Sym(a) => a.json,
            Command::Threads(a) => a.json,
            Command::Zip(c) => c.json(),
            Command::Smf(c) => c.json(),
        }
    }
}

/// Subcommands whose first argument is a process id.
const TAKE_A_PID: &[&str] = &[
    "ps", "sym", "threads", "peek", "poke", "patch", "apply", "revert", "status", "watch", "verify", "gdb",
];

/// Where the command's name is: the first argument after the program's
/// name that is not an option.
fn command_position(args: &[std::ffi::OsString]) -> Option<usize> {
    let mut k = 1;
    while let Some(arg) = args.get(k) {
        let arg = arg.to_string_lossy();
        if !arg.starts_with('-') {
            return Some(k);
        }
        // A global option's value is not the command (`--color always`).
        k += if GLOBAL_WITH_VALUE.contains(&arg.as_ref()) {
            2
        } else {
            1
        };
    }
    None
}

/// Global options given with a separate value.
const GLOBAL_WITH_VALUE: &[&str] = &["--color"];

/// Commands that change processes also take `--exe PATH` in the pid's
/// place: every process running that file.
const TAKE_AN_EXE: &[&str] = &["patch", "apply", "revert", "watch"];

/// One way to name a process everywhere: `PID` first, or `--pid PID`
/// (`--pid=PID`) anywhere before a `--`, which is moved to that place;
/// for [`TAKE_AN_EXE`], `--exe PATH` likewise, as `exe:PATH` (what the
/// positional's parser reads as a file). An option cannot stand in for a
/// positional before another positional, which is why it is moved.
fn pid_first(args: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    let Some(command) = command_position(&args) else {
        return args;
    };
    if !TAKE_A_PID.contains(&args[command].to_string_lossy().as_ref()) {
        return args;
    }
    let end = args.iter().position(|a| a == "--").unwrap_or(args.len());
    let mut out = args.clone();
    for k in command + 1..end {
        let arg = args[k].to_string_lossy();
        let exe = TAKE_AN_EXE.contains(&args[command].to_string_lossy().as_ref());
        let (value, taken) = match (arg.strip_prefix("--pid"), arg.strip_prefix("--exe")) {
            (Some(""), _) if k + 1 < end => (args[k + 1].clone(), 2),
            (Some(v), _) if v.starts_with('=') => (v[1..].into(), 1),
            (_, Some("")) if exe && k + 1 < end => {
                let mut value = std::ffi::OsString::from("exe:");
                value.push(&args[k + 1]);
                (value, 2)
            }
            (_, Some(v)) if exe && v.starts_with('=') => (format!("exe:{}", &v[1..]).into(), 1),
            _ => continue,
        };
        out.drain(k..k + taken);
        out.insert(command + 1, value);
        return out;
    }
    args
}

/// `--json` may come before the command too (`relive --json status PID`):
/// it is moved to just after the command's name, where every command that
/// has it reads it (one convention: the flag means the same wherever it
/// stands). Only before the first word that is not an option.
fn json_anywhere(args: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    let Some(command) = command_position(&args) else {
        return args;
    };
    let Some(flag) = args[1..command].iter().position(|a| a == "--json").map(|k| k + 1) else {
        return args;
    };
    let mut out = args;
    let json = out.remove(flag);
    // `smf`, `zip`: the flag belongs to the subcommand after them.
    let name = out[command - 1].to_string_lossy().to_string();
    let at = if ["smf", "zip"].contains(&name.as_str()) && out.len() > command {
        command + 1
    } else {
        command
    };
    out.insert(at, json);
    out
}

/// When this command started (the first thing `main` does): the clock a
/// command's reported total runs on, so it covers all the command did.
static STARTED: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();

/// Microseconds since the command started.
fn since_start_us() -> u64 {
    STARTED.get_or_init(std::time::Instant::now).elapsed().as_micros() as u64
}

/// relive's command line with every subcommand's arguments and help
/// built (they are [`Deferred`] until then), and its usage lines named
/// `relive CMD`.
fn every_command_built() -> clap::Command {
    use clap::CommandFactory;
    let mut command = Cli::command();
    command.build();
    command
}

/// [`Cli::try_parse_from`] with every subcommand's arguments built (they
/// are [`Deferred`] otherwise): what a parse that failed runs again, so
/// that its message (help, a usage error) lists each command with its
/// description, which the deferred arguments carry.
fn parse_with_every_subcommand(args: &[std::ffi::OsString]) -> Result<Cli, clap::Error> {
    use clap::FromArgMatches;
    every_command_built()
        .try_get_matches_from(args)
        .and_then(|matches| Cli::from_arg_matches(&matches))
}

/// `e`, or for `relive run ./app ...` (the program without `--` before
/// it: clap's "unexpected argument './app' found") the same error saying
/// where the program goes.
fn program_needs_dashes(e: clap::Error, args: &[std::ffi::OsString]) -> clap::Error {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    let run = args.iter().skip(1).find(|a| !a.to_string_lossy().starts_with('-'));
    let dashes = args.iter().any(|a| a == "--");
    let unexpected = match e.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(arg)) if !arg.starts_with('-') => arg.clone(),
        _ => return e,
    };
    if e.kind() != ErrorKind::UnknownArgument || dashes || run.is_none_or(|r| r != "run") {
        return e;
    }
    let mut command = every_command_built();
    let Some(run) = command.find_subcommand_mut("run") else {
        return e;
    };
    run.error(
        ErrorKind::UnknownArgument,
        format!("unexpected argument '{unexpected}': the program and its arguments go after `--` (`relive run -- {unexpected} ...`), so that its options are not taken for relive's"),
    )
}

fn main() {
    STARTED.get_or_init(std::time::Instant::now);
    // Only a speed-up: a libc that does not take it changes nothing else.
    let _ = relive_host::grow_heaps_in_large_steps();
    let args = json_anywhere(pid_first(std::env::args_os().collect()));
    let wants_json = args.iter().any(|a| a == "--json");
    let cli = match Cli::try_parse_from(&args)
        .or_else(|_| parse_with_every_subcommand(&args))
        .map_err(|e| program_needs_dashes(e, &args))
    {
        Ok(cli) => cli,
        // Help and version go out as clap prints them; a usage error
        // under --json is JSON like every other error (exit 2).
        Err(e) if wants_json && e.use_stderr() => std::process::exit(exit::report_usage(&e)),
        Err(e) => e.exit(),
    };
    output::init(
        match (cli.quiet, cli.verbose) {
            (true, _) => output::Verbosity::Quiet,
            (_, true) => output::Verbosity::Verbose,
            _ => output::Verbosity::Normal,
        },
        cli.color,
    );
    let json = cli.command.json();
    let result = match cli.command {
        Command::Info(Deferred(args)) => cmd::info::run(args),
        Command::Syms(Deferred(args)) => cmd::syms::run(args),
        Command::Addr(Deferred(args)) => cmd::addr::run(args),
        Command::Peek(Deferred(args)) => cmd::memory::peek(args),
        Command::Poke(Deferred(args)) => cmd::memory::poke(args),
        Command::Ps(Deferred(args)) => cmd::live::ps(args),
        Command::Diff(Deferred(args)) => cmd::diff::run(args),
        Command::Demo(Deferred(args)) => cmd::demo::run(args),
        Command::Run(Deferred(args)) => cmd::run::run(args),
        Command::Build(Deferred(args)) => cmd::build::run(args),
        Command::Watch(Deferred(args)) => cmd::run::watch_pid(args),
        Command::Patch(Deferred(args)) => cmd::patch::patch(args),
        Command::Bundle(Deferred(args)) => cmd::bundle::bundle(args),
        Command::Apply(Deferred(args)) => cmd::bundle::apply(args),
        Command::Revert(Deferred(args)) => cmd::patch::revert(args),
        Command::Status(Deferred(args)) => cmd::patch::status(args),
        Command::Verify(Deferred(args)) => cmd::verify::run(args),
        Command::Gdb(Deferred(args)) => cmd::gdb::run(args),
        Command::Sym(Deferred(args)) => cmd::live::sym(args),
        Command::Threads(Deferred(args)) => cmd::live::threads(args),
        Command::Zip(command) => cmd::zip::run(command),
        Command::Smf(command) => cmd::smf::run(command),
    };
    if let Err(err) = result {
        std::process::exit(exit::report(&err, json));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<std::ffi::OsString> {
        line.split_whitespace().map(Into::into).collect()
    }

    #[test]
    fn json_before_the_command_goes_after_it() {
        assert_eq!(
            json_anywhere(args("relive --json status 42")),
            args("relive status --json 42")
        );
        assert_eq!(
            json_anywhere(args("relive --json smf info m.smf")),
            args("relive smf info --json m.smf")
        );
        assert_eq!(
            json_anywhere(args("relive status 42 --json")),
            args("relive status 42 --json")
        );
        assert_eq!(json_anywhere(args("relive --json")), args("relive --json"));
        assert_eq!(
            json_anywhere(args("relive --json --color always status 42")),
            args("relive --color always status --json 42")
        );
        assert_eq!(
            json_anywhere(args("relive --color always --json status 42")),
            args("relive --color always status --json 42")
        );
    }

    #[test]
    fn a_pid_option_becomes_the_first_argument() {
        assert_eq!(
            pid_first(args("relive patch --pid 42 new.o --json")),
            args("relive patch 42 new.o --json")
        );
        assert_eq!(
            pid_first(args("relive status --json --pid=42")),
            args("relive status 42 --json")
        );
        assert_eq!(
            pid_first(args("relive revert 42 --all")),
            args("relive revert 42 --all")
        );
        // Not for other commands, nor after `--`.
        assert_eq!(
            pid_first(args("relive run -- ./app --pid 3")),
            args("relive run -- ./app --pid 3")
        );
        assert_eq!(pid_first(args("relive info --pid 3")), args("relive info --pid 3"));
        // `--exe PATH` likewise, for the commands that change processes.
        assert_eq!(
            pid_first(args("relive patch --tree --exe ./app new.o --json")),
            args("relive patch exe:./app --tree new.o --json")
        );
        assert_eq!(
            pid_first(args("relive revert --all --exe=./app")),
            args("relive revert exe:./app --all")
        );
        assert_eq!(
            pid_first(args("relive status --exe ./app")),
            args("relive status --exe ./app")
        );
        // A second --pid is left for clap to refuse.
        assert_eq!(
            pid_first(args("relive status --pid 1 --pid 2")),
            args("relive status 1 --pid 2")
        );
    }

    /// Every command's help ends with examples, and every example that is
    /// a plain relive command line parses.
    #[test]
    fn every_command_has_examples_that_parse() {
        // Built whole: each command's arguments and help are deferred.
        let cli = every_command_built();
        let mut checked = 0;
        // Not the `help` that building adds.
        let ours = |c: &&clap::Command| c.get_name() != "help";
        for sub in cli.get_subcommands().filter(ours) {
            let commands: Vec<&clap::Command> = if sub.has_subcommands() {
                sub.get_subcommands().filter(ours).collect()
            } else {
                vec![sub]
            };
            for command in commands {
                let help = command.get_after_help().map(|h| h.to_string()).unwrap_or_default();
                assert!(
                    help.starts_with("Examples:"),
                    "relive {} has no examples",
                    command.get_name()
                );
                for line in help.lines().skip(1) {
                    let line = line.split("  #").next().unwrap_or("").trim();
                    // Shell around relive (pipes, substitutions, other
                    // tools first) is not clap's to parse.
                    let Some(words) = line.find("relive ").map(|k| &line[k..]) else {
                        continue;
                    };
                    if words.contains("$(") || words.contains(['|', '>', '<']) || words.contains("&&") {
                        continue;
                    }
                    let args: Vec<std::ffi::OsString> =
                        shlex::split(words).unwrap().into_iter().map(Into::into).collect();
                    if let Err(e) = Cli::try_parse_from(pid_first(args)) {
                        panic!("example `{line}` does not parse: {e}");
                    }
                    checked += 1;
                }
            }
        }
        assert!(checked > 20, "only {checked} examples checked");
    }
}
