"""NCHWc layout rules (layout.py), per-op efficiencies and the calibration probes behind them."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from onnx import helper

from latency_helpers import model
from edgeseg.latency.device import load_device
from edgeseg.latency.fusion import fuse
from edgeseg.latency.graph import load_graph
from edgeseg.latency.layout import boundary_tensors, channel_fill, layouts


def _convs(cin, mid, cout, hw=8):
    w = {"w1": np.zeros((mid, cin, 3, 3), np.float32), "w2": np.zeros((cout, mid, 3, 3), np.float32)}
    nodes = [helper.make_node("Conv", ["x", "w1"], ["c"], pads=[1] * 4),
             helper.make_node("Conv", ["c", "w2"], ["y"], pads=[1] * 4)]
    return fuse(load_graph(model(nodes, {"x": [1, cin, hw, hw]}, w)))


def test_block_decides_which_tensors_are_reordered():
    fg = _convs(16, 8, 16)
    # block 8: all aligned, reorders only at the graph's edges
    assert boundary_tensors(fg, 8) == [("x", "ReorderInput"), ("y", "ReorderOutput")]
    # block 16: the 8-channel tensor is padded, the second conv (Cin < block) reads it plain
    assert boundary_tensors(fg, 16) == [("x", "ReorderInput"), ("c", "ReorderOutput"), ("y", "ReorderOutput")]


def test_channel_padding_wastes_conv_arithmetic():
    fg = _convs(24, 8, 16)
    first, second = fg.kernels
    assert channel_fill(first, fg.graph, 8) == 1.0
    assert channel_fill(first, fg.graph, 16) == pytest.approx(24 / 32 * 8 / 16)  # Cin and Cout padded
    assert channel_fill(second, fg.graph, 16) == 1.0  # Cin 8 < block: read plain, not padded


def test_plain_ops_break_the_blocked_layout_and_resize_keeps_it():
    w = {"w": np.zeros((16, 16, 1, 1), np.float32), "p": np.zeros((16, 1, 1), np.float32),
         "s": np.array([1, 1, 2, 2], np.float32)}
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"]), helper.make_node("Resize", ["c", "", "s"], ["r"]),
             helper.make_node("PRelu", ["r", "p"], ["y"])]
    fg = fuse(load_graph(model(nodes, {"x": [1, 16, 4, 4]}, w)), frozenset({"Relu"}))
    writes, reads = layouts(fg, 16)
    assert [k.anchor.op for k in fg.kernels if k.name in writes] == ["Conv", "Resize"]
    assert ("r", "ReorderOutput") in boundary_tensors(fg, 16)


def test_op_efficiency_overrides_the_class_and_nchwc_key_applies_to_blocked_kernels():
    from edgeseg.latency.roofline import kernel_times

    profile = load_device("raspberry-pi-4")
    b = profile.backend("ort-cpu")
    prec, _ = profile.precision("ort-cpu", "fp32")
    w = {"w": np.zeros((16, 16, 1, 1), np.float32), "p": np.zeros((16, 1, 1), np.float32),
         "s": np.array([1, 1, 2, 2], np.float32)}
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"]), helper.make_node("Resize", ["c", "", "s"], ["r"]),
             helper.make_node("PRelu", ["r", "p"], ["y"])]
    fg = fuse(load_graph(model(nodes, {"x": [1, 16, 64, 64]}, w)), b.fused_activations)
    base = {t.ops[0]: t.compute_s for t in kernel_times(fg, b, prec)}
    slow = replace(b, op_efficiency={"PRelu": b.efficiency.activation / 10, "NchwcResize": b.efficiency.resize / 4,
                                     "Resize": 1e-9})  # plain-Resize key: unused, the Resize here is blocked
    new = {t.ops[0]: t.compute_s for t in kernel_times(fg, slow, prec)}
    assert new["PRelu"] == pytest.approx(10 * base["PRelu"])
    assert new["Resize"] == pytest.approx(4 * base["Resize"])
    assert new["Conv"] == base["Conv"]


def test_profile_reads_op_efficiency_and_block(tmp_path):
    from edgeseg.errors import EdgesegError
    from edgeseg.latency.device import DEVICES_DIR

    text = (DEVICES_DIR / "host.toml").read_text().replace("layout_reorders = true", "layout_reorders = true\nnchwc_block = 16")
    path = tmp_path / "h.toml"
    path.write_text(text + "\n[backends.ort-cpu.op_efficiency]\nPRelu = 0.005\n")
    b = load_device(str(path)).backend("ort-cpu")
    assert (b.nchwc_block, b.op_efficiency) == (16, {"PRelu": 0.005})
    path.write_text(text + "\n[backends.ort-cpu.op_efficiency]\nPRelu = -1\n")
    with pytest.raises(EdgesegError, match="op_efficiency.PRelu"):
        load_device(str(path))


def test_fit_moves_an_op_efficiency_entry():
    from edgeseg.latency.calibrate import PROBES, probe_model
    from edgeseg.latency.fit import fit_backend, param, predict_ms

    profile = load_device("raspberry-pi-4")
    b = replace(profile.backend("ort-cpu"), op_efficiency={"Elu": 0.01})
    profile = replace(profile, backends={"ort-cpu": b})
    fg = fuse(load_graph(probe_model(*PROBES["elu"])))
    prec, _ = profile.precision("ort-cpu", "fp32")
    target = 3 * predict_ms(fg, b, prec)
    fitted = fit_backend(profile, "ort-cpu", [(fg, "fp32", target)], bounds={"op:Elu": (1e-4, 1.0)})
    assert param(fitted, "op:Elu") == pytest.approx(0.01 / 3, rel=0.02)
    assert fitted.efficiency == replace(b.efficiency, uncertainty=fitted.efficiency.uncertainty)


def test_every_own_op_has_its_probe_and_probes_build():
    from edgeseg.latency.calibrate import OWN_OPS, PROBES, probe_model

    assert set(OWN_OPS.values()) <= set(PROBES)
    m = probe_model(*PROBES["resize_nchwc"])
    assert [n.op_type for n in m.graph.node] == ["Conv", "Resize"]  # behind a conv: runs blocked
    assert probe_model(*PROBES["reorder_input"]).graph.node[0].domain == "com.microsoft.nchwc"
