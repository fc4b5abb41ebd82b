//! End-to-end through the facade: a keep matrix and shadow-model logits go to disk in the
//! numpy formats, come back, become membership signals, and are judged by the metrics.

use memia::core::npy::{read_npy, write_npy};
use memia::core::rng::stream_rng;
use memia::core::{KeepMatrix, Logits, Signal};
use memia::metrics::{Direction, RocCurve, TprAtFpr, auroc, spearman};
use ndarray::{Array1, Array4};
use rand::RngExt;
use rand_distr::StandardNormal;

const MODELS: usize = 8;
const SAMPLES: usize = 2000;
const CLASSES: usize = 10;

/// Logits in which a model is more confident on its own training samples, by an amount that
/// grows with the sample index (later samples are "memorized" more).
fn synthetic_run() -> (KeepMatrix, Logits, Vec<u32>, Vec<f64>) {
    let keep = KeepMatrix::balanced(MODELS, SAMPLES, 11).unwrap();
    let labels: Vec<u32> = (0..SAMPLES as u32).map(|i| i % CLASSES as u32).collect();
    let exposure: Vec<f64> = (0..SAMPLES)
        .map(|i| 3.0 * i as f64 / SAMPLES as f64)
        .collect();
    let mut rng = stream_rng(11, 99);
    let logits = Array4::from_shape_fn((MODELS, SAMPLES, 1, CLASSES), |(k, i, _, c)| {
        let noise: f32 = rng.sample(StandardNormal);
        let boost = if c == labels[i] as usize {
            1.0 + if keep.get(k, i) {
                exposure[i] as f32
            } else {
                0.0
            }
        } else {
            0.0
        };
        noise + boost
    });
    (keep, Logits::new(logits).unwrap(), labels, exposure)
}

#[test]
fn audit_statistics_survive_the_file_formats_and_detect_membership() {
    let (keep, logits, labels, exposure) = synthetic_run();
    let dir = tempfile::tempdir().unwrap();
    keep.save(dir.path().join("keep.npy")).unwrap();
    logits.save(dir.path().join("logits.npy")).unwrap();
    write_npy(dir.path().join("labels.npy"), &Array1::from(labels.clone())).unwrap();

    let keep = KeepMatrix::load(dir.path().join("keep.npy")).unwrap();
    let logits = Logits::load(dir.path().join("logits.npy")).unwrap();
    let labels: Vec<u32> = read_npy::<u32, ndarray::Ix1>(dir.path().join("labels.npy"))
        .unwrap()
        .to_vec();

    let phi = logits.signals(&labels, Signal::Phi).unwrap();
    let loss = logits.signals(&labels, Signal::Loss).unwrap();
    let target = 0;
    let members: Vec<bool> = keep.row(target).to_vec();
    let phi0: Vec<f64> = (0..SAMPLES).map(|i| phi[[target, i, 0]]).collect();
    let loss0: Vec<f64> = (0..SAMPLES).map(|i| loss[[target, i, 0]]).collect();

    // A global threshold on phi, and on loss read the other way round, both detect membership.
    let auc_phi = auroc(&phi0, &members, Direction::HigherIsMember).unwrap();
    let auc_loss = auroc(&loss0, &members, Direction::LowerIsMember).unwrap();
    assert!(
        auc_phi > 0.75 && auc_loss > 0.75,
        "phi {auc_phi}, loss {auc_loss}"
    );
    // Reading the scores the wrong way round mirrors the AUROC.
    let wrong = auroc(&phi0, &members, Direction::LowerIsMember).unwrap();
    assert!((auc_phi + wrong - 1.0).abs() < 1e-12);

    // Highly exposed samples are far easier to attack than barely exposed ones.
    let split = |lo: usize, hi: usize| {
        let roc =
            RocCurve::new(&phi0[lo..hi], &members[lo..hi], Direction::HigherIsMember).unwrap();
        (
            roc.auc(),
            roc.tpr_at_fpr(0.01, TprAtFpr::Interpolated).unwrap(),
        )
    };
    let (auc_low, tpr_low) = split(0, SAMPLES / 4);
    let (auc_high, tpr_high) = split(3 * SAMPLES / 4, SAMPLES);
    assert!(
        auc_high > 0.95 && auc_low < 0.8,
        "high {auc_high}, low {auc_low}"
    );
    assert!(
        tpr_high > 5.0 * tpr_low.max(0.01),
        "tpr high {tpr_high}, low {tpr_low}"
    );

    // Per-sample IN-OUT gap of phi over the shadow models tracks the exposure.
    let gap: Vec<f64> = (0..SAMPLES)
        .map(|i| {
            let (mut sin, mut sout) = (0.0, 0.0);
            for k in 0..MODELS {
                if keep.get(k, i) {
                    sin += phi[[k, i, 0]]
                } else {
                    sout += phi[[k, i, 0]]
                }
            }
            (sin - sout) / (MODELS / 2) as f64
        })
        .collect();
    let rho = spearman(&exposure, &gap).unwrap();
    assert!(rho.statistic > 0.7 && rho.p_value < 1e-100, "{rho:?}");
}
