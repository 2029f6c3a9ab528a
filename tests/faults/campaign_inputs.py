"""Inputs of the hostile-input campaign (tests/faults/campaign.py): files that are not what a
command expects, and an HTTP server that is not runner's target."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def wrong_server() -> Iterator[int]:
    """A TCP server that answers anything with an HTTP 404 (not runner's target)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            with conn, contextlib.suppress(OSError):
                conn.recv(4096)
                conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield int(server.getsockname()[1])
    finally:
        stop.set()
        thread.join()
        server.close()


def files(tmp: Path) -> dict[str, str]:
    fifo = tmp / "fifo.toml"
    os.mkfifo(fifo)
    huge = tmp / "huge.toml"
    with huge.open("w") as f:
        f.write("# padding\n" * 3_000_000)
    nested = tmp / "nested.toml"
    nested.write_text("x = " + "[" * 100_000 + "]" * 100_000 + "\n")
    nested_mix = tmp / "nested_mix.toml"
    nested_mix.write_text("mix = " + "[" * 100_000 + "]" * 100_000 + "\n")
    binary = tmp / "binary.toml"
    binary.write_bytes(bytes(range(256)) * 4)
    files = {"fifo": fifo, "huge": huge, "nested": nested, "nested_mix": nested_mix, "binary": binary}
    texts = {
        "spec_dup_mode": 'mode = "async,async"\n',
        "spec_str_jobs": 'jobs = "1_0"\n',
        "spec_denormal": "mix = { sleep = 5e-324 }\n",
        "spec_mode_list": 'mode = ["async"]\n',
        "sweep_seed_list": "seed = [1]\n",
        "sweep_seed_str": 'seed = "x"\n',
        "sweep_seed_float": "seed = 1.5\n",
        "sweep_repeats_bool": "repeats = true\n",
        "sweep_run_s_str": 'run_s = "2s"\n',
        "sweep_mixes_empty": "mixes = []\n",
        "sweep_mixes_str": 'mixes = "x"\n',
        "sweep_mix_name_int": "[[mixes]]\nname = 1\nmix = { sleep = 1 }\n",
        "sweep_min_max": "min_jobs = 10\nmax_jobs = 5\n",
        "sweep_modes_str": 'modes = "async"\n',
        "sweep_modes_dup": 'modes = ["async", "async"]\n',
        "sweep_workers_float": "workers = 1.5\n",
        "sweep_min_jobs_float": "min_jobs = 2.5\n",
        "sweep_quick_key": "quick = true\n",
        "results_garbage": "not json",
        "results_list": "[1, 2]",
        "results_nan": '{"kind": "runner-bench", "schema_version": 1, "cells": NaN}',
        "results_cells_str": '{"kind": "runner-bench", "schema_version": 1, "cells": "x"}',
        "results_cells_int": '{"kind": "runner-bench", "schema_version": 1, "cells": [1]}',
        "results_deep": '{"kind": "runner-bench", "schema_version": 1, "x": ' + "[" * 100_000 + "]" * 100_000 + "}",
        "results_ok_empty": '{"kind": "runner-bench", "schema_version": 1, "cells": []}',
    }
    for name, text in texts.items():
        path = tmp / f"{name}.toml"
        path.write_text(text)
        files[name] = path
    (tmp / "a_file").write_text("x")
    files["a_file"] = tmp / "a_file"
    gevent_shadow = tmp / "shadow"
    (gevent_shadow / "gevent").mkdir(parents=True)
    (gevent_shadow / "gevent" / "__init__.py").write_text("raise ImportError('gevent is broken here')\n")
    files["shadow"] = gevent_shadow
    return {k: str(v) for k, v in files.items()}
