"""Flags that ``submit`` and ``bench`` share word for word: the executors' own options, the per-job
timeout, and waiting for a cluster's nodes. One declaration each, so the two commands cannot drift."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from runner.cli.params import real, whole
from runner.engine.spec import DEFAULTS, EXECUTOR_OPTIONS

F = TypeVar("F", bound=Callable[..., Any])


def executor_flags(command: F) -> F:
    """The executors' own options (e.g. --celery-pool) as flags, as each executor declares them."""
    for option in reversed(EXECUTOR_OPTIONS.values()):
        kind: click.ParamType[Any] = click.Choice(option.choices) if option.choices else whole()
        command = click.option(option.flag, type=kind, help=f"{option.help} [default: {option.default_text}]")(command)
    return command


def wait_flags(command: F) -> F:
    """--timeout, --expect-workers, --wait-s."""
    for option in reversed(
        [
            click.option("--timeout", type=real(), help=f"Per-job timeout, seconds. [default: {DEFAULTS['timeout']}]"),
            click.option(
                "--expect-workers",
                type=whole(),
                help="With --celery-workers 0: wait for this many of the cluster's Celery nodes before timing "
                "starts (exit 1 if they do not come within --wait-s). [default: 0, the nodes there are]",
            ),
            click.option("--wait-s", type=real(), help="How long --expect-workers waits, seconds. [default: 30]"),
        ]
    ):
        command = option(command)
    return command
