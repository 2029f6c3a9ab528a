# Everything a new user or CI needs: `make demo` and `make test` set up .venv themselves.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup demo test lint bench cluster-test swarm-test clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

## The same workload through all six executors, on embedded Redis and local workers.
demo: setup
	$(BIN)/runner submit --mode all --jobs 400 --mix sleep=0.5,cpu=0.5 --io-ms 50 --cpu-ms 5 --workers 2

test: setup
	$(BIN)/pytest -q

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

## Where coroutines win and where processes are needed (takes a few minutes).
bench: setup
	$(BIN)/python benchmarks/executors.py

## The compose cluster, really brought up (Docker installed and started if needed; needs root then),
## benchmarked with 2 Celery workers, its report checked, then torn down. See deploy/cluster-test.sh.
cluster-test: setup
	bash deploy/cluster-test.sh

## The same cluster as a Docker Swarm stack (deploy/stack.yaml): swarm init, stack deploy with worker
## replicas on an overlay network and the Redis password as a secret, the quick sweep, its report
## checked, then the stack removed and the swarm left. See deploy/swarm-test.sh.
swarm-test: setup
	bash deploy/swarm-test.sh

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache reports
