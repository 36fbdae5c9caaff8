"""The versioned model folder: what is in it and how its metadata is read.

Layout::

    <model_dir>/
      model.safetensors, config.json        PyTorch weights (encoder + both heads)
      tokenizer.json, vocab.txt, ...        the encoder's tokenizer
      riskpulse.json                        version, label maps, max_length, temperatures
      card.json, card.md                    model card: data + sha256, recipe, versions, metrics
      onnx/model.onnx                       fp32, dynamic batch and sequence axes
      onnx/model.int8.onnx                  per-channel dynamic int8 for CPU
      onnx/manifest.json                    opset, inputs/axes, labels, hashes, parity figures
      trt/<gpu>-trt<version>-<hash>.engine  TensorRT engines, built on first use per GPU
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ModelNotFoundError

META_FILE = "riskpulse.json"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt")


@dataclass(frozen=True)
class ModelMeta:
    model_version: str
    topics: tuple[str, ...]
    sentiments: tuple[str, ...]
    max_length: int
    temperature_topic: float
    temperature_sentiment: float

    @classmethod
    def read(cls, model_dir: Path) -> "ModelMeta":
        path = Path(model_dir) / META_FILE
        if not path.exists():
            raise ModelNotFoundError(f"{model_dir} is not a riskpulse model folder (no {META_FILE}): "
                                     "train one with `riskpulse train --out DIR` or set RISKPULSE_MODEL_DIR")
        raw = json.loads(path.read_text())
        return cls(model_version=raw["model_version"], topics=tuple(raw["topics"]),
                   sentiments=tuple(raw["sentiments"]), max_length=int(raw["max_length"]),
                   temperature_topic=float(raw["temperature"]["topic"]),
                   temperature_sentiment=float(raw["temperature"]["sentiment"]))

    def to_json(self) -> dict[str, Any]:
        return {"model_version": self.model_version, "topics": list(self.topics),
                "sentiments": list(self.sentiments), "max_length": self.max_length,
                "temperature": {"topic": self.temperature_topic, "sentiment": self.temperature_sentiment}}

    def write(self, model_dir: Path) -> None:
        (Path(model_dir) / META_FILE).write_text(json.dumps(self.to_json(), indent=2) + "\n")


def onnx_path(model_dir: Path, int8: bool) -> Path:
    return Path(model_dir) / "onnx" / ("model.int8.onnx" if int8 else "model.onnx")
