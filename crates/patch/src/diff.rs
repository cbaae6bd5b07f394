//! What changed between two compiles of one translation unit, symbol by
//! symbol.
//!
//! Two builds of a function are the same only if their bytes match once
//! every relocated field is masked, and their relocations match in place,
//! type and target. Targets are compared by what they denote, not by
//! numbering: a named symbol by its stable name (GCC's `.isra.N` and
//! `n.N` renumbering removed; a function-local static by its owning
//! function), a string literal by its text, a place in a section by the
//! symbol covering it. Inlining needs no special case: a caller whose
//! inlined copy changed has changed bytes.

use foldhash::{HashMap, HashMapExt};

use serde::Serialize;

use crate::names;
use crate::objfile::{Kind, ObjectFile, Reloc, Symbol, Target};

/// One symbol present in both objects that differs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// Its name in the new object.
    pub name: String,
    pub kind: Kind,
    /// What differs, in words.
    pub reason: String,
    /// A data symbol whose size changed: the running program's state has
    /// the old layout, so this cannot be patched in place.
    pub layout: bool,
    /// Its name in the old object, when GCC numbered it differently.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old_name: Option<String>,
}

/// A symbol present in only one of the objects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    pub name: String,
    pub kind: Kind,
    /// A file's own (`static`): no other file can refer to it.
    #[serde(skip)]
    pub local: bool,
}

/// The result of comparing two objects.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Diff {
    pub changed: Vec<Change>,
    pub added: Vec<Entry>,
    pub removed: Vec<Entry>,
    pub unchanged: usize,
}

impl Diff {
    /// Data symbols whose layout changed (patching must refuse these).
    pub fn layout_changes(&self) -> impl Iterator<Item = &Change> {
        self.changed.iter().filter(|c| c.layout)
    }
}

/// A pair's comparison: the new symbol, the old one, and how they
/// differ (why, and whether in layout), if they do.
type Compared = (usize, usize, Option<(String, bool)>);

/// Compares `old` and `new`.
pub fn diff(old: &ObjectFile, new: &ObjectFile) -> Diff {
    let worth = crate::side_by_side::worth_a_thread((old.raw().len() + new.raw().len()) as u64);
    diff_shared(old, new, worth)
}

/// [`diff`], its comparisons shared between two threads when `shared`
/// (what [`diff`] chooses by the objects' size): the same result either
/// way, which the tests check on every pair they diff.
pub fn diff_shared(old: &ObjectFile, new: &ObjectFile, shared: bool) -> Diff {
    // The new object's keys first: the old one's may be in the making on
    // another thread ([`prepare`]).
    let paired = crate::lambdas::paired_keys(old, new);
    let old_keys = stable_keys(old);
    let new_keys: &[String] = &paired;
    let mut result = Diff::default();
    let mut matched = vec![false; old.symbols.len()];
    // Each symbol of the new object with its old self, if any.
    let mut pairs: Vec<(usize, usize)> = Vec::with_capacity(new_keys.len());
    for (n, key) in new_keys.iter().enumerate() {
        let new_sym = &new.symbols[n];
        let Some(o) = symbol_of_key(old, key) else {
            result.added.push(Entry {
                name: new_sym.name.clone(),
                kind: new_sym.kind,
                local: new_sym.local,
            });
            continue;
        };
        matched[o] = true;
        pairs.push((n, o));
    }
    // The comparisons, half on a second thread for a large unit (SQLite's
    // thousands of functions: a fifth of its diff).
    let compare_all = |pairs: &[(usize, usize)]| -> Vec<Compared> {
        pairs
            .iter()
            .map(|&(n, o)| {
                let a = Side {
                    obj: old,
                    keys: old_keys,
                    sym: &old.symbols[o],
                };
                let b = Side {
                    obj: new,
                    keys: new_keys,
                    sym: &new.symbols[n],
                };
                (n, o, compare(&a, &b))
            })
            .collect()
    };
    let (first, second) = pairs.split_at(pairs.len() / 2);
    let (later, earlier) = crate::side_by_side::both_if(shared, || compare_all(second), || compare_all(first));
    for (n, o, difference) in earlier.into_iter().chain(later) {
        let (old_sym, new_sym) = (&old.symbols[o], &new.symbols[n]);
        match difference {
            None => result.unchanged += 1,
            Some(_) if renamed_type_name(old_sym, new_sym) => result.unchanged += 1,
            Some((reason, layout)) => result.changed.push(Change {
                name: new_sym.name.clone(),
                kind: new_sym.kind,
                reason,
                layout,
                old_name: (old_sym.name != new_sym.name).then(|| old_sym.name.clone()),
            }),
        }
    }
    for (o, sym) in old.symbols.iter().enumerate() {
        if !matched[o] {
            result.removed.push(Entry {
                name: sym.name.clone(),
                kind: sym.kind,
                local: sym.local,
            });
        }
    }
    result
}

/// Computes what [`diff`] reads of `obj` besides its symbols (their keys,
/// the places its relocations point at), so that another thread can do it
/// for one object while the diff starts on the other.
pub(crate) fn prepare(obj: &ObjectFile) {
    key_index(obj);
    obj.referenced();
}

fn key_hash(key: &str) -> u64 {
    std::hash::BuildHasher::hash_one(&foldhash::fast::FixedState::with_seed(0), key)
}

/// The symbols of `obj` by their stable keys ([`stable_keys`]), as
/// indices into them: built once per object.
fn key_index(obj: &ObjectFile) -> &hashbrown::HashTable<usize> {
    let keys = stable_keys(obj);
    obj.key_index_cache().get_or_init(|| {
        let mut table = hashbrown::HashTable::with_capacity(keys.len());
        for (i, k) in keys.iter().enumerate() {
            // Keys are unique (collisions got `#N`); a repeated one would
            // keep its first symbol.
            if table.find(key_hash(k), |&j: &usize| keys[j] == *k).is_none() {
                table.insert_unique(key_hash(k), i, |&j: &usize| key_hash(&keys[j]));
            }
        }
        table
    })
}

/// The symbol of `obj` whose stable key ([`stable_keys`]) is `key`.
pub fn symbol_of_key(obj: &ObjectFile, key: &str) -> Option<usize> {
    let keys = stable_keys(obj);
    key_index(obj).find(key_hash(key), |&j| keys[j] == key).copied()
}

/// The identity of symbol `i` of `obj` when it is a function-local static
/// GCC numbers (`n.3`): `static:OWNER::n` ([`keys`]). GCC
/// numbers a file's statics of one name in an order an edit changes (a
/// new `count` in `setup` took `count.0` from `tick`'s), so the number
/// says nothing across compiles.
pub fn static_key(obj: &ObjectFile, i: usize) -> Option<&str> {
    let sym = obj.symbols.get(i)?;
    if !sym.local || !sym.name.contains('.') {
        return None;
    }
    stable_keys(obj)
        .get(i)
        .map(String::as_str)
        .filter(|k| k.starts_with("static:"))
}

/// How a message names symbol `i` of `obj`: a numbered function-local
/// static as the source does, with the function that uses it (`n (used
/// by ver)`: the one it is declared in, or one that function is inlined
/// into), not GCC's `n.1`, a number the user never wrote; else its name.
pub fn static_label(obj: &ObjectFile, i: usize) -> String {
    let name = &obj.symbols[i].name;
    match static_key(obj, i).and_then(|k| k.strip_prefix("static:")?.rsplit_once("::")) {
        Some((owner, base)) => format!(
            "{} (used by {})",
            base.split('#').next().unwrap_or(base),
            crate::names::readable(owner)
        ),
        None => crate::names::readable(name),
    }
}

/// [`keys`] of `obj`, computed once per object.
pub fn stable_keys(obj: &ObjectFile) -> &[String] {
    obj.keys_cache().get_or_init(|| keys(obj))
}

/// Stable identities of the object's symbols, parallel to `obj.symbols`:
/// a global by its name; a local by its GCC-stable name; a function-local
/// static (`n.3`) by the function that refers to it and its base name.
/// Identities that still collide get `#1`, `#2` in order.
pub fn keys(obj: &ObjectFile) -> Vec<String> {
    // Only numbered function-local statics (`n.3`) are named by their
    // owners (a walk over the functions' relocations): most objects have
    // few or none.
    let numbered: Vec<bool> = obj
        .symbols
        .iter()
        .map(|sym| {
            sym.local && sym.kind != Kind::Function && sym.name.contains('.') && names::parse(&sym.name).numbered
        })
        .collect();
    let owners = if numbered.contains(&true) {
        owners(obj, &numbered)
    } else {
        HashMap::new()
    };
    let keys: Vec<String> = obj
        .symbols
        .iter()
        .enumerate()
        .map(|(i, sym)| {
            if !sym.local {
                return sym.name.clone();
            }
            // A name without a dot has no GCC suffix to take off (most
            // static functions: parsing each one's name was a tenth of
            // diffing SQLite).
            if !sym.name.contains('.') {
                // Not through `format!`: SQLite has thousands of these.
                return ["local:", sym.name.as_str()].concat();
            }
            let parsed = names::parse(&sym.name);
            if parsed.numbered && sym.kind != Kind::Function {
                let owner = owners.get(&i).map(String::as_str).unwrap_or("?");
                format!("static:{owner}::{}", parsed.base)
            } else {
                format!("local:{}", parsed.stable())
            }
        })
        .collect();
    let mut seen: foldhash::HashSet<&str> = foldhash::HashSet::with_capacity_and_hasher(keys.len(), Default::default());
    if keys.iter().all(|k| seen.insert(k.as_str())) {
        return keys;
    }
    // Unique in the object, deterministically: a later duplicate gets the
    // first `#n` no earlier key has. Later in GCC's numbering of the
    // function's statics (`warned.8` before `warned.9`: the order they
    // are declared in), not in the symbol table's order, which another
    // compile of the same function may change (a gawk trial: the two
    // `static bool warned` of `r_interpret` came out in the other order
    // after an edit elsewhere in it, and the patch's code used each
    // other's, the program's warnings said twice and never).
    // Functions keep the table's order (clang's `__cxx_global_var_init`,
    // then `.1`, `.2`: the order they were made in).
    let mut order: Vec<usize> = (0..keys.len()).collect();
    order.sort_by_key(|&i| {
        let sym = &obj.symbols[i];
        (
            if sym.kind == Kind::Function {
                0
            } else {
                gcc_number(&sym.name)
            },
            i,
        )
    });
    let mut used: foldhash::HashSet<String> = foldhash::HashSet::default();
    let mut unique: Vec<String> = vec![String::new(); keys.len()];
    for i in order {
        let key = &keys[i];
        unique[i] = if used.insert(key.clone()) {
            key.clone()
        } else {
            (1..)
                .map(|n| format!("{key}#{n}"))
                .find(|unique| used.insert(unique.clone()))
                .expect("a free number")
        };
    }
    unique
}

/// Where a variable comes in its compiler's numbering of statics of one
/// name: `warned.9` after `warned.8`, and a name without a number (the
/// first, as clang names them) before both.
fn gcc_number(name: &str) -> u64 {
    name.rsplit_once('.')
        .and_then(|(_, n)| n.parse::<u64>().ok())
        .map_or(0, |n| n.saturating_add(1))
}

/// For each symbol of `wanted` declared in a function: that function's
/// name, from the debug information ([`crate::static_owners`]); without
/// it, the stable name of the first (by name) function referring to it,
/// which for a static of an inlined function is its caller.
fn owners(obj: &ObjectFile, wanted: &[bool]) -> HashMap<usize, String> {
    let mut declared = crate::static_owners::declared_in(obj, wanted);
    for (i, function) in referring_functions(obj, wanted) {
        declared.entry(i).or_insert(function);
    }
    declared
}

/// For each symbol of `wanted` referred to by functions: the stable name
/// of the first (by name) function referring to it.
fn referring_functions(obj: &ObjectFile, wanted: &[bool]) -> HashMap<usize, String> {
    // Only relocations into a section holding one can refer to one: the
    // others (calls, strings, jump tables) are not looked up.
    let sections: foldhash::HashSet<usize> = obj
        .symbols
        .iter()
        .zip(wanted)
        .filter(|(_, &w)| w)
        .map(|(s, _)| s.section)
        .collect();
    let mut owners: HashMap<usize, String> = HashMap::new();
    for f in obj.symbols.iter().filter(|s| s.kind == Kind::Function) {
        let mut fname: Option<String> = None;
        for r in &f.relocs {
            let may_refer = match r.target {
                Target::Defined(i) => wanted.get(i) == Some(&true),
                Target::Section { section, .. } => sections.contains(&section),
                Target::Undefined(_) => false,
            };
            let Some(i) = may_refer
                .then(|| obj.referenced_symbol(r))
                .flatten()
                .filter(|&i| wanted.get(i) == Some(&true))
            else {
                continue;
            };
            let fname = fname.get_or_insert_with(|| names::stable(&f.name));
            let entry = owners.entry(i).or_insert_with(|| fname.clone());
            if *fname < *entry {
                *entry = fname.clone();
            }
        }
    }
    owners
}

/// Each relocation's place, type and what it points at.
pub(crate) type References = Vec<(u64, u32, String)>;

/// Whether `old` and `new` are the type name (`_ZTS…`, the text RTTI
/// compares) of one type under two names: a renumbered lambda's closure
/// ([`crate::lambdas`]) spells its number, but is the same type.
fn renamed_type_name(old: &Symbol, new: &Symbol) -> bool {
    let spells_itself = |s: &Symbol| {
        s.name.strip_prefix("_ZTS").is_some_and(|text| {
            s.bytes
                .as_deref()
                .and_then(|b| b.strip_suffix(&[0]))
                // `*`: a local type's, compared by address, not text.
                .is_some_and(|b| b.strip_prefix(b"*").unwrap_or(b) == text.as_bytes())
        })
    };
    old.name != new.name && spells_itself(old) && spells_itself(new)
}

/// Symbol `i` of `obj` as the diff compares it: its bytes with relocated
/// fields zeroed, and each relocation's place, type and what it points
/// at (by `keys`, the object's stable identities).
pub(crate) fn content(obj: &ObjectFile, keys: &[String], i: usize) -> (Option<Vec<u8>>, References) {
    let side = Side {
        obj,
        keys,
        sym: &obj.symbols[i],
    };
    (side.masked(), side.references())
}

/// The code of function `o` of `old` and `n` of `new` with their
/// relocated fields zeroed, when their relocations are alike (the same
/// places, types and targets): what is left to tell them apart is in the
/// bytes.
pub(crate) fn same_references_masked(
    old: &ObjectFile,
    o: usize,
    new: &ObjectFile,
    n: usize,
) -> Option<(Vec<u8>, Vec<u8>)> {
    let a = Side {
        obj: old,
        keys: stable_keys(old),
        sym: old.symbols.get(o)?,
    };
    let b = Side {
        obj: new,
        keys: stable_keys(new),
        sym: new.symbols.get(n)?,
    };
    if !a.same_references(&b) {
        return None;
    }
    Some((a.masked()?, b.masked()?))
}

struct Side<'a> {
    obj: &'a ObjectFile,
    keys: &'a [String],
    sym: &'a Symbol,
}

impl Side<'_> {
    /// The symbol's bytes with every relocated field zeroed.
    fn masked(&self) -> Option<Vec<u8>> {
        Some(self.sym.unrelocated(self.sym.bytes.as_deref()?.to_vec()))
    }

    /// What a relocation points at, independent of numbering and layout.
    fn describe(&self, r: &Reloc) -> String {
        self.describe_target(r, true)
    }

    /// [`Side::describe`]; with `inner`, a piece of data no symbol covers
    /// is described with the relocations inside it too (a jump table's
    /// entries are relocations: its bytes are all zero in the object), one
    /// level deep.
    fn describe_target(&self, r: &Reloc, inner: bool) -> String {
        match &r.target {
            Target::Defined(i) => format!("{}{:+}", self.keys[*i], r.addend),
            Target::Undefined(name) => format!("{name}{:+}", r.addend),
            Target::Section { section, offset } => {
                let at = offset.wrapping_add(r.pc_bias);
                if let Some((i, within)) = self.obj.symbol_at(*section, at) {
                    return format!("{}{:+}", self.keys[i], (within as i64).wrapping_sub(r.pc_bias));
                }
                let Some(sec) = self.obj.section(*section) else {
                    return format!("section {section}{offset:+}");
                };
                match (&sec.bytes, sec.strings) {
                    (Some(bytes), true) => match string_at(bytes, at) {
                        Some((start, text)) => format!("string {text:?}{:+}", offset.wrapping_sub(start as i64)),
                        None => format!("{}{offset:+}", sec.name),
                    },
                    // No symbol covers it: what the code uses is the piece
                    // up to the next place anything refers to (a constant,
                    // a literal), compared by content, not by offset.
                    // Its trailing zeros are left out: they are the
                    // padding before whatever the section holds next, and
                    // an edit elsewhere in the file moves that (a longer
                    // literal shifts a jump table's alignment), which is no
                    // change of this piece. A literal's own NUL ends the
                    // text either way.
                    (Some(bytes), false) => match self.obj.chunk(*section, at) {
                        Some(piece) => {
                            let content = &piece[..piece.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1)];
                            let mut text = format!(
                                "{} piece {:016x}/{}{:+}",
                                constant_pool(&sec.name),
                                fnv1a(content),
                                content.len(),
                                -r.pc_bias
                            );
                            if inner {
                                let from = u64::try_from(at).unwrap_or(0);
                                let end = from.saturating_add(piece.len() as u64);
                                let first = sec.relocs.partition_point(|x| x.offset < from);
                                for x in sec.relocs[first..].iter().take_while(|x| x.offset < end) {
                                    text.push_str(&format!(
                                        " [+{:#x} {}]",
                                        x.offset - from,
                                        self.describe_target(x, false)
                                    ));
                                }
                            }
                            text
                        }
                        None => format!("{}{offset:+} (content {:016x})", sec.name, fnv1a(bytes)),
                    },
                    (None, _) => format!("{}{offset:+}", sec.name),
                }
            }
        }
    }

    /// What [`Side::describe_target`] says of `r` in its common cases, as
    /// parts rather than text: a symbol (or undefined name) and an offset,
    /// which `describe` writes `{text}{offset:+}` (two such strings are
    /// equal exactly when both parts are), a string literal with the
    /// offset into it, and a piece of data no symbol covers (a jump table)
    /// with the relocations inside it. Comparing parts spares the diff a
    /// string per relocation of every unchanged function (a jump table's
    /// text named each of its entries: most of diffing SQLite).
    fn pointee<'s>(&'s self, r: &'s Reloc, inner: bool) -> Option<Pointee<'s>> {
        match &r.target {
            Target::Defined(i) => Some(Pointee::Named(self.keys[*i].as_str(), r.addend)),
            Target::Undefined(name) => Some(Pointee::Named(name.as_str(), r.addend)),
            Target::Section { section, offset } => {
                let at = offset.wrapping_add(r.pc_bias);
                if let Some((i, within)) = self.obj.symbol_at(*section, at) {
                    return Some(Pointee::Named(
                        self.keys[i].as_str(),
                        (within as i64).wrapping_sub(r.pc_bias),
                    ));
                }
                let sec = self.obj.section(*section)?;
                let bytes = sec.bytes.as_deref()?;
                if sec.strings {
                    let (start, text) = string_bytes_at(bytes, at)?;
                    return Some(Pointee::Literal(text, offset.wrapping_sub(start as i64)));
                }
                let piece = self.obj.chunk(*section, at)?;
                let content = &piece[..piece.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1)];
                let from = u64::try_from(at).unwrap_or(0);
                let inside = if inner {
                    let end = from.saturating_add(piece.len() as u64);
                    let first = sec.relocs.partition_point(|x| x.offset < from);
                    let last = first + sec.relocs[first..].partition_point(|x| x.offset < end);
                    &sec.relocs[first..last]
                } else {
                    &[]
                };
                Some(Pointee::Piece {
                    section: constant_pool(&sec.name),
                    content,
                    bias: r.pc_bias,
                    from,
                    inside,
                })
            }
        }
    }

    /// Whether `x` (of this side) and `y` (of `other`) point at the same
    /// thing: [`Side::describe_target`]'s texts equal, without writing
    /// them when [`Side::pointee`] tells.
    fn same_target(&self, x: &Reloc, other: &Side, y: &Reloc, inner: bool) -> bool {
        match (self.pointee(x, inner), other.pointee(y, inner)) {
            (Some(p), Some(q)) => match (p, q) {
                (Pointee::Named(a, i), Pointee::Named(b, j)) => a == b && i == j,
                (Pointee::Literal(a, i), Pointee::Literal(b, j)) => a == b && i == j,
                (
                    Pointee::Piece {
                        section: s,
                        content: c,
                        bias: b,
                        from: f,
                        inside: xs,
                    },
                    Pointee::Piece {
                        section: t,
                        content: d,
                        bias: e,
                        from: g,
                        inside: ys,
                    },
                ) => {
                    s == t
                        && c == d
                        && b == e
                        && xs.len() == ys.len()
                        && xs
                            .iter()
                            .zip(ys)
                            .all(|(u, v)| u.offset - f == v.offset - g && self.same_target(u, other, v, false))
                }
                // Different kinds of target never describe alike.
                _ => false,
            },
            _ => self.describe_target(x, inner) == other.describe_target(y, inner),
        }
    }

    /// Whether every relocation of both sides is at the same place, of the
    /// same type and points at the same thing: [`Side::references`] equal,
    /// without building them when the common cases decide.
    fn same_references(&self, other: &Side) -> bool {
        let (a, b) = (&self.sym.relocs, &other.sym.relocs);
        a.len() == b.len()
            && a.iter()
                .zip(b)
                .all(|(x, y)| x.offset == y.offset && x.r_type == y.r_type && self.same_target(x, other, y, true))
    }

    fn references(&self) -> References {
        self.sym
            .relocs
            .iter()
            .map(|r| (r.offset, r.r_type, self.describe(r)))
            .collect()
    }
}

/// What a relocation points at, in the cases [`Side::pointee`] tells
/// without formatting.
enum Pointee<'s> {
    Named(&'s str, i64),
    Literal(&'s [u8], i64),
    /// Data no symbol covers, from `from` in its section: its bytes
    /// without their trailing zeros, the relocation's PC bias, and the
    /// relocations inside it (none when not looked into).
    Piece {
        section: &'s str,
        content: &'s [u8],
        bias: i64,
        from: u64,
        inside: &'s [Reloc],
    },
}

/// `(start, text)` of the NUL-terminated string containing `at`.
fn string_at(bytes: &[u8], at: i64) -> Option<(usize, String)> {
    let (start, text) = string_bytes_at(bytes, at)?;
    Some((start, String::from_utf8_lossy(text).into_owned()))
}

/// [`string_at`], the bytes as they are.
fn string_bytes_at(bytes: &[u8], at: i64) -> Option<(usize, &[u8])> {
    let at = usize::try_from(at).ok().filter(|&a| a < bytes.len())?;
    let start = memchr::memrchr(0, &bytes[..at]).map_or(0, |p| p + 1);
    let end = memchr::memchr(0, &bytes[at..]).map_or(bytes.len(), |p| at + p);
    Some((start, &bytes[start..end]))
}

/// FNV-1a of `bytes`: content named by a number in descriptions.
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

/// `Some((reason, layout_change))` when the two differ.
fn compare(a: &Side, b: &Side) -> Option<(String, bool)> {
    let (old, new) = (a.sym, b.sym);
    if old.kind != new.kind {
        return Some((
            format!("kind: {:?} -> {:?}", old.kind, new.kind),
            new.kind != Kind::Function,
        ));
    }
    let function = new.kind == Kind::Function;
    if old.size != new.size {
        // A constant that grew or shrank is no state of the program's:
        // the code that reads it gets the new copy with its patch (see
        // `select`), as for new contents of the same size. It was refused
        // as a change of the running state's layout (a user's trial on
        // zstd: a `static const` table of levels given one more).
        let constant = |s: &Side| s.obj.section(s.sym.section).is_some_and(|sec| sec.constant());
        return Some(if function {
            (format!("code: size {} -> {} bytes", old.size, new.size), false)
        } else if constant(a) && constant(b) {
            (format!("contents: size {} -> {} bytes", old.size, new.size), false)
        } else {
            (format!("layout: size {} -> {} bytes", old.size, new.size), true)
        });
    }
    let what = if function { "code" } else { "initial value" };
    let (masked_a, masked_b) = (a.masked(), b.masked());
    // Zero-filled (`.bss`) is the same value as zeros in `.data`.
    let zeros = |m: &Option<Vec<u8>>| m.as_ref().is_none_or(|bytes| bytes.iter().all(|&b| b == 0));
    let zero_filled = masked_a.is_none() || masked_b.is_none();
    if zero_filled && zeros(&masked_a) && zeros(&masked_b) && a.sym.relocs.is_empty() && b.sym.relocs.is_empty() {
        return None;
    }
    if masked_a != masked_b {
        let first = match (masked_a, masked_b) {
            (Some(x), Some(y)) => x.iter().zip(&y).position(|(p, q)| p != q),
            _ => None,
        };
        return Some(match first {
            Some(at) => (format!("{what}: bytes differ at +{at:#x}"), false),
            None => (format!("{what}: one is zero-filled"), false),
        });
    }
    if a.same_references(b) {
        return None;
    }
    let (ra, rb) = (a.references(), b.references());
    if ra != rb {
        let reason = match ra.iter().zip(&rb).find(|(x, y)| x != y) {
            Some((x, y)) => format!("{what}: reference at +{:#x}: {} -> {}", y.0, x.2, y.2),
            None => format!("{what}: {} -> {} references", ra.len(), rb.len()),
        };
        return Some((reason, false));
    }
    None
}

/// The section a piece of data is compared by: the mergeable constant
/// sections of each size (`.rodata.cst4`, `.cst8`, `.cst16`, `.cst32`) are
/// one, since an edit elsewhere in the file moves a constant from one to
/// another (GCC pools a `double` as 16 bytes when a vector of it is
/// loaded): the same bytes (trailing zeros aside), which the same
/// instructions read alike. Such a move listed unedited functions as
/// patched (a user's trial on Lua's math library).
fn constant_pool(name: &str) -> &str {
    match name.strip_prefix(".rodata.cst") {
        Some(size) if size.bytes().all(|b| b.is_ascii_digit()) => ".rodata.cst",
        _ => name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The comparison by parts ([`Side::same_target`]) says "the same"
    /// exactly when the texts of [`Side::describe_target`] are equal, for
    /// every pair of relocations of real code: jump tables (pieces with
    /// relocations inside), literals, statics and calls, compiled by gcc
    /// and clang before and after edits that move and change them.
    #[test]
    fn comparing_by_parts_agrees_with_comparing_texts() {
        let base = r#"
#include <stdio.h>
static int counter;
static const int table[] = {3, 1, 4, 1, 5, 9, 2, 6};
__attribute__((noinline)) static int helper(int x) { return x * 7 + counter++; }
const char *name(int x) {
    switch (x) {
    case 0: return "zero"; case 1: return "one"; case 2: return "two";
    case 3: return "three"; case 4: return "four"; case 5: return "five";
    default: return "many";
    }
}
int pick(int x) {
    switch (x & 7) {
    case 0: return helper(x) + 1; case 1: return table[x & 7] * 3;
    case 2: puts("two"); return 2; case 3: return helper(x + 3);
    case 4: return x / 3; case 5: return counter;
    default: return -1;
    }
}
"#;
        let edits = [
            base.to_string(),
            base.replace("case 3: return helper(x + 3);", "case 3: return x / 3;"),
            base.replace("\"zero\"", "\"nothing at all\""),
            base.replace("{3, 1, 4", "{2, 7, 1"),
        ];
        let dir = tempfile::tempdir().unwrap();
        let (mut checked, mut tables) = (0, 0);
        for cc in ["gcc", "clang"] {
            for flags in [&["-O2"][..], &["-O2", "-fPIC"], &["-O0"], &["-Os", "-fno-pie"]] {
                let old = relive_testkit::compile_object_with(cc, dir.path(), "old", base, flags);
                let old = ObjectFile::open(old).unwrap();
                for (k, edited) in edits.iter().enumerate() {
                    let new = relive_testkit::compile_object_with(cc, dir.path(), &format!("new{k}"), edited, flags);
                    let new = ObjectFile::open(new).unwrap();
                    let (old_keys, new_keys) = (stable_keys(&old), stable_keys(&new));
                    for (i, a) in old.symbols.iter().enumerate() {
                        let Some(j) = new_keys.iter().position(|key| *key == old_keys[i]) else {
                            continue;
                        };
                        let b = &new.symbols[j];
                        let x = Side {
                            obj: &old,
                            keys: old_keys,
                            sym: a,
                        };
                        let y = Side {
                            obj: &new,
                            keys: new_keys,
                            sym: b,
                        };
                        for (r, q) in a.relocs.iter().zip(&b.relocs) {
                            if matches!(x.pointee(r, true), Some(Pointee::Piece { inside, .. }) if !inside.is_empty()) {
                                tables += 1;
                            }
                            for inner in [true, false] {
                                let texts = x.describe_target(r, inner) == y.describe_target(q, inner);
                                assert_eq!(
                                    x.same_target(r, &y, q, inner),
                                    texts,
                                    "{cc} {flags:?} edit {k}, {}: {} vs {}",
                                    a.name,
                                    x.describe_target(r, inner),
                                    y.describe_target(q, inner)
                                );
                                checked += 1;
                            }
                        }
                    }
                }
            }
        }
        assert!(checked > 100, "only {checked} pairs compared");
        assert!(tables > 0, "no jump table was compared");
    }

    #[test]
    fn strings_are_found_by_any_offset_inside() {
        let b = b"one\0two words\0";
        assert_eq!(string_at(b, 0), Some((0, "one".into())));
        assert_eq!(string_at(b, 6), Some((4, "two words".into())));
        assert_eq!(string_at(b, 99), None);
        assert_eq!(string_at(b, -1), None);
    }

    /// A variable zero-filled in one compile (`.bss`) and initialised with
    /// zeros in the other (`-fno-zero-initialized-in-bss`) has one initial
    /// value; one given another value differs, either way round.
    #[test]
    fn zero_filled_is_the_same_value_as_zeros() {
        let dir = tempfile::tempdir().unwrap();
        let source = "int limit = VALUE;\nint get(void) { return limit; }\n";
        let compile = |name: &str, value: &str, flags: &[&str]| {
            let text = source.replace("VALUE", value);
            let path = relive_testkit::compile_object(dir.path(), name, &text, flags);
            ObjectFile::open(path).unwrap()
        };
        let bss = compile("bss", "0", &["-O2"]);
        let data = compile("data", "0", &["-O2", "-fno-zero-initialized-in-bss"]);
        let other = compile("other", "4096", &["-O2"]);
        let changed = |a: &ObjectFile, b: &ObjectFile| -> Vec<String> {
            diff(a, b).changed.into_iter().map(|c| c.name).collect()
        };
        assert_eq!(changed(&bss, &data), Vec::<String>::new());
        assert_eq!(changed(&data, &bss), Vec::<String>::new());
        assert_eq!(changed(&other, &bss), ["limit"]);
        assert_eq!(changed(&bss, &other), ["limit"]);
    }
}
