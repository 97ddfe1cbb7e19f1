"""Dataset: labels, low-res input, split by position with gaps, preprocessing helpers."""
import numpy as np
import pytest

from edgeseg.data import build_slice_sets, load_source, split_positions
from edgeseg.data.slices import SliceConfig
from edgeseg.data.sources import mni_labels
from edgeseg.errors import EdgesegError
from edgeseg.orientation import reorient_2d
from edgeseg.preprocess import area_downsample, crop_or_pad, percentile_zscore


@pytest.fixture(scope="module")
def mni_sets():
    return build_slice_sets(load_source("mni152"))


def test_split_has_no_overlap_and_gaps():
    splits = split_positions(np.arange(150), block=10, gap=2, pattern=("train", "train", "val", "train", "test"))
    owner = {}
    for name, pos in splits.items():
        for p in pos:
            assert p not in owner, f"slice {p} in {owner.get(p)} and {name}"
            owner[p] = name
    ordered = sorted(owner)
    for a, b in zip(ordered, ordered[1:]):
        if owner[a] != owner[b]:
            assert b - a > 2, f"slices {a} ({owner[a]}) and {b} ({owner[b]}) are neighbours across splits"


def test_split_is_deterministic():
    a = split_positions(np.arange(80)[::-1], 8, 2, ("train", "val", "test"))
    b = split_positions(np.arange(80), 8, 2, ("train", "val", "test"))
    assert all(np.array_equal(a[k], b[k]) for k in a)


def test_split_rejects_bad_config():
    with pytest.raises(EdgesegError, match="larger than gap"):
        split_positions(np.arange(10), 2, 2, ("train",))
    with pytest.raises(EdgesegError, match="unknown split"):
        split_positions(np.arange(10), 5, 1, ("train", "holdout"))


def test_mni_labels_threshold_and_argmax():
    gm = np.array([0.1, 0.3, 0.6, 0.2])
    wm = np.array([0.1, 0.3, 0.3, 0.7])
    assert mni_labels(gm, wm).tolist() == [0, 1, 1, 2]  # 0.2 < 0.5 -> background; tie -> GM


def test_mni_slice_sets_are_real_and_disjoint(mni_sets):
    for name in ("train", "val", "test"):
        s = mni_sets[name]
        assert s.hr.shape[1:] == (224, 192) and s.hr.dtype == np.float32
        assert set(np.unique(s.label)) == {0, 1, 2}
    positions = [set(mni_sets[k].positions.tolist()) for k in ("train", "val", "test")]
    assert not (positions[0] & positions[1] or positions[0] & positions[2] or positions[1] & positions[2])
    assert len(mni_sets["train"]) > 3 * len(mni_sets["test"]) > 0


def test_lowres_is_area_average(mni_sets):
    s = mni_sets["test"]
    lr = s.lowres(4)
    assert lr.shape == (len(s), 56, 48)
    # block mean, checked by hand for one block (float tolerance of a float32 mean)
    np.testing.assert_allclose(lr[0, 10, 7], s.hr[0, 40:44, 28:32].mean(), rtol=1e-5)


def test_area_downsample_rejects_indivisible():
    with pytest.raises(ValueError, match="not divisible"):
        area_downsample(np.zeros((5, 6)), 2)


def test_crop_or_pad_round_trip():
    img = np.arange(7 * 9, dtype=np.float32).reshape(7, 9)
    padded = crop_or_pad(img, (12, 8))
    assert padded.shape == (12, 8)
    back = crop_or_pad(padded, (7, 9))
    np.testing.assert_array_equal(back[:, :8], img[:, :8])  # the last column was cropped, the rest restored
    assert (back[:, 8] == 0).all()


def test_percentile_zscore_unit_scale():
    v = np.random.default_rng(0).normal(100, 20, size=(20, 20, 20))
    z = percentile_zscore(v)
    assert abs(z.mean()) < 1e-4 and abs(z.std() - 1) < 1e-4


def test_reorient_round_trip_and_display_convention():
    a = np.arange(6).reshape(2, 3)  # rows toward R, columns toward A
    b = reorient_2d(a, ("R", "A"), ("P", "L"))
    assert b[0, 0] == a[1, 2]  # most anterior row, most right column first
    np.testing.assert_array_equal(reorient_2d(b, ("P", "L"), ("R", "A")), a)


def test_unknown_source_and_axis():
    with pytest.raises(EdgesegError, match="unknown data source"):
        load_source("kaggle:brains")
    with pytest.raises(EdgesegError, match="unknown slice axis"):
        build_slice_sets(load_source("mni152"), SliceConfig(axis="oblique"))


def test_nifti_folder_layout(tmp_path):
    nib = pytest.importorskip("nibabel")
    (tmp_path / "imagesTr").mkdir()
    (tmp_path / "labelsTr").mkdir()
    rng = np.random.default_rng(0)
    img = rng.normal(size=(16, 16, 40)).astype(np.float32)
    lab = (img > 0.5).astype(np.uint8)
    nib.save(nib.Nifti1Image(img, np.eye(4)), tmp_path / "imagesTr" / "case1_0000.nii.gz")
    nib.save(nib.Nifti1Image(lab, np.eye(4)), tmp_path / "labelsTr" / "case1.nii.gz")
    (vol,) = load_source(f"nifti:{tmp_path}")
    assert vol.class_names == ("background", "foreground") and vol.image.shape == (16, 16, 40)
    sets = build_slice_sets([vol], SliceConfig(canvas=(16, 16), block=4, gap=1, min_foreground=0.0))
    assert sum(len(s) for s in sets.values()) > 30


def test_nifti_folder_missing_label(tmp_path):
    nib = pytest.importorskip("nibabel")
    (tmp_path / "imagesTr").mkdir()
    (tmp_path / "labelsTr").mkdir()
    nib.save(nib.Nifti1Image(np.zeros((4, 4, 4), np.float32), np.eye(4)), tmp_path / "imagesTr" / "x.nii.gz")
    with pytest.raises(EdgesegError, match="no label file"):
        load_source(f"nifti:{tmp_path}")
