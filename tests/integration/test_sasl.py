"""SASL against a real broker: local-kafka's opt-in SASL_PLAINTEXT listener (PLAIN and SCRAM-SHA-256).

The worker talks to the broker only through the SASL listener; the test's own producer and reader use the
broker's plain listener. A worker with the right password decides transactions; one with a wrong password
stops within a bound instead of hanging; no password ever shows in a worker's output.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest

from streams.errors import SettingsError
from streams.kafka_security import BrokerConnectionError, check_connection, check_security
from streams.settings import Settings
from tests.integration.conftest import Broker, Deployment, free_port, private_broker
from tests.integration.kafka_io import produce, read_topic

pytestmark = pytest.mark.integration

USER = "svc-fraud"
WRONG_PASSWORD_BOUND_S = 120  # a worker refused by the broker must have stopped by then


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


def transactions(n: int, tag: str) -> list[dict]:
    return [
        {
            "txn_id": f"{tag}-{i}",
            "ts": 1_772_325_000_000 + i * 1000,
            "payer_account": f"P{i % 23}",
            "payee_account": f"Q{i % 7}",
            "amount": f"{100 + i}.00",
            "channel": "mobile",
        }
        for i in range(n)
    ]


@pytest.mark.timeout(180)
@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256"])
def test_worker_decides_over_sasl_and_never_prints_the_password(
    sasl_broker: SaslBroker, tmp_path: Path, mechanism: str
) -> None:
    tag = uuid.uuid4().hex[:8]
    deployment = Deployment(Broker(sasl_broker.sasl), prefix=f"s{tag}.", app_id=f"interceptor-sasl-{tag}", tmp=tmp_path)
    # debug logging: the clients' most talkative level must not print the password either
    env = {**sasl_env(mechanism, sasl_broker.password), "INTERCEPTOR_LOG_LEVEL": "debug"}
    feed = transactions(200, tag)
    try:
        worker = deployment.start_worker(**env)  # it creates the topics itself, through the SASL listener
        produce(
            sasl_broker.plaintext,
            deployment.topic("transactions"),
            ((t["payer_account"].encode(), orjson.dumps(t)) for t in feed),
        )
        decided = read_topic(sasl_broker.plaintext, deployment.topic("decisions"), len(feed), timeout=120)
    finally:
        for w in deployment.workers:
            w.stop()
    assert sorted(d.json()["txn_id"] for d in decided) == sorted(t["txn_id"] for t in feed)
    log = worker.log()
    assert sasl_broker.password not in log, "the SASL password appears in the worker's output"


@dataclass(frozen=True)
class WorkerExit:
    returncode: int | None  # None: still running at the bound (then killed)
    log: str
    wrong_password: str


@pytest.fixture(scope="module")
def wrong_password_run(sasl_broker: SaslBroker, tmp_path_factory: pytest.TempPathFactory) -> WorkerExit:
    """A worker started with a wrong password, left alone until it exits or the bound passes."""
    tmp = tmp_path_factory.mktemp("wrong-password")
    tag = uuid.uuid4().hex[:8]
    wrong = f"wrong-{uuid.uuid4().hex}"
    deployment = Deployment(Broker(sasl_broker.sasl), prefix=f"w{tag}.", app_id=f"interceptor-wrong-{tag}", tmp=tmp)
    worker = deployment.spawn_worker(**sasl_env("PLAIN", wrong), INTERCEPTOR_LOG_LEVEL="debug")
    process, log_path = worker.process, worker.log_path
    try:
        returncode: int | None = process.wait(WRONG_PASSWORD_BOUND_S)
    except subprocess.TimeoutExpired:
        returncode = None
        process.kill()
        process.wait(10)
    return WorkerExit(returncode, log_path.read_text(errors="replace"), wrong)


@pytest.mark.timeout(200)
def test_a_wrong_password_stops_the_worker_instead_of_hanging(
    sasl_broker: SaslBroker, wrong_password_run: WorkerExit
) -> None:
    run = wrong_password_run
    assert run.returncode is not None, (
        f"the worker was still running {WRONG_PASSWORD_BOUND_S}s after the broker refused its login:\n{run.log[-3000:]}"
    )
    assert run.returncode != 0, f"the worker exited with 0 though it never logged in:\n{run.log[-3000:]}"
    assert "Ready" not in run.log
    assert run.wrong_password not in run.log, "the (wrong) SASL password appears in the worker's output"
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
