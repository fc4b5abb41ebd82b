//! Every way an input file can be broken gives an error naming the file and the problem.

use std::io::Write;
use std::path::{Path, PathBuf};

use memia_data::cifar::{Cifar100Labels, load_cifar10, load_cifar100};
use memia_data::idx::{load_idx, read_idx, write_idx};
use memia_data::numpy::load_npz;
use memia_data::{DataError, Dataset};

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// A valid 5-image 3x2 IDX pair, raw bytes.
fn idx_pair() -> (Vec<u8>, Vec<u8>) {
    let mut images = vec![0, 0, 8, 3, 0, 0, 0, 5, 0, 0, 0, 3, 0, 0, 0, 2];
    images.extend((0..30u8).map(|v| v * 8));
    let mut labels = vec![0, 0, 8, 1, 0, 0, 0, 5];
    labels.extend([1u8, 0, 4, 2, 3]);
    (images, labels)
}

fn message(result: Result<impl std::fmt::Debug, DataError>) -> String {
    result
        .expect_err("the broken file must be rejected")
        .to_string()
}

#[test]
fn valid_idx_raw_and_gzipped() {
    let dir = tempfile::tempdir().unwrap();
    let (images, labels) = idx_pair();
    for gz in [false, true] {
        let enc = |b: &[u8]| if gz { gzip(b) } else { b.to_vec() };
        let img = write(dir.path(), &format!("i{gz}"), &enc(&images));
        let lab = write(dir.path(), &format!("l{gz}"), &enc(&labels));
        let ds = load_idx(&img, &lab, "tiny", None).unwrap();
        assert_eq!(
            (ds.len(), ds.feature_shape(), ds.classes()),
            (5, &[1, 3, 2][..], 5)
        );
        assert_eq!(ds.features(1)[0], 48.0 / 255.0);
    }
    let out = dir.path().join("roundtrip.idx");
    write_idx(&out, &[2, 2], &[1, 2, 3, 4]).unwrap();
    assert_eq!(read_idx(&out).unwrap().dims, vec![2, 2]);
}

#[test]
fn corrupted_idx_files() {
    let dir = tempfile::tempdir().unwrap();
    let (images, labels) = idx_pair();
    let good_labels = write(dir.path(), "labels", &labels);
    // Truncations at several offsets: inside the magic, the header and the data.
    for cut in [0, 3, 7, 15, 16, 30, images.len() - 1] {
        let img = write(dir.path(), &format!("trunc{cut}"), &images[..cut]);
        let msg = message(load_idx(&img, &good_labels, "x", None));
        assert!(msg.contains(&format!("trunc{cut}")), "{msg}");
        assert!(
            msg.contains("too short")
                || msg.contains("inside the header")
                || msg.contains("truncated"),
            "cut {cut}: {msg}"
        );
    }
    let mut bad_magic = images.clone();
    bad_magic[0] = 0x12;
    let msg = message(load_idx(
        write(dir.path(), "magic", &bad_magic),
        &good_labels,
        "x",
        None,
    ));
    assert!(
        msg.contains("magic") && msg.contains("wrong magic number 12000803"),
        "{msg}"
    );
    let mut bad_type = images.clone();
    bad_type[2] = 0x0D;
    assert!(
        message(load_idx(
            write(dir.path(), "type", &bad_type),
            &good_labels,
            "x",
            None
        ))
        .contains("element type 0x0d")
    );
    let mut trailing = images.clone();
    trailing.push(0);
    assert!(
        message(load_idx(
            write(dir.path(), "trailing", &trailing),
            &good_labels,
            "x",
            None
        ))
        .contains("trailing bytes")
    );
    // Wrong counts: 4 labels for 5 images.
    let mut four = vec![0, 0, 8, 1, 0, 0, 0, 4];
    four.extend([1u8, 0, 4, 2]);
    let img = write(dir.path(), "images", &images);
    let msg = message(load_idx(&img, write(dir.path(), "four", &four), "x", None));
    assert!(msg.contains("4 labels for the 5 images"), "{msg}");
    // Labels out of range for the declared classes.
    let msg = message(load_idx(&img, &good_labels, "x", Some(4)));
    assert!(
        msg.contains("label 4 of sample 2 is out of range for 4 classes") && msg.contains("labels"),
        "{msg}"
    );
    // Images given as labels.
    assert!(
        message(load_idx(&good_labels, &good_labels, "x", None)).contains("must have 3 dimensions")
    );
    // Bad gzip: a valid header, then garbage.
    let mut gz = gzip(&images);
    let mid = gz.len() / 2;
    gz[mid..].iter_mut().for_each(|b| *b ^= 0xA5);
    let msg = message(load_idx(
        write(dir.path(), "bad.gz", &gz),
        &good_labels,
        "x",
        None,
    ));
    assert!(
        msg.contains("bad.gz") && msg.contains("corrupt gzip"),
        "{msg}"
    );
    assert!(matches!(
        load_idx(dir.path().join("missing"), &good_labels, "x", None),
        Err(DataError::Io { .. })
    ));
}

#[test]
fn cifar_batches() {
    let dir = tempfile::tempdir().unwrap();
    let mut ten = Vec::new();
    for label in [3u8, 9] {
        ten.push(label);
        ten.extend((0..3072).map(|p| (p % 256) as u8));
    }
    let path = write(dir.path(), "data_batch_1.bin", &ten);
    let ds = load_cifar10(&[&path, &path]).unwrap();
    assert_eq!(
        (ds.len(), ds.feature_shape(), ds.label(1)),
        (4, &[3, 32, 32][..], 9)
    );
    assert_eq!(ds.features(0)[255], 1.0);
    let msg = message(load_cifar10(&[write(
        dir.path(),
        "short.bin",
        &ten[..5000],
    )]));
    assert!(
        msg.contains("short.bin") && msg.contains("3073-byte"),
        "{msg}"
    );
    let mut bad = ten.clone();
    bad[3073] = 10;
    assert!(
        message(load_cifar10(&[write(dir.path(), "label.bin", &bad)]))
            .contains("label 10 of sample 1")
    );
    let mut hundred = vec![7u8, 42];
    hundred.extend(vec![0u8; 3072]);
    let p100 = write(dir.path(), "train.bin", &hundred);
    assert_eq!(
        load_cifar100(&[&p100], Cifar100Labels::Fine)
            .unwrap()
            .label(0),
        42
    );
    assert_eq!(
        load_cifar100(&[&p100], Cifar100Labels::Coarse)
            .unwrap()
            .label(0),
        7
    );
    assert!(message(load_cifar100(&[&path], Cifar100Labels::Fine)).contains("3074-byte"));
    // Gzipped as the shared file is: the same samples; a cut gzip stream is named.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &ten).unwrap();
    let gz = gz.finish().unwrap();
    let gz_path = write(dir.path(), "data_batch_1.bin.gz", &gz);
    let from_gz = load_cifar10(&[&gz_path]).unwrap();
    assert_eq!(
        from_gz.as_slice(),
        load_cifar10(&[&path]).unwrap().as_slice()
    );
    let cut = message(load_cifar10(&[write(
        dir.path(),
        "cut.bin.gz",
        &gz[..gz.len() / 2],
    )]));
    assert!(cut.contains("cut.bin.gz"), "{cut}");
}

#[test]
fn npz_data_sets() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pool.npz");
    let mut npz = memia_core::npz::NpzWriter::create(&path, true);
    npz.add("x", &ndarray::Array3::<u8>::from_elem((4, 2, 2), 51))
        .unwrap();
    npz.add("y", &ndarray::array![0i64, 1, 2, 1]).unwrap();
    npz.add("bad_y", &ndarray::array![0.5f32, 1.0, 2.0, 1.0])
        .unwrap();
    npz.add("short_y", &ndarray::array![0i64, 1]).unwrap();
    npz.add("huge_y", &ndarray::array![0i64, 1 << 40, 2, 1])
        .unwrap();
    npz.finish().unwrap();
    let ds = load_npz(&path, "x", "y", None).unwrap();
    assert_eq!(
        (
            ds.len(),
            ds.feature_shape(),
            ds.classes(),
            ds.features(0)[0]
        ),
        (4, &[2, 2][..], 3, 0.2)
    );
    assert!(message(load_npz(&path, "x", "bad_y", None)).contains("an integer dtype"));
    assert!(message(load_npz(&path, "x", "short_y", None)).contains("for 4 samples"));
    // Labels decide memory: a label of 2^40 in four samples is refused, not 2^40 classes made.
    let err = message(load_npz(&path, "x", "huge_y", None));
    assert!(
        err.contains(
            "label 1099511627776 of sample 1 would make 1099511627777 classes for 4 samples"
        ),
        "{err}"
    );
    assert!(message(load_npz(&path, "x", "missing", None)).contains("no array named 'missing'"));
    assert!(
        message(load_npz(&path, "x", "y", Some(2)))
            .contains("label 2 of sample 2 is out of range for 2 classes")
    );
}
