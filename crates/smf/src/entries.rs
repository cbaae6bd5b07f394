//! Stable entry points: one trampoline and one cell per function (the
//! Zig linker's idea of an indirection per function).
//!
//! A block is two pages in one mapping: page 0 holds 511 trampolines of 8
//! bytes, each `jmp *cell(%rip)` for its own cell, and a `ud2` trap in the
//! last 8 bytes; page 1 holds the 512 cells. The trampolines are written
//! once, before the page becomes `r-x`, and never change: the displacement
//! from trampoline `i` to cell `i` is the same for every `i` (4096 − 6), so
//! a new function needs no new code, only a cell. Reloading a function is
//! one atomic store into its cell. A cell that names no code (a function
//! that was unloaded, or removed by a reload) points at the trap, so a
//! stale pointer stops the program with SIGILL at a recognisable address
//! instead of running freed memory.
//!
//! Blocks are reused: when a table is dropped, each block no handle holds
//! any more has every cell pointed back at its trap and is kept (up to
//! [`SPARE_BLOCKS`], and only while the region pool is on: see
//! [`crate::memory::set_pool_limit`]) for the next table, as it is. Its
//! trampolines never change, so reuse needs no mapping and no protection
//! change (those were a sixth of creating a registry and loading a module
//! into it).

use std::sync::{Arc, Mutex};

use crate::memory::{call_in, pool_limit, six_args, Access, Region, PAGE};

/// Blocks kept for reuse at most (4 MiB of entries: 8 KiB each).
pub const SPARE_BLOCKS: usize = 512;

/// Blocks of dropped tables, every cell pointing at its block's trap.
static SPARE: Mutex<Vec<Region>> = Mutex::new(Vec::new());

/// Trampolines per block (the last 8 bytes of the code page are the trap).
pub const PER_BLOCK: usize = (PAGE as usize / 8) - 1;
const TRAP_OFFSET: u64 = PAGE - 8;
/// `jmp *(4096 - 6)(%rip)`: from the end of trampoline `i` (offset 8i + 6)
/// to cell `i` (offset 4096 + 8i); then int3 padding.
const TRAMPOLINE: [u8; 8] = [0xff, 0x25, 0xfa, 0x0f, 0x00, 0x00, 0xcc, 0xcc];
/// `ud2`, then int3 padding.
const TRAP: [u8; 8] = [0x0f, 0x0b, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc];

/// An entry handed out to the host: the address stays valid (and calls the
/// function's newest code) for as long as this value or the registry that
/// made it lives.
#[derive(Debug, Clone)]
pub struct StableFn {
    block: Arc<Region>,
    slot: usize,
}

impl StableFn {
    /// The trampoline's address: what a C host would store as a function
    /// pointer.
    pub fn addr(&self) -> u64 {
        trampoline(&self.block, self.slot)
    }

    /// The mapping holding the trampoline (for [`crate::memory::call_in`]).
    pub fn region(&self) -> &Region {
        &self.block
    }

    /// The code the entry jumps to now.
    pub fn target(&self) -> u64 {
        self.block.load_cell(cell(self.slot))
    }

    /// Whether the entry traps (its function is unloaded or gone).
    pub fn traps(&self) -> bool {
        self.target() == trap(&self.block)
    }

    /// Calls the function's current code with up to six integer arguments
    /// (System V registers; a callee taking fewer ignores the rest).
    ///
    /// # Safety
    /// As [`call_in`]: the function must take at most six integer or
    /// pointer arguments and return an integer (or nothing), and running
    /// it with `args` must be sound.
    pub unsafe fn call(&self, args: &[u64]) -> u64 {
        // SAFETY: the entry is a function entry inside its block, which
        // stays mapped; the caller vouches for the signature and arguments.
        unsafe { call_in(&self.block, self.addr(), six_args(args)) }.expect("a stable entry lies in its block")
    }
}

/// Where one function's entry is: block and slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EntryId {
    // u32s: ids are kept per symbol and per key, and a registry's first
    // load writes one of each for every function.
    block: u32,
    slot: u32,
}

#[cfg(test)]
impl EntryId {
    /// Entry `n` of the first block, for tests of what holds ids.
    pub(crate) fn for_test(n: usize) -> EntryId {
        EntryId {
            block: 0,
            slot: n as u32,
        }
    }
}

/// Every entry handed out so far. Entries are never taken back: an
/// unloaded function's entry traps, and loading a function of the same
/// module and name again reuses it, so pointers the host kept work again.
#[derive(Debug, Default)]
pub struct EntryTable {
    blocks: Vec<Arc<Region>>,
    used: usize,
}

impl EntryTable {
    /// A new entry (pointing at the trap until [`EntryTable::point`]).
    /// Inlined, and without a division: a module's first load takes one
    /// for each of its functions.
    #[inline]
    pub fn allocate(&mut self) -> std::io::Result<EntryId> {
        if self.used == self.blocks.len() * PER_BLOCK {
            self.blocks.push(Arc::new(take_block()?));
        }
        let block = self.blocks.len() - 1;
        let slot = self.used - block * PER_BLOCK;
        self.used += 1;
        let too_many = || std::io::Error::other("more stable entries than a u32 counts");
        Ok(EntryId {
            block: u32::try_from(block).map_err(|_| too_many())?,
            slot: slot as u32,
        })
    }

    /// The trampoline's address.
    /// The entry whose trampoline is at `addr`, if one of this table's.
    pub fn id_at(&self, addr: u64) -> Option<EntryId> {
        let (block, region) = self
            .blocks
            .iter()
            .enumerate()
            .find(|(_, b)| (b.addr()..b.addr() + 8 * PER_BLOCK as u64).contains(&addr))?;
        let slot = (addr - region.addr()) / 8;
        let id = EntryId {
            block: u32::try_from(block).ok()?,
            slot: slot as u32,
        };
        // Only one handed out.
        let handed_out = block * PER_BLOCK + (slot as usize) < self.used;
        (handed_out && (addr - region.addr()).is_multiple_of(8)).then_some(id)
    }

    pub fn address(&self, id: EntryId) -> u64 {
        trampoline(&self.blocks[id.block as usize], id.slot as usize)
    }

    /// Makes `id` jump to `code` (one atomic store).
    pub fn point(&self, id: EntryId, code: u64) {
        self.blocks[id.block as usize].store_cell(cell(id.slot as usize), code);
    }

    /// Makes `id` trap.
    pub fn unpoint(&self, id: EntryId) {
        let block = &self.blocks[id.block as usize];
        block.store_cell(cell(id.slot as usize), trap(block));
    }

    /// The entry as a handle (which also says where it jumps now and
    /// whether it traps).
    pub fn handle(&self, id: EntryId) -> StableFn {
        StableFn {
            block: self.blocks[id.block as usize].clone(),
            slot: id.slot as usize,
        }
    }
}

impl Drop for EntryTable {
    /// Makes every entry handed out trap: handles may outlive the table
    /// (they keep their block), and must not jump into code unmapped
    /// since. Blocks no handle holds go to the spares for the next table
    /// (see the module docs). Only the cells handed out are written: the
    /// others trap already.
    fn drop(&mut self) {
        let keep = pool_limit() > 0;
        let used = self.used;
        for (index, block) in self.blocks.drain(..).enumerate() {
            let handed_out = used.saturating_sub(index * PER_BLOCK).min(PER_BLOCK);
            let trapping = trap(&block);
            for slot in 0..handed_out {
                block.store_cell(cell(slot), trapping);
            }
            if !keep {
                continue;
            }
            let Ok(block) = Arc::try_unwrap(block) else {
                continue;
            };
            let mut spare = SPARE.lock().unwrap_or_else(|e| e.into_inner());
            if spare.len() < SPARE_BLOCKS {
                spare.push(block);
            }
        }
    }
}

/// A block whose every cell traps: a spare one if the pool is on, else a
/// new one (and the spares are let go).
fn take_block() -> std::io::Result<Region> {
    let spare = {
        let mut spare = SPARE.lock().unwrap_or_else(|e| e.into_inner());
        if pool_limit() > 0 {
            spare.pop()
        } else {
            spare.clear();
            None
        }
    };
    match spare {
        Some(block) => Ok(block),
        None => new_block(),
    }
}

/// Points every cell of `block` at its trap.
fn reset_cells(block: &mut Region) {
    let trapping = trap(block).to_le_bytes();
    let mut cells = [0u8; PAGE as usize];
    for cell in cells.chunks_exact_mut(8) {
        cell.copy_from_slice(&trapping);
    }
    block.write(PAGE, &cells);
}

/// Trampoline `slot` of `block`.
fn trampoline(block: &Region, slot: usize) -> u64 {
    block.addr() + 8 * slot as u64
}

/// The offset of cell `slot` in its block.
fn cell(slot: usize) -> u64 {
    PAGE + 8 * slot as u64
}

/// The trap every unpointed cell of `block` names.
fn trap(block: &Region) -> u64 {
    block.addr() + TRAP_OFFSET
}

fn new_block() -> std::io::Result<Region> {
    let mut region = Region::new(2 * PAGE)?;
    let mut code = TRAMPOLINE.repeat(PER_BLOCK);
    code.extend_from_slice(&TRAP);
    region.write(0, &code);
    reset_cells(&mut region);
    region.protect(0, PAGE, Access::ReadExecute)?;
    Ok(region)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trampolines_reach_their_own_cells() {
        // rip after trampoline i = base + 8i + 6; + disp = base + 4096 + 8i.
        let disp = i32::from_le_bytes(TRAMPOLINE[2..6].try_into().unwrap()) as u64;
        for i in [0u64, 1, 300, PER_BLOCK as u64 - 1] {
            assert_eq!(8 * i + 6 + disp, PAGE + 8 * i);
        }
        assert_eq!(8 * PER_BLOCK as u64, TRAP_OFFSET);
    }

    #[test]
    fn new_entries_trap_and_blocks_grow() {
        let _serial = crate::memory::tests::MAPPING.lock().unwrap_or_else(|e| e.into_inner());
        let mut table = EntryTable::default();
        let ids: Vec<EntryId> = (0..PER_BLOCK + 2).map(|_| table.allocate().unwrap()).collect();
        assert_eq!(table.blocks.len(), 2);
        assert!(ids.iter().all(|&id| table.handle(id).traps()));
        table.point(ids[3], 0x1234);
        assert_eq!(table.handle(ids[3]).target(), 0x1234);
        assert!(!table.handle(ids[3]).traps());
        table.unpoint(ids[3]);
        assert!(table.handle(ids[3]).traps());
        assert_eq!(table.address(ids[PER_BLOCK]), table.blocks[1].addr());
    }
}
