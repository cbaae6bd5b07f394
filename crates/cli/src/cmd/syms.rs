//! `relive syms FILE`: list a symbol table.

use std::path::PathBuf;

use relive_image::Arch;
use serde::Serialize;

use crate::output::{parse_arch, print_json};

/// List the symbols of a file, sorted by address.
///
/// The table is chosen as Cosmopolitan's runtime does: the `.symtab.<arch>`
/// ZIP entry, then `.symtab`, the file's own ELF `.symtab`, a debug companion
/// (`FILE.dbg`, `FILE.com.dbg`), then `.dynsym`. `--source` picks one
/// explicitly (`relive info FILE` lists them).
#[derive(clap::Args)]
#[command(after_help = "Examples:\n  relive syms ./app\n  relive syms redbean.com --json | jq length")]
pub struct Args {
    file: PathBuf,
    /// Architecture of an APE's image to use (x86_64/amd64, aarch64/arm64, …).
    #[arg(long, value_parser = parse_arch)]
    arch: Option<Arch>,
    /// Read this source (e.g. `zip:.symtab.arm64`, `elf:.dynsym`).
    #[arg(long, conflicts_with = "arch")]
    source: Option<String>,
    /// Print JSON: {"source","arch","symbols":[{"name","addr","size",…}]}.
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct Output<'a> {
    source: &'a str,
    arch: Arch,
    symbols: &'a [relive_image::Symbol],
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let image = super::open(&args.file)?;
    let table = match &args.source {
        Some(label) => image.symbols_from(label)?,
        None => image.symbols(args.arch)?,
    };
    if args.json {
        return print_json(&Output {
            source: &table.source,
            arch: table.arch,
            symbols: table.symbols(),
        });
    }
    eprintln!("# {} ({}), {} symbols", table.source, table.arch, table.len());
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    use std::io::Write;
    for s in table.symbols() {
        let file = s.file.as_deref().map(|f| format!("  [{f}]")).unwrap_or_default();
        writeln!(out, "{:#018x} {:>8} {}{file}", s.addr, format!("{:#x}", s.size), s.name)?;
    }
    out.flush()?;
    Ok(())
}
