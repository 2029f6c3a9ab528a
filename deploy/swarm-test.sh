#!/usr/bin/env bash
# End-to-end test of the cluster in Docker Swarm mode (`make swarm-test`), real components only:
#   1. a Docker engine (deploy/docker-lib.sh) in swarm mode: `docker swarm init` unless this node is
#      in a swarm already;
#   2. base images from Debian packages and the runner image from a host-built wheelhouse (kept);
#   3. the Redis password as a Docker secret, `docker stack deploy` of deploy/stack.yaml with
#      WORKERS worker replicas (overlay network), waits until every worker answers its health check;
#   4. scales the coordinator to 1: it waits for the WORKERS nodes (--expect-workers) and runs the
#      quick sweep; `runner cluster sample --stack` follows every container meanwhile;
#   5. checks the report (deploy/check_cluster_report.py: jobs on every node, nodes[] from each);
#   6. tears down the stack, its secret and volume, leaves the swarm if it joined one, stops dockerd
#      if it started it -- and fails if anything of the stack is left.
# Needs root when it has to install or start Docker. Environment: WORKERS (2), WORKER_CPUS (1),
# RUNNER_SWARM_STACK (runnerswarm), RUNNER_CLUSTER_TIMEOUT (seconds for the sweep, 900).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

START=$(date +%s)
WORKERS=${WORKERS:-2}
STACK=${RUNNER_SWARM_STACK:-runnerswarm}
SWEEP_TIMEOUT=${RUNNER_CLUSTER_TIMEOUT:-900}
REPORTS=reports/swarm-test
BASE_PYTHON=${RUNNER_BASE_PYTHON_IMAGE:-runner-base/python:bookworm}
BASE_REDIS=${RUNNER_BASE_REDIS_IMAGE:-runner-base/redis:bookworm}
IMAGE=runner:cluster-test
VENV_BIN=$ROOT/.venv/bin
STATE=$(mktemp -d /tmp/runner-swarm-test.XXXXXX)
SECRET=${STACK}_redis_password
SWARM_JOINED=
GWBRIDGE_CREATED=
DEPLOYED=
SAMPLER_PID=

log() { printf '[swarm-test %4ss] %s\n' "$(($(date +%s) - START))" "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }

# shellcheck source=deploy/docker-lib.sh
source "$ROOT/deploy/docker-lib.sh"

stack_label() { echo "label=com.docker.stack.namespace=$STACK"; }
service_containers() { docker ps -aq --filter "label=com.docker.swarm.service.name=${STACK}_$1" "${@:2}"; }
leftovers() {
    docker ps -aq --filter "$(stack_label)"
    docker service ls -q --filter "$(stack_label)"
    docker network ls -q --filter "$(stack_label)"
    docker volume ls -q --filter "$(stack_label)"
    docker secret ls -q --filter "name=$SECRET" 2>/dev/null
}

# --- teardown, always --------------------------------------------------------------------
teardown() {
    local status=$?
    set +e
    stop_background "$SAMPLER_PID"
    if docker info >/dev/null 2>&1; then
        if [[ -n $DEPLOYED ]]; then
            log "removing stack $STACK"
            docker stack rm "$STACK" >"$STATE/rm.log" 2>&1 || cat "$STATE/rm.log" >&2
            # stack rm returns at once; its containers and network go a little later
            for _ in $(seq 90); do
                [[ -z $(docker ps -aq --filter "$(stack_label)") && -z $(docker network ls -q --filter "$(stack_label)") ]] && break
                sleep 1
            done
        fi
        local volumes
        volumes=$(docker volume ls -q --filter "$(stack_label)")
        [[ -z $volumes ]] || docker volume rm $volumes >/dev/null 2>&1
        docker secret rm "$SECRET" >/dev/null 2>&1
        if [[ -n $(leftovers) ]]; then
            log "FAILED: left behind: $(leftovers | tr '\n' ' ')"
            status=1
        fi
        if [[ -n $SWARM_JOINED ]]; then
            log "leaving the swarm this test created"
            docker swarm leave --force >/dev/null 2>&1 || { log "FAILED: docker swarm leave"; status=1; }
            # swarm init made this bridge for the overlay's way out; it outlives the swarm
            if [[ -n $GWBRIDGE_CREATED ]]; then docker network rm docker_gwbridge >/dev/null 2>&1; fi
        fi
    fi
    finish "$status"
}
teardown_on_exit teardown

# --- 1. engine in swarm mode -------------------------------------------------------------
install_packages
start_docker
[[ -x $VENV_BIN/runner ]] || die ".venv is missing: run make setup"
docker stack --help >/dev/null 2>&1 || die "this docker client has no 'stack' command"
case $(docker info --format '{{.Swarm.LocalNodeState}}') in
    active) log "this engine is in a swarm already: using it" ;;
    inactive)
        log "docker swarm init"
        docker network inspect docker_gwbridge >/dev/null 2>&1 || GWBRIDGE_CREATED=1
        docker swarm init --advertise-addr 127.0.0.1 >"$STATE/swarm.log" 2>&1 \
            || { cat "$STATE/swarm.log" >&2; die "docker swarm init"; }
        SWARM_JOINED=1
        ;;
    *) die "the engine's swarm state is $(docker info --format '{{.Swarm.LocalNodeState}}')" ;;
esac
[[ -z $(leftovers) ]] || die "stack $STACK exists already (another run?): $(leftovers | tr '\n' ' ')"

# --- 2. images ---------------------------------------------------------------------------
RUNNER_BASE_PYTHON_IMAGE=$BASE_PYTHON RUNNER_BASE_REDIS_IMAGE=$BASE_REDIS deploy/build-base-images.sh python redis
build_runner_image

# --- 3. secret and stack -----------------------------------------------------------------
"$VENV_BIN/python" -c 'import secrets; print(secrets.token_hex(24), end="")' \
    | docker secret create "$SECRET" - >/dev/null || die "docker secret create"
rm -rf "$REPORTS"
mkdir -p "$REPORTS"
RUNNER_UID=$(id -u) RUNNER_GID=$(id -g)
if [[ $(id -u) -eq 0 ]]; then
    chown 10001:10001 "$REPORTS"
    RUNNER_UID=10001 RUNNER_GID=10001
fi
export RUNNER_IMAGE=$IMAGE REDIS_IMAGE=$BASE_REDIS RUNNER_REPORTS_DIR=$ROOT/$REPORTS RUNNER_JOBS_DIR=$ROOT/examples \
    RUNNER_REDIS_SECRET=$SECRET \
    WORKER_REPLICAS=$WORKERS WORKER_CPUS=${WORKER_CPUS:-1} COORDINATOR_REPLICAS=0 RUNNER_UID RUNNER_GID \
    RUNNER_BENCH_MODES=async,thread,process,celery RUNNER_QUEUE=runner
deploy_flags=(--resolve-image never) # the images exist on this node only; no registry is asked
docker stack deploy --help 2>/dev/null | grep -q -- '--detach' && deploy_flags+=(--detach=true)
log "docker stack deploy $STACK: redis, target, $WORKERS workers (overlay network, secret $SECRET)"
DEPLOYED=1
docker stack deploy "${deploy_flags[@]}" -c deploy/stack.yaml "$STACK" >"$STATE/deploy.log" 2>&1 \
    || { cat "$STATE/deploy.log" >&2; die "docker stack deploy"; }
for _ in $(seq 180); do
    healthy=$(service_containers worker --filter health=healthy | wc -l)
    [[ $healthy -ge $WORKERS && -n $(service_containers redis --filter health=healthy) ]] && break
    sleep 2
done
if [[ $healthy -lt $WORKERS ]]; then
    docker service ps --no-trunc "${STACK}_worker" >&2
    docker service logs --tail 20 "${STACK}_worker" >&2 2>&1
    die "$healthy of $WORKERS workers healthy after 360 s"
fi
log "redis and $WORKERS workers healthy"

# --- 4. the sweep ------------------------------------------------------------------------
"$VENV_BIN/runner" cluster sample --stack --project "$STACK" --out "$REPORTS" --until-exit coordinator \
    --timeout "$((SWEEP_TIMEOUT + 300))" 2>"$STATE/sampler.log" &
SAMPLER_PID=$!
docker service scale --detach "${STACK}_coordinator=1" >/dev/null 2>&1 || die "docker service scale coordinator=1"
coordinator=
for _ in $(seq 60); do
    coordinator=$(service_containers coordinator | head -n1)
    [[ -n $coordinator ]] && break
    sleep 1
done
[[ -n $coordinator ]] || { docker service ps --no-trunc "${STACK}_coordinator" >&2; die "no coordinator container"; }
log "coordinator $coordinator running the sweep (at most $SWEEP_TIMEOUT s)"
code=$(timeout "$SWEEP_TIMEOUT" docker wait "$coordinator") || die "the sweep did not finish within $SWEEP_TIMEOUT s"
docker logs "$coordinator" >"$STATE/coordinator.log" 2>&1
tail -n 15 "$STATE/coordinator.log" >&2
wait "$SAMPLER_PID" || { cat "$STATE/sampler.log" >&2; SAMPLER_PID=; die "runner cluster sample"; }
SAMPLER_PID=
cat "$STATE/sampler.log" >&2
[[ $code -eq 0 ]] || die "the coordinator exited with code $code"

# --- 5. the report ------------------------------------------------------------------------
hostnames=$(seq -s, -f 'worker-%g' 1 "$WORKERS")
"$VENV_BIN/python" deploy/check_cluster_report.py "$REPORTS/results.json" --workers "$WORKERS" \
    --worker-hostnames "$hostnames" --node-cpus "$(for _ in $(seq "$WORKERS"); do printf '%s,' "${WORKER_CPUS:-1}"; done)" \
    || die "the swarm report"
"$VENV_BIN/runner" report "$REPORTS/results.json" --out "$REPORTS" >"$STATE/report.log" 2>&1 \
    || { cat "$STATE/report.log" >&2; die "runner report"; }
log "report re-rendered with the container figures: $REPORTS/report.md, report.html"
