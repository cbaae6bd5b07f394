//! Patch bundles: one self-contained file carrying a patch to hosts that
//! run the same build but have no compiler or sources.
//!
//! A bundle is made on a build host (`relive bundle`) from the objects a
//! patch needs (the new compile and, usually, the base it is diffed
//! against) and the GNU build-id of the binary it is for. It is applied
//! elsewhere (`relive apply`), where a process whose program has another
//! build-id is refused: the objects were linked against that build's
//! symbols and code, and nothing else can be trusted to match.
//!
//! Layout: the 12-byte magic `RELIVEPATCH\n`, then one gzip stream (its
//! CRC-32 guards every byte after the magic) holding a JSON manifest
//! line and the objects' bytes one after the other, in manifest order.
//! A bundle is read as hostile input: every size is checked against the
//! bytes present, the expanded size is bounded, and each object must
//! parse as an object before anything uses it.

use std::io::{Read, Write};

use serde::{Deserialize, Serialize};

/// The first bytes of every bundle.
pub const MAGIC: &[u8; 12] = b"RELIVEPATCH\n";

/// The manifest format this relive writes and reads.
pub const FORMAT: u32 = 1;

/// A bundle expands to at most this many bytes (objects of a large unit
/// with debug information are tens of MiB).
const MAX_EXPANDED: u64 = 1 << 30;

/// What a bundle says about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`FORMAT`] when written.
    pub format: u32,
    /// The relive version that made it.
    pub made_by: String,
    /// When it was made, seconds since the Unix epoch.
    pub created: u64,
    /// The GNU build-id (hex) of the program it is for.
    pub build_id: String,
    /// That program's file name on the build host (for messages).
    pub program: String,
    /// The functions the patch changes (the diff of `base` to `new`, as
    /// relive computed it when the bundle was made).
    pub functions: Vec<String>,
    /// Only these functions are patched (`--only`), when not empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub only: Vec<String>,
    /// The objects: `new` first, then `base` if there is one.
    pub objects: Vec<Entry>,
}

/// One object in a bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// `new` or `base`.
    pub role: String,
    /// Its file name on the build host (for messages).
    pub name: String,
    pub size: u64,
}

/// A bundle read back: its manifest and each object's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bundle {
    pub manifest: Manifest,
    pub new: Vec<u8>,
    pub base: Option<Vec<u8>>,
}

/// Why bytes are not a bundle relive can use.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("not a relive patch bundle (it does not start with {:?})", String::from_utf8_lossy(MAGIC).trim_end())]
    NotBundle,
    #[error("damaged: {0}")]
    Damaged(String),
    #[error("made by a newer relive (bundle format {found}; this relive reads format {FORMAT}): use that relive to apply it, or make the bundle with this one")]
    Newer { found: u32 },
}

impl Bundle {
    /// The bundle's bytes.
    pub fn to_bytes(&self) -> std::io::Result<Vec<u8>> {
        let mut out = MAGIC.to_vec();
        let mut gz = flate2::write::GzEncoder::new(&mut out, flate2::Compression::default());
        serde_json::to_writer(&mut gz, &self.manifest)?;
        gz.write_all(b"\n")?;
        gz.write_all(&self.new)?;
        if let Some(base) = &self.base {
            gz.write_all(base)?;
        }
        gz.finish()?;
        Ok(out)
    }

    /// Reads a bundle from `bytes`.
    pub fn from_bytes(bytes: &[u8]) -> Result<Bundle, BundleError> {
        let body = bytes.strip_prefix(&MAGIC[..]).ok_or(BundleError::NotBundle)?;
        let mut expanded = Vec::new();
        let mut decoder = flate2::bufread::GzDecoder::new(body).take(MAX_EXPANDED + 1);
        decoder
            .read_to_end(&mut expanded)
            .map_err(|e| BundleError::Damaged(format!("its compressed contents cannot be read ({e})")))?;
        // One gzip stream and nothing after it: bytes appended to a
        // bundle are damage too.
        let after = decoder.into_inner().into_inner().len();
        if after > 0 && expanded.len() as u64 <= MAX_EXPANDED {
            return Err(BundleError::Damaged(format!(
                "{after} bytes follow its compressed contents"
            )));
        }
        if expanded.len() as u64 > MAX_EXPANDED {
            return Err(BundleError::Damaged(format!(
                "it expands to more than {} MiB",
                MAX_EXPANDED >> 20
            )));
        }
        let line_end = expanded
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| BundleError::Damaged("it has no manifest line".into()))?;
        // The format is read first, alone: a newer manifest may not parse
        // as this relive's.
        #[derive(Deserialize)]
        struct Version {
            format: u32,
        }
        let version: Version = serde_json::from_slice(&expanded[..line_end])
            .map_err(|e| BundleError::Damaged(format!("its manifest is not JSON ({e})")))?;
        if version.format > FORMAT {
            return Err(BundleError::Newer { found: version.format });
        }
        let manifest: Manifest = serde_json::from_slice(&expanded[..line_end])
            .map_err(|e| BundleError::Damaged(format!("its manifest cannot be read ({e})")))?;
        let roles: Vec<&str> = manifest.objects.iter().map(|e| e.role.as_str()).collect();
        if roles != ["new"] && roles != ["new", "base"] {
            return Err(BundleError::Damaged(format!(
                "its manifest lists objects {roles:?} (a new object, and perhaps a base, expected)"
            )));
        }
        if manifest.build_id.is_empty() || !manifest.build_id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(BundleError::Damaged(format!(
                "its build-id {:?} is not hex",
                manifest.build_id
            )));
        }
        let mut rest = &expanded[line_end + 1..];
        let mut objects = Vec::new();
        for entry in &manifest.objects {
            let size = usize::try_from(entry.size)
                .ok()
                .filter(|&s| s <= rest.len())
                .ok_or_else(|| {
                    BundleError::Damaged(format!(
                        "its manifest says {} is {} bytes, but only {} remain",
                        entry.name,
                        entry.size,
                        rest.len()
                    ))
                })?;
            objects.push(rest[..size].to_vec());
            rest = &rest[size..];
        }
        if !rest.is_empty() {
            return Err(BundleError::Damaged(format!(
                "{} bytes follow the objects its manifest lists",
                rest.len()
            )));
        }
        let mut objects = objects.into_iter();
        let new = objects.next().unwrap_or_default();
        Ok(Bundle {
            manifest,
            new,
            base: objects.next(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Bundle {
        Bundle {
            manifest: Manifest {
                format: FORMAT,
                made_by: "relive test".into(),
                created: 1,
                build_id: "00ff".into(),
                program: "app".into(),
                functions: vec!["compute".into()],
                only: Vec::new(),
                objects: vec![
                    Entry {
                        role: "new".into(),
                        name: "app.o".into(),
                        size: 3,
                    },
                    Entry {
                        role: "base".into(),
                        name: "old.o".into(),
                        size: 2,
                    },
                ],
            },
            new: vec![1, 2, 3],
            base: Some(vec![4, 5]),
        }
    }

    #[test]
    fn a_bundle_reads_back_as_written() {
        let bundle = sample();
        assert_eq!(Bundle::from_bytes(&bundle.to_bytes().unwrap()).unwrap(), bundle);
    }

    #[test]
    fn damage_is_named_never_a_panic() {
        let bytes = sample().to_bytes().unwrap();
        assert!(matches!(Bundle::from_bytes(b"\x7fELF"), Err(BundleError::NotBundle)));
        for cut in [MAGIC.len(), MAGIC.len() + 10, bytes.len() - 1] {
            assert!(matches!(
                Bundle::from_bytes(&bytes[..cut]),
                Err(BundleError::Damaged(_))
            ));
        }
        // One flipped bit anywhere after the gzip header: refused (its
        // CRC fails), or, where the bit is deflate's padding after the
        // last block, the very same bundle.
        for at in MAGIC.len() + 10..bytes.len() {
            for bit in 0..8 {
                let mut bad = bytes.clone();
                bad[at] ^= 1 << bit;
                match Bundle::from_bytes(&bad) {
                    Err(_) => {}
                    Ok(read) => assert_eq!(read, sample(), "bit {bit} of byte {at} flipped"),
                }
            }
        }
        // Anything appended.
        let mut appended = bytes.clone();
        appended.extend_from_slice(b"garbage\n");
        assert!(matches!(
            Bundle::from_bytes(&appended),
            Err(BundleError::Damaged(m)) if m.contains("8 bytes follow")
        ));
        // Sizes that do not add up.
        let mut long = sample();
        long.manifest.objects[0].size = 100;
        assert!(matches!(
            Bundle::from_bytes(&long.to_bytes().unwrap()),
            Err(BundleError::Damaged(m)) if m.contains("only")
        ));
        let mut newer = sample();
        newer.manifest.format = FORMAT + 1;
        assert!(matches!(
            Bundle::from_bytes(&newer.to_bytes().unwrap()),
            Err(BundleError::Newer { .. })
        ));
    }
}
