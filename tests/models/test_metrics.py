from __future__ import annotations

import numpy as np

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
