#!/usr/bin/env bash
# memia against PyTorch on shadow-model training, interleaved and fair (issue 28).
#
#   benches/compare.sh [mlp] [cnn] [resnet] [dp]   # default: the first three
#
# `dp` is DP-SGD on the MLP workload against Opacus (issue 26): benches/python/opacus_dp.py,
# one model at a time in each of Opacus's grad-sample modes, the fastest taken.
#
# Prints the machine first (CPU, vector extensions, PyTorch's 2048 x 2048 sgemm rate), then runs
# each workload as memia, PyTorch, memia, PyTorch, memia (memia three times, PyTorch twice, so
# that drift within the hour falls on both), and prints the table: memia's models/s (its best
# mode in each run: fused kernels, groups of 8 or of K), PyTorch's (its best mode: one by one,
# bmm or grouped-convolution ensemble, vmap), each as min - max over the runs, and the ratio of
# the slowest memia run to the fastest PyTorch run.
#
# memia: `cargo run --release --example shadow_throughput [cnn|resnet|dp]` (built once, then run). PyTorch:
# benches/python/torch_jax_ensemble.py (MLP, K = 8 and 32) and benches/python/cnn_torch.py
# (CNN, K = 8 and 32; ResNet, K = 8), which warm every mode up, take the best of their runs and
# compute the pool's logits in the batch size fastest for PyTorch. Data: $MEMIA_DATA_DIR
# (default ../shared/data). PYTHON names an interpreter with torch (default python3). The raw
# outputs stay in the directory printed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3}
data=${MEMIA_DATA_DIR:-$(cd .. && pwd)/shared/data}
workloads=("$@")
[ ${#workloads[@]} -eq 0 ] && workloads=(mlp cnn resnet)
for w in "${workloads[@]}"; do
  case "$w" in mlp | cnn | resnet | dp) ;; *) echo "error: unknown workload '$w' (mlp, cnn, resnet, dp)" >&2; exit 2 ;; esac
done
out=$(mktemp -d "${TMPDIR:-/tmp}/memia-compare.XXXXXX")

# Built once: the runs use this binary, so that editing the sources during a comparison changes
# nothing that is measured (and no run waits for a rebuild).
bin=$(cargo build --release --example shadow_throughput -q --message-format=json |
  "$python" -c 'import json, sys; print([m["executable"] for m in map(json.loads, sys.stdin) if m.get("executable")][-1])')
# numpy's BLAS settings of this environment slow its baselines; PyTorch runs without them.
env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$python" benches/python/machine.py | tee "$out/machine.txt"
echo "started $(date -u '+%Y-%m-%d %H:%M UTC'); raw outputs in $out"

memia_run() { # workload round
  local arg=()
  [ "$1" != mlp ] && arg=("$1")
  "$bin" "${arg[@]}" "$data" >"$out/memia-$1-$2.txt"
}
torch_run() { # workload round
  local script=(benches/python/cnn_torch.py "$data" 8 32)
  case "$1" in
    mlp) script=(benches/python/torch_jax_ensemble.py "$data") ;;
    resnet) script=(benches/python/cnn_torch.py resnet "$data" 8) ;;
    dp) script=(benches/python/opacus_dp.py "$data") ;;
  esac
  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$python" "${script[@]}" >"$out/torch-$1-$2.txt"
}
for w in "${workloads[@]}"; do
  for round in 1 2 3; do
    echo "  $w: memia run $round ($(date -u +%H:%M:%S))"
    memia_run "$w" "$round"
    if [ "$round" -lt 3 ]; then
      echo "  $w: PyTorch run $round ($(date -u +%H:%M:%S))"
      torch_run "$w" "$round"
    fi
  done
done
echo "finished $(date -u '+%Y-%m-%d %H:%M UTC')"

"$python" - "$out" "${workloads[@]}" <<'EOF'
import glob, os, re, sys

out, workloads = sys.argv[1], sys.argv[2:]

def memia_best(path):
    """K -> the best fused row's models/s in one run of shadow_throughput."""
    best = {}
    for line in open(path):
        f = line.split()
        if len(f) == 8 and f[0].isdigit() and f[1] == "fused":
            best[int(f[0])] = max(best.get(int(f[0]), 0.0), float(f[6]))
    return best

def torch_best(path):
    """K -> (models/s, mode) of the fastest mode in one run."""
    best = {}
    for line in open(path):
        m = re.match(r"RESULT (\w+) (\d+) (\S+) ([\d.]+)", line)
        if m:
            k, mode, rate = int(m.group(2)), m.group(3), float(m.group(4))
            if rate > best.get(k, (0.0, ""))[0]:
                best[k] = (rate, mode)
    return best

print(f"\n{'workload':<8} {'K':>3} {'memia models/s':>16} {'PyTorch models/s':>18} "
      f"{'PyTorch best mode':<22} {'ratio (slowest memia / fastest PyTorch)':>40}")
for w in workloads:
    ours = [memia_best(p) for p in sorted(glob.glob(f"{out}/memia-{w}-*.txt"))]
    theirs = [torch_best(p) for p in sorted(glob.glob(f"{out}/torch-{w}-*.txt"))]
    for k in sorted(set().union(*ours)):
        a = [r[k] for r in ours if k in r]
        b = [r[k] for r in theirs if k in r]
        if not a or not b:
            print(f"{w:<8} {k:>3} (missing: see {out})")
            continue
        modes = sorted({r[k][1] for r in theirs if k in r})
        rates = [x[0] for x in b]
        print(f"{w:<8} {k:>3} {min(a):>7.2f} - {max(a):<6.2f} {min(rates):>9.2f} - "
              f"{max(rates):<6.2f} {'/'.join(modes):<22} {min(a) / max(rates):>39.2f}x")
EOF
