"""Check that the monitoring profile's Prometheus scrapes the coordinator while it runs (used by
deploy/cluster-test.sh, started beside the sweep):

    python deploy/check_prometheus.py http://127.0.0.1:9090 [--timeout 900]

Polls Prometheus' federation endpoint -- the latest scraped samples of job "runner", in the
text exposition format -- parses it with prometheus_client's own parser, and exits 0 once it holds
jobs done by the coordinator (``runner_jobs_total{outcome="done"}`` above 0) and an in-flight
gauge, printing the samples; exit 1 with one line if that does not happen within --timeout.
"""

from __future__ import annotations

import argparse
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

from prometheus_client.parser import text_string_to_metric_families


def scrape(base: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """family name -> [(labels, value)] of what Prometheus last scraped from the coordinator."""
    query = urllib.parse.urlencode({"match[]": '{job="runner"}'})
    with urllib.request.urlopen(f"{base}/federate?{query}", timeout=5) as response:
        text = response.read().decode()
    families: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            families.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return families


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base", help="Prometheus URL, e.g. http://127.0.0.1:9090")
    parser.add_argument("--timeout", type=float, default=900.0)
    args = parser.parse_args()
    deadline = time.monotonic() + args.timeout
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            families = scrape(args.base.rstrip("/"))
        except (OSError, urllib.error.URLError, ValueError) as exc:
            last = f"{type(exc).__name__}: {exc}"
            time.sleep(1)
            continue
        done = [(labels, v) for labels, v in families.get("runner_jobs_total", []) if labels.get("outcome") == "done"]
        if any(v > 0 for _, v in done) and "runner_jobs_in_flight" in families:
            print("Prometheus scraped the coordinator's metrics during the sweep:")
            for name in ("runner_jobs_total", "runner_jobs_in_flight", "runner_throughput_jobs_per_second"):
                for labels, value in families.get(name, []):
                    shown = ",".join(f"{k}={v}" for k, v in sorted(labels.items()) if k not in ("instance", "job"))
                    print(f"  {name}{{{shown}}} {value:g}")
            return 0
        last = f"{len(families)} metric families, no done jobs yet"
        time.sleep(1)
    print(f"check_prometheus: nothing scraped from the coordinator within {args.timeout:g} s ({last})", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
