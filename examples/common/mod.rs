//! What the MNIST examples share: the data directory and the paper's pool of MNIST digits with
//! notMNIST letters as out-of-distribution canaries.

use std::path::PathBuf;

use memia::data::idx::load_idx;
use memia::data::{CanarySource, LabelPolicy, Pool, PoolBuilder};
use memia::models::{Augmentation, BurnTrainer, MlpConfig, TrainingConfig};

/// The data directory: the first argument, else `$MEMIA_DATA_DIR`.
pub fn data_dir() -> Result<PathBuf, Box<dyn std::error::Error>> {
    std::env::args_os()
        .nth(1)
        .or_else(|| std::env::var_os("MEMIA_DATA_DIR"))
        .map(PathBuf::from)
        .ok_or_else(|| "give the data directory as the argument or in MEMIA_DATA_DIR".into())
}

/// `digits` MNIST test digits and `letters` notMNIST letters, each letter with a random digit
/// label (so that a model gets it right only by memorizing it), drawn with `seed`.
pub fn mnist_with_letters(
    digits: usize,
    letters: usize,
    seed: u64,
) -> Result<Pool, Box<dyn std::error::Error>> {
    let dir = data_dir()?;
    let file = |name: &str| dir.join(name);
    let mnist = load_idx(
        file("mnist-t10k-images-idx3-ubyte.gz"),
        file("mnist-t10k-labels-idx1-ubyte.gz"),
        "mnist",
        Some(10),
    )?;
    let notmnist = load_idx(
        file("notmnist-t10k-images-idx3-ubyte.gz"),
        file("notmnist-t10k-labels-idx1-ubyte.gz"),
        "notmnist",
        Some(10),
    )?;
    Ok(PoolBuilder::new(&mnist)
        .in_distribution(digits)
        .canaries(
            CanarySource::OutOfDistribution(&notmnist),
            letters,
            LabelPolicy::Random,
        )
        .build(seed)?)
}

/// The paper-setting MLP (784-128-10; SGD with momentum 0.9, rate 0.05, batch 128, no weight
/// decay) trained for `epochs`, with random shifts of up to `max_shift` pixels, 8 models at a time.
pub fn mlp_trainer(epochs: usize, max_shift: usize) -> BurnTrainer {
    BurnTrainer::new(
        MlpConfig::mlp(128),
        TrainingConfig {
            epochs,
            batch_size: 128,
            learning_rate: 0.05,
            weight_decay: 0.0,
            augmentation: Augmentation {
                max_shift,
                flip: false,
            },
            ..Default::default()
        },
        8,
    )
}
