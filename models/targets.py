"""What the model is trained towards and judged by: label targets and the dev score.

Why soft labels: Financial PhraseBank says how many of its annotators agreed on each sentence
(50, 66, 75 or 100 percent; the level is the lower bound of its bin). A sentence half of them
called neutral is not a certain "neutral", and training it as one teaches the model a confidence
the data does not have. With ``soft_agreement`` such a row's target puts the agreeing share on
its label and spreads the rest evenly over the other two, which is all the data says about the
minority's votes. Rows of full agreement and the other sources stay one-hot.

Why a dev score by target: the figures the model is held to weigh four held-out sets equally
(PhraseBank all levels, PhraseBank all-agree, twitter sentiment, twitter topic), while a pooled
dev accuracy is dominated by the largest source (twitter topic and SEntFiN rows far outnumber
PhraseBank's). ``by_target`` picks checkpoints on the mean of the four sets' dev accuracies.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

DevScore = Literal["pooled", "by_target"]
DEV_SCORES: tuple[str, ...] = ("pooled", "by_target")


def sentiment_targets(frame: pd.DataFrame, n_classes: int, soft_agreement: bool) -> torch.Tensor:
    """Per row a distribution over the sentiments (zeros where the row has no sentiment label)."""
    y = frame.sentiment.to_numpy()
    q = np.zeros((len(frame), n_classes), dtype=np.float32)
    rows = np.flatnonzero(y >= 0)
    q[rows, y[rows]] = 1.0
    if soft_agreement and "agreement" in frame:
        share = frame.agreement.to_numpy().astype(np.float32) / 100.0
        soft = rows[(share[rows] > 0) & (share[rows] < 1)]
        q[soft] = ((1.0 - share[soft]) / (n_classes - 1))[:, None]
        q[soft, y[soft]] = share[soft]
    return torch.from_numpy(q)


def label_loss(logits: torch.Tensor, y: torch.Tensor, q: torch.Tensor | None = None) -> torch.Tensor:
    """Cross-entropy on the rows that have a label (``y >= 0``): against ``q``'s distributions
    when given, else the hard labels. Zero when no row of the batch has one."""
    has = y >= 0
    if not has.any():
        return torch.zeros(())
    if q is None:
        return F.cross_entropy(logits, y, ignore_index=-1)
    return F.cross_entropy(logits[has], q[has])


def _accuracy(logits: np.ndarray, y: np.ndarray, rows: np.ndarray) -> float | None:
    return float((logits[rows].argmax(1) == y[rows]).mean()) if rows.any() else None


def dev_score(dev: pd.DataFrame, topic: np.ndarray, sentiment: np.ndarray, mode: DevScore) -> dict[str, float]:
    """Topic and sentiment dev accuracy, and the ``mean`` checkpoints are picked on (see above)."""
    ty, sy = dev.topic.to_numpy(), dev.sentiment.to_numpy()
    t_acc = _accuracy(topic, ty, ty >= 0) or 0.0
    s_acc = _accuracy(sentiment, sy, sy >= 0) or 0.0
    out = {"topic_acc": t_acc, "sentiment_acc": s_acc, "mean": (t_acc + s_acc) / 2}
    if mode == "by_target":
        source = dev.source.to_numpy()
        agreement = dev.agreement.to_numpy() if "agreement" in dev else np.zeros(len(dev))
        parts = {"phrasebank": _accuracy(sentiment, sy, (source == "phrasebank") & (sy >= 0)),
                 "phrasebank_allagree": _accuracy(sentiment, sy, (source == "phrasebank") & (agreement == 100)),
                 "tw_sentiment": _accuracy(sentiment, sy, (source == "tw-sentiment") & (sy >= 0)),
                 "tw_topic": _accuracy(topic, ty, (source == "tw-topic") & (ty >= 0))}
        present = {k: v for k, v in parts.items() if v is not None}
        out.update(present)
        out["mean"] = float(np.mean(list(present.values()))) if present else 0.0
    return out
