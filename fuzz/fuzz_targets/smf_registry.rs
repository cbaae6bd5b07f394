//! SMF modules through a registry: load, load the same module again under
//! a second name (its imports can bind to the first's exports, so reloads
//! of the first relink it), reload (the same module: the path that takes
//! over the previous version's entries and follows pointer fields; then
//! one with a writable section grown, so the data layout changes and
//! objects and their pointers are copied; then with fresh data), look up
//! every symbol's entry (and `name#1`), unload. The module hash is fixed
//! up first, as in `smf_load`. Every step is an error or a result, never
//! a panic; nothing is called.
#![no_main]

use libfuzzer_sys::fuzz_target;
use relive_smf::format::{Module, SectionKind};
use relive_smf::{ModuleRegistry, ReloadOptions};

#[path = "smf_common.rs"]
mod smf_common;

fuzz_target!(|data: &[u8]| {
    let bytes = smf_common::with_module_hash_fixed(data);
    let Ok(module) = Module::parse(&bytes) else {
        return;
    };
    let mut registry = ModuleRegistry::new();
    if registry.load("m", &module).is_err() {
        return;
    }
    let _ = registry.load("n", &module);
    let _ = registry.reload("m", &module, ReloadOptions::default());
    let mut grown = module.clone();
    if let Some(section) = grown
        .sections
        .iter_mut()
        .find(|s| matches!(s.kind, SectionKind::Data | SectionKind::Bss))
    {
        section.memory_size = section.memory_size.saturating_add(8);
        let _ = registry.reload("m", &grown, ReloadOptions::default());
    }
    let _ = registry.reload("m", &module, ReloadOptions { keep_data: false });
    for s in &module.symbols {
        let _ = registry.get_function("m", &s.name);
        let _ = registry.get_function("m", &format!("{}#1", s.name));
    }
    let _ = registry.unload("n");
    let _ = registry.unload("m");
    registry.free_retired();
});
