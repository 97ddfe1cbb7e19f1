"""Real data: the MNI ICBM152 template shipped in nilearn's wheel, or a user's NIfTI folder."""
from edgeseg.data.volume import LabelledVolume, SliceSet
from edgeseg.data.sources import load_source, list_sources
from edgeseg.data.slices import build_slice_sets, split_positions


def load_data(recipe):
    """-> (slice sets, data identity, volume spacing) of a training recipe's [data]: the one loader of training,
    evaluation, export, compression and the benchmarks."""
    volumes = load_source(recipe.data.source)
    return build_slice_sets(volumes, recipe.data.slices), volumes[0].identity, volumes[0].spacing


__all__ = ["LabelledVolume", "SliceSet", "load_source", "list_sources", "build_slice_sets", "split_positions",
           "load_data"]
