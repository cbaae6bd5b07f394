//! The 8-byte APE magics.

/// One of the ways an APE file can start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApeMagic {
    /// `MZqFpD='`: the canonical magic; the file is also a valid PE (Windows).
    Canonical,
    /// `jartsr='`: UNIX only, no PE.
    UnixOnly,
    /// `jartsr=` followed by a newline, as apelink can also write it.
    UnixOnlyNewline,
    /// `APEDBG='`: a debug build that loaders must ignore; `/bin/sh` runs it.
    Debug,
}

impl ApeMagic {
    /// The exact eight bytes of each magic.
    pub const fn bytes(self) -> &'static [u8; 8] {
        match self {
            ApeMagic::Canonical => b"MZqFpD='",
            ApeMagic::UnixOnly => b"jartsr='",
            ApeMagic::UnixOnlyNewline => b"jartsr=\n",
            ApeMagic::Debug => b"APEDBG='",
        }
    }

    /// Recognises the magic at the start of `data`.
    pub fn detect(data: &[u8]) -> Option<ApeMagic> {
        let head = data.get(..8)?;
        [
            ApeMagic::Canonical,
            ApeMagic::UnixOnly,
            ApeMagic::UnixOnlyNewline,
            ApeMagic::Debug,
        ]
        .into_iter()
        .find(|m| m.bytes() == head)
    }

    /// The magic as text, for reports (all magics are ASCII).
    pub fn as_str(self) -> &'static str {
        match self {
            ApeMagic::Canonical => "MZqFpD='",
            ApeMagic::UnixOnly => "jartsr='",
            ApeMagic::UnixOnlyNewline => "jartsr=\n",
            ApeMagic::Debug => "APEDBG='",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_each_magic_and_nothing_else() {
        for m in [
            ApeMagic::Canonical,
            ApeMagic::UnixOnly,
            ApeMagic::UnixOnlyNewline,
            ApeMagic::Debug,
        ] {
            let mut file = m.bytes().to_vec();
            file.extend_from_slice(b"\n<<'x'");
            assert_eq!(ApeMagic::detect(&file), Some(m));
            assert_eq!(m.as_str().as_bytes(), m.bytes());
        }
        assert_eq!(ApeMagic::detect(b"MZqFpD="), None);
        assert_eq!(ApeMagic::detect(b"\x7fELF\x02\x01\x01\x00"), None);
        assert_eq!(ApeMagic::detect(b"MZ\x90\x00\x03\x00\x00\x00"), None);
    }
}
