"""The runner as a DICOM network node: receive images (C-STORE SCP), segment complete series, forward the SEG.

Light side only (numpy, onnxruntime, pydicom, pynetdicom, highdicom); never torch. See docs/node.md.
"""
from __future__ import annotations

from edgeseg.errors import EdgesegError


def require_pynetdicom():
    """The pynetdicom module, or a one-line EdgesegError naming the extra to install."""
    try:
        import pynetdicom
    except ImportError as exc:
        raise EdgesegError("the DICOM node needs pynetdicom: pip install 'edgeseg[dicom]'") from exc
    return pynetdicom
