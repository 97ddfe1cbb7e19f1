"""The SEG prepared before the mask exists (and its small encoder) gives the very bytes of highdicom + pydicom."""
import datetime
import io

import numpy as np
import pytest

from runtime_fixtures import make_contract, new_series, sample_datasets, write_series

hd = pytest.importorskip("highdicom")

from edgeseg.runtime.dicom_encode import Unsupported, encode_file  # noqa: E402
from edgeseg.runtime.discover import discover  # noqa: E402
from edgeseg.runtime.seg_prepared import prepare_seg  # noqa: E402
from edgeseg.runtime.seg_writer import build_segmentation, save_kwargs, write_seg  # noqa: E402
from edgeseg.runtime.series import build_series  # noqa: E402


class FrozenDateTime(datetime.datetime):
    @classmethod
    def now(cls, tz=None):
        return cls(2026, 1, 2, 3, 4, 5, 678901)


@pytest.fixture(autouse=True)
def frozen_clock(monkeypatch):
    """highdicom stamps now() and a fresh Dimension Organization UID into every SEG: freeze both (only in
    highdicom's view) so that two builds can be compared byte for byte."""
    import types

    import highdicom.base
    import highdicom.base_content
    import highdicom.image

    shim = types.SimpleNamespace(**{k: getattr(datetime, k) for k in dir(datetime) if not k.startswith("__")})
    shim.datetime = types.SimpleNamespace(now=FrozenDateTime.now)
    for module in (highdicom.base, highdicom.base_content):
        monkeypatch.setattr(module, "datetime", shim)
    real_uid = highdicom.image.UID
    monkeypatch.setattr(highdicom.image, "UID", lambda value=None: real_uid("1.2.826.0.1.3680043.10.511.3.1")
                        if value is None else real_uid(value))


def _series(folder):
    groups, _ = discover([folder])
    assert len(groups) == 1
    return build_series(groups[0])


def _random_mask(series, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 3, (len(series.frames), series.rows, series.cols)).astype(np.uint8)


def _both(series, mask, tmp_path):
    c = make_contract()
    direct = write_seg(series, mask, c, tmp_path / "direct.dcm", "model-a").read_bytes()
    prepared = prepare_seg(series, c, "model-a")
    assert prepared.header is not None, "the sample is the plain case: the prepared path must be taken"
    return direct, prepared.write(mask, tmp_path / "prepared.dcm").read_bytes()


def test_prepared_seg_is_byte_identical_on_the_sample_series(tmp_path):
    write_series(tmp_path / "in", new_series(sample_datasets(6, step=5), "prep-1"))
    series = _series(tmp_path / "in")
    mask = _random_mask(series)
    direct, prepared = _both(series, mask, tmp_path)
    assert direct == prepared
    seg = hd.seg.segread(tmp_path / "prepared.dcm")
    back = seg.get_pixels_by_source_instance(
        source_sop_instance_uids=[str(h.SOPInstanceUID) for h in series.headers], combine_segments=True)
    np.testing.assert_array_equal(back, mask)


def test_prepared_seg_odd_matrix_packs_bits_across_frames(tmp_path):
    """7x9 pixels: 63 bits per frame, so frames share bytes (PS3.5 8.1.1: no padding between frames)."""
    datasets = new_series(sample_datasets(3, step=9), "prep-odd")
    for ds in datasets:
        ds.PixelData = ds.pixel_array[:7, :9].copy().tobytes()
        ds.Rows, ds.Columns = 7, 9
    write_series(tmp_path / "in", datasets)
    series = _series(tmp_path / "in")
    direct, prepared = _both(series, _random_mask(series, 1), tmp_path)
    assert direct == prepared


def test_prepared_seg_multiframe_source(tmp_path):
    singles = sample_datasets(4, step=7)
    enhanced = hd.legacy.LegacyConvertedEnhancedMRImage(
        singles[::-1], series_instance_uid=hd.UID(), series_number=2, sop_instance_uid=hd.UID(), instance_number=1)
    (tmp_path / "mf").mkdir()
    enhanced.save_as(tmp_path / "mf" / "enhanced.dcm")
    series = _series(tmp_path / "mf")
    assert series.multiframe
    direct, prepared = _both(series, _random_mask(series, 2), tmp_path)
    assert direct == prepared


def test_encoder_matches_pydicom_and_refuses_what_it_does_not_handle(tmp_path):
    write_series(tmp_path / "in", new_series(sample_datasets(3, step=10), "prep-enc"))
    series = _series(tmp_path / "in")
    ds = build_segmentation(series, _random_mask(series), make_contract(), "model-b")
    buffer = io.BytesIO()
    ds.save_as(buffer, **save_kwargs())
    assert encode_file(ds) == buffer.getvalue()
    ds.PatientName = "Müller^Jürgen"  # not ASCII: left to pydicom's writer
    with pytest.raises(Unsupported):
        encode_file(ds)


def test_non_ascii_header_falls_back_to_pydicom_and_stays_identical(tmp_path):
    datasets = new_series(sample_datasets(3, step=10), "prep-latin")
    for ds in datasets:
        ds.SpecificCharacterSet = "ISO_IR 100"
        ds.PatientName = "Müller^Jürgen"
    write_series(tmp_path / "in", datasets)
    series = _series(tmp_path / "in")
    direct, prepared = _both(series, _random_mask(series, 3), tmp_path)
    assert direct == prepared


def test_mask_with_a_class_the_model_lacks_is_refused(tmp_path):
    from edgeseg.errors import EdgesegError

    write_series(tmp_path / "in", new_series(sample_datasets(2, step=10), "prep-bad"))
    series = _series(tmp_path / "in")
    prepared = prepare_seg(series, make_contract(), "m")
    mask = np.full((len(series.frames), series.rows, series.cols), 7, np.uint8)
    with pytest.raises(EdgesegError, match="class 7"):
        prepared.write(mask, tmp_path / "x.dcm")
    assert not list(tmp_path.glob("x.dcm*")) and not list(tmp_path.glob(".x.dcm*"))
