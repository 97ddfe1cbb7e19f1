"""The DICOM SEG written by highdicom + pydicom from the runner's mask: pixels read back equal the mask on
odd matrices, multi-frame sources and non-ASCII headers; a mask class the model lacks is refused."""
import numpy as np
import pytest

from runtime_fixtures import make_contract, new_series, sample_datasets, write_series

hd = pytest.importorskip("highdicom")

from edgeseg.errors import EdgesegError  # noqa: E402
from edgeseg.runtime.discover import discover  # noqa: E402
from edgeseg.results.seg_writer import write_seg  # noqa: E402
from edgeseg.runtime.series import build_series  # noqa: E402


def _series(folder):
    groups, _ = discover([folder])
    assert len(groups) == 1
    return build_series(groups[0])


def _random_mask(series, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 3, (len(series.frames), series.rows, series.cols)).astype(np.uint8)


def _read_back(path, series):
    seg = hd.seg.segread(path)
    if series.multiframe:
        return seg.get_pixels_by_source_frame(source_sop_instance_uid=str(series.headers[0].SOPInstanceUID),
                                              source_frame_numbers=[f.frame + 1 for f in series.frames],
                                              combine_segments=True)
    return seg.get_pixels_by_source_instance(source_sop_instance_uids=[str(h.SOPInstanceUID) for h in series.headers],
                                             combine_segments=True)


@pytest.mark.parametrize("case", ["sample", "odd-matrix", "latin-1"])
def test_seg_pixels_read_back_equal_the_mask(tmp_path, case):
    datasets = new_series(sample_datasets(4, step=7), f"seg-{case}")
    for ds in datasets:
        if case == "odd-matrix":  # 63 bits per frame: frames share bytes (PS3.5 8.1.1)
            ds.PixelData = ds.pixel_array[:7, :9].copy().tobytes()
            ds.Rows, ds.Columns = 7, 9
        if case == "latin-1":
            ds.SpecificCharacterSet = "ISO_IR 100"
            ds.PatientName = "Müller^Jürgen"
    write_series(tmp_path / "in", datasets)
    series = _series(tmp_path / "in")
    mask = _random_mask(series)
    path = write_seg(series, mask, make_contract(), tmp_path / "seg.dcm", "model-a")
    np.testing.assert_array_equal(_read_back(path, series), mask)
    if case == "latin-1":
        import pydicom

        assert str(pydicom.dcmread(path).PatientName) == "Müller^Jürgen"


def test_seg_of_a_multiframe_source(tmp_path):
    singles = sample_datasets(4, step=7)
    enhanced = hd.legacy.LegacyConvertedEnhancedMRImage(
        singles[::-1], series_instance_uid=hd.UID(), series_number=2, sop_instance_uid=hd.UID(), instance_number=1)
    (tmp_path / "mf").mkdir()
    enhanced.save_as(tmp_path / "mf" / "enhanced.dcm")
    series = _series(tmp_path / "mf")
    assert series.multiframe
    mask = _random_mask(series, 2)
    path = write_seg(series, mask, make_contract(), tmp_path / "seg.dcm", "model-a")
    np.testing.assert_array_equal(_read_back(path, series), mask)


def test_mask_with_a_class_the_model_lacks_is_refused(tmp_path):
    write_series(tmp_path / "in", new_series(sample_datasets(2, step=10), "seg-bad"))
    series = _series(tmp_path / "in")
    mask = np.full((len(series.frames), series.rows, series.cols), 7, np.uint8)
    with pytest.raises(EdgesegError, match="class 7"):
        write_seg(series, mask, make_contract(), tmp_path / "x.dcm", "m")
    assert not list(tmp_path.glob("x.dcm*")) and not list(tmp_path.glob(".x.dcm*"))
