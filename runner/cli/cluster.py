"""``runner cluster sample``: CPU and memory of every container of a compose project (or of a Docker
Swarm stack, ``--stack``: the containers of its tasks on this node), per container.

Runs on the Docker host, next to the cluster, and talks to the Docker engine through the ``docker``
SDK (imported here only). It follows the engine's stats stream of each container of the project
(one sample a second, new containers picked up as they start) until the coordinator's container has
exited, then writes ``containers.json`` and merges the figures into the sweep's ``results.json`` as
the top-level key ``"containers"``::

    {"name": "bench_worker_1", "service": "worker", "hostname": "0c1f2e3d4a5b",
     "cpu_percent_mean": 41.2, "cpu_percent_max": 98.7, "mem_peak_mb": 161.3, "samples": 57}

CPU is in percent of one core (200 = two cores busy), as ``docker stats`` shows it. Memory is the
container's usage less its inactive file cache, also as ``docker stats`` shows it; the peak is the
highest sample. A Celery worker's node name is ``celery@<hostname>``, which links the figures to the
run results' ``by_worker`` counts. Running this on the host (rather than in a container with the
Docker socket mounted) keeps root access to the host out of the cluster.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from runner.cli.params import real
from runner.extras import needs_extra
from workers.errors import InputError, ServiceError

PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
STACK_LABEL = "com.docker.stack.namespace"
SWARM_SERVICE_LABEL = "com.docker.swarm.service.name"  # "<stack>_<service>"
_POLL_S = 1.0


def cpu_percent(stats: Mapping[str, Any]) -> float | None:
    """CPU use between a stats sample and the one before it, in percent of one core; None when the
    sample cannot say (the first one of a stream, or a stopped container)."""
    cpu, pre = stats.get("cpu_stats") or {}, stats.get("precpu_stats") or {}
    try:
        cpu_delta = cpu["cpu_usage"]["total_usage"] - pre["cpu_usage"]["total_usage"]
        system_delta = cpu["system_cpu_usage"] - pre["system_cpu_usage"]
    except (KeyError, TypeError):
        return None
    if system_delta <= 0 or cpu_delta < 0:
        return None
    cores = cpu.get("online_cpus") or len(cpu["cpu_usage"].get("percpu_usage") or ()) or 1
    return float(cpu_delta / system_delta * cores * 100.0)


def memory_mb(stats: Mapping[str, Any]) -> float | None:
    """Memory in use, less the inactive file cache (cgroup v1 and v2 name it differently), in MiB."""
    memory = stats.get("memory_stats") or {}
    usage = memory.get("usage")
    if not usage:
        return None
    detail = memory.get("stats") or {}
    cache = detail.get("total_inactive_file", detail.get("inactive_file", 0))
    return float(max(0, usage - cache) / (1 << 20))


@dataclass
class ContainerFigures:
    """What one container's stats stream showed."""

    name: str
    service: str
    hostname: str
    cpu: list[float] = field(default_factory=list)
    mem_peak_mb: float = 0.0

    def add(self, stats: Mapping[str, Any]) -> None:
        percent, mem = cpu_percent(stats), memory_mb(stats)
        if percent is not None:
            self.cpu.append(percent)
        if mem is not None:
            self.mem_peak_mb = max(self.mem_peak_mb, mem)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "service": self.service,
            "hostname": self.hostname,
            "cpu_percent_mean": round(sum(self.cpu) / len(self.cpu), 2) if self.cpu else 0.0,
            "cpu_percent_max": round(max(self.cpu), 2) if self.cpu else 0.0,
            "mem_peak_mb": round(self.mem_peak_mb, 1),
            "samples": len(self.cpu),
        }


class ClusterSampler:
    """Follows the stats stream of every container of one compose project (or swarm stack), one
    thread each."""

    def __init__(self, project: str, stack: bool = False) -> None:
        with needs_extra("cluster"):
            import docker
            import docker.errors

        try:
            self._client = docker.from_env(version="auto", timeout=30)
            self._client.ping()
        except docker.errors.DockerException as exc:
            raise ServiceError(f"cannot reach the Docker engine (is dockerd running? DOCKER_HOST?): {exc}") from exc
        self.project, self.stack = project, stack
        self.figures: dict[str, ContainerFigures] = {}
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()

    def containers(self) -> list[Any]:
        """The project's containers, running or not."""
        label = STACK_LABEL if self.stack else PROJECT_LABEL
        return list(self._client.containers.list(all=True, filters={"label": f"{label}={self.project}"}))

    def service(self, container: Any) -> str:
        """The compose service (or stack service, without the stack's prefix) a container runs."""
        labels: dict[str, str] = container.labels
        if not self.stack:
            return labels.get(SERVICE_LABEL, "")
        return labels.get(SWARM_SERVICE_LABEL, "").removeprefix(f"{self.project}_")

    def poll(self) -> list[Any]:
        """Start following containers that started since the last poll; return all of them."""
        found = self.containers()
        for container in found:
            if container.id in self.figures or container.status != "running":
                continue
            figures = ContainerFigures(
                name=container.name,
                service=self.service(container),
                hostname=container.attrs.get("Config", {}).get("Hostname", ""),
            )
            self.figures[container.id] = figures
            thread = threading.Thread(target=self._follow, args=(container, figures), daemon=True)
            thread.start()
            self._threads.append(thread)
        return found

    def _follow(self, container: Any, figures: ContainerFigures) -> None:
        import docker.errors

        try:
            for stats in container.stats(stream=True, decode=True):
                if self._stop.is_set():
                    break
                with self._lock:
                    figures.add(stats)
        except (docker.errors.DockerException, OSError, ValueError):
            pass  # the container went away; what was sampled stays

    def run(self, until_exit: str | None, timeout_s: float) -> int | None:
        """Sample until the container of service ``until_exit`` has exited (returning its exit code),
        a SIGINT/SIGTERM, or ``timeout_s``; None when it did not exit."""
        stopping = threading.Event()
        previous = {sig: signal.signal(sig, lambda *_: stopping.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
        deadline = time.monotonic() + timeout_s
        try:
            while not stopping.is_set() and time.monotonic() < deadline:
                for container in self.poll():
                    # only a container seen running counts: not one left exited by an earlier run
                    followed = container.id in self.figures
                    if followed and until_exit and self.service(container) == until_exit:
                        container.reload()
                        if container.status in ("exited", "dead"):
                            return int(container.attrs["State"]["ExitCode"])
                stopping.wait(_POLL_S)
            return None
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self.stop()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=3.0)  # each stream yields once a second, then sees the flag
        self._client.close()

    def results(self) -> list[dict[str, Any]]:
        with self._lock:
            rows = [f.to_dict() for f in self.figures.values()]
        return sorted(rows, key=lambda row: (row["service"], row["name"]))


def write_figures(out_dir: Path, project: str, rows: list[dict[str, Any]]) -> Path | None:
    """Write ``containers.json``; merge the rows into ``results.json`` when it exists (returned)."""
    from dataclasses import replace

    from runner.engine import codec
    from runner.engine.bench_results import Container, load_results
    from runner.engine.outputs import atomic_write

    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write(out_dir / "containers.json", json.dumps({"project": project, "containers": rows}, indent=2) + "\n")
    results = out_dir / "results.json"
    if not results.is_file():
        return None
    try:
        document = load_results(results)
    except InputError as exc:
        raise ServiceError(f"cannot merge container figures into {results}: {exc}") from exc
    merged = replace(document, containers=[codec.decode(Container, row) for row in rows])
    atomic_write(results, codec.dumps(merged, indent=1) + "\n")
    return results


@click.group()
def cluster() -> None:
    """Measure a docker compose cluster of runner from the Docker host."""


@cluster.command()
@click.option("--project", "-p", required=True, help="Compose project name (docker compose -p / COMPOSE_PROJECT_NAME).")
@click.option("--stack", is_flag=True, help="PROJECT is a Docker Swarm stack (docker stack deploy ... NAME).")
@click.option(
    "--out",
    "out_dir",
    default="reports",
    show_default=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="Write containers.json here and merge into results.json when the sweep wrote one.",
)
@click.option(
    "--until-exit",
    default="coordinator",
    show_default=True,
    help="Stop once this service's container has exited ('' = only on SIGINT/SIGTERM or --timeout).",
)
@click.option(
    "--timeout",
    "timeout_s",
    default=3600.0,
    show_default=True,
    type=real(0.001, 30 * 86_400),
    help="Stop after this many seconds.",
)
def sample(project: str, stack: bool, out_dir: Path, until_exit: str, timeout_s: float) -> None:
    """Sample CPU and memory of each container of PROJECT while it runs, then write the figures."""
    sampler = ClusterSampler(project, stack=stack)
    kind = "swarm stack" if stack else "compose project"
    click.echo(f"sampling containers of {kind} {project!r}", err=True)
    exit_code = sampler.run(until_exit or None, timeout_s)
    rows = sampler.results()
    merged = write_figures(out_dir, project, rows)
    for row in rows:
        click.echo(
            f"  {row['name']:<32} {row['service']:<12} cpu mean {row['cpu_percent_mean']:6.1f} %  "
            f"max {row['cpu_percent_max']:6.1f} %  mem peak {row['mem_peak_mb']:7.1f} MB  ({row['samples']} samples)",
            err=True,
        )
    where = merged or out_dir / "containers.json"
    ended = f"{until_exit} exited with code {exit_code}" if exit_code is not None else "sampling stopped"
    click.echo(f"{ended}; figures for {len(rows)} containers in {where}", err=True)
    if not rows:
        raise ServiceError(f"no running container of {kind} {project!r} was seen")
