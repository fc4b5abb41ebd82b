//! A run's Slurm submissions (`RUN/slurm/jobs.json`) and the state Slurm reports for the
//! last of them: written by `memia slurm`, read by `memia status`.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Serialize};

/// One submission, as `RUN/slurm/jobs.json` records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Submission {
    /// The training array's job id.
    pub array: String,
    /// The report job's id.
    pub report: Option<String>,
    /// The model range of each array task, in task order.
    pub ranges: Vec<String>,
    /// The script submitted.
    pub script: PathBuf,
}

/// Where a run's submissions are recorded.
pub(crate) fn jobs_path(run: &Path) -> PathBuf {
    run.join("slurm").join("jobs.json")
}

/// The submissions recorded for a run (oldest first).
pub fn submissions(run: &Path) -> Vec<Submission> {
    std::fs::read_to_string(jobs_path(run))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default()
}

/// The Slurm state of the run's last submission, from `squeue` (and `sacct` where accounting
/// is on): one line per state with its array tasks. None without a submission.
#[derive(Debug, Clone, Serialize)]
pub struct SlurmState {
    /// The last submission.
    pub submission: Submission,
    /// `squeue`'s view: (job or task id, state, reason) of what is still queued or running.
    pub queued: Vec<(String, String, String)>,
    /// `sacct`'s view of finished tasks: (id, state), when Slurm keeps accounting.
    pub accounted: Vec<(String, String)>,
    /// Why a view is missing (no squeue on PATH, accounting disabled).
    pub notes: Vec<String>,
}

pub fn state(run: &Path) -> Option<SlurmState> {
    let submission = submissions(run).pop()?;
    let mut notes = Vec::new();
    let ids = match &submission.report {
        Some(r) => format!("{},{r}", submission.array),
        None => submission.array.clone(),
    };
    let queued = match Command::new("squeue")
        .args(["-h", "-r", "-j", &ids, "-o", "%i|%T|%r"])
        .output()
    {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| {
                let mut parts = l.split('|');
                Some((
                    parts.next()?.to_string(),
                    parts.next()?.to_string(),
                    parts.next().unwrap_or("").to_string(),
                ))
            })
            .collect(),
        Ok(out) => {
            notes.push(format!(
                "squeue: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
            Vec::new()
        }
        Err(e) => {
            notes.push(format!("squeue not available: {e}"));
            Vec::new()
        }
    };
    let accounted = match Command::new("sacct")
        .args(["-n", "-P", "-X", "-j", &ids, "-o", "JobID,State"])
        .output()
    {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| {
                let (id, state) = l.split_once('|')?;
                Some((id.to_string(), state.to_string()))
            })
            .collect(),
        Ok(out) => {
            notes.push(format!(
                "sacct: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
            Vec::new()
        }
        Err(e) => {
            notes.push(format!("sacct not available: {e}"));
            Vec::new()
        }
    };
    Some(SlurmState {
        submission,
        queued,
        accounted,
        notes,
    })
}

impl SlurmState {
    /// Lines for `memia status`.
    pub fn text(&self) -> Vec<String> {
        let s = &self.submission;
        let mut lines = vec![format!(
            "slurm: array job {} ({} tasks: {}), report job {}",
            s.array,
            s.ranges.len(),
            s.ranges.join(", "),
            s.report.as_deref().unwrap_or("none")
        )];
        if self.queued.is_empty() {
            lines.push("  nothing of it is queued or running".into());
        }
        for (id, state, reason) in &self.queued {
            let reason = if reason.is_empty() || reason == "None" {
                String::new()
            } else {
                format!(" ({reason})")
            };
            lines.push(format!("  {id}: {state}{reason}"));
        }
        for (id, state) in &self.accounted {
            if !self.queued.iter().any(|q| &q.0 == id) {
                lines.push(format!("  {id}: {state} (accounting)"));
            }
        }
        for note in &self.notes {
            lines.push(format!("  ({note})"));
        }
        lines
    }
}
