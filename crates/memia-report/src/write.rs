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
    /// `samples/sample_<i>.png`: the thumbnails of the samples the report singles out.
    pub thumbnails: Vec<PathBuf>,
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

/// `s` with `&`, `<`, `>` and `"` escaped, for HTML text and attribute values.
pub fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

impl Audit {
    /// The per-sample table: index, label, provenance, memorization and its standard error,
    /// privacy score, attack score, membership in the target's training set, candidate or not.
    /// Undefined values (and the membership of an external target given without it) are empty
    /// fields.
    pub fn samples_csv(&self) -> String {
        let mut out = String::from(
            "index,label,provenance,memorization,memorization_se,privacy_score,attack_score,member,candidate,groups\n",
        );
        let mut candidate = vec![false; self.labels.len()];
        for &i in &self.candidates {
            candidate[i] = true;
        }
        // The names of the named sets each sample is in, `;`-separated.
        let groups = self.sample_groups();
        for i in 0..self.labels.len() {
            let provenance = self
                .provenance
                .as_ref()
                .map_or(String::new(), |p| crate::csv::text_cell(&p[i]));
            let _ = writeln!(
                out,
                "{i},{},{provenance},{},{},{},{},{},{},{}",
                self.labels[i],
                number(self.memorization.score[i]),
                number(self.memorization.std_error[i]),
                number(self.privacy_score[i]),
                number(self.scores[i]),
                self.members
                    .as_ref()
                    .map_or(String::new(), |m| u8::from(m[i]).to_string()),
                u8::from(candidate[i]),
                crate::csv::text_cell(&groups[i].join(";")),
            );
        }
        out
    }

    /// The names of the named sets (the canaries, an import's groups) each sample is in, as
    /// `samples.csv` and the sample cards show them.
    fn sample_groups(&self) -> Vec<Vec<&str>> {
        let mut groups = vec![Vec::new(); self.labels.len()];
        for g in &self.groups {
            for &i in &g.samples {
                groups[i].push(g.name.as_str());
            }
        }
        groups
    }

    /// The summary as pretty-printed JSON (non-finite numbers become `null`).
    pub fn summary_json(&self) -> String {
        serde_json::to_string_pretty(&self.summary).expect("plain data serialises")
    }

    /// Writes the report into `dir`: `summary.json`, `samples.csv`, the SVG plots, `index.html`
    /// and the thumbnails. The files are written into a staging directory beside `dir` and put in
    /// its place as a whole ([`memia_core::replace_dir`]), so that a report killed part-way
    /// leaves the previous report intact and a reader never sees files of two runs side by side.
    /// An existing `dir` may hold only a previous report's files: anything else is refused
    /// rather than deleted.
    pub fn write(&self, dir: impl AsRef<Path>) -> Result<ReportFiles> {
        let dest = dir.as_ref();
        refuse_foreign_files(dest)?;
        if let Some(parent) = dest.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| ReportError::Io {
                path: parent.to_path_buf(),
                source,
            })?;
        }
        // Staging directories of reports killed more than an hour ago.
        memia_core::remove_stale_temporaries_of(dest, std::time::Duration::from_secs(3600));
        let staging = memia_core::temporary_dir_for(dest).map_err(|source| ReportError::Io {
            path: dest.to_path_buf(),
            source,
        })?;
        let staged = staging.path().to_path_buf();
        let files = self.write_files(&staged)?;
        memia_core::replace_dir(staging, dest)?;
        Ok(files.moved(&staged, dest))
    }

    /// Writes every file of the report into the (new, empty) directory `dir`.
    fn write_files(&self, dir: &Path) -> Result<ReportFiles> {
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
        let mut thumbnails = Vec::new();
        if !self.thumbnails.is_empty() {
            let folder = dir.join("samples");
            std::fs::create_dir_all(&folder).map_err(|source| ReportError::Io {
                path: folder.clone(),
                source,
            })?;
            for (&i, image) in &self.thumbnails {
                let path = folder.join(thumbnail_name(i));
                let png = encode_png(image).map_err(|e| ReportError::Plot {
                    name: "thumbnail",
                    reason: e.to_string(),
                })?;
                atomic_write(&path, |f| f.write_all(&png))?;
                thumbnails.push(path);
            }
        }
        let index = dir.join("index.html");
        write_text(&index, &self.index_html())?;
        Ok(ReportFiles {
            summary,
            samples,
            plots: plot_paths,
            index,
            thumbnails,
        })
    }

    /// The report's HTML page: what was audited and by whom, the headline table (only sets the
    /// attack could be scored on; the others listed with the reason), the plots with what each
    /// line and band means, the shadow-model curve's table with its unscored samples, and the
    /// samples it singles out (file names are relative to the report directory).
    pub fn index_html(&self) -> String {
        let s = &self.summary;
        let mut rows = Vec::new();
        if let Some(all) = &s.all {
            rows.push(("all samples".to_string(), all));
        }
        if let Some(c) = &s.candidates {
            rows.push((format!("candidates ({})", s.memorization.candidate_rule), c));
        }
        rows.extend(
            s.groups
                .iter()
                .filter_map(|(n, r)| r.as_ref().map(|r| (n.clone(), r))),
        );
        let mut table = String::new();
        if !rows.is_empty() {
            table.push_str(
                "<table>\n<tr><th>samples</th><th>members</th><th>non-members</th><th>AUROC</th>\
                 <th>TPR@0.001% FPR</th><th>TPR@0.1% FPR</th><th>TPR@1% FPR</th><th>balanced accuracy</th>\
                 <th>undetermined (members / non-members)</th></tr>\n",
            );
            for (name, r) in rows {
                let tpr = |f: f64| r.at(f).map_or("-".into(), tpr_cell);
                let _ = writeln!(
                    table,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{:.4}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.4}</td><td>{} / {}</td></tr>",
                    html_escape(&name),
                    r.positives,
                    r.negatives,
                    r.auroc,
                    tpr(1e-5),
                    tpr(1e-3),
                    tpr(1e-2),
                    r.balanced_accuracy,
                    r.undetermined.members,
                    r.undetermined.non_members
                );
            }
            table.push_str(
                "</table>\n<p class=\"note\">TPR cells: the estimate and its 95% Clopper-Pearson \
                 interval over the members; \"not measurable\" where the FPR is below one false \
                 positive among that set's non-members.</p>\n",
            );
        }
        if !s.not_scored.is_empty() {
            table.push_str("<p>Not scored:</p>\n<ul>\n");
            for n in &s.not_scored {
                let _ = writeln!(
                    table,
                    "<li>{}: {}</li>",
                    html_escape(&n.set),
                    html_escape(&n.reason.to_string())
                );
            }
            table.push_str("</ul>\n");
        }
        let producers = match s.producers.len() {
            0 => String::new(),
            1 => format!("<p>Models: {}.</p>\n", html_escape(&s.producers[0])),
            n => {
                let items: String = s
                    .producers
                    .iter()
                    .map(|p| format!("<li>{}</li>", html_escape(p)))
                    .collect();
                format!(
                    "<p class=\"warning\">The run mixes {n} producers (model families): its \
                     shadow models are only as comparable as they are.</p>\n<ul>{items}</ul>\n"
                )
            }
        };
        let budget = |m: Option<f64>| m.map_or("not attackable".to_string(), |m| m.to_string());
        let explanations = self.plot_explanations();
        let figures: String = PLOTS
            .iter()
            .zip(&explanations)
            .map(|((file, title), explanation)| {
                format!(
                    "<figure><img src=\"{file}\" alt=\"{title}\"><figcaption><b>{title}.</b> {explanation}</figcaption></figure>\n"
                )
            })
            .collect();
        let target = match s.target {
            Some(t) => format!(
                "target model {t}, with the other {} models as shadow models",
                s.shadow_models
            ),
            None => format!(
                "the external target {}, with all {} models of the run as shadow models",
                html_escape(&s.target_name),
                s.shadow_models
            ),
        };
        format!(
            r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>memia audit report</title>
<style>
body {{ font-family: sans-serif; margin: 2em; color: #222; max-width: 1400px; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
td, th {{ border: 1px solid #bbb; padding: 0.3em 0.6em; text-align: right; }}
td:first-child {{ text-align: left; }}
figure {{ display: inline-block; vertical-align: top; margin: 0.5em; max-width: 660px; }}
figcaption {{ font-size: 0.9em; }}
img {{ max-width: 100%; border: 1px solid #ddd; }}
.note {{ font-size: 0.9em; color: #555; }}
.warning {{ color: #a40; font-weight: bold; }}
.panels {{ display: flex; flex-wrap: wrap; gap: 1.5em; }}
.panel {{ flex: 1 1 600px; }}
.cards {{ display: flex; flex-wrap: wrap; gap: 0.5em; }}
.card {{ border: 1px solid #ccc; padding: 0.3em; font-size: 0.8em; width: 8.5em; }}
.card img {{ width: 64px; height: 64px; image-rendering: pixelated; display: block; margin: 0 auto 0.2em; }}
</style>
</head>
<body>
<h1>memia audit report</h1>
<p>{models}, {samples}, {classes}, {queries} per sample.
Attack: <b>{attack}</b> on {target}.</p>
{producers}<p>Memorization (from the shadow models): mean {mem_mean:.4}, median standard error {mem_se:.3};
{candidates} candidates ({rule}); {undetermined} samples undetermined.
Budget planner (error {delta}): candidates need about {budget_c} shadow models, samples with
positive memorization about {budget_all}.</p>
{table}{figures}
{curve_table}
{panels}
<p>Files: <a href="summary.json">summary.json</a>, <a href="samples.csv">samples.csv</a>.</p>
</body>
</html>
"#,
            models = counted(s.models, "model", "models"),
            samples = counted(s.samples, "sample", "samples"),
            classes = counted(s.classes, "class", "classes"),
            queries = counted(s.queries, "query", "queries"),
            attack = html_escape(&s.attack),
            mem_mean = s.memorization.mean,
            mem_se = s.memorization.median_std_error,
            candidates = s.memorization.candidates,
            rule = html_escape(&s.memorization.candidate_rule),
            undetermined = s.memorization.undetermined,
            delta = s.budget.delta,
            budget_c = budget(s.budget.candidates_median),
            budget_all = budget(s.budget.all_median),
            curve_table = self.curve_table(),
            panels = self.panels_html(),
        )
    }

    /// What every line and band of each plot in [`PLOTS`] means, in the same order.
    fn plot_explanations(&self) -> [String; 4] {
        let s = &self.summary;
        [
            "One solid line per set of samples (all samples, the high-memorization candidates, \
             each group): the attack's true positive rate against its false positive rate on \
             the target, both on log scales, so that the low-FPR end an auditor cares about is \
             visible; rates of zero are drawn at 1e-5. The grey diagonal is a random guess. \
             The dashed vertical line in each set's colour is the FPR of one false positive \
             among that set's non-members: left of it the curve rests on no false positive and \
             its TPR is not measured."
                .to_string(),
            format!(
                "Bars: how many samples have each memorization score (the rate at which shadow \
                 models that trained on a sample classify it correctly, minus the rate of those \
                 that did not), estimated from the target's {} shadow models. Samples at the \
                 right are memorized; the {} at or above the threshold are the candidates.",
                s.shadow_models, s.memorization.candidates
            ),
            "One dot per sample (at most 4,000, evenly strided): its memorization against its \
             privacy score, the distance between the shadow models' IN and OUT confidence \
             distributions in units of their spreads. The theory says memorized samples are \
             the exposed ones: the dots should rise to the right (the title gives the Spearman \
             correlation)."
                .to_string(),
            format!(
                "Leave one model out: each of the first {} models of the run in turn is the \
                 target, attacked with a random draw of 1, 2, 4, ... of the others as shadow \
                 models, and each set's (sample, target) pairs of all those targets are pooled \
                 into one ROC curve. Solid line with dots: each set's figure (the mean over {} \
                 random draws of the shadow models); light band in the same colour, drawn when \
                 there are several draws: the lowest to the highest draw. The TPR panel has no \
                 point where 0.1% FPR allows no false positive among the pooled non-members. \
                 The grey vertical line is the budget planner's median prediction for the \
                 candidates. The table below gives each point's pairs and the ones the attack \
                 could not score.",
                self.config.curve_targets.clamp(1, s.models),
                self.config.curve_repeats.max(1)
            ),
        ]
    }

    /// The shadow-model curve as a table: per set and shadow-model count, the draws, the
    /// (sample, target) pairs scored and not scored (online attacks cannot score a sample
    /// without IN and OUT shadow models), AUROC and TPR at 0.1% FPR (means over the draws).
    /// Points that scored nothing are left out and counted.
    fn curve_table(&self) -> String {
        let rows = &self.summary.shadow_curve.rows;
        if rows.is_empty() {
            return String::new();
        }
        let mut keys: Vec<(String, usize)> = Vec::new();
        for r in rows {
            let key = (r.group.clone(), r.shadow_models);
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
        let mut out = String::from(
            "<h2 id=\"curve\">Attack quality against the number of shadow models</h2>\n<p class=\"note\">Each \
             row pools the (sample, target) pairs of all the curve's targets into one ROC curve; \
             with several random draws of the shadow models, the figures are their means.</p>\n\
             <table>\n<tr><th>set</th><th>shadow models</th><th>draws</th>\
             <th>(sample, target) pairs scored</th><th>pairs not scorable</th>\
             <th>AUROC</th><th>TPR@0.1% FPR</th></tr>\n",
        );
        let mut empty = 0;
        for (group, m) in keys {
            let at: Vec<_> = rows
                .iter()
                .filter(|r| r.group == group && r.shadow_models == m)
                .collect();
            let judged: Vec<_> = at.iter().filter(|r| r.scored > 0).collect();
            if judged.is_empty() {
                empty += 1;
                continue;
            }
            let mean = |v: &mut dyn Iterator<Item = f64>| {
                let v: Vec<f64> = v.filter(|x| x.is_finite()).collect();
                (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
            };
            let scored = mean(&mut at.iter().map(|r| r.scored as f64)).unwrap_or(0.0);
            let unscored = mean(&mut at.iter().map(|r| r.unscored as f64)).unwrap_or(0.0);
            let auroc = mean(&mut judged.iter().map(|r| r.auroc));
            let tprs: Vec<f64> = judged
                .iter()
                .filter(|r| r.measurable(1e-3))
                .filter_map(|r| {
                    r.tpr_at_fpr
                        .iter()
                        .find(|p| (p.0 - 1e-3).abs() < 1e-12)
                        .map(|p| p.1)
                })
                .collect();
            let tpr = if tprs.is_empty() {
                "not measurable (too few non-members)".to_string()
            } else {
                let of = if judged.len() > 1 {
                    format!(" ({} of {} draws)", tprs.len(), judged.len())
                } else {
                    String::new()
                };
                format!("{:.4}{of}", tprs.iter().sum::<f64>() / tprs.len() as f64)
            };
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td>{m}</td><td>{}</td><td>{scored:.0}</td><td>{unscored:.0}</td><td>{}</td><td>{tpr}</td></tr>",
                html_escape(&group),
                at.len(),
                auroc.map_or("-".into(), |a| format!("{a:.4}")),
            );
        }
        out.push_str("</table>\n");
        if empty > 0 {
            let _ = writeln!(
                out,
                "<p class=\"note\">{empty} points of the curve are left out: the attack could not score any of their samples.</p>"
            );
        }
        out
    }

    /// The singled-out samples, panel by panel: thumbnail (image pools), index, label,
    /// memorization with its interval, attack score, membership and provenance.
    fn panels_html(&self) -> String {
        if self.panels.is_empty() {
            return String::new();
        }
        let mut out = String::from("<h2 id=\"samples\">The samples behind the numbers</h2>\n");
        if self.thumbnails.is_empty() {
            out.push_str(
                "<p class=\"note\">No thumbnails: the pool's pixels were not given (an imported \
                 run without <code>memia import --images</code>, or a pool that is not \
                 images).</p>\n",
            );
        }
        out.push_str("<div class=\"panels\">\n");
        let m = &self.memorization;
        let groups = self.sample_groups();
        for panel in &self.panels {
            let _ = writeln!(
                out,
                "<div class=\"panel\"><h3>{}</h3><div class=\"cards\">",
                html_escape(&panel.title)
            );
            for &i in &panel.samples {
                let image = if self.thumbnails.contains_key(&i) {
                    format!(
                        "<img src=\"samples/{}\" alt=\"sample {i}\">",
                        thumbnail_name(i)
                    )
                } else {
                    String::new()
                };
                let membership = match &self.members {
                    Some(members) if members[i] => "member",
                    Some(_) => "non-member",
                    None => "membership unknown",
                };
                let provenance = self
                    .provenance
                    .as_ref()
                    .map_or(String::new(), |p| format!("<br>{}", html_escape(&p[i])));
                let in_groups = if groups[i].is_empty() {
                    String::new()
                } else {
                    format!("<br>in {}", html_escape(&groups[i].join(", ")))
                };
                let _ = writeln!(
                    out,
                    "<div class=\"card\">{image}#{i} label {}<br>mem {} [{}, {}]<br>score {}<br>{membership}{provenance}{in_groups}</div>",
                    self.labels[i],
                    short(m.score[i]),
                    short(m.lower[i]),
                    short(m.upper[i]),
                    short(self.scores[i]),
                );
            }
            out.push_str("</div></div>\n");
        }
        out.push_str("</div>\n");
        out
    }
}

/// A number for a sample card: three decimals, or "-" where undefined.
fn short(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.3}")
    } else if v.is_nan() {
        "-".into()
    } else {
        number(v)
    }
}

/// The file of sample `i`'s thumbnail inside `samples/`.
impl ReportFiles {
    /// The same files after their directory `from` became `to`.
    fn moved(self, from: &Path, to: &Path) -> ReportFiles {
        let moved = |p: PathBuf| to.join(p.strip_prefix(from).unwrap_or(&p));
        ReportFiles {
            summary: moved(self.summary),
            samples: moved(self.samples),
            plots: self.plots.into_iter().map(moved).collect(),
            index: moved(self.index),
            thumbnails: self.thumbnails.into_iter().map(moved).collect(),
        }
    }
}

/// Refuses an existing report directory that holds anything but a report's own files, so that
/// replacing it never deletes a user's other files (`memia report RUN -o .`, say).
fn refuse_foreign_files(dir: &Path) -> Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(ReportError::Io {
                path: dir.to_path_buf(),
                source,
            });
        }
    };
    let ours = |name: &str| {
        ["summary.json", "samples.csv", "index.html", "samples"].contains(&name)
            || PLOTS.iter().any(|(plot, _)| *plot == name)
            || memia_core::is_temporary_name(name, "")
    };
    let foreign: Vec<String> = entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| !ours(name))
        .collect();
    if foreign.is_empty() {
        Ok(())
    } else {
        Err(ReportError::ForeignFiles {
            dir: dir.to_path_buf(),
            files: foreign,
        })
    }
}

fn thumbnail_name(i: usize) -> String {
    format!("sample_{i}.png")
}

/// A thumbnail as PNG bytes.
fn encode_png(image: &crate::Thumbnail) -> std::result::Result<Vec<u8>, png::EncodingError> {
    let mut bytes = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut bytes, image.width as u32, image.height as u32);
        encoder.set_color(if image.channels == 3 {
            png::ColorType::Rgb
        } else {
            png::ColorType::Grayscale
        });
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header()?;
        writer.write_image_data(&image.bytes)?;
    }
    Ok(bytes)
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

/// `n` and the noun in the number it takes: `1 query`, `2 queries`.
pub fn counted(n: usize, singular: &str, plural: &str) -> String {
    format!("{n} {}", if n == 1 { singular } else { plural })
}

/// The shape of a run in words: `16 models x 1750 samples x 1 query x 10 classes`.
pub fn run_shape(models: usize, samples: usize, queries: usize, classes: usize) -> String {
    format!(
        "{} x {} x {} x {}",
        counted(models, "model", "models"),
        counted(samples, "sample", "samples"),
        counted(queries, "query", "queries"),
        counted(classes, "class", "classes")
    )
}

/// One line per group for terminals: AUROC and TPR at 0.1% FPR (with its interval, or marked
/// as not measurable).
pub fn headline(name: &str, r: Option<&RocSummary>) -> String {
    match r {
        Some(r) => {
            let tpr = r.at(1e-3).map_or("-".into(), tpr_cell);
            let undetermined = match r.undetermined.total() {
                0 => String::new(),
                _ => format!(
                    "  undetermined: {} members (not detected), {} non-members (left out)",
                    r.undetermined.members, r.undetermined.non_members
                ),
            };
            format!(
                "{name:<32} {:>6} members {:>6} non-members  AUROC {:.4}  TPR@0.1%FPR {tpr}  balanced accuracy {:.4}{undetermined}",
                r.positives, r.negatives, r.auroc, r.balanced_accuracy
            )
        }
        None => format!("{name:<32} one class only: no ROC curve"),
    }
}
