#!/usr/bin/env bash
# Bare-metal install of the edgeseg light runtime + DICOM node on a Jetson or a Raspberry Pi (any
# Linux with Python >= 3.8). Safe to run again: upgrades in place, keeps an existing config file.
#
#   sudo deploy/install.sh                                  # venv, model, config, systemd unit
#   sudo deploy/install.sh --ort-wheel onnxruntime_gpu-1.11.0-cp38-cp38-linux_aarch64.whl --python python3.8
#   deploy/install.sh --prefix ~/edgeseg --no-systemd       # no root: venv, model, config only
#
# What it does (deploy/README.md):
#   PREFIX/venv                      virtual environment: onnxruntime (the GPU wheel when given, first),
#                                    then edgeseg + numpy, pydicom, highdicom, pynetdicom (no torch)
#   PREFIX/venv/bin/edgeseg-launch   starts `edgeseg serve` from the config file
#   PREFIX/models/                   the model(s); model.onnx links to the one served
#   PREFIX/etc/edgeseg.toml          the config (written once, never overwritten)
#   STATE (/var/lib/edgeseg)         spool/ and trt-cache/, owned by the service user
#   systemd                          user edgeseg, deploy/edgeseg-node.service + a drop-in that runs
#                                    edgeseg-launch with PREFIX/etc/edgeseg.toml; enabled, not started
#
# Options:
#   --prefix DIR        install root (default /opt/edgeseg)
#   --model FILE        ONNX model to serve (default: the released FP16 model when onnxruntime has
#                       TensorRT/CUDA, else the INT8 model, from export/unet-s2-brain-nano/)
#   --python PY         interpreter for the venv (default python3; must be >= 3.8)
#   --ort-wheel W       onnxruntime-gpu wheel (file or URL) for this JetPack (deploy/README.md)
#   --wheels DIR        offline: install from this wheel folder only (pip --no-index --find-links)
#   --no-deps           install edgeseg itself only (its dependencies must already be in the venv)
#   --state-dir DIR     spool and TensorRT cache (default /var/lib/edgeseg; PREFIX/var with --no-systemd)
#   --user NAME         service user (default edgeseg)
#   --no-systemd        no user, no unit, no root needed
set -euo pipefail

SRC="$(cd "$(dirname "$0")/.." && pwd)"
PREFIX=/opt/edgeseg
MODEL=""
PYTHON=python3
ORT_WHEEL=""
WHEELS=""
NO_DEPS=0
STATE=""
SVC_USER=edgeseg
SYSTEMD=1
UNIT=edgeseg-node.service
SYSTEMD_DIR="${SYSTEMD_DIR:-/etc/systemd/system}"

die() { echo "install.sh: error: $*" >&2; exit 2; }
say() { echo "install.sh: $*"; }
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) PREFIX="$2"; shift 2 ;;
    --model) MODEL="$2"; shift 2 ;;
    --python) PYTHON="$2"; shift 2 ;;
    --ort-wheel) ORT_WHEEL="$2"; shift 2 ;;
    --wheels) WHEELS="$2"; shift 2 ;;
    --no-deps) NO_DEPS=1; shift ;;
    --state-dir) STATE="$2"; shift 2 ;;
    --user) SVC_USER="$2"; shift 2 ;;
    --no-systemd) SYSTEMD=0; shift ;;
    -h|--help) sed -n '2,33p' "$0"; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done
[ "$SYSTEMD" -eq 1 ] && [ "$(id -u)" -ne 0 ] && die "installing the systemd unit needs root: use sudo, or --no-systemd"
mkdir -p "$PREFIX"
PREFIX="$(cd "$PREFIX" && pwd)"
[ -n "$STATE" ] || { if [ "$SYSTEMD" -eq 1 ]; then STATE=/var/lib/edgeseg; else STATE="$PREFIX/var"; fi; }

# --- 1. Python and the venv ------------------------------------------------------------------------------
command -v "$PYTHON" >/dev/null 2>&1 || die "$PYTHON not found (Jetson Nano: sudo apt-get install python3.8 python3.8-venv python3.8-dev)"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 8))' \
  || die "$("$PYTHON" -V 2>&1) is too old: the runtime needs Python >= 3.8 (--python python3.8)"
VENV="$PREFIX/venv"
VPY="$VENV/bin/python"
if [ ! -x "$VPY" ]; then
  say "creating $VENV with $("$PYTHON" -V 2>&1)"
  "$PYTHON" -m venv "$VENV" || die "python -m venv failed (Debian/Ubuntu: apt-get install python3-venv, or python3.8-venv)"
else
  say "reusing $VENV ($("$VPY" -V 2>&1))"
fi
PIP=("$VPY" -m pip install --upgrade --disable-pip-version-check)
[ -n "$WHEELS" ] && PIP+=(--no-index --find-links "$WHEELS")

# --- 2. onnxruntime first, then edgeseg without its onnxruntime requirement ------------------------------------
if [ "$NO_DEPS" -eq 0 ]; then
  [ -z "$WHEELS" ] && "${PIP[@]}" -q pip
  if [ -n "$ORT_WHEEL" ]; then
    say "installing $ORT_WHEEL"
    case "$(basename "$ORT_WHEEL")" in  # the CPU build would shadow the GPU build's onnxruntime module
      onnxruntime_gpu*|onnxruntime-gpu*) "$VPY" -m pip uninstall -y -q onnxruntime >/dev/null 2>&1 || true ;;
    esac
    "${PIP[@]}" -q "$ORT_WHEEL"
  elif "$VPY" -c 'import onnxruntime' 2>/dev/null; then
    say "keeping the installed onnxruntime"
  else
    say "installing the CPU onnxruntime (no --ort-wheel given: ARM CPU inference)"
    "${PIP[@]}" -q "onnxruntime>=1.11"
  fi
  "${PIP[@]}" -q "numpy>=1.21" "pydicom>=2.4" "highdicom>=0.22" "pynetdicom>=2.0" "tomli>=1.1; python_version < '3.11'"
fi
# --no-deps: the GPU wheel is called onnxruntime-gpu, which would not satisfy edgeseg's 'onnxruntime'.
"${PIP[@]}" -q --no-deps "$SRC"
say "$("$VENV/bin/edgeseg" --version)"
PROVIDERS="$("$VPY" -c 'import onnxruntime as o; print(",".join(o.get_available_providers()))' 2>/dev/null || echo none)"
say "onnxruntime providers: $PROVIDERS"

# --- 3. launcher, model, config --------------------------------------------------------------------------------
install -m 755 "$SRC/deploy/edgeseg_launch.py" "$VENV/bin/edgeseg-launch"
sed -i "1s|.*|#!$VPY|" "$VENV/bin/edgeseg-launch"

mkdir -p "$PREFIX/models" "$PREFIX/etc"
if [ -z "$MODEL" ]; then
  case ",$PROVIDERS," in
    *,TensorrtExecutionProvider,*|*,CUDAExecutionProvider,*) MODEL="$SRC/export/unet-s2-brain-nano/unet-s2-brain-nano.fp16.onnx" ;;
    *) MODEL="$SRC/export/unet-s2-brain-nano/unet-s2-brain-nano.int8.onnx" ;;
  esac
fi
[ -f "$MODEL" ] || die "model not found: $MODEL"
install -m 644 "$MODEL" "$PREFIX/models/$(basename "$MODEL")"
ln -sfn "$(basename "$MODEL")" "$PREFIX/models/model.onnx"
say "serving $PREFIX/models/model.onnx -> $(basename "$MODEL")"

CONF="$PREFIX/etc/edgeseg.toml"
if [ -e "$CONF" ]; then
  say "keeping $CONF (compare with deploy/edgeseg.toml after an upgrade)"
else
  sed -e "s|^model = .*|model = \"$PREFIX/models/model.onnx\"|" \
      -e "s|^spool = .*|spool = \"$STATE/spool\"|" \
      -e "s|^trt_cache = .*|trt_cache = \"$STATE/trt-cache\"|" \
      "$SRC/deploy/edgeseg.toml" >"$CONF.tmp"
  chmod 644 "$CONF.tmp"
  mv "$CONF.tmp" "$CONF"
  say "wrote $CONF"
fi
mkdir -p "$STATE/spool" "$STATE/trt-cache"
"$VENV/bin/edgeseg-launch" --config "$CONF" --print >/dev/null || die "$CONF: cannot be read (edgeseg-launch --print)"

# --- 4. systemd -----------------------------------------------------------------------------------------------
if [ "$SYSTEMD" -eq 0 ]; then
  say "done (no systemd). Start the node: $VENV/bin/edgeseg-launch --config $CONF"
  exit 0
fi
if ! id -u "$SVC_USER" >/dev/null 2>&1; then
  useradd --system --home-dir "$STATE" --no-create-home --shell /usr/sbin/nologin "$SVC_USER"
  say "created user $SVC_USER"
fi
# the Jetson GPU device nodes belong to the video group
getent group video >/dev/null 2>&1 && usermod -aG video "$SVC_USER"
chown -R "$SVC_USER:" "$STATE"

install -m 644 "$SRC/deploy/$UNIT" "$SYSTEMD_DIR/$UNIT"
install -d -m 755 "$SYSTEMD_DIR/$UNIT.d"
cat >"$SYSTEMD_DIR/$UNIT.d/10-edgeseg-config.conf.tmp" <<EOF
# Written by deploy/install.sh: run the node from $CONF (edit that file, then
# systemctl restart ${UNIT%.service}). Reinstalling rewrites this drop-in, never the config.
[Service]
User=$SVC_USER
Group=$SVC_USER
WorkingDirectory=$STATE
Environment=EDGESEG_CONFIG=$CONF
ExecStart=
ExecStart=$VENV/bin/edgeseg-launch --config $CONF
# The first start may build the TensorRT engine (minutes on a Nano): wait up to 10 minutes for C-ECHO.
TimeoutStartSec=900
ExecStartPost=
ExecStartPost=/bin/sh -c 'for i in \$\$(seq 1 300); do $VENV/bin/edgeseg-launch --config $CONF --health && exit 0; sleep 2; done; exit 1'
ReadWritePaths=$STATE
EOF
chmod 644 "$SYSTEMD_DIR/$UNIT.d/10-edgeseg-config.conf.tmp"
mv "$SYSTEMD_DIR/$UNIT.d/10-edgeseg-config.conf.tmp" "$SYSTEMD_DIR/$UNIT.d/10-edgeseg-config.conf"
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
  systemctl daemon-reload
  systemctl enable "$UNIT" >/dev/null
  systemctl try-restart "$UNIT"  # an upgrade restarts a running node; a first install does not start it
  say "installed $UNIT (enabled). Start: sudo systemctl start ${UNIT%.service}; log: journalctl -u ${UNIT%.service} -o cat -f"
else
  say "installed $UNIT, but systemd is not running here: enable it on the board with systemctl"
fi
