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
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # legacy-exporter deprecation and tracer warnings
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


def export_threshold_model(path: str | Path, contract: ModelContract | None = None) -> Path:
    """A hand-built ONNX model (no torch): bilinear x`scale` upsampling of the normalised input, then
    per-class linear logits, so classes follow intensity: dark -> 0, mid -> 1, bright -> 2. Gives
    non-trivial masks for exact end-to-end comparisons."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    contract = contract or make_contract()
    h, w = contract.lr_size
    s = float(contract.scale)
    inits = [numpy_helper.from_array(np.zeros(0, np.float32), "roi"),
             numpy_helper.from_array(np.array([1, 1, s, s], np.float32), "scales"),
             numpy_helper.from_array(np.array([-3, 0, 3], np.float32).reshape(3, 1, 1, 1), "w"),
             numpy_helper.from_array(np.array([-2, 0, -2], np.float32), "b")]
    nodes = [helper.make_node("Resize", [contract.input_name, "roi", "scales"], ["up"], mode="linear",
                              coordinate_transformation_mode="half_pixel"),
             helper.make_node("Conv", ["up", "w", "b"], [contract.output_name])]
    graph = helper.make_graph(
        nodes, "threshold",
        [helper.make_tensor_value_info(contract.input_name, TensorProto.FLOAT, ["batch", 1, h, w])],
        [helper.make_tensor_value_info(contract.output_name, TensorProto.FLOAT, ["batch", 3, h * 2, w * 2])],
        inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    for key, value in contract.to_metadata().items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(path))
    return Path(path)


SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample-mr-brain"


def sample_datasets(n: int | None = None, step: int = 1):
    """The bundled sample series (full datasets), optionally a subset."""
    import pydicom

    files = sorted(SAMPLE.glob("*.dcm"))[::step]
    return [pydicom.dcmread(f) for f in (files[:n] if n else files)]


def new_series(datasets, tag: str):
    """Give datasets a fresh (deterministic) series and instance UIDs so they form their own series."""
    from pydicom.uid import generate_uid

    series = generate_uid(entropy_srcs=["edgeseg-test", tag])
    for i, ds in enumerate(datasets):
        ds.SeriesInstanceUID = series
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid(entropy_srcs=["edgeseg-test", tag, str(i)])
    return datasets


def write_series(folder: Path, datasets) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, ds in enumerate(datasets):
        p = folder / f"IM{i:04d}.dcm"
        ds.save_as(p, enforce_file_format=False)
        paths.append(p)
    return paths
