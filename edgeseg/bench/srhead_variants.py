"""The variants of the SR-head benchmark (one registry: key -> how the model is built and trained) and the
two low-resolution input samplings.

Baselines: "lr" is the paper's contrast (network trained and predicting at low resolution on LR labels,
logits upsampled bilinearly at test; "lr-nn" is the same checkpoint with its low-res *mask* repeated
to full resolution, the plainest reading of "upsampled at test"); "a" is edgeseg's stronger one (no head, but the bilinearly
upsampled logits are trained against the HR label). "d" is the full-resolution upper bound.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, replace

import numpy as np

from edgeseg.data.volume import SliceSet


@dataclass(frozen=True)
class Variant:
    label: str
    head: str = ""  # SR head registry name; "" = no head
    supervision: str = "final"  # edgeseg.train.supervision mode
    full_res: bool = False  # scale 1 input (trained once per backbone and input sampling)
    derived: str = ""  # not trained: evaluated from this variant's checkpoint in another way


VARIANTS = {
    "lr": Variant("low-res, LR labels (paper's baseline)", supervision="base"),
    "lr-nn": Variant("lr network, LR mask upsampled nearest", supervision="base", derived="lr"),
    "a": Variant("low-res, bilinear, HR loss"),
    "b": Variant("pixelshuffle head", head="pixelshuffle"),
    "b-ds": Variant("pixelshuffle head + deep sup.", head="pixelshuffle", supervision="deep"),
    "c": Variant("J-Net head + deep sup.", head="jnet", supervision="deep"),
    "c-nods": Variant("J-Net head, final loss only", head="jnet"),
    "c-auth": Variant("J-Net head, authors' sharing + deep sup.", head="jnet-authors", supervision="deep"),
    "e": Variant("one-stage head (no cascade) + deep sup.", head="onestage", supervision="deep"),
    "d": Variant("full-res input, no head", full_res=True),
}
DEFAULT_VARIANTS = ("lr", "a", "b", "c", "c-nods", "d")


def recipe_for(base, model: str, scale: int, key: str, seed: int):
    """The training recipe of one benchmark cell (model width 0 = the backbone's default)."""
    v = VARIANTS[key]
    m = replace(base.model, name=model, scale=1 if v.full_res else scale, sr_head=bool(v.head),
                head=v.head or base.model.head, width=0)
    return replace(base, model=m, train=replace(base.train, supervision=v.supervision, seed=seed))


def nearest_lowres(hr: np.ndarray, scale: int) -> np.ndarray:
    """Nearest-neighbour decimation (J-Net's cv2.INTER_NEAREST inputs: aliased, no averaging), sampling the
    pixel nearest each block's centre -- the same sample the deep-supervision base label uses."""
    if scale == 1:
        return np.asarray(hr, dtype=np.float32)
    off = scale // 2
    return np.ascontiguousarray(hr[..., off::scale, off::scale], dtype=np.float32)


def with_sampling(splits, sampling: str):
    """(sets, identity) from `load_splits` with each SliceSet's `lowres` replaced by the given sampling."""
    if sampling == "area":
        return splits
    if sampling != "nearest":
        raise ValueError(f"unknown input sampling '{sampling}' (area, nearest)")
    sets, identity = splits
    return {name: _nearest_set(s) for name, s in sets.items()}, f"{identity}|nearest"


class NearestSliceSet(SliceSet):
    """A SliceSet whose low-resolution input is nearest-sampled instead of area-averaged."""

    def lowres(self, scale: int) -> np.ndarray:
        return nearest_lowres(self.hr, scale)


def _nearest_set(slice_set) -> NearestSliceSet:
    return NearestSliceSet(**{f.name: getattr(slice_set, f.name) for f in dataclasses.fields(slice_set)})
