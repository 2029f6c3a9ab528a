"""What machine a result came from, so results from different machines are never confused, and
how busy it was when a run began (load averages, CPU frequency and governor), so a noisy
measurement can be told from a real difference."""

from __future__ import annotations

import copy
import functools
import os
import platform
import socket
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import psutil

_PACKAGES = ("celery", "kombu", "redis", "aiohttp", "uvloop", "hdrhistogram", "psutil")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            cwd=Path(__file__).resolve().parent,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


@functools.cache
def _machine() -> dict[str, Any]:
    versions = {}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return {
        "cpus": usable_cpus(),
        "cpu_model": cpu_model(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "packages": versions,
        "git_commit": git_commit(),
        "hostname": socket.gethostname(),
    }


# Share of all cores that other work used in the moment before a run began above which the
# machine counts as busy: that work was competing for the cores the run is about to measure.
# (Load averages are recorded too, but a one-minute average reacts too slowly to tell.)
BUSY_CPU_PCT = 50.0
_SAMPLE_S = 0.1


def machine_state() -> dict[str, Any]:
    """What changes from run to run: load averages, and the CPU frequency and governor where the
    kernel shows them (None elsewhere, e.g. in most VMs)."""
    load = [round(x, 2) for x in os.getloadavg()]
    cpufreq = Path("/sys/devices/system/cpu/cpu0/cpufreq")
    used = psutil.cpu_percent(interval=_SAMPLE_S)  # the coordinator sleeps meanwhile: this is others' use
    return {
        "load_avg": {"1m": load[0], "5m": load[1], "15m": load[2]},
        "cpu_busy_pct": used,
        "busy": used >= BUSY_CPU_PCT,
        "cpu_mhz": _cpu_mhz(),
        "governor": _read(cpufreq / "scaling_governor"),
    }


def _cpu_mhz() -> float | None:
    try:
        freq = psutil.cpu_freq()
    except (OSError, NotImplementedError):
        return None
    return round(freq.current, 0) if freq and freq.current else None


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip() or None
    except OSError:
        return None


def describe_machine(state: dict[str, Any] | None = None) -> dict[str, Any]:
    """The machine, read once per process (it runs git and reads package metadata): a sweep
    records it with every run. A copy, so no caller can change what the next one gets. The
    machine's state (load, frequency) is ``state`` -- read when the run began -- or read now."""
    return copy.deepcopy(_machine()) | (state or machine_state())
