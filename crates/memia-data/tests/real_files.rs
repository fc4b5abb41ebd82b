//! The real IDX files of `$MEMIA_DATA_DIR` (`.ci/run` sets it to `../shared/data`): the MNIST
//! test set and a notMNIST sample. Reference values recorded once with numpy 2.4.6:
//! `np.frombuffer(gzip.open(f).read()[16:], np.uint8).astype(np.uint64).sum()` for the pixel
//! sum, `np.bincount(labels)` for the histogram.

use std::io::Write;
use std::path::{Path, PathBuf};

use memia_data::idx::load_idx;
use memia_data::{CanarySource, Dataset, LabelPolicy, PoolBuilder};

/// The directory of the real files, or `None` (the test then says it is skipped) when they are
/// not there, as on a fresh clone. With `MEMIA_REQUIRE_DATA=1` (`.ci/run` sets it) missing
/// files fail the test instead.
fn data_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("MEMIA_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"));
    if dir.join("mnist-t10k-images-idx3-ubyte.gz").is_file() {
        return Some(dir);
    }
    let why = format!(
        "real data not found in {}: set MEMIA_DATA_DIR to the directory holding the MNIST and notMNIST IDX files",
        dir.display()
    );
    assert!(
        std::env::var("MEMIA_REQUIRE_DATA").as_deref() != Ok("1"),
        "{why} (MEMIA_REQUIRE_DATA=1)"
    );
    // Straight to stderr: the test harness captures `eprintln!` of passing tests.
    let _ = writeln!(std::io::stderr(), "skipped: {why}");
    None
}

fn load(dir: &Path, prefix: &str) -> memia_data::InMemoryDataset {
    load_idx(
        dir.join(format!("{prefix}-t10k-images-idx3-ubyte.gz")),
        dir.join(format!("{prefix}-t10k-labels-idx1-ubyte.gz")),
        prefix,
        Some(10),
    )
    .unwrap()
}

fn histogram(ds: &dyn Dataset) -> Vec<usize> {
    let mut h = vec![0; ds.classes()];
    for l in ds.labels() {
        h[l as usize] += 1;
    }
    h
}

fn pixel_sum(ds: &dyn Dataset) -> u64 {
    (0..ds.len())
        .map(|i| {
            ds.features(i)
                .iter()
                .map(|&v| (v * 255.0).round() as u64)
                .sum::<u64>()
        })
        .sum()
}

#[test]
fn mnist_test_set_loads_exactly() {
    let Some(dir) = data_dir() else { return };
    let mnist = load(&dir, "mnist");
    assert_eq!(
        (mnist.len(), mnist.feature_shape(), mnist.classes()),
        (10_000, &[1, 28, 28][..], 10)
    );
    assert_eq!(
        histogram(&mnist),
        vec![980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    );
    assert_eq!(pixel_sum(&mnist), 264_923_200);
    assert_eq!(mnist.label(0), 7);
}

#[test]
fn notmnist_sample_loads_exactly() {
    let Some(dir) = data_dir() else { return };
    let letters = load(&dir, "notmnist");
    assert_eq!(
        (letters.len(), letters.feature_shape(), letters.classes()),
        (10_000, &[1, 28, 28][..], 10)
    );
    assert_eq!(histogram(&letters), vec![1000; 10]);
    assert_eq!(pixel_sum(&letters), 852_906_614);
    assert_eq!(letters.label(0), 3);
}

#[test]
fn mnist_pool_with_notmnist_canaries() {
    let Some(dir) = data_dir() else { return };
    let (mnist, letters) = (load(&dir, "mnist"), load(&dir, "notmnist"));
    let pool = PoolBuilder::new(&mnist)
        .in_distribution(2000)
        .canaries(
            CanarySource::OutOfDistribution(&letters),
            100,
            LabelPolicy::Random,
        )
        .build(1)
        .unwrap();
    assert_eq!(pool.dataset.len(), 2100);
    let canaries = pool.canaries();
    assert_eq!(canaries, (2000..2100).collect::<Vec<_>>());
    for &i in &canaries {
        let p = &pool.provenance[i];
        assert_eq!(p.source, "notmnist");
        assert_eq!(
            pool.dataset.features(i),
            letters.features(p.index),
            "same shape: copied unchanged"
        );
        assert_ne!(
            pool.dataset.label(i),
            p.original_label,
            "random labels differ from the original"
        );
    }
    for i in 0..2000 {
        let p = &pool.provenance[i];
        assert_eq!((p.source.as_str(), p.canary), ("mnist", false));
        assert_eq!(pool.dataset.label(i), mnist.label(p.index));
    }
}

/// The shared CIFAR-10 file (`cifar10-test-jpeg.bin.gz`, gzipped CIFAR binary records), read
/// as it is. Reference values from numpy 2.4.6: `raw = np.frombuffer(gzip.open(f).read(),
/// np.uint8).reshape(-1, 3073)`; `np.bincount(raw[:, 0])`, `raw[:, 1:].astype(np.uint64).sum()`.
#[test]
fn the_shared_cifar10_file() {
    let Some(dir) = data_dir() else {
        return;
    };
    let ds = memia_data::cifar::load_cifar10(&[dir.join("cifar10-test-jpeg.bin.gz")]).unwrap();
    assert_eq!((ds.len(), ds.feature_shape()), (10_000, &[3, 32, 32][..]));
    assert_eq!(histogram(&ds), vec![1000; 10]);
    assert_eq!(pixel_sum(&ds), 3_732_740_007);
    // Records are interleaved by class (the file's README).
    assert!((0..20).all(|i| ds.label(i) as usize == i % 10));
}
