//! Parity with the LiRA reference's formulas (tensorflow/privacy `research/mi_lira_2021/plot.py`)
//! for every variant, on the fixture of `fixtures/make_lira_reference.py`, which re-implements
//! them and documents each convention. memia's scores are the reference's predictions negated
//! (memia: higher = member).

use std::path::PathBuf;

use memia_attacks::{FittedTest, LiraConfig, MembershipTest, Threshold};
use memia_core::KeepMatrix;
use memia_core::npz::NpzArchive;
use memia_metrics::{Direction, RocCurve, TprAtFpr};
use ndarray::{Array1, Array2, Array3, Axis, Ix1, Ix2, Ix3, s};

struct Fixture {
    npz: NpzArchive,
    shadow_keep: KeepMatrix,
    shadow: Array3<f64>,
    target: Array2<f64>,
    target_members: Vec<bool>,
}

fn fixture() -> Fixture {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/lira_reference.npz");
    let mut npz = NpzArchive::open(path).unwrap();
    let keep: Array2<bool> = npz.read::<bool, Ix2>("keep").unwrap();
    let scores: Array3<f64> = npz.read::<f64, Ix3>("scores").unwrap();
    let k = keep.nrows();
    let shadow_keep = KeepMatrix::from_array(keep.slice(s![..k - 1, ..]).to_owned()).unwrap();
    Fixture {
        npz,
        shadow_keep,
        shadow: scores.slice(s![..k - 1, .., ..]).to_owned(),
        target: scores.index_axis(Axis(0), k - 1).to_owned(),
        target_members: keep.row(k - 1).to_vec(),
    }
}

fn assert_close(what: &str, ours: &Array1<f64>, expected: &Array1<f64>) {
    assert_eq!(ours.len(), expected.len());
    for (i, (a, b)) in ours.iter().zip(expected).enumerate() {
        assert!(
            (a - b).abs() <= 1e-9 * b.abs().max(1.0),
            "{what}[{i}]: memia {a}, reference {b}"
        );
    }
}

fn scores_of<T: MembershipTest>(f: &Fixture, test: &T) -> Array1<f64> {
    test.fit(&f.shadow_keep, f.shadow.view())
        .unwrap()
        .score(f.target.view())
        .unwrap()
}

#[test]
fn every_reference_variant_is_reproduced_under_compatibility() {
    let mut f = fixture();
    let compat = |c: LiraConfig| c.reference_compatible(true);
    let cases: Vec<(&str, Array1<f64>)> = vec![
        ("ref_online", scores_of(&f, &compat(LiraConfig::online()))),
        (
            "ref_online_fixed",
            scores_of(&f, &compat(LiraConfig::online().with_global_variance(true))),
        ),
        (
            "ref_offline",
            scores_of(&f, &compat(LiraConfig::offline_log_density())),
        ),
        (
            "ref_offline_fixed",
            scores_of(
                &f,
                &compat(LiraConfig::offline_log_density().with_global_variance(true)),
            ),
        ),
        ("ref_global", scores_of(&f, &Threshold::global())),
    ];
    for (name, ours) in cases {
        let reference: Array1<f64> = f.npz.read::<f64, Ix1>(name).unwrap();
        assert_close(name, &ours, &reference.mapv(|v| -v));

        // The reference's sweep (AUC, accuracy, TPR at 0.1% FPR) from memia's metrics.
        let sweep: Array1<f64> = f.npz.read::<f64, Ix1>(&format!("{name}_sweep")).unwrap();
        let roc = RocCurve::new(
            ours.as_slice().unwrap(),
            &f.target_members,
            Direction::HigherIsMember,
        )
        .unwrap();
        assert!(
            (roc.auc() - sweep[0]).abs() < 1e-12,
            "{name} auc {} vs {}",
            roc.auc(),
            sweep[0]
        );
        assert!(
            (roc.balanced_accuracy() - sweep[1]).abs() < 1e-12,
            "{name} accuracy"
        );
        assert!(
            (roc.tpr_at_fpr(1e-3, TprAtFpr::LiraStrict).unwrap() - sweep[2]).abs() < 1e-12,
            "{name} tpr"
        );
    }
}

#[test]
fn memia_default_variants_match_an_independent_numpy_implementation() {
    let mut f = fixture();
    for (name, config) in [
        ("memia_online", LiraConfig::online()),
        (
            "memia_online_global",
            LiraConfig::online().with_global_variance(true),
        ),
        ("memia_offline_tail", LiraConfig::offline()),
    ] {
        let ours = scores_of(&f, &config);
        assert_close(name, &ours, &f.npz.read::<f64, Ix1>(name).unwrap());
    }
}

#[test]
fn the_fixed_variance_quirk_changes_scores() {
    // Guard that the compatibility option really switches behaviour on this fixture.
    let f = fixture();
    let fixed = LiraConfig::online().with_global_variance(true);
    let correct = scores_of(&f, &fixed);
    let quirk = scores_of(&f, &fixed.reference_compatible(true));
    let max_gap = correct
        .iter()
        .zip(quirk.iter())
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(max_gap > 1e-3, "{max_gap}");
}
