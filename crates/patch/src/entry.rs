//! Redirecting a function's entry to its jump slot.
//!
//! The first patch of `f` writes a jump at its entry that ends up in the
//! 8-byte jump slot of the patch pool; later patches only store a new
//! address in the slot (one aligned 8-byte write). Three ways:
//!
//! - [`Redirect::Jump`]: `jmp *slot(%rip)` (6 bytes) at the entry. Used
//!   wherever it fits, because it is one hop and needs nothing but the slot.
//! - [`Redirect::Near`]: `jmp rel32` (5 bytes) to a per-function stub in the
//!   pool's code part, the stub being `jmp *slot(%rip)`. Used where the 6
//!   bytes do not fit: a 5-byte function (`lea eax,[rdi+rdi*2+1]; ret`) or
//!   a 4-byte one followed by one byte of padding, both common at -O2, or a
//!   branch target or return address at +5. It overwrites one byte less;
//!   the cost is one extra direct jump on each call. (Using it always would
//!   change nothing for safety but add that hop to every function.)
//! - [`Redirect::Pad`]: where the function has a `-fpatchable-function-entry`
//!   pad (NOPs before the entry and a NOP at it, as Cosmopolitan builds
//!   everything), the long jump goes into the pad and the entry's single
//!   2-byte NOP becomes `jmp short` to it, so no instruction is ever
//!   half-overwritten.
//! - [`Redirect::Hop`]: a function too short for either jump (a 4-byte
//!   `lea eax,[rdi+rdi]; ret` that is the last function of `.text`, with
//!   nothing to borrow after it) whose entry follows the previous
//!   function's alignment filler: the long jump goes into that filler, and
//!   `jmp short` to it over the entry's first 2 bytes. Also taken where
//!   the old function's line table starts a statement inside the long
//!   jump ([`Site::statements`]): gdb's `break FILE:LINE` puts an `int3`
//!   on the old code's statements too, and one in the middle of the jump
//!   would send the next call elsewhere.
//!
//! An `endbr64` at the entry is kept (indirect calls under CET must land on
//! one), and the jump follows it. Without a pad, the bytes the jump covers
//! must hold no branch target of the function and no return address of a
//! call in it (a thread returning there would run the middle of the new
//! jump). A function shorter than the jump may borrow the bytes after it
//! when they are filler (NOPs, int3, or zeros up to the next 16-byte
//! boundary) that no symbol of the program claims; below 5 bytes with no
//! such filler it is refused, naming the build flag that gives it room.

use serde::Serialize;

use crate::code;

/// `jmp *disp32(%rip)`.
pub const JMP_SLOT_LEN: u64 = relive_x86::jump::RIP_LEN;
/// `jmp rel32`.
pub const JMP_NEAR_LEN: u64 = relive_x86::jump::REL32_LEN;
/// A near redirect's stub in the pool: `jmp *disp32(%rip)`.
pub const STUB_LEN: u64 = JMP_SLOT_LEN;
const ENDBR64: [u8; 4] = [0xf3, 0x0f, 0x1e, 0xfa];
/// Bytes of the function's neighbourhood read before the entry.
pub const BEFORE: u64 = 16;
/// Bytes read after the function's end (at least one whole multi-byte NOP
/// past the jump).
pub const AFTER: u64 = 32;
/// Zero filler is only trusted up to this boundary past a function's end:
/// a function (or anything else the compiler aligns) may start at the
/// next one even where the symbol table names nothing.
const ZERO_FILL_ALIGN: u64 = 16;

/// How a function's entry is redirected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "method")]
pub enum Redirect {
    /// `jmp *slot(%rip)` written at `at` (the entry, or just after its
    /// `endbr64`).
    Jump { at: u64 },
    /// `jmp rel32` written at `at` (the entry, or just after its
    /// `endbr64`) to the function's stub in the pool, which jumps through
    /// the slot.
    Near { at: u64 },
    /// `jmp *slot(%rip)` written at `pad` before the entry, and `jmp short`
    /// to it over the entry's 2-byte NOP.
    Pad { pad: u64, entry: u64 },
    /// `jmp *slot(%rip)` written at `pad`, in the unclaimed filler just
    /// before the entry, and `jmp short` to it at `at` (the entry, or just
    /// after its `endbr64`), over whatever instructions start there.
    Hop { pad: u64, entry: u64, at: u64 },
}

/// `jmp *disp32(%rip)` at `at` through the cell at `slot`; `None` when the
/// cell is beyond its ±2 GiB reach.
fn jmp_slot(at: u64, slot: u64) -> Option<[u8; JMP_SLOT_LEN as usize]> {
    relive_x86::jump::through(at, slot)
}

/// The stub of a [`Redirect::Near`] at `stub` in the pool's code part:
/// `jmp *slot(%rip)`, so that a later patch still only stores a new
/// address in the slot. `None` when the slot is out of reach (never, for a
/// stub and slot of one pool).
pub fn stub_bytes(stub: u64, slot: u64) -> Option<[u8; STUB_LEN as usize]> {
    jmp_slot(stub, slot)
}

impl Redirect {
    /// The bytes this redirect overwrites: `(start, length)`. For a jump
    /// that borrows the padding after a short function, the span reaches
    /// into it.
    pub fn span(&self) -> (u64, u64) {
        match *self {
            Redirect::Jump { at } => (at, JMP_SLOT_LEN),
            Redirect::Near { at } => (at, JMP_NEAR_LEN),
            Redirect::Pad { pad, entry } => (pad, entry + 2 - pad),
            Redirect::Hop { pad, at, .. } => (pad, at + 2 - pad),
        }
    }

    /// The journal's and report's `method`.
    pub fn name(&self) -> &'static str {
        match self {
            Redirect::Jump { .. } => "jump",
            Redirect::Near { .. } => "near",
            Redirect::Pad { .. } => "pad",
            Redirect::Hop { .. } => "hop",
        }
    }

    /// Whether the redirect goes through a stub in the pool's code part.
    pub fn needs_stub(&self) -> bool {
        matches!(self, Redirect::Near { .. })
    }

    /// The new bytes for the span, jumping through the cell at `slot` (a
    /// near redirect: to its `stub`, which does). `Err` says what is out of
    /// the jump's ±2 GiB reach.
    pub fn bytes(&self, slot: u64, stub: Option<u64>) -> Result<Vec<u8>, String> {
        let far = |what: &str, addr: u64| format!("{what} at {addr:#x} is beyond the entry jump's ±2 GiB reach");
        match *self {
            Redirect::Jump { at } => jmp_slot(at, slot)
                .map(|b| b.to_vec())
                .ok_or_else(|| far("its jump slot", slot)),
            Redirect::Near { at } => {
                let stub = stub.ok_or("its near jump has no stub in the patch pool")?;
                relive_x86::jump::near(at, stub)
                    .map(|b| b.to_vec())
                    .ok_or_else(|| far("its stub in the patch pool", stub))
            }
            Redirect::Pad { pad, entry } => {
                let mut out = jmp_slot(pad, slot).ok_or_else(|| far("its jump slot", slot))?.to_vec();
                // NOPs stay NOPs between the long jump and the entry.
                out.resize((entry - pad) as usize, 0x90);
                out.extend_from_slice(&short_jump(entry, pad));
                Ok(out)
            }
            Redirect::Hop { pad, entry, at } => {
                let mut out = jmp_slot(pad, slot).ok_or_else(|| far("its jump slot", slot))?.to_vec();
                out.resize((entry - pad) as usize, 0x90);
                if at > entry {
                    out.extend_from_slice(&ENDBR64);
                }
                out.extend_from_slice(&short_jump(at, pad));
                Ok(out)
            }
        }
    }

    /// Whether `pc` is strictly inside the overwritten bytes (a thread
    /// there would resume in the middle of a new instruction). A thread at
    /// the first byte simply runs the new jump. The span includes any
    /// padding a short function borrows.
    pub fn splits(&self, pc: u64) -> bool {
        let (start, len) = self.span();
        match *self {
            Redirect::Jump { .. } | Redirect::Near { .. } => pc > start && pc < start + len,
            Redirect::Pad { entry, .. } => (pc >= start && pc < entry) || pc == entry + 1,
            // The filler is never run; an instruction of one byte at the
            // entry leaves a thread that ran it in the new short jump.
            Redirect::Hop { entry, at, .. } => (pc >= start && pc < entry) || pc == at + 1,
        }
    }
}

/// `jmp short` at `at` to `to` (within -128..127 of its end, as every
/// caller arranges).
fn short_jump(at: u64, to: u64) -> [u8; 2] {
    let back = to as i64 - (at as i64 + 2);
    [0xeb, back as i8 as u8]
}

/// What [`plan`] knows about a function in the running process.
#[derive(Debug, Clone, Copy)]
pub struct Site<'a> {
    /// Its entry address and size (from the symbol table).
    pub entry: u64,
    pub size: u64,
    /// The live bytes before the entry ([`BEFORE`] of them).
    pub before: &'a [u8],
    /// The live bytes from the entry: its size plus up to [`AFTER`] bytes
    /// (fewer at the end of a mapping).
    pub code: &'a [u8],
    /// How many bytes after the function's end no symbol of the program
    /// covers or starts in (up to [`AFTER`]): only those may be borrowed.
    pub unclaimed: u64,
    /// How many bytes just before the entry no symbol covers (up to
    /// [`BEFORE`]): the previous function's alignment filler, if they
    /// decode as such.
    pub unclaimed_before: u64,
    /// Offsets from the entry where the function's line table starts a
    /// statement (from the base object; empty when unknown): where a
    /// debugger puts a line breakpoint, an `int3` over one byte. One
    /// inside the jump would break it (the jump then lands elsewhere).
    pub statements: &'a [u64],
}

/// Decides how to redirect the function `name` at `site`. `Err` says why
/// it cannot be done and what fixes it.
pub fn plan(name: &str, site: &Site) -> Result<Redirect, String> {
    let Site {
        entry,
        size,
        before,
        code,
        unclaimed,
        unclaimed_before,
        statements,
    } = *site;
    let pad_nops = before.iter().rev().take_while(|&&b| b == 0x90).count() as u64;
    let entry_nop = code.starts_with(&[0x66, 0x90]) || code.starts_with(&[0x90, 0x90]);
    if pad_nops >= JMP_SLOT_LEN && entry_nop {
        return Ok(Redirect::Pad {
            pad: entry - JMP_SLOT_LEN,
            entry,
        });
    }
    let skip = if code.starts_with(&ENDBR64) && size >= ENDBR64.len() as u64 {
        ENDBR64.len() as u64
    } else {
        0
    };
    let at = entry + skip;
    let body = code.get(..size as usize).unwrap_or(code);
    let resumes = resume_points(body);
    let after = code.get(body.len()..).unwrap_or(&[]);
    let borrowed = filler(after, entry.wrapping_add(body.len() as u64), unclaimed, true);
    // Bytes from the jump's start to the end of what may be overwritten.
    let room = (body.len() as u64).saturating_sub(skip) + borrowed;
    let mut blocked = None;
    let mut fits = None;
    for (len, redirect) in [
        (JMP_SLOT_LEN, Redirect::Jump { at }),
        (JMP_NEAR_LEN, Redirect::Near { at }),
    ] {
        if room < len {
            continue;
        }
        match resumes.iter().find(|&&(t, _)| t > skip && t < skip + len) {
            Some(&hit) => blocked = Some(hit),
            None => {
                fits = Some((len, redirect));
                break;
            }
        }
    }
    let inside = |len: u64| statements.iter().any(|&t| t > skip && t < skip + len);
    match fits {
        // No line breakpoint can land in it.
        Some((len, redirect)) if !inside(len) => return Ok(redirect),
        _ => {}
    }
    // A 2-byte `jmp short` into the filler before the entry: only a
    // statement right after the entry's first byte would fall in it.
    let hop_fits = room >= 2 && !resumes.iter().any(|&(t, _)| t == skip + 1);
    let hop_wanted = match fits {
        Some(_) => !inside(2),
        None => blocked.is_none(),
    };
    if hop_wanted && hop_fits {
        let free = unclaimed_before.min(before.len() as u64);
        let start = entry - free;
        let filler_before = filler(&before[before.len() - free as usize..], start, free, false);
        if free >= JMP_SLOT_LEN && filler_before == free {
            return Ok(Redirect::Hop {
                pad: entry - JMP_SLOT_LEN,
                entry,
                at,
            });
        }
    }
    if let Some((_, redirect)) = fits {
        return Ok(redirect);
    }
    if let Some((t, why)) = blocked {
        return Err(format!(
            "{why} +{t:#x} inside {name}, which the {JMP_NEAR_LEN}-byte entry jump would overwrite; rebuild with -fpatchable-function-entry=8,6 to give it a pad"
        ));
    }
    let needed = skip + JMP_NEAR_LEN;
    let padding = if borrowed == 0 {
        "no padding follows it".to_string()
    } else {
        format!("only {borrowed} byte(s) of padding follow it")
    };
    let endbr = if skip > 0 { " (after its endbr64)" } else { "" };
    Err(format!(
        "{name} is {size} bytes, shorter than the {needed}-byte entry jump{endbr}, and {padding}; rebuild its file with -fpatchable-function-entry=8,6 (a pad before each entry; -falign-functions=16 does not help a function that is the last of the program's code, which nothing pads)"
    ))
}

/// Offsets inside a function where execution may resume other than at its
/// entry, with what makes them so: the targets of its branches, and the
/// return address of each of its calls (a thread inside the callee comes
/// back there). Sorted.
fn resume_points(body: &[u8]) -> Vec<(u64, &'static str)> {
    use iced_x86::{Decoder, DecoderOptions};
    let mut points: Vec<(u64, &'static str)> = code::decode(body)
        .branch_targets
        .into_iter()
        .map(|t| (t, "a branch jumps to"))
        .collect();
    let mut decoder = Decoder::with_ip(64, body, 0, DecoderOptions::NONE);
    while decoder.can_decode() {
        let instr = decoder.decode();
        if instr.is_invalid() {
            break;
        }
        if instr.is_call_near() || instr.is_call_near_indirect() || instr.is_call_far() || instr.is_call_far_indirect()
        {
            points.push((instr.next_ip(), "a call returns to"));
        }
    }
    points.sort_unstable();
    points
}

/// How many bytes from the start of `after` (the bytes at `end`, where a
/// function ends) are alignment filler it may borrow: a run of whole NOP
/// or int3 instructions, or (`zeros`) of zeros up to the next
/// [`ZERO_FILL_ALIGN`] boundary; never past `unclaimed`, where a symbol
/// begins.
fn filler(after: &[u8], end: u64, unclaimed: u64, zeros: bool) -> u64 {
    use iced_x86::{Decoder, DecoderOptions, Mnemonic};
    let limit = unclaimed.min(after.len() as u64);
    let after = &after[..limit as usize];
    if zeros && after.first() == Some(&0) {
        let zeros = after.iter().take_while(|&&b| b == 0).count() as u64;
        let boundary = end.checked_next_multiple_of(ZERO_FILL_ALIGN).map_or(0, |b| b - end);
        return zeros.min(boundary);
    }
    // A multi-byte NOP cut by `limit` does not decode: only whole
    // instructions count.
    let mut decoder = Decoder::with_ip(64, after, 0, DecoderOptions::NONE);
    let mut covered = 0;
    while decoder.can_decode() {
        let instr = decoder.decode();
        if instr.is_invalid() || !matches!(instr.mnemonic(), Mnemonic::Nop | Mnemonic::Int3) {
            break;
        }
        covered += instr.len() as u64;
    }
    covered
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A site at 0x1000 with no symbol in the first 32 bytes after it.
    fn site<'a>(size: u64, before: &'a [u8], code: &'a [u8]) -> Site<'a> {
        Site {
            entry: 0x1000,
            size,
            before,
            code,
            unclaimed: AFTER,
            unclaimed_before: 0,
            statements: &[],
        }
    }

    /// `mov eax,[rdi]; imul eax,eax; ret` (g++ -O2's `Square::area`),
    /// whose line table starts a statement at +2: gdb's `break FILE:LINE`
    /// puts an `int3` there, inside a 6-byte jump (which then jumped
    /// elsewhere: the program crashed). With filler before the entry, the
    /// 2-byte `jmp short` keeps +2 out of what runs; without, the jump
    /// stays as before.
    #[test]
    fn a_statement_inside_the_jump_makes_it_hop_over_the_filler() {
        let area = [
            0x8b, 0x07, 0x0f, 0xaf, 0xc0, 0xc3, 0x66, 0x0f, 0x1f, 0x44, 0, 0, 0x90, 0x90, 0x90, 0x90,
        ];
        let mut before = [0xccu8; 16];
        before[10..].copy_from_slice(&[0x66, 0x0f, 0x1f, 0x44, 0, 0]);
        let with_filler = Site {
            unclaimed_before: 6,
            ..site(6, &before, &area)
        };
        assert_eq!(plan("area", &with_filler), Ok(Redirect::Jump { at: 0x1000 }));
        let stepped = Site {
            statements: &[2],
            ..with_filler
        };
        assert_eq!(
            plan("area", &stepped),
            Ok(Redirect::Hop {
                pad: 0xffa,
                entry: 0x1000,
                at: 0x1000
            })
        );
        // No filler: the jump all the same.
        let no_filler = Site {
            statements: &[2],
            ..site(6, &before, &area)
        };
        assert_eq!(plan("area", &no_filler), Ok(Redirect::Jump { at: 0x1000 }));
        // A statement at +1 would fall in the short jump too: the jump.
        let at_one = Site {
            statements: &[1, 2],
            ..with_filler
        };
        assert_eq!(plan("area", &at_one), Ok(Redirect::Jump { at: 0x1000 }));
    }

    #[test]
    fn jump_bytes_point_at_the_slot() {
        let r = Redirect::Jump { at: 0x1000 };
        assert_eq!(r.bytes(0x2000, None).unwrap(), [0xff, 0x25, 0xfa, 0x0f, 0, 0]);
        assert!(r.bytes(0x1000 + (3 << 30), None).unwrap_err().contains("jump slot"));
        assert!(r.splits(0x1001) && !r.splits(0x1000) && !r.splits(0x1006));
        let p = Redirect::Pad {
            pad: 0x0ffa,
            entry: 0x1000,
        };
        let b = p.bytes(0x2000, None).unwrap();
        assert_eq!(&b[6..], [0xeb, 0xf8]);
        assert_eq!(p.span(), (0xffa, 8));
        assert!(p.splits(0x1001) && !p.splits(0x1000) && p.splits(0xffa));
    }

    #[test]
    fn near_jump_goes_to_the_stub_which_goes_through_the_slot() {
        let r = Redirect::Near { at: 0x1000 };
        // e9 rel32: 0x3000 - 0x1005.
        assert_eq!(r.bytes(0x9000, Some(0x3000)).unwrap(), [0xe9, 0xfb, 0x1f, 0, 0]);
        // Backwards: the pool may be below the image.
        assert_eq!(r.bytes(0x9000, Some(0x0ff0)).unwrap(), [0xe9, 0xeb, 0xff, 0xff, 0xff]);
        assert!(r.bytes(0x9000, None).is_err());
        let err = r.bytes(0x9000, Some(0x1000 + (3 << 30))).unwrap_err();
        assert!(err.contains("stub") && err.contains("reach"), "{err}");
        assert_eq!(r.span(), (0x1000, 5));
        assert_eq!(r.name(), "near");
        assert!(r.needs_stub() && !Redirect::Jump { at: 0 }.needs_stub());
        assert!(!r.splits(0x1000) && r.splits(0x1001) && r.splits(0x1004) && !r.splits(0x1005));
        // The stub: jmp *slot(%rip), slot 0x4000 - (0x3000 + 6).
        assert_eq!(stub_bytes(0x3000, 0x4000).unwrap(), [0xff, 0x25, 0xfa, 0x0f, 0, 0]);
    }

    #[test]
    fn plans() {
        let nops = [0x90u8; 16];
        // Cosmopolitan-style pad: 16 NOPs, then 66 90 at the entry.
        let cosmo = [0x66, 0x90, 0x55, 0x48, 0x89, 0xe5, 0xc3, 0xcc];
        assert_eq!(
            plan("f", &site(7, &nops, &cosmo)),
            Ok(Redirect::Pad {
                pad: 0xffa,
                entry: 0x1000
            })
        );
        // endbr64 kept.
        let cet = [0xf3, 0x0f, 0x1e, 0xfa, 0x55, 0x48, 0x89, 0xe5, 0x5d, 0xc3];
        assert_eq!(
            plan("f", &site(10, &[0xcc; 16], &cet)),
            Ok(Redirect::Jump { at: 0x1004 })
        );
        // mov eax,edi; ret — then NOP padding: fine.
        let short = [0x89, 0xf8, 0xc3, 0x0f, 0x1f, 0x00, 0xcc, 0xcc];
        // lea eax,[rdi+1]; ret — then a 10-byte NOP cut by nothing.
        let aligned = [
            0x8d, 0x47, 0x01, 0xc3, 0x66, 0x2e, 0x0f, 0x1f, 0x84, 0, 0, 0, 0, 0, 0x90, 0x90,
        ];
        assert_eq!(
            plan("f", &site(4, &[0; 16], &aligned)),
            Ok(Redirect::Jump { at: 0x1000 })
        );
        assert_eq!(plan("f", &site(3, &[0; 16], &short)), Ok(Redirect::Jump { at: 0x1000 }));
        // ... but followed by another function: refused, naming the flag.
        let tight = [0x89, 0xf8, 0xc3, 0x55, 0x48, 0x89, 0xe5, 0xc3];
        let err = plan("f", &site(3, &[0; 16], &tight)).unwrap_err();
        assert!(err.contains("-fpatchable-function-entry"), "{err}");
        // A loop back to +2 (inside the jump's bytes): refused.
        let looping = [0x31, 0xc0, 0xff, 0xc0, 0x83, 0xf8, 0x0a, 0x75, 0xf9, 0xc3, 0xcc, 0xcc];
        let err = plan("f", &site(10, &[0; 16], &looping)).unwrap_err();
        assert!(err.contains("+0x2"), "{err}");
    }

    /// `lea eax,[rdi+rdi*2+1]; ret`, directly followed by another function
    /// (`push rbp; ...`).
    const FIVE: [u8; 9] = [0x8d, 0x44, 0x7f, 0x01, 0xc3, 0x55, 0x48, 0x89, 0xe5];
    /// `lea eax,[rdi+1]; ret`.
    const FOUR: [u8; 4] = [0x8d, 0x47, 0x01, 0xc3];

    fn four_then(after: &[u8]) -> Vec<u8> {
        FOUR.iter().chain(after).copied().collect()
    }

    #[test]
    fn five_byte_function_gets_the_near_jump() {
        assert_eq!(
            plan("tri", &site(5, &[0xcc; 16], &FIVE)),
            Ok(Redirect::Near { at: 0x1000 })
        );
        // The next function's symbol starts right after it: nothing to
        // borrow, still fine.
        let tight = Site {
            unclaimed: 0,
            ..site(5, &[0xcc; 16], &FIVE)
        };
        assert_eq!(plan("tri", &tight), Ok(Redirect::Near { at: 0x1000 }));
        // With one NOP after it, the 6-byte jump fits and is preferred.
        let padded = [0x8d, 0x44, 0x7f, 0x01, 0xc3, 0x90, 0x55];
        assert_eq!(
            plan("tri", &site(5, &[0xcc; 16], &padded)),
            Ok(Redirect::Jump { at: 0x1000 })
        );
    }

    #[test]
    fn four_byte_function_borrows_padding() {
        // One NOP: the near jump fits, the 6-byte one does not.
        let one = four_then(&[0x90, 0x55, 0x48]);
        assert_eq!(plan("inc", &site(4, &[0; 16], &one)), Ok(Redirect::Near { at: 0x1000 }));
        // One int3.
        let int3 = four_then(&[0xcc, 0x55, 0x48]);
        assert_eq!(
            plan("inc", &site(4, &[0; 16], &int3)),
            Ok(Redirect::Near { at: 0x1000 })
        );
        // No padding at all: refused with the reason and the fix.
        let none = four_then(&[0x55, 0x48, 0x89, 0xe5]);
        let err = plan("inc", &site(4, &[0; 16], &none)).unwrap_err();
        assert!(err.contains("inc is 4 bytes") && err.contains("5-byte"), "{err}");
        assert!(err.contains("-fpatchable-function-entry=8,6"), "{err}");
        // At the end of a mapping (nothing read after it): refused too.
        assert!(plan("inc", &site(4, &[0; 16], &FOUR)).is_err());
    }

    #[test]
    fn zero_padding_up_to_the_alignment_boundary() {
        // At 0x1000 the function ends at 0x1004: zeros to 0x1010 are filler.
        let zeros = four_then(&[0; 12]);
        assert_eq!(
            plan("inc", &site(4, &[0; 16], &zeros)),
            Ok(Redirect::Jump { at: 0x1000 })
        );
        // Ending at 0x100f, one zero is before the boundary: enough for
        // the near jump, not for the 6-byte one.
        let late = Site {
            entry: 0x100b,
            ..site(4, &[0; 16], &zeros)
        };
        assert_eq!(plan("inc", &late), Ok(Redirect::Near { at: 0x100b }));
        // xor eax,eax; ret at 0x100d: ends at 0x1010 exactly, so the zeros
        // after it are not its padding: refused.
        let three = [0x31, 0xc0, 0xc3, 0, 0, 0, 0, 0, 0, 0];
        let boundary = Site {
            entry: 0x100d,
            ..site(3, &[0; 16], &three)
        };
        assert!(plan("zero", &boundary).unwrap_err().contains("no padding"));
        // ... but at 0x100b the two zeros up to 0x1010 are.
        let inside = Site {
            entry: 0x100b,
            ..site(3, &[0; 16], &three)
        };
        assert_eq!(plan("zero", &inside), Ok(Redirect::Near { at: 0x100b }));
        // Two zeros, then code: not enough for a 2-byte function.
        let two = [0xf3, 0xc3, 0, 0, 0x55];
        let err = plan("ret2", &site(2, &[0; 16], &two)).unwrap_err();
        assert!(err.contains("only 2 byte(s) of padding"), "{err}");
    }

    #[test]
    fn padding_a_symbol_starts_in_is_not_borrowed() {
        // Three NOPs follow, but a symbol (say, the next function with
        // -fpatchable-function-entry=N,0, whose NOPs are its own code)
        // starts at the first of them.
        let nops = four_then(&[0x90, 0x90, 0x90, 0x55]);
        let claimed = Site {
            unclaimed: 0,
            ..site(4, &[0; 16], &nops)
        };
        assert!(plan("inc", &claimed).unwrap_err().contains("no padding"));
        // A symbol at the second NOP: one byte is still free, enough for
        // the near jump but not the 6-byte one.
        let one_free = Site {
            unclaimed: 1,
            ..site(4, &[0; 16], &nops)
        };
        assert_eq!(plan("inc", &one_free), Ok(Redirect::Near { at: 0x1000 }));
        // The same for zeros.
        let zeros = four_then(&[0; 12]);
        let claimed = Site {
            unclaimed: 0,
            ..site(4, &[0; 16], &zeros)
        };
        assert!(plan("inc", &claimed).is_err());
    }

    #[test]
    fn branch_targets_and_return_addresses_in_the_span() {
        // A branch to +4, inside both jumps: refused, naming the offset.
        // 0: xor eax,eax 2: inc eax 4: cmp eax,10 7: jne 4  9: ret
        let to4 = [0x31, 0xc0, 0xff, 0xc0, 0x83, 0xf8, 0x0a, 0x75, 0xfb, 0xc3, 0xcc, 0xcc];
        let err = plan("f", &site(10, &[0; 16], &to4)).unwrap_err();
        assert!(err.contains("+0x4") && err.contains("branch"), "{err}");
        // A branch to +5: inside the 6-byte jump, just past the near one.
        // 0: mov eax,edi 2: xor ecx,ecx 4: nop 5: inc ecx 7: cmp ecx,eax 9: jl 5 b: ret
        let to5 = [
            0x89, 0xf8, 0x31, 0xc9, 0x90, 0xff, 0xc1, 0x39, 0xc1, 0x7c, 0xfa, 0xc3, 0xcc,
        ];
        assert_eq!(plan("f", &site(12, &[0; 16], &to5)), Ok(Redirect::Near { at: 0x1000 }));
        // call rel32 first: a thread in the callee returns to +5, inside the
        // 6-byte jump; the near jump ends there.
        let call = [0xe8, 0x10, 0, 0, 0, 0x48, 0x83, 0xc4, 0x08, 0xc3];
        assert_eq!(plan("f", &site(10, &[0; 16], &call)), Ok(Redirect::Near { at: 0x1000 }));
        // call *rax first returns to +2: refused.
        let indirect = [0xff, 0xd0, 0x48, 0x83, 0xc4, 0x08, 0xc3];
        let err = plan("f", &site(7, &[0; 16], &indirect)).unwrap_err();
        assert!(err.contains("a call returns to +0x2"), "{err}");
    }

    #[test]
    fn endbr64_stays_and_the_near_jump_follows_it() {
        // endbr64; lea eax,[rdi+rdi*2+1]; ret, then the next function.
        let cet = [0xf3, 0x0f, 0x1e, 0xfa, 0x8d, 0x44, 0x7f, 0x01, 0xc3, 0xf3, 0x0f];
        let tight = Site {
            unclaimed: 0,
            ..site(9, &[0xcc; 16], &cet)
        };
        assert_eq!(plan("tri", &tight), Ok(Redirect::Near { at: 0x1004 }));
        // endbr64; xor eax,eax; ret: 7 bytes, 9 needed.
        let small = [0xf3, 0x0f, 0x1e, 0xfa, 0x31, 0xc0, 0xc3, 0x55];
        let err = plan("zero", &site(7, &[0xcc; 16], &small)).unwrap_err();
        assert!(err.contains("9-byte") && err.contains("endbr64"), "{err}");
    }

    /// `lea eax,[rdi+rdi]; ret` as the last function of `.text` (the
    /// next bytes `_fini`'s), after the previous function's 6-byte NOP.
    #[test]
    fn a_short_function_after_filler_hops_back_into_it() {
        let lea = [0x8d, 0x04, 0x3f, 0xc3, 0xf3, 0x0f, 0x1e, 0xfa];
        let mut before = [0xccu8; 16];
        before[10..].copy_from_slice(&[0x66, 0x0f, 0x1f, 0x44, 0, 0]);
        let last = Site {
            unclaimed: 0,
            unclaimed_before: 6,
            ..site(4, &before, &lea)
        };
        let hop = plan("double", &last).unwrap();
        assert_eq!(
            hop,
            Redirect::Hop {
                pad: 0xffa,
                entry: 0x1000,
                at: 0x1000
            }
        );
        assert_eq!(hop.span(), (0xffa, 8));
        // jmp *slot(%rip) at 0xffa (slot 0x2000 - 0x1000), then jmp -8.
        let bytes = hop.bytes(0x2000, None).unwrap();
        assert_eq!(bytes, [0xff, 0x25, 0x00, 0x10, 0, 0, 0xeb, 0xf8]);
        assert!(hop.splits(0x1001) && !hop.splits(0x1000) && !hop.splits(0x1002) && hop.splits(0xffb));
        // Fewer than 6 free bytes, or some of them code (a symbol covers
        // them, or they do not decode as NOPs): refused as before.
        for (free, bytes) in [(5u64, before), (6, [0x55u8; 16])] {
            let tight = Site {
                unclaimed: 0,
                unclaimed_before: free,
                ..site(4, &bytes, &lea)
            };
            assert!(plan("double", &tight).unwrap_err().contains("no padding"));
        }
        // A branch back to +1 (inside the short jump): refused.
        let looping = [0x90, 0xeb, 0xfe, 0xc3];
        let target_at_one = Site {
            unclaimed: 0,
            unclaimed_before: 6,
            ..site(4, &before, &looping)
        };
        assert!(plan("spin", &target_at_one).is_err());
        // endbr64 kept, the short jump after it.
        let cet = [0xf3, 0x0f, 0x1e, 0xfa, 0x31, 0xc0, 0xc3, 0x55];
        let hop = plan(
            "zero",
            &Site {
                unclaimed: 0,
                unclaimed_before: 6,
                ..site(7, &before, &cet)
            },
        )
        .unwrap();
        assert_eq!(
            hop,
            Redirect::Hop {
                pad: 0xffa,
                entry: 0x1000,
                at: 0x1004
            }
        );
        let bytes = hop.bytes(0x2000, None).unwrap();
        assert_eq!(&bytes[6..], [0xf3, 0x0f, 0x1e, 0xfa, 0xeb, 0xf4]);
    }

    #[test]
    fn below_five_bytes_is_refused() {
        for (size, code) in [(1u64, &[0xc3u8, 0x55][..]), (3, &[0x31, 0xc0, 0xc3, 0x55][..])] {
            let err = plan("tiny", &site(size, &[0; 16], code)).unwrap_err();
            assert!(err.contains(&format!("tiny is {size} bytes")), "{err}");
            assert!(err.contains("-fpatchable-function-entry=8,6"), "{err}");
        }
    }
}
