//! The audit: every number a report shows, computed from a keep matrix and the models' logits.

use std::borrow::Cow;

use memia_attacks::evaluation::{NoCurve, evaluate_sets, score_target};
use memia_attacks::loo::{EvalGroup, LooConfig, LooReport, leave_one_out};
use memia_attacks::theory::{BudgetPlan, privacy_score};
use memia_attacks::{AttackSpec, CandidateRule};
use memia_core::{KeepMatrix, Logits, LogitsSource, Signal, Signals};
use memia_memorization::{Memorization, MemorizationConfig};
use memia_metrics::{Correlation, RocCurve, RocSummary, STANDARD_FPRS, median, spearman};
use ndarray::{Array1, Array3, Axis};
use serde::{Deserialize, Serialize};

use crate::error::{ReportError, Result};
use crate::thumbnails;

/// What to audit and how.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditConfig {
    /// The attack (default: online LiRA with a global variance).
    pub attack: AttackSpec,
    /// The model attacked as the target; the others are its shadow models.
    pub target: usize,
    /// How the high-memorization candidates are chosen (default: memorization >= 0.8,
    /// [`memia_attacks::DEFAULT_MEMORIZATION_THRESHOLD`], as every command's default).
    pub candidates: CandidateRule,
    /// Number of target models in the leave-one-model-out curve (models 0, 1, ...).
    pub curve_targets: usize,
    /// Random draws of the shadow models per point of the curve (its band spans them).
    pub curve_repeats: usize,
    /// Shadow-model counts of the curve (default: 1, 2, 4, ..., K - 1).
    pub shadow_counts: Option<Vec<usize>>,
    /// Error probability of the shadow-model budget planner.
    pub delta: f64,
    /// Seed of the curve's random draws of shadow models.
    pub seed: u64,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            attack: AttackSpec::default(),
            target: 0,
            candidates: CandidateRule::MemorizationAtLeast(
                memia_attacks::DEFAULT_MEMORIZATION_THRESHOLD,
            ),
            curve_targets: 8,
            curve_repeats: 1,
            shadow_counts: None,
            delta: 0.01,
            seed: 0,
        }
    }
}

/// The data of an audit: who trained on what, and what every model answered. Build it with
/// [`AuditInputs::new`] and the `with_*` methods.
#[derive(Debug, Clone, Copy)]
pub struct AuditInputs<'a> {
    /// K x N: which model trained on which sample.
    pub keep: &'a KeepMatrix,
    /// K x N x A x C logits of every model on every sample, read one model at a time (a
    /// [`Logits`] in memory, or a run's files: [`memia_core::ModelFiles`]).
    pub logits: &'a dyn LogitsSource,
    /// The N true labels.
    pub labels: &'a [u32],
    /// Optional description of each sample (e.g. "mnist:17" or "canary:notmnist:3").
    pub provenance: Option<&'a [String]>,
    /// Named sample sets reported separately (e.g. the canaries).
    pub groups: &'a [EvalGroup],
    /// Who produced the models, one line per producer (e.g. `models 0..16 by ...`): an
    /// auditor should see when a run mixes model families.
    pub producers: &'a [String],
    /// The pool's pixels, for the report's thumbnails of the samples it singles out.
    pub images: Option<SampleImages<'a>>,
    /// The attacked model; `None`: model [`AuditConfig::target`] of the run. With an
    /// [`Target::External`] model all K models are shadow models.
    pub target: Option<Target<'a>>,
}

impl<'a> AuditInputs<'a> {
    /// The keep matrix, every model's logits and the labels; nothing else.
    pub fn new(keep: &'a KeepMatrix, logits: &'a dyn LogitsSource, labels: &'a [u32]) -> Self {
        AuditInputs {
            keep,
            logits,
            labels,
            provenance: None,
            groups: &[],
            producers: &[],
            images: None,
            target: None,
        }
    }

    /// With one description per sample.
    pub fn with_provenance(mut self, provenance: &'a [String]) -> Self {
        self.provenance = Some(provenance);
        self
    }

    /// With named sample sets reported separately.
    pub fn with_groups(mut self, groups: &'a [EvalGroup]) -> Self {
        self.groups = groups;
        self
    }

    /// With the models' producers, one line each.
    pub fn with_producers(mut self, producers: &'a [String]) -> Self {
        self.producers = producers;
        self
    }

    /// With the pool's pixels (thumbnails in the report).
    pub fn with_images(mut self, images: SampleImages<'a>) -> Self {
        self.images = Some(images);
        self
    }

    /// Attacking `target` (instead of model [`AuditConfig::target`] of the run).
    pub fn with_target(mut self, target: Target<'a>) -> Self {
        self.target = Some(target);
        self
    }

    /// Attacking a model outside the run.
    pub fn with_external_target(self, target: ExternalTarget<'a>) -> Self {
        self.with_target(Target::External(target))
    }
}

/// The pool's samples as images: `channels` x `height` x `width` values per sample, C order.
#[derive(Debug, Clone, Copy)]
pub struct SampleImages<'a> {
    /// `[channels, height, width]`; 1 (grey) or 3 (RGB) channels.
    pub shape: [usize; 3],
    /// N samples' values, one after the other (any scale: each thumbnail is stretched to its
    /// own range).
    pub pixels: &'a [f32],
}

impl<'a> SampleImages<'a> {
    /// The samples of a data set whose per-sample shape is `[channels, height, width]` (1 or 3
    /// channels) or `[height, width]`; `None` for samples that are not images.
    pub fn from_feature_shape(feature_shape: &[usize], pixels: &'a [f32]) -> Option<Self> {
        let shape = match *feature_shape {
            [c @ (1 | 3), h, w] => [c, h, w],
            [h, w] => [1, h, w],
            _ => return None,
        };
        Some(SampleImages { shape, pixels })
    }
}

/// The model an audit attacks: one type for the report and the sequential audit.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    /// A model of the run; every other model may be a shadow model, and its keep row is its
    /// membership.
    Model(usize),
    /// A model trained elsewhere; every model of the run may be a shadow model.
    External(ExternalTarget<'a>),
}

impl Target<'_> {
    /// The shadow models a run of `models` models can give this target.
    pub fn available_shadows(&self, models: usize) -> Vec<usize> {
        match self {
            Target::Model(t) => (0..models).filter(|m| m != t).collect(),
            Target::External(_) => (0..models).collect(),
        }
    }

    /// Checks the target against a run of `models` models whose logits are `[n, a, c]` per
    /// model: a model of the run that exists, or a model trained elsewhere with one model's
    /// logits of that shape and, when given, `n` membership entries. The one check of the
    /// report, the sequential audit and `memia_audit::Run`.
    pub fn check(&self, models: usize, [n, a, c]: [usize; 3]) -> Result<()> {
        match self {
            &Target::Model(target) if target >= models => {
                Err(ReportError::TargetOutOfRange { target, models })
            }
            Target::Model(_) => Ok(()),
            Target::External(external) => {
                let given = external.logits.view().dim();
                if given != (1, n, a, c) {
                    return Err(ReportError::TargetLogitsShape {
                        given,
                        expected: (1, n, a, c),
                    });
                }
                match external.members {
                    Some(m) if m.len() != n => Err(ReportError::PerSampleLength {
                        what: "membership entries",
                        given: m.len(),
                        samples: n,
                    }),
                    _ => Ok(()),
                }
            }
        }
    }

    /// The target in words, as reports name it.
    pub fn name(&self) -> String {
        match self {
            Target::Model(t) => format!("model {t} of the run"),
            Target::External(e) => e.name.to_string(),
        }
    }
}

/// A target model that is not one of the run's models (e.g. the model under audit, trained
/// elsewhere).
#[derive(Debug, Clone, Copy)]
pub struct ExternalTarget<'a> {
    /// Its logits on the pool: one model, 1 x N x A x C.
    pub logits: &'a Logits,
    /// Which samples it trained on, when known; without it the report has scores but no ROC.
    pub members: Option<&'a [bool]>,
    /// How the report names it (e.g. the logits file).
    pub name: &'a str,
}

/// A set of samples the report does not score, and why. In JSON: `{"set": ..., "reason": "the
/// sentence", "why": {"kind": "one-class", "members": ..., "non_members": ...}}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotScored {
    /// The set (`all samples`, `high-memorization candidates`, a group's name).
    pub set: String,
    /// Why it has no ROC curve.
    pub reason: NoCurve,
}

impl Serialize for NotScored {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut s = serializer.serialize_struct("NotScored", 3)?;
        s.serialize_field("set", &self.set)?;
        s.serialize_field("reason", &self.reason.to_string())?;
        s.serialize_field("why", &self.reason)?;
        s.end()
    }
}

/// Samples the report shows one by one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Panel {
    /// What the samples are, e.g. `most memorized: members of the target`.
    pub title: String,
    /// Their indices, most remarkable first.
    pub samples: Vec<usize>,
}

/// An 8-bit image of one sample: `channels` (1 or 3) x height x width, interleaved by pixel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thumbnail {
    /// 1 (grey) or 3 (RGB).
    pub channels: usize,
    /// Height in pixels.
    pub height: usize,
    /// Width in pixels.
    pub width: usize,
    /// `height * width * channels` bytes, row by row.
    pub bytes: Vec<u8>,
}

/// Samples shown per panel of the report.
pub const SHOWN_PER_PANEL: usize = 8;

/// Memorization in the summary.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MemorizationSummary {
    /// Mean memorization over the samples it is defined for.
    pub mean: f64,
    /// Samples with no IN or no OUT model (NaN estimates).
    pub undetermined: usize,
    /// The candidate rule, as text.
    pub candidate_rule: String,
    /// Number of candidates it selects.
    pub candidates: usize,
    /// Median standard error.
    pub median_std_error: f64,
}

/// The shadow-model budget planner's prediction.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BudgetSummary {
    /// Error probability the budget is for.
    pub delta: f64,
    /// Median shadow models needed by the candidates (the mean of the middle two for an even
    /// count; None: no candidate is attackable).
    pub candidates_median: Option<f64>,
    /// Median over all samples whose memorization is positive.
    pub all_median: Option<f64>,
}

/// The version of every JSON document memia writes (`summary.json`, the command line's `--json`
/// output), documented in docs/file-formats.md; raised when a field changes meaning or goes.
/// Version 2: groups as an object keyed by name (they were a list of pairs), and the version
/// itself in every document.
pub const SCHEMA_VERSION: u32 = 2;

/// Serialises named entries as one JSON object keyed by name, in their order.
fn keyed_by_name<S: serde::Serializer, T: Serialize>(
    entries: &[(String, T)],
    serializer: S,
) -> std::result::Result<S::Ok, S::Error> {
    serializer.collect_map(entries.iter().map(|(name, value)| (name, value)))
}

/// Everything `summary.json` holds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// [`SCHEMA_VERSION`], first in the file.
    pub schema_version: u32,
    /// Models K.
    pub models: usize,
    /// Pool samples N.
    pub samples: usize,
    /// Queries per sample A.
    pub queries: usize,
    /// Classes C.
    pub classes: usize,
    /// The attack, described.
    pub attack: String,
    /// The target model of the run (None: an external target).
    pub target: Option<usize>,
    /// The target, in words (`model 3 of the run`, or the external target's name).
    pub target_name: String,
    /// Shadow models the attack and the memorization estimate used.
    pub shadow_models: usize,
    /// Who produced the models, one line per producer.
    pub producers: Vec<String>,
    /// Memorization (estimated from the K - 1 shadow models of the target).
    pub memorization: MemorizationSummary,
    /// The target attack on all samples (None: the target's membership is not known).
    pub all: Option<RocSummary>,
    /// The target attack on the candidates (None when they hold one class only).
    pub candidates: Option<RocSummary>,
    /// The target attack on each named group (None when it holds one class only); in JSON an
    /// object keyed by the group's name.
    #[serde(serialize_with = "keyed_by_name")]
    pub groups: Vec<(String, Option<RocSummary>)>,
    /// The sets above without a ROC curve, and why.
    pub not_scored: Vec<NotScored>,
    /// Spearman correlation between memorization and privacy score.
    pub memorization_vs_privacy: Option<Correlation>,
    /// The budget planner.
    pub budget: BudgetSummary,
    /// Attack quality against the number of shadow models (leave one model out).
    pub shadow_curve: LooReport,
}

/// The long parts of [`Audit::run`], as its progress names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditStage {
    /// Reading the models' logits, one at a time, into their signals.
    Reading,
    /// The attack's quality against the number of shadow models (leave one model out).
    Curve,
}

impl AuditStage {
    /// What a progress bar of this stage counts, e.g. `reading models`.
    pub fn describe(self) -> &'static str {
        match self {
            AuditStage::Reading => "reading models",
            AuditStage::Curve => "shadow-model curve",
        }
    }
}

/// A finished audit: per-sample results and the summary.
#[derive(Debug, Clone)]
pub struct Audit {
    /// The settings.
    pub config: AuditConfig,
    /// The summary (`summary.json`).
    pub summary: Summary,
    /// Memorization from the target's shadow models.
    pub memorization: Memorization,
    /// Privacy score from the target's shadow models.
    pub privacy_score: Array1<f64>,
    /// The attack's score of each sample on the target (NaN: not judgeable).
    pub scores: Vec<f64>,
    /// Whether each sample was in the target's training set (None: not known).
    pub members: Option<Vec<bool>>,
    /// The high-memorization candidates.
    pub candidates: Vec<usize>,
    /// The labels.
    pub labels: Vec<u32>,
    /// Per-sample provenance, when known.
    pub provenance: Option<Vec<String>>,
    /// The named sample sets reported separately (the canaries, an import's groups).
    pub groups: Vec<EvalGroup>,
    /// The target attack's ROC curves: all samples, the candidates, then each group.
    pub roc: Vec<(String, RocCurve)>,
    /// The budget planner's per-sample prediction.
    pub budget: BudgetPlan,
    /// The samples shown one by one: most memorized and most exposed, members and
    /// non-members apart.
    pub panels: Vec<Panel>,
    /// Images of the samples in `panels`, when the pool's pixels were given.
    pub thumbnails: std::collections::BTreeMap<usize, Thumbnail>,
}

impl Audit {
    /// Runs the audit. `progress(stage, done, total)` follows its two long parts: reading the
    /// models (one at a time: memory holds their signals, K x N x A, not their logits) and the
    /// leave-one-out curve.
    pub fn run(
        inputs: AuditInputs<'_>,
        config: &AuditConfig,
        mut progress: impl FnMut(AuditStage, usize, usize),
    ) -> Result<Audit> {
        let (k, n, a, c) = validate_inputs(&inputs)?;
        let target = ChosenTarget::choose(&inputs, config)?;
        let mut signals = Signals::compute(
            inputs.logits,
            &(0..k).collect::<Vec<_>>(),
            inputs.labels,
            &[Signal::Correct, Signal::Phi, config.attack.signal()],
            |done, total| progress(AuditStage::Reading, done, total),
        )?;
        let shadow = ShadowEstimates::new(config, &target, &mut signals)?;
        let signal = attack_signal(config, &shadow.phi, &mut signals);
        let attack = AttackedTarget::new(&inputs, config, &target, &signal)?;
        let sets = ScoredSets::new(&attack, &shadow.candidates, inputs.groups, n)?;
        let correlation = memorization_vs_privacy(&shadow.memorization.score, &shadow.privacy);
        let (budget, budget_summary) = plan_budget(&shadow, config.delta)?;
        let shadow_curve = shadow_curve(&inputs, config, &signal, &shadow, &mut |done, total| {
            progress(AuditStage::Curve, done, total)
        })?;
        let panels = panels(
            &shadow.memorization,
            &shadow.privacy,
            &attack.scores,
            attack.members.as_deref(),
        );
        let thumbnails = thumbnails::render(inputs.images.as_ref(), &panels);
        let summary = Summary {
            schema_version: SCHEMA_VERSION,
            models: k,
            samples: n,
            queries: a,
            classes: c,
            attack: config.attack.describe(),
            target: target.index,
            target_name: target.name,
            shadow_models: target.shadows.len(),
            producers: inputs.producers.to_vec(),
            memorization: memorization_summary(&shadow, &config.candidates),
            all: sets.all,
            candidates: sets.candidates,
            groups: sets.groups,
            not_scored: sets.not_scored,
            memorization_vs_privacy: correlation,
            budget: budget_summary,
            shadow_curve,
        };
        Ok(Audit {
            config: config.clone(),
            summary,
            memorization: shadow.memorization,
            privacy_score: shadow.privacy,
            scores: attack.scores,
            members: attack.members,
            candidates: shadow.candidates,
            labels: inputs.labels.to_vec(),
            provenance: inputs.provenance.map(<[String]>::to_vec),
            groups: inputs.groups.to_vec(),
            roc: sets.roc,
            budget,
            panels,
            thumbnails,
        })
    }
}

/// Refuses inputs whose sizes disagree before anything is computed, so that each mistake is
/// named (in this order) instead of surfacing as an index error; gives K, N, A and C.
fn validate_inputs(inputs: &AuditInputs<'_>) -> Result<(usize, usize, usize, usize)> {
    let [n, a, c] = inputs.logits.model_shape();
    let (keep, k) = (inputs.keep, inputs.logits.models());
    let dims = (k, n, a, c);
    if keep.models() != k || keep.samples() != n {
        return Err(ReportError::KeepLogitsMismatch {
            keep_models: keep.models(),
            keep_samples: keep.samples(),
            logit_models: k,
            logit_samples: n,
        });
    }
    if inputs.labels.len() != n {
        return Err(ReportError::PerSampleLength {
            what: "labels",
            given: inputs.labels.len(),
            samples: n,
        });
    }
    if let Some(p) = inputs.provenance
        && p.len() != n
    {
        return Err(ReportError::PerSampleLength {
            what: "provenance entries",
            given: p.len(),
            samples: n,
        });
    }
    if let Some(images) = &inputs.images {
        let [ch, h, w] = images.shape;
        if !matches!(ch, 1 | 3) || h == 0 || w == 0 || images.pixels.len() != n * ch * h * w {
            return Err(ReportError::ImageShape {
                shape: images.shape,
                samples: n,
                needed: n * ch * h * w,
                given: images.pixels.len(),
            });
        }
    }
    Ok(dims)
}

/// The attacked model and its shadow models: one place decides between a model of the run
/// (the others are its shadows) and an external target (all K models are shadows).
struct ChosenTarget {
    /// The target's index in the run (None: an external target).
    index: Option<usize>,
    /// The target in words, as the summary names it.
    name: String,
    /// The shadow models' indices in the run.
    shadows: Vec<usize>,
    /// The keep matrix of the shadow models only.
    shadow_keep: KeepMatrix,
}

impl ChosenTarget {
    /// Picks the target and its shadows, refusing an external target of the wrong shape or
    /// a run target that does not exist.
    fn choose(inputs: &AuditInputs<'_>, config: &AuditConfig) -> Result<ChosenTarget> {
        let (k, [n, a, c]) = (inputs.logits.models(), inputs.logits.model_shape());
        let target = inputs.target.unwrap_or(Target::Model(config.target));
        if matches!(target, Target::Model(_)) && k < 2 {
            return Err(ReportError::TooFewModels { models: k });
        }
        target.check(k, [n, a, c])?;
        let index = match target {
            Target::Model(t) => Some(t),
            Target::External(_) => None,
        };
        let (shadows, name) = (target.available_shadows(k), target.name());
        let shadow_keep = inputs.keep.select_models(&shadows)?;
        Ok(ChosenTarget {
            index,
            name,
            shadows,
            shadow_keep,
        })
    }
}

/// What the shadow models alone say about each sample: an auditor does not know the target's
/// training set, so memorization, privacy score and candidates never read the target.
struct ShadowEstimates {
    /// Memorization estimated from the shadow models.
    memorization: Memorization,
    /// `phi` of every model (the target's row included): the privacy score reads the
    /// shadows' rows, and LiRA and the global threshold attack it too.
    phi: Array3<f64>,
    /// Privacy score from the shadow models.
    privacy: Array1<f64>,
    /// The high-memorization candidates.
    candidates: Vec<usize>,
}

impl ShadowEstimates {
    /// Memorization, privacy score and the candidates they select, from every model's
    /// correctness (taken out of `signals`: not needed after) and `phi` (kept).
    fn new(
        config: &AuditConfig,
        target: &ChosenTarget,
        signals: &mut Signals,
    ) -> Result<ShadowEstimates> {
        let correct = signals
            .take(Signal::Correct)
            .expect("computed by Audit::run");
        let memorization = MemorizationConfig::default()
            .allow_missing()
            .estimate_from_signals(
                &target.shadow_keep,
                correct.select(Axis(0), &target.shadows).view(),
            )?;
        drop(correct);
        let phi = signals.get(Signal::Phi).expect("computed by Audit::run");
        let privacy = privacy_score(
            &target.shadow_keep,
            phi.select(Axis(0), &target.shadows).view(),
        )?;
        let candidates = config.candidates.select(&memorization, Some(&privacy))?;
        Ok(ShadowEstimates {
            memorization,
            phi: signals.take(Signal::Phi).expect("computed by Audit::run"),
            privacy,
            candidates,
        })
    }
}

/// The attack fitted on the shadow models and run on the target: the scores every ROC and
/// panel reads, and the membership (when known) they are judged against.
struct AttackedTarget {
    /// The attack's score of each sample on the target (NaN: not judgeable).
    scores: Vec<f64>,
    /// Whether each sample was in the target's training set (None: not known).
    members: Option<Vec<bool>>,
}

impl AttackedTarget {
    /// Fits the attack on the shadows and scores the target; refuses an attack that judged
    /// no sample at all (no number of the report would mean anything).
    fn new(
        inputs: &AuditInputs<'_>,
        config: &AuditConfig,
        target: &ChosenTarget,
        signal: &Array3<f64>,
    ) -> Result<AttackedTarget> {
        let labels = inputs.labels;
        let shadow_signal = signal.select(Axis(0), &target.shadows);
        let score = |target_signal| {
            score_target(
                &config.attack,
                &target.shadow_keep,
                shadow_signal.view(),
                target_signal,
            )
            .map(|s| s.to_vec())
        };
        let (scores, members) = match (&inputs.target, target.index) {
            (Some(Target::External(external)), _) => {
                let target_signal = external.logits.signals(labels, config.attack.signal())?;
                (
                    score(target_signal.index_axis(Axis(0), 0))?,
                    external.members.map(<[bool]>::to_vec),
                )
            }
            (_, Some(t)) => (
                score(signal.index_axis(Axis(0), t))?,
                Some(inputs.keep.row(t).to_vec()),
            ),
            (_, None) => unreachable!("a run's target has an index"),
        };
        if !scores.iter().any(|s| s.is_finite()) {
            return Err(ReportError::NothingJudged {
                attack: config.attack.describe(),
                target: target.name.clone(),
                shadow_models: target.shadows.len(),
            });
        }
        Ok(AttackedTarget { scores, members })
    }
}

/// The attack's signal of every model of the run: `phi` itself when the attack reads it (LiRA,
/// the global threshold), else its own signal, computed beside `phi` in the one pass over the
/// models.
fn attack_signal<'p>(
    config: &AuditConfig,
    phi: &'p Array3<f64>,
    signals: &mut Signals,
) -> Cow<'p, Array3<f64>> {
    match config.attack.signal() {
        Signal::Phi => Cow::Borrowed(phi),
        other => Cow::Owned(signals.take(other).expect("computed by Audit::run")),
    }
}

/// The target attack judged per sample set (all samples, the candidates, each group) by the one
/// evaluation ([`memia_attacks::evaluation`]): a set gets a ROC curve, or a line in
/// `not_scored` saying why it has none.
struct ScoredSets {
    /// All samples.
    all: Option<RocSummary>,
    /// The high-memorization candidates.
    candidates: Option<RocSummary>,
    /// Each named group.
    groups: Vec<(String, Option<RocSummary>)>,
    /// The curves of the sets that have one, in the order above.
    roc: Vec<(String, RocCurve)>,
    /// The sets without a curve, and why.
    not_scored: Vec<NotScored>,
}

/// The name of the candidates' set in the report.
const CANDIDATES: &str = "high-memorization candidates";

impl ScoredSets {
    /// Scores all samples, then the candidates, then each group (refusing a group that names
    /// a sample outside the pool).
    fn new(
        attack: &AttackedTarget,
        candidates: &[usize],
        groups: &[EvalGroup],
        n: usize,
    ) -> Result<ScoredSets> {
        if let Some(twice) = groups
            .iter()
            .enumerate()
            .find(|(i, g)| groups[..*i].iter().any(|h| h.name == g.name))
        {
            return Err(ReportError::DuplicateGroup {
                name: twice.1.name.clone(),
            });
        }
        if let Some((g, &bad)) = groups
            .iter()
            .find_map(|g| g.samples.iter().find(|&&i| i >= n).map(|i| (g, i)))
        {
            return Err(ReportError::GroupSampleOutOfRange {
                group: g.name.clone(),
                sample: bad,
                samples: n,
            });
        }
        let sets: Vec<EvalGroup> = std::iter::once(EvalGroup {
            name: CANDIDATES.into(),
            samples: candidates.to_vec(),
        })
        .chain(groups.iter().cloned())
        .collect();
        let judged = evaluate_sets(
            &attack.scores,
            attack.members.as_deref(),
            &sets,
            &STANDARD_FPRS,
        )?;
        let mut scored = ScoredSets {
            all: None,
            candidates: None,
            groups: Vec::new(),
            roc: Vec::new(),
            not_scored: Vec::new(),
        };
        for (i, set) in judged.into_iter().enumerate() {
            let summary = match set.outcome {
                Ok(s) => {
                    scored.roc.push((set.name.clone(), s.curve));
                    Some(s.summary)
                }
                Err(reason) => {
                    scored.not_scored.push(NotScored {
                        set: set.name.clone(),
                        reason,
                    });
                    None
                }
            };
            match i {
                0 => scored.all = summary,
                1 => scored.candidates = summary,
                _ => scored.groups.push((set.name, summary)),
            }
        }
        Ok(scored)
    }
}

/// Spearman correlation of memorization and privacy score over the samples where both are
/// defined: whether the cheap score ranks samples as memorization does.
fn memorization_vs_privacy(
    memorization: &Array1<f64>,
    privacy: &Array1<f64>,
) -> Option<Correlation> {
    let (mx, py): (Vec<f64>, Vec<f64>) = memorization
        .iter()
        .zip(privacy.iter())
        .map(|(&m, &p)| (m, p))
        .filter(|(m, p)| m.is_finite() && p.is_finite())
        .unzip();
    spearman(&mx, &py).ok()
}

/// The budget planner's per-sample prediction and its medians (candidates; all samples with
/// positive memorization): how many shadow models an auditor would need.
fn plan_budget(shadow: &ShadowEstimates, delta: f64) -> Result<(BudgetPlan, BudgetSummary)> {
    let memorization = &shadow.memorization;
    let budget = BudgetPlan::from_memorization(memorization, delta)?;
    let needed = &budget.models_needed;
    let n = memorization.score.len();
    let summary = BudgetSummary {
        delta,
        candidates_median: median_models(needed, shadow.candidates.iter().copied()),
        all_median: median_models(needed, (0..n).filter(|&i| memorization.score[i] > 0.0)),
    };
    Ok((budget, summary))
}

/// Attack quality against the number of shadow models (leave one model out), for all
/// samples, the candidates and each group: the long part, followed by `progress`.
fn shadow_curve(
    inputs: &AuditInputs<'_>,
    config: &AuditConfig,
    signal: &Array3<f64>,
    shadow: &ShadowEstimates,
    progress: &mut impl FnMut(usize, usize),
) -> Result<LooReport> {
    let (k, n) = (inputs.keep.models(), inputs.keep.samples());
    if k < 2 {
        // One model: no model of the run can be a target with shadow models.
        return Ok(LooReport {
            models: k,
            samples: n,
            rows: Vec::new(),
        });
    }
    let mut groups = Vec::new();
    if !shadow.candidates.is_empty() {
        groups.push(EvalGroup {
            name: "candidates".into(),
            samples: shadow.candidates.clone(),
        });
    }
    groups.extend(inputs.groups.iter().cloned());
    let loo = LooConfig {
        shadow_counts: config.shadow_counts.clone(),
        targets: Some((0..config.curve_targets.clamp(1, k)).collect()),
        repeats: config.curve_repeats.max(1),
        fprs: vec![1e-3, 1e-2],
        groups,
        seed: config.seed,
    };
    Ok(leave_one_out(
        &config.attack,
        inputs.keep,
        signal.view(),
        &loo,
        progress,
    )?)
}

/// Memorization in the summary: its mean and median standard error over the samples it is
/// defined for, how many it is not, and the candidate rule with its count.
fn memorization_summary(shadow: &ShadowEstimates, rule: &CandidateRule) -> MemorizationSummary {
    let memorization = &shadow.memorization;
    let mut finite_se: Vec<f64> = memorization
        .std_error
        .iter()
        .copied()
        .filter(|x| x.is_finite())
        .collect();
    let defined: Vec<f64> = memorization
        .score
        .iter()
        .copied()
        .filter(|x| x.is_finite())
        .collect();
    MemorizationSummary {
        mean: defined.iter().sum::<f64>() / defined.len().max(1) as f64,
        undetermined: memorization.score.len() - defined.len(),
        candidate_rule: describe_rule(rule),
        candidates: shadow.candidates.len(),
        median_std_error: median(&mut finite_se).unwrap_or(f64::NAN),
    }
}

/// The samples the report singles out: the most memorized and the highest-scored (most
/// exposed), members and non-members of the target apart when its membership is known.
/// "Most memorized" ranks by the lower end of the memorization's confidence interval, so that a
/// sample whose estimate of 1 rests on one OUT model (interval down to 0) does not come before
/// one that is surely memorized; ties go to the higher estimate, then the higher privacy score.
fn panels(
    memorization: &Memorization,
    privacy: &Array1<f64>,
    scores: &[f64],
    members: Option<&[bool]>,
) -> Vec<Panel> {
    let finite_or_lowest = |v: f64| if v.is_finite() { v } else { f64::NEG_INFINITY };
    let tie = |i: usize| {
        (
            finite_or_lowest(memorization.score[i]),
            finite_or_lowest(privacy[i]),
        )
    };
    let top = |value: &dyn Fn(usize) -> f64, side: &dyn Fn(usize) -> bool| -> Vec<usize> {
        let mut chosen: Vec<usize> = (0..scores.len())
            .filter(|&i| value(i).is_finite() && side(i))
            .collect();
        chosen.sort_by(|&x, &y| {
            let (ty, tx) = (tie(y), tie(x));
            value(y)
                .total_cmp(&value(x))
                .then(ty.0.total_cmp(&tx.0))
                .then(ty.1.total_cmp(&tx.1))
                .then(x.cmp(&y))
        });
        chosen.truncate(SHOWN_PER_PANEL);
        chosen
    };
    let mem = |i: usize| {
        if memorization.score[i].is_finite() {
            memorization.lower[i]
        } else {
            f64::NAN
        }
    };
    let score = |i: usize| scores[i];
    let mut out = Vec::new();
    match members {
        Some(m) => {
            let member = |i: usize| m[i];
            let outsider = |i: usize| !m[i];
            for (what, value) in [
                ("most memorized", &mem as &dyn Fn(usize) -> f64),
                ("most exposed (highest attack score)", &score),
            ] {
                out.push(Panel {
                    title: format!("{what}: members of the target"),
                    samples: top(value, &member),
                });
                out.push(Panel {
                    title: format!("{what}: non-members"),
                    samples: top(value, &outsider),
                });
            }
        }
        None => {
            let any = |_: usize| true;
            out.push(Panel {
                title: "most memorized".into(),
                samples: top(&mem, &any),
            });
            out.push(Panel {
                title: "most exposed (highest attack score; membership not known)".into(),
                samples: top(&score, &any),
            });
        }
    }
    out.retain(|p| !p.samples.is_empty());
    out
}

/// A candidate rule in words.
pub fn describe_rule(rule: &CandidateRule) -> String {
    match rule {
        CandidateRule::MemorizationAtLeast(t) => format!("memorization >= {t}"),
        CandidateRule::TopMemorized(k) => format!("the {k} most memorized samples"),
        CandidateRule::PrivacyScoreAtLeast(t) => format!("privacy score >= {t}"),
    }
}

/// The median of the shadow models the samples `set` need (those the planner can attack).
fn median_models(needed: &[Option<u64>], set: impl Iterator<Item = usize>) -> Option<f64> {
    let mut models: Vec<f64> = set.filter_map(|i| needed[i]).map(|m| m as f64).collect();
    median(&mut models)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_budget_of_an_even_count_is_the_middle_mean() {
        let needed = [Some(4), None, Some(8), Some(100), Some(6)];
        // 4 and 8: 6 (not the upper middle value, 8).
        assert_eq!(median_models(&needed, [0, 1, 2].into_iter()), Some(6.0));
        assert_eq!(median_models(&needed, [0, 2, 4].into_iter()), Some(6.0));
        assert_eq!(median_models(&needed, 0..5), Some(7.0));
        assert_eq!(median_models(&needed, [1].into_iter()), None);
    }

    /// A memorization of 1 that rests on one OUT model (interval down to about 0) does not
    /// come before one whose interval is narrow; equal lower ends go to the higher estimate.
    #[test]
    fn most_memorized_ranks_by_the_lower_end_of_the_interval() {
        let arr = |v: &[f64]| Array1::from(v.to_vec());
        // Sample 0: 1.0 with one OUT model, [-0.002, 1]; sample 1: 0.9, [0.8, 1];
        // sample 2: 0.95, [0.8, 1]; sample 3: undetermined.
        let memorization = Memorization {
            score: arr(&[1.0, 0.9, 0.95, f64::NAN]),
            std_error: arr(&[0.5, 0.05, 0.07, f64::NAN]),
            lower: arr(&[-0.002, 0.8, 0.8, f64::NAN]),
            upper: arr(&[1.0, 1.0, 1.0, f64::NAN]),
            in_mean: arr(&[1.0; 4]),
            out_mean: arr(&[0.0, 0.1, 0.05, f64::NAN]),
            in_count: Array1::from(vec![8u32, 8, 8, 8]),
            out_count: Array1::from(vec![1u32, 8, 8, 0]),
            confidence: 0.95,
        };
        let privacy = arr(&[3.0, 1.0, 0.5, 0.0]);
        let panels = panels(&memorization, &privacy, &[0.0; 4], None);
        assert_eq!(panels[0].title, "most memorized");
        assert_eq!(panels[0].samples, vec![2, 1, 0]);
    }
}
