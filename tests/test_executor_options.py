"""Executors own their options (e.g. Celery's pool names), the spec and CLI read them from there,
and an executor used as ``async with`` is stopped even when its start fails."""

from __future__ import annotations

import asyncio

import psutil
import pytest

from runner.engine.coordinator import executor_config
from runner.engine.spec import EXECUTOR_OPTIONS, WorkloadSpec
from workers.celery_nodes import POOLS
from workers.errors import InputError, ServiceError
from workers.registry import MODES, executor_class, options_of


def test_each_executor_class_declares_what_the_registry_lists() -> None:
    for mode in MODES:
        assert executor_class(mode).options == options_of(mode), mode
    assert set(EXECUTOR_OPTIONS) == {"celery_workers", "celery_pool"}


def test_the_spec_takes_choices_and_defaults_from_the_executor() -> None:
    spec = WorkloadSpec.build({"workers": 3}, ("celery",))
    assert spec.options == {"celery_workers": 3, "celery_pool": "prefork"}  # celery_workers: same as workers
    assert spec.to_dict()["celery_pool"] == "prefork"  # beside the other keys, as in a spec file
    with pytest.raises(InputError, match=f"--celery-pool: choose one of {', '.join(POOLS)}"):
        WorkloadSpec.build({"celery_pool": "fibers"}, ("celery",))
    with pytest.raises(InputError, match="--celery-workers"):
        WorkloadSpec.build({"celery_workers": 5000}, ("celery",))
    assert (
        executor_config(WorkloadSpec.build({"celery_pool": "threads"}, ("celery",))).options["celery_pool"] == "threads"
    )


class _Unreachable:
    """Where the services are: a Redis that is not there."""

    def redis_url(self) -> str:
        return "redis://127.0.0.1:1/0"


def test_async_with_stops_the_executor_when_its_start_fails() -> None:
    spec = WorkloadSpec.build({"celery_workers": 1}, ("celery",))
    executor = executor_class("celery")(executor_config(spec), _Unreachable())

    async def enter() -> None:
        async with executor:
            raise AssertionError("the start should have failed")

    with pytest.raises(ServiceError, match="cannot reach Redis"):
        asyncio.run(enter())
    # Nothing it started is left: the autouse fixture no_leftover_processes checks every child.


def test_async_with_starts_and_stops() -> None:
    spec = WorkloadSpec.build({"workers": 1}, ("process",))
    executor = executor_class("process")(executor_config(spec), _Unreachable())

    async def use() -> list[int]:
        async with executor as started:
            assert started is executor
            return executor.worker_pids()

    pids = asyncio.run(use())
    assert pids and not any(_alive(pid) for pid in pids)


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_spec_help_lists_every_key_a_spec_file_may_hold() -> None:
    from click.testing import CliRunner

    from runner.cli.main import cli
    from runner.engine.spec import SPEC_KEYS

    text = " ".join(CliRunner().invoke(cli, ["submit", "--help"]).output.split())
    start = text.index("--spec FILE") if "--spec FILE" in text else text.index("--spec")
    for key in SPEC_KEYS:
        assert key in text[start : start + 400], key
