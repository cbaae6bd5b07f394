//! The entries of an object's `.eh_frame`: where each CIE and FDE lies,
//! so a patch can carry the unwind information of the functions it copies
//! (an exception thrown in new code, `backtrace()` and thread cancellation
//! all walk the stack through it).
//!
//! Only the framing is read here (lengths and CIE pointers); what the
//! entries say is the unwinder's business, and their addresses are
//! relocations the linker applies. Every byte is hostile: an entry that
//! does not fit, points at no CIE or uses the 64-bit form is an error.

/// One entry of `.eh_frame`: bytes `start..end` of the section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub start: usize,
    pub end: usize,
    /// For an FDE, where its CIE starts; `None` for a CIE.
    pub cie: Option<usize>,
}

impl Entry {
    /// The FDE's initial location (the address of the code it covers),
    /// the field its relocation fills: after the length and CIE pointer.
    pub fn pc_begin(&self) -> usize {
        self.start + 8
    }
}

/// The entries of `bytes` (a `.eh_frame` section), up to the first
/// zero-length terminator or the end.
pub fn entries(bytes: &[u8]) -> Result<Vec<Entry>, String> {
    let word = |at: usize| {
        bytes
            .get(at..at + 4)
            .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
    };
    let mut out: Vec<Entry> = Vec::new();
    let mut at = 0usize;
    while at < bytes.len() {
        let Some(length) = word(at) else {
            return Err(format!("a truncated entry length at {at:#x}"));
        };
        if length == 0 {
            break;
        }
        if length == u32::MAX {
            return Err(format!(
                "a 64-bit entry at {at:#x}, which compilers do not emit for objects"
            ));
        }
        let end = at
            .checked_add(4 + length as usize)
            .filter(|&end| end <= bytes.len() && length >= 4)
            .ok_or_else(|| format!("the entry at {at:#x} claims {length} bytes past the section's end"))?;
        let id = word(at + 4).expect("inside the entry");
        let cie = match id {
            0 => None,
            back => {
                let cie = (at + 4).checked_sub(back as usize);
                match cie.filter(|c| out.iter().any(|e| e.start == *c && e.cie.is_none())) {
                    Some(c) if end >= at + 12 => Some(c),
                    Some(_) => return Err(format!("the FDE at {at:#x} is too short for its initial location")),
                    None => return Err(format!("the FDE at {at:#x} points at no CIE")),
                }
            }
        };
        out.push(Entry { start: at, end, cie });
        at = end;
    }
    Ok(out)
}

/// The bytes of `entry` from `section`, with its CIE pointer (an FDE's
/// distance back to its CIE) set for the FDE at `new_start` and its CIE at
/// `new_cie` in the rebuilt section.
pub fn moved(section: &[u8], entry: &Entry, new_start: usize, new_cie: Option<usize>) -> Vec<u8> {
    let mut bytes = section[entry.start..entry.end].to_vec();
    if let Some(cie) = new_cie {
        let back = (new_start + 4 - cie) as u32;
        bytes[4..8].copy_from_slice(&back.to_le_bytes());
    }
    bytes
}

/// A register-keeping thunk's frame (see [`crate::thunk`]): it starts
/// with `sub rsp, frame` (`sub_len` bytes) and ends with the same `add`
/// and a `ret`; in between the return address is `frame` bytes up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThunkFrame {
    /// Offset of the thunk in the patch's code part.
    pub offset: u64,
    pub len: u64,
    pub frame: u64,
    pub sub_len: u64,
}

/// Appends `v` as an unsigned LEB128 number (DWARF's variable-length
/// integers).
pub(crate) fn uleb(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// `DW_CFA_advance_loc*` by `delta` bytes.
fn advance(out: &mut Vec<u8>, delta: u64) {
    match delta {
        0..=0x3f => out.push(0x40 | delta as u8),
        0x40..=0xff => out.extend([0x02, delta as u8]),
        _ => {
            out.push(0x03);
            out.extend_from_slice(&(delta as u16).to_le_bytes());
        }
    }
}

/// The call frame instructions of a thunk: the CFA moves up by its frame
/// after the `sub`, and back before the `ret`.
fn thunk_instructions(t: &ThunkFrame) -> Vec<u8> {
    let mut out = Vec::new();
    advance(&mut out, t.sub_len);
    out.push(0x0e); // DW_CFA_def_cfa_offset
    uleb(&mut out, t.frame + 8);
    advance(&mut out, t.len.saturating_sub(1 + t.sub_len));
    out.push(0x0e);
    uleb(&mut out, 8);
    out
}

/// Ends an entry (`length` then `body`) padded with `DW_CFA_nop` to a
/// multiple of 8 bytes.
fn entry(out: &mut Vec<u8>, mut body: Vec<u8>) {
    while !(4 + body.len()).is_multiple_of(8) {
        body.push(0);
    }
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&body);
}

/// Code and data alignment factors, return address column, and the CFA
/// at entry (`rsp + 8`, the return address just above it), as compilers
/// give them for x86-64.
const CIE_TAIL: [u8; 8] = [1, 0x78, 16, 0x0c, 7, 8, 0x90, 1];

/// An `.eh_frame` for `thunks`: one CIE, an FDE each (initial location
/// PC-relative, 4 bytes: the offsets of those fields are returned, for the
/// linker to fill), and a terminator.
pub fn thunk_eh_frame(thunks: &[ThunkFrame]) -> (Vec<u8>, Vec<usize>) {
    let mut out = Vec::new();
    // Augmentation "zR": a size, then the FDE pointer encoding (pcrel sdata4).
    let mut cie = vec![0, 0, 0, 0, 1, b'z', b'R', 0];
    cie.extend_from_slice(&CIE_TAIL[..3]);
    cie.extend([1, 0x1b]);
    cie.extend_from_slice(&CIE_TAIL[3..]);
    entry(&mut out, cie);
    let mut fields = Vec::with_capacity(thunks.len());
    for t in thunks {
        let start = out.len();
        let mut fde = ((start + 4) as u32).to_le_bytes().to_vec();
        fields.push(start + 8);
        fde.extend_from_slice(&[0; 4]);
        fde.extend_from_slice(&(t.len as u32).to_le_bytes());
        fde.push(0); // no augmentation data
        fde.extend(thunk_instructions(t));
        entry(&mut out, fde);
    }
    out.extend_from_slice(&[0; 4]);
    (out, fields)
}

/// The same unwind information as a `.debug_frame` with absolute
/// addresses (the code part at `code`), for a debugger's symbol file.
pub fn thunk_debug_frame(thunks: &[ThunkFrame], code: u64) -> Vec<u8> {
    let mut out = Vec::new();
    if thunks.is_empty() {
        return out;
    }
    let mut cie = u32::MAX.to_le_bytes().to_vec();
    cie.extend([1, 0]); // version 1, no augmentation
    cie.extend_from_slice(&CIE_TAIL);
    entry(&mut out, cie);
    for t in thunks {
        let mut fde = 0u32.to_le_bytes().to_vec();
        fde.extend_from_slice(&(code + t.offset).to_le_bytes());
        fde.extend_from_slice(&t.len.to_le_bytes());
        fde.extend(thunk_instructions(t));
        entry(&mut out, fde);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: u32, body: usize) -> Vec<u8> {
        let mut e = ((4 + body) as u32).to_le_bytes().to_vec();
        e.extend_from_slice(&id.to_le_bytes());
        e.resize(8 + body, 0xab);
        e
    }

    #[test]
    fn cies_and_fdes_are_framed() {
        let mut s = entry(0, 12);
        s.extend(entry(24, 16)); // its id field (at 24) is 24 past the CIE
        s.extend([0, 0, 0, 0]);
        let e = entries(&s).unwrap();
        assert_eq!(
            e,
            [
                Entry {
                    start: 0,
                    end: 20,
                    cie: None
                },
                Entry {
                    start: 20,
                    end: 44,
                    cie: Some(0)
                }
            ]
        );
        let m = moved(&s, &e[1], 100, Some(40));
        assert_eq!(u32::from_le_bytes(m[4..8].try_into().unwrap()), 64);
    }

    #[test]
    fn thunk_tables_are_framed() {
        let t = ThunkFrame {
            offset: 0x40,
            len: 0x90,
            frame: 0x68,
            sub_len: 4,
        };
        let (table, fields) = thunk_eh_frame(&[t, ThunkFrame { offset: 0x100, ..t }]);
        let e = entries(&table).unwrap();
        assert_eq!(e.len(), 3);
        assert_eq!(e[1].cie, Some(0));
        assert_eq!(e[2].cie, Some(0));
        assert_eq!(fields, [e[1].pc_begin(), e[2].pc_begin()]);
        assert_eq!(&table[table.len() - 4..], [0; 4]);
        // advance 4; cfa offset 0x70; to the ret (0x90 - 1): advance 0x8b; cfa offset 8.
        assert_eq!(thunk_instructions(&t), [0x44, 0x0e, 0x70, 0x02, 0x8b, 0x0e, 8]);
    }

    #[test]
    fn hostile_framing_is_refused() {
        // Past the end.
        assert!(entries(&[0xff, 0, 0, 0, 0, 0, 0, 0]).is_err());
        // 64-bit.
        assert!(entries(&[0xff; 16]).is_err());
        // An FDE pointing at itself, or before the section.
        assert!(entries(&entry(4, 12)).is_err());
        assert!(entries(&entry(400, 12)).is_err());
        // Truncated length.
        assert!(entries(&[1, 0]).is_err());
        for cut in 0..20 {
            let _ = entries(&entry(0, 12)[..cut]);
        }
    }
}
