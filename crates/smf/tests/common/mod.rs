//! Calling the tests' own module functions.
//!
//! Module code runs through `unsafe fn`s (the loader cannot check a
//! function's signature); every module in these tests is C source the test
//! itself wrote, whose functions take integers (or a pointer the test
//! keeps alive) and return an integer, so calling them is sound.
#![allow(dead_code)]

use relive_smf::{LoadedModule, StableFn};

/// Runs a stable entry of the tests' own modules.
pub trait RunEntry {
    fn run(&self, args: &[u64]) -> u64;
}

impl RunEntry for StableFn {
    fn run(&self, args: &[u64]) -> u64 {
        // SAFETY: see the module documentation.
        unsafe { self.call(args) }
    }
}

/// Runs an exported function of the tests' own modules.
pub trait RunExport {
    fn run(&self, name: &str, args: &[u64]) -> Option<u64>;
}

impl RunExport for LoadedModule {
    fn run(&self, name: &str, args: &[u64]) -> Option<u64> {
        // SAFETY: see the module documentation.
        unsafe { self.call(name, args) }
    }
}
