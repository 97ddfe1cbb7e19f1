"""edgeseg compress RECIPE.toml"""
from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("compress", help="compress a trained model (fixed-point QAT, ternary, binary, Tucker)",
                       description="Compress a trained FP32 checkpoint per a TOML recipe ([source], [scheme], [finetune], "
                       "[scratch], [export]); writes model.pt, metrics.json and ONNX files. Schemes: see edgeseg/compress/registry.py.")
    p.add_argument("recipe", help="TOML recipe, e.g. recipes/compress-w4a6.toml")
    p.add_argument("--out", help="output folder (default: out_dir of the recipe)")
    p.add_argument("--epochs", type=int, help="override [finetune].epochs (0 = post-training only), or [scratch].epochs when enabled")
    p.set_defaults(func=run)


def run(args) -> int:
    from dataclasses import replace

    from edgeseg.compress.pipeline import compress
    from edgeseg.compress.recipe import load_compress_recipe

    recipe = load_compress_recipe(args.recipe)
    if args.epochs is not None and recipe.scratch.enabled:
        recipe = replace(recipe, scratch=replace(recipe.scratch, epochs=args.epochs))
    elif args.epochs is not None:
        recipe = replace(recipe, finetune=replace(recipe.finetune, epochs=args.epochs))
    m = compress(recipe, out_dir=args.out)
    fp = m["fp32"]
    start = "trained from scratch" if m["post_training_test_dice"] is None else f"post-training {m['post_training_test_dice']:.4f}"
    print(f"{m['label']}: test Dice {m['test_dice']:.4f} ({start}, FP32 checkpoint {fp['test_dice']:.4f}); "
          f"storage {m['storage']['kb']:.1f} KB vs FP32 {fp['storage']['kb']:.1f} KB ({fp['storage']['bits'] / m['storage']['bits']:.1f}x); "
          f"params {m['parameters']:,} vs {fp['parameters']:,}; MACs {m['macs'] / 1e6:.1f}M vs {fp['macs'] / 1e6:.1f}M")
    for key, f in m.get("onnx", {}).get("files", {}).items():
        print(f"  {f['file']}: ORT test Dice {f['ort_test_dice']:.4f} (|diff| {f['abs_diff']:.4f}, {'ok' if f['ok'] else 'OVER TOLERANCE'}), {f['kb']:.1f} KB")
    print(f"saved {args.out or recipe.out_dir}/model.pt, metrics.json")
    return 0
