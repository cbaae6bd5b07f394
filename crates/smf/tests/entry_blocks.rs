//! Entry blocks are reused across registries (crate::entries docs), in a
//! process of its own so no other test takes the blocks: a block no handle
//! holds goes to the next registry as it is (still `r-x` + `rw-`, no new
//! mapping); one a handle outlives its registry with stays that handle's,
//! trapping; with the region pool off, blocks are unmapped.

mod common;
#[allow(unused_imports)]
use common::{RunEntry, RunExport};

use relive_smf::memory::{set_pool_limit, PAGE};
use relive_smf::{pack, Module, ModuleRegistry};
use relive_testkit::page_permissions;

fn module() -> (Module<'static>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let source = "long seven(void) { return 7; }\nlong eight(void) { return 8; }\n";
    let object = relive_testkit::compile_object(dir.path(), "m", source, &["-O2", "-fPIC"]);
    let module = pack(&[("m".into(), std::fs::read(object).unwrap())], None).unwrap();
    (Module::parse(&module.to_bytes()).unwrap().into_owned(), dir)
}

fn registry_with(module: &Module) -> ModuleRegistry {
    let mut registry = ModuleRegistry::new();
    registry.load("m", module).unwrap();
    registry
}

#[test]
fn entry_blocks_are_reused_only_when_no_handle_holds_them() {
    let (module, _dir) = module();

    // No handle outlives the first registry: its block is kept, mapped as
    // it was, and the next registry's entries are at the same addresses.
    let first = registry_with(&module);
    let seven = first.get_function("m", "seven").unwrap().addr();
    drop(first);
    let block = seven & !(PAGE - 1);
    assert_eq!(page_permissions(block).as_deref(), Some("r-xp"));
    assert_eq!(page_permissions(block + PAGE).as_deref(), Some("rw-p"));
    let second = registry_with(&module);
    let handle = second.get_function("m", "seven").unwrap();
    assert_eq!(handle.addr(), seven, "the kept block is reused");
    assert_eq!(handle.run(&[]), 7);
    assert_eq!(second.get_function("m", "eight").unwrap().run(&[]), 8);

    // A handle outlives the second registry: its block stays its own and
    // traps; the third registry gets a block of its own.
    drop(second);
    assert!(handle.traps());
    let third = registry_with(&module);
    let other = third.get_function("m", "seven").unwrap();
    assert_ne!(other.addr() & !(PAGE - 1), block, "a held block is not reused");
    assert_eq!(other.run(&[]), 7);
    assert!(handle.traps(), "still trapping");
    drop(other);
    drop(third);

    // Pool off: dropped blocks are unmapped, kept ones let go.
    set_pool_limit(0);
    let fourth = registry_with(&module);
    let fresh = fourth.get_function("m", "seven").unwrap().addr() & !(PAGE - 1);
    drop(fourth);
    assert_eq!(page_permissions(fresh), None, "unmapped with the pool off");
    drop(handle);
    assert_eq!(page_permissions(block), None, "the last handle took its block along");
}
