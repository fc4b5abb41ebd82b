//! The sequential audit's decisions on generated outputs with a known answer: the error they
//! claim is the error they make, and the audit stops early for memorized samples, near the
//! budget planner's count.

use memia_attacks::sequential::SequentialConfig;
use memia_core::rng::stream_rng;
use memia_core::{KeepMatrix, Logits};
use ndarray::{Array2, Array3, Array4};
use rand::RngExt;
use rand_distr::StandardNormal;

/// Signals of `models` shadow models and `targets` target models on `n` samples: IN ~ N(gap, 1),
/// OUT ~ N(0, 1), with one gap for even samples and another for odd ones; rows `0..models` are the shadows, each sample IN for half of them (and for half
/// of the targets).
fn signals(
    models: usize,
    targets: usize,
    n: usize,
    (gap_even, gap_odd): (f64, f64),
    seed: u64,
) -> (KeepMatrix, Array3<f64>) {
    let shadows = KeepMatrix::balanced(models, n, seed).unwrap();
    let others = KeepMatrix::balanced(targets, n, seed + 1).unwrap();
    let both = ndarray::concatenate(
        ndarray::Axis(0),
        &[shadows.as_array().view(), others.as_array().view()],
    )
    .unwrap();
    let keep = KeepMatrix::from_array(both).unwrap();
    let mut rng = stream_rng(seed, 7);
    let phi = Array3::from_shape_fn((models + targets, n, 1), |(m, i, _)| {
        let noise: f64 = rng.sample(StandardNormal);
        let gap = if i % 2 == 0 { gap_even } else { gap_odd };
        noise + if keep.get(m, i) { gap } else { 0.0 }
    });
    (keep, phi)
}

/// Over many (target, sample) pairs, the fraction of wrong decisions is within the expected
/// error the decisions claim (binomial slack of 4 standard errors), at every shadow-model
/// count and separation, and for candidates of two kinds mixed: the claim is not optimistic
/// where it matters, with few models.
#[test]
fn the_claimed_error_is_the_error_made() {
    let config = SequentialConfig::default();
    for gap in [(1.0, 1.0), (2.0, 2.0), (3.0, 3.0), (5.0, 5.0), (1.0, 6.0)] {
        for shadows in [4usize, 8, 16, 64] {
            let targets = 40;
            let n = 500;
            let (keep, phi) = signals(shadows, targets, n, gap, 100 + shadows as u64);
            let shadow_rows: Vec<usize> = (0..shadows).collect();
            let shadow_keep = keep.select_models(&shadow_rows).unwrap();
            let shadow_phi = phi.slice(ndarray::s![..shadows, .., ..]);
            let samples: Vec<usize> = (0..n).collect();
            let (mut wrong, mut claimed, mut decided) = (0usize, 0.0, 0usize);
            for t in shadows..shadows + targets {
                let target: Array2<f64> = phi.index_axis(ndarray::Axis(0), t).to_owned();
                let decisions = config
                    .decide(&shadow_keep, shadow_phi, target.view(), &samples)
                    .unwrap();
                for d in decisions {
                    decided += 1;
                    claimed += d.error;
                    wrong += usize::from(d.member != keep.get(t, d.sample));
                }
            }
            assert_eq!(decided, targets * n, "gap {gap:?}, {shadows} shadows");
            let claimed = claimed / decided as f64;
            let realized = wrong as f64 / decided as f64;
            eprintln!(
                "gaps {gap:?}, {shadows:>2} shadows: {realized:.4} wrong, {claimed:.4} claimed"
            );
            let slack = 4.0 * (claimed * (1.0 - claimed) / decided as f64).sqrt() + 1e-4;
            assert!(
                realized <= claimed + slack,
                "gap {gap:?}, {shadows} shadows: {realized:.4} wrong, {claimed:.4} claimed"
            );
            // And not uselessly cautious either: within a factor of two of the truth once there
            // is something to estimate.
            if realized > 0.01 {
                assert!(
                    claimed < 2.0 * realized,
                    "gap {gap:?}, {shadows} shadows: {realized:.4} wrong, {claimed:.4} claimed"
                );
            }
        }
    }
}

/// Logits of `k` models on `n` samples: samples `0..memorized` are right only when trained on
/// (phi about +gap/2 IN, -gap/2 OUT), the others are learned by every model.
fn memorized_run(
    k: usize,
    n: usize,
    memorized: usize,
    gap: f32,
    seed: u64,
) -> (KeepMatrix, Logits) {
    let keep = KeepMatrix::balanced(k, n, seed).unwrap();
    let mut rng = stream_rng(seed, 3);
    let logits = Array4::from_shape_fn((k, n, 1, 2), |(m, i, _, c)| {
        let noise: f32 = rng.sample(StandardNormal);
        let phi = if i < memorized {
            if keep.get(m, i) {
                gap / 2.0
            } else {
                -gap / 2.0
            }
        } else {
            3.0
        } + noise;
        // Two classes, label 0: phi = z_0 - z_1.
        if c == 0 { phi } else { 0.0 }
    });
    (keep, Logits::new(logits).unwrap())
}

/// Rounds of 1, 2, 4, ... shadow models until the decisions are confident: the shadow-model
/// count it stopped at, and that round.
fn sequential(
    config: &SequentialConfig,
    keep: &KeepMatrix,
    logits: &Logits,
    labels: &[u32],
    target: usize,
    budget: usize,
) -> (usize, memia_attacks::sequential::Round) {
    let others: Vec<usize> = (0..keep.models()).filter(|&m| m != target).collect();
    let mut shadows = 1;
    loop {
        let used = &others[..shadows.min(budget)];
        let round = config
            .round(
                &keep.select_models(used).unwrap(),
                &logits.select_models(used).unwrap(),
                labels,
                &logits.select_models(&[target]).unwrap(),
            )
            .unwrap();
        if round.confident || used.len() == budget {
            return (used.len(), round);
        }
        shadows *= 2;
    }
}

#[test]
fn it_stops_early_for_memorized_samples_near_the_planners_count() {
    let labels = vec![0u32; 1000];
    let config = SequentialConfig {
        delta: 0.01,
        ..Default::default()
    };
    // Strongly memorized samples (IN and OUT 8 standard deviations apart): 4 models, the first
    // round that can pool a spread, and the planner's 2 (1 per side) is within a factor of 2.
    let (keep, logits) = memorized_run(129, 1000, 200, 8.0, 1);
    let (used, round) = sequential(&config, &keep, &logits, &labels, 128, 128);
    assert_eq!(used, 4, "{round:?}");
    assert!(round.confident && round.expected_error_rate <= 0.01);
    let planned = round.planner_median.unwrap();
    assert!((used as f64) <= 2.0 * planned.max(2.0), "planner {planned}");
    // Less separated (5 standard deviations, Bayes error of one observation 0.6%): more
    // models, still far fewer than the budget, and near the planner's count.
    let (keep, logits) = memorized_run(129, 1000, 300, 5.0, 2);
    let (used, round) = sequential(&config, &keep, &logits, &labels, 128, 128);
    assert!(round.confident, "{round:?}");
    assert!((4..=32).contains(&used), "stopped at {used}");
    let planned = round.planner_median.unwrap();
    assert!(
        (used as f64) <= 4.0 * planned && (used as f64) >= planned / 4.0,
        "stopped at {used}, planner {planned}"
    );
    // Its decisions are right as often as it says: the target's true membership.
    let wrong = round
        .decisions
        .iter()
        .filter(|d| d.member != keep.get(128, d.sample))
        .count();
    let n = round.decisions.len() as f64;
    let slack = 4.0 * (round.expected_error_rate / n).sqrt() + 1.0 / n;
    assert!(
        (wrong as f64 / n) <= round.expected_error_rate + slack,
        "{wrong} wrong of {n}, claimed {}",
        round.expected_error_rate
    );
    // The candidates are the memorized samples.
    assert!(round.decisions.iter().all(|d| d.sample < 300));
    assert!(round.candidates >= 250, "{}", round.candidates);
}

/// Samples that are not separable enough for the error asked (IN and OUT 2 standard deviations
/// apart: one observation is wrong 16% of the time) never make the audit confident: it runs to
/// its budget and says so, rather than claiming what the data cannot support.
#[test]
fn inseparable_candidates_run_to_the_budget() {
    let labels = vec![0u32; 600];
    let (keep, logits) = memorized_run(65, 600, 300, 2.0, 3);
    // Memorization of these samples is about 0.68 (Phi(1) - Phi(-1)): candidates at 0.5.
    let config = SequentialConfig {
        delta: 0.01,
        threshold: 0.5,
    };
    let (used, round) = sequential(&config, &keep, &logits, &labels, 64, 64);
    assert_eq!(used, 64);
    assert!(!round.confident);
    assert!(
        round.expected_error_rate > 0.05,
        "{}",
        round.expected_error_rate
    );
}

#[test]
fn bad_settings_and_shapes_are_refused() {
    let (keep, logits) = memorized_run(5, 50, 10, 8.0, 4);
    let labels = vec![0u32; 50];
    let shadows = keep.select_models(&[1, 2, 3, 4]).unwrap();
    let shadow_logits = logits.select_models(&[1, 2, 3, 4]).unwrap();
    for (delta, threshold) in [(0.0, 0.8), (0.5, 0.8), (f64::NAN, 0.8), (0.01, 1.5)] {
        let err = SequentialConfig { delta, threshold }
            .round(
                &shadows,
                &shadow_logits,
                &labels,
                &logits.select_models(&[0]).unwrap(),
            )
            .unwrap_err();
        assert!(err.to_string().contains("invalid"), "{err}");
    }
    let err = SequentialConfig::default()
        .round(
            &shadows,
            &shadow_logits,
            &labels,
            &logits.select_models(&[0, 1]).unwrap(),
        )
        .unwrap_err();
    assert!(err.to_string().contains("target"), "{err}");
}
