"""The model card: JSON (machine-readable) and a short Markdown, written next to the exported models."""
from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def deployment(files: dict, target) -> dict:
    """Which file runs where: per backend of the target, the files `edgeseg check` finds no error in."""
    import onnx

    from edgeseg.export.check import check_model, errors

    models = {k: onnx.load(str(p)) for k, p in files.items() if k != "fp32"}  # fp32-sim is the FP32 file to deploy
    return {name: {"runtime": b.runtime, "files": [Path(files[k]).name for k, m in models.items()
                                                   if not errors(check_model(m, target, name))]}
            for name, b in target.backends.items()}


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
        "deploy": deployment(files, target),
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
    lines += ["", f"Intended use: {card['intended_use']}", "", "Limitations:", ""] + [f"- {x}" for x in card["limitations"]]
    return "\n".join(lines) + "\n"


def write_card(card: dict, folder: Path) -> None:
    (folder / "model_card.json").write_text(json.dumps(card, indent=2))
    (folder / "model_card.md").write_text(card_markdown(card))
