"""edgeseg train RECIPE.toml"""
from __future__ import annotations

import json


def register(sub) -> None:
    p = sub.add_parser("train", help="train a model from a TOML recipe",
                       description="Train a model from a TOML recipe ([model], [data], [train] tables). "
                       "Data sources: 'mni152' (built in) or 'nifti:<folder>' with imagesTr/ and labelsTr/.")
    p.add_argument("recipe", help="TOML recipe, e.g. recipes/unet-s2-brain.toml")
    p.add_argument("--out", help="output folder (default: [train].out_dir of the recipe)")
    p.add_argument("--epochs", type=int, help="override [train].epochs")
    p.add_argument("--first-stage", metavar="CKPT", help="a checkpoint of this recipe's first stage (no clean stage): "
                   "run only the clean stage ([train] clean_epochs) on it")
    p.set_defaults(func=run)


def run(args) -> int:
    from dataclasses import replace

    from edgeseg.train.recipe import load_recipe
    from edgeseg.train.trainer import train, train_clean_stage_from

    recipe = load_recipe(args.recipe)
    if args.epochs:
        recipe = replace(recipe, train=replace(recipe.train, epochs=args.epochs))
    if args.first_stage:
        metrics = train_clean_stage_from(recipe, args.first_stage, args.out or recipe.train.out_dir)
    else:
        metrics = train(recipe, out_dir=args.out)
    out = args.out or recipe.train.out_dir
    test = metrics["test"]
    print(f"saved {out}/model.pt  val Dice {metrics['best_val_mean_foreground_dice']:.4f} (epoch {metrics['best_epoch']}), "
          f"test mean foreground Dice {test['mean_foreground_dice']:.4f}  [{json.dumps(test['dice'])}]")
    return 0
