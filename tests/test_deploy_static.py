"""Security properties of the cluster's Dockerfile and compose.yaml, checked without Docker.

Non-root users, no published Redis port, a Redis password that must be supplied (no default in
any file), health checks on every long-running service, hardened containers, JSON-only Celery
messages -- and that Debian's ``docker-compose`` accepts the file (that one needs the binary).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
COMPOSE = ROOT / "compose.yaml"
ENV_EXAMPLE = ROOT / ".env.example"
RUNNER_SERVICES = ("target", "worker", "worker-small", "coordinator")  # built from deploy/Dockerfile
STACK = ROOT / "deploy" / "stack.yaml"
PROMETHEUS_CONFIG = ROOT / "deploy" / "prometheus.yml"
ROOT_USERS = {"root", "0", "0:0", "root:root"}


def _instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        word, _, rest = line.partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


@pytest.fixture(scope="module")
def stages() -> list[list[tuple[str, str]]]:
    """The Dockerfile's instructions, one list per stage (the ARGs before the first FROM first)."""
    result: list[list[tuple[str, str]]] = [[]]
    for instruction in _instructions(DOCKERFILE.read_text()):
        if instruction[0] == "FROM":
            result.append([])
        result[-1].append(instruction)
    return result


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())  # type: ignore[no-any-return]


def _values(stage: list[tuple[str, str]], name: str) -> list[str]:
    return [args for word, args in stage if word == name]


def test_dockerfile_is_multi_stage_from_a_public_python_image_by_default(stages: list[list[tuple[str, str]]]) -> None:
    preamble, *built = stages
    assert len(built) >= 2, "a build stage and a runtime stage"
    base = dict(arg.split("=", 1) for arg in _values(preamble, "ARG") if "=" in arg)
    assert re.fullmatch(r"python:3\.\d+(-slim)?(-bookworm)?", base.get("BASE_IMAGE", "")), base
    assert all(args.split()[0] == "${BASE_IMAGE}" for stage in built for args in _values(stage, "FROM"))
    assert any(w == "COPY" and "--from=" in a for w, a in built[-1]), "the runtime stage copies from the build"


def test_dockerfile_installs_from_a_wheelhouse_without_the_index_when_given() -> None:
    text = DOCKERFILE.read_text()
    assert re.search(r"pip install --no-index --find-links \S*wheelhouse", text)


def test_dockerfile_runtime_stage_runs_as_a_non_root_user(stages: list[list[tuple[str, str]]]) -> None:
    users = _values(stages[-1], "USER")
    assert users, "the runtime stage must set USER"
    assert users[-1] not in ROOT_USERS and not users[-1].startswith(("root:", "0:"))


def test_dockerfile_exec_form_command_health_check_and_warm_stop(stages: list[list[tuple[str, str]]]) -> None:
    runtime = stages[-1]
    for name in ("CMD", "ENTRYPOINT"):
        for args in _values(runtime, name):
            assert isinstance(json.loads(args), list), f"{name} must be exec form: {args}"
    assert _values(runtime, "CMD"), "a default command"
    checks = _values(runtime, "HEALTHCHECK")
    assert checks and "NONE" not in checks[-1].upper().split()
    assert _values(runtime, "STOPSIGNAL") == ["SIGTERM"], "SIGTERM is Celery's warm shutdown"


def test_every_service_is_non_root_read_only_and_drops_capabilities(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        user = str(service.get("user", ""))
        if name in RUNNER_SERVICES:
            assert "build" in service and "deploy/Dockerfile" in service["build"]["dockerfile"]
        else:
            assert user, f"{name}: set a non-root user"
        assert user not in ROOT_USERS and not user.startswith(("root:", "0:")), f"{name} runs as root"
        assert service.get("read_only") is True, f"{name}: read-only root filesystem"
        assert service.get("cap_drop") == ["ALL"], f"{name}: drop all capabilities"
        assert "no-new-privileges:true" in service.get("security_opt", []), name
        assert not service.get("privileged"), name


def test_redis_publishes_no_port_and_nothing_publishes_on_all_interfaces(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert "ports" not in services["redis"]
    for name, service in services.items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond the loopback interface"
            assert "6379" not in str(port), f"{name} publishes Redis"


def test_redis_requires_a_password_with_no_default_anywhere(compose: dict[str, Any]) -> None:
    redis = compose["services"]["redis"]
    command = " ".join(redis["command"]) if isinstance(redis["command"], list) else redis["command"]
    assert '--requirepass "$$REDIS_PASSWORD"' in command, "the password comes from the environment at run time"
    assert redis["environment"]["REDIS_PASSWORD"].startswith("${REDIS_PASSWORD:?")
    text = COMPOSE.read_text()
    uses = re.findall(r"\$\{REDIS_PASSWORD([^}]*)\}", text)
    assert uses and all(use.startswith(":?") for use in uses), f"REDIS_PASSWORD must be required everywhere: {uses}"
    assert "requirepass" not in re.sub(r"--requirepass \"\$\$REDIS_PASSWORD\"", "", text)
    for name in RUNNER_SERVICES:
        url = compose["services"][name]["environment"]["REDIS_URL"]
        assert url.startswith("redis://:${REDIS_PASSWORD:?"), f"{name} must use the password: {url}"
    example = dict(
        line.split("=", 1) for line in ENV_EXAMPLE.read_text().splitlines() if "=" in line and not line.startswith("#")
    )
    assert example.get("REDIS_PASSWORD") == "", ".env.example names REDIS_PASSWORD and leaves it empty"


def test_redis_persists_and_never_evicts_jobs(compose: dict[str, Any]) -> None:
    command = " ".join(compose["services"]["redis"]["command"])
    for setting in ("--appendonly yes", "--appendfsync everysec", "--maxmemory-policy noeviction"):
        assert setting in command
    assert any(v.endswith(":/data") for v in compose["services"]["redis"]["volumes"])


def test_every_long_running_service_has_a_health_check(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        if service.get("restart") == "no":
            continue  # one-shot (the coordinator)
        test = service.get("healthcheck", {}).get("test")
        assert test and test != ["NONE"] and not service["healthcheck"].get("disable"), f"{name}: no health check"
    worker = compose["services"]["worker"]["healthcheck"]["test"]
    assert "inspect ping" in " ".join(worker)


def test_workers_scale_and_finish_jobs_on_stop(compose: dict[str, Any]) -> None:
    worker = compose["services"]["worker"]
    assert "container_name" not in worker, "a fixed name prevents --scale worker=N"
    assert worker["command"][:4] == ["celery", "-A", "workers.celery_app", "worker"]
    assert worker.get("stop_grace_period")
    assert set(worker["environment"]) >= {"REDIS_URL", "TARGET_URL"}


def test_coordinator_waits_for_healthy_services_and_uses_the_cluster_workers(compose: dict[str, Any]) -> None:
    coordinator = compose["services"]["coordinator"]
    assert {k: v["condition"] for k, v in coordinator["depends_on"].items()} == {
        "redis": "service_healthy",
        "target": "service_healthy",
        "worker": "service_healthy",
    }
    command = coordinator["command"]
    assert command[:2] == ["runner", "bench"]
    assert command[command.index("--celery-workers") + 1] == "0"
    assert any(v.endswith(":/reports") for v in coordinator["volumes"])
    assert compose["services"]["flower"]["profiles"] == ["monitoring"]


def test_workers_and_coordinator_get_the_jobs_folder_read_only(compose: dict[str, Any]) -> None:
    """User jobs on the cluster: the host's RUNNER_JOBS_DIR at /jobs, read-only, and the workers told
    to load user jobs from there only; the same in the Swarm stack."""
    for name in ("worker", "worker-small", "coordinator"):
        service = compose["services"][name]
        assert "${RUNNER_JOBS_DIR:-./examples}:/jobs:ro" in service["volumes"], name
        assert service["environment"]["RUNNER_JOBS_DIR"] == "/jobs", name
    assert not any(":/jobs" in str(v) for v in compose["services"]["target"].get("volumes", []))
    stack = yaml.safe_load(STACK.read_text())["services"]
    for name in ("worker", "coordinator"):
        mounts = [v for v in stack[name]["volumes"] if isinstance(v, dict) and v.get("target") == "/jobs"]
        assert mounts and mounts[0]["type"] == "bind" and mounts[0]["read_only"] is True, name
        assert mounts[0]["source"].startswith("${RUNNER_JOBS_DIR:?"), name
        assert stack[name]["environment"]["RUNNER_JOBS_DIR"] == "/jobs", name


def test_celery_accepts_json_messages_only() -> None:
    from workers.celery_app import app, make_app

    for celery_app in (app, make_app("redis://127.0.0.1:1/0")):
        conf = celery_app.conf
        assert conf.task_serializer == "json"
        assert conf.result_serializer == "json"
        assert list(conf.accept_content) == ["json"]
        assert list(conf.result_accept_content or conf.accept_content) == ["json"]


def _compose_config(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``docker-compose config`` on a copy of compose.yaml, away from any .env of the checkout."""
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.skip("docker-compose is not installed (apt-get install docker-compose): config check skipped")
    shutil.copy(COMPOSE, tmp_path / "compose.yaml")
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "RUNNER_", "COMPOSE_"))}
    return subprocess.run(
        [binary, "-f", "compose.yaml", "config"],
        cwd=tmp_path,
        env=clean | env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_docker_compose_accepts_the_file(tmp_path: Path) -> None:
    done = _compose_config(tmp_path, {"REDIS_PASSWORD": "test-password-0123"})
    assert done.returncode == 0, done.stderr
    config = yaml.safe_load(done.stdout)
    assert set(config["services"]) >= {"redis", "target", "worker", "coordinator"}
    assert config["services"]["worker"]["environment"]["REDIS_URL"] == "redis://:test-password-0123@redis:6379/0"


def test_docker_compose_refuses_to_run_without_a_redis_password(tmp_path: Path) -> None:
    done = _compose_config(tmp_path, {})
    assert done.returncode != 0
    assert "REDIS_PASSWORD" in done.stderr


def test_sizes_profile_adds_a_smaller_worker_of_the_same_kind(compose: dict[str, Any]) -> None:
    worker, small = compose["services"]["worker"], compose["services"]["worker-small"]
    assert small["profiles"] == ["sizes"] and "profiles" not in worker
    assert small["command"] == worker["command"] and small["environment"] == worker["environment"]
    assert worker["cpus"] == "${WORKER_CPUS:-0}" and small["cpus"] == "${WORKER_SMALL_CPUS:-0.5}"


def test_monitoring_prometheus_scrapes_the_coordinators_metrics(compose: dict[str, Any]) -> None:
    prometheus = compose["services"]["prometheus"]
    assert "monitoring" in prometheus["profiles"]
    assert prometheus["image"].startswith("${PROMETHEUS_IMAGE:-prom/prometheus:")
    coordinator = compose["services"]["coordinator"]["environment"]
    port = coordinator["RUNNER_BENCH_METRICS_PORT"]
    assert coordinator["RUNNER_BENCH_METRICS_HOST"] == "0.0.0.0"  # the cluster network; no published port
    assert "ports" not in compose["services"]["coordinator"]
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    targets = [t for job in config["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]]
    assert targets == [f"coordinator:{port}"]
    mounted = [v for v in prometheus["volumes"] if v.startswith("./deploy/prometheus.yml:")]
    config_flag = next(a for a in prometheus["command"] if a.startswith("--config.file="))
    assert mounted and mounted[0].split(":")[1] == config_flag.split("=", 1)[1]


def test_swarm_stack_keeps_the_password_in_a_secret_and_scales_workers() -> None:
    stack = yaml.safe_load(STACK.read_text())
    services = stack["services"]
    assert set(services) == {"redis", "target", "worker", "coordinator"}
    assert stack["secrets"]["runner_redis_password"]["external"] is True
    assert stack["networks"]["runner"]["driver"] == "overlay"
    assert services["worker"]["deploy"]["replicas"] == "${WORKER_REPLICAS:-2}"
    assert services["worker"]["deploy"]["resources"]["limits"]["cpus"]
    text = STACK.read_text()
    assert "REDIS_PASSWORD" not in text, "the password is never an environment variable in the stack"
    for name, service in services.items():
        assert "runner_redis_password" in service["secrets"], name
        assert "ports" not in service, f"{name} publishes a port"
        assert service.get("read_only") is True and service.get("cap_drop") == ["ALL"], name
    assert services["coordinator"]["deploy"]["restart_policy"]["condition"] == "none"
    command = services["coordinator"]["command"]
    assert command[command.index("--celery-workers") + 1] == "0" and "--expect-workers" in command


def test_docker_accepts_the_stack_file(tmp_path: Path) -> None:
    """``docker stack config`` (the client only, no engine) renders the stack as deploy would."""
    docker = shutil.which("docker")
    if docker is None or subprocess.run([docker, "stack", "config", "--help"], capture_output=True).returncode:
        pytest.skip("no docker client with 'stack config' here")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REDIS_", "RUNNER_", "WORKER_"))}
    env |= {"RUNNER_REPORTS_DIR": str(tmp_path), "RUNNER_JOBS_DIR": str(tmp_path), "WORKER_REPLICAS": "3"}
    done = subprocess.run(
        [docker, "stack", "config", "-c", str(STACK)], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    config = yaml.safe_load(done.stdout)
    assert config["services"]["worker"]["deploy"]["replicas"] == 3
