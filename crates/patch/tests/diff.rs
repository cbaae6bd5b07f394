//! Object diff on real gcc output: pairs of compiles of small C files, at
//! -O0 and -O2, with and without -ffunction-sections.

use relive_patch::diff::Diff;
use relive_patch::objfile::Kind;
use relive_patch::{ObjectFile, PatchError};
use relive_testkit::compile_object;

const FLAG_SETS: [&[&str]; 4] = [
    &["-O0"],
    &["-O2"],
    &["-O0", "-ffunction-sections", "-fdata-sections"],
    &["-O2", "-ffunction-sections", "-fdata-sections"],
];

/// The diff of `old` and `new`, checked to be the same with its
/// comparisons shared between two threads (as a large unit's are).
fn diff(old: &ObjectFile, new: &ObjectFile) -> Diff {
    let alone = relive_patch::diff::diff_shared(old, new, false);
    let shared = relive_patch::diff::diff_shared(old, new, true);
    assert_eq!(format!("{alone:?}"), format!("{shared:?}"));
    alone
}

fn objects(old: &str, new: &str, flags: &[&str]) -> (ObjectFile, ObjectFile) {
    let dir = tempfile::tempdir().unwrap();
    let a = compile_object(dir.path(), "old", old, flags);
    let b = compile_object(dir.path(), "new", new, flags);
    (ObjectFile::open(a).unwrap(), ObjectFile::open(b).unwrap())
}

fn run(old: &str, new: &str, flags: &[&str]) -> Diff {
    let (a, b) = objects(old, new, flags);
    diff(&a, &b)
}

fn changed(d: &Diff) -> Vec<&str> {
    let mut v: Vec<&str> = d.changed.iter().map(|c| c.name.as_str()).collect();
    v.sort();
    v
}

const BASE: &str = r#"
#include <stdio.h>
int counter = 1;
static int hidden = 2;
int table[4] = {1, 2, 3, 4};
int get(void) { static int n = 0; return ++n + counter + hidden; }
int twice(int x) { return 2 * x + table[1]; }
__attribute__((noinline)) int say(int x) { printf("hello %d\n", x); return x; }
"#;

#[test]
fn the_same_source_has_no_changes() {
    for flags in FLAG_SETS {
        let d = run(BASE, BASE, flags);
        assert!(
            d.changed.is_empty() && d.added.is_empty() && d.removed.is_empty(),
            "{flags:?}: {d:?}"
        );
        assert!(d.unchanged >= 6, "{flags:?}: {d:?}");
    }
}

#[test]
fn a_body_change_is_that_function_only() {
    let new = BASE.replace("2 * x", "3 * x");
    for flags in FLAG_SETS {
        let d = run(BASE, &new, flags);
        assert_eq!(changed(&d), ["twice"], "{flags:?}: {d:?}");
        assert_eq!(d.changed[0].kind, Kind::Function);
        assert!(d.changed[0].reason.starts_with("code"), "{:?}", d.changed[0]);
        assert!(!d.changed[0].layout);
    }
}

#[test]
fn a_changed_string_literal_changes_its_user() {
    let new = BASE.replace("hello", "HELLO");
    for flags in FLAG_SETS {
        let d = run(BASE, &new, flags);
        assert_eq!(changed(&d), ["say"], "{flags:?}: {d:?}");
    }
    let d = run(BASE, &new, FLAG_SETS[3]);
    assert!(d.changed[0].reason.contains("\"HELLO %d\\n\""), "{:?}", d.changed[0]);
}

/// A literal's last characters, when another literal the code uses follows
/// it directly (gcc -O0 keeps literals in plain `.rodata`, one after the
/// other): issue 18 defect 4, where zlib's `"invalid block type"` ->
/// `"invalid block tYpe"` was "unchanged" because the section's copy of
/// the code's relocations lacked their PC bias and so seemed to point four
/// bytes before the next literal.
#[test]
fn a_change_in_the_last_bytes_of_a_literal_followed_by_another() {
    let base = r#"
const char *msg;
__attribute__((noinline)) void pick(int mode) {
    switch (mode) {
    case 0: msg = "invalid block type"; break;
    case 1: msg = "invalid stored block lengths"; break;
    case 2: msg = "too many length or distance symbols"; break;
    case 3: msg = "invalid code lengths set"; break;
    case 4: msg = "invalid bit length repeat"; break;
    default: msg = "unknown"; break;
    }
}
"#;
    for (from, to) in [("block type\"", "block tYpe\""), ("block type\"", "block typE\"")] {
        let new = base.replace(from, to);
        for cc in ["gcc", "clang"] {
            for flags in FLAG_SETS
                .iter()
                .copied()
                .chain([&["-O0", "-fPIE"][..], &["-O0", "-fno-pie"][..]])
            {
                let dir = tempfile::tempdir().unwrap();
                let a = relive_testkit::compile_object_with(cc, dir.path(), "old", base, flags);
                let b = relive_testkit::compile_object_with(cc, dir.path(), "new", &new, flags);
                let d = diff(&ObjectFile::open(a).unwrap(), &ObjectFile::open(b).unwrap());
                assert_eq!(changed(&d), ["pick"], "{cc} {flags:?} {to}: {d:?}");
            }
        }
    }
}

/// Issue 18 defect 9: an edit of one function's literals moves what
/// follows them in the section (other literals, a switch's jump table, its
/// alignment padding); functions whose code and data are the same are not
/// changed by that shift.
#[test]
fn literals_shifted_by_an_edit_elsewhere_change_nothing_else() {
    let base = r#"
#include <stdio.h>
void f(int x) { printf("f says %d\n", x); }
void g(int x) { printf("g says %d %f\n", x, x * 2.5); }
void h(int x) {
    switch (x) {
    case 0: puts("zero"); break;
    case 1: puts("one"); break;
    case 2: puts("two"); break;
    case 3: puts("three"); break;
    case 4: puts("four"); break;
    default: puts("many");
    }
}
int k(int x) { static const int t[] = {1, 2, 3, 4, 5, 6, 7, 8}; return t[x & 7] + 3; }
"#;
    let edits = [
        base.replace("x);", "x); puts(\"an extra literal\");"),
        base.replace("f says", "f SAYS now"),
        base.replace("f says", "f"),
    ];
    for new in &edits {
        for cc in ["gcc", "clang"] {
            for flags in FLAG_SETS.iter().copied().chain([&["-O0", "-fPIE"][..], &["-Os"][..]]) {
                let dir = tempfile::tempdir().unwrap();
                let a = relive_testkit::compile_object_with(cc, dir.path(), "old", base, flags);
                let b = relive_testkit::compile_object_with(cc, dir.path(), "new", new, flags);
                let d = diff(&ObjectFile::open(a).unwrap(), &ObjectFile::open(b).unwrap());
                assert_eq!(changed(&d), ["f"], "{cc} {flags:?}: {d:?}");
            }
        }
    }
}

#[test]
fn added_and_removed_functions_and_data() {
    let new = BASE.replace("int twice(int x) { return 2 * x + table[1]; }", "")
        + "int added_fn(int x) { return x - 1; }\nint added_global = 42;\n";
    for flags in FLAG_SETS {
        let d = run(BASE, &new, flags);
        let added: Vec<(&str, Kind)> = d.added.iter().map(|e| (e.name.as_str(), e.kind)).collect();
        assert!(added.contains(&("added_fn", Kind::Function)), "{flags:?}: {d:?}");
        assert!(added.contains(&("added_global", Kind::Object)), "{flags:?}: {d:?}");
        assert_eq!(d.removed.len(), 1, "{flags:?}: {d:?}");
        assert_eq!(
            (d.removed[0].name.as_str(), d.removed[0].kind),
            ("twice", Kind::Function)
        );
    }
}

#[test]
fn a_global_that_grows_is_a_layout_change() {
    let new = BASE.replace("int table[4] = {1, 2, 3, 4};", "int table[8] = {1, 2, 3, 4};");
    for flags in FLAG_SETS {
        let d = run(BASE, &new, flags);
        let layout: Vec<&str> = d.layout_changes().map(|c| c.name.as_str()).collect();
        assert_eq!(layout, ["table"], "{flags:?}: {d:?}");
        assert!(d
            .changed
            .iter()
            .find(|c| c.name == "table")
            .unwrap()
            .reason
            .contains("16 -> 32"));
    }
    // A new initial value of the same size is not a layout change.
    let new = BASE.replace("int counter = 1;", "int counter = 7;");
    let d = run(BASE, &new, FLAG_SETS[1]);
    assert_eq!(changed(&d), ["counter"]);
    assert!(!d.changed[0].layout && d.changed[0].reason.starts_with("initial value"));
}

/// GCC numbers function-local statics per file (`n.0`, `n.1`); a new one
/// earlier in the file renumbers the rest, which must still match (by the
/// function that owns them).
#[test]
fn renumbered_local_statics_match_by_owner() {
    const OLD: &str = "int a(void) { static int n; return ++n; }\nint b(void) { static int n = 5; return n += 2; }\n";
    let new = format!("int z(void) {{ static int n = 9; return n--; }}\n{OLD}");
    for flags in FLAG_SETS {
        let (old_obj, new_obj) = objects(OLD, &new, flags);
        let names = |o: &ObjectFile| o.symbols.iter().filter(|s| s.name.starts_with("n.")).count();
        assert_eq!((names(&old_obj), names(&new_obj)), (2, 3), "{flags:?}");
        let d = diff(&old_obj, &new_obj);
        assert!(d.changed.is_empty(), "{flags:?}: {d:?}");
        let mut added: Vec<&str> = d.added.iter().map(|e| e.name.as_str()).collect();
        added.sort();
        assert_eq!(added.len(), 2, "{flags:?}: z and its static: {added:?}");
        assert!(added.contains(&"z") && added.iter().any(|n| n.starts_with("n.")));
    }
}

/// At -O2 GCC clones `scale` (`scale.constprop.0.isra.0`) and inlines
/// `helper` into `g`: a change to `use` leaves the clone matched and
/// unchanged; a change to `scale` changes the clone; a change to the inlined
/// `helper` changes `g`.
#[test]
fn clones_and_inlined_callers() {
    const SRC: &str = r#"
struct big { int a[16]; };
static __attribute__((noinline)) int scale(struct big *p, int k) { return p->a[3] * k; }
int use(int x) { struct big b = {0}; b.a[3] = x; return scale(&b, 3) + 1; }
static inline int helper(int x) { return x * 7; }
int g(int x) { return helper(x) + 1; }
"#;
    let (old, _) = objects(SRC, SRC, &["-O2"]);
    let clone = old
        .symbols
        .iter()
        .find(|s| s.name.starts_with("scale."))
        .expect("gcc -O2 clones scale")
        .name
        .clone();
    assert!(clone.contains(".isra") || clone.contains(".constprop"), "{clone}");

    let d = run(SRC, &SRC.replace("+ 1; }\nstatic", "+ 2; }\nstatic"), &["-O2"]);
    assert_eq!(changed(&d), ["use"], "{d:?}");
    let d = run(SRC, &SRC.replace("p->a[3] * k", "p->a[3] * k + 5"), &["-O2"]);
    assert!(changed(&d).contains(&clone.as_str()), "{d:?}");
    let d = run(SRC, &SRC.replace("x * 7", "x * 9"), &["-O2"]);
    assert_eq!(changed(&d), ["g"], "{d:?}");
}

#[test]
fn an_executable_is_not_an_object() {
    let dir = tempfile::tempdir().unwrap();
    let exe = relive_testkit::compile(dir.path(), "prog", "int main(void) { return 0; }", &[]);
    match ObjectFile::open(&exe) {
        Err(PatchError::NotObject { reason, .. }) => assert!(reason.contains("-c"), "{reason}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        ObjectFile::open(dir.path().join("missing.o")),
        Err(PatchError::Io { .. })
    ));
    assert!(matches!(
        ObjectFile::parse("junk.o", b"\x7fELF junk"),
        Err(PatchError::NotObject { .. })
    ));
}

/// `open_pair` reads the base on a second thread: what it gives must be
/// what reading each alone gives, and an error must name the file it is
/// about, the new object's first when both are bad.
#[test]
fn a_pair_read_side_by_side_is_each_read_alone() {
    let dir = tempfile::tempdir().unwrap();
    let old = compile_object(
        dir.path(),
        "old",
        "int f(int x) { return x + 1; }\nint g(void) { return 2; }\n",
        &["-O2", "-g"],
    );
    let new = compile_object(
        dir.path(),
        "new",
        "int f(int x) { return x + 3; }\nint g(void) { return 2; }\n",
        &["-O2", "-g"],
    );
    let (pair_new, pair_base) = ObjectFile::open_pair(&new, Some(&old)).unwrap();
    let pair_base = pair_base.expect("a base was given");
    let summary = |o: &ObjectFile| -> Vec<(String, Option<Vec<u8>>, usize)> {
        o.symbols
            .iter()
            .map(|s| (s.name.clone(), s.bytes.as_deref().map(<[u8]>::to_vec), s.relocs.len()))
            .collect()
    };
    assert_eq!(summary(&pair_new), summary(&ObjectFile::open(&new).unwrap()));
    assert_eq!(summary(&pair_base), summary(&ObjectFile::open(&old).unwrap()));
    assert_eq!(changed(&diff(&pair_base, &pair_new)), ["f"]);
    assert!(ObjectFile::open_pair(&new, None).unwrap().1.is_none());

    let missing = dir.path().join("missing.o");
    let not_object = dir.path().join("text.o");
    std::fs::write(&not_object, "not an object").unwrap();
    let error = |new: &std::path::Path, base: &std::path::Path| match ObjectFile::open_pair(new, Some(base)) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("{} with {} was read", new.display(), base.display()),
    };
    assert!(error(&new, &missing).contains("missing.o"));
    assert!(error(&missing, &old).contains("missing.o"));
    let both = error(&not_object, &missing);
    assert!(both.contains("text.o") && !both.contains("missing.o"), "{both}");
}

/// What reading gave one object, in the form two readings are compared:
/// every symbol's relocations (with their PC biases and the ones decoding
/// adds), its decoding, why it cannot move, its short exits, and every
/// section's relocations.
fn reading(obj: &ObjectFile) -> String {
    let mut out = String::new();
    for s in &obj.symbols {
        out += &format!(
            "{} {:?} {:?} {:?} {:?}\n",
            s.name,
            s.relocs,
            s.decoded.as_deref(),
            s.problem,
            s.short_exits
        );
    }
    for s in obj.sections.iter().flatten() {
        out += &format!("{} {:?}\n", s.name, s.relocs);
    }
    out
}

/// A pair of objects is read together (each function both have alike is
/// decoded once) and a save is read against the object that runs (its
/// decoding taken from there): both must read each object exactly as
/// reading it alone does, with functions alike in both, alike within one
/// object, and calls between static functions the assembler resolved
/// (relocations only decoding finds).
#[test]
fn reading_a_pair_or_against_a_base_reads_each_object_as_alone() {
    let source = r#"
static int helper(int x) { return x * 7 + 1; }
static int twin_a(int x) { return x ^ 0x55; }
static int twin_b(int x) { return x ^ 0x55; }
int same(int x) { return helper(x) + twin_a(x) + twin_b(x); }
int edited(int x) { return helper(x) * 2; }
int (*pick(int k))(int) { return k ? twin_a : twin_b; }
"#;
    let edited = source.replace("helper(x) * 2", "helper(x) * 3 + 5");
    for flags in FLAG_SETS {
        let dir = tempfile::tempdir().unwrap();
        let old_path = compile_object(dir.path(), "old", source, flags);
        let new_path = compile_object(dir.path(), "new", &edited, flags);
        let (old_alone, new_alone) = (
            ObjectFile::open(&old_path).unwrap(),
            ObjectFile::open(&new_path).unwrap(),
        );
        let (new_paired, old_paired) = ObjectFile::open_pair(&new_path, Some(old_path.as_path())).unwrap();
        let old_paired = old_paired.expect("the base was read");
        let new_like = ObjectFile::open_like(&new_path, Some(&old_alone)).unwrap();
        assert_eq!(
            reading(&old_paired),
            reading(&old_alone),
            "{flags:?}: the base read in a pair"
        );
        assert_eq!(
            reading(&new_paired),
            reading(&new_alone),
            "{flags:?}: the new object read in a pair"
        );
        assert_eq!(
            reading(&new_like),
            reading(&new_alone),
            "{flags:?}: the new object read against the base"
        );
        assert!(
            new_alone.symbols.iter().filter(|s| s.decoded.is_some()).count() >= 5,
            "{flags:?}: the functions were decoded"
        );
        assert_eq!(changed(&diff(&old_paired, &new_paired)), ["edited"], "{flags:?}");
    }
}

/// An edit of `a` moves the sign mask `floor` and `ceil` use from the
/// 16-byte constant pool to the 8-byte one (the same bytes): only `a`
/// changed. Lua's math library listed its unedited functions as changed
/// (a user's trial).
#[test]
fn a_constant_moved_between_pools_is_no_change() {
    let old = "#include <math.h>\ndouble a(double x) { return fabs(x); }\ndouble b(double x) { return floor(x); }\ndouble c(double x) { return ceil(x); }\n";
    let new = old.replace("return fabs(x);", "return -fabs(x);");
    let d = run(old, &new, &["-O2"]);
    assert_eq!(changed(&d), ["a"], "{d:?}");
}

/// A parameter's type through a chain of typedefs reads as its name and
/// what it finally names (`uint32_t (= __uint32_t (= unsigned int))` in
/// a QuickJS trial's messages read badly).
#[test]
fn a_typedef_chain_reads_as_its_name_and_what_it_names() {
    let (_, new) = objects(
        "int f(int x) { return x; }",
        "typedef unsigned int inner_t;\ntypedef inner_t outer_t;\nint f(outer_t *p) { return (int)*p; }",
        &["-O2", "-g"],
    );
    let signatures = relive_patch::signature::signatures(&new, &["f"]);
    assert_eq!(
        signatures.get("f").map(String::as_str),
        Some("int(outer_t (= unsigned int)* p)")
    );
}

/// A constant pointer reads as one (`int* const p`), not as a pointer
/// to a constant (`const int* p`), which it read as (a bzip2 re-check).
#[test]
fn a_constant_pointer_reads_as_one() {
    let (_, new) = objects(
        "int f(int x) { return x; }",
        "int f(int *const p, const int *q) { return *p + *q; }",
        &["-O2", "-g"],
    );
    let signatures = relive_patch::signature::signatures(&new, &["f"]);
    assert_eq!(
        signatures.get("f").map(String::as_str),
        Some("int(int* const p, const int* q)")
    );
}

/// The parameters GCC kept for a clone, from its DWARF: `calc(x, y, z)`
/// is `calc.constprop.0` in both compiles, keeping `(x, y)` when its body
/// uses `y` and `(x, z)` when it uses `z` (DWARF registers 5 and 4:
/// `rdi`, `rsi`).
#[test]
fn a_clones_kept_parameters_are_read_from_its_dwarf() {
    let source = |body: &str| {
        format!(
            "static volatile int s1 = 3, s2 = 5, s3 = 7;\n__attribute__((noinline)) static int calc(int x, int y, int z) {{ return {body}; }}\nint run(void) {{ return calc(s1, s2, s3); }}\n"
        )
    };
    let (old, new) = objects(&source("x * 100 + y"), &source("x * 100 + z * 2"), &["-O2", "-g"]);
    let kept = |o: &ObjectFile| {
        let i = o.function_named("calc.constprop.0").expect("GCC's clone");
        relive_patch::clone_parameters::kept(o, i)
    };
    // In DWARF register order.
    assert_eq!(kept(&old), Some(vec![("y".to_string(), 4), ("x".to_string(), 5)]));
    assert_eq!(kept(&new), Some(vec![("z".to_string(), 4), ("x".to_string(), 5)]));
}

/// A clone whose code changed only in immediates (line numbers an edit
/// above it moved) reads the registers it read: it is no clone whose
/// parameters may have changed with its caller, even where no DWARF says
/// which it keeps (a QuickJS trial: deleting a comment line was refused
/// for `JS_AtomGetStrRT.part.0.constprop.0`). One whose code changed is.
#[test]
fn a_clone_changed_only_in_immediates_keeps_its_parameters() {
    let source = |above: &str, body: &str| {
        format!(
            "{above}extern int printf(const char *, ...);\nstatic volatile int s1 = 3, s2 = 5, s3 = 7;\n__attribute__((noinline)) static int calc(int x, int y, int z) {{ if (x < 0) printf(\"%d\", __LINE__); return {body}; }}\nint run(void) {{ if (s1 < 0) printf(\"%d\", __LINE__); return calc(s1, s2, s3); }}\n"
        )
    };
    let changed = |old: &str, new: &str| {
        let (old, new) = objects(old, new, &["-O2"]);
        let functions: Vec<usize> = ["calc.constprop.0", "run"]
            .iter()
            .map(|n| new.function_named(n).expect(n))
            .collect();
        relive_patch::running_callers::clones_changed_with_callers(&new, Some(&old), &functions)
    };
    let old = source("", "x * 100 + y");
    assert_eq!(changed(&old, &source("\n\n", "x * 100 + y")), Vec::<String>::new());
    assert_eq!(changed(&old, &source("", "x * 100 + z * 2")), ["calc.constprop.0"]);
}
