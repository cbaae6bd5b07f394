//! SMF modules through a registry: load, reload (the same module: the
//! path that takes over the previous version's entries; then with fresh
//! data), look up every symbol's entry (and `name#1`), unload. The module
//! hash is fixed up first, as in `smf_load`. Every step is an error or a
//! result, never a panic; nothing is called.
#![no_main]

use libfuzzer_sys::fuzz_target;
use relive_smf::format::{module_hash, Module};
use relive_smf::{ModuleRegistry, ReloadOptions};

fuzz_target!(|data: &[u8]| {
    let mut bytes = data.to_vec();
    if bytes.len() >= 96 {
        let hash = module_hash(&bytes[96..]);
        bytes[80..88].copy_from_slice(&hash.to_le_bytes());
    }
    let Ok(module) = Module::parse(&bytes) else {
        return;
    };
    let mut registry = ModuleRegistry::new();
    if registry.load("m", &module).is_err() {
        return;
    }
    let _ = registry.reload("m", &module, ReloadOptions::default());
    let _ = registry.reload("m", &module, ReloadOptions { keep_data: false });
    for s in &module.symbols {
        let _ = registry.get_function("m", &s.name);
        let _ = registry.get_function("m", &format!("{}#1", s.name));
    }
    let _ = registry.unload("m");
    registry.free_retired();
});
