"""edgeseg export RECIPE.toml | CHECKPOINT --target T"""
from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("export", help="export a model to FP32/INT8/FP16 ONNX with a model card and verification report",
                       description="Export PyTorch -> ONNX -> onnxsim -> INT8 QDQ and FP16 ONNX, verified on real slices. "
                       "Give an export recipe (export/*.toml) or a checkpoint (model.pt) with --target.")
    p.add_argument("source", help="export recipe (.toml) or checkpoint (model.pt)")
    p.add_argument("--target", help="target runtime (default: the recipe's, or jetson-nano); see edgeseg/export/targets/")
    p.add_argument("--out", help="output folder (default: the recipe's out_dir, or <checkpoint folder>/export-<target>)")
    p.add_argument("--opset", type=int, help="ONNX opset (default: the target's)")
    p.add_argument("--method", choices=["minmax", "entropy", "percentile"], help="INT8 calibration method")
    p.add_argument("--calibration-slices", type=int, help="training slices used for INT8 calibration")
    p.add_argument("--keep-float", action="append", metavar="NODE", help="node name or glob kept in float (repeatable)")
    p.add_argument("--quiet", action="store_true", help="no progress display")
    p.set_defaults(func=run)


def run(args) -> int:
    from dataclasses import replace
    from pathlib import Path

    from edgeseg.export.pipeline import run_export
    from edgeseg.export.recipe import load_export_recipe, recipe_for_checkpoint

    if args.source.endswith(".toml"):
        recipe, base = load_export_recipe(args.source, target=args.target)
    else:
        recipe, base = recipe_for_checkpoint(args.source, args.target or "jetson-nano"), Path(".")
    quant = {"method": args.method, "calibration_slices": args.calibration_slices,
             "keep_float": tuple(args.keep_float) if args.keep_float else None}
    recipe = replace(recipe, quantize=replace(recipe.quantize, **{k: v for k, v in quant.items() if v is not None}))
    if args.target:
        recipe = replace(recipe, target=args.target)
    if args.opset:
        recipe = replace(recipe, opset=args.opset)
    if args.out:
        recipe = replace(recipe, out_dir=str(Path(args.out).resolve()))
    result = run_export(recipe, base, show_progress=not args.quiet)
    rep = result["report"]
    print(f"exported to {result['out_dir']}")
    for key, path in result["files"].items():
        d = rep["dice"][key]["mean_foreground_dice"]
        print(f"  {Path(path).name:<36} {rep['size_bytes'][key] / 1024:8.1f} KiB  test Dice {d:.4f}  "
              f"{rep['latency_ms_median_1_thread'][key]:7.2f} ms (1 thread)")
    par = rep["parity"]["max_abs_diff_vs_pytorch"]
    q = rep.get("int8", {})
    print(f"  parity vs PyTorch max |diff| {max(par.values()):.2e}; INT8 loses {q.get('dice_points_lost', 0):.2f} Dice points, "
          f"size x{q.get('size_ratio_vs_fp32', 0):.2f}, latency x{q.get('latency_ratio_vs_fp32', 0):.2f}; "
          f"report {result['out_dir']}/verification.md")
    return 0
