"""DICOM SEG prepared from the source headers alone, finished once the mask exists.

Everything in a BINARY SEG written with `omit_empty_frames=False` except its Pixel Data depends on
the source headers, the model contract and the UIDs, never on the mask values: highdicom builds it
from an all-background mask, pydicom encodes it without Pixel Data, and both can run on a second
thread while the model infers. `write()` then packs the mask into the frames in the order of the
SEG's own per-frame functional groups (segment number x referenced source plane, read back from the
dataset, so highdicom's frame order is never assumed) and appends the Pixel Data element. The file
is byte-for-byte what `seg_writer.write_seg` writes (tests compare the bytes); whenever the prepared
dataset is not in the one shape this handles, `write()` falls back to exactly that path.
"""
from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgeseg.contract import ModelContract
from edgeseg.errors import EdgesegError
from edgeseg.runtime.dicom_encode import EXPLICIT_VR_LITTLE_ENDIAN, Unsupported, encode_file
from edgeseg.runtime.seg_writer import atomic_write_bytes, build_segmentation, save_kwargs, source_plane_array
from edgeseg.runtime.series import Series

PIXEL_DATA = 0x7FE00010


@dataclass
class PreparedSeg:
    """The encoded SEG up to (not including) Pixel Data, and which mask plane/segment fills each frame."""
    series: Series
    contract: ModelContract
    model_id: str
    header: bytes | None          # None: not the simple shape; write() takes the full path
    frame_segments: np.ndarray    # (frames,) segment number of each frame
    frame_planes: np.ndarray      # (frames,) index into the source plane array of each frame
    seconds: float = 0.0          # time spent preparing (on whichever thread ran it)

    def pixel_data(self, mask: np.ndarray) -> bytes:
        """BINARY frames, one bit per pixel, LSB first, frames back to back (PS3.5 8.1.1), even length."""
        planes = source_plane_array(self.series, mask)
        if planes.size and int(planes.max()) >= len(self.contract.class_names):
            raise EdgesegError(f"mask holds class {int(planes.max())}, the model has {len(self.contract.class_names)}")
        frames = planes[self.frame_planes] == self.frame_segments[:, None, None].astype(planes.dtype)
        packed = np.packbits(frames.ravel(), bitorder="little").tobytes()
        return packed + b"\x00" * (len(packed) % 2)

    def write(self, mask: np.ndarray, path: Path) -> Path:
        if self.header is None:
            from edgeseg.runtime.seg_writer import write_seg

            return write_seg(self.series, mask, self.contract, path, self.model_id)
        data = self.pixel_data(mask)
        element = struct.pack("<HH2sHI", 0x7FE0, 0x0010, b"OB", 0, len(data))
        return atomic_write_bytes(path, lambda tmp: _write_parts(tmp, (self.header, element, data)))


def _write_parts(path, parts) -> None:
    with open(path, "wb") as f:
        for part in parts:
            f.write(part)


def _frame_map(ds, series: Series) -> tuple[np.ndarray, np.ndarray] | None:
    """(segment number, source plane) per frame from the per-frame functional groups; None if unreadable."""
    if series.multiframe:
        index_of = None
    else:
        index_of = {str(h.SOPInstanceUID): i for i, h in enumerate(series.headers)}
    segments, planes = [], []
    for item in ds.get("PerFrameFunctionalGroupsSequence", []):
        try:
            segments.append(int(item.SegmentIdentificationSequence[0].ReferencedSegmentNumber))
            src = item.DerivationImageSequence[0].SourceImageSequence[0]
            if index_of is None:
                planes.append(int(src.ReferencedFrameNumber) - 1)
            else:
                planes.append(index_of[str(src.ReferencedSOPInstanceUID)])
        except (AttributeError, IndexError, KeyError, TypeError, ValueError):
            return None
    if len(segments) != int(ds.get("NumberOfFrames", -1)):
        return None
    return np.asarray(segments, dtype=np.int64), np.asarray(planes, dtype=np.int64)


def encode_header(ds) -> bytes:
    """The file up to Pixel Data: the small fast encoder when the dataset is plain, else pydicom's writer."""
    try:
        return encode_file(ds)
    except Unsupported:
        buffer = io.BytesIO()
        ds.save_as(buffer, **save_kwargs())
        return buffer.getvalue()


def prepare_seg(series: Series, contract: ModelContract, model_id: str) -> PreparedSeg:
    """Build and encode everything of the SEG but its pixels (needs the headers only, not the mask)."""
    import time

    t0 = time.perf_counter()
    empty = np.zeros((len(series.frames), series.rows, series.cols), dtype=np.uint8)
    ds = build_segmentation(series, empty, contract, model_id)
    frame_map = _frame_map(ds, series)
    header = None
    simple = (frame_map is not None and str(ds.file_meta.get("TransferSyntaxUID", "")) == EXPLICIT_VR_LITTLE_ENDIAN
              and int(ds.get("BitsAllocated", 0)) == 1 and PIXEL_DATA in ds
              and max(int(t) for t in ds.keys()) == PIXEL_DATA)
    if simple:
        del ds[PIXEL_DATA]
        header = encode_header(ds)
    segments, planes = frame_map if frame_map is not None else (np.zeros(0, np.int64), np.zeros(0, np.int64))
    return PreparedSeg(series, contract, model_id, header, segments, planes, time.perf_counter() - t0)
