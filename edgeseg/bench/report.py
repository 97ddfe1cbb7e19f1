"""Write one benchmark's section into docs/BENCHMARKS.md between markers, leaving the others alone."""
from __future__ import annotations

import datetime
import os
import platform
import re
import statistics
from pathlib import Path

from edgeseg.io import atomic_write

HEADER = "# Benchmarks\n\nEvery table below is written by the command named in its section; rerun it to reproduce.\n"


# the instruction-set extensions that decide INT8 and FP32 kernel speed, widest first (x86 flags, Arm features)
SIMD_FEATURES = ("amx_int8", "avx512_vnni", "avx_vnni", "avx512f", "avx2", "asimddp", "asimd")


def mean_sd(values) -> tuple[float, float]:
    """(mean, sample sd) over seeds; sd is nan for one value (one seed shows no spread)."""
    values = list(values)
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else float("nan"))


def cpu_description(cpuinfo: str, l2_kib: int | None = None) -> str:
    """'model (SIMD extensions; L2 per core)' from /proc/cpuinfo text: two machines sold under one model name
    (e.g. 'AMD EPYC') can differ in exactly what makes INT8 fast, so the bench footers say it."""
    model, flags = "", set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key in ("model name", "cpu model") and not model:
            model = value.strip()
        elif key in ("flags", "features") and not flags:
            flags = set(value.split())
    simd = [f for f in SIMD_FEATURES if f in flags]
    extras = [", ".join(simd) if simd else "no SIMD flags listed"]
    if "avx2" in flags and not {"avx512_vnni", "avx_vnni"} & flags:
        extras[0] += ", no VNNI"
    if l2_kib:
        extras.append(f"L2 {l2_kib} KiB per core")
    return f"{model or platform.processor() or platform.machine()} ({'; '.join(extras)})"


def _l2_kib() -> int | None:
    for index in sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index*")):
        try:
            if (index / "level").read_text().strip() == "2":
                return int((index / "size").read_text().strip().rstrip("K"))
        except (OSError, ValueError):
            return None
    return None


def machine_line() -> str:
    """The machine and date, printed under every table."""
    try:
        cpu = cpu_description(Path("/proc/cpuinfo").read_text(), _l2_kib())
    except OSError:
        cpu = platform.processor() or platform.machine()
    import importlib.metadata as md

    versions = []
    for pkg in ("torch", "onnxruntime"):
        try:
            versions.append(f"{pkg} {md.version(pkg)}")
        except md.PackageNotFoundError:
            pass
    return (f"Machine: {cpu}, {os.cpu_count()} logical cores, {platform.system()} {platform.machine()}, "
            f"Python {platform.python_version()}, {', '.join(versions)}. Date: {datetime.date.today().isoformat()}.")


def write_section(name: str, markdown: str, path: str | Path = "docs/BENCHMARKS.md") -> Path:
    """Replace (or append) the section `name` of the benchmarks file, atomically."""
    path = Path(path)
    text = path.read_text() if path.is_file() else HEADER
    begin, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    block = f"{begin}\n{markdown.rstrip()}\n{end}"
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(path, text)
