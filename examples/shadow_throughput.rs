//! Shadow-model training throughput: an MLP 784-128-10, SGD with momentum, batch 128, one epoch
//! on 5,000-sample subsets of the MNIST test set, for K = 8 and K = 32 models, trained as one
//! batched ensemble and one by one. Prints models/s and GFLOP/s (6 x batch x multiply-adds per
//! model-step: forward, and the two products of the backward pass).
//!
//! Run: `cargo run --release --example shadow_throughput [DATA_DIR]` (default `$MEMIA_DATA_DIR`,
//! then `../shared/data`). `BURN_DEVICE` selects the Burn device (default Flex).

use std::path::PathBuf;
use std::time::Instant;

use memia::core::KeepMatrix;
use memia::data::Dataset;
use memia::data::idx::load_idx;
use memia::models::{Device, Ensemble, Member, MlpConfig, TrainingConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("MEMIA_DATA_DIR").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("../shared/data"));
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
        ..Default::default()
    };
    let device = Device::default();
    println!(
        "device {device:?}; MLP {d}-128-10, batch 128, 1 epoch on 5,000-sample subsets of MNIST test ({n} samples)"
    );
    println!(
        "{:>4} {:>12} {:>10} {:>10} {:>9}",
        "K", "mode", "seconds", "models/s", "GFLOP/s"
    );
    for k in [8usize, 32] {
        let keep = KeepMatrix::fixed_size(k, n, 0.5, 1)?;
        let members: Vec<Member> = (0..k)
            .map(|m| Member {
                seed: m as u64,
                train: (0..n).filter(|&i| keep.get(m, i)).collect(),
            })
            .collect();
        let steps: usize = members.iter().map(|m| m.train.len().div_ceil(128)).sum();
        let flops = 6.0 * 128.0 * model.forward_macs(d, 10) as f64 * steps as f64;
        let modes: Vec<(String, usize)> = [k, 8, 1]
            .into_iter()
            .filter(|&g| g <= k)
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .rev()
            .map(|g| {
                (
                    if g == 1 {
                        "one-by-one".to_string()
                    } else {
                        format!("groups of {g}")
                    },
                    g,
                )
            })
            .collect();
        for (mode, group) in modes {
            let start = Instant::now();
            for chunk in members.chunks(group) {
                let seeds: Vec<u64> = chunk.iter().map(|m| m.seed).collect();
                let mut ensemble =
                    Ensemble::init(&model.clone().into(), &[d], 10, &seeds, &device)?;
                ensemble.train(&features, &labels, chunk, &config)?;
            }
            let secs = start.elapsed().as_secs_f64();
            println!(
                "{k:>4} {mode:>12} {secs:>10.2} {:>10.2} {:>9.1}",
                k as f64 / secs,
                flops / secs / 1e9
            );
        }
    }
    Ok(())
}
