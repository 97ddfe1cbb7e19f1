"""TensorRT INT8 for Orin: the calibration cache in TensorRT's text format, ONNX Runtime's TensorRT-EP table,
both from the INT8 export's calibration slices, and the model card naming the files."""
from __future__ import annotations

import json
import re
import struct

import numpy as np
import pytest

pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from edgeseg.cli import main  # noqa: E402
from edgeseg.errors import EdgesegError  # noqa: E402

LINE = re.compile(r"(.+): ([0-9a-f]{8})")


def _read_cache(path) -> tuple[str, dict]:
    """Parsed here, not through the module under test: header + {name: float32 scale from big-endian hex}."""
    lines = path.read_text().splitlines()
    scales = {}
    for line in lines[1:]:
        m = LINE.fullmatch(line)
        assert m, f"{path.name}: {line!r} is not 'name: 8 hex digits'"
        scales[m.group(1)] = struct.unpack(">f", bytes.fromhex(m.group(2)))[0]
    return lines[0], scales


def _calibrator_ranges(model_path, x, work):
    """ONNX Runtime's MinMax calibrator run directly on the same inputs."""
    from onnxruntime.quantization import CalibrationMethod, create_calibrator

    from edgeseg.export.quantize import calibration_reader

    cal = create_calibrator(model_path, None, augmented_model_path=work / "aug.onnx", calibrate_method=CalibrationMethod.MinMax)
    cal.collect_data(calibration_reader(x, "image_lowres"))
    return {k: tuple(float(np.asarray(r).item()) for r in v.range_value) for k, v in cal.compute_data().items()}


def _graph_tensors(path) -> tuple[set, set]:
    """-> (graph input + node output names, outputs of nodes that read initializers only: weights, not activations)."""
    m = onnx.load(str(path))
    known = {i.name for i in m.graph.initializer}
    weights = set()
    for n in m.graph.node:
        if all(x in known for x in n.input if x):
            weights.update(n.output)
            known.update(n.output)
    return {i.name for i in m.graph.input} | {o for n in m.graph.node for o in n.output}, weights


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from export_helpers import tiny_checkpoint, tiny_fp32

    root = tmp_path_factory.mktemp("trtcal")
    path, x = tiny_fp32(tiny_checkpoint(root / "model.pt"), root)
    return root, path, x


def test_cache_format_and_scales_equal_the_calibrator_ranges_over_127(tiny):
    from edgeseg.export.trt_calib import write_calibration

    root, path, x = tiny
    out = root / "cal"
    out.mkdir()
    info = write_calibration(path, x, "tiny", out, root / "w", ["8.5.2", "10.3.0"])
    assert info["tensorrt_caches"] == {"8.5.2": "tiny.trt-8502.calib", "10.3.0": "tiny.trt-100300.calib"}
    expected = _calibrator_ranges(path, x, root)
    names, constants = _graph_tensors(path)
    for version, header in (("8.5.2", "TRT-8502-EntropyCalibration2"), ("10.3.0", "TRT-100300-EntropyCalibration2")):
        head, scales = _read_cache(out / info["tensorrt_caches"][version])
        assert head == header
        assert set(scales) == set(expected) - constants  # every calibrated activation, nothing else
        assert set(scales) <= names and "image_lowres" in scales and "logits" in scales
        assert len(scales) > 20  # the tiny U-Net: input, every conv/relu/pool/concat/resize output, the SR head
        for name, scale in scales.items():
            amax = max(abs(v) for v in expected[name])
            # an all-zero tensor (the untrained head's learned path) gets 1.0, as ORT's quantizer gives rmin = rmax = 0
            assert scale == pytest.approx(amax / 127 if amax > 0 else 1.0, rel=1e-6), name


def test_ort_tensorrt_ep_table_is_written_by_onnxruntime_with_symmetric_ranges(tiny):
    from edgeseg.export.trt_calib import ORT_TABLE_DIR, write_calibration

    root, path, x = tiny
    out = root / "ort"
    out.mkdir()
    info = write_calibration(path, x, "tiny", out, root / "w2", ["8.5.2"])
    folder = out / ORT_TABLE_DIR
    assert sorted(p.name for p in folder.iterdir()) == ["calibration.cache", "calibration.flatbuffers", "calibration.json"]
    _, scales = _read_cache(out / info["tensorrt_caches"]["8.5.2"])
    table = dict(line.rsplit(" ", 1) for line in (folder / "calibration.cache").read_text().splitlines())
    assert set(table) == set(scales)
    for name, value in table.items():  # ORT's TensorRT EP takes this number as the tensor's dynamic range
        assert float(value) == pytest.approx(scales[name] * 127, rel=1e-6), name
    assert (folder / "calibration.flatbuffers").stat().st_size > 0


def test_a_malformed_cache_line_is_refused():
    from edgeseg.export.trt_calib import cache_text, parse_cache

    text = cache_text({"x": (-1.27, 0.5), "y": (0.0, 0.0)}, "8.5.2")
    header, scales = parse_cache(text)
    assert header == "TRT-8502-EntropyCalibration2" and scales["x"] == pytest.approx(0.01, rel=1e-6)
    assert scales["y"] == 1.0  # an all-zero tensor: scale 1, as ORT's quantizer does
    with pytest.raises(EdgesegError, match="line 2"):
        parse_cache(text.replace(": 3c23d70a", ": 3c23d70"))
    with pytest.raises(EdgesegError, match="header"):
        parse_cache("x: 3c23d70a\n")


@pytest.mark.parametrize("version,code", [("8.5.2", 8502), ("8.6.1", 8601), ("10.3.0", 100300), ("10.0", 100000)])
def test_tensorrt_version_codes(version, code):
    from edgeseg.export.trt_calib import trt_version_code

    assert trt_version_code(version) == code


@pytest.fixture(scope="module")
def orin(tmp_path_factory):
    from export_helpers import tiny_checkpoint

    root = tmp_path_factory.mktemp("orin")
    out = root / "exp"
    assert main(["export", str(tiny_checkpoint(root / "model.pt")), "--target", "jetson-orin-nano", "--out", str(out),
                 "--calibration-slices", "8", "--quiet"]) == 0
    return out


def test_orin_export_writes_caches_that_match_its_qdq_model_and_graph(orin):
    from onnx import numpy_helper

    from edgeseg.export.check import load_target

    versions = load_target("jetson-orin-nano").tensorrt_calibration
    assert set(versions) == {"8.5.2", "10.3.0"}
    names, _ = _graph_tensors(orin / "model.fp32-sim.onnx")
    caches = sorted(orin.glob("*.calib"))
    assert [p.name for p in caches] == ["model.trt-100300.calib", "model.trt-8502.calib"]
    for path in caches:
        _, scales = _read_cache(path)
        assert set(scales) <= names  # every key names a tensor of the FP32 file TensorRT parses
    # same slices as the INT8 export: the QDQ model's input scale (symmetric int8) is the cache's
    qdq = onnx.load(str(orin / "model.int8.onnx"))
    inits = {i.name: numpy_helper.to_array(i) for i in qdq.graph.initializer}
    q = next(n for n in qdq.graph.node if n.op_type == "QuantizeLinear" and n.input[0] == "image_lowres")
    assert float(inits[q.input[1]]) == pytest.approx(scales["image_lowres"], rel=1e-6)
    assert not np.any(inits[q.input[2]])  # zero point 0: what TensorRT parses


def test_orin_model_card_names_the_tensorrt_int8_files(orin):
    card = json.loads((orin / "model_card.json").read_text())
    trt = card["deploy"]["trt"]["int8"]
    assert trt["explicit_qdq"] == "model.int8.onnx"
    assert trt["implicit_calibration_cache"]["model"] == "model.fp32-sim.onnx"
    assert set(trt["implicit_calibration_cache"]["caches"].values()) == {"model.trt-8502.calib", "model.trt-100300.calib"}
    opts = trt["ort_tensorrt_ep"]["options"]
    assert (orin / opts["trt_engine_cache_path"] / opts["trt_int8_calibration_table_name"]).is_file()
    assert opts["trt_int8_use_native_calibration_table"] is False
    for name, f in card["calibration_files"].items():
        assert (orin / name).stat().st_size == f["bytes"]
    md = (orin / "model_card.md").read_text()
    assert "model.trt-8502.calib (TensorRT 8.5.2)" in md and "trtexec --onnx=model.fp32-sim.onnx --int8 --calib=" in md
    assert "TensorRT INT8 calibration of model.fp32-sim.onnx" in (orin / "verification.md").read_text()


def test_a_target_without_tensorrt_int8_writes_no_cache(tmp_path):
    from export_helpers import tiny_checkpoint

    out = tmp_path / "nano"
    assert main(["export", str(tiny_checkpoint(tmp_path / "model.pt")), "--target", "jetson-nano", "--out", str(out),
                 "--calibration-slices", "4", "--quiet"]) == 0
    assert not list(out.glob("*.calib")) and not (out / "ort-trt-calibration").exists()
    assert "int8" not in json.loads((out / "model_card.json").read_text())["deploy"]["trt"]
