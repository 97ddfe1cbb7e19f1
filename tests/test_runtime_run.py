"""End-to-end `edgeseg run`: sample series -> DICOM SEG equal to the model's output; bad inputs; preprocessing."""
from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pydicom
import pytest
from pydicom.data import get_testdata_file

from edgeseg.cli import main
from edgeseg.contract import read_contract
from edgeseg.safe_paths import readable_name
from edgeseg.preprocess import area_downsample, crop_or_pad, percentile_zscore
from runtime_fixtures import (SAMPLE, export_threshold_model, export_tiny_model, make_contract, new_series,
                              sample_datasets, write_series)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("models")
    return {"threshold": export_threshold_model(d / "threshold.onnx"), "unet": export_tiny_model(d / "unet.onnx"),
            "dir": d}


def reference_mask(model: Path, datasets) -> np.ndarray:
    """The model's output on the sample slices, computed directly (display orientation, 1 mm: no resampling)."""
    c = read_contract(str(model))
    vol = np.stack([d.pixel_array * float(d.RescaleSlope) + float(d.RescaleIntercept) for d in datasets]).astype(np.float32)
    z = percentile_zscore(vol, c.clip_percentiles)
    x = area_downsample(crop_or_pad(z, c.hr_size, fill=float(z.min())), c.scale)[:, None]
    sess = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    logits = np.concatenate([sess.run(None, {c.input_name: x[i:i + 1]})[0] for i in range(len(x))])
    return crop_or_pad(logits.argmax(1).astype(np.uint8), vol.shape[1:], fill=0)


def _digest(paths) -> dict:
    return {str(p): hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in paths}


def test_sample_series_to_dicom_seg(models, tmp_path):
    hd = pytest.importorskip("highdicom")
    before = _digest(SAMPLE.glob("*.dcm"))
    out = tmp_path / "out"
    rc = main(["run", str(models["threshold"]), str(SAMPLE), "--out", str(out), "--threads", "1", "--quiet",
               "--also", "npy", "--also", "nifti"])
    assert rc == 0
    assert _digest(SAMPLE.glob("*.dcm")) == before  # inputs never modified
    src = sorted(sample_datasets(), key=lambda d: float(d.ImagePositionPatient[2]))
    # readable layout: OUT/<PatientID>_<StudyDate>/<SeriesNumber>_<SeriesDescription>/
    folder = out / f"{src[0].PatientID}_{src[0].StudyDate}" / readable_name(f"{src[0].SeriesNumber}_{src[0].SeriesDescription}")
    assert oct(folder.stat().st_mode & 0o777) == "0o755" and oct((folder / "seg.dcm").stat().st_mode & 0o777) == "0o644"
    assert sorted(p.name for p in folder.iterdir()) == ["mask.nii.gz", "mask.npy", "overlay.png", "report.json", "seg.dcm"]
    seg = hd.seg.segread(folder / "seg.dcm")
    assert [seg.get_segment_description(k).segment_label for k in (1, 2)] == ["grey_matter", "white_matter"]
    uids = [d.SOPInstanceUID for d in src]
    mask = seg.get_pixels_by_source_instance(source_sop_instance_uids=uids, combine_segments=True)
    expected = reference_mask(models["threshold"], src)
    assert 0.05 < (expected == 2).mean() < 0.5  # a non-trivial mask
    np.testing.assert_array_equal(mask, expected)
    np.testing.assert_array_equal(np.load(folder / "mask.npy"), expected)
    raw = pydicom.dcmread(folder / "seg.dcm")
    ref_uids = [f.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
                for f in raw.PerFrameFunctionalGroupsSequence]
    positions = [[float(v) for v in f.PlanePositionSequence[0].ImagePositionPatient] for f in raw.PerFrameFunctionalGroupsSequence]
    by_uid = {d.SOPInstanceUID: [float(v) for v in d.ImagePositionPatient] for d in src}
    assert set(ref_uids) == set(uids) and all(np.allclose(p, by_uid[u]) for p, u in zip(positions, ref_uids))
    assert raw.FrameOfReferenceUID == src[0].FrameOfReferenceUID and raw.StudyInstanceUID == src[0].StudyInstanceUID
    report = json.loads((folder / "report.json").read_text())
    assert set(report["timings_s"]) == {"read", "preprocess", "infer", "postprocess", "write"}
    voxel_ml = 1.0 * 1.0 * 4.0 / 1000
    assert report["volumes_ml"]["white_matter"] == pytest.approx((expected == 2).sum() * voxel_ml, rel=1e-6)
    assert report["provider"] == "CPUExecutionProvider"
    if shutil.which("dciodvfy"):
        r = subprocess.run(["dciodvfy", str(folder / "seg.dcm")], capture_output=True, text=True)
        errors = [l for l in (r.stdout + r.stderr).splitlines() if l.startswith("Error")]
        assert not errors, errors
    nib = pytest.importorskip("nibabel")
    img = nib.load(folder / "mask.nii.gz")
    np.testing.assert_array_equal(np.asarray(img.dataobj).transpose(2, 1, 0), expected)
    corner = img.affine @ [0, 0, 0, 1]
    np.testing.assert_allclose(corner[:3], np.array(src[0].ImagePositionPatient) * [-1, -1, 1], atol=1e-4)


def test_torch_unet_and_multiframe_give_the_same_mask(models, tmp_path):
    hd = pytest.importorskip("highdicom")
    singles = sample_datasets(8, step=4)
    enhanced = hd.legacy.LegacyConvertedEnhancedMRImage(
        singles[::-1], series_instance_uid=hd.UID(), series_number=2, sop_instance_uid=hd.UID(), instance_number=1)
    (tmp_path / "mf").mkdir()
    enhanced.save_as(tmp_path / "mf" / "enhanced.dcm")
    write_series(tmp_path / "sf", singles)
    out = tmp_path / "out"
    assert main(["run", str(models["unet"]), str(tmp_path / "sf"), str(tmp_path / "mf"), "--out", str(out),
                 "--quiet", "--no-overlay", "--also", "npy", "--batch", "3", "--layout", "uid"]) == 0
    masks = {p.parent.name: np.load(p) for p in out.glob("*/*/mask.npy")}
    np.testing.assert_array_equal(masks[enhanced.SeriesInstanceUID], masks[singles[0].SeriesInstanceUID])
    np.testing.assert_array_equal(masks[singles[0].SeriesInstanceUID], reference_mask(models["unet"], singles))
    seg = hd.seg.segread(out / enhanced.StudyInstanceUID / enhanced.SeriesInstanceUID / "seg.dcm")
    assert seg.NumberOfFrames == 8 * 2


def test_bad_inputs_each_get_a_reason_and_the_rest_runs(models, tmp_path, capsys):
    inputs = tmp_path / "in"
    good = write_series(inputs / "good", new_series(sample_datasets(4), "good"))
    text = inputs / "notes.txt"
    text.write_text("not dicom\n")
    nopix = new_series(sample_datasets(2), "nopix")
    for d in nopix:
        del d.PixelData
    write_series(inputs / "nopix", nopix)
    mixed = new_series(sample_datasets(3), "mixed")
    mixed[1].Rows, mixed[1].Columns = 128, 128
    mixed[1].PixelData = mixed[1].pixel_array[:128, :128].tobytes() if False else np.zeros((128, 128), "<u2").tobytes()
    write_series(inputs / "mixed", mixed)
    pyd = [get_testdata_file(n) for n in ("MR_truncated.dcm", "CT_small.dcm", "SC_rgb_small_odd.dcm", "rtplan.dcm")]
    args = [str(inputs / "good"), str(text), str(inputs / "nopix"), str(inputs / "mixed"), *pyd, str(inputs)]
    before = _digest([*pyd, *inputs.rglob("*.*")])
    out = tmp_path / "out"
    rc = main(["run", str(models["threshold"]), *args, "--out", str(out), "--quiet", "--no-overlay", "--layout", "uid"])
    assert rc == 1
    items = json.loads((out / "run_report.json").read_text())["items"]
    reasons = {Path(i["name"]).name if "/" in i["name"] else i["name"]: (i["status"], i["reason"]) for i in items}
    flat = "\n".join(f"{k}: {s} {r}" for k, (s, r) in reasons.items())
    assert "notes.txt: failed not a DICOM file" in flat
    assert "rtplan.dcm: failed not an image (RT Plan Storage)" in flat
    assert "MR_truncated.dcm: failed truncated: 9630 bytes" in flat  # named as a file, not a decode error
    for needle in ("modality CT: the model was trained for MR only", "modality OT", "mixed image sizes"):
        assert sum(needle in r for _, r in reasons.values()) == 1, (needle, flat)
    assert reasons["SC_rgb_small_odd.dcm" if "SC_rgb_small_odd.dcm" in reasons else next(
        k for k, (_, r) in reasons.items() if "modality OT" in r)][0] == "skipped"  # not for this model, not broken
    assert sum("no Pixel Data element" in r for _, r in reasons.values()) == 2, flat  # each file of 'nopix' 
    assert sum(s == "ok" for s, _ in reasons.values()) == 1
    assert all("\n" not in r for _, r in reasons.values())
    assert sorted(p.name for p in out.rglob("*") if p.is_file()) == ["manifest.csv", "report.json", "run_report.json",
                                                                     "seg.dcm"]
    assert not [p for p in out.rglob(".*")]  # no temporary files or folders left
    assert _digest([*pyd, *inputs.rglob("*.*")]) == before
    assert "mixed image sizes" in capsys.readouterr().out  # the summary table shows reasons
    (seg_file,) = out.rglob("seg.dcm")                       # the one written is the good series'
    refs = {str(i.ReferencedSOPInstanceUID) for s in pydicom.dcmread(seg_file).ReferencedSeriesSequence
            for i in s.ReferencedInstanceSequence}
    assert refs == {str(pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID) for f in good}
    assert seg_file.parent.parent == out / str(pydicom.dcmread(good[0]).StudyInstanceUID)


@pytest.mark.parametrize("case", ["foreign", "garbage", "unwritable"])
def test_fatal_errors_exit_2(models, tmp_path, case, capsys):
    model = models["threshold"]
    out = tmp_path / "out"
    if case == "foreign":
        import onnx

        proto = onnx.load(str(model))
        del proto.metadata_props[:]
        model = tmp_path / "foreign.onnx"
        onnx.save(proto, str(model))
    elif case == "garbage":
        model = tmp_path / "garbage.onnx"
        model.write_bytes(b"\x08\x01garbage" * 10)
    else:
        (tmp_path / "file").write_text("x")
        out = tmp_path / "file" / "out"  # a folder under a regular file cannot be created, even as root
    rc = main(["run", str(model), str(SAMPLE), "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2
    assert {"foreign": "not an edgeseg model", "garbage": "cannot load ONNX model", "unwritable": "not writable"}[case] in err
    assert len(err.strip().splitlines()) == 1


def test_resampling_and_reorientation_round_trip():
    from edgeseg.runtime.postprocess import logits_to_source_grid
    from edgeseg.runtime.preprocess import prepare

    c = make_contract(hr_size=(96, 80), scale=2, pixel_spacing_mm=(1.0, 1.0))
    rng = np.random.default_rng(0)
    vol = rng.random((2, 70, 50)).astype(np.float32)
    # columns toward P, rows toward L (transposed display), 0.8 x 1.25 mm pixels
    lowres, geo = prepare(vol, [0, 1, 0, 1, 0, 0], (0.8, 1.25), c)
    assert lowres.shape == (2, 1, 48, 40) and geo.resampled_shape == (62, 56)
    labels = np.zeros((2, 96, 80), np.uint8)
    labels[:, 48:, :] = 1  # posterior half on the model grid
    back = logits_to_source_grid(np.eye(2, dtype=np.float32)[labels].transpose(0, 3, 1, 2), geo, c)  # one-hot
    assert back.shape == (2, 70, 50)
    # posterior is along the source columns: left columns anterior (0), right columns posterior (1)
    assert (back[:, :, :20] == 0).all() and (back[:, :, -20:] == 1).all()


def test_stored_integer_percentiles_match_numpy_and_the_contract_uses_them():
    from edgeseg.preprocess import StoredGrid, apply_contract
    from edgeseg.runtime.pixels import Decoded

    rng = np.random.default_rng(1)
    c = make_contract(hr_size=(32, 32), scale=2, input_shape=("batch", 1, 16, 16))  # percentile_zscore: clips there
    for slope, intercept, inv in [(0.0625, 0.0, None), (1.0, -1024.0, None), (0.5, 3.0, 4000.0), (-2.0, 7.0, None)]:
        stored = rng.integers(-50, 4096, (3, 40, 40)).astype(np.int32)
        d = Decoded(np.empty(0), stored, slope, intercept, inv)
        values = d.to_values(stored)
        np.testing.assert_array_equal(d.grid().percentiles((0.5, 37.3, 99.5)), np.percentile(values, (0.5, 37.3, 99.5)))
        fast, slow = apply_contract(values, c, d.grid()), apply_contract(values, c)
        assert fast.intensity == slow.intensity and fast.intensity.lo != values.min()  # the clip is a percentile
        np.testing.assert_array_equal(fast.image, slow.image)
        g = d.grid()  # a grid whose values sit 1 higher: the clip follows it, so the percentiles come from the grid
        off = apply_contract(values, c, StoredGrid(g.stored, lambda levels: g.to_values(levels) + np.float32(1), g.increasing))
        assert off.intensity.lo == np.float32(slow.intensity.lo) + np.float32(1)
    assert Decoded(np.empty(0)).grid() is None  # several maps or float pixels: np.percentile


def test_base_install_without_highdicom_writes_nifti_and_says_why(models, tmp_path):
    """`pip install edgeseg` alone (no highdicom, no torch) still segments: mask.nii.gz instead of the SEG."""
    import sys

    write_series(tmp_path / "in", new_series(sample_datasets(4, step=8), "base-install"))
    code = ("import sys\n"
            "for m in ['torch', 'onnx', 'onnxsim', 'nibabel', 'matplotlib', 'rich', 'scipy', 'highdicom', 'pynetdicom']:\n"
            "    sys.modules[m] = None\n"
            "from edgeseg.cli import main\n"
            f"sys.exit(main(['run', {str(models['threshold'])!r}, {str(tmp_path / 'in')!r}, '--out', "
            f"{str(tmp_path / 'out')!r}, '--quiet']))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "DICOM SEG not written" in result.stderr and "edgeseg[dicom]" in result.stderr
    (folder,) = [p for p in (tmp_path / "out").glob("*/*") if p.is_dir()]
    assert sorted(p.name for p in folder.iterdir()) == ["mask.nii.gz", "overlay.png", "report.json"]
    report = json.loads((folder / "report.json").read_text())
    assert any("DICOM SEG not written" in w for w in report["warnings"])
    import gzip

    nii = gzip.decompress((folder / "mask.nii.gz").read_bytes())
    assert nii[344:348] == b"n+1\0" and len(nii) == 352 + 4 * 256 * 256


def test_logits_are_resampled_before_argmax():
    """On a finer source grid the class border follows the interpolated logits (sub-pixel), not a
    nearest-neighbour copy of model pixels: a border at model column 40.25 lands where it belongs."""
    from edgeseg.runtime.postprocess import logits_to_source_grid
    from edgeseg.runtime.preprocess import Geometry

    c = make_contract(hr_size=(96, 80), scale=2, pixel_spacing_mm=(1.0, 1.0))
    geo = Geometry(tuple(c.in_plane_axes), (192, 160), (192, 160), (96, 80), (0.5, 0.5), (0, 0))  # 0.5 mm pixels
    cols = np.arange(80, dtype=np.float32)
    logits = np.zeros((1, 3, 96, 80), np.float32)
    logits[:, 1] = cols - 40.25                                       # class 1 right of model column 40.25
    logits[:, 0] = -logits[:, 1]
    logits[:, 2] = -100
    mask = logits_to_source_grid(logits, geo, c)
    first = int(np.argmax(mask[0, 50] == 1))
    centre = (np.arange(160) + 0.5) * 0.5 - 0.5                       # source column centres in model columns
    assert first == int(np.argmax(centre > 40.25))                    # 81: exact to the source pixel
    assert (mask[0, :, first:] == 1).all() and (mask[0, :, :first] == 0).all()


def test_downsampling_a_finer_series_is_antialiased():
    """Fine stripes (1 bright pixel in 3) onto a grid 3x coarser: plain linear sampling lands on one phase
    (all 0: aliasing, the bright third vanishes), the box prefilter gives their mean, 1/3."""
    from edgeseg.runtime.preprocess import antialias, resample_linear

    x = np.zeros((1, 18, 18), np.float32)
    x[0, :, ::3] = 1
    z = (1.0, 1 / 3)
    aliased = resample_linear(x, (18, 6), z)
    assert np.ptp(aliased[0, :, 1:-1]) == 0 and aliased[0, 0, 2] in (0.0, 1.0)
    smooth = resample_linear(antialias(x, z), (18, 6), z)
    np.testing.assert_allclose(smooth[0, :, 1:-1], 1 / 3, atol=1e-6)


def test_provider_list_orders_accelerators_and_keeps_the_cpu_fallback(monkeypatch, tmp_path):
    import onnxruntime as ort

    from edgeseg.errors import EdgesegError
    from edgeseg.runtime.session import provider_list

    every = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    monkeypatch.setattr(ort, "get_available_providers", lambda: every)
    auto = provider_list("auto", tmp_path / "trt")
    assert [p if isinstance(p, str) else p[0] for p in auto] == every
    assert auto[0][1]["trt_engine_cache_path"] == str(tmp_path / "trt") and (tmp_path / "trt").is_dir()
    assert provider_list("cuda") == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert provider_list("cpu") == ["CPUExecutionProvider"]
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CPUExecutionProvider"])
    assert provider_list("auto") == ["CPUExecutionProvider"]
    for choice, words in [("cuda", "not available"), ("gpu", "unknown provider")]:
        with pytest.raises(EdgesegError, match=words):
            provider_list(choice)
