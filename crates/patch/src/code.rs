//! Decoding a function's machine code (iced-x86) for what patching needs:
//! its instruction boundaries, the branch targets inside it, and every
//! PC-relative field (rel32 branches, RIP-relative operands) with the
//! distance from the field to the end of its instruction.

use iced_x86::{Decoder, DecoderOptions, Instruction};

/// Functions are decoded as if placed here, so that targets before the
/// start stay positive.
const BASE: u64 = 1 << 32;

/// A PC-relative field of one instruction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PcRelField {
    /// Offset of the field from the function's start.
    pub field: u64,
    /// Bytes in the field (4, or 1 for a short branch).
    pub size: u8,
    /// Offset of the end of the instruction: the CPU adds the field to it.
    pub next: u64,
    /// The offset (from the function's start) the field reaches as encoded.
    pub target: i64,
    /// A branch (call/jmp/jcc), not a memory operand.
    pub branch: bool,
}

/// What decoding a function found.
#[derive(Debug, Clone, Default)]
pub struct Decoded {
    /// `(offset, length)` of each instruction.
    pub instructions: Vec<(u64, u32)>,
    pub pc_relative: Vec<PcRelField>,
    /// Offsets inside the function that some branch of it jumps to.
    pub branch_targets: Vec<u64>,
    /// Offset of the first byte that does not decode, if any.
    pub invalid_at: Option<u64>,
}

/// Decodes `bytes` as one x86-64 function.
pub fn decode(bytes: &[u8]) -> Decoded {
    // x86-64 code averages three to four bytes an instruction: one
    // allocation, not a growing vector's several, for each function.
    let mut out = Decoded {
        instructions: Vec::with_capacity(bytes.len() / 3 + 1),
        ..Decoded::default()
    };
    let mut decoder = Decoder::with_ip(64, bytes, BASE, DecoderOptions::NONE);
    let mut instr = Instruction::default();
    let size = bytes.len() as i64;
    while decoder.can_decode() {
        decoder.decode_out(&mut instr);
        let start = instr.ip() - BASE;
        if instr.is_invalid() {
            out.invalid_at = Some(start);
            break;
        }
        let len = instr.len() as u64;
        let next = start + len;
        out.instructions.push((start, len as u32));
        let branch = instr.is_call_near()
            || instr.is_jmp_short_or_near()
            || instr.is_jcc_short_or_near()
            || instr.is_loop()
            || instr.is_loopcc()
            || instr.is_jcx_short();
        if branch {
            let target = instr.near_branch_target().wrapping_sub(BASE) as i64;
            if (0..size).contains(&target) {
                out.branch_targets.push(target as u64);
            }
            let field_size: u8 = if len >= 5 { 4 } else { 1 };
            out.pc_relative.push(PcRelField {
                field: next - u64::from(field_size),
                size: field_size,
                next,
                target,
                branch: true,
            });
        } else if instr.is_ip_rel_memory_operand() {
            let offsets = decoder.get_constant_offsets(&instr);
            if offsets.has_displacement() {
                out.pc_relative.push(PcRelField {
                    field: start + offsets.displacement_offset() as u64,
                    size: offsets.displacement_size() as u8,
                    next,
                    target: instr.ip_rel_memory_address().wrapping_sub(BASE) as i64,
                    branch: false,
                });
            }
        }
    }
    out.branch_targets.sort_unstable();
    out.branch_targets.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_and_targets() {
        // 0: call rel32 (to -0x10)   5: jne +2 (short, to 9)   7: nop; nop
        // 9: cmp dword [rip+0x100], 5   (disp at 11, imm after: next = 0x13)
        let code = [
            0xe8, 0xeb, 0xff, 0xff, 0xff, 0x75, 0x02, 0x90, 0x90, 0x83, 0x3d, 0x00, 0x01, 0x00, 0x00, 0x05, 0xc3,
        ];
        let d = decode(&code);
        assert_eq!(d.invalid_at, None);
        assert_eq!(d.instructions.len(), 6);
        assert_eq!(
            d.pc_relative[0],
            PcRelField {
                field: 1,
                size: 4,
                next: 5,
                target: -0x10,
                branch: true
            }
        );
        assert_eq!(d.pc_relative[1].target, 9);
        assert_eq!(d.pc_relative[1].size, 1);
        let cmp = d.pc_relative[2];
        assert_eq!((cmp.field, cmp.size, cmp.next, cmp.branch), (11, 4, 16, false));
        assert_eq!(cmp.target, 16 + 0x100);
        assert_eq!(d.branch_targets, vec![9]);
        // The instruction containing offset 12, and none at 99.
        let containing = |at: u64| {
            d.instructions
                .iter()
                .find(|&&(start, len)| start <= at && at < start + u64::from(len))
                .copied()
        };
        assert_eq!(containing(12), Some((9, 7)));
        assert_eq!(containing(99), None);
    }
}
