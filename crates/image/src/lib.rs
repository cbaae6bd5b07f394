//! Typed, zero-copy views of executable files: Actually Portable Executables
//! (Cosmopolitan's shell-script + PE + printf-ELF + Mach-O + ZIP polyglot),
//! plain ELF, PE and Mach-O; their symbol tables; and translation between
//! file offsets, RVAs and virtual addresses.
//!
//! This crate never runs or writes anything. Every byte it reads is treated
//! as hostile: reads are bounds-checked, arithmetic is checked, and damage is
//! an [`ImageError`] naming the structure and offset, never a panic.
//!
//! ```no_run
//! let image = relive_image::Image::open("pledge.com")?;
//! let symbols = image.symbols(None)?;
//! let main = symbols.by_name("main")[0];
//! let view = image.view(None)?;
//! println!("main at {:#x}, file offset {:#x}", main.addr, view.va_to_offset(main.addr)?);
//! # Ok::<(), relive_image::ImageError>(())
//! ```
// Only the file mapping (`mapped`) may use unsafe code.
#![deny(unsafe_code)]

pub mod ape;
pub mod arch;
pub mod elf;
pub mod error;
#[doc(hidden)]
pub mod exercise;
pub mod image;
pub mod irelative;
pub mod layout;
pub mod macho;
#[allow(unsafe_code)]
mod mapped;
pub mod pe;
mod read;
pub mod symbols;
pub mod translate;
pub mod zip;

pub use arch::Arch;
pub use error::{AddressKind, ImageError, Result};
pub use image::{Image, Info, SymbolSource, SymbolSourceInfo};
pub use layout::{Format, Layout};
pub use mapped::FileBytes;
pub use symbols::{Symbol, SymbolTable};
pub use translate::{ArchView, Translation};
