//! `relive diff`: what changed between two compiles of a translation unit.

use std::io::Write;
use std::path::PathBuf;

use relive_patch::names::readable;
use relive_patch::{diff, ObjectFile};

use crate::output::print_json;

/// Compare two compiles of one C file (`.o` files), function by function.
///
/// Bytes are compared with relocated fields masked, and relocations by what
/// they point at: GCC's renumbered names (`n.0`, `f.isra.1`) are matched by
/// owner and base name, string literals by their text. A data symbol whose
/// size changed is a layout change, which patching refuses.
#[derive(clap::Args)]
#[command(after_help = "Examples:\n  relive diff app.old.o app.new.o\n  relive diff app.old.o app.new.o --json")]
pub struct Args {
    /// The previous object (`gcc -c`).
    old: PathBuf,
    /// The new object.
    new: PathBuf,
    /// Print JSON: {"changed":[{"name","kind","reason","layout"}],"added":[{"name","kind"}],"removed":[…],"unchanged":N}.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let old = ObjectFile::open(&args.old)?;
    let new = ObjectFile::open(&args.new)?;
    let d = diff(&old, &new);
    if args.json {
        return print_json(&d);
    }
    let mut out = std::io::stdout().lock();
    for c in &d.changed {
        let renamed = c.old_name.as_deref().map(|o| format!(" (was {o})")).unwrap_or_default();
        writeln!(
            out,
            "changed   {} ({}){renamed}: {}",
            readable(&c.name),
            c.kind.name(),
            c.reason
        )?;
    }
    for a in &d.added {
        writeln!(out, "added     {} ({})", readable(&a.name), a.kind.name())?;
    }
    for r in &d.removed {
        writeln!(out, "removed   {} ({})", readable(&r.name), r.kind.name())?;
    }
    writeln!(out, "unchanged {}", d.unchanged)?;
    Ok(())
}
