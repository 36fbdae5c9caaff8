"""Packing a trained model into the compact form riskpulse ships (models/pack.py)."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest

from riskpulse.models import manifest
from riskpulse.models import pack as packing
from riskpulse.models.artifact import onnx_path
from riskpulse.models.card import read_card
from riskpulse.models.data import load_splits
from riskpulse.models.errors import BackendUnavailableError, ParityError
from riskpulse.models.pack import compare_cards, pack
from riskpulse.models.scorer import Scorer, make_engine


@pytest.fixture(scope="module")
def texts(data_dir: Path) -> list[str]:
    evals = load_splits(data_dir).evals
    return evals["tw-topic-valid"].text.tolist()[:200] + evals["phrasebank-test"].text.tolist()[:200]


def test_a_packed_model_is_half_the_bytes_and_scores_as_the_trained_one(tiny_model: Path, tmp_path: Path,
                                                                        texts: list[str]) -> None:
    out = tmp_path / "packed"
    exported = pack(tiny_model, out, texts)
    packed, fp32 = onnx_path(out, int8=False), onnx_path(tiny_model, int8=False)
    assert packed.stat().st_size < 0.55 * fp32.stat().st_size
    assert sorted(p.name for p in (out / "onnx").iterdir()) == ["manifest.json", "model.onnx"]
    assert exported.files == {"model.onnx": manifest.sha256(packed)}
    assert exported.parity.fp32.worst >= 0.999
    assert exported.parity.fp32.max_abs_logit_diff <= packing.PACKED_MAX_LOGIT_DIFF
    card = read_card(out)
    assert card["packed"]["fp16_tensors"] > 0 and card["metrics"] == read_card(tiny_model)["metrics"]
    assert "Packed for shipping" in (out / "card.md").read_text()

    served = Scorer(out)  # auto: the packed fp32 graph on ONNX Runtime
    assert served.engine.name == "onnx:model.onnx:CPUExecutionProvider"
    reference = Scorer(tiny_model, backend="onnx-fp32")
    (t_ref, s_ref), (t_got, s_got) = reference.logits(texts), served.logits(texts)
    assert (t_ref.argmax(1) == t_got.argmax(1)).mean() >= 0.999
    assert np.abs(s_ref - s_got).max() <= packing.PACKED_MAX_LOGIT_DIFF


def test_the_torch_backends_say_a_packed_model_has_no_pytorch_weights(tiny_model: Path, tmp_path: Path,
                                                                      texts: list[str]) -> None:
    out = tmp_path / "packed"
    pack(tiny_model, out, texts[:50])
    with pytest.raises(BackendUnavailableError, match="no PyTorch weights.*onnx-fp32"):
        make_engine(out, "torch")


def test_a_packed_model_that_fails_its_gate_is_not_left_behind(tiny_model: Path, tmp_path: Path, texts: list[str],
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(packing, "PACKED_MAX_LOGIT_DIFF", 0.0)  # float16 weights always move a logit a little
    out = tmp_path / "packed"
    with pytest.raises(ParityError, match="max \\|logit difference\\|"):
        pack(tiny_model, out, texts[:50])
    assert not onnx_path(out, int8=False).exists()


def test_a_reproduced_model_is_compared_with_the_committed_card(tiny_model: Path) -> None:
    committed = read_card(tiny_model)
    assert compare_cards(copy.deepcopy(committed), committed) == []
    moved = copy.deepcopy(committed)
    name = next(iter(moved["metrics"]))
    moved["metrics"][name]["accuracy"] += 0.02
    moved["recipe"]["lr"] *= 2
    moved["data"]["files"][next(iter(moved["data"]["files"]))] = "0" * 64
    problems = compare_cards(moved, committed)
    assert any("other data files" in p for p in problems)
    assert any("another recipe" in p and "'lr'" in p for p in problems)
    assert any(p.startswith(f"{name} accuracy") for p in problems)
    within = copy.deepcopy(committed)
    within["metrics"][name]["accuracy"] += 0.005  # another CPU's last bits
    assert compare_cards(within, committed) == []
