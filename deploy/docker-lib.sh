# Shared by deploy/cluster-test.sh and deploy/swarm-test.sh (sourced, not run): a Docker engine
# (the one running, else Debian's docker.io started with the vfs driver), and the runner image built
# from a host-made wheelhouse on a base image from Debian packages. The caller sets START, STATE,
# ROOT, VENV_BIN, BASE_PYTHON, IMAGE and defines log and die; stop_docker stops only a dockerd
# that start_docker started.
DOCKERD_PID=
DOCKER0_CREATED=

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

# The runner image IMAGE on BASE_PYTHON. Environment markers (e.g. python_full_version < "3.11.3")
# are evaluated by the interpreter that resolves, so the wheelhouse is built by a host Python of
# exactly the image's version. Docker's layer cache makes a rebuild with unchanged sources quick.
build_runner_image() {
    local image_python wheel_python candidate version
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
}

# A test's teardown (the function named) on every way out: a normal exit, Ctrl-C, SIGTERM.
teardown_on_exit() {
    trap "$1" EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

# Stop the background helpers a test started (samplers, scrapers), each given by pid; empty ones skipped.
stop_background() {
    local pid
    for pid in "$@"; do
        if [[ -n $pid ]]; then kill -TERM "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; fi
    done
    return 0
}

# The end of every test's teardown: the dockerd it started, the wheelhouse, report ownership, its
# state folder, one line saying how it went, and its exit status. Uses START, REPORTS and STATE.
finish() {
    local status=$1
    stop_docker
    [[ -n ${KEEP_WHEELHOUSE:-} ]] || rm -rf deploy/wheelhouse
    [[ $(id -u) -ne 0 || ! -d $REPORTS ]] || chown -R 0:0 "$REPORTS"
    rm -rf "$STATE"
    if [[ $status -eq 0 ]]; then log "passed in $(($(date +%s) - START)) s"; else log "failed (exit $status)"; fi
    exit "$status"
}
