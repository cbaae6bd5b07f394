//! Register-preserving thunks: the entry of a replaced function whose new
//! code writes registers its old callers keep values in (see
//! [`crate::clobber`]).
//!
//! ```text
//! sub  rsp, FRAME             ; FRAME ≡ 8 (mod 16): the call below is aligned
//! mov  [rsp+64+…], REG        ; each register to keep (xmm: movdqu)
//! mov  r11, [rsp+FRAME+8+8i]  ; copy the caller's first 8 stack words
//! mov  [rsp+8i], r11          ;   (stack arguments) where the callee expects them
//! call NEW
//! mov  REG, [rsp+64+…]        ; restore
//! add  rsp, FRAME
//! ret
//! ```
//!
//! Copying 8 stack words makes functions with up to 8 stack-passed words
//! (a 7th to 14th integer argument, a small struct by value, varargs)
//! work unchanged; larger stack arguments are not supported behind a thunk.
//! Writes the callee makes to its stack arguments land in the copy, which
//! the System V ABI allows (the callee owns that area). Its unwind
//! information ([`frame_of`], [`crate::eh_frame::thunk_eh_frame`]) lets
//! exceptions, `backtrace()` and debuggers pass through it.

use iced_x86::code_asm::{registers::gpr64, registers::xmm, *};

use crate::clobber::{Regs, R11};

/// Stack words copied for arguments passed on the stack.
const STACK_ARGS: u32 = 8;

fn gpr(n: u32) -> AsmRegister64 {
    [
        gpr64::rax,
        gpr64::rcx,
        gpr64::rdx,
        gpr64::rbx,
        gpr64::rsp,
        gpr64::rbp,
        gpr64::rsi,
        gpr64::rdi,
        gpr64::r8,
        gpr64::r9,
        gpr64::r10,
        gpr64::r11,
        gpr64::r12,
        gpr64::r13,
        gpr64::r14,
        gpr64::r15,
    ][n as usize]
}

fn xmm(n: u32) -> AsmRegisterXmm {
    [
        xmm::xmm0,
        xmm::xmm1,
        xmm::xmm2,
        xmm::xmm3,
        xmm::xmm4,
        xmm::xmm5,
        xmm::xmm6,
        xmm::xmm7,
        xmm::xmm8,
        xmm::xmm9,
        xmm::xmm10,
        xmm::xmm11,
        xmm::xmm12,
        xmm::xmm13,
        xmm::xmm14,
        xmm::xmm15,
    ][n as usize]
}

/// Machine code of a thunk placed at `at` that calls `callee` and keeps
/// `keep` (call-clobbered registers; `r11` is always kept when asked, as
/// the thunk uses it). Both addresses are in the same address space, so
/// the bytes work wherever the pair is moved together.
pub fn preserving(keep: Regs, at: u64, callee: u64) -> Result<Vec<u8>, IcedError> {
    let gprs: Vec<u32> = keep.gprs().collect();
    let xmms: Vec<u32> = keep.xmms().collect();
    let copy = 8 * STACK_ARGS;
    let xmm_base = (copy + 8 * gprs.len() as u32).next_multiple_of(16);
    let frame = (xmm_base + 16 * xmms.len() as u32 + 8).next_multiple_of(16) - 8;
    let mut a = CodeAssembler::new(64)?;
    a.sub(gpr64::rsp, frame as i32)?;
    for (k, &n) in gprs.iter().enumerate() {
        a.mov(qword_ptr(gpr64::rsp + (copy + 8 * k as u32)), gpr(n))?;
    }
    for (k, &n) in xmms.iter().enumerate() {
        a.movdqu(xmmword_ptr(gpr64::rsp + (xmm_base + 16 * k as u32)), xmm(n))?;
    }
    for i in 0..STACK_ARGS {
        a.mov(gpr(R11), qword_ptr(gpr64::rsp + (frame + 8 + 8 * i)))?;
        a.mov(qword_ptr(gpr64::rsp + 8 * i), gpr(R11))?;
    }
    a.call(callee)?;
    for (k, &n) in xmms.iter().enumerate() {
        a.movdqu(xmm(n), xmmword_ptr(gpr64::rsp + (xmm_base + 16 * k as u32)))?;
    }
    for (k, &n) in gprs.iter().enumerate() {
        a.mov(gpr(n), qword_ptr(gpr64::rsp + (copy + 8 * k as u32)))?;
    }
    a.add(gpr64::rsp, frame as i32)?;
    a.ret()?;
    a.assemble(at)
}

/// The frame of a thunk [`preserving`] made, from its first instruction
/// (`sub rsp, FRAME`): FRAME, and that instruction's length.
pub fn frame_of(code: &[u8]) -> Option<(u64, u64)> {
    match code {
        [0x48, 0x83, 0xec, imm, ..] => Some((u64::from(*imm), 4)),
        [0x48, 0x81, 0xec, a, b, c, d, ..] => Some((u64::from(u32::from_le_bytes([*a, *b, *c, *d])), 7)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use iced_x86::{Decoder, DecoderOptions, Formatter, NasmFormatter};

    fn text(bytes: &[u8], at: u64) -> Vec<String> {
        let mut f = NasmFormatter::new();
        Decoder::with_ip(64, bytes, at, DecoderOptions::NONE)
            .into_iter()
            .map(|i| {
                let mut s = String::new();
                f.format(&i, &mut s);
                s
            })
            .collect()
    }

    #[test]
    fn saves_calls_restores() {
        let keep = Regs::gpr(7).union(Regs::gpr(R11)).union(Regs::xmm(3));
        let code = preserving(keep, 0x1000, 0x2000).unwrap();
        let t = text(&code, 0x1000);
        // 64 copy + 16 gprs = 80, xmm at 80..96 → 96, aligned to ≡ 8: 104.
        assert_eq!(t[0], "sub rsp,68h");
        assert_eq!(frame_of(&code), Some((0x68, 4)));
        assert_eq!(t[1], "mov [rsp+40h],rdi");
        assert_eq!(t[2], "mov [rsp+48h],r11");
        assert_eq!(t[3], "movdqu [rsp+50h],xmm3");
        assert_eq!(t[4], "mov r11,[rsp+70h]");
        assert_eq!(t[5], "mov [rsp],r11");
        assert!(t.contains(&"call 0000000000002000h".to_string()), "{t:?}");
        assert_eq!(
            &t[t.len() - 5..],
            [
                "movdqu xmm3,[rsp+50h]",
                "mov rdi,[rsp+40h]",
                "mov r11,[rsp+48h]",
                "add rsp,68h",
                "ret"
            ]
        );
    }
}
