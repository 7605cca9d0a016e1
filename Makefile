# Snorkel MeTaL -- developer and user entry points.
PYTHON ?= python3
PIP := $(PYTHON) -m pip
TORCH_VERSION ?= 2.13.0
SOURCES := metal tests benchmarks tutorials setup.py

.PHONY: install dev check fix test test-gpu tutorial bench clean

# CPU torch first (a pinned version installs from a local wheel where one is
# provided), then the project with its development extras.
install:
	$(PIP) install "torch==$(TORCH_VERSION)" || $(PIP) install "torch>=2.0" --index-url https://download.pytorch.org/whl/cpu
	$(PIP) install -e ".[dev]"

dev: install

check:
	$(PYTHON) -m isort --check-only --diff $(SOURCES)
	$(PYTHON) -m black --check $(SOURCES)
	$(PYTHON) -m flake8 $(SOURCES)

fix:
	$(PYTHON) -m isort $(SOURCES)
	$(PYTHON) -m black $(SOURCES)

test:
	$(PYTHON) -m pytest -q tests

test-gpu:
	$(PYTHON) -m pytest -q tests/gpu

tutorial:
	$(PYTHON) tutorials/basics_pipeline.py

bench:
	$(PYTHON) benchmarks/run_all.py

clean:
	rm -rf build dist *.egg-info .pytest_cache checkpoints logs
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
