"""Binary targets derived from the MNI152 tissue labels, by name (`source = "mni152:<target>"`).

The SR-head benchmark needs a task closer to J-Net's (a small binary structure, 1 class + background)
than the three-class GM/WM map. Both targets are computed from the real template's labels
({0: background, 1: GM, 2: WM}, `sources.mni_labels`), nothing is synthesised:

- "ventricles": the lateral ventricles -- the largest connected component of non-tissue voxels enclosed
  by tissue in 3-D (holes of the tissue mask; scipy.ndimage, installed with nilearn). On the
  2009a template: 17 778 voxels (~18 mL), present in 89 coronal / 33 axial slices.
- "white_matter": white matter against everything else (one tissue; a large structure).
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from edgeseg.errors import EdgesegError, nearest_key

_TARGETS: dict[str, Callable[[np.ndarray], np.ndarray]] = {}


def _target(name: str):
    def deco(fn):
        _TARGETS[name] = fn
        return fn

    return deco


def list_targets() -> list[str]:
    return sorted(_TARGETS)


@_target("ventricles")
def ventricles(label: np.ndarray) -> np.ndarray:
    """Largest 3-D component of the non-tissue voxels enclosed by tissue -> bool mask."""
    from scipy import ndimage

    tissue = label > 0
    holes = ndimage.binary_fill_holes(tissue) & ~tissue
    components, n = ndimage.label(holes)
    if n == 0:
        return np.zeros_like(tissue)
    sizes = np.bincount(components.ravel())[1:]
    return components == (int(np.argmax(sizes)) + 1)


@_target("white_matter")
def white_matter(label: np.ndarray) -> np.ndarray:
    return label == 2


def check_target(name: str) -> None:
    if name not in _TARGETS:
        raise EdgesegError(f"unknown mni152 target '{name}'{nearest_key(name, _TARGETS)}; known: {', '.join(list_targets())}")


def binary_target(name: str, label: np.ndarray) -> tuple[np.ndarray, tuple[str, str]]:
    """(uint8 {0, 1} label map, class names) of the named target."""
    check_target(name)
    return _TARGETS[name](label).astype(np.uint8), ("background", name)
