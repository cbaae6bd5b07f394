//! Shared output helpers: JSON printing and number parsing.

use serde::Serialize;

/// Prints `value` as pretty JSON on stdout.
pub fn print_json<T: Serialize>(value: &T) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    use std::io::Write;
    writeln!(out)?;
    Ok(())
}

/// Parses a number typed by the user: decimal, or hex with `0x`.
pub fn parse_number(text: &str) -> Result<u64, String> {
    let t = text.trim().replace('_', "");
    let parsed = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => t.parse::<u64>(),
    };
    parsed.map_err(|_| format!("{text:?} is not a number (use decimal like 4213215 or hex like 0x4049e0)"))
}

/// Parses a process id: decimal, or hex with `0x` (as every number relive
/// reads).
pub fn parse_pid(text: &str) -> Result<u32, String> {
    let n = parse_number(text)?;
    u32::try_from(n).map_err(|_| format!("{text:?} is not a process id (too large)"))
}

/// Parses an architecture name or alias.
pub fn parse_arch(text: &str) -> Result<relive_image::Arch, String> {
    relive_image::Arch::parse(text).ok_or_else(|| {
        format!("unknown architecture {text:?} (try x86_64/amd64, aarch64/arm64, riscv64, ppc64, s390x)")
    })
}

/// `0x…` or `-` for an absent value.
pub fn hex_or_dash(v: Option<u64>) -> String {
    v.map(|v| format!("{v:#x}")).unwrap_or_else(|| "-".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(parse_number("0x4049e0"), Ok(0x4049e0));
        assert_eq!(parse_number("4213215"), Ok(4213215));
        assert_eq!(parse_number("0X10"), Ok(16));
        assert_eq!(parse_number("1_000"), Ok(1000));
        assert!(parse_number("0xzz").is_err());
        assert!(parse_number("-1").is_err());
        assert!(parse_number("").is_err());
    }
}
