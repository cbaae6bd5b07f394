//! Start-up of `relive run` on a 20-file `-O2 -g` program, against the
//! serial compile of those files and `make -j2`, measured in the same run
//! (`cargo bench -p relive --bench startup`; prints its figures).
//!
//! relive: from spawning `relive run --json -- ./app` to its `watching`
//! event, so it includes reading the program's debug info, compiling every
//! file once (in parallel) and comparing each with the running code: the
//! time before an edit can be patched. Serial: `gcc -O2 -g -c` of each file
//! one after another. `make -j2`: a clean build of the same files (compile
//! and link). Each is the median of 5 runs.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

const FILES: usize = 20;
const FUNCTIONS: usize = 30;
const RUNS: usize = 5;

/// File `k`: `FUNCTIONS` functions with loops, a switch and a table, so
/// the optimiser has work.
fn unit(k: usize) -> String {
    let mut s = format!(
        "#include <stdio.h>\n#include <string.h>\nstatic const int table{k}[8] = {{1, 3, 5, 7, 11, 13, 17, 19}};\n"
    );
    for f in 0..FUNCTIONS {
        s.push_str(&format!(
            "__attribute__((noinline)) int f{k}_{f}(int x) {{\n    int t = 0;\n    for (int i = 0; i < x % 17; i++) {{\n        switch ((i + x) % 5) {{\n        case 0: t += table{k}[i & 7] * {f}; break;\n        case 1: t ^= i << 2; break;\n        case 2: t -= (int)strlen(\"u{k}f{f}\"); break;\n        case 3: t += x / (i + 1); break;\n        default: t = t * 3 + {k};\n        }}\n    }}\n    return t;\n}}\n"
        ));
    }
    s.push_str(&format!(
        "int unit{k}(int x) {{ return f{k}_0(x) + f{k}_{}(x); }}\n",
        FUNCTIONS - 1
    ));
    s
}

fn main_file() -> String {
    let mut s = String::from("#include <stdio.h>\n#include <unistd.h>\n");
    for k in 0..FILES {
        s.push_str(&format!("int unit{k}(int x);\n"));
    }
    s.push_str(
        "int main(void) {\n    setvbuf(stdout, NULL, _IOLBF, 0);\n    for (long n = 0;; n++) {\n        int t = 0;\n",
    );
    for k in 0..FILES {
        s.push_str(&format!("        t += unit{k}((int)n);\n"));
    }
    s.push_str("        printf(\"t %d\\n\", t);\n        usleep(100000);\n    }\n}\n");
    s
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn run(cmd: &mut Command) {
    let out = cmd.output().expect("running a command");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn serial_compile(dir: &Path) -> f64 {
    let t = Instant::now();
    for k in 0..=FILES {
        let name = if k == FILES {
            "main".to_string()
        } else {
            format!("u{k}")
        };
        run(Command::new("gcc")
            .args([
                "-O2",
                "-g",
                "-c",
                &format!("{name}.c"),
                "-o",
                &format!("/tmp/relive-bench-{name}.o"),
            ])
            .current_dir(dir));
    }
    t.elapsed().as_secs_f64()
}

fn make_j2(dir: &Path) -> f64 {
    run(Command::new("make").args(["-s", "clean"]).current_dir(dir));
    let t = Instant::now();
    run(Command::new("make").args(["-s", "-j2"]).current_dir(dir));
    t.elapsed().as_secs_f64()
}

fn relive_start(dir: &Path, relive: &Path) -> f64 {
    let t = Instant::now();
    let mut child = Command::new(relive)
        .args(["run", "--json", "--", "./app"])
        .current_dir(dir)
        .env("RELIVE_STATE_DIR", dir.join("state"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting relive");
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let mut elapsed = None;
    for line in stderr.lines().map_while(Result::ok) {
        if line.contains("\"watching\"") {
            elapsed = Some(t.elapsed().as_secs_f64());
            break;
        }
        assert!(
            !line.contains("\"baseline\""),
            "a baseline does not match the running code: {line}"
        );
    }
    let _ = child.kill();
    let _ = child.wait();
    let _ = Command::new("pkill")
        .args(["-f", &format!("{}/app", dir.display())])
        .status();
    elapsed.expect("relive never said it was watching")
}

fn main() {
    let relive = Path::new(env!("CARGO_BIN_EXE_relive"));
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut objects = Vec::new();
    for k in 0..FILES {
        std::fs::write(d.join(format!("u{k}.c")), unit(k)).unwrap();
        objects.push(format!("u{k}.o"));
    }
    std::fs::write(d.join("main.c"), main_file()).unwrap();
    objects.push("main.o".into());
    std::fs::write(
        d.join("Makefile"),
        format!(
            "CFLAGS = -O2 -g\napp: {objs}\n\tgcc -o $@ $^\nclean:\n\trm -f app *.o\n",
            objs = objects.join(" ")
        ),
    )
    .unwrap();
    let (mut serial, mut make, mut start) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..RUNS {
        make.push(make_j2(d));
        serial.push(serial_compile(d));
        start.push(relive_start(d, relive));
    }
    let (serial, make, start) = (median(serial), median(make), median(start));
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "relive start-up on {} files of -O2 -g code, {cores} cores, median of {RUNS}:",
        FILES + 1
    );
    println!("  serial gcc -c of every file   {:>8.1} ms", serial * 1000.0);
    println!(
        "  make -j2 (clean build)        {:>8.1} ms  ratio {:.2}",
        make * 1000.0,
        make / serial
    );
    println!(
        "  relive run until watching     {:>8.1} ms  ratio {:.2}",
        start * 1000.0,
        start / serial
    );
}
