"""Constant folding and control flow before costing: shapes and MACs come from onnx itself."""
import numpy as np
import pytest
from onnx import TensorProto, helper

from edgeseg.latency.graph import load_graph
from edgeseg.latency.predict import simulate
from latency_helpers import model


def _branch(name, nodes, out):
    return helper.make_graph(nodes, name, [], [helper.make_tensor_value_info(out, TensorProto.FLOAT, None)])


def shape_if_model(rank_test: int):
    """x (1,8,10,10) -> Shape -> Size-of-shape == rank_test ? conv 8->16 : identity (what torch's LRN export does)."""
    w = {"w": np.zeros((16, 8, 3, 3), np.float32)}
    then = _branch("then", [helper.make_node("Conv", ["x", "w"], ["t"], pads=[1] * 4)], "t")
    other = _branch("else", [helper.make_node("Relu", ["x"], ["e"])], "e")
    nodes = [helper.make_node("Shape", ["x"], ["s"]),
             helper.make_node("Size", ["s"], ["rank"]),
             helper.make_node("Equal", ["rank", "four"], ["c"]),
             helper.make_node("If", ["c"], ["y"], then_branch=then, else_branch=other)]
    return model(nodes, {"x": [1, 8, 10, 10]}, {**w, "four": np.array(rank_test, np.int64)})


@pytest.mark.parametrize("rank_test, macs", [(4, 16 * 10 * 10 * 8 * 9), (5, 0)])
def test_if_resolved_by_folding_prices_the_taken_branch(rank_test, macs):
    p = simulate(shape_if_model(rank_test), "jetson-nano")
    assert p.macs == macs  # exact: the conv is counted only when its branch is the one taken
    assert p.warnings == ()  # resolved: no unknown-op or control-flow warning
    assert "If" not in {n.op for n in load_graph(shape_if_model(rank_test)).nodes}


def test_if_on_a_runtime_condition_warns():
    then = _branch("then", [helper.make_node("Relu", ["x"], ["t"])], "t")
    other = _branch("else", [helper.make_node("Sigmoid", ["x"], ["e"])], "e")
    m = model([helper.make_node("If", ["c"], ["y"], then_branch=then, else_branch=other)], {"x": [1, 4, 4, 4]})
    m.graph.input.append(helper.make_tensor_value_info("c", TensorProto.BOOL, []))
    p = simulate(m, "jetson-nano", backend="ort-cpu")  # no per-inference overhead: the If is all of the time
    assert any("control flow not resolved" in w and "If" in w for w in p.warnings)
    assert p.estimated_share == pytest.approx(1.0) and any("unreliable" in w for w in p.warnings)


def test_reshape_target_from_a_shape_chain_folds():
    """Shape -> Gather -> Unsqueeze -> Concat -> Reshape (torch's flatten): the Gemm gets its exact K."""
    nodes = [helper.make_node("Shape", ["x"], ["s"]),
             helper.make_node("Gather", ["s", "zero"], ["n"], axis=0),
             helper.make_node("Unsqueeze", ["n", "axes"], ["n1"]),
             helper.make_node("Concat", ["n1", "minus1"], ["shape"], axis=0),
             helper.make_node("Reshape", ["x", "shape"], ["f"]),
             helper.make_node("Gemm", ["f", "w"], ["y"], transB=1)]
    w = {"zero": np.array(0, np.int64), "axes": np.array([0], np.int64), "minus1": np.array([-1], np.int64),
         "w": np.zeros((10, 8 * 4 * 4), np.float32)}
    p = simulate(model(nodes, {"x": [1, 8, 4, 4]}, w), "jetson-nano")
    assert p.macs == 10 * 128 and p.kernels == 1 and p.warnings == ()


def test_torch_exported_lrn_is_priced_without_warnings(tmp_path):
    """torch writes LocalResponseNorm as Pad/AveragePool(3D)/If on the input rank: folding resolves the If."""
    torch = pytest.importorskip("torch")
    import warnings

    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.LocalResponseNorm(5), torch.nn.ReLU())
    path = tmp_path / "lrn.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (torch.zeros(1, 3, 16, 16),), str(path), opset_version=13, dynamo=False)
    import onnx

    assert "If" in {n.op_type for n in onnx.load(str(path)).graph.node}  # the case of issue #14
    p = simulate(str(path), "jetson-nano")
    assert p.warnings == ()
    assert p.macs == 8 * 16 * 16 * 3 * 9  # only the conv has MACs (exact)
    assert any("AveragePool" in k.ops for k in p.layers)


def test_lrn_node_cost():
    from edgeseg.latency.costs import node_cost

    g = load_graph(model([helper.make_node("LRN", ["x"], ["y"], size=5)], {"x": [1, 8, 4, 4]}))
    c = node_cost(g.nodes[0], g)
    assert c.known and c.flops == (2 * 5 + 4) * 128 and (c.read, c.written) == (128, 128)


def test_torch_googlenet_with_lrn_exact_macs(tmp_path):
    """Issue #14's graph: before folding, 'does not know If', 22 GMAC and 140 ms; now torch's own count, no warning."""
    pytest.importorskip("torch")
    from latency_helpers import torch_googlenet_lrn

    path, macs = torch_googlenet_lrn(tmp_path / "googlenet.onnx", hw=224)
    p = simulate(str(path), "jetson-nano")
    assert p.macs == macs  # exact: conv and linear MACs counted by torch forward hooks (1.58 GMAC)
    assert p.warnings == () and p.estimated_ops == ()
    assert 8 < p.total_ms < 30  # published TensorRT FP16 Nano figure quoted in the issue: ~16 ms
