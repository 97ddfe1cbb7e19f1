"""The preprocessing contract stored in an ONNX model's metadata_props (numpy-free, torch-free).

Everything the runner needs to turn a DICOM series into the model's input and the output back
into a mask lives here; the runner never guesses. Keys are stored as `edgeseg.<field>` with JSON
values so any ONNX tool shows them.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

from edgeseg.errors import EdgesegError

PREFIX = "edgeseg."


@dataclass(frozen=True)
class ModelContract:
    model_name: str                     # registry backbone name
    class_names: tuple[str, ...]        # index i of the output channel = label value label_values[i]
    label_values: tuple[int, ...]
    scale: int                          # low-resolution factor: input is (H/scale, W/scale)
    hr_size: tuple[int, int]            # (H, W) of the full-resolution grid the output lives on
    input_name: str = "image_lowres"
    output_name: str = "logits"
    input_shape: tuple[int, ...] = ()   # NCHW of the low-resolution input (N may be a symbolic batch)
    output: str = "logits"              # output holds full-resolution class logits; argmax over axis 1
    sr_head: bool = True
    pixel_spacing_mm: tuple[float, float] = (1.0, 1.0)  # spacing of the full-resolution grid
    modality: str = "MR"
    sequence: str = "T1w"
    plane: str = "axial"
    in_plane_axes: tuple[str, str] = ("P", "L")  # where rows / columns point (see orientation.py)
    normalization: str = "percentile_zscore"   # edgeseg.preprocess.NORMALIZATIONS: percentile_zscore (v1: clip to
    #   series percentiles, z-score) or foreground_percentile (background median -> 0, foreground p99 -> 1)
    clip_percentiles: tuple[float, float] = (0.5, 99.5)
    normalization_scope: str = "volume"
    lowres_method: str = "area_average"        # how the input is made from the full-res grid
    fit: str = "center_crop_or_pad"             # edgeseg.preprocess.FITS: canvas on the image centre (v1) or on
    #   the foreground's bounding box (foreground_box); the mask goes back onto the source pixels either way
    edgeseg_version: str = ""
    recipe_hash: str = ""
    data_identity: str = ""
    precision: str = "fp32"
    target: str = ""                    # runtime the export was checked for (edgeseg/export/targets/<target>.toml)
    export_recipe_hash: str = ""        # hash of the export recipe (recipe_hash is the training recipe's)

    def to_metadata(self) -> dict[str, str]:
        return {PREFIX + k: json.dumps(v) for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_metadata(cls, props: dict[str, str], where: str = "model") -> "ModelContract":
        fields = {f.name for f in dataclasses.fields(cls)}
        values = {}
        for key, raw in props.items():
            if not key.startswith(PREFIX):
                continue
            name = key[len(PREFIX):]
            if name not in fields:
                continue  # written by a newer edgeseg; ignore rather than refuse
            try:
                value = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise EdgesegError(f"{where}: metadata '{key}' is not valid JSON") from exc
            values[name] = tuple(value) if isinstance(value, list) else value
        required = [f.name for f in dataclasses.fields(cls) if f.default is dataclasses.MISSING]
        missing = [k for k in required if k not in values]
        if missing:
            raise EdgesegError(f"{where}: not an edgeseg model (metadata lacks {', '.join(PREFIX + k for k in missing)})")
        return cls(**values)

    @property
    def lr_size(self) -> tuple[int, int]:
        return (self.hr_size[0] // self.scale, self.hr_size[1] // self.scale)


def read_contract(onnx_path: str) -> ModelContract:
    """Read the contract from an ONNX file with onnxruntime only (light runtime)."""
    from edgeseg.ort import cpu_session

    return ModelContract.from_metadata(cpu_session(onnx_path).get_modelmeta().custom_metadata_map, str(onnx_path))
