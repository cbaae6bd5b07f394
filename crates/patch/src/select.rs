//! Which functions of a new object to patch into a program built from an
//! older one, and which changes must not be patched at all.

use crate::diff::diff;
use crate::error::{PatchError, Result};
use crate::objfile::{Kind, ObjectFile, Target};

/// The functions (symbol indices of `new`) to patch. With `base`, the
/// previous compile the program runs, only those the diff reports changed
/// or added; a data layout change or a global function's signature change
/// is refused, naming the symbols. Without it, every function of `new`.
pub fn functions_to_patch(base: Option<&ObjectFile>, new: &ObjectFile) -> Result<Vec<usize>> {
    functions_to_patch_allowing(base, new, &|_| false)
}

/// The diff of `old` and `new`. On a large file a second thread prepares
/// the old object's side of the diff ([`crate::diff::prepare`]) and builds
/// its DWARF index while the diff starts on the new one's; the thread
/// that diffed then builds the new object's index, so the two indexes,
/// which the signature check after the diff reads
/// ([`crate::signature::index`]; SQLite's cost about what its diff does),
/// are built side by side (both on the second thread, the new one's was
/// built after the old one's while the diff's thread waited: SQLite's diff
/// stage 12.2 -> 11.5 ms, paired). The new object's index is left alone
/// when no code changed: then nothing reads it.
fn diff_indexing_aside(old: &ObjectFile, new: &ObjectFile) -> crate::diff::Diff {
    let worth = old.has_debug_info()
        && new.has_debug_info()
        && crate::side_by_side::worth_a_thread((old.raw().len() + new.raw().len()) as u64);
    let compare = || {
        let d = diff(old, new);
        if worth && d.changed.iter().any(|c| c.kind == Kind::Function) {
            crate::signature::index(new);
        }
        d
    };
    let index = || {
        crate::diff::prepare(old);
        crate::signature::index(old);
    };
    crate::side_by_side::both_if(worth, index, compare).1
}

/// The changed macros the unit's code uses, said after a layout refusal:
/// a size given by a macro (Lua's `LUAL_BUFFERSIZE`) changes a type that
/// no line of the edit names, and the refusal did not say why.
fn macros_behind(old: &ObjectFile, new: &ObjectFile) -> String {
    let changes = crate::debug_macros::used_by_the_unit(new, crate::debug_macros::changed(old, new));
    match crate::debug_macros::listed(&changes) {
        Some(listed) => format!(
            ", after {} changed value ({listed})",
            if changes.len() == 1 { "a macro" } else { "macros" }
        ),
        None => String::new(),
    }
}

/// [`functions_to_patch`], where the signature change of a global function
/// that `callers_follow` accepts is no reason to refuse: every caller the
/// program has is patched with it, to the new signature (files saved
/// together).
pub fn functions_to_patch_allowing(
    base: Option<&ObjectFile>,
    new: &ObjectFile,
    callers_follow: &dyn Fn(&str) -> bool,
) -> Result<Vec<usize>> {
    select(base, new, callers_follow).map(|s| s.functions)
}

/// What to patch, and what a patch leaves as it is although the edit
/// changed it.
#[derive(Debug, Clone, Default)]
pub struct Selected {
    /// The functions to patch (symbol indices of the new object).
    pub functions: Vec<usize>,
    /// What the patch leaves as it was although the edit changed it, for
    /// the user: variables whose initial value changed (the program keeps
    /// the values they have), and constant tables whose new contents only
    /// later reads see (what the program took from them at start-up, a
    /// table of functions it registered, stays). Unsaid, such an edit
    /// looked applied while the program ran on the old value.
    pub notes: Vec<String>,
    /// The variables (symbol names) whose initial value changed, each
    /// with its note among `notes`: a session that knows the value the
    /// program started with ([`initial_values`]) drops the note of an
    /// edit that puts it back (it said "changed" again).
    pub initial_values: Vec<String>,
    /// Functions whose signature the edit changes, patched because every
    /// caller comes with them: global ones that `callers_follow` accepts,
    /// and `static` ones (their callers are in the file). A caller's call
    /// running now keeps its old code, which calls them the old way.
    pub new_signatures: Vec<String>,
    /// Those of `new_signatures` whose parameters' names alone moved (the
    /// same call): only their callers whose code changed count as calling
    /// them the old way.
    pub names_moved: Vec<String>,
    /// Notes true only once the patch goes in (what the patched functions
    /// have: a changed macro's new value): a save held or refused said
    /// them of a patch that never happened (a zstd trial).
    pub if_patched: Vec<String>,
    /// Each constant table whose contents changed (as its note names it)
    /// with the functions (symbols) that read it: a session drops the
    /// note when the save patches none of them (their code already runs
    /// as the file has it: a SQLite trial's save was said to bring a
    /// table back that a revert had brought back minutes before).
    pub table_readers: Vec<(String, Vec<String>)>,
}

/// Each variable's initial value in `obj` by symbol name, as
/// [`initial_value`] gives it.
pub fn initial_values(obj: &ObjectFile) -> std::collections::HashMap<String, Vec<u8>> {
    (0..obj.symbols.len())
        .filter_map(|i| Some((obj.symbols[i].name.clone(), initial_value(obj, i)?)))
        .collect()
}

/// The largest zero-filled variable whose initial value
/// [`initial_value`] gives as its zero bytes.
const ZEROS_SPELLED_OUT: u64 = 4096;

/// The initial value of variable `i` of `obj` (`None` for anything else):
/// its bytes, then what each relocated field of it points at, so two
/// compiles compare equal only when both give it the same value.
pub fn initial_value(obj: &ObjectFile, i: usize) -> Option<Vec<u8>> {
    let s = obj.symbols.get(i).filter(|s| s.kind == Kind::Object)?;
    if obj.section(s.section).is_none_or(|sec| sec.constant()) {
        return None;
    }
    // A zero-filled one's (`.bss`) are zeros, as a variable initialised
    // with zeros in `.data` has them; a large one's are said in words
    // (an array of megabytes is not copied to be compared).
    let zeros = || format!("zeros:{}", s.size).into_bytes();
    let mut value = match s.bytes.as_deref() {
        Some(bytes)
            if bytes.len() as u64 > ZEROS_SPELLED_OUT && s.relocs.is_empty() && bytes.iter().all(|&b| b == 0) =>
        {
            zeros()
        }
        Some(bytes) => bytes.to_vec(),
        None if s.size <= ZEROS_SPELLED_OUT => vec![0; s.size as usize],
        None => zeros(),
    };
    for r in &s.relocs {
        let to = match &r.target {
            Target::Defined(t) => obj.symbols.get(*t).map_or(String::new(), |t| t.name.clone()),
            Target::Undefined(name) => name.clone(),
            Target::Section { section, offset } => {
                format!("{}+{offset}", obj.section(*section).map_or("", |sec| sec.name.as_str()))
            }
        };
        value.extend(format!("|{}:{}:{}:{to}", r.offset, r.r_type, r.addend).bytes());
    }
    Some(value)
}

/// What to tell the user of a variable `name` whose initial value changed.
pub fn initial_value_note(name: &str) -> String {
    format!("the initial value of {name} changed: the program keeps the value it has (a restart takes the new one)")
}

/// Functions other files may call that the edit removed from the file
/// (or a file emptied): a patch takes nothing out of a program, so the
/// old code stays and runs for every caller it still has. Unsaid, such a
/// save printed nothing at all. Whether another file still calls it is
/// not known here: said as a condition (a snappy trial's callers, all
/// patched in the same step, read as still running the old code).
fn removed_note(d: &crate::diff::Diff, new: &ObjectFile) -> Option<String> {
    const SHOWN: usize = 5;
    let gone: Vec<String> = d
        .removed
        .iter()
        .filter(|e| e.kind == Kind::Function && !e.local)
        .map(|e| crate::names::readable(&e.name))
        .collect();
    let list = match gone.len() {
        0 => return None,
        n if n <= SHOWN => gone.join(", "),
        n => format!("{}, and {} more", gone[..SHOWN].join(", "), n - SHOWN),
    };
    let file = new.source.as_deref().unwrap_or(&new.path);
    let one = gone.len() == 1;
    Some(format!(
        "{list} {} no longer in {file}: the program keeps {} old code, which any caller still calling it by that name in another file (or a pointer to {}) runs until a restart",
        if one { "is" } else { "are" },
        if one { "its" } else { "their" },
        if one { "it" } else { "them" },
    ))
}

/// How notes name the variable `name` of `obj`: a numbered function-local
/// static with a function that uses it (`vb (used by f)`), not by GCC's
/// `vb.1`.
fn shown(obj: &ObjectFile, name: &str) -> String {
    match obj
        .symbols
        .iter()
        .position(|s| s.name == name && s.kind == Kind::Object)
    {
        Some(i) => crate::diff::static_label(obj, i),
        None => crate::names::readable(name),
    }
}

/// What to tell the user of a constant table `name` whose contents
/// changed, read by the functions `readers` (directly, or through new
/// copies of the constants `through` that point to it), while the data
/// `kept` (variables, constants other files may read) keeps pointing to
/// the program's copy.
fn constant_table_note(name: &str, readers: &[&str], through: &[String], kept: &[String]) -> String {
    let kept = match kept {
        [] => String::new(),
        [one] => format!("; the program's own {one} keeps pointing to its old copy"),
        many => format!("; the program's own {} keep pointing to its old copy", many.join(", ")),
    };
    // Only other data refers to it (QuickJS's `js_math_funcs`, which a
    // table of object definitions points to): the note said "changed:
    // now read the new copy" with no reader named. Not "its own copy":
    // the data that points to it may be a copy an earlier patch brought
    // in, pointing to a copy of this table (tree-sitter's `language`).
    if readers.is_empty() {
        return format!(
            "the contents of {name} changed, but no function reads it directly (only other data of the program refers to it), so the program keeps the copy it uses now (the one the data that refers to it points to, which may be a copy an earlier patch brought in) until a restart{kept}"
        );
    }
    let through = match through {
        [] => String::new(),
        list => format!(" (through a new copy of {}, which points to it)", list.join(", ")),
    };
    // "The new code of": a reader whose new code cannot run (`main`'s
    // running loop) was said to "now read the new copy" (a re-check).
    format!(
        "the contents of {name} changed: the new code of {} reads the new copy{through}, but what the program already took from it (values it copied, pointers it keeps into the old copy) stays as it was until a restart{kept}",
        readers.join(", "),
    )
}

/// For each of `changed` (constants of `obj`, by index), the constant data
/// of `obj` that points to it, directly or through other such data: each
/// gets a new copy pointing to the new one. Not a global (other files
/// read the program's copy, which a patch leaves as it is) nor a C++
/// vtable or type information (code compares their addresses).
fn referring_constants(obj: &ObjectFile, changed: &[usize]) -> Vec<Vec<usize>> {
    changed
        .iter()
        .map(|&c| {
            let mut reached = vec![c];
            loop {
                let more: Vec<usize> = (0..obj.symbols.len())
                    .filter(|j| !reached.contains(j))
                    .filter(|&j| {
                        let s = &obj.symbols[j];
                        s.kind == Kind::Object
                            && s.local
                            && !crate::names::is_cxx_type_data(&s.name)
                            && obj.section(s.section).is_some_and(|sec| sec.constant())
                            && s.relocs
                                .iter()
                                .any(|r| obj.referenced_symbol(r).is_some_and(|t| reached.contains(&t)))
                    })
                    .collect();
                if more.is_empty() {
                    break;
                }
                reached.extend(more);
            }
            reached.split_off(1)
        })
        .collect()
}

/// The data of `obj` other than `through` that points to one of `reached`
/// (sorted): it keeps pointing to the program's copies.
fn kept_pointing(obj: &ObjectFile, reached: &[usize], through: &[usize]) -> Vec<usize> {
    (0..obj.symbols.len())
        .filter(|j| !reached.contains(j) && !through.contains(j))
        .filter(|&j| {
            let s = &obj.symbols[j];
            s.kind == Kind::Object
                && s.relocs.iter().any(|r| {
                    obj.referenced_symbol(r)
                        .is_some_and(|t| reached.binary_search(&t).is_ok())
                })
        })
        .collect()
}

/// A [`constant_table_note`] said again for a save that put the table's
/// readers back as the program was built (their patches taken back): the
/// program's own code reads its own copy again. `None` for any other
/// note. (A zlib trial: a put-back `configuration_table` was said to be
/// read "by the new code" as a new copy.)
pub fn constant_table_put_back(note: &str) -> Option<String> {
    let name = note.strip_prefix("the contents of ")?.split_once(" changed")?.0;
    Some(format!(
        "the contents of {name} are back as the program was built: its own code reads its own copy again, but what the patched code took from the changed copy (values it copied, pointers it kept into it) stays until a restart"
    ))
}

/// Drops from `notes` those of changed constant tables (`table_readers`,
/// see [`Selected::table_readers`]) none of whose readers `patched` says
/// the patch patches: the table the program reads did not change with it
/// (either form of the note: [`constant_table_note`] and
/// [`constant_table_put_back`]).
pub fn drop_unread_table_notes(
    notes: &mut Vec<String>,
    table_readers: &[(String, Vec<String>)],
    patched: impl Fn(&str) -> bool,
) {
    let unread: Vec<String> = table_readers
        .iter()
        .filter(|(_, readers)| !readers.is_empty() && !readers.iter().any(|r| patched(r)))
        .map(|(table, _)| format!("the contents of {table} "))
        .collect();
    notes.retain(|n| !unread.iter().any(|prefix| n.starts_with(prefix)));
}

/// [`functions_to_patch_allowing`], with the variables whose initial value
/// changed (from the same diff).
pub fn select(base: Option<&ObjectFile>, new: &ObjectFile, callers_follow: &dyn Fn(&str) -> bool) -> Result<Selected> {
    select_checking_layouts(base, new, callers_follow, None)
}

/// Given changed functions' names, the types they use whose layout
/// differs from what the program's data has, in words.
pub type LayoutCheck<'a> = dyn Fn(&[&str]) -> Vec<String> + 'a;

/// [`select`], the layouts of the types the changed code uses compared by
/// `layouts` (given the changed functions' names: the differing types, in
/// words) instead of with `base`: against the program as it was built,
/// which a base compiled after a header changed no longer describes.
pub fn select_checking_layouts(
    base: Option<&ObjectFile>,
    new: &ObjectFile,
    callers_follow: &dyn Fn(&str) -> bool,
    layouts: Option<&LayoutCheck>,
) -> Result<Selected> {
    let Some(old) = base else {
        return Ok(Selected {
            functions: functions_where(new, |_| true),
            ..Selected::default()
        });
    };
    same_unit(old, new)?;
    let d = diff_indexing_aside(old, new);
    let initial_values = initial_values_in(&d, new);
    let mut notes: Vec<String> = initial_values
        .iter()
        .map(|n| initial_value_note(&shown(new, n)))
        .collect();
    notes.extend(removed_note(&d, new));
    let changed_code: Vec<&str> = d
        .changed
        .iter()
        .filter(|c| c.kind == Kind::Function)
        .map(|c| c.name.as_str())
        .collect();
    let layout: Vec<String> = d
        .layout_changes()
        .map(|c| format!("{} ({})", shown(new, &c.name), c.reason))
        .collect();
    if !layout.is_empty() {
        // Which type's field made it so, where the debug information says.
        let types = crate::type_layout::changed(old, new, &changed_code);
        let why = match types.is_empty() {
            true => String::new(),
            false => format!(" ({})", types.join("; ")),
        };
        return Err(PatchError::Refused {
            what: format!(
                "the layout of data changed: {}{why}{}; the running program's state has the old layout, so restart it",
                layout.join(", "),
                macros_behind(old, new)
            ),
        });
    }
    // Parameters' names that moved change no call: callers in other
    // files compile as they did (see `Signature::same_call`), and only
    // callers whose call changed too need their running calls checked.
    let (followed, signatures): (Vec<_>, Vec<_>) = crate::signature::changed(old, new, &changed_code)
        .into_iter()
        .partition(|change| change.names_only || callers_follow(&change.name));
    let statics = crate::signature::changed_static(old, new, &changed_code);
    let names_moved: Vec<String> = followed
        .iter()
        .filter(|change| change.names_only)
        .map(|change| change.name.clone())
        .chain(statics.iter().filter(|(_, moved)| *moved).map(|(name, _)| name.clone()))
        .collect();
    let new_signatures: Vec<String> = followed
        .into_iter()
        .map(|change| change.name)
        .chain(statics.into_iter().map(|(name, _)| name))
        .collect();
    if !signatures.is_empty() {
        return Err(PatchError::Refused {
            what: format!(
                "the signature of a global function changed ({}); callers in files that were not recompiled would still pass the old arguments and read the old return type, so restart the program",
                signatures.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
            ),
        });
    }
    // Live data keeps the old layout of every type: new code that reads
    // it through a changed definition reads the wrong bytes.
    let types = match layouts {
        Some(layouts) => layouts(&changed_code),
        None => crate::type_layout::changed(old, new, &changed_code),
    };
    if crate::type_layout::only_values(&types) {
        return Err(PatchError::Refused {
            what: format!(
                "the values of an enumeration the changed code uses changed ({}){}; data the program may already have (on its heap, in its globals, or made while a call runs) holds the old values and the new code would misread them, so restart the program",
                types.join("; "),
                macros_behind(old, new)
            ),
        });
    }
    if !types.is_empty() {
        return Err(PatchError::Refused {
            what: format!(
                "the layout of a type the changed code uses changed ({}){}; data of that type the program may already have (on its heap, in its globals, or made while a call runs) keeps the old layout and the new code would misread it, so restart the program",
                types.join("; "),
                macros_behind(old, new)
            ),
        });
    }
    let mut names: Vec<&str> = d
        .changed
        .iter()
        .map(|c| c.name.as_str())
        .chain(d.added.iter().map(|a| a.name.as_str()))
        .collect();
    // Read-only data is copied with the code that uses it (the program's
    // copy cannot change): a changed constant table means every function
    // that refers to it runs again with the new copy.
    let changed_constants: Vec<usize> = d
        .changed
        .iter()
        .filter(|c| c.kind == Kind::Object)
        .filter_map(|c| {
            new.symbols
                .iter()
                .position(|s| s.name == c.name && s.kind == Kind::Object)
        })
        .filter(|&i| new.section(new.symbols[i].section).is_some_and(|s| s.constant()))
        .collect();
    // A global constant other files may read: their code keeps reading
    // the program's copy, which a patch does not change, so only this
    // file's functions would see the new contents.
    let shared: Vec<&str> = changed_constants
        .iter()
        .map(|&i| &new.symbols[i])
        .filter(|s| !s.local)
        .map(|s| s.name.as_str())
        .collect();
    // A class's vtable: its virtual functions changed, said as such (a
    // snappy trial's added virtual function was refused as a "constant"
    // that "can be static").
    let vtables: Vec<String> = shared
        .iter()
        .filter(|n| n.starts_with("_ZTV"))
        .map(|n| crate::names::readable(n))
        .map(|r| {
            r.strip_prefix("{vtable(")
                .and_then(|r| r.strip_suffix(")}"))
                .or_else(|| r.strip_prefix("vtable for "))
                .map_or(r.clone(), str::to_string)
        })
        .collect();
    if !vtables.is_empty() {
        return Err(PatchError::Refused {
            what: format!(
                "the virtual functions of {} changed (a virtual function added, removed or reordered: the vtable's contents differ); the objects the program has point at the old vtable, whose slots other files' code calls through, and a patch cannot change it: restart the program",
                vtables.join(", ")
            ),
        });
    }
    if !shared.is_empty() {
        return Err(PatchError::Refused {
            what: format!(
                "the contents of global constant {} changed; code in other files (or a library's user) may read the program's copy, which a patch cannot change, so only this file would be sure to see the new contents: restart the program (a constant only this file uses can be static)",
                shared.join(", ")
            ),
        });
    }
    // Each changed constant with the constant data of this file that
    // points to it, directly or through other such data (expat's
    // `encodings`, a table of pointers to `latin1_encoding`): a copy of
    // that data pointing to the new copy is what a fresh build has, so its
    // readers are patched too. Before, a parser made after the patch took
    // `latin1_encoding` from the program's own `encodings` and never saw
    // the edit, under a "patched" line (a trial on expat).
    let through = referring_constants(new, &changed_constants);
    let mut readers: Vec<Vec<&str>> = vec![Vec::new(); changed_constants.len()];
    let mut table_readers = Vec::new();
    for f in new.symbols.iter().filter(|s| s.kind == Kind::Function) {
        let mut uses = false;
        for r in &f.relocs {
            let Some(t) = new.referenced_symbol(r) else { continue };
            for (k, &c) in changed_constants.iter().enumerate() {
                if t != c && !through[k].contains(&t) {
                    continue;
                }
                uses = true;
                if !readers[k].contains(&f.name.as_str()) {
                    readers[k].push(&f.name);
                }
            }
        }
        if uses && !names.contains(&f.name.as_str()) {
            names.push(&f.name);
        }
    }
    for (k, (&i, readers)) in changed_constants.iter().zip(&readers).enumerate() {
        // A table of its one reader's own code addresses (a computed
        // goto's labels: Lua's `disptab`) changes with that code, which
        // is patched: nothing of it outlives the old code (every reload of
        // `luaV_execute` was said to leave values taken from it).
        let table = &new.symbols[i];
        let own_labels = match readers[..] {
            [reader] => {
                !table.relocs.is_empty()
                    && table
                        .relocs
                        .iter()
                        .all(|r| new.referenced_symbol(r).is_some_and(|t| new.symbols[t].name == reader))
            }
            _ => false,
        };
        if own_labels {
            continue;
        }
        let readable: Vec<String> = readers.iter().map(|r| crate::names::readable(r)).collect();
        let readable: Vec<&str> = readable.iter().map(String::as_str).collect();
        let label = crate::diff::static_label(new, i);
        let label_of =
            |list: &[usize]| -> Vec<String> { list.iter().map(|&j| crate::diff::static_label(new, j)).collect() };
        let mut reached = std::iter::once(i).chain(through[k].iter().copied()).collect::<Vec<_>>();
        reached.sort_unstable();
        notes.push(constant_table_note(
            &label,
            &readable,
            &label_of(&through[k]),
            &label_of(&kept_pointing(new, &reached, &through[k])),
        ));
        table_readers.push((label, readers.iter().map(|r| r.to_string()).collect()));
    }
    let functions = functions_where(new, |name| names.contains(&name));
    // Only with code to patch: a changed macro no function uses changes
    // nothing the program runs.
    let mut if_patched = Vec::new();
    if !functions.is_empty() {
        if_patched.extend(crate::debug_macros::note(&crate::debug_macros::used_by_the_unit(
            new,
            crate::debug_macros::changed(old, new),
        )));
    }
    let mut new_signatures = new_signatures;
    new_signatures.extend(crate::running_callers::clones_changed_with_callers(
        new,
        Some(old),
        &functions,
    ));
    Ok(Selected {
        functions,
        notes,
        initial_values,
        new_signatures,
        names_moved,
        if_patched,
        table_readers,
    })
}

/// What C++ code calls to throw, catch, or clean up while an exception
/// passes: code that calls one of these runs the unwinder over its own
/// frame.
const UNWINDING: [&str; 4] = ["__cxa_throw", "__cxa_rethrow", "__cxa_begin_catch", "_Unwind_Resume"];

/// Refuses functions an exception may be in ([`exception_exposed`]), for
/// a process without an unwinder to hand their unwind information to (see
/// [`crate::unwind`]): the unwinder, finding no unwind information for
/// such a frame, ends the program (`std::terminate`) at the first
/// exception. Refused, the program runs on with its old code, which
/// unwinds as built.
pub fn refuse_exception_handling(obj: &ObjectFile, functions: &[usize]) -> Result<()> {
    let named = exception_exposed(obj, functions);
    if named.is_empty() {
        return Ok(());
    }
    Err(PatchError::Refused {
        what: format!(
            "C++ exceptions may be thrown, caught or passed through {} (they throw, catch or clean up, or call a function of this file that throws), and the process has no unwinder loaded (libgcc's __register_frame_info) to hand the new code's unwind information to: the first exception there would end the program (std::terminate); the program runs on unchanged: restart it to change them",
            named.join(", ")
        ),
    })
}

/// The functions of `functions` (by their readable names) an exception
/// may be in: those that throw, catch or clean up after C++ exceptions,
/// and those that call (directly or through other functions of the
/// object) one that throws, since the exception passes through their
/// frames. (A function of another file or library that throws is not
/// seen from here.)
pub fn exception_exposed(obj: &ObjectFile, functions: &[usize]) -> Vec<String> {
    let unwinds = |f: &crate::objfile::Symbol| {
        f.relocs
            .iter()
            .any(|r| matches!(&r.target, Target::Undefined(name) if UNWINDING.contains(&name.as_str())))
    };
    // Functions of the object an exception may pass through: the ones that
    // unwind, then their callers, until nothing is added.
    let mut exposed: Vec<bool> = obj
        .symbols
        .iter()
        .map(|s| s.kind == Kind::Function && unwinds(s))
        .collect();
    if !exposed.iter().any(|&e| e) {
        return Vec::new();
    }
    loop {
        let mut added = false;
        for (i, f) in obj.symbols.iter().enumerate() {
            if exposed[i] || f.kind != Kind::Function {
                continue;
            }
            if f.relocs
                .iter()
                .any(|r| obj.referenced_symbol(r).is_some_and(|t| t != i && exposed[t]))
            {
                exposed[i] = true;
                added = true;
            }
        }
        if !added {
            break;
        }
    }
    let mut named: Vec<String> = functions
        .iter()
        .filter(|&&i| exposed[i])
        // A clone (`f.cold`) is named as its function.
        .map(|&i| crate::names::readable(&crate::names::parse(&obj.symbols[i].name).base))
        .collect();
    named.dedup();
    named
}

/// Refuses a base that is not an earlier compile of the new object's
/// source: every function of the new object would count as added and be
/// redirected (unchanged ones too, `main` among them), and the report
/// would say "patched" for code that did not change. Told by the
/// functions they define: none in common. (The source file names they
/// record may differ for a good reason: an edited copy, `v2.c`.)
fn same_unit(old: &ObjectFile, new: &ObjectFile) -> Result<()> {
    fn functions(o: &ObjectFile) -> foldhash::HashSet<&str> {
        o.symbols
            .iter()
            .filter(|s| s.kind == Kind::Function)
            .map(|s| s.name.as_str())
            .collect()
    }
    let (before, after) = (functions(old), functions(new));
    if before.is_empty() || after.is_empty() || !before.is_disjoint(&after) {
        return Ok(());
    }
    let from = |o: &ObjectFile| match &o.source {
        Some(file) => format!("{} (from {file})", o.path),
        None => o.path.clone(),
    };
    Err(PatchError::Refused {
        what: format!(
            "the base is not an earlier compile of the new object's source: {} and {} define no function in common, so every function would count as changed; pass as --base the object of the same source file before the edit, or leave --base out to patch every function of the new object",
            from(old),
            from(new)
        ),
    })
}

fn functions_where(obj: &ObjectFile, wanted: impl Fn(&str) -> bool) -> Vec<usize> {
    obj.symbols
        .iter()
        .enumerate()
        .filter(|(_, s)| s.kind == Kind::Function && wanted(&s.name))
        .map(|(i, _)| i)
        .collect()
}

/// Initialized variables of `new` whose initial value differs from the
/// other object of diff `d` (`int limit = 9;`, was 5): the running program
/// keeps the value it has, which an edit of the initial value does not
/// change.
fn initial_values_in(d: &crate::diff::Diff, new: &ObjectFile) -> Vec<String> {
    d.changed
        .iter()
        .filter(|c| c.kind == Kind::Object && !c.layout)
        // Zero-filled ones too (`.bss`): an initial value edited to 0 moves
        // the variable there, and went unsaid (an Oniguruma trial).
        .filter(|c| {
            new.symbols
                .iter()
                .any(|s| s.name == c.name && new.section(s.section).is_some_and(|sec| !sec.constant()))
        })
        .map(|c| c.name.clone())
        .collect()
}
