"""edgeseg devices: list the device profiles the simulator knows, with their sources."""
from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("devices", help="list the device profiles (Jetson Nano, Raspberry Pi...) and their sources")
    p.add_argument("--sources", action="store_true", help="print every figure's source")
    p.set_defaults(func=run)


def run(args) -> int:
    from edgeseg.latency.device import list_devices

    for d in list_devices():
        print(f"{d.name:<18}{d.title}  ({d.memory_gb:g} GB; profile {d.path.name})")
        for b in d.backends.values():
            precs = ", ".join(f"{p.name}" + (f"->{p.runs_as}" if p.runs_as != p.name else f" {p.peak_gflops:g} GFLOP/s")
                              for p in b.precisions.values())
            print(f"  {b.name:<9}{b.processor}; {b.bandwidth_gbs:g} GB/s; {precs}")
            print(f"  {'':<9}efficiencies: {b.efficiency_source}")
        if args.sources:
            for key, text in d.sources.items():
                print(f"    {key}: {text}")
    return 0
