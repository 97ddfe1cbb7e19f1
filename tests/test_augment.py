"""Augmentation transforms and the augmented-series sampler: seeded, shapes, labels aligned (tiny synthetic arrays)."""
from __future__ import annotations

import numpy as np
import pytest

from edgeseg.data import augment as A
from edgeseg.data.volume import LabelledVolume


def _phantom(n=24, h=40, w=36):
    """A bright ellipse (label 2) inside a darker ring (label 1) on a zero background, (Z, X, Y) RAS-like."""
    yy, xx = np.meshgrid(np.arange(h) - h / 2, np.arange(w) - w / 2, indexing="ij")
    r = np.sqrt((yy / 14) ** 2 + (xx / 11) ** 2)
    label = np.where(r < 0.55, 2, np.where(r < 1.0, 1, 0)).astype(np.uint8)
    image = np.where(label == 2, 200.0, np.where(label == 1, 120.0, 0.0)).astype(np.float32)
    return np.repeat(image[None], n, 0), np.repeat(label[None], n, 0)


def test_warp_identity_is_an_exact_window_and_labels_follow_rotation():
    img, lab = _phantom(1)
    img, lab = img[0], lab[0]
    size = (32, 28)
    centre = np.array([4, 3]) + (np.array(size) - 1) / 2
    i, l = A.warp(img, lab, size, centre)
    np.testing.assert_array_equal(i, img[4:36, 3:31])
    np.testing.assert_array_equal(l, lab[4:36, 3:31])
    i, l = A.warp(img, lab, size, centre, angle_deg=15, zoom=1.1, flip=True, fill=-1.0)
    # intensity and label stay paired: every label-2 pixel is bright, every label-0 pixel is background
    # (bilinear edges blur by < 1 pixel, so compare away from class borders: 0.9 of the pixels at least)
    assert np.mean(i[l == 2] > 150) > 0.9 and np.mean(i[l == 0] <= 60) > 0.9
    assert i.shape == size and l.dtype == np.uint8


def test_intensity_transforms_shapes_and_bounds():
    img, _ = _phantom(3)
    rng = np.random.default_rng(0)
    assert A.gamma(img, 2.0).max() == pytest.approx(200.0, rel=1e-6)  # the maximum is a fixed point
    curve = A.contrast_curve(img, rng)
    assert curve.shape == img.shape and (np.diff(np.unique(curve)) > 0).all()  # monotonic: order kept
    field = A.bias_field(img.shape, rng.uniform(-1, 1, A.BIAS_TERMS), 0.4, np.linspace(-1, 1, 3))
    assert field.shape == img.shape and np.abs(np.log(field)).max() <= 0.4 + 1e-6
    noisy = A.rician(img, rng, 5.0)
    assert noisy.min() >= 0 and abs(noisy[img == 0].mean() - 5.0 * np.sqrt(np.pi / 2)) < 0.5  # Rayleigh mean
    blurred = A.gaussian_blur(img, 1.0)
    assert blurred.shape == img.shape and abs(blurred.sum() - img.sum()) / img.sum() < 0.01  # mass kept
    coarse = A.pixel_spacing(img, 2.0)
    assert coarse.shape == img.shape and abs(coarse.mean() - img.mean()) / img.mean() < 0.03
    thick = A.thick_slices(np.arange(10, dtype=np.float32)[:, None, None] * np.ones((10, 2, 2)), [4, 9], 3)
    np.testing.assert_allclose(thick[:, 0, 0], [4.0, 8.5])  # mean of 3..5; at the end only 8, 9 exist


def test_thick_slices_never_reach_excluded_slices():
    vol = np.arange(6, dtype=np.float32)[:, None, None] * np.ones((6, 2, 2))
    allowed = np.array([True, True, True, False, True, True])
    np.testing.assert_allclose(A.thick_slices(vol, [2], 3, allowed)[:, 0, 0], [1.5])  # 1 and 2, not 3


@pytest.fixture(scope="module")
def sampler():
    from edgeseg.data.series_sampler import SeriesSampler
    from edgeseg.data.slices import SliceConfig

    img, lab = _phantom(60)
    vol = LabelledVolume(np.moveaxis(img, 0, 2).copy(), np.moveaxis(lab, 0, 2).copy(), (1.0, 1.0, 1.0),
                         ("background", "grey_matter", "white_matter"), "phantom")
    cfg = SliceConfig(canvas=(32, 32), block=6, gap=1, normalization="foreground_percentile", fit="foreground_box")
    return SeriesSampler([vol], cfg, A.AugmentConfig(enabled=True), seed=3)


def test_sampler_is_seeded_and_shaped(sampler):
    a_img, a_lab = sampler.epoch(0, 10, group=4)
    b_img, b_lab = sampler.epoch(0, 10, group=4)
    c_img, _ = sampler.epoch(1, 10, group=4)
    assert a_img.shape == (10, 32, 32) and a_lab.shape == (10, 32, 32) and a_img.dtype == np.float32
    np.testing.assert_array_equal(a_img, b_img)
    np.testing.assert_array_equal(a_lab, b_lab)
    assert not np.array_equal(a_img, c_img)  # another epoch, another draw
    assert set(np.unique(a_lab)) <= {0, 1, 2}


def test_sampler_keeps_labels_on_their_tissue(sampler):
    img, lab = sampler.epoch(2, 24, group=8)
    # foreground_percentile puts the background near 0 and the bright tissue near 1, whatever the
    # augmentation: the label-2 pixels must be brighter than the label-0 ones in nearly every slice
    brighter = [img[k][lab[k] == 2].mean() > img[k][lab[k] == 0].mean() + 0.2 for k in range(24) if (lab[k] == 2).any()]
    assert len(brighter) >= 20 and np.mean(brighter) >= 0.9


def test_sampler_targets_only_training_slices(sampler):
    train = set(sampler.volumes[0].train.tolist())
    rng = np.random.default_rng(0)
    for _ in range(20):
        zs = sampler._coverage(rng, sampler.volumes[0])
        assert sampler.volumes[0].allowed[zs].all() and train & set(zs.tolist())
