//! The region pool (crate::memory docs), in a process of its own so no
//! other test takes the regions: a dropped region comes back zero-filled
//! and writable, never executable while pooled; a code region comes back
//! with its layout and is rewritten through /proc/self/mem or, with that
//! off, by protecting again; with the pool off, regions are unmapped.

use relive_smf::memory::{proc_mem_installs, set_pool_limit, set_proc_mem_writes, Access, Region, PAGE};

use relive_testkit::page_permissions as permissions;

#[test]
fn regions_are_reused_cleared_and_never_left_executable() {
    // A plain region, partly made executable, then dropped.
    let mut region = Region::new(3 * PAGE).unwrap();
    region.write(0, &[0xaa; 3 * PAGE as usize]);
    region.protect(0, PAGE, Access::ReadExecute).unwrap();
    let addr = region.addr();
    assert_eq!(permissions(addr).as_deref(), Some("r-xp"));
    drop(region);
    assert_eq!(permissions(addr).as_deref(), Some("rw-p"), "pooled, not executable");
    let mut again = Region::new(3 * PAGE).unwrap();
    assert_eq!(again.addr(), addr, "the pooled region is handed out again");
    assert_eq!(again.read(addr, 3 * PAGE).unwrap(), vec![0; 3 * PAGE as usize]);
    again.write(0, &[1; 8]); // would fault if it were still r-x
    drop(again);

    // A code region: installed, dropped, reused with the same layout.
    let image = |fill: u8| {
        let mut bytes = vec![fill; 3 * PAGE as usize];
        bytes[..2].copy_from_slice(&[0x48, 0x89]); // any bytes: never run
        bytes
    };
    for proc_mem in [true, false] {
        set_proc_mem_writes(proc_mem);
        let mut code = Region::new_code(3 * PAGE, 2 * PAGE).unwrap();
        code.install(&image(0x11), 2 * PAGE).unwrap();
        let at = code.addr();
        assert_eq!(permissions(at).as_deref(), Some("r-xp"));
        assert_eq!(permissions(at + 2 * PAGE).as_deref(), Some("r--p"));
        drop(code);
        let mut reused = Region::new_code(3 * PAGE, 2 * PAGE).unwrap();
        assert_eq!(reused.addr(), at, "the code region is handed out again");
        let before = proc_mem_installs();
        reused.install(&image(0x22), 2 * PAGE).unwrap();
        assert_eq!(proc_mem_installs() - before, u64::from(proc_mem), "which path wrote it");
        assert_eq!(reused.read(at, 3 * PAGE).unwrap(), image(0x22), "proc_mem {proc_mem}");
        assert_eq!(permissions(at).as_deref(), Some("r-xp"));
        assert_eq!(permissions(at + 2 * PAGE).as_deref(), Some("r--p"));
        // A different layout of the same size gets a plain region, laid out anew.
        drop(reused);
        let mut other = Region::new_code(3 * PAGE, PAGE).unwrap();
        other.install(&image(0x33), PAGE).unwrap();
        assert_eq!(permissions(other.addr() + PAGE).as_deref(), Some("r--p"));
        assert_eq!(other.read(other.addr(), 3 * PAGE).unwrap(), image(0x33));
    }
    set_proc_mem_writes(true);

    // Pool off: what it held and what is dropped from now on is unmapped.
    let kept = Region::new(5 * PAGE).unwrap();
    let kept_addr = kept.addr();
    drop(kept);
    assert!(permissions(kept_addr).is_some(), "pooled");
    set_pool_limit(0);
    assert_eq!(permissions(kept_addr), None, "the pool let it go");
    let fresh = Region::new(5 * PAGE).unwrap();
    let fresh_addr = fresh.addr();
    drop(fresh);
    assert_eq!(permissions(fresh_addr), None, "unmapped at once");
}
