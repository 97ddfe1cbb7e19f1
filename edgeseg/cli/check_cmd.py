"""edgeseg check MODEL.onnx --target T"""
from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("check", help="list ONNX nodes a target runtime is known not to support",
                       description="List ops and attributes of an ONNX model that the target runtime is known not to parse, "
                       "with node names. Exit code 1 when something is found.")
    p.add_argument("model", help="ONNX file")
    p.add_argument("--target", default="jetson-nano", help="target (a file in edgeseg/export/targets/, default jetson-nano)")
    p.set_defaults(func=run)


def run(args) -> int:
    from edgeseg.export.check import check_file

    target, findings = check_file(args.model, args.target)
    if not findings:
        print(f"{args.model}: nothing known to be unsupported by {target.runtime}")
        return 0
    print(f"{args.model}: {len(findings)} finding(s) for {target.runtime}:")
    for f in findings:
        print(f"  {f}")
    return 1
