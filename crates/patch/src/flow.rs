//! Which instructions of one function can still run, from where its
//! running call is now: the part of `main` its thread has not left
//! behind. A call that `main` made once before its loop (GCC hoists the
//! call of a function it found `const` out of an endless loop and keeps
//! the result) never runs again: redirecting its callee changes nothing
//! the program will do, and relive must not call that "patched".
//!
//! The analysis gives up (`None`) wherever it cannot be sure: bytes that
//! do not decode, a start that is not an instruction, an indirect jump (a
//! `switch` table) or a transaction; callers then count every call site
//! as before. Calls are assumed to return.

use iced_x86::{Decoder, DecoderOptions, FlowControl, Instruction};

/// The instructions of the function whose code is `code` (at `start`)
/// that execution reaching any of `from` can run, as sorted `(address,
/// length)` pairs; `None` when that cannot be told.
pub fn reachable(code: &[u8], start: u64, from: &[u64]) -> Option<Vec<(u64, u64)>> {
    let mut decoder = Decoder::with_ip(64, code, start, DecoderOptions::NONE);
    let mut all: Vec<Instruction> = Vec::with_capacity(code.len() / 4);
    let mut instruction = Instruction::default();
    while decoder.can_decode() {
        decoder.decode_out(&mut instruction);
        if instruction.is_invalid() {
            return None;
        }
        all.push(instruction);
    }
    let index = |addr: u64| all.binary_search_by_key(&addr, |i| i.ip()).ok();
    let mut seen = vec![false; all.len()];
    let mut work = Vec::new();
    let end = start + code.len() as u64;
    for &f in from {
        // Its end (the return address of a call that ends the body, which
        // never returns): nothing of it runs from there.
        if f == end {
            continue;
        }
        work.push(index(f)?);
    }
    while let Some(k) = work.pop() {
        if std::mem::replace(&mut seen[k], true) {
            continue;
        }
        let i = &all[k];
        let next = (k + 1 < all.len()).then_some(k + 1);
        // A branch out of the function (a tail call) does not come back.
        let target = || {
            let t = i.near_branch_target();
            (start <= t && t < end).then(|| index(t)).flatten()
        };
        let successors: [Option<usize>; 2] = match i.flow_control() {
            FlowControl::Next | FlowControl::Call | FlowControl::IndirectCall | FlowControl::Interrupt => [next, None],
            FlowControl::UnconditionalBranch => [target(), None],
            FlowControl::ConditionalBranch => [target(), next],
            FlowControl::Return | FlowControl::Exception => [None, None],
            FlowControl::IndirectBranch | FlowControl::XbeginXabortXend => return None,
        };
        // A direct branch into the function whose target is not an
        // instruction boundary: the linear decode is wrong there.
        if matches!(
            i.flow_control(),
            FlowControl::UnconditionalBranch | FlowControl::ConditionalBranch
        ) && (start..end).contains(&i.near_branch_target())
            && successors[0].is_none()
        {
            return None;
        }
        work.extend(successors.into_iter().flatten());
    }
    Some(
        all.iter()
            .zip(&seen)
            .filter(|(_, &s)| s)
            .map(|(i, _)| (i.ip(), i.len() as u64))
            .collect(),
    )
}

/// Whether `addr` lies in one of `ranges` (sorted `(address, length)`).
pub fn covers(ranges: &[(u64, u64)], addr: u64) -> bool {
    let k = ranges.partition_point(|&(a, _)| a <= addr);
    k > 0 && {
        let (a, len) = ranges[k - 1];
        addr < a + len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `main` as GCC makes it when `compute` is `const`: one call before
    /// an endless loop that only prints the kept result.
    ///
    /// ```text
    /// 0x1000: mov edi, 21          bf 15 00 00 00
    /// 0x1005: call compute         e8 f6 0f 00 00   (0x2000)
    /// 0x100a: mov ebx, eax         89 c3
    /// 0x100c: mov esi, ebx         89 de            <- the loop
    /// 0x100e: call printf          e8 ed 1f 00 00   (0x3000)
    /// 0x1013: jmp 0x100c           eb f7
    /// ```
    const HOISTED: &[u8] = &[
        0xbf, 0x15, 0, 0, 0, 0xe8, 0xf6, 0x0f, 0, 0, 0x89, 0xc3, 0x89, 0xde, 0xe8, 0xed, 0x1f, 0, 0, 0xeb, 0xf7,
    ];

    #[test]
    fn a_call_before_the_loop_cannot_run_again_from_inside_it() {
        // The thread is in printf, called from the loop.
        let live = reachable(HOISTED, 0x1000, &[0x1013]).unwrap();
        assert!(covers(&live, 0x100e) && covers(&live, 0x1013) && covers(&live, 0x100c));
        assert!(!covers(&live, 0x1005) && !covers(&live, 0x1006));
        // From the start, everything runs.
        let all = reachable(HOISTED, 0x1000, &[0x1000]).unwrap();
        assert!(covers(&all, 0x1006));
    }

    #[test]
    fn what_cannot_be_told_is_not_guessed() {
        // Not an instruction boundary.
        assert_eq!(reachable(HOISTED, 0x1000, &[0x1001]), None);
        // An indirect jump (a switch table): jmp rax.
        assert_eq!(reachable(&[0xff, 0xe0], 0x1000, &[0x1000]), None);
        // Bytes that do not decode.
        assert_eq!(reachable(&[0x0f, 0x0b, 0x06], 0x1000, &[0x1000]), None);
    }
}
