//! `relive info FILE`: every header of a file.

use std::io::Write;
use std::path::PathBuf;

use relive_image::{Info, Layout};

use crate::output::{hex_or_dash, print_json};

/// Show a binary's format, headers, segments, sections, ZIP and symbol tables.
///
/// For an APE this decodes each architecture's `printf` ELF header, the
/// Mach-O header the `dd` line points at, the PE header and the ZipOS
/// archive. Only headers are read, so it is instant even on multi-GiB files.
#[derive(clap::Args)]
#[command(after_help = "Examples:\n  relive info ./app\n  relive info redbean.com --json")]
pub struct Args {
    /// The file to inspect.
    file: PathBuf,
    /// Print one JSON object (numbers as integers).
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let image = super::open(&args.file)?;
    let info = image.info();
    if args.json {
        return print_json(&info);
    }
    let mut w = std::io::BufWriter::new(std::io::stdout().lock());
    print_human(&mut w, &info, image.layout())?;
    w.flush()?;
    for warning in &info.warnings {
        eprintln!(
            "{} {warning}",
            crate::output::paint("warning:", crate::output::Tone::Warn)
        );
    }
    Ok(())
}

fn print_human(w: &mut impl Write, info: &Info<'_>, layout: &Layout) -> std::io::Result<()> {
    let magic = info.ape_magic.map(|m| format!(" (magic {m:?})")).unwrap_or_default();
    writeln!(
        w,
        "{}: {}{magic}, {:#x} bytes",
        info.path,
        info.format.name(),
        info.size
    )?;
    for elf in info.elf {
        let origin = if elf.header_offset == 0 {
            "header at 0".to_string()
        } else {
            format!("printf at {:#x}", elf.header_offset)
        };
        writeln!(
            w,
            "\nELF {} ({origin}): e_machine {}, type {}, entry {:#x}, {} program headers at {:#x}{}",
            elf.machine,
            elf.e_machine,
            elf.e_type,
            elf.entry,
            elf.phnum,
            elf.phoff,
            elf.build_id
                .as_ref()
                .map(|b| format!(", build-id {b}"))
                .unwrap_or_default()
        )?;
        writeln!(
            w,
            "  {:<13} {:<5} {:>10} {:>18} {:>10} {:>10}",
            "TYPE", "FLAGS", "OFFSET", "VADDR", "FILESZ", "MEMSZ"
        )?;
        for s in &elf.segments {
            writeln!(
                w,
                "  {:<13} {:<5} {:>10} {:>18} {:>10} {:>10}",
                s.kind.to_string(),
                s.flags.to_string(),
                format!("{:#x}", s.offset),
                format!("{:#x}", s.vaddr),
                format!("{:#x}", s.filesz),
                format!("{:#x}", s.memsz)
            )?;
        }
        if !elf.sections.is_empty() {
            writeln!(w, "  {} section headers (see --json for the list)", elf.sections.len())?;
        }
    }
    if let Some(m) = info.macho {
        writeln!(
            w,
            "\nMach-O at {:#x} ({:#x} bytes): cputype {:#x}, entry {}",
            m.offset,
            m.size,
            m.cputype,
            hex_or_dash(m.entry)
        )?;
        writeln!(
            w,
            "  {:<16} {:>18} {:>10} {:>10} {:>10}",
            "SEGMENT", "VMADDR", "VMSIZE", "FILEOFF", "FILESIZE"
        )?;
        for s in &m.segments {
            writeln!(
                w,
                "  {:<16} {:>18} {:>10} {:>10} {:>10}",
                s.name,
                format!("{:#x}", s.vmaddr),
                format!("{:#x}", s.vmsize),
                format!("{:#x}", s.fileoff),
                format!("{:#x}", s.filesize)
            )?;
        }
    }
    if let Some(pe) = info.pe {
        writeln!(
            w,
            "\nPE at {:#x}: machine {:#x}, image base {:#x}, entry RVA {:#x}, optional header {:#x} bytes",
            pe.offset, pe.machine, pe.image_base, pe.entry_rva, pe.size_of_optional_header
        )?;
        writeln!(
            w,
            "  {:<10} {:>10} {:>10} {:>10} {:>10}",
            "SECTION", "RVA", "VSIZE", "RAWOFF", "RAWSIZE"
        )?;
        for s in &pe.sections {
            writeln!(
                w,
                "  {:<10} {:>10} {:>10} {:>10} {:>10}",
                s.name,
                format!("{:#x}", s.virtual_address),
                format!("{:#x}", s.virtual_size),
                format!("{:#x}", s.raw_offset),
                format!("{:#x}", s.raw_size)
            )?;
        }
    }
    if let Some(zip) = info.zip {
        writeln!(
            w,
            "\nZIP: end record at {:#x}, central directory at {:#x}, {} entries{}",
            zip.eocd_offset,
            zip.cd_offset,
            zip.entries.len(),
            if zip.zip64 { " (ZIP64)" } else { "" }
        )?;
        super::zip::print_entries(w, &zip.entries)?;
    } else if let Err(e) = &layout.zip {
        writeln!(w, "\nZIP: unreadable: {e}")?;
    }
    writeln!(w, "\nSymbol tables:")?;
    if info.symbols.is_empty() {
        writeln!(w, "  none")?;
    }
    for s in &info.symbols {
        writeln!(w, "  {:<28} {:<8} {} symbols", s.source.label(), s.arch.name(), s.count)?;
    }
    Ok(())
}
