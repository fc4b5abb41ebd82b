#!/usr/bin/env bash
# Every command of memia on a synthetic run of a lab's size (benches/synthetic_run.rs), each
# under GNU time -v: its wall time and its peak resident size as the operating system counts it
# (file-backed pages included), beside the time to read the run's logits once from the page
# cache. Prints a markdown table (docs/PERFORMANCE.md, "A lab's audit at full size").
#
#   benches/full_size.sh DIR [MODELS SAMPLES QUERIES CLASSES]    # default 256 50000 2 100
#
# MEMIA=path/to/memia picks the binary (default: release/memia in the build cache, which is
# CARGO_TARGET_DIR or, as .ci/run has it, ~/.cache/memia-target);
# COPY=1 also times an import that copies the files (the default import links them).
# The run (10.2 GB at the default size) is written to DIR once and reused.
set -euo pipefail
dir=${1:?usage: benches/full_size.sh DIR [MODELS SAMPLES QUERIES CLASSES]}
mkdir -p "$dir"
dir=$(realpath "$dir")   # as the caller named it, before the cd below
cd "$(dirname "$0")/.."
models=${2:-256} samples=${3:-50000} queries=${4:-2} classes=${5:-100}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/memia-target}"
memia=${MEMIA:-$CARGO_TARGET_DIR/release/memia}
[ -x "$memia" ] || cargo build --release -p memia-cli
command -v /usr/bin/time >/dev/null || { echo "GNU time (/usr/bin/time) is needed" >&2; exit 1; }

if [ ! -f "$dir/groups.json" ]; then
  # Release profile, without the facade's Burn feature: the build the tests made is reused.
  cargo bench --profile release --no-default-features --bench synthetic_run -- --out "$dir" --models "$models" --samples "$samples" \
    --queries "$queries" --classes "$classes"
fi
work=$(mktemp -d "$dir/measure.XXXXXX")
trap 'rm -rf "$work"' EXIT

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
simd=$(grep -m1 '^flags' /proc/cpuinfo | grep -o 'avx512f\|avx2' | sort -u | tr '\n' ' ')
echo "CPU: $cpu ($(nproc) cores; $simd); memory $(free -g | awk '/Mem/ {print $2}') GB"
echo "run: $(cat "$dir/run.json" 2>/dev/null || echo "(no run.json)"), $(du -sh --apparent-size "$dir/models" | cut -f1) of logits"
echo "memia: $memia"
echo

# The time to read the logits once from the page cache (the second of two reads).
cat "$dir"/models/*.npy > /dev/null
start=$(date +%s.%N)
cat "$dir"/models/*.npy > /dev/null
read_once=$(echo "$(date +%s.%N) - $start" | bc)
printf 'reading the logits once from the page cache: %.1f s\n\n' "$read_once"

echo "| command | wall time | peak resident size | wall / read once |"
echo "|---|---|---|---|"
measure() {
  local name=$1; shift
  if ! /usr/bin/time -v -o "$work/time" "$@" > "$work/out" 2> "$work/err"; then
    echo "$name failed:" >&2; cat "$work/err" >&2; exit 1
  fi
  local rss wall
  rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/time")
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$work/time" |
    awk -F: '{ if (NF == 3) print $1 * 3600 + $2 * 60 + $3; else print $1 * 60 + $2 }')
  printf '| %s | %.1f s | %.0f MB | %.1fx |\n' "$name" "$wall" "$(echo "$rss / 1000" | bc -l)" \
    "$(echo "$wall / $read_once" | bc -l)"
}

link=--link
"$memia" import --help | grep -q -- --link || link=
measure "import${link:+ --link}" "$memia" import --keep "$dir/keep.npy" --logits "$dir/models" \
  --labels "$dir/labels.npy" --groups "$dir/groups.json" $link -o "$work/run" -q
if [ "${COPY:-0}" = 1 ]; then
  measure "import (copying)" "$memia" import --keep "$dir/keep.npy" --logits "$dir/models" \
    --labels "$dir/labels.npy" --groups "$dir/groups.json" -o "$work/copied" -q
  rm -rf "$work/copied"
fi
measure "import-lira${link:+ --link}" "$memia" import-lira "$dir/lira" --groups "$dir/groups.json" \
  $link -o "$work/lira-run" -q
rm -rf "$work/lira-run"
measure "status" "$memia" status "$work/run"
measure "memorize" "$memia" memorize "$work/run" -o "$work/mem.npz" -q
measure "attack" "$memia" attack "$work/run" --target 0 -o "$work/scores.npy" \
  --members-out "$work/members.npy" -q
measure "metrics" "$memia" metrics --scores "$work/scores.npy" --labels "$work/members.npy" \
  --candidates "$work/mem.npz"
measure "report" "$memia" report "$work/run" -o "$work/report" -q
measure "audit (sequential)" "$memia" audit "$work/run" --target 0 -o "$work/sequential.json" -q
