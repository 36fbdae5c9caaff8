"""Training, calibration, export parity, quantisation gate and every backend this host can run."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from riskpulse.models.artifact import ModelMeta
from riskpulse.models.data import load_splits, sha256
from riskpulse.models.errors import BackendUnavailableError, InvalidTextError, ParityError
from riskpulse.models.labels import SENTIMENTS, TOPICS
from riskpulse.models.cpu_features import bf16_pays, cpu_has_bf16
from riskpulse.models.scorer import Scorer, available_backends

HEADLINES = [
    "Apple shares slide after weak iPhone guidance",
    "Fed holds rates steady, signals patience on cuts",
    "Exxon profit beats estimates on higher refining margins",
    "$TSLA Tesla recalls 200,000 vehicles over seatbelt fault",
    "Bank of England raises rates by 25 basis points",
]


def test_model_card_records_data_recipe_metrics_and_calibration(tiny_model: Path, data_dir: Path) -> None:
    card = json.loads((tiny_model / "card.json").read_text())
    assert card["model_version"] == ModelMeta.read(tiny_model).model_version
    for rel, digest in card["data"]["files"].items():
        assert sha256(data_dir / rel) == digest
    assert set(card["metrics"]) == {"phrasebank-test", "phrasebank-test-allagree", "tw-sentiment-valid", "tw-topic-valid"}
    from riskpulse.models.train import recipe_by_name

    # the test recipe scores the first rows of each held-out set; every other recipe all of them
    limit = recipe_by_name("tiny").limit_eval
    assert card["recipe"]["limit_eval"] == limit
    assert card["metrics"]["tw-topic-valid"]["n"] == card["data"]["eval_rows"]["tw-topic-valid"] == min(2061, limit)
    assert len(load_splits(data_dir).evals["tw-topic-valid"]) == 2061 and recipe_by_name("default").limit_eval is None
    pb = card["metrics"]["phrasebank-test"]  # broken down by how many annotators agreed on the label
    levels = pb["accuracy_by_agreement"]
    assert set(levels) == {"50", "66", "75", "100"}
    assert sum(r["n"] for r in levels.values()) == pb["n"]
    assert sum(r["n"] * r["accuracy"] for r in levels.values()) == pytest.approx(pb["n"] * pb["accuracy"])
    assert levels["100"]["n"] == card["metrics"]["phrasebank-test-allagree"]["n"]
    assert "accuracy by the share of annotators" in (tiny_model / "card.md").read_text()
    assert "accuracy_by_agreement" not in card["metrics"]["tw-topic-valid"]
    assert 0 < card["parameters"] <= 25_000_000
    for head in ("topic", "sentiment"):
        cal = card["calibration"][head]
        assert cal["temperature"] > 0 and 0 <= cal["dev_ece_after"] <= 1 and 0 <= cal["dev_ece_before"] <= 1
    assert card["recipe"]["name"] == "tiny" and card["versions"]["torch"]
    assert card["training"]["precision"] == ("bf16" if bf16_pays() else "fp32")  # auto follows the hardware
    stage = card["int8_stage"]  # the quantisation-aware stage ran and measured itself
    assert stage["steps"] > 0
    for when in ("before", "after"):
        assert set(stage[when]["simulated_int8_agreement"]) == {"topic", "sentiment"}
        assert all(0 <= v <= 1 for v in stage[when]["simulated_int8_agreement"].values())
    assert "Held-out metrics" in (tiny_model / "card.md").read_text()


def test_export_parity_is_recorded_and_within_tolerance(tiny_model: Path) -> None:
    manifest = json.loads((tiny_model / "onnx" / "manifest.json").read_text())
    fp32 = manifest["parity"]["fp32"]
    assert fp32["topic_agreement"] >= 0.999 and fp32["sentiment_agreement"] >= 0.999
    assert fp32["max_abs_logit_diff"] <= 1e-3
    chosen = manifest["parity"]["int8_quantisation"]
    assert chosen is not None
    assert min(manifest["parity"]["int8"]["topic_agreement"], manifest["parity"]["int8"]["sentiment_agreement"]) >= 0.97
    assert manifest["inputs"]["input_ids"] == {"0": "batch", "1": "sequence"}
    for name, digest in manifest["files"].items():
        assert sha256(tiny_model / "onnx" / name) == digest


def test_parity_gate_fails_loudly_and_removes_the_failed_model(tiny_model: Path, tmp_path: Path) -> None:
    from riskpulse.models.export import export

    model = shutil.copytree(tiny_model, tmp_path / "m")
    with pytest.raises(ParityError, match="no int8 quantisation reaches"):
        export(model, HEADLINES * 4, min_agreement={"int8": 1.01})  # unreachable bar
    assert not (model / "onnx" / "model.int8.onnx").exists()
    assert (model / "onnx" / "manifest.json").exists()  # the figures stay for the post-mortem


@pytest.mark.parametrize("backend", ["onnx", "onnx-fp32", "torch", "torch-bf16", "null"])
def test_backends_return_the_scorer_contract(tiny_model: Path, backend: str) -> None:
    if backend == "torch-bf16" and not cpu_has_bf16():
        pytest.skip("torch-bf16 needs a CPU with AMX or AVX-512 BF16; this host has neither")
    scores = Scorer(tiny_model, backend=backend).score(HEADLINES)
    assert len(scores) == len(HEADLINES)
    for s in scores:
        assert s.topic in TOPICS and s.sentiment in SENTIMENTS
        assert 0 < s.topic_confidence <= 1
        assert abs(sum(s.sentiment_probs.values()) - 1) < 1e-4
        assert s.sentiment_score == pytest.approx(s.sentiment_probs["positive"] - s.sentiment_probs["negative"], abs=1e-5)
        assert s.model_version == ModelMeta.read(tiny_model).model_version


def test_backends_agree_with_each_other(tiny_model: Path, data_dir: Path) -> None:
    import pandas as pd

    texts = pd.read_csv(data_dir / "twitter-financial-news-topic" / "valid.csv").text.tolist()[:200]
    ref = Scorer(tiny_model, backend="torch").logits(texts)
    fp32 = Scorer(tiny_model, backend="onnx-fp32").logits(texts)
    for a, b in zip(ref, fp32):
        assert np.abs(a - b).max() < 1e-3
        assert (a.argmax(1) == b.argmax(1)).all()


def test_bf16_is_measured_at_export_and_refused_below_the_bar(tiny_model: Path, tmp_path: Path) -> None:
    if not cpu_has_bf16():
        pytest.skip("torch-bf16 needs a CPU with AMX or AVX-512 BF16; this host has neither")
    manifest = json.loads((tiny_model / "onnx" / "manifest.json").read_text())
    bf16 = manifest["parity"]["torch_bf16"]
    assert bf16["n"] > 0 and 0.9 <= bf16["topic_agreement"] <= 1 and 0.9 <= bf16["sentiment_agreement"] <= 1
    assert bf16["engine"] == "torch:cpu:bf16:compiled"  # export measured the compiled model it serves
    assert Scorer(tiny_model, backend="torch-bf16").engine.name == bf16["engine"]

    model = shutil.copytree(tiny_model, tmp_path / "m")
    manifest["parity"]["torch_bf16"]["topic_agreement"] = 0.9
    (model / "onnx" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BackendUnavailableError, match="bf16 agreed with fp32 on only"):
        Scorer(model, backend="torch-bf16")


def test_bf16_refuses_a_cpu_without_bf16_hardware(tiny_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from riskpulse.models import scorer

    monkeypatch.setattr(scorer, "cpu_has_bf16", lambda: False)
    with pytest.raises(BackendUnavailableError, match="needs a CPU with AMX or AVX-512 BF16"):
        Scorer(tiny_model, backend="torch-bf16")
    assert "torch-bf16" not in available_backends()


def test_a_compiled_engine_never_recompiles_mid_stream(tiny_model: Path) -> None:
    # a recompile costs seconds: in the worker it stalled news for 6-11 s once load fell to single items
    from torch._dynamo.utils import counters

    from riskpulse.models.scorer import TorchEngine

    scorer = Scorer(tiny_model, engine=TorchEngine.from_dir(tiny_model, "cpu", compile=True), batch_size=64)
    graphs = counters["stats"]["unique_graphs"]
    for n, words in ((1, 3), (2, 30), (64, 7), (1, 60), (17, 2), (100, 12)):
        scorer.score(["shares slide " * words] * n)
    assert counters["stats"]["unique_graphs"] == graphs


def test_a_compiled_engine_freezes_its_weights_and_only_its_own(tiny_model: Path) -> None:
    # frozen weights are what let TorchInductor pre-pack them for oneDNN (the compiled speed-up)
    import torch
    import torch._inductor.config as inductor
    from torch._inductor.utils import run_and_get_code

    from riskpulse.models.scorer import TorchEngine

    engine = TorchEngine.from_dir(tiny_model, "cpu")
    torch._dynamo.reset()  # compile afresh, so the generated code is seen
    _, code = run_and_get_code(engine.compile)
    assert engine.compiled and "torch.ops.mkldnn." in "".join(code)
    assert inductor.freezing is False  # the process's other compiles (training's) are not frozen


def test_torch_serves_eager_with_a_warning_when_compiling_fails(tiny_model: Path, monkeypatch: pytest.MonkeyPatch,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    import torch

    from riskpulse.models.scorer import TorchEngine

    compiled = Scorer(tiny_model, engine=TorchEngine.from_dir(tiny_model, "cpu", compile=True))
    assert compiled.engine.name == "torch:cpu:compiled"

    def no_compiler(*args: object, **kwargs: object) -> None:
        raise RuntimeError("Failed to find C++ compiler")

    monkeypatch.setattr(torch, "compile", no_compiler)
    eager = Scorer(tiny_model, engine=TorchEngine.from_dir(tiny_model, "cpu", compile=True))
    assert eager.engine.name == "torch:cpu"
    warning = next(r for r in caplog.records if "torch.compile failed" in r.getMessage())
    assert "install g++" in warning.getMessage() and "Failed to find C++ compiler" in warning.error  # type: ignore[attr-defined]
    a, b = compiled.score(HEADLINES), eager.score(HEADLINES)
    assert [x.topic for x in a] == [x.topic for x in b] and [x.sentiment for x in a] == [x.sentiment for x in b]


def test_a_non_spinning_torch_engine_makes_openmp_threads_sleep(tiny_model: Path) -> None:
    # OpenMP reads its wait policy once, at import: only a fresh process shows it
    code = ("import os, sys; from riskpulse.models.scorer import TorchEngine; "
            f"TorchEngine.from_dir({str(tiny_model)!r}, 'cpu', spin=False); print(os.environ.get('OMP_WAIT_POLICY'))")
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "PASSIVE"


def test_training_from_a_missing_model_says_what_to_do(tmp_path: Path, data_dir: Path) -> None:
    from riskpulse.models.errors import ModelNotFoundError
    from riskpulse.models.train import recipe_by_name, train

    with pytest.raises(ModelNotFoundError, match="is not a riskpulse model folder"):
        train(data_dir, tmp_path / "out", recipe_by_name("tiny"), progress=False, init_from=tmp_path / "nowhere")
    assert not (tmp_path / "out").exists()


def test_bf16_training_refuses_a_cpu_without_bf16_hardware(tmp_path: Path, data_dir: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from riskpulse.models import train

    monkeypatch.setattr(train, "cpu_has_bf16", lambda: False)
    monkeypatch.setattr(train, "bf16_pays", lambda: False)
    assert train._training_precision("auto") == "fp32"
    with pytest.raises(ValueError, match="use --precision fp32"):
        train.train(data_dir, tmp_path / "out", train.recipe_by_name("tiny", precision="bf16"),
             progress=False)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("flags", "speedup", "auto"), [
    ({"avx512f", "avx512_bf16"}, 0.6, "fp32"),  # a Xeon VM without AMX: hardware bf16, yet slower
    ({"avx512f", "avx512_bf16"}, 1.8, "bf16"),  # Zen 4
    ({"amx_bf16", "avx512_bf16"}, 2.5, "bf16"),
    ({"avx512f"}, 3.0, "fp32"),  # emulated bf16: never, whatever a probe says
])
def test_auto_precision_takes_bf16_where_it_measures_faster(flags: set[str], speedup: float, auto: str,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from riskpulse.models import cpu_features, train

    monkeypatch.setattr(cpu_features, "cpu_flags", lambda: frozenset(flags))
    monkeypatch.setattr(cpu_features, "bf16_speedup", lambda: speedup)
    assert train._training_precision("auto") == auto
    if "avx512_bf16" in flags:
        assert train._training_precision("bf16") == "bf16"  # asked for, it is given


def test_bf16_speedup_is_measured() -> None:
    from riskpulse.models.cpu_features import bf16_speedup

    assert bf16_speedup() > 0


def test_order_is_kept_through_length_sorting(tiny_model: Path) -> None:
    scorer = Scorer(tiny_model, backend="onnx-fp32", batch_size=2)
    texts = ["short", "a much longer headline about central banks and credit markets today", "mid length one"]
    together = scorer.score(texts)
    alone = [scorer.score([t])[0] for t in texts]
    for a, b in zip(together, alone):
        assert a.topic == b.topic and a.sentiment_score == pytest.approx(b.sentiment_score, abs=1e-4)


@pytest.mark.parametrize("bad,reason", [("", "empty"), ("   \n\t", "empty"), (None, "expected text"),
                                        (42, "expected text"), (b"\xff\xfe", "not UTF-8"), (["x"], "expected text")])
def test_bad_input_gets_a_clear_error_naming_the_item(tiny_model: Path, bad: object, reason: str) -> None:
    with pytest.raises(InvalidTextError, match=reason) as info:
        Scorer(tiny_model, backend="onnx").score(["fine headline", bad])
    assert info.value.index == 1


def test_huge_and_odd_text_is_scored_not_crashed(tiny_model: Path) -> None:
    scores = Scorer(tiny_model, backend="onnx").score(["crash " * 200_000, "🚀📉 $GME", "Ñandú S.A. quiebra", b"bytes headline"])
    assert len(scores) == 4


def test_cpu_serving_does_not_import_torch(tiny_model: Path) -> None:
    code = ("import sys; from riskpulse.models.scorer import Scorer; "
            f"s = Scorer({str(tiny_model)!r}, backend='onnx'); s.score(['Fed hikes rates']); "
            "print('torch' in sys.modules, 'transformers' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False False"


def test_evaluate_command_prints_json_last(tiny_model: Path, data_dir: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "riskpulse.cli", "evaluate", "--model", str(tiny_model), "--data",
                          str(data_dir / "financial-phrasebank" / "all.csv"), "--task", "sentiment",
                          "--min-agreement", "100", "--json"], capture_output=True, text=True, check=True)
    lines = out.stdout.strip().splitlines()
    fig = json.loads(lines[-1])
    assert fig["n"] == 1797 and 0 <= fig["accuracy"] <= 1
    assert {"accuracy", "macro_f1", "weighted_f1", "n", "per_class", "confusion_matrix"} <= set(fig)
    assert sum(map(sum, fig["confusion_matrix"])) == 1797
    assert "confusion matrix" in out.stdout
    assert fig["accuracy_by_agreement"]["100"]["n"] == 1797 and "accuracy by annotator agreement: 100%" in out.stdout


def test_score_command_writes_jsonl_with_errors_for_bad_rows(tiny_model: Path, tmp_path: Path) -> None:
    src = tmp_path / "in.csv"
    src.write_text('headline,source\n"Fed hikes rates",wire\n"",wire\n"Oil slumps",wire\n')
    out = tmp_path / "out.jsonl"
    subprocess.run([sys.executable, "-m", "riskpulse.cli", "score", str(src), "--out", str(out), "--model",
                    str(tiny_model), "--backend", "onnx"], check=True, capture_output=True)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r.get("error") for r in rows] == [None, "empty or whitespace-only text", None]
    assert rows[0]["source"] == "wire" and rows[0]["sentiment"] in SENTIMENTS


def test_auto_backend_prefers_what_the_host_has(tiny_model: Path, tmp_path: Path) -> None:
    found = available_backends()
    assert "onnx" in found and "torch" in found
    # no GPU here: int8 ONNX Runtime when the whole encoder is int8, fp32 when only part of it is
    model = shutil.copytree(tiny_model, tmp_path / "m")
    manifest_path = model / "onnx" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    for quantisation, engine in (("per-channel:all-encoder", "onnx:model.int8.onnx"),
                                 ("per-channel:attention-output", "onnx:model.onnx")):
        manifest["parity"]["int8_quantisation"] = quantisation
        manifest_path.write_text(json.dumps(manifest))
        assert Scorer(model).engine.name.startswith(engine)
    assert "null" not in found  # the benchmark's free scorer is only ever chosen by name


def test_the_null_backend_scores_every_headline_neutral_without_a_model(tiny_model: Path) -> None:
    scores = Scorer(tiny_model, backend="null").score(HEADLINES)
    assert {s.sentiment for s in scores} == {"neutral"}
    assert {s.topic for s in scores} == {ModelMeta.read(tiny_model).topics[0]}


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is None,
                    reason="needs the tensorrt package (NVIDIA GPUs); this host has none")
def test_tensorrt_backend_matches_cpu(tiny_model: Path, tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs an NVIDIA GPU with CUDA; this host has none")
    model = shutil.copytree(tiny_model, tmp_path / "m")
    cpu = Scorer(model, backend="onnx-fp32").logits(HEADLINES * 40)
    gpu = Scorer(model, backend="tensorrt")
    assert gpu.engine.name.startswith("tensorrt:") and list((model / "trt").glob("*.engine"))  # built and cached
    for a, b in zip(cpu, gpu.logits(HEADLINES * 40)):
        assert (a.argmax(1) == b.argmax(1)).mean() >= 0.99 and abs(a - b).max() < 0.05  # FP16 engine


def test_tensorrt_network_flags_and_io_types_follow_the_version() -> None:
    """The TensorRT glue that only a GPU host runs, checked against both API generations."""
    from types import SimpleNamespace

    torch = pytest.importorskip("torch")
    from riskpulse.models.tensorrt_engine import _network_flags, torch_dtype

    flags = SimpleNamespace(EXPLICIT_BATCH=0)
    assert _network_flags(SimpleNamespace(__version__="8.6.1", NetworkDefinitionCreationFlag=flags)) == 1
    assert _network_flags(SimpleNamespace(__version__="10.3.0", NetworkDefinitionCreationFlag=flags)) == 0
    v8 = SimpleNamespace(DataType=SimpleNamespace(INT32="i32", FLOAT="f32", HALF="f16"))  # 8.x: no INT64
    v10 = SimpleNamespace(DataType=SimpleNamespace(INT32="i32", INT64="i64", FLOAT="f32", HALF="f16"))
    assert torch_dtype(v8, torch, "i32") is torch.int32 and torch_dtype(v10, torch, "i64") is torch.int64
    assert torch_dtype(v10, torch, "f16") is torch.float16
    with pytest.raises(BackendUnavailableError, match="rebuild the engine"):
        torch_dtype(v8, torch, "i64")


def test_cuda_backend_matches_cpu(tiny_model: Path) -> None:
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs an NVIDIA GPU with CUDA; this host has none")
    cpu = Scorer(tiny_model, backend="onnx-fp32").logits(HEADLINES)
    gpu = Scorer(tiny_model, backend="torch").logits(HEADLINES)
    for a, b in zip(cpu, gpu):
        assert (a.argmax(1) == b.argmax(1)).all()


def test_the_worker_cuts_micro_batches_into_short_calls_on_a_cpu_and_keeps_them_whole_on_a_gpu(tiny_model: Path) -> None:
    """A CPU engine pads each call to its longest row: the worker's micro-batch of arrivals, sorted
    by length, goes to it in calls of 8, or of 4 when the micro-batch is small
    (bench/bench_rows_per_call.py); a GPU keeps the whole micro-batch in one call. Either way the
    scores are the same, in input order."""
    from riskpulse.stream.scoring import CPU_ROWS_PER_CALL, CPU_ROWS_PER_SMALL_CALL, CPU_SMALL_BATCH, rows_per_call

    cpu = "onnx:model.onnx:CPUExecutionProvider"
    assert rows_per_call(cpu, 64) == rows_per_call(cpu, 64, CPU_SMALL_BATCH + 1) == CPU_ROWS_PER_CALL == 8
    assert rows_per_call(cpu, 64, 16) == rows_per_call(cpu, 64, CPU_SMALL_BATCH) == CPU_ROWS_PER_SMALL_CALL == 4
    assert rows_per_call("torch:cpu:bf16", 64) == 8 and rows_per_call("null", 2, 2) == 2
    assert rows_per_call("onnx:model.onnx:CUDAExecutionProvider", 64) == 64
    assert rows_per_call("tensorrt:model.plan", 200) == 64 and rows_per_call("torch:cuda", 32) == 32
    texts = [" ".join([h] * k) for k in (1, 3, 2, 4) for h in HEADLINES] * 2  # rows of four lengths, mixed
    assert len(texts) > 32
    whole = Scorer(tiny_model, backend="onnx-fp32", batch_size=64).score(texts)
    for rows in (8, 4):
        cut = Scorer(tiny_model, backend="onnx-fp32", batch_size=rows).score(texts)
        assert [(s.topic, s.sentiment) for s in cut] == [(s.topic, s.sentiment) for s in whole]
        assert all(abs(a.sentiment_score - b.sentiment_score) < 1e-4 for a, b in zip(cut, whole))
