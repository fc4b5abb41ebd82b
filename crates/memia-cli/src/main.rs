//! `memia`: memorization-aware membership inference from the command line.
//!
//! Each stage reads and writes open files (a run directory of `.npy` / JSON files, `.npy`
//! score arrays), so it can be run, cached and replaced separately:
//!
//! ```text
//! memia plan --config audit.toml -o RUN     plan: pool, keep matrix, model and training config
//! memia train RUN                           train the models (resumable, shardable)
//! memia memorize RUN -o mem.npz             memorization with standard errors
//! memia attack RUN --target 0 -o s.npy      attack one model with the others as shadows
//! memia metrics --scores s.npy --labels m.npy
//! memia report RUN -o REPORT                summary.json, samples.csv, SVG plots, index.html
//! memia run audit.toml                      all of it
//! memia status RUN [--json]                 finished and missing models, who produced them
//! memia audit RUN -o audit.json             shadow models in rounds until the decisions are sure
//! memia slurm RUN --per-task 8 --submit      the unfinished models as a Slurm job array
//! memia dp-audit RUN -o DIR                 lower bounds on epsilon against the DP claim
//! memia import-lira DIR -o RUN              a LiRA reference run becomes a memia run
//! memia import --keep K --logits L --labels Y -o RUN   models trained elsewhere
//! ```

mod args;
mod audit;
mod dp_audit;
mod flags;
mod import_checks;
mod imports;
mod json;
mod progress;
mod runs;
mod scores;
mod slurm;
mod slurm_jobs;
mod status;

// The application layer is the library's: the commands parse, call it and print.
use memia_audit::{config, error, text};

use std::process::ExitCode;

use clap::Parser;

use crate::args::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    // A closed pipe (`memia status --json | head`) ends the program quietly, as it does
    // every Unix tool, instead of a panic on the next print.
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of SIGPIPE before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let (quiet, json) = (cli.quiet, cli.json);
    let result = match cli.command {
        Command::Plan(a) => runs::plan(&a, quiet),
        Command::Train(a) => runs::train(&a, quiet),
        Command::Memorize(a) => scores::memorize(&a, quiet, json),
        Command::Attack(a) => scores::attack(&a, quiet, json),
        Command::Metrics(a) => scores::metrics(&a, quiet),
        Command::ImportLira(a) => imports::import_lira(&a, quiet, json),
        Command::Import(a) => imports::import(&a, quiet, json),
        Command::ExportPool(a) => imports::export_pool(&a, quiet),
        Command::Report(a) => runs::report(&a, quiet, json),
        Command::Run(a) => runs::run(&a, quiet, json),
        Command::Status(a) => status::status(&a.run, json),
        Command::Audit(a) => audit::audit(&a, quiet, json),
        Command::Slurm(a) => slurm::slurm(&a, quiet),
        Command::DpAudit(a) => dp_audit::dp_audit(&a, quiet, json),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let mut said = e.to_string();
            eprintln!("error: {said}");
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                // Errors that name their cause in their message are not repeated.
                let cause = s.to_string();
                if !said.contains(&cause) {
                    eprintln!("  caused by: {cause}");
                    said.push_str(&cause);
                }
                source = s.source();
            }
            ExitCode::FAILURE
        }
    }
}
