//! The trainer a run's configuration describes: memia's models on Burn, or an external
//! command; and where it trains ([`Placement`]: device, engine, group size).

use std::path::Path;

use memia_models::Engine;
#[cfg(feature = "train")]
use memia_models::{BurnTrainer, device_by_name};
use memia_shadow::{ExternalTrainer, ShadowTrainer};

use crate::config::RunConfig;
use crate::error::{AuditError, Result, usage};

/// The trainer of a run: memia's models on Burn, or the configuration's external command.
#[allow(clippy::large_enum_variant)] // one per run: boxing would save nothing that matters
pub enum RunTrainer {
    /// memia's model zoo.
    #[cfg(feature = "train")]
    Burn(BurnTrainer),
    /// memia's model zoo in a build without it: its settings, which plan as
    /// [`RunTrainer::Burn`]'s do and train nothing ([`trainer`] refuses them).
    #[cfg(not(feature = "train"))]
    Settings(memia_models::ZooSettings),
    /// `[train] external`.
    External(ExternalTrainer),
}

impl RunTrainer {
    /// As the scheduler takes it.
    pub fn as_dyn(&self) -> &dyn ShadowTrainer {
        match self {
            #[cfg(feature = "train")]
            RunTrainer::Burn(t) => t,
            #[cfg(not(feature = "train"))]
            RunTrainer::Settings(t) => t,
            RunTrainer::External(t) => t,
        }
    }

    /// Where and how it trains, for the status line.
    pub fn describe(&self) -> String {
        match self {
            #[cfg(feature = "train")]
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
            #[cfg(not(feature = "train"))]
            RunTrainer::Settings(_) => "(memia's models: not in this build)".into(),
            RunTrainer::External(t) => format!("with the external command `{}`", t.command()),
        }
    }
}

/// Where memia's own models train, overriding the configuration's `[train]` table: what the
/// command line's `--device`, `--engine` and `--group-size` give. `Default` keeps the
/// configuration's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Placement {
    /// A device name ([`memia_models::device_names`]).
    pub device: Option<String>,
    /// Which code trains.
    pub engine: Option<Engine>,
    /// Models trained at once.
    pub group_size: Option<usize>,
}

/// The configuration's trainer (what enters the plan) for the run in `run_dir`, `group_size`
/// overriding the configuration's, on Burn's default device.
pub fn settings(
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
        trainer.check().map_err(|source| AuditError::Refused {
            table: "train",
            source,
        })?;
        return Ok(RunTrainer::External(trainer));
    }
    let group = group_size.unwrap_or(config.train.group_size);
    if group == 0 {
        // The configuration's own value is checked when it is parsed.
        return Err(usage(
            "the group size (models trained at once) must be at least 1",
        ));
    }
    #[cfg(feature = "train")]
    return Ok(RunTrainer::Burn(
        BurnTrainer::new(config.model.clone(), config.training, group)
            .with_queries(config.plan.queries.clone()),
    ));
    #[cfg(not(feature = "train"))]
    Ok(RunTrainer::Settings(memia_models::ZooSettings {
        model: config.model.clone(),
        training: config.training,
        group_size: group,
        queries: config.plan.queries.clone(),
    }))
}

/// [`settings`] on the device `placement` or the configuration names: a trainer that trains
/// (memia's models in a build without them: [`AuditError::TrainingNotBuilt`]).
pub fn trainer(config: &RunConfig, run_dir: &Path, placement: &Placement) -> Result<RunTrainer> {
    Ok(match settings(config, run_dir, placement.group_size)? {
        #[cfg(not(feature = "train"))]
        RunTrainer::Settings(_) => return Err(AuditError::TrainingNotBuilt),
        #[cfg(feature = "train")]
        RunTrainer::Burn(t) => {
            let name = placement.device.as_deref().unwrap_or(&config.train.device);
            RunTrainer::Burn(
                t.on(device_by_name(name)?)
                    .with_engine(placement.engine.unwrap_or(config.train.engine)),
            )
        }
        external => external,
    })
}
