"""Why the whole-encoder int8 fails the agreement gate, and what each remedy buys.

For one exported model (``onnx/model.onnx``), on the held-out texts the export gate uses, this
prints topic / sentiment argmax agreement with the fp32 ONNX model for: the whole encoder in
dynamic int8; each layer alone; SmoothQuant-style channel scaling at a few alphas; and, per
quantised input, where its range comes from ([CLS], the last real token, padding or the rest).
docs/benchmarks.md's int8 paragraph cites this script's output. Agreement only: no timing, so it can
run while the machine is busy.

    python bench/int8_study.py --model ~/.riskpulse/model [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from riskpulse.models.data import load_splits  # noqa: E402
from riskpulse.models.encoder import encode, length_sorted_batches, load_tokenizer, pad_batch  # noqa: E402
from riskpulse.models.export import INT8_CANDIDATES, _role, parity  # noqa: E402
from riskpulse.models.scorer import WHOLE_ENCODER_INT8, OnnxEngine, Scorer  # noqa: E402
from riskpulse.settings import Settings  # noqa: E402


def _layer(node: Any) -> int | None:
    if node.op_type == "Attention":
        return int(node.name.rsplit("_", 1)[1])
    m = re.search(r"layer\.(\d+)/", node.name)
    return int(m.group(1)) if m else None


def _quantise(src: Path, out: Path, keep: Callable[[Any], bool]) -> None:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    names = [n.name for n in onnx.load(str(src)).graph.node if _role(n.name, n.op_type) and keep(n)]
    quantize_dynamic(str(src), str(out), weight_type=QuantType.QInt8, per_channel=True,
                     op_types_to_quantize=["MatMul", "Attention"], nodes_to_quantize=names,
                     extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})


def _inputs_with_values(src: Path, batches: list[tuple[np.ndarray, np.ndarray]]) -> tuple[list[Any], list[list[np.ndarray]]]:
    """The quantisable nodes and their activation inputs, per calibration batch."""
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(src))
    nodes = [n for n in model.graph.node if _role(n.name, n.op_type)]
    for name in {n.input[0] for n in nodes}:
        model.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    values = [session.run([n.input[0] for n in nodes], {"input_ids": a, "attention_mask": m}) for a, m in batches]
    return nodes, values


def _smoothed(src: Path, out: Path, nodes: list[Any], values: list[list[np.ndarray]], alpha: float) -> None:
    """Divide each input channel by s_j and multiply the weight's row j by s_j (Xiao et al., 2023)."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(src))
    inits = {i.name: i for i in model.graph.initializer}
    by_name = {n.name: n for n in model.graph.node}
    for k, node in enumerate(nodes):
        x_max = np.max([np.abs(v[k]).reshape(-1, v[k].shape[-1]).max(0) for v in values], axis=0)
        w = numpy_helper.to_array(inits[node.input[1]])
        s = np.clip(np.maximum(x_max, 1e-5) ** alpha / np.maximum(np.abs(w).max(1), 1e-5) ** (1 - alpha), 1e-2, 1e2)
        inits[node.input[1]].CopyFrom(numpy_helper.from_array((w * s[:, None]).astype(np.float32), node.input[1]))
        model.graph.initializer.append(numpy_helper.from_array((1 / s).astype(np.float32), f"smooth_inv_{k}"))
        target = by_name[node.name]
        mul = onnx.helper.make_node("Mul", [target.input[0], f"smooth_inv_{k}"], [f"smoothed_{k}"], name=f"smooth_{k}")
        model.graph.node.insert(list(model.graph.node).index(target), mul)
        target.input[0] = f"smoothed_{k}"
    onnx.save(model, str(out))


def _range_sources(nodes: list[Any], values: list[list[np.ndarray]], masks: list[np.ndarray]) -> list[dict[str, Any]]:
    rows = []
    for k, node in enumerate(nodes):
        cls, last, pad, rest = [], [], [], []
        for v, m in zip(values, masks):
            tok = np.abs(v[k]).max(-1)  # [batch, seq]
            ends = m.sum(1) - 1
            cls.append(tok[:, 0].max())
            last.append(tok[np.arange(len(m)), ends].max())
            pad.append(tok[m == 0].max() if (m == 0).any() else 0.0)
            inner = m.copy()
            inner[:, 0] = 0
            inner[np.arange(len(m)), ends] = 0
            rest.append(tok[inner > 0].max())
        rows.append({"node": node.name, "cls": float(np.max(cls)), "last_token": float(np.max(last)),
                     "padding": float(np.max(pad)), "other_tokens": float(np.max(rest))})
    return rows


def main() -> None:
    s = Settings()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=s.model_dir)
    ap.add_argument("--data", type=Path, default=s.data_dir)
    ap.add_argument("--alphas", default="0.5,0.75,0.85")
    args = ap.parse_args()
    logging.getLogger().setLevel(logging.ERROR)  # the quantiser logs per tensor on the root logger

    fp32 = args.model / "onnx" / "model.onnx"
    splits = load_splits(args.data)
    held_out = [t for frame in splits.evals.values() for t in frame.text.tolist()]
    calibration = splits.train.text.sample(512, random_state=0).tolist()  # training texts only
    ids = encode(load_tokenizer(args.model, 80), calibration)
    batches = [pad_batch([ids[i] for i in b]) for b in length_sorted_batches(ids, 32)]
    reference = Scorer(args.model, engine=OnnxEngine(fp32), batch_size=64)

    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        def agreement(model: Path) -> dict[str, float]:
            p = parity(reference, Scorer(args.model, engine=OnnxEngine(model), batch_size=64), held_out)
            return {"topic": round(p.topic_agreement, 4), "sentiment": round(p.sentiment_agreement, 4)}

        out = Path(tmp) / "q.onnx"
        roles = INT8_CANDIDATES[WHOLE_ENCODER_INT8]
        _quantise(fp32, out, lambda n: _role(n.name, n.op_type) in roles)
        results["whole_encoder"] = agreement(out)
        print("whole encoder", results["whole_encoder"], flush=True)
        layers = sorted({_layer(n) for n in __import__("onnx").load(str(fp32)).graph.node if _role(n.name, n.op_type)})
        results["one_layer"] = {}
        for layer in layers:
            _quantise(fp32, out, lambda n, layer=layer: _layer(n) == layer)
            results["one_layer"][layer] = agreement(out)
            print("layer", layer, "alone", results["one_layer"][layer], flush=True)
        nodes, values = _inputs_with_values(fp32, batches)
        results["range_sources"] = _range_sources(nodes, values, [m for _, m in batches])
        for row in results["range_sources"]:
            print("range of", row["node"][:60], {k: round(v, 2) for k, v in row.items() if k != "node"}, flush=True)
        results["smoothquant"] = {}
        for alpha in (float(a) for a in args.alphas.split(",")):
            smoothed = Path(tmp) / "smoothed.onnx"
            _smoothed(fp32, smoothed, nodes, values, alpha)
            _quantise(smoothed, out, lambda n: True)
            results["smoothquant"][alpha] = agreement(out)
            print("smoothquant alpha", alpha, results["smoothquant"][alpha], flush=True)
    print(json.dumps({"bench": "int8_study", "model_dir": str(args.model), "n": len(held_out), **results}))


if __name__ == "__main__":
    main()
