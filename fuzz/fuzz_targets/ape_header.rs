//! Fuzz target: `relive_image::exercise::ape_script` must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    relive_image::exercise::ape_script(data);
});
