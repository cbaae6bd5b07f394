//! The jumps relive writes into code: at a patched function's entry, in
//! stubs, and at the end of a copied span.

/// `jmp *disp32(%rip)`: 6 bytes.
pub const RIP_LEN: u64 = 6;
/// `jmp rel32`: 5 bytes.
pub const REL32_LEN: u64 = 5;
/// `jmp *0(%rip)` followed by the 8-byte target: 14 bytes that reach any
/// address.
pub const ABSOLUTE_LEN: u64 = 14;

/// `jmp *disp32(%rip)` at `at` through the 8-byte cell at `cell`; `None`
/// when the cell is beyond ±2 GiB.
pub fn through(at: u64, cell: u64) -> Option<[u8; RIP_LEN as usize]> {
    let d = displacement(at + RIP_LEN, cell)?.to_le_bytes();
    Some([0xff, 0x25, d[0], d[1], d[2], d[3]])
}

/// `jmp rel32` at `at` to `to`; `None` when `to` is beyond ±2 GiB.
pub fn near(at: u64, to: u64) -> Option<[u8; REL32_LEN as usize]> {
    let d = displacement(at + REL32_LEN, to)?.to_le_bytes();
    Some([0xe9, d[0], d[1], d[2], d[3]])
}

/// `jmp *0(%rip); .quad to`: reaches `to` from anywhere.
pub fn absolute(to: u64) -> [u8; ABSOLUTE_LEN as usize] {
    let mut out = [0u8; ABSOLUTE_LEN as usize];
    out[..6].copy_from_slice(&[0xff, 0x25, 0, 0, 0, 0]);
    out[6..].copy_from_slice(&to.to_le_bytes());
    out
}

/// `to - next` as a 32-bit displacement, if it fits.
fn displacement(next: u64, to: u64) -> Option<i32> {
    i32::try_from(i128::from(to) - i128::from(next)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings() {
        assert_eq!(through(0x1000, 0x2000).unwrap(), [0xff, 0x25, 0xfa, 0x0f, 0, 0]);
        assert_eq!(near(0x1000, 0x3000).unwrap(), [0xe9, 0xfb, 0x1f, 0, 0]);
        assert_eq!(near(0x1000, 0x0ff0).unwrap(), [0xe9, 0xeb, 0xff, 0xff, 0xff]);
        assert!(near(0, 0x1_0000_0000).is_none());
        assert!(through(0x1_0000_0000, 0).is_none());
        let a = absolute(0x1122_3344_5566_7788);
        assert_eq!(a[..6], [0xff, 0x25, 0, 0, 0, 0]);
        assert_eq!(a[6..], 0x1122_3344_5566_7788u64.to_le_bytes());
    }
}
