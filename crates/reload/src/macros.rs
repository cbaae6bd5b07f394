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
//! text: a name tested for definedness (`#ifndef`, `#ifdef`,
//! `defined(...)`) in the file or its headers that the code (not the
//! directives) uses after the edit and did not before.

use std::collections::BTreeSet;

/// Names whose definedness `text` tests: `#ifdef NAME`, `#ifndef NAME`,
/// `defined NAME`, `defined(NAME)`.
pub fn tested(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in directives(text) {
        let body = line.trim_start_matches('#').trim_start();
        for keyword in ["ifndef", "ifdef"] {
            if let Some(rest) = body.strip_prefix(keyword) {
                if let Some(name) = identifiers(rest).into_iter().next() {
                    out.insert(name);
                }
            }
        }
        let words = identifiers(body);
        for pair in words.windows(2) {
            if pair[0] == "defined" {
                out.insert(pair[1].clone());
            }
        }
    }
    out
}

/// The identifiers `text`'s code uses: outside comments, string and
/// character literals, and preprocessor directives.
pub fn used_in_code(text: &str) -> BTreeSet<String> {
    identifiers(&code_only(text)).into_iter().collect()
}

/// The names of `tested` that `new`'s code uses and `old`'s did not.
pub fn newly_used(old: &str, new: &str, tested: &BTreeSet<String>) -> Vec<String> {
    let before = used_in_code(old);
    used_in_code(new)
        .into_iter()
        .filter(|name| tested.contains(name) && !before.contains(name))
        .collect()
}

/// `text` with comments, literals and directive lines blanked out.
fn code_only(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let bytes = text.as_bytes();
    let mut k = 0;
    let mut line_start = true;
    while k < bytes.len() {
        let c = bytes[k];
        if line_start && c == b'#' {
            // A directive, with its continuation lines.
            while k < bytes.len() && !(bytes[k] == b'\n' && (k == 0 || bytes[k - 1] != b'\\')) {
                k += 1;
            }
            continue;
        }
        if c == b'/' && bytes.get(k + 1) == Some(&b'/') {
            while k < bytes.len() && bytes[k] != b'\n' {
                k += 1;
            }
            continue;
        }
        if c == b'/' && bytes.get(k + 1) == Some(&b'*') {
            k += 2;
            while k < bytes.len() && !(bytes[k] == b'*' && bytes.get(k + 1) == Some(&b'/')) {
                k += 1;
            }
            k += 2;
            out.push(' ');
            continue;
        }
        if c == b'"' || c == b'\'' {
            k += 1;
            while k < bytes.len() && bytes[k] != c && bytes[k] != b'\n' {
                k += if bytes[k] == b'\\' { 2 } else { 1 };
            }
            k += 1;
            out.push(' ');
            continue;
        }
        if c == b'\n' {
            line_start = true;
        } else if !c.is_ascii_whitespace() {
            line_start = false;
        }
        out.push(c as char);
        k += 1;
    }
    out
}

/// The directive lines of `text` (continuations joined).
fn directives(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        match current.take() {
            Some(mut d) => {
                d.push_str(line.trim_end_matches('\\'));
                if line.ends_with('\\') {
                    current = Some(d);
                } else {
                    out.push(d);
                }
            }
            None if line.trim_start().starts_with('#') => {
                let d = line.trim_start().trim_end_matches('\\').to_string();
                if line.ends_with('\\') {
                    current = Some(d);
                } else {
                    out.push(d);
                }
            }
            None => {}
        }
    }
    out.extend(current);
    out
}

/// The C identifiers of `text`, in order.
fn identifiers(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut in_number = false;
    for c in text.chars() {
        if c.is_ascii_alphanumeric() || c == '_' {
            if word.is_empty() && !in_number && c.is_ascii_digit() {
                in_number = true;
            }
            if !in_number {
                word.push(c);
            }
        } else {
            if !word.is_empty() {
                out.push(std::mem::take(&mut word));
            }
            in_number = false;
        }
    }
    if !word.is_empty() {
        out.push(word);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const ZCONF: &str = "#ifndef MAX_MEM_LEVEL\n#  define MAX_MEM_LEVEL 9\n#endif\n#if defined(Z_SOLO) || !defined ( STDC )\n#endif\n#ifdef  MAX_WBITS\n#endif\n";

    #[test]
    fn names_tested_for_definedness() {
        let t = tested(ZCONF);
        for name in ["MAX_MEM_LEVEL", "Z_SOLO", "STDC", "MAX_WBITS"] {
            assert!(t.contains(name), "{name}: {t:?}");
        }
        assert!(!t.contains("define") && !t.contains("defined"), "{t:?}");
    }

    /// zlib's compress.c: the edit passes MAX_MEM_LEVEL, which zconf.h
    /// defaults and the build may set; a use in a comment, a string or a
    /// directive does not count, nor one the code had before.
    #[test]
    fn an_edit_that_starts_to_use_a_tested_name_is_found() {
        let old = "int f(void) {\n  /* MAX_WBITS */ return deflateInit(&s, level);\n}\n";
        let new = "#define X MAX_MEM_LEVEL\nint f(void) {\n  puts(\"MAX_WBITS\"); return deflateInit2(&s, level, 8, MAX_WBITS, MAX_MEM_LEVEL, 0);\n}\n";
        assert_eq!(newly_used(old, new, &tested(ZCONF)), ["MAX_MEM_LEVEL", "MAX_WBITS"]);
        let already = "int g(void) { return MAX_MEM_LEVEL; }\n";
        let both = format!("{already}{new}");
        assert_eq!(newly_used(already, &both, &tested(ZCONF)), ["MAX_WBITS"]);
        assert!(newly_used(new, new, &tested(ZCONF)).is_empty());
    }

    #[test]
    fn continued_directives_and_odd_text_do_not_confuse_it() {
        let text = "#define LONG(a) \\\n  (a + HIDDEN)\nint x = 'a' + '\\'';\nchar *s = \"a\\\"b USED_IN_STRING\";\nint y = 0x1F + REAL;\n/* unterminated";
        let used = used_in_code(text);
        assert!(
            used.contains("REAL") && used.contains("x") && used.contains("y"),
            "{used:?}"
        );
        assert!(!used.contains("HIDDEN") && !used.contains("USED_IN_STRING"), "{used:?}");
        assert!(!used.contains("F"), "a number's digits are not a name: {used:?}");
        assert!(tested("#if defined \\\n (SPLIT)\n").contains("SPLIT"));
    }
}
