"""The model card: JSON (machine-readable) and a short Markdown, written next to the exported models."""
from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def deployment(files: dict, target, calibration: dict | None = None) -> dict:
    """Which file runs where: per backend of the target, the files `edgeseg check` finds no error in; with a
    TensorRT calibration (export/trt_calib.py) the `trt` backend also names its INT8 ways."""
    import onnx

    from edgeseg.export.check import check_model, errors

    models = {k: onnx.load(str(p)) for k, p in files.items() if k != "fp32"}  # fp32-sim is the FP32 file to deploy
    out = {name: {"runtime": b.runtime, "files": [Path(files[k]).name for k, m in models.items()
                                                  if not errors(check_model(m, target, name))]}
           for name, b in target.backends.items()}
    if calibration and "trt" in out:
        fp32 = calibration["model"]
        int8 = Path(files["int8"]).name if "int8" in files and Path(files["int8"]).name in out["trt"]["files"] else None
        caches, table = calibration["tensorrt_caches"], calibration["ort_tensorrt_table"][0]
        out["trt"]["int8"] = {
            "explicit_qdq": int8,
            "implicit_calibration_cache": {"model": fp32, "caches": caches,
                                           "example": f"trtexec --onnx={fp32} --int8 --calib={next(iter(caches.values()))}"},
            # ORT reads the table at trt_engine_cache_path / trt_int8_calibration_table_name
            "ort_tensorrt_ep": {"model": fp32, "table": calibration["ort_tensorrt_table"][0],
                                "options": {"trt_int8_enable": True, "trt_engine_cache_path": Path(table).parent.as_posix(),
                                            "trt_int8_calibration_table_name": Path(table).name,
                                            "trt_int8_use_native_calibration_table": False}},
        }
    return out


def _calibration_files(files: dict, report: dict) -> dict:
    """The TensorRT calibration cache(s) and ORT's table written next to the models, with sha256."""
    info = report.get("int8", {}).get("quantization", {}).get("tensorrt_calibration")
    if not info:
        return {}
    folder = Path(files["fp32-sim"]).parent
    names = list(info["tensorrt_caches"].values()) + list(info["ort_tensorrt_table"])
    return {n: {"bytes": (folder / n).stat().st_size, "sha256": sha256(folder / n)} for n in names}


def model_card(contract, export_recipe, ckpt: dict, files: dict, report: dict, target, parameters: int = 0) -> dict:
    metrics = ckpt.get("metrics", {})
    return {
        "name": export_recipe.name,
        "task": f"{len(contract.class_names) - 1}-class {contract.modality} {contract.sequence} segmentation "
                f"({', '.join(contract.class_names[1:])}) on {contract.plane} slices",
        "architecture": {"backbone": contract.model_name, "sr_head": contract.sr_head, "scale": contract.scale,
                         "parameters": metrics.get("parameters", parameters), "head_parameters": metrics.get("head_parameters")},
        "contract": dataclasses.asdict(contract),
        "training": {"data_identity": ckpt.get("data_identity", ""), "recipe": ckpt.get("recipe"),
                     "best_epoch": metrics.get("best_epoch"), "best_val_mean_foreground_dice": metrics.get("best_val_mean_foreground_dice"),
                     "edgeseg_version": ckpt.get("edgeseg_version", "")},
        "export": {"recipe": export_recipe.to_dict(), "recipe_hash": export_recipe.hash(), "target": target.name,
                   "runtime": target.runtime, "opset": export_recipe.opset or target.default_opset},
        "files": {k: {"file": Path(p).name, "bytes": Path(p).stat().st_size, "sha256": sha256(p)} for k, p in files.items()},
        "calibration_files": _calibration_files(files, report),
        "deploy": deployment(files, target, report.get("int8", {}).get("quantization", {}).get("tensorrt_calibration")),
        "test_dice": {k: v["mean_foreground_dice"] for k, v in report["dice"].items()},
        "intended_use": "Research and demonstration of edge deployment. Not a medical device; not for diagnosis.",
        "limitations": [
            f"Trained on {ckpt.get('data_identity', 'the data named above')}; other scanners, sequences or anatomy are out of distribution.",
            "Input must follow the preprocessing contract in the ONNX metadata (edgeseg.* keys) exactly.",
            "Bit-exact reproduction across machines is not promised; Dice within the stated tolerance is.",
        ],
    }


def card_markdown(card: dict) -> str:
    a, c = card["architecture"], card["contract"]
    lines = [
        f"# Model card: {card['name']}", "",
        f"- Task: {card['task']}",
        f"- Architecture: {a['backbone']} + {'SR head' if a['sr_head'] else 'bilinear upsampling'}, input at 1/{a['scale']} resolution, "
        f"{a['parameters']} parameters",
        f"- Input: `{c['input_name']}` {c['input_shape']} float32, {c['normalization']} (clip {c['clip_percentiles']} percentiles per "
        f"{c['normalization_scope']}), {c['lowres_method']} by {c['scale']} from a {c['hr_size']} grid at {c['pixel_spacing_mm']} mm, "
        f"{c['plane']} slices with rows/columns toward {c['in_plane_axes']}",
        f"- Output: `{c['output_name']}` full-resolution class logits; argmax over axis 1 -> labels {c['label_values']} = {c['class_names']}",
        f"- Training data: {card['training']['data_identity']}",
        f"- Export: target {card['export']['target']} ({card['export']['runtime']}), opset {card['export']['opset']}, recipe hash {card['export']['recipe_hash']}",
        "", "| file | precision | KiB | test mean fg Dice |", "|---|---|---:|---:|",
    ]
    for key, f in card["files"].items():
        lines.append(f"| {f['file']} | {key} | {f['bytes'] / 1024:.1f} | {card['test_dice'].get(key, float('nan')):.4f} |")
    if card.get("deploy"):
        lines += ["", "Which file to deploy where (`edgeseg check` finds no error):", ""]
        lines += [f"- {b} ({d['runtime']}): {', '.join(d['files']) or 'none'}" for b, d in card["deploy"].items()]
        trt = card["deploy"].get("trt", {}).get("int8")
        if trt:
            imp, ep = trt["implicit_calibration_cache"], trt["ort_tensorrt_ep"]
            caches = ", ".join(f"{f} (TensorRT {v})" for v, f in imp["caches"].items())
            lines += ["", "TensorRT INT8 on this board, three ways:", "",
                      f"- explicit quantization: {trt['explicit_qdq'] or 'none (the INT8 file fails the check above)'}",
                      f"- implicit quantization: {imp['model']} with the calibration cache {caches}, e.g. `{imp['example']}`",
                      f"- ONNX Runtime's TensorRT execution provider: {ep['model']} with "
                      "provider options " + ", ".join(f"`{k}={v}`" for k, v in ep["options"].items()) + " (paths relative to the export folder)"]
    lines += ["", f"Intended use: {card['intended_use']}", "", "Limitations:", ""] + [f"- {x}" for x in card["limitations"]]
    return "\n".join(lines) + "\n"


def write_card(card: dict, folder: Path) -> None:
    (folder / "model_card.json").write_text(json.dumps(card, indent=2))
    (folder / "model_card.md").write_text(card_markdown(card))
