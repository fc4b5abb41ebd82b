//! DP-SGD audited: the one-run audit (Steinke, Nasr and Jagielski 2023) of memia's DP-SGD is
//! valid (its bound exceeds the claimed epsilon no more often than its error rate allows), has
//! power (it tells training without DP from epsilon 1), and catches a broken trainer (noise ten
//! times too small, accounted as if not).
//!
//! The canaries are crafted so that their gradients are isolated, the strongest black-box
//! canaries for a linear model: canary j is zero but for its own input coordinate (10.0), with
//! a random label; the base data (Gaussian classes) is zero on those coordinates. Each canary
//! is in the run with probability 1/2; the attack's score is LiRA's logit-scaled confidence of
//! the canary's label (higher is member).

use memia_core::Signal;
use memia_dp::{OneRunAudit, dp_sgd_epsilon};
use memia_models::{
    Device, DpConfig, Ensemble, Member, MlpConfig, ModelConfig, Optimizer, TrainingConfig,
};
use rand::RngExt;

const BASE: usize = 400;
const BASE_DIMS: usize = 16;
const CLASSES: usize = 4;
const DELTA: f64 = 1e-5;

/// Base samples then `canaries` canaries: features (row-major), labels, and the feature count.
fn data(canaries: usize) -> (Vec<f32>, Vec<u32>, usize) {
    let d = BASE_DIMS + canaries;
    let mut rng = memia_core::rng::stream_rng(2026, 1);
    let means: Vec<f32> = (0..CLASSES * BASE_DIMS)
        .map(|_| rng.random::<f32>() * 4.0 - 2.0)
        .collect();
    let mut x = vec![0f32; (BASE + canaries) * d];
    let mut y = Vec::with_capacity(BASE + canaries);
    for i in 0..BASE {
        let c = i % CLASSES;
        for k in 0..BASE_DIMS {
            let noise: f32 = rng.sample(rand_distr::StandardNormal);
            x[i * d + k] = means[c * BASE_DIMS + k] + noise;
        }
        y.push(c as u32);
    }
    for j in 0..canaries {
        x[(BASE + j) * d + BASE_DIMS + j] = 10.0;
        y.push(rng.random_range(0..CLASSES as u32));
    }
    (x, y, d)
}

/// Trains one logistic regression per seed, each on the base data and its own coin-flipped
/// half of the canaries, and audits each with the one-run audit. Returns the bounds and each
/// run's claimed epsilon.
fn audit_runs(
    canaries: usize,
    seeds: &[u64],
    dp: Option<DpConfig>,
    guesses: usize,
) -> Vec<(f64, f64)> {
    let (x, y, d) = data(canaries);
    let training = TrainingConfig {
        epochs: 10,
        batch_size: 50,
        learning_rate: 0.5,
        weight_decay: 0.0,
        optimizer: Optimizer::Sgd { momentum: 0.0 },
        dp,
        ..Default::default()
    };
    let (members, included): (Vec<Member>, Vec<Vec<bool>>) = seeds
        .iter()
        .map(|&seed| {
            let mut coins = memia_core::rng::stream_rng(seed, 7);
            let included: Vec<bool> = (0..canaries).map(|_| coins.random::<bool>()).collect();
            let train = (0..BASE)
                .chain((0..canaries).filter(|&j| included[j]).map(|j| BASE + j))
                .collect();
            (Member { seed, train }, included)
        })
        .unzip();
    let model = ModelConfig::Mlp(MlpConfig::logistic_regression());
    let mut ensemble = Ensemble::init(&model, &[d], CLASSES, seeds, &Device::flex()).unwrap();
    ensemble.train(&x, &y, &members, &training).unwrap();
    let logits = ensemble.predict(&x[BASE * d..]).unwrap();
    let audit = OneRunAudit::new(guesses, guesses, DELTA).unwrap();
    members
        .iter()
        .zip(&included)
        .zip(logits.chunks_exact(canaries * CLASSES))
        .map(|((member, included), logits)| {
            let scores: Vec<f64> = logits
                .chunks_exact(CLASSES)
                .zip(&y[BASE..])
                .map(|(z, &label)| Signal::Phi.of(z, label as usize))
                .collect();
            let bound = audit.run(&scores, included).unwrap();
            let claimed = match dp {
                Some(dp) => {
                    let noise = dp.noise_for(member.train.len(), &training).unwrap();
                    dp.epsilon_for(member.train.len(), noise, &training)
                        .unwrap()
                        .epsilon
                }
                None => f64::INFINITY,
            };
            (bound.epsilon, claimed)
        })
        .collect()
}

/// The smallest count c with P[Binomial(n, p) <= c] >= level.
fn binomial_upper_limit(n: u64, p: f64, level: f64) -> u64 {
    let mut pmf = (1.0 - p).powi(n as i32);
    let mut cdf = pmf;
    let mut c = 0;
    while cdf < level {
        pmf *= (n - c) as f64 / (c + 1) as f64 * p / (1.0 - p);
        c += 1;
        cdf += pmf;
    }
    c
}

#[test]
fn one_run_audits_of_dp_sgd_hold_and_have_power() {
    let started = std::time::Instant::now();
    let (canaries, guesses, reps) = (200, 20, 200u64);
    let confidence = 0.95;
    let limit = binomial_upper_limit(reps, 1.0 - confidence, 0.99);
    let mut largest_at_one = 0f64;
    for target in [1.0, 2.0, 4.0] {
        let seeds: Vec<u64> = (0..reps).map(|r| 1000 * target as u64 + r).collect();
        let dp = DpConfig::with_target_epsilon(1.0, target, DELTA);
        let runs = audit_runs(canaries, &seeds, Some(dp), guesses);
        let above = runs
            .iter()
            .filter(|(bound, claimed)| bound > claimed)
            .count() as u64;
        let largest = runs.iter().map(|r| r.0).fold(0f64, f64::max);
        let mean = runs.iter().map(|r| r.0).sum::<f64>() / reps as f64;
        println!(
            "claimed epsilon {target}: {above} of {reps} bounds above the claim (binomial 99% \
             upper limit at the audit's 5% error rate: {limit}); bounds mean {mean:.3}, largest {largest:.3}"
        );
        assert!(
            runs.iter().all(|r| r.1 <= target),
            "a run claims more than its target"
        );
        assert!(
            above <= limit,
            "{above} bounds above claimed epsilon {target}: limit {limit}"
        );
        if target == 1.0 {
            largest_at_one = largest;
        }
    }
    // Power: without DP, the same audit on the same canaries.
    let plain = audit_runs(canaries, &[1, 2, 3], None, guesses);
    let bounds: Vec<f64> = plain.iter().map(|r| r.0).collect();
    println!("without DP: bounds {bounds:.3?}, against {largest_at_one:.3} at most at epsilon 1");
    for bound in bounds {
        assert!(
            bound > largest_at_one,
            "no DP bound {bound} within the epsilon-1 runs' {largest_at_one}"
        );
    }
    println!("took {:.1} s", started.elapsed().as_secs_f64());
}

/// A DP-SGD whose noise is ten times too small, still claiming epsilon 1, is caught by the
/// one-run audit with 1,000 canaries.
#[test]
fn a_broken_dp_sgd_is_caught() {
    let canaries = 1000;
    let training_n = BASE + canaries / 2;
    let probe = TrainingConfig {
        epochs: 10,
        batch_size: 50,
        ..Default::default()
    };
    let (steps, rate) = DpConfig::steps_and_rate(training_n, &probe);
    let honest = memia_dp::noise_for_epsilon(rate, steps, DELTA, 1.0).unwrap();
    let claimed = dp_sgd_epsilon(rate, honest, steps, DELTA).unwrap().epsilon;
    let broken = DpConfig::with_noise(1.0, honest / 10.0, DELTA);
    let runs = audit_runs(canaries, &[5], Some(broken), 100);
    println!(
        "broken DP-SGD (noise {:.3} instead of {honest:.3}), claimed epsilon {claimed:.3}: \
         one-run bound {:.3}",
        honest / 10.0,
        runs[0].0
    );
    assert!(
        runs[0].0 > 1.0,
        "the broken trainer's bound {} is not above 1",
        runs[0].0
    );
}
