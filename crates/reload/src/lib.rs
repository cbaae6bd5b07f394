//! Live reload: recompile one translation unit, diff the new object
//! against the previous one, and patch what changed into the running
//! program, timing each stage.
//!
//! [`Reloader`] keeps, per source file, the object the program currently
//! runs, so each reload patches exactly what the edit changed. (Watching
//! files and finding compile commands build on this.)
// No unsafe code here: only the process and memory layers (relive-process,
// relive-smf's loader, relive-image's file mapping) touch raw memory.
#![forbid(unsafe_code)]

pub mod compdb;
mod compile;
pub mod dwarf;
pub mod edited;
pub mod macros;
pub mod since_build;
pub mod snapshot;
pub mod sources;
mod stoppable;
pub mod watch;

pub use stoppable::stop_all as stop_compiles;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Instant;

use compile::{compile, Fresh, Macros};
use relive_patch::apply::{self, Target, Timing};
use relive_patch::fleet;
use relive_patch::verify::{self, Verification};
use relive_patch::{ObjectFile, PatchError};
use relive_process::Process;
use serde::Serialize;
use sources::CompileCommand;

/// Microseconds per stage of one reload.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StageTimes {
    pub compile: u64,
    pub diff: u64,
    pub link: u64,
    pub apply: u64,
    pub total: u64,
}

impl StageTimes {
    /// Nothing was timed.
    fn is_zero(&self) -> bool {
        self.total == 0 && self.compile == 0 && self.diff == 0 && self.link == 0 && self.apply == 0
    }
}

/// What a reload did with a file (the JSON `event`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// Its changed functions run their new code.
    Patched,
    /// Every changed function was redirected, but none whose new code can
    /// run (see the event's notes).
    Unreachable,
    /// The save put patched functions back as the program was built, and
    /// their patches were taken back; nothing else changed. Said as
    /// "patched" with no function before.
    Reverted,
    /// No function changed.
    NoChange,
    /// It does not compile; the program runs on unchanged.
    CompileError,
    /// It failed to compile while being written again: the newer save
    /// counts.
    Superseded,
    /// Not patched, for the reason in the message.
    Refused,
    /// Not patched yet, because of another file: one saved with it failed
    /// (patched with the next good save), or it needs that file's change
    /// (a function or variable that file adds, a signature it changes, code
    /// another command reverted there; tried again with that file's next
    /// save). Said as "refused" before, which read as for good.
    Held,
    /// Not compiled: the file is empty, taken for a save still being
    /// written (an editor that truncates, then writes). Said as "no
    /// function changed" before, while the file had changed.
    NotCompiled,
    /// No save: another relive command reverted or patched functions of
    /// the file (`functions`), which now run other code than it says.
    ChangedElsewhere,
    /// Not compiled yet: the file was written and another process still
    /// has it open for writing (a save still being written); it is
    /// compiled once it is closed.
    Waiting,
}

impl EventKind {
    /// Its name, as in JSON.
    pub fn name(self) -> &'static str {
        match self {
            EventKind::Patched => "patched",
            EventKind::Unreachable => "unreachable",
            EventKind::Reverted => "reverted",
            EventKind::NoChange => "no_change",
            EventKind::CompileError => "compile_error",
            EventKind::Superseded => "superseded",
            EventKind::Refused => "refused",
            EventKind::Held => "held",
            EventKind::NotCompiled => "not_compiled",
            EventKind::ChangedElsewhere => "changed_elsewhere",
            EventKind::Waiting => "waiting",
        }
    }

    /// Whether the change is in the program (its entries redirected).
    pub fn applied(self) -> bool {
        matches!(self, EventKind::Patched | EventKind::Unreachable | EventKind::Reverted)
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What one reload did.
#[derive(Debug, Clone, Serialize)]
pub struct ReloadEvent {
    pub event: EventKind,
    pub file: String,
    /// Functions patched whose new code later calls run (or that would
    /// have been patched, when refused).
    pub functions: Vec<String>,
    /// Functions the program did not have, added by this reload.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub added: Vec<String>,
    /// Variables the program did not have, added by this reload (an LMDB
    /// trial: only `relive status` listed them).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub added_variables: Vec<String>,
    /// New globals constructed in the program before the new code ran.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub constructed: Vec<String>,
    /// Functions redirected whose new code cannot run (see `notes`):
    /// never reported as patched.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unreachable: Vec<String>,
    /// Of `unreachable`, those with nothing to act on: no code of the
    /// program calls them (an unused API function), or their code changed
    /// only in line numbers. The text says them apart, not as NOT
    /// REACHABLE (a zstd trial: seven unused functions in capitals).
    #[serde(skip)]
    pub unreachable_harmless: Vec<String>,
    /// Of `functions` and `unreachable`, those whose code changed only in
    /// line numbers an edit above them moved (`__LINE__` in an assertion):
    /// said apart, as what the edit moved rather than what it changed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub lines_moved: Vec<String>,
    /// Patched functions the save put back as the program was built
    /// (their compile is the program's own code): their patches were
    /// taken back, not patched again.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reverted: Vec<String>,
    /// Patched functions the save put back as the program was built,
    /// whose patches could not be taken back on their own (a caller of
    /// theirs patched in the same change stays patched): patched again,
    /// with the program's own code, and said so (a SQLite re-check: 87
    /// such functions were said as moved).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub as_built: Vec<String>,
    /// Edited functions with no code of their own, and which of the
    /// patched functions they are inlined into: said with those, whose
    /// names alone read as if other functions than the edited ones were
    /// patched.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub inlined_edits: Vec<edited::InlinedEdit>,
    /// What to know about the patched functions (why one is unreachable,
    /// which are running their old code now).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// Each changed constant table the save's notes name, with the
    /// functions that read it (see `relive_patch::select::Selected`).
    #[serde(skip)]
    pub table_readers: Vec<(String, Vec<String>)>,
    /// Variables whose initial value the save changed, which the program
    /// does not take (it keeps the values they have; `notes` says so): an
    /// edit only of an initializer is a `no_change` event, as no function
    /// changed, and a reader of the JSON took it for a program that
    /// computes what the file says (a bzip2 trial).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub initial_values_kept: Vec<String>,
    /// Left out where nothing was timed (`changed_elsewhere`: another
    /// command's change, said when seen; its zeros read as a measurement).
    #[serde(skip_serializing_if = "StageTimes::is_zero")]
    pub timing_us: StageTimes,
    pub pause_us: u64,
    /// The compiler's message, or why the change was refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Notes true only if the patch goes in ("patched now, as the file
    /// says"): moved into `notes` when it did, dropped when the file was
    /// held or refused after all (an LMDB trial's held event said
    /// "patched now").
    #[serde(skip)]
    pub if_patched: Vec<String>,
    /// Of `notes`, those about this file's own patched code (a changed
    /// macro's values): said with each file's event, never once for
    /// several files of a burst as a note about the process is (a Lua
    /// re-check: the note of one file hid another's).
    #[serde(skip)]
    pub file_notes: Vec<String>,
    /// What the compiler printed for a compile that succeeded: its
    /// warnings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compiler_warnings: Option<String>,
    /// The warnings are those an earlier event of this file gave.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub compiler_warnings_repeated: bool,
    /// The program's reload hooks that ran around the patch.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hooks: Vec<relive_patch::hooks::HookRun>,
    /// The program's other processes (workers it forked) that got the
    /// same patch, with [`Reloader::followers`].
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub processes: Vec<u32>,
    /// What those processes are, for the words: its forked workers, or
    /// processes started apart that run the same file (`--exe`).
    #[serde(skip)]
    pub processes_are: &'static str,
}

impl ReloadEvent {
    /// A file saved in part, still open for writing by `writers` (pid,
    /// command name): compiled once they close it.
    pub fn waiting(source: &Path, writers: &[(u32, String)]) -> ReloadEvent {
        let who: Vec<String> = writers
            .iter()
            .map(|(pid, name)| format!("pid {pid} ({name})"))
            .collect();
        ReloadEvent {
            event: EventKind::Waiting,
            message: Some(format!(
                "it is still open for writing by {}: compiled once it is closed (or in {} s at most), so a save written in parts is not compiled half written",
                who.join(", "),
                watch::MAX_WRITER_HOLD.as_secs()
            )),
            ..ReloadEvent::new(source)
        }
    }

    /// A save of `source` not patched yet because another tracer (`name`,
    /// pid `tracer`) holds the program: patched once it lets go.
    pub fn held_by_tracer(source: &Path, tracer: u32, name: &str) -> ReloadEvent {
        ReloadEvent {
            event: EventKind::Held,
            message: Some(format!(
                "not patched yet: the program is traced by pid {tracer} ({name}), and a process has one tracer at a time; it is patched as soon as that one detaches (quit the debugger, or `detach` in gdb; stop strace)"
            )),
            ..ReloadEvent::new(source)
        }
    }

    /// Nothing done yet for `source`.
    pub fn new(source: &Path) -> ReloadEvent {
        ReloadEvent {
            event: EventKind::NoChange,
            file: source.display().to_string(),
            functions: Vec::new(),
            added: Vec::new(),
            added_variables: Vec::new(),
            constructed: Vec::new(),
            unreachable: Vec::new(),
            unreachable_harmless: Vec::new(),
            lines_moved: Vec::new(),
            reverted: Vec::new(),
            as_built: Vec::new(),
            inlined_edits: Vec::new(),
            notes: Vec::new(),
            table_readers: Vec::new(),
            initial_values_kept: Vec::new(),
            if_patched: Vec::new(),
            file_notes: Vec::new(),
            compiler_warnings: None,
            compiler_warnings_repeated: false,
            hooks: Vec::new(),
            processes: Vec::new(),
            processes_are: "forked workers",
            timing_us: StageTimes::default(),
            pause_us: 0,
            message: None,
        }
    }

    /// Every function the patch put in: changed (reachable or not) and
    /// added.
    fn patched_names(&self) -> Vec<String> {
        self.functions
            .iter()
            .chain(&self.unreachable)
            .chain(&self.added)
            .cloned()
            .collect()
    }

    /// `patched f, g (compile 30.1 ms, diff 0.10 ms, …, paused 70 µs)`,
    /// with added and unreachable functions and notes on lines of their own.
    pub fn summary(&self) -> String {
        self.summary_listing(false)
    }

    /// "no function changed" and its notes (an initial value the edit
    /// changed, which the program does not take), for people: the notes
    /// went unprinted, so an edit of an initial value looked taken.
    pub fn no_change_listing(&self) -> String {
        format!(
            "no function changed ({:.1} ms){}",
            ms(self.timing_us.total),
            self.notes_listing()
        )
    }

    /// Each note on a line of its own, as people write names.
    fn notes_listing(&self) -> String {
        self.notes
            .iter()
            .map(|n| format!("\n  note: {}", relive_patch::names::readable_text(n)))
            .collect()
    }

    /// [`ReloadEvent::summary`]; `every` lists every name, where the
    /// summary names a file's own functions first, at most
    /// [`LISTED`] of them, and counts the standard library's template
    /// instances (a lambda stored in a `std::function` brings dozens).
    pub fn summary_listing(&self, every: bool) -> String {
        let t = &self.timing_us;
        let mut what = Vec::new();
        let moved_only = |names: &[String]| -> Vec<String> {
            names
                .iter()
                .filter(|n| !self.lines_moved.contains(n) && !self.as_built.contains(n))
                .cloned()
                .collect()
        };
        let lines_moved: Vec<String> = self
            .lines_moved
            .iter()
            .filter(|n| !self.as_built.contains(n))
            .cloned()
            .collect();
        let functions = moved_only(&self.functions);
        if !functions.is_empty()
            || (self.added.is_empty()
                && self.unreachable.is_empty()
                && self.reverted.is_empty()
                && self.lines_moved.is_empty()
                && self.as_built.is_empty())
        {
            what.push(format!(
                "{} {}{}",
                self.event,
                readable_list(&functions, every),
                self.inlined_listing(&functions, every, lists_every_name(&functions, every))
            ));
        } else {
            // Inlined only into functions whose new code cannot run, or
            // that changed only in line numbers: said on their own.
            what.extend(self.inlined_groups().iter().map(|(into, functions)| {
                let (names, how) = names_and_how(functions);
                format!(
                    "{how} {}, inlined into {}",
                    readable_list(&names, every),
                    readable_list(into, every)
                )
            }));
        }
        if !lines_moved.is_empty() {
            what.push(format!("line numbers only: {}", readable_list(&lines_moved, every)));
        }
        // The compiler's static initializers are no functions anybody
        // wrote: a changed one's note says what that means, and what a new
        // one constructed is said instead of its name.
        let written = |names: &[String]| -> Vec<String> {
            names
                .iter()
                .filter(|n| !relive_patch::names::is_static_initializer(n))
                .cloned()
                .collect()
        };
        let unreachable = written(&moved_only(&self.unreachable));
        let (harmless, unreachable): (Vec<String>, Vec<String>) = unreachable
            .into_iter()
            .partition(|n| self.unreachable_harmless.contains(n));
        // With nothing else patched, what was added for a new static
        // initializer (it ran at start-up only) is what it constructed,
        // said below; anything else added is said ("nothing to patch"
        // hid a new function).
        let added = match self.functions.is_empty() && unreachable.is_empty() && !self.constructed.is_empty() {
            true => Vec::new(),
            false => written(&self.added),
        };
        if !added.is_empty() {
            what.push(format!("added {}", readable_list(&added, every)));
        }
        if !self.added_variables.is_empty() {
            let variables = readable_list(&self.added_variables, every);
            what.push(format!(
                "added variable{} {variables}",
                if self.added_variables.len() == 1 { "" } else { "s" }
            ));
        }
        if !self.constructed.is_empty() {
            what.push(format!("constructed {}", self.constructed.join(", ")));
        }
        if !unreachable.is_empty() {
            what.push(format!("NOT REACHABLE {}", readable_list(&unreachable, every)));
        }
        if !harmless.is_empty() {
            what.push(format!(
                "redirected {}, which nothing calls",
                readable_list(&harmless, every)
            ));
        }
        let reverted = written(&self.reverted);
        if !reverted.is_empty() {
            what.push(format!(
                "back to the program's own code: {}",
                readable_list(&reverted, every)
            ));
        }
        if !self.as_built.is_empty() {
            let (them, their, patches) = match self.as_built.len() {
                1 => ("it", "its", "patch"),
                _ => ("them", "their", "patches"),
            };
            what.push(format!(
                "back to the program's own code: {} (patched again with {them}: {their} {patches} could not be taken back on {their} own, as functions patched in one change with {them} stay patched)",
                readable_list(&self.as_built, every)
            ));
        }
        // A static initializer's new code was written but runs only at a
        // start: "nothing to patch" above a pause read as a contradiction
        // (a HarfBuzz trial), and its compiler name said nothing.
        let start_up_only = self
            .unreachable
            .iter()
            .chain(&self.reverted)
            .any(|n| relive_patch::names::is_static_initializer(n));
        match (what.is_empty(), start_up_only) {
            (true, true) => {
                what.push("only the file's static initializer changed, which runs when the program starts".to_string())
            }
            (true, false) => what.push("nothing to patch".to_string()),
            _ => {}
        }
        let workers = match self.processes.len() {
            0 => String::new(),
            n => format!(
                "\n  and in the program's {n} other process{} ({}): {}",
                if n == 1 { "" } else { "es" },
                self.processes_are,
                self.processes.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")
            ),
        };
        let notes: String = std::iter::once(workers)
            .chain(self.hooks.iter().map(|h| format!("\n  {}", h.describe())))
            .chain(std::iter::once(self.notes_listing()))
            .collect();
        // Later patches of a function only store a new address: nothing
        // stops.
        let paused = match self.pause_us {
            0 => "no thread paused".to_string(),
            us => format!("threads paused {us} µs"),
        };
        format!(
            "{} (compile {:.1} ms, diff {:.2} ms, link {:.2} ms, apply {:.2} ms; {paused}){notes}",
            what.join("; "),
            ms(t.compile),
            ms(t.diff),
            ms(t.link),
            ms(t.apply),
        )
    }
}

impl ReloadEvent {
    /// The edited functions inlined into patched ones (with no code of
    /// their own, or patched too), said after the patched functions
    /// `listed`: " (they inline read_buf, which was edited)" ("added" for
    /// one new in the save), grouped by the functions they are inlined
    /// into.
    /// After a list cut short ("5 more"), they follow a semicolon: in
    /// parentheses they read as the names the list left out (a
    /// tree-sitter trial).
    fn inlined_listing(&self, listed: &[String], every: bool, listed_in_full: bool) -> String {
        let parts: Vec<String> = self
            .inlined_groups()
            .iter()
            .map(|(into, functions)| {
                let all = into.len() == listed.len() && into.iter().all(|f| listed.contains(f));
                let subject = match (all, into.len()) {
                    (true, 1) => "it".to_string(),
                    (true, _) => "they".to_string(),
                    _ => readable_list(into, every),
                };
                let (names, how) = names_and_how(functions);
                format!(
                    "{subject} {} {}, which {} {how}",
                    if into.len() == 1 { "inlines" } else { "inline" },
                    readable_list(&names, every),
                    if functions.len() == 1 { "was" } else { "were" }
                )
            })
            .collect();
        match (parts.is_empty(), listed_in_full) {
            (true, _) => String::new(),
            (false, true) => format!(" ({})", parts.join("; ")),
            (false, false) => format!("; {}", parts.join("; ")),
        }
    }

    /// The edited functions inlined into patched ones, grouped by the
    /// functions they are inlined into, each with whether the save added
    /// it.
    fn inlined_groups(&self) -> Vec<InlinedGroup<'_>> {
        let mut groups: Vec<InlinedGroup> = Vec::new();
        for edit in &self.inlined_edits {
            let function = (edit.function.clone(), edit.added);
            match groups.iter_mut().find(|(into, _)| *into == edit.into.as_slice()) {
                Some((_, functions)) => functions.push(function),
                None => groups.push((&edit.into, vec![function])),
            }
        }
        groups
    }
}

/// The functions some inlined functions of a save are inlined into, and
/// those functions, each with whether the save added it.
type InlinedGroup<'a> = (&'a [String], Vec<(String, bool)>);

/// The names of inlined functions of a save (each with whether the save
/// added it), and what the save did to them: "added", "edited", or both.
fn names_and_how(functions: &[(String, bool)]) -> (Vec<String>, &'static str) {
    let names = functions.iter().map(|(f, _)| f.clone()).collect();
    let how = match (functions.iter().all(|(_, a)| *a), functions.iter().any(|(_, a)| *a)) {
        (true, _) => "added",
        (false, true) => "added or edited",
        (false, false) => "edited",
    };
    (names, how)
}

/// Symbol names as people write them (C++ demangled), comma-separated.
fn readable_list(names: &[String], every: bool) -> String {
    // As people read them; a constructor's or destructor's variants (the
    // complete and base object ones) read the same, and are counted.
    let mut counted: Vec<(String, usize)> = Vec::new();
    for name in names {
        let text = relive_patch::names::readable(name);
        match counted.iter_mut().find(|(t, _)| *t == text) {
            Some((_, k)) => *k += 1,
            None => counted.push((text, 1)),
        }
    }
    let shown = |(text, k): &(String, usize)| {
        let text = match every {
            true => text.clone(),
            false => shortened(text),
        };
        match k {
            1 => text,
            k => format!("{text} ({k} variants)"),
        }
    };
    if every {
        return counted.iter().map(shown).collect::<Vec<_>>().join(", ");
    }
    let (own, library): (Vec<_>, Vec<_>) = counted.iter().partition(|(t, _)| !in_standard_library(t));
    let mut text: Vec<String> = own.iter().take(LISTED).map(|c| shown(c)).collect();
    if own.len() > LISTED {
        text.push(format!("{} more", own.len() - LISTED));
    }
    match (library.len(), text.is_empty()) {
        (0, _) => {}
        (1, true) => text.push(shown(library[0])),
        (n, _) => text.push(format!(
            "{n} standard-library template instance{}",
            if n == 1 { "" } else { "s" }
        )),
    }
    text.join(", ")
}

/// Whether [`readable_list`] of `names` names each of them, rather than
/// ending in "N more" or counting standard-library instances.
fn lists_every_name(names: &[String], every: bool) -> bool {
    if every {
        return true;
    }
    let mut distinct: Vec<String> = names.iter().map(|n| relive_patch::names::readable(n)).collect();
    distinct.sort();
    distinct.dedup();
    let library = distinct.iter().filter(|t| in_standard_library(t)).count();
    let own = distinct.len() - library;
    own <= LISTED && (library == 0 || (library == 1 && own == 0))
}

/// `text` (a function's name) made short enough for a summary's line (a
/// template instance's name runs to hundreds of characters) without
/// losing the function's own name: template arguments, then parameter
/// lists, are elided (`SingletonEnv<…>::AssertEnvNotInitialized()`),
/// and what is still too long loses its start, not its end (cut in its
/// middle, `…Pos…tInitialized()` hid the name: a LevelDB trial).
fn shortened(text: &str) -> String {
    const LONGEST: usize = 120;
    let fits = |t: &str| t.chars().count() <= LONGEST;
    if fits(text) {
        return text.to_string();
    }
    let text = elided(text, '<', '>');
    if fits(&text) {
        return text;
    }
    let text = elided(&text, '(', ')');
    if fits(&text) {
        return text;
    }
    let chars: Vec<char> = text.chars().collect();
    let tail: String = chars[chars.len() - (LONGEST - 1)..].iter().collect();
    format!("…{tail}")
}

/// `text` with the contents of each outermost `open`…`close` group
/// replaced by `…`; an operator's own `<`, `>`, `(` or `)` (`operator<`,
/// `operator()`) and `(anonymous namespace)` stay as they are. Unbalanced
/// text is given back whole.
fn elided(text: &str, open: char, close: char) -> String {
    let mut out = String::with_capacity(text.len());
    let mut depth = 0usize;
    // Whether the group open at the top level has anything in it: `()`
    // stays as it is.
    let mut inside = false;
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        let after = &rest[c.len_utf8()..];
        if depth == 0 && out.ends_with("operator") {
            // `operator<<`, `operator()`, `operator->`: its symbol, whole.
            let symbol: String = rest.chars().take_while(|c| "<>=()-!+*/%&|^~[]".contains(*c)).collect();
            if !symbol.is_empty() {
                out.push_str(&symbol);
                rest = &rest[symbol.len()..];
                continue;
            }
        }
        if depth == 0 && c == open && open == '(' && rest.starts_with("(anonymous namespace)") {
            out.push_str("(anonymous namespace)");
            rest = &rest["(anonymous namespace)".len()..];
            continue;
        }
        if c == open {
            if depth == 0 {
                out.push(c);
                inside = false;
            } else {
                inside = true;
            }
            depth += 1;
        } else if c == close && depth > 0 {
            depth -= 1;
            if depth == 0 {
                if inside {
                    out.push('…');
                }
                out.push(c);
            }
        } else if depth == 0 {
            out.push(c);
        } else {
            inside = true;
        }
        rest = after;
    }
    if depth != 0 {
        return text.to_string();
    }
    out
}

/// How many of a file's own functions a summary names (`-v`: all), as
/// many as its notes name.
pub const LISTED: usize = relive_patch::reach::LISTED;

/// Whether the function `text` (demangled) is the standard library's: its
/// name, past any return type and before its parameters, is in `std::` or
/// `__gnu_cxx::`.
fn in_standard_library(text: &str) -> bool {
    let mut depth = 0i32;
    let mut name_start = 0;
    for (k, c) in text.char_indices() {
        match c {
            '<' => depth += 1,
            '>' => depth -= 1,
            ' ' if depth == 0 => name_start = k + 1,
            '(' if depth == 0 => break,
            _ => {}
        }
    }
    let name = &text[name_start.min(text.len())..];
    name.starts_with("std::") || name.starts_with("__gnu_cxx::")
}

/// Microseconds as milliseconds, for text.
pub fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
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

/// Functions (symbols) as a message names them: as people write them,
/// without the cold part GCC split off one of them (`f.cold` goes with
/// `f`: a redis trial's messages listed `setrangeCommand.cold` as a
/// function of its own).
fn shown_functions(functions: &[String]) -> Vec<String> {
    functions
        .iter()
        .filter(|n| !cold_part_of_one_of(n, functions))
        .map(|n| relive_patch::names::readable(n))
        .collect()
}

/// Whether `name` is the cold part of one of `functions` (said with it).
fn cold_part_of_one_of(name: &str, functions: &[String]) -> bool {
    relive_patch::names::hot_part(name).is_some_and(|hot| functions.iter().any(|f| f == hot))
}

/// A catch-up's refusal, with what a restart needs: the edit was made
/// before relive started, so the program runs a build without it, and
/// "restart the program" alone started that build again (an Oniguruma
/// trial, three times).
fn catch_up_refusal(why: String) -> String {
    format!(
        "{why}. This edit was made before relive started, so the program's build does not have it: rebuild the program before a restart (or save the file as the build has it, which relive takes as the edit undone)"
    )
}

/// `names` for a note: a few, then how many more.
fn listed(names: &[String]) -> String {
    const SHOWN: usize = 5;
    match names.len() > SHOWN {
        true => format!("{} and {} more", names[..SHOWN].join(", "), names.len() - SHOWN),
        false => names.join(", "),
    }
}

/// Drops from a save's `event` the notes of changed constant tables none
/// of whose readers the save patched or took back: their code already
/// ran as the file has it (another command's revert, say), so the table
/// the program reads did not change with this save. Held or refused
/// saves keep theirs.
fn drop_untouched_table_notes(event: &mut ReloadEvent) {
    let done = matches!(
        event.event,
        EventKind::Patched | EventKind::Reverted | EventKind::NoChange | EventKind::Unreachable
    );
    if !done {
        return;
    }
    let touched = |f: &str| {
        [&event.functions, &event.reverted, &event.as_built]
            .iter()
            .any(|names| names.iter().any(|n| n == f))
    };
    relive_patch::select::drop_unread_table_notes(&mut event.notes, &event.table_readers, touched);
}

/// Errors that stop reloading altogether (not a bad edit).
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error(transparent)]
    Patch(#[from] PatchError),
    #[error("watching the sources: {0}")]
    Watch(notify::Error),
}

// Not `#[from]`: that would make the error its source as well, and its
// text would be printed twice (the message states it).
impl From<notify::Error> for ReloadError {
    fn from(e: notify::Error) -> Self {
        ReloadError::Watch(e)
    }
}

/// A callback shown each compile command.
pub type ShowCommand = Box<dyn Fn(&CompileCommand) + Send + Sync>;

/// Files compiled together and not patched yet: see
/// [`Reloader::compile_batch`].
pub struct Batch {
    /// The files, in the order they were given.
    sources: Vec<PathBuf>,
    compiled: Vec<Fresh>,
    /// When the first compile started: each event's `total` counts from it.
    start: Instant,
    /// Compiles dropped because their file was saved again while they
    /// ran, and how long each took (µs): said with the file's event, whose
    /// `compile` time is only the last one's (a QuickJS trial waited 55 s
    /// for a save that said "compile 28366.5 ms").
    dropped: Vec<(PathBuf, u64)>,
}

impl Batch {
    /// Its files, in the order they were given.
    pub fn sources(&self) -> &[PathBuf] {
        &self.sources
    }
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
    commands: HashMap<PathBuf, CompileCommand>,
    cache: PathBuf,
    /// Per source file: functions whose baseline compile is not the code
    /// the program runs (and why), so edits to them are refused.
    unverified: HashMap<PathBuf, Vec<(String, String)>>,
    /// Per source file edited after the program was built: the functions
    /// its baseline defines that the program lacks (added by that edit).
    /// A file caught up at start that calls one of them is patched after
    /// them (it was refused, the function "not defined").
    added_before_start: HashMap<PathBuf, Vec<String>>,
    /// Files edited before relive started whose catch-up was refused (a
    /// variable another file's edit adds, not patched yet; a layout
    /// change): their next save patches what still differs from the
    /// running code with it. Compared only with the last compile, a save
    /// said "no function changed" or blamed the compile command for the
    /// difference, and the file stayed unpatched for good.
    refused_catch_up: std::collections::BTreeSet<PathBuf>,
    /// Functions of a file that run an earlier relive patch (another copy
    /// of the file, another command) where the file compiles into the
    /// program's own code (see `verify::set_patched_over_apart`): said at
    /// start-up, and again with each patch of the file while they still
    /// run it, as the program then differs from a build of the file (an
    /// Oniguruma trial: "patched onig_new" said nothing of it).
    patched_over: HashMap<PathBuf, Vec<String>>,
    /// Patch even where the baseline does not match the running code.
    pub trust_baselines: bool,
    /// Every compile unit of the program is watched (not a list the user
    /// gave): a function's callers are all known, so a signature change
    /// saved with every caller can be patched.
    pub every_unit_watched: bool,
    /// The last patch was refused for want of another file's change: a
    /// symbol nothing defines yet, or a signature change whose callers (or
    /// a call whose callee) are not saved with it. Such a file is held and
    /// tried again with the next save (it was refused for good, and a
    /// "save all" whose files came a compile apart stayed unpatched).
    awaits_other_file: bool,
    /// Files whose last save is not in the program because another file
    /// saved with them failed (did not compile, was refused): patched
    /// with the next save of any file.
    held: std::collections::BTreeSet<PathBuf>,
    /// The held files the batch being patched tries again (not saved with
    /// it).
    retried: std::collections::BTreeSet<PathBuf>,
    /// For a file held because others saved with it failed, those others:
    /// it waits while one still fails (see `failing`), also when saved
    /// again alone. It was patched at its next save, though compiled from
    /// the same header change its partners were refused for (a re-check:
    /// `sizeof buf` of an array a header grew, which no debug information
    /// of the file shows, and the program crashed).
    held_with: std::collections::BTreeMap<PathBuf, std::collections::BTreeSet<PathBuf>>,
    /// Files whose last save failed (refused, or did not compile), until
    /// a save of theirs is patched or changes nothing.
    failing: std::collections::BTreeSet<PathBuf>,
    /// Other processes patched with the process itself, as one
    /// transaction: its descendants running the same program (a server's
    /// workers; `relive run` sets it), or every process running its file.
    pub followers: fleet::Followers,
    /// The program's other processes, being listed (see `start_tree_scan`).
    tree_scan: Option<std::thread::JoinHandle<Vec<u32>>>,
    /// Called with every compile command relive runs (`--verbose`).
    pub on_compile: Option<ShowCommand>,
    /// Per source file: the object the program runs now.
    current: HashMap<PathBuf, ObjectFile>,
    /// Per source file: the user headers it includes.
    headers: HashMap<PathBuf, Vec<PathBuf>>,
    /// Per source file being patched: its functions whose signature is not
    /// the running code's though the diff shows none (see
    /// [`since_build::changed_names`]), for the patch's checks.
    stale_signatures: HashMap<PathBuf, Vec<String>>,
    /// Per source file: what the compiler printed for its last compile,
    /// which succeeded (warnings: a call that no longer matches its
    /// prototype compiles with one, and the program then crashes; a PCRE2
    /// trial saw only the crash).
    warnings: HashMap<PathBuf, String>,
    /// Per source file: the warnings an event last gave in full. The same
    /// again is said in one line (a jq trial: 380 lines of the same
    /// warnings at every save of `builtin.c` buried its one `patched`).
    warnings_said: HashMap<PathBuf, String>,
    builds: usize,
    /// The sources' text when relive started, for [`Reloader::baselines`]
    /// (which takes it): baselines are compiled from it where a file was
    /// saved since.
    pub snapshot: snapshot::Snapshot,
    /// Per source file: how long its baseline compile took (µs), the
    /// compile of a catch-up.
    baseline_us: HashMap<PathBuf, u64>,
    /// Per source file: how long comparing its baseline with the running
    /// code took (µs), the diff of a catch-up (said as 0 before).
    baseline_check_us: HashMap<PathBuf, u64>,
    /// Per source file compiled with a command not known to be the
    /// build's: the text the program runs, and the text a reload under way
    /// would make it run (see `macros`).
    texts: HashMap<PathBuf, String>,
    pending_texts: HashMap<PathBuf, String>,
    /// Per source file: functions it defines that another relive command
    /// (`revert`, a one-shot `patch`) changed in the process behind this
    /// session's back (patched, reverted, or added by a patch and freed
    /// since), until a patch of the file settles them: its next save
    /// patches what the file says again where the program runs other code,
    /// and says so. Kept across a refused save, and for functions any
    /// session patched: compared only with the last compile, every later
    /// save said "no function changed" while the program ran the reverted
    /// code.
    unsettled: HashMap<PathBuf, std::collections::BTreeSet<String>>,
    /// The files of the save being patched one by one (empty otherwise).
    saved_with: Vec<PathBuf>,
    /// The files of the save being patched that did not compile: a
    /// signature change waiting for its callers says which of them were
    /// saved and fail, rather than to save them (a libxz trial was told to
    /// save four callers it had saved, one of which did not compile).
    not_compiling: Vec<PathBuf>,
    /// Functions of files saved together put back as the program was
    /// built, by file, whose take-back waits to be done for all of them
    /// in one step ([`Reloader::take_back_together`]): each file's own
    /// revert paused the program apart, and a header edit undone across
    /// files switched back file by file (a zstd trial: compression and
    /// decompression went back 40 ms apart).
    put_back_waiting: Vec<(PathBuf, Vec<String>)>,
    /// Per source file: its variables' initial values in the compile first
    /// taken as what runs (the program's start), so that an edit that puts
    /// one back is not said to change it.
    started_with: HashMap<PathBuf, HashMap<String, Vec<u8>>>,
    /// Per source file: the compile of it the program ran when relive
    /// started (its baseline, verified), once a patch replaced it as the
    /// file's current one: what an unreachable function's new code is
    /// compared with for a change of line numbers alone (compared with the
    /// last patch's, an edit put back was "NOT REACHABLE" with advice: a
    /// redis trial).
    built: HashMap<PathBuf, std::sync::Arc<ObjectFile>>,
    /// The files whose current compile is their verified baseline.
    current_is_built: std::collections::HashSet<PathBuf>,
}

impl<'p> Reloader<'p> {
    /// The process it patches.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// `cc` is the compile command without `-c`, `-o` and the source
    /// (e.g. `["gcc", "-O2", "-g"]`); objects go to `cache`.
    pub fn new(process: &'p dyn Process, cc: Vec<String>, cache: PathBuf) -> Result<Reloader<'p>, ReloadError> {
        // The mapped files first: if the loader maps more while the
        // modules are read, the next reload sees a difference and reads
        // them again.
        let mapped = mapped_files(process)?;
        // The program's build time, for `__DATE__`/`__TIME__` in relive's
        // compiles.
        let built = std::fs::metadata(format!("/proc/{}/exe", process.pid())).and_then(|m| m.modified());
        if let Ok(since_epoch) = built.map(|t| t.duration_since(std::time::UNIX_EPOCH)) {
            compile::set_build_epoch(since_epoch.map_or(0, |d| d.as_secs()));
        }
        Ok(Reloader {
            process,
            target: Target::open(process)?,
            mapped,
            cc,
            commands: HashMap::new(),
            cache,
            unverified: HashMap::new(),
            added_before_start: HashMap::new(),
            trust_baselines: false,
            every_unit_watched: false,
            awaits_other_file: false,
            refused_catch_up: Default::default(),
            patched_over: HashMap::new(),
            held: Default::default(),
            held_with: Default::default(),
            failing: Default::default(),
            retried: Default::default(),
            followers: fleet::Followers::None,
            tree_scan: None,
            on_compile: None,
            current: HashMap::new(),
            headers: HashMap::new(),
            warnings: HashMap::new(),
            warnings_said: HashMap::new(),
            stale_signatures: HashMap::new(),
            builds: 0,
            snapshot: Default::default(),
            baseline_us: HashMap::new(),
            baseline_check_us: HashMap::new(),
            texts: HashMap::new(),
            pending_texts: HashMap::new(),
            unsettled: HashMap::new(),
            saved_with: Vec::new(),
            not_compiling: Vec::new(),
            started_with: HashMap::new(),
            put_back_waiting: Vec::new(),
            built: HashMap::new(),
            current_is_built: Default::default(),
        })
    }

    /// Of `functions`, those the program runs a patch of by its journal:
    /// another relive command changed them, not only an edit of the file.
    pub fn patched_already(&self, functions: &[String]) -> Vec<String> {
        functions
            .iter()
            .filter(|f| self.target.journal.patches.iter().any(|p| &p.name == *f))
            .cloned()
            .collect()
    }

    /// The command `source` is compiled with.
    pub fn command(&self, source: &Path) -> CompileCommand {
        self.commands
            .get(source)
            .cloned()
            .unwrap_or_else(|| CompileCommand::plain(self.cc.clone(), source, "default"))
    }

    /// The variables of `source` (by the names people write) whose
    /// initial value in its baseline compile is not the one the program
    /// file gives them, when it (or a header it includes) was edited after
    /// the program was built: an initializer edited before relive started,
    /// which the program does not take.
    pub fn initial_values_changed(&self, source: &Path) -> Vec<String> {
        let Some(obj) = self.current.get(source).filter(|_| self.edited_since_build(source)) else {
            return Vec::new();
        };
        let mut names: Vec<String> = verify::initial_values_against_program(&self.target, obj)
            .iter()
            .map(|n| relive_patch::names::readable(n))
            .collect();
        names.sort();
        names
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
    pub fn set_command(&mut self, source: &Path, command: CompileCommand) {
        if !command.args.is_empty() {
            self.commands.insert(source.to_path_buf(), command);
        }
    }

    /// Records what the program runs for `source` (its object as built
    /// with the program), the base the first reload is diffed against,
    /// and compares it with the running code.
    pub fn baseline(&mut self, source: &Path) -> Result<Baseline, ReloadError> {
        let mut outcomes = self.baselines(&[source.to_path_buf()], 1, |_, _| {})?;
        Ok(outcomes
            .pop()
            .map_or_else(|| Baseline::CompileError("nothing compiled".into()), |(_, b)| b))
    }

    /// Compiles the baselines of `sources`, `jobs` at a time (the compiler
    /// runs in parallel; comparing with the process does not), calling
    /// `progress` after each compile with the number done.
    pub fn baselines(
        &mut self,
        sources: &[PathBuf],
        jobs: usize,
        progress: impl FnMut(usize, usize),
    ) -> Result<Vec<(PathBuf, Baseline)>, ReloadError> {
        let began = std::time::SystemTime::now();
        let mut compiled = self.compile_all(sources, jobs, (Macros::InDebugInfo, false), progress)?;
        // A file saved while it compiled may have been read half written
        // (an empty file compiles, into an object without functions, and
        // the next reload then "adds" every function): compiled again
        // until it stays the same across its compile.
        let modified = |source: &Path| std::fs::metadata(source).and_then(|m| m.modified()).ok();
        // Used here only: what the sources said when relive started.
        let snapshot = std::mem::take(&mut self.snapshot);
        // Sources saved since then whose baselines are the file's compile
        // after all (the snapshot's text did not compile).
        let mut from_file = std::collections::HashSet::new();
        for entry in &mut compiled {
            let mut since = began;
            for _ in 0..5 {
                if modified(&entry.0).is_none_or(|m| m <= since) {
                    break;
                }
                since = std::time::SystemTime::now();
                if let Some(again) = self
                    .compile_all(
                        std::slice::from_ref(&entry.0),
                        1,
                        (Macros::InDebugInfo, false),
                        |_, _| {},
                    )?
                    .pop()
                {
                    *entry = again;
                }
            }
            // Saved since relive started: what runs is the text of then,
            // and the save (waiting in the watch) is an edit of it.
            if let Some(text) = snapshot.changed_since(&entry.0) {
                self.builds += 1;
                let command = self.command(&entry.0);
                if let Some(show) = &self.on_compile {
                    show(&command);
                }
                let started = Instant::now();
                let result = compile::compile_text(&command, &entry.0, text, &self.cache, self.builds).result;
                // A compiler that cannot compile a copy in place (older
                // than GCC 8 or clang 10) leaves the file's own compile.
                if result.is_ok() {
                    *entry = (entry.0.clone(), result, started.elapsed().as_micros() as u64);
                } else {
                    from_file.insert(entry.0.clone());
                }
            }
        }
        let mut outcomes: Vec<(PathBuf, Baseline)> = compiled
            .into_iter()
            .map(|(source, result, compile_us)| {
                self.baseline_us.insert(source.clone(), compile_us);
                // The text the baseline was compiled from: the snapshot's
                // (the file's, unchanged since, or the copy compiled above).
                let text = snapshot.text(&source).filter(|_| !from_file.contains(&source));
                self.remember_text(&source, text);
                let outcome = self.adopt_baseline(&source, result);
                (source, outcome)
            })
            .collect();
        self.settle_shared_copies(&mut outcomes);
        Ok(outcomes)
    }

    /// An inline function or template instance (a weak, COMDAT symbol)
    /// is compiled into every file that uses it, and the program runs one
    /// file's copy: the linker keeps one. Another file's copy may differ
    /// from it (it calls that file's own local helpers, or clones), which
    /// says nothing about that file's compile. Such a difference is
    /// dropped where another file's compile matches the running copy (a
    /// LevelDB trial: `VersionEdit::~VersionEdit` from db_impl.cc ran, so
    /// version_set.cc was said to lack the build's options, a header edit
    /// was refused for it, and a later session called it an edit).
    fn settle_shared_copies(&mut self, outcomes: &mut [(PathBuf, Baseline)]) {
        {
            let current = &self.current;
            let mut checks: Vec<(&ObjectFile, &mut Verification)> = outcomes
                .iter_mut()
                .filter_map(|(source, outcome)| match outcome {
                    Baseline::Verified(check) | Baseline::Differs { check, .. } => {
                        Some((current.get(source.as_path())?, check))
                    }
                    Baseline::CompileError(_) => None,
                })
                .collect();
            verify::settle_inline_copies(&mut checks);
        }
        for (source, outcome) in outcomes.iter_mut() {
            let Baseline::Differs { check, .. } = outcome else {
                continue;
            };
            if check.differs.is_empty() {
                self.unverified.remove(source.as_path());
                *outcome = Baseline::Verified(check.clone());
            } else if let Some(differs) = self.unverified.get_mut(source.as_path()) {
                differs.retain(|(n, _)| check.differs.iter().any(|(d, _)| d == n));
            }
        }
    }

    /// Compiles `sources`, `jobs` at a time, their macros read as `macros`
    /// says: each one's object (or the compiler's message) and how long
    /// its compile took, in microseconds.
    fn compile_all(
        &mut self,
        sources: &[PathBuf],
        jobs: usize,
        (macros, of_saves): (Macros, bool),
        mut progress: impl FnMut(usize, usize),
    ) -> Result<Vec<Fresh>, ReloadError> {
        let commands: Vec<(PathBuf, CompileCommand, usize)> = sources
            .iter()
            .map(|s| {
                self.builds += 1;
                (s.clone(), self.command(s), self.builds)
            })
            .collect();
        if let Some(show) = &self.on_compile {
            commands.iter().for_each(|(_, c, _)| show(c));
        }
        let cache = self.cache.clone();
        let current = &self.current;
        let compile_one = |(source, command, n): &(PathBuf, CompileCommand, usize)| {
            let started = Instant::now();
            let result = compile(command, source, &cache, *n, (current.get(source), macros), of_saves);
            (result, started.elapsed().as_micros() as u64)
        };
        let compiled: Vec<_> = if let [one] = commands.as_slice() {
            // One file, the usual save: compiled on this thread. A thread
            // of its own cost its start and its exit (a tenth of a
            // millisecond) between the compile and the patch.
            let done = compile_one(one);
            progress(1, 1);
            vec![Some(done)]
        } else {
            let next = std::sync::atomic::AtomicUsize::new(0);
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::scope(|scope| {
                for _ in 0..jobs.clamp(1, commands.len().max(1)) {
                    let tx = tx.clone();
                    let (next, commands, compile_one) = (&next, &commands, &compile_one);
                    scope.spawn(move || loop {
                        let k = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(command) = commands.get(k) else {
                            break;
                        };
                        if tx.send((k, compile_one(command))).is_err() {
                            break;
                        }
                    });
                }
                drop(tx);
                let mut results: Vec<Option<_>> = (0..commands.len()).map(|_| None).collect();
                for (done, (k, result)) in rx.iter().enumerate() {
                    progress(done + 1, commands.len());
                    results[k] = Some(result);
                }
                results
            })
        };
        let mut out = Vec::new();
        for ((source, _, _), result) in commands.into_iter().zip(compiled) {
            let Some((compiled, ms)) = result else {
                continue;
            };
            if let Some(headers) = compiled.headers {
                self.headers.insert(source.clone(), headers);
            }
            match compiled.warnings {
                Some(warnings) => self.warnings.insert(source.clone(), warnings),
                None => self.warnings.remove(&source),
            };
            out.push((source, compiled.result, ms));
        }
        Ok(out)
    }

    /// Tries the compile commands `candidates` for `source` (whose
    /// baseline differs from the running code) until one compiles into
    /// exactly the running code: the build's options when the debug info
    /// did not record them (clang without `-grecord-command-line`). That
    /// one becomes the file's command. `None` when none does (the
    /// baseline stays as it was).
    pub fn find_command(
        &mut self,
        source: &Path,
        candidates: &[CompileCommand],
    ) -> Result<Option<CompileCommand>, ReloadError> {
        for candidate in candidates {
            self.builds += 1;
            if let Some(show) = &self.on_compile {
                show(candidate);
            }
            let compile::Compiled {
                result: Ok(obj),
                headers,
                ..
            } = compile(
                candidate,
                source,
                &self.cache,
                self.builds,
                (None, Macros::InDebugInfo),
                false,
            )
            else {
                continue;
            };
            let mut check = verify::against_process(&self.target, &obj);
            verify::set_patched_over_apart(&self.target, &obj, &mut check);
            if check.is_verified() && check.compared() {
                if let Some(headers) = headers {
                    self.headers.insert(source.to_path_buf(), headers);
                }
                self.set_command(source, candidate.clone());
                self.adopt_checked(source, obj, check);
                return Ok(Some(candidate.clone()));
            }
        }
        Ok(None)
    }

    /// Takes a baseline compile as what runs for `source`, after checking
    /// it against the process.
    fn adopt_baseline(&mut self, source: &Path, compiled: Result<ObjectFile, String>) -> Baseline {
        let obj = match compiled {
            Ok(obj) => obj,
            Err(message) => return Baseline::CompileError(message),
        };
        let started = Instant::now();
        let check = verify::against_process(&self.target, &obj);
        self.baseline_check_us
            .insert(source.to_path_buf(), started.elapsed().as_micros() as u64);
        self.adopt_checked(source, obj, check)
    }

    /// Takes `obj`, already compared with the process (`check`), as what
    /// runs for `source`.
    fn adopt_checked(&mut self, source: &Path, obj: ObjectFile, mut check: Verification) -> Baseline {
        // A function relive patched (another command, another copy of the
        // file) whose compile here is the program's own code: that patch
        // is the difference, not the compile command or an edit.
        verify::set_patched_over_apart(&self.target, &obj, &mut check);
        // Of those, the ones whose file was saved after that patch was
        // made: the save is the newer word (an edit put back while no
        // relive ran), an edit to catch up by taking the patch back; it
        // was said to stay "until a save changes it", and a save of the
        // same text changed nothing (a tree-sitter trial). A patch newer
        // than the file (a one-shot patch from another copy) stays.
        let saved = self.last_saved(source);
        let (newer_file, kept): (Vec<_>, Vec<_>) =
            std::mem::take(&mut check.patched_over)
                .into_iter()
                .partition(|(name, _)| {
                    let at = verify::patched_at(&self.target, &obj, name);
                    saved.zip(at).is_some_and(|(saved, at)| saved > at)
                });
        check.patched_over = kept;
        let explained: Vec<String> = newer_file.iter().map(|(name, _)| name.clone()).collect();
        for (name, _) in newer_file {
            check.differs.push((
                name,
                "it runs a relive patch made before its file was last saved, and the file compiles into the program's own code there".to_string(),
            ));
        }
        self.patched_over.insert(
            source.to_path_buf(),
            check.patched_over.iter().map(|(name, _)| name.clone()).collect(),
        );
        self.started_with
            .entry(source.to_path_buf())
            .or_insert_with(|| relive_patch::select::initial_values(&obj));
        self.current.insert(source.to_path_buf(), obj);
        if !check.absent.is_empty() && self.edited_since_build(source) {
            self.added_before_start
                .insert(source.to_path_buf(), check.absent.clone());
        }
        if check.is_verified() {
            self.unverified.remove(source);
            self.current_is_built.insert(source.to_path_buf());
            return Baseline::Verified(check);
        }
        self.unverified.insert(source.to_path_buf(), check.differs.clone());
        let edited = self.edited_since_build(source);
        // The build's whole command, and evidence that it compiles this
        // file as the build did: functions that match, or (when none does)
        // a file saved after the program was built, whose every function
        // may have been edited (a one-function file always is).
        // Differences a relive patch older than the file explains (see
        // above) are no sign of another compile command either.
        let explained_all = !explained.is_empty() && check.differs.iter().all(|(n, _)| explained.contains(n));
        let trusted = (self.command(source).complete && (!check.same.is_empty() || edited)) || explained_all;
        Baseline::Differs { check, edited, trusted }
    }

    /// `source` and the headers it includes.
    fn with_headers(&self, source: &Path) -> impl Iterator<Item = PathBuf> {
        std::iter::once(source.to_path_buf()).chain(self.headers.get(source).cloned().unwrap_or_default())
    }

    /// When `source` or a header it includes was last saved (seconds since
    /// the Unix epoch).
    fn last_saved(&self, source: &Path) -> Option<u64> {
        self.with_headers(source)
            .filter_map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
            .filter_map(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_secs())
            .max()
    }

    /// Whether `source` or a header it includes was modified after the
    /// program's file: an edit made while no relive ran, rather than a
    /// compile command unlike the build's.
    fn edited_since_build(&self, source: &Path) -> bool {
        !self.edited_after_build(source).is_empty()
    }

    /// Of `source` and the headers it includes, those modified after the
    /// program's file: what a start-up message names as edited (a header's
    /// edit was said to be an edit of the file that includes it).
    pub fn edited_after_build(&self, source: &Path) -> Vec<PathBuf> {
        let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        // The running image's time, not the path's: after a rebuild on
        // disk the path names a newer file than the one that runs.
        let running = relive_process::identity::verify(self.process, &self.target.modules.main).ok();
        let Some(built) = running.and_then(|v| modified(Path::new(&v.fingerprint.path))) else {
            return Vec::new();
        };
        // Each once, however the depfile spelled it (a zstd trial:
        // `lib/zstd.h` was listed twice).
        let mut seen = std::collections::HashSet::new();
        self.with_headers(source)
            .filter(|p| modified(p).is_some_and(|m| m > built))
            .filter(|p| seen.insert(p.canonicalize().unwrap_or_else(|_| p.clone())))
            .collect()
    }

    /// Patches the functions of `source`'s baseline that differ from the
    /// running code (an edit made before relive started), so the program
    /// runs what the file says now.
    pub fn catch_up(&mut self, source: &Path) -> Result<ReloadEvent, ReloadError> {
        Ok(self
            .catch_up_all(&[source.to_path_buf()])?
            .pop()
            .unwrap_or_else(|| ReloadEvent::new(source)))
    }

    /// [`Reloader::catch_up`] of several files as one transaction (a header
    /// edited before relive started differs in every file including it:
    /// they switch together, as a save of them would). One by one when
    /// that cannot be (one calls what another adds).
    pub fn catch_up_all(&mut self, sources: &[PathBuf]) -> Result<Vec<ReloadEvent>, ReloadError> {
        self.start_tree_scan();
        // Files whose edits add what these call go first, as a save of
        // them would: nothing calls their new functions before these are
        // patched.
        let mut events = Vec::new();
        for (source, functions) in self.providers_for(sources) {
            events.push(self.patch_baseline(&source, &functions)?);
        }
        events.extend(self.catch_up_sources(sources)?);
        Ok(events)
    }

    /// [`Reloader::catch_up_all`] of the files whose functions differ.
    fn catch_up_sources(&mut self, sources: &[PathBuf]) -> Result<Vec<ReloadEvent>, ReloadError> {
        if sources.len() < 2 {
            return self.catch_up_one_by_one(sources, "");
        }
        let start = Instant::now();
        // Every file caught up together runs its baseline afterwards.
        let together: Vec<(&Path, &ObjectFile)> = sources
            .iter()
            .filter_map(|s| Some((s.as_path(), self.current.get(s)?)))
            .collect();
        // A file that cannot be caught up is refused on its own (and says
        // why); the others go in one by one.
        let refused = sources.iter().find(|source| {
            let functions = self.differing_functions(source).unwrap_or_default();
            self.current.get(*source).is_some_and(|obj| {
                self.catch_up_signature_refusal(source, obj, &functions, &together)
                    .is_some()
                    || self.catch_up_layout_refusal(source, obj, &functions).is_some()
            })
        });
        if let Some(source) = refused {
            let why = format!("the catch-up of {} is refused", source.display());
            return self.catch_up_one_by_one(sources, &why);
        }
        // None of them goes in alone either: the change spans them.
        if let Some(refusal) = self.catch_up_callers_running(sources) {
            return Ok(self.refuse_catch_up(sources, &refusal));
        }
        let mut taken: Vec<(PathBuf, ObjectFile, Vec<usize>)> = Vec::new();
        for source in sources {
            let Some(functions) = self.differing_functions(source) else {
                continue;
            };
            let obj = self.current.remove(source).expect("a baseline to differ");
            taken.push((source.clone(), obj, functions));
        }
        self.refresh_target()?;
        self.bring_new_functions_they_call(&mut taken);
        let changes: Vec<Vec<String>> = taken
            .iter()
            .map(|(source, obj, functions)| since_build::changed_names(&self.target, source, obj, functions))
            .collect();
        let units: Vec<apply::Unit> = taken
            .iter()
            .zip(&changes)
            .map(|((_, obj, functions), changed)| apply::Unit {
                obj,
                base: None,
                built: None,
                functions,
                changed_signatures: changed,
            })
            .collect();
        let workers = self.settle_tree();
        let result = apply::patch_together(&mut self.target, &units, Timing::default());
        let result = match result {
            Ok(reports) => match self.spread(&workers, &units, &reports) {
                Ok(pids) => Ok((reports, pids)),
                Err(why) => Err(PatchError::Refused { what: why }),
            },
            Err(e) => Err(e),
        };
        drop(units);
        let names: Vec<String> = taken.iter().map(|(s, ..)| s.display().to_string()).collect();
        let mut events = Vec::new();
        let (reports, pids) = match result {
            Ok(done) => done,
            Err(e) => {
                // Nothing was changed: the baselines go back, and (unless
                // the process is gone) the files are caught up one by one,
                // each with its own word.
                for (source, obj, _) in taken {
                    self.current.insert(source, obj);
                }
                if let PatchError::Process(e) = e {
                    return Err(PatchError::Process(e).into());
                }
                return self.catch_up_one_by_one(sources, &e.to_string());
            }
        };
        for ((source, obj, _), report) in taken.into_iter().zip(reports) {
            let mut event = ReloadEvent::new(&source);
            record_patch(&mut event, &report);
            self.start_added_values(&source, &obj, &report);
            event.processes = pids.clone();
            event.processes_are = self.followers.described();
            self.settled_by(&source, &event.patched_names());
            note_together(&mut event, &source, &names);
            self.unverified.remove(&source);
            self.time_catch_up(&mut event, &source, start);
            self.current.insert(source, obj);
            events.push(event);
        }
        Ok(events)
    }

    /// Files not among `sources` whose edits made before relive started
    /// added functions that `sources`' baselines call, each with the
    /// functions it added (symbol indices): patched first, as saving them
    /// together would.
    fn providers_for(&self, sources: &[PathBuf]) -> Vec<(PathBuf, Vec<usize>)> {
        let called: std::collections::HashSet<&str> = sources
            .iter()
            .filter_map(|s| self.current.get(s))
            .flat_map(|obj| obj.symbols.iter().flat_map(|f| &f.relocs))
            .filter_map(|r| match &r.target {
                relive_patch::objfile::Target::Undefined(name) => Some(name.as_str()),
                _ => None,
            })
            .collect();
        let mut providers: Vec<(PathBuf, Vec<usize>)> = self
            .added_before_start
            .iter()
            .filter(|(file, added)| !sources.contains(file) && added.iter().any(|f| called.contains(f.as_str())))
            .filter_map(|(file, added)| {
                let obj = self.current.get(file)?;
                let functions = obj
                    .symbols
                    .iter()
                    .enumerate()
                    .filter(|(_, s)| added.contains(&s.name))
                    .map(|(i, _)| i)
                    .collect();
                Some((file.clone(), functions))
            })
            .collect();
        providers.sort();
        providers
    }

    /// The functions (symbol indices) of `source`'s baseline that differ
    /// from the running code; `None` when none does or there is no
    /// baseline.
    fn differing_functions(&self, source: &Path) -> Option<Vec<usize>> {
        let differs = self.unverified.get(source)?;
        let obj = self.current.get(source)?;
        let names: Vec<&str> = differs.iter().map(|(n, _)| n.as_str()).collect();
        Some(
            obj.symbols
                .iter()
                .enumerate()
                .filter(|(_, s)| names.contains(&s.name.as_str()))
                .map(|(i, _)| i)
                .collect(),
        )
    }

    /// Adds to each file caught up the global functions of its compile
    /// that the program lacks and that the functions caught up call: new
    /// functions an edit made before relive started added, which only
    /// differing functions were caught up without (an LMDB trial: `b.c`'s
    /// new `newf`, called from `a.c`, was left out, and `a.c` was held for
    /// it, said to be defined nowhere).
    fn bring_new_functions_they_call(&self, taken: &mut [(PathBuf, ObjectFile, Vec<usize>)]) {
        use relive_patch::link::Resolver;
        let called: std::collections::HashSet<String> = taken
            .iter()
            .flat_map(|(_, obj, functions)| functions.iter().flat_map(move |&i| &obj.symbols[i].relocs))
            .filter_map(|r| match &r.target {
                relive_patch::objfile::Target::Undefined(name) => Some(name.clone()),
                _ => None,
            })
            .collect();
        for (_, obj, functions) in taken.iter_mut() {
            for (i, s) in obj.symbols.iter().enumerate() {
                let new_function = s.kind == relive_patch::objfile::Kind::Function
                    && !s.local
                    && s.size > 0
                    && called.contains(&s.name)
                    && self.target.resolver.global(&s.name).is_none();
                if new_function && !functions.contains(&i) {
                    functions.push(i);
                }
            }
        }
    }

    /// Catches up `sources` one by one (they could not be patched as one
    /// step: `why`), a file that uses what another adds (a variable)
    /// after that one, as long as that makes progress.
    fn catch_up_one_by_one(&mut self, sources: &[PathBuf], why: &str) -> Result<Vec<ReloadEvent>, ReloadError> {
        let mut events = Vec::new();
        let mut pending: Vec<PathBuf> = sources.to_vec();
        // Those that use what another adds go again once the others are
        // in, as long as a pass patches one.
        let waiting = loop {
            let mut waiting = Vec::new();
            let mut progress = false;
            for source in std::mem::take(&mut pending) {
                self.awaits_other_file = false;
                let event = self.catch_up_one(&source)?;
                match std::mem::take(&mut self.awaits_other_file) {
                    true => waiting.push((source, event)),
                    false => {
                        progress |= event.event.applied();
                        events.push(event);
                    }
                }
            }
            if waiting.is_empty() || !progress {
                break waiting;
            }
            pending = waiting.into_iter().map(|(source, _)| source).collect();
        };
        // Tried again with the next save of any file (the one that adds
        // what they use).
        for (source, event) in waiting {
            events.push(self.hold_for_missing(source, event));
        }
        if sources.len() > 1 {
            for event in events.iter_mut().filter(|e| e.event.applied()) {
                event.notes.push(format!(
                    "caught up in a step of its own: the files edited before relive started could not be patched as one step ({why}), so each was patched alone, a file that uses what another adds after that one"
                ));
            }
        }
        Ok(events)
    }

    /// Events refusing the catch-up of `sources` (each with differing
    /// functions) for `why`; their next saves try again.
    fn refuse_catch_up(&mut self, sources: &[PathBuf], why: &str) -> Vec<ReloadEvent> {
        let mut events = Vec::new();
        let differing: Vec<&PathBuf> = sources
            .iter()
            .filter(|s| self.differing_functions(s).is_some())
            .collect();
        for source in differing {
            let mut event = ReloadEvent::new(source);
            event.event = EventKind::Refused;
            event.message = Some(catch_up_refusal(why.to_string()));
            self.refused_catch_up.insert(source.clone());
            events.push(event);
        }
        events
    }

    fn catch_up_one(&mut self, source: &Path) -> Result<ReloadEvent, ReloadError> {
        match self.differing_functions(source) {
            Some(functions) => self.patch_baseline(source, &functions),
            None => Ok(ReloadEvent::new(source)),
        }
    }

    /// Patches `functions` of `source`'s baseline (what the file says now)
    /// into the program: a catch-up of an edit made before relive started.
    fn patch_baseline(&mut self, source: &Path, functions: &[usize]) -> Result<ReloadEvent, ReloadError> {
        let start = Instant::now();
        let mut event = ReloadEvent::new(source);
        let baseline = &self.current[source];
        let refusal = match self
            // Alone: no other file's catch-up comes with it.
            .catch_up_signature_refusal(source, baseline, functions, &[])
            .or_else(|| self.catch_up_layout_refusal(source, baseline, functions))
        {
            Some(refusal) => Some(catch_up_refusal(refusal)),
            None => match self.catch_up_callers_running(&[source.to_path_buf()]) {
                Some(refusal) => Some(catch_up_refusal(refusal)),
                // Calls by a prototype the program does not run: held for
                // the other file (its catch-up may come next), not refused,
                // so no word of a rebuild.
                None => self
                    .callee_mismatch(source, baseline, functions, &[])
                    .inspect(|_| self.awaits_other_file = true),
            },
        };
        if let Some(refusal) = refusal {
            event.event = EventKind::Refused;
            event.message = Some(refusal);
            self.refused_catch_up.insert(source.to_path_buf());
            self.time_catch_up(&mut event, source, start);
            return Ok(event);
        }
        let obj = self.current.remove(source).expect("a baseline to patch");
        // Functions a relive patch replaced, which the file has as the
        // program was built (saved so after that patch): their patches are
        // taken back, not made again with the program's own code.
        let mut functions = functions.to_vec();
        self.take_back_what_is_original(source, &obj, &mut functions, &mut event, false);
        if functions.is_empty() {
            self.unverified.remove(source);
            self.refused_catch_up.remove(source);
            self.current.insert(source.to_path_buf(), obj);
            self.time_catch_up(&mut event, source, start);
            return Ok(event);
        }
        let functions = functions.as_slice();
        let changed = since_build::changed_names(&self.target, source, &obj, functions);
        self.stale_signatures.insert(source.to_path_buf(), changed);
        let result = self.apply(&mut event, source, &obj, None, functions);
        if event.event.applied() {
            self.unverified.remove(source);
            self.added_before_start.remove(source);
            self.refused_catch_up.remove(source);
        } else if event.event == EventKind::Refused {
            self.refused_catch_up.insert(source.to_path_buf());
            // Not one held for another file's symbol (see `apply`).
            if !self.awaits_other_file {
                event.message = event.message.take().map(catch_up_refusal);
            }
        }
        self.current.insert(source.to_path_buf(), obj);
        result?;
        self.time_catch_up(&mut event, source, start);
        Ok(event)
    }

    /// A catch-up's compile was `source`'s baseline compile: its time is
    /// the event's compile time, and part of its total.
    fn time_catch_up(&self, event: &mut ReloadEvent, source: &Path, start: Instant) {
        let compile = self.baseline_us.get(source).copied().unwrap_or_default();
        let compared = self.baseline_check_us.get(source).copied().unwrap_or_default();
        event.timing_us.compile = compile;
        event.timing_us.diff = compared;
        event.timing_us.total = compile + compared + start.elapsed().as_micros() as u64;
    }

    /// Recompiles `source` and patches what changed since the last build.
    pub fn reload(&mut self, source: &Path) -> Result<ReloadEvent, ReloadError> {
        let mut events = self.reload_all(&[source.to_path_buf()], 1)?;
        Ok(events.pop().unwrap_or_else(|| ReloadEvent::new(source)))
    }

    /// Reloads files saved together: compiled once each, `jobs` at a time,
    /// then each one's changes patched in turn. Each event's `compile` time
    /// is its own compile's, and `total` counts from the start of all.
    pub fn reload_all(&mut self, sources: &[PathBuf], jobs: usize) -> Result<Vec<ReloadEvent>, ReloadError> {
        let batch = self.compile_batch(sources, jobs)?;
        self.patch_batch(batch)
    }

    /// The first half of [`Reloader::reload_all`]: compiles `sources` (and
    /// the files an earlier batch held back), patching nothing yet, so
    /// that files saved while they compile can [`join`](Self::join) them.
    pub fn compile_batch(&mut self, sources: &[PathBuf], jobs: usize) -> Result<Batch, ReloadError> {
        self.start_tree_scan();
        let start = Instant::now();
        // Files held back by an earlier failed batch go with this one.
        let mut sources: Vec<PathBuf> = sources.to_vec();
        self.retried.clear();
        for held in std::mem::take(&mut self.held) {
            if !sources.contains(&held) {
                sources.push(held.clone());
                self.retried.insert(held);
            }
        }
        let compiled = self.compile_fresh(&sources, jobs)?;
        Ok(Batch {
            sources,
            compiled,
            start,
            dropped: Vec::new(),
        })
    }

    /// Adds `sources` to `batch`, compiling them now: files saved while
    /// the batch compiled, patched with it. One already in the batch was
    /// saved again, so its earlier compile is dropped.
    pub fn join(&mut self, batch: &mut Batch, sources: &[PathBuf], jobs: usize) -> Result<(), ReloadError> {
        let (dropped, kept) = std::mem::take(&mut batch.compiled)
            .into_iter()
            .partition(|(source, _, _)| sources.contains(source));
        batch.compiled = kept;
        let dropped: Vec<Fresh> = dropped;
        batch
            .dropped
            .extend(dropped.into_iter().map(|(source, _, us)| (source, us)));
        for source in sources {
            if !batch.sources.contains(source) {
                batch.sources.push(source.clone());
            }
        }
        let compiled = self.compile_fresh(sources, jobs)?;
        batch.compiled.extend(compiled);
        Ok(())
    }

    /// Compiles `sources`; a failure on a file written again meanwhile is
    /// marked as superseded (see below).
    fn compile_fresh(&mut self, sources: &[PathBuf], jobs: usize) -> Result<Vec<Fresh>, ReloadError> {
        let began = std::time::SystemTime::now();
        // An empty file is a save not written yet (an editor that empties
        // the file, then writes it): compiled, it defines none of the
        // running functions, and the next save, compared with it, would
        // name every function patched. Its next write brings it back.
        let sources: Vec<PathBuf> = sources.iter().filter(|s| !is_blank(s)).cloned().collect();
        // A save's compile is waited for: its macros are listed on a core
        // it leaves idle, not written into its debug information, unless
        // the batch's compiles take every core.
        let macros = match sources.len() < jobs {
            true => Macros::Listed,
            false => Macros::InDebugInfo,
        };
        let compiled = self.compile_all(&sources, jobs, (macros, true), |_, _| {})?;
        // A file written again while it compiled (an editor saving in
        // pieces) failed on a half-written text: the newer save, already
        // queued, is what counts.
        // A failure right after a write waits a moment for the rest of it.
        Ok(compiled
            .into_iter()
            .map(|(source, result, ms)| {
                let modified = || std::fs::metadata(&source).and_then(|m| m.modified()).ok();
                let rewritten = match (&result, modified()) {
                    (Err(_), Some(m)) if m > began => true,
                    (Err(_), Some(m)) => {
                        let age = m.elapsed().unwrap_or(WRITE_GRACE);
                        if age < WRITE_GRACE {
                            std::thread::sleep(WRITE_GRACE - age);
                        }
                        modified() != Some(m)
                    }
                    _ => false,
                };
                match result {
                    Err(_) if rewritten => (source, Err(SUPERSEDED.to_string()), ms),
                    other => (source, other, ms),
                }
            })
            .collect())
    }

    /// The second half of [`Reloader::reload_all`]: patches what `batch`'s
    /// compiles changed, together when they can be.
    pub fn patch_batch(&mut self, mut batch: Batch) -> Result<Vec<ReloadEvent>, ReloadError> {
        let dropped = std::mem::take(&mut batch.dropped);
        // A file still empty once its saves settled was not compiled (see
        // `compile_fresh`): said, or emptying a file printed nothing.
        let blank: Vec<ReloadEvent> = batch
            .sources
            .iter()
            .filter(|s| !batch.compiled.iter().any(|(c, _, _)| c == *s) && is_blank(s))
            .map(|s| {
                let mut event = ReloadEvent::new(s);
                event.event = EventKind::NotCompiled;
                event.message = Some(
                    "the file is empty, taken for a save still being written: not compiled, and the program runs on with the code it has".into(),
                );
                event.timing_us.total = batch.start.elapsed().as_micros() as u64;
                event
            })
            .collect();
        let mut events = self.patch_compiled(batch)?;
        for event in &mut events {
            drop_untouched_table_notes(event);
            let again: Vec<u64> = dropped
                .iter()
                .filter(|(source, _)| source.display().to_string() == event.file)
                .map(|&(_, us)| us)
                .collect();
            if !again.is_empty() {
                let spent: u64 = again.iter().sum();
                // A line that shows a compile time shows the last one's
                // (one that says "no function changed" shows the total).
                let shown = match event.event {
                    EventKind::Patched | EventKind::Unreachable | EventKind::Reverted => {
                        "; the compile time above is the last one's"
                    }
                    _ => "",
                };
                event.notes.push(format!(
                    "compiled {} times: it (or a header it includes) was saved again while it compiled, so the earlier compile{} ({:.1} ms) {} dropped{shown}",
                    again.len() + 1,
                    if again.len() == 1 { "" } else { "s" },
                    spent as f64 / 1000.0,
                    if again.len() == 1 { "was" } else { "were" },
                ));
            }
            let said = std::mem::take(&mut event.if_patched);
            if event.event.applied() {
                event.file_notes.extend(said.iter().cloned());
                event.notes.extend(said);
            } else {
                event.as_built.clear(); // nothing was patched again
            }
            let file = PathBuf::from(&event.file);
            match event.event {
                EventKind::Refused | EventKind::CompileError => {
                    self.failing.insert(file);
                }
                EventKind::Held => {}
                _ if event.event.applied() || event.event == EventKind::NoChange => {
                    self.failing.remove(&file);
                    self.held_with.remove(&file);
                }
                _ => {}
            }
        }
        events.extend(blank);
        Ok(events)
    }

    fn patch_compiled(&mut self, batch: Batch) -> Result<Vec<ReloadEvent>, ReloadError> {
        let Batch {
            sources,
            compiled,
            start,
            ..
        } = batch;
        self.saved_with.clear();
        self.not_compiling = compiled
            .iter()
            .filter(|(_, result, _)| result.is_err())
            .map(|(source, _, _)| source.clone())
            .collect();
        // Why files saved together were patched one by one, when they could
        // not be patched as one: said with each, or the user took the
        // separate lines (and pauses) for one transaction gone wrong.
        let mut split: Option<String> = None;
        let compiled = if compiled.len() > 1 {
            match self.reload_together(compiled, start)? {
                Together::Done(events) => return Ok(events),
                Together::OneByOne(compiled, why) => {
                    split = why;
                    compiled
                }
                Together::Without(waiting, why, kind, mut compiled) => {
                    compiled.retain(|(source, _, _)| *source != waiting);
                    let sources = sources.into_iter().filter(|s| *s != waiting).collect();
                    let mut events = self.patch_compiled(Batch {
                        sources,
                        compiled,
                        start,
                        dropped: Vec::new(),
                    })?;
                    let mut left_out = ReloadEvent::new(&waiting);
                    left_out.event = kind;
                    left_out.message = Some(why);
                    left_out.timing_us.total = start.elapsed().as_micros() as u64;
                    // Refused: it waits for its own next save.
                    if kind == EventKind::Held {
                        self.held.insert(waiting);
                    }
                    events.push(left_out);
                    return Ok(events);
                }
            }
        } else {
            compiled
        };
        let mut events = Vec::new();
        let mut waiting = Vec::new();
        // Patched one by one, the files of this save still go in now: none
        // waits for another of them (see `waits_for_unsettled`).
        self.saved_with = compiled.iter().map(|(source, _, _)| source.clone()).collect();
        for (source, result, compile_us) in compiled {
            // A copy to patch again later, when several files are saved together.
            let kept = if sources.len() > 1 {
                result.as_ref().ok().cloned()
            } else {
                None
            };
            let event = self.reload_compiled(&source, result, compile_us, start)?;
            match (std::mem::take(&mut self.awaits_other_file), kept) {
                // It calls something another of the files adds: again
                // once the others are in.
                (true, Some(obj)) => waiting.push((source, obj, compile_us, event)),
                (true, None) => events.push(self.hold_for_missing(source, event)),
                _ => events.push(event),
            }
        }
        // Files that call what other files of the same save add are patched
        // after them, as long as that makes progress.
        while !waiting.is_empty() {
            let mut still = Vec::new();
            let before = waiting.len();
            for (source, obj, compile_us, _) in std::mem::take(&mut waiting) {
                let event = self.reload_compiled(&source, Ok(obj.clone()), compile_us, start)?;
                if std::mem::take(&mut self.awaits_other_file) {
                    still.push((source, obj, compile_us, event));
                } else {
                    events.push(event);
                }
            }
            if still.len() == before {
                for (source, _, _, event) in still {
                    events.push(self.hold_for_missing(source, event));
                }
                break;
            }
            waiting = still;
        }
        self.saved_with.clear();
        if let Some(why) = split {
            for event in events.iter_mut().filter(|e| e.event.applied()) {
                event.notes.push(format!("patched in a step of its own: {why}"));
            }
        }
        Ok(events)
    }

    /// Why `functions` of `obj` (compiled from `source`, an edit made
    /// before relive started) must not be caught up: a type they use has
    /// another layout than the program was built with, and the program's
    /// data has the old one (a zlib re-check: `gz_state` grew before
    /// `relive watch` started, the catch-up patched `gz_open` and the
    /// others, and the program's open reader crashed in `free`).
    fn catch_up_layout_refusal(&self, source: &Path, obj: &ObjectFile, functions: &[usize]) -> Option<String> {
        let types = since_build::layout_changes(&self.target, source, obj, functions)?;
        (!types.is_empty()).then(|| {
            format!(
                "the layout of a type the edit to catch up uses is not the one the program was built with ({}); data of that type the program may already have (on its heap, in its globals, or made while a call runs) keeps the old layout and the new code would misread it, so rebuild the program and restart it",
                types.join("; ")
            )
        })
    }

    /// The types whose layout differs between the program as built and
    /// `new` among those any function of `new` uses, when some do (not the
    /// baseline's: one compiled after a header grew and shrank back said
    /// the program kept "the old layout" it in fact had, and refused a
    /// correct edit: a re-check).
    fn layout_changed_without_code(&self, source: &Path, new: &ObjectFile) -> Option<String> {
        let functions: Vec<usize> = (0..new.symbols.len())
            .filter(|&i| new.symbols[i].kind == relive_patch::objfile::Kind::Function && new.symbols[i].size > 0)
            .collect();
        let types = match since_build::layout_changes(&self.target, source, new, &functions) {
            Some(types) => types,
            None => {
                let names: Vec<&str> = functions.iter().map(|&i| new.symbols[i].name.as_str()).collect();
                relive_patch::type_layout::changed(self.current.get(source)?, new, &names)
            }
        };
        (!types.is_empty()).then(|| {
            // Enumerations' values are no layout (a Lua re-check).
            let what = match relive_patch::type_layout::only_values(&types) {
                true => "the values of an enumeration this file uses changed",
                false => "the layout of a type this file uses changed",
            };
            format!("{what} ({})", types.join("; "))
        })
    }

    /// `functions` of `new` less those `old` lacks (by name) that are the
    /// code the program runs already.
    fn without_running_code(&self, old: Option<&ObjectFile>, new: &ObjectFile, functions: Vec<usize>) -> Vec<usize> {
        let Some(old) = old else { return functions };
        let in_old = |name: &str| {
            old.symbols
                .iter()
                .any(|s| s.name == name && s.kind == relive_patch::objfile::Kind::Function)
        };
        let reappeared: Vec<&str> = functions
            .iter()
            .map(|&i| new.symbols[i].name.as_str())
            .filter(|name| !in_old(name))
            .collect();
        if reappeared.is_empty() {
            return functions;
        }
        let check = relive_patch::verify::functions_against_process(&self.target, new, |n| reappeared.contains(&n));
        functions
            .into_iter()
            .filter(|&i| !check.same.contains(&new.symbols[i].name))
            .collect()
    }

    /// Why `source`, held when files saved with it failed, still waits:
    /// one of them (not in this `batch`) still fails, and this compile of
    /// `source` may depend on the same change (a header both include).
    fn partners_still_failing(&self, source: &Path, batch: &[(&Path, &ObjectFile)]) -> Option<String> {
        let partners = self.held_with.get(source)?;
        let failing: Vec<String> = partners
            .iter()
            .filter(|p| self.failing.contains(*p) && !batch.iter().any(|(f, _)| f == p))
            .map(|p| p.display().to_string())
            .collect();
        (!failing.is_empty()).then(|| {
            format!(
                "not patched: it was saved with {}, which {} still refused or does not compile, and this compile may depend on the same change (a header both include: a size or a value no debug information shows); it is patched with {} once {} patched, or with that change put back",
                failing.join(", "),
                if failing.len() == 1 { "is" } else { "are" },
                if failing.len() == 1 { "that file" } else { "those files" },
                if failing.len() == 1 { "it is" } else { "they are" },
            )
        })
    }

    /// A file refused for want of another file's change (it calls what
    /// nothing defines yet, or changes a signature its callers in other
    /// files do not follow yet) is tried again with the next save of any
    /// file, so it is patched once that one is: it was left unpatched,
    /// with nothing telling the user.
    fn hold_for_missing(&mut self, source: PathBuf, mut event: ReloadEvent) -> ReloadEvent {
        event.event = EventKind::Held;
        if let Some(message) = &mut event.message {
            message.push_str("; relive tries this file again when another file is saved");
        }
        self.held.insert(source);
        event
    }

    /// Diffs a fresh compile of `source` against what runs and patches the
    /// difference.
    fn reload_compiled(
        &mut self,
        source: &Path,
        compiled: Result<ObjectFile, String>,
        compile_us: u64,
        start: Instant,
    ) -> Result<ReloadEvent, ReloadError> {
        let (new, functions, mut event) = match self.prepare_reload(source, compiled, compile_us, start, &[])? {
            Step::Done(event) => return Ok(event),
            Step::Patch { new, functions, event } => (*new, functions, event),
        };
        // Out of the map while the patch borrows `self` (no copy of the
        // object on every reload); back in, or replaced by the new one.
        let old = self.current.remove(source);
        let result = self.apply(&mut event, source, &new, old.as_ref(), &functions);
        self.settle(source, new, old, &mut event);
        result?;
        event.timing_us.total = start.elapsed().as_micros() as u64;
        Ok(event)
    }

    /// Files saved together, patched as one transaction when each has
    /// functions to patch and nothing stands in the way; otherwise (one
    /// file needs what another adds, their code belongs to different
    /// modules) the compiles are handed back to be patched one by one.
    fn reload_together(&mut self, compiled: Vec<Fresh>, start: Instant) -> Result<Together, ReloadError> {
        // Whether each would be patched, judged without touching anything
        // (a refusal, a compile error or no change is its own event).
        if compiled
            .iter()
            .any(|(source, result, _)| result.is_ok() && !self.current.contains_key(source))
        {
            // A first good compile is compared with the running code.
            return Ok(Together::OneByOne(compiled, None));
        }
        let mut ready = Vec::new();
        let mut settled = Vec::new();
        // Each file's new compile, for the others' checks: a signature
        // change is patched when every caller is saved with it.
        let batch: Vec<(&Path, &ObjectFile)> = compiled
            .iter()
            .filter_map(|(source, result, _)| Some((source.as_path(), result.as_ref().ok()?)))
            .collect();
        self.put_back_waiting.clear();
        for (source, result, compile_us) in &compiled {
            let step = match result {
                Ok(obj) => self.prepare_reload(source, Ok(obj.clone()), *compile_us, start, &batch)?,
                Err(message) => self.prepare_reload(source, Err(message.clone()), *compile_us, start, &batch)?,
            };
            match step {
                Step::Patch { new, functions, event } => ready.push((source.clone(), *new, functions, event)),
                Step::Done(event) if std::mem::take(&mut self.awaits_other_file) => {
                    settled.push(self.hold_for_missing(source.clone(), event));
                }
                Step::Done(event) => settled.push(event),
            }
        }
        ready = self.take_back_together(ready, &mut settled, start);
        // A held file tried again with this save and held again is not
        // patched, but the others' checks read its new compile as what
        // would run with them: they are judged again without it (a libxz
        // trial: a caller's file went in alone, calling the build's
        // `lzma_check_init`, reverted by another command, with the
        // arguments of the held file's new signature).
        // A file refused again goes the same way, but keeps its refusal
        // and waits for its own next save.
        let still_held = settled.iter().find(|e| {
            self.retried.contains(Path::new(&e.file))
                && matches!(e.event, EventKind::Held | EventKind::Refused)
                && compiled
                    .iter()
                    .any(|(source, result, _)| result.is_ok() && source == Path::new(&e.file))
        });
        if let Some(held) = still_held.filter(|_| !ready.is_empty()) {
            let why = held.message.clone().unwrap_or_default();
            return Ok(Together::Without(PathBuf::from(&held.file), why, held.event, compiled));
        }
        // All or nothing: a file saved with one that did not compile or
        // was refused is not patched alone (a change spanning files would
        // run half done: a caller whose callee kept its old signature);
        // it is held, and patched with the next save of any file.
        // A held file tried again with this save was not saved with it:
        // still waiting, it holds back none of the files saved now (a
        // trial's save of an unrelated file was held "so that the files
        // saved together are patched together").
        let failed: Vec<String> = settled
            .iter()
            .filter(|e| !self.retried.contains(Path::new(&e.file)))
            .filter_map(|e| {
                let why = match e.event {
                    EventKind::CompileError => "does not compile",
                    EventKind::Superseded => "is being written again",
                    EventKind::Refused => "was refused",
                    EventKind::Held => "waits for another file",
                    _ => return None,
                };
                Some(format!("{} ({why})", e.file))
            })
            .collect();
        if !failed.is_empty() && !ready.is_empty() {
            let mut events = settled;
            for (source, _, _, mut event) in ready {
                event.event = EventKind::Held;
                event.message = Some(format!(
                    "not patched, so that the files saved together are patched together: {}; it is patched with the next good save",
                    failed.join(", ")
                ));
                event.timing_us.total = start.elapsed().as_micros() as u64;
                let partners = events
                    .iter()
                    .filter(|e| {
                        matches!(e.event, EventKind::CompileError | EventKind::Refused)
                            && !self.retried.contains(Path::new(&e.file))
                    })
                    .map(|e| PathBuf::from(&e.file));
                self.held_with.entry(source.clone()).or_default().extend(partners);
                self.held.insert(source);
                events.push(event);
            }
            return Ok(Together::Done(events));
        }
        if ready.len() < 2 {
            // One file to patch (the others unchanged): patched alone, from
            // the diff just made rather than a second one.
            let mut events = settled;
            for (source, new, functions, mut event) in ready {
                let old = self.current.remove(&source);
                let result = self.apply(&mut event, &source, &new, old.as_ref(), &functions);
                self.settle(&source, new, old, &mut event);
                result?;
                event.timing_us.total = start.elapsed().as_micros() as u64;
                // Refused for want of what another file will add (a
                // variable none of its file's functions uses yet): tried
                // again with the next save, as a file saved alone is. It
                // was left refused, and the save that then added the
                // variable patched that file alone: the edit was lost (a
                // zstd re-check).
                match std::mem::take(&mut self.awaits_other_file) {
                    true => events.push(self.hold_for_missing(source, event)),
                    false => events.push(event),
                }
            }
            return Ok(Together::Done(events));
        }
        self.refresh_target()?;
        let olds: Vec<Option<ObjectFile>> = ready.iter().map(|(source, ..)| self.current.remove(source)).collect();
        let changes: Vec<Vec<String>> = ready
            .iter()
            .map(|(source, ..)| self.stale_signatures.get(source).cloned().unwrap_or_default())
            .collect();
        let builts: Vec<Option<std::sync::Arc<ObjectFile>>> = ready
            .iter()
            .map(|(source, ..)| self.built.get(source).cloned())
            .collect();
        let units: Vec<apply::Unit> = ready
            .iter()
            .zip(&olds)
            .zip(&changes)
            .zip(&builts)
            .map(|((((_, new, functions, _), old), changed), built)| apply::Unit {
                obj: new,
                base: old.as_ref(),
                built: built.as_deref(),
                functions,
                changed_signatures: changed,
            })
            .collect();
        let result = apply::patch_together(&mut self.target, &units, Timing::default());
        drop(units);
        let reports = match result {
            Ok(reports) => reports,
            Err(e) => {
                // Nothing was changed.
                for ((source, ..), old) in ready.iter().zip(olds) {
                    if let Some(old) = old {
                        self.current.insert(source.clone(), old);
                    }
                }
                return match e {
                    PatchError::Process(e) => Err(PatchError::Process(e).into()),
                    // One calls what another adds: patched one by one,
                    // the caller after the callee.
                    PatchError::Link(relive_patch::link::LinkError::MissingSymbol { symbol, user }) => {
                        // Or no file adds it (a file held for it, tried
                        // again with this save): it waits on, alone.
                        // The file whose code uses it waits; the others
                        // go in together without it, so a signature change
                        // saved with its callers stays one step (one by one,
                        // it was held with advice to save the files
                        // together, which they were: a re-check).
                        let defines = |new: &ObjectFile| new.symbols.iter().any(|s| s.name == symbol && !s.local);
                        let waiting = ready
                            .iter()
                            .find(|(_, new, ..)| new.symbols.iter().any(|s| s.name == user))
                            .map(|(source, ..)| source.clone());
                        if let Some(waiting) = waiting.filter(|_| ready.len() > 1) {
                            let provider = ready
                                .iter()
                                .find(|(source, new, ..)| *source != waiting && defines(new))
                                .map(|(source, ..)| source.display().to_string());
                            let why = match provider {
                                Some(provider) => format!(
                                    "{user} uses {symbol}, which {provider} (saved with it) defines but its patch does not bring into the program (a new function or variable comes into the program with a patched function of its file that uses it), so this file waits and the others saved with it go on without it; it is tried again with the next save"
                                ),
                                None => format!(
                                    "{user} uses {symbol}, which neither the program nor any file saved with it adds{}, so this file waits and the others saved with it go on without it; it is tried again with the next save",
                                    self.variable_only_provider(&waiting.display().to_string(), &symbol)
                                        .unwrap_or_default()
                                ),
                            };
                            return Ok(Together::Without(waiting, why, EventKind::Held, compiled));
                        }
                        let added_here = ready.iter().any(|(_, new, ..)| defines(new));
                        let why = match added_here {
                            true => format!(
                                "{user} uses {symbol}, which another of the files saved with it adds, so they were patched one by one, the one that adds it first"
                            ),
                            false => format!(
                                "{user} uses {symbol}, which none of the files adds yet, so they were patched one by one"
                            ),
                        };
                        Ok(Together::OneByOne(compiled, Some(why)))
                    }
                    // Code of the program and of a library: one module's
                    // code per transaction (they were all refused, the
                    // message saying they are patched one at a time).
                    PatchError::TwoModules { module, other, .. } => Ok(Together::OneByOne(
                        compiled,
                        Some(format!(
                            "they change code of two modules ({} and {}), whose code goes near each, so they were patched one by one",
                            Path::new(&module).file_name().unwrap_or_default().to_string_lossy(),
                            Path::new(&other).file_name().unwrap_or_default().to_string_lossy()
                        )),
                    )),
                    e => {
                        let mut events = settled;
                        let why = e.to_string();
                        for (_, _, _, mut event) in ready {
                            event.event = EventKind::Refused;
                            event.message = Some(format!("the files saved together were not patched: {why}"));
                            event.timing_us.total = start.elapsed().as_micros() as u64;
                            events.push(event);
                        }
                        Ok(Together::Done(events))
                    }
                };
            }
        };
        let names: Vec<String> = ready.iter().map(|(source, ..)| source.display().to_string()).collect();
        let mut events = settled;
        for (((source, new, _, mut event), old), report) in ready.into_iter().zip(olds).zip(reports) {
            record_patch(&mut event, &report);
            if let Some(old) = &old {
                event.inlined_edits = edited::inlined_edits(old, &new, &event.patched_names());
            }
            self.start_added_values(&source, &new, &report);
            note_together(&mut event, &source, &names);
            self.settle(&source, new, old, &mut event);
            event.timing_us.total = start.elapsed().as_micros() as u64;
            events.push(event);
        }
        Ok(Together::Done(events))
    }

    /// What reloading `source` comes to before anything is patched: an
    /// event already (a compile error, a refusal, no change, a first
    /// compile), or functions of the new compile to patch.
    fn prepare_reload(
        &mut self,
        source: &Path,
        compiled: Result<ObjectFile, String>,
        compile_us: u64,
        start: Instant,
        batch: &[(&Path, &ObjectFile)],
    ) -> Result<Step, ReloadError> {
        let us = |t: Instant| t.elapsed().as_micros() as u64;
        self.awaits_other_file = false;
        let mut event = ReloadEvent::new(source);
        event.timing_us.compile = compile_us;
        if compiled.is_ok() {
            event.compiler_warnings = self.warnings.get(source).cloned();
            if let Some(warnings) = &event.compiler_warnings {
                // The same, where they are aside: an edit that adds a line
                // moves every warning below it (a jq trial reprinted 566
                // lines at each such save).
                let same = |said: &String| without_places(said) == without_places(warnings);
                event.compiler_warnings_repeated = self.warnings_said.get(source).is_some_and(same);
                self.warnings_said.insert(source.to_path_buf(), warnings.clone());
            }
        }
        let new = match compiled {
            Ok(obj) => obj,
            Err(message) => {
                event.event = if message == SUPERSEDED {
                    EventKind::Superseded
                } else {
                    EventKind::CompileError
                };
                let hint = match event.event {
                    EventKind::CompileError => self.missing_option_hint(source, &message),
                    _ => String::new(),
                };
                event.message = Some(message + &hint);
                event.timing_us.total = us(start);
                return Ok(Step::Done(event));
            }
        };
        if !self.current.contains_key(source) {
            return self.first_compile(source, new, event, start).map(Step::Done);
        }
        let diff_start = Instant::now();
        let old = self.current.get(source);
        let follow = |name: &str| self.callers_follow(source, &new, name, batch);
        // Layouts against the program as built where its DWARF says (a
        // baseline compiled after a header changed agrees with the new
        // compile, not with the program's data: a re-check).
        let layouts = |names: &[&str]| -> Vec<String> {
            let functions: Vec<usize> = (0..new.symbols.len())
                .filter(|&i| names.contains(&new.symbols[i].name.as_str()))
                .collect();
            match since_build::layout_changes(&self.target, source, &new, &functions) {
                Some(types) => types,
                None => old.map_or_else(Vec::new, |old| relive_patch::type_layout::changed(old, &new, names)),
            }
        };
        let functions = match relive_patch::select::select_checking_layouts(old, &new, &follow, Some(&layouts)) {
            Ok(mut selected) => {
                // A value put back as the program started with it is no
                // change to speak of.
                let mut put_back = Vec::new();
                if let Some(started) = self.started_with.get(source) {
                    for name in &selected.initial_values {
                        let i = new.symbols.iter().position(|s| &s.name == name);
                        let now = i.and_then(|i| relive_patch::select::initial_value(&new, i));
                        if now.is_some() && now.as_ref() == started.get(name) {
                            let note = relive_patch::select::initial_value_note(&relive_patch::names::readable(name));
                            selected.notes.retain(|n| *n != note);
                            put_back.push(name);
                        }
                    }
                }
                event.initial_values_kept = selected
                    .initial_values
                    .iter()
                    .filter(|name| !put_back.contains(name))
                    .map(|name| relive_patch::names::readable(name))
                    .collect();
                // Said whether or not a function changed with it: the
                // edit looked applied while the old value ran on.
                event.notes.extend(selected.notes);
                event.if_patched.extend(selected.if_patched);
                event.table_readers = selected.table_readers;
                if let Some(refusal) = self.callers_running(
                    source,
                    &new,
                    (&selected.new_signatures, &selected.names_moved),
                    &selected.functions,
                    batch,
                ) {
                    return Ok(Step::refused(event, refusal, start));
                }
                selected.functions
            }
            Err(PatchError::Refused { what }) => {
                let advice = old.and_then(|old| self.signature_advice(source, old, &new));
                // A signature change whose callers are in other files (all
                // watched: otherwise the advice is to watch them, and no
                // save can bring the change in).
                self.awaits_other_file = self.every_unit_watched && advice.is_some();
                // The advice is the way in; a restart the other one (it
                // read "so restart the program; ... save them, and they
                // are patched": a libxz re-check).
                let why = match advice {
                    Some(advice) => match what.strip_suffix(", so restart the program") {
                        Some(what) => format!(
                            "{what}; {}; or restart the program",
                            advice.strip_prefix("or ").unwrap_or(&advice)
                        ),
                        None => format!("{what}; {advice}"),
                    },
                    None => what,
                };
                // The save's other edits wait with it: said, as the line
                // named only the refused change (an LMDB trial: an edit of
                // another function seemed lost).
                let changed: Vec<String> = old
                    .map(|old| relive_patch::diff::diff(old, &new).changed)
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|c| c.kind == relive_patch::objfile::Kind::Function)
                    .map(|c| c.name)
                    .collect();
                let why = match changed.as_slice() {
                    [] => why,
                    changed => format!(
                        "{why}. Nothing of this save was patched: its changes of {} wait with it, and come in with the first save relive can patch",
                        readable_list(changed, true)
                    ),
                };
                event.functions = changed;
                return Ok(Step::refused(event, why, start));
            }
            Err(e) => return Err(e.into()),
        };
        // Functions the baseline lacks that the program has: the baseline
        // was a compile of a save still being written (a file closed after
        // its first part); those that are the running code already are no
        // edit (the next reload patched every function after the cut, and
        // said `main` could not be reached).
        let functions = self.without_running_code(old, &new, functions);
        // Another command reverted or patched functions of this file:
        // the save makes the program run what the file says again.
        let mut functions = functions;
        self.take_changes_by_others();
        // Said only if the save is patched.
        let (again, already) = self.patch_unsettled(source, &new, &mut functions);
        self.catch_up_with_save(source, &new, &mut functions, &mut event);
        // Every global function's signature against the program as built,
        // not only those whose running code is not the earlier compile's
        // (an edit made before relive started, code another command
        // reverted): a diff of two compiles also misses a signature
        // changed in a save that left the code as it was (see
        // `callers_keep_the_built_signature`).
        // The signatures the program runs, read once: with some files
        // watched a change is refused, with all, held for the callers.
        let globals_changed = since_build::global_changes(&self.target, source, &new, &functions);
        if let Some(refusal) = since_build::refusal(&globals_changed).filter(|_| !self.every_unit_watched) {
            return Ok(Step::refused(event, refusal, start));
        }
        if let Some((refusal, held)) = self.callers_keep_the_built_signature(source, &globals_changed, &new, batch) {
            // Held: the callers' save brings it in.
            self.awaits_other_file = held;
            return Ok(Step::refused(event, refusal, start));
        }
        // Every function's signature against the code that runs, not only
        // the stale ones': a signature changed in one save whose callee's
        // code did not change (not patched, so its old code runs) shows in
        // no diff once the next save changes the callee's body (a Lua
        // trial: `luaV_objlen` got a fourth parameter, then used it, while
        // the interpreter's running `luaV_execute` called it with three).
        let stale_changes: Vec<String> = globals_changed
            .into_iter()
            .map(|(name, _)| name)
            .chain(since_build::changed_static_names(
                &self.target,
                source,
                &new,
                &functions,
            ))
            .collect();
        if !stale_changes.is_empty() {
            if let Some(refusal) = self.callers_running(source, &new, (&stale_changes, &[]), &functions, batch) {
                return Ok(Step::refused(event, refusal, start));
            }
        }
        self.stale_signatures.insert(source.to_path_buf(), stale_changes);
        functions.sort_unstable();
        functions.dedup();
        event.timing_us.diff = us(diff_start);
        event.functions = functions.iter().map(|&i| new.symbols[i].name.clone()).collect();
        if functions.is_empty() {
            // A type whose layout changed (a header's struct) though no
            // function's code did: the compile is not what runs, and as the
            // baseline it hid the change from the next diff, whose new code
            // then wrote past the program's old structs (an LMDB trial:
            // `MDB_stat` grew, and the next edit of `mdb.c` went in).
            if let Some(changed) = self.layout_changed_without_code(source, &new) {
                let note = format!(
                    "{changed}, though no function's code did: the program's data keeps what it has, and an edit of this file's code that uses the new one is refused until a restart"
                );
                // Said with each file it is true of (a Lua re-check: one
                // file's hid another's).
                event.file_notes.push(note.clone());
                event.notes.push(note);
                event.timing_us.total = us(start);
                return Ok(Step::Done(event));
            }
            // A signature changed with no code (a parameter added, unused):
            // said, or "no function changed" read as if nothing did (a
            // libuv re-check); its next code edit is checked against
            // what runs.
            if let Some(old) = self.current.get(source) {
                let globals = since_build::global_function_names(&new);
                let mut changed = relive_patch::signature::changed(old, &new, &globals);
                // Only where the new one is not what runs (a save putting
                // back the signature the program runs, after a revert, was
                // said to wait for callers: a libxz re-check).
                if !changed.is_empty() {
                    let indices: Vec<usize> = changed.iter().filter_map(|c| new.function_named(&c.name)).collect();
                    let runs_other = since_build::global_changes(&self.target, source, &new, &indices);
                    changed.retain(|c| runs_other.iter().any(|(name, _)| *name == c.name));
                }
                if !changed.is_empty() {
                    let list: Vec<String> = changed.iter().map(ToString::to_string).collect();
                    // With some files watched no save can bring the
                    // callers (a zlib trial was told to wait for them).
                    let then = match self.every_unit_watched {
                        true => "an edit of its code waits until the files that call it call it the new way",
                        false => "an edit of its code is refused, as relive watches only the files you named and cannot patch the callers (watch them all, with no file arguments, to have it patched with them)",
                    };
                    event.notes.push(format!(
                        "the signature of a global function changed ({}), though no code did: nothing was patched, and {then}",
                        list.join("; ")
                    ));
                }
            }
            self.current.insert(source.to_path_buf(), new);
            event.timing_us.total = us(start);
            // An edit that folds to the same code with the default of a
            // macro the build may set is no change only for relive's
            // compile.
            if let Some(refusal) = self.new_macro_refusal(source, &[]) {
                event.event = EventKind::Refused;
                event.message = Some(refusal);
                return Ok(Step::Done(event));
            }
            self.pending_texts.remove(source);
            // relive's compile is not the build's here: an edit under an
            // #if it takes the other way looks like no change at all.
            let unverified = self.unverified.get(source).filter(|_| !self.trust_baselines);
            let already = shown_functions(&already);
            if !already.is_empty() && unverified.is_none() {
                event.notes.push(format!(
                    "{} already {} what {} has now (another relive command changed {} to that): nothing to patch",
                    listed(&already),
                    if already.len() == 1 { "runs" } else { "run" },
                    source.display(),
                    if already.len() == 1 { "it" } else { "them" }
                ));
            }
            if let Some(differs) = unverified {
                event.event = EventKind::Refused;
                event.message = Some(format!(
                    "no function changed in relive's compile of {}, but that compile differs from the running code (in {}), so an edit the build would see may be invisible to it; {}",
                    source.display(),
                    differs.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", "),
                    self.command(source).fix()
                ));
            }
            return Ok(Step::Done(event));
        }
        if let Some(refusal) = self
            .unverified_refusal(source, &event.functions)
            .filter(|_| !self.refused_catch_up.contains(source))
        {
            return Ok(Step::refused(event, refusal, start));
        }
        if let Some(refusal) = self.new_macro_refusal(source, &event.functions) {
            return Ok(Step::refused(event, refusal, start));
        }
        if let Some(refusal) = self.waits_for_unsettled(source, &new, &functions, batch) {
            self.awaits_other_file = true;
            return Ok(Step::refused(event, refusal, start));
        }
        if let Some(refusal) = self.callee_mismatch(source, &new, &functions, batch) {
            self.awaits_other_file = true;
            return Ok(Step::refused(event, refusal, start));
        }
        if let Some(waiting) = self.partners_still_failing(source, batch) {
            self.awaits_other_file = true;
            return Ok(Step::refused(event, waiting, start));
        }
        self.take_back_what_is_original(source, &new, &mut functions, &mut event, !batch.is_empty());
        // Not "patched again" when its patch was taken back instead (a
        // re-check: said with "back to the program's own code"), or waits
        // to be with other files' (then patched again only if refused,
        // which says so).
        let waiting: Vec<&String> = self
            .put_back_waiting
            .iter()
            .filter(|(s, _)| s == source)
            .flat_map(|(_, names)| names)
            .collect();
        let again: Vec<String> = again
            .into_iter()
            .filter(|n| !event.reverted.contains(n) && !waiting.contains(&n))
            .collect();
        event.if_patched.extend(self.patched_again_note(&again, source, &new));
        if functions.is_empty() {
            self.current.insert(source.to_path_buf(), new);
            event.timing_us.total = us(start);
            return Ok(Step::Done(event));
        }
        Ok(Step::Patch {
            new: Box::new(new),
            functions,
            event,
        })
    }

    /// Takes back the patches of those of `functions` whose compile in
    /// `new` is the program's own code (an edit put back), and drops them
    /// from `functions`; said in `event`. A revert relive refuses (a
    /// function patched in one change with a caller of it that stays)
    /// leaves them to be patched as any edit. A file `saved_together` with
    /// others leaves them to [`Reloader::take_back_together`], which takes
    /// back every file's in one step.
    fn take_back_what_is_original(
        &mut self,
        source: &Path,
        new: &ObjectFile,
        functions: &mut Vec<usize>,
        event: &mut ReloadEvent,
        saved_together: bool,
    ) {
        let names = verify::back_to_original(&self.target, new, functions);
        if names.is_empty() {
            return;
        }
        if saved_together {
            self.put_back_waiting.push((source.to_path_buf(), names));
            return;
        }
        self.take_back_alone(source, new, functions, event, names);
    }

    /// Takes back the patches of `names` (functions of `source` its
    /// compile `new` has as the program was built) in a revert of their
    /// own: said in `event`; refused, they stay in `functions`, to be
    /// patched again with that code ([`ReloadEvent::as_built`]).
    fn take_back_alone(
        &mut self,
        source: &Path,
        new: &ObjectFile,
        functions: &mut Vec<usize>,
        event: &mut ReloadEvent,
        names: Vec<String>,
    ) {
        let started = Instant::now();
        let Ok(report) = apply::revert(&mut self.target, Some(&names)) else {
            // Patched again with the program's own code.
            event.as_built = names;
            return;
        };
        // What the take-back cost: said as the apply stage ("apply 0.00
        // ms; no thread paused" was said of one that stopped them).
        event.timing_us.apply += started.elapsed().as_micros() as u64;
        event.pause_us += report.pause_us;
        self.taken_back(source, new, functions, event, names);
    }

    /// Records that the patches of `names` (functions of `source`, whose
    /// compile `new` is the program's own code) were taken back: out of
    /// `functions`, in `event`, settled.
    fn taken_back(
        &mut self,
        source: &Path,
        new: &ObjectFile,
        functions: &mut Vec<usize>,
        event: &mut ReloadEvent,
        names: Vec<String>,
    ) {
        // By name, and by place: another name of the same code (GCC's
        // `.localalias` of a function, which the patch's record may be
        // named by) was patched again with the program's own code, and
        // said "patched" (a Snappy trial).
        let no_renames = relive_patch::link::BaseNames::none();
        let place = |i: usize| relive_patch::link::live_address(new, i, &self.target.resolver, &no_renames);
        let reverted: Vec<u64> = functions
            .iter()
            .filter(|&&i| names.contains(&new.symbols[i].name))
            .filter_map(|&i| place(i))
            .collect();
        functions
            .retain(|&i| !names.contains(&new.symbols[i].name) && !place(i).is_some_and(|a| reverted.contains(&a)));
        event.functions = functions.iter().map(|&i| new.symbols[i].name.clone()).collect();
        event.as_built.retain(|n| !names.contains(n));
        // Patched, if what is left is patched.
        event.event = EventKind::Reverted;
        // A changed table whose every reader went back is read by the
        // program's own code again (one whose reader went back beside
        // another function patched was said to be read "by the new code"
        // of it: an expat trial); a changed macro's value is used by it
        // again once nothing is left patched.
        let tables_back: Vec<String> = event
            .table_readers
            .iter()
            .filter(|(_, readers)| !readers.is_empty() && readers.iter().all(|r| names.contains(r)))
            .map(|(table, _)| format!("the contents of {table} "))
            .collect();
        for note in event.notes.iter_mut().chain(event.if_patched.iter_mut()) {
            let back = match functions.is_empty() {
                true => relive_patch::select::constant_table_put_back(note)
                    .or_else(|| relive_patch::debug_macros::put_back(note)),
                false if tables_back.iter().any(|t| note.starts_with(t.as_str())) => {
                    relive_patch::select::constant_table_put_back(note)
                }
                false => None,
            };
            if let Some(back) = back {
                *note = back;
            }
        }
        self.settled_by(source, &names);
        event.reverted = names;
    }

    /// The functions of the files of a save put back as the program was
    /// built (`put_back_waiting`), taken back in one revert, as they were
    /// patched (a caller and its callee patched in one change cannot be
    /// taken back apart: each alone was refused, and both were patched
    /// again as copies of the original, a re-check); a file left with
    /// nothing to patch is settled. Refused all in one, each file's go
    /// back alone ([`Reloader::take_back_alone`]).
    fn take_back_together(
        &mut self,
        ready: Vec<(PathBuf, ObjectFile, Vec<usize>, ReloadEvent)>,
        settled: &mut Vec<ReloadEvent>,
        start: Instant,
    ) -> Vec<(PathBuf, ObjectFile, Vec<usize>, ReloadEvent)> {
        let pending = std::mem::take(&mut self.put_back_waiting);
        let mut ready = ready;
        if pending.is_empty() {
            return ready;
        }
        let names: Vec<String> = pending.iter().flat_map(|(_, n)| n.iter().cloned()).collect();
        let started = Instant::now();
        let Ok(report) = apply::revert(&mut self.target, Some(&names)) else {
            // Not all in one: each waiting file's alone, as its own save
            // would have (refused alone, patched again with the program's
            // own code, said so).
            for (source, names) in pending {
                if let Some((_, new, functions, event)) = ready.iter_mut().find(|(s, ..)| *s == source) {
                    self.take_back_alone(&source, new, functions, event, names);
                }
            }
            return self.settle_emptied(ready, settled, start);
        };
        let (took, paused) = (started.elapsed().as_micros() as u64, report.pause_us);
        let files: Vec<String> = pending.iter().map(|(s, _)| s.display().to_string()).collect();
        let mut still = Vec::new();
        for (source, new, mut functions, mut event) in ready {
            if let Some((_, taken)) = pending.iter().find(|(s, _)| *s == source) {
                // One take-back for all: each file's event says it, and
                // with which files, as their patch in one step said.
                event.timing_us.apply += took;
                event.pause_us += paused;
                self.taken_back(&source, &new, &mut functions, &mut event, taken.clone());
                let me = source.display().to_string();
                let others: Vec<&str> = files.iter().filter(|f| **f != me).map(String::as_str).collect();
                if !others.is_empty() {
                    event
                        .notes
                        .push(format!("taken back in one step with {}", others.join(", ")));
                }
            }
            still.push((source, new, functions, event));
        }
        self.settle_emptied(still, settled, start)
    }

    /// The files of `ready` left with nothing to patch (every function
    /// taken back): settled, their events moved to `settled`.
    fn settle_emptied(
        &mut self,
        ready: Vec<(PathBuf, ObjectFile, Vec<usize>, ReloadEvent)>,
        settled: &mut Vec<ReloadEvent>,
        start: Instant,
    ) -> Vec<(PathBuf, ObjectFile, Vec<usize>, ReloadEvent)> {
        let mut still = Vec::new();
        for (source, new, functions, mut event) in ready {
            if functions.is_empty() {
                self.current.insert(source, new);
                event.timing_us.total = start.elapsed().as_micros() as u64;
                settled.push(event);
            } else {
                still.push((source, new, functions, event));
            }
        }
        still
    }

    /// After a patch of `source` (taken or not): the baseline becomes
    /// `new` if it was taken, else stays `old`; notes on functions whose
    /// baseline was not verified.
    fn settle(&mut self, source: &Path, new: ObjectFile, old: Option<ObjectFile>, event: &mut ReloadEvent) {
        let took = event.event.applied();
        if took {
            self.remind_patched_over(source, &new, event);
        }
        if let Some(text) = self.pending_texts.remove(source).filter(|_| took) {
            self.texts.insert(source.to_path_buf(), text);
        }
        if took {
            self.settled_by(source, &event.patched_names());
        }
        match (took, old) {
            (true, old) => {
                // The build's compile, replaced: kept (see `built`).
                if let Some(old) = old.filter(|_| self.current_is_built.remove(source)) {
                    self.built.insert(source.to_path_buf(), std::sync::Arc::new(old));
                }
                self.current.insert(source.to_path_buf(), new);
            }
            (false, Some(old)) => {
                self.current.insert(source.to_path_buf(), old);
            }
            (false, None) => {}
        }
        if took && self.refused_catch_up.remove(source) {
            // The edit made before relive started is in now.
            if let Some(differs) = self.unverified.get_mut(source) {
                differs.retain(|(n, _)| !event.functions.iter().any(|f| f == n));
                if differs.is_empty() {
                    self.unverified.remove(source);
                }
            }
        }
        if took {
            if let Some(differs) = self.unverified.get(source) {
                let (patched, others): (Vec<&str>, Vec<&str>) = differs
                    .iter()
                    .map(|(n, _)| n.as_str())
                    .partition(|n| event.functions.iter().any(|f| f == n));
                if !patched.is_empty() {
                    event.notes.push(format!(
                        "patched although relive's compile of {} differs from the running code in them (--trust-baselines): {}",
                        patched.join(", "),
                        source.display()
                    ));
                }
                if !others.is_empty() {
                    event.notes.push(format!(
                        "relive's compile of {} differs from the running code in {} (not changed by this edit); {}",
                        source.display(),
                        others.join(", "),
                        self.command(source).fix()
                    ));
                }
            }
        }
    }

    /// Notes in `event` (a patch of `source`, its compile `new`) the
    /// functions of the file that still run an earlier relive patch, not
    /// the file's code (see `patched_over`); those this patch replaced, or
    /// that no patch holds any more (reverted since), leave the list.
    fn remind_patched_over(&mut self, source: &Path, new: &ObjectFile, event: &mut ReloadEvent) {
        let Some(names) = self.patched_over.get_mut(source) else {
            return;
        };
        let target = &self.target;
        names.retain(|name| {
            let patched_now = event.functions.iter().any(|f| f == name);
            !patched_now && verify::patch_in_force(target, new, name).is_some()
        });
        if names.is_empty() {
            return;
        }
        let readable: Vec<String> = names.iter().map(|n| relive_patch::names::readable(n)).collect();
        event.notes.push(format!(
            "{} still {} an earlier relive patch, not this file's code: the program differs from a build of {} there until a save changes {}",
            readable.join(", "),
            if names.len() == 1 { "runs" } else { "run" },
            source.display(),
            if names.len() == 1 { "it" } else { "them" }
        ));
    }

    /// For a file whose catch-up was refused (see `refused_catch_up`):
    /// adds to `functions` those of `new` that still differ from the
    /// running code, the edit made before relive started, saying so.
    fn catch_up_with_save(
        &mut self,
        source: &Path,
        new: &ObjectFile,
        functions: &mut Vec<usize>,
        event: &mut ReloadEvent,
    ) {
        if !self.refused_catch_up.contains(source) {
            return;
        }
        let Some(differs) = self.unverified.get(source) else {
            return;
        };
        let waiting = |n: &str| differs.iter().any(|(d, _)| d == n);
        let check = verify::functions_against_process(&self.target, new, waiting);
        // Those the save put back as the program runs them: nothing to
        // patch, and the edit made before relive started is undone (they
        // were diffed against that edit's compile and refused again, for
        // good: an Oniguruma trial's `match_at`).
        let back: Vec<String> = check.same.clone();
        if !back.is_empty() {
            functions.retain(|&i| !back.contains(&new.symbols[i].name));
            event.notes.push(format!(
                "{} {} what the program runs again: the edit made before relive started, whose patch was refused, is undone",
                listed(&back),
                if back.len() == 1 { "is" } else { "are" }
            ));
            if let Some(differs) = self.unverified.get_mut(source) {
                differs.retain(|(n, _)| !back.contains(n));
                if differs.is_empty() {
                    self.unverified.remove(source);
                    self.refused_catch_up.remove(source);
                }
            }
        }
        for (i, sym) in new.symbols.iter().enumerate() {
            let still = check.differs.iter().any(|(d, _)| *d == sym.name);
            if sym.kind == relive_patch::objfile::Kind::Function && still && !functions.contains(&i) {
                functions.push(i);
                event.if_patched.push(format!(
                    "{} was edited before relive started and patching that edit was refused: patched now, as {} says",
                    sym.name,
                    source.display()
                ));
            }
        }
    }

    /// The first compile of a file that did not compile when relive
    /// started: no baseline to diff against, so it is compared with the
    /// running code, and what differs is patched when the compile command
    /// is known to be the build's (else refused, saying why).
    fn first_compile(
        &mut self,
        source: &Path,
        new: ObjectFile,
        mut event: ReloadEvent,
        start: Instant,
    ) -> Result<ReloadEvent, ReloadError> {
        let compile_us = event.timing_us.compile;
        match self.adopt_baseline(source, Ok(new)) {
            Baseline::Differs { trusted, .. } if trusted || self.trust_baselines => {
                let mut event = self.catch_up(source)?;
                event.timing_us.compile = compile_us;
                event.timing_us.total = start.elapsed().as_micros() as u64;
                return Ok(event);
            }
            Baseline::Differs { check, .. } => {
                event.event = EventKind::Refused;
                event.message = Some(format!(
                    "{} did not compile when relive started, so there is no earlier compile to diff against; this one differs from the running code in {}, and its compile command ({}) is not known to be the build's, so the difference may be a missing option rather than your edit; {}, or pass --trust-baselines",
                    source.display(),
                    check.differing().join(", "),
                    self.command(source).origin,
                    self.command(source).fix()
                ));
            }
            _ => event.notes.push(format!(
                "{} compiles now, into exactly the code the program runs",
                source.display()
            )),
        }
        event.timing_us.total = start.elapsed().as_micros() as u64;
        Ok(event)
    }

    /// For a compile error that a build's option would likely fix (a
    /// header not found, an undeclared identifier) when relive's command
    /// is not known to be the build's: a line saying so and how to fix it.
    fn missing_option_hint(&self, source: &Path, message: &str) -> String {
        let likely = [
            "No such file or directory",
            "undeclared",
            "not declared",
            "file not found",
        ]
        .iter()
        .any(|m| message.contains(m));
        let command = self.command(source);
        if !likely || command.complete {
            return String::new();
        }
        format!(
            "\n(relive compiled it with {} from {}; {})",
            command.display(),
            command.origin,
            command.fix()
        )
    }

    /// Why the catch-up of `functions` of `source`'s baseline `obj`, made
    /// with the files of `together`, is refused for a global function's
    /// signature that is not the one the program runs: with some files
    /// watched, any such change (see [`since_build`]); with all of them, a
    /// caller that would call it the old way
    /// ([`Reloader::callers_keep_the_built_signature`]). The program's
    /// DWARF is read once for both.
    fn catch_up_signature_refusal(
        &self,
        source: &Path,
        obj: &ObjectFile,
        functions: &[usize],
        together: &[(&Path, &ObjectFile)],
    ) -> Option<String> {
        if functions.is_empty() {
            return None;
        }
        let changed = since_build::global_changes(&self.target, source, obj, functions);
        match self.every_unit_watched {
            false => since_build::refusal(&changed),
            true => self
                .callers_keep_the_built_signature(source, &changed, obj, together)
                .map(|(why, _)| why),
        }
    }

    /// Why `new` (the fresh compile of `source`) must not be patched,
    /// every file watched: of its global functions whose signature is not
    /// the one the program runs (`changed`, as
    /// [`since_build::global_changes`] words them), one is still called the
    /// old way by another file (as it runs, or as compiled in `batch` with
    /// `source`), or has its address taken there. A diff of two compiles
    /// misses a signature changed in one save whose code did not change
    /// (a parameter added, unused: not patched), once the next save uses
    /// it (a libuv trial: `f(void)` became `f(int x)`, then used `x`,
    /// patched, and the unchanged caller's garbage was read as `x`).
    /// `Some((why, held))`: `held` when a save of the callers can bring
    /// it in (no address taken).
    fn callers_keep_the_built_signature(
        &self,
        source: &Path,
        changed: &[(String, String)],
        new: &ObjectFile,
        batch: &[(&Path, &ObjectFile)],
    ) -> Option<(String, bool)> {
        if !self.every_unit_watched || changed.is_empty() {
            return None;
        }
        let mut said = Vec::new();
        let mut old_way: Vec<PathBuf> = Vec::new();
        let mut pointers: Vec<PathBuf> = Vec::new();
        for (name, words) in changed {
            let callers = self.callers_the_old_way(source, new, name, batch);
            if callers.old_way.is_empty() && callers.pointers.is_empty() {
                continue;
            }
            said.push(words.clone());
            old_way.extend(callers.old_way);
            pointers.extend(callers.pointers);
        }
        if said.is_empty() {
            return None;
        }
        for list in [&mut old_way, &mut pointers] {
            list.sort();
            list.dedup();
        }
        let shown = |files: &[PathBuf]| files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>();
        let one = |files: &[PathBuf]| files.len() == 1;
        let runs = format!(
            "the signature of a global function is not the one the program runs ({})",
            said.join("; ")
        );
        if !pointers.is_empty() {
            return Some((
                format!(
                    "{runs}, and {} {} its address: calls through a pointer pass the old arguments, and no save can follow them; restart the program",
                    shown(&pointers).join(", "),
                    if one(&pointers) { "takes" } else { "take" },
                ),
                false,
            ));
        }
        // Callers of this save that did not compile are said as such (a
        // libxz trial was told to save callers it had saved).
        let (failing, unsaved): (Vec<PathBuf>, Vec<PathBuf>) =
            old_way.into_iter().partition(|f| self.not_compiling.contains(f));
        let mut fixes = Vec::new();
        if !failing.is_empty() {
            fixes.push(format!(
                "{} (compiled with it) {} not compile: fix {}",
                shown(&failing).join(", "),
                if one(&failing) { "does" } else { "do" },
                if one(&failing) { "it" } else { "them" },
            ));
        }
        if !unsaved.is_empty() {
            fixes.push(format!(
                "{} still {} it the old way: save {} with it, calling it the new way (e.g. `touch {} {}` once {} the new prototype)",
                shown(&unsaved).join(", "),
                if one(&unsaved) { "calls" } else { "call" },
                if one(&unsaved) { "that file" } else { "those files" },
                source.display(),
                shown(&unsaved).join(" "),
                if one(&unsaved) { "it has" } else { "they have" },
            ));
        }
        Some((
            format!(
                "{runs}, so callers would pass the old arguments and read the old return type: {}, and they are patched in one step; or restart the program",
                fixes.join("; ")
            ),
            true,
        ))
    }

    /// The other files of the program that refer to global function
    /// `name`, whose new definition `new` (compiled from `source`) has,
    /// other than by calls that agree with it: each as it runs, or as
    /// compiled in `batch` with `source`. A file not in `batch` whose
    /// functions that call `name` do not run its compile (an edit made
    /// before the start, not caught up: see `unverified`) calls it as the
    /// program was built, the old way.
    fn callers_the_old_way(
        &self,
        source: &Path,
        new: &ObjectFile,
        name: &str,
        batch: &[(&Path, &ObjectFile)],
    ) -> OldWayCallers {
        let mut out = OldWayCallers::default();
        let defined = relive_patch::signature::definitions_resolved(new, &[name]);
        let Some(is) = defined.get(name) else {
            return out;
        };
        for (file, current) in self.current.iter().filter(|(f, _)| f.as_path() != source) {
            let saved_with = batch.iter().find(|(f, _)| *f == file.as_path());
            let runs = saved_with.map_or(current, |(_, obj)| *obj);
            let uses = references(runs, name);
            if uses.is_empty() {
                continue;
            }
            if uses.iter().any(|&call| !call) {
                out.pointers.push(file.clone());
                continue;
            }
            let declared = relive_patch::signature::declarations(runs, &[name]);
            let agrees = declared
                .get(name)
                .is_some_and(|d| relive_patch::signature::agree(d, is));
            let runs_the_build = saved_with.is_none()
                && self.unverified.get(file).is_some_and(|differs| {
                    callers_in(runs, name)
                        .iter()
                        .any(|caller| differs.iter().any(|(d, _)| d == caller))
                });
            if !agrees || runs_the_build {
                out.old_way.push(file.clone());
            }
        }
        out
    }

    /// Why the new code of `functions` (of `new`, compiled from `source`)
    /// must not run: it calls a function of another file by a prototype
    /// that is not the one the program runs (that file's signature change
    /// was refused, or is not saved yet), so it would pass the wrong
    /// arguments. Read from the DWARF: the new object's declaration of the
    /// callee against the definition in the other file's object the
    /// program runs.
    fn callee_mismatch(
        &self,
        source: &Path,
        new: &ObjectFile,
        functions: &[usize],
        batch: &[(&Path, &ObjectFile)],
    ) -> Option<String> {
        let called = relive_patch::callees::undefined_callees(new, functions);
        if called.is_empty() {
            return None;
        }
        let declared = relive_patch::signature::declarations(new, &called);
        for (file, runs) in self.current.iter().filter(|(f, _)| f.as_path() != source) {
            // A file saved with this one runs its new compile afterwards.
            let saved_with = batch.iter().find(|(f, _)| *f == file.as_path());
            let runs: &ObjectFile = saved_with.map_or(runs, |(_, obj)| *obj);
            let defined: Vec<&str> = called
                .iter()
                .copied()
                .filter(|name| declared.contains_key(*name))
                .filter(|name| {
                    runs.symbols
                        .iter()
                        .any(|s| s.name == *name && s.kind == relive_patch::objfile::Kind::Function && !s.local)
                })
                .collect();
            if defined.is_empty() {
                continue;
            }
            let mut running = relive_patch::signature::definitions_resolved(runs, &defined);
            // Functions whose compile is not what runs (an edit made before
            // relive started, not caught up): the program runs them as it
            // was built.
            if let Some(differs) = self.unverified.get(file).filter(|_| saved_with.is_none()) {
                let stale: Vec<usize> = defined
                    .iter()
                    .filter(|name| differs.iter().any(|(d, _)| d == *name))
                    .filter_map(|name| runs.function_named(name))
                    .collect();
                if !stale.is_empty() {
                    running.extend(since_build::built_signatures(
                        &self.target,
                        file,
                        runs,
                        &stale,
                        true,
                        false,
                    ));
                }
            }
            for name in defined {
                let (Some(wants), Some(is)) = (declared.get(name), running.get(name)) else {
                    continue;
                };
                if !relive_patch::signature::agree(wants, is) {
                    // Saving both together helps only where no caller's
                    // call is running (it would keep its old code): a
                    // re-check was told to, and was refused again.
                    let callers: Vec<&str> = functions
                        .iter()
                        .filter(|&&i| relive_patch::callees::direct_callees(new, i).iter().any(|c| c == name))
                        .map(|&i| new.symbols[i].name.as_str())
                        .collect();
                    let running = relive_patch::running_callers::running_now(&self.target, &callers);
                    let fix = match running.first() {
                        Some((caller, threads)) => format!(
                            "and {}'s call running on thread {} keeps its old code, so saving both files together is refused too while it runs: move the call into a function it calls, or restart the program",
                            relive_patch::names::readable(caller),
                            threads.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")
                        ),
                        None => format!(
                            "save both files together (e.g. `touch {} {}`) and they are patched in one step, or restart the program",
                            file.display(),
                            source.display()
                        ),
                    };
                    return Some(format!(
                        "{} calls {name} as {wants}, but the program runs {name} from {} as {is} (that change was not patched): {fix}",
                        source.display(),
                        file.display(),
                    ));
                }
            }
        }
        None
    }

    /// Why a signature change of `changed` (global functions of `new`,
    /// compiled from `source`, saved with every caller) cannot be patched
    /// now: a caller's call is running (`main`, a worker thread's loop, or
    /// just now), and that call finishes in its old code, which passes the
    /// old arguments (a trial on Oniguruma: `worker` kept calling
    /// `onig_number_of_captures` with one argument, and the program
    /// printed `g=-6` where a fresh build prints `g=73`). `(changed,
    /// names_moved)`: those of `changed` whose parameters' names alone
    /// moved count only with a caller among `functions` (whose call
    /// changed too); the patch checks the batch's other changed callers
    /// again with the threads stopped.
    fn callers_running(
        &self,
        source: &Path,
        new: &ObjectFile,
        (changed, names_moved): (&[String], &[String]),
        functions: &[usize],
        batch: &[(&Path, &ObjectFile)],
    ) -> Option<String> {
        let objects = std::iter::once(new).chain(batch.iter().filter(|(f, _)| *f != source).map(|(_, o)| *o));
        let patched: Vec<&str> = functions.iter().map(|&i| new.symbols[i].name.as_str()).collect();
        relive_patch::running_callers::running_caller(&self.target, objects, changed, names_moved, &patched)
    }

    /// [`Reloader::callers_running`] for a catch-up of `sources` (their
    /// baselines' functions that differ from what runs): a function among
    /// them, global or static, whose signature is not the one the program
    /// was built with, called by a function of these files whose call is
    /// running (a re-check: `relive watch` caught up `u(x, y)` while
    /// `main`'s loop went on calling it with one argument; the same with a
    /// static `calc(x, y)`). The stacks are read first, the DWARF only for
    /// a callee a running call calls.
    fn catch_up_callers_running(&self, sources: &[PathBuf]) -> Option<String> {
        let mut objects: Vec<(&Path, &ObjectFile, Vec<usize>)> = Vec::new();
        for source in sources {
            if let (Some(obj), Some(functions)) = (self.current.get(source), self.differing_functions(source)) {
                objects.push((source.as_path(), obj, functions));
            }
        }
        // The functions caught up, each with its file: global ones, and
        // static ones (their running callers are in the file too).
        let mut callees: Vec<(String, usize)> = Vec::new();
        for (k, (_, obj, functions)) in objects.iter().enumerate() {
            for &i in functions {
                let s = &obj.symbols[i];
                if s.kind == relive_patch::objfile::Kind::Function {
                    callees.push((s.name.clone(), k));
                }
            }
        }
        if callees.is_empty() {
            return None;
        }
        let names: Vec<String> = callees.iter().map(|(c, _)| c.clone()).collect();
        let callers = relive_patch::running_callers::callers_among(objects.iter().map(|(_, obj, _)| *obj), &names);
        let running: Vec<&str> = callers.iter().map(|(caller, _)| caller.as_str()).collect();
        relive_patch::running_callers::once_returned(|| {
            for (caller, threads) in relive_patch::running_callers::running_now(&self.target, &running) {
                for (_, callee) in callers.iter().filter(|(c, _)| *c == caller) {
                    let Some(&(_, k)) = callees.iter().find(|(c, _)| c == callee) else {
                        continue;
                    };
                    let (source, obj, _) = &objects[k];
                    let Some(i) = obj.function_named(callee) else { continue };
                    if !since_build::changed_names(&self.target, source, obj, &[i]).is_empty() {
                        return Some(relive_patch::running_callers::refusal(&caller, callee, &threads));
                    }
                }
            }
            None
        })
    }

    /// Whether global function `name`, whose signature `new` (the fresh
    /// compile of `source`) changes, can be patched: every other file of
    /// the program that calls it is saved with it (in `batch`) and calls it
    /// by the new prototype, and none takes its address (a pointer's
    /// callers cannot be known). Only when every compile unit is watched:
    /// another may call it.
    fn callers_follow(&self, source: &Path, new: &ObjectFile, name: &str, batch: &[(&Path, &ObjectFile)]) -> bool {
        if !self.every_unit_watched {
            return false;
        }
        let defined = relive_patch::signature::definitions_resolved(new, &[name]);
        let Some(is) = defined.get(name) else {
            return false;
        };
        for (file, runs) in self.current.iter().filter(|(f, _)| f.as_path() != source) {
            let uses = references(runs, name);
            if uses.is_empty() {
                continue;
            }
            if uses.iter().any(|&call| !call) {
                return false;
            }
            let Some((_, updated)) = batch.iter().find(|(f, _)| *f == file.as_path()) else {
                return false;
            };
            if references(updated, name).iter().any(|&call| !call) {
                return false;
            }
            let declared = relive_patch::signature::declarations(updated, &[name]);
            if !declared
                .get(name)
                .is_some_and(|d| relive_patch::signature::agree(d, is))
            {
                return false;
            }
        }
        true
    }

    /// For a refused signature change of `source` (`old` → `new`): which
    /// files call the functions concerned and how to have them patched
    /// with it.
    fn signature_advice(&self, source: &Path, old: &ObjectFile, new: &ObjectFile) -> Option<String> {
        let globals = since_build::global_function_names(new);
        let changed = relive_patch::signature::changed(old, new, &globals);
        let names: Vec<&str> = changed.iter().map(|c| c.name.as_str()).collect();
        if names.is_empty() {
            return None;
        }
        if !self.every_unit_watched {
            return Some(
                "relive watches only the files you named, so it cannot know every caller: watch them all (no file arguments) to have such a change patched"
                    .into(),
            );
        }
        let mut callers: Vec<String> = self
            .current
            .iter()
            .filter(|(f, runs)| f.as_path() != source && names.iter().any(|n| !references(runs, n).is_empty()))
            .map(|(f, _)| f.display().to_string())
            .collect();
        callers.sort();
        if callers.is_empty() {
            return None;
        }
        let failing: Vec<&String> = callers
            .iter()
            .filter(|c| self.not_compiling.iter().any(|f| f.display().to_string() == **c))
            .collect();
        if !failing.is_empty() {
            let failing: Vec<&str> = failing.iter().map(|f| f.as_str()).collect();
            let one = failing.len() == 1;
            return Some(format!(
                "{} (compiled with it, calling {}) {} not compile: fix {} and save, and they are patched in one step",
                failing.join(", "),
                names.join(", "),
                if one { "does" } else { "do" },
                if one { "it" } else { "them" },
            ));
        }
        Some(format!(
            "or save it together with the files that call {} ({}), e.g. `touch {} {}`: they are patched in one step",
            names.join(", "),
            callers.join(", "),
            source.display(),
            callers.join(" ")
        ))
    }

    /// Why a change of `changed` in `source` cannot be patched: its
    /// baseline differs from the running code in one of them, so the diff
    /// says nothing about what the program would run.
    fn unverified_refusal(&self, source: &Path, changed: &[String]) -> Option<String> {
        if self.trust_baselines {
            return None;
        }
        let differs = self.unverified.get(source)?;
        let hit: Vec<&(String, String)> = differs.iter().filter(|(n, _)| changed.contains(n)).collect();
        if let Some((first, why)) = hit.first() {
            return Some(format!(
                "{} is compiled here into code that differs from what the program runs (before this edit: {first} {why}{}), so the edit's effect cannot be known; {}, or pass --trust-baselines to patch anyway",
                source.display(),
                if hit.len() > 1 { format!(", and {} more", hit.len() - 1) } else { String::new() },
                self.command(source).fix()
            ));
        }
        // The edit changed only functions that matched. With a command
        // not known to be the build's, the difference elsewhere says its
        // options are not the build's: the edit may make a matching
        // function depend on one (an `#if` on a missing -D), and its new
        // code would then be what no build makes.
        let command = self.command(source);
        if command.complete {
            return None;
        }
        let (first, why) = differs.first()?;
        Some(format!(
            "{} is compiled here into code that differs from what the program runs in {first} ({why}), which this edit did not change; its compile command ({}) is not known to be the build's, so the edited functions may be compiled unlike the build too; {}, or pass --trust-baselines to patch anyway",
            source.display(),
            command.origin,
            command.fix()
        ))
    }

    /// Keeps `source`'s text (`text`, else the file's now) as what the
    /// program runs, when its compile command is not known to be the
    /// build's (see [`Reloader::new_macro_refusal`]).
    fn remember_text(&mut self, source: &Path, text: Option<&[u8]>) {
        if self.command(source).complete {
            return;
        }
        let text = match text {
            Some(t) => String::from_utf8_lossy(t).into_owned(),
            None => match std::fs::read_to_string(source) {
                Ok(t) => t,
                Err(_) => return,
            },
        };
        self.texts.insert(source.to_path_buf(), text);
    }

    /// Refuses an edit of `source` (changing `changed`) that makes its code
    /// use a macro the sources test for definedness (a default the build
    /// may override with `-D`) when the compile command is not known to
    /// carry the build's `-D` options: the patched code would take the
    /// default, whatever the build says ([`macros`]). Otherwise the new
    /// text waits to become what runs.
    fn new_macro_refusal(&mut self, source: &Path, changed: &[String]) -> Option<String> {
        if self.trust_baselines || self.command(source).complete {
            return None;
        }
        let new = std::fs::read_to_string(source).ok()?;
        let Some(old) = self.texts.get(source) else {
            self.pending_texts.insert(source.to_path_buf(), new);
            return None;
        };
        let headers: Vec<String> = self
            .headers
            .get(source)
            .into_iter()
            .flatten()
            .filter_map(|h| std::fs::read_to_string(h).ok())
            .collect();
        let overridable = macros::overridable(std::iter::once(new.as_str()).chain(headers.iter().map(String::as_str)));
        let names = macros::newly_used(old, &new, &overridable);
        if names.is_empty() {
            self.pending_texts.insert(source.to_path_buf(), new);
            return None;
        }
        let command = self.command(source);
        Some(format!(
            "the edit of {}{} makes its code use {}, whose value a build may set with -D (the sources test it with #ifdef/#ifndef, or define it from one that is), and the compile command ({}, from {}) is not known to carry the build's -D options: the patched code could run another value than a build of the edited sources (or, where relive's compile saw no change, the build's would); {FIX_FLAGS}, build with -g3, or pass --trust-baselines to patch anyway",
            source.display(),
            if changed.is_empty() { String::new() } else { format!(" ({})", readable_list(changed, false)) },
            names.join(", "),
            command.display(),
            command.origin
        ))
    }

    /// Reads the journal again when another relive command changed it,
    /// and marks the functions that change touched as unsettled in each
    /// watched file that defines them (see `unsettled`).
    fn take_changes_by_others(&mut self) {
        let Ok(Some(before)) = self.target.reread_journal() else {
            return;
        };
        self.unsettle_changed_since(&before);
    }

    /// Marks the functions the journal changed since `before` as
    /// unsettled in each watched file that defines them: per file, those
    /// changed (each change is said, also of a function an earlier one
    /// left unsettled: a zstd re-check's one-shot patch and revert of a
    /// function reverted before went unsaid).
    fn unsettle_changed_since(&mut self, before: &relive_patch::journal::Journal) -> BTreeMap<PathBuf, Vec<String>> {
        let changed = self.target.journal.functions_changed_since(before);
        let mut by_file: BTreeMap<PathBuf, Vec<String>> = BTreeMap::new();
        if changed.is_empty() {
            return by_file;
        }
        for (source, obj) in &self.current {
            for sym in obj
                .symbols
                .iter()
                .filter(|s| s.kind == relive_patch::objfile::Kind::Function && changed.contains(&s.name))
            {
                self.unsettled
                    .entry(source.clone())
                    .or_default()
                    .insert(sym.name.clone());
                by_file.entry(source.clone()).or_default().push(sym.name.clone());
            }
        }
        by_file
    }

    /// What another relive command (`revert`, a one-shot `patch`) changed
    /// in the process since this session last looked, while no file was
    /// saved: an event per watched file whose functions now run other
    /// code than it says (they are patched as it says again at its next
    /// save). Said when it happens: after an outside `revert --all` the
    /// program ran behind its sources, and nothing said so until a save (a
    /// Lua trial). A stat of the journal when nothing changed.
    pub fn changes_elsewhere(&mut self) -> Vec<ReloadEvent> {
        if !self.target.journal.changed_on_disk(&self.target.journal_dir) {
            return Vec::new();
        }
        let before = self.target.journal.clone();
        // Under the lock: a change in progress finishes first.
        let Ok(_lock) = self.target.transaction() else {
            return Vec::new();
        };
        let pid = self.process.pid();
        let changed = self.unsettle_changed_since(&before);
        let mut events = Vec::new();
        for (source, functions) in changed {
            let mut event = ReloadEvent::new(&source);
            event.event = EventKind::ChangedElsewhere;
            // As the message counts them: a function's cold part is part
            // of it (103 names against "94 more" of 99).
            event.functions = functions
                .iter()
                .filter(|n| !cold_part_of_one_of(n, &functions))
                .cloned()
                .collect();
            let what = what_changed(&before, &self.target.journal, &event.functions);
            // Which of them now run what the file says (a revert of a
            // patch from elsewhere, back to the code the file has): those
            // are settled, and not said to run other code (a SQLite
            // trial's revert of a one-shot patch was).
            // All of them, cold parts too: those are unsettled as well.
            let as_file = self.running_as_file(&source, &functions);
            if let Some(unsettled) = self.unsettled.get_mut(&source) {
                unsettled.retain(|n| !as_file.contains(n));
            }
            let differing: Vec<&String> = event.functions.iter().filter(|n| !as_file.contains(*n)).collect();
            const AGAIN: &str = "the file's next save patches what it says again";
            let runs = match (differing.len(), event.functions.len()) {
                (0, _) => "it runs what the file says there again".to_string(),
                (d, all) if d == all => format!("it runs other code than the file says there; {AGAIN}"),
                _ => {
                    let names: Vec<String> = differing.iter().map(|n| relive_patch::names::readable(n)).collect();
                    format!("it runs other code than the file says in {}; {AGAIN}", listed(&names))
                }
            };
            event.message = Some(format!("another relive command {what} in process {pid}: {runs}"));
            events.push(event);
        }
        events
    }

    /// Of `functions` (symbols of `source`), those the process runs as
    /// `source`'s compile has them: the same code, and no new version that
    /// no call runs.
    fn running_as_file(&self, source: &Path, functions: &[String]) -> Vec<String> {
        let Some(obj) = self.current.get(source) else {
            return Vec::new();
        };
        let check = verify::functions_against_process(&self.target, obj, |n| functions.iter().any(|f| f == n));
        check
            .same
            .into_iter()
            .filter(|n| !check.unreached.iter().any(|(u, _)| u == n))
            .collect()
    }

    /// Adds to `functions` those of `new` that another relive command
    /// changed (see `unsettled`) and that the program does not run as
    /// `new` has them, and the note that says so (also of those the save
    /// changes anyway), for a save that is patched; forgets those the
    /// program runs as `new` has them (taking them out of `functions`:
    /// nothing to patch), and those `new` no longer defines.
    ///
    /// Returns those patched again, and those already running as `new`
    /// has them (said when nothing else changed: "no function changed"
    /// alone read as the save being lost, a Lua re-check's re-save of what
    /// a one-shot patch had put in).
    fn patch_unsettled(
        &mut self,
        source: &Path,
        new: &ObjectFile,
        functions: &mut Vec<usize>,
    ) -> (Vec<String>, Vec<String>) {
        let Some(names) = self.unsettled.get(source).filter(|n| !n.is_empty()).cloned() else {
            return (Vec::new(), Vec::new());
        };
        let index = |name: &str| new.function_named(name);
        // Each compared with what runs, those the save changes too: one
        // the program already runs as the file has it (another command
        // reverted it, and the file was put back as built) is not patched
        // again (a trial on SQLite: 210 functions "patched again" with
        // their original code after `revert --all`, one line each).
        let check = verify::functions_against_process(&self.target, new, |n| names.contains(n));
        // Matching code whose new version no call runs (a loop running
        // old code) is not what runs.
        let runs_old = |name: &String| {
            check
                .unreached
                .iter()
                .chain(&check.old_code_kept)
                .any(|(n, _)| n == name)
        };
        let mut again = Vec::new();
        let mut runs_as_saved = Vec::new();
        let mut already = Vec::new();
        for name in &names {
            let differs = check.differs.iter().any(|(d, _)| d == name) || check.absent.iter().any(|a| a == name);
            match index(name) {
                Some(i) if differs => {
                    if !functions.contains(&i) {
                        functions.push(i);
                    }
                    again.push(name.clone());
                }
                Some(i) => {
                    functions.retain(|&f| f != i);
                    runs_as_saved.push(name.clone());
                    if !runs_old(name) {
                        already.push(name.clone());
                    }
                }
                None => runs_as_saved.push(name.clone()),
            }
        }
        self.settled_by(source, &runs_as_saved);
        (again, already)
    }

    /// What a patch says of the functions `again` (symbols of `new`, the
    /// compile of `source`) that another relive command changed and it
    /// patches again from `source`: reverted (the program's own code runs
    /// there) or patched (another patch's code runs), as the program
    /// tells; "reverted or patched" where it does not (a function a patch
    /// added). It said "reverted or patched" of a plain revert too.
    fn patched_again_note(&self, again: &[String], source: &Path, new: &ObjectFile) -> Option<String> {
        let mut by_what: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for name in again {
            let what = match new.function_named(name) {
                Some(i) if since_build::runs_as_built(&self.target, new, i) => "reverted",
                Some(i) if since_build::runs_a_patch(&self.target, new, i) => "patched",
                _ => "reverted or patched",
            };
            by_what.entry(what).or_default().push(name.clone());
        }
        let said: Vec<String> = by_what
            .iter()
            .filter_map(|(what, names)| {
                let readable = shown_functions(names);
                (!readable.is_empty()).then(|| {
                    let verb = if readable.len() == 1 { "was" } else { "were" };
                    format!("{} {verb} {what}", listed(&readable))
                })
            })
            .collect();
        (!said.is_empty()).then(|| {
            format!(
                "{} by another relive command: patched again from {}, as it says now",
                said.join(" and "),
                source.display()
            )
        })
    }

    /// The compile of `source` the program was built from, as relive's
    /// baseline verified it: kept apart once a patch replaced it, else
    /// the current one while that is still it. `None` for a file whose
    /// baseline did not verify.
    fn built_compile(&self, source: &Path) -> Option<&ObjectFile> {
        match self.built.get(source) {
            Some(built) => Some(built),
            None => self
                .current
                .get(source)
                .filter(|_| self.current_is_built.contains(source)),
        }
    }

    /// Why a save must wait for another file, if it must: its functions
    /// call, or are called by, functions of another file that another
    /// relive command changed (see `unsettled`) and that still run other
    /// code than that file has, and that file is not saved with it.
    /// Patched alone, the save would run beside the other file's reverted
    /// code, and a signature both files' edits changed would be called the
    /// old way (a zlib trial: deflate.c patched again after a revert of the
    /// whole change called the original `_tr_flush_block` with its new
    /// arguments, and every stream failed). Functions found to run what
    /// their file has are settled on the way.
    fn waits_for_unsettled(
        &mut self,
        source: &Path,
        new: &ObjectFile,
        functions: &[usize],
        batch: &[(&Path, &ObjectFile)],
    ) -> Option<String> {
        let others: Vec<PathBuf> = self
            .unsettled
            .keys()
            .filter(|f| f.as_path() != source && !batch.iter().any(|(b, _)| b == f) && !self.saved_with.contains(f))
            .cloned()
            .collect();
        // Every file it waits for, each with why: named one at a time, a
        // zstd trial's save was held for driver.c, then, once that was
        // saved, for zdict.c.
        let mut waits: Vec<Wait> = Vec::new();
        // The macros this save changed from its file's compile as built
        // (`None` inside: that compile is not known).
        let mut changed_here: Option<Option<Vec<_>>> = None;
        for file in others {
            let Some(obj) = self.current.get(&file) else { continue };
            // A macro both files use, whose value this compile has and the
            // other file's code, taken back to the program's own, does not
            // (a QuickJS trial: after `revert --all`, a save of libregexp.c
            // was patched with a header's new LRE_FLAG_IGNORECASE while
            // quickjs.c ran the old one, and `/i` regexps failed).
            // Only a value this save gives the macro that its own file was
            // not built with: two files that define one macro differently
            // as built (lz4frame.c's own `assert`, xxhash.c's <assert.h>'s)
            // run as the program was built (an lz4 trial: a code edit of
            // xxhash.c was held for lz4frame.c's `assert` after a revert of
            // lz4frame.c). Read once, and a save that changes no macro
            // compares none.
            let changed_here = changed_here.get_or_insert_with(|| {
                self.built_compile(source)
                    .map(|own| relive_patch::debug_macros::changed(own, new))
            });
            let built = self
                .built
                .get(&file)
                .filter(|_| changed_here.as_ref().is_none_or(|c| !c.is_empty()));
            if let Some(built) = built {
                let mut split = relive_patch::debug_macros::disagreeing(new, built);
                if let Some(changed_here) = changed_here {
                    split.retain(|c| changed_here.iter().any(|h| h.name == c.name));
                }
                if let Some(listed) = relive_patch::debug_macros::listed(&split) {
                    waits.push(Wait::Macro {
                        file,
                        listed,
                        macros: split.len(),
                    });
                    continue;
                }
            }
            let names = self.unsettled.get(&file).cloned().unwrap_or_default();
            // What each of them calls, read once.
            let theirs: Vec<(&String, Vec<String>)> = names
                .iter()
                .map(|n| {
                    let calls = obj
                        .function_named(n)
                        .map_or_else(Vec::new, |j| relive_patch::callees::direct_callees(obj, j));
                    (n, calls)
                })
                .collect();
            // Those of them that touch this save, by a call either way,
            // unless the program's DWARF shows that the two sides agree on
            // the signature (the other runs the program's own code): a
            // trial on mimalloc had saves held, one after another, for
            // files that had never changed together.
            let mut touching: Vec<(String, String)> = Vec::new();
            for &i in functions {
                let ours = &new.symbols[i].name;
                let callees = relive_patch::callees::direct_callees(new, i);
                for (name, calls) in &theirs {
                    let (caller, callee) = match (callees.contains(name), calls.contains(ours)) {
                        (true, _) => (ours, *name),
                        (false, true) => (*name, ours),
                        (false, false) => continue,
                    };
                    if self.agree_as_built(source, new, i, &file, obj, name, caller == ours) {
                        continue;
                    }
                    // Which of the two, where the program tells: its own
                    // code runs there again, or another patch's (a libxz
                    // re-check: the watch had said "reverted" itself).
                    let what = match obj.function_named(name) {
                        Some(j) if since_build::runs_as_built(&self.target, obj, j) => "was reverted",
                        Some(_) => "was patched",
                        None => "was reverted or patched",
                    };
                    let how = format!(
                        "{} calls {}; {} ({}) {what} by another relive command",
                        relive_patch::names::readable(caller),
                        relive_patch::names::readable(callee),
                        relive_patch::names::readable(name),
                        file.display()
                    );
                    touching.push((how, (*name).clone()));
                }
            }
            if touching.is_empty() {
                continue;
            }
            let check = verify::functions_against_process(&self.target, obj, |n| touching.iter().any(|(_, t)| t == n));
            let runs_as_saved: Vec<String> = touching
                .iter()
                .map(|(_, t)| t.clone())
                .filter(|t| check.same.contains(t))
                .collect();
            self.settled_by(&file, &runs_as_saved);
            if let Some((how, _)) = touching.iter().find(|(_, t)| !runs_as_saved.contains(t)) {
                waits.push(Wait::Call { how: how.clone(), file });
            }
        }
        waited_for_said(source, &waits)
    }

    /// Whether function `i` of `new` (compiled from `source`) and the
    /// unsettled function `theirs` of `file` (its compile `obj`), one
    /// calling the other (`ours_calls`: `i` is the caller), agree on the
    /// callee's signature, as far as the program's DWARF tells: `theirs`
    /// runs the program's own code (a revert took it back), so it calls,
    /// or is, the callee as the program was built; the callee's new
    /// signature, or `new`'s prototype of it, must be that one.
    #[allow(clippy::too_many_arguments)]
    fn agree_as_built(
        &self,
        source: &Path,
        new: &ObjectFile,
        i: usize,
        file: &Path,
        obj: &ObjectFile,
        theirs: &str,
        ours_calls: bool,
    ) -> bool {
        let Some(j) = obj.function_named(theirs) else {
            return false;
        };
        // The callee's signature as the program was built (only known
        // where its code is the program's) and as the other side has it.
        if !since_build::runs_as_built(&self.target, obj, j) {
            return false;
        }
        let (callee, built, now) = match ours_calls {
            true => (
                theirs,
                since_build::built_signatures(&self.target, file, obj, &[j], true, false),
                relive_patch::signature::declarations(new, &[theirs]),
            ),
            // Its original code calls ours by the prototype the program
            // was built with, whatever runs for ours now.
            false => {
                let ours = new.symbols[i].name.as_str();
                (
                    ours,
                    since_build::built_signatures(&self.target, source, new, &[i], true, true),
                    relive_patch::signature::definitions_resolved(new, &[ours]),
                )
            }
        };
        matches!((built.get(callee), now.get(callee)), (Some(a), Some(b)) if relive_patch::signature::agree(b, a))
    }

    /// `functions` of `source` run what its last compile has: no longer
    /// unsettled.
    fn settled_by(&mut self, source: &Path, functions: &[String]) {
        if let Some(names) = self.unsettled.get_mut(source) {
            // A function's cold part (`f.cold`) comes with it: patched
            // when it is. Left unsettled, the next save said it "was
            // reverted or patched by another relive command" again, and
            // patched its function for it (`main`, NOT REACHABLE: a
            // LevelDB trial).
            let settles = |n: &String| {
                functions.contains(n)
                    || relive_patch::names::hot_part(n).is_some_and(|hot| functions.iter().any(|f| f == hot))
            };
            names.retain(|n| !settles(n));
            if names.is_empty() {
                self.unsettled.remove(source);
            }
        }
    }

    /// Reads the process's modules and symbols again when its mapped files
    /// changed (a library loaded or unloaded since).
    fn refresh_target(&mut self) -> Result<(), ReloadError> {
        let now_mapped = mapped_files(self.process)?;
        if now_mapped != self.mapped {
            self.target = Target::open(self.process)?;
            self.mapped = now_mapped;
        }
        Ok(())
    }

    /// With [`Reloader::followers`]: the program's other processes (workers
    /// it forked), each journal settled before the process itself is
    /// patched (a worker forked after an earlier patch adopts its parent's
    /// journal, which it could not once the parent is patched again).
    fn settle_tree(&mut self) -> Vec<u32> {
        if self.followers == fleet::Followers::None {
            return Vec::new();
        }
        let scanned = self.tree_scan.take().and_then(|scan| scan.join().ok());
        let workers = scanned.unwrap_or_else(|| fleet::followers(self.process.pid(), &self.followers));
        fleet::settle_new(&self.target.journal_dir, &workers);
        workers
    }

    /// With [`Reloader::followers`]: the program's processes are listed while
    /// the sources compile (reading every process's `/proc` entry takes a
    /// millisecond or more, on a busy host several), not after.
    fn start_tree_scan(&mut self) {
        // A scan a reload left unused (nothing to patch) is stale: anew.
        if self.followers != fleet::Followers::None {
            let (root, followers) = (self.process.pid(), self.followers.clone());
            self.tree_scan = Some(std::thread::spawn(move || fleet::followers(root, &followers)));
        }
    }

    /// The patch just made in the process itself (`reports`, of `units`)
    /// made in each of `workers` too. A worker forked after it runs it
    /// already; one that exited needs nothing. If one cannot be patched,
    /// every one patched is rolled back, the process itself too, and the
    /// error says so: the program's processes never run different code.
    fn spread(
        &mut self,
        workers: &[u32],
        units: &[apply::Unit],
        reports: &[apply::PatchReport],
    ) -> Result<Vec<u32>, String> {
        let mut done: Vec<(u32, u64)> = Vec::new();
        let mut failure = None;
        for &pid in workers {
            let patched = relive_process::open(pid).map_err(PatchError::from).and_then(|process| {
                let mut target = Target::open(process.as_ref())?;
                drop(target.transaction()?);
                if reports.iter().any(|r| fleet::runs_already(&target, r)) {
                    return Ok(None);
                }
                apply::patch_together(&mut target, units, Timing::default())?;
                Ok(Some(target.journal.changes))
            });
            match patched {
                Ok(Some(change)) => done.push((pid, change)),
                Ok(None) => {}
                Err(_) if matches!(relive_process::started_at(pid), Ok(None)) => {}
                Err(e) => {
                    failure = Some((pid, e));
                    break;
                }
            }
        }
        let Some((pid, e)) = failure else {
            return Ok(done.into_iter().map(|(pid, _)| pid).collect());
        };
        let (_, mut undone) = fleet::roll_back(&done);
        let change = self.target.journal.changes;
        let applied = reports.iter().any(|r| !r.applied.is_empty());
        if let Err(e) = applied
            .then(|| apply::undo_change(&mut self.target, change))
            .transpose()
        {
            undone.push(format!("process {} could not be rolled back ({e})", self.process.pid()));
        }
        let outcome = match undone.is_empty() {
            true => "every process of the program was rolled back and runs what it ran before".to_string(),
            false => undone.join("; "),
        };
        Err(format!(
            "not patched: process {pid}, a worker of process {}, could not be patched ({e}); {outcome}",
            self.process.pid()
        ))
    }

    /// Where a patch of `file` needs `symbol` and another watched file's
    /// last compile defines it as a variable: why that is not enough (a
    /// variable comes into the program with a patched function of its
    /// file that uses it), and what does it. Said with the refusal, which
    /// otherwise read as if nothing defined it.
    fn variable_only_provider(&self, file: &str, symbol: &str) -> Option<String> {
        let (provider, _) = self.current.iter().find(|(path, obj)| {
            path.as_path() != Path::new(file)
                && obj.symbols.iter().any(|s| {
                    s.name == symbol && !s.local && s.kind == relive_patch::objfile::Kind::Object && s.size > 0
                })
        })?;
        Some(format!(
            " ({symbol} is a variable {} defines, which the program lacks: relive adds a new variable with a patched function of its file that uses it, and none of {} does yet; use it in a function there, or restart the program)",
            provider.display(),
            provider.display()
        ))
    }

    /// The variables `report` added to the program from `new` (of
    /// `source`) start with their initial value there: an edit that puts
    /// one back is no change to speak of, as for the program's own (a jq
    /// trial: a patch-added `int bonus = 7` edited to 9 and back to 7 was
    /// said to change again).
    fn start_added_values(&mut self, source: &Path, new: &ObjectFile, report: &apply::PatchReport) {
        let started = self.started_with.entry(source.to_path_buf()).or_default();
        for added in &report.added_variables {
            let value = new
                .symbols
                .iter()
                .position(|s| s.name == added.symbol)
                .and_then(|i| relive_patch::select::initial_value(new, i));
            if let Some(value) = value {
                started.entry(added.symbol.clone()).or_insert(value);
            }
        }
    }

    /// Patches `functions` of `new` (compiled from `source`) over `old`
    /// and fills in `event`.
    fn apply(
        &mut self,
        event: &mut ReloadEvent,
        source: &Path,
        new: &ObjectFile,
        old: Option<&ObjectFile>,
        functions: &[usize],
    ) -> Result<(), ReloadError> {
        self.awaits_other_file = false;
        self.refresh_target()?;
        let workers = self.settle_tree();
        let changed = self.stale_signatures.get(source).cloned().unwrap_or_default();
        let built = self.built.get(source).cloned();
        let unit = apply::Unit {
            obj: new,
            base: old,
            built: built.as_deref(),
            functions,
            changed_signatures: &changed,
        };
        let result = apply::patch_together(&mut self.target, std::slice::from_ref(&unit), Timing::default());
        match result.map(|mut reports| reports.remove(0)) {
            Ok(report) => match self.spread(&workers, &[unit], std::slice::from_ref(&report)) {
                Ok(pids) => {
                    record_patch(event, &report);
                    if let Some(old) = old {
                        event.inlined_edits = edited::inlined_edits(old, new, &event.patched_names());
                    }
                    self.start_added_values(source, new, &report);
                    event.processes = pids;
                    event.processes_are = self.followers.described();
                }
                Err(why) => {
                    event.event = EventKind::Refused;
                    event.message = Some(why);
                }
            },
            Err(PatchError::Process(e)) => return Err(PatchError::Process(e).into()),
            Err(e) => {
                let missing = match &e {
                    PatchError::Link(relive_patch::link::LinkError::MissingSymbol { symbol, .. }) => Some(symbol),
                    _ => None,
                };
                self.awaits_other_file = missing.is_some();
                let provider = missing.and_then(|symbol| self.variable_only_provider(&event.file, symbol));
                event.event = EventKind::Refused;
                event.message = Some(e.to_string() + &provider.unwrap_or_default());
            }
        }
        Ok(())
    }
}

/// How `obj` refers to the function `name` it does not define: one entry
/// per reference, `true` for a call or a jump to it, `false` for
/// anything else (its address taken, stored in data).
fn references(obj: &ObjectFile, name: &str) -> Vec<bool> {
    use relive_patch::objfile::{Kind, Target};
    let named = |r: &&relive_patch::objfile::Reloc| matches!(&r.target, Target::Undefined(n) if n == name);
    let in_code = obj
        .symbols
        .iter()
        .filter(|s| s.kind == Kind::Function)
        .flat_map(|s| s.relocs.iter().filter(named).map(|r| is_call(s.bytes.as_deref(), r)));
    let in_data = obj
        .symbols
        .iter()
        .filter(|s| s.kind != Kind::Function)
        .flat_map(|s| s.relocs.iter().filter(named).map(|_| false));
    in_code.chain(in_data).collect()
}

/// The functions of `obj` that refer to `name`, an undefined symbol.
fn callers_in(obj: &ObjectFile, name: &str) -> Vec<String> {
    use relive_patch::objfile::{Kind, Target};
    obj.symbols
        .iter()
        .filter(|s| s.kind == Kind::Function)
        .filter(|s| {
            s.relocs
                .iter()
                .any(|r| matches!(&r.target, Target::Undefined(n) if n == name))
        })
        .map(|s| s.name.clone())
        .collect()
}

/// The files whose code would call a function whose signature changed
/// the old way ([`Reloader::callers_the_old_way`]).
#[derive(Default)]
struct OldWayCallers {
    /// Calling it by the old prototype (or running the build's callers).
    old_way: Vec<PathBuf>,
    /// Taking its address: calls through a pointer no save can follow.
    pointers: Vec<PathBuf>,
}

/// Whether relocation `r` of a function whose bytes are `code` is the
/// target of a call or a jump: `R_X86_64_PLT32`; a `PC32` field after a
/// `call`, `jmp` or `jcc` opcode (older assemblers); a `GOTPCREL(X)` field
/// after `call *` or `jmp *` (`-fno-plt`, as Arch Linux's packages build).
/// Anything else takes the address (a review: `-fno-plt` callers were
/// said to take it, and told to restart).
fn is_call(code: Option<&[u8]>, r: &relive_patch::objfile::Reloc) -> bool {
    if r.r_type == PLT32 {
        return true;
    }
    let (Some(code), Ok(at)) = (code, usize::try_from(r.offset)) else {
        return false;
    };
    let before = |back: usize| at.checked_sub(back).and_then(|i| code.get(i)).copied();
    match r.r_type {
        PC32 => {
            matches!(before(1), Some(0xe8 | 0xe9))
                || (before(2) == Some(0x0f) && before(1).is_some_and(|b| (0x80..=0x8f).contains(&b)))
        }
        GOTPCREL | GOTPCRELX | REX_GOTPCRELX => before(2) == Some(0xff) && matches!(before(1), Some(0x15 | 0x25)),
        _ => false,
    }
}

/// `R_X86_64_PLT32`: a call.
const PLT32: u32 = 4;
/// `R_X86_64_PC32`, `R_X86_64_GOTPCREL`, `R_X86_64_GOTPCRELX` and
/// `R_X86_64_REX_GOTPCRELX`: see [`is_call`].
const PC32: u32 = 2;
const GOTPCREL: u32 = 9;
const GOTPCRELX: u32 = 41;
const REX_GOTPCRELX: u32 = 42;

/// Where one file's reload stands before anything is patched.
enum Step {
    /// Nothing to patch: the event says what happened.
    Done(ReloadEvent),
    /// `functions` of the fresh compile `new` to patch.
    Patch {
        new: Box<ObjectFile>,
        functions: Vec<usize>,
        event: ReloadEvent,
    },
}

impl Step {
    /// `event` refused for `why`, its total time counted from `start`.
    fn refused(mut event: ReloadEvent, why: String, start: Instant) -> Step {
        event.event = EventKind::Refused;
        event.message = Some(why);
        event.timing_us.total = start.elapsed().as_micros() as u64;
        Step::Done(event)
    }
}

/// The outcome of trying files saved together as one transaction.
enum Together {
    Done(Vec<ReloadEvent>),
    /// Not as one: to be reloaded one by one (and why, when they were
    /// tried as one).
    OneByOne(Vec<Fresh>, Option<String>),
    /// The file (first) uses what no file of the save brings into the
    /// program, or was tried again and is still held or refused (and why,
    /// and which): it is left out as that, and the others are patched
    /// together without it.
    Without(PathBuf, String, EventKind, Vec<Fresh>),
}

/// How many of the other files a step's note names; the rest are
/// counted.
const TOGETHER_NAMED: usize = 3;

/// Notes on `event` (of `source`) the other files of `names` it was
/// patched with in one transaction: a few by name, the rest counted (a
/// libxz trial's 11-file catch-up repeated all ten other paths under
/// every file's line).
fn note_together(event: &mut ReloadEvent, source: &Path, names: &[String]) {
    let me = source.display().to_string();
    let others: Vec<&str> = names.iter().filter(|n| **n != me).map(String::as_str).collect();
    let listed = match others.len().saturating_sub(TOGETHER_NAMED) {
        0 => others.join(", "),
        more => format!(
            "{} and {more} more file{}",
            others[..TOGETHER_NAMED].join(", "),
            if more == 1 { "" } else { "s" }
        ),
    };
    event.notes.push(format!("patched in one step with {listed}"));
}

/// A compiler's messages without the line and column numbers of the
/// places they name: each line's `FILE:LINE:COL:` start, and the line
/// number of a quoted source line (`  1620 |   code`).
fn without_places(text: &str) -> String {
    let digitless = |s: &str| s.chars().filter(|c| !c.is_ascii_digit()).collect::<String>();
    text.lines()
        .map(|line| match line.split_once(" | ").or_else(|| line.split_once(": ")) {
            Some((place, rest)) => format!("{}\u{0}{rest}", digitless(place)),
            None => line.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Fills in `event` from the report of the patch it describes.
fn record_patch(event: &mut ReloadEvent, report: &apply::PatchReport) {
    event.event = EventKind::Patched;
    let (reachable, unreachable): (Vec<_>, Vec<_>) = report.applied.iter().partition(|a| a.reach.reachable);
    event.functions = reachable.iter().map(|a| a.symbol.clone()).collect();
    event.unreachable = unreachable.iter().map(|a| a.symbol.clone()).collect();
    event.unreachable_harmless = unreachable
        .iter()
        .filter(|a| {
            a.reach.note.as_deref().is_some_and(|n| {
                n.starts_with(relive_patch::reach::NOTHING_CALLS) || n.starts_with(relive_patch::reach::ONLY_LINES)
            })
        })
        .map(|a| a.symbol.clone())
        .collect();
    event.added = report.added.iter().map(|a| a.symbol.clone()).collect();
    event.added_variables = report.added_variables.iter().map(|a| a.name.clone()).collect();
    event.constructed = report.constructed.clone();
    let moved: Vec<&apply::Applied> = report
        .applied
        .iter()
        .filter(|a| a.reach.lines_moved.is_some())
        .collect();
    event.lines_moved = moved.iter().map(|a| a.symbol.clone()).collect();
    // Notes made before the patch (a function patched again) stay first;
    // several functions whose line numbers alone changed share one note
    // (an edit near the top of SQLite's unit moves hundreds).
    let shared = moved.len() > 1;
    event.notes.extend(
        report
            .applied
            .iter()
            .filter(|a| !shared || a.reach.lines_moved.is_none())
            .filter_map(|a| a.reach.note.clone()),
    );
    if shared {
        let moved: Vec<(&str, i64, bool)> = moved
            .iter()
            .filter_map(|a| Some((a.symbol.as_str(), a.reach.lines_moved?, a.reach.reachable)))
            .collect();
        event.notes.push(relive_patch::reach::lines_moved_together_note(&moved));
    }
    event.notes.extend(report.warnings.iter().cloned());
    // A long session's edits fill pools with superseded generations:
    // freeing them is said, as the one-shot patch says it.
    event.notes.extend(report.reclaimed.freed.iter().map(|f| {
        format!(
            "freed the pool at {:#x} ({} KiB): only superseded generations were left in it",
            f.addr,
            f.len >> 10
        )
    }));
    // One note per thing said (each static initializer gave the same).
    let mut seen = std::collections::HashSet::new();
    event.notes.retain(|n| seen.insert(n.clone()));
    event.hooks = report.hooks.clone();
    if event.functions.is_empty() && event.added.is_empty() {
        event.event = EventKind::Unreachable;
    }
    event.timing_us.link = report.timing_us.link;
    event.timing_us.apply = report.timing_us.total.saturating_sub(report.timing_us.link);
    event.pause_us = report.pause_us;
}

/// Whether the file at `path` holds nothing but white space (a file that
/// cannot be read is not: its compile says why).
fn is_blank(path: &Path) -> bool {
    const SMALL: u64 = 4096;
    match std::fs::metadata(path) {
        Ok(m) if m.len() == 0 => true,
        Ok(m) if m.len() <= SMALL => std::fs::read(path).is_ok_and(|text| text.iter().all(u8::is_ascii_whitespace)),
        _ => false,
    }
}

/// How long after a write a compile failure waits for more of it before
/// it is reported.
const WRITE_GRACE: std::time::Duration = std::time::Duration::from_millis(150);

/// Why a compile's failure is not reported: the file changed while it
/// compiled, or right after.
const SUPERSEDED: &str = "the file was written again while it compiled; compiling the newer save";

/// What to do when a compile is not the build's, for messages.
pub const FIX_FLAGS: &str = "the compile command probably lacks the build's -D/-I options (or, for C++, its -std=) or the sources differ from the running build: record the build's commands with `relive build -- make` (or another compile_commands.json), or give them with --cc";

/// How a baseline compile compares with the running program.
#[derive(Debug)]
pub enum Baseline {
    /// No function differs.
    Verified(Verification),
    /// Some functions differ. `edited`: the file (or a header it
    /// includes) was modified after the program was built, so an edit
    /// made while no relive ran is a likely reason. `trusted`: the compile
    /// command is known to be the build's whole command and other
    /// functions of the file match, so the difference is that edit.
    Differs {
        check: Verification,
        edited: bool,
        trusted: bool,
    },
    /// It does not compile now.
    CompileError(String),
}

/// What another command did to `symbols` between the journals `before`
/// and `now`, as a user would say it (names readable): "reverted f, g and
/// patched h" (it said "reverted or patched" of a plain revert: a curl
/// trial).
fn what_changed(
    before: &relive_patch::journal::Journal,
    now: &relive_patch::journal::Journal,
    symbols: &[String],
) -> String {
    let generation = |journal: &relive_patch::journal::Journal, symbol: &str| {
        journal.patches.iter().find(|p| p.name == symbol).map(|p| p.generation)
    };
    // A function a patch added, gone with its pool: removed, not
    // reverted (a SQLite trial: the revert said "gone reliveScale", and
    // relive run said "reverted reliveScale").
    let added = |journal: &relive_patch::journal::Journal, symbol: &str| {
        journal.added.iter().any(|a| a.kind == "function" && a.name == symbol)
    };
    let (mut reverted, mut patched, mut removed) = (Vec::new(), Vec::new(), Vec::new());
    for symbol in symbols {
        let name = relive_patch::names::readable(symbol);
        match (generation(before, symbol), generation(now, symbol)) {
            (Some(was), Some(is)) if is < was => reverted.push(name),
            (None, None) if added(before, symbol) && !added(now, symbol) => removed.push(name),
            (_, None) => reverted.push(name),
            _ => patched.push(name),
        }
    }
    let said: Vec<String> = [("reverted", reverted), ("patched", patched), ("removed", removed)]
        .into_iter()
        .filter(|(_, names)| !names.is_empty())
        .map(|(verb, names)| format!("{verb} {}", listed(&names)))
        .collect();
    match said.as_slice() {
        [] => format!("changed {}", listed(symbols)),
        [one] => one.clone(),
        [first @ .., last] => format!("{} and {last}", first.join(", ")),
    }
}

/// Why a save waits for another file (see
/// `Reloader::waits_for_unsettled`).
enum Wait {
    /// The file uses `macros` macros whose value the save changes, and
    /// runs its own code built with the other value (`listed`: the
    /// macros and their values).
    Macro {
        file: PathBuf,
        listed: String,
        macros: usize,
    },
    /// A call between the save's functions and the file's (`how`), whose
    /// code runs other than the file has it.
    Call { how: String, file: PathBuf },
}

impl Wait {
    fn file(&self) -> &Path {
        match self {
            Wait::Macro { file, .. } | Wait::Call { file, .. } => file,
        }
    }
}

/// What a held save of `source` says of the files it waits for: `None`
/// for none. The files a macro splits are said in one sentence (three
/// files' were three copies of it, a PCRE2 trial), each call on its own;
/// then how the save goes in.
fn waited_for_said(source: &Path, waits: &[Wait]) -> Option<String> {
    let first = waits.first()?;
    let mut said: Vec<String> = Vec::new();
    let split: Vec<(&Path, &str, usize)> = waits
        .iter()
        .filter_map(|w| match w {
            Wait::Macro { file, listed, macros } => Some((file.as_path(), listed.as_str(), *macros)),
            Wait::Call { .. } => None,
        })
        .collect();
    if let Some(&(_, first_listed, _)) = split.first() {
        let names: Vec<String> = split.iter().map(|(f, ..)| f.display().to_string()).collect();
        let macros = split.iter().map(|&(.., n)| n).max().unwrap_or(1);
        // The values once when every file's are the same, else by file.
        let values = match split.iter().all(|&(_, l, _)| l == first_listed) {
            true => first_listed.to_string(),
            false => split
                .iter()
                .map(|(f, l, _)| format!("{}: {l}", f.display()))
                .collect::<Vec<_>>()
                .join("; "),
        };
        let (it, runs, reverted) = match names.len() {
            1 => ("it", "runs its", "reverted it"),
            _ => ("they", "run their", "reverted them"),
        };
        said.push(format!(
            "{} uses {} that {} also {}; {it} {runs} own code, built with the other value (another relive command {reverted}): patched alone, the files would use different values ({values})",
            source.display(),
            if macros == 1 { "a macro" } else { "macros" },
            listed(&names),
            if names.len() == 1 { "uses" } else { "use" },
        ));
    }
    // The calls listed, then what they mean once (a libxz trial's held
    // line said it again for each caller, 1-2 KB).
    let calls: Vec<&str> = waits
        .iter()
        .filter_map(|w| match w {
            Wait::Call { how, .. } => Some(how.as_str()),
            Wait::Macro { .. } => None,
        })
        .collect();
    match calls.as_slice() {
        [] => {}
        [one] => said.push(format!(
            "{one}, so the program runs other code for it than its file has: patched alone, this file would run beside that code (a signature the two files' edits changed would be called the old way)"
        )),
        many => said.push(format!(
            "{}: the program runs other code for each than its file has, and patched alone, this file would run beside that code (a signature the files' edits changed would be called the old way)",
            many.join("; ")
        )),
    }
    let files: Vec<String> = waits.iter().map(|w| w.file().display().to_string()).collect();
    let how_it_goes_in = match waits.len() {
        1 => format!(
            "this file is tried again when {} (or any file) is saved, and goes in with it once nothing else holds either back",
            first.file().display()
        ),
        _ => format!(
            "save {} too (together, or one after another: this file goes in with the last), or undo the edit",
            listed(&files)
        ),
    };
    Some(format!("{}; {how_it_goes_in}", said.join("; ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cold part goes with its function in a message; alone, it is
    /// named (it is all there is to name).
    #[test]
    fn a_cold_part_is_not_named_beside_its_function() {
        let names = |list: &[&str]| shown_functions(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(names(&["f", "f.cold", "g"]), ["f", "g"]);
        assert_eq!(names(&["f.isra.0", "f.isra.0.cold"]), ["f.isra.0"]);
        assert_eq!(names(&["h.cold"]), ["h.cold"]);
    }

    /// A long C++ name keeps the function's own name: template arguments
    /// go first, then parameter lists, and what is still too long loses its
    /// start (LevelDB's names, cut in their middle, hid it).
    #[test]
    fn long_names_keep_the_functions_own_name() {
        let singleton = format!(
            "leveldb::(anonymous namespace)::SingletonEnv<leveldb::(anonymous namespace)::PosixEnv{}>::AssertEnvNotInitialized() [clone .part.0]",
            "<int, std::allocator<int> >".repeat(4)
        );
        assert_eq!(
            shortened(&singleton),
            "leveldb::(anonymous namespace)::SingletonEnv<…>::AssertEnvNotInitialized() [clone .part.0]"
        );
        let read_block = format!(
            "leveldb::ReadBlock(leveldb::RandomAccessFile*, leveldb::ReadOptions const&, leveldb::BlockHandle const&, leveldb::BlockContents*{})",
            ", int".repeat(5)
        );
        assert_eq!(shortened(&read_block), "leveldb::ReadBlock(…)");
        let operator = format!("std::vector<int{}>::operator<<(int)", " ".repeat(130));
        assert_eq!(shortened(&operator), "std::vector<…>::operator<<(int)");
        let short = "calc(int, int)";
        assert_eq!(shortened(short), short);
        let plain = "x".repeat(200);
        let cut = shortened(&plain);
        assert!(cut.starts_with('…') && cut.chars().count() == 120, "{cut}");
        // Unbalanced: whole, then cut at its start.
        let odd = format!("f<{}", "a".repeat(150));
        assert!(shortened(&odd).ends_with(&"a".repeat(50)));
    }

    #[test]
    fn a_save_that_only_adds_a_function_says_it_added_it() {
        let mut e = ReloadEvent::new(Path::new("lauxlib.c"));
        e.event = EventKind::Patched;
        e.added = vec!["relive_sep_hint".into()];
        let said = e.summary_listing(false);
        assert!(said.starts_with("added relive_sep_hint"), "{said}");
        // What a new static initializer constructed is said instead of
        // the helpers it needed.
        e.constructed = vec!["banner".into()];
        let said = e.summary_listing(false);
        assert!(said.starts_with("constructed banner"), "{said}");
    }

    #[test]
    fn a_save_held_for_several_calls_says_what_they_mean_once() {
        let call = |how: &str, file: &str| Wait::Call {
            how: how.into(),
            file: PathBuf::from(file),
        };
        let waits = [
            call(
                "g calls f; g (/p/b.c) was reverted or patched by another relive command",
                "/p/b.c",
            ),
            call(
                "h calls f; h (/p/c.c) was reverted or patched by another relive command",
                "/p/c.c",
            ),
        ];
        let said = waited_for_said(Path::new("/p/a.c"), &waits).unwrap();
        assert_eq!(said.matches("patched alone").count(), 1, "{said}");
        assert!(
            said.starts_with("g calls f; g (/p/b.c) was reverted or patched by another relive command; h calls f;"),
            "{said}"
        );
        assert!(said.contains("save /p/b.c, /p/c.c too"), "{said}");
    }

    #[test]
    fn files_patched_together_are_named_a_few_at_a_time() {
        let names: Vec<String> = (0..6).map(|k| format!("/p/f{k}.c")).collect();
        let mut e = ReloadEvent::new(Path::new("/p/f0.c"));
        note_together(&mut e, Path::new("/p/f0.c"), &names);
        assert_eq!(
            e.notes,
            ["patched in one step with /p/f1.c, /p/f2.c, /p/f3.c and 2 more files"]
        );
        let mut e = ReloadEvent::new(Path::new("/p/f0.c"));
        note_together(&mut e, Path::new("/p/f0.c"), &names[..3]);
        assert_eq!(e.notes, ["patched in one step with /p/f1.c, /p/f2.c"]);
    }

    #[test]
    fn a_save_that_only_changes_a_static_initializer_says_so() {
        let mut e = ReloadEvent::new(Path::new("app.cpp"));
        e.event = EventKind::Patched;
        e.unreachable = vec!["_GLOBAL__sub_I_app.cpp".into()];
        let said = e.summary_listing(false);
        assert!(
            said.starts_with("only the file's static initializer changed, which runs when the program starts"),
            "{said}"
        );
        // Taken back: not named by its compiler name among the program's
        // own code (a HarfBuzz trial).
        e.unreachable.clear();
        e.reverted = vec!["_GLOBAL__sub_I_app.cpp".into()];
        let said = e.summary_listing(false);
        assert!(
            said.starts_with("only the file's static initializer changed") && !said.contains("_GLOBAL__"),
            "{said}"
        );
        // Beside a function's patch, only the function is named.
        e.functions = vec!["value".into()];
        let said = e.summary_listing(false);
        assert!(
            said.starts_with("patched value") && !said.contains("_GLOBAL__"),
            "{said}"
        );
    }

    #[test]
    fn other_processes_are_named_for_what_they_are() {
        let mut e = ReloadEvent::new(Path::new("app.c"));
        e.event = EventKind::Patched;
        e.functions = vec!["value".into()];
        e.processes = vec![7];
        assert!(e.summary_listing(false).contains("1 other process (forked workers): 7"));
        // `watch --exe`: processes started apart (it said forked workers).
        e.processes_are = fleet::Followers::Exe("/bin/app".into()).described();
        assert!(e
            .summary_listing(false)
            .contains("1 other process (running the same executable): 7"));
    }

    #[test]
    fn no_change_is_said_with_its_notes() {
        let mut e = ReloadEvent::new(Path::new("app.c"));
        e.timing_us.total = 1500;
        assert_eq!(e.no_change_listing(), "no function changed (1.5 ms)");
        e.notes.push(relive_patch::select::initial_value_note("limit"));
        assert_eq!(
            e.no_change_listing(),
            "no function changed (1.5 ms)\n  note: the initial value of limit changed: the program keeps the value it has (a restart takes the new one)"
        );
    }

    /// Warnings that moved with the lines above them are the same; other
    /// text is not.
    #[test]
    fn warnings_are_the_same_wherever_they_are() {
        let at = |line: u32| {
            format!("src/b.c:{line}:3: warning: cast between incompatible function types [-Wcast-function-type]\n {line} |   {{(cfunction_ptr)f_x, \"x\", 1}},\n      |    ^")
        };
        assert_eq!(without_places(&at(1620)), without_places(&at(1621)));
        assert_ne!(
            without_places(&at(1620)),
            without_places(&at(1620).replace("incompatible", "compatible"))
        );
    }

    /// New code no call runs is NOT REACHABLE where the user may have to
    /// act (a running call keeps the old code), and said plainly where
    /// there is nothing to act on: nothing calls it, or only its line
    /// numbers changed.
    #[test]
    fn unreachable_functions_with_nothing_to_act_on_are_not_in_capitals() {
        let mut event = ReloadEvent::new(Path::new("f.c"));
        event.event = EventKind::Patched;
        event.functions = vec!["edited".into()];
        event.unreachable = vec!["main".into(), "unused_api".into()];
        event.unreachable_harmless = vec!["unused_api".into()];
        let text = event.summary();
        assert!(text.contains("NOT REACHABLE main"), "{text}");
        assert!(text.contains("redirected unused_api, which nothing calls"), "{text}");
        assert!(!text.contains("NOT REACHABLE main, unused_api"), "{text}");
        event.unreachable_harmless.push("main".into());
        assert!(!event.summary().contains("NOT REACHABLE"), "{}", event.summary());
    }

    /// Functions patched only because lines above them moved are listed
    /// apart from those the edit changed, reachable or not; with nothing
    /// else changed there is no empty "patched".
    #[test]
    fn functions_whose_line_numbers_alone_moved_are_listed_apart() {
        let mut event = ReloadEvent::new(Path::new("f.c"));
        event.event = EventKind::Patched;
        event.functions = vec!["edited".into(), "logger".into()];
        event.unreachable = vec!["init".into()];
        event.unreachable_harmless = vec!["init".into()];
        event.lines_moved = vec!["logger".into(), "init".into()];
        let text = event.summary();
        assert!(
            text.starts_with("patched edited; line numbers only: logger, init ("),
            "{text}"
        );
        event.functions.retain(|f| f != "edited");
        let text = event.summary();
        assert!(text.starts_with("line numbers only: logger, init ("), "{text}");
    }

    /// Functions put back whose patches stayed are said as the program's
    /// own code, not as patched or moved.
    #[test]
    fn functions_put_back_but_patched_again_are_said_as_the_programs_own() {
        let mut event = ReloadEvent::new(Path::new("f.c"));
        event.event = EventKind::Patched;
        event.functions = vec!["caller".into(), "callee".into(), "logger".into()];
        event.lines_moved = vec!["logger".into(), "callee".into()];
        event.as_built = vec!["callee".into()];
        let text = event.summary();
        assert!(
            text.starts_with("patched caller; line numbers only: logger; back to the program's own code: callee (patched again with it: its patch could not be taken back on its own, as functions patched in one change with it stay patched) ("),
            "{text}"
        );
    }

    /// Edited functions with no code of their own are said with the
    /// patched functions they are inlined into.
    /// After a list of patched functions cut short ("N more"), the
    /// inlined edits follow a semicolon, not parentheses that read as the
    /// names left out (a tree-sitter trial).
    #[test]
    fn inlined_edits_after_a_list_cut_short_are_not_in_its_parentheses() {
        let mut event = ReloadEvent::new(Path::new("node.c"));
        event.event = EventKind::Patched;
        event.functions = (0..LISTED + 5).map(|k| format!("f{k}")).collect();
        event.inlined_edits = vec![edited::InlinedEdit {
            function: "helper".into(),
            into: vec!["f0".into(), "f1".into()],
            added: false,
        }];
        let text = event.summary();
        assert!(
            text.contains(", 5 more; f0, f1 inline helper, which was edited ("),
            "{text}"
        );
    }

    #[test]
    fn edits_inlined_into_patched_functions_are_said_with_them() {
        let mut event = ReloadEvent::new(Path::new("deflate.c"));
        event.event = EventKind::Patched;
        event.functions = vec!["fill_window".into(), "deflate_stored".into()];
        let inlined = |function: &str, into: &[&str]| edited::InlinedEdit {
            function: function.into(),
            into: into.iter().map(|s| s.to_string()).collect(),
            added: false,
        };
        event.inlined_edits = vec![inlined("read_buf", &["fill_window", "deflate_stored"])];
        let text = event.summary();
        assert!(
            text.starts_with("patched fill_window, deflate_stored (they inline read_buf, which was edited) ("),
            "{text}"
        );
        event.inlined_edits = vec![inlined("read_buf", &["fill_window"]), inlined("zero", &["fill_window"])];
        let text = event.summary();
        assert!(
            text.starts_with(
                "patched fill_window, deflate_stored (fill_window inlines read_buf, zero, which were edited) ("
            ),
            "{text}"
        );
        // Inlined only into functions whose new code cannot run.
        event.functions.clear();
        event.unreachable = vec!["fill_window".into()];
        let text = event.summary();
        assert!(
            text.starts_with("edited read_buf, zero, inlined into fill_window; NOT REACHABLE fill_window ("),
            "{text}"
        );
        // A helper the save added is said so, not "edited" (a Lua trial).
        event.functions = vec!["math_sqrt".into()];
        event.unreachable.clear();
        event.inlined_edits = vec![edited::InlinedEdit {
            added: true,
            ..inlined("twice_plus", &["math_sqrt"])
        }];
        let text = event.summary();
        assert!(
            text.starts_with("patched math_sqrt (it inlines twice_plus, which was added) ("),
            "{text}"
        );
        event.inlined_edits.push(inlined("read_buf", &["math_sqrt"]));
        let text = event.summary();
        assert!(
            text.starts_with("patched math_sqrt (it inlines twice_plus, read_buf, which were added or edited) ("),
            "{text}"
        );
    }

    /// A cold part is said with its function, and counted with it.
    #[test]
    fn cold_parts_go_with_their_function() {
        let functions: Vec<String> = ["f", "f.cold", "g.cold", "h"].iter().map(|n| n.to_string()).collect();
        assert_eq!(shown_functions(&functions), ["f", "g.cold", "h"]);
        assert!(cold_part_of_one_of("f.cold", &functions) && !cold_part_of_one_of("g.cold", &functions));
    }

    #[test]
    fn summaries_name_own_functions_and_count_the_rest() {
        let names: Vec<String> = [
            "_ZN8TriangleD0Ev",
            "_ZN8TriangleD1Ev",
            "_ZN8TriangleD2Ev",
            "_ZNSt17_Function_handlerIFiiEZ4workiEUliE_E9_M_invokeERKSt9_Any_dataOi",
            "_ZNSt14_Function_base13_Base_managerIZ4workiEUliE_E10_M_managerERSt9_Any_dataRKS3_St18_Manager_operation",
            "_ZZ4workiENKUliE_clEi",
            "main",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let brief = readable_list(&names, false);
        assert_eq!(
            brief,
            "Triangle::~Triangle() (3 variants), work(int)::{lambda(int)#1}::operator()(int) const, main, 2 standard-library template instances"
        );
        let every = readable_list(&names, true);
        assert!(
            every.contains("std::_Function_handler<int (int), work(int)::{lambda(int)#1}>::_M_invoke"),
            "{every}"
        );
        // Too long with nothing to elide: its end, the function's name,
        // stays.
        let long = format!("ns::{}::f()", "x".repeat(300));
        let cut = readable_list(std::slice::from_ref(&long), false);
        assert!(
            cut.chars().count() <= 120 && cut.starts_with('…') && cut.ends_with("x::f()"),
            "{cut}"
        );
        assert_eq!(readable_list(std::slice::from_ref(&long), true), long);
        let many: Vec<String> = (0..12).map(|k| format!("f{k}")).collect();
        assert!(readable_list(&many, false).ends_with("f7, 4 more"));
        assert!(in_standard_library(
            "int std::__invoke_impl<int, work(int)::{lambda(int)#2}&, int>(std::__invoke_other)"
        ));
        assert!(!in_standard_library("(anonymous namespace)::Circle::area() const"));
    }
}
