//! The loader path under hostile modules: a real module's fields are
//! damaged one at a time, written with a valid hash (so the damage gets
//! past the file checks) and read back; whatever parses is loaded alone and
//! through a registry reload. Every outcome is a module or an error, never
//! a panic, and a failed reload leaves the running version exactly as it
//! was.

mod common;
#[allow(unused_imports)]
use common::{RunEntry, RunExport};

use relive_smf::format::{Binding, RelocType, SectionKind, SymbolType};
use relive_smf::{pack, Module, ModuleLoader, ModuleRegistry, ReloadOptions};
use relive_testkit::Rng;

const SOURCE: &str = r#"
#include <string.h>
long total = 5;
static long calls;
static const char word[] = "mutation";
long (*table[1])(long);
long which(void) { return 7; }
long step(long x) { calls++; total += x; return total + (long)strlen(word); }
long through(long x) { table[0] = step; return table[0](x); }
"#;

/// A value near an interesting edge, or anything.
fn value(rng: &mut Rng) -> u64 {
    match rng.next_u64() % 6 {
        0 => 0,
        1 => u64::MAX - (rng.next_u64() % 16),
        2 => 1 << (rng.next_u64() % 64),
        3 => rng.next_u64() % 4096,
        4 => (i32::MAX as u64).wrapping_add(rng.next_u64() % 8),
        _ => rng.next_u64(),
    }
}

fn damage(module: &mut Module, rng: &mut Rng) {
    let kinds = [RelocType::Abs64, RelocType::Pc32, RelocType::Plt32, RelocType::GotPcRel];
    match rng.next_u64() % 12 {
        0 if !module.relocations.is_empty() => {
            let i = rng.below(module.relocations.len());
            module.relocations[i].offset = value(rng);
        }
        1 if !module.relocations.is_empty() => {
            let i = rng.below(module.relocations.len());
            module.relocations[i].addend = value(rng) as i64;
        }
        2 if !module.relocations.is_empty() => {
            let i = rng.below(module.relocations.len());
            module.relocations[i].kind = kinds[rng.below(4)];
        }
        3 if !module.relocations.is_empty() => {
            let i = rng.below(module.relocations.len());
            module.relocations[i].symbol = value(rng) as u32 % (module.symbols.len() as u32 + 2);
        }
        4 if !module.relocations.is_empty() => {
            let i = rng.below(module.relocations.len());
            module.relocations[i].section = value(rng) as u32 % (module.sections.len() as u32 + 1);
        }
        5 => {
            let i = rng.below(module.symbols.len());
            module.symbols[i].value = value(rng);
        }
        6 => {
            let i = rng.below(module.symbols.len());
            module.symbols[i].size = value(rng);
        }
        7 => {
            let i = rng.below(module.symbols.len());
            module.symbols[i].section = match rng.next_u64() % 3 {
                0 => None,
                _ => Some(value(rng) as u32 % (module.sections.len() as u32 + 1)),
            };
        }
        8 => {
            let i = rng.below(module.symbols.len());
            let s = &mut module.symbols[i];
            s.kind = [
                SymbolType::None,
                SymbolType::Function,
                SymbolType::Object,
                SymbolType::Section,
            ][rng.below(4)];
            s.binding = [Binding::Local, Binding::Global, Binding::Weak][rng.below(3)];
        }
        9 => {
            let i = rng.below(module.sections.len());
            module.sections[i].memory_size = value(rng);
        }
        10 => {
            let i = rng.below(module.sections.len());
            module.sections[i].kind = [
                SectionKind::Code,
                SectionKind::Data,
                SectionKind::RoData,
                SectionKind::Bss,
            ][rng.below(4)];
            module.sections[i].alignment = 1 << rng.below(14);
        }
        _ => module.arch = if rng.next_u64().is_multiple_of(2) { 3 } else { 62 },
    }
}

#[test]
fn damaged_modules_load_or_fail_cleanly_and_failed_reloads_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let obj = relive_testkit::compile_object(dir.path(), "m", SOURCE, &["-O2", "-fPIC"]);
    let good = pack(&[("m".into(), std::fs::read(obj).unwrap())], None).unwrap();
    let loader = ModuleLoader::new();
    let mut registry = ModuleRegistry::new();
    registry.load("m", &good).unwrap();
    let which = registry.get_function("m", "which").unwrap();
    let step = registry.get_function("m", "step").unwrap();
    let mut expected_total = 5;

    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let (mut parsed, mut loaded, mut reloaded) = (0, 0, 0);
    for round in 0..3_000 {
        let mut module = good.clone();
        for _ in 0..1 + rng.below(3) {
            damage(&mut module, &mut rng);
        }
        let bytes = module.to_bytes();
        let Ok(module) = Module::parse(&bytes) else {
            continue;
        };
        parsed += 1;
        if loader.load(&module).is_ok() {
            loaded += 1;
        }
        // Through a reload: success replaces the code (put the good module
        // back); failure must leave the running version untouched.
        let version = registry.version("m").unwrap();
        match registry.reload("m", &module, ReloadOptions::default()) {
            Ok(_) => {
                reloaded += 1;
                registry
                    .reload("m", &good, ReloadOptions { keep_data: false })
                    .unwrap_or_else(|e| panic!("round {round}: the good module again: {e}"));
                expected_total = 5;
            }
            Err(_) => assert_eq!(registry.version("m"), Some(version), "round {round}"),
        }
        assert_eq!(which.run(&[]), 7, "round {round}");
        expected_total += 1;
        assert_eq!(step.run(&[1]) as i64, expected_total + 8, "round {round}: state intact");
        if round % 200 == 0 {
            registry.free_retired();
        }
    }
    // The damage reached the loader (parsing let enough through), and some
    // damaged modules still loaded (e.g. a changed addend).
    assert!(parsed > 500 && loaded > 100, "parsed {parsed}, loaded {loaded}");
    assert!(reloaded > 0, "some damaged modules reloaded");
}
