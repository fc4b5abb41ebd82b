//! Where a run stands (finished and missing models, who produced each) without touching its
//! models: what `memia status` prints and memia for Python's `Run.status()` returns.

use memia_shadow::{ProducedModels, model_ranges};
use serde::Serialize;

use crate::error::Result;
use crate::run::Run;

/// A run's models, finished and missing, and their producers.
#[derive(Debug, Clone, Serialize)]
pub struct RunStatus {
    /// The run directory.
    pub run: String,
    /// The plan's content hash.
    pub plan: String,
    /// The pool's name in the plan.
    pub pool: String,
    /// Models K.
    pub models: usize,
    /// Samples N.
    pub samples: usize,
    /// Queries A.
    pub queries: usize,
    /// Classes C.
    pub classes: usize,
    /// Indices of the models whose logits are complete.
    pub finished: Vec<usize>,
    /// Indices of the models still to train (or import).
    pub missing: Vec<usize>,
    /// Who produced the finished models, one entry per producer.
    pub producers: Vec<ProducedModels>,
}

impl Run {
    /// The run's status, from its plan and its logits files' listing (no model is read).
    pub fn status(&self) -> Result<RunStatus> {
        let plan = self.dir.plan();
        // Every complete model has one producer entry (recorded or not): one pass over the
        // logits files gives both.
        let producers = self.dir.producers()?;
        let mut done = vec![false; plan.models];
        for k in producers.iter().flat_map(|p| &p.models) {
            done[*k] = true;
        }
        let (finished, missing): (Vec<usize>, Vec<usize>) =
            (0..plan.models).partition(|&k| done[k]);
        Ok(RunStatus {
            run: self.path().display().to_string(),
            plan: plan.content_hash(),
            pool: plan.pool.name.clone(),
            models: plan.models,
            samples: plan.pool.samples,
            queries: plan.queries,
            classes: plan.pool.classes,
            finished,
            missing,
            producers,
        })
    }
}

impl RunStatus {
    /// The status for a terminal. Everything in it read from the run's files (the pool's name,
    /// producers from `model_k.json`) may hold control characters, which are printed escaped
    /// (`\u{1b}`), never raw.
    pub fn lines(&self) -> Vec<String> {
        let mut lines = vec![
            format!(
                "run {} (plan {}): {}, pool {}",
                self.run,
                &self.plan[..self.plan.len().min(16)],
                memia_report::run_shape(self.models, self.samples, self.queries, self.classes),
                self.pool
            ),
            format!(
                "finished {} of {}: {}",
                self.finished.len(),
                self.models,
                model_ranges(&self.finished)
            ),
        ];
        if self.missing.is_empty() {
            lines.push("missing: none (the run is complete)".into());
        } else {
            lines.push(format!(
                "missing {}: {} (run `memia train {}`)",
                self.missing.len(),
                model_ranges(&self.missing),
                self.run
            ));
        }
        match self.producers.len() {
            0 => {}
            1 => lines.push(format!("produced: {}", self.producers[0])),
            n => {
                lines.push(format!(
                    "produced by {n} producers (the run mixes model families):"
                ));
                lines.extend(self.producers.iter().map(|p| format!("  {p}")));
            }
        }
        lines
            .iter()
            .map(|line| crate::text::escape_controls(line))
            .collect()
    }
}
