"""`edgeseg bench int8-cpu`'s reconciliation with the export report: same file detected byte for byte, the export's
own timer repeated, this bench's timer beside it (tiny model, few runs: checks the table, not the numbers)."""
from __future__ import annotations

import argparse
import shutil

import pytest

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")


def _args(**kw):
    from edgeseg.bench import int8_cpu

    p = argparse.ArgumentParser()
    int8_cpu.add_arguments(p)
    args = p.parse_args(["--repeats", "3", "--report-rounds", "2", "--report-runs", "2"])
    for k, v in kw.items():
        setattr(args, k, v)
    return args


def test_report_timer_names_the_same_file_and_both_timers(tmp_path):
    from export_helpers import tiny_checkpoint, tiny_fp32

    from edgeseg.bench.int8_cpu import _report_timer, interleaved
    from edgeseg.export.quantize import quantize_int8
    from edgeseg.export.recipe import QuantizeConfig

    fp32, x = tiny_fp32(tiny_checkpoint(tmp_path / "model.pt"), tmp_path)
    quantize_int8(fp32, tmp_path / "v.onnx", x, QuantizeConfig(activation_type="uint8"), tmp_path)
    shutil.copy(tmp_path / "v.onnx", tmp_path / "released.onnx")
    paths = {"fp32": fp32, "v": tmp_path / "v.onnx"}
    wall, cpu = interleaved(paths, x[:1], 3)
    text = _report_timer(_args(released=str(tmp_path / "released.onnx")), paths, "v", x[:1], wall, cpu)
    assert "v here is byte-identical to" in text
    rows = [line for line in text.splitlines() if line.startswith("| ") and "measurement" not in line]
    assert len(rows) == 4 and "2 rounds" in rows[0]
    ratios = rows[0].split("|")[4].split("/")
    assert len(ratios) == 3 and float(ratios[0]) <= float(ratios[1]) <= float(ratios[2])  # min / median / max
    (tmp_path / "released.onnx").write_bytes(b"other")
    assert "NOT the same file as" in _report_timer(_args(released=str(tmp_path / "released.onnx")), paths, "v", x[:1], wall, cpu)
