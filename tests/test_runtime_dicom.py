"""Runtime DICOM handling: light imports, sorting, decoding (rescale, signed, MONOCHROME1, codecs), multi-frame."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from edgeseg.errors import EdgesegError
from edgeseg.runtime.discover import discover
from edgeseg.runtime.pixels import decode_pixels, decode_series
from edgeseg.runtime.series import build_series
from runtime_fixtures import new_series, sample_datasets, write_series

ROOT = Path(__file__).resolve().parents[1]


def test_runtime_imports_without_heavy_packages():
    code = ("import sys, edgeseg.runtime, edgeseg.runtime.pipeline, edgeseg.results.overlay, edgeseg.results.mask_files, "
            "edgeseg.results.manifest, edgeseg.cli.run_cmd; "
            "bad = [m for m in ('torch', 'nibabel', 'scipy', 'rich', 'matplotlib', 'highdicom', 'onnx') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def _series(folder):
    groups, skipped = discover([folder])
    assert len(groups) == 1, (groups, skipped)
    return build_series(groups[0])


def test_sorting_shuffled_positions_and_instance_number_fallback(tmp_path):
    ds = new_series(sample_datasets(6), "shuffle")
    rng = np.random.default_rng(0)
    order = rng.permutation(6)
    for new_number, i in enumerate(order):  # instance numbers no longer follow position
        ds[i].InstanceNumber = new_number + 1
    write_series(tmp_path / "a", [ds[i] for i in order])
    s = _series(tmp_path / "a")
    z = [f.position[2] for f in s.frames]
    assert z == sorted(z) and s.slice_spacing == pytest.approx(4.0) and not s.warnings
    for d in ds:
        del d.ImagePositionPatient
    write_series(tmp_path / "b", ds)
    s = _series(tmp_path / "b")
    assert [f.instance_number for f in s.frames] == list(range(1, 7))
    assert "InstanceNumber" in s.warnings[0]


def test_sorting_oblique_along_normal(tmp_path):
    ds = new_series(sample_datasets(5), "oblique")
    a = np.radians(30)
    row, col = np.array([1.0, 0, 0]), np.array([0, np.cos(a), np.sin(a)])
    normal = np.cross(row, col)
    for i, d in enumerate(ds):
        d.ImageOrientationPatient = [*row, *col]
        # positions move in-plane and along the normal; only the projection on the normal orders them
        d.ImagePositionPatient = list(np.array([0, 50.0 - 30 * i, 0]) + 3.0 * i * normal)
    write_series(tmp_path / "o", ds[::-1])
    s = _series(tmp_path / "o")
    keys = [float(np.dot(f.position, normal)) for f in s.frames]
    assert keys == sorted(keys) and s.slice_spacing == pytest.approx(3.0 + 30 * np.sin(a))  # normal = (0, -sin, cos)


def test_duplicates_and_gaps_are_reported(tmp_path):
    ds = new_series(sample_datasets(8), "gaps")
    dup = new_series([sample_datasets(1)[0]], "dup")[0]
    dup.SeriesInstanceUID = ds[0].SeriesInstanceUID
    dup.InstanceNumber = 99
    write_series(tmp_path / "g", [d for i, d in enumerate(ds) if i not in (4, 5)] + [dup])
    s = _series(tmp_path / "g")
    assert len(s.frames) == 6
    assert any("duplicate" in w for w in s.warnings) and any("gap" in w and "2 missing" in w for w in s.warnings)


def test_rescale_and_signed_values(tmp_path):
    ds = new_series(sample_datasets(2), "signed")
    reference = decode_series(_series(_write(tmp_path / "ref", sample_datasets(2)))).values
    for d in ds:  # store value*16 - 1000 as signed, intercept +1000/16 gives the same values back
        stored = d.pixel_array.astype(np.int32) - 1000
        d.PixelRepresentation, d.BitsStored, d.HighBit = 1, 16, 15
        d.RescaleIntercept = 1000 / 16
        d.PixelData = stored.astype("<i2").tobytes()
    s = _series(_write(tmp_path / "s", ds))
    dec = decode_series(s)
    assert dec.values.min() >= 0 and np.allclose(dec.values, reference, atol=1e-4)
    assert dec.stored.min() < 0  # really stored signed


def _write(folder, datasets):
    write_series(folder, datasets)
    return folder


def test_monochrome1_is_inverted_back(tmp_path):
    ref = decode_series(_series(_write(tmp_path / "ref", sample_datasets(3)))).values
    ds = new_series(sample_datasets(3), "mono1")
    for d in ds:
        d.PhotometricInterpretation = "MONOCHROME1"
        d.PixelData = ((1 << 12) - 1 - d.pixel_array.astype(np.int32)).astype("<u2").tobytes()
    out = decode_series(_series(_write(tmp_path / "m1", ds))).values
    np.testing.assert_array_equal(out, ref)


def test_multiframe_enhanced_mr_matches_single_frames(tmp_path):
    hd = pytest.importorskip("highdicom")
    singles = sample_datasets(6)[::-1]
    enhanced = hd.legacy.LegacyConvertedEnhancedMRImage(
        singles, series_instance_uid=hd.UID(), series_number=2, sop_instance_uid=hd.UID(), instance_number=1)
    path = tmp_path / "mf" / "enhanced.dcm"
    path.parent.mkdir()
    enhanced.save_as(path)
    s = _series(tmp_path / "mf")
    assert s.multiframe and len(s.frames) == 6
    ref = decode_series(_series(_write(tmp_path / "sf", sample_datasets(6)))).values
    np.testing.assert_array_equal(decode_series(s).values, ref)


@pytest.mark.parametrize("name", ["MR_small_RLE.dcm", "MR_small_bigendian.dcm", "MR_small_implicit.dcm",
                                  "MR_small_jpeg_ls_lossless.dcm", "MR_small_jp2klossless.dcm"])
def test_transfer_syntaxes_decode_like_the_uncompressed_file(name):
    ref = pydicom.dcmread(get_testdata_file("MR_small.dcm")).pixel_array
    ds = pydicom.dcmread(get_testdata_file(name))
    try:
        arr = decode_pixels(ds, Path(name))
    except EdgesegError as exc:  # no plugin installed: the message must name the transfer syntax
        assert ds.file_meta.TransferSyntaxUID.name in str(exc)
        pytest.skip(str(exc))
    np.testing.assert_array_equal(arr[0], ref)


def test_undecodable_transfer_syntax_names_it():
    ds = pydicom.dcmread(get_testdata_file("JPEG-lossy.dcm"))  # 12-bit JPEG Extended: Pillow cannot
    try:
        ds.pixel_array
        pytest.skip("a plugin that decodes 12-bit JPEG Extended is installed")
    except Exception:
        pass
    with pytest.raises(EdgesegError, match=r"JPEG Extended.*1\.2\.840\.10008\.1\.2\.4\.51.*pylibjpeg"):
        decode_pixels(ds, Path("JPEG-lossy.dcm"))


def test_files_without_meta_are_read(tmp_path):
    ref = sample_datasets(2)
    ds = new_series(sample_datasets(2), "nometa")
    (tmp_path / "raw").mkdir()
    for i, d in enumerate(ds):  # bare implicit-VR dataset: no preamble, no DICM, no file meta
        d.file_meta = pydicom.dataset.FileMetaDataset()
        d.preamble = None
        pydicom.dcmwrite(tmp_path / "raw" / f"{i}.raw", d, implicit_vr=True, little_endian=True, enforce_file_format=False)
    with open(tmp_path / "raw" / "0.raw", "rb") as f:
        assert f.read(132)[128:] != b"DICM"
    s = _series(tmp_path / "raw")
    np.testing.assert_array_equal(decode_series(s).stored, np.stack([d.pixel_array for d in ref]))
    groups, skipped = discover([get_testdata_file("ExplVR_BigEndNoMeta.dcm")])
    assert not groups and skipped[0].reason.startswith("not an image")
