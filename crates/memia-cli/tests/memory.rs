//! Memory follows the signals, not the logits (issue 24, item 3): every command that reads a
//! run's logits reads them one model file at a time, so its peak resident size, as the kernel
//! counts it for the process (file-backed pages included), stays far below the logits' size.
//! A regression to whole-array loading (about 3x the logits at this size) fails here.
//!
//! The run: 64 models x 20,000 samples x 2 queries x 100 classes, 1.02 GB of float32 logits
//! (memia_core::synthetic, on disk once: the import links the files). Its signals are 20 MB
//! each (64 x 20,000 x 2 float64).

use std::path::Path;
use std::process::{Command, Stdio};

use memia_core::synthetic::SyntheticRun;

/// The most any command may hold: the signals it keeps (up to three, 61 MB), one model's logits
/// (16 MB, read and decoded), the program and the allocator's slack; a quarter of the logits.
const LIMIT_MB: f64 = 256.0;

/// Runs memia with `args` and returns its peak resident size in MB (the kernel's `ru_maxrss` of
/// that process alone, from `wait4`); fails the test if the command fails.
// The child is reaped by wait4 (which also gives its rusage), not by Child::wait.
#[allow(clippy::zombie_processes)]
fn peak_mb(args: &[&str], cwd: &Path) -> f64 {
    let child = Command::new(env!("CARGO_BIN_EXE_memia"))
        .args(args)
        .current_dir(cwd)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the memia binary starts");
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: plain out-parameters of wait4 for our own child, which nothing else waits for.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let waited = loop {
        let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if waited != -1 || std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted
        {
            break waited;
        }
    };
    assert_eq!(waited, pid, "wait4 on memia {args:?}");
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "memia {args:?} failed (status {status})"
    );
    // Linux reports ru_maxrss in kilobytes.
    usage.ru_maxrss as f64 / 1024.0
}

#[test]
fn every_command_holds_the_signals_not_the_logits() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let run = SyntheticRun {
        models: 64,
        samples: 20_000,
        queries: 2,
        classes: 100,
        seed: 24,
    };
    let logits_mb = run.logits_bytes() as f64 / f64::from(1 << 20);
    let files = run.write(&dir.join("synthetic"), |_, _| {}).unwrap();
    let path = |p: &Path| p.display().to_string();
    let commands: Vec<(&str, Vec<String>)> = vec![
        (
            "import",
            vec![
                "import".into(),
                "--keep".into(),
                path(&files.keep),
                "--logits".into(),
                path(&files.models),
                "--labels".into(),
                path(&files.labels),
                "--groups".into(),
                path(&files.groups),
                "--link".into(),
                "-o".into(),
                "run".into(),
            ],
        ),
        (
            "import-lira",
            vec![
                "import-lira".into(),
                path(&files.lira),
                "--link".into(),
                "-o".into(),
                "lira-run".into(),
            ],
        ),
        ("status", vec!["status".into(), "run".into()]),
        (
            "memorize",
            vec![
                "memorize".into(),
                "run".into(),
                "-o".into(),
                "mem.npz".into(),
            ],
        ),
        (
            "attack",
            vec![
                "attack".into(),
                "run".into(),
                "--target".into(),
                "0".into(),
                "-o".into(),
                "scores.npy".into(),
            ],
        ),
        (
            "report",
            vec!["report".into(), "run".into(), "-o".into(), "report".into()],
        ),
        (
            "audit",
            vec![
                "audit".into(),
                "run".into(),
                "--target".into(),
                "0".into(),
                "-o".into(),
                "sequential.json".into(),
            ],
        ),
    ];
    let mut measured = Vec::new();
    for (name, args) in &commands {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut full = args.clone();
        full.push("-q");
        if *name == "status" {
            full.pop();
        }
        let mb = peak_mb(&full, dir);
        eprintln!("{name}: peak resident size {mb:.0} MB (logits {logits_mb:.0} MB)");
        measured.push((*name, mb));
    }
    for (name, mb) in measured {
        assert!(
            mb < LIMIT_MB,
            "memia {name} peaked at {mb:.0} MB for {logits_mb:.0} MB of logits (limit {LIMIT_MB} MB): \
             does it hold every model's logits again?"
        );
    }
    // The report is complete: the streamed audit found the synthetic run's memorized samples.
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("report/summary.json")).unwrap())
            .unwrap();
    assert!(
        summary["memorization"]["candidates"].as_u64().unwrap() > 500,
        "{summary}"
    );
}
