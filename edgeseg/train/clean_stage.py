"""The clean fine-tuning stage after augmented training (`[train] clean_epochs`).

Augmented training (edgeseg.data.augment) buys robustness to acquisition at the price of some accuracy on
series that look like the training volume; a few epochs on the un-augmented training slices at a small,
cosine-decaying learning rate win that back (issue #12: test split 0.9394 -> 0.945 measured on the v2
weights) while the robustness variants are checked by `edgeseg bench robustness`. The stage starts from the
best weights of the first stage, with a fresh optimiser and its own seeded generator, so it is the same
whether it runs inside `edgeseg train` or on a saved checkpoint (`edgeseg train --clean-stage-from`)."""
from __future__ import annotations

import numpy as np
import torch

from edgeseg.train.epoch import train_one_epoch
from edgeseg.train.predict import evaluate_model


def clean_stage(model, recipe, sets, supervision: str, best: float, advance=lambda **f: None) -> tuple[float, int | None, list]:
    """Fine-tune `model` in place for recipe.train.clean_epochs on the clean training slices; keep the epoch with
    the best validation Dice (the incoming weights when none beats `best`). Returns (best val Dice, its epoch or None when no clean epoch
    beat `best`, history)."""
    cfg, scale = recipe.train, recipe.model.scale
    x_all = torch.from_numpy(sets["train"].lowres(scale)[:, None])
    y_all = torch.from_numpy(sets["train"].label.astype(np.int64))
    steps = max(1, len(x_all) // cfg.batch_size)
    optimiser = torch.optim.AdamW(model.parameters(), lr=cfg.clean_lr, weight_decay=cfg.weight_decay)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, cfg.clean_epochs * steps)
    generator = torch.Generator().manual_seed(cfg.seed + 1)
    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    history, best_epoch = [], None
    for epoch in range(cfg.clean_epochs):
        loss = train_one_epoch(model, x_all, y_all, batch_size=cfg.batch_size, flip=cfg.flip,
                               dice_weight=cfg.dice_weight, optimiser=optimiser, schedule=schedule,
                               generator=generator, supervision=supervision, advance=advance)
        val = evaluate_model(model, sets["val"], scale)["mean_foreground_dice"]
        history.append({"epoch": cfg.epochs + epoch + 1, "stage": "clean", "loss": loss, "val_mean_foreground_dice": val})
        if val > best:
            best, best_epoch = val, cfg.epochs + epoch + 1
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    model.load_state_dict(best_state)
    return best, best_epoch, history
