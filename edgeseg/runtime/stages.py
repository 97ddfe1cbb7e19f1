"""The three stages of one DICOM series, each a plain function of the previous one's result:

    load_series   headers -> sorted, checked Series + decoded pixels      (pydicom; I/O bound)
    infer_series  volume -> label mask on the source pixels               (onnxruntime; releases the GIL)
    write_series  mask -> SEG + masks + overlay + report, published       (highdicom + pydicom; Python bound)

`process_series` runs them one after the other (the node, `--sequential`); `pipeline.run` overlaps
them across series: series i+1 is read while series i infers, and series i-1 is written meanwhile.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np

from edgeseg.errors import EdgesegError
from edgeseg.runtime import discover as disc
from edgeseg.results.outputs import series_folder, write_folder
from edgeseg.runtime.pixels import Decoded, decode_series
from edgeseg.results.report import result_report, series_block, volumes_ml, write_json
from edgeseg.runtime.segment import segment_volume
from edgeseg.runtime.series import Series, build_series


@dataclass
class Loaded:
    series: Series
    decoded: Decoded
    warnings: list[str]
    dropped: list[tuple[str, str]]
    timings: dict[str, float] = field(default_factory=dict)


@dataclass
class Inferred:
    loaded: Loaded
    mask: np.ndarray


def _dropped_note(dropped) -> str:
    names = [f"{Path(f).name} ({why})" for f, why in dropped[:5]]
    more = f" and {len(dropped) - 5} more" if len(dropped) > 5 else ""
    return f"{len(dropped)} file(s) of this series left out: {'; '.join(names)}{more}"


def load_series(group: disc.SeriesGroup, contract, read_s: float = 0.0, notes=(), lost=()) -> Loaded:
    """Sort and check the series, decode its pixels. `lost`: (file, why) of instances discovery could not
    read (truncated, unreadable); they are named in the warnings and the report."""
    t0 = time.perf_counter()
    series = build_series(group)
    dropped = [*((str(f), why) for f, why in lost), *series.dropped]
    warnings = [*notes, *series.warnings, *([_dropped_note(dropped)] if dropped else [])]
    if contract.modality and series.modality and series.modality != contract.modality:
        raise EdgesegError(f"modality {series.modality}: the model was trained for {contract.modality} only")
    if not series.modality:
        warnings.append(f"no Modality in the header; assumed {contract.modality}")
    decoded = decode_series(series)
    return Loaded(series, decoded, warnings, dropped, {"read": read_s + time.perf_counter() - t0})


def infer_series(seg, loaded: Loaded, batch: int = 8) -> Inferred:
    """The model on the decoded volume; the mask comes back on the source pixels."""
    s = loaded.series
    mask, more = segment_volume(seg, loaded.decoded.values, s.spacing, s.orientation, s.slice_spacing,
                                loaded.decoded, batch, loaded.timings, positions=[f.position for f in s.frames])
    loaded.warnings += more
    return Inferred(loaded, mask)


def write_result(seg, opts, out: Path, where, mask, volume, spacing, slice_spacing, files: dict, source: dict,
                 warnings, t: dict) -> tuple[Path, dict]:
    """One result's `files` ({name: write(path)}), overlay and report.json, published all or nothing
    (outputs.write_folder) at `where` = (final, alternative, what it was computed from) -> (folder, report)."""
    from edgeseg.results.overlay import write_overlay

    c, t0 = seg.contract, time.perf_counter()

    def fill(tmp: Path) -> dict:
        for name, write in files.items():
            write(tmp / name)
        outputs = list(files)
        if opts.overlay:
            write_overlay(tmp / "overlay.png", volume, mask, c.class_names)
            outputs.append("overlay.png")
        t["write"] = time.perf_counter() - t0
        report = result_report(seg, opts.threads, t, len(mask), volumes_ml(mask, spacing, slice_spacing, c.class_names),
                               outputs + ["report.json"], warnings, source)
        write_json(tmp / "report.json", report)
        return report

    final, alternative, source_id = where
    return write_folder(out, final, fill, opts.private, source_id, alternative)


def write_series(seg, inferred: Inferred, out: Path, opts):
    """SEG, mask files, overlay and report of the series into its folder (`write_result`) -> Row."""
    from edgeseg.results.mask_files import write_mask
    from edgeseg.runtime.pipeline import Row
    from edgeseg.results.seg_writer import write_seg

    loaded, mask = inferred.loaded, inferred.mask
    series = loaded.series
    files = {"seg.dcm": lambda path: write_seg(series, mask, seg.contract, path, seg.model_id)} if opts.seg else {}
    for kind in opts.also:
        files["mask.nii.gz" if kind == "nifti" else "mask.npy"] = partial(write_mask, mask=mask, series=series, kind=kind)
    source = {"series": series_block(series),
              "dropped_files": [{"file": str(f), "reason": why} for f, why in loaded.dropped]}
    final, report = write_result(seg, opts, out, (*series_folder(out, series, opts.layout), series.series_uid), mask,
                                 loaded.decoded.values, series.spacing, series.slice_spacing, files, source,
                                 loaded.warnings, loaded.timings)
    return Row(series.series_uid, len(series.frames), "ok", "; ".join(loaded.warnings), sum(loaded.timings.values()),
               str(final), report)


def process_series(seg, group: disc.SeriesGroup, out: Path, opts, read_s: float = 0.0, notes=(), lost=()):
    """One series through the three stages, one after the other -> Row."""
    loaded = load_series(group, seg.contract, read_s, notes, lost)
    return write_series(seg, infer_series(seg, loaded, opts.batch), out, opts)
