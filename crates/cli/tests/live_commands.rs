//! `relive ps`, `sym`, `threads` (and `peek`) against real running programs:
//! gcc-built PIE and non-PIE programs, and the APE fixtures `ent.com`
//! (through the APE loader) and `ent.elf`.

use std::path::Path;
use std::process::Command;

use relive_testkit::{hex_addr, Target, THREADS_PROGRAM};
use serde_json::Value;
mod common;
use common::{file_bytes, hex, json, relive};

const ADDRESSES: &str = r#"
#include <stdio.h>
#include <unistd.h>
int global_counter = 3;
static int hidden = 1;
__attribute__((noinline, noipa)) int f(void) { return global_counter + hidden; }
int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("%p %p %p\n", (void *)f, (void *)&global_counter, (void *)&hidden);
    for (;;) pause();
}
"#;

/// The bytes of `file` at virtual address `va`, through the independent
/// Python reader's program headers (x86-64).
fn file_bytes_at(file: &Path, va: u64, len: usize) -> Vec<u8> {
    let reference = reference(file);
    let elf = reference["elf"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["machine"] == "x86_64")
        .unwrap();
    let seg = elf["segments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| {
            let (v, n) = (s["vaddr"].as_u64().unwrap(), s["filesz"].as_u64().unwrap());
            s["type"] == "LOAD" && v <= va && va < v + n
        })
        .expect("address in a load segment");
    let offset = (va - seg["vaddr"].as_u64().unwrap() + seg["offset"].as_u64().unwrap()) as usize;
    std::fs::read(file).unwrap()[offset..offset + len].to_vec()
}

fn reference(file: &Path) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../image/tests/support/ape_reference.py");
    let out = Command::new("python3").arg(script).arg(file).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn sym_addrs(pid: &str, name: &str) -> Vec<u64> {
    json(&["sym", pid, name, "--json"])
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["addr"].as_u64().unwrap())
        .collect()
}

/// `relive sym` gives the addresses the program prints for a function, a
/// global and a file-scope static, for PIE (load bias applied) and non-PIE;
/// `peek` at the function gives the file's bytes.
fn symbols_of_a_gcc_program(flags: &[&str]) {
    let target = Target::start_c(ADDRESSES, flags);
    let printed: Vec<u64> = target.next_line().split(' ').map(hex_addr).collect();
    let pid = target.pid_arg();
    let found = json(&["sym", &pid, "f", "global_counter", "hidden", "--json"]);
    let found = found.as_array().unwrap();
    assert_eq!(found.len(), 3, "{found:?}");
    for (s, want) in found.iter().zip(&printed) {
        assert_eq!(s["addr"].as_u64(), Some(*want), "{flags:?} {s}");
        assert_eq!(s["module"], target.exe.to_str().unwrap());
    }
    assert_eq!(found[2]["file"], "target.c", "the static keeps its source file");
    assert_eq!(found[0]["file"], Value::Null, "globals have no file");

    let ps = json(&["ps", &pid, "--json"]);
    assert_eq!(ps["image"]["path"], target.exe.to_str().unwrap());
    assert_eq!(ps["image"]["identity"]["verified"], true);
    let bias = ps["image"]["load_bias"].as_u64().unwrap();
    assert_eq!(bias == 0, flags.contains(&"-no-pie"), "bias {bias:#x}");
    assert!(ps["modules"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["path"].as_str().unwrap().contains("libc.so")));

    let peeked = json(&["peek", &pid, &format!("{:#x}", printed[0]), "12", "--json"]);
    assert_eq!(peeked["bytes"], hex(&file_bytes(&target.exe, "f", 12)));
}

#[test]
fn sym_and_peek_in_a_pie_program() {
    symbols_of_a_gcc_program(&["-O0", "-pie", "-fPIE"]);
}

#[test]
fn sym_and_peek_in_a_non_pie_program() {
    symbols_of_a_gcc_program(&["-O2", "-no-pie", "-fno-pie"]);
}

/// The APE fixtures, running and blocked reading a pipe: `ps` finds the APE
/// file as the program (even through the loader), with load bias 0; `sym
/// main` is the `.symtab.amd64` address (read by the independent reader);
/// `peek` there is the file's bytes; the program then runs to completion.
fn ape_program(name: &str, format: &str) {
    let mut target = Target::start_ape(name);
    let pid = target.pid_arg();
    let ps = json(&["ps", &pid, "--json"]);
    assert_eq!(ps["image"]["path"], target.exe.to_str().unwrap());
    assert_eq!(ps["image"]["format"], format);
    assert_eq!(ps["image"]["load_bias"], 0);
    assert_eq!(ps["image"]["base"], 0x400000);
    assert_eq!(ps["image"]["identity"]["verified"], true, "{}", ps["image"]);
    assert_eq!(ps["symbols"]["source"], "zip:.symtab.amd64");
    assert_eq!(ps["threads"], 1);
    if name.ends_with(".com") {
        assert!(ps["exe"].as_str().unwrap().ends_with("/.ape-1.10"), "{}", ps["exe"]);
    }

    let reference = reference(&target.exe);
    let main = reference["symtabs"][".symtab.amd64"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s[0] == "main")
        .unwrap()[1]
        .as_u64()
        .unwrap();
    assert_eq!(sym_addrs(&pid, "main"), vec![main]);
    let peeked = json(&["peek", &pid, &main.to_string(), "32", "--json"]);
    assert_eq!(peeked["bytes"], hex(&file_bytes_at(&target.exe, main, 32)));

    let threads = json(&["threads", &pid, "--json"]);
    assert_eq!(threads.as_array().unwrap().len(), 1);
    assert_eq!(threads[0]["state"], "sleeping", "blocked reading its input");

    target.stdin().write_all(b"hello, relive\n").unwrap();
    target.close_stdin();
    let out = target.rest();
    assert!(out.iter().any(|l| l.starts_with("Entropy =")), "{out:?}");
}

#[test]
fn ape_through_its_loader() {
    ape_program("ent.com", "ape");
}

#[test]
fn assimilated_ape() {
    ape_program("ent.elf", "ape-assimilated");
}

/// An APE whose file was modified after it started (it has no build-id):
/// `sym` refuses with exit 5 and says why; `ps` reports it unverified.
#[test]
fn a_modified_program_is_not_trusted() {
    let target = Target::start_ape("ent.com");
    let pid = target.pid_arg();
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(60);
    std::fs::File::options()
        .write(true)
        .open(&target.exe)
        .unwrap()
        .set_modified(later)
        .unwrap();
    let out = relive(&["sym", &pid, "main"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{stderr}");
    assert!(
        stderr.contains("ent.com") && stderr.contains("after the process started"),
        "{stderr}"
    );
    let ps = json(&["ps", &pid, "--json"]);
    assert_eq!(ps["image"]["identity"]["verified"], false);
}

#[test]
fn unknown_symbols_and_gone_processes_exit_3() {
    let target = Target::start_c(ADDRESSES, &["-O0"]);
    target.next_line();
    let out = relive(&["sym", &target.pid_arg(), "no_such_symbol_anywhere"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no symbol named no_such_symbol_anywhere"));
    let pid = target.pid_arg();
    drop(target);
    for cmd in ["ps", "threads"] {
        let out = relive(&[cmd, &pid]);
        assert_eq!(out.status.code(), Some(3), "{cmd}");
    }
}

/// `relive threads` on 500 threads lists them all with a PC and symbol, and
/// stopping them to do so disturbs none of their blocked system calls.
#[test]
fn threads_of_a_500_thread_program() {
    let dir = tempfile::tempdir().unwrap();
    let exe = relive_testkit::compile(dir.path(), "threads", THREADS_PROGRAM, &["-O1", "-pthread"]);
    let mut cmd = Command::new(&exe);
    cmd.arg("500");
    let mut target = Target::spawn(cmd, exe, dir);
    target.wait_for_prefix("ready ");
    let threads = json(&["threads", &target.pid_arg(), "--json"]);
    let threads = threads.as_array().unwrap();
    assert_eq!(threads.len(), 501);
    assert!(threads.iter().all(|t| t["pc"].as_u64().unwrap() != 0));
    let in_read = threads
        .iter()
        .filter(|t| t["symbol"].as_str().unwrap().starts_with("read"))
        .count();
    let in_sleep = threads
        .iter()
        .filter(|t| t["symbol"].as_str().unwrap().contains("nanosleep"))
        .count();
    assert!(in_read >= 200 && in_sleep >= 200, "read {in_read}, sleep {in_sleep}");
    writeln!(target.stdin(), "go").unwrap();
    assert_eq!(
        target.wait_for_prefix("readers "),
        "250/250 sleepers 250/250 sleep_errors 0 read_errors 0"
    );
}
