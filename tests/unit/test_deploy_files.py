"""The shipped deployment files are accepted by the real tools (installed by scripts/bootstrap)."""

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed; run scripts/bootstrap")
    return path


def test_docker_compose_accepts_the_compose_file() -> None:
    result = subprocess.run(
        [tool("docker-compose"), "-f", str(ROOT / "docker-compose.yml"), "config", "-q"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


def test_compose_workers_can_be_scaled() -> None:
    # --scale needs a service without a fixed container name or host port
    result = subprocess.run(
        [tool("docker-compose"), "-f", str(ROOT / "docker-compose.yml"), "config"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    worker = result.stdout.split("\n  worker:\n", 1)[1].split("\n  ", 1)[0]
    assert "container_name" not in worker


def test_promtool_accepts_the_prometheus_config() -> None:
    result = subprocess.run(
        [tool("promtool"), "check", "config", str(ROOT / "deploy" / "prometheus" / "prometheus.yml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
