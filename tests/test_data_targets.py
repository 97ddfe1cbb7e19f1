"""Binary targets derived from the tissue labels (`source = "mni152:<target>"`), on synthetic label volumes."""
import numpy as np
import pytest

from edgeseg.data import load_source
from edgeseg.data.targets import binary_target, list_targets
from edgeseg.errors import EdgesegError


def _brain() -> np.ndarray:
    """A 20^3 block of tissue (GM shell, WM core) with a large and a small enclosed hole and a notch open to the outside."""
    label = np.zeros((24, 24, 24), np.uint8)
    label[2:22, 2:22, 2:22] = 1
    label[6:18, 6:18, 6:18] = 2
    label[8:12, 8:14, 8:12] = 0  # large enclosed hole: 4*6*4 = 96 voxels (the "ventricles")
    label[15:17, 15:17, 15:17] = 0  # small enclosed hole: 8 voxels
    label[0:5, 10:12, 10:12] = 0  # a notch reaching the outside: not enclosed
    return label


def test_ventricles_is_the_largest_enclosed_hole():
    mask, names = binary_target("ventricles", _brain())
    assert names == ("background", "ventricles") and mask.dtype == np.uint8
    assert mask.sum() == 96
    assert mask[8:12, 8:14, 8:12].all() and not mask[15:17, 15:17, 15:17].any() and not mask[0:5].any()


def test_ventricles_without_holes_is_empty_and_white_matter_is_class_2():
    solid = np.ones((6, 6, 6), np.uint8)
    assert binary_target("ventricles", solid)[0].sum() == 0
    label = _brain()
    wm, names = binary_target("white_matter", label)
    assert names == ("background", "white_matter") and wm.sum() == (label == 2).sum()


def test_unknown_target_named_before_any_loading():
    assert list_targets() == ["ventricles", "white_matter"]
    with pytest.raises(EdgesegError, match="did you mean 'ventricles'"):
        load_source("mni152:ventricle")
