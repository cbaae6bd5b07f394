//! Shared by the SMF fuzz targets that go past the file check.

use relive_smf::format::module_hash;

/// `data` with its module hash (header offset 80) set to match its body,
/// so damaged tables get past the file check and into what comes after.
pub fn with_module_hash_fixed(data: &[u8]) -> Vec<u8> {
    let mut bytes = data.to_vec();
    if bytes.len() >= 96 {
        let hash = module_hash(&bytes[96..]);
        bytes[80..88].copy_from_slice(&hash.to_le_bytes());
    }
    bytes
}
