//! The patch engine: what changed between two compiles of a translation
//! unit ([`diff`]), and (as the engine grows) how the changed code is
//! linked against a running process and written into it.
// No unsafe code here: only the process and memory layers (relive-process,
// relive-smf's loader, relive-image's file mapping) touch raw memory.
#![forbid(unsafe_code)]

pub mod apply;
pub mod bundle;
pub mod c_tokens;
pub mod callees;
pub mod clobber;
pub mod clone_parameters;
pub mod code;
pub mod debug_file;
pub mod debug_index;
pub mod debug_macros;
mod debug_relocs;
pub mod debugger;
mod decode_once;
pub mod diff;
pub mod displaced;
pub mod eh_frame;
pub mod entry;
pub mod error;
#[doc(hidden)]
pub mod exercise;
pub mod file_slice;
pub mod fleet;
pub mod flow;
pub mod hooks;
pub mod inherit;
pub mod inline_only;
pub mod jit_helper;
pub mod journal;
pub mod labels;
pub mod lambdas;
pub mod line_shift;
pub mod line_table;
pub mod link;
pub mod live;
pub mod names;
pub mod objfile;
pub mod origin;
pub mod perf_map;
pub mod reach;
pub mod reclaim;
pub mod remote_dlopen;
pub mod running_callers;
pub mod select;
pub mod side_by_side;
pub mod signature;
pub(crate) mod stack_walk;
pub mod state;
mod static_owners;
pub mod target;
#[cfg(test)]
mod test_memory;
pub mod thunk;
pub mod tls;
pub mod type_layout;
pub mod unwind;
pub mod verify;

pub use diff::{diff, Diff};
pub use error::{PatchError, Result};
pub use objfile::ObjectFile;
