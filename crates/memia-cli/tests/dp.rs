//! `memia dp-audit`: a run trained with memia's DP-SGD is audited against its accountant's
//! claim and not refuted; the same run without DP, tested against a small claimed epsilon, is
//! refuted; bad requests fail naming what was wrong.

use std::path::Path;

use memia_core::KeepMatrix;
use memia_core::npy::write_npy;
use ndarray::{Array1, Array3};

mod support;
use support::{fails, ok};

fn config(dp: &str) -> String {
    format!(
        r#"
[data]
source = "digits"
samples = 600
[data.canaries]
kind = "mislabeled"
count = 60
[plan]
models = 8
seed = 5
[model.mlp]
hidden = [64]
[training]
epochs = 30
batch_size = 64
learning_rate = 0.1
weight_decay = 0.0
{dp}
"#
    )
}

fn trained(dir: &Path, name: &str, dp: &str) {
    std::fs::write(dir.join(format!("{name}.toml")), config(dp)).unwrap();
    ok(
        &["plan", "-c", &format!("{name}.toml"), "-o", name, "-q"],
        dir,
    );
    ok(&["train", name, "-q"], dir);
}

#[test]
fn dp_audit_of_private_and_non_private_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    trained(
        dir,
        "private",
        "dp = { clip = 1.0, target_epsilon = 1.0, delta = 1e-5 }",
    );
    let out = ok(&["dp-audit", "private", "-o", "audit"], dir);
    println!("{out}");
    assert!(out.contains("memia's RDP accountant"), "{out}");
    assert!(out.contains("not refuted"), "{out}");
    for f in ["dp-audit.json", "dp-region.svg", "dp-audit.html"] {
        assert!(dir.join("audit").join(f).is_file(), "{f}");
    }
    let json: serde_json::Value =
        serde_json::from_str(&ok(&["dp-audit", "private", "--json"], dir)).unwrap();
    let claimed = json["claim"]["epsilon"].as_f64().unwrap();
    assert!(claimed <= 1.0 && claimed > 0.99, "{json}");
    assert_eq!(json["canaries"], 60);
    assert_eq!(json["one_run"]["bound"]["guesses"], 12);
    // A balanced plan: the one-run audit does not pool the models, and says why.
    let why = json["pooled"]["not_run"].as_str().unwrap();
    assert!(why.contains("bernoulli 0.5"), "{why}");
    assert!(
        json["many_runs"]["bound"]["epsilon"].as_f64().is_some(),
        "{json}"
    );

    trained(dir, "plain", "");
    let err = fails(&["dp-audit", "plain"], dir);
    assert!(err.contains("not trained with memia's DP-SGD"), "{err}");
    let out = ok(
        &["dp-audit", "plain", "--epsilon", "0.1", "--delta", "1e-5"],
        dir,
    );
    println!("{out}");
    assert!(out.contains("REFUTED"), "{out}");

    let err = fails(
        &["dp-audit", "plain", "--epsilon", "1", "--delta", "2"],
        dir,
    );
    assert!(err.contains("--delta 2"), "{err}");
    let err = fails(
        &[
            "dp-audit",
            "plain",
            "--epsilon",
            "1",
            "--delta",
            "1e-5",
            "--guesses",
            "40",
        ],
        dir,
    );
    assert!(err.contains("more guesses than the 60 canaries"), "{err}");
    let err = fails(&["dp-audit", "plain", "--epsilon", "1"], dir);
    assert!(err.contains("--delta"), "{err}");

    // A fixed-size plan: the inclusions within a model are not independent coins, so the
    // one-run audits say why they did not run, and the many-run audit still does.
    std::fs::write(
        dir.join("fixed.toml"),
        config("").replace(
            "seed = 5",
            "seed = 5\nscheme = { kind = \"fixed_size\", ratio = 0.5 }",
        ),
    )
    .unwrap();
    ok(&["plan", "-c", "fixed.toml", "-o", "fixed", "-q"], dir);
    ok(&["train", "fixed", "-q"], dir);
    let json: serde_json::Value = serde_json::from_str(&ok(
        &[
            "dp-audit",
            "fixed",
            "--epsilon",
            "1",
            "--delta",
            "1e-5",
            "--json",
        ],
        dir,
    ))
    .unwrap();
    let why = json["one_run"]["not_run"].as_str().unwrap();
    assert!(why.contains("probability 1/2"), "{why}");
    assert!(json["pooled"]["not_run"].is_string(), "{json}");
    assert!(
        json["many_runs"]["bound"]["epsilon"].as_f64().is_some(),
        "{json}"
    );
}

/// Models trained elsewhere: an imported run (its keep matrix a Bernoulli(1/2) draw, its
/// canaries a group of the import) whose models leak their canaries is audited against the
/// user's claim, refuted, and the output says what the audit assumed of a keep matrix made
/// elsewhere.
#[test]
fn dp_audit_of_models_trained_elsewhere() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (k, n, c) = (8, 300, 2);
    let keep = KeepMatrix::bernoulli(k, n, 0.5, 3).unwrap();
    let labels: Array1<i64> = (0..n as i64).map(|i| i % 2).collect();
    // The label's logit is 3 above the other's where the model trained on the sample, and a
    // value in [-1, 1) that says nothing otherwise.
    let logits = Array3::from_shape_fn((k, n, c), |(m, i, j)| {
        let noise = ((m * 7919 + i * 104_729) % 1000) as f64 / 500.0 - 1.0;
        let own = if keep.get(m, i) { 3.0 } else { noise };
        if j as i64 == labels[i] { own } else { 0.0 }
    });
    keep.save(dir.join("keep.npy")).unwrap();
    write_npy(dir.join("logits.npy"), &logits).unwrap();
    write_npy(dir.join("y.npy"), &labels).unwrap();
    let canaries: Vec<String> = (100..n).map(|i| i.to_string()).collect();
    std::fs::write(
        dir.join("groups.json"),
        format!(
            r#"[{{"name": "canaries", "samples": [{}]}}]"#,
            canaries.join(", ")
        ),
    )
    .unwrap();
    ok(
        &[
            "import",
            "--keep",
            "keep.npy",
            "--logits",
            "logits.npy",
            "--labels",
            "y.npy",
            "--groups",
            "groups.json",
            "-o",
            "run",
            "-q",
        ],
        dir,
    );
    let err = fails(&["dp-audit", "run"], dir);
    assert!(err.contains("give the claimed epsilon and delta"), "{err}");
    let out = ok(
        &["dp-audit", "run", "--epsilon", "1", "--delta", "1e-5"],
        dir,
    );
    println!("{out}");
    assert!(out.contains("200 canaries in 8 models"), "{out}");
    assert!(out.contains("REFUTED"), "{out}");
    assert!(out.contains("the keep matrix was made elsewhere"), "{out}");
}
