#!/usr/bin/env bash
# Build the base images the cluster needs from Debian packages, for machines that can reach a
# Debian archive but no image registry:
#   runner-base/python:bookworm  -- Debian bookworm minbase + python3, python3-venv (for deploy/Dockerfile)
#   runner-base/redis:bookworm   -- Debian bookworm minbase + redis-server, /data owned by user redis
#   runner-base/prometheus:bookworm -- Debian bookworm minbase + prometheus (compose's monitoring
#                                      profile), entry point and /prometheus as in the public image
# Each is `debootstrap --variant=minbase` then `docker import`. An image that already exists is kept
# (delete it with `docker rmi` to rebuild).
# Usage: deploy/build-base-images.sh [python] [redis] [prometheus]; without arguments python and redis.
# Environment: DEBIAN_MIRROR -- the Debian archive to use; default: the first one the host's own apt
# configuration names (sources.list, sources.list.d/*.list, or deb822 sources.list.d/*.sources), so
# the script follows whatever this machine is set up to use. No mirror is named here.
# `deploy/build-base-images.sh --print-mirror` prints the archive it would use and exits.
set -euo pipefail

SUITE=bookworm
PYTHON_IMAGE=${RUNNER_BASE_PYTHON_IMAGE:-runner-base/python:bookworm}
REDIS_IMAGE=${RUNNER_BASE_REDIS_IMAGE:-runner-base/redis:bookworm}
PROMETHEUS_IMAGE=${RUNNER_BASE_PROMETHEUS_IMAGE:-runner-base/prometheus:bookworm}
APT_DIR=${RUNNER_APT_DIR:-/etc/apt}  # another apt configuration (a chroot's, or a test's)

# The URIs of binary ("deb") entries whose suite is a release (bookworm, stable), not -security,
# -updates or -backports, in the order apt reads them; http(s) and file archives only.
apt_archives() {
    local files=() f
    [[ -f $APT_DIR/sources.list ]] && files+=("$APT_DIR/sources.list")
    for f in "$APT_DIR"/sources.list.d/*.list; do [[ -f $f ]] && files+=("$f"); done
    if ((${#files[@]})); then  # one-line format: deb [options] URI SUITE COMPONENT...
        awk '$1 == "deb" {
                i = 2
                if ($i ~ /^\[/) { while (i < NF && $i !~ /\]$/) i++; i++ }
                if ($(i + 1) !~ /-/) print $i
            }' "${files[@]}"
    fi
    for f in "$APT_DIR"/sources.list.d/*.sources; do  # deb822: stanzas of Types, URIs, Suites, Enabled
        [[ -f $f ]] || continue
        awk 'BEGIN { RS = ""; FS = "\n" }
            {
                types = uris = suites = enabled = ""
                for (n = 1; n <= NF; n++) {
                    line = $n
                    if (line ~ /^[ \t]*#/) continue
                    key = tolower(line); sub(/:.*/, "", key)
                    value = line; sub(/^[^:]*:[ \t]*/, "", value)
                    if (key == "types") types = value
                    else if (key == "uris") uris = value
                    else if (key == "suites") suites = value
                    else if (key == "enabled") enabled = tolower(value)
                }
                if (enabled == "no" || (" " types " ") !~ / deb /) next
                release = 0
                split(suites, list, /[ \t]+/)
                for (k in list) if (list[k] != "" && list[k] !~ /-/) release = 1
                if (!release) next
                split(uris, list, /[ \t]+/)
                for (k = 1; k in list; k++) if (list[k] != "") print list[k]
            }' "$f"
    done | grep -E '^(https?|file):' || true
}

mirror() {
    if [[ -n ${DEBIAN_MIRROR:-} ]]; then echo "$DEBIAN_MIRROR"; return; fi
    local uri
    uri=$(apt_archives | head -n1)
    if [[ -z $uri ]]; then
        log "no Debian archive found in $APT_DIR/sources.list, sources.list.d/*.list or *.sources; set DEBIAN_MIRROR=URL"
        return 1
    fi
    echo "$uri"
}

log() { echo "build-base-images: $*" >&2; }

if [[ ${1:-} == --print-mirror ]]; then mirror; exit; fi

# build NAME IMAGE PACKAGES SETUP-COMMAND DOCKER-IMPORT-CHANGES...
build() {
    local name=$1 image=$2 packages=$3 setup=$4
    shift 4
    if docker image inspect "$image" >/dev/null 2>&1; then
        log "$image exists, kept"
        return
    fi
    local dir
    dir=$(mktemp -d "/tmp/runner-rootfs-$name.XXXXXX")
    # shellcheck disable=SC2064  # expand $dir now
    trap "rm -rf '$dir'" RETURN
    local archive
    archive=$(mirror) || return 1
    log "debootstrap $SUITE ($packages) from $archive -> $image"
    debootstrap --variant=minbase --include="$packages" "$SUITE" "$dir" "$archive" \
        >"$dir.log" 2>&1 || { tail -n 20 "$dir.log" >&2; rm -f "$dir.log"; return 1; }
    rm -f "$dir.log"
    chroot "$dir" /bin/sh -c "$setup"
    # Smaller image: no package lists, caches or docs.
    chmod 755 "$dir"  # mktemp made it 0700: it becomes the image's /
    rm -rf "$dir"/var/lib/apt/lists/* "$dir"/var/cache/apt/*.bin "$dir"/var/cache/apt/archives/*.deb \
        "$dir"/usr/share/doc/* "$dir"/usr/share/man/* "$dir"/usr/share/locale/*
    local changes=()
    for change in "$@"; do changes+=(--change "$change"); done
    tar --numeric-owner -C "$dir" -c . | docker import "${changes[@]}" - "$image" >/dev/null
    log "built $image"
}

build_python() {
    build python "$PYTHON_IMAGE" python3,python3-venv \
        "true" \
        'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        'ENV LANG=C.UTF-8' \
        'CMD ["python3"]'
}

build_redis() {
    build redis "$REDIS_IMAGE" redis-server \
        "mkdir -p /data && chown redis:redis /data" \
        'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        'WORKDIR /data' \
        'VOLUME /data' \
        'EXPOSE 6379' \
        'USER redis' \
        'CMD ["redis-server", "--protected-mode", "no"]'
}

# Like prom/prometheus: the binary is the entry point, a command gives only its flags, and it runs
# as nobody (65534), who owns /prometheus.
build_prometheus() {
    build prometheus "$PROMETHEUS_IMAGE" prometheus \
        "mkdir -p /prometheus && chown 65534:65534 /prometheus" \
        'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        'WORKDIR /prometheus' \
        'VOLUME /prometheus' \
        'EXPOSE 9090' \
        'USER 65534:65534' \
        'ENTRYPOINT ["/usr/bin/prometheus"]' \
        'CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]'
}

command -v debootstrap >/dev/null || { log "debootstrap is not installed (apt-get install debootstrap)"; exit 1; }
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(python redis)
pids=()
for target in "${targets[@]}"; do
    case $target in
        python) build_python & pids+=($!) ;;
        redis) build_redis & pids+=($!) ;;
        prometheus) build_prometheus & pids+=($!) ;;
        *) log "unknown image '$target' (python, redis, prometheus)"; exit 2 ;;
    esac
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
exit $status
