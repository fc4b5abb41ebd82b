//! `memia dp-audit`: does the run's training give the differential privacy it claims?
//! ([`memia_audit::Run::dp_audit`]): the bounds on a terminal or as JSON, and with `--output`
//! the JSON, the plot of the canaries' ROC against the DP region and a page showing both.

use std::io::Write;
use std::path::Path;

use memia_audit::dp::{Audited, Claim, DpAudit, DpAuditConfig};
use memia_audit::{Run, error::AuditError};

use crate::args::DpAuditArgs;
use crate::error::Result;

pub(crate) fn dp_audit(args: &DpAuditArgs, quiet: bool, json: bool) -> Result<()> {
    let run = Run::open(&args.run)?;
    let claim = match (args.epsilon, args.delta) {
        (Some(epsilon), Some(delta)) => {
            if !(epsilon.is_finite() && epsilon >= 0.0) {
                return Err(AuditError::Usage(format!(
                    "--epsilon {epsilon} must be finite and not negative"
                )));
            }
            if !(delta > 0.0 && delta < 1.0) {
                return Err(AuditError::Usage(format!(
                    "--delta {delta} is not in (0, 1)"
                )));
            }
            Some(Claim {
                epsilon,
                delta,
                noise_multiplier: None,
            })
        }
        _ => None,
    };
    let config = DpAuditConfig {
        claim,
        canaries: None,
        confidence: args.confidence,
        guesses: args.guesses,
        model: args.model,
    };
    let audit = run.dp_audit(&config)?;
    if let Some(dir) = &args.output {
        write_outputs(dir, &audit)?;
        if !quiet {
            eprintln!(
                "wrote dp-audit.json, dp-region.svg and dp-audit.html in {}",
                dir.display()
            );
        }
    }
    if json {
        crate::json::print("dp-audit", &audit);
    } else {
        println!("{}", lines(&audit).join("\n"));
    }
    Ok(())
}

/// The audit for a terminal.
fn lines(audit: &DpAudit) -> Vec<String> {
    let claim = &audit.claim;
    let source = match claim.noise_multiplier {
        Some(noise) => format!("memia's RDP accountant, noise multiplier {noise:.4}"),
        None => "given".to_string(),
    };
    let mut lines = vec![
        format!(
            "claim: epsilon {:.4}, delta {:e} ({source})",
            claim.epsilon, claim.delta
        ),
        format!("{} canaries in {} models", audit.canaries, audit.models),
    ];
    lines.push(match &audit.one_run {
        Audited::Bound(b) => format!(
            "one run (model {}): {} of {} guesses correct, epsilon >= {:.4} at confidence {}",
            audit.model, b.correct, b.guesses, b.epsilon, audit.confidence
        ),
        Audited::NotRun(why) => format!("one run: not run ({why})"),
    });
    lines.push(match &audit.pooled {
        Audited::Bound(b) => format!(
            "one run over all models: {} of {} guesses correct, epsilon >= {:.4}",
            b.correct, b.guesses, b.epsilon
        ),
        Audited::NotRun(why) => format!("one run over all models: not run ({why})"),
    });
    lines.push(match &audit.many_runs {
        Audited::Bound(b) => format!(
            "many runs: canary {} chosen with its threshold on {} models, epsilon >= {:.4} on the other {}",
            b.canary.map_or("-".into(), |c| c.to_string()),
            b.selection_trials,
            b.epsilon,
            b.bound_trials
        ),
        Audited::NotRun(why) => format!("many runs: not run ({why})"),
    });
    lines.push(if audit.claim_refuted() {
        format!(
            "REFUTED: a lower bound ({:.4}) exceeds the claimed epsilon {:.4}: the training or its \
             accounting does not give the privacy it claims (each bound errs with probability at \
             most {:.2}, any of the three at most {:.2})",
            audit.largest_bound(),
            claim.epsilon,
            1.0 - audit.confidence,
            3.0 * (1.0 - audit.confidence)
        )
    } else {
        format!(
            "not refuted: every lower bound is at most the claimed epsilon {:.4}. This proves no \
             privacy: black-box audits of a correct DP-SGD are expected to fall below its claim",
            claim.epsilon
        )
    });
    lines.extend(audit.notes.iter().map(|n| format!("note: {n}")));
    lines
        .into_iter()
        .map(|l| memia_audit::text::escape_controls(&l))
        .collect()
}

/// `dp-audit.json`, `dp-region.svg` and `dp-audit.html` in `dir` (created if missing), each
/// written to a temporary file beside it and renamed.
fn write_outputs(dir: &Path, audit: &DpAudit) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(memia_audit::error::io(dir))?;
    let svg = memia_report::plots::dp_region(
        &audit.roc,
        (audit.claim.epsilon, audit.claim.delta),
        audit.largest_bound(),
    )?;
    let json = serde_json::to_vec_pretty(audit).expect("plain data");
    let rows: String = lines(audit)
        .iter()
        .map(|l| format!("<li>{}</li>\n", memia_report::html_escape(l)))
        .collect();
    let html = format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>memia DP audit</title></head>\n\
         <body><h1>Differential-privacy audit</h1>\n<ul>\n{rows}</ul>\n\
         <img src=\"dp-region.svg\" alt=\"the canaries' ROC against the DP region\">\n</body></html>\n"
    );
    for (name, bytes) in [
        ("dp-audit.json", json),
        ("dp-region.svg", svg.into_bytes()),
        ("dp-audit.html", html.into_bytes()),
    ] {
        let path = dir.join(name);
        memia_core::atomic_write(&path, |f| f.write_all(&bytes))?;
    }
    Ok(())
}
