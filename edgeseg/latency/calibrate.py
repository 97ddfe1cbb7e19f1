"""`edgeseg simulate --calibrate`: measure the host with ONNX Runtime (1 thread) and write its profile.

Small single-op probe graphs are timed by edgeseg.ort's interleaved medians (thread-CPU time, several rounds):
a big 1x1 conv gives the peak GFLOP/s, a big Add the bandwidth, a tiny Add and a chain of 32 tiny Adds the
per-inference and per-kernel costs; then the efficiencies are fitted on all probes with the same coordinate
search as the device fit (fit.py). Ops that ONNX Runtime runs at a speed no op class shares (OWN_OPS: PRelu,
Elu, DepthToSpace, the NCHWc reorders, Resize in NCHWc, convs left in the plain layout) get their own
efficiency, each fitted on its own probe; PRelu's probes have the registry's sizes and conv-like inputs
(PROBE_INPUTS). The NCHWc block is read from ONNX Runtime (a ReorderInput pads channels to it). The registry
models are not among the probes, so the host self-check (bench latency-host) is a real test of the model.
"""
from __future__ import annotations

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
    "depthwise_s2": ("Conv", (1, 144, 28, 24), {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1] * 4,
                                                "group": 144}, (144, 1, 3, 3)),  # the registry's strided and
    "depthwise_dilated": ("Conv", (1, 256, 14, 12), {"kernel_shape": [3, 3], "dilations": [2, 2], "pads": [2] * 4,
                                                     "group": 256}, (256, 1, 3, 3)),  # dilated depthwise convs
    "conv_plain": ("Conv", (1, 18, 40, 40), {"kernel_shape": [3, 3], "pads": [1] * 4}, (32, 18, 3, 3)),  # Cin % 4
    "conv1x1_plain": ("Conv", (1, 66, 28, 24), {"kernel_shape": [1, 1]}, (32, 66, 1, 1)),
    "grouped_conv": ("Conv", (1, 6, 96, 96), {"kernel_shape": [3, 3], "pads": [1] * 4, "group": 6}, (6, 1, 3, 3)),
    "grouped_conv_1x1": ("Conv", (1, 6, 64, 64), {"kernel_shape": [1, 1], "group": 6}, (24, 1, 1, 1)),
    "prelu": ("PRelu", (1, 128, 14, 12), {}, (128, 1, 1)),  # the registry's PRelu sizes (5k-43k elements),
    "prelu_large": ("PRelu", (1, 64, 28, 24), {}, (64, 1, 1)),  # per-channel slopes, fed conv-like inputs
    "prelu_small": ("PRelu", (1, 32, 14, 12), {}, (32, 1, 1)),  # (PROBE_INPUTS: its cost depends on the signs)
    "depth_to_space": ("DepthToSpace", (1, 16, 64, 64), {"blocksize": 2}, None),
    "sigmoid": ("Sigmoid", (1, 32, 56, 48), {}, None),
    "reorder_input": ("ReorderInput", (1, 32, 56, 48), {"domain": NCHWC}, None),
    "reorder_output": ("ReorderOutput", (1, 32, 56, 48), {"domain": NCHWC, "channels": 32}, None),
    "gemm": ("MatMul", (1, 1, 256, 512), {}, (512, 512)),
    "add": ("Add", (1, 64, 112, 112), {}, "same"),
    "add_tiny": ("Add", (1, 8), {}, "same"),  # one run of a one-node graph: per-inference + per-kernel cost
    "add_tiny_chain": ("Add", (1, 8), {"chain": 32}, "same"),  # 32 nodes: the per-kernel cost is the slope
    "concat": ("Concat", (1, 64, 56, 56), {"axis": 1}, "same"),
    "elu": ("Elu", (1, 32, 112, 96), {}, None),
    "maxpool": ("MaxPool", (1, 64, 56, 56), {"kernel_shape": [2, 2], "strides": [2, 2]}, None),
    "resize": ("Resize", (1, 16, 56, 48), {"mode": "linear"}, "scales"),
    "resize_nchwc": ("Resize", (1, 32, 28, 24), {"mode": "linear", "after_conv": True}, "scales"),
    "resize_nchwc_large": ("Resize", (1, 16, 64, 64), {"mode": "linear", "after_conv": True}, "scales"),  # > L2
}
# probe -> input kind (INPUTS), default "normal". PRelu branches on the sign of each element (1 ns/el when the
# branch predictor guesses right, ~10 ns more per miss): in a model its input is a conv's output, whose sign flips
# less often than iid noise's, and the predictor cannot learn it (the rest of the network runs in between).
PROBE_INPUTS = {"prelu": "conv_output", "prelu_large": "conv_output", "prelu_small": "conv_output"}
ROUNDS = 10  # probe rounds per calibration (measure_probes)
VARIANTS = 64  # distinct inputs cycled for a conv_output probe: with fewer the branch predictor learns the small one


def conv_output(shape, rng):
    """iid normal through a 3x3 box filter (edge-padded): the output of a 3x3 conv over uncorrelated data, whose
    neighbours correlate 2/3 (sign flips on ~27 % of neighbour pairs, iid noise 50 %)."""
    import numpy as np

    x = rng.standard_normal(shape).astype(np.float32)
    h, w = shape[-2:]
    p = np.pad(x, [(0, 0)] * (len(shape) - 2) + [(1, 1), (1, 1)], mode="edge")
    return sum(p[..., i:i + h, j:j + w] for i in range(3) for j in range(3)) / np.float32(3.0)


INPUTS = {"normal": lambda shape, rng: rng.standard_normal(shape).astype("float32"), "conv_output": conv_output}


def probe_feeds(name: str, model) -> list[dict]:
    """The probe's input feeds (seeded): one for the default kind, VARIANTS distinct ones for conv_output."""
    import numpy as np

    kind = PROBE_INPUTS.get(name, "normal")
    rng = np.random.default_rng(0)
    shapes = {i.name: tuple(d.dim_value for d in i.type.tensor_type.shape.dim) for i in model.graph.input}
    return [{n: INPUTS[kind](s, rng) for n, s in shapes.items()} for _ in range(VARIANTS if kind != "normal" else 1)]


def probe_model(op, shape, attrs, weight):
    """A one-node ONNX model with random weights (ONNX Runtime runs it); attrs `after_conv`: behind a 1x1 conv,
    `chain`: that many nodes of the op one after another (each reads the previous output and the same weight)."""
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
    chain = attrs.pop("chain", 1)
    if attrs.pop("after_conv", False):  # a 1x1 conv first, so that the op runs in the conv's (blocked) layout
        inits.append(numpy_helper.from_array(rng.standard_normal((shape[1], shape[1], 1, 1)).astype(np.float32), "w0"))
        nodes.append(helper.make_node("Conv", ["x", "w0"], ["h"]))
        names[0] = "h"
    for i in range(chain):
        nodes.append(helper.make_node(op, [names[0] if i == 0 else f"c{i}"] + names[1:],
                                      ["out" if i == chain - 1 else f"c{i + 1}"], **attrs))
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


def measure_probes(runs: int = 100, nchwc: bool = True, rounds: int = ROUNDS, between=None) -> dict:
    """name -> (fused graph, ms) on this machine, 1 thread (reorder probes only with `nchwc`). Each probe is timed
    on its own (after other probes a tiny one would run cache-cold, as no kernel of a model does), its input
    variants in turn, by edgeseg.ort.interleaved_medians, in `rounds` rounds over all probes so that a burst of
    load reaches all of them alike; ms = the median over rounds of the median thread-CPU time (other processes'
    time does not count) of the variants. `between()` is called after each round (the host self-check times its
    models there, so that probes and models see the same load)."""
    import statistics

    from edgeseg.ort import cpu_session, interleaved_medians

    probes = {}
    for name, spec in PROBES.items():
        if not nchwc and spec[2].get("domain") == NCHWC:
            continue
        model = probe_model(*spec)
        probes[name] = (fuse(load_graph(model)), cpu_session(model.SerializeToString(), 1),
                        dict(enumerate(probe_feeds(name, model))))
    per_round = {name: [] for name in probes}
    for _ in range(max(1, rounds)):
        for name, (_, sess, feeds) in probes.items():
            _, cpu = interleaved_medians({i: sess for i in feeds}, feeds, max(3, runs // max(1, rounds)))
            per_round[name].append(statistics.median(cpu.values()))
        if between:
            between()
    return {name: (fg, statistics.median(per_round[name])) for name, (fg, _, _) in probes.items()}


def calibrate(runs: int = 100, out_path: Path | None = None, between=None) -> tuple[Path, dict]:
    """Measure, fit and write the host profile; returns its path and the per-probe errors (%). `between`: see
    measure_probes."""
    import math

    base = load_device(str(Path(__file__).with_name("devices") / "host.toml"))
    block = nchwc_block()
    probes = measure_probes(runs, nchwc=block is not None, between=between)
    launch_ms = probes["add_tiny"][1]
    fg, ms = probes["conv1x1"]
    peak = sum(k.cost.flops for k in fg.kernels) / ((ms - launch_ms) * 1e-3) / 1e9
    fg, ms = probes["add"]
    bw = sum((k.cost.read + k.cost.written) * 4 for k in fg.kernels) / ((ms - launch_ms) * 1e-3) / 1e9
    b = base.backend("ort-cpu")
    prec = {**b.precisions, "fp32": replace(b.precisions["fp32"], peak_gflops=round(peak, 2)),
            "int8": replace(b.precisions["int8"], peak_gflops=round(2 * peak, 2))}
    per_kernel_ms = (probes["add_tiny_chain"][1] - launch_ms) / (PROBES["add_tiny_chain"][2]["chain"] - 1)
    start = replace(b.efficiency, launch_us=max(0.05, per_kernel_ms * 1e3), memory=1.0, conv=1.0, saturation=100.0,
                    inference_us=max(1.0, (launch_ms - per_kernel_ms) * 1e3))  # > 0: the search multiplies
    own = {op: 0.005 for op, probe in OWN_OPS.items() if probe in probes}  # compute-bound start: max() is flat above
    b = Backend(b.name, b.processor, round(bw, 2), prec, start, "", b.fused_activations, block is not None, own,
                block or 8)
    profile = replace(base, backends={"ort-cpu": b})
    items = [(fg, "fp32", ms) for fg, ms in probes.values()]
    fitted = fit_backend(profile, "ort-cpu", items, bounds={
        "conv3x3": (0.05, 2.25), "conv": (0.05, 2.0), "depthwise": (0.005, 4.0), "gemm": (0.05, 2.0),
        "activation": (0.001, 1.0), "resize": (0.001, 1.0), "other": (0.001, 1.0), "memory": (0.1, 1.5),
        "concat": (0.1, 1.5), "launch_us": (0.05, 200.0), "saturation": (10.0, 1e6),
        "inference_us": (0.0, 200.0),
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
