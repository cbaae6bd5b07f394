//! A signature change and the callers whose calls are running: every
//! caller is patched with the changed function, but a call already
//! running finishes in its caller's old code, which calls the function
//! the old way (wrong arguments, a misread result). Such a patch waits
//! until no thread runs one of those callers.

use std::time::{Duration, Instant};

use relive_process::{Process, ThreadPosition};

use crate::objfile::{Kind, ObjectFile};
use crate::reach;
use crate::target::Target;

/// How long a patch or revert refused for a running caller's call waits
/// for that call to return, looking again every [`CALLER_RECHECK`]: a
/// call in progress at one moment (a loop's `call()` between its sleeps)
/// is usually over a moment later, and the save should not be refused for
/// it (a test's program was inside its caller one time in a few hundred).
/// A function its thread never leaves (`main`, a worker's loop) still
/// runs at the end, and is refused then.
pub const CALLER_PATIENCE: Duration = Duration::from_millis(250);

/// How often a running caller is looked for again within
/// [`CALLER_PATIENCE`].
pub const CALLER_RECHECK: Duration = Duration::from_millis(2);

/// What `look` finds, looked for again until it finds nothing or
/// [`CALLER_PATIENCE`] is over: `None` once a running call has returned,
/// what was found last otherwise.
pub fn once_returned<T>(mut look: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + CALLER_PATIENCE;
    loop {
        let found = look()?;
        if Instant::now() >= deadline {
            return Some(found);
        }
        std::thread::sleep(CALLER_RECHECK);
    }
}

/// How long a refusal waited for the running call, as said after its
/// thread.
fn waited() -> String {
    format!(
        " (still, after {} ms of waiting for that call to return)",
        CALLER_PATIENCE.as_millis()
    )
}

/// One unit of a patch: its new object, its base (none for a catch-up),
/// the functions of the new object to patch, and those whose signature
/// differs from the running code though not from the base's (see
/// [`crate::apply::Unit::changed_signatures`]).
pub(crate) type Patched<'o> = (&'o ObjectFile, Option<&'o ObjectFile>, &'o [usize], &'o [String]);

/// `(caller, callee)` for each function of `objects` that calls one of
/// `callees` directly.
pub fn callers_among<'o>(objects: impl Iterator<Item = &'o ObjectFile>, callees: &[String]) -> Vec<(String, String)> {
    callers_where(objects, callees, |_| true)
}

/// [`callers_among`] the functions `keep` takes by name: each function
/// looked at has its callees named, a whole object's where only the
/// patched functions can count (the clone rules).
fn callers_where<'o>(
    objects: impl Iterator<Item = &'o ObjectFile>,
    callees: &[String],
    keep: impl Fn(&str) -> bool,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for obj in objects {
        for (i, s) in obj.symbols.iter().enumerate() {
            if s.kind != Kind::Function || !keep(&s.name) {
                continue;
            }
            let calls = crate::callees::direct_callees(obj, i);
            for callee in callees.iter().filter(|c| calls.contains(c)) {
                out.push((s.name.clone(), callee.clone()));
            }
        }
    }
    out
}

/// Whether `name` is a GCC clone whose parameters GCC chose for it
/// (`f.isra.0` drops or splits some, `f.constprop.0` drops constant ones,
/// `f.part.0` takes what its caller's inlined part computed): another
/// compile may give the clone of the same name other parameters.
pub fn has_chosen_parameters(name: &str) -> bool {
    crate::names::parse(name)
        .clones
        .iter()
        .any(|k| matches!(k.as_str(), "isra" | "constprop" | "part"))
}

/// The clones with chosen parameters among `functions` of `obj` (those a
/// patch changes) that another of `functions` calls: their parameters may
/// have changed with the caller's call (a caller whose code is the same
/// calls them the same way). A trial: `calc(x, y, z)` used `y`, then
/// `z`; both compiles named its clone `calc.constprop.0(x, ·)`, the
/// second parameter `y` in one and `z` in the other, and `main`'s running
/// call passed `y` to the new code. One whose kept parameters `base`'s
/// DWARF and `obj`'s show the same is left out.
pub fn clones_changed_with_callers(obj: &ObjectFile, base: Option<&ObjectFile>, functions: &[usize]) -> Vec<String> {
    let names: Vec<&str> = functions
        .iter()
        .filter_map(|&i| obj.symbols.get(i))
        .map(|s| s.name.as_str())
        .collect();
    let clones: Vec<String> = names
        .iter()
        .filter(|n| has_chosen_parameters(n))
        .map(|n| n.to_string())
        .collect();
    if clones.is_empty() {
        return clones;
    }
    let callers = callers_where(std::iter::once(obj), &clones, |caller| names.contains(&caller));
    clones
        .into_iter()
        // (A function is not among its own callees.)
        .filter(|clone| callers.iter().any(|(_, callee)| callee == clone))
        .filter(|clone| !same_parameters(obj, base, clone) && !same_but_immediates(obj, base, clone))
        .collect()
}

/// Whether clone `name`'s code in `obj` is its code in `base` but for
/// immediates (line numbers an edit above moved, a constant): it reads
/// the registers it did, so it takes the arguments it took (a QuickJS
/// trial: deleting a comment line was refused, as the line numbers in
/// `JS_AtomGetStrRT.part.0.constprop.0` changed with its running caller).
fn same_but_immediates(obj: &ObjectFile, base: Option<&ObjectFile>, name: &str) -> bool {
    let Some(base) = base else { return false };
    let (Some(was), Some(is)) = (base.function_named(name), obj.function_named(name)) else {
        return false;
    };
    crate::line_shift::immediates_shifted(&[((base, was), (obj, is))]).is_some()
}

/// Whether clone `name` keeps the same parameters in `obj` and `base`, as
/// their DWARF shows (false where either does not tell).
fn same_parameters(obj: &ObjectFile, base: Option<&ObjectFile>, name: &str) -> bool {
    let Some(base) = base else { return false };
    let kept = |o: &ObjectFile| o.function_named(name).and_then(|i| crate::clone_parameters::kept(o, i));
    matches!((kept(obj), kept(base)), (Some(now), Some(was)) if now == was)
}

/// Why a signature change of `callee` cannot be patched while `caller`
/// runs on `threads` (for a clone with chosen parameters: why its
/// parameters may have changed).
pub fn refusal(caller: &str, callee: &str, threads: &[u32]) -> String {
    let waited = waited();
    let tids: Vec<String> = threads.iter().map(u32::to_string).collect();
    if has_chosen_parameters(callee) {
        let caller = crate::names::readable(caller);
        let base = crate::names::parse(callee).base;
        return format!(
            "{callee} is GCC's copy of {base} with parameters GCC chose for this compile, and it changed with its caller {caller}, which is running on thread {}{waited}: that call finishes in {caller}'s old code, which may pass the new {callee} other arguments than it takes; try again once that call has returned (under relive run or watch: save the changed files again, together), or, for a function its thread never leaves (main, a worker's loop), move the call into a function it calls, or restart the program",
            tids.join(", ")
        );
    }
    // As the source names them: `one`, not GCC's clone `one.isra.0`.
    let written = |name: &str| {
        let readable = crate::names::readable(name);
        let parsed = crate::names::parse(&readable);
        match parsed.clones.is_empty() {
            true => readable,
            false => parsed.base,
        }
    };
    let (caller, callee) = (written(caller), written(callee));
    format!(
        "the signature of {callee} changes, and its caller {caller} is running on thread {}{waited}: that call finishes in {caller}'s old code, which would call {callee} the old way; try again once that call has returned (under relive run or watch: save the changed files again, together), or, for a function its thread never leaves (main, a worker's loop), move the call into a function it calls, or restart the program",
        tids.join(", ")
    )
}

/// Why a revert is refused: `caller`'s code that calls `callee` the way
/// a patched signature change made it is running on `threads`, and its
/// call could reach `callee`'s old code with the new arguments.
pub(crate) fn revert_refusal(caller: &str, callee: &str, threads: &[u32]) -> String {
    let waited = waited();
    let tids: Vec<String> = threads.iter().map(u32::to_string).collect();
    // A GCC copy with parameters of its choosing changed with its caller:
    // its signature may not have changed at all, which "a patched
    // signature change" said it had (a bzip2 re-check's added
    // `iterCount.isra.0`).
    let how = match has_chosen_parameters(callee) {
        true => format!(
            "{}, GCC's copy of {} with parameters it chose for that compile, which changed with it",
            crate::names::readable(callee),
            crate::names::parse(callee).base
        ),
        false => format!(
            "{} the way a patched signature change made it",
            crate::names::readable(callee)
        ),
    };
    let (caller, callee) = (crate::names::readable(caller), crate::names::readable(callee));
    format!(
        "{caller} is running on thread {}{waited}, in code that calls {how}: reverted now, that call could go on to call {callee}'s old code the new way (a revert that keeps {callee}'s change would leave code relive no longer records running); nothing was reverted: try again once that call has returned (a function its thread never leaves, main or a worker's loop, keeps it running until a restart)",
        tids.join(", ")
    )
}

/// The refusal of a patch that changes the signatures of `changed`
/// (functions of `objects`, with every caller among them) while a caller's
/// call runs in `target` and does not return within [`CALLER_PATIENCE`];
/// `None` when none does. A clone with chosen parameters among them, or
/// one of `names_moved` (only its parameters' names moved), counts only
/// with its callers among `patched` (see [`clones_changed_with_callers`],
/// [`crate::signature::Signature::moves_names`]).
pub fn running_caller<'o>(
    target: &Target,
    objects: impl Iterator<Item = &'o ObjectFile>,
    changed: &[String],
    names_moved: &[String],
    patched: &[&str],
) -> Option<String> {
    if changed.is_empty() {
        return None;
    }
    let callers: Vec<(String, String)> = callers_among(objects, changed)
        .into_iter()
        .filter(|(caller, callee)| {
            (!has_chosen_parameters(callee) && !names_moved.contains(callee)) || patched.contains(&caller.as_str())
        })
        .collect();
    let names: Vec<&str> = callers.iter().map(|(caller, _)| caller.as_str()).collect();
    once_returned(|| {
        let running = running_now(target, &names);
        let (caller, threads) = running.first()?;
        let callee = &callers.iter().find(|(c, _)| c == caller)?.1;
        Some(refusal(caller, callee, threads))
    })
}

/// Why a patch that changes the signatures of `callees` must wait: a
/// thread runs a function of the program's own code (its module as built)
/// that calls one of them directly, and that call would pass the old
/// arguments to the new code. Read from the running code itself, so a
/// caller in a file no object of the patch has counts too (a re-check:
/// `luaT_getvarargs` in ltm.c got a parameter its running caller
/// `luaV_execute`, in lvm.c, never passed; the patch of ltm.c alone saw
/// no caller). `None` when none does. Threads at `threads`: each one's PC
/// and the return addresses on its stack.
pub(crate) fn program_callers_running(
    target: &Target,
    callees: &[String],
    threads: &[ThreadPosition],
) -> Option<String> {
    if callees.is_empty() {
        return None;
    }
    let (home, _, _) = target.resolver.home();
    let symbols = target.resolver.symbols();
    let entries: Vec<(u64, &str)> = callees
        .iter()
        .filter_map(|name| {
            let s = symbols.lookup_in(name, Some(home)).into_iter().find(|s| s.size > 0)?;
            Some((s.addr, name.as_str()))
        })
        .collect();
    if entries.is_empty() {
        return None;
    }
    let maps = target.process.maps().ok()?;
    let in_home_code = |a: u64| {
        maps.iter().any(|m| {
            m.contains(a)
                && m.perms.contains('x')
                && (m.path == home || m.path.strip_suffix(" (deleted)") == Some(home))
        })
    };
    // Each function looked at: its start, bytes, and the callee it calls.
    let mut seen: foldhash::HashMap<u64, (Vec<u8>, Option<usize>)> = foldhash::HashMap::default();
    let mut running: Vec<(String, usize, Vec<u32>)> = Vec::new();
    for &(tid, position, _) in threads {
        let Some((pc, sp)) = position else { continue };
        let mut places = vec![(pc, false)];
        if let Some((_, stack)) = crate::reach::read_stack(target.process, &maps, sp) {
            places.extend(
                crate::reach::words(&stack)
                    .filter(|&a| in_home_code(a))
                    .map(|a| (a, true)),
            );
        }
        for (at, returned_to) in places {
            let Some((function, _)) = symbols.at(at).filter(|(s, _)| s.size > 0 && s.module == home) else {
                continue;
            };
            let (bytes, calls) = seen.entry(function.addr).or_insert_with(|| {
                let mut bytes = vec![0u8; function.size.min(1 << 20) as usize];
                if target.process.read(function.addr, &mut bytes).is_err() {
                    return (Vec::new(), None);
                }
                let calls =
                    direct_targets(&bytes, function.addr).find_map(|t| entries.iter().position(|&(addr, _)| addr == t));
                (bytes, calls)
            });
            let Some(k) = *calls else { continue };
            // A stack word into the function that is no return address
            // (a pointer to its code) is no running call.
            if returned_to && !crate::reach::after_call(&[(function.addr, bytes.clone())], at) {
                continue;
            }
            match running
                .iter_mut()
                .find(|(name, callee, _)| *name == function.name && *callee == k)
            {
                Some((_, _, tids)) if !tids.contains(&tid) => tids.push(tid),
                Some(_) => {}
                None => running.push((function.name.clone(), k, vec![tid])),
            }
        }
    }
    let (caller, k, tids) = running.first()?;
    Some(refusal(caller, entries[*k].1, tids))
}

/// The targets of the direct calls and jumps of the code `bytes` at `ip`.
fn direct_targets(bytes: &[u8], ip: u64) -> impl Iterator<Item = u64> + '_ {
    use iced_x86::{Decoder, DecoderOptions};
    let mut decoder = Decoder::with_ip(64, bytes, ip, DecoderOptions::NONE);
    std::iter::from_fn(move || {
        while decoder.can_decode() {
            let instr = decoder.decode();
            // A call, or a tail call's jump.
            if instr.is_call_near() || instr.is_jmp_near() {
                return Some(instr.near_branch_target());
            }
        }
        None
    })
}

/// The home module, the program's entry function (`main`: address and
/// size) when the patch is of the program, and its entry point, for
/// [`crate::reach::analyse`]. Not `main` where exceptions may be caught (landing
/// pads are reached by the unwinder, not by any branch the flow analysis
/// follows).
pub(crate) fn entry_points<'t>(target: &'t Target) -> (&'t str, Option<(u64, u64)>, Option<u64>) {
    let (home, _, _) = target.resolver.home();
    let program = &target.modules.main;
    let unwinds = program
        .image
        .as_deref()
        .and_then(relive_process::modules::host_elf)
        .is_none_or(|elf| elf.sections.iter().any(|s| s.name == ".gcc_except_table"));
    let main = target
        .resolver
        .symbols()
        .lookup_in("main", Some(home))
        .into_iter()
        .find(|s| s.size > 0 && s.module == program.module.path && !unwinds)
        .map(|s| (s.addr, s.size));
    let program_entry = program
        .image
        .as_deref()
        .and_then(relive_process::modules::host_elf)
        .map(|elf| elf.entry.wrapping_add(program.module.load_bias));
    (home, main, program_entry)
}

/// Where each thread of a stopped process is.
pub(crate) fn positions_of(stopped: &dyn relive_process::Stopped) -> Vec<ThreadPosition> {
    stopped
        .thread_ids()
        .into_iter()
        .map(|tid| {
            let registers = stopped.registers(tid).ok();
            (tid, registers.map(|r| (r.pc(), r.rsp)), registers.map(|r| r.rbp))
        })
        .collect()
}

/// Which of the functions `names` (of the program, unpatched: their
/// original code) a thread is running now, with those threads: a call
/// running when they are patched finishes in their old code. Read from
/// the threads' stacks, the threads stopped for a moment when one is on a
/// CPU (a function that returns at once may still be seen just as it
/// leaves); a thread's outermost function (`main`, a worker's loop) is
/// seen for sure.
pub fn running_now(target: &Target, names: &[&str]) -> Vec<(String, Vec<u32>)> {
    running_at(target, names, &positions_now(target.process))
}

/// Which of the patched functions `names` a thread is running the old
/// code of now (their original code, or a generation before the current
/// one), with those threads: calls that finish in code the patch replaced.
///
/// The threads are stopped for a moment to read their registers, those
/// blocked in the kernel too: a walk of frame-pointer frames (`-O0` code)
/// needs each thread's `rbp`, which `/proc` does not give (without it, a
/// stale return address in a buffer of bc's `yyparse`, built at -O0, made
/// `execute` "running").
///
/// The threads stay stopped while their stacks are read: a running
/// thread's stack read after it went on no longer matches the registers
/// read before, and the walk read a return address from the wrong word,
/// gave up, and the scan found a stale one (a re-check: `status` said a bc
/// computation in the newest `execute` ran the old code, half the times
/// it was asked).
pub fn running_old_code(target: &Target, names: &[&str]) -> Vec<(String, Vec<u32>)> {
    // Nothing to look for (`status` of a process without patches): no
    // thread is stopped.
    if names.is_empty() {
        return Vec::new();
    }
    match target.process.stop() {
        Ok(stopped) => {
            let found = running_in(target, names, &positions_of(stopped.as_ref()), false);
            let _ = stopped.resume();
            found
        }
        Err(_) => running_in(target, names, &positions_now(target.process), false),
    }
}

/// [`running_now`] with the threads at `threads`.
pub(crate) fn running_at(target: &Target, names: &[&str], threads: &[ThreadPosition]) -> Vec<(String, Vec<u32>)> {
    running_in(target, names, threads, true)
}

/// [`running_at`], the current generation's code of a patched function
/// counted when `current` says so.
fn running_in(target: &Target, names: &[&str], threads: &[ThreadPosition], current: bool) -> Vec<(String, Vec<u32>)> {
    let home = entry_points(target).0;
    let mut code: Vec<(String, u64, u64)> = Vec::new();
    for name in names {
        let Some(s) = target
            .resolver
            .symbols()
            .lookup_in(name, Some(home))
            .into_iter()
            .find(|s| s.size > 0)
        else {
            continue;
        };
        // Its original code: a call running since before it was patched
        // (a worker's loop) is there; it was left out once patched, and a
        // signature change went in under a running caller (a re-check).
        code.push((name.to_string(), s.addr, s.size));
        let record = target.journal.patch(s.addr);
        for g in record.into_iter().flat_map(|p| &p.history) {
            let is_current = record.is_some_and(|p| p.current_addr == g.code);
            if g.size > 0 && (current || !is_current) {
                code.push((name.to_string(), g.code, g.size));
            }
        }
    }
    running_code(target, &code, threads)
}

/// Which of the pieces of code `code` (a function's name, where its code
/// starts and its size: its original code, or a patch's generation of it)
/// a thread is running a call of, with those threads, by function.
pub(crate) fn running_code(
    target: &Target,
    code: &[(String, u64, u64)],
    threads: &[ThreadPosition],
) -> Vec<(String, Vec<u32>)> {
    if code.is_empty() {
        return Vec::new();
    }
    let frames = target.journal.unwind_tables();
    let Some(stacks) = reach::Stacks::read(target.process, threads, &frames) else {
        return Vec::new();
    };
    // Only the stacks and these pieces' own bytes are read: a full
    // reachability analysis read the whole program's code too, with every
    // thread stopped (a revert of one SQLite function stood the program
    // still for 4–6 ms).
    let ranges: Vec<(u64, u64)> = code
        .iter()
        .map(|&(_, at, size)| (at, at.saturating_add(size)))
        .collect();
    let mut running: Vec<(String, Vec<u32>)> = Vec::new();
    for ((name, _, _), tids) in code.iter().zip(reach::threads_in(target.process, &ranges, &stacks)) {
        if tids.is_empty() {
            continue;
        }
        match running.iter_mut().find(|(n, _)| n == name) {
            Some((_, all)) => {
                all.extend(tids);
                all.sort_unstable();
                all.dedup();
            }
            None => running.push((name.clone(), tids)),
        }
    }
    running
}

/// `(caller, callee)` for each function of `units` that calls one of
/// their functions to patch whose signature the patch changes (compared
/// with each unit's base, and those the unit names as changed from the
/// running code: a re-patch of reverted code, a catch-up).
pub(crate) fn signature_guard(units: &[Patched]) -> (Vec<(String, String)>, Vec<String>) {
    let mut changed: Vec<String> = Vec::new();
    // Clones whose parameters may have changed with their callers', and
    // functions whose parameters' names alone moved (the same call: see
    // [`crate::signature::Signature::moves_names`]): only the changed
    // callers' running calls matter for them.
    let mut clones: Vec<String> = Vec::new();
    let patched: Vec<&str> = units
        .iter()
        .flat_map(|(obj, _, functions, _)| functions.iter().filter_map(|&i| obj.symbols.get(i)))
        .map(|s| s.name.as_str())
        .collect();
    for &(obj, base, functions, also) in units {
        changed.extend(also.iter().cloned());
        clones.extend(clones_changed_with_callers(obj, base, functions));
        let Some(base) = base else { continue };
        let names: Vec<&str> = functions
            .iter()
            .filter_map(|&i| obj.symbols.get(i))
            .filter(|s| s.kind == Kind::Function)
            .map(|s| s.name.as_str())
            .collect();
        for change in crate::signature::changed(base, obj, &names) {
            match change.names_only {
                true => clones.push(change.name),
                false => changed.push(change.name),
            }
        }
        for (name, names_only) in crate::signature::changed_static(base, obj, &names) {
            match names_only {
                true => clones.push(name),
                false => changed.push(name),
            }
        }
    }
    changed.sort();
    changed.dedup();
    if changed.is_empty() && clones.is_empty() {
        return (Vec::new(), changed);
    }
    // The callers the old code has too: a running call is of that.
    let objects = units
        .iter()
        .flat_map(|&(obj, base, _, _)| std::iter::once(obj).chain(base));
    let mut guard = callers_among(objects.clone(), &changed);
    guard.extend(callers_where(objects, &clones, |caller| patched.contains(&caller)));
    guard.sort();
    guard.dedup();
    (guard, changed)
}

/// Where each thread of `process` is now. A thread on a CPU has no
/// position to read without stopping it: then the threads are stopped for
/// a moment (a loop between two sleeps was missed otherwise, under load;
/// and a `main` that never sleeps was taken for code a later call can
/// reach, so a patch of it said "patched", its running call unseen).
pub(crate) fn positions_now(process: &dyn Process) -> Vec<ThreadPosition> {
    let threads = process.thread_positions().unwrap_or_default();
    if threads.iter().all(|(_, at, _)| at.is_some()) {
        return threads;
    }
    match process.stop() {
        Ok(stopped) => {
            let positions = positions_of(stopped.as_ref());
            let _ = stopped.resume();
            positions
        }
        Err(_) => threads,
    }
}

#[cfg(test)]
mod tests {
    use super::{once_returned, revert_refusal, CALLER_PATIENCE};

    /// A call seen running a few times, then returned: no refusal. One
    /// that never returns is refused once the patience is over, with what
    /// was seen last.
    #[test]
    fn a_running_call_is_looked_for_until_it_returns_or_the_patience_ends() {
        let mut looks = 0;
        let returned = once_returned(|| {
            looks += 1;
            (looks < 4).then_some(looks)
        });
        assert_eq!((returned, looks), (None, 4));
        let started = std::time::Instant::now();
        let mut looks = 0;
        let never = once_returned(|| {
            looks += 1;
            Some(looks)
        });
        assert!(started.elapsed() >= CALLER_PATIENCE, "{:?}", started.elapsed());
        assert_eq!(never, Some(looks));
        assert!(looks > 1, "looked once");
    }

    /// A GCC copy with chosen parameters is said as such, not as a
    /// signature change nobody made (a bzip2 re-check).
    #[test]
    fn a_revert_refused_for_a_clones_caller_says_what_the_clone_is() {
        let clone = revert_refusal("BZ2_compressBlock", "iterCount.isra.0", &[8899]);
        assert!(
            clone.contains("calls iterCount.isra.0, GCC's copy of iterCount with parameters it chose"),
            "{clone}"
        );
        assert!(!clone.contains("signature change"), "{clone}");
        let plain = revert_refusal("caller", "f", &[7]);
        assert!(
            plain.contains("calls f the way a patched signature change made it"),
            "{plain}"
        );
    }
}
