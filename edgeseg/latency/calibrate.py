"""`edgeseg simulate --calibrate`: measure the host with ONNX Runtime (1 thread) and write its profile.

Small single-op probe graphs are timed with `profile_model`: a big 1x1 conv gives the peak GFLOP/s, a big
Add the bandwidth, a tiny Add the per-kernel cost; then the efficiencies are fitted on all probes with
the same coordinate search as the device fit (fit.py). Ops that ONNX Runtime runs at a speed no op class
shares (OWN_OPS: PRelu, Elu, DepthToSpace, the NCHWc reorders, Resize in NCHWc, convs left in the plain
layout) get their own efficiency, each fitted on its own probe. The NCHWc block is read from ONNX Runtime (a ReorderInput pads
channels to it). The registry models are not among the probes, so the host self-check (bench
latency-host) is a real test of the model.
"""
from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path

from edgeseg.io import read_toml
from edgeseg.latency.device import Backend, calibrated_host_path, load_device, parse_profile
from edgeseg.latency.fit import fit_backend, log_residuals
from edgeseg.latency.fusion import fuse
from edgeseg.latency.graph import load_graph

NCHWC = "com.microsoft.nchwc"  # ONNX Runtime's contrib domain of the NCHWc layout ops
# ops priced by their own efficiency (fitted on the probe named here), not by their op class's
OWN_OPS = {"PRelu": "prelu", "Elu": "elu", "DepthToSpace": "depth_to_space", "ReorderInput": "reorder_input",
           "ReorderOutput": "reorder_output", "NchwcResize": "resize_nchwc",
           "Conv": "conv_plain", "GroupedConv": "grouped_conv"}  # Conv/GroupedConv: convs ORT leaves plain (layout.py)
# name -> (op, input NCHW, attrs, weight shape or None)
PROBES = {
    "conv1x1": ("Conv", (1, 128, 28, 28), {"kernel_shape": [1, 1]}, (256, 128, 1, 1)),
    "conv3x3": ("Conv", (1, 64, 56, 56), {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]}, (64, 64, 3, 3)),
    "conv3x3_small": ("Conv", (1, 16, 28, 24), {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]}, (16, 16, 3, 3)),
    "conv3x3_s2": ("Conv", (1, 32, 56, 48), {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1] * 4},
                   (64, 32, 3, 3)),
    "depthwise": ("Conv", (1, 128, 56, 56), {"kernel_shape": [3, 3], "pads": [1] * 4, "group": 128},
                  (128, 1, 3, 3)),
    "deconv2x2": ("ConvTranspose", (1, 64, 28, 24), {"kernel_shape": [2, 2], "strides": [2, 2]}, (64, 32, 2, 2)),
    "conv1x1_small": ("Conv", (1, 32, 28, 24), {"kernel_shape": [1, 1]}, (32, 32, 1, 1)),
    "depthwise_small": ("Conv", (1, 64, 28, 24), {"kernel_shape": [3, 3], "pads": [1] * 4, "group": 64},
                        (64, 1, 3, 3)),
    "conv_plain": ("Conv", (1, 18, 40, 40), {"kernel_shape": [3, 3], "pads": [1] * 4}, (32, 18, 3, 3)),  # Cin % 4
    "conv1x1_plain": ("Conv", (1, 66, 28, 24), {"kernel_shape": [1, 1]}, (32, 66, 1, 1)),
    "grouped_conv": ("Conv", (1, 6, 96, 96), {"kernel_shape": [3, 3], "pads": [1] * 4, "group": 6}, (6, 1, 3, 3)),
    "grouped_conv_1x1": ("Conv", (1, 6, 64, 64), {"kernel_shape": [1, 1], "group": 6}, (24, 1, 1, 1)),
    "prelu": ("PRelu", (1, 32, 56, 48), {}, (32, 1, 1)),
    "prelu_large": ("PRelu", (1, 32, 112, 48), {}, (32, 1, 1)),  # sign branches: a large input is
    "prelu_small": ("PRelu", (1, 64, 28, 24), {}, (64, 1, 1)),  # mispredicted, a small one learnt (1-5 ns/el)
    "depth_to_space": ("DepthToSpace", (1, 16, 64, 64), {"blocksize": 2}, None),
    "sigmoid": ("Sigmoid", (1, 32, 56, 48), {}, None),
    "reorder_input": ("ReorderInput", (1, 32, 56, 48), {"domain": NCHWC}, None),
    "reorder_output": ("ReorderOutput", (1, 32, 56, 48), {"domain": NCHWC, "channels": 32}, None),
    "gemm": ("MatMul", (1, 1, 256, 512), {}, (512, 512)),
    "add": ("Add", (1, 64, 112, 112), {}, "same"),
    "add_tiny": ("Add", (1, 8), {}, "same"),
    "concat": ("Concat", (1, 64, 56, 56), {"axis": 1}, "same"),
    "elu": ("Elu", (1, 32, 112, 96), {}, None),
    "maxpool": ("MaxPool", (1, 64, 56, 56), {"kernel_shape": [2, 2], "strides": [2, 2]}, None),
    "resize": ("Resize", (1, 16, 56, 48), {"mode": "linear"}, "scales"),
    "resize_nchwc": ("Resize", (1, 32, 28, 24), {"mode": "linear", "after_conv": True}, "scales"),
    "resize_nchwc_large": ("Resize", (1, 16, 64, 64), {"mode": "linear", "after_conv": True}, "scales"),  # > L2
}


def probe_model(op, shape, attrs, weight):
    """A one-node ONNX model with random weights (ONNX Runtime runs it); attrs `after_conv`: behind a 1x1 conv."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    inputs, inits = [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))], []
    names = ["x"]
    if weight == "same":
        inputs.append(helper.make_tensor_value_info("y", TensorProto.FLOAT, list(shape)))
        names.append("y")
    elif weight == "scales":
        inits.append(numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales"))
        names += ["", "scales"]
    elif weight is not None:
        inits.append(numpy_helper.from_array(rng.standard_normal(weight).astype(np.float32) * 0.1, "w"))
        names.append("w")
    attrs, nodes = dict(attrs), []
    if attrs.pop("after_conv", False):  # a 1x1 conv first, so that the op runs in the conv's (blocked) layout
        inits.append(numpy_helper.from_array(rng.standard_normal((shape[1], shape[1], 1, 1)).astype(np.float32), "w0"))
        nodes.append(helper.make_node("Conv", ["x", "w0"], ["h"]))
        names[0] = "h"
    nodes.append(helper.make_node(op, names, ["out"], **attrs))
    graph = helper.make_graph(nodes, op, inputs, [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)],
                              inits)
    domains = [helper.make_opsetid(attrs["domain"], 1)] if "domain" in attrs else []
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)] + domains)


def nchwc_block() -> int | None:
    """Channels per NCHWc block in this ONNX Runtime build (a ReorderInput pads 4 channels up to it); None
    when it has no NCHWc kernels."""
    import numpy as np
    import onnxruntime as ort

    try:
        sess = ort.InferenceSession(probe_model("ReorderInput", (1, 4, 1, 1), {"domain": NCHWC}, None)
                                    .SerializeToString(), providers=["CPUExecutionProvider"])
        return int(sess.run(None, {"x": np.zeros((1, 4, 1, 1), np.float32)})[0].shape[1])
    except Exception:  # ORT raises its own types: no NCHWc layout on this build / CPU
        return None


def measure_probes(runs: int = 30, nchwc: bool = True) -> dict:
    """name -> (fused graph, fastest measured ms) on this machine, 1 thread (reorder probes only with `nchwc`)."""
    import onnx

    from edgeseg.latency.profile import profile_model

    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, spec in PROBES.items():
            if not nchwc and spec[2].get("domain") == NCHWC:
                continue
            model = probe_model(*spec)
            path = Path(tmp) / f"{name}.onnx"
            onnx.save(model, str(path))
            r = profile_model(path, runs=runs, warmup=3, threads=1, op_runs=0)
            out[name] = (fuse(load_graph(model)), r.min_ms)  # fastest run: least disturbed by other load
    return out


def calibrate(runs: int = 30, out_path: Path | None = None) -> tuple[Path, dict]:
    """Measure, fit and write the host profile; returns its path and the per-probe errors (%)."""
    import math

    base = load_device(str(Path(__file__).with_name("devices") / "host.toml"))
    block = nchwc_block()
    probes = measure_probes(runs, nchwc=block is not None)
    launch_ms = probes["add_tiny"][1]
    fg, ms = probes["conv1x1"]
    peak = sum(k.cost.flops for k in fg.kernels) / ((ms - launch_ms) * 1e-3) / 1e9
    fg, ms = probes["add"]
    bw = sum((k.cost.read + k.cost.written) * 4 for k in fg.kernels) / ((ms - launch_ms) * 1e-3) / 1e9
    b = base.backend("ort-cpu")
    prec = {**b.precisions, "fp32": replace(b.precisions["fp32"], peak_gflops=round(peak, 2)),
            "int8": replace(b.precisions["int8"], peak_gflops=round(2 * peak, 2))}
    start = replace(b.efficiency, launch_us=max(1.0, launch_ms * 1e3), memory=1.0, conv=1.0, saturation=100.0)
    own = {op: 0.005 for op, probe in OWN_OPS.items() if probe in probes}  # compute-bound start: max() is flat above
    b = Backend(b.name, b.processor, round(bw, 2), prec, start, "", b.fused_activations, block is not None, own,
                block or 8)
    profile = replace(base, backends={"ort-cpu": b})
    items = [(fg, "fp32", ms) for fg, ms in probes.values()]
    fitted = fit_backend(profile, "ort-cpu", items, bounds={
        "conv3x3": (0.05, 2.25), "conv": (0.05, 2.0), "depthwise": (0.005, 4.0), "gemm": (0.05, 2.0),
        "activation": (0.001, 1.0), "resize": (0.001, 1.0), "other": (0.001, 1.0), "memory": (0.1, 1.5),
        "concat": (0.1, 1.5), "launch_us": (0.5, 200.0), "saturation": (10.0, 1e6),
        **{f"op:{op}": (0.0005, 2.0) for op in own}})
    errors = {n: 100 * (math.exp(r) - 1) for n, r in zip(probes, log_residuals(items, profile, fitted))}
    path = Path(out_path) if out_path else calibrated_host_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_host(fitted))
    parse_profile(read_toml(path, "device profile"), path)  # the file we wrote must load
    return path, errors


ORT_CPU_FUSED = '["Relu", "Clip", "LeakyRelu", "Sigmoid", "Tanh", "HardSigmoid"]'


def render_host(b: Backend) -> str:
    import datetime
    import platform

    e = b.efficiency
    eff = "\n".join(f"{k} = {getattr(e, k):.6g}" for k in e.__dataclass_fields__)
    own = "\n".join(f"{k} = {v:.6g}" for k, v in b.op_efficiency.items())
    return f"""# This machine, measured by `edgeseg simulate --calibrate` on {datetime.date.today().isoformat()}.
name = "host"
title = "this machine ({platform.machine()}, calibrated, 1 ONNX Runtime thread)"
memory_gb = 8.0
default_backend = "ort-cpu"

[sources]
all = "edgeseg simulate --calibrate: ONNX Runtime probes (1x1 conv -> peak, Add -> bandwidth, tiny Add -> launch)"

[backends.ort-cpu]
processor = "{platform.processor() or platform.machine()}, ONNX Runtime CPU, 1 thread"
bandwidth_gbs = {b.bandwidth_gbs}
fused_activations = {ORT_CPU_FUSED}
layout_reorders = {str(b.layout_reorders).lower()}
nchwc_block = {b.nchwc_block}

[backends.ort-cpu.precisions]
fp32 = {{ peak_gflops = {b.precisions['fp32'].peak_gflops} }}
fp16 = {{ runs_as = "fp32", note = "ONNX Runtime CPU runs FP16 models through FP32 kernels for most ops" }}
int8 = {{ peak_gflops = {b.precisions['int8'].peak_gflops}, note = "assumed 2x FP32; not measured" }}

[backends.ort-cpu.efficiency]
source = "fitted on ONNX Runtime probes by edgeseg simulate --calibrate"
{eff}

[backends.ort-cpu.op_efficiency]  # ops priced by their own probe's efficiency, not their op class's
{own}
"""
