"""One scoring interface over the backends (TensorRT, ONNX Runtime, PyTorch).

A :class:`Scorer` turns texts into :class:`Score` records. It validates input, tokenises with
the fast tokenizer, sorts by length and cuts batches so little compute goes to padding, runs an
:class:`Engine`, applies the calibration temperatures and restores the caller's order.

Engines only map (input_ids, attention_mask) to (topic_logits, sentiment_logits). This module
imports neither torch nor transformers, so CPU serving stays light; the torch and TensorRT
engines import their libraries when they are chosen.
"""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal, Protocol, Sequence

import numpy as np

from .artifact import ModelMeta, onnx_path
from .encoder import encode, length_sorted_batches, load_tokenizer, pad_batch
from .errors import BackendUnavailableError, InvalidTextError
from .metrics import softmax

log = logging.getLogger(__name__)

Backend = Literal["auto", "tensorrt", "onnx-cuda", "onnx", "onnx-fp32", "torch"]


@dataclass(frozen=True)
class Score:
    topic: str
    topic_confidence: float
    sentiment: str
    sentiment_probs: dict[str, float]
    sentiment_score: float  # p_pos - p_neg, in [-1, 1]
    model_version: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Engine(Protocol):
    name: str

    def run(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Raw (topic_logits, sentiment_logits) for one padded batch."""
        ...


def clean_text(value: object, index: int = 0) -> str:
    """The text to score, or :class:`InvalidTextError` saying why there is none."""
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidTextError(index, f"bytes that are not UTF-8 ({exc.reason})") from None
    if not isinstance(value, str):
        raise InvalidTextError(index, f"expected text, got {type(value).__name__}")
    text = " ".join(value.split())
    if not text:
        raise InvalidTextError(index, "empty or whitespace-only text")
    return text


class OnnxEngine:
    def __init__(self, path: Path, providers: Sequence[str] = ("CPUExecutionProvider",),
                 threads: int | None = None, spin: bool = True) -> None:
        import onnxruntime as ort

        if not path.exists():
            raise BackendUnavailableError(f"{path} is missing: run `riskpulse export --model {path.parent.parent}`")
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        if not spin:  # idle pool threads sleep instead of spinning: a co-located broker and event loop get the CPU
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(path), opts, providers=list(providers))
        self.name = f"onnx:{path.name}:{self.session.get_providers()[0]}"

    def run(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        topic, sentiment = self.session.run(None, {"input_ids": input_ids, "attention_mask": attention_mask})
        return topic, sentiment


class TorchEngine:
    def __init__(self, model: Any, device: str = "cpu") -> None:
        import torch

        self.torch = torch
        self.model = model.to(device).eval()
        self.device = device
        self.name = f"torch:{device}"

    @classmethod
    def from_dir(cls, model_dir: Path, device: str | None = None) -> "TorchEngine":
        import torch

        from .network import TwoHeadClassifier

        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        model = TwoHeadClassifier.load(model_dir)
        if device.startswith("cuda"):
            model = model.half()
        return cls(model, device)

    def run(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        torch = self.torch
        with torch.inference_mode():
            ids = torch.from_numpy(input_ids).to(self.device)
            mask = torch.from_numpy(attention_mask).to(self.device)
            topic, sentiment = self.model(ids, mask)
        return topic.float().cpu().numpy(), sentiment.float().cpu().numpy()


def _has_nvidia_gpu() -> bool:
    """Cheap check first, so CPU hosts never import torch just to ask."""
    if not Path("/dev/nvidiactl").exists() or importlib.util.find_spec("torch") is None:
        return False
    import torch

    return bool(torch.cuda.is_available())


def available_backends() -> list[str]:
    """Backends this host can run, best first: GPU ones when a GPU is there, then int8 CPU."""
    found: list[str] = []
    gpu = _has_nvidia_gpu()
    if gpu and importlib.util.find_spec("tensorrt") is not None:
        found.append("tensorrt")
    try:
        import onnxruntime as ort

        if "CUDAExecutionProvider" in ort.get_available_providers():
            found.append("onnx-cuda")
        if gpu and importlib.util.find_spec("torch") is not None:
            found.append("torch")  # CUDA, fp16
        # fp32 before int8: the int8 model that passes the agreement gate is no faster here
        # (bench/bench_model.py), and dynamic int8 makes a score depend on its batch neighbours
        found += ["onnx-fp32", "onnx"]
    except ImportError:
        pass
    if "torch" not in found and importlib.util.find_spec("torch") is not None:
        found.append("torch")
    return found


def make_engine(model_dir: Path, backend: Backend = "auto", threads: int | None = None, spin: bool = True) -> Engine:
    """The engine for ``backend``; ``auto`` takes the best this host has that the model folder supports."""
    model_dir = Path(model_dir)
    if backend == "auto":
        errors = []
        for candidate in available_backends():
            try:
                return make_engine(model_dir, candidate, threads, spin)  # type: ignore[arg-type]
            except BackendUnavailableError as exc:
                errors.append(f"{candidate}: {exc}")
        raise BackendUnavailableError("no backend can run this model here:\n" + "\n".join(errors))
    if backend == "onnx":
        return OnnxEngine(onnx_path(model_dir, int8=True), threads=threads, spin=spin)
    if backend == "onnx-fp32":
        return OnnxEngine(onnx_path(model_dir, int8=False), threads=threads, spin=spin)
    if backend == "onnx-cuda":
        return OnnxEngine(onnx_path(model_dir, int8=False), providers=("CUDAExecutionProvider", "CPUExecutionProvider"))
    if backend == "torch":
        if importlib.util.find_spec("torch") is None:
            raise BackendUnavailableError("the torch backend needs PyTorch: pip install torch")
        return TorchEngine.from_dir(model_dir)
    if backend == "tensorrt":
        from .tensorrt_engine import TensorRTEngine

        return TensorRTEngine.for_model(model_dir)
    raise BackendUnavailableError(f"unknown backend {backend!r}; choose one of {list(Backend.__args__)}")  # type: ignore[attr-defined]


class Scorer:
    """Scores texts with any engine. Thread-safe for one caller at a time per engine."""

    def __init__(self, model_dir: Path, engine: Engine | None = None, backend: Backend = "auto",
                 batch_size: int = 32, max_length: int | None = None, threads: int | None = None,
                 spin: bool = True) -> None:
        self.model_dir = Path(model_dir)
        self.meta = ModelMeta.read(self.model_dir)
        self.max_length = min(max_length or self.meta.max_length, 512)
        self.tokenizer = load_tokenizer(self.model_dir, self.max_length)
        self.engine = engine or make_engine(self.model_dir, backend, threads, spin)
        self.batch_size = batch_size
        log.info("scorer ready", extra={"backend": self.engine.name, "model_version": self.meta.model_version})

    @property
    def model_version(self) -> str:
        return self.meta.model_version

    def logits(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Raw logits in input order (texts must already be clean)."""
        ids = encode(self.tokenizer, texts)
        topic = np.zeros((len(ids), len(self.meta.topics)), dtype=np.float32)
        sentiment = np.zeros((len(ids), len(self.meta.sentiments)), dtype=np.float32)
        for batch in length_sorted_batches(ids, self.batch_size):
            input_ids, mask = pad_batch([ids[i] for i in batch])
            t, s = self.engine.run(input_ids, mask)
            topic[batch], sentiment[batch] = t, s
        return topic, sentiment

    def score(self, texts: Sequence[object]) -> list[Score]:
        """One :class:`Score` per text, in order. Raises :class:`InvalidTextError` naming the first bad item."""
        clean = [clean_text(t, i) for i, t in enumerate(texts)]
        if not clean:
            return []
        topic_logits, sentiment_logits = self.logits(clean)
        p_topic = softmax(topic_logits, self.meta.temperature_topic)
        p_sent = softmax(sentiment_logits, self.meta.temperature_sentiment)
        neg, pos = self.meta.sentiments.index("negative"), self.meta.sentiments.index("positive")
        out = []
        for pt, ps in zip(p_topic, p_sent):
            t, s = int(pt.argmax()), int(ps.argmax())
            out.append(Score(
                topic=self.meta.topics[t], topic_confidence=round(float(pt[t]), 6),
                sentiment=self.meta.sentiments[s],
                sentiment_probs={name: round(float(p), 6) for name, p in zip(self.meta.sentiments, ps)},
                sentiment_score=round(float(ps[pos] - ps[neg]), 6), model_version=self.meta.model_version))
        return out
