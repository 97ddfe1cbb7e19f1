"""TernaryNet vs binary vs FP32 trained from scratch, same width, placement and protocol, over seeds.

Every arm is the [scratch] protocol of recipes/compress-ternarynet.toml (width, input scale, epochs,
Adam + decay, BN freeze / recalibration on validation) with only the scheme name and the seed changed;
-> one row per (arm, seed) and the mean +- sd summary with the issue's three verdicts.
"""
from __future__ import annotations

import dataclasses
import statistics

from edgeseg.bench.report import mean_sd

ARMS = (("float", "FP32"), ("ternarynet", "ternary"), ("binarynet", "binary"))


def arm_recipe(base, name: str, seed: int, epochs: int | None, width: int | None, scale: int | None):
    """The arm's recipe; another `epochs` stretches the same lr schedule over them (lr_decay ** (base epochs / epochs)
    per epoch, so the last epoch's lr is the recipe's) rather than running the extra epochs at a vanishing lr."""
    changes = {k: v for k, v in (("epochs", epochs), ("width", width), ("scale", scale)) if v is not None}
    if epochs is not None and epochs != base.scratch.epochs:
        changes["lr_decay"] = base.scratch.lr_decay ** (base.scratch.epochs / epochs)
    scratch = dataclasses.replace(base.scratch, enabled=True, **changes)
    scheme = dict(base.scheme, name=name) if name != "float" else {"name": "float"}
    return dataclasses.replace(base, scheme=scheme, scratch=scratch,
                               finetune=dataclasses.replace(base.finetune, seed=seed),
                               export=dataclasses.replace(base.export, onnx=name != "float", int4=False))


def level_shares(model_path, test_set, scale: int) -> dict:
    """Mean share of -1 / 0 / +1 over the activation layers on the test slices."""
    import torch

    from edgeseg.compress.pipeline import load_compressed
    from edgeseg.compress.ternarynet import activation_levels

    model, _ = load_compressed(model_path)
    seen = activation_levels(model, torch.from_numpy(test_set.lowres(scale)[:, None].copy()))
    out = {}
    for v in (-1.0, 0.0, 1.0):
        out[f"{v:+g}"] = statistics.fmean(s.get(v, 0.0) for s in seen.values()) if seen else 0.0
    return out


def run_arm(base, name: str, seed: int, args, data, source, out) -> dict:
    from edgeseg.compress.pipeline import compress

    recipe = arm_recipe(base, name, seed, args.ternary_epochs, args.ternary_width, args.ternary_scale)
    folder = out / f"scratch-{name}-seed{seed}"
    m = compress(recipe, data=data, source=source, out_dir=folder)
    s = m["scratch"]
    qdq = m.get("onnx", {}).get("files", {}).get("qdq")
    row = {"arm": name, "seed": seed, "dice": m["test_dice"], "val": s["best_val"], "best_epoch": s["best_epoch"],
           "selected": s["selected"], "kb": m["storage"]["kb"], "params": m["parameters"], "macs": m["macs"],
           "width": s["width"], "scale": s["scale"], "epochs": recipe.scratch.epochs, "seconds": s["seconds"],
           "ort_dice": qdq["ort_test_dice"] if qdq else None, "ort_diff": qdq["abs_diff"] if qdq else None}
    if name != "float":
        row["levels"] = level_shares(folder / "model.pt", data[0]["test"], s["scale"])
    return row


def summarise(rows: list[dict]) -> dict:
    """Per arm mean/sd of test Dice and the verdicts: ternary within 3 points of FP32, ternary - binary > the
    larger seed sd, FP32 / ternary weight memory >= 10x."""
    arms = {}
    for name, label in ARMS:
        rs = [r for r in rows if r["arm"] == name]
        if rs:
            mean, sd = mean_sd(r["dice"] for r in rs)
            arms[name] = {"label": label, "mean": mean, "sd": sd, "n": len(rs), "kb": rs[0]["kb"], "params": rs[0]["params"]}
    out = {"arms": arms}
    if {"float", "ternarynet", "binarynet"} <= set(arms):
        f, t, b = arms["float"], arms["ternarynet"], arms["binarynet"]
        gap_fp, gap_bin = 100 * (t["mean"] - f["mean"]), 100 * (t["mean"] - b["mean"])
        sd = 100 * max(t["sd"], b["sd"])
        out.update(gap_fp32_points=gap_fp, gap_binary_points=gap_bin, max_sd_points=sd,
                   within_3_points=gap_fp >= -3.0, beats_binary=gap_bin > sd, memory_ratio=f["kb"] / t["kb"],
                   memory_ok=f["kb"] / t["kb"] >= 10.0)
    return out
