"""Checkpoints: a plain dict of state_dict + recipe + facts, loadable with torch.load(weights_only=True)."""
from __future__ import annotations

from pathlib import Path

import torch

from edgeseg import __version__
from edgeseg.errors import EdgesegError
from edgeseg.io import atomic_write
from edgeseg.models import create_model
from edgeseg.train.recipe import Recipe, recipe_from_dict


def build_model(recipe: Recipe, num_classes: int, in_channels: int = 1):
    m = recipe.model
    kwargs = {**({"width": m.width} if m.width > 0 else {}), **m.options}
    return create_model(m.name, in_channels=in_channels, num_classes=num_classes, scale=m.scale, sr_head=m.sr_head, head=m.head, **kwargs)


def save_checkpoint(path: Path, model, recipe: Recipe, class_names, data_identity: str, metrics: dict) -> None:
    """Write atomically: a temporary file in the same folder, then rename."""
    payload = {
        "state_dict": model.state_dict(),
        "recipe": recipe.to_dict(),
        "class_names": list(class_names),
        "data_identity": data_identity,
        "metrics": metrics,
        "edgeseg_version": __version__,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda tmp: torch.save(payload, tmp))


def load_checkpoint(path: str | Path):
    """-> (model in eval mode, recipe, checkpoint dict). Clear errors for missing/foreign files."""
    path = Path(path)
    if not path.is_file():
        raise EdgesegError(f"{path}: checkpoint not found")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for non-checkpoint files
        raise EdgesegError(f"{path}: not an edgeseg checkpoint ({type(exc).__name__})") from exc
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt or "recipe" not in ckpt:
        raise EdgesegError(f"{path}: not an edgeseg checkpoint (no state_dict/recipe)")
    recipe = recipe_from_dict(ckpt["recipe"], f"{path} recipe")
    model = build_model(recipe, num_classes=len(ckpt["class_names"]))
    try:
        model.load_state_dict(ckpt["state_dict"])
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise EdgesegError(f"{path}: weights do not fit model '{recipe.model.name}' ({first})") from exc
    return model.eval(), recipe, ckpt


def checkpoint_or_train(ckpt_path: Path | None, train_recipe: Recipe | None, out_dir: Path | None = None,
                        show_progress: bool = True) -> Path:
    """The checkpoint to use: `ckpt_path` when it exists, else `train_recipe` trained into its folder (it must be
    named model.pt, which `edgeseg train` writes) or into `out_dir` when no path is given. The one
    train-if-missing rule of the export and the compression pipelines."""
    if ckpt_path is not None and Path(ckpt_path).is_file():
        return Path(ckpt_path)
    if train_recipe is None:
        if ckpt_path is None:
            raise EdgesegError("no checkpoint and no training recipe given")
        return Path(ckpt_path)  # load_checkpoint names the missing file
    if ckpt_path is not None and Path(ckpt_path).name != "model.pt":
        raise EdgesegError(f"{ckpt_path}: missing; to train it here name it model.pt "
                           "(edgeseg train writes <folder>/model.pt)")
    from edgeseg.train.trainer import train

    out = Path(ckpt_path).parent if ckpt_path is not None else Path(out_dir)
    train(train_recipe, out_dir=out, show_progress=show_progress)
    return out / "model.pt"
