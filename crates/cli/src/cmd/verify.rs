//! `relive verify`: is an object the code a process runs?

use std::io::Write;
use std::path::PathBuf;

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
    /// Print JSON: [{"object","same","differs":[{"function","why"}],"absent"}].
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct ObjectReport {
    object: String,
    same: usize,
    differs: Vec<Differing>,
    /// Functions of the object the program does not have (inlined into
    /// every caller, or dropped by the linker).
    absent: Vec<String>,
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
    for note in &target.warnings {
        crate::output::note(&format!("relive: note: {note}"));
    }
    let mut reports = Vec::new();
    for path in &args.objects {
        let obj = ObjectFile::open(path)?;
        let check = verify::against_process(&target, &obj);
        reports.push(ObjectReport {
            object: path.display().to_string(),
            same: check.same.len(),
            differs: check
                .differs
                .into_iter()
                .map(|(function, why)| Differing { function, why })
                .collect(),
            absent: check.absent,
        });
    }
    // An object none of whose functions the program has proves nothing.
    let all_same = reports.iter().all(|r| r.differs.is_empty() && r.same > 0);
    if args.json {
        print_json(&reports)?;
    } else {
        let mut out = std::io::stdout().lock();
        for r in &reports {
            if r.differs.is_empty() && r.same == 0 {
                writeln!(
                    out,
                    "{}: NOT VERIFIED: none of its functions is in pid {} (an object of another program, or every function inlined away)",
                    r.object, args.pid
                )?;
            } else if r.differs.is_empty() {
                let functions = match r.same {
                    1 => "its 1 function is".to_string(),
                    n => format!("the {n} functions are"),
                };
                writeln!(out, "{}: {functions} the code pid {} runs", r.object, args.pid)?;
            } else {
                writeln!(
                    out,
                    "{}: {} of {} functions DIFFER from the code pid {} runs:",
                    r.object,
                    r.differs.len(),
                    r.same + r.differs.len(),
                    args.pid
                )?;
                for d in &r.differs {
                    writeln!(out, "  {}: {}", d.function, d.why)?;
                }
            }
            if !r.absent.is_empty() {
                writeln!(
                    out,
                    "  not in the program (inlined or dropped): {}",
                    r.absent.join(", ")
                )?;
            }
        }
    }
    if !all_same {
        std::process::exit(exit::MISMATCH);
    }
    Ok(())
}
