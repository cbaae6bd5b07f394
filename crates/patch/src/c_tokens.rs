//! A macro's definition as C tokens: what two spellings of one `#define`
//! are compared by, so that `( l_mathop(3.14) )` and `(l_mathop(3.14))`,
//! or `0x10FFFFu` and `1114111u`, are one definition. Compared as text,
//! each was said to be a macro that changed value (a trial on Lua), with
//! the warning that the program's stored values now mean another thing.
//!
//! And C source text read as the preprocessor sees it: its directive
//! lines, its code without comments and literals, its identifiers (which
//! macros an edit starts to use, which a unit's code uses).

/// C's punctuators of more than one character, longest first, so that
/// `<<=` is one token and `< <` two.
const PUNCTUATORS: [&str; 24] = [
    "%:%:", "...", "<<=", ">>=", "->", "++", "--", "<<", ">>", "<=", ">=", "==", "!=", "&&", "||", "*=", "/=", "%=",
    "+=", "-=", "&=", "^=", "|=", "##",
];

/// The tokens of `text`, each integer literal as its value and the kind
/// its suffix gives (`u`, `l`, `ul`, ... in one order), other tokens as
/// written. Whitespace only separates tokens.
pub fn tokens(text: &str) -> Vec<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let c = bytes[at];
        if c.is_ascii_whitespace() {
            at += 1;
            continue;
        }
        let start = at;
        if c == b'"' || c == b'\'' {
            // A literal, escapes included, up to its closing quote.
            at += 1;
            while at < bytes.len() && bytes[at] != c {
                at += if bytes[at] == b'\\' { 2 } else { 1 };
            }
            at = (at + 1).min(bytes.len());
            out.push(text[start..at].to_string());
        } else if c.is_ascii_alphanumeric()
            || c == b'_'
            || (c == b'.' && bytes.get(at + 1).is_some_and(u8::is_ascii_digit))
        {
            // An identifier or a preprocessing number (`1e+5` one token).
            while at < bytes.len() {
                let b = bytes[at];
                let sign = (b == b'+' || b == b'-')
                    && matches!(bytes[at - 1], b'e' | b'E' | b'p' | b'P')
                    && (c.is_ascii_digit() || c == b'.');
                if !(b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || sign) {
                    break;
                }
                at += 1;
            }
            let word = &text[start..at];
            out.push(integer(word).unwrap_or_else(|| word.to_string()));
        } else {
            let rest = &text[at..];
            let len = PUNCTUATORS
                .iter()
                .find(|p| rest.starts_with(*p))
                .map_or_else(|| rest.chars().next().map_or(1, char::len_utf8), |p| p.len());
            at += len;
            out.push(text[start..at].to_string());
        }
    }
    out
}

/// Where the parenthesis opened at `tokens[open]` closes, if it does.
pub fn closing(tokens: &[String], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (k, t) in tokens.iter().enumerate().skip(open) {
        match t.as_str() {
            "(" => depth += 1,
            ")" => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(k);
                }
            }
            _ => {}
        }
    }
    None
}

/// `tokens` without parentheses that enclose all of them: `((5))` is
/// `5` (a macro's value put in parentheses is the same value), `(a)+(b)`
/// stays as it is.
pub fn without_enclosing_parentheses(mut tokens: &[String]) -> &[String] {
    while tokens.len() >= 2 && tokens[0] == "(" && closing(tokens, 0) == Some(tokens.len() - 1) {
        tokens = &tokens[1..tokens.len() - 1];
    }
    tokens
}

/// An integer literal's value and suffix kind (`#1114111u` for both
/// `0x10FFFFu` and `1114111U`); `None` for anything else (a float, an
/// identifier, a number too large).
fn integer(word: &str) -> Option<String> {
    let digits_end = word.find(['u', 'U', 'l', 'L']).unwrap_or(word.len());
    let (number, suffix) = word.split_at(digits_end);
    if !suffix.chars().all(|c| matches!(c, 'u' | 'U' | 'l' | 'L')) {
        return None;
    }
    let number = number.replace('\'', "");
    let value = if let Some(hex) = number.strip_prefix("0x").or_else(|| number.strip_prefix("0X")) {
        u128::from_str_radix(hex, 16).ok()?
    } else if let Some(binary) = number.strip_prefix("0b").or_else(|| number.strip_prefix("0B")) {
        u128::from_str_radix(binary, 2).ok()?
    } else if number.len() > 1 && number.starts_with('0') {
        u128::from_str_radix(&number[1..], 8).ok()?
    } else if number.starts_with(|c: char| c.is_ascii_digit()) {
        number.parse::<u128>().ok()?
    } else {
        return None;
    };
    let mut kind: Vec<char> = suffix.to_ascii_lowercase().chars().collect();
    kind.sort_unstable();
    Some(format!("#{value}{}", kind.into_iter().collect::<String>()))
}

/// A directive's keyword (`define`, `if`, ...) and the rest of its line.
pub fn split_directive(line: &str) -> (&str, &str) {
    let body = line.trim_start().trim_start_matches('#').trim_start();
    let end = body
        .find(|c: char| !c.is_ascii_alphanumeric() && c != '_')
        .unwrap_or(body.len());
    (&body[..end], &body[end..])
}

/// `text` with comments, literals and directive lines blanked out.
pub fn code_only(text: &str) -> String {
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
pub fn directives(text: &str) -> Vec<String> {
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
pub fn identifiers(text: &str) -> Vec<String> {
    words(text).map(str::to_string).collect()
}

/// The C identifiers of `text`, in order, as slices of it (numbers such
/// as `0x1f` or `8u` are not identifiers).
pub fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
        .filter(|w| w.starts_with(|c: char| !c.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn same(a: &str, b: &str) -> bool {
        tokens(a) == tokens(b)
    }

    #[test]
    fn spellings_of_one_definition_are_alike() {
        assert!(same("(l_mathop(3.14159))", "( l_mathop(3.14159) )"));
        assert!(same("0x10FFFFu", "1114111U"));
        assert!(same("(1UL << 3)", "(1lu<<3)"));
        assert!(same("010", "8"), "octal");
        assert!(same("(a,b) ((a)+(b))", "(a, b) ( (a) + (b) )"));
        assert!(same("\"a  b\" + 1", "\"a  b\"+1"));
    }

    #[test]
    fn parentheses_around_everything_go() {
        let bare = |text: &str| without_enclosing_parentheses(&tokens(text)).to_vec();
        assert_eq!(bare("((5))"), ["#5"]);
        assert_eq!(bare("(a)+(b)"), tokens("(a)+(b)"), "not one pair around all");
        assert_eq!(bare("(x"), ["(", "x"], "unbalanced");
        assert_eq!(bare(")("), [")", "("]);
        assert!(bare("()").is_empty());
    }

    #[test]
    fn other_definitions_differ() {
        assert!(!same("3", "4"));
        assert!(!same("1u", "1"), "the suffix gives another type");
        assert!(!same("a b", "ab"));
        assert!(!same("x <<= 1", "x < <= 1"));
        assert!(!same("\"a  b\"", "\"a b\""), "a literal is compared as written");
        assert!(!same("1.0", "1.00"), "floats are compared as written");
        assert!(!same("1e+5", "1e + 5"));
    }

    #[test]
    fn hostile_text_is_tokens_all_the_same() {
        assert_eq!(tokens("\"unterminated \\"), ["\"unterminated \\"]);
        assert_eq!(tokens("0x"), ["0x"]);
        assert_eq!(
            tokens("99999999999999999999999999999999999999999"),
            ["99999999999999999999999999999999999999999"]
        );
        assert_eq!(tokens("é+"), ["é", "+"]);
        assert!(tokens("").is_empty());
    }

    /// Any text (a hostile object's macro table) gives tokens, never a
    /// panic: every string of up to three of the bytes C's tokens are made
    /// of (a UTF-8 character's two bytes among them).
    #[test]
    fn any_text_gives_tokens() {
        let alphabet = b"0xXuUlLeEpP+-.'\"\\ <>=_9(\xc3\xa9";
        let mut strings = 0;
        for a in alphabet {
            for b in alphabet {
                for c in alphabet {
                    for text in [vec![*a], vec![*a, *b], vec![*a, *b, *c]] {
                        let _ = tokens(&String::from_utf8_lossy(&text));
                        strings += 1;
                    }
                }
            }
        }
        assert_eq!(strings, 3 * alphabet.len().pow(3));
    }
}
