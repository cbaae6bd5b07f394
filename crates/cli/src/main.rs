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
                  ELF, PE, Mach-O) and will patch running programs with freshly compiled code.\n\n\
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
    Info(cmd::info::Args),
    Syms(cmd::syms::Args),
    Addr(cmd::addr::Args),
    #[command(subcommand)]
    Zip(cmd::zip::Command),
    Peek(cmd::memory::PeekArgs),
    Poke(cmd::memory::PokeArgs),
}

fn main() {
    let cli = Cli::parse();
    let (result, json) = match cli.command {
        Command::Info(args) => {
            let json = args.json;
            (cmd::info::run(args), json)
        }
        Command::Syms(args) => {
            let json = args.json;
            (cmd::syms::run(args), json)
        }
        Command::Addr(args) => {
            let json = args.json;
            (cmd::addr::run(args), json)
        }
        Command::Peek(args) => {
            let json = args.json;
            (cmd::memory::peek(args), json)
        }
        Command::Poke(args) => {
            let json = args.json;
            (cmd::memory::poke(args), json)
        }
        Command::Zip(command) => {
            let json = command.json();
            (cmd::zip::run(command), json)
        }
    };
    if let Err(err) = result {
        std::process::exit(exit::report(&err, json));
    }
}
