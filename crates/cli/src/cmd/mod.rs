//! One module per subcommand.

pub mod addr;
pub mod build;
pub mod bundle;
pub mod demo;
pub mod diff;
pub mod gdb;
pub mod info;
pub mod live;
pub mod memory;
pub mod patch;
pub mod processes;
pub mod run;
pub mod smf;
pub mod smf_run;
pub mod syms;
pub mod verify;
pub mod zip;

use anyhow::Context;
use relive_image::Image;
use std::path::Path;

/// Opens `path`, adding the path to any error.
pub fn open(path: &Path) -> anyhow::Result<Image> {
    Image::open(path).with_context(|| format!("reading {}", path.display()))
}
