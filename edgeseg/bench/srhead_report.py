"""Markdown table and plot of the SR-head benchmark (from the cells and architectures `srhead.run` measured)."""
from __future__ import annotations

import statistics
from pathlib import Path

from edgeseg.bench.srhead_variants import VARIANTS

TARGET = 0.055  # the paper's +5.5 % relative gain


def _group(cells) -> dict:
    """(model, scale, inputs, variant) -> list of Dice over seeds."""
    out: dict = {}
    for c in cells:
        out.setdefault((c["model"], c["scale"], c["inputs"], c["variant"]), []).append(c["dice"])
    return out


def _mean_sd(values) -> str:
    m = statistics.fmean(values)
    return f"{m:.4f} ± {statistics.stdev(values):.4f}" if len(values) > 1 else f"{m:.4f}"


def _rel(a, b) -> float | None:
    return statistics.fmean(a) / statistics.fmean(b) - 1 if b and statistics.fmean(b) > 0 else None


def _pct(x) -> str:
    return "" if x is None else f"{100 * x:+.1f} %"


def markdown(cells, arch_rows, args, missing=()) -> str:
    dice = _group(cells)
    arch = {tuple(r["arch"]): r for r in arch_rows}
    models = getattr(args, "models", None) or sorted({c["model"] for c in cells})
    command = (f"edgeseg bench srhead --models {' '.join(models)} --scales {' '.join(map(str, args.scales))} "
               f"--variants {' '.join(args.variants)} --inputs {' '.join(args.inputs)} --seeds {' '.join(map(str, args.seeds))} "
               f"--epochs {args.epochs}" + (f" --no-full-res {' '.join(args.no_full_res)}" if args.no_full_res else "")
               + (" --cached-only" if getattr(args, "cached_only", False) else ""))
    lines = [
        "## SR segmentation heads (J-Net) vs low-resolution baselines vs full resolution",
        "",
        f"Command: `{command}` (base recipe `{args.recipe}`: MNI152 axial slices, 224x192 full-resolution grid, "
        "labels background/GM/WM; model width = each backbone's default).",
        f"Dice: mean over GM and WM on the test split at full resolution, pooled over slices; mean ± sd over seeds "
        f"{', '.join(map(str, args.seeds))}. Latency: one thread, batch 1, median of {args.repeats} interleaved runs "
        "(PyTorch, and ONNX Runtime CPU on the simplified opset-13 export); Nano ms = `edgeseg simulate` prediction for "
        "the Jetson Nano (TensorRT 8.2 FP16) of that export. Gains are relative mean-Dice changes against the "
        "paper's baseline `lr` (trained at low resolution on nearest-sampled LR labels, logits upsampled bilinearly "
        "at test) and against `a` (no head, upsampled logits trained on the HR label). Inputs: `area` = area-averaged "
        "low-res input (edgeseg), `nearest` = nearest-sampled (J-Net's, aliased).",
        "",
        "| backbone | scale | inputs | variant | head params | MMACs | torch ms | ORT ms | Nano ms (sim.) | mean fg Dice | vs lr | vs a | ORT ms vs a | Nano ms vs a |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    groups = sorted({(m, s, i) for (m, s, i, _) in dice}, key=lambda g: (g[0], g[2], g[1]))
    for model, scale, inputs in groups:
        for key in [k for v in args.variants for k in (v, *(d for d, dv in VARIANTS.items() if dv.derived == v))]:
            values = dice.get((model, scale, inputs, key))
            if not values:
                continue
            a = arch[(model, scale, VARIANTS[key].head)]
            base_a = arch.get((model, scale, ""))
            lr, bil = dice.get((model, scale, inputs, "lr")), dice.get((model, scale, inputs, "a"))
            vs_lr = _rel(values, lr) if key not in ("lr", "lr-nn") and scale > 1 else None
            vs_a = _rel(values, bil) if key != "a" and scale > 1 else None
            cost = (a["ort_ms"] / base_a["ort_ms"] - 1) if (base_a and VARIANTS[key].head) else None
            nano = (a["nano_ms"] / base_a["nano_ms"] - 1) if (base_a and VARIANTS[key].head) else None
            lines.append(f"| {model} | {scale} | {inputs} | {key}: {VARIANTS[key].label} | {a['head_params']} | {a['macs'] / 1e6:.1f} | "
                         f"{a['torch_ms']:.2f} | {a['ort_ms']:.2f} | {a['nano_ms']:.2f} | {_mean_sd(values)} | {_pct(vs_lr)} | {_pct(vs_a)} | "
                         f"{_pct(cost)} | {_pct(nano)} |")
    if missing:
        lines += ["", f"Cells of this grid not trained (time budget; the command without `--cached-only` trains them): "
                      f"{', '.join(missing)}."]
    lines += ["", *_summary(dice), "", f"![SR head benchmark]({Path(args.plot).name})", ""]
    from edgeseg.bench.report import machine_line

    import os

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    lines.append(machine_line() + f" Load average when the table was written: {load:.1f} (latencies are medians of "
                 "interleaved runs, so ratios between variants are fairer than the absolute ms).")
    return "\n".join(lines)


def _summary(dice) -> list[str]:
    out = []
    for head_key in ("c", "c-auth", "b"):
        for base_key, base_name in (("lr-nn", "the LR mask upsampled nearest (lr-nn)"), ("lr", "the paper's baseline (lr)"),
                                    ("a", "bilinear on the HR loss (a)")):
            gains = [_rel(v, dice[(m, s, i, base_key)]) for (m, s, i, k), v in dice.items()
                     if k == head_key and (m, s, i, base_key) in dice]
            gains = [g for g in gains if g is not None]
            if gains:
                out.append(f"- `{head_key}` ({VARIANTS[head_key].label}) vs {base_name}: {sum(g >= TARGET for g in gains)} of "
                           f"{len(gains)} backbone/scale/input cells reach +5.5 %; range {_pct(min(gains))} … {_pct(max(gains))}.")
    ds = [_rel(v, dice[(m, s, i, "c-nods")]) for (m, s, i, k), v in dice.items() if k == "c" and (m, s, i, "c-nods") in dice]
    if ds:
        out.append(f"- Deep supervision (c vs c-nods): {_pct(min(ds))} … {_pct(max(ds))} over {len(ds)} cells.")
    inputs = [_rel(v, dice[(m, s, "area", k)]) for (m, s, i, k), v in dice.items() if i == "nearest" and (m, s, "area", k) in dice]
    if inputs:
        out.append(f"- Nearest-sampled vs area-averaged inputs (same backbone, scale, variant): {_pct(min(inputs))} … "
                   f"{_pct(max(inputs))} over {len(inputs)} cells.")
    return out + ["", *_ablation(dice)]


# the chain from the plainest baseline to the J-Net head: each step changes one thing
STEPS = (("lr-nn", "lr", "test: bilinear logits instead of repeated LR mask"),
         ("lr", "a", "train: HR label in the loss (through bilinear upsampling)"),
         ("a", "c-nods", "the J-Net head (final loss)"),
         ("c-nods", "c", "deep supervision"))


def _ablation(dice) -> list[str]:
    """Relative mean-Dice change of each step of STEPS, per backbone/scale/inputs; the last column is the total."""
    groups = sorted({(m, s, i) for (m, s, i, k) in dice if s > 1})
    rows = []
    for g in groups:
        steps = [_rel(dice[(*g, b)], dice[(*g, a)]) if (*g, a) in dice and (*g, b) in dice else None for a, b, _ in STEPS]
        total = _rel(dice[(*g, "c")], dice[(*g, "lr-nn")]) if (*g, "c") in dice and (*g, "lr-nn") in dice else None
        if any(x is not None for x in steps):
            rows.append(f"| {g[0]} | {g[1]} | {g[2]} | " + " | ".join(_pct(x) for x in (*steps, total)) + " |")
    if not rows:
        return []
    head = " | ".join(f"{a} → {b}: {what}" for a, b, what in STEPS)
    return ["Where the gain comes from (relative mean-Dice change of each step; total = c vs lr-nn):", "",
            f"| backbone | scale | inputs | {head} | total |", "|---|---|---|" + "---:|" * (len(STEPS) + 1), *rows]


def plot(cells, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dice = _group(cells)
    panels = sorted({(s, i) for (_, s, i, _) in dice if s > 1})
    models = sorted({m for (m, _, _, _) in dice})
    keys = [k for k in VARIANTS if any(kk == k for (*_, kk) in dice)]
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4), squeeze=False)
    width = 0.8 / max(1, len(keys))
    for ax, (scale, inputs) in zip(axes[0], panels):
        for i, key in enumerate(keys):
            s = 1 if VARIANTS[key].full_res else scale
            vals = [statistics.fmean(dice[(m, s, inputs, key)]) if (m, s, inputs, key) in dice else float("nan") for m in models]
            ax.bar([j + (i - (len(keys) - 1) / 2) * width for j in range(len(models))], vals, width=width, label=key)
        ax.set_xticks(range(len(models)), models)
        ax.set_ylim(0.5, 1.0)
        ax.set_title(f"x{scale}, {inputs} inputs: mean fg Dice (test)")
        ax.legend(loc="lower right", fontsize=7, ncol=2)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
