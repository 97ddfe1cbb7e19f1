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


@pytest.mark.parametrize("cin,group,blocked", [(17, 1, False), (129, 1, False), (18, 1, False), (20, 1, True),
                                               (132, 1, True), (8, 1, True), (3, 3, False), (6, 6, False),
                                               (8, 8, True), (24, 24, True)])
def test_conv_stays_plain_when_its_input_channels_are_not_aligned(cin, group, blocked):
    """ORT's NCHWc transformer (checked with ORT's optimized-model dump): Cin < block or Cin % 4 == 0."""
    from edgeseg.latency.layout import blocked_conv

    w = {"w": np.zeros((cin if group > 1 else 32, cin // group, 3, 3), np.float32)}
    fg = fuse(load_graph(model([helper.make_node("Conv", ["x", "w"], ["y"], pads=[1] * 4, group=group)],
                               {"x": [1, cin, 8, 8]}, w)))
    assert blocked_conv(fg.kernels[0], fg.graph, 16) is blocked
    assert (("x", "ReorderInput") in boundary_tensors(fg, 16)) is (blocked and cin >= 16)


def test_plain_convs_use_the_conv_and_grouped_conv_keys_blocked_ones_do_not():
    from edgeseg.latency.roofline import kernel_times

    profile = load_device("raspberry-pi-4")
    b, (prec, _) = profile.backend("ort-cpu"), profile.precision("ort-cpu", "fp32")
    w = {"a": np.zeros((32, 17, 3, 3), np.float32), "b": np.zeros((32, 32, 3, 3), np.float32),
         "c": np.zeros((32, 1, 3, 3), np.float32), "d": np.zeros((6, 1, 3, 3), np.float32)}
    nodes = [helper.make_node("Conv", ["x", "a"], ["p"], pads=[1] * 4),  # Cin 17: plain
             helper.make_node("Conv", ["p", "b"], ["q"], pads=[1] * 4),  # Cin 32: blocked
             helper.make_node("Conv", ["q", "c"], ["r"], pads=[1] * 4, group=32),  # depthwise 32: blocked
             helper.make_node("Slice", ["r", "st", "en", "ax"], ["s"]),
             helper.make_node("Conv", ["s", "d"], ["y"], pads=[1] * 4, group=6)]  # depthwise 6: plain
    w.update(st=np.array([0], np.int64), en=np.array([6], np.int64), ax=np.array([1], np.int64))
    fg = fuse(load_graph(model(nodes, {"x": [1, 17, 32, 32]}, w)))
    conv_times = lambda be: [t.compute_s for t in kernel_times(fg, be, prec) if t.ops[0] == "Conv"]  # noqa: E731
    base = conv_times(b)
    slow = replace(b, op_efficiency={"Conv": 1e-3, "GroupedConv": 1e-4})
    new = conv_times(slow)
    assert new[0] > 50 * base[0] and new[3] > 50 * base[3]  # plain: priced by their keys
    assert new[1:3] == base[1:3]  # blocked: class efficiencies, the plain keys do not leak
    same = conv_times(replace(b, op_efficiency={"Conv": 1e-3, "GroupedConv": 1e-3}))
    assert (same[0], same[3]) == pytest.approx((new[0], new[3] / 10))  # GroupedConv prices the grouped one
