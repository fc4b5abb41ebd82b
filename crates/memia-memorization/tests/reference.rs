//! Agreement with the reference formulas and libraries, on the fixtures of
//! `fixtures/make_fixtures.py` (which records how each value was produced).

use std::path::PathBuf;

use memia_core::npz::NpzArchive;
use memia_core::{KeepMatrix, Logits, labels_from_i64};
use memia_memorization::outlier::{
    knn_distance, mahalanobis, out_model_energy, out_model_msp_outlierness,
};
use memia_memorization::{MemorizationConfig, influence, read_published};
use ndarray::{Array1, Array2, Ix1, Ix2};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn close(what: &str, ours: &Array1<f64>, theirs: &Array1<f64>, tolerance: f64) {
    assert_eq!(ours.len(), theirs.len(), "{what}: length");
    for (i, (a, b)) in ours.iter().zip(theirs).enumerate() {
        assert!(
            (a - b).abs() <= tolerance * b.abs().max(1.0),
            "{what}[{i}]: ours {a}, reference {b}"
        );
    }
}

#[test]
fn memorization_and_influence_match_the_heldout_influence_formulas() {
    let mut npz = NpzArchive::open(fixture("reference.npz")).unwrap();
    let keep = KeepMatrix::from_array(npz.read::<bool, Ix2>("keep").unwrap()).unwrap();
    let correct: Array2<f32> = npz.read("correct").unwrap();
    let prob: Array2<f32> = npz.read("prob").unwrap();
    let config = MemorizationConfig::default();

    let label = config.estimate(&keep, correct.view()).unwrap();
    let expected: Array1<f32> = npz.read("mem_label").unwrap();
    close("mem_label", &label.score, &expected.mapv(f64::from), 1e-6);
    close(
        "se_label",
        &label.std_error,
        &npz.read::<f64, Ix1>("se_label").unwrap(),
        1e-9,
    );

    let soft = config.estimate(&keep, prob.view()).unwrap();
    let expected: Array1<f32> = npz.read("mem_soft").unwrap();
    close("mem_soft", &soft.score, &expected.mapv(f64::from), 1e-6);

    let held_out: Array2<f32> = npz.read("held_out").unwrap();
    let infl = influence(&keep, held_out.view(), 1 << 30).unwrap();
    let expected: Array2<f32> = npz.read("infl").unwrap();
    assert_eq!(infl.shape(), expected.shape());
    for ((idx, a), b) in infl.indexed_iter().zip(expected.iter()) {
        assert!(
            (a - b).abs() <= 1e-6,
            "infl{idx:?}: ours {a}, reference {b}"
        );
    }
}

#[test]
fn outlierness_baselines_match_scikit_learn_and_numpy() {
    let mut npz = NpzArchive::open(fixture("reference.npz")).unwrap();
    let features: Array2<f32> = npz.read("features").unwrap();
    let labels: Array1<i64> = npz.read("labels").unwrap();
    let labels = labels_from_i64(labels.as_slice().unwrap(), 3).unwrap();

    let knn = knn_distance(features.view(), 5).unwrap();
    close("knn5", &knn, &npz.read::<f64, Ix1>("knn5").unwrap(), 1e-9);

    let maha = mahalanobis(features.view(), &labels, 0.0).unwrap();
    close(
        "maha_sq",
        &maha.mapv(|d| d * d),
        &npz.read::<f64, Ix1>("maha_sq").unwrap(),
        1e-9,
    );
    let ridge = mahalanobis(features.view(), &labels, 0.5).unwrap();
    close(
        "maha_ridge",
        &ridge,
        &npz.read::<f64, Ix1>("maha_ridge").unwrap(),
        1e-9,
    );

    let keep = KeepMatrix::from_array(npz.read::<bool, Ix2>("keep").unwrap()).unwrap();
    let logits = Logits::new(npz.read("logits").unwrap()).unwrap();
    close(
        "msp_out",
        &out_model_msp_outlierness(&keep, &logits, 0).unwrap(),
        &npz.read::<f64, Ix1>("msp_out").unwrap(),
        1e-12,
    );
    close(
        "energy_out",
        &out_model_energy(&keep, &logits, 0).unwrap(),
        &npz.read::<f64, Ix1>("energy_out").unwrap(),
        1e-12,
    );
}

#[test]
fn reads_published_feldman_zhang_files() {
    let published = read_published(fixture("published.npz")).unwrap();
    assert_eq!(
        published.memorization.to_vec(),
        vec![0.0, 0.25, 0.99, -0.01]
    );
    assert_eq!(published.labels, Some(vec![3, 1, 4, 1]));
    assert_eq!(published.other_arrays, vec!["tr_classidx_map"]);
    let err = read_published(fixture("reference.npz"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("no array named 'tr_mem'"), "{err}");
}
