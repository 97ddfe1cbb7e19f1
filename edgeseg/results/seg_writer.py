"""DICOM Segmentation (BINARY) written with highdicom, referencing the source instances; atomic write."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from edgeseg import __version__
from edgeseg.contract import ModelContract
from edgeseg.errors import EdgesegError, first_line, require
from edgeseg.io import atomic_write
from edgeseg.results.colours import rgb

if TYPE_CHECKING:  # the series type only; results never import the runner
    from edgeseg.runtime.series import Series


def require_highdicom():
    """(highdicom, pydicom's codes), or a one-line EdgesegError naming the extra to install."""
    from pydicom.sr.codedict import codes  # pydicom is a base dependency

    return require("highdicom", "writing DICOM SEG needs highdicom: pip install 'edgeseg[dicom]'"), codes


def property_codes(class_name: str, codes):
    """(category, type) codes for a class name: SNOMED CT when the name matches one, else Tissue."""
    from pydicom.sr.coding import Code

    words = class_name.replace("-", "_").replace(" ", "_").split("_")
    camel = "".join(w.capitalize() for w in words)
    for candidate in (camel, camel.replace("Grey", "Gray"), camel.replace("Tumour", "Tumor")):
        try:
            found = getattr(codes.SCT, candidate)
            # spelled out: pydicom 2.4 finds two SCT codes named AnatomicalStructure (pydicom 3 picks this one)
            return Code("123037004", "SCT", "Anatomical Structure"), found
        except AttributeError:
            continue
    return codes.SCT.Tissue, codes.SCT.Tissue


def uid_for(*parts) -> str:
    """Deterministic UID from the inputs (same model + same series -> same SEG UIDs)."""
    from pydicom.uid import generate_uid

    return generate_uid(entropy_srcs=["edgeseg-seg", *map(str, parts)])


def source_plane_array(series: Series, mask: np.ndarray) -> np.ndarray:
    """The mask in the source's own plane order: the sorted slices, or every frame of a multi-frame image."""
    if not series.multiframe:
        return mask
    if len(series.headers) != 1:
        raise EdgesegError("a series of several multi-frame instances is not supported for SEG output")
    order = np.argsort([f.frame for f in series.frames])
    frames = {f.frame for f in series.frames}
    full = np.zeros((int(series.headers[0].get("NumberOfFrames", 1)), *mask.shape[1:]), dtype=np.uint8)
    full[sorted(frames)] = mask[order]
    return full


def _has_display_color(hd) -> bool:
    """highdicom >= 0.23 takes a segment's display colour (the board floor, 0.22, does not)."""
    import inspect

    return hasattr(hd, "color") and "display_color" in inspect.signature(hd.seg.SegmentDescription).parameters


def build_segmentation(series: Series, mask: np.ndarray, contract: ModelContract, model_id: str):
    """mask: (N, rows, cols) class indices in the series' sorted order -> highdicom Segmentation."""
    hd, codes = require_highdicom()
    top = int(mask.max(initial=0))
    if top >= len(contract.class_names):
        raise EdgesegError(f"mask holds class {top}, the model has {len(contract.class_names)} classes "
                           f"({', '.join(contract.class_names)}); no SEG written")
    alg = hd.AlgorithmIdentificationSequence(name=contract.model_name or "edgeseg", version=__version__,
                                             family=codes.cid7162.ArtificialIntelligence)
    descriptions = []
    for k, name in enumerate(contract.class_names):
        if k == 0:
            continue  # class 0 is background: no segment
        category, prop = property_codes(name, codes)
        colour = {"display_color": hd.color.CIELabColor.from_rgb(*rgb(k))} if _has_display_color(hd) else {}
        descriptions.append(hd.seg.SegmentDescription(
            segment_number=k, segment_label=name[:64], segmented_property_category=category,
            segmented_property_type=prop, algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
            algorithm_identification=alg, **colour))
    pixel_array, sources = source_plane_array(series, mask), series.headers
    try:
        return hd.seg.Segmentation(
            source_images=sources, pixel_array=pixel_array,
            segmentation_type=hd.seg.SegmentationTypeValues.BINARY, segment_descriptions=descriptions,
            series_instance_uid=uid_for(model_id, series.series_uid, "series"), series_number=900,
            sop_instance_uid=uid_for(model_id, series.series_uid, "instance"), instance_number=1,
            manufacturer="edgeseg", manufacturer_model_name=(contract.model_name or "edgeseg")[:64],
            software_versions=__version__, device_serial_number="0",
            series_description=f"edgeseg {contract.model_name} (research use only)"[:64], omit_empty_frames=False)
    except (ValueError, TypeError, AttributeError, KeyError) as exc:
        raise EdgesegError(f"cannot build DICOM SEG: {first_line(exc, 200)}") from exc


def write_seg(series: Series, mask: np.ndarray, contract: ModelContract, path: Path, model_id: str) -> Path:
    seg = build_segmentation(series, mask, contract, model_id)
    return atomic_write(path, lambda tmp: seg.save_as(tmp, **save_kwargs()))


def save_kwargs() -> dict:
    """save_as keywords for a file with preamble and meta: pydicom 3 spells it enforce_file_format,
    pydicom 2.4 (the last for Python 3.8 boards) write_like_original."""
    import pydicom

    return {"enforce_file_format": True} if int(pydicom.__version__.split(".")[0]) >= 3 else {"write_like_original": False}
