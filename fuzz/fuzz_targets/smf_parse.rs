//! SMF module reader on arbitrary bytes: errors, never panics; whatever
//! parses writes back to bytes that parse to the same module.
#![no_main]

use libfuzzer_sys::fuzz_target;
use relive_smf::format::Module;

fuzz_target!(|data: &[u8]| {
    if let Ok(module) = Module::parse(data) {
        let written = module.to_bytes();
        let again = Module::parse(&written).expect("a written module reads back");
        assert_eq!(again.symbols, module.symbols);
        assert_eq!(again.relocations, module.relocations);
    }
});
