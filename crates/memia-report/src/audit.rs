//! The audit: every number a report shows, computed from a keep matrix and the models' logits.

use memia_attacks::loo::{EvalGroup, LooConfig, LooReport, leave_one_out};
use memia_attacks::theory::{BudgetPlan, privacy_score};
use memia_attacks::{AttackSpec, CandidateRule, FittedTest, MembershipTest};
use memia_core::{KeepMatrix, Logits, Signal};
use memia_memorization::{Memorization, MemorizationConfig, Outcome};
use memia_metrics::{
    Correlation, Direction, RocCurve, RocSummary, STANDARD_FPRS, TprAtFpr, median, spearman,
};
use ndarray::{Array1, Axis};
use serde::{Deserialize, Serialize};

use crate::error::{ReportError, Result};

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
    /// K x N x A x C logits of every model on every sample.
    pub logits: &'a Logits,
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
    /// A target model outside the run; then all K models are shadow models and
    /// [`AuditConfig::target`] is not used.
    pub external_target: Option<ExternalTarget<'a>>,
}

impl<'a> AuditInputs<'a> {
    /// The keep matrix, every model's logits and the labels; nothing else.
    pub fn new(keep: &'a KeepMatrix, logits: &'a Logits, labels: &'a [u32]) -> Self {
        AuditInputs {
            keep,
            logits,
            labels,
            provenance: None,
            groups: &[],
            producers: &[],
            images: None,
            external_target: None,
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

    /// Attacking a model outside the run.
    pub fn with_external_target(mut self, target: ExternalTarget<'a>) -> Self {
        self.external_target = Some(target);
        self
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

/// A set of samples the report does not score, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NotScored {
    /// The set (`all samples`, `candidates`, a group's name).
    pub set: String,
    /// Why it has no ROC curve.
    pub reason: String,
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

/// Everything `summary.json` holds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
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
    /// The target attack on each named group (None when it holds one class only).
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
    /// Runs the audit. `progress(done, total)` follows the leave-one-out curve, the long part.
    pub fn run(
        inputs: AuditInputs<'_>,
        config: &AuditConfig,
        mut progress: impl FnMut(usize, usize),
    ) -> Result<Audit> {
        let (keep, logits, labels) = (inputs.keep, inputs.logits, inputs.labels);
        let (k, n, a, c) = logits.view().dim();
        if keep.models() != k || keep.samples() != n {
            return Err(ReportError::KeepLogitsMismatch {
                keep_models: keep.models(),
                keep_samples: keep.samples(),
                logit_models: k,
                logit_samples: n,
            });
        }
        if labels.len() != n {
            return Err(ReportError::PerSampleLength {
                what: "labels",
                given: labels.len(),
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
        // The target and its shadow models.
        let (target, shadows, target_name) = match &inputs.external_target {
            Some(external) => {
                if external.logits.view().dim() != (1, n, a, c) {
                    return Err(ReportError::TargetLogitsShape {
                        given: external.logits.view().dim(),
                        expected: (1, n, a, c),
                    });
                }
                if let Some(m) = external.members
                    && m.len() != n
                {
                    return Err(ReportError::PerSampleLength {
                        what: "membership entries",
                        given: m.len(),
                        samples: n,
                    });
                }
                (None, (0..k).collect::<Vec<_>>(), external.name.to_string())
            }
            None => {
                if k < 2 {
                    return Err(ReportError::TooFewModels { models: k });
                }
                if config.target >= k {
                    return Err(ReportError::TargetOutOfRange {
                        target: config.target,
                        models: k,
                    });
                }
                let t = config.target;
                (
                    Some(t),
                    (0..k).filter(|&m| m != t).collect(),
                    format!("model {t} of the run"),
                )
            }
        };
        let shadow_keep = keep.select_models(&shadows)?;
        let shadow_logits = logits.select_models(&shadows)?;

        // Memorization and privacy score from the shadow models only: an auditor does not
        // know the target's training set.
        let memorization = MemorizationConfig::default()
            .allow_missing()
            .estimate_from_logits(&shadow_keep, &shadow_logits, labels, Outcome::Correct)?;
        // `phi` of every model: the privacy score reads the shadows' rows, and LiRA and the
        // global threshold attack it too.
        let phi = logits.signals(labels, Signal::Phi)?;
        let shadow_phi = phi.select(Axis(0), &shadows);
        let privacy = privacy_score(&shadow_keep, shadow_phi.view())?;
        let candidates = config.candidates.select(&memorization, Some(&privacy))?;

        let other_signal;
        let signal = if config.attack.signal() == Signal::Phi {
            &phi
        } else {
            other_signal = logits.signals(labels, config.attack.signal())?;
            &other_signal
        };
        let fitted = config
            .attack
            .fit(&shadow_keep, signal.select(Axis(0), &shadows).view())?;
        let (scores, members) = match (&inputs.external_target, target) {
            (Some(external), _) => {
                let target_signal = external.logits.signals(labels, config.attack.signal())?;
                (
                    fitted.score(target_signal.index_axis(Axis(0), 0))?.to_vec(),
                    external.members.map(<[bool]>::to_vec),
                )
            }
            (None, Some(t)) => (
                fitted.score(signal.index_axis(Axis(0), t))?.to_vec(),
                Some(keep.row(t).to_vec()),
            ),
            (None, None) => unreachable!("a run's target has an index"),
        };
        if !scores.iter().any(|s| s.is_finite()) {
            return Err(ReportError::NothingJudged {
                attack: config.attack.describe(),
                target: target_name,
                shadow_models: shadows.len(),
            });
        }

        // A set's ROC curve, or why it has none.
        let summarize =
            |samples: &[usize]| -> Result<std::result::Result<(RocSummary, RocCurve), String>> {
                let Some(members) = &members else {
                    return Ok(Err(
                    "the target's membership is not known (give its members to score the attack)"
                        .into(),
                ));
                };
                if samples.is_empty() {
                    return Ok(Err("no sample in the set".into()));
                }
                let (s, m): (Vec<f64>, Vec<bool>) = samples
                    .iter()
                    .filter(|&&i| scores[i].is_finite())
                    .map(|&i| (scores[i], members[i]))
                    .unzip();
                let inside = m.iter().filter(|&&x| x).count();
                if s.is_empty() {
                    return Ok(Err(format!(
                        "the attack judged none of its {} samples",
                        samples.len()
                    )));
                }
                if inside == 0 || inside == m.len() {
                    let side = if inside == 0 {
                        "non-members"
                    } else {
                        "members"
                    };
                    return Ok(Err(format!(
                        "all {} judged samples are {side} of the target: no ROC curve",
                        m.len()
                    )));
                }
                let roc = RocCurve::new(&s, &m, Direction::HigherIsMember)?;
                Ok(Ok((
                    roc.summary(&STANDARD_FPRS, TprAtFpr::LiraStrict)?,
                    roc,
                )))
            };
        let mut roc = Vec::new();
        let mut not_scored = Vec::new();
        let mut scored_set = |name: &str, samples: &[usize]| -> Result<Option<RocSummary>> {
            Ok(match summarize(samples)? {
                Ok((summary, curve)) => {
                    roc.push((name.to_string(), curve));
                    Some(summary)
                }
                Err(reason) => {
                    not_scored.push(NotScored {
                        set: name.to_string(),
                        reason,
                    });
                    None
                }
            })
        };
        let everyone: Vec<usize> = (0..n).collect();
        let all = scored_set("all samples", &everyone)?;
        let candidate_summary = scored_set("high-memorization candidates", &candidates)?;
        let groups = inputs
            .groups
            .iter()
            .map(|g| {
                if let Some(&bad) = g.samples.iter().find(|&&i| i >= n) {
                    return Err(ReportError::GroupSampleOutOfRange {
                        group: g.name.clone(),
                        sample: bad,
                        samples: n,
                    });
                }
                Ok((g.name.clone(), scored_set(&g.name, &g.samples)?))
            })
            .collect::<Result<Vec<_>>>()?;

        let finite: Vec<(f64, f64)> = (0..n)
            .map(|i| (memorization.score[i], privacy[i]))
            .filter(|(m, p)| m.is_finite() && p.is_finite())
            .collect();
        let (mx, py): (Vec<f64>, Vec<f64>) = finite.into_iter().unzip();
        let correlation = spearman(&mx, &py).ok();

        let budget = BudgetPlan::from_memorization(&memorization, config.delta)?;
        let needed = &budget.models_needed;
        let budget_summary = BudgetSummary {
            delta: config.delta,
            candidates_median: median_models(needed, candidates.iter().copied()),
            all_median: median_models(needed, (0..n).filter(|&i| memorization.score[i] > 0.0)),
        };

        let mut curve_groups = Vec::new();
        if !candidates.is_empty() {
            curve_groups.push(EvalGroup {
                name: "candidates".into(),
                samples: candidates.clone(),
            });
        }
        curve_groups.extend(inputs.groups.iter().cloned());
        let shadow_curve = if k >= 2 {
            let loo = LooConfig {
                shadow_counts: config.shadow_counts.clone(),
                targets: Some((0..config.curve_targets.clamp(1, k)).collect()),
                repeats: config.curve_repeats.max(1),
                fprs: vec![1e-3, 1e-2],
                groups: curve_groups,
                seed: config.seed,
            };
            leave_one_out(&config.attack, keep, signal.view(), &loo, |d, t| {
                progress(d, t)
            })?
        } else {
            // One model: no model of the run can be a target with shadow models.
            LooReport {
                models: k,
                samples: n,
                rows: Vec::new(),
            }
        };

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
        let panels = panels(&memorization.score, &privacy, &scores, members.as_deref());
        let thumbnails = inputs
            .images
            .map(|images| {
                panels
                    .iter()
                    .flat_map(|p| p.samples.iter().copied())
                    .map(|i| (i, thumbnail(&images, i)))
                    .collect()
            })
            .unwrap_or_default();
        let summary = Summary {
            models: k,
            samples: n,
            queries: a,
            classes: c,
            attack: config.attack.describe(),
            target,
            target_name,
            shadow_models: shadows.len(),
            producers: inputs.producers.to_vec(),
            memorization: MemorizationSummary {
                mean: defined.iter().sum::<f64>() / defined.len().max(1) as f64,
                undetermined: n - defined.len(),
                candidate_rule: describe_rule(&config.candidates),
                candidates: candidates.len(),
                median_std_error: median(&mut finite_se).unwrap_or(f64::NAN),
            },
            all,
            candidates: candidate_summary,
            groups,
            not_scored,
            memorization_vs_privacy: correlation,
            budget: budget_summary,
            shadow_curve,
        };
        Ok(Audit {
            config: config.clone(),
            summary,
            memorization,
            privacy_score: privacy,
            scores,
            members,
            candidates,
            labels: labels.to_vec(),
            provenance: inputs.provenance.map(<[String]>::to_vec),
            roc,
            budget,
            panels,
            thumbnails,
        })
    }
}

/// The samples the report singles out: the most memorized and the highest-scored (most
/// exposed), members and non-members of the target apart when its membership is known. Ties
/// (many samples share a memorization of 1 with few models) go to the higher privacy score.
fn panels(
    memorization: &Array1<f64>,
    privacy: &Array1<f64>,
    scores: &[f64],
    members: Option<&[bool]>,
) -> Vec<Panel> {
    let tie = |i: usize| {
        if privacy[i].is_finite() {
            privacy[i]
        } else {
            f64::NEG_INFINITY
        }
    };
    let top = |value: &dyn Fn(usize) -> f64, side: &dyn Fn(usize) -> bool| -> Vec<usize> {
        let mut chosen: Vec<usize> = (0..scores.len())
            .filter(|&i| value(i).is_finite() && side(i))
            .collect();
        chosen.sort_by(|&x, &y| {
            value(y)
                .total_cmp(&value(x))
                .then(tie(y).total_cmp(&tie(x)))
                .then(x.cmp(&y))
        });
        chosen.truncate(SHOWN_PER_PANEL);
        chosen
    };
    let mem = |i: usize| memorization[i];
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

/// Sample `i` as an 8-bit image, its values stretched to its own range (a constant image is
/// mid-grey).
fn thumbnail(images: &SampleImages<'_>, i: usize) -> Thumbnail {
    let [ch, h, w] = images.shape;
    let size = ch * h * w;
    let values = &images.pixels[i * size..(i + 1) * size];
    let (lo, hi) = values
        .iter()
        .filter(|v| v.is_finite())
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(l, u), &v| {
            (l.min(v), u.max(v))
        });
    let byte = |v: f32| -> u8 {
        if hi <= lo || !hi.is_finite() || !v.is_finite() {
            128
        } else {
            ((v - lo) / (hi - lo) * 255.0).round().clamp(0.0, 255.0) as u8
        }
    };
    // Channel-major (C x H x W) to interleaved rows.
    let mut bytes = Vec::with_capacity(size);
    for y in 0..h {
        for x in 0..w {
            for c in 0..ch {
                bytes.push(byte(values[c * h * w + y * w + x]));
            }
        }
    }
    Thumbnail {
        channels: ch,
        height: h,
        width: w,
        bytes,
    }
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
}
