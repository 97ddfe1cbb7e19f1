"""The light on-device runtime: DICOM (or NIfTI) in, DICOM SEG out (numpy, onnxruntime, pydicom; highdicom
for the SEG, nibabel only for NIfTI input).

Never imports torch, nibabel, scipy or rich at import time. Entry points: `run` (files and folders, as
`edgeseg run`) and `Segmenter(model).predict(volume, spacing, orientation)` (numpy in, numpy out).
"""
from edgeseg.runtime.pipeline import Options, Row, run
from edgeseg.runtime.session import Segmenter

__all__ = ["Options", "Row", "Segmenter", "run"]
