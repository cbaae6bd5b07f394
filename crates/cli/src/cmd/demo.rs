//! `relive demo`: a self-contained tour. It writes a small C program,
//! builds and starts it, then edits its source four times the way a person
//! would, reloading each edit into the running program and showing its
//! output change while its state carries on.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use relive_reload::{Baseline, Reloader};

/// Run a live-reload tour on a bundled C program (needs only a C compiler).
///
/// The program keeps a counter and a running total. relive edits its
/// source four times (a message, a function that grows past its old size,
/// a new function, a format string), and after each edit the running
/// program prints the new behaviour while the counter carries on. Each
/// reload's timings are shown. Everything happens in a temporary directory
/// that is removed afterwards. Exit status 0 means every step was seen.
#[derive(clap::Args)]
#[command(after_help = "Examples:\n  relive demo")]
pub struct Args {
    /// The C compiler (default: $CC, else cc, else gcc).
    #[arg(long)]
    cc: Option<String>,
}

const PROGRAM: &str = r#"#include <stdio.h>
#include <unistd.h>

static long counter = 0;   /* state worth keeping across reloads */
static double total = 0.0;

__attribute__((noinline)) static double step(long n) { return n * 0.5; }

__attribute__((noinline)) static const char *mood(void) { return "hello from the original code"; }

__attribute__((noinline)) void report(void) {
    printf("tick %ld: total %.1f, %s\n", counter, total, mood());
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (;;) {
        counter++;
        total += step(counter);
        report();
        usleep(120 * 1000);
    }
}
"#;

/// One scripted edit: what it does, the text replaced, and a piece of
/// output that shows it took effect.
struct Edit {
    what: &'static str,
    from: &'static str,
    to: &'static str,
    shows: &'static str,
}

const EDITS: [Edit; 4] = [
    Edit {
        what: "change a message",
        from: "\"hello from the original code\"",
        to: "\"hello from live-patched code\"",
        shows: "hello from live-patched code",
    },
    Edit {
        what: "grow step() past its old size (a loop instead of a multiply)",
        from: "static double step(long n) { return n * 0.5; }",
        to: "static double step(long n) {\n    double s = 0;\n    for (int i = 0; i < 100; i++) s += n * 0.01;\n    return s + 1000.0;\n}",
        shows: "total",
    },
    Edit {
        what: "add a new function and call it",
        from: "__attribute__((noinline)) void report(void) {\n    printf(\"tick %ld: total %.1f, %s\\n\", counter, total, mood());",
        to: "__attribute__((noinline)) static const char *weather(long n) { return n % 2 ? \"sunny\" : \"rainy\"; }\n\n__attribute__((noinline)) void report(void) {\n    printf(\"tick %ld: total %.1f, %s, %s\\n\", counter, total, mood(), weather(counter));",
        shows: "sunny",
    },
    Edit {
        what: "change a format string",
        from: "\"tick %ld: total",
        to: "\"beat %ld: total",
        shows: "beat ",
    },
];

/// How long to wait for the program to show an edit: a deadline against
/// hangs, not a speed requirement.
const PATIENCE: Duration = Duration::from_secs(15);

/// The temporary directory and the running program; both go away on drop.
struct Scene {
    dir: PathBuf,
    child: Option<Child>,
}

impl Drop for Scene {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn lines_of(child: &mut Child) -> Receiver<String> {
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// The tick number at the start of a line of the program's output.
fn tick(line: &str) -> Option<u64> {
    line.split_whitespace().nth(1)?.trim_end_matches(':').parse().ok()
}

/// Waits for a line containing `shows` (printing the program's lines as
/// they come), and returns its tick.
fn wait_for(lines: &Receiver<String>, shows: &str, out: &mut impl Write) -> anyhow::Result<u64> {
    let deadline = Instant::now() + PATIENCE;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        let Ok(line) = lines.recv_timeout(left) else { break };
        if line.contains(shows) {
            writeln!(out, "  app | {line}")?;
            return tick(&line).context("the program printed a line without its tick");
        }
    }
    bail!("the running program never printed {shows:?}")
}

/// `cc` when it is on the PATH, else `gcc`.
fn default_compiler() -> String {
    let on_path = |name: &str| {
        std::env::var_os("PATH").is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(name).is_file()))
    };
    if on_path("cc") {
        "cc".into()
    } else {
        "gcc".into()
    }
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let cc = args
        .cc
        .or_else(|| std::env::var("CC").ok())
        .unwrap_or_else(default_compiler);
    let dir = std::env::temp_dir().join(format!("relive-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut scene = Scene {
        dir: dir.clone(),
        child: None,
    };
    // Keep the demo's patch journal with the rest of the demo.
    std::env::set_var("RELIVE_STATE_DIR", dir.join("state"));
    let source = dir.join("demo.c");
    std::fs::write(&source, PROGRAM)?;
    let flags = ["-O0", "-g"];
    let built = Command::new(&cc)
        .args(flags)
        .args(["-o", "demo", "demo.c"])
        .current_dir(&dir)
        .output()
        .with_context(|| format!("running the C compiler `{cc}` (install gcc, or pass --cc)"))?;
    if !built.status.success() {
        bail!(
            "{cc} could not build the demo program:\n{}",
            String::from_utf8_lossy(&built.stderr)
        );
    }
    let mut child = Command::new(dir.join("demo"))
        .stdout(Stdio::piped())
        .spawn()
        .context("starting the demo program")?;
    let lines = lines_of(&mut child);
    let pid = child.id();
    scene.child = Some(child);

    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "relive demo: {} built with `{cc} {}`, running as pid {pid}",
        source.display(),
        flags.join(" ")
    )?;
    let first = wait_for(&lines, "tick", &mut out)?;

    let process = relive_process::open(pid)?;
    let mut cc_command = vec![cc.clone()];
    cc_command.extend(flags.iter().map(|s| s.to_string()));
    let mut reloader = Reloader::new(process.as_ref(), cc_command, dir.clone())?;
    match reloader.baseline(&source)? {
        Baseline::CompileError(message) => bail!("compiling the demo's baseline object failed:\n{message}"),
        Baseline::Differs { check, .. } => bail!(
            "the demo's baseline object is not the code the program runs: {}",
            check
                .differs
                .iter()
                .map(|(f, why)| format!("{f}: {why}"))
                .collect::<Vec<_>>()
                .join("; ")
        ),
        Baseline::Verified(check) => writeln!(
            out,
            "relive: compiled {} again: its {} functions are the code the program runs",
            source.display(),
            check.same.len()
        )?,
    }

    let mut text = PROGRAM.to_string();
    let mut last = first;
    for (n, edit) in EDITS.iter().enumerate() {
        writeln!(out, "\nedit {}/{}: {}", n + 1, EDITS.len(), edit.what)?;
        text = text.replace(edit.from, edit.to);
        std::fs::write(&source, &text)?;
        let event = reloader.reload(&source)?;
        writeln!(out, "  relive | {}", event.summary())?;
        if event.event != relive_reload::EventKind::Patched {
            bail!(
                "the edit was not patched ({}): {}",
                event.event,
                event.message.unwrap_or_default()
            );
        }
        let now = wait_for(&lines, edit.shows, &mut out)?;
        if now <= last {
            bail!("the program's counter went back from {last} to {now}: its state was lost");
        }
        last = now;
    }
    writeln!(
        out,
        "\ndone: {} edits reached the running program (pid {pid}) without a restart; its counter went from {first} to {last}.",
        EDITS.len()
    )?;
    Ok(())
}
