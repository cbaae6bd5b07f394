//! GCC's renamed symbols, matched by what they are rather than how they
//! happen to be numbered in one compile.
//!
//! GCC numbers function-local statics (`counter.0`, `counter.1`) and
//! clones (`f.isra.0`, `f.constprop.1`, `f.part.0`, `f.cold`) in the order
//! it meets them, so an unrelated edit renumbers them. The stable identity
//! is the base name, the clone kind, and (for a static) the function that
//! owns it.

/// The clone suffixes GCC adds, each optionally followed by `.N`.
const CLONE_KINDS: [&str; 5] = ["isra", "constprop", "part", "cold", "lto_priv"];

/// A symbol name split into what is stable and what is not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GccName {
    /// The name before any GCC suffix (`f` in `f.isra.0`, `n` in `n.0`).
    pub base: String,
    /// Clone kinds in order (`["constprop", "isra"]` for
    /// `f.constprop.0.isra.0`).
    pub clones: Vec<String>,
    /// A trailing `.N` not part of a clone suffix: a function-local
    /// static's number.
    pub numbered: bool,
}

impl GccName {
    /// The stable part, for matching: `f.isra`, `f.constprop.isra`, `n`.
    pub fn stable(&self) -> String {
        let mut s = self.base.clone();
        for c in &self.clones {
            s.push('.');
            s.push_str(c);
        }
        s
    }
}

fn is_number(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// Whether `name` is a C++ class's vtable, VTT, type information or its
/// name (`_ZTV`, `_ZTT`, `_ZTI`, `_ZTS`): data whose identity code may
/// compare, the program's own copy and no other.
pub fn is_cxx_type_data(name: &str) -> bool {
    ["_ZTV", "_ZTT", "_ZTI", "_ZTS"].iter().any(|p| name.starts_with(p))
}

/// Whether `name` is a function's cold part (`f.cold`, `f.cold.1`): code
/// GCC split off its function, which every patch of the function places
/// anew beside its hot part; never a function an edit added.
pub fn is_cold_part(name: &str) -> bool {
    parse(name).clones.last().is_some_and(|c| c == "cold")
}

/// The function whose cold part `name` is (`f` for `f.cold`, `f.isra.0`
/// for `f.isra.0.cold.1`); `None` for any other name.
pub fn hot_part(name: &str) -> Option<&str> {
    is_cold_part(name).then(|| name.rfind(".cold").map(|k| &name[..k]))?
}

/// [`GccName::stable`] of `name`, without building the parts of a name
/// that has no dot.
pub fn stable(name: &str) -> String {
    match name.contains('.') {
        true => parse(name).stable(),
        false => name.to_string(),
    }
}

/// Splits `name` into base, clone kinds and a static's number.
pub fn parse(name: &str) -> GccName {
    // Most names have no dot: nothing to split (a program's thousands of
    // statics are parsed by every patch).
    if !name.contains('.') {
        return GccName {
            base: name.to_string(),
            clones: Vec::new(),
            numbered: false,
        };
    }
    let parts: Vec<&str> = name.split('.').collect();
    // Names starting with '.' (`.LC0`) or without dots are kept whole.
    if parts.len() < 2 || parts[0].is_empty() {
        return GccName {
            base: name.to_string(),
            clones: Vec::new(),
            numbered: false,
        };
    }
    let mut clones = Vec::new();
    let mut numbered = false;
    let mut i = 1;
    while i < parts.len() {
        if CLONE_KINDS.contains(&parts[i]) {
            clones.push(parts[i].to_string());
            i += 1;
            if i < parts.len() && is_number(parts[i]) {
                i += 1;
            }
        } else if is_number(parts[i]) && i + 1 == parts.len() {
            numbered = true;
            i += 1;
        } else {
            // Not a GCC suffix: the dot is part of the name.
            return GccName {
                base: name.to_string(),
                clones: Vec::new(),
                numbered: false,
            };
        }
    }
    GccName {
        base: parts[0].to_string(),
        clones,
        numbered,
    }
}

/// Whether people may call C++ symbol `symbol` `name`: its demangled name
/// whole (`shop::price(long, int)`), without its parameters
/// (`shop::price`), without a template's return type
/// (`shop::twice<long>(long)` for `long shop::twice<long>(long)`), a
/// template without its arguments (`shop::twice`: every instance), or,
/// for a function-local static, by its own name (`count` for
/// `tick(int)::count`). The namespace and class stay (`price` is not
/// `shop::price`: see [`in_scope`]). A symbol that is not C++ is never.
pub fn written_as(symbol: &str, name: &str) -> bool {
    if !symbol.starts_with("_Z") || name.is_empty() {
        return false;
    }
    // A GCC clone (`[clone .constprop.0]`) by its function's name too.
    let readable = readable(symbol);
    let written = match readable.find(" [clone ") {
        Some(at) if readable.ends_with(']') => &readable[..at],
        _ => readable.as_str(),
    };
    // A template function's demangled name starts with its return type:
    // the last space outside brackets and parentheses before the
    // parameters ends it.
    let head_end = without_parameters(written).len();
    let mut depth = 0i32;
    let mut after_return = 0;
    for (i, c) in written[..head_end].char_indices() {
        match c {
            '<' | '(' => depth += 1,
            '>' | ')' => depth -= 1,
            ' ' if depth == 0 => after_return = i + 1,
            _ => {}
        }
    }
    let unreturned = &written[after_return..];
    [readable.as_str(), written, unreturned]
        .iter()
        .any(|w| match local_static(w) {
            Some(at) => *w == name || w[at + 2..] == *name,
            None => {
                let head = without_parameters(w);
                *w == name || head == name || without_template_arguments(head) == Some(name)
            }
        })
}

/// Where the own name of a function-local static starts (after `::`) in
/// its demangled name `f(int)::count` (`g() const::seen` in a member
/// function), if `w` is one: what precedes is a parameter list, not
/// `(anonymous namespace)`.
fn local_static(w: &str) -> Option<usize> {
    let at = w.rfind("::")?;
    let before = w[..at].trim_end_matches(" const");
    (before.ends_with(')') && !before.ends_with("(anonymous namespace)")).then_some(at)
}

/// `w` without its parameter list and the qualifiers after it (` const`,
/// `&`): the parenthesised group that ends the name, not one inside it
/// (`shop::(anonymous namespace)::hidden(int)` is `shop::(anonymous
/// namespace)::hidden`). `w` itself when it has none (a variable).
fn without_parameters(w: &str) -> &str {
    let mut end = w;
    for qualifier in [" &&", " &", " volatile", " const"] {
        end = end.strip_suffix(qualifier).unwrap_or(end);
    }
    match matching_open(end, '(', ')') {
        Some(open) if !end[..open].is_empty() && !end.ends_with("(anonymous namespace)") => &w[..open],
        _ => w,
    }
}

/// `head` without the template arguments that end it (`shop::twice` for
/// `shop::twice<long>`), if it has some.
fn without_template_arguments(head: &str) -> Option<&str> {
    matching_open(head, '<', '>')
        .map(|open| &head[..open])
        .filter(|h| !h.is_empty())
}

/// Where the `open` bracket matching the `close` that ends `text` is.
fn matching_open(text: &str, open: char, close: char) -> Option<usize> {
    if !text.ends_with(close) {
        return None;
    }
    let mut depth = 0usize;
    for (i, c) in text.char_indices().rev() {
        if c == close {
            depth += 1;
        } else if c == open {
            depth -= 1;
            if depth == 0 {
                return Some(i);
            }
        }
    }
    None
}

/// Whether C++ symbol `symbol` is named `name` in some namespace or class:
/// `name` is how [`written_as`] takes it after a `::` (`price` for
/// `shop::price(long, int)`). For suggestions, not matching: a name
/// without its scope may mean several things.
pub fn in_scope(symbol: &str, name: &str) -> bool {
    if !symbol.starts_with("_Z") || name.is_empty() || name.starts_with(':') {
        return false;
    }
    let written = readable(symbol);
    let head = without_parameters(&written);
    let scoped = format!("::{name}");
    // `ns::f` may mean `ns::(anonymous namespace)::f` too.
    let unnamed = head.replace("(anonymous namespace)::", "");
    local_static(&written).is_none()
        && (head.ends_with(&scoped)
            || without_template_arguments(head).is_some_and(|h| h.ends_with(&scoped))
            || (unnamed != head && (unnamed == name || unnamed.ends_with(&scoped))))
}

/// A symbol as people write it: a C++ name demangled
/// (`_ZNK2Sq4areaEv` -> `Sq::area() const`), with a GCC clone suffix kept
/// the way `c++filt` shows it (`[clone .isra.0]`); any other name as it is.
pub fn readable(symbol: &str) -> String {
    if !symbol.starts_with("_Z") {
        return symbol.to_string();
    }
    let (mangled, suffix) = match symbol.find('.') {
        Some(dot) => (&symbol[..dot], &symbol[dot..]),
        None => (symbol, ""),
    };
    let Ok(parsed) = cpp_demangle::Symbol::new(mangled) else {
        return symbol.to_string();
    };
    match parsed.demangle(&cpp_demangle::DemangleOptions::default()) {
        Ok(text) if suffix.is_empty() => abbreviated(text),
        Ok(text) => format!("{} [clone {suffix}]", abbreviated(text)),
        Err(_) => symbol.to_string(),
    }
}

/// The standard library's typedefs as people write them: `std::string`
/// for `std::__cxx11::basic_string<char, std::char_traits<char>,
/// std::allocator<char> >` (a name with a few of those is hundreds of
/// characters long).
fn abbreviated(text: String) -> String {
    const LONG: [(&str, &str); 2] = [
        (
            "std::__cxx11::basic_string<char, std::char_traits<char>, std::allocator<char> >",
            "std::string",
        ),
        (
            "std::basic_string<char, std::char_traits<char>, std::allocator<char> >",
            "std::string",
        ),
    ];
    LONG.iter().fold(
        text,
        |t, (long, short)| if t.contains(long) { t.replace(long, short) } else { t },
    )
}

/// Whether `symbol` is code the compiler writes to construct a file's
/// globals at start-up (GCC's `_GLOBAL__sub_I_*` and
/// `__static_initialization_and_destruction_0`, Clang's
/// `__cxx_global_var_init*`), not a function anybody wrote: output says
/// what it constructs instead of naming it.
pub fn is_static_initializer(symbol: &str) -> bool {
    symbol.starts_with("_GLOBAL__sub_I_")
        || symbol.starts_with("__cxx_global_var_init")
        || symbol.starts_with("_Z41__static_initialization_and_destruction_0")
        || symbol.starts_with("__static_initialization_and_destruction_")
}

/// `text` (a message) with every mangled C++ name in it demangled, as
/// people read them: errors from every layer name symbols as the object
/// spells them.
pub fn readable_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("_Z") {
        let starts_word = rest[..at]
            .chars()
            .next_back()
            .is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '_'));
        let len = rest[at..]
            // `$`: Clang's lambdas without linkage (`3$_0`).
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '$'))
            .unwrap_or(rest.len() - at);
        // A sentence's full stop is not part of the name.
        let token = rest[at..at + len].trim_end_matches('.');
        out.push_str(&rest[..at]);
        if starts_word && token.len() > 2 {
            out.push_str(&readable(token));
        } else {
            out.push_str(token);
        }
        rest = &rest[at + token.len()..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cxx_symbols_are_found_by_the_names_people_write() {
        for name in ["shop::price(long, int)", "shop::price"] {
            assert!(written_as("_ZN4shop5priceEli", name), "{name}");
        }
        for name in ["long twice<long>(long)", "twice<long>(long)", "twice<long>"] {
            assert!(written_as("_Z5twiceIlET_S0_", name), "{name}");
        }
        for name in ["tick(int)::count", "count"] {
            assert!(written_as("_ZZ4tickiE5count", name), "{name}");
        }
        // A function's name does not find its statics.
        assert!(!written_as("_ZZ4tickiE5count", "tick"));
        // A member function's static, by its own name.
        assert!(written_as("_ZZNK4shop4Item3getEvE4seen", "seen"));
        assert!(written_as("_Z4ticki", "tick"));
        assert!(!written_as("_Z4ticki", "tic") && !written_as("_ZN4shop5priceEli", "price"));
        assert!(!written_as("tick", "tick"), "not C++");
        // Found by a re-check on C++: names in an anonymous namespace (its
        // parenthesis is not the parameter list) and templates by their
        // name alone (every instance).
        let hidden = "_ZN4shop12_GLOBAL__N_16hiddenEi";
        assert_eq!(readable(hidden), "shop::(anonymous namespace)::hidden(int)");
        for name in [
            "shop::(anonymous namespace)::hidden",
            "shop::(anonymous namespace)::hidden(int)",
        ] {
            assert!(written_as(hidden, name), "{name}");
        }
        assert!(!written_as(hidden, "hidden(int)") && !written_as(hidden, "shop::"));
        assert!(written_as(
            "_ZN4shop12_GLOBAL__N_16hiddenEi.constprop.0",
            "shop::(anonymous namespace)::hidden"
        ));
        assert!(written_as("_Z5twiceIlET_S0_", "twice"));
        assert!(written_as("_ZN4shop6callerIlEEvT_", "shop::caller"));
        assert!(!written_as("_ZN4shop6callerIlEEvT_", "caller"));
        // Without their scope: only for suggestions.
        assert!(in_scope("_ZN4shop5priceEli", "price") && in_scope(hidden, "hidden"));
        assert!(in_scope("_ZN4shop6callerIlEEvT_", "caller") && in_scope("_ZN4shop6callerIlEEvT_", "caller<long>"));
        assert!(!in_scope("_ZN4shop5priceEli", "rice") && !in_scope("_ZZ4tickiE5count", "count"));
        assert!(in_scope(hidden, "shop::hidden") && !in_scope("_ZN4shop5priceEli", "shop::price"));
    }

    #[test]
    fn gcc_suffixes() {
        assert_eq!(parse("f.isra.0").stable(), "f.isra");
        assert_eq!(parse("f.constprop.12").stable(), "f.constprop");
        assert_eq!(parse("f.constprop.0.isra.0").stable(), "f.constprop.isra");
        assert_eq!(parse("f.part.0").stable(), "f.part");
        assert_eq!(parse("f.cold").stable(), "f.cold");
        assert!(is_cold_part("f.cold") && is_cold_part("f.isra.0.cold.1") && is_cold_part("_ZN1A1fEv.cold"));
        assert_eq!(hot_part("f.isra.0.cold.1"), Some("f.isra.0"));
        assert_eq!(
            (hot_part("f.cold"), hot_part("f"), hot_part("f.coldest")),
            (Some("f"), None, None)
        );
        assert!(!is_cold_part("f") && !is_cold_part("f.part.0") && !is_cold_part("cold"));
        let n = parse("counter.3");
        assert_eq!((n.base.as_str(), n.numbered), ("counter", true));
        assert_eq!(parse("main").stable(), "main");
        assert_eq!(parse(".LC0").stable(), ".LC0");
        assert_eq!(parse("a.b").stable(), "a.b");
        assert!(!parse("a.b").numbered);
    }

    #[test]
    fn cxx_names_are_demangled_and_others_kept() {
        assert_eq!(readable("_ZNK2Sq4areaEv"), "Sq::area() const");
        assert_eq!(readable("_Z5scalei.isra.0"), "scale(int) [clone .isra.0]");
        assert_eq!(readable("compute"), "compute");
        assert_eq!(readable("_Z7summaryB5cxx11i"), "summary[abi:cxx11](int)");
        assert_eq!(
            readable("_ZNSt7__cxx1112basic_stringIcSt11char_traitsIcESaIcEE12_M_constructEmc"),
            "std::string::_M_construct(unsigned long, char)"
        );
        assert_eq!(readable("_Znot-a-name"), "_Znot-a-name");
    }

    #[test]
    fn names_in_messages_are_demangled() {
        assert_eq!(
            readable_text("cannot redirect _Z14scaled_in_maini at 0x10: _Z14scaled_in_maini is 4 bytes."),
            "cannot redirect scaled_in_main(int) at 0x10: scaled_in_main(int) is 4 bytes."
        );
        assert_eq!(readable_text("_ZNK2Sq4areaEv.cold"), "Sq::area() const [clone .cold]");
        assert_eq!(
            readable_text("differing: _ZZ13install_hooksvENK3$_0clB5cxx11Ei (128 bytes)"),
            "differing: install_hooks()::$_0::operator()[abi:cxx11](int) const (128 bytes)"
        );
        // Not names: kept as they are.
        for kept in ["my_Zone", "_Z", "x _Znot", "plain text"] {
            assert_eq!(readable_text(kept), kept);
        }
        assert!(is_static_initializer("_GLOBAL__sub_I_shape.cpp"));
        assert!(is_static_initializer("__cxx_global_var_init.1"));
        assert!(!is_static_initializer("label"));
    }
}
