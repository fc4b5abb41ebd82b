//! The subcommands.

use std::ops::Range;
use std::path::{Path, PathBuf};

use memia_attacks::loo::EvalGroup;
use memia_attacks::{AttackSpec, CandidateRule, LiraSignal, OfflineScore};
use memia_core::npy::{AnyArray, into_dimension, read_npy_any, write_npy};
use memia_core::{KeepMatrix, LiraImportOptions, Logits, import_lira_run, labels_from_i64};
use memia_data::Pool;
use memia_memorization::{MemorizationConfig, Outcome};
use memia_metrics::{Direction, RocCurve, STANDARD_FPRS, TprAtFpr};
use memia_models::{CnnConfig, MlpConfig, ModelConfig, ResNetConfig};
use memia_report::{AuditConfig, headline};
use memia_shadow::{InclusionScheme, Plan, PoolFingerprint, Producer, RunDir, labels_sha256};
use ndarray::{Array1, Array3};

use crate::args::{
    AttackArgs, AttackMethodArgs, AuditArgs, Convention, DeviceArgs, ExportPoolArgs, ImportArgs,
    ImportLiraArgs, MemorizeArgs, Method, MetricsArgs, OfflineScoreArg, PlanArgs, ReportArgs,
    RunArgs, SignalArg, TrainArgs,
};
use crate::config::{DataSource, RunConfig};
use crate::error::{AuditError, Result, usage};
use crate::progress::{Progress, status};
use memia_audit::trainer::trainer;
use memia_audit::{AuditTarget, OutsideModel, Planned, PoolInfo, Run, read_membership};

/// `A:B` parts of a flag value like `balanced:0.5`.
fn split_value(value: &str) -> (&str, Option<&str>) {
    match value.split_once(':') {
        Some((a, b)) => (a, Some(b)),
        None => (value, None),
    }
}

fn parse_number<T: std::str::FromStr>(flag: &str, text: &str) -> Result<T> {
    text.trim()
        .parse()
        .map_err(|_| usage(format!("{flag}: '{text}' is not a valid number")))
}

fn parse_scheme(text: &str) -> Result<InclusionScheme> {
    let (kind, arg) = split_value(text);
    let value = |default: f64| arg.map_or(Ok(default), |a| parse_number("--scheme", a));
    Ok(match kind {
        "balanced" => InclusionScheme::Balanced { ratio: value(0.5)? },
        "bernoulli" => InclusionScheme::Bernoulli { p: value(0.5)? },
        "fixed" => InclusionScheme::FixedSize { ratio: value(0.5)? },
        _ => {
            return Err(usage(format!(
                "--scheme: '{text}' is not balanced:RATIO, bernoulli:P or fixed:RATIO"
            )));
        }
    })
}

fn parse_model(text: &str) -> Result<ModelConfig> {
    let (kind, arg) = split_value(text);
    Ok(match (kind, arg) {
        ("logistic", None) => MlpConfig::logistic_regression().into(),
        ("mlp", None) => MlpConfig::mlp(128).into(),
        ("mlp", Some(widths)) => MlpConfig {
            hidden: widths
                .split(',')
                .map(|w| parse_number("--model", w))
                .collect::<Result<_>>()?,
        }
        .into(),
        ("cnn", None) => CnnConfig::lenet().into(),
        ("resnet", None) => ResNetConfig::small().into(),
        _ => {
            return Err(usage(format!(
                "--model: '{text}' is not logistic, mlp:WIDTHS (e.g. mlp:256,128), cnn or resnet"
            )));
        }
    })
}

fn parse_dataset(text: &str) -> Result<DataSource> {
    let (kind, arg) = split_value(text);
    Ok(match (kind, arg) {
        ("digits", None) => DataSource::Digits {},
        ("idx", Some(files)) => {
            let (images, labels) = files
                .split_once(',')
                .ok_or_else(|| usage(format!("--dataset: '{text}' should be idx:IMAGES,LABELS")))?;
            DataSource::Idx {
                images: absolute(Path::new(images))?,
                labels: absolute(Path::new(labels))?,
                classes: None,
            }
        }
        ("cifar10", Some(files)) => DataSource::Cifar10 {
            files: files
                .split(',')
                .map(|f| absolute(Path::new(f)))
                .collect::<Result<_>>()?,
        },
        ("npz", Some(path)) => DataSource::Npz {
            path: absolute(Path::new(path))?,
            x: "x".into(),
            y: "y".into(),
            classes: None,
        },
        _ => {
            return Err(usage(format!(
                "--dataset: '{text}' is not digits, idx:IMAGES,LABELS, cifar10:FILES or npz:PATH"
            )));
        }
    })
}

fn absolute(path: &Path) -> Result<PathBuf> {
    std::path::absolute(path).map_err(crate::error::io(path))
}

/// The canonical form of an existing path (no `..`, no symbolic link): what an import records,
/// so that its plan's hash does not depend on how the source was spelled.
fn canonical(path: &Path) -> Result<PathBuf> {
    std::fs::canonicalize(path).map_err(crate::error::io(path))
}

fn parse_range(text: &str, models: usize) -> Result<Range<usize>> {
    let (a, b) = text
        .split_once("..")
        .ok_or_else(|| usage(format!("--models: '{text}' is not a range A..B")))?;
    let start = if a.is_empty() {
        0
    } else {
        parse_number("--models", a)?
    };
    let end = if b.is_empty() {
        models
    } else {
        parse_number("--models", b)?
    };
    if start >= end || end > models {
        return Err(usage(format!(
            "--models {text}: not a non-empty range A..B (B excluded) within the run's {models} models ({})",
            crate::text::run_models(models)
        )));
    }
    Ok(start..end)
}

/// Plans `config` (read from `origin`, with the flags applied) into `dir` (or finds the same
/// plan there) and says what it did.
fn plan_into(config: &RunConfig, origin: &Path, dir: &Path, quiet: bool) -> Result<Planned> {
    let planned = Run::plan(config, origin, dir)?;
    if planned.existed && !planned.updated.is_empty() {
        status(
            quiet,
            format!(
                "updated {} (settings outside the plan, such as [audit], changed)",
                planned.updated.join(", ")
            ),
        );
    }
    let plan = planned.run.dir.plan();
    status(
        quiet,
        format!(
            "{} {} models on {} samples ({} canaries, {} classes, samples of shape {:?}) in {} (plan {})",
            if planned.existed {
                "found the plan of"
            } else {
                "planned"
            },
            plan.models,
            plan.pool.samples,
            planned.pool.canaries().len(),
            plan.pool.classes,
            plan.pool.feature_shape,
            planned.run.path().display(),
            &plan.content_hash()[..16]
        ),
    );
    Ok(planned)
}

pub fn plan(args: &PlanArgs, quiet: bool) -> Result<()> {
    let mut config = match &args.config {
        Some(path) => RunConfig::load(path)?,
        None => RunConfig::digits(),
    };
    if let Some(d) = &args.dataset {
        config.data.source = parse_dataset(d)?;
    }
    if let Some(n) = args.samples {
        if n == 0 {
            return Err(usage("--samples must be at least 1"));
        }
        config.data.samples = Some(n);
    }
    if let Some(k) = args.models {
        config.plan.models = k;
    }
    if let Some(s) = &args.scheme {
        config.plan.scheme = parse_scheme(s)?;
    }
    if let Some(m) = &args.model {
        config.model = parse_model(m)?;
    }
    if let Some(e) = args.epochs {
        config.training.epochs = e;
    }
    if let Some(s) = args.seed {
        config.plan.seed = s;
    }
    let origin = args
        .config
        .clone()
        .unwrap_or_else(|| PathBuf::from("(the default configuration and the flags)"));
    plan_into(&config, &origin, &args.output, quiet)?;
    status(
        quiet,
        format!("next: memia train {}", args.output.display()),
    );
    Ok(())
}

/// Trains `models` (a range `A..B`, default all) of `run`; `pool` is the run's pool when the
/// caller has just built it, else it is built from the run's configuration.
fn train_models(
    run: &Run,
    device: &DeviceArgs,
    models: Option<&str>,
    pool: Option<&Pool>,
    allow_mixed_producers: bool,
    quiet: bool,
) -> Result<()> {
    let config = run.config()?;
    let k = run.dir.plan().models;
    let range = match models {
        Some(text) => parse_range(text, k)?,
        None => 0..k,
    };
    let built;
    let pool = match pool {
        Some(pool) => pool,
        None => {
            built = memia_audit::pool::build(&config.data, config.plan.seed)?;
            &built
        }
    };
    let trainer = trainer(config, &run.path(), &device.placement())?;
    status(
        quiet,
        format!(
            "training models {range:?} of {} {}",
            run.path().display(),
            trainer.describe()
        ),
    );
    let mut bar = Progress::new("training", "models", range.len() as u64, quiet);
    let report = run.train(trainer.as_dyn(), pool, range, allow_mixed_producers, |p| {
        bar.update(p.done as u64, p.total as u64, p.remaining())
    })?;
    bar.finish();
    let secs = report.elapsed.as_secs_f64();
    status(
        quiet,
        format!(
            "trained {} models in {secs:.1} s ({:.2} models/s); {} were already finished",
            report.trained.len(),
            report.trained.len() as f64 / secs.max(1e-9),
            report.skipped.len()
        ),
    );
    let producers = run.producer_lines()?;
    if producers.len() > 1 {
        let each: Vec<String> = producers.iter().map(|p| format!("  {p}")).collect();
        eprintln!(
            "warning: run {} mixes {} producers; each one's models are reproducible bit for bit, \
             models of different producers agree only within float tolerance (docs/guide.md):\n{}",
            run.path().display(),
            producers.len(),
            each.join("\n")
        );
    }
    Ok(())
}

pub fn train(args: &TrainArgs, quiet: bool) -> Result<()> {
    let run = Run::open(&args.run)?;
    train_models(
        &run,
        &args.device,
        args.models.as_deref(),
        None,
        args.allow_mixed_producers,
        quiet,
    )
}

pub fn memorize(args: &MemorizeArgs, quiet: bool) -> Result<()> {
    let run = Run::open(&args.run)?;
    let logits = run.logits()?;
    let mut config = MemorizationConfig::default();
    if !args.strict {
        config = config.allow_missing();
    }
    let outcome = if args.soft {
        Outcome::Probability
    } else {
        Outcome::Correct
    };
    let k = logits.models();
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
    let (keep, logits) = if kept.len() == k {
        (run.dir.keep().clone(), logits)
    } else {
        (
            run.dir.keep().select_models(&kept)?,
            logits.select_models(&kept)?,
        )
    };
    let mem = config.estimate_from_logits(&keep, &logits, &run.labels, outcome)?;
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
    status(
        quiet,
        format!(
            "memorization of {} samples from {} models{}: mean {:.4}, {} at least {} (the default candidate threshold), {} undetermined; written to {}",
            mem.score.len(),
            logits.models(),
            if kept.len() == k {
                String::new()
            } else {
                let left: Vec<usize> = (0..k).filter(|m| !kept.contains(m)).collect();
                format!(" (left out: {})", crate::text::index_ranges(&left))
            },
            defined.iter().sum::<f64>() / defined.len().max(1) as f64,
            defined
                .iter()
                .filter(|&&m| m >= memia_attacks::DEFAULT_MEMORIZATION_THRESHOLD)
                .count(),
            memia_attacks::DEFAULT_MEMORIZATION_THRESHOLD,
            mem.score.len() - defined.len(),
            args.output.display()
        ),
    );
    Ok(())
}

fn attack_spec(args: &AttackMethodArgs, default: &AttackSpec) -> Result<AttackSpec> {
    let lira_flags = [
        ("--global-variance", args.global_variance),
        ("--reference-compatible", args.reference_compatible),
        ("--signal", args.signal.is_some()),
        ("--offline-score", args.offline_score.is_some()),
    ];
    let Some(method) = args.method else {
        if let Some((flag, _)) = lira_flags
            .iter()
            .chain(&[("--offline-a", args.offline_a.is_some())])
            .find(|(_, given)| *given)
        {
            return Err(usage(format!("{flag} needs --method")));
        }
        return Ok(default.clone());
    };
    let lira = matches!(method, Method::LiraOnline | Method::LiraOffline);
    if let Some((flag, _)) = lira_flags.iter().find(|(_, given)| *given && !lira) {
        return Err(usage(format!(
            "{flag} applies to lira-online and lira-offline"
        )));
    }
    if args.offline_score.is_some() && method != Method::LiraOffline {
        return Err(usage("--offline-score applies to lira-offline"));
    }
    if args.offline_a.is_some() && method != Method::Rmia {
        return Err(usage("--offline-a applies to rmia"));
    }
    let signal = match args.signal {
        Some(SignalArg::PhiReference) => LiraSignal::PhiReference,
        Some(SignalArg::Phi) | None => LiraSignal::Phi,
    };
    Ok(match method {
        Method::LiraOnline => AttackSpec::LiraOnline {
            global_variance: args.global_variance,
            reference_compatible: args.reference_compatible,
            signal,
        },
        Method::LiraOffline => AttackSpec::LiraOffline {
            global_variance: args.global_variance,
            score: match args.offline_score {
                Some(OfflineScoreArg::LogDensity) => OfflineScore::LogDensity,
                Some(OfflineScoreArg::Tail) | None => OfflineScore::Tail,
            },
            reference_compatible: args.reference_compatible,
            signal,
        },
        Method::Rmia => AttackSpec::Rmia {
            gamma: args.gamma,
            offline_a: args.offline_a,
        },
        Method::Loss => AttackSpec::Loss,
        Method::Global => AttackSpec::Global,
    })
}

pub fn attack(args: &AttackArgs, quiet: bool) -> Result<()> {
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
    if let (Some(t), Some(members)) = (args.target, &scored.members) {
        if let Some(path) = &args.members_out {
            write_npy(path, &Array1::from(members.clone()))?;
        }
        if let Some(all) = scored.evaluate(&[], &[1e-3])?[0].scored() {
            line.push_str(&format!(
                " (AUROC {:.4} against model {t}'s membership{})",
                all.auroc,
                undetermined_note(all)
            ));
        }
    }
    status(quiet, line);
    Ok(())
}

/// `, N undetermined` after a figure whose samples include some the attack could not judge.
fn undetermined_note(summary: &memia_metrics::RocSummary) -> String {
    match summary.undetermined.total() {
        0 => String::new(),
        u => format!("; {u} undetermined"),
    }
}

/// A target out of range, named as the setting that gave it (`name(target)`).
fn flag_out_of_range(e: AuditError, name: impl Fn(usize) -> String) -> AuditError {
    match e {
        AuditError::TargetOutOfRange { target, models } => usage(format!(
            "{} is out of range: the run has {}",
            name(target),
            crate::text::run_models(models)
        )),
        other => other,
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
        model = model
            .with_members_file(path)
            .map_err(|e| usage(format!("--members {e}")))?;
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

pub fn metrics(args: &MetricsArgs, quiet: bool) -> Result<()> {
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
    println!(
        "{}",
        serde_json::to_string_pretty(&json).expect("serialises")
    );
    Ok(())
}

/// `--threshold T`, checked by the library's one rule and named as the flag.
fn threshold_arg(threshold: f64) -> Result<f64> {
    memia_attacks::check_memorization_threshold(threshold).map_err(|e| match e {
        memia_attacks::AttackError::InvalidArgument { reason, .. } => {
            usage(format!("--threshold {reason}"))
        }
        other => other.into(),
    })
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

pub fn import_lira(args: &ImportLiraArgs, quiet: bool) -> Result<()> {
    let options = LiraImportOptions { epoch: args.epoch };
    let imported = import_lira_run(&args.dir, &options)?;
    let n = imported.keep.samples();
    let classes = imported.logits.classes();
    let labels = match (&args.labels, &imported.labels) {
        (Some(path), _) => {
            let raw = read_npy_any(path)?.to_i64_vec(&path.display().to_string())?;
            if raw.len() < n {
                return Err(usage(format!(
                    "--labels {}: {} labels for {n} samples",
                    path.display(),
                    raw.len()
                )));
            }
            labels_from_i64(&raw[..n], classes)?
        }
        (None, Some(labels)) => labels.clone(),
        (None, None) => {
            return Err(usage(format!(
                "{} has no y_train.npy: give the pool's labels with --labels FILE.npy",
                args.dir.display()
            )));
        }
    };
    let source = canonical(&args.dir)?;
    let description = serde_json::json!({
        "imported_from": source,
        "epoch": args.epoch,
        "experiments": imported.experiments.iter().map(|e| e.name.clone()).collect::<Vec<_>>(),
    });
    store_import(
        Import {
            keep: &imported.keep,
            logits: &imported.logits,
            labels: &labels,
            groups: read_groups(args.groups.as_deref(), n)?,
            name: format!("imported LiRA run {}", source.display()),
            description,
            producer: Producer::new("memia import-lira")
                .with("source", source.display().to_string()),
        },
        &args.output,
        quiet,
    )
}

pub fn export_pool(args: &ExportPoolArgs, quiet: bool) -> Result<()> {
    use memia_data::Dataset;
    let run = Run::open(&args.run)?;
    let pool = run.planned_pool()?;
    let ds = &pool.dataset;
    let shape: Vec<usize> = std::iter::once(ds.len())
        .chain(ds.feature_shape().iter().copied())
        .collect();
    let x = ndarray::ArrayD::from_shape_vec(shape, ds.as_slice().to_vec())
        .expect("the pool's values fill its shape");
    let y: Array1<i64> = run.labels.iter().map(|&l| i64::from(l)).collect();
    let mut npz = memia_core::npz::NpzWriter::create(&args.output, true);
    npz.add("x", &x)?;
    npz.add("y", &y)?;
    npz.add("keep", run.dir.keep().as_array())?;
    for group in &run.pool.groups {
        let name: String = group
            .name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        let samples: Array1<i64> = group.samples.iter().map(|&i| i as i64).collect();
        npz.add(&format!("group_{name}"), &samples)?;
    }
    npz.finish()?;
    status(
        quiet,
        format!(
            "wrote {}: x {:?}, y, keep {} x {}, {} groups",
            args.output.display(),
            x.shape(),
            run.dir.keep().models(),
            ds.len(),
            run.pool.groups.len()
        ),
    );
    Ok(())
}

/// Models made elsewhere, ready to become a run directory.
struct Import<'a> {
    keep: &'a KeepMatrix,
    logits: &'a Logits,
    labels: &'a [u32],
    groups: Vec<EvalGroup>,
    /// The pool's name in the plan.
    name: String,
    /// Where the outputs came from, as the plan's trainer settings.
    description: serde_json::Value,
    producer: Producer,
}

/// Writes an import as a run directory (a plan of the given keep matrix, every model's
/// logits with its producer, the labels and groups): the one path of every import command.
fn store_import(import: Import<'_>, output: &Path, quiet: bool) -> Result<()> {
    let (k, n) = (import.keep.models(), import.keep.samples());
    let pool = PoolFingerprint {
        name: import.name,
        samples: n,
        classes: import.logits.classes(),
        feature_shape: Vec::new(),
        sha256: String::new(),
        labels_sha256: Some(labels_sha256(import.labels)),
    };
    let plan = Plan::given(
        pool,
        import.keep,
        import.logits.queries(),
        import.description,
    )?;
    if output.join("plan.json").exists() {
        // Refuses a run of another plan; the same plan was imported before (only a finished
        // import is ever renamed into place).
        RunDir::create_given(output, &plan, import.keep)?;
        status(
            quiet,
            format!(
                "{} already holds this import: nothing written",
                output.display()
            ),
        );
        return Ok(());
    }
    if output.exists() && std::fs::read_dir(output).map_or(true, |mut d| d.next().is_some()) {
        return Err(AuditError::Run {
            path: output.to_path_buf(),
            reason: "exists and is not an empty directory: import into a new directory".into(),
        });
    }
    // Built in a staging folder beside the output and renamed into place when complete, so a
    // failed or interrupted import leaves nothing that looks like a run.
    let output_abs = absolute(output)?;
    let parent = output_abs.parent().unwrap_or(Path::new("/"));
    std::fs::create_dir_all(parent).map_err(crate::error::io(parent))?;
    // `.RUN.RANDOM.tmp`, created exclusively; those of imports killed over an hour ago go.
    memia_core::remove_stale_temporaries_of(&output_abs, std::time::Duration::from_secs(3600));
    let staging = memia_core::temporary_dir_for(&output_abs).map_err(crate::error::io(parent))?;
    let run = RunDir::create_given(staging.path(), &plan, import.keep)?;
    let mut bar = Progress::new("storing", "models", k as u64, quiet);
    for m in 0..k {
        run.store(m, import.logits.model(m), &import.producer)?;
        bar.update(m as u64 + 1, k as u64, None);
    }
    bar.finish();
    let info = PoolInfo {
        provenance: None,
        groups: import.groups,
    };
    memia_audit::write_run_files(staging.path(), None, import.labels, &info)?;
    if output.exists() {
        // The empty directory checked above.
        std::fs::remove_dir(output).map_err(crate::error::io(output))?;
    }
    std::fs::rename(staging.path(), output).map_err(crate::error::io(output))?;
    // The staging folder is the output now: nothing left to delete.
    let _ = staging.keep();
    status(
        quiet,
        format!(
            "imported {k} models x {n} samples x {} queries x {} classes into {}",
            import.logits.queries(),
            import.logits.classes(),
            output.display()
        ),
    );
    Ok(())
}

/// The groups of a `--groups` JSON file, checked against the pool's `n` samples.
fn read_groups(path: Option<&Path>, n: usize) -> Result<Vec<EvalGroup>> {
    let Some(path) = path else {
        return Ok(Vec::new());
    };
    let text = std::fs::read_to_string(path).map_err(crate::error::io(path))?;
    let groups: Vec<EvalGroup> = serde_json::from_str(&text).map_err(|e| AuditError::Config {
        path: path.to_path_buf(),
        reason: format!("{e} (expected [{{\"name\": \"canaries\", \"samples\": [0, 5]}}])"),
    })?;
    for g in &groups {
        if let Some(&i) = g.samples.iter().find(|&&i| i >= n) {
            return Err(AuditError::Config {
                path: path.to_path_buf(),
                reason: format!("group '{}' lists sample {i}, the pool has {n}", g.name),
            });
        }
    }
    Ok(groups)
}

/// Reads logits as float32: float64 is converted (said unless quiet), other types refused with
/// the numpy command that converts them.
/// One model's logits file of an import, read by the library's one reader, saying so where
/// float64 values were converted.
fn read_one_model(path: &Path, quiet: bool) -> Result<Array3<f32>> {
    let read = memia_core::read_model_logits(path, None)?;
    if read.converted_from_f64 {
        status(
            quiet,
            format!("{}: float64 logits converted to float32", path.display()),
        );
    }
    Ok(read.logits)
}

fn read_logits_any(path: &Path, quiet: bool) -> Result<ndarray::ArrayD<f32>> {
    let location = path.display().to_string();
    Ok(match read_npy_any(path)? {
        AnyArray::F64(a) => {
            status(
                quiet,
                format!("{location}: float64 logits converted to float32"),
            );
            a.mapv(|v| v as f32)
        }
        other => other.into_typed::<f32>(&location)?,
    })
}

pub fn import(args: &ImportArgs, quiet: bool) -> Result<()> {
    let keep = KeepMatrix::load(&args.keep)?;
    let (k, n) = (keep.models(), keep.samples());
    // Read first: their length tells a transposed keep matrix from transposed logits.
    let raw = read_npy_any(&args.labels)?.to_i64_vec(&args.labels.display().to_string())?;
    let mut names: Option<Vec<String>> = None;
    let models: Vec<Array3<f32>> = if args.logits.is_dir() {
        let expected = crate::import_checks::Expected {
            models: k,
            samples: n,
            labels: Some(raw.len()),
        };
        let (files, order) = crate::import_checks::model_files(&args.logits, &expected)?;
        status(quiet, order);
        names = Some(
            files
                .iter()
                .map(|f| {
                    f.file_name()
                        .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
                })
                .collect(),
        );
        files
            .iter()
            .map(|f| read_one_model(f, quiet))
            .collect::<Result<_>>()?
    } else {
        let all = read_logits_any(&args.logits, quiet)?;
        let all = if all.ndim() == 3 {
            all.insert_axis(ndarray::Axis(2))
        } else {
            all
        };
        let location = args.logits.display().to_string();
        let all = into_dimension::<f32, ndarray::Ix4>(all, &location)?;
        let (models, samples) = (all.dim().0, all.dim().1);
        if models != k {
            return Err(usage(transposed_message(
                &args.keep,
                &location,
                (k, n),
                (models, samples),
                raw.len(),
            )));
        }
        all.outer_iter().map(|m| m.to_owned()).collect()
    };
    let views: Vec<_> = models.iter().map(|m| m.view()).collect();
    let logits = Logits::from_models(&views)?;
    if logits.samples() != n {
        return Err(usage(format!(
            "--logits: {} samples, the keep matrix has {n}",
            logits.samples()
        )));
    }
    for (m, model) in models.iter().enumerate() {
        memia_core::check_model_logits(model.view(), None)
            .map_err(|problem| usage(format!("--logits: model {m}: {problem}")))?;
    }
    if raw.len() != n {
        return Err(usage(format!(
            "--labels {}: {} labels for {n} samples",
            args.labels.display(),
            raw.len()
        )));
    }
    let labels = labels_from_i64(&raw, logits.classes())?;
    // Checked before anything is written, said after the import's own line so that it is the
    // last thing on the screen.
    let mismatched =
        crate::import_checks::mismatched_models(&keep, &logits, &labels, names.as_deref());
    let probabilities = crate::import_checks::probability_models(&logits);
    let (keep_path, logits_path) = (canonical(&args.keep)?, canonical(&args.logits)?);
    store_import(
        Import {
            keep: &keep,
            logits: &logits,
            labels: &labels,
            groups: read_groups(args.groups.as_deref(), n)?,
            name: format!("imported models {}", logits_path.display()),
            description: serde_json::json!({
                "imported_keep": keep_path,
                "imported_logits": logits_path,
            }),
            producer: Producer::new("memia import")
                .with("source", logits_path.display().to_string()),
        },
        &args.output,
        quiet,
    )?;
    crate::import_checks::warn(&mismatched, k, &probabilities);
    Ok(())
}

/// The error for logits of another number of models than the keep matrix's rows: where the
/// shapes are each other's transpose, which of the two arrays is transposed (the one whose
/// samples axis does not match the labels), named by its flag.
fn transposed_message(
    keep_path: &Path,
    logits: &str,
    (k, n): (usize, usize),
    (models, samples): (usize, usize),
    labels: usize,
) -> String {
    let keep = keep_path.display();
    let plain = format!(
        "--logits {logits}: logits of {models} models (first axis), but the keep matrix \
         --keep {keep} has {k} rows, one per model"
    );
    if !(models == n && samples == k && k != n) {
        return plain;
    }
    if labels == k {
        format!(
            "--keep {keep}: the keep matrix is {k} x {n}, which looks transposed: the logits hold \
             {models} models x {samples} samples and there are {labels} labels, so the keep \
             matrix must be models x samples, {n} x {k} (numpy: keep.T)"
        )
    } else if labels == n {
        format!(
            "--logits {logits}: the logits are {models} x {samples} x ..., which looks transposed \
             (samples x models): the keep matrix --keep {keep} is {k} models x {n} samples and \
             there are {labels} labels, so the logits must be models x samples x [queries x] \
             classes, {k} x {n} x ... (numpy: logits.swapaxes(0, 1))"
        )
    } else {
        format!(
            "{plain}: one of the two looks transposed (the keep matrix is {k} x {n}, the logits \
             {models} x {samples} x ...); both must be models x samples"
        )
    }
}

fn audit_config(run: &Run, args: &AuditArgs) -> Result<AuditConfig> {
    let mut config = run
        .config
        .as_ref()
        .map_or_else(AuditConfig::default, |c| c.audit.clone());
    if let Some(t) = args.target {
        config.target = t;
    }
    config.attack = attack_spec(&args.method, &config.attack)?;
    if let Some(t) = args.threshold {
        config.candidates = CandidateRule::MemorizationAtLeast(threshold_arg(t)?);
    }
    if let Some(c) = args.curve_targets {
        config.curve_targets = c;
    }
    if let Some(r) = args.curve_repeats {
        config.curve_repeats = r;
    }
    if config.curve_repeats == 0 {
        return Err(usage(
            "curve_repeats: 0 draws of shadow models draw no curve (use 1 or more)",
        ));
    }
    Ok(config)
}

/// Where the candidate rule of [`audit_config`] came from, for the status line that prints it.
fn candidates_origin(run: &Run, args: &AuditArgs) -> String {
    if args.threshold.is_some() {
        "--threshold".into()
    } else if run.config.is_some() {
        format!(
            "[audit] candidates of {}",
            run.path().join("memia.toml").display()
        )
    } else {
        "the default; --threshold T to change it".into()
    }
}

/// The pool of a planned run, for the report's thumbnails: `None` (and said why unless quiet)
/// for runs whose pool memia cannot rebuild.
fn pool_for_thumbnails(run: &Run, quiet: bool) -> Option<Pool> {
    run.config.as_ref()?;
    match run.planned_pool() {
        Ok(pool) => Some(pool),
        Err(e) => {
            status(quiet, format!("no thumbnails in the report: {e}"));
            None
        }
    }
}

/// Audits `run` and writes the report to `out`; `pool` is the run's pool when the caller has
/// just built it (for the thumbnails), else it is rebuilt from the run's configuration.
fn report_on(
    run: &Run,
    args: &AuditArgs,
    outside: Option<AuditTarget>,
    pool: Option<&Pool>,
    out: &Path,
    quiet: bool,
) -> Result<()> {
    let config = audit_config(run, args)?;
    let target = outside.unwrap_or(AuditTarget::Model(config.target));
    let rebuilt = match pool {
        Some(_) => None,
        None => pool_for_thumbnails(run, quiet),
    };
    let mut bar = Progress::new("shadow-model curve", "evaluations", 1, quiet);
    let audit = run
        .audit(
            &config,
            &target,
            pool.or(rebuilt.as_ref()),
            |done, total| bar.update(done as u64, total as u64, None),
        )
        .map_err(|e| {
            flag_out_of_range(e, |t| {
                if args.target.is_some() {
                    format!("--target {t}")
                } else {
                    let file = run.path().join("memia.toml");
                    format!("[audit] target = {t} of {}", file.display())
                }
            })
        })?;
    bar.finish();
    let files = audit.write(out)?;
    if !quiet {
        let s = &audit.summary;
        eprintln!(
            "{} on {} with {} shadow models; {} candidates ({}, {}):",
            s.attack,
            s.target_name,
            s.shadow_models,
            s.memorization.candidates,
            s.memorization.candidate_rule,
            candidates_origin(run, args)
        );
        if s.producers.len() > 1 {
            eprintln!("  the run mixes {} producers:", s.producers.len());
            for p in &s.producers {
                eprintln!("    {p}");
            }
        }
        let sets = std::iter::once(("all samples", &s.all))
            .chain(std::iter::once(("candidates", &s.candidates)))
            .chain(s.groups.iter().map(|(name, r)| (name.as_str(), r)));
        for (name, r) in sets {
            if let Some(summary) = r {
                eprintln!(
                    "  {}{}",
                    headline(name, Some(summary)),
                    undetermined_note(summary)
                );
            }
        }
        for n in &s.not_scored {
            eprintln!("  not scored: {}: {}", n.set, n.reason);
        }
        eprintln!("report: {}", files.index.display());
    }
    Ok(())
}

pub fn report(args: &ReportArgs, quiet: bool) -> Result<()> {
    let run = Run::open(&args.run)?;
    let outside = args
        .target_logits
        .as_deref()
        .map(|path| outside_model(&run, path, args.members.as_deref(), quiet))
        .transpose()?;
    report_on(&run, &args.audit, outside, None, &args.output, quiet)
}

pub fn run(args: &RunArgs, quiet: bool) -> Result<()> {
    let config = RunConfig::load(&args.config)?;
    let dir = match &args.run {
        Some(d) => d.clone(),
        None => {
            let stem = args
                .config
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "memia".into());
            args.config
                .parent()
                .unwrap_or(Path::new("."))
                .join(format!("{stem}-run"))
        }
    };
    let Planned { run, pool, .. } = plan_into(&config, &args.config, &dir, quiet)?;
    train_models(&run, &args.device, None, Some(&pool), false, quiet)?;
    let report_dir = args.report.clone().unwrap_or_else(|| dir.join("report"));
    report_on(&run, &args.audit, None, Some(&pool), &report_dir, quiet)
}
