//! Decoding the functions of a patch's objects once each: an edit leaves
//! most of a file's functions as they were, so the base and the new object
//! (and each save of a file and the object that runs) have most of their
//! functions' bytes alike, and decoding them (iced-x86) was the largest
//! part of reading a large unit.

use std::sync::Arc;

use crate::code::{self, Decoded};
use crate::objfile::{ObjectFile, Undecoded};

/// What puts a decode's bytes of code on
/// [`crate::side_by_side::worth_a_thread`]'s scale, which is in bytes of
/// `-g` objects read: decoding costs about 55 instructions a byte of code
/// (SQLite's), reading an object under 2 a byte of it.
const DECODE_WEIGHT: u64 = 32;

/// The decoding of every function of some objects, each distinct byte
/// string decoded once.
pub(crate) struct Distinct {
    /// Per object, per symbol: which of `decoded` is its code's.
    which: Vec<Vec<Option<usize>>>,
    decoded: Vec<Arc<Decoded>>,
}

impl Distinct {
    pub(crate) fn of(&self, object: usize, symbol: usize) -> Option<&Arc<Decoded>> {
        let k = (*self.which.get(object)?.get(symbol)?)?;
        self.decoded.get(k)
    }
}

/// Decodes the functions of `objects`, each distinct byte string once
/// (an edit leaves most of a file's functions as they were), taking those
/// `like` has decoded already from it, and sharing the rest between two
/// threads when there is enough.
pub(crate) fn decode_distinct(objects: &[&Undecoded], like: Option<&ObjectFile>) -> Distinct {
    let known: foldhash::HashMap<&[u8], &Arc<Decoded>> = like
        .iter()
        .flat_map(|o| &o.symbols)
        .filter_map(|s| Some((s.bytes.as_deref()?, s.decoded.as_ref()?)))
        .collect();
    // Sized for every function at once: growing a map of 20,000 by
    // doubling rehashed it a dozen times into fresh pages.
    let functions: usize = objects.iter().map(|o| o.code().count()).sum();
    let mut ids: foldhash::HashMap<&[u8], usize> =
        foldhash::HashMap::with_capacity_and_hasher(functions, Default::default());
    let mut pieces: Vec<&[u8]> = Vec::with_capacity(functions);
    let which = objects
        .iter()
        .map(|o| {
            let mut of = vec![None; o.symbols.len()];
            for (i, bytes) in o.code() {
                let next = pieces.len();
                let id = *ids.entry(bytes).or_insert(next);
                if id == next {
                    pieces.push(bytes);
                }
                of[i] = Some(id);
            }
            of
        })
        .collect();
    let to_decode: Vec<usize> = (0..pieces.len()).filter(|&k| !known.contains_key(pieces[k])).collect();
    let bytes: usize = to_decode.iter().map(|&k| pieces[k].len()).sum();
    // Split where half the bytes are: decoding costs by the byte.
    let mut half = 0;
    let mut acc = 0;
    for (n, &k) in to_decode.iter().enumerate() {
        if acc * 2 >= bytes {
            break;
        }
        acc += pieces[k].len();
        half = n + 1;
    }
    let (first, second) = to_decode.split_at(half);
    let decode = |list: &[usize]| list.iter().map(|&k| (k, code::decode(pieces[k]))).collect::<Vec<_>>();
    let (a, b) = crate::side_by_side::both_if(
        crate::side_by_side::worth_a_thread(bytes as u64 * DECODE_WEIGHT),
        || decode(second),
        || decode(first),
    );
    let mut decoded: Vec<Option<Arc<Decoded>>> = pieces.iter().map(|p| known.get(p).map(|d| (*d).clone())).collect();
    for (k, d) in a.into_iter().chain(b) {
        decoded[k] = Some(Arc::new(d));
    }
    Distinct {
        which,
        decoded: decoded
            .into_iter()
            .map(|d| d.expect("every piece is decoded or known"))
            .collect(),
    }
}
