//! Instructions that remote system calls borrow from the target's own
//! code: a `syscall` (`0f 05`, anywhere, even inside another instruction,
//! since the CPU decodes from wherever RIP points), and the two gadgets of
//! the way back ([`super::return_frame`]). All three are looked for in one
//! pass over the target's code, with a SIMD substring search: the scan
//! used to cost more than the rest of a small patch.

use memchr::memmem;

use super::return_frame::Gadgets;

/// `syscall`.
pub const SYSCALL: [u8; 2] = [0x0f, 0x05];
/// `syscall; ret`.
const SYSCALL_RET: [u8; 3] = [0x0f, 0x05, 0xc3];
/// `pop rax; ret`.
const POP_RAX_RET: [u8; 2] = [0x58, 0xc3];
/// The longest pattern less one: consecutive pieces overlap by this much
/// so a pattern across two pieces is seen.
pub const OVERLAP: u64 = SYSCALL_RET.len() as u64 - 1;

/// What a search has found so far (addresses in the target).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Found {
    pub syscall: Option<u64>,
    syscall_ret: Option<u64>,
    pop_rax_ret: Option<u64>,
}

impl Found {
    /// Looks for what is still missing in `bytes`, which the target maps
    /// at `base`; for the way back's gadgets only when `gadgets` (they are
    /// taken from the program's files, never the vDSO: a signal that
    /// arrived while a borrowed thread ran a system call there was lost).
    pub fn search(&mut self, base: u64, bytes: &[u8], gadgets: bool) {
        let at = |pattern: &[u8]| memmem::find(bytes, pattern).map(|i| base + i as u64);
        if self.syscall.is_none() {
            self.syscall = at(&SYSCALL);
        }
        if !gadgets {
            return;
        }
        if self.syscall_ret.is_none() {
            self.syscall_ret = at(&SYSCALL_RET);
        }
        if self.pop_rax_ret.is_none() {
            self.pop_rax_ret = at(&POP_RAX_RET);
        }
    }

    /// What was found, when everything was.
    pub fn hints(&self) -> Option<crate::CodeHints> {
        Some(crate::CodeHints {
            syscall: self.syscall?,
            syscall_ret: self.syscall_ret?,
            pop_rax_ret: self.pop_rax_ret?,
        })
    }

    /// What an earlier search found ([`Found::hints`]), to be checked.
    pub fn from_hints(hints: crate::CodeHints) -> Found {
        Found {
            syscall: Some(hints.syscall),
            syscall_ret: Some(hints.syscall_ret),
            pop_rax_ret: Some(hints.pop_rax_ret),
        }
    }

    /// Whether nothing is missing.
    pub fn complete(&self) -> bool {
        self.hints().is_some()
    }

    /// Each instruction found, with the bytes it must still have.
    pub fn expected(&self) -> impl Iterator<Item = (u64, &'static [u8])> {
        [
            (self.syscall, &SYSCALL[..]),
            (self.syscall_ret, &SYSCALL_RET[..]),
            (self.pop_rax_ret, &POP_RAX_RET[..]),
        ]
        .into_iter()
        .filter_map(|(addr, pattern)| Some((addr?, pattern)))
    }

    /// Both gadgets of the way back, when both were found.
    pub fn gadgets(&self) -> Option<Gadgets> {
        Some(Gadgets {
            syscall_ret: self.syscall_ret?,
            pop_rax_ret: self.pop_rax_ret?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_each_first_occurrence_and_keeps_what_it_had() {
        let mut found = Found::default();
        found.search(0x500, &[0x0f, 0x05, 0xc3, 0x58, 0xc3], false);
        assert_eq!(found.syscall, Some(0x500));
        assert_eq!(found.gadgets(), None, "no gadget where they are not wanted");
        found = Found::default();
        found.search(0x1000, &[0x90, 0x0f, 0x05, 0x90, 0x0f, 0x05, 0xc3], true);
        assert_eq!(found.syscall, Some(0x1001));
        assert_eq!(found.gadgets(), None);
        assert!(!found.complete());
        found.search(0x2000, &[0x58, 0xc3, 0x0f, 0x05], true);
        assert_eq!(found.syscall, Some(0x1001), "a later piece does not replace a find");
        assert_eq!(
            found.gadgets(),
            Some(Gadgets {
                syscall_ret: 0x1004,
                pop_rax_ret: 0x2000
            })
        );
        assert!(found.complete());
    }
}
