"""TensorRT INT8 calibration from the export's own calibration slices: TensorRT's cache file and ONNX Runtime's table.

TensorRT's implicit INT8 mode (an FP32 ONNX + a calibration cache, e.g. `trtexec --onnx=M.fp32-sim.onnx --int8
--calib=M.trt-8502.calib`) needs one scale per network tensor: the network inputs and every layer output. The ONNX
parser names each network tensor after the ONNX tensor it comes from (graph inputs, node outputs), so the cache
keys are those names of the simplified FP32 file. Ranges come from ONNX Runtime's calibrator (`create_calibrator`,
the same min/max pass `quantize_static` runs) over the same slices the INT8 export uses; it collects every float
tensor that is a node input or output (graph inputs, activations, graph outputs; not initializers; tensors computed
from initializers only, e.g. a Constant holding a Resize's scales, are dropped: TensorRT makes them weights). Scale =
max(|min|, |max|) / 127 (symmetric int8, as TensorRT uses it).

Cache text (TensorRT's format): a header `TRT-<version>-<calibrator>` (version as TensorRT encodes it: 8.5.2 ->
8502, 10.3.0 -> 100300; TensorRT ignores a cache whose header does not match its version and calibrator), then
`name: <8 hex digits>`, the IEEE-754 float32 bits of the scale, most significant byte first.

ONNX Runtime's TensorRT execution provider reads its own table instead (`trt_int8_calibration_table_name`, with
`trt_int8_use_native_calibration_table = False`); onnxruntime.quantization's `write_calibration_table` writes it
(calibration.flatbuffers, plus calibration.cache and calibration.json). That helper writes max(lowest, highest)
as the tensor's range; the ranges handed to it here are made symmetric first (-a, a), so the value written is a.
"""
from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from edgeseg.errors import EdgesegError

QMAX = 127.0
ORT_TABLE_DIR = "ort-trt-calibration"  # folder of the export holding write_calibration_table's three files


def tensor_ranges(fp32_path: str | Path, calib: np.ndarray, work_dir: str | Path, method: str = "minmax",
                  percentile: float = 99.999) -> dict:
    """-> {tensor name: (lowest, highest)} over `calib` (N, 1, h, w), from ONNX Runtime's calibrator (the
    method the INT8 export uses; `percentile` for method = "percentile", as quantize_int8 passes it)."""
    from onnxruntime.quantization import create_calibrator

    from edgeseg.export.quantize import _methods, calibration_reader
    from edgeseg.ort import cpu_session

    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    calibrator = create_calibrator(Path(fp32_path), None, augmented_model_path=work_dir / "trt-calib-augmented.onnx",
                                   calibrate_method=_methods()[method],
                                   extra_options={"percentile": percentile} if method == "percentile" else {})
    calibrator.collect_data(calibration_reader(calib, cpu_session(fp32_path).get_inputs()[0].name))
    data = calibrator.compute_data()
    out = {}
    for name, value in data.items():
        lo, hi = value.range_value
        out[name] = (float(np.asarray(lo).min()), float(np.asarray(hi).max()))
    return out


def constant_tensors(model) -> set:
    """Tensors computed from initializers only (Constant outputs, Identity of a weight ...): weights to TensorRT."""
    known = {i.name for i in model.graph.initializer}
    out = set()
    for node in model.graph.node:  # save_checked keeps the nodes topologically sorted
        if all(x in known or not x for x in node.input):
            out.update(node.output)
            known.update(node.output)
    return out


def scale_of(lowest: float, highest: float) -> float:
    """Symmetric int8 scale of a range; an all-zero tensor gets 1.0 (what ORT's quantizer uses for rmin = rmax = 0)."""
    amax = max(abs(lowest), abs(highest))
    return amax / QMAX if amax > 0 else 1.0


def trt_version_code(version: str) -> int:
    """'8.5.2' -> 8502, '10.3.0' -> 100300 (TensorRT's own version integer: 10.x multiplies the major by 10000)."""
    major, minor, patch = (int(p) for p in (version.split(".") + ["0", "0"])[:3])
    return major * (10000 if major >= 10 else 1000) + minor * 100 + patch


def cache_text(ranges: dict, trt_version: str, calibrator: str = "EntropyCalibration2") -> str:
    """TensorRT's calibration cache for `ranges`, names sorted."""
    lines = [f"TRT-{trt_version_code(trt_version)}-{calibrator}"]
    for name in sorted(ranges):
        bits = struct.unpack(">I", struct.pack(">f", scale_of(*ranges[name])))[0]
        lines.append(f"{name}: {bits:08x}")
    return "\n".join(lines) + "\n"


def parse_cache(text: str) -> tuple[str, dict]:
    """-> (header, {name: scale}); a line that is not `name: 8 hex digits` is an error naming it."""
    import re

    lines = text.splitlines()
    if not lines or not re.fullmatch(r"TRT-\d+-\w+", lines[0]):
        raise EdgesegError(f"calibration cache: bad header {lines[0] if lines else ''!r}")
    scales = {}
    for i, line in enumerate(lines[1:], 2):
        m = re.fullmatch(r"(.+): ([0-9a-f]{8})", line)
        if not m:
            raise EdgesegError(f"calibration cache line {i}: {line!r} is not 'name: 8 hex digits'")
        scales[m.group(1)] = struct.unpack(">f", bytes.fromhex(m.group(2)))[0]
    return lines[0], scales


def write_ort_table(ranges: dict, folder: str | Path) -> list[Path]:
    """ONNX Runtime's TensorRT-EP calibration table (its own writer), from symmetric copies of `ranges`."""
    from onnxruntime.quantization import CalibrationMethod, write_calibration_table
    from onnxruntime.quantization.calibrate import TensorsData

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    sym = {k: (np.float32(-scale_of(*v) * QMAX), np.float32(scale_of(*v) * QMAX)) for k, v in ranges.items()}
    write_calibration_table(TensorsData(CalibrationMethod.MinMax, sym), dir=str(folder))
    return [folder / n for n in ("calibration.flatbuffers", "calibration.cache", "calibration.json")]


def write_calibration(fp32_path, calib: np.ndarray, stem: str, out_dir, work_dir, trt_versions, method="minmax",
                      calibrator: str = "EntropyCalibration2", percentile: float = 99.999) -> dict:
    """Write `<stem>.trt-<code>.calib` per TensorRT version and the ORT table folder. -> report dict."""
    import onnx

    out_dir = Path(out_dir)
    ranges = tensor_ranges(fp32_path, calib, work_dir, method, percentile)
    model = onnx.load(str(fp32_path))
    known = {i.name for i in model.graph.input} | {o for n in model.graph.node for o in n.output}
    constants = constant_tensors(model)
    ranges = {k: v for k, v in ranges.items() if k not in constants}  # weights, not activations (Resize scales)
    missing = sorted(set(ranges) - known)
    if missing:  # every key must name a tensor of the FP32 file TensorRT parses
        raise EdgesegError(f"calibration ranges name tensors absent from {fp32_path}: {', '.join(missing[:5])}")
    caches = {}
    for version in trt_versions:
        path = out_dir / f"{stem}.trt-{trt_version_code(version)}.calib"
        path.write_text(cache_text(ranges, version, calibrator))
        caches[version] = path.name
    table = write_ort_table(ranges, out_dir / ORT_TABLE_DIR)
    return {"model": Path(fp32_path).name, "method": method, "calibration_slices": int(len(calib)),
            "tensors": len(ranges), "tensorrt_caches": caches, "calibrator_header": calibrator,
            "ort_tensorrt_table": [f"{ORT_TABLE_DIR}/{p.name}" for p in table]}
