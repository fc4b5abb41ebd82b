//! `memia plan`, `memia train`, `memia report`, `memia run`: parse, call the library's [`Run`],
//! print.

use std::path::{Path, PathBuf};

use memia_attacks::CandidateRule;
use memia_data::Pool;
use memia_report::{AuditConfig, AuditStage, headline};

use crate::args::{AuditArgs, DeviceArgs, PlanArgs, ReportArgs, RunArgs, TrainArgs};
use crate::config::RunConfig;
use crate::error::{Result, usage};
use crate::progress::{Progress, status};
use memia_audit::trainer::trainer;
use memia_audit::{AuditTarget, Planned, Run};

use crate::flags::{
    attack_spec, flag_out_of_range, parse_dataset, parse_model, parse_range, parse_scheme,
    threshold_arg,
};
use crate::scores::outside_model;

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

pub(crate) fn plan(args: &PlanArgs, quiet: bool) -> Result<()> {
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
    let training = run.check_training(trainer.as_dyn(), pool, allow_mixed_producers)?;
    status(
        quiet,
        format!(
            "training models {range:?} of {} {}",
            run.path().display(),
            trainer.describe()
        ),
    );
    let mut bar = Progress::new("training", "models", range.len() as u64, quiet);
    let report = training.train(range, |p| {
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

pub(crate) fn train(args: &TrainArgs, quiet: bool) -> Result<()> {
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
    json: bool,
) -> Result<()> {
    let config = audit_config(run, args)?;
    let target = outside.unwrap_or(AuditTarget::Model(config.target));
    // Before the pool is rebuilt for the thumbnails (slow): a wrong target is said at once,
    // named as the setting that gave it.
    run.check_target(&target).map_err(|e| {
        flag_out_of_range(e, |t| {
            if args.target.is_some() {
                format!("--target {t}")
            } else {
                let file = run.path().join("memia.toml");
                format!("[audit] target = {t} of {}", file.display())
            }
        })
    })?;
    let rebuilt = match pool {
        Some(_) => None,
        None => pool_for_thumbnails(run, quiet),
    };
    // One bar per long part: reading the models, then the shadow-model curve.
    let mut bar: Option<(AuditStage, Progress)> = None;
    let audit = run.audit(
        &config,
        &target,
        pool.or(rebuilt.as_ref()),
        |stage, done, total| {
            if bar.as_ref().is_none_or(|(s, _)| *s != stage) {
                if let Some((_, old)) = bar.take() {
                    old.finish();
                }
                let unit = match stage {
                    AuditStage::Reading => "models",
                    AuditStage::Curve => "evaluations",
                };
                bar = Some((
                    stage,
                    Progress::new(stage.describe(), unit, total as u64, quiet),
                ));
            }
            if let Some((_, b)) = bar.as_mut() {
                b.update(done as u64, total as u64, None);
            }
        },
    )?;
    if let Some((_, b)) = bar {
        b.finish();
    }
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
                eprintln!("  {}", headline(name, Some(summary)));
            }
        }
        for n in &s.not_scored {
            eprintln!("  not scored: {}: {}", n.set, n.reason);
        }
        eprintln!("report: {}", files.index.display());
    }
    if json {
        crate::json::print(
            "report",
            serde_json::json!({
                "summary": audit.summary,
                "report": files.index,
                "candidates_origin": candidates_origin(run, args),
            }),
        );
    }
    Ok(())
}

pub(crate) fn report(args: &ReportArgs, quiet: bool, json: bool) -> Result<()> {
    let run = Run::open(&args.run)?;
    let outside = args
        .target_logits
        .as_deref()
        .map(|path| outside_model(&run, path, args.members.as_deref(), quiet))
        .transpose()?;
    report_on(&run, &args.audit, outside, None, &args.output, quiet, json)
}

pub(crate) fn run(args: &RunArgs, quiet: bool, json: bool) -> Result<()> {
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
    report_on(
        &run,
        &args.audit,
        None,
        Some(&pool),
        &report_dir,
        quiet,
        json,
    )
}
