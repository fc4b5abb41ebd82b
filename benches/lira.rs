//! LiRA online (per-example variance, median) for 256 shadow models x 1,000,000 samples,
//! one query: fit and score. The target is under 2 s on the 2-core machine.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use memia::attacks::{FittedTest, LiraConfig, MembershipTest};
use memia::core::KeepMatrix;
use memia::core::rng::stream_rng;
use ndarray::{Array2, Array3};
use rand::RngExt;
use rand_distr::StandardNormal;

fn bench_lira(c: &mut Criterion) {
    let (k, n) = (256, 1_000_000);
    let keep = KeepMatrix::balanced(k, n, 1).unwrap();
    let mut rng = stream_rng(1, 1 << 40);
    let shadow = Array3::from_shape_fn((k, n, 1), |(m, i, _)| {
        rng.sample::<f64, _>(StandardNormal) + if keep.get(m, i) { 1.0 } else { 0.0 }
    });
    let target = Array2::from_shape_fn((n, 1), |_| rng.sample::<f64, _>(StandardNormal));
    let mut group = c.benchmark_group("lira_online");
    group.sample_size(10);
    group.throughput(Throughput::Elements((k * n) as u64));
    group.bench_function("256x1000000_fit_and_score", |b| {
        b.iter(|| {
            let fitted = LiraConfig::online().fit(&keep, shadow.view()).unwrap();
            fitted.score(target.view()).unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, bench_lira);
criterion_main!(benches);
