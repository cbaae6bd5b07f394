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

/// Why a signature change of `callee` cannot be patched while `caller`
/// runs on `threads`.
pub fn refusal(caller: &str, callee: &str, threads: &[u32]) -> String {
    let tids: Vec<String> = threads.iter().map(u32::to_string).collect();
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
/// call runs in `target`; `None` when none does.
pub fn running_caller<'o>(
    target: &Target,
    objects: impl Iterator<Item = &'o ObjectFile>,
    changed: &[String],
) -> Option<String> {
    if changed.is_empty() {
        return None;
    }
    let callers = callers_among(objects, changed);
    let names: Vec<&str> = callers.iter().map(|(caller, _)| caller.as_str()).collect();
    let running = crate::apply::running_now(target, &names);
    let (caller, threads) = running.first()?;
    let callee = &callers.iter().find(|(c, _)| c == caller)?.1;
    Some(refusal(caller, callee, threads))
}
