#!/usr/bin/env bash
# End-to-end test of the compose cluster (`make cluster-test`), with real components only:
#   1. a Docker engine: the one running, else Debian's docker.io started with the vfs driver;
#   2. base images from Debian packages (deploy/build-base-images.sh; kept between runs);
#   3. the runner image from a wheelhouse built on this host (containers cannot reach PyPI);
#   4. `compose up` with WORKERS Celery workers of two sizes -- WORKERS-1 of service `worker` limited
#      to 1 core and one `worker-small` (profile sizes) limited to 0.5 -- and the monitoring profile's
#      Prometheus; `runner cluster sample` follows every container;
#   5. waits for the coordinator's sweep, checks the report (deploy/check_cluster_report.py: nodes[]
#      per host with the cores each was given, jobs per node, the bound) and that Prometheus scraped
#      the coordinator during the sweep (deploy/check_prometheus.py);
#   6. runs a user job from examples/ (RUNNER_JOBS_DIR, mounted read-only at /jobs) through the same
#      workers -- `runner submit --mode celery --job orders=...` in a one-off coordinator container --
#      and checks that its result accounts for every job, on every node (deploy/check_user_job.py);
#   7. tears everything down -- containers, network, volume, and dockerd if this script started it
#      -- and fails if anything of the project is left.
# Needs root when it has to install or start Docker. Environment: WORKERS (2), RUNNER_CLUSTER_PROJECT
# (runnerct), RUNNER_CLUSTER_TIMEOUT (seconds for the sweep, 900), USER_JOBS (60), KEEP_WHEELHOUSE=1.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

START=$(date +%s)
WORKERS=${WORKERS:-2}
[[ $WORKERS -ge 2 ]] || { echo "cluster-test: WORKERS must be 2 or more (one of them is worker-small)" >&2; exit 2; }
PROJECT=${RUNNER_CLUSTER_PROJECT:-runnerct}
SWEEP_TIMEOUT=${RUNNER_CLUSTER_TIMEOUT:-900}
USER_JOBS=${USER_JOBS:-60}
REPORTS=reports/cluster-test
BASE_PYTHON=${RUNNER_BASE_PYTHON_IMAGE:-runner-base/python:bookworm}
BASE_REDIS=${RUNNER_BASE_REDIS_IMAGE:-runner-base/redis:bookworm}
BASE_PROMETHEUS=${RUNNER_BASE_PROMETHEUS_IMAGE:-runner-base/prometheus:bookworm}
BIG_CPUS=1
SMALL_CPUS=0.5
IMAGE=runner:cluster-test
VENV_BIN=$ROOT/.venv/bin
STATE=$(mktemp -d /tmp/runner-cluster-test.XXXXXX)
SAMPLER_PID=
SCRAPER_PID=
COMPOSE=()

log() { printf '[cluster-test %4ss] %s\n' "$(($(date +%s) - START))" "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }

# --- 1. Docker engine and tools (deploy/docker-lib.sh) ---------------------------------------
# shellcheck source=deploy/docker-lib.sh
source "$ROOT/deploy/docker-lib.sh"

pick_compose() {
    if docker compose version >/dev/null 2>&1; then COMPOSE=(docker compose); else COMPOSE=(docker-compose); fi
    COMPOSE+=(-p "$PROJECT" -f compose.yaml --profile sizes --profile prometheus)
    log "compose: ${COMPOSE[*]}"
}

# --- teardown, always --------------------------------------------------------------------
leftovers() {
    local label="label=com.docker.compose.project=$PROJECT"
    docker ps -aq --filter "$label"
    docker network ls -q --filter "$label"
    docker volume ls -q --filter "$label"
}

teardown() {
    local status=$?
    set +e
    stop_background "$SAMPLER_PID" "$SCRAPER_PID"
    if [[ ${#COMPOSE[@]} -gt 0 ]] && docker info >/dev/null 2>&1; then
        log "tearing down project $PROJECT"
        "${COMPOSE[@]}" --profile monitoring down -v --remove-orphans --timeout 30 >"$STATE/down.log" 2>&1 \
            || cat "$STATE/down.log" >&2
        local left
        left=$(leftovers)
        if [[ -n $left ]]; then
            log "removing what compose left: $(echo "$left" | tr '\n' ' ')"
            docker rm -f $(docker ps -aq --filter "label=com.docker.compose.project=$PROJECT") >/dev/null 2>&1
            docker network rm $(docker network ls -q --filter "label=com.docker.compose.project=$PROJECT") >/dev/null 2>&1
            docker volume rm $(docker volume ls -q --filter "label=com.docker.compose.project=$PROJECT") >/dev/null 2>&1
            [[ -z $(leftovers) ]] || { log "FAILED: containers, networks or volumes left behind"; status=1; }
        fi
    fi
    finish "$status"
}
teardown_on_exit teardown

install_packages
start_docker
pick_compose
[[ -x $VENV_BIN/runner ]] || die ".venv is missing: run make setup"

# --- 2. base images ----------------------------------------------------------------------
RUNNER_BASE_PYTHON_IMAGE=$BASE_PYTHON RUNNER_BASE_REDIS_IMAGE=$BASE_REDIS RUNNER_BASE_PROMETHEUS_IMAGE=$BASE_PROMETHEUS \
    deploy/build-base-images.sh python redis prometheus

# --- 3. the runner image from a wheelhouse made on this host (deploy/docker-lib.sh) ----------
build_runner_image

# --- 4. the cluster ----------------------------------------------------------------------
REDIS_PASSWORD=$("$VENV_BIN/python" -c 'import secrets; print(secrets.token_hex(24))')
# Exported, so they win over any .env of the checkout.
PROMETHEUS_PORT=$("$VENV_BIN/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export REDIS_PASSWORD RUNNER_IMAGE=$IMAGE REDIS_IMAGE=$BASE_REDIS RUNNER_REPORTS_DIR=./$REPORTS \
    RUNNER_BENCH_MODES=async,thread,process,celery RUNNER_QUEUE=runner RUNNER_UID=10001 RUNNER_GID=10001 \
    WORKER_CPUS=$BIG_CPUS WORKER_SMALL_CPUS=$SMALL_CPUS RUNNER_EXPECT_WORKERS=$WORKERS \
    PROMETHEUS_IMAGE=$BASE_PROMETHEUS PROMETHEUS_PORT RUNNER_JOBS_DIR=./examples
rm -rf "$REPORTS"
mkdir -p "$REPORTS"
if [[ $(id -u) -eq 0 ]]; then
    chown 10001:10001 "$REPORTS"  # the image's runner user writes the report
else
    RUNNER_UID=$(id -u) RUNNER_GID=$(id -g)
fi
"${COMPOSE[@]}" config -q || die "compose config"
"${COMPOSE[@]}" down -v --remove-orphans >/dev/null 2>&1 || true # a previous run killed mid-way

"$VENV_BIN/runner" cluster sample --project "$PROJECT" --out "$REPORTS" --until-exit coordinator \
    --timeout "$((SWEEP_TIMEOUT + 300))" 2>"$STATE/sampler.log" &
SAMPLER_PID=$!
log "starting redis, target, $((WORKERS - 1)) x worker ($BIG_CPUS core) + 1 x worker-small ($SMALL_CPUS), prometheus, the coordinator"
"$VENV_BIN/python" deploy/check_prometheus.py "http://127.0.0.1:$PROMETHEUS_PORT" --timeout "$SWEEP_TIMEOUT" \
    >"$STATE/prometheus.log" 2>&1 &
SCRAPER_PID=$!
"${COMPOSE[@]}" up -d --no-build --scale "worker=$((WORKERS - 1))" >"$STATE/up.log" 2>&1 \
    || { cat "$STATE/up.log" >&2; "${COMPOSE[@]}" logs --tail 30 >&2; die "compose up"; }
coordinator=$("${COMPOSE[@]}" ps -q coordinator)
[[ -n $coordinator ]] || die "no coordinator container"
log "coordinator $coordinator running the sweep (at most $SWEEP_TIMEOUT s)"
code=$(timeout "$SWEEP_TIMEOUT" docker wait "$coordinator") || {
    "${COMPOSE[@]}" logs --tail 40 >&2
    die "the sweep did not finish within $SWEEP_TIMEOUT s"
}
"${COMPOSE[@]}" logs --no-color coordinator >"$STATE/coordinator.log" 2>&1
tail -n 15 "$STATE/coordinator.log" >&2
wait "$SAMPLER_PID" || { cat "$STATE/sampler.log" >&2; SAMPLER_PID=; die "runner cluster sample"; }
SAMPLER_PID=
cat "$STATE/sampler.log" >&2
if [[ $code -ne 0 ]]; then
    "${COMPOSE[@]}" logs --no-color --tail 40 worker >&2
    die "the coordinator exited with code $code"
fi

# --- 5. the report ----------------------------------------------------------------------
hostnames= cpus=
for service in worker worker-small; do
    for id in $("${COMPOSE[@]}" ps -q "$service"); do
        hostnames+=$(docker inspect -f '{{.Config.Hostname}}' "$id"),
        if [[ $service == worker ]]; then cpus+=$BIG_CPUS,; else cpus+=$SMALL_CPUS,; fi
    done
done
"$VENV_BIN/python" deploy/check_cluster_report.py "$REPORTS/results.json" --workers "$WORKERS" \
    --worker-hostnames "$hostnames" --node-cpus "$cpus" --worker-services "worker=$((WORKERS - 1)),worker-small=1" \
    || die "the cluster report"
wait "$SCRAPER_PID" || { cat "$STATE/prometheus.log" >&2; SCRAPER_PID=; die "Prometheus did not scrape the coordinator"; }
SCRAPER_PID=
cat "$STATE/prometheus.log" >&2
if "$VENV_BIN/runner" report --help >/dev/null 2>&1; then
    "$VENV_BIN/runner" report "$REPORTS/results.json" --out "$REPORTS" >"$STATE/report.log" 2>&1 \
        || { cat "$STATE/report.log" >&2; die "runner report"; }
    log "report re-rendered with the container figures: $REPORTS/report.md, report.html"
fi

# --- 6. a user job from the jobs folder, on the same workers ----------------------------------
# The workers load it from /jobs (RUNNER_JOBS_DIR, ./examples read-only); the coordinator imports it
# from there too (--path). orders: fetch a page from the cluster's target, total it (both forms).
log "user job: orders (examples/orders.py from /jobs) x $USER_JOBS through the cluster's $WORKERS Celery nodes"
"${COMPOSE[@]}" run --rm --no-deps -T coordinator runner submit --mode celery --celery-workers 0 \
    --expect-workers "$WORKERS" --wait-s 120 --path /jobs --job orders=orders:region_totals_sync,region_totals \
    --inputs /jobs/orders_pages.jsonl --jobs "$USER_JOBS" --out /reports/user-job --quiet \
    >"$STATE/user-job.log" 2>&1 || { cat "$STATE/user-job.log" >&2; die "the user job run"; }
"$VENV_BIN/python" deploy/check_user_job.py "$REPORTS/user-job/result.json" --kind orders --jobs "$USER_JOBS" \
    --workers "$WORKERS" || { cat "$STATE/user-job.log" >&2; die "the user job's result"; }
