"""Seeded training loop: low-res input, loss at full resolution, best-val-Dice checkpoint + metrics JSON."""
from __future__ import annotations

import json
import random
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from edgeseg.data import load_data, load_source
from edgeseg.preprocess import lowres_input
from edgeseg.train.checkpoint import build_model, save_checkpoint
from edgeseg.train.epoch import train_one_epoch
from edgeseg.train.predict import evaluate_model
from edgeseg.train.recipe import Recipe
from edgeseg.train.supervision import resolve_supervision
from edgeseg.progress import progress


def seed_everything(seed: int, threads: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True, warn_only=True)


def load_splits(recipe: Recipe):
    """-> (slice sets, data identity): edgeseg.data.load_data without the spacing."""
    sets, identity, _ = load_data(recipe)
    return sets, identity


def _sampler(recipe: Recipe):
    """Augmented-series sampler over the recipe's volumes (edgeseg.data.series_sampler)."""
    from edgeseg.data.series_sampler import SeriesSampler

    return SeriesSampler(load_source(recipe.data.source), recipe.data.slices, recipe.train.augment, recipe.train.seed)


def train(recipe: Recipe, out_dir: str | Path | None = None, show_progress: bool = True, splits=None) -> dict:
    """Train per recipe; writes <out_dir>/model.pt and metrics.json, returns the metrics dict.

    `splits` (from `load_splits`) may be passed to reuse loaded data across runs.
    """
    cfg = recipe.train
    out = Path(out_dir or cfg.out_dir)
    if out_dir is not None:
        recipe = replace(recipe, train=replace(cfg, out_dir=str(out)))
    seed_everything(cfg.seed, cfg.threads)
    (sets, identity) = splits if splits is not None else load_splits(recipe)
    train_set, val_set = sets["train"], sets["val"]
    scale = recipe.model.scale
    num_classes = len(train_set.class_names)
    model = build_model(recipe, num_classes)
    supervision = resolve_supervision(cfg.supervision, model)

    x_all = torch.from_numpy(train_set.lowres(scale)[:, None])
    y_all = torch.from_numpy(train_set.label.astype(np.int64))
    steps_per_epoch = max(1, len(x_all) // cfg.batch_size)
    optimiser = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=cfg.lr, total_steps=cfg.epochs * steps_per_epoch, pct_start=0.15)
    generator = torch.Generator().manual_seed(cfg.seed)
    sampler = _sampler(recipe) if cfg.augment.enabled else None

    initial = evaluate_model(model, val_set, scale)["mean_foreground_dice"]
    history, best, best_epoch = [], -1.0, -1
    started = time.perf_counter()
    with progress(f"train {recipe.model.name} x{scale}{' +SR' if model.sr_head is not None else ''}", cfg.epochs * steps_per_epoch, show_progress) as advance:
        for epoch in range(cfg.epochs):
            if sampler is not None:  # a fresh augmented draw of the training slices, same count
                hr, lab = sampler.epoch(epoch, len(train_set), cfg.batch_size)
                x_all, y_all = torch.from_numpy(lowres_input(hr, scale, train_set.lowres_method)[:, None]), torch.from_numpy(lab.astype(np.int64))
            loss = train_one_epoch(model, x_all, y_all, batch_size=cfg.batch_size, flip=cfg.flip, dice_weight=cfg.dice_weight,
                                   optimiser=optimiser, schedule=schedule, generator=generator, supervision=supervision,
                                   advance=lambda **f: advance(**f, val_dice=max(best, 0.0)))
            val = evaluate_model(model, val_set, scale)["mean_foreground_dice"]
            history.append({"epoch": epoch + 1, "loss": loss, "val_mean_foreground_dice": val})
            if val > best:
                best, best_epoch = val, epoch + 1
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    model.load_state_dict(best_state)
    if cfg.clean_epochs:
        from edgeseg.train.clean_stage import clean_stage

        best, clean_epoch, clean_history = clean_stage(model, recipe, sets, supervision, best)
        history += clean_history
        best_epoch = clean_epoch or best_epoch
    metrics = {
        "model": recipe.model.name,
        "scale": scale,
        "sr_head": model.sr_head is not None,
        "parameters": sum(p.numel() for p in model.parameters()),
        "head": recipe.model.head if model.sr_head is not None else "",
        "head_parameters": model.head_parameters(),
        "supervision": supervision,
        "initial_val_mean_foreground_dice": initial,
        "best_val_mean_foreground_dice": best,
        "best_epoch": best_epoch,
        "train_seconds": time.perf_counter() - started,
        "history": history,
        "test": evaluate_model(model, sets["test"], scale),
        "data_identity": identity,
    }
    _save(out, model, recipe, train_set.class_names, identity, metrics)
    return metrics


def train_clean_stage_from(recipe: Recipe, first_stage: str | Path, out_dir: str | Path) -> dict:
    """Run only the clean stage of `recipe` on `first_stage`, a checkpoint its first stage wrote (the same recipe
    with no clean stage): the same weights `train(recipe)` ends with, without repeating the augmented epochs."""
    from edgeseg.errors import EdgesegError
    from edgeseg.train.checkpoint import load_checkpoint
    from edgeseg.train.clean_stage import clean_stage

    cfg = recipe.train
    model, first_recipe, ckpt = load_checkpoint(first_stage)
    plain = replace(recipe, train=replace(cfg, clean_epochs=0, clean_lr=first_recipe.train.clean_lr,
                                          out_dir=first_recipe.train.out_dir))
    if not cfg.clean_epochs or plain.to_dict() != first_recipe.to_dict():
        raise EdgesegError(f"{first_stage}: not the first stage of this recipe (its recipe differs in more than "
                           "[train] clean_epochs / clean_lr, or the recipe has no clean stage)")
    out = Path(out_dir)
    recipe = replace(recipe, train=replace(cfg, out_dir=str(out)))
    seed_everything(cfg.seed, cfg.threads)
    (sets, identity) = load_splits(recipe)
    first = ckpt["metrics"]
    started = time.perf_counter()
    best, clean_epoch, history = clean_stage(model, recipe, sets, resolve_supervision(cfg.supervision, model),
                                             first["best_val_mean_foreground_dice"])
    metrics = dict(first, history=first["history"] + history, best_val_mean_foreground_dice=best,
                   best_epoch=clean_epoch or first["best_epoch"],
                   train_seconds=first["train_seconds"] + time.perf_counter() - started,
                   test=evaluate_model(model, sets["test"], recipe.model.scale))
    _save(out, model, recipe, sets["train"].class_names, identity, metrics)
    return metrics


def _save(out: Path, model, recipe: Recipe, class_names, identity: str, metrics: dict) -> None:
    """model.pt and metrics.json of a finished training run."""
    save_checkpoint(out / "model.pt", model, recipe, class_names, identity, metrics)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
