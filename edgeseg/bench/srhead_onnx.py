"""Dice through the exported ONNX for SR-head benchmark cells, by `edgeseg export`'s own pipeline.

Each cell's checkpoint goes through `edgeseg.export.pipeline.run_export` (opset 13, onnxsim, INT8 QDQ,
FP16, the verification report) with the target's defaults, exactly as `edgeseg export CELL/model.pt
--target jetson-nano` would, except that the slices are handed over so that the cell's own low-res
sampling (area or nearest) is the one evaluated. The verification report's Dice (test split, full
resolution) is what is read back; nothing is evaluated here. An export newer than its checkpoint is reused.
"""
from __future__ import annotations

import json
from pathlib import Path

TARGET = "jetson-nano"


def _report(cell: Path, data, target: str) -> dict:
    from edgeseg.export.pipeline import run_export
    from edgeseg.export.recipe import recipe_for_checkpoint

    dest = cell / f"export-{target}"
    done = dest / "verification.json"
    if done.is_file() and done.stat().st_mtime >= (cell / "model.pt").stat().st_mtime:
        return json.loads(done.read_text())
    recipe = recipe_for_checkpoint(str(cell / "model.pt"), target, out_dir=str(dest))
    return run_export(recipe, data=data, show_progress=False)["report"]


def onnx_dice(cell: str | Path, data, target: str = TARGET) -> dict:
    """-> {"pytorch", "onnx" (simplified FP32 file), "int8", "fp16": mean foreground Dice, "parity": max |logit diff|}.

    `data` = (slice sets of the cell's sampling, data identity, volume spacing), as `pipeline.load_data` returns."""
    report = _report(Path(cell), data, target)
    dice = {k: v["mean_foreground_dice"] for k, v in report["dice"].items()}
    return {"pytorch": dice["pytorch"], "onnx": dice["fp32-sim"], "int8": dice.get("int8"), "fp16": dice.get("fp16"),
            "parity": report["parity"]["max_abs_diff_vs_pytorch"].get("fp32-sim")}
