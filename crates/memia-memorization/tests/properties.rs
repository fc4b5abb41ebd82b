//! Statistical behaviour on data with a known structure.
//!
//! A 1-nearest-neighbour classifier is a real learner that memorizes its whole training set
//! (it is always right on a training sample), so on long-tailed data its label memorization is
//! high exactly where Feldman's theory says: on singletons and rare subpopulations, whose OUT
//! models have no similar sample to copy the label from.

use memia_core::KeepMatrix;
use memia_core::rng::stream_rng;
use memia_memorization::MemorizationConfig;
use memia_metrics::spearman;
use ndarray::Array2;
use rand::RngExt;
use rand_distr::StandardNormal;

/// Long-tailed data after Feldman's model: subpopulation s has frequency
/// `max(1, round(60 / (s + 1)))` (Zipf), a random centre in 8 dimensions and a random label
/// among 5 classes; samples are the centre plus small noise.
fn long_tail(seed: u64) -> (Array2<f64>, Vec<usize>, Vec<usize>) {
    let mut rng = stream_rng(seed, 0);
    let (dims, subpops, classes) = (8, 120, 5);
    let (mut rows, mut labels, mut freq) = (Vec::new(), Vec::new(), Vec::new());
    for s in 0..subpops {
        let f = ((60.0 / (s as f64 + 1.0)).round() as usize).max(1);
        let centre: Vec<f64> = (0..dims)
            .map(|_| rng.sample::<f64, _>(StandardNormal) * 4.0)
            .collect();
        let label = rng.random_range(0..classes);
        for _ in 0..f {
            rows.extend(
                centre
                    .iter()
                    .map(|c| c + rng.sample::<f64, _>(StandardNormal) * 0.3),
            );
            labels.push(label);
            freq.push(f);
        }
    }
    let n = labels.len();
    (
        Array2::from_shape_vec((n, dims), rows).unwrap(),
        labels,
        freq,
    )
}

/// Squared Euclidean distances between all samples.
fn distances(x: &Array2<f64>) -> Array2<f64> {
    let n = x.nrows();
    Array2::from_shape_fn((n, n), |(i, j)| {
        (&x.row(i) - &x.row(j)).mapv(|v| v * v).sum()
    })
}

/// Correctness of a 1-NN classifier trained on the samples with `train[i]`, on every sample.
fn one_nn_correct(dist: &Array2<f64>, labels: &[usize], train: &[bool]) -> Vec<f32> {
    let n = labels.len();
    (0..n)
        .map(|i| {
            let nearest = (0..n)
                .filter(|&j| train[j])
                .min_by(|&a, &b| dist[[i, a]].total_cmp(&dist[[i, b]]))
                .unwrap();
            (labels[nearest] == labels[i]) as u8 as f32
        })
        .collect()
}

#[test]
fn rare_subpopulations_are_memorized_and_frequent_ones_are_not() {
    let (x, labels, freq) = long_tail(1);
    let n = labels.len();
    let models = 24;
    let keep = KeepMatrix::fixed_size(models, n, 0.7, 2).unwrap();
    let dist = distances(&x);
    let mut correct = Array2::<f32>::zeros((models, n));
    for k in 0..models {
        let train: Vec<bool> = keep.row(k).to_vec();
        correct
            .row_mut(k)
            .assign(&ndarray::Array1::from(one_nn_correct(
                &dist, &labels, &train,
            )));
    }
    let mem = MemorizationConfig::default()
        .allow_missing()
        .estimate(&keep, correct.view())
        .unwrap();

    let mean_where = |pred: &dyn Fn(usize) -> bool| {
        let v: Vec<f64> = (0..n)
            .filter(|&i| pred(freq[i]) && mem.is_defined(i))
            .map(|i| mem.score[i])
            .collect();
        v.iter().sum::<f64>() / v.len() as f64
    };
    let singletons = mean_where(&|f| f == 1);
    let rare = mean_where(&|f| (2..=3).contains(&f));
    let frequent = mean_where(&|f| f >= 20);
    // Expected: a singleton's OUT model copies a random other cluster's label (right 1 time in
    // 5): mem ~ 0.8. A pair member is exposed only when its twin is also OUT (30%): ~ 0.24; a
    // triple ~ 0.07. Frequent subpopulations always have a twin in the training set: ~ 0.
    assert!(singletons > 0.6, "singletons {singletons}");
    assert!(rare > 0.1 && rare < singletons, "rare {rare}");
    assert!(frequent.abs() < 0.05, "frequent {frequent}");

    // A rank test over all samples: the rarer the subpopulation, the higher the memorization.
    let defined: Vec<usize> = (0..n).filter(|&i| mem.is_defined(i)).collect();
    let f: Vec<f64> = defined.iter().map(|&i| freq[i] as f64).collect();
    let m: Vec<f64> = defined.iter().map(|&i| mem.score[i]).collect();
    let rho = spearman(&f, &m).unwrap();
    assert!(rho.statistic < -0.5 && rho.p_value < 1e-10, "{rho:?}");
}

#[test]
fn standard_errors_shrink_like_one_over_sqrt_k() {
    // Simulated outcomes with known per-sample rates; quadrupling K halves the error.
    let n = 2000;
    let median_se = |models: usize| {
        let keep = KeepMatrix::balanced(models, n, 5).unwrap();
        let mut rng = stream_rng(6, models as u64);
        let correct = Array2::from_shape_fn((models, n), |(k, i)| {
            let p = if keep.get(k, i) {
                0.9
            } else {
                0.3 + 0.5 * (i as f64 / n as f64)
            };
            (rng.random::<f64>() < p) as u8 as f32
        });
        let mem = MemorizationConfig::default()
            .estimate(&keep, correct.view())
            .unwrap();
        let mut se: Vec<f64> = mem
            .std_error
            .iter()
            .copied()
            .filter(|v| v.is_finite())
            .collect();
        se.sort_by(f64::total_cmp);
        se[se.len() / 2]
    };
    let (se16, se64, se256) = (median_se(16), median_se(64), median_se(256));
    for (ratio, name) in [(se16 / se64, "16/64"), (se64 / se256, "64/256")] {
        assert!(
            (ratio - 2.0).abs() < 0.25,
            "{name}: ratio {ratio} (se {se16} {se64} {se256})"
        );
    }
}
