"""Tiny ONNX graphs for the latency tests (onnx.helper, zero weights)."""
from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper, numpy_helper


def model(nodes, inputs, weights=(), opset=13, extra_opsets=()):
    """nodes: helper nodes; inputs: {name: shape}; weights: {name: numpy array}. Output: the last node's."""
    vi = [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs.items()]
    inits = [numpy_helper.from_array(np.asarray(v), k) for k, v in dict(weights).items()]
    out = helper.make_tensor_value_info(nodes[-1].output[0], TensorProto.FLOAT, None)
    graph = helper.make_graph(nodes, "tiny", vi, [out], inits)
    ops = [helper.make_opsetid("", opset)] + [helper.make_opsetid(d, 1) for d in extra_opsets]
    return helper.make_model(graph, opset_imports=ops)


def conv(in_shape, w_shape, bias=True, **attrs):
    w = {"w": np.zeros(w_shape, np.float32)}
    ins = ["x", "w"]
    if bias:
        w["b"] = np.zeros(w_shape[0], np.float32)
        ins.append("b")
    return model([helper.make_node("Conv", ins, ["y"], **attrs)], {"x": list(in_shape)}, w)


def conv_bn_relu(in_shape=(1, 8, 10, 10), cout=16):
    c = cout
    w = {"w": np.zeros((c, in_shape[1], 3, 3), np.float32), **{k: np.ones(c, np.float32) for k in "sbmv"}}
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1] * 4, kernel_shape=[3, 3]),
             helper.make_node("BatchNormalization", ["c", "s", "b", "m", "v"], ["n"]),
             helper.make_node("Relu", ["n"], ["y"])]
    return model(nodes, {"x": list(in_shape)}, w)
