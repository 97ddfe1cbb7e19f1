"""One compression run: FP32 checkpoint -> scheme -> calibrate -> (fine-tune) -> Dice, storage -> ONNX + ORT Dice.

Writes <out_dir>/model.pt (state dict + recipes + the scheme's layer records, rebuilt by
`load_compressed`), metrics.json and the ONNX files. Benchmarks pass `data` and `source` to reuse
loaded slices and the loaded FP32 model.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import torch

from edgeseg.errors import EdgesegError


def load_source(recipe, show_progress: bool = True):
    """-> (FP32 model, training recipe, checkpoint dict); trains it first when missing and a train_recipe is named."""
    from edgeseg.train.checkpoint import checkpoint_or_train, load_checkpoint
    from edgeseg.train.recipe import load_recipe, with_width

    ckpt, width = Path(recipe.source.checkpoint), recipe.source.width
    train_recipe = load_recipe(recipe.source.train_recipe) if recipe.source.train_recipe and not ckpt.is_file() else None
    if train_recipe is not None:
        train_recipe = with_width(train_recipe, width)
    source = load_checkpoint(checkpoint_or_train(ckpt, train_recipe, show_progress=show_progress))
    if width and source[1].model.width != width:
        raise EdgesegError(f"{ckpt}: a width-{source[1].model.width} model, not the width {width} asked for "
                           "(name another checkpoint, or none, to train that width)")
    return source


def input_shape(train_recipe) -> tuple[int, int, int, int]:
    h, w = train_recipe.data.slices.canvas
    return (1, 1, h // train_recipe.model.scale, w // train_recipe.model.scale)


def calibration_batches(train_set, scale: int, count: int, batch_size: int) -> list[torch.Tensor]:
    x = train_set.lowres(scale)[:, None]
    idx = np.linspace(0, len(x) - 1, num=min(len(x), count * batch_size)).round().astype(int)
    return [torch.from_numpy(np.ascontiguousarray(x[idx[i: i + batch_size]])) for i in range(0, len(idx), batch_size)]


def summary(model, shape) -> dict:
    from edgeseg.compress.memory import storage
    from edgeseg.models.complexity import count_macs, count_parameters

    return {"parameters": count_parameters(model), "macs": count_macs(model, shape), "storage": storage(model)}


def compress(recipe, show_progress: bool = True, data=None, source=None, out_dir: str | Path | None = None) -> dict:
    """Run one compression recipe; -> metrics dict (also written to <out_dir>/metrics.json)."""
    from edgeseg.compress.finetune import finetune
    from edgeseg.compress.memory import fp32_storage
    from edgeseg.export.pipeline import load_data
    from edgeseg.train.predict import evaluate_model

    fp32, trecipe, ckpt = source if source is not None else load_source(recipe, show_progress)
    sets, identity, spacing = data if data is not None else load_data(trecipe)
    scale, shape = trecipe.model.scale, input_shape(trecipe)
    out = Path(out_dir or recipe.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    scheme = recipe.make_scheme()
    metrics = {"scheme": recipe.scheme, "label": scheme.label(), "fp32": {**summary(fp32, shape), "storage": fp32_storage(fp32),
               "test_dice": evaluate_model(fp32, sets["test"], scale)["mean_foreground_dice"]}, "seed": recipe.finetune.seed}
    if recipe.scratch.enabled:  # the compressed architecture trained from random weights, not from the checkpoint
        from edgeseg.compress.scratch import scratch_recipe, train_scratch

        trecipe = scratch_recipe(trecipe, recipe.scratch.width, recipe.scratch.scale, recipe.scratch.options)
        scale, shape = trecipe.model.scale, input_shape(trecipe)
        model, records, metrics["scratch"] = train_scratch(trecipe, scheme, sets, recipe.scratch, recipe.finetune, shape,
                                                           show_progress, scheme.label())
        metrics.update(layers=records, post_training_test_dice=None)
    else:
        model = copy.deepcopy(fp32).eval()
        records = scheme.apply(model, shape)
        calib = calibration_batches(sets["train"], scale, recipe.finetune.calibration_batches, recipe.finetune.batch_size)
        scheme.calibrate(model, calib)
        metrics.update(layers=records, post_training_test_dice=evaluate_model(model, sets["test"], scale)["mean_foreground_dice"])
    if recipe.finetune.epochs > 0 and not recipe.scratch.enabled:
        metrics["finetune"] = finetune(model, scheme, sets, scale, recipe.finetune, show_progress, scheme.label())
    if hasattr(scheme, "after_finetune") and not recipe.scratch.enabled:  # e.g. TernaryNet: BN statistics for the hard activations
        metrics["test_dice_before_bn_reestimate"] = evaluate_model(model, sets["test"], scale)["mean_foreground_dice"]
        train_x = sets["train"].lowres(scale)[:, None]
        scheme.after_finetune(model, [torch.from_numpy(train_x[i: i + 8].copy()) for i in range(0, len(train_x), 8)])
    test = evaluate_model(model, sets["test"], scale)
    metrics.update(summary(model, shape))
    metrics["test"] = test
    metrics["test_dice"] = test["mean_foreground_dice"]
    payload = {"state_dict": model.state_dict(), "compress_recipe": recipe.to_dict(), "recipe": trecipe.to_dict(),
               "class_names": list(ckpt["class_names"]), "data_identity": ckpt.get("data_identity", identity), "records": records}
    torch.save(payload, out / "model.pt")
    if recipe.export.onnx:
        from edgeseg.export.to_onnx import build_contract

        contract = build_contract(trecipe, ckpt["class_names"], ckpt.get("data_identity") or identity, spacing)
        metrics["onnx"] = export_and_check(model, scheme, contract, sets, scale, out, recipe.export)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return metrics


def export_and_check(model, scheme, contract, sets, scale: int, out: Path, cfg) -> dict:
    """Export per the scheme's export kind; Dice of each ONNX file in ORT vs the PyTorch model."""
    from edgeseg.compress.export_compressed import export_qdq, int4_weights, ort_dice
    from edgeseg.train.predict import evaluate_model

    torch_dice = evaluate_model(model, sets["test"], scale)["mean_foreground_dice"]
    files: dict[str, Path] = {}
    if scheme.export_kind == "qdq":
        files["qdq"] = export_qdq(model, contract, out / "model.qdq.onnx", cfg.opset, precision=scheme.label())
        if cfg.int4:
            int4_weights(files["qdq"], out / "model.qdq-int4.onnx")
            files["qdq-int4"] = out / "model.qdq-int4.onnx"
    else:
        files.update(export_float_int8(model, contract, sets, scale, out, cfg.opset))
    result = {"torch_test_dice": torch_dice, "tolerance": cfg.dice_tolerance, "files": {}}
    for key, path in files.items():
        d = ort_dice(path, sets["test"], scale)
        # the INT8 copy of a float model is a further quantization step, not a parity check
        limit = 0.01 if key == "int8" else cfg.dice_tolerance
        result["files"][key] = {"file": path.name, "kb": path.stat().st_size / 1024, "ort_test_dice": d,
                                "abs_diff": abs(d - torch_dice), "ok": abs(d - torch_dice) <= limit}
    return result


def export_float_int8(model, contract, sets, scale: int, out: Path, opset: int) -> dict:
    """Float model -> FP32 ONNX -> onnxsim -> INT8 QDQ with the export package's own functions."""
    import os
    import shutil
    import tempfile

    from edgeseg.export.quantize import calibration_slices, quantize_int8
    from edgeseg.export.recipe import QuantizeConfig
    from edgeseg.export.simplify import simplify
    from edgeseg.export.to_onnx import export_onnx

    out.mkdir(parents=True, exist_ok=True)
    # a scratch folder of its own: two runs into one folder must not share (or delete) each other's files
    scratch = Path(tempfile.mkdtemp(prefix=".scratch-", dir=out))
    try:
        calib = calibration_slices(sets["train"].lowres(scale), 32)
        fp32 = export_onnx(model, contract, scratch / "model.fp32-raw.onnx", opset)
        simplify(fp32, scratch / "model.fp32.onnx", calib[:4])
        quantize_int8(scratch / "model.fp32.onnx", scratch / "model.int8.onnx", calib, QuantizeConfig(), scratch)
        for name in ("model.fp32.onnx", "model.int8.onnx"):  # complete files only: renamed into place at the end
            os.replace(scratch / name, out / name)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return {"fp32": out / "model.fp32.onnx", "int8": out / "model.int8.onnx"}


def load_compressed(path: str | Path):
    """model.pt written by `compress` -> (compressed model in eval mode, payload)."""
    from edgeseg.compress.recipe import compress_recipe_from_dict
    from edgeseg.train.checkpoint import build_model
    from edgeseg.train.recipe import recipe_from_dict

    payload = torch.load(path, map_location="cpu", weights_only=True)
    trecipe = recipe_from_dict(payload["recipe"], f"{path} recipe")
    model = build_model(trecipe, len(payload["class_names"])).eval()
    compress_recipe_from_dict(payload["compress_recipe"], f"{path}").make_scheme().rebuild(model, input_shape(trecipe), payload["records"])
    model.load_state_dict(payload["state_dict"])
    return model.eval(), payload
