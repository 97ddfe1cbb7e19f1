"""The training recipe: TOML tables [model], [data], [train] as frozen dataclasses."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from edgeseg.config import from_dict, read_toml, to_dict
from edgeseg.data.augment import AugmentConfig
from edgeseg.data.slices import SliceConfig


@dataclass(frozen=True)
class ModelConfig:
    name: str = "unet"
    scale: int = 2
    sr_head: bool = True
    head: str = "pixelshuffle"  # SR head by registry name (edgeseg.models: pixelshuffle, jnet, jnet-authors)
    width: int = 0  # 0 = the backbone's own default width
    options: dict = field(default_factory=dict)  # [model.options]: further keyword arguments of the backbone (unet: top_width)


@dataclass(frozen=True)
class DataConfig:
    source: str = "mni152"
    slices: SliceConfig = field(default_factory=SliceConfig)


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 40
    batch_size: int = 8
    lr: float = 3e-3
    weight_decay: float = 1e-4
    seed: int = 0
    threads: int = 2
    flip: bool = True  # left-right flips as augmentation
    dice_weight: float = 1.0  # loss = CE + dice_weight * soft Dice (both at full resolution)
    supervision: str = "auto"  # final | deep | base | auto (edgeseg.train.supervision; auto = deep for J-Net heads)
    out_dir: str = "runs/default"
    augment: AugmentConfig = field(default_factory=AugmentConfig)  # [train.augment]: series-level augmentation
    clean_epochs: int = 0  # then this many epochs on the un-augmented slices (edgeseg.train.clean_stage)
    clean_lr: float = 3e-4  # its starting learning rate (cosine to 0)


@dataclass(frozen=True)
class Recipe:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict:
        return to_dict(self)


def load_recipe(path: str | Path) -> Recipe:
    """Read a TOML recipe; unknown tables or keys, and values training cannot use (recipe_checks), are an error
    naming the file and key."""
    from edgeseg.train.recipe_checks import check_recipe

    recipe = from_dict(Recipe, read_toml(path), str(path))
    check_recipe(recipe, str(path))
    return recipe


def with_width(recipe: Recipe, width: int) -> Recipe:
    """The recipe at another backbone width (0 keeps it). The backbone's [model.options] are dropped on a change:
    they were chosen for the recipe's width (unet's top_width = 16 next to width 8), so a wider or narrower
    architecture (compression controls, TernaryNet's base width) starts from the backbone's defaults."""
    import dataclasses

    if not width or width == recipe.model.width:
        return recipe
    return dataclasses.replace(recipe, model=dataclasses.replace(recipe.model, width=width, options={}))


def recipe_from_dict(data: dict, where: str = "recipe") -> Recipe:
    return from_dict(Recipe, data, where)
