"""What every baseline prints first: the CPU, its vector extensions, the cores and threads, and
the machine's rate for PyTorch's 2048 x 2048 sgemm (the yardstick the training figures are read
against), so that no figure is published without the machine that produced it.

    python benches/python/machine.py        # the report alone
"""
import os
import platform
import time

VECTOR_FLAGS = ["sse4_2", "avx", "fma", "avx2", "avx512f", "avx512bw", "avx512vl", "avx512_vnni",
                "avx512_bf16", "avx512_fp16", "amx_tile", "neon", "asimd", "sve"]


def cpu():
    """(model name, vector extensions present) from /proc/cpuinfo (the platform elsewhere)."""
    name, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key in ("model name", "Model") and name in ("", platform.machine()):
                    name = value.strip()
                elif key in ("flags", "Features") and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    return name, [f for f in VECTOR_FLAGS if f in flags]


def sgemm_gflops(torch, n=2048, runs=5):
    """PyTorch's n x n float32 matrix product, best of `runs` after a warm-up, in GFLOP/s."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * n ** 3 / best / 1e9


def report(torch=None):
    """Prints the machine's lines (prefixed `machine:`) and returns the sgemm rate (or None)."""
    name, flags = cpu()
    print(f"machine: CPU {name}; {os.cpu_count()} logical cores; vector extensions "
          f"{' '.join(flags) or '(none known)'}")
    if torch is None:
        return None
    rate = sgemm_gflops(torch)
    print(f"machine: PyTorch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"2048 x 2048 sgemm {rate:.0f} GFLOP/s (best of 5 after a warm-up)")
    return rate


if __name__ == "__main__":
    try:
        import torch
    except ImportError:
        torch = None
    report(torch)
