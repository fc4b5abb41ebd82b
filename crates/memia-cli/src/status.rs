//! `memia status`: where a run stands ([`memia_audit::RunStatus`]) and, for a run submitted to
//! Slurm, what Slurm says of it.

use std::path::Path;

use serde::Serialize;

use crate::error::Result;
use memia_audit::Run;

/// What `memia status --json` prints: the library's status and the Slurm state.
#[derive(Debug, Serialize)]
pub struct RunStatus {
    #[serde(flatten)]
    pub run: memia_audit::RunStatus,
    /// The last `memia slurm --submit` and what Slurm says of it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slurm: Option<crate::slurm_jobs::SlurmState>,
}

impl RunStatus {
    /// Reads the status of the run in `path`.
    pub fn of(path: &Path) -> Result<RunStatus> {
        Ok(RunStatus {
            run: Run::open(path)?.status()?,
            slurm: crate::slurm_jobs::state(path),
        })
    }

    /// The status for a terminal; control characters read from the run's files (and from
    /// Slurm's answers) are printed escaped, never raw; `--json` escapes them as JSON does.
    pub fn text(&self) -> String {
        let mut lines = self.run.lines();
        if let Some(slurm) = &self.slurm {
            lines.extend(
                slurm
                    .text()
                    .iter()
                    .map(|line| memia_audit::text::escape_controls(line)),
            );
        }
        lines.join("\n")
    }
}

/// `memia status RUN [--json]`.
pub fn status(run: &Path, json: bool) -> Result<()> {
    let status = RunStatus::of(run)?;
    if json {
        crate::json::print("status", &status);
    } else {
        println!("{}", status.text());
    }
    Ok(())
}
