"""SR head vs bilinear upsampling vs full-resolution input, per backbone (the J-Net comparison).

For every backbone and scale: (a) low-res input, no head, logits upsampled bilinearly; (b) low-res
input with the SR head; and once per backbone (c) full-res input, no head (upper bound). All are
trained with the same recipe and loss at full resolution; Dice is on the test split at full
resolution. Latency: torch, one thread, median over repeats interleaved across variants in one run.
Checkpoints are cached under --out, so the table can be rebuilt (and timed again) without retraining.
"""
from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

VARIANTS = {"a": "low-res, bilinear", "b": "low-res + SR head", "c": "full-res, no head"}


def add_arguments(p) -> None:
    p.add_argument("--models", nargs="*", help="backbones (default: all registered)")
    p.add_argument("--scales", nargs="*", type=int, default=[2, 4])
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--recipe", default="recipes/unet-s2-brain.toml", help="base recipe (model name/scale/head are overridden)")
    p.add_argument("--out", default="runs/bench-srhead")
    p.add_argument("--retrain", action="store_true", help="ignore cached checkpoints")
    p.add_argument("--repeats", type=int, default=30, help="timed forward passes per variant")
    p.add_argument("--no-full-res", nargs="*", default=[], metavar="MODEL",
                   help="skip variant (c) for these backbones (4x the training cost; to fit a time budget)")
    p.add_argument("--docs", default="docs/BENCHMARKS.md")
    p.add_argument("--plot", default="docs/srhead.png")


def _configs(models, scales, no_full_res=()):
    for name in models:
        for scale in scales:
            yield name, "a", scale, False
            yield name, "b", scale, True
        if name not in no_full_res:
            yield name, "c", 1, False


def _train_or_load(recipe, splits, out: Path, retrain: bool) -> dict:
    from edgeseg.train.trainer import train

    metrics_path = out / "metrics.json"
    if metrics_path.is_file() and (out / "model.pt").is_file() and not retrain:
        return json.loads(metrics_path.read_text())
    return train(recipe, out_dir=out, show_progress=True, splits=splits)


def _time_variants(models: dict, repeats: int) -> dict:
    """Median single-thread latency (ms) of each model, interleaved so they share machine conditions."""
    import statistics

    import torch

    torch.set_num_threads(1)
    times = {k: [] for k in models}
    with torch.no_grad():
        for _ in range(3):  # warm-up
            for key, (model, x) in models.items():
                model(x)
        for _ in range(repeats):
            for key, (model, x) in models.items():
                t0 = time.perf_counter()
                model(x)
                times[key].append((time.perf_counter() - t0) * 1e3)
    return {k: statistics.median(v) for k, v in times.items()}


def run(args) -> int:
    import torch

    from edgeseg.bench.report import machine_line, write_section
    from edgeseg.models import list_models
    from edgeseg.models.complexity import count_macs, count_parameters
    from edgeseg.train.checkpoint import load_checkpoint
    from edgeseg.train.recipe import load_recipe
    from edgeseg.train.trainer import load_splits

    base = load_recipe(args.recipe)
    base = replace(base, train=replace(base.train, epochs=args.epochs), model=replace(base.model, width=0))
    models = args.models or list_models()
    splits = load_splits(base)
    h, w = base.data.slices.canvas
    rows, timed = [], {}
    for name, variant, scale, head in _configs(models, args.scales, args.no_full_res):
        recipe = replace(base, model=replace(base.model, name=name, scale=scale, sr_head=head))
        out = Path(args.out) / f"{name}-s{scale}-{variant}"
        metrics = _train_or_load(recipe, splits, out, args.retrain)
        model, _, _ = load_checkpoint(out / "model.pt")
        shape = (1, 1, h // scale, w // scale)
        key = (name, variant, scale)
        timed[key] = (model, torch.randn(shape))
        rows.append({"model": name, "variant": variant, "scale": scale, "params": count_parameters(model),
                     "head_params": model.head_parameters(), "macs": count_macs(model, shape),
                     "dice": metrics["test"]["mean_foreground_dice"], "dice_per_class": metrics["test"]["dice"],
                     "epochs": args.epochs})
    latency = _time_variants(timed, args.repeats)
    for row in rows:
        row["latency_ms"] = latency[(row["model"], row["variant"], row["scale"])]
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "results.json").write_text(json.dumps(rows, indent=2))
    md = _markdown(rows, args)
    write_section("srhead", md, args.docs)
    _plot(rows, args.plot)
    print(md)
    return 0


def _markdown(rows, args) -> str:
    by_key = {(r["model"], r["variant"], r["scale"]): r for r in rows}
    lines = [
        "## SR segmentation head (J-Net idea) vs bilinear upsampling vs full resolution",
        "",
        f"Command: `edgeseg bench srhead --epochs {args.epochs} --scales {' '.join(map(str, args.scales))}"
        f"{' --no-full-res ' + ' '.join(args.no_full_res) if args.no_full_res else ''}` "
        f"(recipe `{args.recipe}`: MNI152 axial slices, 224x192 full-resolution grid, labels background/GM/WM).",
        "Dice: mean over GM and WM on the test split, at full resolution, pooled over slices. "
        "Latency: PyTorch, 1 thread, median of "
        f"{args.repeats} interleaved runs, batch 1. (a) low-res input, logits upsampled bilinearly; "
        "(b) low-res input + SR head; (c) full-res input, no head.",
        "",
        "| backbone | scale | variant | params | head params | MMACs | latency ms | mean fg Dice | (b) vs (a) Dice | (b) vs (a) latency |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        gain = cost = ""
        if r["variant"] == "b":
            a = by_key[(r["model"], "a", r["scale"])]
            gain = f"{100 * (r['dice'] / a['dice'] - 1):+.1f} %" if a["dice"] > 0 else "n/a"
            cost = f"{100 * (r['latency_ms'] / a['latency_ms'] - 1):+.1f} %"
        lines.append(f"| {r['model']} | {r['scale']} | {r['variant']}: {VARIANTS[r['variant']]} | {r['params']:,} | {r['head_params']} | "
                     f"{r['macs'] / 1e6:.1f} | {r['latency_ms']:.2f} | {r['dice']:.4f} | {gain} | {cost} |")
    gains = [(r["dice"] / by_key[(r["model"], "a", r["scale"])]["dice"] - 1) for r in rows
             if r["variant"] == "b" and by_key[(r["model"], "a", r["scale"])]["dice"] > 0] or [0.0]
    hits = sum(g >= 0.055 for g in gains)
    from edgeseg.bench.report import machine_line

    lines += ["", f"Paper target: (b) beats (a) by >= 5.5 % relative mean Dice with < 200 extra parameters and < 25 % extra latency. "
              f"Measured: {hits} of {len(gains)} backbone/scale pairs reach +5.5 %; "
              f"relative gains range {100 * min(gains):+.1f} % to {100 * max(gains):+.1f} %.", "",
              *([f"Variant (c) not trained for: {', '.join(args.no_full_res)} (time budget)."] if args.no_full_res else []),
              "", "![SR head benchmark](srhead.png)", "", machine_line()]
    return "\n".join(lines)


def _plot(rows, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = sorted({r["model"] for r in rows})
    scales = sorted({r["scale"] for r in rows if r["variant"] != "c"})
    by_key = {(r["model"], r["variant"], r["scale"]): r for r in rows}
    fig, axes = plt.subplots(1, len(scales), figsize=(5 * len(scales), 4), squeeze=False)
    for ax, scale in zip(axes[0], scales):
        for i, (variant, label) in enumerate(VARIANTS.items()):
            s = 1 if variant == "c" else scale
            vals = [by_key[(m, variant, s)]["dice"] if (m, variant, s) in by_key else float("nan") for m in models]
            ax.bar([j + (i - 1) * 0.27 for j in range(len(models))], vals, width=0.27, label=label)
        ax.set_xticks(range(len(models)), models)
        ax.set_ylim(0.5, 1.0)
        ax.set_title(f"scale {scale}: mean foreground Dice (test)")
        ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
