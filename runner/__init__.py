"""runner: send one workload through async, threads, processes or Celery, and measure each."""

__version__ = "0.1.0"
