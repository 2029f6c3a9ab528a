"""The user-job flags that ``submit`` and ``bench`` share: --job, --path, --inputs, --setup."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from workers.jobs import KINDS
from workers.user_jobs import parse_job

F = TypeVar("F", bound=Callable[..., Any])


def user_job_flags(command: F) -> F:
    """--job, --path, --inputs, --setup: the user's own functions as job kinds (submit and bench)."""
    for option in reversed(
        [
            click.option(
                "--job",
                "user_job",
                multiple=True,
                metavar="KIND=MODULE:FUNCTION",
                help="Your own function as job kind KIND (repeatable); MODULE:SYNC,ASYNC gives a def and an "
                "async def for one kind. Usable in --mix; without --mix, your kinds in equal weights.",
            ),
            click.option(
                "--path",
                "paths",
                multiple=True,
                type=click.Path(file_okay=False),
                help="Directory your modules are imported from, by the coordinator and every worker "
                "(repeatable). [default: the current directory]",
            ),
            click.option(
                "--inputs",
                metavar="FILE.jsonl|MODULE:GENERATOR",
                help="One input per user job: a JSON value per line (list = *args, object = **kwargs, else one "
                "argument), or a function returning an iterable. Cycles when --jobs asks for more; without "
                "--jobs, one job per input. [default: each call gets the job's index]",
            ),
            click.option(
                "--setup",
                metavar="MODULE:FUNCTION",
                help="Called once in every worker process before timing starts (open a connection, load a table).",
            ),
        ]
    ):
        command = option(command)
    return command


def user_job_values(flags: dict[str, Any], values: dict[str, Any]) -> None:
    """Merge the user-job flags into spec values (flags win over a spec file's, kind by kind)."""
    jobs = dict(values.get("user_jobs") or {})
    for text in flags.pop("user_job", ()) or ():
        kind, ref = parse_job(text, KINDS)
        jobs[kind] = str(ref)
    if jobs:
        values["user_jobs"] = jobs
    for name, key in (("paths", "paths"), ("inputs", "inputs"), ("setup", "setup")):
        value = flags.pop(name, None)
        if value:
            values[key] = list(value) if name == "paths" else value
