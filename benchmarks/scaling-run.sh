#!/usr/bin/env bash
# The figures of docs/performance.md "Scaling from 1 to 16 workers", in one go on a many-core
# machine: the line-rate goals on a 2-core slice of it (taskset), then process and Celery modes
# at 1..16 workers beside their bare primitives on all cores. Each part has its own time limit
# and keeps its output (and JSON, row by row) in OUT_DIR, so a part cut short keeps what it measured.
#
#   benchmarks/scaling-run.sh OUT_DIR [WORKERS] [PARTS]
#   WORKERS default 1,16,4,2,8 (the ends first: a run cut short still shows the span);
#   PARTS default goals,celery-2core,process,celery.
set -u
out=${1:?usage: scaling-run.sh OUT_DIR [WORKERS] [PARTS]}
workers=${2:-1,16,4,2,8}
parts=${3:-goals,celery-2core,process,celery}
here=$(cd "$(dirname "$0")" && pwd)
py=${PYTHON:-python3}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
echo "cpus: $(nproc); python: $($py --version 2>&1); $(uptime)"

part() {  # part NAME LIMIT_S COMMAND...: run one part if PARTS names it; output shown and kept
    local name=$1 limit=$2
    shift 2
    [[ ,$parts, == *,$name,* ]] || return 0
    echo "== $name (limit ${limit} s): $*"
    local began=$SECONDS
    timeout -k 10 "$limit" "$@" 2>&1 | tee -a "$out/$name.log"
    echo "== $name: exit ${PIPESTATUS[0]} after $((SECONDS - began)) s"
}

# The goals of issue 15 are stated for a 2-core machine: two cores of this one, otherwise idle.
pin=(taskset -c 0,1)
command -v taskset >/dev/null || { pin=(); echo "no taskset here: the 2-core parts run on every core"; }
part goals 150 "${pin[@]}" "$py" "$here/overhead.py" --modes async-10k,process --cost-modes async,process \
    --jobs 100000 --rounds 5 --short --json "$out/goals.json"
# process again with a window that holds two 4,096-job batches per process, as the map's chunks
part goals 60 "${pin[@]}" "$py" "$here/overhead.py" --modes process --cost-modes '' --concurrency 16384 \
    --jobs 400000 --rounds 5 --short --json "$out/goals-window.json"
part celery-2core 90 "${pin[@]}" "$py" "$here/scaling.py" --workers 2 --arms celery --rounds 2 \
    --celery-jobs 50000 --loop-jobs 1000 --json "$out/celery-2core.json"
part process 130 "$py" "$here/scaling.py" --workers "$workers" --arms process --rounds 2 \
    --process-jobs 1000000 --json "$out/scaling-process.json"
part celery 260 "$py" "$here/scaling.py" --workers "$workers" --arms celery --rounds 2 \
    --celery-jobs 50000 --loop-jobs 1000 --json "$out/scaling-celery.json"
echo "done: $(uptime)"
