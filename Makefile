# One-command set-up: `make run` (the main job) and `make test` (the whole test suite) create
# .venv on first use, install vitlens with its test extras, and then run.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup run test lint bench bench-serve clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[test]"
	touch $(STAMP)

setup: $(STAMP)

run: $(STAMP)
	$(BIN)/vitlens train --out runs/mnist-$$(date +%Y%m%d-%H%M%S)

test: $(STAMP)
	$(BIN)/python -m pytest -q

# Speed side by side: installs the peers into the venv (vit-pytorch without its torchvision dependency:
# its vit.py needs only torch and einops), never as dependencies of the library.
bench: $(STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps vit-pytorch einops  # not torchvision
	$(BIN)/vitlens bench --compare --json benchmarks/results/bench_compare.json

# Load on `vitlens serve` from a second process on loopback, with and without micro-batching.
bench-serve: $(STAMP)
	$(BIN)/python benchmarks/serve_load.py --json benchmarks/results/serve_load.json

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
