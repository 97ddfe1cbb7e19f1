"""FP16 weights and activations for the Jetson GPU path; inputs and outputs stay float32 so the runner need not care.

The converter appends its input Cast at the end of the node list; `save_checked` sorts the graph
topologically before writing, so the file passes `onnx.checker` (full check).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path


def to_fp16(src: str | Path, dst: str | Path) -> Path:
    """Convert with onnxruntime.transformers.float16 (ships with onnxruntime; no extra dependency).

    keep_io_types=True puts a Cast at the input and output: the model still takes and returns float32.
    """
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    from edgeseg.contract import ModelContract
    from edgeseg.export.to_onnx import set_metadata
    from edgeseg.export.validate import save_checked

    model = onnx.load(str(src))
    contract = ModelContract.from_metadata({p.key: p.value for p in model.metadata_props}, str(src))
    half = convert_float_to_float16(model, keep_io_types=True, disable_shape_infer=False)
    set_metadata(half, dataclasses.replace(contract, precision="fp16"))
    return save_checked(half, dst)
