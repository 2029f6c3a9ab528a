"""Checks of the services a workload talks to, before any job runs and before timing starts.

Without them a wrong ``REDIS_URL`` or ``TARGET_URL`` does not stop a run: every ``redis`` or
``http`` job fails on its own and the run "succeeds" with exit 0 and nothing but failures. Here a
malformed URL is bad input (exit 2) and a service that does not answer, or answers wrongly, is a
missing service (exit 1) -- one line each, secrets hidden.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping

from workers.clients import check_redis
from workers.errors import ServiceError
from workers.urls import check_http_url, check_redis_url, redact, scrub

_TIMEOUT_S = 5.0


def check_environment(modes: Iterable[str], kinds: Iterable[str]) -> None:
    """InputError for a malformed ``REDIS_URL``/``TARGET_URL`` that this workload would use."""
    modes, kinds = set(modes), set(kinds)
    if "celery" in modes:  # RUNNER_CELERY_PREFETCH and friends, checked even once the module is loaded
        from workers.celery_app import settings_from_environment

        settings_from_environment()
    redis_url = os.environ.get("REDIS_URL")
    if redis_url and ("celery" in modes or "redis" in kinds):
        check_redis_url(redis_url)
    target_url = os.environ.get("TARGET_URL")
    if target_url and "http" in kinds:
        check_http_url(target_url)


def check_services(targets: Mapping[str, str]) -> None:
    """One request to each service the job kinds use (``{"redis": url, "http": url}``, empty = not
    used); ServiceError naming the service and what to do when it fails."""
    if targets.get("redis"):
        _ping_redis(targets["redis"])
    if targets.get("http"):
        _get_target(targets["http"])


def _ping_redis(url: str) -> None:
    try:
        check_redis(url, _TIMEOUT_S)
    except ServiceError as exc:
        raise ServiceError(f"redis jobs: {exc}") from exc.__cause__


def _get_target(base: str) -> None:
    import urllib3

    url = f"{base}/delay/0"
    try:
        with urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(total=_TIMEOUT_S)) as http:
            response = http.request("GET", url, preload_content=True)
    except (urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
        raise ServiceError(
            f"http jobs: GET {redact(url)} failed ({scrub(_first_line(exc))}); start `runner target` there, "
            "fix TARGET_URL, or unset it to start a local target"
        ) from exc
    if not 200 <= response.status < 300:
        raise ServiceError(
            f"http jobs: GET {redact(url)} answered {response.status}, so TARGET_URL does not point at a "
            "`runner target` (it serves /delay/MS); fix TARGET_URL or unset it to start a local target"
        )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
