//! Signatures that a diff of two compiles cannot see.
//!
//! A save is diffed against the file's earlier compile, which is what the
//! program runs, so a global function whose parameters changed shows as a
//! changed signature and is refused unless its callers come with it. Two
//! patches have no such compile: the catch-up of an edit made before relive
//! started (the earlier compile *is* the edited file), and a save that
//! patches again what another relive command reverted (the earlier compile
//! has the new signature too). There the signature the program runs is
//! the one it was built with, read from its own DWARF. A re-check on Lua
//! watching only `lobject.c` found both: `luaO_tostring` got a third
//! parameter its callers in other files never passed, and the program
//! printed `#1*` where a fresh build prints `1*`.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use relive_patch::apply::Target;
use relive_patch::link::{live_address, BaseNames};
use relive_patch::objfile::Kind;
use relive_patch::signature::{Signature, Subprograms};
use relive_patch::ObjectFile;
use relive_process::modules::LoadedModule;

/// Whether function `i` of `obj` runs the program's own code: it is in
/// the program, and no patch redirects it.
pub(crate) fn runs_as_built(target: &Target, obj: &ObjectFile, i: usize) -> bool {
    live_address(obj, i, &target.resolver, &BaseNames::none()).is_some_and(|addr| target.journal.patch(addr).is_none())
}

/// Whether function `i` of `obj` is in the program and a patch redirects
/// it: another compile's code runs there.
pub(crate) fn runs_a_patch(target: &Target, obj: &ObjectFile, i: usize) -> bool {
    live_address(obj, i, &target.resolver, &BaseNames::none()).is_some_and(|addr| target.journal.patch(addr).is_some())
}

/// `name -> "ret(param, param)"` as the program was built, for the global
/// functions among `functions` of `obj` (compiled from `source`), each
/// only where it runs the program's own code unless `patched_too` (a
/// patched one runs another compile's code, whose signature this cannot
/// know). Read from the DWARF of the module each one is in (its image as
/// relive read it when it opened the process); a function of a module
/// without readable DWARF is left out. `resolved`: as
/// [`relive_patch::signature::built_with`] says.
pub(crate) fn built_signatures(
    target: &Target,
    source: &Path,
    obj: &ObjectFile,
    functions: &[usize],
    resolved: bool,
    patched_too: bool,
) -> HashMap<String, String> {
    let kind = match resolved {
        true => Subprograms::DefinitionsResolved,
        false => Subprograms::Definitions,
    };
    relive_patch::signature::shown(built(target, source, obj, functions, kind, patched_too))
}

/// The signatures of `kind` the DWARF of each module gives the functions
/// among `functions` (see [`built_signatures`]).
fn built(
    target: &Target,
    source: &Path,
    obj: &ObjectFile,
    functions: &[usize],
    kind: Subprograms,
    patched_too: bool,
) -> HashMap<String, Signature> {
    let statics = kind == Subprograms::StaticDefinitions;
    let mut out = HashMap::new();
    let Some(source_name) = source.file_name().and_then(|n| n.to_str()) else {
        return out;
    };
    let by_module = by_module(target, obj, functions, |symbol, addr| {
        if symbol.local != statics || (!patched_too && target.journal.patch(addr).is_some()) {
            return None;
        }
        Some(match statics {
            true => relive_patch::names::parse(&symbol.name).base,
            false => symbol.name.clone(),
        })
    });
    for (module, names) in by_module.into_values() {
        if let Some(image) = &module.image {
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            out.extend(relive_patch::signature::built_with_compared(
                image.data(),
                source_name,
                &names,
                kind,
            ));
        }
    }
    out
}

/// Why `functions` of `obj` (compiled from `source`) must not be patched
/// while relive watches only some files: a global one among them has
/// another signature than the one the program runs (`changed`, as
/// [`global_changes`] gives them), and its callers in other files (which
/// relive does not watch, so cannot know or patch) pass the old
/// arguments. `None` when none changed.
pub(crate) fn refusal(changed: &[(String, String)]) -> Option<String> {
    let list = listed(changed)?;
    Some(format!(
        "the signature of a global function is not the one the program runs ({list}), and relive watches only the files you named, so it cannot know or patch the callers in other files, which would still pass the old arguments and read the old return type: watch them all (no file arguments) to have such a change patched with its callers, or restart the program"
    ))
}

/// The changes of [`global_changes`] in words, `None` when there are none.
fn listed(changed: &[(String, String)]) -> Option<String> {
    let said: Vec<&str> = changed.iter().map(|(_, said)| said.as_str()).collect();
    (!said.is_empty()).then(|| said.join("; "))
}

/// Why a one-shot patch must not go in, of its global functions'
/// signature changes (`changed`, as [`global_changes`] gives them): a
/// global one's signature is not the one the program runs (as built, or
/// as the patch in force gave it), and callers in files the patch does
/// not bring call it the old way. A diff against `--base` misses a signature
/// an earlier patch's object already had while its code did not change
/// (nothing was patched then).
pub fn one_shot_refusal(changed: &[(String, String)]) -> Option<String> {
    let list = listed(changed)?;
    Some(format!(
        "the signature of a global function is not the one the program runs ({list}): callers in other files would still pass the old arguments and read the old return type, so restart the program"
    ))
}

/// What a one-shot patch of `obj` (compiled from `source`) that changed
/// no code says when one of its global functions
/// has another signature than the program runs: the next object, whose
/// code uses it, is refused (a zlib trial's object with a parameter
/// added, unused, said only "nothing to patch").
pub fn one_shot_unpatched_signatures(target: &Target, source: &Path, obj: &ObjectFile) -> Option<String> {
    let list = listed(&global_changes(target, source, obj, &global_functions(obj)))?;
    Some(format!(
        "the signature of a global function is not the one the program runs ({list}), though no code changed: nothing was patched, and an object whose code uses it is refused, as callers in other files call it the old way (restart the program for that change)"
    ))
}

/// The global functions of `obj` (indices).
pub(crate) fn global_functions(obj: &ObjectFile) -> Vec<usize> {
    (0..obj.symbols.len())
        .filter(|&i| obj.symbols[i].kind == Kind::Function && !obj.symbols[i].local)
        .collect()
}

/// [`global_functions`] by their names.
pub(crate) fn global_function_names(obj: &ObjectFile) -> Vec<&str> {
    global_functions(obj)
        .into_iter()
        .map(|i| obj.symbols[i].name.as_str())
        .collect()
}

/// The global functions among `functions` of `obj` (compiled from
/// `source`) whose signature is not the one the program runs, each by
/// its symbol and as "f: int() -> int(int x)", sorted: for a function
/// that runs its own code, the one the program was built with (its
/// DWARF); for one a relive patch replaced, the one that patch's compile
/// gave it (its generation's record). A libuv trial's function patched
/// once, then given a parameter unused (nothing patched), then using it,
/// was patched: only functions that ran their own code were compared.
/// Compared as a call sees them: a renamed parameter or a typedef
/// spelled out is no change (a generation keeps its signature's compared
/// form too).
pub fn global_changes(target: &Target, source: &Path, obj: &ObjectFile, functions: &[usize]) -> Vec<(String, String)> {
    let said = |name: &str, was: &str, is: &str| format!("{}: {was} -> {is}", relive_patch::names::readable(name));
    let mut changed: Vec<(String, String)> = Vec::new();
    let built = built(target, source, obj, functions, Subprograms::Definitions, false);
    if !built.is_empty() {
        let names: Vec<&str> = built.keys().map(String::as_str).collect();
        let now = relive_patch::signature::compared(obj, &names, Subprograms::Definitions);
        changed.extend(built.iter().filter_map(|(name, was)| {
            let is = now.get(name).filter(|is| !is.same_call(was))?;
            Some((name.clone(), said(name, &was.shown, &is.shown)))
        }));
    }
    // Patched ones, by what their running generation recorded.
    let running: Vec<(&str, &relive_patch::journal::Generation)> = functions
        .iter()
        .filter_map(|&i| {
            let symbol = obj.symbols.get(i).filter(|s| !s.local && s.kind == Kind::Function)?;
            let addr = live_address(obj, i, &target.resolver, &BaseNames::none())?;
            let generation = target.journal.patch(addr)?.history.last()?;
            generation.signature.as_ref()?;
            Some((symbol.name.as_str(), generation))
        })
        .collect();
    if !running.is_empty() {
        let names: Vec<&str> = running.iter().map(|(n, _)| *n).collect();
        let now = relive_patch::signature::compared(obj, &names, Subprograms::Definitions);
        changed.extend(running.iter().filter_map(|(name, generation)| {
            let is = now.get(*name)?;
            let was = generation.signature.as_deref().unwrap_or_default();
            relive_patch::journal::recorded_signature_differs(generation, is)
                .then(|| (name.to_string(), said(name, was, &is.shown)))
        }));
    }
    changed.sort_by(|a, b| a.1.cmp(&b.1));
    changed
}

/// A module and the callees it defines, each at its address in the
/// module's file, with the signature of its patch's newest generation
/// (`Some`: it is patched).
type ModuleCallees<'a> = (&'a LoadedModule, Vec<(&'a str, u64, Option<Option<String>>)>);

/// Why the new code of `functions` of `obj` (compiled from `source`) must
/// not run: it calls a function of another file of the program by a
/// prototype that is not the one the program runs, as it was built (its
/// DWARF), so it would pass arguments the running definition does not
/// take. What `relive run` asks of the files it has compiled, for a
/// one-shot patch, which has only the program's build to ask: a bzip2
/// trial patched `BZ2_compressBlock`, compiled against a header that gave
/// `BZ2_hbAssignCodes` a parameter its definition (not patched) did not
/// have, and every stream the program made was corrupt. A callee a patch
/// runs is judged the same way when its patch kept the built signature;
/// `None` where nothing differs or nothing is known.
pub fn callee_mismatch(target: &Target, source: &Path, obj: &ObjectFile, functions: &[usize]) -> Option<String> {
    let called = relive_patch::callees::undefined_callees(obj, functions);
    if called.is_empty() {
        return None;
    }
    let declared = relive_patch::signature::declarations(obj, &called);
    // Each callee, by module, at its address in the module's file, with
    // the signature its patch's newest generation has (`Some`: patched).
    let mut by_module: BTreeMap<&str, ModuleCallees> = BTreeMap::new();
    for name in called.iter().copied().filter(|n| declared.contains_key(*n)) {
        let Some(addr) = relive_patch::link::Resolver::global(&target.resolver, name) else {
            continue;
        };
        let Some(module) = target.modules.containing(addr) else {
            continue;
        };
        let patched = target
            .journal
            .patch(addr)
            .map(|p| p.history.last().and_then(|g| g.signature.clone()));
        by_module
            .entry(&module.module.path)
            .or_insert((module, Vec::new()))
            .1
            .push((name, addr.wrapping_sub(module.module.load_bias), patched));
    }
    for (module, callees) in by_module.into_values() {
        let Some(image) = &module.image else { continue };
        let wanted: Vec<(&str, u64)> = callees.iter().map(|&(name, addr, _)| (name, addr)).collect();
        // A patched callee runs its patch's code: judged by the program's
        // build when that code has the built signature (a body edit: a
        // bzip2 re-check's caller passing a fifth argument went in once
        // the callee had been patched), not known here otherwise.
        let patched: Vec<(&str, u64)> = callees
            .iter()
            .filter(|(.., patched)| patched.is_some())
            .map(|&(name, addr, _)| (name, addr))
            .collect();
        let mut answers = relive_patch::signature::built_at_each(
            image.data(),
            &[
                (&wanted, Subprograms::DefinitionsResolved),
                (&patched, Subprograms::Definitions),
            ],
        )
        .into_iter();
        let (running, built) = (answers.next().unwrap_or_default(), answers.next().unwrap_or_default());
        for (name, _, patched) in &callees {
            if let Some(generation) = patched {
                if generation.as_ref() != built.get(*name) {
                    continue;
                }
            }
            let (Some(wants), Some(is)) = (declared.get(*name), running.get(*name)) else {
                continue;
            };
            if !relive_patch::signature::agree(wants, is) {
                let name = relive_patch::names::readable(name);
                return Some(format!(
                    "{} calls {name} as {wants}, but the program runs {name} with the signature it was built with, {is}: the new code would pass arguments the running {name} does not take. A signature change goes in only with its definition and every caller at once, which `relive run` does when their files are saved together (one object per `relive patch` cannot); else restart the program",
                    source.display()
                ));
            }
        }
    }
    None
}

/// The functions among `functions` of `obj` (compiled from `source`) that
/// run the program's own code and whose signature in `obj` is not the one
/// the program was built with, global or `static`, by symbol name: a
/// change the diff against the file's earlier compile cannot show (code
/// another command reverted, patched again; an edit made before relive
/// started, caught up), whose callers' running calls must be checked as
/// for one it shows (a re-check: after a revert, `f`'s swapped parameters
/// and its caller went in again with no record of the change, and a later
/// revert sent a running call of the caller's new code into the old `f`
/// with the new arguments).
pub fn changed_names(target: &Target, source: &Path, obj: &ObjectFile, functions: &[usize]) -> Vec<String> {
    changed_names_of(target, source, obj, functions, &[false, true])
}

/// [`changed_names`] of the `static` functions alone (the global ones come
/// from [`global_changes`]).
pub fn changed_static_names(target: &Target, source: &Path, obj: &ObjectFile, functions: &[usize]) -> Vec<String> {
    changed_names_of(target, source, obj, functions, &[true])
}

/// [`changed_names`] of the functions that are `static` as each of
/// `which` says.
fn changed_names_of(
    target: &Target,
    source: &Path,
    obj: &ObjectFile,
    functions: &[usize],
    which: &[bool],
) -> Vec<String> {
    let mut out = Vec::new();
    for &statics in which {
        let kind = match statics {
            false => Subprograms::Definitions,
            true => Subprograms::StaticDefinitions,
        };
        let built = built(target, source, obj, functions, kind, false);
        if built.is_empty() {
            continue;
        }
        let names: Vec<&str> = built.keys().map(String::as_str).collect();
        let now = relive_patch::signature::compared(obj, &names, kind);
        for &i in functions {
            let Some(symbol) = obj.symbols.get(i).filter(|s| s.local == statics) else {
                continue;
            };
            let key = match statics {
                true => relive_patch::names::parse(&symbol.name).base,
                false => symbol.name.clone(),
            };
            if matches!((built.get(&key), now.get(&key)), (Some(was), Some(is)) if !was.same_call(is)) {
                out.push(symbol.name.clone());
            }
        }
    }
    out
}

/// The types whose layout in `obj` (compiled from `source`) differs from
/// the program's as it was built, among those `functions` of `obj` use,
/// read from the DWARF of the module each function runs in: what the
/// program's data was laid out by. A diff of two compiles misses a header
/// change both were made after (an LMDB trial: `MDB_stat` grew before
/// relive started, or while another function of `mdb.c` was patched, and
/// an edit writing the new field went in, writing past the program's
/// structs).
/// `None` when no module has DWARF for the file (the caller compares with
/// another compile then).
pub(crate) fn layout_changes(
    target: &Target,
    source: &Path,
    obj: &ObjectFile,
    functions: &[usize],
) -> Option<Vec<String>> {
    let source_name = source.file_name().and_then(|n| n.to_str())?;
    let by_module = by_module(target, obj, functions, |symbol, _| Some(symbol.name.clone()));
    let mut out: Option<Vec<String>> = None;
    for (module, names) in by_module.into_values() {
        let Some(image) = &module.image else { continue };
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        if let Some(changes) = relive_patch::type_layout::changed_since_build(image.data(), source_name, obj, &names) {
            out.get_or_insert_with(Vec::new).extend(changes);
        }
    }
    if let Some(out) = &mut out {
        out.sort();
        out.dedup();
    }
    out
}

/// The functions among `functions` of `obj` that the program has, by the
/// module each runs in (the image relive read of the file that runs: the
/// running image where the path names a rebuilt one), each under the name
/// `named` gives it (given its symbol and live address; `None` leaves it
/// out).
fn by_module<'t>(
    target: &'t Target,
    obj: &ObjectFile,
    functions: &[usize],
    named: impl Fn(&relive_patch::objfile::Symbol, u64) -> Option<String>,
) -> BTreeMap<&'t str, (&'t LoadedModule, Vec<String>)> {
    let mut out: BTreeMap<&str, (&LoadedModule, Vec<String>)> = BTreeMap::new();
    for &i in functions {
        let Some(symbol) = obj.symbols.get(i).filter(|s| s.kind == Kind::Function) else {
            continue;
        };
        let Some(addr) = live_address(obj, i, &target.resolver, &BaseNames::none()) else {
            continue;
        };
        let (Some(name), Some(module)) = (named(symbol, addr), target.modules.containing(addr)) else {
            continue;
        };
        out.entry(&module.module.path)
            .or_insert((module, Vec::new()))
            .1
            .push(name);
    }
    out
}
