//! `relive diff`: what changed between two compiles of a translation unit.

use std::io::Write;
use std::path::PathBuf;

use relive_patch::diff::{Change, Entry};
use relive_patch::names::readable;
use relive_patch::{diff, ObjectFile};
use serde::Serialize;

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
    /// Print JSON: {"changed":[{"name","kind","reason","layout","lines_moved"}],"added":[{"name","kind"}],"removed":[…],"unchanged":N} ("lines_moved", only when so: a function whose code changed only in line numbers (`__LINE__`) that lines added or removed above moved, by how many lines, positive down).
    #[arg(long)]
    pub json: bool,
}

/// A changed symbol as `relive diff` reports it.
#[derive(Serialize)]
struct Shown<'d> {
    #[serde(flatten)]
    change: &'d Change,
    /// Changed only in line numbers moved by this many lines: said as a
    /// reload says it (`relive run` listed such functions as "line numbers
    /// only" while `relive diff` said their bytes differed: a SQLite
    /// re-check).
    #[serde(skip_serializing_if = "Option::is_none")]
    lines_moved: Option<i64>,
}

#[derive(Serialize)]
struct Report<'d> {
    changed: Vec<Shown<'d>>,
    added: &'d [Entry],
    removed: &'d [Entry],
    unchanged: usize,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let old = ObjectFile::open(&args.old)?;
    let new = ObjectFile::open(&args.new)?;
    let d = diff(&old, &new);
    let mut rows = relive_patch::line_table::RowsOnce::default();
    let cold = relive_patch::line_shift::cold_parts(&new);
    let changed: Vec<Shown> = d
        .changed
        .iter()
        .map(|c| {
            let old_name = c.old_name.as_deref().unwrap_or(&c.name);
            let lines_moved = (c.kind == relive_patch::objfile::Kind::Function)
                .then(|| relive_patch::line_shift::function_moved((&old, old_name), (&new, &c.name), &cold, &mut rows))
                .flatten();
            Shown { change: c, lines_moved }
        })
        .collect();
    if args.json {
        return print_json(&Report {
            changed,
            added: &d.added,
            removed: &d.removed,
            unchanged: d.unchanged,
        });
    }
    let mut out = std::io::stdout().lock();
    // A function-local static as its source names it, with its function
    // (`calls (used by f)`), not GCC's number (`calls.4`), as `sym` and
    // `status` say it (a QuickJS trial).
    let label = |obj: &ObjectFile, name: &str| {
        obj.symbols
            .iter()
            .position(|s| s.name == name)
            .map_or_else(|| readable(name), |i| relive_patch::diff::static_label(obj, i))
    };
    for Shown { change: c, lines_moved } in &changed {
        let renamed = c.old_name.as_deref().map(|o| format!(" (was {o})")).unwrap_or_default();
        let reason = match lines_moved {
            Some(by) => format!(
                "line numbers only (lines added or removed above moved it {})",
                relive_patch::reach::lines_moved_by(*by)
            ),
            None => c.reason.clone(),
        };
        writeln!(
            out,
            "changed   {} ({}){renamed}: {reason}",
            label(&new, &c.name),
            c.kind.name()
        )?;
    }
    for a in &d.added {
        writeln!(out, "added     {} ({})", label(&new, &a.name), a.kind.name())?;
    }
    for r in &d.removed {
        writeln!(out, "removed   {} ({})", label(&old, &r.name), r.kind.name())?;
    }
    writeln!(out, "unchanged {}", d.unchanged)?;
    Ok(())
}
