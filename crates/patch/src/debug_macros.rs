//! The macros a compile defined, from its macro debug information
//! (`.debug_macro`: GCC's `-g3`, clang's `-fdebug-macro`, which relive's
//! own compiles ask for), and those an edit gave another value.
//!
//! A changed `#define` reaches a running program through the functions
//! that use it: their code changes, and a patch replaces them. But a
//! value the program already computed with the old definition stays in
//! its data, and the new code reads it with the new one: SQLite's `TF_*`
//! flags, two values swapped, made every table the program had opened
//! read as the other kind, while relive said only "patched" (a trial).
//! Nothing in the code tells a flag stored in a struct from a loop bound,
//! so such an edit is patched (a tuning constant is the most common live
//! edit there is) and said: the macros whose value changed, by name, with
//! both values.
//!
//! The same facts come from the preprocessor's listing (`cc -E -dD`: each
//! `#define` as the compiler spells it in `.debug_macro`), which a compile
//! can ask for on another core instead of `-g3` (which made relive's
//! compile of a small file that includes `stdio.h` a tenth slower than
//! the build's): [`defined_in_listing`], kept with the object
//! ([`ObjectFile::set_defined_macros`]). Two compiles compare whichever
//! each has.

use std::borrow::Cow;
use std::collections::HashSet;

use gimli::{DebugMacroOffset, EndianSlice, LittleEndian, MacroEntry, Reader as _};
use object::read::{Object, ObjectSection};

use crate::debug_relocs::{Fixups, SectionRelocs};
use crate::objfile::ObjectFile;
use crate::signature::{with_dwarf, Reader};

/// Each macro a compile defined with every body it was given (a macro
/// `#undef`'d and defined again has two): `(name, body)` pairs, sorted,
/// each once. A sorted list, not a map of sets: two compiles are compared
/// at every save, and most saves change no macro of the thousand a unit
/// that includes `stdio.h` has, which one pass over two lists tells
/// (looking each name up in a map of sets cost half a millisecond).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Definitions(Vec<(String, String)>);

impl Definitions {
    fn of(mut pairs: Vec<(String, String)>) -> Definitions {
        pairs.sort_unstable();
        pairs.dedup();
        Definitions(pairs)
    }

    /// How many macros: names, not definitions.
    pub fn len(&self) -> usize {
        self.by_name().count()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Each name with its bodies, in order of name.
    fn by_name(&self) -> impl Iterator<Item = (&str, Vec<&str>)> {
        self.0.chunk_by(|a, b| a.0 == b.0).map(|group| {
            let bodies = group.iter().map(|(_, body)| body.as_str()).collect();
            (group[0].0.as_str(), bodies)
        })
    }
}

/// One `.debug_macro` section of an object: its bytes, its relocations,
/// and the signature of the group it is in (GCC's `wm4.FILE.LINE.MD5`
/// for a header's macros: the same signature, the same macros).
struct MacroSection<'a> {
    bytes: &'a [u8],
    relocs: SectionRelocs,
    group: Option<String>,
}

/// The object's `.debug_macro` sections, read with one parse of its
/// headers. GCC writes one per header (in a group of its own, shared
/// between units) and one for the unit, which imports them; each starts
/// with a header of its own, so each is read whole, imports aside.
fn macro_sections(data: &[u8]) -> Vec<MacroSection<'_>> {
    use object::read::elf::{ElfFile64, SectionHeader};
    use object::read::ObjectComdat;
    let Ok(file) = ElfFile64::<object::Endianness>::parse(data) else {
        return Vec::new();
    };
    let endian = file.endian();
    let mut groups = std::collections::HashMap::new();
    for comdat in file.comdats() {
        let Ok(name) = comdat.name() else { continue };
        for section in comdat.sections() {
            groups.insert(section.0, name.to_string());
        }
    }
    let mut relas = std::collections::HashMap::new();
    for s in file.sections() {
        let header = s.elf_section_header();
        if header.sh_type(endian) == object::elf::SHT_RELA {
            relas.insert(header.sh_info(endian) as usize, s.file_range());
        }
    }
    file.sections()
        .filter(|s| s.name() == Ok(".debug_macro"))
        .filter_map(|s| {
            let index = s.index().0;
            Some(MacroSection {
                bytes: s.data().ok()?,
                relocs: SectionRelocs::of_rela(data, relas.get(&index).copied().flatten()),
                group: groups.get(&index).cloned(),
            })
        })
        .collect()
}

/// Each macro's definitions (what follows its name: its parameters and
/// its body), by name, in the sections of `obj` outside the groups
/// `skipped`. `None` when the object carries no macro information or it
/// cannot be read whole: a comparison of part of it would call every
/// macro it missed removed.
fn definitions_outside(obj: &ObjectFile, sections: &[MacroSection], skipped: &HashSet<String>) -> Option<Definitions> {
    let data = obj.raw();
    if sections.is_empty() {
        return None;
    }
    let bases = obj.debug_bases();
    with_dwarf(obj, |dwarf| {
        let header = dwarf.units().next()?;
        let Some(header) = header else {
            return Ok(None);
        };
        let unit = dwarf.unit(header)?;
        let unit = unit.unit_ref(dwarf);
        let mut out = Vec::new();
        for section in sections {
            if section.group.as_ref().is_some_and(|g| skipped.contains(g)) {
                continue;
            }
            let reader: Reader = gimli::RelocateReader::new(
                EndianSlice::new(section.bytes, LittleEndian),
                Fixups::new(data, &section.relocs, bases),
            );
            let mut entries = gimli::DebugMacro::from(reader).get_macros(DebugMacroOffset(0))?;
            while let Some(entry) = entries.next()? {
                let MacroEntry::Define { text, .. } = entry else {
                    continue;
                };
                let text = text.string(unit)?.to_string_lossy()?.into_owned();
                let (name, body) = split_definition(&text);
                out.push((name.to_string(), body.to_string()));
            }
        }
        Ok(Some(Definitions::of(out)))
    })
    .ok()
    .flatten()
}

/// Each macro's definitions in `obj`, by name (see [`definitions_outside`]).
pub fn definitions(obj: &ObjectFile) -> Option<Definitions> {
    definitions_outside(obj, &macro_sections(obj.raw()), &HashSet::new())
}

/// The macros a preprocessor's listing (`cc -E -dD`) defines: its lines
/// `#define NAME BODY`, which GCC and clang spell as their macro debug
/// information does. A line of the program's own text cannot start so:
/// the preprocessor has taken every directive out of it.
pub fn defined_in_listing(listing: &[u8]) -> Definitions {
    let mut out = Vec::new();
    for line in listing.split(|&b| b == b'\n') {
        let Some(text) = line.strip_prefix(b"#define ") else {
            continue;
        };
        let text = String::from_utf8_lossy(text);
        let (name, body) = split_definition(&text);
        out.push((name.to_string(), body.to_string()));
    }
    Definitions::of(out)
}

/// The groups `sections` are in (their signatures).
fn groups(sections: &[MacroSection]) -> HashSet<String> {
    sections.iter().filter_map(|s| s.group.clone()).collect()
}

/// A definition's text split into the macro's name and the rest: `F(a,
/// b) ((a)+(b))` into `F` and `(a, b) ((a)+(b))`, `X 9` into `X` and `9`.
fn split_definition(text: &str) -> (&str, &str) {
    let end = text.find([' ', '(']).unwrap_or(text.len());
    let (name, rest) = text.split_at(end);
    // An object-like macro whose value starts with a parenthesis keeps
    // the space before it: its rest is told from a function-like macro's
    // parameter list by that (`X (5)` from `F(a) a`).
    let rest = match rest.strip_prefix(' ') {
        Some(value) if !value.starts_with('(') => value,
        _ => rest,
    };
    (name, rest.trim_end())
}

/// A macro both compiles define, with other definitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MacroChange {
    pub name: String,
    /// Its definitions in the first compile and in the second (a macro
    /// defined again after an `#undef` has several).
    pub before: Vec<String>,
    pub after: Vec<String>,
    /// The file that defines it, when the compile's texts say
    /// ([`used_by_the_unit`]): a header's macro is said with the header.
    pub defined_in: Option<String>,
}

/// The macros `old` and `new` both define, differently. Empty when either
/// lacks macro information (a compile without `-g3` whose listing was not
/// recorded).
pub fn changed(old: &ObjectFile, new: &ObjectFile) -> Vec<MacroChange> {
    let (before, after) = match (old.defined_macros(), new.defined_macros()) {
        (None, None) => {
            // A header's group both compiles have defines the same macros
            // in both: read neither (most of a unit's macros are the
            // system's).
            let (old_sections, new_sections) = (macro_sections(old.raw()), macro_sections(new.raw()));
            let shared: HashSet<String> = groups(&old_sections)
                .intersection(&groups(&new_sections))
                .cloned()
                .collect();
            (
                definitions_outside(old, &old_sections, &shared).map(Cow::Owned),
                definitions_outside(new, &new_sections, &shared).map(Cow::Owned),
            )
        }
        (listed_before, listed_after) => (
            listed_before
                .map(Cow::Borrowed)
                .or_else(|| definitions(old).map(Cow::Owned)),
            listed_after
                .map(Cow::Borrowed)
                .or_else(|| definitions(new).map(Cow::Owned)),
        ),
    };
    match (before, after) {
        (Some(before), Some(after)) => changes(&before, &after),
        _ => Vec::new(),
    }
}

/// Of `changes`, the macros the code of `obj`'s unit uses
/// ([`names_used`]), as the texts its compile read say; all of them when
/// it kept none (a one-shot patch of an object). A header's macro the
/// file never uses changed nothing in it (a Lua trial: liolib.c's note
/// named `lua_integer2str`, which only lobject.c uses).
pub fn used_by_the_unit(obj: &ObjectFile, changes: Vec<MacroChange>) -> Vec<MacroChange> {
    let texts = &obj.source_texts().0;
    if changes.is_empty() || texts.is_empty() {
        return changes;
    }
    let code: Vec<String> = texts.iter().map(|(_, text)| crate::c_tokens::code_only(text)).collect();
    let by_file: Vec<Vec<String>> = texts
        .iter()
        .map(|(_, text)| crate::c_tokens::directives(text))
        .collect();
    let directives: Vec<String> = by_file.iter().flatten().cloned().collect();
    let used = names_used(&code, &directives);
    // Where each is defined: the first file with a `#define` of it.
    let defines = |lines: &[String], name: &str| {
        lines.iter().any(|line| {
            let (keyword, rest) = crate::c_tokens::split_directive(line);
            keyword == "define" && crate::c_tokens::words(rest).next() == Some(name)
        })
    };
    changes
        .into_iter()
        .filter(|c| used.contains(c.name.as_str()))
        .map(|c| {
            let file = texts.iter().zip(&by_file).find(|(_, lines)| defines(lines, &c.name));
            MacroChange {
                defined_in: file.and_then(|((path, _), _)| Some(path.file_name()?.to_string_lossy().into_owned())),
                ..c
            }
        })
        .collect()
}

/// The macros both `ours` and `theirs` (compiles of two files) use whose
/// values differ between them, as `theirs -> ours`: what two files'
/// running code would disagree on, one patched with a header's new value
/// and the other running code built with the old one. Empty when either
/// compile kept no texts (which macros its code uses is then unknown).
pub fn disagreeing(ours: &ObjectFile, theirs: &ObjectFile) -> Vec<MacroChange> {
    if ours.source_texts().0.is_empty() || theirs.source_texts().0.is_empty() {
        return Vec::new();
    }
    let changes = changed(theirs, ours);
    if changes.is_empty() {
        return changes;
    }
    let used_by_theirs: Vec<String> = used_by_the_unit(theirs, changes.clone())
        .into_iter()
        .map(|c| c.name)
        .collect();
    used_by_the_unit(ours, changes)
        .into_iter()
        .filter(|c| used_by_theirs.contains(&c.name))
        .collect()
}

/// The names code uses, given its text without directives, comments and
/// literals (`code`) and its directive lines: the identifiers of the code
/// and of its conditionals (`#if`, `#ifdef`, ...), and those the
/// definitions of macros so used name, and so on.
fn names_used<'t>(code: &'t [String], directives: &'t [String]) -> HashSet<&'t str> {
    use crate::c_tokens::{split_directive, words};
    let mut used: HashSet<&str> = code.iter().flat_map(|c| words(c)).collect();
    let mut bodies: std::collections::HashMap<&str, Vec<&str>> = std::collections::HashMap::new();
    for line in directives {
        let (keyword, rest) = split_directive(line);
        match keyword {
            // A value tested; not a name tested for definedness, which a
            // header does around its own default (`#if !defined(X)`
            // before `#define X 128`: a Lua re-check's every file that
            // included llimits.h was said to use each of its macros).
            "if" | "elif" => {
                let mut names = words(rest).peekable();
                while let Some(name) = names.next() {
                    match name {
                        "defined" => {
                            names.next();
                        }
                        _ => {
                            used.insert(name);
                        }
                    }
                }
            }
            "define" => {
                let mut names = words(rest);
                if let Some(name) = names.next() {
                    bodies.entry(name).or_default().extend(names);
                }
            }
            _ => {}
        }
    }
    let mut work: Vec<&str> = used.iter().copied().filter(|n| bodies.contains_key(n)).collect();
    while let Some(name) = work.pop() {
        for &word in bodies.get(name).into_iter().flatten() {
            if used.insert(word) && bodies.contains_key(word) {
                work.push(word);
            }
        }
    }
    used
}

/// The macros both `before` and `after` define, differently.
fn changes(before: &Definitions, after: &Definitions) -> Vec<MacroChange> {
    if before == after {
        return Vec::new();
    }
    // Both in order of name: one walk pairs them.
    let mut before = before.by_name().peekable();
    let mut out = Vec::new();
    for (name, bodies) in after.by_name() {
        while before.next_if(|(earlier, _)| *earlier < name).is_some() {}
        let Some((_, was)) = before.next_if(|(same, _)| *same == name) else {
            continue;
        };
        if was != bodies && spelled(&was) != spelled(&bodies) {
            let owned = |bodies: Vec<&str>| bodies.into_iter().map(str::to_string).collect();
            out.push(MacroChange {
                name: name.to_string(),
                before: owned(was),
                after: owned(bodies),
                defined_in: None,
            });
        }
    }
    out
}

/// A macro's bodies as C tokens ([`crate::c_tokens`]), each once: two
/// compiles whose definitions differ only in spacing or in how a number
/// is written define it alike.
fn spelled(bodies: &[&str]) -> Vec<Vec<String>> {
    use crate::c_tokens::{closing, tokens, without_enclosing_parentheses as bare};
    let canonical = |body: &&str| {
        let all = tokens(body);
        // A function-like macro's parameters, then its expansion; an
        // object-like one's value, in parentheses or not.
        let parameters = match body.starts_with('(') {
            true => closing(&all, 0).map_or(0, |k| k + 1),
            false => 0,
        };
        let (parameters, value) = all.split_at(parameters);
        // Parameters by their place: `F(a) (a)` and `F(x) (x)` are one
        // definition (put back after a rename, it was said to change).
        let names: Vec<&String> = parameters
            .iter()
            .filter(|t| t.starts_with(|c: char| c.is_alphabetic() || c == '_'))
            .collect();
        let placed = |t: &String| match names.iter().position(|n| *n == t) {
            Some(k) => format!("${k}"),
            None => t.clone(),
        };
        parameters
            .iter()
            .chain(bare(value))
            .map(placed)
            .collect::<Vec<String>>()
    };
    let mut out: Vec<Vec<String>> = bodies.iter().map(canonical).collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// A function-like macro's definition (what follows its name: `(s)
/// ((s)->w_size)`) as its parameter list and its body; `None` for an
/// object-like one, whose value starts after a space.
fn parameters_and_body(definition: &str) -> Option<(&str, &str)> {
    if !definition.starts_with('(') {
        return None;
    }
    let close = definition.find(')')?;
    Some((&definition[..=close], definition[close + 1..].trim_start()))
}

/// How many changed macros a note names; the rest are counted.
const NAMED: usize = 6;

/// `changes` in words, the first [`NAMED`] of them ("LIMIT 3 -> 4; F(s):
/// (s) -> ((s) + 1); 2 more"); `None` when there are none.
pub fn listed(changes: &[MacroChange]) -> Option<String> {
    if changes.is_empty() {
        return None;
    }
    let show = |defs: &[String]| match defs {
        [one] if one.is_empty() => "defined empty".to_string(),
        _ => defs.iter().map(|d| d.trim_start()).collect::<Vec<_>>().join(" | "),
    };
    // A function-like macro as C writes it, its parameters by its name:
    // "MAX_DIST (s) (…) -> (s) (…)" read as two values of MAX_DIST.
    let change = |c: &MacroChange| match (&c.before[..], &c.after[..]) {
        ([before], [after]) => match (parameters_and_body(before), parameters_and_body(after)) {
            (Some((p, was)), Some((q, is))) if p == q => {
                let (was, is) = where_they_differ(was, is);
                format!("{}{p}: {was} -> {is}", c.name)
            }
            (Some((p, was)), Some((q, is))) => {
                let (was, is) = where_they_differ(was, is);
                format!("{0}{p} {was} -> {0}{q} {is}", c.name)
            }
            _ => {
                let (was, is) = where_they_differ(&show(&c.before), &show(&c.after));
                format!("{} {was} -> {is}", c.name)
            }
        },
        _ => {
            let (was, is) = where_they_differ(&show(&c.before), &show(&c.after));
            format!("{} {was} -> {is}", c.name)
        }
    };
    let placed = |c: &MacroChange| match &c.defined_in {
        Some(file) => format!("{}, in {file}", change(c)),
        None => change(c),
    };
    let mut named: Vec<String> = changes.iter().take(NAMED).map(placed).collect();
    if changes.len() > NAMED {
        named.push(format!("{} more", changes.len() - NAMED));
    }
    Some(named.join("; "))
}

/// How many characters of a macro's definition a note shows whole; a
/// longer one is shown around where the two definitions differ.
const SHOWN_WHOLE: usize = 80;

/// Characters of context kept on each side of where two long
/// definitions differ, and at most shown of the difference itself.
const CONTEXT: usize = 24;
const DIFFERENCE: usize = 120;

/// `was` and `is` as a note shows them: whole when short, else the part
/// where they differ with a little context, `…` where cut (a libuv
/// trial: one string edited in `UV_ERRNO_MAP` printed both 5 KB tables).
fn where_they_differ(was: &str, is: &str) -> (String, String) {
    if was.chars().count() <= SHOWN_WHOLE && is.chars().count() <= SHOWN_WHOLE {
        return (was.to_string(), is.to_string());
    }
    let (a, b): (Vec<char>, Vec<char>) = (was.chars().collect(), is.chars().collect());
    let prefix = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let room = a.len().min(b.len()) - prefix;
    let suffix = a
        .iter()
        .rev()
        .zip(b.iter().rev())
        .take(room)
        .take_while(|(x, y)| x == y)
        .count();
    let excerpt = |text: &[char]| {
        let start = prefix.saturating_sub(CONTEXT);
        let end = (text.len() - suffix + CONTEXT).min(text.len());
        let middle_end = text.len() - suffix;
        let mut out = String::new();
        if start > 0 {
            out.push('…');
        }
        out.extend(&text[start..prefix]);
        let middle = &text[prefix..middle_end];
        match middle.len() > DIFFERENCE {
            true => {
                out.extend(&middle[..DIFFERENCE]);
                out.push('…');
            }
            false => {
                out.extend(middle);
                out.extend(&text[middle_end..end]);
            }
        }
        if end < text.len() && middle.len() <= DIFFERENCE {
            out.push('…');
        }
        out
    };
    (excerpt(&a), excerpt(&b))
}

/// What to tell the user of a patch made with `changes`.
pub fn note(changes: &[MacroChange]) -> Option<String> {
    let named = listed(changes)?;
    let (which, it, value, one) = match changes.len() {
        1 => ("macro", "it", "value", "one"),
        _ => ("macros", "them", "values", "ones"),
    };
    // Function-like macros are code, not values the program stores: the
    // warning about stored flags and sizes did not fit (a Lua trial's
    // `tostring(L,o)`).
    let function_like = changes
        .iter()
        .all(|c| c.after.iter().chain(&c.before).all(|d| d.starts_with('(')));
    if function_like {
        return Some(format!(
            "{which} changed value ({named}): the patched functions that use {it} expand {it} the new way; code not patched keeps the old expansion"
        ));
    }
    Some(format!(
        "{which} changed value ({named}): the patched functions that use {it} have the new {value}, but what the program already computed or stored with the old {one} (flags or states in its data, sizes) keeps {it}, and those functions read it with the new meaning; restart the program if such values are kept"
    ))
}

/// A [`note`] said again for a save that put every patched function of
/// its file back as the program was built (their patches taken back):
/// the program's own code, with the values it was built with, runs again.
/// `None` for any other note. (A Lua trial: a put-back header was said to
/// give "the patched functions" the new values.)
pub fn put_back(note: &str) -> Option<String> {
    let (which, rest) = note.split_once(" changed value (")?;
    let (listed, _) = rest.split_once("): the patched functions that use ")?;
    let (it, values) = match which {
        "macro" => ("it", "value"),
        "macros" => ("them", "values"),
        _ => return None,
    };
    Some(format!(
        "{which} back to the {values} the program was built with ({listed}): its own code, which uses {it}, runs again, but what the patched code computed or stored with the other {values} keeps {it}; restart the program if such values are kept"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A long definition is shown around where it changed, with a little
    /// context; a short one whole.
    #[test]
    fn a_long_definition_is_shown_where_it_changed() {
        let table = |message: &str| {
            let mut t = String::from("(XX)");
            for k in 0..60 {
                let text = if k == 30 { message } else { "some error" };
                t.push_str(&format!(" XX(E{k}, \"{text}\")"));
            }
            t
        };
        let change = MacroChange {
            name: "ERRNO_MAP".into(),
            before: vec![table("no such file")],
            after: vec![table("no such file!")],
            defined_in: None,
        };
        let said = listed(&[change]).unwrap();
        assert!(said.len() < 300, "{said}");
        assert!(
            said.starts_with("ERRNO_MAP(XX): …")
                && said.contains("no such file\") ")
                && said.contains("no such file!\")"),
            "{said}"
        );
        // Short ones whole.
        assert_eq!(
            where_they_differ("(x) + 1", "(x) + 2"),
            ("(x) + 1".into(), "(x) + 2".into())
        );
    }

    /// A name a header tests for definedness around its own default
    /// (`#if !defined(X)`) is not a use of it; a value tested is, and so is
    /// what a used macro's definition names.
    #[test]
    fn a_default_guard_is_no_use() {
        let code = vec!["int n = LIMIT;".to_string()];
        let directives: Vec<String> = [
            "#if !defined(MINSIZE)",
            "#define MINSIZE 128",
            "#ifndef OTHER",
            "#define LIMIT (BASE + 1)",
            "#if DEPTH > 3",
        ]
        .iter()
        .map(|d| d.to_string())
        .collect();
        let used = names_used(&code, &directives);
        for name in ["LIMIT", "BASE", "DEPTH"] {
            assert!(used.contains(name), "{name}");
        }
        for name in ["MINSIZE", "OTHER", "defined"] {
            assert!(!used.contains(name), "{name}");
        }
    }

    #[test]
    fn a_definition_splits_into_name_and_the_rest() {
        assert_eq!(split_definition("X 9"), ("X", "9"));
        assert_eq!(split_definition("X (5)"), ("X", " (5)"), "told from a parameter list");
        assert_eq!(split_definition("F(a,b) ((a)+(b))"), ("F", "(a,b) ((a)+(b))"));
        assert_eq!(split_definition("GUARD"), ("GUARD", ""));
        assert_eq!(split_definition("GUARD "), ("GUARD", ""));
    }

    /// A listing's definitions, a macro defined twice (around an
    /// `#undef`) with both bodies; compared with another, only the macros
    /// both define with other bodies, whatever the order of the lines.
    #[test]
    fn listings_compare_by_name() {
        let before = defined_in_listing(
            b"# 1 \"a.c\"\n#define A 1\n#define F(x) ((x)+1)\nint a;\n#define GONE\n#define TWICE 1\n#undef TWICE\n#define TWICE 2\n",
        );
        assert_eq!(before.len(), 4, "{before:?}");
        let after =
            defined_in_listing(b"#define TWICE 3\n#define NEW 5\n#define TWICE 2\n#define F(x) ((x)+1)\n#define A 2\n");
        let change = |name: &str, before: &[&str], after: &[&str]| MacroChange {
            name: name.into(),
            before: before.iter().map(|b| b.to_string()).collect(),
            after: after.iter().map(|b| b.to_string()).collect(),
            defined_in: None,
        };
        assert_eq!(
            changes(&before, &after),
            [change("A", &["1"], &["2"]), change("TWICE", &["1", "2"], &["2", "3"])]
        );
        assert_eq!(changes(&after, &after), []);
        // Spelled otherwise, the same definitions (a Lua trial's `PI` with
        // spaces inside its parentheses, `MAXUNICODE` in decimal).
        let respelled =
            defined_in_listing(b"#define A 1\n#define F(x) ( (x) + 1 )\n#define TWICE 0x1\n#define TWICE 002\n");
        assert_eq!(changes(&before, &respelled), []);
        // A value put in parentheses is the same value; a function-like
        // macro's parameters are not its value.
        let (five, paren) = (
            defined_in_listing(b"#define K 5\n#define G(x) x\n"),
            defined_in_listing(b"#define K ((5))\n#define G(x) (x)\n"),
        );
        assert_eq!(changes(&five, &paren), []);
        let other = defined_in_listing(b"#define K (6)\n#define G(y) x\n");
        assert_eq!(changes(&five, &other).len(), 2, "{:?}", changes(&five, &other));
        let note = note(&changes(&five, &other)).unwrap();
        assert!(note.starts_with("macros changed value (G(x) x -> G(y) x; K 5 -> (6)): the patched functions that use them have the new values"), "{note}");
        // The same parameters are said once, by the name.
        let wider = defined_in_listing(b"#define K 5\n#define G(x) (x) + 30000\n");
        // Parameters renamed: the same definition.
        let renamed = defined_in_listing(b"#define K 5\n#define G(y) y\n");
        assert_eq!(changes(&five, &renamed), []);
        let said = super::note(&changes(&five, &wider)).unwrap();
        assert!(
            said.starts_with("macro changed value (G(x): x -> (x) + 30000)"),
            "{said}"
        );
        // A function-like macro is code: no word of stored values (a Lua
        // trial's `tostring(L,o)`), and its put-back still reads it.
        assert!(
            said.ends_with(
                "the patched functions that use it expand it the new way; code not patched keeps the old expansion"
            ),
            "{said}"
        );
        assert!(
            put_back(&said).is_some_and(|back| back.starts_with("macro back to the value")),
            "{said}"
        );
    }

    #[test]
    fn a_note_names_each_change_and_counts_the_rest() {
        let change = |n: usize| MacroChange {
            name: format!("M{n}"),
            before: vec!["1".into()],
            after: vec!["2".into()],
            defined_in: None,
        };
        let one = note(&[change(0)]).unwrap();
        assert!(one.starts_with("macro changed value (M0 1 -> 2)"), "{one}");
        let many: Vec<MacroChange> = (0..9).map(change).collect();
        let text = note(&many).unwrap();
        assert!(text.contains("M5 1 -> 2; 3 more"), "{text}");
        assert!(!text.contains("M6"), "{text}");
        assert_eq!(note(&[]), None);
        // Said again for a save that put the file back as built.
        let back = put_back(&one).unwrap();
        assert!(
            back.starts_with("macro back to the value the program was built with (M0 1 -> 2): its own code"),
            "{back}"
        );
        assert!(
            put_back(&text).unwrap().starts_with("macros back to the values"),
            "{text}"
        );
        assert_eq!(put_back("the contents of t changed: …"), None);
    }
}
