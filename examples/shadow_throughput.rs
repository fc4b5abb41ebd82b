//! Shadow-model training throughput: an MLP 784-128-10, SGD with momentum, batch 128, one epoch
//! on 5,000-sample subsets of the MNIST test set, for K = 8 and K = 32 models, trained as one
//! batched ensemble and one by one. Prints models/s and GFLOP/s (6 x batch x multiply-adds per
//! model-step: forward, and the two products of the backward pass).
//!
//! With `cnn` as the first argument, the convolutional workload instead: memia's LeNet-style CNN
//! (5x5 "same" convolutions of 6 and 16 channels, 2x2 max pooling, dense 1024-120-84-10) on 5,000
//! CIFAR-10 images (`cifar10-test-jpeg.bin.gz`), each model one epoch on its 2,500-image half
//! (SGD momentum 0.9, rate 0.05, batch 128) and then its logits on the 5,000 images, as
//! `benches/python/cnn_torch.py` measures PyTorch; GFLOP/s = 2 x multiply-adds x (3 per training
//! sample + 1 per inferred one).
//!
//! With `resnet`, memia's small ResNet (`ResNetConfig::small`: a 3x3 stem of 16 channels, one
//! residual block per stage of 16, 32 and 64 channels, global average pooling) on 2,000 CIFAR-10
//! images the same way (1,000-image halves, K = 8), as `benches/python/cnn_torch.py resnet`.
//!
//! With `dp`, the MLP workload trained with DP-SGD (Poisson sampling at 128 / 5,000, clipping to
//! norm 1.0, noise multiplier 1.1), K = 8, as `benches/python/opacus_dp.py` measures Opacus.
//!
//! Run: `cargo run --release --example shadow_throughput [cnn|resnet|dp] [DATA_DIR]` (default
//! `$MEMIA_DATA_DIR`, then `../shared/data`). `BURN_DEVICE` selects the Burn device (default Flex).

use std::path::PathBuf;
use std::time::Instant;

use memia::core::KeepMatrix;
use memia::data::Dataset;
use memia::data::cifar::load_cifar10;
use memia::data::idx::load_idx;
use memia::models::{
    CnnConfig, Device, DpConfig, Engine, Ensemble, Member, MlpConfig, ModelConfig, ModelError,
    ResNetConfig, TrainingConfig,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let images = match args.first().map(String::as_str) {
        Some("cnn") => Some(("cnn", 5000, vec![8, 32])),
        Some("resnet") => Some(("resnet", 2000, vec![8])),
        _ => None,
    };
    let dp = args.first().map(String::as_str) == Some("dp");
    if images.is_some() || dp {
        args.remove(0);
    }
    let dir = args
        .first()
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("MEMIA_DATA_DIR").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("../shared/data"));
    if let Some((model, n, ks)) = images {
        return image_workload(&dir, model, n, &ks);
    }
    let mnist = load_idx(
        dir.join("mnist-t10k-images-idx3-ubyte.gz"),
        dir.join("mnist-t10k-labels-idx1-ubyte.gz"),
        "mnist",
        Some(10),
    )?;
    let (n, d) = (mnist.len(), mnist.feature_len());
    let features = mnist.to_row_major();
    let labels = mnist.labels();
    let model = MlpConfig::mlp(128);
    let config = TrainingConfig {
        epochs: 1,
        batch_size: 128,
        learning_rate: 0.05,
        dp: dp.then(|| DpConfig::with_noise(1.0, 1.1, 1e-5)),
        ..Default::default()
    };
    let device = Device::default();
    println!(
        "device {device:?}; MLP {d}-128-10, batch 128, 1 epoch on 5,000-sample subsets of MNIST test ({n} samples){}",
        if dp {
            "; DP-SGD: Poisson sampling, clip 1.0, noise 1.1"
        } else {
            ""
        }
    );
    print_header();
    let ks: &[usize] = if dp { &[8] } else { &[8, 32] };
    for &k in ks {
        let members = halves(k, n)?;
        let steps: usize = members.iter().map(|m| m.train.len().div_ceil(128)).sum();
        let flops = 6.0 * 128.0 * model.forward_macs(d, 10) as f64 * steps as f64;
        // (engine, models per ensemble): memia's default (the fused CPU kernels on Flex), then
        // Burn's tensor operations for comparison.
        let mut modes = vec![(Engine::Auto, k)];
        if k != 8 {
            modes.push((Engine::Auto, 8));
        }
        modes.push((Engine::Auto, 1));
        if !dp && Engine::Auto.uses_fused_kernels(&model.clone().into(), &device) {
            modes.extend([(Engine::Burn, 8), (Engine::Burn, 1)]);
        }
        let train = |engine: Engine, chunk: &[Member]| -> Result<bool, ModelError> {
            let seeds: Vec<u64> = chunk.iter().map(|m| m.seed).collect();
            let mut ensemble = Ensemble::init(&model.clone().into(), &[d], 10, &seeds, &device)?
                .with_engine(engine);
            ensemble.train(&features, &labels, chunk, &config)?;
            Ok(ensemble.uses_fused_kernels())
        };
        for (engine, group) in modes {
            // Not timed: two steps of one group, so that a GPU backend compiles (and tunes)
            // its kernels for this group size first.
            let warm: Vec<Member> = members[..group]
                .iter()
                .map(|m| Member {
                    seed: m.seed,
                    train: m.train[..256].to_vec(),
                })
                .collect();
            train(engine, &warm)?;
            let start = Instant::now();
            let mut fused = false;
            for chunk in members.chunks(group) {
                fused = train(engine, chunk)?;
            }
            print_row(k, fused, group, start.elapsed().as_secs_f64(), flops);
        }
    }
    Ok(())
}

/// The CNN or ResNet workload on `n` CIFAR-10 images for each K of `ks` (see the module
/// documentation).
fn image_workload(
    dir: &std::path::Path,
    name: &str,
    n: usize,
    ks: &[usize],
) -> Result<(), Box<dyn std::error::Error>> {
    let cifar = load_cifar10(&[dir.join("cifar10-test-jpeg.bin.gz")])?;
    let features = cifar.to_row_major()[..n * 3072].to_vec();
    let labels = cifar.labels()[..n].to_vec();
    let (model, macs, title): (ModelConfig, usize, &str) = if name == "resnet" {
        let net = ResNetConfig::small();
        let macs = net.forward_macs([3, 32, 32], 10);
        (
            net.into(),
            macs,
            "ResNet 3x32x32 -> 16 (3x3 stem) -> blocks of 16, 32, 64 channels -> 10",
        )
    } else {
        let cnn = CnnConfig::lenet();
        let macs = cnn.forward_macs([3, 32, 32], 10);
        (
            cnn.into(),
            macs,
            "LeNet-style CNN 3x32x32 -> 6, 16 channels (5x5) -> 120-84-10",
        )
    };
    let config = TrainingConfig {
        epochs: 1,
        batch_size: 128,
        learning_rate: 0.05,
        ..Default::default()
    };
    let device = Device::default();
    let macs = macs as f64;
    println!(
        "device {device:?}; {title}, batch 128, 1 epoch on {}-image halves of {n} CIFAR-10 images, then logits on all {n}",
        n / 2
    );
    print_header();
    for &k in ks {
        let members = halves(k, n)?;
        let trained: usize = members.iter().map(|m| m.train.len()).sum();
        let flops = 2.0 * macs * (3.0 * trained as f64 + (k * n) as f64);
        let mut modes = vec![(Engine::Auto, 8), (Engine::Auto, 1)];
        if k == 8 {
            modes.push((Engine::Burn, 8));
        }
        for (engine, group) in modes {
            let start = Instant::now();
            let mut fused = false;
            for chunk in members.chunks(group) {
                let seeds: Vec<u64> = chunk.iter().map(|m| m.seed).collect();
                let mut ensemble =
                    Ensemble::init(&model, &[3, 32, 32], 10, &seeds, &device)?.with_engine(engine);
                ensemble.train(&features, &labels, chunk, &config)?;
                ensemble.predict(&features)?;
                fused = ensemble.uses_fused_kernels();
            }
            print_row(k, fused, group, start.elapsed().as_secs_f64(), flops);
        }
    }
    Ok(())
}

/// K models, each with its own half of the n samples (a fixed-size keep matrix, seed 1) and its
/// index as its seed.
fn halves(k: usize, n: usize) -> Result<Vec<Member>, Box<dyn std::error::Error>> {
    let keep = KeepMatrix::fixed_size(k, n, 0.5, 1)?;
    Ok((0..k)
        .map(|m| Member {
            seed: m as u64,
            train: (0..n).filter(|&i| keep.get(m, i)).collect(),
        })
        .collect())
}

/// The table's header.
fn print_header() {
    println!(
        "{:>4} {:>6} {:>13} {:>9} {:>10} {:>9}",
        "K", "engine", "mode", "seconds", "models/s", "GFLOP/s"
    );
}

/// One row: K models trained in groups of `group` in `secs`, `flops` floating-point operations.
fn print_row(k: usize, fused: bool, group: usize, secs: f64, flops: f64) {
    let mode = match group {
        1 => "one by one".to_string(),
        g => format!("groups of {g}"),
    };
    let engine = if fused { "fused" } else { "burn" };
    println!(
        "{k:>4} {engine:>6} {mode:>13} {secs:>9.2} {:>10.2} {:>9.1}",
        k as f64 / secs,
        flops / secs / 1e9
    );
}
