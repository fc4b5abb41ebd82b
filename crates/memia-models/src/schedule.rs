//! What both engines must agree on for a model to train the same way on either: its minibatch
//! order and augmentation stream per epoch, the learning rate of each of its steps, and Adam's
//! bias correction.

use memia_core::rng::{MemiaRng, stream_rng};
use rand::RngExt;
use rand::seq::SliceRandom;

use crate::augment::{Augmentation, transform};
use crate::config::{Member, Schedule, TrainingConfig};

/// A model's minibatch order for one epoch (its training rows shuffled) and the sampler that
/// writes its samples in that order, drawing augmentations from the model's own stream. Both
/// engines read them.
pub(crate) fn epoch_streams(member: &Member, epoch: usize) -> (Vec<usize>, SampleWriter) {
    let mut order = member.train.clone();
    order.shuffle(&mut stream_rng(member.seed, 1_000_000 + epoch as u64));
    let writer = SampleWriter {
        augment: stream_rng(member.seed, 2_000_000 + epoch as u64),
    };
    (order, writer)
}

/// Writes a model's training samples, augmented from its own random stream.
pub(crate) struct SampleWriter {
    augment: MemiaRng,
}

impl SampleWriter {
    /// Writes one training sample into `dst`: copied, or randomly shifted and flipped when
    /// `augment` gives the image shape and the augmentation.
    pub(crate) fn write_sample(
        &mut self,
        src: &[f32],
        dst: &mut [f32],
        augment: Option<([usize; 3], &Augmentation)>,
    ) {
        match augment {
            Some((shape, aug)) => {
                let rng = &mut self.augment;
                let span = 2 * aug.max_shift as i32 + 1;
                let dx = rng.random_range(0..span) - aug.max_shift as i32;
                let dy = rng.random_range(0..span) - aug.max_shift as i32;
                let mirror = aug.flip && rng.random::<bool>();
                transform(src, dst, shape, mirror, dx, dy);
            }
            None => dst.copy_from_slice(src),
        }
    }
}

/// The learning rate of a model's step after `taken` of its `total` steps.
pub(crate) fn step_rate(config: &TrainingConfig, taken: usize, total: usize) -> f64 {
    match config.schedule {
        Schedule::Constant => config.learning_rate,
        Schedule::Cosine => {
            let t = taken as f64 / total as f64;
            0.5 * config.learning_rate * (1.0 + (std::f64::consts::PI * t).cos())
        }
    }
}

/// Adam's bias correction `1 - beta^t` after `t` steps.
pub(crate) fn adam_correction(beta: f64, t: usize) -> f32 {
    (1.0 - beta.powi(t.max(1) as i32)) as f32
}
