"""User jobs: the user's own functions as job kinds (``--job KIND=MODULE:FUNCTION``).

A reference names one function, or two in one module (``MODULE:SYNC,ASYNC`` in either order:
which is which is read from the functions). A Celery task object stands for the function it
wraps. The coordinator resolves every reference before any job runs (``resolve``, one-line
``InputError`` for each mistake); each worker process loads the same table again (``prepare``):
module import and the optional ``--setup`` function, timed, before timing starts.

A user job travels like a built-in one (``workers.jobs.Job``): its kind, its reference in
``target`` and its input in ``payload`` (a list is ``*args``, an object ``**kwargs``, anything else
one argument). Which form runs: where a loop runs the job (async, hybrid) the async form is awaited
and a sync-only function runs inline; everywhere else the sync form is called and an async-only
function runs in the worker's own event loop (one per thread; under gevent one per process, run
by a greenlet, since asyncio allows one running loop per OS thread). Return values are serialised
as the executor must ship them (``pickle`` for process pools, ``json`` for Celery and gevent;
``none`` where the job runs in the coordinator), their size recorded, and dropped.

Security: which code a worker runs is never decided by a broker message. Workers that runner
starts get the exact table at start (``ENV``, a JSON document) and refuse any other kind. A node
started on its own (compose, another host) has no table: it may load a message's reference only
from a module whose file lies under its ``RUNNER_JOBS_DIR``, and refuses every user job when that
is unset -- so access to Redis never amounts to running ``os:system``.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.machinery
import importlib.util
import inspect
import json
import re
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workers.errors import InputError, JobFailed

ENV = "RUNNER_USER_JOBS"  # the table a worker that runner starts gets (JSON)
JOBS_DIR_ENV = "RUNNER_JOBS_DIR"  # where a node started on its own may load user jobs from
_KIND = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,63}", re.ASCII)
_MODULE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*", re.ASCII)
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*", re.ASCII)


def _shown(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass(frozen=True)
class Ref:
    """``MODULE:NAME`` or ``MODULE:NAME,NAME``."""

    module: str
    names: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.module}:{','.join(self.names)}"


def parse_ref(text: object, flag: str, *, pair: bool = True) -> Ref:
    if not isinstance(text, str):
        raise InputError(f"{flag}: expected MODULE:FUNCTION, got {_shown(text)}")
    module, sep, names = text.strip().partition(":")
    if not sep or not names.strip():
        raise InputError(f"{flag}: {_shown(text)} names no function; write MODULE:FUNCTION")
    if not _MODULE.fullmatch(module):
        raise InputError(f"{flag}: {_shown(module)} is not a module name")
    parts = tuple(n.strip() for n in names.split(","))
    if len(parts) > (2 if pair else 1):
        most = "one function, or two (a def and an async def)" if pair else "one function"
        raise InputError(f"{flag}: {_shown(text)} names {len(parts)} functions; give {most}")
    for name in parts:
        if not _NAME.fullmatch(name) or name.startswith("__"):
            raise InputError(f"{flag}: {_shown(name)} is not a function name")
    if len(set(parts)) != len(parts):
        raise InputError(f"{flag}: {_shown(text)} names the same function twice")
    return Ref(module, parts)


def parse_job(text: str, builtin: frozenset[str] | tuple[str, ...], flag: str = "--job") -> tuple[str, Ref]:
    """``KIND=MODULE:FUNCTION`` -> (kind, reference)."""
    kind, sep, ref = text.partition("=")
    if not sep:
        raise InputError(f"{flag}: expected KIND=MODULE:FUNCTION, got {_shown(text)}")
    return check_kind(kind.strip(), builtin, flag), parse_ref(ref, f"{flag} {kind.strip()}")


def check_kind(kind: object, builtin: frozenset[str] | tuple[str, ...], flag: str) -> str:
    if not isinstance(kind, str) or not kind:
        raise InputError(f"{flag}: a job kind needs a name, as in resize=mymodule:resize")
    if not _KIND.fullmatch(kind):
        raise InputError(f"{flag}: job kind {_shown(kind)} must be a letter then letters, digits, _ . - (64 at most)")
    if kind in builtin:
        raise InputError(f"{flag}: job kind {kind!r} is a built-in kind; give yours another name")
    return kind


@dataclass(frozen=True)
class JobTable:
    """What every worker needs to run the user's jobs: kinds, import path, setup function."""

    jobs: Mapping[str, Ref]
    paths: tuple[str, ...] = ()
    setup: Ref | None = None

    def to_json(self) -> str:
        setup = str(self.setup) if self.setup else None
        jobs = {kind: str(ref) for kind, ref in self.jobs.items()}
        return json.dumps({"jobs": jobs, "paths": list(self.paths), "setup": setup})

    @classmethod
    def from_json(cls, text: str) -> JobTable:
        data = json.loads(text)
        jobs = {kind: parse_ref(ref, ENV) for kind, ref in data["jobs"].items()}
        setup = parse_ref(data["setup"], ENV, pair=False) if data.get("setup") else None
        return cls(jobs, tuple(data.get("paths") or ()), setup)

    def env(self) -> dict[str, str]:
        """For a worker process that runner starts: the table, and the paths on PYTHONPATH."""
        return {ENV: self.to_json()}


@dataclass(frozen=True)
class UserJob:
    kind: str
    ref: Ref
    sync: Callable[..., Any] | None
    async_: Callable[..., Any] | None

    @property
    def forms(self) -> list[str]:
        return [form for form, fn in (("sync", self.sync), ("async", self.async_)) if fn is not None]

    def check_input(self, payload: Any, flag: str = "--inputs") -> None:
        """InputError if the function's signature rejects this input."""
        args, kwargs = arguments(payload)
        for fn in filter(None, (self.sync, self.async_)):
            try:
                signature = inspect.signature(fn)
            except (TypeError, ValueError):
                continue  # a builtin without a signature: the call will tell
            try:
                signature.bind(*args, **kwargs)
            except TypeError as exc:
                raise InputError(f"{flag}: {self.ref} rejects the first input {_shown(payload)}: {exc}") from None


_NO_KWARGS: dict[str, Any] = {}  # shared, never written: the call unpacks it


_SEQUENCES = (list, tuple)  # a tuple of types: ``isinstance`` with ``list | tuple`` builds a union per call


def call(fn: Callable[..., Any], payload: Any) -> Any:
    """``fn`` applied to one input: a list (or tuple) is ``*args``, an object ``**kwargs``, anything
    else the one argument."""
    if isinstance(payload, _SEQUENCES):
        return fn(*payload)
    if isinstance(payload, dict):
        return fn(**payload)
    return fn(payload)


def arguments(payload: Any) -> tuple[tuple[Any, ...] | list[Any], dict[str, Any]]:
    """``call``'s reading of an input as (args, kwargs), for checking it against a signature."""
    if isinstance(payload, _SEQUENCES):
        return payload, _NO_KWARGS
    if isinstance(payload, dict):
        return (), payload
    return (payload,), _NO_KWARGS


def add_paths(paths: tuple[str, ...] | list[str]) -> None:
    for path in reversed(paths):
        if path not in sys.path:
            sys.path.insert(0, path)


def import_module(name: str, flag: str) -> Any:
    """The module, or InputError: not found, or what importing it raised (one line)."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name and (name == exc.name or name.startswith(exc.name + ".")):
            raise InputError(
                f"{flag}: module {name!r} not found (looked in --path, default the current directory)"
            ) from None
        raise InputError(f"{flag}: importing {name!r} failed: {first_line(exc)}") from None
    except (Exception, SystemExit) as exc:  # the user's module raised while importing
        raise InputError(f"{flag}: importing {name!r} raised {first_line(exc)}") from None


def function(module: Any, ref: Ref, name: str, flag: str) -> Callable[..., Any]:
    try:
        obj = getattr(module, name)
    except AttributeError:
        raise InputError(f"{flag}: module {ref.module!r} has no attribute {name!r}") from None
    if hasattr(obj, "apply_async") and callable(getattr(obj, "run", None)):
        obj = obj.run  # a Celery task object: measure the function it wraps
    if not callable(obj):
        raise InputError(f"{flag}: {ref.module}:{name} is not callable (it is {type(obj).__name__})")
    return obj  # type: ignore[no-any-return]


def is_async(fn: Callable[..., Any]) -> bool:
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(getattr(fn, "__call__", None))  # noqa: B004


def resolve_one(kind: str, ref: Ref, module: Any, flag: str) -> UserJob:
    fns = [function(module, ref, name, flag) for name in ref.names]
    sync = [fn for fn in fns if not is_async(fn)]
    coro = [fn for fn in fns if is_async(fn)]
    if len(sync) > 1 or len(coro) > 1:
        both = "def" if sync else "async def"
        raise InputError(f"{flag}: {ref} are both {both}; a pair is one def and one async def")
    return UserJob(kind, ref, sync[0] if sync else None, coro[0] if coro else None)


def resolve(table: JobTable, flag: str = "--job") -> dict[str, UserJob]:
    add_paths(table.paths)
    return {
        kind: resolve_one(kind, ref, import_module(ref.module, f"{flag} {kind}"), f"{flag} {kind}")
        for kind, ref in table.jobs.items()
    }


def setup_function(table: JobTable) -> Callable[[], Any] | None:
    if table.setup is None:
        return None
    add_paths(table.paths)
    ref = table.setup
    return function(import_module(ref.module, "--setup"), ref, ref.names[0], "--setup")


def prepare(table: JobTable) -> tuple[dict[str, UserJob], dict[str, float]]:
    """In a worker process, before timing starts: import the jobs (timed), run ``--setup`` (timed)."""
    began = time.perf_counter()
    jobs = resolve(table)
    setup = setup_function(table)
    imported = time.perf_counter()
    if setup is not None:
        try:
            value = setup()
            if inspect.isawaitable(value):
                run_coroutine(value)
        except Exception as exc:
            raise SetupFailed(f"--setup {table.setup} raised {first_line(exc)}") from exc
    return jobs, {"import_s": round(imported - began, 6), "setup_s": round(time.perf_counter() - imported, 6)}


class SetupFailed(InputError):
    """The user's ``--setup`` function raised in a worker."""


class Refused(JobFailed):
    """A worker would not load the user job a message asked for."""


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _inside(path: str | None, root: Path) -> bool:
    if not path:
        return False
    try:
        return Path(path).resolve().is_relative_to(root)
    except (OSError, ValueError):
        return False


def load_confined(kind: str, ref_text: str, jobs_dir: str) -> UserJob:
    """A node without a table: the job a message names, only from a module under ``jobs_dir``.
    Nothing outside it is imported, nor anything already imported from elsewhere (``os``)."""
    if not jobs_dir:
        raise Refused(f"user job {kind!r} refused: this worker has no job table and {JOBS_DIR_ENV} is not set")
    try:
        ref = parse_ref(ref_text, "message")
    except InputError as exc:
        raise Refused(f"user job {kind!r} refused: {exc}") from None
    root = Path(jobs_dir).resolve()
    top = ref.module.split(".")[0]
    refused = Refused(f"user job {kind!r} refused: module {ref.module!r} is not under {JOBS_DIR_ENV} ({root})")
    loaded = sys.modules.get(top)
    if loaded is not None:
        where = getattr(loaded, "__file__", None) or next(iter(getattr(loaded, "__path__", None) or []), None)
        if not _inside(where, root):
            raise refused
    else:
        spec = importlib.machinery.PathFinder.find_spec(top, [str(root)])
        where = None if spec is None else spec.origin or next(iter(spec.submodule_search_locations or []), None)
        if spec is None or spec.loader is None or not _inside(where, root):
            raise refused
        module = importlib.util.module_from_spec(spec)
        sys.modules[top] = module
        if str(root) not in sys.path:
            sys.path.append(str(root))  # after everything else: the user's files never shadow a library
        try:
            spec.loader.exec_module(module)
        except BaseException as exc:
            del sys.modules[top]
            raise Refused(f"user job {kind!r}: importing {top!r} raised {first_line(exc)}") from None
    try:
        module = import_module(ref.module, "message")
        if not _inside(getattr(module, "__file__", None), root):
            raise refused
        return resolve_one(kind, ref, module, "message")
    except InputError as exc:
        raise Refused(f"user job {kind!r} refused: {exc}") from None


def run_coroutine(coro: Any) -> Any:
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()
