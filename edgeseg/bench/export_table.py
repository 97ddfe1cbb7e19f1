"""FP32 / FP16 / INT8 ONNX per backbone with the SR head: size, test Dice, CPU latency (one thread), one run.

Every registered backbone is trained briefly at scale 2 with the SR head (same base recipe; the base
recipe's width for its own backbone, each other backbone's default width), exported with the export
pipeline (opset 13, INT8 QDQ per-channel, FP16 with float32 IO), and timed with ONNX Runtime on the CPU,
one intra-op thread, median over repeats interleaved across all models so they share machine conditions.
Checkpoints and exports are cached under --out.
"""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

PRECISIONS = {"fp32-sim": "FP32", "fp16": "FP16", "int8": "INT8"}


def add_arguments(p) -> None:
    p.add_argument("--models", nargs="*", help="backbones (default: all registered)")
    p.add_argument("--epochs", type=int, default=10, help="training epochs per backbone (short: this is about export)")
    p.add_argument("--recipe", default="recipes/unet-s2-brain.toml", help="base training recipe (model name/head/scale overridden)")
    p.add_argument("--method", default="minmax", choices=["minmax", "entropy", "percentile"], help="INT8 calibration")
    p.add_argument("--calibration-slices", type=int, default=32)
    p.add_argument("--out", default="runs/bench-export")
    p.add_argument("--retrain", action="store_true", help="ignore cached checkpoints")
    p.add_argument("--repeats", type=int, default=30, help="timed runs per model and precision")
    p.add_argument("--docs", default="docs/BENCHMARKS.md")


def _interleaved_latency(paths: dict, x, repeats: int) -> dict:
    from edgeseg.ort import cpu_session, interleaved_medians

    sessions = {k: cpu_session(p, threads=1) for k, p in paths.items()}
    return interleaved_medians(sessions, {k: {s.get_inputs()[0].name: x[k]} for k, s in sessions.items()}, repeats)[0]


def run(args) -> int:
    import numpy as np

    from edgeseg.bench.report import write_section
    from edgeseg.export.pipeline import load_data, run_export
    from edgeseg.export.recipe import ExportRecipe, QuantizeConfig, SourceConfig, VerifyConfig
    from edgeseg.models import list_models
    from edgeseg.train.recipe import load_recipe
    from edgeseg.train.trainer import train

    base = load_recipe(args.recipe)
    names = args.models or list_models()
    data = load_data(base)
    sets, identity, _ = data
    rows, paths, inputs = [], {}, {}
    for name in names:
        own = name == base.model.name  # the recipe's width and [model.options] are its backbone's, not another's
        recipe = replace(base, model=replace(base.model, name=name, scale=2, sr_head=True,
                                             width=base.model.width if own else 0, options=base.model.options if own else {}),
                         train=replace(base.train, epochs=args.epochs))
        out = Path(args.out) / name
        if args.retrain or not (out / "model.pt").is_file():
            train(recipe, out_dir=out, show_progress=True, splits=(sets, identity))
        metrics = json.loads((out / "metrics.json").read_text())
        export = ExportRecipe(name=name, out_dir=str((out / "export").resolve()), source=SourceConfig(checkpoint=str((out / "model.pt").resolve())),
                              quantize=QuantizeConfig(method=args.method, calibration_slices=args.calibration_slices),
                              verify=VerifyConfig(latency_runs=3, per_layer_on_failure=False))
        result = run_export(export, ".", show_progress=True, data=data)
        rep = result["report"]
        x = np.ascontiguousarray(sets["test"].lowres(2)[:1, None], dtype=np.float32)
        for key in PRECISIONS:
            paths[(name, key)], inputs[(name, key)] = result["files"][key], x
        rows.append({"model": name, "parameters": metrics["parameters"], "dice": rep["dice"], "size": rep["size_bytes"]})
    latency = _interleaved_latency(paths, inputs, args.repeats)
    write_section("export", _markdown(rows, latency, args, len(sets["test"])), args.docs)
    print(_markdown(rows, latency, args, len(sets["test"])))
    return 0


def _markdown(rows, latency, args, test_slices) -> str:
    from edgeseg.bench.report import machine_line

    cmd = f"edgeseg bench export --epochs {args.epochs} --method {args.method} --calibration-slices {args.calibration_slices} --repeats {args.repeats}"
    head = "| backbone + SR head | params | " + " | ".join(f"{p} KiB" for p in PRECISIONS.values()) + " | PyTorch Dice | " + \
        " | ".join(f"{p} Dice" for p in PRECISIONS.values()) + " | " + " | ".join(f"{p} ms" for p in PRECISIONS.values()) + " |"
    lines = ["## Export: FP32 / FP16 / INT8 ONNX per backbone", "",
             f"Command: `{cmd}`", "",
             f"Scale 2 with the SR head, {args.epochs} training epochs each (short on purpose: this table is about what export "
             f"costs, not the best Dice). Dice: mean foreground on the test split ({test_slices} slices, full resolution). "
             f"Size: ONNX file (FP32 = simplified). Latency: ONNX Runtime CPU, 1 thread, one slice, median of {args.repeats} runs "
             "interleaved across all rows. INT8: static QDQ, per-channel weights, symmetric int8 activations, "
             f"{args.method} calibration on {args.calibration_slices} training slices; FP16 keeps float32 IO.", "",
             head, "|---|---:|" + "---:|" * (3 * len(PRECISIONS) + 1)]
    for r in rows:
        cells = [f"{r['size'][k] / 1024:.1f}" for k in PRECISIONS] + [f"{r['dice']['pytorch']['mean_foreground_dice']:.4f}"]
        cells += [f"{r['dice'][k]['mean_foreground_dice']:.4f}" for k in PRECISIONS]
        cells += [f"{latency[(r['model'], k)]:.2f}" for k in PRECISIONS]
        lines.append(f"| {r['model']} | {r['parameters']:,} | " + " | ".join(cells) + " |")
    return "\n".join(lines + ["", machine_line()])
