//! What relive has done to a process, kept on disk so a later invocation
//! can show it (`relive status`), patch the same function again through its
//! existing jump slot, and revert it.
//!
//! One file per target process, named by pid and start time (a pid is
//! reused; the pair is not): a log of JSON states, one line each, the last
//! whole line current. A change appends its state; a relive killed during
//! the append leaves a torn last line, which readers skip (the state
//! before, with the change's intent, which settles it). Appending, not
//! renaming a new file over the old one: on ext4 a rename over an existing
//! file forces the new file's blocks to be allocated at once, and that
//! flush cost more than the rest of a 100-function re-patch's journal work
//! together. The log is compacted (rewritten atomically, renamed) when it
//! grows past [`JOURNAL_FILE_LIMIT`].
//!
//! A relive killed half-way (SIGKILL, a crash, the machine's OOM killer)
//! must not leave the journal describing another process than the real
//! one: a later patch would reuse pool memory that running code lives in,
//! and a later revert would refuse (or write wrong bytes). So every change
//! is written ahead ([`Intent`]): before the first write into the process,
//! the journal records the state it will have afterwards and each write it
//! is about to make; once done, the state is adopted and the intent
//! cleared. Whoever finds an intent left behind ([`Journal::recover`])
//! reads the process to see which writes happened and keeps, for each
//! patch record, the version that matches memory.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::{PatchError, Result};
use crate::state::{Stamp, StateDir};

/// One patched function.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatchRecord {
    pub name: String,
    /// The function's original entry in the program.
    pub orig_addr: u64,
    /// Where calls to it go now.
    pub current_addr: u64,
    /// 1 for the first patch, +1 for each later one.
    pub generation: u32,
    /// `jump`, `near` (through a stub in the pool) or `pad`: how the
    /// entry was redirected. Revert needs only the span and its bytes, so
    /// journals of any method read back alike.
    pub method: String,
    /// The bytes overwritten to redirect the entry, and where.
    pub span_start: u64,
    pub original: String,
    /// The bytes written over `original` (the redirect): a revert writes
    /// the original back only where memory still holds exactly these.
    /// Journals without it (older relive) are not checked.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub patched: String,
    /// The 8-byte cell the redirect jumps through.
    pub slot: u64,
    /// Call-clobbered registers callers of this function may keep values
    /// in across a call (GCC `-fipa-ra`; [`crate::clobber::Regs`] bits):
    /// every later version is entered through a thunk keeping those it
    /// writes. Journals without it assume all.
    #[serde(default = "all_call_clobbered")]
    pub assumed: u32,
    /// Generations still in the pool, oldest first: what `revert --last`
    /// goes back to. The journal file keeps only the newest (the one
    /// running); the older ones are in the history file (`PID-START.history`,
    /// appended to, never rewritten by a patch), read by
    /// [`Journal::load_history`]. Empty in journals of older relive.
    #[serde(default, skip_serializing_if = "Vec::is_empty", serialize_with = "newest_only")]
    pub history: Vec<Generation>,
    /// Why no call could run its newest code when that was written (the
    /// reachability check's reason: `main`'s running loop, callers that
    /// have it inlined), for `status`; `None` when a later call could.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unreached: Option<String>,
    /// Why calls running when the newest code was written keep the old
    /// code for good (threads whose outermost function it is: a worker's
    /// loop), for `status`; new calls run the new code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old_code_kept: Option<String>,
}

/// Serialises only the newest generation: every transaction reads and
/// writes the journal, so its size must not grow with the history.
fn newest_only<S: serde::Serializer>(history: &[Generation], s: S) -> std::result::Result<S::Ok, S::Error> {
    serde::Serialize::serialize(&history[history.len().saturating_sub(1)..], s)
}

/// One line of the history file: a generation of the patch record of the
/// function whose original entry is `record`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct HistoryLine {
    record: u64,
    #[serde(flatten)]
    generation: Generation,
}

/// The journal file is compacted (rewritten with only its current state)
/// when an append makes it larger than this.
const JOURNAL_FILE_LIMIT: u64 = 1 << 20;

/// The history file is compacted (rewritten with only what is kept) when
/// an append makes it larger than this.
const HISTORY_FILE_LIMIT: u64 = 1 << 20;

/// How many generations of a function the journal remembers.
pub const HISTORY: usize = 8;

/// Whether the signature `generation` recorded is not one a call made
/// for `is` suits: by its compared form where it kept one
/// ([`Generation::signature_key`]), else by the shown one (a renamed
/// parameter then counts: journals older than the key).
pub fn recorded_signature_differs(generation: &Generation, is: &crate::signature::Signature) -> bool {
    match generation
        .signature_key
        .as_deref()
        .and_then(crate::signature::Signature::from_key)
    {
        Some(was) => !was.same_call(is),
        None => generation.signature.as_ref().is_some_and(|was| *was != is.shown),
    }
}

/// One version of a patched function.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Generation {
    pub generation: u32,
    /// Which change made it (the journal's count of changes then).
    pub change: u64,
    /// When, in seconds since the Unix epoch.
    pub at: u64,
    /// The source file of the object it came from (`STT_FILE`), if named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Its code, and what the jump slot held for it (its entry: the code
    /// or a register-keeping thunk before it).
    pub code: u64,
    pub slot_value: u64,
    /// Bytes of its code (0 in journals of older relives): where a
    /// thread's call of it runs, for telling whether one does.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub size: u64,
    /// The functions its code calls or jumps to directly (by symbol
    /// name): a revert by name must not leave it calling a function of
    /// its change reverted alone, or the other way round (a signature the
    /// change altered reaches callers only through that change).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub calls: Vec<String>,
    /// Of `calls`, those whose signature the change that made it changed:
    /// its code calls them the new way, so a call of it still running
    /// when the change is reverted would call their old code with the new
    /// arguments (a revert waits for it to return).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub signature_calls: Vec<String>,
    /// Its signature as its compile's DWARF gave it (`ret(param, param)`;
    /// none without debug information): what its callers' code was
    /// compiled against when it went in. A later compile that changes the
    /// signature without changing the code is not patched, so this stays
    /// what runs, and the save that then changes the body is checked
    /// against it (a diff against that compile shows no change: a Lua
    /// trial).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    /// The same as compared ([`crate::signature::Signature::key`]): a
    /// renamed parameter or a typedef spelled out changes no call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature_key: Option<String>,
    /// Where its change's code lies in the pool (`[start, end)`: the
    /// change's block, see [`Journal::code_blocks`]): what runs again
    /// when `revert --last` comes back to it. None in journals of older
    /// relive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block: Option<(u64, u64)>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

fn all_call_clobbered() -> u32 {
    crate::clobber::Regs::CALL_CLOBBERED.0
}

/// When a reload hook runs (see `hooks`): recorded for the hooks a patch
/// adds, so later patches run them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    BeforePatch,
    AfterPatch,
}

impl Phase {
    pub fn label(self) -> &'static str {
        match self {
            Phase::BeforePatch => "before the patch",
            Phase::AfterPatch => "after the patch",
        }
    }
}

/// A function or variable that a patch brought and the program did not
/// have: later patches of the same source resolve it here, so a second
/// edit of an added function redirects the copy the first patch's code
/// calls, and an added variable keeps its state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddedRecord {
    pub name: String,
    /// The source file of the object that brought it (`STT_FILE`), which
    /// tells same-named statics of different files apart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Whether it was a file-scope symbol (`static`) in that object.
    pub local: bool,
    /// For a function-local static GCC numbers (`n.3`), its identity by
    /// function and name (`static:ver::n`, [`crate::diff::static_key`]):
    /// another compile of the file may give its number to another static,
    /// so later patches find it by this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    pub addr: u64,
    pub size: u64,
    /// `function` or `object`.
    pub kind: String,
    /// The change that added it (the journal's count of changes then):
    /// a revert says what stays of what the changes it undoes added.
    /// Records of older relive versions have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change: Option<u64>,
    /// A function the patch's object lists as a reload hook (its
    /// `relive_before_patch` / `relive_after_patch` section): run around
    /// later patches too, while it is in the pool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hook: Option<Phase>,
    /// An added variable's initial value as the patch gave it, in hex
    /// ([`crate::verify::initial_value`]):
    /// `verify` compares an object's with it, as it compares a variable
    /// the program was built with against the program's file (a trial's
    /// added `relive_mask`, its initializer edited, verified as matching
    /// while the program ran with the old value). None for functions,
    /// variables over [`crate::verify::INITIAL_RECORDED`] bytes and records
    /// of older relive versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial: Option<String>,
}

impl AddedRecord {
    /// Its name as people write it: a function-local static by its
    /// source name and function (`seen (static of twice)`), not GCC's
    /// number (`seen.1`).
    pub fn label(&self) -> String {
        match self.static_of() {
            Some((owner, name)) => format!("{name} (static of {})", crate::names::readable(owner)),
            None => crate::names::readable(&self.name),
        }
    }

    /// For a function-local static, its function and source name (from
    /// its identity `static:OWNER::name`).
    pub fn static_of(&self) -> Option<(&str, &str)> {
        self.key.as_deref()?.strip_prefix("static:")?.split_once("::")
    }

    /// Whether `other` records the same symbol: the same name and kind,
    /// and for a file-scope one, of the same file.
    pub fn same_symbol(&self, other: &AddedRecord) -> bool {
        let same_identity = match (&self.key, &other.key) {
            (Some(a), Some(b)) => a == b,
            _ => self.name == other.name,
        };
        same_identity
            && self.kind == other.kind
            && self.local == other.local
            && (!self.local || self.file == other.file)
    }
}

/// One patch region allocated in the process: a pool that later patches
/// fill further, so they need no new allocation. Its three parts follow
/// each other: code (`r-x`), read-only data (`r--`), writable data (`rw-`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegionRecord {
    pub addr: u64,
    pub len: u64,
    pub code_len: u64,
    pub ro_len: u64,
    pub rw_len: u64,
    /// Bytes of each part in use.
    pub code_used: u64,
    pub ro_used: u64,
    pub rw_used: u64,
    /// Unwind tables of patches in this pool handed to the process's
    /// unwinder: they are taken back before the pool is unmapped.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub frames: Vec<FrameRecord>,
    /// Why the pool stays mapped for good (the patch's new globals were
    /// constructed in it, and their destructors run from it at exit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pinned: Option<String>,
    /// Symbol files of patches in this pool listed for debuggers (the GDB
    /// JIT interface): taken off the list, and their memory unmapped,
    /// before the pool is.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub debug_images: Vec<DebugImagesRecord>,
}

/// One patch's symbol files in the process's memory (one mapping), each
/// with the entry that lists it in the GDB JIT descriptor's list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DebugImagesRecord {
    /// The mapping that holds the entries and the files.
    pub addr: u64,
    pub len: u64,
    /// Bytes of it in use (from its start); the rest is free for the next
    /// patch's files.
    pub used: u64,
    /// `__jit_debug_descriptor` in the process.
    pub descriptor: u64,
    pub entries: Vec<DebugEntryRecord>,
}

/// A `jit_code_entry`, and the address of the `.text` of the symbol file
/// it lists (the patch's code: `relive gdb` loads no second copy of it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DebugEntryRecord {
    pub entry: u64,
    pub code: u64,
    /// Bytes of that code (0 in journals of older relive: then the file
    /// stays listed while its pool lives).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub len: u64,
}

/// A patch's `.eh_frame` in a pool, and the unwinder's bookkeeping for it
/// (libgcc's `struct object`, in the pool's writable part). Whether the
/// unwinder holds it is read from the process, not recorded: the
/// unwinder fills the bookkeeping when it takes the table, and relive
/// clears it when it takes it back, so a relive killed between the call
/// and its record leaves nothing to guess.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrameRecord {
    pub eh_frame: u64,
    /// Bytes of the table and the exception tables after it.
    #[serde(default)]
    pub len: u64,
    pub object: u64,
    /// A call into the unwinder for it did not return: whether the
    /// unwinder holds the table is not known, so it is never taken back
    /// (a table it does not hold would end the program) and its pool is
    /// never unmapped (one it holds must stay readable).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub uncertain: bool,
    /// Never handed to an unwinder: the process had none loaded when it
    /// was patched (and relive could not load one). A later patch that
    /// finds one hands it over.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pending: bool,
}

impl Journal {
    /// Where the unwind table of every patch is in the process: `.eh_frame`
    /// address and length (exception tables after it included; the table
    /// ends at its terminator).
    pub fn unwind_tables(&self) -> Vec<(u64, u64)> {
        self.regions
            .iter()
            .flat_map(|r| &r.frames)
            .filter(|f| f.len > 0)
            .map(|f| (f.eh_frame, f.len))
            .collect()
    }
}

impl FrameRecord {
    /// Whether `addr` lies in the table or its bookkeeping: where only the
    /// unwinder points (its index of the table's entries, its list of
    /// tables; stale copies of both in memory it freed).
    pub fn unwinder_owns(&self, addr: u64) -> bool {
        (self.eh_frame..self.eh_frame + self.len).contains(&addr)
            || (self.object..self.object + crate::link::UNWINDER_OBJECT as u64).contains(&addr)
    }
}

impl RegionRecord {
    pub fn read_only_start(&self) -> u64 {
        self.addr + self.code_len
    }

    pub fn writable_start(&self) -> u64 {
        self.addr + self.code_len + self.ro_len
    }

    pub fn contains(&self, addr: u64) -> bool {
        self.addr <= addr && addr < self.addr + self.len
    }

    /// Whether `addr` is in a part of the pool that patches placed
    /// something in (code, read-only or writable data), just past it (an
    /// array's end) or up to [`crate::link::BESIDE`] bytes before it:
    /// what a pointer into the pool can mean. A value
    /// in the rest is none (a jq trial's `revert --all` kept a pool for
    /// heap words that pointed into its unused data, a different one each
    /// time). A pool whose record counts no use (an older journal) counts
    /// whole.
    pub fn placed_at(&self, addr: u64) -> bool {
        if self.code_used == 0 && self.ro_used == 0 && self.rw_used == 0 {
            return self.contains(addr);
        }
        // As far before a part as address arithmetic reaches (a loop's
        // base `buf - k` of a variable at its start), and just past it.
        let beside = crate::link::BESIDE.unsigned_abs();
        let within = |start: u64, used: u64| start.saturating_sub(beside) <= addr && addr <= start + used;
        within(self.addr, self.code_used.min(self.code_len))
            || within(self.read_only_start(), self.ro_used.min(self.ro_len))
            || within(self.writable_start(), self.rw_used.min(self.rw_len))
    }

    /// Why the pool stays mapped for good, if it does: what was
    /// constructed in it ([`RegionRecord::pinned`]), or an unwind table of
    /// it the unwinder may hold (a call registering it did not return:
    /// taking back a table it does not hold ends the program).
    pub fn stays_for_good(&self) -> Option<String> {
        self.pinned.clone().or_else(|| {
            let f = self.frames.iter().find(|f| f.uncertain)?;
            Some(format!(
                "the unwinder may hold its unwind table at {:#x} (a call registering it did not return)",
                f.eh_frame
            ))
        })
    }

    /// Bytes of the process's memory this pool's symbol files for
    /// debuggers take (mapped beside it, freed with it).
    pub fn debug_image_bytes(&self) -> u64 {
        self.debug_images.iter().map(|i| i.len).sum()
    }

    /// Where parts of the given sizes would go, if they fit.
    pub fn fit(&self, code: u64, ro: u64, rw: u64, align: u64) -> Option<(u64, u64, u64)> {
        let c = self.code_used.next_multiple_of(align);
        let r = self.ro_used.next_multiple_of(align);
        let w = self.rw_used.next_multiple_of(align);
        (c + code <= self.code_len && r + ro <= self.ro_len && w + rw <= self.rw_len).then_some((c, r, w))
    }
}

/// Everything relive did to one process.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Journal {
    pub pid: u32,
    pub start_time: u64,
    /// The program image the patches were linked against.
    pub image: String,
    pub patches: Vec<PatchRecord>,
    pub regions: Vec<RegionRecord>,
    /// What patches added, in the order they added it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub added: Vec<AddedRecord>,
    /// How many patches were applied so far: each generation records its
    /// number, so the last change is known.
    #[serde(default)]
    pub changes: u64,
    /// Where the code of each patch that still runs lies in the pools
    /// (`[start, end)`: one block per patch, its functions, thunks and
    /// islands): what runs of the pools, for telling whether new code can
    /// be reached, without reading the dead generations patches left
    /// behind. `None` in journals of older relive (every pool is read).
    #[serde(default)]
    pub code_blocks: Option<Vec<(u64, u64)>>,
    /// Memory relive is about to map for a new pool, `(address, length)`,
    /// saved before the remote `mmap`: until the change that uses the
    /// pool is written ahead, this is the only record of the mapping, so a
    /// relive killed in between leaves the next one able to free it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mapping_pool: Option<(u64, u64)>,
    /// Where the process has the code relive's remote calls use, as the
    /// last command found it ([`relive_process::CodeHints`]): the next
    /// checks it and does not search the process's code again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_hints: Option<relive_process::CodeHints>,
    /// A change under way (or left by a relive that died during it),
    /// kept in a file of its own (`PID-START.intent`): written ahead, it
    /// costs only what the change touches, not the whole journal.
    #[serde(skip)]
    pub intent: Option<Intent>,
    /// Generations to append to the history file at the next save.
    #[serde(skip)]
    pending_history: Vec<HistoryLine>,
    /// The file read does not end with a whole line (a torn append, or a
    /// journal of an older relive): the next save rewrites it, since an
    /// append would join the new line to the broken one.
    #[serde(skip)]
    rewrite_next: bool,
    /// The state the file held when this relive last read or wrote it,
    /// and the file's stamp then: a transaction that finds the stamp
    /// unchanged takes the state from here instead of parsing the file
    /// again (a 100-record journal took a quarter of a re-patch).
    #[serde(skip)]
    disk: DiskCopy,
}

/// A copy of what the journal file holds, and the file's stamp (`None`:
/// no file). A cache, not part of the journal's value: journals compare
/// equal whatever their copies.
#[derive(Debug, Clone, Default)]
struct DiskCopy(Option<(Option<Stamp>, State)>);

impl PartialEq for DiskCopy {
    fn eq(&self, _: &DiskCopy) -> bool {
        true
    }
}

impl Eq for DiskCopy {}

/// The part of a journal a patch or revert changes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub patches: Vec<PatchRecord>,
    pub regions: Vec<RegionRecord>,
    pub added: Vec<AddedRecord>,
    #[serde(default)]
    pub changes: u64,
    #[serde(default)]
    pub code_blocks: Option<Vec<(u64, u64)>>,
}

/// A change written ahead: the state once it is complete, and the writes
/// into the process that make it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Intent {
    /// `patch` or `revert`, for messages.
    pub by: String,
    /// The state after the change: the patch records it touches (by
    /// original entry; one absent is removed), every region and every
    /// added symbol.
    pub after: State,
    pub writes: Vec<IntentWrite>,
    /// The records in `after` hold only their newest generation, to be
    /// appended to the history recorded before.
    #[serde(default)]
    pub history_appended: bool,
}

/// One write of an [`Intent`]: `bytes` (hex) at `addr`, for the patch
/// record of the function whose original entry is `record`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntentWrite {
    pub record: u64,
    pub addr: u64,
    pub bytes: String,
}

impl Journal {
    /// The state recorded now.
    pub fn state(&self) -> State {
        State {
            patches: self.patches.clone(),
            regions: self.regions.clone(),
            added: self.added.clone(),
            changes: self.changes,
            code_blocks: self.code_blocks.clone(),
        }
    }

    /// Writes `intent` ahead (saved before anything is written into the
    /// process).
    pub fn begin(&mut self, dir: &StateDir, intent: Intent) -> Result<()> {
        let bytes = serde_json::to_vec(&intent).map_err(|e| PatchError::Io {
            path: dir.path().join(self.intent_name()).display().to_string(),
            cause: std::io::Error::other(e),
        })?;
        dir.write_private(&self.intent_name(), &bytes)?;
        self.intent = Some(intent);
        Ok(())
    }

    /// Ends a change: `state` is what the journal records from now on,
    /// saved, and the intent written ahead for it is gone.
    pub fn commit(&mut self, dir: &StateDir, state: State) -> Result<()> {
        // Only a patch makes generations (it counts a change); a revert,
        // an abandoned patch or a reclaim would append the last patch's
        // again.
        if state.changes > self.changes {
            self.pending_history
                .extend(new_generations(&state.patches, state.changes));
        }
        self.code_blocks = state
            .code_blocks
            .map(|blocks| live_blocks(blocks, &state.patches, &state.added));
        self.patches = state.patches;
        self.regions = state.regions;
        self.added = state.added;
        self.changes = state.changes;
        self.intent = None;
        injected_failure("journal-commit", dir)?;
        self.save(dir)
    }

    /// [`Journal::commit`] after the process was changed, where a failure
    /// to save must not read as a failed change: the change stands, its
    /// intent (written ahead) stays on disk, and the next relive command
    /// settles it from the process's memory. `None`, or that warning.
    pub fn commit_after_change(&mut self, dir: &StateDir, state: State) -> Option<String> {
        self.commit(dir, state).err().map(|e| {
            format!(
                "the change is made, but the journal could not be saved ({e}); it stays recorded as in progress in {}, and the next relive command settles it from the process's memory",
                dir.path().join(self.intent_name()).display()
            )
        })
    }

    /// Drops a change that failed before touching anything the journal
    /// records (its writes were rolled back): the intent goes. A failure
    /// to save is left for the next relive to settle from memory.
    pub fn abandon(&mut self, dir: &StateDir) {
        self.intent = None;
        let _ = self.save(dir);
    }

    fn intent_name(&self) -> String {
        format!("{}-{}.intent", self.pid, self.start_time)
    }

    /// Settles an intent a dead relive left: for each patch record the
    /// intent touches, the version after the change if every write for it
    /// is in memory, else the one before; pool regions that are mapped;
    /// what the change added if any write happened. `memory(addr, len)`
    /// reads the process; `mapped(addr)` says whether an address is
    /// mapped. Returns what was decided, for the user; `None` without an
    /// intent.
    pub fn recover(
        &mut self,
        memory: &dyn Fn(u64, usize) -> Option<Vec<u8>>,
        mapped: &dyn Fn(u64) -> bool,
    ) -> Option<String> {
        let intent = self.intent.take()?;
        let done = |w: &IntentWrite| {
            let want = unhex(&w.bytes);
            want.is_some_and(|b| memory(w.addr, b.len()).as_ref() == Some(&b))
        };
        let mut keys: Vec<u64> = intent.writes.iter().map(|w| w.record).collect();
        keys.sort_unstable();
        keys.dedup();
        let mut settled = 0;
        for key in &keys {
            let all = intent.writes.iter().filter(|w| w.record == *key).all(done);
            if !all {
                continue;
            }
            settled += 1;
            let before = self.patches.iter().find(|p| p.orig_addr == *key).cloned();
            self.patches.retain(|p| p.orig_addr != *key);
            if let Some(p) = intent.after.patches.iter().find(|p| p.orig_addr == *key) {
                let mut p = p.clone();
                // A patch writes only its new generation ahead.
                if intent.history_appended {
                    self.pending_history
                        .extend(new_generations(std::slice::from_ref(&p), intent.after.changes));
                    let mut history = before.map(|b| b.history).unwrap_or_default();
                    history.extend(p.history);
                    let extra = history.len().saturating_sub(HISTORY);
                    history.drain(..extra);
                    p.history = history;
                }
                self.patches.push(p);
            }
        }
        let any = intent.writes.iter().any(done);
        if any {
            self.added = intent.after.added.clone();
            // Both changes' blocks: which of the new code runs is not known.
            if let (Some(mine), Some(theirs)) = (&mut self.code_blocks, &intent.after.code_blocks) {
                mine.extend(theirs.iter().filter(|b| !mine.contains(b)).copied().collect::<Vec<_>>());
            }
            self.changes = self.changes.max(intent.after.changes);
        }
        // Every region either state names that is still there: usage as
        // the change planned it (never less than before), so memory the
        // change may have filled is not handed out again.
        let mut regions: Vec<RegionRecord> = intent.after.regions.clone();
        for r in &self.regions {
            if !regions.iter().any(|a| a.addr == r.addr) {
                regions.push(r.clone());
            }
        }
        regions.retain(|r| mapped(r.addr));
        // A pool whose symbol files' memory was unmapped before the pool
        // itself (a relive killed while it freed pools) no longer has it.
        for r in &mut regions {
            r.debug_images.retain(|i| mapped(i.addr));
        }
        self.regions = regions;
        let all = keys.len();
        let plural = |n: usize| if n == 1 { "function" } else { "functions" };
        Some(match settled {
            // A change that only freed pools (see `reclaim`).
            0 if all == 0 => format!(
                "a relive {} was interrupted while it freed pools: those still mapped stay recorded",
                intent.by
            ),
            0 => format!(
                "a relive {} was interrupted before it changed anything: the {all} {} it was changing run{} as before",
                intent.by,
                plural(all),
                if all == 1 { "s" } else { "" }
            ),
            n if n == all => format!(
                "a relive {} was interrupted after its writes: all {all} {} it changed run{} as it left {}",
                intent.by,
                plural(all),
                if all == 1 { "s" } else { "" },
                if all == 1 { "it" } else { "them" }
            ),
            n => format!(
                "a relive {} was interrupted half-way: {n} of the {all} functions it was changing run{} as it left them, the other {} as before",
                intent.by,
                if n == 1 { "s" } else { "" },
                all - n
            ),
        })
    }
    /// The journal's file name in the state directory.
    pub fn file_name(pid: u32, start_time: u64) -> String {
        format!("{pid}-{start_time}.json")
    }

    pub fn path(dir: &StateDir, pid: u32, start_time: u64) -> PathBuf {
        dir.path().join(Journal::file_name(pid, start_time))
    }

    /// Loads the journal of process `pid` started at `start_time`, or an
    /// empty one. A journal another user could have written is refused.
    pub fn load(dir: &StateDir, pid: u32, start_time: u64, image: &str) -> Result<Journal> {
        let path = Journal::path(dir, pid, start_time);
        let name = Journal::file_name(pid, start_time);
        let stamp = dir.stamp(&name);
        let mut journal = match read_newest_state(dir, &name)? {
            Some(state) => state.map_err(|e| PatchError::Journal {
                path: path.display().to_string(),
                what: format!("cannot be read ({e}); delete it if the process is not patched"),
            })?,
            None => Journal {
                pid,
                start_time,
                image: image.to_string(),
                code_blocks: Some(Vec::new()),
                ..Journal::default()
            },
        };
        // A journal of an older relive holds whole histories: what the
        // history file will keep from the next save on.
        for p in &journal.patches {
            for g in &p.history[..p.history.len().saturating_sub(1)] {
                journal.pending_history.push(HistoryLine {
                    record: p.orig_addr,
                    generation: g.clone(),
                });
            }
        }
        // Another relive may have written the file meanwhile: the copy
        // is kept only if what was read is the version stamped.
        if stamp == dir.stamp(&name) {
            journal.remember_disk(stamp);
        }
        let intent_name = journal.intent_name();
        if let Some(bytes) = dir.read_private(&intent_name)? {
            journal.intent = Some(serde_json::from_slice(&bytes).map_err(|e| PatchError::Journal {
                path: dir.path().join(&intent_name).display().to_string(),
                what: format!("cannot be read ({e}); delete it if no relive is changing the process"),
            })?);
        }
        Ok(journal)
    }

    /// Writes the journal atomically, mode 0600 (or removes it when
    /// nothing is left).
    pub fn save(&mut self, dir: &StateDir) -> Result<()> {
        let name = Journal::file_name(self.pid, self.start_time);
        if self.patches.is_empty() && self.regions.is_empty() && self.mapping_pool.is_none() {
            // Nothing patched and no pool left: the history of what was
            // goes too (`status` has nothing to show it with).
            dir.remove(&name)?;
            dir.remove(&self.history_name())?;
            self.pending_history.clear();
        } else {
            let mut line = serde_json::to_vec(self).map_err(|e| PatchError::Io {
                path: Journal::path(dir, self.pid, self.start_time).display().to_string(),
                cause: std::io::Error::other(e),
            })?;
            line.push(b'\n');
            if self.rewrite_next || dir.append_private(&name, &line)? > JOURNAL_FILE_LIMIT {
                dir.write_private(&name, &line)?;
                self.rewrite_next = false;
            }
        }
        self.remember_disk(dir.stamp(&name));
        // The state is on disk: an intent settled or abandoned goes (after
        // the journal, so a relive killed in between finds both, and
        // settling again changes nothing).
        if self.intent.is_none() {
            dir.remove(&self.intent_name())?;
        }
        self.append_history(dir)
    }

    /// Keeps a copy of the state as the file (stamped `stamp`) holds it:
    /// each record with its newest generation only.
    fn remember_disk(&mut self, stamp: Option<Stamp>) {
        let mut state = self.state();
        for p in &mut state.patches {
            let older = p.history.len().saturating_sub(1);
            p.history.drain(..older);
        }
        self.disk = DiskCopy(Some((stamp, state)));
    }

    /// Whether the journal's file (or an intent) may hold what another
    /// relive command did since this one last read or wrote it: a stat,
    /// no read.
    pub fn changed_on_disk(&self, dir: &StateDir) -> bool {
        if self.intent.is_some() || dir.stamp(&self.intent_name()).is_some() {
            return true;
        }
        match &self.disk.0 {
            Some((stamp, _)) => *stamp != dir.stamp(&Journal::file_name(self.pid, self.start_time)),
            None => dir.stamp(&Journal::file_name(self.pid, self.start_time)).is_some(),
        }
    }

    /// Brings the journal back to what its file holds, as
    /// [`Journal::load`] would, without reading the file when it has not
    /// changed since this relive last read or wrote it (and no intent is
    /// pending). Returns whether it could.
    pub fn reuse_disk_copy(&mut self, dir: &StateDir) -> bool {
        if self.changed_on_disk(dir) {
            return false;
        }
        let Some((_, state)) = &self.disk.0 else {
            return false;
        };
        let state = state.clone();
        self.patches = state.patches;
        self.regions = state.regions;
        self.added = state.added;
        self.changes = state.changes;
        self.code_blocks = state.code_blocks;
        true
    }

    fn history_name(&self) -> String {
        format!("{}-{}.history", self.pid, self.start_time)
    }

    /// Appends the generations made since the last save to the history
    /// file (after the journal: a relive killed in between loses only
    /// older generations, never the running one), compacting it when it
    /// has grown large.
    fn append_history(&mut self, dir: &StateDir) -> Result<()> {
        if self.pending_history.is_empty() {
            return Ok(());
        }
        let mut text = Vec::new();
        for line in self.pending_history.drain(..) {
            if serde_json::to_writer(&mut text, &line).is_ok() {
                text.push(b'\n');
            }
        }
        let size = dir.append_private(&self.history_name(), &text)?;
        if size > HISTORY_FILE_LIMIT {
            let mut full = self.clone();
            full.load_history(dir)?;
            let mut text = Vec::new();
            for p in &full.patches {
                for g in &p.history {
                    let line = HistoryLine {
                        record: p.orig_addr,
                        generation: g.clone(),
                    };
                    if serde_json::to_writer(&mut text, &line).is_ok() {
                        text.push(b'\n');
                    }
                }
            }
            dir.write_private(&self.history_name(), &text)?;
        }
        Ok(())
    }

    /// Reads the history file into each record's `history` (its last
    /// `HISTORY` generations), for `status` and `revert --last`; a pool
    /// holding only generations past those is freed (see `reclaim`). A line
    /// names a record and generation; the latest line for a generation
    /// wins (a function reverted and patched again counts from 1 anew),
    /// generations past a record's current one are gone (undone by
    /// `revert --last`), and the journal's own newest generation is the
    /// truth for the one running. Generations whose code is in no pool
    /// any more (freed: see `reclaim`) are left out. Unreadable lines are
    /// skipped.
    pub fn load_history(&mut self, dir: &StateDir) -> Result<()> {
        self.load_generations(dir, Some(HISTORY))
    }

    /// [`Journal::load_history`] with every generation whose code is still
    /// mapped, however far back: a call may still run one (a patch's notes
    /// and `verify` looked at the last `HISTORY` only, and said nothing of
    /// a thread in the eleventh-last: a zlib re-check).
    pub fn load_every_generation(&mut self, dir: &StateDir) -> Result<()> {
        self.load_generations(dir, None)
    }

    /// The last generation the history file records of each function
    /// patches changed, by original entry, whatever became of it since:
    /// one whose record is gone was reverted (by name, `--all`, or
    /// `--last` of its first generation), and one whose record's
    /// generation is below it had that generation undone (`revert
    /// --last`). What `verify` says of a function that differs because of
    /// a revert (it said only that it differs, a zstd re-check). Lines of
    /// changes this journal does not count are left out, as
    /// [`Journal::load_history`] does.
    pub fn last_recorded_generations(&self, dir: &StateDir) -> Result<foldhash::HashMap<u64, Generation>> {
        let mut last: foldhash::HashMap<u64, Generation> = Default::default();
        self.each_history_line(dir, |line| {
            last.insert(line.record, line.generation);
        })?;
        Ok(last)
    }

    /// Each readable line of the history file, oldest first, of a change
    /// this journal counts (lines of later changes were undone).
    fn each_history_line(&self, dir: &StateDir, mut each: impl FnMut(HistoryLine)) -> Result<()> {
        let Some(bytes) = dir.read_private(&self.history_name())? else {
            return Ok(());
        };
        for line in bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let Ok(line) = serde_json::from_slice::<HistoryLine>(line) else {
                continue;
            };
            if line.generation.change <= self.changes {
                each(line);
            }
        }
        Ok(())
    }

    /// Whether code at `addr` is in a block that runs (see
    /// [`Journal::code_blocks`]); `None` for a journal of an older relive,
    /// which does not say.
    pub fn in_live_block(&self, addr: u64) -> Option<bool> {
        let blocks = self.code_blocks.as_ref()?;
        Some(blocks.iter().any(|&(start, end)| start <= addr && addr < end))
    }

    /// [`Journal::load_history`], the last `kept` generations of each
    /// record (`None`: all).
    fn load_generations(&mut self, dir: &StateDir, kept: Option<usize>) -> Result<()> {
        let mut by_record: foldhash::HashMap<u64, std::collections::BTreeMap<u32, Generation>> = Default::default();
        self.each_history_line(dir, |line| {
            by_record
                .entry(line.record)
                .or_default()
                .insert(line.generation.generation, line.generation);
        })?;
        let regions = &self.regions;
        for p in &mut self.patches {
            let Some(lines) = by_record.remove(&p.orig_addr) else {
                continue;
            };
            let newest = p.history.last().cloned();
            // A generation whose pool was freed (nothing ran it any more)
            // is gone: `revert --last` must not go back to it.
            let mut history: Vec<Generation> = lines
                .into_values()
                .filter(|g| g.generation < newest.as_ref().map_or(p.generation + 1, |n| n.generation))
                .filter(|g| regions.iter().any(|r| r.contains(g.code)))
                .collect();
            history.extend(newest);
            if let Some(kept) = kept {
                let extra = history.len().saturating_sub(kept);
                history.drain(..extra);
            }
            p.history = history;
        }
        Ok(())
    }

    /// This journal (its histories loaded) as the journal of process
    /// `pid` started at `start_time`, which was forked from this one's
    /// process and runs what it records: written in full at its first
    /// save, histories included.
    pub fn adopted_by(&self, pid: u32, start_time: u64) -> Journal {
        let mut adopted = Journal {
            pid,
            start_time,
            image: self.image.clone(),
            patches: self.patches.clone(),
            regions: self.regions.clone(),
            added: self.added.clone(),
            changes: self.changes,
            code_blocks: self.code_blocks.clone(),
            // A fork has the same code where its parent had it.
            code_hints: self.code_hints,
            rewrite_next: true,
            ..Journal::default()
        };
        // The history file holds every generation, the running one too.
        adopted.pending_history = self
            .patches
            .iter()
            .flat_map(|p| {
                p.history.iter().map(|g| HistoryLine {
                    record: p.orig_addr,
                    generation: g.clone(),
                })
            })
            .collect();
        adopted
    }

    pub fn patch(&self, orig_addr: u64) -> Option<&PatchRecord> {
        self.patches.iter().find(|p| p.orig_addr == orig_addr)
    }

    /// The functions (by symbol name) whose running code is not what it
    /// was by `before`, an earlier state of this journal: patched, patched
    /// again or reverted, and functions patches had added that are gone
    /// (freed with their pool by a revert). What another relive command
    /// did to the process behind a `relive run` session's back.
    pub fn functions_changed_since(&self, before: &Journal) -> std::collections::BTreeSet<String> {
        let running = |j: &Journal| -> foldhash::HashMap<u64, (String, u64)> {
            j.patches
                .iter()
                .map(|p| (p.orig_addr, (p.name.clone(), p.current_addr)))
                .collect()
        };
        let (then, now) = (running(before), running(self));
        let mut changed: std::collections::BTreeSet<String> = then
            .iter()
            .filter(|(orig, (_, code))| now.get(*orig).is_none_or(|(_, now_code)| now_code != code))
            .map(|(_, (name, _))| name.clone())
            .collect();
        changed.extend(
            now.iter()
                .filter(|(orig, _)| !then.contains_key(*orig))
                .map(|(_, (name, _))| name.clone()),
        );
        changed.extend(
            before
                .added
                .iter()
                .filter(|a| a.kind == "function" && !self.added.iter().any(|b| b.same_symbol(a)))
                .map(|a| a.name.clone()),
        );
        changed
    }
}

/// The journal a log file holds: its last whole line that reads as one
/// (lines after it were torn by a relive killed while appending). Marked
/// for a rewrite unless the file ends with that line.
fn newest_state(bytes: &[u8]) -> std::result::Result<Journal, serde_json::Error> {
    let (found, first_error) = newest_line(bytes);
    if let Some(journal) = found {
        return Ok(journal);
    }
    // No line reads: the whole file (an older relive's journal, printed
    // on several lines), or the first line's error.
    serde_json::from_slice::<Journal>(bytes)
        .map(|mut journal| {
            journal.rewrite_next = true;
            journal
        })
        .map_err(|e| first_error.unwrap_or(e))
}

/// The last line of `bytes` (the end of a log file) that reads as a
/// journal, marked for a rewrite unless it ends the file; else the first
/// error met.
fn newest_line(bytes: &[u8]) -> (Option<Journal>, Option<serde_json::Error>) {
    let mut first_error = None;
    let mut after_it = false;
    for line in bytes.rsplit(|&b| b == b'\n') {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<Journal>(line) {
            Ok(mut journal) => {
                journal.rewrite_next = after_it || !bytes.ends_with(b"\n");
                return (Some(journal), first_error);
            }
            Err(e) => {
                first_error.get_or_insert(e);
                after_it = true;
            }
        }
    }
    (None, first_error)
}

/// Bytes read from the end of the journal file first: its newest state is
/// its last line, and the file holds up to [`JOURNAL_FILE_LIMIT`] of older
/// ones, read by every command before (a state is a few KiB, 16 KiB after
/// a hundred patches in one pool).
const JOURNAL_TAIL: u64 = 64 << 10;

/// [`newest_state`] of the journal file `name`, reading only its end when
/// a whole line there reads; `None` when there is no file.
fn read_newest_state(dir: &StateDir, name: &str) -> Result<Option<std::result::Result<Journal, serde_json::Error>>> {
    let Some((tail, whole)) = dir.read_private_tail(name, JOURNAL_TAIL)? else {
        return Ok(None);
    };
    if whole {
        return Ok(Some(newest_state(&tail)));
    }
    // The tail's first line is cut: only the lines after it count.
    let lines = tail
        .iter()
        .position(|&b| b == b'\n')
        .map_or(&[][..], |at| &tail[at + 1..]);
    if let (Some(journal), _) = newest_line(lines) {
        return Ok(Some(Ok(journal)));
    }
    Ok(dir.read_private(name)?.map(|bytes| newest_state(&bytes)))
}

/// The blocks that hold code still running: a patched function's current
/// code or entry (thunk), or an added function.
fn live_blocks(mut blocks: Vec<(u64, u64)>, patches: &[PatchRecord], added: &[AddedRecord]) -> Vec<(u64, u64)> {
    // The block of each generation that runs: one `revert --last` brought
    // back was dropped as dead when the generation it undid came (the
    // reachability checks then read none of the code that runs, and gdb
    // was not given its symbol file again).
    blocks.extend(patches.iter().filter_map(|p| p.history.last()?.block));
    let live: Vec<u64> = patches
        .iter()
        .flat_map(|p| [Some(p.current_addr), p.history.last().map(|g| g.slot_value)])
        .flatten()
        .chain(added.iter().filter(|a| a.kind == "function").map(|a| a.addr))
        .collect();
    let mut blocks: Vec<(u64, u64)> = blocks
        .into_iter()
        .filter(|&(start, end)| live.iter().any(|&a| start <= a && a < end))
        .collect();
    blocks.sort_unstable();
    blocks.dedup();
    blocks
}

/// The generations `change` made: each record's newest, when that change
/// made it.
fn new_generations(patches: &[PatchRecord], change: u64) -> Vec<HistoryLine> {
    patches
        .iter()
        .filter_map(|p| {
            let g = p.history.last()?;
            (g.change == change).then(|| HistoryLine {
                record: p.orig_addr,
                generation: g.clone(),
            })
        })
        .collect()
}

/// Bytes from hex text (`None` if it is not).
pub(crate) fn unhex(text: &str) -> Option<Vec<u8>> {
    (0..text.len())
        .step_by(2)
        .map(|i| text.get(i..i + 2).and_then(|b| u8::from_str_radix(b, 16).ok()))
        .collect()
}

/// `RELIVE_FAILPOINT=NAME` makes this step fail as a full disk would:
/// how the tests reach a failure after the process was changed.
fn injected_failure(name: &str, dir: &StateDir) -> Result<()> {
    if std::env::var_os("RELIVE_FAILPOINT").is_some_and(|v| v == name) {
        return Err(PatchError::Io {
            path: dir.path().display().to_string(),
            cause: std::io::Error::other(format!("failpoint {name}")),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_removal() {
        let root = tempfile::tempdir().unwrap();
        let dir = &StateDir::at(root.path().join("state")).unwrap();
        let mut j = Journal::load(dir, 7, 99, "/bin/x").unwrap();
        assert!(j.patches.is_empty());
        j.patches.push(PatchRecord {
            name: "f".into(),
            orig_addr: 0x1000,
            current_addr: 0x5000,
            generation: 1,
            method: "jump".into(),
            span_start: 0x1000,
            original: "554889e5c3cc".into(),
            patched: "ff2500000000".into(),
            slot: 0x6000,
            assumed: 0x80,
            history: vec![],
            unreached: None,
            old_code_kept: None,
        });
        j.save(dir).unwrap();
        assert_eq!(Journal::load(dir, 7, 99, "/bin/x").unwrap(), j);
        dir.append_private(&j.history_name(), b"{}\n").unwrap();
        j.patches.clear();
        j.save(dir).unwrap();
        assert!(!Journal::path(dir, 7, 99).exists());
        assert!(!dir.path().join(j.history_name()).exists(), "the history goes with it");
        std::fs::write(Journal::path(dir, 7, 99), "{").unwrap();
        assert!(matches!(
            Journal::load(dir, 7, 99, "/bin/x"),
            Err(PatchError::Journal { .. })
        ));
    }

    /// A commit appends its state; a relive killed during the append
    /// leaves a torn line, which is skipped (the state before stands, as
    /// with an interrupted rename) and rewritten at the next save, so a
    /// later append is not joined to it.
    #[test]
    fn a_torn_append_leaves_the_state_before() {
        let root = tempfile::tempdir().unwrap();
        let dir = &StateDir::at(root.path().join("state")).unwrap();
        let path = Journal::path(dir, 7, 99);
        let mut j = Journal::load(dir, 7, 99, "/bin/x").unwrap();
        j.patches.push(record("f", 0x1000, 1));
        j.save(dir).unwrap();
        let one = j.clone();
        j.patches.push(record("g", 0x2000, 1));
        j.save(dir).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 2, "appended: {text}");
        assert_eq!(Journal::load(dir, 7, 99, "/bin/x").unwrap().patches, j.patches);

        std::fs::write(&path, &text[..text.len() - 10]).unwrap();
        let mut torn = Journal::load(dir, 7, 99, "/bin/x").unwrap();
        assert_eq!(torn.patches, one.patches);
        torn.patches.push(record("h", 0x3000, 1));
        torn.save(dir).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 1, "rewritten: {text}");
        assert_eq!(Journal::load(dir, 7, 99, "/bin/x").unwrap().patches, torn.patches);

        // An older relive's journal: one object, no newline.
        std::fs::write(&path, serde_json::to_vec(&one).unwrap()).unwrap();
        let mut old = Journal::load(dir, 7, 99, "/bin/x").unwrap();
        assert_eq!(old.patches, one.patches);
        old.changes += 1;
        old.save(dir).unwrap();
        old.changes += 1;
        old.save(dir).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 2, "rewritten, then appended: {text}");
        assert_eq!(Journal::load(dir, 7, 99, "/bin/x").unwrap().changes, old.changes);
    }

    /// Only the end of a long log is read: its last state stands, a torn
    /// last line leaves the one before (found in the end read, or in the
    /// whole file when no whole line fits there), and a state longer than
    /// the end read is read whole.
    #[test]
    fn the_newest_state_of_a_long_log_is_read_from_its_end() {
        let root = tempfile::tempdir().unwrap();
        let dir = &StateDir::at(root.path().join("state")).unwrap();
        let path = Journal::path(dir, 7, 99);
        let state = |n: usize, names: usize| {
            let mut j = Journal {
                pid: 7,
                start_time: 99,
                image: "/bin/x".into(),
                changes: n as u64,
                ..Journal::default()
            };
            j.patches = (0..names)
                .map(|k| record(&format!("f{n}_{k}"), 0x1000 + k as u64, 1))
                .collect();
            serde_json::to_string(&j).unwrap()
        };
        let load = || Journal::load(dir, 7, 99, "/bin/x").unwrap();
        // Many small states: more than the end read holds.
        let lines: Vec<String> = (0..1000).map(|n| state(n, 1)).collect();
        let log = lines.join("\n") + "\n";
        assert!(log.len() as u64 > 2 * JOURNAL_TAIL, "{}", log.len());
        std::fs::write(&path, &log).unwrap();
        let newest = load();
        assert_eq!((newest.changes, newest.rewrite_next), (999, false));
        // Torn: the state before stands, and the file is marked for a rewrite.
        std::fs::write(&path, &log[..log.len() - 20]).unwrap();
        let newest = load();
        assert_eq!((newest.changes, newest.rewrite_next), (998, true));
        // States longer than the end read: the whole file is read.
        let big = [state(1, 2000), state(2, 2000)].join("\n") + "\n";
        assert!(big.len() as u64 > 2 * JOURNAL_TAIL && state(2, 2000).len() as u64 > JOURNAL_TAIL);
        std::fs::write(&path, &big).unwrap();
        assert_eq!(load().changes, 2);
        std::fs::write(&path, &big[..big.len() - 20]).unwrap();
        let newest = load();
        assert_eq!((newest.changes, newest.rewrite_next), (1, true));
    }

    /// A transaction re-reads the journal only when another relive wrote
    /// it since (or left an intent): otherwise the state comes from the
    /// copy kept at the last read or write, as a read would give it,
    /// dropping what was changed in memory only.
    #[test]
    fn an_unchanged_journal_is_not_read_again() {
        let root = tempfile::tempdir().unwrap();
        let dir = &StateDir::at(root.path().join("state")).unwrap();
        let mut mine = Journal::load(dir, 7, 99, "/bin/x").unwrap();
        mine.patches.push(record("f", 0x1000, 1));
        mine.save(dir).unwrap();
        mine.patches.push(record("only in memory", 0x2000, 1));
        assert!(mine.reuse_disk_copy(dir));
        assert_eq!(mine, Journal::load(dir, 7, 99, "/bin/x").unwrap());

        // Another relive appends a change: the copy is stale.
        let mut theirs = Journal::load(dir, 7, 99, "/bin/x").unwrap();
        theirs.changes += 1;
        theirs.save(dir).unwrap();
        assert!(!mine.reuse_disk_copy(dir));
        // It removes the journal: stale too.
        let mut mine = Journal::load(dir, 7, 99, "/bin/x").unwrap();
        theirs.patches.clear();
        theirs.save(dir).unwrap();
        assert!(!mine.reuse_disk_copy(dir));

        // An intent left behind is settled by a full read.
        let mut mine = Journal::load(dir, 7, 99, "/bin/x").unwrap();
        mine.begin(dir, Intent::default()).unwrap();
        let mut other = Journal::load(dir, 7, 99, "/bin/x").unwrap();
        assert!(other.intent.is_some());
        assert!(!other.reuse_disk_copy(dir));
        mine.abandon(dir);
        assert!(mine.reuse_disk_copy(dir));
    }

    pub(super) fn record(name: &str, orig: u64, generation: u32) -> PatchRecord {
        PatchRecord {
            name: name.into(),
            orig_addr: orig,
            current_addr: orig + 0x10000,
            generation,
            method: "jump".into(),
            span_start: orig,
            original: "5548".into(),
            patched: "ff25".into(),
            slot: 0x9000,
            assumed: 0,
            history: vec![],
            unreached: None,
            old_code_kept: None,
        }
    }

    #[test]
    fn an_interrupted_change_is_settled_by_memory() {
        let region = |addr| RegionRecord {
            addr,
            len: 0x3000,
            ..RegionRecord::default()
        };
        let mut j = Journal {
            patches: vec![record("f", 0x1000, 1)],
            regions: vec![region(0x9000)],
            ..Journal::default()
        };
        let after = State {
            patches: vec![record("f", 0x1000, 2), record("g", 0x2000, 1), record("h", 0x3000, 1)],
            regions: vec![region(0x9000), region(0x20000)],
            added: vec![],
            changes: 1,
            code_blocks: None,
        };
        let write = |record, addr, bytes: &str| IntentWrite {
            record,
            addr,
            bytes: bytes.into(),
        };
        j.intent = Some(Intent {
            by: "patch".into(),
            after,
            history_appended: false,
            // f's slot got its new value, g's entry its jump; h's write
            // never happened; a damaged hex string is never "done".
            writes: vec![
                write(0x1000, 0x9000, "aabb"),
                write(0x2000, 0x2000, "ff25"),
                write(0x3000, 0x3000, "ff25"),
                write(0x3000, 0x3002, "zz"),
            ],
        });
        let memory = |addr: u64, len: usize| -> Option<Vec<u8>> {
            let bytes: &[u8] = match addr {
                0x9000 => &[0xaa, 0xbb],
                0x2000 => &[0xff, 0x25],
                _ => &[0x55, 0x48],
            };
            Some(bytes[..len.min(bytes.len())].to_vec())
        };
        let mapped = |addr: u64| addr != 0x20000;
        let note = j.recover(&memory, &mapped).unwrap();
        assert!(note.contains("2 of the 3 functions"), "{note}");
        let mut names: Vec<(String, u32)> = j.patches.iter().map(|p| (p.name.clone(), p.generation)).collect();
        names.sort();
        assert_eq!(names, [("f".to_string(), 2), ("g".to_string(), 1)]);
        // The new pool was never mapped: not recorded.
        assert_eq!(j.regions.iter().map(|r| r.addr).collect::<Vec<_>>(), [0x9000]);
        assert!(j.intent.is_none());
        assert!(j.recover(&memory, &mapped).is_none());
    }

    #[test]
    fn a_settled_patch_appends_its_generation_to_the_history() {
        let generation = |n: u32| Generation {
            generation: n,
            change: u64::from(n),
            at: 0,
            source: None,
            code: 0x5000 + u64::from(n),
            slot_value: 0x5000 + u64::from(n),
            size: 0x10,
            calls: Vec::new(),
            signature_calls: Vec::new(),
            signature: None,
            signature_key: None,
            block: None,
        };
        let mut before = record("f", 0x1000, 1);
        before.history = vec![generation(1)];
        let mut j = Journal {
            patches: vec![before],
            ..Journal::default()
        };
        let mut after = record("f", 0x1000, 2);
        after.history = vec![generation(2)];
        j.intent = Some(Intent {
            by: "patch".into(),
            after: State {
                patches: vec![after],
                ..State::default()
            },
            writes: vec![IntentWrite {
                record: 0x1000,
                addr: 0x9000,
                bytes: "aa".into(),
            }],
            history_appended: true,
        });
        j.recover(&|_, _| Some(vec![0xaa]), &|_| true).unwrap();
        let history: Vec<u32> = j.patches[0].history.iter().map(|g| g.generation).collect();
        assert_eq!(history, [1, 2]);
        assert_eq!(j.patches[0].generation, 2);
    }
}

#[cfg(test)]
mod history_file_tests {
    use super::*;

    fn generation(n: u32, change: u64) -> Generation {
        Generation {
            generation: n,
            change,
            at: 0,
            source: Some("app.c".into()),
            code: 0x5000 + u64::from(n),
            slot_value: 0x5000 + u64::from(n),
            size: 0x10,
            calls: Vec::new(),
            signature_calls: Vec::new(),
            signature: None,
            signature_key: None,
            block: None,
        }
    }

    /// The pool every generation's code is in.
    fn pool() -> RegionRecord {
        RegionRecord {
            addr: 0x5000,
            len: 0x1000,
            ..RegionRecord::default()
        }
    }

    /// Commits generation `n` of f as change `change`.
    fn patch_f(j: &mut Journal, dir: &StateDir, n: u32, change: u64) {
        let mut state = j.state();
        state.changes = change;
        if state.regions.is_empty() {
            state.regions.push(pool());
        }
        match state.patches.iter_mut().find(|p| p.orig_addr == 0x1000) {
            Some(p) => {
                p.generation = n;
                p.history.push(generation(n, change));
            }
            None => state.patches.push(PatchRecord {
                current_addr: 0x5000,
                history: vec![generation(n, change)],
                ..super::tests::record("f", 0x1000, n)
            }),
        }
        j.commit(dir, state).unwrap();
    }

    fn generations(j: &Journal) -> Vec<u32> {
        j.patches[0].history.iter().map(|g| g.generation).collect()
    }

    /// The journal file every transaction reads keeps one generation per
    /// record however many patches were made (it held all of them, and
    /// every patch got slower as the history grew); the history file
    /// keeps the rest for `status` and `revert --last`.
    #[test]
    fn the_journal_keeps_only_the_running_generation() {
        let root = tempfile::tempdir().unwrap();
        let dir = &StateDir::at(root.path().join("state")).unwrap();
        let mut j = Journal::load(dir, 7, 99, "/bin/x").unwrap();
        for n in 1..=12 {
            patch_f(&mut j, dir, n, u64::from(n));
            j = Journal::load(dir, 7, 99, "/bin/x").unwrap();
            assert_eq!(generations(&j), [n], "the journal file holds generation {n} only");
        }
        j.load_history(dir).unwrap();
        assert_eq!(generations(&j), (5..=12).collect::<Vec<_>>());

        // revert --last: generation 11 runs again, and 12 is gone.
        let mut state = j.state();
        let p = &mut state.patches[0];
        p.history.pop();
        p.generation = 11;
        j.commit(dir, state).unwrap();
        let mut j = Journal::load(dir, 7, 99, "/bin/x").unwrap();
        j.load_history(dir).unwrap();
        assert_eq!(generations(&j), (4..=11).collect::<Vec<_>>());

        // A later patch makes a new generation 12.
        patch_f(&mut j, dir, 12, 13);
        let mut j = Journal::load(dir, 7, 99, "/bin/x").unwrap();
        j.load_history(dir).unwrap();
        assert_eq!(generations(&j), (5..=12).collect::<Vec<_>>());
        assert_eq!(j.patches[0].history.last().unwrap().change, 13);

        // Reverted for good, then patched anew: it counts from 1 again.
        let mut state = j.state();
        state.patches.clear();
        j.commit(dir, state).unwrap();
        let mut j = Journal::load(dir, 7, 99, "/bin/x").unwrap();
        patch_f(&mut j, dir, 1, 14);
        patch_f(&mut j, dir, 2, 15);
        let mut j = Journal::load(dir, 7, 99, "/bin/x").unwrap();
        j.load_history(dir).unwrap();
        assert_eq!(generations(&j), [1, 2]);
        assert_eq!(j.patches[0].history[0].change, 14);
    }

    /// A generation whose pool was freed (see `reclaim`) is no longer in
    /// the history: `revert --last` must not go back to its code.
    #[test]
    fn generations_of_freed_pools_leave_the_history() {
        let root = tempfile::tempdir().unwrap();
        let dir = &StateDir::at(root.path().join("state")).unwrap();
        let mut j = Journal::load(dir, 7, 99, "/bin/x").unwrap();
        for n in 1..=4 {
            patch_f(&mut j, dir, n, u64::from(n));
        }
        j.load_history(dir).unwrap();
        assert_eq!(generations(&j), [1, 2, 3, 4]);
        // The pool now starts past generations 1 and 2 (0x5001, 0x5002).
        let mut state = j.state();
        state.regions = vec![RegionRecord {
            addr: 0x5003,
            len: 0x0ffd,
            ..RegionRecord::default()
        }];
        j.commit(dir, state).unwrap();
        let mut j = Journal::load(dir, 7, 99, "/bin/x").unwrap();
        j.load_history(dir).unwrap();
        assert_eq!(generations(&j), [3, 4]);
    }

    /// A pool stays for good when something was constructed in it, or
    /// when the unwinder may hold one of its tables: `status` and the
    /// search for pools to free both ask this.
    #[test]
    fn a_pool_with_a_table_the_unwinder_may_hold_stays_for_good() {
        let mut r = pool();
        assert_eq!(r.stays_for_good(), None);
        r.frames.push(FrameRecord {
            eh_frame: 0x5400,
            uncertain: true,
            ..FrameRecord::default()
        });
        let why = r.stays_for_good().unwrap();
        assert!(why.contains("0x5400") && why.contains("did not return"), "{why}");
        r.pinned = Some("a global was constructed in it".into());
        assert_eq!(r.stays_for_good().as_deref(), Some("a global was constructed in it"));
    }

    /// A journal written by an older relive, with whole histories inline,
    /// keeps them: they move to the history file at the next save.
    #[test]
    fn inline_histories_of_older_journals_move_to_the_history_file() {
        let root = tempfile::tempdir().unwrap();
        let dir = &StateDir::at(root.path().join("state")).unwrap();
        let mut j = Journal::load(dir, 7, 99, "/bin/x").unwrap();
        patch_f(&mut j, dir, 1, 1);
        let mut old = serde_json::to_value(&j).unwrap();
        old["patches"][0]["generation"] = 3.into();
        old["patches"][0]["history"] =
            serde_json::to_value([generation(1, 1), generation(2, 2), generation(3, 3)]).unwrap();
        old["changes"] = 3.into();
        std::fs::remove_file(dir.path().join("7-99.history")).unwrap();
        dir.write_private("7-99.json", &serde_json::to_vec(&old).unwrap())
            .unwrap();
        let mut j = Journal::load(dir, 7, 99, "/bin/x").unwrap();
        assert_eq!(generations(&j), [1, 2, 3]);
        j.save(dir).unwrap();
        let mut j = Journal::load(dir, 7, 99, "/bin/x").unwrap();
        assert_eq!(generations(&j), [3]);
        j.load_history(dir).unwrap();
        assert_eq!(generations(&j), [1, 2, 3]);
    }
}

#[cfg(test)]
mod code_block_tests {
    use super::*;

    /// A patch's block of pool code is kept while some function runs code
    /// in it (a record's current code, or an added function) and dropped
    /// once superseded, so telling what new code can reach reads the live
    /// code only, however many patches were made.
    #[test]
    fn blocks_of_superseded_code_are_dropped() {
        let root = tempfile::tempdir().unwrap();
        let dir = &StateDir::at(root.path().join("state")).unwrap();
        let mut j = Journal::load(dir, 7, 99, "/bin/x").unwrap();
        let mut state = j.state();
        state.code_blocks = Some(vec![(0x5000, 0x5100), (0x6000, 0x6100), (0x7000, 0x7100)]);
        state.patches.push(PatchRecord {
            current_addr: 0x6010,
            ..super::tests::record("f", 0x1000, 2)
        });
        state.added.push(AddedRecord {
            initial: None,
            name: "helper".into(),
            file: None,
            local: true,
            key: None,
            addr: 0x7080,
            size: 0x10,
            kind: "function".into(),
            change: None,
            hook: None,
        });
        j.commit(dir, state).unwrap();
        assert_eq!(j.code_blocks, Some(vec![(0x6000, 0x6100), (0x7000, 0x7100)]));
        let j = Journal::load(dir, 7, 99, "/bin/x").unwrap();
        assert_eq!(j.code_blocks, Some(vec![(0x6000, 0x6100), (0x7000, 0x7100)]));
    }
}
