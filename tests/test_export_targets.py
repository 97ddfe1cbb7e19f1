"""Targets of `edgeseg check`: one per device profile of `edgeseg simulate`, rules per backend, exit codes."""
from __future__ import annotations

import pytest

onnx = pytest.importorskip("onnx")

from onnx import TensorProto, helper  # noqa: E402

from edgeseg.cli import main  # noqa: E402
from edgeseg.errors import EdgesegError  # noqa: E402


def _qdq_model(path, extra_imports=(), zero_point=0):
    """x -> QuantizeLinear -> DequantizeLinear -> Relu, int8, opset 13."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    inits = [helper.make_tensor("s", TensorProto.FLOAT, [], [0.1]), helper.make_tensor("zp", TensorProto.INT8, [], [zero_point])]
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "zp"], ["q"], name="x_Q"),
             helper.make_node("DequantizeLinear", ["q", "s", "zp"], ["dq"], name="x_DQ"),
             helper.make_node("Relu", ["dq"], ["y"], name="relu")]
    imports = [helper.make_opsetid("", 13)] + [helper.make_opsetid(d, v) for d, v in extra_imports]
    model = helper.make_model(helper.make_graph(nodes, "qdq", [x], [y], initializer=inits), opset_imports=imports, ir_version=7)
    onnx.save(model, str(path))
    return path


def test_every_simulate_device_is_a_check_target_with_the_same_backends():
    from edgeseg.export.check import list_targets, load_target
    from edgeseg.latency.device import known_devices, load_device

    assert set(known_devices()) <= set(list_targets())
    for name in known_devices():
        target = load_target(name)
        assert target.device == name and set(target.backends) == set(load_device(name).backends), name
        assert target.default_backend == load_device(name).default_backend
        assert target.default_opset <= target.max_opset


def test_check_knows_jetson_orin_nano_and_lists_targets_on_a_typo(tmp_path, capsys):
    path = _qdq_model(tmp_path / "q.onnx")
    assert main(["check", str(path), "--target", "jetson-orin-nano"]) == 0  # Orin's TensorRT runs INT8 Q/DQ
    capsys.readouterr()
    assert main(["check", str(path), "--target", "jetson-orin"]) != 0
    err = capsys.readouterr().err
    assert "jetson-orin-nano" in err and len(err.strip().splitlines()) == 1


def test_qdq_on_the_nano_gpu_is_an_error_and_on_its_cpu_a_warning(tmp_path, capsys):
    path = _qdq_model(tmp_path / "q.onnx")
    assert main(["check", str(path), "--target", "jetson-nano"]) == 1
    out = capsys.readouterr().out
    assert "x_Q" in out and "2 quantized node(s)" in out and "Maxwell" in out
    assert main(["check", str(path), "--target", "jetson-nano", "--backend", "ort-cpu"]) == 0
    assert "warning:" in capsys.readouterr().out  # no int8 dot product on the Cortex-A57: no speed-up
    assert main(["check", str(path), "--target", "jetson-nano", "--backend", "cuda"]) != 0  # no such backend


def test_ort_floor_refuses_a_too_new_domain_import(tmp_path, capsys):
    from edgeseg.export.check import check_file, errors

    path = _qdq_model(tmp_path / "q.onnx", extra_imports=(("ai.onnx.ml", 5), ("org.pytorch.aten", 1)))
    _, found = check_file(path, "raspberry-pi-4")
    assert [f.problem.split(":")[0] for f in errors(found)] == ["opset import ai.onnx.ml 5"]
    assert any("org.pytorch.aten" in f.problem and f.severity == "warning" for f in found)
    _, found = check_file(path, "jetson-orin-nano", "trt")
    assert not errors(found)  # TensorRT reads only the default domain's opset


def test_nonzero_zero_point_is_refused_where_tensorrt_parses_qdq(tmp_path):
    from edgeseg.export.check import check_file, errors

    _, found = check_file(_qdq_model(tmp_path / "q.onnx", zero_point=3), "jetson-orin-nano")
    assert {f.node for f in errors(found)} == {"x_Q", "x_DQ"}


def test_a_target_opset_is_its_lowest_backend_and_unknown_targets_fail():
    from edgeseg.export.check import load_target

    assert load_target("jetson-nano").max_opset == 13  # TensorRT 8.2; its ORT backend would take 16
    with pytest.raises(EdgesegError, match="unknown target"):
        load_target("jetson-xavier")


def test_the_target_sets_quantize_defaults_and_a_recipe_overrides_them(tmp_path):
    from edgeseg.export.recipe import load_export_recipe, recipe_for_checkpoint

    # the Nano's INT8 file is its ARM-CPU model (ONNX Runtime): U8S8; Orin's TensorRT wants zero point 0
    assert recipe_for_checkpoint("m.pt", "jetson-nano").quantize.activation_type == "uint8"
    assert recipe_for_checkpoint("m.pt", "jetson-nano").quantize.float_below_channels == 8
    assert recipe_for_checkpoint("m.pt", "jetson-orin-nano").quantize.activation_type == "int8"
    assert recipe_for_checkpoint("m.pt", "jetson-orin-nano", activation_type="uint8").quantize.activation_type == "uint8"
    recipe = tmp_path / "r.toml"
    recipe.write_text('target = "jetson-nano"\n[source]\ncheckpoint = "m.pt"\n[quantize]\nactivation_type = "int8"\n')
    r, _ = load_export_recipe(recipe)
    assert (r.quantize.activation_type, r.quantize.float_below_channels) == ("int8", 8)  # own key wins, the rest from the target
    r, _ = load_export_recipe(recipe, target="jetson-orin-nano")  # --target replaces the recipe's, with its defaults
    assert r.target == "jetson-orin-nano" and r.quantize.float_below_channels == 0


def test_a_misspelt_quantize_default_in_a_target_is_named(tmp_path, monkeypatch):
    import edgeseg.export.check as check

    (tmp_path / "bad.toml").write_text('name = "bad"\ntitle = "t"\ndevice = "host"\ndefault_backend = "ort-cpu"\n'
                                       'default_opset = 13\n[quantize]\nactivation = "uint8"\n'
                                       '[backends.ort-cpu]\nruntime = "ORT"\nmax_opset = 16\n')
    monkeypatch.setattr(check, "TARGETS_DIR", tmp_path)
    with pytest.raises(EdgesegError, match="activation"):
        check.load_target("bad")


@pytest.mark.parametrize("target,activation", [("cpu-x86", "uint8"), ("cpu-arm64", "int8")])
def test_generic_cpu_targets_set_their_quantize_defaults(target, activation):
    from edgeseg.export.check import list_targets, load_target
    from edgeseg.export.recipe import recipe_for_checkpoint

    assert target in list_targets()
    t = load_target(target)
    assert list(t.backends) == ["ort-cpu"] and t.default_backend == "ort-cpu" and not t.tensorrt_calibration
    q = recipe_for_checkpoint("m.pt", target).quantize
    # x86 (VNNI): U8S8 measured faster than S8S8; Arm: S8S8 runs ORT's sdot kernels; both keep convs < 8 channels float
    assert (q.activation_type, q.float_below_channels, q.format) == (activation, 8, "qdq")


def test_check_knows_the_generic_cpu_targets_and_warns_where_int8_is_not_faster(tmp_path, capsys):
    path = _qdq_model(tmp_path / "q.onnx")
    assert main(["check", str(path), "--target", "cpu-x86"]) == 0
    out = capsys.readouterr().out
    assert "warning:" in out and "VNNI" in out  # measured slower than FP32 on an AVX2-only EPYC
    assert main(["check", str(path), "--target", "cpu-arm64"]) == 0
    out = capsys.readouterr().out
    assert "warning:" in out and "dot product" in out  # no speed-up expected on A53/A57/A72
    too_new = _qdq_model(tmp_path / "ml.onnx", extra_imports=(("ai.onnx.ml", 5),))
    for target in ("cpu-x86", "cpu-arm64"):  # the ORT 1.11 floor rules apply to both
        assert main(["check", str(too_new), "--target", target]) == 1
    capsys.readouterr()
    assert main(["check", str(path), "--target", "cpu-arm"]) == 2
    assert "cpu-arm64" in capsys.readouterr().err  # the nearest name is suggested


@pytest.mark.parametrize("target", ["cpu-x86", "cpu-arm64"])
def test_generic_cpu_target_defaults_give_the_stated_int8_graph(tmp_path, target):
    from collections import Counter

    from onnx import numpy_helper

    from export_helpers import tiny_checkpoint, tiny_fp32

    from edgeseg.export.quantize import narrow_convs, quantize_int8
    from edgeseg.export.recipe import recipe_for_checkpoint

    fp32, x = tiny_fp32(tiny_checkpoint(tmp_path / "model.pt"), tmp_path)
    q = recipe_for_checkpoint("m.pt", target).quantize
    info = quantize_int8(fp32, tmp_path / "q.onnx", x, q, tmp_path)
    model = onnx.load(str(tmp_path / "q.onnx"))
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    zps = [inits[n.input[2]] for n in model.graph.node if n.op_type == "QuantizeLinear"]
    assert zps and {z.dtype.name for z in zps} == {q.activation_type}
    if target == "cpu-arm64":
        assert all(not z.any() for z in zps)  # symmetric: zero point 0
    narrow = narrow_convs(onnx.load(str(fp32)), 8)
    assert narrow and set(narrow) <= set(info["kept_float"])  # the 1-channel input conv, the SR head's convs
    conv_ops = ("Conv", "ConvTranspose")  # the SR head's x2 stage is a depthwise ConvTranspose
    before = Counter(n.op_type for n in onnx.load(str(fp32)).graph.node)
    dq_out = {n.output[0] for n in model.graph.node if n.op_type == "DequantizeLinear"}
    quantized = [n for n in model.graph.node if n.op_type in conv_ops and n.input[1] in dq_out]
    after = Counter(n.op_type for n in model.graph.node)
    assert all(after[op] == before[op] for op in conv_ops)  # QDQ keeps every conv a Conv
    assert len(quantized) == sum(before[op] for op in conv_ops) - len(narrow)  # int8 weights except the narrow convs
