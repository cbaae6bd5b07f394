//! `relive build`: run a build and record the C/C++ compile commands it
//! runs into a `compile_commands.json`.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Mutex;

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
/// is recorded; a SIGINT, SIGTERM or SIGHUP sent to relive alone (`kill
/// PID`) is passed on to the build as SIGTERM, with the same outcome. A
/// second interrupt, or relive being killed, kills the build.
#[derive(clap::Args)]
#[command(
    verbatim_doc_comment,
    after_help = "Examples:\n  relive build -- make -j8\n  relive build -- make -B CC=clang\n  relive build -o build/compile_commands.json -- ninja -C build\n  relive build --json -- sh build.sh"
)]
pub struct Args {
    /// The database to write (merged with what it holds).
    #[arg(short, long, value_name = "PATH", default_value = "compile_commands.json")]
    output: PathBuf,
    /// At the end, one JSON object on stderr instead of text:
    /// {"event":"built","status","recorded","files","database","written"}.
    #[arg(long)]
    pub json: bool,
    /// The build command and its arguments.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    command: Vec<String>,
}

/// `eprintln!` in one `write`: the build writes to the same stderr, and
/// std's unbuffered stderr writes a formatted line in pieces, which the
/// build's lines could land between.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write;
        let mut line = format!($($arg)*);
        line.push('\n');
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }};
}

/// Where the build stands, for the interrupt handler.
struct Interrupts {
    /// The build's own process, once its first exec has been reported.
    root: Option<u32>,
    /// The build has ended (relive is writing the database).
    ended: bool,
    /// How many times relive was asked to stop.
    count: u32,
    /// An interrupt that came before the build's process was known: it
    /// is sent SIGTERM as soon as it is.
    pending: Option<exec_trace::Interrupt>,
}

static INTERRUPTS: Mutex<Interrupts> = Mutex::new(Interrupts {
    root: None,
    ended: false,
    count: 0,
    pending: None,
});

fn interrupts() -> std::sync::MutexGuard<'static, Interrupts> {
    INTERRUPTS.lock().unwrap_or_else(|e| e.into_inner())
}

/// SIGINT, SIGTERM and SIGHUP let the build end its own way; relive then
/// records what it compiled. A signal that reached the build too (Ctrl-C
/// at the terminal) is left to it; one sent to relive alone (`kill PID`)
/// is passed on to the build as SIGTERM, also when it comes before the
/// build's process has started. A second one ends relive at once, and the
/// build with it (its processes are killed with their tracer).
fn interrupt_the_build_on_signals() -> anyhow::Result<()> {
    exec_trace::handle_interrupts(|interrupt| {
        let name = relive_process::signal_name(interrupt.signal);
        let mut state = interrupts();
        state.count += 1;
        if state.count > 1 {
            say!("relive: interrupted again ({name}): the build is killed and nothing is recorded");
            std::process::exit(130);
        }
        let again = "interrupt again to kill it";
        if state.ended {
            say!("relive: interrupted by {name}: the build has ended; writing what it compiled (interrupt again to stop at once)");
        } else if let Some(pid) = state.root {
            if exec_trace::pass_on_interrupt(pid, interrupt) {
                say!(
                    "relive: interrupted by {name}: passed on to the build (SIGTERM to pid {pid}); waiting for it to stop ({again})"
                );
            } else {
                say!("relive: interrupted by {name}, which the build got too; waiting for it to stop ({again})");
            }
        } else {
            state.pending = Some(interrupt);
            say!(
                "relive: interrupted by {name} before the build started: it is sent SIGTERM as soon as it starts ({again})"
            );
        }
    })?;
    Ok(())
}

/// The build's process has started: an interrupt that came before is
/// passed on to it now.
fn build_started(pid: u32) {
    let mut state = interrupts();
    if state.root.is_some() {
        return;
    }
    state.root = Some(pid);
    if let Some(interrupt) = state.pending.take() {
        // It may well not have been there for the signal relive got,
        // whatever its origin: tell it.
        let interrupt = exec_trace::Interrupt {
            from_terminal: false,
            ..interrupt
        };
        exec_trace::pass_on_interrupt(pid, interrupt);
    }
}

/// The build has ended: an interrupt now is not passed on.
fn build_ended() {
    let mut state = interrupts();
    state.root = None;
    state.ended = true;
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let (program, rest) = args.command.split_first().expect("clap requires the command");
    let progress = !(crate::output::quiet() || args.json);
    interrupt_the_build_on_signals()?;
    let mut recorder = Recorder::new();
    let status = exec_trace::run_traced(program, rest, &mut |exec| {
        if exec.ancestors.is_empty() {
            build_started(exec.pid);
        }
        for entry in recorder.observe(exec) {
            if progress {
                say!("relive: recorded {} (in {})", entry.summary(), entry.directory);
            }
        }
    });
    build_ended();
    let status = status?;
    let code = crate::exit::of_status(&status);

    let entries = recorder.finish();
    let files: BTreeSet<String> = entries.iter().map(|e| e.path().display().to_string()).collect();
    let written = !entries.is_empty();
    if written {
        compdb::update(&args.output, &entries)?;
    }
    let database = std::path::absolute(&args.output).unwrap_or_else(|_| args.output.clone());
    if args.json {
        say!(
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
        let interrupted = interrupts().count > 0;
        if written {
            say!(
                "relive: recorded {} compile command{} for {} file{} into {}",
                entries.len(),
                plural(entries.len()),
                files.len(),
                plural(files.len()),
                args.output.display()
            );
            if code != 0 {
                let why = if interrupted { "was interrupted" } else { &ended };
                say!("relive: the build {why}; the compiles it ran before that are recorded all the same");
            }
        } else if code != 0 {
            say!(
                "relive: the build {ended} before compiling any C/C++ file; {} is left as it was",
                args.output.display()
            );
        } else {
            say!(
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

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}
