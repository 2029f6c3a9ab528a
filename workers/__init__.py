"""Executors and the job catalogue; importable from pool processes and Celery workers alike."""
