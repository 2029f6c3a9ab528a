#!/usr/bin/env bash
# End-to-end test of the compose cluster (`make cluster-test`), with real components only:
#   1. a Docker engine: the one running, else Debian's docker.io started with the vfs driver;
#   2. base images from Debian packages (deploy/build-base-images.sh; kept between runs);
#   3. the runner image from a wheelhouse built on this host (containers cannot reach PyPI);
#   4. `compose up` with WORKERS Celery workers, `runner cluster sample` following every container;
#   5. waits for the coordinator's sweep, checks the report (deploy/check_cluster_report.py);
#   6. tears everything down -- containers, network, volume, and dockerd if this script started it
#      -- and fails if anything of the project is left.
# Needs root when it has to install or start Docker. Environment: WORKERS (2), RUNNER_CLUSTER_PROJECT
# (runnerct), RUNNER_CLUSTER_TIMEOUT (seconds for the sweep, 900), KEEP_WHEELHOUSE=1.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

START=$(date +%s)
WORKERS=${WORKERS:-2}
PROJECT=${RUNNER_CLUSTER_PROJECT:-runnerct}
SWEEP_TIMEOUT=${RUNNER_CLUSTER_TIMEOUT:-900}
REPORTS=reports/cluster-test
BASE_PYTHON=${RUNNER_BASE_PYTHON_IMAGE:-runner-base/python:bookworm}
BASE_REDIS=${RUNNER_BASE_REDIS_IMAGE:-runner-base/redis:bookworm}
IMAGE=runner:cluster-test
VENV_BIN=$ROOT/.venv/bin
STATE=$(mktemp -d /tmp/runner-cluster-test.XXXXXX)
DOCKERD_PID=
DOCKER0_CREATED=
SAMPLER_PID=
COMPOSE=()

log() { printf '[cluster-test %4ss] %s\n' "$(($(date +%s) - START))" "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }

# --- 1. Docker engine and tools ------------------------------------------------------------
install_packages() {
    local missing=()
    command -v dockerd >/dev/null || missing+=(docker.io)
    command -v docker-compose >/dev/null || docker compose version >/dev/null 2>&1 || missing+=(docker-compose)
    command -v debootstrap >/dev/null || missing+=(debootstrap)
    [[ ${#missing[@]} -eq 0 ]] && return
    [[ $(id -u) -eq 0 ]] || die "install ${missing[*]} (needs root)"
    log "installing ${missing[*]}"
    apt-get update -q >"$STATE/apt.log" 2>&1
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >>"$STATE/apt.log" 2>&1 \
        || { tail -n 20 "$STATE/apt.log" >&2; die "apt-get install ${missing[*]}"; }
}

start_docker() {
    if docker info >/dev/null 2>&1; then
        log "using the running Docker engine"
        return
    fi
    [[ $(id -u) -eq 0 ]] || die "no Docker engine runs and starting one needs root"
    log "starting dockerd (vfs storage driver)"
    ip link show docker0 >/dev/null 2>&1 || DOCKER0_CREATED=1
    dockerd --storage-driver=vfs >"$STATE/dockerd.log" 2>&1 &
    DOCKERD_PID=$!
    for _ in $(seq 120); do
        docker info >/dev/null 2>&1 && return
        kill -0 "$DOCKERD_PID" 2>/dev/null || { tail -n 20 "$STATE/dockerd.log" >&2; die "dockerd exited"; }
        sleep 0.5
    done
    die "dockerd did not answer within 60 s"
}

stop_docker() {
    [[ -n $DOCKERD_PID ]] || return 0
    log "stopping the dockerd this test started (pid $DOCKERD_PID)"
    kill -TERM "$DOCKERD_PID" 2>/dev/null || true
    for _ in $(seq 60); do kill -0 "$DOCKERD_PID" 2>/dev/null || break; sleep 0.5; done
    if kill -0 "$DOCKERD_PID" 2>/dev/null; then kill -KILL "$DOCKERD_PID" 2>/dev/null || true; fi
    wait "$DOCKERD_PID" 2>/dev/null || true
    DOCKERD_PID=
    # dockerd leaves its default bridge behind; remove it if it came with this dockerd
    if [[ -n $DOCKER0_CREATED ]]; then ip link delete docker0 2>/dev/null || true; fi
}

pick_compose() {
    if docker compose version >/dev/null 2>&1; then COMPOSE=(docker compose); else COMPOSE=(docker-compose); fi
    COMPOSE+=(-p "$PROJECT" -f compose.yaml)
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
    if [[ -n $SAMPLER_PID ]]; then kill -TERM "$SAMPLER_PID" 2>/dev/null; wait "$SAMPLER_PID" 2>/dev/null; fi
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
    stop_docker
    [[ -n ${KEEP_WHEELHOUSE:-} ]] || rm -rf deploy/wheelhouse
    [[ $(id -u) -ne 0 || ! -d $REPORTS ]] || chown -R 0:0 "$REPORTS"
    rm -rf "$STATE"
    if [[ $status -eq 0 ]]; then log "passed in $(($(date +%s) - START)) s"; else log "failed (exit $status)"; fi
    exit $status
}
trap teardown EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

install_packages
start_docker
pick_compose
[[ -x $VENV_BIN/runner ]] || die ".venv is missing: run make setup"

# --- 2. base images ----------------------------------------------------------------------
RUNNER_BASE_PYTHON_IMAGE=$BASE_PYTHON RUNNER_BASE_REDIS_IMAGE=$BASE_REDIS deploy/build-base-images.sh

# --- 3. wheelhouse for the base image's Python, and the runner image ----------------------
# Environment markers (e.g. python_full_version < "3.11.3") are evaluated by the interpreter
# that resolves, so the wheelhouse is built by a host Python of exactly the image's version.
image_python=$(docker run --rm --network none "$BASE_PYTHON" python3 -c 'import platform; print(platform.python_version())')
wheel_python=
for candidate in /usr/bin/python3 python3 "$VENV_BIN/python"; do
    version=$("$candidate" -c 'import platform; print(platform.python_version())' 2>/dev/null) || continue
    if [[ $version == "$image_python" ]]; then wheel_python=$candidate; break; fi
done
[[ -n $wheel_python ]] || die "no host Python $image_python (the base image's) to build the wheelhouse with"
if ! "$wheel_python" -m pip --version >/dev/null 2>&1; then
    if ! "$wheel_python" -m venv "$STATE/wheel-venv" >/dev/null 2>&1; then
        [[ $(id -u) -eq 0 && $wheel_python == /usr/bin/* ]] || die "$wheel_python has neither pip nor venv"
        log "installing python3-venv for $wheel_python"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv >>"$STATE/apt.log" 2>&1 \
            || { apt-get update -q >>"$STATE/apt.log" 2>&1 \
                 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv >>"$STATE/apt.log" 2>&1; } \
            || die "apt-get install python3-venv"
        rm -rf "$STATE/wheel-venv"
        "$wheel_python" -m venv "$STATE/wheel-venv"
    fi
    wheel_python=$STATE/wheel-venv/bin/python
fi
log "building the wheelhouse with $wheel_python (Python $image_python)"
rm -rf deploy/wheelhouse
"$wheel_python" -m pip wheel --quiet --disable-pip-version-check --wheel-dir deploy/wheelhouse '.[report]' setuptools \
    >"$STATE/wheel.log" 2>&1 || { tail -n 20 "$STATE/wheel.log" >&2; die "pip wheel"; }
rm -f deploy/wheelhouse/runner-*.whl # the image builds runner from the sources; the rest stays cached
log "building $IMAGE from $BASE_PYTHON ($(ls deploy/wheelhouse | wc -l) wheels)"
docker build --rm --force-rm -f deploy/Dockerfile --build-arg "BASE_IMAGE=$BASE_PYTHON" -t "$IMAGE" . \
    >"$STATE/build.log" 2>&1 || { tail -n 30 "$STATE/build.log" >&2; die "docker build"; }
# vfs keeps a full copy of the filesystem per layer: drop the images earlier builds left untagged
docker image prune -f --filter "label=org.opencontainers.image.title=runner" >/dev/null

# --- 4. the cluster ----------------------------------------------------------------------
REDIS_PASSWORD=$("$VENV_BIN/python" -c 'import secrets; print(secrets.token_hex(24))')
# Exported, so they win over any .env of the checkout.
export REDIS_PASSWORD RUNNER_IMAGE=$IMAGE REDIS_IMAGE=$BASE_REDIS RUNNER_REPORTS_DIR=./$REPORTS \
    RUNNER_BENCH_MODES=async,thread,process,celery RUNNER_QUEUE=runner RUNNER_UID=10001 RUNNER_GID=10001
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
log "starting redis, target, $WORKERS workers and the coordinator"
"${COMPOSE[@]}" up -d --no-build --scale "worker=$WORKERS" >"$STATE/up.log" 2>&1 \
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
workers_ids=$("${COMPOSE[@]}" ps -q worker)
hostnames=$(for id in $workers_ids; do docker inspect -f '{{.Config.Hostname}}' "$id"; done | paste -sd, -)
"$VENV_BIN/python" deploy/check_cluster_report.py "$REPORTS/results.json" --workers "$WORKERS" \
    --worker-hostnames "$hostnames" || die "the cluster report"
if "$VENV_BIN/runner" report --help >/dev/null 2>&1; then
    "$VENV_BIN/runner" report "$REPORTS/results.json" --out "$REPORTS" >"$STATE/report.log" 2>&1 \
        || { cat "$STATE/report.log" >&2; die "runner report"; }
    log "report re-rendered with the container figures: $REPORTS/report.md, report.html"
fi
