//! Functions whose label addresses the program keeps.
//!
//! GCC's computed goto (`&&label`, `goto *p`) lets a function put the
//! addresses of places inside its own body into data: a table of labels
//! an interpreter dispatches through, a variable initialised with one.
//! The program may have stored those addresses anywhere since (a regex
//! engine compiles its patterns into arrays of them). A patch places the
//! function's new code elsewhere, so every stored address still points
//! into the old body, and a jump through one runs the old code on the new
//! code's stack frame. A trial on Oniguruma: `match_at`'s `FinishCode`
//! kept the old label, the program died of SIGSEGV right after "patched",
//! and patterns compiled before the patch kept running the old code.

use crate::objfile::{Kind, ObjectFile, Target};

/// For each function of `obj` named in `names` whose label addresses a
/// variable of `obj` holds (writable data: the program keeps its copy,
/// with the old addresses), or whose code computes them to store, the
/// function and those places. Constant
/// tables of labels (an interpreter's dispatch table, Lua's `disptab`)
/// are copied with the new code, which reads its own; jump tables are the
/// compiler's unnamed constants.
pub fn taken(obj: &ObjectFile, names: &[&str]) -> Vec<(String, Vec<String>)> {
    // Every place in a section that a variable holds, by section: one
    // pass over the data, not one per function (a patch of every function
    // of a large unit asks about thousands).
    let mut held: foldhash::HashMap<usize, Vec<(u64, usize)>> = foldhash::HashMap::default();
    for (k, d) in obj.symbols.iter().enumerate() {
        if d.kind != Kind::Object || !obj.section(d.section).is_some_and(|s| s.loaded && s.state()) {
            continue;
        }
        for r in &d.relocs {
            let place = match &r.target {
                Target::Section { section, offset } => offset.checked_add(r.addend).map(|p| (*section, p)),
                Target::Defined(j) => obj
                    .symbols
                    .get(*j)
                    .and_then(|t| (t.offset as i64).checked_add(r.addend).map(|p| (t.section, p))),
                Target::Undefined(_) => None,
            };
            if let Some((section, p)) = place.filter(|&(_, p)| p >= 0) {
                held.entry(section).or_default().push((p as u64, k));
            }
        }
    }
    let wanted: foldhash::HashSet<&str> = names.iter().copied().collect();
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for f in obj
        .symbols
        .iter()
        .filter(|s| s.kind == Kind::Function && wanted.contains(s.name.as_str()))
    {
        let body = f.offset + 1..f.offset + f.size;
        let mut holders: Vec<String> = held
            .get(&f.section)
            .into_iter()
            .flatten()
            .filter(|(p, _)| body.contains(p))
            .map(|&(_, k)| crate::names::readable(&obj.symbols[k].name))
            .collect();
        holders.dedup();
        if code_takes_own_labels(f) {
            holders.push("the code itself".to_string());
        }
        if !holders.is_empty() {
            out.push((f.name.clone(), holders));
        }
    }
    out
}

/// Whether `f`'s code computes the address of a place inside its own body
/// (`lea label(%rip)`: `&&label` as a value, to be stored; a dispatch
/// through a constant table loads from the table instead). Fields the
/// object relocates point elsewhere.
fn code_takes_own_labels(f: &crate::objfile::Symbol) -> bool {
    let Some(bytes) = &f.bytes else { return false };
    // Decoded when the object was read; decoded here otherwise.
    let decoded = match &f.decoded {
        Some(d) => d.clone(),
        None => std::sync::Arc::new(crate::code::decode(bytes)),
    };
    decoded.pc_relative.iter().any(|p| {
        !p.branch
            && p.size == 4
            && p.target > 0
            && (p.target as u64) < f.size
            && !f.relocs.iter().any(|r| r.offset == p.field)
    })
}

/// The refusal for functions whose label addresses the program keeps
/// ([`taken`]), if any.
pub fn refusal(taken: &[(String, Vec<String>)]) -> Option<String> {
    let (function, holders) = taken.first()?;
    let function = crate::names::readable(function);
    Some(format!(
        "{function} takes the addresses of its own labels (computed goto, `&&label`: in {}), which the program may have stored anywhere since (data it built from them, a compiled program's instructions); its new code's labels are elsewhere, so a stored address would jump into the old code's body on the new code's stack frame: restart the program to change {function}",
        holders.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `obj` compiled from `source` with gcc `-O2`.
    fn compiled(source: &str) -> ObjectFile {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("t.c"), source).unwrap();
        let out = std::process::Command::new("gcc")
            .args(["-O2", "-c", "t.c", "-o", "t.o"])
            .current_dir(dir.path())
            .output()
            .expect("gcc is needed (.ci/run installs it)");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        ObjectFile::open(dir.path().join("t.o")).unwrap()
    }

    #[test]
    fn label_tables_are_found_and_jump_tables_are_not() {
        let obj = compiled(
            "void *exported;\n\
             int run(const unsigned char *op) {\n\
             static const void *const labels[] = { &&add, &&done };\n\
             static struct { const void *at; } finish[] = { { &&done } };\n\
             int acc = 0;\n\
             exported = finish;\n\
             goto *labels[*op];\n\
             add: acc++; op++; goto *labels[*op];\n\
             done: return acc; }\n\
             int table(const unsigned char *op) {\n\
             static const void *const labels[] = { &&add, &&done };\n\
             int acc = 0;\n\
             goto *labels[*op];\n\
             add: acc++; op++; goto *labels[*op];\n\
             done: return acc; }\n\
             int pick(int k, int x) { switch (k) { case 0: return x + 1; case 1: return x * 7; case 2: return x - 3;\n\
             case 3: return x ^ 5; case 4: return x << 2; case 5: return x / 9; default: return 0; } }\n",
        );
        // `run` keeps a label in a variable (`finish`, as Oniguruma's
        // `FinishCode`), which it gives out.
        let found = taken(&obj, &["run", "table", "pick"]);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].0, "run");
        assert!(found[0].1.iter().any(|h| h.starts_with("finish")), "{found:?}");
        assert!(refusal(&found).is_some_and(|r| r.contains("run takes the addresses of its own labels")));
        // A constant table of labels, and a switch's jump table: copied
        // with the new code.
        assert!(refusal(&taken(&obj, &["table", "pick"])).is_none());
    }
}
