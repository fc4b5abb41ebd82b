//! Statistical self-checks on data whose answer is known: null data gives chance-level
//! attacks and nominal false-positive rates; Gaussian data with a known separation gives the
//! closed-form AUROC; the budget planner predicts, within an order of magnitude, how many
//! shadow models the leave-one-out curve needs.

use memia_attacks::loo::{EvalGroup, LooConfig, leave_one_out};
use memia_attacks::theory::{hellinger_sq_gaussian, models_needed};
use memia_attacks::{FittedTest, LiraConfig, MembershipTest, RmiaConfig, Threshold};
use memia_core::KeepMatrix;
use memia_core::rng::stream_rng;
use memia_metrics::{Direction, auroc};
use ndarray::{Array3, Axis, s};
use rand::RngExt;
use rand_distr::StandardNormal;
use statrs::distribution::{ContinuousCDF, Normal};

/// K models x N samples of `offset_i + shift * member + noise`; the last model is the target.
fn gaussian_run(
    models: usize,
    samples: usize,
    shift: &dyn Fn(usize) -> f64,
    offsets_sd: f64,
    seed: u64,
) -> (KeepMatrix, Array3<f64>) {
    let keep = KeepMatrix::balanced(models, samples, seed).unwrap();
    let mut rng = stream_rng(seed, 1);
    let offsets: Vec<f64> = (0..samples)
        .map(|_| offsets_sd * rng.sample::<f64, _>(StandardNormal))
        .collect();
    let obs = Array3::from_shape_fn((models, samples, 1), |(k, i, _)| {
        offsets[i]
            + rng.sample::<f64, _>(StandardNormal)
            + if keep.get(k, i) { shift(i) } else { 0.0 }
    });
    (keep, obs)
}

/// Scores of the target and its ground truth.
type Scored = (Vec<f64>, Vec<bool>);

/// Fits on models 0..K-1 and scores model K-1.
fn attack<T: MembershipTest>(test: &T, keep: &KeepMatrix, obs: &Array3<f64>) -> Scored {
    let k = keep.models();
    let shadows: Vec<usize> = (0..k - 1).collect();
    let fitted = test
        .fit(
            &keep.select_models(&shadows).unwrap(),
            obs.slice(s![..k - 1, .., ..]),
        )
        .unwrap();
    let scores = fitted.score(obs.index_axis(Axis(0), k - 1)).unwrap();
    (scores.to_vec(), keep.row(k - 1).to_vec())
}

/// Standard error of an AUROC of 0.5 (Hanley & McNeil with A = 0.5).
fn null_auroc_se(members: &[bool]) -> f64 {
    let p = members.iter().filter(|&&m| m).count() as f64;
    let n = members.len() as f64 - p;
    ((p + n + 1.0) / (12.0 * p * n)).sqrt()
}

#[test]
fn attacks_are_at_chance_on_null_data() {
    let (keep, obs) = gaussian_run(65, 20_000, &|_| 0.0, 1.0, 1);
    let probabilities = obs.mapv(|v| 1.0 / (1.0 + (-v).exp()));
    let results: Vec<(&str, Scored)> = vec![
        ("lira online", attack(&LiraConfig::online(), &keep, &obs)),
        (
            "lira online global",
            attack(
                &LiraConfig::online().with_global_variance(true),
                &keep,
                &obs,
            ),
        ),
        (
            "lira offline tail",
            attack(&LiraConfig::offline(), &keep, &obs),
        ),
        (
            "lira offline density",
            attack(&LiraConfig::offline_log_density(), &keep, &obs),
        ),
        (
            "global threshold",
            attack(&Threshold::global(), &keep, &obs),
        ),
        ("loss", attack(&Threshold::loss(), &keep, &obs)),
        (
            "rmia online",
            attack(&RmiaConfig::online(1.0), &keep, &probabilities),
        ),
        (
            "rmia offline",
            attack(&RmiaConfig::offline(1.0, 0.5), &keep, &probabilities),
        ),
    ];
    for (name, (scores, members)) in results {
        let auc = auroc(&scores, &members, Direction::HigherIsMember).unwrap();
        let se = null_auroc_se(&members);
        assert!(
            (auc - 0.5).abs() < 4.0 * se,
            "{name}: AUROC {auc} (se {se})"
        );
    }
}

#[test]
fn offline_tail_threshold_has_the_nominal_false_positive_rate() {
    let (keep, obs) = gaussian_run(129, 20_000, &|_| 0.0, 2.0, 2);
    let (scores, members) = attack(
        &LiraConfig::offline().with_global_variance(true),
        &keep,
        &obs,
    );
    let non_member_scores: Vec<f64> = scores
        .iter()
        .zip(&members)
        .filter(|(_, m)| !**m)
        .map(|(s, _)| *s)
        .collect();
    let n = non_member_scores.len() as f64;
    for alpha in [0.05, 0.01] {
        // score = -ln P[Z > x]: rejecting when score >= -ln(alpha) is a level-alpha test.
        let fpr = non_member_scores
            .iter()
            .filter(|&&s| s >= -f64::ln(alpha))
            .count() as f64
            / n;
        let se = (alpha * (1.0 - alpha) / n).sqrt();
        assert!(
            (fpr - alpha).abs() < 4.0 * se,
            "alpha {alpha}: fpr {fpr} (se {se})"
        );
    }
}

#[test]
fn online_lira_reaches_the_closed_form_auroc_despite_per_sample_offsets() {
    // IN ~ N(offset + 1, 1), OUT ~ N(offset, 1) with offsets ~ N(0, 2^2): the per-sample test
    // achieves Phi(d / sqrt 2); a global threshold cannot remove the offsets.
    let (keep, obs) = gaussian_run(129, 10_000, &|_| 1.0, 2.0, 3);
    let closed_form = Normal::standard().cdf(1.0 / 2f64.sqrt());
    let (scores, members) = attack(
        &LiraConfig::online().with_global_variance(true),
        &keep,
        &obs,
    );
    let lira = auroc(&scores, &members, Direction::HigherIsMember).unwrap();
    assert!(
        (lira - closed_form).abs() < 0.02,
        "LiRA {lira} vs {closed_form}"
    );
    let (scores, members) = attack(&LiraConfig::online(), &keep, &obs);
    let per_example = auroc(&scores, &members, Direction::HigherIsMember).unwrap();
    assert!(
        (per_example - closed_form).abs() < 0.03,
        "per-example {per_example} vs {closed_form}"
    );
    let (scores, members) = attack(&Threshold::global(), &keep, &obs);
    let global = auroc(&scores, &members, Direction::HigherIsMember).unwrap();
    let diluted = Normal::standard().cdf(1.0 / (2.0 * (1.0 + 4.0f64)).sqrt());
    assert!(
        (global - diluted).abs() < 0.02,
        "global threshold {global} vs {diluted}"
    );
}

#[test]
fn planner_predicts_the_shadow_models_the_leave_one_out_curve_needs() {
    // Two groups: strongly exposed samples (d = 3) and weakly exposed ones (d = 0.5).
    let half = 1000;
    let shift = |i: usize| if i < half { 3.0 } else { 0.5 };
    let (keep, obs) = gaussian_run(257, 2 * half, &shift, 1.0, 4);
    let groups = vec![
        EvalGroup {
            name: "strong".into(),
            samples: (0..half).collect(),
        },
        EvalGroup {
            name: "weak".into(),
            samples: (half..2 * half).collect(),
        },
    ];
    let config = LooConfig {
        shadow_counts: Some(vec![2, 4, 8, 16, 32, 64, 128, 256]),
        targets: Some((0..6).collect()),
        groups,
        seed: 5,
        ..Default::default()
    };
    let report = leave_one_out(
        &LiraConfig::online().with_global_variance(true),
        &keep,
        obs.view(),
        &config,
        |_, _| {},
    )
    .unwrap();

    let delta = 0.1;
    for (group, d) in [("strong", 3.0), ("weak", 0.5)] {
        let asymptote = Normal::standard().cdf(d / 2f64.sqrt());
        // Shadow models needed: the first count whose AUROC has 90% of the asymptotic edge.
        let rows = report.group(group);
        let needed = rows
            .iter()
            .find(|r| r.auroc >= 0.5 + 0.9 * (asymptote - 0.5))
            .map(|r| r.shadow_models as f64)
            .unwrap_or(f64::INFINITY);
        let predicted = models_needed(hellinger_sq_gaussian(d, 1.0, 0.0, 1.0), delta)
            .unwrap()
            .unwrap() as f64;
        let curve: Vec<(usize, f64)> = rows.iter().map(|r| (r.shadow_models, r.auroc)).collect();
        assert!(
            needed.is_finite() && (predicted / needed).log10().abs() <= 1.0,
            "{group}: planner {predicted}, leave-one-out needs {needed}; curve {curve:?}"
        );
        eprintln!(
            "{group}: planner {predicted} shadow models, leave-one-out curve reaches 90% of its edge at {needed}; {curve:?}"
        );
    }
    // The point of the paper: the exposed samples need far fewer models.
    let strong = models_needed(hellinger_sq_gaussian(3.0, 1.0, 0.0, 1.0), delta)
        .unwrap()
        .unwrap();
    let weak = models_needed(hellinger_sq_gaussian(0.5, 1.0, 0.0, 1.0), delta)
        .unwrap()
        .unwrap();
    assert!(weak >= 10 * strong);
}
