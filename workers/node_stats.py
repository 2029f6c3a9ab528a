"""What a Celery node says about itself: who it is (host, cores, pool, Python, CPU model) and what it
used (CPU seconds and peak RSS of its main process and pool children) -- measured inside the node,
so a node on another host, or in a container the coordinator's Docker engine cannot see, is
measured the same way as a local one.

The coordinator asks with the remote-control command ``runner_node`` (see ``workers.celery_app``):
once with ``reset`` as a run begins, once as it ends; the CPU seconds between the two answers are
the run's, and the peak RSS is the highest sum (main process + children) that a sampling thread in
the node saw since the reset. Cores are what the node may use: its CPU affinity, capped by a cgroup
CPU quota (``docker run --cpus 0.5`` reports 0.5).
"""

from __future__ import annotations

import os
import platform
import socket
import threading
import time
from pathlib import Path
from typing import Any

import psutil

_SAMPLE_S = 0.2


def usable_cpus() -> float:
    """Cores this process may use: affinity, capped by a cgroup (v2 or v1) CPU quota."""
    cores = float(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
    quota = _cgroup_quota()
    return round(min(cores, quota), 2) if quota else cores


def _cgroup_quota() -> float | None:
    v2 = _read(Path("/sys/fs/cgroup/cpu.max"))
    if v2:
        limit, _, period = v2.partition(" ")
        if limit != "max" and period:
            return int(limit) / int(period)
        return None
    for base in ("/sys/fs/cgroup/cpu", "/sys/fs/cgroup/cpu,cpuacct"):
        quota, cfs_period = _read(Path(base, "cpu.cfs_quota_us")), _read(Path(base, "cpu.cfs_period_us"))
        if quota and cfs_period and int(quota) > 0:
            return int(quota) / int(cfs_period)
    return None


def cpu_model() -> str:
    for line in (_read(Path("/proc/cpuinfo")) or "").splitlines():
        if line.startswith("model name"):
            return line.partition(":")[2].strip()
    return platform.processor() or platform.machine()


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except (OSError, ValueError):
        return None


class NodeMeter:
    """CPU seconds and peak RSS of this process and its children (a node's pool), since a reset."""

    def __init__(self) -> None:
        self._process = psutil.Process()
        self._lock = threading.Lock()
        self._peak_rss = 0
        self._cpu_at_reset = 0.0
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Sample RSS in a daemon thread (started after the pool forked, so only here)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._sample, name="runner-node-meter", daemon=True)
            self._thread.start()

    def _processes(self) -> list[psutil.Process]:
        try:
            return [self._process, *self._process.children(recursive=True)]
        except psutil.Error:
            return [self._process]

    def cpu_s(self) -> float:
        """CPU seconds of this process, its live children, and children already ended and reaped."""
        mine = self._process.cpu_times()
        total = mine.user + mine.system + mine.children_user + mine.children_system
        for child in self._processes()[1:]:
            try:
                times = child.cpu_times()
            except psutil.Error:
                continue  # ended between the listing and the read
            total += times.user + times.system
        return total

    def rss(self) -> int:
        total = 0
        for proc in self._processes():
            try:
                total += proc.memory_info().rss
            except psutil.Error:
                continue
        return total

    def _sample(self) -> None:
        while True:
            rss = self.rss()
            with self._lock:
                self._peak_rss = max(self._peak_rss, rss)
            time.sleep(_SAMPLE_S)

    def reading(self, reset: bool) -> dict[str, Any]:
        """CPU seconds and peak RSS since the last reset (then reset, if asked)."""
        cpu, rss = self.cpu_s(), self.rss()
        with self._lock:
            self._peak_rss = max(self._peak_rss, rss)
            reading = {"cpu_s": round(cpu - self._cpu_at_reset, 3), "peak_rss_mb": round(self._peak_rss / 2**20, 1)}
            if reset:
                self._cpu_at_reset, self._peak_rss = cpu, rss
        return reading


def describe_node(name: str, pool: str, concurrency: int, visibility_timeout_s: float) -> dict[str, Any]:
    """The node's fixed facts, as the result's ``nodes[]`` entries show them."""
    return {
        "name": name,
        "hostname": socket.gethostname(),
        "cpus": usable_cpus(),
        "pool": pool,
        "concurrency": concurrency,
        "python": platform.python_version(),
        "cpu_model": cpu_model(),
        "visibility_timeout_s": visibility_timeout_s,
    }
