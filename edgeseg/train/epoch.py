"""One training epoch over in-memory low-res inputs and full-res labels (shared by training and fine-tuning)."""
from __future__ import annotations

import numpy as np
import torch

from edgeseg.train.supervision import supervision_loss


def train_one_epoch(model, x_all: torch.Tensor, y_all: torch.Tensor, *, batch_size: int, flip: bool, dice_weight: float,
                    optimiser, schedule, generator: torch.Generator, advance, supervision: str = "final") -> float:
    """Shuffle, step through full batches (left-right flips when `flip`), return the mean loss.

    `supervision`: a resolved mode of edgeseg.train.supervision (final, deep, base)."""
    loss_fn = supervision_loss(supervision)
    model.train()
    order = torch.randperm(len(x_all), generator=generator)
    losses = []
    for step in range(max(1, len(x_all) // batch_size)):
        idx = order[step * batch_size : (step + 1) * batch_size]
        x, y = x_all[idx], y_all[idx]
        if flip:
            flipped = torch.rand(len(idx), generator=generator) < 0.5
            x = torch.where(flipped[:, None, None, None], x.flip(-1), x)
            y = torch.where(flipped[:, None, None], y.flip(-1), y)
        loss = loss_fn(model, x, y, dice_weight)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        schedule.step()
        losses.append(loss.item())
        advance(loss=float(np.mean(losses)))
    return float(np.mean(losses))
