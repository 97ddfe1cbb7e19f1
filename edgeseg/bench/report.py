"""Write one benchmark's section into docs/BENCHMARKS.md between markers, leaving the others alone."""
from __future__ import annotations

import datetime
import os
import platform
import re
from pathlib import Path

from edgeseg.io import atomic_write

HEADER = "# Benchmarks\n\nEvery table below is written by the command named in its section; rerun it to reproduce.\n"


def machine_line() -> str:
    """The machine and date, printed under every table."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
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
