//! The linker on real gcc objects against a resolver that stands for a
//! process: final bytes checked by decoding them, and every refusal
//! (thread-local data, a missing symbol, a relocation out of reach) an
//! error before anything could be written.

use std::collections::HashMap;

use iced_x86::{Decoder, DecoderOptions, Instruction, Mnemonic, OpKind};
use relive_patch::link::{link, Layout, LinkError, Linked, Resolver};
use relive_patch::ObjectFile;
use relive_testkit::compile_object;

/// A pretend process: an image at 0x400000..0x500000, libc far away.
struct Process {
    globals: HashMap<&'static str, u64>,
}

impl Resolver for Process {
    fn global(&self, name: &str) -> Option<u64> {
        self.globals.get(name).copied()
    }
    fn local(&self, _file: &str, _name: &str) -> Option<u64> {
        None
    }
    fn in_image(&self, addr: u64) -> bool {
        (0x40_0000..0x50_0000).contains(&addr)
    }
}

fn process() -> Process {
    Process {
        globals: HashMap::from([
            ("counter", 0x40_8000),
            ("puts", 0x7f12_3456_7000),
            ("far_data", 0x7f12_3400_0000),
            ("far_array", 0x7f12_3500_0000),
        ]),
    }
}

const LAYOUT: Layout = Layout {
    code: 0x60_0000,
    read_only: 0x64_0000,
    writable: 0x68_0000,
};

fn object(source: &str, flags: &[&str]) -> (tempfile::TempDir, ObjectFile) {
    let dir = tempfile::tempdir().unwrap();
    let path = compile_object(dir.path(), "t", source, flags);
    let obj = ObjectFile::open(path).unwrap();
    (dir, obj)
}

fn link_function(obj: &ObjectFile, name: &str) -> Result<Linked, LinkError> {
    let i = obj.symbols.iter().position(|s| s.name == name).unwrap();
    link(obj, &[(i, Some(0x40_1000))], &process(), &Default::default())
}

/// The instructions of the linked code part, decoded at its address.
fn decode(code: &[u8]) -> Vec<Instruction> {
    Decoder::with_ip(64, code, LAYOUT.code, DecoderOptions::NONE)
        .into_iter()
        .collect()
}

#[test]
fn globals_resolve_to_the_program_and_far_calls_go_through_a_stub() {
    let (_d, obj) = object(
        "int counter; int puts(const char *);\nint f(void) { counter += 2; puts(\"x\"); return counter; }\n",
        &["-O2", "-fno-pie"],
    );
    let linked = link_function(&obj, "f").unwrap();
    let [code, ro, _] = linked.finish(&LAYOUT, &[]).unwrap();
    let insns = decode(&code);
    // Every RIP-relative memory operand that reads or writes `counter`
    // reaches 0x408000 exactly.
    let counter_refs = insns
        .iter()
        .filter(|i| i.is_ip_rel_memory_operand() && i.ip_rel_memory_address() == 0x40_8000)
        .count();
    assert!(counter_refs >= 1, "{insns:?}");
    // The call (or tail jump) to puts lands on a stub: jmp *[rip+0] with
    // puts's address after it.
    let call = insns
        .iter()
        .find(|i| matches!(i.mnemonic(), Mnemonic::Call | Mnemonic::Jmp) && i.op0_kind() == OpKind::NearBranch64)
        .expect("a call to puts");
    let stub = (call.near_branch_target() - LAYOUT.code) as usize;
    assert_eq!(&code[stub..stub + 6], [0xff, 0x25, 0, 0, 0, 0]);
    assert_eq!(
        u64::from_le_bytes(code[stub + 6..stub + 14].try_into().unwrap()),
        0x7f12_3456_7000
    );
    // The string literal was copied into the read-only part.
    assert!(ro.windows(2).any(|w| w == b"x\0"));
    assert!(linked
        .data
        .iter()
        .any(|d| d.action == relive_patch::link::DataAction::New));
    // A jump slot holds the new function's address.
    let (_, slot) = linked.slots[0];
    assert_eq!(
        u64::from_le_bytes(ro[slot as usize..slot as usize + 8].try_into().unwrap()),
        LAYOUT.code
    );
}

#[test]
fn got_references_get_a_cell_holding_the_address() {
    let (_d, obj) = object(
        "extern int far_data; int g(void) { return far_data + 1; }\n",
        &["-O2", "-fpic"],
    );
    let linked = link_function(&obj, "g").unwrap();
    let [code, ro, _] = linked.finish(&LAYOUT, &[]).unwrap();
    let load = decode(&code)
        .into_iter()
        .find(|i| i.is_ip_rel_memory_operand())
        .expect("a GOT load");
    let cell = (load.ip_rel_memory_address() - LAYOUT.read_only) as usize;
    assert_eq!(
        u64::from_le_bytes(ro[cell..cell + 8].try_into().unwrap()),
        0x7f12_3400_0000
    );
}

#[test]
fn refusals_name_the_symbol() {
    let (_d, obj) = object("__thread int t; int f(void) { return ++t; }\n", &["-O2", "-fpie"]);
    match link_function(&obj, "f") {
        // A resolver that knows no thread-local storage: refused, naming
        // the variable, its user and why.
        Err(LinkError::ThreadLocal { symbol, user, why }) => {
            assert!(symbol.contains('t') && user == "f", "{symbol} {user}");
            assert!(why.contains("thread-local storage is not known"), "{why}");
        }
        other => panic!("{other:?}"),
    }
    let (_d, obj) = object("int missing(void); int f(void) { return missing() + 1; }\n", &["-O2"]);
    match link_function(&obj, "f") {
        Err(e @ LinkError::MissingSymbol { .. }) => {
            assert!(
                e.to_string().contains("missing") && e.to_string().contains("used by f"),
                "{e}"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn out_of_reach_is_an_error_before_writing() {
    // Non-PIC code reads far_data with a 32-bit displacement: from a
    // region at 0x600000 it cannot reach 0x7f1234000000.
    let (_d, obj) = object(
        "extern int far_data; int h(void) { return far_data; }\n",
        &["-O2", "-fno-pie"],
    );
    let linked = link_function(&obj, "h").unwrap();
    match linked.finish(&LAYOUT, &[]) {
        Err(e @ LinkError::Overflow { .. }) => {
            // It names the place, what is out of reach, and the fix.
            let text = e.to_string();
            assert!(text.contains("h+0x"), "{text}");
            assert!(text.contains("a reference to far_data"), "{text}");
            assert!(text.contains("R_X86_64_PC32"), "{text}");
            assert!(text.contains("-fPIC"), "{text}");
        }
        other => panic!("{other:?}"),
    }
    // Indexing a global array uses a sign-extended 32-bit absolute address:
    // the region must be below 2 GiB, and the array too.
    let (_d, obj) = object(
        "extern int far_array[]; int k(int i) { return far_array[i]; }\n",
        &["-O2", "-fno-pie"],
    );
    let linked = link_function(&obj, "k").unwrap();
    assert_eq!(linked.below, Some(1 << 31), "R_X86_64_32S needs a low region");
    assert!(matches!(linked.finish(&LAYOUT, &[]), Err(LinkError::Overflow { .. })));
}

/// A table of pointers (`R_X86_64_64` in `.rodata`, or `.data.rel.ro`
/// in PIE code) is copied with its entries pointing at the copied strings.
#[test]
fn pointer_tables_are_copied_and_relocated() {
    for flags in [&["-O2", "-fno-pie"][..], &["-O2", "-fpie"][..]] {
        let (_d, obj) = object(
            "static const char *const names[] = {\"alpha\", \"beta\"};\nconst char *pick(int i) { return names[i & 1]; }\n",
            flags,
        );
        let linked = link_function(&obj, "pick").unwrap();
        let [_, ro, rw] = linked.finish(&LAYOUT, &[]).unwrap();
        let string_at = |addr: u64| {
            let off = (addr.checked_sub(LAYOUT.read_only)? as usize).min(ro.len());
            let end = off + ro[off..].iter().position(|&b| b == 0)?;
            Some(String::from_utf8_lossy(&ro[off..end]).into_owned())
        };
        // The table is in whichever data part its section asked for.
        let found = [&ro, &rw].into_iter().find_map(|part| {
            let word = |at: usize| u64::from_le_bytes(part[at..at + 8].try_into().unwrap());
            (0..part.len().saturating_sub(15))
                .step_by(8)
                .find(|&at| string_at(word(at)).as_deref() == Some("alpha"))
                .map(|at| string_at(word(at + 8)))
        });
        assert_eq!(found, Some(Some("beta".to_string())), "{flags:?}");
    }
}
