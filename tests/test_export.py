"""Export: parity, metadata round-trip, INT8 in ONNX Runtime, target check, bad input through the CLI.

A tiny random U-Net (width 2) keeps this fast; the Dice-tolerance test uses the released default model
in export/ on real MNI152 test slices.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from edgeseg.cli import main  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
RELEASED = REPO / "export" / "unet-s2-brain-nano"
CLASSES = ("background", "gm", "wm")
# INT8 vs FP32 tolerance per model output (issue #13): Dice difference on the test split
INT8_DICE_TOLERANCE = {"logits": 0.005}


def _tiny_checkpoint(path: Path, name: str = "unet", width: int = 2, seed: int = 0) -> Path:
    from edgeseg.train.checkpoint import build_model, save_checkpoint
    from edgeseg.train.recipe import ModelConfig, Recipe

    torch.manual_seed(seed)
    recipe = Recipe(model=ModelConfig(name=name, scale=2, sr_head=True, width=width))
    save_checkpoint(path, build_model(recipe, len(CLASSES)), recipe, CLASSES, "tiny-test", {})
    return path


@pytest.fixture(scope="module")
def data():
    from edgeseg.export.pipeline import load_data
    from edgeseg.train.recipe import Recipe

    return load_data(Recipe())


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return _tiny_checkpoint(tmp_path_factory.mktemp("tiny") / "model.pt")


def _contract(recipe):
    from edgeseg.export.to_onnx import build_contract

    return build_contract(recipe, CLASSES, "tiny-test", (1.0, 1.0, 1.0))


def test_parity_and_metadata_round_trip(tiny, tmp_path, data):
    from edgeseg.contract import read_contract
    from edgeseg.export.simplify import ort_session, run_onnx, simplify
    from edgeseg.export.to_onnx import export_onnx
    from edgeseg.train.checkpoint import load_checkpoint

    model, recipe, _ = load_checkpoint(tiny)
    contract = _contract(recipe)
    path = export_onnx(model, contract, tmp_path / "m.onnx", opset=13)
    x = np.ascontiguousarray(data[0]["test"].lowres(2)[::4, None])  # real slices
    with torch.no_grad():
        ref = model(torch.from_numpy(x)).numpy()
    assert np.abs(run_onnx(ort_session(path), x) - ref).max() <= 1e-4  # target: FP32 ONNX vs PyTorch <= 1e-4
    simplify(path, tmp_path / "s.onnx", x[:2])  # raises when simplified differs beyond rtol 1e-4 / atol 1e-5
    for p in (path, tmp_path / "s.onnx"):
        assert read_contract(str(p)) == contract  # every field survives metadata_props
    assert {i.version for i in onnx.load(str(path)).opset_import if i.domain in ("", "ai.onnx")} == {13}


def test_int8_and_fp16_run_in_onnxruntime(tiny, tmp_path, data):
    from edgeseg.contract import read_contract
    from edgeseg.export.fp16 import to_fp16
    from edgeseg.export.quantize import calibration_slices, per_layer_error, quantize_int8
    from edgeseg.export.recipe import QuantizeConfig
    from edgeseg.export.simplify import ort_session, run_onnx
    from edgeseg.export.to_onnx import export_onnx
    from edgeseg.train.checkpoint import load_checkpoint

    model, recipe, _ = load_checkpoint(tiny)
    fp32 = export_onnx(model, _contract(recipe), tmp_path / "m.onnx", opset=13)
    calib = calibration_slices(data[0]["train"].lowres(2), 8)
    info = quantize_int8(fp32, tmp_path / "q.onnx", calib, QuantizeConfig(keep_float=("/sr_head/fuse/*",)), tmp_path)
    assert info["kept_float"] and all("fuse" in n for n in info["kept_float"])
    ops = {n.op_type for n in onnx.load(str(tmp_path / "q.onnx")).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    assert read_contract(str(tmp_path / "q.onnx")).precision == "int8"
    to_fp16(fp32, tmp_path / "h.onnx")
    assert read_contract(str(tmp_path / "h.onnx")).precision == "fp16"
    x = np.ascontiguousarray(data[0]["test"].lowres(2)[::4, None])
    a = run_onnx(ort_session(fp32), x)
    for path, tol in ((tmp_path / "q.onnx", 0.25), (tmp_path / "h.onnx", 0.01)):
        out = run_onnx(ort_session(path), x)
        assert out.dtype == np.float32 and out.shape == a.shape  # float32 IO for every variant
        # relative error of the logits: INT8 <= 25 %, FP16 <= 1 % of the FP32 logits' range (random tiny weights)
        assert np.abs(out - a).max() <= tol * (a.max() - a.min())
    # the per-layer report the verification adds when INT8 misses its Dice target
    worst = per_layer_error(fp32, tmp_path / "q.onnx", calib[:2], tmp_path)["worst_activations"]
    assert worst and all(np.isfinite(w["sqnr_vs_float_model"]) for w in worst)


@pytest.mark.skipif(not RELEASED.is_dir(), reason="released model not built")
def test_released_int8_within_dice_tolerance(data):
    from edgeseg.contract import read_contract
    from edgeseg.export.simplify import ort_session, run_onnx
    from edgeseg.metrics import mean_foreground_dice

    from edgeseg.data import build_slice_sets, load_source
    from edgeseg.data.slices import SliceConfig

    released = read_contract(str(RELEASED / "unet-s2-brain-nano.int8.onnx"))  # its test slices as its contract says
    test = build_slice_sets(load_source("mni152"), SliceConfig(normalization=released.normalization, fit=released.fit))["test"]
    dice = {}
    for prec in ("fp32-sim", "int8"):
        path = RELEASED / f"unet-s2-brain-nano.{prec}.onnx"
        assert path.stat().st_size < 2 * 2**20  # released models stay under 2 MB
        contract = read_contract(str(path))
        assert [o.name for o in onnx.load(str(path)).graph.output] == list(INT8_DICE_TOLERANCE)  # every output has one
        x = np.ascontiguousarray(test.lowres(contract.scale)[:, None])
        dice[prec] = mean_foreground_dice(run_onnx(ort_session(path), x).argmax(1), test.label, len(contract.class_names))
    assert dice["fp32-sim"] > 0.80
    # stated per model output: the full-resolution logits, argmax -> labels, mean foreground Dice on the test split
    assert dice["fp32-sim"] - dice["int8"] <= INT8_DICE_TOLERANCE["logits"]


def _bad_graph(path: Path) -> Path:
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 4, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, 8, 8])
    idx = helper.make_tensor_value_info("idx", TensorProto.INT64, None)
    scales = helper.make_tensor("scales", TensorProto.FLOAT, [4], [1, 1, 2, 2])
    nodes = [helper.make_node("Resize", ["x", "", "scales"], ["y"], name="up_cubic", mode="cubic"),
             helper.make_node("NonZero", ["x"], ["idx"], name="where_nonzero")]
    graph = helper.make_graph(nodes, "bad", [x], [y, idx], initializer=[scales])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    return path


def test_check_flags_unsupported_nodes(tmp_path, capsys):
    from edgeseg.export.check import check_file

    path = _bad_graph(tmp_path / "bad.onnx")
    _, findings = check_file(path, "jetson-nano")
    assert {(f.node, f.op_type) for f in findings} == {("up_cubic", "Resize"), ("where_nonzero", "NonZero")}
    assert main(["check", str(path), "--target", "jetson-nano"]) == 1
    out = capsys.readouterr().out
    assert "up_cubic" in out and "where_nonzero" in out


def test_export_cli_end_to_end_and_check(tiny, tmp_path, capsys):
    out = tmp_path / "exp"
    assert main(["export", str(tiny), "--target", "jetson-nano", "--out", str(out), "--calibration-slices", "8", "--quiet"]) == 0
    names = {p.name for p in out.iterdir()}
    assert {"model.fp32.onnx", "model.fp32-sim.onnx", "model.int8.onnx", "model.fp16.onnx", "model_card.json",
            "model_card.md", "verification.json", "verification.md"} == names
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging folder left
    # what the files hold, not only their names: the card's hashes, the parity verdict, the contract, and the
    # simplified graph computing what the checkpoint computes
    import hashlib
    import json

    import numpy as np

    from edgeseg.contract import read_contract
    from edgeseg.export.simplify import ort_session, run_onnx
    from edgeseg.train.checkpoint import load_checkpoint

    card = json.loads((out / "model_card.json").read_text())
    for entry in card["files"].values():
        assert hashlib.sha256((out / entry["file"]).read_bytes()).hexdigest() == entry["sha256"], entry["file"]
    parity = json.loads((out / "verification.json").read_text())["parity"]
    assert parity["pass"] is True and max(parity["max_abs_diff_vs_pytorch"].values()) <= parity["target"] <= 1e-4
    contract = read_contract(out / "model.int8.onnx")
    assert contract.class_names == tuple(CLASSES) and contract.scale == 2 and contract.target == "jetson-nano"
    model, _, _ = load_checkpoint(tiny)
    x = np.random.default_rng(0).standard_normal((2,) + tuple(contract.input_shape[1:])).astype(np.float32)
    with torch.no_grad():
        expected = model.eval()(torch.from_numpy(x)).numpy()
    got = run_onnx(ort_session(out / "model.fp32-sim.onnx"), x)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4)
    capsys.readouterr()
    for name in ("model.fp32-sim.onnx", "model.fp16.onnx"):
        assert main(["check", str(out / name)]) == 0  # the Nano's GPU path (TensorRT 8.2)
    assert main(["check", str(out / "model.int8.onnx"), "--backend", "ort-cpu"]) == 0  # the Nano's CPU path
    assert main(["check", str(out / "model.int8.onnx")]) == 1  # Q/DQ on the Nano's Maxwell GPU: no INT8 there
    assert "Maxwell" in capsys.readouterr().out


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "error" in err[0], err
    return err[0]


def test_bad_inputs_fail_cleanly(tiny, tmp_path, capsys):
    before = set(tmp_path.iterdir())
    out = tmp_path / "out"
    # unknown recipe key
    recipe = tmp_path / "r.toml"
    recipe.write_text(f'out_dir = "out"\n[source]\ncheckpoint = "{tiny}"\n[quantize]\nmethd = "entropy"\n')
    assert main(["export", str(recipe)]) != 0
    assert "methd" in _one_error_line(capsys)
    # missing checkpoint
    assert main(["export", str(tmp_path / "nope" / "model.pt"), "--out", str(out)]) != 0
    assert "not found" in _one_error_line(capsys)
    # checkpoint of another architecture: weights that do not fit, and a model the recipe does not expect
    foreign = _tiny_checkpoint(tmp_path / "foreign.pt", width=4)
    ckpt = torch.load(foreign, weights_only=True)
    ckpt["recipe"]["model"]["width"] = 2
    torch.save(ckpt, foreign)
    assert main(["export", str(foreign), "--out", str(out)]) != 0
    assert "do not fit" in _one_error_line(capsys)
    recipe.write_text(f'out_dir = "out"\n[source]\ncheckpoint = "{tiny}"\nmodel = "enet"\n')
    assert main(["export", str(recipe), "--quiet"]) != 0
    assert "expects 'enet'" in _one_error_line(capsys)
    # unwritable output folder (a path below a regular file: unwritable even for root)
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    assert main(["export", str(tiny), "--out", str(blocker / "sub" / "out"), "--quiet"]) != 0
    assert "cannot write" in _one_error_line(capsys)
    # nothing half-written: only the files this test itself made
    assert set(tmp_path.iterdir()) - before == {recipe, foreign, blocker}
