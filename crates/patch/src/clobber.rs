//! Which call-clobbered registers a function may change, and why that
//! matters when it is replaced.
//!
//! GCC's interprocedural register allocation (`-fipa-ra`, on at `-O2`,
//! `-O3` and `-Os`) lets a caller keep values in call-clobbered registers
//! (`rdi`, `rcx`, `xmm3`, …) across a call to a function of the same
//! translation unit that it knows does not touch them. Code compiled that
//! way breaks when the callee is replaced by a version that does touch
//! them: the running caller's value is silently lost. So before a function
//! is redirected, relive works out which registers its callers may assume
//! it keeps (the call-clobbered registers its original code, and the code
//! it calls, never writes) and, when the new version writes any of them,
//! routes the entry through a thunk that saves and restores exactly those
//! (see [`crate::thunk`]).
//!
//! Errors in the two directions are not alike. For the *old* code, missing
//! a write makes relive preserve more than needed (safe); for the *new*
//! code, missing a write would be a bug, so anything unknown there (an
//! indirect jump or call, a call out of the object) counts as writing every
//! call-clobbered register, which is also what the compiler assumes.

use foldhash::HashSet;

use iced_x86::{Code, Decoder, DecoderOptions, Instruction, InstructionInfoFactory, OpAccess, Register};

use crate::objfile::{Kind, ObjectFile};

/// A set of x86-64 registers: bits 0–15 the general-purpose registers in
/// encoding order (`rax`, `rcx`, `rdx`, `rbx`, `rsp`, `rbp`, `rsi`, `rdi`,
/// `r8`…`r15`), bits 16–31 `xmm0`…`xmm15`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Regs(pub u32);

const GPR_NAMES: [&str; 16] = [
    "rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15",
];

/// Encoding number of `r11`, the thunk's scratch register.
pub const R11: u32 = 11;

impl Regs {
    pub const NONE: Regs = Regs(0);
    /// What the System V ABI lets a callee change: rax, rcx, rdx, rsi,
    /// rdi, r8–r11 and every xmm register.
    pub const CALL_CLOBBERED: Regs = Regs(0xffff_0000 | 0b0000_1111_1100_0111);

    pub fn gpr(n: u32) -> Regs {
        Regs(1 << n)
    }

    pub fn xmm(n: u32) -> Regs {
        Regs(1 << (16 + n))
    }

    pub fn union(self, other: Regs) -> Regs {
        Regs(self.0 | other.0)
    }

    pub fn intersect(self, other: Regs) -> Regs {
        Regs(self.0 & other.0)
    }

    pub fn minus(self, other: Regs) -> Regs {
        Regs(self.0 & !other.0)
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// General-purpose register numbers in the set.
    pub fn gprs(self) -> impl Iterator<Item = u32> {
        (0..16).filter(move |n| self.0 & (1 << n) != 0)
    }

    /// xmm register numbers in the set.
    pub fn xmms(self) -> impl Iterator<Item = u32> {
        (0..16).filter(move |n| self.0 & (1 << (16 + n)) != 0)
    }

    /// Names, for reports: `["rdi", "xmm2"]`.
    pub fn names(self) -> Vec<String> {
        self.gprs()
            .map(|n| GPR_NAMES[n as usize].to_string())
            .chain(self.xmms().map(|n| format!("xmm{n}")))
            .collect()
    }

    /// The set holding `reg` (any width: `edi` is `rdi`, `ymm3` is
    /// `xmm3`); empty for registers outside the set's range.
    fn of(reg: Register) -> Regs {
        let full = reg.full_register();
        if (Register::RAX..=Register::R15).contains(&full) {
            Regs::gpr(full as u32 - Register::RAX as u32)
        } else if (Register::ZMM0..=Register::ZMM15).contains(&full) {
            Regs::xmm(full as u32 - Register::ZMM0 as u32)
        } else {
            Regs::NONE
        }
    }
}

/// A control transfer out of a function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// A direct call or jump to `target` (as decoded) by the instruction
    /// spanning `[at, next)`.
    Direct {
        at: u64,
        next: u64,
        call: bool,
        target: u64,
    },
    /// Through a register or memory.
    Indirect { call: bool },
}

/// What one function's code writes, and where it goes.
#[derive(Debug, Clone, Default)]
pub struct Scan {
    pub writes: Regs,
    pub exits: Vec<Exit>,
}

/// Decodes `bytes` (a function placed at `ip`): the registers its own
/// instructions write, and its calls and jumps out of `[ip, ip + len)`.
/// Undecodable bytes end the scan (a caller treats the function as unknown
/// through `complete`).
pub fn scan(bytes: &[u8], ip: u64) -> (Scan, bool) {
    let mut out = Scan::default();
    let end = ip.saturating_add(bytes.len() as u64);
    let mut decoder = Decoder::with_ip(64, bytes, ip, DecoderOptions::NONE);
    let mut factory = InstructionInfoFactory::new();
    let mut instr = Instruction::default();
    // A switch's dispatch reads its table with a scaled index
    // (`movslq (%rdx,%rax,4)`, `jmp *.L4(,%rax,8)`); a jump through a
    // register without one is a tail call through a function pointer.
    let mut table_read = false;
    while decoder.can_decode() {
        decoder.decode_out(&mut instr);
        if instr.is_invalid() {
            return (out, false);
        }
        let indexed = (0..instr.op_count()).any(|k| instr.op_kind(k) == iced_x86::OpKind::Memory)
            && instr.memory_index() != iced_x86::Register::None
            && matches!(instr.memory_index_scale(), 4 | 8);
        table_read |= indexed;
        for used in factory.info(&instr).used_registers() {
            if matches!(
                used.access(),
                OpAccess::Write | OpAccess::CondWrite | OpAccess::ReadWrite | OpAccess::ReadCondWrite
            ) {
                out.writes = out.writes.union(Regs::of(used.register()));
            }
        }
        if matches!(instr.code(), Code::Syscall) {
            // The kernel returns in rax and clobbers rcx and r11.
            out.writes = out.writes.union(Regs(0b1000_0000_0011));
        }
        let call = instr.is_call_near() || instr.is_call_far();
        if instr.is_call_near_indirect() || instr.is_jmp_near_indirect() || instr.is_call_far_indirect() {
            // A jump through memory without an index (`jmp *fp(%rip)`), or
            // through a register in a function that reads no table, runs
            // unknown code like a call: its callee writes the return value.
            let through_memory = (0..instr.op_count()).any(|k| instr.op_kind(k) == iced_x86::OpKind::Memory);
            let tail_call = !call && !indexed && (through_memory || !table_read);
            out.exits.push(Exit::Indirect {
                call: call || tail_call,
            });
        } else if call || instr.is_jmp_short_or_near() || instr.is_jcc_short_or_near() {
            let target = instr.near_branch_target();
            if call || !(ip..end).contains(&target) {
                out.exits.push(Exit::Direct {
                    at: instr.ip(),
                    next: instr.next_ip(),
                    call,
                    target,
                });
            }
        }
    }
    (out, true)
}

/// How many functions one question may look at.
const MAX_FUNCTIONS: usize = 512;

/// The call-clobbered registers function `root` of `obj` (new code) and
/// everything it reaches in the object may write. Calls and jumps out of
/// the object, indirect ones, and anything undecodable count as writing
/// them all.
pub fn in_object(obj: &ObjectFile, root: usize) -> Regs {
    let mut seen: HashSet<usize> = [root].into_iter().collect();
    let mut queue = vec![root];
    let mut writes = Regs::NONE;
    while let Some(i) = queue.pop() {
        let sym = &obj.symbols[i];
        let Some(bytes) = &sym.bytes else {
            return Regs::CALL_CLOBBERED;
        };
        let (found, complete) = scan(bytes, 0);
        if !complete {
            return Regs::CALL_CLOBBERED;
        }
        writes = writes.union(found.writes);
        for exit in found.exits {
            let Exit::Direct { at, next, target, .. } = exit else {
                return Regs::CALL_CLOBBERED;
            };
            let reloc = sym.relocs.iter().find(|r| at <= r.offset && r.offset < next);
            let callee = match reloc {
                Some(r) => obj.referenced_symbol(r),
                // Assembled in place: inside the function is not an exit.
                None if target < sym.size => continue,
                None => None,
            };
            match callee {
                Some(j) if obj.symbols[j].kind == Kind::Function => {
                    if seen.insert(j) {
                        if seen.len() > MAX_FUNCTIONS {
                            return Regs::CALL_CLOBBERED;
                        }
                        queue.push(j);
                    }
                }
                _ => return Regs::CALL_CLOBBERED,
            }
        }
    }
    writes.intersect(Regs::CALL_CLOBBERED)
}

/// Where the running program's code is, for [`in_process`].
pub trait LiveCode {
    /// The bytes of the function starting exactly at `addr` in the
    /// program image (as originally loaded: before any redirect), or
    /// `None` when no program function starts there (a PLT entry, a
    /// library, the middle of a function).
    fn function(&self, addr: u64) -> Option<Vec<u8>>;
}

/// The call-clobbered registers the running function at `addr` (old
/// code) and the program functions it calls may write. A call that leaves
/// the program's functions (PLT, libraries, indirect) counts as writing
/// them all, as the compiler assumed; an indirect jump counts as nothing
/// (switch tables), and so does what cannot be read: for old code, an
/// answer too small only makes relive keep more registers.
pub fn in_process(code: &dyn LiveCode, addr: u64) -> Regs {
    let mut seen: HashSet<u64> = [addr].into_iter().collect();
    let mut queue = vec![addr];
    let mut writes = Regs::NONE;
    while let Some(at) = queue.pop() {
        let Some(bytes) = code.function(at) else {
            if at == addr {
                return Regs::NONE;
            }
            return Regs::CALL_CLOBBERED;
        };
        let (found, _) = scan(&bytes, at);
        writes = writes.union(found.writes);
        for exit in found.exits {
            match exit {
                Exit::Indirect { call: true } => return Regs::CALL_CLOBBERED,
                Exit::Indirect { call: false } => {}
                Exit::Direct { target, .. } => {
                    if seen.insert(target) {
                        if seen.len() > MAX_FUNCTIONS {
                            continue;
                        }
                        queue.push(target);
                    }
                }
            }
        }
    }
    writes.intersect(Regs::CALL_CLOBBERED)
}

/// Whether the code a producer string describes may rely on
/// interprocedural register allocation: GCC at `-O2`, `-O3`, `-Os`,
/// `-Ofast` (or with `-fipa-ra`), unless `-fno-ipa-ra`, `-flive-patching`
/// or profiling turned it off. Clang does not do it by default. Unknown
/// (no debug information) counts as yes.
pub fn may_assume_preserved(producer: Option<&str>) -> bool {
    let Some(producer) = producer else { return true };
    if !producer.starts_with("GNU") {
        return false;
    }
    let mut on = false;
    for flag in producer.split_whitespace() {
        match flag {
            "-O2" | "-O3" | "-Os" | "-Ofast" | "-Oz" | "-fipa-ra" => on = true,
            "-O0" | "-O1" | "-O" | "-Og" | "-fno-ipa-ra" | "-p" | "-pg" => on = false,
            f if f.starts_with("-flive-patching") => return false,
            _ => {}
        }
    }
    on
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_of_simple_code() {
        // mov eax, [rip+0]; ret
        let (s, ok) = scan(&[0x8b, 0x05, 0, 0, 0, 0, 0xc3], 0x1000);
        assert!(ok);
        assert_eq!(s.writes.intersect(Regs::CALL_CLOBBERED), Regs::gpr(0));
        // movaps xmm3, xmm0; xor edi, edi; syscall
        let (s, _) = scan(&[0x0f, 0x28, 0xd8, 0x31, 0xff, 0x0f, 0x05], 0);
        assert_eq!(
            s.writes.intersect(Regs::CALL_CLOBBERED).names(),
            ["rax", "rcx", "rdi", "r11", "xmm3"]
        );
    }

    #[test]
    fn tail_calls_through_pointers_run_unknown_code() {
        // jmp *0x10(%rip): a tail call through a function pointer.
        let (s, _) = scan(&[0xff, 0x25, 0x10, 0, 0, 0], 0x100);
        assert_eq!(s.exits, [Exit::Indirect { call: true }]);
        // mov 8(%rdi),%rax; jmp *%rax: the same through a register.
        let (s, _) = scan(&[0x48, 0x8b, 0x47, 0x08, 0xff, 0xe0], 0x100);
        assert_eq!(s.exits, [Exit::Indirect { call: true }]);
        // jmp *0x0(,%rax,8): a switch's table.
        let (s, _) = scan(&[0xff, 0x24, 0xc5, 0, 0, 0, 0], 0x100);
        assert_eq!(s.exits, [Exit::Indirect { call: false }]);
    }

    #[test]
    fn exits() {
        // call +0x10 (outside); jmp -2 (itself: inside); movslq
        // (%rdx,%rax,4),%rax (a table read); jmp *rax
        let (s, _) = scan(
            &[0xe8, 0x10, 0, 0, 0, 0xeb, 0xfe, 0x48, 0x63, 0x04, 0x82, 0xff, 0xe0],
            0x100,
        );
        assert_eq!(
            s.exits,
            [
                Exit::Direct {
                    at: 0x100,
                    next: 0x105,
                    call: true,
                    target: 0x115
                },
                Exit::Indirect { call: false }
            ]
        );
    }

    #[test]
    fn producers() {
        assert!(may_assume_preserved(Some("GNU C17 12.2.0 -mtune=generic -O2 -g")));
        assert!(may_assume_preserved(Some("GNU C17 12.2.0 -Os")));
        assert!(!may_assume_preserved(Some("GNU C17 12.2.0 -O0 -g")));
        assert!(!may_assume_preserved(Some("GNU C17 12.2.0 -g")));
        assert!(!may_assume_preserved(Some("GNU C17 12.2.0 -O2 -fno-ipa-ra")));
        assert!(!may_assume_preserved(Some(
            "GNU C17 12.2.0 -O2 -flive-patching=inline-clone"
        )));
        assert!(!may_assume_preserved(Some("Debian clang version 14.0.6")));
        assert!(may_assume_preserved(None));
    }
}
