# Everything a new user or CI needs: `make demo` and `make test` set up .venv themselves.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup demo test test-slow test-fast lint bench bench-fair bench-scaling perf-check cluster-test swarm-test mutate clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

## The same workload through all six executors, on embedded Redis and local workers.
demo: setup
	$(BIN)/runner submit --mode all --jobs 400 --mix sleep=0.5,cpu=0.5 --io-ms 50 --cpu-ms 5 --workers 2

## Every tier but the cluster: real Redis, Celery workers, pools, browser (see docs/testing.md).
test: setup
	$(BIN)/pytest -q -m "not slow"

## The slow tier: whole-run faults (services killed, restarted, timed out) and CLI sweeps; CI runs it
## after `make test`. `make test test-slow` is the whole suite.
test-slow: setup
	$(BIN)/pytest -q -m slow

## The fast tier: coordinator, CLI, spec, ledger, statistics, compare on the in-process stub executor;
## no Redis, Celery, Docker or browser (under a minute).
test-fast: setup
	$(BIN)/pytest -q -m fast

## Mutation testing of the engine's core against the fast tier (slow; not in CI). Mutants and
## results are kept in mutants/ and reused by the next run; timeouts are run again alone before they
## count (tests/mutation_score.py). One module at a time, e.g. make mutate MUTANTS='runner.report.verdicts.*'
## (mutmut's names, * matches; the score covers all). JOBS: mutants at a time (default: the cores).
MUTANTS ?=
JOBS ?= $(shell nproc)
mutate: setup
	$(BIN)/mutmut run --max-children $(JOBS) $(MUTANTS) > mutants.log 2>&1 || (tail -20 mutants.log; exit 1)
	$(BIN)/python tests/mutation_score.py --recheck --jobs $(JOBS)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

## Where coroutines win and where processes are needed (takes a few minutes).
bench: setup
	$(BIN)/python benchmarks/executors.py

## What runner costs above the bare primitives (benchmarks/overhead.py in short form: no-op jobs,
## interleaved rounds), compared with the committed baseline by ratio (runner / bare in the same
## round), so machine load cancels out; fails on a significant fall of 20 %. Not in CI: this
## machine is shared and noisy. A new baseline: copy reports/perf-check.json over PERF_BASELINE.
PERF_BASELINE ?= benchmarks/perf-baseline.json
perf-check: setup
	$(BIN)/python benchmarks/overhead.py --short --jobs 50000 --rounds 3 --modes async,async-10k,process,celery \
		--cost-modes async,process --json reports/perf-check.json
	$(BIN)/runner compare $(PERF_BASELINE) reports/perf-check.json --fail-if vs_bare:-20%

## Runner's executors against like-for-like hand-written baselines, one calibration, intervals (~20 min on 2 cores).
bench-fair: setup
	$(BIN)/python benchmarks/fair.py

## Process and Celery modes at 1..16 workers beside their bare primitives, and the line-rate goals on
## 2 of the machine's cores: for a many-core machine (~9 min on 16 cores). Chart: reports/scaling.svg.
bench-scaling: setup
	PYTHON=$(BIN)/python bash benchmarks/scaling-run.sh reports/scaling
	$(BIN)/python benchmarks/scaling.py --chart reports/scaling.svg --from reports/scaling/scaling-*.json

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
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache reports mutants mutants.log
