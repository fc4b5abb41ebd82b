//! Signal extraction throughput: LiRA's `phi` (and the other signals) over a
//! 64 models x 50,000 samples x 10 classes logit array, as a CIFAR-10-sized audit produces.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use memia::core::rng::stream_rng;
use memia::core::{Logits, Signal};
use ndarray::Array4;
use rand::RngExt;
use rand_distr::StandardNormal;

fn bench_signals(c: &mut Criterion) {
    let (k, n, a, classes) = (64, 50_000, 1, 10);
    let mut rng = stream_rng(7, 0);
    let logits = Logits::new(Array4::from_shape_simple_fn((k, n, a, classes), || {
        4.0 * rng.sample::<f32, _>(StandardNormal)
    }))
    .unwrap();
    let labels: Vec<u32> = (0..n as u32).map(|i| i % classes as u32).collect();

    let mut group = c.benchmark_group("signals_64x50000x10");
    group.sample_size(10);
    group.throughput(Throughput::Elements((k * n * a) as u64));
    for signal in [
        Signal::Phi,
        Signal::PhiReference,
        Signal::Hinge,
        Signal::Correct,
    ] {
        group.bench_function(signal.name(), |b| {
            b.iter(|| logits.signals(&labels, signal).unwrap())
        });
    }
    group.finish();
}

criterion_group!(benches, bench_signals);
criterion_main!(benches);
