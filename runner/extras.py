"""Optional dependencies, grouped as the package's extras: ``report`` (matplotlib, scipy, markdown:
charts, confidence intervals, HTML) and ``cluster`` (docker: sampling a compose cluster). A user
who only runs ``runner submit`` installs neither. Each library is imported only in the module that
uses it, inside ``needs_extra``, so a missing one ends the command with one line naming the extra.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import contextmanager

from workers.errors import MissingExtra

EXTRAS = {"report": "charts, statistics and HTML reports", "cluster": "sampling a docker compose cluster"}
_MODULES = {"report": ("scipy", "matplotlib", "markdown"), "cluster": ("docker",)}


@contextmanager
def needs_extra(extra: str) -> Iterator[None]:
    """Turn a failed import inside the block into ``MissingExtra`` naming ``extra``."""
    try:
        yield
    except ImportError as exc:
        missing = exc.name or str(exc)
        raise MissingExtra(
            f"{missing} is not installed; {EXTRAS[extra]} need the '{extra}' extra: pip install 'runner[{extra}]'"
        ) from exc


def require(extra: str) -> None:
    """Fail now, before any work, if ``extra`` is not installed (a sweep must not run to be lost)."""
    for module in _MODULES[extra]:
        with needs_extra(extra):
            importlib.import_module(module)
