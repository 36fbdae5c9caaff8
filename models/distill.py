"""Distillation from an ensemble of earlier riskpulse models (teachers) into one student.

Why: one MiniLM-L6 model is the size and speed we serve, but several of them, trained with
different seeds, agree on more of the held-out rows than any one does. Training a student on
the teachers' averaged probabilities (softened by a temperature) passes part of that on at no
serving cost. It also fills the labels a row lacks: a twitter-topic row gets the teachers'
sentiment and a PhraseBank row their topic, where the masked loss alone teaches nothing.

Teachers must come from the same held-out cut (``Recipe.split_seed``) and the same data files:
a teacher cut differently has trained on the student's PhraseBank test rows, and its figures
would leak into the student's. :func:`teacher_targets` refuses such a teacher.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .logits import softmax
from .teacher_predictions import TeacherPredictions

log = logging.getLogger(__name__)


def teacher_predictions(teacher: Path, texts: list[str], split_seed: int,
                        files: dict[str, str]) -> TeacherPredictions:
    """A teacher's predictions: read from a predictions folder, or computed by running a model
    folder; refused (ValueError) if the teacher may not teach this cut and data."""
    teacher = Path(teacher)
    if TeacherPredictions.is_artifact(teacher):
        predictions = TeacherPredictions.read(teacher)
        predictions.check(split_seed, files)
        return predictions
    log.info("teacher logits", extra={"teacher": str(teacher), "rows": len(texts)})
    return TeacherPredictions.from_model(teacher, texts, split_seed, files)


def teacher_targets(teachers: Sequence[Path], texts: list[str], split_seed: int, files: dict[str, str],
                    temperature: float) -> tuple[np.ndarray, np.ndarray]:
    """Log of the teachers' mean probabilities at ``temperature``, per head, for ``texts``.

    A teacher is a riskpulse model folder (run here) or its kept predictions (models/teacher_predictions.py).
    """
    heads: list[list[np.ndarray]] = [[], []]
    for teacher in teachers:
        predictions = teacher_predictions(teacher, texts, split_seed, files)
        for head, logits in zip(heads, predictions.logits_for(texts)):
            head.append(softmax(logits, temperature))
    topic, sentiment = (np.log(np.clip(np.mean(h, axis=0), 1e-8, None)).astype(np.float32) for h in heads)
    return topic, sentiment


def distill_ensemble_loss(student: tuple[torch.Tensor, torch.Tensor], soft: tuple[torch.Tensor, torch.Tensor],
                          labels: tuple[torch.Tensor, torch.Tensor], weight: float,
                          temperature: float) -> torch.Tensor:
    """(1 - weight) x cross-entropy on the labels a row has + weight x T^2 x KL to the teachers, both heads.

    T^2 keeps the soft term's gradients on the scale of the hard one (Hinton et al., 2015).
    """
    loss = torch.zeros(())
    for logits, soft_logp, y in zip(student, soft, labels):
        kl = F.kl_div(F.log_softmax(logits / temperature, -1), soft_logp, log_target=True, reduction="batchmean")
        loss = loss + weight * temperature ** 2 * kl
        if (y >= 0).any():
            loss = loss + (1 - weight) * F.cross_entropy(logits, y, ignore_index=-1)
    return loss
