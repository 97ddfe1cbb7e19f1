"""Host calibration probes (calibrate.py): conv-like PRelu inputs, the per-kernel vs per-inference split, the
padded side of NCHWc reorders (layout.py) and the probe timing loop. No timing is asserted."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from onnx import helper

from latency_helpers import model
from edgeseg.latency import calibrate
from edgeseg.latency.device import load_device
from edgeseg.latency.fusion import fuse
from edgeseg.latency.graph import load_graph
from edgeseg.latency.layout import reorder_times


def _flip_rate(x: np.ndarray) -> float:
    s = np.sign(x.reshape(-1, x.shape[-1]))
    return float((s[:, 1:] != s[:, :-1]).mean())


def test_prelu_probes_get_conv_like_inputs_that_vary():
    for name in ("prelu", "prelu_small", "prelu_large"):
        m = calibrate.probe_model(*calibrate.PROBES[name])
        feeds = calibrate.probe_feeds(name, m)
        assert len(feeds) == calibrate.VARIANTS
        assert all(f["x"].shape == calibrate.PROBES[name][1] and f["x"].dtype == np.float32 for f in feeds)
        assert not np.array_equal(feeds[0]["x"], feeds[1]["x"])  # distinct: the branch predictor cannot learn one
        # a 3x3 box over iid noise: neighbours correlate 2/3, signs flip on arccos(2/3)/pi = 26.8 % of pairs
        assert _flip_rate(feeds[0]["x"]) == pytest.approx(np.arccos(2 / 3) / np.pi, abs=0.02)
    iid = calibrate.probe_feeds("sigmoid", calibrate.probe_model(*calibrate.PROBES["sigmoid"]))
    assert len(iid) == 1 and _flip_rate(iid[0]["x"]) == pytest.approx(0.5, abs=0.02)
    m = calibrate.probe_model(*calibrate.PROBES["prelu"])
    assert np.array_equal(calibrate.probe_feeds("prelu", m)[3]["x"], calibrate.probe_feeds("prelu", m)[3]["x"])


def test_prelu_probes_span_the_registry_sizes():
    sizes = sorted(int(np.prod(calibrate.PROBES[n][1])) for n in ("prelu", "prelu_small", "prelu_large"))
    assert sizes[0] <= 5376 and sizes[-1] >= 43008  # ENet's smallest and largest PRelu inputs


def test_tiny_add_chain_separates_per_kernel_from_per_inference_cost():
    chain = fuse(load_graph(calibrate.probe_model(*calibrate.PROBES["add_tiny_chain"])))
    one = fuse(load_graph(calibrate.probe_model(*calibrate.PROBES["add_tiny"])))
    assert len(chain.kernels) == calibrate.PROBES["add_tiny_chain"][2]["chain"] == 32 and len(one.kernels) == 1
    from edgeseg.latency.fit import fit_backend, param, predict_ms

    profile = load_device("host")
    b = profile.backend("ort-cpu")
    truth = replace(b, efficiency=replace(b.efficiency, launch_us=0.4, inference_us=7.0))
    prec, _ = profile.precision("ort-cpu", "fp32")
    items = [(fg, "fp32", predict_ms(fg, truth, prec)) for fg in (one, chain)]
    start = replace(profile, backends={"ort-cpu": replace(b, efficiency=replace(b.efficiency, launch_us=5.0,
                                                                                 inference_us=1.0))})
    fitted = fit_backend(start, "ort-cpu", items, bounds={"launch_us": (0.05, 200.0), "inference_us": (0.0, 200.0)})
    assert param(fitted, "launch_us") == pytest.approx(0.4, rel=0.02)
    assert param(fitted, "inference_us") == pytest.approx(7.0, rel=0.02)


def test_reorder_moves_the_padded_blocked_tensor():
    w = {"w": np.zeros((3, 4, 3, 3), np.float32)}
    fg = fuse(load_graph(model([helper.make_node("Conv", ["x", "w"], ["y"], pads=[1] * 4)], {"x": [1, 4, 8, 8]}, w)))
    b = replace(load_device("host").backend("ort-cpu"), nchwc_block=16)
    prec = b.precisions["fp32"]
    (out,) = [t for t in reorder_times(fg, b, prec) if t.ops == ("ReorderOutput",)]
    assert out.bytes == (3 + 16) * 64 * 4  # the 3 plain channels written, the 16 blocked ones read
    assert out.flops == 16 * 64


def test_measure_probes_rounds_call_between(monkeypatch):
    monkeypatch.setattr(calibrate, "PROBES", {k: calibrate.PROBES[k] for k in ("add_tiny", "prelu_small")})
    calls = []
    out = calibrate.measure_probes(runs=6, rounds=2, between=lambda: calls.append(1))
    assert len(calls) == 2 and set(out) == {"add_tiny", "prelu_small"}
    assert all(ms > 0 and len(fg.kernels) == 1 for fg, ms in out.values())
