"""Regenerate data/sample-mr-brain/: a real DICOM MR series from the MNI ICBM152 T1 template.

Usage: python scripts/make_sample_dicom.py [OUT_DIR]   (needs the train extra: nibabel, nilearn)
Deterministic: reruns produce byte-identical files.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from edgeseg.data.make_dicom import write_sample  # noqa: E402

if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parents[1] / "data" / "sample-mr-brain")
    paths = write_sample(out)
    size = sum(p.stat().st_size for p in paths)
    print(f"wrote {len(paths)} files, {size / 1e6:.2f} MB, to {out}")
