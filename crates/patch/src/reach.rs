//! Whether the new code of a patched function can run at all.
//!
//! Redirecting an entry makes every *later call* run the new code. A
//! change can still never be seen: when the function is only ever entered
//! once and is running now (`main`'s loop, a thread's start routine), or
//! when its out-of-line copy is called by nothing (the compiler inlined it
//! into its callers) and the callers that carry the change are themselves
//! stuck in their old code. relive must say so instead of printing
//! "patched". The analysis is evidence-based and errs towards "reachable":
//! any call site, taken address or reference from reachable new code
//! counts.

use foldhash::{HashMap, HashMapExt};

use relive_process::{Mapping, Process, ThreadPosition};
use serde::Serialize;

/// Bytes of one thread's stack scanned for return addresses and pointers.
pub(crate) const STACK_SCAN: u64 = 1 << 20;
/// Writable memory of the image (and its heap) scanned for stored function
/// pointers, at most.
const DATA_SCAN: u64 = 64 << 20;

/// One redirected function, as the analysis needs it.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub name: String,
    /// Its original entry and size in the program.
    pub old: u64,
    pub size: u64,
    /// Where its new code lies (start, end): what that code refers to is
    /// `referenced_by`, counted only once the referring code can run. As
    /// evidence of its own, a cold part the new code jumps to, or a helper
    /// it calls, was "called" by code that no thread may ever run, and
    /// made the whole patch look reachable.
    pub new_code: (u64, u64),
    /// Other candidates (indices) whose new code calls or refers to this
    /// one.
    pub referenced_by: Vec<usize>,
    /// Exported from a shared library: any module (or `dlsym`) may call
    /// it.
    pub exported: bool,
    /// The program's entry function (`main`): entered once, never again.
    pub entry_once: bool,
}

/// What the analysis found for one candidate.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Reach {
    /// Some later call can run the new code.
    pub reachable: bool,
    /// Threads with a running call of the old code (those calls finish in
    /// it).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub running: Vec<u32>,
    /// Why the new code is not reachable, or what to know about it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Reachable, but running as the outermost function of some thread
    /// (a worker's loop): that call keeps the old code for the life of
    /// the thread.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub for_good: bool,
    /// The new code differs from the old only in line numbers (`__LINE__`
    /// of an assertion or a log) that an edit above the function moved by
    /// this many lines (positive: down): a patch the user made no edit
    /// for, said as such (a SQLite trial: one edit patched 14 functions
    /// with no word on why).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lines_moved: Option<i64>,
    /// Other functions of the patch that the code of its running calls
    /// has inlined: those calls run their old code too until they return
    /// (the note says so), whatever their own redirects do.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub inlined_old: Vec<String>,
}

/// Evidence about one candidate.
#[derive(Debug, Default, Clone)]
struct Evidence {
    /// Direct calls and jumps to the entry from code that still runs.
    calls: usize,
    /// Other references to the entry: an address taken in code or stored
    /// in data.
    addresses: usize,
    running: Vec<u32>,
    /// Running as the outermost function of the home module on some
    /// thread's stack: entered once, for the life of the thread.
    outermost: Option<u32>,
    /// Direct calls from the part of the program's entry function its
    /// thread has left behind (see [`crate::flow`]): they never run again.
    passed: usize,
}

/// The patches' memory [`analyse`] reads besides the program's: ranges of
/// code (patch regions' live code) and of data (the tables patches
/// copied, and the variables they added).
pub struct PoolMemory<'a> {
    pub code: &'a [(u64, u64)],
    pub data: &'a [(u64, u64)],
    /// Code among `code` that never runs (a patched `main`, whose running
    /// call keeps its old code): its calls reach nothing. A function it
    /// calls was said patched, "later calls run the new one", while only
    /// the old `main` called it (a libuv trial's `uv_run`).
    pub dead: &'a [(u64, u64)],
}

/// Analyses `candidates` (already redirected) in `process`, whose home
/// module (the one patched) is `home`. `stacks` are the threads' stacks,
/// where their positions are known. `pools` are the patches'
/// memory: code that may call them, and data that may hold their
/// addresses. `entry` is the program's entry function (`main`: address
/// and size) in the home module, if known: entered once, so a call in the
/// part of it its thread has passed never runs again.
/// `program_entry`: the program's entry point (`_start`), whose address
/// the top of the main thread's stack holds (the auxiliary vector's
/// `AT_ENTRY`); see [`running_frames`].
pub fn analyse(
    process: &dyn Process,
    home: &str,
    pools: &PoolMemory,
    candidates: &[Candidate],
    stacks: &Stacks,
    entry: Option<(u64, u64)>,
    program_entry: Option<u64>,
) -> Vec<Reach> {
    let maps = &stacks.maps;
    let Some(mut code) = read_code(process, maps, home) else {
        return candidates.iter().map(|_| unknown()).collect();
    };
    for &(start, end) in pools.code {
        let mut bytes = vec![0u8; end.saturating_sub(start) as usize];
        if !bytes.is_empty() && process.read(start, &mut bytes).is_ok() {
            code.push((start, bytes));
        }
    }
    let mut evidence = vec![Evidence::default(); candidates.len()];
    let by_entry = Entries::new(candidates);

    // Where the entry function's running call can go from here.
    let mut entry_from: Vec<u64> = Vec::new();
    // The program's own code, when the home module is a library (the
    // mapping of the entry point's): a library function its `main` calls
    // again and again is no thread's outermost function, though no code
    // of the library is above its frame (a jq trial: libjq's input
    // function, under `main`'s loop, said to keep its old code for good).
    let program_code: Vec<(u64, u64)> = program_entry
        .and_then(|at| maps.iter().find(|m| m.contains(at)))
        .filter(|m| !of_module(m, home))
        .map(|program| {
            maps.iter()
                .filter(|m| m.path == program.path && m.executable())
                .map(|m| (m.start, m.end))
                .collect()
        })
        .unwrap_or_default();
    // Who is running which old body: PCs and return addresses on stacks.
    for t in &stacks.threads {
        let (tid, pc, sp, words) = (t.tid, t.pc, t.sp, t.words.as_slice());
        // A function pointer held in a local variable (a `dlsym` result).
        for (i, n) in count_entries(words, &by_entry) {
            evidence[i].addresses += n;
        }
        if let Some((a, len)) = entry {
            let inside = |v: u64| a < v && v < a + len;
            if inside(pc) || pc == a {
                entry_from.push(pc);
            }
            for w in words.chunks_exact(8) {
                let v = u64::from_le_bytes(w.try_into().expect("8 bytes"));
                // Also just past its end: its last instruction a call that
                // never returns (GCC drops what follows a call of a loop
                // that never ends), whose return address ends the body.
                // Every call in it is then behind its thread (such a call
                // counted as a live one, and the loop's edit was said to
                // reach later calls: a re-check).
                if (inside(v) || v == a + len) && after_call(&code, v) {
                    entry_from.push(v);
                }
            }
        }
        // The frames the unwind tables show, where the whole stack can be
        // walked; else every word that looks like a return address (a
        // stale one too: a bc trial's `execute` was said to be running).
        // Walked, the words left are return addresses, into whatever code
        // (a scan's are checked against the home module's code alone).
        let callers_elsewhere = match t.frames {
            Some(_) => &program_code[..],
            None => &[],
        };
        for (i, frame) in running_frames(
            &code,
            candidates,
            (pc, sp),
            t.scanned(),
            program_entry,
            callers_elsewhere,
        ) {
            let e = &mut evidence[i];
            if !e.running.contains(&tid) {
                e.running.push(tid);
            }
            if frame.outermost {
                e.outermost.get_or_insert(tid);
            }
        }
    }
    let running = |i: usize| !evidence[i].running.is_empty();
    let stale: Vec<(u64, u64)> = candidates
        .iter()
        .enumerate()
        .filter(|&(i, _)| !running(i))
        .map(|(_, c)| (c.old, c.old + c.size.max(1)))
        .collect();
    let in_stale = |site: u64| stale.iter().any(|&(lo, hi)| lo <= site && site < hi);
    // The instructions of the entry function that can still run, when
    // its thread's position in it is known and its flow can be followed.
    // Decoded only when a call into a candidate lies in it (a large
    // `main` is thousands of instructions).
    let entry = entry.filter(|_| !entry_from.is_empty());
    let entry_live: std::cell::OnceCell<Option<Vec<(u64, u64)>>> = std::cell::OnceCell::new();
    let passed_in_entry = |site: u64| {
        let Some((a, len)) = entry.filter(|&(a, len)| a <= site && site < a + len) else {
            return false;
        };
        let live = entry_live.get_or_init(|| {
            let (start, bytes) = code.iter().find(|(s, b)| *s <= a && a + len <= s + b.len() as u64)?;
            let at = (a - start) as usize;
            crate::flow::reachable(&bytes[at..at + len as usize], a, &entry_from)
        });
        live.as_ref().is_some_and(|live| !crate::flow::covers(live, site))
    };

    // Once every candidate is reachable on evidence of its own, nothing
    // more evidence can change the outcome (the notes of reachable code
    // come from the stacks, read above): the scan of the program's code
    // and data stops there. A patched function's caller is usually found
    // in the first part of the code, and the scan was most of a small
    // patch's time.
    let settled = |evidence: &[Evidence]| candidates.iter().zip(evidence).all(|(c, e)| can_run(c, e));
    let in_new_code = |site: u64| candidates.iter().any(|c| c.new_code.0 <= site && site < c.new_code.1);
    let mut done = settled(&evidence);

    // Call sites and taken addresses in the code that runs.
    let blocks = if done { &code[..0] } else { &code[..] };
    'scan: for (start, bytes) in blocks {
        for p in 0..bytes.len().saturating_sub(3) {
            let field: [u8; 4] = bytes[p..p + 4].try_into().expect("4 bytes");
            let site = start + p as u64;
            let relative = site
                .wrapping_add(4)
                .wrapping_add(i32::from_le_bytes(field) as i64 as u64);
            let absolute = u64::from(u32::from_le_bytes(field));
            // A zero field "refers" to the next byte: zero padding just
            // before a function would look like a reference to it.
            if field == [0; 4] {
                continue;
            }
            // An 8-byte address in code: the absolute jump of a stub
            // relive linked in (a call from pool code to a function in
            // another pool goes through one).
            let wide = bytes
                .get(p..p + 8)
                .map(|w| u64::from_le_bytes(w.try_into().expect("8 bytes")))
                .unwrap_or(0);
            // A short jump (`jmp rel8`, `jcc rel8`): a neighbour's tail
            // call (`middle: jmp depth`, two bytes). Read as one wherever
            // such a byte is: a stray match only makes a function count as
            // called, never the reverse.
            let short = (bytes[p] == 0xeb || bytes[p] & 0xf0 == 0x70)
                .then(|| site.wrapping_add(2).wrapping_add(bytes[p + 1] as i8 as i64 as u64));
            // Almost no byte is one: one range test each first.
            if !(by_entry.may_hold(relative)
                || by_entry.may_hold(absolute)
                || by_entry.may_hold(wide)
                || short.is_some_and(|t| by_entry.may_hold(t)))
            {
                continue;
            }
            let targets = [(relative, true, false), (absolute, false, false), (wide, false, false)];
            for (target, rel, is_short) in targets.into_iter().chain(short.map(|t| (t, true, true))) {
                let Some(i) = by_entry.get(target) else { continue };
                let c = &candidates[i];
                let dead = pools.dead.iter().any(|&(lo, hi)| lo <= site && site < hi);
                if (c.old..c.old + c.size.max(1)).contains(&site) || dead {
                    continue;
                }
                let branch = is_short
                    || (rel
                        && p >= 1
                        && (matches!(bytes[p - 1], 0xe8 | 0xe9)
                            || (p >= 2 && bytes[p - 2] == 0x0f && bytes[p - 1] & 0xf0 == 0x80)));
                // Code this patch replaces calls nothing again; but an
                // address it took when it ran may be kept anywhere, in
                // memory no scan reads (a redis trial: `beforeSleep`,
                // whose address `initServer` stored in the event loop
                // jemalloc allocated, said to have no caller as
                // `initServer` was patched with it).
                if branch && in_stale(site) {
                    continue;
                }
                // An address taken in passed code still counts: it may be
                // kept in a register the loop calls through.
                if in_new_code(site) {
                    continue;
                }
                let e = &mut evidence[i];
                match (branch, branch && passed_in_entry(site)) {
                    (true, true) => e.passed += 1,
                    (true, false) => e.calls += 1,
                    (false, _) => e.addresses += 1,
                }
                if settled(&evidence) {
                    done = true;
                    break 'scan;
                }
            }
        }
    }
    // Function pointers stored in the image's data and the heap.
    if !done {
        for (i, n) in stored_pointers(process, maps, home, pools.data, &by_entry) {
            evidence[i].addresses += n;
        }
    }

    // New code that can run reaches what it calls.
    // The entry function running as the outermost frame is never entered
    // again; another outermost function (a thread's start routine) is, if
    // the program starts a new thread with it.
    let mut reachable: Vec<bool> = evidence.iter().zip(candidates).map(|(e, c)| can_run(c, e)).collect();
    loop {
        let mut grew = false;
        for (i, c) in candidates.iter().enumerate() {
            if !reachable[i] && c.referenced_by.iter().any(|&j| reachable[j]) {
                reachable[i] = true;
                grew = true;
            }
        }
        if !grew {
            break;
        }
    }

    candidates
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let e = &evidence[i];
            // As people write it: a C++ name was said mangled (a LevelDB trial).
            let name = crate::names::readable(&c.name);
            let note = if reachable[i] && e.outermost.is_some() {
                Some(format!(
                    "{} is the outermost function running on thread {}: those calls keep the old code for good; only a new call (a thread started with it) runs the new one",
                    name,
                    list(&e.running)
                ))
            } else if reachable[i] {
                (!e.running.is_empty()).then(|| {
                    format!(
                        "{} is running on thread {}: that call finishes in the old code; later calls, if the program makes any, run the new one (a function called once, at start-up, never does)",
                        name,
                        list(&e.running)
                    )
                })
            } else if e.passed > 0 && !e.running.is_empty() {
                // Its own running call is what main waits in (a libuv
                // trial's `uv_run`: the note said it was called from a part
                // of main already passed, as if the call were over).
                Some(format!(
                    "{} is running on thread {}, called from main, which will not call it again: that call keeps the old code as long as it runs (a loop that never returns: for good), so its new code never runs; move the loop's work into a function it calls, or restart the program",
                    name,
                    list(&e.running)
                ))
            } else if e.passed > 0 {
                Some(format!(
                    "{} is called only from the part of main that its thread has passed and will not run again (the compiler may have moved the call out of main's loop and kept its result), so its new code never runs; move the loop's work into a function main calls, or restart the program",
                    name
                ))
            } else if c.entry_once && e.outermost.is_none() {
                Some(format!(
                    "{} is the program's entry function, which ran when the program started and nothing calls again, so its new code never runs; move the code you edit into a function it calls, or restart the program",
                    name
                ))
            } else if let Some(tid) = e.outermost.filter(|_| c.entry_once) {
                Some(format!(
                    "{} is the outermost function running on thread {tid} and nothing calls it again, so its running call keeps the old code for good; move the code you edit (a loop's body) into a function it calls, or restart the program",
                    name
                ))
            } else {
                let via: Vec<String> = c
                    .referenced_by
                    .iter()
                    .map(|&j| crate::names::readable(&candidates[j].name))
                    .collect();
                Some(if via.is_empty() {
                    format!(
                        "{NOTHING_CALLS} {} or takes its address (its callers have it inlined, or it is unused), so its own new code never runs; where callers have it inlined, the edit runs in their new code (patched with it when they changed with it)",
                        name
                    )
                } else {
                    format!(
                        "{NOTHING_CALLS} {} (its callers have it inlined); only the new code of {} does, and that cannot run either",
                        name,
                        via.join(", ")
                    )
                })
            };
            Reach {
                reachable: reachable[i],
                running: e.running.clone(),
                note,
                for_good: reachable[i] && e.outermost.is_some(),
                lines_moved: None,
                inlined_old: Vec::new(),
            }
        })
        .collect()
}

/// How the note of a function no call reaches begins: its entry leads to
/// its new code, and no call runs either version (an inlined copy runs in
/// its callers, which are compared on their own).
pub const NOTHING_CALLS: &str = "nothing in the program calls";

/// How the note of a function whose code changed only in line numbers
/// starts ([`lines_moved_note`]): `verify` counts it as matching.
pub const ONLY_LINES: &str = "only the line numbers of";

/// The note of `name`, a function whose code differs from what runs only
/// in line numbers moved by `delta` ([`crate::line_shift`]); `reachable`:
/// whether later calls run its new code (they log the new numbers);
/// `uncalled`: it cannot because nothing calls it (said so: "cannot run"
/// read as a running loop's, a libuv trial's `uv_shutdown`).
/// Named: a reload's notes are listed under the file, and two such
/// functions' notes read alike (a redis re-check).
pub fn lines_moved_note(name: &str, delta: i64, reachable: bool, uncalled: bool) -> String {
    format!(
        "{ONLY_LINES} {} changed (lines added or removed above moved it {}): {}",
        crate::names::readable(name),
        lines_moved_by(delta),
        match (reachable, uncalled) {
            (true, _) => "patched so that its assertions and logs give the new numbers; nothing else in it changed",
            (false, true) => "nothing in the program calls it, so its new code never runs; it differs from the old code in those numbers alone",
            (false, false) => "its new code cannot run, but it differs from the old code in those numbers alone",
        }
    )
}

/// `delta` lines (positive: down) in words: `3 lines down`, `1 line up`.
pub fn lines_moved_by(delta: i64) -> String {
    let lines = delta.unsigned_abs();
    format!(
        "{lines} line{} {}",
        if lines == 1 { "" } else { "s" },
        if delta > 0 { "down" } else { "up" }
    )
}

/// How many functions a line of text names before it counts the rest: a
/// reload's summary and the notes under it list alike (they said "83
/// more" and "85 more" of one list).
pub const LISTED: usize = 8;

/// One note for several functions whose code changed only in line
/// numbers (`(symbol, lines moved, reachable)`): which they are, how far
/// they moved, and which of them cannot run. The list is shortened: an
/// edit near the top of a large unit moves hundreds.
pub fn lines_moved_together_note(moved: &[(&str, i64, bool)]) -> String {
    let listed = |names: Vec<String>| -> String {
        let more = names.len().saturating_sub(LISTED);
        let mut text = names.into_iter().take(LISTED).collect::<Vec<_>>().join(", ");
        if more > 0 {
            text.push_str(&format!(" and {more} more"));
        }
        text
    };
    let names = listed(moved.iter().map(|(n, _, _)| crate::names::readable(n)).collect());
    let how_far = match moved.first().map(|m| m.1) {
        Some(delta) if moved.iter().all(|m| m.1 == delta) => format!(" {}", lines_moved_by(delta)),
        _ => String::new(),
    };
    let idle: Vec<String> = moved
        .iter()
        .filter(|m| !m.2)
        .map(|(n, _, _)| crate::names::readable(n))
        .collect();
    let idle = match idle.len() {
        0 => String::new(),
        1 => format!("; the new code of {} cannot run", idle[0]),
        _ => format!("; the new code of {} cannot run", listed(idle)),
    };
    format!(
        "{ONLY_LINES} {names} changed (lines added or removed above moved them{how_far}): patched so that their assertions and logs give the new numbers; nothing else in them changed{idle}"
    )
}

/// No evidence either way (the process's mappings or code could not be
/// read): reachable, as before the analysis existed.
pub fn unknown() -> Reach {
    Reach {
        reachable: true,
        running: Vec::new(),
        note: None,
        for_good: false,
        lines_moved: None,
        inlined_old: Vec::new(),
    }
}

fn list(tids: &[u32]) -> String {
    tids.iter().map(u32::to_string).collect::<Vec<_>>().join(", ")
}

/// Whether mapping `m` is of module `path`: also when the file was
/// replaced on disk while the program runs (rebuilt), which
/// `/proc/PID/maps` shows as `PATH (deleted)`.
fn of_module(m: &Mapping, path: &str) -> bool {
    m.path == path || m.path.strip_suffix(" (deleted)") == Some(path)
}

/// The home module's executable mappings and their bytes; `None` when it
/// has some and none could be read.
fn read_code(process: &dyn Process, maps: &[Mapping], home: &str) -> Option<Vec<(u64, Vec<u8>)>> {
    let mappings: Vec<&Mapping> = maps
        .iter()
        .filter(|m| of_module(m, home) && m.executable() && m.readable())
        .collect();
    let code: Vec<(u64, Vec<u8>)> = mappings
        .iter()
        .filter_map(|m| {
            let mut bytes = vec![0u8; (m.end - m.start) as usize];
            process.read(m.start, &mut bytes).ok()?;
            Some((m.start, bytes))
        })
        .collect();
    // Code the process has but relive could not read (a process that
    // exits as it is patched) is no evidence that nothing calls the new
    // code: it was said NOT REACHABLE, under load, of a function `main`
    // called on every loop, in a program that had just died.
    (mappings.is_empty() || !code.is_empty()).then_some(code)
}

struct Frame {
    outermost: bool,
}

/// For each of `ranges` (code of a patch's earlier generations, in its
/// pools), the threads whose PC is in it or whose stack holds a return
/// address into it: a call running that code. Reads only the threads'
/// stacks and the ranges' own bytes (a full [`analyse`] reads the program's
/// code too, which made every re-patch half a millisecond slower).
pub(crate) fn threads_in(process: &dyn Process, ranges: &[(u64, u64)], stacks: &Stacks) -> Vec<Vec<u32>> {
    let mut found: Vec<Vec<u32>> = ranges.iter().map(|_| Vec::new()).collect();
    if ranges.is_empty() {
        return found;
    }
    // The bytes just before each range too: a call ending at its start.
    let code: Vec<(u64, Vec<u8>)> = ranges
        .iter()
        .filter_map(|&(start, end)| {
            let from = start.saturating_sub(8);
            let mut bytes = vec![0u8; end.saturating_sub(from) as usize];
            process.read(from, &mut bytes).ok().map(|()| (from, bytes))
        })
        .collect();
    let hit = |a: u64| ranges.iter().position(|&(start, end)| start <= a && a < end);
    for t in &stacks.threads {
        let mut in_range: Vec<usize> = hit(t.pc).into_iter().collect();
        // The frames the unwind tables show where the stack can be walked
        // (a stale word is no call), else every word.
        in_range.extend(
            t.scanned()
                .filter_map(|(_, value)| hit(value).filter(|_| after_call(&code, value))),
        );
        in_range.sort_unstable();
        in_range.dedup();
        for k in in_range {
            found[k].push(t.tid);
        }
    }
    found
}

/// The threads' stacks, read and walked once for all that a command asks
/// of them (a patch's reachability asked three times, each reading every
/// stack and every module's unwind tables again).
pub struct Stacks {
    /// The process's mappings when the stacks were read.
    pub(crate) maps: Vec<Mapping>,
    threads: Vec<ThreadStack>,
    /// Some thread's position or stack was not known.
    unknown: bool,
    /// Every thread's pc and scanned stack words, sorted: what
    /// [`Stacks::any_in`] searches (built at its first question; a
    /// patch asks once per symbol file of the process).
    values: std::cell::OnceCell<Vec<u64>>,
}

/// One thread's stack.
struct ThreadStack {
    tid: u32,
    pc: u64,
    sp: u64,
    /// Where `words` start (below `sp` by nothing: see [`read_stack`]).
    from: u64,
    /// Its stack's bytes, every word.
    words: Vec<u8>,
    /// Only the words holding its frames' return addresses, each with
    /// its address, where the unwind tables walk the whole stack.
    frames: Option<Vec<(u64, u64)>>,
}

impl ThreadStack {
    /// What a scan for return addresses should see, each word with its
    /// address: the walked frames' words, else every word.
    fn scanned(&self) -> Box<dyn Iterator<Item = (u64, u64)> + '_> {
        match &self.frames {
            Some(frames) => Box::new(frames.iter().copied()),
            None => Box::new(with_addresses(self.from, &self.words)),
        }
    }
}

impl Stacks {
    /// The stacks of the threads at `threads` (those with a position),
    /// walked with the modules' unwind tables and the pools' (`frames`);
    /// `None` when the process's mappings cannot be read.
    pub fn read(process: &dyn Process, threads: &[ThreadPosition], frames: &[(u64, u64)]) -> Option<Stacks> {
        let maps = process.maps().ok()?;
        let walker = crate::stack_walk::StackWalker::new(process, &maps, frames);
        let unreadable = std::cell::Cell::new(false);
        let unknown_position = threads.iter().any(|&(_, position, _)| position.is_none());
        let threads = threads
            .iter()
            .filter_map(|&(tid, position, frame_pointer)| {
                let (pc, sp) = position?;
                let (from, words) = read_stack(process, &maps, sp).unwrap_or_else(|| {
                    // Its return addresses are not known (see `any_in`).
                    unreadable.set(true);
                    (sp, Vec::new())
                });
                let frames = walker.frame_words(pc, sp, frame_pointer, from, &words);
                Some(ThreadStack {
                    tid,
                    pc,
                    sp,
                    from,
                    words,
                    frames,
                })
            })
            .collect();
        drop(walker);
        let unknown = unknown_position || unreadable.get();
        Some(Stacks {
            maps,
            threads,
            unknown,
            values: std::cell::OnceCell::new(),
        })
    }

    /// Whether some thread may be running code at `[start, end)`: its pc
    /// is there or a return address its stack holds (as the reachability
    /// scan sees them), or its position or stack was not known. The
    /// stacks are read after the threads were let go (the pcs are from
    /// the stop): a frame read then is one still running, or newer; a
    /// frame of code no call enters any more (superseded) that returned
    /// meanwhile is missed, harmlessly.
    pub fn any_in(&self, start: u64, end: u64) -> bool {
        let values = self.values.get_or_init(|| {
            let mut values: Vec<u64> = self
                .threads
                .iter()
                .flat_map(|t| std::iter::once(t.pc).chain(t.scanned().map(|(_, value)| value)))
                .collect();
            values.sort_unstable();
            values.dedup();
            values
        });
        let first = values.partition_point(|&v| v < start);
        self.unknown || values.get(first).is_some_and(|&v| v < end)
    }
}

fn byte_at(code: &[(u64, Vec<u8>)], a: u64) -> Option<u8> {
    code.iter()
        .find(|(s, b)| *s <= a && a < s + b.len() as u64)
        .map(|(s, b)| b[(a - s) as usize])
}

/// Whether `addr` follows a call instruction in `code` (each piece: its
/// address and bytes): a return address, not a stray value.
pub(crate) fn after_call(code: &[(u64, Vec<u8>)], addr: u64) -> bool {
    let byte = |a: u64| byte_at(code, a);
    if byte(addr.wrapping_sub(5)) == Some(0xe8) {
        return true;
    }
    // call *r/m: ff /2, 2 to 7 bytes long.
    (2..=7).any(|n| {
        byte(addr.wrapping_sub(n)) == Some(0xff)
            && byte(addr.wrapping_sub(n - 1)).is_some_and(|modrm| (modrm >> 3) & 7 == 2)
    })
}

/// The bytes of the stack a thread at `sp` uses ([`stack_range`]), read
/// from `process`, and where they start; `None` when no mapping holds `sp`
/// or it cannot be read.
pub(crate) fn read_stack(process: &dyn Process, maps: &[Mapping], sp: u64) -> Option<(u64, Vec<u8>)> {
    let (from, to) = stack_range(maps, sp, 0)?;
    let mut bytes = vec![0u8; (to - from) as usize];
    process.read(from, &mut bytes).ok().map(|()| (from, bytes))
}

/// The 8-byte words of `bytes`, which start at `from`, each with its
/// address.
fn with_addresses(from: u64, bytes: &[u8]) -> impl Iterator<Item = (u64, u64)> + '_ {
    words(bytes)
        .enumerate()
        .map(move |(k, value)| (from + 8 * k as u64, value))
}

/// The 8-byte words of `bytes`, as a stack holds them.
pub(crate) fn words(bytes: &[u8]) -> impl Iterator<Item = u64> + '_ {
    bytes
        .chunks_exact(8)
        .map(|w| u64::from_le_bytes(w.try_into().expect("8 bytes")))
}

/// The stack words a thread's scan covers: from `sp` (less `below` bytes,
/// the red zone) to the end of its mapping, at most [`STACK_SCAN`] bytes,
/// 8-byte aligned; `None` when no mapping holds `sp`.
pub(crate) fn stack_range(maps: &[Mapping], sp: u64, below: u64) -> Option<(u64, u64)> {
    let stack = maps.iter().find(|m| m.contains(sp))?;
    let from = sp.saturating_sub(below).max(stack.start) & !7;
    Some((from, stack.end.min(from + STACK_SCAN)))
}

/// The candidates a thread at `pc` with stack pointer `sp` is running,
/// with whether each is its outermost function of the home module.
/// `stack`: the words of its stack to scan, each with its address, in
/// stack order.
/// `callers_elsewhere`: code outside the home module whose return
/// addresses (the words are known to be return addresses) make a frame
/// below them no outermost one.
fn running_frames(
    code: &[(u64, Vec<u8>)],
    candidates: &[Candidate],
    (pc, sp): (u64, u64),
    stack: impl Iterator<Item = (u64, u64)>,
    program_entry: Option<u64>,
    callers_elsewhere: &[(u64, u64)],
) -> Vec<(usize, Frame)> {
    let body = |a: u64| candidates.iter().position(|c| c.old <= a && a < c.old + c.size.max(1));
    // (stack position, candidate) of each frame found; the PC counts as
    // the innermost.
    let mut frames: Vec<(u64, usize)> = Vec::new();
    // Below every word of the stack: a function without a frame of its
    // own has its return address at `sp` itself, and that word is its
    // caller's, above it (a worker's `spin`, called from the thread's
    // loop, was said to be the thread's outermost function, its calls
    // keeping the old code for good, when only the running one did).
    if let Some(i) = body(pc) {
        frames.push((sp.saturating_sub(1), i));
    }
    let mut return_addresses: Vec<u64> = Vec::new();
    for (at, value) in stack {
        // The entry point in the auxiliary vector, above every frame: a
        // `main` whose last bytes read as a call, just before `_start`,
        // made it look like a return address, so `main` was never the
        // outermost frame and an edit of its loop was said "patched" (a
        // user's trial on bzip2's driver).
        if Some(value) == program_entry {
            continue;
        }
        // A candidate's entry is a stored function pointer (`main`'s
        // address, which `__libc_start_main` keeps above `main`'s frame),
        // never a return address: where the bytes before it read as a
        // call (QuickJS's driver), it made `main` look called from above,
        // never the outermost frame, and an edit of its loop "patched".
        if candidates.iter().any(|c| c.old == value) {
            continue;
        }
        if callers_elsewhere
            .iter()
            .any(|&(start, end)| start <= value && value < end)
        {
            return_addresses.push(at);
            continue;
        }
        // Only a value just past a call in the home module's code is a
        // return address; a call that never returns (`_start`'s call of
        // `__libc_start_main`) is followed by `hlt`: not a frame anything
        // returns to.
        match byte_at(code, value) {
            Some(0xf4) | None => continue,
            Some(_) if !after_call(code, value) => continue,
            Some(_) => {}
        }
        return_addresses.push(at);
        // A return address points just past its call, inside the body (a
        // call ending a body never returns).
        if let Some(i) = body(value) {
            frames.push((at, i));
        }
    }
    let mut out: Vec<(usize, Frame)> = Vec::new();
    for &(at, i) in &frames {
        // Outermost: no return address into the home module's code above
        // this frame.
        let outermost = !return_addresses.iter().any(|&r| r > at);
        match out.iter_mut().find(|(j, _)| *j == i) {
            Some((_, f)) => f.outermost |= outermost,
            None => out.push((i, Frame { outermost })),
        }
    }
    out
}

/// Whether `c`'s new code can run on the evidence `e` alone: a call or a
/// taken address in code that runs, or an exported entry. The program's
/// entry function (`main`) ran when the program started: only a call in
/// the program's own code runs it again (libc keeps its address and it is
/// exported, but calls it once). Without a frame of its own (it ended in
/// a call that never returns, or a tail call) it was said patched,
/// "later calls run the new one", while nothing ever would.
fn can_run(c: &Candidate, e: &Evidence) -> bool {
    match c.entry_once {
        true => e.outermost.is_none() && e.calls > 0,
        false => e.calls > 0 || e.addresses > 0 || c.exported,
    }
}

/// The candidates by entry address. Every byte of the program's code and
/// every word of its data and stacks is looked up: the range check turns
/// most of them away, and a binary search over the sorted entries (no
/// hashing) answers the rest; it halved the time of a scan.
struct Entries {
    sorted: Vec<(u64, usize)>,
    lo: u64,
    hi: u64,
}

impl Entries {
    fn new(candidates: &[Candidate]) -> Entries {
        let mut sorted: Vec<(u64, usize)> = candidates.iter().enumerate().map(|(i, c)| (c.old, i)).collect();
        // Were two candidates at one entry, the later one answers (as
        // when this was a map built in order).
        sorted.sort_by_key(|&(a, i)| (a, std::cmp::Reverse(i)));
        sorted.dedup_by_key(|&mut (a, _)| a);
        Entries {
            lo: sorted.first().map_or(u64::MAX, |&(a, _)| a),
            hi: sorted.last().map_or(0, |&(a, _)| a),
            sorted,
        }
    }

    /// Whether `addr` lies between the lowest and highest entry: the one
    /// test most values fail, before any search.
    fn may_hold(&self, addr: u64) -> bool {
        addr.wrapping_sub(self.lo) <= self.hi.wrapping_sub(self.lo)
    }

    fn get(&self, addr: u64) -> Option<usize> {
        if !self.may_hold(addr) {
            return None;
        }
        self.sorted
            .binary_search_by_key(&addr, |&(a, _)| a)
            .ok()
            .map(|k| self.sorted[k].1)
    }
}

/// Per candidate (by entry): how many aligned 8-byte words of `bytes`
/// hold its entry address.
fn count_entries(bytes: &[u8], by_entry: &Entries) -> HashMap<usize, usize> {
    let mut counts: HashMap<usize, usize> = HashMap::new();
    for w in bytes.chunks_exact(8) {
        let value = u64::from_le_bytes(w.try_into().expect("8 bytes"));
        if let Some(i) = by_entry.get(value) {
            *counts.entry(i).or_default() += 1;
        }
    }
    counts
}

/// Per candidate: how many aligned words of the home module's writable
/// data (and the heap) hold its entry address.
fn stored_pointers(
    process: &dyn Process,
    maps: &[Mapping],
    home: &str,
    extra_data: &[(u64, u64)],
    by_entry: &Entries,
) -> HashMap<usize, usize> {
    let mut counts: HashMap<usize, usize> = HashMap::new();
    // The patches' own tables first: a function a patch added is reached
    // only through the patch's copy of a table of handlers (a libuv
    // trial's `cmds`: its next patch was said NOT REACHABLE while the
    // server ran it).
    for &(start, end) in extra_data {
        let mut bytes = vec![0u8; end.saturating_sub(start).min(DATA_SCAN) as usize];
        if !bytes.is_empty() && process.read(start, &mut bytes).is_ok() {
            for (i, n) in count_entries(&bytes, by_entry) {
                *counts.entry(i).or_default() += n;
            }
        }
    }
    let mut budget = DATA_SCAN;
    let mut previous_home_end = None;
    for m in maps {
        let home_data = of_module(m, home) && !m.executable();
        // The image's .bss continues in anonymous memory right after it.
        let bss = m.path.is_empty() && previous_home_end == Some(m.start);
        let heap = m.path == "[heap]";
        previous_home_end = of_module(m, home).then_some(m.end);
        if !(home_data || bss || heap) || !m.readable() {
            continue;
        }
        let len = (m.end - m.start).min(budget);
        budget -= len;
        let mut bytes = vec![0u8; len as usize];
        if process.read(m.start, &mut bytes).is_err() {
            continue;
        }
        for (i, n) in count_entries(&bytes, by_entry) {
            *counts.entry(i).or_default() += n;
        }
        if budget == 0 {
            break;
        }
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_memory::Memory;

    /// The shared note names the functions (a long list shortened), says
    /// how far they moved when all moved alike, and which cannot run.
    #[test]
    fn one_note_tells_of_functions_whose_line_numbers_moved() {
        let note = lines_moved_together_note(&[("a", 2, true), ("b", 2, false)]);
        assert!(
            note.starts_with(
                "only the line numbers of a, b changed (lines added or removed above moved them 2 lines down)"
            ),
            "{note}"
        );
        assert!(note.ends_with("; the new code of b cannot run"), "{note}");
        let many: Vec<String> = (0..9).map(|k| format!("f{k}")).collect();
        let moved: Vec<(&str, i64, bool)> = many
            .iter()
            .enumerate()
            .map(|(k, n)| (n.as_str(), 1 + k as i64 % 2, true))
            .collect();
        let note = lines_moved_together_note(&moved);
        assert!(
            note.contains(
                "f0, f1, f2, f3, f4, f5, f6, f7 and 1 more changed (lines added or removed above moved them)"
            ),
            "{note}"
        );
        assert!(!note.contains("cannot run"), "{note}");
    }

    /// The program's code mapped but unreadable (it exited as it was
    /// patched): no evidence either way, so no claim that nothing calls
    /// the new code (a test under load said NOT REACHABLE of a function
    /// `main` called on every loop).
    #[test]
    fn code_that_cannot_be_read_says_nothing_of_callers() {
        let home = "/bin/app";
        let stacks = Stacks {
            maps: vec![Mapping {
                start: 0x1000,
                end: 0x2000,
                perms: "r-xp".into(),
                offset: 0,
                dev: "08:01".into(),
                inode: 1,
                path: home.into(),
            }],
            threads: Vec::new(),
            unknown: false,
            values: std::cell::OnceCell::new(),
        };
        let pools = PoolMemory {
            code: &[],
            data: &[],
            dead: &[],
        };
        let found = analyse(
            &Memory::unreadable(),
            home,
            &pools,
            &[candidate("fb", 0x1010, 0x10)],
            &stacks,
            None,
            None,
        );
        assert_eq!(found, [unknown()]);
    }

    fn candidate(name: &str, old: u64, size: u64) -> Candidate {
        Candidate {
            name: name.into(),
            old,
            size,
            new_code: (0, 0),
            referenced_by: Vec::new(),
            exported: false,
            entry_once: false,
        }
    }

    /// `a` at 0x1000 (16 bytes) calls at +3 (returning to +8) and ends
    /// with a call (+0xb); `b` follows at 0x1010.
    fn code() -> Vec<(u64, Vec<u8>)> {
        let mut a = vec![0x90u8; 0x20];
        a[3] = 0xe8;
        a[0xb] = 0xe8;
        vec![(0x1000, a)]
    }

    /// [`running_frames`] of a thread at 0x7000 whose stack at 0x8000
    /// holds `stack`, in `code`.
    fn frames_on(
        code: &[(u64, Vec<u8>)],
        candidates: &[Candidate],
        stack: &[u8],
        entry: Option<u64>,
    ) -> Vec<(usize, Frame)> {
        running_frames(
            code,
            candidates,
            (0x7000, 0x8000),
            with_addresses(0x8000, stack),
            entry,
            &[],
        )
    }

    fn words(values: &[u64]) -> Vec<u8> {
        values.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    #[test]
    fn a_return_address_inside_a_body_is_a_running_frame() {
        let candidates = [candidate("a", 0x1000, 0x10), candidate("b", 0x1010, 0x10)];
        let frames = frames_on(&code(), &candidates, &words(&[0x1008]), None);
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].0, 0);
        assert!(frames[0].1.outermost);
    }

    /// A stored pointer to `b` follows `a`'s closing call byte for byte
    /// like a return address; it is `b`'s entry, not a frame of `a` or `b`
    /// (the demo's `report` was said to be running for good because of
    /// `main`'s address on the stack).
    #[test]
    fn a_function_entry_on_the_stack_is_not_a_frame() {
        let candidates = [candidate("a", 0x1000, 0x10), candidate("b", 0x1010, 0x10)];
        let frames = frames_on(&code(), &candidates, &words(&[0x1010]), None);
        assert!(
            frames.is_empty(),
            "{:?}",
            frames.iter().map(|f| f.0).collect::<Vec<_>>()
        );
    }

    /// The program's entry point right after `a`'s closing call, held
    /// above `a`'s frame (the auxiliary vector's `AT_ENTRY`): `a` is still
    /// the outermost frame. It was taken for a return address above, and
    /// an edit of a running `main` said "patched" (bzip2's driver).
    #[test]
    fn the_entry_point_above_main_is_no_frame_of_its_callers() {
        let candidates = [candidate("a", 0x1000, 0x10)];
        let stack = words(&[0x1008, 0, 0x1010]);
        let outermost = |entry| frames_on(&code(), &candidates, &stack, entry)[0].1.outermost;
        assert!(!outermost(None), "without the entry point it looks like a caller above");
        assert!(outermost(Some(0x1010)));
    }

    /// `b`'s own address above its frame (`main`'s, kept by
    /// `__libc_start_main`), right after `a`'s closing call byte for byte
    /// like a return address: `b` is still the outermost frame. It was
    /// taken for a caller above, and an edit of QuickJS's driver's `main`
    /// loop said "patched main".
    #[test]
    fn a_candidates_own_address_above_it_is_no_caller() {
        let candidates = [candidate("a", 0x1000, 0x10), candidate("b", 0x1010, 0x10)];
        // `b` calls at +3, returning to +8 (0x1018).
        let mut code = code();
        code[0].1[0x13] = 0xe8;
        let stack = words(&[0x1018, 0, 0x1010]);
        let frames = frames_on(&code, &candidates, &stack, None);
        let b = frames.iter().find(|f| f.0 == 1).expect("b's frame");
        assert!(b.1.outermost);
    }

    /// A library's `a` called from the program's code (a return address
    /// into it above `a`'s frame, the stack walked): `a` is no outermost
    /// frame, though no code of the library is above it. Without the
    /// program's code known, it is.
    #[test]
    fn a_caller_in_the_program_above_a_library_function_makes_it_no_outermost_frame() {
        let candidates = [candidate("a", 0x1000, 0x10)];
        let stack = words(&[0x1008, 0, 0x5_0040]);
        let outermost = |program: &[(u64, u64)]| {
            running_frames(
                &code(),
                &candidates,
                (0x7000, 0x8000),
                with_addresses(0x8000, &stack),
                None,
                program,
            )[0]
            .1
            .outermost
        };
        assert!(outermost(&[]));
        assert!(!outermost(&[(0x5_0000, 0x6_0000)]));
    }
}
