//! Drivers for fuzzing and mutation tests: run the object reader, the diff
//! and the linker over arbitrary bytes. Not part of the API.

use crate::link::{self, Layout, Resolver};
use crate::objfile::Kind;
use crate::{diff, ObjectFile};

/// Resolves every global to an address derived from its name, no static.
struct Everything;

impl Resolver for Everything {
    fn global(&self, name: &str) -> Option<u64> {
        Some(0x40_0000 + (name.len() as u64) * 0x40)
    }
    fn local(&self, _file: &str, _name: &str) -> Option<u64> {
        None
    }
    fn in_image(&self, addr: u64) -> bool {
        addr < 0x1000_0000
    }
}

/// Parses `data` as an object and, if it parses, diffs it against itself,
/// computes the GCC-stable names, and links every function as a patch at
/// a fixed address. Panics only on a bug.
pub fn object(data: &[u8]) {
    let Ok(obj) = ObjectFile::parse("fuzz.o", data) else {
        return;
    };
    let d = diff(&obj, &obj);
    assert!(d.changed.is_empty() && d.added.is_empty() && d.removed.is_empty());
    let all: Vec<&str> = obj.symbols.iter().map(|s| s.name.as_str()).collect();
    assert!(crate::signature::changed(&obj, &obj, &all).is_empty());
    assert!(crate::type_layout::changed(&obj, &obj, &all).is_empty());
    let names = link::BaseNames::of(&obj, &obj);
    let functions: Vec<(usize, Option<u64>)> = obj
        .symbols
        .iter()
        .enumerate()
        .filter(|(_, s)| s.kind == Kind::Function)
        .map(|(i, _)| (i, Some(0x40_1000)))
        .collect();
    let _ = obj.dynamically_initialized();
    if let Ok(linked) = link::link(&obj, &functions, &Everything, &names) {
        let layout = Layout {
            code: 0x50_0000,
            read_only: 0x60_0000,
            writable: 0x70_0000,
        };
        if let Ok([_, read_only, _]) = linked.finish(&layout, &[]) {
            // The symbol file a debugger would load for it: an ELF file
            // with each of the object's DWARF sections whole (placed
            // straight into the file, not built apart).
            let file = crate::debug_file::write(&crate::debug_file::Placed {
                obj: &obj,
                linked: &linked,
                layout: &layout,
                read_only: &read_only,
                data_address: &|_| None,
            });
            symbol_file_holds_the_debug_sections(&obj, &file);
        }
    }
}

/// Panics unless `file` parses as ELF and holds each debug section of
/// `obj` it copies whole, its header saying so.
fn symbol_file_holds_the_debug_sections(obj: &ObjectFile, file: &[u8]) {
    use object::{Object, ObjectSection};
    let parsed = object::File::parse(file).expect("a symbol file relive wrote parses");
    // Rebuilt (`.debug_line`, `.debug_aranges`) or left out (macros).
    let rebuilt = [".debug_line", ".debug_aranges", ".debug_macro", ".debug_macinfo"];
    for name in obj.debug_section_names().filter(|n| !rebuilt.contains(n)) {
        let section = parsed
            .section_by_name(name)
            .unwrap_or_else(|| panic!("the symbol file has no {name}"));
        let bytes = section.data().expect("its bytes are in the file");
        // As the object reads (a damaged one's may not: then none).
        let whole = crate::objfile::placed_debug_section(obj.raw(), name, &|_, _| None);
        assert_eq!(bytes.len(), whole.len(), "{name}");
    }
}

/// Reads `data` as a patch bundle and, if it reads, writes it again (it
/// must read back the same) and runs its objects through [`object`].
/// Panics only on a bug.
pub fn bundle(data: &[u8]) {
    let Ok(bundle) = crate::bundle::Bundle::from_bytes(data) else {
        return;
    };
    let again = bundle.to_bytes().expect("a bundle read can be written");
    assert_eq!(crate::bundle::Bundle::from_bytes(&again).ok().as_ref(), Some(&bundle));
    object(&bundle.new);
    if let Some(base) = &bundle.base {
        object(base);
    }
}
