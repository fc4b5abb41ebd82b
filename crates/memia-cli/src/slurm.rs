//! `memia slurm`: a run's unfinished models as a Slurm job array (the submissions and their
//! Slurm state, which `memia status` shows, are in `slurm_jobs`). Slurm does the scheduling,
//! retries and placement; memia only writes the script (one array task per shard of models,
//! `memia train RUN --models A..B`) and, with `--submit`, submits it and a report job that waits
//! for it (`afterok`). Only unfinished models are scheduled, so resubmitting after failures or
//! preemption trains what is missing and nothing twice.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use crate::args::SlurmArgs;
use crate::error::{AuditError, Result};
use crate::progress::status;
use crate::slurm_jobs::{Submission, jobs_path, submissions};
use memia_audit::Run;

/// The missing models as shards of at most `per_task`: contiguous runs cut into pieces.
pub fn shards(missing: &[usize], per_task: usize) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < missing.len() {
        let start = missing[i];
        let mut end = start + 1;
        i += 1;
        while i < missing.len() && missing[i] == end && end - start < per_task {
            end += 1;
            i += 1;
        }
        out.push((start, end));
    }
    out
}

/// Characters that mean the same to bash and to Slurm's `#SBATCH` parser when bare.
fn plainly_safe(text: &str) -> bool {
    !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@+".contains(c))
}

/// A word for a shell script: quoted unless plainly safe.
fn shell_word(text: &str) -> String {
    if plainly_safe(text) {
        text.to_string()
    } else {
        memia_shadow::shell_quote(text)
    }
}

/// A value for an `#SBATCH --flag=VALUE` line, as sbatch's directive parser reads it: bare when
/// plainly safe, otherwise in double quotes with `\` and `"` escaped by a backslash (the parser
/// removes quotes and backslashes, and ends the value at a bare space or `#`).
fn slurm_word(text: &str) -> String {
    if plainly_safe(text) {
        text.to_string()
    } else {
        format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

/// A log file name for Slurm's `--output`: `dir` with each literal `%` doubled (Slurm reads `%`
/// as a file-name pattern), joined with `pattern`, whose own `%A`, `%a` or `%j` Slurm expands. A
/// backslash in `dir` would switch every pattern off (Slurm's rule), so it is refused.
fn slurm_log_name(what: &str, dir: &Path, pattern: &str) -> Result<String> {
    let text = utf8(what, dir)?;
    if text.contains('\\') {
        return Err(AuditError::Usage(format!(
            "{what} {text:?} contains a backslash, which Slurm reads as 'no %-patterns in this log file name': choose a path without one"
        )));
    }
    Ok(format!("{}/{pattern}", text.replace('%', "%%")))
}

/// Refuses a value with a control character (a newline would end the script's line, and with
/// it the quoting); `what` names the argument in the error.
fn no_control(what: &str, value: &str) -> Result<()> {
    match value.chars().find(|c| c.is_control()) {
        None => Ok(()),
        Some(c) => Err(AuditError::Usage(format!(
            "{what} {value:?} contains the control character {:?} (U+{:04X}), which cannot be written safely into an sbatch script",
            c, c as u32
        ))),
    }
}

/// A path as UTF-8 text without control characters, or an error naming `what`.
fn utf8<'a>(what: &str, path: &'a Path) -> Result<&'a str> {
    let text = path.to_str().ok_or_else(|| {
        AuditError::Usage(format!(
            "{what} {path:?} is not UTF-8: it cannot be written into an sbatch script"
        ))
    })?;
    no_control(what, text)?;
    Ok(text)
}

pub fn slurm(args: &SlurmArgs, quiet: bool) -> Result<()> {
    let run = Run::open(&args.run)?;
    if run.config.is_none() {
        return Err(AuditError::Run {
            path: run.path(),
            reason: "has no memia.toml (an imported run?): its models are not trained by memia"
                .into(),
        });
    }
    if args.per_task == 0 {
        return Err(AuditError::Usage("--per-task must be at least 1".into()));
    }
    let run_dir = std::path::absolute(&args.run).map_err(crate::error::io(&args.run))?;
    let done = run.dir.completed()?;
    let missing: Vec<usize> = (0..done.len()).filter(|&k| !done[k]).collect();
    if missing.is_empty() {
        status(
            quiet,
            format!(
                "all {} models of {} are finished: nothing to schedule (report: memia report {} -o REPORT)",
                done.len(),
                run_dir.display(),
                run_dir.display()
            ),
        );
        return Ok(());
    }
    let shards = shards(&missing, args.per_task);
    let memia = match &args.memia {
        Some(p) => p.clone(),
        None => std::env::current_exe().map_err(|e| {
            AuditError::Usage(format!(
                "cannot find the memia executable ({e}): give it with --memia PATH"
            ))
        })?,
    };
    let logs = run_dir.join("slurm");
    std::fs::create_dir_all(&logs).map_err(crate::error::io(&logs))?;
    let script_path = match &args.output {
        Some(p) => p.clone(),
        None => logs.join("train.sbatch"),
    };
    let ranges: Vec<String> = shards.iter().map(|(a, b)| format!("{a}..{b}")).collect();
    // Every value that reaches the script, checked before anything is written.
    let run_text = utf8("the run directory", &run_dir)?;
    let memia_text = utf8("the memia executable (--memia)", &memia)?;
    let train_log = slurm_log_name("the run directory", &logs, "train_%A_%a.log")?;
    no_control("--job-name", &args.job_name)?;
    let options = [
        ("partition", &args.partition),
        ("gres", &args.gres),
        ("time", &args.time),
        ("mem", &args.mem),
        ("cpus-per-task", &args.cpus_per_task.map(|c| c.to_string())),
    ];
    for (flag, value) in &options {
        if let Some(v) = value {
            no_control(&format!("--{flag}"), v)?;
        }
    }
    for line in &args.sbatch {
        no_control("--sbatch", line)?;
    }
    if let Some(device) = &args.device.device {
        no_control("--device", device)?;
    }
    let mut script = String::new();
    let _ = writeln!(script, "#!/bin/bash");
    let _ = writeln!(
        script,
        "# memia: train the {} unfinished models of {} as a Slurm job array, at most {} per task.",
        missing.len(),
        run_text,
        args.per_task
    );
    let _ = writeln!(
        script,
        "# Written by `memia slurm`. After failures or preemption run `memia slurm {} --submit`",
        shell_word(run_text)
    );
    let _ = writeln!(
        script,
        "# again: it schedules only the models still missing (finished ones are never retrained)."
    );
    let _ = writeln!(script, "#SBATCH --job-name={}", slurm_word(&args.job_name));
    let throttle = args.throttle.map_or(String::new(), |m| format!("%{m}"));
    let _ = writeln!(script, "#SBATCH --array=0-{}{throttle}", shards.len() - 1);
    let _ = writeln!(script, "#SBATCH --output={}", slurm_word(&train_log));
    for (flag, value) in options {
        if let Some(v) = value {
            let _ = writeln!(script, "#SBATCH --{flag}={}", slurm_word(v));
        }
    }
    for line in &args.sbatch {
        let line = line.trim();
        let line = line.strip_prefix("#SBATCH").unwrap_or(line).trim();
        let _ = writeln!(script, "#SBATCH {line}");
    }
    let _ = writeln!(script, "set -euo pipefail");
    let _ = writeln!(script, "# The model range of each array task.");
    let _ = writeln!(script, "RANGES=({})", ranges.join(" "));
    let mut train = vec![
        shell_word(memia_text),
        "train".into(),
        shell_word(run_text),
        "--models".into(),
        "\"${RANGES[$SLURM_ARRAY_TASK_ID]}\"".into(),
    ];
    for (flag, value) in [
        ("--device", &args.device.device),
        (
            "--group-size",
            &args.device.group_size.map(|g| g.to_string()),
        ),
        (
            "--engine",
            &args.device.engine.map(|e| format!("{e:?}").to_lowercase()),
        ),
    ] {
        if let Some(v) = value {
            train.push(flag.into());
            train.push(shell_word(v));
        }
    }
    let _ = writeln!(script, "exec {}", train.join(" "));
    memia_core::atomic_write(&script_path, |f| {
        std::io::Write::write_all(f, script.as_bytes())
    })?;
    status(
        quiet,
        format!(
            "wrote {}: {} models in {} array tasks ({})",
            script_path.display(),
            missing.len(),
            shards.len(),
            ranges.join(", ")
        ),
    );
    if !args.submit {
        status(
            quiet,
            format!("submit it with: sbatch {}", script_path.display()),
        );
        return Ok(());
    }
    let array = sbatch(&[script_path.display().to_string()])?;
    let report_dir = run_dir.join("report");
    let report_log = slurm_log_name("the run directory", &logs, "report_%j.log")?;
    let mut report_args = vec![
        "--parsable".to_string(),
        format!("--dependency=afterok:{array}"),
        "--job-name=memia-report".into(),
        format!("--output={report_log}"),
    ];
    if let Some(p) = &args.partition {
        report_args.push(format!("--partition={p}"));
    }
    report_args.push(format!(
        "--wrap={} report {} -o {}",
        shell_word(memia_text),
        shell_word(run_text),
        shell_word(&report_dir.to_string_lossy())
    ));
    let report = sbatch_raw(&report_args)?;
    let mut all = submissions(&run_dir);
    all.push(Submission {
        array: array.clone(),
        report: Some(report.clone()),
        ranges,
        script: script_path.clone(),
    });
    let text = serde_json::to_string_pretty(&all).expect("plain data serialises");
    memia_core::atomic_write(&jobs_path(&run_dir), |f| {
        std::io::Write::write_all(f, text.as_bytes())
    })?;
    status(
        quiet,
        format!(
            "submitted array job {array} ({} tasks) and report job {report} (after it succeeds; report in {}); follow with: memia status {}",
            shards.len(),
            report_dir.display(),
            run_dir.display()
        ),
    );
    Ok(())
}

/// `sbatch --parsable SCRIPT`: the job id.
fn sbatch(script: &[String]) -> Result<String> {
    let mut args = vec!["--parsable".to_string()];
    args.extend(script.iter().cloned());
    sbatch_raw(&args)
}

fn sbatch_raw(args: &[String]) -> Result<String> {
    let out = Command::new("sbatch").args(args).output().map_err(|e| {
        AuditError::Usage(format!(
            "cannot run sbatch ({e}): is Slurm installed and on PATH? (without --submit, memia only writes the script)"
        ))
    })?;
    if !out.status.success() {
        return Err(AuditError::Usage(format!(
            "sbatch {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    // `--parsable` prints `id` or `id;cluster`.
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(text.trim().split(';').next().unwrap_or("").to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_cut_contiguous_runs_of_missing_models() {
        assert_eq!(shards(&[0, 1, 2, 3, 4], 2), [(0, 2), (2, 4), (4, 5)]);
        assert_eq!(shards(&[1, 2, 5, 6, 7, 9], 8), [(1, 3), (5, 8), (9, 10)]);
        assert_eq!(shards(&[], 4), []);
    }

    #[test]
    fn slurm_words_are_quoted_for_the_directive_parser() {
        assert_eq!(slurm_word("gpu"), "gpu");
        assert_eq!(slurm_word("my job #1"), "\"my job #1\"");
        assert_eq!(slurm_word(r#"a"b\c"#), r#""a\"b\\c""#);
        assert!(no_control("--partition", "gpu\ntouch X").is_err());
        let err = no_control("--partition", "gpu\ntouch X")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("--partition") && err.contains("U+000A"),
            "{err}"
        );
        assert_eq!(
            slurm_log_name("run", Path::new("/r/50%"), "log_%j").unwrap(),
            "/r/50%%/log_%j"
        );
        assert!(slurm_log_name("run", Path::new("/r\\x"), "log_%j").is_err());
    }

    #[test]
    fn shell_words_are_quoted_when_needed() {
        assert_eq!(shell_word("/opt/memia/bin/memia"), "/opt/memia/bin/memia");
        assert_eq!(shell_word("/my runs/a"), "'/my runs/a'");
        assert_eq!(shell_word("it's"), "'it'\\''s'");
    }
}
