//! The Mach-O view: a 64-bit Mach-O header (inside an APE at the offset its
//! `dd` statement names, or at the start of a plain Mach-O file), its
//! segments and its entry point (`LC_UNIXTHREAD`'s program counter, or
//! `LC_MAIN`'s offset into `__TEXT`).

use object::macho;
use object::read::macho::MachHeader;
use object::Endianness;
use serde::Serialize;

use crate::error::{ImageError, Result};
use crate::read::u64_at;

#[derive(Debug, Clone, Serialize)]
pub struct MachOHeader {
    /// File offset of the header.
    pub offset: u64,
    /// Bytes the APE script copies (`count × bs`); for a plain Mach-O file,
    /// the header plus its load commands.
    pub size: u64,
    pub cputype: u32,
    pub entry: Option<u64>,
    pub segments: Vec<MachOSegment>,
}

#[derive(Debug, Clone, Serialize)]
pub struct MachOSegment {
    pub name: String,
    pub vmaddr: u64,
    pub vmsize: u64,
    pub fileoff: u64,
    pub filesize: u64,
    pub initprot: u32,
}

fn trim_nul(bytes: &[u8]) -> &[u8] {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    &bytes[..end]
}

/// Index of the program counter in each thread-state flavour's register
/// array (`x86_thread_state64_t`: rax…r15, rip; `arm_thread_state64_t`:
/// x0…x28, fp, lr, sp, pc).
fn pc_index(flavor: u32) -> Option<u64> {
    match flavor {
        4 => Some(16), // x86_THREAD_STATE64
        6 => Some(32), // ARM_THREAD_STATE64
        _ => None,
    }
}

impl MachOHeader {
    /// Parses a 64-bit little-endian Mach-O header at `offset` of `data`.
    pub fn parse(data: &[u8], offset: u64, size: Option<u64>) -> Result<MachOHeader> {
        let header = macho::MachHeader64::<Endianness>::parse(data, offset)
            .map_err(|e| ImageError::object("Mach-O header", offset, e))?;
        let endian = header
            .endian()
            .map_err(|e| ImageError::object("Mach-O header", offset, e))?;
        let mut commands = header
            .load_commands(endian, data, offset)
            .map_err(|e| ImageError::object("Mach-O load commands", offset, e))?;
        let mut segments = Vec::new();
        let mut entry = None;
        let mut main_offset = None;
        while let Some(command) = commands
            .next()
            .map_err(|e| ImageError::object("Mach-O load command", offset, e))?
        {
            let command_offset = offset.saturating_add(command.offset());
            if let Some((segment, _)) = command
                .segment_64()
                .map_err(|e| ImageError::object("Mach-O LC_SEGMENT_64", command_offset, e))?
            {
                segments.push(MachOSegment {
                    name: String::from_utf8_lossy(trim_nul(&segment.segname)).into_owned(),
                    vmaddr: segment.vmaddr.get(endian),
                    vmsize: segment.vmsize.get(endian),
                    fileoff: segment.fileoff.get(endian),
                    filesize: segment.filesize.get(endian),
                    initprot: segment.initprot.get(endian).0,
                });
            } else if command.cmd() == macho::LC_UNIXTHREAD {
                entry = thread_pc(command.raw_data(), command_offset)?;
            } else if command.cmd() == macho::LC_MAIN {
                let main: &macho::EntryPointCommand<Endianness> = command
                    .data()
                    .map_err(|e| ImageError::object("Mach-O LC_MAIN", command_offset, e))?;
                main_offset = Some(main.entryoff.get(endian));
            }
        }
        if entry.is_none() {
            // LC_MAIN's entryoff is a file offset; the entry is where __TEXT maps it.
            entry = main_offset.and_then(|off| {
                segments
                    .iter()
                    .find(|s| s.name == "__TEXT")
                    .and_then(|t| t.vmaddr.checked_add(off.checked_sub(t.fileoff)?))
            });
        }
        let commands_end = 32 + u64::from(header.sizeofcmds(endian));
        Ok(MachOHeader {
            offset,
            size: size.unwrap_or(commands_end),
            cputype: header.cputype(endian).0,
            entry,
            segments,
        })
    }
}

/// Reads the program counter from an `LC_UNIXTHREAD` command: after the
/// 8-byte command header come `flavor` and `count`, then the registers.
fn thread_pc(command: &[u8], command_offset: u64) -> Result<Option<u64>> {
    let flavor = crate::read::u32_at(command, 8, "Mach-O LC_UNIXTHREAD flavor")?;
    let Some(index) = pc_index(flavor) else {
        return Ok(None);
    };
    let pc_at = 16 + index * 8;
    u64_at(command, pc_at, "Mach-O LC_UNIXTHREAD state")
        .map(Some)
        .map_err(|_| {
            ImageError::invalid(
                "Mach-O LC_UNIXTHREAD",
                command_offset,
                "thread state is shorter than its flavour's registers",
            )
        })
}

/// The Mach-O magic and x86-64 cputype an APE's embedded header must have.
pub(crate) fn is_ape_macho(data: &[u8], offset: u64) -> bool {
    let magic = crate::read::u32_at(data, offset, "Mach-O magic");
    let cputype = offset
        .checked_add(4)
        .map(|o| crate::read::u32_at(data, o, "Mach-O cputype"));
    matches!((magic, cputype), (Ok(macho::MH_MAGIC_64), Some(Ok(c))) if c == macho::CPU_TYPE_X86_64.0)
}
