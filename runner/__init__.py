"""runner: send one workload through six executors -- async, threads, processes, Celery, hybrid and
gevent -- and measure each."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from workers.offload import offload  # for user jobs: ``from runner import offload`` (imports nothing heavy)

__version__ = "0.1.0"  # the one place the version is written (pyproject.toml reads it)
__all__ = ["__version__", "compare", "offload"]

if TYPE_CHECKING:
    from runner.api import compare as compare


def __getattr__(name: str) -> Any:
    # `import runner` stays light (pool processes and Celery nodes import it): the API, and the
    # coordinator behind it, load on first use of runner.compare.
    if name == "compare":
        from runner.api import compare

        return compare
    raise AttributeError(f"module 'runner' has no attribute {name!r}")
