"""runner: send one workload through six executors -- async, threads, processes, Celery, hybrid and
gevent -- and measure each."""

from workers.offload import offload  # for user jobs: ``from runner import offload`` (imports nothing heavy)

__version__ = "0.1.0"  # the one place the version is written (pyproject.toml reads it)
__all__ = ["__version__", "offload"]
