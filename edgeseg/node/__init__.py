"""The runner as a DICOM network node: receive images (C-STORE SCP), segment complete series, forward the SEG.

Light side only (numpy, onnxruntime, pydicom, pynetdicom, highdicom); never torch. See docs/node.md.
"""
from __future__ import annotations

from edgeseg.errors import require


def require_pynetdicom():
    """The pynetdicom module, or a one-line EdgesegError naming the extra to install."""
    return require("pynetdicom", "the DICOM node needs pynetdicom: pip install 'edgeseg[dicom]'")
