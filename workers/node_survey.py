"""The coordinator's side of ``runner_node`` (``workers.celery_app``): asks Celery nodes, wherever
they run, what they are and what they used, and turns their answers into the executor's bound.

Nodes answer from their own main process, so a node on another host is described and measured as
well as a local one; a node that does not answer (not a runner worker, or an older one) is named.
"""

from __future__ import annotations

import contextlib
import sys
from typing import Any

from workers.base import Capacity
from workers.calibration import Calibration
from workers.clients import redact
from workers.errors import InputError, ServiceError

COMMAND = "runner_node"


def ask_nodes(
    app: Any, names: list[str], *, reset: bool = False, visibility_s: float = 0.0, timeout_s: float = 2.0
) -> dict[str, dict[str, Any]]:
    """node name -> its answer, for the nodes in ``names`` that answered within ``timeout_s``.
    ``reset`` starts a new measurement window; ``visibility_s`` > 0 sets their redelivery time."""
    if not names:
        return {}
    replies = app.control.broadcast(
        COMMAND,
        arguments={"reset": reset, "visibility_s": visibility_s},
        destination=names,
        reply=True,
        timeout=timeout_s,
        limit=len(names),
    )
    answers: dict[str, dict[str, Any]] = {}
    for reply in replies or []:
        for name, answer in reply.items():
            if isinstance(answer, dict) and "hostname" in answer:  # not {"error": "unknown command"}
                answers[name] = answer
    return answers


def survey(app: Any, names: list[str], visibility_s: float, *, announce: str = "") -> dict[str, dict[str, Any]]:
    """Ask every node what it is, and set its redelivery time to ``visibility_s``: the run's
    --timeout governs it, whatever RUNNER_VISIBILITY_TIMEOUT the node started with. ``announce``
    (the broker's URL, for --expect-workers) prints the nodes found on stderr."""
    facts = ask_nodes(app, names, visibility_s=visibility_s)
    missing = [name for name in names if name not in facts]
    if missing:
        raise ServiceError(
            f"Celery node(s) {', '.join(missing)} did not answer runner_node (not this runner's workers?): "
            "their redelivery cannot follow --timeout"
        )
    if announce:
        print(f"celery: {len(facts)} nodes on {redact(announce)}\n{nodes_line(facts)}", file=sys.stderr)
    return facts


def capacity_of(nodes: list[dict[str, Any]]) -> Capacity:
    """The cluster's bound, summed over its hosts: slots are the nodes' concurrency; cores for code
    that holds the GIL are their processes (prefork children; one for a threads or gevent node),
    cores for code that releases it their threads -- each capped by the cores of the host they
    share (nodes are grouped by hostname: a container counts as a host, with its CPU limit)."""
    hosts: dict[str, list[float]] = {}  # hostname -> [processes, threads, cores]
    slots = 0
    for node in nodes:
        concurrency, pool = int(node["concurrency"]), str(node["pool"])
        slots += concurrency
        host = hosts.setdefault(str(node["hostname"]), [0.0, 0.0, 0.0])
        host[0] += concurrency if pool == "prefork" else 1
        host[1] += 1 if pool in ("gevent", "eventlet", "solo") else concurrency
        host[2] = max(host[2], float(node["cpus"]))
    gil = sum(min(processes, cores) for processes, _, cores in hosts.values())
    free = sum(min(threads, cores) for _, threads, cores in hosts.values())
    cores = sum(host_cores for _, _, host_cores in hosts.values())
    return Capacity(max(1, slots), round(gil, 2), round(free, 2), round(cores, 2))


def rates_of(facts: dict[str, dict[str, Any]]) -> dict[str, Calibration]:
    """Node name -> the rate it measured as it started, from its ``runner_node`` answer."""
    rates: dict[str, Calibration] = {}
    for name, answer in facts.items():
        if isinstance(answer.get("calibration"), dict):
            with contextlib.suppress(InputError):  # a node that sent nonsense is left out
                rates[name] = Calibration.from_dict(answer["calibration"])
    return rates


def nodes_line(nodes: dict[str, dict[str, Any]]) -> str:
    """One line per node, for the terminal: who is there and what it can do (with its own CPU rate,
    so a slow host shows before the run)."""
    rates = rates_of(nodes)
    return "\n".join(
        f"  {name}: {n['hostname']}, {n['cpus']:g} cores, {n['pool']} x {n['concurrency']}, "
        f"Python {n['python']}, {n['cpu_model']}"
        + (f", {rates[name].spin_iterations_per_ms:,.0f} spin/ms" if name in rates else "")
        for name, n in sorted(nodes.items())
    )
