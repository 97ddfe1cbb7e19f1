"""The clean stage after augmented training ([train] clean_epochs, edgeseg/train/clean_stage.py): it runs, keeps
the best validation epoch, and `edgeseg train --first-stage` on a saved first stage ends with the same weights
as one `train()` of the whole recipe (the claim the release relies on)."""
import pytest
import torch

from edgeseg.errors import EdgesegError
from edgeseg.train.recipe import recipe_from_dict

BASE = {"model": {"name": "unet", "scale": 2, "width": 4},
        "data": {"slices": {"canvas": [96, 80]}},
        "train": {"epochs": 1, "batch_size": 8, "lr": 5e-3, "seed": 0, "threads": 1}}


def recipe(clean_epochs):
    return recipe_from_dict({**BASE, "train": {**BASE["train"], "clean_epochs": clean_epochs, "clean_lr": 1e-3}})


def test_clean_stage_equals_first_stage_then_clean_stage(tmp_path):
    from edgeseg.train.trainer import train, train_clean_stage_from

    whole = train(recipe(2), out_dir=tmp_path / "whole", show_progress=False)
    assert [h.get("stage") for h in whole["history"]] == [None, "clean", "clean"]
    assert [h["epoch"] for h in whole["history"]] == [1, 2, 3]
    vals = [h["val_mean_foreground_dice"] for h in whole["history"]]
    assert whole["best_val_mean_foreground_dice"] == pytest.approx(max(vals), abs=0)
    train(recipe(0), out_dir=tmp_path / "first", show_progress=False)
    staged = train_clean_stage_from(recipe(2), tmp_path / "first" / "model.pt", tmp_path / "staged")
    a = torch.load(tmp_path / "whole" / "model.pt", weights_only=True)["state_dict"]
    b = torch.load(tmp_path / "staged" / "model.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert staged["test"] == whole["test"] and staged["best_epoch"] == whole["best_epoch"]


def test_first_stage_of_another_recipe_is_refused(tmp_path):
    from edgeseg.train.trainer import train, train_clean_stage_from

    train(recipe(0), out_dir=tmp_path / "first", show_progress=False)
    other = recipe_from_dict({**BASE, "train": {**BASE["train"], "lr": 1e-3, "clean_epochs": 2}})
    with pytest.raises(EdgesegError, match="not the first stage of this recipe"):
        train_clean_stage_from(other, tmp_path / "first" / "model.pt", tmp_path / "x")
    with pytest.raises(EdgesegError, match="not the first stage of this recipe"):
        train_clean_stage_from(recipe(0), tmp_path / "first" / "model.pt", tmp_path / "x")
