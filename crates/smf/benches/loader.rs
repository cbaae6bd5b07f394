//! SMF loading against `dlopen`/`dlsym` of the same C code built as a
//! shared library, all in one run (medians):
//! - load + relocate: read + check + map + relocate an SMF file (alone, and
//!   under a registry with stable entries) vs `dlopen(RTLD_NOW)` + `dlclose`
//!   (goal: ratio at most 0.5), with freed module memory reused and into
//!   fresh mappings; and a reload of the module in a live registry, with
//!   its own dlopen baseline timed in the same rounds;
//! - symbol lookup: `LoadedModule::symbol` and `ModuleRegistry::get_function`
//!   vs `dlsym`;
//! - call overhead: a leaf function called through its stable entry vs its
//!   code directly, through the same Rust call wrapper (goal: under 1 ns
//!   extra per call).
//!
//! Run: `cargo bench -p relive-smf --bench loader`. `SMF_BENCH_DETAIL=1`
//! adds the parts of a load and the kernel's share of a fresh one;
//! `SMF_BENCH_LOOP=read|hash|parse|load|full|registry|reload|get_function`
//! instead runs one step 20,000 times (`get_function`: all 200 names) and prints its mean (for a profiler).

use std::fmt::Write as _;
use std::hint::black_box;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use relive_smf::memory::{call_in, host_symbol, set_pool_limit, SharedLibrary};
use relive_smf::{pack, LoadedModule, Module, ModuleRegistry};

const FUNCTIONS: usize = 200;
const LOAD_ROUNDS: usize = 301;
const LOOKUPS: usize = 100_000;
const CALLS: usize = 10_000_000;
const CALL_ROUNDS: usize = 11;

fn source() -> String {
    let mut s = String::from(
        "#include <string.h>\nstatic long table[8] = {1, 2, 3, 4, 5, 6, 7, 8};\nlong total;\nstatic char buffer[64];\n",
    );
    for i in 0..FUNCTIONS {
        writeln!(
            s,
            "long f{i}(long x) {{ total += x; return x * {} + table[{}]; }}",
            i + 1,
            i % 8
        )
        .unwrap();
    }
    s.push_str("long measure(const char *t) { memcpy(buffer, t, 8); return (long)strlen(buffer); }\n");
    s.push_str("long leaf(long x) { return x + 1; }\n");
    s
}

fn gcc(dir: &Path, args: &[&str]) {
    let status = Command::new("gcc").args(args).current_dir(dir).status().unwrap();
    assert!(status.success(), "gcc {args:?}");
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn time<T>(f: impl FnOnce() -> T) -> f64 {
    let started = Instant::now();
    black_box(f());
    started.elapsed().as_secs_f64() * 1e9
}

fn main() {
    if std::env::args().any(|a| a == "--test" || a == "--list") {
        return; // `cargo test --benches` only checks that this builds
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("m.c"), source()).unwrap();
    gcc(dir.path(), &["-O2", "-fPIC", "-c", "m.c", "-o", "m.o"]);
    gcc(dir.path(), &["-shared", "-o", "libm_bench.so", "m.o"]);
    let object = std::fs::read(dir.path().join("m.o")).unwrap();
    let smf_path = dir.path().join("m.smf");
    std::fs::write(&smf_path, pack(&[("m.o".into(), object)], None).unwrap().to_bytes()).unwrap();
    let so_path = dir.path().join("libm_bench.so");
    let smf_size = std::fs::metadata(&smf_path).unwrap().len();
    let so_size = std::fs::metadata(&so_path).unwrap().len();

    if let Some(what) = std::env::var_os("SMF_BENCH_LOOP") {
        // For a profiler: one step, many times.
        let bytes = std::fs::read(&smf_path).unwrap();
        let module = Module::parse(&bytes).unwrap();
        // The "reload" and "get_function" loops' registry, made once.
        let mut live = ModuleRegistry::new();
        live.load("m", &module).unwrap();
        let names: Vec<String> = (0..FUNCTIONS).map(|i| format!("f{i}")).collect();
        let started = Instant::now();
        for _ in 0..20_000 {
            if what == "hash" {
                black_box(relive_smf::format::module_hash(black_box(&bytes[96..])));
            } else if what == "parse" {
                black_box(Module::parse(&bytes).unwrap());
            } else if what == "reload" {
                black_box(live.reload("m", &module, Default::default()).unwrap());
                live.free_retired();
            } else if what == "get_function" {
                for name in &names {
                    black_box(live.get_function("m", black_box(name)).unwrap().addr());
                }
            } else if what == "read" {
                black_box(std::fs::read(&smf_path).unwrap());
            } else if what == "full" {
                let bytes = std::fs::read(&smf_path).unwrap();
                let module = Module::parse(&bytes).unwrap();
                black_box(LoadedModule::load(&module, &host_symbol).unwrap().symbol("leaf"));
            } else if what == "registry" {
                let mut r = ModuleRegistry::new();
                r.load("m", &module).unwrap();
                black_box(r.get_function("m", "leaf").unwrap().addr());
            } else {
                black_box(LoadedModule::load(&module, &host_symbol).unwrap());
            }
        }
        println!(
            "{:?}: {:.2} µs each",
            what,
            started.elapsed().as_secs_f64() * 1e6 / 20_000.0
        );
        return;
    }
    // Load + relocate, interleaved so drift hits all three alike: first
    // with the region pool (the steady state of a process that loads and
    // reloads: freed module memory is reused), then into fresh mappings.
    // One dlopen + dlsym + dlclose of the same code, timed: the baseline.
    let dlopen = || {
        time(|| {
            let lib = SharedLibrary::open(&so_path).unwrap();
            lib.symbol("leaf").unwrap()
        })
    };
    let load_rounds = || {
        let (mut dl, mut smf, mut registry) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..LOAD_ROUNDS {
            dl.push(dlopen());
            smf.push(time(|| {
                let bytes = std::fs::read(&smf_path).unwrap();
                let module = Module::parse(&bytes).unwrap();
                let loaded = LoadedModule::load(&module, &host_symbol).unwrap();
                loaded.symbol("leaf").unwrap()
            }));
            registry.push(time(|| {
                let mut r = ModuleRegistry::new();
                r.load_file("m", &smf_path).unwrap();
                // The handle goes before the registry: as a tail
                // expression it would outlive it and keep its entry block
                // from being reused.
                let leaf = r.get_function("m", "leaf").unwrap().addr();
                drop(r);
                leaf
            }));
        }
        (median(dl), median(smf), median(registry))
    };
    let (dl, smf, registry) = load_rounds();
    let pool = set_pool_limit(0);
    let (cold_dl, cold_smf, cold_registry) = load_rounds();
    set_pool_limit(pool);
    // A reload into a long-lived registry (the hot-reload path: entries and
    // their pages exist already), file read and parse included; dlopen
    // timed in the same rounds, as above.
    let mut live = ModuleRegistry::new();
    live.load_file("m", &smf_path).unwrap();
    let (mut reload_dl, mut reloads) = (Vec::new(), Vec::new());
    for _ in 0..LOAD_ROUNDS {
        reload_dl.push(dlopen());
        reloads.push(time(|| live.reload_file("m", &smf_path, Default::default()).unwrap()));
        live.free_retired();
    }
    let (reload_dl, reload) = (median(reload_dl), median(reloads));
    if std::env::var_os("SMF_BENCH_DETAIL").is_some() {
        let bytes = std::fs::read(&smf_path).unwrap();
        let read = median((0..101).map(|_| time(|| std::fs::read(&smf_path).unwrap())).collect());
        let parse = median((0..101).map(|_| time(|| Module::parse(&bytes).unwrap())).collect());
        let module = Module::parse(&bytes).unwrap();
        let load = median(
            (0..101)
                .map(|_| time(|| LoadedModule::load(&module, &host_symbol).unwrap()))
                .collect(),
        );
        // The kernel's part of a load into fresh mappings, alone: a code
        // mapping the size of the bench module's (all `r-x`: its GOT fits
        // in the last code page) written through /proc/self/mem and a
        // 1-page data mapping written, then both unmapped. No parsing or
        // relocating: the floor for that column.
        let code_len = {
            let loaded = LoadedModule::load(&module, &host_symbol).unwrap();
            loaded.range().1 - loaded.range().0
        };
        let image = vec![0x90u8; code_len as usize];
        let pool = set_pool_limit(0);
        let fresh_floor = median(
            (0..101)
                .map(|_| {
                    time(|| {
                        let mut code = relive_smf::memory::Region::new_code(code_len, code_len).unwrap();
                        code.install(&image, code_len).unwrap();
                        let mut data = relive_smf::memory::Region::new(4096).unwrap();
                        data.write(0, &image[..64]);
                        (code, data)
                    })
                })
                .collect(),
        );
        set_pool_limit(pool);
        let dlsym = median((0..101).map(|_| time(|| host_symbol("strlen").unwrap())).collect());
        println!(
            "detail: read {:.1} µs, parse {:.1} µs, load {:.1} µs, one dlsym {:.1} µs; fresh mappings alone (kernel work, no parse or relocation) {:.1} µs",
            read / 1e3,
            parse / 1e3,
            load / 1e3,
            dlsym / 1e3,
            fresh_floor / 1e3
        );
    }

    // Symbol lookup.
    let lib = SharedLibrary::open(&so_path).unwrap();
    let bytes = std::fs::read(&smf_path).unwrap();
    let module = Module::parse(&bytes).unwrap();
    let loaded = LoadedModule::load(&module, &host_symbol).unwrap();
    let mut reg = ModuleRegistry::new();
    reg.load("m", &module).unwrap();
    let names: Vec<String> = (0..FUNCTIONS).map(|i| format!("f{i}")).collect();
    let per_lookup = |f: &dyn Fn(&str) -> u64| {
        median(
            (0..5)
                .map(|_| time(|| (0..LOOKUPS).map(|i| f(&names[i % FUNCTIONS])).sum::<u64>()) / LOOKUPS as f64)
                .collect(),
        )
    };
    let dlsym_ns = per_lookup(&|n| lib.symbol(n).unwrap());
    let symbol_ns = per_lookup(&|n| loaded.symbol(n).unwrap());
    let get_function_ns = per_lookup(&|n| reg.get_function("m", n).unwrap().addr());

    // Calls: the same wrapper (range check + indirect call) around the code
    // itself and around its stable entry.
    let stable = reg.get_function("m", "leaf").unwrap();
    let code = reg.module("m").unwrap().function("leaf").unwrap();
    let region = reg.module("m").unwrap().code_region();
    // SAFETY: `leaf` is the bench's own C function, `long leaf(long)`.
    let answer = unsafe { stable.call(&[41]) };
    assert_eq!(answer, 42);
    let (mut direct, mut through) = (Vec::new(), Vec::new());
    for _ in 0..CALL_ROUNDS {
        direct.push(
            time(|| {
                let mut x = 0u64;
                for _ in 0..CALLS {
                    // SAFETY: `leaf`, as above.
                    x = unsafe { call_in(region, black_box(code), [x, 0, 0, 0, 0, 0]) }.unwrap();
                }
                x
            }) / CALLS as f64,
        );
        through.push(
            time(|| {
                let mut x = 0u64;
                for _ in 0..CALLS {
                    // SAFETY: `leaf`, as above.
                    x = unsafe { call_in(stable.region(), black_box(stable.addr()), [x, 0, 0, 0, 0, 0]) }.unwrap();
                }
                x
            }) / CALLS as f64,
        );
    }
    let (direct, through) = (median(direct), median(through));
    drop(lib);

    println!("SMF loader vs dlopen/dlsym ({FUNCTIONS} functions + data, gcc -O2 -fPIC; medians, one run)");
    println!("  files: m.smf {smf_size} bytes, libm_bench.so {so_size} bytes");
    for (title, dl, smf, registry) in [
        (
            "freed module memory reused (region pool, the default)",
            dl,
            smf,
            registry,
        ),
        ("fresh mappings every time (pool off)", cold_dl, cold_smf, cold_registry),
    ] {
        println!("load + relocate ({LOAD_ROUNDS} rounds), {title}:");
        println!("  dlopen(RTLD_NOW)+dlsym+dlclose  {:>9.1} µs", dl / 1e3);
        println!(
            "  SMF read+parse+load+unmap       {:>9.1} µs   ratio to dlopen {:.2} (goal <= 0.5)",
            smf / 1e3,
            smf / dl
        );
        println!(
            "  SMF under a registry (entries)  {:>9.1} µs   ratio to dlopen {:.2}",
            registry / 1e3,
            registry / dl
        );
    }
    println!("reload in a live registry ({LOAD_ROUNDS} rounds, freed versions' memory reused):");
    println!("  dlopen(RTLD_NOW)+dlsym+dlclose  {:>9.1} µs", reload_dl / 1e3);
    println!(
        "  SMF read+parse+reload           {:>9.1} µs   ratio to dlopen {:.2}",
        reload / 1e3,
        reload / reload_dl
    );
    println!("symbol lookup ({LOOKUPS} lookups):");
    println!("  dlsym                           {dlsym_ns:>9.1} ns");
    println!(
        "  LoadedModule::symbol            {symbol_ns:>9.1} ns   ratio {:.2}",
        symbol_ns / dlsym_ns
    );
    println!(
        "  ModuleRegistry::get_function    {get_function_ns:>9.1} ns   ratio {:.2}",
        get_function_ns / dlsym_ns
    );
    println!("call ({CALLS} calls x {CALL_ROUNDS} rounds, same wrapper):");
    println!("  direct to the code              {direct:>9.2} ns");
    println!(
        "  through the stable entry        {through:>9.2} ns   extra {:.2} ns per call (goal < 1 ns)",
        through - direct
    );
}
