//! `relive verify` (the check every `relive run` baseline goes through):
//! an object compiled with the build's options is the running code; one
//! compiled without an option the code depends on is not, wherever the
//! difference hides (a constant table, which function is called, a TLS
//! store's immediate), and the linker's own rewrites (`-fno-plt` jumps,
//! relaxed TLS sequences) are not differences.

use std::path::Path;
use std::process::Command;

use relive_testkit::Target;
use serde_json::Value;

/// Runs the program built from `source` with `build` flags, compiles
/// `source` again with `object` flags, and returns `relive verify`'s exit
/// code and report.
fn verify(source: &str, build: &[&str], object: &[&str]) -> (i32, Value) {
    report_of(&verify_output(source, build, object))
}

/// [`verify`]'s run of `relive verify --json`, as it ended.
fn verify_output(source: &str, build: &[&str], object: &[&str]) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().to_path_buf();
    std::fs::write(p.join("app.c"), source).unwrap();
    let (libs, flags): (Vec<&str>, Vec<&str>) = build.iter().partition(|f| f.starts_with("-l"));
    let status = Command::new("gcc")
        .args(flags)
        .args(["app.c", "-o", "app"])
        .args(libs)
        .current_dir(&p)
        .status()
        .unwrap();
    assert!(status.success(), "building with {build:?}");
    let status = Command::new("gcc")
        .args(object.iter().filter(|f| !f.starts_with("-l")))
        .args(["-c", "app.c", "-o", "other.o"])
        .current_dir(&p)
        .status()
        .unwrap();
    assert!(status.success(), "compiling with {object:?}");
    let mut cmd = Command::new(p.join("app"));
    cmd.current_dir(&p);
    let target = Target::spawn(cmd, p.join("app"), dir);
    target.wait_for_prefix("v ");
    verify_run(&target, &Path::new(&p).join("other.o"))
}

/// `relive verify --json --pid` of `target` with `object`: its exit code
/// and report.
fn verify_object(target: &Target, object: &Path) -> (i32, Value) {
    report_of(&verify_run(target, object))
}

/// `relive verify --json --pid` of `target` with `object`, as it ended.
fn verify_run(target: &Target, object: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_relive"))
        .args(["verify", "--json", "--pid", &target.pid_arg()])
        .arg(object)
        .env("RELIVE_STATE_DIR", target.dir.path().join("state"))
        .output()
        .unwrap()
}

/// A `relive verify --json` run's exit code and report.
fn report_of(out: &std::process::Output) -> (i32, Value) {
    let report = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no report ({e}): {}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code().unwrap_or(-1), report)
}

fn differing(report: &Value) -> Vec<String> {
    report[0]["differs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["function"].as_str().unwrap().to_string())
        .collect()
}

const LOOP: &str =
    "int main(void) { setvbuf(stdout, 0, _IOLBF, 0); for (;;) { printf(\"v %d\\n\", f(3)); usleep(2000); } }\n";

fn program(body: &str) -> String {
    format!("#include <stdio.h>\n#include <unistd.h>\n{body}\n{LOOP}")
}

#[test]
fn a_constant_table_built_with_another_define_differs() {
    let src = program(
        "static const int table[4] = {MODE, 2, 3, 4};\n__attribute__((noinline)) int f(int i) { return table[i & 3] + table[(i + 1) & 3]; }",
    );
    f_differs_with_another_define(&src, "-DMODE=2", "-DMODE=5");
}

/// Verifies `src` built with `define` against its object compiled with
/// `define` (the code that runs: exit 0), then with `other` (only `f`
/// differs: exit 5), and returns the second report.
fn f_differs_with_another_define(src: &str, define: &str, other: &str) -> Value {
    let (code, report) = verify(src, &["-O2", "-g", define], &["-O2", "-g", define]);
    assert_eq!(code, 0, "{report}");
    let (code, report) = verify(src, &["-O2", "-g", define], &["-O2", "-g", other]);
    assert_eq!(code, 5, "{report}");
    assert_eq!(differing(&report), ["f"], "{report}");
    report
}

/// A table that differs is a difference even where the reference to it
/// also reads as one near a neighbouring table that matches (GCC lays
/// `second` out right before `first`: its start is 16 bytes before
/// `first`'s, as `lea first-16(%rip)` would be). verify said an edited
/// table's object was the code running the old table (a zstd trial, after
/// a revert: `ZSTD_defaultCParameters` right after `srcSizeTiers`).
#[test]
fn a_table_that_differs_is_not_excused_by_its_neighbour() {
    let src = program(
        "static const int first[4] = {1, 2, 3, 4};\nstatic const int second[4] = {SECOND, 6, 7, 8};\n__attribute__((noinline)) int f(int i) { return first[i & 3] * 100 + second[(i + 1) & 3]; }",
    );
    let report = f_differs_with_another_define(&src, "-DSECOND=5", "-DSECOND=9");
    let why = report[0]["differs"][0]["why"].as_str().unwrap();
    assert!(why.contains("refers to second, whose contents differ"), "{report}");
    // The other reading was tried, and is said: it would match (which
    // also shows that GCC laid the tables out as this test needs).
    assert!(
        why.contains("the object cannot say which table its code means"),
        "{report}"
    );
}

/// An object compiled without the build's -D, or at another optimisation
/// level, says so above the functions that differ (a Lua trial: verify
/// listed them and no more, where relive run suggested the flags); one
/// edited function alone gets no such note.
#[test]
fn an_object_compiled_unlike_the_build_says_so() {
    let src = program(
        "#ifndef H_EXTRA\n#define H_EXTRA 0\n#endif\n__attribute__((noinline)) int g(int i) { return i * MODE; }\n__attribute__((noinline)) int h(int i) { return i + MODE + H_EXTRA; }\n__attribute__((noinline)) int f(int i) { return g(i) + h(i) + MODE; }",
    );
    let build = ["-O2", "-g", "-DMODE=2"];
    let (code, report) = verify(&src, &build, &["-O2", "-g", "-DMODE=3"]);
    assert_eq!(code, 5, "{report}");
    let why = report[0]["unlike_build"].as_str().unwrap_or_else(|| panic!("{report}"));
    assert!(
        why.contains("3 of its 4 functions differ") && why.contains("-D"),
        "{report}"
    );
    let (code, report) = verify(&src, &build, &["-O0", "-g", "-DMODE=2"]);
    assert_eq!(code, 5, "{report}");
    let why = report[0]["unlike_build"].as_str().unwrap_or_else(|| panic!("{report}"));
    assert!(
        why.contains("was compiled with -O0") && why.contains("built with -O2"),
        "{report}"
    );
    // A static function of the build's that the object lacks: said first
    // (a Lua re-check: `math_pow` and six more, left out without
    // -DLUA_COMPAT_5_3, with one function differing and no cause said).
    let compat = program(
        "#ifdef COMPAT\n__attribute__((noinline)) static int legacy(int i) { return i * 7; }\n#endif\n__attribute__((noinline)) int g(int i) { return i * 2; }\n__attribute__((noinline)) int f(int i) {\n#ifdef COMPAT\n  return legacy(i) + g(i);\n#else\n  return g(i);\n#endif\n}",
    );
    let (code, report) = verify(&compat, &["-O2", "-g", "-DCOMPAT"], &["-O2", "-g"]);
    assert_eq!(code, 5, "{report}");
    assert!(differing(&report).contains(&"f".to_string()), "{report}");
    let why = report[0]["unlike_build"].as_str().unwrap_or_else(|| panic!("{report}"));
    assert!(
        why.contains("has 1 static function under this object's file name (app.c) that") && why.contains("(legacy)"),
        "{report}"
    );
    // One function differing (as an edit of it would): no such note.
    let out = verify_output(&src, &build, &["-O2", "-g", "-DMODE=2", "-DH_EXTRA=1"]);
    let (code, report) = report_of(&out);
    assert_eq!(code, 5, "{report}");
    assert_eq!(differing(&report), ["h"], "{report}");
    assert!(report[0].get("unlike_build").is_none(), "{report}");
}

/// GCC numbers a file's function-local statics together: a static
/// counter an edit adds to `counter` is `calls.0`, and the
/// `__PRETTY_FUNCTION__` that `g`'s inlined `assert` refers to goes from
/// `.0` to `.1`, which is `f`'s in the program. Running code that refers
/// to the same text is the same code (a trial on QuickJS: `verify` and the
/// start-up comparison said `lre_compile` differs after a counter was
/// added to `lre_exec`, so edits of the file were refused without a
/// compile database).
#[test]
fn a_renumbered_function_name_constant_is_no_difference() {
    let src = program(
        "#include <assert.h>\nvolatile int n = 3;\nstatic int check(int x) { assert(x < 100); return x + 1; }\n__attribute__((noinline)) int f(int x) { return check(x) + n; }\nstatic int other_check(int x) { assert(x < 300); return x + 3; }\n__attribute__((noinline)) int g(int x) { return other_check(x); }\n__attribute__((noinline)) int counter(void) {\n#ifdef EXTRA\n    static int calls; calls++;\n#endif\n    return g(n);\n}",
    );
    let (_, report) = verify(&src, &["-O2", "-g"], &["-O2", "-g", "-DEXTRA"]);
    assert_eq!(differing(&report), ["counter"], "{report}");
}

#[test]
fn a_call_to_a_function_the_program_lacks_differs() {
    let src = program(
        "#ifdef FAST\n__attribute__((noinline)) int fast_impl(int x) { return x * 2; }\n#define impl fast_impl\n#else\n__attribute__((noinline)) int slow_impl(int x) { int t = 0; for (int i = 0; i < x; i++) t += 2; return t; }\n#define impl slow_impl\n#endif\n__attribute__((noinline)) int f(int x) { return impl(x) + 1; }",
    );
    let (code, report) = verify(&src, &["-O2", "-g"], &["-O2", "-g", "-DFAST"]);
    assert_eq!(code, 5, "{report}");
    assert!(differing(&report).contains(&"f".to_string()), "{report}");
}

#[test]
fn an_object_with_no_function_of_the_program_is_not_verified() {
    let src = program("#ifdef OTHER\nint unrelated(int x) { return x; }\n#else\n__attribute__((noinline)) int f(int x) { return x + 1; }\n#endif");
    let dir_src = "#include <stdio.h>\nint unrelated_elsewhere(int x) { return x * 7; }\n";
    // The object is another file's: nothing to compare.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().to_path_buf();
    std::fs::write(p.join("app.c"), &src).unwrap();
    std::fs::write(p.join("lib.c"), dir_src).unwrap();
    assert!(Command::new("gcc")
        .args(["-O2", "-g", "app.c", "-o", "app"])
        .current_dir(&p)
        .status()
        .unwrap()
        .success());
    assert!(Command::new("gcc")
        .args(["-O2", "-g", "-c", "lib.c"])
        .current_dir(&p)
        .status()
        .unwrap()
        .success());
    let mut cmd = Command::new(p.join("app"));
    cmd.current_dir(&p);
    let target = Target::spawn(cmd, p.join("app"), dir);
    target.wait_for_prefix("v ");
    let out = Command::new(env!("CARGO_BIN_EXE_relive"))
        .args(["verify", "--pid", &target.pid_arg()])
        .arg(p.join("lib.o"))
        .env("RELIVE_STATE_DIR", p.join("state"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(5), "{text}");
    assert!(text.contains("NOT VERIFIED"), "{text}");
}

#[test]
fn a_thread_local_store_of_another_constant_differs() {
    let src = program(
        "__thread int counter;\n__attribute__((noinline)) int f(int x) { counter = MODE; return x + counter; }",
    );
    let (code, report) = verify(&src, &["-O2", "-g", "-DMODE=2"], &["-O2", "-g", "-DMODE=2"]);
    assert_eq!(code, 0, "{report}");
    let (code, report) = verify(&src, &["-O2", "-g", "-DMODE=2"], &["-O2", "-g", "-DMODE=7"]);
    assert_eq!(code, 5, "{report}");
    assert_eq!(differing(&report), ["f"], "{report}");
}

#[test]
fn linker_rewrites_are_not_differences() {
    // -fno-plt: `jmp *f@GOTPCREL(%rip)` becomes `jmp f; nop`. -fPIC with
    // __thread, linked into an executable: the general-dynamic sequence
    // becomes local-exec.
    let src = program(
        "#include <stdlib.h>\n__thread int counter;\n__attribute__((noinline)) int g(int x) { return abs(x - 10); }\n__attribute__((noinline)) int tail(int x) { return g(x); }\n__attribute__((noinline)) int f(int x) { counter += x; return tail(x) + counter % 3 + (int)labs((long)x); }",
    );
    for flags in [
        &["-O2", "-g", "-fno-plt"][..],
        &["-O2", "-g", "-fPIC"][..],
        &["-O2", "-g", "-fPIC", "-fno-plt"][..],
    ] {
        let (code, report) = verify(&src, flags, flags);
        assert_eq!(code, 0, "{flags:?}: {report}");
    }
}

/// A function two libraries define (frexp: libc and libm) is whichever
/// the dynamic linker bound the program to.
#[test]
fn a_function_two_libraries_define_is_the_one_the_program_uses() {
    let src = program("#include <math.h>\n__attribute__((noinline)) int f(int x) { int e; double m = frexp((double)x * 3.5, &e); return (int)(m * 100) + e; }");
    let (code, report) = verify(&src, &["-O2", "-g", "-lm"], &["-O2", "-g"]);
    assert_eq!(code, 0, "{report}");
}

/// After `relive patch`, the patched object is the code the process runs:
/// its functions are compared with their current versions, whose calls to
/// each other go to the new copies directly.
#[test]
fn a_patched_object_verifies_against_the_patched_process() {
    let src = program("__attribute__((noinline, noipa)) int g(int x) { return x + 1; }\n__attribute__((noinline)) int f(int x) { return g(x) * 2; }");
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().to_path_buf();
    std::fs::write(p.join("app.c"), &src).unwrap();
    assert!(Command::new("gcc")
        .args(["-O2", "-g", "app.c", "-o", "app"])
        .current_dir(&p)
        .status()
        .unwrap()
        .success());
    let new_dir = p.join("new");
    std::fs::create_dir(&new_dir).unwrap();
    std::fs::write(
        new_dir.join("app.c"),
        src.replace("x + 1", "x + 2").replace("* 2", "* 3"),
    )
    .unwrap();
    assert!(Command::new("gcc")
        .args(["-O2", "-g", "-c", "app.c", "-o", "app.o"])
        .current_dir(&new_dir)
        .status()
        .unwrap()
        .success());
    let mut cmd = Command::new(p.join("app"));
    cmd.current_dir(&p);
    let target = Target::spawn(cmd, p.join("app"), dir);
    target.wait_for("v 8");
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_relive"))
            .args(args)
            .env("RELIVE_STATE_DIR", p.join("state"))
            .output()
            .unwrap()
    };
    let obj = new_dir.join("app.o");
    let out = run(&["patch", &target.pid_arg(), obj.to_str().unwrap(), "--force"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    target.wait_for("v 15");
    let out = run(&["verify", &target.pid_arg(), obj.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
}

/// A shared library calls its own exported functions through its PLT,
/// whose GOT cells point back into the library's own PLT until the first
/// call binds them: a compile of the library's source is its running code
/// (zstd built with `-shared`: relive named 70 functions as differing and
/// refused edits of them, or patched unedited ones at start).
#[test]
fn a_librarys_calls_through_its_own_unbound_plt_are_not_differences() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().to_path_buf();
    let lib = "__attribute__((noinline)) int g(int x) { return x * 3 + 1; }\n\
               __attribute__((noinline)) int k(int x) { return x * 5 + 2; }\n\
               __attribute__((noinline)) int never_called(int x) { return k(x) + 7; }\n\
               __attribute__((noinline)) int f(int x) { return g(x) + g(x + 1); }\n";
    std::fs::write(p.join("lib.c"), lib).unwrap();
    std::fs::write(
        p.join("app.c"),
        format!("#include <stdio.h>\n#include <unistd.h>\nint f(int);\n{LOOP}"),
    )
    .unwrap();
    let run = |args: &[&str]| {
        let status = Command::new("gcc").args(args).current_dir(&p).status().unwrap();
        assert!(status.success(), "gcc {args:?}");
    };
    run(&["-O2", "-g", "-fPIC", "-shared", "lib.c", "-o", "libl.so"]);
    let rpath = format!("-Wl,-rpath,{}", p.display());
    run(&["-O2", "-g", "app.c", "-o", "app", "-L.", "-ll", &rpath]);
    run(&["-O2", "-g", "-fPIC", "-c", "lib.c", "-o", "lib.o"]);
    let mut cmd = Command::new(p.join("app"));
    cmd.current_dir(&p);
    let target = Target::spawn(cmd, p.join("app"), dir);
    target.wait_for_prefix("v ");
    let (code, report) = verify_object(&target, &p.join("lib.o"));
    assert_eq!(differing(&report), Vec::<String>::new(), "{report}");
    assert_eq!(code, 0, "{report}");
}

/// Objects that define no function (a file of tables, as bzip2's
/// `crctable.c`): a constant table is compared with the program's (its
/// bytes, and the strings its pointers point at); a file of variables has
/// nothing to compare and is no failure. Both were "NOT VERIFIED" (exit
/// 5), so `relive verify PID build/*.o` failed for the build's own objects.
#[test]
fn objects_of_tables_only_are_compared_by_their_constants() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().to_path_buf();
    let tables = |first: &str| {
        format!("const char *const names[2] = {{\"{first}\", \"one\"}};\nconst int sizes[3] = {{1, 2, 3}};\n")
    };
    std::fs::write(p.join("tables.c"), tables("zero")).unwrap();
    std::fs::write(p.join("vars.c"), "int counts[4] = {1, 2, 3, 4};\n").unwrap();
    std::fs::write(
        p.join("app.c"),
        program("extern const char *const names[2];\nextern const int sizes[3];\nextern int counts[4];\n__attribute__((noinline)) int f(int i) { return names[i & 1][0] + sizes[i % 3] + counts[i & 3]++; }"),
    )
    .unwrap();
    let gcc = |args: &[&str]| {
        assert!(Command::new("gcc")
            .args(args)
            .current_dir(&p)
            .status()
            .unwrap()
            .success())
    };
    gcc(&["-O2", "-g", "app.c", "tables.c", "vars.c", "-o", "app"]);
    gcc(&["-O2", "-g", "-c", "tables.c", "vars.c"]);
    std::fs::write(p.join("edited.c"), tables("ZERO")).unwrap();
    gcc(&["-O2", "-g", "-c", "edited.c"]);
    std::fs::rename(p.join("edited.o"), p.join("tables-edited.o")).unwrap();
    let mut cmd = Command::new(p.join("app"));
    cmd.current_dir(&p);
    let target = Target::spawn(cmd, p.join("app"), dir);
    target.wait_for_prefix("v ");
    let (code, report) = verify_object(&target, &p.join("tables.o"));
    assert_eq!(code, 0, "{report}");
    assert_eq!(
        (report[0]["compared"].as_str(), report[0]["same"].as_u64()),
        (Some("constants"), Some(2)),
        "{report}"
    );
    let (code, report) = verify_object(&target, &p.join("vars.o"));
    assert_eq!(code, 0, "nothing to compare is no failure: {report}");
    let (code, report) = verify_object(&target, &p.join("tables-edited.o"));
    assert_eq!(code, 5, "{report}");
    assert_eq!(differing(&report), ["names"], "{report}");
}

/// verify under another state directory than the one a patch was made
/// with: the patched entries differ from their first byte and this
/// directory's journal records no patch, which is said (it listed them as
/// differing and said nothing; `status` gives the hint; a user's trial on
/// zstd).
#[test]
fn entries_another_state_directory_patched_are_said_to_be_so() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().to_path_buf();
    let src = program(
        "__attribute__((noinline, noipa)) int f(int x) { int s = 0; for (int i = 0; i < x; i++) s += i * x; return s + 1; }",
    );
    std::fs::write(p.join("app.c"), &src).unwrap();
    let built = Command::new("gcc")
        .args(["-O2", "-g", "app.c", "-o", "app"])
        .current_dir(&p)
        .status()
        .unwrap();
    assert!(built.success());
    let compile = |text: &str, out: &str| {
        std::fs::write(p.join("app.c"), text).unwrap();
        let ok = Command::new("gcc")
            .args(["-O2", "-g", "-c", "app.c", "-o", out])
            .current_dir(&p)
            .status()
            .unwrap();
        assert!(ok.success());
    };
    compile(&src, "built.o");
    compile(&src.replace("s + 1", "s + 2"), "edited.o");
    let mut cmd = Command::new(p.join("app"));
    cmd.current_dir(&p);
    let target = Target::spawn(cmd, p.join("app"), dir);
    target.wait_for_prefix("v 10");
    let patched = Command::new(env!("CARGO_BIN_EXE_relive"))
        .args(["patch", "--pid", &target.pid_arg(), "edited.o", "--base", "built.o"])
        .current_dir(&p)
        .env("RELIVE_STATE_DIR", p.join("one"))
        .output()
        .unwrap();
    assert!(patched.status.success(), "{}", String::from_utf8_lossy(&patched.stderr));
    target.wait_for_prefix("v 11");
    let out = Command::new(env!("CARGO_BIN_EXE_relive"))
        .args(["verify", "--pid", &target.pid_arg(), "built.o"])
        .current_dir(&p)
        .env("RELIVE_STATE_DIR", p.join("other"))
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{said}");
    assert!(
        said.contains("record no patch") && said.contains("RELIVE_STATE_DIR"),
        "{said}"
    );
}

/// An edit at a function's first byte is a difference of the compile, not
/// another relive's patch: no note about other state directories (a
/// counter added at `js_free_shape`'s start drew it in a re-check).
#[test]
fn an_edit_at_a_functions_start_is_not_taken_for_a_patch() {
    // `mov %edi,%eax; xor $1,%eax` and `mov $7,%eax`: six bytes each.
    let src = program(
        "__attribute__((noinline, noipa)) int f(int x) {\n#ifdef EXTRA\n    return 7 + 0 * x;\n#else\n    return x ^ 1;\n#endif\n}",
    );
    let out = verify_output(&src, &["-O2", "-g"], &["-O2", "-g", "-DEXTRA"]);
    let (code, report) = report_of(&out);
    assert_eq!(code, 5, "{report}");
    let why = report[0]["differs"][0]["why"].as_str().unwrap_or_default().to_string();
    assert!(why.starts_with("its code differs at +0x0"), "{report}");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!said.contains("record no patch"), "{said}");
}

/// The program built from `src` (gcc -O2 -g and `flags`), running until
/// it prints `first`, patched by one-shot `relive patch` with `src`
/// edited (`from` to `to`): the target, the edited object, the base's,
/// and what the patch printed.
fn patched_once(
    src: &str,
    flags: &[&str],
    first: &str,
    (from, to): (&str, &str),
) -> (Target, std::path::PathBuf, String) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().to_path_buf();
    let new_dir = p.join("new");
    std::fs::create_dir(&new_dir).unwrap();
    std::fs::write(p.join("app.c"), src).unwrap();
    std::fs::write(new_dir.join("app.c"), src.replace(from, to)).unwrap();
    for (args, at) in [
        (&["app.c", "-o", "app"][..], &p),
        (&["-c", "app.c", "-o", "base.o"], &p),
        (&["-c", "app.c", "-o", "app.o"], &new_dir),
    ] {
        let built = Command::new("gcc")
            .args(["-O2", "-g"])
            .args(flags)
            .args(args)
            .current_dir(at)
            .status();
        assert!(built.unwrap().success(), "gcc {args:?}");
    }
    let mut cmd = Command::new(p.join("app"));
    cmd.current_dir(&p);
    let target = Target::spawn(cmd, p.join("app"), dir);
    target.wait_for(first);
    let obj = new_dir.join("app.o");
    let said = patch_over_base(&target, &obj, &p.join("base.o"));
    (target, obj, said)
}

/// `relive patch PID OBJ --base BASE` on `target`, which must succeed:
/// what it printed.
fn patch_over_base(target: &Target, obj: &Path, base: &Path) -> String {
    let out = relive_on(
        target,
        &[
            "patch",
            &target.pid_arg(),
            obj.to_str().unwrap(),
            "--base",
            base.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// relive with `args`, in `target`'s state directory.
fn relive_on(target: &Target, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_relive"))
        .args(args)
        .env("RELIVE_STATE_DIR", target.dir.path().join("state"))
        .output()
        .unwrap()
}

/// A patched `main` whose running loop keeps its old code (NOT REACHABLE
/// when it was patched) is not the code the process runs, though its
/// entry leads to the new code: verify said "its 1 function is the code
/// pid N runs" and exited 0 while the program printed what the old code
/// prints (a user's trial on tree-sitter's driver).
#[test]
fn a_patched_main_whose_loop_keeps_its_old_code_differs() {
    let src = "#include <stdio.h>\n#include <unistd.h>\nint main(void) { setvbuf(stdout, 0, _IOLBF, 0); for (;;) { printf(\"v A\\n\"); usleep(2000); } }\n";
    let (target, obj, said) = patched_once(src, &[], "v A", ("v A", "v B"));
    assert!(said.contains("unreachable main"), "{said}");
    let (code, report) = verify_object(&target, &obj);
    assert_eq!(code, 5, "{report}");
    assert_eq!(report[0]["same"], 0, "{report}");
    assert_eq!(report[0]["unreached"][0]["function"], "main", "{report}");
    let out = relive_on(&target, &["verify", &target.pid_arg(), obj.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(5));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("1 of 1 functions DIFFER"), "{text}");
    assert!(
        text.contains("main: its entry leads to this code (patched), but NOT REACHABLE"),
        "{text}"
    );
    // The program runs the old code, as verify says.
    target.wait_for("v A");
    // The build's object is that code: said so (a Lua trial: it was said
    // to differ, and nothing more).
    let base = target.dir.path().join("base.o");
    let (_, report) = verify_object(&target, &base);
    let why = report[0]["differs"][0]["why"].as_str().unwrap_or_default();
    assert!(
        why.contains(
            "whose code no call could run when it was patched (NOT REACHABLE): the running calls run this object's code"
        ),
        "{report}"
    );
}

/// A worker thread's outermost function, patched while it loops, matches
/// (later threads run the new code) with a note that the running loop
/// keeps the old code.
#[test]
fn a_patched_worker_loop_matches_with_a_note_that_its_running_call_keeps_the_old_code() {
    let src = "#include <pthread.h>\n#include <stdio.h>\n#include <unistd.h>\nstatic void *work(void *arg) { (void)arg; for (;;) { printf(\"w A\\n\"); usleep(2000); } }\nint main(void) { setvbuf(stdout, 0, _IOLBF, 0); pthread_t t; pthread_create(&t, 0, work, 0); pthread_join(t, 0); }\n";
    let (target, obj, _) = patched_once(src, &["-pthread"], "w A", ("w A", "w B"));
    let (code, report) = verify_object(&target, &obj);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report[0]["old_code_kept"][0]["function"], "work", "{report}");
    let out = relive_on(&target, &["verify", &target.pid_arg(), obj.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("runs for new calls, but 1 of them still runs old code in a call under way:")
            && text
                .contains("note: work: later calls run this code; calls running when it was patched keep the old code"),
        "{text}"
    );
    target.wait_for("w A");
}

/// The same stale return address in a program built at -O0, whose frames
/// are found through their frame pointers: the walk needs each thread's
/// `rbp`, which a thread seen blocked through `/proc` does not give, so
/// the threads' registers are read (a re-check: bc at -O0, idle in
/// `read`, had `execute` "running" in the patch, `status` and `verify`).
#[test]
fn a_stale_return_address_is_no_running_call_at_o0_either() {
    let (target, obj, said) = patched_once(STALE_WORD, &["-O0"], "e 1", ("return r + 1;", "return -r;"));
    assert!(!said.contains("is running on thread"), "{said}");
    target.wait_for("e 0");
    // Caught between two prints, the thread sleeps in `idle`, the stale
    // word in its buffer.
    std::thread::sleep(std::time::Duration::from_millis(30));
    no_old_code_running(&target, &obj, "execute");
}

/// A function a worker thread's loop calls, running when it is patched
/// (a frameless one: its return address is the word at the thread's stack
/// pointer): that call finishes in the old code, and the loop's next call
/// runs the new one. It was said to be the thread's outermost function,
/// "those calls keep the old code for good", in the patch, `status` and
/// `verify` (a re-check's `spin` under its worker's `outer`).
#[test]
fn a_function_a_worker_loop_calls_is_not_its_outermost() {
    let src = "#include <stdio.h>\n#include <pthread.h>\nvolatile unsigned long sink;\nvolatile int flag;\n__attribute__((noinline)) void spin(unsigned long n) { for (unsigned long i = 0; i < n; i++) sink += i; }\n__attribute__((noinline)) void *outer(void *a) { for (;;) { spin(20000000UL); printf(\"tick %d\\n\", flag); fflush(stdout); } return a; }\nint main(void) { pthread_t t; pthread_create(&t, 0, outer, 0); pthread_join(t, 0); }\n";
    let (target, obj, said) = patched_once(src, &["-pthread"], "tick 0", ("sink += i; }", "sink += i; flag = 1; }"));
    assert!(!said.contains("outermost"), "{said}");
    let (code, report) = verify_object(&target, &obj);
    assert_eq!(code, 0, "{report}");
    let kept = report[0]["old_code_kept"].to_string();
    assert!(!kept.contains("for good"), "{report}");
    target.wait_for("tick 1");
}

/// An edit of a function that is also inlined into a loop running when
/// the patch goes in: the loop's note says that its running call runs
/// the old code of the edited function, which is why the edit does not
/// show (a Lua trial: `luaV_idiv`, inlined into the `luaV_execute` call
/// the script runs in, was said patched with a note on `luaV_execute`
/// alone).
#[test]
fn a_running_call_that_inlines_an_edited_function_says_so() {
    let src = "#include <stdio.h>\n#include <unistd.h>\nvolatile int seed = 100;\nint divide(int a, int b) { return a / b; }\n__attribute__((noinline)) void run_loop(void) { for (int i = 0;; i++) { printf(\"q %d\\n\", divide(seed + i % 2, 7)); fflush(stdout); usleep(2000); } }\n__attribute__((noinline)) void serve(void) { run_loop(); }\nint main(void) { serve(); return 0; }\n";
    let (target, _obj, said) = patched_once(src, &[], "q 14", ("return a / b;", "return a / b + 1000;"));
    assert!(
        said.contains("run_loop is running on thread")
            && said.contains("it has divide inlined, so that call runs the old divide too, until it returns"),
        "{said}"
    );
    // As said: the running call still divides the old way.
    target.wait_for("q 14");
}

/// A function reverted by name that a patch which stays has inlined: the
/// revert says that its edit still runs there (a curl trial: `revert
/// is_dot` said "reverted is_dot", and the output did not change, as the
/// patched `parseurl_and_replace` ran the edited `is_dot` inlined).
#[test]
fn a_revert_of_a_function_another_patch_has_inlined_says_so() {
    let src = "#include <stdio.h>\n#include <unistd.h>\nvolatile int seed = 100;\nint divide(int a, int b) { return a / b; }\nint (*volatile out_of_line)(int, int) = divide;\n__attribute__((noinline)) int compute(int i) { return divide(seed + i % 2, 7); }\nint main(void) { for (int i = 0;; i++) { printf(\"q %d %d\\n\", compute(i), out_of_line(seed, 7)); fflush(stdout); usleep(2000); } }\n";
    let (target, _obj, said) = patched_once(src, &[], "q 14 14", ("return a / b;", "return a / b + 1000;"));
    assert!(said.contains("patched compute") && said.contains("divide"), "{said}");
    target.wait_for("q 1014 1014");
    let out = relive_on(&target, &["revert", &target.pid_arg(), "divide"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains(
            "compute is still patched, and its new code has divide inlined: the patched version of divide still runs there"
        ),
        "{text}"
    );
    // As said: the out-of-line calls run the original, compute the edit.
    target.wait_for("q 1014 14");
}

/// A function that differs because it was reverted since it was patched
/// says so, and so does one whose last generation `revert --last` undid:
/// verify said only "g: 55 bytes long, the running one 50", which reads
/// as an edit relive lost, and called two such differences a compile
/// unlike the build's (a zstd re-check).
#[test]
fn a_difference_a_revert_explains_says_so() {
    let src = "#include <stdio.h>\n#include <unistd.h>\nvolatile int seed = 1;\n__attribute__((noinline)) int f(int x) { return x * 3 + 1; }\n__attribute__((noinline)) int g(int x) { return x * 5 + 1; }\nint main(void) { for (;;) { printf(\"r %d %d\\n\", f(seed), g(seed)); fflush(stdout); usleep(2000); } }\n";
    let (target, obj, said) = patched_once(src, &[], "r 4 6", ("+ 1;", "+ 100;"));
    assert!(said.contains("patched f") && said.contains("patched g"), "{said}");
    target.wait_for("r 103 105");
    let out = relive_on(&target, &["revert", &target.pid_arg(), "g"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    target.wait_for("r 103 6");
    let (code, report) = verify_object(&target, &obj);
    assert_eq!(code, 5, "{report}");
    assert_eq!(report[0]["differs"].as_array().unwrap().len(), 1, "{report}");
    assert_eq!(report[0]["differs"][0]["function"], "g", "{report}");
    let why = report[0]["differs"][0]["why"].as_str().unwrap();
    assert!(
        why.contains("g was patched (change 1, from app.c) and reverted since: the program runs its original code"),
        "{report}"
    );
    // A second generation of f, then undone: f runs generation 1 again,
    // which the second object is not.
    let second = obj.parent().unwrap().parent().unwrap().join("second");
    std::fs::create_dir(&second).unwrap();
    std::fs::write(second.join("app.c"), src.replace("+ 1;", "+ 200;")).unwrap();
    let built = Command::new("gcc")
        .args(["-O2", "-g", "-c", "app.c", "-o", "app.o"])
        .current_dir(&second)
        .status();
    assert!(built.unwrap().success());
    // Only f: the base's g is not what runs (reverted).
    let out = relive_on(
        &target,
        &[
            "patch",
            &target.pid_arg(),
            second.join("app.o").to_str().unwrap(),
            "--base",
            obj.to_str().unwrap(),
            "--only",
            "f",
        ],
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && said.contains("generation 2"),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    target.wait_for("r 203 6");
    let out = relive_on(&target, &["revert", &target.pid_arg(), "--last"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    target.wait_for("r 103 6");
    let (code, report) = verify_object(&target, &second.join("app.o"));
    assert_eq!(code, 5, "{report}");
    let why_of = |name: &str| {
        report[0]["differs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["function"] == name)
            .map(|d| d["why"].as_str().unwrap().to_string())
            .unwrap_or_else(|| panic!("{report}"))
    };
    assert!(
        why_of("f").contains("generation 2 of f (change 2, from app.c) was undone (`relive revert --last`): the program runs generation 1"),
        "{report}"
    );
    assert!(why_of("g").contains("and reverted since"), "{report}");
    // Both differences are the reverts', not signs of another compile.
    assert!(report[0].get("unlike_build").is_none(), "{report}");
}

/// A loop that never returns, called from a function `main` calls,
/// patched: the patch cannot tell that no later call comes (the caller
/// may call it again), so its record says nothing of old code kept, but
/// the running call runs the old code: verify notes it (it said "the 3
/// functions are the code pid N runs", no note, while the program printed
/// the old text: a libuv trial's `uv_run`). Called from `main` itself,
/// which calls it once, the patch tells: its new code never runs, and
/// verify says it differs.
#[test]
fn a_running_call_of_old_code_is_noted_by_verify() {
    let src = "#include <stdio.h>\n#include <unistd.h>\n__attribute__((noinline)) void run_loop(void) { for (;;) { printf(\"loop A\\n\"); fflush(stdout); usleep(2000); } }\n__attribute__((noinline)) void serve(void) { run_loop(); }\nint main(void) { serve(); return 0; }\n";
    let (target, obj, _) = patched_once(src, &[], "loop A", ("loop A", "loop B"));
    let (code, report) = verify_object(&target, &obj);
    assert_eq!(report[0]["old_code_kept"][0]["function"], "run_loop", "{report}");
    let why = report[0]["old_code_kept"][0]["why"].as_str().unwrap();
    assert!(why.contains("runs the old code now"), "{report}");
    assert_eq!(code, 0, "{report}");
    let out = relive_on(&target, &["verify", &target.pid_arg(), obj.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("runs for new calls, but 1 of them still runs old code in a call under way:"),
        "{text}"
    );
    // status says it too, by thread (it said nothing: a Lua trial).
    let out = relive_on(&target, &["status", "--json", &target.pid_arg()]);
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    let entry = status["patches"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["symbol"] == "run_loop")
        .unwrap_or_else(|| panic!("{status}"));
    assert_eq!(entry["old_code_running"], serde_json::json!([target.pid()]), "{status}");
    let serve = status["patches"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["symbol"] == "serve");
    assert!(serve.is_none_or(|p| p.get("old_code_running").is_none()), "{status}");
    let out = relive_on(&target, &["status", &target.pid_arg()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("old code running now: a call on thread {} runs", target.pid())),
        "{text}"
    );
    target.wait_for("loop A");
    let direct = src
        .replace("__attribute__((noinline)) void serve(void) { run_loop(); }\n", "")
        .replace(
            "int main(void) { serve(); return 0; }",
            "int main(void) { run_loop(); return 0; }",
        );
    let (target, obj, said) = patched_once(&direct, &[], "loop A", ("loop A", "loop B"));
    assert!(said.contains("unreachable run_loop"), "{said}");
    // Its running call keeps the old code, and no later call runs the new
    // one (it said "only from its next call": a jq trial's `main`).
    let out = relive_on(&target, &["status", &target.pid_arg()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("old code running now"), "{text}");
    assert!(!text.contains("only from its next call"), "{text}");
    let (code, report) = verify_object(&target, &obj);
    assert_eq!(code, 5, "{report}");
    assert_eq!(report[0]["unreached"][0]["function"], "run_loop", "{report}");
    target.wait_for("loop A");
}

/// A library function the program's `main` calls again and again, patched
/// while a thread waits in it (a `usleep` under it, `main` above it): its
/// next call runs the new code, and nothing says its calls keep the old
/// code for good. It was taken for the thread's outermost function, as no
/// code of the library is above it (a jq trial: libjq's input function).
#[test]
fn a_library_function_under_the_programs_loop_is_no_outermost_function() {
    const LIB: &str =
        "#include <unistd.h>\n__attribute__((noinline)) int lib_wait(void) { usleep(20000); return 1; }\n";
    const MAIN: &str = "#include <stdio.h>\nint lib_wait(void);\nint main(void) { setvbuf(stdout, NULL, _IOLBF, 0); for (;;) printf(\"w %d\\n\", lib_wait()); }\n";
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().to_path_buf();
    std::fs::create_dir(p.join("new")).unwrap();
    std::fs::write(p.join("lib.c"), LIB).unwrap();
    std::fs::write(p.join("new/lib.c"), LIB.replace("return 1;", "return 2;")).unwrap();
    std::fs::write(p.join("main.c"), MAIN).unwrap();
    for (args, at) in [
        (&["-O2", "-g", "-fPIC", "-c", "lib.c", "-o", "base.o"][..], p.clone()),
        (
            &["-O2", "-g", "-fPIC", "-shared", "-o", "libwait.so", "base.o"],
            p.clone(),
        ),
        (
            &[
                "-O2",
                "-g",
                "-o",
                "app",
                "main.c",
                "-L.",
                "-lwait",
                "-Wl,-rpath,$ORIGIN",
            ],
            p.clone(),
        ),
        (&["-O2", "-g", "-fPIC", "-c", "lib.c", "-o", "lib.o"], p.join("new")),
    ] {
        let built = Command::new("gcc").args(args).current_dir(&at).status().unwrap();
        assert!(built.success(), "gcc {args:?}");
    }
    let mut cmd = Command::new(p.join("app"));
    cmd.current_dir(&p);
    let target = Target::spawn(cmd, p.join("app"), dir);
    target.wait_for("w 1");
    let out = relive_on(
        &target,
        &[
            "patch",
            "--json",
            &target.pid_arg(),
            p.join("new/lib.o").to_str().unwrap(),
            "--base",
            p.join("base.o").to_str().unwrap(),
        ],
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{out:?}"));
    let applied = &report["applied"][0];
    assert_eq!(applied["name"], "lib_wait", "{report}");
    assert_eq!(applied["reach"]["reachable"], true, "{report}");
    assert!(applied["reach"].get("for_good").is_none(), "{report}");
    assert!(!applied["reach"].to_string().contains("outermost"), "{report}");
    target.wait_for("w 2");
    let out = relive_on(&target, &["status", "--json", &target.pid_arg()]);
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(status["patches"][0].get("old_code_kept").is_none(), "{status}");
}

/// A function whose address `init` stored (in memory mapped aside, as an
/// allocator like jemalloc keeps its heap, which no scan reads), called
/// through it again and again, is patched with `init` (changed too, its
/// `__LINE__` moved): its new code runs, and the patch says so. It was
/// said to have no caller: `init`'s code, replaced, was taken to call
/// nothing again, the address it took long ago with it (a redis trial:
/// `beforeSleep`, stored by `initServer` in its event loop).
#[test]
fn an_address_the_replaced_code_took_still_counts() {
    let src = "#include <stdio.h>\n#include <sys/mman.h>\n#include <unistd.h>\nstruct loop { void (*before)(void); };\nstatic struct loop *el;\n__attribute__((noinline)) void before(void) {\n    printf(\"b 1\\n\");\n}\n__attribute__((noinline)) void init(void) {\n    el = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);\n    el->before = before;\n    printf(\"init at %d\\n\", __LINE__);\n}\nint main(void) { setvbuf(stdout, NULL, _IOLBF, 0); init(); for (;;) { el->before(); usleep(3000); } }\n";
    let edit = (
        "    printf(\"b 1\\n\");\n",
        "    printf(\"b 2\\n\");\n    fflush(stdout);\n",
    );
    let (target, _, said) = patched_once(src, &[], "b 1", edit);
    assert!(said.contains("patched before"), "{said}");
    assert!(!said.contains("nothing in the program calls before"), "{said}");
    target.wait_for("b 2");
}

/// A program whose `init` and `main` log their `__LINE__`, below `work`.
const LINES: &str = "#include <stdio.h>\n#include <unistd.h>\n#define LOG(msg) log_at(__LINE__, msg)\n__attribute__((noinline)) void log_at(int line, const char *msg) { printf(\"%d: %s\\n\", line, msg); fflush(stdout); }\n__attribute__((noinline)) int work(int x) {\n    return x * 2;\n}\n__attribute__((noinline)) void init(void) {\n    LOG(\"init\");\n}\nint main(void) {\n    init();\n    LOG(\"started\");\n    for (int i = 0;; i++) { printf(\"w %d\\n\", work(i)); fflush(stdout); usleep(20000); }\n}\n";

/// An edit that adds a line to `work` moves `init` and `main` below it:
/// their code changes only in the `__LINE__`s they log. Their new code
/// cannot run (each was called once), and the patch says that is all
/// that differs, not how to make an edit of theirs run (there is none);
/// `verify` counts them as matching. An edit of `main`'s own (its
/// message) is still NOT REACHABLE with the advice, and verify exit 5.
#[test]
fn functions_that_changed_only_in_line_numbers_are_said_to() {
    let edit = ("    return x * 2;\n", "    int y = x * 3;\n    return y;\n");
    let (target, obj, said) = patched_once(LINES, &[], "w 0", edit);
    assert!(said.contains("patched work"), "{said}");
    assert!(said.contains("unreachable main"), "{said}");
    assert!(
        said.contains("only the line numbers of init changed (lines added or removed above moved it 1 line down)"),
        "{said}"
    );
    assert!(!said.contains("move the code you edit"), "{said}");
    let (code, report) = verify_object(&target, &obj);
    assert_eq!(code, 0, "{report}");
    assert!(
        report[0]
            .get("unreached")
            .is_none_or(|u| u.as_array().is_some_and(Vec::is_empty)),
        "{report}"
    );
    let lines = report[0]["lines_only"].to_string();
    assert!(lines.contains("only the line numbers of main changed"), "{report}");
    // Not a call under way that keeps old code.
    assert!(
        report[0]["old_code_kept"].as_array().is_none_or(Vec::is_empty),
        "{report}"
    );
    let out = relive_on(&target, &["verify", &target.pid_arg(), obj.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("call under way"), "{text}");
    assert!(
        text.contains("note: main: only the line numbers of main changed"),
        "{text}"
    );
    // main's own edit with the line added above it: not only lines.
    let from = &LINES[LINES.find(edit.0).unwrap()..LINES.find("LOG(\"started\");").unwrap()];
    let to = format!("{}LOG(\"up\");", from.replacen(edit.0, edit.1, 1));
    let (target, obj, said) = patched_once(LINES, &[], "w 0", (&format!("{from}LOG(\"started\");"), &to));
    assert!(said.contains("unreachable main"), "{said}");
    assert!(said.contains("move the code you edit"), "{said}");
    let (code, report) = verify_object(&target, &obj);
    assert_eq!(code, 5, "{report}");
    assert_eq!(report[0]["unreached"][0]["function"], "main", "{report}");
}

/// `revert NAME` while a thread is in a call of NAME's patched code: that
/// call finishes in it (a revert redirects new calls), and the revert says
/// so, by thread; the calls after it run the original code. A revert with
/// no such call says nothing of the kind (it said nothing either way).
#[test]
fn a_revert_says_which_calls_of_the_patched_code_finish_in_it() {
    // Each call of `step` takes about two seconds; `main` calls it again and
    // again.
    let src = "#include <stdio.h>\n#include <unistd.h>\n__attribute__((noinline)) void step(void) { for (int i = 0; i < 100; i++) { printf(\"step A\\n\"); fflush(stdout); usleep(20000); } }\nint main(void) { for (;;) step(); return 0; }\n";
    let (target, _, said) = patched_once(src, &[], "step A", ("step A", "step B"));
    assert!(said.contains("step"), "{said}");
    // The new code runs a call now: the old one ended.
    target.wait_for("step B");
    let out = relive_on(&target, &["revert", &target.pid_arg(), "step"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!(
            "running  step: a call under way on thread {} finishes in the patched code; its next call runs the original code",
            target.pid()
        )),
        "{text}"
    );
    // That call ends in the patched code, and the next runs the original.
    target.wait_for("step A");
    // The same in JSON.
    patched_again(&target, src, ("step A", "step B"));
    target.wait_for("step B");
    let out = relive_on(&target, &["revert", "--json", &target.pid_arg(), "step"]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{out:?}"));
    assert_eq!(report["reverted"][0]["name"], "step", "{report}");
    assert_eq!(
        report["running"],
        serde_json::json!([{ "name": "step", "threads": [target.pid()] }]),
        "{report}"
    );
    // The first line of a call of the original code: it has about two
    // seconds to go. Patched again and reverted at once, the new code
    // never ran, and the revert names no running call.
    target.wait_for("step A");
    patched_again(&target, src, ("step A", "step B"));
    let out = relive_on(&target, &["revert", "--json", &target.pid_arg(), "step"]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{out:?}"));
    assert_eq!(report["reverted"][0]["name"], "step", "{report}");
    assert!(report.get("running").is_none(), "{report}");
}

/// Patches `target` (started by [`patched_once`] from `src`) again with
/// `src` edited `from` → `to`, over its own build as the base.
fn patched_again(target: &Target, src: &str, (from, to): (&str, &str)) {
    let dir = target.dir.path();
    let again = dir.join("again");
    std::fs::create_dir_all(&again).unwrap();
    std::fs::write(again.join("app.c"), src.replace(from, to)).unwrap();
    let built = Command::new("gcc")
        .args(["-O2", "-g", "-c", "app.c", "-o", "app.o"])
        .current_dir(&again)
        .status();
    assert!(built.unwrap().success());
    let said = patch_over_base(target, &again.join("app.o"), &dir.join("base.o"));
    assert!(said.contains("step"), "{said}");
}

/// A program whose thread sleeps in `idle` with a stale return address
/// into `execute` in its buffer's uninitialized bytes (left by
/// `execute`'s call of `leaf`, deeper on the same stack).
const STALE_WORD: &str = "#include <stdio.h>\n#include <unistd.h>\n__attribute__((noinline)) int leaf(int x) { asm volatile(\"\" ::: \"memory\"); return x * 3; }\n__attribute__((noinline)) int execute(int x) { char b[64]; asm volatile(\"\" :: \"r\"(b) : \"memory\"); int r = leaf(x) + 1; asm volatile(\"\" :: \"r\"(b) : \"memory\"); return r + 1; }\n__attribute__((noinline)) void idle(void) { char pad[512]; asm volatile(\"\" :: \"r\"(pad) : \"memory\"); usleep(20000); asm volatile(\"\" :: \"r\"(pad) : \"memory\"); }\nint main(void) { setvbuf(stdout, NULL, _IOLBF, 0); for (int i = 0;; i++) { printf(\"e %d\\n\", execute(i) > 0); idle(); } }\n";

/// Whether `status` of `target` says nothing of old code running for
/// `symbol` (patched), and `verify` of `obj` notes no running call.
fn no_old_code_running(target: &Target, obj: &Path, symbol: &str) {
    let (code, report) = verify_object(target, obj);
    assert_eq!(
        (code, &report[0]["old_code_kept"]),
        (0, &serde_json::json!([])),
        "{report}"
    );
    let out = relive_on(target, &["status", "--json", &target.pid_arg()]);
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    let patched = status["patches"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["symbol"] == symbol);
    assert!(patched.is_some_and(|p| p.get("old_code_running").is_none()), "{status}");
}

/// A stale return address into a patched function, left on the stack by
/// a call that ended long ago (here in the uninitialized buffer of the
/// function the thread now sleeps in), is no running call: the patch,
/// `verify` and `status` say nothing of old code running. They did (a bc
/// trial: `execute` "is running on thread N: that call finishes in the
/// old code", while the thread sat in `read`); the frames are now walked
/// by the unwind tables.
#[test]
fn a_stale_return_address_on_the_stack_is_no_running_call() {
    let (target, obj, said) = patched_once(STALE_WORD, &[], "e 1", ("return r + 1;", "return -r;"));
    assert!(!said.contains("is running on thread"), "{said}");
    target.wait_for("e 0");
    no_old_code_running(&target, &obj, "execute");
    // The thread now sleeps in a patch's code (`idle` patched, its new
    // code in relive's pool), the stale word still above it: the frames
    // are walked through the patch's own unwind table (the walk stopped
    // there, and the scan found the stale word again: a bc trial).
    let p = target.dir.path();
    let second = |dir: &str, text: &str| {
        std::fs::create_dir_all(p.join(dir)).unwrap();
        std::fs::write(p.join(dir).join("app.c"), text).unwrap();
        let built = Command::new("gcc")
            .args(["-O2", "-g", "-c", "app.c", "-o", "app.o"])
            .current_dir(p.join(dir))
            .status();
        assert!(built.unwrap().success());
        p.join(dir).join("app.o")
    };
    let edited = STALE_WORD.replace("return r + 1;", "return -r;");
    let idle_patched = second("idle", &edited.replace("usleep(20000)", "usleep(20001)"));
    patch_over_base(&target, &idle_patched, &obj);
    target.wait_for("e 0");
    target.wait_for("e 0");
    let both = second(
        "both",
        &edited
            .replace("usleep(20000)", "usleep(20001)")
            .replace("return -r;", "return r - 100;"),
    );
    let said = patch_over_base(&target, &both, &idle_patched);
    assert!(!said.contains("is running on thread"), "{said}");
    let (code, report) = verify_object(&target, &both);
    assert_eq!(
        (code, &report[0]["old_code_kept"]),
        (0, &serde_json::json!([])),
        "{report}"
    );
}

/// A thread in the code of an earlier patch (generation 1) when the
/// function is patched again, and again up to generation 12: the patch
/// and verify of the newest object say the old code runs (both looked only
/// at the original code, and said nothing; then only at the last 8
/// generations).
#[test]
fn a_thread_in_an_earlier_generation_is_noted_by_verify() {
    let hold = std::env::temp_dir().join(format!("relive-verify-hold-{}", std::process::id()));
    let src = format!(
        "#include <stdio.h>\n#include <unistd.h>\n__attribute__((noinline)) void step(void) {{ printf(\"s A\\n\"); while (access({:?}, F_OK) == 0) usleep(1000); }}\nint main(void) {{ setvbuf(stdout, 0, _IOLBF, 0); for (;;) {{ step(); usleep(2000); }} }}\n",
        hold.display().to_string()
    );
    let (target, first, _) = patched_once(&src, &[], "s A", ("s A", "s B"));
    target.wait_for("s B");
    std::fs::write(&hold, "").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(100));
    // The source with `text` for "s A", patched over `base`: its object,
    // and what the patch printed.
    let dir = first.parent().unwrap();
    let patch_over = |text: &str, object: &str, base: &Path| {
        std::fs::write(dir.join("app.c"), src.replace("s A", text)).unwrap();
        let built = Command::new("gcc")
            .args(["-O2", "-g", "-c", "app.c", "-o", object])
            .current_dir(dir)
            .status()
            .unwrap();
        assert!(built.success());
        let obj = dir.join(object);
        let said = patch_over_base(&target, &obj, base);
        (obj, said)
    };
    // Generation 2, over the first patch's object: the patch says so too.
    let (second, said) = patch_over("s C", "second.o", &first);
    assert!(
        said.contains("step is running on thread") && said.contains("in the code of an earlier patch"),
        "{said}"
    );
    let (code, report) = verify_object(&target, &second);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report[0]["old_code_kept"][0]["function"], "step", "{report}");
    // Generation 3, the thread still in generation 1: said again (the
    // journal keeps the newest generation alone; the third patch looked
    // at the second only).
    let (third, said) = patch_over("s D", "third.o", &second);
    assert!(said.contains("in the code of an earlier patch"), "{said}");
    // More patches than the journal keeps for `revert --last`: the
    // thread's generation is still there, and said (the note went at the
    // eleventh, and verify said the function was the code that runs).
    let mut base = third;
    for n in 4..=12 {
        let (next, said) = patch_over(&format!("s gen{n}"), &format!("gen{n}.o"), &base);
        assert!(
            said.contains("in the code of an earlier patch"),
            "generation {n}: {said}"
        );
        base = next;
    }
    let (code, report) = verify_object(&target, &base);
    let _ = std::fs::remove_file(&hold);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report[0]["old_code_kept"][0]["function"], "step", "{report}");
    target.wait_for("s gen12");
}

/// An object the link did not take (an archive member nothing used) whose
/// only function the program has is an inline one every user of its
/// header has a copy of: not verified (exit 5), where verify said "its 1
/// function is the code pid runs" (a LevelDB trial: db/c.o, its 90 own
/// functions absent).
#[test]
fn an_object_the_link_did_not_take_is_not_verified_by_a_shared_inline_copy() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().to_path_buf();
    std::fs::write(
        p.join("h.h"),
        "inline __attribute__((noinline)) int shared(int x) { return x * 3; }\n",
    )
    .unwrap();
    std::fs::write(
        p.join("main.cc"),
        "#include <cstdio>\n#include <unistd.h>\n#include \"h.h\"\nint main() { setvbuf(stdout, nullptr, _IOLBF, 0); for (int i = 0;; i++) { std::printf(\"v %d\\n\", shared(i % 3)); usleep(3000); } }\n",
    )
    .unwrap();
    std::fs::write(
        p.join("unused.cc"),
        "#include \"h.h\"\nint unused_fn(int x) { return shared(x) + 1; }\n",
    )
    .unwrap();
    let run = |program: &str, args: &[&str]| {
        let ok = Command::new(program)
            .args(args)
            .current_dir(&p)
            .status()
            .unwrap()
            .success();
        assert!(ok, "{program} {args:?}");
    };
    run("g++", &["-O2", "-g", "-c", "unused.cc"]);
    run("ar", &["rcs", "libunused.a", "unused.o"]);
    run("g++", &["-O2", "-g", "main.cc", "-L.", "-lunused", "-o", "app"]);
    let exe = p.join("app");
    let target = Target::spawn(Command::new(&exe), exe, dir);
    target.wait_for("v 6");
    let out = verify_run(&target, &p.join("unused.o"));
    let (code, report) = report_of(&out);
    assert_eq!(code, 5, "{report}");
    assert_eq!(report[0]["shared_copies_only"], true, "{report}");
    let text = Command::new(env!("CARGO_BIN_EXE_relive"))
        .args(["verify", "--pid", &target.pid_arg()])
        .arg(p.join("unused.o"))
        .env("RELIVE_STATE_DIR", p.join("state"))
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&text.stdout);
    assert!(
        said.contains("NOT VERIFIED") && said.contains("the link did not take"),
        "{said}"
    );
}

/// A patched function that nothing in the program calls (an unused API
/// wrapper) runs neither version: its entry leads to the new code, so
/// verify of the new object matches. It said "DIFFER ... the process runs
/// its old code", exit 5 (an LZ4 trial: `LZ4_compress`).
#[test]
fn a_patched_function_nothing_calls_is_the_code_that_runs() {
    let src = "#include <stdio.h>\n#include <unistd.h>\n__attribute__((noinline)) int wrapper(int x) { return x + 1; }\n__attribute__((noinline, noipa)) int value(void) { return 5; }\nint main(void) { setvbuf(stdout, 0, _IOLBF, 0); for (;;) { printf(\"v %d\\n\", value()); usleep(2000); } }\n";
    let (target, new, said) = patched_once(src, &[], "v 5", ("return x + 1;", "return x + 2;"));
    assert!(said.contains("nothing in the program calls wrapper"), "{said}");
    let (code, report) = verify_object(&target, &new);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report[0]["unreached"], serde_json::json!([]), "{report}");
    // Said, as status says it (a PCRE2 trial: status said "not reached",
    // verify nothing).
    assert_eq!(report[0]["never_called"][0]["function"], "wrapper", "{report}");
    let out = relive_on(&target, &["verify", &target.pid_arg(), new.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("note: wrapper: nothing in the program calls wrapper"),
        "{text}"
    );
    // `-q` says the verdict without the note (a tree-sitter trial's
    // `verify -q` printed every note).
    let out = relive_on(&target, &["verify", "-q", &target.pid_arg(), new.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("functions are the code") && !text.contains("note:"),
        "{text}"
    );
    target.wait_for("v 5");
}

/// An object whose code matches but whose variable starts with another
/// value than the program file gives it: verified (the code is what
/// runs), with the variable named, as the program runs with the value it
/// has (it said nothing: an edited initializer looked verified). A
/// pointer initialized to a function's address is no difference.
#[test]
fn an_initial_value_the_program_was_not_built_with_is_said() {
    let src = program(
        "int seed = SEED;\nint twice(int x) { return 2 * x; }\nint (*op)(int) = twice;\n__attribute__((noinline)) int f(int i) { return op(seed + i); }",
    );
    let (code, report) = verify(&src, &["-O2", "-g", "-DSEED=3"], &["-O2", "-g", "-DSEED=3"]);
    assert_eq!(code, 0, "{report}");
    assert!(report[0].get("initial_values_differ").is_none(), "{report}");
    let (code, report) = verify(&src, &["-O2", "-g", "-DSEED=3"], &["-O2", "-g", "-DSEED=5"]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(
        report[0]["initial_values_differ"],
        serde_json::json!(["seed"]),
        "{report}"
    );
}

/// The same for a variable a patch added (the program was built without
/// it): an object whose initializer of it is not the one the patch gave
/// it is said to differ there, the code verified (a bzip2 trial: an added
/// `relive_mask`, its initializer edited afterwards, was "the code pid
/// runs" with nothing said, while the program ran with the old value).
/// The object the patch came from says nothing, and a pointer to the
/// variable, added with it, is no difference.
#[test]
fn an_added_variables_initial_value_the_patch_did_not_give_is_said() {
    let src = program("__attribute__((noinline, noipa)) int f(int i) { return 5 + 0 * i; }");
    let added = "int bonus = 7;\nint *bonus_at = &bonus;\n__attribute__((noinline, noipa)) int f(int i) { return *bonus_at + 0 * i; }";
    let (target, new, said) = patched_once(
        &src,
        &[],
        "v 5",
        (
            "__attribute__((noinline, noipa)) int f(int i) { return 5 + 0 * i; }",
            added,
        ),
    );
    assert!(said.contains("patched"), "{said}");
    target.wait_for("v 7");
    let (code, report) = verify_object(&target, &new);
    assert_eq!(code, 0, "{report}");
    assert!(report[0].get("added_initial_values_differ").is_none(), "{report}");
    // The same file with the added variable's initializer edited.
    let edited_dir = target.dir.path().join("edited");
    std::fs::create_dir(&edited_dir).unwrap();
    let text = std::fs::read_to_string(target.dir.path().join("new/app.c")).unwrap();
    std::fs::write(
        edited_dir.join("app.c"),
        text.replace("int bonus = 7;", "int bonus = 9;"),
    )
    .unwrap();
    let built = Command::new("gcc")
        .args(["-O2", "-g", "-c", "app.c", "-o", "app.o"])
        .current_dir(&edited_dir)
        .status()
        .unwrap();
    assert!(built.success());
    let (code, report) = verify_object(&target, &edited_dir.join("app.o"));
    assert_eq!(code, 0, "{report}");
    assert_eq!(
        report[0]["added_initial_values_differ"],
        serde_json::json!(["bonus"]),
        "{report}"
    );
    assert_eq!(report[0]["differs"], serde_json::json!([]), "{report}");
    let out = Command::new(env!("CARGO_BIN_EXE_relive"))
        .args(["verify", "--pid", &target.pid_arg()])
        .arg(edited_dir.join("app.o"))
        .env("RELIVE_STATE_DIR", target.dir.path().join("state"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("the initial value of bonus differs from the one the patch that added it gave it"),
        "{text}"
    );
    target.wait_for("v 7");
    // Reverted, the pool goes, and the added variables with it: said (a
    // trial's revert --all said only "freed", and a value was gone).
    let out = Command::new(env!("CARGO_BIN_EXE_relive"))
        .args(["revert", &target.pid_arg(), "--all", "--json"])
        .env("RELIVE_STATE_DIR", target.dir.path().join("state"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut gone: Vec<&str> = report["added_gone"]
        .as_array()
        .map(|a| a.iter().filter_map(|g| g["name"].as_str()).collect())
        .unwrap_or_default();
    gone.sort();
    match report["freed"].as_array().map_or(0, Vec::len) {
        // A stale word on a stack may keep the pool (said with why).
        0 => {
            assert!(report["kept"][0]["why"].is_string(), "{report}");
            assert!(gone.is_empty(), "{report}");
        }
        _ => assert_eq!(gone, ["bonus", "bonus_at"], "{report}"),
    }
    target.wait_for("v 5");
}

/// An object compiled from a copy of the program's file under another
/// name (`copy.c`): its statics are looked for under that name, and each
/// reference to one read as a difference, with nothing saying why (a
/// trial on SQLite: "192 of 269 functions DIFFER ... refers to
/// sqlite3Config, which the program does not have", then one line of
/// 1,300 names). The report says the object is not one of the program's
/// files, above the differences, and names a few of the functions the
/// program lacks, not all.
#[test]
fn an_object_of_a_renamed_copy_is_said_to_be_of_no_file_of_the_program() {
    let mut body = String::from("static volatile int state = 3;\n");
    for k in 0..30 {
        body += &format!("static __attribute__((noinline)) int s{k}(int x) {{ return x * {k} + state; }}\n");
    }
    // Global functions that read the file's static: each differs.
    for k in 0..12 {
        body += &format!("__attribute__((noinline)) int g{k}(int x) {{ return x + {k} * state; }}\n");
    }
    body += "__attribute__((noinline)) int f(int i) { return s0(i)";
    for k in 1..30 {
        body += &format!(" + s{k}(i)");
    }
    body += "; }\n";
    let src = program(&body);
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().to_path_buf();
    std::fs::write(p.join("app.c"), &src).unwrap();
    std::fs::write(p.join("copy.c"), &src).unwrap();
    for args in [
        &["app.c", "-o", "app"][..],
        &["-c", "copy.c", "-o", "copy.o"],
        &["-c", "app.c", "-o", "app.o"],
    ] {
        let out = Command::new("gcc")
            .args(["-O2", "-g"])
            .args(args)
            .current_dir(&p)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let target = Target::spawn(Command::new(p.join("app")), p.join("app"), dir);
    target.wait_for_prefix("v ");
    // The program's own file's object verifies, and says nothing of it.
    let (code, report) = verify_object(&target, &p.join("app.o"));
    assert_eq!(code, 0, "{report}");
    assert!(report[0].get("foreign").is_none(), "{report}");
    let (code, report) = verify_object(&target, &p.join("copy.o"));
    assert_eq!(code, 5, "{report}");
    let foreign = report[0]["foreign"].as_str().unwrap_or_default();
    assert!(
        foreign.contains("copy.c") && foreign.contains("not a source"),
        "{report}"
    );
    let words = Command::new(env!("CARGO_BIN_EXE_relive"))
        .args(["verify", &target.pid_arg()])
        .arg(p.join("copy.o"))
        .env("RELIVE_STATE_DIR", target.dir.path().join("state"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&words.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].contains("DIFFER"), "{text}");
    assert!(
        lines[1].contains("note:") && lines[1].contains("not a source"),
        "{text}"
    );
    // f and the 12 g: 10 shown, the note says why.
    assert!(lines[0].contains("13 of "), "{text}");
    assert!(text.contains("  and 3 more (--json lists them all)"), "{text}");
    assert_eq!(report[0]["differs"].as_array().map(Vec::len), Some(13), "{report}");
    let absent = lines
        .iter()
        .find(|l| l.contains("not found in the program under this object's file name"))
        .unwrap_or(&"");
    assert!(absent.contains("and 10 more (--json lists them all)"), "{text}");
    assert!(!text.contains("inlined or dropped"), "{text}");
}

/// A reference a few bytes before a table (GCC's `lea second-2(%rip)` for
/// a table indexed from 1) falls in the last bytes of the table before it
/// in an object with one `.rodata`, while a compile with a section per
/// variable (as relive's own compiles are) refers to it through the table
/// it precedes, whose copy the patched code then points before: verify
/// of the plain object said the first table differed and exited 5 (a
/// QuickJS trial, `lre_ctype_bits`). Taken as the reference to the table
/// it precedes, it is the same; a table that differs still differs.
#[test]
fn a_reference_just_before_a_table_is_the_tables() {
    let src = program(
        "static const unsigned short second[16] = {101,102,103,104,105,106,107,108,109,110,111,112,113,114,115,116};\n\
         static const unsigned short first[16] = {1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16};\n\
         __attribute__((noinline, noipa)) int f(int i) { const unsigned short *p = second - 1; return p[i] + first[i]; }",
    );
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().to_path_buf();
    std::fs::write(p.join("app.c"), &src).unwrap();
    let gcc = |dir: &Path, args: &[&str]| {
        assert!(
            Command::new("gcc")
                .args(args)
                .current_dir(dir)
                .status()
                .unwrap()
                .success(),
            "{args:?}"
        );
    };
    gcc(&p, &["-O2", "-g", "app.c", "-o", "app"]);
    let new_dir = p.join("new");
    std::fs::create_dir(&new_dir).unwrap();
    let edited = src.replace("+ first[i]; }", "+ first[i] + 1000; }");
    std::fs::write(new_dir.join("app.c"), &edited).unwrap();
    gcc(
        &new_dir,
        &["-O2", "-g", "-fdata-sections", "-c", "app.c", "-o", "sections.o"],
    );
    gcc(&new_dir, &["-O2", "-g", "-c", "app.c", "-o", "plain.o"]);
    std::fs::write(new_dir.join("app.c"), edited.replace("101,102", "901,902")).unwrap();
    gcc(&new_dir, &["-O2", "-g", "-c", "app.c", "-o", "other.o"]);
    let mut cmd = Command::new(p.join("app"));
    cmd.current_dir(&p);
    let target = Target::spawn(cmd, p.join("app"), dir);
    target.wait_for("v 107");
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_relive"))
            .args(args)
            .env("RELIVE_STATE_DIR", p.join("state"))
            .output()
            .unwrap()
    };
    let object = |name: &str| new_dir.join(name).display().to_string();
    let out = run(&["patch", &target.pid_arg(), &object("sections.o"), "--force"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    target.wait_for("v 1107");
    let (code, report) = verify_object(&target, Path::new(&object("plain.o")));
    assert_eq!(code, 0, "{report}");
    let (code, report) = verify_object(&target, Path::new(&object("other.o")));
    assert_eq!(code, 5, "{report}");
    assert_eq!(differing(&report), ["f"], "{report}");
}

/// Patched code that reads a global constant through the GOT (-fPIC:
/// `mov table@GOTPCREL(%rip)`, which relive's link keeps, its cell in the
/// pool) verifies as what runs, and is the --base of the next patch: the
/// cell's pointer was compared with the table's contents, so verify said
/// "DIFFER" (exit 5) and the next patch refused the base (a Snappy trial:
/// C++ vtables and function-local statics). The program's own build, where
/// the linker relaxed the load to `lea`, verifies too.
#[test]
fn code_reading_a_constant_through_the_got_verifies_after_a_patch() {
    let source = program(
        "const int table[4] = {10, 20, 30, 40};\n__attribute__((noinline)) int f(int i) { return table[i & 3] + 1; }",
    );
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().to_path_buf();
    let gcc = |args: &[&str]| {
        let status = Command::new("gcc").args(args).current_dir(&p).status().unwrap();
        assert!(status.success(), "gcc {args:?}");
    };
    std::fs::write(p.join("app.c"), &source).unwrap();
    gcc(&["-O2", "-g", "-fPIC", "-c", "app.c", "-o", "app.o"]);
    gcc(&["app.o", "-o", "app"]);
    std::fs::write(p.join("app.c"), source.replace("+ 1;", "+ 2;")).unwrap();
    gcc(&["-O2", "-g", "-fPIC", "-c", "app.c", "-o", "new.o"]);
    std::fs::write(p.join("app.c"), &source).unwrap();
    let mut cmd = Command::new(p.join("app"));
    cmd.current_dir(&p);
    let target = Target::spawn(cmd, p.join("app"), dir);
    target.wait_for("v 41");
    assert_eq!(verify_object(&target, &p.join("app.o")).0, 0);
    let relive = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_relive"))
            .args(args)
            .env("RELIVE_STATE_DIR", target.dir.path().join("state"))
            .output()
            .unwrap()
    };
    let pid = target.pid_arg();
    let new = p.join("new.o").display().to_string();
    let old = p.join("app.o").display().to_string();
    let out = relive(&["patch", &pid, &new, "--base", &old]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    target.wait_for("v 42");
    let (code, report) = verify_object(&target, &p.join("new.o"));
    assert_eq!(code, 0, "{report}");
    // The build's object differs where the patch runs, and says so (an
    // Oniguruma trial: a one-shot patch's function was said only to
    // DIFFER).
    let (code, report) = verify_object(&target, &p.join("app.o"));
    assert_eq!(code, 5, "{report}");
    let why = report[0]["differs"][0]["why"].as_str().unwrap_or_default();
    assert!(
        why.contains("it runs generation 1 of a relive patch (change 1")
            && why.contains("the program's own code for it"),
        "{report}"
    );
    // The patched object is the base of the next patch, back to the build.
    let out = relive(&["patch", &pid, &old, "--base", &new]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    target.wait_for("v 41");
    assert_eq!(verify_object(&target, &p.join("app.o")).0, 0);
}

/// The revert verify suggests for a function whose patch is in force is
/// one `relive revert` does: with the functions patched in the same
/// change that must go with it (a static signature change and its
/// caller). It named the function alone, which revert refused (a libxz
/// trial: `lzma_check_init`, patched in one change with its callers).
#[test]
fn the_revert_verify_suggests_is_one_revert_does() {
    let src = "#include <stdio.h>\n#include <unistd.h>\nvolatile int seed = 3;\nstatic __attribute__((noinline, noipa)) int f(int a) { return a + 1; }\n__attribute__((noinline, noipa)) int g(void) { return f(seed); }\nint main(void) { setvbuf(stdout, 0, _IOLBF, 0); for (;;) { printf(\"v %d\\n\", g()); usleep(2000); } }\n";
    let edited = (
        "int f(int a) { return a + 1; }\n__attribute__((noinline, noipa)) int g(void) { return f(seed); }",
        "int f(int a, int b) { return a + b; }\n__attribute__((noinline, noipa)) int g(void) { return f(seed, 5); }",
    );
    let (target, _, said) = patched_once(src, &[], "v 4", edited);
    assert!(said.contains("f") && said.contains("g"), "{said}");
    target.wait_for("v 8");
    let base = target.dir.path().join("base.o");
    let (code, report) = verify_object(&target, &base);
    assert_eq!(code, 5, "{report}");
    let why = report[0]["differs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["function"] == "f")
        .map(|d| d["why"].as_str().unwrap_or_default().to_string())
        .unwrap_or_else(|| panic!("f differs: {report}"));
    let pid = target.pid_arg();
    assert!(
        why.contains(&format!("`relive revert {pid} f g` brings that back"))
            || why.contains(&format!("`relive revert {pid} g f` brings that back")),
        "{why}"
    );
    let suggested = why.split('`').nth(1).unwrap();
    let args: Vec<&str> = suggested.split(' ').skip(1).collect();
    let out = relive_on(&target, &args);
    assert!(
        out.status.success(),
        "{suggested}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    target.wait_for("v 4");
}
