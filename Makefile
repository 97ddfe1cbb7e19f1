# Two commands do everything on a fresh machine:
#   make demo   set-up + the main job on bundled real data
#   make test   set-up + the whole test suite (.ci/run calls exactly this)
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
RUNS   ?= runs

.PHONY: setup demo test bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -c constraints.txt torch==2.13.0
	$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	touch $@

demo: setup
	$(PY) -m edgeseg train recipes/unet-s2-brain.toml --out $(RUNS)/demo
	$(PY) -m edgeseg evaluate $(RUNS)/demo/model.pt

test: setup
	$(PY) -m pytest -q -p no:cacheprovider tests; rc=$$?; if [ $$rc -eq 5 ]; then echo "no tests collected"; exit 0; fi; exit $$rc

bench: setup
	$(PY) -m edgeseg bench srhead

clean:
	rm -rf $(RUNS) build *.egg-info
