"""The model riskpulse ships (riskpulse/shipped_model): complete, the files its export gated, small
enough to commit, served with nothing configured, and right about the demo's headlines."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from riskpulse.models import manifest
from riskpulse.models.artifact import META_FILE, ModelMeta, onnx_path
from riskpulse.models.card import read_card
from riskpulse.models.scorer import Scorer
from riskpulse.models.train import recipe_by_name
from riskpulse.settings import SHIPPED_MODEL, Settings
from riskpulse.stream.sample_news import BURST, COMPANIES, TEMPLATES


@pytest.fixture(scope="module")
def shipped() -> Scorer:
    return Scorer(SHIPPED_MODEL)


def test_the_shipped_model_is_complete_small_and_the_file_its_gate_passed() -> None:
    files = {p.relative_to(SHIPPED_MODEL).as_posix() for p in SHIPPED_MODEL.rglob("*") if p.is_file()}
    assert {META_FILE, "tokenizer.json", "card.json", "card.md", "onnx/model.onnx", "onnx/manifest.json"} <= files
    assert sum((SHIPPED_MODEL / f).stat().st_size for f in files) < 50e6
    exported = manifest.read(SHIPPED_MODEL / "onnx")
    assert exported is not None
    exported.check_file(onnx_path(SHIPPED_MODEL, int8=False))  # the bytes the parity gate passed
    assert exported.parity.fp32.worst >= exported.tolerance.min_argmax_agreement["fp32"]
    assert exported.model_version == ModelMeta.read(SHIPPED_MODEL).model_version
    card = read_card(SHIPPED_MODEL)
    assert card["recipe"]["name"] == "default" and card["packed"]["parity"]["n"] >= 4000
    assert set(card["metrics"]) == {"phrasebank-test", "phrasebank-test-allagree", "tw-sentiment-valid", "tw-topic-valid"}
    assert "non-commercial" in (SHIPPED_MODEL / "card.md").read_text()  # PhraseBank's licence carries over
    # the default recipe as it is today: distilled from the kept teacher, which its card names
    assert card["recipe"]["teachers"] == list(recipe_by_name("default").teachers) == card["training"]["teachers"]
    assert "Distilled from the teachers mpnet-s13" in (SHIPPED_MODEL / "card.md").read_text()


def test_with_nothing_configured_a_service_serves_the_shipped_model(tmp_path: Path, shipped: Scorer,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RISKPULSE_MODEL_DIR", raising=False)
    assert Settings(home=tmp_path).model_dir == SHIPPED_MODEL
    assert shipped.engine.name == "onnx:model.onnx:CPUExecutionProvider"


def test_the_demo_burst_is_negative_legal_news_and_the_sample_stream_reads_as_written(shipped: Scorer) -> None:
    burst = shipped.score([t.format(c="Tesla", p=12) for t in BURST])
    assert [s.sentiment for s in burst] == ["negative"] * len(BURST)
    assert Counter(s.topic for s in burst).most_common(1)[0] == ("Legal | Regulation", len(BURST))
    # every template as the demo fills it: the topic and tone it was written for, mostly
    texts = [t.format(c=COMPANIES["AAPL"], p=7, m="March") for _, _, t in TEMPLATES]
    scores = shipped.score(texts)
    topic_hits = sum(s.topic == topic for s, (topic, _, _) in zip(scores, TEMPLATES))
    tone_hits = sum(s.sentiment == tone for s, (_, tone, _) in zip(scores, TEMPLATES))
    report = json.dumps([{"text": text, "written": [topic, tone], "scored": [s.topic, s.sentiment]}
                         for text, s, (topic, tone, _) in zip(texts, scores, TEMPLATES) if (s.topic, s.sentiment) != (topic, tone)],
                        indent=1)
    assert topic_hits >= 0.7 * len(TEMPLATES), report
    assert tone_hits >= 0.8 * len(TEMPLATES), report
