"""ONNX export, CPU graph fusion, int8 quantisation and the parity gate.

``export(model_dir)`` writes ``onnx/model.onnx`` (fp32, dynamic batch and sequence axes, with
ONNX Runtime's transformer fusions applied), ``onnx/model.int8.onnx`` (per-channel dynamic
int8 weights) and ``onnx/manifest.json``, then checks both against the PyTorch model on real
held-out texts. A model that disagrees beyond the bar raises :class:`ParityError`.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .artifact import ModelMeta, onnx_path
from .card import read_card, write_card
from .errors import ParityError
from .manifest import ExportManifest, ParityRecord, Tolerance, sha256
from .cpu_features import cpu_has_bf16
from .scorer import WHOLE_ENCODER_INT8, OnnxEngine, Scorer, TorchEngine

log = logging.getLogger(__name__)

OPSET = 17
INPUTS = {"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "sequence"}}
OUTPUTS = {"topic_logits": {0: "batch"}, "sentiment_logits": {0: "batch"}}
FP32_MAX_LOGIT_DIFF = 1e-3
MIN_AGREEMENT = {"fp32": 0.999, "int8": 0.995, "bf16": 0.995}  # bf16: models.scorer refuses below it


@dataclass(frozen=True)
class Parity:
    n: int
    topic_agreement: float
    sentiment_agreement: float
    max_abs_logit_diff: float

    def to_json(self) -> dict[str, Any]:
        return self.__dict__.copy()


def export_onnx(model_dir: Path, out: Path) -> None:
    """Trace the two-head model to ONNX and fuse attention / LayerNorm / GELU for CPU inference.

    The residual Add + LayerNorm pair is left unfused: ONNX Runtime's SkipLayerNormalization
    kernel took 30% of int8 inference time here, Add + LayerNormalization a sixth of that
    (the sessions disable that fusion too, see :data:`models.scorer.UNFUSED`).
    """
    import torch

    from .network import TwoHeadClassifier

    model = TwoHeadClassifier.load(model_dir)
    ids = torch.ones((2, 16), dtype=torch.long)
    mask = torch.ones((2, 16), dtype=torch.long)
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.onnx"
        torch.onnx.export(model, (ids, mask), str(raw), input_names=list(INPUTS), output_names=list(OUTPUTS),
                          dynamic_axes={**INPUTS, **OUTPUTS}, opset_version=OPSET, dynamo=False)
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(raw, out.with_name("model.plain.onnx"))  # standard ops only, for TensorRT
        from onnxruntime.transformers.fusion_options import FusionOptions
        from onnxruntime.transformers.optimizer import optimize_model

        cfg = model.encoder.config
        if cfg.model_type != "bert":  # the fusions below are BERT's; another encoder is served unfused
            shutil.copy(raw, out)
            log.warning("onnx fusions skipped: not a BERT encoder", extra={"model_type": cfg.model_type})
            return
        options = FusionOptions("bert")
        options.enable_skip_layer_norm = options.enable_bias_skip_layer_norm = False
        fused = optimize_model(str(raw), model_type="bert", num_heads=cfg.num_attention_heads,
                               hidden_size=cfg.hidden_size, opt_level=1, optimization_options=options)
        out.parent.mkdir(parents=True, exist_ok=True)
        fused.save_model_to_file(str(out))
        log.info("onnx fusions", extra={"fused": fused.get_fused_operator_statistics()})


# Tried in order, fastest first; the first whose argmax agreement with PyTorch passes the bar
# is kept. Per-channel weight scales throughout; the heads always stay fp32. What decides is the
# activations: ORT's dynamic quantisation gives each activation one scale per tensor (the whole
# batch), and that scale is set by the [CLS] position, whose FFN inputs reach |x| 21-30 on one
# channel against 7-15 for other tokens. On the default model (4,382 held-out texts) the whole
# encoder moved 2.8% / 1.6% of argmaxes (topic / sentiment) and every layer alone 0.3-1.9% of
# topic, so only the attention output can be quantised, which is no faster than fp32 (the whole
# encoder would be ~2.7x faster). Smoothing, [CLS] apart, blockwise weights and quantisation-aware
# distillation were tried: see bench/int8_study.py, models/quant_aware.py and docs/benchmarks.md.
INT8_CANDIDATES: dict[str, tuple[str, ...]] = {
    # name: what is quantised ("qkv" = fused Attention, "attn_out", "ffn_in", "ffn_out")
    WHOLE_ENCODER_INT8: ("qkv", "attn_out", "ffn_in", "ffn_out"),
    "per-channel:attention-output+ffn-in": ("attn_out", "ffn_in"),
    "per-channel:attention-output": ("attn_out",),
}


def _role(node_name: str, op_type: str) -> str | None:
    if op_type == "Attention":
        return "qkv"
    if op_type != "MatMul":
        return None  # Gemm: the heads, always fp32
    if "attention/output/dense" in node_name:
        return "attn_out"
    if "intermediate/dense" in node_name:
        return "ffn_in"
    if "/output/dense" in node_name:
        return "ffn_out"
    return None


def quantize_int8(fp32: Path, out: Path, roles: tuple[str, ...]) -> None:
    """Dynamic int8 (per-channel weights, activations quantised at run time) for the given roles only."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    graph = onnx.load(str(fp32)).graph
    chosen = [n.name for n in graph.node if _role(n.name, n.op_type) in roles]
    # fused contrib ops defeat shape inference; their outputs are float
    root = logging.getLogger()
    level = root.level
    root.setLevel(max(level, logging.WARNING))  # the quantiser logs a line per tensor on the root logger
    try:
        quantize_dynamic(str(fp32), str(out), weight_type=QuantType.QInt8, per_channel=True,
                         op_types_to_quantize=["MatMul", "Attention"], nodes_to_quantize=chosen,
                         extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    finally:
        root.setLevel(level)


def parity(reference: Scorer, candidate: Scorer, texts: Sequence[str]) -> Parity:
    t_ref, s_ref = reference.logits(texts)
    t_can, s_can = candidate.logits(texts)
    return Parity(n=len(texts),
                  topic_agreement=float((t_ref.argmax(1) == t_can.argmax(1)).mean()),
                  sentiment_agreement=float((s_ref.argmax(1) == s_can.argmax(1)).mean()),
                  max_abs_logit_diff=float(max(np.abs(t_ref - t_can).max(), np.abs(s_ref - s_can).max())))


def check(kind: str, p: Parity, bar: float, max_logit_diff: float | None = None) -> None:
    """Raise :class:`ParityError` if ``p`` is under the argmax-agreement ``bar`` or, where a bound
    is given, its logits differ from PyTorch's by more than ``max_logit_diff``."""
    problems = []
    if min(p.topic_agreement, p.sentiment_agreement) < bar:
        problems.append(f"argmax agreement topic {p.topic_agreement:.4f} / sentiment {p.sentiment_agreement:.4f} < {bar}")
    if max_logit_diff is not None and p.max_abs_logit_diff > max_logit_diff:
        problems.append(f"max |logit difference| {p.max_abs_logit_diff:.2e} > {max_logit_diff:.0e}")
    if problems:
        raise ParityError(f"{kind} ONNX model fails parity with PyTorch on {p.n} held-out texts: " + "; ".join(problems))


def write_manifest(folder: Path, files: Sequence[Path], tolerance: Tolerance, parity: ParityRecord) -> ExportManifest:
    """``folder/onnx/manifest.json`` for the gated ONNX ``files`` of the model folder ``folder``."""
    meta = ModelMeta.read(folder)
    manifest = ExportManifest(
        model_version=meta.model_version, opset=OPSET, labels={"topic": list(meta.topics), "sentiment": list(meta.sentiments)},
        inputs=json.loads(json.dumps(INPUTS)), outputs=json.loads(json.dumps(OUTPUTS)),  # axes keyed by str, as in JSON
        tokenizer_sha256=sha256(Path(folder) / "tokenizer.json"), files={f.name: sha256(f) for f in files},
        tolerance=tolerance, parity=parity)
    manifest.write(Path(folder) / "onnx")
    return manifest


def recipe_int8(model_dir: Path) -> bool:
    """Whether the model's recipe serves an int8 variant (its card's ``recipe.int8``; True without one)."""
    try:
        return bool(read_card(Path(model_dir)).get("recipe", {}).get("int8", True))
    except FileNotFoundError:
        return True


def export(model_dir: Path, parity_texts: Sequence[str], threads: int | None = None,
           min_agreement: dict[str, float] | None = None, int8: bool | None = None) -> ExportManifest:
    """Export, quantise and gate. Returns the manifest (also written to ``onnx/manifest.json``).

    ``min_agreement`` overrides the argmax-agreement bars (per ``fp32`` / ``int8``); the
    defaults are the product's. ``int8`` False exports and gates fp32 alone: for a model whose
    recipe serves fp32 (the accurate recipe, whose int8 misses the bar), quantising would only
    cost minutes and end in an error. None: as the model's card says (``recipe.int8``), else True.
    """
    bars = {**MIN_AGREEMENT, **(min_agreement or {})}
    model_dir = Path(model_dir)
    quantise = recipe_int8(model_dir) if int8 is None else int8
    fp32, int8_file = onnx_path(model_dir, int8=False), onnx_path(model_dir, int8=True)
    export_onnx(model_dir, fp32)
    reference = Scorer(model_dir, engine=TorchEngine.from_dir(model_dir, "cpu"), batch_size=64)
    fp32_parity = parity(reference, Scorer(model_dir, engine=OnnxEngine(fp32, threads=threads), batch_size=64),
                         parity_texts)
    log.info("parity", extra={"kind": "fp32", **fp32_parity.to_json()})
    results: dict[str, Any] = {"fp32": fp32_parity.to_json(), "int8_candidates": {}}
    chosen: str | None = None
    int8_file.unlink(missing_ok=True)  # a stale variant of an earlier export is never served
    for name, roles in INT8_CANDIDATES.items() if quantise else ():
        quantize_int8(fp32, int8_file, roles)
        p = parity(reference, Scorer(model_dir, engine=OnnxEngine(int8_file, threads=threads), batch_size=64),
                   parity_texts)
        results["int8_candidates"][name] = p.to_json()
        log.info("parity", extra={"kind": name, **p.to_json()})
        if min(p.topic_agreement, p.sentiment_agreement) >= bars["int8"]:
            chosen, results["int8"] = name, p.to_json()
            break
    results["int8_quantisation"] = chosen
    if cpu_has_bf16():  # bf16 on CPU (backend torch-bf16): recorded here, refused at serving below the bar
        engine = TorchEngine.from_dir(model_dir, "cpu", bf16=True, compile=True)  # as served
        bf16 = parity(reference, Scorer(model_dir, engine=engine, batch_size=64), parity_texts)
        results["torch_bf16"] = {**bf16.to_json(), "engine": engine.name}
        log.info("parity", extra={"kind": "torch-bf16", **results["torch_bf16"]})
    manifest = write_manifest(model_dir, [f for f in (fp32, int8_file) if f.exists()],
                              Tolerance(fp32_max_abs_logit_diff=FP32_MAX_LOGIT_DIFF, min_argmax_agreement=bars),
                              ParityRecord.model_validate(results))
    try:
        card = read_card(model_dir)
        card["export"] = results
        write_card(model_dir, card)
    except FileNotFoundError:
        pass
    check("fp32", fp32_parity, bars["fp32"], FP32_MAX_LOGIT_DIFF)
    if chosen is None and quantise:
        int8_file.unlink(missing_ok=True)  # never leave a model behind that failed its gate
        raise ParityError(f"no int8 quantisation reaches {bars['int8']} argmax agreement with PyTorch on "
                          f"{len(parity_texts)} held-out texts: {results['int8_candidates']}; serve fp32 "
                          "(RISKPULSE_BACKEND=onnx-fp32) or retrain")
    return manifest
