# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# torch 2.14.1 + torchvision 0.29.1: the pair whose compiled ops (nms, roi_align) work here
# (shared/research/env_check.md, section 1). Installed first so nothing else picks the pair.
TORCH_PAIR := torch==2.14.1 torchvision==0.29.1

export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export PYTHONUNBUFFERED := 1

.PHONY: demo test test-all bench lint clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q $(TORCH_PAIR)
	$(PY) -m pip install -q -e '.[test]'
	touch $@

## demo: set up, then run every recipe's tiny preset on embedded data and write report/
demo: $(VENV)/.installed
	$(VENV)/bin/frugalcv run all --preset tiny

## test: set up with test extras, then the default pytest tier (not slow), one worker per core
## (each worker single-threaded: two workers on two cores beat one worker with two threads)
test: $(VENV)/.installed
	OMP_NUM_THREADS=1 $(PY) -m pytest -q -n 2

test-all: $(VENV)/.installed
	OMP_NUM_THREADS=1 $(PY) -m pytest -q -n 2 -m ""

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check frugalcv tests benchmarks

clean:
	rm -rf runs report
