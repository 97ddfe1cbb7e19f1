"""edgeseg simulate: predict latency and memory of ONNX models on edge devices (no device needed)."""
from __future__ import annotations

import json
from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("simulate", help="predict latency / memory of an ONNX model on a device (Jetson Nano...)",
                       description="Predict latency (with an uncertainty band), peak memory and the slowest layers "
                                   "of ONNX models on device profiles (see `edgeseg devices`).")
    p.add_argument("models", nargs="*", metavar="MODEL.onnx")
    p.add_argument("--device", action="append", help="device name or profile .toml (repeatable; default jetson-nano)")
    p.add_argument("--precision", choices=["fp32", "fp16", "int8"], help="default: fp16 on TensorRT, fp32 on CPU")
    p.add_argument("--backend", help="e.g. trt or ort-cpu (default: the device's default)")
    p.add_argument("--input-shape", help="fix a dynamic input, e.g. 1x3x224x224")
    p.add_argument("--top", type=int, default=10, help="slowest layers to print")
    p.add_argument("--out", help="folder for the JSON and PNG (default: beside each model)")
    p.add_argument("--no-plot", action="store_true", help="skip the PNG per-layer chart")
    p.add_argument("--calibrate", action="store_true", help="measure this machine with ONNX Runtime and write the "
                                                            "host profile (user cache), then exit")
    p.set_defaults(func=run)


def _mb(n: int) -> str:
    return f"{n / 2**20:.1f} MB"


def print_one(pred, top: int) -> None:
    lo, hi = pred.band_ms
    print(f"{pred.model} on {pred.device}/{pred.backend} {pred.precision.upper()} (input {pred.input_shape})")
    print(f"  latency   {pred.total_ms:.2f} ms  [{lo:.2f} .. {hi:.2f}]   {pred.fps:.1f} FPS")
    print(f"  memory    {_mb(pred.peak_memory_bytes)} (weights {_mb(pred.weights_bytes)} + activations "
          f"{_mb(pred.peak_activation_bytes)}) of {_mb(pred.device_memory_bytes)}")
    print(f"  work      {pred.macs / 1e9:.3f} GMAC in {pred.kernels} kernels")
    if pred.inference_ms:
        print(f"  overhead  {pred.inference_ms:.2f} ms per inference ({100 * pred.inference_ms / pred.total_ms:.0f} %"
              " of the latency; the device profile's inference_us)")
    if pred.estimated_ops:
        print(f"  fallback  {100 * pred.estimated_share:.1f} % of the time priced from tensor sizes "
              f"({', '.join(pred.estimated_ops)})" + ("  UNRELIABLE" if pred.estimated_share > 0.10 else ""))
    print(f"  {'layer':<40}{'ops':<26}{'class':<10}{'ms':>8}{'%':>6}  bound")
    for k in pred.top_layers(top):
        flag = "  (estimate)" if k.estimated else ""
        print(f"  {k.name[-39:]:<40}{'+'.join(k.ops)[:25]:<26}{k.op_class:<10}{k.seconds * 1e3:>8.3f}"
              f"{100 * k.seconds * 1e3 / pred.total_ms:>6.1f}  {k.bound}{flag}")


def print_table(preds) -> None:
    width = max([len("model")] + [len(p.model) for p in preds]) + 2  # full names: variants differ only at the end
    print(f"{'model':<{width}}{'device':<18}{'backend':<9}{'prec':<6}{'ms':>9}{'band ms':>18}{'FPS':>8}{'memory':>22}")
    for p in preds:
        band = f"{p.band_ms[0]:.1f}..{p.band_ms[1]:.1f}"
        mem = f"{_mb(p.peak_memory_bytes)}/{p.device_memory_bytes / 2**30:.0f} GB"
        print(f"{p.model:<{width}}{p.device:<18}{p.backend:<9}{p.precision:<6}{p.total_ms:>9.2f}{band:>18}"
              f"{p.fps:>8.1f}{mem:>22}")


def run(args) -> int:
    from edgeseg.errors import EdgesegError
    from edgeseg.latency.graph import parse_shape
    from edgeseg.latency.predict import simulate

    if args.calibrate:
        from edgeseg.latency.calibrate import calibrate

        path, errors = calibrate()
        print(f"host profile written: {path}")
        print("probe errors after the fit: " + ", ".join(f"{k} {v:+.0f}%" for k, v in errors.items()))
        return 0
    if not args.models:
        raise EdgesegError("give at least one MODEL.onnx (or --calibrate)")
    shape = parse_shape(args.input_shape) if args.input_shape else None
    preds = []
    for model in args.models:
        for device in args.device or ["jetson-nano"]:
            pred = simulate(model, device, args.precision, args.backend, shape)
            preds.append(pred)
            for w in pred.warnings:
                print(f"warning: {w}")
            out = Path(args.out) if args.out else Path(model).parent
            out.mkdir(parents=True, exist_ok=True)
            stem = f"{Path(model).stem}.{pred.device}.{pred.backend}.{pred.precision}"
            (out / f"{stem}.latency.json").write_text(json.dumps(pred.to_dict(), indent=1))
            if not args.no_plot:
                from edgeseg.latency.plot import layer_chart

                layer_chart(pred, out / f"{stem}.layers.png")
    if len(preds) == 1:
        print_one(preds[0], args.top)
    else:
        print_table(preds)
    return 0
