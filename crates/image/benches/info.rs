//! Opening a file and producing `relive info` must read only headers and the
//! ZIP central directory: a 4 GiB llamafile-style APE (a sparse file with a
//! 4 GiB STORE entry) should cost the same as a 1 MiB one, and pledge.com
//! under 1 ms.
//!
//! Run: `cargo bench -p relive-image --bench info`. Criterion measures each
//! case; the summary at the end prints the medians and the ratios measured
//! in the same run.

use std::path::Path;
use std::time::Duration;

use criterion::Criterion;
use relive_image::Image;
use relive_testkit::fixture;

/// What `relive info --json` does, minus printing to a terminal.
fn open_and_report(path: &Path) -> usize {
    let image = Image::open(path).expect("open");
    let mut out = Vec::with_capacity(16 << 10);
    serde_json::to_writer(&mut out, &image.info()).expect("serialise");
    out.len()
}

fn main() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let pledge = fixture("pledge.com");
    let ape = std::fs::read(&pledge).expect("read pledge.com (../shared/fixtures/ape)");
    let small = scratch.path().join("llamafile-1MiB.com");
    let big = scratch.path().join("llamafile-4GiB.com");
    relive_image::zip::testing::write_llamafile_like(&ape, 1 << 20, &small).expect("write 1 MiB file");
    relive_image::zip::testing::write_llamafile_like(&ape, 4 << 30, &big).expect("write 4 GiB file");
    eprintln!(
        "files: pledge.com {} bytes, {} {} bytes, {} {} bytes (sparse)",
        ape.len(),
        small.display(),
        small.metadata().unwrap().len(),
        big.display(),
        big.metadata().unwrap().len()
    );

    let out_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/criterion-info");
    let mut c = Criterion::default()
        .output_directory(&out_dir)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    let cases = [
        ("pledge.com", &pledge),
        ("llamafile-1MiB", &small),
        ("llamafile-4GiB", &big),
    ];
    for (name, path) in cases {
        c.bench_function(&format!("info/{name}"), |b| b.iter(|| open_and_report(path)));
    }
    c.final_summary();

    println!("\nsummary (median of open + info + JSON, same run):");
    let medians: Vec<Option<f64>> = cases
        .iter()
        .map(|(name, _)| relive_testkit::criterion_median_ns(&out_dir, &format!("info_{name}")))
        .collect();
    for ((name, _), m) in cases.iter().zip(&medians) {
        match m {
            Some(ns) => println!("  {name:<16} {:>9.1} µs", ns / 1000.0),
            None => println!("  {name:<16} (no estimate: run without --test/filters)"),
        }
    }
    if let (Some(Some(pledge)), Some(Some(small)), Some(Some(big))) = (medians.first(), medians.get(1), medians.get(2))
    {
        println!("  4 GiB / 1 MiB ratio: {:.3}", big / small);
        println!(
            "  pledge.com under 1 ms: {} ({:.3} ms)",
            pledge / 1e6 < 1.0,
            pledge / 1e6
        );
    }
}
