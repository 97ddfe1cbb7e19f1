"""Data sources by name: `mni152` (built in, real MRI shipped in nilearn's wheel) or `nifti:<folder>`.

A user folder follows the nnU-Net/Medical-Decathlon layout::

    <folder>/imagesTr/<case>.nii.gz      one 3D image per case (a trailing _0000 is allowed)
    <folder>/labelsTr/<case>.nii.gz      integer labels on the same grid
    <folder>/dataset.json                optional: {"labels": {"background": 0, "tumour": 1, ...}}
"""
from __future__ import annotations

import importlib.metadata
import importlib.util
import json
from pathlib import Path
from typing import Callable

import numpy as np

from edgeseg.data.volume import LabelledVolume
from edgeseg.errors import EdgesegError, require

MNI_CLASS_NAMES = ("background", "grey_matter", "white_matter")
# A voxel is tissue when P(GM) + P(WM) >= this; its class is then argmax(P(GM), P(WM)).
MNI_TISSUE_THRESHOLD = 0.5

_SOURCES: dict[str, Callable[[str], list[LabelledVolume]]] = {}


def register_source(prefix: str):
    def deco(fn):
        _SOURCES[prefix] = fn
        return fn

    return deco


def list_sources() -> list[str]:
    return sorted(_SOURCES)


def load_source(spec: str) -> list[LabelledVolume]:
    """Load the volumes behind a source spec such as `mni152` or `nifti:/data/brains`."""
    prefix, _, arg = spec.partition(":")
    if prefix not in _SOURCES:
        raise EdgesegError(f"unknown data source '{spec}': known are {', '.join(list_sources())} (nifti:<folder>)")
    return _SOURCES[prefix](arg)


def _nibabel():
    return require("nibabel", "reading NIfTI needs nibabel: pip install 'edgeseg[train]'")


def mni152_files() -> dict[str, Path]:
    """Paths of the ICBM152 2009a T1/GM/WM maps inside the installed nilearn package (not imported)."""
    spec = importlib.util.find_spec("nilearn")
    if spec is None or not spec.submodule_search_locations:
        raise EdgesegError("the built-in dataset needs nilearn installed (data only): pip install 'edgeseg[train]'")
    root = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data"
    files = {k: root / f"mni_icbm152_{k}_tal_nlin_sym_09a_converted.nii.gz" for k in ("t1", "gm", "wm")}
    missing = [str(p.name) for p in files.values() if not p.is_file()]
    if missing:
        raise EdgesegError(f"nilearn at {root} lacks {', '.join(missing)}: reinstall nilearn")
    return files


def mni_labels(gm: np.ndarray, wm: np.ndarray, threshold: float = MNI_TISSUE_THRESHOLD) -> np.ndarray:
    """{0: background, 1: GM, 2: WM} from probability maps in [0, 1]."""
    tissue = (gm + wm) >= threshold
    return np.where(tissue, np.where(wm > gm, 2, 1), 0).astype(np.uint8)


@register_source("mni152")
def load_mni152(target: str = "") -> list[LabelledVolume]:
    """`mni152`: background/GM/WM; `mni152:<target>`: a binary target derived from them (edgeseg.data.targets)."""
    from edgeseg.data.targets import binary_target, check_target

    if target:
        check_target(target)
    nib = _nibabel()
    files = mni152_files()
    images = {k: np.asarray(nib.load(str(p)).dataobj, dtype=np.float32) for k, p in files.items()}
    # nilearn stores the probability maps scaled to 0..255
    label = mni_labels(images["gm"] / 255.0, images["wm"] / 255.0)
    version = importlib.metadata.version("nilearn")
    identity, class_names = f"mni152-2009a-sym (nilearn {version}), tissue threshold {MNI_TISSUE_THRESHOLD}", MNI_CLASS_NAMES
    if target:
        label, class_names = binary_target(target, label)
        identity += f", binary target {target}"
    return [
        LabelledVolume(
            image=images["t1"],
            label=label,
            spacing=(1.0, 1.0, 1.0),
            class_names=class_names,
            identity=identity,
        )
    ]


@register_source("nifti")
def load_nifti_folder(folder: str) -> list[LabelledVolume]:
    nib = _nibabel()
    root = Path(folder)
    images_dir, labels_dir = root / "imagesTr", root / "labelsTr"
    if not images_dir.is_dir() or not labels_dir.is_dir():
        raise EdgesegError(f"{root}: expected imagesTr/ and labelsTr/ folders (see 'edgeseg train --help')")
    class_names = _class_names(root)
    volumes = []
    for img_path in sorted(images_dir.glob("*.nii*")):
        case = img_path.name.split(".nii")[0].removesuffix("_0000")
        candidates = list(labels_dir.glob(case + ".nii*"))
        if not candidates:
            raise EdgesegError(f"{img_path}: no label file {case}.nii.gz in {labels_dir}")
        img, lab = nib.load(str(img_path)), nib.load(str(candidates[0]))
        if img.shape[:3] != lab.shape[:3]:
            raise EdgesegError(f"{candidates[0]}: label shape {lab.shape} differs from image shape {img.shape}")
        img_c, lab_c = nib.as_closest_canonical(img), nib.as_closest_canonical(lab)
        label = np.asarray(lab_c.dataobj).astype(np.int64)
        if label.min() < 0 or label.max() >= len(class_names):
            raise EdgesegError(f"{candidates[0]}: label values {label.min()}..{label.max()} outside 0..{len(class_names) - 1}")
        volumes.append(
            LabelledVolume(
                image=np.asarray(img_c.dataobj, dtype=np.float32)[..., 0] if img_c.ndim == 4 else np.asarray(img_c.dataobj, dtype=np.float32),
                label=label.astype(np.uint8),
                spacing=tuple(float(s) for s in img_c.header.get_zooms()[:3]),
                class_names=class_names,
                identity=f"nifti:{root.name}/{case}",
            )
        )
    if not volumes:
        raise EdgesegError(f"{images_dir}: no .nii or .nii.gz images found")
    return volumes


def _class_names(root: Path) -> tuple[str, ...]:
    meta = root / "dataset.json"
    if not meta.is_file():
        return ("background", "foreground")
    try:
        labels = json.loads(meta.read_text())["labels"]
        by_value = sorted((int(v), k) for k, v in labels.items())
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise EdgesegError(f"{meta}: expected {{\"labels\": {{name: value}}}} ({exc})") from exc
    if [v for v, _ in by_value] != list(range(len(by_value))):
        raise EdgesegError(f"{meta}: label values must be 0..N-1 without gaps")
    return tuple(k for _, k in by_value)
