//! Differential testing of `relive patch` against real C code bases (issue
//! 18): a patched process must compute exactly what the same program,
//! freshly built from the edited sources, computes (the oracle).
//!
//! The code bases are zlib (the sources the `libz-sys` crate ships) and
//! zstd (`zstd-sys`), dev-dependencies of this crate so `cargo test`
//! downloads the versions Cargo.lock names. Each is built the way upstream
//! builds it (its -D flags, hidden visibility) in variants of compiler,
//! optimisation and PIE, with `-g`, together with a driver program of ours
//! (`differential/*_driver.c`) that computes one round of results per
//! `step` line on its standard input and prints them on one line.
//!
//! For each edit of a library source file (hand-written ones, below, and
//! generated ones: a constant or a comparison changed), the harness
//! compiles the edited translation unit with exactly the program's flags,
//! runs `relive patch --pid P new.o --base old.o --json` on a running copy
//! of the original program, steps it, and compares each round with the
//! oracle's. Sequences patch again on top (base: the previous patch's
//! object) and end with `relive revert --all`, after which the program
//! must compute what the original does.
//!
//! Outcomes: patched and matched; patched but MISMATCH (a relive bug);
//! refused with a reason (reported, not a failure, as long as the program
//! still computes what it did); relive or the target crashed (bugs). The
//! test fails on any mismatch or crash, and prints one line per case and a
//! summary table.
//!
//! `cargo test -p relive --test differential` runs a fixed, modest set.
//! The long run builds every variant and runs every hand edit on each, plus
//! `RELIVE_DIFF_EDITS` generated edits (default 200):
//! `cargo test -p relive --test differential -- --ignored --nocapture`.
//! `RELIVE_DIFF_EDITS=N` also sets the short run's number of generated
//! edits, `RELIVE_DIFF_SEED` their seed, `RELIVE_DIFF_ONLY=TEXT` keeps the
//! cases whose name (`zlib/gcc-O2-pie/inflate-literal`) contains TEXT, and
//! `RELIVE_DIFF_JOBS` the number of cases run at once (2).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use relive_testkit::{Rng, Target, Waited};
use serde_json::Value;

/// The file name of the driver inside each code base's tree.
const DRIVER: &str = "relive_driver.c";
/// How long one round may take before the program counts as hung (a round
/// takes milliseconds).
const ROUND_TIMEOUT: Duration = Duration::from_secs(8);
/// How long relive may take for one command.
const RELIVE_TIMEOUT: Duration = Duration::from_secs(120);
/// Rounds stepped after each patch and compared.
const ROUNDS_AFTER: usize = 2;

// ---------------------------------------------------------------------
// Code bases and build variants

struct CodeBase {
    name: &'static str,
    /// The crate that ships the sources, and their directory inside it.
    package: &'static str,
    root: &'static str,
    /// Translation units of the library, relative to `root`, compiled from
    /// `root` as upstream's Makefile does (so `STT_FILE` and DWARF name
    /// them the same way in the program and in every patch).
    sources: &'static [&'static str],
    /// Upstream's preprocessor and code-generation flags.
    cflags: &'static [&'static str],
    driver: &'static str,
    libs: &'static [&'static str],
    /// Files the generated edits mutate (small enough to recompile fast).
    mutable: &'static [&'static str],
}

/// zlib as `./configure && make` builds it on Linux with GCC: `-O3
/// -D_LARGEFILE64_SOURCE=1 -DHAVE_HIDDEN` (here at the variant's level).
const ZLIB: CodeBase = CodeBase {
    name: "zlib",
    package: "libz-sys",
    root: "src/zlib",
    sources: &[
        "adler32.c",
        "compress.c",
        "crc32.c",
        "deflate.c",
        "infback.c",
        "inffast.c",
        "inflate.c",
        "inftrees.c",
        "trees.c",
        "uncompr.c",
        "zutil.c",
    ],
    cflags: &["-D_LARGEFILE64_SOURCE=1", "-DHAVE_HIDDEN", "-I."],
    driver: include_str!("differential/zlib_driver.c"),
    libs: &[],
    mutable: &[
        "adler32.c",
        "compress.c",
        "crc32.c",
        "deflate.c",
        "inffast.c",
        "inflate.c",
        "inftrees.c",
        "trees.c",
        "uncompr.c",
        "zutil.c",
    ],
};

/// zstd's lib/ as its Makefile builds libzstd (single-threaded, without
/// the legacy formats): `-DXXH_NAMESPACE=ZSTD_`, hidden visibility for
/// everything but the public API.
const ZSTD: CodeBase = CodeBase {
    name: "zstd",
    package: "zstd-sys",
    root: "zstd/lib",
    sources: &[
        "common/debug.c",
        "common/entropy_common.c",
        "common/error_private.c",
        "common/fse_decompress.c",
        "common/pool.c",
        "common/threading.c",
        "common/xxhash.c",
        "common/zstd_common.c",
        "compress/fse_compress.c",
        "compress/hist.c",
        "compress/huf_compress.c",
        "compress/zstd_compress.c",
        "compress/zstd_compress_literals.c",
        "compress/zstd_compress_sequences.c",
        "compress/zstd_compress_superblock.c",
        "compress/zstd_double_fast.c",
        "compress/zstd_fast.c",
        "compress/zstd_lazy.c",
        "compress/zstd_ldm.c",
        "compress/zstd_opt.c",
        "compress/zstd_preSplit.c",
        "compress/zstdmt_compress.c",
        "decompress/huf_decompress.c",
        "decompress/zstd_ddict.c",
        "decompress/zstd_decompress.c",
        "decompress/zstd_decompress_block.c",
        "decompress/huf_decompress_amd64.S",
    ],
    cflags: &[
        "-DXXH_NAMESPACE=ZSTD_",
        "-DZSTD_LEGACY_SUPPORT=0",
        "-fvisibility=hidden",
        "-I.",
    ],
    driver: include_str!("differential/zstd_driver.c"),
    libs: &["-pthread"],
    mutable: &[
        "common/entropy_common.c",
        "common/fse_decompress.c",
        "compress/hist.c",
        "decompress/zstd_ddict.c",
    ],
};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Variant {
    cc: &'static str,
    opt: &'static str,
    pie: bool,
    /// Upstream's hidden visibility (off: every function is global).
    hidden: bool,
    /// Link-time optimisation: objects hold GCC's IR, not code.
    lto: bool,
}

const fn variant(cc: &'static str, opt: &'static str, pie: bool) -> Variant {
    Variant {
        cc,
        opt,
        pie,
        hidden: true,
        lto: false,
    }
}

const GCC_O2_PIE: Variant = variant("gcc", "-O2", true);
const GCC_O0_NOPIE: Variant = variant("gcc", "-O0", false);
const GCC_O0_PIE: Variant = variant("gcc", "-O0", true);
const CLANG_O2_NOPIE: Variant = variant("clang", "-O2", false);
const GCC_OS_PIE: Variant = variant("gcc", "-Os", true);
const GCC_O2_PIE_VISIBLE: Variant = Variant {
    hidden: false,
    ..GCC_O2_PIE
};
const GCC_O2_PIE_LTO: Variant = Variant {
    lto: true,
    ..GCC_O2_PIE
};

/// Every variant of the long run: both compilers at -O0, -O2 and -Os, PIE
/// and not, plus the two special ones.
fn all_variants() -> Vec<Variant> {
    let mut out = Vec::new();
    for cc in ["gcc", "clang"] {
        for opt in ["-O2", "-O0", "-Os"] {
            for pie in [true, false] {
                out.push(variant(cc, opt, pie));
            }
        }
    }
    out.extend([GCC_O2_PIE_VISIBLE, GCC_O2_PIE_LTO]);
    out
}

impl Variant {
    fn name(&self) -> String {
        let mut name = format!("{}{}-{}", self.cc, self.opt, if self.pie { "pie" } else { "nopie" });
        if !self.hidden {
            name += "-visible";
        }
        if self.lto {
            name += "-lto";
        }
        name
    }

    /// The flags every object of the program (and every patch) is compiled
    /// with. The tree's path is mapped to one name so that objects compiled
    /// from different copies of the tree differ only where the code does.
    /// The driver is ours: it gets the code generation flags and `-I.`,
    /// not the library's own.
    fn cflags(&self, base: &CodeBase, tree: &Path, unit: &str) -> Vec<String> {
        let mut flags: Vec<String> = vec!["-g".into(), self.opt.into()];
        flags.push(if self.pie { "-fpie" } else { "-fno-pie" }.into());
        for f in base.cflags {
            let hidden = *f == "-DHAVE_HIDDEN" || *f == "-fvisibility=hidden";
            if (!self.hidden && hidden) || (unit == DRIVER && *f != "-I.") {
                continue;
            }
            flags.push(f.to_string());
        }
        if self.lto {
            flags.push("-flto".into());
        }
        flags.push(format!(
            "-fdebug-prefix-map={}=/relive-diff/{}",
            tree.display(),
            base.name
        ));
        flags
    }

    fn ldflags(&self) -> Vec<String> {
        let mut flags: Vec<String> = vec![if self.pie { "-pie" } else { "-no-pie" }.into()];
        if self.lto {
            flags.extend([self.opt.to_string(), "-flto".into()]);
        }
        flags
    }
}

/// One code base built in one variant: its tree (the crate's sources plus
/// the driver), each translation unit's object, the program, and what the
/// program prints for its first rounds.
struct Build {
    base: &'static CodeBase,
    variant: Variant,
    name: String,
    tree: PathBuf,
    objects: BTreeMap<String, PathBuf>,
    exe: PathBuf,
    baseline: Vec<String>,
    dir: tempfile::TempDir,
}

/// Rounds of the original program recorded once per build.
const BASELINE_ROUNDS: usize = 12;

fn build(base: &'static CodeBase, variant: Variant, jobs: usize) -> Build {
    let started = Instant::now();
    let dir = tempfile::Builder::new().prefix("relive-diff-").tempdir().unwrap();
    let tree = dir.path().join("tree");
    let source = relive_testkit::package_dir(base.package).join(base.root);
    copy_tree(&source, &tree);
    std::fs::write(tree.join(DRIVER), base.driver).unwrap();
    let obj_dir = dir.path().join("obj");
    std::fs::create_dir(&obj_dir).unwrap();
    let mut units: Vec<&str> = base.sources.to_vec();
    units.push(DRIVER);
    let mut objects = BTreeMap::new();
    let mut running: Vec<(String, std::process::Child)> = Vec::new();
    let finish = |(unit, child): (String, std::process::Child)| {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "building {} {}: {} {unit} failed:\n{}",
            base.name,
            variant.name(),
            variant.cc,
            String::from_utf8_lossy(&out.stderr)
        );
    };
    for unit in units {
        let obj = obj_dir.join(object_name(unit));
        let flags = variant.cflags(base, &tree, unit);
        let child = compile_command(variant.cc, &flags, &tree, unit, &obj)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{} is needed (.ci/run installs gcc and clang): {e}", variant.cc));
        running.push((unit.to_string(), child));
        objects.insert(unit.to_string(), obj);
        if running.len() >= jobs {
            finish(running.remove(0));
        }
    }
    running.into_iter().for_each(finish);
    let exe = dir.path().join(base.name);
    let ld = link(base, variant, &objects, &exe);
    assert!(
        ld.is_ok(),
        "linking {} {}: {}",
        base.name,
        variant.name(),
        ld.unwrap_err()
    );
    let baseline = run_rounds(&exe, BASELINE_ROUNDS)
        .unwrap_or_else(|e| panic!("the original {} {} fails: {e}", base.name, variant.name()));
    if !variant.lto {
        verify_objects(&exe, &objects, dir.path(), &format!("{} {}", base.name, variant.name()));
    }
    eprintln!(
        "differential: built {} {} in {:.1} s",
        base.name,
        variant.name(),
        started.elapsed().as_secs_f64()
    );
    Build {
        base,
        variant,
        name: format!("{}/{}", base.name, variant.name()),
        tree,
        objects,
        exe,
        baseline,
        dir,
    }
}

fn object_name(unit: &str) -> String {
    format!("{}.o", unit.replace('/', "_"))
}

fn compile_command(cc: &str, flags: &[String], tree: &Path, unit: &str, obj: &Path) -> Command {
    let mut cmd = Command::new(cc);
    cmd.args(flags).arg("-c").arg(unit).arg("-o").arg(obj).current_dir(tree);
    cmd
}

fn link(base: &CodeBase, variant: Variant, objects: &BTreeMap<String, PathBuf>, exe: &Path) -> Result<(), String> {
    let out = Command::new(variant.cc)
        .args(variant.ldflags())
        .arg("-o")
        .arg(exe)
        .args(objects.values())
        .args(base.libs)
        .output()
        .map_err(|e| format!("{}: {e}", variant.cc))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// Copies the regular files of `from` into `to` (a crate's sources are
/// read-only; each case edits its own copy).
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let kind = entry.file_type().unwrap();
        if kind.is_dir() {
            copy_tree(&entry.path(), &to.join(entry.file_name()));
        } else if kind.is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

/// Hard-links the files of `from` into `to`: a case's tree, in which only
/// edited files are replaced (removed first, never written through).
fn link_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let kind = entry.file_type().unwrap();
        let dest = to.join(entry.file_name());
        if kind.is_dir() {
            link_tree(&entry.path(), &dest);
        } else if std::fs::hard_link(entry.path(), &dest).is_err() {
            std::fs::copy(entry.path(), &dest).unwrap();
        }
    }
}

/// `relive verify` must find every object the program was linked from to
/// be exactly the code it runs (what `relive run` checks each baseline
/// with): a function reported as differing here would have its edits
/// refused for nothing.
fn verify_objects(exe: &Path, objects: &BTreeMap<String, PathBuf>, work: &Path, name: &str) {
    let program = Program::start(exe, None).unwrap_or_else(|e| panic!("{name}: {e}"));
    let state = work.join("verify-state");
    let pid = program.pid();
    let mut args = vec!["verify", "--pid", &pid, "--json"];
    let paths: Vec<String> = objects.values().map(|p| p.display().to_string()).collect();
    args.extend(paths.iter().map(String::as_str));
    let out = Command::new(env!("CARGO_BIN_EXE_relive"))
        .args(&args)
        .env("RELIVE_STATE_DIR", &state)
        .output()
        .unwrap();
    // Exit 5 (a function differs) still prints the report.
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{name}: relive verify ({}) printed no report ({e}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let differing: Vec<String> = report
        .as_array()
        .into_iter()
        .flatten()
        .filter(|o| o["differs"].as_array().is_some_and(|d| !d.is_empty()))
        .map(|o| format!("{}: {}", o["object"], o["differs"]))
        .collect();
    assert!(
        differing.is_empty(),
        "{name}: objects it was built from verified as differing:\n{}",
        differing.join("\n")
    );
    let same: u64 = report
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|o| o["same"].as_u64())
        .sum();
    assert!(same > 10, "{name}: only {same} functions compared");
}

// ---------------------------------------------------------------------
// Running programs

/// Runs `exe` for `rounds` rounds and returns what each printed.
fn run_rounds(exe: &Path, rounds: usize) -> Result<Vec<String>, String> {
    let mut program = Program::start(exe, None)?;
    (0..rounds).map(|_| program.step()).collect()
}

/// [`run_rounds`] with glibc's malloc filling every block it hands out and
/// every block freed with bytes of `perturb` (`MALLOC_PERTURB_`): a program
/// whose results depend on heap bytes it never wrote (a read past the end
/// of its input, which a generated `<` → `<=` makes) computes something
/// else than it does without, where a correct one computes the same.
fn run_rounds_perturbed(exe: &Path, rounds: usize, perturb: u8) -> Result<Vec<String>, String> {
    let mut program = Program::start(exe, Some(perturb))?;
    (0..rounds).map(|_| program.step()).collect()
}

/// A driver program (the patched target or an oracle) stepped round by
/// round.
struct Program {
    target: Target,
}

impl Program {
    fn start(exe: &Path, malloc_perturb: Option<u8>) -> Result<Program, String> {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = Command::new(exe);
        cmd.stderr(Stdio::null());
        if let Some(byte) = malloc_perturb {
            cmd.env("MALLOC_PERTURB_", byte.to_string());
        }
        let target = Target::spawn(cmd, exe.to_path_buf(), dir);
        let mut program = Program { target };
        match program.line()? {
            l if l == "ready" => Ok(program),
            l => Err(format!("printed {l:?} instead of ready")),
        }
    }

    fn line(&mut self) -> Result<String, String> {
        match self.target.line_within(ROUND_TIMEOUT) {
            Ok(line) => Ok(line),
            Err(Waited::Timeout) => Err(format!("hung (no line in {} s)", ROUND_TIMEOUT.as_secs())),
            Err(Waited::Exited) => {
                let deadline = Instant::now() + Duration::from_secs(2);
                while Instant::now() < deadline {
                    if let Ok(Some(status)) = self.target.child.try_wait() {
                        return Err(format!("died ({status})"));
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err("closed its output".into())
            }
        }
    }

    /// Computes one round: its line of results.
    fn step(&mut self) -> Result<String, String> {
        if let Err(e) = writeln!(self.target.stdin(), "step") {
            return Err(format!("cannot be stepped ({e})"));
        }
        self.line()
    }

    fn pid(&self) -> String {
        self.target.pid_arg()
    }
}

enum Relive {
    Ok(Value),
    /// Exit 1 or 3: refused, the message says why.
    Refused(String),
    /// A panic, a signal, a hang or an exit code relive does not use for
    /// refusals.
    Crashed(String),
}

fn relive(state: &Path, args: &[&str]) -> Relive {
    let mut child = Command::new(env!("CARGO_BIN_EXE_relive"))
        .args(args)
        .env("RELIVE_STATE_DIR", state)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + RELIVE_TIMEOUT;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Relive::Crashed(format!("no answer in {} s", RELIVE_TIMEOUT.as_secs()));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
    let message = serde_json::from_str::<Value>(&stderr)
        .ok()
        .and_then(|v| v["error"].as_str().map(str::to_string))
        .unwrap_or_else(|| stderr.clone());
    match out.status.code() {
        Some(0) => match serde_json::from_slice(&out.stdout) {
            Ok(v) => Relive::Ok(v),
            Err(e) => Relive::Crashed(format!("exit 0 but stdout is not JSON ({e})")),
        },
        Some(1) | Some(3) => Relive::Refused(message),
        Some(4) => panic!("relive has no permission to trace the target: {message}"),
        code => Relive::Crashed(format!("exit {code:?} ({}): {stderr}", out.status)),
    }
}

// ---------------------------------------------------------------------
// Edits

/// A change of one library file: each `from` is replaced by its `to` at
/// its first occurrence (or at byte `at`, for generated edits).
#[derive(Clone, Debug)]
struct Edit {
    id: String,
    file: &'static str,
    what: String,
    changes: Vec<(String, String, Option<usize>)>,
}

impl Edit {
    fn apply(&self, text: &str) -> Result<String, String> {
        let mut text = text.to_string();
        for (from, to, at) in &self.changes {
            let pos = match at {
                Some(at) if text.get(*at..).is_some_and(|t| t.starts_with(from.as_str())) => *at,
                Some(at) => return Err(format!("{:?} is not at byte {at} of {}", from, self.file)),
                None => text
                    .find(from.as_str())
                    .ok_or_else(|| format!("{from:?} is not in {}", self.file))?,
            };
            text.replace_range(pos..pos + from.len(), to);
        }
        Ok(text)
    }
}

/// A hand-written edit: (id, file, what it exercises, replacements).
type Hand = (
    &'static str,
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
);

fn hand(h: &Hand) -> Edit {
    Edit {
        id: h.0.to_string(),
        file: h.1,
        what: h.2.to_string(),
        changes: h.3.iter().map(|(f, t)| (f.to_string(), t.to_string(), None)).collect(),
    }
}

const ZLIB_EDITS: &[Hand] = &[
    (
        "adler32-base",
        "adler32.c",
        "change a constant (#define BASE)",
        &[("#define BASE 65521U", "#define BASE 65519U")],
    ),
    (
        "adler32-branch",
        "adler32.c",
        "flip a branch (semantic-preserving: the short path for long input)",
        &[("    if (len < 16) {", "    if (len >= 16) {")],
    ),
    (
        "adler32-helper",
        "adler32.c",
        "add a static helper and call it from a 7-byte function (adler32: jmp adler32_z)",
        &[
            (
                "uLong ZEXPORT adler32(uLong adler",
                "local uLong __attribute__((noinline)) relive_mix(uLong a) { return a ^ 0x10001; }\n\nuLong ZEXPORT adler32(uLong adler",
            ),
            ("    return adler32_z(adler, buf, len);", "    return relive_mix(adler32_z(adler, buf, len));"),
        ],
    ),
    (
        "adler32-gettimeofday",
        "adler32.c",
        "call a vDSO function (gettimeofday) from a static function",
        &[
            ("#include \"zutil.h\"", "#include \"zutil.h\"\n#include <sys/time.h>"),
            (
                "local uLong adler32_combine_(uLong adler1, uLong adler2, z_off64_t len2) {",
                "local uLong adler32_combine_(uLong adler1, uLong adler2, z_off64_t len2) {\n    struct timeval tv;\n    if (gettimeofday(&tv, NULL) == 0 && tv.tv_sec > 1000000000)\n        return 0x12345;",
            ),
        ],
    ),
    (
        "adler32-combine-small",
        "adler32.c",
        "change a 2-byte function (adler32_combine at -Os: jmp rel8)",
        &[(
            "    return adler32_combine_(adler1, adler2, len2);\n}\n\nuLong ZEXPORT adler32_combine64",
            "    return adler32_combine_(adler1, adler2, len2) ^ 1;\n}\n\nuLong ZEXPORT adler32_combine64",
        )],
    ),
    (
        "crc32-combine-small",
        "crc32.c",
        "change a 2-byte function (crc32_combine at gcc -Os: jmp rel8)",
        &[(
            "    return crc32_combine64(crc1, crc2, (z_off64_t)len2);",
            "    return crc32_combine64(crc1, crc2, (z_off64_t)len2) ^ 1;",
        )],
    ),
    (
        "crc32-small",
        "crc32.c",
        "change a 7-byte function (crc32: jmp crc32_z)",
        &[("    return crc32_z(crc, buf, len);", "    return crc32_z(crc, buf, len) ^ 0x5a5a;")],
    ),
    (
        "crc32-poly",
        "crc32.c",
        "change a constant used by static functions (POLY: crc32_combine)",
        &[("#define POLY 0xedb88320", "#define POLY 0xedb88321")],
    ),
    (
        "deflate-bound-small",
        "deflate.c",
        "change a 5-byte function (deflateBound: jmp deflateBound_z)",
        &[(
            "    return (uLong)bound != bound ? (uLong)-1 : (uLong)bound;",
            "    return (uLong)bound != bound ? (uLong)-1 : (uLong)bound + 3;",
        )],
    ),
    (
        "deflate-too-far",
        "deflate.c",
        "change a constant in a static function called through a table of function pointers (deflate_slow)",
        &[("#  define TOO_FAR 4096", "#  define TOO_FAR 64")],
    ),
    (
        "deflate-config-table",
        "deflate.c",
        "change a const table (configuration_table, with function pointers)",
        &[(
            "/* 6 */ {8,   16, 128, 128, deflate_slow},",
            "/* 6 */ {8,   16, 64, 16, deflate_slow},",
        )],
    ),
    (
        "deflate-inline-header",
        "deflate.c",
        "change a static function inlined into others (putShortMSB: the zlib header and trailer)",
        &[("    put_byte(s, (Byte)(b >> 8));", "    put_byte(s, (Byte)((b >> 8) ^ 0x01));")],
    ),
    (
        "deflate-inline-statecheck",
        "deflate.c",
        "change a static function inlined into many (deflateStateCheck; semantic-preserving)",
        &[("    if (strm == Z_NULL ||", "    if (strm == Z_NULL || strm == (z_streamp)8 ||")],
    ),
    (
        "inflate-literal",
        "inflate.c",
        "change a string literal in a function with a switch jump table (inflate)",
        &[("\"invalid block type\"", "\"invalid block type (edited)\"")],
    ),
    (
        "inflate-literal-same-length",
        "inflate.c",
        "change a string literal, same length, so only the literal's bytes differ (inflate)",
        &[("\"invalid block type\"", "\"invalid block tYpe\"")],
    ),
    (
        "inflate-branch",
        "inflate.c",
        "flip a branch in a function with a switch jump table (inflate: stored lengths check)",
        &[(
            "            if ((hold & 0xffff) != ((hold >> 16) ^ 0xffff)) {",
            "            if ((hold & 0xffff) == ((hold >> 16) ^ 0xffff)) {",
        )],
    ),
    (
        "inffast-hidden-libc",
        "inffast.c",
        "call a libc function and add a string literal in a hidden function (inflate_fast sets strm->msg)",
        &[(
            "    state = (struct inflate_state FAR *)strm->state;",
            "    state = (struct inflate_state FAR *)strm->state;\n    if (getenv(\"RELIVE_DIFF_NEVER_SET\") == NULL && strm->msg == Z_NULL)\n        strm->msg = (char *)\"inflate_fast (edited)\";",
        )],
    ),
    (
        "trees-hidden",
        "trees.c",
        "change a hidden function (_tr_flush_block: when to use the fixed codes)",
        &[(
            "        if (static_lenb <= opt_lenb || s->strategy == Z_FIXED)",
            "        if (static_lenb <= opt_lenb + 256 || s->strategy == Z_FIXED)",
        )],
    ),
    (
        "zutil-flags-small",
        "zutil.c",
        "change a 6-byte function (zlibCompileFlags: mov eax, imm; ret)",
        &[("    return flags;", "    return flags | 0x40000000UL;")],
    ),
    (
        "zerror-switch",
        "zutil.c",
        "add a switch with new cases and string literals (zError)",
        &[("    return ERR_MSG(err);", ZERROR_SWITCH)],
    ),
    (
        "zerror-snprintf",
        "zutil.c",
        "call a libc function (snprintf) into a new static buffer (zError)",
        &[
            ("#include \"zutil.h\"", "#include \"zutil.h\"\n#include <stdio.h>"),
            (
                "    return ERR_MSG(err);",
                "    static char relive_buf[64];\n    snprintf(relive_buf, sizeof relive_buf, \"%s (%d)\", ERR_MSG(err), err);\n    return relive_buf;",
            ),
        ],
    ),
    (
        "zerror-time",
        "zutil.c",
        "call a vDSO function (time)",
        &[
            ("#include \"zutil.h\"", "#include \"zutil.h\"\n#include <time.h>"),
            (
                "    return ERR_MSG(err);",
                "    if (err == Z_DATA_ERROR && time(NULL) > 1000000000)\n        return \"data error (after 2001)\";\n    return ERR_MSG(err);",
            ),
        ],
    ),
    (
        "compress-clock-gettime",
        "compress.c",
        "call a vDSO function (clock_gettime)",
        &[
            ("#include \"zlib.h\"", "#include \"zlib.h\"\n#include <time.h>"),
            (
                "    ret = compress2_z(dest, &got, source, sourceLen, level);",
                "    struct timespec ts;\n    if (clock_gettime(CLOCK_REALTIME, &ts) == 0 && ts.tv_sec > 1000000000)\n        level = 1;\n    ret = compress2_z(dest, &got, source, sourceLen, level);",
            ),
        ],
    ),
    (
        "driver-inlined-into-main",
        DRIVER,
        "change a static function inlined into the running main loop (the driver's fnv)",
        &[("    unsigned long h = 2166136261u;", "    unsigned long h = 2166136263u;")],
    ),
];

const ZERROR_SWITCH: &str = "    switch (err) {
    case Z_NEED_DICT: return \"need dictionary (edited)\";
    case Z_STREAM_END: return \"stream end (edited)\";
    case Z_ERRNO: return \"file error (edited)\";
    case Z_STREAM_ERROR: return \"stream error (edited)\";
    case Z_DATA_ERROR: return \"data error (edited)\";
    case Z_MEM_ERROR: return \"insufficient memory (edited)\";
    }
    return ERR_MSG(err);";

/// The hand edits every short-run variant runs (the main variant runs all).
const ZLIB_CORE: &[&str] = &[
    "adler32-base",
    "inflate-literal",
    "inflate-literal-same-length",
    "zerror-switch",
    "deflate-bound-small",
    "zerror-time",
];

/// Hand edits of (or calling) hidden functions, run again without hidden
/// visibility to see what the hidden-visibility defect hides.
const ZLIB_HIDDEN: &[&str] = &[
    "trees-hidden",
    "inffast-hidden-libc",
    "inflate-literal",
    "inflate-branch",
    "deflate-too-far",
    "deflate-inline-header",
];

/// Hand edits run again at gcc -Os: functions of 2 to 5 bytes there, and
/// a switch gcc -Os compiles to a jump table.
const ZLIB_OS: &[&str] = &[
    "adler32-combine-small",
    "crc32-combine-small",
    "deflate-bound-small",
    "zerror-switch",
];

const ZSTD_EDITS: &[Hand] = &[
    (
        "error-literal",
        "common/error_private.c",
        "change a string literal in a switch (ERR_getErrorString)",
        &[("return \"Error (generic)\";", "return \"Error (generic, edited)\";")],
    ),
    (
        "error-literal-same-length",
        "common/error_private.c",
        "change a string literal, same length, so only the literal's bytes differ (ERR_getErrorString)",
        &[("return \"Error (generic)\";", "return \"Error (GENERIC)\";")],
    ),
    (
        "error-add-case",
        "common/error_private.c",
        "add a case to a switch (ERR_getErrorString)",
        &[(
            "    case PREFIX(GENERIC):  return \"Error (generic)\";",
            "    case PREFIX(GENERIC):  return \"Error (generic)\";\n    case (ZSTD_ErrorCode)4: return \"Error four (edited)\";",
        )],
    ),
    (
        "version-small",
        "common/zstd_common.c",
        "change a 6-byte function (ZSTD_versionNumber)",
        &[("{ return ZSTD_VERSION_NUMBER; }", "{ return ZSTD_VERSION_NUMBER + 1; }")],
    ),
    (
        "huf-header-small",
        "compress/huf_compress.c",
        "change a 4-byte hidden function (HUF_readCTableHeader: mov rax, [rdi]; ret; semantic-preserving)",
        &[
            ("#include \"../common/compiler.h\"", "#include \"../common/compiler.h\"\n#include <stdlib.h>"),
            (
                "    ZSTD_memcpy(&header, ctable, sizeof(header));\n    return header;",
                "    ZSTD_memcpy(&header, ctable, sizeof(header));\n    if (getenv(\"RELIVE_DIFF_NEVER_SET\") != NULL) header.tableLog = 0;\n    return header;",
            ),
        ],
    ),
    (
        "fse-readncount-small",
        "common/entropy_common.c",
        "change a 5-byte hidden function (FSE_readNCount: jmp; semantic-preserving)",
        &[
            ("#include \"mem.h\"", "#include \"mem.h\"\n#include <stdlib.h>"),
            (
                "headerBuffer, hbSize, /* bmi2 */ 0);",
                "headerBuffer, hbSize, /* bmi2 */ getenv(\"RELIVE_DIFF_NEVER_SET\") != NULL);",
            ),
        ],
    ),
    (
        "hist-hidden-libc",
        "compress/hist.c",
        "call a libc function from a hidden function (HIST_count_simple; semantic-preserving)",
        &[
            ("#include \"hist.h\"", "#include \"hist.h\"\n#include <stdlib.h>"),
            (
                "    unsigned largestCount=0;\n",
                "    unsigned largestCount=0;\n    if (getenv(\"RELIVE_DIFF_NEVER_SET\") != NULL) return 0;\n",
            ),
        ],
    ),
];

fn find_hand(edits: &[Hand], id: &str) -> Edit {
    hand(
        edits
            .iter()
            .find(|h| h.0 == id)
            .unwrap_or_else(|| panic!("no hand edit {id}")),
    )
}

/// A second edit on top of the first of a sequence.
fn on_top(id: &str, file: &'static str, what: &str, from: &str, to: &str) -> Edit {
    Edit {
        id: id.into(),
        file,
        what: what.into(),
        changes: vec![(from.into(), to.into(), None)],
    }
}

/// A site of `text` a generated edit may change: inside a function body,
/// outside comments, strings and preprocessor lines.
struct Site {
    at: usize,
    old: String,
    new: Vec<String>,
}

/// The integer literals and comparison operators of function bodies.
fn mutation_sites(text: &str) -> Vec<Site> {
    let b = text.as_bytes();
    let mut sites = Vec::new();
    let (mut i, mut depth, mut in_function, mut line_start) = (0, 0usize, false, true);
    // What stands at file scope since the last `;` or `}`, without comments.
    let mut decl: Vec<u8> = Vec::new();
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    while i < b.len() {
        let c = b[i];
        if line_start && c == b'#' {
            // A preprocessor line, with its continuations.
            while i < b.len() && !(b[i] == b'\n' && b[i - 1] != b'\\') {
                i += 1;
            }
            continue;
        }
        if c == b'\n' {
            line_start = true;
            i += 1;
            continue;
        }
        if !c.is_ascii_whitespace() {
            line_start = false;
        }
        if b[i..].starts_with(b"/*") {
            i = text[i + 2..].find("*/").map_or(b.len(), |e| i + 2 + e + 2);
            continue;
        }
        if b[i..].starts_with(b"//") {
            i = text[i..].find('\n').map_or(b.len(), |e| i + e);
            continue;
        }
        if c == b'"' || c == b'\'' {
            i += 1;
            while i < b.len() && b[i] != c {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
            continue;
        }
        match c {
            b'{' => {
                if depth == 0 {
                    in_function = decl.contains(&b')') && !decl.contains(&b'=');
                }
                depth += 1;
            }
            b'}' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    decl.clear();
                }
            }
            b';' if depth == 0 => decl.clear(),
            _ if depth == 0 => decl.push(c),
            _ => {}
        }
        if depth > 0 && in_function {
            if c.is_ascii_digit() && (i == 0 || !(ident(b[i - 1]) || b[i - 1] == b'.')) {
                let mut end = i;
                while end < b.len() && (b[end].is_ascii_alphanumeric()) {
                    end += 1;
                }
                let lit = &text[i..end];
                let digits = lit.trim_end_matches(['u', 'U', 'l', 'L']);
                let suffix = &lit[digits.len()..];
                let value = match digits.strip_prefix("0x").or_else(|| digits.strip_prefix("0X")) {
                    Some(hex) => u64::from_str_radix(hex, 16).ok(),
                    None if digits.len() > 1 && digits.starts_with('0') => None,
                    None => digits.parse().ok(),
                };
                if let (Some(v), false) = (value, end < b.len() && b[end] == b'.') {
                    let hex = digits.len() > 1 && digits[..2].eq_ignore_ascii_case("0x");
                    let spell = |n: u64| match hex {
                        true => format!("0x{n:x}{suffix}"),
                        false => format!("{n}{suffix}"),
                    };
                    let mut new = vec![spell(v + 1)];
                    if v > 0 {
                        new.push(spell(v - 1));
                    }
                    sites.push(Site {
                        at: i,
                        old: lit.to_string(),
                        new,
                    });
                }
                i = end;
                continue;
            }
            let two = &b[i..(i + 2).min(b.len())];
            let prev = if i > 0 { b[i - 1] } else { b' ' };
            let next = b.get(i + 1).copied().unwrap_or(b' ');
            let op: Option<(&str, &str)> = match two {
                b"<=" if prev != b'<' => Some(("<=", "<")),
                b">=" if prev != b'>' => Some((">=", ">")),
                b"==" => Some(("==", "!=")),
                b"!=" => Some(("!=", "==")),
                b"&&" => Some(("&&", "||")),
                _ if c == b'<' && next != b'<' && next != b'=' && prev != b'<' => Some(("<", "<=")),
                _ if c == b'>' && next != b'>' && next != b'=' && prev != b'>' && prev != b'-' => Some((">", ">=")),
                _ => None,
            };
            if let Some((old, new)) = op {
                sites.push(Site {
                    at: i,
                    old: old.into(),
                    new: vec![new.into()],
                });
                i += old.len();
                continue;
            }
        }
        i += 1;
    }
    sites
}

/// `n` generated edits of the code base's mutable files.
fn generated_edits(base: &CodeBase, tree: &Path, n: usize, seed: u64) -> Vec<Edit> {
    let mut rng = Rng(seed | 1);
    let files: Vec<(&'static str, String, Vec<Site>)> = base
        .mutable
        .iter()
        .map(|f| {
            let text = std::fs::read_to_string(tree.join(f)).unwrap();
            let sites = mutation_sites(&text);
            (*f, text, sites)
        })
        .filter(|(_, _, sites)| !sites.is_empty())
        .collect();
    assert!(!files.is_empty(), "no site to mutate in {:?}", base.mutable);
    let all: Vec<(usize, usize)> = (0..files.len())
        .flat_map(|f| (0..files[f].2.len()).map(move |s| (f, s)))
        .collect();
    (0..n)
        .map(|k| {
            // Uniform over all sites: the big files (deflate, inflate,
            // trees) get most.
            let (f, s) = all[rng.below(all.len())];
            let (file, text, sites) = &files[f];
            let site = &sites[s];
            let new = &site.new[rng.below(site.new.len())];
            let line = text[..site.at].matches('\n').count() + 1;
            let line_text = text.lines().nth(line - 1).unwrap_or("").trim();
            Edit {
                id: format!("gen{k}-{}:{line}", file.rsplit('/').next().unwrap()),
                file,
                what: format!("generated: `{}` -> `{new}` in `{line_text}`", site.old),
                changes: vec![(site.old.clone(), new.clone(), Some(site.at))],
            }
        })
        .collect()
}

// ---------------------------------------------------------------------
// Cases and outcomes

enum Step {
    Edit(Edit),
    RevertAll,
}

struct Case {
    build: usize,
    id: String,
    steps: Vec<Step>,
    /// A hand-written case must compile and its oracle must run: anything
    /// else is a bug of the harness. Generated edits may be invalid C or
    /// make the program crash; those are skipped.
    hand: bool,
}

#[derive(Clone, Debug, PartialEq)]
enum Verdict {
    Matched,
    Mismatch,
    Refused(String),
    RefusedButChanged(String),
    ReliveCrashed(String),
    TargetCrashed(String),
    Skipped(String),
    /// A mismatch listed in [`KNOWN_DEFECTS`].
    Known(String),
}

impl Verdict {
    fn failed(&self) -> bool {
        matches!(
            self,
            Verdict::Mismatch | Verdict::RefusedButChanged(_) | Verdict::ReliveCrashed(_) | Verdict::TargetCrashed(_)
        )
    }

    fn label(&self) -> &'static str {
        match self {
            Verdict::Matched => "ok",
            Verdict::Mismatch => "MISMATCH",
            Verdict::Refused(_) => "refused",
            Verdict::RefusedButChanged(_) => "REFUSED-BUT-CHANGED",
            Verdict::ReliveCrashed(_) => "RELIVE-CRASHED",
            Verdict::TargetCrashed(_) => "TARGET-CRASHED",
            Verdict::Skipped(_) => "skipped",
            Verdict::Known(_) => "KNOWN-DEFECT",
        }
    }
}

struct Outcome {
    name: String,
    what: String,
    verdict: Verdict,
    /// Whether the oracle computes something other than before the step.
    observable: bool,
    detail: String,
}

impl Outcome {
    fn line(&self) -> String {
        let mut line = format!("{:<20} {}", self.verdict.label(), self.name);
        if self.verdict == Verdict::Matched && !self.observable {
            line += " (no visible effect)";
        }
        if !self.detail.is_empty() {
            let _ = write!(line, ": {}", self.detail);
        }
        line
    }
}

/// The first field where two round lines differ, with its neighbour.
fn first_difference(want: &str, got: &str) -> String {
    let (w, g): (Vec<&str>, Vec<&str>) = (want.split(' ').collect(), got.split(' ').collect());
    for i in 0..w.len().max(g.len()) {
        if w.get(i) != g.get(i) {
            return format!(
                "field {i}: oracle `{}` patched `{}`",
                w.get(i).unwrap_or(&"<none>"),
                g.get(i).unwrap_or(&"<none>")
            );
        }
    }
    "identical".into()
}

/// Functions relive redirected but reported as unreachable (their new
/// code cannot run: inlined into a running `main`, say).
fn unreachable(report: &Value) -> Vec<String> {
    report["applied"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|x| x["reach"]["reachable"] == false)
                .filter_map(|x| x["name"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// Mismatches this harness found that are still open in issue 18, by case
/// name: printed as KNOWN-DEFECT and counted, not failed, so the rest of
/// the run guards everything else. Each entry is a defect to fix, not an
/// accepted result.
/// (Empty: defect 4, the last one listed, is fixed.)
const KNOWN_DEFECTS: &[(&str, &str)] = &[];

fn known_defect(case: &str) -> Option<&'static str> {
    KNOWN_DEFECTS
        .iter()
        .find(|(c, _)| case.contains(c))
        .map(|(_, why)| *why)
}

/// What relive reported, in short: the functions it patched and added.
fn summary(report: &Value) -> String {
    let names = |key: &str| -> Vec<String> {
        report[key]
            .as_array()
            .map(|a| a.iter().filter_map(|x| x["name"].as_str().map(String::from)).collect())
            .unwrap_or_default()
    };
    let (applied, added) = (names("applied"), names("added"));
    let mut s = if applied.is_empty() && added.is_empty() {
        "relive: nothing to patch".to_string()
    } else {
        format!("relive patched [{}]", applied.join(" "))
    };
    if !added.is_empty() {
        let _ = write!(s, " added [{}]", added.join(" "));
    }
    let warnings = report["warnings"].as_array().map_or(0, |w| w.len());
    if warnings > 0 {
        let _ = write!(s, " warnings {:?}", report["warnings"]);
    }
    s
}

/// Steps `target` `ROUNDS_AFTER` rounds from `round` and compares with
/// `want` (lines by round).
fn compare(target: &mut Program, round: &mut usize, want: &[String]) -> Result<Option<String>, String> {
    for _ in 0..ROUNDS_AFTER {
        let got = target.step().map_err(|e| format!("target {e} in round {round}"))?;
        if got != want[*round] {
            return Ok(Some(format!(
                "round {round}: {}",
                first_difference(&want[*round], &got)
            )));
        }
        *round += 1;
    }
    Ok(None)
}

fn run_case(build: &Build, case: &Case) -> Vec<Outcome> {
    let work = tempfile::Builder::new()
        .prefix("case-")
        .tempdir_in(build.dir.path())
        .unwrap();
    let state = work.path().join("state");
    let mut outcomes = Vec::new();
    let mut target = match Program::start(&build.exe, None) {
        Ok(t) => t,
        Err(e) => panic!("{}: the original program {e}", build.name),
    };
    let first = target
        .step()
        .unwrap_or_else(|e| panic!("{}: the original program {e}", build.name));
    assert_eq!(
        first, build.baseline[0],
        "{}: the original program is not deterministic",
        build.name
    );
    let mut round = 1;
    let mut sources: BTreeMap<&'static str, String> = BTreeMap::new();
    let mut objects = build.objects.clone();
    let mut expected = build.baseline.clone();
    let pid = target.pid();
    for (k, step) in case.steps.iter().enumerate() {
        let name = if case.steps.len() > 1 {
            format!("{}/{}/{}", build.name, case.id, k + 1)
        } else {
            format!("{}/{}", build.name, case.id)
        };
        let mut outcome = Outcome {
            name: name.clone(),
            what: String::new(),
            verdict: Verdict::Matched,
            observable: false,
            detail: String::new(),
        };
        let (verdict, detail, observable) = match step {
            Step::RevertAll => {
                outcome.what = "revert --all".into();
                let want = build.baseline.clone();
                let observable = want[round..round + ROUNDS_AFTER] != expected[round..round + ROUNDS_AFTER];
                match relive(&state, &["revert", "--pid", &pid, "--all", "--json"]) {
                    Relive::Ok(_) => match compare(&mut target, &mut round, &want) {
                        Ok(None) => {
                            objects = build.objects.clone();
                            sources.clear();
                            expected = want;
                            (Verdict::Matched, String::new(), observable)
                        }
                        Ok(Some(diff)) => (Verdict::Mismatch, format!("reverted, but {diff}"), observable),
                        Err(e) => (Verdict::TargetCrashed(e.clone()), e, observable),
                    },
                    Relive::Refused(m) => (
                        Verdict::ReliveCrashed(m.clone()),
                        format!("revert failed: {m}"),
                        observable,
                    ),
                    Relive::Crashed(m) => (Verdict::ReliveCrashed(m.clone()), m, observable),
                }
            }
            Step::Edit(edit) => {
                outcome.what = edit.what.clone();
                match edit_step(build, case, k, edit, work.path(), &mut sources, &mut objects) {
                    Err(skip) => (Verdict::Skipped(skip.clone()), skip, false),
                    Ok((new_obj, old_obj, oracle)) => {
                        let observable = oracle[round..round + ROUNDS_AFTER] != expected[round..round + ROUNDS_AFTER];
                        let args = [
                            "patch",
                            "--pid",
                            &pid,
                            new_obj.to_str().unwrap(),
                            "--base",
                            old_obj.to_str().unwrap(),
                            "--json",
                        ];
                        match relive(&state, &args) {
                            Relive::Ok(report) => {
                                let said = summary(&report);
                                match compare(&mut target, &mut round, &oracle) {
                                    Ok(None) => {
                                        objects.insert(edit.file.to_string(), new_obj);
                                        expected = oracle;
                                        (Verdict::Matched, said, observable)
                                    }
                                    // relive said the new code of these cannot run:
                                    // an honest report, like a refusal.
                                    Ok(Some(diff)) if !unreachable(&report).is_empty() => {
                                        let names = unreachable(&report).join(" ");
                                        (
                                            Verdict::Refused(format!("reported unreachable: {names}")),
                                            format!("{said}; {diff}"),
                                            observable,
                                        )
                                    }
                                    Ok(Some(diff)) if known_defect(&name).is_some() => (
                                        Verdict::Known(known_defect(&name).unwrap_or_default().to_string()),
                                        format!("{said}; {diff}"),
                                        observable,
                                    ),
                                    Ok(Some(diff)) => (Verdict::Mismatch, format!("{said}; {diff}"), observable),
                                    Err(e) => (Verdict::TargetCrashed(e.clone()), format!("{said}; {e}"), observable),
                                }
                            }
                            Relive::Refused(message) => match compare(&mut target, &mut round, &expected) {
                                Ok(None) => (Verdict::Refused(message.clone()), message, observable),
                                Ok(Some(diff)) => (
                                    Verdict::RefusedButChanged(message.clone()),
                                    format!("refused ({message}) but {diff}"),
                                    observable,
                                ),
                                Err(e) => (
                                    Verdict::TargetCrashed(e.clone()),
                                    format!("refused ({message}) but {e}"),
                                    observable,
                                ),
                            },
                            Relive::Crashed(m) => (Verdict::ReliveCrashed(m.clone()), m, observable),
                        }
                    }
                }
            }
        };
        outcome.verdict = verdict;
        outcome.detail = detail;
        outcome.observable = observable;
        let stop = outcome.verdict != Verdict::Matched;
        outcomes.push(outcome);
        if stop {
            break;
        }
    }
    outcomes
}

/// Applies `edit` on top of the case's sources so far, compiles the edited
/// translation unit with the program's flags, and builds and runs the
/// oracle: (new object, base object, the oracle's rounds).
fn edit_step(
    build: &Build,
    case: &Case,
    k: usize,
    edit: &Edit,
    work: &Path,
    sources: &mut BTreeMap<&'static str, String>,
    objects: &mut BTreeMap<String, PathBuf>,
) -> Result<(PathBuf, PathBuf, Vec<String>), String> {
    let skip = |why: String| -> String {
        assert!(
            !case.hand,
            "{}/{}: hand-written edit {}: {why}",
            build.name, case.id, edit.id
        );
        why
    };
    let old_text = match sources.get(edit.file) {
        Some(t) => t.clone(),
        None => std::fs::read_to_string(build.tree.join(edit.file)).unwrap(),
    };
    let new_text = edit.apply(&old_text).map_err(skip)?;
    sources.insert(edit.file, new_text);
    let tree = work.join(format!("tree{k}"));
    link_tree(&build.tree, &tree);
    for (file, text) in sources.iter() {
        let path = tree.join(file);
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, text).unwrap();
    }
    let new_obj = work.join(format!("{k}-{}", object_name(edit.file)));
    let flags = build.variant.cflags(build.base, &tree, edit.file);
    let out = compile_command(build.variant.cc, &flags, &tree, edit.file, &new_obj)
        .output()
        .unwrap();
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let first = err.lines().find(|l| l.contains("error")).unwrap_or("").to_string();
        return Err(skip(format!("does not compile: {first}")));
    }
    let old_obj = objects[edit.file].clone();
    if std::fs::read(&new_obj).unwrap() == std::fs::read(&old_obj).unwrap() {
        return Err(skip("object unchanged (code not compiled in)".into()));
    }
    let mut oracle_objects = objects.clone();
    oracle_objects.insert(edit.file.to_string(), new_obj.clone());
    let exe = work.join(format!("oracle{k}"));
    link(build.base, build.variant, &oracle_objects, &exe).map_err(|e| skip(format!("oracle does not link: {e}")))?;
    let oracle = run_rounds(&exe, BASELINE_ROUNDS).map_err(|e| skip(format!("oracle {e}")))?;
    // An edit that makes the program read memory it does not own has no
    // one right answer: the patched process and the oracle may each read
    // other bytes there. Such an edit is told by the oracle itself, run
    // again over other heap bytes, and is not compared.
    let again = run_rounds_perturbed(&exe, BASELINE_ROUNDS, 0xa5).map_err(|e| {
        skip(format!(
            "the edit reads memory the program does not own: the oracle, run again over other heap bytes, {e}"
        ))
    })?;
    if let Some(round) = (0..oracle.len()).find(|&r| oracle.get(r) != again.get(r)) {
        return Err(skip(format!(
            "the edit reads memory the program does not own: the oracle computes otherwise over other heap bytes (round {round}: `{}` against `{}`)",
            oracle[round],
            again.get(round).map_or("<none>", String::as_str)
        )));
    }
    Ok((new_obj, old_obj, oracle))
}

// ---------------------------------------------------------------------
// Plans and the report

struct Plan {
    builds: Vec<(&'static CodeBase, Variant)>,
    cases: Vec<(usize, String, Vec<Step>, bool)>,
}

impl Plan {
    fn build_index(&mut self, base: &'static CodeBase, variant: Variant) -> usize {
        match self
            .builds
            .iter()
            .position(|(b, v)| b.name == base.name && *v == variant)
        {
            Some(i) => i,
            None => {
                self.builds.push((base, variant));
                self.builds.len() - 1
            }
        }
    }

    fn single(&mut self, base: &'static CodeBase, variant: Variant, edit: Edit, hand: bool) {
        let b = self.build_index(base, variant);
        self.cases.push((b, edit.id.clone(), vec![Step::Edit(edit)], hand));
    }

    fn sequence(&mut self, base: &'static CodeBase, variant: Variant, id: &str, steps: Vec<Step>) {
        let b = self.build_index(base, variant);
        self.cases.push((b, id.into(), steps, true));
    }
}

fn zlib_sequences(plan: &mut Plan, variant: Variant) {
    plan.sequence(
        &ZLIB,
        variant,
        "seq-helper-update-revert",
        vec![
            Step::Edit(find_hand(ZLIB_EDITS, "adler32-helper")),
            Step::Edit(on_top(
                "adler32-helper-2",
                "adler32.c",
                "update the helper patch 1 added",
                "return a ^ 0x10001;",
                "return a ^ 0x20002;",
            )),
            Step::RevertAll,
        ],
    );
    plan.sequence(
        &ZLIB,
        variant,
        "seq-switch-case-revert",
        vec![
            Step::Edit(find_hand(ZLIB_EDITS, "zerror-switch")),
            Step::Edit(on_top(
                "zerror-switch-2",
                "zutil.c",
                "add a case to the switch patch 1 added",
                "    case Z_MEM_ERROR:",
                "    case Z_BUF_ERROR: return \"buffer error (edited)\";\n    case Z_MEM_ERROR:",
            )),
            Step::RevertAll,
        ],
    );
    plan.sequence(
        &ZLIB,
        variant,
        "seq-two-files-revert",
        vec![
            Step::Edit(find_hand(ZLIB_EDITS, "adler32-base")),
            Step::Edit(find_hand(ZLIB_EDITS, "deflate-bound-small")),
            Step::RevertAll,
        ],
    );
}

fn zstd_sequence(plan: &mut Plan, variant: Variant) {
    plan.sequence(
        &ZSTD,
        variant,
        "seq-error-strings-revert",
        vec![
            Step::Edit(find_hand(ZSTD_EDITS, "error-literal")),
            Step::Edit(on_top(
                "error-literal-2",
                "common/error_private.c",
                "change the literal patch 1 changed",
                "\"Error (generic, edited)\"",
                "\"Error (generic, edited twice)\"",
            )),
            Step::RevertAll,
        ],
    );
}

fn env_number(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v.parse().unwrap_or_else(|_| panic!("{name}={v:?} is not a number")),
        Err(_) => default,
    }
}

/// The fixed CI set: every hand edit on gcc -O2 PIE (upstream's build),
/// the core ones on gcc -O0 PIE and clang -O2 non-PIE, the hidden ones
/// without hidden visibility, small functions and a switch at gcc -Os, one
/// LTO build,
/// sequences, zstd's edits on gcc -O0 non-PIE, and a few generated edits.
fn short_plan() -> (Plan, usize) {
    let mut plan = Plan {
        builds: Vec::new(),
        cases: Vec::new(),
    };
    for h in ZLIB_EDITS {
        plan.single(&ZLIB, GCC_O2_PIE, hand(h), true);
    }
    zlib_sequences(&mut plan, GCC_O2_PIE);
    for variant in [GCC_O0_PIE, CLANG_O2_NOPIE] {
        for id in ZLIB_CORE {
            plan.single(&ZLIB, variant, find_hand(ZLIB_EDITS, id), true);
        }
    }
    for id in ZLIB_HIDDEN {
        plan.single(&ZLIB, GCC_O2_PIE_VISIBLE, find_hand(ZLIB_EDITS, id), true);
    }
    for id in ZLIB_OS {
        plan.single(&ZLIB, GCC_OS_PIE, find_hand(ZLIB_EDITS, id), true);
    }
    plan.single(&ZLIB, GCC_O2_PIE_LTO, find_hand(ZLIB_EDITS, "adler32-base"), true);
    // zstd at -O0 here: at -O2 its build alone takes a minute of CPU
    // (the long run has it).
    for h in ZSTD_EDITS {
        plan.single(&ZSTD, GCC_O0_NOPIE, hand(h), true);
    }
    zstd_sequence(&mut plan, GCC_O0_NOPIE);
    (plan, env_number("RELIVE_DIFF_EDITS", 6) as usize)
}

/// The long run: every variant of both code bases, every hand edit and
/// sequence on each, and `RELIVE_DIFF_EDITS` generated edits (200) spread
/// over the zlib variants.
fn long_plan() -> (Plan, usize) {
    let mut plan = Plan {
        builds: Vec::new(),
        cases: Vec::new(),
    };
    for variant in all_variants() {
        for h in ZLIB_EDITS {
            plan.single(&ZLIB, variant, hand(h), true);
        }
        zlib_sequences(&mut plan, variant);
    }
    for variant in [
        GCC_O2_PIE,
        GCC_O0_NOPIE,
        CLANG_O2_NOPIE,
        variant("clang", "-Os", true),
        GCC_O2_PIE_VISIBLE,
    ] {
        for h in ZSTD_EDITS {
            plan.single(&ZSTD, variant, hand(h), true);
        }
        zstd_sequence(&mut plan, variant);
    }
    (plan, env_number("RELIVE_DIFF_EDITS", 200) as usize)
}

fn run(plan: (Plan, usize)) {
    let (mut plan, generated) = plan;
    let started = Instant::now();
    let jobs = env_number("RELIVE_DIFF_JOBS", 2).max(1) as usize;
    let only = std::env::var("RELIVE_DIFF_ONLY").ok();
    let seed = env_number("RELIVE_DIFF_SEED", 18);
    // Generated edits go round-robin over the plan's zlib builds (and one
    // in four to zstd's, where the plan builds zstd).
    let zlib_builds: Vec<usize> = (0..plan.builds.len())
        .filter(|&i| plan.builds[i].0.name == "zlib" && !plan.builds[i].1.lto)
        .collect();
    let zstd_build = (0..plan.builds.len()).find(|&i| plan.builds[i].0.name == "zstd");
    let keep = |name: &str| match &only {
        Some(o) => name.contains(o.as_str()),
        None => true,
    };
    let wanted: Vec<usize> = (0..plan.builds.len())
        .filter(|&b| {
            let build_name = format!("{}/{}", plan.builds[b].0.name, plan.builds[b].1.name());
            plan.cases
                .iter()
                .any(|c| c.0 == b && keep(&format!("{build_name}/{}", c.1)))
                || (generated > 0 && (zlib_builds.contains(&b) || zstd_build == Some(b)))
        })
        .collect();
    let builds: Vec<Option<Build>> = (0..plan.builds.len())
        .map(|b| {
            wanted
                .contains(&b)
                .then(|| build(plan.builds[b].0, plan.builds[b].1, jobs))
        })
        .collect();
    let built = started.elapsed();
    if generated > 0 {
        let mut zlib_edits = Vec::new();
        let mut zstd_edits = Vec::new();
        if let Some(b) = zlib_builds.first().and_then(|&b| builds[b].as_ref()) {
            let n = if zstd_build.is_some() {
                generated - generated / 4
            } else {
                generated
            };
            zlib_edits = generated_edits(&ZLIB, &b.tree, n, seed);
        }
        if let Some(b) = zstd_build.and_then(|b| builds[b].as_ref()) {
            zstd_edits = generated_edits(&ZSTD, &b.tree, generated / 4, seed);
        }
        for (k, edit) in zlib_edits.into_iter().enumerate() {
            let b = zlib_builds[k % zlib_builds.len()];
            plan.cases.push((b, edit.id.clone(), vec![Step::Edit(edit)], false));
        }
        for edit in zstd_edits {
            plan.cases
                .push((zstd_build.unwrap(), edit.id.clone(), vec![Step::Edit(edit)], false));
        }
    }
    let cases: Vec<Case> = plan
        .cases
        .into_iter()
        .filter_map(|(build, id, steps, hand)| {
            let b = builds[build].as_ref()?;
            keep(&format!("{}/{id}", b.name)).then_some(Case { build, id, steps, hand })
        })
        .collect();
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, Vec<Outcome>)>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..jobs {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(case) = cases.get(i) else { break };
                let build = builds[case.build].as_ref().unwrap();
                let outcomes = run_case(build, case);
                for o in &outcomes {
                    eprintln!("differential: {}", o.line());
                }
                results.lock().unwrap().push((i, outcomes));
            });
        }
    });
    let mut results = results.into_inner().unwrap();
    results.sort_by_key(|r| r.0);
    let outcomes: Vec<Outcome> = results.into_iter().flat_map(|r| r.1).collect();
    let (lines, table) = report(&outcomes, cases.len(), started.elapsed(), built);
    println!("{lines}\n{table}");
    let failures: Vec<String> = outcomes
        .iter()
        .filter(|o| o.verdict.failed())
        .map(Outcome::line)
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} steps failed (patched but wrong, or a crash):\n{}\n\n{table}",
        failures.len(),
        outcomes.len(),
        failures.join("\n")
    );
}

/// A refusal's message with numbers and paths taken out, to count reasons.
fn reason(message: &str) -> String {
    let words: Vec<String> = message
        .split_whitespace()
        .map(|w| {
            if w.contains('/') {
                "PATH".into()
            } else if w.starts_with("0x") {
                "ADDR".into()
            } else if w.chars().any(|c| c.is_ascii_digit()) && !w.chars().any(|c| c.is_ascii_lowercase() && c > 'f') {
                "N".into()
            } else {
                w.to_string()
            }
        })
        .collect();
    let text = words.join(" ");
    match text.char_indices().nth(110) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text,
    }
}

/// One line per step (failures with what the edit exercises), and the
/// summary table.
fn report(outcomes: &[Outcome], cases: usize, took: Duration, built: Duration) -> (String, String) {
    let mut lines = String::new();
    let count = |f: &dyn Fn(&Verdict) -> bool| outcomes.iter().filter(|o| f(&o.verdict)).count();
    let _ = writeln!(lines, "differential: one line per step");
    for o in outcomes {
        let _ = writeln!(lines, "  {}", o.line());
        if o.verdict.failed() {
            let _ = writeln!(lines, "  {:<20}   ({})", "", o.what);
        }
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "differential summary: {cases} cases, {} steps in {:.0} s (builds {:.0} s)",
        outcomes.len(),
        took.as_secs_f64(),
        built.as_secs_f64()
    );
    let matched = count(&|v| *v == Verdict::Matched);
    let visible = outcomes
        .iter()
        .filter(|o| o.verdict == Verdict::Matched && o.observable)
        .count();
    let rows: [(&str, usize); 6] = [
        ("patched and matched", matched),
        ("patched but MISMATCH", count(&|v| *v == Verdict::Mismatch)),
        (
            "refused (target unchanged)",
            count(&|v| matches!(v, Verdict::Refused(_))),
        ),
        (
            "refused but target changed",
            count(&|v| matches!(v, Verdict::RefusedButChanged(_))),
        ),
        ("relive crashed", count(&|v| matches!(v, Verdict::ReliveCrashed(_)))),
        (
            "target crashed or hung",
            count(&|v| matches!(v, Verdict::TargetCrashed(_))),
        ),
    ];
    for (label, n) in rows {
        let _ = write!(out, "  {label:<28} {n:>5}");
        if label == "patched and matched" {
            let _ = write!(out, "  ({visible} with a visible effect)");
        }
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "  {:<28} {:>5}",
        "skipped (invalid edit)",
        count(&|v| matches!(v, Verdict::Skipped(_)))
    );
    let mut by_reason: BTreeMap<String, usize> = BTreeMap::new();
    for o in outcomes {
        match &o.verdict {
            Verdict::Refused(m) => *by_reason.entry(format!("refused: {}", reason(m))).or_default() += 1,
            Verdict::Skipped(m) => *by_reason.entry(format!("skipped: {}", reason(m))).or_default() += 1,
            _ => {}
        }
    }
    for (r, n) in by_reason {
        let _ = writeln!(out, "    {n:>4}  {r}");
    }
    (lines, out)
}

#[test]
fn differential() {
    run(short_plan());
}

#[test]
#[ignore = "long: every variant and hundreds of generated edits (RELIVE_DIFF_EDITS)"]
fn differential_long() {
    run(long_plan());
}

#[test]
fn mutation_sites_skip_comments_strings_tables_and_preprocessor() {
    let text = "#define X 1\nstatic const int t[2] = {3, 4};\n/* 5 < 6 */\nint f(int a) {\n    if (a <= 7 && a != 0x1fU) return \"8\" [0];\n    return a->b > 9;\n}\n";
    let sites: Vec<(String, Vec<String>)> = mutation_sites(text).into_iter().map(|s| (s.old, s.new)).collect();
    let want: Vec<(String, Vec<String>)> = [
        ("<=", vec!["<"]),
        ("7", vec!["8", "6"]),
        ("&&", vec!["||"]),
        ("!=", vec!["=="]),
        ("0x1fU", vec!["0x20U", "0x1eU"]),
        ("0", vec!["1"]),
        (">", vec![">="]),
        ("9", vec!["10", "8"]),
    ]
    .into_iter()
    .map(|(o, n)| (o.to_string(), n.into_iter().map(String::from).collect()))
    .collect();
    assert_eq!(sites, want);
}
