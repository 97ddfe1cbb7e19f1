"""Tiny models and inputs for the export tests: seeded, random weights, a few kilobytes each."""
from __future__ import annotations

from pathlib import Path

import numpy as np

CLASSES = ("background", "gm", "wm")


def tiny_checkpoint(path: Path, name: str = "unet", width: int = 2, seed: int = 0, head: str = "pixelshuffle") -> Path:
    """An `edgeseg train`-style model.pt of a width-2 model (random weights, default data recipe)."""
    import torch

    from edgeseg.train.checkpoint import build_model, save_checkpoint
    from edgeseg.train.recipe import ModelConfig, Recipe

    torch.manual_seed(seed)
    recipe = Recipe(model=ModelConfig(name=name, scale=2, sr_head=True, width=width, head=head))
    save_checkpoint(path, build_model(recipe, len(CLASSES)), recipe, CLASSES, "tiny-test", {})
    return path


def tiny_contract(size: int = 16):
    from edgeseg.contract import ModelContract

    return ModelContract(model_name="unet", class_names=CLASSES, label_values=(0, 1, 2), scale=2,
                         hr_size=(2 * size, 2 * size), input_shape=(1, 1, size, size))


def random_inputs(shape, count: int, seed: int = 1) -> np.ndarray:
    """(count, 1, h, w) float32 from N(0, 1): z-scored images look like this to the model."""
    h, w = int(shape[-2]), int(shape[-1])
    return np.random.default_rng(seed).standard_normal((count, 1, h, w)).astype(np.float32)


def tiny_fp32(checkpoint: Path, folder: Path) -> tuple[Path, np.ndarray]:
    """The checkpoint as FP32 ONNX at opset 13 and 8 calibration inputs of its shape."""
    from edgeseg.export.to_onnx import build_contract, export_onnx
    from edgeseg.train.checkpoint import load_checkpoint

    model, recipe, _ = load_checkpoint(checkpoint)
    contract = build_contract(recipe, CLASSES, "tiny-test", (1.0, 1.0, 1.0))
    path = export_onnx(model, contract, Path(folder) / "tiny.fp32.onnx", opset=13)
    return path, random_inputs(contract.input_shape, 8)


class FakeSet:
    """Stands in for a SliceSet where only `lowres(scale)` is read: (n, 16, 16) seeded noise."""

    def __init__(self, n: int, size: int = 16):
        self._x = random_inputs((size, size), n)[:, 0]

    def lowres(self, scale: int) -> np.ndarray:
        return self._x
