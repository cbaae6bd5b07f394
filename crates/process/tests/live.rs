//! The process layer against real running programs: stopping and resuming
//! many threads, remote system calls and allocation, symbols with load
//! bias, identity, and processes that go away.

use relive_process::alloc::{self, Placement, REL32_REACH};
use relive_process::modules::{self, ProcessModules};
use relive_process::symbols::LiveSymbols;
use relive_process::{identity, Process, ProcessError, Protection, Stopped, ThreadState};
use relive_testkit::{hex_addr, Target, THREADS_PROGRAM, TICK_PROGRAM};

fn open(target: &Target) -> Box<dyn Process> {
    relive_process::open(target.pid()).unwrap()
}

fn threads_target(n: usize) -> Target {
    let dir = tempfile::tempdir().unwrap();
    let exe = relive_testkit::compile(dir.path(), "threads", THREADS_PROGRAM, &["-O1", "-pthread"]);
    let mut cmd = std::process::Command::new(&exe);
    cmd.arg(n.to_string());
    let target = Target::spawn(cmd, exe, dir);
    assert_eq!(target.wait_for_prefix("ready "), n.to_string());
    target
}

/// 500 threads, half blocked in `read` on a pipe and half in `nanosleep`,
/// are all stopped (and seen stopped), resumed, stopped and resumed again;
/// afterwards every blocked call completes normally: no EINTR, no lost byte.
#[test]
fn five_hundred_threads_stop_and_resume_with_their_syscalls_intact() {
    let mut target = threads_target(500);
    let process = open(&target);
    for round in 0..2 {
        let stopped = process.stop().unwrap();
        let tids = stopped.thread_ids();
        assert_eq!(tids.len(), 501, "round {round}: main thread + 500 workers");
        let states = process.threads().unwrap();
        assert!(
            states.iter().all(|t| t.state == ThreadState::TracingStop),
            "round {round}: every thread is stopped: {:?}",
            states.iter().find(|t| t.state != ThreadState::TracingStop)
        );
        for &tid in &tids {
            assert_ne!(stopped.registers(tid).unwrap().pc(), 0);
        }
        stopped.resume().unwrap();
    }
    assert!(process
        .threads()
        .unwrap()
        .iter()
        .all(|t| t.state != ThreadState::TracingStop));
    writeln!(target.stdin(), "go").unwrap();
    assert_eq!(
        target.wait_for_prefix("readers "),
        "250/250 sleepers 250/250 sleep_errors 0 read_errors 0"
    );
}

/// Registers written while stopped are what the thread runs with: moving
/// a thread's PC is seen, and restoring it resumes the program unharmed.
#[test]
fn registers_round_trip() {
    let target = Target::start_c(TICK_PROGRAM, &["-O0"]);
    target.next_tick();
    let process = open(&target);
    let mut stopped = process.stop().unwrap();
    let tid = stopped.thread_ids()[0];
    let saved = stopped.registers(tid).unwrap();
    let mut changed = saved;
    changed.r12 ^= 0x5a5a;
    stopped.set_registers(tid, &changed).unwrap();
    assert_eq!(stopped.registers(tid).unwrap().r12, saved.r12 ^ 0x5a5a);
    stopped.set_registers(tid, &saved).unwrap();
    assert_eq!(stopped.registers(tid).unwrap(), saved);
    assert!(matches!(
        stopped.registers(1),
        Err(ProcessError::NoSuchThread { tid: 1, .. })
    ));
    stopped.resume().unwrap();
    let n = target.next_tick();
    assert!(target.next_tick() > n, "still counting after the stop");
}

fn main_image(process: &dyn Process) -> ProcessModules {
    modules::discover(process).unwrap()
}

/// A remote `mmap` near the image lands within ±2 GiB of all of it (and
/// below 4 GiB when asked, for non-PIC code), has the protections asked
/// for, can be written through /proc/PID/mem and read back, and is gone
/// after the remote `munmap`. The program keeps running throughout.
fn remote_allocation(flags: &[&str], below_4g: bool) {
    let target = Target::start_c(TICK_PROGRAM, flags);
    target.next_tick();
    let process = open(&target);
    let found = main_image(process.as_ref());
    let (base, end) = (found.main.module.base, found.main.module.end);
    let mut placement = Placement::near_range(base, end);
    if below_4g {
        placement = placement.below(1 << 32);
    }
    let maps = process.maps().unwrap();
    let mut stopped = process.stop().unwrap();
    let a = alloc::allocate(
        stopped.as_mut(),
        process.pid(),
        &maps,
        10_000,
        Protection::READ_EXEC,
        &placement,
    )
    .unwrap();
    assert_eq!(a.len, 12_288, "rounded up to pages");
    assert!(a.addr.abs_diff(base) < REL32_REACH && (a.addr + a.len).abs_diff(end) < REL32_REACH);
    if below_4g {
        assert!(a.addr + a.len <= 1 << 32);
    }
    let mapping = process
        .maps()
        .unwrap()
        .into_iter()
        .find(|m| m.contains(a.addr))
        .expect("the new mapping is in /proc/PID/maps");
    // (The kernel may merge it with an identical neighbour.)
    assert!(mapping.end >= a.addr + a.len && mapping.perms == "r-xp", "{mapping:?}");
    process.write(a.addr + 100, b"\xcc\xc3relive").unwrap();
    let mut back = [0u8; 8];
    process.read(a.addr + 100, &mut back).unwrap();
    assert_eq!(&back, b"\xcc\xc3relive");
    // Scattered reads in one call, a part on a page no one may read
    // (PROT_NONE) among them: each part as `read` gives it.
    let mut image = [0u8; 4];
    process.read(base, &mut image).unwrap();
    for protection in [
        Protection::READ_EXEC,
        Protection {
            read: false,
            write: false,
            exec: false,
        },
    ] {
        stopped.protect(a.addr, 4096, protection).unwrap();
        let (mut first, mut second, mut third) = ([0u8; 8], [0u8; 4], [0u8; 2]);
        let mut parts: Vec<(u64, &mut [u8])> = vec![
            (a.addr + 100, &mut first),
            (base, &mut second),
            (a.addr + 101, &mut third),
        ];
        process.read_many(&mut parts).unwrap();
        assert_eq!(
            (&first, second, &third),
            (b"\xcc\xc3relive", image, b"\xc3r"),
            "{protection:?}"
        );
    }
    let mut outside: Vec<(u64, &mut [u8])> = vec![(base, &mut image), (8, &mut back)];
    assert!(matches!(
        process.read_many(&mut outside),
        Err(ProcessError::NotMapped { addr: 8, .. })
    ));
    stopped.protect(a.addr, a.len, Protection::READ).unwrap();
    assert!(process
        .maps()
        .unwrap()
        .iter()
        .any(|m| m.contains(a.addr) && m.perms == "r--p"));
    stopped.unmap(a.addr, a.len).unwrap();
    assert!(!process.maps().unwrap().iter().any(|m| m.contains(a.addr)));
    stopped.resume().unwrap();
    let n = target.next_tick();
    assert!(target.next_tick() > n, "still counting after the remote calls");
}

#[test]
fn remote_mmap_near_a_pie_image() {
    remote_allocation(&["-O0", "-pie", "-fPIE"], false);
}

#[test]
fn remote_mmap_below_4g_for_a_non_pie_image() {
    remote_allocation(&["-O2", "-no-pie", "-fno-pie"], true);
}

/// `ent.com` through the APE loader, blocked in `read` on its standard
/// input: memory is allocated inside it (the blocked `read` is interrupted
/// for the remote call and restarted), then it reads its input and prints
/// the same statistics as an undisturbed run.
#[test]
fn remote_mmap_in_an_ape_blocked_in_read() {
    let input = b"relive patches running programs\n".repeat(64);
    let expected = {
        let mut quiet = Target::start_ape("ent.elf");
        quiet.stdin().write_all(&input).unwrap();
        quiet.close_stdin();
        quiet.rest()
    };
    assert!(expected.iter().any(|l| l.contains("Entropy")), "{expected:?}");

    let mut target = Target::start_ape("ent.com");
    let process = open(&target);
    let found = main_image(process.as_ref());
    assert_eq!(found.main.module.format, Some("ape"));
    assert_eq!(found.main.module.load_bias, 0);
    assert!(found.exe.ends_with(".ape-1.10"), "{}", found.exe);
    let maps = process.maps().unwrap();
    let mut stopped = process.stop().unwrap();
    let placement = Placement::near_range(found.main.module.base, found.main.module.end).below(1 << 31);
    let a = alloc::allocate(
        stopped.as_mut(),
        process.pid(),
        &maps,
        4096,
        Protection::READ_WRITE,
        &placement,
    )
    .unwrap();
    assert!(a.addr + a.len <= 1 << 31);
    stopped.resume().unwrap();
    target.stdin().write_all(&input).unwrap();
    target.close_stdin();
    assert_eq!(target.rest(), expected);
}

/// Symbols of a PIE and a non-PIE program, with the load bias applied,
/// are the addresses the program itself prints; a `static` that exists in
/// two source files is found twice, each with its file.
#[test]
fn live_symbols_are_the_addresses_the_program_uses() {
    const A: &str = r#"
#include <stdio.h>
#include <unistd.h>
int global_counter = 3;
static int hidden = 1;
int *b_hidden(void);
__attribute__((noinline)) int f(void) { return global_counter + hidden; }
int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("%p %p %p %p\n", (void *)f, (void *)&global_counter, (void *)&hidden, (void *)b_hidden());
    for (;;) pause();
}
"#;
    const B: &str = "static int hidden = 2;\nint *b_hidden(void) { return &hidden; }\n";
    for flags in [["-O0", "-pie", "-fPIE"], ["-O2", "-no-pie", "-fno-pie"]] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.c"), A).unwrap();
        std::fs::write(dir.path().join("b.c"), B).unwrap();
        let exe = dir.path().join("ab");
        let ok = std::process::Command::new("gcc")
            .args(flags)
            .arg("-o")
            .arg(&exe)
            .args(["a.c", "b.c"])
            .current_dir(dir.path())
            .status()
            .unwrap();
        assert!(ok.success());
        let target = Target::spawn(std::process::Command::new(&exe), exe.clone(), dir);
        let printed: Vec<u64> = target.next_line().split(' ').map(hex_addr).collect();
        let process = open(&target);
        let found = main_image(process.as_ref());
        assert_eq!(found.main.module.path, exe.to_str().unwrap());
        assert!(found.libraries.iter().any(|m| m.module.path.contains("libc.so")));
        if flags[1] == "-no-pie" {
            assert_eq!(found.main.module.load_bias, 0);
        } else {
            assert_ne!(found.main.module.load_bias, 0);
        }
        let verified = identity::verify(process.as_ref(), &found.main).unwrap();
        assert_eq!(verified.method, "build-id");
        let symbols = LiveSymbols::load(&found);
        let one = |name: &str| {
            let hits = symbols.lookup(name);
            assert_eq!(hits.len(), 1, "{name}: {hits:?}");
            hits[0].addr
        };
        assert_eq!(one("f"), printed[0], "{flags:?}");
        assert_eq!(one("global_counter"), printed[1]);
        let mut statics: Vec<(Option<String>, u64)> = symbols
            .lookup("hidden")
            .into_iter()
            .map(|s| (s.file.map(|f| f.to_string()), s.addr))
            .collect();
        statics.sort();
        assert_eq!(
            statics,
            vec![(Some("a.c".into()), printed[2]), (Some("b.c".into()), printed[3])],
            "{flags:?}"
        );
        assert_eq!(symbols.describe(printed[0] + 2), "f+0x2");
        let printf = symbols.lookup("printf");
        assert!(printf.iter().any(|s| s.module.contains("libc.so")), "{printf:?}");
    }
}

/// A program rebuilt at the same path after it started (the old file is
/// deleted, the path names a build whose `tick` is elsewhere) is read from
/// its running image, `/proc/PID/exe`: its symbols are the addresses the
/// process uses, and identity says that the file on disk is not what runs.
#[test]
fn a_rebuilt_program_is_read_from_its_running_image() {
    let target = Target::start_c(TICK_PROGRAM, &["-O0"]);
    let running_tick = hex_addr(&target.wait_for_prefix("tick_fn "));
    let process = open(&target);
    let shifted = TICK_PROGRAM.replace(
        "__attribute__((noinline, noipa)) long tick",
        "long pad(long x) { return x * x * x + 7 * x - 3; }\n__attribute__((noinline, noipa)) long tick",
    );
    relive_testkit::compile(target.dir.path(), "target", &shifted, &["-O0"]);
    let found = main_image(process.as_ref());
    assert_eq!(found.main.module.path, target.exe.to_str().unwrap());
    assert!(
        found.main.module.deleted,
        "gcc replaced the file: the process maps a deleted one"
    );
    let exe_link = format!("/proc/{}/exe", target.pid());
    assert_eq!(
        found.main.module.source,
        modules::ImageSource::Running { file: exe_link.clone() }
    );
    let verified = identity::verify(process.as_ref(), &found.main).unwrap();
    assert_eq!(verified.method, "running-image");
    let warning = verified.warning.unwrap();
    assert!(
        warning.contains(target.exe.to_str().unwrap()) && warning.contains(&exe_link),
        "{warning}"
    );
    assert!(warning.contains("rebuilt or replaced"), "{warning}");
    let symbols = LiveSymbols::load(&found);
    assert_eq!(symbols.lookup("tick")[0].addr, running_tick);
    // The file on disk would have given another address.
    let on_disk = relive_image::Image::open(&target.exe).unwrap();
    let disk_tick = on_disk.symbols(None).unwrap().by_name("tick")[0].addr + found.main.module.load_bias;
    assert_ne!(disk_tick, running_tick);
}

/// The kernel's vDSO is a module read from the process's memory: its
/// functions have addresses inside the `[vdso]` mapping, identity is the
/// memory itself, and glibc's `time` IFUNC, resolved in relive, names the
/// vDSO function the target's copy leads to.
#[test]
fn the_vdso_is_read_from_memory() {
    let target = Target::start_c(TICK_PROGRAM, &["-O0"]);
    target.next_tick();
    let process = open(&target);
    let found = main_image(process.as_ref());
    let vdso = found
        .libraries
        .iter()
        .find(|m| m.module.path == relive_process::vdso::PATH)
        .expect("a [vdso] module");
    assert_eq!(vdso.module.source, modules::ImageSource::Memory);
    assert_eq!(identity::verify(process.as_ref(), vdso).unwrap().method, "memory");
    let mapping = process
        .maps()
        .unwrap()
        .into_iter()
        .find(|m| m.path == "[vdso]")
        .unwrap();
    let symbols = LiveSymbols::load(&found);
    let clock = symbols.lookup("__vdso_clock_gettime");
    assert_eq!(clock.len(), 1, "{clock:?}");
    assert!(mapping.contains(clock[0].addr), "{clock:?} in {mapping:?}");
    let libc = found
        .libraries
        .iter()
        .find(|m| m.module.path.contains("libc.so"))
        .unwrap();
    match relive_process::ifunc::implementation(&libc.module.path, libc.module.inode, "time") {
        Some(relive_process::ifunc::Implementation::Vdso(name)) => {
            let hit = symbols.lookup(&name);
            assert!(hit.iter().any(|s| mapping.contains(s.addr)), "{name}: {hit:?}");
        }
        other => panic!("glibc's time resolves into the vDSO, got {other:?}"),
    }
}

/// A process that exits between being opened and being operated on gives
/// the "process gone" error for each operation, whether it is already
/// reaped or still a zombie.
#[test]
fn a_process_that_exits_mid_operation_is_gone() {
    for reap in [true, false] {
        let mut target = Target::start_c(TICK_PROGRAM, &["-O0"]);
        target.next_tick();
        let process = open(&target);
        target.child.kill().unwrap();
        if reap {
            target.child.wait().unwrap();
        } else {
            // Wait for the kernel to tear the address space down without
            // reaping: the process stays a zombie.
            let stat = format!("/proc/{}/stat", target.pid());
            while !std::fs::read_to_string(&stat).unwrap().contains(") Z ") {
                std::thread::yield_now();
            }
        }
        let gone = |r: Result<(), ProcessError>| match r {
            Err(ProcessError::Gone { .. }) => {}
            other => panic!("reap={reap}: expected Gone, got {other:?}"),
        };
        gone(process.maps().map(drop));
        gone(process.read(0x400000, &mut [0u8; 4]));
        gone(process.stop().map(drop));
        gone(process.threads().map(drop));
    }
}

/// When no `syscall` instruction is borrowed from the target's code, one
/// is written over the stopped thread's current instruction for the call:
/// the allocation works and those bytes are exactly restored.
#[test]
fn a_temporarily_written_syscall_instruction_is_restored() {
    use relive_process::linux::{LinuxProcess, SyscallSite};
    let target = Target::start_c(TICK_PROGRAM, &["-O0"]);
    target.next_tick();
    let process = LinuxProcess::open(target.pid()).unwrap();
    let maps = process.maps().unwrap();
    let mut stopped = process.stop_all().unwrap();
    stopped.use_syscall_site(SyscallSite::AtPc);
    let tid = stopped.thread_ids()[0];
    let pc = stopped.registers(tid).unwrap().pc();
    let mut before = [0u8; 16];
    process.read(pc, &mut before).unwrap();
    let a = alloc::allocate(
        &mut stopped,
        process.pid(),
        &maps,
        4096,
        Protection::READ_WRITE,
        &Placement::near(pc),
    )
    .unwrap();
    let mut after = [0u8; 16];
    process.read(pc, &mut after).unwrap();
    assert_eq!(before, after, "the instruction at the PC is back");
    assert_eq!(stopped.registers(tid).unwrap().pc(), pc);
    // `contains`: the kernel may merge it with an adjacent anonymous mapping.
    assert!(process.maps().unwrap().iter().any(|m| m.contains(a.addr)));
    drop(stopped);
    let n = target.next_tick();
    assert!(target.next_tick() > n);
}

/// Issue 19: the target SIGKILLed while relive stops its threads or holds
/// them stopped. Waiting on the thread-group leader then blocked forever
/// (the kernel reports the leader's death only once the other threads,
/// traced by relive, are reaped) and every thread stayed a traced zombie.
/// Now each attempt ends, with "gone" or a stop that resumes, and nothing
/// is left behind.
#[test]
fn a_target_killed_while_its_threads_are_stopped_ends_cleanly() {
    for round in 0..24u64 {
        let threads = [1usize, 8, 32][round as usize % 3];
        let mut target = threads_target(threads);
        let pid = target.pid();
        let (tx, rx) = std::sync::mpsc::channel();
        let killer = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_micros(round * 37 % 400));
            nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            )
            .unwrap();
        });
        // ptrace binds tracees to the thread that stopped them: all of it
        // runs on one thread, watched from here.
        std::thread::spawn(move || {
            let stop_and_call = || -> Result<String, ProcessError> {
                let process = relive_process::open(pid)?;
                let mut stopped = process.stop()?;
                let call = stopped.protect(0x10000, 4096, Protection::READ);
                Ok(format!("{call:?} / {:?}", stopped.resume()))
            };
            let outcome = stop_and_call().unwrap_or_else(|e| format!("{e:?}"));
            let _ = tx.send(outcome);
        });
        let outcome = rx
            .recv_timeout(std::time::Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("round {round}: relive hung on a target killed while stopped"));
        killer.join().unwrap();
        // The test is the target's parent as well as its tracer: the
        // tracer's wait may have collected the exit status already.
        match target.child.wait() {
            Ok(status) => assert_eq!(
                std::os::unix::process::ExitStatusExt::signal(&status),
                Some(9),
                "{outcome}"
            ),
            Err(e) => assert_eq!(e.raw_os_error(), Some(10), "{outcome}: {e}"),
        }
        assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists(), "{outcome}");
    }
}

/// Memory is mapped with one thread stopped (the main thread, blocked in
/// `read` on its standard input) while the other 8 run on: the mapping is
/// every thread's, only one thread was ever stopped, and the main thread's
/// interrupted `read`, restarted, still gets its line (the workers' blocked
/// calls complete normally too).
#[test]
fn one_stopped_thread_maps_memory_for_all() {
    let mut target = threads_target(8);
    let process = open(&target);
    let found = main_image(process.as_ref());
    let maps = process.maps().unwrap();
    let mut stopped = process.stop_one().unwrap();
    assert_eq!(stopped.thread_ids(), vec![process.pid()]);
    let states = process.threads().unwrap();
    let stopped_threads = states.iter().filter(|t| t.state == ThreadState::TracingStop).count();
    assert_eq!(stopped_threads, 1, "{states:?}");
    let placement = Placement::near_range(found.main.module.base, found.main.module.end);
    let a = alloc::allocate(
        stopped.as_mut(),
        process.pid(),
        &maps,
        8192,
        Protection::READ_WRITE,
        &placement,
    )
    .unwrap();
    stopped.resume().unwrap();
    process.write(a.addr, b"mapped for every thread").unwrap();
    assert!(process
        .threads()
        .unwrap()
        .iter()
        .all(|t| t.state != ThreadState::TracingStop));
    writeln!(target.stdin(), "go").unwrap();
    assert_eq!(
        target.wait_for_prefix("readers "),
        "4/4 sleepers 4/4 sleep_errors 0 read_errors 0"
    );
}

/// A remote system call in a thread that runs a signal handler on a small
/// alternate stack in the program's data writes nothing below that stack:
/// the data there (a guard array right below it) stays intact. (The
/// kill-safe way back, a signal frame below the stack pointer, overwrote
/// 1,230 bytes of it: it is only used on the main stack.)
#[test]
fn a_thread_on_an_alternate_signal_stack_keeps_the_data_below_it() {
    const PROGRAM: &str = r#"
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
static struct { char guard[16384]; char alt[4096]; } mem;
/* Shallow: write(2) and nanosleep(2) only, so the handler itself stays
   well inside its small stack. */
static void handler(int sig) {
    (void)sig;
    for (;;) {
        int broken = 0;
        for (unsigned i = 0; i < sizeof mem.guard; i++) broken += mem.guard[i] != 0;
        char line[32] = "guard ";
        int n = 6;
        char digits[12];
        int d = 0;
        do { digits[d++] = (char)('0' + broken % 10); broken /= 10; } while (broken);
        while (d) line[n++] = digits[--d];
        line[n++] = '\n';
        write(1, line, n);
        struct timespec t = { 0, 2000000 };
        nanosleep(&t, 0);
    }
}
int main(void) {
    stack_t ss = { .ss_sp = mem.alt, .ss_size = sizeof mem.alt, .ss_flags = 0 };
    if (sigaltstack(&ss, 0) != 0) { perror("sigaltstack"); return 1; }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sa.sa_flags = SA_ONSTACK;
    sigaction(SIGUSR1, &sa, 0);
    raise(SIGUSR1);
    return 0;
}
"#;
    // Bound at load (-z now): a lazy binding on the small stack saves the
    // whole XSAVE state there and overflows it by itself.
    let target = Target::start_c(PROGRAM, &["-O1", "-Wl,-z,now"]);
    assert_eq!(target.wait_for_prefix("guard "), "0");
    let process = open(&target);
    allocate_with_one_thread_stopped(process.as_ref(), 5);
    for _ in 0..5 {
        assert_eq!(
            target.wait_for_prefix("guard "),
            "0",
            "the data below the alternate stack changed"
        );
    }
}

/// Maps a page near the program `rounds` times, each with one thread (the
/// main thread) stopped for the remote system calls.
fn allocate_with_one_thread_stopped(process: &dyn Process, rounds: usize) {
    let found = main_image(process);
    let placement = Placement::near_range(found.main.module.base, found.main.module.end);
    for round in 0..rounds {
        let maps = process.maps().unwrap();
        let mut stopped = process.stop_one().unwrap();
        let got = alloc::allocate(
            stopped.as_mut(),
            process.pid(),
            &maps,
            4096,
            Protection::READ_WRITE,
            &placement,
        );
        stopped.resume().unwrap();
        got.unwrap_or_else(|e| panic!("round {round}: {e}"));
    }
}

/// Signals sent to the program while relive stops it (every thread, or
/// one thread for remote system calls) all arrive, and real-time signals
/// of one number arrive in the order they were sent (each carries its
/// sequence number). A SIGUSR1 is sent only once the last one arrived, so
/// the kernel's merging of a pending standard signal cannot hide a loss.
/// Earlier, a flood of real-time signals to the thread running remote
/// system calls lost them (nix's wait status has no value for SIGRTMIN:
/// the wait failed with EINVAL and the signal was dropped). Found by a
/// trial: a SIGUSR1 lost on a first patch, a queued SIGRTMIN lost on a
/// revert, and SIGRTMIN out of order (signals that raced a stop
/// were handed back by the detach, which the kernel ignores outside a
/// signal-delivery stop, or queued again behind later ones).
#[test]
fn signals_sent_while_stopped_all_arrive_in_order() {
    const PROGRAM: &str = r#"
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>
static volatile long got_rt, got_usr1, out_of_order, expected = 1;
static long sent_rt, sent_usr1;
static pthread_t main_thread;
static void on_rt(int sig, siginfo_t *info, void *context) {
    (void)sig; (void)context;
    if (info->si_value.sival_int != expected) out_of_order++;
    expected = info->si_value.sival_int + 1;
    got_rt++;
}
static void on_usr1(int sig) { (void)sig; got_usr1++; }
static void *sender(void *arg) {
    (void)arg;
    for (;;) {
        union sigval v = { .sival_int = (int)(sent_rt + 1) };
        if (pthread_sigqueue(main_thread, SIGRTMIN, v) == 0) __atomic_add_fetch(&sent_rt, 1, __ATOMIC_SEQ_CST);
        if (got_usr1 == __atomic_load_n(&sent_usr1, __ATOMIC_SEQ_CST) && pthread_kill(main_thread, SIGUSR1) == 0)
            __atomic_add_fetch(&sent_usr1, 1, __ATOMIC_SEQ_CST);
        usleep(200);
    }
    return 0;
}
int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    main_thread = pthread_self();
    struct sigaction sa = { 0 };
    sa.sa_sigaction = on_rt;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigaction(SIGRTMIN, &sa, 0);
    signal(SIGUSR1, on_usr1);
    pthread_t t;
    pthread_create(&t, 0, sender, 0);
    for (;;) {
        usleep(20000);
        sigset_t both, old;
        sigemptyset(&both);
        sigaddset(&both, SIGRTMIN);
        sigaddset(&both, SIGUSR1);
        pthread_sigmask(SIG_BLOCK, &both, &old);
        long rt = __atomic_load_n(&sent_rt, __ATOMIC_SEQ_CST), usr1 = __atomic_load_n(&sent_usr1, __ATOMIC_SEQ_CST);
        pthread_sigmask(SIG_SETMASK, &old, 0);
        usleep(5000);
        printf("state %ld %ld %ld\n", rt - got_rt > 0 ? rt - got_rt : 0, usr1 - got_usr1 > 0 ? usr1 - got_usr1 : 0, out_of_order);
    }
}
"#;
    let target = Target::start_c(PROGRAM, &["-O1", "-pthread"]);
    target.wait_for_prefix("state ");
    let process = open(&target);
    for _ in 0..10 {
        allocate_with_one_thread_stopped(process.as_ref(), 4);
        let stopped = process.stop().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(2));
        stopped.resume().unwrap();
    }
    std::thread::sleep(std::time::Duration::from_millis(100));
    let settled: Vec<String> = (0..4).map(|_| target.wait_for_prefix("state ")).collect();
    assert!(
        settled.iter().any(|l| l == "0 0 0"),
        "signals were lost or reordered (lost real-time, lost SIGUSR1, out of order): {settled:?}"
    );
}

/// A function called in the main thread while it sleeps in `nanosleep`
/// and `usleep` (`clock_nanosleep`): the sleep goes on afterwards for the
/// time it had left, as after a stop without a call. The call's way back ran `rt_sigreturn`, which ends the kernel's restart
/// of an interrupted sleep: it returned EINTR at once, so every patch that
/// handed the unwinder its table woke the program early (a user's trial on
/// lz4: its driver then ran its work loop while relive looked for it
/// asleep, and the debuggers' library was never loaded).
#[test]
fn a_remote_call_leaves_an_interrupted_sleep_asleep() {
    const SLEEPER: &str = r#"
#include <errno.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>
__attribute__((noinline, used)) double churn(double x) {
    volatile double v[8];
    for (int i = 0; i < 8; i++) v[i] = x * i + 0.5;
    return v[3] + v[7];
}
int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("%p\n", (void *)churn);
    for (int round = 0;; round++) {
        int r;
        if (round % 2 == 0) {
            struct timespec t = {0, 600000000};
            r = nanosleep(&t, NULL);
        } else {
            r = usleep(600000);
        }
        printf(r == 0 ? "slept\n" : "interrupted %d\n", errno);
    }
}
"#;
    let target = Target::start_c(SLEEPER, &["-O2"]);
    let churn = hex_addr(&target.next_line());
    let process = open(&target);
    for round in 0..2 {
        // Well inside the sleep of this round.
        std::thread::sleep(std::time::Duration::from_millis(150));
        let mut stopped = process.stop_one().unwrap();
        let outcome = stopped.call(churn, &[], std::time::Duration::from_secs(2)).unwrap();
        assert!(matches!(outcome, relive_process::CallOutcome::Returned), "{outcome:?}");
        stopped.resume().unwrap();
        assert_eq!(target.next_line(), "slept", "round {round}");
    }
}
