# The two commands for a fresh machine: `make app` and `make test`.
export NUMBA_CACHE_DIR ?= $(CURDIR)/.cache/numba
PORT ?= 8501
REPLICAS ?= 1

.PHONY: setup app test lint bench checkpoints

setup:
	@bash scripts/setup.sh

app: setup
	.venv/bin/python -m explorer serve --port $(PORT) --replicas $(REPLICAS)

test: setup
	.venv/bin/python -m pytest -q

lint: setup
	.venv/bin/ruff check . && .venv/bin/ruff format --check .

bench: setup
	.venv/bin/python bench/run.py

checkpoints: setup
	PYTHON=.venv/bin/python bash scripts/make_checkpoints.sh
