//! `memia dp-audit`: a run trained with memia's DP-SGD is audited against its accountant's
//! claim and not refuted; the same run without DP, tested against a small claimed epsilon, is
//! refuted; bad requests fail naming what was wrong.

use std::path::Path;

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
    assert_eq!(json["one_run"]["guesses"], 12);
    // A balanced plan: the one-run audit does not pool the models, and says why.
    let why = json["pooled"]["not_run"].as_str().unwrap();
    assert!(why.contains("bernoulli 0.5"), "{why}");
    assert!(json["many_runs"]["bound"]["epsilon"].as_f64().is_some(), "{json}");

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
}
