//! The `memia` binary against hostile names and values, as an attacker (or an unlucky user)
//! would try them: run directories and option values with spaces, quotes, `$()`, backticks,
//! newlines, `{placeholders}`, `%` and `#`, through the external trainer, `memia slurm`, import and
//! report; shards in their own PID namespaces (equal PIDs); symlinks planted at every temporary
//! name memia could use. Each test checks that nothing ran that should not (no `PWNED` file),
//! nothing was written outside the named directories, and the result equals a plain run.
//!
//! The PID-namespace tests need `unshare` and root (as CI has); elsewhere they print `skipped: ...`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

mod support;
use support::{binary, command as memia_command, fails, memia, ok, tree};

/// Fails if a file named `PWNED` exists anywhere under `root` (or beside the test).
fn nothing_ran(root: &Path) {
    let pwned: Vec<_> = tree(root)
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n == "PWNED"))
        .collect();
    assert!(pwned.is_empty(), "an injected command ran: {pwned:?}");
    assert!(!Path::new("PWNED").exists(), "an injected command ran here");
}

/// The names an attacker would try for a run directory.
const HOSTILE_NAMES: [&str; 7] = [
    "r{out}$(touch PWNED)",
    "r'{indices}'`touch PWNED`",
    "with space/and \"quotes\"",
    "pct%A#hash{seed}",
    "semi;touch PWNED;x",
    "nl\ntouch PWNED\n#",
    "-dash",
];

/// The logits files of a run, by name.
fn logits(run: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(run.join("logits"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".npy"))
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

fn no_temporaries(run: &Path) {
    let left: Vec<_> = tree(run)
        .into_iter()
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.ends_with(".tmp") || name.contains(".tmp-")
        })
        .collect();
    assert!(left.is_empty(), "temporaries left behind: {left:?}");
}

const EXTERNAL: &str = r#"
[data]
source = "digits"
samples = 200
[plan]
models = 4
seed = 3
[train]
external = "python3 TRAINER {pool} {indices} {seed} {seed32} {model} {out}"
[audit]
curve_targets = 2
"#;

fn external_config(root: &Path) -> PathBuf {
    let trainer = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny_trainer.py");
    let quoted = memia_shadow::shell_quote(trainer.to_str().unwrap());
    let cfg = root.join("cfg");
    std::fs::create_dir_all(&cfg).unwrap();
    let path = cfg.join("c.toml");
    // The trainer's path is quoted for the shell, then escaped for TOML.
    let toml_value = quoted.replace('\\', "\\\\").replace('"', "\\\"");
    std::fs::write(&path, EXTERNAL.replace("TRAINER", &toml_value)).unwrap();
    path
}

/// Cases 1 and 4: run names that held placeholders or shell code ran commands, and a relative
/// run directory broke the external trainer (it runs in the configuration's directory).
#[test]
fn hostile_run_names_through_an_external_trainer() {
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    external_config(root);
    // The plain run, from the configuration's parent: `cfg/c-run`, relative, while the command
    // runs in `cfg/`.
    ok(&["run", "cfg/c.toml", "-q"], root);
    let plain = logits(&root.join("cfg/c-run"));
    assert_eq!(plain.len(), 4);
    let before = tree(root);
    for name in HOSTILE_NAMES {
        // Relative to the working directory, and absolute.
        for run in [PathBuf::from(name), root.join(format!("abs-{name}"))] {
            let run_arg = run.to_str().unwrap();
            // `--run=` so that a name starting with '-' is a value, as a careful script writes it.
            ok(
                &["run", "cfg/c.toml", "-q", &format!("--run={run_arg}")],
                root,
            );
            let run_dir = root.join(&run);
            assert_eq!(
                logits(&run_dir),
                plain,
                "{name:?}: other logits than a plain run"
            );
            assert!(run_dir.join("report/index.html").is_file(), "{name:?}");
            no_temporaries(&run_dir);
            nothing_ran(root);
        }
    }
    // Nothing written outside the run directories (and the plain run's).
    let first_component = |p: &Path| p.components().next().unwrap().as_os_str().to_owned();
    let named: BTreeSet<_> = HOSTILE_NAMES
        .iter()
        .flat_map(|n| [PathBuf::from(n), PathBuf::from(format!("abs-{n}"))])
        .map(|p| first_component(&p))
        .collect();
    for path in tree(root).difference(&before) {
        assert!(
            named.contains(&first_component(path)),
            "written outside the named run directories: {path:?}"
        );
    }
}

/// Case 8: a placeholder written inside quotes is refused up front, naming it.
#[test]
fn quoted_placeholders_are_refused_before_training() {
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    let cfg = external_config(root);
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(&cfg, text.replace(" {out}\"", " '{out}'\"")).unwrap();
    let err = fails(&["plan", "--config", "cfg/c.toml", "-o", "r", "-q"], root);
    assert!(
        err.contains("{out}") && err.contains("without quotes"),
        "{err}"
    );
    assert!(!root.join("r").exists());
}

const PLAIN: &str = r#"
[data]
source = "digits"
samples = 300
[data.canaries]
kind = "mislabeled"
count = 10
[plan]
models = 8
seed = 5
[model.mlp]
hidden = [16]
[training]
epochs = 5
[audit]
curve_targets = 2
"#;

/// A fake memia for the script: records its arguments, one per line with NULs between.
fn recording_memia(dir: &Path) -> (PathBuf, PathBuf) {
    let record = dir.join("args.bin");
    let fake = dir.join("fake-memia");
    std::fs::write(
        &fake,
        format!(
            "#!/bin/sh\nprintf '%s\\0' \"$@\" > {}\n",
            memia_shadow::shell_quote(record.to_str().unwrap())
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    (fake, record)
}

/// Cases 2 and 3: values written into an sbatch script became lines of it, and Slurm's own
/// parser cut values at spaces and `#`. Here every hostile value is either refused (control
/// characters, naming the option) or carried through as data: the script passes `bash -n`, runs
/// with a fake task id and hands the fake memia exactly the run directory, and its `#SBATCH`
/// lines read back (as sbatch's parser reads them) to the values given.
#[test]
fn hostile_values_in_slurm_scripts() {
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    std::fs::write(root.join("c.toml"), PLAIN).unwrap();
    let (fake, record) = recording_memia(root);
    let fake_arg = fake.to_str().unwrap();
    for name in HOSTILE_NAMES {
        let run = root.join(name);
        let run_arg = run.to_str().unwrap();
        if name.contains('\n') {
            // Planned elsewhere, then moved to the hostile name: `plan` may accept it, the
            // script must not.
            ok(&["plan", "--config", "c.toml", "-o", "nl-plan", "-q"], root);
            std::fs::rename(root.join("nl-plan"), &run).unwrap();
            let err = fails(&["slurm", run_arg, "--memia", fake_arg], root);
            assert!(
                err.contains("run directory") && err.contains("U+000A"),
                "{err}"
            );
            assert!(!run.join("slurm/train.sbatch").exists());
            continue;
        }
        ok(
            &["plan", "--config", "c.toml", &format!("-o={run_arg}"), "-q"],
            root,
        );
        let values = [
            ("--partition", "gpu #1 $(touch PWNED)"),
            ("--gres", "gpu:\"a\" 'b'\\c"),
            ("--time", "01:00:00"),
            ("--mem", "4G;touch PWNED"),
            ("--job-name", "j'o\"b `touch PWNED` #x"),
        ];
        let mut args = vec!["slurm", run_arg, "--memia", fake_arg, "--per-task", "3"];
        for (flag, value) in values {
            args.push(flag);
            args.push(value);
        }
        ok(&args, root);
        let script = run.join("slurm/train.sbatch");
        let text = std::fs::read_to_string(&script).unwrap();
        let syntax = Command::new("bash")
            .arg("-n")
            .arg(&script)
            .output()
            .unwrap();
        assert!(syntax.status.success(), "{name:?}: bash -n:\n{text}");
        // Every line is a comment, a directive, or one of the script's own four commands.
        for line in text.lines() {
            assert!(
                line.starts_with('#')
                    || line == "set -euo pipefail"
                    || line.starts_with("RANGES=(")
                    || line.starts_with("exec "),
                "{name:?}: an injected line {line:?} in\n{text}"
            );
        }
        // The directives as Slurm reads them.
        let directives = sbatch_directives(&text);
        for (flag, value) in values {
            let flag = flag.trim_start_matches("--");
            assert!(
                directives.contains(&format!("--{flag}={value}")),
                "{name:?}: --{flag} read back as {directives:?}"
            );
        }
        let output = directives
            .iter()
            .find_map(|d| d.strip_prefix("--output="))
            .unwrap();
        let expected = format!("{}/slurm/train_%A_%a.log", run_arg.replace('%', "%%"));
        assert_eq!(output, expected, "{name:?}");
        // Run as Slurm would, task 1 of 3.
        let _ = std::fs::remove_file(&record);
        let ran = Command::new("bash")
            .arg(&script)
            .env("SLURM_ARRAY_TASK_ID", "1")
            .current_dir(root)
            .output()
            .unwrap();
        assert!(
            ran.status.success(),
            "{}",
            String::from_utf8_lossy(&ran.stderr)
        );
        let got = std::fs::read(&record).unwrap();
        let got: Vec<&[u8]> = got.split(|&b| b == 0).filter(|a| !a.is_empty()).collect();
        let want: Vec<&[u8]> = vec![b"train", run_arg.as_bytes(), b"--models", b"3..6"];
        assert_eq!(got, want, "{name:?}");
        nothing_ran(root);
    }
    // Control characters in any option are refused, naming it; nothing is written.
    let run = root.join("plain");
    ok(&["plan", "--config", "c.toml", "-o", "plain", "-q"], root);
    for flag in [
        "--partition",
        "--gres",
        "--time",
        "--mem",
        "--job-name",
        "--sbatch",
        "--device",
    ] {
        let err = fails(
            &[
                "slurm",
                "plain",
                "--memia",
                fake_arg,
                flag,
                "gpu\ntouch PWNED",
            ],
            root,
        );
        assert!(
            err.contains(flag) && err.contains("U+000A"),
            "{flag}: {err}"
        );
        assert!(!run.join("slurm/train.sbatch").exists(), "{flag}");
    }
    let err = fails(&["slurm", "plain", "--memia", "/opt/me\rmia"], root);
    assert!(err.contains("--memia") && err.contains("U+000D"), "{err}");
    nothing_ran(root);
}

/// The `#SBATCH` directives of a script as sbatch's parser (`_get_argument` in Slurm's
/// `src/sbatch/opt.c`) reads them: up to the first line that is not a comment; words split at
/// unquoted blanks; `'` and `"` quote; a backslash escapes the next character; an unquoted `#`
/// ends the line.
fn sbatch_directives(script: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in script.lines().skip(1) {
        if !line.starts_with('#') {
            break;
        }
        let Some(rest) = line.strip_prefix("#SBATCH") else {
            continue;
        };
        let mut word = String::new();
        let (mut quote, mut escaped, mut started) = (None, false, false);
        for c in rest.chars() {
            if escaped {
                escaped = false;
                word.push(c);
            } else if c == '\\' {
                escaped = true;
                started = true;
            } else if let Some(q) = quote {
                if c == q {
                    quote = None;
                } else {
                    word.push(c);
                }
            } else if c == '"' || c == '\'' {
                quote = Some(c);
                started = true;
            } else if c == '#' {
                break;
            } else if c.is_whitespace() {
                if started {
                    out.push(std::mem::take(&mut word));
                    started = false;
                }
            } else {
                word.push(c);
                started = true;
            }
        }
        if started {
            out.push(word);
        }
    }
    out
}

/// Whether processes can be started in a PID namespace of their own here (root and
/// util-linux's `unshare`); prints why not.
fn pid_namespaces() -> bool {
    let works = Command::new("unshare")
        .args(["-pf", "--kill-child", "sh", "-c", "test $$ -eq 1"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !works {
        assert!(
            std::env::var("MEMIA_REQUIRE_PID_NAMESPACES").as_deref() != Ok("1"),
            "MEMIA_REQUIRE_PID_NAMESPACES=1 but `unshare -pf` does not work here"
        );
        eprintln!("skipped: PID namespaces (`unshare -pf`) need root and util-linux");
    }
    works
}

/// `memia ARGS` as PID 1 of a new PID namespace, as in a container or a Kubernetes pod.
fn memia_as_pid_1(args: &[&str], cwd: &Path) -> Command {
    let mut command = Command::new("unshare");
    command
        .args(["-pf", "--kill-child"])
        .arg(binary())
        .args(args)
        .current_dir(cwd);
    command
}

/// Case 5: shards started as PID 1 in their own namespaces (`exec memia train` in every pod)
/// shared temporary names: the second failed with `manifest.json: No such file or directory`.
#[test]
fn shards_with_equal_pids_train_one_run() {
    if !pid_namespaces() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    std::fs::write(root.join("c.toml"), PLAIN).unwrap();
    ok(&["plan", "--config", "c.toml", "-o", "single", "-q"], root);
    ok(&["train", "single", "-q"], root);
    ok(&["plan", "--config", "c.toml", "-o", "shared", "-q"], root);
    // Four pods at once, each PID 1: two on overlapping shards, two on the same one.
    for round in [["0..5", "3..8"], ["0..8", "0..8"]] {
        if round[0] == "0..8" {
            std::fs::remove_dir_all(root.join("shared/logits")).unwrap();
        }
        let pods: Vec<_> = round
            .iter()
            .chain(round.iter())
            .map(|range| {
                memia_as_pid_1(&["train", "shared", "--models", range, "-q"], root)
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for pod in pods {
            let out = pod.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "a shard failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        assert_eq!(logits(&root.join("shared")), logits(&root.join("single")));
        let manifest: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(root.join("shared/manifest.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(
            manifest["complete"],
            serde_json::json!([0, 1, 2, 3, 4, 5, 6, 7])
        );
        no_temporaries(&root.join("shared"));
    }
}

/// Case 5: a symlink planted at a predictable temporary name redirected the write
/// (`ln -s victim .scores.npy.tmp-$$` then `exec memia attack ... -o scores.npy`). Here memia runs
/// as PID 1, the symlinks are planted at every `.NAME.tmp-1` that memia 0.1 would use and at the
/// final names themselves: the victims are never written, the links are replaced by files.
#[test]
fn planted_symlinks_are_never_written_through() {
    if !pid_namespaces() {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    std::fs::write(root.join("c.toml"), PLAIN).unwrap();
    let victim = root.join("victim");
    std::fs::write(&victim, b"precious").unwrap();
    let plant = |dir: &Path, names: &[&str]| {
        std::fs::create_dir_all(dir).unwrap();
        for name in names {
            let _ = std::os::unix::fs::symlink(&victim, dir.join(format!(".{name}.tmp-1")));
        }
    };
    let run_files = [
        "plan.json",
        "keep.npy",
        "manifest.json",
        "memia.toml",
        "labels.npy",
        "pool.json",
    ];
    plant(&root.join("run"), &run_files);
    let run = |args: &[&str]| {
        let out = memia_as_pid_1(args, root).output().unwrap();
        assert!(
            out.status.success(),
            "memia {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&["plan", "--config", "c.toml", "-o", "run", "-q"]);
    let models: Vec<String> = (0..8).map(|k| format!("model_{k:05}.npy")).collect();
    let jsons: Vec<String> = (0..8).map(|k| format!("model_{k:05}.json")).collect();
    let names: Vec<&str> = models.iter().chain(&jsons).map(String::as_str).collect();
    plant(&root.join("run/logits"), &names);
    run(&["train", "run", "-q"]);
    // The final name a symlink too.
    std::os::unix::fs::symlink(&victim, root.join("scores.npy")).unwrap();
    plant(root, &["scores.npy", "members.npy"]);
    run(&[
        "attack",
        "run",
        "--target",
        "0",
        "-o",
        "scores.npy",
        "--members-out",
        "members.npy",
        "-q",
    ]);
    let report_files = ["summary.json", "samples.csv", "index.html", "roc.svg"];
    plant(&root.join("rep"), &report_files);
    run(&["report", "run", "-o", "rep", "-q"]);
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    assert!(
        !root
            .join("scores.npy")
            .symlink_metadata()
            .unwrap()
            .is_symlink()
    );
    let scores = memia_core::npy::read_npy::<f64, ndarray::Ix1>(root.join("scores.npy")).unwrap();
    assert_eq!(scores.len(), 310);
    assert!(root.join("rep/index.html").is_file());
}

/// Case 6: a report killed between its files left `summary.json` of the new run beside
/// `index.html` of the old one. A report that fails part-way (here: its thumbnails folder is taken
/// by a file) or is killed at any moment leaves one whole report, the old or the new.
#[test]
fn a_report_is_replaced_whole_or_not_at_all() {
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    std::fs::write(root.join("a.toml"), PLAIN).unwrap();
    std::fs::write(
        root.join("b.toml"),
        PLAIN.replace("samples = 300", "samples = 240"),
    )
    .unwrap();
    for run in ["a", "b"] {
        ok(
            &["plan", "--config", &format!("{run}.toml"), "-o", run, "-q"],
            root,
        );
        ok(&["train", run, "-q"], root);
    }
    let rep = root.join("rep");
    // Which run a report is of (a has 310 samples, b 250), checked to be the same in
    // `summary.json` and `index.html` (the headline AUROC as the page prints it).
    let consistent = |rep: &Path| -> &'static str {
        let summary: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(rep.join("summary.json")).unwrap())
                .unwrap();
        let html = std::fs::read_to_string(rep.join("index.html")).unwrap();
        let auroc = summary["all"]["auroc"].as_f64().unwrap();
        assert!(
            html.contains(&format!("<td>{auroc:.4}</td>")),
            "index.html is not of the run of summary.json (AUROC {auroc:.4})"
        );
        match summary["samples"].as_u64() {
            Some(310) => "a",
            Some(250) => "b",
            other => panic!("a report of {other:?} samples"),
        }
    };
    ok(&["report", "a", "-o", "rep", "-q"], root);
    assert_eq!(consistent(&rep), "a");
    let listing = tree(&rep);
    // The thumbnails' folder taken by a file: the report of b fails or succeeds, never mixes.
    if rep.join("samples").is_dir() {
        std::fs::remove_dir_all(rep.join("samples")).unwrap();
        std::fs::write(rep.join("samples"), b"in the way").unwrap();
    }
    let _ = memia(&["report", "b", "-o", "rep", "-q"], root);
    consistent(&rep);
    // Killed at many moments: always one whole report.
    for delay_ms in [5u64, 20, 40, 80, 120, 200] {
        let mut child = memia_command(&["report", "b", "-o", "rep", "-q"], root)
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill();
        let _ = child.wait();
        consistent(&rep);
        for path in tree(&rep) {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            assert!(
                !name.ends_with(".tmp") && !name.contains(".tmp-"),
                "{path:?}"
            );
        }
    }
    ok(&["report", "a", "-o", "rep", "-q"], root);
    assert_eq!(consistent(&rep), "a");
    assert_eq!(tree(&rep), listing);
}

/// A report directory that holds a user's other files is refused, not replaced.
#[test]
fn a_report_never_replaces_a_folder_of_other_files() {
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    std::fs::write(root.join("c.toml"), PLAIN).unwrap();
    ok(&["plan", "--config", "c.toml", "-o", "run", "-q"], root);
    ok(&["train", "run", "-q"], root);
    std::fs::create_dir(root.join("mine")).unwrap();
    std::fs::write(root.join("mine/thesis.tex"), b"years of work").unwrap();
    let err = fails(&["report", "run", "-o", "mine", "-q"], root);
    assert!(err.contains("thesis.tex"), "{err}");
    assert_eq!(
        std::fs::read(root.join("mine/thesis.tex")).unwrap(),
        b"years of work"
    );
    assert_eq!(tree(&root.join("mine")).len(), 1);
}

/// Import and report under hostile names: a folder of model files, the keep matrix and the labels
/// under a hostile name, imported into a hostile run directory and reported into a hostile report
/// directory, with a hostile group name. The figures equal a plainly named import's, the page
/// shows the names escaped, and nothing is written elsewhere.
#[test]
fn hostile_names_through_import_and_report() {
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    std::fs::write(root.join("c.toml"), PLAIN).unwrap();
    ok(&["plan", "--config", "c.toml", "-o", "trained", "-q"], root);
    ok(&["train", "trained", "-q"], root);
    let groups =
        r#"[{"name": "<script>alert(1)</script> $(touch PWNED)", "samples": [0, 1, 2, 3]}]"#;
    let summary = |report: &Path| -> serde_json::Value {
        let mut value: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(report.join("summary.json")).unwrap())
                .unwrap();
        // Where the logits came from differs by name; the figures must not.
        value.as_object_mut().unwrap().remove("target_name");
        value.as_object_mut().unwrap().remove("producers");
        value
    };
    let mut reference = None;
    for name in ["plain"].iter().chain(HOSTILE_NAMES.iter()) {
        let source = root.join(format!("src {name}"));
        std::fs::create_dir_all(&source).unwrap();
        for file in ["keep.npy", "labels.npy"] {
            std::fs::copy(root.join("trained").join(file), source.join(file)).unwrap();
        }
        let models = source.join("models");
        std::fs::create_dir_all(&models).unwrap();
        for k in 0..8 {
            let file = format!("model_{k:05}.npy");
            std::fs::copy(root.join("trained/logits").join(&file), models.join(&file)).unwrap();
        }
        std::fs::write(source.join("groups.json"), groups).unwrap();
        let before = tree(root);
        let run = root.join(format!("run {name}"));
        let report = root.join(format!("report {name}"));
        let arg = |p: PathBuf| p.to_str().unwrap().to_string();
        let (keep, logits, labels, groups_file) = (
            arg(source.join("keep.npy")),
            arg(models.clone()),
            arg(source.join("labels.npy")),
            arg(source.join("groups.json")),
        );
        ok(
            &[
                "import",
                &format!("--keep={keep}"),
                &format!("--logits={logits}"),
                &format!("--labels={labels}"),
                &format!("--groups={groups_file}"),
                &format!("--output={}", run.display()),
                "-q",
            ],
            root,
        );
        ok(
            &[
                "report",
                &format!("--output={}", report.display()),
                "-q",
                "--",
                run.to_str().unwrap(),
            ],
            root,
        );
        let html = std::fs::read_to_string(report.join("index.html")).unwrap();
        assert!(
            !html.contains("<script>"),
            "{name:?}: an unescaped group name"
        );
        assert!(
            html.contains("&lt;script&gt;"),
            "{name:?}: the group is not shown"
        );
        let figures = summary(&report);
        match &reference {
            None => reference = Some(figures),
            Some(r) => assert_eq!(&figures, r, "{name:?}"),
        }
        let named = [format!("run {name}"), format!("report {name}")];
        for path in tree(root).difference(&before) {
            // Inside a named directory, or one of the folders that lead to it.
            assert!(
                named
                    .iter()
                    .any(|n| path.starts_with(n) || Path::new(n).starts_with(path)),
                "{name:?}: written outside the named directories: {path:?}"
            );
        }
        nothing_ran(root);
    }
}
