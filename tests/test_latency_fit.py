"""The TensorRT fit does not depend on where it starts when the rows identify the parameters, and says so when
they do not (fit.fit_multistart). Tiny zoo networks, synthetic "published" times from a known device, few rounds."""
import pytest
from dataclasses import replace

from edgeseg.latency import zoo
from edgeseg.latency.device import load_device
from edgeseg.latency.fit import (fit_backend, fit_multistart, param, predict_ms, range_distance, start_at,
                                 starts, with_param)
from edgeseg.latency.fusion import fuse
from edgeseg.latency.graph import load_graph

# two parameters the rows below can tell apart: the 3x3 conv speed (VGG-like rows) and the per-kernel cost
# (SqueezeNet: many small kernels); 1 % of each parameter's log range is the stated tolerance
TWO = {"conv3x3": (0.05, 1.0), "launch_us": (5.0, 100.0)}
TRUTH = {"conv3x3": 0.4, "launch_us": 20.0}
TOL = 0.01


def _items(nets, truth):
    nano = load_device("jetson-nano")
    trt = nano.backend("trt")
    for name, value in truth.items():
        trt = with_param(trt, name, value)
    prec, _ = nano.precision("trt", "fp16")
    out = []
    for name, chw in nets:
        fg = fuse(load_graph(zoo.build(name, chw, 10)))
        out.append((fg, "fp16", predict_ms(fg, trt, prec)))  # the "published" time of a known device
    return nano, out


@pytest.fixture(scope="module")
def two_rows():
    return _items([("vgg11", (3, 64, 64)), ("squeezenet1_1", (3, 64, 64))], TRUTH)


def test_two_starts_end_at_the_same_parameters(two_rows):
    nano, items = two_rows
    a = fit_backend(start_at(nano, "trt", 0.1, TWO), "trt", items, rounds=60, bounds=TWO)
    b = fit_backend(start_at(nano, "trt", 0.9, TWO), "trt", items, rounds=60, bounds=TWO)
    for name, (lo, hi) in TWO.items():
        assert range_distance(param(a, name), param(b, name), lo, hi) <= TOL, name
        assert range_distance(param(a, name), TRUTH[name], lo, hi) <= TOL, name


def test_multistart_keeps_the_lowest_loss_and_reports_agreement(two_rows):
    nano, items = two_rows
    ms = fit_multistart(nano, "trt", items, bounds=TWO, rounds=60)
    assert set(ms.ends) == {"stored", "middle", "low", "high", "alt-a", "alt-b"}
    assert ms.losses[ms.best_start] == min(ms.losses.values())
    assert ms.identified(TOL)
    # the result does not depend on the stored profile: a different stored value, the same fitted parameters
    moved = replace(nano, backends={**nano.backends, "trt": with_param(nano.backend("trt"), "launch_us", 90.0)})
    other = fit_multistart(moved, "trt", items, bounds=TWO, rounds=60)
    for name, (lo, hi) in TWO.items():
        assert range_distance(param(other.best, name), param(ms.best, name), lo, hi) <= TOL, name


def test_unidentified_parameters_are_flagged():
    # one row cannot split a per-kernel cost from a per-inference cost: equally good ends disagree
    bounds = {"launch_us": (5.0, 100.0), "inference_us": (0.0, 2000.0)}
    nano, items = _items([("squeezenet1_1", (3, 64, 64))], {"launch_us": 20.0, "inference_us": 500.0})
    ms = fit_multistart(nano, "trt", items, bounds=bounds, rounds=60)
    assert min(ms.losses.values()) < 1e-4  # every end describes the row...
    assert not ms.identified(0.05)  # ...but at different parameters, and that is said


def test_starts_are_deterministic_and_inside_the_bounds():
    nano = load_device("jetson-nano")
    a, b = starts(nano, "trt", TWO), starts(nano, "trt", TWO)
    for name in a:
        for p, (lo, hi) in TWO.items():
            assert param(a[name].backend("trt"), p) == param(b[name].backend("trt"), p)
            if name != "stored":
                assert lo <= param(a[name].backend("trt"), p) <= hi
