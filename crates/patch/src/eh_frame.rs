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
