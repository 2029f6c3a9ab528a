"""The Kubernetes manifests (deploy/k8s/), checked statically: no cluster runs here.

Every document is validated against the official Kubernetes JSON schemas (``kubernetes-validate``,
strict: an unknown or misspelt field fails), then the properties the README promises: the worker
Deployment has resource requests, Redis takes its password from a Secret (none is committed), the
coordinator is a one-shot Job against the cluster's workers, and nothing runs as root.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

kubernetes_validate = pytest.importorskip("kubernetes_validate")

K8S = Path(__file__).resolve().parent.parent / "deploy" / "k8s"
VERSION = "1.29.0"  # the oldest release the manifests promise to work on


def _documents() -> Iterator[tuple[str, dict[str, Any]]]:
    for path in sorted(K8S.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                yield path.name, doc


DOCS = list(_documents())


def _one(kind: str, name: str) -> dict[str, Any]:
    found = [doc for _, doc in DOCS if doc["kind"] == kind and doc["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} documents"
    return found[0]


def _pod(doc: dict[str, Any]) -> dict[str, Any]:
    return doc["spec"]["template"]["spec"]  # type: ignore[no-any-return]


def test_there_are_manifests() -> None:
    kinds = {(doc["kind"], doc["metadata"]["name"]) for _, doc in DOCS}
    assert {("Deployment", "worker"), ("Deployment", "redis"), ("Job", "coordinator")} <= kinds


@pytest.mark.parametrize(("source", "doc"), DOCS, ids=[f"{s}:{d['kind']}/{d['metadata']['name']}" for s, d in DOCS])
def test_each_document_is_valid_against_the_kubernetes_schema(source: str, doc: dict[str, Any]) -> None:
    kubernetes_validate.validate(doc, VERSION, strict=True)


def test_a_broken_manifest_is_refused() -> None:
    """The validator does reject what a cluster would: a misspelt field, a wrong type."""
    worker = yaml.safe_load(yaml.safe_dump(_one("Deployment", "worker")))
    worker["spec"]["replica"] = 2
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(worker, VERSION, strict=True)
    worker = yaml.safe_load(yaml.safe_dump(_one("Deployment", "worker")))
    worker["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(worker, VERSION, strict=True)


def test_workers_request_resources_and_are_celery_nodes() -> None:
    pod = _pod(_one("Deployment", "worker"))
    (container,) = pod["containers"]
    assert container["command"][:4] == ["celery", "-A", "workers.celery_app", "worker"]
    requests = container["resources"]["requests"]
    assert requests["cpu"] and requests["memory"]
    assert pod["terminationGracePeriodSeconds"] >= 60, "warm shutdown lets running jobs finish"


def test_redis_password_comes_from_a_secret_and_none_is_committed() -> None:
    assert not [doc for _, doc in DOCS if doc["kind"] == "Secret"], "create the Secret, never commit it"
    (redis,) = _pod(_one("Deployment", "redis"))["containers"]
    env = {e["name"]: e for e in redis["env"]}
    assert env["REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "runner-redis"
    assert '--requirepass "$REDIS_PASSWORD"' in " ".join(redis["args"])
    for kind, name in (("Deployment", "worker"), ("Deployment", "target"), ("Job", "coordinator")):
        for container in _pod(_one(kind, name))["containers"]:
            env = {e["name"]: e for e in container.get("env", [])}
            if "REDIS_URL" in env:
                assert "secretKeyRef" in env["REDIS_PASSWORD"]["valueFrom"], f"{name}: password from the Secret"
                assert "$(REDIS_PASSWORD)" in env["REDIS_URL"]["value"], name


def test_coordinator_is_a_one_shot_job_using_the_cluster_workers() -> None:
    job = _one("Job", "coordinator")
    assert _pod(job)["restartPolicy"] == "Never"
    (container,) = _pod(job)["containers"]
    command = container["command"]
    assert command[:2] == ["runner", "bench"]
    assert command[command.index("--celery-workers") + 1] == "0"


def test_nothing_runs_as_root_or_escalates() -> None:
    for source, doc in DOCS:
        if doc["kind"] not in ("Deployment", "Job"):
            continue
        pod = _pod(doc)
        assert pod["securityContext"]["runAsNonRoot"] is True, source
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, source
            assert context["capabilities"]["drop"] == ["ALL"], source
            assert context["readOnlyRootFilesystem"] is True, source
