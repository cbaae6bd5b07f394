//! The parts of an Actually Portable Executable that no general-purpose
//! object-file crate understands: the shell-script magic, the `printf`
//! statements that carry each architecture's ELF header, and the `dd`
//! statement that locates the Mach-O header.
//!
//! The PE header, the Mach-O load commands and the ELF program headers are
//! ordinary structures once found, and are read with `object` elsewhere.

pub mod dd;
pub mod magic;
pub mod printf;

/// How far into the file the APE specification lets the `printf` and `dd`
/// statements appear.
pub const SCRIPT_WINDOW: usize = 8192;
