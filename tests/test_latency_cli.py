"""CLI output formats of simulate / profile / devices (JSON written, tables printed, one-line errors)."""
import json

import onnx
import pytest

from edgeseg.cli import main
from latency_helpers import conv_bn_relu


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGESEG_CACHE", str(tmp_path / "cache"))  # never read or write the user's cache
    path = tmp_path / "tiny.onnx"
    onnx.save(conv_bn_relu(), str(path))
    return path


def test_simulate_one_model_prints_and_writes(tiny, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["simulate", str(tiny), "--device", "jetson-nano", "--precision", "int8", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "runs as FP16" in text and "latency" in text and "FPS" in text and "memory" in text
    data = json.loads((out / "tiny.jetson-nano.trt.fp16.latency.json").read_text())
    assert data["precision"] == "fp16" and data["total_ms"] > 0 and data["layers"][0]["ops"] == ["Conv", "BatchNormalization", "Relu"]
    assert (out / "tiny.jetson-nano.trt.fp16.layers.png").stat().st_size > 1000


def test_simulate_side_by_side_table(tiny, tmp_path, capsys):
    args = ["simulate", str(tiny), str(tiny), "--device", "jetson-nano", "--device", "raspberry-pi-4",
            "--out", str(tmp_path), "--no-plot"]
    assert main(args) == 0
    lines = capsys.readouterr().out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("model"))
    assert "device" in lines[header] and "band ms" in lines[header]
    assert sum("raspberry-pi-4" in line for line in lines[header + 1:]) == 2
    assert (tmp_path / "tiny.raspberry-pi-4.ort-cpu.fp32.latency.json").is_file()


def test_simulate_unknown_device_is_one_line_error(tiny, capsys):
    assert main(["simulate", str(tiny), "--device", "jetson-nan0", "--no-plot"]) == 2
    err = capsys.readouterr().err
    assert "known:" in err and "jetson-nano" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_simulate_missing_file_is_one_line_error(tmp_path, capsys):
    assert main(["simulate", str(tmp_path / "nope.onnx")]) == 2
    assert "not found" in capsys.readouterr().err


def test_devices_lists_profiles_with_sources(capsys):
    assert main(["devices", "--sources"]) == 0
    out = capsys.readouterr().out
    for name in ("jetson-nano", "jetson-orin-nano", "raspberry-pi-4", "raspberry-pi-5", "host"):
        assert name in out
    assert "int8->fp16" in out and "25.6 GB/s" in out


def test_profile_two_models_side_by_side(tiny, tmp_path, capsys):
    out = tmp_path / "p.json"
    assert main(["profile", str(tiny), str(tiny), "--runs", "3", "--warmup", "1", "--op-runs", "2",
                 "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "p50 ms" in text and "p99 ms" in text and "1.00x" in text and "Conv" in text
    data = json.loads(out.read_text())
    assert len(data) == 2 and data[0]["threads"] == 1 and data[0]["p50_ms"] > 0 and "Conv" in data[0]["op_ms"]
