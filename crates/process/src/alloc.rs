//! Room for new code inside the target, near the code it must reach.
//!
//! New code calls the program's functions and reads its globals with
//! 32-bit PC-relative displacements, so it must sit within ±2 GiB of the
//! whole image; code compiled without PIC also holds 32-bit absolute
//! addresses, so it must sit below 4 GiB (or 2 GiB for sign-extended
//! ones). The holes in `/proc/PID/maps` that satisfy this are tried
//! nearest first with `MAP_FIXED_NOREPLACE`, which never replaces a mapping
//! that appeared since the maps were read.

use serde::Serialize;

use crate::error::{ProcessError, Result};
use crate::maps::Mapping;
use crate::{Protection, Stopped};

const PAGE: u64 = 4096;
/// How far a rel32 displacement reaches, less a margin for the
/// instruction lengths the displacement is measured from.
pub const REL32_REACH: u64 = (1 << 31) - (1 << 16);
/// The top of the x86-64 user address space (47-bit).
const USER_TOP: u64 = 0x7fff_ffff_f000;
/// Kept free above `[heap]` so that `brk` can still grow the heap.
const HEAP_GUARD: u64 = 64 << 20;
/// Kept free below `[stack]` so that the main stack can still grow.
const STACK_GUARD: u64 = 64 << 20;
/// Holes tried before giving up (each try is a remote system call).
const MAX_TRIES: usize = 64;

/// Where an allocation may go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Placement {
    /// Every byte of the allocation is within [`REL32_REACH`] of every
    /// byte of `reach_lo..reach_hi` (usually the program's image).
    pub reach_lo: u64,
    pub reach_hi: u64,
    /// The allocation ends at or below this address (`1 << 32` for code
    /// with `R_X86_64_32` relocations, `1 << 31` for `R_X86_64_32S`).
    pub below: Option<u64>,
}

impl Placement {
    /// Within ±2 GiB of `addr`.
    pub fn near(addr: u64) -> Placement {
        Placement::near_range(addr, addr.saturating_add(1))
    }

    /// Anywhere in the user address space (data no code refers to with a
    /// 32-bit displacement).
    pub fn anywhere() -> Placement {
        Placement {
            reach_lo: USER_TOP - REL32_REACH,
            reach_hi: REL32_REACH,
            below: None,
        }
    }

    /// Within ±2 GiB of every byte of `lo..hi`.
    pub fn near_range(lo: u64, hi: u64) -> Placement {
        Placement {
            reach_lo: lo,
            reach_hi: hi.max(lo),
            below: None,
        }
    }

    /// Additionally ending at or below `limit`.
    pub fn below(self, limit: u64) -> Placement {
        Placement {
            below: Some(limit),
            ..self
        }
    }

    /// Whether `[addr, addr + len)` lies where this placement allows (an
    /// existing region reused for it).
    pub fn admits(&self, addr: u64, len: u64) -> bool {
        let (lo, hi) = self.window(0);
        addr >= lo && addr.checked_add(len).is_some_and(|end| end <= hi)
    }

    /// The address range the allocation must lie in.
    fn window(&self, min_addr: u64) -> (u64, u64) {
        let lo = self.reach_hi.saturating_sub(REL32_REACH).max(min_addr);
        let hi = self.reach_lo.saturating_add(REL32_REACH).min(USER_TOP);
        (lo, self.below.map_or(hi, |b| hi.min(b)))
    }

    fn describe(&self) -> String {
        let mut s = if self.reach_lo > self.reach_hi {
            "anywhere".to_string()
        } else {
            format!("within ±2 GiB of {:#x}..{:#x}", self.reach_lo, self.reach_hi)
        };
        if let Some(b) = self.below {
            s.push_str(&format!(" and below {b:#x}"));
        }
        s
    }
}

/// Memory allocated inside the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Allocation {
    pub addr: u64,
    pub len: u64,
}

/// Start addresses worth trying for `len` bytes, nearest to the reach
/// range first: each hole's lowest and highest fitting page.
pub fn candidates(maps: &[Mapping], len: u64, placement: &Placement, min_addr: u64) -> Vec<u64> {
    let (lo, hi) = placement.window(min_addr);
    let mut sorted: Vec<&Mapping> = maps.iter().collect();
    sorted.sort_by_key(|m| m.start);
    let mut holes = Vec::new();
    let mut prev_end = 0u64;
    for m in &sorted {
        let start = if m.path == "[stack]" {
            m.start.saturating_sub(STACK_GUARD)
        } else {
            m.start
        };
        holes.push((prev_end, start));
        prev_end = prev_end.max(if m.path == "[heap]" {
            m.end.saturating_add(HEAP_GUARD)
        } else {
            m.end
        });
    }
    holes.push((prev_end, USER_TOP));

    let middle = placement.reach_lo / 2 + placement.reach_hi / 2;
    let mut found: Vec<u64> = Vec::new();
    for (hole_lo, hole_hi) in holes {
        let start = hole_lo.max(lo).saturating_add(PAGE - 1) & !(PAGE - 1);
        let end = hole_hi.min(hi) & !(PAGE - 1);
        if end < start || end - start < len {
            continue;
        }
        found.push(start);
        found.push(end - len);
    }
    found.sort_by_key(|&a| (a + len / 2).abs_diff(middle));
    found.dedup();
    found
}

/// Allocates `len` bytes (rounded up to pages) with `prot` in the target
/// as `placement` requires.
pub fn allocate(
    stopped: &mut dyn Stopped,
    pid: u32,
    maps: &[Mapping],
    len: u64,
    prot: Protection,
    placement: &Placement,
) -> Result<Allocation> {
    allocate_announced(stopped, pid, maps, len, prot, placement, &mut |_, _| Ok(()))
}

/// [`allocate`], calling `announce` with each address and length before
/// it is tried: a caller that records it first can find (and free) the
/// memory if it dies before it records what it got.
pub fn allocate_announced(
    stopped: &mut dyn Stopped,
    pid: u32,
    maps: &[Mapping],
    len: u64,
    prot: Protection,
    placement: &Placement,
    announce: &mut dyn FnMut(u64, u64) -> std::io::Result<()>,
) -> Result<Allocation> {
    let len = len.max(1).checked_add(PAGE - 1).ok_or(ProcessError::NoRoom {
        pid,
        len,
        wanted: placement.describe(),
    })? & !(PAGE - 1);
    for addr in candidates(maps, len, placement, mmap_min_addr())
        .into_iter()
        .take(MAX_TRIES)
    {
        announce(addr, len).map_err(|source| ProcessError::Io {
            pid,
            what: format!("recording the memory about to be mapped at {addr:#x}"),
            cause: source,
        })?;
        if let Some(addr) = stopped.map_fixed(addr, len, prot)? {
            return Ok(Allocation { addr, len });
        }
    }
    Err(ProcessError::NoRoom {
        pid,
        len,
        wanted: placement.describe(),
    })
}

/// The lowest address an unprivileged mmap may use.
fn mmap_min_addr() -> u64 {
    std::fs::read_to_string("/proc/sys/vm/mmap_min_addr")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(65536)
        .max(PAGE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::maps::parse_line;

    fn maps() -> Vec<Mapping> {
        [
            "00400000-00461000 r-xp 00010000 fe:00 1 /a.com",
            "01000000-01100000 rw-p 00000000 00:00 0 [heap]",
            "7f0000000000-7f0000100000 r-xp 00000000 fe:00 2 /libc.so",
            "7ffff0000000-7ffff0100000 rw-p 00000000 00:00 0 [stack]",
        ]
        .iter()
        .map(|l| parse_line(l).unwrap())
        .collect()
    }

    #[test]
    fn nearest_holes_first_and_within_reach() {
        let p = Placement::near_range(0x400000, 0x461000);
        let c = candidates(&maps(), 0x2000, &p, 0x10000);
        // Right below the image first (the hole above is kept for the heap).
        assert_eq!(c[0], 0x3fe000);
        for &a in &c {
            assert!(a + 0x2000 <= 0x400000 + REL32_REACH && a >= 0x10000, "{a:#x}");
            assert!(!maps().iter().any(|m| m.start < a + 0x2000 && a < m.end));
        }
        // Nothing between the heap and its guard.
        assert!(!c.iter().any(|&a| (0x1100000..0x1100000 + HEAP_GUARD).contains(&a)));
    }

    #[test]
    fn below_limits_and_no_room() {
        let p = Placement::near(0x7f0000080000);
        let c = candidates(&maps(), 0x1000, &p, 0x10000);
        assert!(c.iter().all(|&a| a.abs_diff(0x7f0000080000) < REL32_REACH));
        assert!(!c.is_empty());
        assert!(candidates(&maps(), 0x1000, &p.below(1 << 32), 0x10000).is_empty());
        let tight = Placement::near(0x400000).below(0x400000);
        assert!(candidates(&maps(), 0x400000, &tight, 0x10000).is_empty());
    }
}
