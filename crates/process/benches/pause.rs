//! How long a target is paused: every thread stopped (ptrace seize +
//! interrupt, re-listed until stable) and resumed again with no work in
//! between, for 1, 100 and 1,000 threads; and the cost of one remote
//! `mmap` near the image in a stopped target, next to a remote `getpid`
//! (the bare cost of a remote system call) and a local `getpid`.
//!
//! Goals: under 100 µs for one thread, under 10 ms for 1,000.
//!
//! Baseline, measured in the same run: the bare kernel work for the same
//! threads (seize, interrupt, wait and detach each, from a tid list known
//! in advance, with no listing, checks or error handling). The ratio is
//! relive's own overhead.
//!
//! Run: `cargo bench -p relive-process --bench pause`. Criterion measures
//! each case; the summary prints the medians and ratios from the same run.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use criterion::Criterion;
use relive_process::alloc::{self, Placement};
use relive_process::linux::LinuxProcess;
use relive_process::{modules, Process, Protection, Stopped};
use relive_testkit::{compile, criterion_median_ns, Target, THREADS_PROGRAM, TICK_PROGRAM};

/// A target with `threads` threads in all.
fn start(threads: usize) -> Target {
    if threads == 1 {
        let target = Target::start_c(TICK_PROGRAM, &["-O1"]);
        target.next_tick();
        return target;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = compile(dir.path(), "threads", THREADS_PROGRAM, &["-O1", "-pthread"]);
    let mut cmd = Command::new(&exe);
    // Half block in read, half wake once a second: an idle server's threads.
    cmd.arg((threads - 1).to_string()).arg("1000");
    let target = Target::spawn(cmd, exe, dir);
    target.wait_for_prefix("ready ");
    target
}

/// The floor: one seize, interrupt, wait and detach per thread.
fn bare_pause(tids: &[u32]) {
    use nix::sys::{ptrace, wait};
    let pids: Vec<nix::unistd::Pid> = tids.iter().map(|&t| nix::unistd::Pid::from_raw(t as i32)).collect();
    for &p in &pids {
        ptrace::seize(p, ptrace::Options::empty()).expect("seize");
    }
    for &p in &pids {
        ptrace::interrupt(p).expect("interrupt");
    }
    for &p in &pids {
        wait::waitpid(p, Some(wait::WaitPidFlag::__WALL)).expect("wait");
    }
    for &p in &pids {
        ptrace::detach(p, None).expect("detach");
    }
}

fn main() {
    let out_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/criterion-pause");
    let mut c = Criterion::default()
        .output_directory(&out_dir)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50)
        .configure_from_args();

    let counts = [1usize, 100, 1000];
    for &n in &counts {
        let target = start(n);
        let process = LinuxProcess::open(target.pid()).expect("open");
        let tids = process.stop_all().expect("stop").thread_ids();
        assert_eq!(tids.len(), n);
        c.bench_function(&format!("bare/{n}"), |b| b.iter(|| bare_pause(&tids)));
        c.bench_function(&format!("pause/{n}"), |b| {
            b.iter(|| {
                let stopped = process.stop_all().expect("stop");
                Box::new(stopped).resume().expect("resume")
            })
        });
    }

    let target = start(1);
    let process = LinuxProcess::open(target.pid()).expect("open");
    let image = modules::discover(&process).expect("modules").main.module;
    let placement = Placement::near_range(image.base, image.end);
    let mut stopped = process.stop_all().expect("stop");
    c.bench_function("remote/mmap", |b| {
        b.iter_custom(|iters| {
            let mut spent = Duration::ZERO;
            for _ in 0..iters {
                let maps = process.maps().expect("maps");
                let t = Instant::now();
                let a = alloc::allocate(
                    &mut stopped,
                    process.pid(),
                    &maps,
                    4096,
                    Protection::READ_EXEC,
                    &placement,
                )
                .expect("allocate");
                spent += t.elapsed();
                stopped.unmap(a.addr, a.len).expect("unmap");
            }
            spent
        })
    });
    c.bench_function("remote/getpid", |b| {
        b.iter(|| stopped.syscall(39, [0; 6]).expect("getpid"))
    });
    drop(stopped);
    c.bench_function("local/getpid", |b| b.iter(nix::unistd::getpid));
    c.final_summary();

    let median = |id: &str| criterion_median_ns(&out_dir, id);
    println!("\nsummary (medians, same run):");
    for &n in &counts {
        match (median(&format!("pause_{n}")), median(&format!("bare_{n}"))) {
            (Some(ns), Some(bare)) => println!(
                "  pause, {n:>4} thread(s): {:>9.1} µs  ({:.2} µs per thread; bare ptrace floor {:.1} µs, ratio {:.2})",
                ns / 1e3,
                ns / 1e3 / n as f64,
                bare / 1e3,
                ns / bare
            ),
            _ => println!("  pause, {n:>4} thread(s): (no estimate: run without --test/filters)"),
        }
    }
    let (mmap, remote, local) = (median("remote_mmap"), median("remote_getpid"), median("local_getpid"));
    if let (Some(mmap), Some(remote), Some(local)) = (mmap, remote, local) {
        println!("  remote mmap near the image: {:>9.1} µs", mmap / 1e3);
        println!(
            "  remote getpid: {:.1} µs = {:.0}x a local getpid ({:.0} ns)",
            remote / 1e3,
            remote / local,
            local
        );
    }
    if let (Some(one), Some(thousand)) = (median("pause_1"), median("pause_1000")) {
        println!(
            "  goals: 1 thread under 100 µs: {}; 1,000 threads under 10 ms: {}",
            one < 100e3,
            thousand < 10e6
        );
    }
}
