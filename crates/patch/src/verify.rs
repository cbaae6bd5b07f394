//! Is an object the code a process runs? Every later diff is made against
//! a baseline object, so a baseline compiled with other flags (a missing
//! `-D`, another `-O`) or from other sources than the running build makes
//! relive patch the wrong change. [`against_process`] compares each
//! function of the object with the running one, relocation-aware: bytes
//! outside relocated fields must be equal, and each relocated field must
//! denote the same thing (the same symbol, through the PLT or GOT when the
//! linker made it so, or a literal with the same bytes).

use crate::journal::PatchRecord;
use crate::link::{live_address, BaseNames, Resolver};
use crate::objfile::{rtype, Kind, ObjectFile, Reloc, Symbol, Target};
use crate::target::Target as LiveTarget;

/// How a difference reads where the running function starts with a jump:
/// redirected by a patch (see `relive verify`'s note on other state
/// directories).
pub const REDIRECTED: &str = "where it jumps elsewhere (redirected)";

/// How one function compares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// The running code is the object's.
    Same,
    /// It differs: where and how.
    Differs(String),
    /// The program has no such function (inlined everywhere, or dropped).
    Absent,
}

/// The result for one object: each function by name.
#[derive(Debug, Clone, Default)]
pub struct Verification {
    pub same: Vec<String>,
    /// (function, where it differs).
    pub differs: Vec<(String, String)>,
    pub absent: Vec<String>,
    /// Functions in `same` that a patch brought in but whose new code no
    /// call can run (`main`'s running loop, callers that inline it), with
    /// the patch's note: the entry is this code, what runs is the old one.
    pub unreached: Vec<(String, String)>,
    /// Functions in `same` whose calls running when they were patched keep
    /// their old code for good (a thread's outermost function), with the
    /// patch's note, or a thread runs the old code of now: later calls run
    /// this code.
    pub old_code_kept: Vec<(String, String)>,
    /// Functions in `same` whose new code no call can run, and which
    /// differ from the old code only in line numbers (an edit above them
    /// moved them: [`crate::line_shift`]), with the patch's note: they
    /// match.
    pub lines_only: Vec<(String, String)>,
    /// Functions in `same` that a patch redirected and that nothing in
    /// the program calls (callers that inline them), with the patch's
    /// note: their own entry is never called (the inlined copies are
    /// their callers' code, compared as theirs), so they match, and are
    /// said (status named one "not reached" while verify said nothing of
    /// it: a PCRE2 trial).
    pub never_called: Vec<(String, String)>,
    /// Functions in `differs` whose difference a patch or a revert
    /// explains (see [`note_reverted`]): no sign of a compile unlike the
    /// build's.
    pub reverted: Vec<String>,
    /// Functions taken out of `differs` by [`set_patched_over_apart`]:
    /// the object has the program's own code for them (as built), and the
    /// process runs a patch relive made of them, with a note naming it.
    pub patched_over: Vec<(String, String)>,
}

impl Verification {
    /// No function differs. (One whose functions are all absent from
    /// the program also passes: see [`Verification::compared`].)
    pub fn is_verified(&self) -> bool {
        self.differs.is_empty()
    }

    /// Whether any function could be compared at all.
    pub fn compared(&self) -> bool {
        !self.same.is_empty() || !self.differs.is_empty()
    }

    /// The names of the functions that differ.
    pub fn differing(&self) -> Vec<String> {
        self.differs.iter().map(|(n, _)| n.clone()).collect()
    }
}

/// The variables of `obj` (its writable data: globals and statics) whose
/// initial value differs from the one the program file gives them: an
/// edit of an initializer made before relive started, which no patch
/// brings into a running program (its variables keep their values).
/// Relocated fields (pointers) are not compared; zero-filled (`.bss`)
/// data on either side counts as zeros. A variable whose place cannot be
/// read from the program file is left out.
pub fn initial_values_against_program(target: &LiveTarget, obj: &ObjectFile) -> Vec<String> {
    use object::{Object, ObjectSection};
    let mut out = Vec::new();
    // Each module's file parsed once: (its path, the parse).
    let mut parsed: Vec<(String, Option<object::File>)> = Vec::new();
    for (i, s) in obj.symbols.iter().enumerate() {
        let state = obj.section(s.section).is_some_and(|sec| sec.state() && sec.loaded);
        if s.kind != Kind::Object || !state || s.size == 0 || s.size > MAX_COMPARED {
            continue;
        }
        let Some(addr) = live_address(obj, i, &target.resolver, &BaseNames::none()) else {
            continue;
        };
        let Some(module) = target.modules.containing(addr) else {
            continue;
        };
        let Some(image) = &module.image else { continue };
        let k = match parsed.iter().position(|(p, _)| *p == module.module.path) {
            Some(k) => k,
            None => {
                parsed.push((module.module.path.clone(), object::File::parse(image.data()).ok()));
                parsed.len() - 1
            }
        };
        let Some(file) = &parsed[k].1 else { continue };
        // The section the program file has it in: zero-filled (`.bss`,
        // whose first bytes may share a page with `.data`'s end, which a
        // file-backed mapping shows as the file's bytes), or its bytes.
        let at = addr.wrapping_sub(module.module.load_bias);
        let len = s.size as usize;
        let Some(section) = file
            .sections()
            .find(|sec| sec.address() <= at && at < sec.address().saturating_add(sec.size()))
        else {
            continue;
        };
        let built: Vec<u8> = match section.file_range() {
            None => vec![0; len],
            Some((offset, _)) => {
                let start = (offset + (at - section.address())) as usize;
                match image.data().get(start..start + len) {
                    Some(bytes) => bytes.to_vec(),
                    None => continue,
                }
            }
        };
        if s.unrelocated(starting_bytes(s)) != s.unrelocated(built) {
            out.push(s.name.clone());
        }
    }
    out
}

/// The variables of `obj` that an earlier patch added to the process (the
/// program was built without them) whose initial value in `obj` is not
/// the one that patch gave them (its journal record's): as with
/// [`initial_values_against_program`], the object is not quite what the
/// process runs, which keeps the value the variable has. A variable whose
/// record has no initial value (over [`INITIAL_RECORDED`] bytes, or added
/// by an older relive) is left out.
pub fn initial_values_against_patches(target: &LiveTarget, obj: &ObjectFile) -> Vec<String> {
    let mut out = Vec::new();
    for (i, s) in obj.symbols.iter().enumerate() {
        let state = obj.section(s.section).is_some_and(|sec| sec.state() && sec.loaded);
        if s.kind != Kind::Object || !state || s.size == 0 {
            continue;
        }
        let Some(addr) = live_address(obj, i, &target.resolver, &BaseNames::none()) else {
            continue;
        };
        let recorded = target
            .journal
            .added
            .iter()
            .find(|a| a.kind == "object" && a.addr == addr)
            .and_then(|a| a.initial.as_deref());
        if recorded.is_some_and(|value| Some(value) != initial_value(obj, i).as_deref()) {
            out.push(s.name.clone());
        }
    }
    out
}

/// The largest added variable whose initial value a journal record keeps
/// ([`initial_value`]): the record is read by every command.
pub const INITIAL_RECORDED: u64 = 4096;

/// Variable `i` of `obj`'s initial value as a patch that adds it records
/// it (see [`crate::journal::AddedRecord::initial`]): in hex, the value
/// [`crate::select::initial_value`] compares (relive run's note of an
/// edited initializer), zeros for zero-filled data; `None` over
/// [`INITIAL_RECORDED`] bytes.
pub fn initial_value(obj: &ObjectFile, i: usize) -> Option<String> {
    use std::fmt::Write as _;
    let s = obj.symbols.get(i).filter(|s| s.size <= INITIAL_RECORDED)?;
    let value = match s.bytes {
        Some(_) => crate::select::initial_value(obj, i)?,
        None => vec![0; s.size as usize],
    };
    Some(value.iter().fold(String::with_capacity(value.len() * 2), |mut hex, b| {
        let _ = write!(hex, "{b:02x}");
        hex
    }))
}

/// The bytes variable `s` starts with: its section's, or zeros for
/// zero-filled (`.bss`) data.
fn starting_bytes(s: &Symbol) -> Vec<u8> {
    s.bytes
        .as_deref()
        .map_or_else(|| vec![0; s.size as usize], <[u8]>::to_vec)
}

/// The largest variable [`initial_values_against_program`] compares (a
/// large buffer is read from the file for nothing).
const MAX_COMPARED: u64 = 1 << 20;

/// Why function `name` of `obj` cannot be compared with what runs, when
/// its entry in memory is not the program file's code although relive's
/// journal records no patch of it: something relive has no record of
/// changed it (a parent process that relive patched before it forked
/// this one, and patched again since; another patcher). `None` when the
/// entry is the program's, or is patched as the journal says.
pub fn entry_changed(target: &LiveTarget, obj: &ObjectFile, name: &str) -> Option<String> {
    let i = obj.symbols.iter().position(|s| s.name == name)?;
    let addr = live_address(obj, i, &target.resolver, &BaseNames::none())?;
    if target.journal.patch(addr).is_some() {
        return None;
    }
    let maps = target.process.maps().ok()?;
    let m = maps.iter().find(|m| m.contains(addr) && m.is_file())?;
    const LEN: usize = 8;
    let file = crate::apply::file_bytes(m, addr, LEN)?;
    let mut memory = vec![0u8; LEN];
    target.process.read(addr, &mut memory).ok()?;
    let pid = target.process.pid();
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    (memory != file).then(|| {
        format!(
            "{name}'s entry at {addr:#x} in process {pid} is not the program's code (it holds {}, {} has {}), and relive's journal records no patch of it: it was changed by something relive has no record of (a parent process relive patched before it forked this one, and patched again since; another patcher), so relive cannot tell what runs there and will not patch it; restart process {pid}",
            hex(&memory),
            m.path,
            hex(&file)
        )
    })
}

/// Whether `name` is an inline function of `obj` (C++, a weak COMDAT
/// symbol): compiled into every file that uses it, while the program runs
/// the one copy the linker kept, maybe another file's.
pub fn is_inline_function(obj: &ObjectFile, name: &str) -> bool {
    obj.function_named(name).is_some_and(|i| obj.symbols[i].weak)
}

/// Moves, in each of `checks` (objects of one program, each with its
/// comparison with the process), the differences of inline functions that
/// another object's copy matches to `same`: another file's copy that
/// differs (it calls that file's own local helpers or clones) says
/// nothing of its object (a LevelDB trial: version_set.cc's
/// `VersionEdit::~VersionEdit` "differed" while db_impl.cc's ran).
pub fn settle_inline_copies(checks: &mut [(&ObjectFile, &mut Verification)]) {
    let matched: std::collections::HashSet<String> = checks
        .iter()
        .flat_map(|(_, check)| check.same.iter().cloned())
        .collect();
    for (obj, check) in checks.iter_mut() {
        let (kept_elsewhere, differs): (Vec<_>, Vec<_>) = std::mem::take(&mut check.differs)
            .into_iter()
            .partition(|(name, _)| matched.contains(name) && is_inline_function(obj, name));
        check.differs = differs;
        check.same.extend(kept_elsewhere.into_iter().map(|(name, _)| name));
    }
}

/// The functions of `obj` with code (their names, in symbol order) and how
/// many of them the process has, by name, in its program or a library
/// it loaded: by lookup only, nothing compared. None: an object of
/// another program (what `verify` says "none of its functions is in").
pub fn functions_present(target: &LiveTarget, obj: &ObjectFile) -> (Vec<String>, usize) {
    let no_renames = BaseNames::none();
    let mut defined = Vec::new();
    let mut present = 0;
    for (i, sym) in obj.symbols.iter().enumerate() {
        if sym.kind != Kind::Function || sym.size == 0 || sym.bytes.is_none() {
            continue;
        }
        defined.push(sym.name.clone());
        present += usize::from(live_address(obj, i, &target.resolver, &no_renames).is_some());
    }
    (defined, present)
}

/// Compares every function of `obj` with the code `target`'s process runs
/// for it (the current version of a function relive has patched).
pub fn against_process(target: &LiveTarget, obj: &ObjectFile) -> Verification {
    functions_against_process(target, obj, |_| true)
}

/// [`against_process`] for the functions of `obj` whose names `wanted`
/// accepts.
pub fn functions_against_process(target: &LiveTarget, obj: &ObjectFile, wanted: impl Fn(&str) -> bool) -> Verification {
    let mut out = Verification::default();
    let no_renames = BaseNames::none();
    for (i, sym) in obj.symbols.iter().enumerate() {
        if sym.kind != Kind::Function || sym.size == 0 || sym.bytes.is_none() || !wanted(&sym.name) {
            continue;
        }
        let mut record = None;
        let check = match live_address(obj, i, &target.resolver, &no_renames) {
            None => Check::Absent,
            Some(addr) => {
                record = target.journal.patch(addr);
                let running = record
                    .map(|p| p.current_addr)
                    .or_else(|| cold_copy(target, obj, i))
                    .unwrap_or(addr);
                let live_size = target.resolver.size_at(addr);
                if running == addr && live_size != 0 && live_size != sym.size {
                    Check::Differs(format!("{} bytes long, the running one {live_size}", sym.size))
                } else {
                    function(target, obj, i, running)
                }
            }
        };
        match check {
            Check::Same => {
                // What runs is the old code: a difference when it is not
                // this too. A file's static initializer runs neither: it
                // ran when the program started.
                let initializer = crate::names::is_static_initializer(&sym.name);
                let noted = record.filter(|r| r.unreached.is_some() || r.old_code_kept.is_some());
                if let Some(record) = noted.filter(|r| !original(target, obj, i, r)) {
                    // One no call reaches at all runs neither version:
                    // its entry leads to this code (an LZ4 trial: unused
                    // wrappers "DIFFER", exit 5, said to run their old code).
                    let no_caller = |note: &String| note.starts_with(crate::reach::NOTHING_CALLS);
                    // Code that differs from this only in line numbers
                    // (an edit above it moved it) matches, with its note.
                    let only_lines = |note: &String| note.starts_with(crate::reach::ONLY_LINES);
                    match record.unreached.clone().filter(|_| !initializer) {
                        Some(note) if no_caller(&note) => out.never_called.push((sym.name.clone(), note)),
                        Some(note) if only_lines(&note) => out.lines_only.push((sym.name.clone(), note)),
                        Some(note) => out.unreached.push((sym.name.clone(), note)),
                        None => {}
                    }
                    if let Some(note) = record.old_code_kept.clone() {
                        out.old_code_kept.push((sym.name.clone(), note));
                    }
                }
                out.same.push(sym.name.clone());
            }
            Check::Differs(why) => out.differs.push((sym.name.clone(), why)),
            Check::Absent => out.absent.push(sym.name.clone()),
        }
    }
    out
}

/// Adds to each difference in `out` (a [`functions_against_process`] of
/// `obj`) that a patch or a revert explains why: the process runs a
/// relive patch of the function, or it was patched and then reverted, so
/// the program runs its original code, or its last generation was undone
/// (`revert --last`). `recorded`: the journal's
/// [`crate::journal::Journal::last_recorded_generations`]. Without it a
/// revert read as an edit relive had lost (a zstd re-check).
pub fn note_reverted(
    target: &LiveTarget,
    obj: &ObjectFile,
    recorded: &foldhash::HashMap<u64, crate::journal::Generation>,
    out: &mut Verification,
) {
    let mut groups = Vec::new();
    for (name, why) in out.differs.iter_mut() {
        let Some((i, addr)) = entry_of(target, obj, name) else {
            continue;
        };
        let readable = crate::names::readable(name);
        let last = recorded.get(&addr);
        let note = match (target.journal.patch(addr), last) {
            (None, None) => continue,
            (None, Some(last)) => format!(
                "; {readable} was patched ({}) and reverted since: the program runs its original code (patch it again to bring an edit back)",
                made_by(last)
            ),
            (Some(now), Some(last)) if now.generation < last.generation => format!(
                "; generation {} of {readable} ({}) was undone (`relive revert --last`): the program runs generation {}",
                last.generation,
                made_by(last),
                now.generation
            ),
            // A patch in force: what runs is its code (an Oniguruma trial:
            // a one-shot patch from a copy of the sources, said only to
            // DIFFER). It explains the difference only where this object
            // is the program's own code there; otherwise the object
            // differs from both, and may still be another compile.
            (Some(now), _) => {
                let made = now.history.last().map_or(String::new(), |g| format!(" ({})", made_by(g)));
                if !original(target, obj, i, now) {
                    why.push_str(&format!(
                        "; it runs generation {} of a relive patch{made}, not this object's code",
                        now.generation
                    ));
                    continue;
                }
                // A patch whose new code no call can run: the calls that
                // run run this code (a Lua trial's `main`: said to differ,
                // and nothing more).
                if now.unreached.is_some() {
                    why.push_str(&format!(
                        "; its entry leads to generation {} of a relive patch{made}, whose code no call could run when it was patched (NOT REACHABLE): the running calls run this object's code, the program's own",
                        now.generation
                    ));
                    // Explained by that patch, as a patch in force is.
                    out.reverted.push(name.clone());
                    continue;
                }
                format!(
                    "; it runs generation {} of a relive patch{made}, and this object is the program's own code for it (`{}` brings that back)",
                    now.generation,
                    crate::apply::revert_command(target, now, &mut groups)
                )
            }
        };
        why.push_str(&note);
        out.reverted.push(name.clone());
    }
}

/// Takes out of `out.differs` (a [`functions_against_process`] of `obj`)
/// the functions whose difference is a patch relive made of them, into
/// `out.patched_over`: `obj` has the program's own code for each (its
/// original bytes), and the process runs a generation of a patch, from
/// another copy or an earlier relive command. What a baseline compile
/// of a file means by them: not a compile unlike the build's (a SQLite
/// trial's `relive watch --cc` with the build's exact flags blamed the
/// compile command for a function a one-shot patch had replaced, and
/// refused edits of it), and not an edit to catch up.
pub fn set_patched_over_apart(target: &LiveTarget, obj: &ObjectFile, out: &mut Verification) {
    let mut differs = Vec::new();
    for (name, why) in std::mem::take(&mut out.differs) {
        let record = entry_of(target, obj, &name).and_then(|(i, addr)| {
            let record = target.journal.patch(addr)?;
            original(target, obj, i, record).then_some(record)
        });
        let Some(record) = record else {
            differs.push((name, why));
            continue;
        };
        let made = record
            .history
            .last()
            .map_or(String::new(), |g| format!(" ({})", made_by(g)));
        let note = format!(
            "it runs generation {} of a relive patch{made}, and this compile is the program's own code for it",
            record.generation
        );
        out.patched_over.push((name, note));
    }
    out.differs = differs;
}

/// The relive patch in force of function `name` of `obj` (by its entry
/// in the program), if one is.
pub fn patch_in_force<'t>(target: &'t LiveTarget, obj: &ObjectFile, name: &str) -> Option<&'t PatchRecord> {
    let (_, addr) = entry_of(target, obj, name)?;
    target.journal.patch(addr)
}

/// When the patch in force of function `name` of `obj` was made (seconds
/// since the Unix epoch), if one is.
pub fn patched_at(target: &LiveTarget, obj: &ObjectFile, name: &str) -> Option<u64> {
    patch_in_force(target, obj, name)?.history.last().map(|g| g.at)
}

/// Function `name` of `obj` and its entry in the program, if it has it.
fn entry_of(target: &LiveTarget, obj: &ObjectFile, name: &str) -> Option<(usize, u64)> {
    let i = obj.function_named(name)?;
    Some((i, live_address(obj, i, &target.resolver, &BaseNames::none())?))
}

/// The change that made generation `g`, as notes name it: `change 2, from
/// app.c`.
fn made_by(g: &crate::journal::Generation) -> String {
    match &g.source {
        Some(source) => format!("change {}, from {source}", g.change),
        None => format!("change {}", g.change),
    }
}

/// Notes in `out` (a [`functions_against_process`] of `obj`) the patched
/// functions that match whose old code a thread runs now (the original, or
/// an earlier generation in `target`'s journal): a loop that never returns
/// (a libuv trial's `uv_run` was said to be the code the process runs
/// while it printed what the old code did). A stack analysis: for
/// `relive verify`, not for the checks a patch makes.
pub fn note_old_code_running(target: &LiveTarget, obj: &ObjectFile, out: &mut Verification) {
    let noted = |name: &str, out: &Verification| {
        out.unreached
            .iter()
            .chain(&out.old_code_kept)
            .chain(&out.lines_only)
            .any(|(n, _)| n == name)
    };
    let matching: Vec<(usize, &PatchRecord)> = out
        .same
        .iter()
        .filter(|name| !noted(name, out))
        .filter_map(|name| {
            let (i, addr) = entry_of(target, obj, name)?;
            Some((i, target.journal.patch(addr)?))
        })
        .collect();
    if matching.is_empty() {
        return;
    }
    let names: Vec<&str> = matching.iter().map(|(i, _)| obj.symbols[*i].name.as_str()).collect();
    for (name, threads) in crate::running_callers::running_old_code(target, &names) {
        let Some(&(i, record)) = matching.iter().find(|(i, _)| obj.symbols[*i].name == name) else {
            continue;
        };
        if !original(target, obj, i, record) {
            let tids: Vec<String> = threads.iter().map(u32::to_string).collect();
            out.old_code_kept.push((
                name,
                format!("a call on thread {} runs the old code now", tids.join(", ")),
            ));
        }
    }
}

/// Where the code of cold part `i` of `obj` (`f.cold`: the landing pads
/// and unlikely paths the compiler moved out of `f`) runs now, when `f`
/// is patched: the copy the patch brought along, which the new `f`
/// enters; the program's own cold part is entered only by the old `f`.
/// Compared with the program's, an edit that grew the cold part was
/// reported as a difference, and every restart of `relive watch` patched
/// the unchanged function again.
fn cold_copy(target: &LiveTarget, obj: &ObjectFile, i: usize) -> Option<u64> {
    let sym = &obj.symbols[i];
    let parent = crate::names::hot_part(&sym.name)?;
    let no_renames = BaseNames::none();
    let p = obj.function_named(parent)?;
    let parent_addr = live_address(obj, p, &target.resolver, &no_renames)?;
    target.journal.patch(parent_addr)?;
    let key = crate::diff::static_key(obj, i);
    target.resolver.added(obj.source.as_deref(), &sym.name, sym.local, key)
}

/// Whether `obj` defines no function with code: an object of tables and
/// variables only (bzip2's `crctable.o`), which [`against_process`] finds
/// nothing of in any process.
pub fn data_only(obj: &ObjectFile) -> bool {
    !obj.symbols
        .iter()
        .any(|s| s.kind == Kind::Function && s.size > 0 && s.bytes.is_some())
}

/// The constants of `obj` (its read-only tables) compared with the
/// program's, by name, as [`against_process`] compares functions: their
/// bytes, and what their pointers point at. Variables are not compared:
/// their contents are the program's state.
pub fn constants_against_process(target: &LiveTarget, obj: &ObjectFile) -> Verification {
    let mut out = Verification::default();
    let no_renames = BaseNames::none();
    for (i, sym) in obj.symbols.iter().enumerate() {
        let constant = obj.section(sym.section).is_some_and(|s| s.constant() && !s.executable);
        if sym.kind != Kind::Object || sym.size == 0 || sym.bytes.is_none() || !constant {
            continue;
        }
        match live_address(obj, i, &target.resolver, &no_renames) {
            None => out.absent.push(sym.name.clone()),
            Some(addr) => match contents(target, obj, i, addr, 0) {
                None => out.same.push(sym.name.clone()),
                Some(why) => out.differs.push((sym.name.clone(), why)),
            },
        }
    }
    out
}

/// Bytes before a GOT-relative field the linker may rewrite when it
/// relaxes the instruction (`mov foo@GOTPCREL(%rip)` to `lea`, or to `mov
/// $foo` with another REX prefix and opcode).
const RELAXED_PREFIX: u64 = 3;
/// Bytes around a TLS field its relaxation may rewrite (a whole
/// general-dynamic sequence becomes an initial-exec one).
const TLS_SPAN: u64 = 12;

fn function(target: &LiveTarget, obj: &ObjectFile, i: usize, at: u64) -> Check {
    function_at_depth(target, obj, i, at, 0)
}

/// [`function`], for a function reached from another one's code `depth`
/// steps away (a cold part from its hot part: 1).
fn function_at_depth(target: &LiveTarget, obj: &ObjectFile, i: usize, at: u64, depth: u8) -> Check {
    let mut live = vec![0u8; obj.symbols[i].bytes.as_deref().unwrap_or_default().len()];
    if let Err(e) = target.process.read(at, &mut live) {
        return Check::Differs(format!("its code at {at:#x} cannot be read: {e}"));
    }
    code(target, obj, i, at, &live, depth)
}

/// Of `functions` (symbol indices of `obj`), the patched ones whose code in
/// `obj` is the program's original code, by symbol name: an edit put
/// back, which a patch would bring in as one more generation of what the
/// program has (and a patched `main` was said NOT REACHABLE again, while
/// the running one already was what the file said: a QuickJS and a
/// SQLite trial). Their patches can be taken back instead.
pub fn back_to_original(target: &LiveTarget, obj: &ObjectFile, functions: &[usize]) -> Vec<String> {
    let no_renames = BaseNames::none();
    let mut names: Vec<String> = Vec::new();
    for &i in functions {
        let Some(record) = live_address(obj, i, &target.resolver, &no_renames).and_then(|a| target.journal.patch(a))
        else {
            continue;
        };
        // A function a patch added has no code of the program's own: the
        // code its record goes back to is that patch's (an expat trial:
        // `checkCharRefNumber`, which the program has only inlined, was
        // said to be "back to the program's own code" as it ran a patch).
        if target.journal.added.iter().any(|a| a.addr == record.orig_addr) {
            continue;
        }
        // Two names of one function (`f` and `f.localalias`) find one
        // patch: named once.
        if !names.contains(&record.name) && original(target, obj, i, record) {
            names.push(record.name.clone());
        }
    }
    names
}

/// Whether the code patch `record` redirected, as it was before (its entry
/// bytes put back), is function `i` of `obj`: what runs where no call
/// reaches the new code (`main`'s running loop).
fn original(target: &LiveTarget, obj: &ObjectFile, i: usize, record: &PatchRecord) -> bool {
    let len = obj.symbols[i].bytes.as_deref().unwrap_or_default().len();
    let mut live = vec![0u8; len];
    let Some(entry) = crate::journal::unhex(&record.original) else {
        return false;
    };
    if target.process.read(record.orig_addr, &mut live).is_err() {
        return false;
    }
    // The bytes the redirect overwrote, where they fall in the function:
    // a `pad` or `hop` redirect's span starts before its entry, in the
    // filler (such a function was never found put back, and was patched
    // again with its original bytes: a re-check).
    for (k, b) in entry.into_iter().enumerate() {
        let at = record.span_start.wrapping_add(k as u64).wrapping_sub(record.orig_addr);
        if let Some(slot) = usize::try_from(at).ok().and_then(|at| live.get_mut(at)) {
            *slot = b;
        }
    }
    matches!(code(target, obj, i, record.orig_addr, &live, 0), Check::Same)
}

/// [`function_at_depth`] with the running code's bytes read (`live`).
fn code(target: &LiveTarget, obj: &ObjectFile, i: usize, at: u64, live: &[u8], depth: u8) -> Check {
    let sym = &obj.symbols[i];
    let ours = sym.bytes.as_deref().unwrap_or_default();
    let mut masked = vec![false; ours.len()];
    let mut mask = |from: u64, to: u64| {
        for m in masked
            .iter_mut()
            .take(to.min(ours.len() as u64) as usize)
            .skip(from as usize)
        {
            *m = true;
        }
    };
    // Fields inside a TLS access sequence the linker may rewrite whole
    // (general- or local-dynamic to initial- or local-exec), including the
    // call to __tls_get_addr in it.
    let mut tls_sequences: Vec<(u64, u64)> = Vec::new();
    for r in &sym.relocs {
        let (from, to) = match r.r_type {
            rtype::GOTPCREL | rtype::GOTPCRELX | rtype::REX_GOTPCRELX => {
                (r.offset.saturating_sub(RELAXED_PREFIX), r.offset + r.width())
            }
            rtype::TLSGD | rtype::TLSLD | rtype::GOTTPOFF => {
                let span = (r.offset.saturating_sub(TLS_SPAN), r.offset + r.width() + TLS_SPAN);
                tls_sequences.push(span);
                span
            }
            // A patch's `lea` of far data became `mov` from a cell.
            rtype::PC32 if lea_of_rip(ours, r.offset) => (r.offset - 2, r.offset + r.width()),
            _ => (r.offset, r.offset + r.width()),
        };
        mask(from, to);
    }
    // Short branches leaving the function reach an island in a patched
    // copy: their displacement is the linker's.
    for exit in &sym.short_exits {
        mask(exit.field, exit.field + 1);
    }
    if let Some(k) = (0..ours.len()).find(|&k| !masked[k] && ours[k] != live[k]) {
        // A jump where the function starts is a redirect (a patch's),
        // not a compile's difference.
        let jumps = match live[0] {
            0xe9 | 0xeb | 0xcc => true,
            // `jmp *…` (ff /4), not any instruction of opcode ff.
            0xff => live.get(1).is_some_and(|modrm| (modrm >> 3) & 7 == 4),
            _ => false,
        };
        if k == 0 && jumps {
            return Check::Differs(format!("its code differs at +0x0, {REDIRECTED}"));
        }
        return Check::Differs(format!("its code differs at +{k:#x}"));
    }
    // A file's static initializer relive patched constructs stand-ins of
    // the globals whose initial value changed (the program's own keep
    // theirs): its copy refers to those, in relive's pools.
    let initializer = crate::names::is_static_initializer(&sym.name);
    for r in &sym.relocs {
        let thread_local = matches!(
            r.r_type,
            rtype::TLSGD
                | rtype::TLSLD
                | rtype::GOTTPOFF
                | rtype::TPOFF32
                | rtype::DTPOFF32
                | rtype::TPOFF64
                | rtype::DTPOFF64
        );
        if thread_local || tls_sequences.iter().any(|&(from, to)| (from..to).contains(&r.offset)) {
            continue;
        }
        if let Some(Mismatch { why, in_place }) = reference(target, obj, r, at, live, initializer, depth) {
            let neighbour = neighbour_readings(obj, r)
                .iter()
                .any(|other| reference(target, obj, other, at, live, initializer, depth).is_none());
            match (neighbour, in_place) {
                (true, false) => {}
                // Both readings are the object's: it cannot say which
                // table its code means, so it cannot be said to match.
                (true, true) => {
                    return Check::Differs(format!(
                        "+{:#x}: {why}; read as a reference to the table beside it, which matches, it would not differ: with one .rodata section the object cannot say which table its code means (compiled with -fdata-sections, it can)",
                        r.offset
                    ))
                }
                (false, _) => return Check::Differs(format!("+{:#x}: {why}", r.offset)),
            }
        }
    }
    Check::Same
}

/// Other readings of a reference to a section's place near a boundary
/// between two symbols, as references to a neighbour moved by the
/// distance: a place just before a symbol (within [`NEAR`] bytes: GCC's
/// `lea table-2(%rip)` for a table indexed from 1) as that symbol's, and
/// one just past a symbol's end (`arr + N`, one past its end, where the
/// next one may start) as that symbol's. In an object with one `.rodata`
/// such a place falls in (or starts) whatever symbol lies there, while a
/// compile with a section per variable (relive's own) refers to it
/// through the symbol the compiler meant, so the patched code points
/// beside that one's copy: verify of the plain object said the other
/// differed and exited 5 for right code (a QuickJS trial,
/// `lre_ctype_bits`; a zstd trial, `ZSTD_defaultCParameters` after
/// `srcSizeTiers`).
fn neighbour_readings(obj: &ObjectFile, r: &Reloc) -> Vec<Reloc> {
    let Target::Section { section, offset } = r.target else {
        return Vec::new();
    };
    let at_place = offset.wrapping_add(r.pc_bias);
    let as_reference_to = |symbol: usize, into: i64| Reloc {
        target: Target::Defined(symbol),
        addend: into - r.pc_bias,
        ..r.clone()
    };
    let mut out = Vec::new();
    if let Some((next, start)) = obj.symbol_after(section, at_place) {
        let distance = i64::try_from(start).ok().and_then(|s| s.checked_sub(at_place));
        if let Some(distance) = distance.filter(|d| (1..=NEAR).contains(d)) {
            out.push(as_reference_to(next, -distance));
        }
    }
    if let Some((before, start, end)) = obj.symbol_ending_before(section, at_place) {
        let past = i64::try_from(end).ok().and_then(|e| at_place.checked_sub(e));
        if past.is_some_and(|p| (0..=NEAR).contains(&p)) {
            out.push(as_reference_to(before, at_place - start as i64));
        }
    }
    out
}

/// How near a symbol's start or end a place may lie and still be taken
/// as the compiler's arithmetic on it ([`neighbour_readings`]).
const NEAR: i64 = 16;

/// Why relocated field `r` of the running code at `at` (its bytes `live`)
/// denotes something else than the object's, or `None` when it denotes
/// the same (or cannot be told: a variable's contents change).
fn reference(
    target: &LiveTarget,
    obj: &ObjectFile,
    r: &Reloc,
    at: u64,
    live_bytes: &[u8],
    stand_ins: bool,
    depth: u8,
) -> Option<Mismatch> {
    let field = at + r.offset;
    let value = field_value(r, live_bytes)?;
    // The place the running field denotes, and the one the object's does.
    let place = if r.pc_relative() {
        field.wrapping_add(value as u64).wrapping_add(r.pc_bias as u64)
    } else {
        (value as u64).wrapping_add(r.pc_bias as u64)
    };
    // A GOT reference the running code still reads through a cell (relive's
    // link keeps `mov sym@GOTPCREL(%rip)`, the cell in its pool) denotes
    // what the cell holds: taken as the cell itself, a constant's contents
    // were compared with the cell's pointer, and verify said "DIFFER" of
    // the object a patch had just put in (a Snappy trial: C++ vtables and
    // function-local statics, which -fPIC reaches through the GOT), which
    // also refused it as --base of the next patch.
    let got = matches!(r.r_type, rtype::GOTPCREL | rtype::GOTPCRELX | rtype::REX_GOTPCRELX);
    let place = match got && reads_through_cell(live_bytes, r.offset) {
        true => {
            let mut cell = [0u8; 8];
            match target.process.read(place, &mut cell) {
                Ok(()) => u64::from_le_bytes(cell),
                Err(_) => place,
            }
        }
        false => place,
    };
    let resolver = &target.resolver;
    let no_renames = BaseNames::none();
    let symbol = |i: usize| live_address(obj, i, resolver, &no_renames);
    let bias = (r.addend + r.pc_bias) as u64;
    // The symbol the object refers to, its live address when the program
    // has it, and the offset into it.
    let (i, live, into, name) = match &r.target {
        Target::Defined(i) => (Some(*i), symbol(*i), bias, obj.symbols[*i].name.clone()),
        Target::Undefined(name) => match resolver
            .global(name)
            .or_else(|| resolver.added(None, name, false, None))
        {
            Some(a) => {
                // Two libraries may define it (frexp: libc and libm); the
                // dynamic linker's choice is the program's, whichever
                // module relive would pick.
                let others = resolver
                    .symbols()
                    .lookup(name)
                    .into_iter()
                    .filter(|s| s.binding != relive_image::symbols::Binding::Local && s.addr != a)
                    .map(|s| s.addr);
                if others.into_iter().any(|o| {
                    place == o.wrapping_add(bias)
                        || through_linkage(target, r, at, live_bytes, place, value, o.wrapping_add(bias))
                }) {
                    return None;
                }
                (None, Some(a), bias, name.clone())
            }
            // A weak reference to what nothing defines is 0 in the
            // program (zstd's optional trace hooks); any other is not it.
            None => {
                let expected = bias;
                if place == expected || through_linkage(target, r, at, live_bytes, place, value, 0) {
                    return None;
                }
                return Some(Mismatch::elsewhere(format!(
                    "refers to {name}, which the program does not have"
                )));
            }
        },
        Target::Section { section, offset } => {
            let at_place = offset.wrapping_add(r.pc_bias);
            match obj.symbol_at(*section, at_place) {
                Some((i, into)) => (Some(i), symbol(i), into, obj.symbols[i].name.clone()),
                None => return literal(target, obj, *section, at_place, place, r.label).map(Mismatch::elsewhere),
            }
        }
    };
    let constant = i.filter(|&i| {
        let sym = &obj.symbols[i];
        sym.kind == Kind::Object && obj.section(sym.section).is_some_and(|s| s.constant())
    });
    let Some(live) = live else {
        // A constant the program's symbols do not name (a local table):
        // what the running code refers to must hold the same bytes.
        if let Some(i) = constant {
            return contents(target, obj, i, place.wrapping_sub(into), depth).map(Mismatch::elsewhere);
        }
        return Some(Mismatch::elsewhere(format!(
            "refers to {name}, which the program does not have"
        )));
    };
    let expected = live.wrapping_add(into);
    // Code relive patched in calls the current version of a function it
    // patched with it directly (its new code, or the thunk before it).
    let patched_copy = target.journal.patch(live).is_some_and(|p| {
        place == p.current_addr.wrapping_add(into)
            || p.history
                .last()
                .is_some_and(|g| place == g.slot_value.wrapping_add(into))
    });
    // A constant table a patch brought its own copy of (the code relive
    // linked refers to it in the pool): the copy must hold what this
    // compile puts in it.
    let copy = place.wrapping_sub(into);
    let in_pool = || target.journal.regions.iter().any(|g| g.contains(copy));
    if let Some(i) = constant.filter(|_| place != expected && in_pool()) {
        return contents(target, obj, i, copy, depth).map(Mismatch::elsewhere);
    }
    // Or the copy a patch brought of a function it does not redirect (a
    // cold part, which only its own hot part enters).
    let added_copy = target
        .journal
        .added
        .iter()
        .any(|a| a.name == name && place == a.addr.wrapping_add(into));
    // A cold part in a pool that no record names: the copy an earlier
    // patch of its hot part brought, whose record a later patch replaced
    // and `revert --last` took back with that patch (the running hot part
    // is the earlier one's, and so is the cold part it enters: a SQLite
    // trial's `sqlite3VdbeExec.cold`). It is this compile's if its code
    // is, compared as the hot part's (once: not from a cold part's code).
    let cold_part = i.filter(|&i| {
        let sym = &obj.symbols[i];
        sym.kind == Kind::Function && crate::names::hot_part(&sym.name).is_some()
    });
    if let Some(i) = cold_part.filter(|_| place != expected && !added_copy && depth == 0 && in_pool()) {
        return match function_at_depth(target, obj, i, copy, depth + 1) {
            Check::Same => None,
            Check::Differs(why) => Some(Mismatch::elsewhere(format!(
                "refers to a copy of {name} at {copy:#x} whose code differs: {why}"
            ))),
            Check::Absent => Some(Mismatch::elsewhere(format!(
                "refers to {place:#x}, where the compile refers to {name} at {expected:#x}"
            ))),
        };
    }
    // A function-local constant GCC numbered otherwise in this compile
    // (its numbers count every static of the file: `__PRETTY_FUNCTION__.0`
    // became `.1` when an edit added a static counter, and `.1` is another
    // function's in the program): the running code referring to the same
    // bytes refers to the same constant (a trial on QuickJS's libregexp.c,
    // where `lre_compile` differed, so every edit of the file was refused).
    let renumbered = constant.filter(|&i| place != expected && obj.symbols[i].local && !in_pool());
    if renumbered.is_some_and(|i| contents(target, obj, i, place.wrapping_sub(into), depth).is_none()) {
        return None;
    }
    let is_object = i.is_some_and(|i| obj.symbols[i].kind == Kind::Object);
    let stand_in = stand_ins && is_object && in_pool();
    if place != expected
        && !patched_copy
        && !added_copy
        && !stand_in
        && !through_linkage(target, r, at, live_bytes, place, value, expected)
    {
        return Some(Mismatch::elsewhere(format!(
            "refers to {place:#x}, where the compile refers to {name} at {expected:#x}"
        )));
    }
    // The same table, but does it hold what this compile puts in it?
    constant
        .and_then(|i| contents(target, obj, i, live, depth))
        .map(|why| Mismatch {
            why,
            in_place: place == expected,
        })
}

/// Why a relocated field of the running code denotes something else
/// than the object's ([`reference`]).
struct Mismatch {
    why: String,
    /// The field denotes the place of the object's own symbol in the
    /// program (where the program's symbols put it), whose contents differ:
    /// another reading of the field (see [`neighbour_readings`], which
    /// serves a place that is a patch's copy) cannot excuse that, only
    /// make it ambiguous. A reference to the start of a table right after
    /// another was also read as one past the end of the other, which
    /// matched, and verify said an edited table's object was the code
    /// running the old one (a zstd trial, after a revert:
    /// `ZSTD_defaultCParameters` after `srcSizeTiers`).
    in_place: bool,
}

impl Mismatch {
    /// A difference where the field may denote another symbol than the
    /// object's (a place elsewhere, or a copy in a pool whose symbol is
    /// not known for sure).
    fn elsewhere(why: String) -> Mismatch {
        Mismatch { why, in_place: false }
    }
}

/// Whether constant object `i` of `obj` (a `static const` table) holds
/// the same bytes at `addr` in the process, relocated fields aside.
/// `depth`: how many tables deep this one is; what its pointers point at
/// is compared for the first only (a table of strings, a table of tables),
/// which also ends a table that points at itself.
fn contents(target: &LiveTarget, obj: &ObjectFile, i: usize, addr: u64, depth: u8) -> Option<String> {
    let sym = &obj.symbols[i];
    let ours = sym.bytes.as_deref()?;
    let mut live = vec![0u8; ours.len()];
    if target.process.read(addr, &mut live).is_err() {
        return Some(format!("refers to {} at {addr:#x}, which cannot be read", sym.name));
    }
    let masked = |k: usize| {
        sym.relocs
            .iter()
            .any(|r| (r.offset..r.offset + r.width()).contains(&(k as u64)))
    };
    if let Some(k) = (0..ours.len()).find(|&k| ours[k] != live[k] && !masked(k)) {
        return Some(format!(
            "refers to {}, whose contents differ from the running one's (at +{k:#x})",
            sym.name
        ));
    }
    // Its pointers: each must denote what the object's does (a string
    // with the same text). A table of strings whose text was edited has
    // the same bytes, all of them relocated: it verified as what runs,
    // and the edit was never patched (a user's trial on bzip2's error
    // strings).
    if depth > 0 {
        return None;
    }
    sym.relocs.iter().find_map(|r| {
        reference(target, obj, r, addr, &live, false, depth + 1).map(|Mismatch { why, .. }| {
            format!(
                "refers to {}, whose entry at +{:#x} differs from the running one's: it {why}",
                sym.name, r.offset
            )
        })
    })
}

/// The running field's value, sign-extended.
fn field_value(r: &Reloc, live: &[u8]) -> Option<i64> {
    let at = r.offset as usize;
    let bytes = live.get(at..at + r.width() as usize)?;
    Some(match bytes.len() {
        8 => i64::from_le_bytes(bytes.try_into().ok()?),
        4 if r.r_type == rtype::R32 => u32::from_le_bytes(bytes.try_into().ok()?) as i64,
        4 => i32::from_le_bytes(bytes.try_into().ok()?) as i64,
        _ => return None,
    })
}

/// Whether the running field reaches `symbol` the way a linker makes it:
/// a call through a PLT entry or a patch's far-call stub, a GOT cell
/// holding it, or a GOT load relaxed to an immediate or a direct jump.
fn through_linkage(target: &LiveTarget, r: &Reloc, at: u64, live: &[u8], place: u64, value: i64, symbol: u64) -> bool {
    let process = target.process;
    let read_u64 = |addr: u64| {
        let mut b = [0u8; 8];
        process.read(addr, &mut b).ok().map(|_| u64::from_le_bytes(b))
    };
    match r.r_type {
        rtype::GOTPCREL | rtype::GOTPCRELX | rtype::REX_GOTPCRELX => {
            // `jmp *f@GOTPCREL(%rip)` (-fno-plt) relaxed to `jmp f; nop`,
            // which starts a byte earlier.
            let k = r.offset as usize;
            if k >= 2 && live.get(k - 2) == Some(&0xe9) && live.get(k + 3) == Some(&0x90) {
                let disp = live
                    .get(k - 1..k + 3)
                    .and_then(|b| b.try_into().ok())
                    .map(i32::from_le_bytes);
                return disp.is_some_and(|d| (at + r.offset + 3).wrapping_add(d as i64 as u64) == symbol);
            }
            read_u64(place) == Some(symbol) || value as u32 as u64 == symbol
        }
        rtype::PC32
            if live.get(r.offset as usize - 2) == Some(&0x8b) && lea_of_rip(live_lea(live, r.offset).as_slice(), 3) =>
        {
            // The link rewrote `lea sym(%rip)` to `mov cell(%rip)`, the
            // cell holding the address (see `link`).
            let wanted = symbol.wrapping_add(r.addend.wrapping_add(r.pc_bias) as u64);
            read_u64(place) == Some(wanted) || read_u64(place) == Some(symbol)
        }
        rtype::PLT32 | rtype::PC32 => {
            let mut code = [0u8; 16];
            if process.read(place, &mut code).is_err() {
                return false;
            }
            // endbr64 and a bnd prefix may come first in a PLT entry.
            let mut k = 0;
            if code[..4] == [0xf3, 0x0f, 0x1e, 0xfa] {
                k = 4;
            }
            if code[k] == 0xf2 {
                k += 1;
            }
            if code[k..k + 2] != [0xff, 0x25] {
                return false;
            }
            let disp = i32::from_le_bytes(code[k + 2..k + 6].try_into().unwrap_or_default());
            let cell = place.wrapping_add(k as u64 + 6).wrapping_add(disp as u64);
            match read_u64(cell) {
                Some(v) if v == symbol => true,
                // Lazy binding: the cell still points back into the
                // module's own PLT (at the entry's resolver push, in `.plt`
                // when the entry itself is in `.plt.sec`): the program's,
                // or a shared library's calling its own exported functions.
                Some(v) => {
                    let symbols = target.resolver.symbols();
                    let module = |a: u64| symbols.module_at(a).map(|(path, _, _)| path);
                    module(v).is_some_and(|m| Some(m) == module(place))
                }
                None => false,
            }
        }
        _ => false,
    }
}

/// Whether a reference to a place no symbol covers (a string literal, a
/// constant, a jump table) finds the same bytes in the process.
fn literal(
    target: &LiveTarget,
    obj: &ObjectFile,
    section: usize,
    at: i64,
    place: u64,
    label: Option<i64>,
) -> Option<String> {
    let sec = obj.section(section)?;
    if sec.executable || !sec.constant() {
        // Code without a symbol, or a variable's current contents: not
        // comparable.
        return None;
    }
    // Just past the end of its label's string (`" " + 2`): that string,
    // where the running code's place is as far past its end (see
    // `Reloc::label`); the next string, which starts there, is another
    // literal the program keeps wherever it likes.
    if let Some((start, len)) = sec
        .bytes
        .as_deref()
        .and_then(|bytes| crate::objfile::past_labels_string(bytes, label, at))
        .filter(|_| sec.strings)
    {
        return literal(target, obj, section, start, place.wrapping_sub(len), None);
    }
    let ours: &[u8] = if sec.strings {
        let bytes = sec.bytes.as_deref()?;
        let start = usize::try_from(at).ok()?;
        let rest = bytes.get(start..)?;
        &rest[..rest.iter().position(|&b| b == 0).map_or(rest.len(), |n| n + 1)]
    } else {
        let chunk = obj.chunk(section, at)?;
        &chunk[..chunk.iter().rposition(|&b| b != 0).map_or(0, |n| n + 1)]
    };
    let mut live = vec![0u8; ours.len()];
    if target.process.read(place, &mut live).is_err() {
        return Some(format!(
            "refers to {place:#x}, which cannot be read, for {} bytes of {}",
            ours.len(),
            sec.name
        ));
    }
    // Relocated fields inside the data (a jump table's entries) are the
    // linker's.
    let masked = |k: usize| {
        let off = at + k as i64;
        sec.relocs
            .iter()
            .any(|r| (r.offset as i64..r.offset as i64 + r.width() as i64).contains(&off))
    };
    let unmasked: Vec<usize> = (0..ours.len()).filter(|&k| ours[k] != live[k] && !masked(k)).collect();
    let k = *unmasked.first()?;
    // `__DATE__`/`__TIME__` text differs between any two compiles (a fresh
    // build of the same sources too): no difference in the code. Taken as
    // one, every save of mimalloc's options.c was refused.
    let (ours_times, live_times) = (build_time_spans(ours), build_time_spans(&live));
    let in_time = |k: &usize| ours_times.iter().any(|s| s.contains(k)) && live_times.iter().any(|s| s.contains(k));
    if unmasked.iter().all(in_time) {
        return None;
    }
    Some(format!(
        "refers to {} bytes of {} that differ from the running ones at {place:#x} (first at +{k})",
        ours.len(),
        sec.name
    ))
}

/// Where `bytes` has text like `__TIME__`'s (`12:34:56`) or `__DATE__`'s
/// (`Dec  6 2026`).
fn build_time_spans(bytes: &[u8]) -> Vec<std::ops::Range<usize>> {
    let digit = |b: u8| b.is_ascii_digit();
    let time = |w: &[u8]| {
        digit(w[0])
            && digit(w[1])
            && w[2] == b':'
            && digit(w[3])
            && digit(w[4])
            && w[5] == b':'
            && digit(w[6])
            && digit(w[7])
    };
    let date = |w: &[u8]| {
        w[0].is_ascii_uppercase()
            && w[1].is_ascii_lowercase()
            && w[2].is_ascii_lowercase()
            && w[3] == b' '
            && (w[4] == b' ' || digit(w[4]))
            && digit(w[5])
            && w[6] == b' '
            && w[7..11].iter().all(|&b| digit(b))
    };
    let mut spans = Vec::new();
    for (k, w) in bytes.windows(8).enumerate() {
        if time(w) {
            spans.push(k..k + 8);
        }
    }
    for (k, w) in bytes.windows(11).enumerate() {
        if date(w) {
            spans.push(k..k + 11);
        }
    }
    spans
}

/// Whether the 4-byte field at `field` of `code` is the displacement of a
/// 64-bit RIP-relative `lea` (REX.W, `8d`, ModRM with mod 00 and r/m 101).
pub(crate) fn lea_of_rip(code: &[u8], field: u64) -> bool {
    let k = field as usize;
    k >= 3
        && code.get(k - 3).is_some_and(|b| b & 0xf8 == 0x48)
        && code.get(k - 2) == Some(&0x8d)
        && code.get(k - 1).is_some_and(|m| m & 0xc7 == 0x05)
}

/// Whether the instruction whose RIP-relative displacement is at `field`
/// of `live` loads from memory there (`mov`, an arithmetic operand,
/// `test`, `call *`/`jmp *`): a GOT reference not relaxed by a linker,
/// whose field denotes a cell holding the address. A relaxed one (`lea`,
/// an immediate, a direct `call`/`jmp`) denotes the symbol itself.
fn reads_through_cell(live: &[u8], field: u64) -> bool {
    let k = field as usize;
    let (Some(&opcode), Some(&modrm)) = (live.get(k.wrapping_sub(2)), live.get(k.wrapping_sub(1))) else {
        return false;
    };
    if k < 2 || modrm & 0xc7 != 0x05 {
        return false;
    }
    match opcode {
        0x8b | 0x03 | 0x0b | 0x13 | 0x1b | 0x23 | 0x2b | 0x33 | 0x3b | 0x85 => true,
        // ff /2 and ff /4: `call *` and `jmp *`.
        0xff => matches!((modrm >> 3) & 7, 2 | 4),
        _ => false,
    }
}

/// The three bytes before the field at `field` of running code, with the
/// opcode a patch's link rewrites (`8b`, `mov`) read as the `lea` it was.
fn live_lea(live: &[u8], field: u64) -> Vec<u8> {
    let k = field as usize;
    let mut b = live.get(k.saturating_sub(3)..k).map(<[u8]>::to_vec).unwrap_or_default();
    if b.len() == 3 && b[1] == 0x8b {
        b[1] = 0x8d;
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_times_are_found_in_literals() {
        let text = b"built Dec  6 2026 05:28:53, v1";
        assert_eq!(build_time_spans(text), vec![18..26, 6..17]);
        assert!(build_time_spans(b"ratio 12:34 of 5:6:7").is_empty());
        assert!(build_time_spans(b"").is_empty());
    }

    #[test]
    fn field_values() {
        let r = |r_type, offset| Reloc {
            offset,
            r_type,
            target: Target::Undefined("f".into()),
            addend: -4,
            pc_bias: 4,
            synthetic: false,
            label: None,
        };
        let live = [0xe8, 0xfc, 0xff, 0xff, 0xff, 1, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(field_value(&r(rtype::PLT32, 1), &live), Some(-4));
        assert_eq!(field_value(&r(rtype::R32, 1), &live), Some(0xffff_fffc));
        assert_eq!(field_value(&r(rtype::R64, 5), &live), Some(1));
        assert_eq!(field_value(&r(rtype::R64, 6), &live), None);
    }
}
