//! Every failure of every step rolls back: patches, re-patches and reverts
//! run against an in-memory copy of a real process
//! (`relive_process::simulated`) in which the n-th call of one operation
//! (a write, a stop, a register write, a remote `mmap`, `mprotect` or
//! `munmap`) fails, for every n the command reaches. A command that fails
//! must leave the memory, the mappings, the threads' registers and the
//! journal exactly as they were, and the same command must then succeed
//! and give what it gives with no failure.

use std::path::Path;
use std::process::Command;

use relive_patch::apply::{self, Target, Timing};
use relive_patch::journal::Journal;
use relive_patch::select::functions_to_patch;
use relive_patch::state::StateDir;
use relive_patch::ObjectFile;
use relive_process::linux::LinuxProcess;
use relive_process::simulated::{Fault, Memory, Op, SimulatedProcess};
use relive_process::Process;
use relive_testkit::Target as Running;

const FLAGS: [&str; 3] = ["-O2", "-g", "-fno-inline"];

const SOURCE: &str = r#"
#include <stdio.h>
#include <unistd.h>
int total;
__attribute__((noinline)) int scale(int x) { return x * 2; }
__attribute__((noinline)) int offset(int x) { return x + total % 7; }
int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (int i = 0;; i++) {
        total += offset(scale(i));
        printf("total %d\n", total);
        usleep(20000);
    }
}
"#;

/// The first edit: `scale` changes and calls a new function with a new
/// string (a first redirect, an added function, new read-only data).
const FIRST: (&str, &str) = (
    "__attribute__((noinline)) int scale(int x) { return x * 2; }",
    "__attribute__((noinline)) int bonus(int x) { static const char tag[] = \"bonus!\"; return x + tag[x & 3]; }\n\
     __attribute__((noinline)) int scale(int x) { return bonus(x) * 3; }",
);

/// The second edit, over the first: `scale` again (a re-patch: a slot
/// write) and `offset` for the first time.
const SECOND: [(&str, &str); 2] = [
    ("return bonus(x) * 3;", "return bonus(x) * 5 + total;"),
    ("return x + total % 7;", "return x - total % 5;"),
];

fn compile(dir: &Path, name: &str, text: &str, object: bool) -> std::path::PathBuf {
    let source = dir.join(format!("{name}.c"));
    std::fs::write(&source, text).unwrap();
    let out_path = dir.join(if object { format!("{name}.o") } else { name.to_string() });
    let mut cmd = Command::new("gcc");
    cmd.args(FLAGS)
        .arg(if object { "-c" } else { "-pie" })
        .arg(&source)
        .arg("-o")
        .arg(&out_path);
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    out_path
}

/// A journal directory holding a copy of `seed`'s files.
fn journal_copy(seed: &Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    for entry in std::fs::read_dir(seed).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
        }
    }
    dir
}

/// The journal of `process` in `dir`, as the next command would read it.
fn journal(process: &SimulatedProcess, dir: &Path) -> Journal {
    let target = Target::open_in(process, StateDir::at(dir).unwrap()).unwrap();
    target.journal
}

/// What the journal says that matters to the process: the patches with
/// their histories and the pools (not times or counters).
fn journal_facts(j: &Journal) -> (String, Vec<(u64, u64)>, bool) {
    let patches: Vec<_> = j
        .patches
        .iter()
        .map(|p| {
            (
                p.name.clone(),
                p.history.iter().map(|h| h.slot_value).collect::<Vec<_>>(),
            )
        })
        .collect();
    // Pools, and the memory of symbol files listed for debuggers.
    let regions: Vec<_> = j
        .regions
        .iter()
        .flat_map(|r| std::iter::once((r.addr, r.len)).chain(r.debug_images.iter().map(|d| (d.addr, d.len))))
        .collect();
    (format!("{patches:?}"), regions, j.intent.is_some())
}

/// A command; what it warned of.
type Action<'a> = &'a dyn Fn(&mut Target) -> relive_patch::Result<Vec<String>>;

/// Runs `action` on copies of `start` (with the journal in `seed`), once
/// with no failure and then once per (operation, n) it reaches, the n-th
/// call of the operation failing. Returns how many failures were injected.
fn every_failure(start: &SimulatedProcess, seed: &Path, what: &str, action: Action) -> usize {
    let clean = start.duplicate();
    let clean_dir = journal_copy(seed);
    action(&mut Target::open_in(&clean, StateDir::at(clean_dir.path()).unwrap()).unwrap())
        .unwrap_or_else(|e| panic!("{what} with no failure: {e}"));
    let done: Memory = clean.memory();
    let done_journal = journal_facts(&journal(&clean, clean_dir.path()));
    assert!(!start.memory().differences(&done).is_empty(), "{what} changed nothing");

    let before = start.memory();
    let before_journal = journal_facts(&journal(start, seed));
    let mut injected = 0;
    for op in Op::ALL {
        for nth in 0.. {
            let process = start.duplicate();
            process.fail(Fault { op, nth });
            let dir = journal_copy(seed);
            let result = Target::open_in(&process, StateDir::at(dir.path()).unwrap()).and_then(|mut t| action(&mut t));
            if !process.fired() {
                break;
            }
            injected += 1;
            let at = format!("{what}, failing {op:?} call {nth}");
            match result {
                Err(_) => {
                    let changed = before.differences(&process.memory());
                    assert!(changed.is_empty(), "{at}: the failed command left {changed:?}");
                    assert_eq!(
                        journal_facts(&journal(&process, dir.path())),
                        before_journal,
                        "{at}: the journal changed"
                    );
                    // Nothing half done stands in the way of the same
                    // command, which now gives what it gives unhindered.
                    action(&mut Target::open_in(&process, StateDir::at(dir.path()).unwrap()).unwrap())
                        .unwrap_or_else(|e| panic!("{at}: the command again: {e}"));
                }
                // A failure after the change was made (freeing a region no
                // longer used): the change stands, the failure is told, and
                // the journal still records the region it could not free.
                Ok(warnings) => {
                    assert!(!warnings.is_empty(), "{at}: succeeded without a word about the failure");
                    let (patches, regions, intent) = journal_facts(&journal(&process, dir.path()));
                    assert_eq!(
                        (&patches, intent),
                        (&done_journal.0, false),
                        "{at}: the journal differs"
                    );
                    let now = process.memory();
                    for extra in now.regions.iter().filter(|r| !done.regions.contains(r)) {
                        let m = &extra.mapping;
                        let recorded = regions
                            .iter()
                            .any(|&(addr, len)| addr <= m.start && m.end <= addr + len);
                        assert!(recorded, "{at}: {m:?} is mapped and not recorded");
                    }
                    continue;
                }
            }
            let changed = done.differences(&process.memory());
            assert!(changed.is_empty(), "{at}: the end state differs: {changed:?}");
            assert_eq!(
                journal_facts(&journal(&process, dir.path())),
                done_journal,
                "{at}: the journal differs"
            );
        }
    }
    injected
}

/// The address of the second instruction of `name` in `process` (a place
/// inside the bytes its first redirect overwrites).
fn second_instruction(process: &SimulatedProcess, exe: &Path, name: &str) -> u64 {
    use object::{Object, ObjectSymbol};
    let bytes = std::fs::read(exe).unwrap();
    let file = object::File::parse(&*bytes).unwrap();
    let symbol = file.symbols().find(|s| s.name() == Ok(name)).unwrap();
    let exe_name = exe.to_str().unwrap();
    let bias = process
        .maps()
        .unwrap()
        .iter()
        .find(|m| m.path == exe_name && m.offset == 0)
        .unwrap()
        .start;
    let at = bias + symbol.address();
    let mut code = [0u8; 16];
    process.read(at, &mut code).unwrap();
    let first = iced_x86::Decoder::with_ip(64, &code, at, 0).decode();
    assert!(first.len() < 5, "{name}'s first instruction covers the whole jump");
    at + first.len() as u64
}

fn patch_with<'a>(
    new: &'a ObjectFile,
    base: &'a ObjectFile,
) -> impl Fn(&mut Target) -> relive_patch::Result<Vec<String>> + 'a {
    move |target| {
        let functions = functions_to_patch(Some(base), new)?;
        target.check_base = true;
        apply::patch(target, new, Some(base), &functions, Timing::default()).map(|r| r.warnings)
    }
}

#[test]
fn every_failed_step_of_patch_repatch_and_revert_leaves_the_process_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let exe_path = compile(dir.path(), "app", SOURCE, false);
    let running = Running::spawn(Command::new(&exe_path), exe_path.clone(), tempfile::tempdir().unwrap());
    running.wait_for_prefix("total ");
    let start = SimulatedProcess::copy_of(&LinuxProcess::open(running.pid()).unwrap()).unwrap();

    let first_text = SOURCE.replace(FIRST.0, FIRST.1);
    let second_text = SECOND
        .iter()
        .fold(first_text.clone(), |t, (from, to)| t.replace(from, to));
    assert_ne!(second_text, first_text);
    let base = ObjectFile::open(compile(dir.path(), "v0", SOURCE, true)).unwrap();
    let first = ObjectFile::open(compile(dir.path(), "v1", &first_text, true)).unwrap();
    let second = ObjectFile::open(compile(dir.path(), "v2", &second_text, true)).unwrap();

    // A first patch: pool, added function, literals, first redirect.
    let empty = journal_copy(dir.path());
    let injected = every_failure(&start, empty.path(), "the first patch", &patch_with(&first, &base));
    assert!(injected >= 5, "only {injected} failures were injected");

    // The same with two threads inside the bytes `scale`'s redirect
    // overwrites: they are moved into copies, and put back on failure.
    let busy = start.duplicate();
    let inside = second_instruction(&busy, &exe_path, "scale");
    let mut registers = busy.memory().threads[0].1;
    registers.rip = inside;
    registers.orig_rax = u64::MAX;
    busy.add_thread(registers);
    busy.add_thread(registers);
    let empty2 = journal_copy(dir.path());
    every_failure(
        &busy,
        empty2.path(),
        "the first patch, threads in the entry",
        &patch_with(&first, &base),
    );
    let moved = busy.duplicate();
    let state = journal_copy(dir.path());
    let mut target = Target::open_in(&moved, StateDir::at(state.path()).unwrap()).unwrap();
    let functions = functions_to_patch(Some(&base), &first).unwrap();
    let report = apply::patch(&mut target, &first, Some(&base), &functions, Timing::default()).unwrap();
    assert_eq!(report.threads_moved, 2, "the threads in the entry were moved");

    // A re-patch of `scale` and a first patch of `offset`, over it.
    let patched = start.duplicate();
    let seed = journal_copy(empty.path());
    patch_with(&first, &base)(&mut Target::open_in(&patched, StateDir::at(seed.path()).unwrap()).unwrap()).unwrap();
    every_failure(&patched, seed.path(), "the second patch", &patch_with(&second, &first));

    // Reverts: the last patch, one function, and everything.
    let twice = patched.duplicate();
    let seed2 = journal_copy(seed.path());
    patch_with(&second, &first)(&mut Target::open_in(&twice, StateDir::at(seed2.path()).unwrap()).unwrap()).unwrap();
    every_failure(&twice, seed2.path(), "revert --last", &|t| {
        apply::revert_last(t).map(|r| r.warnings)
    });
    every_failure(&twice, seed2.path(), "revert scale", &|t| {
        apply::revert(t, Some(&["scale".to_string()])).map(|r| r.warnings)
    });
    every_failure(&twice, seed2.path(), "revert --all", &|t| {
        apply::revert(t, None).map(|r| r.warnings)
    });
}
