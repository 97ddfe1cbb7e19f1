"""Real data: the MNI ICBM152 template shipped in nilearn's wheel, or a user's NIfTI folder."""
from edgeseg.data.volume import LabelledVolume, SliceSet
from edgeseg.data.sources import load_source, list_sources
from edgeseg.data.slices import build_slice_sets, split_positions

__all__ = ["LabelledVolume", "SliceSet", "load_source", "list_sources", "build_slice_sets", "split_positions"]
