"""onnxsim, then `onnx.checker` (full check) and strict shape inference (`validate.save_checked`), then a parity
check vs the original."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from edgeseg.errors import EdgesegError


def ort_session(path, threads: int = 1):
    from edgeseg.ort import cpu_session

    return cpu_session(path, threads)


def run_onnx(session, x: np.ndarray, batch: int = 1) -> np.ndarray:
    """x: (N, 1, h, w) float32 -> outputs of the first model output, batch by batch."""
    name = session.get_inputs()[0].name
    return np.concatenate([session.run(None, {name: x[i : i + batch]})[0] for i in range(0, len(x), batch)])


def simplify(src: str | Path, dst: str | Path, inputs: np.ndarray, rtol: float = 1e-4, atol: float = 1e-5) -> dict:
    """Simplify `src` into `dst`, keep its metadata, check it and compare outputs on `inputs` (N,1,h,w)."""
    import onnx
    import onnxsim

    from edgeseg.export.validate import save_checked

    model = onnx.load(str(src))
    simplified, ok = onnxsim.simplify(model)
    if not ok:
        raise EdgesegError(f"{src}: onnxsim could not validate the simplified model")
    del simplified.metadata_props[:]
    simplified.metadata_props.extend(model.metadata_props)
    simplified.producer_name, simplified.producer_version = model.producer_name, model.producer_version
    save_checked(simplified, dst)
    a = run_onnx(ort_session(src), inputs)
    b = run_onnx(ort_session(dst), inputs)
    if not np.allclose(b, a, rtol=rtol, atol=atol):
        raise EdgesegError(f"{dst}: simplified model differs from the original (max abs diff {np.abs(a - b).max():.3g})")
    return {
        "nodes_before": len(model.graph.node),
        "nodes_after": len(simplified.graph.node),
        "max_abs_diff_vs_original": float(np.abs(a - b).max()),
        "rtol": rtol,
        "atol": atol,
    }
