//! Patched code listed for debuggers through the GDB JIT interface: each
//! patch's symbol file ([`crate::debug_file`]) is written into the
//! process's memory and linked into `__jit_debug_descriptor`'s list. gdb,
//! when it attaches (`gdb -p PID`, an IDE's gdb), reads that list and
//! loads every file on it, so breakpoints at FILE:LINE, `bt` and `info
//! symbol` work in new code without any relive command.
//!
//! A program that is not itself a JIT has no descriptor: the first patch
//! that brings debug information loads relive's own two-symbol library
//! ([`crate::jit_helper`]) with a remote `dlopen`, on the main thread while
//! it waits in a blocking system call (the loader allocates, see
//! [`crate::unwind::stop_at_quiet_point`]). Later patches reuse it.
//!
//! The list is changed only by plain memory writes (no call of
//! `__jit_debug_register_code`: relive is the process's tracer while it
//! patches, so no debugger can be attached to be told). An entry is
//! complete before the one word that links it is written, so a relive
//! killed at any point leaves a list that reads whole; one killed between
//! the journal's record and the link leaves a record whose entry is not
//! on the list, which taking it back tolerates.

use relive_process::alloc::{self, Placement};
use relive_process::{Process, Protection};

use crate::jit_helper;
use crate::journal::{DebugEntryRecord, DebugImagesRecord};
use crate::link::Resolver;
use crate::target::Target;

/// `struct jit_code_entry`: next, prev, symfile_addr, symfile_size.
const ENTRY_LEN: u64 = 32;
/// The smallest mapping made for symbol files.
const MAPPING_MIN: u64 = 1 << 20;
/// Entries followed before a list is taken as broken (a loop).
const MAX_ENTRIES: usize = 1 << 20;

/// Where the descriptor comes from.
enum Source {
    Existing(u64),
    /// relive's library, to load from `path` with the `dlopen` at `dlopen`.
    Load {
        path: String,
        dlopen: u64,
    },
}

/// One unit's symbol file, and where its code is.
pub struct Image<'a> {
    pub code: u64,
    /// Bytes of that code.
    pub len: u64,
    pub bytes: &'a [u8],
}

/// The descriptor gdb reads: one the journal's records use (relive's
/// library, loaded by an earlier patch, perhaps after this target's
/// symbols were read), else the program's own (a JIT's) or that library's
/// as the process's symbols show it.
pub fn descriptor(target: &Target) -> Option<u64> {
    let recorded = target
        .journal
        .regions
        .iter()
        .flat_map(|r| &r.debug_images)
        .map(|d| d.descriptor)
        .find(|&d| d != 0 && check_version(target.process, d).is_ok());
    if recorded.is_some() {
        return recorded;
    }
    target.resolver.global("__jit_debug_register_code")?;
    target.resolver.global("__jit_debug_descriptor")
}

/// Bytes `images` take in a mapping, each behind its entry.
fn images_len(images: &[Image]) -> u64 {
    images
        .iter()
        .map(|i| ENTRY_LEN + (i.bytes.len() as u64).next_multiple_of(16))
        .sum()
}

/// A new mapping of the process with room for at least `need` bytes of
/// symbol files ([`MAPPING_MIN`] at least: later patches into the same
/// pool fill it further without stopping a thread), loading relive's
/// library first if the process has no descriptor. Returns the record to
/// keep, with no entries yet, or why there is none.
fn place(target: &mut Target, need: u64, stranded: &mut Option<(u64, u64)>) -> Result<DebugImagesRecord, String> {
    let process = target.process;
    let source = match descriptor(target) {
        Some(d) => Source::Existing(d),
        None => {
            let dlopen = crate::remote_dlopen::glibc_dlopen(target)?;
            Source::Load {
                path: helper_file(target)?,
                dlopen,
            }
        }
    };
    let path_len = match &source {
        Source::Existing(_) => 0,
        Source::Load { path, .. } => (path.len() as u64 + 1).next_multiple_of(16),
    };
    let maps = process.maps().map_err(|e| e.to_string())?;
    // The loader allocates: it runs only where the main thread holds no
    // allocator lock. A mapping alone needs no such point.
    let mut stopped = match &source {
        Source::Load { .. } => crate::unwind::stop_at_quiet_point_within(process, crate::unwind::OPTIONAL_TRIES)?,
        Source::Existing(_) => process
            .stop_one()
            .map_err(|e| format!("the process could not be stopped: {e}"))?,
    };
    // Each try is recorded before it is mapped (see `mapping_pool`): a
    // relive killed before the mapping is recorded with its pool leaves
    // the next one able to free it.
    let (journal, dir) = (&mut target.journal, &target.journal_dir);
    let mut announce = |addr: u64, len: u64| {
        journal.mapping_pool = Some((addr, len));
        journal.save(dir).map_err(|e| std::io::Error::other(e.to_string()))
    };
    let mapped = alloc::allocate_announced(
        stopped.as_mut(),
        process.pid(),
        &maps,
        (path_len + need).max(MAPPING_MIN),
        Protection::READ,
        &Placement::anywhere(),
        &mut announce,
    );
    let placed = mapped.map_err(|e| e.to_string()).and_then(|mapping| {
        let descriptor = match &source {
            Source::Existing(d) => Ok(*d),
            Source::Load { path, dlopen } => load_helper(process, stopped.as_mut(), *dlopen, mapping.addr, path),
        };
        match descriptor {
            Ok(d) => Ok((mapping, d)),
            Err(why) => match stopped.unmap(mapping.addr, mapping.len) {
                Ok(()) => Err(why),
                // Recorded with the pool (no descriptor, no entries), so
                // that its release unmaps it.
                Err(e) => Err(format!(
                    "{why}; the {:#x} bytes mapped at {:#x} for it could not be unmapped yet ({e})",
                    mapping.len, mapping.addr
                ))
                .inspect_err(|_| *stranded = Some((mapping.addr, mapping.len))),
            },
        }
    });
    let resumed = stopped
        .resume()
        .map_err(|e| format!("the main thread could not be resumed: {e}"));
    if placed.is_err() {
        // Nothing stays mapped (or it is recorded as stranded, by the
        // caller): the mark must not make the next relive free memory
        // that is someone else's by then.
        target.journal.mapping_pool = None;
        let _ = target.journal.save(&target.journal_dir);
    }
    resumed?;
    let (mapping, descriptor) = placed?;
    Ok(DebugImagesRecord {
        addr: mapping.addr,
        len: mapping.len,
        used: path_len,
        descriptor,
        entries: Vec::new(),
    })
}

/// Writes `images` into `record`'s mapping after what it holds, each
/// behind its entry (not linked yet: [`link`]), and records the entries.
/// The threads run on: nothing reads this memory until it is linked.
fn write_images(process: &dyn Process, record: &mut DebugImagesRecord, images: &[Image]) -> Result<(), String> {
    let mut at = record.addr + record.used;
    for image in images {
        let file = at + ENTRY_LEN;
        let mut entry = [0u8; ENTRY_LEN as usize];
        entry[16..24].copy_from_slice(&file.to_le_bytes());
        entry[24..32].copy_from_slice(&(image.bytes.len() as u64).to_le_bytes());
        process
            .write(at, &entry)
            .and_then(|_| process.write(file, image.bytes))
            .map_err(|e| format!("the symbol file could not be written at {file:#x}: {e}"))?;
        record.entries.push(DebugEntryRecord {
            entry: at,
            code: image.code,
            len: image.len,
        });
        at = file + (image.bytes.len() as u64).next_multiple_of(16);
    }
    record.used = at - record.addr;
    Ok(())
}

/// Links `entries` at the head of the list of the descriptor at `d`.
fn link(process: &dyn Process, d: u64, entries: &[DebugEntryRecord]) -> Result<(), String> {
    check_version(process, d)?;
    for e in entries {
        let first = read_word(process, d + jit_helper::FIRST_ENTRY)?;
        write_word(process, e.entry, first)?;
        write_word(process, e.entry + 8, 0)?;
        if first != 0 {
            write_word(process, first + 8, e.entry)?;
        }
        // The word that makes it visible.
        write_word(process, d + jit_helper::FIRST_ENTRY, e.entry)?;
        write_word(process, d + jit_helper::RELEVANT_ENTRY, e.entry)?;
    }
    Ok(())
}

/// Takes each entry of `record` off the descriptor's list (one not on it
/// is left as it is). The caller unmaps the memory afterwards. The list
/// is read once and relinked around the entries that go: looked up one
/// by one, a pool of 150 patches' files took 150 walks of a 450-entry
/// list, every thread stopped meanwhile.
pub fn unlink(process: &dyn Process, record: &DebugImagesRecord) -> Result<(), String> {
    let d = record.descriptor;
    if record.entries.is_empty() {
        return Ok(());
    }
    check_version(process, d)?;
    let gone: foldhash::HashSet<u64> = record.entries.iter().map(|e| e.entry).collect();
    let list = entries(process, d)?;
    unlink_from(process, d, &list, &gone)
}

/// Takes the entries in `gone` off `list`, the list of the descriptor at
/// `d` as just read: each kept entry's neighbours are written where they
/// change, then the head, so that a relive killed meanwhile leaves a list
/// that reads whole from its head (the entries taken off stay in memory
/// until their pool goes).
fn unlink_from(process: &dyn Process, d: u64, list: &[u64], gone: &foldhash::HashSet<u64>) -> Result<(), String> {
    if !list.iter().any(|e| gone.contains(e)) {
        return Ok(());
    }
    let kept: Vec<u64> = list.iter().copied().filter(|e| !gone.contains(e)).collect();
    // Each entry's neighbours before and after, written where they change.
    let neighbours = |order: &[u64], k: usize| {
        let previous = k.checked_sub(1).map_or(0, |p| order[p]);
        (previous, order.get(k + 1).copied().unwrap_or(0))
    };
    let before: foldhash::HashMap<u64, (u64, u64)> = (0..list.len()).map(|k| (list[k], neighbours(list, k))).collect();
    // Back pointers first: a JIT that takes an entry off its list by
    // itself follows `prev`, which must never lead into an entry relive
    // took off (its memory goes with its pool) once a `next` skips it.
    for k in 0..kept.len() {
        let (previous, _) = neighbours(&kept, k);
        if previous != before[&kept[k]].0 {
            write_word(process, kept[k] + 8, previous)?;
        }
    }
    for k in 0..kept.len() {
        let (_, next) = neighbours(&kept, k);
        if next != before[&kept[k]].1 {
            write_word(process, kept[k], next)?;
        }
    }
    if kept.first() != list.first() {
        write_word(process, d + jit_helper::FIRST_ENTRY, kept.first().copied().unwrap_or(0))?;
    }
    if gone.contains(&read_word(process, d + jit_helper::RELEVANT_ENTRY)?) {
        write_word(process, d + jit_helper::RELEVANT_ENTRY, 0)?;
    }
    Ok(())
}

/// The entries on the list of the descriptor at `descriptor`, in order.
fn entries(process: &dyn Process, descriptor: u64) -> Result<Vec<u64>, String> {
    let mut list = Vec::new();
    let mut current = read_word(process, descriptor + jit_helper::FIRST_ENTRY)?;
    while current != 0 {
        if list.len() >= MAX_ENTRIES {
            return Err(format!("the debugger list at {descriptor:#x} does not end"));
        }
        list.push(current);
        current = read_word(process, current)?;
    }
    Ok(list)
}

/// The entries on the list of the descriptor at `descriptor` (none when
/// it cannot be read).
pub fn listed_entries(process: &dyn Process, descriptor: u64) -> foldhash::HashSet<u64> {
    entries(process, descriptor).unwrap_or_default().into_iter().collect()
}

/// Writes relive's library into the state directory (if it is not there
/// already as this relive builds it) and gives its path.
fn helper_file(target: &Target) -> Result<String, String> {
    let bytes = jit_helper::library();
    let dir = &target.journal_dir;
    let same = matches!(dir.read_private(jit_helper::FILE_NAME), Ok(Some(old)) if old == bytes);
    if !same {
        dir.write_private(jit_helper::FILE_NAME, &bytes)
            .map_err(|e| format!("its library for debuggers could not be written: {e}"))?;
    }
    Ok(dir.path().join(jit_helper::FILE_NAME).display().to_string())
}

/// Loads the library at `path` with the process's `dlopen` at `dlopen`
/// (its path written at `scratch`), on the stopped main thread, and gives
/// the address of its descriptor.
fn load_helper(
    process: &dyn Process,
    stopped: &mut dyn relive_process::Stopped,
    dlopen: u64,
    scratch: u64,
    path: &str,
) -> Result<u64, String> {
    crate::remote_dlopen::call(process, stopped, dlopen, scratch, path)?;
    let (base, _) = crate::remote_dlopen::mapped(process, path)?
        .ok_or_else(|| format!("dlopen({path}) returned without loading it (can the process read the file?)"))?;
    let descriptor = base + jit_helper::DESCRIPTOR;
    check_version(process, descriptor)?;
    Ok(descriptor)
}

fn check_version(process: &dyn Process, descriptor: u64) -> Result<(), String> {
    let mut version = [0u8; 4];
    process
        .read(descriptor, &mut version)
        .map_err(|e| format!("the debugger descriptor at {descriptor:#x} could not be read: {e}"))?;
    if u32::from_le_bytes(version) != 1 {
        return Err(format!(
            "the debugger descriptor at {descriptor:#x} has version {}, not 1",
            u32::from_le_bytes(version)
        ));
    }
    Ok(())
}

fn read_word(process: &dyn Process, addr: u64) -> Result<u64, String> {
    let mut word = [0u8; 8];
    process
        .read(addr, &mut word)
        .map_err(|e| format!("the debugger list could not be read at {addr:#x}: {e}"))?;
    Ok(u64::from_le_bytes(word))
}

fn write_word(process: &dyn Process, addr: u64, value: u64) -> Result<(), String> {
    process
        .write(addr, &value.to_le_bytes())
        .map_err(|e| format!("the debugger list could not be written at {addr:#x}: {e}"))
}

/// Lists `files` (each unit's code address, its length and its symbol
/// file) for
/// debuggers: written into the mapping of the pool at `pool_index` that
/// has room (a new one otherwise), recorded with the pool (so the pool's
/// release takes them back), then linked.
pub fn list(target: &mut Target, pool_index: usize, files: &[(u64, u64, &[u8])]) -> Result<(), String> {
    let images: Vec<Image> = files
        .iter()
        .map(|&(code, len, bytes)| Image { code, len, bytes })
        .collect();
    let need = images_len(&images);
    let pool_images = &target.journal.regions[pool_index].debug_images;
    let roomy = pool_images
        .iter()
        .position(|r| r.descriptor != 0 && r.len - r.used.min(r.len) >= need)
        .map(|i| (i, pool_images[i].clone()));
    let (index, mut record) = match roomy {
        Some(found) => found,
        None => {
            let mut stranded = None;
            let placed = place(target, need, &mut stranded);
            if let Some((addr, len)) = stranded {
                target.journal.regions[pool_index].debug_images.push(DebugImagesRecord {
                    addr,
                    len,
                    ..Default::default()
                });
                let _ = target.journal.save(&target.journal_dir);
            }
            let placed = placed?;
            crate::apply::failpoint("debuggers-after-map");
            (target.journal.regions[pool_index].debug_images.len(), placed)
        }
    };
    let listed_before = record.entries.len();
    write_images(target.process, &mut record, &images)?;
    let images_of_pool = &mut target.journal.regions[pool_index].debug_images;
    match images_of_pool.get_mut(index) {
        Some(r) => *r = record.clone(),
        None => images_of_pool.push(record.clone()),
    }
    // Recorded with its pool from here on.
    target.journal.mapping_pool = None;
    target
        .journal
        .save(&target.journal_dir)
        .map_err(|e| format!("the journal could not be saved: {e}"))?;
    crate::apply::failpoint("debuggers-before-link");
    link(target.process, record.descriptor, &record.entries[listed_before..])
}

/// Keeps relive's debugger list to the symbol files of code that can
/// still run: a file whose code holds no function in force any more (each
/// one patched again since, or reverted: see the journal's
/// `code_blocks`) and that no thread is in (`in_use`: whether some thread
/// may run code at `[start, end)`) comes off it, and with `relist`, one
/// whose code is in force again (`revert --last`) goes back on. gdb read
/// every file of the list, so `break f` stopped in every superseded
/// generation of `f` too, while only the newest runs.
///
/// Only the list of relive's own library (`librelive-jit-debug.so`),
/// which nothing but relive writes: a JIT program's own list changes
/// under it while the program runs. The list in the process is the
/// record of what is listed: a relive killed meanwhile leaves it whole
/// from its head, and the next command sets it right. Not `relist` after
/// a patch: a file a patch left off the list because its record could
/// not be saved must stay off (the next relive would not know to take it
/// back before freeing its memory). Returns how many files came off and
/// went on; a list it cannot read or write is said, and the others are
/// still kept.
pub fn keep_to_live(
    process: &dyn Process,
    journal: &crate::journal::Journal,
    (in_use, maps): (&dyn Fn(u64, u64) -> bool, Option<&[relive_process::Mapping]>),
    relist: bool,
) -> Result<(usize, usize), String> {
    if journal.code_blocks.is_none() {
        return Ok((0, 0)); // an older relive's journal: each file stays
    }
    // A record of an older relive (or rewritten by one) has no length:
    // its code counts as in force. Superseded code a thread is in stays
    // listed; superseded code that is off the list was so when no thread
    // was in it, and no new call enters it.
    let in_force = |e: &DebugEntryRecord| e.len == 0 || journal.in_live_block(e.code) == Some(true);
    let goes = |e: &DebugEntryRecord| !in_force(e) && !in_use(e.code, e.code + e.len);
    let mut by_descriptor: foldhash::HashMap<u64, Vec<&DebugEntryRecord>> = Default::default();
    for images in journal.regions.iter().flat_map(|r| &r.debug_images) {
        if images.descriptor != 0 {
            by_descriptor
                .entry(images.descriptor)
                .or_default()
                .extend(&images.entries);
        }
    }
    if by_descriptor.is_empty() {
        return Ok((0, 0));
    }
    // The process's mappings as the caller read them, else read now.
    let read;
    let maps = match maps {
        Some(maps) => maps,
        None => {
            read = process.maps().map_err(|e| e.to_string())?;
            &read[..]
        }
    };
    let relives_own = |d: u64| {
        maps.iter()
            .any(|m| m.contains(d) && m.path.ends_with(&format!("/{}", jit_helper::FILE_NAME)))
    };
    let (mut off, mut on) = (0, 0);
    let mut failed = Vec::new();
    for (d, recorded) in by_descriptor {
        // The list is read only where something may change.
        let may_go = recorded.iter().any(|e| goes(e));
        let may_come_back = relist && recorded.iter().any(|e| in_force(e));
        if !relives_own(d) || !(may_go || may_come_back) {
            continue;
        }
        let kept = check_version(process, d).and_then(|()| {
            let list = entries(process, d)?;
            let listed: foldhash::HashSet<u64> = list.iter().copied().collect();
            let gone: foldhash::HashSet<u64> = recorded
                .iter()
                .filter(|e| listed.contains(&e.entry) && goes(e))
                .map(|e| e.entry)
                .collect();
            let mut back: Vec<DebugEntryRecord> = match relist {
                true => recorded
                    .iter()
                    .filter(|e| !listed.contains(&e.entry) && in_force(e))
                    .map(|e| **e)
                    .collect(),
                false => Vec::new(),
            };
            // One entry linked twice would make the list a loop.
            back.sort_by_key(|e| e.entry);
            back.dedup_by_key(|e| e.entry);
            unlink_from(process, d, &list, &gone)?;
            link(process, d, &back)?;
            Ok((gone.len(), back.len()))
        });
        match kept {
            Ok((gone, back)) => {
                off += gone;
                on += back;
            }
            Err(why) => failed.push(why),
        }
    }
    match failed.is_empty() {
        true => Ok((off, on)),
        false => Err(failed.join("; ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::{DebugImagesRecord, Journal, RegionRecord};
    use crate::test_memory::Memory;

    /// relive's library mapped at 0x10000, its descriptor inside it, and
    /// `n` entries at 0x20000 + 0x100 k, linked in that order.
    fn listed(n: u64) -> (Memory, u64, Vec<u64>) {
        let mut memory = Memory::zeroed(0x10000, 0x20000);
        memory.mappings = vec![relive_process::Mapping {
            start: 0x10000,
            end: 0x13000,
            perms: "rw-p".into(),
            offset: 0,
            dev: "08:01".into(),
            inode: 1,
            path: format!("/state/{}", jit_helper::FILE_NAME),
        }];
        let d = 0x10000 + jit_helper::DESCRIPTOR;
        memory.write(d, &1u32.to_le_bytes()).unwrap();
        let entries: Vec<u64> = (0..n).map(|k| 0x20000 + 0x100 * k).collect();
        // Linked as `link` does: each new one at the head.
        for &e in entries.iter().rev() {
            link(
                &memory,
                d,
                &[DebugEntryRecord {
                    entry: e,
                    code: 0,
                    len: 0,
                }],
            )
            .unwrap();
        }
        assert_eq!(super::entries(&memory, d).unwrap(), entries);
        (memory, d, entries)
    }

    /// Every entry on the list read from the head has a back pointer to
    /// an entry on that list (or none): what a JIT that unlinks by itself
    /// follows.
    fn back_pointers_stay_on(memory: &Memory, d: u64) -> bool {
        let list = super::entries(memory, d).unwrap();
        list.iter()
            .all(|&e| read_word(memory, e + 8).is_ok_and(|p| p == 0 || list.contains(&p)))
    }

    #[test]
    fn entries_come_off_wherever_they_are() {
        let (memory, d, e) = listed(5);
        let gone: foldhash::HashSet<u64> = [e[0], e[2], e[4]].into_iter().collect();
        unlink_from(&memory, d, &e, &gone).unwrap();
        assert_eq!(super::entries(&memory, d).unwrap(), [e[1], e[3]]);
        assert_eq!(read_word(&memory, e[1] + 8).unwrap(), 0);
        assert_eq!(read_word(&memory, e[3] + 8).unwrap(), e[1]);
        assert!(back_pointers_stay_on(&memory, d));
    }

    #[test]
    fn a_relive_killed_while_it_unlinks_leaves_a_list_that_reads_whole() {
        let (probe, d, e) = listed(4);
        let gone: foldhash::HashSet<u64> = [e[1], e[3]].into_iter().collect();
        probe.writes_left.set(Some(usize::MAX));
        unlink_from(&probe, d, &e, &gone).unwrap();
        let writes = usize::MAX - probe.writes_left.get().unwrap();
        for killed_after in 0..writes {
            let (memory, d, e) = listed(4);
            memory.writes_left.set(Some(killed_after));
            assert!(unlink_from(&memory, d, &e, &gone).is_err());
            let now = super::entries(&memory, d).unwrap();
            // The kept entries in order, maybe with some of those going.
            assert!(now.iter().all(|x| e.contains(x)), "{killed_after}: {now:x?}");
            assert!([e[0], e[2]].iter().all(|x| now.contains(x)), "{killed_after}: {now:x?}");
            assert!(back_pointers_stay_on(&memory, d), "{killed_after}: {now:x?}");
        }
    }

    #[test]
    fn only_superseded_files_no_thread_runs_come_off_and_revert_lists_them_again() {
        let (memory, d, e) = listed(3);
        let record = |entry: u64, code: u64| DebugEntryRecord { entry, code, len: 0x40 };
        let mut journal = Journal::default();
        journal.regions = vec![RegionRecord {
            debug_images: vec![DebugImagesRecord {
                descriptor: d,
                entries: vec![record(e[0], 0x5000), record(e[1], 0x5100), record(e[2], 0x5200)],
                ..Default::default()
            }],
            ..Default::default()
        }];
        // 0x5000's block and 0x5100's are superseded; a thread is in
        // 0x5100's code.
        journal.code_blocks = Some(vec![(0x5200, 0x5300)]);
        let in_use = |start: u64, _end: u64| start == 0x5100;
        assert_eq!(keep_to_live(&memory, &journal, (&in_use, None), false), Ok((1, 0)));
        assert_eq!(super::entries(&memory, d).unwrap(), [e[1], e[2]]);
        // `revert --last` back to 0x5000's code: listed again.
        let mut back = journal.clone();
        back.code_blocks = Some(vec![(0x5000, 0x5100)]);
        assert_eq!(keep_to_live(&memory, &back, (&|_, _| true, None), true), Ok((0, 1)));
        let now = super::entries(&memory, d).unwrap();
        assert_eq!(now.len(), 3);
        assert!(now.contains(&e[0]));
        // A program's own list (not relive's library) is left alone.
        let mut theirs = journal.clone();
        theirs.code_blocks = Some(Vec::new());
        let (mut other, d2, _) = listed(3);
        other.mappings[0].path = "/usr/lib/libjit.so".into();
        theirs.regions[0].debug_images[0].descriptor = d2;
        assert_eq!(keep_to_live(&other, &theirs, (&|_, _| false, None), false), Ok((0, 0)));
        assert_eq!(super::entries(&other, d2).unwrap().len(), 3);
    }
}
