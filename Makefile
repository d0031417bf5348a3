# `make demo` and `make test` are the README's two set-up commands: each installs what it needs
# into .venv (pinned versions from pyproject.toml) and then runs.
VENV ?= .venv
PY := $(VENV)/bin/python
CORES ?= 2
# pytest-xdist workers for `make test` (tests/conftest.py: the SLURM and engine tests run as serial
# groups; the SLURM one mostly waits on the scheduler, so 3 workers fit a 2-core machine)
TEST_WORKERS ?= 3

.PHONY: install demo test test-fast lint bench-plan bench-frames

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q -e ".[test]"
	$(PY) -m pip install -q --no-deps rapidocr_onnxruntime==1.4.4   # scores OCR; --no-deps: docs/scores.md
	touch $@

demo: install
	$(VENV)/bin/vidcap demo demo
	$(VENV)/bin/snakemake --configfile config/demo.yaml --cores $(CORES)
	$(VENV)/bin/vidcap status results/demo
	@echo "merged table: results/demo.csv and results/demo.parquet"

test: install
	$(VENV)/bin/pytest -q -n $(TEST_WORKERS) --dist loadgroup

# unit and component tests only: no end-to-end Snakemake runs, no SLURM, no engine server (< 3 min)
test-fast: install
	$(VENV)/bin/pytest -q -m "not e2e and not slurm and not engine"

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy vidcap
	$(VENV)/bin/snakefmt --check Snakefile rules

bench-plan: install
	$(PY) bench/plan/run.py

bench-frames: install
	$(PY) bench/frames/run.py
