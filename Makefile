# Quick start: `make demo` and `make test` each set up their own virtual environment.
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python

.PHONY: demo test test-gpu oracle fuzz bench bench-gpu lint clean

# corrnet itself (NumPy, SciPy, numba, tqdm, Pillow), installed in editable mode.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e .
	touch $@

# The test extras: pytest, hypothesis, ruff, matplotlib, and torch==2.13.0 and OpenCV as oracles.
$(VENV)/.test-installed: $(VENV)/.installed
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

demo: $(VENV)/.installed
	$(VENV)/bin/corrnet demo

test: $(VENV)/.test-installed
	$(PY) -m ruff check src tests benchmarks
	$(PY) -m pytest -q

# The oracle suite, the seed notebooks (run as written, .cuda() calls kept) and the device tests
# with corrnet's tensors on `cuda`, against PyTorch on the CPU (and on its own GPU where it has
# CUDA). corrnet uses CuPy's GPU where CuPy is installed in the venv and sees one
# (pip install cupy-cuda13x); elsewhere its stand-in device, as the first line of output says.
test-gpu: $(VENV)/.test-installed
	$(PY) tests/gpu_suite.py

# The oracle suite at nightly size: about 50,000 hypothesis examples against PyTorch.
oracle: $(VENV)/.test-installed
	CORRNET_ORACLE=nightly $(PY) -m pytest -q tests/oracle

# Differential fuzzing against PyTorch (SciPy for the filters) at nightly size: 30,000 calls
# over three modes (compiled kernels on, off, bounds-checked), each call in a bounded worker
# process; prints the counts per class, fails on any cryptic/wrong/crash/hang, and writes
# build/fuzz-report.json. One case's repro: PYTHONPATH=tests $(PY) -m fuzz repro SEED INDEX
fuzz: $(VENV)/.test-installed
	PYTHONPATH=tests $(PY) -m fuzz --calls 30000

# The benchmark's contenders beyond the test extras: OpenCV.
$(VENV)/.bench-installed: $(VENV)/.test-installed
	$(PY) -m pip install --quiet -e '.[test,bench]'
	touch $@

# Side-by-side timings against PyTorch, SciPy and OpenCV; rewrites BENCHMARKS.md.
# Run on an idle machine.
bench: $(VENV)/.bench-installed
	$(PY) benchmarks/run.py

# corrnet on the GPU (CuPy) against PyTorch CUDA on the same GPU: LeNet training examples/s, the
# layer suite and pooling; writes build/BENCHMARKS-gpu.md, a section for BENCHMARKS.md. Needs
# CuPy and a GPU (benchmarks/gpu.py --standin is a smoke run without them).
bench-gpu: $(VENV)/.bench-installed
	$(PY) benchmarks/gpu.py --out build/BENCHMARKS-gpu.md

lint: $(VENV)/.test-installed
	$(PY) -m ruff check src tests benchmarks

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
