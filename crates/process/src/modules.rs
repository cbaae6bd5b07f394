//! Which executable files a process has mapped, where, and with what load
//! bias: the program's own image and its shared libraries.
//!
//! The program is normally `/proc/PID/exe`. An APE started through its
//! loader is the exception: `exe` is the loader (`~/.ape-1.10`,
//! `/usr/bin/ape`) and the program is only visible as an APE file mapped at
//! its link address. So when the executable is not itself an APE and an
//! APE file is mapped, that file is the program.
//!
//! A file rebuilt or replaced on disk since the process mapped it is read
//! from the process's own view of it (`/proc/PID/exe`,
//! `/proc/PID/map_files/…`), which still opens the old inode: its symbols
//! are the running code's. The kernel's vDSO, which has no file, is read
//! out of the process's memory.

pub mod vdso;

use foldhash::{HashMap, HashMapExt};
use std::sync::Arc;

use relive_image::elf::{ElfHeader, Segment, SegmentType};
use relive_image::{Arch, Image};
use serde::Serialize;

use crate::error::{ProcessError, Result};
use crate::maps::Mapping;
use crate::Process;

const PAGE: u64 = 4096;
/// `e_type` of an executable linked at fixed addresses (not PIE).
const ET_EXEC: u16 = 2;

/// One mapped executable file.
#[derive(Debug, Clone, Serialize)]
pub struct Module {
    /// The file's path (without the kernel's ` (deleted)` suffix).
    pub path: String,
    /// The mapped file has been deleted or replaced since it was mapped
    /// (the kernel marks it ` (deleted)`): `path` may now name another file.
    pub deleted: bool,
    /// `major:minor` of the file's device, as in `/proc/PID/maps`.
    pub dev: String,
    pub inode: u64,
    /// Start of the image in memory (lowest page of its first segment).
    pub base: u64,
    /// End of the image in memory, including its zero-filled bss.
    pub end: u64,
    /// What to add to an address in the file's symbol table or program
    /// headers to get the address in this process (0 for non-PIE programs
    /// and for APEs, which are linked at their load address).
    pub load_bias: u64,
    /// `ape`, `ape-assimilated`, `elf`…; absent when the file could not be
    /// read (deleted, or in another mount namespace).
    pub format: Option<&'static str>,
    /// Where the image was read from.
    pub source: ImageSource,
}

/// Where a module's image was read from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ImageSource {
    /// The file at the module's path ([`crate::identity::verify`] checks
    /// that it is the one mapped).
    Path,
    /// The mapped file itself, through `file` (`/proc/PID/exe`,
    /// `/proc/PID/map_files/…`): the path on disk names another file now,
    /// or none (the program was rebuilt or replaced while it ran).
    Running { file: String },
    /// The process's memory: the kernel's vDSO, which has no file.
    Memory,
}

impl Module {
    pub fn contains(&self, addr: u64) -> bool {
        self.base <= addr && addr < self.end
    }
}

/// A module and the parsed file behind it.
#[derive(Clone)]
pub struct LoadedModule {
    pub module: Module,
    pub image: Option<Arc<Image>>,
    /// Why `image` is missing, when it is.
    pub image_error: Option<String>,
    pub mappings: Vec<Mapping>,
}

/// The program image and every shared library of one process.
#[derive(Clone)]
pub struct ProcessModules {
    pub pid: u32,
    /// `/proc/PID/exe`: the program, or the APE loader that runs it.
    pub exe: String,
    pub main: LoadedModule,
    pub libraries: Vec<LoadedModule>,
}

impl ProcessModules {
    /// The main image first, then the libraries in address order.
    pub fn all(&self) -> impl Iterator<Item = &LoadedModule> {
        std::iter::once(&self.main).chain(&self.libraries)
    }

    /// The module whose image range contains `addr`.
    pub fn containing(&self, addr: u64) -> Option<&LoadedModule> {
        self.all().find(|m| m.module.contains(addr))
    }
}

/// Finds the program image and shared libraries of `process`.
pub fn discover(process: &dyn Process) -> Result<ProcessModules> {
    let maps = process.maps()?;
    let exe = process.exe()?.to_string_lossy().into_owned();
    let exe = exe.strip_suffix(" (deleted)").map(str::to_string).unwrap_or(exe);
    let pid = process.pid();
    let mut modules: Vec<LoadedModule> = group_files(&maps)
        .into_iter()
        .map(|group| load(process, group))
        .collect();
    let is_ape = |m: &LoadedModule| m.image.as_ref().is_some_and(|i| i.format().is_ape());
    let exe_index = modules.iter().position(|m| m.module.path == exe);
    let main_index = match exe_index {
        Some(i) if is_ape(&modules[i]) => Some(i),
        // The executable is a loader (or not mapped under its name): the
        // program is the APE file it mapped, if any.
        _ => modules.iter().position(is_ape).or(exe_index),
    };
    let Some(main_index) = main_index else {
        return Err(ProcessError::NoImage { pid, exe });
    };
    let main = modules.remove(main_index);
    // Last, so that a name both libc and the vDSO define is libc's.
    modules.extend(vdso::load(process, &maps));
    Ok(ProcessModules {
        pid,
        exe,
        main,
        libraries: modules,
    })
}

/// Groups file mappings by file, keeping files with executable code.
fn group_files(maps: &[Mapping]) -> Vec<Vec<Mapping>> {
    let mut order: Vec<(String, u64, String)> = Vec::new();
    let mut groups: HashMap<(String, u64, String), Vec<Mapping>> = HashMap::new();
    for m in maps.iter().filter(|m| m.is_file()) {
        let key = (m.dev.clone(), m.inode, m.path.clone());
        let group = groups.entry(key.clone()).or_default();
        if group.is_empty() {
            order.push(key);
        }
        group.push(m.clone());
    }
    order
        .into_iter()
        .filter_map(|key| groups.remove(&key))
        .filter(|group| group.iter().any(Mapping::executable))
        .collect()
}

/// Whether `path` is the file with device `dev` (`major:minor`, as in
/// `/proc/PID/maps`) and `inode`.
fn same_file(path: &std::path::Path, dev: &str, inode: u64) -> bool {
    std::fs::metadata(path).is_ok_and(|meta| {
        use std::os::unix::fs::MetadataExt;
        meta.ino() == inode && crate::device::same_dev(meta.dev(), dev)
    })
}

/// The file to read a module's image from: its path when that still names
/// the mapped file, else the process's own view of the mapped file (which
/// opens the old inode even when it has been deleted or replaced).
fn image_file(process: &dyn Process, first: &Mapping, path: &str) -> (String, ImageSource) {
    if same_file(path.as_ref(), &first.dev, first.inode) {
        return (path.to_string(), ImageSource::Path);
    }
    match process
        .mapped_file_paths(first)
        .into_iter()
        .find(|p| same_file(p, &first.dev, first.inode))
    {
        Some(running) => {
            let file = running.to_string_lossy().into_owned();
            (file.clone(), ImageSource::Running { file })
        }
        // Neither opens the mapped file: read the path (verify explains).
        None => (path.to_string(), ImageSource::Path),
    }
}

fn load(process: &dyn Process, mappings: Vec<Mapping>) -> LoadedModule {
    let first = &mappings[0];
    let (path, deleted) = match first.path.strip_suffix(" (deleted)") {
        Some(path) => (path.to_string(), true),
        None => (first.path.clone(), false),
    };
    let (file, source) = image_file(process, first, &path);
    let lowest = mappings.iter().map(|m| m.start).min().unwrap_or(first.start);
    let highest = mappings.iter().map(|m| m.end).max().unwrap_or(first.end);
    let module = Module {
        path: path.clone(),
        deleted,
        dev: first.dev.clone(),
        inode: first.inode,
        base: lowest,
        end: highest,
        // Without the file, assume the usual shared-object layout: the
        // mapping of file offset 0 is at the image's link address 0.
        load_bias: mappings.iter().find(|m| m.offset == 0).map_or(lowest, |m| m.start),
        format: None,
        source,
    };
    let (image, image_error) = match Image::open(&file) {
        Ok(image) => (Some(Arc::new(image)), None),
        Err(e) => (None, Some(e.to_string())),
    };
    finish(module, image, image_error, mappings)
}

/// Completes `module` from its parsed image: format, load bias and extent.
pub(crate) fn finish(
    mut module: Module,
    image: Option<Arc<Image>>,
    image_error: Option<String>,
    mappings: Vec<Mapping>,
) -> LoadedModule {
    if let Some(image) = &image {
        module.format = Some(image.format().name());
        if let Some(elf) = host_elf(image) {
            if let Some(bias) = load_bias(elf, &mappings) {
                module.load_bias = bias;
                if let Some((lo, hi)) = load_extent(&elf.segments) {
                    module.base = lo.wrapping_add(bias);
                    module.end = hi.wrapping_add(bias);
                }
            }
        }
    }
    LoadedModule {
        module,
        image,
        image_error,
        mappings,
    }
}

/// The ELF header this machine runs (an APE has one per architecture).
pub fn host_elf(image: &Image) -> Option<&ElfHeader> {
    let layout = image.layout();
    layout.elf_for(Arch::host()).or(layout.elf.first())
}

/// The load bias of an ELF image mapped as `mappings`.
///
/// A fixed-address executable (`ET_EXEC`, which includes every APE) is
/// loaded where it was linked: bias 0. Otherwise the mapping of a load
/// segment's first page sits `bias` above that page's link address.
pub fn load_bias(elf: &ElfHeader, mappings: &[Mapping]) -> Option<u64> {
    if elf.e_type == ET_EXEC {
        return Some(0);
    }
    let loads: Vec<&Segment> = elf
        .segments
        .iter()
        .filter(|s| s.kind == SegmentType::LOAD && s.memsz > 0)
        .collect();
    let mut by_address: Vec<&Mapping> = mappings.iter().collect();
    by_address.sort_by_key(|m| m.start);
    by_address.iter().find_map(|m| {
        let segment = loads.iter().find(|s| s.offset & !(PAGE - 1) == m.offset)?;
        Some(m.start.wrapping_sub(segment.vaddr & !(PAGE - 1)))
    })
}

/// The link-time address range of the load segments, page-rounded.
fn load_extent(segments: &[Segment]) -> Option<(u64, u64)> {
    let loads = segments.iter().filter(|s| s.kind == SegmentType::LOAD && s.memsz > 0);
    let lo = loads.clone().map(|s| s.vaddr & !(PAGE - 1)).min()?;
    let hi = loads
        .map(|s| s.vaddr.saturating_add(s.memsz).saturating_add(PAGE - 1) & !(PAGE - 1))
        .max()?;
    Some((lo, hi))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::maps::parse_line;
    use relive_image::elf::SegmentFlags;

    fn segment(offset: u64, vaddr: u64, memsz: u64) -> Segment {
        Segment {
            kind: SegmentType::LOAD,
            flags: SegmentFlags(5),
            offset,
            vaddr,
            filesz: memsz,
            memsz,
            align: PAGE,
        }
    }

    #[test]
    fn pie_bias_comes_from_the_first_matching_mapping() {
        let segments = vec![segment(0, 0, 0x800), segment(0x1000, 0x1000, 0x2345)];
        let maps = vec![
            parse_line("5555a000-5555b000 r--p 00000000 fd:01 7 /p").unwrap(),
            parse_line("5555b000-5555e000 r-xp 00001000 fd:01 7 /p").unwrap(),
        ];
        let mut elf = ElfHeader {
            header_offset: 0,
            machine: Arch::X86_64,
            e_machine: 62,
            e_type: 3,
            class: 64,
            entry: 0,
            phoff: 64,
            phnum: 2,
            e_flags: 0,
            segments,
            sections: Vec::new(),
            build_id: None,
        };
        assert_eq!(load_bias(&elf, &maps), Some(0x5555a000));
        assert_eq!(load_extent(&elf.segments), Some((0, 0x4000)));
        elf.e_type = ET_EXEC;
        assert_eq!(load_bias(&elf, &maps), Some(0));
        assert_eq!(load_bias(&ElfHeader { e_type: 3, ..elf }, &[]), None);
    }
}
