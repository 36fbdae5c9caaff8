"""TensorRT backend: an FP16 engine built from the plain ONNX export, cached per GPU and version.

The fused CPU graph uses ONNX Runtime contrib ops that TensorRT cannot parse, so export also
writes ``onnx/model.plain.onnx`` (standard ops only) for this builder. Engines are cached in
``<model>/trt/<gpu>-trt<version>-<onnx sha>.engine``; an optimisation profile covers batch
1..``MAX_BATCH`` and sequence 1..``max_length``. I/O goes through torch CUDA tensors.

Not yet run on a GPU: no GPU was available where this was written (see the model issue).
"""

from __future__ import annotations

import hashlib
import logging
import re
from pathlib import Path
from typing import Any

import numpy as np

from .artifact import ModelMeta
from .errors import BackendUnavailableError

log = logging.getLogger(__name__)

MAX_BATCH = 256
OPT_BATCH = 64
OPT_SEQ = 32


def _imports() -> tuple[Any, Any]:
    try:
        import tensorrt as trt
        import torch
    except ImportError as exc:
        raise BackendUnavailableError(f"the tensorrt backend needs the tensorrt and torch packages: {exc}") from None
    if not torch.cuda.is_available():
        raise BackendUnavailableError("the tensorrt backend needs an NVIDIA GPU with CUDA")
    return trt, torch


def engine_path(model_dir: Path, gpu: str, trt_version: str, onnx_file: Path) -> Path:
    digest = hashlib.sha256(onnx_file.read_bytes()).hexdigest()[:12]
    safe_gpu = re.sub(r"[^A-Za-z0-9]+", "-", gpu).strip("-")
    return Path(model_dir) / "trt" / f"{safe_gpu}-trt{trt_version}-{digest}.engine"


def _network_flags(trt: Any) -> int:
    """Explicit batch: a flag TensorRT 8.x needs for ONNX models; 10.x has nothing else and ignores it."""
    if int(trt.__version__.split(".")[0]) >= 10:
        return 0
    return 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)


def torch_dtype(trt: Any, torch: Any, dtype: Any) -> Any:
    """The torch dtype of an engine's I/O tensor.

    TensorRT 8.x parses the ONNX int64 token ids as int32 inputs, 10.x keeps int64; binding an
    int64 buffer to an int32 input would read garbage, so the buffers follow the engine.
    """
    table = {trt.DataType.INT32: torch.int32, trt.DataType.FLOAT: torch.float32, trt.DataType.HALF: torch.float16}
    if hasattr(trt.DataType, "INT64"):
        table[trt.DataType.INT64] = torch.int64
    if dtype not in table:
        raise BackendUnavailableError(f"unexpected TensorRT tensor type {dtype}; rebuild the engine from the plain ONNX")
    return table[dtype]


def build_engine(trt: Any, onnx_file: Path, out: Path, max_seq: int, fp16: bool = True) -> None:
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(_network_flags(trt))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_file.read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise BackendUnavailableError(f"TensorRT could not parse {onnx_file}: {errors}")
    config = builder.create_builder_config()
    if fp16:
        config.set_flag(trt.BuilderFlag.FP16)
    profile = builder.create_optimization_profile()
    for name in ("input_ids", "attention_mask"):
        profile.set_shape(name, (1, 1), (OPT_BATCH, min(OPT_SEQ, max_seq)), (MAX_BATCH, max_seq))
    config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise BackendUnavailableError("TensorRT failed to build an engine; see the log above")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(bytes(serialized))


class TensorRTEngine:
    def __init__(self, engine_file: Path) -> None:
        trt, torch = _imports()
        self.torch = torch
        runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self.engine = runtime.deserialize_cuda_engine(engine_file.read_bytes())
        self.context = self.engine.create_execution_context()
        self.stream = torch.cuda.Stream()
        self.dtypes = {name: torch_dtype(trt, torch, self.engine.get_tensor_dtype(name))
                       for name in ("input_ids", "attention_mask", "topic_logits", "sentiment_logits")}
        self.name = f"tensorrt:{engine_file.name}"

    @classmethod
    def for_model(cls, model_dir: Path) -> "TensorRTEngine":
        trt, torch = _imports()
        plain = Path(model_dir) / "onnx" / "model.plain.onnx"
        if not plain.exists():
            raise BackendUnavailableError(f"{plain} is missing: run `riskpulse export --model {model_dir}`")
        path = engine_path(model_dir, torch.cuda.get_device_name(0), trt.__version__, plain)
        if not path.exists():
            log.info("building TensorRT engine (first use on this GPU)", extra={"engine": str(path)})
            build_engine(trt, plain, path, ModelMeta.read(model_dir).max_length)
        return cls(path)

    def run(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        torch = self.torch
        outs: list[Any] = []
        # copies, buffers and the engine all on one stream: the engine must not read an input
        # whose host-to-device copy another stream has not finished
        with torch.cuda.stream(self.stream):
            for start in range(0, len(input_ids), MAX_BATCH):
                ids = torch.from_numpy(input_ids[start:start + MAX_BATCH]).to("cuda", self.dtypes["input_ids"])
                mask = torch.from_numpy(attention_mask[start:start + MAX_BATCH]).to("cuda", self.dtypes["attention_mask"])
                self.context.set_input_shape("input_ids", tuple(ids.shape))
                self.context.set_input_shape("attention_mask", tuple(mask.shape))
                topic, sent = (torch.empty((ids.shape[0], self.engine.get_tensor_shape(name)[1]),
                                           dtype=self.dtypes[name], device="cuda")
                               for name in ("topic_logits", "sentiment_logits"))
                for name, tensor in (("input_ids", ids), ("attention_mask", mask), ("topic_logits", topic),
                                     ("sentiment_logits", sent)):
                    self.context.set_tensor_address(name, tensor.data_ptr())
                if not self.context.execute_async_v3(self.stream.cuda_stream):
                    raise RuntimeError("TensorRT failed to run the engine; see its log above")
                outs.append((topic.float().cpu().numpy(), sent.float().cpu().numpy()))  # .cpu() waits for the stream
        return np.concatenate([o[0] for o in outs]), np.concatenate([o[1] for o in outs])
