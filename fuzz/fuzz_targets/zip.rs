//! Fuzz target: `relive_image::exercise::zip` must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    relive_image::exercise::zip(data);
});
