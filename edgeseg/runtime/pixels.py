"""Decode a sorted series into float32 values in the modality's units.

Rescale slope/intercept (top level or enhanced functional groups), MONOCHROME1 inversion (mapped so
that high values are bright, as in MONOCHROME2), signed/unsigned storage and any transfer syntax
pydicom's pixel-data plugins can decode; otherwise a one-line reason naming the transfer syntax.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydicom.uid import UID

from edgeseg.errors import EdgesegError, first_line
from edgeseg.preprocess import StoredGrid
from edgeseg.runtime.discover import PIXEL_KEYWORDS
from edgeseg.runtime.series import Series

CODECS_HINT = "install a decoder: pip install pylibjpeg pylibjpeg-libjpeg pylibjpeg-openjpeg pylibjpeg-rle (or python-gdcm)"


def _transform(ds, frame: int | None) -> tuple[float, float]:
    """(slope, intercept) for a frame: per-frame group, shared group, then top level; identity if absent."""
    groups = []
    if frame is not None and "PerFrameFunctionalGroupsSequence" in ds:
        groups.append(ds.PerFrameFunctionalGroupsSequence[frame])
    if "SharedFunctionalGroupsSequence" in ds:
        groups.append(ds.SharedFunctionalGroupsSequence[0])
    for g in groups:
        if "PixelValueTransformationSequence" in g and len(g.PixelValueTransformationSequence):
            item = g.PixelValueTransformationSequence[0]
            return float(item.get("RescaleSlope", 1) or 1), float(item.get("RescaleIntercept", 0) or 0)
    return float(ds.get("RescaleSlope", 1) or 1), float(ds.get("RescaleIntercept", 0) or 0)


def _stored_range(ds) -> tuple[int, int]:
    bits = int(ds.get("BitsStored", ds.get("BitsAllocated", 16)))
    if int(ds.get("PixelRepresentation", 0)) == 1:
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1


def decode_pixels(ds, path: Path) -> np.ndarray:
    """(frames, rows, cols) stored values, or EdgesegError with the reason."""
    if not any(k in ds for k in PIXEL_KEYWORDS):
        raise EdgesegError(f"{path.name}: no Pixel Data element")
    ts = UID(str(ds.file_meta.TransferSyntaxUID))
    try:
        arr = ds.pixel_array
    except Exception as exc:  # pydicom raises several types for missing plugins and corrupt data
        msg = (str(exc).strip().splitlines() or [type(exc).__name__])
        text = " ".join(m.strip() for m in msg)[:200]
        if ts.is_compressed and ("plugin" in text.lower() or "handler" in text.lower() or "support" in text.lower()):
            raise EdgesegError(f"{path.name}: cannot decode {ts.name} ({ts}): {text}; {CODECS_HINT}") from exc
        raise EdgesegError(f"{path.name}: cannot decode pixel data ({ts.name}): {text}") from exc
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    return arr.reshape(frames, int(ds.Rows), int(ds.Columns))


@dataclass
class Decoded:
    """Values (N, rows, cols) float32 and, when one linear map from stored integers holds for every
    frame, the stored integers and that map (exact percentiles from a histogram)."""
    values: np.ndarray
    stored: np.ndarray | None = None
    slope: float = 1.0
    intercept: float = 0.0
    invert_sum: float | None = None  # MONOCHROME1: value = invert_sum - (stored * slope + intercept)

    def to_values(self, stored_levels: np.ndarray) -> np.ndarray:
        """The float32 values of given stored integers, computed exactly as for the volume."""
        v = np.asarray(stored_levels).astype(np.float32) * np.float32(self.slope) + np.float32(self.intercept)
        return np.float32(self.invert_sum) - v if self.invert_sum is not None else v

    def grid(self) -> StoredGrid | None:
        """The stored integers and their map, for edgeseg.preprocess's exact percentiles (None when absent)."""
        increasing = (self.slope > 0) != (self.invert_sum is not None)
        return None if self.stored is None else StoredGrid(self.stored, self.to_values, increasing)


def decode_series(series: Series) -> Decoded:
    """Decode the series' sorted frames, one file at a time; pixel data is dropped from headers after use."""
    out = np.empty((len(series.frames), series.rows, series.cols), dtype=np.float32)
    stored_all = np.empty(out.shape, dtype=np.int32)
    where: dict[Path, list[tuple[int, int | None]]] = {}
    headers = {}
    for i, f in enumerate(series.frames):
        where.setdefault(f.path, []).append((i, f.frame))
        headers[f.path] = f.header
    maps = set()
    integral = True
    for path, targets in where.items():
        ds = headers[path]
        try:
            stored = decode_pixels(ds, path)
        except EdgesegError:
            raise
        except Exception as exc:  # deferred read of a file that changed or vanished
            raise EdgesegError(f"{path.name}: unreadable ({first_line(exc)})") from exc
        finally:
            for key in PIXEL_KEYWORDS:
                if key in ds:
                    del ds[key]  # keep headers small while the run goes on
        integral = integral and stored.dtype.kind in "iu"
        invert = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip() == "MONOCHROME1"
        lo, hi = _stored_range(ds)
        for i, frame in targets:
            slope, intercept = _transform(ds, frame)
            values = stored[frame or 0].astype(np.float32) * np.float32(slope) + np.float32(intercept)
            invert_sum = None
            if invert:  # map the rescaled range onto itself reversed: white stays high after inversion
                invert_sum = float(np.float32(lo * slope + intercept) + np.float32(hi * slope + intercept))
                values = np.float32(invert_sum) - values
            out[i] = values
            if integral:
                stored_all[i] = stored[frame or 0]
            maps.add((slope, intercept, invert_sum))
    if integral and len(maps) == 1:
        slope, intercept, invert_sum = maps.pop()
        return Decoded(out, stored_all, slope, intercept, invert_sum)
    return Decoded(out)
