"""Sub-pixel pairs (grouped 1x1 Conv + DepthToSpace) become one ConvTranspose in the files ORT's CPU provider runs."""
from __future__ import annotations

from collections import Counter

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgeseg.cli import main


def _ops(path) -> Counter:
    return Counter(n.op_type for n in onnx.load(str(path)).graph.node)


def _run(path, x):
    from edgeseg.ort import cpu_session

    s = cpu_session(str(path), threads=1)
    return s.run(None, {s.get_inputs()[0].name: x})[0]


def _pair(tmp_path, c=3, b=2, mode="CRD", bias=False):
    """x (1, c, 5, 4) -> Conv(group c, c*b*b 1x1) -> DepthToSpace(b, mode)."""
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal((c * b * b, 1, 1, 1)).astype(np.float32), "w")]
    ins = ["x", "w"]
    if bias:
        inits.append(numpy_helper.from_array(rng.standard_normal(c * b * b).astype(np.float32), "bias"))
        ins.append("bias")
    nodes = [helper.make_node("Conv", ins, ["y"], name="/up/Conv", group=c, kernel_shape=[1, 1]),
             helper.make_node("DepthToSpace", ["y"], ["z"], name="/up/DepthToSpace", blocksize=b, mode=mode)]
    g = helper.make_graph(nodes, "pair", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, c, 5, 4])],
                          [helper.make_tensor_value_info("z", TensorProto.FLOAT, [1, c, 5 * b, 4 * b])], inits)
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 7
    path = tmp_path / f"pair-{mode}-{b}-{bias}.onnx"
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize("b", [2, 3])
def test_a_crd_pair_becomes_one_conv_transpose_with_the_same_outputs(tmp_path, b):
    from edgeseg.export.subpixel import to_conv_transpose

    src = _pair(tmp_path, b=b)
    assert to_conv_transpose(src, tmp_path / "ct.onnx") == 1
    assert _ops(tmp_path / "ct.onnx") == Counter({"ConvTranspose": 1})
    x = np.random.default_rng(1).standard_normal((1, 3, 5, 4)).astype(np.float32)
    np.testing.assert_allclose(_run(tmp_path / "ct.onnx", x), _run(src, x), rtol=0, atol=1e-6)


@pytest.mark.parametrize("kw", [{"mode": "DCR"}, {"bias": True}])
def test_pairs_a_conv_transpose_cannot_express_are_left_alone(tmp_path, kw):
    from edgeseg.export.subpixel import to_conv_transpose

    src = _pair(tmp_path, **kw)
    assert to_conv_transpose(src, tmp_path / "same.onnx") == 0  # DCR orders sub-pixels across channels; bias per sub-pixel
    assert _ops(tmp_path / "same.onnx") == _ops(src)


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    from export_helpers import tiny_checkpoint

    root = tmp_path_factory.mktemp("subpixel")
    ckpt = tiny_checkpoint(root / "model.pt")
    out = {}
    for target in ("jetson-nano", "cpu-x86"):
        out[target] = root / target
        assert main(["export", str(ckpt), "--target", target, "--out", str(out[target]), "--calibration-slices", "4",
                     "--quiet"]) == 0
    return out


def test_the_nano_keeps_depth_to_space_for_tensorrt_and_its_cpu_int8_file_gets_the_conv_transpose(exports):
    folder = exports["jetson-nano"]
    for kind in ("fp32", "fp32-sim", "fp16"):  # TensorRT's files
        ops = _ops(folder / f"model.{kind}.onnx")
        assert ops["DepthToSpace"] == 1 and "ConvTranspose" not in ops, kind
    ops = _ops(folder / "model.int8.onnx")
    assert ops["ConvTranspose"] == 1 and "DepthToSpace" not in ops


def test_a_cpu_target_gets_the_conv_transpose_in_its_fp32_and_int8_files_and_parity_still_holds(exports):
    import json

    folder = exports["cpu-x86"]
    for kind in ("fp32-sim", "int8"):
        ops = _ops(folder / f"model.{kind}.onnx")
        assert ops["ConvTranspose"] == 1 and "DepthToSpace" not in ops, kind
    report = json.loads((folder / "verification.json").read_text())
    assert report["parity"]["pass"] is True  # the rewritten FP32 file vs PyTorch, max |diff| <= 1e-4
    assert report["simplify"]["conv_transpose_rewrites"] == 1


def test_a_target_naming_an_unknown_ort_cpu_file_is_refused(tmp_path, monkeypatch):
    from edgeseg.errors import EdgesegError
    from edgeseg.export import check

    text = (check.TARGETS_DIR / "cpu-x86.toml").read_text().replace('ort_cpu_files = ["fp32-sim", "int8"]',
                                                                     'ort_cpu_files = ["fp16"]')
    (tmp_path / "odd.toml").write_text(text.replace('name = "cpu-x86"', 'name = "odd"'))
    monkeypatch.setattr(check, "TARGETS_DIR", tmp_path)
    with pytest.raises(EdgesegError, match=r"odd\.toml: ort_cpu_files names fp16; it takes 'fp32-sim' and 'int8'"):
        check.load_target("odd")


def test_the_int8_bench_times_and_quantizes_the_ort_cpu_form_and_keeps_the_tensorrt_form_beside_it(tmp_path):
    from edgeseg.bench.int8_cpu import ort_cpu_form

    src = _pair(tmp_path)
    paths = ort_cpu_form(src, tmp_path / "cpu.onnx")
    assert paths == {"fp32": tmp_path / "cpu.onnx", "fp32-trt-form": src}
    assert _ops(paths["fp32"])["ConvTranspose"] == 1
    plain = _pair(tmp_path, mode="DCR")  # nothing to rewrite: one row
    assert ort_cpu_form(plain, tmp_path / "cpu2.onnx") == {"fp32": plain}


def test_a_target_cannot_rewrite_the_file_tensorrt_calibrates(tmp_path, monkeypatch):
    from edgeseg.errors import EdgesegError
    from edgeseg.export import check

    text = (check.TARGETS_DIR / "jetson-orin-nano.toml").read_text()
    text = text.replace('name = "jetson-orin-nano"', 'name = "odd"\nort_cpu_files = ["fp32-sim"]')
    (tmp_path / "odd.toml").write_text(text)
    monkeypatch.setattr(check, "TARGETS_DIR", tmp_path)
    with pytest.raises(EdgesegError, match=r"odd\.toml: the fp32-sim file is TensorRT's calibration model here"):
        check.load_target("odd")
