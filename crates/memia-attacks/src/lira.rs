//! LiRA, the likelihood-ratio attack (Carlini, Chien, Nasr, Song, Terzis, Tramer 2022), in
//! every variant of the paper and of its reference code (tensorflow/privacy
//! `research/mi_lira_2021/plot.py`), each named.

use memia_core::KeepMatrix;
use memia_metrics::median;
use ndarray::{Array1, Array2, ArrayView2, ArrayView3};
use rayon::prelude::*;

use crate::error::{Result, check_finite, check_shadow_shape, check_target, invalid};
use crate::gaussian::{norm_logpdf, norm_logsf, t_logpdf, t_logsf};
use crate::{FittedTest, MembershipTest};

/// Added to every standard deviation before it divides, as the reference does, so that a
/// sample whose shadow observations are all equal still has a density.
pub const STD_EPSILON: f64 = 1e-30;

/// Online (IN and OUT Gaussians) or offline (OUT only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum LiraMode {
    /// Score = `log N(x; mu_in, sd_in) - log N(x; mu_out, sd_out)`, the log-likelihood ratio.
    Online,
    /// Only OUT models are needed, so shadow models can be trained once, before the target.
    Offline(OfflineScore),
}

/// The two offline scores in use.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum OfflineScore {
    /// The paper's one-sided test: how far `x` lies in the OUT distribution's upper tail,
    /// scored as `-log P[Z > x]`, `Z ~ N(mu_out, sd_out)`. Members have higher confidence.
    #[default]
    Tail,
    /// The reference code's `generate_ours_offline`: `-log N(x; mu_out, sd_out)`, the
    /// two-sided surprise of `x` under OUT (it also flags unusually *low* confidence).
    LogDensity,
}

/// One variance per sample, or one for all samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Variance {
    /// Each sample (and query) has its own IN and OUT spreads: best with many shadow models.
    PerExample,
    /// One IN and one OUT spread shared by all samples: better below about 64 shadow models.
    /// By default the pooled within-sample standard deviation; under
    /// [`LiraConfig::reference_compatible`], the reference's `np.std` of all values.
    Global,
    /// Each sample's own spread shrunk towards the spread of all samples: an inverse-gamma
    /// prior on each side's variance fitted across the samples (empirical Bayes, as BaVarIA's
    /// normal-inverse-gamma with a flat prior on the mean), and each side scored by its
    /// posterior predictive, a Student t centred on the side's mean. Per-sample where the
    /// samples' spreads differ, global where they do not, usable from one model a side.
    Prior,
}

/// The inverse-gamma prior `IG(shape, scale)` of one side's variance, fitted across samples by
/// the method of moments: `E[s^2] = scale / (shape - 1)` and `E[s^4] / (1 + 2 / (n - 1)) =
/// E[sigma^4] = scale^2 / ((shape - 1)(shape - 2))` over the samples' unbiased variances `s^2`
/// from `n >= 2` models. Where the samples' variances vary no more than sampling alone makes
/// them, `shape` is infinite: one variance for all (the predictive is then a normal).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct VariancePrior {
    /// `alpha_0`; infinite for a variance shared by all samples.
    pub shape: f64,
    /// `beta_0` (the prior mean of the variance is `scale / (shape - 1)`); with an infinite
    /// shape, the shared variance itself.
    pub scale: f64,
}

impl VariancePrior {
    /// Fits the prior to `(n, population variance)` pairs of samples (those with `n >= 2`
    /// count); `None` with fewer than two such samples.
    pub fn fit(sides: impl Iterator<Item = (usize, f64)>) -> Option<Self> {
        let (mut count, mut m, mut e4) = (0usize, 0f64, 0f64);
        for (n, var) in sides.filter(|&(n, v)| n >= 2 && v.is_finite()) {
            let s2 = var * n as f64 / (n - 1) as f64;
            count += 1;
            m += s2;
            e4 += s2 * s2 / (1.0 + 2.0 / (n - 1) as f64);
        }
        if count < 2 {
            return None;
        }
        let (m, e4) = (m / count as f64, e4 / count as f64);
        let r = e4 / (m * m);
        Some(if r > 1.0 {
            let shape = (2.0 * r - 1.0) / (r - 1.0);
            VariancePrior {
                shape,
                scale: m * (shape - 1.0),
            }
        } else {
            VariancePrior {
                shape: f64::INFINITY,
                scale: m,
            }
        })
    }

    /// The posterior predictive of a new observation of a side with `n >= 1` models, mean
    /// `mean` and population variance `var`: `(location, scale, degrees of freedom)` of a
    /// Student t, `t_{2 a}(mean, (b / a)(1 + 1/n))` with `a = shape + (n - 1)/2` and `b = scale
    /// + n var / 2`.
    pub fn predictive(&self, n: usize, mean: f64, var: f64) -> (f64, f64, f64) {
        let n = n as f64;
        if self.shape.is_infinite() {
            return (mean, (self.scale * (1.0 + 1.0 / n)).sqrt(), f64::INFINITY);
        }
        let a = self.shape + 0.5 * (n - 1.0);
        let b = self.scale + 0.5 * n * var;
        (mean, (b / a * (1.0 + 1.0 / n)).sqrt(), 2.0 * a)
    }
}

/// How the OUT distribution treats a shadow model that names a sample's label without having
/// trained on it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum OutSide {
    /// One distribution (the [`Variance`] setting's) for every OUT observation.
    #[default]
    Plain,
    /// A two-component OUT: with probability `pi_i` the model is right by chance and `phi`
    /// follows the distribution of such lucky guesses, a normal fitted across samples (too few
    /// per sample with few models) to the OUT observations with `phi > 0` of the samples whose
    /// OUT models are right at most half of the time; otherwise the plain OUT distribution
    /// (which keeps every OUT observation, lucky ones included: it only widens with them). On
    /// those samples `pi_i = (r_i + 1/2) / (n_i + 1)`, the posterior mean under Jeffreys' prior
    /// of the rate of the sample's `n_i` OUT observations with `phi > 0`, `r_i` of them: never
    /// 0, so that a target's lucky guess on a sample whose few OUT models were all wrong is not
    /// scored as certain membership. Where the OUT models are mostly right, being right is not
    /// luck: `pi_i = 0`, the plain OUT side.
    RightByChance,
}

/// The centre of each fitted Gaussian.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Center {
    /// The median over shadow models (the reference's choice; robust to outlying models).
    Median,
    /// The mean.
    Mean,
}

/// LiRA's settings: build with [`LiraConfig::online`] or [`LiraConfig::offline`], adjust, then
/// [`MembershipTest::fit`] on shadow observations.
///
/// Observations are LiRA's `phi` (see `memia_core::Signal::Phi`), K models x N samples x A
/// queries. Every query gets its own Gaussians; the per-query scores are averaged, as the
/// reference does. Scores are **higher = more likely member** (the reference's `prediction` is
/// the negation for the online and offline-density forms).
///
/// ```
/// use memia_attacks::{FittedTest, LiraConfig, MembershipTest};
/// use memia_core::KeepMatrix;
/// use ndarray::Array3;
///
/// let keep = KeepMatrix::balanced(8, 2, 0)?;
/// // IN models see phi around 3.3, OUT models around 0.3.
/// let shadow = Array3::from_shape_fn((8, 2, 1), |(k, i, _)| {
///     0.1 * k as f64 + if keep.get(k, i) { 3.0 } else { 0.0 }
/// });
/// let lira = LiraConfig::online().with_global_variance(true).fit(&keep, shadow.view())?;
/// // The target sees 3.3 on sample 0 (looks like a member) and 0.3 on sample 1.
/// let scores = lira.score(ndarray::array![[3.3], [0.3]].view())?;
/// assert!(scores[0] > 0.0 && scores[1] < 0.0);
/// # Ok::<(), memia_attacks::AttackError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LiraConfig {
    /// Online or offline.
    pub mode: LiraMode,
    /// Per-example or global variance.
    pub variance: Variance,
    /// Median or mean.
    pub center: Center,
    /// The plain OUT distribution, or one that allows for lucky guesses (left out of the JSON
    /// when plain, so that earlier specifications keep their form).
    #[serde(default, skip_serializing_if = "OutSide::is_plain")]
    pub out_side: OutSide,
    /// Reproduce `mi_lira_2021/plot.py` exactly, quirks included (see
    /// [`LiraConfig::reference_compatible`]).
    pub reference_compatible: bool,
}

impl LiraConfig {
    /// Online LiRA, per-example variance, median centre: the paper's main attack.
    pub fn online() -> Self {
        LiraConfig {
            mode: LiraMode::Online,
            variance: Variance::PerExample,
            center: Center::Median,
            out_side: OutSide::Plain,
            reference_compatible: false,
        }
    }

    /// Offline LiRA with the paper's one-sided tail score, per-example variance, median centre.
    pub fn offline() -> Self {
        LiraConfig {
            mode: LiraMode::Offline(OfflineScore::Tail),
            ..Self::online()
        }
    }

    /// Offline LiRA with the reference code's log-density score.
    pub fn offline_log_density() -> Self {
        LiraConfig {
            mode: LiraMode::Offline(OfflineScore::LogDensity),
            ..Self::online()
        }
    }

    /// Sets how the spreads are estimated.
    pub fn with_variance(mut self, variance: Variance) -> Self {
        self.variance = variance;
        self
    }

    /// One variance for all samples (`true`) or one per sample (`false`).
    pub fn with_global_variance(mut self, global: bool) -> Self {
        self.variance = if global {
            Variance::Global
        } else {
            Variance::PerExample
        };
        self
    }

    /// Sets how the OUT distribution treats lucky guesses ([`OutSide`]).
    pub fn with_out_side(mut self, out_side: OutSide) -> Self {
        self.out_side = out_side;
        self
    }

    /// Sets the centre.
    pub fn with_center(mut self, center: Center) -> Self {
        self.center = center;
        self
    }

    /// Reproduces the reference's `generate_ours` / `generate_ours_offline` exactly:
    ///
    /// * each sample's IN (OUT) observations are cut to the smallest IN (OUT) count over all
    ///   samples, keeping the first models in index order;
    /// * the global variance is `np.std` over all IN (OUT) values of all samples, which
    ///   includes the spread *between* samples' centres;
    /// * online with global variance uses the IN spread for **both** Gaussians (the
    ///   reference's `std_out = np.std(dat_in)`).
    ///
    /// The default behaviour instead uses every observation, the pooled within-sample spread,
    /// and the OUT spread for the OUT Gaussian.
    pub fn reference_compatible(mut self, on: bool) -> Self {
        self.reference_compatible = on;
        self
    }

    fn is_online(&self) -> bool {
        self.mode == LiraMode::Online
    }
}

impl OutSide {
    fn is_plain(&self) -> bool {
        *self == OutSide::Plain
    }
}

impl MembershipTest for LiraConfig {
    type Fitted = FittedLira;

    fn fit(&self, keep: &KeepMatrix, shadow: ArrayView3<'_, f64>) -> Result<FittedLira> {
        check_shadow_shape(keep, &shadow)?;
        // Settings the reference lacks are refused before any work.
        if self.variance == Variance::Prior && self.reference_compatible {
            return Err(invalid(
                "variance",
                "the reference has no variance prior: reference compatibility takes per-example or global variance",
            ));
        }
        if self.out_side != OutSide::Plain && self.reference_compatible {
            return Err(invalid(
                "out_side",
                "the reference has no right-by-chance OUT component: reference compatibility takes the plain OUT side",
            ));
        }
        let (_, n, a) = shadow.dim();
        let counts = keep.in_counts();
        let models = keep.models();
        let (mut in_cap, mut out_cap) = (usize::MAX, usize::MAX);
        if self.reference_compatible {
            in_cap = counts.iter().copied().min().expect("N > 0");
            out_cap = counts.iter().map(|&c| models - c).min().expect("N > 0");
            if (self.is_online() && in_cap == 0) || out_cap == 0 {
                return Err(invalid(
                    "reference_compatible",
                    format!(
                        "the reference cuts every sample to the smallest IN ({in_cap}) and OUT ({out_cap}) counts; \
                         a sample without IN{} models leaves nothing to fit",
                        if self.is_online() { " or OUT" } else { "" }
                    ),
                ));
            }
        }
        let keep_arr = keep.as_array();
        let shadow = shadow.as_standard_layout();
        let data = shadow.as_slice().expect("standard layout");
        const BLOCK: usize = 64;
        let blocks: Vec<BlockFit> = (0..n.div_ceil(BLOCK))
            .into_par_iter()
            .map_init(Scratch::default, |scratch, b| {
                let start = b * BLOCK;
                let end = (start + BLOCK).min(n);
                fit_block(
                    self,
                    keep_arr.view(),
                    (data, shadow.dim()),
                    start..end,
                    (in_cap, out_cap),
                    scratch,
                )
            })
            .collect();
        // Finiteness is checked during the fit's own pass; name the culprit only on failure.
        if blocks.iter().any(|b| !b.all_finite) {
            check_finite("shadow observations", &shadow.view())?;
        }

        let mut fitted = FittedLira {
            config: *self,
            lucky: None,
            queries: a,
            mu_in: Array2::from_elem((n, a), f64::NAN),
            sd_in: Array2::from_elem((n, a), f64::NAN),
            mu_out: Array2::from_elem((n, a), f64::NAN),
            sd_out: Array2::from_elem((n, a), f64::NAN),
            dof: None,
            priors: None,
            defined: vec![false; n],
        };
        let mut sides: Vec<Params> = Vec::new();
        let (mut spread_in, mut spread_out) = (Spread::default(), Spread::default());
        for (b, block) in blocks.into_iter().enumerate() {
            for (r, &defined) in block.defined.iter().enumerate() {
                let i = b * BLOCK + r;
                fitted.defined[i] = defined;
                for q in 0..a {
                    let g = block.params[r * a + q];
                    fitted.mu_in[[i, q]] = g.mu_in;
                    fitted.sd_in[[i, q]] = g.sd_in;
                    fitted.mu_out[[i, q]] = g.mu_out;
                    fitted.sd_out[[i, q]] = g.sd_out;
                }
            }
            spread_in.merge(&block.spread_in);
            spread_out.merge(&block.spread_out);
            if self.variance == Variance::Prior {
                sides.extend(block.params);
            }
        }
        if self.variance == Variance::Prior {
            fitted.fit_priors(&sides)?;
        }
        if self.out_side == OutSide::RightByChance {
            fitted.lucky = Some(LuckyGuesses::fit(keep, shadow.view())?);
        }
        if self.variance == Variance::Global {
            let (g_in, g_out) = if self.reference_compatible {
                let g_in = spread_in.all_values_std();
                (
                    g_in,
                    if self.is_online() {
                        g_in
                    } else {
                        spread_out.all_values_std()
                    },
                )
            } else {
                (spread_in.pooled_std(), spread_out.pooled_std())
            };
            fitted.sd_in.fill(g_in);
            fitted.sd_out.fill(g_out);
        }
        Ok(fitted)
    }
}

/// Gaussian parameters of one sample and query, and what the variance prior needs: each
/// side's count and mean.
#[derive(Debug, Clone, Copy)]
struct Params {
    mu_in: f64,
    sd_in: f64,
    mu_out: f64,
    sd_out: f64,
    n_in: usize,
    n_out: usize,
    mean_in: f64,
    mean_out: f64,
}

/// Fits of one block of samples: `params[r * A + q]` for sample `start + r`, query `q`.
struct BlockFit {
    all_finite: bool,
    defined: Vec<bool>,
    params: Vec<Params>,
    spread_in: Spread,
    spread_out: Spread,
}

/// Buffers reused across the blocks one thread fits (fresh large allocations per block would
/// cost more in page faults than the fit itself).
#[derive(Default)]
struct Scratch {
    ins: Vec<f64>,
    outs: Vec<f64>,
    counts: Vec<(usize, usize)>,
}

/// Running totals for the two global spreads: the within-sample sum of squared deviations
/// (pooled), and count / mean / M2 of all values together (Chan et al.'s merge).
#[derive(Debug, Clone, Copy, Default)]
struct Spread {
    within_ss: f64,
    within_n: f64,
    n: f64,
    mean: f64,
    m2: f64,
}

impl Spread {
    /// Adds one sample's side: `n` values with the given mean and population std.
    fn add_group(&mut self, n: usize, mean: f64, std: f64) {
        if n == 0 {
            return;
        }
        let n = n as f64;
        let ss = std * std * n;
        self.within_ss += ss;
        self.within_n += n;
        self.merge(&Spread {
            within_ss: 0.0,
            within_n: 0.0,
            n,
            mean,
            m2: ss,
        });
    }

    fn merge(&mut self, other: &Spread) {
        if other.n == 0.0 {
            self.within_ss += other.within_ss;
            self.within_n += other.within_n;
            return;
        }
        let n = self.n + other.n;
        let delta = other.mean - self.mean;
        self.m2 += other.m2 + delta * delta * self.n * other.n / n;
        self.mean += delta * other.n / n;
        self.n = n;
        self.within_ss += other.within_ss;
        self.within_n += other.within_n;
    }

    fn pooled_std(&self) -> f64 {
        (self.within_ss / self.within_n).sqrt()
    }

    fn all_values_std(&self) -> f64 {
        (self.m2 / self.n).sqrt()
    }
}

/// Fits samples `range`: gathers their K x A observations model by model (rows are contiguous
/// in the K x N x A array), splits them into IN and OUT (at most `caps` of each, in model
/// order), and fits each side.
fn fit_block(
    config: &LiraConfig,
    keep: ndarray::ArrayView2<'_, bool>,
    (data, (k, n, a)): (&[f64], (usize, usize, usize)),
    range: std::ops::Range<usize>,
    (in_cap, out_cap): (usize, usize),
    scratch: &mut Scratch,
) -> BlockFit {
    let len = range.len();
    let Scratch { ins, outs, counts } = scratch;
    // Walk the block model by model (each model's row is contiguous in the K x N x A array)
    // and append each value to its sample's IN or OUT list, without branches: membership is
    // a coin flip per model, so branches would mispredict half the time. A list past its cap
    // keeps overwriting its last slot, which is never read.
    // ins[(r * a + q) * (k + 1) + j]: the j-th IN value of sample start + r, query q.
    let stride = k + 1;
    ins.resize(len * a * stride, 0.0);
    outs.resize(len * a * stride, 0.0);
    counts.clear();
    counts.resize(len * a, (0usize, 0usize));
    let mut all_finite = true;
    for m in 0..k {
        let offset = (m * n + range.start) * a;
        let row = &data[offset..offset + len * a];
        let keep_row = keep.row(m);
        let flags = &keep_row.as_slice().expect("standard layout")[range.clone()];
        for (j, (&v, (ni, no))) in row.iter().zip(counts.iter_mut()).enumerate() {
            let f = flags[j / a];
            ins[j * stride + *ni] = v;
            outs[j * stride + *no] = v;
            *ni += usize::from(f & (*ni < in_cap));
            *no += usize::from(!f & (*no < out_cap));
        }
        all_finite &= row.iter().all(|v| v.is_finite());
    }
    let mut fit = BlockFit {
        all_finite,
        defined: Vec::with_capacity(len),
        params: Vec::with_capacity(len * a),
        spread_in: Spread::default(),
        spread_out: Spread::default(),
    };
    for r in 0..len {
        let (n_in, n_out) = counts[r * a];
        fit.defined
            .push(n_out > 0 && (n_in > 0 || !config.is_online()));
        for q in 0..a {
            let j = r * a + q;
            let (ni, no) = counts[j];
            let side_in = &mut ins[j * stride..j * stride + ni];
            let (mu_in, sd_in, mean_in) = fit_side(side_in, config.center, &mut fit.spread_in);
            let side_out = &mut outs[j * stride..j * stride + no];
            let (mu_out, sd_out, mean_out) = fit_side(side_out, config.center, &mut fit.spread_out);
            fit.params.push(Params {
                mu_in,
                sd_in,
                mu_out,
                sd_out,
                n_in: ni,
                n_out: no,
                mean_in,
                mean_out,
            });
        }
    }
    fit
}

/// Centre, population standard deviation and mean of one side (see [`center_and_std`]), also
/// added to the running global spread.
fn fit_side(values: &mut [f64], center: Center, spread: &mut Spread) -> (f64, f64, f64) {
    let (c, std, mean) = center_and_std(values, center);
    spread.add_group(values.len(), mean, std);
    (c, std, mean)
}

/// Centre (median as numpy: the mean of the two middle values for an even count), population
/// standard deviation (`np.std`, ddof 0) and mean; NaN for no values. Reorders `values`.
fn center_and_std(values: &mut [f64], center: Center) -> (f64, f64, f64) {
    let n = values.len();
    if n == 0 {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    let mean = values.iter().sum::<f64>() / n as f64;
    let std = (values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n as f64).sqrt();
    let c = match center {
        Center::Mean => mean,
        Center::Median => median(values).unwrap_or(f64::NAN),
    };
    (c, std, mean)
}

/// LiRA fitted to shadow observations: per sample and query, the IN and OUT Gaussians.
#[derive(Debug, Clone)]
pub struct FittedLira {
    config: LiraConfig,
    queries: usize,
    /// Centre of the IN Gaussian (N x A); NaN where a sample has no IN model.
    pub mu_in: Array2<f64>,
    /// Standard deviation of the IN Gaussian (N x A).
    pub sd_in: Array2<f64>,
    /// Centre of the OUT Gaussian (N x A).
    pub mu_out: Array2<f64>,
    /// Standard deviation of the OUT Gaussian (N x A).
    pub sd_out: Array2<f64>,
    /// With [`Variance::Prior`], the IN and OUT posterior predictives' degrees of freedom (N x
    /// A each; the centres and scales above are theirs).
    pub dof: Option<(Array2<f64>, Array2<f64>)>,
    /// With [`Variance::Prior`], the IN and OUT priors fitted across the samples (the IN one
    /// `None` offline).
    pub priors: Option<(Option<VariancePrior>, VariancePrior)>,
    /// With [`OutSide::RightByChance`], the lucky guesses' distribution and weights.
    pub lucky: Option<LuckyGuesses>,
    defined: Vec<bool>,
}

/// The right-by-chance component of [`OutSide::RightByChance`].
#[derive(Debug, Clone, PartialEq)]
pub struct LuckyGuesses {
    /// Centre of the normal of the lucky guesses' `phi` (all samples and queries).
    pub mean: f64,
    /// Its (population) standard deviation.
    pub sd: f64,
    /// `pi` per sample and query (N x A): the posterior mean of the lucky rate where the OUT
    /// models are right at most half of the time, 0 elsewhere.
    pub weight: Array2<f64>,
}

impl LuckyGuesses {
    /// Counts each sample's OUT observations and those with `phi > 0`, and fits the normal to
    /// the latter over the samples where they are at most half (where being right is luck, not
    /// what the OUT models usually do: a typical sample's confident OUT answers would describe
    /// a member's `phi` instead); an error if fewer than two such observations exist.
    fn fit(keep: &KeepMatrix, shadow: ArrayView3<'_, f64>) -> Result<Self> {
        let (k, n, a) = shadow.dim();
        let mut counts = Array2::<(u32, u32)>::from_elem((n, a), (0, 0));
        for m in 0..k {
            for i in (0..n).filter(|&i| !keep.get(m, i)) {
                for q in 0..a {
                    let c = &mut counts[[i, q]];
                    c.0 += 1;
                    c.1 += u32::from(shadow[[m, i, q]] > 0.0);
                }
            }
        }
        let (mut count, mut sum, mut squares) = (0usize, 0f64, 0f64);
        for m in 0..k {
            for i in (0..n).filter(|&i| !keep.get(m, i)) {
                for q in 0..a {
                    let (n_out, right) = counts[[i, q]];
                    let x = shadow[[m, i, q]];
                    if x > 0.0 && 2 * right <= n_out {
                        count += 1;
                        sum += x;
                        squares += x * x;
                    }
                }
            }
        }
        if count < 2 {
            return Err(invalid(
                "out_side",
                format!(
                    "{count} lucky OUT observation(s) (phi > 0 on a sample whose OUT models are mostly wrong): the right-by-chance component needs at least two to fit"
                ),
            ));
        }
        let mean = sum / count as f64;
        let sd = (squares / count as f64 - mean * mean).max(0.0).sqrt();
        if sd == 0.0 {
            return Err(invalid(
                "out_side",
                format!(
                    "the {count} lucky OUT observations all have phi = {mean}: a right-by-chance component without spread would mark one value, not lucky guesses"
                ),
            ));
        }
        // Where the OUT models are mostly right, being right is not luck: plain OUT there.
        let weight = counts.mapv(|(n_out, right)| {
            if 2 * right <= n_out {
                (f64::from(right) + 0.5) / (f64::from(n_out) + 1.0)
            } else {
                0.0
            }
        });
        Ok(LuckyGuesses { mean, sd, weight })
    }
}

impl FittedLira {
    /// The settings it was fitted with.
    pub fn config(&self) -> &LiraConfig {
        &self.config
    }

    /// Whether sample `i` can be scored (online: it has IN and OUT models; offline: OUT models).
    pub fn is_defined(&self, i: usize) -> bool {
        self.defined[i]
    }

    /// Replaces each side's centre and spread by its posterior predictive under the prior
    /// fitted across `sides` (every sample and query).
    fn fit_priors(&mut self, sides: &[Params]) -> Result<()> {
        let online = self.config.is_online();
        let need = "the variance prior needs two samples with at least two models on each side";
        let out = VariancePrior::fit(sides.iter().map(|p| (p.n_out, p.sd_out * p.sd_out)))
            .ok_or_else(|| invalid("variance", format!("{need} (OUT)")))?;
        let prior_in = if online {
            Some(
                VariancePrior::fit(sides.iter().map(|p| (p.n_in, p.sd_in * p.sd_in)))
                    .ok_or_else(|| invalid("variance", format!("{need} (IN)")))?,
            )
        } else {
            None
        };
        let shape = self.mu_in.dim();
        let (mut dof_in, mut dof_out) = (
            Array2::from_elem(shape, f64::NAN),
            Array2::from_elem(shape, f64::NAN),
        );
        let a = self.queries;
        for (j, p) in sides.iter().enumerate() {
            let at = [j / a, j % a];
            if p.n_out > 0 {
                let (mu, sd, dof) = out.predictive(p.n_out, p.mean_out, p.sd_out * p.sd_out);
                (self.mu_out[at], self.sd_out[at], dof_out[at]) = (mu, sd, dof);
            }
            if let (Some(prior), true) = (prior_in, p.n_in > 0) {
                let (mu, sd, dof) = prior.predictive(p.n_in, p.mean_in, p.sd_in * p.sd_in);
                (self.mu_in[at], self.sd_in[at], dof_in[at]) = (mu, sd, dof);
            }
        }
        self.dof = Some((dof_in, dof_out));
        self.priors = Some((prior_in, out));
        Ok(())
    }

    fn score_one(&self, i: usize, q: usize, x: f64) -> f64 {
        // The IN log-density and the OUT log-density and log-survival at x, of the plain sides.
        let (log_in, log_out, log_out_sf) = if let Some((dof_in, dof_out)) = &self.dof {
            let (mu_out, sd_out, nu_out) =
                (self.mu_out[[i, q]], self.sd_out[[i, q]], dof_out[[i, q]]);
            (
                t_logpdf(x, self.mu_in[[i, q]], self.sd_in[[i, q]], dof_in[[i, q]]),
                t_logpdf(x, mu_out, sd_out, nu_out),
                t_logsf((x - mu_out) / sd_out, nu_out),
            )
        } else {
            let (mu_out, sd_out) = (self.mu_out[[i, q]], self.sd_out[[i, q]] + STD_EPSILON);
            (
                norm_logpdf(x, self.mu_in[[i, q]], self.sd_in[[i, q]] + STD_EPSILON),
                norm_logpdf(x, mu_out, sd_out),
                norm_logsf((x - mu_out) / sd_out),
            )
        };
        // With lucky guesses, OUT is the mixture (1 - pi) plain + pi lucky.
        let (log_out, log_out_sf) = match &self.lucky {
            None => (log_out, log_out_sf),
            Some(lucky) => {
                let pi = lucky.weight[[i, q]];
                let sd = lucky.sd + STD_EPSILON;
                let mix =
                    |plain: f64, lucky: f64| log_add((1.0 - pi).ln() + plain, pi.ln() + lucky);
                (
                    mix(log_out, norm_logpdf(x, lucky.mean, sd)),
                    mix(log_out_sf, norm_logsf((x - lucky.mean) / sd)),
                )
            }
        };
        match self.config.mode {
            LiraMode::Online => log_in - log_out,
            LiraMode::Offline(OfflineScore::LogDensity) => -log_out,
            LiraMode::Offline(OfflineScore::Tail) => -log_out_sf,
        }
    }
}

/// `ln(e^a + e^b)` without overflow.
fn log_add(a: f64, b: f64) -> f64 {
    let (hi, lo) = if a >= b { (a, b) } else { (b, a) };
    if hi == f64::NEG_INFINITY {
        return hi;
    }
    hi + (lo - hi).exp().ln_1p()
}

impl FittedTest for FittedLira {
    fn samples(&self) -> usize {
        self.defined.len()
    }

    fn score(&self, target: ArrayView2<'_, f64>) -> Result<Array1<f64>> {
        check_target(self.samples(), self.queries, &target)?;
        let scores: Vec<f64> = (0..self.samples())
            .into_par_iter()
            .map(|i| {
                if !self.defined[i] {
                    return f64::NAN;
                }
                (0..self.queries)
                    .map(|q| self.score_one(i, q, target[[i, q]]))
                    .sum::<f64>()
                    / self.queries as f64
            })
            .collect();
        Ok(Array1::from(scores))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array3, array};

    #[test]
    fn median_matches_numpy() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&mut [5.0]), Some(5.0));
        assert_eq!(median(&mut []), None);
    }

    #[test]
    fn online_scores_by_hand() {
        // Two models: model 0 trains on sample 0, model 1 on sample 1 (K = 2, N = 2, A = 1).
        let keep = KeepMatrix::from_array(array![[true, false], [false, true]]).unwrap();
        let shadow = Array3::from_shape_vec((2, 2, 1), vec![2.0, 0.0, 0.5, 3.0]).unwrap();
        let fitted = LiraConfig::online().fit(&keep, shadow.view()).unwrap();
        // Sample 0: IN {2.0}, OUT {0.5}; one model per side: sd 0 + epsilon.
        assert_eq!((fitted.mu_in[[0, 0]], fitted.mu_out[[0, 0]]), (2.0, 0.5));
        let global = LiraConfig::online()
            .with_global_variance(true)
            .fit(&keep, shadow.view())
            .unwrap();
        // Pooled within-sample spread is 0 here too (one value per side and sample).
        assert_eq!(global.sd_in[[0, 0]], 0.0);
        // Reference compatibility: np.std of all IN values {2.0, 3.0} = 0.5, for both sides.
        let compat = LiraConfig::online()
            .with_global_variance(true)
            .reference_compatible(true)
            .fit(&keep, shadow.view())
            .unwrap();
        assert_eq!((compat.sd_in[[0, 0]], compat.sd_out[[0, 0]]), (0.5, 0.5));
        let s = compat.score(array![[2.0], [0.0]].view()).unwrap();
        let expected0 = norm_logpdf(2.0, 2.0, 0.5) - norm_logpdf(2.0, 0.5, 0.5);
        assert!((s[0] - expected0).abs() < 1e-12);
        assert!(s[0] > 0.0 && s[1] < 0.0);
    }

    /// The right-by-chance OUT side against a direct computation with statrs' `Normal`: the
    /// lucky normal, the weights and the scores of all three modes.
    #[test]
    fn right_by_chance_by_hand() {
        use statrs::distribution::{Continuous, ContinuousCDF, Normal};
        // 8 models, 3 samples; some OUT observations are lucky (phi > 0), most are not.
        let keep = KeepMatrix::balanced(8, 3, 5).unwrap();
        let shadow = Array3::from_shape_fn((8, 3, 1), |(k, i, _)| {
            if keep.get(k, i) {
                4.0 + 0.3 * ((k + i) % 3) as f64
            } else if (k + 2 * i) % 5 == 0 {
                1.0 + 0.7 * i as f64 // a lucky guess
            } else {
                -3.0 + 0.2 * k as f64
            }
        });
        let outs = |i: usize| -> Vec<f64> {
            (0..8)
                .filter(|&k| !keep.get(k, i))
                .map(|k| shadow[[k, i, 0]])
                .collect()
        };
        // Direct: the lucky normal over the OUT observations above 0 of samples whose OUT
        // observations are at most half above 0; the Jeffreys rates.
        let lucky: Vec<f64> = (0..3)
            .map(outs)
            .filter(|v| 2 * v.iter().filter(|&&x| x > 0.0).count() <= v.len())
            .flat_map(|v| v.into_iter().filter(|&x| x > 0.0))
            .collect();
        assert!(lucky.len() >= 2);
        let mean = lucky.iter().sum::<f64>() / lucky.len() as f64;
        let sd =
            (lucky.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / lucky.len() as f64).sqrt();
        let lucky_normal = Normal::new(mean, sd).unwrap();
        let plain = LiraConfig::online().fit(&keep, shadow.view()).unwrap();
        for mode in [
            LiraConfig::online(),
            LiraConfig::offline(),
            LiraConfig::offline_log_density(),
        ] {
            let fitted = mode
                .with_out_side(OutSide::RightByChance)
                .fit(&keep, shadow.view())
                .unwrap();
            let got = fitted.lucky.as_ref().unwrap();
            assert!((got.mean - mean).abs() < 1e-12 && (got.sd - sd).abs() < 1e-12);
            let x = 2.0;
            let scores = fitted.score(array![[x], [x], [x]].view()).unwrap();
            for i in 0..3 {
                let v = outs(i);
                let right = v.iter().filter(|&&o| o > 0.0).count() as f64;
                let pi = if 2.0 * right <= v.len() as f64 {
                    (right + 0.5) / (v.len() as f64 + 1.0)
                } else {
                    0.0
                };
                assert!((got.weight[[i, 0]] - pi).abs() < 1e-15);
                let out = Normal::new(plain.mu_out[[i, 0]], plain.sd_out[[i, 0]]).unwrap();
                let inn = Normal::new(plain.mu_in[[i, 0]], plain.sd_in[[i, 0]]).unwrap();
                let density = (1.0 - pi) * out.pdf(x) + pi * lucky_normal.pdf(x);
                let survival = (1.0 - pi) * out.sf(x) + pi * lucky_normal.sf(x);
                let expected = match mode.mode {
                    LiraMode::Online => inn.ln_pdf(x) - density.ln(),
                    LiraMode::Offline(OfflineScore::Tail) => -survival.ln(),
                    LiraMode::Offline(OfflineScore::LogDensity) => -density.ln(),
                };
                assert!(
                    (scores[i] - expected).abs() < 1e-9 * expected.abs().max(1.0),
                    "{:?} sample {i}: {} vs {expected}",
                    mode.mode,
                    scores[i]
                );
            }
        }
        // The plain score of a lucky-looking x on a sample whose OUT models were all wrong is
        // far higher than the mixture's: the mixture caps it.
        let x = 2.0;
        let mixture = LiraConfig::online()
            .with_out_side(OutSide::RightByChance)
            .fit(&keep, shadow.view())
            .unwrap();
        let i = (0..3)
            .find(|&i| outs(i).iter().all(|&o| o <= 0.0))
            .expect("a sample without lucky OUT observations");
        let (p, m) = (
            plain.score(array![[x], [x], [x]].view()).unwrap()[i],
            mixture.score(array![[x], [x], [x]].view()).unwrap()[i],
        );
        assert!(p > m + 5.0, "plain {p}, mixture {m}");
        // A sample whose OUT models are all right keeps the plain OUT side (pi = 0).
        let usual = Array3::from_shape_fn((8, 3, 1), |(k, i, q)| {
            if i == 2 && !keep.get(k, i) {
                1.5 + 0.1 * k as f64
            } else {
                shadow[[k, i, q]]
            }
        });
        let targets = array![[x], [x], [x]];
        let with = LiraConfig::online()
            .with_out_side(OutSide::RightByChance)
            .fit(&keep, usual.view())
            .unwrap();
        assert_eq!(with.lucky.as_ref().unwrap().weight[[2, 0]], 0.0);
        let without = LiraConfig::online().fit(&keep, usual.view()).unwrap();
        assert_eq!(
            with.score(targets.view()).unwrap()[2],
            without.score(targets.view()).unwrap()[2]
        );
        // Reference compatibility, a run without lucky guesses and lucky guesses without spread
        // are refused by name.
        let flat = shadow.mapv(|v| if v > 0.0 && v < 3.0 { 1.0 } else { v });
        let err = LiraConfig::online()
            .with_out_side(OutSide::RightByChance)
            .fit(&keep, flat.view())
            .unwrap_err();
        assert!(err.to_string().contains("spread"), "{err}");
        let err = LiraConfig::online()
            .with_out_side(OutSide::RightByChance)
            .reference_compatible(true)
            .fit(&keep, shadow.view())
            .unwrap_err();
        assert!(err.to_string().contains("out_side"), "{err}");
        let unlucky = shadow.mapv(|v| if v > 0.0 && v < 3.0 { -1.0 } else { v });
        let err = LiraConfig::online()
            .with_out_side(OutSide::RightByChance)
            .fit(&keep, unlucky.view())
            .unwrap_err();
        assert!(err.to_string().contains("lucky"), "{err}");
    }

    /// The variance prior against a direct computation: the moments of the samples' unbiased
    /// variances give the inverse-gamma prior, each side's posterior predictive is the Student t
    /// of the conjugate update, and the online score is the difference of the two sides' t
    /// log-densities (statrs' `StudentsT`, an implementation independent of memia's).
    #[test]
    fn variance_prior_by_hand() {
        use statrs::distribution::{Continuous, StudentsT};
        // 6 models, 4 samples; sample spreads differ (0.5 to 3 times a base pattern).
        let keep = KeepMatrix::balanced(6, 4, 3).unwrap();
        let pattern = [0.3, -1.1, 0.8, 1.7, -0.4, -0.9];
        let spread = [0.2, 1.0, 3.0, 8.0];
        let shadow = Array3::from_shape_fn((6, 4, 1), |(k, i, _)| {
            spread[i] * pattern[(k + i) % 6] + if keep.get(k, i) { 4.0 } else { 0.0 }
        });
        let fitted = LiraConfig::online()
            .with_variance(Variance::Prior)
            .fit(&keep, shadow.view())
            .unwrap();
        let side = |i: usize, member: bool| -> Vec<f64> {
            (0..6)
                .filter(|&k| keep.get(k, i) == member)
                .map(|k| shadow[[k, i, 0]])
                .collect()
        };
        for member in [true, false] {
            // Direct: unbiased variances, their moments, the prior.
            let (mut m, mut e4) = (0.0, 0.0);
            for i in 0..4 {
                let v = side(i, member);
                let n = v.len() as f64;
                let mean = v.iter().sum::<f64>() / n;
                let s2 = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
                m += s2 / 4.0;
                e4 += s2 * s2 / (1.0 + 2.0 / (n - 1.0)) / 4.0;
            }
            let r = e4 / (m * m);
            assert!(r > 1.0, "the spreads differ: a finite prior");
            let alpha0 = (2.0 * r - 1.0) / (r - 1.0);
            let beta0 = m * (alpha0 - 1.0);
            let (prior_in, prior_out) = fitted.priors.unwrap();
            let prior = if member { prior_in.unwrap() } else { prior_out };
            assert!(
                (prior.shape - alpha0).abs() < 1e-12 * alpha0,
                "{prior:?} vs {alpha0}"
            );
            assert!((prior.scale - beta0).abs() < 1e-12 * beta0);
        }
        let x = 2.5;
        for i in 0..4 {
            let t = |member: bool| {
                let v = side(i, member);
                let n = v.len() as f64;
                let mean = v.iter().sum::<f64>() / n;
                let ss = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>();
                let (prior_in, prior_out) = fitted.priors.unwrap();
                let p = if member { prior_in.unwrap() } else { prior_out };
                let (a, b) = (p.shape + 0.5 * (n - 1.0), p.scale + 0.5 * ss);
                StudentsT::new(mean, (b / a * (1.0 + 1.0 / n)).sqrt(), 2.0 * a).unwrap()
            };
            let want = t(true).ln_pdf(x) - t(false).ln_pdf(x);
            let got = fitted.score(array![[x], [x], [x], [x]].view()).unwrap()[i];
            assert!((got - want).abs() < 1e-10, "sample {i}: {got} vs {want}");
        }
        // Offline with the tail score: -log P[T_out > x].
        let off = LiraConfig::offline()
            .with_variance(Variance::Prior)
            .fit(&keep, shadow.view())
            .unwrap();
        assert!(off.priors.unwrap().0.is_none());
        let scores = off.score(array![[x], [x], [x], [x]].view()).unwrap();
        assert!(scores.iter().all(|s| s.is_finite() && *s > 0.0), "{scores}");
        // No prior from one model a side, and none in reference compatibility.
        let two = KeepMatrix::balanced(2, 4, 0).unwrap();
        let err = LiraConfig::online()
            .with_variance(Variance::Prior)
            .fit(&two, Array3::zeros((2, 4, 1)).view())
            .unwrap_err();
        assert!(err.to_string().contains("at least two models"), "{err}");
        assert!(
            LiraConfig::online()
                .with_variance(Variance::Prior)
                .reference_compatible(true)
                .fit(&keep, shadow.view())
                .is_err()
        );
    }

    /// With few shadow models and spreads that differ between samples, the prior beats both
    /// the per-sample variances (too noisy) and the global one (wrong for most samples): AUROC
    /// over targets on a simulated population, 8 shadow models.
    #[test]
    fn variance_prior_helps_with_few_models() {
        use memia_core::rng::stream_rng;
        use rand::RngExt;
        let (k, n) = (9, 2000);
        let keep = KeepMatrix::bernoulli(k, n, 0.5, 1).unwrap();
        let mut rng = stream_rng(7, 0);
        // Per sample: an OUT centre, a gap, and a spread from 0.2 to 3 (log-uniform).
        let truth: Vec<(f64, f64, f64)> = (0..n)
            .map(|_| {
                let sd = (rng.random::<f64>() * (15f64).ln()).exp() * 0.2;
                (rng.random::<f64>() * 4.0 - 2.0, 1.5 * sd.sqrt(), sd)
            })
            .collect();
        let obs = Array3::from_shape_fn((k, n, 1), |(m, i, _)| {
            let (c, gap, sd) = truth[i];
            let z: f64 = {
                let mut r = stream_rng(1000 + m as u64, i as u64);
                r.sample(rand_distr::StandardNormal)
            };
            c + if keep.get(m, i) { gap } else { 0.0 } + sd * z
        });
        // Model 8 is the target, the others the shadows.
        let shadows: Vec<usize> = (0..8).collect();
        let sub = keep.select_models(&shadows).unwrap();
        let shadow = obs.slice(ndarray::s![..8, .., ..]);
        let target = obs.slice(ndarray::s![8, .., ..]);
        let members: Vec<bool> = (0..n).map(|i| keep.get(8, i)).collect();
        let auc = |variance: Variance| {
            let fitted = LiraConfig::online()
                .with_variance(variance)
                .fit(&sub, shadow)
                .unwrap();
            let scores = fitted.score(target).unwrap();
            let (s, m): (Vec<f64>, Vec<bool>) = scores
                .iter()
                .zip(&members)
                .filter(|(s, _)| s.is_finite())
                .map(|(&s, &m)| (s, m))
                .unzip();
            memia_metrics::auroc(&s, &m, memia_metrics::Direction::HigherIsMember).unwrap()
        };
        let (per, global, prior) = (
            auc(Variance::PerExample),
            auc(Variance::Global),
            auc(Variance::Prior),
        );
        println!(
            "AUROC with 8 shadow models: per-sample {per:.4}, global {global:.4}, prior {prior:.4}"
        );
        assert!(prior > per + 0.01, "prior {prior} against per-sample {per}");
        assert!(
            prior > global + 0.005,
            "prior {prior} against global {global}"
        );
    }

    #[test]
    fn undefined_samples_score_nan() {
        let keep = KeepMatrix::from_array(array![[true, false], [true, true]]).unwrap();
        let shadow = Array3::<f64>::zeros((2, 2, 1));
        let fitted = LiraConfig::online().fit(&keep, shadow.view()).unwrap();
        assert!(!fitted.is_defined(0) && fitted.is_defined(1));
        let s = fitted.score(Array2::zeros((2, 1)).view()).unwrap();
        assert!(s[0].is_nan() && s[1].is_finite());
        let err = LiraConfig::online()
            .reference_compatible(true)
            .fit(&keep, shadow.view())
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("smallest IN (1) and OUT (0) counts"),
            "{err}"
        );
        // Offline only needs OUT models: sample 0 has none.
        let off = LiraConfig::offline().fit(&keep, shadow.view()).unwrap();
        assert!(!off.is_defined(0));
    }

    #[test]
    fn bad_shapes_and_values() {
        let keep = KeepMatrix::balanced(4, 3, 0).unwrap();
        let err = LiraConfig::online()
            .fit(&keep, Array3::zeros((4, 2, 1)).view())
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("shadow observations: shape [4, 2, 1]"),
            "{err}"
        );
        let mut nan = Array3::<f64>::zeros((4, 3, 1));
        nan[[1, 2, 0]] = f64::NAN;
        let err = LiraConfig::online().fit(&keep, nan.view()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "shadow observations[1, 2, 0] = NaN: observations must be finite"
        );
        let fitted = LiraConfig::online()
            .fit(&keep, Array3::zeros((4, 3, 1)).view())
            .unwrap();
        assert!(fitted.score(Array2::zeros((3, 2)).view()).is_err());
        assert!(
            fitted
                .score(array![[0.0], [f64::INFINITY], [0.0]].view())
                .is_err()
        );
    }
}
