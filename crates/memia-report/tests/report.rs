//! The audit's numbers against direct computation, and the report's files.

use memia_attacks::loo::EvalGroup;
use memia_attacks::{FittedTest, LiraConfig, MembershipTest};
use memia_core::{KeepMatrix, Logits, Signal};
use memia_metrics::{Direction, RocCurve};
use memia_report::{Audit, AuditConfig, AuditInputs, PLOTS};
use ndarray::{Array4, Axis, s};

const K: usize = 16;
const N: usize = 400;
/// Samples 0..40 are "memorized": right only when trained on.
const MEMORIZED: usize = 40;

fn data() -> (KeepMatrix, Logits, Vec<u32>) {
    let keep = KeepMatrix::balanced(K, N, 5).unwrap();
    // A deterministic jitter so that confidences differ between models and samples.
    let jitter = |k: usize, i: usize| ((k * 7919 + i * 104_729) % 1000) as f32 / 1000.0;
    let logits = Logits::new(Array4::from_shape_fn((K, N, 1, 3), |(k, i, _, c)| {
        let label = i % 3;
        let inn = keep.get(k, i);
        let margin = if i < MEMORIZED {
            if inn { 3.0 } else { -1.0 }
        } else {
            1.5 + if inn { 0.3 } else { 0.0 }
        };
        if c == label {
            margin + jitter(k, i)
        } else {
            jitter(i, k + c)
        }
    }))
    .unwrap();
    let labels = (0..N).map(|i| (i % 3) as u32).collect();
    (keep, logits, labels)
}

#[test]
fn the_audit_equals_direct_computation_and_writes_every_file() {
    let (keep, logits, labels) = data();
    let provenance: Vec<String> = (0..N)
        .map(|i| {
            if i < MEMORIZED {
                format!("canary,{i}")
            } else {
                format!("pool:{i}")
            }
        })
        .collect();
    let groups = [EvalGroup {
        name: "canaries".into(),
        samples: (0..MEMORIZED).collect(),
    }];
    let config = AuditConfig {
        target: 3,
        curve_targets: 4,
        ..Default::default()
    };
    let mut calls = 0;
    let audit = Audit::run(
        AuditInputs {
            keep: &keep,
            logits: &logits,
            labels: &labels,
            provenance: Some(&provenance),
            groups: &groups,
        },
        &config,
        |_, _| calls += 1,
    )
    .unwrap();
    assert!(calls > 0, "progress is reported");

    // The target's scores are LiRA's, fitted on the other 15 models.
    let shadows: Vec<usize> = (0..K).filter(|&k| k != 3).collect();
    let phi = logits.signals(&labels, Signal::Phi).unwrap();
    let direct = LiraConfig::online()
        .with_global_variance(true)
        .fit(
            &keep.select_models(&shadows).unwrap(),
            phi.select(Axis(0), &shadows).view(),
        )
        .unwrap()
        .score(phi.slice(s![3, .., ..]))
        .unwrap();
    assert_eq!(audit.scores, direct.to_vec());
    let members = keep.row(3).to_vec();
    let roc = RocCurve::new(&audit.scores, &members, Direction::HigherIsMember).unwrap();
    assert_eq!(audit.summary.all.auroc, roc.auc());

    // The memorized samples are the candidates, and the attack finds them.
    assert_eq!(audit.candidates, (0..MEMORIZED).collect::<Vec<_>>());
    let cands = audit.summary.candidates.as_ref().unwrap();
    assert_eq!(cands.auroc, 1.0);
    assert!(audit.summary.all.auroc < cands.auroc);
    assert_eq!(audit.summary.groups[0].0, "canaries");
    assert_eq!(audit.summary.groups[0].1.as_ref().unwrap().auroc, 1.0);
    assert!(
        audit
            .summary
            .memorization_vs_privacy
            .as_ref()
            .unwrap()
            .statistic
            > 0.3
    );
    assert!(audit.summary.budget.candidates_median.unwrap() <= 16.0);
    let mem_in = (0..MEMORIZED).map(|i| audit.memorization.score[i]);
    assert!(
        mem_in.clone().all(|m| m == 1.0),
        "{:?}",
        mem_in.collect::<Vec<_>>()
    );

    let dir = tempfile::tempdir().unwrap();
    let files = audit.write(dir.path()).unwrap();
    let csv = std::fs::read_to_string(&files.samples).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), N + 1);
    assert!(lines[0].starts_with("index,label,provenance,memorization"));
    assert!(lines[1].starts_with("0,0,\"canary,0\",1,"), "{}", lines[1]);
    assert!(lines[1].ends_with(&format!(",{},1", u8::from(members[0]))));
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&files.summary).unwrap()).unwrap();
    assert_eq!(summary["models"], K);
    assert_eq!(summary["all"]["tpr_at_fpr"][2]["fpr"], 1e-3);
    assert!(summary["shadow_curve"]["rows"].as_array().unwrap().len() >= 3 * 4);
    for path in &files.plots {
        let svg = std::fs::read_to_string(path).unwrap();
        assert!(svg.starts_with("<svg"), "{}", path.display());
        assert!(
            svg.contains("<polyline") || svg.contains("<rect"),
            "{}",
            path.display()
        );
    }
    let html = std::fs::read_to_string(&files.index).unwrap();
    for (file, _) in PLOTS {
        assert!(html.contains(&format!("src=\"{file}\"")));
    }
    assert!(html.contains("canaries"));
}

#[test]
fn bad_inputs_are_named() {
    let (keep, logits, labels) = data();
    let run = |keep: &KeepMatrix, labels: &[u32], config: &AuditConfig| {
        Audit::run(
            AuditInputs {
                keep,
                logits: &logits,
                labels,
                provenance: None,
                groups: &[],
            },
            config,
            |_, _| {},
        )
        .unwrap_err()
        .to_string()
    };
    let target = AuditConfig {
        target: K,
        ..Default::default()
    };
    assert!(run(&keep, &labels, &target).contains("target model 16"));
    assert!(run(&keep, &labels[1..], &AuditConfig::default()).contains("399 labels"));
    let small = KeepMatrix::balanced(2, N, 1).unwrap();
    assert!(run(&small, &labels, &AuditConfig::default()).contains("2 x 400"));
    let two = KeepMatrix::balanced(2, N, 1).unwrap();
    let two_logits =
        Logits::new(logits.view().slice(ndarray::s![..2, .., .., ..]).to_owned()).unwrap();
    let err = Audit::run(
        AuditInputs {
            keep: &two,
            logits: &two_logits,
            labels: &labels,
            provenance: None,
            groups: &[],
        },
        &AuditConfig::default(),
        |_, _| {},
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("judged no sample with the 1 shadow models"),
        "{err}"
    );
    let mut bad = labels.clone();
    bad[7] = 3;
    let msg = run(&keep, &bad, &AuditConfig::default());
    assert!(msg.contains('7') && msg.contains('3'), "{msg}");
}
