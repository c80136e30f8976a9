"""deploy/kafka/local-kafka: a restart keeps the data, and stop touches only its own broker."""

import os
import subprocess
from pathlib import Path

import pytest

from tests.integration.conftest import LOCAL_KAFKA, _free_port_pair
from tests.integration.kafka_io import produce, read_topic

pytestmark = pytest.mark.integration


def run(command: str, env: dict[str, str]) -> str:
    result = subprocess.run(
        [str(LOCAL_KAFKA), command], env={**os.environ, **env}, capture_output=True, text=True, timeout=180
    )
    if command != "status" and result.returncode != 0:
        raise AssertionError(f"local-kafka {command} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return result.stdout.strip()


def test_hard_killed_broker_restarts_with_its_data_and_leaves_other_brokers_alone(tmp_path: Path) -> None:
    a = {"KAFKA_PORT": str(_free_port_pair()), "KAFKA_DATA_DIR": str(tmp_path / "a")}
    b = {"KAFKA_PORT": str(_free_port_pair()), "KAFKA_DATA_DIR": str(tmp_path / "b")}
    try:
        bootstrap_a = run("start", a)
        bootstrap_b = run("start", b)
        produce(bootstrap_a, "kept", [(b"k", f"m{i}".encode()) for i in range(50)])
        run("stop", {**a, "KAFKA_STOP_SIGNAL": "KILL"})
        assert run("status", a) == ""
        assert run("status", b) == bootstrap_b  # the other broker was not touched
        assert run("start", a) == bootstrap_a
        values = [m.value for m in read_topic(bootstrap_a, "kept", 50, timeout=60)]
        assert values == [f"m{i}".encode() for i in range(50)]
    finally:
        run("stop", a)
        run("stop", b)
