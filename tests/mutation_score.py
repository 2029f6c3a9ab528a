"""Print ``mutation score: K/N killed (P%)`` from mutmut's exported stats (``make mutate``).

K counts mutants the fast tier caught (a failing test, or a timeout: the mutant hung a test); N is
every mutant generated, so one no test reaches counts against the score."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(path: Path) -> None:
    stats = json.loads(path.read_text())
    killed = int(stats["killed"]) + int(stats["timeout"])
    total = int(stats["total"])
    detail = ", ".join(
        f"{key} {stats[key]}" for key in ("survived", "no_tests", "suspicious", "skipped") if key in stats
    )
    print(f"({detail})")
    print(f"mutation score: {killed}/{total} killed ({100 * killed / max(1, total):.1f}%)")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
