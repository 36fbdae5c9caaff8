"""Held-out evaluation of a model on a ``text,label[,agreement]`` CSV (the format of ../shared/data)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from .card import format_by_agreement
from .data import read_labelled_csv
from .labels import TASKS
from .logits import softmax
from .metrics import classification_figures
from .scorer import Scorer

Task = Literal["topic", "sentiment"]


def task_probabilities(scorer: Scorer, frame: pd.DataFrame, task: Task) -> np.ndarray:
    """Calibrated probabilities of ``task``'s head for ``frame.text``, in order."""
    topic, sentiment = scorer.logits([" ".join(t.split()) or "." for t in frame.text])
    if task == "topic":
        return softmax(topic, scorer.meta.temperature_topic)
    return softmax(sentiment, scorer.meta.temperature_sentiment)


def evaluate_frame(scorer: Scorer, frame: pd.DataFrame, task: Task | None = None) -> dict[str, Any]:
    """Figures for one task; temperatures applied, so ``ece`` is the calibrated confidence's error."""
    task = task or frame["task"].iloc[0]
    labels = TASKS[task]
    unknown = sorted(set(frame.label) - set(labels))
    if unknown:
        raise ValueError(f"labels {unknown[:5]} are not {task} labels; expected one of {list(labels)}")
    y = frame.label.map(labels.index).to_numpy()
    probs = task_probabilities(scorer, frame, task)
    out = classification_figures(y, probs.argmax(1), labels, probs)
    out["task"] = task
    if "agreement" in frame.columns:
        out["accuracy_by_agreement"] = accuracy_by_agreement(frame.agreement, y == probs.argmax(1))
    return out


def accuracy_by_agreement(agreement: pd.Series, correct: np.ndarray) -> dict[str, dict[str, float]]:
    """Accuracy per annotator-agreement level (PhraseBank: 50, 66, 75, 100 % of annotators).

    Where annotators split, the gold label is itself uncertain; this shows how much of the
    error sits there rather than on the sentences everyone labelled alike.
    """
    levels = pd.to_numeric(agreement, errors="coerce").to_numpy()
    out = {}
    for level in sorted(set(levels[~np.isnan(levels)])):
        hit = correct[levels == level]
        out[str(int(level))] = {"n": int(hit.size), "accuracy": float(hit.mean())}
    return out


def evaluate_csv(scorer: Scorer, path: Path, task: Task, min_agreement: int | None = None) -> dict[str, Any]:
    frame = read_labelled_csv(Path(path))
    if min_agreement is not None:
        if "agreement" not in frame.columns:
            raise ValueError(f"{path} has no agreement column; drop --min-agreement")
        frame = frame[frame.agreement.astype(int) >= min_agreement]
    out = evaluate_frame(scorer, frame, task)
    out["file"] = str(path)
    return out


def format_report(fig: dict[str, Any]) -> str:
    """A human-readable report: headline figures, per-class table, confusion matrix."""
    labels = fig["labels"]
    lines = [f"task={fig['task']} n={fig['n']} accuracy={fig['accuracy']:.4f} "
             f"macro_f1={fig['macro_f1']:.4f} weighted_f1={fig['weighted_f1']:.4f}"
             + (f" ece={fig['ece']:.4f}" if "ece" in fig else ""), "",
             f"{'class':<30}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>10}"]
    for name in labels:
        r = fig["per_class"][name]
        lines.append(f"{name:<30}{r['precision']:>10.3f}{r['recall']:>10.3f}{r['f1-score']:>10.3f}{int(r['support']):>10}")
    if fig.get("accuracy_by_agreement"):
        lines += ["", "accuracy by annotator agreement: " + format_by_agreement(fig["accuracy_by_agreement"])]
    lines += ["", "confusion matrix (rows: truth, columns: predicted, order as above)"]
    width = max(5, len(str(np.max(fig["confusion_matrix"]))) + 1)
    for name, row in zip(labels, fig["confusion_matrix"]):
        lines.append(f"{name[:28]:<30}" + "".join(f"{v:>{width}}" for v in row))
    return "\n".join(lines)
