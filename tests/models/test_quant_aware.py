"""The int8 simulation must be ONNX Runtime's arithmetic, or the quantisation-aware stage trains for the wrong noise."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from torch import nn  # noqa: E402

from riskpulse.models.quant_aware import (FakeQuantLinear, fake_quant_activation, fake_quant_ready,  # noqa: E402
                                simulated_int8)


def _matmul_model(weight: np.ndarray, path: Path) -> None:
    from onnx import TensorProto, helper, numpy_helper

    k, n = weight.shape
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"], name="/encoder/layer.0/intermediate/dense/MatMul")],
        "one_matmul",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "seq", k])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", "seq", n])],
        [numpy_helper.from_array(weight, "w")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(path))


def test_simulated_int8_matches_onnx_runtime_dynamic_int8(tmp_path: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    rng = np.random.default_rng(0)
    x = rng.normal(size=(4, 9, 64)).astype(np.float32)
    x[..., 3] *= 30  # an outlier channel, as the encoder's LayerNorm outputs have
    w = rng.normal(scale=0.05, size=(64, 32)).astype(np.float32)
    fp32, int8 = tmp_path / "m.onnx", tmp_path / "m.int8.onnx"
    _matmul_model(w, fp32)
    quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8, per_channel=True)
    ort_int8 = ort.InferenceSession(str(int8), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]

    layer = nn.Linear(64, 32, bias=False)
    layer.weight.data = torch.from_numpy(w.T.copy())
    layer.__class__ = FakeQuantLinear
    with simulated_int8([layer]), torch.no_grad():  # type: ignore[list-item]
        simulated = layer(torch.from_numpy(x)).numpy()
    exact = x @ w
    int8_error = np.abs(ort_int8 - exact).max()
    assert int8_error > 1e-2  # the rounding is real and large with an outlier channel...
    diff = np.abs(simulated - ort_int8)
    assert np.quantile(diff, 0.95) < int8_error / 100  # ...and simulated to within 1% of it
    if _has_vnni():
        assert diff.max() < int8_error / 100  # everywhere
    # On x86 without VNNI (AVX2 only), ONNX Runtime's u8s8 kernel adds pairs of products in
    # saturating int16 (vpmaddubsw): a few outputs with large activations differ from exact
    # int8 arithmetic, which the simulation does not model (the int8 backend is less accurate there).


def _has_vnni() -> bool:
    import platform

    if platform.machine() not in ("x86_64", "AMD64"):
        return True  # ARM's int8 dot products accumulate in int32
    try:
        flags = open("/proc/cpuinfo").read()
    except OSError:
        return True
    return "avx512_vnni" in flags or "avx_vnni" in flags or "amx_int8" in flags


def test_activation_rounding_passes_gradients_straight_through_and_into_the_range() -> None:
    x = torch.linspace(-3, 5, 50, requires_grad=True)
    y = fake_quant_activation(x, learn_range=False)
    assert len(torch.unique(y.detach())) <= 50 and not torch.equal(y.detach(), x.detach())
    y.sum().backward()
    assert torch.allclose(x.grad[1:-1], torch.ones(48))  # the ends sit on the clipping bounds

    x = torch.tensor([0.1, 0.2, 0.33, 30.0], requires_grad=True)  # one outlier sets the scale
    y = fake_quant_activation(x)
    assert torch.allclose(y.detach(), fake_quant_activation(x.detach(), learn_range=False))  # same values
    ((y - x.detach()) ** 2).sum().backward()  # the rounding error...
    assert x.grad[3] > 0  # ...is reduced by shrinking the outlier


def test_fake_quant_layers_are_plain_linear_again_afterwards(tiny_model: Path) -> None:
    from riskpulse.models.network import TwoHeadClassifier

    model = TwoHeadClassifier.load(tiny_model)
    keys = list(model.state_dict())
    ids = torch.tensor([[101, 7592, 2088, 102]])
    mask = torch.ones_like(ids)
    with torch.no_grad():
        plain = model(ids, mask)[0]
        with fake_quant_ready(model) as layers:
            assert layers and all(isinstance(m, FakeQuantLinear) for m in layers)
            assert list(model.state_dict()) == keys
            assert torch.allclose(model(ids, mask)[0], plain)  # off unless asked for
            with simulated_int8(layers):
                assert not torch.allclose(model(ids, mask)[0], plain)
    assert not any(isinstance(m, FakeQuantLinear) for m in model.modules())
    assert type(model.topic_head) is nn.Linear
