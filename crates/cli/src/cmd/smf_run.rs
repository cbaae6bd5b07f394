//! `relive smf run X.smf [--watch]`: loads a module into relive's own
//! process, runs its entry point through its stable entry, and with
//! `--watch` reloads the module each time the file is replaced, so a
//! long-running module's calls reach the new code without a restart.

use std::ffi::CString;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use relive_smf::{ModuleRegistry, ReloadOptions, ReloadReport};
use serde::Serialize;

/// The C stack a module's entry point gets (glibc's default for a main
/// thread is 8 MiB; Rust threads get 2 MiB).
const ENTRY_STACK: usize = 8 << 20;
/// How often the watch loop checks whether the entry point returned.
const POLL: Duration = Duration::from_millis(20);

#[derive(clap::Args)]
pub struct RunArgs {
    /// The module to run (made by `relive smf pack OBJECTS -o FILE`).
    file: PathBuf,
    /// Reload the module whenever the file changes (rewritten or replaced,
    /// e.g. by `relive smf pack -o FILE`); running code keeps going and its
    /// calls through functions' stable entries reach the new code.
    #[arg(long)]
    watch: bool,
    /// The function to run (default: the module's entry point, usually main).
    #[arg(long)]
    entry: Option<String>,
    /// Start each reloaded version with its globals' values from the file
    /// instead of keeping the running values.
    #[arg(long)]
    fresh_data: bool,
    /// Milliseconds of quiet after a change before reloading.
    #[arg(long, default_value_t = 10)]
    debounce_ms: u64,
    /// Print each reload as one JSON object per line on stderr:
    /// {"event": "reloaded"|"error", "file", "version", "functions", "added",
    /// "removed", "changed" (functions whose code differs from the previous
    /// version's), "entry_changed" (the running entry point is among them:
    /// its running call keeps its old code), "removed_still_called"
    /// (removed functions the entry point's running call, the first
    /// version's code, still calls: those calls reach the old code; left
    /// out when none), "unreached" (changed functions that call reaches
    /// none of the ways to: the change shows when the entry point runs
    /// again; left out when none), "relinked" (other modules
    /// linked again: none here, with one module), "data": {"kind":
    /// "shared"|"copied"|"fresh"; when copied, "kept" (objects whose values
    /// were copied) and "reset" (objects that take the file's values: resized,
    /// or function-local statics the compiler may have renumbered)}, "ms"
    /// (read + reload), "message"}.
    #[arg(long)]
    json: bool,
    /// Arguments for the entry point (argv[1]...; argv[0] is the file).
    #[arg(last = true)]
    args: Vec<String>,
}

impl RunArgs {
    pub fn json(&self) -> bool {
        self.json
    }
}

/// A reload that happened, with what it changed.
#[derive(Serialize)]
struct Reloaded {
    #[serde(flatten)]
    report: ReloadReport,
    /// Functions of both versions whose code differs.
    changed: Vec<String>,
    /// The entry point is in `changed`: its call that is running keeps
    /// the old code (and so does code inlined into it).
    entry_changed: bool,
    /// Removed functions the entry point's running call (the first
    /// version's code) still calls: those calls reach their old code.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    removed_still_called: Vec<String>,
    /// Changed functions nothing running reaches: the entry point's
    /// running call calls none of them, directly or through what it
    /// calls (the change shows when the entry point runs again).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    unreached: Vec<String>,
}

#[derive(Serialize)]
struct Event<'a> {
    event: &'static str,
    file: &'a str,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    reloaded: Option<&'a Reloaded>,
    ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
}

/// Runs the module; exits with the entry point's result (its low 8 bits,
/// as for a C program's `main`).
pub fn run(args: RunArgs) -> anyhow::Result<()> {
    let name = args
        .file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "module".into());
    let mut registry = ModuleRegistry::new();
    let module = read_module(&args.file)?;
    let entry_name = match &args.entry {
        Some(e) => e.clone(),
        None => module
            .entry
            .map(|i| module.symbols[i as usize].name.to_string())
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "{} has no entry point; pass --entry NAME (see `relive smf info {}`)",
                    args.file.display(),
                    args.file.display()
                )
            })?,
    };
    registry
        .load(&name, &module)
        .with_context(|| format!("loading {}", args.file.display()))?;
    let entry = registry
        .get_function(&name, &entry_name)
        .ok_or_else(|| crate::not_found::NoFunction {
            name: entry_name.clone(),
            file: args.file.display().to_string(),
        })?;

    // argv for a C main: the file, then the arguments, then NULL.
    let strings: Vec<CString> = std::iter::once(args.file.display().to_string())
        .chain(args.args.iter().cloned())
        .map(|s| CString::new(s).context("an argument contains a NUL byte"))
        .collect::<anyhow::Result<_>>()?;
    let argc = strings.len() as u64;
    let argv: Vec<usize> = strings
        .iter()
        .map(|s| s.as_ptr() as usize)
        .chain(std::iter::once(0))
        .collect();
    // `strings` and `argv` live until the process exits below.
    let argv_addr = argv.as_ptr() as u64;

    // Running the module is what the user asked for: its entry point has
    // `main`'s shape, `int (int argc, char **argv)`, and `argv` (with the
    // strings it points to) outlives every call.
    let run = move || {
        #[allow(unsafe_code)]
        // SAFETY: as above; the module is the user's own code, trusted as
        // a program they run is.
        let status = unsafe { entry.call(&[argc, argv_addr]) };
        status
    };
    if !args.watch {
        std::process::exit(run() as i32);
    }
    let mut events = relive_reload::watch::FileEvents::new([args.file.clone()])
        .with_context(|| format!("watching {}", args.file.display()))?;
    let running = std::thread::Builder::new()
        .name(format!("{name}:{entry_name}"))
        .stack_size(ENTRY_STACK)
        .spawn(run)
        .context("starting the entry point's thread")?;
    let options = ReloadOptions {
        keep_data: !args.fresh_data,
    };
    let debounce = relive_reload::watch::Debounce::fixed(Duration::from_millis(args.debounce_ms));
    let file = args.file.display().to_string();
    // The version whose entry point is running (called once, it keeps
    // that version's code), and the version running now, to name what
    // the next one changes.
    let first = module.clone();
    let mut current = module;
    while !running.is_finished() {
        if events.next(POLL, debounce)?.is_none() {
            continue;
        }
        let started = Instant::now();
        let outcome = read_module(&args.file).and_then(|new| {
            let report = registry
                .reload(&name, &new, options)
                .with_context(|| format!("reloading {file}"))?;
            Ok((report, new))
        });
        let ms = started.elapsed().as_secs_f64() * 1e3;
        let outcome = outcome
            .map(|(report, new)| {
                let changed = relive_smf::diff::changed_functions(&current, &new);
                let (removed_still_called, unreached) = stale_paths(&first, &new, &entry_name, &report, &changed);
                current = new;
                Reloaded {
                    entry_changed: changed.contains(&entry_name),
                    report,
                    changed,
                    removed_still_called,
                    unreached,
                }
            })
            .map_err(|e| crate::exit::message(&e));
        report(&file, &entry_name, &outcome, ms, args.json);
    }
    let status = running
        .join()
        .map_err(|_| anyhow::anyhow!("the entry point's thread panicked"))?;
    std::process::exit(status as i32)
}

/// What the entry point's running call (`first`'s code, for good) still
/// reaches after a reload to `new`: the removed functions it calls (their
/// old code, kept loaded), and the changed functions it reaches none of
/// the ways to (its calls go through the stable entries to each
/// function's newest code, and on from there).
fn stale_paths(
    first: &relive_smf::Module,
    new: &relive_smf::Module,
    entry: &str,
    report: &ReloadReport,
    changed: &[String],
) -> (Vec<String>, Vec<String>) {
    use relive_smf::diff::{reachable, references_of};
    let calls = references_of(first, entry);
    let removed: Vec<String> = report.removed.iter().filter(|f| calls.contains(f)).cloned().collect();
    // A removed function runs its old code, which calls on by name.
    let mut roots = calls.clone();
    for f in &removed {
        roots.extend(references_of(first, f));
    }
    let reached = reachable(new, &roots);
    let unreached = changed
        .iter()
        .filter(|f| *f != entry && !reached.contains(f.as_str()))
        .cloned()
        .collect();
    (removed, unreached)
}

fn report(file: &str, entry: &str, outcome: &Result<Reloaded, String>, ms: f64, json: bool) {
    let event = match outcome {
        Ok(r) => Event {
            event: "reloaded",
            file,
            reloaded: Some(r),
            ms,
            message: None,
        },
        Err(e) => Event {
            event: "error",
            file,
            reloaded: None,
            ms,
            message: Some(format!("{e}; the running version is unchanged")),
        },
    };
    if json {
        crate::output::say!("{}", serde_json::to_string(&event).expect("plain data"));
        return;
    }
    match outcome {
        Ok(Reloaded {
            report: r,
            changed,
            entry_changed,
            removed_still_called,
            unreached,
        }) => {
            let data = match &r.data {
                relive_smf::DataOutcome::Shared => "data kept in place".to_string(),
                relive_smf::DataOutcome::Copied { kept, reset } if reset.is_empty() => {
                    format!("data layout changed, {} value(s) copied", kept.len())
                }
                relive_smf::DataOutcome::Copied { kept, reset } => format!(
                    "data layout changed, {} value(s) copied, {} reset to the file's value (resized, or a \
                     function-local static the compiler may have renumbered)",
                    kept.len(),
                    reset.join(", ")
                ),
                relive_smf::DataOutcome::Fresh => "data from the file".to_string(),
            };
            let mut changes = String::new();
            for (what, names) in [("changed", changed), ("added", &r.added), ("removed", &r.removed)] {
                if !names.is_empty() {
                    changes += &format!(", {what} {}", names.join(" "));
                }
            }
            if changes.is_empty() {
                changes = ", no function changed".to_string();
            }
            crate::output::say!(
                "relive: reloaded {file}: version {}, {} function(s){changes}, {data}, {ms:.2} ms",
                r.version,
                r.functions
            );
            if !removed_still_called.is_empty() {
                crate::output::say!(
                    "relive: note: {entry}'s running call (the first version's code) still calls {}, which this \
                     version removed: those calls keep reaching the old code, kept loaded while relive runs",
                    removed_still_called.join(", ")
                );
            }
            if !unreached.is_empty() {
                crate::output::say!(
                    "relive: note: nothing running reaches {}: {entry}'s running call (the first version's code) \
                     calls none of it, directly or through what it calls; the change shows when {entry} runs again",
                    unreached.join(", ")
                );
            }
            if *entry_changed {
                crate::output::say!(
                    "relive: note: {entry} changed, but its call that is running keeps its old code (and code \
                     inlined into it, such as a static function called once); calls it makes to other functions \
                     reach their new code. Move the work you edit out of {entry}'s loop into a function \
                     (noinline if static) to see it change"
                );
            }
        }
        // The message names the file.
        Err(_) => crate::output::say!("relive: {}", event.message.unwrap_or_default()),
    }
}

/// Reads and checks the SMF file `file`, naming it in any error.
pub(crate) fn read_module(file: &std::path::Path) -> anyhow::Result<relive_smf::Module<'static>> {
    relive_smf::ModuleLoader::new()
        .read(file)
        .with_context(|| format!("reading {}", file.display()))
}
