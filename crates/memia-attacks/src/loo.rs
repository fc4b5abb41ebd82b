//! Leave-one-model-out evaluation: each model in turn is the target and the others are the
//! shadows, for growing numbers of shadow models.
//!
//! For every shadow count K' and repeat, every target model t is attacked with K' shadow
//! models drawn at random from the other K - 1 (its own random stream), and its scores are
//! compared with its keep row. As in the LiRA reference's `do_plot`, the scores of all targets
//! are pooled into one ROC curve per (K', repeat, group). Samples the shadows cannot judge
//! (NaN scores, e.g. no OUT model among few shadows) are undetermined and read by the one
//! rule of [`crate::evaluation`] (a member not detected, a non-member left out), and counted.

use memia_core::KeepMatrix;
use memia_core::rng::stream_rng;
use memia_memorization::Memorization;
use memia_memorization::select::bins;
use ndarray::{ArrayView3, Axis};
use rand::seq::SliceRandom;

use crate::MembershipTest;
use crate::error::{Result, check_shadow, invalid};
pub use crate::evaluation::EvalGroup;
use crate::evaluation::{judge, score_target};

/// Groups by memorization bin (`[lo, hi)` with the last bin closed), named `mem [lo, hi)`.
pub fn memorization_groups(memorization: &Memorization, edges: &[f64]) -> Result<Vec<EvalGroup>> {
    let scores = memorization.score.to_vec();
    let groups = bins(&scores, edges).map_err(|e| invalid("edges", e.to_string()))?;
    Ok(groups
        .into_iter()
        .enumerate()
        .map(|(b, samples)| EvalGroup {
            name: format!(
                "mem [{}, {}{}",
                edges[b],
                edges[b + 1],
                if b + 2 == edges.len() { "]" } else { ")" }
            ),
            samples,
        })
        .collect())
}

/// Settings of a leave-one-out evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct LooConfig {
    /// Shadow-model counts K' to evaluate; each must be in 1..K. Default: 1, 2, 4, ..., and K - 1.
    pub shadow_counts: Option<Vec<usize>>,
    /// Random draws of the K' shadow models per count (default 1).
    pub repeats: usize,
    /// Which models serve as targets (default: all).
    pub targets: Option<Vec<usize>>,
    /// FPRs at which TPR is reported (default 1e-3 and 1e-2), read as the LiRA reference does
    /// ([`TprAtFpr::LiraStrict`]).
    pub fprs: Vec<f64>,
    /// Groups reported besides "all".
    pub groups: Vec<EvalGroup>,
    /// Master seed of the shadow-model draws.
    pub seed: u64,
}

impl Default for LooConfig {
    fn default() -> Self {
        LooConfig {
            shadow_counts: None,
            repeats: 1,
            targets: None,
            fprs: vec![1e-3, 1e-2],
            groups: Vec::new(),
            seed: 0,
        }
    }
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LooRow {
    /// Number of shadow models K'.
    pub shadow_models: usize,
    /// Repeat number.
    pub repeat: usize,
    /// Group name ("all" for every sample).
    pub group: String,
    /// Judged (sample, target) pairs: finite scores.
    pub scored: usize,
    /// Undetermined pairs (the shadows could not judge them): a member among them counts as
    /// not detected and stays in the TPR's denominator, a non-member is left out
    /// ([`crate::evaluation`]).
    pub unscored: usize,
    /// Judged pairs whose sample was not a member of the target: the non-members behind each
    /// FPR (an FPR below `1 / negatives` allows no false positive and cannot be measured).
    pub negatives: usize,
    /// AUROC; NaN when the pairs have no curve (nothing judged, or the judged pairs hold one
    /// class only).
    pub auroc: f64,
    /// `(fpr, tpr)` pairs.
    pub tpr_at_fpr: Vec<(f64, f64)>,
    /// Best balanced accuracy.
    pub balanced_accuracy: f64,
}

/// The whole evaluation.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LooReport {
    /// Total models K.
    pub models: usize,
    /// Pool size N.
    pub samples: usize,
    /// One row per shadow count, repeat and group.
    pub rows: Vec<LooRow>,
}

impl LooRow {
    /// Whether a TPR at `fpr` is measurable with this row's non-members (at least one false
    /// positive allowed).
    pub fn measurable(&self, fpr: f64) -> bool {
        fpr * self.negatives as f64 >= 1.0 - 1e-9
    }

    /// The TPR at the `i`-th FPR as a table cell: the value with `decimals`, or `n/m` where the
    /// FPR is not measurable (and `-` where there is no curve).
    pub fn tpr_text(&self, i: usize, decimals: usize) -> String {
        let (fpr, tpr) = self.tpr_at_fpr[i];
        if tpr.is_nan() {
            "-".into()
        } else if !self.measurable(fpr) {
            "n/m".into()
        } else {
            format!("{tpr:.decimals$}")
        }
    }
}

impl LooReport {
    /// The report as pretty-printed JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("plain data serialises")
    }

    /// Rows of one group, in order of shadow count and repeat.
    pub fn group(&self, name: &str) -> Vec<&LooRow> {
        self.rows.iter().filter(|r| r.group == name).collect()
    }
}

impl std::fmt::Display for LooReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let fprs: Vec<f64> = self
            .rows
            .first()
            .map(|r| r.tpr_at_fpr.iter().map(|p| p.0).collect())
            .unwrap_or_default();
        write!(
            f,
            "{:>8} {:>6} {:<20} {:>9} {:>8}",
            "shadows", "repeat", "group", "scored", "AUROC"
        )?;
        for t in &fprs {
            write!(f, " {:>12}", format!("TPR@{t:e}"))?;
        }
        writeln!(f, " {:>9}", "bal.acc")?;
        for r in &self.rows {
            write!(
                f,
                "{:>8} {:>6} {:<20} {:>9} {:>8.4}",
                r.shadow_models, r.repeat, r.group, r.scored, r.auroc
            )?;
            for i in 0..r.tpr_at_fpr.len() {
                write!(f, " {:>12}", r.tpr_text(i, 4))?;
            }
            writeln!(f, " {:>9.4}", r.balanced_accuracy)?;
        }
        if self
            .rows
            .iter()
            .any(|r| (0..r.tpr_at_fpr.len()).any(|i| r.tpr_text(i, 4) == "n/m"))
        {
            writeln!(
                f,
                "n/m: not measurable, the FPR allows no false positive among the row's non-members"
            )?;
        }
        Ok(())
    }
}

/// Runs the evaluation of `test` on the K x N x A shadow observations. `progress(done, total)`
/// is called after each fitted target.
pub fn leave_one_out<T: MembershipTest>(
    test: &T,
    keep: &KeepMatrix,
    shadow: ArrayView3<'_, f64>,
    config: &LooConfig,
    mut progress: impl FnMut(usize, usize),
) -> Result<LooReport> {
    check_shadow(keep, &shadow)?;
    let (k, n) = (keep.models(), keep.samples());
    if k < 2 {
        return Err(invalid("models", "leave-one-out needs at least 2 models"));
    }
    if config.repeats == 0 {
        return Err(invalid("repeats", "at least 1"));
    }
    let counts = match &config.shadow_counts {
        Some(c) => c.clone(),
        None => doubling_counts(k - 1),
    };
    if let Some(&bad) = counts.iter().find(|&&c| c == 0 || c >= k) {
        return Err(invalid(
            "shadow_counts",
            format!("{bad} is not in 1..{k} (K - 1 models remain besides the target)"),
        ));
    }
    let targets = config.targets.clone().unwrap_or_else(|| (0..k).collect());
    if let Some(&bad) = targets.iter().find(|&&t| t >= k) {
        return Err(invalid(
            "targets",
            format!("model {bad} is not below K = {k}"),
        ));
    }
    for g in &config.groups {
        if let Some(&bad) = g.samples.iter().find(|&&i| i >= n) {
            return Err(invalid(
                "groups",
                format!("group '{}' holds sample {bad}, not below N = {n}", g.name),
            ));
        }
    }
    for &t in &config.fprs {
        if !(t > 0.0 && t <= 1.0) {
            return Err(invalid("fprs", format!("{t} is not in (0, 1]")));
        }
    }
    let total = counts.len() * config.repeats * targets.len();
    let mut done = 0;
    let mut rows = Vec::new();
    for &count in &counts {
        for repeat in 0..config.repeats {
            // Per sample: (score, member) over targets.
            let mut pooled: Vec<Vec<(f64, bool)>> = vec![Vec::with_capacity(targets.len()); n];
            for &target in &targets {
                let mut others: Vec<usize> = (0..k).filter(|&m| m != target).collect();
                let stream = ((count as u64) << 40) ^ ((repeat as u64) << 20) ^ target as u64;
                others.shuffle(&mut stream_rng(config.seed, stream));
                let mut chosen = others[..count].to_vec();
                chosen.sort_unstable();
                let sub_keep = keep.select_models(&chosen)?;
                let sub_shadow = shadow.select(Axis(0), &chosen);
                let scores = score_target(
                    test,
                    &sub_keep,
                    sub_shadow.view(),
                    shadow.index_axis(Axis(0), target),
                )?;
                for i in 0..n {
                    pooled[i].push((scores[i], keep.get(target, i)));
                }
                done += 1;
                progress(done, total);
            }
            let all = EvalGroup {
                name: "all".into(),
                samples: (0..n).collect(),
            };
            for group in std::iter::once(&all).chain(&config.groups) {
                rows.push(evaluate(&pooled, group, count, repeat, &config.fprs)?);
            }
        }
    }
    Ok(LooReport {
        models: k,
        samples: n,
        rows,
    })
}

/// One row: the pooled (score, member) pairs of `group`'s samples over every target, judged by
/// the one evaluation ([`crate::evaluation::judge`]: an undetermined member is not detected,
/// an undetermined non-member is left out).
fn evaluate(
    pooled: &[Vec<(f64, bool)>],
    group: &EvalGroup,
    count: usize,
    repeat: usize,
    fprs: &[f64],
) -> Result<LooRow> {
    let (scores, members): (Vec<f64>, Vec<bool>) = group
        .samples
        .iter()
        .flat_map(|&i| pooled[i].iter().copied())
        .unzip();
    let unscored = scores.iter().filter(|s| !s.is_finite()).count();
    let judged_non_members = scores
        .iter()
        .zip(&members)
        .filter(|&(s, &m)| s.is_finite() && !m)
        .count();
    let (auroc, tpr_at_fpr, balanced_accuracy) = match judge(&scores, &members, fprs)? {
        Ok(set) => (
            set.summary.auroc,
            set.summary
                .tpr_at_fpr
                .iter()
                .map(|p| (p.fpr, p.tpr))
                .collect(),
            set.summary.balanced_accuracy,
        ),
        Err(_) => (
            f64::NAN,
            fprs.iter().map(|&t| (t, f64::NAN)).collect(),
            f64::NAN,
        ),
    };
    Ok(LooRow {
        shadow_models: count,
        repeat,
        group: group.name.clone(),
        scored: scores.len() - unscored,
        unscored,
        negatives: judged_non_members,
        auroc,
        tpr_at_fpr,
        balanced_accuracy,
    })
}

/// The schedule every curve and every sequential audit uses: 1, 2, 4, ... below `up_to`, then
/// `up_to` itself (`[1, 2, 4, 8, 13]` for 13; empty for 0). Doubling spaces the points evenly on
/// the logarithmic axis on which the number of shadow models matters.
pub fn doubling_counts(up_to: usize) -> Vec<usize> {
    if up_to == 0 {
        return Vec::new();
    }
    let mut counts: Vec<usize> = std::iter::successors(Some(1usize), |m| m.checked_mul(2))
        .take_while(|&m| m < up_to)
        .collect();
    counts.push(up_to);
    counts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{LiraConfig, Threshold};

    #[test]
    fn rows_mark_what_their_non_members_cannot_measure() {
        let row = LooRow {
            shadow_models: 4,
            repeat: 0,
            group: "canaries".into(),
            scored: 30,
            unscored: 0,
            negatives: 10,
            auroc: 1.0,
            tpr_at_fpr: vec![(1e-3, 1.0), (0.1, 0.9), (0.5, f64::NAN)],
            balanced_accuracy: 1.0,
        };
        assert!(!row.measurable(1e-3) && row.measurable(0.1));
        assert_eq!(
            (row.tpr_text(0, 4), row.tpr_text(1, 2), row.tpr_text(2, 4)),
            ("n/m".to_string(), "0.90".to_string(), "-".to_string())
        );
        let report = LooReport {
            models: 5,
            samples: 30,
            rows: vec![row],
        };
        let table = report.to_string();
        assert!(
            table.contains("n/m") && table.contains("not measurable"),
            "{table}"
        );
    }
    use ndarray::Array3;

    fn run() -> (KeepMatrix, Array3<f64>) {
        let keep = KeepMatrix::balanced(9, 200, 3).unwrap();
        let obs = Array3::from_shape_fn((9, 200, 1), |(k, i, _)| {
            ((k * 13 + i * 7) % 17) as f64 / 17.0
                + if keep.get(k, i) { (i % 4) as f64 } else { 0.0 }
        });
        (keep, obs)
    }

    #[test]
    fn doubling_counts_end_at_the_bound() {
        assert_eq!(doubling_counts(0), Vec::<usize>::new());
        assert_eq!(doubling_counts(1), vec![1]);
        assert_eq!(doubling_counts(8), vec![1, 2, 4, 8]);
        assert_eq!(doubling_counts(13), vec![1, 2, 4, 8, 13]);
        assert_eq!(doubling_counts(usize::MAX).len(), 65);
    }

    #[test]
    fn default_counts_groups_progress_and_json() {
        let (keep, obs) = run();
        let config = LooConfig {
            groups: vec![EvalGroup {
                name: "exposed".into(),
                samples: (0..200).filter(|i| i % 4 == 3).collect(),
            }],
            ..Default::default()
        };
        let mut calls = Vec::new();
        let report = leave_one_out(
            &LiraConfig::online().with_global_variance(true),
            &keep,
            obs.view(),
            &config,
            |d, t| calls.push((d, t)),
        )
        .unwrap();
        let counts: Vec<usize> = report
            .group("all")
            .iter()
            .map(|r| r.shadow_models)
            .collect();
        assert_eq!(counts, vec![1, 2, 4, 8]);
        assert_eq!(calls.len(), 4 * 9);
        assert_eq!(*calls.last().unwrap(), (36, 36));
        let full = report.group("all")[3];
        assert_eq!(full.scored + full.unscored, 9 * 200);
        assert_eq!(
            full.unscored, 0,
            "with 8 shadows every sample has IN and OUT models"
        );
        // One shadow model cannot give IN and OUT observations of the same sample.
        assert_eq!(report.group("all")[0].scored, 0);
        assert!(report.group("all")[0].auroc.is_nan());
        let exposed = report.group("exposed")[3];
        assert!(
            exposed.auroc > full.auroc && exposed.auroc > 0.9,
            "{exposed:?}"
        );
        let json = report.to_json();
        assert!(json.contains("\"group\": \"exposed\"") && json.contains("\"shadow_models\": 8"));
        assert!(report.to_string().contains("TPR@1e-3"));
    }

    #[test]
    fn deterministic_and_validated() {
        let (keep, obs) = run();
        let config = LooConfig {
            shadow_counts: Some(vec![3, 5]),
            repeats: 2,
            seed: 9,
            ..Default::default()
        };
        let a = leave_one_out(&Threshold::global(), &keep, obs.view(), &config, |_, _| {}).unwrap();
        let b = leave_one_out(&Threshold::global(), &keep, obs.view(), &config, |_, _| {}).unwrap();
        assert_eq!(a, b);
        for bad in [
            LooConfig {
                shadow_counts: Some(vec![9]),
                ..Default::default()
            },
            LooConfig {
                repeats: 0,
                ..Default::default()
            },
            LooConfig {
                targets: Some(vec![9]),
                ..Default::default()
            },
            LooConfig {
                fprs: vec![0.0],
                ..Default::default()
            },
            LooConfig {
                groups: vec![EvalGroup {
                    name: "x".into(),
                    samples: vec![200],
                }],
                ..Default::default()
            },
        ] {
            assert!(
                leave_one_out(&Threshold::global(), &keep, obs.view(), &bad, |_, _| {}).is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn memorization_bins_become_groups() {
        let keep = KeepMatrix::balanced(4, 3, 0).unwrap();
        let outcome = ndarray::Array2::from_shape_fn((4, 3), |(k, i)| {
            if i == 0 {
                keep.get(k, 0) as u8 as f32
            } else {
                1.0
            }
        });
        let mem = memia_memorization::MemorizationConfig::default()
            .estimate(&keep, outcome.view())
            .unwrap();
        let groups = memorization_groups(&mem, &[-1.0, 0.5, 1.0]).unwrap();
        assert_eq!(groups[0].name, "mem [-1, 0.5)");
        assert_eq!(groups[1].name, "mem [0.5, 1]");
        assert_eq!(groups[1].samples, vec![0]);
        assert_eq!(groups[0].samples, vec![1, 2]);
    }
}
