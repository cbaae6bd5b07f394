//! `relive smf pack|info`: SMF modules, relive's format for code a program
//! loads itself and replaces while running (docs/smf.md).

use crate::not_found::NoFunction;
use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use relive_smf::format::{Module, SectionKind};
use serde::Serialize;

use crate::cmd::smf_run::read_module;
use crate::output::print_json;

/// Build and inspect SMF modules.
#[derive(clap::Subcommand)]
pub enum Command {
    /// Pack ELF relocatable objects (gcc/clang -c, -fPIC or -fPIE) into one module.
    ///
    /// Code, data, read-only data and zero-filled sections of all inputs are
    /// merged; globals one input defines satisfy another's references; what
    /// stays undefined becomes an import, resolved when the module is loaded
    /// (other modules, then the host program). Unsupported relocations or
    /// sections (TLS, constructors, COMMON symbols) are errors naming them.
    /// For hot reload, compile with -fPIC -ffunction-sections: calls to
    /// static functions then reach the new code through stable entries too.
    #[command(
        after_help = "Examples:\n  gcc -O2 -fPIC -ffunction-sections -c a.c b.c && relive smf pack a.o b.o -o m.smf\n  relive smf pack a.o -o m.smf --entry start --json"
    )]
    Pack {
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
        #[arg(short, long)]
        output: PathBuf,
        /// The entry point (default: main, if an input defines it).
        #[arg(long)]
        entry: Option<String>,
        /// Print the packed module's summary as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show a module's header, sections, symbols and relocation counts.
    #[command(after_help = "Examples:\n  relive smf info m.smf\n  relive smf info m.smf --json")]
    Info {
        file: PathBuf,
        /// Print JSON: {"version","platform","arch","flags","entry","module_hash","source_hash","sections","symbols","relocations"}.
        #[arg(long)]
        json: bool,
    },
    /// Load a module into relive and call one of its functions.
    ///
    /// The function is called as `extern "C"` with up to six 64-bit integer
    /// arguments (decimal, negative, or 0x hex); its 64-bit result is printed
    /// as a signed decimal. Imports resolve from relive's own process (libc).
    #[command(
        after_help = "Examples:\n  relive smf call m.smf add 2 40\n  relive smf call m.smf scale -- -3 0x10 --json"
    )]
    Call {
        file: PathBuf,
        name: String,
        #[arg(allow_hyphen_values = true, num_args = 0..=6)]
        args: Vec<String>,
        /// Print JSON: {"function","args","result"}.
        #[arg(long)]
        json: bool,
    },
    /// Run a module's entry point in relive's process; with --watch, reload
    /// the module whenever the file changes while it keeps running.
    ///
    /// The entry point (main by default) gets argc/argv (the file, then the
    /// arguments after --) and its result is relive's exit status. Every
    /// function of the module is reached through a stable entry, so calls
    /// made by code that is still running (a main loop) reach the new
    /// version after a reload. Globals and statics keep their values across
    /// reloads (in place when the data layout is unchanged; copied by name
    /// and size when it changed) unless --fresh-data is given. Build the
    /// module from `-fPIC -ffunction-sections` objects: every call between
    /// functions, static ones included, then has a relocation and goes
    /// through an entry (without -ffunction-sections, a static function
    /// called within its section changes only when its caller changes, as
    /// does inlined code). Each reload prints the functions it changed; an
    /// edit of the entry point itself is flagged, since its running call
    /// keeps the old code.
    #[command(after_help = "Examples:\n  relive smf run m.smf\n  relive smf run m.smf --watch -- --verbose")]
    Run(crate::cmd::smf_run::RunArgs),
}

impl Command {
    pub fn json(&self) -> bool {
        match self {
            Command::Pack { json, .. } | Command::Info { json, .. } | Command::Call { json, .. } => *json,
            Command::Run(args) => args.json(),
        }
    }
}

/// An integer argument: decimal (possibly negative) or 0x hex.
fn integer(text: &str) -> anyhow::Result<u64> {
    let parsed = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => text
            .parse::<i64>()
            .ok()
            .map(|v| v as u64)
            .or_else(|| text.parse::<u64>().ok()),
    };
    parsed.ok_or_else(|| anyhow::anyhow!("{text:?} is not an integer (decimal or 0x hex)"))
}

#[derive(Serialize)]
struct SectionInfo<'a> {
    name: &'a str,
    kind: SectionKind,
    file_size: usize,
    memory_size: u64,
    alignment: u64,
}

#[derive(Serialize)]
struct Summary<'a> {
    version: String,
    platform: u16,
    arch: u16,
    flags: Vec<&'static str>,
    entry: Option<&'a str>,
    /// 64-bit hashes as hex strings: JSON readers that hold numbers as
    /// doubles lose bits above 2^53.
    module_hash: String,
    source_hash: String,
    sections: Vec<SectionInfo<'a>>,
    symbols: &'a [relive_smf::format::Symbol<'a>],
    imports: Vec<&'a str>,
    relocations: std::collections::BTreeMap<String, usize>,
}

fn summary<'a>(m: &'a Module<'a>) -> Summary<'a> {
    let mut relocations = std::collections::BTreeMap::new();
    for r in &m.relocations {
        *relocations.entry(r.kind.name().to_string()).or_insert(0) += 1;
    }
    let names = [
        (relive_smf::format::FLAG_EXECUTABLE, "executable"),
        (relive_smf::format::FLAG_RELOADABLE, "reloadable"),
        (relive_smf::format::FLAG_PIC, "pic"),
    ];
    Summary {
        version: format!("1.{}", m.version_minor),
        platform: m.platform,
        arch: m.arch,
        flags: names
            .iter()
            .filter(|(f, _)| m.flags & f != 0)
            .map(|&(_, n)| n)
            .collect(),
        entry: m.entry.map(|e| &*m.symbols[e as usize].name),
        module_hash: format!("{:016x}", m.module_hash),
        source_hash: format!("{:016x}", m.source_hash),
        sections: m
            .sections
            .iter()
            .map(|s| SectionInfo {
                name: &s.name,
                kind: s.kind,
                file_size: s.bytes.len(),
                memory_size: s.memory_size,
                alignment: s.alignment,
            })
            .collect(),
        symbols: &m.symbols,
        imports: m
            .symbols
            .iter()
            .filter(|s| s.section.is_none())
            .map(|s| &*s.name)
            .collect(),
        relocations,
    }
}

fn print_summary(s: &Summary, out: &mut impl Write) -> std::io::Result<()> {
    writeln!(
        out,
        "SMF {}  arch {}  flags {}  entry {}",
        s.version,
        s.arch,
        s.flags.join(","),
        s.entry.unwrap_or("-")
    )?;
    writeln!(out, "module hash {}  source hash {}", s.module_hash, s.source_hash)?;
    writeln!(out, "sections:")?;
    for sec in &s.sections {
        writeln!(
            out,
            "  {:<8} {:<7} file {:#8x}  memory {:#8x}  align {}",
            sec.name,
            sec.kind.name(),
            sec.file_size,
            sec.memory_size,
            sec.alignment
        )?;
    }
    let is_section = |s: &&relive_smf::format::Symbol| s.kind == relive_smf::format::SymbolType::Section;
    let sections = s.symbols.iter().filter(is_section).count();
    match sections {
        // Listed with --json only.
        0 => writeln!(out, "symbols ({}):", s.symbols.len())?,
        n => writeln!(
            out,
            "symbols ({}, and {n} section symbol(s) --json lists):",
            s.symbols.len() - n
        )?,
    }
    for sym in s.symbols.iter().filter(|s| !is_section(s)) {
        match sym.section {
            Some(sec) => writeln!(
                out,
                "  {:<8} {:<6} {:>3}:{:#08x} {:>6}  {}",
                sym.kind.name(),
                sym.binding.name(),
                sec,
                sym.value,
                sym.size,
                sym.name
            )?,
            None => writeln!(out, "  import                                  {}", sym.name)?,
        }
    }
    let counts: Vec<String> = s.relocations.iter().map(|(k, n)| format!("{k} {n}")).collect();
    writeln!(
        out,
        "relocations: {}",
        if counts.is_empty() {
            "none".into()
        } else {
            counts.join(", ")
        }
    )
}

pub fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Run(args) => crate::cmd::smf_run::run(args),
        Command::Pack {
            inputs,
            output,
            entry,
            json,
        } => {
            let mut objects = Vec::new();
            for path in &inputs {
                let data = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
                objects.push((path.display().to_string(), data));
            }
            let module = relive_smf::pack(&objects, entry.as_deref())?;
            let bytes = module.to_bytes();
            // Written whole or not at all: a temporary file renamed over.
            let temporary = output.with_extension("smf.partial");
            std::fs::write(&temporary, &bytes).with_context(|| format!("writing {}", temporary.display()))?;
            std::fs::rename(&temporary, &output).with_context(|| format!("writing {}", output.display()))?;
            let module = Module::parse(&bytes)?;
            if json {
                return print_json(&summary(&module));
            }
            let mut out = std::io::stdout().lock();
            writeln!(out, "{}: {} bytes", output.display(), bytes.len())?;
            // -q: the result only (the module's contents are `smf info`'s).
            if !crate::output::quiet() {
                print_summary(&summary(&module), &mut out)?;
            }
            Ok(())
        }
        Command::Call { file, name, args, json } => {
            let values = args.iter().map(|a| integer(a)).collect::<anyhow::Result<Vec<u64>>>()?;
            let module = read_module(&file)?;
            let loaded = relive_smf::LoadedModule::load(&module, &relive_smf::memory::host_symbol)
                .with_context(|| format!("loading {}", file.display()))?;
            #[allow(unsafe_code)]
            // SAFETY: `smf call` runs the function the user names with the
            // integer arguments they give (its documented contract: a C
            // function of up to six integer arguments returning an
            // integer); the module is their code, trusted as a program is.
            let result = unsafe { loaded.call(&name, &values) };
            let result = result.ok_or_else(|| NoFunction {
                name: name.clone(),
                file: file.display().to_string(),
            })? as i64;
            if json {
                let signed: Vec<i64> = values.iter().map(|&v| v as i64).collect();
                return print_json(&serde_json::json!({"function": name, "args": signed, "result": result}));
            }
            println!("{result}");
            Ok(())
        }
        Command::Info { file, json } => {
            let module = read_module(&file)?;
            if json {
                return print_json(&summary(&module));
            }
            print_summary(&summary(&module), &mut std::io::stdout().lock())?;
            Ok(())
        }
    }
}
