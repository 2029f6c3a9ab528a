"""What a Celery node on a green pool (``--pool gevent``) needs that the other pools get from Celery's
event loop. A green pool has none: its consumer drains the broker with blocking ``drain_events``
calls (Celery's ``synloop``), and its jobs acknowledge from their own greenlets, many at once.

- The redelivery sweep. With an event loop, kombu's Redis transport moves messages left
  unacknowledged past the visibility timeout (a dead node's) back to their queue every
  ``unacked_restore_interval`` seconds. Without one it sweeps only after a poll that saw nothing --
  and a poll always sees the reply to its own one-second BRPOP, so a gevent node never swept: a job
  stranded in ``unacked`` stayed there. ``RedeliverySweep`` runs the same sweep on the consumer's
  timer.
- The broker connection pool. Each acknowledgement borrows a connection from the channel's pool,
  which holds at most ``max_connections`` (kombu: 10) and raises rather than waits beyond that.
  Threads and prefork nodes acknowledge one at a time in their event loop; a green node's jobs
  acknowledge from their own greenlets, as many at once as end together, and its consumer borrows
  from the same pool to record each message it takes off the queue. Past ten, an acknowledgement
  fails (the job stays in ``unacked`` and would run again), or the consumer's record does -- and
  that message is off the queue and not in ``unacked``: lost, beyond any redelivery. A green
  node's pool gets room for every greenlet (``size_pool``).
- The credit recheck. With every prefetch slot taken, kombu's poller stops reading the queue, and
  with no event loop to tell it when a slot frees it looks again only when its poll of the other
  sockets times out: Celery's ``synloop`` polls for 2 s. A job sent just after waited those 2 s,
  which the figures counted as queue wait (600 jobs of 20 ms at 30 in flight: 9.4 s instead of
  1.3 s in 1 run of 4, queue wait p99 2,018 ms). ``RedeliverySweep`` has it look every 50 ms while
  the node holds jobs (``recheck_credit_often``).
"""

from __future__ import annotations

import logging
from typing import Any

from celery import bootsteps

_CREDIT_RECHECK_S = 0.05
_SPARE_CONNECTIONS = 10  # kombu's own default: the consumer, its sweeps and the control channel
_GREEN = ("gevent", "eventlet")

log = logging.getLogger(__name__)


def is_green(pool_cls: Any) -> bool:
    """``pool_cls`` (a class or Celery's name for it) runs jobs in greenlets."""
    module = pool_cls if isinstance(pool_cls, str) else getattr(pool_cls, "__module__", "") or ""
    return module.endswith(_GREEN)


def size_pool(worker: Any) -> None:
    """Before the consumer connects: room in the broker connection pool for every greenlet's
    acknowledgement at once, plus the consumer's own."""
    if not is_green(getattr(worker, "pool_cls", "")):
        return
    options = worker.app.conf.broker_transport_options
    wanted = int(getattr(worker, "concurrency", 0) or 0) + _SPARE_CONNECTIONS
    options["max_connections"] = max(wanted, int(options.get("max_connections") or 0))


def recheck_credit_often() -> None:
    """While the node holds jobs, cap each poll of the Redis transport at 50 ms:
    ``drain_events`` polls again until its own timeout, and every poll first looks for returned
    credit (kombu registers a paused BRPOP again there) and restores stale messages when due."""
    from kombu.transport.redis import MultiChannelPoller

    original: Any = MultiChannelPoller.get
    if getattr(original, "capped", False):
        return

    def get(self: Any, callback: Any, timeout: float | None = None) -> Any:
        # Only while this node holds jobs (its credit can fill): an idle node's poll still blocks;
        # capped polls at all times cost it 15 % of a core at 10 ms.
        if _holds_jobs(self):
            timeout = _CREDIT_RECHECK_S if timeout is None else min(timeout, _CREDIT_RECHECK_S)
        return original(self, callback, timeout)

    get.capped = True  # type: ignore[attr-defined]
    MultiChannelPoller.get = get  # type: ignore[method-assign]


def _holds_jobs(poller: Any) -> bool:
    """Any of the poller's channels holds delivered, unacknowledged messages. Read through kombu's
    private attributes: should they change, this says False and the poll is kombu's own again."""
    channels = getattr(poller, "_channels", ())
    return any(getattr(getattr(channel, "qos", None), "_delivered", None) for channel in channels)


class RedeliverySweep(bootsteps.StartStopStep):  # type: ignore[misc]
    """A consumer step: on a node without an event loop, sweep ``unacked`` on the consumer's timer,
    as kombu's event-loop registration does for the other pools."""

    requires = ("celery.worker.consumer.tasks:Tasks",)

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self._tref: Any = None

    def start(self, parent: Any) -> None:
        if parent.hub is not None:  # an event loop: kombu registered its own sweep
            return
        recheck_credit_often()
        options = parent.app.conf.broker_transport_options
        interval = float(options.get("unacked_restore_interval") or 1.0)
        self._tref = parent.timer.call_repeatedly(interval, self._sweep, (parent,))

    def stop(self, parent: Any) -> None:
        if self._tref is not None:
            self._tref.cancel()
            self._tref = None

    shutdown = stop

    @staticmethod
    def _sweep(parent: Any) -> None:
        connection = getattr(parent, "connection", None)
        cycle = getattr(getattr(connection, "transport", None), "cycle", None)
        restore = getattr(cycle, "maybe_restore_messages", None)
        if restore is None:  # reconnecting, or not the Redis transport
            return
        try:
            restore()
        except Exception:  # the broker is away: the consumer's own reconnection deals with it
            log.debug("unacked sweep failed", exc_info=True)
