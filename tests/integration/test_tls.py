"""TLS against a real broker: local-kafka's opt-in SSL listener (KAFKA_TLS=1), and SASL_SSL with KAFKA_SASL too.

The worker talks to the broker only through a TLS listener and trusts only the throw-away CA that local-kafka
made (INTERCEPTOR_SSL_CAFILE); the test's own producer and reader use the broker's plain listener. A worker that
trusts another CA stops within a bound and says so; the command line (kafka-python) works over TLS as well, and
every command that talks to Kafka stops at once with the worker's message when the connection is wrong. Mutual
TLS: test_mtls.py.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
from kafka import KafkaConsumer

from streams.errors import SettingsError
from streams.kafka_security import BrokerConnectionError, aiokafka_config, check_connection
from streams.settings import Settings
from streams.topics import CONTRACT_TOPICS
from tests.integration.conftest import LOCAL_KAFKA, free_port, private_broker
from tests.integration.kafka_io import produce, read_topic
from tests.integration.secure_workers import (
    USER,
    WorkerExit,
    assert_refused_at_once,
    assert_stopped_refused,
    assert_worker_decides,
    distinct_free_ports,
    interceptor,
    interceptor_ok,
    run_until_exit,
    secure_deployment,
    tls_env,
    transactions,
)

pytestmark = pytest.mark.integration

WRONG_CA_BOUND_S = 90  # a worker that does not trust the broker's certificate must have stopped by then
REFUSED_WITHIN_S = 5.0  # check_connection names a refused TLS connection this fast (no retries)


@dataclass(frozen=True)
class TlsBroker:
    plaintext: str  # the plain listener, for the test's own clients
    tls: str  # the SSL listener
    sasl_plaintext: str
    sasl_ssl: str
    cafile: Path  # the throw-away CA local-kafka made; the broker's certificate chains to it
    password: str


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsBroker]:
    password = f"pw-{uuid.uuid4().hex}"  # unique, so finding it in a log cannot be a coincidence
    tls_port, sasl_port, sasl_ssl_port = distinct_free_ports(3)
    with private_broker(
        tmp_path_factory.mktemp("tls-broker"),
        KAFKA_TLS="1",
        KAFKA_TLS_PORT=str(tls_port),
        KAFKA_SASL="plain",
        KAFKA_SASL_PORT=str(sasl_port),
        KAFKA_SASL_SSL_PORT=str(sasl_ssl_port),
        KAFKA_SASL_USER=USER,
        KAFKA_SASL_PASSWORD=password,
    ) as broker:
        cafile = Path(broker.env["KAFKA_DATA_DIR"]) / "tls" / "ca.pem"
        assert cafile.is_file(), f"local-kafka made no CA certificate at {cafile}"
        yield TlsBroker(
            broker.bootstrap,
            f"127.0.0.1:{tls_port}",
            f"127.0.0.1:{sasl_port}",
            f"127.0.0.1:{sasl_ssl_port}",
            cafile,
            password,
        )


@pytest.mark.timeout(180)
@pytest.mark.parametrize("protocol", ["SSL", "SASL_SSL"])
def test_worker_decides_over_tls_trusting_only_the_brokers_ca(
    tls_broker: TlsBroker, tmp_path: Path, protocol: str
) -> None:
    listener = tls_broker.tls if protocol == "SSL" else tls_broker.sasl_ssl
    deployment = secure_deployment(listener, "tls", tmp_path)
    env = tls_env(tls_broker.cafile, protocol, tls_broker.password)
    if protocol == "SASL_SSL":  # the clients' most talkative level must not print the password either
        env["INTERCEPTOR_LOG_LEVEL"] = "debug"
    worker = assert_worker_decides(deployment, tls_broker.plaintext, env)
    assert tls_broker.password not in worker.log(), "the SASL password appears in the worker's output"


@pytest.fixture(scope="module")
def wrong_ca_run(tls_broker: TlsBroker, other_ca: Path, tmp_path_factory: pytest.TempPathFactory) -> WorkerExit:
    """A worker given a CA that did not sign the broker's certificate, left alone until it exits or the bound
    passes."""
    deployment = secure_deployment(tls_broker.tls, "wrong-ca", tmp_path_factory.mktemp("wrong-ca"))
    return run_until_exit(deployment, WRONG_CA_BOUND_S, tls_env(other_ca))


@pytest.mark.timeout(150)
def test_a_worker_that_does_not_trust_the_broker_stops_and_names_the_ca(
    tls_broker: TlsBroker, other_ca: Path, wrong_ca_run: WorkerExit
) -> None:
    tail = assert_stopped_refused(wrong_ca_run, WRONG_CA_BOUND_S, "the TLS handshake failed")
    assert f"TLS with {tls_broker.tls} failed: its certificate was refused" in tail, tail
    assert f"the CA certificates in {other_ca}; check INTERCEPTOR_SSL_CAFILE" in tail, tail


@pytest.mark.timeout(120)
def test_check_connection_names_the_cause_of_a_refused_tls_connection(tls_broker: TlsBroker, other_ca: Path) -> None:
    def settings(broker: str, **env: str) -> Settings:
        return Settings.from_env({"INTERCEPTOR_BROKER": broker, **env})

    # the certificate names 127.0.0.1 and localhost
    port = tls_broker.tls.rpartition(":")[2]
    for broker in (tls_broker.tls, f"localhost:{port}"):
        check_connection(settings(broker, **tls_env(tls_broker.cafile)))  # no error
    check_connection(settings(tls_broker.sasl_ssl, **tls_env(tls_broker.cafile, "SASL_SSL", tls_broker.password)))

    no_ca = {"INTERCEPTOR_SECURITY_PROTOCOL": "SSL"}  # the system's CA certificates
    refused = [
        (tls_broker.tls, tls_env(other_ca), f"TLS with {tls_broker.tls} failed: its certificate was refused (self-signed certificate in certificate chain) when checked against the CA certificates in {other_ca}; check INTERCEPTOR_SSL_CAFILE"),
        (tls_broker.tls, no_ca, "when checked against the system's CA certificates (INTERCEPTOR_SSL_CAFILE is not set)"),
        (tls_broker.sasl_ssl, tls_env(other_ca, "SASL_SSL", tls_broker.password), f"TLS with {tls_broker.sasl_ssl} failed: its certificate was refused"),
        (tls_broker.tls, {}, f"{tls_broker.tls} closed the connection (a SASL or TLS listener? INTERCEPTOR_SECURITY_PROTOCOL)"),
        (tls_broker.plaintext, tls_env(tls_broker.cafile), "(a listener without TLS, or a SASL one? INTERCEPTOR_SECURITY_PROTOCOL)"),
        (tls_broker.sasl_plaintext, tls_env(tls_broker.cafile, "SASL_SSL", tls_broker.password), "(a listener without TLS? INTERCEPTOR_SECURITY_PROTOCOL)"),
        (tls_broker.sasl_ssl, tls_env(tls_broker.cafile, "SASL_SSL", "not-the-password"), f"SASL authentication as user '{USER}' with PLAIN was refused"),
    ]  # fmt: skip
    for broker, env, message in refused:
        started = time.monotonic()
        with pytest.raises(BrokerConnectionError) as raised:
            check_connection(settings(broker, **env), timeout_s=15)
        took = time.monotonic() - started
        assert message in str(raised.value), f"{broker} {env}"
        assert took < REFUSED_WITHIN_S, f"refused after {took:.1f}s, not at once: {raised.value}"
        assert tls_broker.password not in str(raised.value)


def test_a_ca_file_that_is_missing_or_holds_no_certificate_is_a_settings_error(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.pem"
    with pytest.raises(SettingsError, match=f"INTERCEPTOR_SSL_CAFILE: no such file: {missing}"):
        Settings.from_env(tls_env(missing))
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    settings = Settings.from_env(tls_env(garbage))
    with pytest.raises(SettingsError, match=f"INTERCEPTOR_SSL_CAFILE: {garbage} holds no usable PEM CA certificate"):
        aiokafka_config(settings)


@pytest.mark.timeout(240)
def test_the_command_line_creates_topics_produces_and_tails_over_tls(tls_broker: TlsBroker, tmp_path: Path) -> None:
    prefix = f"c{uuid.uuid4().hex[:8]}."
    env = {
        "INTERCEPTOR_BROKER": tls_broker.tls,
        "INTERCEPTOR_TOPIC_PREFIX": prefix,
        "INTERCEPTOR_PARTITIONS": "3",
        **tls_env(tls_broker.cafile),
    }
    # topic creation: kafka-python's admin client
    created = interceptor_ok(env, "topics", "create").stdout
    assert created.strip() == "created: " + ", ".join(prefix + t for t in CONTRACT_TOPICS)
    consumer = KafkaConsumer(bootstrap_servers=tls_broker.plaintext)
    try:
        for name in CONTRACT_TOPICS:
            assert consumer.partitions_for_topic(prefix + name) == {0, 1, 2}, name
    finally:
        consumer.close()

    # a producer
    feed = transactions(50, prefix)
    path = tmp_path / "transactions.jsonl"
    path.write_bytes(b"".join(orjson.dumps(t) + b"\n" for t in feed))
    interceptor_ok(env, "produce", str(path), "--topic", "transactions")
    sent = read_topic(tls_broker.plaintext, prefix + "transactions", len(feed), timeout=60)
    assert sorted(m.json()["txn_id"] for m in sent) == sorted(t["txn_id"] for t in feed)

    # a consumer
    decision = {"txn_id": f"{prefix}0", "action": "allow"}
    produce(tls_broker.plaintext, prefix + "decisions", [(b"P0", orjson.dumps(decision))])
    tailed = interceptor_ok(env, "tail", "decisions", "--from-beginning", "--max", "1", "--idle-exit", "30").stdout
    assert [orjson.loads(line) for line in tailed.splitlines()] == [decision]


KAFKA_COMMANDS = [
    ("topics", "create"),
    ("produce", "{tmp}/feed.jsonl", "--topic", "transactions"),
    ("tail", "decisions", "--idle-exit", "5"),
    ("dead-letters", "--out", "{tmp}/rejected.jsonl"),
    ("call-centre", "--idle-exit", "1"),
    ("simulate", "--kafka", "--customers", "20", "--days", "1"),
    ("bench", "--transactions", "100", "--seconds", "1"),
]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("command", KAFKA_COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_every_kafka_command_stops_at_once_with_the_workers_message(
    tls_broker: TlsBroker, other_ca: Path, tmp_path: Path, command: tuple[str, ...]
) -> None:
    (tmp_path / "feed.jsonl").write_bytes(b"".join(orjson.dumps(t) + b"\n" for t in transactions(3, "cli")))
    env = {
        "INTERCEPTOR_BROKER": tls_broker.tls,
        "INTERCEPTOR_TOPIC_PREFIX": f"x{uuid.uuid4().hex[:8]}.",
        **tls_env(other_ca),
    }
    # without the check, kafka-python retried for 30 s and then printed a traceback
    result = interceptor(env, *(arg.format(tmp=tmp_path) for arg in command), timeout=60)
    assert_refused_at_once(
        result,
        f"TLS with {tls_broker.tls} failed: its certificate was refused",
        f"the CA certificates in {other_ca}; check INTERCEPTOR_SSL_CAFILE",
    )
    assert not (tmp_path / "rejected.jsonl").exists()


@pytest.mark.timeout(120)
def test_local_kafka_serves_a_keystore_of_your_own(tls_broker: TlsBroker, tmp_path: Path) -> None:
    # the first broker's certificate, handed to a second broker as if it were the operator's own
    own = tmp_path / "own"
    own.mkdir()
    shutil.copy(tls_broker.cafile.parent / "broker-keystore.pem", own / "keystore.pem")
    shutil.copy(tls_broker.cafile, own / "ca.pem")
    tls_port = free_port()
    with private_broker(
        tmp_path / "data",
        KAFKA_TLS="1",
        KAFKA_TLS_PORT=str(tls_port),
        KAFKA_TLS_KEYSTORE=str(own / "keystore.pem"),
        KAFKA_TLS_CAFILE=str(own / "ca.pem"),
    ) as broker:
        check_connection(Settings.from_env({"INTERCEPTOR_BROKER": f"127.0.0.1:{tls_port}", **tls_env(own / "ca.pem")}))
        assert not (Path(broker.env["KAFKA_DATA_DIR"]) / "tls").exists(), "a CA was made although a keystore was given"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"KAFKA_TLS": "yes"}, "KAFKA_TLS must be 1 (on) or empty (off), not 'yes'"),
        ({"KAFKA_TLS": "1", "KAFKA_TLS_PORT": "{port}"}, "KAFKA_TLS_PORT ({port}) must differ from the other listeners' ports"),
        ({"KAFKA_TLS": "1", "KAFKA_TLS_PORT": "x"}, "KAFKA_TLS_PORT and KAFKA_SASL_SSL_PORT must be numbers"),
        ({"KAFKA_TLS_KEYSTORE": "{ca}"}, "KAFKA_TLS_KEYSTORE and KAFKA_TLS_CAFILE need KAFKA_TLS=1"),
        ({"KAFKA_TLS": "1", "KAFKA_TLS_KEYSTORE": "{ca}"}, "KAFKA_TLS_KEYSTORE needs KAFKA_TLS_CAFILE"),
        ({"KAFKA_TLS": "1", "KAFKA_TLS_KEYSTORE": "{ca}", "KAFKA_TLS_CAFILE": "{ca}"}, "holds no unencrypted PKCS#8 key"),
        ({"KAFKA_TLS": "1", "KAFKA_TLS_CAFILE": "{ca}"}, "KAFKA_TLS_CAFILE is only for a KAFKA_TLS_KEYSTORE of your own"),
        ({"KAFKA_TLS_CLIENT_AUTH": "required"}, "KAFKA_TLS_CLIENT_AUTH needs KAFKA_TLS=1"),
        ({"KAFKA_TLS": "1", "KAFKA_TLS_CLIENT_AUTH": "yes"}, "KAFKA_TLS_CLIENT_AUTH must be required or none, not 'yes'"),
    ],
)  # fmt: skip
def test_local_kafka_refuses_tls_settings_that_cannot_work(
    env: dict[str, str], message: str, other_ca: Path, tmp_path: Path
) -> None:
    port = str(free_port())
    env = {k: v.format(port=port, ca=other_ca) for k, v in env.items()}
    result = subprocess.run(
        [str(LOCAL_KAFKA), "status"],
        env={**os.environ, "KAFKA_PORT": port, "KAFKA_DATA_DIR": str(tmp_path / "kafka"), **env},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert message.format(port=port) in result.stderr
