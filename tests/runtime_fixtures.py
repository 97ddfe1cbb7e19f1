"""Helpers for the runtime tests: tiny self-describing ONNX models and small DICOM series (tmp files only)."""
from __future__ import annotations

from pathlib import Path

from edgeseg.contract import ModelContract

CLASS_NAMES = ("background", "grey_matter", "white_matter")


def make_contract(**overrides) -> ModelContract:
    base = dict(model_name="unet", class_names=CLASS_NAMES, label_values=(0, 1, 2), scale=2, hr_size=(224, 192),
                input_shape=("batch", 1, 112, 96), pixel_spacing_mm=(1.0, 1.0), modality="MR")
    base.update(overrides)
    return ModelContract(**base)


def export_tiny_model(path: str | Path, contract: ModelContract | None = None, width: int = 2, seed: int = 0,
                      metadata: bool = True, dynamic_batch: bool = True) -> Path:
    """A random-weight unet (backbone + SR head) exported to ONNX with the contract in metadata_props."""
    import onnx
    import torch

    from edgeseg.models import create_model

    contract = contract or make_contract()
    torch.manual_seed(seed)
    model = create_model(contract.model_name, 1, len(contract.class_names), contract.scale, width=width).eval()
    h, w = contract.lr_size
    x = torch.randn(1, 1, h, w)
    path = Path(path)
    kwargs = dict(input_names=[contract.input_name], output_names=[contract.output_name], opset_version=13)
    if dynamic_batch:
        kwargs["dynamic_axes"] = {contract.input_name: {0: "batch"}, contract.output_name: {0: "batch"}}
    try:
        torch.onnx.export(model, (x,), str(path), dynamo=False, **kwargs)
    except TypeError:  # older torch without the dynamo flag
        torch.onnx.export(model, (x,), str(path), **kwargs)
    proto = onnx.load(str(path))
    if metadata:
        for key, value in contract.to_metadata().items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, value
    onnx.save(proto, str(path))
    return path
