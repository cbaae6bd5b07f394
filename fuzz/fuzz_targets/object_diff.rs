//! Fuzz target: reading a relocatable object and diffing it against itself
//! (keys, masking, relocation descriptions, decoding) must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    relive_patch::exercise::object(data);
});
