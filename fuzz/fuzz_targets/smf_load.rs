//! SMF loader on arbitrary modules: the module hash is fixed up first so
//! damaged tables get past the file check and into the loader (layout,
//! relocation, protection). Loading is an error or a module, never a
//! panic; nothing is called.
#![no_main]

use libfuzzer_sys::fuzz_target;
use relive_smf::format::{module_hash, Module};
use relive_smf::LoadedModule;

fuzz_target!(|data: &[u8]| {
    let mut bytes = data.to_vec();
    if bytes.len() >= 96 {
        let hash = module_hash(&bytes[96..]);
        bytes[80..88].copy_from_slice(&hash.to_le_bytes());
    }
    if let Ok(module) = Module::parse(&bytes) {
        let _ = LoadedModule::load(&module, &|_| Some(0x10_0000));
    }
});
