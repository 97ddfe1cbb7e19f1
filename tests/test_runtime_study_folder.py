"""A real study folder: localizer, an earlier SEG, another contrast, a FIFO; the selection rules; the
Python API with str / Path / list and the array API."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from edgeseg.cli import main
from edgeseg.errors import EdgesegError
from edgeseg.runtime.select import parse_rules
from runtime_fixtures import export_threshold_model, new_series, sample_datasets, write_series


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return export_threshold_model(tmp_path_factory.mktemp("study-model") / "threshold.onnx")


def _study(root: Path) -> dict[str, list[Path]]:
    """T1 (4 slices), T2 (3), a localizer (1), an earlier SEG from the runner itself, a FIFO."""
    t1 = new_series(sample_datasets(4, step=8), "t1")
    t2 = new_series(sample_datasets(3, step=8), "t2")
    loc = new_series(sample_datasets(1), "loc")
    for ds in t1:
        ds.SeriesDescription = "t1_mprage_sag"
    for ds in t2:
        ds.SeriesDescription = "t2_tse"
    loc[0].ImageType = ["ORIGINAL", "PRIMARY", "LOCALIZER"]
    loc[0].ImageOrientationPatient = [0, 1, 0, 0, 0, -1]            # a sagittal scout
    out = {"t1": write_series(root / "t1", t1), "t2": write_series(root / "t2", t2),
           "loc": write_series(root / "loc", loc)}
    os.mkfifo(root / "pipe")
    return out


def test_study_folder_with_localizer_seg_and_fifo_exits_0(model, tmp_path, capsys):
    study = tmp_path / "study"
    files = _study(study)
    first = tmp_path / "first"
    assert main(["run", str(model), *map(str, files["t2"]), "--out", str(first), "--quiet"]) == 0
    (seg,) = first.rglob("seg.dcm")
    (study / "earlier-seg.dcm").write_bytes(seg.read_bytes())        # an earlier result next to the images
    out = tmp_path / "out"
    assert main(["run", str(model), str(study), "--out", str(out), "--select", "SeriesDescription~t1"]) == 0
    items = {i["name"]: i for i in json.loads((out / "run_report.json").read_text())["items"]}
    by_status = {}
    for i in items.values():
        by_status.setdefault(i["status"], []).append(i["reason"])
    assert len(by_status["ok"]) == 1
    assert sorted(by_status["skipped"]) == sorted(["--select SeriesDescription~t1: SeriesDescription is 't2_tse'",
                                                   "localizer (ImageType ORIGINAL/PRIMARY/LOCALIZER)",
                                                   "modality SEG: the model was trained for MR only"])
    assert by_status["ignored"] == ["not a regular file (a FIFO); not opened"]
    assert "1 ok, 0 failed, 3 skipped, 1 ignored" in capsys.readouterr().out


def test_selection_rules_parse_and_refuse_typos():
    import pydicom

    ds = pydicom.Dataset()
    ds.Modality, ds.SeriesDescription, ds.ImageType = "MR", "T1 MPRAGE", ["ORIGINAL", "PRIMARY"]
    rules = parse_rules("Modality=mr, SeriesDescription~mprage,ImageType!~derived, SeriesDescription!=flair")
    assert [r.matches(ds) for r in rules] == [True, True, True, True]
    assert not parse_rules("Modality!=MR")[0].matches(ds)
    for bad, message in (("Modalty=MR", "did you mean 'Modality'"), ("Modality", "expected Keyword=value"),
                         ("SeriesDescription~(", "bad regular expression")):
        with pytest.raises(EdgesegError, match=message):
            parse_rules(bad)


def test_nothing_selected_says_so(model, tmp_path, capsys):
    files = _study(tmp_path / "study")
    assert main(["run", str(model), *map(str, files["t2"]), "--out", str(tmp_path / "out"),
                 "--select", "SeriesDescription~flair"]) == 1
    assert "no series segmented (1 skipped by the selection rules)" in capsys.readouterr().err


def test_python_api_takes_str_path_and_list(model, tmp_path):
    from edgeseg.runtime.pipeline import run

    files = write_series(tmp_path / "in", new_series(sample_datasets(2, step=8), "api"))
    for i, inputs in enumerate([str(tmp_path / "in"), tmp_path / "in", [str(f) for f in files]]):
        rows, _ = run(model, inputs, tmp_path / f"out{i}", show_progress=False)
        assert [r.status for r in rows] == ["ok"], rows


def test_array_api_matches_the_dicom_path(model, tmp_path):
    """Segmenter(model).predict(volume, spacing) gives the mask `edgeseg run` writes, on the same slices."""
    from edgeseg.runtime.session import Segmenter

    datasets = new_series(sample_datasets(3, step=8), "array")
    files = write_series(tmp_path / "in", datasets)
    assert main(["run", str(model), *map(str, files), "--out", str(tmp_path / "out"), "--quiet", "--also", "npy"]) == 0
    expected = np.load(next((tmp_path / "out").rglob("mask.npy")))
    order = np.argsort([float(d.ImagePositionPatient[2]) for d in datasets])
    volume = np.stack([datasets[i].pixel_array * float(datasets[i].RescaleSlope) + float(datasets[i].RescaleIntercept)
                       for i in order])
    mask = Segmenter(model).predict(volume, spacing=tuple(float(v) for v in datasets[0].PixelSpacing))
    assert mask.shape == volume.shape and mask.dtype == np.uint8
    assert np.array_equal(mask, expected)
    one = Segmenter(model).predict(volume[1], spacing=(1.0, 1.0))  # a single 2-D slice in, 2-D mask out
    assert one.shape == volume.shape[1:]


def test_readable_names_never_collide_and_reruns_replace(model, tmp_path):
    """Two series with the same number and description get two folders (the second '-<hash>'); a rerun
    replaces each in place; --private makes files 0600."""
    a = new_series(sample_datasets(2, step=8), "same-a")
    b = new_series(sample_datasets(2, step=8), "same-b")
    for ds in (*a, *b):
        ds.SeriesNumber, ds.SeriesDescription = 5, "T1 / MPRAGE"
    write_series(tmp_path / "in" / "a", a)
    write_series(tmp_path / "in" / "b", b)
    out = tmp_path / "out"
    for _ in range(2):
        assert main(["run", str(model), str(tmp_path / "in"), "--out", str(out), "--quiet", "--no-overlay"]) == 0
        folders = sorted(p.relative_to(out).as_posix() for p in out.glob("*/*") if p.is_dir())
        assert len(folders) == 2 and folders[0] == f"{a[0].PatientID}_{a[0].StudyDate}/5_T1_MPRAGE"
        assert folders[1].startswith(folders[0] + "-")
        uids = {json.loads((out / f / "report.json").read_text())["series"]["series_instance_uid"] for f in folders}
        assert uids == {a[0].SeriesInstanceUID, b[0].SeriesInstanceUID}
    private = tmp_path / "private"
    assert main(["run", str(model), str(tmp_path / "in" / "a"), "--out", str(private), "--quiet", "--private"]) == 0
    (seg,) = private.rglob("seg.dcm")
    assert seg.stat().st_mode & 0o777 == 0o600 and seg.parent.stat().st_mode & 0o777 == 0o700


def test_segment_colours_match_the_overlay_legend(model, tmp_path):
    hd = pytest.importorskip("highdicom")
    from edgeseg.results.colours import rgb
    from edgeseg.results.overlay import montage

    files = write_series(tmp_path / "in", new_series(sample_datasets(3, step=8), "colours"))
    out = tmp_path / "out"
    assert main(["run", str(model), *map(str, files), "--out", str(out), "--quiet"]) == 0
    (seg_path,) = out.rglob("seg.dcm")
    seg = hd.seg.segread(seg_path)
    assert "research use" in seg.SeriesDescription
    report = json.loads((seg_path.parent / "report.json").read_text())
    for k in (1, 2):
        lab = seg.get_segment_description(k).RecommendedDisplayCIELabValue
        assert hd.color.CIELabColor.from_dicom_value(lab).to_rgb() == rgb(k)
        assert report["colours"][report["model"]["class_names"][k]] == "#{:02x}{:02x}{:02x}".format(*rgb(k))
    import zlib

    png = (seg_path.parent / "overlay.png").read_bytes()
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    raw = zlib.decompress(png[png.index(b"IDAT") + 4:png.index(b"IEND") - 8])
    pixels = np.frombuffer(raw, np.uint8).reshape(height, width * 3 + 1)[:, 1:].reshape(height, width, 3)
    plain = montage(np.zeros((3, 256, 256), np.float32), np.zeros((3, 256, 256), np.uint8))
    strip = pixels[plain.shape[0]:]                                    # the legend below the montage
    assert strip.shape[0] > 0
    for k in (1, 2):
        assert (strip.reshape(-1, 3) == rgb(k)).all(axis=1).sum() >= 100  # a swatch of the class colour


def test_nifti_in_gives_the_dicom_mask_on_the_same_affine(model, tmp_path):
    """The sample slices as NIfTI (the affine edgeseg writes for the DICOM series) segment to the same mask."""
    nib = pytest.importorskip("nibabel")
    files = write_series(tmp_path / "dcm", new_series(sample_datasets(12, step=2), "nifti"))
    out = tmp_path / "out"
    assert main(["run", str(model), *map(str, files), "--out", str(out), "--quiet", "--also", "nifti"]) == 0
    (dicom_mask,) = out.rglob("mask.nii.gz")
    ref = nib.load(str(dicom_mask))
    import pydicom

    datasets = sorted((pydicom.dcmread(f) for f in files), key=lambda d: float(d.ImagePositionPatient[2]))
    volume = np.stack([d.pixel_array * float(d.RescaleSlope) + float(d.RescaleIntercept) for d in datasets])
    image = nib.Nifti1Image(np.transpose(volume, (2, 1, 0)).astype(np.float32), ref.affine)
    nifti_in = tmp_path / "t1.nii.gz"
    nib.save(image, str(nifti_in))
    out2 = tmp_path / "out2"
    assert main(["run", str(model), str(nifti_in), "--out", str(out2), "--quiet"]) == 0
    result = nib.load(str(out2 / "nifti" / "t1" / "mask.nii.gz"))
    np.testing.assert_allclose(result.affine, ref.affine, atol=1e-5)
    got, want = np.asarray(result.dataobj), np.asarray(ref.dataobj)
    assert got.shape == want.shape and got.dtype == np.uint8
    assert (got == want).mean() >= 0.999, (got == want).mean()   # float vs exact-histogram percentiles
    report = json.loads((out2 / "nifti" / "t1" / "report.json").read_text())
    assert report["input"]["format"] == "NIfTI" and report["volumes_ml"]


def test_single_slice_and_bad_nifti_say_so(model, tmp_path):
    nib = pytest.importorskip("nibabel")
    nib.save(nib.Nifti1Image(np.random.default_rng(0).random((256, 256, 1)).astype(np.float32) * 500, np.eye(4)),
             str(tmp_path / "one.nii"))
    (tmp_path / "broken.nii.gz").write_bytes(b"\x1f\x8b not really")
    out = tmp_path / "out"
    assert main(["run", str(model), str(tmp_path), "--out", str(out), "--quiet"]) == 1
    items = {Path(i["name"]).name: i for i in json.loads((out / "run_report.json").read_text())["items"]}
    assert items["one.nii"]["status"] == "ok" and "partial coverage: 1 slice(s)" in items["one.nii"]["reason"]
    assert items["broken.nii.gz"]["status"] == "failed" and "not a readable NIfTI file" in items["broken.nii.gz"]["reason"]


def test_two_nifti_files_of_one_name_get_two_folders_and_a_rerun_replaces_its_own(model, tmp_path):
    """OUT/nifti/<name> is held by the file whose report says so: another file of that name gets <name>-<hash>."""
    nib = pytest.importorskip("nibabel")
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        nib.save(nib.Nifti1Image(np.random.default_rng(0).random((16, 16, 2)).astype(np.float32) * 500, np.eye(4)),
                 str(tmp_path / sub / "t1.nii"))
    out = tmp_path / "out"
    for sub in ("a", "b", "a"):
        assert main(["run", str(model), str(tmp_path / sub / "t1.nii"), "--out", str(out), "--quiet"]) == 0
    held = {d.name: json.loads((d / "report.json").read_text())["input"]["path"] for d in (out / "nifti").iterdir()}
    assert len(held) == 2 and held["t1"] == str((tmp_path / "a" / "t1.nii").resolve()), held
    (other,) = set(held) - {"t1"}
    assert other.startswith("t1-") and held[other] == str((tmp_path / "b" / "t1.nii").resolve())


def test_malformed_inputs_to_the_new_entry_points_say_so_and_write_nothing(model, tmp_path, capsys):
    from edgeseg.runtime.session import Segmenter

    with pytest.raises(EdgesegError, match=r"expected a \(rows, cols\) or \(slices, rows, cols\) array"):
        Segmenter(model).predict(np.zeros((1, 2, 8, 8), np.float32))
    out = tmp_path / "out"
    assert main(["run", str(model), str(tmp_path), "--out", str(out), "--select", "SeriesDescripton~T1"]) == 2
    err = capsys.readouterr().err
    assert "unknown DICOM keyword 'SeriesDescripton'" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not out.exists()
    assert main(["serve", "--config", str(tmp_path / "missing.toml")]) == 2
    err = capsys.readouterr().err
    assert "missing.toml: config file not found" in err and "Traceback" not in err
