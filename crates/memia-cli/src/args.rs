//! The command line's argument types: the flags, their defaults and their help text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Memorization-aware membership inference: plan and train shadow models, estimate
/// memorization, attack, measure and report.
#[derive(Debug, Parser)]
#[command(name = "memia", version, propagate_version = true, after_help = EXAMPLES)]
pub(crate) struct Cli {
    /// No progress bars or status lines (errors are still printed).
    #[arg(long, short, global = true)]
    pub(crate) quiet: bool,
    /// Print what the command found as one JSON document on standard output (memorize,
    /// attack, metrics, report, run, audit, status, import, import-lira; the schema, with its
    /// version, is in docs/file-formats.md).
    #[arg(long, global = true)]
    pub(crate) json: bool,
    #[command(subcommand)]
    pub(crate) command: Command,
}

const EXAMPLES: &str = "Examples:
  memia run examples/configs/digits.toml             plan, train and report in one go
  memia plan --dataset digits --models 16 -o run     plan 16 MLPs on the embedded digits
  memia train run --models 0..8                      train a shard of the plan
  memia report run -o report                         write report/index.html

The configuration format and the files are described in docs/cli.md.";

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Plan a run: build the pool, draw the keep matrix, fix the model and training settings.
    ///
    /// Settings come from a configuration file (--config) or the defaults (the embedded
    /// digits, 16 MLPs with 128 hidden units, balanced halves), and the flags override them.
    /// Planning into a directory that holds the same plan is a no-op; one that holds another
    /// plan is refused.
    Plan(PlanArgs),
    /// Train a run's models (all, or a shard with --models). Finished models are skipped, so an
    /// interrupted run resumes where it stopped; several processes may train disjoint shards.
    Train(TrainArgs),
    /// Estimate every sample's memorization (Feldman-Zhang) with standard errors.
    Memorize(MemorizeArgs),
    /// Attack a target model with the run's other models as shadow models, or an external
    /// target's logits with all of them.
    Attack(AttackArgs),
    /// Score an attack: AUROC, TPR at 1e-5 ... 1e-1 FPR, balanced accuracy and advantage as
    /// JSON on standard output.
    Metrics(MetricsArgs),
    /// Import a LiRA reference run (experiment-*/keep.npy, experiment-*/logits/*.npy,
    /// y_train.npy) as a memia run directory.
    ImportLira(ImportLiraArgs),
    /// Export a run's pool for training elsewhere: `x` (N x sample shape, float32, as memia's
    /// models see them), `y` (N int64), `keep` (K x N bool) and one `group_<name>` index array
    /// per group (e.g. the canaries), in one `.npz`.
    ExportPool(ExportPoolArgs),
    /// Import models trained elsewhere in the simplest layout: a K x N keep matrix, the models'
    /// logits on the N pool samples and the labels, as a memia run directory.
    Import(ImportArgs),
    /// Audit a trained run and write the report: summary.json, samples.csv, SVG plots and
    /// index.html.
    Report(ReportArgs),
    /// Everything from a configuration file: plan, train, report.
    Run(RunArgs),
    /// A sequential audit: train shadow models in rounds (1, 2, 4, ...), decide the
    /// high-memorization candidates' membership in the target after each, and stop when the
    /// decisions' expected error rate is at most --delta (or the budget is spent). Resumable:
    /// trained models stay in the run.
    Audit(SequentialArgs),
    /// Write (and with --submit, submit) a Slurm job array that trains the run's unfinished
    /// models, one array task per shard of --per-task models, and a report job that runs when
    /// it succeeds. Resubmitting after failures or preemption schedules only what is missing.
    Slurm(SlurmArgs),
    /// Where a run stands: finished and missing models (as ranges for --models) and who
    /// produced each finished model.
    Status(StatusArgs),
    /// Audit a run's differential-privacy claim with its canaries: lower bounds on epsilon from
    /// one run (Steinke et al. 2023) and from many runs, at a stated confidence, against the
    /// claim (memia's accountant for a run trained with [training] dp, or --epsilon and
    /// --delta for models trained elsewhere). A bound above the claim refutes it.
    DpAudit(DpAuditArgs),
}

#[derive(Debug, Args)]
pub(crate) struct DpAuditArgs {
    /// The run directory (its canaries: the `canaries` sample set of pool.json).
    pub(crate) run: PathBuf,
    /// The claimed epsilon (default: memia's RDP accountant for the run's [training] dp).
    #[arg(long, requires = "delta")]
    pub(crate) epsilon: Option<f64>,
    /// The claimed delta.
    #[arg(long, requires = "epsilon")]
    pub(crate) delta: Option<f64>,
    /// Canaries the one-run audit guesses "in", and as many "out" (default: a tenth of the
    /// canaries). Fix it before seeing the results: choosing it on them voids the confidence.
    #[arg(long)]
    pub(crate) guesses: Option<usize>,
    /// The model the one-run audit attacks.
    #[arg(long, default_value_t = 0)]
    pub(crate) model: usize,
    /// Probability that each bound holds.
    #[arg(long, default_value_t = 0.95)]
    pub(crate) confidence: f64,
    /// Write dp-audit.json, dp-region.svg (the canaries' ROC against the DP region) and
    /// dp-audit.html into this directory.
    #[arg(long, short)]
    pub(crate) output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct SequentialArgs {
    /// The run directory: its plan's models are the budget (planned runs train them as the
    /// rounds need; imported runs use the models they have).
    pub(crate) run: PathBuf,
    /// The target: a model of the run (default: its last model).
    #[arg(long, conflicts_with = "target_logits")]
    pub(crate) target: Option<usize>,
    /// The target: a model trained elsewhere, its logits on the pool (N x A x C or N x C).
    #[arg(long)]
    pub(crate) target_logits: Option<PathBuf>,
    /// With --target-logits: which samples it trained on (N bool or 0/1), to report the error
    /// rate actually made.
    #[arg(long, requires = "target_logits")]
    pub(crate) members: Option<PathBuf>,
    /// Stop when the decisions' expected error rate is at most this.
    #[arg(long, default_value_t = 0.01)]
    pub(crate) delta: f64,
    /// Candidates: memorization (from the shadow models so far) at least this (the default,
    /// 0.8, is every command's).
    #[arg(long, default_value_t = memia_attacks::DEFAULT_MEMORIZATION_THRESHOLD)]
    pub(crate) threshold: f64,
    /// Most shadow models to use (default: all the run can give).
    #[arg(long)]
    pub(crate) budget: Option<usize>,
    #[command(flatten)]
    pub(crate) device: DeviceArgs,
    /// The report: every round, why it stopped, each candidate's decision and error (JSON).
    #[arg(long, short)]
    pub(crate) output: PathBuf,
}

#[derive(Debug, Args)]
pub(crate) struct SlurmArgs {
    /// The run directory (planned by `memia plan`; on a file system the cluster's nodes share).
    pub(crate) run: PathBuf,
    /// Models per array task.
    #[arg(long, default_value_t = 8)]
    pub(crate) per_task: usize,
    /// The partition (`#SBATCH --partition`).
    #[arg(long)]
    pub(crate) partition: Option<String>,
    /// Generic resources per task, e.g. `gpu:1` (`#SBATCH --gres`).
    #[arg(long)]
    pub(crate) gres: Option<String>,
    /// Wall-time limit per task, e.g. `02:00:00` (`#SBATCH --time`).
    #[arg(long)]
    pub(crate) time: Option<String>,
    /// Memory per node, e.g. `16G` (`#SBATCH --mem`).
    #[arg(long)]
    pub(crate) mem: Option<String>,
    /// CPUs per task (`#SBATCH --cpus-per-task`).
    #[arg(long)]
    pub(crate) cpus_per_task: Option<usize>,
    /// At most this many array tasks at once (`--array=0-N%M`).
    #[arg(long)]
    pub(crate) throttle: Option<usize>,
    /// Extra `#SBATCH` lines, e.g. `--sbatch "--account=lab"` (repeatable).
    #[arg(long, allow_hyphen_values = true)]
    pub(crate) sbatch: Vec<String>,
    /// The job name.
    #[arg(long, default_value = "memia-train")]
    pub(crate) job_name: String,
    /// The memia executable the tasks run (default: this one).
    #[arg(long)]
    pub(crate) memia: Option<PathBuf>,
    /// Where to write the script (default: RUN/slurm/train.sbatch).
    #[arg(long, short)]
    pub(crate) output: Option<PathBuf>,
    /// Submit it with sbatch, and a report job after it (`--dependency=afterok`).
    #[arg(long)]
    pub(crate) submit: bool,
    #[command(flatten)]
    pub(crate) device: DeviceArgs,
}

#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    /// The run directory.
    pub(crate) run: PathBuf,
}

#[derive(Debug, Args)]
pub(crate) struct PlanArgs {
    /// Configuration file (TOML); without it, the defaults on the embedded digits.
    #[arg(long, short)]
    pub(crate) config: Option<PathBuf>,
    /// The run directory to create.
    #[arg(long, short)]
    pub(crate) output: PathBuf,
    /// Data set: `digits`, `idx:IMAGES,LABELS`, `cifar10:FILE[,FILE...]` (binary batches, raw or
    /// gzipped) or `npz:PATH` (keys x and y).
    #[arg(long)]
    pub(crate) dataset: Option<String>,
    /// Use a random subset of this many in-distribution samples.
    #[arg(long)]
    pub(crate) samples: Option<usize>,
    /// Number of shadow models K.
    #[arg(long)]
    pub(crate) models: Option<usize>,
    /// Inclusion scheme: `balanced:RATIO`, `bernoulli:P` or `fixed:RATIO`.
    #[arg(long)]
    pub(crate) scheme: Option<String>,
    /// Architecture: `logistic`, `mlp:W1,W2,...`, `cnn` (LeNet-style) or `resnet` (small).
    #[arg(long)]
    pub(crate) model: Option<String>,
    /// Training epochs.
    #[arg(long)]
    pub(crate) epochs: Option<usize>,
    /// Master seed.
    #[arg(long)]
    pub(crate) seed: Option<u64>,
}

#[derive(Debug, Args)]
pub(crate) struct DeviceArgs {
    /// Burn device: `cpu` (Flex), `ndarray`, `wgpu`, `wgpu-cpu` (the last three need the
    /// matching cargo feature).
    #[arg(long)]
    pub(crate) device: Option<String>,
    /// Models trained together in one batched pass (at least 1).
    #[arg(long, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub(crate) group_size: Option<usize>,
    /// `auto` (memia's fused CPU kernels for MLPs and CNNs on `cpu`, Burn otherwise) or `burn` (Burn's
    /// operations always).
    #[arg(long)]
    pub(crate) engine: Option<memia_models::Engine>,
}

impl DeviceArgs {
    /// As the library takes it.
    pub(crate) fn placement(&self) -> memia_audit::trainer::Placement {
        memia_audit::trainer::Placement {
            device: self.device.clone(),
            engine: self.engine,
            group_size: self.group_size,
        }
    }
}

#[derive(Debug, Args)]
pub(crate) struct TrainArgs {
    /// The run directory.
    pub(crate) run: PathBuf,
    /// A shard: model indices `A..B` (end exclusive); default all.
    #[arg(long)]
    pub(crate) models: Option<String>,
    #[command(flatten)]
    pub(crate) device: DeviceArgs,
    /// Train memia's models into a run that holds models memia's trainer did not produce (logits
    /// copied in, or made by another trainer), mixing model families in one audit.
    #[arg(long)]
    pub(crate) allow_mixed_producers: bool,
}

#[derive(Debug, Args)]
pub(crate) struct MemorizeArgs {
    /// The run directory.
    pub(crate) run: PathBuf,
    /// Output: `.npz` (mem, std_error, lower, upper, in/out means and counts) or `.npy`
    /// (the scores only).
    #[arg(long, short)]
    pub(crate) output: PathBuf,
    /// Soft memorization: true-class probability instead of 0/1 correctness.
    #[arg(long)]
    pub(crate) soft: bool,
    /// Fail on samples without IN or OUT models instead of writing NaN for them.
    #[arg(long)]
    pub(crate) strict: bool,
    /// Leave these models out (repeatable, or comma-separated: `--exclude 0,3`): the target
    /// of `memia attack --target K` must be left out of the memorization that chooses its
    /// candidates, or it chooses its own.
    #[arg(long, value_delimiter = ',')]
    pub(crate) exclude: Vec<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Method {
    LiraOnline,
    LiraOffline,
    Rmia,
    Loss,
    Global,
}

#[derive(Debug, Args)]
pub(crate) struct AttackMethodArgs {
    /// The attack (default: lira-online with a global variance; for `report`, the
    /// configuration's `[audit] attack`).
    #[arg(long, value_enum)]
    pub(crate) method: Option<Method>,
    /// LiRA: one variance for all samples (better below ~64 shadow models).
    #[arg(long, conflicts_with = "variance_prior")]
    pub(crate) global_variance: bool,
    /// LiRA: per-sample variances shrunk towards all samples' by a prior fitted across them
    /// (empirical Bayes; Student-t posterior predictives).
    #[arg(long)]
    pub(crate) variance_prior: bool,
    /// LiRA: an OUT distribution that allows for lucky guesses (a shadow model naming the label
    /// without having trained on the sample), weighted per sample.
    #[arg(long)]
    pub(crate) right_by_chance: bool,
    /// RMIA: threshold on the pairwise likelihood ratio.
    #[arg(long, default_value_t = 1.0)]
    pub(crate) gamma: f64,
    /// RMIA offline with this approximation parameter a in [0, 1].
    #[arg(long)]
    pub(crate) offline_a: Option<f64>,
    /// LiRA offline: the paper's one-sided tail (default) or the reference code's log-density
    /// (`generate_ours_offline`).
    #[arg(long, value_enum)]
    pub(crate) offline_score: Option<OfflineScoreArg>,
    /// LiRA: reproduce the reference's `plot.py` exactly, quirks included (IN/OUT cut to the
    /// smallest counts, its global variance).
    #[arg(long)]
    pub(crate) reference_compatible: bool,
    /// LiRA: the phi read from the logits: exact, or the reference `score.py`'s arithmetic.
    #[arg(long, value_enum)]
    pub(crate) signal: Option<SignalArg>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum OfflineScoreArg {
    /// -log P[Z > x] under the OUT Gaussian (the paper).
    Tail,
    /// -log N(x; OUT) (the reference code).
    LogDensity,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum SignalArg {
    /// z_y - logsumexp of the other logits, exact.
    Phi,
    /// As the LiRA reference's score.py computes it (float32 exp, +1e-45).
    PhiReference,
}

#[derive(Debug, Args)]
pub(crate) struct AttackArgs {
    /// The run directory (its models are the shadow models).
    pub(crate) run: PathBuf,
    /// The target: a model of the run (the others become the shadow models).
    #[arg(long, conflicts_with = "target_logits")]
    pub(crate) target: Option<usize>,
    /// The target: an external model's logits on the pool, N x A x C (or N x C) `.npy`.
    #[arg(long)]
    pub(crate) target_logits: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) method: AttackMethodArgs,
    /// Output: N float64 scores (higher = more likely member; NaN = not judgeable).
    #[arg(long, short)]
    pub(crate) output: PathBuf,
    /// With --target: also write the target's true membership (N bool) here.
    #[arg(long)]
    pub(crate) members_out: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Convention {
    /// As the LiRA reference: the TPR of the last curve point with FPR strictly below.
    LiraStrict,
    /// Linear interpolation of the curve (numpy.interp).
    Interpolated,
}

#[derive(Debug, Args)]
pub(crate) struct MetricsArgs {
    /// Attack scores, 1-D float `.npy`. A score that is not finite (NaN, infinite) is
    /// undetermined: a member counts as not detected, a non-member is left out; both counted.
    #[arg(long)]
    pub(crate) scores: PathBuf,
    /// Membership, 1-D `.npy` of bool or 0/1 integers.
    #[arg(long)]
    pub(crate) labels: PathBuf,
    /// Lower scores mean member (e.g. raw losses).
    #[arg(long)]
    pub(crate) lower_is_member: bool,
    /// How TPR at a fixed FPR is read off the curve.
    #[arg(long, value_enum, default_value = "lira-strict")]
    pub(crate) convention: Convention,
    /// Also score these groups of samples separately (JSON: `[{"name": "canaries", "samples":
    /// [0, 5, ...]}]`, as `memia import --groups` reads and `pool.json` holds).
    #[arg(long)]
    pub(crate) groups: Option<PathBuf>,
    /// Also score the high-memorization candidates: samples whose memorization in this file
    /// (`memia memorize`'s `.npz`, key `mem`, or a 1-D `.npy`) is at least --threshold.
    #[arg(long)]
    pub(crate) candidates: Option<PathBuf>,
    /// The memorization threshold of --candidates (the default, 0.8, is every command's).
    #[arg(long, default_value_t = memia_attacks::DEFAULT_MEMORIZATION_THRESHOLD, requires = "candidates")]
    pub(crate) threshold: f64,
}

#[derive(Debug, Args)]
pub(crate) struct ImportLiraArgs {
    /// The LiRA reference run (the directory holding experiment-*).
    pub(crate) dir: PathBuf,
    /// The memia run directory to create.
    #[arg(long, short)]
    pub(crate) output: PathBuf,
    /// Use the logits of this epoch (default: each experiment's last).
    #[arg(long)]
    pub(crate) epoch: Option<u64>,
    /// Labels (N integers, `.npy`) if the run has no y_train.npy.
    #[arg(long)]
    pub(crate) labels: Option<PathBuf>,
    /// Named groups of samples reported separately (JSON: `[{"name": "canaries", "samples":
    /// [0, 5, ...]}]`).
    #[arg(long)]
    pub(crate) groups: Option<PathBuf>,
    /// Hard-link each model's file into the run instead of copying it where it is already
    /// float32 (little-endian, C order) on the same filesystem (a symbolic link is followed):
    /// a 10 GB import then reads the files, and writes nothing but small records. The run
    /// shares those files: do not change them in place, during the import or after it.
    #[arg(long)]
    pub(crate) link: bool,
    /// The pool's pixels, for the report's thumbnails: a `.npy` of N images (N x C x H x W,
    /// N x H x W x C or N x H x W; any numeric type), or the `.npz` `memia export-pool` writes
    /// (its `x`). Kept in the run as `images.npy`.
    #[arg(long)]
    pub(crate) images: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct ExportPoolArgs {
    /// The run directory (planned by `memia plan` or `memia run`).
    pub(crate) run: PathBuf,
    /// The `.npz` to write.
    #[arg(long, short)]
    pub(crate) output: PathBuf,
}

#[derive(Debug, Args)]
pub(crate) struct ImportArgs {
    /// The keep matrix: K x N bool `.npy` (row k: the samples model k trained on).
    #[arg(long)]
    pub(crate) keep: PathBuf,
    /// The logits: one K x N x A x C (or K x N x C) float32 `.npy`, or a folder of K per-model
    /// files (N x A x C or N x C) named with the model's row in the keep matrix
    /// (`model_0.npy` ... or `model_00000.npy` ...), taken in numeric order. float64 is
    /// converted, with a notice. Each model is checked against its keep row (a warning names
    /// models no better on their training samples than on the others, or near chance) and for
    /// probabilities in place of logits.
    #[arg(long)]
    pub(crate) logits: PathBuf,
    /// The pool's labels: N integers, `.npy`.
    #[arg(long)]
    pub(crate) labels: PathBuf,
    /// Named groups of samples reported separately (JSON: `[{"name": "canaries", "samples":
    /// [0, 5, ...]}]`).
    #[arg(long)]
    pub(crate) groups: Option<PathBuf>,
    /// The memia run directory to create.
    #[arg(long, short)]
    pub(crate) output: PathBuf,
    /// Hard-link each model's file into the run instead of copying it where it is already
    /// float32 (little-endian, C order) on the same filesystem (a symbolic link is followed):
    /// a 10 GB import then reads the files, and writes nothing but small records. The run
    /// shares those files: do not change them in place, during the import or after it.
    #[arg(long)]
    pub(crate) link: bool,
    /// The pool's pixels, for the report's thumbnails: a `.npy` of N images (N x C x H x W,
    /// N x H x W x C or N x H x W; any numeric type), or the `.npz` `memia export-pool` writes
    /// (its `x`). Kept in the run as `images.npy`.
    #[arg(long)]
    pub(crate) images: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct AuditArgs {
    /// The target model (default: the configuration's, else 0).
    #[arg(long)]
    pub(crate) target: Option<usize>,
    #[command(flatten)]
    pub(crate) method: AttackMethodArgs,
    /// Candidates: samples with memorization at least this (default: the configuration's
    /// `[audit] candidates`, else 0.8, every command's default).
    #[arg(long)]
    pub(crate) threshold: Option<f64>,
    /// Target models in the shadow-model curve.
    #[arg(long)]
    pub(crate) curve_targets: Option<usize>,
    /// Random draws of the shadow models per point of the curve (the plot's band spans them).
    #[arg(long)]
    pub(crate) curve_repeats: Option<usize>,
}

#[derive(Debug, Args)]
pub(crate) struct ReportArgs {
    /// The run directory.
    pub(crate) run: PathBuf,
    /// The report directory.
    #[arg(long, short)]
    pub(crate) output: PathBuf,
    /// The target: a model trained elsewhere, its logits on the pool (N x A x C or N x C
    /// `.npy`); all the run's models become shadow models.
    #[arg(long, conflicts_with = "target")]
    pub(crate) target_logits: Option<PathBuf>,
    /// With --target-logits: which samples that model trained on (N bool or 0/1 `.npy`);
    /// without it the report has scores but no ROC curve.
    #[arg(long, requires = "target_logits")]
    pub(crate) members: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) audit: AuditArgs,
}

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// Configuration file (TOML).
    pub(crate) config: PathBuf,
    /// Run directory (default: CONFIG's name without .toml, plus `-run`, beside it).
    #[arg(long)]
    pub(crate) run: Option<PathBuf>,
    /// Report directory (default: RUN/report).
    #[arg(long)]
    pub(crate) report: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) device: DeviceArgs,
    #[command(flatten)]
    pub(crate) audit: AuditArgs,
}
