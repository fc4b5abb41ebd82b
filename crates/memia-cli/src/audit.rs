//! `memia audit`: a sequential audit of one target, training shadow models in rounds until its
//! membership decisions on the high-memorization candidates are confident.

use memia_attacks::sequential::SequentialConfig;
use memia_audit::{AuditTarget, Run};
use memia_report::sequential::{SequentialEvent, SequentialReport, Stop};

use crate::args::SequentialArgs;
use crate::error::{AuditError, Result};
use crate::progress::{Progress, status};
use crate::scores::outside_model;

pub fn audit(args: &SequentialArgs, quiet: bool, json: bool) -> Result<()> {
    let run = Run::open(&args.run)?;
    let models = run.dir.plan().models;
    if let Some(t) = args.target.filter(|&t| t >= models) {
        return Err(AuditError::Usage(format!(
            "--target {t} is out of range: the run has {}",
            crate::text::run_models(models)
        )));
    }
    // Without a target, the run's last model: the rounds train the others from model 0 up.
    let target = match &args.target_logits {
        Some(path) => outside_model(&run, path, args.members.as_deref(), quiet)?,
        None => AuditTarget::Model(args.target.unwrap_or(models.saturating_sub(1))),
    };
    let config = SequentialConfig {
        delta: args.delta,
        threshold: args.threshold,
    };
    let sequential = run
        .sequential_rounds(&target, config, args.budget)
        .map_err(|e| match e {
            AuditError::Usage(m) if m.starts_with("budget") => AuditError::Usage(format!("--{m}")),
            other => other,
        })?;
    status(
        quiet,
        format!(
            "candidates: memorization >= {} ({})",
            args.threshold,
            if args.threshold == memia_attacks::DEFAULT_MEMORIZATION_THRESHOLD {
                "the default threshold; --threshold T to change it"
            } else {
                "--threshold"
            }
        ),
    );
    let mut bar: Option<Progress> = None;
    let report = run.sequential(
        &sequential,
        &target,
        &args.device.placement(),
        |event| match event {
            SequentialEvent::Training(p) => {
                let bar = bar.get_or_insert_with(|| {
                    Progress::new("training", "models", p.total as u64, quiet)
                });
                bar.update(p.done as u64, p.total as u64, p.remaining());
            }
            SequentialEvent::Round(r) => {
                if let Some(b) = bar.take() {
                    b.finish();
                }
                status(quiet, round_line(r));
            }
        },
    )?;
    let text = serde_json::to_string_pretty(&report).expect("plain data serialises");
    memia_core::atomic_write(&args.output, |f| {
        std::io::Write::write_all(f, text.as_bytes())
    })?;
    if !quiet {
        eprintln!("{}", conclusion(&report));
        eprintln!("written to {}", args.output.display());
    }
    if json {
        crate::json::print("audit", &report);
    }
    Ok(())
}

fn round_line(r: &memia_report::sequential::RoundSummary) -> String {
    let realized = r
        .realized_error_rate
        .map_or(String::new(), |e| format!(", {e:.4} made"));
    let planner = r
        .planner_median
        .map_or(String::new(), |p| format!(", planner {p} models"));
    format!(
        "{:>4} shadow models: {} candidates, {} decided, expected error rate {:.4}{realized}{planner}{} ({:.1} s)",
        r.shadow_models,
        r.candidates,
        r.decided,
        r.expected_error_rate,
        if r.confident { ": confident" } else { "" },
        r.seconds
    )
}

fn conclusion(report: &SequentialReport) -> String {
    let members = report.decisions.iter().filter(|d| d.member).count();
    let last = report.rounds.last().expect("a round");
    let how = match report.stop {
        Stop::Confident => format!(
            "stopped with {} shadow models: the decisions' expected error rate {:.4} is within {}",
            report.shadow_models, last.expected_error_rate, report.config.delta
        ),
        Stop::Budget => format!(
            "not confident within the budget of {} shadow models: expected error rate {:.4} > {} (the candidates are not separable enough, or more models are needed)",
            report.shadow_models, last.expected_error_rate, report.config.delta
        ),
    };
    format!(
        "{how}; {} candidates decided: {members} members, {} non-members",
        report.decisions.len(),
        report.decisions.len() - members
    )
}
