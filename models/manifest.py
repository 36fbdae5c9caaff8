"""``onnx/manifest.json``: what the export wrote and checked, read back by the runtime.

The export (models/export.py, needs torch) writes it after gating the ONNX files against the
PyTorch model; the runtime (models/scorer.py, ONNX Runtime only) reads it to choose and refuse
engines and to check that the files it loads are the ones that passed. Typed here, in one place,
so the two sides cannot drift apart: a manifest the runtime cannot read is an error that says
what to do, never a silent default.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import ModelNotFoundError

FILE = "manifest.json"


class Agreement(BaseModel):
    """How a converted model agrees with the PyTorch one on held-out texts."""

    model_config = ConfigDict(extra="allow")  # e.g. the engine a bf16 figure was measured on

    n: int
    topic_agreement: float
    sentiment_agreement: float
    max_abs_logit_diff: float

    @property
    def worst(self) -> float:
        return min(self.topic_agreement, self.sentiment_agreement)


class ParityRecord(BaseModel):
    fp32: Agreement
    int8_candidates: dict[str, Agreement] = Field(default_factory=dict)
    int8: Agreement | None = None
    int8_quantisation: str | None = None  # the int8 candidate that passed its bar, if any
    torch_bf16: Agreement | None = None  # measured only on CPUs with bf16


class Tolerance(BaseModel):
    fp32_max_abs_logit_diff: float
    min_argmax_agreement: dict[str, float]


class ExportManifest(BaseModel):
    model_version: str
    opset: int
    inputs: dict[str, dict[str, str]]
    outputs: dict[str, dict[str, str]]
    labels: dict[str, list[str]]
    tokenizer_sha256: str
    files: dict[str, str]  # ONNX file name -> sha256
    tolerance: Tolerance
    parity: ParityRecord

    def write(self, onnx_dir: Path) -> None:
        (Path(onnx_dir) / FILE).write_text(self.model_dump_json(indent=2) + "\n")

    def bf16_refusal(self) -> str | None:
        """Why the torch-bf16 backend must not serve this model, if its export measured it below the bar."""
        bar = self.tolerance.min_argmax_agreement.get("bf16")
        bf16 = self.parity.torch_bf16
        if bf16 is not None and bar is not None and bf16.worst < bar:
            return (f"bf16 agreed with fp32 on only {bf16.worst:.4f} of {bf16.n} texts at export (bar {bar}); "
                    "serve onnx-fp32")
        return None

    def check_file(self, path: Path) -> None:
        """The ONNX file about to be served is the one the export gated (not replaced or truncated since)."""
        want = self.files.get(Path(path).name)
        if want is None:
            raise ModelNotFoundError(f"{path.name} is not in {path.parent / FILE}: re-run `riskpulse export`")
        if sha256(path) != want:
            raise ModelNotFoundError(f"{path} differs from the file the export checked (sha256 in {path.parent / FILE}); "
                                     "it was changed or copied incompletely: copy the model folder again or re-run "
                                     "`riskpulse export`")


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read(onnx_dir: Path) -> ExportManifest | None:
    """The manifest beside the ONNX files; None for a folder exported before manifests existed."""
    path = Path(onnx_dir) / FILE
    try:
        raw: Any = path.read_text()
    except FileNotFoundError:
        return None
    try:
        return ExportManifest.model_validate_json(raw)
    except ValidationError as exc:
        raise ModelNotFoundError(f"{path} is not a manifest this riskpulse can read ({exc.error_count()} problems, "
                                 f"first: {exc.errors()[0]['loc']}: {exc.errors()[0]['msg']}); "
                                 "re-run `riskpulse export` on the model folder") from None
