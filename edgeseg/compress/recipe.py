"""The compression recipe: [source], [scheme], [finetune], [scratch], [export] (TOML -> frozen dataclasses).

Paths are relative to the current directory, like a training recipe's out_dir. The [scheme] table is
`name = "<scheme>"` plus that scheme's own keys (see edgeseg/compress/schemes.py); unknown keys are
errors naming the key.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from edgeseg.config import from_dict, read_toml, to_dict


@dataclass(frozen=True)
class SourceConfig:
    checkpoint: str = "runs/unet-s2-brain/model.pt"  # the trained FP32 model
    train_recipe: str = ""  # trains the checkpoint first when it is missing (it must then be <folder>/model.pt)
    width: int = 0  # > 0: the FP32 model at this backbone width (train_recipe trained with it; another width refused)


@dataclass(frozen=True)
class FinetuneConfig:
    epochs: int = 4                # 0 = post-training only
    lr: float = 1e-3
    batch_size: int = 8
    weight_decay: float = 0.0
    dice_weight: float = 1.0
    flip: bool = True
    seed: int = 0
    threads: int = 2
    calibration_batches: int = 4   # training batches for activation ranges before fine-tuning


@dataclass(frozen=True)
class ScratchConfig:
    """Train the scheme's model from random weights (TernaryNet's protocol) instead of compressing the checkpoint.

    Batch size, seed, threads, flips and the loss weights come from [finetune]."""
    enabled: bool = False
    width: int = 0                 # backbone base width; 0 = the training recipe's
    scale: int = 0                 # input downsampling factor (SR head factor); 0 = the training recipe's
    epochs: int = 30
    lr: float = 2.5e-3             # Adam
    lr_decay: float = 0.9          # lr x this after every epoch (TernaryNet: 0.9)
    bn_freeze_epochs: int = 3      # the last epochs run with BN statistics frozen (eval-mode BN); at most epochs - 1
    bn_recalibrate: bool = True    # candidate: BN statistics recomputed on the training slices; kept if validation improves
    options: dict = field(default_factory=dict)  # [scratch.options]: backbone keyword arguments (unet: pool = "avg")

    def __post_init__(self):
        if self.epochs < 1 or not 0 < self.lr_decay <= 1 or self.bn_freeze_epochs < 0:
            raise ValueError("[scratch] needs epochs >= 1, 0 < lr_decay <= 1, bn_freeze_epochs >= 0")


@dataclass(frozen=True)
class ExportConfig:
    onnx: bool = True              # write the compressed ONNX and check its Dice in ONNX Runtime
    opset: int = 13
    int4: bool = False             # also an opset-21 copy with INT4 weight initializers where they fit
    dice_tolerance: float = 0.005  # |Dice(ORT) - Dice(PyTorch)| allowed on the test split


@dataclass(frozen=True)
class CompressRecipe:
    scheme: dict = field(default_factory=lambda: {"name": "fixedpoint"})
    source: SourceConfig = field(default_factory=SourceConfig)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    scratch: ScratchConfig = field(default_factory=ScratchConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    out_dir: str = "runs/compress"

    def __post_init__(self):
        from edgeseg.compress.registry import make_scheme

        make_scheme(self.scheme)  # validate name and keys now, with the recipe's error message

    def make_scheme(self):
        from edgeseg.compress.registry import make_scheme

        return make_scheme(self.scheme)

    def to_dict(self) -> dict:
        return to_dict(self)


def load_compress_recipe(path: str | Path) -> CompressRecipe:
    """The recipe at `path`; [scratch.options] are checked here against the backbone of [source] train_recipe
    (when it names a file), so a bad option fails before any checkpoint or data is loaded, naming this file."""
    recipe = from_dict(CompressRecipe, read_toml(path), str(path))
    if recipe.scratch.options and recipe.source.train_recipe and Path(recipe.source.train_recipe).is_file():
        from dataclasses import replace

        from edgeseg.train.recipe import load_recipe
        from edgeseg.train.recipe_checks import check_options

        model = load_recipe(recipe.source.train_recipe).model
        check_options(replace(model, options={**model.options, **recipe.scratch.options}), "scratch.options", str(path))
    return recipe


def compress_recipe_from_dict(data: dict, where: str = "compression recipe") -> CompressRecipe:
    return from_dict(CompressRecipe, data, where)
