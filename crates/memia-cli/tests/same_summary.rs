//! One audit, one answer: the same run summarised through the command line, through the library
//! (`memia_audit`) and through the quickstart example's calls gives the same `summary.json`; and
//! a target whose scores include NaN (samples its few shadow models cannot judge) gets one
//! answer from `memia attack`, `memia metrics`, `memia report` and the library.

mod support;

use std::path::Path;

use memia_audit::trainer::{Placement, trainer};
use memia_audit::{AuditTarget, Run, RunConfig};
use support::{ok, ok_with_stderr};

fn digits_toml() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/configs/digits.toml")
}

fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A summary as `summary.json` holds it: written as text and read back by the same parser as
/// the file (so both sides round their floats alike).
fn as_file(summary: &memia_report::Summary) -> serde_json::Value {
    serde_json::from_str(&serde_json::to_string(summary).unwrap()).unwrap()
}

/// `memia run examples/configs/digits.toml`, the library on the run it made, and the
/// quickstart's own calls (plan, train, audit in a fresh directory) agree on every number.
#[test]
fn cli_library_and_example_give_the_same_summary() {
    let tmp = tempfile::tempdir().unwrap();
    let (cli_run, cli_report) = (tmp.path().join("cli-run"), tmp.path().join("cli-report"));
    let toml = digits_toml();
    ok(
        &[
            "run",
            toml.to_str().unwrap(),
            "--run",
            cli_run.to_str().unwrap(),
            "--report",
            cli_report.to_str().unwrap(),
        ],
        tmp.path(),
    );
    let cli = read_json(&cli_report.join("summary.json"));

    // The library on the command line's run.
    let config = RunConfig::load(&toml).unwrap();
    let run = Run::open(&cli_run).unwrap();
    let target = AuditTarget::Model(config.audit.target);
    let pool = run.planned_pool().unwrap();
    let library = run
        .audit(&config.audit, &target, Some(&pool), |_, _, _| {})
        .unwrap();
    assert_eq!(as_file(&library.summary), cli);

    // The example's calls (examples/quickstart.rs, part 1) in a directory of their own.
    let dir = tmp.path().join("example-run");
    let planned = Run::plan(&config, &toml, &dir).unwrap();
    let trainer = trainer(&config, &dir, &Placement::default()).unwrap();
    let models = 0..config.plan.models;
    planned
        .run
        .train(trainer.as_dyn(), &planned.pool, models, false, |_| {})
        .unwrap();
    let example = planned
        .run
        .audit(&config.audit, &target, Some(&planned.pool), |_, _, _| {})
        .unwrap();
    assert_eq!(as_file(&example.summary), cli);

    // The numbers README.md and docs/REPRODUCTION.md give for it.
    let auroc = |set: &serde_json::Value| (set["auroc"].as_f64().unwrap() * 1e4).round() / 1e4;
    assert_eq!(auroc(&cli["all"]), 0.6059);
    assert_eq!(auroc(&cli["candidates"]), 0.9808);
    assert_eq!(auroc(&cli["groups"]["canaries"]), 1.0);
}

/// Three models: model 0's two shadows leave samples with no IN or no OUT model, whose scores
/// are NaN. `memia attack`, `memia metrics` on its scores, `memia report` and the library read
/// them by the one rule: the same AUROC, the same counts of undetermined members and
/// non-members, and undetermined members kept among the positives.
#[test]
fn a_target_with_nan_scores_gets_one_answer_everywhere() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let run_dir = dir.join("run");
    let toml = dir.join("few.toml");
    std::fs::write(
        &toml,
        "[data]\nsource = \"digits\"\nsamples = 300\n\n[plan]\nmodels = 3\n\
         scheme = { kind = \"bernoulli\", p = 0.5 }\nseed = 7\n\n[model.mlp]\nhidden = []\n\n\
         [training]\nepochs = 5\n\n[audit]\ncurve_targets = 1\n",
    )
    .unwrap();
    let run_arg = run_dir.to_str().unwrap();
    ok(
        &["plan", "--config", toml.to_str().unwrap(), "-o", run_arg],
        dir,
    );
    ok(&["train", run_arg], dir);
    let (_, said) = ok_with_stderr(
        &[
            "attack",
            run_arg,
            "--target",
            "0",
            "-o",
            "s.npy",
            "--members-out",
            "m.npy",
        ],
        dir,
    );
    let metrics: serde_json::Value = serde_json::from_str(&ok(
        &["metrics", "--scores", "s.npy", "--labels", "m.npy"],
        dir,
    ))
    .unwrap();
    ok(&["report", run_arg, "-o", "report"], dir);
    let report = read_json(&dir.join("report/summary.json"));

    let config = RunConfig::load(&toml).unwrap();
    let run = Run::open(&run_dir).unwrap();
    let scored = run
        .score(&config.audit.attack, &AuditTarget::Model(0))
        .unwrap();
    let undetermined = scored.scores.iter().filter(|s| s.is_nan()).count();
    assert!(
        undetermined > 0,
        "two shadow models leave some sample unjudged"
    );
    let judged = scored.evaluate(&[], &[1e-3]).unwrap();
    let library = judged[0].scored().unwrap();
    let u = library.undetermined;
    assert_eq!((u.members + u.non_members) as usize, undetermined);
    assert!(u.members > 0 && u.non_members > 0, "{u:?}");
    // Undetermined members stay among the positives; undetermined non-members are left out.
    let members = scored.members.as_ref().unwrap();
    let all_members = members.iter().filter(|&&m| m).count() as u64;
    assert_eq!(library.positives, all_members);
    assert_eq!(
        library.negatives,
        members.len() as u64 - all_members - u.non_members
    );

    let same = |json: &serde_json::Value, what: &str| {
        assert_eq!(json["auroc"].as_f64().unwrap(), library.auroc, "{what}");
        assert_eq!(json["positives"], library.positives, "{what}");
        assert_eq!(json["negatives"], library.negatives, "{what}");
        assert_eq!(json["undetermined"]["members"], u.members, "{what}");
        assert_eq!(json["undetermined"]["non_members"], u.non_members, "{what}");
    };
    same(&metrics, "memia metrics");
    same(&report["all"], "memia report");
    assert!(
        said.contains(&format!("AUROC {:.4}", library.auroc))
            && said.contains(&format!("{undetermined} undetermined")),
        "memia attack: {said}"
    );
}

/// Models trained elsewhere are first-class (issue 24, item 5): a planned run's models,
/// imported with its keep matrix, labels, groups and pixels (`memia export-pool`'s `.npz`), give
/// the same report as the run itself: every figure of `summary.json` but who produced the
/// models, every column of `samples.csv` but the pool's provenance, and the same thumbnails.
#[test]
fn an_imported_run_with_images_and_groups_reports_as_the_planned_run() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(
        dir.join("small.toml"),
        "[data]\nsource = \"digits\"\nsamples = 400\n\n\
         [data.canaries]\nkind = \"mislabeled\"\ncount = 20\nlabels = \"random\"\n\n\
         [plan]\nmodels = 8\nseed = 5\n\n[model.mlp]\nhidden = []\n\n[training]\nepochs = 20\n",
    )
    .unwrap();
    ok(
        &[
            "run",
            "small.toml",
            "--run",
            "planned",
            "--report",
            "planned-report",
            "-q",
        ],
        dir,
    );
    // What a user who trained elsewhere has: one logits file per model, the keep matrix,
    // labels, groups and pixels.
    std::fs::create_dir(dir.join("logits")).unwrap();
    for k in 0..8 {
        let name = format!("model_{k:05}.npy");
        std::fs::copy(
            dir.join("planned/logits").join(&name),
            dir.join("logits").join(&name),
        )
        .unwrap();
    }
    let pool = read_json(&dir.join("planned/pool.json"));
    assert_eq!(pool["groups"][0]["samples"].as_array().unwrap().len(), 20);
    std::fs::write(dir.join("groups.json"), pool["groups"].to_string()).unwrap();
    ok(&["export-pool", "planned", "-o", "pool.npz", "-q"], dir);
    let imported = ok(
        &[
            "import",
            "--keep",
            "planned/keep.npy",
            "--logits",
            "logits",
            "--labels",
            "planned/labels.npy",
            "--groups",
            "groups.json",
            "--images",
            "pool.npz",
            "-o",
            "imported",
            "-q",
            "--json",
        ],
        dir,
    );
    let imported: serde_json::Value = serde_json::from_str(&imported).unwrap();
    assert_eq!(imported["schema_version"], memia_report::SCHEMA_VERSION);
    assert_eq!(
        (imported["command"].as_str(), imported["models"].as_u64()),
        (Some("import"), Some(8))
    );
    ok(&["report", "imported", "-o", "imported-report", "-q"], dir);

    let mut planned = read_json(&dir.join("planned-report/summary.json"));
    let mut import = read_json(&dir.join("imported-report/summary.json"));
    for summary in [&mut planned, &mut import] {
        summary.as_object_mut().unwrap().remove("producers");
    }
    assert_eq!(import, planned);
    // Groups are an object keyed by name (schema version 2).
    assert!(
        planned["groups"]["canaries"]["auroc"].is_number(),
        "{}",
        planned["groups"]
    );
    let without_provenance = |path: &str| -> Vec<String> {
        std::fs::read_to_string(dir.join(path))
            .unwrap()
            .lines()
            .map(|line| {
                let mut cells: Vec<&str> = line.split(',').collect();
                cells.remove(2);
                cells.join(",")
            })
            .collect()
    };
    let csv = without_provenance("planned-report/samples.csv");
    assert_eq!(without_provenance("imported-report/samples.csv"), csv);
    assert!(csv.iter().filter(|l| l.ends_with(",canaries")).count() == 20);
    let thumbnails = |path: &str| -> Vec<(String, Vec<u8>)> {
        let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir.join(path))
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.file_name().to_string_lossy().into_owned(),
                    std::fs::read(e.path()).unwrap(),
                )
            })
            .collect();
        files.sort();
        files
    };
    let planned_thumbnails = thumbnails("planned-report/samples");
    assert!(!planned_thumbnails.is_empty());
    assert_eq!(thumbnails("imported-report/samples"), planned_thumbnails);
    let html = std::fs::read_to_string(dir.join("imported-report/index.html")).unwrap();
    assert!(
        !html.contains("No thumbnails"),
        "the imported report shows its samples"
    );
    assert!(html.contains("<br>in canaries"), "a card names its group");
}
