"""MACs / FLOPs / element counts of single ops against hand computation."""
import numpy as np
import pytest
from onnx import helper

from edgeseg.latency.costs import node_cost
from edgeseg.latency.graph import load_graph
from latency_helpers import conv, model


def cost_of(m, op=None):
    g = load_graph(m)
    node = next(n for n in g.nodes if op is None or n.op == op)
    return node_cost(node, g)


def test_conv_plain():
    c = cost_of(conv((1, 8, 10, 10), (16, 8, 3, 3), pads=[1] * 4))
    assert c.macs == 16 * 10 * 10 * 8 * 9 == 115200
    assert c.flops == 2 * 115200 + 1600  # + bias add per output
    assert (c.read, c.written, c.weights) == (800, 1600, 16 * 8 * 9 + 16)


@pytest.mark.parametrize("w_shape, attrs, macs", [
    ((16, 8, 3, 3), dict(pads=[1] * 4, strides=[2, 2]), 16 * 5 * 5 * 8 * 9),        # stride 2 -> 5x5
    ((16, 8, 3, 3), dict(pads=[0] * 4), 16 * 8 * 8 * 8 * 9),                           # no padding -> 8x8
    ((16, 4, 3, 3), dict(pads=[1] * 4, group=2), 16 * 10 * 10 * 4 * 9),                # grouped
    ((8, 1, 3, 3), dict(pads=[1] * 4, group=8), 8 * 10 * 10 * 9),                      # depthwise
    ((16, 8, 3, 3), dict(pads=[2] * 4, dilations=[2, 2]), 16 * 10 * 10 * 8 * 9),       # dilated, same size
])
def test_conv_variants(w_shape, attrs, macs):
    assert cost_of(conv((1, 8, 10, 10), w_shape, bias=False, **attrs)).macs == macs


def test_conv_transpose():
    m = model([helper.make_node("ConvTranspose", ["x", "w"], ["y"], strides=[2, 2], kernel_shape=[2, 2])],
              {"x": [1, 8, 5, 5]}, {"w": np.zeros((8, 4, 2, 2), np.float32)})
    c = cost_of(m)
    assert c.macs == 8 * 5 * 5 * 4 * 2 * 2 == 3200  # every input pixel scatters Cout x k x k
    assert (c.read, c.written, c.weights) == (200, 4 * 10 * 10, 128)


def test_gemm():
    m = model([helper.make_node("Gemm", ["x", "w", "b"], ["y"], transB=1)], {"x": [1, 64]},
              {"w": np.zeros((32, 64), np.float32), "b": np.zeros(32, np.float32)})
    c = cost_of(m)
    assert c.macs == 64 * 32 and c.weights == 64 * 32 + 32 and (c.read, c.written) == (64, 32)


def test_matmul_batched():
    m = model([helper.make_node("MatMul", ["x", "w"], ["y"])], {"x": [2, 5, 16]}, {"w": np.zeros((16, 4), np.float32)})
    assert cost_of(m).macs == 2 * 5 * 4 * 16


def test_pooling():
    m = model([helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[2, 2], strides=[2, 2])], {"x": [1, 4, 8, 8]})
    c = cost_of(m)
    assert (c.macs, c.flops, c.read, c.written) == (0, 64 * 4, 256, 64)
    m = model([helper.make_node("GlobalAveragePool", ["x"], ["y"])], {"x": [1, 4, 8, 8]})
    assert (cost_of(m).flops, cost_of(m).written) == (256, 4)


@pytest.mark.parametrize("mode, flops", [("linear", 2 * 4 * 128), ("nearest", 0)])
def test_resize(mode, flops):
    m = model([helper.make_node("Resize", ["x", "", "s"], ["y"], mode=mode)], {"x": [1, 2, 4, 4]},
              {"s": np.array([1, 1, 2, 2], np.float32)})
    c = cost_of(m)
    assert (c.flops, c.read, c.written) == (flops, 32, 128)  # 2 resized dims -> 4 taps per output


def test_unknown_op_is_flagged():
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("FooBar", ["r"], ["y"], domain="com.example")]
    c = cost_of(model(nodes, {"x": [1, 4, 8, 8]}, extra_opsets=["com.example"]), "FooBar")
    assert not c.known and c.written == 256  # output shape assumed from the input
