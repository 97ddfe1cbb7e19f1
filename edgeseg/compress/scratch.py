"""Training a compressed architecture from random weights (TernaryNet's protocol; the Tucker control).

Adam at `lr`, multiplied by `lr_decay` after every epoch (the paper: 2.5e-3, x0.9); the scheme's
`on_epoch` before each epoch (beta); the same loss, flips and batch order as edgeseg.train. In the
last `bn_freeze_epochs` epochs BN uses and keeps its running statistics (eval-mode BN, affine still
trained), so the weights settle on the statistics the test uses. Selection on validation: the best
epoch's weights, then (`bn_recalibrate`) the same weights with BN statistics recomputed over the
training slices, kept only if validation Dice improves. The test split is never looked at here.
"""
from __future__ import annotations

import time
from dataclasses import replace

import numpy as np
import torch
from torch import nn

from edgeseg.progress import progress
from edgeseg.train.epoch import train_one_epoch
from edgeseg.train.predict import evaluate_model


def scratch_recipe(train_recipe, width: int = 0, scale: int = 0, options: dict | None = None):
    """The training recipe with the backbone width (edgeseg.train.recipe.with_width) and the input scale replaced
    (0 keeps each); `options` ([scratch.options]) are added to the backbone's keyword arguments."""
    from edgeseg.train.recipe import with_width
    from edgeseg.train.recipe_checks import check_options

    r = with_width(train_recipe, width)
    model = replace(r.model, scale=scale or r.model.scale, options={**r.model.options, **(options or {})})
    check_options(model, "scratch.options", "compression recipe")
    return replace(r, model=model)


def _bns(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def _state(model: nn.Module) -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@torch.no_grad()
def recalibrate_bn(model: nn.Module, x_all: torch.Tensor, batch_size: int) -> None:
    """BN running statistics = cumulative averages over the slices (train-mode forward, no update)."""
    bns = _bns(model)
    momenta = [b.momentum for b in bns]
    for b in bns:
        b.reset_running_stats()
        b.momentum = None
    model.train()
    try:
        for i in range(0, len(x_all), batch_size):
            model(x_all[i: i + batch_size])
    finally:
        for b, m in zip(bns, momenta):
            b.momentum = m
        model.eval()


def train_scratch(recipe, scheme, sets, cfg, ft, input_shape, show_progress: bool = True, label: str = ""):
    """`recipe`: the training recipe of the architecture (see `scratch_recipe`); cfg: ScratchConfig; ft: FinetuneConfig
    (batch size, seed, threads, flips, loss). `scheme` None = float. -> (model in eval mode, the scheme's records, info)."""
    from edgeseg.train.checkpoint import build_model
    from edgeseg.train.trainer import seed_everything

    seed_everything(ft.seed, ft.threads)
    scale = recipe.model.scale
    model = build_model(recipe, len(sets["train"].class_names))
    records = scheme.apply(model, input_shape) if scheme is not None else []
    if scheme is not None:
        scheme.scratch_init(model, records)
    x_all = torch.from_numpy(sets["train"].lowres(scale)[:, None])
    y_all = torch.from_numpy(sets["train"].label.astype(np.int64))
    steps = max(1, len(x_all) // ft.batch_size)
    optimiser = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=cfg.lr)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda step: cfg.lr_decay ** (step // steps))
    generator = torch.Generator().manual_seed(ft.seed)
    frozen: list = []
    history, best, best_epoch, best_state = [], -1.0, 0, None
    started = time.perf_counter()
    with progress(f"train from scratch {label}", cfg.epochs * steps, show_progress) as advance:
        for epoch in range(cfg.epochs):
            if scheme is not None:
                scheme.on_epoch(model, epoch, cfg.epochs)
            if cfg.bn_freeze_epochs and epoch == cfg.epochs - min(cfg.bn_freeze_epochs, cfg.epochs - 1):  # BN to eval mode at every forward from here on
                frozen.append(model.register_forward_pre_hook(lambda m, i: [b.eval() for b in _bns(m)] and None))
            loss = train_one_epoch(model, x_all, y_all, batch_size=ft.batch_size, flip=ft.flip, dice_weight=ft.dice_weight,
                                   optimiser=optimiser, schedule=schedule, generator=generator, advance=advance)
            val = evaluate_model(model, sets["val"], scale)["mean_foreground_dice"]
            history.append({"epoch": epoch + 1, "loss": loss, "val_mean_foreground_dice": val, "bn_frozen": bool(frozen)})
            if val > best:
                best, best_epoch, best_state = val, epoch + 1, _state(model)
    for h in frozen:
        h.remove()
    model.load_state_dict(best_state)
    chosen = "best epoch"
    if cfg.bn_recalibrate:
        recalibrate_bn(model, x_all, ft.batch_size)
        val = evaluate_model(model, sets["val"], scale)["mean_foreground_dice"]
        if val > best:
            best, chosen = val, "best epoch, BN recalibrated"
        else:
            model.load_state_dict(best_state)
    model.eval()
    info = {"history": history, "best_val": best, "best_epoch": best_epoch, "selected": chosen,
            "width": recipe.model.width, "scale": scale, "seconds": time.perf_counter() - started}
    return model, records, info
