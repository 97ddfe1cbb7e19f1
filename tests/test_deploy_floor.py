"""The runtime's Python floor: what the oldest supported JetPack line runs (Python 3.8: JetPack 4.6 with
Ubuntu 18.04's python3.8 and the Jetson Zoo's cp38 onnxruntime-gpu 1.11; JetPack 5's system Python).

vermin checks syntax and standard-library use of every module the light runtime and the node import;
the declared dependency ranges must admit releases that exist for Python 3.8.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FLOOR = "3.8"

# What `edgeseg run` / `edgeseg serve` import (tests/test_runtime_*.py check that no torch is imported).
RUNTIME_FILES = [
    "edgeseg/__init__.py", "edgeseg/__main__.py", "edgeseg/contract.py", "edgeseg/preprocess.py",
    "edgeseg/orientation.py", "edgeseg/errors.py", "edgeseg/io.py", "edgeseg/ort.py", "edgeseg/safe_paths.py", "edgeseg/metrics.py", "edgeseg/progress.py",
    "edgeseg/cli/__init__.py", "edgeseg/cli/run_cmd.py", "edgeseg/cli/serve_cmd.py",
    "edgeseg/runtime", "edgeseg/results", "edgeseg/node", "deploy/edgeseg_launch.py", "deploy/arm64_compare.py",
]

# The newest release of each runtime dependency that installs on Python 3.8 (aarch64 wheels checked
# with `pip download --python-version 3.8 --platform manylinux2014_aarch64 --only-binary=:all:`), and
# onnxruntime 1.11.0: the Jetson Zoo's onnxruntime-gpu for JetPack 4.6 / cp38.
RELEASES_FOR_38 = {"numpy": "1.24.4", "onnxruntime": "1.11.0", "pydicom": "2.4.4", "highdicom": "0.22.0",
                   "pynetdicom": "2.0.2", "tomli": "2.2.1"}


def _vermin(*paths) -> subprocess.CompletedProcess:
    pytest.importorskip("vermin", reason="vermin is not installed (pip install 'edgeseg[dev]')")
    return subprocess.run([sys.executable, "-c", "import sys, vermin; sys.exit(vermin.main())", f"-t={FLOOR}-", "--no-tips", "--violations",
                           *map(str, paths)], capture_output=True, text=True, cwd=ROOT)


def test_runtime_sources_run_on_the_floor():
    missing = [p for p in RUNTIME_FILES if not (ROOT / p).exists()]
    assert not missing, f"runtime files listed here do not exist: {missing}"
    r = _vermin(*RUNTIME_FILES)
    assert r.returncode == 0, f"newer than Python {FLOOR}:\n{r.stdout}\n{r.stderr}"


def test_vermin_catches_newer_code(tmp_path):
    """The check bites: a 3.9 standard-library module and 3.10 syntax each fail it."""
    (tmp_path / "stdlib.py").write_text("import zoneinfo\n")
    (tmp_path / "syntax.py").write_text("def f(x):\n    match x:\n        case 1:\n            return 2\n")
    for name, needs in (("stdlib.py", "3.9"), ("syntax.py", "3.10")):
        r = _vermin(tmp_path / name)
        assert r.returncode != 0 and f"Minimum required versions: {needs}" in r.stdout, r.stdout + r.stderr


def _pyproject() -> dict:
    try:
        import tomllib
    except ImportError:  # Python < 3.11
        tomllib = pytest.importorskip("tomli")
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_declared_ranges_admit_the_floor():
    from packaging.requirements import Requirement
    from packaging.specifiers import SpecifierSet

    project = _pyproject()["project"]
    assert SpecifierSet(project["requires-python"]).contains(FLOOR + ".0"), project["requires-python"]
    reqs = [Requirement(r) for r in project["dependencies"] + project["optional-dependencies"]["dicom"]]
    assert {r.name for r in reqs} == set(RELEASES_FOR_38), "a runtime dependency was added: add its 3.8 release"
    for r in reqs:
        assert r.specifier.contains(RELEASES_FOR_38[r.name], prereleases=True), \
            f"{r} does not admit {r.name} {RELEASES_FOR_38[r.name]}, the newest for Python {FLOOR}"


def test_docker_and_install_ranges_match_pyproject():
    """Dockerfile.jetson and install.sh install the runtime's dependencies by hand (onnxruntime-gpu is a
    different distribution name): their lower bounds must admit the same floor releases."""
    import re

    for name in ("Dockerfile.jetson", "deploy/install.sh"):
        text = (ROOT / name).read_text()
        for pkg, version in RELEASES_FOR_38.items():
            for m in re.finditer(rf'"{pkg}>=([0-9.]+)"', text):
                assert tuple(map(int, m.group(1).split("."))) <= tuple(map(int, version.split("."))), (name, pkg)
        assert not re.search(r"pip[^\n]* install[^\n]*torch", text), f"{name} must not install torch"
