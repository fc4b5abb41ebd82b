//! Memorization estimates for 256 models x 1,000,000 samples (0/1 correctness as f32):
//! one pass over 1 GiB of outcomes and 256 MB of keep matrix.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use memia::core::KeepMatrix;
use memia::core::rng::stream_rng;
use memia::memorization::MemorizationConfig;
use ndarray::Array2;
use rand::RngExt;

fn bench_memorization(c: &mut Criterion) {
    let (k, n) = (256, 1_000_000);
    let keep = KeepMatrix::bernoulli(k, n, 0.5, 3).unwrap();
    let mut rng = stream_rng(3, 1 << 40);
    let correct = Array2::from_shape_fn((k, n), |(m, i)| {
        let p = if keep.get(m, i) { 0.95 } else { 0.8 };
        if rng.random::<f64>() < p { 1.0f32 } else { 0.0 }
    });
    let config = MemorizationConfig::default();
    let mut group = c.benchmark_group("memorization");
    group.sample_size(10);
    group.throughput(Throughput::Elements((k * n) as u64));
    group.bench_function("256x1000000", |b| {
        b.iter(|| config.estimate(&keep, correct.view()).unwrap())
    });
    group.finish();
}

criterion_group!(benches, bench_memorization);
criterion_main!(benches);
