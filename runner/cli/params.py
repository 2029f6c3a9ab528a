"""Option types and environment names shared by every command.

Numbers are parsed strictly (see ``runner.engine.inputs``): click's own INT and FLOAT take ``1_0``
and non-ASCII digits. Every option of every command reads ``RUNNER_<COMMAND>_<OPTION>``, named
after its long flag: click's ``auto_envvar_prefix`` names it after the Python parameter instead
(``--spec`` stored as ``spec_file`` read ``RUNNER_SUBMIT_SPEC_FILE``), which the README never said.
"""

from __future__ import annotations

from typing import Any

import click

from runner.engine.inputs import number
from workers.errors import InputError


class StrictNumber(click.ParamType[Any, Any]):
    """A whole number or a number in plain ASCII digits, optionally within [low, high]."""

    def __init__(self, whole: bool, low: float = float("-inf"), high: float = float("inf")) -> None:
        self.whole, self.low, self.high = whole, low, high
        self.name = "integer" if whole else "float"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if value is None:
            return None
        flag = _flag(param)
        try:
            return number(flag, value, self.whole, self.low, self.high)
        except InputError as exc:  # one line naming the flag, as click's own usage errors do
            self.fail(str(exc).removeprefix(f"{flag}: "), param, ctx)

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str | None:
        return "N" if self.whole else "X"


def whole(low: float = float("-inf"), high: float = float("inf")) -> StrictNumber:
    return StrictNumber(True, low, high)


def real(low: float = float("-inf"), high: float = float("inf")) -> StrictNumber:
    return StrictNumber(False, low, high)


def _flag(param: click.Parameter | None) -> str:
    if isinstance(param, click.Option):
        return max(param.opts, key=len)
    return param.name or "value" if param is not None else "value"


def envvar_name(path: list[str], option: click.Option) -> str:
    """``RUNNER_<COMMAND>_<OPTION>`` from the command path and the option's long flag."""
    longest = max(option.opts, key=len).lstrip("-")
    return "_".join(["RUNNER", *path, longest]).upper().replace("-", "_")


def name_envvars(command: click.Command, path: list[str] | None = None) -> None:
    """Give every option of ``command`` and its subcommands its ``RUNNER_...`` variable, shown in
    ``--help``; --help and --version are left alone."""
    path = path or []
    for param in command.params:
        if isinstance(param, click.Option) and param.expose_value and param.name not in ("help", "version"):
            param.envvar = envvar_name(path, param)
            param.show_envvar = True
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            name_envvars(sub, [*path, name])


def options(command: click.Command, path: list[str] | None = None) -> list[tuple[list[str], click.Option]]:
    """Every (command path, option) below ``command``, for tests and docs."""
    path = path or []
    found = [(path, p) for p in command.params if isinstance(p, click.Option) and p.expose_value]
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            found += options(sub, [*path, name])
    return found
