//! SMF loader on arbitrary modules: the module hash is fixed up first so
//! damaged tables get past the file check and into the loader (layout,
//! relocation, protection). Loading is an error or a module, never a
//! panic; nothing is called.
#![no_main]

use libfuzzer_sys::fuzz_target;
use relive_smf::format::Module;
use relive_smf::LoadedModule;

#[path = "smf_common.rs"]
mod smf_common;

fuzz_target!(|data: &[u8]| {
    let bytes = smf_common::with_module_hash_fixed(data);
    if let Ok(module) = Module::parse(&bytes) {
        let _ = LoadedModule::load(&module, &|_| Some(0x10_0000));
    }
});
