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


def torch_googlenet_lrn(path, hw=224):
    """BVLC GoogLeNet (Inception v1 with LocalResponseNorm) exported by torch's TorchScript exporter, which writes
    each LRN as Pad/AveragePool(3D)/If: the graph of issue #14. Returns (path, MACs counted by torch hooks)."""
    import warnings

    import torch
    from torch import nn

    class Inception(nn.Module):
        def __init__(self, cin, c1, c3r, c3, c5r, c5, pool):
            super().__init__()
            self.b1 = nn.Sequential(nn.Conv2d(cin, c1, 1), nn.ReLU())
            self.b2 = nn.Sequential(nn.Conv2d(cin, c3r, 1), nn.ReLU(), nn.Conv2d(c3r, c3, 3, padding=1), nn.ReLU())
            self.b3 = nn.Sequential(nn.Conv2d(cin, c5r, 1), nn.ReLU(), nn.Conv2d(c5r, c5, 5, padding=2), nn.ReLU())
            self.b4 = nn.Sequential(nn.MaxPool2d(3, 1, 1), nn.Conv2d(cin, pool, 1), nn.ReLU())

        def forward(self, x):
            return torch.cat([self.b1(x), self.b2(x), self.b3(x), self.b4(x)], 1)

    pool = lambda: nn.MaxPool2d(3, 2, ceil_mode=True)  # noqa: E731
    net = nn.Sequential(
        nn.Conv2d(3, 64, 7, 2, 3), nn.ReLU(), pool(), nn.LocalResponseNorm(5), nn.Conv2d(64, 64, 1), nn.ReLU(),
        nn.Conv2d(64, 192, 3, padding=1), nn.ReLU(), nn.LocalResponseNorm(5), pool(),
        Inception(192, 64, 96, 128, 16, 32, 32), Inception(256, 128, 128, 192, 32, 96, 64), pool(),
        Inception(480, 192, 96, 208, 16, 48, 64), Inception(512, 160, 112, 224, 24, 64, 64),
        Inception(512, 128, 128, 256, 24, 64, 64), Inception(512, 112, 144, 288, 32, 64, 64),
        Inception(528, 256, 160, 320, 32, 128, 128), pool(), Inception(832, 256, 160, 320, 32, 128, 128),
        Inception(832, 384, 192, 384, 48, 128, 128), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(1024, 1000)).eval()
    macs = []

    def hook(m, inp, out):
        k = m.weight[0].numel() if isinstance(m, nn.Conv2d) else m.in_features
        macs.append(out.numel() * k)

    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            m.register_forward_hook(hook)
    x = torch.zeros(1, 3, hw, hw)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net(x)
        counted = sum(macs)  # before the export, whose tracing runs the hooks again
        torch.onnx.export(net, (x,), str(path), opset_version=13, dynamo=False)
    return path, int(counted)
