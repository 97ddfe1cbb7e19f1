"""normal_positions: the one slice-order key the runner sorts by (runtime/series.py) and the robustness
bench compares labels with (bench/robustness._slice_order)."""
import numpy as np
import pytest

from edgeseg.orientation import normal_positions

AXIAL = (1, 0, 0, 0, 1, 0)      # normal +S
CORONAL = (1, 0, 0, 0, 0, -1)   # rows L, columns I: normal = x cross -z = +P (y grows toward P in LPS)


def test_axial_positions_are_their_z():
    pos = [(3.0, -2.0, z) for z in (5.0, -1.5, 2.0)]
    assert normal_positions(AXIAL, pos) == pytest.approx([5.0, -1.5, 2.0], abs=1e-12)


def test_coronal_stack_built_toward_anterior_is_reversed_by_the_sort():
    # a display stack whose slices step toward A (y decreasing in LPS): the runner puts the last one first
    pos = [(0.0, -float(k), 0.0) for k in range(4)]
    keys = normal_positions(CORONAL, pos)
    assert keys == pytest.approx([0.0, -1.0, -2.0, -3.0], abs=1e-12)
    assert np.argsort(keys, kind="stable").tolist() == [3, 2, 1, 0]


def test_bench_orders_labels_with_the_runners_key(monkeypatch):
    from edgeseg.bench import robustness, robustness_variants

    g = {"orientation": CORONAL, "positions": [np.array([0.0, -float(k), 0.0]) for k in range(5)]}
    monkeypatch.setattr(robustness_variants, "geometry", lambda stack: g)
    assert robustness._slice_order(object()).tolist() == [4, 3, 2, 1, 0]
