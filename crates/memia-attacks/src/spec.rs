//! One serialisable description of "which attack, on which signal": what a configuration file
//! or a command line names, dispatched to the attacks of this crate.

use memia_core::{KeepMatrix, Signal};
use ndarray::{Array1, ArrayView2, ArrayView3};
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::{
    FittedTest, LiraConfig, LiraMode, MembershipTest, OfflineScore, OutSide, RmiaConfig, Threshold,
    Variance,
};

/// An attack chosen by name, with the signal it reads from the logits.
///
/// In TOML: `method = "lira-online"` (with `global_variance = true`, or `variance_prior = true`
/// for per-sample spreads shrunk by a prior fitted across samples; `right_by_chance = true` for
/// an OUT side that allows for lucky guesses), `"lira-offline"` (with
/// `score = "tail"` or `"log-density"`), both with `reference_compatible = true` and
/// `signal = "phi-reference"` to reproduce the LiRA reference's `plot.py` / `score.py`;
/// `method = "rmia"` (with `gamma`, optional `offline_a`), `"loss"` or `"global"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "kebab-case", deny_unknown_fields)]
pub enum AttackSpec {
    /// Online LiRA on `phi` (IN and OUT Gaussians).
    LiraOnline {
        /// One variance for all samples (better below ~64 shadow models).
        #[serde(default)]
        global_variance: bool,
        /// Per-sample variances shrunk towards all samples' by a prior fitted across them
        /// ([`crate::Variance::Prior`]); excludes `global_variance`.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        variance_prior: bool,
        /// An OUT distribution that allows for lucky guesses ([`OutSide::RightByChance`]).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        right_by_chance: bool,
        /// The reference's `generate_ours`, quirks included
        /// ([`LiraConfig::reference_compatible`]).
        #[serde(default)]
        reference_compatible: bool,
        /// Which `phi` it reads.
        #[serde(default)]
        signal: LiraSignal,
    },
    /// Offline LiRA on `phi` (OUT Gaussian).
    LiraOffline {
        /// One variance for all samples.
        #[serde(default)]
        global_variance: bool,
        /// Per-sample variances shrunk by a prior fitted across samples.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        variance_prior: bool,
        /// An OUT distribution that allows for lucky guesses ([`OutSide::RightByChance`]).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        right_by_chance: bool,
        /// The paper's one-sided tail (default) or the reference code's log-density.
        #[serde(default)]
        score: OfflineScore,
        /// The reference's `generate_ours_offline`, quirks included
        /// ([`LiraConfig::reference_compatible`]).
        #[serde(default)]
        reference_compatible: bool,
        /// Which `phi` it reads.
        #[serde(default)]
        signal: LiraSignal,
    },
    /// RMIA on the true-class probability.
    Rmia {
        /// Threshold on the pairwise likelihood ratio.
        #[serde(default = "one")]
        gamma: f64,
        /// Offline approximation parameter; `None` is online RMIA.
        #[serde(default)]
        offline_a: Option<f64>,
    },
    /// The LOSS attack: minus the target's cross-entropy loss; uses no shadow model.
    Loss,
    /// The LiRA reference's global threshold on the target's `phi`; uses no shadow model.
    Global,
}

fn one() -> f64 {
    1.0
}

/// The `phi` a LiRA attack reads. In TOML and on the command line: `phi` or `phi-reference`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LiraSignal {
    /// `Signal::Phi`: exact, unbounded.
    #[default]
    Phi,
    /// `Signal::PhiReference`: the reference `score.py`'s arithmetic (float32, `+1e-45`).
    PhiReference,
}

impl From<LiraSignal> for Signal {
    fn from(s: LiraSignal) -> Signal {
        match s {
            LiraSignal::Phi => Signal::Phi,
            LiraSignal::PhiReference => Signal::PhiReference,
        }
    }
}

impl Default for AttackSpec {
    /// Online LiRA with a global variance: the strongest choice with few shadow models.
    fn default() -> Self {
        AttackSpec::LiraOnline {
            global_variance: true,
            variance_prior: false,
            right_by_chance: false,
            reference_compatible: false,
            signal: LiraSignal::Phi,
        }
    }
}

impl AttackSpec {
    /// The signal the attack reads (compute it with `memia_core::Logits::signals`).
    pub fn signal(&self) -> Signal {
        match self {
            AttackSpec::LiraOnline { signal, .. } | AttackSpec::LiraOffline { signal, .. } => {
                Signal::from(*signal)
            }
            AttackSpec::Global => Signal::Phi,
            AttackSpec::Rmia { .. } => Signal::Probability,
            AttackSpec::Loss => Signal::Loss,
        }
    }

    /// The LiRA settings a LiRA specification names (`None` for the other attacks), and
    /// whether it sets both variance flags (the prior wins here; [`MembershipTest::fit`]
    /// refuses the pair).
    pub fn lira_config(&self) -> Option<(LiraConfig, bool)> {
        let (mode, global, prior, lucky, compat) = match *self {
            AttackSpec::LiraOnline {
                global_variance,
                variance_prior,
                right_by_chance,
                reference_compatible,
                ..
            } => (
                LiraMode::Online,
                global_variance,
                variance_prior,
                right_by_chance,
                reference_compatible,
            ),
            AttackSpec::LiraOffline {
                global_variance,
                variance_prior,
                right_by_chance,
                score,
                reference_compatible,
                ..
            } => (
                LiraMode::Offline(score),
                global_variance,
                variance_prior,
                right_by_chance,
                reference_compatible,
            ),
            _ => return None,
        };
        let variance = match (global, prior) {
            (_, true) => Variance::Prior,
            (true, false) => Variance::Global,
            (false, false) => Variance::PerExample,
        };
        let out_side = if lucky {
            OutSide::RightByChance
        } else {
            OutSide::Plain
        };
        let config = LiraConfig {
            mode,
            ..LiraConfig::online()
        }
        .with_variance(variance)
        .with_out_side(out_side)
        .reference_compatible(compat);
        Some((config, global && prior))
    }

    /// A short human-readable name, e.g. "LiRA online (global variance)".
    pub fn describe(&self) -> String {
        if let Some((config, _)) = self.lira_config() {
            // The settings that differ from the paper's defaults, in parentheses.
            let mut notes = Vec::new();
            match config.variance {
                Variance::Global => notes.push("global variance"),
                Variance::Prior => notes.push("variance prior"),
                Variance::PerExample => {}
            }
            if config.out_side == OutSide::RightByChance {
                notes.push("right by chance");
            }
            if config.mode == LiraMode::Offline(OfflineScore::LogDensity) {
                notes.push("log-density score");
            }
            if config.reference_compatible {
                notes.push("reference-compatible");
            }
            if self.signal() == Signal::PhiReference {
                notes.push("phi-reference");
            }
            let name = if config.mode == LiraMode::Online {
                "online"
            } else {
                "offline"
            };
            return match notes.is_empty() {
                true => format!("LiRA {name}"),
                false => format!("LiRA {name} ({})", notes.join(", ")),
            };
        }
        match self {
            AttackSpec::Rmia {
                gamma,
                offline_a: None,
            } => format!("RMIA online (gamma {gamma})"),
            AttackSpec::Rmia {
                gamma,
                offline_a: Some(a),
            } => format!("RMIA offline (gamma {gamma}, a {a})"),
            AttackSpec::Loss => "LOSS".into(),
            AttackSpec::Global => "global threshold".into(),
            AttackSpec::LiraOnline { .. } | AttackSpec::LiraOffline { .. } => {
                unreachable!("LiRA is described above")
            }
        }
    }
}

/// A fitted [`AttackSpec`]: whichever attack it names.
pub struct FittedSpec(Box<dyn FittedTest>);

impl std::fmt::Debug for FittedSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FittedSpec")
            .field("samples", &self.0.samples())
            .finish_non_exhaustive()
    }
}

impl FittedTest for FittedSpec {
    fn samples(&self) -> usize {
        self.0.samples()
    }

    fn score(&self, target: ArrayView2<'_, f64>) -> Result<Array1<f64>> {
        self.0.score(target)
    }
}

impl MembershipTest for AttackSpec {
    type Fitted = FittedSpec;

    /// Fits the named attack; `shadow` must hold [`AttackSpec::signal`] of the shadow models.
    fn fit(&self, keep: &KeepMatrix, shadow: ArrayView3<'_, f64>) -> Result<FittedSpec> {
        if let Some((config, both)) = self.lira_config() {
            if both {
                return Err(crate::error::invalid(
                    "variance",
                    "global_variance and variance_prior exclude each other",
                ));
            }
            return Ok(FittedSpec(Box::new(config.fit(keep, shadow)?)));
        }
        Ok(FittedSpec(match self {
            AttackSpec::Rmia { gamma, offline_a } => Box::new(
                RmiaConfig {
                    gamma: *gamma,
                    offline_a: *offline_a,
                    population: None,
                }
                .fit(keep, shadow)?,
            ),
            AttackSpec::Loss => Box::new(Threshold::loss().fit(keep, shadow)?),
            AttackSpec::Global => Box::new(Threshold::global().fit(keep, shadow)?),
            AttackSpec::LiraOnline { .. } | AttackSpec::LiraOffline { .. } => {
                unreachable!("LiRA is fitted above")
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array3, Axis, s};

    #[test]
    fn dispatches_to_the_named_attack() {
        let keep = KeepMatrix::balanced(8, 20, 3).unwrap();
        let phi = Array3::from_shape_fn((8, 20, 1), |(k, i, _)| {
            (i as f64) * 0.1 + if keep.get(k, i) { 1.0 } else { 0.0 } + (k % 3) as f64 * 0.05
        });
        let shadow_keep = keep.select_models(&(1..8).collect::<Vec<_>>()).unwrap();
        let shadow = phi.slice(s![1.., .., ..]);
        let target = phi.index_axis(Axis(0), 0);
        let spec = AttackSpec::LiraOnline {
            global_variance: true,
            variance_prior: false,
            right_by_chance: false,
            reference_compatible: false,
            signal: LiraSignal::Phi,
        };
        let direct = LiraConfig::online()
            .with_global_variance(true)
            .fit(&shadow_keep, shadow)
            .unwrap()
            .score(target)
            .unwrap();
        let via_spec = spec
            .fit(&shadow_keep, shadow)
            .unwrap()
            .score(target)
            .unwrap();
        assert_eq!(direct, via_spec);
        assert_eq!(spec.signal(), Signal::Phi);
        assert_eq!(AttackSpec::Loss.signal(), Signal::Loss);
        // The right-by-chance OUT side by name, dispatched to LiRA's.
        let lucky: AttackSpec =
            serde_json::from_str(r#"{"method": "lira-offline", "right_by_chance": true}"#).unwrap();
        assert_eq!(lucky.describe(), "LiRA offline (right by chance)");
        // OUT observations mostly below 0, a quarter of them lucky guesses.
        let guesses = Array3::from_shape_fn((8, 20, 1), |(k, i, _)| {
            if keep.get(k, i) {
                2.0 + 0.05 * (k % 3) as f64
            } else if (k + i) % 4 == 0 {
                0.5 + 0.01 * i as f64
            } else {
                -1.0 - 0.01 * k as f64
            }
        });
        let (lucky_shadow, lucky_target) = (
            guesses.slice(s![1.., .., ..]),
            guesses.index_axis(Axis(0), 0),
        );
        let direct = LiraConfig::offline()
            .with_out_side(OutSide::RightByChance)
            .fit(&shadow_keep, lucky_shadow)
            .unwrap()
            .score(lucky_target)
            .unwrap();
        assert_eq!(
            lucky
                .fit(&shadow_keep, lucky_shadow)
                .unwrap()
                .score(lucky_target)
                .unwrap(),
            direct
        );
        // The variance prior by name, dispatched to LiRA's; both variances at once refused.
        let prior: AttackSpec =
            serde_json::from_str(r#"{"method": "lira-online", "variance_prior": true}"#).unwrap();
        assert_eq!(prior.describe(), "LiRA online (variance prior)");
        let direct = LiraConfig::online()
            .with_variance(crate::Variance::Prior)
            .fit(&shadow_keep, shadow)
            .unwrap()
            .score(target)
            .unwrap();
        assert_eq!(
            direct,
            prior
                .fit(&shadow_keep, shadow)
                .unwrap()
                .score(target)
                .unwrap()
        );
        let both: AttackSpec = serde_json::from_str(
            r#"{"method": "lira-offline", "variance_prior": true, "global_variance": true}"#,
        )
        .unwrap();
        let err = both.fit(&shadow_keep, shadow).unwrap_err();
        assert!(err.to_string().contains("exclude each other"), "{err}");
        // Unset, the field stays out of the JSON (configurations written before it read alike).
        assert!(
            !serde_json::to_string(&spec)
                .unwrap()
                .contains("variance_prior")
        );
    }

    #[test]
    fn parses_from_its_names() {
        let spec: AttackSpec = serde_json::from_str(r#"{"method": "rmia", "gamma": 2.0}"#).unwrap();
        assert_eq!(
            spec,
            AttackSpec::Rmia {
                gamma: 2.0,
                offline_a: None
            }
        );
        assert_eq!(spec.signal(), Signal::Probability);
        let err = serde_json::from_str::<AttackSpec>(r#"{"method": "lira-online", "globl": true}"#)
            .unwrap_err();
        assert!(err.to_string().contains("globl"), "{err}");
        assert!(serde_json::from_str::<AttackSpec>(r#"{"method": "lira"}"#).is_err());
        // The reference's variants by name.
        let spec: AttackSpec = serde_json::from_str(
            r#"{"method": "lira-offline", "score": "log-density", "reference_compatible": true,
                "signal": "phi-reference"}"#,
        )
        .unwrap();
        assert_eq!(
            spec,
            AttackSpec::LiraOffline {
                global_variance: false,
                variance_prior: false,
                right_by_chance: false,
                score: OfflineScore::LogDensity,
                reference_compatible: true,
                signal: LiraSignal::PhiReference,
            }
        );
        assert_eq!(spec.signal(), Signal::PhiReference);
        assert_eq!(
            spec.describe(),
            "LiRA offline (log-density score, reference-compatible, phi-reference)"
        );
        assert_eq!(
            AttackSpec::default().describe(),
            "LiRA online (global variance)"
        );
    }
}
