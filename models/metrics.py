"""Quality figures and confidence calibration (numpy and scikit-learn, no torch): the training side."""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
from sklearn.metrics import classification_report, confusion_matrix, f1_score

from .logits import softmax


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, bins: int = 15) -> float:
    """ECE: the gap between confidence and accuracy, averaged over equal-width confidence bins."""
    conf = probs.max(axis=1)
    correct = probs.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    ece = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        in_bin = (conf > lo) & (conf <= hi)
        if in_bin.any():
            ece += in_bin.mean() * abs(correct[in_bin].mean() - conf[in_bin].mean())
    return float(ece)


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """Temperature minimising the negative log-likelihood on held-out logits (Guo et al., 2017).

    A 1-D problem: a log-spaced grid then a golden-section refinement, deterministic and cheap.
    """
    def nll(t: float) -> float:
        p = softmax(logits, t)[np.arange(len(labels)), labels]
        return float(-np.log(np.clip(p, 1e-12, None)).mean())

    grid = np.exp(np.linspace(np.log(0.05), np.log(20.0), 60))
    best = int(np.argmin([nll(t) for t in grid]))
    lo, hi = grid[max(best - 1, 0)], grid[min(best + 1, len(grid) - 1)]
    g = (np.sqrt(5) - 1) / 2
    for _ in range(40):
        a, b = hi - g * (hi - lo), lo + g * (hi - lo)
        if nll(a) < nll(b):
            hi = b
        else:
            lo = a
    return float((lo + hi) / 2)


def classification_figures(y_true: Sequence[int], y_pred: Sequence[int], labels: Sequence[str],
                           probs: np.ndarray | None = None) -> dict[str, Any]:
    """accuracy, macro/weighted F1, per-class report and confusion matrix (rows: truth)."""
    y_true_a, y_pred_a = np.asarray(y_true), np.asarray(y_pred)
    idx = list(range(len(labels)))
    out: dict[str, Any] = {
        "n": int(len(y_true_a)),
        "accuracy": float((y_true_a == y_pred_a).mean()) if len(y_true_a) else float("nan"),
        "macro_f1": float(f1_score(y_true_a, y_pred_a, labels=idx, average="macro", zero_division=0)),
        "weighted_f1": float(f1_score(y_true_a, y_pred_a, labels=idx, average="weighted", zero_division=0)),
        "per_class": classification_report(y_true_a, y_pred_a, labels=idx, target_names=list(labels),
                                           output_dict=True, zero_division=0),
        "confusion_matrix": confusion_matrix(y_true_a, y_pred_a, labels=idx).tolist(),
        "labels": list(labels),
    }
    if probs is not None:
        out["ece"] = expected_calibration_error(probs, y_true_a)
    return out


def mcnemar(baseline_correct: Sequence[bool], other_correct: Sequence[bool]) -> dict[str, float]:
    """Exact McNemar test of two models on the same items: ``b`` items only the other model gets
    right, ``c`` only the baseline, and the two-sided p-value that b and c differ by chance (a
    binomial test of b among b + c at one half). Paired: it uses that both saw the same items,
    so it sees differences far smaller than two accuracies' confidence intervals would."""
    a, o = np.asarray(baseline_correct, dtype=bool), np.asarray(other_correct, dtype=bool)
    if a.shape != o.shape:
        raise ValueError("McNemar needs both models' results on the same items")
    b, c = int((o & ~a).sum()), int((a & ~o).sum())
    n = b + c
    tail = sum(math.comb(n, k) for k in range(min(b, c) + 1)) / 2 ** n if n else 1.0
    return {"b": b, "c": c, "p": min(1.0, 2 * tail)}
