//! What the commands' flags say, parsed and checked: `balanced:0.5`, `mlp:128`, `idx:IMAGES,LABELS`,
//! `A..B`, the attack flags, `--threshold`; and paths as the commands record them.

use std::ops::Range;
use std::path::{Path, PathBuf};

use memia_attacks::{AttackSpec, LiraSignal, OfflineScore};
use memia_models::{CnnConfig, MlpConfig, ModelConfig, ResNetConfig};
use memia_shadow::InclusionScheme;

use crate::args::{AttackMethodArgs, Method, OfflineScoreArg, SignalArg};
use crate::config::DataSource;
use crate::error::{AuditError, Result, usage};

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

pub(crate) fn parse_scheme(text: &str) -> Result<InclusionScheme> {
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

pub(crate) fn parse_model(text: &str) -> Result<ModelConfig> {
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

pub(crate) fn parse_dataset(text: &str) -> Result<DataSource> {
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
pub(crate) fn canonical(path: &Path) -> Result<PathBuf> {
    std::fs::canonicalize(path).map_err(crate::error::io(path))
}

pub(crate) fn parse_range(text: &str, models: usize) -> Result<Range<usize>> {
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

pub(crate) fn attack_spec(args: &AttackMethodArgs, default: &AttackSpec) -> Result<AttackSpec> {
    let lira_flags = [
        ("--global-variance", args.global_variance),
        ("--variance-prior", args.variance_prior),
        ("--right-by-chance", args.right_by_chance),
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
            variance_prior: args.variance_prior,
            right_by_chance: args.right_by_chance,
            reference_compatible: args.reference_compatible,
            signal,
        },
        Method::LiraOffline => AttackSpec::LiraOffline {
            global_variance: args.global_variance,
            variance_prior: args.variance_prior,
            right_by_chance: args.right_by_chance,
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

/// A target out of range, named as the setting that gave it (`name(target)`).
pub(crate) fn flag_out_of_range(e: AuditError, name: impl Fn(usize) -> String) -> AuditError {
    match e {
        AuditError::TargetOutOfRange { target, models } => usage(format!(
            "{} is out of range: the run has {}",
            name(target),
            crate::text::run_models(models)
        )),
        other => other,
    }
}

/// `--threshold T`, checked by the library's one rule and named as the flag.
pub(crate) fn threshold_arg(threshold: f64) -> Result<f64> {
    memia_attacks::check_memorization_threshold(threshold).map_err(|e| match e {
        memia_attacks::AttackError::InvalidArgument { reason, .. } => {
            usage(format!("--threshold {reason}"))
        }
        other => other.into(),
    })
}
