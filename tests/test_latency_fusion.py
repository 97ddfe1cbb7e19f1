"""Fusion rules: Conv+BN+ReLU is one kernel, residual adds fuse, QDQ pairs fold, metadata ops vanish."""
import numpy as np
from onnx import TensorProto, helper, numpy_helper

from edgeseg.latency.fusion import fuse
from edgeseg.latency.graph import load_graph
from latency_helpers import conv_bn_relu, model


def test_conv_bn_relu_is_one_kernel():
    fg = fuse(load_graph(conv_bn_relu()))
    assert [k.ops for k in fg.kernels] == [("Conv", "BatchNormalization", "Relu")]
    c = fg.kernels[0].cost
    assert (c.read, c.written) == (800, 1600)  # intermediate tensors no longer touch memory
    assert c.weights == 16 * 8 * 9 + 4 * 16


def test_residual_add_relu_fuses_into_conv():
    w = {"w": np.zeros((8, 8, 3, 3), np.float32)}
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1] * 4),
             helper.make_node("Add", ["c", "x"], ["a"]), helper.make_node("Relu", ["a"], ["y"])]
    fg = fuse(load_graph(model(nodes, {"x": [1, 8, 6, 6]}, w)))
    assert [k.ops for k in fg.kernels] == [("Conv", "Add", "Relu")]
    assert fg.kernels[0].cost.read == 2 * 288  # input + residual


def test_no_fusion_when_tensor_has_two_consumers():
    w = {"w": np.zeros((8, 8, 1, 1), np.float32)}
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"]), helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("Add", ["c", "r"], ["y"])]
    fg = fuse(load_graph(model(nodes, {"x": [1, 8, 4, 4]}, w)))
    assert [k.ops for k in fg.kernels] == [("Conv",), ("Relu",), ("Add",)]


def test_backend_fused_activations():
    w = {"w": np.zeros((8, 8, 1, 1), np.float32), "p": np.zeros((8, 1, 1), np.float32)}
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"]), helper.make_node("PRelu", ["c", "p"], ["y"])]
    g = load_graph(model(nodes, {"x": [1, 8, 4, 4]}, w))
    assert len(fuse(g).kernels) == 1 and len(fuse(g, activations={"Relu"}).kernels) == 2


def test_qdq_pairs_fold_and_metadata_ops_vanish():
    q = lambda i, o: helper.make_node("QuantizeLinear", [i, "sc", "zp"], [o])  # noqa: E731
    dq = lambda i, o: helper.make_node("DequantizeLinear", [i, "sc", "zp"], [o])  # noqa: E731
    nodes = [q("x", "xq"), dq("xq", "xd"), dq("wq", "wd"),
             helper.make_node("Conv", ["xd", "wd"], ["c"], pads=[1] * 4), q("c", "cq"), dq("cq", "cd"),
             helper.make_node("Relu", ["cd"], ["r"]), helper.make_node("Identity", ["r"], ["y"])]
    inits = [numpy_helper.from_array(np.zeros((8, 8, 3, 3), np.int8), "wq"),
             numpy_helper.from_array(np.array(0.1, np.float32), "sc"),
             numpy_helper.from_array(np.array(0, np.int8), "zp")]
    graph = helper.make_graph(nodes, "qdq", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 6, 6])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    fg = fuse(load_graph(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])))
    assert fg.quantized
    assert [k.ops for k in fg.kernels] == [("Conv", "Relu")]
    assert fg.kernels[0].cost.weights >= 8 * 8 * 9  # the dequantized weight is still a weight


def test_zoo_resnet18_matches_torchvision_macs():
    from edgeseg.latency import zoo

    fg = fuse(load_graph(zoo.build("resnet18")))
    macs = sum(k.cost.macs for k in fg.kernels)
    assert abs(macs / 1.814e9 - 1) < 0.01  # torchvision resnet18: 1.81 GMAC at 224x224
    assert all(k.ops[0] != "BatchNormalization" for k in fg.kernels)  # every BN fused into its conv


def test_ort_cpu_reorders_around_plain_layout_ops():
    from edgeseg.latency.predict import simulate

    w = {"w1": np.zeros((8, 8, 1, 1), np.float32), "p": np.zeros((8, 1, 1), np.float32),
         "w2": np.zeros((8, 8, 1, 1), np.float32)}
    nodes = [helper.make_node("Conv", ["x", "w1"], ["c"]), helper.make_node("PRelu", ["c", "p"], ["r"]),
             helper.make_node("Conv", ["r", "w2"], ["y"])]
    m = model(nodes, {"x": [1, 8, 4, 4]}, w)
    cpu = simulate(m, "raspberry-pi-4")
    ops = [k.ops[0] for k in cpu.layers]
    # input->conv, conv->PRelu, PRelu->conv, conv->output
    assert (ops.count("ReorderInput"), ops.count("ReorderOutput")) == (2, 2)
    assert not any(k.ops[0].startswith("Reorder") for k in simulate(m, "jetson-nano").layers)  # TensorRT: none
