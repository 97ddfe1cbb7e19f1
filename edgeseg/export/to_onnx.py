"""torch -> ONNX through the TorchScript exporter (`dynamo=False`), with the preprocessing contract attached.

Why this path: at opset 13 (the Jetson Nano's TensorRT 8.2 limit) the TorchScript exporter emits a plain
graph of Conv/ConvTranspose/Relu/Elu/MaxPool/Concat/Resize(linear, half_pixel) with batch norm folded
into the convolutions; the dynamo exporter targets opset 18 and would need a version-converter pass
down to 13. Batch axis: static N=1 by default (TensorRT 8.2 then needs no optimisation profile and
onnxsim can fold every shape); `dynamic_batch = true` gives a symbolic 'batch' axis instead.
"""
from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path

from edgeseg import __version__
from edgeseg.contract import ModelContract
from edgeseg.orientation import DISPLAY_AXES


def in_plane_spacing(spacing, axis: str) -> tuple[float, float]:
    """(row, column) spacing of display-oriented slices from an RAS volume's (x, y, z) spacing."""
    letters = {"R": 0, "L": 0, "A": 1, "P": 1, "S": 2, "I": 2}
    rows, cols = DISPLAY_AXES[axis]
    return (float(spacing[letters[rows]]), float(spacing[letters[cols]]))


def build_contract(recipe, class_names, data_identity: str, spacing, export_recipe=None, precision: str = "fp32") -> ModelContract:
    """The contract of a model trained with training `recipe` (edgeseg.train.recipe.Recipe)."""
    from edgeseg.config import recipe_hash

    s = recipe.data.slices
    scale = recipe.model.scale
    hr = tuple(int(v) for v in s.canvas)
    batch = "batch" if export_recipe is not None and export_recipe.dynamic_batch else 1
    return ModelContract(
        model_name=recipe.model.name,
        class_names=tuple(class_names),
        label_values=tuple(range(len(class_names))),
        scale=scale,
        hr_size=hr,
        input_shape=(batch, 1, hr[0] // scale, hr[1] // scale),
        sr_head=recipe.model.sr_head,
        pixel_spacing_mm=in_plane_spacing(spacing, s.axis),
        plane=s.axis,
        in_plane_axes=DISPLAY_AXES[s.axis],
        clip_percentiles=tuple(s.clip_percentiles),
        normalization=s.normalization,
        fit=s.fit,
        lowres_method=s.lowres_method,
        edgeseg_version=__version__,
        recipe_hash=recipe_hash(recipe.to_dict()),
        data_identity=data_identity,
        precision=precision,
        target=export_recipe.target if export_recipe is not None else "",
        export_recipe_hash=export_recipe.hash() if export_recipe is not None else "",
    )


def set_metadata(model, contract: ModelContract) -> None:
    """Replace the edgeseg.* metadata_props of an onnx.ModelProto with the contract's."""
    from edgeseg.contract import PREFIX

    keep = [(p.key, p.value) for p in model.metadata_props if not p.key.startswith(PREFIX)]
    del model.metadata_props[:]
    for key, value in keep + sorted(contract.to_metadata().items()):
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    model.producer_name, model.producer_version = "edgeseg", __version__


def export_onnx(model, contract: ModelContract, path: str | Path, opset: int, dynamic_batch: bool = False) -> Path:
    """Export a torch model (eval mode) taking the low-res image to full-res logits; returns the path."""
    import onnx
    import torch

    from edgeseg.export.validate import save_checked

    path = Path(path)
    _, c, h, w = contract.input_shape
    x = torch.zeros(1, int(c), int(h), int(w))
    axes = {contract.input_name: {0: "batch"}, contract.output_name: {0: "batch"}} if dynamic_batch else None
    model = model.eval()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # legacy-exporter deprecation and tracer warnings on the input check
        torch.onnx.export(model, (x,), str(path), dynamo=False, opset_version=opset, do_constant_folding=True,
                          input_names=[contract.input_name], output_names=[contract.output_name],
                          dynamic_axes=axes)
    proto = onnx.load(str(path))
    set_metadata(proto, dataclasses.replace(contract, precision="fp32"))
    return save_checked(proto, path)
