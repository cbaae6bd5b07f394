//! SMF, relive's module format for code the program loads itself and
//! replaces while it runs (docs/smf.md): [`format`] reads and writes
//! files, [`pack`] builds one from gcc/clang ELF objects.

pub mod format;
pub mod pack;

pub use format::{FormatError, Module};
pub use pack::{pack, PackError};
