//! Which functions a save edited that have no code of their own.
//!
//! A static function called once, or an inline one, is compiled into the
//! functions that call it: its edit is patched by replacing them, and a
//! reload that named only them read as if relive had patched something
//! other than what was edited (a zlib trial: an edit of `read_buf` was
//! said as "patched fill_window, deflate_stored"). The object's DWARF
//! gives such functions and where they are declared
//! ([`relive_patch::inline_only`]); the text of the save, compared with
//! the text of the compile that runs, gives the lines the edit changed;
//! a function whose body spans one was edited.

use std::path::Path;

use relive_patch::objfile::ObjectFile;

/// An edited function with no code of its own, and the patched functions
/// it is inlined into.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct InlinedEdit {
    pub function: String,
    pub into: Vec<String>,
}

/// How long a line diff may take before it settles for a coarser answer
/// (the edited lines of a huge change are then spans, never missed).
const DIFF_DEADLINE: std::time::Duration = std::time::Duration::from_millis(200);

/// The edited functions without code of their own among what `new` (a
/// save's compile) changed from `old` (the compile that runs), inlined
/// into the functions of `patched`. Empty when either compile did not
/// keep its texts, or nothing such was edited.
pub fn inlined_edits(old: &ObjectFile, new: &ObjectFile, patched: &[String]) -> Vec<InlinedEdit> {
    let before = old.source_texts();
    // Each file whose code changed: its text without comments, and the
    // lines changed.
    let edited: Vec<(&Path, String, Vec<u64>)> = new
        .source_texts()
        .0
        .iter()
        .filter(|(path, text)| before.of(path).is_some_and(|was| was != &**text))
        .filter_map(|(path, text)| {
            let code = without_comments(text);
            let lines = code_lines_changed(&without_comments(before.of(path)?), &code);
            (!lines.is_empty()).then_some((path.as_path(), code, lines))
        })
        .collect();
    if edited.is_empty() {
        return Vec::new();
    }
    relive_patch::inline_only::inlined_into(new, patched)
        .into_iter()
        .filter_map(|f| {
            let (_, code, lines) = edited
                .iter()
                .find(|(path, _, _)| relive_patch::inline_only::same_file(path, &f.file))?;
            let (first, last) = body(code, f.line)?;
            lines.iter().any(|l| (first..=last).contains(l)).then_some(InlinedEdit {
                function: f.name,
                into: f.into,
            })
        })
        .collect()
}

/// The lines of `new` (from 1) that an edit of `old` changed, both
/// without comments ([`without_comments`]), whitespace aside: lines added
/// or changed, and for lines removed the line before them.
fn code_lines_changed(old_code: &str, new_code: &str) -> Vec<u64> {
    let squeeze = |text: &str| -> Vec<String> {
        text.lines()
            .map(|l| l.chars().filter(|c| !c.is_whitespace()).collect())
            .collect()
    };
    let (a, b) = (squeeze(old_code), squeeze(new_code));
    let deadline = std::time::Instant::now() + DIFF_DEADLINE;
    let ops = similar::capture_diff_slices_deadline(similar::Algorithm::Myers, &a, &b, Some(deadline));
    let mut lines = Vec::new();
    for op in ops {
        let (tag, was, now) = op.as_tag_tuple();
        if tag == similar::DiffTag::Equal || a[was.clone()].concat() == b[now.clone()].concat() {
            continue; // the same code, laid out on other lines
        }
        match now.is_empty() {
            true => lines.push((now.start as u64).max(1)),
            false => lines.extend(now.start as u64 + 1..=now.end as u64),
        }
    }
    lines
}

/// `text` with its comments removed, its lines kept: a comment's line
/// breaks stay where they were. String and character literals are kept
/// whole (a `/*` in a string starts no comment).
fn without_comments(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut k = 0;
    while k < bytes.len() {
        match (bytes[k], bytes.get(k + 1)) {
            (b'/', Some(b'/')) => {
                while k < bytes.len() && bytes[k] != b'\n' {
                    k += 1;
                }
            }
            (b'/', Some(b'*')) => {
                k += 2;
                while k < bytes.len() && !(bytes[k] == b'*' && bytes.get(k + 1) == Some(&b'/')) {
                    if bytes[k] == b'\n' {
                        out.push(b'\n');
                    }
                    k += 1;
                }
                k = (k + 2).min(bytes.len());
                out.push(b' ');
            }
            (quote @ (b'"' | b'\''), _) => {
                out.push(quote);
                k += 1;
                while k < bytes.len() && bytes[k] != quote && bytes[k] != b'\n' {
                    let step = if bytes[k] == b'\\' { 2 } else { 1 };
                    out.extend_from_slice(&bytes[k..(k + step).min(bytes.len())]);
                    k += step;
                }
                if k < bytes.len() && bytes[k] == quote {
                    out.push(quote);
                    k += 1;
                }
            }
            (c, _) => {
                out.push(c);
                k += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The lines of the function declared on line `line` of `code` (a text
/// without comments): from there to the brace that closes the body opened
/// after it (braces in literals aside). `None` when no body follows.
fn body(code: &str, line: u64) -> Option<(u64, u64)> {
    let start = match line {
        0 => return None,
        1 => 0,
        _ => code.match_indices('\n').nth(usize::try_from(line).ok()? - 2)?.0 + 1,
    };
    let bytes = code.as_bytes();
    let mut depth = 0usize;
    let mut at = line;
    let mut k = start;
    while k < bytes.len() {
        match bytes[k] {
            b'\n' => at += 1,
            quote @ (b'"' | b'\'') => {
                k += 1;
                while k < bytes.len() && bytes[k] != quote && bytes[k] != b'\n' {
                    k += if bytes[k] == b'\\' { 2 } else { 1 };
                }
                if bytes.get(k) == Some(&b'\n') {
                    continue; // an unterminated literal ends at its line's end
                }
            }
            b'{' => depth += 1,
            b'}' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some((line, at));
                }
            }
            _ => {}
        }
        k += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(old: &str, new: &str) -> Vec<u64> {
        code_lines_changed(&without_comments(old), &without_comments(new))
    }

    const BEFORE: &str = "static int helper(int x)\n{\n    int y = x * 3; /* scale */\n    return y + 1;\n}\n\nint work(int a)\n{\n    return helper(a);\n}\n";

    #[test]
    fn a_changed_line_is_found_and_comments_are_no_change() {
        let changed = BEFORE.replace("x * 3", "x * 4");
        assert_eq!(lines(BEFORE, &changed), vec![3]);
        let comment = BEFORE.replace("/* scale */", "/* scale it,\n   by three */");
        assert_eq!(lines(BEFORE, &comment), Vec::<u64>::new());
        let spaced = BEFORE.replace("return y + 1;", "return y+1;   ");
        assert_eq!(lines(BEFORE, &spaced), Vec::<u64>::new());
    }

    #[test]
    fn lines_added_and_removed_are_placed_in_the_new_text() {
        let added = BEFORE.replace("    return y + 1;\n", "    y -= 2;\n    return y + 1;\n");
        assert_eq!(lines(BEFORE, &added), vec![4]);
        let removed = BEFORE.replace("    int y = x * 3; /* scale */\n", "");
        // The line before the one removed: the body's opening brace.
        assert_eq!(lines(BEFORE, &removed), vec![2]);
    }

    #[test]
    fn a_body_runs_to_its_closing_brace() {
        let code = without_comments(BEFORE);
        assert_eq!(body(&code, 1), Some((1, 5)));
        assert_eq!(body(&code, 7), Some((7, 10)));
        let braces_in_text = "void f(void)\n{\n    puts(\"}\"); /* } */\n    g('}');\n}\nint x;\n";
        assert_eq!(body(&without_comments(braces_in_text), 1), Some((1, 5)));
        assert_eq!(body("int x;\n", 1), None);
    }
}
