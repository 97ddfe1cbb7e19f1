"""A small real DICOM MR series made from the MNI ICBM152 T1 template (training stack: nibabel, nilearn data).

Axial slices in display orientation (rows toward P, columns toward L, ImageOrientationPatient
[1,0,0,0,1,0]) padded to a 256x256 matrix of 1 mm pixels, positions in LPS from the NIfTI affine,
16-bit unsigned with a rescale slope that gives back the template's values exactly, explicit VR
little endian, uncompressed. UIDs derive from fixed entropy so reruns produce identical files.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from edgeseg.orientation import reorient_2d

MATRIX = (256, 256)
FIRST_SLICE, STEP, COUNT = 18, 4, 32     # template z indices 18, 22, ..., 142 (1 mm voxels)
STORED_PER_UNIT = 16                      # stored = value * 16 (BitsStored 12); RescaleSlope = 1/16
ENTROPY = "edgeseg-sample-mr-brain-v1"


def sample_slices():
    """(images, labels, geometry): display-orientation (N, 256, 256) template values and GM/WM labels,
    and per-slice ImagePositionPatient (LPS) with the shared orientation and spacing."""
    import nibabel as nib

    from edgeseg.data.sources import mni152_files, mni_labels

    files = mni152_files()
    vols = {k: nib.as_closest_canonical(nib.load(str(p))) for k, p in files.items()}
    affine = vols["t1"].affine
    t1 = np.asarray(vols["t1"].dataobj, dtype=np.float32)
    labels = mni_labels(np.asarray(vols["gm"].dataobj) / 255.0, np.asarray(vols["wm"].dataobj) / 255.0)
    ks = FIRST_SLICE + STEP * np.arange(COUNT)
    # voxel index grids go through the same reorientation as the pixels, so geometry follows the data
    ii, jj = np.meshgrid(np.arange(t1.shape[0]), np.arange(t1.shape[1]), indexing="ij")
    ii, jj = (reorient_2d(g, ("R", "A"), ("P", "L")) for g in (ii, jj))
    pad = [(m - n) // 2 for m, n in zip(MATRIX, ii.shape)]

    def lps(r, c, k):
        x, y, z, _ = affine @ np.array([ii[r, c], jj[r, c], k, 1.0])
        return np.array([-x, -y, z])  # NIfTI is RAS, DICOM is LPS

    k0 = int(ks[0])
    p00, row_step, col_step = lps(0, 0, k0), lps(1, 0, k0) - lps(0, 0, k0), lps(0, 1, k0) - lps(0, 0, k0)
    origin = p00 - pad[0] * row_step - pad[1] * col_step
    slice_step = lps(0, 0, k0 + STEP) - p00
    images, labs = [], []
    for k in ks:
        img = reorient_2d(t1[:, :, k], ("R", "A"), ("P", "L"))
        lab = reorient_2d(labels[:, :, k], ("R", "A"), ("P", "L"))
        images.append(np.pad(img, [(p, m - n - p) for p, m, n in zip(pad, MATRIX, img.shape)]))
        labs.append(np.pad(lab, [(p, m - n - p) for p, m, n in zip(pad, MATRIX, lab.shape)]))
    geometry = {
        "positions": [origin + i * slice_step for i in range(COUNT)],
        "orientation": [*(col_step / np.linalg.norm(col_step)), *(row_step / np.linalg.norm(row_step))],
        "spacing": (float(np.linalg.norm(row_step)), float(np.linalg.norm(col_step))),
        "slice_spacing": float(np.linalg.norm(slice_step)),
    }
    return np.stack(images), np.stack(labs).astype(np.uint8), geometry


def build_datasets():
    """The series as a list of pydicom FileDatasets (not yet written)."""
    images, _, geo = sample_slices()
    return series_datasets(images, geo, ENTROPY, f"T1w axial {STEP} mm (every {STEP}th template slice)")


def series_datasets(images, geo: dict, entropy: str, description: str, slope: float = 1.0 / STORED_PER_UNIT,
                    slice_thickness: float = 1.0):
    """(N, rows, cols) values -> pydicom FileDatasets of one MR series; `geo` as from `sample_slices`
    (positions, orientation, spacing, slice_spacing); stored = round(value / slope), 12 bits, unsigned."""
    import pydicom
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, PYDICOM_IMPLEMENTATION_UID, generate_uid

    from edgeseg import __version__

    def uid(*parts) -> str:
        return generate_uid(entropy_srcs=[entropy, *map(str, parts)])

    study, series, frame_of_ref = uid("study"), uid("series"), uid("frame-of-reference")
    out = []
    for i, (img, pos) in enumerate(zip(images, geo["positions"])):
        sop = uid("instance", i)
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = MRImageStorage, sop
        meta.TransferSyntaxUID, meta.ImplementationClassUID = ExplicitVRLittleEndian, PYDICOM_IMPLEMENTATION_UID
        ds = pydicom.FileDataset(f"slice{i:03d}.dcm", {}, file_meta=meta, preamble=b"\0" * 128)
        ds.SpecificCharacterSet = "ISO_IR 100"
        ds.ImageType = ["DERIVED", "SECONDARY", "OTHER"]
        ds.SOPClassUID, ds.SOPInstanceUID = MRImageStorage, sop
        ds.StudyDate = ds.SeriesDate = ds.ContentDate = "20090101"
        ds.StudyTime = ds.SeriesTime = ds.ContentTime = "120000"
        ds.AccessionNumber, ds.Modality, ds.Manufacturer = "", "MR", "edgeseg"
        ds.ReferringPhysicianName, ds.InstitutionName = "", "MNI ICBM152 2009a template (via nilearn)"
        ds.StudyDescription = "edgeseg sample: MNI ICBM152 2009a T1 template"
        ds.SeriesDescription = description
        ds.ManufacturerModelName, ds.SoftwareVersions = "edgeseg make_dicom", __version__
        ds.PatientName, ds.PatientID = "MNI152^Template", "MNI152-2009a"
        ds.PatientBirthDate, ds.PatientSex, ds.PatientAge = "", "O", ""
        ds.BodyPartExamined, ds.PatientPosition = "HEAD", "HFS"
        ds.ScanningSequence, ds.SequenceVariant, ds.ScanOptions = "GR", "NONE", ""
        ds.MRAcquisitionType = "3D"
        ds.SliceThickness, ds.SpacingBetweenSlices = slice_thickness, geo["slice_spacing"]
        ds.RepetitionTime, ds.EchoTime, ds.EchoTrainLength = None, None, None
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
        ds.StudyID, ds.SeriesNumber, ds.InstanceNumber, ds.AcquisitionNumber = "1", 1, i + 1, 1
        ds.ImagePositionPatient = [round(float(v), 4) for v in pos]
        ds.ImageOrientationPatient = [round(float(v), 6) for v in geo["orientation"]]
        ds.FrameOfReferenceUID, ds.PositionReferenceIndicator = frame_of_ref, ""
        ds.SliceLocation = round(float(pos[2]), 4)
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.Rows, ds.Columns = img.shape
        ds.PixelSpacing = list(geo["spacing"])
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
        ds.WindowCenter, ds.WindowWidth = 60, 120
        ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = 0, slope, "US"
        ds.PixelData = np.clip(np.round(img / slope), 0, 4095).astype("<u2").tobytes()
        out.append(ds)
    return out


def write_sample(folder: str | Path) -> list[Path]:
    """Write the series into `folder` (created), one file per slice; returns the paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, ds in enumerate(build_datasets()):
        path = folder / f"MR{i + 1:04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths
