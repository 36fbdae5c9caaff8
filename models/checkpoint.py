"""A training run's resumable state, written at every dev evaluation.

Why: a teacher (all-mpnet-base-v2, 110M parameters) fine-tunes for hours on 2 CPU cores; a run
cut short by a reboot, a session's end or the out-of-memory killer must go on from its last
evaluation, not start again. A resumed run is the run it would have been: the weights, the
optimiser and schedule, the best checkpoint so far, the batch order (the epoch's random state
and the position in it) and PyTorch's random state (dropout) are all restored, so the finished
model is the same as one trained without a break (tested).

A checkpoint belongs to one run: the recipe, the data files, the encoder and the teachers are
its fingerprint, and resuming under another fingerprint is refused rather than mixed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

FILE = "checkpoint.pt"


@dataclass
class Checkpoint:
    fingerprint: dict[str, Any]
    step: int
    epoch_rng: dict[str, Any]  # numpy's generator state when this epoch's batches were drawn
    position: int  # batches of this epoch done
    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    schedule: dict[str, Any]
    best: dict[str, Any]
    history: list[dict[str, float]]
    bad_evals: int
    torch_rng: torch.Tensor
    ema: dict[str, Any] | None = None  # the weights' moving average, where the recipe keeps one
    projections: dict[str, Any] | None = None  # hidden-state distillation's projections, where it learns them

    def save(self, folder: Path) -> Path:
        """Atomically: a run killed while writing keeps its previous checkpoint."""
        path = Path(folder) / FILE
        tmp = path.with_suffix(".tmp")
        torch.save(self.__dict__, tmp)
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, folder: Path, fingerprint: dict[str, Any]) -> "Checkpoint | None":
        """The checkpoint in ``folder``, None if there is none; ValueError if it is another run's."""
        path = Path(folder) / FILE
        if not path.exists():
            return None
        saved = torch.load(path, weights_only=False)  # our own file, written by save() above
        if saved["fingerprint"] != fingerprint:
            changed = sorted(k for k in set(saved["fingerprint"]) | set(fingerprint)
                             if saved["fingerprint"].get(k) != fingerprint.get(k))
            raise ValueError(f"{path} is the checkpoint of another run (differs in {', '.join(changed)}); resume "
                             "with the same recipe, data, base model and teachers, or train without --resume")
        return cls(**saved)
