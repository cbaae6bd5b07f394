//! Hot reload through the registry, with modules compiled from C by gcc
//! (and clang):
//! stable entries taken before a reload run the new code, state survives,
//! versions move, imports bind across modules, and threads calling in a
//! loop during 1,000 reloads only ever see the old or the new result.

mod common;
#[allow(unused_imports)]
use common::{RunEntry, RunExport};

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use relive_smf::{pack, DataOutcome, Module, ModuleRegistry, RegistryError, ReloadOptions};

/// Compiles each (name, C text) with gcc `flags` and packs them into one
/// module, read back through the file format.
fn module(sources: &[(&str, &str)], flags: &[&str]) -> Module<'static> {
    module_with("gcc", sources, flags)
}

/// [`module`] compiled by `cc`.
fn module_with(cc: &str, sources: &[(&str, &str)], flags: &[&str]) -> Module<'static> {
    let dir = tempfile::tempdir().unwrap();
    let inputs: Vec<(String, Vec<u8>)> = sources
        .iter()
        .map(|(name, text)| {
            let path = relive_testkit::compile_object_with(cc, dir.path(), name, text, flags);
            (name.to_string(), std::fs::read(path).unwrap())
        })
        .collect();
    Module::parse(&pack(&inputs, None).unwrap().to_bytes())
        .unwrap()
        .into_owned()
}

const COUNTER_V1: &str = r#"
long counter = 10;
static long calls;
long bump(long x) { calls++; counter += x; return counter; }
long calls_made(void) { return calls; }
long which(void) { return 1; }
long via_pointer(long x) { long (*f)(long) = bump; return f(x); }
"#;
// Same data layout, different code.
const COUNTER_V2: &str = r#"
long counter = 10;
static long calls;
long bump(long x) { calls++; counter += 100 * x; return counter; }
long calls_made(void) { return calls; }
long which(void) { return 2; }
long via_pointer(long x) { long (*f)(long) = bump; return f(x) + 1; }
"#;
// A new global: the data layout changes.
const COUNTER_V3: &str = r#"
long counter = 10;
long extra = 7;
static long calls;
long bump(long x) { calls++; counter += x; return counter + extra; }
long calls_made(void) { return calls; }
long which(void) { return 3; }
"#;

#[test]
fn a_pointer_taken_before_a_reload_runs_the_new_code_and_globals_survive() {
    for (cc, flags) in relive_testkit::pic_builds() {
        let module = |sources: &[(&str, &str)], flags: &[&str]| module_with(cc, sources, flags);
        let what = format!("{cc} {flags:?}");
        let mut registry = ModuleRegistry::new();
        registry.load("counter", &module(&[("c", COUNTER_V1)], flags)).unwrap();
        let which = registry.get_function("counter", "which").unwrap();
        let bump = registry.get_function("counter", "bump").unwrap();
        let via_pointer = registry.get_function("counter", "via_pointer").unwrap();
        assert_eq!(which.run(&[]), 1);
        assert_eq!(bump.run(&[5]), 15);
        assert_eq!(via_pointer.run(&[1]), 16);
        assert_eq!(registry.version("counter"), Some(1));
        // The module's own function pointer is the stable entry too.
        assert_eq!(registry.resolve("bump"), Some(bump.addr()));

        let report = registry
            .reload(
                "counter",
                &module(&[("c", COUNTER_V2)], flags),
                ReloadOptions::default(),
            )
            .unwrap();
        assert_eq!(report.version, 2, "{what}");
        assert_eq!(report.data, DataOutcome::Shared, "{what}");
        assert_eq!(registry.version("counter"), Some(2));
        assert_eq!(which.run(&[]), 2, "{what}: the old pointer runs the new code");
        assert_eq!(bump.run(&[1]), 116, "{what}: counter kept its value (16)");
        assert_eq!(
            via_pointer.run(&[1]),
            217,
            "{what}: a pointer inside the module follows too"
        );
        let calls = registry.get_function("counter", "calls_made").unwrap();
        assert_eq!(calls.run(&[]), 4, "{what}: the static kept counting");
        assert_eq!(registry.retired(), 1, "the old code stays mapped");

        // Layout change: values copied by name and size.
        let report = registry
            .reload(
                "counter",
                &module(&[("c", COUNTER_V3)], flags),
                ReloadOptions::default(),
            )
            .unwrap();
        assert_eq!(report.version, 3);
        let DataOutcome::Copied { kept, .. } = &report.data else {
            panic!("{what}: {:?}", report.data)
        };
        assert!(kept.contains(&"counter".to_string()), "{kept:?}");
        assert_eq!(report.removed, vec!["via_pointer".to_string()]);
        assert_eq!(which.run(&[]), 3);
        assert_eq!(
            bump.run(&[1]),
            217 + 7,
            "{what}: counter copied (216), extra from the file"
        );
        assert!(registry.get_function("counter", "via_pointer").is_none());
        let counter = registry.module("counter").unwrap().read_object("counter").unwrap();
        assert_eq!(counter, 217u64.to_le_bytes());

        // Opting out: everything from the file.
        let report = registry
            .reload(
                "counter",
                &module(&[("c", COUNTER_V1)], flags),
                ReloadOptions { keep_data: false },
            )
            .unwrap();
        assert_eq!(report.data, DataOutcome::Fresh);
        assert_eq!(report.added, vec!["via_pointer".to_string()]);
        assert_eq!(bump.run(&[1]), 11, "{what}: counter back to its initial 10");
        assert_eq!(via_pointer.run(&[1]), 12, "{what}: the earlier handle works again");
        assert_eq!(registry.free_retired(), 3);
        assert_eq!(which.run(&[]), 1, "the current version survives freeing the old ones");
    }
}

const LIB_V1: &str = "long base = 1000;\nlong twice(long x) { return 2 * x + base; }\n";
const LIB_V2: &str = "long base = 1000;\nlong twice(long x) { return 3 * x + base; }\n";
const APP: &str = r#"
#include <string.h>
extern long twice(long);
extern long base;
long use(const char *s) { return twice((long)strlen(s)); }
long read_base(void) { return base; }
"#;

#[test]
fn imports_bind_to_other_modules_then_the_host() {
    let flags = &["-O2", "-fPIC"];
    let mut registry = ModuleRegistry::new();
    let app = module(&[("app", APP)], flags);
    match registry.load("app", &app) {
        Err(RegistryError::Load { module, cause: source }) => {
            assert_eq!(module, "app");
            let message = source.to_string();
            assert!(message.contains("twice") || message.contains("base"), "{message}");
        }
        other => panic!("app without its library: {other:?}"),
    }
    registry.load("lib", &module(&[("lib", LIB_V1)], flags)).unwrap();
    registry.load("app", &app).unwrap();
    assert_eq!(registry.names(), vec!["lib", "app"]);
    let text = std::ffi::CString::new("four").unwrap();
    let use_fn = registry.get_function("app", "use").unwrap();
    assert_eq!(
        use_fn.run(&[text.as_ptr() as u64]),
        1008,
        "strlen from the host, twice from lib"
    );
    assert_eq!(registry.get_function("app", "read_base").unwrap().run(&[]), 1000);

    // Reloading the library reaches the importing module's calls.
    registry
        .reload("lib", &module(&[("lib", LIB_V2)], flags), ReloadOptions::default())
        .unwrap();
    assert_eq!(use_fn.run(&[text.as_ptr() as u64]), 1012);
    assert_eq!(registry.version("app"), Some(1));

    // A library whose importer needs a symbol it drops, or that is still
    // imported, is refused and left as it was.
    let without = module(&[("lib", "long base = 1;\nlong other(long x) { return x; }\n")], flags);
    let err = registry.reload("lib", &without, ReloadOptions::default()).unwrap_err();
    assert!(
        matches!(&err, RegistryError::StillImported { symbol, by, .. } if symbol == "twice" && by == "app"),
        "{err}"
    );
    let err = registry.unload("lib").unwrap_err();
    assert!(matches!(err, RegistryError::StillImported { .. }), "{err}");
    assert_eq!(use_fn.run(&[text.as_ptr() as u64]), 1012);
    assert_eq!(registry.version("lib"), Some(2));

    registry.unload("app").unwrap();
    registry.unload("lib").unwrap();
    assert!(registry.names().is_empty());
    assert!(registry.get_function("app", "use").is_none());
    assert!(matches!(registry.unload("lib"), Err(RegistryError::NotLoaded(_))));
}

const LEAF_V1: &str = "long hits;\nlong compute(long x) { hits++; return 3 * x + 1; }\n";
const LEAF_V2: &str = "long hits;\nlong compute(long x) { hits++; return 5 * x + 2; }\n";

#[test]
fn threads_calling_through_entries_during_1000_reloads_see_old_or_new() {
    let flags = &["-O2", "-fPIC"];
    let versions = [module(&[("leaf", LEAF_V1)], flags), module(&[("leaf", LEAF_V2)], flags)];
    let mut registry = ModuleRegistry::new();
    registry.load("leaf", &versions[0]).unwrap();
    let compute = registry.get_function("leaf", "compute").unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let started = Arc::new(AtomicU64::new(0));
    // Whether any worker got the old, the new result.
    let seen = Arc::new([AtomicBool::new(false), AtomicBool::new(false)]);
    const THREADS: usize = 3;
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let (compute, stop, started, seen) = (compute.clone(), stop.clone(), started.clone(), seen.clone());
            std::thread::spawn(move || {
                let (mut old, mut new, mut wrong) = (0u64, 0u64, Vec::new());
                let mut x = t as u64;
                started.fetch_add(1, Ordering::SeqCst);
                while !stop.load(Ordering::Relaxed) {
                    x = (x + 7) % 100_000;
                    let version = match compute.run(&[x]) {
                        r if r == 3 * x + 1 => {
                            old += 1;
                            0
                        }
                        r if r == 5 * x + 2 => {
                            new += 1;
                            1
                        }
                        r => {
                            wrong.push((x, r));
                            continue;
                        }
                    };
                    if !seen[version].load(Ordering::Relaxed) {
                        seen[version].store(true, Ordering::Relaxed);
                    }
                }
                (old, new, wrong)
            })
        })
        .collect();
    while started.load(Ordering::SeqCst) < THREADS as u64 {
        std::thread::yield_now();
    }
    // At least 1,000 reloads, in pairs (so they end on the first version),
    // and on until the workers got both results: on a busy machine they
    // may not run at all during the first 1,000 (about 20 ms).
    let deadline = std::time::Instant::now() + relive_testkit::PATIENCE;
    let mut reloads = 0;
    while reloads < 1000 || (!seen.iter().all(|s| s.load(Ordering::Relaxed)) && std::time::Instant::now() < deadline) {
        for version in [&versions[1], &versions[0]] {
            let report = registry.reload("leaf", version, ReloadOptions::default()).unwrap();
            assert_eq!(report.data, DataOutcome::Shared);
        }
        reloads += 2;
    }
    stop.store(true, Ordering::SeqCst);
    let (mut old, mut new) = (0, 0);
    for w in workers {
        let (o, n, wrong) = w.join().expect("no worker crashed");
        assert!(wrong.is_empty(), "results neither old nor new: {wrong:?}");
        old += o;
        new += n;
    }
    assert!(old > 0 && new > 0, "both versions ran: old {old}, new {new}");
    assert_eq!(registry.version("leaf"), Some(1 + reloads));
    let hits = u64::from_le_bytes(
        registry
            .module("leaf")
            .unwrap()
            .read_object("hits")
            .unwrap()
            .try_into()
            .unwrap(),
    );
    assert!(hits > 0, "the shared counter saw the calls");
    assert_eq!(registry.free_retired() as u64, reloads);
    assert_eq!(compute.run(&[1]), 4, "pairs of reloads end on the first version");
}

#[test]
fn dropping_the_registry_makes_old_handles_trap_not_run_freed_code() {
    let mut registry = ModuleRegistry::new();
    registry
        .load("leaf", &module(&[("leaf", LEAF_V1)], &["-O0", "-fPIC"]))
        .unwrap();
    let compute = registry.get_function("leaf", "compute").unwrap();
    let code = registry.module("leaf").unwrap().function("compute").unwrap();
    assert_eq!(compute.run(&[2]), 7);
    assert_eq!(compute.target(), code);
    assert!(!compute.traps());
    drop(registry);
    // The trampoline page outlives the registry (the handle holds it), but
    // the cell no longer names the unmapped code: a call would stop with
    // SIGILL at the trap.
    assert!(compute.traps());
    assert_ne!(compute.target(), code);
}

#[test]
fn module_files_are_read_whole_whatever_their_size() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("counter.smf");
    let write = |text: &str| {
        let bytes = module(&[("c", text)], &["-O2", "-fPIC"]).to_bytes();
        std::fs::write(&path, &bytes).unwrap();
        bytes.len()
    };
    // 32 KiB of read-only data: the file grows several times over, then
    // shrinks back.
    let big = format!(
        "{COUNTER_V2}static const long big[4096] = {{ [0 ... 4095] = 5 }};\nlong big_at(long i) {{ return big[i & 4095]; }}\n"
    );
    let small = write(COUNTER_V1);
    let mut registry = ModuleRegistry::new();
    registry.load_file("counter", &path).unwrap();
    let which = registry.get_function("counter", "which").unwrap();
    assert_eq!(which.run(&[]), 1);

    assert!(write(&big) > 4 * small);
    registry
        .reload_file("counter", &path, ReloadOptions::default())
        .unwrap();
    assert_eq!(which.run(&[]), 2);
    assert_eq!(registry.get_function("counter", "big_at").unwrap().run(&[7]), 5);

    write(COUNTER_V3);
    registry
        .reload_file("counter", &path, ReloadOptions::default())
        .unwrap();
    assert_eq!(which.run(&[]), 3, "a shorter file after a longer one");

    // A missing file is named, changes nothing, and the next read works.
    let missing = dir.path().join("missing.smf");
    let err = registry
        .reload_file("counter", &missing, ReloadOptions::default())
        .unwrap_err();
    assert!(matches!(err, RegistryError::Read { .. }), "{err}");
    assert!(err.to_string().contains("missing.smf"), "{err}");
    assert_eq!(registry.version("counter"), Some(3));
    write(COUNTER_V1);
    registry
        .reload_file("counter", &path, ReloadOptions::default())
        .unwrap();
    assert_eq!(which.run(&[]), 1);
}

/// One `static` function named `scale` in each of two objects of a
/// module, multiplying by `first` and `second`.
fn two_scales(first: i64, second: i64) -> Module<'static> {
    let source = |export: &str, factor: i64| {
        format!(
            "__attribute__((noinline)) static long scale(long x) {{ return x * {factor}; }}\n\
             long {export}(long x) {{ return scale(x) + 1; }}\n"
        )
    };
    module(
        &[("a", &source("first", first)), ("b", &source("second", second))],
        &["-O2", "-fPIC"],
    )
}

/// A layout change names the objects whose size changed: their values
/// start from the file's (they were reset with nothing said), while the
/// others are copied.
#[test]
fn a_reload_names_the_objects_whose_size_changed() {
    let v1 = module(
        &[(
            "c",
            "int count = 1;\nlong total = 10;\nlong bump(long x) { count += x; total += x; return count + total; }\n",
        )],
        &["-O2", "-fPIC"],
    );
    let v2 = module(
        &[("c", "long count = 1;\nlong total = 10;\nlong added = 3;\nlong bump(long x) { count += x; total += x; return count + total + added; }\n")],
        &["-O2", "-fPIC"],
    );
    let mut registry = ModuleRegistry::new();
    registry.load("m", &v1).unwrap();
    let bump = registry.get_function("m", "bump").unwrap();
    assert_eq!(bump.run(&[5]), 6 + 15);
    let report = registry.reload("m", &v2, ReloadOptions::default()).unwrap();
    let DataOutcome::Copied { kept, reset } = &report.data else {
        panic!("{:?}", report.data)
    };
    assert_eq!(kept, &["total"]);
    assert_eq!(reset, &["count"]);
    // count from the file (1), total kept (15), added from the file (3).
    assert_eq!(bump.run(&[1]), 2 + 16 + 3);
}

/// Function-local statics are named by GCC with a number (`n.0`, `n.1`)
/// that a function added before them shifts: their values were copied by
/// that name, into another function's static. Now a static whose name's
/// count changed starts from the file's value, and the reload says so.
#[test]
fn renumbered_function_local_statics_are_reset_and_named_not_swapped() {
    const TWO: &str =
        "int fa(void) { static int n; n += 1; return n; }\nint fb(void) { static int n; n += 1000; return n; }\n";
    let three = format!("{TWO}int fc(void) {{ static int n; n += 7; return n; }}\n");
    let v1 = module(&[("s", TWO)], &["-O2", "-fPIC"]);
    let v2 = module(&[("s", &three)], &["-O2", "-fPIC"]);
    let mut registry = ModuleRegistry::new();
    registry.load("m", &v1).unwrap();
    let (fa, fb) = (
        registry.get_function("m", "fa").unwrap(),
        registry.get_function("m", "fb").unwrap(),
    );
    assert_eq!((fa.run(&[]), fa.run(&[]), fb.run(&[])), (1, 2, 1000));
    let report = registry.reload("m", &v2, ReloadOptions::default()).unwrap();
    let DataOutcome::Copied { reset, kept } = &report.data else {
        panic!("{:?}", report.data)
    };
    assert!(kept.iter().all(|k| !k.starts_with("n.")), "{kept:?}");
    assert_eq!(reset.iter().filter(|r| r.starts_with("n.")).count(), 3, "{reset:?}");
    let fc = registry.get_function("m", "fc").unwrap();
    // Each from the file's 0: none holds another function's value.
    assert_eq!((fa.run(&[]), fb.run(&[]), fc.run(&[])), (1, 1000, 7));
}

#[test]
fn same_named_static_functions_get_their_own_entries_across_reloads() {
    let mut registry = ModuleRegistry::new();
    registry.load("m", &two_scales(2, 3)).unwrap();
    // Keys: the first object's `scale`, then `scale#1` for the second's.
    let first = registry.get_function("m", "scale").unwrap();
    let second = registry.get_function("m", "scale#1").unwrap();
    assert_ne!(first.addr(), second.addr());
    assert_eq!(first.run(&[10]), 20);
    assert_eq!(second.run(&[10]), 30);
    for missing in ["scale#2", "scale#0", "scale#01", "first#1"] {
        assert!(registry.get_function("m", missing).is_none(), "{missing}");
    }

    let report = registry
        .reload("m", &two_scales(5, 7), ReloadOptions::default())
        .unwrap();
    assert!(report.added.is_empty() && report.removed.is_empty(), "{report:?}");
    assert_eq!(first.run(&[10]), 50, "the handle follows the first object's scale");
    assert_eq!(second.run(&[10]), 70, "and this one the second's");
    assert_eq!(registry.get_function("m", "second").unwrap().run(&[10]), 71);

    // Without the second object its keys are reported gone: they are no
    // longer looked up, still reach the old code while it is mapped (old
    // code still running may call them), and trap once it is freed.
    let first_only = module(
        &[(
            "a",
            "static long scale(long x) { return x * 9; }\nlong first(long x) { return scale(x); }\n",
        )],
        &["-O0", "-fPIC"],
    );
    let report = registry.reload("m", &first_only, ReloadOptions::default()).unwrap();
    assert_eq!(report.removed, ["scale#1", "second"]);
    assert!(registry.get_function("m", "scale#1").is_none());
    assert!(registry.get_function("m", "second").is_none());
    assert!(!second.traps());
    assert_eq!(second.run(&[10]), 70, "the removed function's old code");
    assert_eq!(first.run(&[10]), 90);
    registry.free_retired();
    assert!(second.traps());
    assert_eq!(first.run(&[10]), 90);
}

/// A module's entry point that loops in its old version keeps calling a
/// function the new version removed: the call reaches the removed code
/// (still mapped with the old version), not a trap that killed the
/// program (`relive smf run --watch`, renaming the function the loop
/// calls). A later version that brings the function back gets its entry
/// again, and freeing the old versions then leaves it alone.
#[test]
fn old_code_still_running_calls_a_removed_function_until_it_is_freed() {
    let v1 = module(
        &[(
            "a",
            "long tick(long x) { return x + 1; }\nlong (*volatile keep)(long) = tick;\nlong step(long x) { return keep(x) * 2; }\n",
        )],
        &["-O2", "-fPIC"],
    );
    let v2 = module(&[("a", "long tock(long x) { return x + 7; }\n")], &["-O2", "-fPIC"]);
    let v3 = module(&[("a", "long tick(long x) { return x + 3; }\n")], &["-O2", "-fPIC"]);
    let mut registry = ModuleRegistry::new();
    registry.load("m", &v1).unwrap();
    // The old version's code as it keeps running: its own calls go
    // through the entries, as the `step` of a loop that has not returned.
    let tick = registry.get_function("m", "tick").unwrap();
    let old_step = registry.get_function("m", "step").unwrap();
    assert_eq!(old_step.run(&[10]), 22);
    let report = registry.reload("m", &v2, ReloadOptions::default()).unwrap();
    assert_eq!(report.removed, ["step", "tick"]);
    assert!(registry.get_function("m", "tick").is_none());
    assert_eq!(tick.run(&[10]), 11, "removed, still mapped: the old code runs");
    assert_eq!(old_step.run(&[10]), 22);
    // Back in a later version: the same entry, the new code.
    registry.reload("m", &v3, ReloadOptions::default()).unwrap();
    assert_eq!(tick.run(&[10]), 13);
    registry.free_retired();
    assert_eq!(
        tick.run(&[10]),
        13,
        "freeing the old versions leaves a function brought back alone"
    );
    assert!(old_step.traps(), "removed for good: traps once its code is freed");
}

// A library whose data and read-only data another module imports.
const SHARED_V1: &str = r#"
long base = 1000;
const char greeting[] = "hello";
long get_base(void) { return base; }
"#;
// A new global moves `base` (the data layout changes) and the literal.
const SHARED_V2: &str = r#"
long added = 5;
long base = 1000;
const char greeting[] = "howdy, world";
long get_base(void) { return base + added - 5; }
"#;
const USER: &str = r#"
#include <string.h>
extern long base;
extern const char greeting[];
long *base_pointer = &base;
long add_base(long x) { base += x; return base; }
long greeting_length(void) { return (long)strlen(greeting); }
long through_pointer(void) { return *base_pointer; }
"#;

#[test]
fn an_importer_follows_objects_its_library_moves_and_never_reads_freed_memory() {
    for flags in [&["-O0", "-fPIC"][..], &["-O2", "-fPIC"][..], &["-O2"][..]] {
        let mut registry = ModuleRegistry::new();
        registry.load("lib", &module(&[("lib", SHARED_V1)], flags)).unwrap();
        registry.load("user", &module(&[("user", USER)], flags)).unwrap();
        let get_base = registry.get_function("lib", "get_base").unwrap();
        let add_base = registry.get_function("user", "add_base").unwrap();
        let greeting_length = registry.get_function("user", "greeting_length").unwrap();
        assert_eq!(add_base.run(&[1]), 1001);
        assert_eq!(get_base.run(&[]), 1001, "{flags:?}: one `base`");
        assert_eq!(greeting_length.run(&[]), 5);

        // The library's data moves: the importer is relinked to the new
        // place, so both modules keep sharing one `base`.
        let report = registry
            .reload("lib", &module(&[("lib", SHARED_V2)], flags), ReloadOptions::default())
            .unwrap();
        assert!(matches!(&report.data, DataOutcome::Copied { .. }), "{:?}", report.data);
        assert_eq!(report.relinked, vec!["user".to_string()], "{flags:?}");
        assert_eq!(get_base.run(&[]), 1001, "{flags:?}: value copied");
        assert_eq!(add_base.run(&[10]), 1011);
        assert_eq!(
            get_base.run(&[]),
            1011,
            "{flags:?}: the library sees the importer's write"
        );
        assert_eq!(registry.version("user"), Some(1), "a relink is not a new version");
        let through_pointer = registry.get_function("user", "through_pointer").unwrap();
        assert_eq!(
            through_pointer.run(&[]),
            1011,
            "{flags:?}: a pointer in the importer's data follows too"
        );

        // Old versions freed: the importer reads the new literal, not the
        // unmapped old one.
        assert!(registry.free_retired() >= 2);
        assert_eq!(greeting_length.run(&[]), 12, "{flags:?}");

        // Same layout: data stays where it was; the literal still moves
        // with the code, so the importer is relinked again.
        let report = registry
            .reload("lib", &module(&[("lib", SHARED_V2)], flags), ReloadOptions::default())
            .unwrap();
        assert_eq!(report.data, DataOutcome::Shared);
        assert_eq!(report.relinked, vec!["user".to_string()]);
        registry.free_retired();
        assert_eq!(greeting_length.run(&[]), 12);
        assert_eq!(add_base.run(&[1]), 1012);
        assert_eq!(get_base.run(&[]), 1012);
    }
}

const MIDDLE: &str = r#"
extern long base;
const long scaled[2] = {3, 4};
long middle(void) { return base * scaled[0]; }
"#;
const TOP: &str = r#"
extern const long scaled[2];
long top(void) { return scaled[1]; }
"#;
// The library importing read-only data of a module that imports its own.
const CYCLIC: &str = r#"
long base = 1000;
const char greeting[] = "hello";
extern const long scaled[2];
long get_base(void) { return base + scaled[1]; }
"#;

#[test]
fn relinks_cascade_through_read_only_data_and_a_cycle_is_refused_unchanged() {
    let flags = &["-O2", "-fPIC"];
    let mut registry = ModuleRegistry::new();
    registry.load("lib", &module(&[("lib", SHARED_V1)], flags)).unwrap();
    registry.load("middle", &module(&[("middle", MIDDLE)], flags)).unwrap();
    registry.load("top", &module(&[("top", TOP)], flags)).unwrap();
    let middle = registry.get_function("middle", "middle").unwrap();
    let top = registry.get_function("top", "top").unwrap();

    // `base` moves; middle follows it, and its own `scaled` moves with its
    // new code, so top follows that.
    let report = registry
        .reload("lib", &module(&[("lib", SHARED_V2)], flags), ReloadOptions::default())
        .unwrap();
    assert_eq!(report.relinked, vec!["middle".to_string(), "top".to_string()]);
    assert_eq!(registry.free_retired(), 3);
    assert_eq!(middle.run(&[]), 3000);
    assert_eq!(top.run(&[]), 4);
    assert_eq!(registry.version("middle"), Some(1));

    // A library that now imports middle's read-only data, which moves when
    // middle follows the library: refused, nothing changed.
    let err = registry
        .reload("lib", &module(&[("lib", CYCLIC)], flags), ReloadOptions::default())
        .unwrap_err();
    assert!(
        matches!(&err, RegistryError::RelinkCycle { module, symbol, from }
            if module == "lib" && symbol == "scaled" && from == "middle"),
        "{err}"
    );
    assert!(err.to_string().contains("import functions instead"), "{err}");
    assert_eq!(registry.version("lib"), Some(2));
    assert_eq!(registry.retired(), 0, "the failed reload kept nothing");
    assert_eq!(registry.get_function("lib", "get_base").unwrap().run(&[]), 1000);
    assert_eq!(middle.run(&[]), 3000);
    assert_eq!(top.run(&[]), 4);
}

// A pointer global initialised to a literal, which lives with the code.
const POINTER_V1: &str = r#"
#include <string.h>
const char *message = "hello";
char buffer[16] = "in data";
long message_length(void) { return (long)strlen(message); }
void point_at_buffer(void) { message = buffer; }
void point_at_literal(void) { message = "bye"; }
"#;
// Same layout, another literal.
const POINTER_V2: &str = r#"
#include <string.h>
const char *message = "hello, world";
char buffer[16] = "in data";
long message_length(void) { return (long)strlen(message); }
void point_at_buffer(void) { message = buffer; }
void point_at_literal(void) { message = "bye"; }
"#;
// A new global first: the layout changes and `message` is copied.
const POINTER_V3: &str = r#"
#include <string.h>
long added;
const char *message = "hi";
char buffer[16] = "in data";
long message_length(void) { return (long)strlen(message) + added; }
void point_at_buffer(void) { message = buffer; }
void point_at_literal(void) { message = "bye"; }
"#;

#[test]
fn pointers_the_program_left_alone_follow_their_literal_into_the_new_version() {
    for flags in [&["-O0", "-fPIC"][..], &["-O2", "-fPIC"][..], &["-O2"][..]] {
        let mut registry = ModuleRegistry::new();
        registry.load("m", &module(&[("m", POINTER_V1)], flags)).unwrap();
        let length = registry.get_function("m", "message_length").unwrap();
        assert_eq!(length.run(&[]), 5);

        // Kept storage: the pointer still holds its initial value, so it
        // moves to the new literal; the old code is then freed.
        let report = registry
            .reload("m", &module(&[("m", POINTER_V2)], flags), ReloadOptions::default())
            .unwrap();
        assert_eq!(report.data, DataOutcome::Shared);
        assert_eq!(registry.free_retired(), 1);
        assert_eq!(length.run(&[]), 12, "{flags:?}: message follows its literal");
        let in_code = |registry: &ModuleRegistry| {
            let (start, end) = registry.module("m").unwrap().range();
            (start..end).contains(&message(registry))
        };
        assert!(in_code(&registry), "{flags:?}: into the current code mapping");

        // Copied storage, the same.
        let report = registry
            .reload("m", &module(&[("m", POINTER_V3)], flags), ReloadOptions::default())
            .unwrap();
        assert!(matches!(&report.data, DataOutcome::Copied { kept, .. } if kept.contains(&"message".to_string())));
        registry.free_retired();
        assert_eq!(length.run(&[]), 2, "{flags:?}");
        assert!(in_code(&registry), "{flags:?}");

        // A pointer the program changed keeps its value.
        registry.get_function("m", "point_at_buffer").unwrap().run(&[]);
        assert_eq!(length.run(&[]), 7);
        registry
            .reload("m", &module(&[("m", POINTER_V2)], flags), ReloadOptions::default())
            .unwrap();
        registry.free_retired();
        assert_eq!(length.run(&[]), 7, "{flags:?}: still the buffer");
        assert_eq!(
            message(&registry),
            registry.resolve("buffer").unwrap(),
            "{flags:?}: the copied buffer, not the freed one"
        );

        // A literal the program chose stays where it is (in the retired
        // code: the host must not free that while the pointer is in use).
        registry.get_function("m", "point_at_literal").unwrap().run(&[]);
        let chosen = message(&registry);
        registry
            .reload("m", &module(&[("m", POINTER_V2)], flags), ReloadOptions::default())
            .unwrap();
        assert_eq!(
            message(&registry),
            chosen,
            "{flags:?}: a pointer the program set keeps its value"
        );
    }
}

/// The value of module `m`'s pointer global `message`.
fn message(registry: &ModuleRegistry) -> u64 {
    let bytes = registry.module("m").unwrap().read_object("message").unwrap();
    u64::from_le_bytes(bytes.try_into().unwrap())
}

/// A loop that never returns to its caller while it runs, calling a
/// `static` function (as a program's main loop does).
fn spinner(cc: &str, factor: i64, flags: &[&str]) -> Module<'static> {
    let source = format!(
        "long steps;\n\
         __attribute__((noinline)) static long step(long x) {{ steps++; return x * {factor}; }}\n\
         long spin(volatile long *stop, long x) {{ long last = 0; while (!*stop) last = step(x); return last; }}\n"
    );
    module_with(cc, &[("spin", &source)], flags)
}

#[test]
fn with_function_sections_old_code_still_running_calls_the_new_static_function() {
    // Without -ffunction-sections the assembler (gcc's as, clang's own)
    // resolves the call to `step` inside the section: the running loop
    // keeps the old `step`.
    // With it, the call has a relocation and goes through `step`'s entry.
    for (cc, flags, new_step_reached) in [
        ("gcc", &["-O2", "-fPIC"][..], false),
        ("gcc", &["-O2", "-fPIC", "-ffunction-sections"][..], true),
        ("clang", &["-O2", "-fPIC"][..], false),
        ("clang", &["-O2", "-fPIC", "-ffunction-sections"][..], true),
    ] {
        let mut registry = ModuleRegistry::new();
        registry.load("spin", &spinner(cc, 2, flags)).unwrap();
        let spin = registry.get_function("spin", "spin").unwrap();
        let stop = Arc::new(AtomicU64::new(0));
        let running = {
            let (spin, stop) = (spin.clone(), stop.clone());
            std::thread::spawn(move || spin.run(&[stop.as_ptr() as u64, 21]))
        };
        // The loop is in the first version's code before the reload...
        let steps = |registry: &ModuleRegistry| {
            let bytes = registry.module("spin").unwrap().read_object("steps").unwrap();
            u64::from_le_bytes(bytes.try_into().unwrap())
        };
        let until_steps_pass = |registry: &ModuleRegistry, count: u64| {
            let deadline = std::time::Instant::now() + relive_testkit::PATIENCE;
            while steps(registry) <= count {
                assert!(std::time::Instant::now() < deadline, "the loop does not run");
                std::thread::yield_now();
            }
        };
        until_steps_pass(&registry, 0);
        registry
            .reload("spin", &spinner(cc, 3, flags), ReloadOptions::default())
            .unwrap();
        // ...and runs on after it, calling `step` again (`steps` is kept
        // in place, so it counts on).
        let at_reload = steps(&registry);
        until_steps_pass(&registry, at_reload + 1000);
        stop.store(1, Ordering::SeqCst);
        let last = running.join().expect("the loop ran to its end");
        let expected = if new_step_reached { 63 } else { 42 };
        assert_eq!(last, expected, "{cc} {flags:?}");
    }
}

/// A module's keys keep their entries for the registry's lifetime: a
/// handle taken before an unload runs the code of the next load of that
/// name. A first load that fails leaves no module, and the next load of
/// that name works (whether it reuses the failed load's entries is not
/// seen from outside).
#[test]
fn a_module_loaded_again_after_an_unload_reuses_its_entries() {
    let flags = &["-O2", "-fPIC"];
    let mut registry = ModuleRegistry::new();
    registry.load("leaf", &module(&[("leaf", LEAF_V1)], flags)).unwrap();
    let compute = registry.get_function("leaf", "compute").unwrap();
    assert_eq!(compute.run(&[2]), 7);
    registry.unload("leaf").unwrap();
    assert!(compute.traps(), "an unloaded module's entries trap");
    assert!(registry.get_function("leaf", "compute").is_none());

    registry.load("leaf", &module(&[("leaf", LEAF_V2)], flags)).unwrap();
    assert!(!compute.traps(), "the load again gave compute another entry");
    assert_eq!(
        compute.run(&[2]),
        12,
        "the handle taken before the unload runs the new load"
    );
    assert_eq!(registry.get_function("leaf", "compute").unwrap().addr(), compute.addr());

    let unresolved = "long nowhere(long);\nlong compute(long x) { return nowhere(x); }\n";
    let err = registry
        .load("other", &module(&[("other", unresolved)], flags))
        .unwrap_err();
    assert!(err.to_string().contains("nowhere"), "{err}");
    assert!(registry.get_function("other", "compute").is_none());
    registry.load("other", &module(&[("other", LEAF_V1)], flags)).unwrap();
    let other = registry.get_function("other", "compute").unwrap();
    assert_eq!(other.run(&[2]), 7);
    assert_ne!(
        other.addr(),
        compute.addr(),
        "each module's keys have entries of their own"
    );
    assert_eq!(compute.run(&[2]), 12);
}
