//! Writing a finished audit as a report directory.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use memia_core::atomic_write;
use memia_metrics::{RocSummary, TprPoint};

use crate::audit::Audit;
use crate::error::{ReportError, Result};
use crate::plots;

/// Most points drawn in the memorization-vs-privacy scatter plot.
const SCATTER_POINTS: usize = 4000;

/// The files of a report directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportFiles {
    /// `summary.json`.
    pub summary: PathBuf,
    /// `samples.csv`.
    pub samples: PathBuf,
    /// The SVG plots.
    pub plots: Vec<PathBuf>,
    /// `index.html`, which shows everything together.
    pub index: PathBuf,
}

/// The plots of a report: file name, title.
pub const PLOTS: [(&str, &str); 4] = [
    ("roc.svg", "ROC of the attack on the target model (log-log)"),
    ("memorization.svg", "Memorization histogram"),
    (
        "privacy_vs_memorization.svg",
        "Memorization against privacy score",
    ),
    (
        "shadow_models.svg",
        "Attack quality against the number of shadow models",
    ),
];

fn write_text(path: &Path, text: &str) -> Result<()> {
    atomic_write(path, |f| f.write_all(text.as_bytes())).map_err(ReportError::from)
}

fn number(v: f64) -> String {
    if v.is_finite() {
        format!("{v}")
    } else if v.is_nan() {
        String::new()
    } else if v > 0.0 {
        "inf".into()
    } else {
        "-inf".into()
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

impl Audit {
    /// The per-sample table: index, label, provenance, memorization and its standard error,
    /// privacy score, attack score, membership in the target's training set, candidate or not.
    /// Undefined values are empty fields.
    pub fn samples_csv(&self) -> String {
        let mut out = String::from(
            "index,label,provenance,memorization,memorization_se,privacy_score,attack_score,member,candidate\n",
        );
        let mut candidate = vec![false; self.labels.len()];
        for &i in &self.candidates {
            candidate[i] = true;
        }
        for i in 0..self.labels.len() {
            let provenance = self
                .provenance
                .as_ref()
                .map_or(String::new(), |p| csv_field(&p[i]));
            let _ = writeln!(
                out,
                "{i},{},{provenance},{},{},{},{},{},{}",
                self.labels[i],
                number(self.memorization.score[i]),
                number(self.memorization.std_error[i]),
                number(self.privacy_score[i]),
                number(self.scores[i]),
                u8::from(self.members[i]),
                u8::from(candidate[i]),
            );
        }
        out
    }

    /// The summary as pretty-printed JSON (non-finite numbers become `null`).
    pub fn summary_json(&self) -> String {
        serde_json::to_string_pretty(&self.summary).expect("plain data serialises")
    }

    /// Writes the report into `dir` (created if needed): `summary.json`, `samples.csv`, the SVG
    /// plots and `index.html`. Every file is written atomically.
    pub fn write(&self, dir: impl AsRef<Path>) -> Result<ReportFiles> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(|source| ReportError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let summary = dir.join("summary.json");
        write_text(&summary, &self.summary_json())?;
        let samples = dir.join("samples.csv");
        write_text(&samples, &self.samples_csv())?;

        let curves: Vec<(String, &memia_metrics::RocCurve)> =
            self.roc.iter().map(|(n, c)| (n.clone(), c)).collect();
        let mem = self.memorization.score.to_vec();
        let rho = self
            .summary
            .memorization_vs_privacy
            .as_ref()
            .map_or("undefined".to_string(), |c| format!("{:.3}", c.statistic));
        let svgs = [
            plots::roc(&curves)?,
            plots::histogram(
                &mem,
                (-1.0, 1.0),
                40,
                &format!(
                    "Memorization ({} candidates: {})",
                    self.summary.memorization.candidates, self.summary.memorization.candidate_rule
                ),
                "memorization (correct when IN minus correct when OUT)",
            )?,
            plots::scatter(
                &mem,
                &self.privacy_score.to_vec(), // public field: any layout
                SCATTER_POINTS,
                &format!("Memorization vs privacy score (Spearman {rho})"),
                (
                    "memorization",
                    "privacy score |mu_in - mu_out| / (sd_in + sd_out)",
                ),
            )?,
            plots::shadow_curve(
                &self.summary.shadow_curve,
                self.summary.budget.candidates_median,
            )?,
        ];
        let mut plot_paths = Vec::new();
        for ((name, _), svg) in PLOTS.iter().zip(&svgs) {
            let path = dir.join(name);
            write_text(&path, svg)?;
            plot_paths.push(path);
        }
        let index = dir.join("index.html");
        write_text(&index, &self.index_html())?;
        Ok(ReportFiles {
            summary,
            samples,
            plots: plot_paths,
            index,
        })
    }

    /// The report's HTML page: the headline table and the plots (referenced by file name).
    pub fn index_html(&self) -> String {
        let s = &self.summary;
        let mut rows = vec![("all samples".to_string(), Some(&s.all))];
        rows.push((
            format!("candidates ({})", s.memorization.candidate_rule),
            s.candidates.as_ref(),
        ));
        rows.extend(s.groups.iter().map(|(n, r)| (n.clone(), r.as_ref())));
        let mut table = String::from(
            "<tr><th>samples</th><th>members</th><th>non-members</th><th>AUROC</th>\
             <th>TPR@0.001% FPR</th><th>TPR@0.1% FPR</th><th>TPR@1% FPR</th><th>balanced accuracy</th></tr>\n",
        );
        for (name, r) in rows {
            let cells = match r {
                Some(r) => {
                    let tpr = |f: f64| r.at(f).map_or("-".into(), tpr_cell);
                    format!(
                        "<td>{}</td><td>{}</td><td>{:.4}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.4}</td>",
                        r.positives,
                        r.negatives,
                        r.auroc,
                        tpr(1e-5),
                        tpr(1e-3),
                        tpr(1e-2),
                        r.balanced_accuracy
                    )
                }
                None => "<td colspan=\"7\">one class only: no ROC curve</td>".into(),
            };
            let _ = writeln!(table, "<tr><td>{}</td>{cells}</tr>", html_escape(&name));
        }
        let budget = |m: Option<f64>| m.map_or("not attackable".to_string(), |m| m.to_string());
        let figures: String = PLOTS
            .iter()
            .map(|(file, title)| {
                format!(
                    "<figure><img src=\"{file}\" alt=\"{title}\"><figcaption>{title}</figcaption></figure>\n"
                )
            })
            .collect();
        format!(
            r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>memia audit report</title>
<style>
body {{ font-family: sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
td, th {{ border: 1px solid #bbb; padding: 0.3em 0.6em; text-align: right; }}
td:first-child {{ text-align: left; }}
figure {{ display: inline-block; margin: 0.5em; }}
img {{ max-width: 100%; border: 1px solid #ddd; }}
</style>
</head>
<body>
<h1>memia audit report</h1>
<p>{models} models, {samples} samples, {classes} classes, {queries} queries per sample.
Attack: <b>{attack}</b> on target model {target}, with the other {shadows} models as shadow models.</p>
<p>Memorization (from the shadow models): mean {mem_mean:.4}, median standard error {mem_se:.3};
{candidates} candidates ({rule}); {undetermined} samples undetermined.
Budget planner (error {delta}): candidates need about {budget_c} shadow models, samples with
positive memorization about {budget_all}.</p>
<table>
{table}</table>
{figures}
<p>Files: <a href="summary.json">summary.json</a>, <a href="samples.csv">samples.csv</a>.</p>
</body>
</html>
"#,
            models = s.models,
            samples = s.samples,
            classes = s.classes,
            queries = s.queries,
            attack = html_escape(&s.attack),
            target = s.target,
            shadows = s.models - 1,
            mem_mean = s.memorization.mean,
            mem_se = s.memorization.median_std_error,
            candidates = s.memorization.candidates,
            rule = html_escape(&s.memorization.candidate_rule),
            undetermined = s.memorization.undetermined,
            delta = s.budget.delta,
            budget_c = budget(s.budget.candidates_median),
            budget_all = budget(s.budget.all_median),
        )
    }
}

/// A TPR for a table cell: the value and its 95% interval, or why there is none (an FPR that
/// allows no false positive among these non-members).
fn tpr_cell(p: &TprPoint) -> String {
    if p.measurable {
        format!("{:.4} [{:.3}, {:.3}]", p.tpr, p.tpr_lower, p.tpr_upper)
    } else {
        "not measurable (no false positive allowed)".into()
    }
}

/// One line per group for terminals: AUROC and TPR at 0.1% FPR (with its interval, or marked
/// as not measurable).
pub fn headline(name: &str, r: Option<&RocSummary>) -> String {
    match r {
        Some(r) => {
            let tpr = r.at(1e-3).map_or("-".into(), tpr_cell);
            format!(
                "{name:<32} {:>6} members {:>6} non-members  AUROC {:.4}  TPR@0.1%FPR {tpr}  balanced accuracy {:.4}",
                r.positives, r.negatives, r.auroc, r.balanced_accuracy
            )
        }
        None => format!("{name:<32} one class only: no ROC curve"),
    }
}
