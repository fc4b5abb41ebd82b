//! The embedded default data set: UCI handwritten digits, compiled into the crate, so that an
//! audit runs with no files at all (see `data/README.md` for origin and licence).

use std::io::Read;
use std::sync::OnceLock;

use crate::dataset::InMemoryDataset;

/// The gzipped CSV, byte for byte as scikit-learn 1.9.1 ships it.
pub const DIGITS_CSV_GZ: &[u8] = include_bytes!("../data/digits.csv.gz");

/// SHA-256 of [`DIGITS_CSV_GZ`].
pub const DIGITS_SHA256: &str = "09f66e6debdee2cd2b5ae59e0d6abbb73fc2b0e0185d2e1957e9ebb51e23aa22";

/// The 1,797 UCI handwritten digits: `[1, 8, 8]` images with pixels 0..16 scaled to [0, 1],
/// ten classes. Decoded once per process, then cloned.
pub fn digits() -> InMemoryDataset {
    static DIGITS: OnceLock<InMemoryDataset> = OnceLock::new();
    DIGITS.get_or_init(decode_digits).clone()
}

fn decode_digits() -> InMemoryDataset {
    let mut csv = String::new();
    flate2::read::GzDecoder::new(DIGITS_CSV_GZ)
        .read_to_string(&mut csv)
        .expect("the embedded digits are valid gzip (checked by a test)");
    let (mut features, mut labels) = (Vec::with_capacity(1797 * 64), Vec::with_capacity(1797));
    for line in csv.lines().filter(|l| !l.is_empty()) {
        let values: Vec<u32> = line
            .split(',')
            .map(|v| v.trim().parse().expect("embedded digits are integers"))
            .collect();
        assert_eq!(
            values.len(),
            65,
            "embedded digits rows have 64 pixels and a label"
        );
        features.extend(values[..64].iter().map(|&v| v as f32 / 16.0));
        labels.push(values[64]);
    }
    InMemoryDataset::new("digits", vec![1, 8, 8], features, labels, 10)
        .expect("embedded digits are valid")
}
