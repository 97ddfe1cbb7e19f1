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


def _by_seed(cells, field=("dice",)) -> dict:
    """(model, scale, inputs, variant) -> {seed: value of the nested field}, cells lacking it left out."""
    out: dict = {}
    for c in cells:
        v = c
        for f in field:
            v = v.get(f) if isinstance(v, dict) else None
        if v is not None:
            out.setdefault((c["model"], c["scale"], c["inputs"], c["variant"]), {})[c["seed"]] = v
    return out


def _mean_sd(values) -> str:
    m = statistics.fmean(values)
    return f"{m:.4f} ± {statistics.stdev(values):.4f}" if len(values) > 1 else f"{m:.4f}"


def _rel(a, b) -> float | None:
    return statistics.fmean(a) / statistics.fmean(b) - 1 if b and statistics.fmean(b) > 0 else None


def _pct(x) -> str:
    return "" if x is None else f"{100 * x:+.1f} %"


def paired_gain(seeds: dict, key, base_key) -> list[float]:
    """Relative gains key/base - 1 seed by seed (seeds both were trained with)."""
    a, b = seeds.get(key, {}), seeds.get(base_key, {})
    return [a[s] / b[s] - 1 for s in sorted(set(a) & set(b)) if b[s] > 0]


def _pct_sd(gains) -> str:
    if not gains:
        return ""
    if len(gains) == 1:
        return _pct(gains[0])
    return f"{100 * statistics.fmean(gains):+.1f} ± {100 * statistics.stdev(gains):.1f} %"


def _onnx_cell(onnx: dict, key) -> str:
    fp32, int8 = onnx.get((*key, "onnx")), onnx.get((*key, "int8"))
    if not fp32:
        return ""
    text = f"{statistics.fmean(fp32.values()):.4f}"
    return text + (f" / {statistics.fmean(int8.values()):.4f}" if int8 else "")


def markdown(cells, arch_rows, args, missing=()) -> str:
    dice = _group(cells)
    seeds = _by_seed(cells)
    onnx = {(*k, f): v for f in ("onnx", "int8", "pytorch") for k, v in _by_seed(cells, ("onnx", f)).items()}
    arch = {tuple(r["arch"]): r for r in arch_rows}
    models = getattr(args, "models", None) or sorted({c["model"] for c in cells})
    command = (f"edgeseg bench srhead --recipe {args.recipe} --models {' '.join(models)} --scales {' '.join(map(str, args.scales))} "
               f"--variants {' '.join(args.variants)} --inputs {' '.join(args.inputs)} --seeds {' '.join(map(str, args.seeds))} "
               f"--epochs {args.epochs}" + (f" --no-full-res {' '.join(args.no_full_res)}" if args.no_full_res else "")
               + (f" --onnx-dice {' '.join(args.onnx_dice)}" if getattr(args, "onnx_dice", None) else "")
               + (f" --onnx-models {' '.join(args.onnx_models)}" if getattr(args, "onnx_models", None) else "")
               + (f" --robustness {' '.join(args.robustness)}" if getattr(args, "robustness", None) else "")
               + (f" --out {args.out}" if getattr(args, "out", None) else "")
               + (" --cached-only" if getattr(args, "cached_only", False) else ""))
    data = getattr(args, "data", "MNI152 axial slices, 224x192 full-resolution grid, classes background/GM/WM")
    lines = [
        f"## {getattr(args, 'title', '') or 'SR segmentation heads (J-Net) vs low-resolution baselines'}",
        "",
        f"Command: `{command}` (base recipe `{args.recipe}`: {data}; model width = each backbone's default; "
        f"training at {getattr(args, 'threads', 1)} thread(s)).",
        f"Dice: mean over the foreground classes on the test split at full resolution, pooled over slices; mean ± sd over seeds "
        f"{', '.join(map(str, args.seeds))}. ONNX Dice: the cell's checkpoint exported by `edgeseg export`'s pipeline "
        "(jetson-nano target: simplified opset-13 FP32 / INT8 QDQ) and evaluated by its verification step on the same test "
        f"split. Latency: one thread, batch 1, median of {args.repeats} runs interleaved across every architecture "
        "(PyTorch, and ONNX Runtime CPU on the simplified opset-13 export); Nano ms = `edgeseg simulate` prediction for "
        "the Jetson Nano (TensorRT 8.2 FP16) of that export. Gains are relative mean-Dice changes against the "
        "paper's baseline `lr` (trained at low resolution on nearest-sampled LR labels, logits upsampled bilinearly "
        "at test; `lr-nn`: the same network's LR mask repeated) and against `a` (no head, upsampled logits trained on "
        "the HR label); `per seed` = the gain seed by seed, mean ± sd. Inputs: `area` = area-averaged low-res input "
        "(edgeseg), `nearest` = nearest-sampled (J-Net's, aliased).",
        "",
        "| backbone | scale | inputs | variant | head params | MMACs | torch ms | ORT ms | Nano ms (sim.) | mean fg Dice | "
        "ONNX Dice FP32 / INT8 | vs lr | vs lr per seed | vs a | ORT ms vs a | Nano ms vs a |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    groups = sorted({(m, s, i) for (m, s, i, _) in dice}, key=lambda g: (g[0], g[2], g[1]))
    for model, scale, inputs in groups:
        for key in [k for v in args.variants for k in (v, *(d for d, dv in VARIANTS.items() if dv.derived == v))]:
            values = dice.get((model, scale, inputs, key))
            if not values:
                continue
            g = (model, scale, inputs)
            a = arch[(model, scale, VARIANTS[key].head)]
            base_a = arch.get((model, scale, ""))
            lr, bil = dice.get((*g, "lr")), dice.get((*g, "a"))
            head_cell = key not in ("lr", "lr-nn") and scale > 1
            vs_lr = _rel(values, lr) if head_cell else None
            per_seed = _pct_sd(paired_gain({k[3]: v for k, v in seeds.items() if k[:3] == g}, key, "lr")) if head_cell else ""
            vs_a = _rel(values, bil) if key != "a" and scale > 1 else None
            cost = (a["ort_ms"] / base_a["ort_ms"] - 1) if (base_a and VARIANTS[key].head) else None
            nano = (a["nano_ms"] / base_a["nano_ms"] - 1) if (base_a and VARIANTS[key].head) else None
            lines.append(f"| {model} | {scale} | {inputs} | {key}: {VARIANTS[key].label} | {a['head_params']} | {a['macs'] / 1e6:.1f} | "
                         f"{a['torch_ms']:.2f} | {a['ort_ms']:.2f} | {a['nano_ms']:.2f} | {_mean_sd(values)} | {_onnx_cell(onnx, (*g, key))} | "
                         f"{_pct(vs_lr)} | {per_seed} | {_pct(vs_a)} | {_pct(cost)} | {_pct(nano)} |")
    if missing:
        lines += ["", f"Cells of this grid not trained (time budget; the command without `--cached-only` trains them): "
                      f"{', '.join(missing)}."]
    lines += ["", *_onnx_summary(onnx), *_verdict(dice, arch), *_summary(dice), "", f"![SR head benchmark]({Path(args.plot).name})", ""]
    from edgeseg.bench.report import machine_line

    import os

    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    lines.append(machine_line() + f" Load average (1/5/15 min) when the table was written: {load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f} "
                 "(latencies are medians of interleaved runs, so ratios between variants are fairer than the absolute ms).")
    return "\n".join(lines)


def _onnx_summary(onnx) -> list[str]:
    diffs = [abs(v - onnx[(*k[:4], "pytorch")][s]) for k, d in onnx.items() if k[4] == "onnx" for s, v in d.items()
             if (*k[:4], "pytorch") in onnx and s in onnx[(*k[:4], "pytorch")]]
    int8 = [abs(v - onnx[(*k[:4], "pytorch")][s]) for k, d in onnx.items() if k[4] == "int8" for s, v in d.items()
            if (*k[:4], "pytorch") in onnx and s in onnx[(*k[:4], "pytorch")]]
    if not diffs:
        return []
    out = [f"- Through the exported ONNX ({len(diffs)} cells): FP32 Dice within {max(diffs):.4f} of PyTorch's"]
    if int8:
        out[-1] += f"; INT8 within {max(int8):.4f}"
    out[-1] += "."
    return out


def _verdict(dice, arch) -> list[str]:
    """The issue's targets per (scale, inputs): c vs lr >= +5.5 % and <= +25 % ORT and simulated Nano latency
    (c vs the same backbone without a head), on >= 3 of 5 backbones."""
    out = []
    for scale, inputs in sorted({(s, i) for (_, s, i, k) in dice if s > 1 and k == "c"}):
        rows = []
        for m in sorted({m for (m, s, i, k) in dice if (s, i, k) == (scale, inputs, "c") and (m, s, i, "lr") in dice}):
            gain = _rel(dice[(m, scale, inputs, "c")], dice[(m, scale, inputs, "lr")])
            head, plain = arch.get((m, scale, "jnet")), arch.get((m, scale, ""))
            ort_cost = head["ort_ms"] / plain["ort_ms"] - 1 if head and plain else None
            nano_cost = head["nano_ms"] / plain["nano_ms"] - 1 if head and plain else None
            ok = gain >= TARGET and ort_cost is not None and ort_cost <= 0.25 and nano_cost <= 0.25
            rows.append((m, gain, ort_cost, nano_cost, ok))
        if not rows:
            continue
        met = [r[0] for r in rows if r[4]]
        dice_met = [r[0] for r in rows if r[1] >= TARGET]
        detail = "; ".join(f"{m} {_pct(g)} Dice, {_pct(o)} ORT, {_pct(n)} Nano" for m, g, o, n, _ in rows)
        out.append(f"- **Verdict x{scale}, {inputs} inputs** (c vs lr; targets: >= +5.5 % Dice and <= +25 % ORT and Nano "
                   f"latency on >= 3 of 5 backbones): Dice target met on {len(dice_met)} of {len(rows)} backbones measured, "
                   f"Dice and latency together on {len(met)}: {'REPRODUCED' if len(met) >= 3 else 'not reproduced'} "
                   f"({detail}).")
    return out


def _summary(dice) -> list[str]:
    out = []
    for head_key in ("c", "c-auth", "b", "e"):
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
# the same J-Net cell against the other heads (not a chain: each column is c vs that head)
ALTERNATIVES = (("e", "c", "cascade instead of one stage (both deep sup.)"),
                ("b", "c", "J-Net instead of pixelshuffle"))


def _ablation(dice) -> list[str]:
    """Relative mean-Dice change of each step of STEPS, per backbone/scale/inputs; the last column is the total."""
    groups = sorted({(m, s, i) for (m, s, i, k) in dice if s > 1})
    rows = []
    for g in groups:
        steps = [_rel(dice[(*g, b)], dice[(*g, a)]) if (*g, a) in dice and (*g, b) in dice else None for a, b, _ in STEPS]
        total = _rel(dice[(*g, "c")], dice[(*g, "lr-nn")]) if (*g, "c") in dice and (*g, "lr-nn") in dice else None
        alt = [_rel(dice[(*g, b)], dice[(*g, a)]) if (*g, a) in dice and (*g, b) in dice else None for a, b, _ in ALTERNATIVES]
        if any(x is not None for x in steps):
            rows.append(f"| {g[0]} | {g[1]} | {g[2]} | " + " | ".join(_pct(x) for x in (*steps, total, *alt)) + " |")
    if not rows:
        return []
    head = " | ".join(f"{a} → {b}: {what}" for a, b, what in STEPS)
    alts = " | ".join(f"{b} vs {a}: {what}" for a, b, what in ALTERNATIVES)
    return ["Where the gain comes from (relative mean-Dice change of each step; total = c vs lr-nn; then c against the "
            "other heads):", "", f"| backbone | scale | inputs | {head} | total | {alts} |",
            "|---|---|---|" + "---:|" * (len(STEPS) + 1 + len(ALTERNATIVES)), *rows]


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
        ax.set_ylim(0.3, 1.0)
        ax.set_title(f"x{scale}, {inputs} inputs: mean fg Dice (test)")
        ax.legend(loc="upper left", fontsize=7, ncol=3)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
