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
    p.add_argument("--threads", type=int, default=1, help="torch threads for training (a cached cell trained with another count is reused)")
    p.add_argument("--recipe", default="recipes/bench-srhead.toml", help="base recipe (model, head, supervision, seed are overridden)")
    p.add_argument("--out", default="runs/bench-srhead")
    p.add_argument("--retrain", action="store_true", help="ignore cached checkpoints")
    p.add_argument("--cached-only", action="store_true",
                   help="train nothing: tabulate the cells already under --out, listing the ones missing")
    p.add_argument("--repeats", type=int, default=30, help="timed forward passes per architecture")
    p.add_argument("--no-full-res", nargs="*", default=[], metavar="MODEL",
                   help="skip variant d for these backbones (the costliest training; to fit a time budget)")
    p.add_argument("--onnx-dice", nargs="*", default=["lr", "a", "c"], metavar="VARIANT",
                   help="variants whose cells are exported by `edgeseg export`'s pipeline and evaluated as ONNX on the "
                        "test split (default: lr a c; none when given without values)")
    p.add_argument("--onnx-models", nargs="*", default=None, metavar="MODEL",
                   help="backbones whose --onnx-dice cells are exported (default: every backbone of --models)")
    p.add_argument("--robustness", nargs="*", default=[], metavar="VARIANT",
                   help="variants whose exported cells (first seed, --onnx-models) also segment the acquisition variants of "
                        "`edgeseg bench robustness` through the runner (axial mni152 recipes only)")
    p.add_argument("--docs", default="docs/BENCHMARKS.md")
    p.add_argument("--section", default="srhead", help="section of --docs to write (e.g. srhead-seeds for a seed study)")
    p.add_argument("--plot", default="docs/srhead.png")
    p.add_argument("--title", default="", help="heading of the section (default: the SR-head benchmark's)")


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
    """A finished cell whose checkpoint was trained with exactly this recipe (defaults filled in; out_dir and the
    thread count aside: threads change only the order of floating-point sums)."""
    import torch

    from edgeseg.train.recipe import recipe_from_dict

    if not ((out / "metrics.json").is_file() and (out / "model.pt").is_file()):
        return False
    stored = recipe_from_dict(torch.load(out / "model.pt", map_location="cpu", weights_only=True)["recipe"]).to_dict()
    wanted = recipe.to_dict()
    for key in ("out_dir", "threads"):
        stored["train"].pop(key), wanted["train"].pop(key)
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
    """Export at opset 13 and simplify (what `edgeseg export` ships) -> (ORT 1-thread session, simulated Nano ms)."""
    import io

    import onnx
    import onnxsim
    import torch

    from edgeseg.latency.predict import simulate
    from edgeseg.ort import cpu_session

    f = io.BytesIO()
    torch.onnx.export(model, x, f, opset_version=13, dynamo=False, input_names=["x"])
    proto, ok = onnxsim.simplify(onnx.load_from_string(f.getvalue()))
    if not ok:
        raise RuntimeError(f"onnxsim could not validate the simplified {model.name}")
    return cpu_session(proto.SerializeToString(), threads=1), simulate(proto, "jetson-nano").total_ms


class _TorchRun:
    """A torch model behind the ONNX Runtime `run(None, feed)` call, so one interleaved timer times both."""

    def __init__(self, model):
        self.model = model

    def run(self, _, feed):
        import torch

        with torch.no_grad():
            return self.model(torch.from_numpy(feed["x"]))


def _time_architectures(models: dict, repeats: int) -> dict:
    """{key: (model, x)} -> {key: (torch ms, ORT ms, simulated Nano ms)}; measured ones are medians of
    single-thread runs interleaved across every architecture and runtime (edgeseg.ort.interleaved_medians)."""
    import torch

    from edgeseg.ort import interleaved_medians

    torch.set_num_threads(1)
    sessions, feeds, nano = {}, {}, {}
    for key, (model, x) in models.items():
        model.eval()
        sessions[(key, "torch")] = _TorchRun(model)
        sessions[(key, "ort")], nano[key] = _onnx(model, x)
        feeds[(key, "torch")] = feeds[(key, "ort")] = {"x": x.numpy()}
    wall, _ = interleaved_medians(sessions, feeds, repeats)
    return {key: (wall[(key, "torch")], wall[(key, "ort")], nano[key]) for key in models}


def _robustness_variants(args, base, sets):
    """The robustness bench's variants on this recipe's test split, when --robustness asks and the recipe allows."""
    from edgeseg.bench.srhead_robustness import build, unsupported

    if not getattr(args, "robustness", None):
        return None
    if unsupported(base):
        print(f"--robustness skipped: {unsupported(base)}")
        return None
    return build(base, sets["test"].positions)


def run(args) -> int:
    import warnings
    from dataclasses import replace

    import torch

    from edgeseg.bench.srhead_onnx import onnx_dice
    from edgeseg.bench.srhead_report import markdown, plot
    from edgeseg.bench.srhead_variants import recipe_for, with_sampling
    from edgeseg.bench.report import write_section
    from edgeseg.models import list_models
    from edgeseg.models.complexity import count_macs, count_parameters
    from edgeseg.train.checkpoint import load_checkpoint
    from edgeseg.train.recipe import load_recipe
    from edgeseg.export.pipeline import load_data

    base = load_recipe(args.recipe)
    models = args.models or list_models()
    sets, identity, spacing = load_data(base)
    splits = {s: with_sampling((sets, identity), s) for s in args.inputs}
    args.data = (f"`{base.data.source}`, {base.data.slices.axis} slices, {'x'.join(map(str, base.data.slices.canvas))} "
                 f"full-resolution grid, classes {'/'.join(sets['test'].class_names)}")
    h, w = base.data.slices.canvas
    cells, archs, missing = [], {}, []
    robust = _robustness_variants(args, base, sets)
    for name, sampling, seed, key, scale in _cells(args, models):
        recipe = recipe_for(replace(base, train=replace(base.train, epochs=args.epochs, threads=args.threads)), name, scale, key, seed,
                            sampling)
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
                      "train_seconds": metrics.get("train_seconds"), "arch": list(arch)})
        if key in args.onnx_dice and (args.onnx_models is None or name in args.onnx_models):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                cells[-1]["onnx"] = onnx_dice(out, (*splits[sampling], spacing))
                if robust and key in args.robustness and seed == args.seeds[0]:
                    from edgeseg.bench.srhead_robustness import measure_cell

                    cells[-1]["robustness"] = measure_cell(out, robust, args.threads)
        for derived, v in VARIANTS.items():
            if v.derived == key:  # evaluated from this checkpoint, not trained
                trained = {f: x for f, x in cells[-1].items() if f not in ("onnx", "robustness")}  # no ONNX of an argmax-repeat
                cells.append({**trained, "variant": derived, "dice": _lr_mask_dice(model, splits[sampling][0]["test"], scale),
                              "dice_per_class": {}})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notes
        latency = _time_architectures({k: (v["model"], v["x"]) for k, v in archs.items()}, args.repeats)
    arch_rows = [{"arch": list(k), "params": v["params"], "head_params": v["head_params"], "macs": v["macs"],
                  "torch_ms": latency[k][0], "ort_ms": latency[k][1], "nano_ms": latency[k][2]} for k, v in archs.items()]
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "results.json").write_text(json.dumps({"cells": cells, "architectures": arch_rows}, indent=2))
    from edgeseg.bench.srhead_robustness import markdown as robustness_markdown

    md = "\n".join([markdown(cells, arch_rows, args, missing), *robustness_markdown(cells)])
    write_section(args.section, md, args.docs)
    plot(cells, args.plot)
    print(md)
    return 0
