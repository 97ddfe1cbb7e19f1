"""Any-plane 3-D series (runtime/reformat.py): a sagittal or coronal series made from the real MNI152 T1 is
segmented by the released model through `edgeseg run` like the axial series of the same voxels, its SEG
references the sagittal instances, its mask.nii.gz lies on the same anatomy; thick or short series are
refused with the reason. Small data: 8 axial rows (positions 60-67, a test-split block) of the template."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgeseg.cli import main
from edgeseg.errors import EdgesegError

pytest.importorskip("nilearn")
pytest.importorskip("nibabel")
pydicom = pytest.importorskip("pydicom")

RELEASED = Path(__file__).resolve().parents[1] / "export" / "unet-s2-brain-nano" / "unet-s2-brain-nano.int8.onnx"
ROWS = np.arange(60, 68)   # axial positions of the template (one contiguous test-split block)
AGREE = 0.98               # Dice per class between the reformatted run and the axial run of the same voxels


@pytest.fixture(scope="module")
def stacks():
    from edgeseg.bench import robustness_variants as V
    from edgeseg.bench.robustness import template_display

    t1, lab, _ = template_display()
    base = V.base_stack(t1, lab, ROWS)
    return {"axial": base, "sagittal": V.reslice(base, "sagittal"), "coronal": V.reslice(base, "coronal")}


def _write(folder: Path, stack, tag: str) -> list:
    from edgeseg.bench.robustness_variants import geometry
    from edgeseg.data.make_dicom import series_datasets

    folder.mkdir(parents=True)
    datasets = series_datasets(stack.images, geometry(stack), f"edgeseg-test-reformat-{tag}", f"T1 {tag}",
                               slope=1 / 16, slice_thickness=stack.thickness)
    for i, ds in enumerate(datasets):
        ds.save_as(folder / f"MR{i:04d}.dcm", enforce_file_format=True)
    return datasets


def _run(tmp_path: Path, stack, tag: str, *extra) -> tuple[int, Path, list]:
    datasets = _write(tmp_path / f"in-{tag}", stack, tag)
    out = tmp_path / f"out-{tag}"
    rc = main(["run", str(RELEASED), str(tmp_path / f"in-{tag}"), "--out", str(out), "--threads", "1", "--quiet",
               "--no-overlay", "--layout", "uid", *extra])
    return rc, out, datasets


def _to_axial(mask: np.ndarray, plane: str) -> np.ndarray:
    """A reslice()d stack's array back in the axial display order (inverse of robustness_variants.reslice)."""
    if plane == "sagittal":   # S[n, i, j] = D[K-1-i, j, C-1-n]
        return np.transpose(mask, (1, 2, 0))[::-1, :, ::-1]
    return np.transpose(mask, (1, 0, 2))[::-1]  # coronal: C[n, i, j] = D[K-1-i, n, j]


def _dice(a, b, k) -> float:
    return 2 * np.sum((a == k) & (b == k)) / max(1, np.sum(a == k) + np.sum(b == k))


@pytest.fixture(scope="module")
def axial_mask(stacks, tmp_path_factory):
    rc, out, _ = _run(tmp_path_factory.mktemp("axial"), stacks["axial"], "axial", "--also", "npy")
    assert rc == 0
    (npy,) = out.rglob("mask.npy")
    return np.load(npy)


@pytest.mark.parametrize("plane", ["sagittal", "coronal"])
def test_reformatted_series_agrees_with_the_axial_run(stacks, axial_mask, tmp_path, plane):
    rc, out, datasets = _run(tmp_path, stacks[plane], plane, "--also", "npy")
    assert rc == 0
    (folder,) = {p.parent for p in out.rglob("report.json") if p.parent != out}
    report = json.loads((folder / "report.json").read_text())
    assert any(w.startswith(f"reformatted: {plane} series of {len(datasets)} slices segmented as 8 axial")
               for w in report["warnings"])
    mask = np.load(folder / "mask.npy")
    assert mask.shape == stacks[plane].images.shape  # one mask frame per source instance, source pixels
    back = _to_axial(mask, plane)
    # reslice() kept the sagittal/coronal slices with signal: the axial column / row each one came from
    if plane == "sagittal":
        cols = np.round(stacks[plane].positions[:, 0] + (256 - 1) / 2).astype(int)  # x_LPS = col - 127.5
        ref = axial_mask[:, :, cols[::-1]]
    else:
        rows = np.round(stacks[plane].positions[:, 1] + (256 - 1) / 2).astype(int)  # y_LPS = row - 127.5
        ref = axial_mask[:, rows]
    for k in (1, 2):
        assert _dice(back, ref, k) >= AGREE, (plane, k, _dice(back, ref, k))
    truth = stacks[plane].labels
    assert np.mean([_dice(mask, truth, k) for k in (1, 2)]) >= 0.9  # and right against the template's labels


def test_sagittal_seg_references_the_sagittal_instances_and_nifti_lies_on_the_anatomy(stacks, tmp_path):
    nib = pytest.importorskip("nibabel")
    pytest.importorskip("highdicom")
    rc, out, datasets = _run(tmp_path, stacks["sagittal"], "sagittal", "--also", "nifti", "--also", "npy")
    assert rc == 0
    (seg_path,) = out.rglob("seg.dcm")
    seg = pydicom.dcmread(seg_path)
    sops = {ds.SOPInstanceUID for ds in datasets}
    (ref_series,) = seg.ReferencedSeriesSequence
    assert ref_series.SeriesInstanceUID == datasets[0].SeriesInstanceUID
    assert {i.ReferencedSOPInstanceUID for i in ref_series.ReferencedInstanceSequence} == sops
    per_frame = {f.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
                 for f in seg.PerFrameFunctionalGroupsSequence}
    assert per_frame == sops and int(seg.NumberOfFrames) == 2 * len(datasets)
    assert list(seg.SharedFunctionalGroupsSequence[0].PlaneOrientationSequence[0].ImageOrientationPatient) == \
        list(datasets[0].ImageOrientationPatient)
    # the SEG's frames hold the mask of their own source instance
    mask = np.load(seg_path.parent / "mask.npy")
    pixels = seg.pixel_array.reshape(-1, *mask.shape[1:])
    frame_of = {ds.SOPInstanceUID: i for i, ds in enumerate(datasets)}
    for f, per in enumerate(seg.PerFrameFunctionalGroupsSequence[::17]):
        src = frame_of[per.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID]
        k = int(per.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
        assert np.array_equal(pixels[f * 17] > 0, mask[src] == k)
    # mask.nii.gz: each voxel's world position (its affine) holds the template label found there
    img = nib.load(str(seg_path.parent / "mask.nii.gz"))
    nii = np.asarray(img.dataobj)                       # (cols, rows, slices)
    assert np.array_equal(np.transpose(nii, (2, 1, 0)), mask)
    rng = np.random.default_rng(0)
    sag = stacks["sagittal"].images
    ijk = np.stack([rng.integers(0, n, 300) for n in nii.shape], axis=1)  # (col, row, slice) voxels
    world = nib.affines.apply_affine(img.affine, ijk)    # RAS mm
    # the axial display grid of the same voxels: x_LPS = col - 127.5, y_LPS = row - 127.5, z = position
    col = np.round(-world[:, 0] + 127.5).astype(int)
    row = np.round(-world[:, 1] + 127.5).astype(int)
    z = np.round(world[:, 2]).astype(int) - ROWS[0]
    here, there = sag[ijk[:, 2], ijk[:, 1], ijk[:, 0]], stacks["axial"].images[z, row, col]
    assert np.count_nonzero(here) > 100 and np.array_equal(here, there)


def test_thick_sagittal_series_is_refused_with_the_reason(stacks, tmp_path):
    from edgeseg.bench.robustness_variants import Stack

    s = stacks["sagittal"]
    idx = np.arange(40, 65, 5)  # 5 slices, 5 mm apart
    thick = Stack(s.images[idx], s.labels[idx], s.z[idx], s.spacing, 5.0, s.orientation, s.positions[idx])
    rc, out, _ = _run(tmp_path, thick, "thick")
    assert rc == 1
    (item,) = json.loads((out / "run_report.json").read_text())["items"]
    assert item["status"] == "failed"
    assert item["reason"] == ("sagittal series (in-plane axes I/P) cannot be reformatted to the model's axial plane: "
                              "5 slice(s), at least 32 needed; slices 5.00 mm apart vs 1.00 mm pixels, at most 2x "
                              "for near-isotropic voxels")
    assert not list(out.rglob("seg.dcm"))


def test_plan_refuses_gaps_and_leaves_axial_alone():
    from edgeseg.runtime.reformat import plan
    from runtime_fixtures import make_contract

    c = make_contract()
    assert plan((1, 0, 0, 0, 1, 0), (1, 1), 1.0, 40, c) is None  # the model's plane: the axial path as it was
    assert plan((-1, 0, 0, 0, -1, 0), (1, 1), 1.0, 3, c) is None  # also flipped axes
    sag = (0, 1, 0, 0, 0, -1)
    positions = [np.array([-x, 0.0, 0.0]) for x in [*range(20), *range(22, 42)]]  # a 2 mm gap after 20 slices
    with pytest.raises(EdgesegError, match=r"sagittal series: slices are not evenly spaced \(1.00..3.00 mm"):
        plan(sag, (1, 1), 1.0, 40, c, positions)
    p = plan(sag, (1.0, 0.9), 1.2, 40, c, [np.array([-1.2 * i, 0.0, 0.0]) for i in range(40)])
    assert (p.through, p.spacing, p.slice_spacing, p.source_plane) == (1, (1.2, 0.9), 1.0, "sagittal")
    with pytest.raises(EdgesegError, match="at least 32 needed"):
        plan((1, 0, 0, 0, 0, -1), (1, 1), 1.0, 31, c)  # coronal, too few slices
    sheared = [np.array([-i, 0.0, 0.1 * i]) for i in range(40)]  # positions drift along S: a tilted stack
    with pytest.raises(EdgesegError, match=r"advance 5.7 deg away from the slice normal"):
        plan(sag, (1, 1), 1.0, 40, c, sheared)


def test_array_api_reformats_a_sagittal_volume_like_the_axial_one(stacks):
    from edgeseg.bench.robustness_variants import reslice
    from edgeseg.runtime import Segmenter

    seg = Segmenter(RELEASED, provider="cpu", threads=1)
    base = stacks["axial"]
    full = reslice(base, "sagittal", margin=1000)  # every column kept: exactly the axial voxels, re-ordered
    axial = seg.predict(base.images, spacing=(1.0, 1.0))
    sag = seg.predict(full.images, spacing=full.spacing, orientation=full.orientation, slice_spacing=1.0)
    assert np.array_equal(_to_axial(sag, "sagittal"), axial)  # the same input to the model: the same mask
    with pytest.raises(EdgesegError, match="predict: sagittal series .* no slice spacing given"):
        seg.predict(full.images, spacing=full.spacing, orientation=full.orientation)


def test_sagittal_nifti_takes_the_same_path(stacks, tmp_path):
    """A sagittal NIfTI (the DICOM run's own mask affine, the same stored values) gives the DICOM run's mask."""
    nib = pytest.importorskip("nibabel")
    rc, out, _ = _run(tmp_path, stacks["sagittal"], "sagittal", "--also", "nifti")
    assert rc == 0
    (dicom_mask,) = out.rglob("mask.nii.gz")
    ref = nib.load(str(dicom_mask))
    values = np.clip(np.round(stacks["sagittal"].images * 16), 0, 4095) / 16  # what the DICOM files store
    nib.save(nib.Nifti1Image(np.transpose(values, (2, 1, 0)).astype(np.float32), ref.affine), tmp_path / "sag.nii.gz")
    assert main(["run", str(RELEASED), str(tmp_path / "sag.nii.gz"), "--out", str(tmp_path / "nout"), "--quiet",
                 "--no-overlay", "--threads", "1"]) == 0
    (got,) = (tmp_path / "nout").rglob("mask.nii.gz")
    assert np.array_equal(np.asarray(nib.load(str(got)).dataobj), np.asarray(ref.dataobj))
