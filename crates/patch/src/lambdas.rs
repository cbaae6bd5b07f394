//! C++ lambdas matched by what they are, not by their number.
//!
//! A lambda's closure type is named by its scope and its order among the
//! lambdas of the same signature there: `work(int)::{lambda(int)#1}`
//! (`_ZZ4workiENKUliE_clEi`); Clang names one without linkage by its
//! order in the whole file: `work(int)::$_0` (`_ZZ4workiENK3$_0clEi`). A
//! lambda written above it makes it `#2`, so by name the edit changed
//! `#1` (the old one's code replaced by the new lambda's) and added `#2`:
//! a `std::function` kept from before the patch then ran the other
//! lambda's body. Here each closure of the new object
//! is matched with the old closure whose code is the same (every function
//! of the closure's: its `operator()`, the `std::function` handlers made
//! for it), and the new object's keys are rewritten to the old names; a
//! lambda with no old twin keeps its number when that closure is free
//! (an edited lambda), else it is new.

use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};
use std::borrow::Cow;

use crate::objfile::{Kind, ObjectFile};

/// The marker of a closure type in a demangled name.
const LAMBDA: &str = "{lambda(";
/// Clang's, for a lambda without linkage: `$_` and its number.
const CLANG_LAMBDA: &str = "::$_";

/// How the key of a symbol of a lambda with no old twin starts.
const FRESH: &str = "lambda:";

/// Whether `key` (of [`paired_keys`]) is of a lambda the edit added.
pub fn is_fresh(key: &str) -> bool {
    key.starts_with(FRESH)
}

/// Whether `symbol` names a closure type or something made for one.
pub fn mentions_lambda(symbol: &str) -> bool {
    maybe_closure(symbol) && {
        let text = crate::names::readable(symbol);
        // Not demangled: it may (see `paired_keys`).
        text == symbol || !ids(&text).is_empty()
    }
}

/// Whether the mangled `symbol` may mention a closure type (`Ul…E…_`),
/// without demangling it.
fn maybe_closure(symbol: &str) -> bool {
    symbol.starts_with("_Z") && spells_closure(symbol)
}

/// Whether mangled text holds what starts a closure type's name: GCC's
/// `Ul`, Clang's `$_`.
fn spells_closure(text: &str) -> bool {
    text.contains("Ul") || text.contains("$_")
}

/// The keys of `new` for comparing with `old` (their
/// [`crate::diff::stable_keys`]): symbols of renumbered lambdas get the
/// keys of their old twins, those of lambdas with no twin fresh keys.
/// Borrowed as they are when no lambda was renumbered (most objects have
/// none).
pub fn paired_keys<'n>(old: &ObjectFile, new: &'n ObjectFile) -> Cow<'n, [String]> {
    let new_keys = crate::diff::stable_keys(new);
    // Most edits add, remove or reorder no lambda: the same closure
    // symbols by name, each function of them the same code, nothing
    // renumbered, and nothing demangled.
    let (old_names, new_names) = (closure_candidates(old), closure_candidates(new));
    let unsettled: Vec<&str> = if old_names == new_names {
        changed_code(old, new, &old_names)
    } else {
        old_names.symmetric_difference(&new_names).copied().collect()
    };
    if unsettled.is_empty() {
        return Cow::Borrowed(new_keys);
    }
    // Only the scopes where closures came, went or changed can have
    // renumbered ones (two lambdas swapped keep their names but trade
    // bodies): symbols naming none of them are not demangled (a C++ file
    // has thousands for its lambdas' `std::function` handlers).
    let scopes = scope_names(unsettled.into_iter());
    let (old_closures, new_closures) = (closures(old, scopes.as_deref()), closures(new, scopes.as_deref()));
    if new_closures.symbols.is_empty() {
        return Cow::Borrowed(new_keys);
    }
    let renames = match_closures(old, &old_closures, new, &new_closures);
    if renames.is_empty() {
        return Cow::Borrowed(new_keys);
    }
    let old_keys = crate::diff::stable_keys(old);
    let old_by_text: HashMap<&str, usize> = old_closures
        .symbols
        .iter()
        .map(|(i, text)| (text.as_str(), *i))
        .collect();
    let mut keys = new_keys.to_vec();
    // A symbol that names a closure in a way the demangler does not read
    // (GCC's `std::function::operator=` of a lambda) cannot be told to be
    // the same instance as its namesake: a copy of its own, never a
    // redirect of the old one (which may be for another lambda now).
    for &i in &new_closures.unread {
        keys[i] = format!("{FRESH}{}", new.symbols[i].name);
    }
    for (i, text) in &new_closures.symbols {
        let renamed = rename(text, &renames);
        if renamed == *text {
            continue;
        }
        keys[*i] = match old_by_text.get(renamed.as_str()) {
            Some(&o) => old_keys[o].clone(),
            None => format!("{FRESH}{renamed}"),
        };
    }
    Cow::Owned(keys)
}

/// Of `names` (functions of both objects that may mention a closure),
/// those whose bytes differ between `old` and `new`: a lambda's edited
/// body, or two lambdas swapped (each name then has the other's code).
/// The bytes alone, compared without demangling anything.
fn changed_code<'a>(old: &ObjectFile, new: &ObjectFile, names: &HashSet<&'a str>) -> Vec<&'a str> {
    let (before, after) = (closure_code(old), closure_code(new));
    names
        .iter()
        .copied()
        .filter(|n| before.get(n) != after.get(n))
        .collect()
}

/// The bytes of `obj`'s functions that may mention a closure, by name.
fn closure_code(obj: &ObjectFile) -> HashMap<&str, Option<&[u8]>> {
    obj.symbols
        .iter()
        .filter(|s| s.kind == Kind::Function && maybe_closure(&s.name))
        .map(|s| (s.name.as_str(), s.bytes.as_deref()))
        .collect()
}

/// The names of `obj`'s symbols that may mention a closure type.
fn closure_candidates(obj: &ObjectFile) -> HashSet<&str> {
    obj.symbols
        .iter()
        .filter(|s| maybe_closure(&s.name))
        .map(|s| s.name.as_str())
        .collect()
}

/// `text` with every closure named in `renames` renamed.
fn rename(text: &str, renames: &HashMap<String, String>) -> String {
    let mut out = text.to_string();
    for id in ids(text) {
        if let Some(to) = renames.get(id) {
            out = replace_id(&out, id, to);
        }
    }
    out
}

/// `text` with each mention of the closure `id` replaced by `to` (not a
/// longer number that starts the same: `$_1` is not in `$_12`).
fn replace_id(text: &str, id: &str, to: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(k) = rest.find(id) {
        let after = &rest[k + id.len()..];
        out.push_str(&rest[..k]);
        if after.starts_with(|c: char| c.is_ascii_digit()) {
            out.push_str(id);
        } else {
            out.push_str(to);
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

/// The symbols of an object that mention a closure type, demangled, and
/// those that may but do not demangle.
struct Closures {
    symbols: Vec<(usize, String)>,
    unread: Vec<usize>,
}

fn closures(obj: &ObjectFile, scopes: Option<&[String]>) -> Closures {
    // Only names that may hold a closure are demangled, and of those only
    // the ones naming one of `scopes` (all: `None`).
    let mut found = Closures {
        symbols: Vec::new(),
        unread: Vec::new(),
    };
    for (i, s) in obj.symbols.iter().enumerate() {
        if !maybe_closure(&s.name) || !in_scopes(&s.name, scopes) {
            continue;
        }
        let text = crate::names::readable(&s.name);
        if text == s.name {
            found.unread.push(i);
        } else if !ids(&text).is_empty() {
            found.symbols.push((i, text));
        }
    }
    found
}

/// Whether the mangled `symbol` spells one of `scopes` (all do: `None`).
fn in_scopes(symbol: &str, scopes: Option<&[String]>) -> bool {
    scopes.is_none_or(|scopes| scopes.iter().any(|n| symbol.contains(n.as_str())))
}

/// The source names, as mangled (`4work`), of the scopes of the closures
/// the `symbols` name: whatever mentions such a closure spells them (the
/// first mention of a name is never a substitution). `None` when one
/// cannot be spelled so (an operator, another closure): then every symbol
/// is looked at.
fn scope_names<'a>(symbols: impl Iterator<Item = &'a str>) -> Option<Vec<String>> {
    let mut names = Vec::new();
    for symbol in symbols {
        let text = crate::names::readable(symbol);
        for id in ids(&text) {
            let scope = id.rfind("::").map_or(id, |k| &id[..k]);
            // Its innermost named component: `eval` of `C1::eval(long) const`.
            let head = scope.split('(').next().unwrap_or(scope);
            let name = head.rsplit("::").next().unwrap_or(head);
            let name = name.split('<').next().unwrap_or(name);
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return None;
            }
            let mangled = format!("{}{name}", name.len());
            if !names.contains(&mangled) {
                names.push(mangled);
            }
        }
    }
    Some(names)
}

/// The closure types named in `text`: `scope::{lambda(SIG)#N}` (GCC) or
/// `scope::$_N` (Clang), the scope being the name before it
/// (`work(int)`), up to the enclosing template argument list or the
/// start.
fn ids(text: &str) -> Vec<&str> {
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(k) = text[from..].find(LAMBDA) {
        let start = from + k;
        let Some(end) = closing_brace(text, start) else { break };
        let scope = scope_start(text, start);
        found.push(&text[scope..=end]);
        from = start + LAMBDA.len();
    }
    // Clang's `scope::$_N`.
    let mut from = 0;
    while let Some(k) = text[from..].find(CLANG_LAMBDA) {
        let start = from + k + 2;
        let digits = text[start + 2..].bytes().take_while(u8::is_ascii_digit).count();
        from = start + 2 + digits;
        if digits > 0 {
            found.push(&text[scope_start(text, start)..from]);
        }
    }
    found
}

/// The `}` closing the `{` at `open`.
fn closing_brace(text: &str, open: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (k, c) in text[open..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(open + k);
                }
            }
            _ => {}
        }
    }
    None
}

/// Where the scope of the closure at `lambda` (`{lambda(` preceded by
/// `::`) starts: back over balanced `()`/`<>` to a space, comma or
/// opening bracket at the outer level.
fn scope_start(text: &str, lambda: usize) -> usize {
    let bytes = text.as_bytes();
    let mut depth = 0i32;
    let mut k = lambda;
    while k > 0 {
        let c = bytes[k - 1];
        match c {
            b')' | b'>' | b']' => depth += 1,
            b'(' | b'<' | b'[' if depth > 0 => depth -= 1,
            b'(' | b'<' | b'[' | b' ' | b',' if depth == 0 => break,
            _ => {}
        }
        k -= 1;
    }
    k
}

/// The closure without its number: lambdas of one family can be renumbered
/// into each other.
fn family(id: &str) -> &str {
    match id.ends_with('}') {
        true => id.rfind('#').map_or(id, |k| &id[..k]),
        false => id.rfind("$_").map_or(id, |k| &id[..k + 2]),
    }
}

/// What each closure of an object is: the content of every function that
/// mentions it, the closure itself written as `λ`, in name order.
fn fingerprints(obj: &ObjectFile, closures: &Closures) -> HashMap<String, Vec<String>> {
    let keys = crate::diff::stable_keys(obj);
    let mut prints: HashMap<String, Vec<String>> = HashMap::new();
    for (i, text) in &closures.symbols {
        if obj.symbols[*i].kind != Kind::Function {
            continue;
        }
        let (bytes, references) = crate::diff::content(obj, keys, *i);
        // What it refers to as people read it where that may name a
        // closure (it would spell its number), else as the diff does.
        let references: Vec<(u64, u32, String)> = references
            .into_iter()
            .map(
                |(offset, r_type, target)| match target.contains("_Z") && spells_closure(&target) {
                    true => (offset, r_type, crate::names::readable_text(&target)),
                    false => (offset, r_type, target),
                },
            )
            .collect();
        let code = crate::diff::fnv1a(bytes.as_deref().unwrap_or(&[]));
        for id in ids(text) {
            let neutral = |s: &str| replace_id(s, id, "λ");
            let mut print = format!("{} {code:016x}", neutral(text));
            for (offset, r_type, target) in &references {
                print.push_str(&format!(" [{offset:#x} {r_type} {}]", neutral(target)));
            }
            prints.entry(id.to_string()).or_default().push(print);
        }
    }
    for print in prints.values_mut() {
        print.sort_unstable();
    }
    prints
}

/// New closure -> the old closure it is (or a fresh name when new), for
/// every closure whose name changes.
fn match_closures(
    old: &ObjectFile,
    old_closures: &Closures,
    new: &ObjectFile,
    new_closures: &Closures,
) -> HashMap<String, String> {
    let old_prints = fingerprints(old, old_closures);
    let new_prints = fingerprints(new, new_closures);
    let mut new_ids: Vec<&String> = new_prints.keys().collect();
    new_ids.sort_unstable();
    let mut claimed: HashSet<&str> = HashSet::new();
    let mut decided: HashMap<&str, Option<&str>> = HashMap::new();
    // The same lambda under the same number first, then under another.
    for id in &new_ids {
        if old_prints.get(id.as_str()) == new_prints.get(id.as_str()) {
            claimed.insert(id.as_str());
            decided.insert(id.as_str(), None);
        }
    }
    for id in &new_ids {
        if decided.contains_key(id.as_str()) {
            continue;
        }
        let twin = old_prints
            .iter()
            .filter(|(o, print)| {
                family(o) == family(id) && !claimed.contains(o.as_str()) && Some(*print) == new_prints.get(id.as_str())
            })
            .map(|(o, _)| o.as_str())
            .min();
        if let Some(o) = twin {
            claimed.insert(o);
            decided.insert(id.as_str(), Some(o));
        }
    }
    let mut renames = HashMap::new();
    for id in &new_ids {
        match decided.get(id.as_str()) {
            Some(None) => {}
            Some(Some(o)) => {
                renames.insert(id.to_string(), o.to_string());
            }
            // Edited in place when its old namesake is nobody else's;
            // else a lambda the edit added.
            None if old_prints.contains_key(id.as_str()) && !claimed.contains(id.as_str()) => {
                claimed.insert(id.as_str());
            }
            None => {
                renames.insert(id.to_string(), format!("{id} (new)"));
            }
        }
    }
    renames
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closure_names_and_scopes() {
        assert_eq!(
            ids("work(int)::{lambda(int)#1}::operator()(int) const"),
            ["work(int)::{lambda(int)#1}"]
        );
        assert_eq!(
            ids("std::_Function_handler<int (int), work(int)::{lambda(int)#2}>::_M_invoke(std::_Any_data const&, int&&)"),
            ["work(int)::{lambda(int)#2}"]
        );
        assert_eq!(
            ids("int std::__invoke_impl<int, ns::f<int>(int)::{lambda()#1}&, int>(std::__invoke_other)"),
            ["ns::f<int>(int)::{lambda()#1}"]
        );
        assert!(ids("plain(int)").is_empty());
        assert_eq!(
            ids("install_hooks()::$_12::operator()[abi:cxx11](int) const"),
            ["install_hooks()::$_12"]
        );
        assert_eq!(family("install_hooks()::$_12"), "install_hooks()::$_");
        assert_eq!(replace_id("f()::$_1 f()::$_12", "f()::$_1", "X"), "X f()::$_12");
        assert_eq!(family("work(int)::{lambda(int)#12}"), "work(int)::{lambda(int)");
        let renames: HashMap<String, String> = [("f()::{lambda()#1}".to_string(), "f()::{lambda()#2}".to_string())]
            .into_iter()
            .collect();
        assert_eq!(
            rename("f()::{lambda()#1}::operator()() const", &renames),
            "f()::{lambda()#2}::operator()() const"
        );
    }
}
