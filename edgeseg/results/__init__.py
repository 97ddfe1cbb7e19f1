"""What a segmented series leaves behind, shared by the runner (`edgeseg run`), the DICOM node and the
archive runs: the DICOM SEG (`seg_writer`), mask files (`mask_files`), the overlay PNG with its legend
(`overlay`, `legend`, `colours`), the per-series report (`report`), the series folder and its atomic
publish (`outputs`) and the resumable batch manifest (`manifest`).

numpy, pydicom and the standard library only (highdicom for the SEG, imported when it is written); never
imports the runner, so the node and Ray workers use it without the inference stages.
"""
