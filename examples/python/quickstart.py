"""memia's quickstart (examples/quickstart.rs) from Python, cell by cell as in a notebook.

    pip install ./crates/memia-py
    python examples/python/quickstart.py

Part 1 audits the embedded UCI digits plus 50 mislabeled canaries with 16 shadow MLPs
(examples/configs/digits.toml). The run is planned under the same root as the Rust quickstart
(`$TMPDIR/memia-quickstart/<plan hash>`), so it is the same run: models that
`cargo run --release --example quickstart` trained are found and the figures are the same
numbers. Models still missing are trained by memia's own trainer, in this process when the
package was built with it (`memia.TRAINING_BUILT`, see the README) or by the `memia` command
otherwise (`$MEMIA_BIN`, or `memia` on the PATH); the models are bit-identical either way.

Part 2 runs the statistics on generated shadow outputs whose answer is known: the quickstart's
recipe drawn with numpy's generator (not the Rust one), so the figures agree with the Rust
quickstart's within sampling noise, and each is checked against the closed form it estimates.
"""
import math
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

import memia

HERE = os.path.dirname(os.path.abspath(__file__))
CONFIG = os.path.join(HERE, "..", "configs", "digits.toml")


def headline(name, r):
    """One line of figures, as memia's `headline` prints it."""
    if r is None:
        return f"{name:<32} one class only: no ROC curve"
    tpr = next(row for row in r["tpr_at_fpr"] if row["fpr"] == 1e-3)
    cell = (f"{tpr['tpr']:.4f} [{tpr['tpr_lower']:.3f}, {tpr['tpr_upper']:.3f}]"
            if tpr["measurable"] else "n/m")
    return (f"{name:<32} {r['positives']:>6} members {r['negatives']:>6} non-members  "
            f"AUROC {r['auroc']:.4f}  TPR@0.1%FPR {cell}  balanced accuracy "
            f"{r['balanced_accuracy']:.4f}")


def print_curve(report):
    """A leave-one-model-out report's AUROC by number of shadow models and group, the mean over
    its repeats."""
    by_count = {}
    for row in report["rows"]:
        by_count.setdefault((row["shadow_models"], row["group"]), []).append(row["auroc"])
    for (count, group), values in sorted(by_count.items()):
        print(f"  {count:>3} shadow models  {group:<12} AUROC {np.mean(values):.4f}")


# %% Part 1: plan (or find) the quickstart's run.
run = memia.Run.plan_in(os.path.join(tempfile.gettempdir(), "memia-quickstart"), file=CONFIG)
canaries = run.groups["canaries"]
k, n, _, _ = run.shape
print(f"--- part 1: {n - len(canaries)} digits + {len(canaries)} mislabeled canaries, {k} "
      f"shadow MLPs (64-128-10), run {run.path} ---")

# %% Train what is missing.
missing = run.status()["missing"]
if missing and memia.TRAINING_BUILT:
    report = run.train(progress=True)
    print(f"trained {len(report['trained'])} models in {report['seconds']:.1f} s")
elif missing:
    binary = os.environ.get("MEMIA_BIN") or shutil.which("memia")
    if binary is None:
        sys.exit(f"{len(missing)} models of {run.path} are not trained, and this build of memia "
                 "for Python trains none: build it with the train feature (README), set "
                 "MEMIA_BIN to the memia command, or run `cargo run --release --example "
                 "quickstart` first")
    subprocess.run([binary, "train", run.path], check=True)
for produced in run.producers():
    who = produced["producer"] or {"trainer": "(not recorded)", "details": {}}
    details = ", ".join(f"{key} {value}" for key, value in who.get("details", {}).items())
    print(f"models {produced['models'][0]}..{produced['models'][-1]} by {who['trainer']} "
          f"({details})")

# %% Memorization from the same models, and the candidates it selects.
correct = run.signals(range(k), "correct", progress=True)
mem = memia.memorization(run.keep, correct)
typical = np.setdiff1d(np.arange(n), canaries)
chosen = memia.candidates(mem, at_least=0.5)
print(f"memorization: canaries {mem.score[canaries].mean():.3f} on average, other digits "
      f"{mem.score[typical].mean():.3f}; {len(chosen)} candidates with mem >= 0.5 "
      f"({np.isin(chosen, canaries).sum()} of them canaries)")

# %% The audit: model 0 the target, the others its shadows; the report beside the run.
summary = run.audit(target=0, report=os.path.join(run.path, "report-python"), progress=True)
print(f"{summary['attack']} on {summary['target_name']} with {summary['shadow_models']} "
      "shadow models:")
for name, figures in [("all samples", summary["all"]), ("candidates", summary["candidates"]),
                      ("canaries", summary["groups"]["canaries"])]:
    print("  " + headline(name, figures))
print("leave-one-model-out, by number of shadow models (AUROC, mean over targets):")
print_curve(summary["shadow_curve"])

# %% Part 2: generated shadow outputs with a known answer.
MODELS, SAMPLES, MEMORIZED, SEED = 32, 20_000, 0.05, 2026
print(f"\n--- part 2: {MODELS} shadow models, {SAMPLES} samples, {MEMORIZED:.0%} atypical ---")
rng = np.random.default_rng(SEED)
keep = memia.keep_matrix(MODELS, SAMPLES, seed=SEED)
atypical = rng.random(SAMPLES) < MEMORIZED
offsets = 2.0 * rng.standard_normal(SAMPLES)
shift = np.where(atypical, 4.0, 0.5)
phi = (offsets + rng.standard_normal((MODELS, SAMPLES)) + keep * shift)[:, :, None]
p_right = np.where(keep, 1.0, np.where(atypical, 0.0, 0.9))
correct = (rng.random((MODELS, SAMPLES)) < p_right).astype(np.float64)

# %% 1. Memorization and the candidates; the budget planner.
mem = memia.memorization(keep, correct)
chosen = memia.candidates(mem, at_least=0.5)
print(f"memorization: {len(chosen)} candidates with mem >= 0.5 ({atypical[chosen].sum()} of the "
      f"{atypical.sum()} atypical samples; median standard error "
      f"{np.nanmedian(mem.std_error):.3f})")
_, needed = memia.budget(keep, correct, delta=0.01)
need = lambda idx: np.median(needed[idx][needed[idx] >= 0]) if (needed[idx] >= 0).any() else math.nan
print(f"budget planner (error 1%): candidates need ~{need(chosen):.0f} shadow models, typical "
      f"samples ~{need(np.flatnonzero(~atypical)):.0f}")

# %% 2. Leave-one-model-out LiRA: all samples against the candidates.
lira = {"method": "lira-online", "global_variance": True}
loo = memia.leave_one_out(lira, keep, phi, shadow_counts=[2, 4, 8, 16, MODELS - 1],
                          targets=range(8), groups={"candidates": chosen}, seed=SEED)
print_curve(loo)

# %% 3. One target (model 0) attacked with the other 31, and its metrics.
scores = memia.attack_scores(lira, keep[1:], phi[1:], phi[0])
members = keep[0]
roc = memia.Roc(scores, members)
interval = memia.bootstrap(scores, members, resamples=200, seed=SEED)
row = roc.summary(fprs=[1e-3])["tpr_at_fpr"][0]
tpr = (f"{row['tpr']:.4f} [{row['tpr_lower']:.3f}, {row['tpr_upper']:.3f}]" if row["measurable"]
       else "not measurable")
print(f"target model 0: AUROC {roc.auroc:.4f} (95% bootstrap {interval.lower:.4f} .. "
      f"{interval.upper:.4f}), TPR@0.1%FPR {tpr}")
# Per group, the best test with known Gaussians (shift d, unit noise) has AUROC Phi(d / sqrt 2).
for name, group, d in [("atypical", atypical, 4.0), ("typical", ~atypical, 0.5)]:
    optimum = 0.5 * (1 + math.erf(d / math.sqrt(2) / math.sqrt(2)))
    auc = memia.Roc(scores[group], members[group]).auroc
    print(f"                {name:<8} samples: AUROC {auc:.4f}, optimum with known "
          f"distributions {optimum:.4f}")
print("\nThe memorized candidates are where the audit finds its evidence, with few shadow models.")
