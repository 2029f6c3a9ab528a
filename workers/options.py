"""Options that belong to one executor (e.g. Celery's node count and pool), declared by it.

The spec, the command line and sweep files read these declarations -- names, defaults, bounds,
choices, help -- instead of repeating them, so an executor's options live with the executor and
nothing outside ``workers/`` names them. An option's value reaches its executor through
``ExecutorConfig.options``; its flag is its name with dashes (``celery_pool`` -> ``--celery-pool``).
"""

from __future__ import annotations

from dataclasses import dataclass

OptionValue = int | str


@dataclass(frozen=True)
class Option:
    name: str  # spec key and flag: celery_pool -> --celery-pool
    help: str
    default: OptionValue | None  # None: the value of --workers
    choices: tuple[str, ...] = ()  # a text option picks one of these
    bounds: tuple[int, int] | None = None  # a whole-number option lies within these

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def default_text(self) -> str:
        return "same as --workers" if self.default is None else str(self.default)
