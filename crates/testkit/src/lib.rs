//! Helpers for relive's tests: build small C programs with the machine's
//! gcc, run them (or the shared APE fixtures) as real processes, and read
//! what they print. Used only as a dev-dependency.
// No unsafe code here: only the process and memory layers (relive-process,
// relive-smf's loader, relive-image's file mapping) touch raw memory.
#![forbid(unsafe_code)]

use std::io::Write;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

/// How long to wait for something a program should do soon: a deadline
/// against hangs, not a speed check.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// `../shared/fixtures/ape` relative to the project root, where CI has it.
pub fn fixtures() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/ape");
    assert!(
        dir.join("pledge.com").is_file(),
        "APE fixtures not found at {} (the project expects ../shared next to its root)",
        dir.display()
    );
    dir
}

pub fn fixture(name: &str) -> PathBuf {
    fixtures().join(name)
}

/// Compiles `source` with gcc and `flags` into `dir/name`.
pub fn compile(dir: &Path, name: &str, source: &str, flags: &[&str]) -> PathBuf {
    compile_with("gcc", dir, name, source, flags)
}

/// [`compile`] with another C compiler (`clang`: `.ci/run` installs it).
pub fn compile_with(cc: &str, dir: &Path, name: &str, source: &str, flags: &[&str]) -> PathBuf {
    let src = dir.join(format!("{name}.c"));
    std::fs::write(&src, source).unwrap();
    let exe = dir.join(name);
    let out = Command::new(cc)
        .args(flags)
        .arg("-o")
        .arg(&exe)
        .arg(&src)
        .output()
        .unwrap_or_else(|e| panic!("{cc} is needed (.ci/run installs it): {e}"));
    assert!(
        out.status.success(),
        "{cc} {flags:?} {name}.c failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    exe
}

/// Whether `tool --version` runs, saying `SKIPPED: {missing}` when it does
/// not: a test that needs a tool `.ci/run` installs skips visibly on a
/// machine without it.
pub fn installed(tool: &str, missing: &str) -> bool {
    let found = Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        eprintln!("SKIPPED: {missing}");
    }
    found
}

/// Whether the tests run as root (some need it to switch users).
pub fn is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false)
}

/// A running program whose standard output is read line by line, and whose
/// standard input is a pipe the test holds. Killed when dropped.
pub struct Target {
    pub child: Child,
    pub exe: PathBuf,
    lines: Receiver<String>,
    stdin: Option<Box<dyn Write + Send>>,
    pub dir: tempfile::TempDir,
}

impl Target {
    /// Compiles `source` with `flags` in a fresh directory and starts it.
    pub fn start_c(source: &str, flags: &[&str]) -> Target {
        let dir = tempfile::tempdir().unwrap();
        let exe = compile(dir.path(), "target", source, flags);
        let cmd = Command::new(&exe);
        Target::spawn(cmd, exe, dir)
    }

    /// Copies the APE fixture `name` (`ent.com`, `ent.elf`) into a fresh
    /// directory and starts it, through `sh` for a raw APE so that the APE
    /// loader is extracted into that directory. Its standard input is a
    /// named FIFO whose writing end the test holds: `ent` blocks reading it
    /// until [`Target::close_stdin`].
    pub fn start_ape(name: &str) -> Target {
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join(name);
        std::fs::copy(fixture(name), &exe).unwrap();
        let mut cmd = if name.ends_with(".com") {
            let mut sh = Command::new("sh");
            sh.arg(format!("./{name}"));
            sh
        } else {
            std::fs::set_permissions(&exe, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
            Command::new(&exe)
        };
        let fifo = dir.path().join("input.fifo");
        let made = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo (coreutils)");
        assert!(made.success());
        // Opening for reading and writing never blocks, and once a writer
        // exists, opening the reading end does not block either.
        let writer = std::fs::File::options().read(true).write(true).open(&fifo).unwrap();
        let reader = std::fs::File::open(&fifo).unwrap();
        cmd.current_dir(dir.path()).env("TMPDIR", dir.path()).stdin(reader);
        let mut target = Target::spawn_with_stdin(cmd, exe.clone(), dir, false);
        target.stdin = Some(Box::new(writer));
        // Running once the program itself is mapped (the shell has exec'd
        // the loader and the loader has mapped the APE).
        let maps = format!("/proc/{}/maps", target.pid());
        let want = exe.to_string_lossy().into_owned();
        let deadline = Instant::now() + PATIENCE;
        while !std::fs::read_to_string(&maps).unwrap_or_default().contains(&want) {
            assert!(Instant::now() < deadline, "{name} never appeared in {maps}");
            std::thread::sleep(Duration::from_millis(5));
        }
        target
    }

    /// Starts `cmd` with its standard output read by the test and its
    /// standard input a pipe the test holds.
    pub fn spawn(cmd: Command, exe: PathBuf, dir: tempfile::TempDir) -> Target {
        Target::spawn_with_stdin(cmd, exe, dir, true)
    }

    fn spawn_with_stdin(mut cmd: Command, exe: PathBuf, dir: tempfile::TempDir, pipe_stdin: bool) -> Target {
        if pipe_stdin {
            cmd.stdin(Stdio::piped());
        }
        cmd.stdout(Stdio::piped());
        // "Text file busy": the file was just written, and another test's
        // thread forked a child in between that holds a copy of the
        // writing descriptor until it execs (seen once in a full run).
        let mut tries = 0;
        let mut child = loop {
            match cmd.spawn() {
                Ok(child) => break child,
                Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy && tries < 100 => {
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => panic!("starting {}: {e}", exe.display()),
            }
        };
        let stdout = child.stdout.take().unwrap();
        let stdin = child.stdin.take().map(|s| Box::new(s) as Box<dyn Write + Send>);
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Target {
            child,
            exe,
            lines,
            stdin,
            dir,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn pid_arg(&self) -> String {
        self.pid().to_string()
    }

    /// The pid of this process's first child, as an argument: the program
    /// a `relive run` target started.
    pub fn child_pid_arg(&self) -> String {
        let pid = self.pid();
        let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
            .unwrap_or_else(|e| panic!("the children of {pid}: {e}"));
        children
            .split_whitespace()
            .next()
            .unwrap_or_else(|| panic!("process {pid} runs no program"))
            .to_string()
    }

    /// The pipe to the program's standard input.
    pub fn stdin(&mut self) -> &mut (dyn Write + Send) {
        self.stdin.as_deref_mut().expect("standard input already closed")
    }

    /// Closes the program's standard input (end of file for it).
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// The next line, waiting at most `timeout`: `Err(Waited::Exited)` once
    /// the program has closed its standard output (exited or crashed),
    /// `Err(Waited::Timeout)` if it printed nothing in time. For tests that
    /// expect a program may hang or die; [`Target::next_line`] panics.
    pub fn line_within(&self, timeout: Duration) -> Result<String, Waited> {
        self.lines.recv_timeout(timeout).map_err(|e| match e {
            std::sync::mpsc::RecvTimeoutError::Timeout => Waited::Timeout,
            std::sync::mpsc::RecvTimeoutError::Disconnected => Waited::Exited,
        })
    }

    pub fn next_line(&self) -> String {
        self.lines
            .recv_timeout(PATIENCE)
            .unwrap_or_else(|_| panic!("{} printed nothing more", self.exe.display()))
    }

    /// Waits for a line starting with `prefix` and returns the rest of it.
    pub fn wait_for_prefix(&self, prefix: &str) -> String {
        let deadline = Instant::now() + PATIENCE;
        let mut last = String::new();
        while Instant::now() < deadline {
            last = self.next_line();
            if let Some(rest) = last.strip_prefix(prefix) {
                return rest.to_string();
            }
        }
        panic!("the program never printed {prefix:?}… (last line {last:?})");
    }

    /// Waits until the program prints exactly `want` (lines already in the
    /// pipe may predate a change).
    pub fn wait_for(&self, want: &str) {
        let deadline = Instant::now() + PATIENCE;
        let mut last = String::new();
        while Instant::now() < deadline {
            last = self.next_line();
            if last == want {
                return;
            }
        }
        panic!("the program never printed {want:?} (last line {last:?})");
    }

    /// The next `n` lines the program prints from now on (those already
    /// waiting in the pipe, which may predate a change, skipped) are each
    /// one of `lines`.
    pub fn prints_only(&self, lines: &[&str], n: usize) {
        std::thread::sleep(Duration::from_millis(100));
        while self.line_within(Duration::ZERO).is_ok() {}
        for _ in 0..n {
            let line = self.next_line();
            assert!(
                lines.contains(&line.as_str()),
                "the program printed {line:?}, not one of {lines:?}"
            );
        }
    }

    /// Waits for the program to exit: how it ended.
    pub fn wait(&mut self) -> std::process::ExitStatus {
        self.child.wait().expect("the program's status")
    }

    /// Every line the program prints until it exits.
    pub fn rest(&self) -> Vec<String> {
        let mut out = Vec::new();
        while let Ok(line) = self.lines.recv_timeout(PATIENCE) {
            out.push(line);
        }
        out
    }
}

/// Why [`Target::line_within`] returned no line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Waited {
    Timeout,
    Exited,
}

impl Drop for Target {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Parses `0x…` as printed by `%p`.
pub fn hex_addr(text: &str) -> u64 {
    u64::from_str_radix(text.trim().trim_start_matches("0x"), 16).unwrap_or_else(|_| panic!("{text:?} is not 0x-hex"))
}

/// A program with `argv[1]` worker threads: even-numbered ones block in
/// `read` on a pipe, odd-numbered ones loop in `nanosleep` (of `argv[2]`
/// milliseconds, default 20). It prints
/// `ready N` once all are running, waits for a line on standard input, then
/// feeds each reader one byte and checks that every reader got exactly its
/// byte, every sleeper kept ticking, and no call failed with EINTR:
/// `readers R/R sleepers S/S sleep_errors 0 read_errors 0` when all is well.
pub const THREADS_PROGRAM: &str = r#"
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define MAX 4096
static atomic_long ticks[MAX];
static atomic_int started, read_ok, read_bad, sleep_bad;
static int fds[2];
static long sleep_ms = 20;

static void *reader(void *arg) {
    (void)arg;
    atomic_fetch_add(&started, 1);
    char c;
    if (read(fds[0], &c, 1) == 1 && c == 'x') atomic_fetch_add(&read_ok, 1);
    else atomic_fetch_add(&read_bad, 1);
    return NULL;
}

static void *sleeper(void *arg) {
    long i = (long)arg;
    atomic_fetch_add(&started, 1);
    for (;;) {
        struct timespec ts = {sleep_ms / 1000, (sleep_ms % 1000) * 1000 * 1000};
        if (nanosleep(&ts, NULL) != 0) atomic_fetch_add(&sleep_bad, 1);
        atomic_fetch_add(&ticks[i], 1);
    }
    return NULL;
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 2;
    if (argc > 2) sleep_ms = atol(argv[2]);
    if (n < 1 || n > MAX || pipe(fds) != 0) return 2;
    setvbuf(stdout, NULL, _IOLBF, 0);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 64 * 1024);
    for (long i = 0; i < n; i++) {
        pthread_t t;
        if (pthread_create(&t, &attr, i % 2 ? sleeper : reader, (void *)i) != 0) return 3;
    }
    while (atomic_load(&started) < n) usleep(1000);
    printf("ready %d\n", n);
    char line[64];
    if (!fgets(line, sizeof line, stdin)) return 4;
    int readers = (n + 1) / 2, sleepers = n / 2, advanced = 0;
    static long before[MAX];
    for (int i = 1; i < n; i += 2) before[i] = atomic_load(&ticks[i]);
    for (int i = 0; i < readers; i++) if (write(fds[1], "x", 1) != 1) return 5;
    while (atomic_load(&read_ok) + atomic_load(&read_bad) < readers) usleep(1000);
    usleep(150 * 1000);
    for (int i = 1; i < n; i += 2) advanced += atomic_load(&ticks[i]) > before[i];
    printf("readers %d/%d sleepers %d/%d sleep_errors %d read_errors %d\n",
           atomic_load(&read_ok), readers, advanced, sleepers,
           atomic_load(&sleep_bad), atomic_load(&read_bad));
    return 0;
}
"#;

/// A program printing `value V counter N` every 3 ms, where `value()`
/// reads a volatile (so no compiler folds it into `main`, even clang, which
/// has no `noipa`) and `counter` is a global that keeps counting. Built by
/// GCC at -O2, its `main` keeps `printf`'s format in `rdi` across the call
/// to `value` (`-fipa-ra`). Includes `<string.h>` for edits that call
/// `strlen(word)` (`word` is `"abcd"`).
pub const VALUE_PROGRAM: &str = r#"
#include <stdio.h>
#include <string.h>
#include <unistd.h>
long counter = 0;
volatile int one = 1;
const char *volatile word = "abcd";
__attribute__((noinline)) int value(void) { return one; }
int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (;;) { counter++; printf("value %d counter %ld\n", value(), counter); usleep(3000); }
}
"#;

/// A program that prints `tick N` every 2 ms, counting up, with the address
/// of its function `tick` first (`tick_fn 0x…`).
pub const TICK_PROGRAM: &str = r#"
#include <stdio.h>
#include <unistd.h>
__attribute__((noinline, noipa)) long tick(long n) { return n + 1; }
int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("tick_fn %p\n", (void *)tick);
    for (long n = 0;; n = tick(n)) { printf("tick %ld\n", n); usleep(2000); }
}
"#;

impl Target {
    /// Waits for the next `tick N` line and returns N.
    pub fn next_tick(&self) -> u64 {
        self.wait_for_prefix("tick ").parse().unwrap()
    }
}

/// The median Criterion recorded for benchmark `id` (its directory name,
/// `group_case`) under `dir`, in nanoseconds.
pub fn criterion_median_ns(dir: &Path, id: &str) -> Option<f64> {
    let text = std::fs::read_to_string(dir.join(id).join("new/estimates.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v["median"]["point_estimate"].as_f64()
}

/// Compiles `source` with `gcc -c` and `flags` into `dir/name.o`.
pub fn compile_object(dir: &Path, name: &str, source: &str, flags: &[&str]) -> PathBuf {
    compile_object_with("gcc", dir, name, source, flags)
}

/// [`compile_object`] with another C compiler (`clang`: `.ci/run` installs it).
pub fn compile_object_with(cc: &str, dir: &Path, name: &str, source: &str, flags: &[&str]) -> PathBuf {
    let mut all = vec!["-c"];
    all.extend_from_slice(flags);
    let out = compile_with(cc, dir, name, source, &all);
    let object = dir.join(format!("{name}.o"));
    std::fs::rename(out, &object).unwrap();
    object
}

/// Each C compiler the tests build modules with (gcc, and clang, which
/// `.ci/run` installs) at -O0 and -O2, position-independent: (compiler,
/// flags).
pub fn pic_builds() -> impl Iterator<Item = (&'static str, &'static [&'static str])> {
    ["gcc", "clang"]
        .into_iter()
        .flat_map(|cc| [(cc, &["-O0", "-fPIC"][..]), (cc, &["-O2", "-fPIC"][..])])
}

/// The entries on the GDB JIT list of relive's library in process `pid`
/// (none when it is not loaded).
pub fn jit_debug_list(pid: u32) -> Vec<u64> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    let Some(base) = maps
        .lines()
        .find(|l| l.ends_with("/librelive-jit-debug.so"))
        .and_then(|l| u64::from_str_radix(l.split('-').next().unwrap(), 16).ok())
    else {
        return Vec::new();
    };
    let mem = std::fs::File::open(format!("/proc/{pid}/mem")).unwrap();
    let word = |addr: u64| {
        let mut b = [0u8; 8];
        std::os::unix::fs::FileExt::read_exact_at(&mem, &mut b, addr).unwrap();
        u64::from_le_bytes(b)
    };
    // The descriptor's first_entry, then each entry's next.
    let mut entries = Vec::new();
    let mut at = word(base + 0x2100 + 16);
    while at != 0 && entries.len() < 1000 {
        entries.push(at);
        at = word(at);
    }
    entries
}

/// The permissions (`r-xp`, …) /proc/self/maps shows for the page of this
/// process at `addr`, if it is mapped.
pub fn page_permissions(addr: u64) -> Option<String> {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    maps.lines().find_map(|line| {
        let (start, end) = mapping_range(line)?;
        let rest = line.split_once(' ')?.1;
        (start <= addr && addr < end).then(|| rest.get(..4).unwrap_or(rest).to_string())
    })
}

/// The address range a /proc/PID/maps line (or smaps header line) names.
fn mapping_range(line: &str) -> Option<(u64, u64)> {
    let (start, end) = line.split_once(' ')?.0.split_once('-')?;
    Some((u64::from_str_radix(start, 16).ok()?, u64::from_str_radix(end, 16).ok()?))
}

/// The resident memory (KiB, /proc/self/smaps `Rss`) of the mapping of
/// this process that holds `addr`, if one does.
pub fn resident_kib(addr: u64) -> Option<u64> {
    let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
    let mut inside = false;
    for line in smaps.lines() {
        if let Some((start, end)) = mapping_range(line) {
            inside = start <= addr && addr < end;
        } else if let Some(kib) = line.strip_prefix("Rss:").filter(|_| inside) {
            return kib.trim().trim_end_matches("kB").trim().parse().ok();
        }
    }
    None
}

/// A small deterministic generator (xorshift) for mutation tests, so a
/// failure reproduces from its round number.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
}

/// The directory holding the sources of the package `name` that the
/// workspace depends on: a crates.io crate, unpacked by cargo under
/// `$CARGO_HOME/registry/src/*/NAME-VERSION/` with the version Cargo.lock
/// names (`cargo test` has downloaded it when it is a dependency of the
/// test). Failing that, where `cargo metadata` puts its manifest.
pub fn package_dir(name: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let lock = std::fs::read_to_string(root.join("Cargo.lock")).expect("Cargo.lock");
    let versions: Vec<&str> = lock
        .split("[[package]]")
        .filter(|p| p.lines().any(|l| l.trim() == format!("name = \"{name}\"")))
        .filter_map(|p| {
            p.lines()
                .find_map(|l| l.trim().strip_prefix("version = \"")?.strip_suffix('"'))
        })
        .collect();
    assert!(
        versions.len() == 1,
        "Cargo.lock has {} versions of {name}: {versions:?}",
        versions.len()
    );
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo")));
    let unpacked = cargo_home
        .map(|h| h.join("registry/src"))
        .and_then(|src| std::fs::read_dir(src).ok())
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|index| index.path().join(format!("{name}-{}", versions[0])))
        .find(|dir| dir.join("Cargo.toml").is_file());
    if let Some(dir) = unpacked {
        return dir;
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(&cargo)
        .args(["metadata", "--format-version", "1", "--manifest-path"])
        .arg(root.join("Cargo.toml"))
        .output()
        .unwrap_or_else(|e| panic!("cargo metadata ({}): {e}", Path::new(&cargo).display()));
    assert!(
        out.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("cargo metadata prints JSON");
    let manifest = meta["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == name)
        .and_then(|p| p["manifest_path"].as_str())
        .unwrap_or_else(|| panic!("no package {name} in the workspace's dependencies (cargo metadata)"));
    Path::new(manifest).parent().unwrap().to_path_buf()
}

/// The JSON lines a relive session prints on `stderr` (`run`/`watch
/// --json`), as they come; other lines are echoed to the test's stderr.
///
/// A `changed_elsewhere` event (another relive command changed the
/// process while no file was saved) is left out: the watcher says it at
/// its next idle moment, which a test's save after such a command may
/// come before or after. [`json_lines_every`] keeps it.
pub fn json_lines(stderr: impl std::io::Read + Send + 'static) -> std::sync::mpsc::Receiver<serde_json::Value> {
    json_lines_keeping(stderr, |e| e["event"] != "changed_elsewhere")
}

/// [`json_lines`] with every event.
pub fn json_lines_every(stderr: impl std::io::Read + Send + 'static) -> std::sync::mpsc::Receiver<serde_json::Value> {
    json_lines_keeping(stderr, |_| true)
}

fn json_lines_keeping(
    stderr: impl std::io::Read + Send + 'static,
    keep: fn(&serde_json::Value) -> bool,
) -> std::sync::mpsc::Receiver<serde_json::Value> {
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            match serde_json::from_str::<serde_json::Value>(&line) {
                Ok(v) if !keep(&v) => {}
                Ok(v) => {
                    if tx.send(v).is_err() {
                        break;
                    }
                }
                Err(_) => eprintln!("relive: {line}"),
            }
        }
    });
    rx
}

/// The JSON events from `events` up to and including the first of kind
/// `want` (relive's `watching` after its start-up events, say).
pub fn events_until(events: &Receiver<serde_json::Value>, want: &str) -> Vec<serde_json::Value> {
    let mut seen = Vec::new();
    loop {
        let e = events
            .recv_timeout(PATIENCE)
            .unwrap_or_else(|_| panic!("relive said no {want:?} in {PATIENCE:?}; before: {seen:?}"));
        let done = e["event"] == want;
        seen.push(e);
        if done {
            return seen;
        }
    }
}

/// `relive run --json OPTIONS -- EXE` (the relive binary `relive`) in
/// `dir`, with its state in `dir/state`, once it says it is watching: the
/// session and its JSON events from then on.
pub fn relive_run(
    relive: &Path,
    options: &[&str],
    exe: PathBuf,
    args: &[&str],
    dir: tempfile::TempDir,
) -> (Target, Receiver<serde_json::Value>) {
    let (target, events) = relive_run_starting(relive, options, exe, args, dir);
    events_until(&events, "watching");
    (target, events)
}

/// [`relive_run`], returning at once: relive may still be comparing the
/// sources with the running code.
pub fn relive_run_starting(
    relive: &Path,
    options: &[&str],
    exe: PathBuf,
    args: &[&str],
    dir: tempfile::TempDir,
) -> (Target, Receiver<serde_json::Value>) {
    relive_run_read_by(relive, options, exe, args, dir, json_lines)
}

/// [`relive_run`] with every event ([`json_lines_every`]).
pub fn relive_run_every_event(
    relive: &Path,
    options: &[&str],
    exe: PathBuf,
    args: &[&str],
    dir: tempfile::TempDir,
) -> (Target, Receiver<serde_json::Value>) {
    let (target, events) = relive_run_read_by(relive, options, exe, args, dir, json_lines_every);
    events_until(&events, "watching");
    (target, events)
}

/// [`relive_run_target`], its events read by `read` from its stderr.
fn relive_run_read_by(
    relive: &Path,
    options: &[&str],
    exe: PathBuf,
    args: &[&str],
    dir: tempfile::TempDir,
    read: fn(std::process::ChildStderr) -> Receiver<serde_json::Value>,
) -> (Target, Receiver<serde_json::Value>) {
    let mut target = relive_run_target(relive, options, exe, args, dir);
    let events = read(target.child.stderr.take().expect("relive's stderr"));
    (target, events)
}

/// `relive run --json OPTIONS -- EXE ARGS` started in `dir`, its state in
/// `dir/state`, its stderr left to read.
fn relive_run_target(relive: &Path, options: &[&str], exe: PathBuf, args: &[&str], dir: tempfile::TempDir) -> Target {
    let mut cmd = Command::new(relive);
    cmd.args(["run", "--json"])
        .args(options)
        .arg("--")
        .arg(&exe)
        .args(args)
        .current_dir(dir.path())
        .env("RELIVE_STATE_DIR", dir.path().join("state"))
        .stderr(Stdio::piped());
    Target::spawn(cmd, exe, dir)
}

/// A copy of the executable `exe` that any user may run (in a fresh 0755
/// directory, kept while the returned directory lives), for tests that run
/// it as an unprivileged user.
pub fn public_copy(exe: &Path) -> (tempfile::TempDir, PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("a temporary directory");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod 0755");
    let copy = dir.path().join(exe.file_name().expect("a file name"));
    std::fs::copy(exe, &copy).expect("copying the executable");
    (dir, copy)
}

/// Runs `exe` with `args` and `envs` as user and group 65534 (`nobody`),
/// through `setpriv`. A copy just written may be refused for a moment with
/// "Text file busy" (another test's child, forked while it was open for
/// writing, holds it until it execs): tried again then.
pub fn run_as_nobody(exe: &Path, args: &[&str], envs: &[(&str, &Path)]) -> std::process::Output {
    for _ in 0..50 {
        let out = Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(exe)
            .args(args)
            .envs(envs.iter().map(|(k, v)| (*k, *v)))
            .output()
            .expect("running setpriv");
        if !String::from_utf8_lossy(&out.stderr).contains("Text file busy") {
            return out;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{} stays busy", exe.display());
}
