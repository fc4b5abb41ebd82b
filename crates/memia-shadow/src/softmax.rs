//! A small pure-Rust trainer: multinomial logistic regression by full-batch gradient descent.
//!
//! It needs no deep-learning framework, so it serves the scheduler's tests and quick audits
//! (the embedded digits train in milliseconds). It is deterministic: weights start at zero and
//! every step uses the whole training set, so the model seed is not needed.

use memia_data::Dataset;
use ndarray::{Array2, Array3, Axis};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::trainer::{ModelJob, ShadowTrainer, TrainerError};

/// Multinomial logistic regression: `logits = x W + b`, trained to minimise the mean
/// cross-entropy plus `l2 / 2 |W|^2`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SoftmaxRegression {
    /// Gradient-descent steps.
    pub epochs: usize,
    /// Step size.
    pub learning_rate: f64,
    /// L2 penalty on the weights.
    pub l2: f64,
    /// Models trained in parallel per group (one thread each).
    pub group_size: usize,
}

impl Default for SoftmaxRegression {
    fn default() -> Self {
        SoftmaxRegression {
            epochs: 100,
            learning_rate: 0.5,
            l2: 1e-4,
            group_size: 4,
        }
    }
}

impl SoftmaxRegression {
    fn train_one(
        &self,
        x: &Array2<f64>,
        labels: &[u32],
        classes: usize,
        train: &[usize],
    ) -> Array3<f32> {
        let (n, d) = x.dim();
        let xt = x.select(Axis(0), train);
        let m = train.len() as f64;
        let mut w = Array2::<f64>::zeros((d, classes));
        let mut b = ndarray::Array1::<f64>::zeros(classes);
        for _ in 0..self.epochs {
            let mut p = xt.dot(&w) + &b;
            for (mut row, &i) in p.outer_iter_mut().zip(train) {
                let max = row.fold(f64::NEG_INFINITY, |a, &v| a.max(v));
                row.mapv_inplace(|v| (v - max).exp());
                let s = row.sum();
                row /= s;
                row[labels[i] as usize] -= 1.0; // softmax - one-hot: the gradient of the loss
            }
            let grad_w = xt.t().dot(&p) / m + &w * self.l2;
            let grad_b = p.sum_axis(Axis(0)) / m;
            w.scaled_add(-self.learning_rate, &grad_w);
            b.scaled_add(-self.learning_rate, &grad_b);
        }
        let logits = x.dot(&w) + &b;
        logits
            .mapv(|v| v as f32)
            .into_shape_with_order((n, 1, classes))
            .expect("n x 1 x C")
    }
}

impl ShadowTrainer for SoftmaxRegression {
    fn config(&self) -> serde_json::Value {
        serde_json::json!({
            "model": "softmax_regression",
            "epochs": self.epochs,
            "learning_rate": self.learning_rate,
            "l2": self.l2,
        })
    }

    fn queries(&self) -> usize {
        1
    }

    fn group_size(&self) -> usize {
        self.group_size
    }

    fn train_group(
        &self,
        pool: &dyn Dataset,
        jobs: &[ModelJob],
    ) -> Result<Vec<Array3<f32>>, TrainerError> {
        if !(self.learning_rate > 0.0 && self.l2 >= 0.0) {
            return Err(format!(
                "learning rate {} and l2 {} must be positive and non-negative",
                self.learning_rate, self.l2
            )
            .into());
        }
        let (n, d) = (pool.len(), pool.feature_len());
        let x = Array2::from_shape_vec((n, d), pool.to_row_major())?.mapv(f64::from);
        let labels = pool.labels();
        Ok(jobs
            .par_iter()
            .map(|job| self.train_one(&x, &labels, pool.classes(), &job.train))
            .collect())
    }
}
