"""SASL against a real broker: local-kafka's opt-in SASL_PLAINTEXT listener (PLAIN and SCRAM-SHA-256).

The worker talks to the broker only through the SASL listener; the test's own producer and reader use the
broker's plain listener. A worker with the right password decides transactions; one with a wrong password
stops within a bound instead of hanging, and so does a command; no password ever shows in a worker's output.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from streams.errors import SettingsError
from streams.kafka_security import BrokerConnectionError, check_connection, check_security
from streams.settings import Settings
from tests.integration.conftest import free_port, private_broker
from tests.integration.secure_workers import (
    USER,
    WorkerExit,
    assert_refused_at_once,
    assert_stopped_refused,
    assert_worker_decides,
    interceptor,
    run_until_exit,
    secure_deployment,
)

pytestmark = pytest.mark.integration

WRONG_PASSWORD_BOUND_S = 120  # a worker refused by the broker must have stopped by then
WRONG_PASSWORD = f"wrong-{uuid.uuid4().hex}"


@dataclass(frozen=True)
class SaslBroker:
    plaintext: str  # the plain listener, for the test's own clients
    sasl: str  # the SASL_PLAINTEXT listener, the only one the worker is given
    password: str


@pytest.fixture(scope="module")
def sasl_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SaslBroker]:
    password = f"pw-{uuid.uuid4().hex}"  # unique, so finding it in a log cannot be a coincidence
    sasl_port = free_port()
    with private_broker(
        tmp_path_factory.mktemp("sasl-broker"),
        KAFKA_SASL="plain,scram-sha-256",
        KAFKA_SASL_PORT=str(sasl_port),
        KAFKA_SASL_USER=USER,
        KAFKA_SASL_PASSWORD=password,
    ) as broker:
        yield SaslBroker(broker.bootstrap, f"127.0.0.1:{sasl_port}", password)


def sasl_env(mechanism: str, password: str) -> dict[str, str]:
    return {
        "INTERCEPTOR_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "INTERCEPTOR_SASL_MECHANISM": mechanism,
        "INTERCEPTOR_SASL_USERNAME": USER,
        "INTERCEPTOR_SASL_PASSWORD": password,
    }


@pytest.mark.timeout(180)
@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256"])
def test_worker_decides_over_sasl_and_never_prints_the_password(
    sasl_broker: SaslBroker, tmp_path: Path, mechanism: str
) -> None:
    deployment = secure_deployment(sasl_broker.sasl, "sasl", tmp_path)
    # debug logging: the clients' most talkative level must not print the password either
    env = {**sasl_env(mechanism, sasl_broker.password), "INTERCEPTOR_LOG_LEVEL": "debug"}
    worker = assert_worker_decides(deployment, sasl_broker.plaintext, env)
    assert sasl_broker.password not in worker.log(), "the SASL password appears in the worker's output"


@pytest.fixture(scope="module")
def wrong_password_run(sasl_broker: SaslBroker, tmp_path_factory: pytest.TempPathFactory) -> WorkerExit:
    """A worker started with a wrong password, left alone until it exits or the bound passes."""
    deployment = secure_deployment(sasl_broker.sasl, "wrong-password", tmp_path_factory.mktemp("wrong-password"))
    env = {**sasl_env("PLAIN", WRONG_PASSWORD), "INTERCEPTOR_LOG_LEVEL": "debug"}
    return run_until_exit(deployment, WRONG_PASSWORD_BOUND_S, env)


@pytest.mark.timeout(200)
def test_a_wrong_password_stops_the_worker_instead_of_hanging(
    sasl_broker: SaslBroker, wrong_password_run: WorkerExit
) -> None:
    run = wrong_password_run
    assert_stopped_refused(run, WRONG_PASSWORD_BOUND_S, "the broker refused its login")
    assert WRONG_PASSWORD not in run.log, "the (wrong) SASL password appears in the worker's output"
    assert sasl_broker.password not in run.log


@pytest.mark.timeout(200)
def test_a_wrong_password_is_reported_as_a_refused_login(wrong_password_run: WorkerExit) -> None:
    tail = wrong_password_run.log[-3000:]
    assert "authentication" in tail.lower() and USER in tail, (
        f"the worker's last words do not say that the broker refused the login of {USER!r}:\n{tail}"
    )


@pytest.mark.timeout(120)
def test_check_connection_names_the_cause_of_a_refused_connection(sasl_broker: SaslBroker) -> None:
    def settings(**env: str) -> Settings:
        return Settings.from_env({"INTERCEPTOR_BROKER": sasl_broker.sasl, **env})

    for mechanism in ("PLAIN", "SCRAM-SHA-256"):
        check_connection(settings(**sasl_env(mechanism, sasl_broker.password)))  # no error

    refused = [
        (
            sasl_env("PLAIN", "not-the-password"),
            f"SASL authentication as user '{USER}' with PLAIN was refused",
        ),
        (
            sasl_env("SCRAM-SHA-256", "not-the-password"),
            "SASL authentication as user 'svc-fraud' with SCRAM-SHA-256 was refused",
        ),
        (sasl_env("SCRAM-SHA-512", sasl_broker.password), "does not offer SASL mechanism SCRAM-SHA-512"),
        ({}, "closed the connection (a SASL or TLS listener? INTERCEPTOR_SECURITY_PROTOCOL)"),
    ]
    for env, message in refused:
        with pytest.raises(BrokerConnectionError) as raised:
            check_connection(settings(**env), timeout_s=15)
        assert message in str(raised.value)
        assert "not-the-password" not in str(raised.value) and sasl_broker.password not in str(raised.value)

    # SASL credentials offered to the plain listener
    with pytest.raises(BrokerConnectionError, match="does not speak SASL on this port"):
        check_connection(
            Settings.from_env({"INTERCEPTOR_BROKER": sasl_broker.plaintext, **sasl_env("PLAIN", sasl_broker.password)})
        )


@pytest.mark.timeout(120)
def test_a_command_with_a_wrong_password_stops_at_once_naming_the_refused_login(sasl_broker: SaslBroker) -> None:
    env = {
        "INTERCEPTOR_BROKER": sasl_broker.sasl,
        "INTERCEPTOR_TOPIC_PREFIX": f"c{uuid.uuid4().hex[:8]}.",
        **sasl_env("SCRAM-SHA-256", WRONG_PASSWORD),
    }
    result = interceptor(env, "topics", "create", timeout=60)
    assert_refused_at_once(
        result,
        f"SASL authentication as user '{USER}' with SCRAM-SHA-256 was refused by {sasl_broker.sasl}",
        "check INTERCEPTOR_SASL_USERNAME and INTERCEPTOR_SASL_PASSWORD",
    )
    assert WRONG_PASSWORD not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"INTERCEPTOR_SECURITY_PROTOCOL": "SASL_PLAINTEXT"}, "SASL_PLAINTEXT needs INTERCEPTOR_SASL_MECHANISM"),
        (
            {"INTERCEPTOR_SASL_MECHANISM": "PLAIN"},
            "PLAIN needs INTERCEPTOR_SECURITY_PROTOCOL SASL_PLAINTEXT or SASL_SSL",
        ),
    ],
)
def test_a_protocol_and_mechanism_that_do_not_go_together_are_refused(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        check_security(Settings.from_env(env))
