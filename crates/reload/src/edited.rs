//! Which functions a save edited that are inlined into the patched ones:
//! those with no code of their own, and patched ones inlined into others.
//!
//! A static function called once, or an inline one, is compiled into the
//! functions that call it: its edit is patched by replacing them, and a
//! reload that named only them read as if relive had patched something
//! other than what was edited (a zlib trial: an edit of `read_buf` was
//! said as "patched fill_window, deflate_stored"). The object's DWARF
//! gives such functions and where they are declared
//! ([`relive_patch::inline_only`]); the text of the save, compared with
//! the text of the compile that runs, gives the lines the edit changed;
//! a function whose body spans one was edited. A function with code of
//! its own, patched, that another patched function has inlined is said
//! with it too (a curl trial: "patched is_dot, parseurl_and_replace" did
//! not say why the second).

use std::path::{Path, PathBuf};

use relive_patch::objfile::ObjectFile;

/// An edited function inlined into patched functions (one with no code of
/// its own, or a patched one), and those functions.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct InlinedEdit {
    pub function: String,
    pub into: Vec<String>,
    /// New in this save: the compile that runs has no such function in
    /// its file (a helper added and inlined read as "which was edited": a
    /// Lua trial).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub added: bool,
}

/// How long a line diff may take before it settles for a coarser answer
/// (the edited lines of a huge change are then spans, never missed).
const DIFF_DEADLINE: std::time::Duration = std::time::Duration::from_millis(200);

/// The edited functions (without code of their own, or patched
/// themselves) among what `new` (a save's compile) changed from `old`
/// (the compile that runs), inlined
/// into the functions of `patched`. Empty when either compile did not
/// keep its texts, or nothing such was edited.
pub fn inlined_edits(old: &ObjectFile, new: &ObjectFile, patched: &[String]) -> Vec<InlinedEdit> {
    let before = old.source_texts();
    let changed = |path: &Path, text: &str| before.of(path).is_some_and(|was| was != text);
    if !new.source_texts().0.iter().any(|(path, text)| changed(path, text)) {
        return Vec::new();
    }
    // The candidates first: most edits are of functions with code, and
    // then no text is compared.
    let candidates = relive_patch::inline_only::inlined_into_with_patched(new, patched);
    if candidates.is_empty() {
        return Vec::new();
    }
    // Each candidate's file resolved once, to be compared with the texts'.
    let resolved = relive_patch::inline_only::resolved;
    let files: Vec<PathBuf> = candidates.iter().map(|c| resolved(&c.file)).collect();
    // Each file whose code changed: its text without comments, and the
    // lines changed.
    let edited: Vec<Edited> = new
        .source_texts()
        .0
        .iter()
        .filter(|(path, text)| changed(path, text))
        .map(|(path, text)| (path, resolved(path), text))
        .filter(|(_, file, _)| files.contains(file))
        .filter_map(|(path, file, text)| {
            let code = without_comments(text);
            let old_code = without_comments(before.of(path)?);
            let lines = code_lines_changed(&old_code, &code);
            let line_starts = std::iter::once(0)
                .chain(memchr::memchr_iter(b'\n', code.as_bytes()).map(|k| k + 1))
                .collect();
            (!lines.is_empty()).then_some(Edited {
                file,
                old_code,
                code,
                line_starts,
                lines,
            })
        })
        .collect();
    candidates
        .into_iter()
        .zip(files)
        .filter_map(|(f, resolved)| {
            let file = edited.iter().find(|e| e.file == resolved)?;
            // The first line edited at or after its declaration, if its
            // body reaches that far.
            let first_edit = *file.lines.get(file.lines.partition_point(|&l| l < f.line))?;
            let start = *file.line_starts.get(usize::try_from(f.line).ok()?.checked_sub(1)?)?;
            let (_, last) = body(&file.code[start..], f.line)?;
            let added = !mentions(&file.old_code, &f.name);
            (first_edit <= last).then_some(InlinedEdit {
                function: f.name,
                into: f.into,
                added,
            })
        })
        .collect()
}

/// A file a save changed the code of.
struct Edited {
    /// Its path, resolved.
    file: PathBuf,
    /// Its text in the compile that runs, without comments.
    old_code: String,
    /// Its text without comments.
    code: String,
    /// Where each of its lines starts.
    line_starts: Vec<usize>,
    /// The lines changed (sorted).
    lines: Vec<u64>,
}

/// Whether `code` names the identifier `name` (not as part of a longer
/// one).
fn mentions(code: &str, name: &str) -> bool {
    let ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let bytes = code.as_bytes();
    !name.is_empty()
        && memchr::memmem::find_iter(bytes, name.as_bytes()).any(|at| {
            let before = at.checked_sub(1).and_then(|k| bytes.get(k)).copied();
            let after = bytes.get(at + name.len()).copied();
            !before.is_some_and(ident) && !after.is_some_and(ident)
        })
}

/// The lines of `new` (from 1) that an edit of `old` changed, both
/// without comments ([`without_comments`]), whitespace aside: lines added
/// or changed, and for lines removed the line before them.
fn code_lines_changed(old_code: &str, new_code: &str) -> Vec<u64> {
    // The lines both begin and end with are left out of the diff (a
    // save changes a few lines of a unit that may have 250,000).
    let (old_bytes, new_bytes) = (old_code.as_bytes(), new_code.as_bytes());
    let same = old_bytes.iter().zip(new_bytes).take_while(|(a, b)| a == b).count();
    let head = old_bytes[..same].iter().rposition(|&b| b == b'\n').map_or(0, |k| k + 1);
    let room = (old_bytes.len() - head).min(new_bytes.len() - head);
    let same_end = old_bytes
        .iter()
        .rev()
        .zip(new_bytes.iter().rev())
        .take(room)
        .take_while(|(a, b)| a == b)
        .count();
    // From the start of a line (one after the first line break in it).
    let tail = old_bytes[old_bytes.len() - same_end..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(0, |k| same_end - k - 1);
    let first_line = old_bytes[..head].iter().filter(|&&b| b == b'\n').count();
    let squeeze = |text: &str| -> Vec<String> {
        text.lines()
            .map(|l| l.chars().filter(|c| !c.is_whitespace()).collect())
            .collect()
    };
    let a = squeeze(&old_code[head..old_code.len() - tail]);
    let b = squeeze(&new_code[head..new_code.len() - tail]);
    let deadline = std::time::Instant::now() + DIFF_DEADLINE;
    let ops = similar::capture_diff_slices_deadline(similar::Algorithm::Myers, &a, &b, Some(deadline));
    let mut lines = Vec::new();
    for op in ops {
        let (tag, was, now) = op.as_tag_tuple();
        if tag == similar::DiffTag::Equal || a[was.clone()].concat() == b[now.clone()].concat() {
            continue; // the same code, laid out on other lines
        }
        let (start, end) = ((first_line + now.start) as u64, (first_line + now.end) as u64);
        match now.is_empty() {
            true => lines.push(start.max(1)),
            false => lines.extend(start + 1..=end),
        }
    }
    lines
}

/// `text` with its comments removed, its lines kept: a comment's line
/// breaks stay where they were. String and character literals are kept
/// whole (a `/*` in a string starts no comment). Plain text is copied a
/// run at a time (a unit may be megabytes: SQLite's is 9).
fn without_comments(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut k = 0;
    while let Some(skip) = memchr::memchr3(b'/', b'"', b'\'', &bytes[k..]) {
        out.extend_from_slice(&bytes[k..k + skip]);
        k += skip;
        let rest = &bytes[k..];
        match (rest[0], rest.get(1)) {
            (b'/', Some(b'/')) => k += memchr::memchr(b'\n', rest).unwrap_or(rest.len()),
            (b'/', Some(b'*')) => {
                let len = memchr::memmem::find(&rest[2..], b"*/").map_or(rest.len(), |end| end + 4);
                out.extend(std::iter::repeat_n(
                    b'\n',
                    memchr::memchr_iter(b'\n', &rest[..len]).count(),
                ));
                out.push(b' ');
                k += len;
            }
            (quote @ (b'"' | b'\''), _) => {
                let len = literal_len(rest, quote);
                out.extend_from_slice(&rest[..len]);
                k += len;
            }
            (c, _) => {
                out.push(c);
                k += 1;
            }
        }
    }
    out.extend_from_slice(&bytes[k..]);
    String::from_utf8_lossy(&out).into_owned()
}

/// The length of the literal `text` starts with (its opening `quote`
/// first): up to its closing quote, escapes stepped over, else to the end
/// of its line (an unterminated one) or of the text.
fn literal_len(text: &[u8], quote: u8) -> usize {
    let mut at = 1;
    while let Some(next) = memchr::memchr3(quote, b'\\', b'\n', &text[at.min(text.len())..]) {
        at += next;
        match text[at] {
            b'\\' => at += 2,
            b'\n' => return at,
            _ => return at + 1,
        }
    }
    text.len()
}

/// The lines of a function whose declaration starts `code` (a text
/// without comments, from the start of line `line`): from there to the
/// brace that closes the body opened after it (braces in literals
/// aside). `None` when no body follows.
fn body(code: &str, line: u64) -> Option<(u64, u64)> {
    let bytes = code.as_bytes();
    let mut depth = 0usize;
    let mut at = line;
    let mut k = 0;
    while k < bytes.len() {
        match bytes[k] {
            b'\n' => at += 1,
            quote @ (b'"' | b'\'') => {
                k += literal_len(&bytes[k..], quote);
                continue;
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
    fn only_the_lines_between_equal_ends_are_compared() {
        let filler: String = (0..2000).map(|k| format!("int v{k} = {k};\n")).collect();
        let old = format!("{filler}{BEFORE}{filler}");
        let new = old.replace("x * 3", "x * 4");
        assert_eq!(lines(&old, &new), vec![2003]);
        // An edit on the first line, and one that adds a last line.
        assert_eq!(lines(&old, &old.replacen("int v0 = 0;", "int v0 = 1;", 1)), vec![1]);
        assert_eq!(lines(&old, &format!("{old}int w;\n")), vec![4011]);
        // Lines added to a text that ends without a line break.
        assert_eq!(lines("a;\nb;", "a;\nb;\nc;"), vec![3]);
        assert_eq!(lines("é;\n", "è;\n"), vec![1]);
    }

    #[test]
    fn a_body_runs_to_its_closing_brace() {
        let code = without_comments(BEFORE);
        assert_eq!(body(&code, 1), Some((1, 5)));
        let seventh = code.match_indices('\n').nth(5).unwrap().0 + 1;
        assert_eq!(body(&code[seventh..], 7), Some((7, 10)));
        let braces_in_text = "void f(void)\n{\n    puts(\"}\"); /* } */\n    g('}');\n}\nint x;\n";
        assert_eq!(body(&without_comments(braces_in_text), 1), Some((1, 5)));
        assert_eq!(body("int x;\n", 1), None);
    }
}
