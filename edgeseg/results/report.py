"""Per-series JSON report (model, provider, stage timings, volumes in mL, warnings) and the run summary."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from edgeseg.io import atomic_write

STAGES = ("read", "preprocess", "infer", "postprocess", "write")


def volumes_ml(mask: np.ndarray, spacing: tuple[float, float], slice_spacing: float, class_names) -> dict[str, float]:
    """Volume of every non-background class: voxel count x row spacing x column spacing x slice spacing."""
    voxel_ml = float(spacing[0]) * float(spacing[1]) * float(slice_spacing) / 1000.0
    # one comparison per class: np.bincount would first copy the uint8 mask into 8-byte integers
    return {name: round(float(np.count_nonzero(mask == k)) * voxel_ml, 3) for k, name in enumerate(class_names) if k > 0}


def write_json(path: Path, data: dict) -> Path:
    return atomic_write(Path(path), json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


def series_block(series) -> dict:
    """The report's "series": what the DICOM series was (UIDs, size, geometry)."""
    return {"study_instance_uid": series.study_uid, "series_instance_uid": series.series_uid,
            "description": series.description, "modality": series.modality, "slices": len(series.frames),
            "instances": len(series.headers), "multiframe": series.multiframe,
            "rows": series.rows, "columns": series.cols, "pixel_spacing_mm": list(series.spacing),
            "slice_spacing_mm": round(series.slice_spacing, 4),
            "orientation": None if series.orientation is None else [round(float(v), 6) for v in series.orientation]}


def result_report(seg, threads, timings, slices: int, volumes, outputs, warnings, source: dict) -> dict:
    """report.json of one result; `source` says what was segmented ({"series": ...} or {"input": ...})."""
    from edgeseg.results.colours import legend

    c, total = seg.contract, sum(timings.values())
    return {
        "status": "ok",
        "model": {"path": Path(seg.path).name, "name": c.model_name, "precision": c.precision,
                  "class_names": list(c.class_names), "scale": c.scale,
                  "hr_size": list(c.hr_size), "pixel_spacing_mm": list(c.pixel_spacing_mm)},
        "provider": seg.provider,
        "threads": threads,
        **source,
        "timings_s": {k: round(timings.get(k, 0.0), 4) for k in STAGES},
        "total_s": round(total, 4),
        "slices_per_s": round(slices / total, 2) if total > 0 else None,
        "inference_share": round(timings.get("infer", 0.0) / total, 3) if total > 0 else None,
        "volumes_ml": volumes,
        "outputs": outputs,
        "warnings": list(warnings),
        "colours": legend(c.class_names),  # as in the SEG's segments and the overlay's legend
    }
