//! Shared output helpers: JSON printing, number parsing, and how much and
//! in what colours relive talks (`-q`, `-v`, `--color`, one setting for
//! every command).

use std::io::IsTerminal;
use std::sync::OnceLock;

use serde::Serialize;

/// `--color`: when to colour what relive prints on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    /// On a terminal, unless `NO_COLOR` is set or `TERM` is `dumb`.
    Auto,
    Always,
    Never,
}

/// How much relive says: `-q` (errors, warnings and results only), the
/// default, or `-v` (also every compile command and each file's line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verbosity {
    Quiet,
    Normal,
    Verbose,
}

struct Ui {
    verbosity: Verbosity,
    /// Colour on stdout and on stderr: each is decided by whether that
    /// stream is a terminal.
    color_out: bool,
    color_err: bool,
}

static UI: OnceLock<Ui> = OnceLock::new();

/// Settles the global output settings (once, from the command line).
pub fn init(verbosity: Verbosity, color: ColorChoice) {
    let wanted = |terminal: bool| match color {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            terminal
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                && std::env::var("TERM").map_or(true, |t| t != "dumb")
        }
    };
    let _ = UI.set(Ui {
        verbosity,
        color_out: wanted(std::io::stdout().is_terminal()),
        color_err: wanted(std::io::stderr().is_terminal()),
    });
}

fn ui() -> &'static Ui {
    UI.get_or_init(|| Ui {
        verbosity: Verbosity::Normal,
        color_out: false,
        color_err: false,
    })
}

/// `-q`: progress and notes are left out.
pub fn quiet() -> bool {
    ui().verbosity == Verbosity::Quiet
}

/// `-v`: every detail.
pub fn verbose() -> bool {
    ui().verbosity == Verbosity::Verbose
}

/// Prints a line on stderr, ignoring a closed stderr: `relive run … 2>&1
/// | head` ends the reader, not relive and the program it watches
/// (`eprintln!` would panic).
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}
pub(crate) use say;

/// Prints a progress line or note on stderr, unless `-q`.
pub fn note(text: &str) {
    if !quiet() {
        say!("{text}");
    }
}

/// What a coloured word means.
#[derive(Debug, Clone, Copy)]
pub enum Tone {
    /// Done as asked (`patched`).
    Good,
    /// Worth a look (`warning`, a refusal that left the program as it was).
    Warn,
    /// Failed (`error`).
    Bad,
}

/// `text` in `tone`'s colour for stderr when colour is on there (ANSI),
/// else as it is.
pub fn paint(text: &str, tone: Tone) -> String {
    painted(text, tone, ui().color_err)
}

/// [`paint`] for stdout.
pub fn paint_out(text: &str, tone: Tone) -> String {
    painted(text, tone, ui().color_out)
}

fn painted(text: &str, tone: Tone, on: bool) -> String {
    if !on {
        return text.to_string();
    }
    let code = match tone {
        Tone::Good => "32",
        Tone::Warn => "33",
        Tone::Bad => "1;31",
    };
    format!("\x1b[{code}m{text}\x1b[0m")
}

/// Prints `value` as pretty JSON on stdout, in one write: stdout is
/// flushed at every newline, and a patch report written as it was
/// serialised took a system call per line (a sixth of a one-shot patch's
/// time at 1,000 functions).
pub fn print_json<T: Serialize>(value: &T) -> anyhow::Result<()> {
    let mut text = serde_json::to_vec_pretty(value)?;
    text.push(b'\n');
    use std::io::Write;
    std::io::stdout().lock().write_all(&text)?;
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
