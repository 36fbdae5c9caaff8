"""Pack a trained model folder into the compact, ONNX-only form riskpulse ships and serves as is.

A trained folder holds PyTorch weights, a fused fp32 ONNX graph, a plain one for TensorRT and an
int8 variant: about 270 MB for the default recipe, too much to commit. Serving on a CPU needs
only the fused graph. Packing keeps that graph and stores its weights as float16, each behind a
Cast to float32: ONNX Runtime folds the casts when it loads the file, so inference runs in fp32,
at fp32's speed, from half the bytes. The packed file is gated against the PyTorch model on the
held-out texts like any export (argmax agreement at the fp32 bar; the logit difference is bounded
by float16's rounding of the weights, not by fp32's) and gets a manifest of its own, so the
runtime checks its hash before serving it.

What a packed folder cannot do: serve the torch backends or TensorRT (no PyTorch weights, no
plain graph), or be fine-tuned further (``--init-from``). Retrain for those: the recipe is in
its card.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .artifact import META_FILE, TOKENIZER_FILES, onnx_path
from .card import read_card, render_card, write_card
from .errors import ParityError
from .export import MIN_AGREEMENT, check, parity, write_manifest
from .manifest import Agreement, ExportManifest, ParityRecord, Tolerance
from .scorer import OnnxEngine, Scorer, TorchEngine

log = logging.getLogger(__name__)

MIN_ELEMENTS = 1024  # smaller tensors (biases, LayerNorm scales) stay fp32: no bytes to save
# float16 keeps 11 significant bits: each weight moves by at most 2^-11 of itself. Measured on the
# default model: 6e-3 at most over 4,382 held-out texts; the bar leaves room, argmax decides.
PACKED_MAX_LOGIT_DIFF = 0.05
# held-out metrics of a reproduced model may differ from the committed card by this much (another
# CPU, another library build: bf16 and thread counts change the last bits of training)
REPRODUCE_TOLERANCE = 0.01


def fp16_storage(src: Path, dst: Path, min_elements: int = MIN_ELEMENTS) -> int:
    """Write ``src`` with its large fp32 initializers stored as fp16 behind a Cast; returns how many."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(src))
    graph = model.graph
    casts, initializers = [], []
    for init in graph.initializer:
        if init.data_type == TensorProto.FLOAT and int(np.prod(init.dims)) >= min_elements:
            half = numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float16), init.name + "/fp16")
            initializers.append(half)
            casts.append(helper.make_node("Cast", [half.name], [init.name], to=TensorProto.FLOAT,
                                          name=init.name + "/to_fp32"))
        else:
            initializers.append(init)
    del graph.initializer[:]
    graph.initializer.extend(initializers)
    nodes = list(graph.node)
    del graph.node[:]
    graph.node.extend(casts + nodes)  # casts first: the graph stays topologically sorted
    dst.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(dst))
    return len(casts)


def pack(model_dir: Path, out: Path, parity_texts: Sequence[str], threads: int | None = None) -> ExportManifest:
    """Pack ``model_dir`` (trained and exported) into ``out``: tokenizer, label maps, card, one ONNX file.

    Raises :class:`ParityError` (and leaves ``out`` without an ONNX file) if the packed model
    disagrees with the PyTorch one beyond the bars.
    """
    model_dir, out = Path(model_dir), Path(out)
    fp32 = onnx_path(model_dir, int8=False)
    if not fp32.exists():
        raise FileNotFoundError(f"{fp32} is missing: run `riskpulse export --model {model_dir}` first")
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for name in (META_FILE, *TOKENIZER_FILES):
        if (model_dir / name).exists():
            shutil.copy(model_dir / name, out / name)
    packed = onnx_path(out, int8=False)
    casts = fp16_storage(fp32, packed)
    reference = Scorer(model_dir, engine=TorchEngine.from_dir(model_dir, "cpu"), batch_size=64)
    p = parity(reference, Scorer(out, engine=OnnxEngine(packed, threads=threads), batch_size=64), parity_texts)
    agreement = Agreement(**p.to_json(), weights="float16 storage, float32 compute")  # type: ignore[arg-type]
    log.info("parity", extra={"kind": "packed", **p.to_json()})
    try:
        check("packed", p, MIN_AGREEMENT["fp32"], PACKED_MAX_LOGIT_DIFF)
    except ParityError:
        packed.unlink()  # never leave a model behind that failed its gate
        raise
    manifest = write_manifest(out, [packed], Tolerance(fp32_max_abs_logit_diff=PACKED_MAX_LOGIT_DIFF,
                                                       min_argmax_agreement={"fp32": MIN_AGREEMENT["fp32"]}),
                              ParityRecord(fp32=agreement))
    card = read_card(model_dir)
    card.pop("export", None)  # the trained folder's ONNX files and int8 candidates: not shipped
    card["packed"] = {"weights": "float16 storage, float32 compute (ONNX Runtime folds the casts at load)",
                      "fp16_tensors": casts, "bytes": packed.stat().st_size, "parity": agreement.model_dump(),
                      "backends": "onnx-fp32 (CPU), onnx-cuda; no PyTorch weights"}
    write_card(out, card)
    (out / "card.md").write_text(render_card(card) + "\n" + _packed_lines(card["packed"]))
    return manifest


def _packed_lines(packed: dict[str, Any]) -> str:
    p = packed["parity"]
    return "\n".join(["## Packed for shipping", "",
                      f"{packed['weights']}; {packed['bytes'] / 1e6:.1f} MB, {packed['fp16_tensors']} tensors in float16. "
                      f"Against the PyTorch model on {p['n']:,} held-out texts: argmax agreement topic "
                      f"{p['topic_agreement']:.4f}, sentiment {p['sentiment_agreement']:.4f}; max |logit difference| "
                      f"{p['max_abs_logit_diff']:.1e}. Serves with {packed['backends']}.", ""])


def compare_cards(new: dict[str, Any], committed: dict[str, Any],
                  tolerance: float = REPRODUCE_TOLERANCE) -> list[str]:
    """Why a reproduced model is not the committed one: other data, another recipe, or held-out
    metrics further apart than ``tolerance``. Empty when it reproduces."""
    problems = []
    if new["data"]["files"] != committed["data"]["files"]:
        problems.append("trained on other data files (sha256 differ): "
                        f"{sorted(set(new['data']['files'].items()) ^ set(committed['data']['files'].items()))}")
    recipe_new, recipe_old = dict(new["recipe"]), dict(committed["recipe"])
    if recipe_new != recipe_old:
        diff = {k: (recipe_old.get(k), recipe_new.get(k)) for k in recipe_new.keys() | recipe_old.keys()
                if recipe_new.get(k) != recipe_old.get(k)}
        problems.append(f"another recipe (committed, reproduced): {diff}")
    for name, old in committed["metrics"].items():
        got = new["metrics"].get(name)
        if got is None:
            problems.append(f"{name}: not evaluated")
            continue
        for metric in ("accuracy", "macro_f1"):
            if abs(float(got[metric]) - float(old[metric])) > tolerance:
                problems.append(f"{name} {metric}: {got[metric]:.4f} reproduced, {old[metric]:.4f} committed "
                                f"(more than {tolerance} apart)")
    return problems
