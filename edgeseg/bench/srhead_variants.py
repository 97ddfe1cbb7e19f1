"""The variants of the SR-head benchmark (one registry: key -> how the model is built and trained) and the
two low-resolution input samplings.

Baselines: "lr" is the paper's contrast (network trained and predicting at low resolution on LR labels,
logits upsampled bilinearly at test; "lr-nn" is the same checkpoint with its low-res *mask* repeated
to full resolution, the plainest reading of "upsampled at test"); "a" is edgeseg's stronger one (no head, but the bilinearly
upsampled logits are trained against the HR label). "d" is the full-resolution upper bound.
"""
from __future__ import annotations

from dataclasses import dataclass, replace


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


# the bench's input samplings -> the contract's lowres_method (edgeseg.preprocess.LOWRES_METHODS)
SAMPLINGS = {"area": "area_average", "nearest": "nearest"}


def recipe_for(base, model: str, scale: int, key: str, seed: int, sampling: str = "area"):
    """The training recipe of one benchmark cell (model width 0 = the backbone's default, no [model.options]); the sampling goes into
    [data.slices] lowres_method, so the cell's exported contract says how its input is made."""
    v = VARIANTS[key]
    m = replace(base.model, name=model, scale=1 if v.full_res else scale, sr_head=bool(v.head),
                head=v.head or base.model.head, width=0, options={})
    data = replace(base.data, slices=replace(base.data.slices, lowres_method=SAMPLINGS[sampling]))
    return replace(base, model=m, data=data, train=replace(base.train, supervision=v.supervision, seed=seed))


def with_sampling(splits, sampling: str):
    """(sets, identity) from `load_splits` with each SliceSet's lowres_method set to the given sampling."""
    if sampling not in SAMPLINGS:
        raise ValueError(f"unknown input sampling '{sampling}' ({', '.join(SAMPLINGS)})")
    sets, identity = splits
    if sampling == "area":
        return splits
    return {name: replace(s, lowres_method=SAMPLINGS[sampling]) for name, s in sets.items()}, f"{identity}|{sampling}"
