"""One scoring interface over the backends (TensorRT, ONNX Runtime, PyTorch).

A :class:`Scorer` turns texts into :class:`Score` records. It validates input, tokenises with
the fast tokenizer, sorts by length and cuts batches so little compute goes to padding, runs an
:class:`Engine`, applies the calibration temperatures and restores the caller's order.

Engines only map (input_ids, attention_mask) to (topic_logits, sentiment_logits). This module
imports neither torch nor transformers, so CPU serving stays light; the torch and TensorRT
engines import their libraries when they are chosen.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol, Sequence

import numpy as np

from . import manifest
from .artifact import ModelMeta, onnx_path
from riskpulse.choices import Backend
from .encoder import encode, length_sorted_batches, load_tokenizer, pad_batch
from .cpu_features import cpu_has_bf16
from .errors import BackendUnavailableError, InvalidTextError
from .logits import softmax

log = logging.getLogger(__name__)

WHOLE_ENCODER_INT8 = "per-channel:all-encoder"  # models.export's first (fastest) int8 candidate


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


# ORT would re-fuse Add + LayerNormalization into SkipLayerNormalization at session start; that
# kernel was 4-5x slower than the pair on this CPU (30% of int8 inference time), see export.py
UNFUSED = ["SkipLayerNormFusion", "BiasSkipLayerNormFusion"]


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
        self.session = ort.InferenceSession(str(path), opts, providers=list(providers),
                                            disabled_optimizers=UNFUSED if providers[0] == "CPUExecutionProvider" else [])
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
        bf16 = next(self.model.parameters()).dtype == torch.bfloat16
        self.name = f"torch:{device}:bf16" if bf16 else f"torch:{device}"
        self.compiled = False

    @classmethod
    def from_dir(cls, model_dir: Path, device: str | None = None, bf16: bool = False,
                 spin: bool = True, compile: bool = False) -> "TorchEngine":
        """fp16 on CUDA; on CPU fp32, or bfloat16 with ``bf16`` (AMX / AVX-512 BF16 matrix units).

        ``spin=False`` makes PyTorch's idle OpenMP threads sleep, as ONNX Runtime's do in the worker:
        a co-located broker and event loop then get the cores between batches. OpenMP reads the
        policy once, when torch is first imported, so it only applies to a process that has not.
        """
        if not (Path(model_dir) / "model.safetensors").exists():
            raise BackendUnavailableError(f"{model_dir} holds no PyTorch weights (a packed, ONNX-only model): serve it "
                                          "with RISKPULSE_BACKEND=onnx-fp32, or train a model for the torch backends")
        if not spin:
            _sleeping_openmp_threads()
        import torch

        from .network import TwoHeadClassifier

        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        model = TwoHeadClassifier.load(model_dir)
        if device.startswith("cuda"):
            model = model.half()
        elif bf16:
            model = model.to(torch.bfloat16)
        engine = cls(model, device)
        if compile:
            engine.compile()
        return engine

    def compile(self) -> None:
        """Compile with TorchInductor: C++ kernels, weights frozen and pre-packed for oneDNN.

        bf16 on this AMX Xeon: 1.15-1.27x eager at batch 32-128 (bench/bench_model.py measures
        both). Compiles once, for dynamic batch and length, on warm-up batches, so the cost
        (10-30 s on 2 cores) is paid at start, not on the first news. Needs a C++ compiler;
        without one, or on any compile error, stays eager and says why. Freezing is patched into
        TorchInductor's config around this engine's calls only (compiling happens on a call, and a
        rare recompile too), so other compiles in the process, training's, keep their weights live.
        ``torch.compile(options={"freezing": True})`` looks like the same thing but is ignored
        (checked on torch 2.15: no pre-packed oneDNN kernels in the generated code).
        """
        torch = self.torch
        eager = self.model
        try:
            self.model = torch.compile(eager, dynamic=True)
            self.compiled = True
            for batch in (4, 1):  # a batch of one is specialised apart: compile it now, not mid-stream
                warm = np.full((batch, 12), 1000, dtype=np.int64)
                self.run(warm, np.ones_like(warm))
        except Exception as exc:  # a missing compiler surfaces as one of several error types
            self.model, self.compiled = eager, False
            log.warning("torch.compile failed; serving the eager model (install g++ to compile)",
                        extra={"error": f"{type(exc).__name__}: {str(exc)[:300]}"})
            return
        self.name += ":compiled"

    def run(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        torch = self.torch
        with torch.inference_mode(), self._inductor_config():
            ids = torch.from_numpy(input_ids).to(self.device)
            mask = torch.from_numpy(attention_mask).to(self.device)
            topic, sentiment = self.model(ids, mask)
        return topic.float().cpu().numpy(), sentiment.float().cpu().numpy()


    def _inductor_config(self) -> contextlib.AbstractContextManager[Any]:
        if not self.compiled:
            return contextlib.nullcontext()
        import torch._inductor.config as inductor

        return inductor.patch(freezing=True)


def _sleeping_openmp_threads() -> None:
    import os
    import sys

    if "torch" in sys.modules:
        if os.environ.get("OMP_WAIT_POLICY", "").upper() != "PASSIVE":
            log.warning("torch was imported before the engine: its OpenMP threads keep spinning while idle; "
                        "set OMP_WAIT_POLICY=PASSIVE in the environment to make them sleep")
        return
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


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
        found += ["onnx", "onnx-fp32"]  # make_engine puts fp32 first where the int8 is only partly int8
    except ImportError:
        pass
    if importlib.util.find_spec("torch") is not None:
        if "torch" not in found:
            found.append("torch")
        if cpu_has_bf16():
            found.append("torch-bf16")  # measured fastest here (bench/bench_model.py); opt-in, so after ONNX
    return found


def _int8_is_whole(model_dir: Path) -> bool:
    """Whether the export quantised every encoder MatMul (the fast int8), per its manifest."""
    exported = manifest.read(Path(model_dir) / "onnx")
    return exported is not None and exported.parity.int8_quantisation == WHOLE_ENCODER_INT8


def _onnx(model_dir: Path, int8: bool) -> Path:
    """The ONNX file to serve, checked against the hash the export recorded after gating it."""
    path = onnx_path(model_dir, int8=int8)
    exported = manifest.read(path.parent)
    if int8 and not path.exists() and exported is not None:
        raise BackendUnavailableError(
            f"{model_dir} has no int8 variant (its export made none, or none passed the agreement gate: "
            "see its card); serve it with RISKPULSE_BACKEND=onnx-fp32 or auto")
    if exported is not None and path.exists():
        exported.check_file(path)
    return path


def make_engine(model_dir: Path, backend: Backend = "auto", threads: int | None = None, spin: bool = True,
                compile: bool = True) -> Engine:
    """The engine for ``backend``; ``auto`` takes the best this host has that the model folder supports.

    ``compile`` applies to torch-bf16 (see :meth:`TorchEngine.compile`).
    """
    model_dir = Path(model_dir)
    if backend == "auto":
        errors = []
        candidates = available_backends()
        if not _int8_is_whole(model_dir) and "onnx" in candidates:
            # an int8 model that quantises only part of the encoder measured no faster than fp32,
            # and dynamic int8 makes a score depend slightly on its batch neighbours
            candidates.remove("onnx")
            candidates.insert(candidates.index("onnx-fp32") + 1, "onnx")
        for candidate in candidates:
            try:
                return make_engine(model_dir, candidate, threads, spin, compile)  # type: ignore[arg-type]
            except BackendUnavailableError as exc:
                errors.append(f"{candidate}: {exc}")
        raise BackendUnavailableError("no backend can run this model here:\n" + "\n".join(errors))
    if backend == "onnx":
        return OnnxEngine(_onnx(model_dir, int8=True), threads=threads, spin=spin)
    if backend == "onnx-fp32":
        return OnnxEngine(_onnx(model_dir, int8=False), threads=threads, spin=spin)
    if backend == "onnx-cuda":
        return OnnxEngine(_onnx(model_dir, int8=False), providers=("CUDAExecutionProvider", "CPUExecutionProvider"))
    if backend == "torch":
        if importlib.util.find_spec("torch") is None:
            raise BackendUnavailableError("the torch backend needs PyTorch: pip install torch")
        return TorchEngine.from_dir(model_dir, spin=spin)
    if backend == "torch-bf16":
        if importlib.util.find_spec("torch") is None:
            raise BackendUnavailableError("the torch-bf16 backend needs PyTorch: pip install torch")
        if not cpu_has_bf16():
            raise BackendUnavailableError("torch-bf16 needs a CPU with AMX or AVX-512 BF16 (Intel Sapphire Rapids "
                                          "or later, AMD Zen 4 or later); use RISKPULSE_BACKEND=onnx-fp32 here")
        exported = manifest.read(model_dir / "onnx")
        refusal = exported.bf16_refusal() if exported is not None else None
        if refusal:
            raise BackendUnavailableError(refusal)
        return TorchEngine.from_dir(model_dir, "cpu", bf16=True, spin=spin, compile=compile)
    if backend == "null":
        return NullEngine(model_dir)
    if backend == "tensorrt":
        from .tensorrt_engine import TensorRTEngine

        return TensorRTEngine.for_model(model_dir)
    raise BackendUnavailableError(f"unknown backend {backend!r}; choose one of {list(Backend.__args__)}")  # type: ignore[attr-defined]


class NullEngine:
    """Fixed logits (neutral, the first topic) at no cost: what the stream around the model can
    carry when scoring is free (bench/bench_stream.py ``--backend null``). Never chosen by
    ``auto``; a worker serving it says so loudly at start (stream/scoring.py)."""

    def __init__(self, model_dir: Path) -> None:
        meta = ModelMeta.read(Path(model_dir))
        self.name = "null"
        self._topic = np.zeros(len(meta.topics), dtype=np.float32)
        self._topic[0] = 1.0
        self._sentiment = np.zeros(len(meta.sentiments), dtype=np.float32)
        self._sentiment[meta.sentiments.index("neutral")] = 1.0

    def run(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n = len(input_ids)
        return np.tile(self._topic, (n, 1)), np.tile(self._sentiment, (n, 1))


class Scorer:
    """Scores texts with any engine. Thread-safe for one caller at a time per engine."""

    def __init__(self, model_dir: Path, engine: Engine | None = None, backend: Backend = "auto",
                 batch_size: int = 32, max_length: int | None = None, threads: int | None = None,
                 spin: bool = True, compile: bool = True) -> None:
        self.model_dir = Path(model_dir)
        self.meta = ModelMeta.read(self.model_dir)
        self.max_length = min(max_length or self.meta.max_length, 512)
        self.tokenizer = load_tokenizer(self.model_dir, self.max_length)
        self.engine = engine or make_engine(self.model_dir, backend, threads, spin, compile)
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
