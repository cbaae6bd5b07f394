//! `relive info`, `syms`, `addr` and `zip` run as a user runs them.

use std::path::{Path, PathBuf};

use serde_json::Value;

mod common;
use common::{json, relive, text};

fn fixture(name: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/fixtures/ape")
        .join(name);
    assert!(path.is_file(), "missing fixture {}", path.display());
    path
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn info_json_has_every_documented_field() {
    let pledge = fixture("pledge.com");
    let v = json(&["info", path_str(&pledge), "--json"]);
    assert_eq!(v["size"], 650126);
    assert_eq!(v["format"], "ape");
    assert_eq!(v["ape_magic"], "MZqFpD='");
    let elf = &v["elf"][0];
    for (key, want) in [
        ("header_offset", 909),
        ("e_machine", 62),
        ("entry", 0x404577),
        ("phoff", 0xb48),
        ("phnum", 6),
    ] {
        assert_eq!(elf[key], want, "elf[0].{key}");
    }
    assert_eq!(elf["machine"], "x86_64");
    let seg = &elf["segments"][0];
    assert_eq!(
        (seg["type"].as_str(), seg["flags"].as_str()),
        (Some("LOAD"), Some("r-x"))
    );
    for key in ["offset", "vaddr", "filesz", "memsz"] {
        assert!(seg[key].is_u64(), "segment {key} is an integer");
    }
    assert_eq!(v["elf"][1]["machine"], "aarch64");
    assert_eq!(v["macho"]["offset"], 0xc98);
    assert_eq!(v["macho"]["size"], 528);
    assert_eq!(v["macho"]["cputype"], 0x01000007);
    assert_eq!(v["macho"]["entry"], 0x404570);
    assert_eq!(v["macho"]["segments"][1]["name"], "__APE1");
    for key in ["vmaddr", "vmsize", "fileoff", "filesize"] {
        assert!(v["macho"]["segments"][1][key].is_u64());
    }
    assert_eq!(v["pe"]["offset"], 0x10c78);
    assert_eq!(v["pe"]["image_base"], 0x3f0000);
    assert_eq!(v["pe"]["machine"], 0x8664);
    assert!(v["pe"]["entry_rva"].is_u64());
    let sec = &v["pe"]["sections"][0];
    for key in ["virtual_address", "virtual_size", "raw_offset", "raw_size"] {
        assert!(sec[key].is_u64());
    }
    let zip = &v["zip"];
    assert_eq!(zip["zip64"], false);
    assert!(zip["eocd_offset"].is_u64() && zip["cd_offset"].is_u64());
    let entry = &zip["entries"][0];
    assert_eq!(entry["name"], ".symtab.amd64");
    assert_eq!(entry["local_header_offset"], 591298);
    assert_eq!(entry["method"], 8);
    for key in ["data_offset", "compressed_size", "size", "crc32"] {
        assert!(entry[key].is_u64());
    }
    assert_eq!(v["symbols"][0]["source"], "zip:.symtab.amd64");
    assert_eq!(v["symbols"][0]["arch"], "x86_64");
    assert_eq!(v["symbols"][0]["count"], 1858);

    let human = text(&["info", path_str(&pledge)]);
    assert!(human.contains("entry 0x404577"), "{human}");
    assert!(human.contains("0x3f0000"));
}

#[test]
fn info_on_assimilated_and_plain_files() {
    let v = json(&["info", path_str(&fixture("ent.elf")), "--json"]);
    assert_eq!(v["format"], "ape-assimilated");
    assert_eq!(v["ape_magic"], Value::Null);
    assert_eq!(v["elf"][0]["header_offset"], 0);
    assert_eq!(v["pe"], Value::Null);
    let own = json(&["info", env!("CARGO_BIN_EXE_relive"), "--json"]);
    assert_eq!(own["format"], "elf");
    assert_eq!(own["zip"], Value::Null);
    assert_eq!(own["macho"], Value::Null);
}

#[test]
fn syms_lists_cosmopolitan_tables_by_arch() {
    let pledge = fixture("pledge.com");
    let v = json(&["syms", path_str(&pledge), "--json"]);
    assert_eq!(v["source"], "zip:.symtab.amd64");
    assert_eq!(v["arch"], "x86_64");
    let symbols = v["symbols"].as_array().unwrap();
    assert_eq!(symbols.len(), 1858);
    let addrs: Vec<u64> = symbols.iter().map(|s| s["addr"].as_u64().unwrap()).collect();
    assert!(addrs.windows(2).all(|w| w[0] <= w[1]), "sorted by address");
    let main = symbols.iter().find(|s| s["name"] == "main").unwrap();
    assert_eq!(
        (main["addr"].as_u64(), main["size"].as_u64()),
        (Some(0x4049e0), Some(2171))
    );

    let arm = json(&["syms", path_str(&pledge), "--arch", "aarch64", "--json"]);
    assert_eq!(arm["source"], "zip:.symtab.arm64");
    assert_eq!(
        json(&["syms", path_str(&pledge), "--arch", "arm64", "--json"])["symbols"],
        arm["symbols"]
    );

    let human = text(&["syms", path_str(&pledge)]);
    assert!(
        human
            .lines()
            .any(|l| l.ends_with(" main") && l.starts_with("0x00000000004049e0")),
        "{human}"
    );
}

#[test]
fn addr_translates_every_way_and_accepts_decimal_or_hex() {
    let pledge = fixture("pledge.com");
    let p = path_str(&pledge);
    let by_va = json(&["addr", p, "--va", "0x4049f9", "--json"]);
    assert_eq!(by_va["va"], 0x4049f9);
    assert_eq!(by_va["rva"], 0x149f9);
    assert_eq!(by_va["offset"], 0x149f9);
    assert_eq!(by_va["section"], ".text");
    assert_eq!(by_va["symbol"], "main");
    assert_eq!(by_va["symbol_offset"], 25);
    assert_eq!(json(&["addr", p, "--va", &0x4049f9u64.to_string(), "--json"]), by_va);
    assert_eq!(json(&["addr", p, "--rva", "0x149f9", "--json"]), by_va);
    assert_eq!(json(&["addr", p, "--offset", "84473", "--json"]), by_va);

    let arm = json(&["addr", p, "--arch", "aarch64", "--va", "0x800000120", "--json"]);
    assert_eq!(arm["offset"], 0x60120);
    assert_eq!(arm["symbol"], "_start");
    assert_eq!(arm["section"], Value::Null);

    let human = text(&["addr", p, "--va", "0x4049f9"]);
    assert!(human.contains("main+0x19"), "{human}");
}

#[test]
fn zip_ls_and_cat() {
    let pledge = fixture("pledge.com");
    let v = json(&["zip", "ls", path_str(&pledge), "--json"]);
    assert_eq!(v["entries"].as_array().unwrap().len(), 5);
    let out = relive(&["zip", "cat", path_str(&pledge), "sandbox-x86_64.so"]);
    assert!(out.status.success());
    assert_eq!(out.stdout.len(), 31176);
    assert_eq!(&out.stdout[..4], b"\x7fELF");
    let empty = relive(&["zip", "cat", path_str(&pledge), ".cosmo"]);
    assert!(empty.status.success() && empty.stdout.is_empty());
}

#[test]
fn errors_name_the_problem_and_use_stable_exit_codes() {
    let pledge = fixture("pledge.com");
    let p = path_str(&pledge);
    let cases: &[(&[&str], i32, &str)] = &[
        (&["addr", p, "--va", "0x10"], 3, "outside every load segment"),
        (&["addr", p, "--arch", "riscv64", "--va", "0x10"], 3, "not in this file"),
        (&["zip", "cat", p, "no-such-entry"], 3, "not found"),
        (
            &["syms", env!("CARGO_BIN_EXE_relive"), "--source", "zip:.symtab.amd64"],
            3,
            "source",
        ),
        (&["info", "/nonexistent/file"], 1, "/nonexistent/file"),
        (&["addr", p, "--va", "0xnothex"], 2, "not a number"),
        (&["addr", p], 2, "required"),
    ];
    for (args, code, needle) in cases {
        let out = relive(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(*code), "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr:?} lacks {needle:?}");
    }
    // With --json, the error is JSON too.
    let out = relive(&["addr", p, "--va", "0x10", "--json"]);
    let err: Value = serde_json::from_slice(&out.stderr).unwrap();
    assert_eq!(err["exit_code"], 3);
    assert!(err["error"].as_str().unwrap().contains("0x10"));
}

#[test]
fn hostile_files_get_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let pledge = std::fs::read(fixture("pledge.com")).unwrap();
    let mut cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        ("text", b"hello, world\n".to_vec()),
        ("magic-only", b"MZqFpD='".to_vec()),
        ("elf-magic-only", b"\x7fELF\x02\x01\x01".to_vec()),
        ("half", pledge[..pledge.len() / 2].to_vec()),
        ("head", pledge[..4096].to_vec()),
    ];
    let mut bad_cd = pledge.clone();
    let cd = 0x9e9e3;
    bad_cd[cd..cd + 4].copy_from_slice(b"XXXX");
    cases.push(("bad-central-directory", bad_cd));
    let mut bad_symtab = pledge.clone();
    bad_symtab[0x905ed + 10] ^= 0xff;
    cases.push(("bad-symtab-stream", bad_symtab));
    for (name, bytes) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, &bytes).unwrap();
        for args in [
            vec!["info", path_str(&path)],
            vec!["info", path_str(&path), "--json"],
            vec!["syms", path_str(&path)],
            vec!["addr", path_str(&path), "--va", "0x4049e0"],
            vec!["zip", "ls", path_str(&path)],
            vec!["zip", "cat", path_str(&path), ".symtab.amd64"],
        ] {
            let out = relive(&args);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(!stderr.contains("panicked"), "{name} {args:?}: {stderr}");
            assert!(
                matches!(out.status.code(), Some(0 | 1 | 3)),
                "{name} {args:?}: {:?} {stderr}",
                out.status
            );
            if out.status.success() {
                continue;
            }
            if args.contains(&"--json") {
                let err: Value = serde_json::from_str(&stderr).unwrap_or_else(|e| panic!("{name}: {e}: {stderr}"));
                assert!(err["error"].is_string());
            } else {
                assert!(stderr.starts_with("relive: error: "), "{name} {args:?}: {stderr}");
            }
        }
    }
    let out = relive(&["info", path_str(&dir.path().join("empty"))]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("empty"));
    // A damaged deflate stream is reported by name, and nothing is written.
    let path = dir.path().join("bad-symtab-stream");
    let out = relive(&["zip", "cat", path_str(&path), ".symtab.amd64"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains(".symtab.amd64"));
}

#[test]
fn help_teaches_the_commands_and_exit_codes() {
    let help = text(&["--help"]);
    for needle in ["info", "syms", "addr", "zip", "Exit status"] {
        assert!(help.contains(needle), "{help}");
    }
    let addr_help = text(&["addr", "--help"]);
    assert!(addr_help.contains("--rva") && addr_help.contains("hex"), "{addr_help}");
}

/// Every command's usage names `relive` however the binary is called:
/// `revert` wrote its own usage lines out and said `relive revert`, the
/// others the name they were run by (`relive-copy status`).
#[test]
fn usage_lines_name_relive_whatever_the_file_is_called() {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("relive-copy");
    std::fs::copy(env!("CARGO_BIN_EXE_relive"), &copy).unwrap();
    for command in ["status", "revert", "patch", "run"] {
        // The copy's file is still open for writing in a child another
        // test thread forked meanwhile (until that child execs): running
        // it then fails with "text file busy", for a moment.
        let run = || std::process::Command::new(&copy).args([command, "--help"]).output();
        let mut out = run();
        for _ in 0..100 {
            match &out {
                Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy => {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    out = run();
                }
                _ => break,
            }
        }
        let out = out.unwrap();
        let help = String::from_utf8_lossy(&out.stdout);
        let usage: Vec<&str> = help
            .lines()
            .skip_while(|l| !l.starts_with("Usage:"))
            .take_while(|l| !l.trim().is_empty())
            .collect();
        assert!(!usage.is_empty(), "{command}: {help}");
        for line in usage {
            let line = line.trim_start_matches("Usage:").trim();
            assert!(line.starts_with(&format!("relive {command} ")), "{command}: {line}");
        }
    }
}
