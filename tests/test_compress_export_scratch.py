"""`export_float_int8` (the compression benchmark's and `compress`'s float/INT8 export): each call has its own
scratch folder, so runs into one folder do not trip over each other, and a failure leaves no partial model file."""
import pytest
import torch

from edgeseg.compress import pipeline
from edgeseg.models import create_model
from export_helpers import FakeSet, tiny_contract


def _model():
    torch.manual_seed(0)
    return create_model("unet", 1, 3, 2, sr_head=True, width=4).eval()


def test_a_leftover_scratch_folder_is_neither_used_nor_deleted_and_ours_is_cleaned_up(tmp_path):
    stale = tmp_path / ".scratch"  # what an earlier version (or a run still going) leaves in the folder
    stale.mkdir()
    (stale / "model.fp32-raw.onnx").write_bytes(b"not ours")
    files = pipeline.export_float_int8(_model(), tiny_contract(), {"train": FakeSet(8)}, 2, tmp_path, 13)
    assert all(p.stat().st_size > 1000 for p in files.values())
    assert (stale / "model.fp32-raw.onnx").read_bytes() == b"not ours"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".scratch", "model.fp32.onnx", "model.int8.onnx"]


def test_a_failed_quantization_leaves_no_model_files_and_no_scratch(tmp_path, monkeypatch):
    import edgeseg.export.quantize as quantize

    def broken(src, dst, *args):
        dst.write_bytes(b"half")  # a partial file, as a crash mid-write would leave
        raise RuntimeError("calibration failed")

    monkeypatch.setattr(quantize, "quantize_int8", broken)
    with pytest.raises(RuntimeError, match="calibration failed"):
        pipeline.export_float_int8(_model(), tiny_contract(), {"train": FakeSet(8)}, 2, tmp_path / "out", 13)
    assert list((tmp_path / "out").iterdir()) == []
