//! The patch engine: what changed between two compiles of a translation
//! unit ([`diff`]), and (as the engine grows) how the changed code is
//! linked against a running process and written into it.

pub mod code;
pub mod diff;
pub mod error;
pub mod names;
pub mod objfile;

pub use diff::{diff, Diff};
pub use error::{PatchError, Result};
pub use objfile::ObjectFile;
