"""The names users choose between, in one place, importable without numpy or torch.

Settings, the CLI and the models package all validate against these, so a new backend or
training precision is spelled once.
"""

from __future__ import annotations

from typing import Literal, get_args

# "null": fixed logits, no model run; for measuring the stream's own ceiling (bench/), never for news
Backend = Literal["auto", "tensorrt", "onnx-cuda", "onnx", "onnx-fp32", "torch", "torch-bf16", "null"]
Precision = Literal["auto", "fp32", "bf16"]

BACKENDS: tuple[str, ...] = get_args(Backend)
PRECISIONS: tuple[str, ...] = get_args(Precision)
