//! Moving a thread out of the bytes a redirect replaces without running
//! it.
//!
//! A thread stopped strictly inside the bytes a first redirect overwrites
//! would resume in the middle of the new jump. Single-stepping it out sets
//! its trap flag, and a relive killed between the step and clearing the
//! flag leaves a thread that dies of SIGTRAP at its next instruction.
//! Instead, the overwritten instructions are copied into the patch pool,
//! relocated (relative branches and RIP-relative operands keep their
//! targets; a branch to one of the copied instructions goes to its copy),
//! followed by a jump to the first original instruction after them, and
//! the thread's program counter moves to the copy of its instruction. It
//! runs exactly what it would have run, then carries on in the original
//! code past the redirect. Nothing is left set in the thread: a relive
//! killed at any moment leaves it running valid code, in memory the
//! journal's intent already counts as used.

use iced_x86::{BlockEncoder, BlockEncoderOptions, Code, Decoder, DecoderOptions, Instruction, InstructionBlock};

/// Room for one copy: the overwritten span (at most 16 bytes, with a
/// pad) extended to whole instructions (up to 15 more), grown by
/// relocation (a short branch becomes a near one), and the jump back.
pub const COPY_LEN: u64 = 64;
/// Copies one transaction has room for: distinct spans with a thread
/// inside at the same moment. More waits for a moment when there are
/// fewer, as before.
pub const COPIES: u64 = 4;
/// Bytes of original code read from the span's start to decode it.
pub const READ_LEN: usize = 16 + 15;

/// The instructions of a span, copied and relocated to run elsewhere.
#[derive(Debug, Clone)]
pub struct Displaced {
    /// Where the copy runs.
    pub at: u64,
    /// The copy, ending in a jump to the first instruction after the span.
    pub bytes: Vec<u8>,
    /// Each copied instruction's original address and its copy's.
    moved: Vec<(u64, u64)>,
}

impl Displaced {
    /// The instructions covering `start..start + len` (the redirect's span)
    /// from `code` (the original bytes at `start`, at least [`READ_LEN`]),
    /// relocated to run at `at`, then a jump back. `None` when they cannot
    /// be: an undecodable byte, a target out of reach, or a copy longer
    /// than [`COPY_LEN`].
    pub fn relocate(code: &[u8], start: u64, len: u64, at: u64) -> Option<Displaced> {
        let mut decoder = Decoder::with_ip(64, code, start, DecoderOptions::NONE);
        let mut instructions = Vec::new();
        let mut end = start;
        while end < start + len {
            if !decoder.can_decode() {
                return None;
            }
            let instruction = decoder.decode();
            if instruction.is_invalid() {
                return None;
            }
            end = instruction.next_ip();
            instructions.push(instruction);
        }
        let originals: Vec<u64> = instructions.iter().map(|i| i.ip()).collect();
        instructions.push(Instruction::with_branch(Code::Jmp_rel32_64, end).ok()?);
        let block = InstructionBlock::new(&instructions, at);
        let encoded = BlockEncoder::encode(64, block, BlockEncoderOptions::RETURN_NEW_INSTRUCTION_OFFSETS).ok()?;
        if encoded.code_buffer.len() as u64 > COPY_LEN {
            return None;
        }
        let moved = originals
            .iter()
            .zip(&encoded.new_instruction_offsets)
            .map(|(&ip, &offset)| (ip, at + u64::from(offset)))
            .collect();
        Some(Displaced {
            at,
            bytes: encoded.code_buffer,
            moved,
        })
    }

    /// Where a thread at `pc` continues in the copy: `None` when `pc` is
    /// not the start of a copied instruction.
    pub fn moved(&self, pc: u64) -> Option<u64> {
        self.moved.iter().find(|&&(from, _)| from == pc).map(|&(_, to)| to)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(bytes: &[u8], ip: u64) -> Vec<Instruction> {
        let mut d = Decoder::with_ip(64, bytes, ip, DecoderOptions::NONE);
        let mut out = Vec::new();
        while d.can_decode() {
            out.push(d.decode());
        }
        out
    }

    /// `push rbp; mov rbp, rsp; lea rax, [rip + 0x100]; ...` with a jump
    /// redirect (6 bytes) at 0x1000: the copy holds the three instructions
    /// covering them, the LEA still reaching its original target, and
    /// jumps back to the fourth.
    #[test]
    fn a_span_is_copied_whole_and_jumps_back() {
        let code = [
            0x55, // push rbp
            0x48, 0x89, 0xe5, // mov rbp, rsp
            0x48, 0x8d, 0x05, 0x00, 0x01, 0x00, 0x00, // lea rax, [rip+0x100]
            0xc3, // ret
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ];
        let copy = Displaced::relocate(&code, 0x1000, 6, 0x7000_0000).unwrap();
        let got = decode_all(&copy.bytes, copy.at);
        assert_eq!(got.len(), 4, "{got:?}");
        assert_eq!(got[2].ip_rel_memory_address(), 0x100b + 0x100);
        assert_eq!(got[3].near_branch_target(), 0x100b);
        assert_eq!(copy.moved(0x1001), Some(0x7000_0001));
        assert_eq!(copy.moved(0x1004), Some(0x7000_0004));
        assert_eq!(copy.moved(0x1002), None, "not an instruction's start");
    }

    /// A loop inside the span (`spin: pause; jmp spin`) loops in the copy:
    /// a branch to a copied instruction goes to its copy.
    #[test]
    fn a_loop_within_the_span_stays_in_the_copy() {
        let code = [
            0xf3, 0x90, // pause
            0xeb, 0xfc, // jmp -4 (to the pause)
            0x90, 0x90, 0xc3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ];
        let copy = Displaced::relocate(&code, 0x1000, 6, 0x2000).unwrap();
        let got = decode_all(&copy.bytes, copy.at);
        assert_eq!(got[1].near_branch_target(), 0x2000, "{got:?}");
        assert_eq!(copy.moved(0x1002), Some(0x2002));
    }

    #[test]
    fn undecodable_code_is_not_copied() {
        let code = [0x0f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
        assert!(Displaced::relocate(&code, 0x1000, 6, 0x2000).is_none());
        assert!(Displaced::relocate(&[], 0x1000, 6, 0x2000).is_none());
    }
}
