"""Tables and the Dice-vs-size plot of `edgeseg bench compression` (from its results dict)."""
from __future__ import annotations


def _pts(d: float, ref: float) -> str:
    return f"{100 * (d - ref):+.2f}"


def _ort(r: dict, key: str) -> str:
    o = r.get("ort", {}).get(key)
    return f"{o['dice']:.4f} ({o['diff']:.4f})" if o else "-"


def markdown(result: dict, args) -> str:
    from edgeseg.bench.report import machine_line

    rows = result["rows"]
    fp, ctrl = rows[0], rows[1]
    grid = [r for r in rows if r["group"] == "fixedpoint"]
    cmd = (f"edgeseg bench compression --weight-bits {' '.join(map(str, args.weight_bits))} --act-bits {' '.join(map(str, args.act_bits))} "
           f"--qat-epochs {args.qat_epochs} --ternary-epochs {args.ternary_epochs} --tucker-df {' '.join(f'{d:g}' for d in args.tucker_df)} "
           f"--tucker-epochs {args.tucker_epochs} --seed {args.seed}")
    lines = [
        "## Compression: fixed-point QAT, TernaryNet vs binary, Tucker-2",
        "",
        f"Command: `{cmd}` ({result['seconds'] / 60:.1f} min in all). Source: `{result['fp32_checkpoint']}` "
        f"(recipe `{args.train_recipe}`, training seed {result['fp32_train_seed']}); every fine-tune seed {result['seed']}, "
        "AdamW + cosine, best validation Dice kept. Dice: mean over GM and WM on the test split at full resolution. "
        "Size: honest storage = packed bits x parameters + 32-bit per-channel scales + float parameters (see docs/compression.md). "
        "ORT column: Dice of the exported QDQ ONNX in ONNX Runtime (|difference| to the PyTorch model; tolerance 0.005).",
        "",
        f"FP32: Dice {fp['dice']:.4f}, {fp['params']:,} parameters, {fp['kb']:.1f} KB. "
        f"FP32 fine-tuned {args.qat_epochs} more epochs with the same settings (the control for Xu et al.): Dice {ctrl['dice']:.4f}.",
        "",
        "### Fixed point (Perone et al. grid; Xu et al.'s regularisation)",
        "",
        "| weights / activations | post-training Dice | QAT Dice | vs FP32 (points) | vs FP32 control (points) | KB | x smaller | ORT Dice (diff) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in grid:
        lines.append(f"| {r['setting']} | {r['ptq_dice']:.4f} | {r['dice']:.4f} | {_pts(r['dice'], fp['dice'])} | {_pts(r['dice'], ctrl['dice'])} | "
                     f"{r['kb']:.1f} | {fp['kb'] / r['kb']:.1f} | {_ort(r, 'qdq')} |")
    w4a6 = next((r for r in grid if r["setting"] == "W4A6"), None)
    better = [r["setting"] for r in grid if r["dice"] > ctrl["dice"]]
    if w4a6:
        lines += ["", f"Perone's headline (W4A6: 8x less weight memory, Dice -0.6 to -2.2 points): here "
                  f"{fp['kb'] / w4a6['kb']:.1f}x smaller with {_pts(w4a6['dice'], fp['dice'])} points vs FP32."]
    lines += [f"Xu's regularisation effect (quantized beats the equally fine-tuned FP32 control): "
              f"{', '.join(better) if better else 'no setting'} of {len(grid)}."]
    lines += ["", "### TernaryNet vs binary", "", "| model | post-training Dice | Dice | vs FP32 (points) | KB | x smaller | ORT Dice (diff) |",
              "|---|---:|---:|---:|---:|---:|---:|", f"| FP32 | - | {fp['dice']:.4f} | - | {fp['kb']:.1f} | 1.0 | - |"]
    for r in rows:
        if r["group"] in ("ternary", "binary"):
            lines.append(f"| {r['method']} ({r['setting']}) | {r['ptq_dice']:.4f} | {r['dice']:.4f} | {_pts(r['dice'], fp['dice'])} | {r['kb']:.1f} | "
                         f"{fp['kb'] / r['kb']:.1f} | {_ort(r, 'qdq')} |")
    lat = result["latency_ms"]
    lines += ["", "### Tucker-2 (post-training and fine-tuned)", "",
              f"Latency: ONNX Runtime, 1 thread, median of {args.repeats} interleaved runs, batch 1, simplified FP32 ONNX and its INT8 QDQ "
              f"(export package defaults). Original: FP32 {lat['original fp32']:.2f} ms, INT8 {lat['original int8']:.2f} ms.", "",
              "| DF | params | removed | MMACs | Dice post-training | Dice fine-tuned | INT8 ORT Dice | FP32 ms | speed-up | INT8 ms |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        if r["group"] != "tucker-ft":
            continue
        ptq = next(p for p in rows if p["group"] == "tucker-ptq" and p["df"] == r["df"])
        f32, i8 = lat.get(f"DF {r['df']:g} fp32"), lat.get(f"DF {r['df']:g} int8")
        lines.append(f"| {r['df']:g} | {r['params']:,} | {100 * (1 - r['params'] / fp['params']):.0f} % | {r['macs'] / 1e6:.1f} | "
                     f"{ptq['dice']:.4f} | {r['dice']:.4f} | {_ort(r, 'int8')} | {f32:.2f} | {lat['original fp32'] / f32:.2f}x | {i8:.2f} |")
    lines += ["", f"Original: {fp['params']:,} params, {fp['macs'] / 1e6:.1f} MMACs, Dice {fp['dice']:.4f}.", "",
              "![Dice vs size](compression.png)", "", machine_line()]
    return "\n".join(lines)


def plot(result: dict, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["rows"]
    style = {"fixedpoint": ("o", "tab:blue", "fixed-point QAT"), "ternary": ("^", "tab:green", "ternary"),
             "binary": ("v", "tab:red", "binary"), "tucker-ptq": ("s", "tab:gray", "Tucker post-training (FP32)"),
             "tucker-ft": ("s", "tab:purple", "Tucker fine-tuned (FP32)"), "fp32-ft": ("D", "tab:orange", "FP32 fine-tuned control")}
    fig, ax = plt.subplots(figsize=(8, 5))
    seen = set()
    for r in rows[1:]:
        marker, color, label = style[r["group"]]
        ax.scatter(r["kb"], r["dice"], marker=marker, color=color, label=None if label in seen else label, zorder=3)
        seen.add(label)
        if r["group"] in ("fixedpoint", "tucker-ft"):
            ax.annotate(r["setting"].split(",")[0], (r["kb"], r["dice"]), fontsize=7, xytext=(3, 3), textcoords="offset points")
    fp = rows[0]
    ax.scatter(fp["kb"], fp["dice"], marker="*", s=200, color="black", label="FP32 baseline", zorder=4)
    ax.axhline(fp["dice"], color="black", lw=0.6, ls="--")
    ax.set_xscale("log")
    ax.set_xlabel("weight storage (KB, log scale; packed bits x params + scales)")
    ax.set_ylabel("mean foreground Dice (test split)")
    ax.set_title("Compression: Dice vs model size (slim U-Net x2 + SR head, MNI152)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
