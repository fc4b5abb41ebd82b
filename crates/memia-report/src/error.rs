//! The one error type of `memia-report`.

use std::path::PathBuf;

/// Everything that can go wrong while auditing or writing a report.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReportError {
    /// Error from `memia-core`.
    #[error(transparent)]
    Core(#[from] memia_core::CoreError),
    /// Error from `memia-metrics`.
    #[error(transparent)]
    Metrics(#[from] memia_metrics::MetricsError),
    /// Error from `memia-memorization`.
    #[error(transparent)]
    Memorization(#[from] memia_memorization::MemorizationError),
    /// Error from `memia-attacks`.
    #[error(transparent)]
    Attack(#[from] memia_attacks::AttackError),
    /// Error from `memia-shadow` (training the shadow models of a sequential audit).
    #[error(transparent)]
    Shadow(#[from] memia_shadow::ShadowError),
    /// The keep matrix and the logits do not describe the same models and samples.
    #[error(
        "the keep matrix is {keep_models} x {keep_samples} but the logits cover \
         {logit_models} models x {logit_samples} samples"
    )]
    KeepLogitsMismatch {
        /// Models (rows) of the keep matrix.
        keep_models: usize,
        /// Samples (columns) of the keep matrix.
        keep_samples: usize,
        /// Models of the logits.
        logit_models: usize,
        /// Samples of the logits.
        logit_samples: usize,
    },
    /// An input with one entry per sample (labels, provenance, membership) has another
    /// number of entries than the run has samples.
    #[error("{given} {what} for {samples} samples")]
    PerSampleLength {
        /// What the entries are, in the plural: "labels", "provenance entries",
        /// "membership entries".
        what: &'static str,
        /// How many were given.
        given: usize,
        /// How many samples there are.
        samples: usize,
    },
    /// The pool's pixels do not match the image shape given for them (or the shape is not
    /// an image: channels other than 1 or 3, an empty side).
    #[error(
        "images of shape {shape:?} (channels 1 or 3) need {needed} values for {samples} \
         samples, {given} given"
    )]
    ImageShape {
        /// `[channels, height, width]` as given.
        shape: [usize; 3],
        /// Number of samples.
        samples: usize,
        /// Values the shape needs for all samples.
        needed: usize,
        /// Values given.
        given: usize,
    },
    /// An external target's logits are not one model's answers on the run's samples, with
    /// the run's augmentations and classes.
    #[error(
        "the external target's logits are {given:?}, the run's models give 1 x {} x {} x {}",
        .expected.1, .expected.2, .expected.3
    )]
    TargetLogitsShape {
        /// Shape of the target's logits (models, samples, augmentations, classes).
        given: (usize, usize, usize, usize),
        /// The shape they need: `(1, samples, augmentations, classes)`.
        expected: (usize, usize, usize, usize),
    },
    /// An audit of a model of the run needs that model and at least one shadow model.
    #[error("an audit needs at least 2 models (a target and a shadow model), the run has {models}")]
    TooFewModels {
        /// The run's models.
        models: usize,
    },
    /// The target model is not a model of the run.
    #[error("target model {target} is out of range: {}", run_models(*.models))]
    TargetOutOfRange {
        /// The index asked for.
        target: usize,
        /// The run's models (valid targets are `0..models`).
        models: usize,
    },
    /// The attack gave no finite score to any sample of the target (online LiRA and RMIA
    /// need IN and OUT shadow models of each sample), so nothing can be reported.
    #[error(
        "{attack} judged no sample of {target} with its {shadow_models} shadow models (online \
         LiRA and RMIA need IN and OUT shadow models of each sample): use more models or an \
         offline attack"
    )]
    NothingJudged {
        /// The attack, described.
        attack: String,
        /// The target, described ("model 3 of the run", an external target's name).
        target: String,
        /// Shadow models used.
        shadow_models: usize,
    },
    /// Two named sample sets have one name: the report keys its figures by name.
    #[error("two groups are named '{name}': give each group its own name")]
    DuplicateGroup {
        /// The name given twice.
        name: String,
    },
    /// A named sample set names a sample outside the pool.
    #[error("group '{group}' names sample {sample}, the pool has {samples}")]
    GroupSampleOutOfRange {
        /// The group's name.
        group: String,
        /// The first sample out of range.
        sample: usize,
        /// The pool's samples.
        samples: usize,
    },
    /// The rounds of a sequential audit are not positive, increasing shadow-model counts.
    #[error("rounds {rounds:?}: shadow-model counts must be positive and increasing")]
    Rounds {
        /// The rounds asked for.
        rounds: Vec<usize>,
    },
    /// A round of a sequential audit needs more shadow models than the run can give.
    #[error("a round of {shadow_models} shadow models, the run can give {available}")]
    RoundTooLarge {
        /// Shadow models of the largest round.
        shadow_models: usize,
        /// Shadow models the run can give.
        available: usize,
    },
    /// A sequential audit needs models that are not trained, and has no trainer (or no pool)
    /// to train them.
    #[error(
        "models {first}-{last} are not all trained and no trainer was given (an imported run \
         can only use the models it has)"
    )]
    Untrained {
        /// The first model missing.
        first: usize,
        /// The last model missing.
        last: usize,
    },
    /// The report's directory exists and holds files that are not a report's: a report
    /// replaces its directory as a whole, so it is not written there.
    #[error(
        "{} holds files that are not part of a memia report ({}): a report replaces its \
         directory as a whole, so write it to a new or report-only directory",
        .dir.display(),
        quoted_names(.files)
    )]
    ForeignFiles {
        /// The report's directory.
        dir: PathBuf,
        /// The names of the files that are not a report's (the message shows the first 5).
        files: Vec<String>,
    },
    /// A file could not be written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A plot could not be drawn.
    #[error("plot {name}: {reason}")]
    Plot {
        /// Which plot.
        name: &'static str,
        /// What failed.
        reason: String,
    },
}

/// Result with [`ReportError`].
pub type Result<T> = std::result::Result<T, ReportError>;

/// "the run has models 0-{models - 1}", or that it has none.
fn run_models(models: usize) -> String {
    match models {
        0 => "the run has no models".into(),
        m => format!("the run has models 0-{}", m - 1),
    }
}

/// The first 5 names, quoted and separated by commas.
fn quoted_names(names: &[String]) -> String {
    names
        .iter()
        .take(5)
        .map(|n| format!("{n:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_read_as_before() {
        let range = |models| ReportError::TargetOutOfRange { target: 4, models }.to_string();
        assert_eq!(
            range(0),
            "target model 4 is out of range: the run has no models"
        );
        assert_eq!(
            range(3),
            "target model 4 is out of range: the run has models 0-2"
        );
        let foreign = ReportError::ForeignFiles {
            dir: PathBuf::from("out"),
            files: (0..7).map(|i| format!("f{i}")).collect(),
        }
        .to_string();
        assert!(
            foreign.starts_with(
                "out holds files that are not part of a memia report \
                 (\"f0\", \"f1\", \"f2\", \"f3\", \"f4\"): a report replaces its directory as a \
                 whole, so write it to a new or report-only directory"
            ),
            "{foreign}"
        );
        let shape = ReportError::TargetLogitsShape {
            given: (2, 5, 1, 3),
            expected: (1, 5, 1, 3),
        };
        assert_eq!(
            shape.to_string(),
            "the external target's logits are (2, 5, 1, 3), the run's models give 1 x 5 x 1 x 3"
        );
        assert_eq!(
            ReportError::Rounds { rounds: vec![2, 1] }.to_string(),
            "rounds [2, 1]: shadow-model counts must be positive and increasing"
        );
    }
}
