"""Build a study folder like the ones a scanner sends: the bundled T1 series plus what a real study holds
besides it — a second contrast, a localizer, and an earlier DICOM SEG — to try `edgeseg run` on.

Usage: python scripts/make_study_folder.py OUT_DIR     (numpy + pydicom; the SEG needs highdicom)
Deterministic: the same UIDs on every run. Everything is derived from data/sample-mr-brain.
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pydicom
from pydicom.uid import generate_uid

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from edgeseg.data.copy_series import write_series_copy  # noqa: E402

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample-mr-brain"


def _copy(files, folder: Path, tag: str, edit) -> list[Path]:
    return write_series_copy(files, folder, f"edgeseg-study-{tag}", edit)


def _t2_like(ds) -> None:
    """Another contrast: the T1 intensities inverted inside the head (CSF bright), as a T2w series."""
    px = ds.pixel_array.astype(np.float32)
    head = px > np.percentile(px, 60)
    px[head] = px.max() - px[head] * 0.8
    ds.PixelData = px.clip(0, 65535).astype(np.uint16).tobytes()
    ds.SeriesDescription, ds.SeriesNumber = "T2w tse (contrast-inverted copy)", 3


def _localizer(ds) -> None:
    ds.ImageType = ["ORIGINAL", "PRIMARY", "LOCALIZER"]
    ds.SeriesDescription, ds.SeriesNumber = "localizer", 100
    ds.ImageOrientationPatient = [0, 1, 0, 0, 0, -1]  # a sagittal scout


def _earlier_seg(source: list[Path], path: Path) -> bool:
    """An empty BINARY SEG of the T1 series, as an earlier result stored with the study (needs highdicom)."""
    try:
        import highdicom as hd
        from pydicom.sr.codedict import codes
    except ImportError:
        return False
    images = sorted((pydicom.dcmread(f) for f in source), key=lambda d: float(d.ImagePositionPatient[2]))
    desc = hd.seg.SegmentDescription(segment_number=1, segment_label="earlier", segmented_property_category=codes.SCT.Tissue,
                                     segmented_property_type=codes.SCT.Tissue, algorithm_type="MANUAL")
    seg = hd.seg.Segmentation(source_images=images, pixel_array=np.zeros((len(images), images[0].Rows, images[0].Columns),
                                                                          np.uint8),
                              segmentation_type="BINARY", segment_descriptions=[desc],
                              series_instance_uid=generate_uid(entropy_srcs=["edgeseg-study", "seg"]), series_number=50,
                              sop_instance_uid=generate_uid(entropy_srcs=["edgeseg-study", "seg", "1"]), instance_number=1,
                              manufacturer="earlier tool", manufacturer_model_name="manual", software_versions="1",
                              device_serial_number="0", omit_empty_frames=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    seg.save_as(path)
    return True


def make_study(out: Path) -> dict[str, int]:
    """Write the study under `out` (replacing it); returns files per part."""
    shutil.rmtree(out, ignore_errors=True)
    files = sorted(SAMPLE.glob("*.dcm"))
    (out / "t1").mkdir(parents=True)
    for f in files:
        shutil.copy2(f, out / "t1" / f.name)
    parts = {"t1": len(files), "t2": len(_copy(files[8:24], out / "t2", "t2", _t2_like)),
             "localizer": len(_copy(files[16:17], out / "localizer", "localizer", _localizer))}
    parts["earlier SEG"] = int(_earlier_seg(files, out / "seg" / "earlier-seg.dcm"))
    return parts


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python scripts/make_study_folder.py OUT_DIR")
    print(f"study folder {sys.argv[1]}: " + ", ".join(f"{k} {v}" for k, v in make_study(Path(sys.argv[1])).items()))
