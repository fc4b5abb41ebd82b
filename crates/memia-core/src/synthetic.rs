//! A synthetic shadow-model run of any size whose memorization is known: what measures memia at
//! the size of a lab's audit (256 models x 50,000 samples x 2 queries x 100 classes, 10.2 GB of
//! logits) without training anything, and what the memory tests run on.
//!
//! Sample `i` has label `i % C` and a true label memorization `m_i` (Feldman-Zhang's
//! `P[correct | IN] - P[correct | OUT]`): 75% of the samples have `m = 0`, 20% a value drawn
//! uniformly in [0, 0.8) and 5% in [0.8, 1]. A model that trained on the sample predicts its
//! label; one that did not predicts it with probability `1 - m_i`, else another class. A correct
//! model puts its label's logit above the others by a margin (wider when it trained on the
//! sample, so membership leaks as it does in real models), plus per-query noise.
//!
//! [`SyntheticRun::write`] writes the LiRA reference layout (`experiment-k_K/keep.npy`,
//! `experiment-k_K/logits/0000000001.npy` of shape N x 1 x A x C, `y_train.npy`), and beside it
//! the same files as one folder per model for `memia import` (hard links: the logits are on disk
//! once), the keep matrix, the labels, the true memorization and its group of memorized samples.
//!
//! ```
//! use memia_core::synthetic::SyntheticRun;
//!
//! let dir = tempfile::tempdir().unwrap();
//! let run = SyntheticRun { models: 4, samples: 50, queries: 2, classes: 10, seed: 1 };
//! let files = run.write(dir.path(), |_, _| {})?;
//! let lira = memia_core::import_lira_run(&files.lira, &Default::default())?;
//! assert_eq!(lira.keep, memia_core::KeepMatrix::load(&files.keep)?);
//! assert_eq!(memia_core::LogitsSource::model_shape(&lira.logits), [50, 2, 10]);
//! # Ok::<(), memia_core::CoreError>(())
//! ```

use std::path::{Path, PathBuf};

use ndarray::{Array1, Array4};
use rayon::prelude::*;

use crate::error::{CoreError, Result};
use crate::keep::KeepMatrix;
use crate::npy::write_npy;
use crate::rng::splitmix64;

/// The size and seed of a synthetic run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyntheticRun {
    /// Models K.
    pub models: usize,
    /// Samples N.
    pub samples: usize,
    /// Queries A per sample.
    pub queries: usize,
    /// Classes C (at least 2).
    pub classes: usize,
    /// Seed of every random choice (keep matrix, memorization, outcomes, noise).
    pub seed: u64,
}

/// Where [`SyntheticRun::write`] put each file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntheticFiles {
    /// The LiRA reference layout (for `memia import-lira`).
    pub lira: PathBuf,
    /// One file per model, `model_00000.npy` ... (for `memia import --logits`).
    pub models: PathBuf,
    /// K x N bool keep matrix.
    pub keep: PathBuf,
    /// N int64 labels.
    pub labels: PathBuf,
    /// N float64 true memorization.
    pub memorization: PathBuf,
    /// `[{"name": "memorized", "samples": [...]}]`: the samples of true memorization >= 0.8.
    pub groups: PathBuf,
    /// `{"models": K, "samples": N, "queries": A, "classes": C, "seed": S}`: what was written.
    pub description: PathBuf,
}

/// A uniform draw in [0, 1) from the 64-bit hash of `parts`.
fn uniform(parts: [u64; 4]) -> f64 {
    let mut h = 0x9e37_79b9_7f4a_7c15u64;
    for p in parts {
        h = splitmix64(h ^ p);
    }
    (h >> 11) as f64 / (1u64 << 53) as f64
}

impl SyntheticRun {
    /// The logits' size in bytes (float32).
    pub fn logits_bytes(&self) -> u64 {
        [self.models, self.samples, self.queries, self.classes, 4]
            .iter()
            .map(|&d| d as u64)
            .product()
    }

    /// The true memorization of every sample.
    pub fn memorization(&self) -> Array1<f64> {
        Array1::from_shape_fn(self.samples, |i| {
            let kind = uniform([self.seed, 1, i as u64, 0]);
            let value = uniform([self.seed, 2, i as u64, 0]);
            if kind < 0.75 {
                0.0
            } else if kind < 0.95 {
                0.8 * value
            } else {
                0.8 + 0.2 * value
            }
        })
    }

    /// The keep matrix: LiRA's balanced halves, seeded.
    pub fn keep(&self) -> Result<KeepMatrix> {
        KeepMatrix::balanced(self.models, self.samples, self.seed)
    }

    /// Model `k`'s N x 1 x A x C logits (the LiRA reference's layout).
    pub fn model_logits(&self, k: usize, keep: &KeepMatrix, memorization: &[f64]) -> Array4<f32> {
        let (n, a, c) = (self.samples, self.queries, self.classes);
        let mut out = Array4::<f32>::zeros((n, 1, a, c));
        let seed = self.seed;
        out.as_slice_mut()
            .expect("fresh array")
            .par_chunks_mut(a * c)
            .enumerate()
            .for_each(|(i, rows)| {
                let label = i % c;
                let member = keep.get(k, i);
                let right = member || uniform([seed, 3, k as u64, i as u64]) >= memorization[i];
                let wrong =
                    (label + 1 + (splitmix64(seed ^ (k * n + i) as u64) as usize) % (c - 1)) % c;
                let shown = if right { label } else { wrong };
                // Samples differ in how hard they are; members are fitted more tightly.
                let ease = 2.0 * uniform([seed, 4, i as u64, 0]);
                let margin = if member { 3.0 } else { 1.5 } + ease;
                let mut state = splitmix64(seed ^ 0x5eed ^ ((k as u64) << 32) ^ i as u64);
                for (q, row) in rows.chunks_exact_mut(c).enumerate() {
                    for v in row.iter_mut() {
                        state = splitmix64(state);
                        *v = ((state >> 40) as f32 / (1u32 << 24) as f32) * 2.0 - 1.0;
                    }
                    state = splitmix64(state ^ q as u64);
                    let jitter = ((state >> 40) as f32 / (1u32 << 24) as f32) - 0.5;
                    row[shown] = 1.0 + margin as f32 + jitter;
                }
            });
        out
    }

    /// Writes the run into `dir` (created if needed; files of an earlier write are replaced),
    /// one model at a time; `progress(done, total)` follows the models.
    pub fn write(
        &self,
        dir: &Path,
        mut progress: impl FnMut(usize, usize),
    ) -> Result<SyntheticFiles> {
        if self.models == 0 || self.samples == 0 || self.queries == 0 || self.classes < 2 {
            return Err(CoreError::invalid(
                "run",
                format!(
                    "{} models x {} samples x {} queries x {} classes: each must be at least 1, classes at least 2",
                    self.models, self.samples, self.queries, self.classes
                ),
            ));
        }
        let files = SyntheticFiles {
            lira: dir.join("lira"),
            models: dir.join("models"),
            keep: dir.join("keep.npy"),
            labels: dir.join("labels.npy"),
            memorization: dir.join("memorization.npy"),
            groups: dir.join("groups.json"),
            description: dir.join("run.json"),
        };
        let mkdir = |p: &Path| std::fs::create_dir_all(p).map_err(|e| CoreError::io(p, e));
        mkdir(&files.lira)?;
        mkdir(&files.models)?;
        let keep = self.keep()?;
        let memorization = self.memorization();
        let labels: Array1<i64> = (0..self.samples)
            .map(|i| (i % self.classes) as i64)
            .collect();
        keep.save(&files.keep)?;
        write_npy(&files.labels, &labels)?;
        write_npy(files.lira.join("y_train.npy"), &labels)?;
        write_npy(&files.memorization, &memorization)?;
        let memorized: Vec<usize> = (0..self.samples)
            .filter(|&i| memorization[i] >= 0.8)
            .collect();
        let listed: Vec<String> = memorized.iter().map(usize::to_string).collect();
        let groups = format!(
            "[{{\"name\": \"memorized\", \"samples\": [{}]}}]\n",
            listed.join(", ")
        );
        let description = format!(
            "{{\"models\": {}, \"samples\": {}, \"queries\": {}, \"classes\": {}, \"seed\": {}}}\n",
            self.models, self.samples, self.queries, self.classes, self.seed
        );
        crate::atomic_write(&files.description, |f| {
            std::io::Write::write_all(f, description.as_bytes())
        })?;
        crate::atomic_write(&files.groups, |f| {
            std::io::Write::write_all(f, groups.as_bytes())
        })?;
        let mem = memorization.as_slice().expect("fresh array");
        for k in 0..self.models {
            let experiment = files.lira.join(format!("experiment-{k}_{}", self.models));
            mkdir(&experiment.join("logits"))?;
            write_npy(experiment.join("keep.npy"), &keep.row(k))?;
            let logits_file = experiment.join("logits").join("0000000001.npy");
            write_npy(&logits_file, &self.model_logits(k, &keep, mem))?;
            let link = files.models.join(format!("model_{k:05}.npy"));
            let _ = std::fs::remove_file(&link);
            std::fs::hard_link(&logits_file, &link).map_err(|e| CoreError::io(&link, e))?;
            progress(k + 1, self.models);
        }
        Ok(files)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{LogitsSource, ModelFiles, Signal, Signals};

    #[test]
    fn its_memorization_is_what_the_models_show() {
        let run = SyntheticRun {
            models: 64,
            samples: 400,
            queries: 1,
            classes: 5,
            seed: 3,
        };
        let dir = tempfile::tempdir().unwrap();
        let files = run.write(dir.path(), |_, _| {}).unwrap();
        let keep = KeepMatrix::load(&files.keep).unwrap();
        let source = ModelFiles::new(
            (0..64)
                .map(|k| files.models.join(format!("model_{k:05}.npy")))
                .collect(),
            None,
        )
        .unwrap();
        assert_eq!(source.model_shape(), [400, 1, 5]);
        let labels: Vec<u32> = (0..400).map(|i| (i % 5) as u32).collect();
        let all: Vec<usize> = (0..64).collect();
        let s = Signals::compute(
            &source,
            &all,
            &labels,
            &[Signal::Correct, Signal::Phi],
            |_, _| {},
        )
        .unwrap();
        let correct = s.get(Signal::Correct).unwrap();
        let truth = run.memorization();
        // The Feldman-Zhang estimate from 32 IN and 32 OUT models is within a few standard
        // errors of the truth, on average much closer.
        let mut error = 0.0;
        for i in 0..400 {
            let (mut inn, mut out, mut n_in) = (0.0, 0.0, 0.0);
            for k in 0..64 {
                if keep.get(k, i) {
                    inn += correct[[k, i, 0]];
                    n_in += 1.0;
                } else {
                    out += correct[[k, i, 0]];
                }
            }
            let estimate = inn / n_in - out / (64.0 - n_in);
            assert!(
                (estimate - truth[i]).abs() < 0.45,
                "sample {i}: {estimate} vs {}",
                truth[i]
            );
            error += (estimate - truth[i]).abs() / 400.0;
        }
        assert!(error < 0.06, "mean error {error}");
        // Members are more confident than non-members.
        let phi = s.get(Signal::Phi).unwrap();
        let mean = |member: bool| {
            let v: Vec<f64> = (0..64)
                .flat_map(|k| (0..400).map(move |i| (k, i)))
                .filter(|&(k, i)| keep.get(k, i) == member)
                .map(|(k, i)| phi[[k, i, 0]])
                .collect();
            v.iter().sum::<f64>() / v.len() as f64
        };
        assert!(mean(true) > mean(false) + 1.0);
        assert!(
            run.write(dir.path(), |_, _| {}).is_ok(),
            "written again over itself"
        );
    }
}
