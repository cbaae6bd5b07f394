//! Redirecting a function's entry to its jump slot.
//!
//! The first patch of `f` writes `jmp *slot(%rip)` (6 bytes) at its entry;
//! later patches only store a new address in the slot. Where the function
//! has a `-fpatchable-function-entry` pad (NOPs before the entry and a
//! NOP at it, as Cosmopolitan builds everything), the long jump goes into
//! the pad and the entry's single 2-byte NOP becomes `jmp short` to it, so
//! no instruction is ever half-overwritten. An `endbr64` at the entry is
//! kept (indirect calls under CET must land on one), and the jump follows
//! it. Without a pad, the bytes the jump covers must not be a branch
//! target inside the function, and a function shorter than the jump needs
//! padding (NOPs/int3) after it.

use serde::Serialize;

use crate::code;

/// `jmp *disp32(%rip)`.
pub const JMP_SLOT_LEN: u64 = 6;
const ENDBR64: [u8; 4] = [0xf3, 0x0f, 0x1e, 0xfa];
/// Bytes of the function's neighbourhood read before the entry.
pub const BEFORE: u64 = 16;
/// Bytes read after the function's end (at least one whole multi-byte NOP
/// past the jump).
pub const AFTER: u64 = 32;

/// How a function's entry is redirected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "method")]
pub enum Redirect {
    /// `jmp *slot(%rip)` written at `at` (the entry, or just after its
    /// `endbr64`).
    Jump { at: u64 },
    /// `jmp *slot(%rip)` written at `pad` before the entry, and `jmp short`
    /// to it over the entry's 2-byte NOP.
    Pad { pad: u64, entry: u64 },
}

impl Redirect {
    /// The bytes this redirect overwrites: `(start, length)`.
    pub fn span(&self) -> (u64, u64) {
        match *self {
            Redirect::Jump { at } => (at, JMP_SLOT_LEN),
            Redirect::Pad { pad, entry } => (pad, entry + 2 - pad),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Redirect::Jump { .. } => "jump",
            Redirect::Pad { .. } => "pad",
        }
    }

    /// The new bytes for the span, jumping through the cell at `slot`;
    /// `None` when the cell is beyond the jump's ±2 GiB reach.
    pub fn bytes(&self, slot: u64) -> Option<Vec<u8>> {
        let jmp_at = match *self {
            Redirect::Jump { at } => at,
            Redirect::Pad { pad, .. } => pad,
        };
        let disp = i32::try_from(i128::from(slot) - i128::from(jmp_at) - i128::from(JMP_SLOT_LEN)).ok()?;
        let mut out = vec![0xff, 0x25];
        out.extend_from_slice(&disp.to_le_bytes());
        if let Redirect::Pad { pad, entry } = *self {
            // NOPs stay NOPs between the long jump and the entry.
            out.resize((entry - pad) as usize, 0x90);
            let back = pad as i64 - (entry as i64 + 2);
            out.extend_from_slice(&[0xeb, back as i8 as u8]);
        }
        Some(out)
    }

    /// Whether `pc` is strictly inside the overwritten bytes (a thread
    /// there would resume in the middle of a new instruction). A thread at
    /// the first byte simply runs the new jump.
    pub fn splits(&self, pc: u64) -> bool {
        let (start, len) = self.span();
        match *self {
            Redirect::Jump { .. } => pc > start && pc < start + len,
            Redirect::Pad { entry, .. } => (pc >= start && pc < entry) || pc == entry + 1,
        }
    }
}

/// Decides how to redirect a function at `entry` of `size` bytes, given
/// the live bytes `before` it ([`BEFORE`] bytes) and `code` from it (its
/// size plus [`AFTER`] bytes, for the padding that may follow it). `Err` says why it cannot be
/// done and what fixes it.
pub fn plan(name: &str, entry: u64, size: u64, before: &[u8], code: &[u8]) -> Result<Redirect, String> {
    let pad_nops = before.iter().rev().take_while(|&&b| b == 0x90).count() as u64;
    let entry_nop = code.starts_with(&[0x66, 0x90]) || code.starts_with(&[0x90, 0x90]);
    if pad_nops >= JMP_SLOT_LEN && entry_nop {
        return Ok(Redirect::Pad {
            pad: entry - JMP_SLOT_LEN,
            entry,
        });
    }
    let skip = if code.starts_with(&ENDBR64) {
        ENDBR64.len() as u64
    } else {
        0
    };
    let at = entry + skip;
    let body = &code[..(size as usize).min(code.len())];
    let decoded = code::decode(body);
    if let Some(&t) = decoded
        .branch_targets
        .iter()
        .find(|&&t| t > skip && t < skip + JMP_SLOT_LEN)
    {
        return Err(format!(
            "a branch inside {name} jumps to +{t:#x}, which the {JMP_SLOT_LEN}-byte entry jump would overwrite; rebuild with -fpatchable-function-entry=8,6 to give it a pad"
        ));
    }
    let needed = skip + JMP_SLOT_LEN;
    if size < needed {
        let after = code.get(size as usize..).unwrap_or(&[]);
        if !is_padding(after, (needed - size) as usize) {
            return Err(format!(
                "{name} is {size} bytes, shorter than the {needed}-byte entry jump, and no padding follows it; rebuild with -fpatchable-function-entry=8,6 (or -falign-functions=16)"
            ));
        }
    }
    Ok(Redirect::Jump { at })
}

/// Whether the first `len` bytes of `bytes` are alignment filler: whole
/// NOP or int3 instructions (multi-byte NOPs included) covering them.
fn is_padding(bytes: &[u8], len: usize) -> bool {
    use iced_x86::{Decoder, DecoderOptions, Mnemonic};
    let mut decoder = Decoder::with_ip(64, bytes, 0, DecoderOptions::NONE);
    let mut covered = 0usize;
    while covered < len {
        if !decoder.can_decode() {
            return false;
        }
        let instr = decoder.decode();
        if instr.is_invalid() || !matches!(instr.mnemonic(), Mnemonic::Nop | Mnemonic::Int3) {
            return false;
        }
        covered += instr.len();
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jump_bytes_point_at_the_slot() {
        let r = Redirect::Jump { at: 0x1000 };
        assert_eq!(r.bytes(0x2000).unwrap(), [0xff, 0x25, 0xfa, 0x0f, 0, 0]);
        assert_eq!(r.bytes(0x1000 + (3 << 30)), None);
        assert!(r.splits(0x1001) && !r.splits(0x1000) && !r.splits(0x1006));
        let p = Redirect::Pad {
            pad: 0x0ffa,
            entry: 0x1000,
        };
        let b = p.bytes(0x2000).unwrap();
        assert_eq!(&b[6..], [0xeb, 0xf8]);
        assert_eq!(p.span(), (0xffa, 8));
        assert!(p.splits(0x1001) && !p.splits(0x1000) && p.splits(0xffa));
    }

    #[test]
    fn plans() {
        let nops = [0x90u8; 16];
        // Cosmopolitan-style pad: 16 NOPs, then 66 90 at the entry.
        let cosmo = [0x66, 0x90, 0x55, 0x48, 0x89, 0xe5, 0xc3, 0xcc];
        assert_eq!(
            plan("f", 0x1000, 7, &nops, &cosmo),
            Ok(Redirect::Pad {
                pad: 0xffa,
                entry: 0x1000
            })
        );
        // endbr64 kept.
        let cet = [0xf3, 0x0f, 0x1e, 0xfa, 0x55, 0x48, 0x89, 0xe5, 0x5d, 0xc3];
        assert_eq!(
            plan("f", 0x1000, 10, &[0xcc; 16], &cet),
            Ok(Redirect::Jump { at: 0x1004 })
        );
        // mov eax,edi; ret — then NOP padding: fine.
        let short = [0x89, 0xf8, 0xc3, 0x0f, 0x1f, 0x00, 0xcc, 0xcc];
        // lea eax,[rdi+1]; ret — then a 10-byte NOP cut by nothing.
        let aligned = [
            0x8d, 0x47, 0x01, 0xc3, 0x66, 0x2e, 0x0f, 0x1f, 0x84, 0, 0, 0, 0, 0, 0x90, 0x90,
        ];
        assert_eq!(
            plan("f", 0x1000, 4, &[0; 16], &aligned),
            Ok(Redirect::Jump { at: 0x1000 })
        );
        assert_eq!(
            plan("f", 0x1000, 3, &[0; 16], &short),
            Ok(Redirect::Jump { at: 0x1000 })
        );
        // ... but followed by another function: refused, naming the flag.
        let tight = [0x89, 0xf8, 0xc3, 0x55, 0x48, 0x89, 0xe5, 0xc3];
        let err = plan("f", 0x1000, 3, &[0; 16], &tight).unwrap_err();
        assert!(err.contains("-fpatchable-function-entry"), "{err}");
        // A loop back to +2 (inside the jump's bytes): refused.
        let looping = [0x31, 0xc0, 0xff, 0xc0, 0x83, 0xf8, 0x0a, 0x75, 0xf9, 0xc3, 0xcc, 0xcc];
        let err = plan("f", 0x1000, 10, &[0; 16], &looping).unwrap_err();
        assert!(err.contains("+0x2"), "{err}");
    }
}
