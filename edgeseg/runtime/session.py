"""ONNX Runtime session for a self-describing edgeseg model: provider choice, threads, batched inference.

Provider order for `auto`: TensorRT (FP16, engine cache folder) -> CUDA -> CPU, each only when the
installed onnxruntime offers it. The provider that actually runs is `Segmenter.provider`.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnxruntime as ort

from edgeseg.contract import ModelContract
from edgeseg.errors import EdgesegError
from edgeseg.ort import session
from edgeseg.runtime.preprocess import check_contract

PROVIDERS = {"tensorrt": "TensorrtExecutionProvider", "cuda": "CUDAExecutionProvider", "cpu": "CPUExecutionProvider"}
AUTO_ORDER = ("tensorrt", "cuda", "cpu")


def provider_list(choice: str, cache_dir: str | Path | None = None) -> list:
    """Providers (with options) to hand to onnxruntime for --provider CHOICE."""
    available = set(ort.get_available_providers())
    if choice not in (*PROVIDERS, "auto"):
        raise EdgesegError(f"unknown provider '{choice}': use auto, {', '.join(PROVIDERS)}")
    if choice != "auto" and PROVIDERS[choice] not in available:
        raise EdgesegError(f"provider '{choice}' is not available in this onnxruntime "
                           f"(available: {', '.join(sorted(available))})")
    out = []
    # CPU always comes last: the fallback for nodes an accelerator cannot run
    for name in dict.fromkeys(AUTO_ORDER if choice == "auto" else (choice, "cpu")):
        ep = PROVIDERS[name]
        if ep not in available:
            continue
        if name == "tensorrt":
            cache = Path(cache_dir or os.environ.get("EDGESEG_TRT_CACHE", Path.home() / ".cache" / "edgeseg" / "trt"))
            cache.mkdir(parents=True, exist_ok=True)
            # a bounded builder workspace: engine builds on a 4 GB Nano are otherwise OOM-killed
            workspace = int(os.environ.get("EDGESEG_TRT_WORKSPACE_MB", "512")) << 20
            out.append((ep, {"trt_fp16_enable": True, "trt_engine_cache_enable": True,
                             "trt_engine_cache_path": str(cache), "trt_max_workspace_size": workspace}))
        else:
            out.append(ep)
    return out


def check_graph_shapes(path: Path, in_shape, out_shape, contract: ModelContract) -> None:
    """Refuse at load a graph whose input/output do not have the shapes the contract promises
    (N, 1, h, w) -> (N, classes, H, W): otherwise every series would fail later, one by one."""
    want_in = (None, 1, *contract.lr_size)
    want_out = (None, len(contract.class_names), *contract.hr_size)
    for what, shape, want in (("input", in_shape, want_in), ("output", out_shape, want_out)):
        shape = list(shape or [])
        bad = len(shape) != 4 or any(isinstance(d, int) and w is not None and d != w for d, w in zip(shape, want))
        if bad:
            raise EdgesegError(f"{path}: graph {what} has shape {shape}, but its contract needs "
                               f"[batch, {', '.join(str(w) for w in want[1:])}]; not an edgeseg model of this contract")


class Segmenter:
    """Loads the model once; `infer_batches` returns full-resolution logits batch by batch."""

    def __init__(self, model_path: str | Path, provider: str = "auto", threads: int | None = None,
                 cache_dir: str | Path | None = None):
        path = Path(model_path)
        if not path.is_file():
            raise EdgesegError(f"{path}: model file not found")
        self.session = session(path, threads, provider_list(provider, cache_dir))
        meta = self.session.get_modelmeta().custom_metadata_map
        self.contract = ModelContract.from_metadata(meta, str(path))
        check_contract(self.contract, str(path))
        inputs = {i.name: i for i in self.session.get_inputs()}
        outputs = [o.name for o in self.session.get_outputs()]
        if self.contract.input_name not in inputs or self.contract.output_name not in outputs:
            raise EdgesegError(f"{path}: metadata names input '{self.contract.input_name}' / output "
                               f"'{self.contract.output_name}' but the graph has {list(inputs)} / {outputs}")
        check_graph_shapes(path, inputs[self.contract.input_name].shape,
                           next(o.shape for o in self.session.get_outputs() if o.name == self.contract.output_name),
                           self.contract)
        batch_dim = inputs[self.contract.input_name].shape[0]
        self.max_batch = batch_dim if isinstance(batch_dim, int) and batch_dim > 0 else None
        self.provider = self.session.get_providers()[0]
        self.path = path
        self.model_id = f"{path.name}|{path.stat().st_size}|{self.contract.recipe_hash}|{self.contract.precision}"

    def predict(self, volume: np.ndarray, spacing=(1.0, 1.0), orientation=None, slice_spacing=None) -> np.ndarray:
        """Array API: (N, rows, cols) or (rows, cols) image in the modality's units -> uint8 label mask of the
        same shape. `spacing` (between rows, between columns) in mm; `orientation`: the six DICOM direction
        cosines of the rows and columns (LPS), plain axial when None. A 3-D volume in another plane than the
        model's (slices ordered along row x column, `slice_spacing` mm apart) is reformatted and back."""
        from edgeseg.runtime.segment import AXIAL, segment_volume

        volume = np.asarray(volume)
        if volume.ndim not in (2, 3):
            raise EdgesegError(f"predict: expected a (rows, cols) or (slices, rows, cols) array, got shape {volume.shape}")
        try:
            mask, _ = segment_volume(self, volume, spacing, AXIAL if orientation is None else orientation, slice_spacing)
        except EdgesegError as exc:
            raise EdgesegError(f"predict: {exc}") from exc
        return mask[0] if volume.ndim == 2 else mask

    def infer_batches(self, lowres: np.ndarray, batch: int = 8):
        """(start, stop, logits) for each run of at most `batch` slices (or the model's fixed batch size) of the
        (n, 1, h, w) input: (stop - start, C, H, W) logits; a short last batch is padded for a fixed batch size."""
        c, size = self.contract, self.max_batch or max(1, int(batch))
        for start in range(0, len(lowres), size):
            x = lowres[start:start + size]
            n = len(x)
            if self.max_batch and n < size:
                x = np.concatenate([x, np.repeat(x[-1:], size - n, axis=0)])
            yield start, start + n, self.session.run([c.output_name], {c.input_name: x})[0][:n]
