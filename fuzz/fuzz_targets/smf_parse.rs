//! SMF module reader on arbitrary bytes: errors, never panics; whatever
//! parses writes back to bytes that parse to the same module, and compares
//! with itself (`diff::changed_functions`) as unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use relive_smf::format::Module;

fuzz_target!(|data: &[u8]| {
    if let Ok(module) = Module::parse(data) {
        let written = module.to_bytes();
        let again = Module::parse(&written).expect("a written module reads back");
        assert_eq!(again.symbols, module.symbols);
        assert_eq!(again.relocations, module.relocations);
        let changed = relive_smf::diff::changed_functions(&module, &again);
        // Keys are unique unless a name spells another's `name#N` key.
        let spelled = module.symbols.iter().any(|s| s.name.contains('#'));
        assert!(changed.is_empty() || spelled, "{changed:?}");
    }
});
