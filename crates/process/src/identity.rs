//! Is the file on disk the one the process is running?
//!
//! A rebuilt program resolved against its new file would patch the old
//! code with the wrong addresses, silently (libpulp#58, jet-live#28). So
//! before symbols are trusted: when the file has a GNU build-id, the note
//! in the process's memory must equal the file's; otherwise the path must
//! still name the mapped inode on the mapped device, and must not have
//! been modified since the process started.
//!
//! A module read from the process's own view of its mapped file
//! (`/proc/PID/exe` after a rebuild) or from its memory (the vDSO) is the
//! running image by construction; the former comes with a warning that
//! the file on disk is not what runs.

use std::os::unix::fs::MetadataExt;

use relive_image::elf::SegmentType;
use serde::Serialize;

use crate::device::{dev_string, parse_dev, same_dev_string};
use crate::error::{ProcessError, Result};
use crate::modules::{host_elf, ImageSource, LoadedModule};
use crate::Process;

const PT_NOTE: SegmentType = SegmentType(4);
/// Build-id notes are a few dozen bytes; a note segment larger than this
/// is not worth reading from the process.
const MAX_NOTE_BYTES: u64 = 64 << 10;

/// What identifies a file's contents without reading them all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Fingerprint {
    pub path: String,
    /// `major:minor` in hex, as `/proc/PID/maps` prints it.
    pub dev: String,
    pub inode: u64,
    pub size: u64,
    /// Modification time, seconds since the epoch.
    pub mtime: i64,
    pub build_id: Option<String>,
}

/// How a module was confirmed to be the file on disk.
#[derive(Debug, Clone, Serialize)]
pub struct Verified {
    /// `build-id` or `inode-and-mtime`; `running-image` when the path on
    /// disk names another file now and the image was read from the mapped
    /// file itself; `memory` for the vDSO.
    pub method: &'static str,
    pub fingerprint: Fingerprint,
    /// Something the user should know (the file on disk is not what runs).
    pub warning: Option<String>,
}

/// Reads a file's fingerprint (`build_id` is left for the caller, who has
/// parsed the file).
pub fn fingerprint(path: &str) -> std::io::Result<Fingerprint> {
    let meta = std::fs::metadata(path)?;
    Ok(Fingerprint {
        path: path.to_string(),
        dev: dev_string(meta.dev()),
        inode: meta.ino(),
        size: meta.size(),
        mtime: meta.mtime(),
        build_id: None,
    })
}

/// Confirms that `loaded`'s file on disk is what `process` has mapped.
pub fn verify(process: &dyn Process, loaded: &LoadedModule) -> Result<Verified> {
    let pid = process.pid();
    let path = loaded.module.path.clone();
    let mismatch = |why: String| ProcessError::Mismatch {
        pid,
        path: path.clone(),
        why,
    };
    match &loaded.module.source {
        ImageSource::Path => {}
        ImageSource::Memory => {
            return Ok(Verified {
                method: "memory",
                fingerprint: Fingerprint {
                    path: path.clone(),
                    dev: loaded.module.dev.clone(),
                    inode: loaded.module.inode,
                    size: loaded.module.end - loaded.module.base,
                    mtime: 0,
                    build_id: None,
                },
                warning: None,
            })
        }
        ImageSource::Running { file } => {
            let mut print = fingerprint(file).map_err(|e| mismatch(format!("{file} cannot be read ({e})")))?;
            if print.inode != loaded.module.inode || !same_dev_string(&print.dev, &loaded.module.dev) {
                return Err(mismatch(format!(
                    "{file} now opens inode {} on device {}, not the mapped inode {}",
                    print.inode, print.dev, loaded.module.inode
                )));
            }
            print.build_id = loaded
                .image
                .as_deref()
                .and_then(host_elf)
                .and_then(|e| e.build_id.clone());
            // The kernel prints the path's bytes, which relive reads as
            // UTF-8 (see `procfs::read_lossy`): one that is not cannot be
            // opened by that name, though nothing was rebuilt.
            let warning = if path.contains(char::REPLACEMENT_CHARACTER) {
                format!(
                    "the path of process {pid}'s file is not UTF-8 ({path}, as relive shows it), so relive reads it through {file}, the process's own view of it"
                )
            } else {
                let now = match fingerprint(&path) {
                    Ok(_) => "names a newer build",
                    Err(_) => "is gone",
                };
                format!(
                    "{path} on disk is not the file process {pid} runs (it was rebuilt or replaced after the program started, and the path {now}): symbols are read from the running image through {file}; compile patches from the source of the running build"
                )
            };
            return Ok(Verified {
                method: "running-image",
                fingerprint: print,
                warning: Some(warning),
            });
        }
    }
    let mut print = fingerprint(&path).map_err(|e| mismatch(format!("it cannot be read ({e})")))?;
    let image = loaded.image.as_ref().ok_or_else(|| {
        mismatch(
            loaded
                .image_error
                .clone()
                .unwrap_or_else(|| "it cannot be parsed".into()),
        )
    })?;
    let elf = host_elf(image);
    print.build_id = elf.and_then(|e| e.build_id.clone());

    if let Some(same) = elf.and_then(|elf| mapped_notes_match(process, image.data(), elf, loaded.module.load_bias)) {
        if !same {
            return Err(mismatch(format!(
                "its build-id {} differs from the one in the process's memory",
                print.build_id.as_deref().unwrap_or("?")
            )));
        }
        return Ok(Verified {
            method: "build-id",
            fingerprint: print,
            warning: None,
        });
    }

    if loaded.module.deleted {
        return Err(mismatch(
            format!("the file the process mapped was deleted or replaced after the program started, and relive cannot open the running image (/proc/{pid}/map_files needs CAP_CHECKPOINT_RESTORE or root)"),
        ));
    }
    if parse_dev(&print.dev) != parse_dev(&loaded.module.dev) || print.inode != loaded.module.inode {
        return Err(mismatch(format!(
            "the path now names inode {} on device {}, but the process mapped inode {} on device {} (the file was rebuilt or replaced after the program started, and relive cannot open the running image: /proc/{pid}/map_files needs CAP_CHECKPOINT_RESTORE or root)",
            print.inode, print.dev, loaded.module.inode, loaded.module.dev
        )));
    }
    let started = process.start_time()?;
    // Start times have one-second resolution and a build often finishes
    // in the same second the program starts: allow that second.
    if print.mtime > started as i64 + 1 {
        return Err(mismatch(format!(
            "it was modified at {} (Unix time), after the process started at {started}",
            print.mtime
        )));
    }
    Ok(Verified {
        method: "inode-and-mtime",
        fingerprint: print,
        warning: None,
    })
}

/// Compares every note segment of the file (one of them carries the
/// build-id) with the same bytes in the process. `None` when there is no
/// build-id or no note is mapped (then the caller falls back to inode and
/// mtime).
fn mapped_notes_match(
    process: &dyn Process,
    file: &[u8],
    elf: &relive_image::elf::ElfHeader,
    bias: u64,
) -> Option<bool> {
    elf.build_id.as_ref()?;
    let compared: Vec<bool> = elf
        .segments
        .iter()
        .filter(|s| s.kind == PT_NOTE && s.filesz > 0 && s.filesz <= MAX_NOTE_BYTES)
        .filter_map(|s| {
            let start = usize::try_from(s.offset).ok()?;
            let on_disk = file.get(start..start.checked_add(s.filesz as usize)?)?;
            let mut in_memory = vec![0u8; on_disk.len()];
            process.read(s.vaddr.wrapping_add(bias), &mut in_memory).ok()?;
            Some(in_memory == on_disk)
        })
        .collect();
    (!compared.is_empty()).then(|| compared.iter().all(|&same| same))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_numbers_print_like_proc_maps() {
        assert_eq!(dev_string(0xfe00), "fe:00");
        assert_eq!(dev_string(0x0803), "08:03");
        // Large minors spill into the high bits (e.g. 259:1048576).
        assert_eq!(
            parse_dev(&dev_string((0x103 << 8) | (0x100 << 12))),
            Some((0x103, 0x100))
        );
        assert_eq!(parse_dev("fe:00"), parse_dev("0fe:000"));
        assert_eq!(parse_dev("bad"), None);
    }
}
