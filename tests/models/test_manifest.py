"""The typed manifest between the export and the runtime (models/manifest.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from riskpulse.models import manifest
from riskpulse.models.errors import ModelNotFoundError
from riskpulse.models.scorer import Scorer


def agreement(worst: float) -> manifest.Agreement:
    return manifest.Agreement(n=300, topic_agreement=worst, sentiment_agreement=1.0, max_abs_logit_diff=0.01)


def exported(tmp_path: Path, bf16: float | None = None) -> manifest.ExportManifest:
    (tmp_path / "model.onnx").write_bytes(b"onnx bytes")
    return manifest.ExportManifest(
        model_version="m1", opset=17, inputs={"input_ids": {"0": "batch", "1": "sequence"}},
        outputs={"topic_logits": {"0": "batch"}}, labels={"sentiment": ["negative", "neutral", "positive"]},
        tokenizer_sha256="0" * 64, files={"model.onnx": manifest.sha256(tmp_path / "model.onnx")},
        tolerance=manifest.Tolerance(fp32_max_abs_logit_diff=1e-3, min_argmax_agreement={"fp32": 0.999, "bf16": 0.995}),
        parity=manifest.ParityRecord(fp32=agreement(1.0), torch_bf16=None if bf16 is None else agreement(bf16)))


def test_what_the_export_writes_the_runtime_reads_back(tmp_path: Path) -> None:
    written = exported(tmp_path, bf16=0.999)
    written.write(tmp_path)
    assert manifest.read(tmp_path) == written
    assert manifest.read(tmp_path / "elsewhere") is None  # exported before manifests existed
    assert written.bf16_refusal() is None
    assert "agreed with fp32 on only 0.9000" in (exported(tmp_path, bf16=0.9).bf16_refusal() or "")


def test_a_served_file_that_is_not_the_one_the_export_checked_is_refused(tmp_path: Path) -> None:
    written = exported(tmp_path)
    written.check_file(tmp_path / "model.onnx")
    (tmp_path / "model.onnx").write_bytes(b"onnx bytes, truncated or replaced")
    with pytest.raises(ModelNotFoundError, match="differs from the file the export checked"):
        written.check_file(tmp_path / "model.onnx")
    with pytest.raises(ModelNotFoundError, match="not in"):
        written.check_file(tmp_path / "other.onnx")


def test_a_manifest_this_version_cannot_read_says_to_export_again(tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_text('{"model_version": "m1"}')
    with pytest.raises(ModelNotFoundError, match="re-run `riskpulse export`"):
        manifest.read(tmp_path)


def test_the_scorer_refuses_an_onnx_file_changed_after_export(tiny_model: Path, tmp_path: Path) -> None:
    model = shutil.copytree(tiny_model, tmp_path / "m")
    assert Scorer(model, backend="onnx-fp32").score(["Fed holds rates"])
    int8 = model / "onnx" / "model.int8.onnx"
    int8.write_bytes(int8.read_bytes()[: int8.stat().st_size // 2])  # a copy that stopped half way
    with pytest.raises(ModelNotFoundError, match="differs from the file the export checked"):
        Scorer(model, backend="onnx")
