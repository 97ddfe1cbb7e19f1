# Two commands do everything on a fresh machine:
#   make demo   set-up + the main job on bundled real data
#   make test   set-up + the whole test suite (.ci/run calls exactly this)
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
RUNS   := runs

.PHONY: setup demo test bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -c constraints.txt torch==2.13.0
	$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	touch $@

# The whole chain on bundled real data: train -> evaluate -> export (FP32/INT8/FP16, verified)
# -> simulate the Jetson Nano -> segment the bundled real DICOM series into a DICOM SEG.
DEMO_MODEL := $(RUNS)/demo/export/unet-s2-brain-nano
demo: setup
	$(PY) -m edgeseg train recipes/unet-s2-brain.toml --out $(RUNS)/unet-s2-brain
	$(PY) -m edgeseg evaluate $(RUNS)/unet-s2-brain/model.pt
	$(PY) -m edgeseg export export/unet-s2-brain-nano.toml --out $(RUNS)/demo/export
	$(PY) -m edgeseg check $(DEMO_MODEL).fp16.onnx --target jetson-nano
	$(PY) -m edgeseg simulate $(DEMO_MODEL).fp16.onnx $(DEMO_MODEL).int8.onnx --device jetson-nano --precision fp16 --out $(RUNS)/demo/latency
	$(PY) -m edgeseg run $(DEMO_MODEL).int8.onnx data/sample-mr-brain --out $(RUNS)/demo/seg

test: setup
	$(PY) -m pytest -q -p no:cacheprovider tests; rc=$$?; if [ $$rc -eq 5 ]; then echo "no tests collected"; exit 0; fi; exit $$rc

# Every table of docs/BENCHMARKS.md, in dependency order (long: about an hour on 2 quiet cores).
# The arm64 check is separate: bash deploy/arm64-check.sh --record (needs root, installs qemu).
bench: setup
	$(PY) -m edgeseg bench srhead --scales 2 4 --epochs 20
	$(PY) -m edgeseg bench export --epochs 20
	$(PY) -m edgeseg bench compression
	$(PY) -m edgeseg bench latency-validation --fit
	$(PY) -m edgeseg bench latency-host
	$(PY) -m edgeseg bench runner --threads 1 --repeats 5
	$(PY) -m edgeseg bench node --model export/unet-s2-brain-nano/unet-s2-brain-nano.int8.onnx --series 20 --senders 4 --series-timeout 2 --threads 1 --down-s 8

clean:
	rm -rf $(RUNS) build *.egg-info
