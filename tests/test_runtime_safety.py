"""`edgeseg run` with hostile header values and faulty disks: nothing outside --out is touched, nothing that
edgeseg did not write is deleted, truncated instances are named, a full disk gives one line with a path."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from edgeseg.cli import main
from edgeseg.safe_paths import safe_name
from runtime_fixtures import export_threshold_model, new_series, sample_datasets, write_series

HOSTILE = ["..", ".", "", "../victim", "/etc", "a/b", "\\..\\x", "x" * 300, "1.2.3/../..", "..\x00"]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return export_threshold_model(tmp_path_factory.mktemp("safety-model") / "threshold.onnx")


def _series(folder: Path, tag: str, n: int = 2, **uids) -> list[Path]:
    datasets = new_series(sample_datasets(n), tag)
    for ds in datasets:
        for key, value in uids.items():
            setattr(ds, key, value)
    return write_series(folder, datasets)


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("field", ["StudyInstanceUID", "SeriesInstanceUID"])
@pytest.mark.parametrize("value", HOSTILE)
def test_safe_name_is_one_plain_component(field, value):
    name = safe_name(value)
    assert name not in ("", ".", "..") and "/" not in name and "\\" not in name and "\x00" not in name
    assert len(name) <= 64


@pytest.mark.parametrize("layout", ["uid", "readable"])
def test_hostile_uids_never_leave_out_or_delete(model, tmp_path, layout):
    """The issue's reproduction (Study '..', Series 'victim') and every other hostile value, in both UID fields
    and (readable layout) in PatientID, StudyDate, SeriesNumber and SeriesDescription too."""
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep.txt").write_text("precious")
    inputs = tmp_path / "in"
    cases = [("..", "victim"), (".", ".."), ("", ""), ("1.2.3", "..")] + \
            [(v, f"1.2.3.{i}") for i, v in enumerate(HOSTILE)] + [("1.2.3", v) for v in HOSTILE]
    for i, (study, series) in enumerate(cases):
        text = {"PatientID": study, "SeriesDescription": series} if layout == "readable" else {}
        _series(inputs / f"s{i}", f"hostile-{i}", StudyInstanceUID=study, SeriesInstanceUID=series, **text)
    out = tmp_path / "work" / "out"
    before = _tree(tmp_path / "victim")
    rc = main(["run", str(model), str(inputs), "--out", str(out), "--quiet", "--no-overlay", "--layout", layout])
    assert rc == 1                                                # the multi-valued ones ('\\..\\x') fail, in one line
    assert _tree(tmp_path / "victim") == before                   # nothing deleted or written outside OUT
    assert sorted(p.name for p in (tmp_path / "work").iterdir()) == ["out"]
    segs = list(out.rglob("seg.dcm"))
    for seg in segs:
        assert out.resolve() in seg.resolve().parents and len(seg.relative_to(out).parts) == 3
    items = json.loads((out / "run_report.json").read_text())["items"]
    failed = [i for i in items if i["status"] != "ok"]
    assert len(failed) == 2 and all("has 3 values (one UID expected)" in i["reason"] for i in failed), failed
    ok = [i for i in items if i["status"] == "ok"]
    # series sharing a UID ('..' three times, '..\\0' read as '..') are one series: 19 distinct ones succeed
    assert len(segs) == len({Path(i["out"]) for i in ok}) == len(ok) == 19


def test_publish_never_deletes_what_edgeseg_did_not_write(model, tmp_path):
    files = _series(tmp_path / "in", "mine", StudyInstanceUID="1.2.3", SeriesInstanceUID="1.2.3.4")
    out = tmp_path / "out"
    users = out / "1.2.3" / "1.2.3.4"
    users.mkdir(parents=True)
    (users / "notes.txt").write_text("mine")
    assert main(["run", str(model), *map(str, files), "--out", str(out), "--quiet", "--no-overlay", "--layout", "uid"]) == 1
    assert (users / "notes.txt").read_text() == "mine" and not (users / "seg.dcm").exists()
    items = json.loads((out / "run_report.json").read_text())["items"]
    assert "is not an edgeseg result; left untouched" in items[0]["reason"]
    (users / "notes.txt").unlink()
    users.rmdir()
    for i in range(2):                                             # an earlier result of edgeseg is replaced
        os.utime(files[0], ns=(10**18 + i, 10**18 + i))            # changed inputs: the series is due again
        assert main(["run", str(model), *map(str, files), "--out", str(out), "--quiet", "--no-overlay",
                     "--layout", "uid", "--retry-failed"]) == 0
        assert json.loads((out / "run_report.json").read_text())["items"][0]["status"] == "ok"
    assert sorted(p.name for p in users.iterdir()) == ["report.json", "seg.dcm"]
    assert not [p for p in out.rglob(".*")]


def test_symlinked_study_folder_pointing_outside_is_refused(model, tmp_path):
    files = _series(tmp_path / "in", "link", StudyInstanceUID="1.2.3", SeriesInstanceUID="1.2.3.4")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    (out / "1.2.3").symlink_to(elsewhere, target_is_directory=True)
    assert main(["run", str(model), *map(str, files), "--out", str(out), "--quiet", "--no-overlay", "--layout", "uid"]) == 1
    assert list(elsewhere.iterdir()) == []
    assert "outside" in json.loads((out / "run_report.json").read_text())["items"][0]["reason"]


def test_truncated_instances_are_failed_by_name_and_the_series_says_so(model, tmp_path):
    files = _series(tmp_path / "in", "trunc", n=6)
    raw = files[5].read_bytes()
    files[5].write_bytes(raw[:1300])                               # header cut: the end slice is lost
    files[2].write_bytes(files[2].read_bytes()[:-4000])            # pixel data cut: a slice in the middle
    out = tmp_path / "out"
    rc = main(["run", str(model), str(tmp_path / "in"), "--out", str(out), "--quiet", "--no-overlay"])
    assert rc == 1                                                 # a file failed
    items = {Path(i["name"]).name: i for i in json.loads((out / "run_report.json").read_text())["items"]}
    assert items["IM0005.dcm"]["status"] == "failed" and "truncated" in items["IM0005.dcm"]["reason"]
    assert items["IM0002.dcm"]["status"] == "failed" and "truncated" in items["IM0002.dcm"]["reason"]
    series_row = next(i for i in items.values() if i["status"] == "ok")
    assert "2 file(s) of this series left out: IM0002.dcm" in series_row["reason"] and "IM0005.dcm" in series_row["reason"]
    report = json.loads((Path(series_row["out"]) / "report.json").read_text())
    assert sorted(Path(d["file"]).name for d in report["dropped_files"]) == ["IM0002.dcm", "IM0005.dcm"]
    assert report["series"]["slices"] == 4


def test_duplicate_instance_is_named(model, tmp_path):
    files = _series(tmp_path / "in" / "a", "dup", n=3)
    copy = tmp_path / "in" / "b" / "copy.dcm"
    copy.parent.mkdir(parents=True)
    copy.write_bytes(files[1].read_bytes())
    out = tmp_path / "out"
    assert main(["run", str(model), str(tmp_path / "in"), "--out", str(out), "--quiet", "--no-overlay"]) == 0
    report = json.loads(next(out.rglob("report.json")).read_text())
    assert [Path(d["file"]).name for d in report["dropped_files"]] == ["copy.dcm"]
    assert "duplicate of IM0001.dcm" in report["dropped_files"][0]["reason"]


def _mount_tmpfs(where: Path, size: str = "600k", inodes: int | None = None) -> bool:
    where.mkdir(parents=True, exist_ok=True)
    opts = f"size={size}" + (f",nr_inodes={inodes}" if inodes else "")
    if os.geteuid() != 0:
        return False
    return subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(where)], capture_output=True).returncode == 0


@pytest.fixture
def small_disk(tmp_path):
    where = tmp_path / "small"
    if not _mount_tmpfs(where):
        pytest.skip("cannot mount a small tmpfs here (needs root and mount rights)")
    yield where
    subprocess.run(["umount", "-l", str(where)], capture_output=True)


def test_full_output_disk_gives_one_line_with_the_path(model, small_disk, tmp_path, capsys):
    files = _series(tmp_path / "in", "full", n=4)
    (small_disk / "filler").write_bytes(b"\0" * (590 * 1024))     # leaves a few kB: the SEG does not fit
    rc = main(["run", str(model), *map(str, files), "--out", str(small_disk), "--quiet", "--no-overlay"])
    captured = capsys.readouterr()
    assert rc == 1 and "Traceback" not in captured.err + captured.out
    assert "No space left on device" in captured.out + captured.err and str(small_disk) in captured.out + captured.err
    assert not list(small_disk.rglob("seg.dcm"))
    assert not [p for p in small_disk.rglob(".*")]                 # no half-written temporaries left


def test_model_whose_input_rank_does_not_match_is_refused_at_load(tmp_path, capsys):
    """`run` (and `serve`, through the same Segmenter) refuse such a model before reading any input."""
    import onnx
    from onnx import TensorProto, helper

    from runtime_fixtures import make_contract

    c = make_contract()
    graph = helper.make_graph(
        [helper.make_node("Identity", [c.input_name], [c.output_name])], "rank3",
        [helper.make_tensor_value_info(c.input_name, TensorProto.FLOAT, ["batch", 112, 96])],
        [helper.make_tensor_value_info(c.output_name, TensorProto.FLOAT, ["batch", 112, 96])])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    proto.ir_version = 8
    for key, value in c.to_metadata().items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    path = tmp_path / "rank3.onnx"
    onnx.save(proto, str(path))
    files = _series(tmp_path / "in", "rank", n=2)
    rc = main(["run", str(path), *map(str, files), "--out", str(tmp_path / "out"), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and "graph input has shape ['batch', 112, 96]" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()
