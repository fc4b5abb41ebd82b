//! What `memia import` checks in models trained elsewhere before it trusts them: which file is
//! which model, whether each model's outputs belong to its row of the keep matrix and to the
//! pool's sample order, and whether they are logits at all.
//!
//! A wrong order of files or samples gives no error anywhere downstream: memorization and the
//! attack's AUROC just come out near zero and 0.5, as if the models leaked nothing. The files
//! themselves tell: a model is more accurate and more confident on the samples it trained on
//! than on the others, and that difference belongs to its own row of the keep matrix.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use memia_core::{KeepMatrix, Signal};
use ndarray::{Array2, Axis};
use rayon::prelude::*;

use crate::error::{Result, usage};
use crate::text::index_ranges;

/// The shapes a folder's model files are checked against.
pub(crate) struct Expected {
    /// Rows of the keep matrix (models).
    pub models: usize,
    /// Columns of the keep matrix (samples).
    pub samples: usize,
    /// Entries of the labels file, when known (to tell which array is transposed).
    pub labels: Option<usize>,
}

/// The `.npy` files of a `--logits` folder in model order, and a line that says how they were
/// ordered. Files named with the model index (`model_0.npy` ... `model_15.npy`, padded with
/// zeros or not, or counted from 1) are taken in numeric order, not name order (where
/// `model_10` sorts before `model_2`); names that do not give one order (no number, two
/// patterns, a number twice, a gap) are refused rather than guessed.
pub(crate) fn model_files(dir: &Path, expected: &Expected) -> Result<(Vec<PathBuf>, String)> {
    let location = dir.display();
    let mut npy = Vec::new();
    // Other files by extension, to say what the folder holds instead.
    let mut others: BTreeMap<String, usize> = BTreeMap::new();
    for entry in std::fs::read_dir(dir).map_err(crate::error::io(dir))? {
        let path = entry.map_err(crate::error::io(dir))?.path();
        if path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        {
            continue;
        }
        match path.extension().map(|e| e.to_string_lossy().into_owned()) {
            Some(e) if e == "npy" => npy.push(path),
            Some(e) if path.is_file() => *others.entry(format!(".{e}")).or_default() += 1,
            _ => {}
        }
    }
    // Name order first, so that messages name the same files on every file system.
    npy.sort();
    let k = expected.models;
    if npy.is_empty() {
        let holds = if others.is_empty() {
            "it holds no model files".to_string()
        } else {
            let listed: Vec<String> = others.iter().map(|(e, n)| format!("{n} {e}")).collect();
            format!("it holds {} files", listed.join(", "))
        };
        let torch = others
            .keys()
            .any(|e| [".pt", ".pth", ".ckpt", ".bin"].contains(&e.as_str()));
        return Err(usage(format!(
            "--logits {location}: no .npy files ({holds}); memia reads each model's logits as a \
             numpy array, N x C or N x A x C float32, one file per model: write them with \
             numpy.save(path, logits){}",
            if torch {
                " (from a PyTorch tensor: numpy.save(path, tensor.detach().cpu().numpy()); a \
                 torch.save file is a pickle, which memia does not read)"
            } else {
                ""
            }
        )));
    }
    if npy.len() != k {
        let mut message = format!(
            "--logits {location}: {} .npy files, but the keep matrix (--keep) has {k} rows, one per model",
            npy.len()
        );
        // A keep matrix of samples x models gives as many "models" as the pool has samples.
        if npy.len() == expected.samples
            && expected.labels.is_none_or(|l| l == expected.models)
            && expected.models != expected.samples
        {
            message.push_str(&format!(
                ": the keep matrix looks transposed ({} x {}, samples x models); it must be \
                 models x samples, {} x {} (numpy: keep.T)",
                expected.models, expected.samples, expected.samples, expected.models
            ));
        }
        if !others.is_empty() {
            let listed: Vec<String> = others.iter().map(|(e, n)| format!("{n} {e}")).collect();
            message.push_str(&format!(
                " (the folder also holds {} files)",
                listed.join(", ")
            ));
        }
        return Err(usage(message));
    }
    if npy.len() == 1 {
        let line = format!("--logits {location}: one model file, {}", name(&npy[0]));
        return Ok((npy, line));
    }
    order_by_number(dir, npy)
}

fn name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// A file stem as the text before its last number, the number, and the text after it:
/// `model_00012` -> (`model_`, `00012`, ``).
fn split_number(stem: &str) -> Option<(&str, &str, &str)> {
    let end = stem
        .char_indices()
        .rev()
        .find(|(_, c)| c.is_ascii_digit())
        .map(|(i, _)| i + 1)?;
    let start = stem[..end]
        .char_indices()
        .rev()
        .find(|(_, c)| !c.is_ascii_digit())
        .map_or(0, |(i, c)| i + c.len_utf8());
    Some((&stem[..start], &stem[start..end], &stem[end..]))
}

fn order_by_number(dir: &Path, files: Vec<PathBuf>) -> Result<(Vec<PathBuf>, String)> {
    let location = dir.display();
    let refuse = |why: String| {
        usage(format!(
            "--logits {location}: cannot tell which file is which model: {why}; name the files \
             with the model's row in the keep matrix, e.g. model_0.npy ... model_{}.npy",
            files.len() - 1
        ))
    };
    let mut numbered: Vec<(u64, String, PathBuf)> = Vec::with_capacity(files.len());
    let mut pattern: Option<(String, String, String)> = None;
    for path in &files {
        let file = name(path);
        let stem = file.strip_suffix(".npy").unwrap_or(&file);
        let Some((prefix, digits, suffix)) = split_number(stem) else {
            return Err(refuse(format!("{file} has no number in its name")));
        };
        let number: u64 = digits
            .parse()
            .map_err(|_| refuse(format!("the number in {file} is too large")))?;
        match &pattern {
            None => pattern = Some((prefix.to_string(), suffix.to_string(), file.clone())),
            Some((p, s, first)) if p != prefix || s != suffix => {
                return Err(refuse(format!(
                    "{first} and {file} are named differently (the text around the number differs)"
                )));
            }
            Some(_) => {}
        }
        numbered.push((number, file, path.clone()));
    }
    numbered.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
    if let Some(pair) = numbered.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(refuse(format!(
            "{} and {} both carry the number {}",
            pair[0].1, pair[1].1, pair[0].0
        )));
    }
    let k = numbered.len() as u64;
    let (first, last) = (numbered[0].0, numbered[numbered.len() - 1].0);
    if !(first <= 1 && last == first + k - 1) {
        let start = if first == 1 { 1 } else { 0 };
        let missing: Vec<usize> = (start..=last)
            .filter(|n| numbered.binary_search_by_key(n, |f| f.0).is_err())
            .take(8)
            .map(|n| n as usize)
            .collect();
        return Err(refuse(format!(
            "the {k} files are numbered {first}-{last}, not 0-{} (or 1-{k}){}",
            k - 1,
            if missing.is_empty() {
                String::new()
            } else {
                format!("; missing: {}", index_ranges(&missing))
            }
        )));
    }
    let mut by_name: Vec<&String> = numbered.iter().map(|f| &f.1).collect();
    by_name.sort();
    let (first_name, last_name) = (&numbered[0].1, &numbered[numbered.len() - 1].1);
    let mut line = format!(
        "--logits {location}: {first_name} ... {last_name} taken in numeric order as models 0-{}",
        k - 1
    );
    if first == 1 {
        line.push_str(&format!(
            " ({first_name} is model 0, the keep matrix's first row)"
        ));
    }
    if let Some(i) = (0..numbered.len()).find(|&i| *by_name[i] != numbered[i].1) {
        line.push_str(&format!(
            " (not name order, which puts {} before {})",
            by_name[i], numbered[i].1
        ));
    }
    Ok((numbered.into_iter().map(|f| f.2).collect(), line))
}

/// How one model fares on the samples of one keep row: accuracy and true-class confidence on
/// the row's samples (IN) and on the others (OUT).
#[derive(Debug, Clone, Copy)]
struct Fit {
    acc_in: f64,
    acc_out: f64,
    conf_in: f64,
    conf_out: f64,
    conf_gap: f64,
    /// Standard error of `conf_gap`.
    conf_se: f64,
}

/// What the checks of an import need from each model, gathered as the models are read one at
/// a time (so the checks cost no second pass and no K x N x A x C array): per model and sample,
/// the fraction of queries it answers right and its mean softmax probability of the true class,
/// and whether its outputs look like probabilities.
///
/// The checks are a warning about gross mistakes (shuffled files, probabilities), which a few
/// thousand samples show as well as fifty thousand: they read at most [`CHECKED_SAMPLES`]
/// samples, evenly spread, so that they cost little beside reading the files.
pub(crate) struct Outcomes<'l> {
    labels: &'l [u32],
    /// The samples checked, in pool order.
    samples: Vec<usize>,
    correct: Array2<f32>,
    confidence: Array2<f32>,
    probabilities: Vec<bool>,
}

/// Models the warning names one by one (the others are counted).
const SHOWN_MODELS: usize = 12;

/// Most samples the checks of an import read per model.
pub(crate) const CHECKED_SAMPLES: usize = 2048;

impl<'l> Outcomes<'l> {
    /// Room for `models` models on (at most [`CHECKED_SAMPLES`] of) the samples of `labels`.
    pub(crate) fn new(models: usize, labels: &'l [u32]) -> Self {
        let n = labels.len();
        // A seeded random subset, in pool order: a fixed stride could fall in step with how the
        // pool is laid out (labels i % C) and see a single class.
        let samples: Vec<usize> = if n <= CHECKED_SAMPLES {
            (0..n).collect()
        } else {
            let mut order: Vec<usize> = (0..n).collect();
            order.sort_by_key(|&i| memia_core::rng::splitmix64(0x1a9f_0c3e ^ i as u64));
            let mut chosen = order[..CHECKED_SAMPLES].to_vec();
            chosen.sort_unstable();
            chosen
        };
        Outcomes {
            labels,
            correct: Array2::zeros((models, samples.len())),
            confidence: Array2::zeros((models, samples.len())),
            samples,
            probabilities: vec![false; models],
        }
    }

    /// Model `m`'s N x A x C logits.
    pub(crate) fn see(&mut self, m: usize, model: ndarray::ArrayView3<'_, f32>) {
        let (n, a, _) = model.dim();
        if m >= self.probabilities.len() || n != self.labels.len() {
            return; // refused by the import's own checks
        }
        let labels = self.labels;
        let outcomes: Vec<(f32, f32)> = self
            .samples
            .par_iter()
            .map(|&i| {
                let y = labels[i] as usize;
                let (mut right, mut conf) = (0.0f64, 0.0f64);
                for row in model.index_axis(Axis(0), i).outer_iter() {
                    // memia's own signals: the first largest logit, the softmax of the label.
                    let z = row.to_vec();
                    right += Signal::Correct.of(&z, y);
                    conf += Signal::Probability.of(&z, y);
                }
                ((right / a as f64) as f32, (conf / a as f64) as f32)
            })
            .collect();
        for (j, (right, conf)) in outcomes.into_iter().enumerate() {
            self.correct[[m, j]] = right;
            self.confidence[[m, j]] = conf;
        }
        self.probabilities[m] = self.samples.iter().all(|&i| {
            model
                .index_axis(Axis(0), i)
                .lanes(Axis(1))
                .into_iter()
                .all(|row| {
                    row.iter().all(|&v| v >= 0.0)
                        && (row.iter().map(|&v| f64::from(v)).sum::<f64>() - 1.0).abs() <= 1e-3
                })
        });
    }

    /// The models whose outputs look like probabilities (every row non-negative, summing to 1).
    pub(crate) fn probability_models(&self) -> Vec<usize> {
        (0..self.probabilities.len())
            .filter(|&m| self.probabilities[m])
            .collect()
    }
}

/// Mean and variance of `values` where `mask` is `inside`.
fn moments(
    values: ndarray::ArrayView1<'_, f32>,
    mask: ndarray::ArrayView1<'_, bool>,
    inside: bool,
) -> (f64, f64, f64) {
    let (mut n, mut s, mut s2) = (0.0f64, 0.0f64, 0.0f64);
    for (&v, &m) in values.iter().zip(mask) {
        if m == inside {
            let v = f64::from(v);
            n += 1.0;
            s += v;
            s2 += v * v;
        }
    }
    let mean = s / n.max(1.0);
    (n, mean, (s2 / n.max(1.0) - mean * mean).max(0.0))
}

fn fit(
    correct: &Array2<f32>,
    confidence: &Array2<f32>,
    keep: &KeepMatrix,
    model: usize,
    row: usize,
) -> Fit {
    let mask = keep.row(row);
    let (n_in, acc_in, _) = moments(correct.row(model), mask, true);
    let (n_out, acc_out, _) = moments(correct.row(model), mask, false);
    let (_, c_in, v_in) = moments(confidence.row(model), mask, true);
    let (_, c_out, v_out) = moments(confidence.row(model), mask, false);
    Fit {
        acc_in,
        acc_out,
        conf_in: c_in,
        conf_out: c_out,
        conf_gap: c_in - c_out,
        conf_se: (v_in / n_in.max(1.0) + v_out / n_out.max(1.0)).sqrt(),
    }
}

/// The models that look shuffled or mismatched, one line each: those no more confident on their
/// own training samples (their keep row) than on the others, or near chance on them. For each
/// one, the keep row its outputs fit clearly better, if any: the sign of files in the wrong
/// order. `names` are the models' files, when they came one per file.
pub(crate) fn mismatched_models(
    keep: &KeepMatrix,
    outcomes: &Outcomes<'_>,
    names: Option<&[String]>,
) -> Vec<String> {
    if keep.samples() != outcomes.labels.len() || outcomes.correct.dim().0 != keep.models() {
        return Vec::new();
    }
    // The checked samples only.
    let Ok(keep) = keep.select_samples(&outcomes.samples) else {
        return Vec::new();
    };
    let keep = &keep;
    let labels: Vec<u32> = outcomes
        .samples
        .iter()
        .map(|&i| outcomes.labels[i])
        .collect();
    let (k, n) = (keep.models(), keep.samples());
    if k == 0 || n == 0 {
        return Vec::new();
    }
    let (correct, confidence) = (&outcomes.correct, &outcomes.confidence);
    let keep_f = keep.as_array().mapv(|b| f32::from(u8::from(b)));
    let totals = confidence.sum_axis(Axis(1));
    let in_counts = keep_f.sum_axis(Axis(1));
    // Always answering the commonest label.
    let mut counts: BTreeMap<u32, usize> = BTreeMap::new();
    for &y in &labels {
        *counts.entry(y).or_default() += 1;
    }
    let chance = counts.values().copied().max().unwrap_or(0) as f64 / n as f64;
    let mut lines = Vec::new();
    for m in 0..k {
        let n_in = f64::from(in_counts[m]);
        if n_in == 0.0 || n_in == n as f64 {
            continue; // no IN or no OUT samples: nothing to compare
        }
        let own = fit(correct, confidence, keep, m, m);
        let near_chance =
            own.acc_in <= chance + (3.0 * (chance * (1.0 - chance) / n_in).sqrt()).max(0.02);
        let no_gap = own.conf_gap <= 2.0 * own.conf_se;
        if !near_chance && !no_gap {
            continue;
        }
        // The keep row that fits this model's confidence best, for the lines the warning shows
        // (a product of its confidence with every row: O(K N) each, not a K x K matrix).
        let best = if lines.len() < SHOWN_MODELS {
            let in_sums = keep_f.dot(&confidence.row(m));
            let gap_against = |j: usize| {
                let c = f64::from(in_counts[j]);
                let out = n as f64 - c;
                if c == 0.0 || out == 0.0 {
                    f64::NEG_INFINITY
                } else {
                    f64::from(in_sums[j]) / c - f64::from(totals[m] - in_sums[j]) / out
                }
            };
            (0..k)
                .filter(|&j| j != m)
                .max_by(|&a, &b| gap_against(a).total_cmp(&gap_against(b)))
        } else {
            None
        };
        let better = best
            .map(|j| (j, fit(correct, confidence, keep, m, j)))
            .filter(|(_, f)| {
                f.conf_gap > 4.0 * f.conf_se
                    && f.conf_gap
                        > own.conf_gap + 4.0 * (f.conf_se.powi(2) + own.conf_se.powi(2)).sqrt()
            });
        let who = match names {
            Some(names) => format!("model {m} ({})", names[m]),
            None => format!("model {m}"),
        };
        let mut line = format!(
            "{who}: accuracy {:.3} on its own training samples (keep row {m}) against {:.3} on the others",
            own.acc_in, own.acc_out
        );
        if near_chance {
            line.push_str(&format!(
                ", near chance ({chance:.3}, always answering the commonest label): are its logits in \
                 the pool's sample order, and the labels the pool's?"
            ));
        } else {
            line.push_str(&format!(
                ", true-class confidence {:.3} against {:.3} ({:+.1} standard errors)",
                own.conf_in,
                own.conf_out,
                own.conf_gap / own.conf_se.max(f64::MIN_POSITIVE)
            ));
        }
        if let Some((j, f)) = better {
            line.push_str(&format!(
                "; its outputs fit keep row {j} (accuracy {:.3} against {:.3}): {}?",
                f.acc_in,
                f.acc_out,
                match names {
                    Some(names) => format!("the model of {} (a file in the wrong order)", names[j]),
                    None => format!("the model of row {j} (models in the wrong order)"),
                }
            ));
        } else if !near_chance {
            line.push_str(": a model in the wrong order, or one that does not fit its training samples at all?");
        }
        lines.push(line);
    }
    lines
}

/// The models whose every output row (per sample and query) is non-negative and sums to 1
/// within 1e-3: probabilities, not logits.
/// Prints the warnings of an import on standard error, also under `--quiet`: they say the
/// result is likely wrong, not how the work goes.
pub(crate) fn warn(mismatched: &[String], models: usize, probabilities: &[usize]) {
    if !mismatched.is_empty() {
        eprintln!(
            "warning: {} of {models} imported models look shuffled or mismatched: they are no more \
             confident on the samples their keep row says they trained on than on the others, or \
             near chance; their memorization and attack scores will be meaningless:",
            mismatched.len()
        );
        for line in mismatched.iter().take(SHOWN_MODELS) {
            eprintln!("warning:   {line}");
        }
        if mismatched.len() > SHOWN_MODELS {
            eprintln!(
                "warning:   ... and {} more",
                mismatched.len() - SHOWN_MODELS
            );
        }
        eprintln!(
            "warning: check that file k holds the model of keep row k, that every model's logits \
             are in the pool's sample order, and that the labels are the pool's"
        );
    }
    if !probabilities.is_empty() {
        eprintln!(
            "warning: the outputs of {} {} look like probabilities, not logits (every row is \
             non-negative and sums to 1): memia's signals need logits, the values before the \
             softmax; import numpy.log(p) instead (log-probabilities are logits up to a constant \
             per row, which changes none of memia's signals)",
            if probabilities.len() == 1 {
                "model"
            } else {
                "models"
            },
            index_ranges(probabilities)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_split_off_names() {
        assert_eq!(split_number("model_00012"), Some(("model_", "00012", "")));
        assert_eq!(
            split_number("run3_model7_logits"),
            Some(("run3_model", "7", "_logits"))
        );
        assert_eq!(split_number("ünï9"), Some(("ünï", "9", "")));
        assert_eq!(split_number("12"), Some(("", "12", "")));
        assert_eq!(split_number("model"), None);
    }

    #[test]
    fn probabilities_are_told_from_logits() {
        let p = ndarray::Array4::from_shape_fn((2, 3, 1, 2), |(m, i, _, c)| {
            if m == 0 {
                if c == 0 { 0.25 } else { 0.75 }
            } else {
                (i + c) as f32
            }
        });
        let labels = [0, 1, 0];
        let mut outcomes = Outcomes::new(2, &labels);
        for (m, model) in p.outer_iter().enumerate() {
            outcomes.see(m, model);
        }
        assert_eq!(outcomes.probability_models(), vec![0]);
        // Model 1 answers class 1 on every sample (its logits grow with the class).
        assert_eq!(outcomes.correct.row(1).to_vec(), [0.0, 1.0, 0.0]);
    }
}
