//! `relive gdb`: gdb attached to a patched process, seeing the new code.

use std::os::unix::process::CommandExt;

use relive_patch::target::Target;
use serde::Serialize;

use crate::output::print_json;

/// Debug a patched process with gdb, which then sees the new code: each
/// patch in force has a symbol file (names, source lines, variables and
/// unwind information at the addresses the code landed). Breakpoints at
/// FILE:LINE stop in the new code, `bt` shows it with its line and its
/// old callers, and `info symbol` names it.
///
/// A plain `gdb -p PID` sees them too: relive lists them in the process
/// through the GDB JIT interface (loading its small library
/// librelive-jit-debug.so into the process for it). This command loads,
/// with `add-symbol-file`, those it could not list (a static program, a
/// main thread never seen waiting).
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  relive gdb 4242\n  relive gdb 4242 -- -batch -ex 'break app.c:12' -ex continue -ex bt\n  relive gdb 4242 --script  # its path, for your own gdb -p 4242 -x PATH"
)]
pub struct Args {
    /// The process, by pid (`--pid PID` works too).
    #[arg(value_parser = crate::output::parse_pid)]
    pid: u32,
    /// Write the gdb script that loads the symbol files and print its
    /// path, instead of starting gdb (for an IDE's gdb, or your own
    /// command line).
    #[arg(long)]
    script: bool,
    /// Print JSON: {"script","symbol_files":[...],"listed":N} (implies
    /// --script): the files the script loads, and how many gdb finds by
    /// itself.
    #[arg(long)]
    pub json: bool,
    /// Arguments for gdb, after `--` (not with --script or --json, which
    /// start no gdb).
    #[arg(last = true, conflicts_with_all = ["script", "json"])]
    gdb_args: Vec<String>,
}

#[derive(Serialize)]
struct Script {
    script: String,
    symbol_files: Vec<String>,
    listed: usize,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let process = relive_process::open(args.pid)?;
    let target = Target::open(process.as_ref())?;
    let (files, listed) = relive_patch::debug_file::not_listed(&target);
    let files: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
    // gdb asks before it adds symbols at addresses of the file's own
    // unless confirmation is off.
    let mut text = String::from("set confirm off\n");
    for f in &files {
        text.push_str(&format!("add-symbol-file {f}\n"));
    }
    text.push_str("set confirm on\n");
    let name = format!("{}-{}.gdb", args.pid, target.journal.start_time);
    target.journal_dir.write_private(&name, text.as_bytes())?;
    let script = target.journal_dir.path().join(&name).display().to_string();
    if args.json {
        return print_json(&Script {
            script,
            symbol_files: files,
            listed,
        });
    }
    if args.script {
        println!("{script}");
        return Ok(());
    }
    if files.is_empty() && listed == 0 {
        eprintln!(
            "relive: note: process {} has no patch with a symbol file in force; gdb sees the program as built",
            args.pid
        );
    }
    drop(target);
    drop(process);
    let error = std::process::Command::new("gdb")
        .arg("-p")
        .arg(args.pid.to_string())
        .arg("-x")
        .arg(&script)
        .args(&args.gdb_args)
        .exec();
    anyhow::bail!(
        "could not start gdb ({error}); install it (apt-get install gdb), or load {script} into your own gdb with -x"
    )
}
