"""The light on-device runtime: DICOM in, DICOM SEG out (numpy, onnxruntime, pydicom; highdicom for SEG).

Never imports torch, nibabel, scipy or rich at import time. Entry point: `edgeseg.runtime.pipeline.run`.
"""
from edgeseg.runtime.pipeline import Options, Row, run

__all__ = ["Options", "Row", "run"]
