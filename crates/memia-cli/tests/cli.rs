//! End-to-end tests of the `memia` binary: every command on small data, the files and figures
//! it writes, and its errors on bad input.

use std::path::{Path, PathBuf};
use std::process::Command;

use memia_core::npy::{read_npy, write_npy};
use memia_core::npz::NpzArchive;
use memia_core::{KeepMatrix, Signal};
use memia_metrics::{Direction, RocCurve};
use ndarray::{Array1, Array3, Array4};

mod support;
use support::{fails, memia, ok};

const CONFIG: &str = r#"
[data]
source = "digits"
samples = 600
[data.canaries]
kind = "mislabeled"
count = 30
[plan]
models = 8
seed = 11
[model.mlp]
hidden = [64]
[training]
epochs = 60
batch_size = 64
learning_rate = 0.1
weight_decay = 0.0
[audit]
curve_targets = 4
"#;

#[test]
fn the_pipeline_command_by_command() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(dir.join("audit.toml"), CONFIG).unwrap();
    ok(&["plan", "--config", "audit.toml", "-o", "run"], dir);
    for f in [
        "plan.json",
        "keep.npy",
        "manifest.json",
        "memia.toml",
        "labels.npy",
        "pool.json",
    ] {
        assert!(dir.join("run").join(f).is_file(), "{f}");
    }
    let keep = KeepMatrix::load(dir.join("run/keep.npy")).unwrap();
    assert_eq!((keep.models(), keep.samples()), (8, 630));

    // A shard with Burn's operations, then the rest with the fused kernels (the default): the
    // engine is not part of the plan, and the shard's files are not rewritten.
    let out = memia(
        &["train", "run", "--models", "0..3", "--engine", "burn"],
        dir,
    );
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("(Burn's operations)"));
    let done: Vec<bool> = (0..8)
        .map(|k| dir.join(format!("run/logits/model_{k:05}.npy")).exists())
        .collect();
    assert_eq!(done, [true, true, true, false, false, false, false, false]);
    let first = std::fs::metadata(dir.join("run/logits/model_00000.npy"))
        .unwrap()
        .modified()
        .unwrap();
    let err = fails(&["memorize", "run", "-o", "mem.npz"], dir);
    assert!(err.contains("5 of 8 models are not trained yet"), "{err}");
    let out = memia(&["train", "run"], dir);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("3 were already finished"), "{stderr}");
    assert!(stderr.contains("(memia's fused CPU kernels)"), "{stderr}");
    // The run now mixes two engines: memia train says so, and the manifest records who made
    // which model.
    assert!(stderr.contains("mixes 2 producers"), "{stderr}");
    assert!(
        stderr.contains("models 0..3 by memia-models BurnTrainer")
            && stderr.contains("engine burn"),
        "{stderr}"
    );
    assert!(
        stderr.contains("models 3..8 by memia-models BurnTrainer"),
        "{stderr}"
    );
    let manifest = std::fs::read_to_string(dir.join("run/manifest.json")).unwrap();
    assert!(manifest.contains("\"engine\": \"fused\""), "{manifest}");
    assert!(manifest.contains("\"engine\": \"burn\""), "{manifest}");
    let again = std::fs::metadata(dir.join("run/logits/model_00000.npy"))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(first, again);

    // Every command checks the run's files against the plan: labels.npy edited after the plan
    // is refused by memorize and attack, not used.
    let labels_path = dir.join("run/labels.npy");
    let original = std::fs::read(&labels_path).unwrap();
    let mut edited: Array1<i64> = read_npy(&labels_path).unwrap();
    edited[5] = (edited[5] + 1) % 10;
    write_npy(&labels_path, &edited).unwrap();
    for command in [
        vec!["memorize", "run", "-o", "bad.npz"],
        vec!["attack", "run", "--target", "0", "-o", "bad.npy"],
    ] {
        let err = fails(&command, dir);
        assert!(
            err.contains("labels.npy: the labels differ from those the plan was made with"),
            "{err}"
        );
    }
    std::fs::write(&labels_path, original).unwrap();

    // Memorization: the mislabeled canaries (the last 30 samples) are memorized.
    ok(&["memorize", "run", "-o", "mem.npz"], dir);
    let mut npz = NpzArchive::open(dir.join("mem.npz")).unwrap();
    let mem: Array1<f64> = npz.read("mem").unwrap();
    let se: Array1<f64> = npz.read("std_error").unwrap();
    assert_eq!((mem.len(), se.len()), (630, 630));
    let canary_mean = mem.slice(ndarray::s![600..]).mean().unwrap();
    let other_mean = mem.slice(ndarray::s![..600]).mean().unwrap();
    assert!(
        canary_mean > 0.6 && other_mean < 0.15 && canary_mean > 4.0 * other_mean,
        "{canary_mean} {other_mean}"
    );
    ok(&["memorize", "run", "-o", "mem.npy", "--soft"], dir);
    assert_eq!(
        read_npy::<f64, ndarray::Ix1>(dir.join("mem.npy"))
            .unwrap()
            .len(),
        630
    );

    // Attack model 2 with the others; metrics agree with the ROC computed here.
    ok(
        &[
            "attack",
            "run",
            "--target",
            "2",
            "--method",
            "lira-online",
            "--global-variance",
            "-o",
            "scores.npy",
            "--members-out",
            "members.npy",
        ],
        dir,
    );
    let scores: Array1<f64> = read_npy(dir.join("scores.npy")).unwrap();
    let members: Array1<bool> = read_npy(dir.join("members.npy")).unwrap();
    assert_eq!(members, keep.row(2));
    let json = ok(
        &[
            "metrics",
            "--scores",
            "scores.npy",
            "--labels",
            "members.npy",
        ],
        dir,
    );
    let metrics: serde_json::Value = serde_json::from_str(&json).unwrap();
    let roc = RocCurve::new(
        scores.as_slice().unwrap(),
        members.as_slice().unwrap(),
        Direction::HigherIsMember,
    )
    .unwrap();
    assert_eq!(metrics["auroc"].as_f64().unwrap(), roc.auc());
    assert_eq!(metrics["tpr_at_fpr"].as_array().unwrap().len(), 5);
    assert_eq!(metrics["samples"], 630);
    assert!(metrics["auroc"].as_f64().unwrap() > 0.5);
    // The candidates of a memorization file, scored on their own curve without scikit-learn.
    let json = ok(
        &[
            "metrics",
            "--scores",
            "scores.npy",
            "--labels",
            "members.npy",
            "--candidates",
            "mem.npz",
            "--threshold",
            "0.4",
            "-q",
        ],
        dir,
    );
    let metrics: serde_json::Value = serde_json::from_str(&json).unwrap();
    let chosen: Vec<usize> = (0..630).filter(|&i| mem[i] >= 0.4).collect();
    let (cs, cm): (Vec<f64>, Vec<bool>) = chosen
        .iter()
        .filter(|&&i| !scores[i].is_nan())
        .map(|&i| (scores[i], members[i]))
        .unzip();
    let candidate_roc = RocCurve::new(&cs, &cm, Direction::HigherIsMember).unwrap();
    let candidates = &metrics["candidates"];
    assert_eq!(candidates["samples"], chosen.len(), "{candidates}");
    assert_eq!(candidates["auroc"].as_f64().unwrap(), candidate_roc.auc());
    assert_eq!(candidates["rule"], "memorization >= 0.4");
    // The same from a plain .npy of memorization scores; a file of another length is refused.
    write_npy(dir.join("mem1d.npy"), &mem).unwrap();
    let again: serde_json::Value = serde_json::from_str(&ok(
        &[
            "metrics",
            "--scores",
            "scores.npy",
            "--labels",
            "members.npy",
            "--candidates",
            "mem1d.npy",
            "--threshold",
            "0.4",
            "-q",
        ],
        dir,
    ))
    .unwrap();
    assert_eq!(again["candidates"], metrics["candidates"]);
    write_npy(
        dir.join("mem_short.npy"),
        &mem.slice(ndarray::s![..10]).to_owned(),
    )
    .unwrap();
    let err = fails(
        &[
            "metrics",
            "--scores",
            "scores.npy",
            "--labels",
            "members.npy",
            "--candidates",
            "mem_short.npy",
        ],
        dir,
    );
    assert!(
        err.contains("memorization of 10 samples for 630 scores"),
        "{err}"
    );
    for method in ["lira-offline", "rmia", "loss", "global"] {
        ok(
            &[
                "attack", "run", "--target", "1", "--method", method, "-o", "s2.npy",
            ],
            dir,
        );
        let s: Array1<f64> = read_npy(dir.join("s2.npy")).unwrap();
        assert_eq!(s.len(), 630, "{method}");
    }
    // An external target: model 2's logits file, attacked with all 8 models as shadows.
    ok(
        &[
            "attack",
            "run",
            "--target-logits",
            "run/logits/model_00002.npy",
            "-o",
            "ext.npy",
        ],
        dir,
    );
    assert_eq!(
        read_npy::<f64, ndarray::Ix1>(dir.join("ext.npy"))
            .unwrap()
            .len(),
        630
    );

    // A report on an external target (model 2's logits with its membership): all 8 models
    // are shadows; without --members it has scores and the samples but no ROC.
    write_npy(dir.join("members2.npy"), &keep.row(2).to_owned()).unwrap();
    ok(
        &[
            "report",
            "run",
            "-o",
            "ext-report",
            "--target-logits",
            "run/logits/model_00002.npy",
            "--members",
            "members2.npy",
            "--curve-targets",
            "2",
            "-q",
        ],
        dir,
    );
    let ext: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("ext-report/summary.json")).unwrap(),
    )
    .unwrap();
    assert!(
        ext["target"].is_null() && ext["shadow_models"] == 8,
        "{ext}"
    );
    assert!(ext["all"]["auroc"].as_f64().unwrap() > 0.5, "{ext}");
    let out = memia(
        &[
            "report",
            "run",
            "-o",
            "ext-report2",
            "--target-logits",
            "run/logits/model_00002.npy",
            "--curve-targets",
            "2",
        ],
        dir,
    );
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("not scored: all samples: the target's membership is not known"),
        "{stderr}"
    );
    let err = fails(
        &[
            "report",
            "run",
            "-o",
            "r3",
            "--target-logits",
            "members2.npy",
        ],
        dir,
    );
    assert!(
        err.contains("members2.npy") && err.contains("expected '<f4'"),
        "{err}"
    );
    let err = fails(
        &["report", "run", "-o", "r3", "--members", "members2.npy"],
        dir,
    );
    assert!(err.contains("--target-logits"), "{err}");

    // The report.
    ok(&["report", "run", "-o", "report", "--target", "2"], dir);
    let err = fails(&["report", "run", "-o", "r2", "--threshold", "nan"], dir);
    assert!(err.contains("--threshold NaN"), "{err}");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("report/summary.json")).unwrap())
            .unwrap();
    assert_eq!(summary["target"], 2);
    assert_eq!(summary["all"]["auroc"].as_f64().unwrap(), roc.auc());
    assert_eq!(summary["schema_version"], memia_report::SCHEMA_VERSION);
    let canaries = &summary["groups"]["canaries"];
    assert!(canaries["auroc"].as_f64().unwrap() > 0.9, "{canaries}");
    let csv = std::fs::read_to_string(dir.join("report/samples.csv")).unwrap();
    assert_eq!(csv.lines().count(), 631);
    assert!(csv.lines().last().unwrap().contains("canary"));
    // The run's named sets (pool.json) are carried into samples.csv.
    assert!(csv.lines().next().unwrap().ends_with(",candidate,groups"));
    assert!(csv.lines().last().unwrap().ends_with(",canaries"), "{csv}");
}

#[test]
fn run_does_everything_and_the_report_renders_in_chromium() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // Candidates at memorization 0.5, not the default 0.8: at 0.8 they are the canaries, whose
    // orange ROC curve (AUROC 1) runs along the plot's frame, too few pixels to count.
    std::fs::write(
        dir.join("audit.toml"),
        format!("{CONFIG}candidates = {{ memorization_at_least = 0.5 }}\n"),
    )
    .unwrap();
    ok(&["run", "audit.toml", "-q"], dir);
    let report = dir.join("audit-run/report");
    for f in [
        "summary.json",
        "samples.csv",
        "roc.svg",
        "memorization.svg",
        "privacy_vs_memorization.svg",
        "shadow_models.svg",
        "index.html",
    ] {
        assert!(report.join(f).is_file(), "{f}");
    }
    // Rerunning finds everything done.
    let out = memia(&["run", "audit.toml"], dir);
    assert!(String::from_utf8_lossy(&out.stderr).contains("trained 0 models"));

    let Some(chromium) = chromium() else {
        assert!(
            std::env::var_os("MEMIA_REQUIRE_CHROMIUM").is_none(),
            "MEMIA_REQUIRE_CHROMIUM is set but no chromium was found"
        );
        eprintln!("chromium not found: the screenshot test is skipped (install Debian's chromium)");
        return;
    };
    let (blue, orange) = palette_pixels(&screenshot(&chromium, &report.join("index.html")));
    eprintln!("plot pixels in the screenshot: {blue} blue, {orange} orange");
    // The ROC, histogram, scatter and curve plots draw in blue, the candidates' lines in
    // orange: a page whose images failed to load has neither colour.
    assert!(
        blue > 2000,
        "only {blue} plot-blue pixels: the plots did not render"
    );
    assert!(orange > 100, "only {orange} plot-orange pixels");
    // The same page without its SVG files: the check notices.
    let bare = dir.join("bare");
    std::fs::create_dir_all(&bare).unwrap();
    std::fs::copy(report.join("index.html"), bare.join("index.html")).unwrap();
    let (blue, orange) = palette_pixels(&screenshot(&chromium, &bare.join("index.html")));
    eprintln!("without the SVG files: {blue} blue, {orange} orange");
    assert!(blue < 200 && orange < 100, "{blue} {orange} without plots");
    // The whole page, thumbnails of the singled-out samples included (digits: white strokes on
    // black), against the same page without its samples/ folder.
    let tall = |page: &Path| dark_pixels(&screenshot_sized(&chromium, page, (1400, 6000)));
    let with_thumbnails = tall(&report.join("index.html"));
    let no_samples = dir.join("no-samples");
    std::fs::create_dir_all(&no_samples).unwrap();
    for entry in std::fs::read_dir(&report).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::copy(&path, no_samples.join(path.file_name().unwrap())).unwrap();
        }
    }
    let without = tall(&no_samples.join("index.html"));
    eprintln!("near-black pixels: {with_thumbnails} with the thumbnails, {without} without");
    assert!(
        with_thumbnails > without + 20_000,
        "{with_thumbnails} against {without}: the thumbnails did not render"
    );
}

/// Pixels darker than 16 in every channel (the thumbnails' background; text and axes are
/// thinner).
fn dark_pixels(path: &Path) -> usize {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    buf[..info.buffer_size()]
        .chunks(channels)
        .filter(|p| p[..3].iter().all(|&v| v < 16))
        .count()
}

/// A 1400 x 1800 headless screenshot of `page`.
fn screenshot(chromium: &Path, page: &Path) -> PathBuf {
    screenshot_sized(chromium, page, (1400, 1800))
}

/// A headless screenshot of `page` in a window of `(width, height)`.
fn screenshot_sized(chromium: &Path, page: &Path, (width, height): (u32, u32)) -> PathBuf {
    let shot = page.with_extension("png");
    let out = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
        ])
        .arg(format!("--window-size={width},{height}"))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(shot.is_file(), "chromium wrote no screenshot");
    shot
}

fn chromium() -> Option<PathBuf> {
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .flat_map(|name| {
            std::env::var_os("PATH")
                .map(|p| {
                    std::env::split_paths(&p)
                        .map(|d| d.join(name))
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
        })
        .find(|p| p.is_file())
}

/// Pixels of the plots' first two colours, (0, 114, 178) and (213, 94, 0), within a tolerance
/// for antialiasing.
fn palette_pixels(path: &Path) -> (usize, usize) {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    let near = |p: &[u8], c: [u8; 3]| p.iter().zip(c).all(|(&a, b)| a.abs_diff(b) < 24);
    let (mut blue, mut orange) = (0, 0);
    for p in buf[..info.buffer_size()].chunks(channels) {
        if near(&p[..3], [0, 114, 178]) {
            blue += 1;
        } else if near(&p[..3], [213, 94, 0]) {
            orange += 1;
        }
    }
    (blue, orange)
}

/// A LiRA reference run on disk: `experiment-*/keep.npy`, `logits/0000000010.npy`.
fn write_lira_run(root: &Path, keep: &KeepMatrix, logits: &Array4<f32>, labels: &[i64]) {
    for k in 0..keep.models() {
        let exp = root.join(format!("experiment-{k}_{}", keep.models()));
        std::fs::create_dir_all(exp.join("logits")).unwrap();
        write_npy(exp.join("keep.npy"), &keep.row(k).to_owned()).unwrap();
        let (n, a, c) = (logits.dim().1, logits.dim().2, logits.dim().3);
        let model = logits
            .index_axis(ndarray::Axis(0), k)
            .to_owned()
            .into_shape_with_order((n, 1, a, c))
            .unwrap();
        write_npy(exp.join("logits/0000000010.npy"), &model).unwrap();
    }
    write_npy(root.join("y_train.npy"), &Array1::from(labels.to_vec())).unwrap();
}

#[test]
fn import_lira_then_attack_and_report() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (k, n) = (6, 120);
    let keep = KeepMatrix::balanced(k, n, 4).unwrap();
    let labels: Vec<i64> = (0..n as i64).map(|i| i % 4).collect();
    let logits = Array4::from_shape_fn((k, n, 2, 4), |(m, i, a, c)| {
        let boost = if keep.get(m, i) { 2.0 } else { 0.0 };
        let noise = ((m * 31 + i * 17 + a * 7 + c * 3) % 11) as f32 * 0.1;
        if c as i64 == labels[i] {
            1.0 + boost + noise
        } else {
            noise
        }
    });
    write_lira_run(&dir.join("lira"), &keep, &logits, &labels);
    ok(&["import-lira", "lira", "-o", "run"], dir);
    let imported = KeepMatrix::load(dir.join("run/keep.npy")).unwrap();
    assert_eq!(imported, keep);
    let model3: Array3<f32> = read_npy(dir.join("run/logits/model_00003.npy")).unwrap();
    assert_eq!(model3, logits.index_axis(ndarray::Axis(0), 3));
    ok(
        &[
            "attack",
            "run",
            "--target",
            "0",
            "--method",
            "lira-online",
            "-o",
            "s.npy",
        ],
        dir,
    );
    let scores: Array1<f64> = read_npy(dir.join("s.npy")).unwrap();
    // The same attack through the library.
    use memia_attacks::{FittedTest, LiraConfig, MembershipTest};
    let l = memia_core::Logits::new(logits.clone()).unwrap();
    let u: Vec<u32> = labels.iter().map(|&x| x as u32).collect();
    let phi = l.signals(&u, Signal::Phi).unwrap();
    let others: Vec<usize> = (1..k).collect();
    let direct = LiraConfig::online()
        .fit(
            &keep.select_models(&others).unwrap(),
            phi.select(ndarray::Axis(0), &others).view(),
        )
        .unwrap()
        .score(phi.index_axis(ndarray::Axis(0), 0))
        .unwrap();
    assert_eq!(scores, direct);
    // The right-by-chance OUT side from the command line, as the library computes it; refused
    // for an attack that is not LiRA.
    ok(
        &[
            "attack",
            "run",
            "--target",
            "0",
            "--method",
            "lira-online",
            "--right-by-chance",
            "-o",
            "lucky.npy",
        ],
        dir,
    );
    let lucky: Array1<f64> = read_npy(dir.join("lucky.npy")).unwrap();
    let direct = LiraConfig::online()
        .with_out_side(memia_attacks::OutSide::RightByChance)
        .fit(
            &keep.select_models(&others).unwrap(),
            phi.select(ndarray::Axis(0), &others).view(),
        )
        .unwrap()
        .score(phi.index_axis(ndarray::Axis(0), 0))
        .unwrap();
    assert_eq!(lucky, direct);
    assert_ne!(lucky, scores);
    let err = fails(
        &[
            "attack",
            "run",
            "--target",
            "0",
            "--method",
            "rmia",
            "--right-by-chance",
        ],
        dir,
    );
    assert!(err.contains("--right-by-chance"), "{err}");
    ok(
        &["report", "run", "-o", "report", "--curve-targets", "2"],
        dir,
    );
    assert!(dir.join("report/index.html").is_file());
    // An imported run is not trained.
    let err = fails(&["train", "run"], dir);
    assert!(err.contains("no memia.toml"), "{err}");
}

#[test]
fn bad_inputs_fail_with_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let err = fails(&["train", "nowhere"], dir);
    assert!(
        err.contains("nowhere") && err.contains("not a run directory"),
        "{err}"
    );
    let err = fails(&["plan", "-o", "run", "--scheme", "halves"], dir);
    assert!(err.contains("--scheme: 'halves'"), "{err}");
    let err = fails(&["plan", "-o", "run", "--model", "transformer"], dir);
    assert!(err.contains("--model: 'transformer'"), "{err}");
    let err = fails(
        &["plan", "-o", "run", "--dataset", "idx:missing.gz,labels.gz"],
        dir,
    );
    assert!(err.contains("missing.gz"), "{err}");
    std::fs::write(
        dir.join("typo.toml"),
        "[data]\nsource = \"digits\"\n[plan]\nmodles = 4\n",
    )
    .unwrap();
    let err = fails(&["plan", "-c", "typo.toml", "-o", "run"], dir);
    assert!(err.contains("typo.toml") && err.contains("modles"), "{err}");
    let err = fails(
        &[
            "plan",
            "-o",
            "run",
            "--model",
            "cnn",
            "--dataset",
            "npz:x.npz",
        ],
        dir,
    );
    assert!(err.contains("x.npz"), "{err}");

    // A run of one plan refuses another plan.
    ok(
        &[
            "plan", "-o", "run", "--models", "4", "--epochs", "5", "--seed", "1",
        ],
        dir,
    );
    let err = fails(
        &[
            "plan", "-o", "run", "--models", "4", "--epochs", "5", "--seed", "2",
        ],
        dir,
    );
    assert!(err.contains("hashes to"), "{err}");
    let err = fails(&["train", "run", "--models", "2..9"], dir);
    assert!(err.contains("2..9") && err.contains("4 models"), "{err}");
    let err = fails(&["train", "run", "--device", "tpu"], dir);
    assert!(err.contains("unknown device 'tpu'"), "{err}");
    let err = fails(&["train", "run", "--engine", "gpu"], dir);
    assert!(err.contains("unknown engine 'gpu'"), "{err}");
    let err = fails(&["attack", "run", "--target", "0", "-o", "s.npy"], dir);
    assert!(err.contains("not trained yet"), "{err}");
    ok(&["train", "run", "-q"], dir);
    let err = fails(&["attack", "run", "-o", "s.npy"], dir);
    assert!(err.contains("--target K"), "{err}");
    let err = fails(&["attack", "run", "--target", "4", "-o", "s.npy"], dir);
    assert!(err.contains("--target 4"), "{err}");
    write_npy(dir.join("wrong.npy"), &Array3::<f32>::zeros((5, 1, 10))).unwrap();
    let err = fails(
        &[
            "attack",
            "run",
            "--target-logits",
            "wrong.npy",
            "-o",
            "s.npy",
        ],
        dir,
    );
    assert!(
        err.contains("[5, 1, 10]") && err.contains("[1797, 1, 10]"),
        "{err}"
    );
    let err = fails(&["memorize", "run", "-o", "mem.txt"], dir);
    assert!(err.contains(".npz"), "{err}");

    // metrics: mismatched lengths, bad labels, wrong dtype.
    write_npy(dir.join("s.npy"), &Array1::from(vec![0.1, 0.2, 0.3])).unwrap();
    write_npy(dir.join("m2.npy"), &Array1::from(vec![true, false])).unwrap();
    let err = fails(&["metrics", "--scores", "s.npy", "--labels", "m2.npy"], dir);
    assert!(
        err.contains("3 scores") && err.contains("2 labels"),
        "{err}"
    );
    write_npy(dir.join("m3.npy"), &Array1::from(vec![0i64, 2, 1])).unwrap();
    let err = fails(&["metrics", "--scores", "s.npy", "--labels", "m3.npy"], dir);
    assert!(err.contains("entry 1 is 2"), "{err}");
    let err = fails(
        &["metrics", "--scores", "m3.npy", "--labels", "m3.npy"],
        dir,
    );
    assert!(err.contains("float"), "{err}");
    // All scores NaN: an error naming the file and the count; some NaN: said how many.
    write_npy(dir.join("nan.npy"), &Array1::from(vec![f64::NAN; 3])).unwrap();
    write_npy(dir.join("m1.npy"), &Array1::from(vec![true, false, true])).unwrap();
    let err = fails(
        &["metrics", "--scores", "nan.npy", "--labels", "m1.npy"],
        dir,
    );
    assert!(
        err.contains("nan.npy: no score to evaluate (3 scores, none of them finite)"),
        "{err}"
    );
    write_npy(
        dir.join("some.npy"),
        &Array1::from(vec![0.9, f64::NAN, 0.1, 0.5]),
    )
    .unwrap();
    write_npy(
        dir.join("m4.npy"),
        &Array1::from(vec![true, false, false, true]),
    )
    .unwrap();
    let out = memia(
        &["metrics", "--scores", "some.npy", "--labels", "m4.npy"],
        dir,
    );
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("1 of 4 scores in some.npy are not finite"),
        "{stderr}"
    );
    // The one rule: the undetermined non-member is left out of the FPR's denominator.
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["negatives"], 1, "{json}");
    assert_eq!(json["undetermined"]["non_members"], 1, "{json}");
    assert_eq!(json["unscored"], 1, "{json}");
    // Groups scored separately, from a groups file; a one-class group says why it has no curve.
    std::fs::write(
        dir.join("g.json"),
        r#"[{"name": "pair", "samples": [0, 2]}, {"name": "members", "samples": [0, 3]}]"#,
    )
    .unwrap();
    let json: serde_json::Value = serde_json::from_str(&ok(
        &[
            "metrics", "--scores", "some.npy", "--labels", "m4.npy", "--groups", "g.json", "-q",
        ],
        dir,
    ))
    .unwrap();
    assert_eq!(json["groups"]["pair"]["auroc"], 1.0, "{json}");
    assert!(
        json["groups"]["members"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("non-member")),
        "{json}"
    );
    // An I/O error prints its cause once.
    let err = fails(
        &["metrics", "--scores", "missing.npy", "--labels", "m4.npy"],
        dir,
    );
    assert_eq!(err.matches("No such file").count(), 1, "{err}");
    // --members-out without --target is refused before anything is written.
    write_npy(dir.join("t.npy"), &Array3::<f32>::zeros((1797, 1, 10))).unwrap();
    let err = fails(
        &[
            "attack",
            "run",
            "--target-logits",
            "t.npy",
            "--members-out",
            "m.npy",
            "-o",
            "unwritten.npy",
        ],
        dir,
    );
    assert!(err.contains("--members-out needs --target"), "{err}");
    assert!(!dir.join("unwritten.npy").exists());
    std::fs::write(dir.join("trunc.npy"), b"\x93NUMPY\x01\x00").unwrap();
    let err = fails(
        &["metrics", "--scores", "trunc.npy", "--labels", "m3.npy"],
        dir,
    );
    assert!(err.contains("trunc.npy"), "{err}");

    // A tampered run: labels of the wrong length; an edited plan.
    write_npy(dir.join("run/labels.npy"), &Array1::from(vec![0i64; 10])).unwrap();
    let err = fails(&["report", "run", "-o", "rep"], dir);
    assert!(err.contains("10 labels") && err.contains("1797"), "{err}");
    let plan = std::fs::read_to_string(dir.join("run/plan.json")).unwrap();
    std::fs::write(
        dir.join("run/plan.json"),
        plan.replace("\"seed\": 1", "\"seed\": 5"),
    )
    .unwrap();
    let err = fails(&["report", "run", "-o", "rep"], dir);
    assert!(err.contains("edited"), "{err}");
    let err = fails(&["import-lira", "nothing-here", "-o", "imp"], dir);
    assert!(err.contains("nothing-here"), "{err}");
}

/// The LiRA reference's four variants from the command line, on the fixture of
/// `crates/memia-attacks/tests/fixtures/make_lira_reference.py` (its `plot.py` formulas). The
/// fixture holds `phi` directly; here it becomes two-class logits `[phi, 0]` with label 0, whose
/// `phi` is the fixture's value rounded to float32, so the scores agree within float32 rounding.
#[test]
fn the_reference_variants_from_the_command_line() {
    use memia_core::npz::NpzArchive;
    use ndarray::{Ix1, Ix2, Ix3};
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut npz = NpzArchive::open(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../memia-attacks/tests/fixtures/lira_reference.npz"),
    )
    .unwrap();
    let keep = KeepMatrix::from_array(npz.read::<bool, Ix2>("keep").unwrap()).unwrap();
    let phi: Array3<f64> = npz.read::<f64, Ix3>("scores").unwrap();
    let (k, n, a) = phi.dim();
    let logits = Array4::from_shape_fn((k, n, a, 2), |(m, i, q, c)| {
        if c == 0 { phi[[m, i, q]] as f32 } else { 0.0 }
    });
    write_lira_run(&dir.join("lira"), &keep, &logits, &vec![0; n]);
    ok(&["import-lira", "lira", "-o", "run", "-q"], dir);
    let target = (k - 1).to_string();
    let cases: [(&str, &[&str]); 4] = [
        ("ref_online", &["--method", "lira-online"]),
        (
            "ref_online_fixed",
            &["--method", "lira-online", "--global-variance"],
        ),
        (
            "ref_offline",
            &["--method", "lira-offline", "--offline-score", "log-density"],
        ),
        (
            "ref_offline_fixed",
            &[
                "--method",
                "lira-offline",
                "--offline-score",
                "log-density",
                "--global-variance",
            ],
        ),
    ];
    for (name, flags) in cases {
        let mut args = vec!["attack", "run", "--target", &target, "-o", "s.npy"];
        args.extend(flags);
        args.push("--reference-compatible");
        ok(&args, dir);
        let ours: Array1<f64> = read_npy(dir.join("s.npy")).unwrap();
        let reference = npz.read::<f64, Ix1>(name).unwrap();
        let worst = ours
            .iter()
            .zip(&reference)
            .map(|(a, b)| (a + b).abs() / b.abs().max(1.0)) // memia's score = -prediction
            .fold(0.0, f64::max);
        assert!(worst < 1e-4, "{name}: relative difference {worst}");
        // Without --reference-compatible the command line scores memia's variants, which
        // differ on this fixture (the reference's quirks change the numbers).
        args.pop();
        ok(&args, dir);
        let own: Array1<f64> = read_npy(dir.join("s.npy")).unwrap();
        let gap = own
            .iter()
            .zip(&reference)
            .map(|(a, b)| (a + b).abs())
            .fold(0.0, f64::max);
        assert!(gap > 1e-3, "{name}: the flag changed nothing ({gap})");
    }
    // The reference's signal: phi as score.py computes it, equal here within float32 rounding.
    ok(
        &[
            "attack",
            "run",
            "--target",
            &target,
            "--method",
            "lira-online",
            "--reference-compatible",
            "--signal",
            "phi-reference",
            "-o",
            "r.npy",
        ],
        dir,
    );
    let with_reference_signal: Array1<f64> = read_npy(dir.join("r.npy")).unwrap();
    let reference = npz.read::<f64, Ix1>("ref_online").unwrap();
    for (a, b) in with_reference_signal.iter().zip(&reference) {
        assert!((a + b).abs() < 1e-2 * b.abs().max(1.0), "{a} vs {}", -b);
    }
    // The flags are LiRA's, and need a method.
    let err = fails(
        &[
            "attack",
            "run",
            "--target",
            "0",
            "--signal",
            "phi-reference",
            "-o",
            "x.npy",
        ],
        dir,
    );
    assert!(err.contains("--signal needs --method"), "{err}");
    let err = fails(
        &[
            "attack",
            "run",
            "--target",
            "0",
            "--method",
            "rmia",
            "--reference-compatible",
            "-o",
            "x.npy",
        ],
        dir,
    );
    assert!(
        err.contains("--reference-compatible applies to lira-online and lira-offline"),
        "{err}"
    );
    let err = fails(
        &[
            "attack",
            "run",
            "--target",
            "0",
            "--method",
            "lira-online",
            "--offline-score",
            "tail",
            "-o",
            "x.npy",
        ],
        dir,
    );
    assert!(
        err.contains("--offline-score applies to lira-offline"),
        "{err}"
    );
}

/// Every setting is checked when the plan is made (not by `train` after it): each bad value is
/// refused by `memia plan` with the file and the setting named, and no struct is dumped.
#[test]
fn plan_refuses_bad_settings_naming_them() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let cases = [
        ("[model.mlp]\nhidden = [0]", "include a width of 0"),
        ("[training]\nepochs = 0", "[training] invalid epochs"),
        (
            "[training]\nbatch_size = 0",
            "[training] invalid batch_size",
        ),
        (
            "[training]\nlearning_rate = nan",
            "invalid learning_rate: NaN",
        ),
        (
            "[training]\nlearning_rate = -1.0",
            "invalid learning_rate: -1",
        ),
        (
            "[training]\nlearning_rate = inf",
            "invalid learning_rate: inf",
        ),
        ("[training]\nweight_decay = -0.5", "invalid weight_decay"),
        ("[training]\nweight_decay = nan", "invalid weight_decay"),
        (
            "[training]\noptimizer = { kind = \"sgd\", momentum = nan }",
            "invalid momentum",
        ),
        (
            "[training]\noptimizer = { kind = \"adam\", beta1 = 1.5, beta2 = 0.999, epsilon = 1e-8 }",
            "invalid beta1",
        ),
        (
            "[training]\naugmentation = { max_shift = 8 }",
            "8 pixels would shift a 8 x 8 image",
        ),
        (
            "[plan]\nqueries = [\"plain\", { shift = { dx = 9, dy = 0 } }]",
            "shift (9, 0) moves a 8 x 8 image",
        ),
        ("[train]\ngroup_size = 0", "[train] group_size"),
        (
            "[plan]\nscheme = { kind = \"bernoulli\", p = 0.0 }",
            "leaves no model on one side",
        ),
        (
            "[plan]\nscheme = { kind = \"fixed_size\", ratio = 1.0 }",
            "leaves no model on one side",
        ),
        ("[plan]\nmodels = 1", "gives model 0 an empty training set"),
        ("samples = 0", "[data] samples"),
    ];
    for (i, (settings, expected)) in cases.iter().enumerate() {
        let data = format!("[data]\nsource = \"digits\"\n{settings}\n");
        let name = format!("c{i}.toml");
        std::fs::write(dir.join(&name), data).unwrap();
        let err = fails(&["plan", "--config", &name, "-o", &format!("run{i}")], dir);
        assert!(
            err.contains(expected) && err.contains(&name),
            "{settings}: {err}"
        );
        assert!(
            !err.contains("Config {") && !err.contains("TrainingConfig"),
            "{err}"
        );
        assert!(
            !dir.join(format!("run{i}/plan.json")).exists(),
            "{settings}"
        );
    }
    // Flags are checked too, and named as flags.
    let err = fails(&["plan", "-o", "r", "--epochs", "0"], dir);
    assert!(err.contains("invalid epochs"), "{err}");
    let err = fails(&["plan", "-o", "r", "--samples", "0"], dir);
    assert!(err.contains("--samples must be at least 1"), "{err}");
}

/// Planning into the run of the same plan is a no-op: no file is written again.
#[test]
fn planning_the_same_plan_again_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    ok(&["plan", "-o", "run", "--models", "4", "-q"], dir);
    let stamps = |dir: &Path| -> Vec<(String, std::time::SystemTime)> {
        let mut v: Vec<_> = std::fs::read_dir(dir.join("run"))
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.file_name().to_string_lossy().into_owned(),
                    e.metadata().unwrap().modified().unwrap(),
                )
            })
            .collect();
        v.sort();
        v
    };
    let before = stamps(dir);
    std::thread::sleep(std::time::Duration::from_millis(20));
    let out = memia(&["plan", "-o", "run", "--models", "4"], dir);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("found the plan of 4 models"));
    assert_eq!(stamps(dir), before, "files were written again");
}

/// An import's plan does not depend on how the source path is spelled, and an import of NaN
/// logits names the file and leaves no half-made run.
#[test]
fn imports_are_independent_of_spelling_and_refuse_nan_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (k, n) = (4, 30);
    let keep = KeepMatrix::balanced(k, n, 2).unwrap();
    let labels: Vec<i64> = (0..n as i64).map(|i| i % 3).collect();
    let mut logits = Array4::from_shape_fn((k, n, 1, 3), |(m, i, _, c)| (m + i + c) as f32 * 0.1);
    write_lira_run(&dir.join("lira"), &keep, &logits, &labels);
    std::fs::create_dir_all(dir.join("elsewhere")).unwrap();
    ok(&["import-lira", "lira", "-o", "a", "-q"], dir);
    ok(
        &["import-lira", "../lira", "-o", "../b", "-q"],
        &dir.join("elsewhere"),
    );
    let plan = |run: &str| std::fs::read_to_string(dir.join(run).join("plan.json")).unwrap();
    assert_eq!(plan("a"), plan("b"));
    // The same source spelled another way into the same run: the same plan, accepted.
    ok(
        &["import-lira", "./elsewhere/../lira", "-o", "a", "-q"],
        dir,
    );

    logits[[2, 5, 0, 1]] = f32::NAN;
    write_lira_run(&dir.join("lira"), &keep, &logits, &labels);
    let err = fails(&["import-lira", "lira", "-o", "c"], dir);
    assert!(
        err.contains("experiment-2_4") && err.contains("is not finite"),
        "{err}"
    );
    assert!(!dir.join("c").exists(), "a half-made run was left");
}

/// Logits copied into a planned run are another model family: `memia train` refuses to fill
/// the other slots with memia's models unless told to, and then says the run mixes producers.
#[test]
fn training_next_to_foreign_models_needs_a_flag() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    ok(
        &["plan", "-o", "run", "--models", "4", "--epochs", "2", "-q"],
        dir,
    );
    ok(&["train", "run", "--models", "0..1", "-q"], dir);
    // Model 2's logits made elsewhere (here: a copy of model 0's), without a producer record.
    std::fs::copy(
        dir.join("run/logits/model_00000.npy"),
        dir.join("run/logits/model_00002.npy"),
    )
    .unwrap();
    let err = fails(&["train", "run"], dir);
    assert!(
        err.contains("model 2 by an unrecorded producer")
            && err.contains("--allow-mixed-producers"),
        "{err}"
    );
    // Any command brings the manifest up to date with the file written by hand.
    let manifest = std::fs::read_to_string(dir.join("run/manifest.json")).unwrap();
    assert!(
        manifest.contains("\"complete\": [\n    0,\n    2\n  ]"),
        "{manifest}"
    );
    assert!(
        !dir.join("run/logits/model_00001.npy").exists(),
        "nothing trained"
    );
    // `memia status` says what is finished, what is missing, and who produced what.
    let text = ok(&["status", "run"], dir);
    assert!(
        text.contains("finished 2 of 4: models 0, 2")
            && text.contains("missing 2: models 1, 3")
            && text.contains("model 2 by an unrecorded producer")
            && text.contains("mixes model families")
            && text.contains("4 models x ")
            && text.contains(" x 1 query x "),
        "{text}"
    );
    let out = memia(&["train", "run", "--allow-mixed-producers"], dir);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("mixes 2 producers")
            && stderr.contains("model 2 by an unrecorded producer"),
        "{stderr}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&ok(&["status", "run", "--json"], dir)).unwrap();
    assert_eq!(json["finished"], serde_json::json!([0, 1, 2, 3]), "{json}");
    assert_eq!(json["missing"], serde_json::json!([]), "{json}");
    let producers = json["producers"].as_array().unwrap();
    assert_eq!(producers.len(), 2, "{json}");
    assert_eq!(
        producers[0]["models"],
        serde_json::json!([0, 1, 3]),
        "{json}"
    );
    assert!(producers[1]["producer"].is_null(), "{json}");
    // The report says so too.
    ok(
        &["report", "run", "-o", "rep", "--curve-targets", "1", "-q"],
        dir,
    );
    let html = std::fs::read_to_string(dir.join("rep/index.html")).unwrap();
    assert!(html.contains("model 2 by an unrecorded producer"), "{html}");
}

/// The simplest import: a keep matrix, one logits array (here float64 and N x C per model) or a
/// folder of per-model files, the labels and groups; both give the same run, attackable and
/// reported, with the groups kept.
#[test]
fn models_trained_elsewhere_are_imported_in_the_simplest_layout() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (k, n, c) = (6, 40, 3);
    let keep = KeepMatrix::balanced(k, n, 9).unwrap();
    let labels: Array1<i64> = (0..n as i64).map(|i| i % 3).collect();
    let logits = ndarray::Array3::from_shape_fn((k, n, c), |(m, i, j)| {
        let boost = if keep.get(m, i) { 2.0 } else { 0.0 };
        let base = ((m * 7 + i * 3 + j) % 5) as f64 * 0.2;
        if j as i64 == labels[i] {
            base + boost
        } else {
            base
        }
    });
    keep.save(dir.join("keep.npy")).unwrap();
    write_npy(dir.join("logits.npy"), &logits).unwrap();
    write_npy(dir.join("y.npy"), &labels).unwrap();
    std::fs::create_dir_all(dir.join("per-model")).unwrap();
    for m in 0..k {
        let model = logits.index_axis(ndarray::Axis(0), m).mapv(|v| v as f32);
        write_npy(dir.join(format!("per-model/m{m:02}.npy")), &model).unwrap();
    }
    std::fs::write(
        dir.join("groups.json"),
        r#"[{"name": "canaries", "samples": [0, 1, 2, 3]}]"#,
    )
    .unwrap();
    let common = [
        "--keep",
        "keep.npy",
        "--labels",
        "y.npy",
        "--groups",
        "groups.json",
    ];
    let out = memia(
        &[
            &["import", "--logits", "logits.npy", "-o", "a"][..],
            &common[..],
        ]
        .concat(),
        dir,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("float64 logits converted to float32"));
    ok(
        &[
            &["import", "--logits", "per-model", "-o", "b", "-q"][..],
            &common[..],
        ]
        .concat(),
        dir,
    );
    for run in ["a", "b"] {
        let model: Array3<f32> = read_npy(dir.join(run).join("logits/model_00002.npy")).unwrap();
        assert_eq!(model.dim(), (n, 1, c));
        assert_eq!(model[[5, 0, 1]], logits[[2, 5, 1]] as f32);
        let pool = std::fs::read_to_string(dir.join(run).join("pool.json")).unwrap();
        assert!(pool.contains("\"canaries\""), "{pool}");
    }
    ok(&["attack", "a", "--target", "0", "-o", "s.npy"], dir);
    ok(&["report", "a", "-o", "rep", "--curve-targets", "2"], dir);
    let summary = std::fs::read_to_string(dir.join("rep/summary.json")).unwrap();
    assert!(
        summary.contains("canaries"),
        "groups survive into the report"
    );
    // Wrong inputs are named.
    write_npy(dir.join("short.npy"), &Array1::from(vec![0i64; 5])).unwrap();
    let err = fails(
        &[
            "import",
            "--keep",
            "keep.npy",
            "--logits",
            "logits.npy",
            "--labels",
            "short.npy",
            "-o",
            "c",
        ],
        dir,
    );
    assert!(err.contains("5 labels for 40 samples"), "{err}");
    std::fs::write(dir.join("bad.json"), r#"[{"name": "x", "samples": [40]}]"#).unwrap();
    let err = fails(
        &[
            "import",
            "--keep",
            "keep.npy",
            "--logits",
            "logits.npy",
            "--labels",
            "y.npy",
            "--groups",
            "bad.json",
            "-o",
            "c",
        ],
        dir,
    );
    assert!(err.contains("group 'x' lists sample 40"), "{err}");
    assert!(!dir.join("c").exists());
}

/// The bring-your-own-models workflow of docs/byo-models.md, end to end, with the numpy
/// stand-in for PyTorch (examples/byo/train_numpy.py): plan, export the pool, train outside
/// memia, import, and find the canaries memorized. Skipped (and said so) where python3 has no
/// numpy, unless MEMIA_REQUIRE_NUMPY=1 (which `.ci/run` sets after installing it).
#[test]
fn the_bring_your_own_models_workflow() {
    use std::io::Write as _;
    let has_numpy = Command::new("python3")
        .args(["-c", "import numpy"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_numpy {
        assert!(
            std::env::var("MEMIA_REQUIRE_NUMPY").as_deref() != Ok("1"),
            "MEMIA_REQUIRE_NUMPY=1 but `python3 -c 'import numpy'` failed"
        );
        let _ = writeln!(
            std::io::stderr(),
            "skipped: numpy not installed (`python3 -c 'import numpy'` failed)"
        );
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(
        dir.join("c.toml"),
        "[data]\nsource = \"digits\"\nsamples = 400\n\
         [data.canaries]\nkind = \"mislabeled\"\ncount = 20\nlabels = \"random\"\n\
         [plan]\nmodels = 8\nseed = 3\n",
    )
    .unwrap();
    ok(&["plan", "--config", "c.toml", "-o", "run", "-q"], dir);
    ok(&["export-pool", "run", "-o", "pool.npz", "-q"], dir);
    let mut npz = NpzArchive::open(dir.join("pool.npz")).unwrap();
    let keep: ndarray::Array2<bool> = npz.read("keep").unwrap();
    assert_eq!(
        keep,
        *KeepMatrix::load(dir.join("run/keep.npy"))
            .unwrap()
            .as_array()
    );
    let x: ndarray::Array4<f32> = npz.read("x").unwrap();
    assert_eq!(x.dim(), (420, 1, 8, 8));
    let canaries: Array1<i64> = npz.read("group_canaries").unwrap();
    assert_eq!(canaries.len(), 20);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/byo/train_numpy.py");
    let out = Command::new("python3")
        .arg(&script)
        .args(["pool.npz", "trained", "300"])
        .current_dir(dir)
        .env_remove("OPENBLAS_CORETYPE")
        .env_remove("OPENBLAS_L2_SIZE")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = memia(
        &[
            "import",
            "--keep",
            "trained/keep.npy",
            "--logits",
            "trained/logits",
            "--labels",
            "trained/y.npy",
            "--groups",
            "trained/groups.json",
            "-o",
            "imported",
            "-q",
        ],
        dir,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    // Models trained as the recipe says fit their keep rows: the import's checks stay silent.
    assert!(!err.contains("warning"), "{err}");
    // docs/byo-models.md step 5: memorization from the shadow models only, model 0 (the
    // target attacked below) left out, so that the target does not choose its own candidates.
    ok(
        &["memorize", "imported", "--exclude", "0", "-o", "mem.npz"],
        dir,
    );
    let mut mem = NpzArchive::open(dir.join("mem.npz")).unwrap();
    let mem: Array1<f64> = mem.read("mem").unwrap();
    let canary_mean = canaries.iter().map(|&i| mem[i as usize]).sum::<f64>() / 20.0;
    let other_mean = (0..400)
        .map(|i| mem[i])
        .filter(|v| v.is_finite())
        .sum::<f64>()
        / 400.0;
    assert!(
        canary_mean > 0.5 && canary_mean > 3.0 * other_mean,
        "canaries {canary_mean}, others {other_mean}"
    );
    ok(&["status", "imported"], dir);
    // Step 5 goes on: attack model 0, metrics with groups and candidates, report.
    ok(
        &[
            "attack",
            "imported",
            "--target",
            "0",
            "-o",
            "scores.npy",
            "--members-out",
            "members.npy",
        ],
        dir,
    );
    let metrics: serde_json::Value = serde_json::from_str(&ok(
        &[
            "metrics",
            "--scores",
            "scores.npy",
            "--labels",
            "members.npy",
            "--groups",
            "trained/groups.json",
            "--candidates",
            "mem.npz",
            "-q",
        ],
        dir,
    ))
    .unwrap();
    assert!(
        metrics["groups"]["canaries"]["auroc"].as_f64().unwrap() > 0.8,
        "{metrics}"
    );
    assert!(metrics["candidates"]["samples"].as_u64().unwrap() > 0);
    ok(
        &["report", "imported", "-o", "rep", "--curve-targets", "2"],
        dir,
    );
    let summary = std::fs::read_to_string(dir.join("rep/summary.json")).unwrap();
    assert!(summary.contains("canaries"));
    // The audited model from outside the run (here model 0's logits and its membership).
    ok(
        &[
            "report",
            "imported",
            "-o",
            "target-report",
            "--target-logits",
            "trained/logits/model_00000.npy",
            "--members",
            "members.npy",
            "--curve-targets",
            "2",
            "-q",
        ],
        dir,
    );
    let html = std::fs::read_to_string(dir.join("target-report/index.html")).unwrap();
    assert!(html.contains("the external target trained/logits/model_00000.npy"));
}

/// An import is built aside and renamed into place: killed at any moment, it leaves either
/// no run or the whole run, never a plan with some of its models.
#[test]
fn an_interrupted_import_leaves_no_half_made_run() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (k, n, c) = (48, 8000, 10);
    let keep = KeepMatrix::balanced(k, n, 5).unwrap();
    let labels: Array1<i64> = (0..n as i64).map(|i| i % 10).collect();
    let logits = Array4::from_shape_fn((k, n, 1, c), |(m, i, _, j)| ((m + i * j) % 7) as f32);
    keep.save(dir.join("keep.npy")).unwrap();
    write_npy(dir.join("logits.npy"), &logits).unwrap();
    write_npy(dir.join("y.npy"), &labels).unwrap();
    let import = |out: &str| {
        [
            "import",
            "--keep",
            "keep.npy",
            "--logits",
            "logits.npy",
            "--labels",
            "y.npy",
            "-o",
            out,
            "-q",
        ]
        .map(String::from)
    };
    let mut interrupted = 0;
    for (attempt, delay_ms) in [20u64, 60, 120, 200, 300].into_iter().enumerate() {
        let out = format!("run{attempt}");
        let mut child = Command::new(env!("CARGO_BIN_EXE_memia"))
            .args(import(&out))
            .current_dir(dir)
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        child.kill().ok();
        let status = child.wait().unwrap();
        let run = dir.join(&out);
        if !status.success() {
            interrupted += 1;
        }
        if run.exists() {
            let models = std::fs::read_dir(run.join("logits"))
                .unwrap()
                .filter(|e| {
                    e.as_ref()
                        .unwrap()
                        .path()
                        .extension()
                        .is_some_and(|x| x == "npy")
                })
                .count();
            assert_eq!(models, k, "{out}: a run with {models} of {k} models");
            assert!(run.join("labels.npy").is_file() && run.join("pool.json").is_file());
        }
    }
    assert!(
        interrupted > 0,
        "no import was interrupted: the test proved nothing"
    );
    let run = |out: &str| ok(&import(out).each_ref().map(String::as_str), dir);
    let staging = || {
        std::fs::read_dir(dir)
            .unwrap()
            .filter(|e| {
                let name = e.as_ref().unwrap().file_name();
                memia_core::is_temporary_name(&name.to_string_lossy(), "")
            })
            .count()
    };
    // An import that finishes leaves no staging folder behind.
    run("whole");
    let before = staging();
    run("whole2");
    assert_eq!(
        before,
        staging(),
        "a finished import left its staging folder"
    );
    // Importing again into the finished run is a no-op; into a non-empty folder, refused.
    run("whole");
    std::fs::create_dir_all(dir.join("busy")).unwrap();
    std::fs::write(dir.join("busy/notes.txt"), "mine").unwrap();
    let err = fails(&import("busy").each_ref().map(String::as_str), dir);
    assert!(err.contains("not an empty directory"), "{err}");
    assert_eq!(
        std::fs::read_to_string(dir.join("busy/notes.txt")).unwrap(),
        "mine"
    );
}

/// `memia audit`: shadow models in rounds on the embedded digits with mislabeled canaries. It
/// trains only what its rounds need, stops when its decisions are confident, makes no more
/// errors than it claims, and a second call trains nothing and decides the same.
#[test]
fn a_sequential_audit_trains_until_its_decisions_are_confident() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let config = CONFIG
        .replace("count = 30", "count = 80")
        .replace("models = 8", "models = 65");
    std::fs::write(dir.join("audit.toml"), config).unwrap();
    ok(&["plan", "--config", "audit.toml", "-o", "run", "-q"], dir);
    let out = memia(&["audit", "run", "-o", "a.json", "--delta", "0.1"], dir);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{stderr}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("a.json")).unwrap()).unwrap();
    assert_eq!(report["stop"], "confident", "{stderr}");
    let used = report["shadow_models"].as_u64().unwrap() as usize;
    assert!(used < 64, "stopped at {used}: {stderr}");
    // Only the models of its rounds were trained: the target (64) and shadows 0..used.
    let status: serde_json::Value =
        serde_json::from_str(&ok(&["status", "run", "--json"], dir)).unwrap();
    let finished: Vec<u64> = status["finished"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    let expected: Vec<u64> = (0..used as u64).chain([64]).collect();
    assert_eq!(finished, expected);
    // The decisions are on the target's membership as often as claimed.
    let last = report["rounds"].as_array().unwrap().last().unwrap().clone();
    let claimed = last["expected_error_rate"].as_f64().unwrap();
    let made = last["realized_error_rate"].as_f64().unwrap();
    let decided = last["decided"].as_f64().unwrap();
    assert!(decided >= 40.0, "{last}");
    assert!(
        made <= claimed + 3.0 * (claimed / decided).sqrt() + 1.0 / decided,
        "{made} made, {claimed} claimed"
    );
    // Resumed (or repeated): nothing trained, the same decisions.
    let out = memia(&["audit", "run", "-o", "b.json", "--delta", "0.1"], dir);
    assert!(out.status.success());
    assert!(!String::from_utf8_lossy(&out.stderr).contains("training"));
    let again: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("b.json")).unwrap()).unwrap();
    assert_eq!(again["decisions"], report["decisions"]);
    // Bad settings are refused before any training.
    let err = fails(&["audit", "run", "-o", "c.json", "--delta", "0.7"], dir);
    assert!(err.contains("delta"), "{err}");
    let err = fails(&["audit", "run", "-o", "c.json", "--budget", "65"], dir);
    assert!(err.contains("--budget 65"), "{err}");
}

/// `memia slurm` without a cluster: the script it writes (every sbatch option, the model ranges
/// of the unfinished models only) and its refusals. The cluster itself is tests/slurm.rs.
#[test]
fn the_slurm_script_schedules_the_unfinished_models() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    ok(
        &["plan", "-o", "run", "--models", "10", "--epochs", "2", "-q"],
        dir,
    );
    ok(&["train", "run", "--models", "2..5", "-q"], dir);
    ok(
        &[
            "slurm",
            "run",
            "--per-task",
            "2",
            "--partition",
            "gpu",
            "--gres",
            "gpu:1",
            "--time",
            "01:00:00",
            "--mem",
            "8G",
            "--throttle",
            "3",
            "--sbatch",
            "--account=lab",
            "--device",
            "cpu",
            "-q",
        ],
        dir,
    );
    let script = std::fs::read_to_string(dir.join("run/slurm/train.sbatch")).unwrap();
    for line in [
        "#SBATCH --array=0-3%3",
        "#SBATCH --partition=gpu",
        "#SBATCH --gres=gpu:1",
        "#SBATCH --time=01:00:00",
        "#SBATCH --mem=8G",
        "#SBATCH --account=lab",
        "RANGES=(0..2 5..7 7..9 9..10)",
        "--models \"${RANGES[$SLURM_ARRAY_TASK_ID]}\" --device cpu",
    ] {
        assert!(script.contains(line), "{line} missing from:\n{script}");
    }
    // The script runs as it is (one task, by hand): it trains that task's models.
    let out = Command::new("bash")
        .arg(dir.join("run/slurm/train.sbatch"))
        .env("SLURM_ARRAY_TASK_ID", "0")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status: serde_json::Value =
        serde_json::from_str(&ok(&["status", "run", "--json"], dir)).unwrap();
    assert_eq!(status["missing"], serde_json::json!([5, 6, 7, 8, 9]));
    let err = fails(&["slurm", "run", "--per-task", "0"], dir);
    assert!(err.contains("--per-task"), "{err}");
}
