//! `relive build -- make …` end to end: real make projects built under
//! relive, the compile_commands.json it writes read back, and its entries
//! run again to check that they compile.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// `relive build OPTIONS -- COMMAND…` run in `dir`.
fn relive_build(dir: &Path, options: &[&str], command: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_relive"))
        .arg("build")
        .args(options)
        .arg("--")
        .args(command)
        .current_dir(dir)
        .output()
        .unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Writes `files` (path, text) under `dir`.
fn project(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, text) in files {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    dir
}

fn database(dir: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(dir.join("compile_commands.json")).unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn arguments(entry: &Value) -> Vec<String> {
    entry["arguments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect()
}

/// The entries for `file` (as the build wrote it).
fn entries_for<'a>(db: &'a [Value], file: &str) -> Vec<&'a Value> {
    db.iter().filter(|e| e["file"] == file).collect()
}

/// Runs an entry's arguments in its directory with the output sent to a
/// fresh object, and requires the compile to succeed.
fn compiles(entry: &Value) {
    let mut args = arguments(entry);
    if let Some(i) = args.iter().position(|a| a == "-o") {
        args.drain(i..i + 2);
    }
    let out_dir = tempfile::tempdir().unwrap();
    let object = out_dir.path().join("check.o");
    let out = Command::new(&args[0])
        .args(&args[1..])
        .arg("-o")
        .arg(&object)
        .current_dir(entry["directory"].as_str().unwrap())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?} in {}: {}",
        entry["directory"],
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(std::fs::metadata(&object).unwrap().len() > 0);
}

const HEADER: &str = "#define SCALE 3\n";
/// Fails to compile unless MODE is 2 and inc/ is on the include path.
const SRC_A: &str = "#include \"scale.h\"\n#if MODE != 2\n#error MODE\n#endif\nint a(void) { return SCALE * MODE; }\n";
const SRC_B: &str = "#include \"scale.h\"\nint a(void);\nint main(void) { return a() == SCALE * MODE ? 0 : 1; }\n";

/// The Makefile hard-codes the compiler's path: a `PATH` shim would not
/// see it.
const HARD_CODED: &str = "\
CFLAGS = -DMODE=2 -Iinc -O2 -g
app: src/a.o src/b.o
\t/usr/bin/gcc -o $@ $^
src/%.o: src/%.c inc/scale.h
\t/usr/bin/gcc $(CFLAGS) -c $< -o $@
clean:
\trm -f app src/*.o
";

fn hard_coded_project() -> tempfile::TempDir {
    project(&[
        ("Makefile", HARD_CODED),
        ("inc/scale.h", HEADER),
        ("src/a.c", SRC_A),
        ("src/b.c", SRC_B),
    ])
}

fn canonical(dir: &Path) -> String {
    dir.canonicalize().unwrap().display().to_string()
}

#[test]
fn records_a_makefile_that_hard_codes_the_compiler_under_make_j() {
    let dir = hard_coded_project();
    let out = relive_build(dir.path(), &[], &["make", "-j2"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("recorded 2 compile commands for 2 files"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("relive: recorded /usr/bin/gcc -c src/a.c (in "));
    // The build really ran.
    assert!(Command::new(dir.path().join("app")).status().unwrap().success());

    let db = database(dir.path());
    assert_eq!(db.len(), 2, "{db:#?}");
    for (file, object) in [("src/a.c", "src/a.o"), ("src/b.c", "src/b.o")] {
        let found = entries_for(&db, file);
        assert_eq!(found.len(), 1, "{file}: {db:#?}");
        let entry = found[0];
        assert_eq!(entry["directory"], canonical(dir.path()));
        assert_eq!(
            arguments(entry),
            [
                "/usr/bin/gcc",
                "-DMODE=2",
                "-Iinc",
                "-O2",
                "-g",
                "-c",
                file,
                "-o",
                object
            ]
        );
        assert_eq!(entry["output"], object);
        compiles(entry);
    }
}

#[test]
fn merges_into_an_existing_database() {
    let dir = hard_coded_project();
    let root = canonical(dir.path());
    let existing = serde_json::json!([
        {"directory": "/elsewhere", "file": "other.c", "command": "cc -c other.c", "kept": true},
        {"directory": root, "file": "src/a.c", "arguments": ["cc", "-O0", "-c", "src/a.c"]},
    ]);
    std::fs::write(dir.path().join("compile_commands.json"), existing.to_string()).unwrap();
    let out = relive_build(dir.path(), &["-q"], &["make"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        !stderr(&out).contains("relive: recorded /usr/bin/gcc"),
        "--quiet: {}",
        stderr(&out)
    );

    let db = database(dir.path());
    assert_eq!(db.len(), 3, "{db:#?}");
    let other = entries_for(&db, "other.c");
    assert_eq!(other.len(), 1);
    assert_eq!(other[0]["command"], "cc -c other.c");
    assert_eq!(other[0]["kept"], true);
    let a = entries_for(&db, "src/a.c");
    assert_eq!(a.len(), 1, "the old entry is replaced: {db:#?}");
    assert!(arguments(a[0]).contains(&"-DMODE=2".to_string()));
    assert!(!arguments(a[0]).contains(&"-O0".to_string()));
    assert_eq!(entries_for(&db, "src/b.c").len(), 1);
}

#[test]
fn a_compile_and_link_in_one_command_gives_one_compile_per_source() {
    let dir = project(&[
        ("Makefile", "app: a.c b.c\n\tcc -O2 -DX=1 -o app a.c b.c -lm\n"),
        ("a.c", "#include <math.h>\ndouble f(double x) { return sqrt(x) * X; }\n"),
        (
            "b.c",
            "double f(double);\nint main(void) { return f(4.0) == 2.0 * X ? 0 : 1; }\n",
        ),
    ]);
    let out = relive_build(dir.path(), &[], &["make"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(Command::new(dir.path().join("app")).status().unwrap().success());
    let db = database(dir.path());
    assert_eq!(db.len(), 2, "{db:#?}");
    for file in ["a.c", "b.c"] {
        let entry = entries_for(&db, file)[0];
        assert_eq!(arguments(entry), ["cc", "-O2", "-DX=1", "-c", file]);
        assert!(entry.get("output").is_none());
        compiles(entry);
    }
}

#[test]
fn ccache_compiles_are_recorded_once_per_file() {
    if Command::new("ccache").arg("--version").output().is_err() {
        eprintln!("SKIPPED: ccache is not installed (apt-get install ccache to run this test)");
        return;
    }
    let dir = project(&[
        (
            "Makefile",
            "CC = ccache gcc\nCFLAGS = -DMODE=2 -Iinc -O1\napp: src/a.o src/b.o\n\t$(CC) -o $@ $^\n\
             src/%.o: src/%.c\n\t$(CC) $(CFLAGS) -c $< -o $@\nclean:\n\trm -f app src/*.o\n",
        ),
        ("inc/scale.h", HEADER),
        ("src/a.c", SRC_A),
        ("src/b.c", SRC_B),
    ]);
    let cache = dir.path().join("ccache");
    let run = || {
        let out = Command::new(env!("CARGO_BIN_EXE_relive"))
            .args(["build", "--json", "--", "make", "-j2"])
            .current_dir(dir.path())
            .env("CCACHE_DIR", &cache)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        out
    };
    // A cache miss (ccache runs the preprocessor, then the real compiler
    // with arguments of its own), then a hit after `make clean`.
    for round in ["miss", "hit"] {
        let out = run();
        let summary: Value = serde_json::from_str(stderr(&out).lines().last().unwrap()).unwrap();
        assert_eq!(summary["recorded"], 2, "{round}: {summary}");
        let db = database(dir.path());
        assert_eq!(db.len(), 2, "{round}: {db:#?}");
        for file in ["src/a.c", "src/b.c"] {
            let found = entries_for(&db, file);
            assert_eq!(found.len(), 1, "{round} {file}: {db:#?}");
            let args = arguments(found[0]);
            assert_eq!(args[0], "gcc", "the wrapper is left out: {args:?}");
            assert!(args.contains(&"-DMODE=2".to_string()));
            compiles(found[0]);
        }
        assert!(Command::new("make")
            .arg("clean")
            .current_dir(dir.path())
            .output()
            .unwrap()
            .status
            .success());
    }
}

#[test]
fn a_failing_build_keeps_what_it_compiled_and_its_status() {
    let dir = project(&[
        (
            "Makefile",
            "app: good.o bad.o\n\tgcc -o $@ $^\n%.o: %.c\n\tgcc -O1 -DGOOD -c $< -o $@\n",
        ),
        ("good.c", "int good(void) { return 1; }\n"),
        ("bad.c", "int main(void) { return syntax error; }\n"),
    ]);
    let out = relive_build(dir.path(), &[], &["make"]);
    assert_eq!(out.status.code(), Some(2), "make's status: {}", stderr(&out));
    assert!(stderr(&out).contains("failed (exit status 2)"), "{}", stderr(&out));
    let db = database(dir.path());
    let good = entries_for(&db, "good.c");
    assert_eq!(good.len(), 1, "{db:#?}");
    assert_eq!(
        arguments(good[0]),
        ["gcc", "-O1", "-DGOOD", "-c", "good.c", "-o", "good.o"]
    );
    // The compile that failed ran too: its command is the build's.
    assert_eq!(entries_for(&db, "bad.c").len(), 1);

    // A build that fails before compiling anything writes nothing.
    let before = std::fs::read(dir.path().join("compile_commands.json")).unwrap();
    let out = relive_build(dir.path(), &[], &["sh", "-c", "exit 7"]);
    assert_eq!(out.status.code(), Some(7));
    assert_eq!(std::fs::read(dir.path().join("compile_commands.json")).unwrap(), before);
}

#[test]
fn an_up_to_date_build_leaves_the_database_alone() {
    let dir = hard_coded_project();
    let out = relive_build(dir.path(), &[], &["make"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let path = dir.path().join("compile_commands.json");
    let before = std::fs::read(&path).unwrap();
    let modified = std::fs::metadata(&path).unwrap().modified().unwrap();
    let out = relive_build(dir.path(), &[], &["make"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("make clean"), "{}", stderr(&out));
    assert_eq!(std::fs::read(&path).unwrap(), before);
    assert_eq!(std::fs::metadata(&path).unwrap().modified().unwrap(), modified);
    // -B rebuilds: recorded again, no duplicates.
    let out = relive_build(dir.path(), &["--json"], &["make", "-B"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let summary: Value = serde_json::from_str(stderr(&out).lines().last().unwrap()).unwrap();
    assert_eq!(summary["event"], "built");
    assert_eq!(summary["status"], 0);
    assert_eq!(summary["recorded"], 2);
    assert_eq!(summary["written"], true);
    let root = PathBuf::from(canonical(dir.path()));
    assert_eq!(
        summary["files"],
        serde_json::json!([root.join("src/a.c"), root.join("src/b.c")])
    );
    assert_eq!(database(dir.path()).len(), 2);
}

#[test]
fn writes_where_output_says_and_refuses_to_overwrite_a_non_database() {
    let dir = hard_coded_project();
    let out = relive_build(
        dir.path(),
        &["-o", "build/db.json"],
        &["sh", "-c", "mkdir -p build && make"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = std::fs::read_to_string(dir.path().join("build/db.json")).unwrap();
    assert_eq!(serde_json::from_str::<Vec<Value>>(&text).unwrap().len(), 2);
    assert!(!dir.path().join("compile_commands.json").exists());

    std::fs::write(dir.path().join("compile_commands.json"), "not json").unwrap();
    let out = relive_build(dir.path(), &[], &["make", "-B"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("is not a compilation database"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("compile_commands.json")).unwrap(),
        "not json"
    );
}

#[test]
fn a_missing_build_command_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = relive_build(dir.path(), &[], &["relive-no-such-build-tool"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("relive-no-such-build-tool"), "{}", stderr(&out));
}

#[test]
fn an_interrupted_build_still_records_what_it_compiled() {
    let dir = project(&[("a.c", "int a(void) { return 1; }\n")]);
    // Outside a terminal the interrupt is passed on to the build (SIGTERM).
    let child = Command::new(env!("CARGO_BIN_EXE_relive"))
        .args([
            "build",
            "--",
            "sh",
            "-c",
            "gcc -O1 -c a.c -o a.o; sleep 30 >/dev/null 2>&1 </dev/null & echo $! > sleeper; wait",
        ])
        .current_dir(dir.path())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + relive_testkit::PATIENCE;
    while !dir.path().join("a.o").exists() || !dir.path().join("sleeper").exists() {
        assert!(std::time::Instant::now() < deadline, "the build never compiled a.c");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(128 + 15), "{}", stderr(&out));
    assert!(stderr(&out).contains("interrupted"), "{}", stderr(&out));
    let db = database(dir.path());
    assert_eq!(
        arguments(entries_for(&db, "a.c")[0]),
        ["gcc", "-O1", "-c", "a.c", "-o", "a.o"]
    );
    // The build's background job outlives it, untraced.
    let pid = std::fs::read_to_string(dir.path().join("sleeper")).unwrap();
    let status = std::fs::read_to_string(format!("/proc/{}/status", pid.trim())).unwrap();
    assert!(status.contains("TracerPid:\t0"), "{status}");
    let _ = Command::new("kill").arg(pid.trim()).status();
}
