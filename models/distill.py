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
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from .augment import transfer_texts
from .logits import softmax
from .targets import label_loss
from .teacher_predictions import TeacherPredictions

log = logging.getLogger(__name__)


def is_outside_teacher(teacher: Path | str) -> bool:
    """A Hugging Face classifier (a folder without a riskpulse card, or a hub id), not a riskpulse
    model or its kept predictions: its training data, and so its overlap with the held-out rows, is unknown."""
    path = Path(teacher)
    if TeacherPredictions.is_artifact(path):
        return bool(TeacherPredictions.read_meta(path).get("external"))  # its description, not its arrays
    return not (path / "card.json").exists() and (not path.exists() or (path / "config.json").exists())


def teacher_predictions(teacher: Path | str, texts: list[str], split_seed: int,
                        files: dict[str, str]) -> TeacherPredictions:
    """A teacher's predictions: read from a predictions folder, computed by running a riskpulse
    model folder, or by a Hugging Face sequence-classification model (a folder with no riskpulse
    card, or a hub id); refused (ValueError) if the teacher may not teach this cut and data."""
    path = Path(teacher)
    if TeacherPredictions.is_artifact(path):
        predictions = TeacherPredictions.read(path)
        predictions.check(split_seed, files)
        return predictions
    log.info("teacher logits", extra={"teacher": str(teacher), "rows": len(texts)})
    if not is_outside_teacher(teacher):
        return TeacherPredictions.from_model(path, texts, split_seed, files)
    log.warning("outside teacher: its training data is unknown here; if it saw Financial PhraseBank, the "
                "student's held-out PhraseBank figures are optimistic", extra={"teacher": str(teacher)})
    return TeacherPredictions.from_hf_classifier(str(teacher), texts)


def teacher_targets(teachers: Sequence[Path | str], texts: list[str], split_seed: int, files: dict[str, str],
                    temperature: float) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Log of the teachers' mean probabilities at ``temperature``, per head, for ``texts``; None
    for a head no teacher has (an outside classifier teaches one head).

    A teacher is a riskpulse model folder (run here), its kept predictions
    (models/teacher_predictions.py), or a Hugging Face sequence-classification model.
    """
    heads: list[list[np.ndarray]] = [[], []]
    for teacher in teachers:
        predictions = teacher_predictions(teacher, texts, split_seed, files)
        for head, logits in zip(heads, predictions.logits_for(texts)):
            if logits is not None:
                head.append(softmax(logits, temperature))
    topic, sentiment = (np.log(np.clip(np.mean(h, axis=0), 1e-8, None)).astype(np.float32) if h else None
                        for h in heads)
    return topic, sentiment


def transfer_rows(teachers: Sequence[Path | str], train: pd.DataFrame) -> pd.DataFrame:
    """Rows of the transfer set a teacher's kept predictions carry (models/augment.py): the variants
    of ``train``'s texts, without labels (the teacher's soft targets are all a student learns from
    them), each with the source of the text it came from. Empty where no teacher has one."""
    kept = [TeacherPredictions.read(Path(t)) for t in teachers if TeacherPredictions.is_artifact(Path(t))]
    with_set = [p for p in kept if p.augmentation is not None]
    if not with_set:
        return train.iloc[:0]
    if len(teachers) > 1:
        raise ValueError("a teacher's transfer set is labelled by that teacher alone: train with it as the only "
                         "teacher (--teachers PREDICTIONS_DIR)")
    predictions = with_set[0]
    if predictions.neighbours is None:
        raise ValueError(f"teacher predictions {predictions.meta.get('teacher', '?')} name an augmentation but hold "
                         "no neighbour table; recompute them with `riskpulse teacher predict --augment-copies N`")
    texts, origin = transfer_texts(train.text.tolist(), predictions.augmentation,  # type: ignore[arg-type]
                                   predictions.neighbours.lookup())
    rows = train.iloc[origin].copy()
    rows["text"] = texts
    rows["topic"] = -1
    rows["sentiment"] = -1
    rows["agreement"] = 0
    return rows.reset_index(drop=True)


def distill_ensemble_loss(student: tuple[torch.Tensor, torch.Tensor],
                          soft: tuple[torch.Tensor | None, torch.Tensor | None],
                          labels: tuple[torch.Tensor, torch.Tensor], weight: float,
                          temperature: float,
                          label_q: tuple[torch.Tensor | None, torch.Tensor | None] = (None, None)) -> torch.Tensor:
    """(1 - weight) x cross-entropy on the labels a row has + weight x T^2 x KL to the teachers, both heads.

    T^2 keeps the soft term's gradients on the scale of the hard one (Hinton et al., 2015). A
    head without teachers (``None``) learns from its labels alone, at full weight. ``label_q``:
    per head, distributions to use for the labelled rows instead of one-hot labels (models/targets.py).
    """
    loss = torch.zeros(())
    for logits, soft_logp, y, q in zip(student, soft, labels, label_q):
        hard = 1.0
        if soft_logp is not None:
            kl = F.kl_div(F.log_softmax(logits / temperature, -1), soft_logp, log_target=True, reduction="batchmean")
            loss = loss + weight * temperature ** 2 * kl
            hard = 1 - weight
        loss = loss + hard * label_loss(logits, y, q)
    return loss


def student_layers(student_depth: int, teacher_layers: Sequence[int], teacher_depth: int) -> tuple[int, ...]:
    """The student layer matched with each kept teacher layer: the same relative depth (TinyBERT's
    uniform mapping: a 6-layer student's layer 3 learns the 12-layer teacher's layer 6)."""
    return tuple(max(1, min(student_depth, round(layer * student_depth / teacher_depth))) for layer in teacher_layers)


def hidden_loss(student: list[torch.Tensor], projections: nn.ModuleList, target: torch.Tensor) -> torch.Tensor:
    """Mean over the matched layers of 1 - cosine between the student's pooled state, projected to
    the teacher's width (384 -> 768 for MiniLM under MPNet: learned, dropped after training), and
    the teacher's (``target``: rows x layers x width). Sentence-level, so the two models'
    tokenisers need not agree on a single token."""
    losses = [1 - F.cosine_similarity(proj(s.float()), target[:, i].float(), dim=-1).mean()
              for i, (proj, s) in enumerate(zip(projections, student))]
    return torch.stack(losses).mean()


def kept_hidden(teachers: Sequence[Path | str]) -> TeacherPredictions:
    """The one teacher whose kept predictions carry hidden states; ValueError saying what to do otherwise."""
    kept = [TeacherPredictions.read(Path(t)) for t in teachers if TeacherPredictions.is_artifact(Path(t))]
    if len(teachers) != 1 or not kept or kept[0].hidden is None:
        raise ValueError("hidden-state distillation learns from one teacher's kept predictions with hidden states: "
                         "`riskpulse teacher predict --teacher T --out DIR --hidden-layers 2 4 6 8 10 12`, then "
                         "`riskpulse train --teachers DIR --hidden-weight W`")
    return kept[0]
