//! Modules compiled from C by gcc and clang, packed, loaded into this process and
//! called: every relocation type, a definition from a second object, and
//! imports from the host (`strlen`, `memcpy`).

mod common;
#[allow(unused_imports)]
use common::{RunEntry, RunExport};

use relive_smf::format::{RelocType, SectionKind};
use relive_smf::memory::{host_symbol, PAGE};
use relive_smf::{pack, LoadedModule, Module, ModuleLoader};
use relive_testkit::page_permissions;

const MAIN: &str = r#"
#include <string.h>
extern long twice(long);          /* from the second object: Plt32 (or Pc32) */
extern long shared_total;         /* defined elsewhere: GotPcRel under -fPIC */
static long calls;                /* Pc32 to writable data */
static const char word[] = "hello, smf";
long (*table[2])(long) = { twice, 0 };   /* Abs64 */
static char buffer[32];

long add(long a, long b) { calls++; return a + b; }
long count(void) { return calls; }
long length(const char *s) { return (long)strlen(s); }
long copy_and_measure(void) { memcpy(buffer, word, sizeof word); return (long)strlen(buffer); }
long through_table(long x) { return table[0](x) + 1; }
long accumulate(long x) { shared_total += x; return shared_total; }
long six(long a, long b, long c, long d, long e, long f) { return a + 2*b + 3*c + 4*d + 5*e + 6*f; }
"#;
const HELPER: &str = "long shared_total = 100;\nlong twice(long x) { return 2 * x; }\n";

fn build(cc: &str, flags: &[&str]) -> (Module<'static>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let inputs: Vec<(String, Vec<u8>)> = [("main", MAIN), ("helper", HELPER)]
        .iter()
        .map(|(name, text)| {
            let path = relive_testkit::compile_object_with(cc, dir.path(), name, text, flags);
            (name.to_string(), std::fs::read(path).unwrap())
        })
        .collect();
    let module = pack(&inputs, None).unwrap();
    // Through the file format, as a loader sees it.
    (Module::parse(&module.to_bytes()).unwrap().into_owned(), dir)
}

/// `source` compiled by gcc (-O2 -fPIC) and packed alone.
fn pack_c(source: &str) -> Module<'static> {
    let dir = tempfile::tempdir().unwrap();
    let object = relive_testkit::compile_object(dir.path(), "m", source, &["-O2", "-fPIC"]);
    pack(&[("m".into(), std::fs::read(object).unwrap())], None).unwrap()
}

fn invoke(m: &LoadedModule, name: &str, args: &[u64]) -> i64 {
    m.run(name, args).unwrap_or_else(|| panic!("{name} exported")) as i64
}

#[test]
fn gcc_and_clang_modules_load_and_compute() {
    for (cc, flags) in relive_testkit::pic_builds() {
        let what = format!("{cc} {flags:?}");
        let (module, _dir) = build(cc, flags);
        let kinds: Vec<RelocType> = module.relocations.iter().map(|r| r.kind).collect();
        for k in [RelocType::Abs64, RelocType::Pc32, RelocType::Plt32, RelocType::GotPcRel] {
            assert!(kinds.contains(&k), "{what}: no {k:?} in {kinds:?}");
        }
        let loaded = LoadedModule::load(&module, &host_symbol).unwrap();
        assert_eq!(invoke(&loaded, "add", &[40, 2]), 42);
        assert_eq!(invoke(&loaded, "add", &[1, 1]), 2);
        assert_eq!(invoke(&loaded, "count", &[]), 2, "{what}: the static counts calls");
        let text = std::ffi::CString::new("twelve chars").unwrap();
        assert_eq!(invoke(&loaded, "length", &[text.as_ptr() as u64]), 12);
        assert_eq!(invoke(&loaded, "copy_and_measure", &[]), 10);
        assert_eq!(invoke(&loaded, "through_table", &[20]), 41);
        assert_eq!(invoke(&loaded, "accumulate", &[5]), 105);
        assert_eq!(invoke(&loaded, "accumulate", &[5]), 110);
        assert_eq!(invoke(&loaded, "six", &[1, 1, 1, 1, 1, 1]), 21);
        // The data symbol is where the code writes.
        let total = loaded.read_object("shared_total").unwrap();
        assert_eq!(total, 110u64.to_le_bytes());
        assert_eq!(loaded.run("shared_total", &[]), None, "data is not callable");
    }
}

#[test]
fn missing_imports_are_named() {
    let module = pack_c("long nowhere_to_be_found(long);\nlong f(long x) { return nowhere_to_be_found(x); }\n");
    let err = LoadedModule::load(&module, &host_symbol).unwrap_err().to_string();
    assert!(err.contains("nowhere_to_be_found"), "{err}");
}

/// The page permissions of every page of `loaded`'s code mapping.
fn code_pages(loaded: &LoadedModule) -> Vec<String> {
    let (start, end) = loaded.range();
    (start..end)
        .step_by(PAGE as usize)
        .map(|page| page_permissions(page).unwrap_or_else(|| panic!("{page:#x} is mapped")))
        .collect()
}

/// Where the module's read-only data was placed.
fn rodata_address(module: &Module, loaded: &LoadedModule) -> u64 {
    let index = module
        .sections
        .iter()
        .position(|s| s.kind == SectionKind::RoData)
        .unwrap();
    loaded.section_addresses()[index]
}

#[test]
fn read_only_data_shares_the_last_code_page_only_when_it_fits() {
    // A few bytes of read-only data and a GOT cell fit in the tail of the
    // code page: one page, `r-x`, and nothing in it writable.
    let (module, _dir) = build("gcc", &["-O2", "-fPIC"]);
    let loaded = LoadedModule::load(&module, &host_symbol).unwrap();
    assert_eq!(code_pages(&loaded), ["r-xp"]);
    let (start, end) = loaded.range();
    assert!((start..end).contains(&rodata_address(&module, &loaded)));
    assert_eq!(invoke(&loaded, "copy_and_measure", &[]), 10, "reads the read-only data");
    assert_eq!(invoke(&loaded, "accumulate", &[1]), 101, "through the GOT");

    // 8 KiB of read-only data do not fit: they get pages of their own,
    // `r--` (not executable), after the code's.
    let module = pack_c(
        "static const long big[1024] = { [0 ... 1023] = 7, [3] = 11 };\n\
         long pick(long i) { return big[i & 1023]; }\n",
    );
    let loaded = LoadedModule::load(&module, &host_symbol).unwrap();
    assert_eq!(code_pages(&loaded), ["r-xp", "r--p", "r--p"]);
    let rodata = rodata_address(&module, &loaded);
    assert_eq!(
        rodata,
        loaded.range().0 + PAGE,
        "the read-only part starts on its own page"
    );
    assert_eq!(invoke(&loaded, "pick", &[3]), 11);
    assert_eq!(invoke(&loaded, "pick", &[1000]), 7);
}

/// A host function in this test program's code, which lies far (more than
/// 2 GiB) from the mappings modules are loaded into.
extern "C" fn tripled(x: i64) -> i64 {
    x * 3
}

#[test]
fn a_call_beyond_rel32_reach_goes_through_a_stub() {
    let module = pack_c("long tripled(long);\nlong call_far(long x) { return tripled(x) + 1; }\n");
    assert!(module.relocations.iter().any(|r| r.kind == RelocType::Plt32));
    let mut loader = ModuleLoader::new().without_dlsym();
    let target = tripled as extern "C" fn(i64) -> i64 as usize as u64;
    loader.define("tripled", target);
    let loaded = loader.load(&module).unwrap();
    assert!(
        target.abs_diff(loaded.range().0) > i32::MAX as u64,
        "the host function should be out of rel32 reach for this test to mean anything"
    );
    assert_eq!(invoke(&loaded, "call_far", &[5]), 16);
}

/// Code built without -fPIC (`R_X86_64_32S` array indexing, `R_X86_64_32`
/// address-taking) loads: placed in the low 2 GiB, its 32-bit absolute
/// fields hold the module's own addresses. It was refused at packing.
#[test]
fn a_module_built_without_pic_loads_low_and_computes() {
    const NON_PIC: &str = r#"
static int table[8] = {1, 2, 3, 5, 8, 13, 21, 34};
static int hits;
int pick(int i) { hits++; return table[i & 7]; }
int hits_so_far(void) { return hits; }
"#;
    for cc in ["gcc", "clang"] {
        let dir = tempfile::tempdir().unwrap();
        let object = relive_testkit::compile_object_with(
            cc,
            dir.path(),
            "m",
            NON_PIC,
            &["-O2", "-fno-pic", "-mcmodel=small", "-fno-stack-protector"],
        );
        let module = pack(&[("m".into(), std::fs::read(object).unwrap())], None).unwrap();
        let module = Module::parse(&module.to_bytes()).unwrap().into_owned();
        let kinds: Vec<RelocType> = module.relocations.iter().map(|r| r.kind).collect();
        assert!(
            kinds.iter().any(|k| k.needs_low_placement()),
            "{cc}: no 32-bit absolute relocation in {kinds:?}"
        );
        assert_eq!(module.flags & relive_smf::format::FLAG_PIC, 0, "{cc}: not PIC");
        let loaded = LoadedModule::load(&module, &host_symbol).unwrap();
        assert_eq!(invoke(&loaded, "pick", &[4]), 8, "{cc}");
        assert_eq!(invoke(&loaded, "pick", &[7]), 34, "{cc}");
        assert_eq!(invoke(&loaded, "hits_so_far", &[]), 2, "{cc}");
        let (start, end) = loaded.range();
        assert!(
            end <= 1 << 31,
            "{cc}: placed at {start:#x}..{end:#x}, not in the low 2 GiB"
        );
        let data = loaded.data_region();
        assert!(data.addr() + data.len() <= 1 << 31, "{cc}: data at {:#x}", data.addr());
    }
}
