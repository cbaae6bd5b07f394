//! `relive build`: run a build and record the C/C++ compile commands it
//! runs into a `compile_commands.json`.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use relive_process::exec_trace;
use relive_reload::compdb::{self, Recorder};

/// Run a build and record its compile commands into compile_commands.json.
///
/// relive sees every program the build executes (ptrace: the build's
/// processes stop only when they fork or execute a program), so any build
/// works: a Makefile that names /usr/bin/gcc, make -j, ccache gcc, ninja, a
/// shell script. Each C/C++ compile gives one entry per source (a command
/// that compiles and links at once gives one compile-only entry per
/// source), merged into the database: an entry for the same source is
/// replaced, the others are kept. `relive run` and `relive watch` find the
/// database upward from each source.
///
/// Only what the build compiles is recorded: start from a clean tree (`make
/// clean`, or `make -B`). If the build fails, what it compiled is still
/// recorded and relive exits with the build's status. After Ctrl-C the build
/// ends its own way (make removes half-written files) and what it compiled
/// is recorded; a second Ctrl-C, or relive being killed, kills the build.
///
/// Examples:
///   relive build -- make -j8
///   relive build -- make -B CC=clang
///   relive build -o build/compile_commands.json -- ninja -C build
///   relive build --json -- sh build.sh
#[derive(clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// The database to write (merged with what it holds).
    #[arg(short, long, value_name = "PATH", default_value = "compile_commands.json")]
    output: PathBuf,
    /// No line per recorded compile, only the summary.
    #[arg(short, long)]
    quiet: bool,
    /// At the end, one JSON object on stderr instead of text:
    /// {"event":"built","status","recorded","files","database","written"}.
    #[arg(long)]
    pub json: bool,
    /// The build command and its arguments.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    command: Vec<String>,
}

/// The build's own process, once it has started, for the signal handler.
static ROOT: AtomicU32 = AtomicU32::new(0);
/// How many times relive was asked to stop.
static INTERRUPTS: AtomicU32 = AtomicU32::new(0);

/// Ctrl-C (SIGINT, also SIGTERM and SIGHUP) lets the build end its own way
/// (see [`exec_trace::pass_on_interrupt`]); relive then records what it
/// compiled. A second one ends relive at once, and the build with it.
fn interrupt_the_build_on_signals() {
    let _ = ctrlc::set_handler(|| {
        if INTERRUPTS.fetch_add(1, Ordering::SeqCst) > 0 {
            eprintln!("relive: interrupted again: the build is killed and nothing is recorded");
            std::process::exit(130);
        }
        match ROOT.load(Ordering::SeqCst) {
            0 => std::process::exit(130),
            pid => {
                exec_trace::pass_on_interrupt(pid);
                eprintln!("relive: interrupted: waiting for the build to stop (interrupt again to kill it)");
            }
        }
    });
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let (program, rest) = args.command.split_first().expect("clap requires the command");
    let progress = !(args.quiet || args.json);
    interrupt_the_build_on_signals();
    let mut recorder = Recorder::new();
    let status = exec_trace::run_traced(program, rest, &mut |exec| {
        if exec.ancestors.is_empty() {
            let _ = ROOT.compare_exchange(0, exec.pid, Ordering::SeqCst, Ordering::SeqCst);
        }
        for entry in recorder.observe(exec) {
            if progress {
                eprintln!("relive: recorded {} (in {})", entry.summary(), entry.directory);
            }
        }
    })?;
    ROOT.store(0, Ordering::SeqCst);
    let code = exit_code(&status);

    let entries = recorder.finish();
    let files: BTreeSet<String> = entries.iter().map(|e| e.path().display().to_string()).collect();
    let written = !entries.is_empty();
    if written {
        compdb::update(&args.output, &entries)?;
    }
    let database = std::path::absolute(&args.output).unwrap_or_else(|_| args.output.clone());
    if args.json {
        eprintln!(
            "{}",
            serde_json::json!({
                "event": "built", "status": code, "recorded": entries.len(), "files": files,
                "database": database, "written": written,
            })
        );
    } else {
        let ended = match std::os::unix::process::ExitStatusExt::signal(&status) {
            Some(signal) => format!("was killed by {}", relive_process::signal_name(signal)),
            None => format!("failed (exit status {code})"),
        };
        let interrupted = INTERRUPTS.load(Ordering::SeqCst) > 0;
        if written {
            eprintln!(
                "relive: recorded {} compile command{} for {} file{} into {}",
                entries.len(),
                plural(entries.len()),
                files.len(),
                plural(files.len()),
                args.output.display()
            );
            if code != 0 {
                let why = if interrupted { "was interrupted" } else { &ended };
                eprintln!("relive: the build {why}; the compiles it ran before that are recorded all the same");
            }
        } else if code != 0 {
            eprintln!(
                "relive: the build {ended} before compiling any C/C++ file; {} is left as it was",
                args.output.display()
            );
        } else {
            eprintln!(
                "relive: the build compiled no C/C++ file, so {} is left as it was. Was everything up to date? \
                 Rebuild from clean: `make clean` first, or `make -B`",
                args.output.display()
            );
        }
    }
    if code != 0 {
        std::process::exit(code);
    }
    Ok(())
}

/// The build's exit status as relive's: its code, or 128 + the signal that killed it.
fn exit_code(status: &std::process::ExitStatus) -> i32 {
    status
        .code()
        .unwrap_or_else(|| 128 + std::os::unix::process::ExitStatusExt::signal(status).unwrap_or(0))
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}
