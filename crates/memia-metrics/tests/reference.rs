//! Agreement with scikit-learn and SciPy on the recorded fixtures of
//! `fixtures/make_reference.py` (the script documents every convention and version).

use memia_core::rng::splitmix64;
use memia_metrics::{
    Direction, RocCurve, TprAtFpr, auroc, clopper_pearson, kendall_tau_b, pearson, spearman,
};
use serde_json::Value;

fn reference() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/reference.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

/// The fixture generator, bit-identical to `generate()` in make_reference.py.
fn generate(generator: &Value) -> (Vec<f64>, Vec<bool>) {
    let n = generator["n"].as_u64().unwrap();
    let seed = generator["seed"].as_u64().unwrap();
    let levels = generator["levels"].as_u64().unwrap() as f64;
    let u = |k: u64| (splitmix64(k) >> 11) as f64 / (1u64 << 53) as f64;
    (0..n)
        .map(|i| {
            let raw = u(seed * 1_000_000_000 + 2 * i);
            let member = u(seed * 1_000_000_000 + 2 * i + 1) < 0.25 + 0.5 * raw;
            let score = if levels > 0.0 {
                (raw * levels).floor() / levels
            } else {
                raw
            };
            (score, member)
        })
        .unzip()
}

fn inputs(case: &Value) -> (Vec<f64>, Vec<bool>) {
    match case.get("generator") {
        Some(g) => generate(g),
        None => (
            floats(&case["scores"]),
            case["members"]
                .as_array()
                .unwrap()
                .iter()
                .map(|b| b.as_bool().unwrap())
                .collect(),
        ),
    }
}

fn assert_close(what: &str, ours: f64, theirs: f64, tolerance: f64) {
    assert!(
        (ours - theirs).abs() <= tolerance * theirs.abs().max(1.0),
        "{what}: ours {ours:e}, reference {theirs:e}"
    );
}

fn assert_curve(name: &str, roc: &RocCurve, expected: &Value) {
    for (label, ours, theirs) in [
        ("fpr", roc.fpr(), floats(&expected["fpr"])),
        ("tpr", roc.tpr(), floats(&expected["tpr"])),
        // sklearn's first threshold is +inf; the fixture stores the rest.
        (
            "thresholds",
            &roc.thresholds()[1..],
            floats(&expected["thresholds"]),
        ),
    ] {
        assert_eq!(ours.len(), theirs.len(), "{name}: {label} length");
        for (i, (&a, &b)) in ours.iter().zip(&theirs).enumerate() {
            assert_close(&format!("{name}: {label}[{i}]"), a, b, 1e-15);
        }
    }
}

#[test]
fn roc_curves_match_scikit_learn() {
    let reference = reference();
    let cases = reference["roc"].as_array().unwrap();
    assert!(cases.len() >= 9);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let (scores, members) = inputs(case);
        let direction = match case["direction"].as_str().unwrap() {
            "higher" => Direction::HigherIsMember,
            _ => Direction::LowerIsMember,
        };
        let roc = RocCurve::new(&scores, &members, direction).unwrap();
        assert_eq!(
            roc.len() as u64,
            case["full_len"].as_u64().unwrap(),
            "{name}: full length"
        );
        assert_eq!(
            roc.drop_intermediate().len() as u64,
            case["dropped_len"].as_u64().unwrap(),
            "{name}: dropped length"
        );
        if let Some(full) = case.get("full") {
            assert_curve(name, &roc, full);
            assert_curve(
                &format!("{name} (dropped)"),
                &roc.drop_intermediate(),
                &case["dropped"],
            );
        }
        let auc = case["auc"].as_f64().unwrap();
        assert_close(&format!("{name}: curve auc"), roc.auc(), auc, 1e-13);
        assert_close(
            &format!("{name}: auroc"),
            auroc(&scores, &members, direction).unwrap(),
            auc,
            1e-13,
        );
        for pair in case["interp"].as_array().unwrap() {
            let (t, tpr) = (pair[0].as_f64().unwrap(), pair[1].as_f64().unwrap());
            assert_close(
                &format!("{name}: interpolated tpr at {t}"),
                roc.tpr_at_fpr(t, TprAtFpr::Interpolated).unwrap(),
                tpr,
                1e-12,
            );
        }
        for pair in case["strict"].as_array().unwrap() {
            let (t, tpr) = (pair[0].as_f64().unwrap(), pair[1].as_f64().unwrap());
            // scikit-learn's division may round the last bit differently; a wrong operating
            // point would differ by at least 1/positives.
            assert_close(
                &format!("{name}: strict tpr at {t}"),
                roc.tpr_at_fpr(t, TprAtFpr::LiraStrict).unwrap(),
                tpr,
                1e-15,
            );
        }
        assert_close(
            &format!("{name}: balanced accuracy"),
            roc.balanced_accuracy(),
            case["balanced_accuracy"].as_f64().unwrap(),
            1e-15,
        );
        assert_close(
            &format!("{name}: advantage"),
            roc.advantage(),
            case["advantage"].as_f64().unwrap(),
            1e-15,
        );
    }
}

#[test]
fn correlations_match_scipy() {
    let reference = reference();
    for case in reference["correlation"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let (x, y) = match case.get("generator") {
            Some(g) => {
                let (s, m) = generate(g);
                (s, m.iter().map(|&b| f64::from(u8::from(b))).collect())
            }
            None => (floats(&case["x"]), floats(&case["y"])),
        };
        for (label, result) in [
            ("pearson", pearson(&x, &y).unwrap()),
            ("spearman", spearman(&x, &y).unwrap()),
            ("kendall", kendall_tau_b(&x, &y).unwrap()),
        ] {
            let expected = floats(&case[label]);
            assert_close(
                &format!("{name}: {label} statistic"),
                result.statistic,
                expected[0],
                1e-12,
            );
            // p-values: relative agreement, down to the smallest representable ones.
            let p = expected[1];
            assert!(
                (result.p_value - p).abs() <= 1e-9 * p + 1e-300,
                "{name}: {label} p-value: ours {:e}, scipy {p:e}",
                result.p_value
            );
        }
    }
}

#[test]
fn clopper_pearson_matches_scipy_beta_ppf() {
    let reference = reference();
    for case in reference["clopper_pearson"].as_array().unwrap() {
        let (x, n, c) = (
            case["successes"].as_u64().unwrap(),
            case["trials"].as_u64().unwrap(),
            case["confidence"].as_f64().unwrap(),
        );
        let ci = clopper_pearson(x, n, c).unwrap();
        for (label, ours, theirs) in [
            ("lower", ci.lower, case["lower"].as_f64().unwrap()),
            ("upper", ci.upper, case["upper"].as_f64().unwrap()),
        ] {
            assert!(
                (ours - theirs).abs() <= 1e-10 * theirs.max(1e-300),
                "x={x} n={n} c={c} {label}: ours {ours:e}, scipy {theirs:e}"
            );
        }
    }
}
