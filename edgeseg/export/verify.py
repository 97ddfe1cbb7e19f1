"""The verification report: parity, Dice of every variant on the test split, sizes, CPU latency, per-layer error.

Targets (from the issue): FP32 ONNX vs PyTorch max |diff| <= 1e-4 on real slices; INT8 loses <= 0.5 Dice
points (mean foreground, test split) vs PyTorch FP32; INT8 file <= 0.30 of FP32; latency is measured, not
targeted. Everything is also written as Markdown next to the models.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from edgeseg.export.simplify import ort_session, run_onnx
from edgeseg.metrics import dice_per_class

LABELS = {"fp32": "FP32 ONNX (raw)", "fp32-sim": "FP32 ONNX (simplified)", "fp16": "FP16 ONNX", "int8": "INT8 QDQ ONNX"}


def latency_ms(path, x: np.ndarray, runs: int, threads: int = 1) -> float:
    """Median wall time of one (1, 1, h, w) inference, ORT CPU, `threads` intra-op threads, after 3 warm-ups."""
    from edgeseg.ort import interleaved_medians

    session = ort_session(path, threads=threads)
    wall, _ = interleaved_medians({"m": session}, {"m": {session.get_inputs()[0].name: x}}, runs)
    return float(wall["m"])


def _dice(pred, label, class_names) -> dict:
    d = dice_per_class(pred, label, len(class_names))
    return {"dice": {n: float(v) for n, v in zip(class_names, d)}, "mean_foreground_dice": float(d[1:].mean())}


def verify(torch_model, files: dict, test_set, scale: int, config, calib: np.ndarray, work_dir, quant_info=None) -> dict:
    """files: {'fp32': path, 'fp32-sim': path, 'int8': path, 'fp16': path}; config: recipe.VerifyConfig."""
    import torch

    from edgeseg.export.quantize import calibration_slices, per_layer_error
    from edgeseg.train.predict import predict_labels

    lowres = test_set.lowres(scale)
    x_all = np.ascontiguousarray(lowres[:, None], dtype=np.float32)
    x_par = calibration_slices(lowres, config.parity_slices)
    with torch.no_grad():
        ref = torch_model.eval()(torch.from_numpy(x_par)).numpy()
    parity = {k: float(np.abs(run_onnx(ort_session(files[k]), x_par) - ref).max()) for k in ("fp32", "fp32-sim") if k in files}
    variants = {"pytorch": _dice(predict_labels(torch_model, lowres), test_set.label, test_set.class_names)}
    for key, path in files.items():
        pred = run_onnx(ort_session(path, threads=2), x_all).argmax(1).astype(np.uint8)
        variants[key] = _dice(pred, test_set.label, test_set.class_names)
    base = variants["pytorch"]["mean_foreground_dice"]
    for v in variants.values():
        v["dice_points_lost"] = 100.0 * (base - v["mean_foreground_dice"])
    sizes = {k: Path(p).stat().st_size for k, p in files.items()}
    latency = {k: latency_ms(p, x_all[:1], config.latency_runs) for k, p in files.items()}
    report = {
        "test_slices": int(len(lowres)),
        "parity": {"max_abs_diff_vs_pytorch": parity, "slices": int(len(x_par)), "target": config.parity_atol,
                   "pass": all(v <= config.parity_atol for v in parity.values())},
        "dice": variants,
        "size_bytes": sizes,
        "latency_ms_median_1_thread": latency,
        "latency_runs": config.latency_runs,
    }
    if "int8" in files:
        lost = variants["int8"]["dice_points_lost"]
        report["int8"] = {
            "quantization": quant_info or {},
            "dice_points_lost": lost, "dice_target_points": 100.0 * config.int8_dice_tolerance,
            "dice_pass": lost <= 100.0 * config.int8_dice_tolerance,
            "size_ratio_vs_fp32": sizes["int8"] / sizes["fp32-sim"], "size_ratio_target": config.size_ratio_target,
            "size_pass": sizes["int8"] / sizes["fp32-sim"] <= config.size_ratio_target,
            "latency_ratio_vs_fp32": latency["int8"] / latency["fp32-sim"],
        }
        if not report["int8"]["dice_pass"] and config.per_layer_on_failure:
            report["int8"]["per_layer_error"] = per_layer_error(files["fp32-sim"], files["int8"], calib[:8], work_dir)
    if "fp16" in files:
        report["fp16"] = {"size_ratio_vs_fp32": sizes["fp16"] / sizes["fp32-sim"],
                          "latency_ratio_vs_fp32": latency["fp16"] / latency["fp32-sim"]}
    return report


def to_markdown(report: dict, title: str) -> str:
    par = report["parity"]
    lines = [f"# Verification: {title}", "",
             f"Test split: {report['test_slices']} real slices. Dice = mean foreground Dice at full resolution, pooled over slices.", "",
             f"Parity FP32 ONNX vs PyTorch on {par['slices']} slices: "
             + ", ".join(f"{LABELS[k]} max |diff| {v:.2e}" for k, v in par["max_abs_diff_vs_pytorch"].items())
             + f" (target <= {par['target']:.0e}: {'pass' if par['pass'] else 'FAIL'})", "",
             "| variant | mean fg Dice | Dice points lost | size (KiB) | CPU latency, 1 thread (ms, median) |",
             "|---|---:|---:|---:|---:|"]
    for key, d in report["dice"].items():
        size = f"{report['size_bytes'][key] / 1024:.1f}" if key in report["size_bytes"] else "-"
        lat = f"{report['latency_ms_median_1_thread'][key]:.2f}" if key in report["latency_ms_median_1_thread"] else "-"
        lines.append(f"| {LABELS.get(key, 'PyTorch FP32')} | {d['mean_foreground_dice']:.4f} | {d['dice_points_lost']:+.2f} | {size} | {lat} |")
    q = report.get("int8")
    if q:
        info = q["quantization"]
        lines += ["", f"INT8: {info.get('method', '?')} calibration on {info.get('calibration_slices', '?')} training slices, "
                  f"{'per-channel' if info.get('per_channel') else 'per-tensor'} weights, {info.get('activation_type', '?')} activations, "
                  f"kept in float: {', '.join(info.get('kept_float') or []) or 'none'}.",
                  f"- Dice points lost {q['dice_points_lost']:.2f} (target <= {q['dice_target_points']:.1f}): {'pass' if q['dice_pass'] else 'FAIL'}",
                  f"- size ratio INT8/FP32 {q['size_ratio_vs_fp32']:.3f} (target <= {q['size_ratio_target']:.2f}): {'pass' if q['size_pass'] else 'FAIL'}",
                  f"- CPU latency ratio INT8/FP32 {q['latency_ratio_vs_fp32']:.2f} (measured on the export machine, 1 thread)"]
        trt = info.get("tensorrt_calibration")
        if trt:
            lines.append(f"- TensorRT INT8 calibration of {trt['model']}: {trt['tensors']} tensors, caches "
                         + ", ".join(f"{f} (TensorRT {v})" for v, f in trt["tensorrt_caches"].items())
                         + f"; ONNX Runtime TensorRT-EP table {trt['ort_tensorrt_table'][0]}")
        if "per_layer_error" in q:
            lines += ["", "Worst tensors (SQNR dB, higher is better):", ""]
            lines += [f"- {a['tensor']}: {a['sqnr_vs_float_model']:.1f} dB" for a in q["per_layer_error"]["worst_activations"]]
    return "\n".join(lines) + "\n"


def write_report(report: dict, folder: Path, title: str) -> None:
    (folder / "verification.json").write_text(json.dumps(report, indent=2))
    (folder / "verification.md").write_text(to_markdown(report, title))
