//! Exit codes and how errors are shown.

use relive_image::ImageError;

/// Success.
pub const OK: i32 = 0;
/// The input could not be read or is not a valid file of its format.
pub const FAILED: i32 = 1;
// 2 is clap's code for bad command-line usage.
/// The file is fine, but what was asked for is not in it (an address outside
/// every segment, an absent architecture, ZIP entry or symbol table).
pub const NOT_FOUND: i32 = 3;
/// The operating system refused access to a process (the message says why).
pub const PERMISSION: i32 = 4;
/// The file on disk is not the one the process is running (rebuilt or
/// replaced since it started), so its symbols cannot be trusted; for
/// `relive verify`, an object is not the code the process runs.
pub const MISMATCH: i32 = 5;
/// Another relive session owns the process (`run`/`watch`).
pub const BUSY: i32 = 6;

pub const HELP: &str = "Exit status:\n  \
    0  success\n  \
    1  the file could not be read or is damaged (the message names the structure and offset),\n     or a patch could not be applied (the message says why; the process is unchanged)\n  \
    2  bad command-line usage\n  \
    3  what was asked for does not exist (address, architecture, entry, symbols, process)\n  \
    4  permission denied for a process (the message says why and what to do: another tracer,\n     another user, Yama; for `relive build`: ptrace refused), or relive's state directory is not safe to use\n  \
    5  the program on disk is not the one the process is running (rebuilt since it started);\n     for `relive verify`: an object is not the code the process runs\n  \
    6  another relive session (`run`/`watch`, named in the message) owns the process";

/// A child's exit status as relive's own (`run`, `build` pass their
/// program's on): its code, or 128 + the signal that killed it, as a shell
/// reports it.
pub fn of_status(status: &std::process::ExitStatus) -> i32 {
    status
        .code()
        .unwrap_or_else(|| 128 + std::os::unix::process::ExitStatusExt::signal(status).unwrap_or(0))
}

/// Prints clap's usage error `err` as a JSON error on stderr (the first
/// line of its message, and the usage in `hint`) and returns its exit code
/// (2).
pub fn report_usage(err: &clap::Error) -> i32 {
    let text = err.render().to_string();
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let message = lines.next().unwrap_or("bad command-line usage");
    let message = message.strip_prefix("error: ").unwrap_or(message);
    let hint: Vec<&str> = lines.map(str::trim).collect();
    let code = err.exit_code();
    let value = serde_json::json!({ "error": message, "hint": hint.join("; "), "exit_code": code });
    crate::output::say!("{value}");
    code
}

/// Prints `err` (as JSON on stderr with `--json`) and returns the exit code.
/// A closed standard output (`relive syms X | head`) is how pipelines end,
/// not a failure: it exits quietly with success.
pub fn report(err: &anyhow::Error, json: bool) -> i32 {
    if is_broken_pipe(err) {
        return OK;
    }
    let code = code_for(err);
    let message = message(err);
    let hint = hint_for(err);
    if json {
        let value = serde_json::json!({ "error": message, "hint": hint, "exit_code": code });
        crate::output::say!("{value}");
    } else {
        // Symbols as people write them (JSON keeps the object's spelling).
        crate::output::say!(
            "relive: {} {}",
            crate::output::paint("error:", crate::output::Tone::Bad),
            relive_patch::names::readable_text(&message)
        );
        if let Some(hint) = hint {
            crate::output::say!("hint: {hint}");
        }
    }
    code
}

/// `err` and its causes: "context: error: cause". Every error type of
/// relive either states its cause in its own message (then it does not
/// return it as its `source()`: a message printed alone, as the reloader's
/// events print them, is complete) or returns it and leaves it out, so
/// walking the chain prints each cause once.
pub fn message(err: &anyhow::Error) -> String {
    format!("{err:#}")
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            || e.downcast_ref::<serde_json::Error>()
                .and_then(|j| j.io_error_kind())
                .is_some_and(|k| k == std::io::ErrorKind::BrokenPipe)
    })
}

fn image_error(err: &anyhow::Error) -> Option<&ImageError> {
    err.chain().find_map(|e| e.downcast_ref::<ImageError>())
}

/// The process error `e` is, or wraps transparently as a patch error.
pub fn process_error<'e>(e: &'e (dyn std::error::Error + 'static)) -> Option<&'e relive_process::ProcessError> {
    e.downcast_ref::<relive_process::ProcessError>()
        .or(match e.downcast_ref::<relive_patch::PatchError>() {
            Some(relive_patch::PatchError::Process(p)) => Some(p),
            _ => None,
        })
}

fn code_for(err: &anyhow::Error) -> i32 {
    use relive_process::ProcessError as P;
    if let Some(e) = err.chain().find_map(process_error) {
        return match e {
            P::NoSuchProcess { .. } | P::Gone { .. } | P::NotMapped { .. } | P::NoSuchThread { .. } => NOT_FOUND,
            P::PermissionDenied { .. } | P::Traced { .. } | P::TraceRefused { .. } => PERMISSION,
            P::Mismatch { .. } => MISMATCH,
            _ => FAILED,
        };
    }
    if let Some(e) = err.chain().find_map(|e| e.downcast_ref::<relive_patch::PatchError>()) {
        use relive_patch::PatchError as E;
        match e {
            E::Owned { .. } => return BUSY,
            E::UnsafeState { .. } => return PERMISSION,
            E::NotPatched { .. } | E::NoPatches { .. } => return NOT_FOUND,
            _ => {}
        }
    }
    if err.chain().any(|e| e.is::<crate::not_found::OtherBuild>()) {
        return MISMATCH;
    }
    if err.chain().any(|e| {
        e.is::<crate::not_found::SymbolNotFound>()
            || e.is::<crate::not_found::NoFunction>()
            || e.is::<crate::not_found::NoSuchFunction>()
            || e.is::<crate::not_found::NoProcessRuns>()
    }) {
        return NOT_FOUND;
    }
    match image_error(err) {
        Some(
            ImageError::NotMapped { .. }
            | ImageError::NoFileBytes { .. }
            | ImageError::NoView { .. }
            | ImageError::ArchNotPresent { .. }
            | ImageError::NoSymbols { .. }
            | ImageError::NoZip
            | ImageError::EntryNotFound { .. },
        ) => NOT_FOUND,
        _ => FAILED,
    }
}

fn hint_for(err: &anyhow::Error) -> Option<&'static str> {
    Some(match image_error(err)? {
        ImageError::NotMapped { .. } => "`relive info FILE` lists the segments and sections and the ranges they cover",
        ImageError::ArchNotPresent { .. } => "pass --arch with one of the architectures listed",
        ImageError::EntryNotFound { .. } => "`relive zip ls FILE` lists the entries",
        ImageError::NoSymbols { .. } => "`relive info FILE` lists the symbol sources this file has",
        ImageError::UnknownFormat { .. } => "relive reads APE, ELF, PE and Mach-O files",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_errors_get_their_own_code() {
        let e = anyhow::Error::new(ImageError::NoZip);
        assert_eq!(code_for(&e), NOT_FOUND);
        let e = anyhow::Error::new(ImageError::Invalid {
            what: "x",
            offset: 0,
            reason: "y".into(),
        });
        assert_eq!(code_for(&e), FAILED);
        assert_eq!(code_for(&anyhow::anyhow!("other")), FAILED);
        let _ = OK;
    }

    /// One error of every type that has a cause, built as relive builds
    /// them.
    fn errors_with_causes() -> Vec<anyhow::Error> {
        use relive_process::ProcessError;
        let io = || std::io::Error::other("disk on fire");
        let image = || relive_image::ImageError::Io {
            path: "app".into(),
            cause: std::sync::Arc::new(io()),
        };
        vec![
            image().into(),
            relive_patch::PatchError::Io {
                path: "j".into(),
                cause: io(),
            }
            .into(),
            ProcessError::Io {
                pid: 1,
                what: "reading".into(),
                cause: io(),
            }
            .into(),
            ProcessError::RemoteSyscall {
                pid: 1,
                call: "mmap".into(),
                cause: io(),
            }
            .into(),
            ProcessError::Image {
                pid: 1,
                path: "app".into(),
                cause: image(),
            }
            .into(),
            ProcessError::Spawn {
                program: "cc".into(),
                cause: io(),
            }
            .into(),
            relive_patch::PatchError::from(ProcessError::Io {
                pid: 1,
                what: "reading".into(),
                cause: io(),
            })
            .into(),
            relive_reload::compdb::CompdbError::Io {
                path: "compile_commands.json".into(),
                what: "reading",
                cause: io(),
            }
            .into(),
            relive_smf::loader::LoadError::from(io()).into(),
            relive_smf::registry::RegistryError::Load {
                module: "m".into(),
                cause: relive_smf::loader::LoadError::from(io()),
            }
            .into(),
            relive_smf::registry::RegistryError::Read {
                path: "m.smf".into(),
                cause: relive_smf::registry::ReadError::from(io()),
            }
            .into(),
            relive_reload::ReloadError::from(notify::Error::generic("disk on fire")).into(),
        ]
    }

    #[test]
    fn every_cause_is_printed_once() {
        for e in errors_with_causes() {
            let shown = message(&e.context("doing it"));
            assert!(shown.starts_with("doing it: "), "{shown}");
            assert_eq!(shown.matches("disk on fire").count(), 1, "{shown}");
        }
        // A cause an error does not state is printed after it.
        let unstated = anyhow::Error::new(std::io::Error::other("gone")).context("reading m.smf");
        assert_eq!(message(&unstated), "reading m.smf: gone");
    }
}
