//! `relive addr FILE`: translate one address between file offset, RVA and VA.

use std::io::Write;
use std::path::PathBuf;

use relive_image::Arch;
use serde::Serialize;

use crate::output::{hex_or_dash, parse_arch, parse_number, print_json};

/// Translate an address between virtual address, RVA and file offset, and
/// name the section and symbol it falls in.
///
/// VA ↔ offset uses the ELF load segments (or Mach-O segments); RVA ↔ offset
/// uses the PE sections when the file has them; RVA = VA − image base. An
/// address outside every segment is an error (exit status 3), never a guess.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  relive addr ./app --va 0x401136\n  relive addr redbean.com --offset 0x1000 --json"
)]
#[command(group = clap::ArgGroup::new("address").required(true))]
pub struct Args {
    file: PathBuf,
    /// A virtual address (decimal or 0x hex).
    #[arg(long, group = "address", value_parser = parse_number)]
    va: Option<u64>,
    /// An address relative to the image base.
    #[arg(long, group = "address", value_parser = parse_number)]
    rva: Option<u64>,
    /// A byte offset from the start of the file.
    #[arg(long, group = "address", value_parser = parse_number)]
    offset: Option<u64>,
    /// Architecture of an APE's image to use.
    #[arg(long, value_parser = parse_arch)]
    arch: Option<Arch>,
    /// Print JSON: {"va","rva","offset","section","symbol","symbol_offset"}.
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct Output {
    arch: Arch,
    va: Option<u64>,
    rva: Option<u64>,
    offset: Option<u64>,
    section: Option<String>,
    symbol: Option<String>,
    symbol_offset: Option<u64>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let image = super::open(&args.file)?;
    let view = image.view(args.arch)?;
    let t = match (args.va, args.rva, args.offset) {
        (Some(va), _, _) => view.from_va(va)?,
        (_, Some(rva), _) => view.from_rva(rva)?,
        (_, _, Some(offset)) => view.from_offset(offset)?,
        _ => unreachable!("clap requires one of --va, --rva, --offset"),
    };
    // A file without symbols still translates; the symbol is just unknown.
    let symbols = image.symbols(Some(view.arch)).ok();
    let hit =
        t.va.and_then(|va| symbols.as_ref()?.by_addr(va).map(|(s, off)| (s.name.clone(), off)));
    let out = Output {
        arch: view.arch,
        va: t.va,
        rva: t.rva,
        offset: t.offset,
        section: t.section,
        symbol: hit.as_ref().map(|h| h.0.clone()),
        symbol_offset: hit.map(|h| h.1),
    };
    if args.json {
        return print_json(&out);
    }
    let mut w = std::io::stdout().lock();
    writeln!(w, "arch     {}", out.arch)?;
    writeln!(w, "va       {}", hex_or_dash(out.va))?;
    writeln!(w, "rva      {}", hex_or_dash(out.rva))?;
    writeln!(
        w,
        "offset   {}",
        out.offset
            .map(|o| format!("{o:#x}"))
            .unwrap_or_else(|| "- (zero-filled, not in the file)".into())
    )?;
    writeln!(w, "section  {}", out.section.as_deref().unwrap_or("-"))?;
    match (&out.symbol, out.symbol_offset) {
        (Some(name), Some(off)) => writeln!(w, "symbol   {name}+{off:#x}")?,
        _ => writeln!(w, "symbol   -")?,
    }
    Ok(())
}
