//! AUROC and ROC-curve throughput on fixed synthetic scores (10^6 and 10^7 samples).
//!
//! `cargo bench --bench metrics`; the sklearn comparison is in docs/PERFORMANCE.md.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use memia::core::rng::stream_rng;
use memia::metrics::{Direction, RocCurve, auroc};
use rand::RngExt;
use rand_distr::StandardNormal;

/// Gaussian scores, members shifted by 0.5: the same inputs every run.
fn scores(n: usize) -> (Vec<f64>, Vec<bool>) {
    let mut rng = stream_rng(42, n as u64);
    let members: Vec<bool> = (0..n).map(|_| rng.random::<bool>()).collect();
    let scores = members
        .iter()
        .map(|&m| rng.sample::<f64, _>(StandardNormal) + if m { 0.5 } else { 0.0 })
        .collect();
    (scores, members)
}

fn bench_auroc(c: &mut Criterion) {
    let mut group = c.benchmark_group("auroc");
    group.sample_size(10);
    for n in [1_000_000usize, 10_000_000] {
        let (s, m) = scores(n);
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| auroc(&s, &m, Direction::HigherIsMember).unwrap())
        });
    }
    group.finish();

    let mut group = c.benchmark_group("roc_curve");
    group.sample_size(10);
    let n = 1_000_000;
    let (s, m) = scores(n);
    group.throughput(Throughput::Elements(n as u64));
    group.bench_function(BenchmarkId::from_parameter(n), |b| {
        b.iter(|| {
            RocCurve::new(&s, &m, Direction::HigherIsMember)
                .unwrap()
                .auc()
        })
    });
    group.finish();
}

criterion_group!(benches, bench_auroc);
criterion_main!(benches);
