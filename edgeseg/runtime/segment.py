"""One volume in, one label mask out, on the same pixels: the core every front end calls (DICOM series,
NIfTI files, the array API `Segmenter.predict`). Preprocessing and its inverse follow the model's contract.
"""
from __future__ import annotations

import time

import numpy as np

from edgeseg.orientation import obliquity_deg
from edgeseg.runtime import reformat
from edgeseg.runtime.postprocess import logits_to_source_grid
from edgeseg.runtime.preprocess import prepare

AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)   # ImageOrientationPatient of plain axial slices (rows L->R, columns P)
FEW_SLICES = 10  # below this the series is a partial volume for the model's statistics: say so


def segment_volume(seg, volume: np.ndarray, spacing, orientation=AXIAL, slice_spacing: float | None = None,
                   decoded=None, batch: int = 8, timings: dict | None = None, positions=None,
                   slice_direction=None) -> tuple[np.ndarray, list[str]]:
    """volume (N, rows, cols) in the modality's units -> ((N, rows, cols) uint8 class indices, warnings).

    `spacing`: (between rows, between columns) in mm; `orientation`: the six direction cosines (LPS);
    `decoded`: pixels.Decoded of the same volume, for exact percentiles; `timings` gets the stage times.
    A 3-D series in another plane than the model's is re-sliced into it and the mask mapped back
    (runtime.reformat; `positions` per slice or `slice_direction` place its slices in 3-D)."""
    volume = np.asarray(volume, dtype=np.float32)
    if volume.ndim == 2:
        volume = volume[None]
    t = timings if timings is not None else {}
    t0 = time.perf_counter()
    rf = reformat.plan(orientation, spacing, slice_spacing, len(volume), seg.contract, positions, slice_direction)
    if rf is None:
        return _segment(seg, volume, spacing, orientation, slice_spacing, decoded, batch, t)
    model_plane = rf.forward(volume)
    t["preprocess"] = t.get("preprocess", 0.0) + time.perf_counter() - t0
    mask, warnings = _segment(seg, model_plane, rf.spacing, rf.orientation, rf.slice_spacing, decoded, batch, t)
    t0 = time.perf_counter()
    mask = rf.backward(mask)
    t["postprocess"] += time.perf_counter() - t0
    return mask, [rf.note(len(volume), len(model_plane), seg.contract.plane), *warnings]


def _segment(seg, volume, spacing, orientation, slice_spacing, decoded, batch, t) -> tuple[np.ndarray, list[str]]:
    """The model's own plane: preprocess, infer per batch, logits back onto the source pixels."""
    c = seg.contract
    warnings = []
    if len(volume) < FEW_SLICES:
        extent = f", {len(volume) * slice_spacing:.0f} mm" if slice_spacing else ""
        warnings.append(f"partial coverage: {len(volume)} slice(s){extent}; the model's intensity statistics come "
                        "from these slices only: check the result")
    t0 = time.perf_counter()
    lowres, geo = prepare(volume, orientation, tuple(spacing), c, decoded.grid() if decoded is not None else None)
    if decoded is not None:
        decoded.stored = None  # no longer needed: free it while the series infers
    if orientation is not None and obliquity_deg(orientation) > 10:
        warnings.append(f"oblique slices ({obliquity_deg(orientation):.0f} deg from the {c.plane} plane)")
    t["preprocess"] = t.get("preprocess", 0.0) + time.perf_counter() - t0
    mask = np.empty((len(lowres), *geo.source_shape), dtype=np.uint8)
    t.setdefault("infer", 0.0)
    t.setdefault("postprocess", 0.0)
    t0 = time.perf_counter()
    for start, stop, logits in seg.infer_batches(lowres, batch):
        t1 = time.perf_counter()
        t["infer"] += t1 - t0
        mask[start:stop] = logits_to_source_grid(logits, geo, c)  # per batch: bounded memory
        t0 = time.perf_counter()
        t["postprocess"] += t0 - t1
    return mask, warnings
