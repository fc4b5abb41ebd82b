//! CIFAR-10 and CIFAR-100 binary batches (`data_batch_*.bin`, `test_batch.bin`, `train.bin`),
//! raw or gzipped (read as the IDX loader reads: the gzip magic bytes decide).

use std::path::Path;

use crate::dataset::InMemoryDataset;
use crate::error::{DataError, Result, format_error, invalid};

const PIXELS: usize = 3 * 32 * 32;
/// The largest file read: CIFAR-100's `train.bin` (50,000 records of 3,074 bytes) is 154 MB;
/// a file (or gzip stream) that holds more is refused before it fills memory.
const MAX_FILE_BYTES: u64 = 1 << 30;

/// Which CIFAR-100 label to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cifar100Labels {
    /// The 20 superclasses.
    Coarse,
    /// The 100 classes.
    Fine,
}

/// Loads CIFAR-10 binary batches (records of 1 label byte + 3,072 pixel bytes, channel-major)
/// as `[3, 32, 32]` samples scaled to [0, 1], in file order.
pub fn load_cifar10<P: AsRef<Path>>(files: &[P]) -> Result<InMemoryDataset> {
    load_records(files, "cifar10", 1, 10, |record| record[0])
}

/// Loads CIFAR-100 binary batches (records of a coarse and a fine label byte + 3,072 pixel
/// bytes) with the chosen labels.
pub fn load_cifar100<P: AsRef<Path>>(
    files: &[P],
    labels: Cifar100Labels,
) -> Result<InMemoryDataset> {
    match labels {
        Cifar100Labels::Coarse => load_records(files, "cifar100-coarse", 2, 20, |r| r[0]),
        Cifar100Labels::Fine => load_records(files, "cifar100", 2, 100, |r| r[1]),
    }
}

fn load_records<P: AsRef<Path>>(
    files: &[P],
    name: &str,
    label_bytes: usize,
    classes: usize,
    label_of: impl Fn(&[u8]) -> u8,
) -> Result<InMemoryDataset> {
    if files.is_empty() {
        return Err(invalid("files", "no CIFAR batch file given"));
    }
    let record = label_bytes + PIXELS;
    let (mut features, mut labels) = (Vec::new(), Vec::new());
    for file in files {
        let path = file.as_ref();
        let bytes = crate::idx::read_maybe_gzipped_bounded(path, MAX_FILE_BYTES)?;
        if bytes.is_empty() || bytes.len() % record != 0 {
            return Err(format_error(
                path.display(),
                format!(
                    "{} bytes is not a whole number of {record}-byte {name} records (truncated, or the wrong CIFAR variant)",
                    bytes.len()
                ),
            ));
        }
        for (r, rec) in bytes.chunks_exact(record).enumerate() {
            let label = label_of(rec);
            if usize::from(label) >= classes {
                return Err(DataError::LabelOutOfRange {
                    location: path.display().to_string(),
                    sample: r,
                    label: i64::from(label),
                    classes,
                });
            }
            labels.push(u32::from(label));
            features.extend(rec[label_bytes..].iter().map(|&p| f32::from(p) / 255.0));
        }
    }
    InMemoryDataset::new(name, vec![3, 32, 32], features, labels, classes)
}
