"""Training, calibration, export parity, quantisation gate and every backend this host can run."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from models.artifact import ModelMeta
from models.data import sha256
from models.errors import InvalidTextError, ParityError
from models.labels import SENTIMENTS, TOPICS
from models.scorer import Scorer, available_backends

HEADLINES = [
    "Apple shares slide after weak iPhone guidance",
    "Fed holds rates steady, signals patience on cuts",
    "Exxon profit beats estimates on higher refining margins",
    "$TSLA Tesla recalls 200,000 vehicles over seatbelt fault",
    "Bank of England raises rates by 25 basis points",
]


def test_model_card_records_data_recipe_metrics_and_calibration(tiny_model: Path, data_dir: Path) -> None:
    card = json.loads((tiny_model / "card.json").read_text())
    assert card["model_version"] == ModelMeta.read(tiny_model).model_version
    for rel, digest in card["data"]["files"].items():
        assert sha256(data_dir / rel) == digest
    assert set(card["metrics"]) == {"phrasebank-test", "phrasebank-test-allagree", "tw-sentiment-valid", "tw-topic-valid"}
    assert card["metrics"]["tw-topic-valid"]["n"] == 2061
    assert 0 < card["parameters"] <= 25_000_000
    for head in ("topic", "sentiment"):
        cal = card["calibration"][head]
        assert cal["temperature"] > 0 and 0 <= cal["dev_ece_after"] <= 1 and 0 <= cal["dev_ece_before"] <= 1
    assert card["recipe"]["name"] == "tiny" and card["versions"]["torch"]
    assert "Held-out metrics" in (tiny_model / "card.md").read_text()


def test_export_parity_is_recorded_and_within_tolerance(tiny_model: Path) -> None:
    manifest = json.loads((tiny_model / "onnx" / "manifest.json").read_text())
    fp32 = manifest["parity"]["fp32"]
    assert fp32["topic_agreement"] >= 0.999 and fp32["sentiment_agreement"] >= 0.999
    assert fp32["max_abs_logit_diff"] <= 1e-3
    chosen = manifest["parity"]["int8_quantisation"]
    assert chosen is not None
    assert min(manifest["parity"]["int8"]["topic_agreement"], manifest["parity"]["int8"]["sentiment_agreement"]) >= 0.97
    assert manifest["inputs"]["input_ids"] == {"0": "batch", "1": "sequence"}
    for name, digest in manifest["files"].items():
        assert sha256(tiny_model / "onnx" / name) == digest


def test_parity_gate_fails_loudly_and_removes_the_failed_model(tiny_model: Path, tmp_path: Path) -> None:
    from models.export import export

    model = shutil.copytree(tiny_model, tmp_path / "m")
    with pytest.raises(ParityError, match="no int8 quantisation reaches"):
        export(model, HEADLINES * 4, min_agreement={"int8": 1.01})  # unreachable bar
    assert not (model / "onnx" / "model.int8.onnx").exists()
    assert (model / "onnx" / "manifest.json").exists()  # the figures stay for the post-mortem


@pytest.mark.parametrize("backend", ["onnx", "onnx-fp32", "torch"])
def test_backends_return_the_scorer_contract(tiny_model: Path, backend: str) -> None:
    scores = Scorer(tiny_model, backend=backend).score(HEADLINES)
    assert len(scores) == len(HEADLINES)
    for s in scores:
        assert s.topic in TOPICS and s.sentiment in SENTIMENTS
        assert 0 < s.topic_confidence <= 1
        assert abs(sum(s.sentiment_probs.values()) - 1) < 1e-4
        assert s.sentiment_score == pytest.approx(s.sentiment_probs["positive"] - s.sentiment_probs["negative"], abs=1e-5)
        assert s.model_version == ModelMeta.read(tiny_model).model_version


def test_backends_agree_with_each_other(tiny_model: Path, data_dir: Path) -> None:
    import pandas as pd

    texts = pd.read_csv(data_dir / "twitter-financial-news-topic" / "valid.csv").text.tolist()[:200]
    ref = Scorer(tiny_model, backend="torch").logits(texts)
    fp32 = Scorer(tiny_model, backend="onnx-fp32").logits(texts)
    for a, b in zip(ref, fp32):
        assert np.abs(a - b).max() < 1e-3
        assert (a.argmax(1) == b.argmax(1)).all()


def test_order_is_kept_through_length_sorting(tiny_model: Path) -> None:
    scorer = Scorer(tiny_model, backend="onnx-fp32", batch_size=2)
    texts = ["short", "a much longer headline about central banks and credit markets today", "mid length one"]
    together = scorer.score(texts)
    alone = [scorer.score([t])[0] for t in texts]
    for a, b in zip(together, alone):
        assert a.topic == b.topic and a.sentiment_score == pytest.approx(b.sentiment_score, abs=1e-4)


@pytest.mark.parametrize("bad,reason", [("", "empty"), ("   \n\t", "empty"), (None, "expected text"),
                                        (42, "expected text"), (b"\xff\xfe", "not UTF-8"), (["x"], "expected text")])
def test_bad_input_gets_a_clear_error_naming_the_item(tiny_model: Path, bad: object, reason: str) -> None:
    with pytest.raises(InvalidTextError, match=reason) as info:
        Scorer(tiny_model, backend="onnx").score(["fine headline", bad])
    assert info.value.index == 1


def test_huge_and_odd_text_is_scored_not_crashed(tiny_model: Path) -> None:
    scores = Scorer(tiny_model, backend="onnx").score(["crash " * 200_000, "🚀📉 $GME", "Ñandú S.A. quiebra", b"bytes headline"])
    assert len(scores) == 4


def test_cpu_serving_does_not_import_torch(tiny_model: Path) -> None:
    code = ("import sys; from models.scorer import Scorer; "
            f"s = Scorer({str(tiny_model)!r}, backend='onnx'); s.score(['Fed hikes rates']); "
            "print('torch' in sys.modules, 'transformers' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False False"


def test_evaluate_command_prints_json_last(tiny_model: Path, data_dir: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "riskpulse.cli", "evaluate", "--model", str(tiny_model), "--data",
                          str(data_dir / "financial-phrasebank" / "all.csv"), "--task", "sentiment",
                          "--min-agreement", "100", "--json"], capture_output=True, text=True, check=True)
    lines = out.stdout.strip().splitlines()
    fig = json.loads(lines[-1])
    assert fig["n"] == 1797 and 0 <= fig["accuracy"] <= 1
    assert {"accuracy", "macro_f1", "weighted_f1", "n", "per_class", "confusion_matrix"} <= set(fig)
    assert sum(map(sum, fig["confusion_matrix"])) == 1797
    assert "confusion matrix" in out.stdout


def test_score_command_writes_jsonl_with_errors_for_bad_rows(tiny_model: Path, tmp_path: Path) -> None:
    src = tmp_path / "in.csv"
    src.write_text('headline,source\n"Fed hikes rates",wire\n"",wire\n"Oil slumps",wire\n')
    out = tmp_path / "out.jsonl"
    subprocess.run([sys.executable, "-m", "riskpulse.cli", "score", str(src), "--out", str(out), "--model",
                    str(tiny_model), "--backend", "onnx"], check=True, capture_output=True)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r.get("error") for r in rows] == [None, "empty or whitespace-only text", None]
    assert rows[0]["source"] == "wire" and rows[0]["sentiment"] in SENTIMENTS


def test_auto_backend_prefers_what_the_host_has(tiny_model: Path) -> None:
    found = available_backends()
    assert "onnx" in found and "torch" in found
    assert Scorer(tiny_model).engine.name.startswith("onnx:model.onnx")  # no GPU here: fp32 ONNX Runtime


def test_cuda_backend_matches_cpu(tiny_model: Path) -> None:
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs an NVIDIA GPU with CUDA; this host has none")
    cpu = Scorer(tiny_model, backend="onnx-fp32").logits(HEADLINES)
    gpu = Scorer(tiny_model, backend="torch").logits(HEADLINES)
    for a, b in zip(cpu, gpu):
        assert (a.argmax(1) == b.argmax(1)).all()
