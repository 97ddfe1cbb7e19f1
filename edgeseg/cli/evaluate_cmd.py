"""edgeseg evaluate CHECKPOINT"""
from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("evaluate", help="Dice per class at full resolution on a data split",
                       description="Evaluate a checkpoint: Dice per class at full resolution, pooled over the split's slices.")
    p.add_argument("checkpoint", help="model.pt written by 'edgeseg train'")
    p.add_argument("--split", default="test", choices=["train", "val", "test"])
    p.add_argument("--data", help="data source overriding the checkpoint's (mni152 or nifti:<folder>)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run)


def run(args) -> int:
    import json
    from dataclasses import replace

    from edgeseg.train.checkpoint import load_checkpoint
    from edgeseg.train.predict import evaluate_model
    from edgeseg.train.trainer import load_splits

    model, recipe, _ = load_checkpoint(args.checkpoint)
    if args.data:
        recipe = replace(recipe, data=replace(recipe.data, source=args.data))
    sets, identity = load_splits(recipe)
    result = evaluate_model(model, sets[args.split], recipe.model.scale)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{recipe.model.name} x{recipe.model.scale} {'with' if recipe.model.sr_head else 'without'} SR head | "
          f"{identity} | split {args.split} ({result['slices']} slices), full resolution")
    for name, d in result["dice"].items():
        print(f"  {name:<16} Dice {d:.4f}")
    print(f"  {'mean foreground':<16} Dice {result['mean_foreground_dice']:.4f}")
    return 0
