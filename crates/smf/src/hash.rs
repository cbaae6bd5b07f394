//! Hashing of symbol and module names for the loader's and registry's
//! in-memory tables (the file's FNV-1a name and module hashes are
//! [`crate::format`]'s).
//!
//! foldhash reads a short name as one or two words and folds them through
//! one wide multiply; FNV-1a takes a multiply per byte in one dependent
//! chain and leaves its top bits alike for names that differ only at the
//! end (`f1`, `f2`, ...), which are the bits a hashbrown table takes its
//! tags from. A fixed seed keeps tables the same from run to run; the
//! names come from modules the host chose to load, not from the network.

use std::hash::{BuildHasher, Hasher};

/// The builder of the tables' hashers.
pub type NameHasher = foldhash::fast::FixedState;

/// A `HashMap` keyed by names, hashed with [`NameHasher`].
pub type NameMap<K, V> = std::collections::HashMap<K, V, NameHasher>;

/// The table hash of `name`.
#[inline]
pub fn name_hash(name: &[u8]) -> u64 {
    let mut h = NameHasher::default().build_hasher();
    h.write(name);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_differing_in_their_last_byte_differ_in_the_top_bits() {
        // hashbrown's tags are the top 7 bits: names like f0..f199 must
        // not share them (raw FNV-1a gave 200 names few distinct tags).
        let tags: std::collections::BTreeSet<u64> =
            (0..200).map(|i| name_hash(format!("f{i}").as_bytes()) >> 57).collect();
        assert!(tags.len() > 64, "{} distinct tags", tags.len());
        assert_eq!(name_hash(b"strlen"), name_hash(b"strlen"));
        assert_ne!(name_hash(b"strlen"), name_hash(b"strlen\0"));
    }
}
