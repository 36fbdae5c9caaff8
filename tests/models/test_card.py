"""The model card states the licences of the data a model learned from."""

from __future__ import annotations

from riskpulse.models.card import _licence_lines


def test_a_model_trained_on_phrasebank_carries_the_non_commercial_caveat() -> None:
    lines = "\n".join(_licence_lines({"financial-phrasebank/all.csv": "ab", "sentfin/all.csv": "cd"}))
    assert "financial-phrasebank (CC BY-NC-SA 3.0)" in lines and "sentfin (MIT)" in lines
    assert "non-commercial" in lines


def test_a_model_without_phrasebank_has_no_caveat() -> None:
    lines = "\n".join(_licence_lines({"twitter-financial-news-topic/train.csv": "ef"}))
    assert "twitter-financial-news-topic (MIT)" in lines and "non-commercial" not in lines
