//! Fuzz target: reading a patch bundle (and the objects in it) must never
//! panic, and a bundle read must write back to the same.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    relive_patch::exercise::bundle(data);
});
