"""Loss at full resolution, recipes, checkpoints and a short real-data training run."""
import json

import pytest
import torch

from edgeseg.errors import EdgesegError
from edgeseg.train.losses import segmentation_loss, soft_dice_loss
from edgeseg.train.recipe import load_recipe


def test_loss_refuses_low_resolution_target():
    logits = torch.zeros(1, 3, 8, 8)
    with pytest.raises(ValueError, match="full resolution"):
        segmentation_loss(logits, torch.zeros(1, 4, 4, dtype=torch.long))


def test_soft_dice_perfect_and_wrong():
    target = torch.tensor([[[0, 1], [2, 2]]])
    perfect = torch.nn.functional.one_hot(target, 3).permute(0, 3, 1, 2).float() * 50
    assert soft_dice_loss(perfect, target) < 1e-3  # softmax of 50-logit one-hots is ~exact
    wrong = torch.roll(perfect, 1, dims=1)
    # all foreground wrong: per-class Dice is only the smoothing term eps/(denom+eps) = 1/3 and 1/4
    assert soft_dice_loss(wrong, target) == pytest.approx(1 - (1 / 3 + 1 / 4) / 2, abs=1e-4)


def test_recipe_rejects_unknown_key(tmp_path):
    path = tmp_path / "r.toml"
    path.write_text('[model]\nname = "unet"\nscael = 2\n')
    with pytest.raises(EdgesegError, match=r"unknown key 'scael' \(did you mean 'scale'\?\)"):
        load_recipe(path)


def test_recipe_missing_file(tmp_path):
    with pytest.raises(EdgesegError, match="not found"):
        load_recipe(tmp_path / "nope.toml")


@pytest.mark.slow
def test_short_real_training_improves_dice_and_reloads(tmp_path):
    from edgeseg.train.checkpoint import load_checkpoint
    from edgeseg.train.recipe import recipe_from_dict
    from edgeseg.train.trainer import train

    recipe = recipe_from_dict({"model": {"name": "unet", "scale": 2, "width": 4},
                               "train": {"epochs": 3, "batch_size": 8, "lr": 5e-3, "seed": 0}})
    metrics = train(recipe, out_dir=tmp_path, show_progress=False)
    # untrained nets predict one class: Dice ~0; three epochs on real slices must clearly beat that
    assert metrics["best_val_mean_foreground_dice"] > metrics["initial_val_mean_foreground_dice"] + 0.3
    assert json.loads((tmp_path / "metrics.json").read_text())["best_epoch"] >= 1
    model, loaded, ckpt = load_checkpoint(tmp_path / "model.pt")
    assert loaded.model.width == 4 and ckpt["class_names"] == ["background", "grey_matter", "white_matter"]
    torch.load(tmp_path / "model.pt", weights_only=True)  # plain data only


def test_load_checkpoint_errors(tmp_path):
    from edgeseg.train.checkpoint import load_checkpoint

    with pytest.raises(EdgesegError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "missing.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(EdgesegError, match="not an edgeseg checkpoint"):
        load_checkpoint(bad)


def test_default_recipe_names_its_normalisation_and_augments(tmp_path):
    from pathlib import Path

    recipe = load_recipe(Path(__file__).resolve().parents[1] / "recipes" / "unet-s2-brain.toml")
    s = recipe.data.slices
    assert (s.normalization, s.fit, recipe.train.augment.enabled) == ("foreground_percentile", "foreground_box", True)
    path = tmp_path / "r.toml"
    path.write_text('[train.augment]\nenabled = true\ngama = [0.5, 2.0]\n')
    with pytest.raises(EdgesegError, match=r"unknown key 'gama' \(did you mean 'gamma'\?\)"):
        load_recipe(path)


@pytest.mark.slow
def test_augmented_training_runs_and_learns(tmp_path):
    from edgeseg.train.recipe import recipe_from_dict
    from edgeseg.train.trainer import train

    recipe = recipe_from_dict({"model": {"name": "unet", "scale": 2, "width": 4},
                               "data": {"slices": {"normalization": "foreground_percentile", "fit": "foreground_box"}},
                               "train": {"epochs": 2, "batch_size": 8, "lr": 5e-3, "seed": 0, "augment": {"enabled": True}}})
    metrics = train(recipe, out_dir=tmp_path, show_progress=False)
    # two epochs of augmented series still clearly beat an untrained net (Dice ~0)
    assert metrics["best_val_mean_foreground_dice"] > metrics["initial_val_mean_foreground_dice"] + 0.2
