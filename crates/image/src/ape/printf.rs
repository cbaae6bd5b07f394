//! Decoding the `printf '...'` statements that carry an APE's ELF headers.
//!
//! The shell script of an APE writes each architecture's 64-byte ELF header
//! with `printf '\177ELF\2\1\1...'`. The APE loader (and `--assimilate`)
//! decodes the same text, so this decoder follows the loader exactly:
//! a backslash and 1–3 octal digits are one byte, with values above 255
//! wrapping to their low 8 bits (apelink emits `\510` for 0x48 on purpose);
//! every other byte is itself.

use super::SCRIPT_WINDOW;
use crate::read::find_all;

/// The statement prefix whose `p` is the header's reported offset.
const PRINTF: &[u8] = b"printf '";

/// An ELF header is 64 bytes; a shorter decoded string cannot be one.
pub const MIN_HEADER_LEN: usize = 64;

/// Upper bound on how much one statement may decode to. Real headers are
/// exactly 64 bytes; the bound keeps a hostile file from making us decode
/// megabytes of text that can never be a header.
const MAX_DECODED_LEN: usize = 4096;

/// One decoded `printf` statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrintfStatement {
    /// File offset of the `p` of `printf`.
    pub offset: u64,
    /// The decoded bytes, up to (not including) the closing quote.
    pub bytes: Vec<u8>,
}

/// Decodes the body of a `printf '` statement that starts at `text[0]`
/// (just after the opening quote). Returns `None` when no closing quote is
/// found before the end of `text` or before [`MAX_DECODED_LEN`] bytes.
pub fn decode(text: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(MIN_HEADER_LEN);
    let mut i = 0;
    while i < text.len() {
        if out.len() > MAX_DECODED_LEN {
            return None;
        }
        let c = text[i];
        match c {
            b'\'' => return Some(out),
            b'\\' if text.get(i + 1).is_some_and(is_octal) => {
                let mut value: u8 = 0;
                let mut digits = 0;
                while digits < 3 {
                    match text.get(i + 1 + digits) {
                        Some(&d) if is_octal(&d) => {
                            // Wrapping on purpose: `\510` is 0x148, truncated to 0x48.
                            value = value.wrapping_mul(8).wrapping_add(d - b'0');
                            digits += 1;
                        }
                        _ => break,
                    }
                }
                out.push(value);
                i += 1 + digits;
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    None
}

fn is_octal(b: &u8) -> bool {
    (b'0'..=b'7').contains(b)
}

/// Finds and decodes every `printf '` statement that starts in the first
/// [`SCRIPT_WINDOW`] bytes of `data`. Statements are returned in file order;
/// whether each one is a valid ELF header is decided by the caller.
pub fn statements(data: &[u8]) -> Vec<PrintfStatement> {
    let window = &data[..data.len().min(SCRIPT_WINDOW + PRINTF.len())];
    find_all(window, PRINTF)
        .filter(|&pos| pos < SCRIPT_WINDOW)
        .filter_map(|pos| {
            let body = &data[pos + PRINTF.len()..];
            decode(body).map(|bytes| PrintfStatement {
                offset: pos as u64,
                bytes,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn octal_escapes_wrap_like_the_ape_loader() {
        assert_eq!(decode(br"\177ELF\2\1'"), Some(b"\x7fELF\x02\x01".to_vec()));
        // \510 = 0o510 = 0x148 -> 0x48.
        assert_eq!(decode(br"\510'"), Some(vec![0x48]));
        // At most three digits: \1234 is byte 0o123 then '4'.
        assert_eq!(decode(br"\1234'"), Some(vec![0o123, b'4']));
        // \0 and \000 are both NUL.
        assert_eq!(decode(br"\0\000'"), Some(vec![0, 0]));
        // A backslash not followed by an octal digit is literal.
        assert_eq!(decode(br"\n\8'"), Some(b"\\n\\8".to_vec()));
    }

    #[test]
    fn unterminated_statements_are_not_decoded() {
        assert_eq!(decode(br"\177ELF"), None);
        assert_eq!(decode(&vec![b'a'; MAX_DECODED_LEN * 2]), None);
    }

    #[test]
    fn finds_statements_only_in_the_script_window() {
        let mut file = b"MZqFpD='\nprintf 'ab' >&7\nprintf 'c\\101'".to_vec();
        let found = statements(&file);
        assert_eq!(found.len(), 2);
        assert_eq!((found[0].offset, found[0].bytes.as_slice()), (9, &b"ab"[..]));
        assert_eq!(found[1].bytes, b"cA");

        file.resize(SCRIPT_WINDOW + 10, b' ');
        file.extend_from_slice(b"printf 'late'");
        assert_eq!(statements(&file).len(), 2);
    }
}
