//! What already held when issue 23 was filed, and must keep holding, each checked through the
//! `memia` binary: the report escapes every string that comes from a user's files; symlinks
//! inside a run's `logits/` are replaced, never written through; an import killed while it
//! stores its models leaves no half-made run; `memia train` started several times at once on
//! the same models of one run ends with every model present once, valid, and the manifest
//! right. (Oversized `.npy` and IDX headers: `tests/untrusted_inputs.rs` at the root.)

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use memia_core::KeepMatrix;
use memia_core::npy::write_npy;
use ndarray::{Array1, Array4};

mod support;
use support::{memia, ok, ok_with_stderr};

/// A small run of the embedded digits with mislabeled canaries (a group), trained in well
/// under a second.
const CONFIG: &str = "[data]\nsource = \"digits\"\nsamples = 300\n\
                      [data.canaries]\nkind = \"mislabeled\"\ncount = 20\n\
                      [plan]\nmodels = 6\nseed = 4\n\
                      [model.mlp]\nhidden = [32]\n\
                      [training]\nepochs = 8\n\
                      [train]\ngroup_size = 2\n\
                      [audit]\ncurve_targets = 2\n";

/// The `model_*.npy` and `model_*.json` files of a run, by name, with their bytes.
fn model_files(run: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(run.join("logits"))
        .unwrap()
        .filter_map(|e| {
            let path = e.unwrap().path();
            let name = path.file_name()?.to_string_lossy().to_string();
            name.starts_with("model_")
                .then(|| (name, std::fs::read(&path).unwrap()))
        })
        .collect()
}

/// Fails if `logits/` holds anything but model files (a temporary left behind, a link).
fn only_model_files(run: &Path) {
    for entry in std::fs::read_dir(run.join("logits")).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().to_string();
        let kind = entry.path().symlink_metadata().unwrap().file_type();
        assert!(
            name.starts_with("model_") && kind.is_file(),
            "{}: unexpected {name} ({kind:?})",
            run.display()
        );
    }
}

/// The `complete` list of a run's manifest.
fn manifest_complete(run: &Path) -> serde_json::Value {
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("manifest.json")).unwrap()).unwrap();
    manifest["complete"].clone()
}

/// Strings an attacker would put in a run's files, and what must never reach a page raw.
const GROUP: &str = "<script>alert(\"group\")</script>";
const PROVENANCE: &str = "<img src=x onerror=alert(1)>&\"'";
const PRODUCER: &str = "<b onmouseover=\"alert(2)\">trainer</b>";
const TARGET: &str = "t<svg onload=alert(3)>.npy";
const RAW: [&str; 5] = [
    "<script",
    "<img src=x",
    "<b onmouseover",
    "<svg onload",
    "alert(\"group\")",
];

/// Group names and provenance from `pool.json`, a producer from a model's `model_k.json` and
/// the name of an external target's file: every one reaches the report (so the test checks
/// something), and none of them reaches `index.html` or an SVG plot unescaped.
#[test]
fn user_strings_are_escaped_in_the_report() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(dir.join("c.toml"), CONFIG).unwrap();
    ok(&["plan", "--config", "c.toml", "-o", "run", "-q"], dir);
    ok(&["train", "run", "-q"], dir);
    // pool.json: every sample's provenance and the group's name replaced.
    let pool_path = dir.join("run/pool.json");
    let mut pool: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&pool_path).unwrap()).unwrap();
    for (i, p) in pool["provenance"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .enumerate()
    {
        *p = serde_json::Value::String(format!("{PROVENANCE}{i}"));
    }
    pool["groups"][0]["name"] = serde_json::Value::String(GROUP.into());
    std::fs::write(&pool_path, serde_json::to_string(&pool).unwrap()).unwrap();
    // model_00001.json: another producer (the report lists a run's producers).
    let producer_path = dir.join("run/logits/model_00001.json");
    let mut producer: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&producer_path).unwrap()).unwrap();
    producer["trainer"] = serde_json::Value::String(PRODUCER.into());
    std::fs::write(&producer_path, serde_json::to_string(&producer).unwrap()).unwrap();
    // An external target: model 0's logits under a hostile file name, with its membership.
    std::fs::copy(dir.join("run/logits/model_00000.npy"), dir.join(TARGET)).unwrap();
    let keep = KeepMatrix::load(dir.join("run/keep.npy")).unwrap();
    write_npy(dir.join("members.npy"), &keep.row(0).to_owned()).unwrap();
    ok(&["report", "run", "-o", "rep", "-q"], dir);
    ok(
        &[
            "report",
            "run",
            "-o",
            "target-rep",
            "--target-logits",
            TARGET,
            "--members",
            "members.npy",
            "-q",
        ],
        dir,
    );
    let escaped = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    for rep in ["rep", "target-rep"] {
        let html = std::fs::read_to_string(dir.join(rep).join("index.html")).unwrap();
        for raw in RAW {
            assert!(
                !html.contains(raw),
                "{rep}/index.html holds {raw} unescaped"
            );
        }
        // Each string is on the page, escaped.
        let mut expected = vec![escaped(GROUP), escaped(PRODUCER), escaped(PROVENANCE)];
        if rep == "target-rep" {
            expected.push(escaped(TARGET));
        }
        for e in expected {
            assert!(html.contains(&e), "{rep}/index.html lacks {e}");
        }
        let mut plots = 0;
        for entry in std::fs::read_dir(dir.join(rep)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|x| x == "svg") {
                plots += 1;
                let svg = std::fs::read_to_string(&path).unwrap();
                for raw in RAW {
                    assert!(!svg.contains(raw), "{} holds {raw}", path.display());
                }
            }
        }
        assert!(plots >= 4, "{rep}: {plots} plots");
        // The ROC plot's legend names the group: escaped for SVG (its own escaping also
        // turns the apostrophe into &apos;).
        let roc = std::fs::read_to_string(dir.join(rep).join("roc.svg")).unwrap();
        assert!(roc.contains("&lt;script&gt;"), "{rep}/roc.svg has no group");
    }
}

/// Links planted at the names of a run's files (a model's logits, a model's record, the
/// manifest) pointing at a victim file: training writes the run's files in their place (a
/// new file renamed over the link), and the victims keep their bytes. The models written are
/// those of an untouched run.
#[test]
fn symlinks_in_logits_are_replaced_never_written_through() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(dir.join("c.toml"), CONFIG).unwrap();
    ok(&["plan", "--config", "c.toml", "-o", "run", "-q"], dir);
    ok(&["train", "run", "-q"], dir);
    let expected = model_files(&dir.join("run"));
    let victims: Vec<PathBuf> = (0..4).map(|v| dir.join(format!("victim{v}"))).collect();
    for v in &victims {
        std::fs::write(v, b"precious, not a model").unwrap();
    }
    let link = |victim: &Path, at: &str| {
        let at = dir.join("run").join(at);
        let _ = std::fs::remove_file(&at);
        std::os::unix::fs::symlink(victim, at).unwrap();
    };
    // Model 1's logits: a link to a file that is no model, so model 1 is trained again.
    link(&victims[0], "logits/model_00001.npy");
    // Model 2: gone, its record a link; model 4: its logits and record both links.
    std::fs::remove_file(dir.join("run/logits/model_00002.npy")).unwrap();
    link(&victims[1], "logits/model_00002.json");
    link(&victims[2], "logits/model_00004.npy");
    link(&victims[2], "logits/model_00004.json");
    link(&victims[3], "manifest.json");
    let said = ok_with_stderr(&["train", "run"], dir).1;
    assert!(said.contains("trained 3 models"), "{said}");
    for v in &victims {
        assert_eq!(
            std::fs::read(v).unwrap(),
            b"precious, not a model",
            "{} was written through a link",
            v.display()
        );
    }
    only_model_files(&dir.join("run"));
    assert!(
        !dir.join("run/manifest.json")
            .symlink_metadata()
            .unwrap()
            .is_symlink()
    );
    assert_eq!(model_files(&dir.join("run")), expected);
    assert_eq!(
        manifest_complete(&dir.join("run")),
        serde_json::json!([0, 1, 2, 3, 4, 5])
    );
}

/// The staging folders (`.RUN.RANDOM.tmp`) beside an import's output.
fn staging_folders(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| memia_core::is_temporary_name(&n.to_string_lossy(), ""))
        })
        .collect()
}

/// How many model logits files a folder's `logits/` holds.
fn stored(run: &Path) -> usize {
    std::fs::read_dir(run.join("logits")).map_or(0, |d| {
        d.filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".npy")
        })
        .count()
    })
}

/// An import killed (SIGKILL: nothing of memia runs after it) while it stores its models,
/// at a moment chosen by watching its staging folder, so that the kill certainly falls
/// after some models were written and before the last: the output does not exist, what was
/// written stays in the hidden staging folder, and importing again makes the whole run.
/// (`cli.rs`'s `an_interrupted_import_leaves_no_half_made_run` kills at fixed delays, which
/// may all fall before or after the models are stored on another machine.)
#[test]
fn a_killed_import_leaves_no_half_made_run() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (k, n, c) = (64, 20_000, 10);
    let keep = KeepMatrix::balanced(k, n, 5).unwrap();
    let labels: Array1<i64> = (0..n as i64).map(|i| i % 10).collect();
    let logits = Array4::from_shape_fn((k, n, 1, c), |(m, i, _, j)| {
        // Members a little more confident on their label, as real logits are.
        let member = keep.get(m, i) && j == i % 10;
        ((m + i * j) % 7) as f32 * 0.1 + if member { 3.0 } else { 0.0 }
    });
    keep.save(dir.join("keep.npy")).unwrap();
    write_npy(dir.join("logits.npy"), &logits).unwrap();
    write_npy(dir.join("y.npy"), &labels).unwrap();
    drop(logits);
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
    let mut killed_mid_way = 0;
    for attempt in 0..5 {
        let out = format!("run{attempt}");
        let mut child = Command::new(env!("CARGO_BIN_EXE_memia"))
            .args(import(&out))
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let start = Instant::now();
        let mut seen = 0;
        // Watch the staging folder until it holds some models but not all, then kill.
        while child.try_wait().unwrap().is_none() && start.elapsed() < Duration::from_secs(60) {
            seen = staging_folders(dir)
                .iter()
                .map(|s| stored(s))
                .max()
                .unwrap_or(0);
            if (1..k - 1).contains(&seen) {
                child.kill().unwrap();
                break;
            }
        }
        let status = child.wait().unwrap();
        if status.success() {
            // Finished before it could be caught: the whole run.
            assert_eq!(stored(&dir.join(&out)), k);
            continue;
        }
        killed_mid_way += 1;
        assert!(
            (1..k - 1).contains(&seen),
            "killed with {seen} of {k} models stored"
        );
        assert!(
            !dir.join(&out).exists(),
            "{out} exists after an import killed with {seen} of {k} models stored"
        );
        let status = memia(&["status", &out], dir);
        assert!(
            !status.status.success(),
            "memia status finds a run in {out}"
        );
        // Importing again makes the whole run.
        ok(&import(&out).each_ref().map(String::as_str), dir);
        assert_eq!(stored(&dir.join(&out)), k);
        assert_eq!(
            manifest_complete(&dir.join(&out)),
            serde_json::json!((0..k).collect::<Vec<_>>())
        );
    }
    assert!(
        killed_mid_way > 0,
        "no import was caught while storing its models: the test proved nothing"
    );
    use std::io::Write as _;
    let _ = writeln!(
        std::io::stderr(),
        "{killed_mid_way} of 5 imports killed while storing their models"
    );
}

/// Three `memia train` processes started at once on the same models of one run (a user's
/// second terminal, a job scheduled twice): every one succeeds, every model is there once,
/// byte for byte the model of a single process, with its record, the manifest lists them
/// all, and no temporary file is left.
#[test]
fn concurrent_trains_of_the_same_models_end_with_every_model_once() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // Longer training than CONFIG, so that the processes overlap.
    let config = CONFIG
        .replace("models = 6", "models = 8")
        .replace("epochs = 8", "epochs = 60");
    std::fs::write(dir.join("c.toml"), config).unwrap();
    ok(&["plan", "--config", "c.toml", "-o", "single", "-q"], dir);
    ok(&["train", "single", "-q"], dir);
    let expected = model_files(&dir.join("single"));
    assert_eq!(expected.len(), 16);
    for ranges in [["0..8", "0..8", "0..8"], ["0..6", "2..8", "1..7"]] {
        let _ = std::fs::remove_dir_all(dir.join("shared"));
        ok(&["plan", "--config", "c.toml", "-o", "shared", "-q"], dir);
        let processes: Vec<_> = ranges
            .iter()
            .map(|range| {
                Command::new(env!("CARGO_BIN_EXE_memia"))
                    .args(["train", "shared", "--models", range, "-q"])
                    .current_dir(dir)
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for process in processes {
            let out = process.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "{ranges:?}: a process failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let run = dir.join("shared");
        only_model_files(&run);
        assert_eq!(model_files(&run), expected, "{ranges:?}");
        assert_eq!(
            manifest_complete(&run),
            serde_json::json!([0, 1, 2, 3, 4, 5, 6, 7]),
            "{ranges:?}"
        );
        let said = ok_with_stderr(&["status", "shared"], dir).1;
        let said = said + &String::from_utf8_lossy(&memia(&["status", "shared"], dir).stdout);
        assert!(said.contains("8 of 8"), "{said}");
    }
}
