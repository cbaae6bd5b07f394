//! `relive`: live-patch native code. This binary is a thin front-end: it
//! parses arguments, calls the library crates and prints their results,
//! human-readable (numbers in hex) or as JSON (numbers as integers).

mod cmd;
mod exit;
mod output;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "relive",
    version,
    about = "Inspect binaries and running programs, and live-patch them",
    long_about = "relive reads executables (Actually Portable Executables from Cosmopolitan libc, \
                  ELF, PE, Mach-O), inspects running programs (images, symbols, threads, memory) and will \
                  patch them with freshly compiled code.\n\n\
                  Numbers are printed in hex; with --json they are JSON integers. Numbers you type \
                  may be decimal (4213215) or hex (0x4049e0).",
    after_help = exit::HELP
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Demo(cmd::demo::Args),
    Run(cmd::run::RunArgs),
    Build(cmd::build::Args),
    Watch(cmd::run::WatchArgs),
    Info(cmd::info::Args),
    Syms(cmd::syms::Args),
    Addr(cmd::addr::Args),
    #[command(subcommand)]
    Zip(cmd::zip::Command),
    Peek(cmd::memory::PeekArgs),
    Poke(cmd::memory::PokeArgs),
    Ps(cmd::live::PsArgs),
    Diff(cmd::diff::Args),
    Patch(cmd::patch::PatchArgs),
    Revert(cmd::patch::RevertArgs),
    Status(cmd::patch::StatusArgs),
    Verify(cmd::verify::Args),
    Sym(cmd::live::SymArgs),
    Threads(cmd::live::ThreadsArgs),
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
            Command::Revert(a) => a.json,
            Command::Status(a) => a.json,
            Command::Verify(a) => a.json,
            Command::Sym(a) => a.json,
            Command::Threads(a) => a.json,
            Command::Zip(c) => c.json(),
            Command::Smf(c) => c.json(),
        }
    }
}

fn main() {
    let cli = Cli::parse();
    let json = cli.command.json();
    let result = match cli.command {
        Command::Info(args) => cmd::info::run(args),
        Command::Syms(args) => cmd::syms::run(args),
        Command::Addr(args) => cmd::addr::run(args),
        Command::Peek(args) => cmd::memory::peek(args),
        Command::Poke(args) => cmd::memory::poke(args),
        Command::Ps(args) => cmd::live::ps(args),
        Command::Diff(args) => cmd::diff::run(args),
        Command::Demo(args) => cmd::demo::run(args),
        Command::Run(args) => cmd::run::run(args),
        Command::Build(args) => cmd::build::run(args),
        Command::Watch(args) => cmd::run::watch_pid(args),
        Command::Patch(args) => cmd::patch::patch(args),
        Command::Revert(args) => cmd::patch::revert(args),
        Command::Status(args) => cmd::patch::status(args),
        Command::Verify(args) => cmd::verify::run(args),
        Command::Sym(args) => cmd::live::sym(args),
        Command::Threads(args) => cmd::live::threads(args),
        Command::Zip(command) => cmd::zip::run(command),
        Command::Smf(command) => cmd::smf::run(command),
    };
    if let Err(err) = result {
        std::process::exit(exit::report(&err, json));
    }
}
