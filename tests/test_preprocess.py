"""edgeseg.preprocess: the normalisations and canvas fits every contract names (tiny synthetic arrays)."""
from __future__ import annotations

import numpy as np
import pytest

from edgeseg.preprocess import (centre_origin, crop_or_pad, fit_origin, foreground_box, intensity_stats, normalise,
                                otsu_threshold, percentile_zscore, unwindow, window)
from runtime_fixtures import make_contract


def _head(n=6, h=60, w=50, centre=(30, 25), seed=0):
    """Background 0 + bright 'tissue' disc (values 100..200) centred at `centre`; -> (N, H, W) float32, mask."""
    rng = np.random.default_rng(seed)
    yy, xx = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    disc = (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 < 15 ** 2
    img = np.where(disc, rng.uniform(100, 200, (n, h, w)), 0.0).astype(np.float32)
    return img, np.broadcast_to(disc, img.shape)


def test_foreground_percentile_ignores_background_level_and_amount():
    img, disc = _head()
    z = normalise(img, "foreground_percentile")
    assert abs(np.median(z[~disc])) < 1e-6 and abs(np.percentile(z[disc], 99) - 1.0) < 0.02
    # a background level and twice the background (a larger field of view) leave the tissue where it was
    shifted = normalise(img + 30.0, "foreground_percentile")
    np.testing.assert_allclose(shifted[disc], z[disc], atol=0.02)
    wide = np.concatenate([img, np.zeros_like(img)], axis=2)
    np.testing.assert_allclose(normalise(wide, "foreground_percentile")[..., :50][disc], z[disc], atol=0.02)
    # the v1 z-score moves with the amount of background: the failure this normalisation fixes
    assert abs(percentile_zscore(wide)[..., :50][disc].mean() - percentile_zscore(img)[disc].mean()) > 0.3


def test_percentile_zscore_stats_match_the_v1_function():
    rng = np.random.default_rng(1)
    v = rng.gamma(2.0, 30.0, (3, 20, 20)).astype(np.float32)
    lo, hi = np.percentile(v, (0.5, 99.5))
    c = np.clip(v, lo, hi)  # float64, as v1 computed it: v1 models get bit-identical inputs
    np.testing.assert_array_equal(percentile_zscore(v), ((c - float(c.mean())) / float(c.std())).astype(np.float32))
    with pytest.raises(ValueError, match="unknown normalization"):
        intensity_stats(v, "minmax")


def test_otsu_splits_two_modes():
    v = np.concatenate([np.full(500, 10.0), np.full(300, 90.0)])
    assert 10 < otsu_threshold(v, 0.0, 100.0) <= 90


def test_window_round_trip_and_crop_or_pad_equivalence():
    rng = np.random.default_rng(2)
    img = rng.random((2, 7, 9)).astype(np.float32)
    for origin in [(0, 0), (-3, 2), (4, -5), (-10, -10)]:
        w = window(img, (6, 8), origin, fill=-1.0)
        assert w.shape == (2, 6, 8)
        back = unwindow(w, (7, 9), origin, fill=0)
        r = slice(max(origin[0], 0), max(min(origin[0] + 6, 7), 0))
        c = slice(max(origin[1], 0), max(min(origin[1] + 8, 9), 0))
        np.testing.assert_array_equal(back[:, r, c], img[:, r, c])  # covered pixels come back one to one
    padded = crop_or_pad(img, (12, 8), fill=-1.0)
    np.testing.assert_array_equal(padded, window(img, (12, 8), centre_origin(img.shape, (12, 8)), -1.0))


def test_foreground_box_centres_the_canvas_on_the_anatomy():
    img, disc = _head(h=120, w=100, centre=(30, 70))
    stats = intensity_stats(img, "foreground_percentile")
    origin = fit_origin("foreground_box", img, (40, 40), stats)
    assert abs(origin[0] + 20 - 30) <= 1.5 and abs(origin[1] + 20 - 70) <= 1.5  # canvas centre on the disc centre
    assert fit_origin("center_crop_or_pad", img, (40, 40), stats) == (40, 30)
    assert foreground_box(np.zeros((1, 4, 4), bool)) is None
    canvas = window(img, (40, 40), origin)
    assert np.count_nonzero(canvas) == np.count_nonzero(img)  # the whole disc is on the canvas


def test_runtime_places_the_canvas_on_the_anatomy_and_maps_back_one_to_one():
    from edgeseg.runtime.postprocess import logits_to_source_grid
    from edgeseg.runtime.preprocess import prepare

    c = make_contract(hr_size=(48, 48), scale=2, input_shape=("batch", 1, 24, 24), normalization="foreground_percentile",
                      fit="foreground_box")
    img, disc = _head(n=2, h=140, w=130, centre=(25, 100))  # head in a corner of a large matrix
    lowres, geo = prepare(img, [1, 0, 0, 0, 1, 0], (1.0, 1.0), c)
    assert lowres.shape == (2, 1, 24, 24) and (lowres > 0.3).mean() > 0.3  # the head fills the canvas
    labels = np.zeros((2, 48, 48), np.uint8)
    labels[:, 24:, :] = 1  # lower half of the canvas
    back = logits_to_source_grid(np.eye(2, dtype=np.float32)[labels].transpose(0, 3, 1, 2), geo, c)  # one-hot
    rows = np.where(back[0].any(axis=1))[0]
    assert back.shape == img.shape and rows[0] == geo.origin[0] + 24 and rows[-1] == geo.origin[0] + 47
    # the v1 contract keeps its centred canvas, which misses this head almost entirely
    v1 = make_contract(hr_size=(48, 48), scale=2, input_shape=("batch", 1, 24, 24))
    x1, g1 = prepare(img, [1, 0, 0, 0, 1, 0], (1.0, 1.0), v1)
    assert g1.origin == (46, 41)


def test_largest_component_exact_and_on_blocks():
    from edgeseg.preprocess import largest_component

    m = np.zeros((3, 20, 20), bool)
    m[0:3, 2:8, 2:8] = True      # 108 pixels, over three slices
    m[1, 16:20, 16:20] = True    # 16 pixels, apart
    m[2, 9, 5] = True            # one empty row below the first blob: its own component at block 1
    got = largest_component(m, block=1)
    assert got.sum() == 108 and got[0:3, 2:8, 2:8].all() and not got[2, 9, 5] and not got[1, 16:20, 16:20].any()
    spiral = np.zeros((1, 9, 9), bool)  # one long winding path: propagation must go all the way round
    spiral[0, 0, :] = spiral[0, :, 8] = spiral[0, 8, :] = spiral[0, 2:, 0] = spiral[0, 2, :7] = True
    spiral[0, 4, 4] = True
    assert largest_component(spiral, block=1).sum() == spiral.sum() - 1
    on_blocks = largest_component(m)  # default 4x4 blocks: the near pixel joins, the far blob does not
    assert on_blocks[2, 9, 5] and not on_blocks[1, 16:20, 16:20].any()
    assert not largest_component(np.zeros((2, 5, 5), bool)).any()


def test_foreground_component_ignores_a_bright_object_apart_from_the_head():
    vol, _ = _head()
    marked = vol.copy()
    marked[:, 2:8, 2:8] = 2.0 * vol.max()   # a bright marker in a corner, 5 % of the foreground pixels
    plain = intensity_stats(vol, "foreground_percentile_component")
    assert intensity_stats(marked, "foreground_percentile").scale > 1.5 * plain.scale  # the marker sets p99
    comp = intensity_stats(marked, "foreground_percentile_component")
    assert abs(comp.scale - plain.scale) < 0.02 * plain.scale and abs(comp.offset - plain.offset) < 1e-6 + 0.02 * plain.scale
    # without stray objects the component is the whole foreground: the same statistics as foreground_percentile
    assert intensity_stats(vol, "foreground_percentile") == plain


def test_training_and_runner_contracts_prepare_alike():
    """apply_contract takes training's SliceConfig and the runner's ModelContract: same fields, same canvas."""
    from edgeseg.data.slices import SliceConfig
    from edgeseg.preprocess import apply_contract

    img, _ = _head(n=3, h=70, w=64, centre=(20, 40))
    for norm, fit in [("percentile_zscore", "center_crop_or_pad"), ("foreground_percentile", "foreground_box")]:
        train = apply_contract(img, SliceConfig(canvas=(48, 40), normalization=norm, fit=fit))
        run = apply_contract(img, make_contract(hr_size=(48, 40), input_shape=("batch", 1, 24, 20),
                                                normalization=norm, fit=fit))
        assert train.origin == run.origin and train.intensity == run.intensity and train.image.shape == (3, 48, 40)
        np.testing.assert_array_equal(train.image, run.image)
    assert train.origin != apply_contract(img, SliceConfig(canvas=(48, 40), normalization=norm)).origin  # fit counts


@pytest.mark.parametrize("method", ["area_average", "nearest"])
def test_training_and_runner_make_the_same_lowres_input(method):
    """The contract's lowres_method decides the model's input in training (SliceSet.lowres) and in the runner
    (runtime.preprocess.prepare) alike; nearest takes each 4x4 block's centre-nearest sample, area its mean."""
    from edgeseg.data.volume import SliceSet
    from edgeseg.preprocess import apply_contract, lowres_input
    from edgeseg.runtime.preprocess import prepare

    img, _ = _head(n=2, h=48, w=40, centre=(24, 20))
    c = make_contract(hr_size=(48, 40), scale=4, input_shape=("batch", 1, 12, 10), lowres_method=method)
    run, _ = prepare(img, [1, 0, 0, 0, 1, 0], (1.0, 1.0), c)
    canvas = apply_contract(img, c).image
    train = SliceSet(hr=canvas, label=np.zeros(canvas.shape, np.uint8), positions=np.arange(2), class_names=("bg", "fg"),
                     lowres_method=method).lowres(4)
    np.testing.assert_array_equal(run[:, 0], train)
    block = canvas[1, 4:8, 8:12]
    assert train[1, 1, 2] == (block[2, 2] if method == "nearest" else np.float32(block.astype(np.float64).mean()))
    assert not np.array_equal(train, lowres_input(canvas, 4, "nearest" if method == "area_average" else "area_average"))


def test_unknown_lowres_method_is_refused_by_the_runner():
    from edgeseg.errors import EdgesegError
    from edgeseg.runtime.preprocess import check_contract

    with pytest.raises(EdgesegError, match="lowres_method 'bicubic' is not supported"):
        check_contract(make_contract(lowres_method="bicubic"))
