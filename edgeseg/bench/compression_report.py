"""Tables and the Dice-vs-size plot of `edgeseg bench compression` (from its results dict)."""
from __future__ import annotations

import math


def _pts(d: float, ref: float) -> str:
    return f"{100 * (d - ref):+.2f}"


def _ort(r: dict, key: str) -> str:
    o = r.get("ort", {}).get(key)
    return f"{o['dice']:.4f} ({o['diff']:.4f})" if o else "-"


def _pm(mean: float, sd: float) -> str:
    return f"{mean:.4f} ± {sd:.4f}" if not math.isnan(sd) else f"{mean:.4f} (1 seed, no sd)"


def _loads(result: dict) -> str:
    vals = sorted(float(v) for v in result.get("cell_loads", []) if v not in ("?", None))
    return f"{vals[0]:.1f}-{vals[-1]:.1f}" if vals else str(result["load"])


def command(args) -> str:
    from edgeseg.bench.compression import RECIPE_DEFAULTS

    only = "" if len(args.only) == 3 else f" --only {' '.join(args.only)}"
    seeds = getattr(args, "tucker_seeds", [0])
    only += f" --tucker-seeds {' '.join(map(str, seeds))}" if seeds != [0] else ""
    if args.quick:
        return f"edgeseg bench compression --quick{only}"
    opt = lambda flag, v: f" {flag} {v}" if v is not None else ""  # noqa: E731
    mc = f" --tucker-variants {' '.join(args.tucker_variants)}" if args.tucker_variants else ""
    mc += f" --tucker-widths {' '.join(map(str, args.tucker_widths))}" if args.tucker_widths else ""
    mc += f" --base-width {args.base_width}" if getattr(args, "base_width", 0) else ""
    mc += f" --ternary-arms {' '.join(args.ternary_arms)}" if getattr(args, "ternary_arms", None) else ""
    for flag, attr in (("--ternary-recipe", "ternary_recipe"), ("--tucker-recipe", "tucker_recipe")):
        value, default = getattr(args, attr, None), RECIPE_DEFAULTS[attr]
        mc += f" {flag} {value}" if value and value != default else ""
    return (f"edgeseg bench compression{only} --weight-bits {' '.join(map(str, args.weight_bits))} --act-bits {' '.join(map(str, args.act_bits))} "
            f"--perone {' '.join(args.perone)} --qat-epochs {args.qat_epochs} --seeds {' '.join(map(str, args.seeds))}"
            f"{opt('--ternary-epochs', args.ternary_epochs)}{opt('--ternary-width', args.ternary_width)}{opt('--ternary-scale', args.ternary_scale)}"
            f" --tucker-df {' '.join(f'{d:g}' for d in args.tucker_df)}{opt('--tucker-epochs', args.tucker_epochs)}"
            f"{mc}{' --no-control' if args.no_control else ''} --threads {args.threads} --repeats {args.repeats}")


def fixed_point(result: dict, args) -> list[str]:
    rows = result["rows"]
    fp, ctrl = rows[0], rows[1]
    lines = ["### Fixed point (Perone et al. grid; Xu et al.'s regularisation)", "",
             "Two quantisers: *float scales* (per output channel, the default; what ONNX/TensorRT per-channel INT8 use) and "
             "*Perone Q-format* (`name = \"perone\"`: power-of-two scales, one Q-format per layer for the weights, per tensor for "
             "the activations). Storage = packed bits x weights + 32-bit scales + float parameters; file = the ONNX file "
             f"(INT8 containers; INT4 initializers at opset 21 where the integers fit [-8, 7], i.e. weights of <= 4 bits; for 6-8 bits "
             f"the opset-21 copy is only larger); FP32 ONNX file {fp['onnx_kb']:.1f} KB.", "",
             "| quantiser | W / A | post-training Dice | QAT Dice | vs FP32 (points) | vs FP32 control (points) | storage KB | x smaller (storage) "
             "| file KB (INT8 / INT4) | x smaller (smaller file) | ORT Dice (diff) |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    grid = [r for r in rows if r["group"] in ("fixedpoint", "perone")]
    for r in grid:
        q, q4 = r["ort"].get("qdq", {}), r["ort"].get("qdq-int4", {})
        name = "float scales" if r["group"] == "fixedpoint" else "Perone Q-format"
        lines.append(f"| {name} | {r['setting']} | {r['ptq_dice']:.4f} | {r['dice']:.4f} | {_pts(r['dice'], fp['dice'])} | "
                     f"{_pts(r['dice'], ctrl['dice'])} | {r['kb']:.1f} | {fp['kb'] / r['kb']:.1f} | "
                     f"{q.get('kb', 0):.1f} / {q4.get('kb', 0):.1f} | {fp['onnx_kb'] / min(f['kb'] for f in (q, q4) if f):.1f} | {_ort(r, 'qdq')} |")
    for group, name in (("fixedpoint", "float scales"), ("perone", "Perone Q-format")):
        w4a6 = next((r for r in grid if r["setting"] == "W4A6" and r["group"] == group), None)
        if w4a6:
            lines += ["", f"Perone's headline (W4A6: 8x less weight memory, Dice -0.57 to -2.21 points), {name}: "
                      f"{fp['kb'] / w4a6['kb']:.1f}x less storage ({fp['onnx_kb'] / w4a6['ort']['qdq-int4']['kb']:.1f}x smaller INT4 file) "
                      f"with {_pts(w4a6['dice'], fp['dice'])} points vs FP32."]
    better = [f"{r['setting']} ({r['group']})" for r in grid if r["dice"] > ctrl["dice"]]
    lines += ["", f"Xu's regularisation effect (quantized beats the equally fine-tuned FP32 control): "
              f"{', '.join(better) if better else 'no setting'} of {len(grid)}."]
    return lines


def ternary(result: dict, args) -> list[str]:
    rows, s = result["scratch"], result["scratch_summary"]
    if not rows:
        return []
    p, r0 = result["scratch_protocol"], rows[0]
    lines = ["", "### TernaryNet vs binary vs FP32, trained from scratch (same width, placement and protocol)", "",
             f"All arms: slim U-Net base width {r0['width']}, input x{r0['scale']} (canvas 224x192 -> {224 // r0['scale']}x{192 // r0['scale']}) "
             f"{'+ SR head' if r0['scale'] > 1 else '(full resolution: no SR head)'}, trained from random weights for {r0['epochs']} epochs of {92 // 8} steps (Adam {p['lr']:g}, x{p['lr_decay']:g} per epoch; "
             f"BN frozen for the last {min(p['bn_freeze_epochs'], r0['epochs'] - 1)} epochs; best validation epoch, then BN recalibration kept "
             "only if validation improves). Ternary/binary: the activation replaces every backbone ReLU (conv -> BN -> step), "
             "hard forward, tt_beta / tanh slope as gradient, beta 3 -> 8; weights TWN ternary / sign; first conv and classifier float. "
             f"Seeds {', '.join(str(x) for x in sorted({r['seed'] for r in rows}))}; sd = sample standard deviation over seeds.", "",
             "| arm | test Dice mean ± sd | per seed | weight storage KB | x smaller | max ORT diff | activation shares -1 / 0 / +1 (test) |",
             "|---|---:|---|---:|---:|---:|---|"]
    arms = s["arms"]
    fkb = arms.get("float", {}).get("kb")
    for name, a in arms.items():
        rs = [r for r in rows if r["arm"] == name]
        per = ", ".join(f"{r['dice']:.3f}" for r in rs)
        diffs = [r["ort_diff"] for r in rs if r["ort_diff"] is not None]
        lv = [r["levels"] for r in rs if "levels" in r]
        share = " / ".join(f"{100 * sum(x[k] for x in lv) / len(lv):.0f} %" for k in ("-1", "+0", "+1")) if lv else "-"
        diff = f"{max(diffs):.4f}" if diffs else "- (not exported)"
        lines.append(f"| {a['label']} | {_pm(a['mean'], a['sd'])} | {per} | {a['kb']:.1f} | {fkb / a['kb'] if fkb else 0:.1f} | {diff} | {share} |")
    if "within_3_points" in s:
        ok = lambda b: "met" if b else "NOT met"  # noqa: E731
        lines += ["", f"Targets: ternary within 3 Dice points of FP32 of the same width: {s['gap_fp32_points']:+.2f} points, {ok(s['within_3_points'])}. "
                  f"Ternary better than binary by more than the seed sd: {s['gap_binary_points']:+.2f} points vs sd {s['max_sd_points']:.2f}, "
                  f"{ok(s['beats_binary'])}. Weight memory FP32 / ternary: {s['memory_ratio']:.1f}x (>= 10x), {ok(s['memory_ok'])}."]
    return lines


def _ms(ms: tuple | None, points: bool = False) -> str:
    """(mean, sd) as the mean, with ± sd when more than one seed ran; '-' for none."""
    if ms is None:
        return "-"
    f = (lambda v: f"{v:+.2f}") if points else (lambda v: f"{v:.4f}")  # noqa: E731
    return f(ms[0]) if math.isnan(ms[1]) else f"{f(ms[0])} ± {ms[1]:.{2 if points else 4}f}"


def tucker(result: dict, args) -> list[str]:
    from edgeseg.bench.compression_tucker import summarise

    fp, lat = result["rows"][0], result["latency"]
    if not result["tucker"]:
        return []
    ft, s = result["tucker_finetune"], summarise(result)
    o, m, epochs = lat["original"], s["matched"], result["tucker"][0]["epochs"]
    seeds = ", ".join(map(str, s["seeds"]))
    lines = ["", "### Tucker-2: post-training, fine-tuned, and the same architecture trained from scratch", "",
             f"Fine-tune: {epochs} epochs, AdamW lr {ft['lr']:g}, cosine (recipes/compress-tucker.toml). Budget-matched FP32: the "
             "FP32 model fine-tuned with the same [finetune] (epochs, lr, seed) and nothing decomposed, so the points lost compare "
             "models that had the same extra training (the base had none). Control: the "
             f"decomposed architecture from PyTorch's default init, trained for the same number of epochs with the [scratch] protocol "
             f"(Adam {result['controls'][0]['lr'] if result['controls'] else 0:g}, x0.9 per epoch). Seeds {seeds} ([finetune] seed of "
             "the fine-tune, the control and the budget-matched FP32 alike); with more than one, mean ± sample sd, and the points vs "
             "the budget-matched FP32 and vs the control are differences paired by seed. Latency: ONNX Runtime FP32, 1 thread, median of "
             f"{args.repeats} interleaved runs, batch 1 (original {o['ort_ms']:.2f} ms; one export per row, the same convs for every seed); "
             f"Nano: `edgeseg simulate` cost model of the Jetson Nano ({o['nano_precision'].upper()}, TensorRT; original {o['nano_ms']:.2f} ms), "
             f"not a measurement. Scheme: {_scheme(result)}; a row named with a key=value differs from the recipe in that key only (no control).", "",
             "| DF | convs decomposed | params | removed | MMACs | Dice post-training | Dice fine-tuned | vs FP32 (points) | "
             "vs FP32 fine-tuned (points) | scratch control | fine-tuned vs control (points) | INT8 ORT Dice | ORT ms | ORT speed-up | "
             "Nano ms (sim.) | Nano speed-up |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    if m:
        lines.append(f"| FP32 fine-tuned {epochs} ep (budget-matched) | 0 | {fp['params']:,} | 0 % | {fp['macs'] / 1e6:.1f} | - | {_ms(m)} | "
                     f"{_ms((100 * (m[0] - fp['dice']), 100 * m[1]), True)} | - | - | - | - | {o['ort_ms']:.2f} | 1.00x | "
                     f"{o['nano_ms']:.2f} | 1.00x |")
    verdicts = []
    for key, r in s["rows"].items():
        t, removed, speed = r["first"], 1 - r["first"]["params"] / fp["params"], o["ort_ms"] / lat[key]["ort_ms"]
        note = " (≈ Weber's 3-D DF 0.3 cut)" if round(100 * removed) == 88 else ""
        change = "".join(f", {k}={v}" for k, v in t.get("change", {}).items())
        lines.append(f"| {t['df']:g}{note}{change} | {t.get('decomposed', '?')} | {t['params']:,} | {100 * removed:.0f} % | {t['macs'] / 1e6:.1f} | "
                     f"{_ms(r['ptq'])} | {_ms(r['dice'])} | {_ms(r['vs_fp32'], True)} | {_ms(r['vs_matched'], True)} | "
                     f"{_ms(r['control'])} | {_ms(r['vs_control'], True)} | {_ms(r['int8'])} | "
                     f"{lat[key]['ort_ms']:.2f} | {speed:.2f}x | {lat[key]['nano_ms']:.2f} | {o['nano_ms'] / lat[key]['nano_ms']:.2f}x |")
        lost = r["vs_matched"] or r["vs_fp32"]
        missed = [w for w, ok in (("parameters", removed >= 0.75), ("points", lost[0] >= -2.0), ("speed-up", speed >= 1.5)) if not ok]
        verdicts.append(f"{key}: {100 * removed:.0f} % fewer, {_ms(lost, True)} points vs the "
                        f"{'budget-matched FP32' if r['vs_matched'] else 'FP32 base'} ({_ms(r['vs_fp32'], True)} vs the base), "
                        f"{speed:.2f}x ORT: " + ("met" if not missed else f"NOT met ({', '.join(missed)})"))
    lines += _per_seed(result, s) if len(s["seeds"]) > 1 else []
    lines += ["", "Where the time goes (ONNX Runtime's profiler, median per node summed, ms, as SR head / backbone convs / "
              "reorders / other; the SR head is not decomposed, reorders are the layout changes ORT inserts around its "
              "8-channel-blocked AVX2 conv kernels, other = pooling, resize, concat): "
              + "; ".join(f"{k} " + " / ".join(f"{v['ops_ms'][g]:.2f}" for g in ("head", "conv", "reorder", "other"))
                          for k, v in lat.items() if "ops_ms" in v) + "."]
    lines += ["", "DF in 2-D vs 3-D: a 3x3 kernel has 9 taps against 27 for 3x3x3, so the rank factor that removes a given share of "
              "parameters is smaller here; the row marked ≈ removes the share of Weber's 3-D DF 0.3 (31.19 M -> 3.69 M, 88 %). "
              "Rounding ranks up (rank_multiple) removes less at the same DF."]
    lines += [f"Targets (>= 75 % fewer parameters, <= 2 Dice points lost, ORT CPU speed-up >= 1.5x; mean over seeds {seeds}): "
              + "; ".join(verdicts) + "."]
    return lines + widths(result)


def _per_seed(result: dict, s: dict) -> list[str]:
    per = lambda vals: " / ".join(f"{v:.4f}" for v in vals)  # noqa: E731
    ctrl = {(c.get("key", c["df"]), c["seed"]): c["dice"] for c in result["controls"]}
    parts = [f"FP32 fine-tuned {per(x['dice'] for x in result['tucker_fp32_ft'])}"] if s["matched"] else []
    for key, r in s["rows"].items():
        parts.append(f"{key} fine-tuned {per(t['dice'] for t in result['tucker'] if t.get('key') == key)}")
        if r["control"]:
            parts[-1] += f", control {per(ctrl[(key, seed)] for seed in r['seeds'] if (key, seed) in ctrl)}"
    return ["", f"Per seed ({' / '.join(map(str, s['seeds']))}): " + "; ".join(parts) + "."]


def _scheme(result: dict) -> str:
    s = result.get("tucker_scheme", {})
    return ", ".join(f"{k} = {v}" for k, v in s.items() if k not in ("name", "df")) or "recipe defaults"


def widths(result: dict) -> list[str]:
    rows = result.get("tucker_widths") or []
    if not rows:
        return []
    lines = ["", "#### Wider backbones: latency only (untrained weights, nothing fine-tuned, Dice not measured)", "",
             "The same export and timing as above for a backbone of another base width, whole and decomposed with the recipe's "
             "rule at each DF (a float conv's time does not depend on its weights). A separate row, not the bench's model.", "",
             "| width | model | decomposed convs | params | removed | MMACs | ORT ms | ORT speed-up | Nano ms (sim.) | Nano speed-up |",
             "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        o = next(x for x in rows if x["width"] == r["width"] and x["df"] is None)
        lines.append(f"| {r['width']} | {'original' if r['df'] is None else 'DF %g' % r['df']} | {r['decomposed']} | {r['params']:,} | "
                     f"{100 * (1 - r['params'] / o['params']):.0f} % | {r['macs'] / 1e6:.1f} | {r['ort_ms']:.2f} | "
                     f"{o['ort_ms'] / r['ort_ms']:.2f}x | {r['nano_ms']:.2f} | {o['nano_ms'] / r['nano_ms']:.2f}x |")
    return lines


def markdown(result: dict, args) -> str:
    from edgeseg.bench.report import machine_line

    fp = result["rows"][0]
    parts = [p for p in ("fixedpoint", "ternary", "tucker") if p in args.only]
    title = "fixed-point QAT, TernaryNet vs binary, Tucker-2" if len(parts) == 3 else f"{', '.join(parts)} only (`--only`)"
    lines = [f"## Compression: {title}", "",
             f"Command: `{command(args)}`. Compute: {result['cell_seconds'] / 60:.1f} min summed over all cells (this invocation "
             f"{result['wall_seconds'] / 60:.1f} min; cells whose settings had not changed were reused from `{args.out}/cells/`), "
             f"torch {result['threads']} thread(s); 1-minute load average when each cell finished {_loads(result)} on this 2-core "
             "machine shared with other jobs. "
             f"Source: `{result['fp32_checkpoint']}` (recipe `{args.train_recipe}`, training seed {result['fp32_train_seed']}); QAT fine-tune seed "
             f"{result['seed']}, AdamW + cosine, best validation Dice kept. Dice: mean over GM and WM on the test split (16 slices) at full "
             "resolution. ORT Dice: the exported ONNX in ONNX Runtime (|difference| to PyTorch; tolerance 0.005).", "",
             f"FP32: Dice {fp['dice']:.4f}, {fp['params']:,} parameters, {fp['kb']:.1f} KB."]
    if "fixedpoint" in parts:
        lines[-1] += (f" FP32 fine-tuned {args.qat_epochs} more epochs with the same settings (the control for Xu et al.): "
                      f"Dice {result['rows'][1]['dice']:.4f}.")
        lines += [""] + fixed_point(result, args)
    lines += ternary(result, args) + tucker(result, args)
    lines += ["", "![Dice vs size](compression.png)"] if len(parts) == 3 else []
    lines += ["", machine_line()]
    return "\n".join(lines)


def plot(result: dict, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["rows"]
    fp = rows[0]
    fig, ax = plt.subplots(figsize=(8, 5))
    style = {"fixedpoint": ("o", "tab:blue", "fixed point, float scales (QAT)"), "perone": ("P", "tab:cyan", "fixed point, Perone Q-format (QAT)"),
             "fp32-ft": ("D", "tab:orange", "FP32 fine-tuned control")}
    seen = set()
    for r in rows[1:]:
        marker, color, label = style[r["group"]]
        ax.scatter(r["kb"], r["dice"], marker=marker, color=color, label=None if label in seen else label, zorder=3)
        seen.add(label)
        if r["group"] != "fp32-ft":
            ax.annotate(r["setting"], (r["kb"], r["dice"]), fontsize=7, xytext=(3, 3), textcoords="offset points")
    arms = {"float": ("*", "tab:gray", "FP32 from scratch"), "ternarynet": ("^", "tab:green", "ternary from scratch"),
            "binarynet": ("v", "tab:red", "binary from scratch")}
    r0 = result["scratch"][0] if result["scratch"] else {}
    for name, a in result["scratch_summary"]["arms"].items():
        marker, color, label = arms[name]
        label += f" (width {r0.get('width')}, x{r0.get('scale')})"
        ax.errorbar(a["kb"], a["mean"], yerr=0 if math.isnan(a["sd"]) else a["sd"], fmt=marker, color=color, label=label + " (mean ± sd)",
                    capsize=3, zorder=3)
    if result["tucker"]:
        ax.scatter([32 * t["params"] / 8 / 1024 for t in result["tucker"]], [t["dice"] for t in result["tucker"]], marker="s",
                   color="tab:purple", label="Tucker-2 fine-tuned (FP32)", zorder=3)
        for t in result["tucker"]:
            ax.annotate(f"DF {t['df']:g}", (32 * t["params"] / 8 / 1024, t["dice"]), fontsize=7, xytext=(3, -9), textcoords="offset points")
    if result["controls"]:
        ax.scatter([32 * c["params"] / 8 / 1024 for c in result["controls"]], [c["dice"] for c in result["controls"]], marker="s",
                   facecolors="none", edgecolors="tab:purple", label="Tucker architecture from scratch", zorder=3)
    ax.scatter(fp["kb"], fp["dice"], marker="*", s=200, color="black", label="FP32 baseline (width 8, x2)", zorder=4)
    ax.axhline(fp["dice"], color="black", lw=0.6, ls="--")
    ax.set_xscale("log")
    ax.set_xlabel("weight storage (KB, log scale; packed bits x params + scales)")
    ax.set_ylabel("mean foreground Dice (test split)")
    ax.set_title("Compression: Dice vs weight storage (slim U-Net + SR head, MNI152)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
