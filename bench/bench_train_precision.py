"""Training and teacher-inference steps in fp32 and under bf16 autocast, side by side in one run.

    python bench/bench_train_precision.py [--base-model DIR] [--steps 4] [--rounds 3] [--batch 32]

Hardware bf16 does not settle whether bf16 pays: a training step ran 1.86x faster in bf16 on a
Zen 4, yet about twice as slow as fp32 on a Xeon VM with AVX-512 BF16 and no AMX exposed (the
accurate recipe, 2026-12-06: 5.5 against 2.5 s per step in tqdm's rate). So ``--precision auto``
and the teacher's labelling pass take bf16 where a half-second probe measures it faster
(models/cpu_features.py); this measures the whole step, to check the probe's verdict.
Rounds alternate the two precisions so a noisy neighbour slows both alike; read the ratios.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from riskpulse.models.base_model import resolve
from riskpulse.models.encoder import encode, load_tokenizer, pad_batch
from riskpulse.models.network import TwoHeadClassifier
from riskpulse.models.cpu_features import cpu_flags
from riskpulse.settings import get_settings

from bench_pretrain_step import training_texts  # a sibling script: python puts bench/ first on the path


def _batches(data: Path, base_dir: Path, steps: int, batch: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Training headlines of the held-out cut, tokenised as training tokenises them."""
    texts = training_texts(data, steps * batch)
    ids = encode(load_tokenizer(base_dir, max_length=64), texts)
    out = []
    for start in range(0, len(ids), batch):
        input_ids, mask = pad_batch(ids[start:start + batch])
        out.append((torch.from_numpy(input_ids), torch.from_numpy(mask)))
    return out


def _train(model: TwoHeadClassifier, batches: list[tuple[torch.Tensor, torch.Tensor]], bf16: bool) -> float:
    """Seconds for forward + backward over ``batches`` (no optimiser: both precisions share it)."""
    model.train()
    started = time.perf_counter()
    for input_ids, mask in batches:
        model.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            topic, sentiment = model(input_ids, mask)
        (topic.float().logsumexp(-1).mean() + sentiment.float().logsumexp(-1).mean()).backward()
    return time.perf_counter() - started


def _infer(model: TwoHeadClassifier, batches: list[tuple[torch.Tensor, torch.Tensor]], bf16: bool) -> float:
    """Seconds for the forward pass alone, as the teacher's labelling pass runs it."""
    model.eval()
    started = time.perf_counter()
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        for input_ids, mask in batches:
            model(input_ids, mask)
    return time.perf_counter() - started


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--base-model", default=None, help="encoder folder (default: the shipped all-MiniLM-L6-v2)")
    ap.add_argument("--data", type=Path, default=get_settings().data_dir)
    ap.add_argument("--steps", type=int, default=4, help="batches per round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    base = resolve(args.base_model)
    model = TwoHeadClassifier.from_base(base.path)
    batches = _batches(args.data, base.path, args.steps, args.batch)
    seconds: dict[str, list[float]] = {}
    for name, run in (("train", _train), ("infer", _infer)):
        for bf16 in (False, True):
            run(model, batches[:1], bf16)  # warm-up: oneDNN picks and caches its kernels per precision
        for _ in range(args.rounds):
            for bf16 in (False, True):
                seconds.setdefault(f"{name}_{'bf16' if bf16 else 'fp32'}", []).append(run(model, batches, bf16))
    median = {k: statistics.median(v) for k, v in seconds.items()}
    flags = cpu_flags()
    print(json.dumps({
        "bench": "train_precision", "base_model": base.name, "batches": len(batches), "batch": args.batch,
        "threads": args.threads, "amx_bf16": "amx_bf16" in flags, "avx512_bf16": "avx512_bf16" in flags,
        "seconds_per_batch": {k: round(v / len(batches), 3) for k, v in median.items()},
        "rounds_s": {k: [round(x, 2) for x in v] for k, v in seconds.items()},
        "bf16_speedup_train": round(median["train_fp32"] / median["train_bf16"], 3),
        "bf16_speedup_infer": round(median["infer_fp32"] / median["infer_bf16"], 3),
    }, indent=2))


if __name__ == "__main__":
    main()
