//! A running process relive can inspect and change.
//!
//! [`Process`] is the one trait the rest of relive uses; each operating
//! system gets one backend module behind it. Only Linux exists today; on
//! other systems [`open`] returns [`ProcessError::Unsupported`] rather than a
//! pretend implementation.

pub mod error;
#[cfg(target_os = "linux")]
pub mod linux;
pub mod maps;

pub use error::{ProcessError, Result};
pub use maps::Mapping;

/// What relive needs from a running process.
pub trait Process {
    fn pid(&self) -> u32;

    /// The process's memory mappings, freshly read.
    fn maps(&self) -> Result<Vec<Mapping>>;

    /// Reads `buf.len()` bytes at `addr`. Fails with
    /// [`ProcessError::NotMapped`] if any byte is outside the mappings.
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<()>;

    /// Writes `data` at `addr`, through read-only code pages too. Fails
    /// with [`ProcessError::NotMapped`] (writing nothing) if any byte is
    /// outside the mappings.
    fn write(&self, addr: u64, data: &[u8]) -> Result<()>;
}

/// Opens the process `pid` with this platform's backend.
#[cfg(target_os = "linux")]
pub fn open(pid: u32) -> Result<Box<dyn Process>> {
    Ok(Box::new(linux::LinuxProcess::open(pid)?))
}

/// Opens the process `pid` with this platform's backend.
#[cfg(not(target_os = "linux"))]
pub fn open(_pid: u32) -> Result<Box<dyn Process>> {
    Err(ProcessError::Unsupported {
        what: "opening a process",
    })
}
