"""The one export run: checkpoint (trained first if missing) -> FP32 ONNX -> simplified -> INT8 + FP16 -> report + card.

Everything is written into a hidden staging folder next to the destination and renamed into place at
the end; any failure (or Ctrl-C) removes the staging folder, so nothing half-written is left behind.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from edgeseg.data import load_data  # noqa: F401  (re-exported: callers and benchmarks pass its result as `data`)
from edgeseg.errors import EdgesegError
from edgeseg.export.recipe import ExportRecipe, resolve

STEPS = ("checkpoint", "data", "onnx", "simplify", "int8", "fp16", "verify", "card")


def _staging(dest: Path) -> tuple[Path, list[Path]]:
    """Create the staging folder next to `dest`; -> (staging, parent folders created for it)."""
    created, p = [], dest.parent
    while not p.exists():
        created.append(p)
        p = p.parent
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest.exists() and not dest.is_dir():
            raise EdgesegError(f"{dest}: exists and is not a folder")
        return Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".partial")), created
    except OSError as exc:
        for c in created:
            shutil.rmtree(c, ignore_errors=True)
        raise EdgesegError(f"{dest}: cannot write the output folder ({exc.strerror or exc})") from exc


def _publish(staging: Path, dest: Path) -> None:
    """The staged release folder onto `dest`, replacing an earlier folder there (edgeseg.io.publish_folder)."""
    from edgeseg.io import FolderTaken, publish_folder

    mask = os.umask(0)
    os.umask(mask)
    os.chmod(staging, 0o777 & ~mask)  # mkdtemp makes it private; publish it like any folder
    try:
        publish_folder(staging, dest, lambda p: p.is_dir() and not p.is_symlink())
    except FolderTaken:
        raise EdgesegError(f"{dest}: exists and is not a folder") from None


def _checkpoint(recipe: ExportRecipe, base: Path, staging: Path, show_progress: bool):
    """-> (model, training recipe, checkpoint dict, checkpoint path); trains when the checkpoint is missing."""
    from edgeseg.train.checkpoint import checkpoint_or_train, load_checkpoint
    from edgeseg.train.recipe import load_recipe

    src = recipe.source
    train_recipe = load_recipe(resolve(base, src.train_recipe)) if src.train_recipe else None
    ckpt_path = checkpoint_or_train(resolve(base, src.checkpoint), train_recipe, staging / "train", show_progress)
    model, trecipe, ckpt = load_checkpoint(ckpt_path)
    expected = src.model or (train_recipe.model.name if train_recipe is not None else "")
    if expected and trecipe.model.name != expected:
        raise EdgesegError(f"{ckpt_path}: checkpoint is a '{trecipe.model.name}' model, the export recipe expects '{expected}'")
    return model, trecipe, ckpt, ckpt_path


def run_export(recipe: ExportRecipe, base: str | Path = ".", show_progress: bool = True, data=None, per_step=None) -> dict:
    """Run the whole export; `base` resolves the recipe's relative paths. -> summary dict.

    `data` (from `load_data`) may be passed to reuse loaded slices (benchmarks).
    """
    from edgeseg.export.check import load_target
    from edgeseg.progress import progress

    base = Path(base)
    target = load_target(recipe.target)
    opset = recipe.opset or target.default_opset
    if opset > target.max_opset:
        raise EdgesegError(f"opset {opset} is above {target.max_opset}, the highest {target.runtime} parses")
    if recipe.out_dir:
        dest = resolve(base, recipe.out_dir)
    elif recipe.source.checkpoint:
        dest = resolve(base, recipe.source.checkpoint).parent / f"export-{recipe.target}"
    else:
        raise EdgesegError("the export recipe needs out_dir when it names no checkpoint")
    if not recipe.source.train_recipe:
        ckpt = resolve(base, recipe.source.checkpoint)
        if not ckpt.is_file():
            raise EdgesegError(f"{ckpt}: checkpoint not found")
    staging, created = _staging(dest)
    try:
        result = _run(recipe, base, target, opset, staging, show_progress, data, progress)
        _publish(staging, dest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        for c in created:
            shutil.rmtree(c, ignore_errors=True)
        raise
    result["out_dir"] = str(dest)
    result["files"] = {k: str(dest / Path(p).name) for k, p in result["files"].items()}
    return result


def _run(recipe, base, target, opset, work, show_progress, data, progress) -> dict:
    from edgeseg.export import card as card_mod
    from edgeseg.export.fp16 import to_fp16
    from edgeseg.export.quantize import calibration_slices, quantize_int8
    from edgeseg.export.simplify import simplify
    from edgeseg.export.subpixel import to_conv_transpose
    from edgeseg.export.to_onnx import build_contract, export_onnx
    from edgeseg.export.verify import write_report, verify

    model, trecipe, ckpt, ckpt_path = _checkpoint(recipe, base, work, show_progress)
    scratch = work / ".scratch"
    scratch.mkdir()
    stem = recipe.name
    files: dict[str, Path] = {}
    with progress(f"export {trecipe.model.name} -> {target.name}", len(STEPS), show_progress) as advance:
        advance(step="data")
        sets, identity, spacing = data if data is not None else load_data(trecipe)
        contract = build_contract(trecipe, ckpt["class_names"], ckpt.get("data_identity") or identity, spacing, recipe)
        scale = trecipe.model.scale
        calib = calibration_slices(sets["train"].lowres(scale), recipe.quantize.calibration_slices)
        advance(step="onnx")
        files["fp32"] = export_onnx(model, contract, work / f"{stem}.fp32.onnx", opset, recipe.dynamic_batch)  # checked
        advance(step="simplify")
        files["fp32-sim"] = work / f"{stem}.fp32-sim.onnx"
        sim_info = simplify(files["fp32"], files["fp32-sim"], calib[:4])
        sim_info["conv_transpose_files"] = list(target.ort_cpu_files)
        if target.ort_cpu_files:  # the files ORT's CPU provider runs: sub-pixel pairs as one ConvTranspose
            cpu_sim = scratch / f"{stem}.fp32-sim.ort-cpu.onnx"
            sim_info["conv_transpose_rewrites"] = to_conv_transpose(files["fp32-sim"], cpu_sim)
        advance(step="int8")
        files["int8"] = work / f"{stem}.int8.onnx"
        int8_source = cpu_sim if "int8" in target.ort_cpu_files else files["fp32-sim"]
        quant_info = quantize_int8(int8_source, files["int8"], calib, recipe.quantize, scratch)
        if target.tensorrt_calibration:  # same slices, same calibration method, for the FP32 file TensorRT parses
            from edgeseg.export.trt_calib import write_calibration

            quant_info["tensorrt_calibration"] = write_calibration(
                files["fp32-sim"], calib, stem, work, scratch / "trt", target.tensorrt_calibration, recipe.quantize.method,
                percentile=recipe.quantize.percentile)
        advance(step="fp16")
        if recipe.fp16:
            files["fp16"] = to_fp16(files["fp32-sim"], work / f"{stem}.fp16.onnx")
        if "fp32-sim" in target.ort_cpu_files:  # after the TensorRT-bound files were made from the TensorRT form
            shutil.move(cpu_sim, files["fp32-sim"])
        advance(step="verify")
        report = verify(model, files, sets["test"], scale, recipe.verify, calib, scratch, quant_info)
        report["simplify"] = sim_info
        report["checkpoint"] = os.path.relpath(ckpt_path, base)  # relative: no machine paths in reports
        write_report(report, work, f"{stem} ({trecipe.model.name} x{scale}, {target.name})")
        advance(step="card")
        card = card_mod.model_card(contract, recipe, ckpt, files, report, target, sum(p.numel() for p in model.parameters()))
        card_mod.write_card(card, work)
        advance(step="done")
    shutil.rmtree(scratch)
    return {"files": {k: str(p) for k, p in files.items()}, "report": report, "card": card}
