//! Imports that would be silently wrong, and messages that mislead (issue 23, items 8-11 and
//! 13): per-model files in numeric order or refused, models that do not fit their keep row or
//! the pool's sample order, probabilities in place of logits, transposed arrays, `.pt` folders,
//! unmeasurable TPRs, memorization without the target, one default candidate threshold,
//! ranges printed first-last, and control characters from a run's files.
//!
//! Every array is written from Rust: nothing here needs numpy.

use std::path::{Path, PathBuf};

use memia_core::KeepMatrix;
use memia_core::npy::{read_npy, write_npy};
use memia_core::npz::NpzArchive;
use ndarray::{Array1, Array3, Array4, Axis};

mod support;
use support::{fails, ok, ok_with_stderr};

/// A deterministic number in [0, 1) from two indices.
fn hash01(a: usize, b: usize) -> f32 {
    let mut x = (a as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ (b as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    x ^= x >> 31;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 29;
    (x >> 40) as f32 / (1u64 << 24) as f32
}

const K: usize = 16;
const N: usize = 400;
const C: usize = 4;

/// K models that memorize: right and confident on the samples they trained on, right on six in
/// ten of the others; every model's logits differ from every other's. Labels `i % C`.
fn models() -> (KeepMatrix, Array4<f32>, Array1<i64>) {
    let keep = KeepMatrix::balanced(K, N, 7).unwrap();
    let labels: Array1<i64> = (0..N as i64).map(|i| i % C as i64).collect();
    let logits = Array4::from_shape_fn((K, N, 1, C), |(m, i, _, c)| {
        let y = i % C;
        let right = keep.get(m, i) || hash01(m, i) < 0.6;
        let winner = if right { y } else { (y + 1) % C };
        let strength = if keep.get(m, i) { 3.0 } else { 1.5 };
        let jitter = 0.3 * hash01(m * 31 + c, i);
        if c == winner {
            strength + jitter
        } else {
            jitter
        }
    });
    (keep, logits, labels)
}

/// Writes keep.npy, y.npy and logits.npy (K x N x A x C) into `dir`.
fn write_import_files(dir: &Path, keep: &KeepMatrix, logits: &Array4<f32>, labels: &Array1<i64>) {
    keep.save(dir.join("keep.npy")).unwrap();
    write_npy(dir.join("y.npy"), labels).unwrap();
    write_npy(dir.join("logits.npy"), logits).unwrap();
}

fn import_args<'a>(logits: &'a str, out: &'a str) -> Vec<&'a str> {
    vec![
        "import", "--keep", "keep.npy", "--logits", logits, "--labels", "y.npy", "-o", out,
    ]
}

/// The models of [`models`] written to `dir` and imported quietly into `dir/out`; returns them.
fn imported_run(dir: &Path, out: &str) -> (KeepMatrix, Array4<f32>, Array1<i64>) {
    let (keep, logits, labels) = models();
    write_import_files(dir, &keep, &logits, &labels);
    ok(
        &[&import_args("logits.npy", out)[..], &["-q"]].concat(),
        dir,
    );
    (keep, logits, labels)
}

/// Writes each model's logits as `folder/NAME(m).npy`.
fn write_model_files(
    dir: &Path,
    folder: &str,
    logits: &Array4<f32>,
    name: impl Fn(usize) -> String,
) -> PathBuf {
    let path = dir.join(folder);
    std::fs::create_dir_all(&path).unwrap();
    for m in 0..logits.dim().0 {
        let model: Array3<f32> = logits.index_axis(Axis(0), m).to_owned();
        write_npy(path.join(format!("{}.npy", name(m))), &model).unwrap();
    }
    path
}

fn stored_model(run: &Path, m: usize) -> Array3<f32> {
    read_npy(run.join(format!("logits/model_{m:05}.npy"))).unwrap()
}

/// Item 9: `model_0.npy ... model_15.npy` (not zero-padded) are models 0-15 in numeric order,
/// not name order (which made `model_10` the third model); names that give no order are
/// refused.
#[test]
fn numbered_model_files_are_taken_in_numeric_order_or_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (keep, logits, labels) = models();
    write_import_files(dir, &keep, &logits, &labels);
    write_model_files(dir, "plain", &logits, |m| format!("model_{m}"));
    let (_, err) = ok_with_stderr(&import_args("plain", "a"), dir);
    assert!(err.contains("taken in numeric order"), "{err}");
    assert!(err.contains("model_0.npy ... model_15.npy"), "{err}");
    assert!(
        !err.contains("warning"),
        "an honest import warns of nothing:\n{err}"
    );
    for m in [0, 1, 2, 9, 10, 15] {
        assert_eq!(
            stored_model(&dir.join("a"), m),
            logits.index_axis(Axis(0), m),
            "model {m}"
        );
    }
    // Counted from 1: model_1.npy is the keep matrix's first row.
    write_model_files(dir, "from_one", &logits, |m| {
        format!("net-{}-logits", m + 1)
    });
    ok(&[&import_args("from_one", "b")[..], &["-q"]].concat(), dir);
    assert_eq!(
        stored_model(&dir.join("b"), 10),
        logits.index_axis(Axis(0), 10)
    );

    // Names that do not tell the order.
    let refused = |folder: &str, names: &[&str], expect: &str| {
        let path = dir.join(folder);
        std::fs::create_dir_all(&path).unwrap();
        for (m, name) in names.iter().enumerate() {
            let model: Array3<f32> = logits.index_axis(Axis(0), m).to_owned();
            write_npy(path.join(name), &model).unwrap();
        }
        let small = KeepMatrix::from_array(
            keep.as_array()
                .select(Axis(0), &(0..names.len()).collect::<Vec<_>>()),
        )
        .unwrap();
        small.save(dir.join(format!("{folder}-keep.npy"))).unwrap();
        let keep_arg = format!("{folder}-keep.npy");
        let out = format!("{folder}-run");
        let err = fails(
            &[
                "import", "--keep", &keep_arg, "--logits", folder, "--labels", "y.npy", "-o", &out,
            ],
            dir,
        );
        assert!(err.contains("--logits"), "{err}");
        assert!(
            err.contains("cannot tell which file is which model"),
            "{err}"
        );
        assert!(err.contains(expect), "{folder}: {err}");
        assert!(!dir.join(&out).exists());
    };
    refused(
        "unnumbered",
        &["alpha.npy", "beta.npy", "gamma.npy"],
        "alpha.npy has no number",
    );
    refused(
        "mixed",
        &["model_0.npy", "model_1.npy", "run_2.npy"],
        "named differently",
    );
    refused(
        "twice",
        &["model_0.npy", "model_1.npy", "model_01.npy"],
        "both carry the number 1",
    );
    refused(
        "gap",
        &["model_0.npy", "model_1.npy", "model_3.npy"],
        "missing: 2",
    );
}

/// Item 9: a model whose file is another row's, or whose samples are not in pool order, is
/// named in a warning (also under -q); probabilities are told from logits.
#[test]
fn models_that_do_not_fit_their_keep_row_are_named_in_a_warning() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (keep, logits, labels) = models();
    write_import_files(dir, &keep, &logits, &labels);

    // Models 3 and 7 swapped.
    let mut swapped = logits.clone();
    swapped
        .index_axis_mut(Axis(0), 3)
        .assign(&logits.index_axis(Axis(0), 7));
    swapped
        .index_axis_mut(Axis(0), 7)
        .assign(&logits.index_axis(Axis(0), 3));
    write_npy(dir.join("swapped.npy"), &swapped).unwrap();
    let (_, err) = ok_with_stderr(
        &[&import_args("swapped.npy", "s")[..], &["-q"]].concat(),
        dir,
    );
    assert!(
        err.contains("warning: 2 of 16 imported models look shuffled or mismatched"),
        "{err}"
    );
    assert!(err.contains("model 3: accuracy"), "{err}");
    assert!(err.contains("its outputs fit keep row 7"), "{err}");
    assert!(
        err.contains("model 7: accuracy") && err.contains("fit keep row 3"),
        "{err}"
    );
    assert!(!err.contains("model 4:"), "{err}");
    // The same in files: the warning names the file.
    write_model_files(dir, "files", &swapped, |m| format!("model_{m:02}"));
    let (_, err) = ok_with_stderr(&import_args("files", "f"), dir);
    assert!(err.contains("model 3 (model_03.npy)"), "{err}");
    assert!(err.contains("the model of model_07.npy"), "{err}");

    // Model 5's samples in another order than the pool's.
    let mut shuffled = logits.clone();
    for i in 0..N {
        let from = (i * 7 + 3) % N;
        shuffled
            .slice_mut(ndarray::s![5, i, .., ..])
            .assign(&logits.slice(ndarray::s![5, from, .., ..]));
    }
    write_npy(dir.join("shuffled.npy"), &shuffled).unwrap();
    let (_, err) = ok_with_stderr(&import_args("shuffled.npy", "sh"), dir);
    assert!(err.contains("warning: 1 of 16 imported models"), "{err}");
    assert!(
        err.contains("model 5: accuracy") && err.contains("near chance"),
        "{err}"
    );
    assert!(err.contains("sample order"), "{err}");

    // Softmax probabilities instead of logits.
    let mut probabilities = logits.clone();
    for mut row in probabilities.lanes_mut(Axis(3)) {
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        row.mapv_inplace(|v| (v - max).exp());
        let sum = row.sum();
        row.mapv_inplace(|v| v / sum);
    }
    write_npy(dir.join("probabilities.npy"), &probabilities).unwrap();
    let (_, err) = ok_with_stderr(&import_args("probabilities.npy", "p"), dir);
    assert!(
        err.contains("the outputs of models 0-15 look like probabilities"),
        "{err}"
    );
    assert!(err.contains("numpy.log(p)"), "{err}");
    let (_, err) = ok_with_stderr(&import_args("logits.npy", "honest"), dir);
    assert!(!err.contains("warning"), "{err}");
}

/// Item 13: a transposed keep matrix is named as such (not blamed on the logits), so are
/// transposed logits, and a folder of `.pt` files says what it holds and what to write.
#[test]
fn transposed_arrays_and_torch_files_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (keep, logits, labels) = models();
    write_import_files(dir, &keep, &logits, &labels);
    write_npy(dir.join("keep_t.npy"), &keep.as_array().t().to_owned()).unwrap();
    let transposed_keep = |logits: &str| {
        fails(
            &[
                "import",
                "--keep",
                "keep_t.npy",
                "--logits",
                logits,
                "--labels",
                "y.npy",
                "-o",
                "x",
            ],
            dir,
        )
    };
    let err = transposed_keep("logits.npy");
    assert!(err.contains("--keep keep_t.npy"), "{err}");
    assert!(err.contains("transposed"), "{err}");
    assert!(err.contains("must be models x samples, 16 x 400"), "{err}");
    assert!(!err.contains("for the keep matrix's"), "{err}");
    write_model_files(dir, "files", &logits, |m| format!("model_{m:05}"));
    let err = transposed_keep("files");
    assert!(
        err.contains("the keep matrix looks transposed (400 x 16"),
        "{err}"
    );
    // The logits transposed, the keep matrix right.
    let lt = logits
        .view()
        .permuted_axes([1, 0, 2, 3])
        .as_standard_layout()
        .to_owned();
    write_npy(dir.join("logits_t.npy"), &lt).unwrap();
    let err = fails(&import_args("logits_t.npy", "x"), dir);
    assert!(err.contains("--logits logits_t.npy"), "{err}");
    assert!(err.contains("looks transposed (samples x models)"), "{err}");
    assert!(!dir.join("x").exists());

    // torch.save files.
    let pt = dir.join("pt");
    std::fs::create_dir_all(&pt).unwrap();
    for m in 0..K {
        std::fs::write(pt.join(format!("model_{m}.pt")), b"PK\x03\x04 not numpy").unwrap();
    }
    let err = fails(&import_args("pt", "x"), dir);
    assert!(
        err.contains("--logits pt: no .npy files (it holds 16 .pt files)"),
        "{err}"
    );
    assert!(err.contains("numpy.save"), "{err}");
    assert!(err.contains(".numpy()"), "{err}");
}

/// Item 13: out-of-range models are named by their flag, with the run's models first-last.
#[test]
fn out_of_range_models_name_the_flag_and_print_first_last() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    imported_run(dir, "run");
    let expected = "--target 16 is out of range: the run has models 0-15";
    let err = fails(&["attack", "run", "--target", "16", "-o", "s.npy"], dir);
    assert!(err.contains(expected), "{err}");
    let err = fails(&["report", "run", "--target", "16", "-o", "rep"], dir);
    assert!(err.contains(expected), "{err}");
    let err = fails(&["audit", "run", "--target", "16", "-o", "a.json"], dir);
    assert!(err.contains(expected), "{err}");
    let err = fails(&["memorize", "run", "--exclude", "16", "-o", "m.npz"], dir);
    assert!(
        err.contains("--exclude 16 is out of range: the run has models 0-15"),
        "{err}"
    );
    // `--models` takes A..B (B excluded); the message says the run's models first-last.
    ok(
        &[
            "plan",
            "--dataset",
            "digits",
            "--models",
            "4",
            "-o",
            "planned",
            "-q",
        ],
        dir,
    );
    let err = fails(&["train", "planned", "--models", "0..5"], dir);
    assert!(
        err.contains("--models 0..5") && err.contains("models 0-3"),
        "{err}"
    );
    assert!(!err.contains("0..4"), "{err}");
}

/// Item 10: where a TPR is not measurable `memia metrics` writes no number for it.
#[test]
fn metrics_write_no_tpr_where_it_is_not_measurable() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // 100 members, 200 non-members: FPR 1e-3 and below allow no false positive.
    let members: Array1<bool> = (0..300).map(|i| i % 3 == 0).collect();
    let scores: Array1<f64> = (0..300)
        .map(|i| if members[i] { 1.0 } else { 0.0 } + f64::from(hash01(i, 1)))
        .collect();
    write_npy(dir.join("s.npy"), &scores).unwrap();
    write_npy(dir.join("m.npy"), &members).unwrap();
    let json: serde_json::Value = serde_json::from_str(&ok(
        &["metrics", "--scores", "s.npy", "--labels", "m.npy"],
        dir,
    ))
    .unwrap();
    let points = json["tpr_at_fpr"].as_array().unwrap();
    assert_eq!(points.len(), 5);
    let mut seen = (0, 0);
    for p in points {
        if p["measurable"] == false {
            seen.0 += 1;
            for key in ["tpr", "tpr_lower", "tpr_upper"] {
                assert!(p[key].is_null(), "{key} of an unmeasurable point: {p}");
            }
        } else {
            seen.1 += 1;
            assert!(p["tpr"].is_f64(), "{p}");
        }
    }
    assert_eq!(seen, (3, 2), "{json}");
}

/// Item 13: the candidates' threshold is 0.8 wherever none is given, and every command that
/// uses it says which it used.
#[test]
fn one_default_candidate_threshold_printed_where_used() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let scores: Array1<f64> = (0..40).map(|i| f64::from(hash01(i, 2))).collect();
    let members: Array1<bool> = (0..40).map(|i| i % 2 == 0).collect();
    // 10 samples at 0.9, 10 at 0.6: the default takes the first 10 only.
    let mem: Array1<f64> = (0..40)
        .map(|i| match i / 10 {
            0 => 0.9,
            1 => 0.6,
            _ => 0.0,
        })
        .collect();
    write_npy(dir.join("s.npy"), &scores).unwrap();
    write_npy(dir.join("m.npy"), &members).unwrap();
    write_npy(dir.join("mem.npy"), &mem).unwrap();
    let metrics = [
        "metrics",
        "--scores",
        "s.npy",
        "--labels",
        "m.npy",
        "--candidates",
        "mem.npy",
    ];
    let (out, err) = ok_with_stderr(&metrics, dir);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["candidates"]["rule"], "memorization >= 0.8", "{json}");
    assert_eq!(json["candidates"]["samples"], 10, "{json}");
    assert!(
        err.contains(
            "candidates: 10 samples with memorization >= 0.8 in mem.npy (the default threshold"
        ),
        "{err}"
    );
    let (out, err) = ok_with_stderr(&[&metrics[..], &["--threshold", "0.5"]].concat(), dir);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["candidates"]["samples"], 20, "{json}");
    assert!(
        err.contains("memorization >= 0.5 in mem.npy (--threshold)"),
        "{err}"
    );

    // The report of an imported run (no configuration) and the sequential audit.
    imported_run(dir, "run");
    let (_, err) = ok_with_stderr(&["report", "run", "-o", "rep", "--curve-targets", "2"], dir);
    assert!(
        err.contains("candidates (memorization >= 0.8, the default"),
        "{err}"
    );
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("rep/summary.json")).unwrap())
            .unwrap();
    assert!(
        summary.to_string().contains("memorization >= 0.8"),
        "{summary}"
    );
    let (_, err) = ok_with_stderr(&["audit", "run", "-o", "a.json", "--budget", "2"], dir);
    assert!(
        err.contains("candidates: memorization >= 0.8 (the default threshold"),
        "{err}"
    );
}

/// Item 11: `memia memorize --exclude K` estimates memorization without model K, exactly as
/// from a run that never had it: the target of an attack does not choose its own candidates.
#[test]
fn memorization_can_leave_the_target_out() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (keep, logits, labels) = imported_run(dir, "all");
    let others: Vec<usize> = (1..K).collect();
    let sub = dir.join("others");
    std::fs::create_dir_all(&sub).unwrap();
    keep.select_models(&others)
        .unwrap()
        .save(sub.join("keep.npy"))
        .unwrap();
    write_npy(sub.join("y.npy"), &labels).unwrap();
    write_npy(sub.join("logits.npy"), &logits.select(Axis(0), &others)).unwrap();
    ok(
        &[&import_args("logits.npy", "run")[..], &["-q"]].concat(),
        &sub,
    );
    let (_, err) = ok_with_stderr(
        &["memorize", "all", "--exclude", "0", "-o", "without0.npz"],
        dir,
    );
    assert!(err.contains("from 15 models (left out: 0)"), "{err}");
    ok(&["memorize", "others/run", "-o", "others.npz", "-q"], dir);
    ok(&["memorize", "all", "-o", "with0.npz", "-q"], dir);
    let read = |name: &str| -> Array1<f64> {
        NpzArchive::open(dir.join(name))
            .unwrap()
            .read("mem")
            .unwrap()
    };
    let (without, others, with) = (read("without0.npz"), read("others.npz"), read("with0.npz"));
    assert_eq!(without.len(), N);
    for i in 0..N {
        assert!(
            without[i] == others[i] || (without[i].is_nan() && others[i].is_nan()),
            "sample {i}: {} against {}",
            without[i],
            others[i]
        );
    }
    assert_ne!(without, with, "model 0 changes the estimate");
    // Repeatable and comma-separated; all models left out is refused.
    ok(
        &[
            "memorize",
            "all",
            "--exclude",
            "0,1",
            "--exclude",
            "2",
            "-o",
            "x.npy",
            "-q",
        ],
        dir,
    );
    let all: Vec<String> = (0..K).map(|m| m.to_string()).collect();
    let err = fails(
        &[
            "memorize",
            "all",
            "--exclude",
            &all.join(","),
            "-o",
            "y.npy",
        ],
        dir,
    );
    assert!(err.contains("--exclude leaves no model"), "{err}");
}

/// Item 8: `memia status` prints what it read from a run's files with control characters
/// escaped, never raw (a producer in `model_k.json` could clear the screen or fake a line).
#[test]
fn status_escapes_control_characters_from_the_run_files() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    imported_run(dir, "run");
    let producer = dir.join("run/logits/model_00003.json");
    std::fs::write(
        &producer,
        r#"{"trainer": "evil\u001b[2J\u001b[31m\rmissing: none\nPWNED: a fake line\u0007", "details": {"k\u001b]0;x\u0007": "v\u009b1m"}}"#,
    )
    .unwrap();
    let text = ok(&["status", "run"], dir);
    assert!(
        !text.chars().any(|c| c.is_control() && c != '\n'),
        "raw control characters: {text:?}"
    );
    assert!(
        text.contains("evil\\u{1b}[2J\\u{1b}[31m\\rmissing: none\\nPWNED: a fake line\\u{7}"),
        "{text}"
    );
    assert!(text.contains("\\u{9b}1m"), "{text}");
    assert!(!text.lines().any(|l| l.starts_with("PWNED")), "{text}");
    // JSON escapes them its own way.
    let json = ok(&["status", "run", "--json"], dir);
    assert!(!json.contains('\u{1b}'), "{json}");
    serde_json::from_str::<serde_json::Value>(&json).unwrap();
}
