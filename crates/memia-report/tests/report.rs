//! The audit's numbers against direct computation, and the report's files.

use memia_attacks::loo::EvalGroup;
use memia_attacks::{FittedTest, LiraConfig, MembershipTest};
use memia_core::{KeepMatrix, Logits, Signal};
use memia_metrics::{Direction, RocCurve};
use memia_report::{
    Audit, AuditConfig, AuditInputs, ExternalTarget, PLOTS, ReportError, SHOWN_PER_PANEL,
    SampleImages,
};
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
    let mut reads = Vec::new();
    let mut curve_calls = 0;
    let audit = Audit::run(
        AuditInputs::new(&keep, &logits, &labels)
            .with_provenance(&provenance)
            .with_groups(&groups),
        &config,
        |stage, done, total| match stage {
            memia_report::AuditStage::Reading => reads.push((done, total)),
            memia_report::AuditStage::Curve => curve_calls += 1,
        },
    )
    .unwrap();
    assert!(curve_calls > 0, "the curve's progress is reported");
    assert_eq!(reads.last(), Some(&(K, K)), "every model is read once");
    assert_eq!(reads.len(), K);

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
    assert_eq!(audit.summary.all.as_ref().unwrap().auroc, roc.auc());

    // The memorized samples are the candidates, and the attack finds them.
    assert_eq!(audit.candidates, (0..MEMORIZED).collect::<Vec<_>>());
    let cands = audit.summary.candidates.as_ref().unwrap();
    assert_eq!(cands.auroc, 1.0);
    assert!(audit.summary.all.as_ref().unwrap().auroc < cands.auroc);
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
    // Member, candidate, and the named sets it is in.
    assert!(
        lines[1].ends_with(&format!(",{},1,canaries", u8::from(members[0]))),
        "{}",
        lines[1]
    );
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
    // Counts in the number they take: one query per sample is "1 query".
    let queries = logits.queries();
    let said = if queries == 1 {
        "1 query per sample"
    } else {
        "queries per sample"
    };
    assert!(html.contains(said), "{said}");
    assert_eq!(memia_report::counted(1, "query", "queries"), "1 query");
    assert_eq!(
        memia_report::run_shape(2, 1, 3, 1),
        "2 models x 1 sample x 3 queries x 1 class"
    );
}

#[test]
fn bad_inputs_are_named() {
    let (keep, logits, labels) = data();
    let run = |keep: &KeepMatrix, labels: &[u32], config: &AuditConfig| {
        Audit::run(
            AuditInputs::new(keep, &logits, labels),
            config,
            |_, _, _| {},
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
    // A caller can tell the cases apart without reading the message.
    let typed = |keep: &KeepMatrix, labels: &[u32], config: &AuditConfig| {
        Audit::run(
            AuditInputs::new(keep, &logits, labels),
            config,
            |_, _, _| {},
        )
        .unwrap_err()
    };
    assert!(matches!(
        typed(&keep, &labels, &target),
        ReportError::TargetOutOfRange {
            target: 16,
            models: K
        }
    ));
    assert!(matches!(
        typed(&keep, &labels[1..], &AuditConfig::default()),
        ReportError::PerSampleLength {
            what: "labels",
            given: 399,
            samples: N
        }
    ));
    assert!(matches!(
        typed(&small, &labels, &AuditConfig::default()),
        ReportError::KeepLogitsMismatch {
            keep_models: 2,
            keep_samples: N,
            logit_models: K,
            logit_samples: N
        }
    ));
    let two = KeepMatrix::balanced(2, N, 1).unwrap();
    let two_logits =
        Logits::new(logits.view().slice(ndarray::s![..2, .., .., ..]).to_owned()).unwrap();
    let err = Audit::run(
        AuditInputs::new(&two, &two_logits, &labels),
        &AuditConfig::default(),
        |_, _, _| {},
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            ReportError::NothingJudged {
                shadow_models: 1,
                ..
            }
        ),
        "{err:?}"
    );
    let err = err.to_string();
    assert!(
        err.contains("judged no sample of model 0 of the run with its 1 shadow models"),
        "{err}"
    );
    let mut bad = labels.clone();
    bad[7] = 3;
    let msg = run(&keep, &bad, &AuditConfig::default());
    assert!(msg.contains('7') && msg.contains('3'), "{msg}");
}

/// A target trained elsewhere: all K models are its shadow models. With its membership the
/// report scores it; without, it has scores and the samples, and says why there is no ROC.
#[test]
fn an_external_target_is_attacked_with_every_model() {
    let (keep, logits, labels) = data();
    // The "external" model: a copy of model 3's outputs, and its membership.
    let target = Logits::new(logits.view().slice(s![3..4, .., .., ..]).to_owned()).unwrap();
    let members = keep.row(3).to_vec();
    let config = AuditConfig {
        curve_targets: 2,
        ..Default::default()
    };
    let with = Audit::run(
        AuditInputs::new(&keep, &logits, &labels).with_external_target(ExternalTarget {
            logits: &target,
            members: Some(&members),
            name: "t.npy",
        }),
        &config,
        |_, _, _| {},
    )
    .unwrap();
    let phi = logits.signals(&labels, Signal::Phi).unwrap();
    let direct = LiraConfig::online()
        .with_global_variance(true)
        .fit(&keep, phi.view())
        .unwrap()
        .score(phi.slice(s![3, .., ..]))
        .unwrap();
    assert_eq!(with.scores, direct.to_vec());
    assert_eq!(with.summary.target, None);
    assert_eq!(with.summary.shadow_models, K);
    let roc = RocCurve::new(&with.scores, &members, Direction::HigherIsMember).unwrap();
    assert_eq!(with.summary.all.as_ref().unwrap().auroc, roc.auc());

    let without = Audit::run(
        AuditInputs::new(&keep, &logits, &labels).with_external_target(ExternalTarget {
            logits: &target,
            members: None,
            name: "t.npy",
        }),
        &config,
        |_, _, _| {},
    )
    .unwrap();
    assert_eq!(without.scores, with.scores);
    assert!(without.summary.all.is_none() && without.summary.candidates.is_none());
    assert!(
        without.summary.not_scored[0]
            .reason
            .to_string()
            .contains("membership is not known")
    );
    assert_eq!(without.panels.len(), 2);
    let dir = tempfile::tempdir().unwrap();
    let files = without.write(dir.path()).unwrap();
    let html = std::fs::read_to_string(&files.index).unwrap();
    assert!(
        !html.contains("<th>AUROC</th><th>TPR@0.001%"),
        "a table with no row"
    );
    assert!(html.contains("the external target t.npy, with all 16 models"));
    assert!(html.contains("membership unknown"));
    let csv = std::fs::read_to_string(&files.samples).unwrap();
    assert!(
        csv.lines().nth(1).unwrap().ends_with(",,1,"),
        "membership left empty"
    );

    // Logits of another shape, or membership of another length, are refused by name.
    let short = vec![true; N - 1];
    let err = Audit::run(
        AuditInputs::new(&keep, &logits, &labels).with_external_target(ExternalTarget {
            logits: &target,
            members: Some(&short),
            name: "t.npy",
        }),
        &config,
        |_, _, _| {},
    )
    .unwrap_err();
    assert!(err.to_string().contains("399 membership entries"), "{err}");
    assert!(matches!(
        err,
        ReportError::PerSampleLength {
            what: "membership entries",
            given: 399,
            samples: N
        }
    ));
    let wide = Logits::new(logits.view().slice(s![3..5, .., .., ..]).to_owned()).unwrap();
    let err = Audit::run(
        AuditInputs::new(&keep, &logits, &labels).with_external_target(ExternalTarget {
            logits: &wide,
            members: None,
            name: "t.npy",
        }),
        &config,
        |_, _, _| {},
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            ReportError::TargetLogitsShape {
                given: (2, N, 1, _),
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("1 x 400 x 1 x"), "{err}");
}

/// A report is not written over a directory that holds other files: the error names them and
/// the files stay.
#[test]
fn a_directory_with_foreign_files_is_refused() {
    let (keep, logits, labels) = data();
    let config = AuditConfig {
        curve_targets: 1,
        ..Default::default()
    };
    let audit = Audit::run(
        AuditInputs::new(&keep, &logits, &labels),
        &config,
        |_, _, _| {},
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), "mine").unwrap();
    let err = audit.write(dir.path()).unwrap_err();
    assert!(
        matches!(&err, ReportError::ForeignFiles { dir: d, files } if d == dir.path() && files == &["notes.txt"]),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("not part of a memia report (\"notes.txt\")"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("notes.txt")).unwrap(),
        "mine"
    );
}

/// The report shows the samples it singles out (thumbnails for image pools), leaves out of the
/// table the sets it could not score and says why, and gives the curve's unscored samples.
#[test]
fn the_report_shows_the_samples_and_no_row_that_judged_nothing() {
    let (keep, logits, labels) = data();
    // 400 "images" of 1 x 4 x 5 pixels whose brightness is the sample index.
    let pixels: Vec<f32> = (0..N * 20).map(|v| ((v / 20) + v % 20) as f32).collect();
    let images = SampleImages::from_feature_shape(&[1, 4, 5], &pixels).unwrap();
    assert!(SampleImages::from_feature_shape(&[20], &pixels).is_none());
    let members3: Vec<usize> = (0..N).filter(|&i| keep.get(3, i)).collect();
    let groups = [
        EvalGroup {
            name: "canaries".into(),
            samples: (0..MEMORIZED).collect(),
        },
        EvalGroup {
            name: "only members".into(),
            samples: members3[..5].to_vec(),
        },
    ];
    let audit = Audit::run(
        AuditInputs::new(&keep, &logits, &labels)
            .with_groups(&groups)
            .with_images(images)
            .with_producers(&["models 0..16 by a test".to_string()]),
        &AuditConfig {
            target: 3,
            curve_targets: 3,
            ..Default::default()
        },
        |_, _, _| {},
    )
    .unwrap();
    // The group of members only is not scored, and says why.
    assert!(audit.summary.groups[1].1.is_none());
    assert_eq!(audit.summary.not_scored.len(), 1);
    assert_eq!(audit.summary.not_scored[0].set, "only members");
    assert!(
        audit.summary.not_scored[0]
            .reason
            .to_string()
            .contains("all 5 judged samples are members")
    );
    // The most memorized members of the target are memorized samples.
    let panel = &audit.panels[0];
    assert_eq!(panel.title, "most memorized: members of the target");
    assert_eq!(panel.samples.len(), SHOWN_PER_PANEL);
    assert!(
        panel
            .samples
            .iter()
            .all(|&i| i < MEMORIZED && keep.get(3, i))
    );
    assert!(audit.panels[1].samples.iter().all(|&i| !keep.get(3, i)));
    // The canaries get a ROC curve of their own.
    assert!(audit.roc.iter().any(|(n, _)| n == "canaries"));

    let dir = tempfile::tempdir().unwrap();
    let files = audit.write(dir.path()).unwrap();
    let shown: std::collections::BTreeSet<usize> = audit
        .panels
        .iter()
        .flat_map(|p| p.samples.iter().copied())
        .collect();
    assert_eq!(files.thumbnails.len(), shown.len());
    // A thumbnail is the sample's pixels, stretched to 0..255.
    let first = *shown.iter().next().unwrap();
    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(dir.path().join(format!("samples/sample_{first}.png"))).unwrap(),
    ));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!((info.width, info.height), (5, 4));
    assert_eq!(buf[0], 0);
    assert_eq!(buf[19], 255);
    let html = std::fs::read_to_string(&files.index).unwrap();
    assert!(html.contains(&format!("src=\"samples/sample_{first}.png\"")));
    assert!(html.contains("only members: all 5 judged samples are members"));
    // (The curve's table may have it: the curve's targets are other models.)
    let headline_table = &html[..html.find("<figure").unwrap()];
    assert!(
        !headline_table.contains("<td>only members</td>"),
        "a row that judged nothing"
    );
    assert!(html.contains("models 0..16 by a test"));
    assert!(html.contains("pairs not scorable"));
    assert!(html.contains("dashed vertical line"));
    assert!(html.contains("light band"));
    // The ROC plot has the canaries' curve and each curve's one-false-positive line.
    let roc_svg = std::fs::read_to_string(&files.plots[0]).unwrap();
    assert!(roc_svg.contains("canaries (AUROC"));
    assert!(roc_svg.contains("stroke-dasharray") || roc_svg.matches("<polyline").count() >= 6);
}
