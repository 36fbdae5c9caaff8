"""The levers' study summarises by seeds and pairs each variant with the default recipe per seed."""

from __future__ import annotations

import numpy as np

from bench.model_study import summarize, summary_lines


def test_a_variant_is_compared_with_the_default_on_the_seeds_both_have() -> None:
    ones, zeros = np.ones(10, dtype=bool), np.zeros(10, dtype=bool)
    half = np.array([True] * 5 + [False] * 5)
    results = {
        "default": {13: {"pb": half}, 14: {"pb": half}, 15: {"pb": half}},
        "teacher": {13: {"pb": ones}, 14: {"pb": half}},  # seed 15 not finished yet
    }
    summary = summarize(results, {"pb": 10})
    default, teacher = summary["variants"]["default"]["pb"], summary["variants"]["teacher"]["pb"]
    assert default["seeds"] == [13, 14, 15] and default["mean"] == 0.5 and default["sd"] == 0.0
    assert "mcnemar_pooled" not in default
    assert teacher["seeds"] == [13, 14] and teacher["accuracy"] == [1.0, 0.5] and teacher["mean"] == 0.75
    assert np.isclose(teacher["sd"], np.std([1.0, 0.5], ddof=1))
    # seed 13: the five items only the teacher gets right; seed 14: no discordant item
    assert teacher["mcnemar_per_seed"][13] == {"b": 5, "c": 0, "p": 2 / 2 ** 5}
    assert teacher["mcnemar_per_seed"][14] == {"b": 0, "c": 0, "p": 1.0}
    assert teacher["mcnemar_pooled"] == {"b": 5, "c": 0, "p": 2 / 2 ** 5}
    lines = summary_lines(summary)
    assert lines[2].split()[:3] == ["teacher", "pb", "13,14"] and "5/0, p=0.062; s13 0.062, s14 1.000" in lines[2]
    worse = summarize({"default": {13: {"pb": ones}}, "soft": {13: {"pb": zeros}}}, {"pb": 10})
    assert worse["variants"]["soft"]["pb"]["mcnemar_pooled"] == {"b": 0, "c": 10, "p": 2 / 2 ** 10}
