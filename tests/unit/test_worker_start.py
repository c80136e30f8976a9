"""The worker's start: one worker per data dir and app id, a taken metrics port named, the ruleset it loaded said
(streams/worker.py, streams/datadir.py), and settings errors printed on one line by `interceptor worker`."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

import streams.worker
from streams.datadir import DataDirLock
from streams.errors import SettingsError
from streams.settings import Settings
from streams.worker import run_worker

ROOT = Path(__file__).resolve().parents[2]


def test_a_second_lock_on_the_same_data_dir_and_app_id_is_refused(tmp_path: Path) -> None:
    first = DataDirLock(str(tmp_path / "data"), "bank1")  # the data dir is made
    # flock locks conflict between two open file descriptions, even in one process
    with pytest.raises(SettingsError) as raised:
        DataDirLock(str(tmp_path / "data"), "bank1")
    assert str(raised.value) == (
        f"another worker (pid {os.getpid()}) uses INTERCEPTOR_DATA_DIR={tmp_path / 'data'} with "
        f"INTERCEPTOR_APP_ID=bank1: give each worker on this host its own data dir (it holds "
        f"{tmp_path / 'data' / 'bank1.lock'})"
    )
    DataDirLock(str(tmp_path / "data"), "bank2").release()  # another app id: another checkpoint file
    first.release()
    DataDirLock(str(tmp_path / "data"), "bank1").release()  # free again


def test_a_data_dir_the_worker_cannot_make_is_a_settings_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(SettingsError, match=f"^INTERCEPTOR_DATA_DIR={tmp_path}/file/data: cannot create "):
        DataDirLock(str(tmp_path / "file" / "data"), "bank1")


def test_a_forked_child_that_outlives_a_killed_worker_does_not_keep_the_next_one_out(tmp_path: Path) -> None:
    # a worker killed by SIGKILL while its checkpoint writer runs: the kernel frees the worker's lock, and the
    # writer closed its copy of the descriptor when it was forked, so the restarted worker can start
    script = textwrap.dedent(
        f"""
        import os, sys, time
        from streams.datadir import DataDirLock
        DataDirLock({str(tmp_path)!r}, "bank1")
        child = os.fork()
        if child == 0:
            time.sleep(30)
            os._exit(0)
        print(child, flush=True)
        time.sleep(60)
        """
    )
    worker = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    child = 0
    try:
        assert worker.stdout is not None
        child = int(worker.stdout.readline())
        with pytest.raises(SettingsError, match="another worker"):
            DataDirLock(str(tmp_path), "bank1")  # held while the worker lives
        worker.kill()
        worker.wait(10)
        os.kill(child, 0)  # the child still runs
        DataDirLock(str(tmp_path), "bank1").release()
    finally:
        worker.kill()
        worker.wait(10)
        worker.stdout.close()  # type: ignore[union-attr]
        if child:
            os.kill(child, signal.SIGKILL)


@pytest.fixture
def no_broker(monkeypatch: pytest.MonkeyPatch) -> None:
    """run_worker up to the metrics endpoint, without Kafka: what comes after it is not reached."""
    monkeypatch.setattr(streams.worker, "check_connection", lambda settings: None)
    monkeypatch.setattr(streams.worker, "ensure_topics", lambda settings: [])
    monkeypatch.setattr(streams.worker, "check_partition_counts", lambda settings: None)

    def build_app(*args: object) -> None:
        raise AssertionError("the worker should have stopped before building its app")

    monkeypatch.setattr(streams.worker, "build_app", build_app)


def test_a_taken_metrics_port_is_named_with_its_setting(tmp_path: Path, no_broker: None) -> None:
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(SettingsError) as raised:
            run_worker(Settings(data_dir=str(tmp_path), metrics_port=port))
    assert str(raised.value) == (
        f"INTERCEPTOR_METRICS_PORT={port}: cannot serve /metrics on port {port}: Address already in use (another "
        "worker on this host? give each worker its own port, or 0 for none)"
    )


def test_the_start_says_which_ruleset_it_loaded(
    tmp_path: Path, no_broker: None, capsys: pytest.CaptureFixture[str]
) -> None:
    from rules.ruleset import default_ruleset_path, load_ruleset

    with pytest.raises(AssertionError, match="before building its app"):
        run_worker(Settings(data_dir=str(tmp_path), metrics_port=0))
    path = default_ruleset_path()
    assert f"ruleset {load_ruleset(path).version} loaded from {path}\n" in capsys.readouterr().err


def test_a_second_worker_on_the_same_data_dir_stops_at_start(tmp_path: Path, no_broker: None) -> None:
    held = DataDirLock(str(tmp_path), "fraud-interceptor")
    try:
        with pytest.raises(SettingsError, match=r"^another worker .* uses INTERCEPTOR_DATA_DIR="):
            run_worker(Settings(data_dir=str(tmp_path), metrics_port=0))
    finally:
        held.release()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"INTERCEPTOR_LOG_LEVEL": "verbose"}, "Error: INTERCEPTOR_LOG_LEVEL must be debug, info, warning, error or critical, got 'verbose'\n"),
        ({"INTERCEPTOR_METRICS_PORT": "99999"}, "Error: INTERCEPTOR_METRICS_PORT must be a port number, 1 to 65535"),
        ({"INTERCEPTOR_BROKER": "localhost:kafka"}, "Error: INTERCEPTOR_BROKER: 'localhost:kafka' is not host:port"),
    ],
)  # fmt: skip
def test_interceptor_worker_prints_a_bad_setting_on_one_line(env: dict[str, str], message: str) -> None:
    from streams.cli.main import main

    result = CliRunner().invoke(main, ["worker"], env=env)
    assert result.exit_code == 1
    assert result.output.startswith(message) and result.output.count("\n") == 1, result.output
    assert "Traceback" not in result.output


def test_interceptor_worker_prints_a_taken_data_dir_on_one_line(tmp_path: Path, no_broker: None) -> None:
    from streams.cli.main import main

    held = DataDirLock(str(tmp_path), "fraud-interceptor")
    try:
        result = CliRunner().invoke(
            main, ["worker"], env={"INTERCEPTOR_DATA_DIR": str(tmp_path), "INTERCEPTOR_METRICS_PORT": "0"}
        )
    finally:
        held.release()
    assert result.exit_code == 1
    assert result.output.startswith("Error: another worker") and result.output.count("\n") == 1, result.output
