"""QuantizeConfig.float_below_both and .also_quantize (issue #13: CPU INT8 variants of `edgeseg bench int8-cpu`)."""
from __future__ import annotations

import onnx
import pytest


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from export_helpers import tiny_checkpoint, tiny_fp32

    folder = tmp_path_factory.mktemp("quantize-options")
    return tiny_fp32(tiny_checkpoint(folder / "model.pt", width=8), folder), folder


@pytest.fixture(scope="module")
def tiny_d2s(tmp_path_factory):
    """The one-stage head exports Conv + DepthToSpace (the pixelshuffle head exports a ConvTranspose)."""
    from export_helpers import tiny_checkpoint, tiny_fp32

    folder = tmp_path_factory.mktemp("quantize-options-d2s")
    return tiny_fp32(tiny_checkpoint(folder / "model.pt", width=8, head="onestage"), folder), folder


def _quantize(tiny, name, **fields):
    from edgeseg.export.quantize import quantize_int8
    from edgeseg.export.recipe import QuantizeConfig

    (fp32, calib), folder = tiny
    work = folder / name
    work.mkdir()
    info = quantize_int8(fp32, work / "q.onnx", calib, QuantizeConfig(activation_type="uint8", **fields), work)
    return info, onnx.load(str(work / "q.onnx"))


def test_float_below_both_keeps_convs_narrow_on_both_sides_float(tiny):
    info, _ = _quantize(tiny, "both", float_below_channels=8, float_below_both=16)
    kept = info["kept_float"]
    assert any("enc.0.1.0" in n for n in kept) and any("dec.2.1.0" in n for n in kept)  # 8 -> 8
    assert any("classifier" in n for n in kept)  # 8 -> 3
    assert not any("enc.1.0.0" in n for n in kept)  # 8 -> 16: 16 output channels, quantized
    assert not any("dec.2.0.0" in n for n in kept)  # 24 -> 8: 24 input channels, quantized
    base, _ = _quantize(tiny, "base", float_below_channels=8)
    assert set(base["kept_float"]) < set(kept) and "float_below_both" not in base


def _around(model, op_type):
    prod = {o: n.op_type for n in model.graph.node for o in n.output}
    cons = {i: n.op_type for n in model.graph.node for i in n.input}
    node = next(n for n in model.graph.node if n.op_type == op_type)
    return prod[node.input[0]], cons[node.output[0]]


def test_also_quantize_puts_qdq_around_an_op_type_ort_leaves_out(tiny_d2s):
    tiny = tiny_d2s
    head = ()  # the one-stage head's convs have < 8 input channels: float by float_below_channels
    info, model = _quantize(tiny, "d2s", keep_float=head, float_below_channels=8, also_quantize=("DepthToSpace",))
    assert _around(model, "DepthToSpace") == ("DequantizeLinear", "QuantizeLinear")
    assert info["also_quantize"] == ["DepthToSpace"]
    _, plain = _quantize(tiny, "plain", keep_float=head, float_below_channels=8)
    assert "QuantizeLinear" not in _around(plain, "DepthToSpace")  # ORT's defaults leave DepthToSpace in float
    convs = [n for n in model.graph.node if n.op_type == "Conv"]
    assert len(convs) == len([n for n in plain.graph.node if n.op_type == "Conv"])  # only DepthToSpace differs


def test_also_quantize_runs_on_onnx_runtime_close_to_float(tiny_d2s):
    import numpy as np

    from edgeseg.export.simplify import ort_session, run_onnx

    tiny = tiny_d2s
    (fp32, calib), folder = tiny
    _quantize(tiny, "run", float_below_channels=8,
              float_below_both=16, also_quantize=("DepthToSpace",))
    ref = run_onnx(ort_session(fp32, threads=1), calib)
    got = run_onnx(ort_session(folder / "run" / "q.onnx", threads=1), calib)
    assert got.shape == ref.shape and np.mean(got.argmax(1) == ref.argmax(1)) > 0.9


def test_the_op_type_set_is_orts_default_plus_also_minus_float_op_types():
    from onnxruntime.quantization.registry import QDQRegistry, QLinearOpsRegistry

    from edgeseg.export.quantize import quantized_op_types

    default = set(QLinearOpsRegistry) | set(QDQRegistry)
    assert {"Concat", "Add", "Conv", "MaxPool"} <= default  # Concat and Add are QLinearOps, not QDQ registry entries
    assert set(quantized_op_types(("DepthToSpace",))) == default | {"DepthToSpace"}  # adds, drops nothing
    assert set(quantized_op_types((), ("Concat",))) == default - {"Concat"}


def test_also_quantize_keeps_the_concats_quantized_and_float_op_types_takes_them_out(tiny_d2s, tiny):
    from collections import Counter

    _, with_d2s = _quantize(tiny_d2s, "d2s-concat", float_below_channels=8, also_quantize=("DepthToSpace",))
    _, plain = _quantize(tiny_d2s, "plain-concat", float_below_channels=8)
    count = lambda m: Counter(n.op_type for n in m.graph.node)["QuantizeLinear"]  # noqa: E731

    def dq_fed_concats(m):
        prod = {o: n.op_type for n in m.graph.node for o in n.output}
        return sum(all(prod.get(i) == "DequantizeLinear" for i in n.input) for n in m.graph.node if n.op_type == "Concat")

    assert dq_fed_concats(with_d2s) == dq_fed_concats(plain) > 0  # the concats stay quantized (they were dropped)
    assert count(with_d2s) == count(plain) + 2  # only DepthToSpace's input and output are new

    info, no_concat = _quantize(tiny, "float-concat", float_below_channels=8, float_op_types=("Concat",))
    _, base = _quantize(tiny, "base-concat", float_below_channels=8)
    def quantized_concats(m):  # what ORT makes of the file: DQ -> Concat -> Q becomes a QLinearConcat
        import onnxruntime as ort

        path = tiny[1] / f"concat-{id(m)}.onnx"
        onnx.save(m, str(path))
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        so.optimized_model_filepath = str(path.with_suffix(".opt.onnx"))
        ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        return Counter(n.op_type for n in onnx.load(so.optimized_model_filepath).graph.node)["QLinearConcat"]

    # ORT still fuses DQ -> Concat -> Q where both neighbours are quantized anyway; the rest stay float
    assert 0 < quantized_concats(no_concat) < quantized_concats(base)
    assert count(no_concat) < count(base) and info["float_op_types"] == ["Concat"]


def test_a_misspelt_float_op_type_is_refused_in_one_line_with_the_nearest_name():
    from edgeseg.errors import EdgesegError
    from edgeseg.export.quantize import quantized_op_types

    with pytest.raises(EdgesegError, match=r"float_op_types: 'Concatt' is not an op type ONNX Runtime quantizes.*Concat"):
        quantized_op_types((), ("Concatt",))
