//! `relive bundle` and `relive apply`: a patch made on a build host, in
//! one file, applied on hosts that run the same build and have no
//! compiler or sources (rolled out with the tools a fleet already uses:
//! ssh, Ansible, a Kubernetes DaemonSet; see docs/bundles.md).

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use relive_patch::apply::Timing;
use relive_patch::bundle::{Bundle, Entry, Manifest, FORMAT};
use relive_patch::ObjectFile;

use crate::cmd::patch::{patch_processes, select, How, Objects};
use crate::cmd::processes::Which;
use crate::output::print_json;

/// Make a patch bundle: one file that `relive apply` puts into processes
/// running BINARY, on hosts with no compiler and no sources.
///
/// The bundle holds NEW.o, the base OLD.o it is diffed against, the GNU
/// build-id of BINARY and the functions that change. `relive apply`
/// refuses a process whose program has another build-id: the objects were
/// compiled for that build's code and symbols.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  relive bundle app.new.o --base app.old.o --for ./app -o fix.rpatch\n  relive apply fix.rpatch --exe /usr/local/bin/app  # then, on each host"
)]
pub struct BundleArgs {
    /// The new object (`gcc -c`, the build's flags).
    new: PathBuf,
    /// The previous object of the same source (what the binary was built
    /// from): only the functions that differ are patched.
    #[arg(long)]
    base: Option<PathBuf>,
    /// The binary the bundle is for (its build-id is recorded).
    #[arg(long = "for", value_name = "BINARY")]
    program: PathBuf,
    /// Where to write the bundle.
    #[arg(short = 'o', long, value_name = "FILE")]
    output: PathBuf,
    /// Patch only these functions.
    #[arg(long, num_args = 1..)]
    only: Vec<String>,
    /// Print JSON: {"output","size","build_id","program","functions"}.
    #[arg(long)]
    pub json: bool,
}

/// Apply a patch bundle made by `relive bundle` to a running process (or
/// every process running a file), as `relive patch` would; a process whose
/// program is another build than the bundle's is refused (exit 5).
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  relive apply fix.rpatch --pid 4242\n  relive apply fix.rpatch --exe /usr/local/bin/app\n  relive apply 4242 fix.rpatch --tree --json"
)]
pub struct ApplyArgs {
    #[command(flatten)]
    which: Which,
    /// The bundle (`relive bundle ... -o FILE`).
    bundle: PathBuf,
    /// Patch even when the objects' source file is not one the program
    /// was built from (by its debug information).
    #[arg(long)]
    force: bool,
    /// Print JSON: as `relive patch --json`.
    #[arg(long)]
    pub json: bool,
}

pub fn bundle(args: BundleArgs) -> anyhow::Result<()> {
    let read = |path: &PathBuf| -> anyhow::Result<(Vec<u8>, ObjectFile)> {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let object = ObjectFile::parse(&path.display().to_string(), &bytes)?;
        Ok((bytes, object))
    };
    // The output must not be one of the inputs (it would be replaced).
    let same_file = |a: &PathBuf, b: &PathBuf| match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if let Some(input) = std::iter::once(&args.new)
        .chain(&args.base)
        .chain([&args.program])
        .find(|p| same_file(p, &args.output))
    {
        anyhow::bail!(
            "-o {} names an input ({}): write the bundle to a file of its own (fix.rpatch)",
            args.output.display(),
            input.display()
        );
    }
    let (new_bytes, new) = read(&args.new)?;
    let base = args.base.as_ref().map(read).transpose()?;
    let functions = select(&new, base.as_ref().map(|(_, o)| o), &args.only)?.functions;
    if functions.is_empty() {
        let against = args
            .base
            .as_ref()
            .map_or("the program".into(), |b| b.display().to_string());
        match args.only.is_empty() {
            true => anyhow::bail!(
                "nothing to bundle: no function of {} differs from {against}",
                args.new.display()
            ),
            false => anyhow::bail!(
                "nothing to bundle: none of the functions --only names ({}) differs between {} and {against}",
                args.only.join(", "),
                args.new.display()
            ),
        }
    }
    let program = crate::cmd::open(&args.program)?;
    let build_id = relive_process::modules::host_elf(&program)
        .and_then(|e| e.build_id.clone())
        .with_context(|| {
            format!(
                "{} has no GNU build-id, so a bundle cannot tell its build from another: link it with -Wl,--build-id",
                args.program.display()
            )
        })?;
    let name = |p: &PathBuf| {
        p.file_name()
            .map_or(p.display().to_string(), |n| n.to_string_lossy().into())
    };
    let mut objects = vec![Entry {
        role: "new".into(),
        name: name(&args.new),
        size: new_bytes.len() as u64,
    }];
    if let (Some(path), Some((bytes, _))) = (&args.base, &base) {
        objects.push(Entry {
            role: "base".into(),
            name: name(path),
            size: bytes.len() as u64,
        });
    }
    let bundle = Bundle {
        manifest: Manifest {
            format: FORMAT,
            made_by: format!("relive {}", env!("CARGO_PKG_VERSION")),
            created: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            build_id,
            program: name(&args.program),
            functions: functions.iter().map(|&i| new.symbols[i].name.clone()).collect(),
            only: args.only.clone(),
            objects,
        },
        new: new_bytes,
        base: base.map(|(bytes, _)| bytes),
    };
    let bytes = bundle.to_bytes()?;
    // Whole or not at all: a copy being written is never taken for the
    // bundle.
    let partial = args.output.with_extension("rpatch-partial");
    std::fs::write(&partial, &bytes).with_context(|| format!("writing {}", partial.display()))?;
    std::fs::rename(&partial, &args.output).with_context(|| format!("writing {}", args.output.display()))?;
    let m = &bundle.manifest;
    if args.json {
        return print_json(&serde_json::json!({
            "output": args.output, "size": bytes.len(), "build_id": m.build_id,
            "program": m.program, "functions": m.functions,
        }));
    }
    writeln!(
        std::io::stdout().lock(),
        "bundled {} function{} ({}) for {} (build-id {}) in {} ({} bytes)",
        m.functions.len(),
        if m.functions.len() == 1 { "" } else { "s" },
        m.functions
            .iter()
            .map(|f| relive_patch::names::readable(f))
            .collect::<Vec<_>>()
            .join(", "),
        m.program,
        m.build_id,
        args.output.display(),
        bytes.len()
    )?;
    Ok(())
}

pub fn apply(args: ApplyArgs) -> anyhow::Result<()> {
    let read_start = Instant::now();
    let bytes = std::fs::read(&args.bundle).with_context(|| format!("reading {}", args.bundle.display()))?;
    let bundle = Bundle::from_bytes(&bytes).with_context(|| format!("{}", args.bundle.display()))?;
    let label = |role: &str| {
        let name = bundle
            .manifest
            .objects
            .iter()
            .find(|e| e.role == role)
            .map(|e| e.name.as_str());
        format!("{}:{}", args.bundle.display(), name.unwrap_or(role))
    };
    let new = ObjectFile::parse_owned(&label("new"), bundle.new)?;
    let base = bundle
        .base
        .map(|b| ObjectFile::parse_owned(&label("base"), b))
        .transpose()?;
    let read = read_start.elapsed().as_micros() as u64;
    let diff_start = Instant::now();
    let functions = select(&new, base.as_ref(), &bundle.manifest.only)?.functions;
    let earlier = Timing {
        read,
        diff: diff_start.elapsed().as_micros() as u64,
        ..Timing::default()
    };
    let how = How {
        which: &args.which,
        force: args.force,
        json: args.json,
        build_id: Some(&bundle.manifest.build_id),
    };
    let objects = Objects::new(new, base, functions);
    patch_processes(&how, &objects, earlier)
}
