//! Memory a module claims beyond its file bytes stays untouched: a code
//! section whose memory size is far past its bytes (a module file may
//! claim up to 1 GiB per section) is mapped, but only the pages holding
//! bytes are written, so loading it allocates no more than its content.
//! Both install paths (/proc/self/mem, and protect-write-protect), in a
//! process of its own since the switch between them is process-wide.

mod common;
#[allow(unused_imports)]
use common::{RunEntry, RunExport};

use relive_smf::format::SectionKind;
use relive_smf::memory::{set_proc_mem_writes, Region, PAGE};
use relive_smf::{pack, LoadedModule};
use relive_testkit::resident_kib;

const CLAIMED: u64 = 256 << 20;

#[test]
fn a_zero_region_gets_only_its_parts_written() {
    for proc_mem in [true, false] {
        set_proc_mem_writes(proc_mem);
        let len = CLAIMED + 2 * PAGE;
        let mut code = Region::new_code(len, len).unwrap();
        let mut image = vec![0u8; len as usize];
        image[..3].copy_from_slice(&[0xc3, 0xcc, 0xcc]);
        let tail = len as usize - 8;
        image[tail..].copy_from_slice(&[0xaa; 8]);
        code.install_parts(&image, len, &[0..3, tail..len as usize]).unwrap();
        let resident = resident_kib(code.addr()).unwrap();
        assert!(
            resident <= 64,
            "proc_mem {proc_mem}: {resident} KiB resident of {len} bytes"
        );
        assert_eq!(code.read(code.addr(), 3).unwrap(), [0xc3, 0xcc, 0xcc]);
        assert_eq!(code.read(code.addr() + tail as u64, 8).unwrap(), [0xaa; 8]);
    }
    set_proc_mem_writes(true);
}

#[test]
fn a_code_section_claiming_far_more_memory_than_bytes_loads_without_allocating_it() {
    let dir = tempfile::tempdir().unwrap();
    let source = "const char *greeting(void) { return \"hi\"; }\nlong first(void) { return greeting()[0]; }\n";
    let object = relive_testkit::compile_object(dir.path(), "m", source, &["-O2", "-fPIC"]);
    let mut module = pack(&[("m".into(), std::fs::read(object).unwrap())], None).unwrap();
    let code = module
        .sections
        .iter()
        .position(|s| s.kind == SectionKind::Code)
        .unwrap();
    module.sections[code].memory_size = CLAIMED;
    assert!(
        module
            .sections
            .iter()
            .any(|s| s.kind == SectionKind::RoData && !s.bytes.is_empty()),
        "the literal lies past the claimed code"
    );
    for proc_mem in [true, false] {
        set_proc_mem_writes(proc_mem);
        let loaded = LoadedModule::load(&module, &|_| None).unwrap();
        let (start, end) = loaded.range();
        assert!(end - start > CLAIMED, "the claim is mapped");
        let resident = resident_kib(start).unwrap();
        assert!(resident <= 64, "proc_mem {proc_mem}: {resident} KiB resident");
        // Code at the start and the literal past the gap were both written.
        assert_eq!(loaded.run("first", &[]), Some(u64::from(b'h')), "proc_mem {proc_mem}");
    }
    set_proc_mem_writes(true);
}
