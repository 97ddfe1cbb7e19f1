"""Every ONNX file edgeseg writes is a valid graph: full checker, strict shape inference, no unused opset import.

Kinds covered: FP32, simplified FP32, INT8 QDQ, FP16 (one tiny `edgeseg export` run), the compressed QDQ and
INT4 files, the Tucker float/INT8 pair, and the released files in export/. Also: the topological sort and the
opset-import stripping on hand-made graphs, the parity flag of verification.json, and Q/DQ node counts.
"""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper  # noqa: E402

from edgeseg.cli import main  # noqa: E402
from edgeseg.errors import EdgesegError  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
RELEASED = REPO / "export" / "unet-s2-brain-nano"
KINDS = ("fp32", "fp32-sim", "int8", "fp16")


def _strict(path) -> None:
    """What the issue asks of every file, spelled out here rather than through the helper under test."""
    onnx.checker.check_model(str(path), full_check=True)
    model = onnx.load(str(path))
    onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    used = {n.domain for n in model.graph.node} | {""}
    imports = [(i.domain, i.version) for i in model.opset_import]
    assert all(d in used for d, _ in imports), f"{path}: unused opset imports in {imports}"


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    from export_helpers import tiny_checkpoint

    root = tmp_path_factory.mktemp("valid")
    ckpt = tiny_checkpoint(root / "model.pt")
    out = root / "exp"
    assert main(["export", str(ckpt), "--out", str(out), "--calibration-slices", "8", "--quiet"]) == 0
    return out


@pytest.mark.parametrize("kind", KINDS)
def test_every_exported_kind_passes_the_full_checker(exported, kind):
    _strict(exported / f"model.{kind}.onnx")


def test_verification_json_parity_flag_and_int8_tolerance(exported):
    report = json.loads((exported / "verification.json").read_text())
    par = report["parity"]
    assert par["pass"] is True  # FP32 ONNX vs PyTorch on real test slices, max |diff| <= target
    assert par["target"] == 1e-4 and all(v <= par["target"] for v in par["max_abs_diff_vs_pytorch"].values())
    assert set(par["max_abs_diff_vs_pytorch"]) == {"fp32", "fp32-sim"}
    q = report["int8"]
    assert q["dice_target_points"] == pytest.approx(0.5)  # the stated INT8 tolerance: 0.005 mean foreground Dice
    assert q["dice_pass"] == (q["dice_points_lost"] <= q["dice_target_points"])


def _qdq_counts(path) -> dict:
    model = onnx.load(str(path))
    prod = {o: n for n in model.graph.node for o in n.output}
    inits = {i.name: i for i in model.graph.initializer}
    ops = Counter(n.op_type for n in model.graph.node)
    dq = [n for n in model.graph.node if n.op_type == "DequantizeLinear"]
    act_dq = [n for n in dq if n.input[0] in prod and prod[n.input[0]].op_type == "QuantizeLinear"]
    weight_dq = [n for n in dq if n.input[0] in inits and inits[n.input[0]].data_type == TensorProto.INT8]
    bias_dq = [n for n in dq if n.input[0] in inits and inits[n.input[0]].data_type == TensorProto.INT32]
    convs = [n for n in model.graph.node if n.op_type in ("Conv", "ConvTranspose")]
    fed = [c for c in convs if all(x in prod and prod[x].op_type == "DequantizeLinear" for x in c.input[:2])]
    return {"ops": ops, "act_dq": len(act_dq), "weight_dq": len(weight_dq), "bias_dq": len(bias_dq), "other_dq":
            len(dq) - len(act_dq) - len(weight_dq) - len(bias_dq), "convs": len(convs), "quantized_convs": len(fed),
            "biased_convs": sum(len(c.input) > 2 and bool(c.input[2]) for c in fed)}


def test_int8_qdq_node_counts(exported):
    graph = onnx.load(str(exported / "model.fp32-sim.onnx")).graph
    fp32 = Counter(n.op_type for n in graph.node)
    c = _qdq_counts(exported / "model.int8.onnx")
    kept = json.loads((exported / "verification.json").read_text())["int8"]["quantization"]["kept_float"]
    conv_names = {n.name for n in graph.node if n.op_type in ("Conv", "ConvTranspose")}
    # the INT8 file (ORT's CPU file) was quantized from the form whose sub-pixel pair is one ConvTranspose
    kept_convs = [n for n in kept if n in conv_names or n.endswith("/ConvTranspose")]  # the jetson-nano target keeps convs with < 8 inputs float
    assert kept_convs and c["quantized_convs"] > 0
    assert c["convs"] == fp32["Conv"] + fp32["ConvTranspose"]  # no conv lost or duplicated (Conv + DepthToSpace -> one)
    assert c["quantized_convs"] == c["convs"] - len(kept_convs)  # the others read DQ(activation) and DQ(weight)
    assert c["weight_dq"] == c["quantized_convs"]  # one per-channel INT8 weight each
    assert c["bias_dq"] == c["biased_convs"]  # INT32 biases of the quantized convs
    assert c["ops"]["QuantizeLinear"] == c["act_dq"]  # activations: one Q -> DQ pair per quantized tensor
    assert c["other_dq"] == 0 and not {"QLinearConv", "ConvInteger"} & set(c["ops"])  # QDQ format, not QOperator


def test_keep_float_leaves_named_convs_without_qdq(tmp_path):
    from export_helpers import tiny_checkpoint, tiny_fp32

    from edgeseg.export.quantize import quantize_int8
    from edgeseg.export.recipe import QuantizeConfig

    fp32, calib = tiny_fp32(tiny_checkpoint(tmp_path / "model.pt"), tmp_path)
    info = quantize_int8(fp32, tmp_path / "q.onnx", calib, QuantizeConfig(keep_float=("/sr_head/fuse/*",)), tmp_path)
    _strict(tmp_path / "q.onnx")
    c = _qdq_counts(tmp_path / "q.onnx")
    fused = [n for n in info["kept_float"] if "/Conv" in n]
    assert len(fused) == 2  # the fusion's full-resolution and low-resolution 1x1 convs
    assert c["quantized_convs"] == c["convs"] - 2 and c["weight_dq"] == c["convs"] - 2


def test_compressed_exports_pass_the_full_checker(tmp_path):
    from edgeseg.compress.export_compressed import export_qdq, int4_weights
    from edgeseg.compress.registry import make_scheme
    from edgeseg.models import create_model
    from export_helpers import tiny_contract

    torch.manual_seed(0)
    model = create_model("unet", 1, 3, 2, sr_head=True, width=2).eval()
    scheme = make_scheme({"name": "ternary"})
    scheme.apply(model, (1, 1, 16, 16))
    scheme.calibrate(model, [torch.randn(2, 1, 16, 16, generator=torch.Generator().manual_seed(1))])
    path = export_qdq(model, tiny_contract(), tmp_path / "m.onnx")
    int4_weights(path, tmp_path / "m4.onnx")
    for p in (path, tmp_path / "m4.onnx"):
        _strict(p)


def test_tucker_float_and_int8_pass_the_full_checker(tmp_path):
    from edgeseg.compress.pipeline import export_float_int8
    from edgeseg.compress.tucker import decompose_model
    from edgeseg.models import create_model
    from export_helpers import FakeSet, tiny_contract

    torch.manual_seed(0)
    model = create_model("unet", 1, 3, 2, sr_head=True, width=4).eval()
    decompose_model(model, df=0.5, min_rank=2)
    files = export_float_int8(model, tiny_contract(), {"train": FakeSet(8)}, 2, tmp_path, 13)
    for p in files.values():
        _strict(p)


# --- the helper itself, on hand-made graphs ------------------------------------------------------------------

def _two_node_model(shuffled: bool, extra_imports=()):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])
    nodes = [helper.make_node("Relu", ["x"], ["h"], name="first"), helper.make_node("Neg", ["h"], ["y"], name="second")]
    graph = helper.make_graph(nodes[::-1] if shuffled else nodes, "g", [x], [y])
    imports = [helper.make_opsetid("", 13)] + [helper.make_opsetid(d, v) for d, v in extra_imports]
    return helper.make_model(graph, opset_imports=imports, ir_version=7)


def test_topological_sort_repairs_order_and_keeps_a_sorted_graph(tmp_path):
    from edgeseg.export.validate import save_checked, topological_sort, validate

    bad = _two_node_model(shuffled=True)
    onnx.save(bad, str(tmp_path / "bad.onnx"))
    with pytest.raises(EdgesegError, match="topologically sorted"):
        validate(tmp_path / "bad.onnx")
    save_checked(bad, tmp_path / "good.onnx")
    assert [n.name for n in onnx.load(str(tmp_path / "good.onnx")).graph.node] == ["first", "second"]
    good = _two_node_model(shuffled=False)
    assert topological_sort(good.graph) is False  # already sorted: untouched


def test_unused_opset_imports_are_refused_then_stripped(tmp_path):
    from edgeseg.export.validate import save_checked, validate

    extra = (("ai.onnx.ml", 5), ("com.microsoft", 1), ("org.pytorch.aten", 1))
    model = _two_node_model(shuffled=False, extra_imports=extra)
    onnx.save(model, str(tmp_path / "leftover.onnx"))
    with pytest.raises(EdgesegError, match="ai.onnx.ml 5"):
        validate(tmp_path / "leftover.onnx")
    save_checked(model, tmp_path / "clean.onnx")
    assert [(i.domain, i.version) for i in onnx.load(str(tmp_path / "clean.onnx")).opset_import] == [("", 13)]


def test_an_import_a_node_uses_is_kept(tmp_path):
    from edgeseg.export.validate import strip_unused_opsets

    model = _two_node_model(shuffled=False, extra_imports=(("com.microsoft", 1), ("ai.onnx.ml", 2)))
    model.graph.node[1].domain = "com.microsoft"
    assert strip_unused_opsets(model) == [("ai.onnx.ml", 2)]


# --- what is released ------------------------------------------------------------------------------------------

@pytest.mark.skipif(not RELEASED.is_dir(), reason="released model not built")
@pytest.mark.parametrize("kind", KINDS)
def test_released_files_pass_the_full_checker(kind):
    _strict(RELEASED / f"unet-s2-brain-nano.{kind}.onnx")


@pytest.mark.skipif(not RELEASED.is_dir(), reason="released model not built")
def test_released_report_and_card_agree_with_the_files():
    from edgeseg.export.card import sha256

    report = json.loads((RELEASED / "verification.json").read_text())
    assert report["parity"]["pass"] is True and report["int8"]["dice_pass"] is True
    card = json.loads((RELEASED / "model_card.json").read_text())
    for kind, entry in card["files"].items():
        assert sha256(RELEASED / entry["file"]) == entry["sha256"], f"{entry['file']} changed after its card was written"


def test_model_card_says_which_file_to_deploy_where(exported):
    card = json.loads((exported / "model_card.json").read_text())
    deploy = {b: set(d["files"]) for b, d in card["deploy"].items()}
    # the Nano's TensorRT takes the float files, its ARM CPU every file (INT8 is the CPU model)
    assert deploy == {"trt": {"model.fp32-sim.onnx", "model.fp16.onnx"},
                      "ort-cpu": {"model.fp32-sim.onnx", "model.fp16.onnx", "model.int8.onnx"}}
    assert "Which file to deploy where" in (exported / "model_card.md").read_text()


def test_narrow_convs_stay_float_and_qoperator_is_valid_too(tmp_path):
    from export_helpers import tiny_checkpoint, tiny_fp32

    from edgeseg.export.check import check_file, errors
    from edgeseg.export.quantize import quantize_int8
    from edgeseg.export.recipe import QuantizeConfig

    fp32, calib = tiny_fp32(tiny_checkpoint(tmp_path / "model.pt", width=8), tmp_path)
    cfg = QuantizeConfig(activation_type="uint8", float_below_channels=8)
    info = quantize_int8(fp32, tmp_path / "q.onnx", calib, cfg, tmp_path)
    # the 1-channel input conv and the SR head's one-channel-per-group convs (and its 7-channel fuse conv)
    assert any("enc.0.0.0" in n for n in info["kept_float"]) and any("refine" in n for n in info["kept_float"])
    assert not any("enc.0.1.0" in n for n in info["kept_float"])  # 8 input channels: quantized
    _strict(tmp_path / "q.onnx")
    c = _qdq_counts(tmp_path / "q.onnx")
    assert c["quantized_convs"] == c["convs"] - len(info["kept_float"]) and c["weight_dq"] == c["quantized_convs"]
    qop = quantize_int8(fp32, tmp_path / "qop.onnx", calib, QuantizeConfig(format="qoperator"), tmp_path)
    _strict(tmp_path / "qop.onnx")
    assert qop["format"] == "QOPERATOR"
    ops = Counter(n.op_type for n in onnx.load(str(tmp_path / "qop.onnx")).graph.node)
    assert ops["QLinearConv"] == c["ops"]["Conv"] and "Conv" not in ops  # ConvTranspose has no QLinear form: float
    _, found = check_file(tmp_path / "qop.onnx", "jetson-orin-nano")
    assert any(f.op_type == "QLinearConv" for f in errors(found))  # TensorRT parses QDQ, not QOperator


def test_an_unknown_quantize_format_is_refused():
    from edgeseg.export.recipe import ExportRecipe, QuantizeConfig, SourceConfig

    with pytest.raises(ValueError, match="qdq, qoperator"):
        ExportRecipe(source=SourceConfig(checkpoint="m.pt"), quantize=QuantizeConfig(format="qlinear"))
