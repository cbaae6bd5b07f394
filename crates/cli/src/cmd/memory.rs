//! `relive peek` and `relive poke`: read and write a running process's memory.

use std::io::Write;

use anyhow::Context;
use serde::Serialize;

use crate::output::{parse_number, print_json};

/// Read bytes from a running process's memory.
///
/// Reads through `process_vm_readv` (or `/proc/PID/mem`); the whole range
/// must be mapped, or nothing is read and the exit status is 3.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  relive peek 4242 0x401136 16\n  relive peek 4242 $(relive sym 4242 counter --json | jq '.[0].addr') 8"
)]
pub struct PeekArgs {
    /// The process, by pid (`--pid PID` works too).
    #[arg(value_parser = crate::output::parse_pid)]
    pid: u32,
    /// Start address (decimal or 0x hex).
    #[arg(value_parser = parse_number)]
    addr: u64,
    /// Number of bytes (at most 1 MiB).
    #[arg(value_parser = parse_number)]
    len: u64,
    /// Print JSON: {"addr","bytes"} with bytes as a hex string.
    #[arg(long)]
    pub json: bool,
}

/// Write bytes into a running process's memory, code pages included.
///
/// Writes through /proc/PID/mem, which patches read-only code too. The bytes
/// it replaced are printed, so `relive poke PID ADDR OLD` undoes it. The
/// whole range must be mapped, or nothing is written (exit status 3).
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  relive poke 4242 0x401136 b802000000c3\n  relive poke 4242 0x401136 \"55 48 89 e5\"  # put back the bytes it printed"
)]
pub struct PokeArgs {
    /// The process, by pid (`--pid PID` works too).
    #[arg(value_parser = crate::output::parse_pid)]
    pid: u32,
    /// Start address (decimal or 0x hex).
    #[arg(value_parser = parse_number)]
    addr: u64,
    /// The bytes to write, as hex (`b802000000c3`; spaces allowed).
    #[arg(value_parser = parse_hex)]
    bytes: HexBytes,
    /// Print JSON: {"addr","old","new"}.
    #[arg(long)]
    pub json: bool,
}

#[derive(Clone)]
struct HexBytes(Vec<u8>);

fn parse_hex(text: &str) -> Result<HexBytes, String> {
    let digits: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    let digits = digits.strip_prefix("0x").unwrap_or(&digits);
    if digits.is_empty() || !digits.len().is_multiple_of(2) {
        return Err(format!("{text:?} is not an even number of hex digits"));
    }
    (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).map_err(|_| format!("{text:?} is not hex")))
        .collect::<Result<_, _>>()
        .map(HexBytes)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

const MAX_PEEK: u64 = 1 << 20;

#[derive(Serialize)]
struct Peeked {
    addr: u64,
    bytes: String,
}

pub fn peek(args: PeekArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.len <= MAX_PEEK,
        "LEN {} is over the 1 MiB limit of one peek",
        args.len
    );
    let process = relive_process::open(args.pid)?;
    let mut buf = vec![0u8; args.len as usize];
    process.read(args.addr, &mut buf)?;
    if args.json {
        return print_json(&Peeked {
            addr: args.addr,
            bytes: hex(&buf),
        });
    }
    let mut out = std::io::stdout().lock();
    for (i, chunk) in buf.chunks(16).enumerate() {
        let words: Vec<String> = chunk.iter().map(|b| format!("{b:02x}")).collect();
        writeln!(out, "{:#014x}  {}", args.addr + i as u64 * 16, words.join(" "))?;
    }
    Ok(())
}

#[derive(Serialize)]
struct Poked {
    addr: u64,
    old: String,
    new: String,
}

pub fn poke(args: PokeArgs) -> anyhow::Result<()> {
    let process = relive_process::open(args.pid)?;
    let new = args.bytes.0;
    let mut old = vec![0u8; new.len()];
    process
        .read(args.addr, &mut old)
        .context("reading the bytes to be replaced")?;
    process.write(args.addr, &new)?;
    let report = Poked {
        addr: args.addr,
        old: hex(&old),
        new: hex(&new),
    };
    if args.json {
        return print_json(&report);
    }
    writeln!(
        std::io::stdout().lock(),
        "{:#x}: wrote {} (was {}; `relive poke {} {:#x} {}` restores it)",
        report.addr,
        report.new,
        report.old,
        args.pid,
        report.addr,
        report.old
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_parsing() {
        assert_eq!(parse_hex("b8 02 00 00 00 c3").unwrap().0, [0xb8, 2, 0, 0, 0, 0xc3]);
        assert_eq!(parse_hex("0x90").unwrap().0, [0x90]);
        assert!(parse_hex("abc").is_err());
        assert!(parse_hex("zz").is_err());
        assert!(parse_hex("").is_err());
    }
}
