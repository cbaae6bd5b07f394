//! `relive zip ls|cat FILE`: the ZIP archive inside an APE (ZipOS) or any file.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use relive_image::zip::ZipEntry;

use crate::output::print_json;

/// Read the ZIP archive at the end of a file (Cosmopolitan's ZipOS).
#[derive(clap::Subcommand)]
pub enum Command {
    /// List the entries with their offsets, methods, sizes and CRC-32.
    #[command(after_help = "Examples:\n  relive zip ls redbean.com\n  relive zip ls redbean.com --json")]
    Ls {
        file: PathBuf,
        /// Print JSON: {"eocd_offset","cd_offset","zip64","entries":[…]}.
        #[arg(long)]
        json: bool,
    },
    /// Write one entry's uncompressed bytes to standard output (CRC-checked first).
    #[command(
        after_help = "Examples:\n  relive zip cat redbean.com .init.lua\n  relive zip cat pledge.com usr/share/zoneinfo/UTC > UTC"
    )]
    Cat { file: PathBuf, name: String },
}

impl Command {
    pub fn json(&self) -> bool {
        matches!(self, Command::Ls { json: true, .. })
    }
}

pub fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Ls { file, json } => {
            let image = super::open(&file)?;
            let zip = image.layout().zip()?;
            if json {
                return print_json(zip);
            }
            let mut w = std::io::BufWriter::new(std::io::stdout().lock());
            print_entries(&mut w, &zip.entries)?;
            w.flush()?;
            Ok(())
        }
        Command::Cat { file, name } => {
            let image = super::open(&file)?;
            let zip = image.layout().zip()?;
            let entry = zip
                .entry(&name)
                .ok_or_else(|| relive_image::ImageError::EntryNotFound { name: name.clone() })?;
            // Check the CRC before writing anything, so a damaged entry never
            // reaches a pipe half-written.
            let data = entry.data(image.data())?;
            entry.verify(image.data())?;
            let mut out = std::io::stdout().lock();
            out.write_all(&data).context("writing to standard output")?;
            out.flush().context("writing to standard output")?;
            Ok(())
        }
    }
}

pub fn print_entries(w: &mut impl Write, entries: &[ZipEntry]) -> std::io::Result<()> {
    writeln!(
        w,
        "  {:<8} {:>12} {:>12} {:>12} {:>8}  NAME",
        "METHOD", "SIZE", "COMPRESSED", "DATA OFFSET", "CRC32"
    )?;
    for e in entries {
        let method = match e.method {
            0 => "store".to_string(),
            8 => "deflate".to_string(),
            m => m.to_string(),
        };
        writeln!(
            w,
            "  {:<8} {:>12} {:>12} {:>12} {:08x}  {}",
            method,
            format!("{:#x}", e.size),
            format!("{:#x}", e.compressed_size),
            format!("{:#x}", e.data_offset),
            e.crc32,
            e.name
        )?;
    }
    Ok(())
}
