"""edgeseg check MODEL.onnx --target T [--backend B]"""
from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("check", help="list ONNX nodes a target runtime is known not to support",
                       description="List ops, attributes and opset imports of an ONNX model that the target runtime is known "
                       "not to run, with node names. Targets are the device names of `edgeseg simulate` (files in "
                       "edgeseg/export/targets/); backends as in the device profile (trt, ort-cpu). Exit code 1 when an error "
                       "is found; warnings are printed and do not change it.")
    p.add_argument("model", help="ONNX file")
    p.add_argument("--target", default="jetson-nano", help="target (default jetson-nano)")
    p.add_argument("--backend", help="runtime on the target, e.g. trt or ort-cpu (default: the target's, trt on a Jetson)")
    p.set_defaults(func=run)


def run(args) -> int:
    from edgeseg.export.check import check_file, errors

    target, findings = check_file(args.model, args.target, args.backend)
    runtime = target.backend(args.backend).runtime
    bad = errors(findings)
    if not bad:
        print(f"{args.model}: nothing known to be unsupported by {runtime}")
    else:
        print(f"{args.model}: {len(bad)} finding(s) for {runtime}:")
    for f in findings:
        print(f"  {f}")
    return 1 if bad else 0
