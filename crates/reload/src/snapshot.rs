//! The sources' text when relive started.
//!
//! relive compiles each source's baseline (what the program runs) while the
//! user may already be editing: a compile that reads an edit saved during
//! start-up would take the edit for what runs, and the edit would never be
//! patched (under a compile command not known to be the build's, it cannot
//! even be told from a missing option). So the text of every source is read
//! at once when relive starts, and a source whose text changed by the time
//! its baseline compiled gets its baseline from the text read then; the
//! save, waiting in the watch, is reloaded against it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The text of each source when [`Snapshot::take`] ran.
#[derive(Debug, Default, Clone)]
pub struct Snapshot {
    texts: HashMap<PathBuf, Vec<u8>>,
}

impl Snapshot {
    /// Reads every source now; one that cannot be read is left out (its
    /// baseline is compiled from the file, as without a snapshot).
    pub fn take(sources: &[PathBuf]) -> Snapshot {
        let texts = sources
            .iter()
            .filter_map(|s| Some((s.clone(), std::fs::read(s).ok()?)))
            .collect();
        Snapshot { texts }
    }

    /// `source`'s text when the snapshot was taken, if it says something
    /// else now (it was saved since).
    pub fn changed_since(&self, source: &Path) -> Option<&[u8]> {
        let then = self.texts.get(source)?;
        match std::fs::read(source) {
            Ok(now) if &now == then => None,
            _ => Some(then),
        }
    }

    /// `source`'s text when the snapshot was taken.
    pub fn text(&self, source: &Path) -> Option<&[u8]> {
        self.texts.get(source).map(Vec::as_slice)
    }

    /// How many sources it holds.
    pub fn len(&self) -> usize {
        self.texts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.texts.is_empty()
    }
}
