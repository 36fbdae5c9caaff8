from __future__ import annotations

import numpy as np
import pytest

from riskpulse.models.logits import softmax
from riskpulse.models.metrics import classification_figures, expected_calibration_error, fit_temperature


def test_temperature_scaling_recovers_a_known_temperature() -> None:
    rng = np.random.default_rng(0)
    true_logits = rng.normal(size=(4000, 3)) * 2
    labels = np.array([rng.choice(3, p=p) for p in softmax(true_logits)])
    overconfident = true_logits * 2.5  # a model that is 2.5x too sure of itself
    t = fit_temperature(overconfident, labels)
    assert 2.2 < t < 2.8
    assert expected_calibration_error(softmax(overconfident, t), labels) < expected_calibration_error(softmax(overconfident), labels)


def test_classification_figures() -> None:
    fig = classification_figures([0, 0, 1, 2], [0, 1, 1, 2], ["a", "b", "c"])
    assert fig["accuracy"] == 0.75 and fig["n"] == 4
    assert fig["confusion_matrix"] == [[1, 1, 0], [0, 1, 0], [0, 0, 1]]
    assert 0 < fig["macro_f1"] < 1


def test_mcnemar_counts_the_discordant_items_and_tests_them_exactly() -> None:
    from riskpulse.models.metrics import mcnemar

    base = [True] * 80 + [False] * 20
    same = mcnemar(base, base)
    assert same == {"b": 0, "c": 0, "p": 1.0}
    # 10 items only the other model gets right, 2 only the baseline: p = 2 * P(X <= 2), X ~ Bin(12, 0.5)
    other = [True] * 78 + [False] * 2 + [True] * 10 + [False] * 10
    r = mcnemar(base, other)
    assert (r["b"], r["c"]) == (10, 2) and abs(r["p"] - 2 * (1 + 12 + 66) / 4096) < 1e-12
    assert mcnemar(other, base)["p"] == r["p"]  # two-sided
    with pytest.raises(ValueError):
        mcnemar(base, base[:-1])
