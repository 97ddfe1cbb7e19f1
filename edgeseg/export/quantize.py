"""INT8 post-training quantization with ONNX Runtime: quant_pre_process, then static QDQ, per-channel weights.

Calibration uses real low-resolution slices from the training split (never the test split). The method is
chosen by name; named nodes (globs allowed, e.g. "/sr_head/*") and convs with fewer than `float_below_channels`
input channels are kept in float; `also_quantize` adds op types to ONNX Runtime's default set (e.g.
DepthToSpace, which ORT then runs on uint8 without the Q/DQ pair) and `float_op_types` takes some out (e.g.
Concat: float, no QLinearConcat). ORT's default set is its QLinearOps and QDQ registries together.
"""
from __future__ import annotations

import dataclasses
import fnmatch
from pathlib import Path

import numpy as np

from edgeseg.errors import EdgesegError


def calibration_slices(lowres: np.ndarray, count: int) -> np.ndarray:
    """`count` evenly spaced slices of a (N, h, w) stack -> (count, 1, h, w) float32."""
    idx = np.unique(np.linspace(0, len(lowres) - 1, num=min(count, len(lowres))).round().astype(int))
    return np.ascontiguousarray(lowres[idx, None], dtype=np.float32)


def calibration_reader(inputs: np.ndarray, input_name: str):
    """An ORT CalibrationDataReader yielding one (1, 1, h, w) slice at a time; rewindable."""
    from onnxruntime.quantization import CalibrationDataReader

    class SliceReader(CalibrationDataReader):
        def __init__(self):
            self.position = 0

        def get_next(self):
            if self.position >= len(inputs):
                return None
            self.position += 1
            return {input_name: inputs[self.position - 1 : self.position]}

        def rewind(self):
            self.position = 0

        def __len__(self):
            return len(inputs)

    return SliceReader()


def _methods():
    from onnxruntime.quantization import CalibrationMethod

    return {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy, "percentile": CalibrationMethod.Percentile}


def resolve_nodes(model, patterns) -> list[str]:
    """Node names matching any name or glob; a pattern that matches nothing is an error (typo guard)."""
    names = [n.name for n in model.graph.node]
    out = []
    for pattern in patterns:
        hits = [n for n in names if fnmatch.fnmatchcase(n, pattern)]
        if not hits:
            convs = ", ".join(n for n in names if "Conv" in n)[:300]
            raise EdgesegError(f"keep_float: '{pattern}' matches no node (conv nodes: {convs})")
        out.extend(h for h in hits if h not in out)
    return out


def narrow_convs(model, below: int, both: int = 0) -> list[str]:
    """Conv / ConvTranspose nodes with fewer than `below` input channels, or fewer than `both` input and fewer
    than `both` output channels (0: none).

    On ONNX Runtime's CPU kernels such a conv gains nothing from INT8 (a reduction depth of a few values per
    output: the first conv of a 1-channel image and the SR head's per-class convs are 2-7x slower as
    QLinearConv than in float, `edgeseg bench int8-cpu`), so it is kept float. Depthwise convs of wide layers
    are not narrow: keeping them float would cut the int8 graph into islands (slower, same benchmark)."""
    if below <= 0 and both <= 0:
        return []
    import onnx

    inits = {i.name: i for i in model.graph.initializer}
    out = []
    for n in model.graph.node:
        if n.op_type not in ("Conv", "ConvTranspose") or len(n.input) < 2 or n.input[1] not in inits:
            continue
        dims = list(inits[n.input[1]].dims)
        group = next((onnx.helper.get_attribute_value(a) for a in n.attribute if a.name == "group"), 1)
        channels = dims[1] * group if n.op_type == "Conv" else dims[0]
        outputs = dims[0] if n.op_type == "Conv" else dims[1] * group
        if channels < below or (channels < both and outputs < both):
            out.append(n.name)
    return out


def quantized_op_types(also: tuple[str, ...] = (), without: tuple[str, ...] = ()) -> list[str]:
    """The op types quantize_static quantizes: ORT's own default (its QLinearOps and QDQ registries, what it
    uses when given none) plus `also`, minus `without`."""
    from onnxruntime.quantization.registry import QDQRegistry, QLinearOpsRegistry

    from edgeseg.errors import EdgesegError, nearest_key

    default = sorted(set(QLinearOpsRegistry) | set(QDQRegistry))
    for t in without:  # a misspelt type would otherwise leave everything quantized without a word
        if t not in default:
            raise EdgesegError(f"[quantize] float_op_types: '{t}' is not an op type ONNX Runtime quantizes"
                               f"{nearest_key(t, default)}")
    return [t for t in default + [t for t in also if t not in default] if t not in set(without)]


def quantize_int8(src: str | Path, dst: str | Path, calib: np.ndarray, config, work_dir: str | Path) -> dict:
    """src: simplified FP32 ONNX with the contract; dst: INT8 QDQ ONNX; config: recipe.QuantizeConfig."""
    import onnx
    from onnxruntime.quantization import QuantFormat, QuantType, quant_pre_process, quantize_static

    from edgeseg.contract import ModelContract
    from edgeseg.export.to_onnx import set_metadata
    from edgeseg.export.validate import save_checked

    work_dir = Path(work_dir)
    prepared = work_dir / "int8-prepared.onnx"
    quant_pre_process(str(src), str(prepared), skip_optimization=False)
    prepared_model = onnx.load(str(prepared))
    excluded = resolve_nodes(prepared_model, config.keep_float)
    narrow = narrow_convs(prepared_model, config.float_below_channels, config.float_below_both)
    excluded += [n for n in narrow if n not in excluded]
    contract = ModelContract.from_metadata({p.key: p.value for p in onnx.load(str(src)).metadata_props}, str(src))
    symmetric = config.activation_type == "int8"
    extra = {"ActivationSymmetric": symmetric, "WeightSymmetric": True}
    if config.method == "percentile":
        extra["CalibPercentile"] = config.percentile
    op_types = None  # ORT's default set
    if config.also_quantize or config.float_op_types:
        op_types = quantized_op_types(config.also_quantize, config.float_op_types)
    full = work_dir / "int8-full-names.onnx"  # kept for the per-layer error report (ORT matches tensors by name)
    quantize_static(
        str(prepared), str(full), calibration_reader(calib, contract.input_name),
        quant_format=QuantFormat.QOperator if config.format == "qoperator" else QuantFormat.QDQ, per_channel=config.per_channel,
        activation_type=QuantType.QInt8 if symmetric else QuantType.QUInt8, weight_type=QuantType.QInt8,
        calibrate_method=_methods()[config.method], nodes_to_exclude=excluded, extra_options=extra,
        op_types_to_quantize=op_types,
    )
    model = onnx.load(str(full))
    if config.compact_names:
        compact_names(model)
    set_metadata(model, dataclasses.replace(contract, precision="int8"))
    save_checked(model, dst)  # also drops the ai.onnx.ml / com.microsoft.* imports the quantizer leaves behind
    info = {"method": config.method, "calibration_slices": int(len(calib)), "per_channel": config.per_channel,
            "activation_type": config.activation_type, "weight_type": "int8", "kept_float": excluded,
            "format": config.format.upper(), "compact_names": config.compact_names, "float_below_channels": config.float_below_channels}
    if config.float_below_both:
        info["float_below_both"] = config.float_below_both
    if config.also_quantize:
        info["also_quantize"] = list(config.also_quantize)
    if config.float_op_types:
        info["float_op_types"] = list(config.float_op_types)
    return info


QDQ_SUFFIXES = (("_QuantizeLinear_Output", "_q"), ("_DequantizeLinear_Output", "_dq"), ("_QuantizeLinear", "_Q"),
                ("_DequantizeLinear", "_DQ"), ("_quantized", "_i8"), ("_zero_point", "_zp"), ("_scale", "_s"))


def short_node_name(name: str) -> str:
    """'/backbone/dec.2/dec.2.1/dec.2.1.0/Conv_QuantizeLinear' -> '/backbone/dec.2.1.0/Conv_Q' (still names the module)."""
    for long, short in QDQ_SUFFIXES:
        name = name.replace(long, short)
    parts = name.split("/")
    if len(parts) > 4 and parts[0] == "":
        name = "/".join(["", parts[1]] + parts[-2:])
    return name


def compact_names(model) -> None:
    """Internal tensor names -> t0, t1, ...; node names shortened but kept readable; graph IO untouched.

    A QDQ graph of a small model is mostly names (each tensor name appears in several places); on the
    122k-parameter default model this takes the INT8 file from ~0.37 to ~0.30 of the FP32 one.
    """
    keep = {v.name for v in model.graph.input} | {v.name for v in model.graph.output}
    ids: dict[str, str] = {}

    def rename(name: str) -> str:
        return name if not name or name in keep else ids.setdefault(name, f"t{len(ids)}")

    nodes = model.graph.node
    short = [short_node_name(n.name) for n in nodes]
    unique = len(set(short)) == len(short)
    for node, name in zip(nodes, short):
        node.input[:] = [rename(x) for x in node.input]
        node.output[:] = [rename(x) for x in node.output]
        if unique:
            node.name = name
    for init in model.graph.initializer:
        init.name = rename(init.name)
    for info in model.graph.value_info:
        info.name = rename(info.name)


def per_layer_error(float_path: str | Path, qdq_path: str | Path, inputs: np.ndarray, work_dir: str | Path, worst: int = 8) -> dict:
    """ORT's QDQ debugging helpers: SQNR (dB, higher is better) of every activation, worst first."""
    from onnxruntime.quantization import qdq_loss_debug as dbg

    from edgeseg.export.simplify import ort_session

    work_dir = Path(work_dir)
    prepared = work_dir / "int8-prepared.onnx"  # quant_pre_process output: same tensor names as the QDQ model
    float_path = prepared if prepared.is_file() else Path(float_path)
    if (work_dir / "int8-full-names.onnx").is_file():
        qdq_path = work_dir / "int8-full-names.onnx"
    name = ort_session(float_path).get_inputs()[0].name
    aug_float, aug_qdq = work_dir / "debug-float.onnx", work_dir / "debug-qdq.onnx"
    dbg.modify_model_output_intermediate_tensors(str(float_path), str(aug_float))
    dbg.modify_model_output_intermediate_tensors(str(qdq_path), str(aug_qdq))
    float_act = dbg.collect_activations(str(aug_float), calibration_reader(inputs, name))
    qdq_act = dbg.collect_activations(str(aug_qdq), calibration_reader(inputs, name))
    act_err = dbg.compute_activation_error(dbg.create_activation_matching(qdq_act, float_act))
    acts = sorted(((k, float(v["xmodel_err"]), float(v["qdq_err"])) for k, v in act_err.items() if "xmodel_err" in v),
                  key=lambda t: t[1])
    return {
        "metric": "SQNR in dB (higher is better)",
        "worst_activations": [{"tensor": k, "sqnr_vs_float_model": x, "sqnr_qdq": q} for k, x, q in acts[:worst]],
        # sqnr_vs_float_model: this tensor in the INT8 model vs the float model (error accumulated up to here);
        # sqnr_qdq: the tensor vs its own quantize-dequantize (error added by this tensor's quantization alone)
    }
