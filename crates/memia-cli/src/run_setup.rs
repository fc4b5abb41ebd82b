//! What commands set up from a run directory and their flags: the run's trainer, the pool a
//! planned run was made on, the check that memia's models do not join another family's, and a
//! target trained elsewhere (its logits and membership files).

use std::path::Path;

use memia_core::Logits;
use memia_core::npy::read_npy_any;
use memia_data::Pool;
use memia_models::{BurnTrainer, device_by_name};
use memia_shadow::{ExternalTrainer, ShadowTrainer};
use ndarray::Array3;

use crate::args::DeviceArgs;
use crate::config::RunConfig;
use crate::error::{CliError, Result, usage};
use crate::progress::status;
use crate::run_files::LoadedRun;

/// The trainer of a run: memia's models on Burn, or the configuration's external command.
pub(crate) enum RunTrainer {
    /// memia's model zoo.
    Burn(BurnTrainer),
    /// `[train] external`.
    External(ExternalTrainer),
}

impl RunTrainer {
    /// As the scheduler takes it.
    pub(crate) fn as_dyn(&self) -> &dyn ShadowTrainer {
        match self {
            RunTrainer::Burn(t) => t,
            RunTrainer::External(t) => t,
        }
    }

    /// Where and how it trains, for the status line.
    pub(crate) fn describe(&self) -> String {
        match self {
            RunTrainer::Burn(t) => format!(
                "on {:?} ({}), {} at a time",
                t.device,
                if t.uses_fused_kernels() {
                    "memia's fused CPU kernels"
                } else {
                    "Burn's operations"
                },
                t.group_size
            ),
            RunTrainer::External(t) => format!("with the external command `{}`", t.command()),
        }
    }
}

/// The configuration's trainer (what enters the plan) for the run in `run_dir`, `group_size`
/// overriding the configuration's, on Burn's default device.
pub(crate) fn settings(
    config: &RunConfig,
    run_dir: &Path,
    group_size: Option<usize>,
) -> Result<RunTrainer> {
    if let Some(command) = &config.train.external {
        let mut trainer = ExternalTrainer::new(command.clone(), run_dir.join("external"))
            .with_queries(config.train.external_queries);
        if let Some(dir) = &config.train.external_dir {
            trainer = trainer.in_directory(dir);
        }
        trainer
            .check()
            .map_err(|e| usage(format!("[train] external: {e}")))?;
        return Ok(RunTrainer::External(trainer));
    }
    let group = group_size.unwrap_or(config.train.group_size);
    if group == 0 {
        // The configuration's own value is checked when it is parsed.
        return Err(usage("--group-size must be at least 1"));
    }
    Ok(RunTrainer::Burn(
        BurnTrainer::new(config.model.clone(), config.training, group)
            .with_queries(config.plan.queries.clone()),
    ))
}

/// [`settings`] on the device the flags or the configuration name.
pub(crate) fn trainer(
    config: &RunConfig,
    run_dir: &Path,
    device: &DeviceArgs,
) -> Result<RunTrainer> {
    Ok(match settings(config, run_dir, device.group_size)? {
        RunTrainer::Burn(t) => {
            let name = device.device.as_deref().unwrap_or(&config.train.device);
            RunTrainer::Burn(
                t.on(device_by_name(name)?)
                    .with_engine(device.engine.unwrap_or(config.train.engine)),
            )
        }
        external => external,
    })
}

/// Models of another family (logits copied in, another trainer) are not silently joined by
/// memia's own: engines of memia's trainer may mix (said after training), families may not.
pub(crate) fn refuse_mixed_families(run: &LoadedRun, trainer: &dyn ShadowTrainer) -> Result<()> {
    let ours = trainer.producer().trainer;
    let foreign: Vec<String> = run
        .dir
        .producers()?
        .iter()
        .filter(|g| g.producer.as_ref().is_none_or(|p| p.trainer != ours))
        .map(ToString::to_string)
        .collect();
    if foreign.is_empty() {
        return Ok(());
    }
    Err(CliError::Run {
        path: run.path(),
        reason: format!(
            "holds models that {ours} did not produce ({}): training its models into the \
             other slots would mix model families in one audit; pass \
             --allow-mixed-producers to do it anyway",
            foreign.join("; ")
        ),
    })
}

/// The pool a planned run was made on, rebuilt from its configuration and checked against the
/// plan's fingerprint.
pub(crate) fn planned_pool(run: &LoadedRun) -> Result<Pool> {
    let config = run.config.as_ref().ok_or_else(|| CliError::Run {
        path: run.path(),
        reason: "has no memia.toml (an imported run?): its pool's samples are not known to memia"
            .into(),
    })?;
    let pool = crate::pool::build(&config.data, config.plan.seed)?;
    if !run.dir.plan().pool.describes(&pool.dataset) {
        return Err(CliError::Run {
            path: run.path(),
            reason: "the data files no longer give the pool this run was planned on (its \
                     fingerprint differs)"
                .into(),
        });
    }
    Ok(pool)
}

/// A model trained elsewhere as the report's target: its logits file and, when given, which
/// samples it trained on.
pub(crate) struct OutsideTarget {
    pub name: String,
    pub logits: Logits,
    pub members: Option<Vec<bool>>,
}

pub(crate) fn outside_target(
    run: &LoadedRun,
    logits_path: &Path,
    members: Option<&Path>,
    quiet: bool,
) -> Result<OutsideTarget> {
    let location = logits_path.display().to_string();
    let target = read_one_model(logits_path, Some(run.dir.expected_logits_shape()), quiet)
        .map_err(|e| usage(format!("--target-logits {e}")))?;
    let plan = run.dir.plan();
    let members = members
        .map(|path| -> Result<Vec<bool>> {
            let m = read_membership(path)?;
            if m.len() != plan.pool.samples {
                return Err(usage(format!(
                    "--members {}: {} entries for the run's {} samples",
                    path.display(),
                    m.len(),
                    plan.pool.samples
                )));
            }
            Ok(m)
        })
        .transpose()?;
    Ok(OutsideTarget {
        name: location,
        logits: Logits::from_models(&[target.view()])?,
        members,
    })
}

/// One model's logits file, read and checked by memia's one reader (memia_core), saying so
/// where float64 values were converted.
pub(crate) fn read_one_model(
    path: &Path,
    expected: Option<[usize; 3]>,
    quiet: bool,
) -> Result<Array3<f32>> {
    let read = memia_core::read_model_logits(path, expected)?;
    if read.converted_from_f64 {
        status(
            quiet,
            format!("{}: float64 logits converted to float32", path.display()),
        );
    }
    Ok(read.logits)
}

/// A membership file: N bool, or N integers 0 / 1.
pub(crate) fn read_membership(path: &Path) -> Result<Vec<bool>> {
    let any = read_npy_any(path)?;
    let location = path.display().to_string();
    if let memia_core::npy::AnyArray::Bool(b) = &any {
        if b.ndim() != 1 {
            return Err(usage(format!(
                "{location}: membership must be one-dimensional, found shape {:?}",
                b.shape()
            )));
        }
        return Ok(b.iter().copied().collect());
    }
    let values = any.to_i64_vec(&location)?;
    values
        .iter()
        .enumerate()
        .map(|(i, &v)| match v {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(usage(format!(
                "{location}: membership must be 0 or 1, entry {i} is {v}"
            ))),
        })
        .collect()
}
