//! Interoperability with numpy: files written by `np.save`/`np.savez` (see
//! `fixtures/make_numpy_fixtures.py`) read back exactly, our files are byte-identical to
//! numpy's, and the signals match values computed independently with numpy and SciPy.

use std::path::PathBuf;

use memia_core::npy::{AnyArray, read_npy, read_npy_any, write_npy_to};
use memia_core::npz::NpzArchive;
use memia_core::{Logits, Signal, labels_from_i64};
use ndarray::{Array1, Array2, Array3, Array4, ArrayD, array};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

#[test]
fn reads_every_numpy_dtype_and_layout() {
    let b: Array2<bool> = read_npy(fixture("dtypes/bool.npy")).unwrap();
    assert_eq!(b, array![[true, false, true], [false, false, true]]);
    let u: Array1<u8> = read_npy(fixture("dtypes/uint8.npy")).unwrap();
    assert_eq!(u, array![250u8, 251, 252, 253, 254, 255]);
    let i: Array1<i64> = read_npy(fixture("dtypes/int64.npy")).unwrap();
    assert_eq!(i, array![0i64, -3, 1 << 40]);
    let ibe: Array1<i32> = read_npy(fixture("dtypes/int32_be.npy")).unwrap();
    assert_eq!(ibe, array![1, -2, 3]);
    let fbe: Array1<f32> = read_npy(fixture("dtypes/float32_be.npy")).unwrap();
    assert_eq!(fbe, array![1.5f32, -2.25]);
    let f: Array3<f64> = read_npy(fixture("dtypes/float64_fortran.npy")).unwrap();
    assert_eq!(
        f,
        Array3::from_shape_fn((2, 3, 4), |(a, b, c)| (a * 12 + b * 4 + c) as f64)
    );
    let s = read_npy_any(fixture("dtypes/scalar.npy")).unwrap();
    assert_eq!(
        s,
        AnyArray::F64(ArrayD::from_elem(ndarray::IxDyn(&[]), 2.5))
    );
    let e: Array2<f32> = read_npy(fixture("dtypes/empty.npy")).unwrap();
    assert_eq!(e.shape(), &[0, 3]);
}

fn npy_bytes<T: memia_core::npy::Element, D: ndarray::Dimension>(
    a: &ndarray::Array<T, D>,
) -> Vec<u8> {
    let mut out = Vec::new();
    write_npy_to(&mut out, a).unwrap();
    out
}

#[test]
fn writes_files_byte_identical_to_numpy() {
    let float32_4d = Array4::from_shape_fn((2, 3, 1, 4), |(i, j, _, l)| {
        (i * 12 + j * 4 + l) as f32 / 7.0
    });
    let cases = [
        (
            "dtypes/bool.npy",
            npy_bytes(&array![[true, false, true], [false, false, true]]),
        ),
        (
            "dtypes/uint8.npy",
            npy_bytes(&array![250u8, 251, 252, 253, 254, 255]),
        ),
        ("dtypes/int64.npy", npy_bytes(&array![0i64, -3, 1 << 40])),
        ("dtypes/empty.npy", npy_bytes(&Array2::<f32>::zeros((0, 3)))),
        ("dtypes/float32_4d.npy", npy_bytes(&float32_4d)),
        (
            "dtypes/scalar.npy",
            npy_bytes(&ArrayD::from_elem(ndarray::IxDyn(&[]), 2.5f64)),
        ),
    ];
    for (name, ours) in cases {
        assert_eq!(ours, std::fs::read(fixture(name)).unwrap(), "{name}");
    }
}

#[test]
fn reads_numpy_archives() {
    for name in ["arrays.npz", "arrays_compressed.npz"] {
        let mut npz = NpzArchive::open(fixture(name)).unwrap();
        assert_eq!(npz.names(), vec!["keep", "logits"]);
        let keep: Array2<bool> = npz.read("keep").unwrap();
        assert_eq!(keep, array![[true, false], [false, true]]);
        let logits: Array1<f32> = npz.read("logits").unwrap();
        assert_eq!(logits.len(), 10);
        assert_eq!(logits[0], -1.0);
        assert_eq!(logits[9], 1.0);
    }
}

#[test]
fn signals_match_numpy_and_the_lira_reference() {
    let mut npz = NpzArchive::open(fixture("signals.npz")).unwrap();
    let logits = Logits::new(npz.read::<f32, ndarray::Ix4>("logits").unwrap()).unwrap();
    let labels: Array1<i64> = npz.read("labels").unwrap();
    let labels = labels_from_i64(labels.as_slice().unwrap(), logits.classes()).unwrap();
    let checks = [
        (Signal::Phi, "phi", 1e-9),
        (Signal::PhiReference, "phi_reference", 1e-6),
        (Signal::Hinge, "hinge", 0.0),
        (Signal::Loss, "loss", 1e-9),
        (Signal::Probability, "probability", 1e-12),
        (Signal::Correct, "correct", 0.0),
    ];
    for (signal, name, tolerance) in checks {
        let expected: Array3<f64> = npz.read(name).unwrap();
        let ours = logits.signals(&labels, signal).unwrap();
        for ((idx, &want), &got) in expected.indexed_iter().zip(ours.iter()) {
            let scale = want.abs().max(1.0);
            assert!(
                (got - want).abs() <= tolerance * scale,
                "{name} at {idx:?}: ours {got}, numpy {want}"
            );
        }
    }
}
