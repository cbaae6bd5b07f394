//! Macros a build may set on its command line, and edits that start to
//! use them.
//!
//! Neither compiler records `-D` options in plain `-g` debug info. A file
//! whose every function compiles here into the running code is trusted,
//! but an edit can make code depend on a macro it did not use before,
//! one the sources give a default for under `#ifndef NAME` (zlib's
//! `MAX_MEM_LEVEL` in zconf.h) and the build overrides with `-D`: relive's
//! compile then takes the default, and the patched program computes what
//! no build of the sources does. Such an edit is recognised here, by
//! text: a macro a build may set ([`overridable`]: a name the file or its
//! headers test for definedness, or one defined from such a name or picked
//! under a condition on it) that the file's code or its own conditionals
//! use after the edit and did not before (comments and strings aside).

use std::collections::BTreeSet;

use relive_patch::c_tokens::{code_only, directives, identifiers, split_directive, words};

/// Names whose definedness the directive lines `lines` test: `#ifdef
/// NAME`, `#ifndef NAME`, `defined NAME`, `defined(NAME)`.
fn tested(lines: &[String]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in lines {
        let (keyword, rest) = split_directive(line);
        if matches!(keyword, "ifndef" | "ifdef") {
            if let Some(name) = identifiers(rest).into_iter().next() {
                out.insert(name);
            }
        }
        let words = identifiers(rest);
        for pair in words.windows(2) {
            if pair[0] == "defined" {
                out.insert(pair[1].clone());
            }
        }
    }
    out
}

/// Include guards among the directive lines `lines`: `#ifndef X` (or `#if
/// !defined(X)`) directly followed by `#define X` with nothing after it.
/// Tested, but never a build option.
fn guards(lines: &[String]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for pair in lines.windows(2) {
        let (k0, r0) = split_directive(&pair[0]);
        let (k1, r1) = split_directive(&pair[1]);
        let tested = match k0 {
            "ifndef" => identifiers(r0).into_iter().next(),
            "if" => identifiers(r0).into_iter().find(|w| w != "defined"),
            _ => None,
        };
        // `#define X` and nothing else: a value (`#define X 9`) makes X a
        // default, not a guard.
        let bare = r1.trim();
        if let (Some(name), "define") = (tested, k1) {
            if bare == name {
                out.insert(name);
            }
        }
    }
    out
}

/// The macros whose value a build may set on its command line, as far as
/// `texts` (a file and the headers it includes) tell: every name they
/// test for definedness (not include guards), and every macro defined in
/// terms of one, or under a condition on one (zlib's `DEF_MEM_LEVEL`,
/// defined by `#if MAX_MEM_LEVEL >= 8`), transitively.
pub fn overridable<'t>(texts: impl IntoIterator<Item = &'t str>) -> BTreeSet<String> {
    let mut seeds = BTreeSet::new();
    let mut guarded = BTreeSet::new();
    let mut defines: Vec<Define> = Vec::new();
    for text in texts {
        let lines = directives(text);
        seeds.extend(tested(&lines));
        guarded.extend(guards(&lines));
        let mut conditions: Vec<Vec<String>> = Vec::new();
        for line in &lines {
            let (keyword, rest) = split_directive(line);
            match keyword {
                "if" | "ifdef" | "ifndef" => conditions.push(identifiers(rest)),
                "elif" | "elifdef" | "elifndef" => {
                    if let Some(top) = conditions.last_mut() {
                        top.extend(identifiers(rest));
                    }
                }
                "endif" => {
                    conditions.pop();
                }
                "define" => {
                    let Some(define) = Define::parse(rest, &conditions) else {
                        continue;
                    };
                    defines.push(define);
                }
                _ => {}
            }
        }
    }
    // Reserved names (`__GNUC__`, `_WIN32`) are the compiler's and the
    // platform's: the same in relive's compile.
    let reserved = |n: &String| {
        n.starts_with("__") || (n.starts_with('_') && n[1..].starts_with(|c: char| c.is_ascii_uppercase()))
    };
    let mut tainted: BTreeSet<String> = seeds.difference(&guarded).filter(|n| !reserved(n)).cloned().collect();
    loop {
        let before = tainted.len();
        for d in &defines {
            if !tainted.contains(&d.name) && d.depends_on(&tainted) {
                tainted.insert(d.name.clone());
            }
        }
        if tainted.len() == before {
            return tainted;
        }
    }
}

/// One `#define`, as far as its value may depend on a build option.
struct Define {
    name: String,
    /// The names its body mentions (parameters excluded).
    body: BTreeSet<String>,
    /// The names the conditions around it mention.
    conditions: BTreeSet<String>,
    /// Its body holds a value (a number, a string or character literal)
    /// or is empty, rather than only other names: a definition under a
    /// condition that picks a value (`DEF_MEM_LEVEL 8`), not one that
    /// renames (zlib's `#define adler32 z_adler32` under `Z_PREFIX`, which
    /// the link would catch: the renamed function would not exist).
    valued: bool,
}

impl Define {
    /// `rest`: what follows `#define`.
    fn parse(rest: &str, conditions: &[Vec<String>]) -> Option<Define> {
        let rest = rest.trim_start();
        let end = rest
            .find(|c: char| !c.is_ascii_alphanumeric() && c != '_')
            .unwrap_or(rest.len());
        let name = rest[..end].to_string();
        if name.is_empty() {
            return None;
        }
        let mut body = &rest[end..];
        let mut parameters = Vec::new();
        // A function-like macro: its parameter list follows the name at once.
        if let Some(list) = body.strip_prefix('(') {
            let close = list.find(')')?;
            parameters = identifiers(&list[..close]);
            body = &list[close + 1..];
        }
        let body_text = body.trim();
        let valued = body_text.is_empty()
            || body_text.contains(['"', '\''])
            || body_text
                .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
                .any(|w| w.starts_with(|c: char| c.is_ascii_digit()));
        Some(Define {
            name,
            body: identifiers(body)
                .into_iter()
                .filter(|w| !parameters.contains(w))
                .collect(),
            conditions: conditions.iter().flatten().cloned().collect(),
            valued,
        })
    }

    /// Whether its value may follow one of `tainted`: its body mentions
    /// one, or it picks a value under a condition on one.
    fn depends_on(&self, tainted: &BTreeSet<String>) -> bool {
        self.body.iter().any(|m| tainted.contains(m))
            || (self.valued && self.conditions.iter().any(|m| tainted.contains(m)))
    }
}

/// The names of `wanted` that `text` uses where they may decide its code:
/// its code's identifiers (outside comments, string and character
/// literals, and preprocessor directives) and those its own conditionals
/// test (`#if MAX_MEM_LEVEL >= 8` inside a function). Only names of
/// `wanted` are kept: a file's thousands of identifiers, each a `String`
/// in a set, were most of the time a save took besides its compile.
fn used<'w>(text: &str, wanted: &'w BTreeSet<String>) -> BTreeSet<&'w str> {
    let keep = |word: &str| wanted.get(word).map(String::as_str);
    let mut out: BTreeSet<&str> = words(&code_only(text)).filter_map(keep).collect();
    for line in directives(text) {
        let (keyword, rest) = split_directive(&line);
        if matches!(keyword, "if" | "ifdef" | "ifndef" | "elif" | "elifdef" | "elifndef") {
            out.extend(words(rest).filter_map(keep));
        }
    }
    out
}

/// The names of `overridable` that `new` uses (in its code or its own
/// conditionals) and `old` did not.
pub fn newly_used(old: &str, new: &str, overridable: &BTreeSet<String>) -> Vec<String> {
    if overridable.is_empty() {
        return Vec::new(); // the usual file: nothing a build may set
    }
    let before = used(old, overridable);
    used(new, overridable)
        .into_iter()
        .filter(|name| !before.contains(name))
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ZCONF: &str = "#ifndef ZCONF_H\n#define ZCONF_H\n#ifndef MAX_MEM_LEVEL\n#  define MAX_MEM_LEVEL 9\n#endif\n#if defined(Z_SOLO) || !defined ( STDC )\n#endif\n#ifdef  MAX_WBITS\n#endif\n#ifdef __GNUC__\n#define LIKELY 1\n#endif\n#define local static\n#endif\n";
    const ZUTIL: &str = "#ifndef ZUTIL_H\n#define ZUTIL_H\n#if MAX_MEM_LEVEL >= 8\n#  define DEF_MEM_LEVEL 8\n#else\n#  define DEF_MEM_LEVEL  MAX_MEM_LEVEL\n#endif\n#define TWICE_LEVEL (2 * DEF_MEM_LEVEL)\n#endif\n";

    #[test]
    fn names_tested_for_definedness() {
        let t = tested(&directives(ZCONF));
        for name in ["MAX_MEM_LEVEL", "Z_SOLO", "STDC", "MAX_WBITS"] {
            assert!(t.contains(name), "{name}: {t:?}");
        }
        assert!(!t.contains("define") && !t.contains("defined"), "{t:?}");
    }

    /// Tested names and what is defined from them, transitively; not
    /// include guards, the compiler's own names, or what only sits inside
    /// an include guard.
    #[test]
    fn what_a_build_may_set() {
        let o = overridable([ZCONF, ZUTIL]);
        for name in ["MAX_MEM_LEVEL", "MAX_WBITS", "STDC", "DEF_MEM_LEVEL", "TWICE_LEVEL"] {
            assert!(o.contains(name), "{name}: {o:?}");
        }
        for name in ["ZCONF_H", "ZUTIL_H", "local", "__GNUC__", "LIKELY"] {
            assert!(!o.contains(name), "{name}: {o:?}");
        }
    }

    /// zlib's compress.c: the edit passes MAX_MEM_LEVEL, which zconf.h
    /// defaults and the build may set; a use in a comment, a string or a
    /// directive does not count, nor one the code had before.
    #[test]
    fn an_edit_that_starts_to_use_a_tested_name_is_found() {
        let o = overridable([ZCONF]);
        let old = "int f(void) {\n  /* MAX_WBITS */ return deflateInit(&s, level);\n}\n";
        let new = "int f(void) {\n  puts(\"MAX_WBITS\"); return deflateInit2(&s, level, 8, MAX_WBITS, MAX_MEM_LEVEL, 0);\n}\n";
        assert_eq!(newly_used(old, new, &o), ["MAX_MEM_LEVEL", "MAX_WBITS"]);
        let already = "int g(void) { return MAX_MEM_LEVEL; }\n";
        let both = format!("{already}{new}");
        assert_eq!(newly_used(already, &both, &o), ["MAX_WBITS"]);
        assert!(newly_used(new, new, &o).is_empty());
    }

    /// The retrial's misses: a macro of the edited file defined from one
    /// (`#define LIVE_ML MAX_MEM_LEVEL`), one a header defines under a
    /// condition on one (`DEF_MEM_LEVEL`), and one tested by an `#if` in
    /// the function.
    #[test]
    fn derived_and_conditional_uses_are_found() {
        let old = "int f(void) { return deflateInit(&s, 6); }\n";
        let alias = "#define LIVE_ML (MAX_MEM_LEVEL + 0)\nint f(void) { return g(LIVE_ML); }\n";
        assert_eq!(newly_used(old, alias, &overridable([ZCONF, alias])), ["LIVE_ML"]);
        let derived = "#include \"zutil.h\"\nint f(void) { return g(DEF_MEM_LEVEL); }\n";
        assert_eq!(
            newly_used(old, derived, &overridable([ZCONF, ZUTIL, derived])),
            ["DEF_MEM_LEVEL"]
        );
        let tested_here = "int f(void) {\n#if MAX_MEM_LEVEL >= 8\n  return 1;\n#endif\n  return 0;\n}\n";
        assert_eq!(
            newly_used(old, tested_here, &overridable([ZCONF, tested_here])),
            ["MAX_MEM_LEVEL"]
        );
        let flag = "int f(void) {\n#ifdef HAVE_HIDDEN\n  return 3;\n#endif\n  return 0;\n}\n";
        assert_eq!(newly_used(old, flag, &overridable([flag])), ["HAVE_HIDDEN"]);
    }

    /// The second retrial's over-eager refusals: zlib renames its API
    /// under `#ifdef Z_PREFIX` (a rename the link catches) and defines
    /// `deflateInit2` as a call in both branches of `#ifdef Z_PREFIX_SET`;
    /// a value picked under a condition still counts.
    #[test]
    fn renames_under_a_condition_are_not_values() {
        let zlib = "#ifdef Z_PREFIX\n#  define adler32 z_adler32\n#  define deflateInit2_ z_deflateInit2_\n#endif\n#ifdef Z_PREFIX_SET\n#  define z_deflateInit2(strm, level) z_deflateInit2_((strm), (level), ZLIB_VERSION)\n#else\n#  define deflateInit2(strm, level) deflateInit2_((strm), (level), ZLIB_VERSION)\n#endif\n#ifdef HAVE_HIDDEN\n#  define LIVE_K 3\n#else\n#  define LIVE_K 4\n#endif\n#ifndef OS_CODE\n#  define OS_STR \"unix\"\n#endif\n";
        let o = overridable([zlib]);
        for name in ["adler32", "deflateInit2_", "deflateInit2", "z_deflateInit2"] {
            assert!(!o.contains(name), "{name}: {o:?}");
        }
        for name in ["Z_PREFIX", "LIVE_K", "HAVE_HIDDEN", "OS_STR"] {
            assert!(o.contains(name), "{name}: {o:?}");
        }
        let old = "int f(void) { return deflateEnd(0); }\n";
        let new = "int f(void) { return deflateEnd(0) + adler32(1, 0, 0) + deflateInit2(0, 5); }\n";
        assert!(newly_used(old, new, &o).is_empty());
    }

    #[test]
    fn continued_directives_and_odd_text_do_not_confuse_it() {
        let text = "#define LONG(a) \\\n  (a + HIDDEN)\nint x = 'a' + '\\'';\nchar *s = \"a\\\"b USED_IN_STRING\";\nint y = 0x1F + REAL;\n/* unterminated";
        let names = ["REAL", "x", "y", "HIDDEN", "USED_IN_STRING", "F", "x1F"];
        let wanted: BTreeSet<String> = names.iter().map(|n| n.to_string()).collect();
        let used = used(text, &wanted);
        assert_eq!(
            used,
            BTreeSet::from(["REAL", "x", "y"]),
            "not in a directive, a comment or a literal; a number's digits are not a name"
        );
        assert!(tested(&directives("#if defined \\\n (SPLIT)\n")).contains("SPLIT"));
    }
}
