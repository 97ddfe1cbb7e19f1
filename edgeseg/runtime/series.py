"""A series' frames sorted along the slice normal, with its geometry checked.

Single-frame instances and multi-frame (enhanced) images are both expanded into frames with their
own position. Sorting is by ImagePositionPatient . normal (normal = row x column direction cosines),
falling back to InstanceNumber when geometry is missing. Inconsistent matrices, spacing or
orientation are errors; gaps, duplicates and irregular spacing are warnings.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgeseg.errors import EdgesegError
from edgeseg.orientation import normal_positions
from edgeseg.runtime.discover import SeriesGroup


@dataclass
class Frame:
    path: Path
    frame: int | None              # 0-based frame index in a multi-frame file; None for single-frame
    sop_uid: str
    instance_number: int
    position: np.ndarray | None    # ImagePositionPatient (LPS, mm)
    orientation: np.ndarray | None  # ImageOrientationPatient (6,)
    spacing: tuple[float, float] | None  # PixelSpacing: (between rows, between columns)
    thickness: float | None
    shape: tuple[int, int]
    header: object = None          # the instance's dataset (pixel data deferred)


@dataclass
class Series:
    study_uid: str
    series_uid: str
    modality: str
    frames: list[Frame]             # sorted along the normal
    headers: list                   # source datasets (pixels deferred), one per instance, in sorted order
    rows: int
    cols: int
    spacing: tuple[float, float]
    orientation: np.ndarray | None
    slice_spacing: float
    description: str = ""
    warnings: list[str] = field(default_factory=list)
    dropped: list[tuple[str, str]] = field(default_factory=list)  # (file, why) left out of the series

    @property
    def multiframe(self) -> bool:
        return any(f.frame is not None for f in self.frames)


def _floats(value, n=None):
    if value is None:
        return None
    arr = np.asarray([float(v) for v in value], dtype=np.float64)
    return arr if n is None or arr.size == n else None


def frames_of(path: Path, ds) -> list[Frame]:
    """Expand one instance into frames with per-frame geometry (functional groups for enhanced images)."""
    shape = (int(ds.Rows), int(ds.Columns))
    sop, number = str(ds.get("SOPInstanceUID", path.name)), int(ds.get("InstanceNumber", 0) or 0)
    n = int(ds.get("NumberOfFrames", 1) or 1)
    if "PerFrameFunctionalGroupsSequence" not in ds:
        if n > 1:
            raise EdgesegError(f"{path.name}: multi-frame image without per-frame functional groups (no per-frame positions)")
        spacing = _floats(ds.get("PixelSpacing"), 2)
        return [Frame(path, None, sop, number, _floats(ds.get("ImagePositionPatient"), 3),
                      _floats(ds.get("ImageOrientationPatient"), 6),
                      tuple(spacing) if spacing is not None else None,
                      float(ds.SliceThickness) if ds.get("SliceThickness") not in (None, "") else None, shape)]
    shared = ds.SharedFunctionalGroupsSequence[0] if "SharedFunctionalGroupsSequence" in ds else {}
    out = []
    for i, per in enumerate(ds.PerFrameFunctionalGroupsSequence):
        def pick_all(seq, sub):
            for group in (per, shared):
                if group and seq in group and len(group[seq].value) and sub in group[seq][0]:
                    return group[seq][0][sub].value
            return None

        spacing = _floats(pick_all("PixelMeasuresSequence", "PixelSpacing"), 2)
        thick = pick_all("PixelMeasuresSequence", "SliceThickness")
        out.append(Frame(path, i, sop, number, _floats(pick_all("PlanePositionSequence", "ImagePositionPatient"), 3),
                         _floats(pick_all("PlaneOrientationSequence", "ImageOrientationPatient"), 6),
                         tuple(spacing) if spacing is not None else None,
                         float(thick) if thick not in (None, "") else None, shape))
    return out


def _describe_counts(values) -> str:
    counts = Counter(values)
    return ", ".join(f"{k} in {v} frame(s)" for k, v in counts.most_common())


def build_series(group: SeriesGroup) -> Series:
    """Check and sort one series; raises EdgesegError with a one-line reason when it cannot be processed."""
    headers = {}
    paths: dict[str, Path] = {}
    dropped: list[tuple[str, str]] = []
    frames: list[Frame] = []
    for inst in group.instances:
        ds = inst.header
        for key in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "FrameOfReferenceUID"):
            if key in ds and ds[key].VM > 1:  # a backslash makes several values: no valid UID, no SEG reference
                raise EdgesegError(f"{inst.path.name}: {key} has {ds[key].VM} values (one UID expected)")
        samples = int(ds.get("SamplesPerPixel", 1) or 1)
        if samples != 1:
            raise EdgesegError(f"{inst.path.name}: colour image ({ds.get('PhotometricInterpretation', '?')}, "
                               f"{samples} samples per pixel); the model expects greyscale MONOCHROME1/2")
        sop = str(ds.get("SOPInstanceUID", inst.path))
        if sop in headers:  # the same instance twice (e.g. copies in two folders)
            dropped.append((str(inst.path), f"duplicate of {paths[sop].name} (same SOPInstanceUID)"))
            continue
        headers[sop] = ds
        paths[sop] = inst.path
        for f in frames_of(inst.path, ds):
            f.header = ds
            frames.append(f)
    if not frames:
        raise EdgesegError("no image frames")
    shapes = [f"{f.shape[0]}x{f.shape[1]}" for f in frames]
    if len(set(shapes)) > 1:
        raise EdgesegError(f"mixed image sizes in one series (Rows x Columns: {_describe_counts(shapes)})")
    spacings = [f.spacing for f in frames]
    if any(s is None for s in spacings):
        raise EdgesegError("missing PixelSpacing: cannot match the model's pixel spacing")
    if np.ptp(np.asarray(spacings), axis=0).max() > 1e-3:
        raise EdgesegError(f"inconsistent PixelSpacing in one series ({_describe_counts(str(tuple(s)) for s in spacings)})")
    warnings: list[str] = []
    orients = [f.orientation for f in frames]
    positions = [f.position for f in frames]
    geometry = all(o is not None for o in orients) and all(p is not None for p in positions)
    if geometry:
        if np.ptp(np.stack(orients), axis=0).max() > 1e-3:
            raise EdgesegError("inconsistent ImageOrientationPatient in one series (mixed planes or a localizer)")
        keys = normal_positions(orients[0], positions)
        order = sorted(range(len(frames)), key=lambda i: (keys[i], frames[i].instance_number, frames[i].frame or 0))
    else:
        warnings.append("no ImagePositionPatient/ImageOrientationPatient: slices sorted by InstanceNumber")
        order = sorted(range(len(frames)), key=lambda i: (frames[i].instance_number, frames[i].frame or 0))
        keys = None
    frames = [frames[i] for i in order]
    slice_spacing = frames[0].thickness or 1.0
    if keys is not None and len(frames) > 1:
        pos = np.asarray([keys[i] for i in order])
        diffs = np.diff(pos)
        dup = np.where(diffs < 1e-3)[0]
        if dup.size:
            warnings.append(f"{dup.size} duplicate slice position(s) (e.g. {pos[dup[0]]:.2f} mm): kept the first by InstanceNumber")
            keep = np.ones(len(frames), bool)
            keep[dup + 1] = False
            for i in dup:
                f = frames[i + 1]
                where = f" frame {f.frame + 1}" if f.frame is not None else ""
                dropped.append((f"{f.path}{where}", f"duplicate slice position {pos[i]:.2f} mm (kept "
                                                    f"{frames[i].path.name})"))
            frames = [f for f, k in zip(frames, keep) if k]
            pos = pos[keep]
            diffs = np.diff(pos)
        if diffs.size:
            slice_spacing = float(np.median(diffs))
            gaps = np.where(diffs > 1.5 * slice_spacing)[0]
            for g in gaps[:3]:
                missing = int(round(diffs[g] / slice_spacing)) - 1
                warnings.append(f"gap: about {missing} missing slice(s) between {pos[g]:.2f} and {pos[g + 1]:.2f} mm "
                                f"(spacing {slice_spacing:.2f} mm)")
            if len(gaps) > 3:
                warnings.append(f"... {len(gaps) - 3} more gaps")
            irregular = np.abs(diffs - slice_spacing) > max(0.01 * slice_spacing, 1e-3)
            if irregular.sum() > len(gaps):
                warnings.append(f"irregular slice spacing ({diffs.min():.3f}..{diffs.max():.3f} mm)")
    first = frames[0]
    kept_sops = list(dict.fromkeys(f.sop_uid for f in frames))
    ds0 = headers[kept_sops[0]]
    return Series(
        study_uid=group.study_uid, series_uid=group.series_uid, modality=str(ds0.get("Modality", "")),
        frames=frames, headers=[headers[s] for s in kept_sops], rows=first.shape[0], cols=first.shape[1],
        spacing=tuple(float(v) for v in first.spacing), orientation=first.orientation if geometry else None,
        slice_spacing=slice_spacing, description=str(ds0.get("SeriesDescription", "")), warnings=warnings,
        dropped=dropped)
