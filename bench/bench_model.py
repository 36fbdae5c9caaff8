"""Headlines/s of our backends against a per-item transformers pipeline on a BERT-base model.

Everything is measured in this one run on this machine, on real headlines from the labelled
data (../shared/data), and the ratios to the baseline are printed; machines here are shared
and noisy, so only same-run ratios mean anything. The last line printed is one JSON object.

    python bench/bench_model.py --model ~/.riskpulse/model [--n 2000] [--baseline-n 200]
        [--compare ACCURATE_MODEL_DIR ...]

``--compare`` also measures other model folders as a worker serves them (backend ``auto``), in
alternated rounds with ``--model`` served the same way, and prints each one's headlines/s over
``--model``'s at the same batch size: the speed one pays for another model (the accurate recipe's).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from riskpulse.models.encoder import base_model_dir, encode, load_tokenizer
from riskpulse.models.export import INT8_CANDIDATES, quantize_int8
from riskpulse.models.scorer import WHOLE_ENCODER_INT8, OnnxEngine, Scorer, available_backends, make_engine
from riskpulse.settings import Settings


def headlines(data_dir: Path, n: int, seed: int = 0) -> list[str]:
    frames = [pd.read_csv(data_dir / rel, keep_default_na=False) for rel in (
        "twitter-financial-news-topic/valid.csv", "twitter-financial-news-sentiment/valid.csv",
        "financial-phrasebank/all.csv")]
    texts = pd.concat(frames).text.sample(frac=1.0, random_state=seed).tolist()
    return (texts * (n // len(texts) + 1))[:n]


def rate(fn: Callable[[list[str]], Any], texts: list[str], warmup: int = 32, repeats: int = 3) -> float:
    """Best of ``repeats`` passes, items per second."""
    fn(texts[:warmup])
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(texts)
        best = min(best, time.perf_counter() - t0)
    return len(texts) / best


def baseline_pipeline() -> Callable[[list[str]], Any]:
    """transformers pipeline('text-classification') on a BERT-base sized model, one item per call.

    Random weights: speed does not depend on them, and no hub download is possible here. The
    vocabulary (bert-base-uncased, 30,522 tokens) comes with the MiniLM package.
    """
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast, pipeline

    torch.manual_seed(0)
    model = BertForSequenceClassification(BertConfig(num_labels=3)).eval()  # 110M parameters, like FinBERT
    tok = BertTokenizerFast.from_pretrained(str(base_model_dir()), model_max_length=512)
    pipe = pipeline("text-classification", model=model, tokenizer=tok, device=-1)
    return lambda texts: [pipe(t, truncation=True) for t in texts]


def padding_waste(model_dir: Path, texts: list[str], batch: int) -> dict[str, float]:
    """Share of token slots that are padding: arrival order vs length-sorted batches."""
    tok = load_tokenizer(model_dir, 64)
    lengths = np.array([len(ids) for ids in encode(tok, texts)])

    def waste(order: np.ndarray) -> float:
        slots = sum(lengths[order[i:i + batch]].max() * len(order[i:i + batch]) for i in range(0, len(order), batch))
        return 1 - lengths.sum() / slots

    return {"arrival_order": waste(np.arange(len(texts))), "length_sorted": waste(np.argsort(lengths))}


def host() -> dict[str, Any]:
    import importlib.metadata as md

    info: dict[str, Any] = {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version()}
    try:
        info["cpu"] = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        info["cpu"] = platform.processor()
    for pkg in ("torch", "onnxruntime", "transformers", "tokenizers"):
        try:
            info[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    try:
        import torch

        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
    except ImportError:
        pass
    return info


def compare_models(models: list[Path], texts: list[str], batches: list[int], rounds: int = 3) -> list[dict[str, Any]]:
    """Each model as a worker serves it (backend auto), best of ``rounds`` alternated passes per
    batch size, with its ratio to the first model at the same batch size."""
    engines = [make_engine(m, "auto") for m in models]
    best: dict[tuple[int, int], float] = {}
    for _ in range(rounds):
        for batch in batches:
            for i, (model, engine) in enumerate(zip(models, engines)):
                r = rate(Scorer(model, engine=engine, batch_size=batch).score, texts, warmup=64, repeats=1)
                best[i, batch] = max(best.get((i, batch), 0.0), r)
    rows = []
    print(f"\n{'model':<44}{'engine':<34}{'batch':>6}{'headlines/s':>13}{'x first':>9}")
    for i, (model, engine) in enumerate(zip(models, engines)):
        card = json.loads((model / "card.json").read_text()) if (model / "card.json").exists() else {}
        for batch in batches:
            row = {"model": str(model), "model_version": card.get("model_version"), "parameters": card.get("parameters"),
                   "engine": engine.name, "batch": batch, "headlines_s": best[i, batch],
                   "x_first": best[i, batch] / best[0, batch]}
            rows.append(row)
            print(f"{str(card.get('model_version') or model)[:43]:<44}{engine.name[:33]:<34}{batch:>6}"
                  f"{row['headlines_s']:>13.1f}{row['x_first']:>9.3f}")
    return rows


def main() -> None:
    s = Settings()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=s.model_dir)
    ap.add_argument("--data", type=Path, default=s.data_dir)
    ap.add_argument("--n", type=int, default=2000, help="headlines per measurement of our backends")
    ap.add_argument("--baseline-n", type=int, default=200, help="headlines for the (slow) per-item baseline")
    ap.add_argument("--batch-sizes", default="1,8,32,64,128")
    ap.add_argument("--compare", type=Path, nargs="+", default=[], metavar="MODEL_DIR",
                    help="other model folders to measure as served, side by side with --model")
    ap.add_argument("--compare-only", action="store_true", help="skip the baseline and the backend table")
    args = ap.parse_args()
    if args.compare:
        texts = headlines(args.data, args.n)
        compared = compare_models([args.model, *args.compare], texts, [b for b in (8, 32, 64)])
        if args.compare_only:
            print(json.dumps({"bench": "model-compare", "host": host(), "rows": compared}))
            return

    texts = headlines(args.data, args.n)
    rows: list[dict[str, Any]] = []
    base = rate(baseline_pipeline(), texts[:args.baseline_n], warmup=8, repeats=1)
    rows.append({"backend": "baseline: transformers pipeline, BERT-base, per item", "batch": 1, "headlines_s": base})

    gpu = "gpu" in host()  # any CUDA backend, PyTorch's included, is also measured at batch 256
    backends = [b for b in available_backends() if b != "tensorrt" or gpu]
    # torch-bf16 both eager and compiled (its default), so the gain of compiling is measured here too
    variants = [(b, c) for b in backends for c in ((False, True) if b == "torch-bf16" else (True,))]
    for backend, compile in variants:
        engine = make_engine(args.model, backend, compile=compile)  # type: ignore[arg-type]
        for batch in [int(b) for b in args.batch_sizes.split(",")] + ([256] if gpu else []):
            if backend == "torch" and batch == 1:
                continue
            scorer = Scorer(args.model, engine=engine, batch_size=batch)
            n = texts if batch > 1 else texts[: max(200, args.n // 5)]
            rows.append({"backend": engine.name, "batch": batch, "headlines_s": rate(scorer.score, n, warmup=256)})

    manifest_path = args.model / "onnx" / "manifest.json"
    shipped = json.loads(manifest_path.read_text())["parity"] if manifest_path.exists() else None
    if shipped and shipped.get("int8_quantisation") != WHOLE_ENCODER_INT8:
        # what the refused whole-encoder int8 would give: the speed the agreement gate costs
        with tempfile.TemporaryDirectory() as tmp:
            whole = Path(tmp) / "whole.int8.onnx"
            quantize_int8(args.model / "onnx" / "model.onnx", whole, INT8_CANDIDATES[WHOLE_ENCODER_INT8])
            scorer = Scorer(args.model, engine=OnnxEngine(whole), batch_size=32)
            agree = shipped["int8_candidates"].get(WHOLE_ENCODER_INT8, {})
            rows.append({"backend": "int8 whole encoder, REFUSED by the gate "
                                    f"({agree.get('topic_agreement', float('nan')):.1%}/{agree.get('sentiment_agreement', float('nan')):.1%})",
                         "batch": 32, "headlines_s": rate(scorer.score, texts), "refused": True})

    print(f"\n{'backend':<58}{'batch':>6}{'headlines/s':>14}{'x baseline':>12}")
    for r in rows:
        r["x_baseline"] = r["headlines_s"] / base
        print(f"{r['backend']:<58}{r['batch']:>6}{r['headlines_s']:>14.1f}{r['x_baseline']:>12.1f}")
    waste = padding_waste(args.model, texts, 32)
    print(f"\npadding share at batch 32: arrival order {waste['arrival_order']:.1%}, length-sorted {waste['length_sorted']:.1%}")
    best = max((r for r in rows[1:] if not r.get("refused")), key=lambda r: r["headlines_s"])
    print(json.dumps({"bench": "model", "host": host(), "model_dir": str(args.model), "rows": rows,
                      "best": best, "padding_waste_b32": waste, "export_parity": shipped,
                      **({"compared": compared} if args.compare else {})}))


if __name__ == "__main__":
    main()
