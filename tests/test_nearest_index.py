"""One nearest-sampling rule: the low-resolution labels of training's supervision (torch) are the same pixels
as a nearest-sampled input (preprocess.nearest_downsample, numpy)."""
import numpy as np
import pytest
import torch

from edgeseg.preprocess import nearest_downsample, nearest_index
from edgeseg.train.supervision import nearest_downsample as label_downsample


@pytest.mark.parametrize("factor", [1, 2, 4, 8])
def test_labels_and_inputs_take_the_same_pixels(factor):
    grid = np.arange(3 * 16 * 24).reshape(3, 16, 24)
    assert np.array_equal(label_downsample(torch.from_numpy(grid), factor).numpy(), nearest_downsample(grid, factor))


def test_the_sample_is_the_one_nearest_each_block_centre():
    assert list(range(16))[nearest_index(4)] == [2, 6, 10, 14]
    assert list(range(16))[nearest_index(8)] == [4, 12]
