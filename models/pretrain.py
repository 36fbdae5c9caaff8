"""In-domain pretraining: masked-language-model training of the encoder on the training texts.

Why: all-MiniLM-L6-v2 learned its language from the general web; financial headlines and
finance tweets ("$TSLA", "guidance cut", "beats on EPS") are a dialect of their own. Continuing
its masked-language-model training on the texts riskpulse fine-tunes on (labels unused) adapts
the encoder to that dialect before the classification heads are trained ("don't stop
pretraining", Gururangan et al., 2020). Only the training texts of the held-out cut are used,
never the dev or test rows: the folder records the cut and the data's digests, and a model
trained with another cut refuses it (its encoder has read that model's test sentences).

The result is an encoder folder in the Hugging Face layout, used as ``riskpulse train
--base-model DIR``. The masked-language head is new (the sentence-transformers checkpoint does not
ship one; its output layer is tied to the word embeddings) and is not saved.
"""

from __future__ import annotations

import json
import math
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .base_model import BaseModel, resolve, write_tokenizer
from .card import check_same_cut
from .data import load_splits

INFO = "PRETRAIN.json"


def _mlm_head(model: Any) -> Any:
    """The masked-LM head of a Hugging Face ``*ForMaskedLM`` model, when it is one module applied
    position by position (BERT's ``cls``, RoBERTa's and MPNet's ``lm_head``); else None."""
    for name in ("cls", "lm_head"):
        head = getattr(model, name, None)
        if isinstance(head, torch.nn.Module):
            return head
    return None


def mlm_loss(model: Any, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """The masked-LM loss, with the vocabulary head run on the masked positions only.

    Why: the head projects every position onto the whole vocabulary (30k words), a large matrix
    product per position; only the ~15% masked positions enter the loss, and the head
    works position by position, so the loss and its gradients are the same as the full forward's
    (to float rounding). Models whose head is not one such module take the full forward."""
    head = _mlm_head(model)
    if head is None:
        return model(**batch).loss
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    labels = batch["labels"]
    hidden = model.base_model(**inputs)[0]
    picked = labels != -100
    if not bool(picked.any()):
        return hidden.sum() * 0.0  # nothing masked in this batch: no signal, and no NaN
    return torch.nn.functional.cross_entropy(head(hidden[picked]), labels[picked])


def _masked_loss(model: Any, collator: Any, ids: list[list[int]], batch_size: int) -> float:
    """Mean masked-LM loss over ``ids`` (fixed masks: the collator's generator is reseeded)."""
    torch.manual_seed(0)
    model.eval()
    losses = []
    with torch.inference_mode():
        for start in range(0, len(ids), batch_size):
            batch = collator([{"input_ids": i} for i in ids[start:start + batch_size]])
            losses.append(float(mlm_loss(model, batch)))
    model.train()
    return float(np.mean(losses)) if losses else math.nan


def pretrain(data_dir: Path, out_dir: Path, base_model: str | Path | None = None, epochs: float = 1.0,
             lr: float = 5e-5, batch_size: int = 32, max_length: int = 80, mask_probability: float = 0.15,
             split_seed: int = 13, seed: int = 13, limit_per_source: int | None = None,
             threads: int | None = None) -> Path:
    """Continue the encoder's masked-LM training on the training texts of cut ``split_seed``;
    writes an encoder folder (weights, tokenizer, ``PRETRAIN.json``) to ``out_dir``."""
    from transformers import AutoModelForMaskedLM, AutoTokenizer, DataCollatorForLanguageModeling

    started = time.monotonic()
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    base: BaseModel = resolve(base_model)
    splits = load_splits(data_dir, seed=split_seed, limit_per_source=limit_per_source)
    texts = list(dict.fromkeys(splits.train.text.tolist()))  # the training texts only, never dev or test
    out_dir = Path(out_dir)
    write_tokenizer(base, out_dir)
    tokenizer = AutoTokenizer.from_pretrained(str(base.path))  # its own special tokens ([MASK] or <mask>)
    ids = tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]
    dev_ids = tokenizer(list(dict.fromkeys(splits.dev.text.tolist())), truncation=True,
                        max_length=max_length)["input_ids"]
    collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=mask_probability, return_tensors="pt")
    model = AutoModelForMaskedLM.from_pretrained(str(base.path)).train()
    dev_before = _masked_loss(model, collator, dev_ids, 64)

    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    total = max(1, int(math.ceil(len(ids) / batch_size) * epochs))
    warmup = max(1, total // 16)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warmup, max(0.0, (total - s) / max(1, total - warmup))))
    torch.manual_seed(seed)
    step = 0
    while step < total:
        order = rng.permutation(len(ids))
        for start in range(0, len(order), batch_size):
            batch = collator([{"input_ids": ids[i]} for i in order[start:start + batch_size]])
            loss = mlm_loss(model, batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            step += 1
            if step >= total:
                break
    dev_after = _masked_loss(model, collator, dev_ids, 64)

    encoder = model.base_model  # the encoder without the masked-LM head
    encoder.save_pretrained(str(out_dir))
    info = {"encoder": f"{base.name} + in-domain MLM", "base_model": base.name, "split_seed": split_seed,
            "files": splits.files, "texts": len(texts), "steps": step, "epochs": epochs, "lr": lr,
            "mask_probability": mask_probability, "dev_masked_lm_loss": {"before": dev_before, "after": dev_after},
            "seconds": round(time.monotonic() - started, 1),
            "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    (out_dir / INFO).write_text(json.dumps(info, indent=2) + "\n")
    (out_dir / "PROVENANCE.json").write_text(json.dumps({"encoder": info["encoder"]}, indent=2) + "\n")
    return out_dir


def check_pretrained(base_path: Path, split_seed: int, files: dict[str, str]) -> dict[str, Any] | None:
    """What ``PRETRAIN.json`` says of an encoder folder (None: not pretrained here); ValueError if
    it read texts of another cut or data: those include this model's held-out rows."""
    path = Path(base_path) / INFO
    if not path.exists():
        return None
    info = json.loads(path.read_text())
    check_same_cut(info, split_seed, files,
                   lambda cut: (f"{base_path} was pretrained on the training texts of cut {cut}, which include this "
                                f"model's held-out rows (cut {split_seed}); pretrain again with --split-seed {split_seed}"),
                   lambda changed: f"{base_path} was pretrained on other versions of {', '.join(changed)}; pretrain again")
    return info
