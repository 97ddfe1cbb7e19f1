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


def test_timing_in_fresh_processes_returns_one_pair_per_process_and_fails_in_one_line(tmp_path):
    from export_helpers import tiny_checkpoint, tiny_fp32

    from edgeseg.errors import EdgesegError
    from edgeseg.ort import interleaved_medians_in_processes

    fp32, x = tiny_fp32(tiny_checkpoint(tmp_path / "model.pt"), tmp_path)
    pairs = interleaved_medians_in_processes({"a": fp32, "b": fp32}, x[:1], repeats=3, processes=2, warmup=1)
    assert len(pairs) == 2
    for wall, cpu in pairs:
        assert set(wall) == set(cpu) == {"a", "b"} and all(v > 0 for v in [*wall.values(), *cpu.values()])
    with pytest.raises(EdgesegError, match=r"^timing process failed: .*missing\.onnx: "):
        interleaved_medians_in_processes({"a": tmp_path / "missing.onnx"}, x[:1], repeats=1, processes=1)


def test_target_is_judged_on_the_median_over_processes(tmp_path):
    from edgeseg.bench.int8_cpu import _markdown

    model = tmp_path / "m.onnx"
    model.write_bytes(b"x" * 2048)
    paths = {"fp32": model, "u8s8": model}
    cpu = {"fp32": 10.0, "u8s8": 9.0}  # the table's own run: 0.90x
    dice = {"fp32": 0.9, "u8s8": 0.9}
    args = _args()
    met = _markdown(args, paths, dice, cpu, cpu, {}, {}, "u8s8", spread=[0.95, 0.70, 0.78])
    assert "median 0.78, min 0.70, max 0.95" in met and "0.78× (median of 3 processes), +0.00 points: met" in met
    missed = _markdown(args, paths, dice, cpu, cpu, {}, {}, "u8s8", spread=[0.70, 0.85, 0.90])
    assert "0.85× (median of 3 processes)" in missed and ": not met" in missed
    alone = _markdown(args, paths, dice, cpu, cpu, {}, {}, "u8s8")
    assert "0.90× (the table's run)" in alone and ": not met" in alone


def test_process_variants_are_reported_beside_the_recipe_and_judged_the_same_way(tmp_path):
    from edgeseg.bench.int8_cpu import _markdown

    model = tmp_path / "m.onnx"
    model.write_bytes(b"x" * 2048)
    paths = {"fp32": model, "u8s8": model, "s8s8": model, "u8s8-sr": model}
    cpu = {"fp32": 10.0, "u8s8": 9.0, "s8s8": 7.0, "u8s8-sr": 7.0}
    dice = {"fp32": 0.9, "u8s8": 0.9, "s8s8": 0.9, "u8s8-sr": 0.89}
    text = _markdown(_args(), paths, dice, cpu, cpu, {}, {}, "u8s8", spread=[0.9, 0.9, 0.9],
                     others={"s8s8": [0.7, 0.9, 0.75], "u8s8-sr": [0.7, 0.7, 0.7]})
    assert "s8s8, timed in the same 3 processes: 0.70, 0.90, 0.75 (median 0.75), +0.00 points: it would meet the target" in text
    assert "u8s8-sr, timed in the same 3 processes: 0.70, 0.70, 0.70 (median 0.70), +1.00 points: it would not meet the target" in text
    assert "0.90× (median of 3 processes), +0.00 points: not met" in text  # the recipe's verdict is its own


def test_process_ratios_time_the_extra_variants_in_the_same_processes(tmp_path):
    from export_helpers import tiny_checkpoint, tiny_fp32

    from edgeseg.bench.int8_cpu import _process_ratios

    fp32, x = tiny_fp32(tiny_checkpoint(tmp_path / "model.pt"), tmp_path)
    paths = {"fp32": fp32, "u8s8": fp32, "s8s8": fp32}
    got, runs = _process_ratios(paths, "u8s8", x[:1], _args(repeats=2, processes=2, process_variants=["s8s8", "u8s8"]),
                                {"old int8": fp32})
    assert set(got) == {"u8s8", "s8s8"} and all(len(v) == 2 and all(r > 0 for r in v) for v in got.values())
    assert len(runs) == 2 and all(set(r) == {"fp32", "u8s8", "s8s8", "old int8"} for r in runs)  # baselines timed alongside


def test_baseline_release_is_found_and_compared_in_ms(tmp_path):
    from edgeseg.bench.int8_cpu import _baseline_paths, _baseline_text
    from edgeseg.errors import EdgesegError

    old = tmp_path / "v5"
    old.mkdir()
    with pytest.raises(EdgesegError, match=r"--baseline v5=.*one \*.fp32-sim.onnx and one \*.int8.onnx"):
        _baseline_paths(_args(baseline=[f"v5={old}"]), tmp_path)
    with pytest.raises(EdgesegError, match=r"--baseline needs --processes > 0"):
        _baseline_paths(_args(baseline=[f"v5={old}"], processes=0), tmp_path)
    runs = [{"fp32": 10.0, "u8s8": 6.0, "v5 fp32": 9.0, "v5 int8": 7.2}, {"fp32": 12.0, "u8s8": 6.0, "v5 fp32": 9.0, "v5 int8": 9.0}]
    text = _baseline_text({"v5 fp32": "a", "v5 int8": "b"}, runs, "u8s8")
    assert "| this run (fp32, u8s8) | 11.00 | 6.00 | 0.55 | 1.00 |" in text  # ratios per process, then the median
    assert "| v5 | 9.00 | 8.10 | 0.90 | 1.35 |" in text


def test_the_command_line_names_the_flags_that_shape_the_section(tmp_path):
    from edgeseg.bench.int8_cpu import _markdown

    model = tmp_path / "m.onnx"
    model.write_bytes(b"x" * 2048)
    paths, cpu, dice = {"fp32": model, "u8s8": model}, {"fp32": 10.0, "u8s8": 9.0}, {"fp32": 0.9, "u8s8": 0.9}
    text = _markdown(_args(backbones=[], processes=5, process_variants=["s8s8"]), paths, dice, cpu, cpu, {}, {}, "u8s8")
    assert "`edgeseg bench int8-cpu --calibration-slices 64 --repeats 3 --backbones --processes 5 --process-variants s8s8`" in text
    plain = _markdown(_args(processes=0), paths, dice, cpu, cpu, {}, {}, "u8s8")
    assert "`edgeseg bench int8-cpu --calibration-slices 64 --repeats 3`" in plain
