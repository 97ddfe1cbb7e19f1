"""Short seeded fine-tune of a compressed model (QAT, ternary continuation, Tucker recovery).

Same loss (CE + soft Dice at full resolution), flips and batch order as edgeseg.train; AdamW with a
cosine schedule from `lr`; the scheme's `on_epoch` runs before every epoch (TernaryNet's beta);
the weights with the best validation Dice are kept, as in training, the starting point (epoch 0) included.
"""
from __future__ import annotations

import time

import numpy as np
import torch

from edgeseg.train.epoch import train_one_epoch
from edgeseg.train.predict import evaluate_model
from edgeseg.progress import progress


def finetune(model, scheme, sets, scale: int, cfg, show_progress: bool = True, label: str = "") -> dict:
    """cfg: recipe.FinetuneConfig. Trains `model` in place; -> {'history', 'best_val', 'best_epoch', 'seconds'}."""
    from edgeseg.train.trainer import seed_everything

    seed_everything(cfg.seed, cfg.threads)
    train_set, val_set = sets["train"], sets["val"]
    x_all = torch.from_numpy(train_set.lowres(scale)[:, None])
    y_all = torch.from_numpy(train_set.label.astype(np.int64))
    steps = max(1, len(x_all) // cfg.batch_size)
    params = [p for p in model.parameters() if p.requires_grad]
    optimiser = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=max(1, cfg.epochs * steps))
    generator = torch.Generator().manual_seed(cfg.seed)
    # epoch 0 (the calibrated model before any update) is a candidate too: a fine-tune never ends worse on val
    best, best_epoch = evaluate_model(model, val_set, scale)["mean_foreground_dice"], 0
    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    history = [{"epoch": 0, "loss": None, "val_mean_foreground_dice": best}]
    started = time.perf_counter()
    with progress(f"fine-tune {label or scheme.label()}", cfg.epochs * steps, show_progress) as advance:
        for epoch in range(cfg.epochs):
            scheme.on_epoch(model, epoch, cfg.epochs)
            loss = train_one_epoch(model, x_all, y_all, batch_size=cfg.batch_size, flip=cfg.flip, dice_weight=cfg.dice_weight,
                                   optimiser=optimiser, schedule=schedule, generator=generator, advance=advance)
            val = evaluate_model(model, val_set, scale)["mean_foreground_dice"]
            history.append({"epoch": epoch + 1, "loss": loss, "val_mean_foreground_dice": val})
            if val > best:
                best, best_epoch = val, epoch + 1
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return {"history": history, "best_val": best, "best_epoch": best_epoch, "seconds": time.perf_counter() - started}
