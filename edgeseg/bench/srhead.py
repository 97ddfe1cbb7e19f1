"""SR heads vs the low-resolution baselines vs full-resolution input, per backbone (the J-Net comparison).

For every backbone, scale, input sampling (area-averaged or nearest-sampled) and seed, the variants of
`srhead_variants.VARIANTS` are trained with the same base recipe: the paper's baseline (trained on LR
labels), bilinear upsampling trained on the HR label, the pixelshuffle head, the J-Net head with and
without deep supervision, the full-resolution upper bound. Dice: test split at full resolution, pooled
over slices, mean over seeds. Latency: PyTorch and ONNX Runtime, one thread, batch 1, median over repeats
interleaved across architectures in one run; and the simulated Jetson Nano latency (TensorRT FP16,
`edgeseg simulate`) of the simplified opset-13 export. Checkpoints are cached under --out (one folder per cell),
so the table can be rebuilt (and timed again) without retraining.
"""
from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

from edgeseg.bench.srhead_variants import DEFAULT_VARIANTS, VARIANTS


def add_arguments(p) -> None:
    p.add_argument("--models", nargs="*", help="backbones (default: all registered)")
    p.add_argument("--scales", nargs="*", type=int, default=[2, 4, 8])
    p.add_argument("--variants", nargs="*", default=list(DEFAULT_VARIANTS), choices=sorted(k for k, v in VARIANTS.items() if not v.derived),
                   help=f"variant keys (default: {' '.join(DEFAULT_VARIANTS)})")
    p.add_argument("--inputs", nargs="*", default=["area"], choices=["area", "nearest"],
                   help="low-res input sampling(s): area-averaged (edgeseg) or nearest-sampled (J-Net)")
    p.add_argument("--seeds", nargs="*", type=int, default=[0])
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--recipe", default="recipes/bench-srhead.toml", help="base recipe (model, head, supervision, seed are overridden)")
    p.add_argument("--out", default="runs/bench-srhead")
    p.add_argument("--retrain", action="store_true", help="ignore cached checkpoints")
    p.add_argument("--cached-only", action="store_true",
                   help="train nothing: tabulate the cells already under --out, listing the ones missing")
    p.add_argument("--repeats", type=int, default=30, help="timed forward passes per architecture")
    p.add_argument("--no-full-res", nargs="*", default=[], metavar="MODEL",
                   help="skip variant d for these backbones (the costliest training; to fit a time budget)")
    p.add_argument("--docs", default="docs/BENCHMARKS.md")
    p.add_argument("--section", default="srhead", help="section of --docs to write (e.g. srhead-seeds for a seed study)")
    p.add_argument("--plot", default="docs/srhead.png")


def _cells(args, models):
    """(model, sampling, seed, variant, scale) in priority order: the largest scale first (J-Net's x8), then
    backbone, input sampling, seed, variant; the full-resolution variant last."""
    for scale in sorted(args.scales, reverse=True):
        for name in models:
            for sampling in args.inputs:
                for seed in args.seeds:
                    for key in args.variants:
                        if not VARIANTS[key].full_res:
                            yield name, sampling, seed, key, scale
    for name in models:  # scale 1: the sampling does not matter, trained once per backbone and seed
        if name not in args.no_full_res:
            for seed in args.seeds:
                for key in args.variants:
                    if VARIANTS[key].full_res:
                        yield name, args.inputs[0], seed, key, 1


def _cached(recipe, out: Path) -> bool:
    """A finished cell whose checkpoint was trained with exactly this recipe (defaults filled in, out_dir aside)."""
    import torch

    from edgeseg.train.recipe import recipe_from_dict

    if not ((out / "metrics.json").is_file() and (out / "model.pt").is_file()):
        return False
    stored = recipe_from_dict(torch.load(out / "model.pt", map_location="cpu", weights_only=True)["recipe"]).to_dict()
    wanted = recipe.to_dict()
    stored["train"].pop("out_dir"), wanted["train"].pop("out_dir")
    return stored == wanted


def _train_or_load(recipe, splits, out: Path, retrain: bool) -> dict:
    from edgeseg.train.trainer import train

    if not retrain and _cached(recipe, out):
        return json.loads((out / "metrics.json").read_text())
    return train(recipe, out_dir=out, show_progress=True, splits=splits)


def _lr_mask_dice(model, test_set, scale: int) -> float:
    """Mean foreground Dice of the 1x argmax mask repeated scale x scale (nearest upsampling of the LR mask)."""
    import numpy as np
    import torch

    from edgeseg.metrics import dice_per_class

    with torch.no_grad():
        lr = model.eval().backbone_logits(torch.from_numpy(test_set.lowres(scale)[:, None])).argmax(1).numpy()
    pred = lr.repeat(scale, axis=1).repeat(scale, axis=2).astype(np.uint8)
    return float(dice_per_class(pred, test_set.label, len(test_set.class_names))[1:].mean())


def _onnx(model, x):
    """Export at opset 13 and simplify (what `edgeseg export` ships) -> (ORT 1-thread call, simulated Nano ms)."""
    import io

    import onnx
    import onnxruntime as ort
    import onnxsim
    import torch

    from edgeseg.latency.predict import simulate

    f = io.BytesIO()
    try:
        torch.onnx.export(model, x, f, opset_version=13, dynamo=False, input_names=["x"])
    except TypeError:  # torch without the dynamo switch
        torch.onnx.export(model, x, f, opset_version=13, input_names=["x"])
    proto, ok = onnxsim.simplify(onnx.load_from_string(f.getvalue()))
    if not ok:
        raise RuntimeError(f"onnxsim could not validate the simplified {model.name}")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    session = ort.InferenceSession(proto.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    feed = {"x": x.numpy()}
    return (lambda: session.run(None, feed)), simulate(proto, "jetson-nano").total_ms


def _time_architectures(models: dict, repeats: int) -> dict:
    """{key: (model, x)} -> {key: (torch ms, ORT ms, simulated Nano ms)}; measured ones are medians of
    interleaved single-thread runs."""
    import torch

    torch.set_num_threads(1)
    calls, nano = {}, {}
    with torch.no_grad():
        for key, (model, x) in models.items():
            calls[(key, "torch")] = (lambda m=model, x=x: m(x))
            calls[(key, "ort")], nano[key] = _onnx(model, x)
        for _ in range(3):  # warm-up
            for call in calls.values():
                call()
        times = {k: [] for k in calls}
        for _ in range(repeats):
            for k, call in calls.items():
                t0 = time.perf_counter()
                call()
                times[k].append((time.perf_counter() - t0) * 1e3)
    return {key: (statistics.median(times[(key, "torch")]), statistics.median(times[(key, "ort")]), nano[key]) for key in models}


def run(args) -> int:
    import warnings
    from dataclasses import replace

    import torch

    from edgeseg.bench.srhead_report import markdown, plot
    from edgeseg.bench.srhead_variants import recipe_for, with_sampling
    from edgeseg.bench.report import write_section
    from edgeseg.models import list_models
    from edgeseg.models.complexity import count_macs, count_parameters
    from edgeseg.train.checkpoint import load_checkpoint
    from edgeseg.train.recipe import load_recipe
    from edgeseg.train.trainer import load_splits

    base = load_recipe(args.recipe)
    models = args.models or list_models()
    area = load_splits(base)
    splits = {s: with_sampling(area, s) for s in args.inputs}
    h, w = base.data.slices.canvas
    cells, archs, missing = [], {}, []
    for name, sampling, seed, key, scale in _cells(args, models):
        recipe = recipe_for(replace(base, train=replace(base.train, epochs=args.epochs)), name, scale, key, seed)
        out = Path(args.out) / f"{name}-s{scale}-{key}-{sampling}-seed{seed}-e{args.epochs}"
        if args.cached_only and not _cached(recipe, out):
            missing.append(out.name)
            continue
        metrics = _train_or_load(recipe, splits[sampling], out, args.retrain)
        arch = (name, scale, VARIANTS[key].head)
        model = None
        if arch not in archs or key == "lr":
            model, _, _ = load_checkpoint(out / "model.pt")
        if arch not in archs:
            shape = (1, 1, h // scale, w // scale)
            archs[arch] = {"model": model, "x": torch.randn(shape), "params": count_parameters(model),
                           "head_params": model.head_parameters(), "macs": count_macs(model, shape)}
        cells.append({"model": name, "scale": scale, "variant": key, "inputs": sampling, "seed": seed,
                      "dice": metrics["test"]["mean_foreground_dice"], "dice_per_class": metrics["test"]["dice"],
                      "best_epoch": metrics["best_epoch"], "supervision": metrics.get("supervision", "final"),
                      "arch": list(arch)})
        for derived, v in VARIANTS.items():
            if v.derived == key:  # evaluated from this checkpoint, not trained
                cells.append({**cells[-1], "variant": derived, "dice": _lr_mask_dice(model, splits[sampling][0]["test"], scale),
                              "dice_per_class": {}})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notes
        latency = _time_architectures({k: (v["model"], v["x"]) for k, v in archs.items()}, args.repeats)
    arch_rows = [{"arch": list(k), "params": v["params"], "head_params": v["head_params"], "macs": v["macs"],
                  "torch_ms": latency[k][0], "ort_ms": latency[k][1], "nano_ms": latency[k][2]} for k, v in archs.items()]
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "results.json").write_text(json.dumps({"cells": cells, "architectures": arch_rows}, indent=2))
    md = markdown(cells, arch_rows, args, missing)
    write_section(args.section, md, args.docs)
    plot(cells, args.plot)
    print(md)
    return 0
