"""runner: send one workload through six executors -- async, threads, processes, Celery, hybrid and
gevent -- and measure each."""

__version__ = "0.1.0"  # the one place the version is written (pyproject.toml reads it)
