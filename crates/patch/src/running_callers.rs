//! A signature change and the callers whose calls are running: every
//! caller is patched with the changed function, but a call already
//! running finishes in its caller's old code, which calls the function
//! the old way (wrong arguments, a misread result). Such a patch waits
//! until no thread runs one of those callers.

use crate::objfile::{Kind, ObjectFile};
use crate::target::Target;

/// `(caller, callee)` for each function of `objects` that calls one of
/// `callees` directly.
pub fn callers_among<'o>(objects: impl Iterator<Item = &'o ObjectFile>, callees: &[String]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for obj in objects {
        for (i, s) in obj.symbols.iter().enumerate() {
            if s.kind != Kind::Function {
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
/// call passed `y` to the new code.
pub fn clones_changed_with_callers(obj: &ObjectFile, functions: &[usize]) -> Vec<String> {
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
    let callers = callers_among(std::iter::once(obj), &clones);
    clones
        .into_iter()
        .filter(|clone| {
            callers
                .iter()
                .any(|(caller, callee)| callee == clone && caller != clone && names.contains(&caller.as_str()))
        })
        .collect()
}

/// Why a signature change of `callee` cannot be patched while `caller`
/// runs on `threads` (for a clone with chosen parameters: why its
/// parameters may have changed).
pub fn refusal(caller: &str, callee: &str, threads: &[u32]) -> String {
    let tids: Vec<String> = threads.iter().map(u32::to_string).collect();
    if has_chosen_parameters(callee) {
        let caller = crate::names::readable(caller);
        let base = crate::names::parse(callee).base;
        return format!(
            "{callee} is GCC's copy of {base} with parameters GCC chose for this compile, and it changed with its caller {caller}, which is running on thread {}: that call finishes in {caller}'s old code, which may pass the new {callee} other arguments than it takes; patch it again once that call has returned (save the file again), or, for a function its thread never leaves (main, a worker's loop), move the call into a function it calls, or restart the program",
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
        "the signature of {callee} changes, and its caller {caller} is running on thread {}: that call finishes in {caller}'s old code, which would call {callee} the old way; patch it again once that call has returned (save the file again), or, for a function its thread never leaves (main, a worker's loop), move the call into a function it calls, or restart the program",
        tids.join(", ")
    )
}

/// The refusal of a patch that changes the signatures of `changed`
/// (functions of `objects`, with every caller among them) while a caller's
/// call runs in `target`; `None` when none does. A clone with chosen
/// parameters among them counts only with its callers among `patched`
/// (see [`clones_changed_with_callers`]).
pub fn running_caller<'o>(
    target: &Target,
    objects: impl Iterator<Item = &'o ObjectFile>,
    changed: &[String],
    patched: &[&str],
) -> Option<String> {
    if changed.is_empty() {
        return None;
    }
    let callers: Vec<(String, String)> = callers_among(objects, changed)
        .into_iter()
        .filter(|(caller, callee)| !has_chosen_parameters(callee) || patched.contains(&caller.as_str()))
        .collect();
    let names: Vec<&str> = callers.iter().map(|(caller, _)| caller.as_str()).collect();
    let running = crate::apply::running_now(target, &names);
    let (caller, threads) = running.first()?;
    let callee = &callers.iter().find(|(c, _)| c == caller)?.1;
    Some(refusal(caller, callee, threads))
}
