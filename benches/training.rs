//! Shadow-model training throughput (criterion): MLP 784-128-10, SGD with momentum, batch 128,
//! one epoch on 5,000-sample subsets of the MNIST test set, K = 8 models as one ensemble and one
//! by one, with memia's fused CPU kernels (the default on Flex) and with Burn's operations; and
//! the LeNet-style CNN step: 8 models, one epoch on 1,024-image halves of 2,048 CIFAR-10 images,
//! fused and with Burn's operations. The example `shadow_throughput` prints models/s and GFLOP/s
//! for K = 8 and 32 (`shadow_throughput cnn` for the CNN).

use std::path::PathBuf;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use memia::core::KeepMatrix;
use memia::data::Dataset;
use memia::data::idx::load_idx;
use memia::models::{Device, Engine, Ensemble, Member, MlpConfig, TrainingConfig};

fn bench_training(c: &mut Criterion) {
    let dir = std::env::var_os("MEMIA_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data"));
    let Ok(mnist) = load_idx(
        dir.join("mnist-t10k-images-idx3-ubyte.gz"),
        dir.join("mnist-t10k-labels-idx1-ubyte.gz"),
        "mnist",
        Some(10),
    ) else {
        eprintln!(
            "skipping: MNIST not found in {} (set MEMIA_DATA_DIR)",
            dir.display()
        );
        return;
    };
    let (n, d) = (mnist.len(), mnist.feature_len());
    let features = mnist.to_row_major();
    let labels = mnist.labels();
    let (k, model) = (8, MlpConfig::mlp(128));
    let config = TrainingConfig {
        epochs: 1,
        batch_size: 128,
        learning_rate: 0.05,
        ..Default::default()
    };
    let members = halves(k, n);
    let device = Device::default();
    let mut group = c.benchmark_group("train_mlp_784_128_10_k8");
    group.sample_size(10);
    group.throughput(Throughput::Elements(k as u64));
    for (name, size, engine) in [
        ("ensemble", k, Engine::Auto),
        ("one_by_one", 1, Engine::Auto),
        ("burn_ensemble", k, Engine::Burn),
        ("burn_one_by_one", 1, Engine::Burn),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                for chunk in members.chunks(size) {
                    let seeds: Vec<u64> = chunk.iter().map(|m| m.seed).collect();
                    let mut e = Ensemble::init(&model.clone().into(), &[d], 10, &seeds, &device)
                        .unwrap()
                        .with_engine(engine);
                    e.train(&features, &labels, chunk, &config).unwrap();
                }
            })
        });
    }
    group.finish();
}

fn bench_cnn(c: &mut Criterion) {
    let dir = std::env::var_os("MEMIA_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data"));
    let Ok(cifar) = memia::data::cifar::load_cifar10(&[dir.join("cifar10-test-jpeg.bin.gz")])
    else {
        eprintln!(
            "skipping: CIFAR-10 not found in {} (set MEMIA_DATA_DIR)",
            dir.display()
        );
        return;
    };
    let n = 2048;
    let features = cifar.to_row_major()[..n * 3072].to_vec();
    let labels = cifar.labels()[..n].to_vec();
    let k = 8;
    let model: memia::models::ModelConfig = memia::models::CnnConfig::lenet().into();
    let config = TrainingConfig {
        epochs: 1,
        batch_size: 128,
        learning_rate: 0.05,
        ..Default::default()
    };
    let members = halves(k, n);
    let device = Device::default();
    let mut group = c.benchmark_group("train_cnn_lenet_cifar_k8");
    group.sample_size(10);
    group.throughput(Throughput::Elements(k as u64));
    for (name, engine) in [("ensemble", Engine::Auto), ("burn_ensemble", Engine::Burn)] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let seeds: Vec<u64> = members.iter().map(|m| m.seed).collect();
                let mut e = Ensemble::init(&model, &[3, 32, 32], 10, &seeds, &device)
                    .unwrap()
                    .with_engine(engine);
                e.train(&features, &labels, &members, &config).unwrap();
            })
        });
    }
    group.finish();
}

/// K models, each with its own half of the n samples (a fixed-size keep matrix, seed 1).
fn halves(k: usize, n: usize) -> Vec<Member> {
    let keep = KeepMatrix::fixed_size(k, n, 0.5, 1).unwrap();
    (0..k)
        .map(|m| Member {
            seed: m as u64,
            train: (0..n).filter(|&i| keep.get(m, i)).collect(),
        })
        .collect()
}

criterion_group!(benches, bench_training, bench_cnn);
criterion_main!(benches);
