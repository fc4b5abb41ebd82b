//! SVG plots drawn with plotters' SVG backend (text is left to the viewer's fonts, so no font
//! library is needed).

use memia_attacks::loo::{LooReport, LooRow};

/// Reads one number off a leave-one-out row.
type RowValue<'a> = &'a dyn Fn(&LooRow) -> f64;
use memia_metrics::RocCurve;
use plotters::prelude::*;

use crate::error::{ReportError, Result};

const SIZE: (u32, u32) = (640, 480);
const FLOOR: f64 = 1e-5;
/// Colours of successive series (colour-blind safe: Okabe-Ito).
const PALETTE: [RGBColor; 5] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(230, 159, 0),
];

/// A chart builder with the report's caption font, margins and label areas.
fn framed<'a, 'b, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, plotters::coord::Shift>,
    title: impl AsRef<str>,
    font_size: u32,
) -> ChartBuilder<'a, 'b, DB> {
    let mut builder = ChartBuilder::on(area);
    builder
        .caption(title, ("sans-serif", font_size))
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(60);
    builder
}

/// Tick labels for a linear axis over `range`: enough decimals that neighbouring ticks, as
/// close as plotters may place them, never print alike (two more than the range's order of
/// magnitude), then trailing zeros trimmed.
fn tick_labels(range: std::ops::Range<f64>) -> impl Fn(&f64) -> String {
    let span = (range.end - range.start).abs().max(f64::MIN_POSITIVE);
    let decimals = (2.0 - span.log10().floor()).clamp(0.0, 8.0) as usize;
    move |v: &f64| {
        let text = format!("{v:.decimals$}");
        let text = if text.contains('.') {
            text.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            text
        };
        if text == "-0" { "0".into() } else { text }
    }
}

/// The series' legend in the report's style, at `position`.
fn legend<'a, DB: DrawingBackend + 'a, CT: plotters::coord::CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
    position: SeriesLabelPosition,
) -> std::result::Result<(), DrawingAreaErrorKind<DB::ErrorType>>
where
    DB::ErrorType: 'static,
{
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()
}

fn fail<E: std::fmt::Display>(name: &'static str) -> impl Fn(E) -> ReportError {
    move |e| ReportError::Plot {
        name,
        reason: e.to_string(),
    }
}

/// A chart with log-scaled axes of false- and true-positive rates.
type RatesChart<'a, DB> = ChartContext<'a, DB, Cartesian2d<LogCoord<f64>, LogCoord<f64>>>;

/// The log-log chart of true- against false-positive rates (1e-5 to 1), framed and meshed.
fn rates_chart<'a, DB: DrawingBackend + 'a>(
    area: &'a DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
) -> std::result::Result<RatesChart<'a, DB>, DrawingAreaErrorKind<DB::ErrorType>> {
    let mut chart = framed(area, title, 20)
        .build_cartesian_2d((FLOOR..1.0).log_scale(), (FLOOR..1.0).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("false positive rate")
        .y_desc("true positive rate")
        .x_label_formatter(&|v| format!("{v:.0e}"))
        .y_label_formatter(&|v| format!("{v:.0e}"))
        .draw()?;
    Ok(chart)
}

/// Log-log ROC curves (FPR and TPR from 1e-5 to 1; zero rates drawn at 1e-5), with the
/// diagonal of a random guess. `curves` are named. Each curve also gets a dashed vertical line
/// in its colour at the FPR of one false positive among its non-members: left of it, its TPR
/// rests on no false positive at all and is not measured.
pub fn roc(curves: &[(String, &RocCurve)]) -> Result<String> {
    let err = fail("roc");
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(&err)?;
        let mut chart =
            rates_chart(&root, "ROC of the attack on the target model").map_err(&err)?;
        chart
            .draw_series(LineSeries::new(
                [(FLOOR, FLOOR), (1.0, 1.0)],
                BLACK.mix(0.4).stroke_width(1),
            ))
            .map_err(&err)?
            .label("random guess")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLACK.mix(0.4)));
        for (i, (name, curve)) in curves.iter().enumerate() {
            let color = PALETTE[i % PALETTE.len()];
            let curve = curve.drop_intermediate();
            let points: Vec<(f64, f64)> = curve
                .fpr()
                .iter()
                .zip(curve.tpr())
                .map(|(&f, &t)| (f.max(FLOOR), t.max(FLOOR)))
                .collect();
            chart
                .draw_series(LineSeries::new(points, color.stroke_width(2)))
                .map_err(&err)?
                .label(format!("{name} (AUROC {:.3})", curve.auc()))
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 20, y)], color.stroke_width(2))
                });
            let one_false_positive = 1.0 / curve.negatives().max(1) as f64;
            if one_false_positive > FLOOR {
                chart
                    .draw_series(DashedLineSeries::new(
                        [(one_false_positive, FLOOR), (one_false_positive, 1.0)],
                        4,
                        4,
                        color.mix(0.6).stroke_width(1),
                    ))
                    .map_err(&err)?;
            }
        }
        legend(&mut chart, SeriesLabelPosition::LowerRight).map_err(&err)?;
        root.present().map_err(&err)?;
    }
    Ok(svg)
}

/// The largest true-positive rate at false-positive rate `fpr` that (epsilon, delta)-DP allows:
/// `min(1, e^eps FPR + delta, 1 - e^-eps (1 - FPR - delta))` (Kairouz et al. 2015).
pub fn dp_tpr_limit(fpr: f64, epsilon: f64, delta: f64) -> f64 {
    let upper = epsilon.exp() * fpr + delta;
    let mirrored = 1.0 - (-epsilon).exp() * (1.0 - fpr - delta);
    upper.min(mirrored).clamp(0.0, 1.0)
}

/// The attack's ROC curve on the canaries (`roc`: false- and true-positive rates) against the
/// region (epsilon, delta)-DP allows, on log-log axes: the claim's boundary (solid) and the
/// boundary at the audit's lower bound (dashed). A curve above the claim's boundary would
/// refute it (with its sampling error: the audit's bound is what says so).
pub fn dp_region(roc: &[(f64, f64)], claim: (f64, f64), bound: f64) -> Result<String> {
    let err = fail("dp_region");
    let (epsilon, delta) = claim;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(&err)?;
        let mut chart = rates_chart(&root, "Canaries' ROC against the DP region").map_err(&err)?;
        let grid: Vec<f64> = (0..=200)
            .map(|i| FLOOR * (1.0 / FLOOR).powf(i as f64 / 200.0))
            .collect();
        let boundary = |eps: f64| -> Vec<(f64, f64)> {
            grid.iter()
                .map(|&f| (f, dp_tpr_limit(f, eps, delta).max(FLOOR)))
                .collect()
        };
        let (claim_color, bound_color, curve_color) = (PALETTE[1], PALETTE[2], PALETTE[0]);
        chart
            .draw_series(LineSeries::new(
                boundary(epsilon),
                claim_color.stroke_width(2),
            ))
            .map_err(&err)?
            .label(format!("claimed epsilon {epsilon:.3}, delta {delta:.0e}"))
            .legend(move |(x, y)| {
                PathElement::new([(x, y), (x + 20, y)], claim_color.stroke_width(2))
            });
        chart
            .draw_series(DashedLineSeries::new(
                boundary(bound),
                6,
                4,
                bound_color.stroke_width(2),
            ))
            .map_err(&err)?
            .label(format!("audit's lower bound {bound:.3}"))
            .legend(move |(x, y)| {
                PathElement::new([(x, y), (x + 20, y)], bound_color.stroke_width(2))
            });
        let points: Vec<(f64, f64)> = roc
            .iter()
            .map(|&(f, t)| (f.max(FLOOR), t.max(FLOOR)))
            .collect();
        chart
            .draw_series(LineSeries::new(points, curve_color.stroke_width(2)))
            .map_err(&err)?
            .label("attack on the canaries (all models)")
            .legend(move |(x, y)| {
                PathElement::new([(x, y), (x + 20, y)], curve_color.stroke_width(2))
            });
        legend(&mut chart, SeriesLabelPosition::LowerRight).map_err(&err)?;
        root.present().map_err(&err)?;
    }
    Ok(svg)
}

/// A histogram of the finite `values` over `[lo, hi]` in `bins` bins.
pub fn histogram(
    values: &[f64],
    (lo, hi): (f64, f64),
    bins: usize,
    title: &str,
    x_label: &str,
) -> Result<String> {
    let err = fail("histogram");
    let width = (hi - lo) / bins as f64;
    let mut counts = vec![0usize; bins];
    for &v in values.iter().filter(|v| v.is_finite()) {
        let b = (((v - lo) / width).floor().max(0.0) as usize).min(bins - 1);
        counts[b] += 1;
    }
    let top = counts.iter().copied().max().unwrap_or(0).max(1) as f64 * 1.05;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(&err)?;
        let mut chart = framed(&root, title, 20)
            .build_cartesian_2d(lo..hi, 0.0..top)
            .map_err(&err)?;
        chart
            .configure_mesh()
            .x_desc(x_label)
            .y_desc("samples")
            .x_label_formatter(&tick_labels(lo..hi))
            .y_label_formatter(&tick_labels(0.0..top))
            .draw()
            .map_err(&err)?;
        chart
            .draw_series(counts.iter().enumerate().map(|(b, &c)| {
                let x0 = lo + b as f64 * width;
                Rectangle::new([(x0, 0.0), (x0 + width, c as f64)], PALETTE[0].filled())
            }))
            .map_err(&err)?;
        root.present().map_err(&err)?;
    }
    Ok(svg)
}

/// A scatter plot of the pairs where both values are finite; at most `max_points` of them
/// (evenly strided) are drawn, so that the file stays small for large pools.
pub fn scatter(
    x: &[f64],
    y: &[f64],
    max_points: usize,
    title: &str,
    (x_label, y_label): (&str, &str),
) -> Result<String> {
    let err = fail("scatter");
    let pairs: Vec<(f64, f64)> = x
        .iter()
        .zip(y)
        .map(|(&a, &b)| (a, b))
        .filter(|(a, b)| a.is_finite() && b.is_finite())
        .collect();
    let stride = pairs.len().div_ceil(max_points.max(1)).max(1);
    let shown: Vec<(f64, f64)> = pairs.iter().copied().step_by(stride).collect();
    let range = |v: &mut dyn Iterator<Item = f64>| {
        let (lo, hi) = v.fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), x| {
            (l.min(x), h.max(x))
        });
        if lo.is_finite() && hi > lo {
            let pad = (hi - lo) * 0.03;
            (lo - pad)..(hi + pad)
        } else if lo.is_finite() {
            (lo - 1.0)..(lo + 1.0)
        } else {
            0.0..1.0
        }
    };
    let xr = range(&mut shown.iter().map(|p| p.0));
    let yr = range(&mut shown.iter().map(|p| p.1));
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(&err)?;
        let (x_ticks, y_ticks) = (tick_labels(xr.clone()), tick_labels(yr.clone()));
        let mut chart = framed(&root, title, 20)
            .build_cartesian_2d(xr, yr)
            .map_err(&err)?;
        chart
            .configure_mesh()
            .x_desc(x_label)
            .y_desc(y_label)
            .x_label_formatter(&x_ticks)
            .y_label_formatter(&y_ticks)
            .draw()
            .map_err(&err)?;
        chart
            .draw_series(
                shown
                    .iter()
                    .map(|&p| Circle::new(p, 2, PALETTE[0].mix(0.5).filled())),
            )
            .map_err(&err)?;
        root.present().map_err(&err)?;
    }
    Ok(svg)
}

/// TPR at 0.1% FPR and AUROC against the number of shadow models (log scale), one line per
/// group of the leave-one-out report (mean over its targets and repeats) inside a light band
/// from the lowest to the highest of them, with the budget planner's prediction for the
/// candidates as a vertical line when given.
pub fn shadow_curve(report: &LooReport, planned: Option<f64>) -> Result<String> {
    let err = fail("shadow_curve");
    let mut groups: Vec<String> = Vec::new();
    for r in &report.rows {
        if !groups.contains(&r.group) {
            groups.push(r.group.clone());
        }
    }
    // (shadow models, mean, lowest, highest) of a group's finite values.
    let series = |group: &str, value: RowValue<'_>| {
        let mut counts: Vec<usize> = report
            .rows
            .iter()
            .filter(|r| r.group == group)
            .map(|r| r.shadow_models)
            .collect();
        counts.dedup();
        counts
            .into_iter()
            .filter_map(|m| {
                let v: Vec<f64> = report
                    .rows
                    .iter()
                    .filter(|r| r.group == group && r.shadow_models == m)
                    .map(value)
                    .filter(|v| v.is_finite())
                    .collect();
                let lowest = v.iter().copied().fold(f64::INFINITY, f64::min);
                let highest = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                (!v.is_empty()).then(|| {
                    (
                        m as f64,
                        v.iter().sum::<f64>() / v.len() as f64,
                        lowest,
                        highest,
                    )
                })
            })
            .collect::<Vec<_>>()
    };
    let max_models = report
        .rows
        .iter()
        .map(|r| r.shadow_models)
        .max()
        .unwrap_or(1)
        .max(planned.unwrap_or(1.0).ceil() as usize)
        .max(2) as f64;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (960, 420)).into_drawing_area();
        root.fill(&WHITE).map_err(&err)?;
        let panels = root.split_evenly((1, 2));
        let tpr_at = |r: &LooRow| {
            // Only where 0.1% FPR allows a false positive: no point rests on none.
            r.tpr_at_fpr
                .iter()
                .find(|p| (p.0 - 1e-3).abs() < 1e-12 && r.measurable(p.0))
                .map_or(f64::NAN, |p| p.1)
        };
        let auroc = |r: &LooRow| r.auroc;
        let metrics: [(&str, RowValue<'_>); 2] = [("TPR at 0.1% FPR", &tpr_at), ("AUROC", &auroc)];
        for (panel, (name, value)) in panels.iter().zip(metrics) {
            let y0 = if name == "AUROC" { 0.4 } else { 0.0 };
            // Ticks at the powers of two (the curve's own counts): whole, distinct numbers.
            let powers: Vec<f64> = (0..)
                .map(|p| f64::from(1u32 << p))
                .take_while(|&m| m <= max_models * 1.2)
                .collect();
            let mut chart = framed(panel, format!("{name} vs shadow models"), 18)
                .build_cartesian_2d(
                    (1.0..max_models * 1.2).log_scale().with_key_points(powers),
                    y0..1.02,
                )
                .map_err(&err)?;
            chart
                .configure_mesh()
                .x_desc("shadow models")
                .y_desc(name)
                .x_label_formatter(&|v| format!("{v:.0}"))
                .y_label_formatter(&tick_labels(y0..1.02))
                .draw()
                .map_err(&err)?;
            for (i, g) in groups.iter().enumerate() {
                let color = PALETTE[i % PALETTE.len()];
                let stats = series(g, value);
                if stats.len() > 1 {
                    let band: Vec<(f64, f64)> = stats
                        .iter()
                        .map(|p| (p.0, p.3))
                        .chain(stats.iter().rev().map(|p| (p.0, p.2)))
                        .collect();
                    chart
                        .draw_series(std::iter::once(Polygon::new(
                            band,
                            color.mix(0.15).filled(),
                        )))
                        .map_err(&err)?;
                }
                let points: Vec<(f64, f64)> = stats.iter().map(|p| (p.0, p.1)).collect();
                chart
                    .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
                    .map_err(&err)?
                    .label(g.clone())
                    .legend(move |(x, y)| {
                        PathElement::new([(x, y), (x + 20, y)], color.stroke_width(2))
                    });
                chart
                    .draw_series(points.iter().map(|&p| Circle::new(p, 3, color.filled())))
                    .map_err(&err)?;
            }
            if let Some(m) = planned {
                chart
                    .draw_series(LineSeries::new(
                        [(m, y0), (m, 1.02)],
                        BLACK.mix(0.5).stroke_width(1),
                    ))
                    .map_err(&err)?
                    .label(format!("planner: {m} models (candidates)"))
                    .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLACK.mix(0.5)));
            }
            let position = if name == "AUROC" {
                SeriesLabelPosition::LowerRight
            } else {
                SeriesLabelPosition::UpperLeft
            };
            legend(&mut chart, position).map_err(&err)?;
        }
        root.present().map_err(&err)?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The texts of an SVG's `<text>` elements.
    fn texts(svg: &str) -> Vec<String> {
        svg.split("<text")
            .skip(1)
            .filter_map(|t| Some(t.split_once('>')?.1.split_once("</text>")?.0.to_string()))
            .collect()
    }

    /// The DP region's boundary: (epsilon, delta)-DP's two inequalities at their corners, and
    /// the plot names the claim and the bound.
    #[test]
    fn dp_region_boundary_and_plot() {
        let eps = 1.0f64;
        // At FPR 0 only delta is allowed; where the two lines cross, both bind.
        assert_eq!(dp_tpr_limit(0.0, eps, 1e-5), 1e-5);
        assert!((dp_tpr_limit(0.1, eps, 0.0) - 0.1 * eps.exp()).abs() < 1e-12);
        assert!((dp_tpr_limit(0.9, eps, 0.0) - (1.0 - 0.1 / eps.exp())).abs() < 1e-12);
        assert_eq!(dp_tpr_limit(1.0, eps, 0.0), 1.0);
        let svg = dp_region(&[(0.0, 0.0), (0.1, 0.2), (1.0, 1.0)], (1.0, 1e-5), 0.25).unwrap();
        let all = texts(&svg).join(" | ");
        assert!(all.contains("claimed epsilon 1.000"), "{all}");
        assert!(all.contains("lower bound 0.250"), "{all}");
    }

    #[test]
    fn histogram_axis_labels_are_distinct() {
        let values: Vec<f64> = (0..200).map(|i| i as f64 / 100.0 - 1.0).collect();
        let svg = histogram(&values, (-1.0, 1.0), 40, "t", "x").unwrap();
        let ticks: Vec<String> = texts(&svg)
            .into_iter()
            .filter(|t| t.contains('.'))
            .collect();
        assert!(ticks.len() >= 5, "{ticks:?}");
        let mut unique = ticks.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), ticks.len(), "repeated tick labels: {ticks:?}");
    }

    /// No axis prints the same tick label twice: two numeric labels alike on one line (same
    /// `y`: a horizontal axis; same `x`: a vertical one) and within one panel's reach.
    fn assert_no_repeated_ticks(svg: &str) {
        let mut labels: Vec<(String, f64, f64)> = Vec::new();
        for t in svg.split("<text").skip(1) {
            let Some((attrs, rest)) = t.split_once('>') else {
                continue;
            };
            let text = rest.split_once("</text>").map_or("", |(t, _)| t.trim());
            let attr = |name: &str| -> Option<f64> {
                let (_, v) = attrs.split_once(&format!(" {name}=\""))?;
                v.split_once('"')?.0.parse().ok()
            };
            if let (true, Some(x), Some(y)) = (text.parse::<f64>().is_ok(), attr("x"), attr("y")) {
                labels.push((text.to_string(), x, y));
            }
        }
        for (i, a) in labels.iter().enumerate() {
            for b in &labels[i + 1..] {
                let same_line = (a.2 == b.2 && (a.1 - b.1).abs() < 400.0)
                    || (a.1 == b.1 && (a.2 - b.2).abs() < 300.0);
                assert!(
                    !(a.0 == b.0 && same_line),
                    "tick {} printed twice on one axis: {a:?} {b:?}",
                    a.0
                );
            }
        }
    }

    #[test]
    fn no_axis_repeats_a_tick_label() {
        for (lo, hi) in [
            (-0.62, 1.0),
            (-0.61, -0.58),
            (0.0, 14.3),
            (-1.0, 1.0),
            (3.0, 3.0),
        ] {
            let x: Vec<f64> = (0..50).map(|i| lo + (hi - lo) * i as f64 / 49.0).collect();
            let y: Vec<f64> = x.iter().map(|v| v * 7.0).collect();
            assert_no_repeated_ticks(&scatter(&x, &y, 100, "t", ("x", "y")).unwrap());
            assert_no_repeated_ticks(&histogram(&x, (-1.0, 1.0), 40, "t", "x").unwrap());
        }
        for max in [3usize, 10, 15, 31, 63, 100, 255] {
            let rows = (0..)
                .map(|p| 1usize << p)
                .take_while(|&m| m < max)
                .chain([max]) // the curve ends at all K - 1 shadow models
                .map(|m| memia_attacks::loo::LooRow {
                    shadow_models: m,
                    repeat: 0,
                    group: "all".into(),
                    scored: 10,
                    unscored: 0,
                    negatives: 5,
                    auroc: 0.5 + 0.4 * (m as f64 / max as f64),
                    tpr_at_fpr: vec![(1e-3, 0.3)],
                    balanced_accuracy: 0.6,
                })
                .collect();
            let report = memia_attacks::loo::LooReport {
                models: max + 1,
                samples: 10,
                rows,
            };
            assert_no_repeated_ticks(&shadow_curve(&report, Some(2.5)).unwrap());
        }
    }
}
