//! `memia memorize`, `memia attack`, `memia metrics`: per-sample numbers of a run or of score
//! files, through the library's one evaluation.

use std::path::Path;

use memia_attacks::AttackSpec;
use memia_core::Signals;
use memia_core::npy::{read_npy_any, write_npy};
use memia_memorization::{MemorizationConfig, Outcome};
use memia_metrics::{Direction, RocCurve, STANDARD_FPRS, TprAtFpr};
use ndarray::Array1;

use crate::args::{AttackArgs, Convention, MemorizeArgs, MetricsArgs};
use crate::error::{AuditError, Result, usage};
use crate::progress::{Progress, status};
use memia_audit::{AuditTarget, OutsideModel, Run, read_membership};

use crate::flags::{attack_spec, flag_out_of_range, threshold_arg};
use crate::imports::read_groups;

pub(crate) fn memorize(args: &MemorizeArgs, quiet: bool, json: bool) -> Result<()> {
    let run = Run::open(&args.run)?;
    let mut config = MemorizationConfig::default();
    if !args.strict {
        config = config.allow_missing();
    }
    let outcome = if args.soft {
        Outcome::Probability
    } else {
        Outcome::Correct
    };
    let k = run.dir.plan().models;
    if let Some(&bad) = args.exclude.iter().find(|&&m| m >= k) {
        return Err(usage(format!(
            "--exclude {bad} is out of range: the run has {}",
            crate::text::run_models(k)
        )));
    }
    let kept: Vec<usize> = (0..k).filter(|m| !args.exclude.contains(m)).collect();
    if kept.is_empty() {
        return Err(usage(format!(
            "--exclude leaves no model of the run's {k} to estimate memorization with"
        )));
    }
    let keep = run.dir.keep().select_models(&kept)?;
    // One model file at a time: memory holds the outcome of every model, not its logits.
    let mut bar = Progress::new("reading", "models", kept.len() as u64, quiet);
    let mut signals = Signals::compute(
        &run.logits_files(&kept, 1)?,
        &kept,
        &run.labels,
        &[outcome.signal()],
        |done, total| bar.update(done as u64, total as u64, None),
    )?;
    bar.finish();
    let outcomes = signals.take(outcome.signal()).expect("computed above");
    let mem = config.estimate_from_signals(&keep, outcomes.view())?;
    match args.output.extension().and_then(|e| e.to_str()) {
        Some("npz") => mem.save_npz(&args.output)?,
        Some("npy") => write_npy(&args.output, &mem.score)?,
        _ => {
            return Err(usage(format!(
                "--output {}: use a .npz (scores, standard errors, intervals) or .npy (scores) file",
                args.output.display()
            )));
        }
    }
    let defined: Vec<f64> = mem
        .score
        .iter()
        .copied()
        .filter(|m| m.is_finite())
        .collect();
    let left_out: Vec<usize> = (0..k).filter(|m| !kept.contains(m)).collect();
    let mean = defined.iter().sum::<f64>() / defined.len().max(1) as f64;
    let threshold = memia_attacks::DEFAULT_MEMORIZATION_THRESHOLD;
    let at_least = defined.iter().filter(|&&m| m >= threshold).count();
    if json {
        crate::json::print(
            "memorize",
            serde_json::json!({
                "samples": mem.score.len(),
                "models": kept.len(),
                "left_out": left_out,
                "outcome": if args.soft { "probability" } else { "correct" },
                "mean": if defined.is_empty() { None } else { Some(mean) },
                "threshold": threshold,
                "at_least_threshold": at_least,
                "undetermined": mem.score.len() - defined.len(),
                "output": args.output,
            }),
        );
    }
    status(
        quiet,
        format!(
            "memorization of {} samples from {} models{}: mean {:.4}, {} at least {} (the default candidate threshold), {} undetermined; written to {}",
            mem.score.len(),
            kept.len(),
            if left_out.is_empty() {
                String::new()
            } else {
                format!(" (left out: {})", crate::text::index_ranges(&left_out))
            },
            mean,
            at_least,
            threshold,
            mem.score.len() - defined.len(),
            args.output.display()
        ),
    );
    Ok(())
}

pub(crate) fn attack(args: &AttackArgs, quiet: bool, json: bool) -> Result<()> {
    // Checked before any work, so that a refused command writes nothing.
    if args.members_out.is_some() && args.target.is_none() {
        return Err(usage(
            "--members-out needs --target (an external target's membership is not known)",
        ));
    }
    let run = Run::open(&args.run)?;
    let spec = attack_spec(&args.method, &AttackSpec::default())?;
    let target = match (args.target, &args.target_logits) {
        (Some(t), None) => AuditTarget::Model(t),
        (None, Some(path)) => outside_model(&run, path, None, quiet)?,
        (None, None) => {
            return Err(usage(
                "say which model to attack: --target K (a model of the run) or --target-logits FILE",
            ));
        }
        (Some(_), Some(_)) => unreachable!("clap refuses both"),
    };
    let scored = run
        .score(&spec, &target)
        .map_err(|e| flag_out_of_range(e, |t| format!("--target {t}")))?;
    let scores = Array1::from(scored.scores.clone());
    write_npy(&args.output, &scores)?;
    let judged = scores.iter().filter(|s| s.is_finite()).count();
    let mut line = format!(
        "{} with {} shadow models: {judged} of {} samples scored; written to {}",
        spec.describe(),
        scored.shadow_models,
        scores.len(),
        args.output.display()
    );
    let mut all_samples = None;
    if let (Some(t), Some(members)) = (args.target, &scored.members) {
        if let Some(path) = &args.members_out {
            write_npy(path, &Array1::from(members.clone()))?;
        }
        let evaluated = scored.evaluate(&[], &STANDARD_FPRS)?;
        if let Some(all) = evaluated[0].scored() {
            line.push_str(&format!(
                " (AUROC {:.4} against model {t}'s membership{})",
                all.auroc,
                undetermined_note(all)
            ));
            all_samples = Some(all.clone());
        }
    }
    status(quiet, line);
    if json {
        crate::json::print(
            "attack",
            serde_json::json!({
                "attack": spec.describe(),
                "target": match (args.target, &args.target_logits) {
                    (Some(t), _) => serde_json::json!({ "model": t }),
                    (None, path) => serde_json::json!({ "logits": path }),
                },
                "shadow_models": scored.shadow_models,
                "samples": scores.len(),
                "judged": judged,
                "output": args.output,
                "members_out": args.members_out,
                "all": all_samples,
            }),
        );
    }
    Ok(())
}

/// `, N undetermined` after a figure whose samples include some the attack could not judge.
fn undetermined_note(summary: &memia_metrics::RocSummary) -> String {
    match summary.undetermined.total() {
        0 => String::new(),
        u => format!("; {u} undetermined"),
    }
}

/// `--target-logits FILE` (and `--members FILE`): a model trained elsewhere, read by the
/// library's one reader, saying so where float64 values were converted.
pub(crate) fn outside_model(
    run: &Run,
    logits: &Path,
    members: Option<&Path>,
    quiet: bool,
) -> Result<AuditTarget> {
    let mut model = OutsideModel::read(logits, run.dir.expected_logits_shape())
        .map_err(|e| usage(format!("--target-logits {e}")))?;
    if model.converted_from_f64 {
        status(
            quiet,
            format!("{}: float64 logits converted to float32", logits.display()),
        );
    }
    if let Some(path) = members {
        model = model.with_members_file(path).map_err(|e| match e {
            // The file's own problems (length, values) are named by the flag; an I/O or
            // format error keeps its source.
            AuditError::Usage(m) => usage(format!("--members {m}")),
            other => other,
        })?;
    }
    Ok(AuditTarget::Outside(model))
}

fn read_1d_f64(path: &Path) -> Result<Vec<f64>> {
    let any = read_npy_any(path)?;
    let location = path.display().to_string();
    let values = any.to_f64().ok_or_else(|| {
        usage(format!(
            "{location}: scores must be a float array, found {}",
            any.dtype().descr()
        ))
    })?;
    if values.ndim() != 1 {
        return Err(usage(format!(
            "{location}: scores must be one-dimensional, found shape {:?}",
            values.shape()
        )));
    }
    Ok(values.into_raw_vec_and_offset().0)
}

pub(crate) fn metrics(args: &MetricsArgs, quiet: bool) -> Result<()> {
    let scores = read_1d_f64(&args.scores)?;
    let members = read_membership(&args.labels)?;
    if scores.len() != members.len() {
        return Err(usage(format!(
            "{} holds {} scores but {} holds {} labels",
            args.scores.display(),
            scores.len(),
            args.labels.display(),
            members.len()
        )));
    }
    let undetermined = scores.iter().filter(|s| !s.is_finite()).count();
    if undetermined == scores.len() {
        return Err(usage(format!(
            "{}: no score to evaluate ({} scores, none of them finite)",
            args.scores.display(),
            scores.len()
        )));
    }
    if undetermined > 0 {
        status(
            quiet,
            format!(
                "{undetermined} of {} scores in {} are not finite (samples the attack could not \
                 judge): members among them count as not detected, non-members are left out",
                scores.len(),
                args.scores.display()
            ),
        );
    }
    let direction = if args.lower_is_member {
        Direction::LowerIsMember
    } else {
        Direction::HigherIsMember
    };
    let convention = match args.convention {
        Convention::LiraStrict => TprAtFpr::LiraStrict,
        Convention::Interpolated => TprAtFpr::Interpolated,
    };
    // The curve of `samples` by the one rule for undetermined scores
    // (RocCurve::with_undetermined), as JSON with how many samples it covers and how many of
    // them were undetermined.
    let curve = |samples: &[usize]| {
        let (s, m): (Vec<f64>, Vec<bool>) =
            samples.iter().map(|&i| (scores[i], members[i])).unzip();
        RocCurve::with_undetermined(&s, &m, direction)
    };
    let summary = |roc: RocCurve, samples: usize| -> Result<serde_json::Value> {
        let mut v = serde_json::to_value(roc.summary(&STANDARD_FPRS, convention)?)
            .expect("plain data serialises");
        v["samples"] = samples.into();
        v["unscored"] = roc.undetermined().total().into();
        Ok(v)
    };
    let everyone: Vec<usize> = (0..scores.len()).collect();
    let mut json = summary(curve(&everyone)?, scores.len())?;
    json["direction"] = format!("{direction:?}").into();
    json["convention"] = format!("{convention:?}").into();
    // Each group on its own curve; a group that cannot have one says why instead.
    let on_own_curve = |samples: &[usize]| -> Result<serde_json::Value> {
        Ok(match curve(samples) {
            Ok(roc) => summary(roc, samples.len())?,
            Err(e) => serde_json::json!({ "samples": samples.len(), "error": e.to_string() }),
        })
    };
    let mut groups = serde_json::Map::new();
    for group in read_groups(args.groups.as_deref(), scores.len())? {
        groups.insert(group.name, on_own_curve(&group.samples)?);
    }
    if args.groups.is_some() {
        json["groups"] = groups.into();
    }
    if let Some(path) = &args.candidates {
        let chosen = read_candidates(path, args.threshold, scores.len())?;
        status(
            quiet,
            format!(
                "candidates: {} samples with memorization >= {} in {} ({})",
                chosen.len(),
                args.threshold,
                path.display(),
                if args.threshold == memia_attacks::DEFAULT_MEMORIZATION_THRESHOLD {
                    "the default threshold; --threshold T to change it"
                } else {
                    "--threshold"
                }
            ),
        );
        let mut value = on_own_curve(&chosen)?;
        value["rule"] = format!("memorization >= {}", args.threshold).into();
        json["candidates"] = value;
    }
    crate::json::print("metrics", json);
    Ok(())
}

/// The samples whose memorization in `path` (a `memia memorize` `.npz`, or a 1-D `.npy`) is at
/// least `threshold`; the file must cover the `n` scored samples.
fn read_candidates(path: &Path, threshold: f64, n: usize) -> Result<Vec<usize>> {
    threshold_arg(threshold)?;
    let location = path.display().to_string();
    let mem: Vec<f64> = if path.extension().is_some_and(|e| e == "npz") {
        let mut npz = memia_core::npz::NpzArchive::open(path)?;
        if !npz.names().iter().any(|k| k == "mem") {
            return Err(usage(format!(
                "{location}: no array 'mem' (holds {:?}); write it with `memia memorize RUN -o {location}`",
                npz.names()
            )));
        }
        let any = npz.read_any("mem")?;
        let values = any.to_f64().ok_or_else(|| {
            usage(format!(
                "{location}: 'mem' must be a float array, found {}",
                any.dtype().descr()
            ))
        })?;
        if values.ndim() != 1 {
            return Err(usage(format!(
                "{location}: 'mem' must be one-dimensional, found shape {:?}",
                values.shape()
            )));
        }
        values.into_raw_vec_and_offset().0
    } else {
        read_1d_f64(path)?
    };
    if mem.len() != n {
        return Err(usage(format!(
            "--candidates {location}: memorization of {} samples for {n} scores",
            mem.len()
        )));
    }
    Ok(memia_memorization::select::above_threshold(&mem, threshold))
}
