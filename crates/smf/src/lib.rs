//! SMF, relive's module format for code the program loads itself and
//! replaces while it runs (docs/smf.md): [`format`] reads and writes
//! files, [`pack`] builds one from gcc/clang ELF objects, [`loader`] maps
//! and relocates one into this process ([`memory`] holds the crate's only
//! `unsafe` code).

pub mod format;
pub mod loader;
pub mod memory;
pub mod pack;

pub use format::{FormatError, Module};
pub use loader::{LoadError, LoadedModule};
pub use pack::{pack, PackError};
