"""bench robustness: variants keep image and labels aligned; the runner path measures them (tiny synthetic data)."""
from __future__ import annotations

import numpy as np
import pytest

from edgeseg.bench import robustness_variants as V


def _volumes(z=12, h=60, w=50):
    yy, xx = np.meshgrid(np.arange(h) - h / 2, np.arange(w) - w / 2, indexing="ij")
    r = np.sqrt((yy / 22) ** 2 + (xx / 18) ** 2)
    label = np.where(r < 0.5, 2, np.where(r < 1.0, 1, 0)).astype(np.uint8)
    image = np.where(label == 2, 200.0, np.where(label == 1, 120.0, 0.0)).astype(np.float32)
    return np.repeat(image[None], z, 0), np.repeat(label[None], z, 0)


def test_variants_are_aligned_and_shaped():
    t1, lab = _volumes()
    variants = V.build_variants(t1, lab, [2, 3, 4, 8, 9])
    kinds = {v.kind for v in variants}
    assert {"in-distribution", "coverage", "background", "bias", "noise", "gamma", "thick slices", "pixel spacing",
            "rotation", "field of view", "sagittal reformat", "coronal reformat"} <= kinds
    for v in variants:
        s = v.stack
        assert s.images.shape == s.labels.shape and len(s.z) == len(s.images), v.name
        # the tissue is where the labels say, whatever the variant (bilinear edges: 0.9 of the pixels at least)
        fg = s.labels > 0
        assert np.mean(s.images[fg] > s.images[~fg].mean()) > 0.9, v.name
    by = {v.name: v.stack for v in variants}
    assert by["pixel spacing 2 mm"].images.shape[1:] == (128, 128) and by["pixel spacing 2 mm"].spacing == (2.0, 2.0)
    assert [len(v.stack.z) for v in variants if v.kind == "coverage"][:2] == [3, 2]  # the two contiguous blocks
    assert by["off-centre field of view"].images.shape[1:] == (320, 320)
    g = V.geometry(by["pixel spacing 0.7 mm"])
    assert g["spacing"] == (0.7, 0.7) and len(g["positions"]) == 5
    sag = by["sagittal 3-D, inferior block (3 rows)"]
    head_columns = int(np.count_nonzero(lab.any(axis=(0, 1))))  # sagittal positions through the head, + 4 each side
    assert sag.images.shape == (head_columns + 2 * 4, 3, 256) and sag.orientation == (0.0, 1.0, 0.0, 0.0, 0.0, -1.0)
    g = V.geometry(sag)
    assert g["slice_spacing"] == 1.0 and g["positions"][1][0] == g["positions"][0][0] - 1  # toward R


def test_reslice_is_the_axial_stack_reordered():
    t1, lab = _volumes()
    base = V.base_stack(t1, lab, [3, 4, 5, 6])
    for plane, back in (("sagittal", lambda a: np.transpose(a, (1, 2, 0))[::-1, :, ::-1]),
                        ("coronal", lambda a: np.transpose(a, (1, 0, 2))[::-1])):
        s = V.reslice(base, plane, margin=1000)
        assert np.array_equal(back(s.images), base.images) and np.array_equal(back(s.labels), base.labels), plane
    with pytest.raises(ValueError, match="evenly spaced"):
        V.reslice(V.base_stack(t1, lab, [2, 3, 7]), "sagittal")


@pytest.mark.parametrize("fit", ["foreground_box", "center_crop_or_pad"])
def test_runner_measures_variants_and_foreground_box_holds_off_centre(tmp_path, fit):
    pytest.importorskip("pydicom")
    from edgeseg.bench.robustness import measure
    from runtime_fixtures import export_threshold_model, make_contract

    c = make_contract(hr_size=(96, 96), input_shape=("batch", 1, 48, 48), normalization="foreground_percentile", fit=fit)
    model = export_threshold_model(tmp_path / "m.onnx", c)
    t1, lab = _volumes()
    variants = [v for v in V.build_variants(t1, lab, [2, 3, 4])
                if v.kind in ("in-distribution", "field of view") or v.name.startswith("sagittal 3-D, inferior")]
    rows = measure(str(model), variants, threads=1)
    assert [r["status"] for r in rows] == ["ok", "ok", "ok"]
    assert "reformatted: sagittal series" in rows[2]["warnings"][0]
    if fit == "foreground_box":  # the same voxels re-sliced: the same white matter
        assert abs(rows[2]["dice"]["white_matter"] - rows[0]["dice"]["white_matter"]) < 0.01
    rows = rows[:2]
    # the threshold model calls its normalised input's bright part (the inner ellipse) class 2; its class 1
    # also takes the canvas' background, so only class 2 is comparable between matrices
    base, off = (r["dice"]["white_matter"] for r in rows)
    assert base > 0.85 and rows[0]["truth_ml"]["white_matter"] > 0
    if fit == "foreground_box":
        assert abs(off - base) < 0.01  # the canvas follows the head: same result wherever it sits in the matrix
    else:
        assert off < base - 0.3  # a centred 96x96 canvas misses most of a head in the corner of 320x320


def test_normalization_ablation_copies_the_model_with_another_contract(tmp_path):
    from edgeseg.bench.robustness import with_normalization
    from edgeseg.contract import read_contract
    from edgeseg.errors import EdgesegError
    from runtime_fixtures import export_threshold_model, make_contract

    model = export_threshold_model(tmp_path / "m.onnx", make_contract(normalization="foreground_percentile"))
    copy = with_normalization(str(model), "foreground_percentile_component", tmp_path)
    assert read_contract(copy).normalization == "foreground_percentile_component"
    assert read_contract(str(model)).normalization == "foreground_percentile"  # the original untouched
    with pytest.raises(EdgesegError, match="unknown"):
        with_normalization(str(model), "otsu_only", tmp_path)


def test_coronal_variants_carry_coronal_geometry_and_the_runner_takes_them(tmp_path):
    """The binary SR-head task is coronal: its variants are coronal series (rows toward I, columns toward L,
    slices along A) that a coronal model's runner accepts; an axial model's runner refuses them."""
    pytest.importorskip("pydicom")
    from edgeseg.bench.robustness import measure
    from runtime_fixtures import export_threshold_model, make_contract

    t1, lab = _volumes()
    variants = V.build_variants(t1, lab, [2, 3, 4, 8, 9], plane="coronal")
    assert not {"sagittal reformat", "coronal reformat"} & {v.kind for v in variants}
    assert {v.stack.orientation for v in variants} == {(1.0, 0.0, 0.0, 0.0, 0.0, -1.0)}
    assert [v.name for v in variants if v.kind == "coverage"][:2] == ["posterior test block only (3 slices)",
                                                                     "middle test block only (2 slices)"]
    g = V.geometry(variants[0].stack)
    assert np.allclose(g["positions"][1] - g["positions"][0], (0.0, -1.0, 0.0))   # slice index toward A
    assert np.allclose(g["positions"][0][[0, 2]], (-127.5, 127.5))                  # matrix centred, top row superior
    # slices that differ (the disc shrinks along the stack), so a mask compared in the wrong slice order fails
    t1, lab = t1.copy(), lab.copy()
    for z in range(len(t1)):
        gone = np.arange(t1.shape[1]) < 3 * z
        t1[z, gone], lab[z, gone] = 0, 0
    picked = [V.build_variants(t1, lab, [2, 3, 4, 8, 9], plane="coronal")[0]]
    picked.append(next(v for v in variants if v.kind == "rotation"))
    kw = dict(hr_size=(96, 96), input_shape=("batch", 1, 48, 48), normalization="foreground_percentile", fit="foreground_box")
    coronal = export_threshold_model(tmp_path / "c.onnx", make_contract(plane="coronal", in_plane_axes=("I", "L"), **kw))
    rows = measure(str(coronal), picked, threads=1)
    axial = export_threshold_model(tmp_path / "a.onnx", make_contract(**kw))
    same_as_axial = measure(str(axial), V.build_variants(t1, lab, [2, 3, 4, 8, 9])[:1], threads=1)[0]
    assert [r["status"] for r in rows] == ["ok", "ok"]
    assert rows[0]["dice"] == pytest.approx(same_as_axial["dice"], abs=1e-9)  # the same pixels, the same mask
    assert [r["status"] for r in measure(str(axial), picked[:1], threads=1)] == ["failed"]
