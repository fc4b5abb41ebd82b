#!/usr/bin/env bash
# The GPU check of memia's wgpu backend: the wgpu-vs-Flex parity test and the training
# throughput example on a machine with a GPU, from binaries built here (that machine has no
# network, so nothing is compiled there).
#
#   benches/gpu_check.sh prepare   # here: builds both with `--features wgpu` (about 20 minutes
#                                  # from a warm registry), packs them with MNIST and the Vulkan
#                                  # loader into .devcarry/ and .gl/ (both git-ignored)
#   benches/gpu_check.sh device    # there, from the repository root, with .devcarry and .gl
#                                  # carried; writes gpu.txt, smi.txt, backends.txt,
#                                  # throughput.txt, throughput_cnn.txt and throughput_cpu.txt to
#                                  # $OUT (or ./gpu-out)
set -euo pipefail
cd "$(dirname "$0")/.."

case "${1:-}" in
prepare)
  export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/memia-wgpu-target}"
  data="${MEMIA_DATA_DIR:-$(cd .. && pwd)/shared/data}"
  cargo build --release --features wgpu --example shadow_throughput
  test_bin=$(cargo test --release -p memia-models --features wgpu --test backends --no-run \
    --message-format=json | sed -n 's/.*"executable":"\([^"]*backends[^"]*\)".*/\1/p' | tail -n 1)
  for ignored in /.devcarry/ /.gl/; do
    grep -qx "$ignored" .git/info/exclude || echo "$ignored" >>.git/info/exclude
  done
  rm -rf .devcarry && mkdir -p .devcarry/bin .devcarry/data .gl
  cp "$test_bin" .devcarry/bin/backends
  cp "$CARGO_TARGET_DIR/release/examples/shadow_throughput" .devcarry/bin/
  strip .devcarry/bin/* && xz -T0 -6 .devcarry/bin/*   # 59 MB each stripped, 9 MB packed
  cp "$data"/mnist-t10k-*-ubyte.gz "$data"/cifar10-test-jpeg.bin.gz .devcarry/data/
  lists=$(mktemp -d) && mkdir -p "$lists/partial"
  apt_amd64=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists="$lists")
  apt-get "${apt_amd64[@]}" update -qq
  (cd .gl && apt-get "${apt_amd64[@]}" download libvulkan1)
  du -sh .devcarry .gl
  ;;
device)
  out="${OUT:-gpu-out}" && mkdir -p "$out"
  for f in .gl/*.deb; do dpkg -x "$f" /; done
  ldconfig
  export MEMIA_DATA_DIR=$PWD/.devcarry/data
  {
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
    ldconfig -p | grep -i vulkan
    ls /usr/local/nvidia/share/vulkan/icd.d/ /usr/share/vulkan/icd.d/ /etc/vulkan/icd.d
  } 2>&1 | tee "$out/gpu.txt" || true
  if [ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ]; then
    export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
  fi
  nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv,noheader -lms 500 \
    >"$out/smi.txt" 2>&1 &
  smi=$!
  for f in .devcarry/bin/*.xz; do
    python3 -c "import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[1][:-3], 'wb'))" "$f"
  done
  chmod +x .devcarry/bin/backends .devcarry/bin/shadow_throughput
  set +e
  echo "== parity test (wgpu vs Flex)"
  (cd crates/memia-models && timeout 180 ../../.devcarry/bin/backends --nocapture --test-threads 1) 2>&1 |
    tee "$out/backends.txt"
  echo "== throughput on wgpu"
  BURN_DEVICE=wgpu timeout 240 .devcarry/bin/shadow_throughput 2>&1 | tee "$out/throughput.txt"
  echo "== CNN throughput on wgpu (CIFAR-10)"
  BURN_DEVICE=wgpu timeout 240 .devcarry/bin/shadow_throughput cnn 2>&1 | tee "$out/throughput_cnn.txt"
  echo "== ResNet throughput on wgpu (CIFAR-10)"
  BURN_DEVICE=wgpu timeout 180 .devcarry/bin/shadow_throughput resnet 2>&1 | tee "$out/throughput_resnet.txt"
  echo "== throughput on Flex (all cores)"
  BURN_DEVICE=flex timeout 60 .devcarry/bin/shadow_throughput 2>&1 | tee "$out/throughput_cpu.txt"
  kill "$smi" 2>/dev/null || true
  ;;
*)
  echo "usage: $0 prepare|device" >&2
  exit 2
  ;;
esac
