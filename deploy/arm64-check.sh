#!/usr/bin/env bash
# Proof that the light runtime runs on arm64 (aarch64), without a board:
#   1. an arm64 Debian bookworm root filesystem (debootstrap --foreign: download + unpack, no emulated
#      maintainer scripts) gives an aarch64 CPython 3.11 and its C libraries;
#   2. the aarch64 wheels of numpy, onnxruntime, pydicom and highdicom (the same versions as the x86
#      reference) come from the package index, unpacked by the host's pip (no emulated pip);
#   3. `edgeseg run` with the default INT8 model on the bundled real MR series runs under QEMU user-mode
#      emulation (qemu-aarch64-static -L ROOTFS: no binfmt_misc, no chroot, no root needed for this step),
#      emulating the Jetson Nano's CPU (-cpu cortex-a57: ARMv8.0, no int8 dot product) and showing the
#      Nano's /proc/cpuinfo (qemu 7 shows the host's, which makes onnxruntime's CPU probe crash);
#   4. the same command runs natively on this (x86-64) machine and the two masks are compared
#      (voxel agreement >= --min-agree, default 0.999: INT8 kernels may round differently on ARM).
# It installs what it needs (apt: qemu-user-static, debootstrap; run as root or with sudo) and is slow
# (minutes), so it is not part of `make test`. --record writes the "arm64" section of docs/BENCHMARKS.md.
#
# usage: deploy/arm64-check.sh [--work DIR] [--model M.onnx] [--series DIR] [--min-agree F]
#                              [--threads N] [--cpu QEMU_CPU] [--record] [--clean]
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
WORK="$ROOT/runs/arm64-check"
MODEL="$ROOT/export/unet-s2-brain-nano/unet-s2-brain-nano.int8.onnx"
SERIES="$ROOT/data/sample-mr-brain"
MIN_AGREE=0.999
THREADS=2
CPU=cortex-a57
RECORD=0
CLEAN=0
SUITE=bookworm

while [ $# -gt 0 ]; do
  case "$1" in
    --work) WORK="$2"; shift 2 ;;
    --model) MODEL="$2"; shift 2 ;;
    --series) SERIES="$2"; shift 2 ;;
    --min-agree) MIN_AGREE="$2"; shift 2 ;;
    --threads) THREADS="$2"; shift 2 ;;
    --cpu) CPU="$2"; shift 2 ;;
    --record) RECORD=1; shift ;;
    --clean) CLEAN=1; shift ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "arm64-check: unknown argument $1" >&2; exit 2 ;;
  esac
done

log() { printf '[arm64-check %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
T0=$(date +%s)
[ "$CLEAN" -eq 1 ] && rm -rf "$WORK"
mkdir -p "$WORK"
WORK="$(cd "$WORK" && pwd)"
ROOTFS="$WORK/rootfs"
[ -f "$MODEL" ] || { echo "arm64-check: model not found: $MODEL" >&2; exit 2; }
[ -d "$SERIES" ] || { echo "arm64-check: series not found: $SERIES" >&2; exit 2; }

# --- 0. host tools -----------------------------------------------------------------------------------
need=()
command -v qemu-aarch64-static >/dev/null 2>&1 || need+=(qemu-user-static)
command -v debootstrap >/dev/null 2>&1 || [ -x /usr/sbin/debootstrap ] || need+=(debootstrap)
command -v dpkg-deb >/dev/null 2>&1 || need+=(dpkg)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  log "installing ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
DEBOOTSTRAP="$(command -v debootstrap || echo /usr/sbin/debootstrap)"

# --- 1. arm64 root filesystem --------------------------------------------------------------------------
if [ ! -e "$ROOTFS/.unpacked" ]; then
  # The Debian mirror this host's apt already uses (none named here); debootstrap's default otherwise.
  MIRROR=""
  for f in /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list; do
    [ -f "$f" ] || continue
    MIRROR="$(grep -Eo 'https?://[^ ]+/debian/?( |$)' "$f" | head -n1 | tr -d ' ' || true)"
    [ -n "$MIRROR" ] && break
  done
  log "debootstrap --foreign arm64 $SUITE (download + unpack)"
  rm -rf "$ROOTFS"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  # shellcheck disable=SC2086  # MIRROR is empty or one URL
  $SUDO "$DEBOOTSTRAP" --arch=arm64 --foreign --variant=minbase --include=python3,libstdc++6,libgomp1 \
    "$SUITE" "$ROOTFS" $MIRROR >"$WORK/debootstrap.log" 2>&1 \
    || { tail -n 20 "$WORK/debootstrap.log" >&2; exit 1; }
  # Unpack every downloaded package (the second stage would also run maintainer scripts under
  # emulation; running Python needs none of them).
  for deb in "$ROOTFS"/var/cache/apt/archives/*.deb; do
    $SUDO dpkg-deb -x "$deb" "$ROOTFS"
  done
  [ -n "$SUDO" ] && $SUDO chown -R "$(id -u):$(id -g)" "$ROOTFS"
  touch "$ROOTFS/.unpacked"
fi
PYARM=""
for f in "$ROOTFS"/usr/bin/python3.[0-9] "$ROOTFS"/usr/bin/python3.[0-9][0-9]; do
  [ -x "$f" ] && PYARM="$(basename "$f")"
done
[ -n "$PYARM" ] || { echo "arm64-check: no python3 in $ROOTFS" >&2; exit 1; }
PYARM_VER="${PYARM#python}"
# The Nano's /proc/cpuinfo (4x Cortex-A57, r1p1): qemu -L serves files under ROOTFS before the host's.
for i in 0 1 2 3; do
  printf 'processor\t: %s\nmodel name\t: ARMv8 Processor rev 1 (v8l)\nBogoMIPS\t: 38.40\n' "$i"
  printf 'Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32\nCPU implementer\t: 0x41\n'
  printf 'CPU architecture: 8\nCPU variant\t: 0x1\nCPU part\t: 0xd07\nCPU revision\t: 1\n\n'
done >"$ROOTFS/proc/cpuinfo"
run_arm() { qemu-aarch64-static -cpu "$CPU" -L "$ROOTFS" "$ROOTFS/usr/bin/$PYARM" "$@"; }
log "aarch64 interpreter: $(run_arm -c 'import platform, sys; print(platform.machine(), sys.version.split()[0])')"

# --- 2. x86-64 reference environment ----------------------------------------------------------------------
HOSTPY="$ROOT/.venv/bin/python"
if ! { [ -x "$HOSTPY" ] && "$HOSTPY" -c 'import numpy, onnxruntime, pydicom, highdicom' 2>/dev/null; }; then
  HOSTPY="$WORK/x86-venv/bin/python"
  if [ ! -x "$HOSTPY" ]; then
    log "creating the x86-64 reference venv"
    python3 -m venv "$WORK/x86-venv"
    "$HOSTPY" -m pip install -q numpy onnxruntime pydicom highdicom
  fi
fi
PINS="$("$HOSTPY" - <<'EOF'
import importlib.metadata as md
print(" ".join(f"{p}=={md.version(p)}" for p in ("numpy", "onnxruntime", "pydicom", "highdicom")))
EOF
)"

# --- 3. aarch64 wheels (same versions), unpacked by the host's pip ------------------------------------------
SITE="$WORK/site-aarch64"
if [ ! -e "$SITE/.installed" ] || [ "$(cat "$SITE/.installed")" != "$PINS py$PYARM_VER" ]; then
  log "downloading aarch64 wheels for Python $PYARM_VER: $PINS"
  rm -rf "$SITE" "$WORK/wheels"
  plat=(--platform manylinux_2_28_aarch64 --platform manylinux_2_27_aarch64 --platform manylinux_2_17_aarch64
        --platform manylinux2014_aarch64 --platform linux_aarch64)
  # shellcheck disable=SC2086  # PINS is a list of requirement words
  "$HOSTPY" -m pip download -q --only-binary=:all: "${plat[@]}" --python-version "$PYARM_VER" \
    --implementation cp -d "$WORK/wheels" $PINS
  "$HOSTPY" -m pip install -q --no-deps --only-binary=:all: "${plat[@]}" --python-version "$PYARM_VER" \
    --implementation cp --target "$SITE" "$WORK"/wheels/*.whl
  echo "$PINS py$PYARM_VER" >"$SITE/.installed"
fi

# --- 4. run on aarch64 (emulated) and on x86-64, compare ------------------------------------------------------
rm -rf "$WORK/out-aarch64" "$WORK/out-x86_64"
log "edgeseg run on aarch64 under QEMU ($(basename "$MODEL"), $(find "$SERIES" -type f | wc -l) files)"
t=$(date +%s)
PYTHONPATH="$SITE:$ROOT" PYTHONDONTWRITEBYTECODE=1 run_arm -m edgeseg run "$MODEL" "$SERIES" \
  --out "$WORK/out-aarch64" --provider cpu --threads "$THREADS" --also npy --quiet
ARM_S=$(( $(date +%s) - t ))
log "edgeseg run on x86-64 (native)"
t=$(date +%s)
PYTHONPATH="$ROOT" "$HOSTPY" -m edgeseg run "$MODEL" "$SERIES" \
  --out "$WORK/out-x86_64" --provider cpu --threads "$THREADS" --also npy --quiet
X86_S=$(( $(date +%s) - t ))

set +e
PYTHONPATH="$ROOT" "$HOSTPY" "$ROOT/deploy/arm64_compare.py" --work "$WORK" --min-agree "$MIN_AGREE" \
  --arm-s "$ARM_S" --x86-s "$X86_S" --total-s "$(( $(date +%s) - T0 ))" --pins "$PINS" \
  --python "$PYARM_VER" --qemu-cpu "$CPU" --model "$MODEL" --record "$RECORD" --root "$ROOT"
rc=$?
set -e
log "done in $(( $(date +%s) - T0 )) s: $([ $rc -eq 0 ] && echo PASS || echo FAIL)"
exit $rc
