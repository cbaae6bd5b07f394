//! Live reload: recompile one translation unit, diff the new object
//! against the previous one, and patch what changed into the running
//! program, timing each stage.
//!
//! [`Reloader`] keeps, per source file, the object the program currently
//! runs, so each reload patches exactly what the edit changed. (Watching
//! files and finding compile commands build on this.)

pub mod sources;
pub mod watch;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use relive_patch::apply::{self, Target};
use relive_patch::{ObjectFile, PatchError};
use relive_process::Process;
use serde::Serialize;

/// Milliseconds per stage of one reload.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StageTimes {
    pub compile: f64,
    pub diff: f64,
    pub link: f64,
    pub apply: f64,
    pub total: f64,
}

/// What one reload did.
#[derive(Debug, Clone, Serialize)]
pub struct ReloadEvent {
    /// `patched`, `unreachable` (every function redirected, none whose new
    /// code can run), `no_change`, `compile_error`, `refused` or `error`.
    pub event: &'static str,
    pub file: String,
    /// Functions patched whose new code later calls run (or that would
    /// have been patched, when refused).
    pub functions: Vec<String>,
    /// Functions the program did not have, added by this reload.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub added: Vec<String>,
    /// Functions redirected whose new code cannot run (see `notes`):
    /// never reported as patched.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unreachable: Vec<String>,
    /// What to know about the patched functions (why one is unreachable,
    /// which are running their old code now).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    pub timing_ms: StageTimes,
    pub pause_us: u64,
    /// The compiler's message, or why the change was refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl ReloadEvent {
    /// `patched f, g (compile 30.1 ms, diff 0.10 ms, …, paused 70 µs)`,
    /// with added and unreachable functions and notes on lines of their own.
    pub fn summary(&self) -> String {
        let t = &self.timing_ms;
        let mut what = Vec::new();
        if !self.functions.is_empty() || (self.added.is_empty() && self.unreachable.is_empty()) {
            what.push(format!("{} {}", self.event, self.functions.join(", ")));
        }
        if !self.added.is_empty() {
            what.push(format!("added {}", self.added.join(", ")));
        }
        if !self.unreachable.is_empty() {
            what.push(format!("NOT REACHABLE {}", self.unreachable.join(", ")));
        }
        let notes: String = self.notes.iter().map(|n| format!("\n  note: {n}")).collect();
        format!(
            "{} (compile {:.1} ms, diff {:.2} ms, link {:.2} ms, apply {:.2} ms; threads paused {} µs){notes}",
            what.join("; "),
            t.compile,
            t.diff,
            t.link,
            t.apply,
            self.pause_us
        )
    }
}

/// The prerequisites a make-style depfile lists (`out.o: a.c b.h \\ c.h`).
fn parse_depfile(text: &str) -> Vec<PathBuf> {
    let joined = text.replace("\\\n", " ");
    joined
        .lines()
        .filter_map(|l| l.split_once(": ").or_else(|| l.split_once(':')))
        .flat_map(|(_, deps)| deps.split_whitespace().map(PathBuf::from).collect::<Vec<_>>())
        .collect()
}

/// The files a process has mapped, as (path, inode), sorted.
fn mapped_files(process: &dyn Process) -> Result<Vec<(String, u64)>, ReloadError> {
    let maps = process.maps().map_err(PatchError::from)?;
    let mut files: Vec<(String, u64)> = maps
        .into_iter()
        .filter(|m| m.is_file())
        .map(|m| (m.path, m.inode))
        .collect();
    files.sort();
    files.dedup();
    Ok(files)
}

/// Errors that stop reloading altogether (not a bad edit).
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("running the compiler {cc}: {source}")]
    Compiler {
        cc: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Patch(#[from] PatchError),
    #[error("watching the sources: {0}")]
    Watch(#[from] notify::Error),
}

/// Reloads sources into one running process.
pub struct Reloader<'p> {
    process: &'p dyn Process,
    target: Target<'p>,
    /// The files mapped when `target` was read: when they change (the
    /// dynamic loader has mapped libc since, or a library was opened),
    /// the process's modules and symbols are read again.
    mapped: Vec<(String, u64)>,
    /// The compiler and code-generation flags the program was built with.
    cc: Vec<String>,
    /// Per-file compile commands, where they differ from `cc`.
    commands: HashMap<PathBuf, Vec<String>>,
    cache: PathBuf,
    /// Per source file: the object the program runs now.
    current: HashMap<PathBuf, ObjectFile>,
    /// Per source file: the user headers it includes.
    headers: HashMap<PathBuf, Vec<PathBuf>>,
    builds: usize,
}

impl<'p> Reloader<'p> {
    /// `cc` is the compile command without `-c`, `-o` and the source
    /// (e.g. `["gcc", "-O2", "-g"]`); objects go to `cache`.
    pub fn new(process: &'p dyn Process, cc: Vec<String>, cache: PathBuf) -> Result<Reloader<'p>, ReloadError> {
        // The mapped files first: if the loader maps more while the
        // modules are read, the next reload sees a difference and reads
        // them again.
        let mapped = mapped_files(process)?;
        Ok(Reloader {
            process,
            target: Target::open(process)?,
            mapped,
            cc,
            commands: HashMap::new(),
            cache,
            current: HashMap::new(),
            headers: HashMap::new(),
            builds: 0,
        })
    }

    fn compile(&mut self, source: &Path) -> Result<Result<ObjectFile, String>, ReloadError> {
        self.builds += 1;
        let stem = source.file_stem().and_then(|s| s.to_str()).unwrap_or("unit");
        let out = self.cache.join(format!("{stem}.{}.o", self.builds));
        let command = self.commands.get(source).unwrap_or(&self.cc).clone();
        let (cc, flags) = command.split_first().expect("a compiler");
        let dir = source
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        // -MMD writes the user headers the unit includes (without changing
        // the code), so a header edit reloads every unit that uses it.
        let depfile = out.with_extension("d");
        let result = Command::new(cc)
            .args(flags)
            .arg("-c")
            .arg(source.file_name().expect("a file name"))
            .arg("-o")
            .arg(&out)
            .arg("-MMD")
            .arg("-MF")
            .arg(&depfile)
            .current_dir(dir)
            .output()
            .map_err(|e| ReloadError::Compiler {
                cc: cc.to_string(),
                source: e,
            })?;
        if !result.status.success() {
            return Ok(Err(String::from_utf8_lossy(&result.stderr).trim_end().to_string()));
        }
        if let Ok(text) = std::fs::read_to_string(&depfile) {
            let headers = parse_depfile(&text)
                .into_iter()
                .map(|d| std::path::absolute(dir.join(&d)).unwrap_or(d))
                .filter(|d| d.as_path() != source && d.extension().is_some_and(|e| e != "c"))
                .collect();
            self.headers.insert(source.to_path_buf(), headers);
        }
        Ok(ObjectFile::open(&out).map_err(|e| e.to_string()))
    }

    /// Every header some unit includes (from the last compiles).
    pub fn headers(&self) -> Vec<PathBuf> {
        let mut all: Vec<PathBuf> = self.headers.values().flatten().cloned().collect();
        all.sort();
        all.dedup();
        all
    }

    /// The units that include `header`.
    pub fn dependents(&self, header: &Path) -> Vec<PathBuf> {
        let mut units: Vec<PathBuf> = self
            .headers
            .iter()
            .filter(|(_, hs)| hs.iter().any(|h| h == header))
            .map(|(unit, _)| unit.clone())
            .collect();
        units.sort();
        units
    }

    /// Compiles `source` with `command` instead of the default.
    pub fn set_command(&mut self, source: &Path, command: Vec<String>) {
        if !command.is_empty() {
            self.commands.insert(source.to_path_buf(), command);
        }
    }

    /// Records what the program runs for `source` (its object as built
    /// with the program), the base the first reload is diffed against.
    pub fn baseline(&mut self, source: &Path) -> Result<Result<(), String>, ReloadError> {
        Ok(self.compile(source)?.map(|obj| {
            self.current.insert(source.to_path_buf(), obj);
        }))
    }

    /// Recompiles `source` and patches what changed since the last build.
    pub fn reload(&mut self, source: &Path) -> Result<ReloadEvent, ReloadError> {
        let start = Instant::now();
        let file = source.display().to_string();
        let ms = |t: Instant| t.elapsed().as_secs_f64() * 1000.0;
        let mut event = ReloadEvent {
            event: "no_change",
            file,
            functions: Vec::new(),
            added: Vec::new(),
            unreachable: Vec::new(),
            notes: Vec::new(),
            timing_ms: StageTimes::default(),
            pause_us: 0,
            message: None,
        };
        let new = match self.compile(source)? {
            Ok(obj) => obj,
            Err(message) => {
                event.event = "compile_error";
                event.message = Some(message);
                event.timing_ms.compile = ms(start);
                event.timing_ms.total = event.timing_ms.compile;
                return Ok(event);
            }
        };
        event.timing_ms.compile = ms(start);
        let diff_start = Instant::now();
        let old = self.current.get(source);
        let functions = match relive_patch::select::functions_to_patch(old, &new) {
            Ok(functions) => functions,
            Err(PatchError::Refused { what }) => {
                event.event = "refused";
                event.message = Some(what);
                event.timing_ms.total = ms(start);
                return Ok(event);
            }
            Err(e) => return Err(e.into()),
        };
        event.timing_ms.diff = ms(diff_start);
        event.functions = functions.iter().map(|&i| new.symbols[i].name.clone()).collect();
        if functions.is_empty() {
            self.current.insert(source.to_path_buf(), new);
            event.timing_ms.total = ms(start);
            return Ok(event);
        }
        let now_mapped = mapped_files(self.process)?;
        if now_mapped != self.mapped {
            self.target = Target::open(self.process)?;
            self.mapped = now_mapped;
        }
        match apply::patch(&mut self.target, &new, old, &functions, 0) {
            Ok(report) => {
                event.event = "patched";
                let (reachable, unreachable): (Vec<_>, Vec<_>) = report.applied.iter().partition(|a| a.reach.reachable);
                event.functions = reachable.iter().map(|a| a.name.clone()).collect();
                event.unreachable = unreachable.iter().map(|a| a.name.clone()).collect();
                event.added = report.added.iter().map(|a| a.name.clone()).collect();
                event.notes = report.applied.iter().filter_map(|a| a.reach.note.clone()).collect();
                event.notes.extend(report.warnings.iter().cloned());
                if event.functions.is_empty() && event.added.is_empty() {
                    event.event = "unreachable";
                }
                event.timing_ms.link = report.timing_us.link as f64 / 1000.0;
                event.timing_ms.apply = (report.timing_us.total - report.timing_us.link) as f64 / 1000.0;
                event.pause_us = report.pause_us;
                self.current.insert(source.to_path_buf(), new);
            }
            Err(PatchError::Process(e)) => return Err(PatchError::Process(e).into()),
            Err(e) => {
                event.event = "refused";
                event.message = Some(e.to_string());
            }
        }
        event.timing_ms.total = ms(start);
        Ok(event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depfiles() {
        let deps = parse_depfile("/c/app.3.o: app.c shared.h \\\n ../inc/util.h\n");
        assert_eq!(
            deps,
            [PathBuf::from("app.c"), "shared.h".into(), "../inc/util.h".into()]
        );
        assert!(parse_depfile("").is_empty());
    }
}
