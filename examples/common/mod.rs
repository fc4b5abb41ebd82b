//! What the MNIST examples share: the data directory and the paper's pool of MNIST digits with
//! notMNIST letters as out-of-distribution canaries.

use std::path::PathBuf;

use memia::data::idx::load_idx;
use memia::data::{CanarySource, LabelPolicy, Pool, PoolBuilder};

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
