"""What this CPU does well: hardware bf16, and whether bf16 autocast is actually faster here.

Imports torch only inside :func:`bf16_speedup`, so the serving path that asks about flags stays light.
"""

from __future__ import annotations

import functools
import time
from pathlib import Path


@functools.cache
def cpu_flags() -> frozenset[str]:
    """This CPU's feature flags (empty where /proc/cpuinfo cannot be read)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    return frozenset(word for line in text.splitlines() if line.startswith("flags") for word in line.split())


def cpu_has_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 in hardware; elsewhere bf16 is emulated and slow."""
    return bool({"amx_bf16", "avx512_bf16"} & cpu_flags())


BF16_MIN_SPEEDUP = 1.15  # below this, bf16's rounding is not worth it


def bf16_pays() -> bool:
    """Whether bf16 autocast makes training and the teacher's labelling pass faster here.

    Hardware bf16 is not enough to know: a training step ran 1.86x faster in bf16 on a Zen 4
    (AVX-512 BF16), but at 0.71x of fp32 on a Xeon VM with AVX-512 BF16 and no AMX exposed
    (bench/bench_train_precision.py). So it is measured, once per process, in half a second.
    """
    return cpu_has_bf16() and bf16_speedup() >= BF16_MIN_SPEEDUP


@functools.cache
def bf16_speedup() -> float:
    """fp32 time over bf16-autocast time for a linear layer's forward and backward, at the
    encoder's width and torch's thread count: the best of five tries each, alternated."""
    import torch

    layer = torch.nn.Linear(384, 1536)
    x = torch.randn(512, 384, requires_grad=True)

    def once(bf16: bool) -> float:
        started = time.perf_counter()
        for _ in range(3):
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                out = layer(x)
            out.float().sum().backward()
        return time.perf_counter() - started

    once(False), once(True)  # warm-up: oneDNN picks its kernels per precision
    fp32, bf16 = [min(t) for t in zip(*[(once(False), once(True)) for _ in range(5)])]
    return fp32 / bf16
