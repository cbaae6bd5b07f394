//! Thousands of deterministic mutations of the real fixtures through every
//! parser: none may panic. Mutations aim mostly at the bytes the parsers
//! read (script window, headers, program headers, ZIP directory and local
//! headers), where damage reaches the code; the rest land anywhere.
//! A failure saves the input and prints its seed so it can be replayed.

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};

use relive_image::{exercise, Image};

/// xorshift64*: small, deterministic, good enough to spread mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Byte ranges the parsers read in a fixture.
fn hot_ranges(path: &std::path::Path) -> Vec<(usize, usize)> {
    let image = Image::open(path).unwrap();
    let l = image.layout();
    let len = image.data().len();
    let mut ranges = vec![(0, 8192.min(len))];
    for h in &l.elf {
        ranges.push((h.phoff as usize, (h.phoff + h.phnum * 56) as usize));
    }
    if let Some(m) = &l.macho {
        ranges.push((m.offset as usize, (m.offset + m.size) as usize));
    }
    if let Some(pe) = &l.pe {
        ranges.push((
            pe.offset as usize,
            pe.offset as usize + 24 + 0x80 + 40 * pe.sections.len(),
        ));
    }
    if let Ok(zip) = l.zip() {
        ranges.push((zip.cd_offset as usize, len));
        for e in &zip.entries {
            ranges.push((e.local_header_offset as usize, e.data_offset as usize + 64));
        }
    }
    ranges
        .into_iter()
        .map(|(a, b)| (a.min(len), b.min(len)))
        .filter(|(a, b)| a < b)
        .collect()
}

const INTERESTING_U32: [u32; 8] = [0, 1, 0x7f, 0xff, 0xffff, 0x7fff_ffff, 0x8000_0000, 0xffff_ffff];

fn mutate(rng: &mut Rng, data: &mut Vec<u8>, hot: &[(usize, usize)], donor: &[u8]) {
    let pick = |rng: &mut Rng, len: usize| -> usize {
        if rng.below(10) < 8 && !hot.is_empty() {
            // Hot ranges come from the unmutated file; an earlier
            // truncation may have cut them off.
            let (a, b) = hot[rng.below(hot.len())];
            (a + rng.below(b - a)) % len.max(1)
        } else {
            rng.below(len)
        }
    };
    match rng.below(7) {
        0 => {
            for _ in 0..1 + rng.below(8) {
                let at = pick(rng, data.len());
                data[at] ^= 1 << rng.below(8);
            }
        }
        1 => {
            let at = pick(rng, data.len());
            data[at] = [0, 0xff, 0x7f, 0x80, b'\'', b'\\', b'0'][rng.below(7)];
        }
        2 if data.len() >= 8 => {
            let at = pick(rng, data.len()).min(data.len() - 8);
            let v = INTERESTING_U32[rng.below(INTERESTING_U32.len())];
            if rng.below(2) == 0 {
                data[at..at + 4].copy_from_slice(&v.to_le_bytes());
            } else {
                data[at..at + 8].copy_from_slice(&u64::from(v).wrapping_mul(rng.next() | 1).to_le_bytes());
            }
        }
        3 => {
            let cut = pick(rng, data.len());
            data.truncate(cut);
        }
        4 if data.len() > 256 => {
            let len = 1 + rng.below(256);
            let from = rng.below(donor.len().saturating_sub(len));
            let at = pick(rng, data.len()).min(data.len().saturating_sub(len));
            data[at..at + len].copy_from_slice(&donor[from..from + len]);
        }
        2 | 4 => data.truncate(data.len() / 2),
        5 => {
            let at = pick(rng, data.len());
            let n = 1 + rng.below(16);
            let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
            data.splice(at..at, bytes);
        }
        _ => {
            let at = pick(rng, data.len());
            let end = (at + 1 + rng.below(16)).min(data.len());
            data.drain(at..end);
        }
    }
}

fn check(label: &str, seed: u64, input: &[u8], f: fn(&[u8])) {
    if catch_unwind(AssertUnwindSafe(|| f(input))).is_err() {
        let path = std::env::temp_dir().join(format!("relive-mutation-{label}-{seed}.bin"));
        std::fs::write(&path, input).unwrap();
        panic!(
            "{label}: mutation with seed {seed} panicked; input saved to {}",
            path.display()
        );
    }
}

#[test]
fn whole_file_parsers_survive_mutations() {
    let files: Vec<Vec<u8>> = common::ape_files().iter().map(|p| std::fs::read(p).unwrap()).collect();
    let hots: Vec<_> = common::ape_files().iter().map(|p| hot_ranges(p)).collect();
    let per_file = 1200;
    for (i, original) in files.iter().enumerate() {
        let donor = &files[(i + 1) % files.len()];
        for n in 0..per_file {
            let seed = (i as u64) << 32 | n;
            let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
            let mut data = original.clone();
            for _ in 0..1 + rng.below(3) {
                if data.is_empty() {
                    break;
                }
                mutate(&mut rng, &mut data, &hots[i], donor);
            }
            check("file", seed, &data, exercise::whole_file);
        }
    }
}

#[test]
fn symtab_and_zip_parsers_survive_mutations() {
    let image = Image::open(common::fixture("pledge.com")).unwrap();
    let symtab = image.zip_entry(".symtab.amd64").unwrap().into_owned();
    // The ZIP alone: central directory and the tail, with small offsets.
    let zip = image.layout().zip().unwrap();
    let tail = image.data()[zip.entries[0].local_header_offset as usize..].to_vec();
    let header_hot = [(0, 72), (72, 200), (symtab.len() - 4096, symtab.len())];
    for n in 0..1500u64 {
        let mut rng = Rng(n.wrapping_mul(0x2545_f491_4f6c_dd1d) | 1);
        let mut data = symtab.clone();
        mutate(&mut rng, &mut data, &header_hot, &tail);
        check("symtab", n, &data, exercise::cosmo_symtab);

        let mut data = image.data().to_vec();
        let cd = (zip.cd_offset as usize, data.len());
        mutate(
            &mut rng,
            &mut data,
            &[
                cd,
                (
                    zip.entries[1].local_header_offset as usize,
                    zip.entries[1].data_offset as usize + 32,
                ),
            ],
            &symtab,
        );
        check("zip", n, &data, exercise::zip);

        let mut data = image.data()[..8192].to_vec();
        mutate(&mut rng, &mut data, &[(0, 8192)], &symtab);
        check("script", n, &data, exercise::ape_script);
    }
}

/// Every prefix length near the structures' boundaries.
#[test]
fn truncation_at_every_structure_boundary() {
    for path in common::ape_files() {
        let data = std::fs::read(&path).unwrap();
        let mut cuts: Vec<usize> = (0..=4096).step_by(7).collect();
        for (a, b) in hot_ranges(&path) {
            cuts.extend([a, a + 1, b.saturating_sub(1), b]);
        }
        for cut in cuts {
            let cut = cut.min(data.len());
            check("truncate", cut as u64, &data[..cut], exercise::whole_file);
        }
    }
}
