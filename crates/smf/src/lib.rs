//! SMF, relive's module format for code the program loads itself and
//! replaces while it runs (docs/smf.md): [`format`](mod@format) reads and writes
//! files, [`pack`](mod@pack) builds one from gcc/clang ELF objects, [`loader`] maps
//! and relocates one into this process, [`registry`] keeps several loaded
//! and replaces them while they run, through the stable entry points of
//! [`entries`], and [`diff`] names the functions two versions differ in
//! ([`memory`] holds the crate's only `unsafe` code).
// Every unsafe block states why it is sound (`// SAFETY:`).
#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

pub mod diff;
pub mod entries;
pub mod format;
mod hash;
mod keys;
pub mod loader;
pub mod memory;
pub mod pack;
pub mod registry;

pub use entries::StableFn;
pub use format::{FormatError, Module};
pub use loader::{LoadError, LoadedModule};
pub use pack::{pack, PackError};
pub use registry::{DataOutcome, ModuleLoader, ModuleRegistry, RegistryError, ReloadOptions, ReloadReport};
