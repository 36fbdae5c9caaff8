"""One masked-LM training step two ways, side by side in one run: the full forward (the vocabulary
head on every position, as ``model(**batch).loss`` does) and ``mlm_loss`` (the head on the masked
positions only), on the same batches, in alternating rounds.

    python bench/bench_pretrain_step.py [--data DIR] [--steps 8] [--rounds 3] [--batch 32]

``mlm_loss`` is claimed to give the same loss and gradients (tested) for less work; this measures
the "less work" instead of assuming it. Rounds alternate the two so a noisy neighbour slows both
alike; the ratio is what to read.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any, Callable

import torch

from riskpulse.models.base_model import resolve
from riskpulse.models.data import load_splits
from riskpulse.models.pretrain import mlm_loss
from riskpulse.settings import get_settings


def training_texts(data: Path, n: int) -> list[str]:
    """Training texts of the held-out cut: what pretraining reads."""
    try:
        texts = list(dict.fromkeys(load_splits(data).train.text.tolist()))
    except FileNotFoundError as exc:
        raise SystemExit(f"{exc}: pass --data with the labelled data sets (docs/model.md says where they live)") from exc
    return texts[:n]


def _step(model: Any, loss_of: Callable[[Any, dict[str, torch.Tensor]], torch.Tensor],
          batches: list[dict[str, torch.Tensor]]) -> float:
    """Seconds for forward + backward over ``batches`` (no optimizer: the two ways share it)."""
    started = time.perf_counter()
    for batch in batches:
        model.zero_grad(set_to_none=True)
        loss_of(model, batch).backward()
    return time.perf_counter() - started


def main() -> None:
    from transformers import AutoModelForMaskedLM, AutoTokenizer, DataCollatorForLanguageModeling

    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=get_settings().data_dir)
    ap.add_argument("--steps", type=int, default=8, help="batches per round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    base = resolve(None)
    tokenizer = AutoTokenizer.from_pretrained(str(base.path))
    collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.15, return_tensors="pt")
    texts = training_texts(args.data, args.steps * args.batch)
    ids = tokenizer(texts, truncation=True, max_length=80)["input_ids"]
    batches = [collator([{"input_ids": i} for i in ids[s:s + args.batch]]) for s in range(0, len(ids), args.batch)]
    model = AutoModelForMaskedLM.from_pretrained(str(base.path)).train()
    ways: dict[str, Callable[[Any, dict[str, torch.Tensor]], torch.Tensor]] = {
        "full forward": lambda m, b: m(**b).loss, "masked positions only": mlm_loss}
    for way in ways.values():
        _step(model, way, batches[:1])  # warm-up
    seconds: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(args.rounds):
        for name, way in ways.items():
            seconds[name].append(_step(model, way, batches))
    model.eval()  # no dropout: the two losses must agree to rounding
    with torch.no_grad():
        losses = {name: [float(way(model, b)) for b in batches] for name, way in ways.items()}
    rates = {name: len(batches) / statistics.median(s) for name, s in seconds.items()}
    print(json.dumps({
        "bench": "pretrain_step", "base_model": base.name, "batches": len(batches), "batch": args.batch,
        "threads": args.threads, "tokens_per_batch": round(sum(int(b["attention_mask"].sum()) for b in batches)
                                                            / len(batches), 1),
        "steps_per_s": {name: round(rate, 3) for name, rate in rates.items()},
        "rounds_s": {name: [round(x, 2) for x in s] for name, s in seconds.items()},
        "speedup_masked_over_full": round(rates["masked positions only"] / rates["full forward"], 3),
        "max_loss_diff": max(abs(a - b) for a, b in zip(*losses.values())),
    }, indent=2))


if __name__ == "__main__":
    main()
