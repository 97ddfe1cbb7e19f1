"""Kernel-time rules: Winograd gain, in-place Concat, per-inference overhead (hand-checked on tiny graphs)."""
from dataclasses import replace

import numpy as np
import pytest
from onnx import helper

from edgeseg.latency.device import load_device
from edgeseg.latency.fusion import fuse
from edgeseg.latency.graph import load_graph
from edgeseg.latency.roofline import kernel_times, total_seconds
from latency_helpers import conv, model


def _trt(**eff):
    profile = load_device("jetson-nano")
    b = profile.backend("trt")
    b = replace(b, efficiency=replace(b.efficiency, **eff))
    return b, profile.precision("trt", "fp16")[0]


def test_winograd_gain_divides_only_3x3_stride1_compute():
    b, prec = _trt(launch_us=5.0)
    big = dict(pads=[1] * 4)
    t3 = kernel_times(fuse(load_graph(conv((1, 64, 64, 64), (64, 64, 3, 3), **big))), b, prec)[0]
    t3s2 = kernel_times(fuse(load_graph(conv((1, 64, 64, 64), (64, 64, 3, 3), strides=[2, 2], **big))), b, prec)[0]
    no_gain = kernel_times(fuse(load_graph(conv((1, 64, 64, 64), (64, 64, 3, 3), **big))),
                           replace(b, winograd_gain=1.0), prec)[0]
    assert t3.op_class == "conv3x3" and t3s2.op_class == "conv"
    assert no_gain.compute_s / t3.compute_s == pytest.approx(b.winograd_gain)  # exact: only the FLOP rate changes
    assert b.winograd_gain == 2.25  # F(2x2,3x3): 36 multiplies -> 16


def test_in_place_concat_is_no_kernel():
    nodes = [helper.make_node("Relu", ["x"], ["a"]), helper.make_node("Sigmoid", ["x"], ["s"]),
             helper.make_node("Concat", ["a", "s"], ["y"], axis=1)]
    fg = fuse(load_graph(model(nodes, {"x": [1, 8, 16, 16]})))
    b, prec = _trt()
    times = {t.ops[0]: t for t in kernel_times(fg, b, prec)}
    assert b.efficiency.concat == 0 and times["Concat"].seconds == 0.0  # no traffic and no launch
    copy = replace(b, efficiency=replace(b.efficiency, concat=1.0), launch_overlaps=False)  # launch added, not a floor
    copied = {t.ops[0]: t for t in kernel_times(fg, copy, prec)}
    assert copied["Concat"].seconds > b.efficiency.launch_us * 1e-6


def test_inference_overhead_added_once():
    fg = fuse(load_graph(conv((1, 8, 8, 8), (8, 8, 1, 1))))
    b, prec = _trt(inference_us=0.0)
    base = total_seconds(kernel_times(fg, b, prec), b)
    b2, _ = _trt(inference_us=700.0)
    assert total_seconds(kernel_times(fg, b2, prec), b2) - base == pytest.approx(700e-6, rel=1e-9)
    assert np.isclose(base, sum(t.seconds for t in kernel_times(fg, b, prec)))


def test_overlapped_launch_is_a_floor_not_a_sum():
    """launch_overlaps (TensorRT: the host enqueues kernel k+1 while kernel k runs): a kernel shorter than the
    per-kernel host cost takes that cost, a longer one its own time; without the flag the cost is added to both."""
    tiny = fuse(load_graph(conv((1, 8, 8, 8), (8, 8, 1, 1))))
    big = fuse(load_graph(conv((1, 64, 64, 64), (64, 64, 3, 3), pads=[1] * 4)))
    b, prec = _trt(launch_us=50.0)
    over, b = replace(b, launch_overlaps=True), replace(b, launch_overlaps=False)
    t_tiny, t_big = kernel_times(tiny, over, prec)[0], kernel_times(big, over, prec)[0]
    assert max(t_tiny.compute_s, t_tiny.memory_s) < 50e-6 and t_tiny.seconds == pytest.approx(50e-6, rel=1e-12)
    assert max(t_big.compute_s, t_big.memory_s) > 50e-6
    assert t_big.seconds == pytest.approx(max(t_big.compute_s, t_big.memory_s), rel=1e-12)
    added = kernel_times(big, b, prec)[0]
    assert added.seconds == pytest.approx(t_big.seconds + 50e-6, rel=1e-12)
