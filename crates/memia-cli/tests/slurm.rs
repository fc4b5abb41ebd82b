//! memia on a real one-node Slurm cluster: Debian's slurm-wlm and munge, started by
//! `.ci/slurm-cluster.sh` for this test and stopped after it (by the daemons' pid files).
//! Skipped (and said so) where Slurm is not installed or this is not root, unless
//! `MEMIA_REQUIRE_SLURM=1` (set by `.ci/run`, which installs Slurm).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant, SystemTime};

mod support;

const CONFIG: &str = r#"
[data]
source = "digits"
samples = 500
[data.canaries]
kind = "mislabeled"
count = 20
[plan]
models = 8
seed = 5
[model.mlp]
hidden = [32]
[training]
epochs = 20
"#;

/// A running cluster; stopped when dropped.
struct Cluster {
    dir: tempfile::TempDir,
    conf: String,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(script())
            .arg("stop")
            .arg(self.dir.path())
            .output();
    }
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.ci/slurm-cluster.sh")
}

fn start_cluster() -> Option<Cluster> {
    let installed = ["sbatch", "slurmctld", "slurmd", "munged"].iter().all(|b| {
        Command::new("sh")
            .args(["-c", &format!("command -v {b}")])
            .output()
            .is_ok_and(|o| o.status.success())
    });
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if !installed || !root {
        assert!(
            std::env::var("MEMIA_REQUIRE_SLURM").as_deref() != Ok("1"),
            "MEMIA_REQUIRE_SLURM=1 but Slurm is not installed or this is not root"
        );
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "skipped: Slurm (slurm-wlm, munge) not installed or not root"
        );
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new("bash")
        .arg(script())
        .arg("start")
        .arg(dir.path())
        // Ports apart from a cluster the machine may already run.
        .env("MEMIA_SLURMCTLD_PORT", "16817")
        .env("MEMIA_SLURMD_PORT", "16818")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let cluster = Cluster {
        conf: stdout
            .lines()
            .find_map(|l| l.strip_prefix("SLURM_CONF="))
            .map(str::to_string)
            .unwrap_or_default(),
        dir,
    };
    assert!(
        out.status.success() && !cluster.conf.is_empty(),
        "the cluster did not start:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(cluster)
}

impl Cluster {
    fn memia(&self, args: &[&str], cwd: &Path, env: &[(&str, &str)]) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_memia"));
        command
            .args(args)
            .current_dir(cwd)
            .env("SLURM_CONF", &self.conf)
            // numpy's BLAS on one thread: the same bits in every job.
            .env("OPENBLAS_NUM_THREADS", "1");
        for (k, v) in env {
            command.env(k, v);
        }
        command.output().unwrap()
    }

    fn ok(&self, args: &[&str], cwd: &Path, env: &[(&str, &str)]) -> String {
        let out = self.memia(args, cwd, env);
        assert!(
            out.status.success(),
            "memia {args:?} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stderr).to_string()
    }

    fn slurm(&self, args: &[&str]) -> String {
        let out = Command::new(args[0])
            .args(&args[1..])
            .env("SLURM_CONF", &self.conf)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    /// Waits until none of `jobs` is queued or running.
    fn wait(&self, jobs: &[String]) {
        let start = Instant::now();
        loop {
            let queued = self.slurm(&["squeue", "-h", "-j", &jobs.join(","), "-o", "%i %T"]);
            if queued.trim().is_empty() {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(300),
                "jobs still queued after 5 minutes:\n{queued}"
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }
}

/// The last submission of a run: (array id, report id, ranges).
fn last_submission(run: &Path) -> (String, String, Vec<String>) {
    let jobs: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("slurm/jobs.json")).unwrap())
            .unwrap();
    let last = jobs.as_array().unwrap().last().unwrap();
    (
        last["array"].as_str().unwrap().to_string(),
        last["report"].as_str().unwrap().to_string(),
        last["ranges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap().to_string())
            .collect(),
    )
}

/// Every finished model's logits file: its bytes and modification time.
fn models(run: &Path) -> BTreeMap<String, (Vec<u8>, SystemTime)> {
    std::fs::read_dir(run.join("logits"))
        .unwrap()
        .filter_map(|e| {
            let path = e.unwrap().path();
            let name = path.file_name()?.to_string_lossy().to_string();
            (name.starts_with("model_") && name.ends_with(".npy")).then(|| {
                let bytes = std::fs::read(&path).unwrap();
                let time = std::fs::metadata(&path).unwrap().modified().unwrap();
                (name, (bytes, time))
            })
        })
        .collect()
}

fn same_bytes(a: &Path, b: &Path) {
    let (a, b) = (models(a), models(b));
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (name, (bytes, _)) in &a {
        assert!(bytes == &b[name].0, "{name} differs");
    }
}

/// Whether `python3` can import numpy, which the external trainer of part 2 needs. Where it
/// cannot, prints `skipped: numpy not installed ...` and says no, unless
/// `MEMIA_REQUIRE_NUMPY=1` (set by `.ci/run`, which installs numpy) makes that a failure.
fn numpy_available() -> bool {
    let import = Command::new("python3")
        .args(["-c", "import numpy"])
        .output();
    if import.as_ref().is_ok_and(|o| o.status.success()) {
        return true;
    }
    let why = match &import {
        // The traceback's last line: "ModuleNotFoundError: No module named 'numpy'".
        Ok(out) => String::from_utf8_lossy(&out.stderr)
            .lines()
            .last()
            .unwrap_or_default()
            .to_string(),
        Err(e) => format!("python3 does not run: {e}"),
    };
    assert!(
        std::env::var("MEMIA_REQUIRE_NUMPY").as_deref() != Ok("1"),
        "MEMIA_REQUIRE_NUMPY=1 but `python3 -c 'import numpy'` failed: {why}"
    );
    use std::io::Write as _;
    let _ = writeln!(
        std::io::stderr(),
        "skipped: numpy not installed (the Slurm test's external trainer needs it): {why}"
    );
    false
}

#[test]
fn shadow_models_on_a_slurm_cluster() {
    let Some(cluster) = start_cluster() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(dir.join("c.toml"), CONFIG).unwrap();

    // 1. An array of 4 tasks of 2 models, then the report: byte-identical to one process.
    cluster.ok(
        &["plan", "--config", "c.toml", "-o", "array", "-q"],
        dir,
        &[],
    );
    let said = cluster.ok(&["slurm", "array", "--per-task", "2", "--submit"], dir, &[]);
    assert!(said.contains("4 array tasks"), "{said}");
    let (array, report, ranges) = last_submission(&dir.join("array"));
    assert_eq!(ranges, ["0..2", "2..4", "4..6", "6..8"]);
    let status = cluster.ok(&["status", "array"], dir, &[]);
    let _ = status;
    cluster.wait(&[array.clone(), report.clone()]);
    assert!(
        dir.join("array/report/index.html").is_file(),
        "the report job did not run"
    );
    cluster.ok(
        &["plan", "--config", "c.toml", "-o", "single", "-q"],
        dir,
        &[],
    );
    cluster.ok(&["train", "single", "-q"], dir, &[]);
    assert_eq!(models(&dir.join("array")).len(), 8);
    same_bytes(&dir.join("array"), &dir.join("single"));
    // Nothing left to schedule.
    let said = cluster.ok(&["slurm", "array", "--submit"], dir, &[]);
    assert!(said.contains("nothing to schedule"), "{said}");

    // 1b. A run directory and a job name an attacker chose (quotes, `$()`, backticks, `%`, `#`,
    // spaces): sbatch takes the script, every task trains what it should, the logs land in the
    // run's own folder under their literal name, the report job runs, and no injected command ran.
    let hostile = "run \"q\" 'a' $(touch PWNED) `touch PWNED` 50% #x";
    cluster.ok(
        &["plan", "--config", "c.toml", "-o", hostile, "-q"],
        dir,
        &[],
    );
    cluster.ok(
        &[
            "slurm",
            hostile,
            "--per-task",
            "4",
            "--job-name",
            "j'o\"b $(touch PWNED) #x",
            "--partition",
            "debug",
            "--submit",
        ],
        dir,
        &[],
    );
    let run = dir.join(hostile);
    let (array, report, _) = last_submission(&run);
    cluster.wait(&[array.clone(), report.clone()]);
    same_bytes(&run, &dir.join("single"));
    assert!(
        run.join("report/index.html").is_file(),
        "the report job did not run"
    );
    for task in 0..2 {
        let log = run.join(format!("slurm/train_{array}_{task}.log"));
        assert!(log.is_file(), "no log {}", log.display());
    }
    assert!(run.join(format!("slurm/report_{report}.log")).is_file());
    let pwned: Vec<_> = support::tree(dir)
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n == "PWNED"))
        .collect();
    assert!(pwned.is_empty(), "an injected command ran: {pwned:?}");

    // 2. An external trainer (numpy), slow on purpose; the array is cancelled mid-way, then
    // resubmitted: nothing lost, nothing trained twice, the same bytes as one process.
    // Without numpy the trainer never writes a model (the test waited 120 s and failed):
    // skipped and said so, unless MEMIA_REQUIRE_NUMPY=1.
    if !numpy_available() {
        return;
    }
    let trainer =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/external/train_numpy.py");
    let external = format!(
        "{}[train]\nexternal = \"python3 {} --pool {{pool}} --indices {{indices}} --seed {{seed}} --out {{out}} --epochs 50\"\n",
        CONFIG.replace("models = 8", "models = 6"),
        trainer.display()
    );
    std::fs::write(dir.join("e.toml"), external).unwrap();
    cluster.ok(&["plan", "--config", "e.toml", "-o", "ext", "-q"], dir, &[]);
    let slow = [("MEMIA_EXTERNAL_SLEEP", "2")];
    cluster.ok(
        &["slurm", "ext", "--per-task", "3", "--submit", "-q"],
        dir,
        &slow,
    );
    let (array, report, ranges) = last_submission(&dir.join("ext"));
    assert_eq!(ranges, ["0..3", "3..6"]);
    let start = Instant::now();
    while models(&dir.join("ext")).is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no model finished"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    cluster.slurm(&["scancel", &array]);
    cluster.slurm(&["scancel", &report]);
    cluster.wait(&[array, report]);
    let before = models(&dir.join("ext"));
    assert!(
        !before.is_empty() && before.len() < 6,
        "cancelled with {} of 6 models finished: not mid-way",
        before.len()
    );
    let status = cluster.ok(&["status", "ext"], dir, &[]);
    let _ = status;
    let text =
        String::from_utf8_lossy(&cluster.memia(&["status", "ext"], dir, &[]).stdout).to_string();
    assert!(
        text.contains(&format!("finished {} of 6", before.len())),
        "{text}"
    );
    cluster.ok(
        &["slurm", "ext", "--per-task", "3", "--submit", "-q"],
        dir,
        &[],
    );
    let (array, report, ranges) = last_submission(&dir.join("ext"));
    // Only the missing models are scheduled.
    let scheduled: Vec<usize> = ranges
        .iter()
        .flat_map(|r| {
            let (a, b) = r.split_once("..").unwrap();
            a.parse::<usize>().unwrap()..b.parse::<usize>().unwrap()
        })
        .collect();
    for k in &scheduled {
        assert!(
            !before.contains_key(&format!("model_{k:05}.npy")),
            "model {k} was finished and scheduled again"
        );
    }
    assert_eq!(scheduled.len() + before.len(), 6, "{ranges:?}");
    cluster.wait(&[array, report]);
    let after = models(&dir.join("ext"));
    assert_eq!(after.len(), 6, "models lost");
    for (name, (bytes, time)) in &before {
        assert!(
            after[name].0 == *bytes && after[name].1 == *time,
            "{name} was trained twice"
        );
    }
    assert!(dir.join("ext/report/index.html").is_file());
    cluster.ok(
        &["plan", "--config", "e.toml", "-o", "ext-single", "-q"],
        dir,
        &[],
    );
    cluster.ok(&["train", "ext-single", "-q"], dir, &[]);
    same_bytes(&dir.join("ext"), &dir.join("ext-single"));
    let producers = std::fs::read_to_string(dir.join("ext/logits/model_00000.json")).unwrap();
    assert!(producers.contains("external command"), "{producers}");
}
